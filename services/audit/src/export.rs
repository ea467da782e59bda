//! The export format: one JSON object per event (JSON Lines).
//!
//! Why JSON Lines: auditors load exports into tools that know nothing of Keyplan (jq, Python,
//! spreadsheets, log archives); one self-contained line per event streams, appends and greps
//! well, and a truncated file is still valid up to its last line. Each line carries the hash
//! chain (`prev_hash`, `hash`), so the lines' order and completeness can be checked without
//! Keyplan, and the last `hash` matches `VerifyAccount`'s `last_hash` when nothing was added
//! since.
//!
//! The field order is fixed (that of [`ExportLine`]), so two exports of the same history are
//! byte for byte identical.

use keyplan_domain::AccountEvent;
use keyplan_store::RecordedEvent;
use serde::Serialize;

use crate::history::decode;
use crate::status::AuditError;
use crate::text::instant_micros;

/// Events per exported chunk (a chunk is a few hundred kilobytes at most).
pub(crate) const EVENTS_PER_CHUNK: usize = 256;

/// One line of an export. The field order here is the line's field order.
#[derive(Debug, Serialize)]
struct ExportLine<'a> {
    event_id: String,
    tenant: &'a str,
    account_id: &'a str,
    stream_version: u64,
    global_position: u64,
    /// RFC 3339, UTC, microseconds.
    recorded_at: String,
    /// RFC 3339, UTC, microseconds.
    occurred_at: String,
    actor: &'a str,
    correlation_id: String,
    causation_id: Option<String>,
    idempotency_key: Option<&'a str>,
    event_type: &'a str,
    /// The version the payload was stored in (the event below is upcast to the current one).
    schema_version: u16,
    /// Hex.
    prev_hash: String,
    /// Hex.
    hash: String,
    /// The domain event, externally tagged by its type.
    event: &'a AccountEvent,
}

/// Appends `recorded` as one JSON line (terminated by `\n`) to `out`.
pub(crate) fn write_line(recorded: &RecordedEvent, out: &mut Vec<u8>) -> Result<(), AuditError> {
    let event = decode(recorded)?;
    let line = ExportLine {
        event_id: recorded.event_id.to_string(),
        tenant: &recorded.stream.tenant,
        account_id: &recorded.stream.stream,
        stream_version: recorded.stream_version,
        global_position: recorded.global_position,
        recorded_at: instant_micros(recorded.recorded_at_micros),
        occurred_at: instant_micros(recorded.occurred_at_micros),
        actor: &recorded.actor,
        correlation_id: recorded.correlation_id.to_string(),
        causation_id: recorded.causation_id.map(|id| id.to_string()),
        idempotency_key: recorded
            .idempotency_key
            .as_deref()
            .map(|stored| keyplan_store::idempotency::split(stored).0),
        event_type: &recorded.event_type,
        schema_version: recorded.schema_version,
        prev_hash: hex::encode(recorded.prev_hash),
        hash: hex::encode(recorded.hash),
        event: &event,
    };
    // Serializing plain structs, strings and the domain's derived types into a Vec cannot fail
    // (no maps with non-string keys, no I/O); report it as a task failure if it ever does.
    serde_json::to_writer(&mut *out, &line).map_err(|e| {
        AuditError::Task(format!(
            "version {} could not be written as JSON: {e}",
            recorded.stream_version
        ))
    })?;
    out.push(b'\n');
    Ok(())
}
