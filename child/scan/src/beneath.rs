//! Opening a data source's file beneath its root without following any link, so
//! that a directory swapped for a symlink between discovery and reading cannot lead
//! outside the root, and without blocking, so that a FIFO or device put in a file's
//! place cannot hang a worker. The type is checked on the opened descriptor.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// Why a file was not opened; each is a `SKIPPED` reason, not a task failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Vanished,
    Link,
    OutsideRoot,
    NotRegular,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Vanished => "file vanished before it was scanned",
            Refused::Link => "symlink not followed",
            Refused::OutsideRoot => "path resolves outside the data source root",
            Refused::NotRegular => "not a regular file",
        }
    }
}

/// Opens `key` (relative, plain components only: the caller checks) beneath `root`.
/// `Err(Ok(refused))` when the file must be skipped, `Err(Err(e))` on an I/O error
/// worth a retry.
pub fn open(root: &Path, key: &str) -> Result<File, Result<Refused, std::io::Error>> {
    let dir = open_root(root).map_err(Err)?;
    // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for
    // a writer. Regular files ignore it.
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = resolve(&dir, key, flags)?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| Err(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(Ok(Refused::NotRegular));
    }
    Ok(File::from(fd))
}

/// The root directory, opened for [`open`] and for a walk's [`lstat`] calls.
pub fn open_root(root: &Path) -> std::io::Result<OwnedFd> {
    rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Into::into)
}

/// The status of `key` beneath `root` (from [`open_root`]), following no link (a
/// link's own status when `key` names one). A walk lists a directory by its path, so
/// a directory swapped for a link while it is walked is listed from outside the
/// root; this tells which of the names listed are really beneath it (a name only
/// outside is [`Refused::Vanished`]) and gives their status as they are there.
pub fn lstat(root: &OwnedFd, key: &str) -> Result<Stat, Result<Refused, std::io::Error>> {
    let fd = resolve(root, key, OFlags::PATH | OFlags::CLOEXEC)?;
    rustix::fs::fstat(&fd).map_err(|e| Err(e.into()))
}

/// Opens `key` beneath `dir` with `flags`, following no link (the last component
/// included: with `O_PATH` a link is opened itself).
fn resolve(
    dir: &OwnedFd,
    key: &str,
    flags: OFlags,
) -> Result<OwnedFd, Result<Refused, std::io::Error>> {
    let opened = rustix::fs::openat2(
        dir,
        key,
        flags | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    );
    match opened {
        Ok(fd) => Ok(fd),
        // Kernels before 5.6, or a sandbox that filters the call.
        Err(Errno::NOSYS | Errno::PERM) => by_components(dir, key, flags),
        Err(e) => Err(refused(e)),
    }
}

/// The fallback: one `openat` per component, none following a link, each directory
/// on the root's device.
fn by_components(
    root: &OwnedFd,
    key: &str,
    flags: OFlags,
) -> Result<OwnedFd, Result<Refused, std::io::Error>> {
    let device = rustix::fs::fstat(root).map_err(|e| Err(e.into()))?.st_dev;
    let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err(Ok(Refused::Vanished));
    };
    let mut current: Option<OwnedFd> = None;
    for part in dirs {
        let at = current.as_ref().unwrap_or(root);
        let next = rustix::fs::openat(
            at,
            *part,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(refused)?;
        if rustix::fs::fstat(&next).map_err(|e| Err(e.into()))?.st_dev != device {
            return Err(Ok(Refused::OutsideRoot));
        }
        current = Some(next);
    }
    let at = current.as_ref().unwrap_or(root);
    rustix::fs::openat(at, *last, flags | OFlags::NOFOLLOW, Mode::empty()).map_err(refused)
}

fn refused(e: Errno) -> Result<Refused, std::io::Error> {
    match e {
        Errno::NOENT => Ok(Refused::Vanished),
        // A link where a directory or the file should be (ELOOP from O_NOFOLLOW or
        // RESOLVE_NO_SYMLINKS; ENOTDIR from O_DIRECTORY on a link to a file).
        Errno::LOOP | Errno::NOTDIR => Ok(Refused::Link),
        // RESOLVE_BENEATH or RESOLVE_NO_XDEV refused the path.
        Errno::XDEV => Ok(Refused::OutsideRoot),
        // A socket, or a device node no driver answers for, where the file was:
        // opening it fails this way on every attempt, so it is not worth a retry.
        Errno::NXIO | Errno::NODEV => Ok(Refused::NotRegular),
        other => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a socket put where a discovered file was failed its open with
    /// `ENXIO`, a retryable error, so the task failed and the object never got an
    /// outcome.
    #[test]
    fn a_socket_in_place_of_a_file_is_refused_as_not_regular() {
        let dir = tempfile::tempdir().unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("s.txt")).unwrap();
        let refused = open(dir.path(), "s.txt").map(drop);
        assert!(
            matches!(refused, Err(Ok(Refused::NotRegular))),
            "{refused:?}"
        );
    }

    /// A name listed through a directory swapped for a link is not beneath the root;
    /// a link that is itself the name is seen as a link.
    #[test]
    fn lstat_follows_no_link_and_sees_links_themselves() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("only-outside.txt"), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("f.txt"), "abc").unwrap();
        let root = open_root(dir.path()).unwrap();
        let through = lstat(&root, "d/only-outside.txt").map(drop);
        assert!(matches!(through, Err(Ok(Refused::Link))), "{through:?}");
        let missing = lstat(&root, "nothing.txt").map(drop);
        assert!(matches!(missing, Err(Ok(Refused::Vanished))), "{missing:?}");
        let link = lstat(&root, "d").unwrap();
        assert_eq!(FileType::from_raw_mode(link.st_mode), FileType::Symlink);
        assert_eq!(lstat(&root, "f.txt").unwrap().st_size, 3);
    }
}
