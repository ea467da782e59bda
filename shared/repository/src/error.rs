//! Why a command or a load failed.

use keyplan_domain::codec::CodecError;
use keyplan_domain::DomainError;
use keyplan_store::{ExpectedVersion, RecordedEvent, StoreError};
use thiserror::Error;

/// A command lost an optimistic-concurrency race: the account moved on since its author read it.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// What the command expected.
    pub expected: ExpectedVersion,
    /// The account's current version.
    pub current_version: u64,
    /// The first event written after the expected version: who beat the command, and with what.
    pub winning_event: Option<RecordedEvent>,
}

/// Why [`crate::AccountRepository`] refused or failed a request.
#[derive(Debug, Error)]
pub enum RepositoryError {
    /// The domain refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The account is not at the version the command expected.
    #[error("account is at version {}, the command expected {:?}", .0.current_version, .0.expected)]
    Conflict(Box<Conflict>),
    /// The idempotency key belongs to an earlier command on another account.
    #[error("idempotency key {key:?} was already used for account {account}")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
        /// The account it was used for.
        account: String,
    },
    /// A stored event could not be decoded.
    #[error("stored event cannot be decoded: {0}")]
    Codec(#[from] CodecError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RepositoryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IdempotencyKeyReused { key, stream } => {
                RepositoryError::IdempotencyKeyReused {
                    key,
                    account: stream.stream,
                }
            }
            other => RepositoryError::Store(other),
        }
    }
}
