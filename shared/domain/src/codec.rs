//! Stored form of events: postcard bytes of the event's payload struct, tagged in the
//! envelope with the event type and schema version, and the upcasters that turn an old
//! schema version into the current one.
//!
//! Why postcard: compact and deterministic (the same event always encodes to the same bytes, so
//! hashes over stored events are stable). Why the payload struct rather than the enum: the enum's
//! variant index would tie stored bytes to declaration order; the type name in the envelope
//! does not.
//!
//! postcard is positional and carries no field names, so bytes of one schema version can never
//! be read as another: [`decode`] dispatches on the stored version, and every old version keeps
//! its own private struct (`...V1`) and an upcaster to the current shape.
//!
//! Schema history:
//! - every event type: version 1;
//! - `InteractionLogged`, `InteractionCorrected`: version 2 adds
//!   `InteractionDetails::opportunity_id` (v1 events upcast with `None`).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::events::{
    self, AccountEvent, InteractionCorrected, InteractionDetails, InteractionLogged,
};
use crate::ids::{InteractionId, PersonId, StakeholderId};
use crate::values::{Channel, Sentiment, Timestamp};

/// An event in its stored form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// Event type name (e.g. `"InteractionLogged"`).
    pub event_type: &'static str,
    /// Schema version of `payload`.
    pub schema_version: u16,
    /// postcard bytes of the payload struct.
    pub payload: Vec<u8>,
}

/// A stored event that cannot be read back.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The event type is not known to this version of Keyplan.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// The schema version is newer than this version of Keyplan, or was never defined.
    #[error(
        "event type {event_type} has no schema version {schema_version} (current is {current})"
    )]
    UnknownSchemaVersion {
        /// Event type.
        event_type: String,
        /// Version found.
        schema_version: u16,
        /// Version this build writes.
        current: u16,
    },
    /// The bytes do not decode as the declared type and version.
    #[error("corrupt {event_type} v{schema_version} payload: {reason}")]
    Corrupt {
        /// Event type.
        event_type: String,
        /// Version.
        schema_version: u16,
        /// Decoder's message.
        reason: String,
    },
}

/// Declares, once, every event type with the schema version this build writes, and derives
/// from that table the encoder, the current-version decoder and [`current_schema_version`].
/// The encoder's `match` is exhaustive, so an event type missing here does not compile.
macro_rules! event_schemas {
    ($($variant:ident => $version:literal),+ $(,)?) => {
        /// The schema version this build writes for an event type, if the type is known.
        pub fn current_schema_version(event_type: &str) -> Option<u16> {
            match event_type {
                $(stringify!($variant) => Some($version),)+
                _ => None,
            }
        }

        fn encode_payload(event: &AccountEvent) -> Result<Vec<u8>, postcard::Error> {
            match event {
                $(AccountEvent::$variant(e) => postcard::to_allocvec(e),)+
            }
        }

        /// Decodes a payload of the current schema version; `None` if the type is unknown.
        fn decode_current(
            event_type: &str,
            payload: &[u8],
        ) -> Option<Result<AccountEvent, String>> {
            match event_type {
                $(stringify!($variant) => {
                    Some(strict_from_bytes::<events::$variant>(payload).map(AccountEvent::$variant))
                })+
                _ => None,
            }
        }
    };
}

event_schemas!(
    AccountRegistered => 1,
    TierAssessed => 1,
    AccountPromoted => 1,
    AccountDemoted => 1,
    TeamMemberAssigned => 1,
    TeamMemberUnassigned => 1,
    PlanDrafted => 1,
    PlanSectionRevised => 1,
    ObjectiveSet => 1,
    ObjectiveProgressed => 1,
    OpportunityIdentified => 1,
    OpportunityStageChanged => 1,
    OpportunityWon => 1,
    OpportunityLost => 1,
    ActionItemAdded => 1,
    ActionItemCompleted => 1,
    ActionItemCancelled => 1,
    RevenueRecorded => 1,
    StakeholderAdded => 1,
    StakeholderProfileChanged => 1,
    StakeholderDeparted => 1,
    EngagementRuleSet => 1,
    EngagementRuleRetired => 1,
    InteractionLogged => 2,
    InteractionCorrected => 2,
    ReviewScheduled => 1,
    ReviewOutcomeRecorded => 1,
    ReviewCancelled => 1,
);

/// Encodes an event in its current schema version.
pub fn encode(event: &AccountEvent) -> EncodedEvent {
    let event_type = event.event_type();
    EncodedEvent {
        event_type,
        // Always `Some`: the table above lists every variant (its encoder match is exhaustive).
        schema_version: current_schema_version(event_type).unwrap_or(1),
        // postcard cannot fail on these types: they hold only integers, strings, sequences of
        // known length, options and enums (no maps, no custom serializers that error).
        payload: encode_payload(event).expect("postcard serialization of an event cannot fail"),
    }
}

/// Decodes a stored event, upcasting older schema versions to the current one.
pub fn decode(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<AccountEvent, CodecError> {
    let current = current_schema_version(event_type)
        .ok_or_else(|| CodecError::UnknownEventType(event_type.to_owned()))?;
    let unknown_version = || CodecError::UnknownSchemaVersion {
        event_type: event_type.to_owned(),
        schema_version,
        current,
    };
    if schema_version == 0 || schema_version > current {
        return Err(unknown_version());
    }
    let decoded = if schema_version == current {
        decode_current(event_type, payload).ok_or_else(unknown_version)?
    } else {
        upcast(event_type, schema_version, payload).ok_or_else(unknown_version)?
    };
    decoded.map_err(|reason| CodecError::Corrupt {
        event_type: event_type.to_owned(),
        schema_version,
        reason,
    })
}

/// Reads an old schema version and converts it to the current shape; `None` if that version
/// of that type never existed.
fn upcast(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Option<Result<AccountEvent, String>> {
    match (event_type, schema_version) {
        ("InteractionLogged", 1) => Some(
            strict_from_bytes::<InteractionLoggedV1>(payload)
                .map(|e| AccountEvent::InteractionLogged(e.into())),
        ),
        ("InteractionCorrected", 1) => Some(
            strict_from_bytes::<InteractionCorrectedV1>(payload)
                .map(|e| AccountEvent::InteractionCorrected(e.into())),
        ),
        _ => None,
    }
}

/// Decodes `payload` as exactly one `T`: trailing bytes mean the payload is not what its
/// envelope says (for instance a v2 payload labelled v1, which would otherwise decode).
fn strict_from_bytes<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(payload) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} unexpected trailing bytes", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

// ---------------------------------------------------------------- schema version 1 shapes

/// `InteractionDetails` as of schema version 1: no `opportunity_id`. Field order matters.
#[derive(Serialize, Deserialize)]
struct InteractionDetailsV1 {
    occurred_at: Timestamp,
    channel: Channel,
    stakeholders: Vec<StakeholderId>,
    participants: Vec<PersonId>,
    summary: String,
    sentiment: Sentiment,
    next_step: String,
}

/// `InteractionLogged` as of schema version 1.
#[derive(Serialize, Deserialize)]
struct InteractionLoggedV1 {
    interaction_id: InteractionId,
    details: InteractionDetailsV1,
}

/// `InteractionCorrected` as of schema version 1.
#[derive(Serialize, Deserialize)]
struct InteractionCorrectedV1 {
    interaction_id: InteractionId,
    details: InteractionDetailsV1,
    reason: String,
}

impl From<InteractionDetailsV1> for InteractionDetails {
    fn from(v1: InteractionDetailsV1) -> Self {
        Self {
            occurred_at: v1.occurred_at,
            channel: v1.channel,
            stakeholders: v1.stakeholders,
            participants: v1.participants,
            summary: v1.summary,
            sentiment: v1.sentiment,
            next_step: v1.next_step,
            // v1 had no way to say which opportunity was discussed.
            opportunity_id: None,
        }
    }
}

/// Downgrade for [`legacy`]: what a v1 writer would have stored (the opportunity is dropped).
impl From<&InteractionDetails> for InteractionDetailsV1 {
    fn from(d: &InteractionDetails) -> Self {
        Self {
            occurred_at: d.occurred_at,
            channel: d.channel,
            stakeholders: d.stakeholders.clone(),
            participants: d.participants.clone(),
            summary: d.summary.clone(),
            sentiment: d.sentiment,
            next_step: d.next_step.clone(),
        }
    }
}

impl From<InteractionLoggedV1> for InteractionLogged {
    fn from(v1: InteractionLoggedV1) -> Self {
        Self {
            interaction_id: v1.interaction_id,
            details: v1.details.into(),
        }
    }
}

impl From<InteractionCorrectedV1> for InteractionCorrected {
    fn from(v1: InteractionCorrectedV1) -> Self {
        Self {
            interaction_id: v1.interaction_id,
            details: v1.details.into(),
            reason: v1.reason,
        }
    }
}

/// Writers of old schema versions, so that tests (here and in the store and services) can
/// produce genuine old bytes and exercise the upcasters end to end. Production code never
/// writes old versions.
pub mod legacy {
    use super::*;

    /// `e` as a schema-version-1 `InteractionLogged` (its `opportunity_id` is dropped).
    pub fn encode_interaction_logged_v1(e: &InteractionLogged) -> EncodedEvent {
        let v1 = InteractionLoggedV1 {
            interaction_id: e.interaction_id.clone(),
            details: (&e.details).into(),
        };
        encoded_v1("InteractionLogged", &v1)
    }

    /// `e` as a schema-version-1 `InteractionCorrected` (its `opportunity_id` is dropped).
    pub fn encode_interaction_corrected_v1(e: &InteractionCorrected) -> EncodedEvent {
        let v1 = InteractionCorrectedV1 {
            interaction_id: e.interaction_id.clone(),
            details: (&e.details).into(),
            reason: e.reason.clone(),
        };
        encoded_v1("InteractionCorrected", &v1)
    }

    fn encoded_v1<T: Serialize>(event_type: &'static str, payload: &T) -> EncodedEvent {
        EncodedEvent {
            event_type,
            schema_version: 1,
            payload: postcard::to_allocvec(payload)
                .expect("postcard serialization of an event cannot fail"),
        }
    }
}
