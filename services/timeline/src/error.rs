//! Why a timeline query cannot be answered (mapped to gRPC statuses in [`crate::status`]).

use keyplan_domain::DomainError;
use thiserror::Error;

/// A timeline query the projection refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimelineError {
    /// The account has no events (yet) on this node.
    #[error(
        "account {account} of tenant {tenant} has no timeline on this node: it has no events; \
         check the tenant and account ids, or pass the position of its registration as \
         min_position to wait for it"
    )]
    AccountNotFound {
        /// The tenant asked for.
        tenant: String,
        /// The account asked for.
        account: String,
    },
    /// A scope names a plan, stakeholder, person or opportunity that never appeared in the
    /// account.
    #[error(
        "{what} {id} never appeared in account {account}; check the id (it is case-sensitive) \
         or list the whole account's timeline"
    )]
    SubjectNotFound {
        /// "plan", "stakeholder", "person" or "opportunity".
        what: &'static str,
        /// The id asked for.
        id: String,
        /// The account.
        account: String,
    },
    /// Entries of the account whose details live only in the stored timeline could not be
    /// read back from it (a damaged or missing entry): the projection needs a rebuild.
    #[error(
        "the stored timeline of account {account} of tenant {tenant} is unreadable ({reason}); \
         an operator can rebuild it from the log with `keyplan projections rebuild timeline`"
    )]
    Unreadable {
        /// The tenant.
        tenant: String,
        /// The account.
        account: String,
        /// What failed, naming the key or position.
        reason: String,
    },
    /// A malformed request field (filter, time range, page token, id).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The request field to fix.
        field: &'static str,
        /// What is wrong with it, and what is accepted.
        reason: String,
    },
}

impl TimelineError {
    /// An `InvalidArgument` naming `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

/// A malformed id in a request: the domain names the field (`tenant`, `account_id`,
/// `plan_id`...), which is also the request field's name.
impl From<DomainError> for TimelineError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::InvalidArgument { field, reason } => {
                Self::InvalidArgument { field, reason }
            }
            other => Self::invalid("request", other.to_string()),
        }
    }
}
