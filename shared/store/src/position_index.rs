//! Where each event id and each stream version sits in the log: derived data kept on disk in
//! fjall, beside sled's files, so that the store's memory does not grow with the log.
//!
//! The store once kept these two maps in memory, rebuilt from the log at every open: about
//! 40 bytes per event for the event ids and 8 for the streams' positions, which made the node's
//! memory grow with every event (hundreds of MiB at 10M events) and its open with the log.
//! Both are lookups by key that an LSM tree answers from disk: an entry per event id, and an
//! entry per run of a stream's versions at consecutive positions (an append's events), which
//! a read of versions finds as the last run starting at or before the first one it wants. An
//! append's check of its event ids is a miss almost every time, which fjall's bloom filters
//! answer without reading a table (or which the writer skips, for ids that sort after every
//! stored one).
//!
//! **Derived, never a source of truth.** A commit still writes only log records; the writer
//! adds a batch's entries here after the batch is durable, without a disk sync. What was
//! indexed is recorded as a *mark*: a position and the hash of the log's event there, written
//! only after every entry up to it is in durable tables ([`PositionIndex::sync_and_mark`]). At
//! open the store checks the mark against the log (the event at that position must have that
//! hash) and indexes everything after it again from the log (re-writing an entry is harmless:
//! same key, same value). A mark that does not fit the log (a log restored or replaced), a
//! directory fjall cannot open (damage), or a read that fails, each make the store start the
//! index afresh from the log. The callers check every hit against the log: an event id's
//! position must hold that id, a stream version's position that version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::StoreError;
use crate::layout::HASH_LEN;
use crate::record::StreamId;

/// The index's directory inside the store's data directory.
pub const POSITION_INDEX_DIR: &str = "position-index";

/// Entries written between two syncs of the index (and marks): what a start after a crash
/// indexes again at most.
pub(crate) const SYNC_EVERY: u64 = 65_536;

/// Events added at a time while the index catches up with the log at open.
pub(crate) const CATCH_UP_BATCH: usize = 16_384;

/// Events whose entries wait in memory (see [`Pending`]) before they are written out as
/// tables, when no mark comes first: bounds that memory (a few MiB) during a re-index.
const PENDING_EVENTS: usize = 65_536;

/// fjall's write buffer per keyspace. Entries reach the keyspaces as tables (see
/// [`Pending`]); only removals at open and the mark go through fjall's journal and buffers.
const WRITE_BUFFER: u64 = 8 * 1024 * 1024;

/// fjall's block cache for the index: stream reads look positions up here; event-id checks
/// mostly stop at the bloom filters.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The key of the mark in the `meta` keyspace.
const MARK_KEY: &[u8] = b"indexed";

/// Consecutive events of one stream at consecutive positions (an append's, usually): one
/// entry for their versions, one per event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexedRun {
    pub stream: StreamId,
    pub first_version: u64,
    pub first_position: u64,
    pub event_ids: Vec<Uuid>,
}

impl IndexedRun {
    /// Adds the event at (`version`, `position`) of `stream` to the run if it continues it;
    /// `false` if it does not.
    pub fn extend(&mut self, stream: &StreamId, version: u64, position: u64, id: Uuid) -> bool {
        let next = self.event_ids.len() as u64;
        if self.stream != *stream
            || self.first_version + next != version
            || self.first_position + next != position
        {
            return false;
        }
        self.event_ids.push(id);
        true
    }
}

/// What [`PositionIndex::mark`] records: every event up to `position` is indexed durably,
/// and the log's event at `position` has `hash` (position 0: nothing indexed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub position: u64,
    pub hash: [u8; HASH_LEN],
}

/// Entries added since the last write-out, kept in memory in key order and written to fjall
/// as tables (its ingestion) rather than through its journal and write buffers.
///
/// Why: fjall's open replays its journal entry by entry, with two `lseek`s for each (its
/// reader asks the file for its position), and the journal keeps up to 64 MB. With an entry
/// per event id, a start at 1M events spent about a second there, whether or not the entries
/// had reached tables. Entries written as tables leave nothing to replay, and a start after a
/// crash indexes again from the log what was only in memory (at most what the last mark did
/// not cover), as it would after losing a journal's unsynced tail.
#[derive(Default)]
struct Pending {
    event_ids: BTreeMap<[u8; 16], u64>,
    versions: BTreeMap<Vec<u8>, [u8; 16]>,
}

/// The index (one fjall database).
pub(crate) struct PositionIndex {
    path: PathBuf,
    db: fjall::Database,
    event_ids: fjall::Keyspace,
    versions: fjall::Keyspace,
    meta: fjall::Keyspace,
    pending: RwLock<Pending>,
}

impl std::fmt::Debug for PositionIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionIndex")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PositionIndex {
    /// Opens the index in `dir`, or starts it afresh (empty, no mark) when fjall cannot open
    /// what is there: the index is derived, so damage to it costs a re-index, never data.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        match Self::try_open(dir) {
            Ok(index) => Ok(index),
            Err(Unopenable::Locked(e)) => Err(e),
            Err(Unopenable::Damaged(reason)) => {
                tracing::warn!(
                    dir = %dir.display(),
                    %reason,
                    "the position index cannot be opened; it is rebuilt from the log"
                );
                remove_dir(dir)?;
                Self::try_open(dir).map_err(|e| match e {
                    Unopenable::Locked(e) => e,
                    Unopenable::Damaged(reason) => index_error(format!(
                        "cannot create the position index in {}: {reason}",
                        dir.display()
                    )),
                })
            }
        }
    }

    fn try_open(dir: &Path) -> Result<Self, Unopenable> {
        // The store holds sled's lock on the data directory, so a lock held here is an
        // instance of this process that is still shutting down: wait for it a little.
        if let Err(reason) = check_versions(dir) {
            return Err(Unopenable::Damaged(reason));
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let opened = std::panic::catch_unwind(|| Self::open_db(dir));
            match opened {
                Ok(Ok(index)) => return Ok(index),
                Ok(Err(fjall::Error::Locked)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(Err(fjall::Error::Locked)) => {
                    return Err(Unopenable::Locked(index_error(format!(
                        "{} is locked by another process",
                        dir.display()
                    ))))
                }
                Ok(Err(e)) => return Err(Unopenable::Damaged(e.to_string())),
                Err(_) => return Err(Unopenable::Damaged("fjall panicked while opening".into())),
            }
        }
    }

    fn open_db(dir: &Path) -> Result<Self, fjall::Error> {
        let db = fjall::Database::builder(dir)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(64 * 1024 * 1024)
            .worker_threads(1)
            .open()?;
        let options = || {
            fjall::KeyspaceCreateOptions::default()
                .max_memtable_size(WRITE_BUFFER)
                .expect_point_read_hits(false)
                // fjall compresses only from its third level down by default; a stream's
                // version keys repeat its name and its positions their high bytes.
                .data_block_compression_policy(fjall::config::CompressionPolicy::all(
                    fjall::CompressionType::Lz4,
                ))
        };
        Ok(Self {
            path: dir.to_owned(),
            event_ids: db.keyspace("event-ids", options)?,
            versions: db.keyspace("stream-versions", options)?,
            meta: db.keyspace("meta", fjall::KeyspaceCreateOptions::default)?,
            db,
            pending: RwLock::default(),
        })
    }

    fn pending(&self) -> Result<std::sync::RwLockReadGuard<'_, Pending>, StoreError> {
        self.pending
            .read()
            .map_err(|_| index_error("its lock is poisoned".into()))
    }

    fn pending_mut(&self) -> Result<std::sync::RwLockWriteGuard<'_, Pending>, StoreError> {
        self.pending
            .write()
            .map_err(|_| index_error("its lock is poisoned".into()))
    }

    /// Writes the pending entries to fjall as one table per keyspace (durable when this
    /// returns: fjall syncs ingested tables and its version file), then drops them from memory.
    /// Lookups see them in memory until then, and in both places for a moment (same values).
    /// One thread adds entries (the open, then the writer), so none arrive in between.
    fn write_out(&self) -> Result<(), StoreError> {
        {
            let pending = self.pending()?;
            if pending.event_ids.is_empty() && pending.versions.is_empty() {
                return Ok(());
            }
            ingest(&self.event_ids, &pending.event_ids, |p| p.to_be_bytes())?;
            ingest(&self.versions, &pending.versions, |v| *v)?;
        }
        *self.pending_mut()? = Pending::default();
        Ok(())
    }

    /// The mark, if the index has one (and it reads back whole).
    pub fn mark(&self) -> Option<Mark> {
        let value = self.meta.get(MARK_KEY).ok().flatten()?;
        let position = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
        let hash: [u8; HASH_LEN] = value.get(8..)?.try_into().ok()?;
        Some(Mark { position, hash })
    }

    /// Whether the index holds no stream versions.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.pending()?.versions.is_empty() && self.versions.is_empty().map_err(fjall_error)?)
    }

    /// Forgets the mark, so that the next open rebuilds the index from the log: when a read
    /// found an entry the log contradicts.
    pub fn invalidate(&self) {
        let forgotten = self
            .meta
            .remove(MARK_KEY)
            .and_then(|()| self.db.persist(fjall::PersistMode::SyncAll));
        if let Err(e) = forgotten {
            tracing::warn!(error = %e, "the position index's mark could not be removed");
        }
    }

    /// Empties the index (its mark first, so that a crash midway leaves no mark behind).
    pub fn clear(&self) -> Result<(), StoreError> {
        self.meta.remove(MARK_KEY).map_err(fjall_error)?;
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(fjall_error)?;
        *self.pending_mut()? = Pending::default();
        self.event_ids.clear().map_err(fjall_error)?;
        self.versions.clear().map_err(fjall_error)?;
        Ok(())
    }

    /// Removes `stream`'s entries for versions after `version`: at open, before the log's
    /// tail after the mark is indexed again, so that runs written after the mark by another
    /// history of the log (a crash, then a log restored from JetStream) cannot outlive it.
    pub fn remove_versions_after(&self, stream: &StreamId, version: u64) -> Result<(), StoreError> {
        let from = version_key(stream, version.saturating_add(1));
        let to = version_key(stream, u64::MAX);
        {
            let mut pending = self.pending_mut()?;
            let stale: Vec<Vec<u8>> = pending
                .versions
                .range(from.clone()..=to.clone())
                .map(|(k, _)| k.clone())
                .collect();
            for key in stale {
                pending.versions.remove(&key);
            }
        }
        let stale: Vec<fjall::Slice> = self
            .versions
            .range(from..=to)
            .map(|guard| guard.key().map_err(fjall_error))
            .collect::<Result<_, _>>()?;
        if stale.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for key in stale {
            batch.remove(&self.versions, key);
        }
        batch.commit().map_err(fjall_error)
    }

    /// Adds `runs`' entries, in memory until the next mark or until [`PENDING_EVENTS`] wait.
    pub fn add(&self, runs: &[IndexedRun]) -> Result<(), StoreError> {
        if runs.is_empty() {
            return Ok(());
        }
        let full = {
            let mut pending = self.pending_mut()?;
            for run in runs {
                for (i, id) in run.event_ids.iter().enumerate() {
                    pending
                        .event_ids
                        .insert(*id.as_bytes(), run.first_position + i as u64);
                }
                let mut value = [0u8; 16];
                value[..8].copy_from_slice(&run.first_position.to_be_bytes());
                value[8..].copy_from_slice(&(run.event_ids.len() as u64).to_be_bytes());
                pending
                    .versions
                    .insert(version_key(&run.stream, run.first_version), value);
            }
            pending.event_ids.len() >= PENDING_EVENTS
        };
        if full {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes every entry added so far out as durable tables, then records `mark` (itself made
    /// durable by the next sync, or lost in a crash, which costs a longer re-index, nothing
    /// else).
    pub fn sync_and_mark(&self, mark: Mark) -> Result<(), StoreError> {
        self.write_out()?;
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(fjall_error)?;
        let mut value = Vec::with_capacity(8 + HASH_LEN);
        value.extend_from_slice(&mark.position.to_be_bytes());
        value.extend_from_slice(&mark.hash);
        self.meta.insert(MARK_KEY, value).map_err(fjall_error)
    }

    /// Makes everything written durable, the last mark included: when the store closes.
    pub fn persist(&self) -> Result<(), StoreError> {
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(fjall_error)
    }

    /// The position indexed for `event_id`, if any (to be checked against the log).
    pub fn position_of_event(&self, event_id: &Uuid) -> Result<Option<u64>, StoreError> {
        if let Some(&position) = self.pending()?.event_ids.get(event_id.as_bytes()) {
            return Ok(Some(position));
        }
        match self
            .event_ids
            .get(event_id.as_bytes())
            .map_err(fjall_error)?
        {
            Some(value) => decode_position(&value).map(Some),
            None => Ok(None),
        }
    }

    /// The positions of `stream`'s versions `from..=to`, in `direction`, as (version,
    /// position); an error if any version in the range is missing (the index lost it).
    pub fn positions(
        &self,
        stream: &StreamId,
        from: u64,
        to: u64,
        backward: bool,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let runs = self.runs(stream, from, to)?;
        let mut found = Vec::with_capacity((to - from + 1).min(4096) as usize);
        let mut next = from;
        for (first_version, first_position, count) in runs {
            if first_version > next {
                break;
            }
            // Runs written by the writer and by a catch-up at open may overlap; both say the
            // same of the versions they share.
            let last = first_version
                .saturating_add(count)
                .saturating_sub(1)
                .min(to);
            while next <= last {
                found.push((next, first_position + (next - first_version)));
                next += 1;
            }
            if next > to {
                break;
            }
        }
        if next <= to {
            return Err(index_error(format!(
                "it holds {} of versions {from} to {to} of {stream}",
                found.len()
            )));
        }
        if backward {
            found.reverse();
        }
        Ok(found)
    }
}

impl PositionIndex {
    /// The runs of `stream` that may hold versions `from..=to`, in version order, as (first
    /// version, first position, count): the last one starting at or before `from`, then every
    /// one starting up to `to`, from the tables and from memory.
    fn runs(
        &self,
        stream: &StreamId,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, u64, u64)>, StoreError> {
        let pending = self.pending()?;
        let before = |key: Vec<u8>| key..=version_key(stream, from);
        // The run holding `from` starts at or before it: the last key up to `from`.
        let stored_start = self
            .versions
            .range(before(version_key(stream, 0)))
            .next_back()
            .map(|guard| decode_run(guard).map(|run| run.0))
            .transpose()?;
        let pending_start = pending
            .versions
            .range(before(version_key(stream, 0)))
            .next_back()
            .map(|(key, value)| decode_run_parts(key, value).map(|run| run.0))
            .transpose()?;
        let start = stored_start.max(pending_start).unwrap_or(from);
        let range = version_key(stream, start)..=version_key(stream, to);
        let mut runs = BTreeMap::new();
        for guard in self.versions.range(range.clone()) {
            let run = decode_run(guard)?;
            runs.insert(run.0, run);
        }
        for (key, value) in pending.versions.range(range) {
            let run = decode_run_parts(key, value)?;
            runs.insert(run.0, run);
        }
        Ok(runs.into_values().collect())
    }
}

/// Writes `entries` (in key order) to `keyspace` as a table, through fjall's ingestion.
fn ingest<K: AsRef<[u8]>, V, B: AsRef<[u8]>>(
    keyspace: &fjall::Keyspace,
    entries: &BTreeMap<K, V>,
    encode: impl Fn(&V) -> B,
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut ingestion = keyspace.start_ingestion().map_err(fjall_error)?;
    for (key, value) in entries {
        ingestion
            .write(key.as_ref(), encode(value).as_ref())
            .map_err(fjall_error)?;
    }
    ingestion.finish().map_err(fjall_error)
}

/// A run's entry: (first version, first position, count).
fn decode_run(guard: fjall::Guard) -> Result<(u64, u64, u64), StoreError> {
    let (key, value) = guard.into_inner().map_err(fjall_error)?;
    decode_run_parts(&key, &value)
}

/// A run's entry from its key and value: (first version, first position, count).
fn decode_run_parts(key: &[u8], value: &[u8]) -> Result<(u64, u64, u64), StoreError> {
    let read = |bytes: Option<&[u8]>| {
        bytes
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| index_error("a stream version's entry does not decode".into()))
    };
    let first_version = read(key.len().checked_sub(8).and_then(|at| key.get(at..)))?;
    if value.len() != 16 {
        return Err(index_error(
            "a stream version's entry does not decode".into(),
        ));
    }
    Ok((first_version, read(value.get(..8))?, read(value.get(8..))?))
}

/// Checks each keyspace's current version file against the checksum its `current` file
/// records, which fjall (3.1) does not do before decoding it: a damaged length in a version
/// file makes its decoder ask for tens of GiB and abort the process, which no `catch_unwind`
/// can turn into an error. A directory without keyspaces (a new index) passes.
fn check_versions(dir: &Path) -> Result<(), String> {
    let Ok(keyspaces) = std::fs::read_dir(dir.join("keyspaces")) else {
        return Ok(());
    };
    for keyspace in keyspaces {
        let keyspace = keyspace.map_err(|e| e.to_string())?.path();
        let current = match std::fs::read(keyspace.join("current")) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.to_string()),
        };
        let (Some(id), Some(checksum), Some(0)) = (
            current
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes),
            current
                .get(8..24)
                .and_then(|b| b.try_into().ok())
                .map(u128::from_le_bytes),
            current.get(24).copied().filter(|_| current.len() == 25),
        ) else {
            return Err(format!(
                "{} does not decode",
                keyspace.join("current").display()
            ));
        };
        let version = keyspace.join(format!("v{id}"));
        let bytes = std::fs::read(&version).map_err(|e| format!("{}: {e}", version.display()))?;
        if xxhash_rust::xxh3::xxh3_128(&bytes) != checksum {
            return Err(format!("{} does not match its checksum", version.display()));
        }
        check_tables(&keyspace, &version, &bytes)?;
    }
    Ok(())
}

/// Checks every table a keyspace's (checked) version file lists against the checksum it
/// records for it (xxh3 of the whole file). fjall checks a block only when a read reaches it,
/// so without this a damaged table of the index failed a stream's read after the store had
/// opened, instead of making the open rebuild the index. Reading the tables costs a pass over
/// the index's files (a small fraction of the log's size) at every open.
///
/// The layout read here is lsm-tree 3.1's version format (an `sfa` archive whose `tables`
/// section lists, per level and run, each table's id, checksum type, checksum and sequence
/// number), pinned by the lock file like the rest of fjall.
fn check_tables(keyspace: &Path, version: &Path, bytes: &[u8]) -> Result<(), String> {
    let undecodable = || format!("{} does not decode", version.display());
    // The bytes already read and checked, not the file again.
    let reader =
        sfa::Reader::from_reader(&mut std::io::Cursor::new(bytes)).map_err(|_| undecodable())?;
    let section = reader.toc().section(b"tables").ok_or_else(undecodable)?;
    let start = usize::try_from(section.pos()).map_err(|_| undecodable())?;
    let end = start
        .checked_add(usize::try_from(section.len()).map_err(|_| undecodable())?)
        .ok_or_else(undecodable)?;
    let mut tables = bytes.get(start..end).ok_or_else(undecodable)?;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let (head, rest) = tables.split_at_checked(n).ok_or_else(undecodable)?;
        tables = rest;
        Ok(head)
    };
    let levels = take(1)?[0];
    for _ in 0..levels {
        let runs = take(1)?[0];
        for _ in 0..runs {
            let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| undecodable())?);
            for _ in 0..count {
                let id = u64::from_le_bytes(take(8)?.try_into().map_err(|_| undecodable())?);
                if take(1)?[0] != 0 {
                    return Err(undecodable());
                }
                let checksum =
                    u128::from_le_bytes(take(16)?.try_into().map_err(|_| undecodable())?);
                take(8)?; // the table's sequence number
                let table = keyspace.join("tables").join(id.to_string());
                let content =
                    std::fs::read(&table).map_err(|e| format!("{}: {e}", table.display()))?;
                if xxhash_rust::xxh3::xxh3_128(&content) != checksum {
                    return Err(format!("{} does not match its checksum", table.display()));
                }
            }
        }
    }
    Ok(())
}

/// Why [`PositionIndex::try_open`] failed.
enum Unopenable {
    /// Another instance holds the directory: not damage, so nothing is removed.
    Locked(StoreError),
    /// fjall cannot read what is there.
    Damaged(String),
}

/// `stream`'s key prefix (lengths first, so that no stream's keys run into another's) and the
/// version, big-endian so that keys sort by version.
fn version_key(stream: &StreamId, version: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + stream.tenant.len() + stream.stream.len() + 8);
    for part in [&stream.tenant, &stream.stream] {
        key.extend_from_slice(&(part.len() as u32).to_be_bytes());
        key.extend_from_slice(part.as_bytes());
    }
    key.extend_from_slice(&version.to_be_bytes());
    key
}

fn decode_position(value: &[u8]) -> Result<u64, StoreError> {
    value
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| index_error("an indexed position is not 8 bytes".into()))
}

fn remove_dir(dir: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn fjall_error(e: fjall::Error) -> StoreError {
    index_error(e.to_string())
}

/// A damaged or unreadable index: derived data, which a restart rebuilds from the log.
pub(crate) fn index_error(detail: String) -> StoreError {
    StoreError::Corrupt(format!(
        "the position index (derived from the log) failed: {detail}; restart Keyplan to \
         rebuild it from the log"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn run(stream: &StreamId, first_version: u64, first_position: u64, count: usize) -> IndexedRun {
        IndexedRun {
            stream: stream.clone(),
            first_version,
            first_position,
            event_ids: (0..count).map(|_| Uuid::now_v7()).collect(),
        }
    }

    #[test]
    fn entries_and_the_mark_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = StreamId::new("acme", "a");
        let ab = StreamId::new("acme", "ab");
        // a: versions 1-2 at positions 1-2, 3 at 4, 4 at 8, 5-6 at 9-10; ab: 1 at 3.
        let runs = vec![
            run(&a, 1, 1, 2),
            run(&ab, 1, 3, 1),
            run(&a, 3, 4, 1),
            run(&a, 4, 8, 1),
            run(&a, 5, 9, 2),
        ];
        {
            let index = PositionIndex::open(dir.path()).unwrap();
            assert_eq!(index.mark(), None);
            assert!(index.is_empty().unwrap());
            index.add(&runs).unwrap();
            index
                .sync_and_mark(Mark {
                    position: 10,
                    hash: [7; HASH_LEN],
                })
                .unwrap();
            index.persist().unwrap();
        }
        let index = PositionIndex::open(dir.path()).unwrap();
        assert_eq!(
            index.mark(),
            Some(Mark {
                position: 10,
                hash: [7; HASH_LEN]
            })
        );
        assert_eq!(
            index.position_of_event(&runs[4].event_ids[1]).unwrap(),
            Some(10)
        );
        assert_eq!(index.position_of_event(&Uuid::now_v7()).unwrap(), None);
        // "a" and "ab" share a prefix of bytes, not of keys.
        let all_of_a = [(1, 1), (2, 2), (3, 4), (4, 8), (5, 9), (6, 10)];
        assert_eq!(index.positions(&a, 1, 6, false).unwrap(), all_of_a);
        assert_eq!(index.positions(&a, 2, 5, false).unwrap(), all_of_a[1..5]);
        assert_eq!(index.positions(&a, 5, 5, false).unwrap(), [(5, 9)]);
        assert_eq!(
            index.positions(&a, 2, 4, true).unwrap(),
            [(4, 8), (3, 4), (2, 2)]
        );
        assert_eq!(index.positions(&ab, 1, 1, false).unwrap(), [(1, 3)]);
        let missing = index.positions(&a, 5, 7, false).unwrap_err().to_string();
        assert!(missing.contains("2 of versions 5 to 7"), "{missing}");
        // A run that overlaps others (a catch-up at open groups two appends into one).
        index.add(&[run(&a, 4, 8, 3)]).unwrap();
        assert_eq!(index.positions(&a, 1, 6, false).unwrap(), all_of_a);
        index.clear().unwrap();
        assert_eq!(index.mark(), None);
        assert!(index.is_empty().unwrap());
        assert_eq!(
            index.position_of_event(&runs[1].event_ids[0]).unwrap(),
            None
        );
    }

    #[test]
    fn entries_in_memory_and_in_tables_are_read_together_and_only_marked_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = StreamId::new("acme", "a");
        let (older, newer) = (run(&a, 1, 1, 3), run(&a, 4, 7, 2));
        {
            let index = PositionIndex::open(dir.path()).unwrap();
            index.add(std::slice::from_ref(&older)).unwrap();
            // In memory only: read before any write-out.
            assert_eq!(index.positions(&a, 2, 3, false).unwrap(), [(2, 2), (3, 3)]);
            assert_eq!(
                index.position_of_event(&older.event_ids[2]).unwrap(),
                Some(3)
            );
            index
                .sync_and_mark(Mark {
                    position: 3,
                    hash: [1; HASH_LEN],
                })
                .unwrap();
            index.persist().unwrap();
            // One run in a table, the next in memory: a read across both.
            index.add(std::slice::from_ref(&newer)).unwrap();
            assert_eq!(
                index.positions(&a, 2, 5, true).unwrap(),
                [(5, 8), (4, 7), (3, 3), (2, 2)]
            );
            assert!(!index.is_empty().unwrap());
            // Removing versions after 3 (at open, before a catch-up) reaches memory too.
            index.remove_versions_after(&a, 3).unwrap();
            assert!(index.positions(&a, 1, 4, false).is_err());
            index.add(std::slice::from_ref(&newer)).unwrap();
            // Dropped without a mark: what was only in memory is gone at the next open.
        }
        let index = PositionIndex::open(dir.path()).unwrap();
        assert_eq!(index.mark().map(|m| m.position), Some(3));
        assert_eq!(
            index.positions(&a, 1, 3, false).unwrap(),
            [(1, 1), (2, 2), (3, 3)]
        );
        assert!(index.positions(&a, 1, 4, false).is_err());
        assert_eq!(index.position_of_event(&newer.event_ids[0]).unwrap(), None);
    }

    #[test]
    fn a_directory_fjall_cannot_open_is_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        {
            let index = PositionIndex::open(dir.path()).unwrap();
            index
                .add(&[run(&StreamId::new("acme", "a"), 1, 1, 1)])
                .unwrap();
            index.persist().unwrap();
        }
        // Garbage in every file fjall wrote.
        for entry in walk(dir.path()) {
            if !entry.ends_with("lock") {
                std::fs::write(&entry, b"not fjall's").unwrap();
            }
        }
        let index = PositionIndex::open(dir.path()).unwrap();
        assert_eq!(index.mark(), None);
        assert!(index
            .positions(&StreamId::new("acme", "a"), 1, 1, false)
            .is_err());
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
