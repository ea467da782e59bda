//! Why a compliance query was refused.

use thiserror::Error;

/// A refused compliance query; [`crate::status::to_status`] maps each variant to one gRPC code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// A request field is malformed or out of range.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The offending field, as named on the wire.
        field: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The account asked about has no events in the projection.
    #[error("{0}")]
    NotFound(String),
    /// The projection has not reached the requested position in time.
    #[error("{0}")]
    Unavailable(String),
    /// A `WatchAlerts` caller read too slowly and may have missed alerts. (How many the node
    /// raised meanwhile is not said: that count includes other tenants'.)
    #[error("this stream fell behind the alerts being raised and may have missed some; reconnect, and read what was raised meanwhile from the NATS alerts stream")]
    FellBehind,
    /// An account's history could not be read back from the read model's store.
    #[error("the compliance read model cannot read this account's history: {0}; rebuild it with `keyplan projections rebuild compliance`")]
    Unreadable(String),
}

impl QueryError {
    /// A [`QueryError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}
