//! The current state of an account (`AccountState`) to its wire read models.
//!
//! Maps become repeated fields in key order (the `BTreeMap` order), so responses are stable
//! and diffable; each entry carries its key, which the domain keeps as the map key.

use keyplan_domain::ids::InteractionId;
use keyplan_domain::state::{
    self as st, AccountState, ActionItemStatus, OpportunityStatus, ReviewStatus,
};
use keyplan_domain::values::TeamRole;

use super::values::*;
use crate::pb;

/// Interactions an `Account` answer carries when the request does not say.
pub const DEFAULT_INTERACTIONS: usize = 100;

/// Most interactions an `Account` answer carries: with the text left out an interaction is a
/// few hundred bytes on the wire, so this keeps the answer far below the 4 MiB message limit
/// whatever the account's history.
pub const MAX_INTERACTIONS: usize = 1000;

/// The current state of one account, with its `max_interactions` most recent interactions.
///
/// `tenant` and `account_id` are passed in because the state, folded from the account's own
/// stream, does not know its address. For an account never registered (`!s.exists()`) the
/// profile fields are empty and the tier unspecified: services answer NOT_FOUND instead. A
/// state that dropped its interactions' facts ([`AccountState::interactions_dropped`]) lists
/// none, though `interactions_total` still counts them: the read models keep the facts.
pub fn account_to_proto(
    tenant: &str,
    account_id: &str,
    s: &AccountState,
    max_interactions: usize,
) -> pb::Account {
    let profile = s.profile.as_ref();
    pb::Account {
        tenant: tenant.to_owned(),
        account_id: account_id.to_owned(),
        version: s.version,
        name: profile.map(|p| p.name.clone()).unwrap_or_default(),
        industry: profile.map(|p| p.industry.clone()).unwrap_or_default(),
        region: profile.map(|p| p.region.clone()).unwrap_or_default(),
        headquarters: profile.map(|p| p.headquarters.clone()).unwrap_or_default(),
        tier: profile.map(|p| p.tier.to_wire()).unwrap_or_default(),
        last_assessment: s.last_assessment.as_ref().map(Into::into),
        team: s
            .team
            .iter()
            .map(|(person_id, m)| pb::TeamMember {
                person_id: person_id.to_string(),
                name: m.name.clone(),
                role: m.role.to_wire(),
            })
            .collect(),
        plans: s.plans.values().map(plan_to_wire).collect(),
        objectives: s.objectives.values().map(objective_to_wire).collect(),
        opportunities: s.opportunities.values().map(opportunity_to_wire).collect(),
        action_items: s.action_items.values().map(action_item_to_wire).collect(),
        revenue: s.revenue.iter().map(Into::into).collect(),
        stakeholders: s
            .stakeholders
            .iter()
            .map(|(stakeholder_id, x)| pb::Stakeholder {
                stakeholder_id: stakeholder_id.to_string(),
                name: x.name.clone(),
                title: x.title.clone(),
                reports_to: optional_id_to_wire(x.reports_to.as_ref()),
                buying_role: x.buying_role.to_wire(),
                influence: u32::from(x.influence),
                attitude: x.attitude.to_wire(),
                departed_on: optional_date_to_wire(x.departed_on),
            })
            .collect(),
        engagement_rules: s
            .rules
            .values()
            .map(|r| pb::EngagementRule {
                definition: Some((&r.definition).into()),
                retired: r.retired.is_some(),
                retire_reason: r.retired.clone().unwrap_or_default(),
            })
            .collect(),
        interactions: newest_interactions(s, max_interactions)
            .into_iter()
            .map(|(interaction_id, i)| interaction_to_wire(interaction_id, i))
            .collect(),
        reviews: s.reviews.values().map(review_to_wire).collect(),
        interactions_total: saturating(s.interaction_ids.len()),
    }
}

/// The `limit` interactions with the latest `occurred_at` (ties: interaction id), newest
/// first, without sorting the whole history.
fn newest_interactions(s: &AccountState, limit: usize) -> Vec<(&InteractionId, &st::Interaction)> {
    let order = |a: &(&InteractionId, &st::Interaction), b: &(&InteractionId, &st::Interaction)| {
        b.1.occurred_at
            .cmp(&a.1.occurred_at)
            .then_with(|| a.0.cmp(b.0))
    };
    let mut all: Vec<_> = s.interactions.iter().collect();
    if all.len() > limit {
        if limit == 0 {
            return Vec::new();
        }
        all.select_nth_unstable_by(limit - 1, order);
        all.truncate(limit);
    }
    all.sort_unstable_by(order);
    all
}

fn interaction_to_wire(id: &InteractionId, i: &st::Interaction) -> pb::Interaction {
    pb::Interaction {
        interaction_id: id.to_string(),
        details: Some(pb::InteractionDetails {
            occurred_at: Some(timestamp_to_proto(i.occurred_at)),
            channel: i.channel.to_wire(),
            stakeholders: ids_to_wire(&i.stakeholders),
            participants: ids_to_wire(&i.participants),
            summary: String::new(),
            sentiment: i.sentiment.to_wire(),
            next_step: String::new(),
            opportunity_id: optional_id_to_wire(i.opportunity_id.as_ref()),
        }),
        corrections: i.corrections,
        content_sha256: i.content_hash.to_vec(),
    }
}

/// One line of a portfolio list: the profile and a few counts a manager scans for.
///
/// Counts are of what is current: stakeholders not departed, rules not retired,
/// opportunities neither won nor lost.
pub fn account_summary_to_proto(account_id: &str, s: &AccountState) -> pb::AccountSummary {
    let profile = s.profile.as_ref();
    pb::AccountSummary {
        account_id: account_id.to_owned(),
        name: profile.map(|p| p.name.clone()).unwrap_or_default(),
        industry: profile.map(|p| p.industry.clone()).unwrap_or_default(),
        region: profile.map(|p| p.region.clone()).unwrap_or_default(),
        tier: profile.map(|p| p.tier.to_wire()).unwrap_or_default(),
        version: s.version,
        key_account_manager: s
            .team
            .values()
            .find(|m| m.role == TeamRole::KeyAccountManager)
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        stakeholders: count(s.stakeholders.values().filter(|x| x.departed_on.is_none())),
        active_rules: count(s.rules.values().filter(|r| r.retired.is_none())),
        open_opportunities: count(
            s.opportunities
                .values()
                .filter(|o| matches!(o.status, OpportunityStatus::Open(_))),
        ),
        interactions: saturating(s.interaction_ids.len()),
    }
}

/// A count for a `uint32` field; saturates rather than wraps (four billion interactions on
/// one account would be a bug elsewhere, not a reason to show a small number).
fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    saturating(items.count())
}

/// `n` for a `uint32` field, saturated (see [`count`]).
fn saturating(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn plan_to_wire(p: &st::Plan) -> pb::Plan {
    pb::Plan {
        drafted: Some((&p.drafted).into()),
        sections: p
            .sections
            .iter()
            .map(|(section, text)| pb::PlanSectionText {
                section: section.to_wire(),
                text: text.clone(),
            })
            .collect(),
    }
}

fn objective_to_wire(o: &st::Objective) -> pb::Objective {
    pb::Objective {
        definition: Some((&o.definition).into()),
        status: o.status.to_wire(),
        current_value: o.current_value.clone(),
    }
}

fn opportunity_to_wire(o: &st::Opportunity) -> pb::Opportunity {
    use pb::opportunity::{Lost, Open, Status, Won};
    let status = match &o.status {
        OpportunityStatus::Open(stage) => Status::Open(Open {
            stage: stage.to_wire(),
        }),
        OpportunityStatus::Won {
            value,
            closed_on,
            reason,
        } => Status::Won(Won {
            value: money_to_wire(value),
            closed_on: date_to_wire(*closed_on),
            reason: reason.clone(),
        }),
        OpportunityStatus::Lost { closed_on, reason } => Status::Lost(Lost {
            closed_on: date_to_wire(*closed_on),
            reason: reason.clone(),
        }),
    };
    pb::Opportunity {
        identified: Some((&o.identified).into()),
        expected_close_on: date_to_wire(o.expected_close_on),
        status: Some(status),
    }
}

fn action_item_to_wire(a: &st::ActionItem) -> pb::ActionItem {
    let (status, completed_on, cancel_reason) = match &a.status {
        ActionItemStatus::Open => (pb::ActionItemStatus::Open, String::new(), String::new()),
        ActionItemStatus::Completed(on) => (
            pb::ActionItemStatus::Completed,
            date_to_wire(*on),
            String::new(),
        ),
        ActionItemStatus::Cancelled(reason) => (
            pb::ActionItemStatus::Cancelled,
            String::new(),
            reason.clone(),
        ),
    };
    pb::ActionItem {
        added: Some((&a.added).into()),
        status: status.into(),
        completed_on,
        cancel_reason,
    }
}

fn review_to_wire(r: &st::Review) -> pb::Review {
    let (status, outcome, cancel_reason) = match &r.status {
        ReviewStatus::Scheduled => (pb::ReviewStatus::Scheduled, None, String::new()),
        ReviewStatus::Held(outcome) => {
            (pb::ReviewStatus::Held, Some(outcome.into()), String::new())
        }
        ReviewStatus::Cancelled(reason) => (pb::ReviewStatus::Cancelled, None, reason.clone()),
    };
    pb::Review {
        scheduled: Some((&r.scheduled).into()),
        status: status.into(),
        outcome,
        cancel_reason,
    }
}
