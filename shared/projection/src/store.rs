//! The read models' database: where every projection keeps its state and its checkpoint.
//!
//! It is fjall (an LSM tree), not sled, for what `keyplan-bench --scenario storage-engines`
//! measured under a read model's workload (BENCHMARKS.md, "Which store for per-event
//! read-model detail"): a rebuild is a stream of bulk writes, which an LSM appends (3.4-5.9×
//! sled's load rate); lz4 keeps it near the payload on disk; and it reopens in a fraction of a
//! second where sled scans its segments (8-16 s at 10M entries). On a node at 1M events the
//! switch took the read models from 9× the log's payload on disk to 1.3-1.8×, and their
//! rebuild 1.6-2.1× faster ("Read models on fjall"). The event log stays on sled: it is the
//! source of truth, and these are derived data, rebuilt from it.
//!
//! The API is the small part of sled's that projections use (trees, batches applied
//! atomically), so that a projection's code says what it stores, not which engine stores it.
//!
//! What the runner relies on:
//! - a [`Batch`] is applied atomically: fjall writes it to its journal as one checksummed
//!   record, and recovery replays whole records up to the first damaged one, so a crash keeps
//!   a prefix of batches, never part of one;
//! - a batch is atomic against a crash, but not isolated from readers: fjall's reads see the
//!   newest version of a key, so a query on another thread may see some of a batch's keys
//!   (inserted in key order) before the rest while the runner applies it. A projection reads
//!   back from its tree only what an earlier, fully applied batch wrote, and serves what is
//!   still being applied from memory (`resident` waits for [`crate::Projection::committed`];
//!   the timeline skips index keys of entries it still holds);
//! - a batch reaches the operating system when it is applied (kill -9 loses nothing applied);
//!   [`ReadModelDb::persist`] makes it durable against a power cut, and a node calls it when it
//!   stops. A power cut can lose the last batches, which only means a projection resumes from
//!   an earlier checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::ProjectionError;

/// The read models' database's directory inside a node's data directory.
pub const READ_MODELS_DIR: &str = "read-models";

/// A stored value: cheap to clone, dereferences to bytes.
pub type Value = fjall::Slice;

/// Most bytes one tree's write buffer (memtable) holds before it is written out. fjall's
/// default is 64 MiB per tree; a node has four read-model trees, and what sits in the write
/// buffers is memory that grows with the write rate, not with what queries need.
const TREE_WRITE_BUFFER: u64 = 16 * 1024 * 1024;

/// Most bytes of journal kept on disk (fjall's minimum; its default is 512 MiB). A journal file
/// goes once every tree has written out what it holds of it, so trees written rarely (the
/// runner's generations, a read model that sees few events) can keep journal files up to the
/// limit: disk, and a replay at every start. The limit makes fjall write those trees out
/// instead. (At 1M events the node's figures were within noise either way.)
const JOURNAL_LIMIT: u64 = 64 * 1024 * 1024;

/// Tables in a tree's first level before fjall merges them into the next (its default: 4).
/// A read model's batches span all accounts' keys, so every first-level table overlaps most
/// of the next level, and each merge rewrites most of the tree: merging every 16 write-buffer
/// flushes instead of every 4 cuts a rebuild's CPU per event (BENCHMARKS.md, "fewer merges").
/// A range read merges up to this many more tables. fjall slows writes from 20 first-level
/// tables and halts them at 30 (a rebuild then waits for ever if merges only start above
/// that), so this stays well below 20.
const L0_TABLES: u8 = 16;

/// fjall's background threads (memtable flushes and compactions). Its default is one per core
/// up to four; with two or more, worker 0 hands every compaction request back to the queue so
/// as to stay free for flushes, and while the other workers are busy compacting it takes the
/// same request again at once: a busy loop for as long as a compaction runs (`worker_tick` and
/// the queue's `send` near the top of a rebuild's profile, BENCHMARKS.md). One worker flushes
/// and compacts in turn and never spins.
const WORKER_THREADS: usize = 1;

/// The read models' database (one directory).
#[derive(Clone)]
pub struct ReadModelDb {
    db: fjall::Database,
}

impl std::fmt::Debug for ReadModelDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModelDb").finish_non_exhaustive()
    }
}

impl ReadModelDb {
    /// Opens (or creates) the database in `path`, with a block cache of `cache_bytes`.
    pub fn open(path: impl AsRef<Path>, cache_bytes: u64) -> Result<Self, ProjectionError> {
        Ok(Self {
            db: fjall::Database::builder(path.as_ref())
                .cache_size(cache_bytes)
                .max_journaling_size(JOURNAL_LIMIT)
                .worker_threads(WORKER_THREADS)
                .open()?,
        })
    }

    /// A database in a new directory under the system's temporary directory, removed when the
    /// last handle is dropped (tests, benchmarks).
    pub fn temporary() -> Result<Self, ProjectionError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path: PathBuf = std::env::temp_dir().join(format!(
            "keyplan-read-models-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        Ok(Self {
            db: fjall::Database::builder(path)
                .cache_size(8 * 1024 * 1024)
                .worker_threads(WORKER_THREADS)
                .temporary(true)
                .open()?,
        })
    }

    /// The tree called `name`, created empty if there is none.
    pub fn open_tree(&self, name: &str) -> Result<Tree, ProjectionError> {
        let keyspace = self.db.keyspace(name, || {
            let leveled = fjall::compaction::Leveled::default().with_l0_threshold(L0_TABLES);
            fjall::KeyspaceCreateOptions::default()
                .compaction_strategy(Arc::new(leveled))
                .max_memtable_size(TREE_WRITE_BUFFER)
                // fjall compresses only from its third level down by default; read models
                // are text-heavy (summaries, notes) and mostly sit in the first levels.
                .data_block_compression_policy(fjall::config::CompressionPolicy::all(
                    fjall::CompressionType::Lz4,
                ))
        })?;
        Ok(Tree {
            db: self.db.clone(),
            keyspace,
        })
    }

    /// Removes the tree called `name` and everything in it (nothing if there is none). Its
    /// files go once the last handle to it is dropped.
    pub fn drop_tree(&self, name: &str) -> Result<(), ProjectionError> {
        if self.db.keyspace_exists(name) {
            let tree = self.open_tree(name)?;
            self.db.delete_keyspace(tree.keyspace)?;
        }
        Ok(())
    }

    /// Makes every applied batch durable (fsync): a node calls it when it stops.
    pub fn persist(&self) -> Result<(), ProjectionError> {
        Ok(self.db.persist(fjall::PersistMode::SyncAll)?)
    }
}

/// An ordered map of byte keys to byte values in a [`ReadModelDb`].
#[derive(Clone)]
pub struct Tree {
    db: fjall::Database,
    keyspace: fjall::Keyspace,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl Tree {
    /// The tree's name.
    pub fn name(&self) -> String {
        self.keyspace.name().to_string()
    }

    /// The value under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>, ProjectionError> {
        Ok(self.keyspace.get(key)?)
    }

    /// Every entry, in key order, as of when the iteration starts.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = Result<(Value, Value), ProjectionError>> + '_ {
        self.keyspace
            .iter()
            .map(|guard| guard.into_inner().map_err(ProjectionError::from))
    }

    /// The entries whose key starts with `prefix`, in key order (or reversed, with `rev`).
    pub fn scan_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> impl DoubleEndedIterator<Item = Result<(Value, Value), ProjectionError>> + '_ {
        self.keyspace
            .prefix(prefix)
            .map(|guard| guard.into_inner().map_err(ProjectionError::from))
    }

    /// The entries with `from <= key < to`, in key order (or reversed, with `rev`): a page
    /// of a per-account index read from either end.
    pub fn range(
        &self,
        from: impl AsRef<[u8]>,
        to: impl AsRef<[u8]>,
    ) -> impl DoubleEndedIterator<Item = Result<(Value, Value), ProjectionError>> + '_ {
        self.keyspace
            .range(from.as_ref().to_vec()..to.as_ref().to_vec())
            .map(|guard| guard.into_inner().map_err(ProjectionError::from))
    }

    /// How many entries there are: a scan of the whole tree (tests and tools).
    pub fn count(&self) -> Result<usize, ProjectionError> {
        Ok(self.keyspace.len()?)
    }

    /// Writes one entry (on its own: what must commit together goes in one [`Batch`]).
    pub fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), ProjectionError> {
        Ok(self.keyspace.insert(key.as_ref(), value.as_ref())?)
    }

    /// Removes one entry (on its own, as [`Self::insert`]).
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), ProjectionError> {
        Ok(self.keyspace.remove(key.as_ref())?)
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<(), ProjectionError> {
        Ok(self.keyspace.clear()?)
    }

    /// Applies `batch` atomically: after a crash, all of it or none of it is there.
    pub fn apply_batch(&self, batch: Batch) -> Result<(), ProjectionError> {
        if batch.writes.is_empty() {
            return Ok(());
        }
        let mut writes = self.db.batch();
        for (key, value) in batch.writes {
            match value {
                Some(value) => writes.insert(&self.keyspace, key, value),
                None => writes.remove(&self.keyspace, key),
            }
        }
        Ok(writes.commit()?)
    }
}

/// Writes to apply together ([`Tree::apply_batch`]). A later write to a key replaces an
/// earlier one in the same batch.
#[derive(Debug, Default)]
pub struct Batch {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Batch {
    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), Some(value.into()));
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), None);
    }

    /// How many keys the batch writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_batch_is_applied_whole_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = ReadModelDb::open(dir.path(), 1 << 20).unwrap();
            let tree = db.open_tree("model").unwrap();
            let mut batch = Batch::default();
            batch.insert(b"a/1".as_slice(), b"one".as_slice());
            batch.insert(b"a/2".as_slice(), b"two".as_slice());
            batch.insert(b"b/1".as_slice(), b"other".as_slice());
            batch.insert(b"a/2".as_slice(), b"two, later".as_slice());
            assert_eq!(batch.len(), 3);
            tree.apply_batch(batch).unwrap();
            let mut removal = Batch::default();
            removal.remove(b"b/1".as_slice());
            tree.apply_batch(removal).unwrap();
            db.persist().unwrap();
        }
        let db = ReadModelDb::open(dir.path(), 1 << 20).unwrap();
        let tree = db.open_tree("model").unwrap();
        let all: Vec<(Vec<u8>, Vec<u8>)> = tree
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            all,
            vec![
                (b"a/1".to_vec(), b"one".to_vec()),
                (b"a/2".to_vec(), b"two, later".to_vec()),
            ]
        );
        assert_eq!(tree.scan_prefix("b/").count(), 0);
        assert_eq!(tree.get("a/1").unwrap().as_deref(), Some(b"one".as_slice()));
    }

    #[test]
    fn a_dropped_tree_reopens_empty() {
        let db = ReadModelDb::temporary().unwrap();
        let tree = db.open_tree("model@1").unwrap();
        tree.insert("k", "v").unwrap();
        drop(tree);
        db.drop_tree("model@1").unwrap();
        db.drop_tree("never-made").unwrap();
        assert!(db.open_tree("model@1").unwrap().get("k").unwrap().is_none());
    }
}
