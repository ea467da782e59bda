//! Errors of the event store.

use thiserror::Error;

use crate::record::{ExpectedVersion, StreamId};

/// Why an append or a read failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream is not at the expected version.
    #[error("stream {stream} is at version {current}, expected {expected:?}")]
    WrongExpectedVersion {
        /// The stream.
        stream: StreamId,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's current version (0 = no events).
        current: u64,
    },
    /// An append must carry at least one event.
    #[error("an append must carry at least one event")]
    EmptyAppend,
    /// An event is larger than the store keeps in one piece (see
    /// [`crate::layout::MAX_EVENT_BYTES`]).
    #[error("an event of {size} bytes is larger than the {max} bytes an event may take")]
    EventTooLarge {
        /// The event's size bound, in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Some, but not all, of an append's event ids are already stored: this is neither a new
    /// append nor a retry of a stored one.
    #[error("event id {0} is already stored in another append")]
    EventIdConflict(uuid::Uuid),
    /// The idempotency key was already used for an append to another stream.
    #[error("idempotency key {key:?} was already used for stream {stream}")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
        /// The stream it was used for.
        stream: StreamId,
    },
    /// The idempotency key was already used for a different request on the same stream.
    #[error(
        "idempotency key {key:?} was already used for a different command on this account \
         (stored from position {first_position}); a retry must repeat the same command, and a \
         new command needs a new key"
    )]
    IdempotencyKeyMismatch {
        /// The key.
        key: String,
        /// Where the first request's events start.
        first_position: u64,
    },
    /// The write of this append started and failed: it may or may not be in the log when the
    /// store is reopened. A retry is safe only with the same idempotency key (or event ids),
    /// which the store answers with the stored outcome if the first attempt did land.
    #[error(
        "the outcome of this append is unknown: its write failed ({0}), so it may or may not be \
         stored; retry only with the same idempotency key or event ids"
    )]
    OutcomeUnknown(String),
    /// The store stopped accepting writes (shut down, or a write failed and the on-disk state
    /// must be recovered by reopening).
    #[error("event store is unavailable: {0}")]
    Unavailable(String),
    /// The on-disk data does not decode or is inconsistent.
    #[error("event store data is corrupt: {0}")]
    Corrupt(String),
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// The file system failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
