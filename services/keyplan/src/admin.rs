//! `keyplan projections ...`: operating a running node over its `OperationsService`.

use std::collections::HashMap;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use keyplan_proto::pb;
use keyplan_proto::pb::operations_service_client::OperationsServiceClient;
use thiserror::Error;

use crate::config::NodeArgs;
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

/// Prints the node's projections and their positions.
pub async fn status(node: &NodeArgs) -> Result<String, AdminError> {
    let status = client(node)
        .await?
        .get_status(pb::GetStatusRequest {})
        .await?
        .into_inner();
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
        if p.stopped_reason.is_empty() {
            out.push_str(&format!("{:<16} {}\n", p.name, p.position));
        } else {
            out.push_str(&format!(
                "{:<16} {} STOPPED: {}\n",
                p.name, p.position, p.stopped_reason
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

/// Rebuilds projections online, drawing one progress bar per projection.
pub async fn rebuild(node: &NodeArgs, names: Vec<String>) -> Result<(), AdminError> {
    let mut progress = client(node)
        .await?
        .rebuild_projections(pb::RebuildProjectionsRequest { names })
        .await?
        .into_inner();
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{prefix:>16} [{bar:40}] {pos}/{len} events ({per_sec}) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut by_name: HashMap<String, ProgressBar> = HashMap::new();
    let mut failure = None;
    while let Some(update) = progress.message().await? {
        let bar = by_name.entry(update.name.clone()).or_insert_with(|| {
            let bar = bars.add(ProgressBar::new(update.target.max(1)));
            bar.set_style(style.clone());
            bar.set_prefix(update.name.clone());
            bar
        });
        bar.set_length(update.target.max(update.position).max(1));
        bar.set_position(update.position);
        if update.done {
            bar.finish_with_message("done: the new generation serves");
        } else if !update.error.is_empty() {
            bar.abandon_with_message(format!("failed: {}", update.error));
            failure = Some(AdminError::Rebuild {
                name: update.name,
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
                    stopped_reason: String::new(),
                },
                pb::ProjectionStatus {
                    name: "timeline".into(),
                    position: 17,
                    state: "stopped".into(),
                    stopped_reason: "event at position 18 cannot be decoded: bad tag".into(),
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
