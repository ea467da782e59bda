//! Human-readable renderings for auditors: instants, values, and a one-line description of
//! every event type.
//!
//! These strings are meant to be read, not parsed: the structured fields next to them (and
//! the JSON export) are the machine-readable form.

use chrono::{DateTime, SecondsFormat, Utc};
use keyplan_domain::events::*;
use keyplan_domain::values::{Money, Timestamp};
use keyplan_domain::AccountEvent;

/// Longest excerpt of free text quoted in a one-line description, in characters.
const EXCERPT_CHARS: usize = 60;

/// An instant as RFC 3339 UTC, with as many fractional digits as it needs.
pub(crate) fn instant(t: Timestamp) -> String {
    match DateTime::<Utc>::from_timestamp_micros(t.as_micros()) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => format!("{}us", t.as_micros()),
    }
}

/// An instant as RFC 3339 UTC with exactly six fractional digits (fixed width, for exports).
pub(crate) fn instant_micros(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => format!("{micros}us"),
    }
}

/// `text` cut to [`EXCERPT_CHARS`] characters, with an ellipsis if cut.
pub(crate) fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// Items joined with ", ".
pub(crate) fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A margin in basis points as a percentage ("12.34 %").
pub(crate) fn margin(basis_points: i32) -> String {
    let sign = if basis_points < 0 { "-" } else { "" };
    let bp = basis_points.unsigned_abs();
    format!("{sign}{}.{:02} %", bp / 100, bp % 100)
}

/// A weighted score in thousandths as a decimal ("7.250").
pub(crate) fn score(milli: u32) -> String {
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

/// What an action item contributes to, e.g. "objective obj-share".
pub(crate) fn action_link(link: &ActionLink) -> String {
    match link {
        ActionLink::Objective(id) => format!("objective {id}"),
        ActionLink::Opportunity(id) => format!("opportunity {id}"),
        ActionLink::Review(id) => format!("review {id}"),
    }
}

/// Whom an engagement rule targets, e.g. "stakeholder lee.park".
pub(crate) fn rule_target(target: &RuleTarget) -> String {
    match target {
        RuleTarget::Stakeholder(id) => format!("stakeholder {id}"),
        RuleTarget::BuyingRole(role) => format!("every {role}"),
    }
}

fn money(m: &Money) -> String {
    m.to_string()
}

fn with_reason(head: String, reason: &str) -> String {
    if reason.is_empty() {
        head
    } else {
        format!("{head}: {}", excerpt(reason))
    }
}

/// What an event says, in one line.
pub(crate) fn describe(event: &AccountEvent) -> String {
    match event {
        AccountEvent::AccountRegistered(e) => format!(
            "account {:?} registered as {} ({}, {}, headquarters {})",
            e.name, e.tier, e.industry, e.region, e.headquarters
        ),
        AccountEvent::TierAssessed(e) => format!(
            "tier assessed by {} on {} criteria: weighted score {}, recommends {}",
            e.assessed_by,
            e.criteria.len(),
            score(e.weighted_score_milli),
            e.recommended_tier
        ),
        AccountEvent::AccountPromoted(e) => with_reason(
            format!("account promoted from {} to {}", e.from, e.to),
            &e.reason,
        ),
        AccountEvent::AccountDemoted(e) => with_reason(
            format!("account demoted from {} to {}", e.from, e.to),
            &e.reason,
        ),
        AccountEvent::TeamMemberAssigned(e) => format!(
            "{} ({}) assigned to the team as {}",
            e.name, e.person_id, e.role
        ),
        AccountEvent::TeamMemberUnassigned(e) => with_reason(
            format!("{} unassigned from the team", e.person_id),
            &e.reason,
        ),
        AccountEvent::PlanDrafted(e) => format!(
            "plan {} drafted by {} on {}: {} from {}{}, reviewed {}",
            e.plan_id,
            e.prepared_by,
            e.prepared_on,
            e.period.kind,
            e.period.start,
            e.period.end.map(|d| format!(" to {d}")).unwrap_or_default(),
            e.review_frequency.as_str()
        ),
        AccountEvent::PlanSectionRevised(e) => format!(
            "plan {} section {:?} revised: {:?}",
            e.plan_id,
            e.section.as_str(),
            excerpt(&e.text)
        ),
        AccountEvent::ObjectiveSet(e) => format!(
            "objective {} of plan {} set: {:?}, {} to reach {} by {} (owner {}, {})",
            e.objective_id, e.plan_id, e.title, e.metric, e.target, e.due_on, e.owner, e.status
        ),
        AccountEvent::ObjectiveProgressed(e) => with_reason(
            format!(
                "objective {} progressed: {}, now at {:?}",
                e.objective_id, e.status, e.current_value
            ),
            &e.note,
        ),
        AccountEvent::OpportunityIdentified(e) => format!(
            "opportunity {} identified: {:?}, {}, {}, expected to close by {} (owner {})",
            e.opportunity_id,
            e.title,
            money(&e.value),
            e.stage,
            e.expected_close_on,
            e.owner
        ),
        AccountEvent::OpportunityStageChanged(e) => format!(
            "opportunity {} moved to {}{}",
            e.opportunity_id,
            e.stage,
            e.expected_close_on
                .map(|d| format!(", expected to close by {d}"))
                .unwrap_or_default()
        ),
        AccountEvent::OpportunityWon(e) => with_reason(
            format!(
                "opportunity {} won on {} for {}",
                e.opportunity_id,
                e.closed_on,
                money(&e.value)
            ),
            &e.reason,
        ),
        AccountEvent::OpportunityLost(e) => with_reason(
            format!("opportunity {} lost on {}", e.opportunity_id, e.closed_on),
            &e.reason,
        ),
        AccountEvent::ActionItemAdded(e) => format!(
            "action item {} added: {:?}, owner {}, due {}{}",
            e.action_item_id,
            e.title,
            e.owner,
            e.due_on,
            e.link
                .as_ref()
                .map(|l| format!(", for {}", action_link(l)))
                .unwrap_or_default()
        ),
        AccountEvent::ActionItemCompleted(e) => with_reason(
            format!(
                "action item {} completed on {}",
                e.action_item_id, e.completed_on
            ),
            &e.note,
        ),
        AccountEvent::ActionItemCancelled(e) => with_reason(
            format!("action item {} cancelled", e.action_item_id),
            &e.reason,
        ),
        AccountEvent::RevenueRecorded(e) => format!(
            "revenue {} to {} ({}): {} against a goal of {}{}",
            e.period_start,
            e.period_end,
            if e.product.is_empty() {
                "all products"
            } else {
                &e.product
            },
            money(&e.actual),
            money(&e.goal),
            e.margin_basis_points
                .map(|m| format!(", margin {}", margin(m)))
                .unwrap_or_default()
        ),
        AccountEvent::StakeholderAdded(e) => format!(
            "stakeholder {} added: {}, {}, {}, influence {}, {}{}",
            e.stakeholder_id,
            e.name,
            e.title,
            e.buying_role,
            e.influence,
            e.attitude,
            e.reports_to
                .as_ref()
                .map(|m| format!(", reports to {m}"))
                .unwrap_or_default()
        ),
        AccountEvent::StakeholderProfileChanged(e) => {
            let mut parts = Vec::new();
            if let Some(title) = &e.title {
                parts.push(format!("title {title:?}"));
            }
            if e.clear_reports_to {
                parts.push("reports to nobody".to_owned());
            } else if let Some(manager) = &e.reports_to {
                parts.push(format!("reports to {manager}"));
            }
            if let Some(role) = e.buying_role {
                parts.push(format!("buying role {role}"));
            }
            if let Some(influence) = e.influence {
                parts.push(format!("influence {influence}"));
            }
            if let Some(attitude) = e.attitude {
                parts.push(format!("attitude {attitude}"));
            }
            with_reason(
                format!(
                    "stakeholder {} changed: {}",
                    e.stakeholder_id,
                    parts.join(", ")
                ),
                &e.note,
            )
        }
        AccountEvent::StakeholderDeparted(e) => with_reason(
            format!(
                "stakeholder {} departed on {}",
                e.stakeholder_id, e.departed_on
            ),
            &e.reason,
        ),
        AccountEvent::EngagementRuleSet(e) => format!(
            "engagement rule {} set: {} keeps contact with {} every {} days ({}){}",
            e.rule_id,
            e.owner,
            rule_target(&e.target),
            e.cadence_days,
            list(&e.channels),
            e.opportunity_id
                .as_ref()
                .map(|o| format!(", for opportunity {o}"))
                .unwrap_or_default()
        ),
        AccountEvent::EngagementRuleRetired(e) => {
            with_reason(format!("engagement rule {} retired", e.rule_id), &e.reason)
        }
        AccountEvent::InteractionLogged(e) => format!(
            "interaction {} logged: {} on {} with {}: {:?} ({})",
            e.interaction_id,
            e.details.channel,
            instant(e.details.occurred_at),
            list(&e.details.stakeholders),
            excerpt(&e.details.summary),
            e.details.sentiment
        ),
        AccountEvent::InteractionCorrected(e) => with_reason(
            format!(
                "interaction {} corrected to: {} on {} with {}: {:?} ({})",
                e.interaction_id,
                e.details.channel,
                instant(e.details.occurred_at),
                list(&e.details.stakeholders),
                excerpt(&e.details.summary),
                e.details.sentiment
            ),
            &e.reason,
        ),
        AccountEvent::ReviewScheduled(e) => format!(
            "review {} scheduled: {}{} due {}",
            e.review_id,
            e.kind,
            e.plan_id
                .as_ref()
                .map(|p| format!(" of plan {p}"))
                .unwrap_or_default(),
            e.due_on
        ),
        AccountEvent::ReviewOutcomeRecorded(e) => format!(
            "review {} held on {}: {}, health {}, {} decision(s), {} follow-up action(s)",
            e.review_id,
            e.held_on,
            e.outcome,
            e.health,
            e.decisions.len(),
            e.follow_up_actions.len()
        ),
        AccountEvent::ReviewCancelled(e) => {
            with_reason(format!("review {} cancelled", e.review_id), &e.reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_show_only_the_digits_they_need() {
        assert_eq!(instant(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(instant(Timestamp(1_500)), "1970-01-01T00:00:00.001500Z");
        assert_eq!(instant_micros(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn excerpts_cut_on_characters_not_bytes() {
        let long = "é".repeat(EXCERPT_CHARS + 5);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn margins_and_scores_are_decimal() {
        assert_eq!(margin(1234), "12.34 %");
        assert_eq!(margin(-5), "-0.05 %");
        assert_eq!(score(7250), "7.250");
    }
}
