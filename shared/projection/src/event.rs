//! The event as projections see it: decoded, with the metadata read models use.

use keyplan_domain::codec;
use keyplan_domain::values::Timestamp;
use keyplan_domain::AccountEvent;
use keyplan_proto::pb;
use keyplan_store::RecordedEvent;
use uuid::Uuid;

use crate::ProjectionError;

/// A decoded event with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedEvent {
    /// Global position (= JetStream sequence).
    pub position: u64,
    /// Event id.
    pub event_id: Uuid,
    /// Tenant.
    pub tenant: String,
    /// Account (stream).
    pub account: String,
    /// Version within the account's stream.
    pub stream_version: u64,
    /// When Keyplan recorded it.
    pub recorded_at: Timestamp,
    /// When it happened (business time).
    pub occurred_at: Timestamp,
    /// Who caused it.
    pub actor: String,
    /// The event, upcast to the current schema.
    pub event: AccountEvent,
}

impl ProjectedEvent {
    /// From the local log (postcard payload, upcast by the codec).
    pub fn from_recorded(r: &RecordedEvent) -> Result<Self, ProjectionError> {
        let event = codec::decode(&r.event_type, r.schema_version, &r.payload).map_err(|e| {
            ProjectionError::Decode {
                position: r.global_position,
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            position: r.global_position,
            event_id: r.event_id,
            tenant: r.stream.tenant.clone(),
            account: r.stream.stream.clone(),
            stream_version: r.stream_version,
            recorded_at: Timestamp(r.recorded_at_micros),
            occurred_at: Timestamp(r.occurred_at_micros),
            actor: r.actor.clone(),
            event,
        })
    }

    /// From JetStream (the protobuf `keyplan.v1.Event`).
    pub fn from_proto(sequence: u64, e: pb::Event) -> Result<Self, ProjectionError> {
        let decode = |reason: String| ProjectionError::Decode {
            position: sequence,
            reason,
        };
        let meta = e.metadata.ok_or_else(|| decode("no metadata".into()))?;
        let payload = e.payload.ok_or_else(|| decode("no payload".into()))?;
        let event = keyplan_proto::convert::event_payload_from_proto(payload)
            .map_err(|e| decode(e.to_string()))?;
        let time = |t: Option<prost_types::Timestamp>| {
            t.map(keyplan_proto::convert::timestamp_from_proto)
                .unwrap_or(Timestamp(0))
        };
        Ok(Self {
            position: meta.global_position,
            event_id: Uuid::parse_str(&meta.event_id)
                .map_err(|e| decode(format!("event id: {e}")))?,
            tenant: meta.tenant,
            account: meta.account_id,
            stream_version: meta.stream_version,
            recorded_at: time(meta.recorded_at),
            occurred_at: time(meta.occurred_at),
            actor: meta.actor,
            event,
        })
    }
}
