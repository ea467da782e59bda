//! The event store against real sled files in a temp dir.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use keyplan_store::*;
use uuid::Uuid;

fn open(dir: &std::path::Path) -> EventStore {
    EventStore::open(StoreConfig::new(dir)).unwrap()
}

fn event(n: u8) -> ProposedEvent {
    ProposedEvent {
        event_id: Uuid::now_v7(),
        event_type: "InteractionLogged".into(),
        schema_version: 2,
        occurred_at_micros: 1_700_000_000_000_000,
        payload: vec![n; 40],
    }
}

fn append(
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<ProposedEvent>,
    key: Option<&str>,
) -> AppendRequest {
    AppendRequest {
        stream: stream.clone(),
        expected,
        events,
        metadata: AppendMetadata {
            actor: "dana".into(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            idempotency_key: key.map(str::to_owned),
        },
    }
}

#[tokio::test]
async fn appends_versions_and_positions_are_consecutive_and_gapless() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = StreamId::new("acme", "globex");
    let b = StreamId::new("acme", "initech");
    let o1 = store
        .append(append(
            &a,
            ExpectedVersion::NoStream,
            vec![event(1), event(2)],
            None,
        ))
        .await
        .unwrap();
    assert_eq!(
        (
            o1.first_version,
            o1.last_version,
            o1.first_position,
            o1.last_position
        ),
        (1, 2, 1, 2)
    );
    let o2 = store
        .append(append(&b, ExpectedVersion::NoStream, vec![event(3)], None))
        .await
        .unwrap();
    assert_eq!((o2.first_version, o2.first_position), (1, 3));
    let o3 = store
        .append(append(&a, ExpectedVersion::Exact(2), vec![event(4)], None))
        .await
        .unwrap();
    assert_eq!((o3.first_version, o3.first_position), (3, 4));

    let slice = store.read_stream(&a, 0, Direction::Forward, 100).unwrap();
    assert_eq!(slice.stream_version, 3);
    assert_eq!(
        slice
            .events
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        slice
            .events
            .iter()
            .map(|e| e.global_position)
            .collect::<Vec<_>>(),
        vec![1, 2, 4]
    );
    assert_eq!(slice.events[2].payload, vec![4; 40]);
    let back = store.read_stream(&a, 0, Direction::Backward, 2).unwrap();
    assert_eq!(
        back.events
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![3, 2]
    );
    assert_eq!(back.next_version, Some(1));

    let all = store.read_all(0, 100, &EventFilter::default()).unwrap();
    assert_eq!(
        all.events
            .iter()
            .map(|e| e.global_position)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let only_b = store
        .read_all(
            0,
            100,
            &EventFilter {
                tenant: Some("acme".into()),
                stream: Some("initech".into()),
                event_types: vec![],
            },
        )
        .unwrap();
    assert_eq!(only_b.events.len(), 1);
    assert_eq!(
        store.list_streams("acme").unwrap(),
        vec!["globex".to_string(), "initech".to_string()]
    );
}

#[tokio::test]
async fn wrong_expected_version_reports_the_current_version_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = StreamId::new("acme", "globex");
    store
        .append(append(&a, ExpectedVersion::NoStream, vec![event(1)], None))
        .await
        .unwrap();
    let err = store
        .append(append(&a, ExpectedVersion::NoStream, vec![event(2)], None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::WrongExpectedVersion { current: 1, .. }),
        "{err:?}"
    );
    let err = store
        .append(append(&a, ExpectedVersion::Exact(5), vec![event(2)], None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::WrongExpectedVersion { current: 1, .. }),
        "{err:?}"
    );
    assert_eq!(store.head(), 1);
}

#[tokio::test]
async fn retries_by_key_or_event_ids_return_the_original_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = StreamId::new("acme", "globex");
    let events = vec![event(1), event(2)];
    let first = store
        .append(append(
            &a,
            ExpectedVersion::Any,
            events.clone(),
            Some("req-1"),
        ))
        .await
        .unwrap();
    // Same key, new event ids (a client that regenerates ids on retry).
    let again = store
        .append(append(
            &a,
            ExpectedVersion::Any,
            vec![event(9)],
            Some("req-1"),
        ))
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(
        (
            again.first_position,
            again.last_position,
            again.event_ids.clone()
        ),
        (1, 2, first.event_ids.clone())
    );
    // Same event ids, no key.
    let by_ids = store
        .append(append(&a, ExpectedVersion::Any, events.clone(), None))
        .await
        .unwrap();
    assert!(by_ids.deduplicated);
    assert_eq!((by_ids.first_version, by_ids.last_version), (1, 2));
    // Key reused on another stream.
    let b = StreamId::new("acme", "initech");
    let err = store
        .append(append(
            &b,
            ExpectedVersion::Any,
            vec![event(3)],
            Some("req-1"),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyKeyReused { .. }));
    // Partially stored ids.
    let err = store
        .append(append(
            &a,
            ExpectedVersion::Any,
            vec![events[0].clone(), event(5)],
            None,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EventIdConflict(_)));
    assert_eq!(store.head(), 2);

    // Still a retry after a restart: the indexes are rebuilt from the log.
    drop(store);
    let store = open(dir.path());
    let after = store
        .append(append(
            &a,
            ExpectedVersion::Any,
            vec![event(7)],
            Some("req-1"),
        ))
        .await
        .unwrap();
    assert!(after.deduplicated);
    assert_eq!(after.event_ids, first.event_ids);
    assert_eq!(store.head(), 2);
}

#[tokio::test]
async fn concurrent_appends_with_the_same_expected_version_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = StreamId::new("acme", "globex");
    store
        .append(append(&a, ExpectedVersion::NoStream, vec![event(0)], None))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..32u8 {
        let store = store.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(append(&a, ExpectedVersion::Exact(1), vec![event(n)], None))
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::WrongExpectedVersion { current: 2, .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.stream_version(&a).unwrap(), 2);
}

#[tokio::test]
async fn many_concurrent_appenders_commit_gapless_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut tasks = Vec::new();
    for client in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = StreamId::new("acme", format!("account-{client}"));
            for i in 0..50u8 {
                let events = (0..(i % 3 + 1)).map(|_| event(i)).collect();
                store
                    .append(append(&s, ExpectedVersion::Any, events, None))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = store.head();
    let all = store.read_all(0, 100_000, &EventFilter::default()).unwrap();
    assert_eq!(all.events.len() as u64, head);
    assert!(all
        .events
        .iter()
        .enumerate()
        .all(|(i, e)| e.global_position == i as u64 + 1));
    drop(all);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.head(), head);
    for client in 0..16 {
        let s = StreamId::new("acme", format!("account-{client}"));
        let report = store.verify_stream(&s).unwrap();
        assert_eq!(report.first_broken_version, None, "{}", report.detail);
    }
}

/// sled cannot change compression on an existing database: a log keeps the setting it was
/// created with, whatever the config says when it is reopened, and stays readable.
#[tokio::test]
async fn a_log_keeps_the_compression_it_was_created_with() {
    let assert_created_with = |dir: &std::path::Path, compressed: bool| {
        let conf = String::from_utf8_lossy(&std::fs::read(dir.join("conf")).unwrap()).into_owned();
        assert!(
            conf.contains(&format!("use_compression: {compressed}")),
            "{conf}"
        );
    };
    for created_compressed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let config = |compress_new_log| StoreConfig {
            compress_new_log,
            ..StoreConfig::new(dir.path())
        };
        let store = EventStore::open(config(created_compressed)).unwrap();
        let s = StreamId::new("acme", "globex");
        let events = (0..20).map(event).collect();
        store
            .append(append(&s, ExpectedVersion::NoStream, events, None))
            .await
            .unwrap();
        drop(store);
        assert_created_with(dir.path(), created_compressed);

        // Reopened with the opposite setting: it opens, with the setting it was created with.
        let store = EventStore::open(config(!created_compressed)).unwrap();
        assert_eq!(store.head(), 20);
        let all = store.read_all(0, 100, &EventFilter::default()).unwrap();
        assert_eq!(all.events[19].payload, vec![19; 40]);
        assert_eq!(store.verify_stream(&s).unwrap().first_broken_version, None);
        drop(store);
        assert_created_with(dir.path(), created_compressed);
    }
}

#[tokio::test]
async fn verify_names_the_first_tampered_version() {
    let dir = tempfile::tempdir().unwrap();
    let a = StreamId::new("acme", "globex");
    {
        let store = open(dir.path());
        for i in 0..5 {
            store
                .append(append(&a, ExpectedVersion::Any, vec![event(i)], None))
                .await
                .unwrap();
        }
        assert_eq!(store.verify_stream(&a).unwrap().first_broken_version, None);
        store.close();
    }
    keyplan_store::tamper::flip_payload_byte(dir.path(), 3).unwrap();
    let store = open(dir.path());
    let report = store.verify_stream(&a).unwrap();
    assert_eq!(report.first_broken_version, Some(3), "{}", report.detail);
    assert!(report.detail.contains("altered"), "{}", report.detail);
}

#[tokio::test]
async fn subscription_catches_up_then_follows_live_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = StreamId::new("acme", "globex");
    for i in 0..100 {
        store
            .append(append(&a, ExpectedVersion::Any, vec![event(i)], None))
            .await
            .unwrap();
    }
    let mut sub = store.subscribe(1, EventFilter::default());
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for c in 0..4 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let s = StreamId::new("acme", format!("live-{c}"));
                    for i in 0..100 {
                        store
                            .append(append(&s, ExpectedVersion::Any, vec![event(i)], None))
                            .await
                            .unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    let mut seen = HashSet::new();
    let mut expected = 1;
    while expected <= 500 {
        let e = sub.next().await.unwrap().unwrap();
        assert_eq!(e.global_position, expected);
        assert!(seen.insert(e.event_id));
        expected += 1;
    }
    writer.await.unwrap();
    assert_eq!(store.head(), 500);
}
