//! The alert evaluator as time passes: with no new event, a new UTC day re-evaluates every
//! account and raises what the date turned due, and nothing raised before is raised again.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyplan_compliance_service::alerts::{
    Alert, AlertEvaluator, AlertHub, AlertKind, AlertRecord, AlertSubject, TREE,
};
use keyplan_compliance_service::ComplianceProjection;
use keyplan_domain::values::Timestamp;
use keyplan_projection::{EventSource, Projection, ProjectionRunner, ReadModelDb};
use keyplan_store::{EventStore, StoreConfig};
use keyplan_testkit::{at, globex};
use tokio::sync::broadcast;

/// Every alert received until none came for `quiet`.
async fn drain(alerts: &mut broadcast::Receiver<Arc<Alert>>, quiet: Duration) -> Vec<Alert> {
    let mut out = Vec::new();
    while let Ok(Ok(alert)) = tokio::time::timeout(quiet, alerts.recv()).await {
        out.push((*alert).clone());
    }
    out
}

fn rule_of(alert: &Alert) -> &str {
    match &alert.subject {
        AlertSubject::Rule { rule_id, .. } => rule_id,
        AlertSubject::Review { .. } => "",
    }
}

#[tokio::test]
async fn a_new_day_raises_what_it_made_due_and_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    let db = ReadModelDb::open(dir.path().join("read-models"), 8 << 20).unwrap();
    let projection = ComplianceProjection::default();
    let (runner, handle) =
        ProjectionRunner::open(&db, projection.clone(), EventSource::Local(store.clone())).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(runner.with_shutdown(stopped.clone()).run());
    // The Globex year straight into the projection (its recorded times are in 2025, which a
    // live log cannot produce); the empty log means the projection is caught up.
    for event in globex::events() {
        projection.apply(&event);
    }

    let now = Arc::new(AtomicI64::new(at(2025, 1, 20, 12).0));
    let clock = {
        let now = now.clone();
        Arc::new(move || Timestamp(now.load(Ordering::SeqCst)))
    };
    let hub = AlertHub::default();
    let mut alerts = hub.subscribe();
    let evaluator = AlertEvaluator::new(
        projection.clone(),
        handle,
        EventSource::Local(store),
        AlertRecord::new(db.open_tree(TREE).unwrap()),
        hub,
    )
    .with_clock(clock, Duration::from_millis(20));
    let evaluating = tokio::spawn(evaluator.run(stopped));

    // 2025-01-20 (the whole year is applied, but as happened by Jan 20): r-coach, set on
    // Jan 2 every 21 days, is not due until Jan 23.
    let first = drain(&mut alerts, Duration::from_millis(500)).await;
    assert!(first.iter().all(|a| rule_of(a) != "r-coach"), "{first:#?}");
    // Time passes, no event arrives: on Jan 25 r-coach is never met, 2 days past due.
    now.store(at(2025, 1, 25, 12).0, Ordering::SeqCst);
    let second = drain(&mut alerts, Duration::from_millis(500)).await;
    let coach: Vec<&Alert> = second.iter().filter(|a| rule_of(a) == "r-coach").collect();
    assert_eq!(coach.len(), 1, "{second:#?}");
    assert_eq!(coach[0].kind, AlertKind::RuleNeverMet);
    assert_eq!(coach[0].days_overdue, 2);
    // The same day again, and the next: nothing already raised comes again.
    now.store(at(2025, 1, 25, 18).0, Ordering::SeqCst);
    let same_day = drain(&mut alerts, Duration::from_millis(300)).await;
    assert!(same_day.is_empty(), "{same_day:#?}");
    now.store(at(2025, 1, 26, 12).0, Ordering::SeqCst);
    let next_day = drain(&mut alerts, Duration::from_millis(500)).await;
    let ids: Vec<String> = first
        .iter()
        .chain(&second)
        .chain(&next_day)
        .map(Alert::id)
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:#?}");

    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), evaluating)
        .await
        .expect("the evaluator stops on shutdown")
        .unwrap();
}
