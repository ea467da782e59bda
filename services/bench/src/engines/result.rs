//! What `keyplan-storage-probe` measures and prints, and `keyplan-bench --scenario
//! storage-engines` reads back: shared by both binaries.

use serde::{Deserialize, Serialize};

/// Page cache of every engine, MiB: the node's default `--cache-mb`.
pub const CACHE_MIB: u64 = 64;

/// The engines and layouts compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// sled 0.34, one key per entry.
    SledKeys,
    /// sled 0.34, entries in chunks of 64 per account in position order, the open chunk
    /// rewritten at every commit (the read models' layout today). Its pages are the newest 50
    /// by position: it has no business-time order on disk.
    SledChunks,
    /// redb 4, one key per entry.
    Redb,
    /// fjall 3 (LSM, lz4), one key per entry.
    Fjall,
}

impl Engine {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Engine::SledKeys => "sled-keys",
            Engine::SledChunks => "sled-chunks",
            Engine::Redb => "redb",
            Engine::Fjall => "fjall",
        }
    }
}

/// What one probe measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The engine.
    pub engine: Engine,
    /// Entries written.
    pub entries: u64,
    /// Bytes of keys and values written (the payload).
    pub payload_bytes: u64,
    /// Entries per second while loading (commits included).
    pub load_entries_per_s: f64,
    /// Resident memory after loading, MiB.
    pub rss_after_load_mib: f64,
    /// Bytes on disk after closing.
    pub disk_bytes: u64,
    /// Seconds to reopen.
    pub reopen_s: f64,
    /// Resident memory right after reopening, MiB.
    pub rss_after_reopen_mib: f64,
    /// Page reads after reopening (the first of each account is cold), µs: p50, p99.
    pub page_us: [f64; 2],
    /// Resident memory after the page reads, MiB.
    pub rss_after_reads_mib: f64,
    /// Entries returned by all page reads (checks that pages are full).
    pub entries_read: u64,
}
