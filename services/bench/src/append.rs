//! The append scenario: durable appends through Keyplan's gRPC API at several concurrencies
//! and request sizes, each next to its baselines measured in the same run.
//!
//! Every client owns one account (so no two clients contend for a stream: the scenario
//! measures the write path, not conflict handling), has its own gRPC channel (its own HTTP/2
//! connection, as separate users would) and runs as a tokio task issuing one request at a time.
//! Each configuration gets a fresh server, a fresh sled directory and a fresh PostgreSQL table,
//! so results do not depend on the order in which they run.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::server::Channel;
use anyhow::{Context, Result};
use keyplan_proto::pb::command_service_client::CommandServiceClient;
use tokio::task::JoinSet;

use crate::baselines::postgres::{self, Postgres};
use crate::baselines::sled::{self as raw_sled, Layout};
use crate::baselines::EVENT_BYTES;
use crate::measure::{Recorder, Window};
use crate::report::{BaselineFigures, Figures, Params, Report, ResultLine};
use crate::server::{self, KeyplanProcess};
use crate::workload::{self, AccountWorkload};

/// A request that takes longer than this counts as failed (and the client moves on), so a
/// stuck server cannot hang the benchmark.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One configuration: how many clients, how many events each request carries.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Concurrent clients (connections, accounts).
    pub clients: usize,
    /// Events per request: 1 (`Execute`) or more (`ExecuteBatch`).
    pub events_per_request: usize,
}

impl Config {
    /// Every combination of 1 / 16 / 64 clients and 1 / 16 events per request.
    pub fn full() -> Vec<Self> {
        let mut configs = Vec::new();
        for events_per_request in [1, 16] {
            for clients in [1, 16, 64] {
                configs.push(Self {
                    clients,
                    events_per_request,
                });
            }
        }
        configs
    }

    /// Two configurations that together run every code path (`Execute` and `ExecuteBatch`,
    /// one and many clients, raw sled records split at the cap).
    pub fn quick() -> Vec<Self> {
        vec![
            Self {
                clients: 1,
                events_per_request: 1,
            },
            Self {
                clients: 16,
                events_per_request: 16,
            },
        ]
    }

    /// Events Keyplan's group commit would take in one batch if all clients' requests arrived
    /// together: the batch size of the raw sled baseline.
    fn batch_events(self) -> usize {
        self.clients * self.events_per_request
    }
}

/// Interactions per request while logging `--history` (the server's most commands per
/// request).
const HISTORY_BATCH: u64 = 100;

/// Which Keyplan to drive.
#[derive(Debug, Clone)]
pub enum KeyplanTarget {
    /// Start this binary, once per configuration, over a fresh data directory.
    Spawn(PathBuf),
    /// An already running server at this address.
    External(String),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measured time per run.
    pub duration: Duration,
    /// Warm-up before each measured window (connections, caches, the allocator, the disk).
    pub warmup: Duration,
    /// The configurations.
    pub configs: Vec<Config>,
    /// Keyplan, or `None` for the baselines alone.
    pub keyplan: Option<KeyplanTarget>,
    /// PostgreSQL connection string for its baseline.
    pub postgres_url: String,
    /// How long to probe the bare `fdatasync` latency.
    pub fdatasync_probe: Duration,
    /// Extra `keyplan serve` arguments for spawned servers (e.g. `--role ingest`).
    pub server_args: Vec<String>,
    /// Interactions logged on each client's account before the warm-up (`--history`).
    pub history: u64,
}

/// Runs the machine probe, then every configuration: Keyplan (unless only baselines were
/// asked for), raw sled in both layouts, PostgreSQL (if reachable).
pub async fn run(settings: &Settings) -> Result<Report> {
    let mut report = Report::default();

    eprintln!("probing fdatasync latency...");
    let probe = settings.fdatasync_probe;
    let fsync = tokio::task::spawn_blocking(move || raw_sled::fdatasync_latency(probe / 10, probe))
        .await
        .context("the fdatasync probe panicked")??;
    eprintln!(
        "  fdatasync of a {EVENT_BYTES}-byte append: p50 {:.3} ms, p99 {:.3} ms",
        fsync.p50_ms, fsync.p99_ms
    );
    report.lines.push(ResultLine {
        scenario: "raw",
        params: Params {
            system: "fdatasync",
            clients: Some(1),
            events_per_request: Some(1),
            batch_events: Some(1),
            event_bytes: Some(EVENT_BYTES),
            warmup_s: (probe / 10).as_secs_f64(),
            target: None,
        },
        figures: fsync,
        baseline: Default::default(),
        ratios: Default::default(),
    });

    let postgres = match postgres::connect(&settings.postgres_url).await {
        Ok(pg) => {
            eprintln!("PostgreSQL baseline: {}", pg.url());
            Some(pg)
        }
        Err(e) => {
            let note = format!("PostgreSQL baseline skipped: cannot connect ({e:#})");
            eprintln!("{note}");
            report.notes.push(note);
            None
        }
    };

    let outcome = run_configs(settings, postgres.as_ref(), &mut report).await;
    if let Some(pg) = &postgres {
        if let Err(e) = pg.drop_table().await {
            eprintln!("warning: {e:#}");
        }
    }
    outcome?;
    Ok(report)
}

async fn run_configs(
    settings: &Settings,
    postgres: Option<&Postgres>,
    report: &mut Report,
) -> Result<()> {
    let (warmup, measured) = (settings.warmup, settings.duration);
    for &config in &settings.configs {
        let label = format!(
            "{} client(s) x {} event(s)/request",
            config.clients, config.events_per_request
        );
        let keyplan = match &settings.keyplan {
            Some(target) => {
                eprintln!("{label}: keyplan...");
                let figures = measure_keyplan(target, config, warmup, measured, settings)
                    .await
                    .with_context(|| format!("measuring keyplan, {label}"))?;
                progress("keyplan", &figures);
                Some(figures)
            }
            None => None,
        };

        let mut sled = Vec::new();
        for layout in [Layout::PerEvent, Layout::Batched] {
            eprintln!("{label}: {}...", layout.name());
            let batch = config.batch_events();
            let figures = tokio::task::spawn_blocking(move || {
                raw_sled::measure(layout, batch, warmup, measured)
            })
            .await
            .context("the raw sled baseline panicked")?
            .with_context(|| format!("measuring {}, {label}", layout.name()))?;
            progress(layout.name(), &figures);
            report.lines.push(ResultLine {
                scenario: "raw",
                params: Params {
                    system: layout.name(),
                    clients: Some(config.clients),
                    events_per_request: Some(config.events_per_request),
                    batch_events: Some(batch),
                    event_bytes: Some(EVENT_BYTES),
                    warmup_s: warmup.as_secs_f64(),
                    target: None,
                },
                figures: figures.clone(),
                baseline: Default::default(),
                ratios: Default::default(),
            });
            sled.push(figures);
        }

        let pg = match postgres {
            Some(pg) => {
                eprintln!("{label}: postgres...");
                let figures = pg
                    .measure(config.clients, config.events_per_request, warmup, measured)
                    .await
                    .with_context(|| format!("measuring postgres, {label}"))?;
                progress("postgres", &figures);
                report.lines.push(ResultLine {
                    scenario: "raw",
                    params: Params {
                        system: "postgres",
                        clients: Some(config.clients),
                        events_per_request: Some(config.events_per_request),
                        batch_events: Some(config.events_per_request),
                        event_bytes: Some(EVENT_BYTES),
                        warmup_s: warmup.as_secs_f64(),
                        target: Some(pg.url().to_owned()),
                    },
                    figures: figures.clone(),
                    baseline: Default::default(),
                    ratios: Default::default(),
                });
                Some(figures)
            }
            None => None,
        };

        if let (Some(figures), Some(target)) = (keyplan, &settings.keyplan) {
            let baselines = [
                ("postgres", pg.as_ref()),
                ("raw_sled_per_event", sled.first()),
                ("raw_sled_batched", sled.get(1)),
            ];
            let baseline = baselines
                .iter()
                .map(|(name, f)| (*name, f.map(BaselineFigures::from)))
                .collect();
            let ratio = |f: Option<&Figures>| {
                f.filter(|b| b.events_per_s > 0.0)
                    .map(|b| figures.events_per_s / b.events_per_s)
            };
            let ratios = [
                ("keyplan_vs_postgres", ratio(pg.as_ref())),
                ("keyplan_vs_raw_sled_per_event", ratio(sled.first())),
                ("keyplan_vs_raw_sled_batched", ratio(sled.get(1))),
            ]
            .into_iter()
            .collect();
            report.lines.push(ResultLine {
                scenario: "append",
                params: Params {
                    system: "keyplan",
                    clients: Some(config.clients),
                    events_per_request: Some(config.events_per_request),
                    batch_events: None,
                    event_bytes: None,
                    warmup_s: warmup.as_secs_f64(),
                    target: Some(match target {
                        KeyplanTarget::Spawn(_) => "spawned".to_owned(),
                        KeyplanTarget::External(address) => address.clone(),
                    }),
                },
                figures,
                baseline,
                ratios,
            });
        }
    }
    Ok(())
}

fn progress(system: &str, f: &Figures) {
    eprintln!(
        "  {system}: {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, {} errors",
        f.events_per_s, f.p50_ms, f.p99_ms, f.p999_ms, f.errors
    );
}

/// One configuration against Keyplan: a fresh server (unless external), accounts set up,
/// then the clients' loops; the server is stopped whatever the outcome.
async fn measure_keyplan(
    target: &KeyplanTarget,
    config: Config,
    warmup: Duration,
    measured: Duration,
    settings: &Settings,
) -> Result<Figures> {
    let history = settings.history;
    match target {
        KeyplanTarget::External(address) => drive(address, config, history, warmup, measured).await,
        KeyplanTarget::Spawn(binary) => {
            let process = KeyplanProcess::start_with(binary, &settings.server_args).await?;
            let outcome = drive(process.address(), config, history, warmup, measured).await;
            let stopped = process.stop().await;
            let figures = outcome?;
            stopped?;
            Ok(figures)
        }
    }
}

/// Sets up one account per client with `history` interactions, then runs all clients for
/// the window.
async fn drive(
    address: &str,
    config: Config,
    history: u64,
    warmup: Duration,
    measured: Duration,
) -> Result<Figures> {
    // Unique per run, so that runs against one external server never collide.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut setup = JoinSet::new();
    for i in 0..config.clients {
        let address = address.to_owned();
        let account = format!(
            "bench-{run:x}-{}x{}-{i}",
            config.clients, config.events_per_request
        );
        setup.spawn(async move {
            let mut client = CommandServiceClient::new(server::connect(&address).await?);
            client
                .execute_batch(workload::onboarding(&account))
                .await
                .with_context(|| format!("setting up account {account}"))?;
            let mut workload = AccountWorkload::new(account);
            let mut logged = 0;
            while logged < history {
                let count = (history - logged).min(HISTORY_BATCH);
                client
                    .execute_batch(workload.batch(count as usize))
                    .await
                    .with_context(|| format!("logging the history of {}", workload.account()))?;
                logged += count;
            }
            Ok::<_, anyhow::Error>((client, workload))
        });
    }
    if history > 0 {
        eprintln!(
            "  {} accounts with {history} interactions each: set up",
            config.clients
        );
    }
    let mut clients = Vec::with_capacity(config.clients);
    while let Some(joined) = setup.join_next().await {
        clients.push(joined.context("a setup task panicked")??);
    }

    let window = Window::starting_now(warmup, measured);
    let mut load = JoinSet::new();
    for (client, workload) in clients {
        load.spawn(client_loop(
            client,
            workload,
            config.events_per_request,
            window,
        ));
    }
    let mut total = Recorder::new()?;
    while let Some(joined) = load.join_next().await {
        total.merge(joined.context("a client task panicked")??)?;
    }
    Ok(total.figures(window.measured()))
}

/// One client: one request at a time on its own account until the window ends.
async fn client_loop(
    mut client: CommandServiceClient<Channel>,
    mut workload: AccountWorkload,
    events_per_request: usize,
    window: Window,
) -> Result<Recorder> {
    let mut recorder = Recorder::new()?;
    loop {
        // Build the request before starting the clock: the client's own work is not latency.
        let request = if events_per_request == 1 {
            Request::Single(workload.single())
        } else {
            Request::Batch(workload.batch(events_per_request))
        };
        let started = Instant::now();
        if window.is_over(started) {
            break;
        }
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, async {
            match request {
                Request::Single(r) => client.execute(r).await,
                Request::Batch(r) => client.execute_batch(r).await,
            }
        })
        .await;
        let finished = Instant::now();
        match outcome {
            Ok(Ok(response)) => {
                let events = response.into_inner().event_ids.len() as u64;
                recorder.record(&window, started, finished, events);
            }
            Ok(Err(status)) => recorder.error(|| {
                format!(
                    "account {}: {} {}",
                    workload.account(),
                    status.code(),
                    status.message()
                )
            }),
            Err(_) => recorder.error(|| {
                format!(
                    "account {}: no answer within {REQUEST_TIMEOUT:?}",
                    workload.account()
                )
            }),
        }
    }
    Ok(recorder)
}

/// A request of either kind.
enum Request {
    Single(keyplan_proto::pb::ExecuteRequest),
    Batch(keyplan_proto::pb::ExecuteBatchRequest),
}
