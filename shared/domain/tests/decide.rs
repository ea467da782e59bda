//! Given/when/then tests of the decision rules: given the events of an account, when a command
//! arrives, then these events are decided (or this refusal).

mod common;

use common::*;
use keyplan_domain::commands::{AccountCommand, AssessTier, ChangeTier};
use keyplan_domain::decide::{decide, expected_period_end, weighted_score_milli};
use keyplan_domain::error::DomainError;
use keyplan_domain::events::*;
use keyplan_domain::state::{AccountState, ActionItemStatus, ReviewStatus};
use keyplan_domain::values::*;

use AccountCommand as C;

// ================================================================= given / when / then

/// "Now" in every test unless a test says otherwise: 2025-06-15 noon UTC.
fn now() -> Timestamp {
    at("2025-06-15T12:00:00Z")
}

struct Given {
    state: AccountState,
    now: Timestamp,
}

struct Then {
    command: &'static str,
    state: AccountState,
    result: Result<Vec<AccountEvent>, DomainError>,
}

fn given(events: Vec<AccountEvent>) -> Given {
    Given {
        state: AccountState::from_events(&events),
        now: now(),
    }
}

/// The standard account of these tests (see [`background`]), plus `more` events.
fn given_account(more: Vec<AccountEvent>) -> Given {
    let mut events = background();
    events.extend(more);
    given(events)
}

impl Given {
    fn at(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }

    fn when(self, command: AccountCommand) -> Then {
        let result = decide(&self.state, &command, self.now);
        Then {
            command: command.name(),
            state: self.state,
            result,
        }
    }
}

impl Then {
    /// Asserts the decided events and returns the state after applying them.
    fn then_events(self, expected: Vec<AccountEvent>) -> AccountState {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "{} decided other events", self.command);
                let mut state = self.state;
                for e in &events {
                    state.apply(e);
                }
                state
            }
            Err(e) => panic!("{} was refused: {e:?}", self.command),
        }
    }

    /// Asserts a refusal matching `predicate` and returns it.
    fn then_error(self, predicate: impl FnOnce(&DomainError) -> bool) -> DomainError {
        match self.result {
            Ok(events) => panic!("{} was accepted: {events:?}", self.command),
            Err(e) => {
                assert!(
                    predicate(&e),
                    "{} refused with an unexpected error: {e:?}",
                    self.command
                );
                e
            }
        }
    }

    fn then_invalid(self, field: &str) -> DomainError {
        self.then_error(
            |e| matches!(e, DomainError::InvalidArgument { field: f, .. } if *f == field),
        )
    }

    fn then_not_found(self, needle: &str) -> DomainError {
        self.then_error(|e| matches!(e, DomainError::NotFound(m) if m.contains(needle)))
    }

    fn then_already_exists(self, needle: &str) -> DomainError {
        self.then_error(|e| matches!(e, DomainError::AlreadyExists(m) if m.contains(needle)))
    }

    fn then_precondition(self, needle: &str) -> DomainError {
        self.then_error(|e| matches!(e, DomainError::FailedPrecondition(m) if m.contains(needle)))
    }
}

// ================================================================= the standard account

fn registered() -> AccountRegistered {
    AccountRegistered {
        name: "Acme Foods".into(),
        industry: "Food processing".into(),
        region: "EMEA".into(),
        headquarters: "Rotterdam".into(),
        tier: Tier::Key,
    }
}

fn assigned(id: &str, name: &str, role: TeamRole) -> TeamMemberAssigned {
    TeamMemberAssigned {
        person_id: person(id),
        name: name.into(),
        role,
    }
}

fn stakeholder(id: &str, reports_to: Option<&str>, role: BuyingRole) -> StakeholderAdded {
    StakeholderAdded {
        stakeholder_id: sh(id),
        name: format!("Name of {id}"),
        title: format!("Title of {id}"),
        reports_to: reports_to.map(sh),
        buying_role: role,
        influence: 3,
        attitude: Attitude::Neutral,
    }
}

fn plan_2025() -> PlanDrafted {
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
}

fn objective_o1() -> ObjectiveSet {
    ObjectiveSet {
        objective_id: obj("o1"),
        plan_id: plan("p2025"),
        title: "Grow share of wallet".into(),
        metric: "share of wallet %".into(),
        target: "35%".into(),
        due_on: date("2025-12-31"),
        owner: person("anna"),
        status: ObjectiveStatus::OnTrack,
    }
}

fn opportunity_op1() -> OpportunityIdentified {
    OpportunityIdentified {
        opportunity_id: opp("op1"),
        title: "Cold chain upgrade".into(),
        value: eur(250_000),
        stage: OpportunityStage::Qualified,
        expected_close_on: date("2025-09-30"),
        owner: person("bob"),
    }
}

fn action_a1() -> ActionItemAdded {
    ActionItemAdded {
        action_item_id: act("a1"),
        title: "Send the cold chain proposal".into(),
        owner: person("bob"),
        due_on: date("2025-07-01"),
        link: Some(ActionLink::Opportunity(opp("op1"))),
    }
}

fn rule_r1() -> EngagementRuleSet {
    EngagementRuleSet {
        rule_id: rule("r1"),
        target: RuleTarget::Stakeholder(sh("eb")),
        owner: person("anna"),
        cadence_days: 30,
        channels: vec![Channel::InPerson, Channel::VideoCall],
        opportunity_id: None,
    }
}

fn details() -> InteractionDetails {
    InteractionDetails {
        occurred_at: at("2025-06-01T10:00:00Z"),
        channel: Channel::InPerson,
        stakeholders: vec![sh("eb"), sh("tb")],
        participants: vec![person("anna")],
        summary: "Discussed the cold chain roadmap".into(),
        sentiment: Sentiment::Positive,
        next_step: "Send proposal".into(),
        opportunity_id: Some(opp("op1")),
    }
}

fn interaction_i1() -> InteractionLogged {
    InteractionLogged {
        interaction_id: int("i1"),
        details: details(),
    }
}

fn review_q2() -> ReviewScheduled {
    ReviewScheduled {
        review_id: rev("q2"),
        kind: ReviewKind::QuarterlyBusinessReview,
        plan_id: Some(plan("p2025")),
        due_on: date("2025-06-30"),
        supplier_attendees: vec![person("anna")],
        customer_attendees: vec![sh("eb")],
    }
}

/// A key account with a KAM (anna) and a salesperson (bob); stakeholders eb (economic buyer),
/// tb reporting to eb, and user reporting to tb; plan p2025 with objective o1; opportunity op1
/// with action a1; rule r1 on eb; interaction i1; QBR q2 scheduled.
fn background() -> Vec<AccountEvent> {
    vec![
        registered().into(),
        assigned("anna", "Anna Berg", TeamRole::KeyAccountManager).into(),
        assigned("bob", "Bob Chen", TeamRole::Sales).into(),
        stakeholder("eb", None, BuyingRole::EconomicBuyer).into(),
        stakeholder("tb", Some("eb"), BuyingRole::TechnicalBuyer).into(),
        stakeholder("user", Some("tb"), BuyingRole::User).into(),
        plan_2025().into(),
        objective_o1().into(),
        opportunity_op1().into(),
        action_a1().into(),
        rule_r1().into(),
        interaction_i1().into(),
        review_q2().into(),
    ]
}

fn departed(id: &str, on: &str) -> AccountEvent {
    StakeholderDeparted {
        stakeholder_id: sh(id),
        departed_on: date(on),
        reason: "left".into(),
    }
    .into()
}

// ================================================================= every command needs an account

#[test]
fn every_command_but_register_is_refused_on_an_unregistered_account() {
    let commands = vec![
        C::AssessTier(assess(vec![("revenue", 1, 5)])),
        C::PromoteAccount(ChangeTier {
            to: Tier::Strategic,
            reason: "why".into(),
        }),
        C::AssignTeamMember(assigned("anna", "Anna", TeamRole::Sales)),
        C::DraftPlan(plan_2025()),
        C::AddStakeholder(stakeholder("eb", None, BuyingRole::EconomicBuyer)),
        C::LogInteraction(interaction_i1()),
        C::CancelReview(ReviewCancelled {
            review_id: rev("q2"),
            reason: "x".into(),
        }),
    ];
    for command in commands {
        let e = given(vec![])
            .when(command)
            .then_not_found("account is not registered");
        assert_eq!(
            e,
            DomainError::NotFound("account is not registered; send RegisterAccount first".into())
        );
    }
}

// ================================================================= RegisterAccount

#[test]
fn register_account_trims_text() {
    given(vec![])
        .when(C::RegisterAccount(AccountRegistered {
            name: "  Acme Foods ".into(),
            ..registered()
        }))
        .then_events(vec![registered().into()]);
}

#[test]
fn register_account_twice_is_already_exists() {
    given(vec![registered().into()])
        .when(C::RegisterAccount(registered()))
        .then_already_exists("already registered");
}

#[test]
fn register_account_requires_a_name_of_sane_length() {
    given(vec![])
        .when(C::RegisterAccount(AccountRegistered {
            name: "  ".into(),
            ..registered()
        }))
        .then_invalid("name");
    given(vec![])
        .when(C::RegisterAccount(AccountRegistered {
            name: "x".repeat(201),
            ..registered()
        }))
        .then_invalid("name");
    given(vec![])
        .when(C::RegisterAccount(AccountRegistered {
            region: "r".repeat(201),
            ..registered()
        }))
        .then_invalid("region");
}

// ================================================================= AssessTier

fn assess(criteria: Vec<(&str, u32, u8)>) -> AssessTier {
    AssessTier {
        criteria: criteria
            .into_iter()
            .map(|(name, weight, score)| TierCriterion {
                name: name.into(),
                weight,
                score,
            })
            .collect(),
        recommended_tier: Tier::Strategic,
        assessed_by: person("cfo-office"),
    }
}

#[test]
fn weighted_score_is_rounded_half_up_in_thousandths() {
    // (3·8 + 2·6 + 1·4) / 6 = 40 / 6 = 6.666… -> 6667
    let c = assess(vec![("revenue", 3, 8), ("growth", 2, 6), ("fit", 1, 4)]);
    assert_eq!(weighted_score_milli(&c.criteria), Some(6667));
    // (1·7 + 3·7 + 2·8 + 2·7) / 8 = 58 / 8 = 7.25 -> 7250 (the events' doc example)
    let c = assess(vec![("a", 1, 7), ("b", 3, 7), ("c", 2, 8), ("d", 2, 7)]);
    assert_eq!(weighted_score_milli(&c.criteria), Some(7250));
    // 1000·(1·5 + 7·6) / 8 = 5875, exact
    let c = assess(vec![("a", 1, 5), ("b", 7, 6)]);
    assert_eq!(weighted_score_milli(&c.criteria), Some(5875));
    // 1000·(2·1 + 1·2) / 3 = 1333.33… -> 1333 (down); 1000·(1·1 + 2·2) / 3 = 1666.66… -> 1667 (up)
    assert_eq!(
        weighted_score_milli(&assess(vec![("a", 2, 1), ("b", 1, 2)]).criteria),
        Some(1333)
    );
    assert_eq!(
        weighted_score_milli(&assess(vec![("a", 1, 1), ("b", 2, 2)]).criteria),
        Some(1667)
    );
    // an exact half rounds up: 1000·(1999·1 + 1·2) / 2000 = 1000.5 -> 1001
    assert_eq!(
        weighted_score_milli(&assess(vec![("a", 1999, 1), ("b", 1, 2)]).criteria),
        Some(1001)
    );
    // extreme weights do not overflow
    assert_eq!(
        weighted_score_milli(&assess(vec![("a", u32::MAX, 10), ("b", u32::MAX, 10)]).criteria),
        Some(10_000)
    );
    assert_eq!(weighted_score_milli(&[]), None);
}

#[test]
fn assess_tier_emits_the_weighted_score() {
    given_account(vec![])
        .when(C::AssessTier(assess(vec![
            (" revenue ", 3, 8),
            ("growth", 2, 6),
            ("fit", 1, 4),
        ])))
        .then_events(vec![TierAssessed {
            criteria: vec![
                TierCriterion {
                    name: "revenue".into(),
                    weight: 3,
                    score: 8,
                },
                TierCriterion {
                    name: "growth".into(),
                    weight: 2,
                    score: 6,
                },
                TierCriterion {
                    name: "fit".into(),
                    weight: 1,
                    score: 4,
                },
            ],
            weighted_score_milli: 6667,
            recommended_tier: Tier::Strategic,
            assessed_by: person("cfo-office"),
        }
        .into()]);
}

#[test]
fn assess_tier_refuses_malformed_criteria() {
    given_account(vec![])
        .when(C::AssessTier(assess(vec![])))
        .then_invalid("criteria");
    given_account(vec![])
        .when(C::AssessTier(assess(vec![("revenue", 0, 5)])))
        .then_invalid("criteria.weight");
    given_account(vec![])
        .when(C::AssessTier(assess(vec![("revenue", 1, 0)])))
        .then_invalid("criteria.score");
    given_account(vec![])
        .when(C::AssessTier(assess(vec![("revenue", 1, 11)])))
        .then_invalid("criteria.score");
    given_account(vec![])
        .when(C::AssessTier(assess(vec![
            ("revenue", 1, 5),
            ("Revenue ", 2, 6),
        ])))
        .then_invalid("criteria.name");
    given_account(vec![])
        .when(C::AssessTier(assess(vec![(" ", 1, 5)])))
        .then_invalid("criteria.name");
    let many: Vec<(&str, u32, u8)> = vec![("x", 1, 1); 51];
    given_account(vec![])
        .when(C::AssessTier(assess(many)))
        .then_invalid("criteria");
}

// ================================================================= PromoteAccount / DemoteAccount

fn change_tier(to: Tier) -> ChangeTier {
    ChangeTier {
        to,
        reason: "Revenue doubled".into(),
    }
}

#[test]
fn promote_records_the_tier_moved_from() {
    let state = given_account(vec![])
        .when(C::PromoteAccount(change_tier(Tier::Strategic)))
        .then_events(vec![AccountPromoted {
            from: Tier::Key,
            to: Tier::Strategic,
            reason: "Revenue doubled".into(),
        }
        .into()]);
    assert_eq!(state.profile.map(|p| p.tier), Some(Tier::Strategic));
}

#[test]
fn promote_to_a_tier_not_higher_is_refused() {
    given_account(vec![])
        .when(C::PromoteAccount(change_tier(Tier::Key)))
        .then_precondition("not a higher tier");
    given_account(vec![])
        .when(C::PromoteAccount(change_tier(Tier::Standard)))
        .then_precondition("use DemoteAccount");
}

#[test]
fn promote_and_demote_require_a_reason() {
    given_account(vec![])
        .when(C::PromoteAccount(ChangeTier {
            to: Tier::Strategic,
            reason: " ".into(),
        }))
        .then_invalid("reason");
    given_account(vec![])
        .when(C::DemoteAccount(ChangeTier {
            to: Tier::Standard,
            reason: String::new(),
        }))
        .then_invalid("reason");
}

#[test]
fn demote_records_the_tier_moved_from() {
    given_account(vec![])
        .when(C::DemoteAccount(change_tier(Tier::Standard)))
        .then_events(vec![AccountDemoted {
            from: Tier::Key,
            to: Tier::Standard,
            reason: "Revenue doubled".into(),
        }
        .into()]);
}

#[test]
fn demote_to_a_tier_not_lower_is_refused() {
    given_account(vec![])
        .when(C::DemoteAccount(change_tier(Tier::Key)))
        .then_precondition("not a lower tier");
    given_account(vec![])
        .when(C::DemoteAccount(change_tier(Tier::Strategic)))
        .then_precondition("use PromoteAccount");
}

// ================================================================= team

#[test]
fn assign_team_member() {
    given_account(vec![])
        .when(C::AssignTeamMember(assigned(
            "carl",
            " Carl Diaz ",
            TeamRole::SupplyChain,
        )))
        .then_events(vec![
            assigned("carl", "Carl Diaz", TeamRole::SupplyChain).into()
        ]);
}

#[test]
fn an_account_has_at_most_one_key_account_manager() {
    let e = given_account(vec![])
        .when(C::AssignTeamMember(assigned(
            "carl",
            "Carl",
            TeamRole::KeyAccountManager,
        )))
        .then_precondition("unassign Anna Berg first");
    assert!(e.to_string().contains("anna"), "{e}");
    // after the handover, the new KAM can be assigned
    given_account(vec![TeamMemberUnassigned {
        person_id: person("anna"),
        reason: String::new(),
    }
    .into()])
    .when(C::AssignTeamMember(assigned(
        "carl",
        "Carl",
        TeamRole::KeyAccountManager,
    )))
    .then_events(vec![
        assigned("carl", "Carl", TeamRole::KeyAccountManager).into()
    ]);
}

#[test]
fn assigning_someone_already_in_the_team_is_refused() {
    given_account(vec![])
        .when(C::AssignTeamMember(assigned(
            "bob",
            "Bob Chen",
            TeamRole::Operations,
        )))
        .then_precondition("already in the key account team as sales");
}

#[test]
fn assign_team_member_requires_a_name() {
    given_account(vec![])
        .when(C::AssignTeamMember(assigned("carl", "", TeamRole::Sales)))
        .then_invalid("name");
}

#[test]
fn unassign_team_member() {
    let state = given_account(vec![])
        .when(C::UnassignTeamMember(TeamMemberUnassigned {
            person_id: person("bob"),
            reason: " moved to another region ".into(),
        }))
        .then_events(vec![TeamMemberUnassigned {
            person_id: person("bob"),
            reason: "moved to another region".into(),
        }
        .into()]);
    assert!(!state.team.contains_key(&person("bob")));
}

#[test]
fn unassigning_someone_not_in_the_team_is_not_found() {
    given_account(vec![])
        .when(C::UnassignTeamMember(TeamMemberUnassigned {
            person_id: person("zoe"),
            reason: String::new(),
        }))
        .then_not_found("person zoe is not in the key account team");
}

// ================================================================= DraftPlan and plan periods

fn draft(id: &str, kind: PlanPeriodKind, start: &str, end: Option<&str>) -> AccountCommand {
    C::DraftPlan(PlanDrafted {
        plan_id: plan(id),
        period: PlanPeriod {
            kind,
            start: date(start),
            end: end.map(date),
        },
        ..plan_2025()
    })
}

#[test]
fn draft_plan_for_each_kind_of_period() {
    for (kind, start, end) in [
        (
            PlanPeriodKind::CalendarYear,
            "2026-01-01",
            Some("2026-12-31"),
        ),
        (PlanPeriodKind::HalfYear, "2025-07-01", Some("2025-12-31")),
        (PlanPeriodKind::HalfYear, "2025-03-15", Some("2025-09-14")),
        (
            PlanPeriodKind::Rolling12Months,
            "2025-04-01",
            Some("2026-03-31"),
        ),
        (
            PlanPeriodKind::Rolling12Months,
            "2024-03-01",
            Some("2025-02-28"),
        ),
        (PlanPeriodKind::Perpetual, "2025-01-01", None),
    ] {
        let command = draft("new", kind, start, end);
        let AccountCommand::DraftPlan(expected) = command.clone() else {
            unreachable!("draft builds a DraftPlan");
        };
        given_account(vec![])
            .when(command)
            .then_events(vec![expected.into()]);
    }
}

#[test]
fn expected_period_ends_follow_calendar_months() {
    let end = |kind, start| expected_period_end(kind, date(start)).expect("valid start");
    assert_eq!(
        end(PlanPeriodKind::CalendarYear, "2024-01-01"),
        Some(date("2024-12-31"))
    );
    assert_eq!(
        end(PlanPeriodKind::HalfYear, "2025-01-01"),
        Some(date("2025-06-30"))
    );
    // the target month is shorter: clamped to its last day, then the day before
    assert_eq!(
        end(PlanPeriodKind::HalfYear, "2025-08-31"),
        Some(date("2026-02-27"))
    );
    assert_eq!(
        end(PlanPeriodKind::Rolling12Months, "2024-02-29"),
        Some(date("2025-02-27"))
    );
    assert_eq!(
        end(PlanPeriodKind::Rolling12Months, "2025-01-01"),
        Some(date("2025-12-31"))
    );
    assert_eq!(end(PlanPeriodKind::Perpetual, "2025-05-05"), None);
    assert!(expected_period_end(PlanPeriodKind::CalendarYear, date("2025-02-01")).is_err());
}

#[test]
fn plan_periods_must_match_their_kind() {
    let refused = |kind, start, end, field| {
        given_account(vec![])
            .when(draft("new", kind, start, end))
            .then_invalid(field);
    };
    refused(
        PlanPeriodKind::CalendarYear,
        "2026-02-01",
        Some("2027-01-31"),
        "period.start",
    );
    refused(
        PlanPeriodKind::CalendarYear,
        "2026-01-01",
        Some("2026-12-30"),
        "period.end",
    );
    refused(
        PlanPeriodKind::CalendarYear,
        "2026-01-01",
        None,
        "period.end",
    );
    refused(
        PlanPeriodKind::HalfYear,
        "2025-07-01",
        Some("2026-06-30"),
        "period.end",
    );
    refused(
        PlanPeriodKind::HalfYear,
        "2025-07-01",
        Some("2026-01-01"),
        "period.end",
    );
    refused(
        PlanPeriodKind::Rolling12Months,
        "2025-04-01",
        Some("2026-04-01"),
        "period.end",
    );
    refused(
        PlanPeriodKind::Rolling12Months,
        "2025-04-01",
        None,
        "period.end",
    );
    refused(
        PlanPeriodKind::Perpetual,
        "2025-01-01",
        Some("2099-12-31"),
        "period.end",
    );
    refused(
        PlanPeriodKind::HalfYear,
        "2025-07-01",
        Some("2025-06-30"),
        "period.end",
    );
    // dates must be sane: not before 1990, not more than 50 years ahead
    refused(
        PlanPeriodKind::CalendarYear,
        "1989-01-01",
        Some("1989-12-31"),
        "period.start",
    );
    refused(
        PlanPeriodKind::Perpetual,
        "2076-01-01",
        None,
        "period.start",
    );
    let e = given_account(vec![])
        .when(draft(
            "new",
            PlanPeriodKind::HalfYear,
            "2025-07-01",
            Some("2025-12-30"),
        ))
        .then_invalid("period.end");
    assert!(e.to_string().contains("must end on 2025-12-31"), "{e}");
}

#[test]
fn draft_plan_refuses_a_used_id_and_a_twin_period() {
    given_account(vec![])
        .when(draft(
            "p2025",
            PlanPeriodKind::CalendarYear,
            "2026-01-01",
            Some("2026-12-31"),
        ))
        .then_already_exists("plan p2025 already exists");
    given_account(vec![])
        .when(draft(
            "other",
            PlanPeriodKind::CalendarYear,
            "2025-01-01",
            Some("2025-12-31"),
        ))
        .then_already_exists("revise plan p2025 instead");
}

#[test]
fn draft_plan_cannot_be_prepared_in_the_future() {
    given_account(vec![])
        .when(C::DraftPlan(PlanDrafted {
            plan_id: plan("p2026"),
            period: PlanPeriod {
                kind: PlanPeriodKind::CalendarYear,
                start: date("2026-01-01"),
                end: Some(date("2026-12-31")),
            },
            prepared_on: date("2025-06-17"),
            ..plan_2025()
        }))
        .then_invalid("prepared_on");
}

// ================================================================= RevisePlanSection

fn section(text: &str) -> PlanSectionRevised {
    PlanSectionRevised {
        plan_id: plan("p2025"),
        section: PlanSection::Risks,
        text: text.into(),
    }
}

#[test]
fn revise_plan_section() {
    let state = given_account(vec![])
        .when(C::RevisePlanSection(section(
            "Competitor X is courting the CFO.\n",
        )))
        .then_events(vec![section("Competitor X is courting the CFO.").into()]);
    assert_eq!(
        state.plans[&plan("p2025")]
            .sections
            .get(&PlanSection::Risks)
            .map(String::as_str),
        Some("Competitor X is courting the CFO.")
    );
}

#[test]
fn revise_plan_section_of_an_unknown_plan_is_not_found() {
    given_account(vec![])
        .when(C::RevisePlanSection(PlanSectionRevised {
            plan_id: plan("p1999"),
            ..section("x")
        }))
        .then_not_found("plan p1999 does not exist");
}

#[test]
fn revise_plan_section_without_change_is_refused() {
    given_account(vec![section("Same").into()])
        .when(C::RevisePlanSection(section("Same ")))
        .then_invalid("text");
    // clearing a section that was never written changes nothing either
    given_account(vec![])
        .when(C::RevisePlanSection(section("")))
        .then_invalid("text");
    given_account(vec![])
        .when(C::RevisePlanSection(section(&"x".repeat(20_001))))
        .then_invalid("text");
}

// ================================================================= SetObjective / ProgressObjective

#[test]
fn set_a_new_objective() {
    let o2 = ObjectiveSet {
        objective_id: obj("o2"),
        owner: person("bob"),
        ..objective_o1()
    };
    given_account(vec![])
        .when(C::SetObjective(o2.clone()))
        .then_events(vec![o2.into()]);
}

#[test]
fn an_active_objective_may_be_redefined() {
    let redefined = ObjectiveSet {
        target: "40%".into(),
        ..objective_o1()
    };
    given_account(vec![])
        .when(C::SetObjective(redefined.clone()))
        .then_events(vec![redefined.into()]);
}

#[test]
fn redefining_an_objective_exactly_as_it_is_is_refused() {
    given_account(vec![])
        .when(C::SetObjective(objective_o1()))
        .then_invalid("objective_id");
}

#[test]
fn a_final_objective_cannot_be_redefined() {
    let achieved = ObjectiveProgressed {
        objective_id: obj("o1"),
        status: ObjectiveStatus::Achieved,
        current_value: "36%".into(),
        note: String::new(),
    };
    given_account(vec![achieved.into()])
        .when(C::SetObjective(ObjectiveSet {
            target: "40%".into(),
            ..objective_o1()
        }))
        .then_precondition("set a new objective id");
}

#[test]
fn set_objective_refusals() {
    given_account(vec![])
        .when(C::SetObjective(ObjectiveSet {
            plan_id: plan("p1999"),
            ..objective_o1()
        }))
        .then_not_found("plan p1999");
    given_account(vec![])
        .when(C::SetObjective(ObjectiveSet {
            owner: person("zoe"),
            ..objective_o1()
        }))
        .then_not_found("person zoe (owner) is not in the key account team; assign them first");
    given_account(vec![])
        .when(C::SetObjective(ObjectiveSet {
            due_on: date("2026-01-31"),
            ..objective_o1()
        }))
        .then_precondition("outside the period of plan p2025");
    given_account(vec![])
        .when(C::SetObjective(ObjectiveSet {
            metric: " ".into(),
            ..objective_o1()
        }))
        .then_invalid("metric");
    given_account(vec![])
        .when(C::SetObjective(ObjectiveSet {
            title: "t".repeat(201),
            ..objective_o1()
        }))
        .then_invalid("title");
}

fn progress(status: ObjectiveStatus) -> ObjectiveProgressed {
    ObjectiveProgressed {
        objective_id: obj("o1"),
        status,
        current_value: "31%".into(),
        note: "Won the dairy line".into(),
    }
}

#[test]
fn progress_objective() {
    let state = given_account(vec![])
        .when(C::ProgressObjective(progress(ObjectiveStatus::AtRisk)))
        .then_events(vec![progress(ObjectiveStatus::AtRisk).into()]);
    assert_eq!(state.objectives[&obj("o1")].status, ObjectiveStatus::AtRisk);
}

#[test]
fn progress_objective_refusals() {
    given_account(vec![])
        .when(C::ProgressObjective(ObjectiveProgressed {
            objective_id: obj("o9"),
            ..progress(ObjectiveStatus::OnTrack)
        }))
        .then_not_found("objective o9");
    for final_status in [ObjectiveStatus::Achieved, ObjectiveStatus::Abandoned] {
        given_account(vec![progress(final_status).into()])
            .when(C::ProgressObjective(progress(ObjectiveStatus::OnTrack)))
            .then_precondition("no further progress");
    }
}

// ================================================================= opportunities

#[test]
fn identify_opportunity() {
    let op2 = OpportunityIdentified {
        opportunity_id: opp("op2"),
        ..opportunity_op1()
    };
    given_account(vec![])
        .when(C::IdentifyOpportunity(op2.clone()))
        .then_events(vec![op2.into()]);
}

#[test]
fn identify_opportunity_refusals() {
    given_account(vec![])
        .when(C::IdentifyOpportunity(opportunity_op1()))
        .then_already_exists("opportunity op1");
    let op2 = OpportunityIdentified {
        opportunity_id: opp("op2"),
        ..opportunity_op1()
    };
    given_account(vec![])
        .when(C::IdentifyOpportunity(OpportunityIdentified {
            owner: person("zoe"),
            ..op2.clone()
        }))
        .then_not_found("person zoe");
    given_account(vec![])
        .when(C::IdentifyOpportunity(OpportunityIdentified {
            value: Money {
                currency: "eur".into(),
                minor_units: 1,
            },
            ..op2.clone()
        }))
        .then_invalid("value");
    given_account(vec![])
        .when(C::IdentifyOpportunity(OpportunityIdentified {
            value: Money {
                currency: "EUR".into(),
                minor_units: -1,
            },
            ..op2.clone()
        }))
        .then_invalid("value");
    given_account(vec![])
        .when(C::IdentifyOpportunity(OpportunityIdentified {
            expected_close_on: date("2080-01-01"),
            ..op2
        }))
        .then_invalid("expected_close_on");
}

fn stage(stage: OpportunityStage, close: Option<&str>) -> OpportunityStageChanged {
    OpportunityStageChanged {
        opportunity_id: opp("op1"),
        stage,
        expected_close_on: close.map(date),
    }
}

fn won() -> OpportunityWon {
    OpportunityWon {
        opportunity_id: opp("op1"),
        value: eur(240_000),
        closed_on: date("2025-06-14"),
        reason: "Best total cost of ownership".into(),
    }
}

fn lost() -> OpportunityLost {
    OpportunityLost {
        opportunity_id: opp("op1"),
        closed_on: date("2025-06-14"),
        reason: "Price".into(),
    }
}

#[test]
fn change_opportunity_stage() {
    given_account(vec![])
        .when(C::ChangeOpportunityStage(stage(
            OpportunityStage::Proposal,
            None,
        )))
        .then_events(vec![stage(OpportunityStage::Proposal, None).into()]);
    // same stage, moved close date: a real change
    given_account(vec![])
        .when(C::ChangeOpportunityStage(stage(
            OpportunityStage::Qualified,
            Some("2025-10-31"),
        )))
        .then_events(vec![
            stage(OpportunityStage::Qualified, Some("2025-10-31")).into()
        ]);
}

#[test]
fn change_opportunity_stage_refusals() {
    given_account(vec![])
        .when(C::ChangeOpportunityStage(stage(
            OpportunityStage::Qualified,
            Some("2025-09-30"),
        )))
        .then_invalid("stage");
    given_account(vec![])
        .when(C::ChangeOpportunityStage(OpportunityStageChanged {
            opportunity_id: opp("op9"),
            ..stage(OpportunityStage::Proposal, None)
        }))
        .then_not_found("opportunity op9");
    given_account(vec![won().into()])
        .when(C::ChangeOpportunityStage(stage(
            OpportunityStage::Negotiation,
            None,
        )))
        .then_precondition("already won on 2025-06-14");
    given_account(vec![lost().into()])
        .when(C::ChangeOpportunityStage(stage(
            OpportunityStage::Negotiation,
            None,
        )))
        .then_precondition("already lost");
}

#[test]
fn win_opportunity() {
    given_account(vec![])
        .when(C::WinOpportunity(won()))
        .then_events(vec![won().into()]);
}

#[test]
fn win_opportunity_refusals() {
    given_account(vec![lost().into()])
        .when(C::WinOpportunity(won()))
        .then_precondition("opportunity op1 was already lost");
    given_account(vec![won().into()])
        .when(C::WinOpportunity(won()))
        .then_precondition("already won");
    given_account(vec![])
        .when(C::WinOpportunity(OpportunityWon {
            opportunity_id: opp("op9"),
            ..won()
        }))
        .then_not_found("opportunity op9");
    given_account(vec![])
        .when(C::WinOpportunity(OpportunityWon {
            reason: String::new(),
            ..won()
        }))
        .then_invalid("reason");
    given_account(vec![])
        .when(C::WinOpportunity(OpportunityWon {
            closed_on: date("2025-06-20"),
            ..won()
        }))
        .then_invalid("closed_on");
    given_account(vec![])
        .when(C::WinOpportunity(OpportunityWon {
            value: Money {
                currency: "EURO".into(),
                minor_units: 5,
            },
            ..won()
        }))
        .then_invalid("value");
}

#[test]
fn lose_opportunity() {
    given_account(vec![])
        .when(C::LoseOpportunity(lost()))
        .then_events(vec![lost().into()]);
}

#[test]
fn lose_opportunity_refusals() {
    given_account(vec![won().into()])
        .when(C::LoseOpportunity(lost()))
        .then_precondition("already won");
    given_account(vec![])
        .when(C::LoseOpportunity(OpportunityLost {
            reason: " ".into(),
            ..lost()
        }))
        .then_invalid("reason");
    given_account(vec![])
        .when(C::LoseOpportunity(OpportunityLost {
            opportunity_id: opp("op9"),
            ..lost()
        }))
        .then_not_found("op9");
}

// ================================================================= action items

#[test]
fn add_action_item_with_each_kind_of_link() {
    for link in [
        None,
        Some(ActionLink::Objective(obj("o1"))),
        Some(ActionLink::Opportunity(opp("op1"))),
        Some(ActionLink::Review(rev("q2"))),
    ] {
        let a2 = ActionItemAdded {
            action_item_id: act("a2"),
            link,
            ..action_a1()
        };
        given_account(vec![])
            .when(C::AddActionItem(a2.clone()))
            .then_events(vec![a2.into()]);
    }
}

#[test]
fn add_action_item_refusals() {
    given_account(vec![])
        .when(C::AddActionItem(action_a1()))
        .then_already_exists("action item a1");
    let a2 = ActionItemAdded {
        action_item_id: act("a2"),
        ..action_a1()
    };
    given_account(vec![])
        .when(C::AddActionItem(ActionItemAdded {
            owner: person("zoe"),
            ..a2.clone()
        }))
        .then_not_found("person zoe");
    given_account(vec![])
        .when(C::AddActionItem(ActionItemAdded {
            link: Some(ActionLink::Objective(obj("o9"))),
            ..a2.clone()
        }))
        .then_not_found("objective o9");
    given_account(vec![])
        .when(C::AddActionItem(ActionItemAdded {
            link: Some(ActionLink::Opportunity(opp("op9"))),
            ..a2.clone()
        }))
        .then_not_found("opportunity op9");
    given_account(vec![])
        .when(C::AddActionItem(ActionItemAdded {
            link: Some(ActionLink::Review(rev("q9"))),
            ..a2.clone()
        }))
        .then_not_found("review q9");
    given_account(vec![])
        .when(C::AddActionItem(ActionItemAdded {
            title: "".into(),
            ..a2.clone()
        }))
        .then_invalid("title");
    given_account(vec![])
        .when(C::AddActionItem(ActionItemAdded {
            due_on: date("1980-01-01"),
            ..a2
        }))
        .then_invalid("due_on");
}

fn completed() -> ActionItemCompleted {
    ActionItemCompleted {
        action_item_id: act("a1"),
        completed_on: date("2025-06-15"),
        note: "Sent".into(),
    }
}

fn cancelled() -> ActionItemCancelled {
    ActionItemCancelled {
        action_item_id: act("a1"),
        reason: "No longer needed".into(),
    }
}

#[test]
fn complete_action_item() {
    let state = given_account(vec![])
        .when(C::CompleteActionItem(completed()))
        .then_events(vec![completed().into()]);
    assert_eq!(
        state.action_items[&act("a1")].status,
        ActionItemStatus::Completed(date("2025-06-15"))
    );
}

#[test]
fn complete_action_item_refusals() {
    given_account(vec![completed().into()])
        .when(C::CompleteActionItem(completed()))
        .then_precondition("already completed on 2025-06-15");
    given_account(vec![cancelled().into()])
        .when(C::CompleteActionItem(completed()))
        .then_precondition("already cancelled");
    given_account(vec![])
        .when(C::CompleteActionItem(ActionItemCompleted {
            action_item_id: act("a9"),
            ..completed()
        }))
        .then_not_found("action item a9");
    // a day of slack for users east of UTC, no more
    given_account(vec![])
        .when(C::CompleteActionItem(ActionItemCompleted {
            completed_on: date("2025-06-16"),
            ..completed()
        }))
        .then_events(vec![ActionItemCompleted {
            completed_on: date("2025-06-16"),
            ..completed()
        }
        .into()]);
    given_account(vec![])
        .when(C::CompleteActionItem(ActionItemCompleted {
            completed_on: date("2025-06-17"),
            ..completed()
        }))
        .then_invalid("completed_on");
}

#[test]
fn cancel_action_item() {
    given_account(vec![])
        .when(C::CancelActionItem(cancelled()))
        .then_events(vec![cancelled().into()]);
}

#[test]
fn cancel_action_item_refusals() {
    given_account(vec![completed().into()])
        .when(C::CancelActionItem(cancelled()))
        .then_precondition("already completed");
    given_account(vec![cancelled().into()])
        .when(C::CancelActionItem(cancelled()))
        .then_precondition("already cancelled");
    given_account(vec![])
        .when(C::CancelActionItem(ActionItemCancelled {
            reason: "".into(),
            ..cancelled()
        }))
        .then_invalid("reason");
    given_account(vec![])
        .when(C::CancelActionItem(ActionItemCancelled {
            action_item_id: act("a9"),
            ..cancelled()
        }))
        .then_not_found("a9");
}

// ================================================================= RecordRevenue

fn revenue() -> RevenueRecorded {
    RevenueRecorded {
        period_start: date("2025-04-01"),
        period_end: date("2025-06-30"),
        product: "Dairy line".into(),
        actual: eur(1_200_000),
        goal: eur(1_000_000),
        margin_basis_points: Some(2350),
    }
}

#[test]
fn record_revenue() {
    given_account(vec![])
        .when(C::RecordRevenue(revenue()))
        .then_events(vec![revenue().into()]);
    // recording the same period again is how a figure is corrected
    given_account(vec![revenue().into()])
        .when(C::RecordRevenue(revenue()))
        .then_events(vec![revenue().into()]);
}

#[test]
fn record_revenue_refusals() {
    given_account(vec![])
        .when(C::RecordRevenue(RevenueRecorded {
            goal: Money {
                currency: "USD".into(),
                minor_units: 100,
            },
            ..revenue()
        }))
        .then_invalid("goal");
    given_account(vec![])
        .when(C::RecordRevenue(RevenueRecorded {
            actual: Money {
                currency: "EUR".into(),
                minor_units: -100,
            },
            ..revenue()
        }))
        .then_invalid("actual");
    given_account(vec![])
        .when(C::RecordRevenue(RevenueRecorded {
            period_end: date("2025-03-31"),
            ..revenue()
        }))
        .then_invalid("period_end");
    given_account(vec![])
        .when(C::RecordRevenue(RevenueRecorded {
            period_start: date("2025-07-01"),
            period_end: date("2025-09-30"),
            ..revenue()
        }))
        .then_invalid("period_start");
    given_account(vec![])
        .when(C::RecordRevenue(RevenueRecorded {
            margin_basis_points: Some(10_001),
            ..revenue()
        }))
        .then_invalid("margin_basis_points");
}

// ================================================================= stakeholders

#[test]
fn add_stakeholder() {
    let cio = StakeholderAdded {
        influence: 5,
        attitude: Attitude::Champion,
        ..stakeholder("cio", Some("eb"), BuyingRole::Influencer)
    };
    given_account(vec![])
        .when(C::AddStakeholder(cio.clone()))
        .then_events(vec![cio.into()]);
}

#[test]
fn add_stakeholder_refusals() {
    given_account(vec![])
        .when(C::AddStakeholder(stakeholder("eb", None, BuyingRole::User)))
        .then_already_exists("stakeholder eb");
    given_account(vec![])
        .when(C::AddStakeholder(stakeholder(
            "cio",
            Some("ceo"),
            BuyingRole::User,
        )))
        .then_not_found("stakeholder ceo");
    given_account(vec![])
        .when(C::AddStakeholder(stakeholder(
            "cio",
            Some("cio"),
            BuyingRole::User,
        )))
        .then_precondition("cannot report to themselves");
    given_account(vec![departed("eb", "2025-05-01")])
        .when(C::AddStakeholder(stakeholder(
            "cio",
            Some("eb"),
            BuyingRole::User,
        )))
        .then_precondition("choose their successor");
    for influence in [0, 6] {
        given_account(vec![])
            .when(C::AddStakeholder(StakeholderAdded {
                influence,
                ..stakeholder("cio", None, BuyingRole::User)
            }))
            .then_invalid("influence");
    }
    given_account(vec![])
        .when(C::AddStakeholder(StakeholderAdded {
            name: "\t".into(),
            ..stakeholder("cio", None, BuyingRole::User)
        }))
        .then_invalid("name");
}

fn profile_change(id: &str) -> StakeholderProfileChanged {
    StakeholderProfileChanged {
        stakeholder_id: sh(id),
        title: None,
        reports_to: None,
        clear_reports_to: false,
        buying_role: None,
        influence: None,
        attitude: None,
        note: "Observed at the QBR".into(),
    }
}

#[test]
fn change_stakeholder_profile() {
    let change = StakeholderProfileChanged {
        attitude: Some(Attitude::Champion),
        influence: Some(5),
        ..profile_change("tb")
    };
    let state = given_account(vec![])
        .when(C::ChangeStakeholderProfile(change.clone()))
        .then_events(vec![change.into()]);
    assert_eq!(state.stakeholders[&sh("tb")].attitude, Attitude::Champion);
}

#[test]
fn a_profile_change_that_changes_nothing_is_refused() {
    given_account(vec![])
        .when(C::ChangeStakeholderProfile(profile_change("tb")))
        .then_invalid("stakeholder_id");
    // restating current values
    given_account(vec![])
        .when(C::ChangeStakeholderProfile(StakeholderProfileChanged {
            attitude: Some(Attitude::Neutral),
            reports_to: Some(sh("eb")),
            ..profile_change("tb")
        }))
        .then_invalid("stakeholder_id");
    // clearing a manager that is not set
    given_account(vec![])
        .when(C::ChangeStakeholderProfile(StakeholderProfileChanged {
            clear_reports_to: true,
            ..profile_change("eb")
        }))
        .then_invalid("stakeholder_id");
}

#[test]
fn change_stakeholder_profile_refusals() {
    given_account(vec![])
        .when(C::ChangeStakeholderProfile(StakeholderProfileChanged {
            attitude: Some(Attitude::Blocker),
            ..profile_change("ghost")
        }))
        .then_not_found("stakeholder ghost");
    given_account(vec![])
        .when(C::ChangeStakeholderProfile(StakeholderProfileChanged {
            reports_to: Some(sh("eb")),
            clear_reports_to: true,
            ..profile_change("user")
        }))
        .then_invalid("reports_to");
    given_account(vec![])
        .when(C::ChangeStakeholderProfile(StakeholderProfileChanged {
            influence: Some(9),
            ..profile_change("tb")
        }))
        .then_invalid("influence");
    given_account(vec![])
        .when(C::ChangeStakeholderProfile(StakeholderProfileChanged {
            title: Some(" ".into()),
            ..profile_change("tb")
        }))
        .then_invalid("title");
    given_account(vec![departed("tb", "2025-06-02")])
        .when(C::ChangeStakeholderProfile(StakeholderProfileChanged {
            attitude: Some(Attitude::Blocker),
            ..profile_change("tb")
        }))
        .then_precondition("departed on 2025-06-02");
}

#[test]
fn reports_to_must_not_create_a_cycle() {
    // user -> tb -> eb; eb reporting to user closes the loop
    let e = given_account(vec![])
        .when(C::ChangeStakeholderProfile(StakeholderProfileChanged {
            reports_to: Some(sh("user")),
            ..profile_change("eb")
        }))
        .then_precondition("reporting cycle");
    assert!(e.to_string().contains("eb -> user -> tb -> eb"), "{e}");
    given_account(vec![])
        .when(C::ChangeStakeholderProfile(StakeholderProfileChanged {
            reports_to: Some(sh("tb")),
            ..profile_change("tb")
        }))
        .then_precondition("cannot report to themselves");
    // moving within the tree without a cycle is fine: user now reports to eb directly
    let change = StakeholderProfileChanged {
        reports_to: Some(sh("eb")),
        ..profile_change("user")
    };
    given_account(vec![])
        .when(C::ChangeStakeholderProfile(change.clone()))
        .then_events(vec![change.into()]);
}

#[test]
fn departure_retires_the_stakeholders_own_rules() {
    let role_rule = EngagementRuleSet {
        rule_id: rule("r-role"),
        target: RuleTarget::BuyingRole(BuyingRole::EconomicBuyer),
        ..rule_r1()
    };
    let retired_earlier = EngagementRuleSet {
        rule_id: rule("r0"),
        ..rule_r1()
    };
    let state = given_account(vec![
        role_rule.into(),
        retired_earlier.into(),
        EngagementRuleRetired {
            rule_id: rule("r0"),
            reason: "old".into(),
        }
        .into(),
    ])
    .when(C::RecordStakeholderDeparture(StakeholderDeparted {
        stakeholder_id: sh("eb"),
        departed_on: date("2025-06-10"),
        reason: "Retired".into(),
    }))
    .then_events(vec![
        StakeholderDeparted {
            stakeholder_id: sh("eb"),
            departed_on: date("2025-06-10"),
            reason: "Retired".into(),
        }
        .into(),
        EngagementRuleRetired {
            rule_id: rule("r1"),
            reason: "stakeholder eb departed on 2025-06-10".into(),
        }
        .into(),
    ]);
    assert_eq!(
        state.stakeholders[&sh("eb")].departed_on,
        Some(date("2025-06-10"))
    );
}

#[test]
fn departure_refusals() {
    let departure = |id: &str, on: &str| {
        C::RecordStakeholderDeparture(StakeholderDeparted {
            stakeholder_id: sh(id),
            departed_on: date(on),
            reason: String::new(),
        })
    };
    given_account(vec![departed("user", "2025-06-01")])
        .when(departure("user", "2025-06-05"))
        .then_precondition("already departed on 2025-06-01");
    given_account(vec![])
        .when(departure("ghost", "2025-06-05"))
        .then_not_found("ghost");
    given_account(vec![])
        .when(departure("user", "2025-07-01"))
        .then_invalid("departed_on");
    // tb took part in i1 on 2025-06-01: they cannot have left before
    given_account(vec![])
        .when(departure("tb", "2025-05-31"))
        .then_precondition("took part in interaction i1 on 2025-06-01");
    // leaving on the day of the interaction is fine
    given_account(vec![])
        .when(departure("tb", "2025-06-01"))
        .then_events(vec![departed_no_reason("tb", "2025-06-01")]);
}

fn departed_no_reason(id: &str, on: &str) -> AccountEvent {
    StakeholderDeparted {
        stakeholder_id: sh(id),
        departed_on: date(on),
        reason: String::new(),
    }
    .into()
}

// ================================================================= engagement rules

#[test]
fn set_engagement_rule() {
    let r2 = EngagementRuleSet {
        rule_id: rule("r2"),
        target: RuleTarget::BuyingRole(BuyingRole::TechnicalBuyer),
        owner: person("bob"),
        cadence_days: 14,
        channels: vec![Channel::PhoneCall],
        opportunity_id: Some(opp("op1")),
    };
    given_account(vec![])
        .when(C::SetEngagementRule(r2.clone()))
        .then_events(vec![r2.into()]);
}

#[test]
fn an_active_rule_may_be_redefined_but_not_restated() {
    let redefined = EngagementRuleSet {
        cadence_days: 21,
        ..rule_r1()
    };
    given_account(vec![])
        .when(C::SetEngagementRule(redefined.clone()))
        .then_events(vec![redefined.into()]);
    given_account(vec![])
        .when(C::SetEngagementRule(rule_r1()))
        .then_invalid("rule_id");
}

#[test]
fn a_retired_rule_cannot_be_reactivated() {
    given_account(vec![EngagementRuleRetired {
        rule_id: rule("r1"),
        reason: "done".into(),
    }
    .into()])
    .when(C::SetEngagementRule(EngagementRuleSet {
        cadence_days: 7,
        ..rule_r1()
    }))
    .then_precondition("retired rules cannot be reactivated; use a new rule id");
}

#[test]
fn set_engagement_rule_refusals() {
    let r2 = EngagementRuleSet {
        rule_id: rule("r2"),
        ..rule_r1()
    };
    for cadence_days in [0, 3651] {
        given_account(vec![])
            .when(C::SetEngagementRule(EngagementRuleSet {
                cadence_days,
                ..r2.clone()
            }))
            .then_invalid("cadence_days");
    }
    given_account(vec![])
        .when(C::SetEngagementRule(EngagementRuleSet {
            channels: vec![],
            ..r2.clone()
        }))
        .then_invalid("channels");
    given_account(vec![])
        .when(C::SetEngagementRule(EngagementRuleSet {
            channels: vec![Channel::Email, Channel::Email],
            ..r2.clone()
        }))
        .then_invalid("channels");
    given_account(vec![])
        .when(C::SetEngagementRule(EngagementRuleSet {
            owner: person("zoe"),
            ..r2.clone()
        }))
        .then_not_found("person zoe (owner)");
    given_account(vec![])
        .when(C::SetEngagementRule(EngagementRuleSet {
            target: RuleTarget::Stakeholder(sh("ghost")),
            ..r2.clone()
        }))
        .then_not_found("stakeholder ghost");
    given_account(vec![departed("tb", "2025-06-10")])
        .when(C::SetEngagementRule(EngagementRuleSet {
            target: RuleTarget::Stakeholder(sh("tb")),
            ..r2.clone()
        }))
        .then_precondition("stakeholder tb departed on 2025-06-10");
    given_account(vec![])
        .when(C::SetEngagementRule(EngagementRuleSet {
            opportunity_id: Some(opp("op9")),
            ..r2.clone()
        }))
        .then_not_found("opportunity op9");
    given_account(vec![lost().into()])
        .when(C::SetEngagementRule(EngagementRuleSet {
            opportunity_id: Some(opp("op1")),
            ..r2
        }))
        .then_precondition("already lost");
}

#[test]
fn retire_engagement_rule() {
    let retire = EngagementRuleRetired {
        rule_id: rule("r1"),
        reason: "Covered by QBRs".into(),
    };
    let state = given_account(vec![])
        .when(C::RetireEngagementRule(retire.clone()))
        .then_events(vec![retire.clone().into()]);
    given(vec![])
        .when(C::RetireEngagementRule(retire.clone()))
        .then_not_found("account is not registered");
    let again = decide(&state, &C::RetireEngagementRule(retire), now());
    assert!(
        matches!(&again, Err(DomainError::FailedPrecondition(m)) if m.contains("already retired")),
        "{again:?}"
    );
}

#[test]
fn retire_engagement_rule_refusals() {
    given_account(vec![])
        .when(C::RetireEngagementRule(EngagementRuleRetired {
            rule_id: rule("r9"),
            reason: "x".into(),
        }))
        .then_not_found("engagement rule r9");
    given_account(vec![])
        .when(C::RetireEngagementRule(EngagementRuleRetired {
            rule_id: rule("r1"),
            reason: "".into(),
        }))
        .then_invalid("reason");
}

// ================================================================= interactions

fn log(id: &str, details: InteractionDetails) -> AccountCommand {
    C::LogInteraction(InteractionLogged {
        interaction_id: int(id),
        details,
    })
}

#[test]
fn log_interaction_with_people_outside_the_team() {
    let d = InteractionDetails {
        participants: vec![person("anna"), person("expert-from-rnd")],
        summary: "  Site tour  ".into(),
        ..details()
    };
    given_account(vec![])
        .when(log("i2", d.clone()))
        .then_events(vec![InteractionLogged {
            interaction_id: int("i2"),
            details: InteractionDetails {
                summary: "Site tour".into(),
                ..d
            },
        }
        .into()]);
}

#[test]
fn logging_an_interaction_twice_is_already_exists() {
    given_account(vec![])
        .when(C::LogInteraction(interaction_i1()))
        .then_already_exists("use CorrectInteraction");
}

#[test]
fn interaction_times_must_be_plausible() {
    // up to five minutes of clock skew is accepted
    given_account(vec![])
        .when(log(
            "i2",
            InteractionDetails {
                occurred_at: at("2025-06-15T12:05:00Z"),
                ..details()
            },
        ))
        .then_events(vec![InteractionLogged {
            interaction_id: int("i2"),
            details: InteractionDetails {
                occurred_at: at("2025-06-15T12:05:00Z"),
                ..details()
            },
        }
        .into()]);
    given_account(vec![])
        .when(log(
            "i2",
            InteractionDetails {
                occurred_at: at("2025-06-15T12:05:01Z"),
                ..details()
            },
        ))
        .then_invalid("details.occurred_at");
    given_account(vec![])
        .when(log(
            "i2",
            InteractionDetails {
                occurred_at: at("1999-12-31T23:59:59Z"),
                ..details()
            },
        ))
        .then_invalid("details.occurred_at");
}

#[test]
fn log_interaction_argument_refusals() {
    let refused = |d: InteractionDetails, field: &str| {
        given_account(vec![]).when(log("i2", d)).then_invalid(field);
    };
    refused(
        InteractionDetails {
            stakeholders: vec![],
            ..details()
        },
        "details.stakeholders",
    );
    refused(
        InteractionDetails {
            stakeholders: vec![sh("eb"), sh("eb")],
            ..details()
        },
        "details.stakeholders",
    );
    refused(
        InteractionDetails {
            participants: vec![],
            ..details()
        },
        "details.participants",
    );
    refused(
        InteractionDetails {
            participants: vec![person("bob"), person("bob")],
            ..details()
        },
        "details.participants",
    );
    refused(
        InteractionDetails {
            summary: " ".into(),
            ..details()
        },
        "details.summary",
    );
    refused(
        InteractionDetails {
            summary: "s".repeat(20_001),
            ..details()
        },
        "details.summary",
    );
}

#[test]
fn log_interaction_state_refusals() {
    given_account(vec![])
        .when(log(
            "i2",
            InteractionDetails {
                stakeholders: vec![sh("ghost")],
                ..details()
            },
        ))
        .then_not_found("stakeholder ghost is not in this account's decision-making unit");
    given_account(vec![])
        .when(log(
            "i2",
            InteractionDetails {
                opportunity_id: Some(opp("op9")),
                ..details()
            },
        ))
        .then_not_found("opportunity op9");
}

#[test]
fn no_interaction_with_a_stakeholder_after_their_departure() {
    let on = |t: &str| InteractionDetails {
        occurred_at: at(t),
        ..details()
    };
    given_account(vec![departed("tb", "2025-06-09")])
        .when(log("i2", on("2025-06-10T09:00:00Z")))
        .then_precondition("stakeholder tb departed on 2025-06-09, before this interaction");
    // the farewell meeting on their last day counts
    given_account(vec![departed("tb", "2025-06-10")])
        .when(log("i2", on("2025-06-10T16:00:00Z")))
        .then_events(vec![InteractionLogged {
            interaction_id: int("i2"),
            details: on("2025-06-10T16:00:00Z"),
        }
        .into()]);
}

fn correction(details: InteractionDetails) -> InteractionCorrected {
    InteractionCorrected {
        interaction_id: int("i1"),
        details,
        reason: "Wrong channel".into(),
    }
}

#[test]
fn correct_interaction() {
    let fixed = correction(InteractionDetails {
        channel: Channel::VideoCall,
        ..details()
    });
    let state = given_account(vec![])
        .when(C::CorrectInteraction(fixed.clone()))
        .then_events(vec![fixed.into()]);
    assert_eq!(state.interactions[&int("i1")].corrections, 1);
    let corrected = &state.interactions[&int("i1")];
    assert_eq!(corrected.channel, Channel::VideoCall);
    assert!(corrected.has_content(&InteractionDetails {
        channel: Channel::VideoCall,
        ..details()
    }));
    assert!(!corrected.has_content(&details()));
}

#[test]
fn correct_interaction_refusals() {
    given_account(vec![])
        .when(C::CorrectInteraction(InteractionCorrected {
            interaction_id: int("i9"),
            ..correction(details())
        }))
        .then_not_found("interaction i9 was never logged");
    given_account(vec![])
        .when(C::CorrectInteraction(correction(details())))
        .then_invalid("details");
    given_account(vec![])
        .when(C::CorrectInteraction(InteractionCorrected {
            reason: " ".into(),
            ..correction(InteractionDetails {
                channel: Channel::Email,
                ..details()
            })
        }))
        .then_invalid("reason");
    given_account(vec![])
        .when(C::CorrectInteraction(correction(InteractionDetails {
            stakeholders: vec![sh("ghost")],
            ..details()
        })))
        .then_not_found("stakeholder ghost");
    given_account(vec![])
        .when(C::CorrectInteraction(correction(InteractionDetails {
            occurred_at: at("2025-06-16T00:00:00Z"),
            ..details()
        })))
        .then_invalid("details.occurred_at");
}

/// The state keeps a hash of an interaction's content, not its text: a correction of the text
/// alone is still a change, and "identical" means identical to the content in force.
#[test]
fn correcting_only_the_text_is_a_change() {
    let text_only = correction(InteractionDetails {
        summary: format!("{} (amended)", details().summary),
        ..details()
    });
    let state = given_account(vec![])
        .when(C::CorrectInteraction(text_only.clone()))
        .then_events(vec![text_only.clone().into()]);
    let next_step_only = correction(InteractionDetails {
        next_step: "Send the revised proposal".into(),
        ..details()
    });
    let mut later = state.clone();
    assert!(decide(&later, &C::CorrectInteraction(next_step_only), now()).is_ok());
    // The amended text is now in force: repeating it changes nothing, going back does.
    assert!(matches!(
        decide(&later, &C::CorrectInteraction(text_only.clone()), now()),
        Err(DomainError::InvalidArgument { .. })
    ));
    let back = correction(details());
    let events = decide(&later, &C::CorrectInteraction(back), now()).expect("a change");
    for e in &events {
        later.apply(e);
    }
    assert!(later.interactions[&int("i1")].has_content(&details()));
    assert_eq!(later.interactions[&int("i1")].corrections, 2);
}

#[test]
fn content_hash_covers_every_field() {
    let base = InteractionDetails {
        opportunity_id: None,
        ..details()
    };
    let variants = [
        InteractionDetails {
            occurred_at: Timestamp(base.occurred_at.0 + 1),
            ..base.clone()
        },
        InteractionDetails {
            channel: Channel::Email,
            ..base.clone()
        },
        InteractionDetails {
            stakeholders: vec![],
            ..base.clone()
        },
        InteractionDetails {
            participants: vec![],
            ..base.clone()
        },
        InteractionDetails {
            summary: String::new(),
            ..base.clone()
        },
        InteractionDetails {
            sentiment: Sentiment::Negative,
            ..base.clone()
        },
        InteractionDetails {
            next_step: "x".into(),
            ..base.clone()
        },
        InteractionDetails {
            opportunity_id: Some(opp("o1")),
            ..base.clone()
        },
        // Text moved from one field to the next is a different content.
        InteractionDetails {
            summary: format!("{}{}", base.summary, base.next_step),
            next_step: String::new(),
            ..base.clone()
        },
    ];
    let mut seen = std::collections::HashSet::new();
    assert!(seen.insert(base.content_hash()));
    for v in &variants {
        assert_ne!(v, &base);
        assert!(seen.insert(v.content_hash()), "{v:?} hashes like another");
    }
    assert_eq!(base.content_hash(), base.clone().content_hash());
}

// ================================================================= reviews

#[test]
fn schedule_review() {
    let internal = ReviewScheduled {
        review_id: rev("r-int"),
        kind: ReviewKind::InternalPlanReview,
        customer_attendees: vec![],
        supplier_attendees: vec![person("anna"), person("vp-sales")],
        ..review_q2()
    };
    given_account(vec![])
        .when(C::ScheduleReview(internal.clone()))
        .then_events(vec![internal.into()]);
}

#[test]
fn schedule_review_refusals() {
    given_account(vec![])
        .when(C::ScheduleReview(review_q2()))
        .then_already_exists("review q2");
    let q3 = ReviewScheduled {
        review_id: rev("q3"),
        due_on: date("2025-09-30"),
        ..review_q2()
    };
    given_account(vec![])
        .when(C::ScheduleReview(ReviewScheduled {
            plan_id: Some(plan("p1999")),
            ..q3.clone()
        }))
        .then_not_found("plan p1999");
    given_account(vec![])
        .when(C::ScheduleReview(ReviewScheduled {
            customer_attendees: vec![sh("ghost")],
            ..q3.clone()
        }))
        .then_not_found("stakeholder ghost");
    given_account(vec![departed("eb", "2025-07-01")])
        .when(C::ScheduleReview(q3.clone()))
        .then_precondition("stakeholder eb departed on 2025-07-01, before the review");
    given_account(vec![])
        .when(C::ScheduleReview(ReviewScheduled {
            customer_attendees: vec![],
            ..q3.clone()
        }))
        .then_invalid("customer_attendees");
    given_account(vec![])
        .when(C::ScheduleReview(ReviewScheduled {
            supplier_attendees: vec![],
            ..q3.clone()
        }))
        .then_invalid("supplier_attendees");
    given_account(vec![])
        .when(C::ScheduleReview(ReviewScheduled {
            supplier_attendees: vec![person("anna"), person("anna")],
            ..q3.clone()
        }))
        .then_invalid("supplier_attendees");
    given_account(vec![])
        .when(C::ScheduleReview(ReviewScheduled {
            kind: ReviewKind::InternalPlanReview,
            plan_id: None,
            ..q3
        }))
        .then_invalid("plan_id");
}

fn outcome() -> ReviewOutcomeRecorded {
    ReviewOutcomeRecorded {
        review_id: rev("q2"),
        held_on: date("2025-06-13"),
        supplier_attendees: vec![person("anna"), person("ceo")],
        customer_attendees: vec![sh("eb"), sh("tb")],
        outcome: ReviewOutcome::ApprovedWithChanges,
        health: HealthRating::Amber,
        decisions: vec!["Pilot the cold chain in Q3".into()],
        follow_up_actions: vec![FollowUpAction {
            action_item_id: act("f1"),
            title: "Plan the pilot".into(),
            owner: person("bob"),
            due_on: date("2025-07-15"),
        }],
    }
}

#[test]
fn record_review_outcome_creates_follow_up_actions() {
    let state = given_account(vec![])
        .when(C::RecordReviewOutcome(outcome()))
        .then_events(vec![outcome().into()]);
    assert!(matches!(
        state.reviews[&rev("q2")].status,
        ReviewStatus::Held(_)
    ));
    assert_eq!(
        state.action_items[&act("f1")].added.link,
        Some(ActionLink::Review(rev("q2")))
    );
}

#[test]
fn record_review_outcome_state_refusals() {
    given_account(vec![outcome().into()])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            follow_up_actions: vec![],
            ..outcome()
        }))
        .then_precondition("review q2 was already held on 2025-06-13");
    given_account(vec![ReviewCancelled {
        review_id: rev("q2"),
        reason: "CFO ill".into(),
    }
    .into()])
    .when(C::RecordReviewOutcome(outcome()))
    .then_precondition("was cancelled (CFO ill)");
    given_account(vec![])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            review_id: rev("q9"),
            ..outcome()
        }))
        .then_not_found("review q9");
    given_account(vec![])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            follow_up_actions: vec![FollowUpAction {
                action_item_id: act("a1"),
                ..follow_up()
            }],
            ..outcome()
        }))
        .then_already_exists("follow-up action a1 collides with an existing action item");
    given_account(vec![])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            follow_up_actions: vec![FollowUpAction {
                owner: person("ceo"),
                ..follow_up()
            }],
            ..outcome()
        }))
        .then_not_found("person ceo (follow-up owner)");
    given_account(vec![])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            customer_attendees: vec![sh("ghost")],
            ..outcome()
        }))
        .then_not_found("stakeholder ghost");
    given_account(vec![departed("tb", "2025-06-12")])
        .when(C::RecordReviewOutcome(outcome()))
        .then_precondition("stakeholder tb departed on 2025-06-12");
}

fn follow_up() -> FollowUpAction {
    outcome()
        .follow_up_actions
        .into_iter()
        .next()
        .expect("outcome has a follow-up")
}

#[test]
fn record_review_outcome_argument_refusals() {
    given_account(vec![])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            held_on: date("2025-06-17"),
            ..outcome()
        }))
        .then_invalid("held_on");
    given_account(vec![])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            follow_up_actions: vec![follow_up(), follow_up()],
            ..outcome()
        }))
        .then_invalid("follow_up_actions.action_item_id");
    given_account(vec![])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            follow_up_actions: vec![FollowUpAction {
                title: " ".into(),
                ..follow_up()
            }],
            ..outcome()
        }))
        .then_invalid("follow_up_actions.title");
    given_account(vec![])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            decisions: vec!["".into()],
            ..outcome()
        }))
        .then_invalid("decisions");
    given_account(vec![])
        .when(C::RecordReviewOutcome(ReviewOutcomeRecorded {
            customer_attendees: vec![],
            ..outcome()
        }))
        .then_invalid("customer_attendees");
}

#[test]
fn cancel_review() {
    let cancel = ReviewCancelled {
        review_id: rev("q2"),
        reason: " CFO ill ".into(),
    };
    given_account(vec![])
        .when(C::CancelReview(cancel))
        .then_events(vec![ReviewCancelled {
            review_id: rev("q2"),
            reason: "CFO ill".into(),
        }
        .into()]);
}

#[test]
fn cancel_review_refusals() {
    let cancel = ReviewCancelled {
        review_id: rev("q2"),
        reason: "CFO ill".into(),
    };
    given_account(vec![outcome().into()])
        .when(C::CancelReview(cancel.clone()))
        .then_precondition("already held");
    given_account(vec![cancel.clone().into()])
        .when(C::CancelReview(cancel.clone()))
        .then_precondition("was cancelled");
    given_account(vec![])
        .when(C::CancelReview(ReviewCancelled {
            review_id: rev("q9"),
            ..cancel.clone()
        }))
        .then_not_found("review q9");
    given_account(vec![])
        .when(C::CancelReview(ReviewCancelled {
            reason: String::new(),
            ..cancel
        }))
        .then_invalid("reason");
}

// ================================================================= the past is judged by "now"

#[test]
fn future_dates_are_judged_against_now() {
    // the same completion is in the future today and fine a week later
    let command = C::CompleteActionItem(ActionItemCompleted {
        completed_on: date("2025-06-20"),
        ..completed()
    });
    given_account(vec![])
        .when(command.clone())
        .then_invalid("completed_on");
    given_account(vec![])
        .at(at("2025-06-22T08:00:00Z"))
        .when(command)
        .then_events(vec![ActionItemCompleted {
            completed_on: date("2025-06-20"),
            ..completed()
        }
        .into()]);
}

#[test]
fn decisions_replay_into_a_consistent_state() {
    // a short story: every decided event applies, and the state follows
    let mut state = AccountState::default();
    let commands = vec![
        C::RegisterAccount(registered()),
        C::AssignTeamMember(assigned("anna", "Anna Berg", TeamRole::KeyAccountManager)),
        C::AddStakeholder(stakeholder("eb", None, BuyingRole::EconomicBuyer)),
        C::DraftPlan(plan_2025()),
        C::SetObjective(objective_o1()),
        C::SetEngagementRule(rule_r1()),
        C::LogInteraction(InteractionLogged {
            interaction_id: int("i1"),
            details: InteractionDetails {
                stakeholders: vec![sh("eb")],
                opportunity_id: None,
                ..details()
            },
        }),
        C::PromoteAccount(change_tier(Tier::Strategic)),
    ];
    for command in &commands {
        let events = decide(&state, command, now()).expect("every step is accepted");
        for e in &events {
            state.apply(e);
        }
    }
    assert_eq!(state.version, commands.len() as u64);
    assert_eq!(
        state.profile.as_ref().map(|p| p.tier),
        Some(Tier::Strategic)
    );
    assert_eq!(state.interactions.len(), 1);
    assert!(matches!(
        decide(&state, &C::RegisterAccount(registered()), now()),
        Err(DomainError::AlreadyExists(_))
    ));
}

mod batches {
    use super::*;
    use keyplan_domain::decide::decide_all;
    use keyplan_domain::ids::PersonId;

    #[test]
    fn later_commands_see_the_effects_of_earlier_ones_and_one_refusal_refuses_all() {
        let state = AccountState::default();
        let now = Timestamp(1_780_000_000_000_000);
        let register = AccountCommand::RegisterAccount(AccountRegistered {
            name: "Initech".into(),
            industry: "Software".into(),
            region: "NA".into(),
            headquarters: "Austin".into(),
            tier: Tier::Key,
        });
        let assign = AccountCommand::AssignTeamMember(TeamMemberAssigned {
            person_id: PersonId::parse("dana").expect("id"),
            name: "Dana Kim".into(),
            role: TeamRole::KeyAccountManager,
        });
        let events =
            decide_all(&state, &[register.clone(), assign.clone()], now).expect("accepted");
        assert_eq!(events.len(), 2);

        let unassign_stranger = AccountCommand::UnassignTeamMember(TeamMemberUnassigned {
            person_id: PersonId::parse("stranger").expect("id"),
            reason: String::new(),
        });
        let err =
            decide_all(&state, &[register, assign, unassign_stranger], now).expect_err("refused");
        match err {
            DomainError::NotFound(m) => {
                assert!(m.starts_with("command #3 (UnassignTeamMember): "), "{m}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
