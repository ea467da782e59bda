//! Where streams' snapshots live: one file per stream in `stream-snapshots/` inside the data
//! directory, beside sled's files, not in the log's sled database.
//!
//! A snapshot is derived data (opaque bytes to the store: the repository's folded account
//! state), rewritten whole by a cache miss every few dozen events of an account that keeps
//! missing, and read whole at every such miss. In a sled tree of the log's database it was
//! read back through sled's page cache (a pull from the segment and a zstd decompression of
//! the whole value: most of the server's CPU on a miss-heavy load, see BENCHMARKS.md), and its
//! rewrites churned the log's segments. A file is one `read` from the operating system's page
//! cache and one `write` and `rename`.
//!
//! Files are never fsynced: a crash may lose a snapshot or leave a torn one. Each file
//! therefore carries the stream it belongs to and a CRC-32 of its content, and one that does
//! not check (torn, truncated, another stream's, another format) reads as absent: the
//! repository then replays the stream, and saves a new one. A CRC, not a cryptographic hash:
//! it guards against accidents, not an adversary (whoever can write the data directory can
//! write the log), and SHA-256 of every snapshot read was a quarter of the server's CPU on a
//! miss-heavy load. The repository still checks the snapshot against the log.
//!
//! Replacing a file is written by one background thread ([`Snapshots::put_later`]), not by
//! the caller. Why: the `rename` that replaces a snapshot frees the old file's blocks, and on
//! a file system mounted with `discard` that waits for the device (`blkdev_issue_discard`);
//! done by a cache miss, it stopped a runtime worker thread, and every request queued behind
//! it (the off-CPU profile in BENCHMARKS.md). A snapshot waiting to be written is read from
//! memory, so that the next miss starts from it rather than from the older file (and does
//! not replay enough to save yet another one); a newer one for the same stream replaces it
//! in the queue. The queue is bounded: when it is full a snapshot is skipped, which only means
//! a later miss replays more.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::StreamId;

/// The directory inside the data directory.
pub(crate) const DIRECTORY: &str = "stream-snapshots";

/// First bytes of every snapshot file (and its format).
const MAGIC: &[u8; 8] = b"kpsnap2\n";

/// Snapshots waiting for the background writer at most: a few megabytes of states.
const QUEUED: usize = 32;

/// The snapshots of one store.
#[derive(Debug)]
pub(crate) struct Snapshots {
    files: Arc<Files>,
    /// Jobs for the background writer; `None` once dropped, which ends it.
    queue: Option<SyncSender<Job>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The directory, shared with the background writer.
#[derive(Debug)]
struct Files {
    directory: PathBuf,
    /// Makes temporary file names unique within the process.
    temporaries: AtomicU64,
    /// The snapshots waiting for the background writer, by file: what `get` answers first.
    waiting: Mutex<HashMap<PathBuf, Waiting>>,
}

/// A snapshot file waiting to be written.
#[derive(Debug, Clone)]
struct Waiting {
    /// Shared with the writer while it writes, which tells by `Arc::ptr_eq` whether a newer
    /// snapshot replaced it meanwhile.
    file: Arc<Vec<u8>>,
    /// Where the content starts in `file`.
    content: usize,
}

/// What the background writer is asked to do.
enum Job {
    /// Write the snapshot waiting for this file (if it still is).
    Write(PathBuf),
    /// Answer once every job queued before this one is done.
    Flush(mpsc::Sender<()>),
}

impl Snapshots {
    /// The snapshots under `data_directory` (created if missing). Temporary files left by a
    /// crash are removed.
    pub(crate) fn open(data_directory: &Path) -> std::io::Result<Self> {
        let directory = data_directory.join(DIRECTORY);
        std::fs::create_dir_all(&directory)?;
        for entry in std::fs::read_dir(&directory)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                std::fs::remove_file(&path)?;
            }
        }
        let files = Arc::new(Files {
            directory,
            temporaries: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
        });
        let (queue, jobs) = mpsc::sync_channel(QUEUED);
        let writer = std::thread::Builder::new()
            .name("keyplan-snapshots".into())
            .spawn({
                let files = Arc::clone(&files);
                move || files.write_queued(&jobs)
            })?;
        Ok(Self {
            files,
            queue: Some(queue),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The stream's identity as written in its file.
    fn key(stream: &StreamId) -> String {
        format!("{}/{}", stream.tenant, stream.stream)
    }

    /// The stream's file: named by a digest of its key, since stream ids may hold characters
    /// a file name may not (the key inside the file settles any collision).
    fn path(&self, key: &str) -> PathBuf {
        self.files.path(key)
    }

    /// The content of `stream`'s snapshot, if it has one that checks.
    pub(crate) fn get(&self, stream: &StreamId) -> std::io::Result<Option<Vec<u8>>> {
        let key = Self::key(stream);
        let path = self.path(&key);
        if let Some(waiting) = self.files.waiting().get(&path) {
            return Ok(waiting.file.get(waiting.content..).map(<[u8]>::to_vec));
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(start) = parse(&bytes, &key) else {
            return Ok(None);
        };
        let mut bytes = bytes;
        bytes.drain(..start);
        Ok(Some(bytes))
    }

    /// Replaces `stream`'s snapshot with `content`: written to a temporary file, then renamed
    /// over the old one, so that a reader sees the old or the new file, whole.
    pub(crate) fn put(&self, stream: &StreamId, content: &[u8]) -> std::io::Result<()> {
        let key = Self::key(stream);
        let path = self.path(&key);
        self.files.waiting().remove(&path);
        self.files.replace(&path, &file(&key, content)?)
    }

    /// Like [`Snapshots::put`], but written by the background thread (see the module docs):
    /// `false` if it was skipped because the queue is full or the writer has stopped.
    pub(crate) fn put_later(&self, stream: &StreamId, content: &[u8]) -> bool {
        let key = Self::key(stream);
        let (path, Ok(file)) = (self.path(&key), file(&key, content)) else {
            return false;
        };
        let Some(queue) = &self.queue else {
            return false;
        };
        let snapshot = Waiting {
            content: file.len() - content.len(),
            file: Arc::new(file),
        };
        let mut waiting = self.files.waiting();
        if let Some(queued) = waiting.get_mut(&path) {
            // Its job is queued or running, and writes whatever waits when it gets there.
            *queued = snapshot;
            return true;
        }
        if waiting.len() >= QUEUED {
            return false;
        }
        waiting.insert(path.clone(), snapshot);
        if queue.try_send(Job::Write(path.clone())).is_err() {
            waiting.remove(&path);
            return false;
        }
        true
    }

    /// Waits until every snapshot queued by [`Snapshots::put_later`] before this call is
    /// written (or has failed, which is logged).
    pub(crate) fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if let Some(queue) = &self.queue {
            if queue.send(Job::Flush(done)).is_ok() {
                let _ = wait.recv();
            }
        }
    }

    /// Forgets `stream`'s snapshot, a waiting one included.
    pub(crate) fn remove(&self, stream: &StreamId) -> std::io::Result<()> {
        let path = self.path(&Self::key(stream));
        self.files.waiting().remove(&path);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The content of a snapshot file of `key`, if the file checks.
fn parse(file: &[u8], key: &str) -> Option<usize> {
    let rest = file.strip_prefix(MAGIC)?;
    let (key_len, rest) = rest.split_first_chunk::<4>()?;
    let key_len = usize::try_from(u32::from_be_bytes(*key_len)).ok()?;
    let (stored_key, rest) = rest.split_at_checked(key_len)?;
    let (crc, content) = rest.split_first_chunk::<4>()?;
    (stored_key == key.as_bytes() && crc32fast::hash(content) == u32::from_be_bytes(*crc))
        .then_some(file.len() - content.len())
}

/// The file holding `content` as `key`'s snapshot.
fn file(key: &str, content: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut file = Vec::with_capacity(MAGIC.len() + 4 + key.len() + 4 + content.len());
    file.extend_from_slice(MAGIC);
    let key_len = u32::try_from(key.len()).map_err(|_| ErrorKind::InvalidInput)?;
    file.extend_from_slice(&key_len.to_be_bytes());
    file.extend_from_slice(key.as_bytes());
    file.extend_from_slice(&crc32fast::hash(content).to_be_bytes());
    file.extend_from_slice(content);
    Ok(file)
}

impl Files {
    fn path(&self, key: &str) -> PathBuf {
        let digest = Sha256::digest(key.as_bytes());
        self.directory.join(hex::encode(&digest[..16]))
    }

    /// Writes `file` to a temporary file and renames it over `path`.
    fn replace(&self, path: &Path, file: &[u8]) -> std::io::Result<()> {
        let n = self.temporaries.fetch_add(1, Ordering::Relaxed);
        let temporary = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
        std::fs::write(&temporary, file)?;
        std::fs::rename(&temporary, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
    }

    fn waiting(&self) -> MutexGuard<'_, HashMap<PathBuf, Waiting>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The background writer: runs the jobs in order until every sender is gone.
    fn write_queued(&self, jobs: &Receiver<Job>) {
        for job in jobs {
            match job {
                Job::Write(path) => self.write_waiting(&path),
                Job::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Writes the snapshot waiting for `path`, again if a newer one replaced it meanwhile,
    /// and stops waiting for it once the file holds the newest.
    fn write_waiting(&self, path: &Path) {
        loop {
            // Its own statement: the guard must not live through the write.
            let snapshot = self.waiting().get(path).cloned();
            let Some(snapshot) = snapshot else {
                return;
            };
            if let Err(error) = self.replace(path, &snapshot.file) {
                tracing::warn!(path = %path.display(), %error, "could not save a snapshot");
            }
            let mut waiting = self.waiting();
            if waiting
                .get(path)
                .is_none_or(|w| Arc::ptr_eq(&w.file, &snapshot.file))
            {
                waiting.remove(path);
                return;
            }
        }
    }
}

/// Lets the background writer finish what was queued, so that a store reopened in the same
/// process finds it.
impl Drop for Snapshots {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stream(account: &str) -> StreamId {
        StreamId::new("acme", account)
    }

    #[test]
    fn a_snapshot_reads_back_until_replaced_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::open(dir.path()).unwrap();
        assert_eq!(snapshots.get(&stream("a")).unwrap(), None);
        snapshots.put(&stream("a"), b"first").unwrap();
        snapshots.put(&stream("b"), b"other").unwrap();
        assert_eq!(
            snapshots.get(&stream("a")).unwrap().as_deref(),
            Some(&b"first"[..])
        );
        snapshots.put(&stream("a"), b"second").unwrap();
        assert_eq!(
            snapshots.get(&stream("a")).unwrap().as_deref(),
            Some(&b"second"[..])
        );
        snapshots.remove(&stream("a")).unwrap();
        snapshots.remove(&stream("a")).unwrap();
        assert_eq!(snapshots.get(&stream("a")).unwrap(), None);
        assert_eq!(
            snapshots.get(&stream("b")).unwrap().as_deref(),
            Some(&b"other"[..])
        );
        let reopened = Snapshots::open(dir.path()).unwrap();
        assert_eq!(
            reopened.get(&stream("b")).unwrap().as_deref(),
            Some(&b"other"[..])
        );
    }

    #[test]
    fn snapshots_queued_for_the_background_writer_land_in_order_by_a_flush_or_a_close() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::open(dir.path()).unwrap();
        snapshots.put(&stream("a"), b"written now").unwrap();
        assert!(snapshots.put_later(&stream("a"), b"queued first"));
        assert!(snapshots.put_later(&stream("a"), b"queued last"));
        assert_eq!(
            snapshots.get(&stream("a")).unwrap().as_deref(),
            Some(&b"queued last"[..]),
            "a queued snapshot reads back before it is written"
        );
        snapshots.flush();
        assert_eq!(
            snapshots.get(&stream("a")).unwrap().as_deref(),
            Some(&b"queued last"[..]),
            "the later of two queued snapshots wins"
        );
        for n in 0..QUEUED / 2 {
            let _ = snapshots.put_later(&stream(&format!("s{n}")), b"state");
        }
        assert!(snapshots.put_later(&stream("b"), b"queued before the close"));
        drop(snapshots);
        let reopened = Snapshots::open(dir.path()).unwrap();
        assert_eq!(
            reopened.get(&stream("b")).unwrap().as_deref(),
            Some(&b"queued before the close"[..]),
            "closing writes what was queued"
        );
        let files = std::fs::read_dir(dir.path().join(DIRECTORY))
            .unwrap()
            .count();
        assert_eq!(files, 2 + QUEUED / 2, "no temporary file is left");
    }

    #[test]
    fn a_file_that_does_not_check_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::open(dir.path()).unwrap();
        snapshots.put(&stream("a"), b"the folded state").unwrap();
        let path = snapshots.path(&Snapshots::key(&stream("a")));
        let good = std::fs::read(&path).unwrap();

        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let torn = good[..good.len() - 3].to_vec();
        let mut wrong_magic = good.clone();
        wrong_magic[0] = b'x';
        // Another stream's file under this stream's name.
        snapshots.put(&stream("b"), b"the folded state").unwrap();
        let elsewhere = std::fs::read(snapshots.path(&Snapshots::key(&stream("b")))).unwrap();
        for (n, bad) in [flipped, torn, wrong_magic, elsewhere, Vec::new()]
            .into_iter()
            .enumerate()
        {
            std::fs::write(&path, bad).unwrap();
            assert_eq!(snapshots.get(&stream("a")).unwrap(), None, "case {n}");
        }
    }

    #[test]
    fn temporary_files_left_by_a_crash_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::open(dir.path()).unwrap();
        snapshots.put(&stream("a"), b"kept").unwrap();
        let left = dir.path().join(DIRECTORY).join("0123.77-0.tmp");
        std::fs::write(&left, b"half a snap").unwrap();
        let reopened = Snapshots::open(dir.path()).unwrap();
        assert!(!left.exists());
        assert_eq!(
            reopened.get(&stream("a")).unwrap().as_deref(),
            Some(&b"kept"[..])
        );
    }
}
