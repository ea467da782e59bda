//! Log integrity on real sled files: damage is detected at open and never served (damage to
//! the position index, which is derived, makes the store rebuild it from the log), a log that
//! lost acknowledged events is refused, the log's settings survive sled's `conf` being lost,
//! and no page of a new log leaves sled's `db` file for an unsynced blob file.
#![allow(clippy::unwrap_used)]

mod common;

use common::{copy_dir, event, request, Noise};
use std::path::{Path, PathBuf};

use keyplan_store::*;

fn config(dir: &Path, compress: bool) -> StoreConfig {
    StoreConfig {
        compress_new_log: compress,
        cache_capacity_bytes: 8 * 1024 * 1024,
        ..StoreConfig::new(dir)
    }
}

fn streams() -> Vec<StreamId> {
    (0..4)
        .map(|i| StreamId::new("acme", format!("account-{i}")))
        .collect()
}

/// Writes `appends` appends of 1..=8 events of 100..2,000 noisy bytes; returns the log as read
/// back.
async fn fill(dir: &Path, compress: bool, appends: usize) -> Vec<RecordedEvent> {
    let store = EventStore::open(config(dir, compress)).unwrap();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let streams = streams();
    for i in 0..appends {
        let count = 1 + (noise.next() % 8) as usize;
        let events = (0..count)
            .map(|_| {
                let len = 100 + (noise.next() % 1900) as usize;
                event(noise.bytes(len))
            })
            .collect();
        store
            .append(request(&streams[i % streams.len()], events))
            .await
            .unwrap();
    }
    let all = store
        .read_all(0, usize::MAX, &EventFilter::default())
        .unwrap();
    store.close();
    all.events
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out.sort();
    out
}

/// What opening a damaged copy led to.
#[derive(Debug, Default)]
struct Tally {
    refused_at_open: usize,
    harmless: usize,
}

/// Opens `dir` and requires either a refusal or the exact log that was written.
fn open_damaged(dir: &Path, compress: bool, expected: &[RecordedEvent], what: &str) -> bool {
    let opened = std::panic::catch_unwind(|| EventStore::open(config(dir, compress)));
    let store = match opened {
        Err(_) => panic!("{what}: the store panicked instead of reporting the damage"),
        Ok(Err(e)) => {
            let message = e.to_string();
            assert!(
                message.len() < 1024,
                "{what}: an unbounded message: {message}"
            );
            return false;
        }
        Ok(Ok(store)) => store,
    };
    assert_eq!(
        store.head(),
        expected.len() as u64,
        "{what}: a damaged log was served with another head"
    );
    let all = store
        .read_all(0, usize::MAX, &EventFilter::default())
        .unwrap();
    assert!(
        all.events == expected,
        "{what}: a damaged log was served with other events"
    );
    for stream in streams() {
        let report = store.verify_stream(&stream).unwrap();
        assert_eq!(
            report.first_broken_version, None,
            "{what}: {}",
            report.detail
        );
    }
    store.close();
    true
}

/// Flips one byte at many offsets of every file of a stopped store's directory: each flip is
/// refused at open or provably harmless (the same events, chains intact), never served.
#[tokio::test]
async fn byte_flips_in_any_file_are_refused_or_harmless_never_served() {
    let flips_per_file: usize = std::env::var("KEYPLAN_BYTE_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    for compress in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let pristine = root.path().join("pristine");
        let expected = fill(&pristine, compress, 120).await;
        let mut tally = Tally::default();
        let mut noise = Noise(0x1234_5678 + compress as u64);
        for file in files(&pristine) {
            let relative = file.strip_prefix(&pristine).unwrap().to_owned();
            let len = std::fs::metadata(&file).unwrap().len() as usize;
            if len == 0 {
                continue;
            }
            // The position index is derived data that a damaged copy is rebuilt from (about
            // twenty small fjall files): a quarter of the flips each keeps the test's time.
            let flips = if relative.starts_with("position-index") {
                (flips_per_file / 4).max(2)
            } else {
                flips_per_file
            };
            // Evenly spaced offsets, plus random ones in the first 512 KiB where sled's
            // segments start (and fjall's journal's batches).
            let mut offsets: Vec<usize> = (0..flips / 2)
                .map(|i| i * len / (flips / 2).max(1))
                .collect();
            offsets.extend((0..flips / 2).map(|_| (noise.next() as usize) % len.min(512 * 1024)));
            let before = (tally.refused_at_open, tally.harmless);
            for offset in offsets {
                let copy = root.path().join("copy");
                let _ = std::fs::remove_dir_all(&copy);
                copy_dir(&pristine, &copy);
                let target = copy.join(&relative);
                let mut bytes = std::fs::read(&target).unwrap();
                bytes[offset] ^= 1 << (noise.next() % 8);
                std::fs::write(&target, &bytes).unwrap();
                let what = format!("compress={compress}, {} byte {offset}", relative.display());
                if open_damaged(&copy, compress, &expected, &what) {
                    tally.harmless += 1;
                } else {
                    tally.refused_at_open += 1;
                }
            }
            eprintln!(
                "  {} ({len} bytes): {} refused at open, {} harmless",
                relative.display(),
                tally.refused_at_open - before.0,
                tally.harmless - before.1
            );
        }
        eprintln!("byte flips (compression {compress}): {tally:?}");
        assert!(tally.refused_at_open > 0, "no flip was detected: {tally:?}");
    }
}

/// A `db` that lost its data (or was replaced by an older copy) opens as a shorter log in
/// sled; the store refuses it, naming the missing positions.
#[tokio::test]
async fn a_log_shorter_than_what_was_acknowledged_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let old = root.path().join("old");
    fill(&dir, false, 10).await;
    copy_dir(&dir, &old);
    let expected = fill(&dir, false, 10).await;

    // An older copy of sled's files under the newer acknowledgement record.
    for name in ["db", "conf"] {
        std::fs::copy(old.join(name), dir.join(name)).unwrap();
    }
    let err = EventStore::open(config(&dir, false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("acknowledged up to position {}", expected.len())),
        "{err}"
    );

    // A `db` emptied by a lost write.
    std::fs::write(dir.join("db"), b"").unwrap();
    let err = EventStore::open(config(&dir, false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("keyplan recover"), "{err}");
}

/// sled's `conf` is written without fsync and is often empty after a power cut; the log's
/// settings come from Keyplan's own file, so an uncompressed log still opens with the default
/// (compressed) configuration.
#[tokio::test]
async fn a_lost_sled_conf_does_not_change_how_the_log_is_read() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let expected = fill(&dir, false, 20).await;
    std::fs::write(dir.join("conf"), b"").unwrap();
    let store = EventStore::open(config(&dir, true)).unwrap();
    let all = store
        .read_all(0, usize::MAX, &EventFilter::default())
        .unwrap();
    assert_eq!(all.events, expected);
    drop(store);

    // A directory written before the settings file existed: its settings come from `conf`.
    std::fs::remove_file(dir.join(settings::SETTINGS_FILE)).unwrap();
    std::fs::remove_file(dir.join(acknowledged::ACKNOWLEDGED_FILE)).unwrap();
    let store = EventStore::open(config(&dir, true)).unwrap();
    assert_eq!(store.head(), expected.len() as u64);
    drop(store);
    assert_eq!(
        settings::LogSettings::load(&dir).unwrap(),
        Some(settings::LogSettings {
            compression: false,
            segment_size: settings::SEGMENT_SIZE
        })
    );

    // ... but with neither file nor a readable conf, the store cannot tell and says so.
    std::fs::remove_file(dir.join(settings::SETTINGS_FILE)).unwrap();
    std::fs::write(dir.join("conf"), b"").unwrap();
    let err = EventStore::open(config(&dir, true))
        .unwrap_err()
        .to_string();
    assert!(err.contains("how the log was created"), "{err}");
}

/// The largest events the store accepts, uncompressed and incompressible, written in batches
/// big enough for sled to merge many records into a leaf: no page becomes a blob file (which
/// sled writes without fsync). An event over the limit is refused and stores nothing.
#[tokio::test]
async fn no_page_of_a_new_log_becomes_a_blob_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let store = EventStore::open(config(&dir, false)).unwrap();
    let stream = StreamId::new("acme", "globex");
    let mut noise = Noise(42);
    let largest = {
        let probe = request(&stream, vec![event(Vec::new())]);
        layout::MAX_EVENT_BYTES - probe.encoded_size_bound(&probe.events[0])
    };
    for round in 0..6 {
        // Large single events, then many small ones that fill 48 KiB records.
        let big = (0..20).map(|_| event(noise.bytes(largest))).collect();
        store.append(request(&stream, big)).await.unwrap();
        let small = (0..400).map(|_| event(noise.bytes(1_500))).collect();
        store.append(request(&stream, small)).await.unwrap();
        let blobs = std::fs::read_dir(dir.join("blobs")).unwrap().count();
        assert_eq!(blobs, 0, "round {round}: sled wrote {blobs} blob files");
    }
    let head = store.head();
    let err = store
        .append(request(&stream, vec![event(noise.bytes(largest + 1))]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EventTooLarge { .. }), "{err}");
    assert_eq!(store.head(), head);
    drop(store);
    let store = EventStore::open(config(&dir, false)).unwrap();
    assert_eq!(store.head(), head);
    assert_eq!(
        store.verify_stream(&stream).unwrap().first_broken_version,
        None
    );
}
