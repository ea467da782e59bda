//! The event store: sled-backed, append-only, with per-stream versions, a gapless global
//! log, per-stream hash chains, idempotent appends and group commit.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use tokio::sync::{oneshot, watch};

use crate::acknowledged::{Acknowledged, AcknowledgedFile, ACKNOWLEDGED_FILE};
use crate::durable::DirectoryWatch;
use crate::error::StoreError;
use crate::index::Index;
use crate::layout::{
    record_key, RecordView, StoredEventRef, CHECKPOINT_TREE, HASH_LEN, LOG_TREE, SNAPSHOT_TREE,
};
use crate::position_index::{PositionIndex, POSITION_INDEX_DIR};
use crate::record::{AppendOutcome, AppendRequest, RecordedEvent, StreamId};
use crate::settings::{self, LogSettings};
use crate::snapshots::Snapshots;
use crate::writer::{PendingAppend, Writer};

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Directory of the sled database (created if missing).
    pub path: PathBuf,
    /// sled's page cache, in bytes: bounds the store's memory besides its indexes.
    pub cache_capacity_bytes: u64,
    /// Call `fdatasync` on sled's data file after each flush (on by default; turning it off
    /// trades crash safety on power loss for speed, for benchmarks only).
    pub fdatasync: bool,
    /// Compress the log with zstd (level 1) when this creates the data directory (on by
    /// default): several times less disk, for a part of the peak batched append rate, the
    /// writer thread compressing each record (keyplan-bench's figures are in BENCHMARKS.md). A directory keeps the setting it was created with:
    /// sled cannot change it.
    pub compress_new_log: bool,
}

impl StoreConfig {
    /// Defaults for a data directory: 256 MiB cache, fdatasync on.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cache_capacity_bytes: 256 * 1024 * 1024,
            fdatasync: true,
            compress_new_log: true,
        }
    }
}

/// Which way to read a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// Which events a read of the global log returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only this stream (requires `tenant`).
    pub stream: Option<String>,
    /// Only these event types (empty = all).
    pub event_types: Vec<String>,
}

impl EventFilter {
    /// Whether an event passes the filter.
    pub fn matches(&self, event: &StoredEventRef<'_>) -> bool {
        let b = &event.body;
        self.tenant.as_deref().is_none_or(|t| t == b.tenant)
            && self.stream.as_deref().is_none_or(|s| s == b.stream)
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == b.event_type))
    }
}

/// A page of a stream.
#[derive(Debug, Clone)]
pub struct StreamSlice {
    /// The events, in the requested direction.
    pub events: Vec<RecordedEvent>,
    /// The stream's current version (0 if it has no events).
    pub stream_version: u64,
    /// The version to continue from, or `None` if the end was reached.
    pub next_version: Option<u64>,
}

/// A page of the global log.
#[derive(Debug, Clone)]
pub struct LogSlice {
    /// Matching events, by position.
    pub events: Vec<RecordedEvent>,
    /// The position to continue from.
    pub next_position: u64,
    /// The last committed position when the page was read.
    pub head_position: u64,
}

/// Result of checking a stream's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked.
    pub events_checked: u64,
    /// The first version whose stored hash or link does not match, if any.
    pub first_broken_version: Option<u64>,
    /// What was found.
    pub detail: String,
    /// Hash of the last event checked.
    pub last_hash: [u8; HASH_LEN],
}

/// The event store. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct EventStore {
    inner: Arc<Inner>,
}

struct Inner {
    log: sled::Tree,
    checkpoints: sled::Tree,
    snapshots: Snapshots,
    index: Arc<RwLock<Index>>,
    positions: Arc<PositionIndex>,
    head: watch::Receiver<u64>,
    queue: Mutex<Option<SyncSender<PendingAppend>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    failure: watch::Receiver<Option<String>>,
    on_commit: Arc<std::sync::OnceLock<crate::writer::CommitHook>>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("head", &*self.inner.head.borrow())
            .finish()
    }
}

impl EventStore {
    /// Opens (or creates) a store, rebuilds its indexes from the log and checks the log against
    /// what the store last acknowledged.
    ///
    /// Refuses (with [`StoreError::Corrupt`] naming the damage) a log that sled cannot read, one
    /// that ends before the last acknowledged position or holds another event there, and a data
    /// directory whose settings or acknowledgement record are damaged: serving such a log would
    /// hand out positions that were already acknowledged and published.
    pub fn open(config: StoreConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&config.path)?;
        let (settings, acknowledged) = prepare_directory(&config)?;
        let db = open_sled(&config, &settings)?;
        let log = db.open_tree(LOG_TREE)?;
        let checkpoints = db.open_tree(CHECKPOINT_TREE)?;
        // Snapshots moved to files (see `snapshots`); the tree of earlier versions goes.
        db.drop_tree(SNAPSHOT_TREE)?;
        let snapshots = Snapshots::open(&config.path)?;
        let started = std::time::Instant::now();
        let positions = Arc::new(PositionIndex::open(&config.path.join(POSITION_INDEX_DIR))?);
        let index_opened = started.elapsed();
        let index = catch_sled_panic("reading the log", || Index::rebuild(&log, &positions))?;
        tracing::info!(
            events = index.head,
            records = index.record_starts.len(),
            position_index_open_ms = index_opened.as_millis() as u64,
            log_read_ms = (started.elapsed() - index_opened).as_millis() as u64,
            "event store opened"
        );
        let directory = DirectoryWatch::new(&config.path)?;
        let acknowledged = check_acknowledged(&config, &log, &index, acknowledged)?;
        let data_file = if config.fdatasync {
            Some(File::open(data_file_path(&config.path))?)
        } else {
            None
        };
        let (head_tx, head_rx) = watch::channel(index.head);
        let index = Arc::new(RwLock::new(index));
        let (queue_tx, queue_rx) = mpsc::sync_channel(4096);
        let (failure_tx, failure_rx) = watch::channel(None);
        let on_commit = Arc::new(std::sync::OnceLock::new());
        let writer = Writer {
            db,
            log: log.clone(),
            data_file,
            directory: config.fdatasync.then_some(directory),
            acknowledged,
            index: index.clone(),
            positions: positions.clone(),
            head: head_tx,
            failure: failure_tx,
            on_commit: on_commit.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("keyplan-store-writer".into())
            .spawn(move || writer.run(queue_rx))?;
        Ok(Self {
            inner: Arc::new(Inner {
                log,
                checkpoints,
                snapshots,
                index,
                positions,
                head: head_rx,
                queue: Mutex::new(Some(queue_tx)),
                writer: Mutex::new(Some(handle)),
                failure: failure_rx,
                on_commit,
            }),
        })
    }

    /// Appends events to one stream, atomically, once they are durable.
    ///
    /// A retry (same idempotency key, or the same event ids) returns the original outcome with
    /// `deduplicated` set and stores nothing.
    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let sender = self
            .inner
            .queue
            .lock()
            .map_err(|_| StoreError::Unavailable("queue lock poisoned".into()))?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is shutting down".into()))?;
        // The queue is bounded; a full queue parks this task's thread only briefly while the
        // writer drains a batch, so hand the blocking send to the blocking pool.
        let pending = PendingAppend { request, reply };
        match sender.try_send(pending) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(pending)) => {
                tokio::task::spawn_blocking(move || sender.send(pending).map_err(|_| ()))
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?
                    .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(StoreError::Unavailable("the writer stopped".into()));
            }
        }
        // The writer answers every append it takes, also when it stops; an append left
        // unanswered means the writer died while handling it, after its write may have begun.
        answer.await.map_err(|_| {
            StoreError::OutcomeUnknown("the writer stopped while handling this append".into())
        })?
    }

    /// Stops accepting appends, lets the writer commit everything already queued, and waits
    /// for it. Appends acknowledged before this returns are durable.
    pub fn close(&self) {
        if let Ok(mut queue) = self.inner.queue.lock() {
            queue.take();
        }
        let handle = self.inner.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Why the store can no longer write, once a write has failed (`None` while it can).
    ///
    /// After a failed write the on-disk state is unknown, so the writer refuses every further
    /// append until the store is reopened. A process that only saw refused appends would look
    /// healthy while it cannot do its job; this lets it report the failure and exit, so that a
    /// supervisor restarts it and reopening recovers from the log.
    pub fn failure(&self) -> watch::Receiver<Option<String>> {
        self.inner.failure.clone()
    }

    /// Has `hook` called on the writer thread after every commit from now on, with the
    /// batch's size and duration (e.g. for metrics). It must not block: the writer waits for
    /// it before taking the next batch. Only the first hook set is kept; returns whether this
    /// one was.
    pub fn on_commit(&self, hook: crate::writer::CommitHook) -> bool {
        self.inner.on_commit.set(hook).is_ok()
    }

    /// The last committed global position (0 for an empty store).
    pub fn head(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// A receiver that changes whenever new events are committed.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.head.clone()
    }

    fn index(&self) -> Result<RwLockReadGuard<'_, Index>, StoreError> {
        self.inner
            .index
            .read()
            .map_err(|_| StoreError::Unavailable("index lock poisoned".into()))
    }

    /// A stream's current version (0 if it has no events).
    pub fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        Ok(self.index()?.version(stream))
    }

    /// The outcome of the append stored under a tenant's idempotency key, if any.
    pub fn lookup_idempotency(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<(StreamId, AppendOutcome)>, StoreError> {
        let index = self.index()?;
        let Some(stored) = index.idempotency.get(&(tenant.to_owned(), key.to_owned())) else {
            return Ok(None);
        };
        let outcome = AppendOutcome {
            first_version: stored.first_version,
            last_version: stored.last_version(),
            first_position: stored.positions.first().copied().unwrap_or(0),
            last_position: stored.positions.last().copied().unwrap_or(0),
            event_ids: stored.event_ids.clone(),
            deduplicated: true,
        };
        Ok(Some((stored.stream.clone(), outcome)))
    }

    /// The fingerprint of the request first stored under a tenant's idempotency key, if the key
    /// is stored and was given one (see [`crate::idempotency`]).
    pub fn idempotency_fingerprint(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .index()?
            .idempotency
            .get(&(tenant.to_owned(), key.to_owned()))
            .and_then(|stored| stored.fingerprint.clone()))
    }

    /// A named consumer's checkpoint: the last global position it has fully handled (0 if none).
    ///
    /// Checkpoints live beside the log but are not part of it; they are written without a disk
    /// sync, so after a crash a consumer may resume a little earlier than it stopped and must
    /// make re-handling harmless (the NATS relay does, through message ids and JetStream's
    /// expected-last-sequence check).
    pub fn checkpoint(&self, name: &str) -> Result<u64, StoreError> {
        match self.inner.checkpoints.get(name.as_bytes())? {
            Some(v) => {
                let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| {
                    StoreError::Corrupt(format!("checkpoint {name:?} is not 8 bytes"))
                })?;
                Ok(u64::from_be_bytes(bytes))
            }
            None => Ok(0),
        }
    }

    /// Records a named consumer's checkpoint (see [`EventStore::checkpoint`]).
    pub fn save_checkpoint(&self, name: &str, position: u64) -> Result<(), StoreError> {
        self.inner
            .checkpoints
            .insert(name.as_bytes(), &position.to_be_bytes())?;
        Ok(())
    }

    /// The snapshot last saved for `stream`, if any: opaque bytes to the store.
    ///
    /// A snapshot is derived data (a stream's events folded up to some version, in whatever
    /// encoding its writer chose) kept beside the log and apart from it, like checkpoints:
    /// written without a disk sync, never read by the store itself, and never a source of
    /// truth. Its reader must check it against the log (that the version it claims is there,
    /// with the event it names) and fall back to replaying the stream when it does not fit.
    /// Snapshots are files, not sled keys: see [`crate::snapshots`] for why, and for the
    /// checks that make a torn or misplaced file read as absent.
    pub fn snapshot(&self, stream: &StreamId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.snapshots.get(stream)?)
    }

    /// Replaces `stream`'s snapshot (see [`EventStore::snapshot`]).
    pub fn save_snapshot(&self, stream: &StreamId, bytes: &[u8]) -> Result<(), StoreError> {
        Ok(self.inner.snapshots.put(stream, bytes)?)
    }

    /// Like [`EventStore::save_snapshot`], but written by a background thread, so that the
    /// caller never waits for the file system (see [`crate::snapshots`]). `false` if it was
    /// skipped: too many snapshots are already waiting to be written.
    pub fn save_snapshot_later(&self, stream: &StreamId, bytes: &[u8]) -> bool {
        self.inner.snapshots.put_later(stream, bytes)
    }

    /// Waits until the snapshots queued by [`EventStore::save_snapshot_later`] so far are
    /// written: for tests, and for whoever copies the data directory.
    pub fn flush_snapshots(&self) {
        self.inner.snapshots.flush();
    }

    /// Forgets `stream`'s snapshot (one that no longer fits the log).
    pub fn remove_snapshot(&self, stream: &StreamId) -> Result<(), StoreError> {
        Ok(self.inner.snapshots.remove(stream)?)
    }

    /// A tenant's streams, sorted.
    pub fn list_streams(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .index()?
            .tenants
            .get(tenant)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// Every tenant with at least one stream, sorted.
    pub fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.index()?.tenants.keys().cloned().collect())
    }

    /// Reads the record holding `position` and calls `f` with the event there.
    fn with_event<T>(
        &self,
        position: u64,
        f: impl FnOnce(StoredEventRef<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        event_at(&self.inner.log, &*self.index()?, position, f)
    }

    /// The event at a global position, if committed.
    pub fn read_at(&self, position: u64) -> Result<Option<RecordedEvent>, StoreError> {
        if position == 0 || position > self.head() {
            return Ok(None);
        }
        self.with_event(position, |e| Ok(e.to_recorded())).map(Some)
    }

    /// Reads up to `max_count` events of a stream from `from_version` (inclusive) in
    /// `direction`. Forward from 0 starts at the first event; backward from 0 at the last.
    pub fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        direction: Direction,
        max_count: usize,
    ) -> Result<StreamSlice, StoreError> {
        let stream_version = self.index()?.version(stream);
        let (from, to) = match direction {
            Direction::Forward => {
                let from = from_version.max(1);
                (
                    from,
                    stream_version.min(from.saturating_add(max_count as u64) - 1),
                )
            }
            Direction::Backward => {
                let to = if from_version == 0 {
                    stream_version
                } else {
                    from_version.min(stream_version)
                };
                (to.saturating_sub(max_count as u64) + 1, to)
            }
        };
        let picked = if max_count == 0 || stream_version == 0 {
            Vec::new()
        } else {
            self.inner
                .positions
                .positions(stream, from, to, direction == Direction::Backward)?
        };
        let next_version = match (direction, picked.last()) {
            (Direction::Forward, Some(&(v, _))) if v < stream_version => Some(v + 1),
            (Direction::Backward, Some(&(v, _))) if v > 1 => Some(v - 1),
            _ => None,
        };
        let events = self.read_positions(picked.iter().map(|&(_, p)| p))?;
        if let Some((version, event)) = picked
            .iter()
            .zip(&events)
            .find(|((version, _), e)| e.stream != *stream || e.stream_version != *version)
            .map(|((version, _), e)| (version, e))
        {
            // The log is the truth: the next open rebuilds the index from it.
            self.inner.positions.invalidate();
            return Err(crate::position_index::index_error(format!(
                "it places version {version} of {stream} at position {}, which holds version {} \
                 of {}",
                event.global_position, event.stream_version, event.stream
            )));
        }
        Ok(StreamSlice {
            events,
            stream_version,
            next_version,
        })
    }

    /// Reads the events at the given committed positions, in the given order, reading each
    /// record once per run of positions it holds.
    fn read_positions(
        &self,
        positions: impl Iterator<Item = u64>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::new();
        let mut cached: Option<(u64, u64, sled::IVec)> = None; // (start, end, value)
        for position in positions {
            let hit =
                matches!(&cached, Some((start, end, _)) if (*start..*end).contains(&position));
            if !hit {
                let start = self.index()?.record_start_of(position).ok_or_else(|| {
                    StoreError::Corrupt(format!("no record holds position {position}"))
                })?;
                let value = self
                    .inner
                    .log
                    .get(record_key(start))?
                    .ok_or_else(|| StoreError::Corrupt(format!("record {start} is missing")))?;
                let end = RecordView::parse(start, &value)?.end_position();
                cached = Some((start, end, value));
            }
            if let Some((start, _, value)) = &cached {
                let view = RecordView::parse(*start, value)?;
                out.push(view.event((position - start) as usize)?.to_recorded());
            }
        }
        Ok(out)
    }

    /// Reads up to `max_count` matching events of the global log from `from_position`
    /// (inclusive; 0 = from the start), never past the committed head.
    pub fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
        filter: &EventFilter,
    ) -> Result<LogSlice, StoreError> {
        let head = self.head();
        let mut events = Vec::new();
        let mut next_position = from_position.max(1);
        if max_count == 0 {
            return Ok(LogSlice {
                events,
                next_position,
                head_position: head,
            });
        }
        self.scan(from_position.max(1), head, |event| {
            next_position = event.body.global_position + 1;
            if filter.matches(&event) {
                events.push(event.to_recorded());
            }
            Ok(events.len() < max_count)
        })?;
        if events.len() < max_count {
            next_position = next_position.max(head + 1);
        }
        Ok(LogSlice {
            events,
            next_position,
            head_position: head,
        })
    }

    /// Calls `visit` for each committed event from `from` to `to` (inclusive) until it returns
    /// `false`.
    pub fn scan(
        &self,
        from: u64,
        to: u64,
        mut visit: impl FnMut(StoredEventRef<'_>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        if from > to {
            return Ok(());
        }
        let Some(start) = self.index()?.record_start_of(from) else {
            return Ok(());
        };
        for entry in self.inner.log.range(record_key(start)..) {
            let (key, value) = entry?;
            let first = crate::layout::position_of_key(&key)?;
            if first > to {
                break;
            }
            let view = RecordView::parse(first, &value)?;
            for event in view.events() {
                let event = event?;
                let position = event.body.global_position;
                if position < from {
                    continue;
                }
                if position > to {
                    return Ok(());
                }
                if !visit(event)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Recomputes a stream's hash chain and reports the first version that does not match.
    pub fn verify_stream(&self, stream: &StreamId) -> Result<VerifyReport, StoreError> {
        let version = self.index()?.version(stream);
        let positions = self.inner.positions.positions(stream, 1, version, false)?;
        let mut prev = [0u8; HASH_LEN];
        let mut checked = 0u64;
        for (version, position) in positions {
            let problem =
                match self.with_event(position, |e| Ok(check_link(&e, stream, version, &prev))) {
                    Ok(Ok(hash)) => {
                        prev = hash;
                        None
                    }
                    Ok(Err(problem)) => Some(problem),
                    Err(e) => Some(format!("stored bytes do not decode: {e}")),
                };
            checked += 1;
            if let Some(detail) = problem {
                return Ok(VerifyReport {
                    events_checked: checked,
                    first_broken_version: Some(version),
                    detail: format!("version {version} (position {position}): {detail}"),
                    last_hash: prev,
                });
            }
        }
        Ok(VerifyReport {
            events_checked: checked,
            first_broken_version: None,
            detail: format!("all {checked} events verified"),
            last_hash: prev,
        })
    }
}

/// Reads the record holding `position` and calls `f` with the event there.
pub(crate) fn event_at<T>(
    log: &sled::Tree,
    index: &Index,
    position: u64,
    f: impl FnOnce(StoredEventRef<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let start = index
        .record_start_of(position)
        .ok_or_else(|| StoreError::Corrupt(format!("no record holds position {position}")))?;
    let value = log
        .get(record_key(start))?
        .ok_or_else(|| StoreError::Corrupt(format!("record {start} is missing")))?;
    let view = RecordView::parse(start, &value)?;
    f(view.event((position - start) as usize)?)
}

/// Checks one event's identity, link and hash; returns its hash or what is wrong.
fn check_link(
    e: &StoredEventRef<'_>,
    stream: &StreamId,
    version: u64,
    prev: &[u8; HASH_LEN],
) -> Result<[u8; HASH_LEN], String> {
    if e.body.tenant != stream.tenant
        || e.body.stream != stream.stream
        || e.body.stream_version != version
    {
        return Err(format!(
            "record claims to be version {} of {}/{}",
            e.body.stream_version, e.body.tenant, e.body.stream
        ));
    }
    if &e.prev_hash != prev {
        return Err("previous-hash link does not match the preceding event".into());
    }
    if e.expected_hash() != e.hash {
        return Err(
            "content does not match its hash (the event was altered after it was written)".into(),
        );
    }
    Ok(e.hash)
}

/// Finds (or, for a new log, records) the log's settings and opens its acknowledgement record.
///
/// A directory is one of three kinds:
/// - **new** (no `db`, no settings file): the acknowledgement record (position 0) and then the
///   settings file are created durably; the settings file is what marks the log as created;
/// - **created by this version** (settings file present): both files must read back intact;
/// - **created before the settings file existed** (`db` without settings file): the settings
///   are read from sled's `conf` and written to the settings file; the acknowledgement record
///   starts at the log's head, since what an older version acknowledged is unknown.
fn prepare_directory(
    config: &StoreConfig,
) -> Result<(LogSettings, Option<(AcknowledgedFile, Acknowledged)>), StoreError> {
    let dir = &config.path;
    if let Some(settings) = LogSettings::load(dir)? {
        let acknowledged = AcknowledgedFile::open(dir, config.fdatasync)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} is missing, so what this node acknowledged is unknown; run `keyplan \
                 recover` to rebuild the log from JetStream",
                dir.join(ACKNOWLEDGED_FILE).display()
            ))
        })?;
        // sled's own copy of the settings is written without fsync and may be damaged; let
        // sled write it afresh from ours.
        remove_if_present(&dir.join("conf"))?;
        return Ok((settings, Some(acknowledged)));
    }
    let data_file = data_file_path(dir);
    let has_data = std::fs::metadata(&data_file).is_ok_and(|m| m.len() > 0);
    if has_data {
        let settings = settings::from_sled_conf(dir)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} exists but neither {} nor sled's conf says how the log was created \
                 (compression, segment size); run `keyplan recover` to rebuild the log from \
                 JetStream",
                data_file.display(),
                dir.join(settings::SETTINGS_FILE).display()
            ))
        })?;
        settings.save(dir)?;
        let acknowledged = AcknowledgedFile::open(dir, config.fdatasync)?;
        return Ok((settings, acknowledged));
    }
    // A new log (or one whose creation was cut short before anything was acknowledged).
    let settings = LogSettings {
        compression: config.compress_new_log,
        segment_size: settings::SEGMENT_SIZE,
    };
    remove_if_present(&dir.join(ACKNOWLEDGED_FILE))?;
    remove_if_present(&dir.join("conf"))?;
    let file = AcknowledgedFile::create(dir, config.fdatasync)?;
    settings.save(dir)?;
    Ok((settings, Some((file, Acknowledged::default()))))
}

/// Checks the log against the acknowledgement record (creating one for a log written by an
/// older version) and brings the record up to the log's head.
fn check_acknowledged(
    config: &StoreConfig,
    log: &sled::Tree,
    index: &Index,
    acknowledged: Option<(AcknowledgedFile, Acknowledged)>,
) -> Result<AcknowledgedFile, StoreError> {
    let hash_at = |position: u64| -> Result<[u8; HASH_LEN], StoreError> {
        if position == 0 {
            return Ok([0; HASH_LEN]);
        }
        event_at(log, index, position, |e| Ok(e.hash))
    };
    let (mut file, acknowledged) = match acknowledged {
        Some(found) => found,
        None => (
            AcknowledgedFile::create(&config.path, config.fdatasync)?,
            Acknowledged::default(),
        ),
    };
    if index.head < acknowledged.position {
        return Err(StoreError::Corrupt(format!(
            "the log in {} ends at position {} but this node acknowledged up to position {}: \
             {} acknowledged events are missing (sled's data file is damaged or lost writes). \
             The node will not serve a shortened log; run `keyplan recover` to restore them from \
             JetStream",
            config.path.display(),
            index.head,
            acknowledged.position,
            acknowledged.position - index.head
        )));
    }
    let found = hash_at(acknowledged.position)?;
    if found != acknowledged.hash {
        return Err(StoreError::Corrupt(format!(
            "the event at the last acknowledged position {} in {} has hash {}, but hash {} was \
             acknowledged: the log was replaced or damaged; run `keyplan recover` to restore it \
             from JetStream",
            acknowledged.position,
            config.path.display(),
            hex::encode(found),
            hex::encode(acknowledged.hash)
        )));
    }
    if index.head > acknowledged.position {
        // Events written but not acknowledged before a crash: they are in the log, valid and
        // chained, so they stay (their clients saw an unknown outcome); record them.
        file.record(&Acknowledged {
            position: index.head,
            hash: hash_at(index.head)?,
        })?;
    }
    Ok(file)
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Runs `f`, turning a panic inside sled (which it does on some damaged files, e.g. "tried
/// to serialize Uninitialized") into [`StoreError::Corrupt`], so that a damaged log is
/// reported rather than crashing the node with a backtrace.
pub(crate) fn catch_sled_panic<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(StoreError::Corrupt(format!(
                "sled failed while {what} ({message}): the data file is damaged; run `keyplan \
                 recover` to rebuild the log from JetStream"
            )))
        }
    }
}

/// Opens sled with the log's settings, waiting up to a second for its file lock: when a store
/// is dropped and reopened in the same process, sled's background threads can hold the lock a
/// moment longer than the dropped instance. Another process holding it is still an error after
/// the wait.
pub(crate) fn open_sled(
    config: &StoreConfig,
    settings: &LogSettings,
) -> Result<sled::Db, StoreError> {
    let mut attempts = 0;
    loop {
        let opened = catch_sled_panic("opening the log", || {
            Ok(sled::Config::new()
                .path(&config.path)
                .cache_capacity(config.cache_capacity_bytes)
                .use_compression(settings.compression)
                .compression_factor(1)
                .segment_size(settings.segment_size)
                .flush_every_ms(None)
                .open())
        })?;
        match opened {
            Err(sled::Error::Io(e))
                if attempts < 50 && e.to_string().contains("could not acquire lock") =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(sled::Error::Corruption { at, .. }) => {
                return Err(StoreError::Corrupt(format!(
                    "sled found damage in {} at {at:?}; run `keyplan recover` to rebuild the log \
                     from JetStream",
                    config.path.display()
                )))
            }
            other => return Ok(other?),
        }
    }
}

/// sled 0.34 keeps its log and pages in one file named `db` in its directory.
fn data_file_path(dir: &Path) -> PathBuf {
    dir.join("db")
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        if let Some(handle) = self.writer.lock().ok().and_then(|mut h| h.take()) {
            let _ = handle.join();
        }
    }
}
