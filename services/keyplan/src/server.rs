//! A Keyplan node: the parts its role needs, served on one listener with health, reflection
//! and graceful shutdown.

use std::future::Future;
use std::num::NonZeroUsize;
use std::time::Duration;

use keyplan_account_service::projection::AccountStateProjection;
use keyplan_account_service::{AccountApi, AccountSource};
use keyplan_activity_service::{ActivityApi, ActivityProjection, ComplianceSource};
use keyplan_audit_service::AuditApi;
use keyplan_command_service::CommandApi;
use keyplan_compliance_service::{ComplianceApi, ComplianceProjection};
use keyplan_event_store_service::EventStoreApi;
use keyplan_fanout::{NatsConnection, Relay};
use keyplan_projection::{EventSource, Projection, ProjectionHandle, ProjectionRunner};
use keyplan_proto::pb::account_service_server::AccountServiceServer;
use keyplan_proto::pb::activity_service_server::ActivityServiceServer;
use keyplan_proto::pb::audit_service_server::AuditServiceServer;
use keyplan_proto::pb::command_service_server::CommandServiceServer;
use keyplan_proto::pb::compliance_service_server::ComplianceServiceServer;
use keyplan_proto::pb::event_store_service_server::EventStoreServiceServer;
use keyplan_proto::pb::operations_service_server::OperationsServiceServer;
use keyplan_proto::pb::timeline_service_server::TimelineServiceServer;
use keyplan_repository::{AccountRepository, RepositoryConfig};
use keyplan_store::{EventStore, StoreConfig};
use keyplan_timeline_service::{TimelineApi, TimelineProjection};

use crate::server_timing::ServerTimingLayer;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;
use tonic::transport::server::Router;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::config::{AckMode, Role, ServeArgs};
use crate::operations::OperationsApi;

/// Health service name that follows the NATS connection.
pub const NATS_HEALTH: &str = "keyplan.nats";

/// Why a node could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// The event store failed to open.
    #[error("event store: {0}")]
    Store(#[from] keyplan_store::StoreError),
    /// NATS failed.
    #[error(transparent)]
    Fanout(#[from] keyplan_fanout::FanoutError),
    /// A projection failed to open.
    #[error("projection: {0}")]
    Projection(#[from] keyplan_projection::ProjectionError),
    /// sled failed (projections database).
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// The gRPC transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be set up from the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A started node, ready to serve.
#[derive(Debug)]
pub struct Node {
    role: Role,
    ack: AckMode,
    ack_timeout: Duration,
    store: Option<EventStore>,
    repository: Option<AccountRepository>,
    nats: Option<NatsConnection>,
    relay: Option<Relay>,
    accounts: AccountSource,
    read_models: Option<ReadModels>,
    projections: Vec<keyplan_projection::ProjectionHandle>,
    projection_db: Option<sled::Db>,
}

impl Node {
    /// Opens what the role needs: the log and the relay (all, ingest), the projections fed
    /// from JetStream (projections).
    pub async fn start(args: &ServeArgs) -> Result<Node, NodeError> {
        let nats_config = args.nats.to_config();
        if args.role == Role::Projections && nats_config.is_none() {
            return Err(NodeError::Config(
                "--role projections reads events from NATS JetStream: give --nats-url".into(),
            ));
        }
        if args.ack == AckMode::Replicated
            && (nats_config.is_none() || args.role == Role::Projections)
        {
            return Err(NodeError::Config(
                "--ack replicated needs --nats-url on an all or ingest node".into(),
            ));
        }
        let nats = match &nats_config {
            Some(config) => Some(keyplan_fanout::connect(config).await?),
            None => None,
        };

        let node = match args.role {
            Role::All | Role::Ingest => {
                let mut store_config = StoreConfig::new(&args.data_dir);
                store_config.cache_capacity_bytes = args.cache_mb * 1024 * 1024;
                // The log and the read models' database recover side by side (both replay
                // sled's log on open).
                let opening_store =
                    tokio::task::spawn_blocking(move || EventStore::open(store_config));
                let opening_db = (args.role == Role::All).then(|| {
                    let args = args.clone();
                    tokio::task::spawn_blocking(move || open_projection_db(&args))
                });
                let store = opening_store
                    .await
                    .map_err(|e| NodeError::Config(format!("opening the store panicked: {e}")))??;
                let repository = AccountRepository::new(
                    store.clone(),
                    RepositoryConfig {
                        cached_accounts: NonZeroUsize::new(args.cached_accounts)
                            .unwrap_or(NonZeroUsize::MIN),
                    },
                );
                let relay = match (&nats, &nats_config) {
                    (Some(nats), Some(config)) => {
                        let js = async_nats::jetstream::new(nats.client.clone());
                        Some(Relay::spawn(store.clone(), js, config.stream.clone()))
                    }
                    _ => None,
                };
                // The all-in-one node also serves the read models, fed from its own log.
                let (read_models, projections, projection_db) = if let Some(opening) = opening_db {
                    let db = opening.await.map_err(|e| {
                        NodeError::Config(format!(
                            "opening the read models' database panicked: {e}"
                        ))
                    })??;
                    let (models, handles) =
                        ReadModels::start(&db, EventSource::Local(store.clone())).await?;
                    (Some(models), handles, Some(db))
                } else {
                    (None, Vec::new(), None)
                };
                Node {
                    read_models,
                    role: args.role,
                    ack: args.ack,
                    ack_timeout: Duration::from_millis(args.ack_timeout_ms),
                    accounts: AccountSource::Repository(repository.clone()),
                    store: Some(store),
                    repository: Some(repository),
                    nats,
                    relay,
                    projections,
                    projection_db,
                }
            }
            Role::Projections => {
                let (Some(connection), Some(config)) = (&nats, &nats_config) else {
                    return Err(NodeError::Config("NATS is required".into()));
                };
                let db = open_projection_db(args)?;
                let source = EventSource::JetStream {
                    context: async_nats::jetstream::new(connection.client.clone()),
                    stream: config.stream.clone(),
                };
                let projection = AccountStateProjection::default();
                let (handle, (models, mut projections)) = tokio::try_join!(
                    run_projection(&db, projection.clone(), source.clone()),
                    ReadModels::start(&db, source),
                )?;
                projections.insert(0, handle.clone());
                Node {
                    read_models: Some(models),
                    role: args.role,
                    ack: args.ack,
                    ack_timeout: Duration::from_millis(args.ack_timeout_ms),
                    accounts: AccountSource::Projection(projection, handle.clone()),
                    store: None,
                    repository: None,
                    nats,
                    relay: None,
                    projections,
                    projection_db: Some(db),
                }
            }
        };
        Ok(node)
    }

    /// The local log, if this node has one.
    pub fn store(&self) -> Option<&EventStore> {
        self.store.as_ref()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish and closes the
    /// store (committing every append already queued), so nothing acknowledged is lost.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NodeError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status("", ServingStatus::Serving).await;
        health
            .set_serving::<OperationsServiceServer<OperationsApi>>()
            .await;
        health
            .set_serving::<AccountServiceServer<AccountApi>>()
            .await;
        if let Some(nats) = &self.nats {
            follow_nats(health.clone(), nats.connected.clone());
        }

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(keyplan_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(keyplan_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let operations = OperationsApi {
            role: self.role.as_str(),
            ack_mode: match self.ack {
                AckMode::Local => "local",
                AckMode::Replicated => "replicated",
            },
            store: self.store.clone(),
            nats_connected: self.nats.as_ref().map(|n| n.connected.clone()),
            relay: self.relay.clone(),
            projections: self.projections.clone(),
        };

        let mut router = Server::builder()
            .layer(ServerTimingLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(OperationsServiceServer::new(operations))
            .add_service(AccountServiceServer::new(AccountApi::new(
                self.accounts.clone(),
            )));
        if let Some(models) = &self.read_models {
            router = models.register(router, &health).await;
        }
        if let (Some(store), Some(repository)) = (&self.store, &self.repository) {
            let mut commands = CommandApi::new(repository.clone());
            if let (AckMode::Replicated, Some(relay)) = (self.ack, &self.relay) {
                commands = commands.with_replication(relay.clone(), self.ack_timeout);
            }
            health
                .set_serving::<CommandServiceServer<CommandApi>>()
                .await;
            health
                .set_serving::<EventStoreServiceServer<EventStoreApi>>()
                .await;
            health.set_serving::<AuditServiceServer<AuditApi>>().await;
            router = router
                .add_service(AuditServiceServer::new(AuditApi::new(store.clone())))
                .add_service(CommandServiceServer::new(commands))
                .add_service(EventStoreServiceServer::new(EventStoreApi::new(
                    store.clone(),
                )));
        }
        let result = router
            .serve_with_incoming_shutdown(incoming(listener), shutdown)
            .await;

        // In-flight requests are done; commit whatever is still queued, then stop the writer.
        if let Some(store) = self.store {
            let _ = tokio::task::spawn_blocking(move || store.close()).await;
        }
        if let Some(db) = self.projection_db {
            let _ = db.flush_async().await;
        }
        result.map_err(NodeError::from)
    }
}

/// Keeps the `keyplan.nats` health status in step with the NATS connection.
fn follow_nats(health: HealthReporter, mut connected: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let status = if *connected.borrow_and_update() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status(NATS_HEALTH, status).await;
            if connected.changed().await.is_err() {
                return;
            }
        }
    });
}

/// The projections database of a node: `<data dir>/projections`.
fn open_projection_db(args: &ServeArgs) -> Result<sled::Db, NodeError> {
    Ok(sled::Config::new()
        .path(args.data_dir.join("projections"))
        .cache_capacity(args.cache_mb * 1024 * 1024)
        .open()?)
}

/// Opens a projection and runs it in the background; returns its progress handle.
async fn run_projection<P: Projection>(
    db: &sled::Db,
    projection: P,
    source: EventSource,
) -> Result<ProjectionHandle, NodeError> {
    let name = projection.name();
    let db = db.clone();
    // Loading a read model is blocking work (reading its tree, rebuilding its indexes), and
    // the node loads its read models side by side: on a cold start this is most of the time.
    let (runner, handle) =
        tokio::task::spawn_blocking(move || ProjectionRunner::open(&db, projection, source))
            .await
            .map_err(|e| NodeError::Config(format!("loading {name} panicked: {e}")))??;
    tokio::spawn(async move {
        if let Err(e) = runner.run().await {
            tracing::error!(projection = name, error = %e, "projection stopped; its service answers from where it stopped");
        }
    });
    Ok(handle)
}

/// The read models (each a projection with its service) of an all-in-one or projections node.
#[derive(Debug, Clone)]
struct ReadModels {
    compliance: (ComplianceProjection, ProjectionHandle),
    activity: (ActivityProjection, ProjectionHandle),
    timeline: (TimelineProjection, ProjectionHandle),
}

/// Lets the activity service's portfolio show compliance shares from the compliance model.
struct ComplianceShares(ComplianceProjection);

impl ComplianceSource for ComplianceShares {
    fn share(
        &self,
        tenant: &str,
        account: &str,
        as_of: keyplan_domain::values::Timestamp,
    ) -> Option<(u32, u32)> {
        self.0.account_share(tenant, account, as_of)
    }
}

impl ReadModels {
    /// Loads every read model (side by side) and starts its runner on `source`.
    async fn start(
        db: &sled::Db,
        source: EventSource,
    ) -> Result<(Self, Vec<ProjectionHandle>), NodeError> {
        let compliance = ComplianceProjection::default();
        let activity = ActivityProjection::default();
        let timeline = TimelineProjection::default();
        let (compliance_handle, activity_handle, timeline_handle) = tokio::try_join!(
            run_projection(db, compliance.clone(), source.clone()),
            run_projection(db, activity.clone(), source.clone()),
            run_projection(db, timeline.clone(), source),
        )?;
        let handles = vec![
            compliance_handle.clone(),
            activity_handle.clone(),
            timeline_handle.clone(),
        ];
        let models = Self {
            compliance: (compliance, compliance_handle),
            activity: (activity, activity_handle),
            timeline: (timeline, timeline_handle),
        };
        Ok((models, handles))
    }

    /// Adds the read-model services to the router and marks them serving.
    async fn register<L>(&self, router: Router<L>, health: &HealthReporter) -> Router<L> {
        health
            .set_serving::<ComplianceServiceServer<ComplianceApi>>()
            .await;
        health
            .set_serving::<ActivityServiceServer<ActivityApi>>()
            .await;
        health
            .set_serving::<TimelineServiceServer<TimelineApi>>()
            .await;
        let shares: Arc<dyn ComplianceSource> =
            Arc::new(ComplianceShares(self.compliance.0.clone()));
        router
            .add_service(ComplianceServiceServer::new(ComplianceApi::new(
                self.compliance.0.clone(),
                self.compliance.1.clone(),
            )))
            .add_service(ActivityServiceServer::new(ActivityApi::new(
                self.activity.0.clone(),
                self.activity.1.clone(),
                Some(shares),
            )))
            .add_service(TimelineServiceServer::new(TimelineApi::new(
                self.timeline.0.clone(),
                self.timeline.1.clone(),
            )))
    }
}

/// The listener's connections with `TCP_NODELAY` set: without it Nagle's algorithm holds a
/// response's small trailers frame until the client's delayed ACK, about 40 ms per request
/// (measured by keyplan-bench on batched commands).
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
