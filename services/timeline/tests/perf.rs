//! Query latency at scale: 1,000,000 events over 2,000 accounts (500 each), then random pages.
//! A profiling harness for the projection alone (no gRPC): it prints timings and asserts only
//! that every page has entries; the timing targets are measured by keyplan-bench.
//!
//! Ignored by default (it takes a while in debug builds); run it with
//! `cargo test --release -p keyplan-timeline-service --test perf -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_domain::AccountEvent;
use keyplan_projection::{ProjectedEvent, Projection};
use keyplan_timeline_service::{Order, Scope, SubjectKey, TimelineProjection, TimelineQuery};

/// jemalloc, as in `keyplan`: with glibc's allocator, half of this harness's time after a
/// million entries was `_int_malloc` walking fragmented bins, which the node never sees.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Builds one of the measured queries.
type MakeQuery = fn() -> TimelineQuery;

const ACCOUNTS: u64 = 2_000;
const PER_ACCOUNT: u64 = 500;

/// A small deterministic generator (no dependency needed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn event(position: u64, account: u64, n: u64, rng: &mut Lcg) -> ProjectedEvent {
    let day = 86_400_000_000i64;
    let start = Timestamp(1_735_689_600_000_000); // 2025-01-01
    let stakeholders = ["cfo", "cto", "proc", "ops", "eng", "qa", "coach", "legal"];
    let people = ["dana", "lee", "sam", "eve"];
    let pid = |s: &str| PersonId::parse(s).unwrap();
    let sid = |s: &str| StakeholderId::parse(s).unwrap();
    let event: AccountEvent = match n {
        0 => AccountRegistered {
            name: format!("Customer {account}"),
            industry: "Chemicals".into(),
            region: "EMEA".into(),
            headquarters: "Rotterdam".into(),
            tier: Tier::Key,
        }
        .into(),
        1..=4 => TeamMemberAssigned {
            person_id: pid(people[n as usize - 1]),
            name: format!("Person {n}"),
            role: [
                TeamRole::KeyAccountManager,
                TeamRole::Sales,
                TeamRole::Service,
                TeamRole::ExecutiveSponsor,
            ][n as usize - 1],
        }
        .into(),
        5..=12 => StakeholderAdded {
            stakeholder_id: sid(stakeholders[n as usize - 5]),
            name: format!("Stakeholder {n}"),
            title: "Director".into(),
            reports_to: None,
            buying_role: BuyingRole::Influencer,
            influence: 3,
            attitude: Attitude::Neutral,
        }
        .into(),
        _ => InteractionLogged {
            interaction_id: InteractionId::parse(format!("i{n}")).unwrap(),
            details: InteractionDetails {
                // Mostly in order, some logged late (up to 10 days).
                occurred_at: Timestamp(
                    start.0 + n as i64 * day / 2 - (rng.next() % 10) as i64 * day,
                ),
                channel: Channel::PhoneCall,
                stakeholders: vec![sid(stakeholders[(rng.next() % 8) as usize])],
                participants: vec![pid(people[(rng.next() % 4) as usize])],
                summary: "Quarterly pricing and supply outlook".into(),
                sentiment: Sentiment::Positive,
                next_step: "Send the proposal".into(),
                opportunity_id: None,
            },
        }
        .into(),
    };
    let occurred_at = match &event {
        AccountEvent::InteractionLogged(e) => e.details.occurred_at,
        _ => start,
    };
    ProjectedEvent {
        position,
        event_id: uuid::Uuid::from_u64_pair(account, position),
        tenant: "acme".into(),
        account: format!("a{account}"),
        stream_version: n + 1,
        recorded_at: Timestamp(start.0 + n as i64 * day / 2),
        occurred_at,
        actor: people[(n % 4) as usize].into(),
        event,
    }
}

fn p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

#[test]
#[ignore = "1M events: run in release with --ignored"]
fn pages_stay_under_a_millisecond_at_a_million_events() {
    let projection = TimelineProjection::default();
    let dir = tempfile::tempdir().unwrap();
    // A small page cache, so that the resident size below is mostly the projection's.
    let db = keyplan_projection::ReadModelDb::open(dir.path(), 16 << 20).unwrap();
    let tree = db.open_tree("timeline").unwrap();
    projection.load(&tree).unwrap();
    let mut rng = Lcg(42);
    let started = Instant::now();
    // Interleaved, as accounts are in a real log; flushed every 100,000 events as the runner
    // would under load (it flushes at most every 500 ms).
    let mut position = 0;
    let mut flushing = Duration::ZERO;
    for n in 0..PER_ACCOUNT {
        for account in 0..ACCOUNTS {
            position += 1;
            projection.apply(&event(position, account, n, &mut rng));
            if position % 100_000 == 0 {
                let t = Instant::now();
                let mut batch = keyplan_projection::Batch::default();
                projection.flush(&mut batch).unwrap();
                tree.apply_batch(batch).unwrap();
                flushing += t.elapsed();
            }
        }
    }
    let applied = started.elapsed();
    println!("of which flushing (10 flushes): {flushing:?}");
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    println!("after apply: {rss}");
    println!(
        "applied {position} events in {applied:?} ({:.0}/s)",
        position as f64 / applied.as_secs_f64(),
    );
    let reloaded = TimelineProjection::default();
    let t = Instant::now();
    reloaded.load(&tree).unwrap();
    println!("reloaded from the store in {:?}", t.elapsed());
    drop(reloaded);

    let queries: Vec<(&str, MakeQuery)> = vec![
        ("account, newest first, 50", || {
            TimelineQuery::new(Scope::Account)
        }),
        ("account, oldest first, 500", || {
            let mut q = TimelineQuery::new(Scope::Account).with_page_size(500);
            q.order = Order::OldestFirst;
            q
        }),
        ("stakeholder cto, 50", || {
            TimelineQuery::new(Scope::Subject(SubjectKey::Stakeholder(
                StakeholderId::parse("cto").unwrap(),
            )))
        }),
        ("actor sam + type StakeholderAdded (sparse), 50", || {
            TimelineQuery {
                actor: Some("sam".into()),
                ..TimelineQuery::new(Scope::Account)
                    .with_event_types(["StakeholderAdded"])
                    .unwrap()
            }
        }),
        ("account, page 3 via cursor, 50", || {
            TimelineQuery::new(Scope::Account)
        }),
    ];
    for (name, make) in &queries {
        let mut samples = Vec::with_capacity(10_000);
        for _ in 0..10_000 {
            let account = format!("a{}", rng.next() % ACCOUNTS);
            let mut query = make();
            let t = Instant::now();
            let mut page = projection.list("acme", &account, &query).unwrap();
            if name.contains("page 3") {
                for _ in 0..2 {
                    query.after = page.next;
                    page = projection.list("acme", &account, &query).unwrap();
                }
            }
            samples.push(t.elapsed());
            assert!(!page.entries.is_empty());
        }
        // Printed, not asserted: timings are measured by keyplan-bench (BENCHMARKS.md), not
        // by tests, whose machines are shared and noisy.
        let (median, p99) = p99(samples);
        println!("{name}: median {median:?}, p99 {p99:?}");
    }
}
