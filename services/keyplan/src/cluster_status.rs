//! `keyplan cluster status`: every node of a sharded cluster, read from the shard map and
//! asked for its status, so that an operator sees each shard's head, its relay's lag and how
//! far each replica has followed it, in one table.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use keyplan_cluster::ShardMap;
use keyplan_proto::pb;
use keyplan_proto::pb::operations_service_client::OperationsServiceClient;
use serde_json::json;

use crate::admin::AdminError;
use crate::config::NodeArgs;

/// One node as `keyplan cluster status` found it.
#[derive(Debug)]
struct NodeReport {
    shard: String,
    kind: &'static str,
    address: String,
    answer: Result<pb::NodeStatus, String>,
}

/// Asks every node of the map in `shard_map` for its status (with `node`'s token and TLS
/// options; a replica of several shards once per shard, with that shard's progress), and
/// renders what they said: as a table, or as JSON. Nodes that do not answer,
/// or that belong to another shard or another map than the file says, are reported as such;
/// the command fails (status 1) if any is.
pub async fn status(
    shard_map: &Path,
    node: &NodeArgs,
    json: bool,
) -> Result<(String, bool), AdminError> {
    let map = ShardMap::load(shard_map)?;
    let mut asks = Vec::new();
    for shard in map.shards() {
        let nodes = std::iter::once(("ingest", &shard.ingest))
            .chain(shard.replicas.iter().map(|r| ("replica", r)));
        for (kind, address) in nodes {
            let mut args = node.clone();
            args.server.clone_from(address);
            let shard = shard.id.clone();
            let address = address.clone();
            asks.push(async move {
                let answer = tokio::time::timeout(Duration::from_secs(5), async {
                    let channel = crate::tls::connect(&args).await?;
                    let status = OperationsServiceClient::new(channel)
                        .get_status(pb::GetStatusRequest {})
                        .await?
                        .into_inner();
                    Ok::<_, AdminError>(status)
                })
                .await
                .map_err(|_| "no answer within 5 s".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string()));
                NodeReport {
                    shard,
                    kind,
                    address,
                    answer,
                }
            });
        }
    }
    let reports = futures::future::join_all(asks).await;
    let healthy = reports.iter().all(|r| problem(r, &map).is_none());
    let text = if json {
        render_json(&reports, &map)
    } else {
        render_table(&reports, &map)
    };
    Ok((text, healthy))
}

/// What is wrong with a node, if anything.
fn problem(report: &NodeReport, map: &ShardMap) -> Option<String> {
    let status = match &report.answer {
        Ok(status) => status,
        Err(e) => {
            return Some(format!(
                "UNREACHABLE: {}",
                e.chars().take(200).collect::<String>()
            ))
        }
    };
    // A replica may follow several shards ("s1,s2"); an ingest node holds one.
    let serves = match report.kind {
        "replica" => status.shard.split(',').any(|s| s == report.shard),
        _ => status.shard == report.shard,
    };
    if !serves {
        return Some(format!(
            "WRONG SHARD: the node says it is shard {:?}",
            status.shard.chars().take(100).collect::<String>()
        ));
    }
    if status.shard_map_fingerprint != map.fingerprint() {
        return Some(format!(
            "OTHER MAP: the node runs shard map {:?}, the file is {:?}",
            status.shard_map_fingerprint,
            map.fingerprint()
        ));
    }
    if !status.log_write_failure.is_empty() {
        return Some(format!("LOG CANNOT WRITE: {}", status.log_write_failure));
    }
    if let Some(relay) = status
        .relay
        .as_ref()
        .filter(|r| !r.stopped_reason.is_empty())
    {
        return Some(format!("RELAY STOPPED: {}", relay.stopped_reason));
    }
    if let Some(p) = status
        .projections
        .iter()
        .filter(|p| p.shard == report.shard)
        .find(|p| !p.stopped_reason.is_empty())
    {
        return Some(format!("{} STOPPED: {}", p.name, p.stopped_reason));
    }
    None
}

/// The lowest position the node's projections of `shard` have reached (how far it follows
/// that shard).
fn followed(status: &pb::NodeStatus, shard: &str) -> Option<u64> {
    status
        .projections
        .iter()
        .filter(|p| p.shard == shard)
        .map(|p| p.position)
        .min()
}

fn render_table(reports: &[NodeReport], map: &ShardMap) -> String {
    let mut out = format!(
        "shard map {} ({} shards)\n{:<10} {:<8} {:<28} {:>10} {:>10} {:>10}  {}\n",
        map.fingerprint(),
        map.shards().len(),
        "SHARD",
        "NODE",
        "ADDRESS",
        "HEAD",
        "RELAY LAG",
        "FOLLOWED",
        "STATE"
    );
    for r in reports {
        let (head, lag, follow) = match &r.answer {
            Ok(s) => (
                if s.role == "projections" {
                    "-".to_owned()
                } else {
                    s.head_position.to_string()
                },
                s.relay
                    .as_ref()
                    .map_or("-".to_owned(), |r| r.lag_positions.to_string()),
                followed(s, &r.shard).map_or("-".to_owned(), |p| p.to_string()),
            ),
            Err(_) => ("?".into(), "?".into(), "?".into()),
        };
        let state = problem(r, map).unwrap_or_else(|| "ok".into());
        let _ = writeln!(
            out,
            "{:<10} {:<8} {:<28} {:>10} {:>10} {:>10}  {}",
            r.shard, r.kind, r.address, head, lag, follow, state
        );
    }
    out
}

fn render_json(reports: &[NodeReport], map: &ShardMap) -> String {
    let nodes: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            let mut node = json!({
                "shard": r.shard,
                "node": r.kind,
                "address": r.address,
                "problem": problem(r, map),
            });
            if let Ok(s) = &r.answer {
                node["role"] = json!(s.role);
                node["headPosition"] = json!(s.head_position);
                node["relayLag"] = json!(s.relay.as_ref().map(|r| r.lag_positions));
                node["followedPosition"] = json!(followed(s, &r.shard));
            }
            node
        })
        .collect();
    let value = json!({ "shardMap": map.fingerprint(), "nodes": nodes });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    )
}
