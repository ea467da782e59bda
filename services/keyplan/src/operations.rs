//! `keyplan.v1.OperationsService`: what an operator needs to see of a running node.

use std::sync::{Arc, OnceLock};

use keyplan_fanout::Relay;
use keyplan_projection::{ProjectionError, ProjectionHandle, ReadModelDb, SnapshotPiece};
use keyplan_proto::pb;
use keyplan_proto::pb::operations_service_server::OperationsService;
use keyplan_store::EventStore;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// The projections a node runs: known once its read models have loaded (an all-in-one node
/// serves before that; see `crate::loading`), never if they failed to load.
pub type Projections = Arc<OnceLock<Vec<RunningProjection>>>;

/// The read models' databases of a node, each with the shard whose events feed it (empty
/// outside a sharded cluster): known once they have loaded, like [`Projections`].
pub type ReadModelDbs = Arc<OnceLock<Vec<(String, ReadModelDb)>>>;

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
    /// Their databases, once loaded (what `ExportReadModels` reads).
    pub read_model_dbs: ReadModelDbs,
    /// Most bytes of entries in one `ExportReadModels` piece (below the message limit).
    pub export_piece_bytes: usize,
    /// This node's shards (comma-separated) and its map's fingerprint, in a sharded cluster.
    pub shard: Option<(String, String)>,
}

type ProgressStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::RebuildProgress, Status>> + Send>>;
type ExportStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<pb::ExportReadModelsResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl OperationsService for OperationsApi {
    type RebuildProjectionsStream = ProgressStream;
    type ExportReadModelsStream = ExportStream;

    async fn export_read_models(
        &self,
        request: Request<pb::ExportReadModelsRequest>,
    ) -> Result<Response<Self::ExportReadModelsStream>, Status> {
        let shard = request.into_inner().shard;
        if !shard.is_empty() {
            // A shard id has the syntax of an id: a malformed one is the caller's error
            // whatever the node follows.
            keyplan_domain::ids::validate_id("shard", &shard)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
        }
        let (Some(dbs), Some(projections)) = (self.read_model_dbs.get(), self.projections.get())
        else {
            return Err(Status::unavailable(
                "the read models are not loaded: still loading after the node started (retry \
                 in a moment), or they failed to load (the node's log says why)",
            ));
        };
        let named: Vec<&str> = dbs.iter().map(|(s, _)| s.as_str()).collect();
        // A node with one set of read models exports it whatever its shard.
        let found = match dbs.as_slice() {
            [only] if shard.is_empty() => Some(only),
            _ => dbs.iter().find(|(s, _)| *s == shard),
        };
        let (shard, db) =
            match found {
                Some((shard, db)) => (shard.clone(), db.clone()),
                None if dbs.is_empty() => return Err(Status::failed_precondition(
                    "this node has no read models (an ingest node): ask a projections node, or \
                     an all-in-one node",
                )),
                None if shard.is_empty() => {
                    return Err(Status::invalid_argument(format!(
                        "this node has read models of several shards ({}): name one in shard",
                        named.join(", ")
                    )))
                }
                None => {
                    return Err(Status::not_found(format!(
                        "this node has no read models of shard {}; it has: {}",
                        keyplan_domain::text::quote(&shard),
                        named.join(", ")
                    )))
                }
            };
        // A lower bound of every exported checkpoint: positions only grow.
        let position = projections
            .iter()
            .filter(|p| p.shard == shard)
            .map(|p| p.handle.position())
            .min()
            .unwrap_or(0);
        let piece_bytes = self.export_piece_bytes;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        // Reading the database is blocking work; the channel carries it to the stream, and a
        // caller that goes away ends it (the send fails).
        tokio::task::spawn_blocking(move || {
            let sent = db.export(piece_bytes, |piece: SnapshotPiece| {
                let piece = pb::ExportReadModelsResponse {
                    tree: piece.tree,
                    entries: piece
                        .entries
                        .into_iter()
                        .map(|(key, value)| pb::ReadModelsEntry { key, value })
                        .collect(),
                    end: None,
                };
                tx.blocking_send(Ok(piece))
                    .map_err(|_| ProjectionError::Feed("the caller went away".into()))
            });
            let last = match sent {
                Ok(size) => Ok(pb::ExportReadModelsResponse {
                    end: Some(pb::ReadModelsSnapshotEnd {
                        trees: size.trees,
                        entries: size.entries,
                        bytes: size.bytes,
                        position,
                    }),
                    ..Default::default()
                }),
                Err(e) => Err(Status::internal(format!(
                    "reading the read models' snapshot failed: {e}"
                ))),
            };
            let _ = tx.blocking_send(last);
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

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
