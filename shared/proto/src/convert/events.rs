//! Event payloads: one `TryFrom<pb::X>` (wire -> domain) and one `From<&X>` (domain -> wire)
//! per payload type, then the dispatch over the `EventPayload` oneof.
//!
//! Most commands carry an event payload (see `commands.rs`), so these conversions are the
//! validation of those commands too. Error field names are paths within the payload
//! (`details.channel`), which is what a client sees in the command it built.

use keyplan_domain::events::{self as ev, AccountEvent};
use keyplan_domain::DomainError;

use super::values::*;
use crate::pb;

/// Calls `$mac!` with every event type; the domain's `AccountEvent` variants, the payload
/// structs and the `EventPayload` oneof variants all share these names.
macro_rules! with_event_types {
    ($mac:ident) => {
        $mac! {
            AccountRegistered,
            TierAssessed,
            AccountPromoted,
            AccountDemoted,
            TeamMemberAssigned,
            TeamMemberUnassigned,
            PlanDrafted,
            PlanSectionRevised,
            ObjectiveSet,
            ObjectiveProgressed,
            OpportunityIdentified,
            OpportunityStageChanged,
            OpportunityWon,
            OpportunityLost,
            ActionItemAdded,
            ActionItemCompleted,
            ActionItemCancelled,
            RevenueRecorded,
            StakeholderAdded,
            StakeholderProfileChanged,
            StakeholderDeparted,
            EngagementRuleSet,
            EngagementRuleRetired,
            InteractionLogged,
            InteractionCorrected,
            ReviewScheduled,
            ReviewOutcomeRecorded,
            ReviewCancelled,
        }
    };
}

macro_rules! payload_dispatch {
    ($($variant:ident),+ $(,)?) => {
        /// The wire form of an event's payload.
        pub fn event_payload_to_proto(event: &AccountEvent) -> pb::EventPayload {
            let event = match event {
                $(AccountEvent::$variant(e) => pb::event_payload::Event::$variant(e.into()),)+
            };
            pb::EventPayload { event: Some(event) }
        }

        /// An event payload from the wire, validated field by field.
        ///
        /// Used for events fed in by other services, and as the inverse of
        /// [`event_payload_to_proto`]: `event_payload_from_proto(event_payload_to_proto(e))`
        /// is `Ok(e)` for every event.
        pub fn event_payload_from_proto(payload: pb::EventPayload) -> Result<AccountEvent, DomainError> {
            Ok(match required("event", payload.event)? {
                $(pb::event_payload::Event::$variant(p) => AccountEvent::$variant(p.try_into()?),)+
            })
        }
    };
}

with_event_types!(payload_dispatch);

// ---------------------------------------------------------------- account

impl TryFrom<pb::AccountRegistered> for ev::AccountRegistered {
    type Error = DomainError;
    fn try_from(w: pb::AccountRegistered) -> Result<Self, DomainError> {
        Ok(Self {
            name: w.name,
            industry: w.industry,
            region: w.region,
            headquarters: w.headquarters,
            tier: enumeration("tier", w.tier)?,
        })
    }
}

impl From<&ev::AccountRegistered> for pb::AccountRegistered {
    fn from(e: &ev::AccountRegistered) -> Self {
        Self {
            name: e.name.clone(),
            industry: e.industry.clone(),
            region: e.region.clone(),
            headquarters: e.headquarters.clone(),
            tier: e.tier.to_wire(),
        }
    }
}

/// Tier criteria, shared by `TierAssessed` and the `AssessTier` command (both call the list
/// `criteria`).
pub(crate) fn criteria_from_wire(
    criteria: Vec<pb::TierCriterion>,
) -> Result<Vec<ev::TierCriterion>, DomainError> {
    criteria
        .into_iter()
        .map(|c| {
            Ok(ev::TierCriterion {
                name: c.name,
                weight: c.weight,
                score: small("criteria.score", c.score)?,
            })
        })
        .collect()
}

/// The wire form of tier criteria.
pub(crate) fn criteria_to_wire(criteria: &[ev::TierCriterion]) -> Vec<pb::TierCriterion> {
    criteria
        .iter()
        .map(|c| pb::TierCriterion {
            name: c.name.clone(),
            weight: c.weight,
            score: u32::from(c.score),
        })
        .collect()
}

impl TryFrom<pb::TierAssessed> for ev::TierAssessed {
    type Error = DomainError;
    fn try_from(w: pb::TierAssessed) -> Result<Self, DomainError> {
        Ok(Self {
            criteria: criteria_from_wire(w.criteria)?,
            weighted_score_milli: w.weighted_score_milli,
            recommended_tier: enumeration("recommended_tier", w.recommended_tier)?,
            assessed_by: id("assessed_by", w.assessed_by)?,
        })
    }
}

impl From<&ev::TierAssessed> for pb::TierAssessed {
    fn from(e: &ev::TierAssessed) -> Self {
        Self {
            criteria: criteria_to_wire(&e.criteria),
            weighted_score_milli: e.weighted_score_milli,
            recommended_tier: e.recommended_tier.to_wire(),
            assessed_by: e.assessed_by.to_string(),
        }
    }
}

impl TryFrom<pb::AccountPromoted> for ev::AccountPromoted {
    type Error = DomainError;
    fn try_from(w: pb::AccountPromoted) -> Result<Self, DomainError> {
        Ok(Self {
            from: enumeration("from", w.from)?,
            to: enumeration("to", w.to)?,
            reason: w.reason,
        })
    }
}

impl From<&ev::AccountPromoted> for pb::AccountPromoted {
    fn from(e: &ev::AccountPromoted) -> Self {
        Self {
            from: e.from.to_wire(),
            to: e.to.to_wire(),
            reason: e.reason.clone(),
        }
    }
}

impl TryFrom<pb::AccountDemoted> for ev::AccountDemoted {
    type Error = DomainError;
    fn try_from(w: pb::AccountDemoted) -> Result<Self, DomainError> {
        Ok(Self {
            from: enumeration("from", w.from)?,
            to: enumeration("to", w.to)?,
            reason: w.reason,
        })
    }
}

impl From<&ev::AccountDemoted> for pb::AccountDemoted {
    fn from(e: &ev::AccountDemoted) -> Self {
        Self {
            from: e.from.to_wire(),
            to: e.to.to_wire(),
            reason: e.reason.clone(),
        }
    }
}

impl TryFrom<pb::TeamMemberAssigned> for ev::TeamMemberAssigned {
    type Error = DomainError;
    fn try_from(w: pb::TeamMemberAssigned) -> Result<Self, DomainError> {
        Ok(Self {
            person_id: id("person_id", w.person_id)?,
            name: w.name,
            role: enumeration("role", w.role)?,
        })
    }
}

impl From<&ev::TeamMemberAssigned> for pb::TeamMemberAssigned {
    fn from(e: &ev::TeamMemberAssigned) -> Self {
        Self {
            person_id: e.person_id.to_string(),
            name: e.name.clone(),
            role: e.role.to_wire(),
        }
    }
}

impl TryFrom<pb::TeamMemberUnassigned> for ev::TeamMemberUnassigned {
    type Error = DomainError;
    fn try_from(w: pb::TeamMemberUnassigned) -> Result<Self, DomainError> {
        Ok(Self {
            person_id: id("person_id", w.person_id)?,
            reason: w.reason,
        })
    }
}

impl From<&ev::TeamMemberUnassigned> for pb::TeamMemberUnassigned {
    fn from(e: &ev::TeamMemberUnassigned) -> Self {
        Self {
            person_id: e.person_id.to_string(),
            reason: e.reason.clone(),
        }
    }
}

// ---------------------------------------------------------------- plan

impl TryFrom<pb::PlanPeriod> for ev::PlanPeriod {
    type Error = DomainError;
    fn try_from(w: pb::PlanPeriod) -> Result<Self, DomainError> {
        Ok(Self {
            kind: enumeration("period.kind", w.kind)?,
            start: date("period.start", &w.start)?,
            end: optional_date("period.end", &w.end)?,
        })
    }
}

impl From<&ev::PlanPeriod> for pb::PlanPeriod {
    fn from(e: &ev::PlanPeriod) -> Self {
        Self {
            kind: e.kind.to_wire(),
            start: date_to_wire(e.start),
            end: optional_date_to_wire(e.end),
        }
    }
}

impl TryFrom<pb::PlanDrafted> for ev::PlanDrafted {
    type Error = DomainError;
    fn try_from(w: pb::PlanDrafted) -> Result<Self, DomainError> {
        Ok(Self {
            plan_id: id("plan_id", w.plan_id)?,
            period: required("period", w.period)?.try_into()?,
            prepared_by: id("prepared_by", w.prepared_by)?,
            prepared_on: date("prepared_on", &w.prepared_on)?,
            review_frequency: enumeration("review_frequency", w.review_frequency)?,
        })
    }
}

impl From<&ev::PlanDrafted> for pb::PlanDrafted {
    fn from(e: &ev::PlanDrafted) -> Self {
        Self {
            plan_id: e.plan_id.to_string(),
            period: Some((&e.period).into()),
            prepared_by: e.prepared_by.to_string(),
            prepared_on: date_to_wire(e.prepared_on),
            review_frequency: e.review_frequency.to_wire(),
        }
    }
}

impl TryFrom<pb::PlanSectionRevised> for ev::PlanSectionRevised {
    type Error = DomainError;
    fn try_from(w: pb::PlanSectionRevised) -> Result<Self, DomainError> {
        Ok(Self {
            plan_id: id("plan_id", w.plan_id)?,
            section: enumeration("section", w.section)?,
            text: w.text,
        })
    }
}

impl From<&ev::PlanSectionRevised> for pb::PlanSectionRevised {
    fn from(e: &ev::PlanSectionRevised) -> Self {
        Self {
            plan_id: e.plan_id.to_string(),
            section: e.section.to_wire(),
            text: e.text.clone(),
        }
    }
}

impl TryFrom<pb::ObjectiveSet> for ev::ObjectiveSet {
    type Error = DomainError;
    fn try_from(w: pb::ObjectiveSet) -> Result<Self, DomainError> {
        Ok(Self {
            objective_id: id("objective_id", w.objective_id)?,
            plan_id: id("plan_id", w.plan_id)?,
            title: w.title,
            metric: w.metric,
            target: w.target,
            due_on: date("due_on", &w.due_on)?,
            owner: id("owner", w.owner)?,
            status: enumeration("status", w.status)?,
        })
    }
}

impl From<&ev::ObjectiveSet> for pb::ObjectiveSet {
    fn from(e: &ev::ObjectiveSet) -> Self {
        Self {
            objective_id: e.objective_id.to_string(),
            plan_id: e.plan_id.to_string(),
            title: e.title.clone(),
            metric: e.metric.clone(),
            target: e.target.clone(),
            due_on: date_to_wire(e.due_on),
            owner: e.owner.to_string(),
            status: e.status.to_wire(),
        }
    }
}

impl TryFrom<pb::ObjectiveProgressed> for ev::ObjectiveProgressed {
    type Error = DomainError;
    fn try_from(w: pb::ObjectiveProgressed) -> Result<Self, DomainError> {
        Ok(Self {
            objective_id: id("objective_id", w.objective_id)?,
            status: enumeration("status", w.status)?,
            current_value: w.current_value,
            note: w.note,
        })
    }
}

impl From<&ev::ObjectiveProgressed> for pb::ObjectiveProgressed {
    fn from(e: &ev::ObjectiveProgressed) -> Self {
        Self {
            objective_id: e.objective_id.to_string(),
            status: e.status.to_wire(),
            current_value: e.current_value.clone(),
            note: e.note.clone(),
        }
    }
}

impl TryFrom<pb::OpportunityIdentified> for ev::OpportunityIdentified {
    type Error = DomainError;
    fn try_from(w: pb::OpportunityIdentified) -> Result<Self, DomainError> {
        Ok(Self {
            opportunity_id: id("opportunity_id", w.opportunity_id)?,
            title: w.title,
            value: money("value", w.value)?,
            stage: enumeration("stage", w.stage)?,
            expected_close_on: date("expected_close_on", &w.expected_close_on)?,
            owner: id("owner", w.owner)?,
        })
    }
}

impl From<&ev::OpportunityIdentified> for pb::OpportunityIdentified {
    fn from(e: &ev::OpportunityIdentified) -> Self {
        Self {
            opportunity_id: e.opportunity_id.to_string(),
            title: e.title.clone(),
            value: money_to_wire(&e.value),
            stage: e.stage.to_wire(),
            expected_close_on: date_to_wire(e.expected_close_on),
            owner: e.owner.to_string(),
        }
    }
}

impl TryFrom<pb::OpportunityStageChanged> for ev::OpportunityStageChanged {
    type Error = DomainError;
    fn try_from(w: pb::OpportunityStageChanged) -> Result<Self, DomainError> {
        Ok(Self {
            opportunity_id: id("opportunity_id", w.opportunity_id)?,
            stage: enumeration("stage", w.stage)?,
            expected_close_on: optional_date("expected_close_on", &w.expected_close_on)?,
        })
    }
}

impl From<&ev::OpportunityStageChanged> for pb::OpportunityStageChanged {
    fn from(e: &ev::OpportunityStageChanged) -> Self {
        Self {
            opportunity_id: e.opportunity_id.to_string(),
            stage: e.stage.to_wire(),
            expected_close_on: optional_date_to_wire(e.expected_close_on),
        }
    }
}

impl TryFrom<pb::OpportunityWon> for ev::OpportunityWon {
    type Error = DomainError;
    fn try_from(w: pb::OpportunityWon) -> Result<Self, DomainError> {
        Ok(Self {
            opportunity_id: id("opportunity_id", w.opportunity_id)?,
            value: money("value", w.value)?,
            closed_on: date("closed_on", &w.closed_on)?,
            reason: w.reason,
        })
    }
}

impl From<&ev::OpportunityWon> for pb::OpportunityWon {
    fn from(e: &ev::OpportunityWon) -> Self {
        Self {
            opportunity_id: e.opportunity_id.to_string(),
            value: money_to_wire(&e.value),
            closed_on: date_to_wire(e.closed_on),
            reason: e.reason.clone(),
        }
    }
}

impl TryFrom<pb::OpportunityLost> for ev::OpportunityLost {
    type Error = DomainError;
    fn try_from(w: pb::OpportunityLost) -> Result<Self, DomainError> {
        Ok(Self {
            opportunity_id: id("opportunity_id", w.opportunity_id)?,
            closed_on: date("closed_on", &w.closed_on)?,
            reason: w.reason,
        })
    }
}

impl From<&ev::OpportunityLost> for pb::OpportunityLost {
    fn from(e: &ev::OpportunityLost) -> Self {
        Self {
            opportunity_id: e.opportunity_id.to_string(),
            closed_on: date_to_wire(e.closed_on),
            reason: e.reason.clone(),
        }
    }
}

impl TryFrom<pb::ActionLink> for ev::ActionLink {
    type Error = DomainError;
    fn try_from(w: pb::ActionLink) -> Result<Self, DomainError> {
        use pb::action_link::Target;
        // A link message without a target is a client bug, not "no link": absence of the
        // whole message is how "no link" is said.
        Ok(match required("link.target", w.target)? {
            Target::ObjectiveId(v) => Self::Objective(id("link.objective_id", v)?),
            Target::OpportunityId(v) => Self::Opportunity(id("link.opportunity_id", v)?),
            Target::ReviewId(v) => Self::Review(id("link.review_id", v)?),
        })
    }
}

impl From<&ev::ActionLink> for pb::ActionLink {
    fn from(e: &ev::ActionLink) -> Self {
        use pb::action_link::Target;
        let target = match e {
            ev::ActionLink::Objective(v) => Target::ObjectiveId(v.to_string()),
            ev::ActionLink::Opportunity(v) => Target::OpportunityId(v.to_string()),
            ev::ActionLink::Review(v) => Target::ReviewId(v.to_string()),
        };
        Self {
            target: Some(target),
        }
    }
}

impl TryFrom<pb::ActionItemAdded> for ev::ActionItemAdded {
    type Error = DomainError;
    fn try_from(w: pb::ActionItemAdded) -> Result<Self, DomainError> {
        Ok(Self {
            action_item_id: id("action_item_id", w.action_item_id)?,
            title: w.title,
            owner: id("owner", w.owner)?,
            due_on: date("due_on", &w.due_on)?,
            link: w.link.map(TryInto::try_into).transpose()?,
        })
    }
}

impl From<&ev::ActionItemAdded> for pb::ActionItemAdded {
    fn from(e: &ev::ActionItemAdded) -> Self {
        Self {
            action_item_id: e.action_item_id.to_string(),
            title: e.title.clone(),
            owner: e.owner.to_string(),
            due_on: date_to_wire(e.due_on),
            link: e.link.as_ref().map(Into::into),
        }
    }
}

impl TryFrom<pb::ActionItemCompleted> for ev::ActionItemCompleted {
    type Error = DomainError;
    fn try_from(w: pb::ActionItemCompleted) -> Result<Self, DomainError> {
        Ok(Self {
            action_item_id: id("action_item_id", w.action_item_id)?,
            completed_on: date("completed_on", &w.completed_on)?,
            note: w.note,
        })
    }
}

impl From<&ev::ActionItemCompleted> for pb::ActionItemCompleted {
    fn from(e: &ev::ActionItemCompleted) -> Self {
        Self {
            action_item_id: e.action_item_id.to_string(),
            completed_on: date_to_wire(e.completed_on),
            note: e.note.clone(),
        }
    }
}

impl TryFrom<pb::ActionItemCancelled> for ev::ActionItemCancelled {
    type Error = DomainError;
    fn try_from(w: pb::ActionItemCancelled) -> Result<Self, DomainError> {
        Ok(Self {
            action_item_id: id("action_item_id", w.action_item_id)?,
            reason: w.reason,
        })
    }
}

impl From<&ev::ActionItemCancelled> for pb::ActionItemCancelled {
    fn from(e: &ev::ActionItemCancelled) -> Self {
        Self {
            action_item_id: e.action_item_id.to_string(),
            reason: e.reason.clone(),
        }
    }
}

impl TryFrom<pb::RevenueRecorded> for ev::RevenueRecorded {
    type Error = DomainError;
    fn try_from(w: pb::RevenueRecorded) -> Result<Self, DomainError> {
        Ok(Self {
            period_start: date("period_start", &w.period_start)?,
            period_end: date("period_end", &w.period_end)?,
            product: w.product,
            actual: money("actual", w.actual)?,
            goal: money("goal", w.goal)?,
            margin_basis_points: w.margin_basis_points,
        })
    }
}

impl From<&ev::RevenueRecorded> for pb::RevenueRecorded {
    fn from(e: &ev::RevenueRecorded) -> Self {
        Self {
            period_start: date_to_wire(e.period_start),
            period_end: date_to_wire(e.period_end),
            product: e.product.clone(),
            actual: money_to_wire(&e.actual),
            goal: money_to_wire(&e.goal),
            margin_basis_points: e.margin_basis_points,
        }
    }
}

// ---------------------------------------------------------------- decision-making unit

impl TryFrom<pb::StakeholderAdded> for ev::StakeholderAdded {
    type Error = DomainError;
    fn try_from(w: pb::StakeholderAdded) -> Result<Self, DomainError> {
        Ok(Self {
            stakeholder_id: id("stakeholder_id", w.stakeholder_id)?,
            name: w.name,
            title: w.title,
            reports_to: optional_id("reports_to", w.reports_to)?,
            buying_role: enumeration("buying_role", w.buying_role)?,
            influence: small("influence", w.influence)?,
            attitude: enumeration("attitude", w.attitude)?,
        })
    }
}

impl From<&ev::StakeholderAdded> for pb::StakeholderAdded {
    fn from(e: &ev::StakeholderAdded) -> Self {
        Self {
            stakeholder_id: e.stakeholder_id.to_string(),
            name: e.name.clone(),
            title: e.title.clone(),
            reports_to: optional_id_to_wire(e.reports_to.as_ref()),
            buying_role: e.buying_role.to_wire(),
            influence: u32::from(e.influence),
            attitude: e.attitude.to_wire(),
        }
    }
}

impl TryFrom<pb::StakeholderProfileChanged> for ev::StakeholderProfileChanged {
    type Error = DomainError;
    fn try_from(w: pb::StakeholderProfileChanged) -> Result<Self, DomainError> {
        Ok(Self {
            stakeholder_id: id("stakeholder_id", w.stakeholder_id)?,
            title: w.title,
            reports_to: optional_id("reports_to", w.reports_to)?,
            clear_reports_to: w.clear_reports_to,
            buying_role: optional_enumeration("buying_role", w.buying_role)?,
            influence: w.influence.map(|v| small("influence", v)).transpose()?,
            attitude: optional_enumeration("attitude", w.attitude)?,
            note: w.note,
        })
    }
}

impl From<&ev::StakeholderProfileChanged> for pb::StakeholderProfileChanged {
    fn from(e: &ev::StakeholderProfileChanged) -> Self {
        Self {
            stakeholder_id: e.stakeholder_id.to_string(),
            title: e.title.clone(),
            reports_to: optional_id_to_wire(e.reports_to.as_ref()),
            clear_reports_to: e.clear_reports_to,
            buying_role: e.buying_role.map(WireEnum::to_wire),
            influence: e.influence.map(u32::from),
            attitude: e.attitude.map(WireEnum::to_wire),
            note: e.note.clone(),
        }
    }
}

impl TryFrom<pb::StakeholderDeparted> for ev::StakeholderDeparted {
    type Error = DomainError;
    fn try_from(w: pb::StakeholderDeparted) -> Result<Self, DomainError> {
        Ok(Self {
            stakeholder_id: id("stakeholder_id", w.stakeholder_id)?,
            departed_on: date("departed_on", &w.departed_on)?,
            reason: w.reason,
        })
    }
}

impl From<&ev::StakeholderDeparted> for pb::StakeholderDeparted {
    fn from(e: &ev::StakeholderDeparted) -> Self {
        Self {
            stakeholder_id: e.stakeholder_id.to_string(),
            departed_on: date_to_wire(e.departed_on),
            reason: e.reason.clone(),
        }
    }
}

// ---------------------------------------------------------------- engagement

impl TryFrom<pb::RuleTarget> for ev::RuleTarget {
    type Error = DomainError;
    fn try_from(w: pb::RuleTarget) -> Result<Self, DomainError> {
        use pb::rule_target::Target;
        Ok(match required("target.target", w.target)? {
            Target::StakeholderId(v) => Self::Stakeholder(id("target.stakeholder_id", v)?),
            Target::BuyingRole(v) => Self::BuyingRole(enumeration("target.buying_role", v)?),
        })
    }
}

impl From<&ev::RuleTarget> for pb::RuleTarget {
    fn from(e: &ev::RuleTarget) -> Self {
        use pb::rule_target::Target;
        let target = match e {
            ev::RuleTarget::Stakeholder(v) => Target::StakeholderId(v.to_string()),
            ev::RuleTarget::BuyingRole(v) => Target::BuyingRole(v.to_wire()),
        };
        Self {
            target: Some(target),
        }
    }
}

impl TryFrom<pb::EngagementRuleSet> for ev::EngagementRuleSet {
    type Error = DomainError;
    fn try_from(w: pb::EngagementRuleSet) -> Result<Self, DomainError> {
        Ok(Self {
            rule_id: id("rule_id", w.rule_id)?,
            target: required("target", w.target)?.try_into()?,
            owner: id("owner", w.owner)?,
            cadence_days: w.cadence_days,
            channels: w
                .channels
                .into_iter()
                .map(|c| enumeration("channels", c))
                .collect::<Result<_, _>>()?,
            opportunity_id: optional_id("opportunity_id", w.opportunity_id)?,
        })
    }
}

impl From<&ev::EngagementRuleSet> for pb::EngagementRuleSet {
    fn from(e: &ev::EngagementRuleSet) -> Self {
        Self {
            rule_id: e.rule_id.to_string(),
            target: Some((&e.target).into()),
            owner: e.owner.to_string(),
            cadence_days: e.cadence_days,
            channels: e.channels.iter().map(|c| c.to_wire()).collect(),
            opportunity_id: optional_id_to_wire(e.opportunity_id.as_ref()),
        }
    }
}

impl TryFrom<pb::EngagementRuleRetired> for ev::EngagementRuleRetired {
    type Error = DomainError;
    fn try_from(w: pb::EngagementRuleRetired) -> Result<Self, DomainError> {
        Ok(Self {
            rule_id: id("rule_id", w.rule_id)?,
            reason: w.reason,
        })
    }
}

impl From<&ev::EngagementRuleRetired> for pb::EngagementRuleRetired {
    fn from(e: &ev::EngagementRuleRetired) -> Self {
        Self {
            rule_id: e.rule_id.to_string(),
            reason: e.reason.clone(),
        }
    }
}

impl TryFrom<pb::InteractionDetails> for ev::InteractionDetails {
    type Error = DomainError;
    fn try_from(w: pb::InteractionDetails) -> Result<Self, DomainError> {
        Ok(Self {
            occurred_at: required_timestamp("details.occurred_at", w.occurred_at)?,
            channel: enumeration("details.channel", w.channel)?,
            stakeholders: ids("details.stakeholders", w.stakeholders)?,
            participants: ids("details.participants", w.participants)?,
            summary: w.summary,
            sentiment: enumeration("details.sentiment", w.sentiment)?,
            next_step: w.next_step,
            opportunity_id: optional_id("details.opportunity_id", w.opportunity_id)?,
        })
    }
}

impl From<&ev::InteractionDetails> for pb::InteractionDetails {
    fn from(e: &ev::InteractionDetails) -> Self {
        Self {
            occurred_at: Some(timestamp_to_proto(e.occurred_at)),
            channel: e.channel.to_wire(),
            stakeholders: ids_to_wire(&e.stakeholders),
            participants: ids_to_wire(&e.participants),
            summary: e.summary.clone(),
            sentiment: e.sentiment.to_wire(),
            next_step: e.next_step.clone(),
            opportunity_id: optional_id_to_wire(e.opportunity_id.as_ref()),
        }
    }
}

impl TryFrom<pb::InteractionLogged> for ev::InteractionLogged {
    type Error = DomainError;
    fn try_from(w: pb::InteractionLogged) -> Result<Self, DomainError> {
        Ok(Self {
            interaction_id: id("interaction_id", w.interaction_id)?,
            details: required("details", w.details)?.try_into()?,
        })
    }
}

impl From<&ev::InteractionLogged> for pb::InteractionLogged {
    fn from(e: &ev::InteractionLogged) -> Self {
        Self {
            interaction_id: e.interaction_id.to_string(),
            details: Some((&e.details).into()),
        }
    }
}

impl TryFrom<pb::InteractionCorrected> for ev::InteractionCorrected {
    type Error = DomainError;
    fn try_from(w: pb::InteractionCorrected) -> Result<Self, DomainError> {
        Ok(Self {
            interaction_id: id("interaction_id", w.interaction_id)?,
            details: required("details", w.details)?.try_into()?,
            reason: w.reason,
        })
    }
}

impl From<&ev::InteractionCorrected> for pb::InteractionCorrected {
    fn from(e: &ev::InteractionCorrected) -> Self {
        Self {
            interaction_id: e.interaction_id.to_string(),
            details: Some((&e.details).into()),
            reason: e.reason.clone(),
        }
    }
}

// ---------------------------------------------------------------- reviews

impl TryFrom<pb::ReviewScheduled> for ev::ReviewScheduled {
    type Error = DomainError;
    fn try_from(w: pb::ReviewScheduled) -> Result<Self, DomainError> {
        Ok(Self {
            review_id: id("review_id", w.review_id)?,
            kind: enumeration("kind", w.kind)?,
            plan_id: optional_id("plan_id", w.plan_id)?,
            due_on: date("due_on", &w.due_on)?,
            supplier_attendees: ids("supplier_attendees", w.supplier_attendees)?,
            customer_attendees: ids("customer_attendees", w.customer_attendees)?,
        })
    }
}

impl From<&ev::ReviewScheduled> for pb::ReviewScheduled {
    fn from(e: &ev::ReviewScheduled) -> Self {
        Self {
            review_id: e.review_id.to_string(),
            kind: e.kind.to_wire(),
            plan_id: optional_id_to_wire(e.plan_id.as_ref()),
            due_on: date_to_wire(e.due_on),
            supplier_attendees: ids_to_wire(&e.supplier_attendees),
            customer_attendees: ids_to_wire(&e.customer_attendees),
        }
    }
}

impl TryFrom<pb::FollowUpAction> for ev::FollowUpAction {
    type Error = DomainError;
    fn try_from(w: pb::FollowUpAction) -> Result<Self, DomainError> {
        Ok(Self {
            action_item_id: id("follow_up_actions.action_item_id", w.action_item_id)?,
            title: w.title,
            owner: id("follow_up_actions.owner", w.owner)?,
            due_on: date("follow_up_actions.due_on", &w.due_on)?,
        })
    }
}

impl From<&ev::FollowUpAction> for pb::FollowUpAction {
    fn from(e: &ev::FollowUpAction) -> Self {
        Self {
            action_item_id: e.action_item_id.to_string(),
            title: e.title.clone(),
            owner: e.owner.to_string(),
            due_on: date_to_wire(e.due_on),
        }
    }
}

impl TryFrom<pb::ReviewOutcomeRecorded> for ev::ReviewOutcomeRecorded {
    type Error = DomainError;
    fn try_from(w: pb::ReviewOutcomeRecorded) -> Result<Self, DomainError> {
        Ok(Self {
            review_id: id("review_id", w.review_id)?,
            held_on: date("held_on", &w.held_on)?,
            supplier_attendees: ids("supplier_attendees", w.supplier_attendees)?,
            customer_attendees: ids("customer_attendees", w.customer_attendees)?,
            outcome: enumeration("outcome", w.outcome)?,
            health: enumeration("health", w.health)?,
            decisions: w.decisions,
            follow_up_actions: w
                .follow_up_actions
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl From<&ev::ReviewOutcomeRecorded> for pb::ReviewOutcomeRecorded {
    fn from(e: &ev::ReviewOutcomeRecorded) -> Self {
        Self {
            review_id: e.review_id.to_string(),
            held_on: date_to_wire(e.held_on),
            supplier_attendees: ids_to_wire(&e.supplier_attendees),
            customer_attendees: ids_to_wire(&e.customer_attendees),
            outcome: e.outcome.to_wire(),
            health: e.health.to_wire(),
            decisions: e.decisions.clone(),
            follow_up_actions: e.follow_up_actions.iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<pb::ReviewCancelled> for ev::ReviewCancelled {
    type Error = DomainError;
    fn try_from(w: pb::ReviewCancelled) -> Result<Self, DomainError> {
        Ok(Self {
            review_id: id("review_id", w.review_id)?,
            reason: w.reason,
        })
    }
}

impl From<&ev::ReviewCancelled> for pb::ReviewCancelled {
    fn from(e: &ev::ReviewCancelled) -> Self {
        Self {
            review_id: e.review_id.to_string(),
            reason: e.reason.clone(),
        }
    }
}
