//! The one mapping from event-store read failures to gRPC statuses.

use keyplan_domain::codec::CodecError;
use keyplan_domain::DomainError;
use keyplan_store::StoreError;
use tonic::{Code, Status};

/// Why a read failed.
#[derive(Debug)]
pub enum ReadError {
    /// The request is malformed.
    Invalid(DomainError),
    /// The store failed.
    Store(StoreError),
    /// A stored event cannot be decoded.
    Codec(CodecError),
}

impl From<DomainError> for ReadError {
    fn from(e: DomainError) -> Self {
        Self::Invalid(e)
    }
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<CodecError> for ReadError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl From<ReadError> for Status {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Invalid(e) => Status::invalid_argument(e.to_string()),
            ReadError::Codec(e) => Status::data_loss(format!("a stored event cannot be read: {e}")),
            ReadError::Store(e) => {
                let code = match e {
                    StoreError::Unavailable(_) => Code::Unavailable,
                    StoreError::Corrupt(_) => Code::DataLoss,
                    _ => Code::Internal,
                };
                Status::new(code, e.to_string())
            }
        }
    }
}
