//! The one mapping from compliance-query failures to gRPC statuses.

use tonic::Status;

use crate::error::QueryError;

/// Maps a refused query to the status its caller gets. The messages already say what to do
/// (which field, which accepted values, retry or wait), so they are passed through as they are.
pub fn to_status(error: QueryError) -> Status {
    match error {
        e @ QueryError::InvalidArgument { .. } => Status::invalid_argument(e.to_string()),
        QueryError::NotFound(m) => Status::not_found(m),
        QueryError::Unavailable(m) => Status::unavailable(m),
        e @ QueryError::FellBehind => Status::aborted(e.to_string()),
        e @ QueryError::Unreadable(_) => Status::internal(e.to_string()),
    }
}
