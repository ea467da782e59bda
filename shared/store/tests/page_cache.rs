//! sled's page cache keeps to its capacity after the store's open, which reads the whole log.
//!
//! As published, sled 0.34's cache looked at its size only once a shard (of 256) had queued 64
//! page accesses, and kept a page per shard: the pages of that read all stayed in memory,
//! whatever the capacity. The workspace builds a patched copy (`shared/vendor/sled`,
//! `KEYPLAN-PATCH.md`); this test fails with the published crate.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{event, request, Noise};
use keyplan_store::*;

// jemalloc, for its count of allocated bytes (this test binary only).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Bytes allocated and not yet freed, now.
fn allocated() -> usize {
    tikv_jemalloc_ctl::epoch::advance().unwrap();
    tikv_jemalloc_ctl::stats::allocated::read().unwrap()
}

/// Events of this many payload bytes, of noise so they do not compress away.
const PAYLOAD: usize = 4096;
/// Events appended: 96 MiB of payload in about 2,000 records of 48 KiB, some 200 of sled's
/// pages (a leaf holds up to 16 records). What a patched cache may keep however small its
/// capacity (a page per shard, and the pages of accesses still queued) is a fixed number of
/// pages, so the log must be large against it.
const EVENTS: usize = 24_576;
const BATCH: usize = 64;
/// The log's page cache in the test (sled counts it in bytes as stored, compressed).
const CACHE: u64 = 1024 * 1024;

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        cache_capacity_bytes: CACHE,
        fdatasync: false,
        ..StoreConfig::new(dir)
    }
}

#[tokio::test]
async fn the_pages_the_open_reads_leave_memory_beyond_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let store = EventStore::open(config(dir.path())).unwrap();
    let stream = StreamId::new("acme", "globex");
    for _ in 0..EVENTS / BATCH {
        let events = (0..BATCH).map(|_| event(noise.bytes(PAYLOAD))).collect();
        store.append(request(&stream, events)).await.unwrap();
    }
    store.close();
    drop(store);

    let before = allocated();
    let store = EventStore::open(config(dir.path())).unwrap();
    assert_eq!(store.head(), EVENTS as u64);
    let held = allocated().saturating_sub(before);
    let log = (EVENTS * PAYLOAD) as f64;
    println!("held after the open: {:.1} MiB", held as f64 / 1048576.0);
    // The published sled keeps the whole log and more (its pages deserialised); the patched
    // one, with a 1 MiB cache, up to a page per shard and the pages whose accesses are still
    // queued: well under half of this log. The store's own indexes are small (one stream,
    // about 2,000 records).
    assert!(
        (held as f64) < log / 2.0,
        "the open left {:.1} MiB allocated for a log of {:.1} MiB and a 1 MiB cache",
        held as f64 / 1048576.0,
        log / 1048576.0
    );
    store.close();
}
