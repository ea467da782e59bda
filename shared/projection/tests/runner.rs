//! The projection runner over a real local log and real sled files.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyplan_domain::codec;
use keyplan_domain::events::{AccountEvent, AccountRegistered};
use keyplan_domain::values::Tier;
use keyplan_projection::runner::RESERVED_PREFIX;
use keyplan_projection::{
    EventSource, ProjectedEvent, Projection, ProjectionError, ProjectionRunner,
};
use keyplan_store::{
    AppendMetadata, AppendRequest, EventStore, ExpectedVersion, ProposedEvent, StoreConfig,
    StreamId,
};

/// Counts per account, and the accounts touched since the last flush.
type CountState = (BTreeMap<String, u64>, Vec<String>);

/// Counts events per account, persisted as one key per account.
#[derive(Clone, Default)]
struct Counts {
    inner: Arc<Mutex<CountState>>,
    /// What [`Projection::format`] says (0: the default).
    format: u32,
}

impl Counts {
    fn get(&self) -> BTreeMap<String, u64> {
        self.inner.lock().unwrap().0.clone()
    }
}

impl Projection for Counts {
    fn name(&self) -> &'static str {
        "counts"
    }
    fn format(&self) -> u32 {
        if self.format == 0 {
            1
        } else {
            self.format
        }
    }
    fn load(&self, tree: &keyplan_projection::Tree) -> Result<(), ProjectionError> {
        let mut inner = self.inner.lock().unwrap();
        inner.0.clear();
        for entry in tree.iter() {
            let (k, v) = entry?;
            if k.first() == Some(&RESERVED_PREFIX) {
                continue;
            }
            inner.0.insert(
                String::from_utf8(k.to_vec()).unwrap(),
                u64::from_be_bytes(v.as_ref().try_into().unwrap()),
            );
        }
        Ok(())
    }
    fn apply(&self, event: &ProjectedEvent) {
        let mut inner = self.inner.lock().unwrap();
        *inner.0.entry(event.account.clone()).or_default() += 1;
        inner.1.push(event.account.clone());
    }
    fn adopt(&self, rebuilt: Self) -> bool {
        let state = std::mem::take(&mut *rebuilt.inner.lock().unwrap());
        *self.inner.lock().unwrap() = state;
        true
    }
    fn flush(&self, batch: &mut keyplan_projection::Batch) -> Result<(), ProjectionError> {
        let mut inner = self.inner.lock().unwrap();
        let dirty: Vec<String> = inner.1.drain(..).collect();
        for account in dirty {
            let n = inner.0[&account];
            batch.insert(account.as_bytes(), n.to_be_bytes());
        }
        Ok(())
    }
}

/// Opens the database again after a drop in this process, waiting for its background threads
/// to let go of the file lock.
fn reopen(path: &std::path::Path) -> keyplan_projection::ReadModelDb {
    for _ in 0..50 {
        if let Ok(db) = keyplan_projection::ReadModelDb::open(path, 64 << 20) {
            return db;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    keyplan_projection::ReadModelDb::open(path, 64 << 20).unwrap()
}

async fn append(store: &EventStore, account: &str, n: usize) {
    for _ in 0..n {
        let encoded = codec::encode(&AccountEvent::AccountRegistered(AccountRegistered {
            name: "x".into(),
            industry: "x".into(),
            region: "x".into(),
            headquarters: "x".into(),
            tier: Tier::Key,
        }));
        store
            .append(AppendRequest {
                stream: StreamId::new("acme", account),
                expected: ExpectedVersion::Any,
                events: vec![ProposedEvent {
                    event_id: uuid::Uuid::now_v7(),
                    event_type: encoded.event_type.into(),
                    schema_version: encoded.schema_version,
                    occurred_at_micros: 0,
                    payload: encoded.payload,
                }],
                metadata: AppendMetadata {
                    actor: "t".into(),
                    ..Default::default()
                },
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn state_and_checkpoint_survive_a_reopen_and_nothing_is_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    append(&store, "a", 30).await;
    append(&store, "b", 20).await;

    let db_path = dir.path().join("projections");
    {
        let db = keyplan_projection::ReadModelDb::open(&db_path, 64 << 20).unwrap();
        let counts = Counts::default();
        let (mut runner, handle) =
            ProjectionRunner::open(&db, counts.clone(), EventSource::Local(store.clone())).unwrap();
        runner.run_until(40).await.unwrap();
        assert_eq!(handle.position(), 40);
        assert_eq!(
            counts.get(),
            BTreeMap::from([("a".into(), 30), ("b".into(), 10)])
        );
    }
    append(&store, "a", 5).await;
    {
        let db = reopen(&db_path);
        let counts = Counts::default();
        let (runner, handle) =
            ProjectionRunner::open(&db, counts.clone(), EventSource::Local(store.clone())).unwrap();
        assert_eq!(
            handle.position(),
            40,
            "the checkpoint was committed with the state"
        );
        assert_eq!(
            counts.get(),
            BTreeMap::from([("a".into(), 30), ("b".into(), 10)])
        );
        // Live: the runner follows new appends.
        tokio::spawn(runner.run());
        append(&store, "c", 3).await;
        assert!(handle.wait_for(58, Duration::from_secs(10)).await);
        assert_eq!(
            counts.get(),
            BTreeMap::from([("a".into(), 35), ("b".into(), 20), ("c".into(), 3)])
        );
    }
}

/// A build that stores its state in a new format rebuilds it from the log at its first start,
/// once, instead of stopping on state it cannot read; a tree from before formats were
/// recorded counts as format 1.
#[tokio::test]
async fn state_stored_in_another_format_is_rebuilt_from_the_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    append(&store, "a", 6).await;
    append(&store, "b", 4).await;
    let db =
        keyplan_projection::ReadModelDb::open(dir.path().join("projections"), 64 << 20).unwrap();
    let open = |format: u32| {
        let counts = Counts {
            format,
            ..Counts::default()
        };
        let (runner, handle) =
            ProjectionRunner::open(&db, counts.clone(), EventSource::Local(store.clone())).unwrap();
        (runner, handle, counts)
    };
    let (mut runner, _, _) = open(1);
    runner.run_until(8).await.unwrap();
    drop(runner);
    // Written before formats were recorded: no format key, still format 1.
    db.open_tree("counts").unwrap().remove(b"\0format").unwrap();
    let (runner, handle, counts) = open(1);
    assert_eq!(handle.position(), 8, "same format: kept");
    assert_eq!(counts.get()["a"], 6);
    drop(runner);

    let (mut runner, handle, counts) = open(2);
    assert_eq!(handle.position(), 0, "another format: forgotten");
    assert!(counts.get().is_empty());
    runner.run_until(10).await.unwrap();
    assert_eq!(
        counts.get(),
        BTreeMap::from([("a".into(), 6), ("b".into(), 4)])
    );
    drop(runner);
    let (_runner, handle, counts) = open(2);
    assert_eq!(handle.position(), 10, "rebuilt once, then kept");
    assert_eq!(counts.get()["b"], 4);
}

#[tokio::test]
async fn a_reset_projection_is_rebuilt_to_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    append(&store, "a", 10).await;
    append(&store, "b", 7).await;
    let db =
        keyplan_projection::ReadModelDb::open(dir.path().join("projections"), 64 << 20).unwrap();
    let incremental = Counts::default();
    let (mut runner, _) =
        ProjectionRunner::open(&db, incremental.clone(), EventSource::Local(store.clone()))
            .unwrap();
    for until in [3, 9, 12, 17] {
        runner.run_until(until).await.unwrap();
    }
    drop(runner);
    ProjectionRunner::<Counts>::reset(&db, "counts").unwrap();
    let rebuilt = Counts::default();
    let (mut runner, handle) =
        ProjectionRunner::open(&db, rebuilt.clone(), EventSource::Local(store.clone())).unwrap();
    assert_eq!(handle.position(), 0);
    runner.run_until(17).await.unwrap();
    assert_eq!(rebuilt.get(), incremental.get());
}

#[tokio::test]
async fn an_online_rebuild_swaps_in_an_equal_state_while_the_old_one_keeps_serving() {
    online_rebuild(|store| EventSource::Local(store.clone())).await;
}

/// As a node runs it: the serving generation on the node's shared feed, the rebuild on a feed
/// of its own.
#[tokio::test]
async fn an_online_rebuild_of_a_projection_on_a_shared_feed_swaps_in_an_equal_state() {
    online_rebuild(|store| EventSource::Local(store.clone()).shared()).await;
}

async fn online_rebuild(source: impl Fn(&EventStore) -> EventSource) {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    append(&store, "a", 300).await;
    let db =
        keyplan_projection::ReadModelDb::open(dir.path().join("projections"), 64 << 20).unwrap();
    let counts = Counts::default();
    let (runner, handle) = ProjectionRunner::open(&db, counts.clone(), source(&store)).unwrap();
    tokio::spawn(runner.run());
    assert!(handle.wait_for(300, Duration::from_secs(10)).await);

    let mut progress = handle.rebuild().unwrap();
    // Appends during the rebuild are applied to both generations.
    append(&store, "b", 50).await;
    let done = loop {
        let update = progress
            .recv()
            .await
            .expect("the rebuild reports until it is done");
        assert_eq!(update.error, None);
        if update.done {
            break update;
        }
    };
    assert!(done.position >= 300);
    assert!(handle.wait_for(350, Duration::from_secs(10)).await);
    assert_eq!(
        counts.get(),
        BTreeMap::from([("a".into(), 300), ("b".into(), 50)])
    );
    append(&store, "b", 1).await;
    assert!(handle.wait_for(351, Duration::from_secs(10)).await);
    assert_eq!(
        counts.get()["b"],
        51,
        "the swapped-in generation keeps following the log"
    );
    tokio::time::sleep(Duration::from_millis(700)).await; // let the runner commit

    // Opening the projection again (as after a restart) opens the new generation.
    let reopened = Counts::default();
    let (_runner, handle) = ProjectionRunner::open(&db, reopened.clone(), source(&store)).unwrap();
    assert_eq!(handle.position(), 351);
    assert_eq!(
        reopened.get(),
        BTreeMap::from([("a".into(), 300), ("b".into(), 51)])
    );
}

#[tokio::test]
async fn a_runner_told_to_shut_down_commits_what_it_applied_and_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    let db =
        keyplan_projection::ReadModelDb::open(dir.path().join("projections"), 64 << 20).unwrap();
    let counts = Counts::default();
    let (shutdown, stop) = tokio::sync::watch::channel(false);
    let (runner, handle) =
        ProjectionRunner::open(&db, counts.clone(), EventSource::Local(store.clone())).unwrap();
    let running = tokio::spawn(runner.with_shutdown(stop).run());
    append(&store, "a", 40).await;
    assert!(handle.wait_for(40, Duration::from_secs(10)).await);

    shutdown.send_replace(true);
    // The feed never ends by itself (the store stays open): only the signal ends the run.
    let outcome = tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("the runner returns promptly on shutdown")
        .unwrap();
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(handle.stopped(), None, "a shutdown is not a failure");

    let reopened = Counts::default();
    let (_runner, handle) =
        ProjectionRunner::open(&db, reopened.clone(), EventSource::Local(store.clone())).unwrap();
    assert_eq!(handle.position(), 40, "the checkpoint was committed");
    assert_eq!(reopened.get(), BTreeMap::from([("a".into(), 40)]));
}

/// Counts, but every commit fails: stands in for a full disk under the read models.
#[derive(Clone, Default)]
struct CannotCommit(Counts);

impl Projection for CannotCommit {
    fn name(&self) -> &'static str {
        "cannot-commit"
    }
    fn load(&self, tree: &keyplan_projection::Tree) -> Result<(), ProjectionError> {
        self.0.load(tree)
    }
    fn apply(&self, event: &ProjectedEvent) {
        self.0.apply(event);
    }
    fn flush(&self, _: &mut keyplan_projection::Batch) -> Result<(), ProjectionError> {
        Err(ProjectionError::Commit("no space left on device".into()))
    }
}

#[tokio::test]
async fn a_runner_that_stops_for_good_says_why_on_its_handle() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    append(&store, "a", 3).await;
    let db =
        keyplan_projection::ReadModelDb::open(dir.path().join("projections"), 64 << 20).unwrap();
    let (runner, handle) =
        ProjectionRunner::open(&db, CannotCommit::default(), EventSource::Local(store)).unwrap();
    let mut stopped = handle.watch_stopped();
    assert_eq!(handle.stopped(), None);
    let outcome = tokio::time::timeout(Duration::from_secs(5), runner.run())
        .await
        .expect("a failed commit stops the runner");
    assert!(outcome.is_err());
    let reason = stopped
        .wait_for(Option::is_some)
        .await
        .unwrap()
        .clone()
        .unwrap();
    assert!(reason.contains("no space left on device"), "{reason}");
    assert_eq!(handle.stopped(), Some(reason));
}

/// The positions a feed delivers next, `n` of them.
async fn positions(feed: &mut keyplan_projection::source::Feed, n: usize) -> Vec<u64> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed delivers within 10 s")
            .expect("the feed is open")
            .unwrap();
        got.push(event.position);
    }
    got
}

/// Asserts that the next events `feed` delivers are exactly those at `expected`, in order.
async fn expect_next(
    feed: &mut keyplan_projection::source::Feed,
    expected: std::ops::RangeInclusive<u64>,
) {
    let n = expected.clone().count();
    assert_eq!(positions(feed, n).await, expected.collect::<Vec<_>>());
}

#[tokio::test]
async fn a_shared_feed_gives_each_projection_every_event_once_from_its_own_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    append(&store, "a", 50).await;
    let source = EventSource::Local(store.clone()).shared();

    let mut ahead = source.open(21).await.unwrap();
    expect_next(&mut ahead, 21..=30).await;
    // A projection starting behind makes the feed read again from position 1: it gets every
    // event, and the one ahead none twice.
    let mut behind = source.open(1).await.unwrap();
    expect_next(&mut behind, 1..=50).await;
    expect_next(&mut ahead, 31..=50).await;

    // Both follow what is appended afterwards.
    append(&store, "b", 5).await;
    expect_next(&mut behind, 51..=55).await;
    expect_next(&mut ahead, 51..=55).await;
}

#[tokio::test]
async fn a_projection_that_drops_its_shared_feed_does_not_hold_the_others_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path().join("log"));
    config.fdatasync = false;
    let store = EventStore::open(config).unwrap();
    // More than a feed's buffer: a subscriber still counted after it is gone would stop the
    // shared feed once its buffer is full.
    let events = keyplan_projection::shared_feed::BUFFER + 100;
    append(&store, "a", events).await;
    let source = EventSource::Local(store.clone()).shared();

    let gone = source.open(1).await.unwrap();
    let mut reading = source.open(1).await.unwrap();
    drop(gone);
    let got = positions(&mut reading, events).await;
    assert_eq!(got.last(), Some(&(events as u64)));
}

#[tokio::test]
async fn projections_on_one_shared_feed_reach_the_state_of_projections_with_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    append(&store, "a", 40).await;
    append(&store, "b", 25).await;
    let own = Counts::default();
    let own_db = keyplan_projection::ReadModelDb::open(dir.path().join("own"), 64 << 20).unwrap();
    let (mut runner, _handle) =
        ProjectionRunner::open(&own_db, own.clone(), EventSource::Local(store.clone())).unwrap();
    runner.run_until(65).await.unwrap();

    // Two projections on one shared feed, one of them already at a checkpoint (30).
    let shared = EventSource::Local(store.clone()).shared();
    let resumed_db =
        keyplan_projection::ReadModelDb::open(dir.path().join("resumed"), 64 << 20).unwrap();
    {
        let (mut runner, _handle) =
            ProjectionRunner::open(&resumed_db, Counts::default(), shared.clone()).unwrap();
        runner.run_until(30).await.unwrap();
    }
    let resumed = Counts::default();
    let fresh = Counts::default();
    let fresh_db =
        keyplan_projection::ReadModelDb::open(dir.path().join("fresh"), 64 << 20).unwrap();
    let (resumed_runner, resumed_handle) =
        ProjectionRunner::open(&resumed_db, resumed.clone(), shared.clone()).unwrap();
    assert_eq!(resumed_handle.position(), 30);
    let (fresh_runner, fresh_handle) =
        ProjectionRunner::open(&fresh_db, fresh.clone(), shared.clone()).unwrap();
    tokio::spawn(resumed_runner.run());
    tokio::spawn(fresh_runner.run());
    append(&store, "c", 5).await;
    for handle in [&resumed_handle, &fresh_handle] {
        assert!(handle.wait_for(70, Duration::from_secs(10)).await);
    }
    let mut expected = own.get();
    expected.insert("c".into(), 5);
    assert_eq!(resumed.get(), expected);
    assert_eq!(fresh.get(), expected);
}
