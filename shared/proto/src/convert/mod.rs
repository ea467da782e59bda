//! Conversions between the wire model (`pb`) and the domain model (`keyplan_domain`).
//!
//! Two directions, with different guarantees:
//!
//! - **wire -> domain** (commands, and events fed in by other services) is fallible: the wire
//!   types are loose (strings, `i32` enums, optional sub-messages), so every field is checked
//!   here and a malformed one is reported as [`DomainError::InvalidArgument`] naming the wire
//!   field (e.g. `details.channel`). Only *type-level* checks happen here: id syntax, dates,
//!   known enum values, required sub-messages, integer ranges. Business rules (an influence of
//!   1-5, a non-empty reason, a known stakeholder...) are the domain's job in `decide`, which
//!   sees every command whatever its transport.
//! - **domain -> wire** (reads) is infallible: domain values are valid by construction.
//!
//! The two directions are exact inverses for every event payload, which the round-trip tests
//! check for each of the 28 event types.
//!
//! [`DomainError::InvalidArgument`]: keyplan_domain::DomainError::InvalidArgument

mod commands;
mod events;
mod recorded;
mod state;
mod values;

pub use commands::{
    command_from_proto, command_to_proto, execute_response_to_proto, expected_version_from_proto,
};
pub use events::{event_payload_from_proto, event_payload_to_proto};
pub use recorded::{event_metadata_to_proto, recorded_event_from_proto, recorded_event_to_proto};
pub use state::{
    account_summary_to_proto, account_to_proto, DEFAULT_INTERACTIONS, MAX_INTERACTIONS,
};
pub use values::{
    date_to_wire, optional_date_to_wire, timestamp_from_proto, timestamp_from_proto_checked,
    timestamp_to_proto, WireEnum,
};
