//! Why a command was refused.

use thiserror::Error;

/// A command refused by the domain. Each variant maps to one gRPC status code in the services.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A field is malformed or out of range, whatever the account's state.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The offending field.
        field: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The command names something that does not exist (account, stakeholder, review...).
    #[error("{0}")]
    NotFound(String),
    /// The command would create something that exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The command is well-formed but the account's state does not allow it now.
    #[error("{0}")]
    FailedPrecondition(String),
}

impl DomainError {
    /// An [`DomainError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}
