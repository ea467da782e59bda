//! The stored form of events: round trips of every type, the v1 -> v2 upcast of interactions,
//! and the errors for what cannot be read.

mod common;

use std::collections::BTreeSet;

use common::*;
use keyplan_domain::codec::{self, legacy, CodecError};
use keyplan_domain::events::*;
use keyplan_domain::values::*;

fn interaction_details() -> InteractionDetails {
    InteractionDetails {
        occurred_at: at("2025-06-01T10:00:00Z"),
        channel: Channel::SiteVisit,
        stakeholders: vec![sh("eb"), sh("tb")],
        participants: vec![person("anna"), person("rnd-expert")],
        summary: "Toured the plant; discussed the cold chain — très intéressant".into(),
        sentiment: Sentiment::VeryPositive,
        next_step: "Send proposal".into(),
        opportunity_id: Some(opp("op1")),
    }
}

/// One example of every event type, with every optional field set somewhere.
fn examples() -> Vec<AccountEvent> {
    vec![
        AccountRegistered {
            name: "Acme Foods".into(),
            industry: "Food".into(),
            region: "EMEA".into(),
            headquarters: "Rotterdam".into(),
            tier: Tier::Key,
        }
        .into(),
        TierAssessed {
            criteria: vec![
                TierCriterion {
                    name: "revenue".into(),
                    weight: 3,
                    score: 8,
                },
                TierCriterion {
                    name: "fit".into(),
                    weight: 1,
                    score: 4,
                },
            ],
            weighted_score_milli: 7000,
            recommended_tier: Tier::Strategic,
            assessed_by: person("cfo"),
        }
        .into(),
        AccountPromoted {
            from: Tier::Key,
            to: Tier::Strategic,
            reason: "growth".into(),
        }
        .into(),
        AccountDemoted {
            from: Tier::Key,
            to: Tier::Standard,
            reason: "churn".into(),
        }
        .into(),
        TeamMemberAssigned {
            person_id: person("anna"),
            name: "Anna".into(),
            role: TeamRole::KeyAccountManager,
        }
        .into(),
        TeamMemberUnassigned {
            person_id: person("anna"),
            reason: String::new(),
        }
        .into(),
        PlanDrafted {
            plan_id: plan("p2025"),
            period: PlanPeriod {
                kind: PlanPeriodKind::CalendarYear,
                start: date("2025-01-01"),
                end: Some(date("2025-12-31")),
            },
            prepared_by: person("anna"),
            prepared_on: date("2024-12-01"),
            review_frequency: ReviewFrequency::Quarterly,
        }
        .into(),
        PlanSectionRevised {
            plan_id: plan("p2025"),
            section: PlanSection::Risks,
            text: "Competitor X\nCompetitor Y".into(),
        }
        .into(),
        ObjectiveSet {
            objective_id: obj("o1"),
            plan_id: plan("p2025"),
            title: "Share of wallet".into(),
            metric: "%".into(),
            target: "35%".into(),
            due_on: date("2025-12-31"),
            owner: person("anna"),
            status: ObjectiveStatus::OnTrack,
        }
        .into(),
        ObjectiveProgressed {
            objective_id: obj("o1"),
            status: ObjectiveStatus::AtRisk,
            current_value: "28%".into(),
            note: "slow".into(),
        }
        .into(),
        OpportunityIdentified {
            opportunity_id: opp("op1"),
            title: "Cold chain".into(),
            value: eur(250_000),
            stage: OpportunityStage::Identified,
            expected_close_on: date("2025-09-30"),
            owner: person("bob"),
        }
        .into(),
        OpportunityStageChanged {
            opportunity_id: opp("op1"),
            stage: OpportunityStage::Negotiation,
            expected_close_on: Some(date("2025-10-31")),
        }
        .into(),
        OpportunityWon {
            opportunity_id: opp("op1"),
            value: eur(240_000),
            closed_on: date("2025-10-30"),
            reason: "TCO".into(),
        }
        .into(),
        OpportunityLost {
            opportunity_id: opp("op2"),
            closed_on: date("2025-10-30"),
            reason: "price".into(),
        }
        .into(),
        ActionItemAdded {
            action_item_id: act("a1"),
            title: "Proposal".into(),
            owner: person("bob"),
            due_on: date("2025-07-01"),
            link: Some(ActionLink::Review(rev("q2"))),
        }
        .into(),
        ActionItemCompleted {
            action_item_id: act("a1"),
            completed_on: date("2025-06-30"),
            note: "sent".into(),
        }
        .into(),
        ActionItemCancelled {
            action_item_id: act("a2"),
            reason: "moot".into(),
        }
        .into(),
        RevenueRecorded {
            period_start: date("2025-04-01"),
            period_end: date("2025-06-30"),
            product: "Dairy".into(),
            actual: eur(1_200_000),
            goal: eur(1_000_000),
            margin_basis_points: Some(-250),
        }
        .into(),
        StakeholderAdded {
            stakeholder_id: sh("tb"),
            name: "Tom".into(),
            title: "Head of Engineering".into(),
            reports_to: Some(sh("eb")),
            buying_role: BuyingRole::TechnicalBuyer,
            influence: 4,
            attitude: Attitude::Critic,
        }
        .into(),
        StakeholderProfileChanged {
            stakeholder_id: sh("tb"),
            title: Some("CTO".into()),
            reports_to: None,
            clear_reports_to: true,
            buying_role: Some(BuyingRole::Coach),
            influence: Some(5),
            attitude: Some(Attitude::Champion),
            note: "promoted".into(),
        }
        .into(),
        StakeholderDeparted {
            stakeholder_id: sh("eb"),
            departed_on: date("2025-06-10"),
            reason: "retired".into(),
        }
        .into(),
        EngagementRuleSet {
            rule_id: rule("r1"),
            target: RuleTarget::BuyingRole(BuyingRole::EconomicBuyer),
            owner: person("anna"),
            cadence_days: 30,
            channels: vec![Channel::InPerson, Channel::BusinessReview],
            opportunity_id: Some(opp("op1")),
        }
        .into(),
        EngagementRuleRetired {
            rule_id: rule("r1"),
            reason: "done".into(),
        }
        .into(),
        InteractionLogged {
            interaction_id: int("i1"),
            details: interaction_details(),
        }
        .into(),
        InteractionCorrected {
            interaction_id: int("i1"),
            details: InteractionDetails {
                channel: Channel::VideoCall,
                ..interaction_details()
            },
            reason: "wrong channel".into(),
        }
        .into(),
        ReviewScheduled {
            review_id: rev("q2"),
            kind: ReviewKind::QuarterlyBusinessReview,
            plan_id: Some(plan("p2025")),
            due_on: date("2025-06-30"),
            supplier_attendees: vec![person("anna")],
            customer_attendees: vec![sh("eb")],
        }
        .into(),
        ReviewOutcomeRecorded {
            review_id: rev("q2"),
            held_on: date("2025-06-29"),
            supplier_attendees: vec![person("anna")],
            customer_attendees: vec![sh("eb")],
            outcome: ReviewOutcome::Escalated,
            health: HealthRating::Red,
            decisions: vec!["escalate pricing".into()],
            follow_up_actions: vec![FollowUpAction {
                action_item_id: act("f1"),
                title: "Call the VP".into(),
                owner: person("anna"),
                due_on: date("2025-07-05"),
            }],
        }
        .into(),
        ReviewCancelled {
            review_id: rev("q3"),
            reason: "ill".into(),
        }
        .into(),
    ]
}

#[test]
fn the_examples_cover_every_event_type() {
    let covered: BTreeSet<&str> = examples().iter().map(AccountEvent::event_type).collect();
    let all: BTreeSet<&str> = AccountEvent::TYPES.iter().copied().collect();
    assert_eq!(covered, all);
}

#[test]
fn every_event_type_has_a_current_schema_version() {
    for event_type in AccountEvent::TYPES {
        let expected = match *event_type {
            "InteractionLogged" | "InteractionCorrected" => 2,
            _ => 1,
        };
        assert_eq!(
            codec::current_schema_version(event_type),
            Some(expected),
            "{event_type}"
        );
    }
    assert_eq!(codec::current_schema_version("NoSuchEvent"), None);
}

#[test]
fn every_event_round_trips_at_its_current_version() {
    for event in examples() {
        let encoded = codec::encode(&event);
        assert_eq!(encoded.event_type, event.event_type());
        assert_eq!(
            Some(encoded.schema_version),
            codec::current_schema_version(encoded.event_type)
        );
        let decoded = codec::decode(encoded.event_type, encoded.schema_version, &encoded.payload)
            .expect("a freshly encoded event decodes");
        assert_eq!(decoded, event);
    }
}

#[test]
fn encoding_is_deterministic_and_stores_the_payload_struct() {
    let event = AccountEvent::from(ReviewCancelled {
        review_id: rev("q3"),
        reason: "ill".into(),
    });
    assert_eq!(codec::encode(&event), codec::encode(&event));
    // the payload struct, not the enum: no variant index in front
    let payload = ReviewCancelled {
        review_id: rev("q3"),
        reason: "ill".into(),
    };
    let bytes = postcard::to_allocvec(&payload).expect("serializes");
    assert_eq!(codec::encode(&event).payload, bytes);
}

#[test]
fn a_genuine_v1_interaction_logged_is_upcast_with_no_opportunity() {
    let current = InteractionLogged {
        interaction_id: int("i1"),
        details: interaction_details(),
    };
    let v1 = legacy::encode_interaction_logged_v1(&current);
    assert_eq!(v1.event_type, "InteractionLogged");
    assert_eq!(v1.schema_version, 1);
    assert_ne!(v1.payload, codec::encode(&current.clone().into()).payload);

    let decoded = codec::decode(v1.event_type, v1.schema_version, &v1.payload).expect("v1 decodes");
    let AccountEvent::InteractionLogged(upcast) = decoded else {
        panic!("decoded as another type: {decoded:?}");
    };
    assert_eq!(upcast.details.opportunity_id, None);
    assert_eq!(
        upcast,
        InteractionLogged {
            interaction_id: int("i1"),
            details: InteractionDetails {
                opportunity_id: None,
                ..interaction_details()
            },
        }
    );
}

#[test]
fn a_genuine_v1_interaction_corrected_is_upcast_with_no_opportunity() {
    let current = InteractionCorrected {
        interaction_id: int("i1"),
        details: interaction_details(),
        reason: "typo".into(),
    };
    let v1 = legacy::encode_interaction_corrected_v1(&current);
    assert_eq!(
        (v1.event_type, v1.schema_version),
        ("InteractionCorrected", 1)
    );
    let decoded = codec::decode(v1.event_type, v1.schema_version, &v1.payload).expect("v1 decodes");
    assert_eq!(
        decoded,
        AccountEvent::InteractionCorrected(InteractionCorrected {
            details: InteractionDetails {
                opportunity_id: None,
                ..interaction_details()
            },
            ..current
        })
    );
}

#[test]
fn versions_are_not_confused() {
    let current = InteractionLogged {
        interaction_id: int("i1"),
        details: interaction_details(),
    };
    let v2 = codec::encode(&current.clone().into());
    // v2 bytes labelled v1: one trailing byte too many for the v1 shape
    assert!(matches!(
        codec::decode("InteractionLogged", 1, &v2.payload),
        Err(CodecError::Corrupt {
            schema_version: 1,
            ..
        })
    ));
    // v1 bytes labelled v2: the option tag is missing
    let v1 = legacy::encode_interaction_logged_v1(&current);
    assert!(matches!(
        codec::decode("InteractionLogged", 2, &v1.payload),
        Err(CodecError::Corrupt {
            schema_version: 2,
            ..
        })
    ));
}

#[test]
fn unknown_types_and_versions_are_refused() {
    assert_eq!(
        codec::decode("AccountMerged", 1, &[]),
        Err(CodecError::UnknownEventType("AccountMerged".into()))
    );
    let encoded = codec::encode(&examples()[0]);
    for version in [0, 2, u16::MAX] {
        assert_eq!(
            codec::decode(encoded.event_type, version, &encoded.payload),
            Err(CodecError::UnknownSchemaVersion {
                event_type: "AccountRegistered".into(),
                schema_version: version,
                current: 1,
            })
        );
    }
    assert!(matches!(
        codec::decode("InteractionLogged", 3, &[]),
        Err(CodecError::UnknownSchemaVersion { current: 2, .. })
    ));
}

#[test]
fn bad_bytes_are_corrupt() {
    for event in examples() {
        let encoded = codec::encode(&event);
        // every strict prefix is truncated, so none may decode
        for len in 0..encoded.payload.len() {
            let result = codec::decode(
                encoded.event_type,
                encoded.schema_version,
                &encoded.payload[..len],
            );
            assert!(
                matches!(result, Err(CodecError::Corrupt { .. })),
                "{} truncated to {len} bytes: {result:?}",
                encoded.event_type
            );
        }
        let mut longer = encoded.payload.clone();
        longer.push(0);
        assert!(matches!(
            codec::decode(encoded.event_type, encoded.schema_version, &longer),
            Err(CodecError::Corrupt { .. })
        ));
    }
    let err = codec::decode("AccountPromoted", 1, &[9, 9, 9]).expect_err("9 is no tier");
    assert!(
        err.to_string()
            .starts_with("corrupt AccountPromoted v1 payload"),
        "{err}"
    );
}
