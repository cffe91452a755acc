//! Opening a data source's file beneath its root without following any link, so
//! that a directory swapped for a symlink between discovery and reading cannot lead
//! outside the root, and without blocking, so that a FIFO or device put in a file's
//! place cannot hang a worker. The type is checked on the opened descriptor.

use std::fs::File;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
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
    let dir = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Err(e.into()))?;
    // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for
    // a writer. Regular files ignore it.
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let opened = rustix::fs::openat2(
        &dir,
        key,
        flags | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    );
    let fd = match opened {
        Ok(fd) => fd,
        // Kernels before 5.6, or a sandbox that filters the call.
        Err(Errno::NOSYS | Errno::PERM) => by_components(&dir, key, flags)?,
        Err(e) => return Err(refused(e)),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| Err(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(Ok(Refused::NotRegular));
    }
    Ok(File::from(fd))
}

/// The fallback: one `openat` per component, none following a link, each directory
/// on the root's device.
fn by_components(
    root: &std::os::fd::OwnedFd,
    key: &str,
    flags: OFlags,
) -> Result<std::os::fd::OwnedFd, Result<Refused, std::io::Error>> {
    let device = rustix::fs::fstat(root).map_err(|e| Err(e.into()))?.st_dev;
    let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err(Ok(Refused::Vanished));
    };
    let mut current: Option<std::os::fd::OwnedFd> = None;
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
        other => Err(other.into()),
    }
}
