//! The store's in-memory indexes, derived from the log when the store opens: each stream's
//! version and last hash, each tenant's streams, idempotency keys, and record boundaries.
//!
//! What grows with every event, where each event id and each stream version sits in the log,
//! is on disk in the [`crate::position_index`], which [`Index::rebuild`] brings up to date with
//! the log as it reads it. The in-memory part grows with streams, tenants, keys and records.
//! None of it is written to disk by a commit (see [`crate::layout`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use crate::error::StoreError;
use crate::layout::{position_of_key, record_key, RecordView, HASH_LEN};
use crate::position_index::{IndexedRun, Mark, PositionIndex, CATCH_UP_BATCH};
use crate::record::StreamId;

/// What the index knows about one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamEntry {
    /// The stream's current version (0 = no events).
    pub version: u64,
    /// Hash of the last event (zeros before the first).
    pub last_hash: [u8; HASH_LEN],
}

/// Where an idempotent append landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAppend {
    /// The stream.
    pub stream: StreamId,
    /// Positions of its events, in order.
    pub positions: Vec<u64>,
    /// The stream version of its first event (its events' versions are consecutive).
    pub first_version: u64,
    /// Ids of its events, in order.
    pub event_ids: Vec<Uuid>,
    /// Fingerprint of the request (see [`crate::idempotency`]), if it was given one.
    pub fingerprint: Option<String>,
}

impl StoredAppend {
    /// The stream version of its last event.
    pub fn last_version(&self) -> u64 {
        (self.first_version + self.positions.len() as u64).saturating_sub(1)
    }
}

/// All in-memory indexes of a store.
#[derive(Debug, Default)]
pub struct Index {
    /// Streams by id.
    pub streams: HashMap<StreamId, StreamEntry>,
    /// Streams of each tenant, sorted.
    pub tenants: BTreeMap<String, BTreeSet<String>>,
    /// Appends by (tenant, idempotency key).
    pub idempotency: HashMap<(String, String), StoredAppend>,
    /// First position of every record, ascending (to find the record holding a position).
    pub record_starts: Vec<u64>,
    /// Last committed global position (0 = empty log).
    pub head: u64,
    /// Recorded-at of the last committed event (recorded-at never goes backwards).
    pub last_recorded_at: i64,
    /// Hash of the last committed event (zeros for an empty log).
    pub last_hash: [u8; HASH_LEN],
    /// The greatest stored event id, as a number: an id above it is not stored, which spares
    /// an append's new ids a lookup in the position index when they are time-ordered (UUIDv7,
    /// as Keyplan makes them), since a new one then sorts after every stored one.
    pub max_event_id: u128,
}

impl Index {
    /// Derives the indexes from the log, checking that positions are gapless and that each
    /// stream's versions and hash links are consecutive, and brings `positions` up to date:
    /// from its mark if the mark fits the log, from the start otherwise.
    pub(crate) fn rebuild(log: &sled::Tree, positions: &PositionIndex) -> Result<Self, StoreError> {
        let indexed = match positions.mark() {
            Some(mark) if mark_fits(log, &mark)? => mark.position,
            found => {
                // No mark: a new index, or one that lost its first mark (or was invalidated);
                // a mark that does not fit: the log was restored or replaced. Either way,
                // what the index holds may belong to another log.
                if found.is_some() || !positions.is_empty()? {
                    tracing::warn!(
                        "the position index is not known to fit the log; it is rebuilt from \
                         the log"
                    );
                    positions.clear()?;
                }
                0
            }
        };
        let mut index = Index::default();
        let mut tail_streams: HashSet<StreamId> = HashSet::new();
        let mut pending: Vec<IndexedRun> = Vec::new();
        let mut pending_events = 0usize;
        let mut caught_up = 0u64;
        for entry in log.iter() {
            let (key, value) = entry?;
            let first = position_of_key(&key)?;
            if first != index.head + 1 {
                return Err(StoreError::Corrupt(format!(
                    "log record at position {first} follows position {}: positions must be gapless",
                    index.head
                )));
            }
            let view = RecordView::parse(first, &value)?;
            if view.is_empty() {
                return Err(StoreError::Corrupt(format!(
                    "empty log record at position {first}"
                )));
            }
            index.record_starts.push(first);
            // Group the record's events by append (idempotency key) while indexing.
            for event in view.events() {
                let event = event?;
                let b = &event.body;
                let stream = StreamId::new(b.tenant, b.stream);
                let entry = index.streams.entry(stream.clone()).or_default();
                if b.stream_version != entry.version + 1 || event.prev_hash != entry.last_hash {
                    return Err(StoreError::Corrupt(format!(
                        "event at position {} is version {} of {stream}, which is at version {} (or its hash link is broken)",
                        b.global_position,
                        b.stream_version,
                        entry.version
                    )));
                }
                entry.version = b.stream_version;
                entry.last_hash = event.hash;
                if entry.version == 1 {
                    index
                        .tenants
                        .entry(stream.tenant.clone())
                        .or_default()
                        .insert(stream.stream.clone());
                }
                if let Some(stored_key) = b.idempotency_key {
                    let (key, fingerprint) = crate::idempotency::split(stored_key);
                    let stored = index
                        .idempotency
                        .entry((stream.tenant.clone(), key.to_owned()))
                        .or_insert_with(|| StoredAppend {
                            stream: stream.clone(),
                            positions: Vec::new(),
                            first_version: b.stream_version,
                            event_ids: Vec::new(),
                            fingerprint: fingerprint.map(str::to_owned),
                        });
                    stored.positions.push(b.global_position);
                    stored.event_ids.push(b.event_id);
                }
                if b.global_position > indexed {
                    // The stream's first event after the mark: its versions after this one
                    // are indexed from here on; drop whatever else the index says of them.
                    if indexed > 0 && tail_streams.insert(stream.clone()) {
                        positions.remove_versions_after(&stream, b.stream_version - 1)?;
                    }
                    let continued = pending.last_mut().is_some_and(|run| {
                        run.extend(&stream, b.stream_version, b.global_position, b.event_id)
                    });
                    if !continued {
                        pending.push(IndexedRun {
                            stream,
                            first_version: b.stream_version,
                            first_position: b.global_position,
                            event_ids: vec![b.event_id],
                        });
                    }
                    pending_events += 1;
                    if pending_events >= CATCH_UP_BATCH {
                        positions.add(&pending)?;
                        caught_up += pending_events as u64;
                        pending.clear();
                        pending_events = 0;
                    }
                }
                index.head = b.global_position;
                index.last_hash = event.hash;
                index.max_event_id = index.max_event_id.max(b.event_id.as_u128());
                index.last_recorded_at = index.last_recorded_at.max(b.recorded_at_micros);
            }
        }
        positions.add(&pending)?;
        caught_up += pending_events as u64;
        if caught_up > 0 {
            positions.sync_and_mark(Mark {
                position: index.head,
                hash: index.last_hash,
            })?;
            positions.persist()?;
            tracing::info!(
                events = caught_up,
                from = indexed + 1,
                "position index brought up to date with the log"
            );
        }
        Ok(index)
    }

    /// The first position of the record holding `position`, if committed.
    pub fn record_start_of(&self, position: u64) -> Option<u64> {
        if position == 0 || position > self.head {
            return None;
        }
        let i = self
            .record_starts
            .partition_point(|&start| start <= position);
        i.checked_sub(1).map(|i| self.record_starts[i])
    }

    /// The current version of a stream (0 if it has no events).
    pub fn version(&self, stream: &StreamId) -> u64 {
        self.streams.get(stream).map_or(0, |e| e.version)
    }
}

/// Whether the log holds, at the mark's position, an event with the mark's hash.
fn mark_fits(log: &sled::Tree, mark: &Mark) -> Result<bool, StoreError> {
    if mark.position == 0 {
        return Ok(mark.hash == [0; HASH_LEN]);
    }
    let Some(entry) = log.range(..=record_key(mark.position)).next_back() else {
        return Ok(false);
    };
    let (key, value) = entry?;
    let start = position_of_key(&key)?;
    let view = RecordView::parse(start, &value)?;
    if mark.position >= view.end_position() {
        return Ok(false);
    }
    Ok(view.event((mark.position - start) as usize)?.hash == mark.hash)
}
