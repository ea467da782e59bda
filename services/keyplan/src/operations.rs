//! `keyplan.v1.OperationsService`: what an operator needs to see of a running node.

use std::sync::{Arc, OnceLock};

use keyplan_fanout::Relay;
use keyplan_projection::ProjectionHandle;
use keyplan_proto::pb;
use keyplan_proto::pb::operations_service_server::OperationsService;
use keyplan_store::EventStore;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// The projections a node runs: known once its read models have loaded (an all-in-one node
/// serves before that; see `crate::loading`), never if they failed to load.
pub type Projections = Arc<OnceLock<Vec<RunningProjection>>>;

/// A projection a node runs, and the shard whose events feed it.
#[derive(Debug, Clone)]
pub struct RunningProjection {
    /// The shard (empty outside a sharded cluster).
    pub shard: String,
    /// Its progress.
    pub handle: ProjectionHandle,
}

/// The node's moving parts, as far as they exist in its role.
#[derive(Debug, Clone)]
pub struct OperationsApi {
    /// Role name.
    pub role: &'static str,
    /// Ack mode name.
    pub ack_mode: &'static str,
    /// The local log, if this node has one.
    pub store: Option<EventStore>,
    /// The NATS connection state, if NATS is configured.
    pub nats_connected: Option<watch::Receiver<bool>>,
    /// The relay, if this node publishes.
    pub relay: Option<Relay>,
    /// Projections running here, once loaded.
    pub projections: Projections,
    /// This node's shards (comma-separated) and its map's fingerprint, in a sharded cluster.
    pub shard: Option<(String, String)>,
}

type ProgressStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::RebuildProgress, Status>> + Send>>;

#[tonic::async_trait]
impl OperationsService for OperationsApi {
    type RebuildProjectionsStream = ProgressStream;

    async fn rebuild_projections(
        &self,
        request: Request<pb::RebuildProjectionsRequest>,
    ) -> Result<Response<Self::RebuildProjectionsStream>, Status> {
        let names = request.into_inner().names;
        let Some(projections) = self.projections.get() else {
            return Err(Status::unavailable(
                "the read models are not loaded: still loading after the node started (retry \
                 in a moment), or they failed to load (the node's log says why)",
            ));
        };
        let mut known: Vec<&str> = projections.iter().map(|p| p.handle.name()).collect();
        known.dedup();
        for name in &names {
            // A projection name has the syntax of an id: a malformed one is the caller's
            // error whatever the node runs.
            keyplan_domain::ids::validate_id("names", name)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
        }
        if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(Status::not_found(format!(
                "this node runs no projection named {}; it runs: {}",
                keyplan_domain::text::quote(unknown),
                known.join(", ")
            )));
        }
        let chosen: Vec<_> = projections
            .iter()
            .filter(|p| names.is_empty() || names.iter().any(|n| n == p.handle.name()))
            .cloned()
            .collect();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        for RunningProjection { shard, handle } in chosen {
            let tx = tx.clone();
            let mut progress = handle
                .rebuild()
                .map_err(|e| Status::failed_precondition(e.to_string()))?;
            tokio::spawn(async move {
                while let Some(p) = progress.recv().await {
                    let finished = p.done || p.error.is_some();
                    let update = pb::RebuildProgress {
                        name: handle.name().into(),
                        position: p.position,
                        target: p.target,
                        done: p.done,
                        error: p.error.unwrap_or_default(),
                        shard: shard.clone(),
                    };
                    if tx.send(Ok(update)).await.is_err() || finished {
                        return;
                    }
                }
            });
        }
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        let relay = self.relay.as_ref().map(|relay| {
            let status = relay.status();
            let (lag_positions, lag_seconds) = relay.lag();
            let state = match (&status.stopped, status.running) {
                (Some(_), _) => "stopped",
                (None, true) => "running",
                (None, false) => "retrying",
            };
            pb::RelayStatus {
                published_position: status.published_position,
                lag_positions,
                lag_seconds,
                running: status.running,
                last_error: status.last_error.unwrap_or_default(),
                state: state.into(),
                stopped_reason: status.stopped.unwrap_or_default(),
                repairs: status.repairs,
            }
        });
        Ok(Response::new(pb::NodeStatus {
            role: self.role.into(),
            head_position: self.store.as_ref().map_or(0, EventStore::head),
            nats_configured: self.nats_connected.is_some(),
            nats_connected: self.nats_connected.as_ref().is_some_and(|c| *c.borrow()),
            relay,
            projections: self
                .projections
                .get()
                .into_iter()
                .flatten()
                .map(|RunningProjection { shard, handle: p }| {
                    let stopped = p.stopped();
                    pb::ProjectionStatus {
                        shard: shard.clone(),
                        name: p.name().into(),
                        position: p.position(),
                        state: if stopped.is_some() {
                            "stopped"
                        } else {
                            "running"
                        }
                        .into(),
                        stopped_reason: stopped.unwrap_or_default(),
                    }
                })
                .collect(),
            ack_mode: self.ack_mode.into(),
            foreign_messages: Some({
                let seen = keyplan_projection::foreign_messages();
                pb::ForeignMessages {
                    skipped: seen.skipped,
                    last_sequence: seen.last_sequence,
                    last_reason: seen.last_reason,
                }
            }),
            log_write_failure: self
                .store
                .as_ref()
                .and_then(|s| s.failure().borrow().clone())
                .unwrap_or_default(),
            shard: self
                .shard
                .as_ref()
                .map(|(s, _)| s.clone())
                .unwrap_or_default(),
            shard_map_fingerprint: self
                .shard
                .as_ref()
                .map(|(_, f)| f.clone())
                .unwrap_or_default(),
        }))
    }
}
