//! The "why" of compliance (`explain`): each condition of the qualification check failing
//! alone is named, a qualifying interaction is marked as counted, and without `explain` nothing
//! is listed.

use keyplan_domain::events::*;
use keyplan_domain::values::*;
use keyplan_testkit::at;

use super::handmade::{assigned, interaction, registered, rule, sh, stakeholder};
use super::*;

/// The only rule's considered interactions as of `as_of`, explained: (id, reason, detail).
fn why(log: &Log, as_of: AsOf) -> Vec<(String, Option<NotCounted>, String)> {
    let answer = project(&log.events)
        .account_compliance_with("t", "a", as_of, true)
        .unwrap();
    assert_eq!(answer.rules.len(), 1, "{:?}", answer.rules);
    answer.rules[0]
        .considered
        .iter()
        .map(|c| (c.interaction_id.clone(), c.not_counted, c.detail.clone()))
        .collect()
}

/// kam in the team, stakeholder s1 (economic buyer), rule r1: s1 in person every 30 days, all
/// on 2025-01-01 09:00.
fn base() -> Log {
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
                30,
                &[Channel::InPerson],
            ),
        );
    log
}

fn only_reason(list: &[(String, Option<NotCounted>, String)]) -> (String, Option<NotCounted>) {
    assert_eq!(list.len(), 1, "{list:?}");
    (list[0].0.clone(), list[0].1)
}

#[test]
fn a_qualifying_interaction_is_counted() {
    let mut log = base();
    log.now(
        at(2025, 1, 5, 10),
        interaction(
            "m1",
            at(2025, 1, 5, 10),
            Channel::InPerson,
            &["s1"],
            &["kam"],
        ),
    );
    let list = why(&log, AsOf::happened_by(at(2025, 1, 10, 0)));
    assert_eq!(only_reason(&list), ("m1".into(), None));
    assert!(list[0].2.starts_with("counted"), "{}", list[0].2);
}

#[test]
fn the_wrong_channel_is_named() {
    let mut log = base();
    log.now(
        at(2025, 1, 5, 10),
        interaction("e1", at(2025, 1, 5, 10), Channel::Email, &["s1"], &["kam"]),
    );
    let list = why(&log, AsOf::happened_by(at(2025, 1, 10, 0)));
    assert_eq!(
        only_reason(&list),
        ("e1".into(), Some(NotCounted::WrongChannel))
    );
    assert!(
        list[0].2.contains("email") && list[0].2.contains("in person"),
        "{}",
        list[0].2
    );
}

#[test]
fn a_participant_assigned_to_the_team_only_later_is_named() {
    // The motivating case: alice met s1 two hours before she was assigned to the team.
    let mut log = base();
    log.now(
        at(2025, 1, 5, 12),
        interaction(
            "m1",
            at(2025, 1, 5, 10),
            Channel::InPerson,
            &["s1"],
            &["alice"],
        ),
    )
    .now(at(2025, 1, 5, 12), assigned("alice"));
    let answer = project(&log.events)
        .account_compliance_with("t", "a", AsOf::happened_by(at(2025, 1, 6, 0)), true)
        .unwrap();
    assert_eq!(answer.rules[0].status, RuleStatus::NeverMet);
    let list = why(&log, AsOf::happened_by(at(2025, 1, 6, 0)));
    assert_eq!(
        only_reason(&list),
        ("m1".into(), Some(NotCounted::NoTeamMemberAtTheTime))
    );
    assert!(
        list[0]
            .2
            .contains("alice: not yet in the team, assigned 2025-01-05T12:00:00Z"),
        "{}",
        list[0].2
    );
}

#[test]
fn a_participant_who_left_the_team_is_named() {
    let mut log = base();
    log.now(at(2025, 1, 2, 9), assigned("pat"))
        .now(
            at(2025, 1, 3, 9),
            TeamMemberUnassigned {
                person_id: super::handmade::person("pat"),
                reason: String::new(),
            },
        )
        .now(
            at(2025, 1, 5, 10),
            interaction(
                "m1",
                at(2025, 1, 5, 10),
                Channel::InPerson,
                &["s1"],
                &["pat"],
            ),
        );
    let list = why(&log, AsOf::happened_by(at(2025, 1, 10, 0)));
    assert_eq!(
        only_reason(&list),
        ("m1".into(), Some(NotCounted::NoTeamMemberAtTheTime))
    );
    assert!(
        list[0].2.contains("pat: left the team 2025-01-03"),
        "{}",
        list[0].2
    );
}

#[test]
fn an_interaction_after_t_is_named() {
    let mut log = base();
    log.now(
        at(2025, 1, 5, 10),
        interaction(
            "m1",
            at(2025, 1, 5, 10),
            Channel::InPerson,
            &["s1"],
            &["kam"],
        ),
    );
    let list = why(&log, AsOf::happened_by(at(2025, 1, 4, 0)));
    assert_eq!(
        only_reason(&list),
        ("m1".into(), Some(NotCounted::HappenedAfterAsOf))
    );
}

#[test]
fn an_interaction_not_yet_recorded_as_known_at_t_is_named() {
    let mut log = base();
    // Held on 01-03, logged on 01-08.
    log.push(
        at(2025, 1, 8, 9),
        at(2025, 1, 8, 9),
        interaction(
            "m1",
            at(2025, 1, 3, 10),
            Channel::InPerson,
            &["s1"],
            &["kam"],
        ),
    );
    let t = at(2025, 1, 5, 0);
    let list = why(&log, AsOf::known_at(t));
    assert_eq!(
        only_reason(&list),
        ("m1".into(), Some(NotCounted::NotYetRecorded))
    );
    // As happened by the same T it counts.
    assert_eq!(
        only_reason(&why(&log, AsOf::happened_by(t))),
        ("m1".into(), None)
    );
}

#[test]
fn an_interaction_corrected_away_from_the_target_is_named() {
    let mut log = base();
    log.now(at(2025, 1, 2, 9), stakeholder("s2", BuyingRole::User))
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
        .now(
            at(2025, 1, 6, 10),
            InteractionCorrected {
                interaction_id: interaction("m1", at(2025, 1, 5, 10), Channel::InPerson, &[], &[])
                    .interaction_id,
                details: interaction(
                    "m1",
                    at(2025, 1, 5, 10),
                    Channel::InPerson,
                    &["s2"],
                    &["kam"],
                )
                .details,
                reason: "it was s2".into(),
            },
        );
    let list = why(&log, AsOf::happened_by(at(2025, 1, 10, 0)));
    assert_eq!(
        only_reason(&list),
        ("m1".into(), Some(NotCounted::CorrectedAway))
    );
    assert!(list[0].2.contains("no longer names s1"), "{}", list[0].2);
    // Before the correction was recorded (as known then) the logged version counted.
    assert_eq!(
        only_reason(&why(&log, AsOf::known_at(at(2025, 1, 5, 12)))),
        ("m1".into(), None)
    );
}

#[test]
fn a_correction_that_keeps_the_target_is_listed_once_in_its_corrected_version() {
    let mut log = base();
    log.now(
        at(2025, 1, 5, 10),
        interaction(
            "m1",
            at(2025, 1, 5, 10),
            Channel::InPerson,
            &["s1"],
            &["kam"],
        ),
    )
    .now(
        at(2025, 1, 6, 10),
        InteractionCorrected {
            interaction_id: interaction("m1", at(2025, 1, 5, 10), Channel::InPerson, &[], &[])
                .interaction_id,
            details: interaction("m1", at(2025, 1, 4, 10), Channel::Email, &["s1"], &["kam"])
                .details,
            reason: "it was an email".into(),
        },
    );
    let answer = project(&log.events)
        .account_compliance_with("t", "a", AsOf::happened_by(at(2025, 1, 10, 0)), true)
        .unwrap();
    let considered = &answer.rules[0].considered;
    assert_eq!(considered.len(), 1, "{considered:?}");
    assert!(considered[0].corrected);
    assert_eq!(considered[0].occurred_at, at(2025, 1, 4, 10));
    assert_eq!(considered[0].not_counted, Some(NotCounted::WrongChannel));
}

#[test]
fn a_stakeholder_not_yet_in_the_buying_role_is_named() {
    let setup = at(2025, 1, 1, 9);
    let mut log = Log::default();
    log.now(setup, registered())
        .now(setup, assigned("kam"))
        .now(setup, stakeholder("s1", BuyingRole::TechnicalBuyer))
        .now(
            setup,
            rule(
                "r1",
                RuleTarget::BuyingRole(BuyingRole::EconomicBuyer),
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
        .now(
            at(2025, 1, 7, 9),
            StakeholderProfileChanged {
                stakeholder_id: sh("s1"),
                title: None,
                reports_to: None,
                clear_reports_to: false,
                buying_role: Some(BuyingRole::EconomicBuyer),
                influence: None,
                attitude: None,
                note: String::new(),
            },
        )
        .now(
            at(2025, 1, 8, 10),
            interaction(
                "m2",
                at(2025, 1, 8, 10),
                Channel::InPerson,
                &["s1"],
                &["kam"],
            ),
        );
    let list = why(&log, AsOf::happened_by(at(2025, 1, 10, 0)));
    let reasons: Vec<_> = list.iter().map(|(id, r, _)| (id.as_str(), *r)).collect();
    assert_eq!(
        reasons,
        vec![
            ("m2", None),
            ("m1", Some(NotCounted::NotInBuyingRoleAtTheTime))
        ]
    );
    assert!(list[1].2.contains("technical buyer"), "{}", list[1].2);
}

#[test]
fn without_explain_nothing_is_listed_and_the_answer_is_otherwise_the_same() {
    let mut log = base();
    log.now(
        at(2025, 1, 5, 10),
        interaction(
            "m1",
            at(2025, 1, 5, 10),
            Channel::InPerson,
            &["s1"],
            &["kam"],
        ),
    );
    let p = project(&log.events);
    let view = AsOf::happened_by(at(2025, 1, 10, 0));
    let plain = p.account_compliance("t", "a", view).unwrap();
    assert!(plain.rules.iter().all(|r| r.considered.is_empty()));
    let mut explained = p.account_compliance_with("t", "a", view, true).unwrap();
    assert_eq!(explained.rules[0].considered.len(), 1);
    for r in &mut explained.rules {
        r.considered.clear();
    }
    assert_eq!(plain, explained);
}

#[test]
fn the_list_is_bounded_and_keeps_the_most_recent() {
    let mut log = base();
    for day in 1..=28u32 {
        for hour in [10, 14, 16] {
            let id = format!("m{day:02}{hour}");
            log.now(
                at(2025, 2, day, hour),
                interaction(
                    &id,
                    at(2025, 2, day, hour),
                    Channel::Email,
                    &["s1"],
                    &["kam"],
                ),
            );
        }
    }
    // T = 02-20 noon: 26 interactions after T, 58 by T.
    let list = why(&log, AsOf::happened_by(at(2025, 2, 20, 12)));
    assert_eq!(list.len(), MAX_CONSIDERED);
    let after: Vec<_> = list
        .iter()
        .filter(|c| c.1 == Some(NotCounted::HappenedAfterAsOf))
        .map(|c| c.0.as_str())
        .collect();
    assert_eq!(after, vec!["m2116", "m2114", "m2110", "m2016", "m2014"]);
    assert_eq!(list[5].0, "m2010");
    assert_eq!(list[MAX_CONSIDERED - 1].0, "m0514");
}
