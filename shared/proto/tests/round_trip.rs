//! Every event payload survives domain -> wire -> domain unchanged, through the event path
//! and, for the 25 commands that carry an event payload, through the command path.

#[allow(dead_code)]
mod examples;

use std::collections::BTreeSet;

use keyplan_domain::commands::{AssessTier, ChangeTier};
use keyplan_domain::events::TierCriterion;
use keyplan_domain::ids::PersonId;
use keyplan_domain::values::{Tier, Timestamp};
use keyplan_domain::{AccountCommand, AccountEvent};
use keyplan_proto::convert::*;
use keyplan_proto::pb;
use prost::Message;

/// Pairs each command that carries an event payload with that event.
macro_rules! carried_payloads {
    ($($command:ident => $event:ident),+ $(,)?) => {
        /// The command that proposes this wire payload, if any.
        fn as_command(payload: pb::event_payload::Event) -> Option<pb::command::Kind> {
            use pb::event_payload::Event as E;
            use pb::command::Kind as C;
            match payload {
                $(E::$event(p) => Some(C::$command(p)),)+
                _ => None,
            }
        }

        /// The event a command proposes, if it carries an event payload.
        fn proposed_event(command: AccountCommand) -> Option<AccountEvent> {
            match command {
                $(AccountCommand::$command(p) => Some(AccountEvent::$event(p)),)+
                _ => None,
            }
        }
    };
}

carried_payloads!(
    RegisterAccount => AccountRegistered,
    AssignTeamMember => TeamMemberAssigned,
    UnassignTeamMember => TeamMemberUnassigned,
    DraftPlan => PlanDrafted,
    RevisePlanSection => PlanSectionRevised,
    SetObjective => ObjectiveSet,
    ProgressObjective => ObjectiveProgressed,
    IdentifyOpportunity => OpportunityIdentified,
    ChangeOpportunityStage => OpportunityStageChanged,
    WinOpportunity => OpportunityWon,
    LoseOpportunity => OpportunityLost,
    AddActionItem => ActionItemAdded,
    CompleteActionItem => ActionItemCompleted,
    CancelActionItem => ActionItemCancelled,
    RecordRevenue => RevenueRecorded,
    AddStakeholder => StakeholderAdded,
    ChangeStakeholderProfile => StakeholderProfileChanged,
    RecordStakeholderDeparture => StakeholderDeparted,
    SetEngagementRule => EngagementRuleSet,
    RetireEngagementRule => EngagementRuleRetired,
    LogInteraction => InteractionLogged,
    CorrectInteraction => InteractionCorrected,
    ScheduleReview => ReviewScheduled,
    RecordReviewOutcome => ReviewOutcomeRecorded,
    CancelReview => ReviewCancelled,
);

fn all_examples() -> Vec<AccountEvent> {
    let mut events = examples::one_of_each();
    events.extend(examples::other_shapes());
    events
}

#[test]
fn the_examples_cover_every_event_type_once() {
    let events = examples::one_of_each();
    let covered: BTreeSet<_> = events.iter().map(AccountEvent::event_type).collect();
    let all: BTreeSet<_> = AccountEvent::TYPES.iter().copied().collect();
    assert_eq!(covered, all);
    assert_eq!(events.len(), AccountEvent::TYPES.len());
}

#[test]
fn every_event_payload_round_trips_through_the_wire() {
    for event in all_examples() {
        let wire = event_payload_to_proto(&event);
        // Through bytes as well, so that the proto schema (not only the Rust structs) keeps
        // every field.
        let decoded = pb::EventPayload::decode(wire.encode_to_vec().as_slice())
            .expect("the encoded payload decodes");
        assert_eq!(
            decoded,
            wire,
            "{} changed in protobuf bytes",
            event.event_type()
        );
        let back = event_payload_from_proto(decoded)
            .unwrap_or_else(|e| panic!("{} did not convert back: {e}", event.event_type()));
        assert_eq!(back, event);
    }
}

#[test]
fn every_command_carrying_a_payload_round_trips_to_the_same_event() {
    let mut commands = 0;
    for event in all_examples() {
        let wire = event_payload_to_proto(&event).event.expect("payload set");
        let Some(command) = as_command(wire) else {
            continue;
        };
        commands += 1;
        let domain = command_from_proto(command.clone())
            .unwrap_or_else(|e| panic!("{} did not convert: {e}", event.event_type()));
        assert_eq!(command_to_proto(&domain), command);
        assert_eq!(proposed_event(domain), Some(event));
    }
    // 25 of the 28 event types are proposed by a command; one_of_each has one of each and
    // other_shapes adds 11 more, all of carried types.
    assert_eq!(commands, 25 + examples::other_shapes().len());
}

#[test]
fn tier_commands_round_trip() {
    let commands = [
        AccountCommand::AssessTier(AssessTier {
            criteria: vec![
                TierCriterion {
                    name: "revenue".to_owned(),
                    weight: 3,
                    score: 9,
                },
                TierCriterion {
                    name: "retention".to_owned(),
                    weight: 1,
                    score: 10,
                },
            ],
            recommended_tier: Tier::Strategic,
            assessed_by: PersonId::parse("p-anna").expect("valid id"),
        }),
        AccountCommand::PromoteAccount(ChangeTier {
            to: Tier::Strategic,
            reason: "Top 3 by margin".to_owned(),
        }),
        AccountCommand::DemoteAccount(ChangeTier {
            to: Tier::Standard,
            reason: "Volume fell 60% after their merger".to_owned(),
        }),
    ];
    for command in commands {
        let wire = command_to_proto(&command);
        assert_eq!(command_from_proto(wire), Ok(command));
    }
}

#[test]
fn promote_and_demote_are_distinct_oneof_fields() {
    let change = ChangeTier {
        to: Tier::Key,
        reason: "r".to_owned(),
    };
    assert!(matches!(
        command_to_proto(&AccountCommand::PromoteAccount(change.clone())),
        pb::command::Kind::PromoteAccount(_)
    ));
    assert!(matches!(
        command_to_proto(&AccountCommand::DemoteAccount(change)),
        pb::command::Kind::DemoteAccount(_)
    ));
}

#[test]
fn timestamps_round_trip_at_microsecond_precision() {
    for micros in [
        0,
        1,
        -1,
        1_739_999_999_123_456,
        -62_135_596_800_000_000,
        253_402_300_799_999_999,
    ] {
        let t = Timestamp(micros);
        let wire = timestamp_to_proto(t);
        assert!((0..1_000_000_000).contains(&wire.nanos), "{wire:?}");
        assert_eq!(timestamp_from_proto(wire), t);
        assert_eq!(timestamp_from_proto_checked("at", &wire), Ok(t));
    }
}

#[test]
fn lenient_timestamps_drop_nanoseconds_and_saturate() {
    let t = prost_types::Timestamp {
        seconds: 1,
        nanos: 999,
    };
    assert_eq!(timestamp_from_proto(t), Timestamp(1_000_000));
    let huge = prost_types::Timestamp {
        seconds: i64::MAX,
        nanos: 999_999_999,
    };
    assert_eq!(timestamp_from_proto(huge), Timestamp(i64::MAX));
}
