//! Scenario `shards`: the `fanout` scenario's single-event appends at a fixed rate, spread
//! over many tenants and so over 1, 2 or 4 shards (one `--role all` node per shard, each with
//! its own log and its own JetStream stream on one private nats-server), measuring the rate
//! reached, the acknowledgement latency, and the latency from ack to receipt by a JetStream
//! consumer of each shard's stream.
//!
//! Every row, the one-shard baseline included, runs with a shard map, so the routing layer is
//! in every row and the ratios show what more shards give, not what the layer costs. Clients
//! send each command to the node of its tenant's shard; one more row sends every command to the
//! first node, which forwards those of the other shard's tenants: what forwarding costs.
//!
//! The CPU time of every process (read from `/proc/<pid>/stat` before and after the load) says
//! where the machine's cores went: N nodes share the same cores, so a row's rate is bounded by
//! them, not by the number of logs.
//!
//! The scenario then measures read models on replicas of two shards, one replica per shard
//! against one that follows both (`crate::all_shards`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use keyplan_cluster::ShardMap;
use keyplan_proto::pb::command_service_client::CommandServiceClient;
use serde::Serialize;

use crate::fanout::{
    clients_for, consume, latency, lock, offer_load, quantiles, split_at_store, StoredTimes, Times,
    WallClock,
};
use crate::measure::{clock_ticks, cpu_seconds};
use crate::nats::{free_port, NatsProcess};
use crate::server::{connect, head, KeyplanProcess};
use crate::workload::{onboarding_in, AccountWorkload};

/// Tenants the accounts are spread over: enough that rendezvous hashing gives each of 4
/// shards a fair share.
pub const TENANTS: usize = 64;

/// How many shards, and where the clients send their commands.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ShardSetup {
    /// Shards, one `--role all` node each.
    pub shards: usize,
    /// Every command goes to the first node (which forwards the other shards' tenants'),
    /// instead of to its tenant's node.
    pub via_first_node: bool,
}

impl ShardSetup {
    /// The rows of one rate: 1 shard (the baseline), 2, 2 through the first node, 4.
    pub const ROWS: [ShardSetup; 4] = [
        ShardSetup {
            shards: 1,
            via_first_node: false,
        },
        ShardSetup {
            shards: 2,
            via_first_node: false,
        },
        ShardSetup {
            shards: 2,
            via_first_node: true,
        },
        ShardSetup {
            shards: 4,
            via_first_node: false,
        },
    ];

    /// E.g. `2 shards via s1`.
    pub fn label(&self) -> String {
        let shards = if self.shards == 1 { "shard" } else { "shards" };
        let route = if self.via_first_node {
            ", all via s1"
        } else {
            ""
        };
        format!("{} {shards}{route}", self.shards)
    }
}

/// CPU seconds used during the load (user + system, from `/proc/<pid>/stat`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuSeconds {
    /// Each keyplan node, in shard order.
    pub keyplan: Vec<f64>,
    /// The nats-server.
    pub nats: f64,
    /// This process (the clients, and the JetStream consumers).
    pub bench: f64,
    /// Wall-clock seconds the load lasted (CPU / wall = cores used).
    pub wall: f64,
}

/// One row.
#[derive(Debug, Clone, Serialize)]
pub struct ShardsResult {
    /// Shards, and where commands were sent.
    pub setup: ShardSetup,
    /// Offered appends (events) per second.
    pub rate_per_s: u32,
    /// Appending clients sharing the offered load (one account each).
    pub clients: usize,
    /// Tenants the clients' accounts belong to.
    pub tenants: usize,
    /// Clients whose tenant is on each shard (in shard order).
    pub clients_per_shard: Vec<usize>,
    /// Clients whose commands were forwarded by the node they sent them to.
    pub forwarded_clients: usize,
    /// Events acknowledged.
    pub acknowledged: u64,
    /// Achieved append rate.
    pub achieved_per_s: f64,
    /// Failed appends (none are expected).
    pub errors: u64,
    /// Append acknowledgement latency, milliseconds: p50, p99, p999, max.
    pub ack_ms: [f64; 4],
    /// Ack → received by the consumer of the event's shard's stream, milliseconds: p50, p99,
    /// p999, max (0 when it arrived before the ack).
    pub jetstream_ms: [f64; 4],
    /// ... of which ack → stored by nats-server, milliseconds.
    pub jetstream_stored_ms: [f64; 4],
    /// Events acknowledged but never received by the consumers.
    pub lost: u64,
    /// Where the CPU went during the load.
    pub cpu: CpuSeconds,
}

/// Runs every row at each rate (rate by rate), each on a fresh nats-server and fresh nodes.
pub async fn run(
    binary: &std::path::Path,
    rates: &[u32],
    measured: Duration,
    server_args: &[String],
) -> Result<Vec<ShardsResult>> {
    let ticks = clock_ticks();
    let mut out = Vec::new();
    for &rate in rates {
        for setup in ShardSetup::ROWS {
            eprintln!("shards: {} at {rate}/s...", setup.label());
            out.push(
                run_row(binary, rate, setup, measured, server_args, ticks)
                    .await
                    .with_context(|| format!("shards at {rate}/s, {}", setup.label()))?,
            );
        }
    }
    Ok(out)
}

/// The shard map of `ports.len()` shards `s1`, `s2`... whose ingest nodes listen on those
/// loopback ports, with streams `KEYPLAN_S<i>` and subject prefixes `keyplan-s<i>`; shard
/// `i`'s replicas on the loopback ports `replicas[i]` (none where `replicas` has no entry).
pub(crate) fn map_text(ports: &[u16], replicas: &[Vec<u16>]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let n = i + 1;
            let replicas = replicas
                .get(i)
                .map(|ports| {
                    let addresses: Vec<String> = ports
                        .iter()
                        .map(|p| format!("\"http://127.0.0.1:{p}\""))
                        .collect();
                    format!("replicas = [{}]\n", addresses.join(", "))
                })
                .unwrap_or_default();
            format!(
                "[[shards]]\nid = \"s{n}\"\ningest = \"http://127.0.0.1:{port}\"\n{replicas}\
                 stream = \"KEYPLAN_S{n}\"\nsubject_prefix = \"keyplan-s{n}\"\n\n"
            )
        })
        .collect()
}

async fn run_row(
    binary: &std::path::Path,
    rate: u32,
    setup: ShardSetup,
    measured: Duration,
    server_args: &[String],
    ticks: f64,
) -> Result<ShardsResult> {
    // At least one client per tenant, so that every tenant (and so every shard) has load.
    let clients = clients_for(rate).max(TENANTS);
    let nats = NatsProcess::start().await?;
    let dir = tempfile::Builder::new()
        .prefix("keyplan-bench-shards-")
        .tempdir()
        .context("creating a directory for the shard map")?;
    let ports: Vec<u16> = (0..setup.shards)
        .map(|_| free_port())
        .collect::<Result<_>>()?;
    let text = map_text(&ports, &[]);
    let map = ShardMap::parse(&text)?;
    let map_file = dir.path().join("shards.toml");
    std::fs::write(&map_file, &text).context("writing the shard map")?;

    let mut nodes = Vec::new();
    for (i, (port, shard)) in ports.iter().zip(map.shards()).enumerate() {
        let mut args: Vec<String> = [
            "--role",
            "all",
            "--nats-url",
            &nats.urls(),
            "--nats-stream",
            &shard.stream,
            "--nats-subject-prefix",
            &shard.subject_prefix,
            "--shard-map",
            &map_file.display().to_string(),
            "--shard",
            &shard.id,
        ]
        .map(String::from)
        .to_vec();
        args.extend(server_args.iter().cloned());
        let node = KeyplanProcess::start_on(binary, &format!("127.0.0.1:{port}"), &args)
            .await
            .with_context(|| format!("starting node {} of shard {}", i + 1, shard.id))?;
        nodes.push(node);
    }
    let mut channels = Vec::new();
    for node in &nodes {
        channels.push(connect(node.address()).await?);
    }
    let shard_index = |tenant: &str| crate::shards::shard_index(&map, tenant);

    // One account per client, client i's in tenant i mod TENANTS, onboarded on its shard.
    let mut workloads = Vec::new();
    let mut clients_per_shard = vec![0; setup.shards];
    for i in 0..clients {
        let tenant = format!("tenant-{:02}", i % TENANTS);
        let account = format!("shards-{i}");
        let shard = shard_index(&tenant);
        clients_per_shard[shard] += 1;
        CommandServiceClient::new(channels[shard].clone())
            .execute_batch(onboarding_in(&tenant, &account))
            .await
            .with_context(|| format!("onboarding {account} of {tenant}"))?;
        workloads.push((shard, AccountWorkload::in_tenant(&tenant, account)));
    }

    // A consumer of each shard's stream, from the position after its onboarding.
    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let clock = WallClock::now();
    let acked: Times = Arc::default();
    let received: Times = Arc::default();
    let stored_at: StoredTimes = Arc::default();
    let mut consumers = Vec::new();
    for (shard, channel) in map.shards().iter().zip(&channels) {
        let stream = shard_stream(&js, shard).await?;
        let start_at = head(channel).await? + 1;
        let filter = format!("{}.>", shard.subject_prefix);
        consumers.push(
            consume(
                &stream,
                &filter,
                start_at,
                received.clone(),
                stored_at.clone(),
            )
            .await?,
        );
    }

    let forwarded_clients = if setup.via_first_node {
        workloads.iter().filter(|(shard, _)| *shard != 0).count()
    } else {
        0
    };
    let load = workloads
        .into_iter()
        .map(|(shard, workload)| {
            let to = if setup.via_first_node { 0 } else { shard };
            (CommandServiceClient::new(channels[to].clone()), workload)
        })
        .collect();
    let keyplan_pids: Vec<Option<u32>> = nodes.iter().map(KeyplanProcess::pid).collect();
    let nats_pids = nats.pids();
    let before = cpu_now(&keyplan_pids, &nats_pids, ticks);
    let load_started = Instant::now();
    let (ack_hist, errors) = offer_load(load, rate, measured, &acked).await?;
    let wall = load_started.elapsed().as_secs_f64();
    let after = cpu_now(&keyplan_pids, &nats_pids, ticks);
    tokio::time::sleep(Duration::from_secs(2)).await; // let the last events arrive
    for consumer in consumers {
        consumer.abort();
    }

    let acked = lock(&acked).clone();
    let (js_hist, lost) = latency(&acked, &received)?;
    let (stored_hist, _) = split_at_store(clock, &acked, &stored_at, &received)?;
    for node in nodes {
        node.stop().await?;
    }
    Ok(ShardsResult {
        setup,
        rate_per_s: rate,
        clients,
        tenants: TENANTS,
        clients_per_shard,
        forwarded_clients,
        acknowledged: acked.len() as u64,
        achieved_per_s: acked.len() as f64 / measured.as_secs_f64(),
        errors,
        ack_ms: quantiles(&ack_hist),
        jetstream_ms: quantiles(&js_hist),
        jetstream_stored_ms: quantiles(&stored_hist),
        lost,
        cpu: CpuSeconds {
            keyplan: after
                .keyplan
                .iter()
                .zip(&before.keyplan)
                .map(|(a, b)| a - b)
                .collect(),
            nats: after.nats - before.nats,
            bench: after.bench - before.bench,
            wall,
        },
    })
}

/// The CPU seconds each process has used so far (0 for one that cannot be read).
pub(crate) fn cpu_now(keyplan: &[Option<u32>], nats: &[u32], ticks: f64) -> CpuSeconds {
    let of = |pid: &str| cpu_seconds(pid, ticks).unwrap_or(0.0);
    CpuSeconds {
        keyplan: keyplan
            .iter()
            .map(|pid| pid.map_or(0.0, |p| of(&p.to_string())))
            .collect(),
        nats: nats.iter().map(|p| of(&p.to_string())).sum(),
        bench: of("self"),
        wall: 0.0,
    }
}

/// `shard`'s JetStream stream, once its ingest node's relay has created it (at most 30 s).
pub(crate) async fn shard_stream(
    js: &async_nats::jetstream::Context,
    shard: &keyplan_cluster::Shard,
) -> Result<async_nats::jetstream::stream::Stream> {
    let started = Instant::now();
    loop {
        if let Ok(s) = js.get_stream(&shard.stream).await {
            return Ok(s);
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "shard {}'s stream {} did not appear",
                shard.id,
                shard.stream
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The index in `map`'s shards of the shard that owns `tenant`.
pub(crate) fn shard_index(map: &ShardMap, tenant: &str) -> usize {
    let owner = &map.owner(tenant).id;
    map.shards()
        .iter()
        .position(|s| &s.id == owner)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_parses_and_spreads_the_tenants_over_every_shard() -> Result<()> {
        let map = ShardMap::parse(&map_text(&[5001, 5002, 5003, 5004], &[]))?;
        assert_eq!(map.shards().len(), 4);
        assert_eq!(map.shards()[3].stream, "KEYPLAN_S4");
        assert_eq!(map.shards()[3].subject_prefix, "keyplan-s4");
        let mut per_shard = std::collections::BTreeMap::<&str, usize>::new();
        for t in 0..TENANTS {
            *per_shard
                .entry(map.owner(&format!("tenant-{t:02}")).id.as_str())
                .or_default() += 1;
        }
        assert_eq!(per_shard.len(), 4, "{per_shard:?}");
        Ok(())
    }

    #[test]
    fn cpu_time_of_this_process_reads() {
        assert!(cpu_seconds("self", clock_ticks()).is_some());
    }
}
