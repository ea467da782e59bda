//! The one mapping from timeline failures to gRPC statuses.

use tonic::Status;

use crate::error::TimelineError;

/// Maps a refused query to the status its caller gets.
pub fn to_status(error: TimelineError) -> Status {
    match error {
        e @ (TimelineError::AccountNotFound { .. } | TimelineError::SubjectNotFound { .. }) => {
            Status::not_found(e.to_string())
        }
        e @ TimelineError::InvalidArgument { .. } => Status::invalid_argument(e.to_string()),
    }
}

/// The projection has not reached the position a caller asked to read.
pub fn not_caught_up(applied: u64, wanted: u64, waited: std::time::Duration) -> Status {
    Status::unavailable(format!(
        "this node's timeline has applied events up to position {applied} and did not reach \
         position {wanted} within {waited:?}; retry, or ask a node that is further along"
    ))
}

/// A watch's feed broke inside the server (cannot happen while the projection lives).
pub fn watch_interrupted(reason: &str) -> Status {
    Status::unavailable(format!(
        "the timeline feed was interrupted ({reason}); watch again from the position after the \
         last entry you received"
    ))
}
