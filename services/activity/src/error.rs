//! Why an activity query cannot be answered.

use keyplan_domain::DomainError;
use thiserror::Error;

/// A refused or failed activity query; [`crate::status`] maps it to a gRPC status.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ActivityError {
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The wire field to fix.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The account has no events for the tenant.
    #[error("{0}")]
    NotFound(String),
    /// An answer's number does not fit its wire type (a sum of amounts beyond `int64`).
    #[error("{0}")]
    OutOfRange(String),
    /// A read model cannot read an account's state back from its store.
    #[error("{0}")]
    Unreadable(String),
    /// The projection has not reached the position the caller asked to read.
    #[error(transparent)]
    NotCaughtUp(#[from] keyplan_projection::NotCaughtUp),
}

impl ActivityError {
    /// A malformed field.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// An account unknown to the tenant.
    pub fn unknown_account(tenant: &str, account: &str) -> Self {
        Self::NotFound(format!(
            "account {account} has no events for tenant {tenant}; check the ids, or list the \
             tenant's accounts with AccountService/ListAccounts"
        ))
    }
}

impl From<DomainError> for ActivityError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::InvalidArgument { field, reason } => {
                Self::InvalidArgument { field, reason }
            }
            DomainError::NotFound(m) => Self::NotFound(m),
            other => Self::InvalidArgument {
                field: "request",
                reason: other.to_string(),
            },
        }
    }
}
