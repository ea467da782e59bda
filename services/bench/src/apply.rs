//! Scenario `apply`: what a rebuild from the log costs each read model, in this process.
//!
//! The `read-models` scenario measures a rebuild on a node, where four models rebuild side by
//! side on two cores while the node also serves: it says how long a rebuild takes, not where
//! the time goes. This one takes the node away: the same workload as `read-models` (1,000
//! accounts, each onboarded with a KAM, a stakeholder and an engagement rule, then interactions
//! in batches of 64) is decided by the real repository into a real sled log in a temporary
//! directory, then each read model is rebuilt from that log by the real
//! [`ProjectionRunner`] (feed, apply, commits to the read models' store): first each alone,
//! then all four together, once each with a feed of its own (as nodes did before) and once on
//! one shared feed, as a node's rebuild runs them. Decoding alone (log record to
//! [`ProjectedEvent`], what every model with a feed of its own pays once per event) is measured
//! too, so that each model's own cost is its time minus that.
//!
//! Being in process and deterministic, it is also the harness to profile with
//! (`perf record`, or `valgrind --tool=callgrind` with a small `--events`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use keyplan_domain::ids::{AccountId, TenantId};
use keyplan_projection::{EventSource, ProjectedEvent, Projection, ProjectionRunner, ReadModelDb};
use keyplan_proto::pb;
use keyplan_repository::{AccountRepository, CommandEnvelope, RepositoryConfig};
use keyplan_store::{EventFilter, EventStore, StoreConfig};
use serde::Serialize;

use crate::readmodels::{account_id, ACCOUNTS, LOAD_BATCH};
use crate::workload::{onboarding, rule, AccountWorkload, TENANT};

/// Events decoded per read of the log when measuring decoding alone.
const DECODE_BATCH: usize = 4096;
/// The block cache of each read-model database (fjall): the node's `--cache-mb` default, so
/// that the stores' share of the cost is the node's.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// The log's page cache (sled): the node's `--log-cache-mb` default.
const LOG_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// What a rebuild of each model costs.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyResults {
    /// Events in the log.
    pub events: u64,
    /// Log record -> `ProjectedEvent`, events/s (one thread).
    pub decode_events_per_s: f64,
    /// Each model rebuilt alone.
    pub alone: Vec<ModelFigures>,
    /// All four rebuilt at once from one shared feed, as on a node.
    pub together: Together,
    /// All four rebuilt at once, each with a feed of its own (as nodes did before the shared
    /// feed): the baseline of `together` in the same run.
    pub together_own_feeds: Together,
    /// Worker threads of the runtime (the machine's cores).
    pub threads: usize,
}

/// The four models rebuilt at once.
#[derive(Debug, Clone, Serialize)]
pub struct Together {
    /// The log's events over the time until the last model finished.
    pub events_per_s: f64,
    /// CPU µs per event (this process, every thread).
    pub cpu_us_per_event: f64,
}

/// Rebuilds the four models side by side from `source` into `db`.
async fn together(db: &ReadModelDb, source: &EventSource, head: u64) -> Result<Together> {
    let started = Instant::now();
    let cpu = cpu_seconds();
    let tasks: Vec<_> = Model::ALL
        .into_iter()
        .map(|model| {
            let db = db.clone();
            let source = source.clone();
            tokio::spawn(async move { model.rebuild(&db, &source, head).await })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(Together {
        events_per_s: head as f64 / started.elapsed().as_secs_f64(),
        cpu_us_per_event: (cpu_seconds() - cpu) * 1e6 / head as f64,
    })
}

/// One model rebuilt alone.
#[derive(Debug, Clone, Serialize)]
pub struct ModelFigures {
    /// The model's name.
    pub name: String,
    /// Events applied per second.
    pub events_per_s: f64,
    /// CPU µs per event: this process's user and system time, every thread, over the events.
    pub cpu_us_per_event: f64,
    /// Heap bytes the model holds once rebuilt, its runner still open: jemalloc's allocated
    /// bytes then, less before the model's database was opened. It counts the model's
    /// in-memory state and its database's cache (at most [`CACHE_BYTES`]): what the
    /// model adds to a node's RSS, before allocator overhead.
    pub held_bytes: i64,
    /// Of `held_bytes`, what the model's in-memory state holds: what is freed when the runner
    /// and the projection are dropped, the database still open. The rest is the store's.
    pub state_bytes: i64,
}

/// Builds the log, then measures.
pub async fn run(events: u64) -> Result<ApplyResults> {
    let dir = tempfile::tempdir()?;
    let mut config = StoreConfig::new(dir.path().join("log"));
    config.cache_capacity_bytes = LOG_CACHE_BYTES;
    // Loading is not what is measured: spare the disk.
    config.fdatasync = false;
    let store = EventStore::open(config)?;
    load(&store, events).await?;
    let head = store.head();

    let decode_events_per_s = decode_rate(&store)?;
    let mut alone = Vec::new();
    for model in Model::ALL {
        let before = allocated_bytes()?;
        let db = open_db(&dir.path().join(format!("alone-{}", model.name())))?;
        let started = Instant::now();
        let cpu = cpu_seconds();
        let held = model
            .rebuild(&db, &EventSource::Local(store.clone()), head)
            .await?;
        let without_state = allocated_bytes()?;
        alone.push(ModelFigures {
            name: model.name().to_owned(),
            events_per_s: head as f64 / started.elapsed().as_secs_f64(),
            cpu_us_per_event: (cpu_seconds() - cpu) * 1e6 / head as f64,
            held_bytes: held - before,
            state_bytes: held - without_state,
        });
    }
    let own_feeds = together(
        &open_db(&dir.path().join("together-own-feeds"))?,
        &EventSource::Local(store.clone()),
        head,
    )
    .await?;
    let shared_feed = together(
        &open_db(&dir.path().join("together"))?,
        &EventSource::Local(store.clone()).shared(),
        head,
    )
    .await?;
    store.close();
    Ok(ApplyResults {
        events: head,
        decode_events_per_s,
        alone,
        together: shared_feed,
        together_own_feeds: own_feeds,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// A read-model database as the node opens one.
fn open_db(path: &std::path::Path) -> Result<ReadModelDb> {
    Ok(ReadModelDb::open(path, CACHE_BYTES)?)
}

/// The read models a node runs.
#[derive(Debug, Clone, Copy)]
enum Model {
    Accounts,
    Timeline,
    Compliance,
    Activity,
}

impl Model {
    const ALL: [Model; 4] = [
        Model::Accounts,
        Model::Timeline,
        Model::Compliance,
        Model::Activity,
    ];

    fn name(self) -> &'static str {
        match self {
            Model::Accounts => "accounts",
            Model::Timeline => "timeline",
            Model::Compliance => "compliance",
            Model::Activity => "activity",
        }
    }

    /// Rebuilds the model from the log into `db`, through the runner a node uses; returns
    /// jemalloc's allocated bytes with the runner still open (both are dropped on return).
    async fn rebuild(self, db: &ReadModelDb, source: &EventSource, head: u64) -> Result<i64> {
        match self {
            Model::Accounts => {
                rebuild(
                    db,
                    source,
                    head,
                    keyplan_account_service::projection::AccountStateProjection::default(),
                )
                .await
            }
            Model::Timeline => {
                rebuild(
                    db,
                    source,
                    head,
                    keyplan_timeline_service::TimelineProjection::default(),
                )
                .await
            }
            Model::Compliance => {
                rebuild(
                    db,
                    source,
                    head,
                    keyplan_compliance_service::ComplianceProjection::default(),
                )
                .await
            }
            Model::Activity => {
                rebuild(
                    db,
                    source,
                    head,
                    keyplan_activity_service::ActivityProjection::default(),
                )
                .await
            }
        }
    }
}

async fn rebuild<P: Projection>(
    db: &ReadModelDb,
    source: &EventSource,
    head: u64,
    projection: P,
) -> Result<i64> {
    let (mut runner, handle) = ProjectionRunner::open(db, projection, source.clone())?;
    runner.run_until(head).await?;
    anyhow::ensure!(
        runner.position() == head,
        "the runner stopped at {} of {head}",
        runner.position()
    );
    let held = allocated_bytes()?;
    drop(runner);
    drop(handle);
    Ok(held)
}

/// jemalloc's count of bytes allocated by this process now (its statistics are cached until
/// the epoch advances).
fn allocated_bytes() -> Result<i64> {
    tikv_jemalloc_ctl::epoch::advance().map_err(|e| anyhow::anyhow!("jemalloc epoch: {e}"))?;
    let allocated = tikv_jemalloc_ctl::stats::allocated::read()
        .map_err(|e| anyhow::anyhow!("jemalloc stats: {e}"))?;
    Ok(i64::try_from(allocated)?)
}

/// User and system CPU time of this process so far (every thread); 0 where it cannot be read.
fn cpu_seconds() -> f64 {
    crate::measure::cpu_seconds("self", crate::measure::clock_ticks()).unwrap_or(0.0)
}

/// Log record -> [`ProjectedEvent`] for the whole log, on this thread: events/s.
fn decode_rate(store: &EventStore) -> Result<f64> {
    let started = Instant::now();
    let mut from = 1;
    let mut decoded = 0u64;
    loop {
        let slice = store.read_all(from, DECODE_BATCH, &EventFilter::default())?;
        if slice.events.is_empty() {
            break;
        }
        for recorded in &slice.events {
            std::hint::black_box(ProjectedEvent::from_recorded(recorded)?);
            decoded += 1;
        }
        from = slice.next_position;
    }
    Ok(decoded as f64
        / started
            .elapsed()
            .max(Duration::from_micros(1))
            .as_secs_f64())
}

/// The `read-models` scenario's workload, decided by the real repository into `store`.
async fn load(store: &EventStore, events: u64) -> Result<()> {
    let repository = AccountRepository::new(store.clone(), RepositoryConfig::default());
    for i in 0..ACCOUNTS {
        let account = account_id(i);
        let onboard = onboarding(&account);
        execute(
            &repository,
            &account,
            onboard.expected_version,
            onboard.commands,
        )
        .await?;
        let rule = rule(&account);
        let command = rule.command.context("the rule's command")?;
        execute(&repository, &account, rule.expected_version, vec![command]).await?;
    }
    let mut workloads: Vec<AccountWorkload> = (0..ACCOUNTS)
        .map(|i| AccountWorkload::new(account_id(i)))
        .collect();
    let mut next = 0;
    while store.head() < events {
        let workload = &mut workloads[next % ACCOUNTS];
        next += 1;
        let account = workload.account().to_owned();
        let batch = workload.batch(LOAD_BATCH);
        execute(
            &repository,
            &account,
            batch.expected_version,
            batch.commands,
        )
        .await?;
    }
    Ok(())
}

async fn execute(
    repository: &AccountRepository,
    account: &str,
    expected: Option<pb::ExpectedVersion>,
    commands: Vec<pb::Command>,
) -> Result<()> {
    let commands = commands
        .into_iter()
        .map(|c| {
            let kind = c.kind.context("a command without a kind")?;
            Ok(keyplan_proto::convert::command_from_proto(kind)?)
        })
        .collect::<Result<Vec<_>>>()?;
    repository
        .execute(CommandEnvelope {
            tenant: TenantId::parse(TENANT)?,
            account: AccountId::parse(account)?,
            expected: keyplan_proto::convert::expected_version_from_proto(expected.as_ref()),
            idempotency_key: None,
            actor: crate::workload::KAM_ID.to_owned(),
            occurred_at: None,
            correlation_id: None,
            causation_id: None,
            commands,
        })
        .await?;
    Ok(())
}
