//! Noticing that certificate files changed (rotation by a secret update), without
//! inotify: a cheap stamp of each file's length and modification time, compared on
//! an interval by whoever owns the TLS configuration.

use std::path::PathBuf;
use std::time::SystemTime;

use super::TlsFiles;

/// The last seen stamp of a set of files.
#[derive(Debug, Clone)]
pub struct FileWatch {
    paths: Vec<PathBuf>,
    stamp: Vec<Option<(u64, SystemTime)>>,
}

impl FileWatch {
    pub fn new(files: &TlsFiles) -> Self {
        let paths: Vec<PathBuf> = files.paths().iter().map(|p| p.to_path_buf()).collect();
        let stamp = stamp(&paths);
        FileWatch { paths, stamp }
    }

    /// True once when any file's length or mtime differs from the last call.
    pub fn changed(&mut self) -> bool {
        let now = stamp(&self.paths);
        if now != self.stamp {
            self.stamp = now;
            true
        } else {
            false
        }
    }
}

fn stamp(paths: &[PathBuf]) -> Vec<Option<(u64, SystemTime)>> {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        })
        .collect()
}
