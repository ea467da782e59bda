//! The one mapping from command failures to gRPC statuses.
//!
//! Every message says what was wrong and what to do; a conflict also carries the current
//! version (`keyplan-current-version`) and the event that got in first
//! (`keyplan-conflict-event-bin`, a protobuf `keyplan.v1.Event`) as trailing metadata, so a
//! client can show who changed what before the user retries.

use keyplan_domain::values::Timestamp;
use keyplan_domain::DomainError;
use keyplan_repository::RepositoryError;
use keyplan_store::{ExpectedVersion, StoreError};
use prost::Message;
use tonic::metadata::{BinaryMetadataValue, MetadataValue};
use tonic::{Code, Status};

/// Maps a failed command to the status its caller gets.
pub fn to_status(error: RepositoryError) -> Status {
    match error {
        RepositoryError::Domain(e) => match e {
            DomainError::InvalidArgument { .. } => Status::invalid_argument(e.to_string()),
            DomainError::NotFound(m) => Status::not_found(m),
            DomainError::AlreadyExists(m) => Status::already_exists(m),
            DomainError::FailedPrecondition(m) => Status::failed_precondition(m),
        },
        RepositoryError::Conflict(conflict) => {
            let expected = match conflict.expected {
                ExpectedVersion::NoStream => "no account yet".to_owned(),
                ExpectedVersion::Exact(v) => format!("version {v}"),
                ExpectedVersion::Any => "any version".to_owned(),
            };
            let mut message = format!(
                "conflict: the account is at version {}, you expected {expected}",
                conflict.current_version
            );
            if let Some(winner) = &conflict.winning_event {
                message.push_str(&format!(
                    "; version {} ({}) was recorded by {} at {}",
                    winner.stream_version,
                    winner.event_type,
                    winner.actor,
                    Timestamp(winner.recorded_at_micros)
                ));
            }
            message.push_str(". Reload the account, reapply your change and send it with the new version.");
            let mut status = Status::aborted(message);
            if let Ok(v) = MetadataValue::try_from(conflict.current_version.to_string()) {
                status.metadata_mut().insert("keyplan-current-version", v);
            }
            if let Some(winner) = &conflict.winning_event {
                if let Ok(event) = keyplan_proto::convert::recorded_event_to_proto(winner) {
                    status
                        .metadata_mut()
                        .insert_bin("keyplan-conflict-event-bin", BinaryMetadataValue::from_bytes(&event.encode_to_vec()));
                }
            }
            status
        }
        RepositoryError::IdempotencyKeyReused { key, account } => Status::failed_precondition(format!(
            "idempotency key {key:?} was already used for a command on account {account}; use a new key for each distinct command"
        )),
        RepositoryError::Codec(e) => Status::data_loss(format!("a stored event cannot be read: {e}")),
        RepositoryError::Store(e) => store_status(e),
    }
}

fn store_status(error: StoreError) -> Status {
    let message = error.to_string();
    let code = match error {
        StoreError::WrongExpectedVersion { .. } => Code::Aborted,
        StoreError::EmptyAppend | StoreError::EventTooLarge { .. } => Code::InvalidArgument,
        StoreError::EventIdConflict(_) | StoreError::IdempotencyKeyReused { .. } => {
            Code::AlreadyExists
        }
        StoreError::Unavailable(_) => Code::Unavailable,
        StoreError::OutcomeUnknown(_) => Code::Unknown,
        StoreError::IdempotencyKeyMismatch { .. } => Code::FailedPrecondition,
        StoreError::Corrupt(_) => Code::DataLoss,
        StoreError::Sled(_) | StoreError::Io(_) => Code::Internal,
    };
    Status::new(code, message)
}
