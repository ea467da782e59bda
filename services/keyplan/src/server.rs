//! Serving: health, reflection and the Keyplan services on one listener, with graceful
//! shutdown.

use std::future::Future;
use std::num::NonZeroUsize;

use keyplan_account_service::AccountApi;
use keyplan_command_service::CommandApi;
use keyplan_event_store_service::EventStoreApi;
use keyplan_proto::pb::account_service_server::AccountServiceServer;
use keyplan_proto::pb::command_service_server::CommandServiceServer;
use keyplan_proto::pb::event_store_service_server::EventStoreServiceServer;
use keyplan_repository::{AccountRepository, RepositoryConfig};
use keyplan_store::EventStore;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;

/// Why the server stopped with an error.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The gRPC transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be set up from the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Serves every Keyplan service on `listener` until `shutdown` completes, then lets in-flight
/// requests finish and closes the store (committing every append already queued), so nothing
/// acknowledged is lost.
pub async fn run(
    listener: TcpListener,
    store: EventStore,
    cached_accounts: usize,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let repository = AccountRepository::new(
        store.clone(),
        RepositoryConfig {
            cached_accounts: NonZeroUsize::new(cached_accounts).unwrap_or(NonZeroUsize::MIN),
        },
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_serving::<CommandServiceServer<CommandApi>>()
        .await;
    health
        .set_serving::<EventStoreServiceServer<EventStoreApi>>()
        .await;
    health
        .set_serving::<AccountServiceServer<AccountApi>>()
        .await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(keyplan_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(keyplan_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let result = Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(CommandServiceServer::new(CommandApi::new(
            repository.clone(),
        )))
        .add_service(EventStoreServiceServer::new(EventStoreApi::new(
            store.clone(),
        )))
        .add_service(AccountServiceServer::new(AccountApi::new(repository)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;

    // In-flight requests are done; commit whatever is still queued, then stop the writer.
    let closing = store.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    result.map_err(ServerError::from)
}
