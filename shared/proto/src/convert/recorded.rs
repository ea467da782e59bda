//! Stored events (`keyplan_store::RecordedEvent`) to their wire form.
//!
//! The store keeps payloads as opaque postcard bytes; they are decoded (and upcast to the
//! current schema) with the domain codec, so readers always see the current event shape.

use keyplan_domain::codec::{self, CodecError};
use keyplan_domain::values::Timestamp;
use keyplan_store::RecordedEvent;

use super::events::event_payload_to_proto;
use super::values::timestamp_to_proto;
use crate::pb;

/// The wire form of a stored event: its metadata and its decoded, upcast payload.
///
/// Fails only if the payload cannot be decoded (an event type or schema version unknown to
/// this build, or corrupt bytes): the caller decides whether that is an internal error or an
/// event to skip.
pub fn recorded_event_to_proto(record: &RecordedEvent) -> Result<pb::Event, CodecError> {
    let event = codec::decode(&record.event_type, record.schema_version, &record.payload)?;
    Ok(pb::Event {
        metadata: Some(event_metadata_to_proto(record)),
        payload: Some(event_payload_to_proto(&event)),
    })
}

/// The wire form of a stored event's metadata alone, for callers that decode the payload
/// themselves (e.g. to fold it into a state as well).
///
/// Absent causation id and idempotency key become empty strings; `schema_version` is the
/// version the payload was *stored* in, which may be older than the payload shown.
pub fn event_metadata_to_proto(record: &RecordedEvent) -> pb::EventMetadata {
    pb::EventMetadata {
        event_id: record.event_id.to_string(),
        tenant: record.stream.tenant.clone(),
        account_id: record.stream.stream.clone(),
        stream_version: record.stream_version,
        global_position: record.global_position,
        recorded_at: Some(timestamp_to_proto(Timestamp(record.recorded_at_micros))),
        occurred_at: Some(timestamp_to_proto(Timestamp(record.occurred_at_micros))),
        actor: record.actor.clone(),
        correlation_id: record.correlation_id.to_string(),
        causation_id: record
            .causation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        idempotency_key: record.idempotency_key.clone().unwrap_or_default(),
        event_type: record.event_type.clone(),
        schema_version: u32::from(record.schema_version),
        prev_hash: record.prev_hash.to_vec(),
        hash: record.hash.to_vec(),
    }
}
