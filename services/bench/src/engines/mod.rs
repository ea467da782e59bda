//! Scenario `storage-engines`: which embedded store should hold per-event read-model detail?
//! One `keyplan-storage-probe` process per engine runs the same workload (see
//! `probe.rs`), so that each resident-memory figure is that engine's alone; this module starts
//! them one after the other, never side by side, and reports their figures with ratios to
//! sled with one key per entry, measured in the same run.

pub mod result;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use self::result::{Engine, ProbeResult};

/// The probe built alongside this binary.
fn probe_binary() -> Result<PathBuf> {
    let path = std::env::current_exe()
        .context("locating the keyplan-bench executable")?
        .with_file_name("keyplan-storage-probe");
    if !path.is_file() {
        bail!(
            "no keyplan-storage-probe at {}: build it with `cargo build --release -p keyplan-bench`",
            path.display()
        );
    }
    Ok(path)
}

/// Runs every engine's probe with `entries` events and `pages` page reads.
pub fn run(entries: u64, pages: usize) -> Result<Vec<ProbeResult>> {
    let probe = probe_binary()?;
    let mut results = Vec::new();
    for engine in Engine::value_variants() {
        let dir = tempfile::Builder::new()
            .prefix("keyplan-bench-engine-")
            .tempdir()
            .context("creating a directory for the probe")?;
        eprintln!("storage engine {}: {entries} entries...", engine.name());
        let output = Command::new(&probe)
            .arg(engine.name())
            .arg(dir.path().join("db"))
            .arg("--entries")
            .arg(entries.to_string())
            .arg("--pages")
            .arg(pages.to_string())
            .output()
            .with_context(|| format!("running {}", probe.display()))?;
        if !output.status.success() {
            bail!(
                "the {} probe failed ({}): {}",
                engine.name(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let result: ProbeResult = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("reading the {} probe's result", engine.name()))?;
        results.push(result);
    }
    Ok(results)
}
