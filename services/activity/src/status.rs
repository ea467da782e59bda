//! The one mapping from activity-query failures to gRPC statuses.

use tonic::Status;

use crate::error::ActivityError;

/// Maps a failed query to the status its caller gets; the messages say what to change.
pub fn to_status(error: ActivityError) -> Status {
    match &error {
        ActivityError::InvalidArgument { .. } => Status::invalid_argument(error.to_string()),
        ActivityError::NotFound(_) => Status::not_found(error.to_string()),
        ActivityError::OutOfRange(_) => Status::out_of_range(error.to_string()),
        ActivityError::NotCaughtUp(_) => Status::unavailable(error.to_string()),
        ActivityError::Unreadable(_) => Status::internal(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_code() {
        assert_eq!(
            to_status(ActivityError::invalid(
                "days",
                "must be between 1 and 3660 days, got 0"
            ))
            .code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            to_status(ActivityError::unknown_account("acme", "nobody")).code(),
            tonic::Code::NotFound
        );
        let status = to_status(ActivityError::NotCaughtUp(
            keyplan_projection::NotCaughtUp {
                projection: "activity",
                applied: 7,
                wanted: 9,
                waited: std::time::Duration::from_secs(5),
            },
        ));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("up to position 7"));
    }
}
