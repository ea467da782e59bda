//! The subject scheme and headers of published events.
//!
//! Subject: `<prefix>.<tenant>.<account>.<event type>`, e.g.
//! `keyplan.acme.globex.InteractionLogged`, so a subscriber can filter by tenant, account or
//! event type with NATS wildcards (`keyplan.acme.>`, `keyplan.*.*.ReviewOutcomeRecorded`).
//! Tenant and account ids never contain '.', which the domain's id rules guarantee.

use async_nats::jetstream::message::PublishMessage;
use keyplan_store::RecordedEvent;

/// Header: the event id (also sent as `Nats-Msg-Id` for JetStream's de-duplication).
pub const EVENT_ID: &str = "Keyplan-Event-Id";
/// Header: the global position (equal to the JetStream sequence).
pub const POSITION: &str = "Keyplan-Position";
/// Header: the version within the account's stream.
pub const STREAM_VERSION: &str = "Keyplan-Stream-Version";
/// Header: the event type.
pub const EVENT_TYPE: &str = "Keyplan-Event-Type";
/// Header: the schema version the event was stored with.
pub const SCHEMA_VERSION: &str = "Keyplan-Schema-Version";
/// Header: the tenant.
pub const TENANT: &str = "Keyplan-Tenant";
/// Header: the account.
pub const ACCOUNT: &str = "Keyplan-Account";

/// The subject an event is published on.
pub fn subject_for(prefix: &str, event: &RecordedEvent) -> String {
    format!(
        "{prefix}.{}.{}.{}",
        event.stream.tenant, event.stream.stream, event.event_type
    )
}

/// What identifies a published event besides its payload: the headers and the JetStream
/// de-duplication and ordering checks.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// Event id (`Nats-Msg-Id`).
    pub event_id: &'a str,
    /// Global position; the message is accepted only as the stream's next sequence.
    pub position: u64,
    /// Version within the account's stream.
    pub stream_version: u64,
    /// Event type.
    pub event_type: &'a str,
    /// Schema version.
    pub schema_version: u16,
    /// Tenant.
    pub tenant: &'a str,
    /// Account.
    pub account: &'a str,
}

/// The message the relay publishes: `payload` with `Nats-Msg-Id` = event id,
/// `Nats-Expected-Last-Sequence` = position - 1, and the Keyplan headers.
pub fn message(payload: bytes::Bytes, envelope: Envelope<'_>) -> PublishMessage {
    PublishMessage::build()
        .payload(payload)
        .message_id(envelope.event_id)
        .expected_last_sequence(envelope.position - 1)
        .header(EVENT_ID, envelope.event_id)
        .header(POSITION, envelope.position.to_string().as_str())
        .header(STREAM_VERSION, envelope.stream_version.to_string().as_str())
        .header(EVENT_TYPE, envelope.event_type)
        .header(SCHEMA_VERSION, envelope.schema_version.to_string().as_str())
        .header(TENANT, envelope.tenant)
        .header(ACCOUNT, envelope.account)
}

/// The subject filter matching everything under `prefix`.
pub fn all_subjects(prefix: &str) -> String {
    format!("{prefix}.>")
}
