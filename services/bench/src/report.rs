//! Results: one record per measurement, printed as tables for people or as JSON lines for
//! scripts (`--json`: one object per line, stable keys, so runs can be diffed and plotted).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::append::Settings;

/// The figures of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Acknowledged events per second of the measured window.
    pub events_per_s: f64,
    /// Acknowledged requests (or transactions, or commits) per second.
    pub requests_per_s: f64,
    /// Events acknowledged in the measured window.
    pub events: u64,
    /// Requests acknowledged in the measured window.
    pub requests: u64,
    /// Failed requests, warm-up included (none are expected).
    pub errors: u64,
    /// Length of the measured window, in seconds.
    pub measured_s: f64,
    /// Median request latency, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile request latency, in milliseconds.
    pub p99_ms: f64,
    /// 99.9th percentile request latency, in milliseconds.
    pub p999_ms: f64,
    /// Slowest request, in milliseconds.
    pub max_ms: f64,
    /// The first error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// `keyplan`, `raw-sled-per-event`, `raw-sled-batched`, `postgres` or `fdatasync`.
    pub system: &'static str,
    /// Concurrent clients (connections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<usize>,
    /// Events per request (per transaction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_per_request: Option<usize>,
    /// Events per commit (raw sled: clients × events per request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_events: Option<usize>,
    /// Bytes of one event (baselines; Keyplan's vary around this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_bytes: Option<usize>,
    /// Warm-up before the measured window, in seconds.
    pub warmup_s: f64,
    /// Where the system ran (`spawned` Keyplan, an external address, a PostgreSQL URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The headline figures of a baseline, repeated on the result compared with it.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineFigures {
    /// Events per second.
    pub events_per_s: f64,
    /// Median latency, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
}

impl From<&Figures> for BaselineFigures {
    fn from(f: &Figures) -> Self {
        Self {
            events_per_s: f.events_per_s,
            p50_ms: f.p50_ms,
            p99_ms: f.p99_ms,
        }
    }
}

/// One result line.
#[derive(Debug, Clone, Serialize)]
pub struct ResultLine {
    /// `append` (Keyplan) or `raw` (a baseline or machine fact).
    pub scenario: &'static str,
    /// What was measured.
    pub params: Params,
    /// What came out.
    pub figures: Figures,
    /// The baselines of the same configuration (`null` where skipped); empty for baselines.
    pub baseline: BTreeMap<&'static str, Option<BaselineFigures>>,
    /// Keyplan's events/s divided by each baseline's (`null` where skipped).
    pub ratios: BTreeMap<&'static str, Option<f64>>,
}

/// Everything a run produced.
#[derive(Debug, Default)]
pub struct Report {
    /// The results, in the order measured.
    pub lines: Vec<ResultLine>,
    /// Remarks for the reader (e.g. a skipped baseline and why).
    pub notes: Vec<String>,
}

/// `--json`: one object per line on stdout.
pub fn print_json(report: &Report) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in &report.lines {
        serde_json::to_writer(&mut out, line).context("writing JSON")?;
        writeln!(out).context("writing JSON")?;
    }
    Ok(())
}

/// The human-readable tables: Keyplan with its ratios, then the baselines.
pub fn print_tables(settings: &Settings, report: &Report) {
    let window = format!(
        "{:.1} s measured after {:.1} s warm-up per run",
        settings.duration.as_secs_f64(),
        settings.warmup.as_secs_f64()
    );
    let keyplan: Vec<&ResultLine> = report
        .lines
        .iter()
        .filter(|l| l.scenario == "append")
        .collect();
    if !keyplan.is_empty() {
        println!("\nappend: Keyplan durable appends over gRPC ({window})");
        let mut rows = vec![[
            "clients",
            "ev/req",
            "keyplan ev/s",
            "p50 ms",
            "p99 ms",
            "p999 ms",
            "errors",
            "postgres ev/s",
            "sled/event ev/s",
            "sled/batch ev/s",
            "kp/pg",
            "kp/sled-event",
            "kp/sled-batch",
        ]
        .map(String::from)
        .to_vec()];
        for line in keyplan {
            let f = &line.figures;
            let base = |name: &str| {
                line.baseline
                    .get(name)
                    .and_then(Option::as_ref)
                    .map_or_else(|| "-".to_owned(), |b| rate(b.events_per_s))
            };
            let ratio = |name: &str| {
                line.ratios
                    .get(name)
                    .copied()
                    .flatten()
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
            };
            rows.push(vec![
                opt(line.params.clients),
                opt(line.params.events_per_request),
                rate(f.events_per_s),
                ms(f.p50_ms),
                ms(f.p99_ms),
                ms(f.p999_ms),
                f.errors.to_string(),
                base("postgres"),
                base("raw_sled_per_event"),
                base("raw_sled_batched"),
                ratio("keyplan_vs_postgres"),
                ratio("keyplan_vs_raw_sled_per_event"),
                ratio("keyplan_vs_raw_sled_batched"),
            ]);
        }
        print_table(&rows);
    }

    let raw: Vec<&ResultLine> = report
        .lines
        .iter()
        .filter(|l| l.scenario == "raw")
        .collect();
    if !raw.is_empty() {
        println!("\nraw: baselines on the same machine ({window})");
        let mut rows = vec![[
            "system",
            "clients",
            "ev/req",
            "ev/commit",
            "events/s",
            "commits/s",
            "p50 ms",
            "p99 ms",
            "p999 ms",
            "errors",
        ]
        .map(String::from)
        .to_vec()];
        for line in raw {
            let f = &line.figures;
            rows.push(vec![
                line.params.system.to_owned(),
                opt(line.params.clients),
                opt(line.params.events_per_request),
                opt(line.params.batch_events),
                rate(f.events_per_s),
                rate(f.requests_per_s),
                ms(f.p50_ms),
                ms(f.p99_ms),
                ms(f.p999_ms),
                f.errors.to_string(),
            ]);
        }
        print_table(&rows);
    }

    let errors: Vec<String> = report
        .lines
        .iter()
        .filter_map(|l| {
            l.figures.first_error.as_ref().map(|e| {
                format!(
                    "{} errors in {}: first: {e}",
                    l.figures.errors, l.params.system
                )
            })
        })
        .collect();
    if !report.notes.is_empty() || !errors.is_empty() {
        println!();
        for note in report.notes.iter().chain(&errors) {
            println!("note: {note}");
        }
    }
}

/// Right-aligned columns, the first row a header.
fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:>width$}"))
            .collect();
        println!("{}", cells.join("  "));
    }
}

fn opt(value: Option<usize>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A rate with no decimals (or one below 100, where they matter).
fn rate(value: f64) -> String {
    if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// Milliseconds with three significant-ish digits.
fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}
