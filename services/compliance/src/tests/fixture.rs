//! The Globex 2025 fixture (`keyplan_testkit::globex`), with every number computed by hand
//! from the fixture's table.
//!
//! Reminders used throughout (all rules set 2025-01-02 09:00; interactions at 10:00):
//! - r-cfo: stakeholder cfo, in person / business review, 30 days, due-soon window
//!   min(7, max(1, 30/4 = 7)) = 7.
//! - r-tech: buying role technical buyer (only cto has it), phone / video / in person, 14 days,
//!   window min(7, max(1, 14/4 = 3)) = 3. Business reviews (i14, i32) and the email i20 do not
//!   count; i22 is with eng (an influencer) and does not count; i15 is held by sam, not the
//!   owner lee, and counts (any team member).
//! - r-proc: stakeholder proc, email / phone / in person, 45 days, window min(7, 11) = 7.
//! - r-users: buying role user (ops, qa), site visit / in person, 30 days, window 7.
//! - r-coach: stakeholder coach, phone / video, 21 days, window min(7, 5) = 5; retired
//!   2025-07-01 09:00.
//! - i12 (cfo, 03-10) was recorded 03-14; i34 (cfo, 10-20) was recorded 10-27; i13 (cto, phone,
//!   03-24) was corrected on 03-26 10:00 to a video call with cto and eng on 03-21.

use keyplan_testkit::{at, date, globex};

use super::*;
use crate::model::RuleStatus::*;

fn answer(p: &ComplianceProjection, as_of: AsOf) -> AccountCompliance {
    p.account_compliance(globex::TENANT, globex::ACCOUNT, as_of)
        .unwrap()
}

#[test]
fn january_25_two_rules_never_met_one_of_them_past_due() {
    let p = globex_projection();
    let t = at(2025, 1, 25, 12);
    let r = answer(&p, AsOf::happened_by(t));
    assert_eq!(
        lines(&r),
        expect(&[
            // i01 01-08 + 30 = 02-07; 02-07 - 01-25 = 13 > 7.
            ("r-cfo", OnTrack, Some("i01"), date(2025, 2, 7), 0, 13),
            // Never met: set 01-02 + 21 = 01-23; 01-25 - 01-23 = 2 days overdue.
            ("r-coach", NeverMet, None, date(2025, 1, 23), 2, 0),
            // Never met: 01-02 + 45 = 02-16, 22 days ahead.
            ("r-proc", NeverMet, None, date(2025, 2, 16), 0, 22),
            // i02 01-13 + 14 = 01-27; 2 days <= window 3.
            ("r-tech", DueSoon, Some("i02"), date(2025, 1, 27), 0, 2),
            // i03 01-20 (site visit with ops and qa) + 30 = 02-19; 25 days.
            ("r-users", OnTrack, Some("i03"), date(2025, 2, 19), 0, 25),
        ])
    );
    // On track: cfo, users (ON_TRACK) + tech (DUE_SOON) + proc (NEVER_MET, first due 02-16,
    // not late yet) = 4 of 5 active; coach, past its first due date, is not.
    assert_eq!(
        r.share,
        Share {
            on_track: 2,
            due_soon: 1,
            overdue: 0,
            never_met: 2,
            never_met_not_due: 1,
        }
    );
    assert_eq!((r.share.counted_on_track(), r.share.active()), (4, 5));
    assert_eq!(r.share.share(), Some(0.8));
    // Only the never-met rule past its first due date is overdue.
    assert_eq!(
        overdue_list(&r.overdue),
        vec![("globex".into(), "r-coach".into(), 2)]
    );
    assert_eq!(r.overdue[0].status, NeverMet);
    // Nothing is late yet: both axes agree (nothing was logged late before March).
    assert_eq!(answer(&p, AsOf::known_at(t)).rules, r.rules);
}

#[test]
fn march_12_the_cfo_meeting_logged_four_days_late_splits_the_axes() {
    let p = globex_projection();
    let t = at(2025, 3, 12, 12);

    let happened = answer(&p, AsOf::happened_by(t));
    assert_eq!(
        lines(&happened),
        expect(&[
            // i12 03-10 (recorded 03-14, but it had happened): + 30 = 04-09, 28 days.
            ("r-cfo", OnTrack, Some("i12"), date(2025, 4, 9), 0, 28),
            // i11 03-05 + 21 = 03-26, 14 days > 5.
            ("r-coach", OnTrack, Some("i11"), date(2025, 3, 26), 0, 14),
            // i08 02-17 (email) + 45 = 04-03, 22 days.
            ("r-proc", OnTrack, Some("i08"), date(2025, 4, 3), 0, 22),
            // i09 02-24 + 14 = 03-10; 03-12 - 03-10 = 2 days overdue.
            ("r-tech", Overdue, Some("i09"), date(2025, 3, 10), 2, 0),
            // i10 03-03 + 30 = 04-02, 21 days.
            ("r-users", OnTrack, Some("i10"), date(2025, 4, 2), 0, 21),
        ])
    );
    assert_eq!(
        (happened.share.counted_on_track(), happened.share.active()),
        (4, 5)
    );
    assert_eq!(
        overdue_list(&happened.overdue),
        vec![("globex".into(), "r-tech".into(), 2)]
    );

    let known = answer(&p, AsOf::known_at(t));
    let cfo = &known.rules[0];
    // As known on 03-12, i12 did not exist yet: last i06 02-05 + 30 = 03-07, 5 days overdue.
    assert_eq!(
        (
            cfo.status,
            cfo.last_interaction
                .as_ref()
                .map(|i| i.interaction_id.as_str()),
            cfo.due_on,
            cfo.days_overdue
        ),
        (Overdue, Some("i06"), date(2025, 3, 7), 5)
    );
    // 3 of 5 on track; overdue sorted by days: cfo 5, tech 2.
    assert_eq!(
        (known.share.counted_on_track(), known.share.active()),
        (3, 5)
    );
    assert_eq!(
        overdue_list(&known.overdue),
        vec![
            ("globex".into(), "r-cfo".into(), 5),
            ("globex".into(), "r-tech".into(), 2)
        ]
    );

    // Once i12 is recorded (03-14 10:00), both axes agree again.
    let later = at(2025, 3, 14, 12);
    assert_eq!(
        answer(&p, AsOf::known_at(later)).rules,
        answer(&p, AsOf::happened_by(later)).rules
    );
}

#[test]
fn march_22_the_corrected_call_counts_from_its_corrected_date_as_happened_only() {
    let p = globex_projection();
    let t = at(2025, 3, 22, 12);

    let happened = answer(&p, AsOf::happened_by(t));
    assert_eq!(
        lines(&happened),
        expect(&[
            // i12 03-10 + 30 = 04-09, 18 days.
            ("r-cfo", OnTrack, Some("i12"), date(2025, 4, 9), 0, 18),
            // i11 03-05 + 21 = 03-26, 4 days <= window 5.
            ("r-coach", DueSoon, Some("i11"), date(2025, 3, 26), 0, 4),
            // 04-03, 12 days.
            ("r-proc", OnTrack, Some("i08"), date(2025, 4, 3), 0, 12),
            // i13 as corrected: video call on 03-21 (recorded 03-26, known now) + 14 = 04-04, 13 days.
            ("r-tech", OnTrack, Some("i13"), date(2025, 4, 4), 0, 13),
            // 04-02, 11 days.
            ("r-users", OnTrack, Some("i10"), date(2025, 4, 2), 0, 11),
        ])
    );
    let tech = &happened.rules[3];
    let last = tech.last_interaction.as_ref().unwrap();
    assert!(last.corrected);
    assert_eq!(last.occurred_at, at(2025, 3, 21, 10));
    // 4 ON_TRACK + 1 DUE_SOON = 5 of 5.
    assert_eq!(
        (happened.share.counted_on_track(), happened.share.active()),
        (5, 5)
    );
    assert_eq!(happened.share.share(), Some(1.0));
    assert!(happened.overdue.is_empty());

    // As known on 03-22: i13 was logged for 03-24 (after T) and the correction came on 03-26,
    // so the last cto call is i09 02-24 + 14 = 03-10: 12 days overdue.
    let known = answer(&p, AsOf::known_at(t));
    let tech = &known.rules[3];
    assert_eq!(
        (
            tech.status,
            tech.last_interaction
                .as_ref()
                .map(|i| i.interaction_id.as_str()),
            tech.days_overdue
        ),
        (Overdue, Some("i09"), 12)
    );
    assert_eq!(
        (known.share.counted_on_track(), known.share.active()),
        (4, 5)
    );
    assert_eq!(
        overdue_list(&known.overdue),
        vec![("globex".into(), "r-tech".into(), 12)]
    );
}

#[test]
fn march_25_each_axis_sees_its_own_version_of_the_corrected_call() {
    let p = globex_projection();
    let t = at(2025, 3, 25, 12);
    // As known on 03-25: the call as first logged (phone, 03-24) + 14 = 04-07, 13 days.
    let known = answer(&p, AsOf::known_at(t));
    let tech = &known.rules[3];
    let last = tech.last_interaction.as_ref().unwrap();
    assert_eq!(
        (
            last.interaction_id.as_str(),
            last.corrected,
            last.occurred_at
        ),
        ("i13", false, at(2025, 3, 24, 10))
    );
    assert_eq!(
        (tech.status, tech.due_on, tech.days_until_due),
        (OnTrack, date(2025, 4, 7), 13)
    );
    // As happened: the corrected content (03-21) + 14 = 04-04, 10 days.
    let happened = answer(&p, AsOf::happened_by(t));
    let tech = &happened.rules[3];
    let last = tech.last_interaction.as_ref().unwrap();
    assert_eq!(
        (
            last.interaction_id.as_str(),
            last.corrected,
            last.occurred_at
        ),
        ("i13", true, at(2025, 3, 21, 10))
    );
    assert_eq!(
        (tech.status, tech.due_on, tech.days_until_due),
        (OnTrack, date(2025, 4, 4), 10)
    );
}

#[test]
fn april_20_a_call_by_a_team_member_other_than_the_owner_counts() {
    let p = globex_projection();
    let r = answer(&p, AsOf::happened_by(at(2025, 4, 20, 12)));
    let tech = &r.rules[3];
    // i15 (04-14, video call with cto) was held by sam, not lee: any team member counts.
    // 04-14 + 14 = 04-28; 04-28 - 04-20 = 8 days > 3: ON_TRACK. (Without it: i13 03-21 + 14 =
    // 04-04, 16 days overdue.)
    assert_eq!(
        (
            tech.status,
            tech.last_interaction
                .as_ref()
                .map(|i| i.interaction_id.as_str()),
            tech.due_on,
            tech.days_until_due
        ),
        (OnTrack, Some("i15"), date(2025, 4, 28), 8)
    );
}

#[test]
fn july_1_the_retired_coach_rule_stops_counting_at_nine() {
    let p = globex_projection();
    // 08:00, one hour before the retirement.
    let before = answer(&p, AsOf::happened_by(at(2025, 7, 1, 8)));
    assert_eq!(
        lines(&before),
        expect(&[
            // i23 06-25 (in person, held by eve, the executive sponsor) + 30 = 07-25, 24 days.
            ("r-cfo", OnTrack, Some("i23"), date(2025, 7, 25), 0, 24),
            // i19 05-12 + 21 = 06-02; 07-01 - 06-02 = 29 days overdue.
            ("r-coach", Overdue, Some("i19"), date(2025, 6, 2), 29, 0),
            // i16 04-22 + 45 = 06-06; 25 days overdue.
            ("r-proc", Overdue, Some("i16"), date(2025, 6, 6), 25, 0),
            // i21 06-02 + 14 = 06-16 (i20 was an email, i22 was with eng); 15 days overdue.
            ("r-tech", Overdue, Some("i21"), date(2025, 6, 16), 15, 0),
            // i17 04-30 + 30 = 05-30; 32 days overdue.
            ("r-users", Overdue, Some("i17"), date(2025, 5, 30), 32, 0),
        ])
    );
    assert_eq!(
        (before.share.counted_on_track(), before.share.active()),
        (1, 5)
    );
    assert_eq!(
        overdue_list(&before.overdue),
        vec![
            ("globex".into(), "r-users".into(), 32),
            ("globex".into(), "r-coach".into(), 29),
            ("globex".into(), "r-proc".into(), 25),
            ("globex".into(), "r-tech".into(), 15),
        ]
    );
    assert!(before.retired.is_empty());

    // 12:00: r-coach retired at 09:00, 1 of 4 on track.
    let after = answer(&p, AsOf::happened_by(at(2025, 7, 1, 12)));
    assert_eq!(
        after
            .rules
            .iter()
            .map(|r| r.definition.rule_id.as_str())
            .collect::<Vec<_>>(),
        ["r-cfo", "r-proc", "r-tech", "r-users"]
    );
    assert_eq!(
        (after.share.counted_on_track(), after.share.active()),
        (1, 4)
    );
    assert_eq!(after.share.share(), Some(0.25));
    assert_eq!(
        overdue_list(&after.overdue),
        vec![
            ("globex".into(), "r-users".into(), 32),
            ("globex".into(), "r-proc".into(), 25),
            ("globex".into(), "r-tech".into(), 15),
        ]
    );
    assert_eq!(
        after.retired,
        vec![RetiredRule {
            rule_id: "r-coach".into(),
            retired_at: at(2025, 7, 1, 9)
        }]
    );
    // The rule's descriptive fields.
    let cfo = &after.rules[0];
    assert_eq!(cfo.target_description, "stakeholder cfo (Lee Park)");
    assert_eq!(cfo.owner_name, "Dana Kim");
    assert_eq!(cfo.set_on, date(2025, 1, 2));
    assert_eq!(cfo.due_soon_window_days, 7);
    assert_eq!(
        after.rules[2].target_description,
        "buying role technical buyer"
    );
    assert_eq!(after.rules[2].due_soon_window_days, 3);
}

#[test]
fn october_25_the_late_logged_meeting_turns_due_soon_into_on_track() {
    let p = globex_projection();
    let t = at(2025, 10, 25, 12);
    let happened = answer(&p, AsOf::happened_by(t));
    assert_eq!(
        lines(&happened),
        expect(&[
            // i34 10-20 (recorded 10-27) + 30 = 11-19, 25 days.
            ("r-cfo", OnTrack, Some("i34"), date(2025, 11, 19), 0, 25),
            // i28 08-20 + 45 = 10-04; 21 days overdue.
            ("r-proc", Overdue, Some("i28"), date(2025, 10, 4), 21, 0),
            // i33 10-13 + 14 = 10-27, 2 days <= 3.
            ("r-tech", DueSoon, Some("i33"), date(2025, 10, 27), 0, 2),
            // i29 09-01 + 30 = 10-01; 24 days overdue.
            ("r-users", Overdue, Some("i29"), date(2025, 10, 1), 24, 0),
        ])
    );
    let known = answer(&p, AsOf::known_at(t));
    // As known on 10-25: the last cfo contact is the business review i32 09-26 + 30 = 10-26,
    // 1 day: DUE_SOON. Either way 2 of 4 are on track.
    let cfo = &known.rules[0];
    assert_eq!(
        (
            cfo.status,
            cfo.last_interaction
                .as_ref()
                .map(|i| i.interaction_id.as_str()),
            cfo.days_until_due
        ),
        (DueSoon, Some("i32"), 1)
    );
    assert_eq!(
        happened.share,
        Share {
            on_track: 1,
            due_soon: 1,
            overdue: 2,
            never_met: 0,
            never_met_not_due: 0,
        }
    );
    assert_eq!(
        known.share,
        Share {
            on_track: 0,
            due_soon: 2,
            overdue: 2,
            never_met: 0,
            never_met_not_due: 0,
        }
    );
    assert_eq!(
        overdue_list(&known.overdue),
        vec![
            ("globex".into(), "r-users".into(), 24),
            ("globex".into(), "r-proc".into(), 21)
        ]
    );
}

#[test]
fn december_31_year_end() {
    let p = globex_projection();
    let r = answer(&p, AsOf::happened_by(at(2025, 12, 31, 12)));
    assert_eq!(
        lines(&r),
        expect(&[
            // i37 12-01 + 30 = 12-31: due today, 0 days: DUE_SOON.
            ("r-cfo", DueSoon, Some("i37"), date(2025, 12, 31), 0, 0),
            // 10-04 to 12-31 = 27 + 30 + 31 = 88 days overdue.
            ("r-proc", Overdue, Some("i28"), date(2025, 10, 4), 88, 0),
            // i38 12-08 + 14 = 12-22; 9 days overdue.
            ("r-tech", Overdue, Some("i38"), date(2025, 12, 22), 9, 0),
            // i35 11-03 + 30 = 12-03; 28 days overdue.
            ("r-users", Overdue, Some("i35"), date(2025, 12, 3), 28, 0),
        ])
    );
    assert_eq!((r.share.counted_on_track(), r.share.active()), (1, 4));
    assert_eq!(
        overdue_list(&r.overdue),
        vec![
            ("globex".into(), "r-proc".into(), 88),
            ("globex".into(), "r-users".into(), 28),
            ("globex".into(), "r-tech".into(), 9),
        ]
    );
}

/// (index, status, review, days late, days overdue) of each window of plan-2025.
fn windows(r: &AccountCompliance) -> Vec<(u32, ReviewStatus, Option<String>, u32, u32)> {
    assert_eq!(r.plan_reviews.len(), 1);
    r.plan_reviews[0]
        .windows
        .iter()
        .map(|w| {
            (
                w.index,
                w.status,
                w.review.as_ref().map(|h| h.review_id.clone()),
                w.days_late,
                w.days_overdue,
            )
        })
        .collect()
}

#[test]
fn review_cadence_of_plan_2025_over_the_year() {
    use ReviewStatus::*;
    let p = globex_projection();
    let s = |x: &str| Some(x.to_owned());
    // Quarterly from 2025-01-01: D1 = 04-01 - 1 = 03-31, D2 = 06-30, D3 = 09-30, D4 = 12-31.
    let r = answer(&p, AsOf::happened_by(at(2025, 1, 25, 12)));
    let plan = &r.plan_reviews[0];
    assert_eq!(
        plan.windows
            .iter()
            .map(|w| (w.opens_on, w.due_on))
            .collect::<Vec<_>>(),
        vec![
            (date(2025, 1, 1), date(2025, 3, 31)),
            (date(2025, 4, 1), date(2025, 6, 30)),
            (date(2025, 7, 1), date(2025, 9, 30)),
            (date(2025, 10, 1), date(2025, 12, 31)),
        ]
    );
    assert_eq!(
        windows(&r),
        vec![
            (1, Upcoming, None, 0, 0),
            (2, Upcoming, None, 0, 0),
            (3, Upcoming, None, 0, 0),
            (4, Upcoming, None, 0, 0)
        ]
    );

    // 07-05: Q1 held 03-28 in window 1; window 2 had none and nothing since: 07-05 - 06-30 = 5
    // days overdue (window 3 still open).
    let r = answer(&p, AsOf::happened_by(at(2025, 7, 5, 12)));
    assert_eq!(
        windows(&r),
        vec![
            (1, OnTime, s("rev-q1"), 0, 0),
            (2, Overdue, None, 0, 5),
            (3, Upcoming, None, 0, 0),
            (4, Upcoming, None, 0, 0)
        ]
    );

    // 07-08 12:00: the Q2 outcome is recorded at 16:00 that day, not yet: 8 days overdue.
    let r = answer(&p, AsOf::known_at(at(2025, 7, 8, 12)));
    assert_eq!(windows(&r)[1], (2, Overdue, None, 0, 8));

    // 07-10: rev-q2 held 07-08, in window 3 = the one after window 2: LATE by 07-08 - 06-30 = 8
    // days. It counts for window 2 only: window 3 (not yet due) names no review.
    let r = answer(&p, AsOf::happened_by(at(2025, 7, 10, 12)));
    assert_eq!(
        windows(&r),
        vec![
            (1, OnTime, s("rev-q1"), 0, 0),
            (2, Late, s("rev-q2"), 8, 0),
            (3, Upcoming, None, 0, 0),
            (4, Upcoming, None, 0, 0)
        ]
    );

    // 10-15: window 3 holds rev-q2 (07-08, which answered for window 2) and rev-q3 (09-26),
    // its own review: ON_TIME with rev-q3.
    let r = answer(&p, AsOf::happened_by(at(2025, 10, 15, 12)));
    assert_eq!(
        windows(&r),
        vec![
            (1, OnTime, s("rev-q1"), 0, 0),
            (2, Late, s("rev-q2"), 8, 0),
            (3, OnTime, s("rev-q3"), 0, 0),
            (4, Upcoming, None, 0, 0)
        ]
    );
    let plan = &r.plan_reviews[0];
    assert_eq!(
        (plan.count(OnTime), plan.count(Late), plan.count(Upcoming)),
        (2, 1, 1)
    );

    // 2026-01-15: rev-q4 was never held; D5 = 2026-03-31 not yet passed: OVERDUE by
    // 01-15 - 12-31 = 15 days.
    let r = answer(&p, AsOf::happened_by(at(2026, 1, 15, 12)));
    assert_eq!(windows(&r)[3], (4, Overdue, None, 0, 15));
    // 2026-04-01: window 5 (2026-01-01..03-31) has ended too: MISSED.
    let r = answer(&p, AsOf::happened_by(at(2026, 4, 1, 12)));
    assert_eq!(windows(&r)[3], (4, Missed, None, 0, 0));
    assert_eq!(r.plan_reviews[0].count(OnTime), 2);
    assert_eq!(r.plan_reviews[0].count(Late), 1);
    assert_eq!(r.plan_reviews[0].count(Missed), 1);

    // Before the plan was drafted (2025-01-02 09:00) there is no cadence to check.
    let r = answer(&p, AsOf::happened_by(at(2025, 1, 2, 8)));
    assert!(r.plan_reviews.is_empty());
    assert!(r.rules.is_empty());
    assert_eq!(r.share.share(), None);
}

#[test]
fn weekly_trend_into_july() {
    let p = globex_projection();
    let points = p
        .trend(
            globex::TENANT,
            Some(globex::ACCOUNT),
            None,
            4,
            AsOf::happened_by(at(2025, 7, 1, 12)),
        )
        .unwrap();
    let got: Vec<_> = points
        .iter()
        .map(|pt| (pt.at, pt.share.counted_on_track(), pt.share.active()))
        .collect();
    assert_eq!(
        got,
        vec![
            // 06-10: cfo i18 05-06 + 30 = 06-05 overdue; tech i21 06-02 + 14 = 06-16, 6 days
            // > 3 on track; proc 06-06, users 05-30, coach 06-02 overdue: 1 of 5.
            (at(2025, 6, 10, 12), 1, 5),
            // 06-17: tech due 06-16 is now 1 day overdue (i22 was with eng): 0 of 5.
            (at(2025, 6, 17, 12), 0, 5),
            // 06-24: unchanged (i23 is on 06-25): 0 of 5.
            (at(2025, 6, 24, 12), 0, 5),
            // 07-01 12:00: cfo met on 06-25, coach retired: 1 of 4.
            (at(2025, 7, 1, 12), 1, 4),
        ]
    );

    // Lee's rules (r-tech, r-proc) over two weeks ending 03-22, as known then: tech overdue
    // both times (i09 02-24 + 14 = 03-10), proc on track (04-03): 1 of 2, 1 of 2.
    let lee = p
        .trend(
            globex::TENANT,
            None,
            Some("lee"),
            2,
            AsOf::known_at(at(2025, 3, 22, 12)),
        )
        .unwrap();
    assert_eq!(
        lee.iter()
            .map(|pt| (pt.share.counted_on_track(), pt.share.active()))
            .collect::<Vec<_>>(),
        vec![(1, 2), (1, 2)]
    );
    // As happened, the corrected i13 (03-21) puts tech on track on 03-22: 2 of 2.
    let lee = p
        .trend(
            globex::TENANT,
            None,
            Some("lee"),
            2,
            AsOf::happened_by(at(2025, 3, 22, 12)),
        )
        .unwrap();
    assert_eq!(
        lee.iter()
            .map(|pt| (pt.share.counted_on_track(), pt.share.active()))
            .collect::<Vec<_>>(),
        vec![(1, 2), (2, 2)]
    );
}

#[test]
fn trend_arguments_are_checked() {
    let p = globex_projection();
    let t = AsOf::happened_by(at(2025, 7, 1, 12));
    assert!(matches!(
        p.trend(globex::TENANT, None, None, 0, t),
        Err(crate::QueryError::InvalidArgument { field: "weeks", .. })
    ));
    assert!(matches!(
        p.trend(globex::TENANT, None, None, 105, t),
        Err(crate::QueryError::InvalidArgument { field: "weeks", .. })
    ));
    assert!(matches!(
        p.trend(globex::TENANT, Some("nope"), None, 4, t),
        Err(crate::QueryError::NotFound(_))
    ));
    assert_eq!(
        p.trend(globex::TENANT, None, None, 104, t).unwrap().len(),
        104
    );
}

#[test]
fn rollups_over_two_accounts() {
    let mut events = globex::events();
    events.extend(globex_twin("initech"));
    let p = project(&events);
    let t = AsOf::happened_by(at(2025, 7, 1, 12));

    // Each account: 1 of 4 (see july_1...).
    let by_account = p.rollup(globex::TENANT, GroupBy::Account, t).unwrap();
    let got: Vec<_> = by_account
        .groups
        .iter()
        .map(|g| {
            (
                g.key.as_str(),
                g.label.as_str(),
                g.share.counted_on_track(),
                g.share.active(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("globex", "Globex Corporation", 1, 4),
            ("initech", "Globex Corporation", 1, 4)
        ]
    );
    // Per owner: dana owns r-cfo (on track) twice, r-coach is retired: 2 of 2; lee owns r-tech
    // and r-proc (both overdue) twice: 0 of 4; sam owns r-users (overdue) twice: 0 of 2.
    let by_owner = p.rollup(globex::TENANT, GroupBy::Owner, t).unwrap();
    let got: Vec<_> = by_owner
        .groups
        .iter()
        .map(|g| {
            (
                g.key.as_str(),
                g.label.as_str(),
                g.share.counted_on_track(),
                g.share.active(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("dana", "Dana Kim", 2, 2),
            ("lee", "Lee Chan", 0, 4),
            ("sam", "Sam Ortiz", 0, 2)
        ]
    );
    // The tenant: 2 of 8 = 0.25.
    let by_tenant = p.rollup(globex::TENANT, GroupBy::Tenant, t).unwrap();
    assert_eq!(by_tenant.groups.len(), 1);
    assert_eq!(by_tenant.groups[0].key, "acme");
    assert_eq!(by_tenant.groups[0].share.share(), Some(0.25));
    assert_eq!(by_tenant.total, by_owner.total);
    // Overdue across the tenant: by days, then account, then rule.
    assert_eq!(
        overdue_list(&by_tenant.overdue),
        vec![
            ("globex".into(), "r-users".into(), 32),
            ("initech".into(), "r-users".into(), 32),
            ("globex".into(), "r-proc".into(), 25),
            ("initech".into(), "r-proc".into(), 25),
            ("globex".into(), "r-tech".into(), 15),
            ("initech".into(), "r-tech".into(), 15),
        ]
    );
    // Another tenant is empty, not an error.
    let other = p.rollup("nobody", GroupBy::Account, t).unwrap();
    assert!(other.groups.is_empty());
    assert_eq!(other.total.share(), None);
}

#[test]
fn account_share_for_the_portfolio_view() {
    let p = globex_projection();
    // As happened by 07-01 12:00: 1 of 4.
    assert_eq!(
        p.account_share(globex::TENANT, globex::ACCOUNT, at(2025, 7, 1, 12))
            .unwrap(),
        Some((1, 4))
    );
    // 03-22 12:00: 5 of 5 (the corrected call counts, see march_22...).
    assert_eq!(
        p.account_share(globex::TENANT, globex::ACCOUNT, at(2025, 3, 22, 12))
            .unwrap(),
        Some((5, 5))
    );
    // Before any rule was set: no share.
    assert_eq!(
        p.account_share(globex::TENANT, globex::ACCOUNT, at(2025, 1, 1, 0))
            .unwrap(),
        None
    );
    assert_eq!(
        p.account_share(globex::TENANT, "nope", at(2025, 7, 1, 12))
            .unwrap(),
        None
    );
}
