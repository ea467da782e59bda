//! In-memory indexes derived from the log: stream versions, event ids, idempotency keys and
//! record boundaries.
//!
//! None of this is written to disk: [`Index::rebuild`] derives it from the log when the store
//! opens, which is what lets a commit write only log records (see [`crate::layout`]). The cost
//! is memory, roughly 50 bytes per event, and an open time proportional to the log's length.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use crate::error::StoreError;
use crate::layout::{position_of_key, RecordView, HASH_LEN};
use crate::record::StreamId;

/// What the index knows about one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamEntry {
    /// Global position of each event, by version - 1.
    pub positions: Vec<u64>,
    /// Hash of the last event (zeros before the first).
    pub last_hash: [u8; HASH_LEN],
}

impl StreamEntry {
    /// The stream's current version (0 = no events).
    pub fn version(&self) -> u64 {
        self.positions.len() as u64
    }

    /// The version of the event at `position`, if it belongs to this stream.
    pub fn version_of(&self, position: u64) -> Option<u64> {
        self.positions
            .binary_search(&position)
            .ok()
            .map(|i| i as u64 + 1)
    }
}

/// Where an idempotent append landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAppend {
    /// The stream.
    pub stream: StreamId,
    /// Positions of its events, in order.
    pub positions: Vec<u64>,
    /// Ids of its events, in order.
    pub event_ids: Vec<Uuid>,
    /// Fingerprint of the request (see [`crate::idempotency`]), if it was given one.
    pub fingerprint: Option<String>,
}

/// All in-memory indexes of a store.
#[derive(Debug, Default)]
pub struct Index {
    /// Streams by id.
    pub streams: HashMap<StreamId, StreamEntry>,
    /// Streams of each tenant, sorted.
    pub tenants: BTreeMap<String, BTreeSet<String>>,
    /// Position of every stored event id.
    pub event_ids: HashMap<Uuid, u64>,
    /// Appends by (tenant, idempotency key).
    pub idempotency: HashMap<(String, String), StoredAppend>,
    /// First position of every record, ascending (to find the record holding a position).
    pub record_starts: Vec<u64>,
    /// Last committed global position (0 = empty log).
    pub head: u64,
    /// Recorded-at of the last committed event (recorded-at never goes backwards).
    pub last_recorded_at: i64,
}

impl Index {
    /// Derives the indexes from the log, checking that positions are gapless and that each
    /// stream's versions and hash links are consecutive.
    pub fn rebuild(log: &sled::Tree) -> Result<Self, StoreError> {
        let mut index = Index::default();
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
                if b.stream_version != entry.version() + 1 || event.prev_hash != entry.last_hash {
                    return Err(StoreError::Corrupt(format!(
                        "event at position {} is version {} of {stream}, which is at version {} (or its hash link is broken)",
                        b.global_position,
                        b.stream_version,
                        entry.version()
                    )));
                }
                entry.positions.push(b.global_position);
                entry.last_hash = event.hash;
                if entry.positions.len() == 1 {
                    index
                        .tenants
                        .entry(stream.tenant.clone())
                        .or_default()
                        .insert(stream.stream.clone());
                }
                index.event_ids.insert(b.event_id, b.global_position);
                if let Some(stored_key) = b.idempotency_key {
                    let (key, fingerprint) = crate::idempotency::split(stored_key);
                    let stored = index
                        .idempotency
                        .entry((stream.tenant.clone(), key.to_owned()))
                        .or_insert_with(|| StoredAppend {
                            stream: stream.clone(),
                            positions: Vec::new(),
                            event_ids: Vec::new(),
                            fingerprint: fingerprint.map(str::to_owned),
                        });
                    stored.positions.push(b.global_position);
                    stored.event_ids.push(b.event_id);
                }
                index.head = b.global_position;
                index.last_recorded_at = index.last_recorded_at.max(b.recorded_at_micros);
            }
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
        self.streams.get(stream).map_or(0, StreamEntry::version)
    }
}
