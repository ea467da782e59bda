//! Raw sled: what Keyplan's store could reach with zero overhead (no gRPC, no validation, no
//! encoding, no hashing, no indexes), with exactly its durability: one sled batch, `flush`,
//! then `fdatasync` of sled's data file, per commit.
//!
//! Each commit writes `B = clients × events per request` events, the batch Keyplan's group
//! commit would form if every client's request arrived together, in one of two layouts:
//! [`Layout::PerEvent`] (one key per event, what a naive store does) and [`Layout::Batched`]
//! (Keyplan's: one key per commit chunk, values capped like `layout::MAX_RECORD_BYTES`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{event_bytes, EVENT_BYTES};
use crate::measure::{Recorder, Window};
use crate::report::Figures;

/// Cap of one value in the batched layout, as Keyplan's `MAX_RECORD_BYTES` (48 KiB): larger
/// values would become sled blob files, which sled 0.34 does not fsync.
pub const MAX_RECORD_BYTES: usize = 48 * 1024;

/// sled's page cache, as Keyplan's default (`--cache-mb 256`).
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// How the events of one commit map to sled keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One key per event (8-byte big-endian position), the event as the value.
    PerEvent,
    /// Keyplan's layout: one key per chunk of consecutive events (the first one's position),
    /// a value of `u32 count, u32 end offsets, events`, at most [`MAX_RECORD_BYTES`].
    Batched,
}

impl Layout {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::PerEvent => "raw-sled-per-event",
            Self::Batched => "raw-sled-batched",
        }
    }
}

/// Commits batches of `batch_events` events into a fresh sled database for `warmup` plus
/// `measured`, and returns events/s and commit latencies. Blocking: run it off the runtime.
pub fn measure(
    layout: Layout,
    batch_events: usize,
    warmup: Duration,
    measured: Duration,
) -> Result<Figures> {
    let dir = tempfile::Builder::new()
        .prefix("keyplan-bench-sled-")
        .tempdir()
        .context("creating a temporary directory for sled")?;
    // Keyplan's store configuration: no background flusher, durability only on commit.
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(CACHE_BYTES)
        .flush_every_ms(None)
        .open()
        .context("opening a sled database")?;
    let log = db.open_tree("log").context("opening the log tree")?;
    // sled 0.34's flush uses sync_file_range, which does not flush the drive's cache: Keyplan
    // fdatasyncs the data file after each flush, and so must the baseline.
    let data_file = File::open(dir.path().join("db")).context("opening sled's data file")?;

    let event = event_bytes();
    let mut next_position: u64 = 1;
    let mut recorder = Recorder::new()?;
    let window = Window::starting_now(warmup, measured);
    loop {
        let batch = build_batch(layout, &mut next_position, batch_events, &event);
        let started = Instant::now();
        if window.is_over(started) {
            break;
        }
        log.apply_batch(batch).context("writing a sled batch")?;
        db.flush().context("flushing sled")?;
        data_file
            .sync_data()
            .context("fdatasync of sled's data file")?;
        recorder.record(&window, started, Instant::now(), batch_events as u64);
    }
    Ok(recorder.figures(window.measured()))
}

/// The sled batch of one commit of `count` events starting at `*next_position`.
fn build_batch(layout: Layout, next_position: &mut u64, count: usize, event: &[u8]) -> sled::Batch {
    let mut batch = sled::Batch::default();
    match layout {
        Layout::PerEvent => {
            for _ in 0..count {
                let mut value = event.to_vec();
                value[..8].copy_from_slice(&next_position.to_le_bytes());
                batch.insert(&next_position.to_be_bytes(), value);
                *next_position += 1;
            }
        }
        Layout::Batched => {
            let per_record = events_per_record();
            let mut left = count;
            while left > 0 {
                let n = left.min(per_record);
                let first = *next_position;
                batch.insert(&first.to_be_bytes(), record(first, n, event));
                *next_position += n as u64;
                left -= n;
            }
        }
    }
    batch
}

/// How many events fit one record of at most [`MAX_RECORD_BYTES`] (count, offsets, events).
fn events_per_record() -> usize {
    ((MAX_RECORD_BYTES - 4) / (EVENT_BYTES + 4)).max(1)
}

/// One record of `n` events, the first at position `first`, in Keyplan's record format.
fn record(first: u64, n: usize, event: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(4 + n * (4 + event.len()));
    value.extend_from_slice(&(n as u32).to_le_bytes());
    for i in 1..=n {
        value.extend_from_slice(&((i * event.len()) as u32).to_le_bytes());
    }
    for i in 0..n as u64 {
        let start = value.len();
        value.extend_from_slice(event);
        value[start..start + 8].copy_from_slice(&(first + i).to_le_bytes());
    }
    value
}

/// Latency of the smallest durable write: append one event's bytes to a file, `fdatasync`.
/// Every durable commit pays at least this, so it bounds commits per second per writer.
pub fn fdatasync_latency(warmup: Duration, measured: Duration) -> Result<Figures> {
    let dir = tempfile::Builder::new()
        .prefix("keyplan-bench-fsync-")
        .tempdir()
        .context("creating a temporary directory for the fdatasync probe")?;
    let path = dir.path().join("probe");
    let mut file = open_append(&path)?;
    let event = event_bytes();
    let mut recorder = Recorder::new()?;
    let window = Window::starting_now(warmup, measured);
    loop {
        let started = Instant::now();
        if window.is_over(started) {
            break;
        }
        file.write_all(&event)
            .with_context(|| format!("writing {}", path.display()))?;
        file.sync_data()
            .with_context(|| format!("fdatasync of {}", path.display()))?;
        recorder.record(&window, started, Instant::now(), 1);
    }
    Ok(recorder.figures(window.measured()))
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_records_respect_the_cap() {
        let event = event_bytes();
        let n = events_per_record();
        assert!(record(1, n, &event).len() <= MAX_RECORD_BYTES);
        assert!(record(1, n + 1, &event).len() > MAX_RECORD_BYTES);
    }

    #[test]
    fn batches_assign_consecutive_positions() {
        let event = event_bytes();
        let mut next = 1;
        let _ = build_batch(Layout::Batched, &mut next, 1000, &event);
        assert_eq!(next, 1001);
        let _ = build_batch(Layout::PerEvent, &mut next, 16, &event);
        assert_eq!(next, 1017);
    }
}
