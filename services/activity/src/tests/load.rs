//! Timing at scale (ignored by default; run with
//! `cargo test --release -p keyplan-activity-service -- --ignored --nocapture`):
//! 1,000,000 events over 100 accounts, then the queries.

use std::time::Instant;

use keyplan_domain::events::{
    AccountRegistered, InteractionCorrected, InteractionDetails, InteractionLogged,
    StakeholderAdded, TeamMemberAssigned,
};
use keyplan_domain::ids::{InteractionId, PersonId, StakeholderId};
use keyplan_domain::values::{Attitude, BuyingRole, Channel, Sentiment, TeamRole, Tier, Timestamp};
use keyplan_domain::AccountEvent;
use keyplan_projection::{ProjectedEvent, Projection};
use keyplan_testkit::{at, date};

use crate::calendar::Period;
use crate::queries::Dimension;
use crate::ActivityProjection;

const ACCOUNTS: usize = 100;
const EVENTS_PER_ACCOUNT: usize = 10_000;

fn event(position: u64, account: usize, at: Timestamp, event: AccountEvent) -> ProjectedEvent {
    ProjectedEvent {
        position,
        event_id: uuid::Uuid::from_u64_pair(1, position),
        tenant: "acme".into(),
        account: format!("a{account:03}"),
        stream_version: 0,
        recorded_at: at,
        occurred_at: at,
        actor: "dana".into(),
        event,
    }
}

fn history(account: usize, first_position: u64) -> Vec<ProjectedEvent> {
    let start = at(2024, 1, 1, 0);
    let mut out = Vec::with_capacity(EVENTS_PER_ACCOUNT);
    let push = |out: &mut Vec<ProjectedEvent>, t: Timestamp, e: AccountEvent| {
        let position = first_position + out.len() as u64;
        out.push(event(position, account, t, e));
    };
    push(
        &mut out,
        start,
        AccountRegistered {
            name: format!("Customer {account}"),
            industry: "x".into(),
            region: "x".into(),
            headquarters: "x".into(),
            tier: Tier::Key,
        }
        .into(),
    );
    let people = ["dana", "lee", "sam", "eve"];
    for p in people {
        push(
            &mut out,
            start,
            TeamMemberAssigned {
                person_id: PersonId::parse(p).unwrap(),
                name: p.to_uppercase(),
                role: TeamRole::Sales,
            }
            .into(),
        );
    }
    for s in 0..8 {
        push(
            &mut out,
            start,
            StakeholderAdded {
                stakeholder_id: StakeholderId::parse(format!("s{s}")).unwrap(),
                name: format!("S{s}"),
                title: String::new(),
                reports_to: None,
                buying_role: BuyingRole::ALL[s % BuyingRole::ALL.len()],
                influence: 3,
                attitude: Attitude::Neutral,
            }
            .into(),
        );
    }
    // Two years of interactions, every ~2 hours; every 50th one corrected later.
    let n = EVENTS_PER_ACCOUNT - 13;
    let step = 2 * 365 * 24 * 3_600_000_000 / n as i64;
    let details = |i: usize| InteractionDetails {
        occurred_at: Timestamp(start.0 + i as i64 * step),
        channel: Channel::ALL[i % 7],
        stakeholders: vec![
            StakeholderId::parse(format!("s{}", i % 8)).unwrap(),
            StakeholderId::parse(format!("s{}", (i / 8) % 8)).unwrap(),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect(),
        participants: vec![PersonId::parse(people[i % 4]).unwrap()],
        summary: String::new(),
        sentiment: Sentiment::ALL[i % 5],
        next_step: String::new(),
        opportunity_id: None,
    };
    let mut i = 0;
    while out.len() < EVENTS_PER_ACCOUNT {
        let t = Timestamp(start.0 + i as i64 * step);
        if i % 50 == 49 {
            push(
                &mut out,
                t,
                InteractionCorrected {
                    interaction_id: InteractionId::parse(format!("x{}", i - 10)).unwrap(),
                    details: details(i - 11),
                    reason: "fix".into(),
                }
                .into(),
            );
        } else {
            push(
                &mut out,
                t,
                InteractionLogged {
                    interaction_id: InteractionId::parse(format!("x{i}")).unwrap(),
                    details: details(i),
                }
                .into(),
            );
        }
        i += 1;
    }
    out
}

/// Resident memory of this process, KiB (0 where /proc is unavailable).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "timing at 1M events; run in release with --ignored --nocapture"]
fn one_million_events() {
    let mut events = Vec::with_capacity(ACCOUNTS * EVENTS_PER_ACCOUNT);
    for a in 0..ACCOUNTS {
        let first = events.len() as u64 + 1;
        events.extend(history(a, first));
    }
    let rss_before = rss_kib();
    let p = ActivityProjection::default();
    let t = Instant::now();
    for e in &events {
        p.apply(e);
    }
    let applied = t.elapsed();
    println!(
        "apply {} events: {applied:?} ({:.0} events/s)",
        events.len(),
        events.len() as f64 / applied.as_secs_f64()
    );

    println!(
        "resident memory grew by {} MiB (projection state, 1M events)",
        rss_kib().saturating_sub(rss_before) / 1024
    );
    drop(events);
    let db = keyplan_projection::ReadModelDb::temporary().unwrap();
    let tree = db.open_tree("activity").unwrap();
    let t = Instant::now();
    let mut batch = keyplan_projection::Batch::default();
    p.flush(&mut batch).unwrap();
    tree.apply_batch(batch).unwrap();
    println!("first flush (everything): {:?}", t.elapsed());
    let t = Instant::now();
    let reloaded = ActivityProjection::default();
    reloaded.load(&tree).unwrap();
    println!("load: {:?}", t.elapsed());

    let as_of = at(2025, 12, 31, 0);
    let time = |what: &str, f: &dyn Fn()| {
        let runs = 20;
        let t = Instant::now();
        for _ in 0..runs {
            f();
        }
        println!("{what}: {:?} per query", t.elapsed() / runs);
    };
    for (name, period) in [
        ("day", Period::Day),
        ("week", Period::Week),
        ("quarter", Period::Quarter),
    ] {
        for dimension in [
            Dimension::Channel,
            Dimension::Stakeholder,
            Dimension::BuyingRole,
        ] {
            time(
                &format!("one account, 1 year by {name}, {dimension:?}"),
                &|| {
                    p.activity_counts(
                        "acme",
                        Some("a042"),
                        period,
                        dimension,
                        date(2025, 1, 1),
                        date(2025, 12, 31),
                    )
                    .unwrap();
                },
            );
        }
    }
    time(
        "tenant (100 accounts), 1 year by month, TeamMember",
        &|| {
            p.activity_counts(
                "acme",
                None,
                Period::Month,
                Dimension::TeamMember,
                date(2025, 1, 1),
                date(2025, 12, 31),
            )
            .unwrap();
        },
    );
    time(
        "tenant (100 accounts), 1 year by week, Stakeholder",
        &|| {
            p.activity_counts(
                "acme",
                None,
                Period::Week,
                Dimension::Stakeholder,
                date(2025, 1, 1),
                date(2025, 12, 31),
            )
            .unwrap();
        },
    );
    time("DMU coverage, 90 days", &|| {
        p.dmu_coverage("acme", "a042", 90, as_of).unwrap();
    });
    time("quiet accounts", &|| {
        p.quiet_accounts("acme", 30, as_of).unwrap();
    });
    time("portfolio", &|| {
        let _ = p.portfolio("acme", as_of, None);
    });
    time("opportunity summary", &|| {
        p.opportunity_summary("acme", "a042", as_of).unwrap();
    });
}
