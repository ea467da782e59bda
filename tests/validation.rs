//! Every command's refusals over real gRPC: the right status code, a message naming what is
//! wrong, and nothing stored.
#![allow(clippy::unwrap_used)]

mod common;

use common::fixtures::*;
use common::{head, Server};
use keyplan_proto::pb;
use keyplan_proto::pb::command::Kind;
use tonic::Code;

fn money(currency: &str, minor_units: i64) -> Option<pb::Money> {
    Some(pb::Money {
        currency: currency.into(),
        minor_units,
    })
}

/// Sets up one of everything the refusals below refer to.
async fn rich_account(server: &Server) {
    onboard(server, "globex").await;
    let mut c = server.commands();
    let setup = [
        Kind::SetObjective(pb::ObjectiveSet {
            objective_id: "obj-share".into(),
            plan_id: "plan-2026".into(),
            title: "Grow share of wallet".into(),
            metric: "share of wallet".into(),
            target: "35%".into(),
            due_on: "2026-12-31".into(),
            owner: "dana.kim".into(),
            status: pb::ObjectiveStatus::OnTrack as i32,
        }),
        Kind::IdentifyOpportunity(pb::OpportunityIdentified {
            opportunity_id: "opp-coatings".into(),
            title: "Coatings line".into(),
            value: money("EUR", 25_000_000),
            stage: pb::OpportunityStage::Qualified as i32,
            expected_close_on: "2026-09-30".into(),
            owner: "lee.chan".into(),
        }),
        Kind::IdentifyOpportunity(pb::OpportunityIdentified {
            opportunity_id: "opp-lost".into(),
            title: "Solvents".into(),
            value: money("EUR", 1_000_000),
            stage: pb::OpportunityStage::Proposal as i32,
            expected_close_on: "2026-06-30".into(),
            owner: "lee.chan".into(),
        }),
        Kind::LoseOpportunity(pb::OpportunityLost {
            opportunity_id: "opp-lost".into(),
            closed_on: "2026-02-01".into(),
            reason: "Price".into(),
        }),
        stakeholder("cto", "Sam Roy", pb::BuyingRole::TechnicalBuyer),
        Kind::RecordStakeholderDeparture(pb::StakeholderDeparted {
            stakeholder_id: "cto".into(),
            departed_on: "2026-02-01".into(),
            reason: "Left the company".into(),
        }),
        Kind::ScheduleReview(pb::ReviewScheduled {
            review_id: "qbr-q1".into(),
            kind: pb::ReviewKind::QuarterlyBusinessReview as i32,
            plan_id: "plan-2026".into(),
            due_on: "2026-03-31".into(),
            supplier_attendees: vec!["dana.kim".into()],
            customer_attendees: vec!["cfo".into()],
        }),
        Kind::CancelReview(pb::ReviewCancelled {
            review_id: "qbr-q1".into(),
            reason: "Customer asked to move it".into(),
        }),
    ];
    for (i, kind) in setup.into_iter().enumerate() {
        // Onboarding wrote versions 1-5; each setup command adds one.
        c.execute(exact(request("globex", kind), 5 + i as u64))
            .await
            .expect("setup command succeeds");
    }
}

struct Case {
    what: &'static str,
    request: pb::ExecuteRequest,
    code: Code,
    /// A word the message must contain (the offending id or field).
    names: &'static str,
}

fn case(what: &'static str, request: pb::ExecuteRequest, code: Code, names: &'static str) -> Case {
    Case {
        what,
        request,
        code,
        names,
    }
}

#[tokio::test]
async fn every_command_refuses_bad_input_with_a_clear_status_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    rich_account(&server).await;
    let v = {
        let page = server
            .events()
            .read_stream(pb::ReadStreamRequest {
                tenant: TENANT.into(),
                account_id: "globex".into(),
                from_version: 0,
                direction: pb::Direction::Backward as i32,
                max_count: 1,
            })
            .await
            .unwrap()
            .into_inner();
        page.stream_version
    };
    let g = |kind| request("globex", kind);

    let cases = vec![
        // --- envelope and wire form
        case(
            "no command",
            {
                let mut r = g(register("x"));
                r.command = None;
                r
            },
            Code::InvalidArgument,
            "command",
        ),
        case(
            "no actor",
            {
                let mut r = g(register("x"));
                r.actor = String::new();
                r
            },
            Code::InvalidArgument,
            "actor",
        ),
        case(
            "bad tenant id",
            {
                let mut r = g(register("x"));
                r.tenant = "acme supplies".into();
                r
            },
            Code::InvalidArgument,
            "tenant",
        ),
        case(
            "unregistered account",
            request("nobody", interaction("c", "cfo", 0)),
            Code::NotFound,
            "not registered",
        ),
        case(
            "shared edit without a version",
            g(revise("plan-2026", "text")),
            Code::InvalidArgument,
            "expected_version",
        ),
        case(
            "future business time",
            {
                let mut r = g(interaction("c-future", "cfo", 0));
                r.occurred_at = Some(prost_types::Timestamp {
                    seconds: 4_102_444_800,
                    nanos: 0,
                });
                r
            },
            Code::InvalidArgument,
            "occurred_at",
        ),
        // --- account
        case(
            "RegisterAccount twice",
            g(register("Globex again")),
            Code::AlreadyExists,
            "already",
        ),
        case(
            "RegisterAccount without a name",
            request("fresh", register("")),
            Code::InvalidArgument,
            "name",
        ),
        case(
            "RegisterAccount unspecified tier",
            request(
                "fresh",
                Kind::RegisterAccount(pb::AccountRegistered {
                    name: "Fresh".into(),
                    industry: "x".into(),
                    region: "x".into(),
                    headquarters: "x".into(),
                    tier: 0,
                }),
            ),
            Code::InvalidArgument,
            "tier",
        ),
        case(
            "AssessTier score 11",
            g(Kind::AssessTier(pb::AssessTier {
                criteria: vec![pb::TierCriterion {
                    name: "revenue".into(),
                    weight: 3,
                    score: 11,
                }],
                recommended_tier: pb::Tier::Key as i32,
                assessed_by: "dana.kim".into(),
            })),
            Code::InvalidArgument,
            "score",
        ),
        case(
            "PromoteAccount to a lower tier",
            g(Kind::PromoteAccount(pb::ChangeTier {
                to: pb::Tier::Standard as i32,
                reason: "x".into(),
            })),
            Code::FailedPrecondition,
            "key",
        ),
        case(
            "DemoteAccount to a higher tier",
            g(Kind::DemoteAccount(pb::ChangeTier {
                to: pb::Tier::Strategic as i32,
                reason: "x".into(),
            })),
            Code::FailedPrecondition,
            "strategic",
        ),
        case(
            "AssignTeamMember second KAM",
            g(assign(
                "sam.doe",
                "Sam Doe",
                pb::TeamRole::KeyAccountManager,
            )),
            Code::FailedPrecondition,
            "Dana Kim",
        ),
        case(
            "UnassignTeamMember stranger",
            g(Kind::UnassignTeamMember(pb::TeamMemberUnassigned {
                person_id: "stranger".into(),
                reason: String::new(),
            })),
            Code::NotFound,
            "stranger",
        ),
        // --- plan
        case(
            "DraftPlan ends before it starts",
            g(Kind::DraftPlan(pb::PlanDrafted {
                plan_id: "plan-bad".into(),
                period: Some(pb::PlanPeriod {
                    kind: pb::PlanPeriodKind::HalfYear as i32,
                    start: "2026-07-01".into(),
                    end: "2026-01-01".into(),
                }),
                prepared_by: "dana.kim".into(),
                prepared_on: "2026-01-01".into(),
                review_frequency: pb::ReviewFrequency::Quarterly as i32,
            })),
            Code::InvalidArgument,
            "end",
        ),
        case(
            "DraftPlan bad date",
            g(Kind::DraftPlan(pb::PlanDrafted {
                plan_id: "plan-bad".into(),
                period: Some(pb::PlanPeriod {
                    kind: pb::PlanPeriodKind::CalendarYear as i32,
                    start: "2026-13-01".into(),
                    end: "2026-12-31".into(),
                }),
                prepared_by: "dana.kim".into(),
                prepared_on: "2026-01-01".into(),
                review_frequency: pb::ReviewFrequency::Quarterly as i32,
            })),
            Code::InvalidArgument,
            "YYYY-MM-DD",
        ),
        case(
            "RevisePlanSection unknown plan",
            exact(g(revise("plan-1999", "text")), v),
            Code::NotFound,
            "plan-1999",
        ),
        case(
            "SetObjective owner outside the team",
            exact(
                g(Kind::SetObjective(pb::ObjectiveSet {
                    objective_id: "obj-2".into(),
                    plan_id: "plan-2026".into(),
                    title: "t".into(),
                    metric: "m".into(),
                    target: "1".into(),
                    due_on: "2026-12-31".into(),
                    owner: "outsider".into(),
                    status: pb::ObjectiveStatus::NotStarted as i32,
                })),
                v,
            ),
            Code::NotFound,
            "outsider",
        ),
        case(
            "ProgressObjective unknown",
            g(Kind::ProgressObjective(pb::ObjectiveProgressed {
                objective_id: "obj-none".into(),
                status: pb::ObjectiveStatus::OnTrack as i32,
                current_value: "1".into(),
                note: String::new(),
            })),
            Code::NotFound,
            "obj-none",
        ),
        case(
            "IdentifyOpportunity negative value",
            g(Kind::IdentifyOpportunity(pb::OpportunityIdentified {
                opportunity_id: "opp-neg".into(),
                title: "t".into(),
                value: money("EUR", -5),
                stage: pb::OpportunityStage::Identified as i32,
                expected_close_on: "2026-12-01".into(),
                owner: "lee.chan".into(),
            })),
            Code::InvalidArgument,
            "negative",
        ),
        case(
            "ChangeOpportunityStage unknown",
            g(Kind::ChangeOpportunityStage(pb::OpportunityStageChanged {
                opportunity_id: "opp-none".into(),
                stage: pb::OpportunityStage::Proposal as i32,
                expected_close_on: String::new(),
            })),
            Code::NotFound,
            "opp-none",
        ),
        case(
            "WinOpportunity bad currency",
            g(Kind::WinOpportunity(pb::OpportunityWon {
                opportunity_id: "opp-coatings".into(),
                value: money("euro", 100),
                closed_on: "2026-03-01".into(),
                reason: "fit".into(),
            })),
            Code::InvalidArgument,
            "currency",
        ),
        case(
            "WinOpportunity already lost",
            g(Kind::WinOpportunity(pb::OpportunityWon {
                opportunity_id: "opp-lost".into(),
                value: money("EUR", 100),
                closed_on: "2026-03-01".into(),
                reason: "fit".into(),
            })),
            Code::FailedPrecondition,
            "opp-lost",
        ),
        case(
            "LoseOpportunity unknown",
            g(Kind::LoseOpportunity(pb::OpportunityLost {
                opportunity_id: "opp-none".into(),
                closed_on: "2026-03-01".into(),
                reason: "price".into(),
            })),
            Code::NotFound,
            "opp-none",
        ),
        case(
            "AddActionItem linked to an unknown objective",
            g(Kind::AddActionItem(pb::ActionItemAdded {
                action_item_id: "act-1".into(),
                title: "Call back".into(),
                owner: "dana.kim".into(),
                due_on: "2026-04-01".into(),
                link: Some(pb::ActionLink {
                    target: Some(pb::action_link::Target::ObjectiveId("obj-none".into())),
                }),
            })),
            Code::NotFound,
            "obj-none",
        ),
        case(
            "CompleteActionItem unknown",
            g(Kind::CompleteActionItem(pb::ActionItemCompleted {
                action_item_id: "act-none".into(),
                completed_on: "2026-03-01".into(),
                note: String::new(),
            })),
            Code::NotFound,
            "act-none",
        ),
        case(
            "CancelActionItem unknown",
            g(Kind::CancelActionItem(pb::ActionItemCancelled {
                action_item_id: "act-none".into(),
                reason: "x".into(),
            })),
            Code::NotFound,
            "act-none",
        ),
        case(
            "RecordRevenue currencies differ",
            g(Kind::RecordRevenue(pb::RevenueRecorded {
                period_start: "2026-01-01".into(),
                period_end: "2026-03-31".into(),
                product: String::new(),
                actual: money("EUR", 100),
                goal: money("USD", 100),
                margin_basis_points: None,
            })),
            Code::InvalidArgument,
            "currency",
        ),
        // --- decision-making unit
        case(
            "AddStakeholder influence 9",
            g(Kind::AddStakeholder(pb::StakeholderAdded {
                stakeholder_id: "cpo".into(),
                name: "Ana Ruiz".into(),
                title: "CPO".into(),
                reports_to: String::new(),
                buying_role: pb::BuyingRole::User as i32,
                influence: 9,
                attitude: pb::Attitude::Neutral as i32,
            })),
            Code::InvalidArgument,
            "influence",
        ),
        case(
            "AddStakeholder unspecified buying role",
            g(Kind::AddStakeholder(pb::StakeholderAdded {
                stakeholder_id: "cpo".into(),
                name: "Ana Ruiz".into(),
                title: "CPO".into(),
                reports_to: String::new(),
                buying_role: 0,
                influence: 3,
                attitude: pb::Attitude::Neutral as i32,
            })),
            Code::InvalidArgument,
            "buying_role",
        ),
        case(
            "AddStakeholder twice",
            g(stakeholder(
                "cfo",
                "Lee Park",
                pb::BuyingRole::EconomicBuyer,
            )),
            Code::AlreadyExists,
            "cfo",
        ),
        case(
            "ChangeStakeholderProfile unknown",
            exact(
                g(Kind::ChangeStakeholderProfile(
                    pb::StakeholderProfileChanged {
                        stakeholder_id: "nobody".into(),
                        title: None,
                        reports_to: String::new(),
                        clear_reports_to: false,
                        buying_role: None,
                        influence: None,
                        attitude: Some(pb::Attitude::Champion as i32),
                        note: String::new(),
                    },
                )),
                v,
            ),
            Code::NotFound,
            "nobody",
        ),
        case(
            "RecordStakeholderDeparture twice",
            g(Kind::RecordStakeholderDeparture(pb::StakeholderDeparted {
                stakeholder_id: "cto".into(),
                departed_on: "2026-02-02".into(),
                reason: "x".into(),
            })),
            Code::FailedPrecondition,
            "cto",
        ),
        // --- engagement
        case(
            "SetEngagementRule cadence 0",
            exact(
                g(Kind::SetEngagementRule(pb::EngagementRuleSet {
                    rule_id: "rule-cfo".into(),
                    target: Some(pb::RuleTarget {
                        target: Some(pb::rule_target::Target::StakeholderId("cfo".into())),
                    }),
                    owner: "dana.kim".into(),
                    cadence_days: 0,
                    channels: vec![pb::Channel::InPerson as i32],
                    opportunity_id: String::new(),
                })),
                v,
            ),
            Code::InvalidArgument,
            "cadence",
        ),
        case(
            "RetireEngagementRule unknown",
            g(Kind::RetireEngagementRule(pb::EngagementRuleRetired {
                rule_id: "rule-none".into(),
                reason: "x".into(),
            })),
            Code::NotFound,
            "rule-none",
        ),
        case(
            "LogInteraction unknown stakeholder",
            g(interaction("call-x", "ghost", 0)),
            Code::NotFound,
            "ghost",
        ),
        case(
            "LogInteraction with a departed stakeholder",
            g(interaction("call-y", "cto", 86_400 * 30)),
            Code::FailedPrecondition,
            "cto",
        ),
        case(
            "CorrectInteraction unknown",
            exact(
                g(Kind::CorrectInteraction(pb::InteractionCorrected {
                    interaction_id: "call-none".into(),
                    details: Some(details("cfo", 0, "fixed")),
                    reason: "typo".into(),
                })),
                v,
            ),
            Code::NotFound,
            "call-none",
        ),
        // --- reviews
        case(
            "ScheduleReview unknown customer attendee",
            g(Kind::ScheduleReview(pb::ReviewScheduled {
                review_id: "qbr-q2".into(),
                kind: pb::ReviewKind::QuarterlyBusinessReview as i32,
                plan_id: "plan-2026".into(),
                due_on: "2026-06-30".into(),
                supplier_attendees: vec!["dana.kim".into()],
                customer_attendees: vec!["ghost".into()],
            })),
            Code::NotFound,
            "ghost",
        ),
        case(
            "RecordReviewOutcome unknown review",
            g(Kind::RecordReviewOutcome(pb::ReviewOutcomeRecorded {
                review_id: "qbr-none".into(),
                held_on: "2026-03-01".into(),
                supplier_attendees: vec!["dana.kim".into()],
                customer_attendees: vec![],
                outcome: pb::ReviewOutcome::Approved as i32,
                health: pb::HealthRating::Green as i32,
                decisions: vec![],
                follow_up_actions: vec![],
            })),
            Code::NotFound,
            "qbr-none",
        ),
        case(
            "RecordReviewOutcome of a cancelled review",
            g(Kind::RecordReviewOutcome(pb::ReviewOutcomeRecorded {
                review_id: "qbr-q1".into(),
                held_on: "2026-03-01".into(),
                supplier_attendees: vec!["dana.kim".into()],
                customer_attendees: vec!["cfo".into()],
                outcome: pb::ReviewOutcome::Approved as i32,
                health: pb::HealthRating::Green as i32,
                decisions: vec![],
                follow_up_actions: vec![],
            })),
            Code::FailedPrecondition,
            "qbr-q1",
        ),
        case(
            "CancelReview unknown",
            g(Kind::CancelReview(pb::ReviewCancelled {
                review_id: "qbr-none".into(),
                reason: "x".into(),
            })),
            Code::NotFound,
            "qbr-none",
        ),
    ];

    let before = head(&server).await;
    let mut c = server.commands();
    let mut failures = Vec::new();
    for Case {
        what,
        request,
        code,
        names,
    } in cases
    {
        match c.execute(request).await {
            Ok(r) => failures.push(format!("{what}: accepted ({r:?})")),
            Err(status) => {
                if status.code() != code {
                    failures.push(format!(
                        "{what}: {:?} instead of {code:?}: {}",
                        status.code(),
                        status.message()
                    ));
                } else if !status
                    .message()
                    .to_lowercase()
                    .contains(&names.to_lowercase())
                {
                    failures.push(format!(
                        "{what}: message does not name {names:?}: {}",
                        status.message()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} refusal(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        head(&server).await,
        before,
        "a refused command stored something"
    );
}
