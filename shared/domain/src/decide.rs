//! The decision rules: which events a command produces, given the account's current state.
//!
//! [`decide`] is a pure function: the account's state, the command and the current time in,
//! the events to append (or the reason for refusal) out. The command services load the state,
//! call `decide`, and append the events with the version they loaded, so that two people
//! editing the same account at once get a conflict rather than a silent overwrite.
//!
//! Each command's checks run in a fixed order, so that the same command on the same state is
//! always refused for the same reason. Broadly:
//! 1. the account must exist (except for `RegisterAccount`), before anything else;
//! 2. the command's own fields, whatever the state ([`DomainError::InvalidArgument`]);
//! 3. the entities it names ([`DomainError::NotFound`], [`DomainError::AlreadyExists`]);
//! 4. what the state allows now ([`DomainError::FailedPrecondition`]).
//!
//! (A few field checks need the state, e.g. a review outcome's attendees depend on the
//! review's kind; they run once the review is found.)
//!
//! Text fields are trimmed of leading and trailing whitespace in the events produced, so that
//! "  Acme " and "Acme" are the same name in every read model. Lengths count characters,
//! not bytes, so that the limits mean the same in every script.
//!
//! An edit that would change nothing (a profile change, a section revision, an objective or rule
//! redefinition, a stage change identical to what the state already holds) is refused, so that
//! the audit trail only holds real changes.

use std::collections::BTreeSet;
use std::fmt::Display;

use chrono::{Datelike, Days, Months, NaiveDate};

use crate::commands::{AccountCommand, AssessTier, ChangeTier};
use crate::error::DomainError;
use crate::events::*;
use crate::ids::*;
use crate::state::*;
use crate::values::*;

/// Longest name, title or other one-line label, in characters.
pub const MAX_NAME_LEN: usize = 200;
/// Longest free text (summary, section text, note, reason, decision), in characters.
/// Generous enough for a pasted plan section, small enough to keep events cheap to replay.
pub const MAX_TEXT_LEN: usize = 20_000;
/// Most criteria in one tier assessment. Real scorecards have five to fifteen; the bound also
/// keeps the weighted-score arithmetic far from overflow.
pub const MAX_CRITERIA: usize = 50;
/// Longest engagement cadence: ten years. A longer one is a typing error, not a plan.
pub const MAX_CADENCE_DAYS: u32 = 3650;
/// Lowest influence of a stakeholder.
pub const MIN_INFLUENCE: u8 = 1;
/// Highest influence of a stakeholder.
pub const MAX_INFLUENCE: u8 = 5;
/// Lowest tier-criterion score.
pub const MIN_SCORE: u8 = 1;
/// Highest tier-criterion score.
pub const MAX_SCORE: u8 = 10;
/// Business dates before this are typing errors (no account history in Keyplan is older).
pub const EARLIEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1990, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// Business dates later than this many years after today are typing errors.
pub const MAX_YEARS_AHEAD: u32 = 50;
/// Interactions before this instant (2000-01-01T00:00:00Z) are typing errors.
pub const EARLIEST_INTERACTION: Timestamp = Timestamp(946_684_800_000_000);
/// How far in the future an interaction may be dated, to absorb clock skew between the
/// client that logged it and the server.
pub const INTERACTION_CLOCK_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;
/// How many days after the server's (UTC) date a past fact may be dated: a user east of UTC
/// is already living "tomorrow".
pub const PAST_DATE_SLACK_DAYS: u64 = 1;
/// Margin bounds in basis points: above 100 % is impossible, below -100 % is a typing error.
pub const MARGIN_BASIS_POINTS: std::ops::RangeInclusive<i32> = -10_000..=10_000;

type Decision = Result<Vec<AccountEvent>, DomainError>;

/// Validates `command` against `state` and returns the events to append (at least one).
///
/// `now` is the server's current time (dates and business times are checked against it).
pub fn decide(state: &AccountState, command: &AccountCommand, now: Timestamp) -> Decision {
    if !matches!(command, AccountCommand::RegisterAccount(_)) && !state.exists() {
        return Err(DomainError::NotFound(
            "account is not registered; send RegisterAccount first".into(),
        ));
    }
    use AccountCommand as C;
    match command {
        C::RegisterAccount(c) => register_account(state, c),
        C::AssessTier(c) => assess_tier(c),
        C::PromoteAccount(c) => promote_account(state, c),
        C::DemoteAccount(c) => demote_account(state, c),
        C::AssignTeamMember(c) => assign_team_member(state, c),
        C::UnassignTeamMember(c) => unassign_team_member(state, c),
        C::DraftPlan(c) => draft_plan(state, c, now),
        C::RevisePlanSection(c) => revise_plan_section(state, c),
        C::SetObjective(c) => set_objective(state, c, now),
        C::ProgressObjective(c) => progress_objective(state, c),
        C::IdentifyOpportunity(c) => identify_opportunity(state, c, now),
        C::ChangeOpportunityStage(c) => change_opportunity_stage(state, c, now),
        C::WinOpportunity(c) => win_opportunity(state, c, now),
        C::LoseOpportunity(c) => lose_opportunity(state, c, now),
        C::AddActionItem(c) => add_action_item(state, c, now),
        C::CompleteActionItem(c) => complete_action_item(state, c, now),
        C::CancelActionItem(c) => cancel_action_item(state, c),
        C::RecordRevenue(c) => record_revenue(c, now),
        C::AddStakeholder(c) => add_stakeholder(state, c),
        C::ChangeStakeholderProfile(c) => change_stakeholder_profile(state, c),
        C::RecordStakeholderDeparture(c) => record_stakeholder_departure(state, c, now),
        C::SetEngagementRule(c) => set_engagement_rule(state, c),
        C::RetireEngagementRule(c) => retire_engagement_rule(state, c),
        C::LogInteraction(c) => log_interaction(state, c, now),
        C::CorrectInteraction(c) => correct_interaction(state, c, now),
        C::ScheduleReview(c) => schedule_review(state, c, now),
        C::RecordReviewOutcome(c) => record_review_outcome(state, c, now),
        C::CancelReview(c) => cancel_review(state, c),
    }
}

/// Decides several commands as one unit (appended atomically): each command is validated
/// against the state the previous ones leave, and the first refusal refuses the whole batch,
/// naming the command that failed.
pub fn decide_all(state: &AccountState, commands: &[AccountCommand], now: Timestamp) -> Decision {
    if let [command] = commands {
        return decide(state, command, now);
    }
    let mut scratch = state.clone();
    let mut events = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let decided =
            decide(&scratch, command, now).map_err(|e| in_batch(e, i + 1, command.name()))?;
        for event in &decided {
            scratch.apply(event);
        }
        events.extend(decided);
    }
    Ok(events)
}

/// Whether deciding `commands` on `state` reads interactions' facts, which a state built by
/// [`AccountState::without_interactions`] does not keep: a correction (is the content new?),
/// a departure (did they take part in a later interaction?), and logging an id whose digest
/// is already among [`AccountState::interaction_ids`] (is it really the same id?). The caller
/// then folds them from the log and [`AccountState::restore_interactions`] before deciding;
/// those commands are rare, and the state stays small for all the others.
pub fn needs_interactions(state: &AccountState, commands: &[AccountCommand]) -> bool {
    state.interactions_dropped
        && commands.iter().any(|command| match command {
            AccountCommand::CorrectInteraction(_)
            | AccountCommand::RecordStakeholderDeparture(_) => true,
            AccountCommand::LogInteraction(c) => state.interaction_ids.contains(&c.interaction_id),
            _ => false,
        })
}

/// The interactions' facts, which a decision is about to read.
fn interactions(
    state: &AccountState,
) -> Result<&std::collections::BTreeMap<InteractionId, crate::state::Interaction>, DomainError> {
    if state.interactions_dropped {
        // `needs_interactions` told the caller to restore them; this is a bug, not bad input.
        return Err(DomainError::FailedPrecondition(
            "internal error: this account's interactions were not loaded to decide the command; \
             nothing was stored; please report it"
                .to_owned(),
        ));
    }
    Ok(&state.interactions)
}

/// Like [`decide_all`], but applies each command's events to `state` as it goes instead of
/// working on a copy: a batch costs nothing extra however long the account's history. On a
/// refusal `state` holds the effects of the commands before the refused one, so the caller must
/// discard it (reload it from the log) rather than keep using it.
pub fn decide_all_in_place(
    state: &mut AccountState,
    commands: &[AccountCommand],
    now: Timestamp,
) -> Decision {
    let mut events = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let decided = decide(state, command, now).map_err(|e| {
            if commands.len() == 1 {
                e
            } else {
                in_batch(e, i + 1, command.name())
            }
        })?;
        for event in &decided {
            state.apply(event);
        }
        events.extend(decided);
    }
    Ok(events)
}

/// Prefixes a refusal with the position and name of the batch command that caused it.
fn in_batch(error: DomainError, number: usize, name: &str) -> DomainError {
    let context = format!("command #{number} ({name}): ");
    match error {
        DomainError::InvalidArgument { field, reason } => DomainError::InvalidArgument {
            field,
            reason: format!("{context}{reason}"),
        },
        DomainError::NotFound(m) => DomainError::NotFound(format!("{context}{m}")),
        DomainError::AlreadyExists(m) => DomainError::AlreadyExists(format!("{context}{m}")),
        DomainError::FailedPrecondition(m) => {
            DomainError::FailedPrecondition(format!("{context}{m}"))
        }
    }
}

/// Σ(weight × score) / Σ(weight), times 1000, rounded half up, in integer arithmetic so that
/// every node computes the same score (no floating point). `None` if the total weight is 0.
///
/// Rounding half up of `1000·a/b` is `⌊(2000·a + b) / (2·b)⌋`.
pub fn weighted_score_milli(criteria: &[TierCriterion]) -> Option<u32> {
    let total_weight: u128 = criteria.iter().map(|c| u128::from(c.weight)).sum();
    if total_weight == 0 {
        return None;
    }
    let weighted: u128 = criteria
        .iter()
        .map(|c| u128::from(c.weight) * u128::from(c.score))
        .sum();
    let milli = (2000 * weighted + total_weight) / (2 * total_weight);
    u32::try_from(milli).ok()
}

/// The last day a plan period of `kind` starting on `start` must have; `Ok(None)` for a
/// perpetual plan. The rules:
/// - calendar year: must start on January 1 and ends on December 31 of the same year;
/// - half year: ends the day before `start` + 6 calendar months;
/// - rolling 12 months: ends the day before `start` + 12 calendar months;
/// - perpetual: has no end.
///
/// Month arithmetic is chrono's: when the target month is shorter, the day is clamped to its
/// last day, so a half year starting on 2025-08-31 reaches 2026-02-28 and ends on 2026-02-27.
pub fn expected_period_end(kind: PlanPeriodKind, start: Date) -> Result<Option<Date>, DomainError> {
    let months_minus_a_day = |months: u32| {
        start
            .checked_add_months(Months::new(months))
            .and_then(|d| d.checked_sub_days(Days::new(1)))
            .map(Some)
            .ok_or_else(|| DomainError::invalid("period.start", format!("{start} is out of range")))
    };
    match kind {
        PlanPeriodKind::CalendarYear => {
            if start.month() != 1 || start.day() != 1 {
                return Err(DomainError::invalid(
                    "period.start",
                    format!(
                        "a calendar-year plan must start on January 1, got {start}; \
                         use a rolling 12 months period for other start dates"
                    ),
                ));
            }
            NaiveDate::from_ymd_opt(start.year(), 12, 31)
                .map(Some)
                .ok_or_else(|| {
                    DomainError::invalid("period.start", format!("{start} is out of range"))
                })
        }
        PlanPeriodKind::HalfYear => months_minus_a_day(6),
        PlanPeriodKind::Rolling12Months => months_minus_a_day(12),
        PlanPeriodKind::Perpetual => Ok(None),
    }
}

// ================================================================= account and team

/// Refused if the account exists already; the name is required, the other labels optional.
fn register_account(state: &AccountState, c: &AccountRegistered) -> Decision {
    let event = AccountRegistered {
        name: required_text("name", &c.name, MAX_NAME_LEN)?,
        industry: optional_text("industry", &c.industry, MAX_NAME_LEN)?,
        region: optional_text("region", &c.region, MAX_NAME_LEN)?,
        headquarters: optional_text("headquarters", &c.headquarters, MAX_NAME_LEN)?,
        tier: c.tier,
    };
    if let Some(profile) = &state.profile {
        return Err(DomainError::AlreadyExists(format!(
            "account is already registered (as {:?}, {} tier)",
            profile.name, profile.tier
        )));
    }
    one(event)
}

/// Criteria must be non-empty, at most [`MAX_CRITERIA`], uniquely named (ignoring case), with
/// weight > 0 and score 1..=10. The assessor may be anyone (assessments are often made by
/// management or a KAM champion outside the team). The tier itself does not change: moving
/// tiers is a separate, deliberate decision (promote/demote).
fn assess_tier(c: &AssessTier) -> Decision {
    if c.criteria.is_empty() {
        return Err(DomainError::invalid(
            "criteria",
            "must name at least one scored criterion (e.g. revenue, strategic fit)",
        ));
    }
    if c.criteria.len() > MAX_CRITERIA {
        return Err(DomainError::invalid(
            "criteria",
            format!("at most {MAX_CRITERIA} criteria, got {}", c.criteria.len()),
        ));
    }
    let mut names = BTreeSet::new();
    let mut criteria = Vec::with_capacity(c.criteria.len());
    for criterion in &c.criteria {
        let name = required_text("criteria.name", &criterion.name, MAX_NAME_LEN)?;
        if !names.insert(name.to_lowercase()) {
            return Err(DomainError::invalid(
                "criteria.name",
                format!("criterion {name:?} is listed twice; score each criterion once"),
            ));
        }
        if criterion.weight == 0 {
            return Err(DomainError::invalid(
                "criteria.weight",
                format!(
                    "weight of {name:?} must be greater than 0; drop irrelevant criteria instead"
                ),
            ));
        }
        if !(MIN_SCORE..=MAX_SCORE).contains(&criterion.score) {
            return Err(DomainError::invalid(
                "criteria.score",
                format!(
                    "score of {name:?} must be between {MIN_SCORE} and {MAX_SCORE}, got {}",
                    criterion.score
                ),
            ));
        }
        criteria.push(TierCriterion {
            name,
            weight: criterion.weight,
            score: criterion.score,
        });
    }
    let weighted_score_milli = weighted_score_milli(&criteria).ok_or_else(|| {
        DomainError::invalid("criteria.weight", "the total weight must be greater than 0")
    })?;
    one(TierAssessed {
        criteria,
        weighted_score_milli,
        recommended_tier: c.recommended_tier,
        assessed_by: c.assessed_by.clone(),
    })
}

/// The reason is required and the target tier must be higher than the current one.
fn promote_account(state: &AccountState, c: &ChangeTier) -> Decision {
    let reason = required_text("reason", &c.reason, MAX_TEXT_LEN)?;
    let from = current_tier(state)?;
    if c.to <= from {
        return Err(DomainError::FailedPrecondition(format!(
            "account is {from} and {} is not a higher tier (standard < key < strategic); \
             use DemoteAccount to move it down",
            c.to
        )));
    }
    one(AccountPromoted {
        from,
        to: c.to,
        reason,
    })
}

/// The reason is required (demoting is a deliberate, recorded decision) and the target tier
/// must be lower than the current one.
fn demote_account(state: &AccountState, c: &ChangeTier) -> Decision {
    let reason = required_text("reason", &c.reason, MAX_TEXT_LEN)?;
    let from = current_tier(state)?;
    if c.to >= from {
        return Err(DomainError::FailedPrecondition(format!(
            "account is {from} and {} is not a lower tier (standard < key < strategic); \
             use PromoteAccount to move it up",
            c.to
        )));
    }
    one(AccountDemoted {
        from,
        to: c.to,
        reason,
    })
}

/// The name is required; the person must not be in the team already (a role change is an
/// unassignment then an assignment, so that both are on record); an account has at most one
/// key account manager.
fn assign_team_member(state: &AccountState, c: &TeamMemberAssigned) -> Decision {
    let name = required_text("name", &c.name, MAX_NAME_LEN)?;
    if let Some(member) = state.team.get(&c.person_id) {
        return Err(DomainError::FailedPrecondition(format!(
            "person {} ({}) is already in the key account team as {}; \
             unassign them first to change their role",
            c.person_id, member.name, member.role
        )));
    }
    if c.role == TeamRole::KeyAccountManager {
        if let Some((id, kam)) = state
            .team
            .iter()
            .find(|(_, m)| m.role == TeamRole::KeyAccountManager)
        {
            return Err(DomainError::FailedPrecondition(format!(
                "the account already has a key account manager, {} ({id}); unassign {} first",
                kam.name, kam.name
            )));
        }
    }
    one(TeamMemberAssigned {
        person_id: c.person_id.clone(),
        name,
        role: c.role,
    })
}

/// The person must be in the team. What they own (objectives, opportunities, actions, rules)
/// keeps their name as history: people leave, and an opportunity cannot wait for them.
/// Objectives and rules are handed over by redefining them with a new owner.
fn unassign_team_member(state: &AccountState, c: &TeamMemberUnassigned) -> Decision {
    let reason = optional_text("reason", &c.reason, MAX_TEXT_LEN)?;
    if !state.team.contains_key(&c.person_id) {
        return Err(DomainError::NotFound(format!(
            "person {} is not in the key account team",
            c.person_id
        )));
    }
    one(TeamMemberUnassigned {
        person_id: c.person_id.clone(),
        reason,
    })
}

// ================================================================= plan

/// The plan id must be new; the period must follow [`expected_period_end`]; `prepared_on`
/// must not be in the future; no other plan may cover exactly the same period (two people
/// drafting "the 2025 plan" at once under different ids is a mistake, not two plans).
fn draft_plan(state: &AccountState, c: &PlanDrafted, now: Timestamp) -> Decision {
    check_date("period.start", c.period.start, now)?;
    if let Some(end) = c.period.end {
        check_date("period.end", end, now)?;
        if end < c.period.start {
            return Err(DomainError::invalid(
                "period.end",
                format!("must not be before the start {}, got {end}", c.period.start),
            ));
        }
    }
    let expected = expected_period_end(c.period.kind, c.period.start)?;
    if c.period.end != expected {
        let got = c
            .period
            .end
            .map_or_else(|| "no end date".to_owned(), |d| d.to_string());
        let reason = match expected {
            None => format!("a perpetual plan has no end date, got {got}"),
            Some(want) => format!(
                "a {} plan starting {} must end on {want}, got {got}",
                c.period.kind, c.period.start
            ),
        };
        return Err(DomainError::invalid("period.end", reason));
    }
    check_past_date("prepared_on", c.prepared_on, now)?;
    if state.plans.contains_key(&c.plan_id) {
        return Err(DomainError::AlreadyExists(format!(
            "plan {} already exists; revise its sections or draft a plan with a new id",
            c.plan_id
        )));
    }
    if let Some((id, _)) = state
        .plans
        .iter()
        .find(|(_, p)| p.drafted.period == c.period)
    {
        return Err(DomainError::AlreadyExists(format!(
            "plan {id} already covers the {} period {}; revise plan {id} instead",
            c.period.kind,
            describe_period(&c.period)
        )));
    }
    one(c.clone())
}

/// The plan must exist; the text may be empty (a section is cleared) but must differ from the
/// section's current text.
fn revise_plan_section(state: &AccountState, c: &PlanSectionRevised) -> Decision {
    let text = optional_text("text", &c.text, MAX_TEXT_LEN)?;
    let plan = require_plan(state, &c.plan_id)?;
    let current = plan
        .sections
        .get(&c.section)
        .map(String::as_str)
        .unwrap_or("");
    if current == text {
        return Err(DomainError::invalid(
            "text",
            format!(
                "is identical to the current {} section of plan {}; nothing to revise",
                c.section, c.plan_id
            ),
        ));
    }
    one(PlanSectionRevised {
        plan_id: c.plan_id.clone(),
        section: c.section,
        text,
    })
}

/// Title, metric and target are required; the plan must exist and the due date fall within its
/// period (an objective measures the plan it belongs to); the owner must be a team member.
/// An existing objective may be redefined while it is still active; an achieved or abandoned
/// one is history, so a new goal needs a new id.
fn set_objective(state: &AccountState, c: &ObjectiveSet, now: Timestamp) -> Decision {
    let event = ObjectiveSet {
        objective_id: c.objective_id.clone(),
        plan_id: c.plan_id.clone(),
        title: required_text("title", &c.title, MAX_NAME_LEN)?,
        metric: required_text("metric", &c.metric, MAX_NAME_LEN)?,
        target: required_text("target", &c.target, MAX_NAME_LEN)?,
        due_on: c.due_on,
        owner: c.owner.clone(),
        status: c.status,
    };
    check_date("due_on", c.due_on, now)?;
    let plan = require_plan(state, &c.plan_id)?;
    require_team_member(state, "owner", &c.owner)?;
    let period = &plan.drafted.period;
    if c.due_on < period.start || period.end.is_some_and(|end| c.due_on > end) {
        return Err(DomainError::FailedPrecondition(format!(
            "objective {} is due on {}, outside the period of plan {} ({}); \
             set it in the plan that covers that date",
            c.objective_id,
            c.due_on,
            c.plan_id,
            describe_period(period)
        )));
    }
    if let Some(existing) = state.objectives.get(&c.objective_id) {
        if existing.status.is_final() {
            return Err(DomainError::FailedPrecondition(format!(
                "objective {} is {} and cannot be redefined; set a new objective id",
                c.objective_id, existing.status
            )));
        }
        let as_it_stands = ObjectiveSet {
            status: existing.status,
            ..existing.definition.clone()
        };
        if as_it_stands == event {
            return Err(DomainError::invalid(
                "objective_id",
                format!(
                    "objective {} already has exactly this definition; nothing to change",
                    c.objective_id
                ),
            ));
        }
    }
    one(event)
}

/// The objective must exist and still be active (achieved and abandoned are final).
fn progress_objective(state: &AccountState, c: &ObjectiveProgressed) -> Decision {
    let current_value = optional_text("current_value", &c.current_value, MAX_NAME_LEN)?;
    let note = optional_text("note", &c.note, MAX_TEXT_LEN)?;
    let objective = require_objective(state, &c.objective_id)?;
    if objective.status.is_final() {
        return Err(DomainError::FailedPrecondition(format!(
            "objective {} is already {}; no further progress can be recorded",
            c.objective_id, objective.status
        )));
    }
    one(ObjectiveProgressed {
        objective_id: c.objective_id.clone(),
        status: c.status,
        current_value,
        note,
    })
}

// ================================================================= opportunities

/// The title is required, the value a valid amount, the id new and the owner a team member.
fn identify_opportunity(
    state: &AccountState,
    c: &OpportunityIdentified,
    now: Timestamp,
) -> Decision {
    let title = required_text("title", &c.title, MAX_NAME_LEN)?;
    c.value.validate("value")?;
    check_date("expected_close_on", c.expected_close_on, now)?;
    if state.opportunities.contains_key(&c.opportunity_id) {
        return Err(DomainError::AlreadyExists(format!(
            "opportunity {} already exists",
            c.opportunity_id
        )));
    }
    require_team_member(state, "owner", &c.owner)?;
    one(OpportunityIdentified { title, ..c.clone() })
}

/// The opportunity must be open, and the command must change its stage or its expected close.
fn change_opportunity_stage(
    state: &AccountState,
    c: &OpportunityStageChanged,
    now: Timestamp,
) -> Decision {
    if let Some(close) = c.expected_close_on {
        check_date("expected_close_on", close, now)?;
    }
    let opportunity = require_opportunity(state, &c.opportunity_id)?;
    let stage = require_open(&c.opportunity_id, opportunity)?;
    let same_close = c
        .expected_close_on
        .is_none_or(|d| d == opportunity.expected_close_on);
    if stage == c.stage && same_close {
        return Err(DomainError::invalid(
            "stage",
            format!(
                "opportunity {} is already at stage {} closing {}; nothing to change",
                c.opportunity_id, stage, opportunity.expected_close_on
            ),
        ));
    }
    one(c.clone())
}

/// The opportunity must be open; the value must be valid, the close date not in the future and
/// the reason given (won or lost, the reason is what the team learns from).
fn win_opportunity(state: &AccountState, c: &OpportunityWon, now: Timestamp) -> Decision {
    c.value.validate("value")?;
    check_past_date("closed_on", c.closed_on, now)?;
    let reason = required_text("reason", &c.reason, MAX_TEXT_LEN)?;
    let opportunity = require_opportunity(state, &c.opportunity_id)?;
    require_open(&c.opportunity_id, opportunity)?;
    one(OpportunityWon {
        reason,
        ..c.clone()
    })
}

/// The opportunity must be open; the close date not in the future and the reason given.
fn lose_opportunity(state: &AccountState, c: &OpportunityLost, now: Timestamp) -> Decision {
    check_past_date("closed_on", c.closed_on, now)?;
    let reason = required_text("reason", &c.reason, MAX_TEXT_LEN)?;
    let opportunity = require_opportunity(state, &c.opportunity_id)?;
    require_open(&c.opportunity_id, opportunity)?;
    one(OpportunityLost {
        reason,
        ..c.clone()
    })
}

// ================================================================= action plan

/// The title is required, the id new, the owner a team member, and the link (if any) must
/// name an existing objective, opportunity or review.
fn add_action_item(state: &AccountState, c: &ActionItemAdded, now: Timestamp) -> Decision {
    let title = required_text("title", &c.title, MAX_NAME_LEN)?;
    check_date("due_on", c.due_on, now)?;
    if state.action_items.contains_key(&c.action_item_id) {
        return Err(DomainError::AlreadyExists(format!(
            "action item {} already exists",
            c.action_item_id
        )));
    }
    require_team_member(state, "owner", &c.owner)?;
    match &c.link {
        None => {}
        Some(ActionLink::Objective(id)) => {
            require_objective(state, id)?;
        }
        Some(ActionLink::Opportunity(id)) => {
            require_opportunity(state, id)?;
        }
        Some(ActionLink::Review(id)) => {
            require_review(state, id)?;
        }
    }
    one(ActionItemAdded { title, ..c.clone() })
}

/// The action item must be open; the completion date not in the future.
fn complete_action_item(state: &AccountState, c: &ActionItemCompleted, now: Timestamp) -> Decision {
    check_past_date("completed_on", c.completed_on, now)?;
    let note = optional_text("note", &c.note, MAX_TEXT_LEN)?;
    require_open_action_item(state, &c.action_item_id)?;
    one(ActionItemCompleted {
        action_item_id: c.action_item_id.clone(),
        completed_on: c.completed_on,
        note,
    })
}

/// The action item must be open; the reason is required.
fn cancel_action_item(state: &AccountState, c: &ActionItemCancelled) -> Decision {
    let reason = required_text("reason", &c.reason, MAX_TEXT_LEN)?;
    require_open_action_item(state, &c.action_item_id)?;
    one(ActionItemCancelled {
        action_item_id: c.action_item_id.clone(),
        reason,
    })
}

/// Purely argument checks: a sane period that has started, valid amounts in one currency, a
/// plausible margin. Recording the same period and product again is allowed: it is how a
/// figure is corrected, and the latest record wins in the read models.
fn record_revenue(c: &RevenueRecorded, now: Timestamp) -> Decision {
    check_past_date("period_start", c.period_start, now)?;
    check_date("period_end", c.period_end, now)?;
    if c.period_end < c.period_start {
        return Err(DomainError::invalid(
            "period_end",
            format!(
                "must not be before period_start {}, got {}",
                c.period_start, c.period_end
            ),
        ));
    }
    let product = optional_text("product", &c.product, MAX_NAME_LEN)?;
    c.actual.validate("actual")?;
    c.goal.validate("goal")?;
    if c.actual.currency != c.goal.currency {
        return Err(DomainError::invalid(
            "goal",
            format!(
                "must be in the same currency as actual ({}), got {}",
                c.actual.currency, c.goal.currency
            ),
        ));
    }
    if let Some(margin) = c.margin_basis_points {
        if !MARGIN_BASIS_POINTS.contains(&margin) {
            return Err(DomainError::invalid(
                "margin_basis_points",
                format!(
                    "must be between {} and {} (-100 % to 100 %), got {margin}",
                    MARGIN_BASIS_POINTS.start(),
                    MARGIN_BASIS_POINTS.end()
                ),
            ));
        }
    }
    one(RevenueRecorded {
        product,
        ..c.clone()
    })
}

// ================================================================= decision-making unit

/// The name is required, the influence 1..=5, the id new; the manager (if any) must be a
/// current stakeholder other than the new one.
fn add_stakeholder(state: &AccountState, c: &StakeholderAdded) -> Decision {
    let name = required_text("name", &c.name, MAX_NAME_LEN)?;
    let title = optional_text("title", &c.title, MAX_NAME_LEN)?;
    check_influence(c.influence)?;
    if state.stakeholders.contains_key(&c.stakeholder_id) {
        return Err(DomainError::AlreadyExists(format!(
            "stakeholder {} already exists",
            c.stakeholder_id
        )));
    }
    if let Some(manager) = &c.reports_to {
        check_reports_to(state, &c.stakeholder_id, manager)?;
    }
    one(StakeholderAdded {
        name,
        title,
        ..c.clone()
    })
}

/// At least one field must be given, `reports_to` and `clear_reports_to` are exclusive, and the
/// stakeholder must exist and not have departed (a departed stakeholder's profile is frozen as
/// it was). The new manager must not create a reporting cycle. Re-stating the current values
/// is refused: the change must change something.
fn change_stakeholder_profile(state: &AccountState, c: &StakeholderProfileChanged) -> Decision {
    if c.title.is_none()
        && c.reports_to.is_none()
        && !c.clear_reports_to
        && c.buying_role.is_none()
        && c.influence.is_none()
        && c.attitude.is_none()
    {
        return Err(DomainError::invalid(
            "stakeholder_id",
            "the change sets no field; give at least one of title, reports_to, \
             clear_reports_to, buying_role, influence or attitude",
        ));
    }
    if c.clear_reports_to && c.reports_to.is_some() {
        return Err(DomainError::invalid(
            "reports_to",
            "cannot both set reports_to and clear_reports_to; choose one",
        ));
    }
    let title = c
        .title
        .as_deref()
        .map(|t| required_text("title", t, MAX_NAME_LEN))
        .transpose()?;
    if let Some(influence) = c.influence {
        check_influence(influence)?;
    }
    let note = optional_text("note", &c.note, MAX_TEXT_LEN)?;
    let current = require_stakeholder(state, &c.stakeholder_id)?;
    if let Some(departed_on) = current.departed_on {
        return Err(DomainError::FailedPrecondition(format!(
            "stakeholder {} departed on {departed_on}; their profile can no longer change",
            c.stakeholder_id
        )));
    }
    if let Some(manager) = &c.reports_to {
        check_reports_to(state, &c.stakeholder_id, manager)?;
    }
    let changes = title.as_ref().is_some_and(|t| *t != current.title)
        || c.reports_to
            .as_ref()
            .is_some_and(|m| current.reports_to.as_ref() != Some(m))
        || (c.clear_reports_to && current.reports_to.is_some())
        || c.buying_role.is_some_and(|r| r != current.buying_role)
        || c.influence.is_some_and(|i| i != current.influence)
        || c.attitude.is_some_and(|a| a != current.attitude);
    if !changes {
        return Err(DomainError::invalid(
            "stakeholder_id",
            format!(
                "the change leaves stakeholder {} exactly as it is; nothing to record",
                c.stakeholder_id
            ),
        ));
    }
    one(StakeholderProfileChanged {
        title,
        note,
        ..c.clone()
    })
}

/// The stakeholder must exist and not have departed already; the date must not be in the future
/// nor before an interaction they took part in. Their active stakeholder-specific engagement
/// rules are retired in the same append: nobody can meet them any more, and leaving the rules
/// active would report them overdue forever.
fn record_stakeholder_departure(
    state: &AccountState,
    c: &StakeholderDeparted,
    now: Timestamp,
) -> Decision {
    check_past_date("departed_on", c.departed_on, now)?;
    let reason = optional_text("reason", &c.reason, MAX_TEXT_LEN)?;
    let stakeholder = require_stakeholder(state, &c.stakeholder_id)?;
    if let Some(departed_on) = stakeholder.departed_on {
        return Err(DomainError::FailedPrecondition(format!(
            "stakeholder {} already departed on {departed_on}",
            c.stakeholder_id
        )));
    }
    if let Some((id, interaction)) = interactions(state)?.iter().find(|(_, i)| {
        i.stakeholders.contains(&c.stakeholder_id) && i.occurred_at.date() > c.departed_on
    }) {
        return Err(DomainError::FailedPrecondition(format!(
            "stakeholder {} took part in interaction {id} on {}, after the departure date {}; \
             correct that interaction or the departure date",
            c.stakeholder_id,
            interaction.occurred_at.date(),
            c.departed_on
        )));
    }
    let mut events: Vec<AccountEvent> = vec![StakeholderDeparted {
        stakeholder_id: c.stakeholder_id.clone(),
        departed_on: c.departed_on,
        reason,
    }
    .into()];
    events.extend(
        state
            .rules
            .iter()
            .filter(|(_, r)| {
                r.retired.is_none()
                    && r.definition.target == RuleTarget::Stakeholder(c.stakeholder_id.clone())
            })
            .map(|(id, _)| {
                EngagementRuleRetired {
                    rule_id: id.clone(),
                    reason: format!(
                        "stakeholder {} departed on {}",
                        c.stakeholder_id, c.departed_on
                    ),
                }
                .into()
            }),
    );
    Ok(events)
}

// ================================================================= engagement

/// Cadence 1..=3650 days; channels non-empty and distinct; the owner a team member; the target
/// stakeholder current (not departed); the served opportunity existing and open. An active
/// rule may be redefined as a whole; a retired one stays retired.
fn set_engagement_rule(state: &AccountState, c: &EngagementRuleSet) -> Decision {
    if c.cadence_days == 0 || c.cadence_days > MAX_CADENCE_DAYS {
        return Err(DomainError::invalid(
            "cadence_days",
            format!(
                "must be between 1 and {MAX_CADENCE_DAYS} days, got {}",
                c.cadence_days
            ),
        ));
    }
    if c.channels.is_empty() {
        return Err(DomainError::invalid(
            "channels",
            "must name at least one channel that counts (e.g. in person, video call)",
        ));
    }
    check_unique("channels", &c.channels)?;
    if let Some(existing) = state.rules.get(&c.rule_id) {
        if existing.retired.is_some() {
            return Err(DomainError::FailedPrecondition(format!(
                "rule {} is retired; retired rules cannot be reactivated; use a new rule id",
                c.rule_id
            )));
        }
        if existing.definition == *c {
            return Err(DomainError::invalid(
                "rule_id",
                format!(
                    "rule {} already has exactly this definition; nothing to change",
                    c.rule_id
                ),
            ));
        }
    }
    require_team_member(state, "owner", &c.owner)?;
    if let RuleTarget::Stakeholder(id) = &c.target {
        let stakeholder = require_stakeholder(state, id)?;
        if let Some(departed_on) = stakeholder.departed_on {
            return Err(DomainError::FailedPrecondition(format!(
                "stakeholder {id} departed on {departed_on}; target their successor or a buying role"
            )));
        }
    }
    if let Some(id) = &c.opportunity_id {
        let opportunity = require_opportunity(state, id)?;
        require_open(id, opportunity)?;
    }
    one(c.clone())
}

/// The rule must exist and be active; the reason is required.
fn retire_engagement_rule(state: &AccountState, c: &EngagementRuleRetired) -> Decision {
    let reason = required_text("reason", &c.reason, MAX_TEXT_LEN)?;
    let rule = state.rules.get(&c.rule_id).ok_or_else(|| {
        DomainError::NotFound(format!("engagement rule {} does not exist", c.rule_id))
    })?;
    if let Some(why) = &rule.retired {
        return Err(DomainError::FailedPrecondition(format!(
            "engagement rule {} is already retired ({why})",
            c.rule_id
        )));
    }
    one(EngagementRuleRetired {
        rule_id: c.rule_id.clone(),
        reason,
    })
}

/// The id must be new; see [`check_interaction`] for the content.
fn log_interaction(state: &AccountState, c: &InteractionLogged, now: Timestamp) -> Decision {
    let details = check_interaction_arguments(&c.details, now)?;
    // Without the facts, the digests answer; `needs_interactions` restores the facts whenever
    // the digest of a command's id is already there, so this is then only a duplicate within
    // one batch.
    let logged = if state.interactions_dropped {
        state.interaction_ids.contains(&c.interaction_id)
    } else {
        state.interactions.contains_key(&c.interaction_id)
    };
    if logged {
        return Err(DomainError::AlreadyExists(format!(
            "interaction {} is already logged; use CorrectInteraction to change it",
            c.interaction_id
        )));
    }
    check_interaction(state, &details)?;
    one(InteractionLogged {
        interaction_id: c.interaction_id.clone(),
        details,
    })
}

/// The interaction must have been logged, the reason given and the content changed; the new
/// content is checked like a new interaction's.
fn correct_interaction(state: &AccountState, c: &InteractionCorrected, now: Timestamp) -> Decision {
    let details = check_interaction_arguments(&c.details, now)?;
    let reason = required_text("reason", &c.reason, MAX_TEXT_LEN)?;
    let logged = interactions(state)?.get(&c.interaction_id).ok_or_else(|| {
        DomainError::NotFound(format!(
            "interaction {} was never logged; use LogInteraction",
            c.interaction_id
        ))
    })?;
    if logged.has_content(&details) {
        return Err(DomainError::invalid(
            "details",
            format!(
                "are identical to the current content of interaction {}; nothing to correct",
                c.interaction_id
            ),
        ));
    }
    check_interaction(state, &details)?;
    one(InteractionCorrected {
        interaction_id: c.interaction_id.clone(),
        details,
        reason,
    })
}

// ================================================================= reviews

/// The id must be new, the plan (if any) must exist; an internal plan review needs a plan and a
/// QBR a customer attendee; at least one supplier attendee; customer attendees must be
/// stakeholders who have not departed before the due date.
fn schedule_review(state: &AccountState, c: &ReviewScheduled, now: Timestamp) -> Decision {
    check_date("due_on", c.due_on, now)?;
    if c.kind == ReviewKind::InternalPlanReview && c.plan_id.is_none() {
        return Err(DomainError::invalid(
            "plan_id",
            "an internal plan review must name the plan under review",
        ));
    }
    check_attendee_arguments(c.kind, &c.supplier_attendees, &c.customer_attendees)?;
    if state.reviews.contains_key(&c.review_id) {
        return Err(DomainError::AlreadyExists(format!(
            "review {} already exists",
            c.review_id
        )));
    }
    if let Some(plan_id) = &c.plan_id {
        require_plan(state, plan_id)?;
    }
    check_customer_attendees(state, &c.customer_attendees, c.due_on)?;
    one(c.clone())
}

/// The review must be scheduled (not held, not cancelled); `held_on` not in the future;
/// attendees as for scheduling; each decision non-empty; each follow-up action a new, distinct
/// action item with a title, a sane due date and an owner in the team.
fn record_review_outcome(
    state: &AccountState,
    c: &ReviewOutcomeRecorded,
    now: Timestamp,
) -> Decision {
    check_past_date("held_on", c.held_on, now)?;
    let decisions = c
        .decisions
        .iter()
        .map(|d| required_text("decisions", d, MAX_TEXT_LEN))
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<&ActionItemId> = c
        .follow_up_actions
        .iter()
        .map(|f| &f.action_item_id)
        .collect();
    check_unique("follow_up_actions.action_item_id", &ids)?;
    let mut follow_up_actions = Vec::with_capacity(c.follow_up_actions.len());
    for f in &c.follow_up_actions {
        check_date("follow_up_actions.due_on", f.due_on, now)?;
        follow_up_actions.push(FollowUpAction {
            title: required_text("follow_up_actions.title", &f.title, MAX_NAME_LEN)?,
            ..f.clone()
        });
    }
    let review = require_review(state, &c.review_id)?;
    check_attendee_arguments(
        review.scheduled.kind,
        &c.supplier_attendees,
        &c.customer_attendees,
    )?;
    require_scheduled(&c.review_id, review)?;
    check_customer_attendees(state, &c.customer_attendees, c.held_on)?;
    for f in &follow_up_actions {
        if state.action_items.contains_key(&f.action_item_id) {
            return Err(DomainError::AlreadyExists(format!(
                "follow-up action {} collides with an existing action item; choose a new id",
                f.action_item_id
            )));
        }
        require_team_member(state, "follow-up owner", &f.owner)?;
    }
    one(ReviewOutcomeRecorded {
        decisions,
        follow_up_actions,
        ..c.clone()
    })
}

/// The review must be scheduled; the reason is required.
fn cancel_review(state: &AccountState, c: &ReviewCancelled) -> Decision {
    let reason = required_text("reason", &c.reason, MAX_TEXT_LEN)?;
    let review = require_review(state, &c.review_id)?;
    require_scheduled(&c.review_id, review)?;
    one(ReviewCancelled {
        review_id: c.review_id.clone(),
        reason,
    })
}

// ================================================================= shared checks

fn one(event: impl Into<AccountEvent>) -> Decision {
    Ok(vec![event.into()])
}

/// Trims `value` and requires it to be non-empty and at most `max` characters.
fn required_text(field: &'static str, value: &str, max: usize) -> Result<String, DomainError> {
    let text = optional_text(field, value, max)?;
    if text.is_empty() {
        return Err(DomainError::invalid(
            field,
            "is required and must not be blank",
        ));
    }
    Ok(text)
}

/// Trims `value` and requires it to be at most `max` characters (it may be empty), without
/// control characters: free text (limit [`MAX_TEXT_LEN`]) may hold tabs and line breaks,
/// one-line labels (limit [`MAX_NAME_LEN`]) may not.
fn optional_text(field: &'static str, value: &str, max: usize) -> Result<String, DomainError> {
    let text = value.trim();
    let len = text.chars().count();
    if len > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters, got {len}"),
        ));
    }
    crate::text::check_no_control(field, text, max > MAX_NAME_LEN)?;
    Ok(text.to_owned())
}

/// A business date must lie between [`EARLIEST_DATE`] and [`MAX_YEARS_AHEAD`] years from today.
fn check_date(field: &'static str, date: Date, now: Timestamp) -> Result<(), DomainError> {
    let latest = now
        .date()
        .checked_add_months(Months::new(12 * MAX_YEARS_AHEAD))
        .unwrap_or(NaiveDate::MAX);
    if date < EARLIEST_DATE || date > latest {
        return Err(DomainError::invalid(
            field,
            format!("must be between {EARLIEST_DATE} and {latest}, got {date}"),
        ));
    }
    Ok(())
}

/// A date of something that already happened: sane, and at most [`PAST_DATE_SLACK_DAYS`] after
/// the server's date.
fn check_past_date(field: &'static str, date: Date, now: Timestamp) -> Result<(), DomainError> {
    check_date(field, date, now)?;
    let latest = now
        .date()
        .checked_add_days(Days::new(PAST_DATE_SLACK_DAYS))
        .unwrap_or(NaiveDate::MAX);
    if date > latest {
        return Err(DomainError::invalid(
            field,
            format!(
                "must not be in the future (today is {}), got {date}",
                now.date()
            ),
        ));
    }
    Ok(())
}

/// Refuses a list that names the same value twice.
fn check_unique<T: Ord + Display>(field: &'static str, values: &[T]) -> Result<(), DomainError> {
    let mut seen = BTreeSet::new();
    for value in values {
        if !seen.insert(value) {
            return Err(DomainError::invalid(
                field,
                format!("lists {value} more than once"),
            ));
        }
    }
    Ok(())
}

fn check_influence(influence: u8) -> Result<(), DomainError> {
    if !(MIN_INFLUENCE..=MAX_INFLUENCE).contains(&influence) {
        return Err(DomainError::invalid(
            "influence",
            format!(
                "must be between {MIN_INFLUENCE} (low) and {MAX_INFLUENCE} (high), got {influence}"
            ),
        ));
    }
    Ok(())
}

fn current_tier(state: &AccountState) -> Result<Tier, DomainError> {
    state.profile.as_ref().map(|p| p.tier).ok_or_else(|| {
        DomainError::NotFound("account is not registered; send RegisterAccount first".into())
    })
}

fn require_team_member<'a>(
    state: &'a AccountState,
    what: &str,
    person: &PersonId,
) -> Result<&'a TeamMember, DomainError> {
    state.team.get(person).ok_or_else(|| {
        DomainError::NotFound(format!(
            "person {person} ({what}) is not in the key account team; assign them first"
        ))
    })
}

fn require_stakeholder<'a>(
    state: &'a AccountState,
    id: &StakeholderId,
) -> Result<&'a Stakeholder, DomainError> {
    state.stakeholders.get(id).ok_or_else(|| {
        DomainError::NotFound(format!(
            "stakeholder {id} is not in this account's decision-making unit; add them first"
        ))
    })
}

fn require_plan<'a>(state: &'a AccountState, id: &PlanId) -> Result<&'a Plan, DomainError> {
    state
        .plans
        .get(id)
        .ok_or_else(|| DomainError::NotFound(format!("plan {id} does not exist; draft it first")))
}

fn require_objective<'a>(
    state: &'a AccountState,
    id: &ObjectiveId,
) -> Result<&'a Objective, DomainError> {
    state
        .objectives
        .get(id)
        .ok_or_else(|| DomainError::NotFound(format!("objective {id} does not exist")))
}

fn require_opportunity<'a>(
    state: &'a AccountState,
    id: &OpportunityId,
) -> Result<&'a Opportunity, DomainError> {
    state
        .opportunities
        .get(id)
        .ok_or_else(|| DomainError::NotFound(format!("opportunity {id} does not exist")))
}

fn require_review<'a>(state: &'a AccountState, id: &ReviewId) -> Result<&'a Review, DomainError> {
    state
        .reviews
        .get(id)
        .ok_or_else(|| DomainError::NotFound(format!("review {id} does not exist")))
}

/// The stage of an open opportunity, or why it is closed.
fn require_open(id: &OpportunityId, o: &Opportunity) -> Result<OpportunityStage, DomainError> {
    match &o.status {
        OpportunityStatus::Open(stage) => Ok(*stage),
        OpportunityStatus::Won { closed_on, .. } => Err(DomainError::FailedPrecondition(format!(
            "opportunity {id} was already won on {closed_on}; a closed opportunity cannot change"
        ))),
        OpportunityStatus::Lost { closed_on, .. } => Err(DomainError::FailedPrecondition(format!(
            "opportunity {id} was already lost on {closed_on}; a closed opportunity cannot change; \
             identify a new opportunity if the customer comes back"
        ))),
    }
}

fn require_open_action_item(state: &AccountState, id: &ActionItemId) -> Result<(), DomainError> {
    let item = state
        .action_items
        .get(id)
        .ok_or_else(|| DomainError::NotFound(format!("action item {id} does not exist")))?;
    match &item.status {
        ActionItemStatus::Open => Ok(()),
        ActionItemStatus::Completed(on) => Err(DomainError::FailedPrecondition(format!(
            "action item {id} was already completed on {on}"
        ))),
        ActionItemStatus::Cancelled(why) => Err(DomainError::FailedPrecondition(format!(
            "action item {id} was already cancelled ({why})"
        ))),
    }
}

fn require_scheduled(id: &ReviewId, review: &Review) -> Result<(), DomainError> {
    match &review.status {
        ReviewStatus::Scheduled => Ok(()),
        ReviewStatus::Held(outcome) => Err(DomainError::FailedPrecondition(format!(
            "review {id} was already held on {}; schedule a new review",
            outcome.held_on
        ))),
        ReviewStatus::Cancelled(why) => Err(DomainError::FailedPrecondition(format!(
            "review {id} was cancelled ({why}); schedule a new review"
        ))),
    }
}

/// `manager` must be a current stakeholder, not `who`, and not someone who (directly or through
/// others) reports to `who`: an org chart has no cycles.
fn check_reports_to(
    state: &AccountState,
    who: &StakeholderId,
    manager: &StakeholderId,
) -> Result<(), DomainError> {
    if manager == who {
        return Err(DomainError::FailedPrecondition(format!(
            "stakeholder {who} cannot report to themselves"
        )));
    }
    let boss = require_stakeholder(state, manager)?;
    if let Some(departed_on) = boss.departed_on {
        return Err(DomainError::FailedPrecondition(format!(
            "stakeholder {manager} departed on {departed_on}; \
             {who} cannot report to them; choose their successor"
        )));
    }
    let mut chain = vec![manager.as_str()];
    let mut seen = BTreeSet::from([manager]);
    let mut next = boss.reports_to.as_ref();
    while let Some(id) = next {
        chain.push(id.as_str());
        if id == who {
            return Err(DomainError::FailedPrecondition(format!(
                "{who} reporting to {manager} would create a reporting cycle: {who} -> {}",
                chain.join(" -> ")
            )));
        }
        if !seen.insert(id) {
            break; // an older cycle not involving `who`; nothing new is created
        }
        next = state
            .stakeholders
            .get(id)
            .and_then(|s| s.reports_to.as_ref());
    }
    Ok(())
}

/// Stateless checks of an interaction's content; returns it with trimmed text.
///
/// `occurred_at` must be after [`EARLIEST_INTERACTION`] and at most five minutes ahead of the
/// server (an interaction is logged after it happened); at least one stakeholder and one
/// participant, none twice; a summary.
fn check_interaction_arguments(
    d: &InteractionDetails,
    now: Timestamp,
) -> Result<InteractionDetails, DomainError> {
    if d.occurred_at < EARLIEST_INTERACTION {
        return Err(DomainError::invalid(
            "details.occurred_at",
            format!(
                "must not be before {EARLIEST_INTERACTION}, got {}",
                d.occurred_at
            ),
        ));
    }
    let latest = Timestamp(now.0.saturating_add(INTERACTION_CLOCK_SKEW_MICROS));
    if d.occurred_at > latest {
        return Err(DomainError::invalid(
            "details.occurred_at",
            format!(
                "must not be in the future (server time is {now}), got {}; \
                 log an interaction after it happened",
                d.occurred_at
            ),
        ));
    }
    if d.stakeholders.is_empty() {
        return Err(DomainError::invalid(
            "details.stakeholders",
            "must name at least one customer stakeholder who took part",
        ));
    }
    check_unique("details.stakeholders", &d.stakeholders)?;
    if d.participants.is_empty() {
        return Err(DomainError::invalid(
            "details.participants",
            "must name at least one supplier person who took part",
        ));
    }
    check_unique("details.participants", &d.participants)?;
    Ok(InteractionDetails {
        summary: required_text("details.summary", &d.summary, MAX_TEXT_LEN)?,
        next_step: optional_text("details.next_step", &d.next_step, MAX_TEXT_LEN)?,
        ..d.clone()
    })
}

/// Checks of an interaction's content against the state: every stakeholder exists and had not
/// departed before the day it happened (the farewell meeting on the last day counts); the
/// opportunity discussed, if any, exists. Supplier participants need not be in the team:
/// colleagues from outside it join calls.
fn check_interaction(state: &AccountState, d: &InteractionDetails) -> Result<(), DomainError> {
    let day = d.occurred_at.date();
    for id in &d.stakeholders {
        let stakeholder = require_stakeholder(state, id)?;
        if let Some(departed_on) = stakeholder.departed_on.filter(|&on| on < day) {
            return Err(DomainError::FailedPrecondition(format!(
                "stakeholder {id} departed on {departed_on}, before this interaction on {day}"
            )));
        }
    }
    if let Some(id) = &d.opportunity_id {
        require_opportunity(state, id)?;
    }
    Ok(())
}

/// Stateless checks of review attendees: at least one supplier attendee, none twice, and a
/// customer attendee for a quarterly business review (it is held with the customer).
fn check_attendee_arguments(
    kind: ReviewKind,
    supplier: &[PersonId],
    customer: &[StakeholderId],
) -> Result<(), DomainError> {
    if supplier.is_empty() {
        return Err(DomainError::invalid(
            "supplier_attendees",
            "must name at least one supplier attendee",
        ));
    }
    check_unique("supplier_attendees", supplier)?;
    check_unique("customer_attendees", customer)?;
    if kind == ReviewKind::QuarterlyBusinessReview && customer.is_empty() {
        return Err(DomainError::invalid(
            "customer_attendees",
            "a quarterly business review is held with the customer; name at least one stakeholder",
        ));
    }
    Ok(())
}

/// Customer attendees must be stakeholders of this account who had not departed before `on`.
/// Supplier attendees may be anyone (management, a KAM champion, experts).
fn check_customer_attendees(
    state: &AccountState,
    attendees: &[StakeholderId],
    on: Date,
) -> Result<(), DomainError> {
    for id in attendees {
        let stakeholder = require_stakeholder(state, id)?;
        if let Some(departed_on) = stakeholder.departed_on.filter(|&d| d < on) {
            return Err(DomainError::FailedPrecondition(format!(
                "stakeholder {id} departed on {departed_on}, before the review on {on}"
            )));
        }
    }
    Ok(())
}

fn describe_period(period: &PlanPeriod) -> String {
    match period.end {
        Some(end) => format!("{} to {end}", period.start),
        None => format!("from {}", period.start),
    }
}
