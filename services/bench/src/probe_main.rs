//! `keyplan-storage-probe`: runs one storage engine under a read model's workload in this
//! process and prints what it measured as one JSON object. `keyplan-bench --scenario
//! storage-engines` starts one per engine, so that each resident-memory figure is one
//! engine's alone. jemalloc, as in `keyplan`, so that memory is counted as the node would.

#[path = "engines/probe.rs"]
mod probe;
#[path = "engines/result.rs"]
mod result;

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::Parser;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Measures one storage engine under the timeline's workload.
#[derive(Debug, Parser)]
#[command(name = "keyplan-storage-probe", version, about)]
struct Cli {
    /// The engine and layout.
    #[arg(value_enum)]
    engine: result::Engine,
    /// An empty directory for its files.
    dir: PathBuf,
    /// Events to write.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Pages to read after reopening.
    #[arg(long, default_value_t = 2000)]
    pages: usize,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let result = probe::run(cli.engine, &cli.dir, cli.entries, cli.pages)
        .map_err(|e| anyhow!("{}: {e}", cli.engine.name()))?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
