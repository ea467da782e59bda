//! The records the store keeps: what a caller proposes, and what it gets back once stored.
//!
//! The store is domain-agnostic: payloads are opaque bytes (postcard-encoded domain events),
//! tagged with their event type and schema version so a reader can decode and upcast them.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A stream: the events of one key account, namespaced by tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId {
    /// The tenant (supplier organisation).
    pub tenant: String,
    /// The stream within the tenant (the account id).
    pub stream: String,
}

impl StreamId {
    /// A stream id.
    pub fn new(tenant: impl Into<String>, stream: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            stream: stream.into(),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.stream)
    }
}

/// The stream version an append expects to find (optimistic concurrency).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version (additive facts).
    Any,
    /// The stream must not exist yet (its first event).
    NoStream,
    /// The stream's last version must be exactly this (0 means "no events yet").
    Exact(u64),
}

/// One event a caller asks the store to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedEvent {
    /// Unique id (UUID v7); re-sending an id already stored is a retry, not a new event.
    pub event_id: Uuid,
    /// Event type name, e.g. `InteractionLogged`.
    pub event_type: String,
    /// Schema version of `payload`.
    pub schema_version: u16,
    /// Business time, microseconds since the epoch (may be earlier than recorded-at).
    pub occurred_at_micros: i64,
    /// Encoded event body.
    pub payload: Vec<u8>,
}

/// Metadata shared by every event of one append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendMetadata {
    /// Who issued the command.
    pub actor: String,
    /// Correlates everything done for one user request.
    pub correlation_id: Uuid,
    /// The event or request that caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// Client-chosen key: an append whose key (per tenant) is already stored is a retry and
    /// returns the original result, stores nothing.
    pub idempotency_key: Option<String>,
}

/// An atomic append of one or more events to one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    /// Target stream.
    pub stream: StreamId,
    /// Optimistic concurrency check.
    pub expected: ExpectedVersion,
    /// Events, in order (at least one).
    pub events: Vec<ProposedEvent>,
    /// Shared metadata.
    pub metadata: AppendMetadata,
}

impl AppendRequest {
    /// An upper bound of the stored size of `event` of this append: its variable-length fields
    /// plus the most postcard's fixed fields and length prefixes take, plus its two hashes.
    pub fn encoded_size_bound(&self, event: &ProposedEvent) -> usize {
        const FIXED: usize = 16 + 4 * 10 + 2 * 17 + 3 + 6 * 5 + 2 * crate::layout::HASH_LEN;
        FIXED
            + self.stream.tenant.len()
            + self.stream.stream.len()
            + self.metadata.actor.len()
            + self
                .metadata
                .idempotency_key
                .as_ref()
                .map_or(0, String::len)
            + event.event_type.len()
            + event.payload.len()
    }
}

/// What a successful append returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Stream version of the first appended event.
    pub first_version: u64,
    /// Stream version of the last appended event (the stream's new version).
    pub last_version: u64,
    /// Global position of the first appended event (positions are consecutive within an append).
    pub first_position: u64,
    /// Global position of the last appended event.
    pub last_position: u64,
    /// The stored event ids, in order.
    pub event_ids: Vec<Uuid>,
    /// True when this was a retry of an append already stored: nothing new was written.
    pub deduplicated: bool,
}

/// A stored event with its full metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Unique id (UUID v7).
    pub event_id: Uuid,
    /// Stream it belongs to.
    pub stream: StreamId,
    /// Version within the stream, from 1.
    pub stream_version: u64,
    /// Position in the global log across all streams, from 1, gapless.
    pub global_position: u64,
    /// When the store committed it (server time, microseconds since the epoch).
    pub recorded_at_micros: i64,
    /// Business time (microseconds since the epoch).
    pub occurred_at_micros: i64,
    /// Who issued the command.
    pub actor: String,
    /// Correlation id.
    pub correlation_id: Uuid,
    /// Causation id.
    pub causation_id: Option<Uuid>,
    /// Idempotency key of the append that stored it, if any.
    pub idempotency_key: Option<String>,
    /// Event type name.
    pub event_type: String,
    /// Schema version of `payload`.
    pub schema_version: u16,
    /// Encoded event body.
    pub payload: Vec<u8>,
    /// Hash of the stream's previous event (zeros for version 1).
    pub prev_hash: [u8; 32],
    /// SHA-256 over `prev_hash` and this event's canonical bytes.
    pub hash: [u8; 32],
}
