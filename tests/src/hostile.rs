//! The "hostile share": a directory tree holding what people a site does not trust
//! can put on a file share (decompression bombs, FIFOs, sockets, device files, links
//! out of the root, a sparse file of 5 GB, ten thousand tiny files, names with
//! newlines and bytes that are not UTF-8), and the changes they can make while it is
//! scanned (a directory swapped for a link and back, files growing and shrinking,
//! discovered files replaced by a FIFO, a socket or a device). Used by
//! `tests/tests/hostile_share.rs`; what a site does with each is in
//! `docs/reliability.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use zip::write::SimpleFileOptions;

use crate::bitmap;
use crate::documents::{docx_with_media, ods_with_rows, xlsx_with_rows};

/// Tiny files in `tiny/`.
pub const TINY_FILES: usize = 10_000;

/// Every this-many tiny file holds an e-mail address.
pub const TINY_EMAIL_EVERY: usize = 500;

/// The directory swapped for a link to [`HostileShare::outside`] once discovery is
/// done, while its files wait to be processed (it sorts just before the victims).
/// Its files hold nothing sensitive; the same names outside do, so a finding in an
/// object under it came from outside the root.
pub const SWAP_DIR: &str = "zy-swap";

/// The directory swapped for a link to [`HostileShare::outside`] while the share is
/// walked. Outside holds a file named [`OUTSIDE_ONLY`] that the share does not: an
/// object of that name under this directory means the walk listed outside the root.
pub const WALK_SWAP_DIR: &str = "swap-walk";

/// A file name only the outside directory holds.
pub const OUTSIDE_ONLY: &str = "outside-only.txt";

/// Files in [`SWAP_DIR`].
pub const SWAP_FILES: usize = 50;

/// Bytes a bomb inflates to.
pub const BOMB_INFLATED_BYTES: u64 = 1 << 30;

/// Size of `huge/sparse-5g.bin`.
pub const SPARSE_BYTES: u64 = 5 << 30;

/// Discovered regular files that [`HostileShare::replace_victims`] replaces. Their
/// directory sorts after every other, so they are the last objects processed.
pub mod victims {
    /// Replaced by a FIFO (opening it for reading would wait for a writer).
    pub const FIFO: &str = "zz-victims/fifo.txt";
    /// Replaced by a bound Unix socket (opening it fails with `ENXIO`).
    pub const SOCKET: &str = "zz-victims/socket.txt";
    /// Replaced by the character device 1:5 (`/dev/zero`: reads never end). Root only.
    pub const DEVICE: &str = "zz-victims/device.txt";
    /// Replaced by a character device whose major number no driver claims (opening
    /// it fails with `ENXIO`). Root only.
    pub const NO_DRIVER: &str = "zz-victims/no-driver.txt";
    /// Grown to a 5 GB sparse file.
    pub const BALLOON: &str = "zz-victims/balloon.txt";
    /// Deleted.
    pub const GONE: &str = "zz-victims/gone.txt";
    /// Replaced by a directory.
    pub const DIRECTORY: &str = "zz-victims/directory.txt";
    /// Replaced by a link to the outside file.
    pub const LINK: &str = "zz-victims/link.txt";

    /// Every victim, with whether it needs root.
    pub const ALL: [(&str, bool); 8] = [
        (FIFO, false),
        (SOCKET, false),
        (DEVICE, true),
        (NO_DRIVER, true),
        (BALLOON, false),
        (GONE, false),
        (DIRECTORY, false),
        (LINK, false),
    ];
}

/// Files rewritten in a loop while the share is scanned: `grow.txt` gains lines and
/// is cut back to nothing, `balloon.txt` swings between a line and a sparse 300 MB
/// (past the 256 MB default limit), `shrink.pdf` is cut in half and restored.
pub const CHURN_DIR: &str = "churn";

/// A built hostile share. Dropping it closes the sockets bound in it.
pub struct HostileShare {
    /// The data source's root.
    pub root: PathBuf,
    /// A directory outside the root holding files full of sensitive values.
    pub outside: PathBuf,
    /// Where the real [`SWAP_DIR`] waits while a link stands in its place (outside
    /// the root, so the walk never sees it twice).
    parking: PathBuf,
    /// Whether device files were made (only root may `mknod` them).
    pub devices: bool,
    sockets: Vec<UnixListener>,
}

/// A sensitive line that only files outside the root hold.
pub const OUTSIDE_SECRET: &str =
    "ssn 078-05-1120 card 4111 1111 1111 1111 mail leak@outside.example\n";

impl HostileShare {
    /// Builds the share under `dir/share` (and `dir/outside`, `dir/parking`). Takes a
    /// few seconds: the bombs are compressed from a gigabyte each.
    pub fn build(dir: &Path) -> HostileShare {
        let root = dir.join("share");
        let outside = dir.join("outside");
        let parking = dir.join("parking");
        for d in [&root, &outside, &parking] {
            fs::create_dir_all(d).expect("share dirs");
        }
        let devices = is_root();
        let mut share = HostileShare {
            root,
            outside,
            parking,
            devices,
            sockets: Vec::new(),
        };
        share.tiny_files();
        share.bombs();
        share.special_files();
        share.links();
        share.swap_dir();
        share.names();
        share.text();
        share.churn();
        share.victims();
        // Sparse: 5 GB long, no block written.
        File::create(share.path("huge/sparse-5g.bin"))
            .and_then(|f| f.set_len(SPARSE_BYTES))
            .expect("sparse file");
        share
    }

    fn path(&self, rel: &str) -> PathBuf {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("parent dir");
        }
        p
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        fs::write(self.path(rel), bytes).expect("write share file");
    }

    fn tiny_files(&self) {
        for n in 0..TINY_FILES {
            let body = if n % TINY_EMAIL_EVERY == 0 {
                format!("row {n} contact tiny{n}@example.com\n")
            } else {
                format!("row {n}\n")
            };
            let rel = format!("tiny/d{:03}/f{n:05}.txt", n / 100);
            if n % 100 == 0 {
                fs::create_dir_all(self.root.join(format!("tiny/d{:03}", n / 100))).unwrap();
            }
            fs::write(self.root.join(rel), body).expect("tiny file");
        }
    }

    fn bombs(&self) {
        // A spreadsheet whose two cells, A1 and XFD1048576, describe 17 billion.
        self.write(
            "bombs/far-cells.xlsx",
            &xlsx_with_rows(
                r#"<row r="1"><c r="A1" t="inlineStr"><is><t>ada.byron@example.com</t></is></c></row><row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>"#,
            ),
        );
        // ODS repeat counts: one cell repeated across every column of every row.
        self.write(
            "bombs/repeats.ods",
            &ods_with_rows(
                r#"<table:table-row table:number-rows-repeated="1048576"><table:table-cell table:number-columns-repeated="16384" office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>"#,
            ),
        );
        self.write("bombs/flate-1g.pdf", &pdf_bomb(BOMB_INFLATED_BYTES));
        self.write("bombs/xml-1g.docx", &docx_bomb(BOMB_INFLATED_BYTES));
        // A small PNG whose header declares 32,768 × 32,768 pixels.
        self.write("bombs/pixels-1g.png", &png_declaring(32_768, 32_768));
        // 400 embedded images: more than a document gets OCR'd.
        let image = png_declaring(1, 1);
        self.write(
            "bombs/images-400.docx",
            &docx_with_media(&["nothing here".to_owned()], &vec![image; 400]),
        );
    }

    fn special_files(&mut self) {
        let fifo = self.path("special/fifo");
        run("mkfifo", &[fifo.as_os_str()]);
        let socket = self.path("special/socket");
        self.sockets
            .push(UnixListener::bind(&socket).expect("bind a socket in the share"));
        if self.devices {
            let zero = self.path("special/zero");
            mknod(&zero, 'c', 1, 5);
            let none = self.path("special/no-driver");
            mknod(&none, 'c', unclaimed_char_major(), 0);
            let loop0 = self.path("special/loop0");
            mknod(&loop0, 'b', 7, 0);
        }
    }

    fn links(&self) {
        fs::write(self.outside.join("secret.txt"), OUTSIDE_SECRET).unwrap();
        symlink(
            self.outside.join("secret.txt"),
            self.path("links/to-outside.txt"),
        )
        .unwrap();
        symlink(&self.outside, self.path("links/outside-dir")).unwrap();
        symlink("/etc/passwd", self.path("links/passwd")).unwrap();
        symlink("loop", self.path("links/loop")).unwrap();
        symlink("nowhere", self.path("links/dangling")).unwrap();
        symlink("..", self.path("links/parent")).unwrap();
    }

    fn swap_dir(&self) {
        for n in 0..SWAP_FILES {
            let name = format!("f{n:02}.txt");
            for dir in [SWAP_DIR, WALK_SWAP_DIR] {
                self.write(&format!("{dir}/{name}"), b"nothing to see here\n");
            }
            fs::write(self.outside.join(&name), OUTSIDE_SECRET).unwrap();
        }
        fs::write(self.outside.join(OUTSIDE_ONLY), OUTSIDE_SECRET).unwrap();
    }

    fn names(&self) {
        let dir = self.path("names/x");
        let dir = dir.parent().unwrap().to_owned();
        let named = |name: &[u8], body: &[u8]| {
            fs::write(dir.join(std::ffi::OsStr::from_bytes(name)), body).unwrap();
        };
        named(b"new\nline.txt", b"grace.hopper@example.com\n");
        named(b"tab\tcarriage\rreturn.txt", b"nothing\n");
        named(b"latin1-\xe9t\xe9.txt", b"alan.turing@example.org\n");
        named(b"lone-\xff.txt", b"x\n");
        named(b" ", b"a name of one space\n");
        named(b"-rf", b"a name like an option\n");
        named(&[b'n'; 255], b"the longest name allowed\n");
        let bad_dir = dir.join(std::ffi::OsStr::from_bytes(b"dir-\xfe"));
        fs::create_dir(&bad_dir).unwrap();
        fs::write(bad_dir.join("inside.txt"), b"katherine@example.com\n").unwrap();
    }

    fn text(&self) {
        // One line of 20 MB with no newline, an address at its very end.
        let mut line = vec![b'a'; 20 << 20];
        line.extend_from_slice(b" end.of.line@example.com");
        self.write("text/one-line-20mb.txt", &line);
        // Text, then NUL bytes past the sniffed head.
        let mut mixed = b"mixed@example.com\n".repeat(1000);
        mixed.extend(std::iter::repeat_n(0u8, 1 << 20));
        self.write("text/text-then-nul.txt", &mixed);
        self.write("text/empty.txt", b"");
    }

    fn churn(&self) {
        self.write(&format!("{CHURN_DIR}/grow.txt"), b"start bob@example.com\n");
        self.write(&format!("{CHURN_DIR}/balloon.txt"), b"small\n");
        self.write(
            &format!("{CHURN_DIR}/shrink.pdf"),
            &crate::documents::pdf(&vec!["carol@example.com".to_owned(); 200]),
        );
    }

    fn victims(&self) {
        for (rel, _) in victims::ALL {
            self.write(rel, b"victim dave@example.com\n");
        }
    }

    /// Swaps `dir` (of the root) for a link to [`HostileShare::outside`] and back,
    /// until `stop`; returns how many times it did. The real directory is back in
    /// place when the thread ends.
    pub fn start_link_swapper(&self, dir: &str, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
        let link = self.root.join(dir);
        let parked = self.parking.join(dir);
        let target = self.outside.clone();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                fs::rename(&link, &parked).expect("park the directory");
                symlink(&target, &link).expect("link in its place");
                std::thread::sleep(Duration::from_millis(2));
                fs::remove_file(&link).expect("remove the link");
                fs::rename(&parked, &link).expect("directory back");
                swaps += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            swaps
        })
    }

    /// Grows and shrinks the files in [`CHURN_DIR`] until `stop`; returns the rounds.
    pub fn start_churn(&self, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
        let dir = self.root.join(CHURN_DIR);
        std::thread::spawn(move || {
            let grow = dir.join("grow.txt");
            let balloon = dir.join("balloon.txt");
            let pdf = dir.join("shrink.pdf");
            let whole = fs::read(&pdf).expect("pdf");
            let chunk = "erin@example.com\n".repeat(4096);
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut f = OpenOptions::new().append(true).open(&grow).unwrap();
                for _ in 0..16 {
                    f.write_all(chunk.as_bytes()).unwrap();
                }
                f.set_len(0).unwrap();
                let b = OpenOptions::new().write(true).open(&balloon).unwrap();
                b.set_len(300 << 20).unwrap();
                std::thread::sleep(Duration::from_millis(5));
                b.set_len(6).unwrap();
                let p = OpenOptions::new().write(true).open(&pdf).unwrap();
                p.set_len(whole.len() as u64 / 2).unwrap();
                std::thread::sleep(Duration::from_millis(5));
                fs::write(&pdf, &whole).unwrap();
                rounds += 1;
            }
            rounds
        })
    }

    /// Replaces the [`victims`] (discovered as regular files) by what their names
    /// say. Devices only when [`HostileShare::devices`].
    pub fn replace_victims(&mut self) {
        let at = |rel: &str| {
            let p = self.root.join(rel);
            fs::remove_file(&p).expect("remove victim");
            p
        };
        run("mkfifo", &[at(victims::FIFO).as_os_str()]);
        let socket = at(victims::SOCKET);
        self.sockets
            .push(UnixListener::bind(&socket).expect("bind the socket victim"));
        if self.devices {
            mknod(&at(victims::DEVICE), 'c', 1, 5);
            mknod(&at(victims::NO_DRIVER), 'c', unclaimed_char_major(), 0);
        }
        File::options()
            .write(true)
            .open(self.root.join(victims::BALLOON))
            .and_then(|f| f.set_len(SPARSE_BYTES))
            .expect("balloon");
        at(victims::GONE);
        fs::create_dir(at(victims::DIRECTORY)).expect("directory victim");
        symlink(self.outside.join("secret.txt"), at(victims::LINK)).expect("link victim");
    }
}

fn is_root() -> bool {
    // The test crate has no libc binding; `id -u` answers the same question.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(program: &str, args: &[&std::ffi::OsStr]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

fn mknod(path: &Path, kind: char, major: u32, minor: u32) {
    run(
        "mknod",
        &[
            path.as_os_str(),
            kind.to_string().as_ref(),
            major.to_string().as_ref(),
            minor.to_string().as_ref(),
        ],
    );
}

/// A character major number no driver on this machine claims: the first of the
/// ranges reserved for local use that `/proc/devices` does not list.
fn unclaimed_char_major() -> u32 {
    let devices = fs::read_to_string("/proc/devices").unwrap_or_default();
    let claimed: Vec<u32> = devices
        .lines()
        .take_while(|l| !l.starts_with("Block"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    (60..=63)
        .chain(120..=127)
        .chain(240..=254)
        .find(|m| !claimed.contains(m))
        .unwrap_or(60)
}

/// A PNG header declaring `width` × `height` pixels, with a tiny image body.
pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = bitmap::render_png(&["x".to_owned()]);
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    png
}

/// Zlib data inflating to `bytes` zeros (about a thousandth of that compressed).
fn zeros_deflated(bytes: u64) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..bytes / zeros.len() as u64 {
        z.write_all(&zeros).unwrap();
    }
    z.finish().unwrap()
}

/// A PDF whose one Flate stream, about a megabyte, inflates to `bytes`.
pub fn pdf_bomb(bytes: u64) -> Vec<u8> {
    let stream = zeros_deflated(bytes);
    let mut pdf = format!(
        "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>\nendobj\n4 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n",
        stream.len()
    )
    .into_bytes();
    pdf.extend_from_slice(&stream);
    pdf.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    pdf
}

/// A DOCX whose `word/document.xml` inflates to `bytes`: one paragraph whose one
/// text run is a single word as long as that.
pub fn docx_bomb(bytes: u64) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .large_file(bytes >= u32::MAX as u64);
    w.start_file("[Content_Types].xml", deflated).unwrap();
    w.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#).unwrap();
    w.start_file("word/document.xml", deflated).unwrap();
    w.write_all(br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>"#)
        .unwrap();
    let run = vec![b'a'; 1 << 20];
    for _ in 0..bytes / run.len() as u64 {
        w.write_all(&run).unwrap();
    }
    w.write_all(b"</w:t></w:r></w:p></w:body></w:document>")
        .unwrap();
    w.finish().unwrap().into_inner()
}
