//! Why an audit request failed, and the one mapping from those failures to gRPC statuses.
//!
//! Every message says what was asked, what the stream holds, and what to ask instead, because
//! the reader is usually an auditor with a client tool and no access to the server's logs.

use keyplan_domain::codec::CodecError;
use keyplan_domain::values::Timestamp;
use keyplan_store::{StoreError, StreamId};
use thiserror::Error;
use tonic::{Code, Status};

/// A failed audit request.
#[derive(Debug, Error)]
pub enum AuditError {
    /// A request field is missing or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The offending field, as named in audit.proto.
        field: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A required request field (a oneof) is not set.
    #[error("{field} is required: {hint}")]
    Missing {
        /// The field, as named in audit.proto.
        field: &'static str,
        /// What to set instead.
        hint: &'static str,
    },
    /// The account has no events at all.
    #[error(
        "account {} has no events for tenant {}; check the tenant and account id \
         (AccountService/ListAccounts lists a tenant's accounts)",
        .0.stream, .0.tenant
    )]
    UnknownAccount(StreamId),
    /// A version beyond the stream's last one was asked for.
    #[error(
        "{field} {requested} does not exist: account {stream} has {current} events \
         (versions 1-{current})"
    )]
    VersionBeyondStream {
        /// The request field holding the version.
        field: &'static str,
        /// The stream.
        stream: StreamId,
        /// The version asked for.
        requested: u64,
        /// The stream's last version.
        current: u64,
    },
    /// The account did not exist yet at the instant asked for.
    #[error("account {stream} did not exist yet {view} {at}: {detail}; ask for a later instant")]
    NotYetExisting {
        /// The stream.
        stream: StreamId,
        /// "as recorded at" or "as occurred by".
        view: &'static str,
        /// The instant asked for.
        at: Timestamp,
        /// Why, e.g. when its first event was recorded.
        detail: String,
    },
    /// A review named by a diff does not exist in the account.
    #[error(
        "account {stream} has no review {review_id} ({field}); its reviews with a recorded \
         outcome are: {known}"
    )]
    UnknownReview {
        /// The request field naming the review.
        field: &'static str,
        /// The stream.
        stream: StreamId,
        /// The review asked for.
        review_id: String,
        /// The reviews that could be used instead.
        known: String,
    },
    /// A review named by a diff exists but has no recorded outcome to compare at.
    #[error(
        "review {review_id} ({field}) of account {stream} has no recorded outcome (it is \
         {status}); compare reviews whose outcome was recorded, or use a version range"
    )]
    ReviewWithoutOutcome {
        /// The request field naming the review.
        field: &'static str,
        /// The stream.
        stream: StreamId,
        /// The review.
        review_id: String,
        /// Where it stands ("scheduled", "cancelled").
        status: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event cannot be decoded.
    #[error("stored event at version {version} cannot be read: {source}")]
    Codec {
        /// Its stream version.
        version: u64,
        /// Why.
        source: CodecError,
    },
    /// A blocking read task panicked or was cancelled.
    #[error("a replay task failed: {0}")]
    Task(String),
}

impl AuditError {
    /// An [`AuditError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<tokio::task::JoinError> for AuditError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task(e.to_string())
    }
}

impl From<AuditError> for Status {
    fn from(e: AuditError) -> Self {
        let code = match &e {
            AuditError::InvalidArgument { .. } | AuditError::Missing { .. } => {
                Code::InvalidArgument
            }
            AuditError::UnknownAccount(_)
            | AuditError::VersionBeyondStream { .. }
            | AuditError::NotYetExisting { .. }
            | AuditError::UnknownReview { .. }
            | AuditError::ReviewWithoutOutcome { .. } => Code::NotFound,
            AuditError::Codec { .. } | AuditError::Store(StoreError::Corrupt(_)) => Code::DataLoss,
            AuditError::Store(StoreError::Unavailable(_)) => Code::Unavailable,
            AuditError::Store(_) | AuditError::Task(_) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}
