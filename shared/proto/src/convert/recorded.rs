//! Stored events (`keyplan_store::RecordedEvent`) to their wire form.
//!
//! The store keeps payloads as opaque postcard bytes; they are decoded (and upcast to the
//! current schema) with the domain codec, so readers always see the current event shape.

use keyplan_domain::codec::{self, CodecError};
use keyplan_domain::values::Timestamp;
use keyplan_domain::DomainError;
use keyplan_store::{RecordedEvent, StreamId};
use uuid::Uuid;

use super::events::{event_payload_from_proto, event_payload_to_proto};
use super::values::{timestamp_from_proto, timestamp_to_proto};
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
    let stored_key =
        keyplan_store::idempotency::split(record.idempotency_key.as_deref().unwrap_or_default());
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
        idempotency_key: stored_key.0.to_owned(),
        idempotency_fingerprint: stored_key.1.unwrap_or_default().to_owned(),
        event_type: record.event_type.clone(),
        schema_version: u32::from(record.schema_version),
        prev_hash: record.prev_hash.to_vec(),
        hash: record.hash.to_vec(),
    }
}

/// A stored event back from its wire form (a replica's copy, e.g. JetStream's), for rebuilding
/// a damaged log.
///
/// The payload is re-encoded in its event type's current schema version: for an event stored
/// in that version (all but events written before an upcast) this gives back the exact stored
/// bytes, which the caller proves by checking the event's hash
/// (`keyplan_store::recovery::LogImporter` does). An event stored in an older schema version
/// cannot be rebuilt from its upcast form, and fails that check.
pub fn recorded_event_from_proto(event: pb::Event) -> Result<RecordedEvent, DomainError> {
    let meta = event
        .metadata
        .ok_or_else(|| DomainError::invalid("metadata", "missing"))?;
    let payload = event
        .payload
        .ok_or_else(|| DomainError::invalid("payload", "missing"))?;
    let encoded = codec::encode(&event_payload_from_proto(payload)?);
    let uuid = |field: &'static str, text: &str| {
        Uuid::parse_str(text).map_err(|e| DomainError::invalid(field, e.to_string()))
    };
    let hash = |field: &'static str, bytes: Vec<u8>| -> Result<[u8; 32], DomainError> {
        bytes
            .try_into()
            .map_err(|_| DomainError::invalid(field, "not 32 bytes"))
    };
    let time = |field: &'static str, t: Option<prost_types::Timestamp>| {
        t.map(|t| timestamp_from_proto(t).0)
            .ok_or_else(|| DomainError::invalid(field, "missing"))
    };
    let schema_version = u16::try_from(meta.schema_version)
        .map_err(|_| DomainError::invalid("schema_version", "out of range"))?;
    if meta.event_type != encoded.event_type || schema_version != encoded.schema_version {
        return Err(DomainError::invalid(
            "schema_version",
            format!(
                "the event was stored as {} v{}; only the current version ({} v{}) can be \
                 rebuilt from its wire form",
                meta.event_type, schema_version, encoded.event_type, encoded.schema_version
            ),
        ));
    }
    Ok(RecordedEvent {
        event_id: uuid("event_id", &meta.event_id)?,
        stream: StreamId::new(meta.tenant, meta.account_id),
        stream_version: meta.stream_version,
        global_position: meta.global_position,
        recorded_at_micros: time("recorded_at", meta.recorded_at)?,
        occurred_at_micros: time("occurred_at", meta.occurred_at)?,
        actor: meta.actor,
        correlation_id: uuid("correlation_id", &meta.correlation_id)?,
        causation_id: match meta.causation_id.as_str() {
            "" => None,
            text => Some(uuid("causation_id", text)?),
        },
        idempotency_key: match (
            meta.idempotency_key.as_str(),
            meta.idempotency_fingerprint.as_str(),
        ) {
            ("", _) => None,
            (key, "") => Some(key.to_owned()),
            (key, fingerprint) => Some(keyplan_store::idempotency::join(key, fingerprint)),
        },
        event_type: meta.event_type,
        schema_version,
        payload: encoded.payload,
        prev_hash: hash("prev_hash", meta.prev_hash)?,
        hash: hash("hash", meta.hash)?,
    })
}
