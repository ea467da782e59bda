//! What changed in an account between two points, and who changed it.
//!
//! The change list is computed by comparing two [`AccountState`]s, not by listing events:
//! an auditor asking "what is different in the plan since the Q1 review" wants the net
//! difference (a section revised three times is one change, old text to new text), while the
//! events list next to it shows every step. To say *who* made each net change, the range's
//! events are applied one by one and, for the entities each event touches, every field whose
//! value the event changed is attributed to it; a net change is then credited to the last
//! event in the range that changed that field.
//!
//! Both comparisons work on the same flattened view of a state: entities keyed by area and
//! id, each a fixed list of named fields rendered as text (dates ISO, money "EUR 12.00",
//! vocabularies by name, lists comma-separated), empty when absent.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use keyplan_domain::ids::*;
use keyplan_domain::state::*;
use keyplan_domain::values::{PlanSection, Tier, Timestamp};
use keyplan_domain::{AccountEvent, AccountState};
use keyplan_proto::convert::timestamp_to_proto;
use keyplan_proto::pb;
use keyplan_store::{EventStore, RecordedEvent, StreamId};

use crate::history::{decode, existing_version, for_each};
use crate::status::AuditError;
use crate::text::{action_link, describe, excerpt, instant, list, margin, rule_target, score};

/// Most events a diff lists; the rest are counted in `events_omitted`.
pub(crate) const MAX_LISTED_EVENTS: usize = 1000;

/// The areas of an account, in the order changes are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Area {
    Profile,
    TierAssessment,
    Team,
    Plan,
    Objective,
    Opportunity,
    ActionItem,
    Revenue,
    Stakeholder,
    EngagementRule,
    Interaction,
    Review,
}

impl Area {
    fn to_proto(self) -> pb::AuditArea {
        match self {
            Area::Profile => pb::AuditArea::Profile,
            Area::TierAssessment => pb::AuditArea::TierAssessment,
            Area::Team => pb::AuditArea::Team,
            Area::Plan => pb::AuditArea::Plan,
            Area::Objective => pb::AuditArea::Objective,
            Area::Opportunity => pb::AuditArea::Opportunity,
            Area::ActionItem => pb::AuditArea::ActionItem,
            Area::Revenue => pb::AuditArea::Revenue,
            Area::Stakeholder => pb::AuditArea::Stakeholder,
            Area::EngagementRule => pb::AuditArea::EngagementRule,
            Area::Interaction => pb::AuditArea::Interaction,
            Area::Review => pb::AuditArea::Review,
        }
    }

    /// How an entity of this area is named in a description.
    fn label(self) -> &'static str {
        match self {
            Area::Profile => "account",
            Area::TierAssessment => "tier assessment",
            Area::Team => "team member",
            Area::Plan => "plan",
            Area::Objective => "objective",
            Area::Opportunity => "opportunity",
            Area::ActionItem => "action item",
            Area::Revenue => "revenue record",
            Area::Stakeholder => "stakeholder",
            Area::EngagementRule => "engagement rule",
            Area::Interaction => "interaction",
            Area::Review => "review",
        }
    }

    /// The verb for an entity that appeared.
    fn added_verb(self) -> &'static str {
        match self {
            Area::Profile => "registered",
            Area::TierAssessment => "made",
            Area::Team => "assigned",
            Area::Plan => "drafted",
            Area::Objective | Area::EngagementRule => "set",
            Area::Opportunity => "identified",
            Area::ActionItem | Area::Stakeholder => "added",
            Area::Revenue => "recorded",
            Area::Interaction => "logged",
            Area::Review => "scheduled",
        }
    }

    /// The fields that name an entity of this area in a one-line description.
    fn headline(self) -> &'static [&'static str] {
        match self {
            Area::Profile => &["name", "tier"],
            Area::TierAssessment => &["weighted_score", "recommended_tier"],
            Area::Team => &["name", "role"],
            Area::Plan => &["period"],
            Area::Objective | Area::ActionItem => &["title"],
            Area::Opportunity => &["title", "value"],
            Area::Revenue => &["period", "product", "actual"],
            Area::Stakeholder => &["name", "title"],
            Area::EngagementRule => &["target", "cadence"],
            Area::Interaction => &["channel", "occurred_at"],
            Area::Review => &["kind", "due_on"],
        }
    }
}

/// One entity of a flattened state: an area, and an id within it. Revenue records have no id
/// of their own and are numbered in recording order (`ordinal`, which also sorts them).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EntityKey {
    area: Area,
    ordinal: u64,
    id: String,
}

impl EntityKey {
    fn new(area: Area, id: impl ToString) -> Self {
        Self {
            area,
            ordinal: 0,
            id: id.to_string(),
        }
    }

    fn revenue(number: u64) -> Self {
        Self {
            area: Area::Revenue,
            ordinal: number,
            id: number.to_string(),
        }
    }

    fn singleton(area: Area) -> Self {
        Self::new(area, "")
    }
}

/// An entity's fields, in a fixed order per area.
type Fields = Vec<(&'static str, String)>;

/// A flattened state.
type Flat = BTreeMap<EntityKey, Fields>;

fn get<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------- flattening

fn profile_fields(p: &AccountProfile) -> Fields {
    vec![
        ("name", p.name.clone()),
        ("industry", p.industry.clone()),
        ("region", p.region.clone()),
        ("headquarters", p.headquarters.clone()),
        ("tier", p.tier.to_string()),
    ]
}

fn assessment_fields(a: &keyplan_domain::events::TierAssessed) -> Fields {
    let criteria: Vec<String> = a
        .criteria
        .iter()
        .map(|c| format!("{} (weight {}, score {})", c.name, c.weight, c.score))
        .collect();
    vec![
        ("criteria", criteria.join("; ")),
        ("weighted_score", score(a.weighted_score_milli)),
        ("recommended_tier", a.recommended_tier.to_string()),
        ("assessed_by", a.assessed_by.to_string()),
    ]
}

fn team_fields(m: &TeamMember) -> Fields {
    vec![("name", m.name.clone()), ("role", m.role.to_string())]
}

/// The field holding a plan section's text, e.g. `section.customer_landscape`.
pub(crate) fn section_field(section: PlanSection) -> &'static str {
    match section {
        PlanSection::AccountOverview => "section.account_overview",
        PlanSection::CustomerLandscape => "section.customer_landscape",
        PlanSection::Competitors => "section.competitors",
        PlanSection::RevenueSnapshot => "section.revenue_snapshot",
        PlanSection::Risks => "section.risks",
        PlanSection::Strategy => "section.strategy",
    }
}

fn plan_fields(p: &Plan) -> Fields {
    let d = &p.drafted;
    let mut fields = vec![
        (
            "period",
            format!(
                "{} from {}{}",
                d.period.kind,
                d.period.start,
                d.period.end.map(|e| format!(" to {e}")).unwrap_or_default()
            ),
        ),
        ("prepared_by", d.prepared_by.to_string()),
        ("prepared_on", d.prepared_on.to_string()),
        ("review_frequency", d.review_frequency.as_str().to_owned()),
    ];
    for section in PlanSection::ALL {
        fields.push((
            section_field(*section),
            p.sections.get(section).cloned().unwrap_or_default(),
        ));
    }
    fields
}

fn objective_fields(o: &Objective) -> Fields {
    let d = &o.definition;
    vec![
        ("plan_id", d.plan_id.to_string()),
        ("title", d.title.clone()),
        ("metric", d.metric.clone()),
        ("target", d.target.clone()),
        ("due_on", d.due_on.to_string()),
        ("owner", d.owner.to_string()),
        ("status", o.status.to_string()),
        ("current_value", o.current_value.clone()),
    ]
}

fn opportunity_fields(o: &Opportunity) -> Fields {
    let i = &o.identified;
    let (status, won_value, closed_on, close_reason) = match &o.status {
        OpportunityStatus::Open(stage) => (
            stage.to_string(),
            String::new(),
            String::new(),
            String::new(),
        ),
        OpportunityStatus::Won {
            value,
            closed_on,
            reason,
        } => (
            "won".to_owned(),
            value.to_string(),
            closed_on.to_string(),
            reason.clone(),
        ),
        OpportunityStatus::Lost { closed_on, reason } => (
            "lost".to_owned(),
            String::new(),
            closed_on.to_string(),
            reason.clone(),
        ),
    };
    vec![
        ("title", i.title.clone()),
        ("value", i.value.to_string()),
        ("owner", i.owner.to_string()),
        ("expected_close_on", o.expected_close_on.to_string()),
        ("status", status),
        ("won_value", won_value),
        ("closed_on", closed_on),
        ("close_reason", close_reason),
    ]
}

fn action_item_fields(a: &ActionItem) -> Fields {
    let (status, completed_on, cancel_reason) = match &a.status {
        ActionItemStatus::Open => ("open", String::new(), String::new()),
        ActionItemStatus::Completed(on) => ("completed", on.to_string(), String::new()),
        ActionItemStatus::Cancelled(reason) => ("cancelled", String::new(), reason.clone()),
    };
    vec![
        ("title", a.added.title.clone()),
        ("owner", a.added.owner.to_string()),
        ("due_on", a.added.due_on.to_string()),
        (
            "link",
            a.added.link.as_ref().map(action_link).unwrap_or_default(),
        ),
        ("status", status.to_owned()),
        ("completed_on", completed_on),
        ("cancel_reason", cancel_reason),
    ]
}

fn revenue_fields(r: &keyplan_domain::events::RevenueRecorded) -> Fields {
    vec![
        ("period", format!("{} to {}", r.period_start, r.period_end)),
        ("product", r.product.clone()),
        ("actual", r.actual.to_string()),
        ("goal", r.goal.to_string()),
        (
            "margin",
            r.margin_basis_points.map(margin).unwrap_or_default(),
        ),
    ]
}

fn stakeholder_fields(s: &Stakeholder) -> Fields {
    vec![
        ("name", s.name.clone()),
        ("title", s.title.clone()),
        ("reports_to", opt(s.reports_to.as_ref())),
        ("buying_role", s.buying_role.to_string()),
        ("influence", s.influence.to_string()),
        ("attitude", s.attitude.to_string()),
        ("departed_on", opt(s.departed_on)),
    ]
}

fn rule_fields(r: &EngagementRule) -> Fields {
    let d = &r.definition;
    vec![
        ("target", rule_target(&d.target)),
        ("owner", d.owner.to_string()),
        ("cadence", format!("every {} days", d.cadence_days)),
        ("channels", list(&d.channels)),
        ("opportunity_id", opt(d.opportunity_id.as_ref())),
        (
            "status",
            if r.retired.is_some() {
                "retired"
            } else {
                "active"
            }
            .to_owned(),
        ),
        ("retire_reason", r.retired.clone().unwrap_or_default()),
    ]
}

fn interaction_fields(i: &Interaction, text: Option<&InteractionText>) -> Fields {
    vec![
        ("occurred_at", instant(i.occurred_at)),
        ("channel", i.channel.to_string()),
        ("stakeholders", list(&i.stakeholders)),
        ("participants", list(&i.participants)),
        (
            "summary",
            text.map(|t| t.summary.clone()).unwrap_or_default(),
        ),
        ("sentiment", i.sentiment.to_string()),
        (
            "next_step",
            text.map(|t| t.next_step.clone()).unwrap_or_default(),
        ),
        ("opportunity_id", opt(i.opportunity_id.as_ref())),
        ("corrections", i.corrections.to_string()),
    ]
}

fn review_fields(r: &Review) -> Fields {
    let s = &r.scheduled;
    let mut fields = vec![
        ("kind", s.kind.to_string()),
        ("plan_id", opt(s.plan_id.as_ref())),
        ("due_on", s.due_on.to_string()),
        ("invited_supplier", list(&s.supplier_attendees)),
        ("invited_customer", list(&s.customer_attendees)),
    ];
    let (status, held, cancel_reason) = match &r.status {
        ReviewStatus::Scheduled => ("scheduled", None, String::new()),
        ReviewStatus::Held(outcome) => ("held", Some(outcome), String::new()),
        ReviewStatus::Cancelled(reason) => ("cancelled", None, reason.clone()),
    };
    let follow_ups: Vec<&ActionItemId> = held
        .map(|h| {
            h.follow_up_actions
                .iter()
                .map(|f| &f.action_item_id)
                .collect()
        })
        .unwrap_or_default();
    fields.extend([
        ("status", status.to_owned()),
        ("held_on", opt(held.map(|h| h.held_on))),
        (
            "supplier_attendees",
            held.map(|h| list(&h.supplier_attendees))
                .unwrap_or_default(),
        ),
        (
            "customer_attendees",
            held.map(|h| list(&h.customer_attendees))
                .unwrap_or_default(),
        ),
        ("outcome", opt(held.map(|h| h.outcome))),
        ("health", opt(held.map(|h| h.health))),
        (
            "decisions",
            held.map(|h| h.decisions.join("; ")).unwrap_or_default(),
        ),
        ("follow_up_actions", list(&follow_ups)),
        ("cancel_reason", cancel_reason),
    ]);
    fields
}

/// An account's state as the diff compares it: the domain's state, plus the free text of each
/// interaction. The domain's state keeps only a hash of that text (so that it stays bounded
/// however long the history), but an auditor comparing two versions must see what the text
/// said before and after; the diff folds one account's range on demand, so it can afford it.
#[derive(Debug, Default)]
struct Compared {
    state: AccountState,
    texts: HashMap<InteractionId, InteractionText>,
}

/// The free text of an interaction's content in force.
#[derive(Debug)]
struct InteractionText {
    summary: String,
    next_step: String,
}

impl Compared {
    /// Applies `event` as [`AccountState::apply`] does, keeping the text it carries.
    fn apply(&mut self, event: &AccountEvent) {
        let details = match event {
            AccountEvent::InteractionLogged(e) => Some((&e.interaction_id, &e.details)),
            AccountEvent::InteractionCorrected(e)
                if self.state.interactions.contains_key(&e.interaction_id) =>
            {
                Some((&e.interaction_id, &e.details))
            }
            _ => None,
        };
        if let Some((id, d)) = details {
            self.texts.insert(
                id.clone(),
                InteractionText {
                    summary: d.summary.clone(),
                    next_step: d.next_step.clone(),
                },
            );
        }
        self.state.apply(event);
    }
}

/// The fields of one entity in `state`, if it exists there.
fn entity_fields(compared: &Compared, key: &EntityKey) -> Option<Fields> {
    let state = &compared.state;
    let id = key.id.as_str();
    match key.area {
        Area::Profile => state.profile.as_ref().map(profile_fields),
        Area::TierAssessment => state.last_assessment.as_ref().map(assessment_fields),
        Area::Team => state.team.get(&PersonId::parse(id).ok()?).map(team_fields),
        Area::Plan => state.plans.get(&PlanId::parse(id).ok()?).map(plan_fields),
        Area::Objective => state
            .objectives
            .get(&ObjectiveId::parse(id).ok()?)
            .map(objective_fields),
        Area::Opportunity => state
            .opportunities
            .get(&OpportunityId::parse(id).ok()?)
            .map(opportunity_fields),
        Area::ActionItem => state
            .action_items
            .get(&ActionItemId::parse(id).ok()?)
            .map(action_item_fields),
        Area::Revenue => {
            let index = usize::try_from(key.ordinal.checked_sub(1)?).ok()?;
            state.revenue.get(index).map(revenue_fields)
        }
        Area::Stakeholder => state
            .stakeholders
            .get(&StakeholderId::parse(id).ok()?)
            .map(stakeholder_fields),
        Area::EngagementRule => state.rules.get(&RuleId::parse(id).ok()?).map(rule_fields),
        Area::Interaction => {
            let id = InteractionId::parse(id).ok()?;
            let text = compared.texts.get(&id);
            state
                .interactions
                .get(&id)
                .map(|i| interaction_fields(i, text))
        }
        Area::Review => state
            .reviews
            .get(&ReviewId::parse(id).ok()?)
            .map(review_fields),
    }
}

/// Every entity of `state`, flattened.
fn flatten(compared: &Compared) -> Flat {
    let state = &compared.state;
    let mut flat = Flat::new();
    if let Some(p) = &state.profile {
        flat.insert(EntityKey::singleton(Area::Profile), profile_fields(p));
    }
    if let Some(a) = &state.last_assessment {
        flat.insert(
            EntityKey::singleton(Area::TierAssessment),
            assessment_fields(a),
        );
    }
    for (id, m) in &state.team {
        flat.insert(EntityKey::new(Area::Team, id), team_fields(m));
    }
    for (id, p) in &state.plans {
        flat.insert(EntityKey::new(Area::Plan, id), plan_fields(p));
    }
    for (id, o) in &state.objectives {
        flat.insert(EntityKey::new(Area::Objective, id), objective_fields(o));
    }
    for (id, o) in &state.opportunities {
        flat.insert(EntityKey::new(Area::Opportunity, id), opportunity_fields(o));
    }
    for (id, a) in &state.action_items {
        flat.insert(EntityKey::new(Area::ActionItem, id), action_item_fields(a));
    }
    for (i, r) in state.revenue.iter().enumerate() {
        flat.insert(EntityKey::revenue(i as u64 + 1), revenue_fields(r));
    }
    for (id, s) in &state.stakeholders {
        flat.insert(EntityKey::new(Area::Stakeholder, id), stakeholder_fields(s));
    }
    for (id, r) in &state.rules {
        flat.insert(EntityKey::new(Area::EngagementRule, id), rule_fields(r));
    }
    for (id, i) in &state.interactions {
        flat.insert(
            EntityKey::new(Area::Interaction, id),
            interaction_fields(i, compared.texts.get(id)),
        );
    }
    for (id, r) in &state.reviews {
        flat.insert(EntityKey::new(Area::Review, id), review_fields(r));
    }
    flat
}

/// The entities `event` can change when applied to `before` (mirrors `AccountState::apply`).
fn touched(before: &AccountState, event: &AccountEvent) -> Vec<EntityKey> {
    use AccountEvent as E;
    match event {
        E::AccountRegistered(_) | E::AccountPromoted(_) | E::AccountDemoted(_) => {
            vec![EntityKey::singleton(Area::Profile)]
        }
        E::TierAssessed(_) => vec![EntityKey::singleton(Area::TierAssessment)],
        E::TeamMemberAssigned(e) => vec![EntityKey::new(Area::Team, &e.person_id)],
        E::TeamMemberUnassigned(e) => vec![EntityKey::new(Area::Team, &e.person_id)],
        E::PlanDrafted(e) => vec![EntityKey::new(Area::Plan, &e.plan_id)],
        E::PlanSectionRevised(e) => vec![EntityKey::new(Area::Plan, &e.plan_id)],
        E::ObjectiveSet(e) => vec![EntityKey::new(Area::Objective, &e.objective_id)],
        E::ObjectiveProgressed(e) => vec![EntityKey::new(Area::Objective, &e.objective_id)],
        E::OpportunityIdentified(e) => vec![EntityKey::new(Area::Opportunity, &e.opportunity_id)],
        E::OpportunityStageChanged(e) => {
            vec![EntityKey::new(Area::Opportunity, &e.opportunity_id)]
        }
        E::OpportunityWon(e) => vec![EntityKey::new(Area::Opportunity, &e.opportunity_id)],
        E::OpportunityLost(e) => vec![EntityKey::new(Area::Opportunity, &e.opportunity_id)],
        E::ActionItemAdded(e) => vec![EntityKey::new(Area::ActionItem, &e.action_item_id)],
        E::ActionItemCompleted(e) => vec![EntityKey::new(Area::ActionItem, &e.action_item_id)],
        E::ActionItemCancelled(e) => vec![EntityKey::new(Area::ActionItem, &e.action_item_id)],
        E::RevenueRecorded(_) => vec![EntityKey::revenue(before.revenue.len() as u64 + 1)],
        E::StakeholderAdded(e) => vec![EntityKey::new(Area::Stakeholder, &e.stakeholder_id)],
        E::StakeholderProfileChanged(e) => {
            vec![EntityKey::new(Area::Stakeholder, &e.stakeholder_id)]
        }
        E::StakeholderDeparted(e) => vec![EntityKey::new(Area::Stakeholder, &e.stakeholder_id)],
        E::EngagementRuleSet(e) => vec![EntityKey::new(Area::EngagementRule, &e.rule_id)],
        E::EngagementRuleRetired(e) => vec![EntityKey::new(Area::EngagementRule, &e.rule_id)],
        E::InteractionLogged(e) => vec![EntityKey::new(Area::Interaction, &e.interaction_id)],
        E::InteractionCorrected(e) => vec![EntityKey::new(Area::Interaction, &e.interaction_id)],
        E::ReviewScheduled(e) => vec![EntityKey::new(Area::Review, &e.review_id)],
        E::ReviewCancelled(e) => vec![EntityKey::new(Area::Review, &e.review_id)],
        E::ReviewOutcomeRecorded(e) => {
            let mut keys = vec![EntityKey::new(Area::Review, &e.review_id)];
            keys.extend(
                e.follow_up_actions
                    .iter()
                    .map(|f| EntityKey::new(Area::ActionItem, &f.action_item_id)),
            );
            keys
        }
    }
}

/// The value of every field of an entity's field list, absent entities as all-empty, paired
/// with the other side's (both sides have the same fields: the area's).
fn field_pairs<'a>(
    before: Option<&'a Fields>,
    after: Option<&'a Fields>,
) -> impl Iterator<Item = (&'static str, &'a str, &'a str)> {
    let names = after.or(before).map(|f| f.as_slice()).unwrap_or_default();
    names.iter().map(move |(name, _)| {
        let old = before.map(|f| get(f, name)).unwrap_or("");
        let new = after.map(|f| get(f, name)).unwrap_or("");
        (*name, old, new)
    })
}

// ---------------------------------------------------------------- attribution

/// Who made a change: the event that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Author {
    actor: String,
    version: u64,
    event_type: String,
    recorded_at: Timestamp,
    occurred_at: Timestamp,
}

impl Author {
    fn of(recorded: &RecordedEvent) -> Self {
        Self {
            actor: recorded.actor.clone(),
            version: recorded.stream_version,
            event_type: recorded.event_type.clone(),
            recorded_at: Timestamp(recorded.recorded_at_micros),
            occurred_at: Timestamp(recorded.occurred_at_micros),
        }
    }

    fn to_proto(&self) -> pb::AuditAuthor {
        pb::AuditAuthor {
            actor: self.actor.clone(),
            version: self.version,
            event_type: self.event_type.clone(),
            recorded_at: Some(timestamp_to_proto(self.recorded_at)),
            occurred_at: Some(timestamp_to_proto(self.occurred_at)),
        }
    }
}

/// The last event of the range that changed each field (and each entity).
#[derive(Debug, Default)]
struct Attribution {
    fields: HashMap<(EntityKey, &'static str), Author>,
    entities: HashMap<EntityKey, Author>,
}

impl Attribution {
    /// Applies `event` to `state`, crediting `author` with every field it changed.
    fn apply(&mut self, state: &mut Compared, event: &AccountEvent, author: &Author) {
        let keys = touched(&state.state, event);
        let before: Vec<Option<Fields>> = keys.iter().map(|k| entity_fields(state, k)).collect();
        state.apply(event);
        for (key, before) in keys.into_iter().zip(before) {
            let after = entity_fields(state, &key);
            let mut changed = false;
            for (field, old, new) in field_pairs(before.as_ref(), after.as_ref()) {
                if old != new {
                    self.fields.insert((key.clone(), field), author.clone());
                    changed = true;
                }
            }
            if changed || before.is_some() != after.is_some() {
                self.entities.insert(key, author.clone());
            }
        }
    }
}

// ---------------------------------------------------------------- comparing

fn shown(value: &str) -> String {
    if value.is_empty() {
        "(none)".to_owned()
    } else {
        excerpt(value)
    }
}

fn tier_rank(name: &str) -> Option<usize> {
    Tier::ALL.iter().position(|t| t.as_str() == name)
}

/// The verb for an entity whose fields went from `old` to `new`: its status change if it has
/// one that matters to an auditor (won, departed, retired, corrected...), else "changed".
fn changed_verb(area: Area, old: Option<&Fields>, new: &Fields) -> &'static str {
    let was = |name: &str| old.map(|f| get(f, name)).unwrap_or("");
    let is = |name: &str| get(new, name);
    match area {
        Area::Profile => match (tier_rank(was("tier")), tier_rank(is("tier"))) {
            (Some(a), Some(b)) if b > a => "promoted",
            (Some(a), Some(b)) if b < a => "demoted",
            _ => "changed",
        },
        Area::TierAssessment => "reassessed",
        Area::Plan => "revised",
        Area::Opportunity | Area::ActionItem | Area::Review if was("status") != is("status") => {
            match is("status") {
                "won" => "won",
                "lost" => "lost",
                "completed" => "completed",
                "cancelled" => "cancelled",
                "held" => "held",
                _ => "changed",
            }
        }
        Area::Stakeholder if was("departed_on").is_empty() && !is("departed_on").is_empty() => {
            "departed"
        }
        Area::EngagementRule if was("status") != "retired" && is("status") == "retired" => {
            "retired"
        }
        Area::Interaction
            if is("corrections") != "0" && was("corrections") != is("corrections") =>
        {
            "corrected"
        }
        _ => "changed",
    }
}

fn subject(key: &EntityKey) -> String {
    if key.id.is_empty() {
        key.area.label().to_owned()
    } else {
        format!("{} {}", key.area.label(), key.id)
    }
}

fn describe_change(
    key: &EntityKey,
    kind: pb::AuditChangeKind,
    old: Option<&Fields>,
    new: Option<&Fields>,
    fields: &[pb::AuditFieldChange],
) -> String {
    match (kind, new) {
        (pb::AuditChangeKind::Added, Some(new)) => {
            let headline: Vec<&str> = key
                .area
                .headline()
                .iter()
                .map(|name| get(new, name))
                .filter(|v| !v.is_empty())
                .collect();
            let mut line = format!(
                "{} {}: {}",
                subject(key),
                key.area.added_verb(),
                excerpt(&headline.join(", "))
            );
            let since = changed_verb(key.area, None, new);
            if !matches!(since, "changed" | "promoted" | "reassessed" | "revised") {
                line.push_str(&format!(" (since {since})"));
            }
            line
        }
        (pb::AuditChangeKind::Removed, _) => format!(
            "{} {}",
            subject(key),
            if key.area == Area::Team {
                "unassigned"
            } else {
                "removed"
            }
        ),
        (_, new) => {
            let verb = new.map_or("changed", |n| changed_verb(key.area, old, n));
            let parts: Vec<String> = fields
                .iter()
                .map(|f| {
                    format!(
                        "{} {} -> {}",
                        f.field,
                        shown(&f.old_value),
                        shown(&f.new_value)
                    )
                })
                .collect();
            format!("{} {verb}: {}", subject(key), parts.join("; "))
        }
    }
}

/// The net changes from `from` to `to`, attributed.
fn compare(from: &Flat, to: &Flat, attribution: &Attribution) -> Vec<pb::AuditChange> {
    let mut keys: Vec<&EntityKey> = from.keys().chain(to.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut changes = Vec::new();
    for key in keys {
        let (old, new) = (from.get(key), to.get(key));
        let kind = match (old, new) {
            (None, Some(_)) => pb::AuditChangeKind::Added,
            (Some(_), None) => pb::AuditChangeKind::Removed,
            _ => pb::AuditChangeKind::Changed,
        };
        let entity_author = attribution.entities.get(key);
        let fields: Vec<pb::AuditFieldChange> = field_pairs(old, new)
            .filter(|(_, o, n)| o != n)
            .map(|(field, o, n)| pb::AuditFieldChange {
                field: field.to_owned(),
                old_value: o.to_owned(),
                new_value: n.to_owned(),
                changed_by: attribution
                    .fields
                    .get(&(key.clone(), field))
                    .or(entity_author)
                    .map(Author::to_proto),
            })
            .collect();
        if fields.is_empty() {
            continue;
        }
        let last = fields
            .iter()
            .filter_map(|f| f.changed_by.as_ref())
            .max_by_key(|a| a.version)
            .cloned()
            .or_else(|| entity_author.map(Author::to_proto));
        changes.push(pb::AuditChange {
            area: key.area.to_proto() as i32,
            entity_id: key.id.clone(),
            kind: kind as i32,
            description: describe_change(key, kind, old, new, &fields),
            fields,
            last_changed_by: last,
        });
    }
    changes
}

// ---------------------------------------------------------------- ranges

/// Which two points to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Range {
    /// Two versions (`to` 0 = the current version).
    Versions { from: u64, to: u64 },
    /// The recorded outcomes of two reviews.
    Reviews { from: ReviewId, to: ReviewId },
}

/// Where each review of a stream stands, from its review events alone.
#[derive(Debug, Default)]
struct ReviewIndex {
    /// Review id -> (version of its outcome, if recorded; cancelled?).
    reviews: BTreeMap<ReviewId, (Option<u64>, bool)>,
}

impl ReviewIndex {
    fn read(store: &EventStore, stream: &StreamId, current: u64) -> Result<Self, AuditError> {
        let mut index = Self::default();
        for_each(store, stream, 1, current, |r| {
            // Only review events are decoded: the rest of the stream is skipped cheaply.
            if !matches!(
                r.event_type.as_str(),
                "ReviewScheduled" | "ReviewOutcomeRecorded" | "ReviewCancelled"
            ) {
                return Ok(ControlFlow::Continue(()));
            }
            match decode(r)? {
                AccountEvent::ReviewScheduled(e) => {
                    index.reviews.entry(e.review_id).or_default();
                }
                AccountEvent::ReviewOutcomeRecorded(e) => {
                    let entry = index.reviews.entry(e.review_id).or_default();
                    entry.0.get_or_insert(r.stream_version);
                }
                AccountEvent::ReviewCancelled(e) => {
                    index.reviews.entry(e.review_id).or_default().1 = true;
                }
                _ => {}
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(index)
    }

    fn outcome_version(
        &self,
        stream: &StreamId,
        field: &'static str,
        review: &ReviewId,
    ) -> Result<u64, AuditError> {
        match self.reviews.get(review) {
            Some((Some(version), _)) => Ok(*version),
            Some((None, cancelled)) => Err(AuditError::ReviewWithoutOutcome {
                field,
                stream: stream.clone(),
                review_id: review.to_string(),
                status: if *cancelled { "cancelled" } else { "scheduled" },
            }),
            None => {
                let known: Vec<String> = self
                    .reviews
                    .iter()
                    .filter_map(|(id, (v, _))| v.map(|v| format!("{id} (version {v})")))
                    .collect();
                Err(AuditError::UnknownReview {
                    field,
                    stream: stream.clone(),
                    review_id: review.to_string(),
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                })
            }
        }
    }
}

/// Resolves `range` to two versions and a description.
fn resolve(
    store: &EventStore,
    stream: &StreamId,
    current: u64,
    range: &Range,
) -> Result<(u64, u64, String), AuditError> {
    match range {
        Range::Versions { from, to } => {
            let to = if *to == 0 { current } else { *to };
            if *from > current {
                return Err(AuditError::VersionBeyondStream {
                    field: "versions.from_version",
                    stream: stream.clone(),
                    requested: *from,
                    current,
                });
            }
            if to > current {
                return Err(AuditError::VersionBeyondStream {
                    field: "versions.to_version",
                    stream: stream.clone(),
                    requested: to,
                    current,
                });
            }
            if *from > to {
                return Err(AuditError::invalid(
                    "versions.from_version",
                    format!(
                        "must not be after to_version ({from} > {to}); put the earlier version first"
                    ),
                ));
            }
            Ok((*from, to, format!("versions {from}-{to}")))
        }
        Range::Reviews { from, to } => {
            let index = ReviewIndex::read(store, stream, current)?;
            let from_version = index.outcome_version(stream, "reviews.from_review_id", from)?;
            let to_version = index.outcome_version(stream, "reviews.to_review_id", to)?;
            if from_version > to_version {
                return Err(AuditError::invalid(
                    "reviews.from_review_id",
                    format!(
                        "review {from}'s outcome (version {from_version}) was recorded after \
                         review {to}'s (version {to_version}); put the earlier review first"
                    ),
                ));
            }
            Ok((
                from_version,
                to_version,
                format!(
                    "versions {from_version}-{to_version} (outcome of review {from} to \
                     outcome of review {to})"
                ),
            ))
        }
    }
}

/// Compares `stream` at the two points of `range`.
pub(crate) fn diff_account(
    store: &EventStore,
    stream: &StreamId,
    range: &Range,
) -> Result<pb::DiffAccountResponse, AuditError> {
    let current = existing_version(store, stream)?;
    let (from_version, to_version, label) = resolve(store, stream, current, range)?;

    let mut state = Compared::default();
    for_each(store, stream, 1, from_version, |r| {
        state.apply(&decode(r)?);
        Ok(ControlFlow::Continue(()))
    })?;
    let from = flatten(&state);

    let mut attribution = Attribution::default();
    let mut events = Vec::new();
    let mut events_omitted = 0u64;
    if to_version > from_version {
        for_each(store, stream, from_version + 1, to_version, |r| {
            let event = decode(r)?;
            if events.len() < MAX_LISTED_EVENTS {
                events.push(pb::AuditEvent {
                    version: r.stream_version,
                    global_position: r.global_position,
                    event_type: r.event_type.clone(),
                    actor: r.actor.clone(),
                    occurred_at: Some(timestamp_to_proto(Timestamp(r.occurred_at_micros))),
                    recorded_at: Some(timestamp_to_proto(Timestamp(r.recorded_at_micros))),
                    description: describe(&event),
                    event_id: r.event_id.to_string(),
                });
            } else {
                events_omitted += 1;
            }
            attribution.apply(&mut state, &event, &Author::of(r));
            Ok(ControlFlow::Continue(()))
        })?;
    }
    let changes = compare(&from, &flatten(&state), &attribution);
    Ok(pb::DiffAccountResponse {
        from_version,
        to_version,
        range: label,
        events,
        events_omitted,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplan_domain::events::*;
    use keyplan_domain::values::*;

    fn stakeholder(id: &str, attitude: Attitude) -> AccountEvent {
        AccountEvent::StakeholderAdded(StakeholderAdded {
            stakeholder_id: StakeholderId::parse(id).expect("valid id"),
            name: "Lee Park".into(),
            title: "CFO".into(),
            reports_to: None,
            buying_role: BuyingRole::EconomicBuyer,
            influence: 4,
            attitude,
        })
    }

    fn change(id: &str, influence: Option<u8>, attitude: Option<Attitude>) -> AccountEvent {
        AccountEvent::StakeholderProfileChanged(StakeholderProfileChanged {
            stakeholder_id: StakeholderId::parse(id).expect("valid id"),
            title: None,
            reports_to: None,
            clear_reports_to: false,
            buying_role: None,
            influence,
            attitude,
            note: String::new(),
        })
    }

    fn author(actor: &str, version: u64) -> Author {
        Author {
            actor: actor.into(),
            version,
            event_type: "StakeholderProfileChanged".into(),
            recorded_at: Timestamp(version as i64),
            occurred_at: Timestamp(version as i64),
        }
    }

    #[test]
    fn each_net_change_is_credited_to_the_last_event_that_changed_that_field() {
        let mut state = Compared::default();
        state.apply(&stakeholder("lee", Attitude::Neutral));
        let from = flatten(&state);
        let mut attribution = Attribution::default();
        // ana changes the attitude, then bo the influence, then cy the attitude again.
        attribution.apply(
            &mut state,
            &change("lee", None, Some(Attitude::Supporter)),
            &author("ana", 2),
        );
        attribution.apply(&mut state, &change("lee", Some(5), None), &author("bo", 3));
        attribution.apply(
            &mut state,
            &change("lee", None, Some(Attitude::Champion)),
            &author("cy", 4),
        );
        let changes = compare(&from, &flatten(&state), &attribution);
        assert_eq!(changes.len(), 1);
        let c = &changes[0];
        assert_eq!(c.kind, pb::AuditChangeKind::Changed as i32);
        let fields: Vec<(&str, &str, &str, &str)> = c
            .fields
            .iter()
            .map(|f| {
                (
                    f.field.as_str(),
                    f.old_value.as_str(),
                    f.new_value.as_str(),
                    f.changed_by
                        .as_ref()
                        .map(|a| a.actor.as_str())
                        .unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("influence", "4", "5", "bo"),
                ("attitude", "neutral", "champion", "cy")
            ]
        );
        assert_eq!(c.last_changed_by.as_ref().map(|a| a.version), Some(4));
        assert_eq!(
            c.description,
            "stakeholder lee changed: influence 4 -> 5; attitude neutral -> champion"
        );
    }

    #[test]
    fn a_change_undone_within_the_range_is_not_a_net_change() {
        let mut state = Compared::default();
        state.apply(&stakeholder("lee", Attitude::Neutral));
        let from = flatten(&state);
        let mut attribution = Attribution::default();
        attribution.apply(
            &mut state,
            &change("lee", None, Some(Attitude::Critic)),
            &author("ana", 2),
        );
        attribution.apply(
            &mut state,
            &change("lee", None, Some(Attitude::Neutral)),
            &author("bo", 3),
        );
        assert!(compare(&from, &flatten(&state), &attribution).is_empty());
    }

    /// The account's state keeps only a hash of an interaction's text; the diff keeps the text
    /// itself, so a correction of the wording shows what it said before and after.
    #[test]
    fn a_correction_of_the_text_shows_the_old_and_new_text() {
        let mut state = Compared::default();
        for e in keyplan_testkit::globex::events() {
            state.apply(&e.event);
        }
        let (id, logged) = state
            .state
            .interactions
            .iter()
            .next()
            .map(|(id, i)| (id.clone(), i.clone()))
            .expect("globex logs interactions");
        let before = state.texts[&id].summary.clone();
        let details = InteractionDetails {
            occurred_at: logged.occurred_at,
            channel: logged.channel,
            stakeholders: logged.stakeholders.clone(),
            participants: logged.participants.clone(),
            summary: "Reworded by the auditor's request".into(),
            sentiment: logged.sentiment,
            next_step: state.texts[&id].next_step.clone(),
            opportunity_id: logged.opportunity_id.clone(),
        };
        let from = flatten(&state);
        let mut attribution = Attribution::default();
        attribution.apply(
            &mut state,
            &AccountEvent::InteractionCorrected(InteractionCorrected {
                interaction_id: id.clone(),
                details,
                reason: "wording".into(),
            }),
            &author("ana", 90),
        );
        let changes = compare(&from, &flatten(&state), &attribution);
        assert_eq!(changes.len(), 1);
        let fields: Vec<(&str, &str, &str)> = changes[0]
            .fields
            .iter()
            .map(|f| (f.field.as_str(), f.old_value.as_str(), f.new_value.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "summary",
                    before.as_str(),
                    "Reworded by the auditor's request"
                ),
                ("corrections", "0", "1"),
            ]
        );
    }

    /// Events of every type the Globex fixture lacks, applied after it.
    fn the_rest_of_the_event_types() -> Vec<AccountEvent> {
        let on = keyplan_testkit::date(2026, 1, 15);
        vec![
            AccountEvent::AccountPromoted(AccountPromoted {
                from: Tier::Key,
                to: Tier::Strategic,
                reason: "Top 3 by margin".into(),
            }),
            AccountEvent::AccountDemoted(AccountDemoted {
                from: Tier::Strategic,
                to: Tier::Key,
                reason: "Volume fell".into(),
            }),
            AccountEvent::TeamMemberUnassigned(TeamMemberUnassigned {
                person_id: PersonId::parse("sam").expect("valid id"),
                reason: "Moved to another region".into(),
            }),
            AccountEvent::ObjectiveProgressed(ObjectiveProgressed {
                objective_id: ObjectiveId::parse("obj-share").expect("valid id"),
                status: ObjectiveStatus::Achieved,
                current_value: "36%".into(),
                note: String::new(),
            }),
            AccountEvent::StakeholderDeparted(StakeholderDeparted {
                stakeholder_id: StakeholderId::parse("legal").expect("valid id"),
                departed_on: on,
                reason: "Left the company".into(),
            }),
            AccountEvent::ActionItemAdded(ActionItemAdded {
                action_item_id: ActionItemId::parse("a-x").expect("valid id"),
                title: "Plan 2026".into(),
                owner: PersonId::parse("dana").expect("valid id"),
                due_on: on,
                link: None,
            }),
            AccountEvent::ActionItemCancelled(ActionItemCancelled {
                action_item_id: ActionItemId::parse("a-x").expect("valid id"),
                reason: "Superseded".into(),
            }),
            AccountEvent::ReviewCancelled(ReviewCancelled {
                review_id: ReviewId::parse("rev-q4").expect("valid id"),
                reason: "Merged into the 2026 kick-off".into(),
            }),
        ]
    }

    #[test]
    fn every_event_changes_only_the_entities_it_is_said_to_touch() {
        // The attribution relies on touched() covering everything AccountState::apply changes:
        // compare whole flattened states around every event of every type.
        let mut events: Vec<AccountEvent> = keyplan_testkit::globex::events()
            .into_iter()
            .map(|e| e.event)
            .collect();
        events.extend(the_rest_of_the_event_types());
        let mut seen = std::collections::BTreeSet::new();
        let mut state = Compared::default();
        for event in &events {
            seen.insert(event.event_type());
            let keys = touched(&state.state, event);
            let before = flatten(&state);
            state.apply(event);
            let after = flatten(&state);
            let changed: Vec<&EntityKey> = before
                .keys()
                .chain(after.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .collect();
            assert!(!changed.is_empty(), "{event:?} changed nothing");
            for key in changed {
                assert!(keys.contains(key), "{event:?} changed {key:?} unannounced");
            }
        }
        assert_eq!(
            seen.len(),
            AccountEvent::TYPES.len(),
            "every event type is exercised"
        );
    }

    #[test]
    fn status_changes_read_as_what_happened() {
        let mut state = Compared::default();
        for e in keyplan_testkit::globex::events() {
            state.apply(&e.event);
        }
        let from = flatten(&state);
        let mut attribution = Attribution::default();
        for (i, event) in the_rest_of_the_event_types().iter().enumerate() {
            attribution.apply(&mut state, event, &author("dana", 85 + i as u64));
        }
        let changes = compare(&from, &flatten(&state), &attribution);
        let lines: Vec<&str> = changes.iter().map(|c| c.description.as_str()).collect();
        assert_eq!(
            lines,
            [
                "team member sam unassigned",
                "objective obj-share changed: status on track -> achieved; current_value (none) -> 36%",
                "action item a-x added: Plan 2026 (since cancelled)",
                "stakeholder legal departed: departed_on (none) -> 2026-01-15",
                "review rev-q4 cancelled: status scheduled -> cancelled; cancel_reason (none) -> Merged into the 2026 kick-off",
            ]
        );
        // Promoted then demoted: no net change of the profile.
        assert!(changes
            .iter()
            .all(|c| c.area != pb::AuditArea::Profile as i32));
        let removed = &changes[0];
        assert_eq!(removed.kind, pb::AuditChangeKind::Removed as i32);
        assert_eq!(
            removed.last_changed_by.as_ref().map(|a| a.version),
            Some(87)
        );
        assert_eq!(
            removed
                .fields
                .iter()
                .map(|f| (f.field.as_str(), f.old_value.as_str(), f.new_value.as_str()))
                .collect::<Vec<_>>(),
            [("name", "Sam Ortiz", ""), ("role", "service", "")]
        );
    }
}
