//! The one mapping from account-query failures to gRPC statuses.

use keyplan_domain::DomainError;
use keyplan_repository::RepositoryError;
use keyplan_store::StoreError;
use tonic::Status;

/// Maps a failed query to the status its caller gets.
pub fn to_status(error: RepositoryError) -> Status {
    match error {
        RepositoryError::Domain(DomainError::NotFound(m)) => Status::not_found(m),
        RepositoryError::Domain(e) => Status::invalid_argument(e.to_string()),
        RepositoryError::Codec(e) => {
            Status::data_loss(format!("a stored event cannot be read: {e}"))
        }
        RepositoryError::Store(StoreError::Unavailable(m)) => Status::unavailable(m),
        RepositoryError::Store(e) => Status::internal(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}
