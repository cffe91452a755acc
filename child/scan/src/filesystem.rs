//! The `filesystem` connector: lists files under a root with include/exclude globs
//! and a size limit, and reads them line by line for the classifiers. It never
//! leaves its root: keys are relative paths of plain components, and a file is
//! opened beneath the root without following any link or leaving its file system
//! (`beneath`), so a directory swapped for a link after discovery leads nowhere.
//! Only regular files are read, never past the size limit. What a file holds is
//! decided by its content (`extract`), not its name.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use meridian_wire::states::ObjectOutcome;
use rustix::fs::FileType;
use walkdir::WalkDir;

use super::beneath;
use super::classify::ClassifierRef;
use super::extract::{self, ExtractSettings};
use super::{BatchSink, ObjectScan, ScanError, check};
use crate::settings::FilesystemSource;
use meridian_wire::task::NewObject;

fn globset(globs: &[String]) -> Result<GlobSet, ScanError> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let glob = GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| ScanError::Permanent(format!("glob `{g}`: {e}")))?;
        b.add(glob);
    }
    b.build().map_err(|e| ScanError::Permanent(e.to_string()))
}

fn canonical_root(src: &FilesystemSource) -> Result<PathBuf, ScanError> {
    src.root.canonicalize().map_err(|e| {
        ScanError::Retryable(format!("data source {} root is not readable: {e}", src.id))
    })
}

/// The data source's limit is a ceiling: a job may lower it, never raise it.
fn max_bytes(src: &FilesystemSource, limit_mb: Option<u64>) -> u64 {
    limit_mb
        .map_or(src.max_file_size_mb, |job| job.min(src.max_file_size_mb))
        .saturating_mul(1024 * 1024)
}

/// Lists the source's files in a stable order (sorted by name), sending batches of
/// `batch_size` to `sink`.
pub fn discover(
    src: &FilesystemSource,
    limit_mb: Option<u64>,
    batch_size: usize,
    sink: &mut BatchSink<'_>,
    abort: &AtomicBool,
) -> Result<(), ScanError> {
    let root = canonical_root(src)?;
    let root_dir = beneath::open_root(&root).map_err(|e| {
        ScanError::Retryable(format!("data source {} root is not readable: {e}", src.id))
    })?;
    let include = globset(&src.include)?;
    let exclude = globset(&src.exclude)?;
    let max = max_bytes(src, limit_mb);
    let mut batch = Vec::with_capacity(batch_size);
    let hidden_ok = src.hidden_files;
    let walk = WalkDir::new(&root)
        .follow_links(false)
        .same_file_system(true)
        .sort_by_file_name()
        .into_iter()
        // Hidden directories are not even entered when hidden files are off.
        .filter_entry(move |e| hidden_ok || e.depth() == 0 || !is_hidden(e.file_name()));
    for entry in walk {
        check(abort)?;
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(data_source = %src.id, "skipping unreadable entry: {e}");
                continue;
            }
        };
        if entry.file_type().is_dir() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&root) else {
            continue;
        };
        let key = rel.to_string_lossy().into_owned();
        if !include.is_match(rel) || exclude.is_match(rel) {
            continue;
        }
        let mut object = NewObject {
            key,
            size_bytes: 0,
            modified_at: None,
            skipped_reason: None,
        };
        // The walk lists a directory by its path, following a link that was swapped
        // in for it: each name is looked up again beneath the root, following no
        // link. One that is not there, or only through a link, is not an object of
        // this source (its name, size and time stay out of the database).
        let stat = match rel.to_str().map(|k| beneath::lstat(&root_dir, k)) {
            Some(Ok(stat)) => Some(stat),
            Some(Err(Ok(_outside))) => continue,
            Some(Err(Err(e))) => {
                tracing::warn!(data_source = %src.id, "skipping unreadable entry: {e}");
                continue;
            }
            None => None,
        };
        let kind = stat.as_ref().map(|s| FileType::from_raw_mode(s.st_mode));
        object.skipped_reason = if entry.file_type().is_symlink() || kind == Some(FileType::Symlink)
        {
            Some("symlink not followed".into())
        } else if rel.to_str().is_none() {
            Some("file name is not UTF-8".into())
        } else if let Some(stat) = stat.filter(|_| kind == Some(FileType::RegularFile)) {
            object.size_bytes = stat.st_size;
            object.modified_at = Some(stat.st_mtime * 1000 + stat.st_mtime_nsec as i64 / 1_000_000);
            (stat.st_size as u64 > max)
                .then(|| format!("larger than the {} MB limit", max / (1024 * 1024)))
        } else {
            Some("not a regular file".into())
        };
        batch.push(object);
        if batch.len() >= batch_size && !sink(std::mem::take(&mut batch)) {
            return Err(ScanError::Aborted);
        }
    }
    if !batch.is_empty() && !sink(batch) {
        return Err(ScanError::Aborted);
    }
    Ok(())
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Whether `key` is a relative path of plain components (no `..`, no root).
fn plain_key(key: &str) -> bool {
    let rel = Path::new(key);
    !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)))
}

fn skipped(reason: &str) -> ObjectScan {
    ObjectScan {
        outcome: Some(ObjectOutcome::Skipped),
        reason: Some(reason.to_owned()),
        findings: Vec::new(),
    }
}

/// Reads one file and classifies its text.
pub fn process(
    src: &FilesystemSource,
    key: &str,
    object_id: i64,
    limit_mb: Option<u64>,
    classifiers: &[ClassifierRef],
    settings: ExtractSettings,
    abort: &AtomicBool,
) -> Result<ObjectScan, ScanError> {
    let root = canonical_root(src)?;
    if !plain_key(key) {
        return Ok(skipped("object key escapes the data source root"));
    }
    if !src.hidden_files
        && Path::new(key)
            .components()
            .any(|c| is_hidden(c.as_os_str()))
    {
        return Ok(skipped("hidden file"));
    }
    let file = match beneath::open(&root, key) {
        Ok(f) => f,
        Err(Ok(refused)) => return Ok(skipped(refused.reason())),
        Err(Err(e)) => return Err(ScanError::Retryable(format!("cannot open {key}: {e}"))),
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let max = max_bytes(src, limit_mb);
    if size > max {
        return Ok(skipped(&format!(
            "larger than the {} MB limit",
            max / (1024 * 1024)
        )));
    }
    check(abort)?;
    extract::scan_file(file, key, object_id, max, classifiers, settings, abort)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_climb_out_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        assert!(root.is_dir());
        assert!(!plain_key("../etc/passwd"));
        assert!(!plain_key("/etc/passwd"));
        assert!(!plain_key("a/../../x"));
        assert!(!plain_key(""));
        assert!(plain_key("a/b.txt"));
    }

    #[test]
    fn symlinks_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "jane@example.com\n").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("link.txt"),
        )
        .unwrap();
        std::fs::write(dir.path().join("plain.txt"), "bob@example.com\n").unwrap();
        let src = FilesystemSource {
            id: "t".into(),
            description: String::new(),
            root: dir.path().to_owned(),
            include: vec!["**/*".into()],
            exclude: vec![],
            max_file_size_mb: 1,
            hidden_files: true,
        };
        let abort = AtomicBool::new(false);
        let mut seen = Vec::new();
        discover(
            &src,
            None,
            10,
            &mut |b| {
                seen.extend(b);
                true
            },
            &abort,
        )
        .unwrap();
        let link = seen.iter().find(|o| o.key == "link.txt").unwrap();
        assert_eq!(link.skipped_reason.as_deref(), Some("symlink not followed"));
        let cs = crate::classify::built_in();
        let settings = ExtractSettings::default();
        let scan = process(&src, "link.txt", 1, None, &cs, settings, &abort).unwrap();
        assert_eq!(scan.outcome, Some(ObjectOutcome::Skipped));
        assert!(scan.findings.is_empty());
        let scan = process(&src, "plain.txt", 2, None, &cs, settings, &abort).unwrap();
        assert_eq!(scan.findings.len(), 1);
    }

    #[test]
    fn globs_and_size_limit_apply() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub/.git")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "x").unwrap();
        std::fs::write(dir.path().join("b.log"), "x").unwrap();
        std::fs::write(dir.path().join("sub/c.txt"), "x").unwrap();
        std::fs::write(dir.path().join("sub/.git/d.txt"), "x").unwrap();
        std::fs::write(dir.path().join("big.txt"), vec![b'x'; 2 * 1024 * 1024]).unwrap();
        let src = FilesystemSource {
            id: "t".into(),
            description: String::new(),
            root: dir.path().to_owned(),
            include: vec!["**/*.txt".into()],
            exclude: vec!["**/.git/**".into()],
            max_file_size_mb: 1,
            hidden_files: true,
        };
        let mut seen = Vec::new();
        discover(
            &src,
            None,
            2,
            &mut |b| {
                assert!(b.len() <= 2);
                seen.extend(b);
                true
            },
            &AtomicBool::new(false),
        )
        .unwrap();
        let keys: Vec<&str> = seen.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a.txt", "big.txt", "sub/c.txt"]);
        assert!(seen[1].skipped_reason.as_deref().unwrap().contains("limit"));
    }

    #[test]
    fn hidden_files_follow_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".cache")).unwrap();
        std::fs::write(dir.path().join(".env"), "a@example.com").unwrap();
        std::fs::write(dir.path().join(".cache/x.txt"), "a@example.com").unwrap();
        std::fs::write(dir.path().join("plain.txt"), "a@example.com").unwrap();
        let mut src = FilesystemSource {
            id: "t".into(),
            description: String::new(),
            root: dir.path().to_owned(),
            include: vec!["**/*".into()],
            exclude: vec![],
            max_file_size_mb: 1,
            hidden_files: false,
        };
        let keys = |src: &FilesystemSource| {
            let mut seen = Vec::new();
            discover(
                src,
                None,
                10,
                &mut |b| {
                    seen.extend(b.into_iter().map(|o| o.key));
                    true
                },
                &AtomicBool::new(false),
            )
            .unwrap();
            seen
        };
        assert_eq!(keys(&src), ["plain.txt"]);
        let cs = crate::classify::built_in();
        let scan = process(
            &src,
            ".env",
            1,
            None,
            &cs,
            ExtractSettings::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(scan.reason.as_deref(), Some("hidden file"));
        src.hidden_files = true;
        assert_eq!(keys(&src), [".cache/x.txt", ".env", "plain.txt"]);
    }
}
