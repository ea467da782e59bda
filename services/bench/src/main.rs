//! `keyplan-bench`: measures Keyplan's durable appends over real gRPC, next to what the
//! machine allows (raw sled with the same durability, a bare `fdatasync`, a bare JetStream) and
//! to the store most teams would otherwise use (a PostgreSQL events table), all in the same run
//! on the same machine, so the ratios mean something even where absolute numbers do not travel.
//!
//! This file only parses the command line and dispatches: `append` (durable appends and their
//! baselines), `fanout`, `readmodels` (queries with client- and server-side latencies,
//! footprint, rebuild), `baselines` (raw sled, PostgreSQL, raw JetStream) and `report`
//! (tables, JSON lines). The raw JetStream baseline is measured once per run, when the `raw`,
//! `fanout`, `read-models` or `all` scenario runs, and its ratios are reported with the fan-out
//! and the rebuild from JetStream.

mod all_shards;
mod append;
mod apply;
mod baselines;
mod engines;
mod fanout;
mod measure;
mod nats;
mod readmodels;
mod report;
mod server;
mod shards;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use crate::append::{Config, KeyplanTarget, Settings};

/// jemalloc, as in `keyplan`: the `apply` scenario runs the read models in this process, and
/// their cost depends on the allocator (with glibc's, rebuilds were a third slower).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Benchmark harness for Keyplan: durable appends over gRPC vs raw sled and PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "keyplan-bench", version, about)]
struct Cli {
    /// A short run (1 s per measurement, a subset of the configurations) that still exercises
    /// every code path: for CI and for checking the harness itself.
    #[arg(long)]
    quick: bool,

    /// Print one JSON object per result (and nothing else) on stdout instead of tables.
    #[arg(long)]
    json: bool,

    /// What to measure: `append` (Keyplan plus the baselines its ratios need), `raw` (only the
    /// baselines, no Keyplan server: sled, fdatasync, PostgreSQL, JetStream), `fanout`,
    /// `read-models`, `all` (everything).
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,

    /// Measured seconds per run (after a warm-up of a tenth of it). Default 10, or 1 with
    /// --quick.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,

    /// Drive an already running Keyplan at this address instead of starting one per
    /// configuration (its results then depend on what it already holds).
    #[arg(long, value_name = "ADDR")]
    server: Option<String>,

    /// The `keyplan` binary to start (default: the one next to this executable).
    #[arg(long, value_name = "PATH")]
    keyplan_bin: Option<PathBuf>,

    /// Run only these configurations, `CLIENTSxEVENTS` (e.g. `--config 16x1 --config 64x16`),
    /// instead of the default grid (1 / 16 / 64 clients x 1 / 16 events per request).
    #[arg(long = "config", value_name = "CLIENTSxEVENTS", value_parser = parse_config)]
    configs: Vec<Config>,

    /// Extra `keyplan serve` argument for the append and fan-out scenarios' servers (repeatable), e.g.
    /// `--server-arg=--role --server-arg=ingest` to measure the write and fan-out paths without
    /// read models.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    server_args: Vec<String>,

    /// Run the append and fan-out scenarios' servers with authentication on (an HS256 secret
    /// made for the run) and send a token with every call: what identity and tenancy cost.
    #[arg(long)]
    auth: bool,

    /// Events to load for the read-model and apply scenarios (default 1,000,000; --quick:
    /// 20,000), or entries for storage-engines.
    #[arg(long, value_name = "N")]
    events: Option<u64>,

    /// Interactions logged on each append client's account before its warm-up (in batches
    /// of 100), so that the measured appends land on long streams: what a cache miss costs
    /// on an account with years of history (with `--server-arg=--cached-accounts`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    history: u64,

    /// Interactions the read-model scenario logs on one more account besides the 1,000
    /// (within --events), whose queries are timed apart: what a query costs on an account
    /// with years of dense history (default 100,000; --quick: 2,000; 0: none).
    #[arg(long, value_name = "N")]
    long_account: Option<u64>,

    /// PostgreSQL to compare with (libpq key=value or URL form); skipped if unreachable.
    #[arg(
        long,
        value_name = "URL",
        default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    )]
    postgres_url: String,
}

/// The scenarios of `--scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Keyplan's durable appends, with the baselines for its ratios.
    Append,
    /// Only the baselines (raw sled, fdatasync, PostgreSQL, raw JetStream publish/consume).
    Raw,
    /// Fan-out latency: append acknowledged -> received by a JetStream consumer and by a
    /// gRPC Watch client, at fixed rates (1k/s and 10k/s), with ratios to raw JetStream.
    Fanout,
    /// Fan-out on a 3-node JetStream cluster, in one run: an R1 stream (the baseline), an R3
    /// stream, and an R3 stream with `--ack replicated` (1k/s; without --quick also 10k/s).
    /// Not part of `all`.
    Replicas,
    /// Appends and fan-out with 1, 2 and 4 shards (one all-in-one node per shard, its own log
    /// and stream, one nats-server), tenants spread over them by the shard map, commands sent
    /// to each tenant's node; with 2 shards also all through the first node (forwarding).
    /// Ratios to the 1-shard row; CPU time of each process. Then 2 ingest-only shards with
    /// their read models on projections replicas: one replica per shard (the baseline) against
    /// one `--shard all` replica following both (fan-out to readable on the replica, its CPU
    /// and memory, a fresh replica's bootstrap). 1k/s; without --quick also 10k/s. Not part of
    /// `all`.
    Shards,
    /// Read models on a loaded node (1M events; --quick: 20k): footprint (RSS, disk, cold
    /// start), query latencies (client and server side) under append load, and rebuild speed
    /// from the log and from JetStream (with its ratio to a raw JetStream consume).
    ReadModels,
    /// Candidate stores for read-model detail (sled with a key per entry or in chunks,
    /// redb, fjall), each in its own process under the timeline's workload: load rate, RSS,
    /// disk, reopen time and page reads (1M entries by default; --quick: 20k). Not part of
    /// `all`.
    StorageEngines,
    /// Each read model rebuilt in this process from a sled log of the `read-models` workload
    /// (1M events by default; --quick: 20k), alone and all four together, and decoding alone:
    /// where a rebuild's time goes, without a node. Not part of `all`.
    Apply,
    /// Everything but `storage-engines` and `apply`.
    All,
}

/// Parses `CLIENTSxEVENTS`, e.g. `16x1`.
fn parse_config(text: &str) -> Result<Config, String> {
    let (clients, events) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected CLIENTSxEVENTS (e.g. 16x1), got {text:?}"))?;
    let number = |s: &str, what: &str, max: usize| -> Result<usize, String> {
        match s.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "{what} must be a number from 1 to {max}, got {s:?}"
            )),
        }
    };
    Ok(Config {
        clients: number(clients, "clients", 1000)?,
        // ExecuteBatch takes at most 100 commands.
        events_per_request: number(events, "events per request", 100)?,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let seconds = cli.duration.unwrap_or(if cli.quick { 1.0 } else { 10.0 });
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        bail!("--duration must be between 0 and 3600 seconds, got {seconds}");
    }
    let duration = Duration::from_secs_f64(seconds);
    let keyplan = match cli.scenario {
        Scenario::Raw | Scenario::StorageEngines | Scenario::Apply => None,
        Scenario::Append
        | Scenario::All
        | Scenario::Fanout
        | Scenario::Replicas
        | Scenario::Shards
        | Scenario::ReadModels => Some(match cli.server {
            Some(address) => KeyplanTarget::External(address),
            None => KeyplanTarget::Spawn(match cli.keyplan_bin {
                Some(path) => path,
                None => server::default_binary()?,
            }),
        }),
    };
    if let Some(KeyplanTarget::Spawn(binary)) = &keyplan {
        server::check_binary(binary)?;
    }
    let mut server_args = cli.server_args.clone();
    // Kept until the run ends: the servers read the secret from it.
    let _auth_dir = match cli.auth {
        true => Some(enable_auth(&mut server_args)?),
        false => None,
    };
    let settings = Settings {
        duration,
        warmup: duration / 10,
        configs: if !cli.configs.is_empty() {
            cli.configs
        } else if cli.quick {
            Config::quick()
        } else {
            Config::full()
        },
        keyplan,
        postgres_url: cli.postgres_url,
        server_args,
        history: cli.history,
        fdatasync_probe: if cli.quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        },
    };
    if matches!(
        cli.scenario,
        Scenario::Append | Scenario::Raw | Scenario::All
    ) {
        let results = append::run(&settings).await?;
        if cli.json {
            report::print_json(&results)?;
        } else {
            report::print_tables(&settings, &results);
        }
    }
    let jetstream = if matches!(
        cli.scenario,
        Scenario::Raw | Scenario::Fanout | Scenario::ReadModels | Scenario::All
    ) {
        // The quick run publishes for 1 s; the one-at-a-time probe gets a quarter of that.
        eprintln!("raw JetStream baseline...");
        let measured = baselines::jetstream::measure(settings.warmup, duration, duration / 4)
            .await
            .map_err(|e| {
                let why = format!("{e:#}");
                eprintln!("raw JetStream baseline skipped: {why}");
                why
            });
        if let Ok(b) = &measured {
            let s = b.summary();
            eprintln!(
                "  jetstream: {:.0} published/s (ack p50 {:.2} ms, p99 {:.2} ms), one in flight p50 {:.3} ms, consumed {:.0}/s",
                s.publish_per_s,
                s.publish_ack_ms[0],
                s.publish_ack_ms[1],
                s.single_publish_ack_ms[0],
                s.consume_per_s
            );
        }
        report::print_jetstream(cli.json, measured.as_ref().map_err(String::as_str))?;
        measured.ok().map(|b| b.summary())
    } else {
        None
    };
    let binary = match &settings.keyplan {
        Some(KeyplanTarget::Spawn(binary)) => Some(binary.clone()),
        _ => None,
    };
    if matches!(cli.scenario, Scenario::Fanout | Scenario::All) {
        let binary = binary.clone().context(
            "the fan-out scenario starts its own Keyplan and nats-server: omit --server",
        )?;
        let rates: &[u32] = if cli.quick { &[1000] } else { &[1000, 10_000] };
        let setups = [fanout::NatsSetup::SINGLE];
        let results = fanout::run(&binary, rates, &setups, duration, &settings.server_args).await?;
        report::print_fanout(cli.json, &results, jetstream)?;
    }
    if cli.scenario == Scenario::Replicas {
        let binary = binary.clone().context(
            "the replicas scenario starts its own Keyplan and NATS cluster: omit --server",
        )?;
        let rates: &[u32] = if cli.quick { &[1000] } else { &[1000, 10_000] };
        let results = fanout::run(
            &binary,
            rates,
            &fanout::NatsSetup::CLUSTER,
            duration,
            &settings.server_args,
        )
        .await?;
        report::print_fanout(cli.json, &results, None)?;
    }
    if cli.scenario == Scenario::Shards {
        let binary = binary
            .clone()
            .context("the shards scenario starts its own nodes and nats-server: omit --server")?;
        if cli.auth {
            // The run's token names one tenant; this scenario writes to many.
            bail!("--scenario shards writes to many tenants: run it without --auth");
        }
        let rates: &[u32] = if cli.quick { &[1000] } else { &[1000, 10_000] };
        let results = shards::run(&binary, rates, duration, &settings.server_args).await?;
        report::print_shards(cli.json, &results)?;
        let results = all_shards::run(&binary, rates, duration, &settings.server_args).await?;
        report::print_all_shards(cli.json, &results)?;
    }
    if matches!(cli.scenario, Scenario::ReadModels | Scenario::All) {
        let binary =
            binary.context("the read-model scenario starts its own nodes: omit --server")?;
        let events = cli
            .events
            .unwrap_or(if cli.quick { 20_000 } else { 1_000_000 });
        let queries = if cli.quick { 100 } else { 2000 };
        let long_account = cli
            .long_account
            .unwrap_or(if cli.quick { 2_000 } else { 100_000 });
        let result = readmodels::run(&binary, events, long_account, queries).await?;
        report::print_read_models(cli.json, &result, jetstream)?;
    }
    if cli.scenario == Scenario::Apply {
        let events = cli
            .events
            .unwrap_or(if cli.quick { 20_000 } else { 1_000_000 });
        let results = apply::run(events).await?;
        report::print_apply(cli.json, &results)?;
    }
    if cli.scenario == Scenario::StorageEngines {
        let entries = cli
            .events
            .unwrap_or(if cli.quick { 20_000 } else { 1_000_000 });
        let pages = if cli.quick { 200 } else { 2000 };
        let results = engines::run(entries, pages)?;
        report::print_storage_engines(cli.json, &results)?;
    }
    Ok(())
}

/// Makes a secret for the run, has the servers verify tokens with it and every call send one
/// (for the workload's tenant and actor, with the roles the scenarios need).
fn enable_auth(server_args: &mut Vec<String>) -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("keyplan-bench-auth-")
        .tempdir()
        .context("creating a directory for the run's secret")?;
    let secret = dir.path().join("hs256.secret");
    let mut bytes = [0_u8; 48];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?,
        &mut bytes,
    )
    .context("reading /dev/urandom")?;
    std::fs::write(&secret, bytes).context("writing the run's secret")?;
    let token = keyplan_auth::mint::mint_hs256(
        &secret,
        &keyplan_auth::mint::TokenRequest {
            subject: workload::KAM_ID.into(),
            tenant: Some(workload::TENANT.into()),
            roles: vec![keyplan_auth::Role::Rep, keyplan_auth::Role::Admin],
            ttl: Duration::from_secs(7 * 24 * 3600),
            issuer: None,
            audience: None,
        },
    )?;
    server::send_token(&token)?;
    server_args.push("--auth-hs256-secret-file".into());
    server_args.push(secret.display().to_string());
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_from_clients_x_events() {
        let config = parse_config("64x16").expect("valid");
        assert_eq!((config.clients, config.events_per_request), (64, 16));
        assert!(parse_config("0x1").is_err());
        assert!(parse_config("1x101").is_err());
        assert!(parse_config("sixteen").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
