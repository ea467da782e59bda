//! Stored form of events: postcard bytes of the event's payload struct, tagged in the
//! envelope with the event type and schema version, and the upcasters that turn an old
//! schema version into the current one.
//!
//! TODO(domain helper): implement encode/decode and the InteractionLogged/InteractionCorrected
//! v1 -> v2 upcast.

use thiserror::Error;

use crate::events::AccountEvent;

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
    #[error("event type {event_type} has no schema version {schema_version} (current is {current})")]
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

/// Encodes an event in its current schema version.
pub fn encode(event: &AccountEvent) -> EncodedEvent {
    let _ = event;
    unimplemented!()
}

/// Decodes a stored event, upcasting older schema versions to the current one.
pub fn decode(event_type: &str, schema_version: u16, payload: &[u8]) -> Result<AccountEvent, CodecError> {
    let _ = (event_type, schema_version, payload);
    unimplemented!()
}

/// The schema version this build writes for an event type, if the type is known.
pub fn current_schema_version(event_type: &str) -> Option<u16> {
    let _ = event_type;
    unimplemented!()
}
