//! Hand-computed numbers on the Globex fixture.
//!
//! The interactions after the correction of i13 (moved from Mon 2025-03-24, phone, cto,
//! neutral to Fri 2025-03-21, video call, cto + eng, positive), with sentiment scores:
//!
//! | id | date | channel | stakeholders | participants | score |
//! |---|---|---|---|---|---|
//! | i01 | 01-08 | in person | cfo | dana | +1 |
//! | i02 | 01-13 | video | cto | lee | 0 |
//! | i03 | 01-20 | site visit | ops, qa | sam | +1 |
//! | i04 | 01-27 | phone | cto | lee | +1 |
//! | i05 | 02-03 | phone | coach | dana | +2 |
//! | i06 | 02-05 | in person | cfo | dana, eve | +1 |
//! | i07 | 02-10 | video | cto, eng | lee | +1 |
//! | i08 | 02-17 | email | proc | lee | -1 |
//! | i09 | 02-24 | video | cto | lee | 0 |
//! | i10 | 03-03 | site visit | ops | sam | 0 |
//! | i11 | 03-05 | phone | coach | dana | +1 |
//! | i12 | 03-10 | in person | cfo | dana | +1 |
//! | i13 | 03-21 | video | cto, eng | lee | +1 |
//! | i14 | 03-28 | business review | cfo, cto | dana, lee | +1 |
//! | i15 | 04-14 | video | cto | sam | -1 |
//! | i16 | 04-22 | in person | proc | lee | 0 |
//! | i17 | 04-30 | site visit | qa | sam | +1 |
//! | i18 | 05-06 | in person | cfo | dana | +2 |
//! | i19 | 05-12 | phone | coach | dana | +1 |
//! | i20 | 05-19 | email | cto | lee | 0 |
//! | i21 | 06-02 | phone | cto | lee | +1 |
//! | i22 | 06-16 | video | eng | lee | +1 |
//! | i23 | 06-25 | in person | cfo | eve | +1 |
//! | i24 | 07-07 | site visit | ops | sam | 0 |
//! | i25 | 07-14 | phone | cto | lee | 0 |
//! | i26 | 07-28 | video | cto | lee | +1 |
//! | i27 | 08-05 | in person | cfo | dana | 0 |
//! | i28 | 08-20 | phone | proc | lee | -1 |
//! | i29 | 09-01 | site visit | ops, qa | sam | +1 |
//! | i30 | 09-10 | in person | cfo | dana | +1 |
//! | i31 | 09-15 | phone | cto | lee | +1 |
//! | i32 | 09-26 | business review | cfo, cto | dana, lee | +1 |
//! | i33 | 10-13 | video | cto | lee | 0 |
//! | i34 | 10-20 | in person | cfo | dana | -1 |
//! | i35 | 11-03 | site visit | ops | sam | +1 |
//! | i36 | 11-17 | phone | cto | lee | 0 |
//! | i37 | 12-01 | in person | cfo | dana | +1 |
//! | i38 | 12-08 | phone | cto | lee | +1 |
//!
//! Buying roles: cfo economic buyer, cto technical buyer, proc and legal gatekeeper, ops and
//! qa user, eng influencer, coach coach. Day of year (2025) of the first of each month:
//! Jan 1, Feb 32, Mar 60, Apr 91, May 121, Jun 152, Jul 182, Aug 213, Sep 244, Oct 274,
//! Nov 305, Dec 335.

use std::collections::BTreeMap;

use keyplan_domain::values::Timestamp;
use keyplan_proto::convert::timestamp_to_proto;
use keyplan_proto::pb;
use keyplan_testkit::globex::{self, ACCOUNT, TENANT};
use keyplan_testkit::{at, date, Step};

use super::{decide, portfolio_histories, project, renumber, step, steps_until};
use crate::calendar::Period;
use crate::queries::Dimension;
use crate::{ActivityError, ActivityProjection, ComplianceSource};

fn counts(
    p: &ActivityProjection,
    account: Option<&str>,
    period: Period,
    dimension: Dimension,
    from: (i32, u32, u32),
    to: (i32, u32, u32),
) -> pb::GetActivityCountsResponse {
    p.activity_counts(
        TENANT,
        account,
        period,
        dimension,
        date(from.0, from.1, from.2),
        date(to.0, to.1, to.2),
    )
    .unwrap()
}

fn year(
    p: &ActivityProjection,
    account: Option<&str>,
    dimension: Dimension,
) -> pb::GetActivityCountsResponse {
    counts(
        p,
        account,
        Period::Quarter,
        dimension,
        (2025, 1, 1),
        (2025, 12, 31),
    )
}

/// Count per key over all periods (keys qualified by account when the bucket has one).
fn per_key(r: &pb::GetActivityCountsResponse) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for b in &r.buckets {
        let key = if b.account_id.is_empty() || b.account_id == b.key {
            b.key.clone()
        } else {
            format!("{}/{}", b.account_id, b.key)
        };
        *out.entry(key).or_default() += b.count;
    }
    out
}

/// Count per key in the period starting on `start`.
fn in_period(r: &pb::GetActivityCountsResponse, start: &str) -> BTreeMap<String, u32> {
    r.buckets
        .iter()
        .filter(|b| b.period_start == start)
        .map(|b| (b.key.clone(), b.count))
        .collect()
}

fn map(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Period start, period end, actual, goal, difference, attainment, margin, records.
type RevenueRow<'a> = (
    &'a str,
    &'a str,
    i64,
    i64,
    i64,
    Option<u64>,
    Option<i32>,
    u32,
);

fn ts(t: Timestamp) -> Option<prost_types::Timestamp> {
    Some(timestamp_to_proto(t))
}

fn eur(minor_units: i64) -> pb::Money {
    pb::Money {
        currency: "EUR".into(),
        minor_units,
    }
}

#[test]
fn quarterly_activity_and_sentiment_trend_of_the_account() {
    let p = project(&globex::events());
    let r = year(&p, Some(ACCOUNT), Dimension::Account);
    assert_eq!(
        (r.from.as_str(), r.to.as_str()),
        ("2025-01-01", "2025-12-31")
    );
    let periods: Vec<(&str, &str, u32)> = r
        .periods
        .iter()
        .map(|p| {
            (
                p.period_start.as_str(),
                p.period_end.as_str(),
                p.interactions,
            )
        })
        .collect();
    // Q1 i01-i14 = 14, Q2 i15-i23 = 9, Q3 i24-i32 = 9, Q4 i33-i38 = 6.
    assert_eq!(
        periods,
        vec![
            ("2025-01-01", "2025-03-31", 14),
            ("2025-04-01", "2025-06-30", 9),
            ("2025-07-01", "2025-09-30", 9),
            ("2025-10-01", "2025-12-31", 6),
        ]
    );
    // Q1: 1+0+1+1+2+1+1-1+0+0+1+1+1(i13 corrected to positive)+1 = 10
    // Q2: -1+0+1+2+1+0+1+1+1 = 6;  Q3: 0+0+1+0-1+1+1+1+1 = 4;  Q4: 0-1+1+0+1+1 = 2
    let sentiment: Vec<(u32, i64, Option<f64>)> = r
        .periods
        .iter()
        .map(|p| {
            let s = p.sentiment.as_ref().unwrap();
            (s.count, s.sum, s.mean)
        })
        .collect();
    assert_eq!(
        sentiment,
        vec![
            (14, 10, Some(10.0 / 14.0)),
            (9, 6, Some(6.0 / 9.0)),
            (9, 4, Some(4.0 / 9.0)),
            (6, 2, Some(2.0 / 6.0)),
        ]
    );
    // 14 + 9 + 9 + 6 = 38 interactions, 10 + 6 + 4 + 2 = 22.
    assert_eq!(r.total_interactions, 38);
    let total = r.total_sentiment.unwrap();
    assert_eq!((total.count, total.sum), (38, 22));
    // One ACCOUNT bucket per quarter, labelled with the customer's name.
    assert_eq!(r.buckets.len(), 4);
    assert!(r
        .buckets
        .iter()
        .all(|b| b.key == ACCOUNT && b.account_id == ACCOUNT && b.label == "Globex Corporation"));
    assert_eq!(
        r.buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
        vec![14, 9, 9, 6]
    );
}

#[test]
fn monthly_activity_with_empty_periods_listed() {
    let p = project(&globex::events());
    let r = counts(
        &p,
        Some(ACCOUNT),
        Period::Month,
        Dimension::Account,
        (2024, 12, 5),
        (2026, 1, 1),
    );
    // Widened to whole months: 2024-12-01 .. 2026-01-31, 14 months, the first and last empty.
    assert_eq!(
        (r.from.as_str(), r.to.as_str()),
        ("2024-12-01", "2026-01-31")
    );
    let n: Vec<u32> = r.periods.iter().map(|p| p.interactions).collect();
    // Jan i01-i04 4, Feb i05-i09 5, Mar i10-i14 5, Apr i15-i17 3, May i18-i20 3,
    // Jun i21-i23 3, Jul i24-i26 3, Aug i27-i28 2, Sep i29-i32 4, Oct i33-i34 2,
    // Nov i35-i36 2, Dec i37-i38 2.
    assert_eq!(n, vec![0, 4, 5, 5, 3, 3, 3, 3, 2, 4, 2, 2, 2, 0]);
    let sums: Vec<i64> = r.periods.iter().map(|p| p.sentiment.unwrap().sum).collect();
    // Jan 1+0+1+1 = 3, Feb 2+1+1-1+0 = 3, Mar 0+1+1+1+1 = 4, Apr -1+0+1 = 0, May 2+1+0 = 3,
    // Jun 1+1+1 = 3, Jul 0+0+1 = 1, Aug 0-1 = -1, Sep 1+1+1+1 = 4, Oct 0-1 = -1,
    // Nov 1+0 = 1, Dec 1+1 = 2.
    assert_eq!(sums, vec![0, 3, 3, 4, 0, 3, 3, 1, -1, 4, -1, 1, 2, 0]);
    assert_eq!(r.periods[0].sentiment.unwrap().mean, None);
    assert_eq!(r.periods[8].sentiment.unwrap().mean, Some(-0.5)); // Aug: -1 / 2
    assert_eq!(r.buckets.len(), 12); // no bucket for the empty months
}

#[test]
fn activity_by_channel() {
    let p = project(&globex::events());
    let r = year(&p, Some(ACCOUNT), Dimension::Channel);
    // in person i01 i06 i12 i16 i18 i23 i27 i30 i34 i37 = 10; video i02 i07 i09 i13 i15 i22
    // i26 i33 = 8 (i13 counted as corrected); phone i04 i05 i11 i19 i21 i25 i28 i31 i36 i38
    // = 10; email i08 i20 = 2; site visit i03 i10 i17 i24 i29 i35 = 6; business review i14
    // i32 = 2; 10+8+10+2+6+2 = 38.
    assert_eq!(
        per_key(&r),
        map(&[
            ("CHANNEL_IN_PERSON", 10),
            ("CHANNEL_VIDEO_CALL", 8),
            ("CHANNEL_PHONE_CALL", 10),
            ("CHANNEL_EMAIL", 2),
            ("CHANNEL_SITE_VISIT", 6),
            ("CHANNEL_BUSINESS_REVIEW", 2),
        ])
    );
    // Q1: in person i01 i06 i12 = 3, video i02 i07 i09 i13 = 4, phone i04 i05 i11 = 3,
    // email i08 = 1, site visit i03 i10 = 2, business review i14 = 1 (= 14).
    let q1: Vec<(&str, &str, u32)> = r
        .buckets
        .iter()
        .filter(|b| b.period_start == "2025-01-01")
        .map(|b| (b.key.as_str(), b.label.as_str(), b.count))
        .collect();
    // In enum order: in person, video, phone, email, site visit, business review.
    assert_eq!(
        q1,
        vec![
            ("CHANNEL_IN_PERSON", "in person", 3),
            ("CHANNEL_VIDEO_CALL", "video call", 4),
            ("CHANNEL_PHONE_CALL", "phone call", 3),
            ("CHANNEL_EMAIL", "email", 1),
            ("CHANNEL_SITE_VISIT", "site visit", 2),
            ("CHANNEL_BUSINESS_REVIEW", "business review", 1),
        ]
    );
    // Sentiment of Q1 phone calls: i04 +1, i05 +2, i11 +1 = 4 over 3.
    let phone = r
        .buckets
        .iter()
        .find(|b| b.period_start == "2025-01-01" && b.key == "CHANNEL_PHONE_CALL")
        .unwrap();
    let s = phone.sentiment.unwrap();
    assert_eq!((s.count, s.sum, s.mean), (3, 4, Some(4.0 / 3.0)));
}

#[test]
fn activity_by_team_member_counts_each_participant() {
    let p = project(&globex::events());
    let r = year(&p, Some(ACCOUNT), Dimension::TeamMember);
    // dana i01 i05 i06 i11 i12 i14 i18 i19 i27 i30 i32 i34 i37 = 13
    // lee i02 i04 i07 i08 i09 i13 i14 i16 i20 i21 i22 i25 i26 i28 i31 i32 i33 i36 i38 = 19
    // sam i03 i10 i15 i17 i24 i29 i35 = 7;  eve i06 i23 = 2
    // 13+19+7+2 = 41 = 38 + one extra for each two-person interaction (i06, i14, i32).
    assert_eq!(
        per_key(&r),
        map(&[("dana", 13), ("lee", 19), ("sam", 7), ("eve", 2)])
    );
    // Q1: dana i01 i05 i06 i11 i12 i14 = 6, eve i06 = 1, lee i02 i04 i07 i08 i09 i13 i14 = 7,
    // sam i03 i10 = 2 (16 = 14 + i06 + i14).
    assert_eq!(
        in_period(&r, "2025-01-01"),
        map(&[("dana", 6), ("eve", 1), ("lee", 7), ("sam", 2)])
    );
    let labels: BTreeMap<&str, &str> = r
        .buckets
        .iter()
        .map(|b| (b.key.as_str(), b.label.as_str()))
        .collect();
    assert_eq!(labels["dana"], "Dana Kim");
    assert_eq!(labels["eve"], "Eve Stone");
}

#[test]
fn activity_by_stakeholder_and_by_buying_role() {
    let p = project(&globex::events());
    let r = year(&p, Some(ACCOUNT), Dimension::Stakeholder);
    // cfo i01 i06 i12 i14 i18 i23 i27 i30 i32 i34 i37 = 11
    // cto i02 i04 i07 i09 i13 i14 i15 i20 i21 i25 i26 i31 i32 i33 i36 i38 = 16
    // proc i08 i16 i28 = 3; ops i03 i10 i24 i29 i35 = 5; eng i07 i13 i22 = 3 (i13 only
    // after the correction); qa i03 i17 i29 = 3; coach i05 i11 i19 = 3; legal never.
    // 11+16+3+5+3+3+3 = 44 = 38 + the second stakeholder of i03 i07 i13 i14 i29 i32.
    assert_eq!(
        per_key(&r),
        map(&[
            ("globex/cfo", 11),
            ("globex/cto", 16),
            ("globex/proc", 3),
            ("globex/ops", 5),
            ("globex/eng", 3),
            ("globex/qa", 3),
            ("globex/coach", 3),
        ])
    );
    assert!(r
        .buckets
        .iter()
        .any(|b| b.key == "cfo" && b.label == "Lee Park"));

    let r = year(&p, Some(ACCOUNT), Dimension::BuyingRole);
    // Economic buyer = cfo's 11, technical buyer = cto's 16, gatekeeper = proc's 3,
    // influencer = eng's 3, coach = coach's 3; user = interactions with ops or qa, once
    // each: i03 i10 i17 i24 i29 i35 = 6 (i03 and i29 had both). 11+16+6+3+3+3 = 42.
    assert_eq!(
        per_key(&r),
        map(&[
            ("BUYING_ROLE_ECONOMIC_BUYER", 11),
            ("BUYING_ROLE_TECHNICAL_BUYER", 16),
            ("BUYING_ROLE_USER", 6),
            ("BUYING_ROLE_INFLUENCER", 3),
            ("BUYING_ROLE_GATEKEEPER", 3),
            ("BUYING_ROLE_COACH", 3),
        ])
    );
    // Q3 users: i24 (ops), i29 (ops + qa: once) = 2; sentiment 0 + 1 = 1.
    let users = r
        .buckets
        .iter()
        .find(|b| b.period_start == "2025-07-01" && b.key == "BUYING_ROLE_USER")
        .unwrap();
    assert_eq!((users.count, users.sentiment.unwrap().sum), (2, 1));
}

#[test]
fn a_correction_moves_the_interaction_and_is_never_counted_twice() {
    // Weeks Mon 2025-03-17..23 and Mon 2025-03-24..30.
    let all = globex::events();
    let before: Vec<_> = all
        .iter()
        .filter(|e| e.recorded_at < at(2025, 3, 26, 10))
        .cloned()
        .collect();
    let p = project(&before);
    let r = counts(
        &p,
        Some(ACCOUNT),
        Period::Week,
        Dimension::Channel,
        (2025, 3, 17),
        (2025, 3, 30),
    );
    // Before the correction: i13 on Mon 03-24 (phone), none in the week of 03-17; i14 (the
    // business review of 03-28) is not recorded yet.
    assert_eq!(
        r.periods.iter().map(|p| p.interactions).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(
        in_period(&r, "2025-03-24"),
        map(&[("CHANNEL_PHONE_CALL", 1)])
    );

    let p = project(&all);
    let r = counts(
        &p,
        Some(ACCOUNT),
        Period::Week,
        Dimension::Channel,
        (2025, 3, 17),
        (2025, 3, 30),
    );
    // After: i13 on Fri 03-21 as a video call; the week of 03-24 holds only i14.
    assert_eq!(
        r.periods.iter().map(|p| p.interactions).collect::<Vec<_>>(),
        vec![1, 1]
    );
    assert_eq!(
        in_period(&r, "2025-03-17"),
        map(&[("CHANNEL_VIDEO_CALL", 1)])
    );
    assert_eq!(
        in_period(&r, "2025-03-24"),
        map(&[("CHANNEL_BUSINESS_REVIEW", 1)])
    );
    // Day by day: 2025-03-21 has i13 with sentiment +1 (was neutral), 03-24 nothing.
    let r = counts(
        &p,
        Some(ACCOUNT),
        Period::Day,
        Dimension::Stakeholder,
        (2025, 3, 21),
        (2025, 3, 24),
    );
    assert_eq!(
        r.periods.iter().map(|p| p.interactions).collect::<Vec<_>>(),
        vec![1, 0, 0, 0]
    );
    assert_eq!(in_period(&r, "2025-03-21"), map(&[("cto", 1), ("eng", 1)]));
    assert_eq!(r.periods[0].sentiment.unwrap().sum, 1);
}

#[test]
fn tenant_wide_activity_sums_the_accounts() {
    let p = project(&renumber(portfolio_histories()));
    let r = year(&p, None, Dimension::Account);
    // Q1: globex 14, hooli 14 and initech 14 (both copy Globex's Q1), umbrella none = 42.
    // Q2: globex 9, initech 9 (its history runs to 06-30) = 18. Q3: 9, Q4: 6 (globex only).
    assert_eq!(
        r.periods.iter().map(|p| p.interactions).collect::<Vec<_>>(),
        vec![42, 18, 9, 6]
    );
    assert_eq!(
        in_period(&r, "2025-01-01"),
        map(&[("globex", 14), ("hooli", 14), ("initech", 14)])
    );
    assert_eq!(r.total_interactions, 75); // 42 + 18 + 9 + 6
                                          // Q1 sentiment: 3 x 10 = 30.
    assert_eq!(r.periods[0].sentiment.unwrap().sum, 30);

    // A person is the same across accounts: dana in Q1 is 6 per copy, 3 copies = 18.
    let r = year(&p, None, Dimension::TeamMember);
    assert_eq!(in_period(&r, "2025-01-01")["dana"], 18);
    // Stakeholder ids are per account: cfo appears once per account, with its account.
    let r = year(&p, None, Dimension::Stakeholder);
    let q1_cfo: Vec<(&str, u32)> = r
        .buckets
        .iter()
        .filter(|b| b.period_start == "2025-01-01" && b.key == "cfo")
        .map(|b| (b.account_id.as_str(), b.count))
        .collect();
    // cfo in Q1: i01 i06 i12 i14 = 4 in each copy.
    assert_eq!(q1_cfo, vec![("globex", 4), ("hooli", 4), ("initech", 4)]);
}

#[test]
fn dmu_coverage_over_30_and_90_days() {
    let p = project(&globex::events());
    let as_of = at(2025, 12, 15, 12);
    let r = p.dmu_coverage(TENANT, ACCOUNT, 30, as_of).unwrap();
    // 2025-12-15 is day 349; minus 30 = day 319 = 2025-11-15. In the window: i36 (11-17,
    // cto), i37 (12-01, cfo), i38 (12-08, cto).
    assert_eq!(r.window_start, "2025-11-15");
    let roles: Vec<(i32, u32, bool, u32, Option<prost_types::Timestamp>)> = r
        .buying_roles
        .iter()
        .map(|c| {
            (
                c.buying_role,
                c.stakeholders,
                c.engaged,
                c.interactions,
                c.last_engaged_at,
            )
        })
        .collect();
    use pb::BuyingRole as R;
    assert_eq!(
        roles,
        vec![
            (R::EconomicBuyer as i32, 1, true, 1, ts(at(2025, 12, 1, 10))), // i37
            (
                R::TechnicalBuyer as i32,
                1,
                true,
                2,
                ts(at(2025, 12, 8, 10))
            ), // i36, i38
            (R::User as i32, 2, false, 0, None),                            // ops, qa
            (R::Influencer as i32, 1, false, 0, None),                      // eng
            (R::Gatekeeper as i32, 2, false, 0, None),                      // proc, legal
            (R::Coach as i32, 1, false, 0, None),                           // coach
        ]
    );
    assert_eq!(r.roles_engaged, 2);
    let stakeholders: Vec<(&str, u32, Option<prost_types::Timestamp>, Option<u32>)> = r
        .stakeholders
        .iter()
        .map(|s| {
            (
                s.stakeholder_id.as_str(),
                s.interactions,
                s.last_contact,
                s.days_since_last_contact,
            )
        })
        .collect();
    // Days since last contact = 349 - day of the last contact:
    // cfo i37 12-01 = 335 -> 14; coach i19 05-12 = 132 -> 217; cto i38 12-08 = 342 -> 7;
    // eng i22 06-16 = 167 -> 182; legal never; ops i35 11-03 = 307 -> 42;
    // proc i28 08-20 = 232 -> 117; qa i29 09-01 = 244 -> 105.
    assert_eq!(
        stakeholders,
        vec![
            ("cfo", 1, ts(at(2025, 12, 1, 10)), Some(14)),
            ("coach", 0, ts(at(2025, 5, 12, 10)), Some(217)),
            ("cto", 2, ts(at(2025, 12, 8, 10)), Some(7)),
            ("eng", 0, ts(at(2025, 6, 16, 10)), Some(182)),
            ("legal", 0, None, None),
            ("ops", 0, ts(at(2025, 11, 3, 10)), Some(42)),
            ("proc", 0, ts(at(2025, 8, 20, 10)), Some(117)),
            ("qa", 0, ts(at(2025, 9, 1, 10)), Some(105)),
        ]
    );
    assert_eq!(r.never_contacted, vec!["legal".to_string()]);
    assert_eq!(r.stakeholders_engaged, 2);
    assert_eq!(r.stakeholders[0].name, "Lee Park");
    assert_eq!(r.stakeholders[0].buying_role, R::EconomicBuyer as i32);

    // 90 days: from day 259 = 2025-09-16: i32 (cfo, cto), i33 (cto), i34 (cfo), i35 (ops),
    // i36 (cto), i37 (cfo), i38 (cto). Economic buyer i32 i34 i37 = 3, technical buyer
    // i32 i33 i36 i38 = 4, user i35 = 1.
    let r = p.dmu_coverage(TENANT, ACCOUNT, 90, as_of).unwrap();
    assert_eq!(r.window_start, "2025-09-16");
    let engaged: Vec<(i32, u32)> = r
        .buying_roles
        .iter()
        .filter(|c| c.engaged)
        .map(|c| (c.buying_role, c.interactions))
        .collect();
    assert_eq!(
        engaged,
        vec![
            (R::EconomicBuyer as i32, 3),
            (R::TechnicalBuyer as i32, 4),
            (R::User as i32, 1)
        ]
    );
    assert_eq!((r.roles_engaged, r.stakeholders_engaged), (3, 3)); // cfo, cto, ops

    // The window's edge: i37 on 12-01 is 14 days before 12-15, so inside "the last 14
    // days" and outside "the last 13 days".
    let cfo_engaged = |days| {
        p.dmu_coverage(TENANT, ACCOUNT, days, as_of)
            .unwrap()
            .buying_roles[0]
            .engaged
    };
    assert!(cfo_engaged(14));
    assert!(!cfo_engaged(13));

    // as_of in the past ignores what happened later: on 2025-01-10 12:00 only i01 (cfo,
    // 01-08) happened; everyone else is "never contacted" at that point.
    let r = p
        .dmu_coverage(TENANT, ACCOUNT, 30, at(2025, 1, 10, 12))
        .unwrap();
    assert_eq!(
        r.never_contacted,
        vec!["coach", "cto", "eng", "legal", "ops", "proc", "qa"]
    );
    assert_eq!(r.stakeholders[0].days_since_last_contact, Some(2));
}

#[test]
fn dmu_coverage_counts_a_role_only_from_role_facts_that_had_happened_by_as_of() {
    // A new influencer, ina, was met in person on 2025-05-05, added to the DMU on 05-10 and
    // the meeting logged on 05-11. eng, Globex's influencer, has no interaction between
    // 04-07 and 06-15, so the influencer row depends on ina alone.
    use keyplan_domain::events::{InteractionDetails, InteractionLogged, StakeholderAdded};
    use keyplan_domain::ids::{InteractionId, PersonId, StakeholderId};
    use keyplan_domain::values::{Attitude, BuyingRole, Channel, Sentiment};
    use keyplan_domain::AccountCommand as C;
    let ina = StakeholderId::parse("ina").unwrap();
    let added = step(
        at(2025, 5, 10, 9),
        "dana",
        C::AddStakeholder(StakeholderAdded {
            stakeholder_id: ina.clone(),
            name: "Ina Vogel".into(),
            title: "Head of R&D".into(),
            reports_to: None,
            buying_role: BuyingRole::Influencer,
            influence: 3,
            attitude: Attitude::Neutral,
        }),
    );
    let mut logged = step(
        at(2025, 5, 11, 9),
        "dana",
        C::LogInteraction(InteractionLogged {
            interaction_id: InteractionId::parse("i-ina").unwrap(),
            details: InteractionDetails {
                occurred_at: at(2025, 5, 5, 10),
                channel: Channel::InPerson,
                stakeholders: vec![ina],
                participants: vec![PersonId::parse("dana").unwrap()],
                summary: "Met at the trade fair".into(),
                sentiment: Sentiment::Positive,
                next_step: String::new(),
                opportunity_id: None,
            },
        }),
    );
    logged.occurred_at = at(2025, 5, 5, 10);
    let p = project(&decide(
        ACCOUNT,
        &steps_until(at(2025, 5, 31, 0), vec![added, logged]),
    ));
    use pb::BuyingRole as R;
    let influencer = |as_of| {
        let r = p.dmu_coverage(TENANT, ACCOUNT, 30, as_of).unwrap();
        let c = *r
            .buying_roles
            .iter()
            .find(|c| c.buying_role == R::Influencer as i32)
            .unwrap();
        (c.stakeholders, c.engaged, c.interactions, c.last_engaged_at)
    };
    // On 05-07 ina was not in the DMU yet: nobody knew her as an influencer, so the meeting
    // engaged no buying role (compliance's buying-role rules see it the same way as of 05-07).
    assert_eq!(influencer(at(2025, 5, 7, 12)), (1, false, 0, None));
    // From 05-10 on, the role she was added with covers the earlier meeting too.
    assert_eq!(
        influencer(at(2025, 5, 12, 12)),
        (2, true, 1, ts(at(2025, 5, 5, 10)))
    );
}

/// A compliance model stand-in: Globex has 3 of its 4 active rules on track.
struct Compliance;

impl ComplianceSource for Compliance {
    fn share(
        &self,
        _tenant: &str,
        account: &str,
        _as_of: Timestamp,
    ) -> Result<Option<(u32, u32)>, String> {
        Ok((account == ACCOUNT).then_some((3, 4)))
    }
}

#[test]
fn quiet_accounts_are_key_accounts_without_recent_contact() {
    let p = project(&renumber(portfolio_histories()));
    let r = p.quiet_accounts(TENANT, 30, at(2025, 12, 15, 12)).unwrap();
    // globex: last i38 12-08, 7 days: not quiet. hooli: standard since 04-15: not listed.
    // umbrella: never contacted (first). initech: last i23 06-25 = day 176, 349 - 176 = 173.
    let quiet: Vec<(&str, Option<u32>, Option<prost_types::Timestamp>)> = r
        .accounts
        .iter()
        .map(|q| {
            (
                q.account_id.as_str(),
                q.days_since_last_contact,
                q.last_contact,
            )
        })
        .collect();
    assert_eq!(
        quiet,
        vec![
            ("umbrella", None, None),
            ("initech", Some(173), ts(at(2025, 6, 25, 10))),
        ]
    );
    assert_eq!(r.accounts[1].tier, pb::Tier::Key as i32);
    assert_eq!(r.accounts[1].name, "Globex Corporation"); // the copies keep the name

    // On 2025-04-10 12:00 (day 100) hooli was still key, and every account's last contact
    // was i14 on 03-28 (day 87): 13 days > 10. Never-contacted first, then ties by id.
    let r = p.quiet_accounts(TENANT, 10, at(2025, 4, 10, 12)).unwrap();
    let quiet: Vec<(&str, Option<u32>)> = r
        .accounts
        .iter()
        .map(|q| (q.account_id.as_str(), q.days_since_last_contact))
        .collect();
    assert_eq!(
        quiet,
        vec![
            ("umbrella", None),
            ("globex", Some(13)),
            ("hooli", Some(13)),
            ("initech", Some(13)),
        ]
    );
    // 13 days is not more than 13: nobody but umbrella is quiet for 13 days.
    let r = p.quiet_accounts(TENANT, 13, at(2025, 4, 10, 12)).unwrap();
    assert_eq!(r.accounts.len(), 1);
}

#[test]
fn opportunity_summary_against_the_annual_goal() {
    let p = project(&globex::events());
    let r = p
        .opportunity_summary(TENANT, ACCOUNT, at(2025, 12, 15, 12))
        .unwrap();
    // Open: opp-digital, qualified, EUR 120,000.00. Won: opp-coatings for 240,000.00.
    // Lost: opp-solvents, 80,000.00 when lost.
    assert_eq!(r.open_count, 1);
    assert_eq!(r.open_value, vec![eur(12_000_000)]);
    let stages: Vec<(i32, u32, Vec<pb::Money>)> = r
        .open_by_stage
        .iter()
        .map(|s| (s.stage, s.count, s.value.clone()))
        .collect();
    use pb::OpportunityStage as S;
    assert_eq!(
        stages,
        vec![
            (S::Identified as i32, 0, vec![]),
            (S::Qualified as i32, 1, vec![eur(12_000_000)]),
            (S::Proposal as i32, 0, vec![]),
            (S::Negotiation as i32, 0, vec![]),
        ]
    );
    assert_eq!(
        (r.won_count, r.won_value.clone()),
        (1, vec![eur(24_000_000)])
    );
    assert_eq!(
        (r.lost_count, r.lost_value.clone()),
        (1, vec![eur(8_000_000)])
    );

    // Revenue per quarter (minor units):
    // Q1 110,000,000 vs 100,000,000: +10,000,000, 11000 bp
    // Q2  95,000,000 vs 100,000,000:  -5,000,000,  9500 bp
    // Q3 120,000,000 vs 105,000,000: +15,000,000, 120/105 = 1.1428571 -> 11429 bp
    let revenue: Vec<RevenueRow> = r
        .revenue
        .iter()
        .map(|x| {
            let f = x.figures.as_ref().unwrap();
            (
                x.period_start.as_str(),
                x.period_end.as_str(),
                f.actual_minor_units,
                f.goal_minor_units,
                f.difference_minor_units,
                f.attainment_basis_points,
                x.margin_basis_points,
                x.records,
            )
        })
        .collect();
    assert_eq!(
        revenue,
        vec![
            (
                "2025-01-01",
                "2025-03-31",
                110_000_000,
                100_000_000,
                10_000_000,
                Some(11_000),
                Some(2200),
                1
            ),
            (
                "2025-04-01",
                "2025-06-30",
                95_000_000,
                100_000_000,
                -5_000_000,
                Some(9_500),
                Some(2000),
                1
            ),
            (
                "2025-07-01",
                "2025-09-30",
                120_000_000,
                105_000_000,
                15_000_000,
                Some(11_429),
                Some(2300),
                1
            ),
        ]
    );

    // plan-2025 covers 2025-12-15. Annual goal = 100,000,000 + 100,000,000 + 105,000,000
    // = 305,000,000 (Q4 not recorded yet); actual 110 + 95 + 120 = 325,000,000,
    // +20,000,000, 325/305 = 1.0655738 -> 10656 bp. Won in 2025: coatings (09-20)
    // 24,000,000. Open: 12,000,000. Days covered: Q1 90 + Q2 91 + Q3 92 = 273 of 365.
    let goal = r.plan_goal.unwrap();
    assert_eq!(
        (
            goal.plan_id.as_str(),
            goal.period_start.as_str(),
            goal.period_end.as_str()
        ),
        ("plan-2025", "2025-01-01", "2025-12-31")
    );
    assert_eq!(
        (goal.goal_periods, goal.goal_days_covered, goal.plan_days),
        (3, 273, 365)
    );
    assert_eq!(
        goal.totals,
        vec![pb::PlanGoalTotal {
            currency: "EUR".into(),
            annual_goal_minor_units: 305_000_000,
            revenue: Some(pb::RevenueAgainstGoal {
                currency: "EUR".into(),
                actual_minor_units: 325_000_000,
                goal_minor_units: 305_000_000,
                difference_minor_units: 20_000_000,
                attainment_basis_points: Some(10_656),
            }),
            won_minor_units: 24_000_000,
            open_minor_units: 12_000_000,
        }]
    );
    assert!(r.note.contains("273 of the 365 days"), "{}", r.note);

    // In 2026 no plan is in force: the summary says so instead of inventing a goal.
    let r = p
        .opportunity_summary(TENANT, ACCOUNT, at(2026, 2, 1, 12))
        .unwrap();
    assert!(r.plan_goal.is_none());
    assert!(r.note.contains("2026-02-01"), "{}", r.note);
    assert_eq!(r.revenue.len(), 3);
}

#[test]
fn portfolio_ranked_by_tier_score_with_activity_and_compliance() {
    let p = project(&renumber(portfolio_histories()));
    let as_of = at(2025, 12, 15, 12);
    let r = p
        .portfolio(TENANT, as_of, Some(&Compliance))
        .expect("in range");
    assert!(r.compliance_available);
    // Key at as_of: globex, initech, umbrella (hooli was demoted). initech 9000 (assessed
    // 06-01) > globex 7833 > umbrella (never assessed).
    let ranking: Vec<(u32, &str, Option<u32>)> = r
        .accounts
        .iter()
        .map(|e| (e.rank, e.account_id.as_str(), e.weighted_score_milli))
        .collect();
    assert_eq!(
        ranking,
        vec![
            (1, "initech", Some(9000)),
            (2, "globex", Some(7833)),
            (3, "umbrella", None)
        ]
    );
    let globex = &r.accounts[1];
    // 30 days (from 11-15): i36 i37 i38 = 3. 90 days (from 09-16): i32..i38 = 7.
    assert_eq!(
        (globex.interactions_30_days, globex.interactions_90_days),
        (3, 7)
    );
    assert_eq!(globex.last_contact, ts(at(2025, 12, 8, 10)));
    // Open at as_of: opp-digital only (coatings won 09-20, solvents lost 11-20).
    assert_eq!(globex.open_opportunities, 1);
    assert_eq!(globex.open_pipeline, vec![eur(12_000_000)]);
    assert_eq!(globex.tier, pb::Tier::Key as i32);
    assert_eq!(globex.recommended_tier, pb::Tier::Key as i32);
    assert_eq!(globex.assessed_at, ts(at(2025, 1, 2, 9)));
    // 3 of 4 rules on track = 7500 bp.
    assert_eq!(
        globex.compliance,
        Some(pb::PortfolioCompliance {
            rules_on_track: 3,
            active_rules: 4,
            on_track_basis_points: Some(7500),
        })
    );
    let initech = &r.accounts[0];
    // Its history stops on 06-30: no contact in 90 days; coatings and solvents still open
    // there: 250,000.00 + 80,000.00.
    assert_eq!(
        (initech.interactions_30_days, initech.interactions_90_days),
        (0, 0)
    );
    assert_eq!(initech.open_opportunities, 2);
    assert_eq!(initech.open_pipeline, vec![eur(33_000_000)]);
    assert_eq!(initech.compliance, None);
    assert_eq!(r.accounts[2].recommended_tier, 0);

    // On 2025-05-01 12:00: initech's second assessment (06-01) is still to come, so it ties
    // with globex at 7833 (ties by id); hooli was demoted on 04-15 and stays out.
    let r = p
        .portfolio(TENANT, at(2025, 5, 1, 12), None)
        .expect("in range");
    assert!(!r.compliance_available);
    let ranking: Vec<(&str, Option<u32>)> = r
        .accounts
        .iter()
        .map(|e| (e.account_id.as_str(), e.weighted_score_milli))
        .collect();
    assert_eq!(
        ranking,
        vec![
            ("globex", Some(7833)),
            ("initech", Some(7833)),
            ("umbrella", None)
        ]
    );
    // Open on 05-01 at globex: coatings and solvents (identified 04-01) = 330,000.00.
    assert_eq!(r.accounts[0].open_pipeline, vec![eur(33_000_000)]);
    // 30 days from 04-01: i15 04-14, i16 04-22, i17 04-30 = 3; 90 days from 2025-01-31:
    // i05..i17 = 13.
    assert_eq!(
        (
            r.accounts[0].interactions_30_days,
            r.accounts[0].interactions_90_days
        ),
        (3, 13)
    );
    // Before 04-15 hooli is still in the portfolio.
    let r = p
        .portfolio(TENANT, at(2025, 4, 10, 12), None)
        .expect("in range");
    assert_eq!(r.accounts.len(), 4);
}

#[test]
fn buying_role_changes_count_from_their_business_time_and_departures_leave_the_dmu() {
    // The fixture has neither a buying-role change nor a departure; these extra steps add
    // them. eng becomes a coach, recorded 2025-12-10 but effective 2025-06-01 (backdated);
    // legal departs on 2025-10-31; Q2 revenue is recorded again (corrected) on 2025-07-02.
    use keyplan_domain::events::{RevenueRecorded, StakeholderDeparted, StakeholderProfileChanged};
    use keyplan_domain::ids::StakeholderId;
    use keyplan_domain::values::{BuyingRole, Money};
    use keyplan_domain::AccountCommand as C;
    let eng = StakeholderId::parse("eng").unwrap();
    let mut role_change = step(
        at(2025, 12, 10, 9),
        "lee",
        C::ChangeStakeholderProfile(StakeholderProfileChanged {
            stakeholder_id: eng,
            title: None,
            reports_to: None,
            clear_reports_to: false,
            buying_role: Some(BuyingRole::Coach),
            influence: None,
            attitude: None,
            note: "now our champion".into(),
        }),
    );
    role_change.occurred_at = at(2025, 6, 1, 9);
    let departure = step(
        at(2025, 11, 1, 9),
        "dana",
        C::RecordStakeholderDeparture(StakeholderDeparted {
            stakeholder_id: StakeholderId::parse("legal").unwrap(),
            departed_on: date(2025, 10, 31),
            reason: "left the company".into(),
        }),
    );
    let eur = |units: i64| Money {
        currency: "EUR".into(),
        minor_units: units * 100,
    };
    let revenue = step(
        at(2025, 7, 2, 9),
        "dana",
        C::RecordRevenue(RevenueRecorded {
            period_start: date(2025, 4, 1),
            period_end: date(2025, 6, 30),
            product: String::new(),
            actual: eur(960_000),
            goal: eur(1_000_000),
            margin_basis_points: Some(2050),
        }),
    );
    let steps: Vec<Step> = steps_until(at(2026, 1, 1, 0), vec![role_change, departure, revenue]);
    let events = decide(ACCOUNT, &steps);

    // Before the change is recorded (everything up to 2025-12-09), eng counts as an
    // influencer everywhere; afterwards i22 (06-16, after 06-01) moves to coach, while i07
    // (02-10) and i13 (03-21) stay with influencer.
    let before: Vec<_> = events
        .iter()
        .filter(|e| e.recorded_at < at(2025, 12, 10, 0))
        .cloned()
        .collect();
    let r = year(&project(&before), Some(ACCOUNT), Dimension::BuyingRole);
    assert_eq!(per_key(&r)["BUYING_ROLE_INFLUENCER"], 3);
    assert_eq!(per_key(&r)["BUYING_ROLE_COACH"], 3);
    let p = project(&events);
    let r = year(&p, Some(ACCOUNT), Dimension::BuyingRole);
    // influencer 3 - 1 = 2 (i07, i13); coach 3 + 1 = 4 (i05, i11, i19, i22).
    assert_eq!(per_key(&r)["BUYING_ROLE_INFLUENCER"], 2);
    assert_eq!(per_key(&r)["BUYING_ROLE_COACH"], 4);
    // Q2: coach i19 + i22 = 2, no influencer bucket at all.
    let q2 = in_period(&r, "2025-04-01");
    assert_eq!(q2.get("BUYING_ROLE_COACH"), Some(&2));
    assert_eq!(q2.get("BUYING_ROLE_INFLUENCER"), None);

    // DMU on 2025-12-15: legal has left (7 stakeholders, nobody never-contacted, one
    // gatekeeper left); eng is a coach now, so 2 coaches and no influencer.
    let r = p
        .dmu_coverage(TENANT, ACCOUNT, 30, at(2025, 12, 15, 12))
        .unwrap();
    assert_eq!(r.stakeholders.len(), 7);
    assert!(r.never_contacted.is_empty());
    let holders: Vec<u32> = r.buying_roles.iter().map(|c| c.stakeholders).collect();
    // economic 1, technical 1, user 2, influencer 0, gatekeeper 1, coach 2
    assert_eq!(holders, vec![1, 1, 2, 0, 1, 2]);
    // On the departure day legal still belongs to the DMU (and was never contacted).
    let r = p
        .dmu_coverage(TENANT, ACCOUNT, 30, at(2025, 10, 31, 18))
        .unwrap();
    assert_eq!(r.never_contacted, vec!["legal".to_string()]);

    // Q2 revenue: the later record wins (960,000.00 vs 1,000,000.00: -4,000,000, 9600 bp),
    // and says it was recorded twice.
    let r = p
        .opportunity_summary(TENANT, ACCOUNT, at(2025, 12, 15, 12))
        .unwrap();
    let q2 = &r.revenue[1];
    let f = q2.figures.as_ref().unwrap();
    assert_eq!(
        (
            f.actual_minor_units,
            f.difference_minor_units,
            f.attainment_basis_points,
            q2.margin_basis_points,
            q2.records
        ),
        (96_000_000, -4_000_000, Some(9_600), Some(2050), 2)
    );
    // Annual actual: 110 + 96 + 120 = 326,000,000 against 305,000,000.
    assert_eq!(
        r.plan_goal.unwrap().totals[0]
            .revenue
            .as_ref()
            .unwrap()
            .actual_minor_units,
        326_000_000
    );
}

#[test]
fn refusals_name_what_to_fix() {
    let p = project(&globex::events());
    let as_of = at(2025, 12, 15, 12);
    assert!(matches!(
        p.dmu_coverage(TENANT, "nobody", 30, as_of),
        Err(ActivityError::NotFound(_))
    ));
    assert!(matches!(
        p.dmu_coverage(TENANT, ACCOUNT, 0, as_of),
        Err(ActivityError::InvalidArgument { field: "days", .. })
    ));
    assert!(matches!(
        p.quiet_accounts(TENANT, 5000, as_of),
        Err(ActivityError::InvalidArgument { field: "days", .. })
    ));
    assert!(matches!(
        p.activity_counts(
            TENANT,
            Some(ACCOUNT),
            Period::Day,
            Dimension::Account,
            date(2025, 2, 1),
            date(2025, 1, 1)
        ),
        Err(ActivityError::InvalidArgument { field: "to", .. })
    ));
    assert!(matches!(
        p.activity_counts(
            TENANT,
            Some("other"),
            Period::Day,
            Dimension::Account,
            date(2025, 1, 1),
            date(2025, 1, 1)
        ),
        Err(ActivityError::NotFound(_))
    ));
    assert!(matches!(
        p.opportunity_summary("other-tenant", ACCOUNT, as_of),
        Err(ActivityError::NotFound(_))
    ));
    // A tenant without accounts has an empty portfolio and no quiet account, not an error.
    assert!(p
        .portfolio("other-tenant", as_of, None)
        .expect("in range")
        .accounts
        .is_empty());
    assert!(p
        .quiet_accounts("other-tenant", 30, as_of)
        .unwrap()
        .accounts
        .is_empty());
}
