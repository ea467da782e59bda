//! A Keyplan node: the parts its role needs, served on one listener with health, reflection
//! and graceful shutdown.

use std::future::Future;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::{Duration, Instant};

use keyplan_account_service::projection::AccountStateProjection;
use keyplan_account_service::{AccountApi, AccountSource};
use keyplan_activity_service::{ActivityApi, ActivityProjection, ComplianceSource};
use keyplan_audit_service::AuditApi;
use keyplan_auth::AuthLayer;

use crate::cluster::Membership;
use crate::identity::Identity;
use keyplan_cluster::{ByShard, RouteLayer};
use keyplan_command_service::CommandApi;
use keyplan_compliance_service::alerts::AlertHub;
use keyplan_compliance_service::{ComplianceApi, ComplianceProjection};
use keyplan_event_store_service::EventStoreApi;
use keyplan_fanout::alerts::AlertStream;
use keyplan_fanout::{NatsConnection, Relay};
use keyplan_projection::{
    EventSource, Projection, ProjectionHandle, ProjectionRunner, ReadModelDb, READ_MODELS_DIR,
};
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

use crate::loading::WhenLoaded;
use crate::metrics::{Metrics, ObserveLayer, Parts};
use crate::operations::{Projections, ReadModelDbs, RunningProjection};
use crate::server_timing::ServerTimingLayer;
use crate::shutdown::{self, EndStreamsLayer, Shutdown, SHUTDOWN_BOUND};
use crate::status_guard::StatusGuardLayer;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::transport::server::Router;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::config::{AckMode, LimitArgs, Role, ServeArgs};
use crate::limits::MessageLimits;
use crate::operations::OperationsApi;

/// Health service name that follows the NATS connection.
pub const NATS_HEALTH: &str = "keyplan.nats";

/// Health service name of the outbox relay: NOT_SERVING while it refuses to publish (the
/// JetStream stream does not match the log), which does not heal by itself. A NATS outage,
/// which does, shows in [`NATS_HEALTH`] instead.
pub const RELAY_HEALTH: &str = "keyplan.relay";

/// Health service name of the store's writer: SERVING while the log can be written,
/// NOT_SERVING once a write or sync failed (the node then shuts down and exits with status 1,
/// so that a restart recovers from the log). Only on nodes with a log (all, ingest).
pub const STORE_HEALTH: &str = "keyplan.store";

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
    /// The gRPC transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be set up from the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The log can no longer be written: the node stopped so that a restart recovers it.
    #[error("the event store can no longer write: {0}")]
    StoreFailed(String),
    /// The shutdown did not finish within its bound; the node exits anyway.
    #[error("the shutdown did not finish within {0:?}; exiting anyway")]
    ShutdownTimedOut(Duration),
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
    /// Where `GetAccount` reads: the log, or on a projections node each shard's account
    /// state (keyed by shard; the shard is empty outside a sharded cluster).
    accounts: Vec<(String, AccountSource)>,
    read_models: ReadModelsState,
    /// Becomes true once the read models serve (never, on a node without them).
    read_models_ready: watch::Sender<bool>,
    /// Reaches the relay, the projection runners and the open server streams.
    shutdown: Shutdown,
    /// Who may call; `None`: authentication is off.
    auth: Option<Identity>,
    /// The listener's TLS, if configured (checked at start).
    tls: Option<tonic::transport::ServerTlsConfig>,
    /// Message sizes, streams per connection, request timeout.
    limits: LimitArgs,
    /// Which browser origins may call through gRPC-Web (checked at start).
    cors: tower_http::cors::CorsLayer,
    /// What `--metrics-listen` serves; recorded whether served or not.
    metrics: Arc<Metrics>,
    /// This node's shard, in a sharded cluster (`--shard-map`).
    membership: Option<Membership>,
    /// Serves each call here or forwards it to its tenant's shard (off outside a cluster).
    route: RouteLayer,
}

/// One shard's read models on a node, with their runners' handles and their database.
#[derive(Debug)]
struct LoadedReadModels {
    /// The shard whose events feed them (empty outside a sharded cluster).
    shard: String,
    models: ReadModels,
    /// Every projection the node runs for the shard (on a projections node, the account
    /// state's too).
    handles: Vec<ProjectionHandle>,
    /// Each projection with the health service name that reports it.
    reported: Vec<(ProjectionHandle, &'static str)>,
    /// The runners' tasks: they end after the shutdown signal, having committed.
    runners: Vec<JoinHandle<()>>,
    db: ReadModelDb,
}

/// Where a node's read models are.
#[derive(Debug)]
enum ReadModelsState {
    /// An ingest node has none.
    None,
    /// Loaded before listening: a projections node serves nothing else. One set per shard it
    /// follows.
    Loaded(Vec<LoadedReadModels>),
    /// Loading in the background while the node already serves its log (all-in-one node;
    /// see `crate::loading`).
    Loading(JoinHandle<Result<Vec<LoadedReadModels>, NodeError>>),
}

impl Node {
    /// Opens what the role needs: the log and the relay (all, ingest), the projections fed
    /// from JetStream (projections).
    pub async fn start(args: &ServeArgs) -> Result<Node, NodeError> {
        let auth = Identity::from_config(args).map_err(NodeError::Config)?;
        let tls =
            crate::tls::server_config(&args.tls).map_err(|e| NodeError::Config(e.to_string()))?;
        crate::limits::check(&args.limits).map_err(|e| NodeError::Config(e.into()))?;
        let cors = crate::web::cors(&args.web).map_err(|e| NodeError::Config(e.to_string()))?;
        let nats_config = args
            .nats
            .to_config()
            .map_err(|e| NodeError::Config(e.to_string()))?;
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
        let membership = Membership::from_config(&args.cluster, args.role, nats_config.as_ref())
            .map_err(NodeError::Config)?;
        let route = match &membership {
            Some(m) => m
                .route_layer(args.role, args.limits.max_message_bytes)
                .map_err(NodeError::Config)?,
            None => RouteLayer::off(),
        };
        let nats = match &nats_config {
            Some(config) => Some(keyplan_fanout::connect(config).await?),
            None => None,
        };
        let shutdown = Shutdown::default();
        let metrics = Arc::new(Metrics::new(
            &args.data_dir,
            &[
                keyplan_proto::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
            ],
            Parts {
                log: args.role != Role::Projections,
                relay: args.role != Role::Projections && nats.is_some(),
                read_models: args.role != Role::Ingest,
            },
        ));

        let node = match args.role {
            Role::All | Role::Ingest => {
                let mut store_config = StoreConfig::new(&args.data_dir);
                store_config.cache_capacity_bytes = args.log_cache_mb * 1024 * 1024;
                store_config.compress_new_log = args.log_compression;
                // The log and the read models' database recover side by side (both replay
                // a log on open).
                let opening_store =
                    tokio::task::spawn_blocking(move || EventStore::open(store_config));
                let opening_db = (args.role == Role::All).then(|| {
                    let (dir, cache) = (args.data_dir.clone(), args.cache_mb * 1024 * 1024);
                    tokio::task::spawn_blocking(move || open_projection_db(&dir, cache))
                });
                let store = opening_store
                    .await
                    .map_err(|e| NodeError::Config(format!("opening the store panicked: {e}")))??;
                if let Some(membership) = &membership {
                    membership.check_log(&store).map_err(NodeError::Config)?;
                }
                // Weak: the metrics hold the store (for the scrape), the store holds its hook.
                let recorder = Arc::downgrade(&metrics);
                store.on_commit(Box::new(move |stats| {
                    if let Some(metrics) = recorder.upgrade() {
                        metrics.record_commit(stats);
                    }
                }));
                let repository = AccountRepository::new(
                    store.clone(),
                    RepositoryConfig {
                        cached_accounts: NonZeroUsize::new(args.cached_accounts)
                            .unwrap_or(NonZeroUsize::MIN),
                        cache_bytes: args.account_cache_mb.saturating_mul(1024 * 1024),
                    },
                );
                let relay = match (&nats, &nats_config) {
                    (Some(nats), Some(config)) => {
                        let js = async_nats::jetstream::new(nats.client.clone());
                        refuse_a_log_behind_its_stream(&store, &js, &config.stream, args).await?;
                        Some(Relay::spawn(
                            store.clone(),
                            js,
                            config.stream.clone(),
                            shutdown.subscribe(),
                        ))
                    }
                    _ => None,
                };
                // The all-in-one node also serves the read models, fed from its own log. They
                // load in the background: the node serves its log meanwhile.
                let read_models = match opening_db {
                    Some(opening) => {
                        let alerts_to =
                            alert_stream(nats.as_ref(), nats_config.as_ref().map(|c| &c.stream));
                        let shard = membership
                            .as_ref()
                            .map(Membership::named)
                            .unwrap_or_default();
                        let metrics = metrics.clone();
                        let store = store.clone();
                        let stop = shutdown.subscribe();
                        let memory = args.read_model_memory_bytes();
                        ReadModelsState::Loading(tokio::spawn(async move {
                            let db = opening.await.map_err(|e| {
                                NodeError::Config(format!(
                                    "opening the read models' database panicked: {e}"
                                ))
                            })??;
                            let source = EventSource::Local(store).shared();
                            let (models, handles, runners) =
                                ReadModels::start(&db, source, memory, alerts_to, metrics, &stop)
                                    .await?;
                            Ok(vec![LoadedReadModels {
                                shard,
                                reported: models.reported(),
                                models,
                                handles,
                                runners,
                                db,
                            }])
                        }))
                    }
                    None => ReadModelsState::None,
                };
                Node {
                    read_models,
                    read_models_ready: watch::channel(false).0,
                    shutdown,
                    role: args.role,
                    ack: args.ack,
                    ack_timeout: Duration::from_millis(args.ack_timeout_ms),
                    accounts: vec![(
                        membership
                            .as_ref()
                            .map(Membership::named)
                            .unwrap_or_default(),
                        AccountSource::Repository(repository.clone()),
                    )],
                    store: Some(store),
                    repository: Some(repository),
                    nats,
                    relay,
                    auth,
                    tls,
                    limits: args.limits.clone(),
                    cors: cors.clone(),
                    metrics: metrics.clone(),
                    membership: membership.clone(),
                    route: route.clone(),
                }
            }
            Role::Projections => {
                let (Some(connection), Some(config)) = (&nats, &nats_config) else {
                    return Err(NodeError::Config("NATS is required".into()));
                };
                // One set of read models per shard followed, each in its own database, fed
                // from its shard's stream, with its own checkpoints: shards' positions are
                // positions of different logs. Memory and cache are shared out among them.
                let followed = match &membership {
                    Some(m) => m.streams(&config.stream),
                    None => vec![(String::new(), config.stream.clone())],
                };
                let several = followed.len() > 1;
                let share = followed.len().max(1);
                let stop = shutdown.subscribe();
                let starts = followed.into_iter().map(|(shard, stream)| {
                    let dir = if several {
                        args.data_dir.join(SHARDS_DIR).join(&shard)
                    } else {
                        args.data_dir.clone()
                    };
                    follow_shard(FollowedShard {
                        shard,
                        dir,
                        cache_bytes: args.cache_mb * 1024 * 1024 / share as u64,
                        memory: args.read_model_memory_bytes() / share,
                        js: async_nats::jetstream::new(connection.client.clone()),
                        alerts_to: alert_stream(nats.as_ref(), Some(&stream)),
                        stream,
                        metrics: metrics.clone(),
                        stop: stop.clone(),
                    })
                });
                let (loaded, accounts): (Vec<_>, Vec<_>) = futures::future::try_join_all(starts)
                    .await?
                    .into_iter()
                    .unzip();
                Node {
                    read_models: ReadModelsState::Loaded(loaded),
                    read_models_ready: watch::channel(false).0,
                    shutdown,
                    role: args.role,
                    ack: args.ack,
                    ack_timeout: Duration::from_millis(args.ack_timeout_ms),
                    accounts,
                    store: None,
                    repository: None,
                    nats,
                    relay: None,
                    auth,
                    tls,
                    limits: args.limits.clone(),
                    cors: cors.clone(),
                    metrics: metrics.clone(),
                    membership: membership.clone(),
                    route: route.clone(),
                }
            }
        };
        Ok(node)
    }

    /// The node's metrics (what `--metrics-listen` serves).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The local log, if this node has one.
    pub fn store(&self) -> Option<&EventStore> {
        self.store.as_ref()
    }

    /// Turns true once the node's read models serve; `None` on a node without read models.
    /// An all-in-one node serves its log before that (see `crate::loading`).
    pub fn read_models_ready(&self) -> Option<watch::Receiver<bool>> {
        match self.read_models {
            ReadModelsState::None => None,
            _ => Some(self.read_models_ready.subscribe()),
        }
    }

    /// Serves until `signal` completes or the log can no longer be written, then shuts down
    /// within [`SHUTDOWN_BOUND`]: one signal ends the open server streams (`UNAVAILABLE`, saying
    /// how to resume) and stops the relay and the projection runners (which commit their
    /// checkpoints); in-flight requests finish; the store closes, committing every append
    /// already queued, so nothing acknowledged is lost.
    ///
    /// A log that can no longer be written (a failed write or sync, e.g. a full disk) makes
    /// health NOT_SERVING and ends in [`NodeError::StoreFailed`]: the process should exit
    /// non-zero, so that its supervisor restarts it and reopening recovers from the log,
    /// rather than stay up looking healthy while it refuses every append.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send,
    ) -> Result<(), NodeError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let projections = Projections::default();
        let read_model_dbs = ReadModelDbs::default();
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
        if let Some(relay) = &self.relay {
            follow_relay(health.clone(), relay.watch());
        }
        if let Some(identity) = &self.auth {
            identity.reload_on_hangup(self.shutdown.clone());
        }
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(keyplan_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(keyplan_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        self.metrics
            .set_sources(self.store.clone(), self.relay.clone(), projections.clone());
        let operations = OperationsApi {
            role: self.role.as_str(),
            ack_mode: match self.ack {
                AckMode::Local => "local",
                AckMode::Replicated => "replicated",
            },
            store: self.store.clone(),
            nats_connected: self.nats.as_ref().map(|n| n.connected.clone()),
            relay: self.relay.clone(),
            projections: projections.clone(),
            read_model_dbs: read_model_dbs.clone(),
            export_piece_bytes: (self.limits.max_message_bytes / 4).clamp(16 * 1024, 1024 * 1024),
            shard: self
                .membership
                .as_ref()
                .map(|m| (m.named(), m.map.fingerprint().to_owned())),
        };

        let streaming = shutdown::streaming_paths(&[
            keyplan_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ]);
        let limits = &self.limits;
        let accounts = ByShard::new(
            self.accounts
                .iter()
                .map(|(shard, source)| {
                    let api = AccountApi::new(source.clone());
                    (
                        shard.clone(),
                        AccountServiceServer::new(api).limited(limits),
                    )
                })
                .collect(),
        )
        .ok_or_else(|| NodeError::Config("a node without an account source".into()))?;
        // HTTP/1.1 too: gRPC-Web from browsers (see `crate::web`); gRPC clients use HTTP/2.
        let builder = crate::limits::server(Server::builder(), limits).accept_http1(true);
        let mut router = crate::tls::serve_with(builder, self.tls)?
            // Outermost: CORS answers browsers' preflights, then gRPC-Web is translated into
            // gRPC (`crate::web`), so that every layer below sees one protocol.
            .layer(self.cors)
            .layer(tonic_web::GrpcWebLayer::new())
            // Counts every gRPC call, refusals of the layers below included, and gives each
            // its request id.
            .layer(ObserveLayer::new(self.metrics.clone()))
            .layer(ServerTimingLayer)
            .layer(EndStreamsLayer::new(self.shutdown.clone(), streaming))
            .layer(StatusGuardLayer)
            .layer(AuthLayer::new(
                self.auth.as_ref().map(Identity::verifier),
                limits.max_message_bytes,
            ))
            // Inside authentication: routes by the tenant the caller's token filled in.
            .layer(self.route)
            .add_service(health_service.limited(limits))
            .add_service(reflection_v1.limited(limits))
            .add_service(reflection_v1alpha.limited(limits))
            .add_service(OperationsServiceServer::new(operations).limited(limits))
            .add_service(accounts);
        let services = ReadModelServices::pending(limits.clone());
        let loading = match self.read_models {
            ReadModelsState::None => {
                let _ = projections.set(Vec::new());
                let _ = read_model_dbs.set(Vec::new());
                None
            }
            ReadModelsState::Loaded(loaded) => {
                router = services.register(router, &health).await;
                Some(tokio::spawn(std::future::ready(Ok(loaded))))
            }
            ReadModelsState::Loading(task) => {
                router = services.register(router, &health).await;
                Some(task)
            }
        };
        // Completes when the read models serve (or failed to load): the database to flush
        // at shutdown.
        let read_models = loading.map(|task| {
            tokio::spawn(finish_loading(
                task,
                services,
                (projections, read_model_dbs),
                health.clone(),
                self.read_models_ready,
            ))
        });
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
            health
                .set_service_status(STORE_HEALTH, ServingStatus::Serving)
                .await;
            router = router
                .add_service(AuditServiceServer::new(AuditApi::new(store.clone())).limited(limits))
                .add_service(CommandServiceServer::new(commands).limited(limits))
                .add_service(
                    EventStoreServiceServer::new(EventStoreApi::new(store.clone())).limited(limits),
                );
        }
        let serving =
            router.serve_with_incoming_shutdown(incoming(listener), self.shutdown.triggered());
        tokio::pin!(serving);
        let failure = self.store.as_ref().map(EventStore::failure);
        let (early, failed) = tokio::select! {
            result = &mut serving => (Some(result), None),
            failed = stop_reason(signal, failure) => (None, failed),
        };

        let started = Instant::now();
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        match &failed {
            Some(reason) => {
                tracing::error!(
                    %reason,
                    "the event store can no longer write: health NOT_SERVING; shutting down so \
                     that a restart recovers from the log"
                );
                health
                    .set_service_status(STORE_HEALTH, ServingStatus::NotServing)
                    .await;
                health
                    .set_not_serving::<CommandServiceServer<CommandApi>>()
                    .await;
                health
                    .set_not_serving::<EventStoreServiceServer<EventStoreApi>>()
                    .await;
            }
            None => tracing::info!(
                bound = ?SHUTDOWN_BOUND,
                "shutting down: ending open streams, stopping the relay and the projections, \
                 finishing in-flight requests"
            ),
        }
        self.shutdown.trigger();

        let relay = self.relay.clone();
        let store = self.store.clone();
        let drained = tokio::time::timeout(SHUTDOWN_BOUND, async move {
            let result = match early {
                Some(result) => result,
                None => serving.await,
            };
            // A shutdown soon after a start may come while the read models still load: wait
            // for them (their runners stop at once, seeing the signal), so that the runners
            // have committed when the store closes, as after a full start.
            let finished = match read_models {
                Some(finishing) => finishing.await.ok().flatten(),
                None => None,
            };
            if let Some(relay) = relay {
                relay.join().await;
            }
            let mut projection_dbs = Vec::new();
            for (db, runners) in finished.into_iter().flatten() {
                for runner in runners {
                    let _ = runner.await;
                }
                projection_dbs.push(db);
            }
            // In-flight requests are done; commit whatever is still queued, then stop the
            // writer.
            if let Some(store) = store {
                let _ = tokio::task::spawn_blocking(move || store.close()).await;
            }
            for db in projection_dbs {
                let _ = tokio::task::spawn_blocking(move || db.persist()).await;
            }
            result
        })
        .await;
        let elapsed = started.elapsed();
        match (drained, failed) {
            (Err(_), _) => {
                tracing::error!(?elapsed, "shutdown did not finish within its bound");
                Err(NodeError::ShutdownTimedOut(SHUTDOWN_BOUND))
            }
            (Ok(_), Some(reason)) => Err(NodeError::StoreFailed(reason)),
            (Ok(result), None) => {
                tracing::info!(?elapsed, "shut down");
                result.map_err(NodeError::from)
            }
        }
    }
}

/// Completes on the shutdown signal (`None`) or once the log can no longer be written (why).
async fn stop_reason(
    signal: impl Future<Output = ()>,
    failure: Option<watch::Receiver<Option<String>>>,
) -> Option<String> {
    let failed = async {
        match failure {
            Some(mut failure) => match failure.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone(),
                // The store is gone: nothing more to watch.
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = signal => None,
        reason = failed => reason,
    }
}

/// Waits for the read models to load, then puts their services in service and marks them
/// serving; if loading failed, the services say so. Returns each shard's read models'
/// database with its runners.
async fn finish_loading(
    task: JoinHandle<Result<Vec<LoadedReadModels>, NodeError>>,
    services: ReadModelServices,
    (projections, dbs): (Projections, ReadModelDbs),
    health: HealthReporter,
    ready: watch::Sender<bool>,
) -> Option<Vec<(ReadModelDb, Vec<JoinHandle<()>>)>> {
    let outcome = task
        .await
        .map_err(|e| NodeError::Config(format!("loading the read models panicked: {e}")))
        .and_then(|loaded| loaded);
    match outcome {
        Ok(loaded) => {
            services.loaded(&loaded);
            let _ = projections.set(
                loaded
                    .iter()
                    .flat_map(|l| {
                        l.handles.iter().map(|handle| RunningProjection {
                            shard: l.shard.clone(),
                            handle: handle.clone(),
                        })
                    })
                    .collect(),
            );
            let _ = dbs.set(
                loaded
                    .iter()
                    .map(|l| (l.shard.clone(), l.db.clone()))
                    .collect(),
            );
            ReadModelServices::report(&health, ServingStatus::Serving).await;
            for (handle, service) in loaded.iter().flat_map(|l| l.reported.iter().cloned()) {
                follow_projection(health.clone(), handle, service);
            }
            tracing::info!(
                shards = loaded.len(),
                "read models loaded; their services serve"
            );
            ready.send_replace(true);
            Some(loaded.into_iter().map(|l| (l.db, l.runners)).collect())
        }
        Err(e) => {
            tracing::error!(error = %e, "the read models failed to load; their services answer UNAVAILABLE");
            services.failed(&e.to_string());
            None
        }
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

/// Refuses to start on a log that ends before the JetStream stream it publishes to: that is
/// not the log that published those events (a node started on a new or emptied volume), or it
/// lost its tail. Serving would acknowledge new events at positions JetStream already holds
/// with other events, and then never publish them. When JetStream cannot be asked now (NATS
/// down, no stream yet), the relay makes the same check once it can, and stops.
async fn refuse_a_log_behind_its_stream(
    store: &EventStore,
    js: &async_nats::jetstream::Context,
    settings: &keyplan_fanout::StreamSettings,
    args: &ServeArgs,
) -> Result<(), NodeError> {
    let ask = async {
        let mut stream = js.get_stream(&settings.name).await.ok()?;
        let info = stream.info().await.ok()?;
        Some(info.state.last_sequence)
    };
    let Ok(Some(last)) = tokio::time::timeout(Duration::from_secs(5), ask).await else {
        return Ok(());
    };
    let head = store.head();
    if last > head {
        return Err(NodeError::Config(format!(
            "JetStream stream {} holds events up to position {last}, but the log in {} ends at \
             position {head}: this is not the log that published them (a new or emptied data \
             directory?), or it lost its tail; nothing was accepted. Stop, then rebuild the \
             log from the stream with `keyplan recover --data-dir {} --nats-url ...` (it \
             verifies every event), or give this log its own --nats-stream",
            settings.name,
            args.data_dir.display(),
            args.data_dir.display(),
        )));
    }
    Ok(())
}

/// Reports the relay's health service [`RELAY_HEALTH`] NOT_SERVING while it refuses to
/// publish (see [`keyplan_fanout::RelayStatus::stopped`]).
fn follow_relay(health: HealthReporter, mut status: watch::Receiver<keyplan_fanout::RelayStatus>) {
    tokio::spawn(async move {
        let mut reported = None;
        loop {
            let stopped = status.borrow_and_update().stopped.clone();
            let serving = if stopped.is_some() {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            if reported != Some(serving) {
                if let Some(reason) = &stopped {
                    tracing::error!(%reason, health = RELAY_HEALTH, "relay stopped: health NOT_SERVING");
                }
                health.set_service_status(RELAY_HEALTH, serving).await;
                reported = Some(serving);
            }
            if status.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Reports a read model's service NOT_SERVING once its projection has stopped for good: its
/// answers no longer move, which a client and a load balancer must be able to see.
fn follow_projection(health: HealthReporter, handle: ProjectionHandle, service: &'static str) {
    tokio::spawn(async move {
        let mut stopped = handle.watch_stopped();
        let reason = match stopped.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        if let Some(reason) = reason {
            tracing::error!(
                projection = handle.name(),
                health = service,
                %reason,
                "projection stopped: its service answers from where it stopped; health NOT_SERVING"
            );
            health
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
    });
}

/// The read models' database in `dir`: `<dir>/read-models` (`dir` is the data directory, or
/// on a projections node that follows several shards `<data dir>/shards/<shard>`), with a
/// cache of `cache_bytes`.
///
/// Nodes before it kept the read models in a sled database, `<data dir>/projections`: read
/// models are derived data, so that one is removed, and the read models are rebuilt from the
/// log (or JetStream) into the new one.
fn open_projection_db(dir: &Path, cache_bytes: u64) -> Result<ReadModelDb, NodeError> {
    let legacy = dir.join(LEGACY_SLED_READ_MODELS_DIR);
    if legacy.join("conf").is_file() && legacy.join("db").is_file() {
        tracing::warn!(path = %legacy.display(), "removing the read models' former sled database: they are rebuilt in the new one");
        std::fs::remove_dir_all(&legacy)
            .map_err(|e| NodeError::Config(format!("removing {}: {e}", legacy.display())))?;
    }
    Ok(ReadModelDb::open(dir.join(READ_MODELS_DIR), cache_bytes)?)
}

/// Where a projections node that follows several shards keeps each one's read models:
/// `<data dir>/shards/<shard>/read-models`. (A node that follows one keeps them in
/// `<data dir>/read-models`, as outside a cluster.)
pub const SHARDS_DIR: &str = "shards";

/// What a projections node needs to follow one shard's stream.
struct FollowedShard {
    shard: String,
    /// Holds the read models' database.
    dir: std::path::PathBuf,
    cache_bytes: u64,
    /// The read models' memory budget.
    memory: usize,
    js: async_nats::jetstream::Context,
    stream: keyplan_fanout::StreamSettings,
    alerts_to: Option<AlertStream>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
}

/// Opens one shard's read models on a projections node (the account state and every read
/// model, fed by one consumer of the shard's stream; see `keyplan_projection::shared_feed`)
/// and starts their runners.
async fn follow_shard(
    followed: FollowedShard,
) -> Result<(LoadedReadModels, (String, AccountSource)), NodeError> {
    let FollowedShard {
        shard,
        dir,
        cache_bytes,
        memory,
        js,
        stream,
        alerts_to,
        metrics,
        stop,
    } = followed;
    let db = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| NodeError::Config(format!("creating {}: {e}", dir.display())))?;
        open_projection_db(&dir, cache_bytes)
    })
    .await
    .map_err(|e| NodeError::Config(format!("opening the read models' database panicked: {e}")))??;
    let source = EventSource::JetStream {
        context: js,
        stream,
    }
    .shared();
    let projection = AccountStateProjection::default();
    let ((handle, runner), (models, mut handles, mut runners)) = tokio::try_join!(
        run_projection(&db, projection.clone(), source.clone(), &stop),
        ReadModels::start(&db, source, memory, alerts_to, metrics, &stop),
    )?;
    handles.insert(0, handle.clone());
    runners.push(runner);
    let mut reported = models.reported();
    reported.push((
        handle.clone(),
        <AccountServiceServer<AccountApi> as NamedService>::NAME,
    ));
    let accounts = (shard.clone(), AccountSource::Projection(projection, handle));
    Ok((
        LoadedReadModels {
            shard,
            models,
            handles,
            reported,
            runners,
            db,
        },
        accounts,
    ))
}

/// Where a node with NATS publishes the compliance alerts of the read models fed by
/// `stream` (beside it); `None` without NATS.
fn alert_stream(
    nats: Option<&NatsConnection>,
    stream: Option<&keyplan_fanout::StreamSettings>,
) -> Option<AlertStream> {
    let (Some(nats), Some(stream)) = (nats, stream) else {
        return None;
    };
    let js = async_nats::jetstream::new(nats.client.clone());
    Some(AlertStream::new(js, stream.clone()))
}

/// Where nodes before the fjall read models kept them (a sled database).
const LEGACY_SLED_READ_MODELS_DIR: &str = "projections";

/// Opens a projection and runs it in the background; returns its progress handle.
async fn run_projection<P: Projection>(
    db: &ReadModelDb,
    projection: P,
    source: EventSource,
    shutdown: &watch::Receiver<bool>,
) -> Result<(ProjectionHandle, JoinHandle<()>), NodeError> {
    let name = projection.name();
    let db = db.clone();
    // Loading a read model is blocking work (reading its tree, rebuilding its indexes), and
    // the node loads its read models side by side: on a cold start this is most of the time.
    let (runner, handle) =
        tokio::task::spawn_blocking(move || ProjectionRunner::open(&db, projection, source))
            .await
            .map_err(|e| NodeError::Config(format!("loading {name} panicked: {e}")))??;
    let runner = runner.with_shutdown(shutdown.clone());
    // The runner logs why it stopped and its handle reports it (see `follow_projection`).
    let task = tokio::spawn(async move {
        let _ = runner.run().await;
    });
    Ok((handle, task))
}

/// The read models (each a projection with its service) of an all-in-one or projections node.
#[derive(Debug, Clone)]
struct ReadModels {
    compliance: (ComplianceProjection, ProjectionHandle),
    /// Where the compliance alerts the node raises arrive (`WatchAlerts`).
    alerts: AlertHub,
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
    ) -> Result<Option<(u32, u32)>, String> {
        self.0
            .account_share(tenant, account, as_of)
            .map_err(|e| e.to_string())
    }
}

impl ReadModels {
    /// Loads every read model (side by side) and starts its runner on `source`.
    async fn start(
        db: &ReadModelDb,
        source: EventSource,
        memory: usize,
        alerts_to: Option<AlertStream>,
        metrics: Arc<Metrics>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(Self, Vec<ProjectionHandle>, Vec<JoinHandle<()>>), NodeError> {
        let compliance = ComplianceProjection::with_budget(memory);
        let activity = ActivityProjection::with_budget(memory);
        let timeline = TimelineProjection::default();
        let (
            (compliance_handle, compliance_task),
            (activity_handle, activity_task),
            (timeline_handle, timeline_task),
        ) = tokio::try_join!(
            run_projection(db, compliance.clone(), source.clone(), shutdown),
            run_projection(db, activity.clone(), source.clone(), shutdown),
            run_projection(db, timeline.clone(), source.clone(), shutdown),
        )?;
        let (alerts, alerts_task) = crate::alerts::start(
            db,
            (&compliance, &compliance_handle),
            source,
            alerts_to,
            metrics,
            shutdown.clone(),
        )?;
        let handles = vec![
            compliance_handle.clone(),
            activity_handle.clone(),
            timeline_handle.clone(),
        ];
        // The models serve at once; their accounts are read back into memory beside them.
        let (warm_compliance, warm_activity) = (compliance.clone(), activity.clone());
        let warming = tokio::task::spawn_blocking(move || {
            warm_compliance.warm();
            warm_activity.warm();
        });
        drop(warming);
        let models = Self {
            compliance: (compliance, compliance_handle),
            alerts,
            activity: (activity, activity_handle),
            timeline: (timeline, timeline_handle),
        };
        Ok((
            models,
            handles,
            vec![compliance_task, activity_task, timeline_task, alerts_task],
        ))
    }

    /// Each read model's projection with the health service name that reports it.
    fn reported(&self) -> Vec<(ProjectionHandle, &'static str)> {
        vec![
            (
                self.compliance.1.clone(),
                <ComplianceServiceServer<ComplianceApi> as NamedService>::NAME,
            ),
            (
                self.activity.1.clone(),
                <ActivityServiceServer<ActivityApi> as NamedService>::NAME,
            ),
            (
                self.timeline.1.clone(),
                <TimelineServiceServer<TimelineApi> as NamedService>::NAME,
            ),
        ]
    }
}

/// The read models' gRPC services, answering UNAVAILABLE until their models have loaded;
/// each one service per shard followed (see [`ByShard`]).
struct ReadModelServices {
    compliance: WhenLoaded<ByShard<ComplianceServiceServer<ComplianceApi>>>,
    activity: WhenLoaded<ByShard<ActivityServiceServer<ActivityApi>>>,
    timeline: WhenLoaded<ByShard<TimelineServiceServer<TimelineApi>>>,
    /// Applied to the services once they are built (when their models have loaded).
    limits: LimitArgs,
}

impl ReadModelServices {
    fn pending(limits: LimitArgs) -> Self {
        Self {
            compliance: WhenLoaded::pending("the compliance read model"),
            activity: WhenLoaded::pending("the activity read model"),
            timeline: WhenLoaded::pending("the timeline read model"),
            limits,
        }
    }

    /// Adds the services to the router, reported NOT_SERVING until they have loaded.
    async fn register<L>(&self, router: Router<L>, health: &HealthReporter) -> Router<L> {
        Self::report(health, ServingStatus::NotServing).await;
        router
            .add_service(self.compliance.clone())
            .add_service(self.activity.clone())
            .add_service(self.timeline.clone())
    }

    /// Calls go to the loaded models from now on, each to its tenant's shard's.
    fn loaded(&self, loaded: &[LoadedReadModels]) {
        let (mut compliance, mut activity, mut timeline) = (Vec::new(), Vec::new(), Vec::new());
        for LoadedReadModels { shard, models, .. } in loaded {
            let shares: Arc<dyn ComplianceSource> =
                Arc::new(ComplianceShares(models.compliance.0.clone()));
            compliance.push((
                shard.clone(),
                ComplianceServiceServer::new(
                    ComplianceApi::new(models.compliance.0.clone(), models.compliance.1.clone())
                        .with_alerts(models.alerts.clone()),
                )
                .limited(&self.limits),
            ));
            activity.push((
                shard.clone(),
                ActivityServiceServer::new(ActivityApi::new(
                    models.activity.0.clone(),
                    models.activity.1.clone(),
                    Some(shares),
                ))
                .limited(&self.limits),
            ));
            timeline.push((
                shard.clone(),
                TimelineServiceServer::new(TimelineApi::new(
                    models.timeline.0.clone(),
                    models.timeline.1.clone(),
                ))
                .limited(&self.limits),
            ));
        }
        match (
            ByShard::new(compliance),
            ByShard::new(activity),
            ByShard::new(timeline),
        ) {
            (Some(compliance), Some(activity), Some(timeline)) => {
                self.compliance.loaded(compliance);
                self.activity.loaded(activity);
                self.timeline.loaded(timeline);
            }
            _ => self.failed("no read models were loaded"),
        }
    }

    fn failed(&self, reason: &str) {
        self.compliance.failed(reason.to_owned());
        self.activity.failed(reason.to_owned());
        self.timeline.failed(reason.to_owned());
    }

    /// Sets the three services' health status.
    async fn report(health: &HealthReporter, status: ServingStatus) {
        for name in [
            <ComplianceServiceServer<ComplianceApi> as NamedService>::NAME,
            <ActivityServiceServer<ActivityApi> as NamedService>::NAME,
            <TimelineServiceServer<TimelineApi> as NamedService>::NAME,
        ] {
            health.set_service_status(name, status).await;
        }
    }
}

/// The listener's connections with `TCP_NODELAY` set: without it Nagle's algorithm holds a
/// response's small trailers frame until the client's delayed ACK (a delayed-ACK timeout per
/// request; keyplan-bench showed it on batched commands).
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
