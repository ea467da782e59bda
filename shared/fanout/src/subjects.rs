//! The subject scheme and headers of published events.
//!
//! Subject: `<prefix>.<tenant>.<account>.<event type>`, e.g.
//! `keyplan.acme.globex.InteractionLogged`, so a subscriber can filter by tenant, account or
//! event type with NATS wildcards (`keyplan.acme.>`, `keyplan.*.*.ReviewOutcomeRecorded`).
//! Tenant and account ids never contain '.', which the domain's id rules guarantee.

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

/// The subject filter matching everything under `prefix`.
pub fn all_subjects(prefix: &str) -> String {
    format!("{prefix}.>")
}
