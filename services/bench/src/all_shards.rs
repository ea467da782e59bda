//! Part of scenario `shards`: what a projections replica that follows every shard costs,
//! against replicas that each follow one shard, in the same run.
//!
//! Two shards, each one `--role ingest` node with its own log and its own JetStream stream on
//! one private nats-server, and the shards scenario's offered load (single-event appends over
//! [`TENANTS`] tenants, each client sending to its tenant's ingest node). The read models are
//! on projections replicas, in one of two ways:
//! - two replicas, each started with `--shard s<i>` and its shard's stream (the baseline);
//! - one replica started with `--shard all`, following both streams (one read-model set per
//!   shard in one process).
//!
//! Fan-out is measured to the point where an event is readable on the replica that serves its
//! tenant: each account is watched there (`WatchTimeline`), and an entry arrives once the
//! replica's timeline has applied the event, when every read of the replica sees it. Latency
//! is that arrival minus the client's acknowledgement (0 when it came first), as in the fan-out
//! scenario's gRPC Watch; a consumer of each shard's stream in this process gives the
//! JetStream part, as in the shards rows. After the load the bench waits until every
//! acknowledged event is readable (or a limit passes): `not readable` counts those that never
//! were. The replicas' CPU time is read from the load's start until then, so a replica that
//! fell behind is charged for catching up. Then a fresh replica of the same kind (`--shard s1`
//! for the baseline, `--shard all` for the other) is started on an empty data directory and
//! timed until its projections reach the heads of the shards it follows: its bootstrap from
//! position 1 (a few times, one after the other).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use keyplan_cluster::ShardMap;
use keyplan_proto::pb;
use keyplan_proto::pb::command_service_client::CommandServiceClient;
use keyplan_proto::pb::operations_service_client::OperationsServiceClient;
use keyplan_proto::pb::timeline_service_client::TimelineServiceClient;
use serde::Serialize;

use crate::fanout::{
    clients_for, consume, latency, lock, offer_load, quantiles, StoredTimes, Times,
};
use crate::measure::{clock_ticks, cpu_seconds, status_mib};
use crate::nats::{free_port, NatsProcess};
use crate::server::{connect, head, Channel, KeyplanProcess};
use crate::shards::{cpu_now, map_text, TENANTS};
use crate::workload::{onboarding_in, AccountWorkload};

/// Shards of every row.
const SHARDS: usize = 2;

/// How long the replicas may take to reach a position: the onboarding before the load, every
/// acknowledged event after it, the shards' heads in a bootstrap.
const FOLLOW_LIMIT: Duration = Duration::from_secs(120);

/// Fresh replicas bootstrapped one after the other after the load (the median is reported:
/// these bootstraps are short, and one can be slowed by the machine's other work).
const BOOTSTRAPS: usize = 3;

/// How often the bench looks whether the replicas got there.
const POLL: Duration = Duration::from_millis(10);

/// Who follows the two shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Followers {
    /// Two replicas, each following one shard (`--shard s1`, `--shard s2`): the baseline.
    OnePerShard,
    /// One replica following both (`--shard all`).
    OneForAll,
}

impl Followers {
    /// The rows of one rate, the baseline first.
    pub const ROWS: [Followers; 2] = [Followers::OnePerShard, Followers::OneForAll];

    /// E.g. `1 replica, --shard all`.
    pub fn label(self) -> &'static str {
        match self {
            Followers::OnePerShard => "2 replicas, one shard each",
            Followers::OneForAll => "1 replica, --shard all",
        }
    }

    /// The `--shard` of each replica.
    fn replicas(self) -> &'static [&'static str] {
        match self {
            Followers::OnePerShard => &["s1", "s2"],
            Followers::OneForAll => &["all"],
        }
    }

    /// Which replica (index in [`Self::replicas`]) serves shard `shard` (index in the map).
    fn serving(self, shard: usize) -> usize {
        match self {
            Followers::OnePerShard => shard,
            Followers::OneForAll => 0,
        }
    }

    /// The `--shard` of the fresh replica whose bootstrap is timed after the load.
    fn bootstrapped(self) -> &'static str {
        match self {
            Followers::OnePerShard => "s1",
            Followers::OneForAll => "all",
        }
    }
}

/// CPU seconds used, by process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FollowCpu {
    /// During the load: each ingest node, in shard order.
    pub ingest: Vec<f64>,
    /// During the load: each replica.
    pub replicas: Vec<f64>,
    /// During the load: the nats-server.
    pub nats: f64,
    /// During the load: this process (clients, watchers, JetStream consumers).
    pub bench: f64,
    /// Wall-clock seconds the load lasted.
    pub wall: f64,
    /// Each replica, from the load's start until every acknowledged event was readable.
    pub replicas_until_readable: Vec<f64>,
}

/// A fresh replica started after the load on an empty data directory.
#[derive(Debug, Clone, Serialize)]
pub struct Bootstrap {
    /// Its `--shard`.
    pub shard: String,
    /// Events it applied: the heads of the shards it follows, summed.
    pub events: u64,
    /// From its launch until it served (read models opened, listening), seconds.
    pub ready_s: f64,
    /// From its launch until every projection of every shard it follows was at that shard's
    /// head, seconds.
    pub head_s: f64,
    /// CPU seconds it used by then (all of its life).
    pub cpu_s: f64,
    /// Its peak resident memory by then (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
}

/// One row.
#[derive(Debug, Clone, Serialize)]
pub struct FollowResult {
    /// Who followed the shards.
    pub followers: Followers,
    /// Offered appends (events) per second.
    pub rate_per_s: u32,
    /// Appending clients (one account each).
    pub clients: usize,
    /// Tenants the clients' accounts belong to.
    pub tenants: usize,
    /// Clients whose tenant is on each shard.
    pub clients_per_shard: Vec<usize>,
    /// Events acknowledged.
    pub acknowledged: u64,
    /// Achieved append rate.
    pub achieved_per_s: f64,
    /// Failed appends (none are expected).
    pub errors: u64,
    /// Append acknowledgement latency, milliseconds: p50, p99, p999, max.
    pub ack_ms: [f64; 4],
    /// Ack → received by this process's consumer of the shard's stream, ms: p50, p99, p999,
    /// max.
    pub jetstream_ms: [f64; 4],
    /// Acknowledged events that consumer never received.
    pub lost: u64,
    /// Ack → readable on the replica serving the tenant (its `WatchTimeline`), ms: p50, p99,
    /// p999, max.
    pub readable_ms: [f64; 4],
    /// Acknowledged events that never became readable on the replicas.
    pub not_readable: u64,
    /// From the load's end until the last acknowledged event was readable, ms (0 when every
    /// one was readable by the end of the load).
    pub readable_after_load_ms: f64,
    /// Where the CPU went.
    pub cpu: FollowCpu,
    /// Each replica's resident memory once every event was readable, MiB.
    pub replica_rss_mib: Vec<f64>,
    /// Each replica's peak resident memory by then (`VmHWM`), MiB.
    pub replica_peak_rss_mib: Vec<f64>,
    /// The bootstraps of fresh replicas of this row's kind, one after the other.
    pub bootstraps: Vec<Bootstrap>,
}

impl FollowResult {
    /// The replicas' CPU milliseconds per acknowledged event, until every one was readable.
    pub fn replica_cpu_ms_per_event(&self) -> Option<f64> {
        let cpu: f64 = self.cpu.replicas_until_readable.iter().sum();
        (self.acknowledged > 0).then(|| cpu * 1000.0 / self.acknowledged as f64)
    }

    /// The bootstrap of median time.
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        let mut sorted: Vec<&Bootstrap> = self.bootstraps.iter().collect();
        sorted.sort_by(|a, b| a.head_s.total_cmp(&b.head_s));
        sorted.get(sorted.len() / 2).copied()
    }

    /// Events per second of the median bootstrap.
    pub fn bootstrap_per_s(&self) -> Option<f64> {
        let b = self.bootstrap()?;
        (b.head_s > 0.0).then(|| b.events as f64 / b.head_s)
    }
}

/// Runs both rows at each rate (rate by rate, the baseline first), each on a fresh
/// nats-server and fresh nodes.
pub async fn run(
    binary: &std::path::Path,
    rates: &[u32],
    measured: Duration,
    server_args: &[String],
) -> Result<Vec<FollowResult>> {
    let mut out = Vec::new();
    for &rate in rates {
        for followers in Followers::ROWS {
            eprintln!(
                "shards: 2 ingest nodes, {} at {rate}/s...",
                followers.label()
            );
            out.push(
                run_row(binary, rate, followers, measured, server_args)
                    .await
                    .with_context(|| {
                        format!("replicas of 2 shards at {rate}/s, {}", followers.label())
                    })?,
            );
        }
    }
    Ok(out)
}

/// The `keyplan serve` arguments of a node of `shard` (`--shard`): an ingest node, or a
/// projections replica. A node of one shard gets its stream and subject prefix; a replica of
/// several reads them from the map.
fn node_args(
    nats: &NatsProcess,
    map: &ShardMap,
    map_file: &std::path::Path,
    shard: &str,
    replica: bool,
    server_args: &[String],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--role",
        if replica { "projections" } else { "ingest" },
        "--nats-url",
        &nats.urls(),
        "--shard-map",
        &map_file.display().to_string(),
        "--shard",
        shard,
    ]
    .map(String::from)
    .to_vec();
    if let Some(s) = map.shard(shard) {
        args.extend(
            [
                "--nats-stream",
                &s.stream,
                "--nats-subject-prefix",
                &s.subject_prefix,
            ]
            .map(String::from),
        );
    }
    args.extend(server_args.iter().cloned());
    args
}

async fn run_row(
    binary: &std::path::Path,
    rate: u32,
    followers: Followers,
    measured: Duration,
    server_args: &[String],
) -> Result<FollowResult> {
    let ticks = clock_ticks();
    let clients = clients_for(rate).max(TENANTS);
    let nats = NatsProcess::start().await?;
    let dir = tempfile::Builder::new()
        .prefix("keyplan-bench-replicas-")
        .tempdir()
        .context("creating a directory for the shard map")?;
    let ingest_ports: Vec<u16> = (0..SHARDS).map(|_| free_port()).collect::<Result<_>>()?;
    let replica_ports: Vec<u16> = followers
        .replicas()
        .iter()
        .map(|_| free_port())
        .collect::<Result<_>>()?;
    let bootstrap_port = free_port()?;
    // Each shard lists the replicas that follow it, the one bootstrapped after the load too.
    let listed: Vec<Vec<u16>> = (0..SHARDS)
        .map(|shard| {
            let mut ports = vec![replica_ports[followers.serving(shard)]];
            if shard == 0 || followers == Followers::OneForAll {
                ports.push(bootstrap_port);
            }
            ports
        })
        .collect();
    let text = map_text(&ingest_ports, &listed);
    let map = ShardMap::parse(&text)?;
    let map_file = dir.path().join("shards.toml");
    std::fs::write(&map_file, &text).context("writing the shard map")?;

    let mut ingest = Vec::new();
    for (port, shard) in ingest_ports.iter().zip(map.shards()) {
        let args = node_args(&nats, &map, &map_file, &shard.id, false, server_args);
        ingest.push(
            KeyplanProcess::start_on(binary, &format!("127.0.0.1:{port}"), &args)
                .await
                .with_context(|| format!("starting shard {}'s ingest node", shard.id))?,
        );
    }
    let mut ingest_channels = Vec::new();
    for node in &ingest {
        ingest_channels.push(connect(node.address()).await?);
    }
    // A replica reads its shards' streams, which the ingest nodes' relays create.
    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let mut streams = Vec::new();
    for shard in map.shards() {
        streams.push(crate::shards::shard_stream(&js, shard).await?);
    }
    let mut replicas = Vec::new();
    for (port, shard) in replica_ports.iter().zip(followers.replicas()) {
        let args = node_args(&nats, &map, &map_file, shard, true, server_args);
        replicas.push(
            KeyplanProcess::start_on(binary, &format!("127.0.0.1:{port}"), &args)
                .await
                .with_context(|| format!("starting the replica of --shard {shard}"))?,
        );
    }
    let mut replica_channels = Vec::new();
    for node in &replicas {
        replica_channels.push(connect(node.address()).await?);
    }

    // One account per client, client i's in tenant i mod TENANTS, onboarded on its shard.
    let shard_index = |tenant: &str| crate::shards::shard_index(&map, tenant);
    let mut accounts = Vec::new();
    let mut clients_per_shard = vec![0; SHARDS];
    for i in 0..clients {
        let tenant = format!("tenant-{:02}", i % TENANTS);
        let account = format!("replicas-{i}");
        let shard = shard_index(&tenant);
        clients_per_shard[shard] += 1;
        CommandServiceClient::new(ingest_channels[shard].clone())
            .execute_batch(onboarding_in(&tenant, &account))
            .await
            .with_context(|| format!("onboarding {account} of {tenant}"))?;
        accounts.push((shard, tenant, account));
    }
    let mut heads = Vec::new();
    for (shard, channel) in map.shards().iter().zip(&ingest_channels) {
        heads.push((shard.id.clone(), head(channel).await?));
    }
    for (r, channel) in replica_channels.iter().enumerate() {
        let followed: Vec<(String, u64)> = (0..SHARDS)
            .filter(|s| followers.serving(*s) == r)
            .map(|s| heads[s].clone())
            .collect();
        wait_followed(channel, &followed, Instant::now())
            .await
            .context("waiting for the replicas to apply the onboarding")?;
    }

    // The JetStream consumers, and a watcher of each account on the replica serving it (one
    // connection per shard, so that no connection holds more streams than a node allows).
    let acked: Times = Arc::default();
    let received: Times = Arc::default();
    let stored_at: StoredTimes = Arc::default();
    let readable: Times = Arc::default();
    let mut tasks = Vec::new();
    for ((shard, stream), (_, head)) in map.shards().iter().zip(&streams).zip(&heads) {
        let filter = format!("{}.>", shard.subject_prefix);
        tasks.push(
            consume(
                stream,
                &filter,
                head + 1,
                received.clone(),
                stored_at.clone(),
            )
            .await?,
        );
    }
    let mut watch_channels = Vec::new();
    for shard in 0..SHARDS {
        watch_channels.push(connect(replicas[followers.serving(shard)].address()).await?);
    }
    for (shard, tenant, account) in &accounts {
        let head = heads[*shard].1;
        let mut entries = TimelineServiceClient::new(watch_channels[*shard].clone())
            .watch_timeline(pb::WatchTimelineRequest {
                tenant: tenant.clone(),
                account_id: account.clone(),
                from_position: head + 1,
                min_position: head,
            })
            .await
            .with_context(|| format!("watching {account} of {tenant}"))?
            .into_inner();
        let readable = readable.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(entry)) = entries.next().await {
                let now = Instant::now();
                lock(&readable).insert(entry.event_id, now);
            }
        }));
    }

    let load = accounts
        .into_iter()
        .map(|(shard, tenant, account)| {
            (
                CommandServiceClient::new(ingest_channels[shard].clone()),
                AccountWorkload::in_tenant(&tenant, account),
            )
        })
        .collect();
    let mut pids: Vec<Option<u32>> = ingest.iter().map(KeyplanProcess::pid).collect();
    pids.extend(replicas.iter().map(KeyplanProcess::pid));
    let nats_pids = nats.pids();
    let before = cpu_now(&pids, &nats_pids, ticks);
    let load_started = Instant::now();
    let (ack_hist, errors) = offer_load(load, rate, measured, &acked).await?;
    let load_ended = Instant::now();
    let after = cpu_now(&pids, &nats_pids, ticks);

    // Until every acknowledged event is readable on the replicas and was consumed.
    let expected = lock(&acked).len();
    let waited = Instant::now();
    while (lock(&readable).len() < expected || lock(&received).len() < expected)
        && waited.elapsed() < FOLLOW_LIMIT
    {
        tokio::time::sleep(POLL).await;
    }
    let drained = cpu_now(&pids, &nats_pids, ticks);
    let replica_pids: Vec<u32> = replicas.iter().filter_map(KeyplanProcess::pid).collect();
    let replica_rss_mib = replica_pids
        .iter()
        .map(|p| status_mib(*p, "VmRSS"))
        .collect();
    let replica_peak_rss_mib = replica_pids
        .iter()
        .map(|p| status_mib(*p, "VmHWM"))
        .collect();
    for task in tasks {
        task.abort();
    }

    let acked = lock(&acked).clone();
    let (js_hist, lost) = latency(&acked, &received)?;
    let (readable_hist, not_readable) = latency(&acked, &readable)?;
    let readable_after_load_ms = last_after(&acked, &readable, load_ended);
    let spent = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a - b).collect::<Vec<_>>();
    let cpu = FollowCpu {
        ingest: spent(&after.keyplan[..SHARDS], &before.keyplan[..SHARDS]),
        replicas: spent(&after.keyplan[SHARDS..], &before.keyplan[SHARDS..]),
        nats: after.nats - before.nats,
        bench: after.bench - before.bench,
        wall: load_ended.duration_since(load_started).as_secs_f64(),
        replicas_until_readable: spent(&drained.keyplan[SHARDS..], &before.keyplan[SHARDS..]),
    };

    // A fresh replica of this row's kind, from position 1, to the heads now.
    let mut heads = Vec::new();
    for (shard, channel) in map.shards().iter().zip(&ingest_channels) {
        heads.push((shard.id.clone(), head(channel).await?));
    }
    let shard = followers.bootstrapped();
    let followed: Vec<(String, u64)> = map
        .select(shard)?
        .iter()
        .filter_map(|s| heads.iter().find(|(id, _)| id == &s.id).cloned())
        .collect();
    let args = node_args(&nats, &map, &map_file, shard, true, server_args);
    let mut bootstraps = Vec::new();
    for _ in 0..BOOTSTRAPS {
        let launched = Instant::now();
        let fresh = KeyplanProcess::start_on(binary, &format!("127.0.0.1:{bootstrap_port}"), &args)
            .await
            .with_context(|| format!("starting a fresh replica of --shard {shard}"))?;
        let ready_s = launched.elapsed().as_secs_f64();
        let head_s = wait_followed(&connect(fresh.address()).await?, &followed, launched)
            .await
            .with_context(|| format!("bootstrapping a replica of --shard {shard}"))?
            .as_secs_f64();
        let fresh_pid = fresh.pid().context("the fresh replica's pid")?;
        bootstraps.push(Bootstrap {
            shard: shard.to_owned(),
            events: followed.iter().map(|(_, head)| head).sum(),
            ready_s,
            head_s,
            cpu_s: cpu_seconds(&fresh_pid.to_string(), ticks).unwrap_or(0.0),
            peak_rss_mib: status_mib(fresh_pid, "VmHWM"),
        });
        fresh.stop().await?;
    }

    for node in replicas.into_iter().chain(ingest) {
        node.stop().await?;
    }
    Ok(FollowResult {
        followers,
        rate_per_s: rate,
        clients,
        tenants: TENANTS,
        clients_per_shard,
        acknowledged: acked.len() as u64,
        achieved_per_s: acked.len() as f64 / measured.as_secs_f64(),
        errors,
        ack_ms: quantiles(&ack_hist),
        jetstream_ms: quantiles(&js_hist),
        lost,
        readable_ms: quantiles(&readable_hist),
        not_readable,
        readable_after_load_ms,
        cpu,
        replica_rss_mib,
        replica_peak_rss_mib,
        bootstraps,
    })
}

/// Waits until the replica behind `channel` has every projection of each `(shard, head)` at
/// that head or beyond; returns the time since `since`.
async fn wait_followed(
    channel: &Channel,
    heads: &[(String, u64)],
    since: Instant,
) -> Result<Duration> {
    let mut ops = OperationsServiceClient::new(channel.clone());
    let started = Instant::now();
    loop {
        let status = ops.get_status(pb::GetStatusRequest {}).await?.into_inner();
        if let Some(stopped) = status.projections.iter().find(|p| p.state == "stopped") {
            bail!(
                "projection {} of shard {} stopped: {}",
                stopped.name,
                stopped.shard,
                stopped.stopped_reason
            );
        }
        let reached = heads.iter().all(|(shard, head)| {
            let of_shard: Vec<u64> = status
                .projections
                .iter()
                .filter(|p| &p.shard == shard)
                .map(|p| p.position)
                .collect();
            !of_shard.is_empty() && of_shard.iter().all(|p| p >= head)
        });
        if reached {
            return Ok(since.elapsed());
        }
        if started.elapsed() > FOLLOW_LIMIT {
            let at: Vec<String> = status
                .projections
                .iter()
                .map(|p| format!("{}@{}={}", p.name, p.shard, p.position))
                .collect();
            bail!(
                "the replica did not reach {heads:?} within {FOLLOW_LIMIT:?}: {}",
                at.join(", ")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How long after `end` the last acknowledged event was received, ms (0 if none was after).
fn last_after(acked: &HashMap<String, Instant>, received: &Times, end: Instant) -> f64 {
    let received = lock(received);
    acked
        .keys()
        .filter_map(|id| received.get(id))
        .map(|at| at.saturating_duration_since(end).as_secs_f64() * 1000.0)
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_of_both_shards_is_listed_under_each() -> Result<()> {
        let text = map_text(&[5001, 5002], &[vec![5003, 5004], vec![5003, 5004]]);
        let map = ShardMap::parse(&text)?;
        for shard in map.shards() {
            assert_eq!(
                shard.replicas,
                ["http://127.0.0.1:5003", "http://127.0.0.1:5004"]
            );
        }
        assert_eq!(map.select("all")?.len(), SHARDS);
        Ok(())
    }

    #[test]
    fn each_shard_has_one_serving_replica() {
        for followers in Followers::ROWS {
            for shard in 0..SHARDS {
                assert!(followers.serving(shard) < followers.replicas().len());
            }
        }
    }
}
