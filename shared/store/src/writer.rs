//! Group commit: one thread owns all writes to the log.
//!
//! Appends arrive on a channel. The writer takes the first one, drains whatever else is
//! queued (up to [`MAX_BATCH_EVENTS`]), checks each append against the index plus the effects
//! of the appends before it in the same batch, encodes the accepted events into log records,
//! and makes them durable with one sled batch, one `flush` and one `fdatasync`. Only then are
//! the indexes updated, the new head published to readers and subscribers, and every append
//! of the batch answered. A busy store thus pays one disk sync per batch, not per append.
//!
//! Positions are assigned only here, in commit order, so the global log is gapless. A write
//! or sync error leaves the on-disk state unknown: the writer then refuses every further
//! append until the store is reopened (and recovered from the log), rather than risk
//! acknowledging something that is not on disk.

use std::collections::HashMap;
use std::fs::File;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::acknowledged::{Acknowledged, AcknowledgedFile};
use crate::durable::DirectoryWatch;
use crate::error::StoreError;
use crate::idempotency;
use crate::index::{Index, StoredAppend};
use crate::layout::{record_key, EventBody, RecordBuilder, HASH_LEN, MAX_EVENT_BYTES};
use crate::position_index::{IndexedRun, Mark, PositionIndex, SYNC_EVERY};
use crate::record::{AppendOutcome, AppendRequest, ExpectedVersion, StreamId};
use crate::store::event_at;

/// Most events committed in one batch.
pub const MAX_BATCH_EVENTS: usize = 8192;

/// What one group commit took and did, handed to the store's commit hook
/// ([`crate::EventStore::on_commit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    /// Appends in the batch (each one caller's request).
    pub appends: usize,
    /// Events the batch's appends carried.
    pub events: usize,
    /// From the batch's first append taken off the queue to the batch durable and answered.
    pub duration: Duration,
}

/// Called on the writer thread after each commit: it must not block (metrics record into
/// memory and return).
pub type CommitHook = Box<dyn Fn(&CommitStats) + Send + Sync>;

/// An append waiting for the writer.
pub(crate) struct PendingAppend {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// The writer's handles on the store.
pub(crate) struct Writer {
    pub db: sled::Db,
    pub log: sled::Tree,
    /// sled's data file, kept open to `fdatasync` it after each flush: sled 0.34's flush uses
    /// `sync_file_range`, which does not flush the drive's write cache.
    pub data_file: Option<File>,
    /// New blob files and directory entries to make durable after each flush (`None` when
    /// syncing is off, for benchmarks).
    pub directory: Option<DirectoryWatch>,
    /// The acknowledged high-water mark, updated after each commit before its answers.
    pub acknowledged: AcknowledgedFile,
    pub index: Arc<RwLock<Index>>,
    /// Where event ids and stream versions sit, on disk: written after each commit.
    pub positions: Arc<PositionIndex>,
    pub head: watch::Sender<u64>,
    /// Set once a write has failed (see [`crate::EventStore::failure`]): the process that owns
    /// the store must learn that it can no longer write, not only the callers of `append`.
    pub failure: watch::Sender<Option<String>>,
    /// Told about each commit once set (see [`crate::EventStore::on_commit`]).
    pub on_commit: Arc<OnceLock<CommitHook>>,
}

/// Per-stream effects of the appends already accepted in the current batch.
#[derive(Clone)]
struct StreamTip {
    version: u64,
    last_hash: [u8; HASH_LEN],
    new_positions: Vec<u64>,
}

/// What a batch will apply to the index once it is durable.
#[derive(Default)]
struct BatchEffects {
    tips: HashMap<StreamId, StreamTip>,
    event_ids: HashMap<Uuid, u64>,
    idempotency: HashMap<(String, String), StoredAppend>,
    /// The accepted appends' entries for the position index.
    indexed: Vec<IndexedRun>,
    /// Hash of the batch's last accepted event (what the acknowledgement record will hold).
    last_hash: [u8; HASH_LEN],
}

/// How one append of a batch is answered after the commit.
enum Answer {
    Stored(AppendOutcome),
    Failed(StoreError),
}

impl Writer {
    /// Runs until every sender is gone, answering each append.
    pub fn run(mut self, queue: Receiver<PendingAppend>) {
        let mut failed: Option<String> = None;
        let mut unsynced = 0u64;
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            let mut events = batch[0].request.events.len();
            while events < MAX_BATCH_EVENTS {
                match queue.try_recv() {
                    Ok(next) => {
                        events += next.request.events.len();
                        batch.push(next);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if let Some(reason) = &failed {
                for pending in batch {
                    let _ = pending
                        .reply
                        .send(Err(StoreError::Unavailable(reason.clone())));
                }
                continue;
            }
            let started = Instant::now();
            let appends = batch.len();
            let span = tracing::debug_span!("commit", appends, events);
            let entered = span.enter();
            let committed = self.commit(batch).and_then(|indexed| {
                unsynced += indexed;
                if unsynced >= SYNC_EVERY {
                    unsynced = 0;
                    self.mark_indexed()?;
                }
                Ok(())
            });
            drop(entered);
            if committed.is_ok() {
                if let Some(hook) = self.on_commit.get() {
                    hook(&CommitStats {
                        appends,
                        events,
                        duration: started.elapsed(),
                    });
                }
            }
            if let Err(e) = committed {
                tracing::error!(error = %e, "event store write failed; refusing further appends until reopened");
                let reason = format!("a write failed ({e}); restart Keyplan to recover");
                self.failure.send_replace(Some(reason.clone()));
                failed = Some(reason);
            }
        }
        // The store is closing: leave the position index durable and marked up to the head,
        // so that the next open has nothing to index again.
        if failed.is_none() {
            if let Err(e) = self.mark_indexed().and_then(|()| self.positions.persist()) {
                tracing::warn!(error = %e, "the position index could not be synced at close; the next start indexes the log's tail again");
            }
        }
    }

    /// Syncs the position index and marks it as holding every committed event.
    fn mark_indexed(&self) -> Result<(), StoreError> {
        let mark = {
            let index = self
                .index
                .read()
                .map_err(|_| StoreError::Unavailable("index lock poisoned".into()))?;
            Mark {
                position: index.head,
                hash: index.last_hash,
            }
        };
        self.positions.sync_and_mark(mark)
    }

    /// Checks, encodes, writes and answers one batch; returns how many events it added to the
    /// position index.
    fn commit(&mut self, batch: Vec<PendingAppend>) -> Result<u64, StoreError> {
        let (head, mut recorded_at) = {
            let index = self
                .index
                .read()
                .map_err(|_| StoreError::Unavailable("index lock poisoned".into()))?;
            (index.head, index.last_recorded_at)
        };
        recorded_at = recorded_at.max(now_micros());

        let mut effects = BatchEffects::default();
        let mut builder = RecordBuilder::default();
        let mut next_position = head + 1;
        let mut answers = Vec::with_capacity(batch.len());
        {
            let index = self
                .index
                .read()
                .map_err(|_| StoreError::Unavailable("index lock poisoned".into()))?;
            for pending in &batch {
                let answer = match self.check_and_encode(
                    &index,
                    &mut effects,
                    &mut builder,
                    &mut next_position,
                    recorded_at,
                    &pending.request,
                ) {
                    Ok(outcome) => Answer::Stored(outcome),
                    Err(e) => Answer::Failed(e),
                };
                answers.push(answer);
            }
        }

        let records = builder.finish();
        if !records.is_empty() {
            let acknowledged = Acknowledged {
                position: next_position - 1,
                hash: effects.last_hash,
            };
            let write = self.write_durably(&records, &acknowledged);
            if let Err(e) = write {
                // What reached the disk before the failure is unknown: the new appends may or
                // may not be in the log when it is reopened. Refusals and retries of stored
                // appends keep their (known) answers.
                let reason = e.to_string();
                for (pending, answer) in batch.into_iter().zip(answers) {
                    let _ = pending.reply.send(match answer {
                        Answer::Stored(outcome) if outcome.deduplicated => Ok(outcome),
                        Answer::Stored(_) => Err(StoreError::OutcomeUnknown(reason.clone())),
                        Answer::Failed(refused) => Err(refused),
                    });
                }
                return Err(e);
            }
            // The position index first, so that a stream version readers can see in memory
            // is always found on disk. The batch is durable in the log whatever happens
            // here: a failure is reported after its appends are answered.
            let indexed = self.positions.add(&effects.indexed);
            let mut index = self
                .index
                .write()
                .map_err(|_| StoreError::Unavailable("index lock poisoned".into()))?;
            for (first, _) in &records {
                index.record_starts.push(*first);
            }
            for (stream, tip) in effects.tips {
                let entry = index.streams.entry(stream.clone()).or_default();
                let was_new = entry.version == 0;
                entry.version = tip.version;
                entry.last_hash = tip.last_hash;
                if was_new {
                    index
                        .tenants
                        .entry(stream.tenant)
                        .or_default()
                        .insert(stream.stream);
                }
            }
            index.idempotency.extend(effects.idempotency);
            if let Some(max) = effects.event_ids.keys().map(|id| id.as_u128()).max() {
                index.max_event_id = index.max_event_id.max(max);
            }
            index.head = next_position - 1;
            index.last_hash = effects.last_hash;
            index.last_recorded_at = recorded_at;
            drop(index);
            self.head.send_replace(next_position - 1);
            answer(batch, answers);
            indexed?;
            return Ok(effects
                .indexed
                .iter()
                .map(|r| r.event_ids.len() as u64)
                .sum());
        }
        answer(batch, answers);
        Ok(0)
    }

    /// Whether `request`'s event ids are stored: the position of each one that is, from this
    /// batch or from the position index. An indexed position is checked against the log: an
    /// entry that does not hold the id there (left by a log that was replaced) counts as absent.
    fn stored_event_ids(
        &self,
        index: &Index,
        effects: &BatchEffects,
        request: &AppendRequest,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        request
            .events
            .iter()
            .map(|e| {
                if let Some(position) = effects.event_ids.get(&e.event_id) {
                    return Ok(Some(*position));
                }
                if e.event_id.as_u128() > index.max_event_id {
                    return Ok(None);
                }
                let Some(position) = self.positions.position_of_event(&e.event_id)? else {
                    return Ok(None);
                };
                if position > index.head {
                    return Ok(None);
                }
                let holds = event_at(&self.log, index, position, |stored| {
                    Ok(stored.body.event_id == e.event_id)
                })?;
                Ok(holds.then_some(position))
            })
            .collect()
    }

    /// One sled batch, one flush, one fdatasync; then the directory entries sled created and
    /// the acknowledged high-water mark (see [`crate::acknowledged`]).
    fn write_durably(
        &mut self,
        records: &[(u64, Vec<u8>)],
        acknowledged: &Acknowledged,
    ) -> Result<(), StoreError> {
        if let [(first, value)] = records {
            self.log.insert(record_key(*first), value.as_slice())?;
        } else {
            let mut batch = sled::Batch::default();
            for (first, value) in records {
                batch.insert(&record_key(*first), value.as_slice());
            }
            self.log.apply_batch(batch)?;
        }
        self.db.flush()?;
        if let Some(file) = &self.data_file {
            file.sync_data()?;
        }
        if let Some(directory) = &mut self.directory {
            let synced = directory.sync_new_entries()?;
            if synced > 0 {
                tracing::warn!(
                    synced,
                    blobs = directory.blob_count(),
                    "sled wrote pages to blob files (a log created with sled's default segment \
                     size); they were synced, but sled may reference a blob before it is"
                );
            }
        }
        self.acknowledged.record(acknowledged)?;
        Ok(())
    }

    /// Decides one append of the batch: a retry (answered with the stored outcome), a conflict,
    /// or new events encoded into the batch's records.
    fn check_and_encode(
        &self,
        index: &Index,
        effects: &mut BatchEffects,
        builder: &mut RecordBuilder,
        next_position: &mut u64,
        recorded_at: i64,
        request: &AppendRequest,
    ) -> Result<AppendOutcome, StoreError> {
        if request.events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        if let Some(size) = request
            .events
            .iter()
            .map(|e| request.encoded_size_bound(e))
            .find(|size| *size > MAX_EVENT_BYTES)
        {
            return Err(StoreError::EventTooLarge {
                size,
                max: MAX_EVENT_BYTES,
            });
        }
        let stream = &request.stream;

        // A retry by idempotency key.
        if let Some(stored_key) = &request.metadata.idempotency_key {
            let (key, fingerprint) = idempotency::split(stored_key);
            let lookup = (stream.tenant.clone(), key.to_owned());
            if let Some(stored) = effects
                .idempotency
                .get(&lookup)
                .or_else(|| index.idempotency.get(&lookup))
            {
                if &stored.stream != stream {
                    return Err(StoreError::IdempotencyKeyReused {
                        key: key.to_owned(),
                        stream: stored.stream.clone(),
                    });
                }
                if !idempotency::same_request(stored.fingerprint.as_deref(), fingerprint) {
                    return Err(StoreError::IdempotencyKeyMismatch {
                        key: key.to_owned(),
                        first_position: stored.positions.first().copied().unwrap_or(0),
                    });
                }
                return stored_outcome(
                    &self.log,
                    index,
                    effects,
                    stream,
                    &stored.positions,
                    &stored.event_ids,
                );
            }
        }

        // A retry by event ids: all stored means retry; some stored means a client bug.
        let known = self.stored_event_ids(index, effects, request)?;
        if known.iter().all(Option::is_some) {
            let positions: Vec<u64> = known.into_iter().flatten().collect();
            let ids: Vec<Uuid> = request.events.iter().map(|e| e.event_id).collect();
            return stored_outcome(&self.log, index, effects, stream, &positions, &ids);
        }
        if let Some(i) = known.iter().position(Option::is_some) {
            return Err(StoreError::EventIdConflict(request.events[i].event_id));
        }
        let mut seen = std::collections::HashSet::with_capacity(request.events.len());
        if let Some(dup) = request.events.iter().find(|e| !seen.insert(e.event_id)) {
            return Err(StoreError::EventIdConflict(dup.event_id));
        }

        // Optimistic concurrency.
        let tip = match effects.tips.get(stream) {
            Some(tip) => tip.clone(),
            None => {
                let entry = index.streams.get(stream);
                StreamTip {
                    version: entry.map_or(0, |e| e.version),
                    last_hash: entry.map_or([0u8; HASH_LEN], |e| e.last_hash),
                    new_positions: Vec::new(),
                }
            }
        };
        let ok = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => tip.version == 0,
            ExpectedVersion::Exact(v) => tip.version == v,
        };
        if !ok {
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.clone(),
                expected: request.expected,
                current: tip.version,
            });
        }

        // Accept: encode the events.
        let mut tip = tip;
        let first_version = tip.version + 1;
        let first_position = *next_position;
        let meta = &request.metadata;
        for event in &request.events {
            let position = *next_position;
            tip.version += 1;
            let body = EventBody {
                event_id: event.event_id,
                tenant: &stream.tenant,
                stream: &stream.stream,
                stream_version: tip.version,
                global_position: position,
                recorded_at_micros: recorded_at,
                occurred_at_micros: event.occurred_at_micros,
                actor: &meta.actor,
                correlation_id: meta.correlation_id,
                causation_id: meta.causation_id,
                idempotency_key: meta.idempotency_key.as_deref(),
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
            };
            tip.last_hash = builder.push(&body, &tip.last_hash)?;
            effects.last_hash = tip.last_hash;
            tip.new_positions.push(position);
            effects.event_ids.insert(event.event_id, position);
            *next_position += 1;
        }
        effects.indexed.push(IndexedRun {
            stream: stream.clone(),
            first_version,
            first_position,
            event_ids: request.events.iter().map(|e| e.event_id).collect(),
        });
        let positions: Vec<u64> = (first_position..*next_position).collect();
        if let Some(stored_key) = &meta.idempotency_key {
            let (key, fingerprint) = idempotency::split(stored_key);
            effects.idempotency.insert(
                (stream.tenant.clone(), key.to_owned()),
                StoredAppend {
                    stream: stream.clone(),
                    positions: positions.clone(),
                    first_version,
                    event_ids: request.events.iter().map(|e| e.event_id).collect(),
                    fingerprint: fingerprint.map(str::to_owned),
                },
            );
        }
        let last_version = tip.version;
        effects.tips.insert(stream.clone(), tip);
        Ok(AppendOutcome {
            first_version,
            last_version,
            first_position,
            last_position: *next_position - 1,
            event_ids: request.events.iter().map(|e| e.event_id).collect(),
            deduplicated: false,
        })
    }
}

/// Answers each append of a batch.
fn answer(batch: Vec<PendingAppend>, answers: Vec<Answer>) {
    for (pending, answer) in batch.into_iter().zip(answers) {
        let _ = pending.reply.send(match answer {
            Answer::Stored(outcome) => Ok(outcome),
            Answer::Failed(e) => Err(e),
        });
    }
}

/// The outcome of an append stored earlier (or earlier in the same batch), for a retry.
/// A version is read from the log (or this batch); an event stored in another stream than
/// the retry names has version 0 in the answer, as it is not in that stream.
fn stored_outcome(
    log: &sled::Tree,
    index: &Index,
    effects: &BatchEffects,
    stream: &StreamId,
    positions: &[u64],
    event_ids: &[Uuid],
) -> Result<AppendOutcome, StoreError> {
    let version_of = |position: u64| -> Result<u64, StoreError> {
        if position > index.head {
            let in_batch = effects.tips.get(stream).and_then(|tip| {
                tip.new_positions
                    .binary_search(&position)
                    .ok()
                    .map(|i| index.version(stream) + i as u64 + 1)
            });
            return Ok(in_batch.unwrap_or(0));
        }
        event_at(log, index, position, |e| {
            let same = e.body.tenant == stream.tenant && e.body.stream == stream.stream;
            Ok(if same { e.body.stream_version } else { 0 })
        })
    };
    let first_position = positions.first().copied().unwrap_or(0);
    let last_position = positions.last().copied().unwrap_or(0);
    Ok(AppendOutcome {
        first_version: version_of(first_position)?,
        last_version: version_of(last_position)?,
        first_position,
        last_position,
        event_ids: event_ids.to_vec(),
        deduplicated: true,
    })
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
