//! The per-account name directory, and the English summary of every event.
//!
//! A timeline is read by people, long after the fact: "Dana Kim (key account manager) met Lee
//! Park (CFO) in person" says more than "dana.kim logged mtg-7 with lee.park". The events
//! themselves carry ids, so the projection keeps, per account, the little it needs to name
//! things: team members with their roles, stakeholders with their titles, plans, objectives,
//! opportunities, actions, engagement rules, reviews, and each interaction's latest content
//! (to say what a correction changed). The directory is folded in the order events are
//! recorded; it decides what a summary says (what changed, who owns what), and each event is
//! described before it updates the directory.
//!
//! The names themselves are not written into the summary: it holds references
//! (`crate::names`), and [`Described::facts`] says how the event changes what things are
//! called. Entries are read with the names as they were at the entry's business time, so a
//! title change recorded late renames the entries after it in business time, and none
//! before it, without rewriting any stored entry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::Datelike;
use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_domain::AccountEvent;
use keyplan_projection::ProjectedEvent;
use serde::{Deserialize, Serialize};

use crate::names::{self, Change, Fact, NewFact};

/// What an entry concerns: the keys of the scoped views (plan, stakeholder, person,
/// opportunity).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SubjectKey {
    /// An account plan.
    Plan(PlanId),
    /// A customer stakeholder.
    Stakeholder(StakeholderId),
    /// A supplier person.
    Person(PersonId),
    /// An opportunity.
    Opportunity(OpportunityId),
}

/// Identifies one directory item, and so its stored key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum DirKey {
    Account,
    Person(PersonId),
    Stakeholder(StakeholderId),
    Plan(PlanId),
    Objective(ObjectiveId),
    Opportunity(OpportunityId),
    Action(ActionItemId),
    Rule(RuleId),
    Interaction(InteractionId),
    Review(ReviewId),
}

/// The customer, as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccountInfo {
    pub name: String,
    pub tier: Tier,
}

/// A supplier person who was on the team (kept after they leave, to name them in old entries
/// and in entries about what they still own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PersonInfo {
    pub name: String,
    pub role: TeamRole,
    pub active: bool,
}

/// A stakeholder of the decision-making unit: the domain's own, folded the same way (and
/// stored with the same encoding as the struct it replaced).
pub(crate) type StakeholderInfo = keyplan_domain::state::Stakeholder;

/// An account plan (plans have no title: they are named by id and period).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PlanInfo {
    pub period: PlanPeriod,
    pub review_frequency: ReviewFrequency,
}

/// An objective.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ObjectiveInfo {
    pub plan_id: PlanId,
    pub title: String,
    pub owner: PersonId,
    pub status: ObjectiveStatus,
}

/// An opportunity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OpportunityInfo {
    pub title: String,
    pub owner: PersonId,
    pub stage: OpportunityStage,
    pub expected_close_on: Date,
}

/// An action item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ActionInfo {
    pub title: String,
    pub owner: PersonId,
    pub link: Option<ActionLink>,
}

/// An engagement rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RuleInfo {
    pub definition: EngagementRuleSet,
    pub retired: bool,
}

/// An interaction's latest content and the entry that holds it (what a correction corrects).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InteractionInfo {
    pub details: InteractionDetails,
    pub position: u64,
}

/// A review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReviewInfo {
    pub kind: ReviewKind,
    pub plan_id: Option<PlanId>,
    pub due_on: Date,
}

/// One stored directory item (the value under a directory key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DirItem {
    Account(AccountInfo),
    Person(PersonInfo),
    Stakeholder(StakeholderInfo),
    Plan(PlanInfo),
    Objective(ObjectiveInfo),
    Opportunity(OpportunityInfo),
    Action(ActionInfo),
    Rule(RuleInfo),
    Interaction(InteractionInfo),
    Review(ReviewInfo),
}

/// The names an account's summaries need, as of the last applied event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Directory {
    pub account: Option<AccountInfo>,
    pub people: BTreeMap<PersonId, PersonInfo>,
    pub stakeholders: BTreeMap<StakeholderId, StakeholderInfo>,
    pub plans: BTreeMap<PlanId, PlanInfo>,
    pub objectives: BTreeMap<ObjectiveId, ObjectiveInfo>,
    pub opportunities: BTreeMap<OpportunityId, OpportunityInfo>,
    pub actions: BTreeMap<ActionItemId, ActionInfo>,
    pub rules: BTreeMap<RuleId, RuleInfo>,
    pub interactions: BTreeMap<InteractionId, InteractionInfo>,
    pub reviews: BTreeMap<ReviewId, ReviewInfo>,
}

/// What [`Directory::describe`] makes of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Described {
    /// The English sentence.
    pub summary: String,
    /// What the entry concerns (sorted, unique).
    pub subjects: BTreeSet<SubjectKey>,
    /// For a correction: the position of the entry it supersedes.
    pub corrects: Option<u64>,
    /// What the event changes in how subjects are named (for [`crate::names::NameHistory`]).
    pub facts: Vec<NewFact>,
}

/// Longest quoted excerpt of free text (section text, interaction summary) in a summary.
const EXCERPT_CHARS: usize = 120;

impl Directory {
    /// The item under `key`, for persisting it.
    pub fn item(&self, key: &DirKey) -> Option<DirItem> {
        Some(match key {
            DirKey::Account => DirItem::Account(self.account.clone()?),
            DirKey::Person(id) => DirItem::Person(self.people.get(id)?.clone()),
            DirKey::Stakeholder(id) => DirItem::Stakeholder(self.stakeholders.get(id)?.clone()),
            DirKey::Plan(id) => DirItem::Plan(self.plans.get(id)?.clone()),
            DirKey::Objective(id) => DirItem::Objective(self.objectives.get(id)?.clone()),
            DirKey::Opportunity(id) => DirItem::Opportunity(self.opportunities.get(id)?.clone()),
            DirKey::Action(id) => DirItem::Action(self.actions.get(id)?.clone()),
            DirKey::Rule(id) => DirItem::Rule(self.rules.get(id)?.clone()),
            DirKey::Interaction(id) => DirItem::Interaction(self.interactions.get(id)?.clone()),
            DirKey::Review(id) => DirItem::Review(self.reviews.get(id)?.clone()),
        })
    }

    /// Puts back a persisted item; `false` if the item's kind does not match the key's.
    pub fn restore(&mut self, key: DirKey, item: DirItem) -> bool {
        match (key, item) {
            (DirKey::Account, DirItem::Account(v)) => self.account = Some(v),
            (DirKey::Person(id), DirItem::Person(v)) => {
                self.people.insert(id, v);
            }
            (DirKey::Stakeholder(id), DirItem::Stakeholder(v)) => {
                self.stakeholders.insert(id, v);
            }
            (DirKey::Plan(id), DirItem::Plan(v)) => {
                self.plans.insert(id, v);
            }
            (DirKey::Objective(id), DirItem::Objective(v)) => {
                self.objectives.insert(id, v);
            }
            (DirKey::Opportunity(id), DirItem::Opportunity(v)) => {
                self.opportunities.insert(id, v);
            }
            (DirKey::Action(id), DirItem::Action(v)) => {
                self.actions.insert(id, v);
            }
            (DirKey::Rule(id), DirItem::Rule(v)) => {
                self.rules.insert(id, v);
            }
            (DirKey::Interaction(id), DirItem::Interaction(v)) => {
                self.interactions.insert(id, v);
            }
            (DirKey::Review(id), DirItem::Review(v)) => {
                self.reviews.insert(id, v);
            }
            _ => return false,
        }
        true
    }

    /// Whether a scope's subject ever appeared in the account (so that an unknown id can be
    /// told apart from a known one without entries in a time range).
    pub fn knows(&self, subject: &SubjectKey) -> bool {
        match subject {
            SubjectKey::Plan(id) => self.plans.contains_key(id),
            SubjectKey::Stakeholder(id) => self.stakeholders.contains_key(id),
            SubjectKey::Person(id) => self.people.contains_key(id),
            SubjectKey::Opportunity(id) => self.opportunities.contains_key(id),
        }
    }

    // ------------------------------------------------------------ names
    //
    // Names go into the summary as references (`crate::names`), resolved when the entry is
    // read with the names as they were at the entry's business time.

    /// A person: "Dana Kim (key account manager)", "Sam Lee (former sales)", or the bare id
    /// of a person who never was on the team.
    fn person(&self, id: &PersonId) -> String {
        names::person(id)
    }

    /// The actor as a person if the actor id is one, else as recorded.
    fn actor(&self, actor: &str) -> String {
        names::actor(actor)
    }

    fn people_list(&self, ids: &[PersonId]) -> String {
        join(ids.iter().map(|id| self.person(id)))
    }

    /// "Lee Park (CFO)", "Lee Park (CFO, departed)", or the bare id.
    fn stakeholder(&self, id: &StakeholderId) -> String {
        names::stakeholder(id)
    }

    fn stakeholder_list(&self, ids: &[StakeholderId]) -> String {
        join(ids.iter().map(|id| self.stakeholder(id)))
    }

    /// "plan-2025 (calendar year 2025)".
    fn plan(&self, id: &PlanId) -> String {
        names::plan(id)
    }

    fn objective(&self, id: &ObjectiveId) -> String {
        names::objective(id)
    }

    fn opportunity(&self, id: &OpportunityId) -> String {
        names::opportunity(id)
    }

    fn action(&self, id: &ActionItemId) -> String {
        names::action(id)
    }

    /// "the quarterly business review of plan-2025 (calendar year 2025) due 2025-03-31".
    fn review(&self, id: &ReviewId) -> String {
        names::review(id)
    }

    /// "quarterly business review of plan-2025 (calendar year 2025)", from a review's facts
    /// (a review being scheduled).
    fn review_kind_of(&self, r: &ReviewInfo) -> String {
        match &r.plan_id {
            Some(plan) => format!("{} of {}", r.kind, self.plan(plan)),
            None => r.kind.to_string(),
        }
    }

    /// "Dana Kim (key account manager) keeps in contact with Lee Park (CFO) at least every 30
    /// days (in person or video call)".
    fn rule_text(&self, r: &EngagementRuleSet) -> String {
        let target = match &r.target {
            RuleTarget::Stakeholder(id) => self.stakeholder(id),
            RuleTarget::BuyingRole(role) => {
                // Any one stakeholder with the role qualifies: "an economic buyer".
                format!("{} {role}", article(role.as_str()))
            }
        };
        let mut text = format!(
            "{} keeps in contact with {target} at least every {} ({})",
            self.person(&r.owner),
            days(r.cadence_days),
            join_or(r.channels.iter().map(ToString::to_string)),
        );
        if let Some(opportunity) = &r.opportunity_id {
            let _ = write!(text, " for opportunity {}", self.opportunity(opportunity));
        }
        text
    }

    // ------------------------------------------------------------ subjects

    fn objective_plan(&self, id: &ObjectiveId) -> Option<PlanId> {
        self.objectives.get(id).map(|o| o.plan_id.clone())
    }

    /// The plan or opportunity an action contributes to, and its owner.
    fn action_subjects(&self, link: Option<&ActionLink>, subjects: &mut BTreeSet<SubjectKey>) {
        match link {
            Some(ActionLink::Objective(id)) => {
                if let Some(plan) = self.objective_plan(id) {
                    subjects.insert(SubjectKey::Plan(plan));
                }
            }
            Some(ActionLink::Opportunity(id)) => {
                subjects.insert(SubjectKey::Opportunity(id.clone()));
            }
            Some(ActionLink::Review(id)) => {
                if let Some(plan) = self.reviews.get(id).and_then(|r| r.plan_id.clone()) {
                    subjects.insert(SubjectKey::Plan(plan));
                }
            }
            None => {}
        }
    }

    fn rule_subjects(r: &EngagementRuleSet, subjects: &mut BTreeSet<SubjectKey>) {
        subjects.insert(SubjectKey::Person(r.owner.clone()));
        if let RuleTarget::Stakeholder(id) = &r.target {
            subjects.insert(SubjectKey::Stakeholder(id.clone()));
        }
        if let Some(id) = &r.opportunity_id {
            subjects.insert(SubjectKey::Opportunity(id.clone()));
        }
    }

    fn interaction_subjects(d: &InteractionDetails, subjects: &mut BTreeSet<SubjectKey>) {
        subjects.extend(d.stakeholders.iter().cloned().map(SubjectKey::Stakeholder));
        subjects.extend(d.participants.iter().cloned().map(SubjectKey::Person));
        if let Some(id) = &d.opportunity_id {
            subjects.insert(SubjectKey::Opportunity(id.clone()));
        }
    }

    // ------------------------------------------------------------ describe

    /// Describes `event` with the names as they stand, then records what the event changes
    /// in the directory; the keys of the items changed are added to `touched` (for flush).
    pub fn describe(
        &mut self,
        event: &ProjectedEvent,
        touched: &mut BTreeSet<DirKey>,
    ) -> Described {
        let actor = self.actor(&event.actor);
        let mut subjects = BTreeSet::new();
        let mut corrects = None;
        let mut facts: Vec<NewFact> = Vec::new();
        let mut fact = |key: names::NameKey, change: Change| {
            facts.push((
                key,
                Fact {
                    occurred_at: event.occurred_at.0,
                    position: event.position,
                    change,
                },
            ));
        };
        let summary = match &event.event {
            AccountEvent::AccountRegistered(e) => {
                let labels: Vec<String> = [
                    e.industry.clone(),
                    e.region.clone(),
                    if e.headquarters.is_empty() {
                        String::new()
                    } else {
                        format!("headquartered in {}", e.headquarters)
                    },
                ]
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect();
                let labels = if labels.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", labels.join(", "))
                };
                self.account = Some(AccountInfo {
                    name: e.name.clone(),
                    tier: e.tier,
                });
                touched.insert(DirKey::Account);
                format!(
                    "{actor} registered {}{labels} as a {} account",
                    e.name, e.tier
                )
            }
            AccountEvent::TierAssessed(e) => {
                subjects.insert(SubjectKey::Person(e.assessed_by.clone()));
                format!(
                    "{} assessed the account: weighted score {} of 10 on {}; recommended tier: {}",
                    self.person(&e.assessed_by),
                    milli(e.weighted_score_milli),
                    count(e.criteria.len(), "criterion", "criteria"),
                    e.recommended_tier
                )
            }
            AccountEvent::AccountPromoted(e) => {
                self.set_tier(e.to, touched);
                format!(
                    "{actor} promoted the account from {} to {} tier{}",
                    e.from,
                    e.to,
                    because(&e.reason)
                )
            }
            AccountEvent::AccountDemoted(e) => {
                self.set_tier(e.to, touched);
                format!(
                    "{actor} demoted the account from {} to {} tier{}",
                    e.from,
                    e.to,
                    because(&e.reason)
                )
            }
            AccountEvent::TeamMemberAssigned(e) => {
                subjects.insert(SubjectKey::Person(e.person_id.clone()));
                let back = if self.people.contains_key(&e.person_id) {
                    " back"
                } else {
                    ""
                };
                self.people.insert(
                    e.person_id.clone(),
                    PersonInfo {
                        name: e.name.clone(),
                        role: e.role,
                        active: true,
                    },
                );
                touched.insert(DirKey::Person(e.person_id.clone()));
                fact(
                    names::person_key(&e.person_id),
                    Change::Assigned {
                        name: e.name.clone(),
                        role: e.role,
                    },
                );
                format!(
                    "{actor} added {} ({}){back} to the account team",
                    e.name, e.role
                )
            }
            AccountEvent::TeamMemberUnassigned(e) => {
                subjects.insert(SubjectKey::Person(e.person_id.clone()));
                let who = self.person(&e.person_id);
                if let Some(p) = self.people.get_mut(&e.person_id) {
                    p.active = false;
                    touched.insert(DirKey::Person(e.person_id.clone()));
                }
                fact(names::person_key(&e.person_id), Change::Unassigned);
                format!(
                    "{actor} removed {who} from the account team{}",
                    because(&e.reason)
                )
            }
            AccountEvent::PlanDrafted(e) => {
                subjects.insert(SubjectKey::Plan(e.plan_id.clone()));
                subjects.insert(SubjectKey::Person(e.prepared_by.clone()));
                self.plans.insert(
                    e.plan_id.clone(),
                    PlanInfo {
                        period: e.period.clone(),
                        review_frequency: e.review_frequency,
                    },
                );
                touched.insert(DirKey::Plan(e.plan_id.clone()));
                fact(
                    names::plan_key(&e.plan_id),
                    Change::Drafted(period_label(&e.period)),
                );
                format!(
                    "{actor} drafted account plan {}, prepared by {} on {}, to be reviewed {}",
                    self.plan(&e.plan_id),
                    self.person(&e.prepared_by),
                    e.prepared_on,
                    e.review_frequency.as_str()
                )
            }
            AccountEvent::PlanSectionRevised(e) => {
                subjects.insert(SubjectKey::Plan(e.plan_id.clone()));
                if e.text.trim().is_empty() {
                    format!(
                        "{actor} cleared the {} section of {}",
                        e.section,
                        self.plan(&e.plan_id)
                    )
                } else {
                    format!(
                        "{actor} revised the {} section of {}: {}",
                        e.section,
                        self.plan(&e.plan_id),
                        quoted(&e.text)
                    )
                }
            }
            AccountEvent::ObjectiveSet(e) => {
                subjects.insert(SubjectKey::Plan(e.plan_id.clone()));
                subjects.insert(SubjectKey::Person(e.owner.clone()));
                let verb = match self.objectives.get(&e.objective_id) {
                    Some(previous) => {
                        // A hand-over concerns the previous owner too.
                        subjects.insert(SubjectKey::Person(previous.owner.clone()));
                        subjects.insert(SubjectKey::Plan(previous.plan_id.clone()));
                        "redefined"
                    }
                    None => "set",
                };
                let text = format!(
                    "{actor} {verb} objective {} in {}: {} to reach {} by {}, owned by {}; status {}",
                    quoted(&e.title),
                    self.plan(&e.plan_id),
                    e.metric,
                    e.target,
                    e.due_on,
                    self.person(&e.owner),
                    e.status
                );
                self.objectives.insert(
                    e.objective_id.clone(),
                    ObjectiveInfo {
                        plan_id: e.plan_id.clone(),
                        title: e.title.clone(),
                        owner: e.owner.clone(),
                        status: e.status,
                    },
                );
                touched.insert(DirKey::Objective(e.objective_id.clone()));
                fact(
                    names::objective_key(&e.objective_id),
                    Change::Titled(quoted(&e.title)),
                );
                text
            }
            AccountEvent::ObjectiveProgressed(e) => {
                let mut text = format!(
                    "{actor} recorded progress on objective {}",
                    self.objective(&e.objective_id)
                );
                if let Some(o) = self.objectives.get_mut(&e.objective_id) {
                    subjects.insert(SubjectKey::Plan(o.plan_id.clone()));
                    subjects.insert(SubjectKey::Person(o.owner.clone()));
                    if !e.current_value.is_empty() {
                        let _ = write!(text, ": now {}", e.current_value);
                    }
                    if o.status == e.status {
                        let _ = write!(text, "; status {}", e.status);
                    } else {
                        let _ = write!(text, "; status {} → {}", o.status, e.status);
                    }
                    o.status = e.status;
                    touched.insert(DirKey::Objective(e.objective_id.clone()));
                } else {
                    let _ = write!(text, ": now {}; status {}", e.current_value, e.status);
                }
                if !e.note.is_empty() {
                    let _ = write!(text, "; note: {}", e.note);
                }
                text
            }
            AccountEvent::OpportunityIdentified(e) => {
                subjects.insert(SubjectKey::Opportunity(e.opportunity_id.clone()));
                subjects.insert(SubjectKey::Person(e.owner.clone()));
                self.opportunities.insert(
                    e.opportunity_id.clone(),
                    OpportunityInfo {
                        title: e.title.clone(),
                        owner: e.owner.clone(),
                        stage: e.stage,
                        expected_close_on: e.expected_close_on,
                    },
                );
                touched.insert(DirKey::Opportunity(e.opportunity_id.clone()));
                fact(
                    names::opportunity_key(&e.opportunity_id),
                    Change::Titled(quoted(&e.title)),
                );
                format!(
                    "{actor} identified opportunity {} worth {}, {}, expected to close {}, owned by {}",
                    quoted(&e.title),
                    money(&e.value),
                    e.stage,
                    e.expected_close_on,
                    self.person(&e.owner)
                )
            }
            AccountEvent::OpportunityStageChanged(e) => {
                subjects.insert(SubjectKey::Opportunity(e.opportunity_id.clone()));
                let name = self.opportunity(&e.opportunity_id);
                match self.opportunities.get_mut(&e.opportunity_id) {
                    Some(o) => {
                        subjects.insert(SubjectKey::Person(o.owner.clone()));
                        let close = e
                            .expected_close_on
                            .filter(|c| *c != o.expected_close_on)
                            .map(|c| (o.expected_close_on, c));
                        let text = match (o.stage != e.stage, close) {
                            (true, None) => format!(
                                "{actor} moved opportunity {name} from {} to {}",
                                o.stage, e.stage
                            ),
                            (true, Some((before, after))) => format!(
                                "{actor} moved opportunity {name} from {} to {}; expected close {before} → {after}",
                                o.stage, e.stage
                            ),
                            (false, Some((before, after))) => format!(
                                "{actor} moved the expected close of opportunity {name} from {before} to {after}"
                            ),
                            (false, None) => format!(
                                "{actor} confirmed opportunity {name} at stage {}",
                                e.stage
                            ),
                        };
                        if let Some((_, after)) = close {
                            o.expected_close_on = after;
                        }
                        o.stage = e.stage;
                        touched.insert(DirKey::Opportunity(e.opportunity_id.clone()));
                        text
                    }
                    None => format!("{actor} moved opportunity {name} to stage {}", e.stage),
                }
            }
            AccountEvent::OpportunityWon(e) => {
                subjects.insert(SubjectKey::Opportunity(e.opportunity_id.clone()));
                if let Some(o) = self.opportunities.get(&e.opportunity_id) {
                    subjects.insert(SubjectKey::Person(o.owner.clone()));
                }
                format!(
                    "{actor} recorded opportunity {} as won on {} for {}{}",
                    self.opportunity(&e.opportunity_id),
                    e.closed_on,
                    money(&e.value),
                    because(&e.reason)
                )
            }
            AccountEvent::OpportunityLost(e) => {
                subjects.insert(SubjectKey::Opportunity(e.opportunity_id.clone()));
                if let Some(o) = self.opportunities.get(&e.opportunity_id) {
                    subjects.insert(SubjectKey::Person(o.owner.clone()));
                }
                format!(
                    "{actor} recorded opportunity {} as lost on {}{}",
                    self.opportunity(&e.opportunity_id),
                    e.closed_on,
                    because(&e.reason)
                )
            }
            AccountEvent::ActionItemAdded(e) => {
                subjects.insert(SubjectKey::Person(e.owner.clone()));
                self.action_subjects(e.link.as_ref(), &mut subjects);
                let purpose = match &e.link {
                    Some(ActionLink::Objective(id)) => {
                        format!(", toward objective {}", self.objective(id))
                    }
                    Some(ActionLink::Opportunity(id)) => {
                        format!(", for opportunity {}", self.opportunity(id))
                    }
                    Some(ActionLink::Review(id)) => format!(", following {}", self.review(id)),
                    None => String::new(),
                };
                self.actions.insert(
                    e.action_item_id.clone(),
                    ActionInfo {
                        title: e.title.clone(),
                        owner: e.owner.clone(),
                        link: e.link.clone(),
                    },
                );
                touched.insert(DirKey::Action(e.action_item_id.clone()));
                fact(
                    names::action_key(&e.action_item_id),
                    Change::Titled(quoted(&e.title)),
                );
                format!(
                    "{actor} added action {} for {}, due {}{purpose}",
                    quoted(&e.title),
                    self.person(&e.owner),
                    e.due_on
                )
            }
            AccountEvent::ActionItemCompleted(e) => {
                let owner = self.action_owner(&e.action_item_id, &mut subjects);
                let mut text = format!(
                    "{actor} completed action {}{owner} on {}",
                    self.action(&e.action_item_id),
                    e.completed_on
                );
                if !e.note.is_empty() {
                    let _ = write!(text, ": {}", e.note);
                }
                text
            }
            AccountEvent::ActionItemCancelled(e) => {
                let owner = self.action_owner(&e.action_item_id, &mut subjects);
                format!(
                    "{actor} cancelled action {}{owner}{}",
                    self.action(&e.action_item_id),
                    because(&e.reason)
                )
            }
            AccountEvent::RevenueRecorded(e) => {
                let product = if e.product.is_empty() {
                    "all products".to_owned()
                } else {
                    format!("product {}", e.product)
                };
                let mut text = format!(
                    "{actor} recorded revenue of {} for {} to {} ({product})",
                    money(&e.actual),
                    e.period_start,
                    e.period_end
                );
                match percent(e.actual.minor_units, e.goal.minor_units) {
                    Some(p) => {
                        let _ = write!(text, ": {p}% of the {} goal", money(&e.goal));
                    }
                    None => {
                        let _ = write!(text, " against a goal of {}", money(&e.goal));
                    }
                }
                if let Some(bp) = e.margin_basis_points {
                    let _ = write!(text, ", margin {}", basis_points(bp));
                }
                text
            }
            AccountEvent::StakeholderAdded(e) => {
                subjects.insert(SubjectKey::Stakeholder(e.stakeholder_id.clone()));
                let mut text = format!(
                    "{actor} added {} ({}) to the decision-making unit as {}, influence {}/5, {}",
                    e.name, e.title, e.buying_role, e.influence, e.attitude
                );
                if let Some(manager) = &e.reports_to {
                    let _ = write!(text, ", reporting to {}", self.stakeholder(manager));
                }
                self.stakeholders
                    .insert(e.stakeholder_id.clone(), StakeholderInfo::added(e));
                touched.insert(DirKey::Stakeholder(e.stakeholder_id.clone()));
                fact(
                    names::stakeholder_key(&e.stakeholder_id),
                    Change::Added {
                        name: e.name.clone(),
                        title: e.title.clone(),
                    },
                );
                text
            }
            AccountEvent::StakeholderProfileChanged(e) => {
                subjects.insert(SubjectKey::Stakeholder(e.stakeholder_id.clone()));
                let who = self.stakeholder(&e.stakeholder_id);
                let changes = self.profile_changes(e);
                if let Some(s) = self.stakeholders.get_mut(&e.stakeholder_id) {
                    s.change_profile(e);
                    touched.insert(DirKey::Stakeholder(e.stakeholder_id.clone()));
                }
                if let Some(title) = &e.title {
                    // Recorded even if the latest title is the same: in business-time order
                    // it may not be.
                    fact(
                        names::stakeholder_key(&e.stakeholder_id),
                        Change::Retitled(title.clone()),
                    );
                }
                let mut text = if changes.is_empty() {
                    format!("{actor} reviewed the profile of {who} without changes")
                } else {
                    format!("{actor} updated {who}: {}", changes.join(", "))
                };
                if !e.note.is_empty() {
                    let _ = write!(text, "; note: {}", e.note);
                }
                text
            }
            AccountEvent::StakeholderDeparted(e) => {
                subjects.insert(SubjectKey::Stakeholder(e.stakeholder_id.clone()));
                let who = self.stakeholder(&e.stakeholder_id);
                if let Some(s) = self.stakeholders.get_mut(&e.stakeholder_id) {
                    s.departed_on = Some(e.departed_on);
                    touched.insert(DirKey::Stakeholder(e.stakeholder_id.clone()));
                }
                // Present on their last day (as the domain and compliance count them).
                facts.push((
                    names::stakeholder_key(&e.stakeholder_id),
                    Fact {
                        occurred_at: names::departure_time(e.departed_on),
                        position: event.position,
                        change: Change::Departed,
                    },
                ));
                format!(
                    "{actor} recorded that {who} left on {}{}",
                    e.departed_on,
                    because(&e.reason)
                )
            }
            AccountEvent::EngagementRuleSet(e) => {
                Self::rule_subjects(e, &mut subjects);
                let verb = match self.rules.get(&e.rule_id) {
                    Some(previous) if !previous.retired => {
                        // A changed owner or target concerns the previous ones too.
                        Self::rule_subjects(&previous.definition, &mut subjects);
                        "changed"
                    }
                    _ => "set",
                };
                let text = format!(
                    "{actor} {verb} engagement rule {}: {}",
                    e.rule_id,
                    self.rule_text(e)
                );
                self.rules.insert(
                    e.rule_id.clone(),
                    RuleInfo {
                        definition: e.clone(),
                        retired: false,
                    },
                );
                touched.insert(DirKey::Rule(e.rule_id.clone()));
                text
            }
            AccountEvent::EngagementRuleRetired(e) => {
                let rule = self.rules.get(&e.rule_id).map(|r| r.definition.clone());
                let text = match &rule {
                    Some(definition) => {
                        Self::rule_subjects(definition, &mut subjects);
                        format!(
                            "{actor} retired engagement rule {} ({}){}",
                            e.rule_id,
                            self.rule_text(definition),
                            because(&e.reason)
                        )
                    }
                    None => format!(
                        "{actor} retired engagement rule {}{}",
                        e.rule_id,
                        because(&e.reason)
                    ),
                };
                if let Some(r) = self.rules.get_mut(&e.rule_id) {
                    r.retired = true;
                    touched.insert(DirKey::Rule(e.rule_id.clone()));
                }
                text
            }
            AccountEvent::InteractionLogged(e) => {
                Self::interaction_subjects(&e.details, &mut subjects);
                let text = self.interaction_text(&e.details, event);
                self.interactions.insert(
                    e.interaction_id.clone(),
                    InteractionInfo {
                        details: e.details.clone(),
                        position: event.position,
                    },
                );
                touched.insert(DirKey::Interaction(e.interaction_id.clone()));
                text
            }
            AccountEvent::InteractionCorrected(e) => {
                Self::interaction_subjects(&e.details, &mut subjects);
                let text = match self.interactions.get(&e.interaction_id) {
                    Some(previous) => {
                        Self::interaction_subjects(&previous.details, &mut subjects);
                        corrects = Some(previous.position);
                        let changes = self.interaction_changes(&previous.details, &e.details);
                        format!(
                            "{actor} corrected the {} of {} with {}: {}{}",
                            channel_noun(previous.details.channel),
                            previous.details.occurred_at.date(),
                            self.stakeholder_list(&previous.details.stakeholders),
                            if changes.is_empty() {
                                "no change in content".to_owned()
                            } else {
                                changes.join("; ")
                            },
                            reason_clause(&e.reason)
                        )
                    }
                    None => format!(
                        "{actor} corrected interaction {}: {}{}",
                        e.interaction_id,
                        self.interaction_text(&e.details, event),
                        reason_clause(&e.reason)
                    ),
                };
                self.interactions.insert(
                    e.interaction_id.clone(),
                    InteractionInfo {
                        details: e.details.clone(),
                        position: event.position,
                    },
                );
                touched.insert(DirKey::Interaction(e.interaction_id.clone()));
                text
            }
            AccountEvent::ReviewScheduled(e) => {
                if let Some(plan) = &e.plan_id {
                    subjects.insert(SubjectKey::Plan(plan.clone()));
                }
                subjects.extend(e.supplier_attendees.iter().cloned().map(SubjectKey::Person));
                subjects.extend(
                    e.customer_attendees
                        .iter()
                        .cloned()
                        .map(SubjectKey::Stakeholder),
                );
                let info = ReviewInfo {
                    kind: e.kind,
                    plan_id: e.plan_id.clone(),
                    due_on: e.due_on,
                };
                let what = self.review_kind_of(&info);
                let mut text = format!(
                    "{actor} scheduled {} {what} for {}",
                    article(&what),
                    e.due_on
                );
                let invited = self.attendees(&e.supplier_attendees, &e.customer_attendees);
                if !invited.is_empty() {
                    let _ = write!(text, " with {invited}");
                }
                fact(
                    names::review_key(&e.review_id),
                    Change::Scheduled {
                        kind: info.kind,
                        plan_id: info.plan_id.clone(),
                        due_on: info.due_on,
                    },
                );
                self.reviews.insert(e.review_id.clone(), info);
                touched.insert(DirKey::Review(e.review_id.clone()));
                text
            }
            AccountEvent::ReviewOutcomeRecorded(e) => {
                let review = self.reviews.get(&e.review_id).cloned();
                if let Some(plan) = review.as_ref().and_then(|r| r.plan_id.clone()) {
                    subjects.insert(SubjectKey::Plan(plan));
                }
                subjects.extend(e.supplier_attendees.iter().cloned().map(SubjectKey::Person));
                subjects.extend(
                    e.customer_attendees
                        .iter()
                        .cloned()
                        .map(SubjectKey::Stakeholder),
                );
                subjects.extend(
                    e.follow_up_actions
                        .iter()
                        .map(|f| SubjectKey::Person(f.owner.clone())),
                );
                let what = names::review_kind(&e.review_id);
                let mut text = format!("{actor} recorded the {what} held on {}", e.held_on);
                let late = review
                    .as_ref()
                    .map(|r| (e.held_on - r.due_on).num_days())
                    .filter(|days| *days > 0);
                if let Some(late) = late {
                    let _ = write!(text, ", {} after it was due", days(late as u32));
                }
                let attended = self.attendees(&e.supplier_attendees, &e.customer_attendees);
                if !attended.is_empty() {
                    let comma = if late.is_some() { "," } else { "" };
                    let _ = write!(text, "{comma} with {attended}");
                }
                let _ = write!(text, ": {}, health {}", e.outcome, e.health);
                if !e.decisions.is_empty() {
                    let _ = write!(text, "; decisions: {}", e.decisions.join("; "));
                }
                if !e.follow_up_actions.is_empty() {
                    let follow_ups = e.follow_up_actions.iter().map(|f| {
                        format!(
                            "{} for {} by {}",
                            quoted(&f.title),
                            self.person(&f.owner),
                            f.due_on
                        )
                    });
                    let _ = write!(text, "; follow-up: {}", join(follow_ups));
                }
                for f in &e.follow_up_actions {
                    self.actions.insert(
                        f.action_item_id.clone(),
                        ActionInfo {
                            title: f.title.clone(),
                            owner: f.owner.clone(),
                            link: Some(ActionLink::Review(e.review_id.clone())),
                        },
                    );
                    touched.insert(DirKey::Action(f.action_item_id.clone()));
                    fact(
                        names::action_key(&f.action_item_id),
                        Change::Titled(quoted(&f.title)),
                    );
                }
                text
            }
            AccountEvent::ReviewCancelled(e) => {
                if let Some(plan) = self
                    .reviews
                    .get(&e.review_id)
                    .and_then(|r| r.plan_id.clone())
                {
                    subjects.insert(SubjectKey::Plan(plan));
                }
                format!(
                    "{actor} cancelled {}{}",
                    self.review(&e.review_id),
                    because(&e.reason)
                )
            }
        };
        Described {
            summary,
            subjects,
            corrects,
            facts,
        }
    }

    fn set_tier(&mut self, tier: Tier, touched: &mut BTreeSet<DirKey>) {
        if let Some(account) = &mut self.account {
            account.tier = tier;
            touched.insert(DirKey::Account);
        }
    }

    /// " (owner Dana Kim (key account manager))", and the action's subjects.
    fn action_owner(&self, id: &ActionItemId, subjects: &mut BTreeSet<SubjectKey>) -> String {
        match self.actions.get(id) {
            Some(a) => {
                subjects.insert(SubjectKey::Person(a.owner.clone()));
                self.action_subjects(a.link.as_ref(), subjects);
                format!(" (owner {})", self.person(&a.owner))
            }
            None => String::new(),
        }
    }

    fn attendees(&self, people: &[PersonId], stakeholders: &[StakeholderId]) -> String {
        join(
            people
                .iter()
                .map(|p| self.person(p))
                .chain(stakeholders.iter().map(|s| self.stakeholder(s))),
        )
    }

    /// "title CFO → CEO", "attitude supporter → champion", ... (only what differs).
    fn profile_changes(&self, e: &StakeholderProfileChanged) -> Vec<String> {
        let Some(s) = self.stakeholders.get(&e.stakeholder_id) else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        if let Some(title) = e.title.as_ref().filter(|t| **t != s.title) {
            changes.push(format!(
                "title {} → {title}",
                names::stakeholder_title(&e.stakeholder_id)
            ));
        }
        if e.clear_reports_to {
            if let Some(manager) = &s.reports_to {
                changes.push(format!(
                    "no longer reports to {}",
                    self.stakeholder(manager)
                ));
            }
        } else if let Some(manager) = e
            .reports_to
            .as_ref()
            .filter(|m| Some(*m) != s.reports_to.as_ref())
        {
            changes.push(format!("now reports to {}", self.stakeholder(manager)));
        }
        if let Some(role) = e.buying_role.filter(|r| *r != s.buying_role) {
            changes.push(format!("buying role {} → {role}", s.buying_role));
        }
        if let Some(influence) = e.influence.filter(|i| *i != s.influence) {
            changes.push(format!("influence {} → {influence}", s.influence));
        }
        if let Some(attitude) = e.attitude.filter(|a| *a != s.attitude) {
            changes.push(format!("attitude {} → {attitude}", s.attitude));
        }
        changes
    }

    /// "Dana Kim (key account manager) met Lee Park (CFO) in person about "Pricing":
    /// positive; next step: Send pricing proposal".
    fn interaction_text(&self, d: &InteractionDetails, event: &ProjectedEvent) -> String {
        let who = self.people_list(&d.participants);
        let whom = self.stakeholder_list(&d.stakeholders);
        let mut text = match d.channel {
            Channel::InPerson => format!("{who} met {whom} in person"),
            Channel::VideoCall => format!("{who} had a video call with {whom}"),
            Channel::PhoneCall => format!("{who} had a phone call with {whom}"),
            Channel::Email => format!("{who} emailed {whom}"),
            Channel::SiteVisit => format!("{who} visited {whom} on site"),
            Channel::BusinessReview => format!("{who} held a business review with {whom}"),
            Channel::Event => format!("{who} met {whom} at an event"),
        };
        if !d.summary.trim().is_empty() {
            let _ = write!(text, " about {}", quoted(&d.summary));
        }
        if let Some(opportunity) = &d.opportunity_id {
            let _ = write!(text, " (opportunity {})", self.opportunity(opportunity));
        }
        let _ = write!(text, ": {}", d.sentiment);
        if !d.next_step.is_empty() {
            let _ = write!(text, "; next step: {}", d.next_step);
        }
        if let AccountEvent::InteractionLogged(_) = &event.event {
            // Late logging is worth seeing: the entry sits at its business time, but was
            // recorded days later. Days between are the difference of the two UTC dates, as
            // everywhere in Keyplan (README, "Time"), not a count of 24-hour periods.
            let late_days = (event.recorded_at.date() - d.occurred_at.date()).num_days();
            if late_days >= 1 {
                let _ = write!(
                    text,
                    "; logged {} later",
                    days(u32::try_from(late_days).unwrap_or(u32::MAX))
                );
            }
            let logged_by_participant = PersonId::parse(event.actor.as_str())
                .is_ok_and(|actor| d.participants.contains(&actor));
            if !logged_by_participant {
                let _ = write!(text, "; logged by {}", self.actor(&event.actor));
            }
        }
        text
    }

    /// What a correction changed, field by field.
    fn interaction_changes(
        &self,
        old: &InteractionDetails,
        new: &InteractionDetails,
    ) -> Vec<String> {
        let mut changes = Vec::new();
        if old.occurred_at != new.occurred_at {
            changes.push(format!("time {} → {}", old.occurred_at, new.occurred_at));
        }
        if old.channel != new.channel {
            changes.push(format!("channel {} → {}", old.channel, new.channel));
        }
        if old.stakeholders != new.stakeholders {
            changes.push(format!(
                "customer side {} → {}",
                self.stakeholder_list(&old.stakeholders),
                self.stakeholder_list(&new.stakeholders)
            ));
        }
        if old.participants != new.participants {
            changes.push(format!(
                "supplier side {} → {}",
                self.people_list(&old.participants),
                self.people_list(&new.participants)
            ));
        }
        if old.summary != new.summary {
            changes.push(format!("summary now {}", quoted(&new.summary)));
        }
        if old.sentiment != new.sentiment {
            changes.push(format!("sentiment {} → {}", old.sentiment, new.sentiment));
        }
        if old.next_step != new.next_step {
            changes.push(format!(
                "next step {} → {}",
                quoted_or_none(&old.next_step),
                quoted_or_none(&new.next_step)
            ));
        }
        if old.opportunity_id != new.opportunity_id {
            let name = |o: &Option<OpportunityId>| match o {
                Some(id) => self.opportunity(id),
                None => "none".to_owned(),
            };
            changes.push(format!(
                "opportunity {} → {}",
                name(&old.opportunity_id),
                name(&new.opportunity_id)
            ));
        }
        changes
    }
}

// ---------------------------------------------------------------- formatting helpers

/// "A", "A and B", "A, B and C".
fn join(items: impl IntoIterator<Item = String>) -> String {
    join_with(items, "and")
}

/// "A", "A or B", "A, B or C".
fn join_or(items: impl IntoIterator<Item = String>) -> String {
    join_with(items, "or")
}

fn join_with(items: impl IntoIterator<Item = String>, last: &str) -> String {
    let items: Vec<String> = items.into_iter().collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., tail] => format!("{} {last} {tail}", init.join(", ")),
    }
}

/// `"text"`, whitespace collapsed, cut at [`EXCERPT_CHARS`] characters with an ellipsis.
fn quoted(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("\"{}…\"", collapsed[..cut].trim_end()),
        None => format!("\"{collapsed}\""),
    }
}

fn quoted_or_none(text: &str) -> String {
    if text.is_empty() {
        "none".to_owned()
    } else {
        quoted(text)
    }
}

/// ": reason", or nothing for an empty reason.
fn because(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// "; reason: ...", or nothing for an empty reason.
fn reason_clause(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!("; reason: {reason}")
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "a" or "an", for the vocabulary words that follow it ("an executive review", "a user").
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o']) {
        "an"
    } else {
        "a"
    }
}

fn days(n: u32) -> String {
    count(n as usize, "day", "days")
}

/// 7250 -> "7.25", 7000 -> "7", 7333 -> "7.333".
fn milli(value: u32) -> String {
    let text = format!("{}.{:03}", value / 1000, value % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// "EUR 1,250,000.00".
fn money(m: &Money) -> String {
    let sign = if m.minor_units < 0 { "-" } else { "" };
    let units = m.minor_units.unsigned_abs();
    let whole = (units / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{} {sign}{grouped}.{:02}", m.currency, units % 100)
}

/// Actual as a whole percentage of goal, rounded half up; `None` without a goal.
fn percent(actual: i64, goal: i64) -> Option<i128> {
    if goal <= 0 {
        return None;
    }
    let (actual, goal) = (i128::from(actual), i128::from(goal));
    Some((actual * 200 + goal) / (goal * 2))
}

/// 2340 -> "23.40%", -150 -> "-1.50%".
fn basis_points(bp: i32) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let abs = bp.unsigned_abs();
    format!("{sign}{}.{:02}%", abs / 100, abs % 100)
}

/// "calendar year 2025", "half year 2025-01-01 to 2025-06-30", ...
fn period_label(p: &PlanPeriod) -> String {
    match (p.kind, p.end) {
        (PlanPeriodKind::CalendarYear, _) => format!("calendar year {}", p.start.year()),
        (PlanPeriodKind::Perpetual, _) | (_, None) => format!("{} from {}", p.kind, p.start),
        (kind, Some(end)) => format!("{kind} {} to {end}", p.start),
    }
}

/// What a correction calls the interaction it corrects.
fn channel_noun(channel: Channel) -> &'static str {
    match channel {
        Channel::InPerson => "in-person meeting",
        Channel::VideoCall => "video call",
        Channel::PhoneCall => "phone call",
        Channel::Email => "email",
        Channel::SiteVisit => "site visit",
        Channel::BusinessReview => "business review",
        Channel::Event => "event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_helpers() {
        assert_eq!(join(Vec::<String>::new()), "");
        assert_eq!(join(["a".to_owned()]), "a");
        assert_eq!(join(["a".to_owned(), "b".to_owned()]), "a and b");
        assert_eq!(
            join_or(["a".to_owned(), "b".to_owned(), "c".to_owned()]),
            "a, b or c"
        );
        assert_eq!(milli(7250), "7.25");
        assert_eq!(milli(7000), "7");
        assert_eq!(milli(7333), "7.333");
        assert_eq!(milli(650), "0.65");
        let eur = |minor_units| Money {
            currency: "EUR".into(),
            minor_units,
        };
        assert_eq!(money(&eur(125_000_000)), "EUR 1,250,000.00");
        assert_eq!(money(&eur(99_905)), "EUR 999.05");
        assert_eq!(money(&eur(100_000)), "EUR 1,000.00");
        assert_eq!(money(&eur(5)), "EUR 0.05");
        assert_eq!(percent(96, 100), Some(96));
        assert_eq!(percent(2, 3), Some(67)); // 66.67 rounds up
        assert_eq!(percent(1, 8), Some(13)); // 12.5 rounds half up
        assert_eq!(percent(1, 0), None);
        assert_eq!(basis_points(2340), "23.40%");
        assert_eq!(basis_points(-150), "-1.50%");
        assert_eq!(quoted("  a \n b  "), "\"a b\"");
        let long = "x".repeat(200);
        assert_eq!(quoted(&long), format!("\"{}…\"", "x".repeat(EXCERPT_CHARS)));
        assert_eq!(days(1), "1 day");
        assert_eq!(days(4), "4 days");
    }
}
