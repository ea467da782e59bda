//! The on-disk layout of the global log.
//!
//! # Why this shape
//! sled costs several microseconds per key written, so throughput is bounded by keys per
//! second, not bytes. The log therefore stores one **record** per commit chunk: a sled key
//! (the global position of the chunk's first event, big-endian so keys sort by position)
//! whose value holds many consecutive events. A commit batch of 1,000 events writes a handful
//! of keys instead of thousands.
//!
//! Records are capped at [`MAX_RECORD_BYTES`] so that sled keeps them inline in its log:
//! values above ~128 KiB become separate blob files, which sled 0.34 writes without fsync.
//!
//! Everything else (per-stream version index, event-id and idempotency-key indexes) is
//! derived from the log when the store opens, so a commit writes nothing but the log.
//!
//! # Record format
//! ```text
//! u32 LE  count
//! u32 LE  end offset of event i (relative to the start of the event area), count times
//! event area: for each event, body bytes (postcard of EventBody) ++ prev_hash ++ hash
//! ```
//! The offsets make one event addressable without decoding its neighbours.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::StoreError;
use crate::record::{RecordedEvent, StreamId};

/// Upper bound of one record's value, in bytes (a single larger event gets a record of its own).
pub const MAX_RECORD_BYTES: usize = 48 * 1024;

/// Upper bound of one stored event, in bytes (body and hashes): 192 KiB, ten times the longest
/// text field with room for the rest. With it, no page of the log exceeds sled's blob
/// threshold in a log created with [`crate::settings::SEGMENT_SIZE`]: a leaf holds at most 17
/// records before sled splits it (19 if a split is retried), 19 x 192 KiB < 4 MiB; pages that
/// exceed it go to blob files that sled does not sync (see [`crate::durable`]).
pub const MAX_EVENT_BYTES: usize = 192 * 1024;

/// Name of the sled tree holding the log.
pub const LOG_TREE: &str = "log";

/// Name of the sled tree holding consumers' checkpoints (not part of the log).
pub const CHECKPOINT_TREE: &str = "checkpoints";

/// The sled tree where versions before 2026-12-01 kept streams' snapshots; dropped at open
/// (snapshots are files now, see [`crate::EventStore::snapshot`]).
pub const SNAPSHOT_TREE: &str = "snapshots";

/// Length of a SHA-256 hash.
pub const HASH_LEN: usize = 32;

/// The hashed part of a stored event: everything but the two hashes.
///
/// Borrowed so that recovery and reads decode without copying payloads.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventBody<'a> {
    /// Event id.
    pub event_id: Uuid,
    /// Tenant.
    pub tenant: &'a str,
    /// Stream within the tenant.
    pub stream: &'a str,
    /// Version within the stream.
    pub stream_version: u64,
    /// Global position.
    pub global_position: u64,
    /// Recorded-at, microseconds.
    pub recorded_at_micros: i64,
    /// Occurred-at, microseconds.
    pub occurred_at_micros: i64,
    /// Actor.
    pub actor: &'a str,
    /// Correlation id.
    pub correlation_id: Uuid,
    /// Causation id.
    pub causation_id: Option<Uuid>,
    /// Idempotency key of the append.
    pub idempotency_key: Option<&'a str>,
    /// Event type.
    pub event_type: &'a str,
    /// Schema version.
    pub schema_version: u16,
    /// Payload.
    #[serde(with = "serde_bytes")]
    pub payload: &'a [u8],
}

/// A stored event as read from a record, borrowing the record's bytes.
#[derive(Debug)]
pub struct StoredEventRef<'a> {
    /// The hashed fields.
    pub body: EventBody<'a>,
    /// The exact bytes that were hashed.
    pub body_bytes: &'a [u8],
    /// Hash of the stream's previous event.
    pub prev_hash: [u8; HASH_LEN],
    /// This event's hash.
    pub hash: [u8; HASH_LEN],
}

impl StoredEventRef<'_> {
    /// The hash this event should have: SHA-256(prev_hash ++ body bytes).
    pub fn expected_hash(&self) -> [u8; HASH_LEN] {
        chain_hash(&self.prev_hash, self.body_bytes)
    }

    /// An owned copy with all metadata.
    pub fn to_recorded(&self) -> RecordedEvent {
        let b = &self.body;
        RecordedEvent {
            event_id: b.event_id,
            stream: StreamId::new(b.tenant, b.stream),
            stream_version: b.stream_version,
            global_position: b.global_position,
            recorded_at_micros: b.recorded_at_micros,
            occurred_at_micros: b.occurred_at_micros,
            actor: b.actor.to_owned(),
            correlation_id: b.correlation_id,
            causation_id: b.causation_id,
            idempotency_key: b.idempotency_key.map(str::to_owned),
            event_type: b.event_type.to_owned(),
            schema_version: b.schema_version,
            payload: b.payload.to_vec(),
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// SHA-256 over the previous hash and an event's canonical body bytes.
pub fn chain_hash(prev_hash: &[u8; HASH_LEN], body_bytes: &[u8]) -> [u8; HASH_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(body_bytes);
    hasher.finalize().into()
}

/// The sled key of a record starting at `position`.
pub fn record_key(position: u64) -> [u8; 8] {
    position.to_be_bytes()
}

/// The position a record key names.
pub fn position_of_key(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("log key of {} bytes, expected 8", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Builds records out of encoded events, cutting a new record when one would exceed
/// [`MAX_RECORD_BYTES`].
#[derive(Debug, Default)]
pub struct RecordBuilder {
    records: Vec<(u64, Vec<u8>)>,
    current_first: u64,
    offsets: Vec<u32>,
    area: Vec<u8>,
}

impl RecordBuilder {
    /// Encodes and appends one event at `body.global_position`; returns its hash.
    pub fn push(
        &mut self,
        body: &EventBody<'_>,
        prev_hash: &[u8; HASH_LEN],
    ) -> Result<[u8; HASH_LEN], StoreError> {
        let body_bytes = postcard::to_allocvec(body)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode event: {e}")))?;
        let hash = chain_hash(prev_hash, &body_bytes);
        let size = body_bytes.len() + 2 * HASH_LEN;
        if !self.offsets.is_empty()
            && self.area.len() + size + 4 * (self.offsets.len() + 2) > MAX_RECORD_BYTES
        {
            self.cut();
        }
        if self.offsets.is_empty() {
            self.current_first = body.global_position;
        }
        self.area.extend_from_slice(&body_bytes);
        self.area.extend_from_slice(prev_hash);
        self.area.extend_from_slice(&hash);
        let end = u32::try_from(self.area.len())
            .map_err(|_| StoreError::Corrupt("record larger than 4 GiB".into()))?;
        self.offsets.push(end);
        Ok(hash)
    }

    fn cut(&mut self) {
        if self.offsets.is_empty() {
            return;
        }
        let mut value = Vec::with_capacity(4 + 4 * self.offsets.len() + self.area.len());
        value.extend_from_slice(&(self.offsets.len() as u32).to_le_bytes());
        for end in &self.offsets {
            value.extend_from_slice(&end.to_le_bytes());
        }
        value.extend_from_slice(&self.area);
        self.records.push((self.current_first, value));
        self.offsets.clear();
        self.area.clear();
    }

    /// The finished records: (first position, value).
    pub fn finish(mut self) -> Vec<(u64, Vec<u8>)> {
        self.cut();
        self.records
    }
}

/// A record as stored: a view over its value bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    first_position: u64,
    ends: &'a [u8],
    area: &'a [u8],
    count: usize,
}

impl<'a> RecordView<'a> {
    /// Parses a record's header.
    pub fn parse(first_position: u64, value: &'a [u8]) -> Result<Self, StoreError> {
        let corrupt =
            || StoreError::Corrupt(format!("record at position {first_position} is truncated"));
        let count_bytes: [u8; 4] = value
            .get(..4)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?;
        let count = u32::from_le_bytes(count_bytes) as usize;
        let header_end = 4 + 4 * count;
        let ends = value.get(4..header_end).ok_or_else(corrupt)?;
        let area = value.get(header_end..).ok_or_else(corrupt)?;
        Ok(Self {
            first_position,
            ends,
            area,
            count,
        })
    }

    /// Number of events in the record.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the record holds no events (never the case for a stored record).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Global position of the record's first event.
    pub fn first_position(&self) -> u64 {
        self.first_position
    }

    /// Global position one past the record's last event.
    pub fn end_position(&self) -> u64 {
        self.first_position.saturating_add(self.count as u64)
    }

    fn end_of(&self, i: usize) -> Result<usize, StoreError> {
        let b = self.ends.get(4 * i..4 * i + 4).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "record at {} has no event {i}",
                self.first_position
            ))
        })?;
        let arr: [u8; 4] = b
            .try_into()
            .map_err(|_| StoreError::Corrupt("offset".into()))?;
        Ok(u32::from_le_bytes(arr) as usize)
    }

    /// The `i`-th event of the record.
    pub fn event(&self, i: usize) -> Result<StoredEventRef<'a>, StoreError> {
        let start = if i == 0 { 0 } else { self.end_of(i - 1)? };
        let end = self.end_of(i)?;
        let position = self.first_position.saturating_add(i as u64);
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("event at position {position}: {what}"));
        let bytes = self
            .area
            .get(start..end)
            .ok_or_else(|| corrupt("out of bounds"))?;
        if bytes.len() < 2 * HASH_LEN {
            return Err(corrupt("too short"));
        }
        let (body_bytes, hashes) = bytes.split_at(bytes.len() - 2 * HASH_LEN);
        let body: EventBody<'a> = postcard::from_bytes(body_bytes)
            .map_err(|e| corrupt(&format!("body does not decode: {e}")))?;
        if body.global_position != position {
            return Err(corrupt(&format!(
                "claims position {}",
                body.global_position
            )));
        }
        let mut prev_hash = [0u8; HASH_LEN];
        let mut hash = [0u8; HASH_LEN];
        prev_hash.copy_from_slice(&hashes[..HASH_LEN]);
        hash.copy_from_slice(&hashes[HASH_LEN..]);
        Ok(StoredEventRef {
            body,
            body_bytes,
            prev_hash,
            hash,
        })
    }

    /// Iterates over the record's events.
    pub fn events(self) -> impl Iterator<Item = Result<StoredEventRef<'a>, StoreError>> {
        (0..self.count).map(move |i| self.event(i))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(position: u64, payload: &[u8]) -> EventBody<'_> {
        EventBody {
            event_id: Uuid::now_v7(),
            tenant: "acme",
            stream: "globex",
            stream_version: position,
            global_position: position,
            recorded_at_micros: 1,
            occurred_at_micros: 1,
            actor: "dana",
            correlation_id: Uuid::nil(),
            causation_id: None,
            idempotency_key: None,
            event_type: "InteractionLogged",
            schema_version: 2,
            payload,
        }
    }

    #[test]
    fn records_round_trip_and_split_at_the_size_cap() {
        let payload = vec![7u8; 1000];
        let mut builder = RecordBuilder::default();
        let mut prev = [0u8; HASH_LEN];
        for p in 1..=200 {
            prev = builder.push(&body(p, &payload), &prev).unwrap();
        }
        let records = builder.finish();
        assert!(
            records.len() > 1,
            "200 KB of events must not fit one record"
        );
        let mut expected_position = 1;
        let mut prev = [0u8; HASH_LEN];
        for (first, value) in &records {
            assert!(value.len() <= MAX_RECORD_BYTES);
            assert_eq!(*first, expected_position);
            let view = RecordView::parse(*first, value).unwrap();
            for event in view.events() {
                let event = event.unwrap();
                assert_eq!(event.body.global_position, expected_position);
                assert_eq!(event.body.payload, &payload[..]);
                assert_eq!(event.prev_hash, prev);
                assert_eq!(event.expected_hash(), event.hash);
                prev = event.hash;
                expected_position += 1;
            }
        }
        assert_eq!(expected_position, 201);
    }
}
