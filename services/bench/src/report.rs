//! Results: one record per measurement, printed as tables for people or as JSON lines for
//! scripts (`--json`: one object per line, stable keys, so runs can be diffed and plotted).
//! Every JSON object has `scenario`, `params`, `figures`, `baseline` (the baselines' figures
//! it is compared with, `null` where a baseline was skipped) and `ratios`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::all_shards::{FollowResult, Followers};
use crate::append::Settings;
use crate::apply::ApplyResults;
use crate::baselines::jetstream::{JetStreamBaseline, JetStreamSummary};
use crate::engines::result::{ProbeResult, CACHE_MIB};
use crate::fanout::FanoutResult;
use crate::readmodels::ReadModelResults;
use crate::shards::ShardsResult;

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

/// `a / b`, if `b` is a positive number.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

fn ratio_text(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
}

/// Writes one JSON object and a newline on stdout.
fn print_json_line(value: &serde_json::Value) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer(&mut out, value).context("writing JSON")?;
    writeln!(out).context("writing JSON")
}

/// The raw JetStream baseline (measured once per run), or why it is missing.
pub fn print_jetstream(json: bool, baseline: Result<&JetStreamBaseline, &str>) -> Result<()> {
    let b = match baseline {
        Ok(b) => b,
        Err(why) => {
            // Already on stderr; the JSON lines that need it carry `null` instead.
            if !json {
                println!("\nnote: raw JetStream baseline skipped: {why}");
            }
            return Ok(());
        }
    };
    if json {
        return print_json_line(&serde_json::json!({
            "scenario": "raw",
            "params": {
                "system": "jetstream",
                "storage": "file",
                "payload_bytes": b.payload_bytes,
                "in_flight": b.in_flight,
                "subjects": b.subjects,
                "warmup_s": b.warmup_s,
            },
            "figures": {
                "publish": b.publish,
                "publish_one_in_flight": b.publish_one_in_flight,
                "consume": b.consume,
            },
            "baseline": {},
            "ratios": {},
        }));
    }
    println!(
        "\nraw: JetStream (private nats-server, file storage, Keyplan's stream settings; \
         {}-byte protobuf events with the relay's headers; {:.1} s measured after {:.1} s warm-up)",
        b.payload_bytes, b.publish.measured_s, b.warmup_s
    );
    let mut rows = vec![[
        "run",
        "messages/s",
        "ack p50 ms",
        "ack p99 ms",
        "ack p999 ms",
        "errors",
    ]
    .map(String::from)
    .to_vec()];
    for (name, f) in [
        (format!("publish, {} in flight", b.in_flight), &b.publish),
        ("publish, 1 in flight".to_owned(), &b.publish_one_in_flight),
    ] {
        rows.push(vec![
            name,
            rate(f.events_per_s),
            ms(f.p50_ms),
            ms(f.p99_ms),
            ms(f.p999_ms),
            f.errors.to_string(),
        ]);
    }
    rows.push(vec![
        format!("consume all {} (ordered pull)", b.consume.messages),
        rate(b.consume.messages_per_s),
        "-".into(),
        "-".into(),
        "-".into(),
        b.consume.errors.to_string(),
    ]);
    print_table(&rows);
    for f in [&b.publish, &b.publish_one_in_flight] {
        if let Some(e) = &f.first_error {
            println!("note: {} JetStream publish errors; first: {e}", f.errors);
        }
    }
    Ok(())
}

/// The fan-out results, with their ratios to the raw JetStream baseline: the achieved rate as
/// a share of raw publish throughput, and the ack → consumer latency over one raw publish's
/// round trip.
pub fn print_fanout(
    json: bool,
    results: &[FanoutResult],
    jetstream: Option<JetStreamSummary>,
) -> Result<()> {
    let ratios = |r: &FanoutResult| -> BTreeMap<&'static str, Option<f64>> {
        let j = jetstream.as_ref();
        [
            (
                "achieved_vs_jetstream_publish",
                j.and_then(|j| ratio(r.achieved_per_s, j.publish_per_s)),
            ),
            (
                "jetstream_p50_vs_single_publish_ack_p50",
                j.and_then(|j| ratio(r.jetstream_ms[0], j.single_publish_ack_ms[0])),
            ),
            (
                "jetstream_p99_vs_single_publish_ack_p99",
                j.and_then(|j| ratio(r.jetstream_ms[1], j.single_publish_ack_ms[1])),
            ),
        ]
        .into_iter()
        .collect()
    };
    if json {
        for r in results {
            print_json_line(&serde_json::json!({
                "scenario": "fanout",
                "params": {"rate_per_s": r.rate_per_s, "clients": r.clients, "nats": r.setup.label()},
                "figures": r,
                "baseline": {"jetstream": jetstream},
                "ratios": ratios(r),
            }))?;
        }
        return Ok(());
    }
    println!(
        "\nfanout: append acknowledged -> event received (ms; 0 when it arrived before the ack)"
    );
    let mut rows = vec![[
        "nats",
        "rate/s",
        "clients",
        "achieved/s",
        "ack p50/p99",
        "jetstream p50/p99/p999",
        "missing",
        "watch p50/p99/p999",
        "missing",
        "of raw publish",
        "js vs raw ack p50/p99",
    ]
    .map(String::from)
    .to_vec()];
    for r in results {
        let ratios = ratios(r);
        let get = |name: &str| ratios.get(name).copied().flatten();
        rows.push(vec![
            r.setup.label(),
            r.rate_per_s.to_string(),
            r.clients.to_string(),
            rate(r.achieved_per_s),
            format!("{}/{}", ms(r.ack_ms[0]), ms(r.ack_ms[1])),
            format!(
                "{}/{}/{}",
                ms(r.jetstream_ms[0]),
                ms(r.jetstream_ms[1]),
                ms(r.jetstream_ms[2])
            ),
            r.jetstream_missing.to_string(),
            format!(
                "{}/{}/{}",
                ms(r.watch_ms[0]),
                ms(r.watch_ms[1]),
                ms(r.watch_ms[2])
            ),
            r.watch_missing.to_string(),
            get("achieved_vs_jetstream_publish")
                .map_or_else(|| "-".to_owned(), |x| format!("{:.1}%", x * 100.0)),
            format!(
                "{}/{}",
                ratio_text(get("jetstream_p50_vs_single_publish_ack_p50")),
                ratio_text(get("jetstream_p99_vs_single_publish_ack_p99"))
            ),
        ]);
    }
    print_table(&rows);
    for r in results {
        println!(
            "{} at {}/s: the JetStream latency splits at nats-server's store time: ack -> stored \
             p50/p99/p999 {}/{}/{} ms (relay), stored -> received {}/{}/{} ms (delivery)",
            r.setup.label(),
            r.rate_per_s,
            ms(r.jetstream_stored_ms[0]),
            ms(r.jetstream_stored_ms[1]),
            ms(r.jetstream_stored_ms[2]),
            ms(r.jetstream_delivery_ms[0]),
            ms(r.jetstream_delivery_ms[1]),
            ms(r.jetstream_delivery_ms[2]),
        );
    }
    if let Some(j) = jetstream {
        println!(
            "raw JetStream (same run): {} messages/s published and acknowledged; one publish at \
             a time acknowledged in p50 {} / p99 {} ms",
            rate(j.publish_per_s),
            ms(j.single_publish_ack_ms[0]),
            ms(j.single_publish_ack_ms[1])
        );
    }
    Ok(())
}

/// The shard results, each with its ratios to the 1-shard row of the same rate (the first row
/// of each rate), and where the CPU went.
pub fn print_shards(json: bool, results: &[ShardsResult]) -> Result<()> {
    let baseline = |r: &ShardsResult| {
        results
            .iter()
            .find(|b| b.rate_per_s == r.rate_per_s && b.setup.shards == 1)
    };
    let ratios = |r: &ShardsResult| -> BTreeMap<&'static str, Option<f64>> {
        let b = baseline(r);
        [
            (
                "achieved_vs_1_shard",
                b.and_then(|b| ratio(r.achieved_per_s, b.achieved_per_s)),
            ),
            (
                "ack_p50_vs_1_shard",
                b.and_then(|b| ratio(r.ack_ms[0], b.ack_ms[0])),
            ),
            (
                "ack_p99_vs_1_shard",
                b.and_then(|b| ratio(r.ack_ms[1], b.ack_ms[1])),
            ),
        ]
        .into_iter()
        .collect()
    };
    if json {
        for r in results {
            print_json_line(&serde_json::json!({
                "scenario": "shards",
                "params": {
                    "rate_per_s": r.rate_per_s,
                    "clients": r.clients,
                    "tenants": r.tenants,
                    "shards": r.setup.shards,
                    "via_first_node": r.setup.via_first_node,
                },
                "figures": r,
                "baseline": {"one_shard": baseline(r).map(|b| serde_json::json!({
                    "achieved_per_s": b.achieved_per_s,
                    "ack_ms": b.ack_ms,
                }))},
                "ratios": ratios(r),
            }))?;
        }
        return Ok(());
    }
    println!(
        "\nshards: single-event appends over {} tenants, one all-in-one node per shard, one \
         nats-server (ms; JetStream = ack -> received by a consumer of the shard's stream, 0 \
         when it arrived before the ack)",
        results.first().map_or(0, |r| r.tenants)
    );
    let mut rows = vec![[
        "shards",
        "rate/s",
        "clients",
        "per shard",
        "forwarded",
        "achieved/s",
        "vs 1 shard",
        "ack p50/p99",
        "vs 1 shard",
        "jetstream p50/p99/p999",
        "ack->stored p50/p99",
        "lost",
        "errors",
    ]
    .map(String::from)
    .to_vec()];
    for r in results {
        let ratios = ratios(r);
        let get = |name: &str| ratio_text(ratios.get(name).copied().flatten());
        rows.push(vec![
            r.setup.label(),
            r.rate_per_s.to_string(),
            r.clients.to_string(),
            r.clients_per_shard
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("/"),
            r.forwarded_clients.to_string(),
            rate(r.achieved_per_s),
            get("achieved_vs_1_shard"),
            format!("{}/{}", ms(r.ack_ms[0]), ms(r.ack_ms[1])),
            format!(
                "{}/{}",
                get("ack_p50_vs_1_shard"),
                get("ack_p99_vs_1_shard")
            ),
            format!(
                "{}/{}/{}",
                ms(r.jetstream_ms[0]),
                ms(r.jetstream_ms[1]),
                ms(r.jetstream_ms[2])
            ),
            format!(
                "{}/{}",
                ms(r.jetstream_stored_ms[0]),
                ms(r.jetstream_stored_ms[1])
            ),
            r.lost.to_string(),
            r.errors.to_string(),
        ]);
    }
    print_table(&rows);
    println!(
        "\nCPU during the load (cores = CPU seconds / wall seconds; the machine's are shared)"
    );
    let mut rows = vec![[
        "shards",
        "rate/s",
        "wall s",
        "keyplan cores (each node)",
        "nats-server cores",
        "bench cores",
        "total cores",
        "keyplan CPU ms/event",
    ]
    .map(String::from)
    .to_vec()];
    for r in results {
        let c = &r.cpu;
        let cores = |seconds: f64| {
            if c.wall > 0.0 {
                format!("{:.2}", seconds / c.wall)
            } else {
                "-".to_owned()
            }
        };
        let keyplan: f64 = c.keyplan.iter().sum();
        rows.push(vec![
            r.setup.label(),
            r.rate_per_s.to_string(),
            format!("{:.1}", c.wall),
            format!(
                "{} ({})",
                cores(keyplan),
                c.keyplan
                    .iter()
                    .map(|k| cores(*k))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
            cores(c.nats),
            cores(c.bench),
            cores(keyplan + c.nats + c.bench),
            if r.acknowledged > 0 {
                format!("{:.3}", keyplan * 1000.0 / r.acknowledged as f64)
            } else {
                "-".to_owned()
            },
        ]);
    }
    print_table(&rows);
    Ok(())
}

/// The replicas of two shards: one per shard (the baseline) against one `--shard all`.
pub fn print_all_shards(json: bool, results: &[FollowResult]) -> Result<()> {
    let baseline = |r: &FollowResult| {
        results
            .iter()
            .find(|b| b.rate_per_s == r.rate_per_s && b.followers == Followers::OnePerShard)
    };
    fn of(
        b: Option<&FollowResult>,
        f: impl Fn(&FollowResult) -> Option<f64>,
        r: &FollowResult,
    ) -> Option<f64> {
        let b = b?;
        ratio(f(r)?, f(b)?)
    }
    let ratios = |r: &FollowResult| -> BTreeMap<&'static str, Option<f64>> {
        let b = baseline(r);
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        [
            (
                "achieved_vs_per_shard",
                of(b, |x| Some(x.achieved_per_s), r),
            ),
            ("ack_p50_vs_per_shard", of(b, |x| Some(x.ack_ms[0]), r)),
            ("ack_p99_vs_per_shard", of(b, |x| Some(x.ack_ms[1]), r)),
            (
                "readable_p50_vs_per_shard",
                of(b, |x| Some(x.readable_ms[0]), r),
            ),
            (
                "readable_p99_vs_per_shard",
                of(b, |x| Some(x.readable_ms[1]), r),
            ),
            (
                "replica_cpu_per_event_vs_per_shard",
                of(b, FollowResult::replica_cpu_ms_per_event, r),
            ),
            (
                "replica_peak_rss_vs_per_shard",
                of(b, |x| Some(sum(&x.replica_peak_rss_mib)), r),
            ),
            (
                "bootstrap_rate_vs_per_shard",
                of(b, FollowResult::bootstrap_per_s, r),
            ),
        ]
        .into_iter()
        .collect()
    };
    if json {
        for r in results {
            print_json_line(&serde_json::json!({
                "scenario": "shards-replicas",
                "params": {
                    "rate_per_s": r.rate_per_s,
                    "clients": r.clients,
                    "tenants": r.tenants,
                    "shards": 2,
                    "followers": r.followers,
                },
                "figures": r,
                "baseline": {"one_replica_per_shard": baseline(r).map(|b| serde_json::json!({
                    "achieved_per_s": b.achieved_per_s,
                    "ack_ms": b.ack_ms,
                    "readable_ms": b.readable_ms,
                    "replica_cpu_ms_per_event": b.replica_cpu_ms_per_event(),
                    "replica_peak_rss_mib": b.replica_peak_rss_mib,
                    "bootstrap_per_s": b.bootstrap_per_s(),
                }))},
                "ratios": ratios(r),
            }))?;
        }
        return Ok(());
    }
    println!(
        "\nshards, read models on replicas: 2 ingest nodes, one nats-server, single-event appends \
         over {} tenants (ms; readable = ack -> the entry on a WatchTimeline of the account on \
         the replica serving its tenant; jetstream = ack -> a consumer of the shard's stream; 0 \
         when it arrived before the ack)",
        results.first().map_or(0, |r| r.tenants)
    );
    let mut rows = vec![[
        "replicas",
        "rate/s",
        "per shard",
        "achieved/s",
        "vs per shard",
        "ack p50/p99",
        "vs per shard",
        "jetstream p50/p99",
        "readable p50/p99/p999",
        "vs per shard",
        "last readable after load",
        "not readable",
        "lost",
        "errors",
    ]
    .map(String::from)
    .to_vec()];
    for r in results {
        let ratios = ratios(r);
        let get = |name: &str| ratio_text(ratios.get(name).copied().flatten());
        rows.push(vec![
            r.followers.label().to_owned(),
            r.rate_per_s.to_string(),
            r.clients_per_shard
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("/"),
            rate(r.achieved_per_s),
            get("achieved_vs_per_shard"),
            format!("{}/{}", ms(r.ack_ms[0]), ms(r.ack_ms[1])),
            format!(
                "{}/{}",
                get("ack_p50_vs_per_shard"),
                get("ack_p99_vs_per_shard")
            ),
            format!("{}/{}", ms(r.jetstream_ms[0]), ms(r.jetstream_ms[1])),
            format!(
                "{}/{}/{}",
                ms(r.readable_ms[0]),
                ms(r.readable_ms[1]),
                ms(r.readable_ms[2])
            ),
            format!(
                "{}/{}",
                get("readable_p50_vs_per_shard"),
                get("readable_p99_vs_per_shard")
            ),
            ms(r.readable_after_load_ms),
            r.not_readable.to_string(),
            r.lost.to_string(),
            r.errors.to_string(),
        ]);
    }
    print_table(&rows);
    println!(
        "\nCPU during the load (cores = CPU seconds / wall seconds; the machine's are shared); \
         replica CPU per event from the load's start until every event was readable; memory \
         then (RSS, and its peak so far)"
    );
    let mut rows = vec![[
        "replicas",
        "rate/s",
        "wall s",
        "ingest cores (each)",
        "replica cores (each)",
        "nats-server cores",
        "bench cores",
        "replica CPU ms/event",
        "vs per shard",
        "replica RSS MiB (each)",
        "peak RSS MiB (each)",
        "vs per shard",
    ]
    .map(String::from)
    .to_vec()];
    for r in results {
        let ratios = ratios(r);
        let get = |name: &str| ratio_text(ratios.get(name).copied().flatten());
        let c = &r.cpu;
        let cores = |seconds: f64| {
            if c.wall > 0.0 {
                format!("{:.2}", seconds / c.wall)
            } else {
                "-".to_owned()
            }
        };
        let each_cores = |v: &[f64]| {
            let each: Vec<String> = v.iter().map(|s| cores(*s)).collect();
            format!("{} ({})", cores(v.iter().sum()), each.join(" + "))
        };
        let each_mib = |v: &[f64]| {
            let each: Vec<String> = v.iter().map(|m| format!("{m:.0}")).collect();
            format!("{:.0} ({})", v.iter().sum::<f64>(), each.join(" + "))
        };
        rows.push(vec![
            r.followers.label().to_owned(),
            r.rate_per_s.to_string(),
            format!("{:.1}", c.wall),
            each_cores(&c.ingest),
            each_cores(&c.replicas),
            cores(c.nats),
            cores(c.bench),
            r.replica_cpu_ms_per_event()
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}")),
            get("replica_cpu_per_event_vs_per_shard"),
            each_mib(&r.replica_rss_mib),
            each_mib(&r.replica_peak_rss_mib),
            get("replica_peak_rss_vs_per_shard"),
        ]);
    }
    print_table(&rows);
    println!(
        "\nbootstrap: a fresh replica on an empty data directory, from position 1 to the heads \
         of the shards it follows (after the load; the median of {} one after the other)",
        results.first().map_or(0, |r| r.bootstraps.len())
    );
    let mut rows = vec![[
        "row",
        "rate/s",
        "--shard",
        "events",
        "ready s",
        "to heads s",
        "events/s",
        "vs per shard",
        "cores",
        "CPU ms/event",
        "peak RSS MiB",
    ]
    .map(String::from)
    .to_vec()];
    for r in results {
        let ratios = ratios(r);
        let Some(b) = r.bootstrap() else { continue };
        rows.push(vec![
            r.followers.label().to_owned(),
            r.rate_per_s.to_string(),
            b.shard.clone(),
            b.events.to_string(),
            format!("{:.2}", b.ready_s),
            format!("{:.2}", b.head_s),
            r.bootstrap_per_s().map_or_else(|| "-".to_owned(), rate),
            ratio_text(ratios.get("bootstrap_rate_vs_per_shard").copied().flatten()),
            if b.head_s > 0.0 {
                format!("{:.2}", b.cpu_s / b.head_s)
            } else {
                "-".to_owned()
            },
            if b.events > 0 {
                format!("{:.3}", b.cpu_s * 1000.0 / b.events as f64)
            } else {
                "-".to_owned()
            },
            format!("{:.0}", b.peak_rss_mib),
        ]);
    }
    print_table(&rows);
    Ok(())
}

/// The read-model results, the JetStream rebuild with its ratio to the raw consume rate.
pub fn print_read_models(
    json: bool,
    r: &ReadModelResults,
    jetstream: Option<JetStreamSummary>,
) -> Result<()> {
    let rebuild_ratio = jetstream
        .as_ref()
        .and_then(|j| ratio(r.rebuild_jetstream_events_per_s, j.consume_per_s));
    if json {
        return print_json_line(&serde_json::json!({
            "scenario": "read-models",
            "params": {"events": r.events, "queries": r.queries, "long_account": r.long_account_interactions},
            "figures": r,
            "baseline": {"jetstream": jetstream},
            "ratios": {"rebuild_jetstream_vs_raw_consume": rebuild_ratio},
        }));
    }
    println!(
        "\nread models on a node with {} events (loaded at {:.0} events/s)",
        r.events, r.load_events_per_s
    );
    println!(
        "footprint: RSS {:.0} MiB ({:.0} after a restart, {:.0} after a rebuild); log {:.1} MiB on disk = \
         {:.2}x the postcard payload ({:.1} MiB); read models {:.1} MiB; cold start {:.2} s to listening, \
         {:.2} s to read models serving",
        r.rss_mib,
        r.rss_after_restart_mib,
        r.rss_after_rebuild_mib,
        r.log_bytes as f64 / 1048576.0,
        r.log_to_payload,
        r.payload_bytes as f64 / 1048576.0,
        r.read_model_bytes as f64 / 1048576.0,
        r.cold_start_s,
        r.read_models_ready_s
    );
    println!(
        "queries under {:.0} appends/s, {} of each (ms; server side = the response's server-timing)",
        r.background_events_per_s, r.queries
    );
    let side = |v: Option<[f64; 2]>, i: usize| v.map_or_else(|| "-".to_owned(), |v| ms(v[i]));
    let mut rows = vec![[
        "query",
        "client p50",
        "client p99",
        "server p50",
        "server p99",
    ]
    .map(String::from)
    .to_vec()];
    let long_timeline = format!(
        "timeline page, {} interactions",
        r.long_account_interactions
    );
    let long_compliance = format!("compliance, {} interactions", r.long_account_interactions);
    let mut queries = vec![
        ("timeline page (50)", r.timeline_ms, r.timeline_server_ms),
        ("compliance as-of", r.compliance_ms, r.compliance_server_ms),
        ("activity counts", r.activity_ms, r.activity_server_ms),
        ("account (log)", r.account_ms, r.account_server_ms),
        (
            "account (projections node)",
            r.account_projection_ms,
            r.account_projection_server_ms,
        ),
    ];
    if r.long_account_interactions > 0 {
        queries.push((
            &long_timeline,
            r.long_timeline_ms,
            r.long_timeline_server_ms,
        ));
        queries.push((
            &long_compliance,
            r.long_compliance_ms,
            r.long_compliance_server_ms,
        ));
    }
    for (name, client, server) in queries {
        rows.push(vec![
            name.to_owned(),
            ms(client[0]),
            ms(client[1]),
            side(server, 0),
            side(server, 1),
        ]);
    }
    print_table(&rows);
    if r.server_timing_missing > 0 {
        println!(
            "note: {} responses had no server-timing header (an older keyplan binary?)",
            r.server_timing_missing
        );
    }
    println!(
        "rebuild: every read model online from the log {:.1} s ({:.0} events/s each, side by side); \
         fresh projections node from JetStream {:.1} s ({:.0} events/s{})",
        r.rebuild_local_s,
        r.rebuild_local_events_per_s,
        r.rebuild_jetstream_s,
        r.rebuild_jetstream_events_per_s,
        match (rebuild_ratio, jetstream) {
            (Some(x), Some(j)) => format!(
                " = {x:.2}x the raw JetStream consume rate, {} messages/s",
                rate(j.consume_per_s)
            ),
            _ => String::new(),
        }
    );
    println!(
        "replica bootstrap: replay from 1 {:.1} s vs from a copy {:.1} s (copy {:.1} s of {:.1} MiB, \
         then start + tail of {} events {:.1} s) = {:.1}x faster",
        r.rebuild_jetstream_s,
        r.bootstrap_copy_s + r.bootstrap_start_to_head_s,
        r.bootstrap_copy_s,
        r.bootstrap_copy_bytes as f64 / 1048576.0,
        r.bootstrap_tail_events,
        r.bootstrap_start_to_head_s,
        r.bootstrap_replay_vs_copy
    );
    println!(
        "replica bootstrap: replay from 1 {:.1} s vs seeded from the running replica {:.1} s \
         (keyplan projections seed {:.1} s, then start + the same tail {:.1} s) = {:.1}x faster",
        r.rebuild_jetstream_s,
        r.bootstrap_seed_s + r.bootstrap_seed_start_to_head_s,
        r.bootstrap_seed_s,
        r.bootstrap_seed_start_to_head_s,
        r.bootstrap_replay_vs_seed
    );
    Ok(())
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

/// The storage engines under the timeline's workload, each with ratios to sled with a key per
/// entry (the first probe) of the same run.
pub fn print_storage_engines(json: bool, results: &[ProbeResult]) -> Result<()> {
    let Some(base) = results.first() else {
        return Ok(());
    };
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    if json {
        for r in results {
            print_json_line(&serde_json::json!({
                "scenario": "storage-engines",
                "params": {"engine": r.engine.name(), "entries": r.entries, "cache_mib": CACHE_MIB},
                "figures": r,
                "ratios": {
                    "load_vs_sled_keys": ratio(r.load_entries_per_s, base.load_entries_per_s),
                    "rss_after_load_vs_sled_keys": ratio(r.rss_after_load_mib, base.rss_after_load_mib),
                    "disk_vs_payload": ratio(r.disk_bytes as f64, r.payload_bytes as f64),
                    "page_p99_vs_sled_keys": ratio(r.page_us[1], base.page_us[1]),
                },
            }))?;
        }
        return Ok(());
    }
    println!(
        "\nstorage engines, {} entries ({:.1} MiB payload), cache {CACHE_MIB} MiB each, one process each",
        base.entries,
        mib(base.payload_bytes)
    );
    println!(
        "{:<12} {:>12} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>14}",
        "engine",
        "load ev/s",
        "RSS load",
        "disk MiB",
        "disk/pay",
        "reopen s",
        "RSS open",
        "RSS read",
        "page p50/p99 µs"
    );
    for r in results {
        println!(
            "{:<12} {:>12.0} {:>10.0} {:>10.1} {:>10} {:>9.2} {:>9.0} {:>9.0} {:>7.0}/{:<7.0}",
            r.engine.name(),
            r.load_entries_per_s,
            r.rss_after_load_mib,
            mib(r.disk_bytes),
            ratio_text(ratio(r.disk_bytes as f64, r.payload_bytes as f64)),
            r.reopen_s,
            r.rss_after_reopen_mib,
            r.rss_after_reads_mib,
            r.page_us[0],
            r.page_us[1],
        );
    }
    Ok(())
}

/// Rebuild cost per read model, in process: each alone and all together, with ratios to
/// decoding alone (what every model pays per event before its own work).
pub fn print_apply(json: bool, r: &ApplyResults) -> Result<()> {
    if json {
        let alone: serde_json::Map<String, serde_json::Value> = r
            .alone
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    serde_json::json!({
                        "events_per_s": m.events_per_s,
                        "cpu_us_per_event": m.cpu_us_per_event,
                        "held_bytes": m.held_bytes,
                        "state_bytes": m.state_bytes,
                    }),
                )
            })
            .collect();
        return print_json_line(&serde_json::json!({
            "scenario": "apply",
            "params": {"events": r.events, "threads": r.threads},
            "figures": {
                "decode_events_per_s": r.decode_events_per_s,
                "alone": alone,
                "together_events_per_s": r.together.events_per_s,
                "together_cpu_us_per_event": r.together.cpu_us_per_event,
                "together_own_feeds_events_per_s": r.together_own_feeds.events_per_s,
                "together_own_feeds_cpu_us_per_event": r.together_own_feeds.cpu_us_per_event,
            },
            "ratios": {
                "together_vs_target_500k": ratio(r.together.events_per_s, 500_000.0),
                "shared_feed_vs_own_feeds": ratio(
                    r.together.events_per_s,
                    r.together_own_feeds.events_per_s
                ),
            },
        }));
    }
    println!(
        "\nrebuild in process, {} events, {} threads: decode alone {:.0} events/s",
        r.events, r.threads, r.decode_events_per_s
    );
    println!(
        "{:<12} {:>12} {:>14} {:>14} {:>10} {:>10}",
        "model", "events/s", "wall µs/event", "CPU µs/event", "held MiB", "state MiB"
    );
    let mib = |bytes: i64| bytes as f64 / (1024.0 * 1024.0);
    for m in &r.alone {
        println!(
            "{:<12} {:>12.0} {:>14.2} {:>14.2} {:>10.1} {:>10.1}",
            m.name,
            m.events_per_s,
            1e6 / m.events_per_s,
            m.cpu_us_per_event,
            mib(m.held_bytes),
            mib(m.state_bytes)
        );
    }
    for (name, together) in [
        ("all four, own feeds", &r.together_own_feeds),
        ("all four, one shared feed", &r.together),
    ] {
        println!(
            "{:<26} {:>12.0} {:>14.2} {:>14.2}",
            name,
            together.events_per_s,
            1e6 / together.events_per_s,
            together.cpu_us_per_event
        );
    }
    println!(
        "shared feed / own feeds: {:.2}x",
        r.together.events_per_s / r.together_own_feeds.events_per_s
    );
    Ok(())
}
