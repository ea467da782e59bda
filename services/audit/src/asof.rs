//! The account as it was at a past point, rebuilt by replaying its stream.
//!
//! Three points, because auditors ask two different questions about "the past":
//! - a **version**: exactly the first N events;
//! - a **recorded-at** instant: what Keyplan knew then (the events recorded by then). Recorded
//!   times never decrease along the log, and every event was decided on the state of the
//!   events before it, so this is always a prefix of the stream;
//! - an **occurred-at** instant (business time): what we know *now* about what had happened
//!   by then, including facts recorded later with an earlier business time (a meeting logged a
//!   week late). Those events are applied in stream order, skipping the ones that happened
//!   later; this is not a prefix, and it is the view to use for "what did the plan look like
//!   on March 31st" when late entries matter.

use std::ops::ControlFlow;

use keyplan_domain::values::Timestamp;
use keyplan_domain::{AccountEvent, AccountState};
use keyplan_store::{EventStore, StreamId};

use crate::history::{decode, existing_version, for_each};
use crate::status::AuditError;
use crate::text::instant;

/// Which past point to rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// After this stream version (>= 1).
    Version(u64),
    /// As recorded at this instant.
    RecordedAt(Timestamp),
    /// As occurred by this instant (business time).
    OccurredAt(Timestamp),
}

/// An account rebuilt at a past point.
#[derive(Debug, Clone)]
pub(crate) struct AsOf {
    /// The state (its `version` counts the events applied).
    pub state: AccountState,
    /// Stream version of the last event applied.
    pub version: u64,
    /// Events applied.
    pub events_applied: u64,
    /// The stream's last version.
    pub stream_version: u64,
    /// When the event at `version` was recorded.
    pub version_recorded_at: Timestamp,
    /// The point in words.
    pub point: String,
}

/// Rebuilds `stream` at `point`.
pub(crate) fn account_as_of(
    store: &EventStore,
    stream: &StreamId,
    point: Point,
) -> Result<AsOf, AuditError> {
    let current = existing_version(store, stream)?;
    let mut state = AccountState::default();
    let mut version = 0;
    let mut version_recorded_at = Timestamp(0);
    match point {
        Point::Version(requested) => {
            if requested == 0 {
                return Err(AuditError::invalid(
                    "version",
                    "must be at least 1 (version 1 is the account's first event)",
                ));
            }
            if requested > current {
                return Err(AuditError::VersionBeyondStream {
                    field: "version",
                    stream: stream.clone(),
                    requested,
                    current,
                });
            }
            for_each(store, stream, 1, requested, |r| {
                state.apply(&decode(r)?);
                version = r.stream_version;
                version_recorded_at = Timestamp(r.recorded_at_micros);
                Ok(ControlFlow::Continue(()))
            })?;
        }
        Point::RecordedAt(at) => {
            let mut first_recorded_at = None;
            for_each(store, stream, 1, current, |r| {
                first_recorded_at.get_or_insert(Timestamp(r.recorded_at_micros));
                if r.recorded_at_micros > at.as_micros() {
                    return Ok(ControlFlow::Break(()));
                }
                state.apply(&decode(r)?);
                version = r.stream_version;
                version_recorded_at = Timestamp(r.recorded_at_micros);
                Ok(ControlFlow::Continue(()))
            })?;
            if version == 0 {
                return Err(AuditError::NotYetExisting {
                    stream: stream.clone(),
                    view: "as recorded at",
                    at,
                    detail: match first_recorded_at {
                        Some(first) => {
                            format!("its first event was recorded at {}", instant(first))
                        }
                        None => "it has no events".into(),
                    },
                });
            }
        }
        Point::OccurredAt(at) => {
            let mut earliest: Option<Timestamp> = None;
            let mut registered_at: Option<Timestamp> = None;
            for_each(store, stream, 1, current, |r| {
                let occurred = Timestamp(r.occurred_at_micros);
                earliest = Some(earliest.map_or(occurred, |e| e.min(occurred)));
                if occurred > at {
                    if registered_at.is_none() && r.event_type == "AccountRegistered" {
                        registered_at = Some(occurred);
                    }
                    return Ok(ControlFlow::Continue(()));
                }
                let event = decode(r)?;
                if matches!(event, AccountEvent::AccountRegistered(_)) {
                    registered_at.get_or_insert(occurred);
                }
                state.apply(&event);
                version = r.stream_version;
                version_recorded_at = Timestamp(r.recorded_at_micros);
                Ok(ControlFlow::Continue(()))
            })?;
            if !state.exists() {
                let detail = match (state.version, registered_at, earliest) {
                    (0, _, Some(earliest)) => format!(
                        "none of its {current} events had occurred by then, the earliest \
                         occurred at {}",
                        instant(earliest)
                    ),
                    (applied, Some(registered), _) => format!(
                        "it was registered with a business time of {}, after that instant \
                         ({applied} of its events are backdated before the registration)",
                        instant(registered)
                    ),
                    _ => "it was never registered".into(),
                };
                return Err(AuditError::NotYetExisting {
                    stream: stream.clone(),
                    view: "as occurred by",
                    at,
                    detail,
                });
            }
        }
    }
    let events_applied = state.version;
    let point = match point {
        Point::Version(v) => format!(
            "version {v} of {current}, recorded at {}",
            instant(version_recorded_at)
        ),
        Point::RecordedAt(at) => {
            format!(
                "as recorded at {}: versions 1-{version} of {current}",
                instant(at)
            )
        }
        Point::OccurredAt(at) => format!(
            "as occurred by {} (business time): {events_applied} of the {current} events, \
             the latest applied being version {version}",
            instant(at)
        ),
    };
    Ok(AsOf {
        state,
        version,
        events_applied,
        stream_version: current,
        version_recorded_at,
        point,
    })
}
