//! The one mapping from account-query failures to gRPC statuses.

use keyplan_domain::DomainError;
use keyplan_projection::ProjectionError;
use keyplan_repository::RepositoryError;
use keyplan_store::StoreError;
use tonic::Status;

/// Why an account query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Reading the log (ingest side) or a refused request.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// Decoding the interactions' facts the account-state read model keeps (projections side).
    #[error("account-state read model: {0}")]
    ReadModel(#[from] ProjectionError),
}

/// Maps a failed query to the status its caller gets.
pub fn to_status(error: impl Into<QueryError>) -> Status {
    let error = match error.into() {
        QueryError::Repository(e) => e,
        QueryError::ReadModel(e @ ProjectionError::Corrupt { .. }) => {
            return Status::data_loss(format!(
                "{e}; rebuild it with `keyplan projections rebuild account-state`"
            ))
        }
        QueryError::ReadModel(e) => return Status::internal(e.to_string()),
    };
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
