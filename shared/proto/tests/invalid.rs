//! Malformed wire values are refused as `InvalidArgument` naming the wire field, before the
//! domain sees them.

#[allow(dead_code)]
mod examples;

use keyplan_domain::events::{self as ev};
use keyplan_domain::{AccountEvent, DomainError};
use keyplan_proto::convert::*;
use keyplan_proto::pb;
use pb::command::Kind as Command;

/// The wire form of the example event of this type.
fn example(event_type: &str) -> pb::event_payload::Event {
    let event = examples::one_of_each()
        .into_iter()
        .find(|e| e.event_type() == event_type)
        .expect("an example of every type");
    event_payload_to_proto(&event).event.expect("payload set")
}

/// The field and reason of an `InvalidArgument`, or a panic.
fn invalid(result: Result<impl std::fmt::Debug, DomainError>) -> (&'static str, String) {
    match result {
        Err(DomainError::InvalidArgument { field, reason }) => (field, reason),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn stakeholder_added() -> pb::StakeholderAdded {
    match example("StakeholderAdded") {
        pb::event_payload::Event::StakeholderAdded(p) => p,
        _ => unreachable!(),
    }
}

fn interaction_logged() -> pb::InteractionLogged {
    match example("InteractionLogged") {
        pb::event_payload::Event::InteractionLogged(p) => p,
        _ => unreachable!(),
    }
}

#[test]
fn an_unspecified_enum_is_refused_listing_the_accepted_names() {
    let mut p = stakeholder_added();
    p.buying_role = pb::BuyingRole::Unspecified.into();
    let (field, reason) = invalid(command_from_proto(Command::AddStakeholder(p)));
    assert_eq!(field, "buying_role");
    assert!(reason.contains("BUYING_ROLE_ECONOMIC_BUYER"), "{reason}");
    assert!(reason.contains("BUYING_ROLE_COACH"), "{reason}");
    assert!(
        reason.contains("BUYING_ROLE_UNSPECIFIED (unset)"),
        "{reason}"
    );
}

#[test]
fn an_unknown_enum_number_is_refused() {
    let p = pb::ChangeTier {
        to: 42,
        reason: "why not".to_owned(),
    };
    let (field, reason) = invalid(command_from_proto(Command::PromoteAccount(p)));
    assert_eq!(field, "to");
    assert!(
        reason.contains("TIER_STANDARD, TIER_KEY, TIER_STRATEGIC"),
        "{reason}"
    );
    assert!(reason.ends_with("got 42"), "{reason}");
}

#[test]
fn an_optional_enum_may_be_absent_but_not_unspecified() {
    let mut p = pb::StakeholderProfileChanged {
        stakeholder_id: "sh-cfo".to_owned(),
        attitude: None,
        ..Default::default()
    };
    assert!(command_from_proto(Command::ChangeStakeholderProfile(p.clone())).is_ok());
    p.attitude = Some(0);
    let (field, _) = invalid(command_from_proto(Command::ChangeStakeholderProfile(p)));
    assert_eq!(field, "attitude");
}

#[test]
fn repeated_enums_are_checked_one_by_one() {
    let payload = example("EngagementRuleSet");
    let pb::event_payload::Event::EngagementRuleSet(mut p) = payload else {
        unreachable!()
    };
    p.channels.push(99);
    let (field, _) = invalid(command_from_proto(Command::SetEngagementRule(p)));
    assert_eq!(field, "channels");
}

#[test]
fn a_bad_date_is_refused() {
    for bad in ["2025-13-01", "2025-02-30", "01/02/2025", "2025-1-5 ", ""] {
        let p = pb::ActionItemCompleted {
            action_item_id: "act-1".to_owned(),
            completed_on: bad.to_owned(),
            note: String::new(),
        };
        let (field, reason) = invalid(command_from_proto(Command::CompleteActionItem(p)));
        assert_eq!(field, "completed_on", "{bad:?}");
        assert!(reason.contains("YYYY-MM-DD"), "{reason}");
    }
}

#[test]
fn an_empty_optional_date_is_absent_but_a_malformed_one_is_refused() {
    let mut p = pb::OpportunityStageChanged {
        opportunity_id: "opp-1".to_owned(),
        stage: pb::OpportunityStage::Qualified.into(),
        expected_close_on: String::new(),
    };
    let command = command_from_proto(Command::ChangeOpportunityStage(p.clone())).expect("valid");
    let keyplan_domain::AccountCommand::ChangeOpportunityStage(c) = command else {
        unreachable!()
    };
    assert_eq!(c.expected_close_on, None);
    p.expected_close_on = "next week".to_owned();
    let (field, _) = invalid(command_from_proto(Command::ChangeOpportunityStage(p)));
    assert_eq!(field, "expected_close_on");
}

#[test]
fn a_bad_id_is_refused_under_the_wire_field_name() {
    let p = pb::ObjectiveProgressed {
        objective_id: "obj 1".to_owned(),
        status: pb::ObjectiveStatus::OnTrack.into(),
        ..Default::default()
    };
    let (field, reason) = invalid(command_from_proto(Command::ProgressObjective(p)));
    assert_eq!(field, "objective_id");
    assert!(reason.contains("' '"), "{reason}");

    // A person id appears as `owner` on the wire: the error says `owner`, not `person_id`.
    let payload = example("ObjectiveSet");
    let pb::event_payload::Event::ObjectiveSet(mut p) = payload else {
        unreachable!()
    };
    p.owner = "x".repeat(65);
    let (field, _) = invalid(command_from_proto(Command::SetObjective(p)));
    assert_eq!(field, "owner");
}

#[test]
fn a_missing_required_id_is_refused() {
    let p = pb::ReviewCancelled {
        review_id: String::new(),
        reason: "r".to_owned(),
    };
    let (field, reason) = invalid(command_from_proto(Command::CancelReview(p)));
    assert_eq!(field, "review_id");
    assert!(reason.contains("empty"), "{reason}");
}

#[test]
fn an_empty_optional_id_is_absent_but_a_malformed_one_is_refused() {
    let mut p = stakeholder_added();
    p.reports_to = String::new();
    let command = command_from_proto(Command::AddStakeholder(p.clone())).expect("valid");
    let keyplan_domain::AccountCommand::AddStakeholder(s) = command else {
        unreachable!()
    };
    assert_eq!(s.reports_to, None);
    p.reports_to = "sh/cfo".to_owned();
    let (field, _) = invalid(command_from_proto(Command::AddStakeholder(p)));
    assert_eq!(field, "reports_to");
}

#[test]
fn ids_in_lists_are_checked_one_by_one() {
    let mut p = interaction_logged();
    p.details
        .as_mut()
        .expect("details")
        .participants
        .push(String::new());
    let (field, _) = invalid(command_from_proto(Command::LogInteraction(p)));
    assert_eq!(field, "details.participants");
}

#[test]
fn a_u8_overflow_is_refused_but_the_business_range_is_left_to_the_domain() {
    let mut p = stakeholder_added();
    p.influence = 9; // out of 1-5, but that is the domain's rule
    assert!(command_from_proto(Command::AddStakeholder(p.clone())).is_ok());
    p.influence = 300;
    let (field, reason) = invalid(command_from_proto(Command::AddStakeholder(p)));
    assert_eq!(field, "influence");
    assert!(reason.contains("300"), "{reason}");

    let p = pb::StakeholderProfileChanged {
        stakeholder_id: "sh-cfo".to_owned(),
        influence: Some(256),
        ..Default::default()
    };
    let (field, _) = invalid(command_from_proto(Command::ChangeStakeholderProfile(p)));
    assert_eq!(field, "influence");

    let p = pb::AssessTier {
        criteria: vec![pb::TierCriterion {
            name: "revenue".to_owned(),
            weight: 1,
            score: 1000,
        }],
        recommended_tier: pb::Tier::Key.into(),
        assessed_by: "p-anna".to_owned(),
    };
    let (field, _) = invalid(command_from_proto(Command::AssessTier(p)));
    assert_eq!(field, "criteria.score");
}

#[test]
fn missing_sub_messages_are_refused() {
    let mut p = interaction_logged();
    p.details = None;
    let (field, _) = invalid(command_from_proto(Command::LogInteraction(p)));
    assert_eq!(field, "details");

    let mut p = interaction_logged();
    p.details.as_mut().expect("details").occurred_at = None;
    let (field, _) = invalid(command_from_proto(Command::LogInteraction(p)));
    assert_eq!(field, "details.occurred_at");

    let p = pb::OpportunityWon {
        opportunity_id: "opp-1".to_owned(),
        value: None,
        closed_on: "2025-01-01".to_owned(),
        reason: String::new(),
    };
    let (field, _) = invalid(command_from_proto(Command::WinOpportunity(p)));
    assert_eq!(field, "value");

    let payload = example("PlanDrafted");
    let pb::event_payload::Event::PlanDrafted(mut p) = payload else {
        unreachable!()
    };
    p.period = None;
    let (field, _) = invalid(command_from_proto(Command::DraftPlan(p)));
    assert_eq!(field, "period");

    let payload = example("EngagementRuleSet");
    let pb::event_payload::Event::EngagementRuleSet(mut p) = payload else {
        unreachable!()
    };
    p.target = Some(pb::RuleTarget { target: None });
    let (field, _) = invalid(command_from_proto(Command::SetEngagementRule(p)));
    assert_eq!(field, "target.target");
}

#[test]
fn an_action_link_without_target_is_refused_but_no_link_is_fine() {
    let payload = example("ActionItemAdded");
    let pb::event_payload::Event::ActionItemAdded(mut p) = payload else {
        unreachable!()
    };
    p.link = None;
    assert!(command_from_proto(Command::AddActionItem(p.clone())).is_ok());
    p.link = Some(pb::ActionLink { target: None });
    let (field, _) = invalid(command_from_proto(Command::AddActionItem(p)));
    assert_eq!(field, "link.target");
}

#[test]
fn an_invalid_timestamp_inside_a_payload_is_refused() {
    let mut p = interaction_logged();
    p.details.as_mut().expect("details").occurred_at = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    });
    let (field, reason) = invalid(command_from_proto(Command::LogInteraction(p)));
    assert_eq!(field, "details.occurred_at");
    assert!(reason.contains("nanos"), "{reason}");

    let too_late = prost_types::Timestamp {
        seconds: 253_402_300_800,
        nanos: 0,
    };
    let (field, _) = invalid(timestamp_from_proto_checked("occurred_at", &too_late));
    assert_eq!(field, "occurred_at");
}

#[test]
fn an_event_payload_without_event_is_refused() {
    let (field, _) = invalid(event_payload_from_proto(pb::EventPayload { event: None }));
    assert_eq!(field, "event");
}

#[test]
fn the_first_invalid_field_is_reported_for_event_payloads_too() {
    let mut p = stakeholder_added();
    p.attitude = 77;
    let payload = pb::EventPayload {
        event: Some(pb::event_payload::Event::StakeholderAdded(p)),
    };
    let (field, _) = invalid(event_payload_from_proto(payload));
    assert_eq!(field, "attitude");
    // And a valid one converts.
    let ok = event_payload_from_proto(pb::EventPayload {
        event: Some(example("ReviewCancelled")),
    });
    assert!(matches!(
        ok,
        Ok(AccountEvent::ReviewCancelled(ev::ReviewCancelled { .. }))
    ));
}
