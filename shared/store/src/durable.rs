//! Making what sled writes durable, beyond sled's own `flush`.
//!
//! sled 0.34 makes only its `db` file durable on `flush` (and Keyplan adds the `fdatasync`
//! that makes it reach the medium, see [`crate::writer`]). Three things it leaves to chance:
//! - the **directory entries** of the files it creates (`db`, `conf`, `blobs/`, snapshots,
//!   blob files): after a power cut, a file whose name never reached the disk is gone, even
//!   if its contents were synced;
//! - **blob files** (`blobs/<lsn>`): any page larger than a quarter of sled's segment is
//!   written to a file of its own, without fsync;
//! - `conf`, written without fsync (Keyplan does not rely on it; see [`crate::settings`]).
//!
//! [`DirectoryWatch`] closes the first two after every flush: it fsyncs every blob file it
//! has not seen before, then each directory whose entries changed. Blobs still have a window
//! (sled may write the log message that points at a blob to the page cache, from where the
//! kernel can write it back, before Keyplan syncs the blob), so new logs are created with a
//! segment size for which no page Keyplan writes ever becomes a blob
//! ([`crate::settings::SEGMENT_SIZE`] with [`crate::layout::MAX_EVENT_BYTES`]); the watch is
//! what keeps logs created before that as safe as sled allows.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// fsyncs a directory, making the names created, renamed or removed in it durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `contents` so that after a power cut it holds either the old or the
/// new contents, never a mix or nothing: write a temporary file, fsync it, rename it over
/// `path`, fsync the directory.
pub(crate) fn write_file_durably(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// The names in a directory (empty if it does not exist).
fn names(dir: &Path) -> std::io::Result<HashSet<OsString>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

/// Tracks the entries of a sled data directory and its `blobs/` folder, and makes new ones
/// durable (see the module docs).
#[derive(Debug)]
pub(crate) struct DirectoryWatch {
    dir: PathBuf,
    blobs: PathBuf,
    dir_names: HashSet<OsString>,
    blob_names: HashSet<OsString>,
}

impl DirectoryWatch {
    /// Makes everything now in `dir` durable (files already there may never have been synced
    /// by sled: blobs, a fresh `conf`), then starts tracking changes.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        let blobs = dir.join("blobs");
        let mut watch = Self {
            dir: dir.to_owned(),
            blobs,
            dir_names: HashSet::new(),
            blob_names: HashSet::new(),
        };
        for name in names(&watch.blobs)? {
            sync_file(&watch.blobs.join(&name))?;
            watch.blob_names.insert(name);
        }
        if watch.blobs.is_dir() {
            sync_dir(&watch.blobs)?;
        }
        let conf = dir.join("conf");
        if conf.exists() {
            sync_file(&conf)?;
        }
        watch.dir_names = names(dir)?;
        sync_dir(dir)?;
        Ok(watch)
    }

    /// After a sled flush: fsyncs each blob file not seen before, then each directory whose
    /// names changed. Returns how many blob files were synced.
    pub fn sync_new_entries(&mut self) -> std::io::Result<usize> {
        let blob_names = names(&self.blobs)?;
        let mut synced = 0;
        for name in blob_names.difference(&self.blob_names) {
            match sync_file(&self.blobs.join(name)) {
                Ok(()) => synced += 1,
                // sled may remove a blob it no longer needs between our listing and the sync.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if blob_names != self.blob_names {
            sync_dir(&self.blobs)?;
            self.blob_names = blob_names;
        }
        let dir_names = names(&self.dir)?;
        if dir_names != self.dir_names {
            sync_dir(&self.dir)?;
            self.dir_names = dir_names;
        }
        Ok(synced)
    }

    /// How many blob files the data directory holds.
    pub fn blob_count(&self) -> usize {
        self.blob_names.len()
    }
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}
