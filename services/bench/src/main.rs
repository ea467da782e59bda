//! `keyplan-bench`: measures Keyplan's durable appends over real gRPC, next to what the
//! machine allows (raw sled with the same durability, a bare `fdatasync`) and to the store most
//! teams would otherwise use (a PostgreSQL events table), all in the same run on the same
//! machine, so the ratios mean something even where absolute numbers do not travel.
//!
//! This file only parses the command line and dispatches; see `append` for the scenario.

mod append;
mod baselines;
mod measure;
mod report;
mod server;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};

use crate::append::{Config, KeyplanTarget, Settings};

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
    /// baselines, no Keyplan server), `all` (everything).
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
    /// Only the baselines (raw sled, fdatasync, PostgreSQL).
    Raw,
    /// Everything (today the same as `append`, which includes the baselines).
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
        Scenario::Raw => None,
        Scenario::Append | Scenario::All => Some(match cli.server {
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
        fdatasync_probe: if cli.quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        },
    };
    let results = append::run(&settings).await?;
    if cli.json {
        report::print_json(&results)?;
    } else {
        report::print_tables(&settings, &results);
    }
    Ok(())
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
