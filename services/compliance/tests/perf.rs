//! Query latency at scale: 1,000 accounts x 1,000 events (1M events), then one-account
//! compliance as of random instants on both axes. Ignored by default (it takes a while in a
//! debug build); run it with
//! `cargo test --release -p keyplan-compliance-service --test perf -- --ignored --nocapture`.
//! A profiling harness for the projection alone (no gRPC): it prints timings and asserts only
//! what the answers must be; the timing targets are measured by keyplan-bench.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use keyplan_compliance_service::{AsOf, ComplianceProjection, GroupBy};
use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_domain::AccountEvent;
use keyplan_projection::{ProjectedEvent, Projection};
use keyplan_testkit::{at, date};

const ACCOUNTS: u64 = 1_000;
const EVENTS_PER_ACCOUNT: u64 = 1_000;
const DAY: i64 = 86_400_000_000;

/// A small deterministic generator (no extra dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PEOPLE: [&str; 4] = ["kam", "sales", "service", "exec"];
const STAKEHOLDERS: [(&str, BuyingRole); 8] = [
    ("cfo", BuyingRole::EconomicBuyer),
    ("cto", BuyingRole::TechnicalBuyer),
    ("proc", BuyingRole::Gatekeeper),
    ("ops", BuyingRole::User),
    ("eng", BuyingRole::Influencer),
    ("qa", BuyingRole::User),
    ("coach", BuyingRole::Coach),
    ("legal", BuyingRole::Gatekeeper),
];
const CHANNELS: [Channel; 5] = [
    Channel::InPerson,
    Channel::VideoCall,
    Channel::PhoneCall,
    Channel::Email,
    Channel::SiteVisit,
];

fn account_events(account: u64, position: &mut u64, rng: &mut Lcg) -> Vec<ProjectedEvent> {
    let start = at(2023, 1, 2, 9);
    let mut out = Vec::with_capacity(EVENTS_PER_ACCOUNT as usize);
    let mut push = |recorded: Timestamp, occurred: Timestamp, event: AccountEvent| {
        *position += 1;
        out.push(ProjectedEvent {
            position: *position,
            event_id: uuid::Uuid::from_u64_pair(account, *position),
            tenant: format!("t{}", account % 10),
            account: format!("a{account}"),
            stream_version: 0,
            recorded_at: recorded,
            occurred_at: occurred,
            actor: "bench".into(),
            event,
        });
    };
    push(
        start,
        start,
        AccountRegistered {
            name: format!("Account {account}"),
            industry: "x".into(),
            region: "x".into(),
            headquarters: "x".into(),
            tier: Tier::Key,
        }
        .into(),
    );
    for p in PEOPLE {
        push(
            start,
            start,
            TeamMemberAssigned {
                person_id: PersonId::parse(p).unwrap(),
                name: p.into(),
                role: TeamRole::Sales,
            }
            .into(),
        );
    }
    for (s, role) in STAKEHOLDERS {
        push(
            start,
            start,
            StakeholderAdded {
                stakeholder_id: StakeholderId::parse(s).unwrap(),
                name: s.into(),
                title: "x".into(),
                reports_to: None,
                buying_role: role,
                influence: 3,
                attitude: Attitude::Neutral,
            }
            .into(),
        );
    }
    let rules = [
        (
            "r-cfo",
            RuleTarget::Stakeholder(StakeholderId::parse("cfo").unwrap()),
            30,
        ),
        (
            "r-tech",
            RuleTarget::BuyingRole(BuyingRole::TechnicalBuyer),
            14,
        ),
        (
            "r-proc",
            RuleTarget::Stakeholder(StakeholderId::parse("proc").unwrap()),
            45,
        ),
        ("r-users", RuleTarget::BuyingRole(BuyingRole::User), 30),
        (
            "r-coach",
            RuleTarget::Stakeholder(StakeholderId::parse("coach").unwrap()),
            21,
        ),
    ];
    for (i, (id, target, cadence)) in rules.into_iter().enumerate() {
        push(
            start,
            start,
            EngagementRuleSet {
                rule_id: RuleId::parse(id).unwrap(),
                target,
                owner: PersonId::parse(PEOPLE[i % 4]).unwrap(),
                cadence_days: cadence,
                channels: CHANNELS[i % 3..i % 3 + 2].to_vec(),
                opportunity_id: None,
            }
            .into(),
        );
    }
    push(
        start,
        start,
        PlanDrafted {
            plan_id: PlanId::parse("plan").unwrap(),
            period: PlanPeriod {
                kind: PlanPeriodKind::Perpetual,
                start: date(2023, 1, 1),
                end: None,
            },
            prepared_by: PersonId::parse("kam").unwrap(),
            prepared_on: date(2023, 1, 2),
            review_frequency: ReviewFrequency::Quarterly,
        }
        .into(),
    );
    // The rest: interactions over three years (a few logged late, some corrected), and
    // quarterly reviews.
    let remaining = EVENTS_PER_ACCOUNT - 19;
    let span = 3 * 365 * DAY;
    let mut logged = Vec::new();
    for i in 0..remaining {
        let occurred = Timestamp(start.0 + span * i as i64 / remaining as i64);
        if i % 80 == 40 {
            let q = i / 80;
            let review = ReviewId::parse(format!("rev{q}")).unwrap();
            push(
                occurred,
                occurred,
                ReviewScheduled {
                    review_id: review.clone(),
                    kind: ReviewKind::Executive,
                    plan_id: Some(PlanId::parse("plan").unwrap()),
                    due_on: occurred.date(),
                    supplier_attendees: vec![PersonId::parse("kam").unwrap()],
                    customer_attendees: vec![],
                }
                .into(),
            );
            continue;
        }
        if i % 80 == 41 {
            let q = i / 80;
            push(
                occurred,
                occurred,
                ReviewOutcomeRecorded {
                    review_id: ReviewId::parse(format!("rev{q}")).unwrap(),
                    held_on: occurred.date(),
                    supplier_attendees: vec![PersonId::parse("kam").unwrap()],
                    customer_attendees: vec![],
                    outcome: ReviewOutcome::Approved,
                    health: HealthRating::Green,
                    decisions: vec![],
                    follow_up_actions: vec![],
                }
                .into(),
            );
            continue;
        }
        let details = InteractionDetails {
            occurred_at: occurred,
            channel: CHANNELS[rng.below(5) as usize],
            stakeholders: vec![StakeholderId::parse(STAKEHOLDERS[rng.below(8) as usize].0).unwrap()],
            participants: vec![PersonId::parse(PEOPLE[rng.below(4) as usize]).unwrap()],
            summary: "x".into(),
            sentiment: Sentiment::Neutral,
            next_step: String::new(),
            opportunity_id: None,
        };
        if i % 25 == 0 && !logged.is_empty() {
            let (id, d): &(InteractionId, InteractionDetails) =
                &logged[rng.below(logged.len() as u64) as usize];
            push(
                occurred,
                occurred,
                InteractionCorrected {
                    interaction_id: id.clone(),
                    details: InteractionDetails {
                        channel: CHANNELS[rng.below(5) as usize],
                        ..d.clone()
                    },
                    reason: "fix".into(),
                }
                .into(),
            );
            continue;
        }
        let id = InteractionId::parse(format!("i{i}")).unwrap();
        let recorded = if i % 17 == 0 {
            Timestamp(occurred.0 + 3 * DAY)
        } else {
            occurred
        };
        logged.push((id.clone(), details.clone()));
        push(
            recorded,
            occurred,
            InteractionLogged {
                interaction_id: id,
                details,
            }
            .into(),
        );
    }
    out
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[test]
#[ignore]
fn compliance_as_of_at_one_million_events() {
    let p = ComplianceProjection::default();
    let mut rng = Lcg(42);
    let mut position = 0;
    let mut apply_time = std::time::Duration::ZERO;
    for account in 0..ACCOUNTS {
        let events = account_events(account, &mut position, &mut rng);
        let t = Instant::now();
        for e in &events {
            p.apply(e);
        }
        apply_time += t.elapsed();
    }
    println!(
        "applied {position} events in {apply_time:?} ({:.0} events/s)",
        position as f64 / apply_time.as_secs_f64()
    );

    let db = keyplan_projection::ReadModelDb::temporary().unwrap();
    let tree = db.open_tree("compliance").unwrap();
    let t = Instant::now();
    let mut batch = keyplan_projection::Batch::default();
    p.flush(&mut batch).unwrap();
    let keys = batch.len();
    tree.apply_batch(batch).unwrap();
    println!("flushed everything in {:?} ({keys} keys)", t.elapsed());
    let t = Instant::now();
    let reloaded = ComplianceProjection::default();
    reloaded.load(&tree).unwrap();
    println!("loaded in {:?}", t.elapsed());

    let start = at(2023, 1, 2, 9).0;
    let span = 3 * 365 * DAY;
    for axis in ["as happened by", "as known at"] {
        let mut samples = Vec::new();
        for _ in 0..20_000 {
            let account = rng.below(ACCOUNTS);
            let instant = Timestamp(start + (rng.next() as i64 % span));
            let as_of = if axis == "as known at" {
                AsOf::known_at(instant)
            } else {
                AsOf::happened_by(instant)
            };
            let tenant = format!("t{}", account % 10);
            let account = format!("a{account}");
            let t = Instant::now();
            let answer = p.account_compliance(&tenant, &account, as_of).unwrap();
            samples.push(t.elapsed().as_nanos());
            assert!(answer.share.active() <= 5);
        }
        samples.sort_unstable();
        println!(
            "GetAccountCompliance {axis}: p50 {} us, p99 {} us, max {} us",
            percentile(&samples, 0.5) / 1000,
            percentile(&samples, 0.99) / 1000,
            samples[samples.len() - 1] / 1000
        );
    }

    // A tenant (100 accounts): rollup and a 52-week trend.
    let as_of = AsOf::happened_by(Timestamp(start + span));
    let t = Instant::now();
    let rollup = p.rollup("t3", GroupBy::Owner, as_of).expect("rollup");
    println!(
        "rollup of 100 accounts by owner: {:?} ({} groups)",
        t.elapsed(),
        rollup.groups.len()
    );
    let t = Instant::now();
    let trend = p.trend("t3", None, None, 52, as_of).unwrap();
    println!(
        "52-week trend of 100 accounts: {:?} ({} points)",
        t.elapsed(),
        trend.len()
    );
}
