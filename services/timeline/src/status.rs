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
        e @ TimelineError::Unreadable { .. } => {
            tracing::error!(error = %e, "timeline: stored entries unreadable");
            Status::data_loss(e.to_string())
        }
    }
}

/// The projection has not reached the position a caller asked to read.
pub fn not_caught_up(error: keyplan_projection::NotCaughtUp) -> Status {
    Status::unavailable(error.to_string())
}

/// A watch's feed broke inside the server (cannot happen while the projection lives).
pub fn watch_interrupted(reason: &str) -> Status {
    Status::unavailable(format!(
        "the timeline feed was interrupted ({reason}); watch again from the position after the \
         last entry you received"
    ))
}
