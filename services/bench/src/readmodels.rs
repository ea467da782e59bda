//! Scenarios `rebuild`, `queries` and `footprint`, on one loaded node:
//! - load N events (realistic: many accounts, each with a KAM, a stakeholder and an
//!   engagement rule, then interactions in batches) and wait for the read models;
//! - **footprint**: RSS of the node, bytes on disk (log vs read models) against the postcard
//!   payload of the same events, cold start to serving;
//! - **queries**: timeline page, compliance as-of, activity counts and `GetAccount` under a background
//!   append load; latency measured by the client over loopback and, from each response's
//!   `server-timing: app;dur=<ms>` header (written by the server's timing layer), on the
//!   server side: request in → response produced, without the network, HTTP/2 framing and
//!   the client's own scheduling;
//! - **rebuild**: every read model rebuilt online from the local log, then a fresh projections
//!   node catching up from JetStream; events per second;
//! - **replica bootstrap**: that projections node stopped, its data directory copied, a tail
//!   of events written, and a new projections node started on the copy until it is at the new
//!   head (deploy/README.md, "Adding a projections node from a copy"), against the replay
//!   from position 1 above.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use hdrhistogram::Histogram;
use keyplan_proto::pb;
use keyplan_proto::pb::command_service_client::CommandServiceClient;
use keyplan_proto::pb::operations_service_client::OperationsServiceClient;
use keyplan_testkit::files::copy_dir;
use serde::Serialize;
use tempfile::TempDir;

use crate::nats::NatsProcess;
use crate::server::{connect, KeyplanProcess};
use crate::workload::{onboarding, rule, AccountWorkload, FIRST_INTERACTION_UNIX, TENANT};

/// Accounts the events are spread over.
pub(crate) const ACCOUNTS: usize = 1000;
/// The one account with a long history (`--long-account`), queried apart from the others.
const LONG_ACCOUNT: &str = "acct-long";
/// Events of an account's onboarding and rule, before its interactions.
const SETUP_EVENTS: u64 = 4;
/// Loading clients.
const LOADERS: usize = 32;
/// Interactions per loading request.
pub(crate) const LOAD_BATCH: usize = 64;

/// Everything measured on the loaded node.
#[derive(Debug, Clone, Serialize)]
pub struct ReadModelResults {
    /// Events in the log.
    pub events: u64,
    /// Loading throughput (events/s) with 32 clients × 64 events per request.
    pub load_events_per_s: f64,
    /// Resident memory of the node after loading and projecting, MiB.
    pub rss_mib: f64,
    /// Resident memory after a restart, 3 s after its read models serve (before any query), MiB.
    pub rss_after_restart_mib: f64,
    /// Resident memory after the online rebuild of every read model, MiB.
    pub rss_after_rebuild_mib: f64,
    /// Bytes of the event store on disk.
    pub log_bytes: u64,
    /// Bytes of the read models on disk.
    pub read_model_bytes: u64,
    /// Postcard payload bytes of the same events (what the domain codec writes).
    pub payload_bytes: u64,
    /// log_bytes / payload_bytes.
    pub log_to_payload: f64,
    /// Restart (SIGTERM, start) to listening, seconds: from then on the node appends and
    /// serves its log.
    pub cold_start_s: f64,
    /// Restart to the read models serving too, seconds (they load after the node listens).
    pub read_models_ready_s: f64,
    /// Queries measured (of each kind).
    pub queries: usize,
    /// Timeline page of 50 (the newest page, and a page ending at a random point of the
    /// account's history, in turn), client side, ms: p50, p99.
    pub timeline_ms: [f64; 2],
    /// Compliance of one account (as known now, and as happened by a random point of its
    /// history, in turn), client side, ms: p50, p99.
    pub compliance_ms: [f64; 2],
    /// Activity counts (one account, a year by month and channel), client side, ms: p50, p99.
    pub activity_ms: [f64; 2],
    /// Timeline page, server side (`server-timing`), ms: p50, p99; `null` if the server sent
    /// no timings.
    pub timeline_server_ms: Option<[f64; 2]>,
    /// Compliance as-of, server side, ms: p50, p99.
    pub compliance_server_ms: Option<[f64; 2]>,
    /// Activity counts, server side, ms: p50, p99.
    pub activity_server_ms: Option<[f64; 2]>,
    /// Interactions on the one long account (0: none).
    pub long_account_interactions: u64,
    /// Timeline pages of the long account (the newest page, and a page ending at a random
    /// point of its history, in turn), client side, ms: p50, p99.
    pub long_timeline_ms: [f64; 2],
    /// The same, server side, ms: p50, p99.
    pub long_timeline_server_ms: Option<[f64; 2]>,
    /// Compliance of the long account (as known now, and as happened by a random point of its
    /// history, in turn), client side, ms: p50, p99.
    pub long_compliance_ms: [f64; 2],
    /// The same, server side, ms: p50, p99.
    pub long_compliance_server_ms: Option<[f64; 2]>,
    /// `GetAccount` (its 100 newest interactions) on the all-in-one node, which answers from
    /// its repository (the account's stream folded with every interaction's facts), client
    /// side, ms: p50, p99.
    pub account_ms: [f64; 2],
    /// The same, server side, ms: p50, p99.
    pub account_server_ms: Option<[f64; 2]>,
    /// `GetAccount` on the projections node once it caught up, which answers from its
    /// account-state read model (no background appends), client side, ms: p50, p99.
    pub account_projection_ms: [f64; 2],
    /// The same, server side, ms: p50, p99.
    pub account_projection_server_ms: Option<[f64; 2]>,
    /// Responses without a readable `server-timing` header (0 with a current server).
    pub server_timing_missing: u64,
    /// Background appends per second during the queries.
    pub background_events_per_s: f64,
    /// Online rebuild of every read model from the local log: seconds, events/s per model.
    pub rebuild_local_s: f64,
    /// Events per second each read model rebuilt at (they rebuild side by side).
    pub rebuild_local_events_per_s: f64,
    /// A fresh projections node catching up from JetStream: seconds, events/s.
    pub rebuild_jetstream_s: f64,
    /// Events per second of the JetStream catch-up.
    pub rebuild_jetstream_events_per_s: f64,
    /// Replica bootstrap from a copy: bytes of the caught-up projections node's data
    /// directory, copied once that node had stopped.
    pub bootstrap_copy_bytes: u64,
    /// Seconds the copy took (a file-by-file copy on the same disk).
    pub bootstrap_copy_s: f64,
    /// Events written after the copy: the tail the node on the copy reads from JetStream.
    pub bootstrap_tail_events: u64,
    /// Seconds from starting a projections node on the copy to every projection at the new
    /// head (the start, reopening the copied read models, and the tail).
    pub bootstrap_start_to_head_s: f64,
    /// The replay from position 1 (`rebuild_jetstream_s`) over the bootstrap from a copy
    /// (`bootstrap_copy_s + bootstrap_start_to_head_s`).
    pub bootstrap_replay_vs_copy: f64,
    /// Replica bootstrap from a snapshot the running replica served (`keyplan projections
    /// seed`, taken at the same head as the copy): seconds the seed took.
    pub bootstrap_seed_s: f64,
    /// Seconds from starting a projections node on the seeded directory to every projection
    /// at the new head (the same tail as the copy's).
    pub bootstrap_seed_start_to_head_s: f64,
    /// The replay from position 1 over the bootstrap from a served snapshot.
    pub bootstrap_replay_vs_seed: f64,
}

/// `GetAccount` of `account` with its default 100 newest interactions.
fn get_account(account: String) -> pb::GetAccountRequest {
    pb::GetAccountRequest {
        tenant: TENANT.into(),
        account_id: account,
        max_interactions: 0,
        min_position: 0,
    }
}

/// The newest timeline page of 50 of `account`, or, with `until`, the page of 50 ending there.
fn timeline_page(account: &str, until: Option<prost_types::Timestamp>) -> pb::ListTimelineRequest {
    pb::ListTimelineRequest {
        tenant: TENANT.into(),
        account_id: account.into(),
        scope: None,
        event_types: vec![],
        occurred_from: None,
        occurred_to: until,
        actor: String::new(),
        order: pb::TimelineOrder::NewestFirst as i32,
        page_size: 50,
        page_token: String::new(),
        min_position: 0,
    }
}

/// `account`'s compliance as known now (everything recorded), or, with `at`, as happened by
/// then: the two questions a KAM and an auditor ask.
fn compliance_as_of(
    account: &str,
    at: Option<prost_types::Timestamp>,
) -> pb::GetAccountComplianceRequest {
    let axis = if at.is_some() {
        pb::ComplianceAxis::AsHappenedBy
    } else {
        pb::ComplianceAxis::AsKnownAt
    };
    pb::GetAccountComplianceRequest {
        tenant: TENANT.into(),
        account_id: account.into(),
        as_of: at,
        axis: axis as i32,
        min_position: 0,
        explain: false,
    }
}

fn quantiles(h: &Histogram<u64>) -> [f64; 2] {
    [
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
    ]
}

/// The header the server's timing layer writes on every response.
const SERVER_TIMING: &str = "server-timing";

/// The `dur` (milliseconds) of metric `app` in a `Server-Timing` header value such as
/// `app;dur=0.123` (W3C syntax: comma-separated metrics, `;`-separated parameters; other
/// metrics and parameters are ignored). `None` if absent or not a finite, non-negative number.
fn parse_server_timing(value: &str) -> Option<f64> {
    value
        .split(',')
        .find_map(|metric| {
            let mut parts = metric.split(';').map(str::trim);
            if parts.next()? != "app" {
                return None;
            }
            parts.find_map(|parameter| {
                let (name, value) = parameter.split_once('=')?;
                if !name.trim().eq_ignore_ascii_case("dur") {
                    return None;
                }
                value.trim().trim_matches('"').parse::<f64>().ok()
            })
        })
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
}

/// Client- and server-side latencies of one kind of query.
struct QueryTimes {
    client: Histogram<u64>,
    server: Histogram<u64>,
}

impl QueryTimes {
    fn new() -> Result<Self> {
        // Bounded, not auto-resizing: `saturating_record` never resizes, so an auto-resizing
        // histogram clamped every latency to its initial range (about 2 ms).
        let histogram = || Histogram::new_with_bounds(1, crate::measure::MAX_LATENCY_MICROS, 3);
        Ok(Self {
            client: histogram()?,
            server: histogram()?,
        })
    }

    /// Records one answered query: the client-side time since `sent`, and the server-side
    /// time from the response's `server-timing` header. Returns false if the header was
    /// missing or unreadable.
    fn record<T>(&mut self, sent: Instant, response: &tonic::Response<T>) -> bool {
        self.client
            .saturating_record(sent.elapsed().as_micros().max(1) as u64);
        let server_ms = response
            .metadata()
            .get(SERVER_TIMING)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_server_timing);
        match server_ms {
            Some(ms) => {
                self.server
                    .saturating_record(((ms * 1000.0).round() as u64).max(1));
                true
            }
            None => false,
        }
    }

    fn client_ms(&self) -> [f64; 2] {
        quantiles(&self.client)
    }

    fn server_ms(&self) -> Option<[f64; 2]> {
        (!self.server.is_empty()).then(|| quantiles(&self.server))
    }
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Writes about `events` more interactions (new ids, spread over the loaded accounts) and
/// returns the head after them.
async fn write_tail(channel: &crate::server::Channel, events: u64) -> Result<u64> {
    let mut commands = CommandServiceClient::new(channel.clone());
    let mut workloads: Vec<AccountWorkload> = (0..ACCOUNTS)
        .map(|i| AccountWorkload::with_id_prefix(account_id(i), "tail"))
        .collect();
    let mut left = events;
    let mut next = 0;
    while left > 0 {
        let count = left.min(LOAD_BATCH as u64);
        commands
            .execute_batch(workloads[next % ACCOUNTS].batch(count as usize))
            .await
            .context("writing the tail")?;
        left -= count;
        next += 1;
    }
    crate::server::head(channel).await
}

/// What starting a replica from a copy measured (see [`bootstrap_from_copy`]).
struct Bootstrap {
    copy_bytes: u64,
    copy: Duration,
    tail_events: u64,
    start_to_head: Duration,
    /// The head after the tail.
    head: u64,
}

/// Seeds a new node's directory from the running replica at `address` (`keyplan projections
/// seed`, the binary's own command); returns the directory and how long it took.
async fn seed_from_running(binary: &Path, address: &str) -> Result<(TempDir, Duration)> {
    let dir = KeyplanProcess::new_dir()?;
    let started = Instant::now();
    let out = tokio::process::Command::new(binary)
        .args(["projections", "seed", "--server", address, "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .await
        .context("running keyplan projections seed")?;
    if !out.status.success() {
        bail!(
            "keyplan projections seed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((dir, started.elapsed()))
}

/// Starts a projections node over `dir` (`args`) and times it until every projection is at
/// `head`.
async fn start_to_head(
    binary: &Path,
    dir: TempDir,
    args: &[String],
    head: u64,
    limit: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let node = KeyplanProcess::start_in(binary, dir, "127.0.0.1:0", args).await?;
    let mut ops = OperationsServiceClient::new(connect(node.address()).await?);
    wait_projections(&mut ops, head, limit).await?;
    let took = started.elapsed();
    node.stop().await?;
    Ok(took)
}

/// Stops the caught-up projections node `replica`, copies its data directory, writes
/// `tail_events` more events through the node with the log (`channel`), then starts a
/// projections node on the copy (`args`: the same NATS settings) and times it until every
/// projection is at the new head.
async fn bootstrap_from_copy(
    binary: &Path,
    args: &[String],
    mut replica: KeyplanProcess,
    channel: &crate::server::Channel,
    tail_events: u64,
    limit: Duration,
) -> Result<Bootstrap> {
    replica.stop_keeping_data().await?;
    let dir = KeyplanProcess::new_dir()?;
    let started = Instant::now();
    let copy_bytes = copy_dir(&replica.data_dir(), &dir.path().join("data"))
        .context("copying the stopped replica's data directory")?;
    let copy = started.elapsed();
    drop(replica);
    let head = write_tail(channel, tail_events).await?;
    let start_to_head = start_to_head(binary, dir, args, head, limit).await?;
    Ok(Bootstrap {
        copy_bytes,
        copy,
        tail_events,
        start_to_head,
        head,
    })
}

fn rss_mib(pid: u32) -> f64 {
    crate::measure::status_mib(pid, "VmRSS")
}

/// The id of the benchmark's `i`th account.
pub(crate) fn account_id(i: usize) -> String {
    format!("acct-{i:04}")
}

/// How long the projections may take to reach the head after loading `events` events: 600 s,
/// or a second per 5,000 events for more (a 10M-event load left them behind by longer than
/// 600 s).
fn wait_limit(events: u64) -> Duration {
    Duration::from_secs((events / 5_000).max(600))
}

/// Positions of the node's projections, once all have reached `head`.
async fn wait_projections(
    ops: &mut OperationsServiceClient<crate::server::Channel>,
    head: u64,
    limit: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let status = ops.get_status(pb::GetStatusRequest {}).await?.into_inner();
        if !status.projections.is_empty() && status.projections.iter().all(|p| p.position >= head) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            bail!(
                "projections did not reach {head} within {limit:?}: {:?}",
                status.projections
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Loads about `events` events, `long_account` of them interactions on [`LONG_ACCOUNT`];
/// returns (head, elapsed).
async fn load(
    channel: &crate::server::Channel,
    events: u64,
    long_account: u64,
) -> Result<(u64, Duration)> {
    let mut commands = CommandServiceClient::new(channel.clone());
    let long = (long_account > 0).then_some(LONG_ACCOUNT.to_owned());
    for account in (0..ACCOUNTS).map(account_id).chain(long.clone()) {
        commands
            .execute_batch(onboarding(&account))
            .await
            .context("onboarding")?;
        commands
            .execute(rule(&account))
            .await
            .context("setting the engagement rule")?;
    }
    let long_events = if long_account > 0 {
        SETUP_EVENTS + long_account
    } else {
        0
    };
    let per_loader = events.saturating_sub(ACCOUNTS as u64 * SETUP_EVENTS + long_events)
        / (LOADERS * LOAD_BATCH) as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    if let Some(account) = long {
        let mut commands = CommandServiceClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut workload = AccountWorkload::new(account);
            let mut left = long_account;
            while left > 0 {
                let count = left.min(LOAD_BATCH as u64);
                commands
                    .execute_batch(workload.batch(count as usize))
                    .await?;
                left -= count;
            }
            anyhow::Ok(())
        }));
    }
    for l in 0..LOADERS {
        let mut commands = CommandServiceClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut workloads: Vec<AccountWorkload> = (l..ACCOUNTS)
                .step_by(LOADERS)
                .map(|i| AccountWorkload::new(account_id(i)))
                .collect();
            for r in 0..per_loader {
                let n = workloads.len();
                let w = &mut workloads[(r as usize) % n];
                commands.execute_batch(w.batch(LOAD_BATCH)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    let head = crate::server::head(channel).await?;
    Ok((head, elapsed))
}

/// Postcard bytes of one benchmark interaction, as the domain codec stores it.
fn payload_bytes_per_interaction() -> Result<u64> {
    let encoded = keyplan_domain::codec::encode(&crate::workload::interaction_event()?);
    Ok(encoded.payload.len() as u64)
}

/// Runs everything on one node loaded with about `events` events.
pub async fn run(
    binary: &Path,
    events: u64,
    long_account: u64,
    queries: usize,
) -> Result<ReadModelResults> {
    let nats = NatsProcess::start().await?;
    let nats_args = ["--nats-url".to_owned(), nats.url().to_owned()];
    let mut node = KeyplanProcess::start_with(binary, &nats_args).await?;
    let channel = connect(node.address()).await?;
    let (head, load_time) = load(&channel, events, long_account).await?;
    let mut ops = OperationsServiceClient::new(channel.clone());
    let limit = wait_limit(events);
    wait_projections(&mut ops, head, limit).await?;
    tokio::time::sleep(Duration::from_millis(800)).await; // let the runners commit

    // Footprint.
    let rss = rss_mib(node.pid().context("the node's pid")?);
    let data: PathBuf = node.data_dir().to_owned();
    let read_model_bytes = dir_bytes(&data.join(keyplan_projection::READ_MODELS_DIR));
    let log_bytes = dir_bytes(&data).saturating_sub(read_model_bytes);
    let payload_bytes = payload_bytes_per_interaction()? * head;
    let cold_start = node.restart().await?;
    // Freed memory goes back to the system a few seconds after it is freed (jemalloc's decay),
    // so the figure is taken 3 s after the read models serve, not while they are loading.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after_restart = rss_mib(node.pid().context("the node's pid")?);
    let channel = connect(node.address()).await?;
    let mut ops = OperationsServiceClient::new(channel.clone());

    // Queries under a background append load (a batch of 4 every 2 ms from one client).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background = {
        let channel = channel.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut commands = CommandServiceClient::new(channel);
            // New interactions on a loaded account (the load's ids would be retries).
            let mut w = AccountWorkload::with_id_prefix("acct-0000".into(), "bg");
            let mut n = 0u64;
            let started = Instant::now();
            let mut ticks = tokio::time::interval(Duration::from_millis(2));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ticks.tick().await;
                if commands.execute_batch(w.batch(4)).await.is_ok() {
                    n += 4;
                }
            }
            n as f64 / started.elapsed().as_secs_f64()
        })
    };
    let mut timeline = pb::timeline_service_client::TimelineServiceClient::new(channel.clone());
    let mut compliance =
        pb::compliance_service_client::ComplianceServiceClient::new(channel.clone());
    let mut activity = pb::activity_service_client::ActivityServiceClient::new(channel.clone());
    let mut accounts = pb::account_service_client::AccountServiceClient::new(channel.clone());
    let (mut th, mut ch, mut ah) = (QueryTimes::new()?, QueryTimes::new()?, QueryTimes::new()?);
    let mut account_times = QueryTimes::new()?;
    let mut missing = 0u64;
    let (mut long_th, mut long_ch) = (QueryTimes::new()?, QueryTimes::new()?);
    // Seconds an account's interactions span (one second apart from the first).
    let regular_span =
        events.saturating_sub(ACCOUNTS as u64 * SETUP_EVENTS + long_account) / ACCOUNTS as u64;
    for q in 0..queries {
        let account = account_id((q * 7919) % ACCOUNTS);
        let mut targets = vec![(account.clone(), regular_span, &mut th, &mut ch)];
        if long_account > 0 {
            targets.push((
                LONG_ACCOUNT.to_owned(),
                long_account,
                &mut long_th,
                &mut long_ch,
            ));
        }
        for (account, span, th, ch) in targets {
            // Every other query asks about a random point of the account's history.
            let point = (q % 2 == 1).then(|| prost_types::Timestamp {
                seconds: FIRST_INTERACTION_UNIX + ((q as u64 * 7919) % span.max(1)) as i64,
                nanos: 0,
            });
            let t = Instant::now();
            let response = timeline
                .list_timeline(timeline_page(&account, point))
                .await?;
            missing += u64::from(!th.record(t, &response));
            let t = Instant::now();
            let response = compliance
                .get_account_compliance(compliance_as_of(&account, point))
                .await?;
            missing += u64::from(!ch.record(t, &response));
        }
        let t = Instant::now();
        let response = activity
            .get_activity_counts(pb::GetActivityCountsRequest {
                tenant: TENANT.into(),
                account_id: account.clone(),
                period: pb::ActivityPeriod::Month as i32,
                dimension: pb::ActivityDimension::Channel as i32,
                from: "2026-01-01".into(),
                to: "2026-12-31".into(),
                min_position: 0,
            })
            .await?;
        missing += u64::from(!ah.record(t, &response));
        let t = Instant::now();
        let response = accounts.get_account(get_account(account)).await?;
        missing += u64::from(!account_times.record(t, &response));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let background_rate = background.await?;

    // Rebuild from the local log (online; the old generation serves meanwhile).
    let head = crate::server::head(&channel).await?;
    wait_projections(&mut ops, head, limit).await?;
    let started = Instant::now();
    let mut progress = ops
        .rebuild_projections(pb::RebuildProjectionsRequest { names: vec![] })
        .await?
        .into_inner();
    while let Some(update) = progress.next().await {
        let update = update?;
        if !update.error.is_empty() {
            bail!("rebuild of {} failed: {}", update.name, update.error);
        }
    }
    let rebuild_local = started.elapsed();
    tokio::time::sleep(Duration::from_millis(800)).await; // the old generations are dropped
    let rss_after_rebuild = rss_mib(node.pid().context("the node's pid")?);

    // A fresh projections node catching up from JetStream.
    let started = Instant::now();
    let projections_args = [
        "--role".to_owned(),
        "projections".to_owned(),
        nats_args[0].clone(),
        nats_args[1].clone(),
    ];
    let projections = KeyplanProcess::start_with(binary, &projections_args).await?;
    let projections_channel = connect(projections.address()).await?;
    let mut projections_ops = OperationsServiceClient::new(projections_channel.clone());
    wait_projections(&mut projections_ops, head, limit * 3 / 2).await?;
    let rebuild_jetstream = started.elapsed();
    let mut projected_accounts =
        pb::account_service_client::AccountServiceClient::new(projections_channel);
    let mut projection_times = QueryTimes::new()?;
    for q in 0..queries {
        let t = Instant::now();
        let response = projected_accounts
            .get_account(get_account(account_id((q * 7919) % ACCOUNTS)))
            .await?;
        missing += u64::from(!projection_times.record(t, &response));
    }
    // A replica seeded from that node's snapshot while it runs, and one started from a copy
    // of its data once stopped: both taken at `head`, both then read the same tail.
    let (seeded, seed) = seed_from_running(binary, projections.address()).await?;
    let bootstrap = bootstrap_from_copy(
        binary,
        &projections_args,
        projections,
        &channel,
        (head / 100).max(LOAD_BATCH as u64),
        limit,
    )
    .await?;
    let seed_start_to_head =
        start_to_head(binary, seeded, &projections_args, bootstrap.head, limit).await?;
    node.stop().await?;
    let bootstrap_s = (bootstrap.copy + bootstrap.start_to_head).as_secs_f64();
    let seed_s = (seed + seed_start_to_head).as_secs_f64();

    Ok(ReadModelResults {
        events: head,
        load_events_per_s: head as f64 / load_time.as_secs_f64(),
        rss_mib: rss,
        rss_after_restart_mib: rss_after_restart,
        rss_after_rebuild_mib: rss_after_rebuild,
        log_bytes,
        read_model_bytes,
        payload_bytes,
        log_to_payload: log_bytes as f64 / payload_bytes.max(1) as f64,
        cold_start_s: cold_start.listening.as_secs_f64(),
        read_models_ready_s: cold_start
            .read_models
            .context("an all-in-one node reports its read models ready")?
            .as_secs_f64(),
        queries,
        timeline_ms: th.client_ms(),
        compliance_ms: ch.client_ms(),
        activity_ms: ah.client_ms(),
        timeline_server_ms: th.server_ms(),
        compliance_server_ms: ch.server_ms(),
        activity_server_ms: ah.server_ms(),
        long_account_interactions: long_account,
        long_timeline_ms: long_th.client_ms(),
        long_timeline_server_ms: long_th.server_ms(),
        long_compliance_ms: long_ch.client_ms(),
        long_compliance_server_ms: long_ch.server_ms(),
        account_ms: account_times.client_ms(),
        account_server_ms: account_times.server_ms(),
        account_projection_ms: projection_times.client_ms(),
        account_projection_server_ms: projection_times.server_ms(),
        server_timing_missing: missing,
        background_events_per_s: background_rate,
        rebuild_local_s: rebuild_local.as_secs_f64(),
        rebuild_local_events_per_s: head as f64 / rebuild_local.as_secs_f64(),
        rebuild_jetstream_s: rebuild_jetstream.as_secs_f64(),
        rebuild_jetstream_events_per_s: head as f64 / rebuild_jetstream.as_secs_f64(),
        bootstrap_copy_bytes: bootstrap.copy_bytes,
        bootstrap_copy_s: bootstrap.copy.as_secs_f64(),
        bootstrap_tail_events: bootstrap.tail_events,
        bootstrap_start_to_head_s: bootstrap.start_to_head.as_secs_f64(),
        bootstrap_replay_vs_copy: rebuild_jetstream.as_secs_f64() / bootstrap_s.max(f64::EPSILON),
        bootstrap_seed_s: seed.as_secs_f64(),
        bootstrap_seed_start_to_head_s: seed_start_to_head.as_secs_f64(),
        bootstrap_replay_vs_seed: rebuild_jetstream.as_secs_f64() / seed_s.max(f64::EPSILON),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_yields_the_app_duration_in_milliseconds() {
        assert_eq!(parse_server_timing("app;dur=0.123"), Some(0.123));
        assert_eq!(parse_server_timing("app;dur=12"), Some(12.0));
        assert_eq!(
            parse_server_timing("db;dur=5, app ; desc=\"handler\" ; DUR=\"1.5\""),
            Some(1.5)
        );
        assert_eq!(parse_server_timing("cache;dur=1"), None);
        assert_eq!(parse_server_timing("app"), None);
        assert_eq!(parse_server_timing("app;dur="), None);
        assert_eq!(parse_server_timing("app;dur=abc"), None);
        assert_eq!(parse_server_timing("app;dur=-1"), None);
        assert_eq!(parse_server_timing("app;dur=NaN"), None);
        assert_eq!(parse_server_timing("app;dur=inf"), None);
        assert_eq!(parse_server_timing(""), None);
    }

    #[test]
    fn a_query_records_both_sides() {
        let mut times = QueryTimes::new().expect("histograms");
        let mut response = tonic::Response::new(());
        response.metadata_mut().insert(
            SERVER_TIMING,
            tonic::metadata::MetadataValue::from_static("app;dur=0.250"),
        );
        assert!(times.record(Instant::now(), &response));
        assert!(!times.record(Instant::now(), &tonic::Response::new(())));
        assert_eq!(times.client.len(), 2);
        let [p50, p99] = times.server_ms().expect("one server timing");
        assert!((p50 - 0.25).abs() < 0.001 && (p99 - 0.25).abs() < 0.001);
    }
}
