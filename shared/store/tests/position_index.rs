//! The position index (where event ids and stream versions sit in the log, kept on disk
//! beside sled's files) is derived data: a store whose index was lost, left behind by a
//! crash, or taken from another log, opens with the same streams, the same reads and the same
//! answers to retries as one that closed cleanly.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::copy_dir;
use keyplan_store::*;
use uuid::Uuid;

const INDEX_DIR: &str = "position-index";

fn open(dir: &Path) -> EventStore {
    EventStore::open(StoreConfig::new(dir)).unwrap()
}

fn request(stream: &StreamId, ids: &[Uuid]) -> AppendRequest {
    AppendRequest {
        stream: stream.clone(),
        expected: ExpectedVersion::Any,
        events: ids
            .iter()
            .map(|id| ProposedEvent {
                event_id: *id,
                event_type: "InteractionLogged".into(),
                schema_version: 2,
                occurred_at_micros: 1_700_000_000_000_000,
                payload: id.as_bytes().to_vec(),
            })
            .collect(),
        metadata: AppendMetadata {
            actor: "dana".into(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            idempotency_key: None,
        },
    }
}

fn streams() -> [StreamId; 3] {
    [
        StreamId::new("acme", "a"),
        StreamId::new("acme", "ab"),
        StreamId::new("globex", "a"),
    ]
}

/// Appends `appends` requests of 1-3 events over three streams; returns each request's ids
/// and outcome.
async fn fill(store: &EventStore, appends: usize) -> Vec<(StreamId, Vec<Uuid>, AppendOutcome)> {
    let mut out = Vec::new();
    for i in 0..appends {
        let stream = streams()[i % 3].clone();
        let ids: Vec<Uuid> = (0..1 + i % 3).map(|_| Uuid::now_v7()).collect();
        let outcome = store.append(request(&stream, &ids)).await.unwrap();
        out.push((stream, ids, outcome));
    }
    out
}

/// Every stream reads back whole, both ways and in pages, its chain verifies, and every
/// append retried by its event ids is answered with its first outcome.
async fn check(store: &EventStore, appended: &[(StreamId, Vec<Uuid>, AppendOutcome)]) {
    let head = store.head();
    let all = store
        .read_all(0, usize::MAX, &EventFilter::default())
        .unwrap();
    assert_eq!(all.events.len() as u64, head);
    for stream in streams() {
        let expected: Vec<&RecordedEvent> =
            all.events.iter().filter(|e| e.stream == stream).collect();
        let forward = store
            .read_stream(&stream, 0, Direction::Forward, usize::MAX)
            .unwrap();
        assert_eq!(
            forward.events.iter().collect::<Vec<_>>(),
            expected,
            "{stream}"
        );
        let backward = store
            .read_stream(&stream, 0, Direction::Backward, 2)
            .unwrap();
        let last_two: Vec<&RecordedEvent> = expected.iter().rev().take(2).copied().collect();
        assert_eq!(
            backward.events.iter().collect::<Vec<_>>(),
            last_two,
            "{stream}"
        );
        let page = store
            .read_stream(&stream, 3, Direction::Forward, 4)
            .unwrap();
        assert_eq!(
            page.events.iter().collect::<Vec<_>>(),
            expected[2..6].to_vec()
        );
        assert_eq!(page.next_version, Some(7));
        let report = store.verify_stream(&stream).unwrap();
        assert_eq!(report.first_broken_version, None, "{}", report.detail);
        assert_eq!(report.events_checked, expected.len() as u64);
    }
    for (stream, ids, first) in appended {
        let again = store.append(request(stream, ids)).await.unwrap();
        assert!(again.deduplicated, "a retry of {ids:?} was stored again");
        assert_eq!(
            (
                again.first_version,
                again.last_version,
                again.first_position,
                again.last_position
            ),
            (
                first.first_version,
                first.last_version,
                first.first_position,
                first.last_position
            )
        );
    }
    // A request mixing stored and new ids is neither a retry nor new.
    let (stream, ids, _) = &appended[0];
    let mixed = store
        .append(request(stream, &[ids[0], Uuid::now_v7()]))
        .await;
    assert!(
        matches!(mixed, Err(StoreError::EventIdConflict(_))),
        "{mixed:?}"
    );
    assert_eq!(store.head(), head, "a retry stored something");
}

#[tokio::test]
async fn a_lost_position_index_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let appended = {
        let store = open(dir.path());
        let appended = fill(&store, 60).await;
        store.close();
        appended
    };
    std::fs::remove_dir_all(dir.path().join(INDEX_DIR)).unwrap();
    let store = open(dir.path());
    check(&store, &appended).await;
    store.close();
    drop(store);
    // And the rebuilt index serves the next open as well.
    let store = open(dir.path());
    check(&store, &appended).await;
}

#[tokio::test]
async fn an_index_that_lost_its_newest_entries_in_a_crash_is_brought_up_to_date_at_open() {
    let root = tempfile::tempdir().unwrap();
    let (dir, crashed) = (root.path().join("store"), root.path().join("crashed"));
    let mut appended = {
        let store = open(&dir);
        let appended = fill(&store, 30).await;
        store.close();
        appended
    };
    // The index as it was synced and marked when the store closed.
    let synced_index = root.path().join("synced-index");
    copy_dir(&dir.join(INDEX_DIR), &synced_index);
    let store = open(&dir);
    appended.extend(fill(&store, 30).await);
    // A crash: the log holds every acknowledged append (each was synced); the index, written
    // without a sync, lost everything after its mark.
    copy_dir(&dir, &crashed);
    store.close();
    std::fs::remove_dir_all(crashed.join(INDEX_DIR)).unwrap();
    copy_dir(&synced_index, &crashed.join(INDEX_DIR));
    let reopened = open(&crashed);
    check(&reopened, &appended).await;
}

#[tokio::test]
async fn an_index_taken_from_another_log_is_not_used() {
    // Another log's index, marked at a position this log does not reach (a longer log), or
    // at one where this log holds another event (a shorter one).
    for other_appends in [90, 15] {
        let root = tempfile::tempdir().unwrap();
        let (one, other) = (root.path().join("one"), root.path().join("other"));
        let appended = {
            let store = open(&one);
            let appended = fill(&store, 45).await;
            store.close();
            appended
        };
        {
            let store = open(&other);
            fill(&store, other_appends).await;
            store.close();
        }
        std::fs::remove_dir_all(one.join(INDEX_DIR)).unwrap();
        copy_dir(&other.join(INDEX_DIR), &one.join(INDEX_DIR));
        let store = open(&one);
        check(&store, &appended).await;
    }
}

/// Appends one request of `events` new events to `stream`, recording it for [`check`].
async fn append_to(
    store: &EventStore,
    stream: &StreamId,
    events: usize,
    appended: &mut Vec<(StreamId, Vec<Uuid>, AppendOutcome)>,
) {
    let ids: Vec<Uuid> = (0..events).map(|_| Uuid::now_v7()).collect();
    let outcome = store.append(request(stream, &ids)).await.unwrap();
    appended.push((stream.clone(), ids, outcome));
}

#[tokio::test]
async fn entries_written_after_the_mark_by_another_history_of_the_log_do_not_outlive_it() {
    let root = tempfile::tempdir().unwrap();
    let (original, diverged) = (root.path().join("original"), root.path().join("diverged"));
    let stale_index = root.path().join("stale-index");
    let [a, ab, _] = streams();
    // A common history, closed cleanly: the index is marked at its end.
    let prefix = {
        let store = open(&original);
        let appended = fill(&store, 30).await;
        store.close();
        appended
    };
    copy_dir(&original, &diverged);
    // The original goes on with single-event appends, and crashes: its index holds runs
    // after its mark.
    {
        let store = open(&original);
        let mut ignored = Vec::new();
        for _ in 0..5 {
            append_to(&store, &ab, 1, &mut ignored).await;
        }
        for _ in 0..5 {
            append_to(&store, &a, 1, &mut ignored).await;
        }
        copy_dir(&original.join(INDEX_DIR), &stale_index);
        store.close();
    }
    // The other history puts other events at those positions: a's five first, in one append.
    let mut appended = prefix;
    {
        let store = open(&diverged);
        append_to(&store, &a, 5, &mut appended).await;
        append_to(&store, &ab, 5, &mut appended).await;
        store.close();
    }
    // Its log, with the crashed original's index: the mark fits (the common history), the
    // runs after it do not.
    std::fs::remove_dir_all(diverged.join(INDEX_DIR)).unwrap();
    copy_dir(&stale_index, &diverged.join(INDEX_DIR));
    let store = open(&diverged);
    check(&store, &appended).await;
}
