//! Small hand-made histories for what the Globex fixture does not exercise: team membership
//! over time, buying-role changes, back-dated facts, rule redefinitions, review windows of
//! other plan shapes.

use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_testkit::{at, date};

use super::*;
use crate::history::review_windows;
use crate::model::RuleStatus::*;

pub(super) fn person(s: &str) -> PersonId {
    PersonId::parse(s).unwrap()
}

pub(super) fn sh(s: &str) -> StakeholderId {
    StakeholderId::parse(s).unwrap()
}

pub(super) fn registered() -> AccountRegistered {
    AccountRegistered {
        name: "A".into(),
        industry: "x".into(),
        region: "x".into(),
        headquarters: "x".into(),
        tier: Tier::Key,
    }
}

pub(super) fn assigned(p: &str) -> TeamMemberAssigned {
    TeamMemberAssigned {
        person_id: person(p),
        name: p.to_uppercase(),
        role: TeamRole::Sales,
    }
}

pub(super) fn stakeholder(s: &str, role: BuyingRole) -> StakeholderAdded {
    StakeholderAdded {
        stakeholder_id: sh(s),
        name: s.to_uppercase(),
        title: "x".into(),
        reports_to: None,
        buying_role: role,
        influence: 3,
        attitude: Attitude::Neutral,
    }
}

pub(super) fn rule(
    id: &str,
    target: RuleTarget,
    cadence_days: u32,
    channels: &[Channel],
) -> EngagementRuleSet {
    EngagementRuleSet {
        rule_id: RuleId::parse(id).unwrap(),
        target,
        owner: person("kam"),
        cadence_days,
        channels: channels.to_vec(),
        opportunity_id: None,
    }
}

pub(super) fn interaction(
    id: &str,
    when: Timestamp,
    channel: Channel,
    stakeholders: &[&str],
    participants: &[&str],
) -> InteractionLogged {
    InteractionLogged {
        interaction_id: InteractionId::parse(id).unwrap(),
        details: InteractionDetails {
            occurred_at: when,
            channel,
            stakeholders: stakeholders.iter().map(|s| sh(s)).collect(),
            participants: participants.iter().map(|p| person(p)).collect(),
            summary: "x".into(),
            sentiment: Sentiment::Neutral,
            next_step: String::new(),
            opportunity_id: None,
        },
    }
}

fn answer(log: &Log, as_of: AsOf) -> AccountCompliance {
    project(&log.events)
        .account_compliance("t", "a", as_of)
        .unwrap()
}

/// (status, last interaction, days overdue, days until due) of the only rule.
fn only(r: &AccountCompliance) -> (RuleStatus, Option<String>, u32, u32) {
    assert_eq!(r.rules.len(), 1, "{:?}", r.rules);
    let rule = &r.rules[0];
    (
        rule.status,
        rule.last_interaction
            .as_ref()
            .map(|i| i.interaction_id.clone()),
        rule.days_overdue,
        rule.days_until_due,
    )
}

fn s(x: &str) -> Option<String> {
    Some(x.to_owned())
}

#[test]
fn only_contacts_by_someone_then_in_the_team_count() {
    let setup = at(2025, 1, 1, 9);
    let mut log = Log::default();
    log.now(setup, registered())
        .now(setup, assigned("kam"))
        .now(setup, stakeholder("s1", BuyingRole::EconomicBuyer))
        .now(
            setup,
            rule(
                "r1",
                RuleTarget::Stakeholder(sh("s1")),
                10,
                &[Channel::PhoneCall],
            ),
        )
        // A colleague outside the team calls: does not count.
        .now(
            at(2025, 1, 5, 10),
            interaction(
                "x1",
                at(2025, 1, 5, 10),
                Channel::PhoneCall,
                &["s1"],
                &["pat"],
            ),
        )
        .now(at(2025, 1, 6, 9), assigned("pat"))
        // Now pat is in the team: counts.
        .now(
            at(2025, 1, 8, 10),
            interaction(
                "x2",
                at(2025, 1, 8, 10),
                Channel::PhoneCall,
                &["s1"],
                &["pat"],
            ),
        )
        .now(
            at(2025, 1, 20, 9),
            TeamMemberUnassigned {
                person_id: person("pat"),
                reason: String::new(),
            },
        )
        // pat left the team: does not count.
        .now(
            at(2025, 1, 25, 10),
            interaction(
                "x3",
                at(2025, 1, 25, 10),
                Channel::PhoneCall,
                &["s1"],
                &["pat"],
            ),
        )
        // Wrong channel: does not count.
        .now(
            at(2025, 1, 26, 10),
            interaction("x4", at(2025, 1, 26, 10), Channel::Email, &["s1"], &["kam"]),
        );

    // 01-07: x1 does not count; never met, due 01-01 + 10 = 01-11, in 4 days.
    assert_eq!(
        only(&answer(&log, AsOf::happened_by(at(2025, 1, 7, 12)))),
        (NeverMet, None, 0, 4)
    );
    // 01-30: last x2 01-08 + 10 = 01-18, 12 days overdue.
    assert_eq!(
        only(&answer(&log, AsOf::happened_by(at(2025, 1, 30, 12)))),
        (Overdue, s("x2"), 12, 0)
    );
}

#[test]
fn a_back_dated_team_assignment_counts_from_its_business_time_once_known() {
    let setup = at(2025, 1, 1, 9);
    let mut log = Log::default();
    log.now(setup, assigned("kam"))
        .now(setup, stakeholder("s1", BuyingRole::EconomicBuyer))
        .now(
            setup,
            rule(
                "r1",
                RuleTarget::Stakeholder(sh("s1")),
                10,
                &[Channel::PhoneCall],
            ),
        )
        .now(
            at(2025, 1, 5, 10),
            interaction(
                "x1",
                at(2025, 1, 5, 10),
                Channel::PhoneCall,
                &["s1"],
                &["pat"],
            ),
        )
        // Recorded on 01-06, pat actually joined on 01-04.
        .push(at(2025, 1, 6, 9), at(2025, 1, 4, 9), assigned("pat"));

    // As happened: pat was in the team on 01-05: x1 counts; 01-05 + 10 = 01-15.
    assert_eq!(
        only(&answer(&log, AsOf::happened_by(at(2025, 1, 5, 12)))),
        (OnTrack, s("x1"), 0, 10)
    );
    // As known on 01-05: the assignment was not recorded yet: never met.
    assert_eq!(
        only(&answer(&log, AsOf::known_at(at(2025, 1, 5, 12)))),
        (NeverMet, None, 0, 6)
    );
    // As known on 01-06 12:00: now it is.
    assert_eq!(
        only(&answer(&log, AsOf::known_at(at(2025, 1, 6, 12)))),
        (OnTrack, s("x1"), 0, 9)
    );
    // The account was never registered: it is still answered, and has no name.
    let p = project(&log.events);
    assert!(p.contains("t", "a"));
    assert_eq!(
        p.rollup("t", GroupBy::Account, AsOf::happened_by(at(2025, 1, 6, 12)))
            .unwrap()
            .groups[0]
            .label,
        ""
    );
}

#[test]
fn a_buying_role_rule_follows_the_stakeholders_role_at_the_time_of_contact() {
    let setup = at(2025, 1, 1, 9);
    let mut log = Log::default();
    log.now(setup, assigned("kam"))
        .now(setup, stakeholder("s2", BuyingRole::User))
        .now(
            setup,
            rule(
                "rt",
                RuleTarget::BuyingRole(BuyingRole::TechnicalBuyer),
                14,
                &[Channel::VideoCall],
            ),
        )
        // s2 is a user on 01-03: does not count.
        .now(
            at(2025, 1, 3, 10),
            interaction(
                "v1",
                at(2025, 1, 3, 10),
                Channel::VideoCall,
                &["s2"],
                &["kam"],
            ),
        )
        .now(
            at(2025, 1, 11, 10),
            interaction(
                "v2",
                at(2025, 1, 11, 10),
                Channel::VideoCall,
                &["s2"],
                &["kam"],
            ),
        )
        // s2 became the technical buyer on 01-10; recorded on 01-12.
        .push(
            at(2025, 1, 12, 9),
            at(2025, 1, 10, 9),
            StakeholderProfileChanged {
                stakeholder_id: sh("s2"),
                title: None,
                reports_to: None,
                clear_reports_to: false,
                buying_role: Some(BuyingRole::TechnicalBuyer),
                influence: None,
                attitude: None,
                note: "promoted".into(),
            },
        )
        // Back to user on 02-01; the call on 02-02 does not count.
        .now(
            at(2025, 2, 1, 9),
            StakeholderProfileChanged {
                stakeholder_id: sh("s2"),
                title: None,
                reports_to: None,
                clear_reports_to: false,
                buying_role: Some(BuyingRole::User),
                influence: None,
                attitude: None,
                note: "moved".into(),
            },
        )
        .now(
            at(2025, 2, 2, 10),
            interaction(
                "v3",
                at(2025, 2, 2, 10),
                Channel::VideoCall,
                &["s2"],
                &["kam"],
            ),
        );

    // 01-05: v1 was with a user: never met, due 01-01 + 14 = 01-15, in 10 days.
    assert_eq!(
        only(&answer(&log, AsOf::happened_by(at(2025, 1, 5, 12)))),
        (NeverMet, None, 0, 10)
    );
    // 01-11 as happened: v2 with the technical buyer; 01-11 + 14 = 01-25, 14 days.
    assert_eq!(
        only(&answer(&log, AsOf::happened_by(at(2025, 1, 11, 12)))),
        (OnTrack, s("v2"), 0, 14)
    );
    // 01-11 as known: the role change was recorded on 01-12: never met, due in 4 days.
    assert_eq!(
        only(&answer(&log, AsOf::known_at(at(2025, 1, 11, 12)))),
        (NeverMet, None, 0, 4)
    );
    // 01-12 12:00 as known: v2 counts now; 13 days.
    assert_eq!(
        only(&answer(&log, AsOf::known_at(at(2025, 1, 12, 12)))),
        (OnTrack, s("v2"), 0, 13)
    );
    // 02-10: v3 was with a user again; last v2 01-25 due, 16 days overdue.
    let r = answer(&log, AsOf::happened_by(at(2025, 2, 10, 12)));
    assert_eq!(only(&r), (Overdue, s("v2"), 16, 0));
    assert_eq!(r.rules[0].target_description, "buying role technical buyer");
}

/// Found by the property test: a stakeholder met before they were added to the DMU counts with
/// the role they were added with, not with a role change back-dated before their addition.
#[test]
fn a_contact_before_the_dmu_addition_counts_with_the_role_added_with() {
    let setup = at(2025, 1, 1, 9);
    let mut log = Log::default();
    log.now(setup, assigned("kam"))
        .now(
            setup,
            rule(
                "ru",
                RuleTarget::BuyingRole(BuyingRole::User),
                10,
                &[Channel::VideoCall],
            ),
        )
        // Added on 01-10 as a user.
        .now(at(2025, 1, 10, 9), stakeholder("s0", BuyingRole::User))
        // Economic buyer from 01-07 (recorded 01-15, dated before the addition).
        .push(
            at(2025, 1, 15, 9),
            at(2025, 1, 7, 9),
            StakeholderProfileChanged {
                stakeholder_id: sh("s0"),
                title: None,
                reports_to: None,
                clear_reports_to: false,
                buying_role: Some(BuyingRole::EconomicBuyer),
                influence: None,
                attitude: None,
                note: String::new(),
            },
        )
        // A video call on 01-02, logged on 01-18.
        .push(
            at(2025, 1, 18, 9),
            at(2025, 1, 18, 9),
            interaction(
                "v1",
                at(2025, 1, 2, 10),
                Channel::VideoCall,
                &["s0"],
                &["kam"],
            ),
        );
    // On 01-02 no role fact had happened yet: the role s0 was added with (user) counts.
    // 01-02 + 10 = 01-12; 01-20 - 01-12 = 8 days overdue.
    assert_eq!(
        only(&answer(&log, AsOf::happened_by(at(2025, 1, 20, 12)))),
        (Overdue, s("v1"), 8, 0)
    );
    // As of 01-08 the addition (01-10) had not happened: no role, never met, due 01-11.
    assert_eq!(
        only(&answer(&log, AsOf::happened_by(at(2025, 1, 8, 12)))),
        (NeverMet, None, 0, 3)
    );
}

#[test]
fn redefinitions_retirements_and_rules_set_later_apply_from_their_business_time() {
    let setup = at(2025, 1, 1, 9);
    let mut log = Log::default();
    log.now(setup, assigned("kam"))
        .now(setup, stakeholder("s1", BuyingRole::EconomicBuyer))
        .now(
            setup,
            rule(
                "r1",
                RuleTarget::Stakeholder(sh("s1")),
                30,
                &[Channel::InPerson],
            ),
        )
        .now(
            at(2025, 1, 5, 10),
            interaction(
                "m1",
                at(2025, 1, 5, 10),
                Channel::InPerson,
                &["s1"],
                &["kam"],
            ),
        )
        // Tightened on 02-01: every 7 days, phone calls count too.
        .now(
            at(2025, 2, 1, 9),
            rule(
                "r1",
                RuleTarget::Stakeholder(sh("s1")),
                7,
                &[Channel::InPerson, Channel::PhoneCall],
            ),
        )
        .now(
            at(2025, 2, 3, 10),
            interaction(
                "m2",
                at(2025, 2, 3, 10),
                Channel::PhoneCall,
                &["s1"],
                &["kam"],
            ),
        )
        // Retired with effect from 03-01, recorded on 03-10.
        .push(
            at(2025, 3, 10, 9),
            at(2025, 3, 1, 9),
            EngagementRuleRetired {
                rule_id: RuleId::parse("r1").unwrap(),
                reason: "done".into(),
            },
        )
        .now(
            at(2025, 3, 2, 9),
            rule(
                "r2",
                RuleTarget::Stakeholder(sh("s1")),
                30,
                &[Channel::InPerson],
            ),
        );

    // 01-20: 30 days: 01-05 + 30 = 02-04, 15 days; window min(7, 30/4 = 7) = 7.
    let r = answer(&log, AsOf::happened_by(at(2025, 1, 20, 12)));
    assert_eq!(only(&r), (OnTrack, s("m1"), 0, 15));
    assert_eq!(r.rules[0].due_soon_window_days, 7);
    // 02-02: 7 days now: 01-05 + 7 = 01-12, 21 days overdue; still set on 01-01.
    let r = answer(&log, AsOf::happened_by(at(2025, 2, 2, 12)));
    assert_eq!(only(&r), (Overdue, s("m1"), 21, 0));
    assert_eq!(r.rules[0].set_on, date(2025, 1, 1));
    assert_eq!(r.rules[0].definition.cadence_days, 7);
    // 02-04: the phone call m2 counts under the new definition: 02-03 + 7 = 02-10, 6 days >
    // window min(7, max(1, 7/4 = 1)) = 1.
    let r = answer(&log, AsOf::happened_by(at(2025, 2, 4, 12)));
    assert_eq!(only(&r), (OnTrack, s("m2"), 0, 6));
    assert_eq!(r.rules[0].due_soon_window_days, 1);
    // 03-01 12:00: r2 is not set yet (03-02).
    // As happened: r1 retired at 03-01 09:00: no active rule, no share.
    let r = answer(&log, AsOf::happened_by(at(2025, 3, 1, 12)));
    assert!(r.rules.is_empty());
    assert_eq!(r.share.share(), None);
    assert_eq!(r.retired.len(), 1);
    // As known on 03-05 (retirement recorded 03-10): r1 still active (02-10 due: 23 days
    // overdue). r2, set on 03-02, counts the in-person meeting m1 of 01-05 that predates it
    // as its last qualifying interaction (m2 was a phone call, not a channel of r2), but its
    // clock starts when it was set: max(01-05, 03-02) + 30 = 04-01, 27 days ahead.
    let r = answer(&log, AsOf::known_at(at(2025, 3, 5, 12)));
    assert_eq!(
        lines(&r),
        expect(&[
            ("r1", Overdue, Some("m2"), date(2025, 2, 10), 23, 0),
            ("r2", OnTrack, Some("m1"), date(2025, 4, 1), 0, 27),
        ])
    );
    assert!(r.retired.is_empty());
}

#[test]
fn reviews_count_only_for_their_plan_once_their_outcome_is_recorded() {
    let setup = at(2025, 1, 1, 9);
    let plan = |id: &str, kind: PlanPeriodKind, end: Option<Date>| PlanDrafted {
        plan_id: PlanId::parse(id).unwrap(),
        period: PlanPeriod {
            kind,
            start: date(2025, 1, 1),
            end,
        },
        prepared_by: person("kam"),
        prepared_on: date(2025, 1, 1),
        review_frequency: ReviewFrequency::Monthly,
    };
    let scheduled = |id: &str, plan: Option<&str>| ReviewScheduled {
        review_id: ReviewId::parse(id).unwrap(),
        kind: ReviewKind::Executive,
        plan_id: plan.map(|p| PlanId::parse(p).unwrap()),
        due_on: date(2025, 1, 31),
        supplier_attendees: vec![person("kam")],
        customer_attendees: vec![],
    };
    let held = |id: &str, on: Date| ReviewOutcomeRecorded {
        review_id: ReviewId::parse(id).unwrap(),
        held_on: on,
        supplier_attendees: vec![person("kam")],
        customer_attendees: vec![],
        outcome: ReviewOutcome::Approved,
        health: HealthRating::Green,
        decisions: vec![],
        follow_up_actions: vec![],
    };
    let mut log = Log::default();
    log.now(setup, plan("p", PlanPeriodKind::Perpetual, None))
        .now(
            setup,
            plan("q", PlanPeriodKind::HalfYear, Some(date(2025, 6, 30))),
        )
        .now(setup, scheduled("for-p", Some("p")))
        .now(setup, scheduled("for-q", Some("q")))
        .now(setup, scheduled("no-plan", None))
        .now(at(2025, 1, 20, 16), held("for-q", date(2025, 1, 20)))
        .now(at(2025, 1, 21, 16), held("no-plan", date(2025, 1, 21)))
        // Held on 02-10, recorded on 02-12.
        .push(
            at(2025, 2, 12, 9),
            at(2025, 2, 10, 16),
            held("for-p", date(2025, 2, 10)),
        );

    let r = answer(&log, AsOf::happened_by(at(2025, 2, 11, 12)));
    let p = &r.plan_reviews[0];
    assert_eq!(p.plan_id, "p");
    // Perpetual, monthly from 01-01: D1 01-31 (nothing for p in January: the others were for
    // another plan or none), D2 02-28 not yet due; windows stop after the first upcoming one.
    // for-p on 02-10 lies in window 2, the one after D1: LATE by 02-10 - 01-31 = 10 days.
    assert_eq!(
        p.windows
            .iter()
            .map(|w| (w.index, w.status, w.days_late, w.days_overdue))
            .collect::<Vec<_>>(),
        vec![
            (1, ReviewStatus::Late, 10, 0),
            (2, ReviewStatus::Upcoming, 0, 0)
        ]
    );
    assert_eq!(p.period_end, None);
    // As known on 02-11 the outcome (recorded 02-12) is not there: window 1 OVERDUE 11 days.
    let r = answer(&log, AsOf::known_at(at(2025, 2, 11, 12)));
    let p = &r.plan_reviews[0];
    assert_eq!(
        (p.windows[0].status, p.windows[0].days_overdue),
        (ReviewStatus::Overdue, 11)
    );
    // Plan q (half year, monthly): for-q on 01-20 makes January on time; six windows, the last
    // due 06-30.
    let q = &r.plan_reviews[1];
    assert_eq!(q.windows.len(), 6);
    assert_eq!(q.windows[0].status, ReviewStatus::OnTime);
    assert_eq!(q.windows[5].due_on, date(2025, 6, 30));
}

fn held(id: &str, on: Date) -> HeldReview {
    HeldReview {
        review_id: id.into(),
        held_on: on,
    }
}

#[test]
fn review_windows_late_beyond_the_next_window_is_missed() {
    use ReviewStatus::*;
    // Monthly, perpetual, from 2025-01-01; reviews on 01-15 and 04-10; today 04-20.
    let reviews = [held("a", date(2025, 1, 15)), held("b", date(2025, 4, 10))];
    let w = review_windows(
        date(2025, 1, 1),
        None,
        ReviewFrequency::Monthly,
        &reviews,
        date(2025, 4, 20),
    );
    let got: Vec<_> = w
        .iter()
        .map(|w| {
            (
                w.due_on,
                w.status,
                w.review.as_ref().map(|r| r.review_id.as_str()),
                w.days_late,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            // 01-15 in (12-31, 01-31].
            (date(2025, 1, 31), OnTime, Some("a"), 0),
            // Nothing in February; the first review after 02-28 is 04-10, beyond D3 = 03-31,
            // and 03-31 is before today: MISSED.
            (date(2025, 2, 28), Missed, None, 0),
            // Nothing in March; 04-10 is within (03-31, 04-30]: LATE by 10 days.
            (date(2025, 3, 31), Late, Some("b"), 10),
            // 04-30 is not due yet; b is held in it but answered for March (a review counts
            // for one window only).
            (date(2025, 4, 30), Upcoming, None, 0),
        ]
    );
}

#[test]
fn review_windows_month_ends_and_plans_shorter_than_the_interval() {
    // From 01-31, monthly: 01-31 + 1 month = 02-28 (chrono clamps to the month's end), - 1 day
    // = 02-27; then 03-31 - 1 = 03-30, ..., 07-31 - 1 = 07-30 = the half year's end.
    let w = review_windows(
        date(2025, 1, 31),
        Some(date(2025, 7, 30)),
        ReviewFrequency::Monthly,
        &[],
        date(2025, 1, 1),
    );
    assert_eq!(
        w.iter().map(|w| w.due_on).collect::<Vec<_>>(),
        vec![
            date(2025, 2, 27),
            date(2025, 3, 30),
            date(2025, 4, 29),
            date(2025, 5, 30),
            date(2025, 6, 29),
            date(2025, 7, 30)
        ]
    );
    assert_eq!(w[1].opens_on, date(2025, 2, 28));
    // A half-year plan reviewed yearly has no review due within its period.
    assert!(review_windows(
        date(2025, 1, 1),
        Some(date(2025, 6, 30)),
        ReviewFrequency::Yearly,
        &[],
        date(2025, 12, 1)
    )
    .is_empty());
}

// ---------------------------------------------------------------- issue 12, finding 4

/// A calendar-year plan reviewed quarterly, with its reviews scheduled.
fn quarterly_plan(log: &mut Log, setup: Timestamp, reviews: &[&str]) {
    log.now(
        setup,
        PlanDrafted {
            plan_id: PlanId::parse("p").unwrap(),
            period: PlanPeriod {
                kind: PlanPeriodKind::CalendarYear,
                start: date(2025, 1, 1),
                end: Some(date(2025, 12, 31)),
            },
            prepared_by: person("kam"),
            prepared_on: date(2025, 1, 1),
            review_frequency: ReviewFrequency::Quarterly,
        },
    );
    for id in reviews {
        log.now(
            setup,
            ReviewScheduled {
                review_id: ReviewId::parse(*id).unwrap(),
                kind: ReviewKind::InternalPlanReview,
                plan_id: Some(PlanId::parse("p").unwrap()),
                due_on: date(2025, 3, 31),
                supplier_attendees: vec![person("kam")],
                customer_attendees: vec![],
            },
        );
    }
}

pub(super) fn outcome(id: &str, on: Date) -> ReviewOutcomeRecorded {
    ReviewOutcomeRecorded {
        review_id: ReviewId::parse(id).unwrap(),
        held_on: on,
        supplier_attendees: vec![person("kam")],
        customer_attendees: vec![],
        outcome: ReviewOutcome::Approved,
        health: HealthRating::Green,
        decisions: vec![],
        follow_up_actions: vec![],
    }
}

/// (due date, status, review named, days late, days overdue) of each window of the only plan.
fn windows(r: &AccountCompliance) -> Vec<(Date, ReviewStatus, Option<String>, u32, u32)> {
    r.plan_reviews[0]
        .windows
        .iter()
        .map(|w| {
            (
                w.due_on,
                w.status,
                w.review.as_ref().map(|h| h.review_id.clone()),
                w.days_late,
                w.days_overdue,
            )
        })
        .collect()
}

#[test]
fn a_review_counts_from_the_day_it_was_held_not_from_when_its_outcome_was_entered() {
    use ReviewStatus::*;
    let setup = at(2025, 1, 1, 9);
    let mut log = Log::default();
    quarterly_plan(&mut log, setup, &["q1", "q2"]);
    log.now(at(2025, 3, 20, 16), outcome("q1", date(2025, 3, 20)))
        // Held on 07-08, entered (occurredAt and recorded) on 07-10.
        .now(at(2025, 7, 10, 9), outcome("q2", date(2025, 7, 8)));

    // As happened by 07-09: the review had been held (07-08): Q2 LATE by 8 days, not OVERDUE.
    let r = answer(&log, AsOf::happened_by(at(2025, 7, 9, 12)));
    assert_eq!(
        windows(&r)[..2],
        [
            (date(2025, 3, 31), OnTime, s("q1"), 0, 0),
            (date(2025, 6, 30), Late, s("q2"), 8, 0),
        ]
    );
    // As known at 07-09 nobody had entered it yet: OVERDUE by 9 days.
    let r = answer(&log, AsOf::known_at(at(2025, 7, 9, 12)));
    assert_eq!(windows(&r)[1], (date(2025, 6, 30), Overdue, None, 0, 9));
    // As known once it was entered: LATE by 8, dated by its heldOn.
    let r = answer(&log, AsOf::known_at(at(2025, 7, 10, 12)));
    assert_eq!(windows(&r)[1], (date(2025, 6, 30), Late, s("q2"), 8, 0));
    // On the day it was held (before the outcome's occurredAt of 07-10), as happened: it
    // counts from its date.
    let r = answer(&log, AsOf::happened_by(at(2025, 7, 8, 8)));
    assert_eq!(windows(&r)[1], (date(2025, 6, 30), Late, s("q2"), 8, 0));
}

#[test]
fn one_late_review_counts_for_one_window_only() {
    use ReviewStatus::*;
    // Quarterly from 01-01: D1 03-31, D2 06-30, D3 09-30, D4 12-31. Q1 on time; Q2 held late
    // on 07-08 (in window 3); nothing else.
    let reviews = [held("q1", date(2025, 3, 20)), held("q2", date(2025, 7, 8))];
    let at_date = |today| {
        review_windows(
            date(2025, 1, 1),
            Some(date(2025, 12, 31)),
            ReviewFrequency::Quarterly,
            &reviews,
            today,
        )
        .iter()
        .map(|w| {
            (
                w.status,
                w.review.as_ref().map(|r| r.review_id.clone()),
                w.days_late,
                w.days_overdue,
            )
        })
        .collect::<Vec<_>>()
    };
    // 07-10: Q2 LATE by 8; Q3 is upcoming and q2 is not its review (it answered for Q2).
    assert_eq!(
        at_date(date(2025, 7, 10)),
        vec![
            (OnTime, s("q1"), 0, 0),
            (Late, s("q2"), 8, 0),
            (Upcoming, None, 0, 0),
            (Upcoming, None, 0, 0),
        ]
    );
    // 10-15: Q3 had no review of its own: OVERDUE by 10-15 - 09-30 = 15 days (D4 12-31 is
    // still ahead), not ON_TIME on the strength of Q2's late review.
    assert_eq!(
        at_date(date(2025, 10, 15)),
        vec![
            (OnTime, s("q1"), 0, 0),
            (Late, s("q2"), 8, 0),
            (Overdue, None, 0, 15),
            (Upcoming, None, 0, 0),
        ]
    );
    // 2026-01-05: Q3 is MISSED (nothing after 09-30 by D4, which has passed); Q4 overdue.
    assert_eq!(
        at_date(date(2026, 1, 5))[2..],
        [(Missed, None, 0, 0), (Overdue, None, 0, 5)]
    );
    // A second review in window 3 is Q3's own: ON_TIME.
    let two = [
        held("q1", date(2025, 3, 20)),
        held("q2", date(2025, 7, 8)),
        held("q3", date(2025, 9, 12)),
    ];
    let w = review_windows(
        date(2025, 1, 1),
        Some(date(2025, 12, 31)),
        ReviewFrequency::Quarterly,
        &two,
        date(2025, 10, 15),
    );
    assert_eq!(
        (
            w[2].status,
            w[2].review.as_ref().map(|r| r.review_id.as_str())
        ),
        (OnTime, Some("q3"))
    );
}

/// One rule r1 on stakeholder s1 (phone calls every 10 days), set at `set`.
fn one_rule_log(set: Timestamp) -> Log {
    let mut log = Log::default();
    log.now(set, registered())
        .now(set, assigned("kam"))
        .now(set, stakeholder("s1", BuyingRole::EconomicBuyer))
        .now(
            set,
            rule(
                "r1",
                RuleTarget::Stakeholder(sh("s1")),
                10,
                &[Channel::PhoneCall],
            ),
        );
    log
}

/// (counted on track, active) of the account, the tenant rollup by account, by owner and for
/// the tenant, and a one-week trend: every path must agree.
fn shares_everywhere(log: &Log, view: AsOf) -> Vec<(u32, u32)> {
    let p = project(&log.events);
    let pair = |s: &Share| (s.counted_on_track(), s.active());
    let mut all = vec![pair(&p.account_compliance("t", "a", view).unwrap().share)];
    for g in [GroupBy::Account, GroupBy::Owner, GroupBy::Tenant] {
        let rollup = p.rollup("t", g, view).unwrap();
        all.push(pair(&rollup.groups[0].share));
        all.push(pair(&rollup.total));
    }
    all.push(pair(
        &p.trend("t", Some("a"), None, 1, view).unwrap()[0].share,
    ));
    all.push(pair(
        &p.trend("t", None, Some("kam"), 1, view).unwrap()[0].share,
    ));
    if view.axis == Axis::AsHappenedBy {
        let (on_track, active) = p.account_share("t", "a", view.at).unwrap().unwrap();
        all.push((on_track, active));
    }
    all
}

#[test]
fn a_never_met_rule_counts_as_on_track_until_its_first_due_date_has_passed() {
    let log = one_rule_log(at(2025, 1, 1, 9));
    // Set this morning: NEVER_MET, due 01-11, not late: the share is 1 of 1 (it was 0 %).
    let view = AsOf::happened_by(at(2025, 1, 1, 12));
    let r = answer(&log, view);
    assert_eq!(only(&r), (NeverMet, None, 0, 10));
    assert_eq!(
        r.share,
        Share {
            on_track: 0,
            due_soon: 0,
            overdue: 0,
            never_met: 1,
            never_met_not_due: 1,
        }
    );
    assert_eq!(r.share.share(), Some(1.0));
    assert!(r.overdue.is_empty());
    assert!(shares_everywhere(&log, view).iter().all(|&s| s == (1, 1)));
    assert!(shares_everywhere(&log, AsOf::known_at(view.at))
        .iter()
        .all(|&s| s == (1, 1)));
    // On its due date it is still not late.
    let view = AsOf::happened_by(at(2025, 1, 11, 12));
    assert_eq!(only(&answer(&log, view)), (NeverMet, None, 0, 0));
    assert!(shares_everywhere(&log, view).iter().all(|&s| s == (1, 1)));
    // The day after, it is late: off track, and in the overdue list (the two always add up).
    let view = AsOf::happened_by(at(2025, 1, 12, 12));
    let r = answer(&log, view);
    assert_eq!(only(&r), (NeverMet, None, 1, 0));
    assert_eq!(r.share.share(), Some(0.0));
    assert_eq!(overdue_list(&r.overdue), vec![("a".into(), "r1".into(), 1)]);
    assert!(shares_everywhere(&log, view).iter().all(|&s| s == (0, 1)));
    let rollup = project(&log.events)
        .rollup("t", GroupBy::Tenant, view)
        .unwrap();
    assert_eq!(overdue_list(&rollup.overdue), overdue_list(&r.overdue));
}

#[test]
fn a_rules_clock_starts_no_earlier_than_the_day_it_was_set() {
    // A call on 01-05, the rule (every 10 days) set only on 03-01.
    let mut log = one_rule_log(at(2025, 1, 1, 9));
    log.events.pop();
    log.now(
        at(2025, 1, 5, 10),
        interaction(
            "c1",
            at(2025, 1, 5, 10),
            Channel::PhoneCall,
            &["s1"],
            &["kam"],
        ),
    )
    .now(
        at(2025, 3, 1, 9),
        rule(
            "r1",
            RuleTarget::Stakeholder(sh("s1")),
            10,
            &[Channel::PhoneCall],
        ),
    );
    // On 03-01 the January call is the last qualifying one (shown), but the rule is due
    // max(01-05, 03-01) + 10 = 03-11, not 01-15: ON_TRACK, 10 days ahead (it was OVERDUE by 45).
    let view = AsOf::happened_by(at(2025, 3, 1, 12));
    let r = answer(&log, view);
    assert_eq!(only(&r), (OnTrack, s("c1"), 0, 10));
    assert_eq!(r.rules[0].due_on, date(2025, 3, 11));
    assert_eq!(r.rules[0].set_on, date(2025, 3, 1));
    assert!(r.overdue.is_empty());
    assert!(shares_everywhere(&log, view).iter().all(|&s| s == (1, 1)));
    // 03-09: within the due-soon window (10/4 = 2 days).
    assert_eq!(
        only(&answer(&log, AsOf::happened_by(at(2025, 3, 9, 12)))),
        (DueSoon, s("c1"), 0, 2)
    );
    // 03-14: late by 3 days from 03-11, in every overdue list.
    let view = AsOf::happened_by(at(2025, 3, 14, 12));
    let r = answer(&log, view);
    assert_eq!(only(&r), (Overdue, s("c1"), 3, 0));
    let rollup = project(&log.events)
        .rollup("t", GroupBy::Owner, view)
        .unwrap();
    assert_eq!(
        overdue_list(&rollup.overdue),
        vec![("a".into(), "r1".into(), 3)]
    );
    assert!(shares_everywhere(&log, view).iter().all(|&s| s == (0, 1)));
}
