//! Reading an account's history from the store, page by page (synchronous: callers run these
//! in `spawn_blocking`).
//!
//! Audit answers are replays of the stream itself, never of a cache or a read model, so that
//! what an auditor sees is exactly what the hash chain covers.

use std::ops::ControlFlow;

use keyplan_domain::codec;
use keyplan_domain::AccountEvent;
use keyplan_store::{Direction, EventStore, RecordedEvent, StreamId};

use crate::status::AuditError;

/// Events read per page while replaying.
const REPLAY_PAGE: usize = 1000;

/// The stream's last version; [`AuditError::UnknownAccount`] if it has no events.
pub(crate) fn existing_version(store: &EventStore, stream: &StreamId) -> Result<u64, AuditError> {
    match store.stream_version(stream)? {
        0 => Err(AuditError::UnknownAccount(stream.clone())),
        version => Ok(version),
    }
}

/// Calls `visit` with each event of versions `from..=to` in stream order, until it breaks.
pub(crate) fn for_each(
    store: &EventStore,
    stream: &StreamId,
    from: u64,
    to: u64,
    mut visit: impl FnMut(&RecordedEvent) -> Result<ControlFlow<()>, AuditError>,
) -> Result<(), AuditError> {
    let mut next = from.max(1);
    while next <= to {
        let want = (to - next + 1).min(REPLAY_PAGE as u64) as usize;
        let slice = store.read_stream(stream, next, Direction::Forward, want)?;
        if slice.events.is_empty() {
            return Ok(());
        }
        for recorded in &slice.events {
            if recorded.stream_version > to {
                return Ok(());
            }
            if visit(recorded)?.is_break() {
                return Ok(());
            }
            next = recorded.stream_version + 1;
        }
    }
    Ok(())
}

/// The event stored in `recorded`, upcast to the current schema.
pub(crate) fn decode(recorded: &RecordedEvent) -> Result<AccountEvent, AuditError> {
    codec::decode(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.payload,
    )
    .map_err(|source| AuditError::Codec {
        version: recorded.stream_version,
        source,
    })
}
