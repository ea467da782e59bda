//! One realistic example of every event type, told as the story of one key account, plus a
//! few extra values that exercise the other arms of the oneofs and optional fields.

use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_domain::AccountEvent;

pub fn d(s: &str) -> Date {
    parse_date("test", s).expect("valid test date")
}

pub fn person(s: &str) -> PersonId {
    PersonId::parse(s).expect("valid person id")
}

pub fn stakeholder(s: &str) -> StakeholderId {
    StakeholderId::parse(s).expect("valid stakeholder id")
}

pub fn eur(minor_units: i64) -> Money {
    Money {
        currency: "EUR".to_owned(),
        minor_units,
    }
}

fn details(opportunity: Option<&str>, summary: &str) -> InteractionDetails {
    InteractionDetails {
        // 2025-02-19T21:20:00.123456Z: microsecond precision must survive the round trip.
        occurred_at: Timestamp(1_739_999_999_123_456 + 1_000_000),
        channel: Channel::InPerson,
        stakeholders: vec![stakeholder("sh-cfo"), stakeholder("sh-head-logistics")],
        participants: vec![person("p-anna"), person("p-tom")],
        summary: summary.to_owned(),
        sentiment: Sentiment::Positive,
        next_step: "Send the cold-chain proposal by Friday".to_owned(),
        opportunity_id: opportunity.map(|o| OpportunityId::parse(o).expect("valid id")),
    }
}

/// Exactly one event of each of the 28 types, in a plausible order.
pub fn one_of_each() -> Vec<AccountEvent> {
    vec![
        AccountRegistered {
            name: "Nordwind Logistics GmbH".to_owned(),
            industry: "Logistics".to_owned(),
            region: "DACH".to_owned(),
            headquarters: "Hamburg, Germany".to_owned(),
            tier: Tier::Key,
        }
        .into(),
        TierAssessed {
            criteria: vec![
                TierCriterion {
                    name: "revenue".to_owned(),
                    weight: 3,
                    score: 9,
                },
                TierCriterion {
                    name: "profitability".to_owned(),
                    weight: 2,
                    score: 7,
                },
                TierCriterion {
                    name: "strategic fit".to_owned(),
                    weight: 2,
                    score: 8,
                },
                TierCriterion {
                    name: "growth potential".to_owned(),
                    weight: 1,
                    score: 6,
                },
            ],
            weighted_score_milli: 7875,
            recommended_tier: Tier::Strategic,
            assessed_by: person("p-anna"),
        }
        .into(),
        AccountPromoted {
            from: Tier::Key,
            to: Tier::Strategic,
            reason: "Assessment 7.875, cold-chain partnership".to_owned(),
        }
        .into(),
        AccountDemoted {
            from: Tier::Strategic,
            to: Tier::Key,
            reason: "Board decision: strategic tier limited to 5 accounts".to_owned(),
        }
        .into(),
        TeamMemberAssigned {
            person_id: person("p-anna"),
            name: "Anna Berger".to_owned(),
            role: TeamRole::KeyAccountManager,
        }
        .into(),
        TeamMemberUnassigned {
            person_id: person("p-lars"),
            reason: "Moved to APAC".to_owned(),
        }
        .into(),
        PlanDrafted {
            plan_id: PlanId::parse("plan-2025").expect("valid id"),
            period: PlanPeriod {
                kind: PlanPeriodKind::CalendarYear,
                start: d("2025-01-01"),
                end: Some(d("2025-12-31")),
            },
            prepared_by: person("p-anna"),
            prepared_on: d("2024-12-10"),
            review_frequency: ReviewFrequency::Quarterly,
        }
        .into(),
        PlanSectionRevised {
            plan_id: PlanId::parse("plan-2025").expect("valid id"),
            section: PlanSection::Risks,
            text: "Competitor FrostLine is piloting at the Bremen hub.".to_owned(),
        }
        .into(),
        ObjectiveSet {
            objective_id: ObjectiveId::parse("obj-wallet").expect("valid id"),
            plan_id: PlanId::parse("plan-2025").expect("valid id"),
            title: "Grow share of wallet".to_owned(),
            metric: "share of wallet %".to_owned(),
            target: "35%".to_owned(),
            due_on: d("2025-12-31"),
            owner: person("p-anna"),
            status: ObjectiveStatus::NotStarted,
        }
        .into(),
        ObjectiveProgressed {
            objective_id: ObjectiveId::parse("obj-wallet").expect("valid id"),
            status: ObjectiveStatus::OnTrack,
            current_value: "27%".to_owned(),
            note: "Q1 orders above plan".to_owned(),
        }
        .into(),
        OpportunityIdentified {
            opportunity_id: OpportunityId::parse("opp-cold-chain").expect("valid id"),
            title: "Cold-chain monitoring for 40 trucks".to_owned(),
            value: eur(125_000_000),
            stage: OpportunityStage::Identified,
            expected_close_on: d("2025-06-30"),
            owner: person("p-tom"),
        }
        .into(),
        OpportunityStageChanged {
            opportunity_id: OpportunityId::parse("opp-cold-chain").expect("valid id"),
            stage: OpportunityStage::Proposal,
            expected_close_on: Some(d("2025-07-15")),
        }
        .into(),
        OpportunityWon {
            opportunity_id: OpportunityId::parse("opp-cold-chain").expect("valid id"),
            value: eur(118_000_000),
            closed_on: d("2025-07-10"),
            reason: "Integration with their TMS".to_owned(),
        }
        .into(),
        OpportunityLost {
            opportunity_id: OpportunityId::parse("opp-telematics").expect("valid id"),
            closed_on: d("2025-05-02"),
            reason: "Price: 18% above FrostLine".to_owned(),
        }
        .into(),
        ActionItemAdded {
            action_item_id: ActionItemId::parse("act-1").expect("valid id"),
            title: "Map the buying centre at the Bremen hub".to_owned(),
            owner: person("p-tom"),
            due_on: d("2025-03-15"),
            link: Some(ActionLink::Objective(
                ObjectiveId::parse("obj-wallet").expect("valid id"),
            )),
        }
        .into(),
        ActionItemCompleted {
            action_item_id: ActionItemId::parse("act-1").expect("valid id"),
            completed_on: d("2025-03-12"),
            note: "Three new stakeholders identified".to_owned(),
        }
        .into(),
        ActionItemCancelled {
            action_item_id: ActionItemId::parse("act-2").expect("valid id"),
            reason: "Superseded by the QBR follow-ups".to_owned(),
        }
        .into(),
        RevenueRecorded {
            period_start: d("2025-01-01"),
            period_end: d("2025-03-31"),
            product: "Fleet services".to_owned(),
            actual: eur(41_250_000),
            goal: eur(40_000_000),
            margin_basis_points: Some(1834),
        }
        .into(),
        StakeholderAdded {
            stakeholder_id: stakeholder("sh-head-logistics"),
            name: "Jonas Petersen".to_owned(),
            title: "Head of Logistics".to_owned(),
            reports_to: Some(stakeholder("sh-cfo")),
            buying_role: BuyingRole::TechnicalBuyer,
            influence: 4,
            attitude: Attitude::Supporter,
        }
        .into(),
        StakeholderProfileChanged {
            stakeholder_id: stakeholder("sh-head-logistics"),
            title: Some("VP Logistics".to_owned()),
            reports_to: None,
            clear_reports_to: true,
            buying_role: None,
            influence: Some(5),
            attitude: Some(Attitude::Champion),
            note: "Promoted; now reports to the board".to_owned(),
        }
        .into(),
        StakeholderDeparted {
            stakeholder_id: stakeholder("sh-old-buyer"),
            departed_on: d("2025-02-28"),
            reason: "Left the company".to_owned(),
        }
        .into(),
        EngagementRuleSet {
            rule_id: RuleId::parse("rule-eb-monthly").expect("valid id"),
            target: RuleTarget::BuyingRole(BuyingRole::EconomicBuyer),
            owner: person("p-anna"),
            cadence_days: 30,
            channels: vec![Channel::InPerson, Channel::VideoCall],
            opportunity_id: Some(OpportunityId::parse("opp-cold-chain").expect("valid id")),
        }
        .into(),
        EngagementRuleRetired {
            rule_id: RuleId::parse("rule-old").expect("valid id"),
            reason: "Stakeholder departed".to_owned(),
        }
        .into(),
        InteractionLogged {
            interaction_id: InteractionId::parse("int-2025-02-19").expect("valid id"),
            details: details(None, "Walked the Bremen hub with the logistics team"),
        }
        .into(),
        InteractionCorrected {
            interaction_id: InteractionId::parse("int-2025-02-19").expect("valid id"),
            details: details(
                Some("opp-cold-chain"),
                "Hub walk; cold-chain needs discussed",
            ),
            reason: "Forgot to link the opportunity".to_owned(),
        }
        .into(),
        ReviewScheduled {
            review_id: ReviewId::parse("qbr-2025-q1").expect("valid id"),
            kind: ReviewKind::QuarterlyBusinessReview,
            plan_id: Some(PlanId::parse("plan-2025").expect("valid id")),
            due_on: d("2025-04-10"),
            supplier_attendees: vec![person("p-anna"), person("p-exec")],
            customer_attendees: vec![stakeholder("sh-cfo")],
        }
        .into(),
        ReviewOutcomeRecorded {
            review_id: ReviewId::parse("qbr-2025-q1").expect("valid id"),
            held_on: d("2025-04-09"),
            supplier_attendees: vec![person("p-anna")],
            customer_attendees: vec![stakeholder("sh-cfo"), stakeholder("sh-head-logistics")],
            outcome: ReviewOutcome::ApprovedWithChanges,
            health: HealthRating::Amber,
            decisions: vec![
                "Pilot at Bremen in Q2".to_owned(),
                "Monthly ops call".to_owned(),
            ],
            follow_up_actions: vec![FollowUpAction {
                action_item_id: ActionItemId::parse("act-qbr-1").expect("valid id"),
                title: "Draft the Bremen pilot plan".to_owned(),
                owner: person("p-tom"),
                due_on: d("2025-04-30"),
            }],
        }
        .into(),
        ReviewCancelled {
            review_id: ReviewId::parse("exec-2025-h1").expect("valid id"),
            reason: "CFO unavailable; merged into the Q2 QBR".to_owned(),
        }
        .into(),
    ]
}

/// Events that take the other arms of oneofs and optional fields than `one_of_each`.
pub fn other_shapes() -> Vec<AccountEvent> {
    vec![
        PlanDrafted {
            plan_id: PlanId::parse("plan-evergreen").expect("valid id"),
            period: PlanPeriod {
                kind: PlanPeriodKind::Perpetual,
                start: d("2024-02-29"),
                end: None,
            },
            prepared_by: person("p-anna"),
            prepared_on: d("2024-02-29"),
            review_frequency: ReviewFrequency::HalfYearly,
        }
        .into(),
        OpportunityStageChanged {
            opportunity_id: OpportunityId::parse("opp-telematics").expect("valid id"),
            stage: OpportunityStage::Negotiation,
            expected_close_on: None,
        }
        .into(),
        ActionItemAdded {
            action_item_id: ActionItemId::parse("act-3").expect("valid id"),
            title: "Reference call".to_owned(),
            owner: person("p-tom"),
            due_on: d("2025-05-01"),
            link: Some(ActionLink::Opportunity(
                OpportunityId::parse("opp-cold-chain").expect("valid id"),
            )),
        }
        .into(),
        ActionItemAdded {
            action_item_id: ActionItemId::parse("act-4").expect("valid id"),
            title: "Send minutes".to_owned(),
            owner: person("p-anna"),
            due_on: d("2025-04-11"),
            link: Some(ActionLink::Review(
                ReviewId::parse("qbr-2025-q1").expect("valid id"),
            )),
        }
        .into(),
        ActionItemAdded {
            action_item_id: ActionItemId::parse("act-5").expect("valid id"),
            title: "Book the venue".to_owned(),
            owner: person("p-anna"),
            due_on: d("2025-04-01"),
            link: None,
        }
        .into(),
        RevenueRecorded {
            period_start: d("2025-04-01"),
            period_end: d("2025-06-30"),
            product: String::new(),
            actual: eur(0),
            goal: eur(40_000_000),
            margin_basis_points: None,
        }
        .into(),
        StakeholderAdded {
            stakeholder_id: stakeholder("sh-cfo"),
            name: "Maren Ahlers".to_owned(),
            title: "CFO".to_owned(),
            reports_to: None,
            buying_role: BuyingRole::EconomicBuyer,
            influence: 5,
            attitude: Attitude::Neutral,
        }
        .into(),
        StakeholderProfileChanged {
            stakeholder_id: stakeholder("sh-cfo"),
            title: Some(String::new()),
            reports_to: Some(stakeholder("sh-ceo")),
            clear_reports_to: false,
            buying_role: Some(BuyingRole::Coach),
            influence: None,
            attitude: None,
            note: String::new(),
        }
        .into(),
        EngagementRuleSet {
            rule_id: RuleId::parse("rule-cfo").expect("valid id"),
            target: RuleTarget::Stakeholder(stakeholder("sh-cfo")),
            owner: person("p-exec"),
            cadence_days: 90,
            channels: vec![Channel::BusinessReview, Channel::Event],
            opportunity_id: None,
        }
        .into(),
        InteractionLogged {
            interaction_id: InteractionId::parse("int-before-1970").expect("valid id"),
            details: InteractionDetails {
                occurred_at: Timestamp(-1),
                channel: Channel::Email,
                stakeholders: vec![stakeholder("sh-cfo")],
                participants: vec![person("p-anna")],
                summary: "Negative micros must round-trip too".to_owned(),
                sentiment: Sentiment::VeryNegative,
                next_step: String::new(),
                opportunity_id: None,
            },
        }
        .into(),
        ReviewScheduled {
            review_id: ReviewId::parse("internal-1").expect("valid id"),
            kind: ReviewKind::InternalPlanReview,
            plan_id: None,
            due_on: d("2025-03-01"),
            supplier_attendees: vec![],
            customer_attendees: vec![],
        }
        .into(),
    ]
}
