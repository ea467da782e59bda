//! Persistence: a projection flushed and reloaded along the way equals one built in one go,
//! and a flush writes only what changed.

use keyplan_domain::events::{
    AccountRegistered, InteractionCorrected, InteractionDetails, InteractionLogged,
    StakeholderAdded, TeamMemberAssigned,
};
use keyplan_domain::ids::{InteractionId, PersonId, StakeholderId};
use keyplan_domain::values::{Attitude, BuyingRole, Channel, Sentiment, TeamRole, Tier, Timestamp};
use keyplan_domain::AccountCommand as C;
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError};
use keyplan_testkit::globex::{ACCOUNT, TENANT};
use keyplan_testkit::{at, date, Step};

use super::{decide, portfolio_histories, project, renumber, step};
use crate::calendar::Period;
use crate::queries::Dimension;
use crate::ActivityProjection;

/// An account with `n` interactions, one an hour from 2025-01-01 00:00 (more than two
/// chunks' worth for n = 300), then a correction of the sixth, then a new team member.
fn busy_steps(n: usize) -> Vec<Step> {
    let start = at(2025, 1, 1, 0);
    let hour = |i: usize| Timestamp(start.0 + i as i64 * 3_600_000_000);
    let sh = |s: &str| StakeholderId::parse(s).unwrap();
    let mut steps = vec![
        step(
            start,
            "dana",
            C::RegisterAccount(AccountRegistered {
                name: "Busy Ltd".into(),
                industry: "Logistics".into(),
                region: "APAC".into(),
                headquarters: "Singapore".into(),
                tier: Tier::Strategic,
            }),
        ),
        step(
            start,
            "dana",
            C::AssignTeamMember(TeamMemberAssigned {
                person_id: PersonId::parse("dana").unwrap(),
                name: "Dana Kim".into(),
                role: TeamRole::KeyAccountManager,
            }),
        ),
    ];
    for (id, role) in [("s1", BuyingRole::EconomicBuyer), ("s2", BuyingRole::User)] {
        steps.push(step(
            start,
            "dana",
            C::AddStakeholder(StakeholderAdded {
                stakeholder_id: sh(id),
                name: id.to_uppercase(),
                title: String::new(),
                reports_to: None,
                buying_role: role,
                influence: 3,
                attitude: Attitude::Neutral,
            }),
        ));
    }
    let details = |i: usize, sentiment: Sentiment| InteractionDetails {
        occurred_at: hour(i),
        channel: Channel::ALL[i % Channel::ALL.len()],
        stakeholders: if i % 3 == 0 {
            vec![sh("s1"), sh("s2")]
        } else {
            vec![sh("s2")]
        },
        participants: vec![PersonId::parse("dana").unwrap()],
        summary: format!("contact {i}"),
        sentiment,
        next_step: String::new(),
        opportunity_id: None,
    };
    for i in 0..n {
        steps.push(step(
            hour(i),
            "dana",
            C::LogInteraction(InteractionLogged {
                interaction_id: InteractionId::parse(format!("b{i:03}")).unwrap(),
                details: details(i, Sentiment::ALL[i % Sentiment::ALL.len()]),
            }),
        ));
    }
    steps.push(step(
        hour(n),
        "dana",
        C::CorrectInteraction(InteractionCorrected {
            interaction_id: InteractionId::parse("b005").unwrap(),
            details: InteractionDetails {
                occurred_at: hour(2),
                ..details(5, Sentiment::VeryNegative)
            },
            reason: "wrong hour".into(),
        }),
    ));
    steps.push(step(
        hour(n + 1),
        "dana",
        C::AssignTeamMember(TeamMemberAssigned {
            person_id: PersonId::parse("lee").unwrap(),
            name: "Lee Chan".into(),
            role: TeamRole::Sales,
        }),
    ));
    steps
}

/// Every test account in one log.
fn everything() -> Vec<ProjectedEvent> {
    let mut histories = portfolio_histories();
    histories.push(decide("busy", &busy_steps(300)));
    renumber(histories)
}

pub(super) fn temporary_tree() -> keyplan_projection::Tree {
    let db = keyplan_projection::ReadModelDb::temporary().unwrap();
    db.open_tree("activity").unwrap()
}

/// What a flush writes, as keys.
fn flushed_keys(p: &ActivityProjection) -> Vec<String> {
    let mut batch = keyplan_projection::Batch::default();
    p.flush(&mut batch).unwrap();
    let tree = temporary_tree();
    tree.apply_batch(batch).unwrap();
    tree.iter()
        .map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap())
        .collect()
}

/// Answers to a spread of queries, to compare two instances through the API too.
fn answers(p: &ActivityProjection) -> Vec<String> {
    let as_of = at(2025, 12, 15, 12);
    let mut out = Vec::new();
    for dimension in [
        Dimension::Account,
        Dimension::Channel,
        Dimension::TeamMember,
        Dimension::Stakeholder,
        Dimension::BuyingRole,
    ] {
        let r = p
            .activity_counts(
                TENANT,
                None,
                Period::Week,
                dimension,
                date(2025, 1, 1),
                date(2025, 12, 31),
            )
            .unwrap();
        out.push(format!("{r:?}"));
    }
    out.push(format!(
        "{:?}",
        p.dmu_coverage(TENANT, ACCOUNT, 90, as_of).unwrap()
    ));
    out.push(format!(
        "{:?}",
        p.dmu_coverage(TENANT, "busy", 365, as_of).unwrap()
    ));
    out.push(format!(
        "{:?}",
        p.quiet_accounts(TENANT, 30, as_of).unwrap()
    ));
    out.push(format!(
        "{:?}",
        p.opportunity_summary(TENANT, ACCOUNT, as_of).unwrap()
    ));
    out.push(format!(
        "{:?}",
        p.portfolio(TENANT, as_of, None).expect("in range")
    ));
    out
}

#[test]
fn a_projection_rebuilt_from_scratch_equals_one_built_incrementally_with_reloads() {
    let events = everything();
    let from_scratch = project(&events);

    // Apply in uneven slices; after each, flush into the tree and continue in a fresh
    // instance loaded from it (as after a restart), so anything a flush forgot is lost.
    let tree = temporary_tree();
    let n = events.len();
    let cuts = [1, 2, 30, 31, 77, 150, n / 2, n - 200, n - 2, n - 1, n];
    let mut incremental = ActivityProjection::default();
    let mut done = 0;
    for cut in cuts {
        for e in &events[done..cut] {
            incremental.apply(e);
        }
        done = cut;
        incremental = keyplan_testkit::flush_and_reload(&incremental, &tree);
    }
    assert_eq!(done, n);
    assert_eq!(incremental.snapshot(), from_scratch.snapshot());
    assert_eq!(answers(&incremental), answers(&from_scratch));
    assert_eq!(incremental.snapshot().len(), 5);

    // And a projection loaded once from the final tree answers the same.
    let reloaded = ActivityProjection::default();
    reloaded.load(&tree).unwrap();
    assert_eq!(answers(&reloaded), answers(&from_scratch));
}

#[test]
fn a_flush_writes_only_the_facts_and_chunks_that_changed() {
    let events = decide("busy", &busy_steps(300));
    // 2 setup + 2 stakeholders + 300 interactions + correction + new member = 306 events.
    assert_eq!(events.len(), 306);
    let p = ActivityProjection::default();
    for e in &events[..303] {
        p.apply(e);
    }
    // 299 interactions: facts and chunks 0 (0-127), 1 (128-255), 2 (256-298).
    assert_eq!(
        flushed_keys(&p),
        vec![
            "acme/busy/f",
            "acme/busy/i/00000000",
            "acme/busy/i/00000001",
            "acme/busy/i/00000002"
        ]
    );
    assert!(flushed_keys(&p).is_empty(), "nothing changed since");
    p.apply(&events[303]); // b299: the last chunk only
    assert_eq!(flushed_keys(&p), vec!["acme/busy/i/00000002"]);
    p.apply(&events[304]); // correction of b005: its chunk only
    assert_eq!(flushed_keys(&p), vec!["acme/busy/i/00000000"]);
    p.apply(&events[305]); // a new team member: the facts only
    assert_eq!(flushed_keys(&p), vec!["acme/busy/f"]);

    // The busy account's numbers survive: 300 interactions in 2025-01-01..13 (300 hours
    // = 12.5 days), the correction moved b005 from 05:00 to 02:00 of day one.
    let r = p
        .activity_counts(
            TENANT,
            Some("busy"),
            Period::Month,
            Dimension::Account,
            date(2025, 1, 1),
            date(2025, 1, 31),
        )
        .unwrap();
    assert_eq!(r.total_interactions, 300);
}

/// (A tree stored in another layout altogether is the runner's business: it rebuilds it,
/// see `Projection::format`.)
#[test]
fn stored_state_that_does_not_decode_is_reported_as_corrupt() {
    let tree = temporary_tree();
    tree.insert("acme/globex/f", vec![9u8, 1, 2, 3]).unwrap();
    let p = ActivityProjection::default();
    p.load(&tree).unwrap();
    let err = p
        .opportunity_summary(TENANT, ACCOUNT, at(2025, 2, 1, 0))
        .unwrap_err();
    assert!(
        matches!(&err, crate::ActivityError::Unreadable(m) if m.contains("acme/globex/f")),
        "{err:?}"
    );
    p.apply(&project_globex_first_event());
    let mut batch = keyplan_projection::Batch::default();
    let err = p.flush(&mut batch).unwrap_err();
    assert!(matches!(err, ProjectionError::Corrupt { .. }), "{err}");

    let tree = temporary_tree();
    let p = project(&decide("busy", &busy_steps(300)));
    let mut batch = keyplan_projection::Batch::default();
    p.flush(&mut batch).unwrap();
    tree.apply_batch(batch).unwrap();
    tree.remove("acme/busy/i/00000001").unwrap(); // a hole in the chunks
                                                  // A start lists the accounts only: the hole is found when the account is read back, by a
                                                  // query (an internal error that names the chunk) or by an event (the flush fails, so the
                                                  // projection stops before committing past it).
    let reloaded = ActivityProjection::default();
    reloaded.load(&tree).unwrap();
    let err = reloaded
        .dmu_coverage(TENANT, "busy", 30, at(2025, 2, 1, 0))
        .unwrap_err();
    assert!(
        matches!(&err, crate::ActivityError::Unreadable(m) if m.contains("chunk")),
        "{err:?}"
    );
    let events = decide("busy", &busy_steps(300));
    reloaded.apply(&events[5]);
    let mut batch = keyplan_projection::Batch::default();
    let err = reloaded.flush(&mut batch).unwrap_err();
    assert!(err.to_string().contains("chunk"), "{err}");
}

/// Globex's first event.
fn project_globex_first_event() -> ProjectedEvent {
    everything()
        .into_iter()
        .find(|e| e.account == ACCOUNT)
        .unwrap()
}

#[test]
fn accounts_evicted_from_memory_are_read_back_and_answer_the_same() {
    let events = everything();
    let unbounded = ActivityProjection::default();
    // A budget of one byte: after every commit, no account stays in memory.
    let tree = temporary_tree();
    let live = ActivityProjection::with_budget(1);
    live.load(&tree).unwrap();
    let n = events.len();
    let mut done = 0;
    for cut in [1, 2, 30, 31, 77, 150, n / 2, n - 200, n - 2, n - 1, n] {
        for e in &events[done..cut] {
            live.apply(e);
            unbounded.apply(e);
        }
        done = cut;
        // A query between a flush and its batch landing reads the account in flight, which
        // must stay in memory: the tree does not have its changes yet.
        let mut batch = keyplan_projection::Batch::default();
        live.flush(&mut batch).unwrap();
        let in_flight = live.snapshot();
        tree.apply_batch(batch).unwrap();
        live.committed();
        assert_eq!(live.resident_count(), 0);
        assert_eq!(in_flight, unbounded.snapshot());
        if cut >= n - 200 {
            // (Before, some of the accounts `answers` asks about are not registered yet.)
            assert_eq!(answers(&live), answers(&unbounded));
            assert!(
                live.resident_count() <= 1,
                "queries read back within the budget"
            );
        }
    }
    assert_eq!(live.snapshot(), unbounded.snapshot());
    let restarted = ActivityProjection::with_budget(1);
    restarted.load(&tree).unwrap();
    assert_eq!(restarted.resident_count(), 0);
    assert_eq!(answers(&restarted), answers(&unbounded));
}

#[test]
fn adopting_a_rebuilt_instance_replaces_what_every_clone_sees() {
    let events = everything();
    let serving = project(&events[..100]);
    let clone_held_by_a_service = serving.clone();
    let rebuilt = project(&events);
    assert!(serving.adopt(rebuilt));
    assert_eq!(
        clone_held_by_a_service.snapshot(),
        project(&events).snapshot()
    );
}
