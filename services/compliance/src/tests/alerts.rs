//! Alert conditions against the Globex year: every alert is a status the compliance answer
//! shows at that instant, and each alert id names one unbroken stretch of days.

use std::collections::BTreeMap;

use keyplan_testkit::at;

use super::*;
use crate::alerts::{Alert, AlertKind, AlertSubject};

fn alerts_at(p: &ComplianceProjection, now: Timestamp) -> Vec<Alert> {
    p.alerts(globex::TENANT, globex::ACCOUNT, now).unwrap()
}

/// What the compliance answer says should alert at `now`: (kind, rule or plan/window, due).
fn expected(p: &ComplianceProjection, now: Timestamp) -> Vec<(AlertKind, String, String)> {
    let answer = p
        .account_compliance(globex::TENANT, globex::ACCOUNT, AsOf::happened_by(now))
        .unwrap();
    let mut out = Vec::new();
    for rule in &answer.rules {
        let kind = match rule.status {
            RuleStatus::DueSoon => AlertKind::RuleDueSoon,
            RuleStatus::Overdue => AlertKind::RuleOverdue,
            RuleStatus::NeverMet if rule.days_overdue > 0 => AlertKind::RuleNeverMet,
            _ => continue,
        };
        out.push((
            kind,
            rule.definition.rule_id.to_string(),
            rule.due_on.to_string(),
        ));
    }
    for plan in &answer.plan_reviews {
        for w in &plan.windows {
            if w.status == ReviewStatus::Overdue {
                out.push((
                    AlertKind::ReviewMissed,
                    format!("{}/{}", plan.plan_id, w.index),
                    w.due_on.to_string(),
                ));
            }
        }
    }
    out
}

fn summary(alert: &Alert) -> (AlertKind, String, String) {
    let subject = match &alert.subject {
        AlertSubject::Rule { rule_id, .. } => rule_id.clone(),
        AlertSubject::Review { plan_id, window } => format!("{plan_id}/{window}"),
    };
    (alert.kind, subject, alert.due_on.to_string())
}

#[test]
fn every_day_of_the_year_the_alerts_are_the_statuses_that_need_action() {
    let p = globex_projection();
    // alert id -> the days (ordinal) it held on.
    let mut held: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut kinds = std::collections::BTreeSet::new();
    for day in 0..400u32 {
        let now = Timestamp(at(2025, 1, 2, 12).0 + i64::from(day) * 86_400_000_000);
        let alerts = alerts_at(&p, now);
        let got: Vec<_> = alerts.iter().map(summary).collect();
        assert_eq!(got, expected(&p, now), "day {day}");
        for alert in alerts {
            assert_eq!(alert.raised_at, now);
            assert_eq!(alert.account_name, "Globex Corporation");
            kinds.insert(alert.kind);
            held.entry(alert.id()).or_default().push(day);
        }
    }
    // Every kind occurs in the year, and one id holds on consecutive days only: a transition
    // is alerted once, and the same condition never comes back under the same id.
    assert_eq!(kinds.len(), AlertKind::ALL.len(), "{kinds:?}");
    for (id, days) in &held {
        assert!(
            days.windows(2).all(|w| w[1] == w[0] + 1),
            "{id} holds on {days:?}"
        );
    }
}

#[test]
fn a_review_held_late_alerts_its_window_until_it_is_held() {
    let p = globex_projection();
    let review = |now| {
        alerts_at(&p, now)
            .into_iter()
            .filter(|a| a.kind == AlertKind::ReviewMissed)
            .map(|a| (a.id(), a.days_overdue))
            .collect::<Vec<_>>()
    };
    // rev-q2 was due 2025-06-30 and held on 2025-07-08.
    assert_eq!(review(at(2025, 6, 30, 12)), vec![]);
    let id = format!(
        "{}/{}/plan/plan-2025/2/review_missed/2025-06-30",
        globex::TENANT,
        globex::ACCOUNT
    );
    assert_eq!(review(at(2025, 7, 5, 12)), vec![(id, 5)]);
    assert_eq!(review(at(2025, 7, 8, 12)), vec![]);
}

#[test]
fn a_rule_alert_names_its_owner_target_and_account() {
    let p = globex_projection();
    // 2025-01-25: r-coach (21 days, set 2025-01-02, never met) is past due since 2025-01-23.
    let coach = alerts_at(&p, at(2025, 1, 25, 12))
        .into_iter()
        .find(|a| matches!(&a.subject, AlertSubject::Rule { rule_id, .. } if rule_id == "r-coach"))
        .expect("r-coach alerts");
    assert_eq!(coach.kind, AlertKind::RuleNeverMet);
    assert_eq!(coach.due_on.to_string(), "2025-01-23");
    assert_eq!(coach.days_overdue, 2);
    let AlertSubject::Rule {
        owner,
        owner_name,
        target_description,
        ..
    } = &coach.subject
    else {
        unreachable!()
    };
    assert_eq!(owner, "dana");
    assert!(!owner_name.is_empty());
    assert!(target_description.contains("coach"), "{target_description}");
    assert_eq!(
        coach.id(),
        format!(
            "{}/{}/rule/r-coach/rule_never_met/2025-01-23",
            globex::TENANT,
            globex::ACCOUNT
        )
    );
}
