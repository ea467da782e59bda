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

    /// Reads every tree as it was at one instant, while the runners go on writing, and hands
    /// it to `sink` in pieces of about `piece_bytes` (each tree in key order). The instant is
    /// a fjall snapshot: it holds whole batches only, and a runner commits a projection's
    /// state with its checkpoint in one batch, so each projection's piece is its state at its
    /// own checkpoint, exactly what a crash would have left. A database [`Self::import`]s it
    /// and a node started on that resumes each projection from there (the snapshot a running
    /// replica serves to a new one). Stops at the first error of `sink`.
    pub fn export(
        &self,
        piece_bytes: usize,
        mut sink: impl FnMut(SnapshotPiece) -> Result<(), ProjectionError>,
    ) -> Result<SnapshotSize, ProjectionError> {
        let mut names: Vec<String> = self
            .db
            .list_keyspace_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        names.sort();
        // The trees' handles before the instant: a tree a finished rebuild drops meanwhile
        // stays readable through its handle (its files go with the last one).
        let trees = names
            .iter()
            .map(|name| self.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        let snapshot = self.db.snapshot();
        let mut size = SnapshotSize::default();
        for (name, tree) in names.into_iter().zip(trees) {
            let mut piece = SnapshotPiece {
                tree: name.clone(),
                entries: Vec::new(),
            };
            let (mut bytes, mut sent) = (0, false);
            for guard in fjall::Readable::iter(&snapshot, &tree.keyspace) {
                let (key, value) = guard.into_inner()?;
                bytes += key.len() + value.len();
                size.entries += 1;
                size.bytes += (key.len() + value.len()) as u64;
                piece.entries.push((key.to_vec(), value.to_vec()));
                if bytes >= piece_bytes {
                    let next = SnapshotPiece {
                        tree: name.clone(),
                        entries: Vec::new(),
                    };
                    sink(std::mem::replace(&mut piece, next))?;
                    (bytes, sent) = (0, true);
                }
            }
            // An empty tree is sent too: it exists in the copy as in the original.
            if !piece.entries.is_empty() || !sent {
                sink(piece)?;
            }
            size.trees += 1;
        }
        Ok(size)
    }

    /// Whether the database holds no tree at all (a new one).
    pub fn is_empty(&self) -> bool {
        self.db.keyspace_count() == 0
    }

    /// Writes one tree of an [`Self::export`]ed snapshot, `entries` in ascending key order,
    /// as tables (fjall's bulk ingestion: far faster than batches); returns how many. The
    /// tree must be new or empty; entries out of order are refused, not written. Call
    /// [`Self::persist`] after the last tree.
    pub fn import_tree(
        &self,
        name: &str,
        entries: impl Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<u64, ProjectionError> {
        let tree = self.open_tree(name)?;
        if tree.keyspace.first_key_value().is_some() {
            return Err(ProjectionError::Corrupt {
                name: name.to_owned(),
                reason: "a snapshot names this tree twice".into(),
            });
        }
        let mut ingestion = tree.keyspace.start_ingestion()?;
        let mut last: Option<Vec<u8>> = None;
        let mut written = 0;
        for (key, value) in entries {
            if last.as_ref().is_some_and(|last| key <= *last) {
                return Err(ProjectionError::Corrupt {
                    name: name.to_owned(),
                    reason: "the snapshot's keys are not in ascending order".into(),
                });
            }
            ingestion.write(key.clone(), value)?;
            last = Some(key);
            written += 1;
        }
        ingestion.finish()?;
        Ok(written)
    }
}

/// Part of one tree of a read models' snapshot ([`ReadModelDb::export`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotPiece {
    /// The tree.
    pub tree: String,
    /// Its entries (key, value), in key order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// How much a snapshot held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotSize {
    /// Trees.
    pub trees: u64,
    /// Entries in all trees.
    pub entries: u64,
    /// Their keys' and values' bytes.
    pub bytes: u64,
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
    fn a_snapshot_taken_while_batches_are_applied_holds_whole_batches_and_imports_whole() {
        let db = ReadModelDb::temporary().unwrap();
        db.open_tree("empty").unwrap();
        let tree = db.open_tree("model").unwrap();
        let other = db.open_tree("other").unwrap();
        for i in 0..500u32 {
            other.insert(format!("k{i:04}"), vec![b'x'; 100]).unwrap();
        }
        // Each batch writes the same number under two keys: a snapshot that split one would
        // see them differ.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (tree, stop) = (tree.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let mut batch = Batch::default();
                    batch.insert("a", n.to_be_bytes());
                    batch.insert("z", n.to_be_bytes());
                    tree.apply_batch(batch).unwrap();
                }
                n
            })
        };
        let mut seen = Vec::new();
        for _ in 0..5 {
            let copy = ReadModelDb::temporary().unwrap();
            assert!(copy.is_empty());
            let mut pieces = Vec::new();
            let size = db
                .export(4096, |piece| {
                    pieces.push(piece);
                    Ok(())
                })
                .unwrap();
            assert_eq!(size.trees, 3);
            assert!(pieces.len() > 3, "{} pieces of about 4 KiB", pieces.len());
            // A tree's pieces come one after the other.
            let mut trees: Vec<String> = pieces.iter().map(|p| p.tree.clone()).collect();
            trees.dedup();
            assert_eq!(trees, ["empty", "model", "other"]);
            for tree in trees {
                let entries = pieces
                    .iter()
                    .filter(|p| p.tree == tree)
                    .flat_map(|p| p.entries.clone());
                copy.import_tree(&tree, entries).unwrap();
            }
            let model = copy.open_tree("model").unwrap();
            let (a, z) = (model.get("a").unwrap(), model.get("z").unwrap());
            assert_eq!(a, z, "one batch, whole");
            seen.push(a);
            assert_eq!(copy.open_tree("other").unwrap().count().unwrap(), 500);
            assert_eq!(copy.open_tree("empty").unwrap().count().unwrap(), 0);
            assert!(!copy.is_empty());
        }
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(written > 0 && seen.iter().all(Option::is_some));
        // A tree twice, or keys out of order, are refused.
        let copy = ReadModelDb::temporary().unwrap();
        let entry = |k: &str| (k.as_bytes().to_vec(), b"v".to_vec());
        copy.import_tree("t", [entry("a")].into_iter()).unwrap();
        let twice = copy.import_tree("t", [entry("b")].into_iter()).unwrap_err();
        assert!(twice.to_string().contains("twice"), "{twice}");
        let unordered = copy
            .import_tree("u", [entry("b"), entry("a")].into_iter())
            .unwrap_err();
        assert!(unordered.to_string().contains("ascending"), "{unordered}");
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
