//! `keyplan projections ...`: operating a running node over its `OperationsService`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use keyplan_proto::pb;
use keyplan_proto::pb::operations_service_client::OperationsServiceClient;
use thiserror::Error;

use crate::config::{HealthArgs, NodeArgs};
use crate::tls::{ConnectError, NodeChannel};

/// Why an operation on a node failed.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The node cannot be reached (or the TLS options are unusable).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The node refused or failed the request.
    #[error("{0}")]
    Status(#[from] tonic::Status),
    /// The shard map is unusable.
    #[error(transparent)]
    ShardMap(#[from] keyplan_cluster::MapError),
    /// The status could not be written as JSON.
    #[error("{0}")]
    Json(String),
    /// Seeding a new node's read models failed (nothing of them is left behind).
    #[error("{0}")]
    Seed(String),
    /// A rebuild failed (the old generation keeps serving).
    #[error("rebuild of {name} failed: {error}")]
    Rebuild {
        /// Projection.
        name: String,
        /// Why.
        error: String,
    },
}

/// The node's operations client, over TLS and with the token as `node` says.
async fn client(node: &NodeArgs) -> Result<OperationsServiceClient<NodeChannel>, AdminError> {
    Ok(OperationsServiceClient::new(
        crate::tls::connect(node).await?,
    ))
}

/// Whether the part `args.service` names serves, and a line saying so (or why not: no
/// answer in time, no connection, a service the node does not know).
pub async fn health(args: &HealthArgs) -> (bool, String) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let name = if args.service.is_empty() {
        "the node".to_owned()
    } else {
        args.service.clone()
    };
    let ask = async {
        let channel = crate::tls::connect(&args.node).await?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await?
            .into_inner();
        Ok::<_, AdminError>(answer.status())
    };
    match tokio::time::timeout(Duration::from_secs(args.timeout_secs.max(1)), ask).await {
        Ok(Ok(ServingStatus::Serving)) => (true, format!("{name}: SERVING")),
        Ok(Ok(status)) => (false, format!("{name}: {}", status.as_str_name())),
        Ok(Err(e)) => (false, format!("{name}: no answer: {e}")),
        Err(_) => (
            false,
            format!("{name}: no answer within {} s", args.timeout_secs.max(1)),
        ),
    }
}

/// The node's status as text for a person, or as proto3 JSON (every field present).
pub async fn status(node: &NodeArgs, json: bool) -> Result<String, AdminError> {
    let status = client(node)
        .await?
        .get_status(pb::GetStatusRequest {})
        .await?
        .into_inner();
    if json {
        let value = crate::cli::to_json("keyplan.v1.NodeStatus", &status)
            .map_err(|e| AdminError::Json(e.to_string()))?;
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ));
    }
    Ok(render_status(&status))
}

/// The text `keyplan projections status` prints: a stopped part says so, and why, on its line
/// (its position no longer moves, which a bare number would not tell).
fn render_status(status: &pb::NodeStatus) -> String {
    let mut out = format!("role {}, log head {}\n", status.role, status.head_position);
    if !status.log_write_failure.is_empty() {
        out.push_str(&format!(
            "log: CANNOT WRITE: {} (the node is shutting down to be restarted)\n",
            status.log_write_failure
        ));
    }
    if let Some(relay) = &status.relay {
        let state = if !relay.stopped_reason.is_empty() {
            format!("STOPPED: {}", relay.stopped_reason)
        } else if relay.running {
            "running".to_owned()
        } else {
            format!("retrying: {}", relay.last_error)
        };
        out.push_str(&format!(
            "relay: published {} (lag {} events, {:.1} s), {state}\n",
            relay.published_position, relay.lag_positions, relay.lag_seconds,
        ));
        if relay.repairs > 0 {
            out.push_str(&format!(
                "relay: republished the stream {} time(s) after finding foreign messages on it \
                 (only the ingest node should publish on its subjects; see deploy/nats/)\n",
                relay.repairs
            ));
        }
    }
    for p in &status.projections {
        let name = labelled(&p.name, &p.shard);
        if p.stopped_reason.is_empty() {
            out.push_str(&format!("{name:<16} {}\n", p.position));
        } else {
            out.push_str(&format!(
                "{name:<16} {} STOPPED: {}\n",
                p.position, p.stopped_reason
            ));
        }
    }
    if let Some(foreign) = status.foreign_messages.as_ref().filter(|f| f.skipped > 0) {
        out.push_str(&format!(
            "foreign messages on the stream: {} skipped, the last at sequence {}: {} (only the \
             ingest node should publish on the stream's subjects; see deploy/nats/)\n",
            foreign.skipped, foreign.last_sequence, foreign.last_reason
        ));
    }
    out
}

/// Copies the read models of the running node `node` (every shard it follows, or `only`)
/// into `data_dir` for a new projections node; returns what was copied, a line per shard.
/// A node following several shards keeps each in `<data dir>/shards/<shard>`; the copy is
/// laid out as the new node will look for it (`crate::server::SHARDS_DIR`).
pub async fn seed(
    node: &NodeArgs,
    data_dir: &std::path::Path,
    only: Option<&str>,
) -> Result<String, AdminError> {
    let mut operations = client(node).await?;
    let status = operations
        .get_status(pb::GetStatusRequest {})
        .await?
        .into_inner();
    if status.projections.is_empty() {
        return Err(AdminError::Seed(format!(
            "the node at {} runs no read models (role {}): seed from a projections node",
            node.server, status.role
        )));
    }
    let followed: Vec<String> = status.shard.split(',').map(str::to_owned).collect();
    let chosen = match only {
        Some(shard) if followed.iter().any(|s| s == shard) => vec![shard.to_owned()],
        Some(shard) => {
            return Err(AdminError::Seed(format!(
                "the node at {} has no read models of shard {}; it follows: {}",
                node.server,
                keyplan_domain::text::quote(shard),
                status.shard
            )))
        }
        None => followed,
    };
    let several = chosen.len() > 1;
    let targets: Vec<(String, std::path::PathBuf)> = chosen
        .into_iter()
        .map(|shard| {
            let dir = if several {
                data_dir.join(crate::server::SHARDS_DIR).join(&shard)
            } else {
                data_dir.to_owned()
            };
            (shard, dir.join(keyplan_projection::READ_MODELS_DIR))
        })
        .collect();
    if let Some((_, path)) = targets.iter().find(|(_, path)| path.exists()) {
        return Err(AdminError::Seed(format!(
            "{} already exists: seed only a new node's data directory",
            path.display()
        )));
    }
    let mut out = String::new();
    for (n, (shard, path)) in targets.iter().enumerate() {
        let started = Instant::now();
        let copied = seed_one(&mut operations, shard, path).await;
        match copied {
            Ok(end) => out.push_str(&format!(
                "{}: {} trees, {} entries ({:.1} MiB), every projection at position {} or \
                 later, in {:.1} s\n",
                if shard.is_empty() {
                    "read models"
                } else {
                    shard
                },
                end.trees,
                end.entries,
                end.bytes as f64 / (1024.0 * 1024.0),
                end.position,
                started.elapsed().as_secs_f64()
            )),
            Err(e) => {
                // Half a copy must not be taken for one: a retry starts afresh.
                for (_, written) in &targets[..=n] {
                    let _ = std::fs::remove_dir_all(written);
                }
                return Err(e);
            }
        }
    }
    out.push_str(&format!(
        "start the new node on {} with --role projections and the --shard the copy was taken \
         for: it reads each stream from its checkpoints on\n",
        data_dir.display()
    ));
    Ok(out)
}

/// Streams one shard's snapshot into a new database at `path`: the network and the writes
/// overlap (a blocking writer takes the pieces through a channel). Checks that the whole
/// snapshot arrived before it makes it durable.
async fn seed_one(
    operations: &mut OperationsServiceClient<NodeChannel>,
    shard: &str,
    path: &std::path::Path,
) -> Result<pb::ReadModelsSnapshotEnd, AdminError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| AdminError::Seed(format!("{what}: {e}"));
    let db = keyplan_projection::ReadModelDb::open(path, 16 * 1024 * 1024)
        .map_err(|e| fail(&format!("opening {}", path.display()), &e))?;
    let mut pieces = operations
        .export_read_models(pb::ExportReadModelsRequest {
            shard: shard.to_owned(),
        })
        .await?
        .into_inner();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<keyplan_projection::SnapshotPiece>(4);
    // Each tree's pieces come one after the other: the writer ingests a tree from its first
    // piece to the next tree's.
    let writer = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            let mut next = rx.blocking_recv();
            while let Some(first) = next.take() {
                let tree = first.tree;
                let mut entries = first.entries.into_iter();
                let of_tree = std::iter::from_fn(|| loop {
                    if let Some(entry) = entries.next() {
                        return Some(entry);
                    }
                    match rx.blocking_recv() {
                        Some(piece) if piece.tree == tree => entries = piece.entries.into_iter(),
                        other => {
                            next = other;
                            return None;
                        }
                    }
                });
                db.import_tree(&tree, of_tree)?;
            }
            db.persist()
        })
    };
    let (mut trees, mut entries) = (std::collections::BTreeSet::new(), 0u64);
    let mut end = None;
    while let Some(piece) = pieces.message().await? {
        if let Some(last) = piece.end {
            end = Some(last);
            break;
        }
        trees.insert(piece.tree.clone());
        entries += piece.entries.len() as u64;
        let piece = keyplan_projection::SnapshotPiece {
            tree: piece.tree,
            entries: piece
                .entries
                .into_iter()
                .map(|e| (e.key, e.value))
                .collect(),
        };
        if tx.send(piece).await.is_err() {
            break;
        }
    }
    drop(tx);
    writer
        .await
        .map_err(|e| fail("writing the read models", &e))?
        .map_err(|e| fail("writing the read models", &e))?;
    match end {
        Some(end) if end.trees == trees.len() as u64 && end.entries == entries => Ok(end),
        Some(end) => Err(AdminError::Seed(format!(
            "the snapshot held {} trees and {} entries, {} and {} arrived: nothing kept",
            end.trees,
            end.entries,
            trees.len(),
            entries
        ))),
        None => Err(AdminError::Seed(
            "the snapshot ended early (the node stopped?): nothing kept; run again".into(),
        )),
    }
}

/// Rebuilds projections online: one progress bar per projection on a terminal, plain lines
/// otherwise (a log file or CI must see that the rebuild moves, and how it ended).
pub async fn rebuild(node: &NodeArgs, names: Vec<String>) -> Result<(), AdminError> {
    let progress = client(node)
        .await?
        .rebuild_projections(pb::RebuildProjectionsRequest { names })
        .await?
        .into_inner();
    if std::io::stderr().is_terminal() {
        rebuild_with_bars(progress).await
    } else {
        rebuild_with_lines(progress, Duration::from_secs(2)).await
    }
}

/// Prints a line per projection at most every `every` while it moves, and one when it ends.
async fn rebuild_with_lines(
    mut progress: tonic::Streaming<pb::RebuildProgress>,
    every: Duration,
) -> Result<(), AdminError> {
    let mut last_printed: HashMap<String, Instant> = HashMap::new();
    let mut failure = None;
    while let Some(update) = progress.message().await? {
        let line = rebuild_line(&update);
        let name = labelled(&update.name, &update.shard);
        let due = last_printed
            .get(&name)
            .is_none_or(|at| at.elapsed() >= every);
        if update.done || !update.error.is_empty() || due {
            eprintln!("{line}");
            last_printed.insert(name.clone(), Instant::now());
        }
        if !update.error.is_empty() {
            failure = Some(AdminError::Rebuild {
                name,
                error: update.error,
            });
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A projection's name as printed: `s1/timeline` on a node that may run it once per shard
/// (a sharded cluster), `timeline` outside one.
fn labelled(name: &str, shard: &str) -> String {
    if shard.is_empty() {
        name.to_owned()
    } else {
        format!("{shard}/{name}")
    }
}

/// One plain progress line, e.g. `timeline: 120000/500000 events`.
fn rebuild_line(update: &pb::RebuildProgress) -> String {
    let target = update.target.max(update.position);
    let name = labelled(&update.name, &update.shard);
    if update.done {
        format!(
            "{name}: {}/{target} events, done: the new generation serves",
            update.position
        )
    } else if !update.error.is_empty() {
        format!(
            "{name}: {}/{target} events, failed: {} (the old generation keeps serving)",
            update.position, update.error
        )
    } else {
        format!("{name}: {}/{target} events", update.position)
    }
}

async fn rebuild_with_bars(
    mut progress: tonic::Streaming<pb::RebuildProgress>,
) -> Result<(), AdminError> {
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{prefix:>16} [{bar:40}] {pos}/{len} events ({per_sec}) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut by_name: HashMap<String, ProgressBar> = HashMap::new();
    let mut failure = None;
    while let Some(update) = progress.message().await? {
        let name = labelled(&update.name, &update.shard);
        let bar = by_name.entry(name.clone()).or_insert_with(|| {
            let bar = bars.add(ProgressBar::new(update.target.max(1)));
            bar.set_style(style.clone());
            bar.set_prefix(name.clone());
            bar
        });
        bar.set_length(update.target.max(update.position).max(1));
        bar.set_position(update.position);
        if update.done {
            bar.finish_with_message("done: the new generation serves");
        } else if !update.error.is_empty() {
            bar.abandon_with_message(format!("failed: {}", update.error));
            failure = Some(AdminError::Rebuild {
                name,
                error: update.error,
            });
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuild_lines_say_how_far_and_how_it_ended() {
        let mut update = pb::RebuildProgress {
            name: "timeline".into(),
            position: 120,
            target: 500,
            ..Default::default()
        };
        assert_eq!(rebuild_line(&update), "timeline: 120/500 events");
        update.error = "disk full".into();
        assert_eq!(
            rebuild_line(&update),
            "timeline: 120/500 events, failed: disk full (the old generation keeps serving)"
        );
        update.error.clear();
        update.done = true;
        update.position = 510;
        assert_eq!(
            rebuild_line(&update),
            "timeline: 510/510 events, done: the new generation serves"
        );
        // A node of a sharded cluster may rebuild a projection once per shard.
        update.shard = "s2".into();
        assert_eq!(
            rebuild_line(&update),
            "s2/timeline: 510/510 events, done: the new generation serves"
        );
    }

    #[test]
    fn a_stopped_projection_and_relay_say_so_and_why() {
        let status = pb::NodeStatus {
            role: "all".into(),
            head_position: 42,
            relay: Some(pb::RelayStatus {
                published_position: 40,
                lag_positions: 2,
                state: "stopped".into(),
                stopped_reason: "JetStream stream does not match the log: sequence 41".into(),
                ..Default::default()
            }),
            projections: vec![
                pb::ProjectionStatus {
                    name: "compliance".into(),
                    position: 42,
                    state: "running".into(),
                    ..Default::default()
                },
                pb::ProjectionStatus {
                    name: "timeline".into(),
                    position: 17,
                    state: "stopped".into(),
                    stopped_reason: "event at position 18 cannot be decoded: bad tag".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let printed = render_status(&status);
        assert_eq!(
            printed,
            "role all, log head 42\n\
             relay: published 40 (lag 2 events, 0.0 s), STOPPED: JetStream stream does not \
             match the log: sequence 41\n\
             compliance       42\n\
             timeline         17 STOPPED: event at position 18 cannot be decoded: bad tag\n"
        );
    }
}
