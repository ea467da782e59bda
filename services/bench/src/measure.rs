//! Timing windows and latency recording, shared by Keyplan and every baseline so that all of
//! them are measured exactly the same way: a warm-up whose results are discarded, then a fixed
//! window in which every request that *completes* counts.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

use crate::report::Figures;

/// Highest latency the histograms resolve (60 s, in microseconds); anything slower is clamped.
pub(crate) const MAX_LATENCY_MICROS: u64 = 60_000_000;

/// When a run starts, when its measurement starts (after the warm-up) and when it ends.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Start of the measured part (end of the warm-up).
    pub measure_from: Instant,
    /// End of the run: no new request starts after it.
    pub end: Instant,
}

impl Window {
    /// A window starting now: `warmup`, then `measured`.
    pub fn starting_now(warmup: Duration, measured: Duration) -> Self {
        let measure_from = Instant::now() + warmup;
        Self {
            measure_from,
            end: measure_from + measured,
        }
    }

    /// Whether the run is over at `now` (no new request should start).
    pub fn is_over(&self, now: Instant) -> bool {
        now >= self.end
    }

    /// Whether a request that finished at `finished` belongs to the measurement.
    pub fn counts(&self, finished: Instant) -> bool {
        finished >= self.measure_from && finished <= self.end
    }

    /// Length of the measured part.
    pub fn measured(&self) -> Duration {
        self.end.duration_since(self.measure_from)
    }
}

/// Latencies and counts of one worker (or, merged, of a whole run).
#[derive(Debug)]
pub struct Recorder {
    latencies_micros: Histogram<u64>,
    requests: u64,
    events: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Recorder {
    /// An empty recorder (3 significant digits, 1 µs to 60 s).
    pub fn new() -> Result<Self> {
        Ok(Self {
            latencies_micros: Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
                .context("creating a latency histogram")?,
            requests: 0,
            events: 0,
            errors: 0,
            first_error: None,
        })
    }

    /// Records one acknowledged request of `events` events, if it finished inside the window.
    pub fn record(&mut self, window: &Window, started: Instant, finished: Instant, events: u64) {
        if !window.counts(finished) {
            return;
        }
        let micros = finished.duration_since(started).as_micros();
        let micros = u64::try_from(micros).unwrap_or(MAX_LATENCY_MICROS).max(1);
        self.latencies_micros.saturating_record(micros);
        self.requests += 1;
        self.events += events;
    }

    /// Records a failed request (wherever it happened: a failure is never expected).
    pub fn error(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }

    /// Adds another worker's recordings to these.
    pub fn merge(&mut self, other: Recorder) -> Result<()> {
        self.latencies_micros
            .add(&other.latencies_micros)
            .context("merging latency histograms")?;
        self.requests += other.requests;
        self.events += other.events;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        Ok(())
    }

    /// The figures of a run whose measured part lasted `measured`.
    pub fn figures(&self, measured: Duration) -> Figures {
        let seconds = measured.as_secs_f64();
        let quantile_ms = |q: f64| {
            if self.requests == 0 {
                0.0
            } else {
                self.latencies_micros.value_at_quantile(q) as f64 / 1000.0
            }
        };
        Figures {
            events_per_s: self.events as f64 / seconds,
            requests_per_s: self.requests as f64 / seconds,
            events: self.events,
            requests: self.requests,
            errors: self.errors,
            measured_s: seconds,
            p50_ms: quantile_ms(0.5),
            p99_ms: quantile_ms(0.99),
            p999_ms: quantile_ms(0.999),
            max_ms: if self.requests == 0 {
                0.0
            } else {
                self.latencies_micros.max() as f64 / 1000.0
            },
            first_error: self.first_error.clone(),
        }
    }
}

/// utime + stime of process `pid` (all its threads), in seconds: fields 14 and 15 of
/// `/proc/<pid>/stat`, counted after the command name's closing parenthesis (the name may
/// hold spaces).
pub(crate) fn cpu_seconds(pid: &str, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// A memory field of `/proc/<pid>/status` (`VmRSS`: resident now; `VmHWM`: the peak
/// resident size since the process started), in MiB; 0 when it cannot be read.
pub(crate) fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Clock ticks per second of `/proc`'s times (`getconf CLK_TCK`, asked once; 100 where it
/// cannot be asked, the value on every Linux architecture the bench runs on).
pub(crate) fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}
