//! The current state of a key account, folded from its events.
//!
//! The state holds what command validation needs and what the "current state" queries show.
//! [`AccountState::apply`] never fails: events are facts, validated before they were stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::*;
use crate::ids::*;
use crate::values::*;

/// A key account as it stands after the events applied so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Stream version of the last applied event (0 = nothing applied).
    pub version: u64,
    /// Set by `AccountRegistered`; `None` means the account does not exist.
    pub profile: Option<AccountProfile>,
    /// Most recent tier assessment.
    pub last_assessment: Option<TierAssessed>,
    /// Current key account team, by person.
    pub team: BTreeMap<PersonId, TeamMember>,
    /// Account plans, by id.
    pub plans: BTreeMap<PlanId, Plan>,
    /// Objectives, by id.
    pub objectives: BTreeMap<ObjectiveId, Objective>,
    /// Opportunities, by id.
    pub opportunities: BTreeMap<OpportunityId, Opportunity>,
    /// Action items, by id.
    pub action_items: BTreeMap<ActionItemId, ActionItem>,
    /// Revenue records, in the order recorded.
    pub revenue: Vec<RevenueRecorded>,
    /// Decision-making unit, by stakeholder (departed ones stay, marked).
    pub stakeholders: BTreeMap<StakeholderId, Stakeholder>,
    /// Engagement rules, by id (retired ones stay, marked).
    pub rules: BTreeMap<RuleId, EngagementRule>,
    /// Every interaction ever logged, as a digest of its id: what logging a new one needs
    /// (is the id new?), in 16 bytes per interaction. Kept whether or not `interactions` is.
    pub interaction_ids: InteractionIds,
    /// Interactions, by id: the facts of their latest (corrected) content, not its text.
    /// Empty while [`AccountState::interactions_dropped`] is set.
    pub interactions: BTreeMap<InteractionId, Interaction>,
    /// Set by [`AccountState::drop_interactions`]: `interactions` is not kept, so that a state
    /// that only decides commands stays small however many interactions the account logs.
    ///
    /// Why: the repository caches and snapshots the states it decides on, and loads a snapshot
    /// at every cache miss. With each interaction's facts (about 130 bytes and five
    /// allocations each) a miss decoded the account's whole history of interactions; with
    /// `interaction_ids` alone it copies 16 bytes per interaction. The few commands whose
    /// decision reads an interaction's facts (a correction, a departure, a duplicate id) get
    /// them folded from the log first: see [`crate::decide::needs_interactions`].
    pub interactions_dropped: bool,
    /// Reviews, by id.
    pub reviews: BTreeMap<ReviewId, Review>,
}

/// Who the customer is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountProfile {
    /// Customer name.
    pub name: String,
    /// Industry.
    pub industry: String,
    /// Region.
    pub region: String,
    /// Headquarters.
    pub headquarters: String,
    /// Current tier.
    pub tier: Tier,
}

/// A member of the key account team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    /// Display name.
    pub name: String,
    /// Role.
    pub role: TeamRole,
}

/// An account plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// As drafted.
    pub drafted: PlanDrafted,
    /// Current text of each revised section.
    pub sections: BTreeMap<PlanSection, String>,
}

/// An objective with its latest status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    /// As (last) set.
    pub definition: ObjectiveSet,
    /// Current status.
    pub status: ObjectiveStatus,
    /// Last recorded value of the metric.
    pub current_value: String,
}

/// Where an opportunity stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpportunityStatus {
    /// Open, at a stage.
    Open(OpportunityStage),
    /// Won, for a value, on a date.
    Won {
        /// Value won.
        value: Money,
        /// When.
        closed_on: Date,
        /// Why.
        reason: String,
    },
    /// Lost, on a date.
    Lost {
        /// When.
        closed_on: Date,
        /// Why.
        reason: String,
    },
}

/// An opportunity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opportunity {
    /// As identified.
    pub identified: OpportunityIdentified,
    /// Current expected close date.
    pub expected_close_on: Date,
    /// Current status.
    pub status: OpportunityStatus,
}

/// Where an action item stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionItemStatus {
    /// Still to do.
    Open,
    /// Done on a date.
    Completed(Date),
    /// Cancelled, with the reason.
    Cancelled(String),
}

/// An action item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionItem {
    /// As added.
    pub added: ActionItemAdded,
    /// Current status.
    pub status: ActionItemStatus,
}

/// A stakeholder in the decision-making unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stakeholder {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Manager in the org chart.
    pub reports_to: Option<StakeholderId>,
    /// Buying role.
    pub buying_role: BuyingRole,
    /// Influence 1-5.
    pub influence: u8,
    /// Attitude.
    pub attitude: Attitude,
    /// Set when the stakeholder departed.
    pub departed_on: Option<Date>,
}

impl Stakeholder {
    /// The stakeholder as `e` adds them to the DMU. The timeline's directory folds
    /// stakeholders with these too, so the two cannot drift apart.
    pub fn added(e: &crate::events::StakeholderAdded) -> Stakeholder {
        Stakeholder {
            name: e.name.clone(),
            title: e.title.clone(),
            reports_to: e.reports_to.clone(),
            buying_role: e.buying_role,
            influence: e.influence,
            attitude: e.attitude,
            departed_on: None,
        }
    }

    /// Applies a profile change (only the fields it sets).
    pub fn change_profile(&mut self, e: &crate::events::StakeholderProfileChanged) {
        if let Some(title) = &e.title {
            self.title = title.clone();
        }
        if e.clear_reports_to {
            self.reports_to = None;
        } else if let Some(manager) = &e.reports_to {
            self.reports_to = Some(manager.clone());
        }
        if let Some(role) = e.buying_role {
            self.buying_role = role;
        }
        if let Some(influence) = e.influence {
            self.influence = influence;
        }
        if let Some(attitude) = e.attitude {
            self.attitude = attitude;
        }
    }
}

/// An engagement rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementRule {
    /// As (last) set.
    pub definition: EngagementRuleSet,
    /// Set when the rule was retired, with the reason.
    pub retired: Option<String>,
}

/// A logged interaction as the account's state keeps it: the facts that decisions and the
/// current-state view need, and a hash of its free text instead of the text.
///
/// Why not the content itself: `summary` and `next_step` may hold 20,000 characters each, and
/// an account logs interactions for years, so a state holding them grew with every interaction
/// ever logged: the repository's cache, every replay on a cache miss, every snapshot and every
/// `GetAccount`. Refusing a correction that changes nothing needs only to know whether the
/// content is the same, which [`InteractionDetails::content_hash`] answers in 32 bytes. The
/// text stays where it always was: in the event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    /// When it happened, per the content in force.
    pub occurred_at: Timestamp,
    /// Channel.
    pub channel: Channel,
    /// Customer stakeholders who took part.
    pub stakeholders: Vec<StakeholderId>,
    /// Supplier people who took part.
    pub participants: Vec<PersonId>,
    /// Sentiment.
    pub sentiment: Sentiment,
    /// Opportunity discussed, if any.
    pub opportunity_id: Option<OpportunityId>,
    /// [`InteractionDetails::content_hash`] of the content in force (all fields, text included).
    pub content_hash: [u8; 32],
    /// How many times it was corrected.
    pub corrections: u32,
}

impl Interaction {
    /// The interaction as `details` describe it, after `corrections` corrections.
    pub fn new(details: &InteractionDetails, corrections: u32) -> Self {
        Self {
            occurred_at: details.occurred_at,
            channel: details.channel,
            stakeholders: details.stakeholders.clone(),
            participants: details.participants.clone(),
            sentiment: details.sentiment,
            opportunity_id: details.opportunity_id.clone(),
            content_hash: details.content_hash(),
            corrections,
        }
    }

    /// Whether `details` is exactly the content in force.
    pub fn has_content(&self, details: &InteractionDetails) -> bool {
        self.content_hash == details.content_hash()
    }
}

/// Where a review stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewStatus {
    /// Scheduled, not yet held.
    Scheduled,
    /// Held, with its outcome.
    Held(ReviewOutcomeRecorded),
    /// Cancelled, with the reason.
    Cancelled(String),
}

/// A review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// As scheduled.
    pub scheduled: ReviewScheduled,
    /// Current status.
    pub status: ReviewStatus,
}

/// The ids of an account's logged interactions, as the first 16 bytes of each id's SHA-256,
/// sorted; serialized as one byte string, so that decoding it is one copy.
///
/// Membership by digest: two distinct ids share one with a probability of about `n² / 2¹²⁹`
/// (below 10⁻³⁰ for a million interactions), and even then nothing wrong is stored, because a
/// new id whose digest is already here has its decision taken on the interactions' facts
/// folded from the log (see [`crate::decide::needs_interactions`]).
///
/// Kept as two sorted runs, the digests decoded or last merged and the few inserted since,
/// merged when the second outgrows about the square root of the first. Why: digests are
/// random, so inserting into one sorted `Vec` moved half of it each time, 80 KB per
/// interaction on an account of 10,000, and a cache miss inserts every interaction it
/// replays (BENCHMARKS.md, "Appends on streams of 10,000 interactions"). Two runs cost about
/// `2·√n` moves per insert and keep decoding one copy.
#[derive(Clone, Debug, Default)]
pub struct InteractionIds {
    /// Sorted, distinct.
    merged: Vec<[u8; 16]>,
    /// Sorted, distinct, none of them in `merged`.
    recent: Vec<[u8; 16]>,
}

impl InteractionIds {
    /// The digest `id` is kept as.
    fn digest(id: &InteractionId) -> [u8; 16] {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(id.as_str().as_bytes());
        let mut digest = [0; 16];
        digest.copy_from_slice(&hash[..16]);
        digest
    }

    /// Whether an interaction with an id of `id`'s digest was logged.
    pub fn contains(&self, id: &InteractionId) -> bool {
        let digest = Self::digest(id);
        self.merged.binary_search(&digest).is_ok() || self.recent.binary_search(&digest).is_ok()
    }

    /// Records `id` as logged.
    pub fn insert(&mut self, id: &InteractionId) {
        let digest = Self::digest(id);
        if self.merged.binary_search(&digest).is_ok() {
            return;
        }
        if let Err(at) = self.recent.binary_search(&digest) {
            self.recent.insert(at, digest);
            if self.recent.len() > self.merged.len().isqrt().max(32) {
                self.merged = self.sorted().into_owned();
                self.recent = Vec::new();
            }
        }
    }

    /// How many distinct ids were logged.
    pub fn len(&self) -> usize {
        self.merged.len() + self.recent.len()
    }

    /// Whether no interaction was logged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every digest, sorted: the two runs merged.
    fn sorted(&self) -> std::borrow::Cow<'_, [[u8; 16]]> {
        if self.recent.is_empty() {
            return std::borrow::Cow::Borrowed(&self.merged);
        }
        let mut all = Vec::with_capacity(self.len());
        let (mut a, mut b) = (self.merged.as_slice(), self.recent.as_slice());
        while let (Some(x), Some(y)) = (a.first(), b.first()) {
            if x < y {
                all.push(*x);
                a = &a[1..];
            } else {
                all.push(*y);
                b = &b[1..];
            }
        }
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        std::borrow::Cow::Owned(all)
    }
}

/// Equal when they hold the same digests, however they are split between the two runs.
impl PartialEq for InteractionIds {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.sorted() == other.sorted()
    }
}

impl Eq for InteractionIds {}

impl Serialize for InteractionIds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.sorted().as_flattened())
    }
}

impl<'de> Deserialize<'de> for InteractionIds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(DigestsVisitor)
    }
}

/// Decodes the byte string [`InteractionIds`] is serialized as, straight into its digests
/// (no intermediate buffer), refusing one that is not a sorted run of distinct digests.
struct DigestsVisitor;

impl DigestsVisitor {
    fn refuse<E: serde::de::Error>() -> E {
        E::custom("interaction ids: not a sorted sequence of distinct 16-byte digests")
    }

    fn checked<E: serde::de::Error>(merged: Vec<[u8; 16]>) -> Result<InteractionIds, E> {
        if !merged.is_sorted_by(|a, b| a < b) {
            return Err(Self::refuse());
        }
        Ok(InteractionIds {
            merged,
            recent: Vec::new(),
        })
    }
}

impl<'de> serde::de::Visitor<'de> for DigestsVisitor {
    type Value = InteractionIds;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a byte string of sorted 16-byte digests")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        let chunks = bytes.chunks_exact(16);
        if !chunks.remainder().is_empty() {
            return Err(Self::refuse());
        }
        let mut merged = Vec::with_capacity(bytes.len() / 16);
        for chunk in chunks {
            let mut digest = [0; 16];
            digest.copy_from_slice(chunk);
            merged.push(digest);
        }
        Self::checked(merged)
    }

    /// Formats without a byte-string type (JSON) write the bytes as a sequence.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        self.visit_bytes(&bytes)
    }
}

impl AccountState {
    /// A state that does not keep interactions' facts: see
    /// [`AccountState::interactions_dropped`].
    pub fn without_interactions() -> Self {
        Self {
            interactions_dropped: true,
            ..Self::default()
        }
    }

    /// About how many bytes the state holds, for a cache that weighs what it keeps: 16 per
    /// interaction id, an estimated 256 per entry of every other collection (plans, team,
    /// stakeholders, rules, reviews... each a few short strings), and 512 per interaction whose
    /// facts are kept. An estimate, not a count of allocations.
    pub fn approximate_bytes(&self) -> usize {
        let entries = self.team.len()
            + self.plans.len()
            + self.objectives.len()
            + self.opportunities.len()
            + self.action_items.len()
            + self.revenue.len()
            + self.stakeholders.len()
            + self.rules.len()
            + self.reviews.len();
        std::mem::size_of::<Self>()
            + 256 * entries
            + 16 * self.interaction_ids.len()
            + 512 * self.interactions.len()
    }

    /// Stops keeping interactions' facts (and frees them).
    pub fn drop_interactions(&mut self) {
        self.interactions = BTreeMap::new();
        self.interactions_dropped = true;
    }

    /// Keeps interactions' facts again, starting from `interactions`: the facts folded from
    /// this account's events up to this state's version.
    pub fn restore_interactions(&mut self, interactions: BTreeMap<InteractionId, Interaction>) {
        self.interactions = interactions;
        self.interactions_dropped = false;
    }

    /// Whether `AccountRegistered` has been applied.
    pub fn exists(&self) -> bool {
        self.profile.is_some()
    }

    /// Folds a sequence of events into a fresh state.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a AccountEvent>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    /// Applies one event and advances the version by one.
    pub fn apply(&mut self, event: &AccountEvent) {
        self.version += 1;
        match event {
            AccountEvent::AccountRegistered(e) => {
                self.profile = Some(AccountProfile {
                    name: e.name.clone(),
                    industry: e.industry.clone(),
                    region: e.region.clone(),
                    headquarters: e.headquarters.clone(),
                    tier: e.tier,
                });
            }
            AccountEvent::TierAssessed(e) => self.last_assessment = Some(e.clone()),
            AccountEvent::AccountPromoted(AccountPromoted { to, .. })
            | AccountEvent::AccountDemoted(AccountDemoted { to, .. }) => {
                if let Some(profile) = &mut self.profile {
                    profile.tier = *to;
                }
            }
            AccountEvent::TeamMemberAssigned(e) => {
                self.team.insert(
                    e.person_id.clone(),
                    TeamMember {
                        name: e.name.clone(),
                        role: e.role,
                    },
                );
            }
            AccountEvent::TeamMemberUnassigned(e) => {
                self.team.remove(&e.person_id);
            }
            AccountEvent::PlanDrafted(e) => {
                self.plans.insert(
                    e.plan_id.clone(),
                    Plan {
                        drafted: e.clone(),
                        sections: BTreeMap::new(),
                    },
                );
            }
            AccountEvent::PlanSectionRevised(e) => {
                if let Some(plan) = self.plans.get_mut(&e.plan_id) {
                    plan.sections.insert(e.section, e.text.clone());
                }
            }
            AccountEvent::ObjectiveSet(e) => {
                let current_value = self
                    .objectives
                    .get(&e.objective_id)
                    .map(|o| o.current_value.clone())
                    .unwrap_or_default();
                self.objectives.insert(
                    e.objective_id.clone(),
                    Objective {
                        definition: e.clone(),
                        status: e.status,
                        current_value,
                    },
                );
            }
            AccountEvent::ObjectiveProgressed(e) => {
                if let Some(o) = self.objectives.get_mut(&e.objective_id) {
                    o.status = e.status;
                    o.current_value = e.current_value.clone();
                }
            }
            AccountEvent::OpportunityIdentified(e) => {
                self.opportunities.insert(
                    e.opportunity_id.clone(),
                    Opportunity {
                        identified: e.clone(),
                        expected_close_on: e.expected_close_on,
                        status: OpportunityStatus::Open(e.stage),
                    },
                );
            }
            AccountEvent::OpportunityStageChanged(e) => {
                if let Some(o) = self.opportunities.get_mut(&e.opportunity_id) {
                    o.status = OpportunityStatus::Open(e.stage);
                    if let Some(close) = e.expected_close_on {
                        o.expected_close_on = close;
                    }
                }
            }
            AccountEvent::OpportunityWon(e) => {
                if let Some(o) = self.opportunities.get_mut(&e.opportunity_id) {
                    o.status = OpportunityStatus::Won {
                        value: e.value.clone(),
                        closed_on: e.closed_on,
                        reason: e.reason.clone(),
                    };
                }
            }
            AccountEvent::OpportunityLost(e) => {
                if let Some(o) = self.opportunities.get_mut(&e.opportunity_id) {
                    o.status = OpportunityStatus::Lost {
                        closed_on: e.closed_on,
                        reason: e.reason.clone(),
                    };
                }
            }
            AccountEvent::ActionItemAdded(e) => {
                self.action_items.insert(
                    e.action_item_id.clone(),
                    ActionItem {
                        added: e.clone(),
                        status: ActionItemStatus::Open,
                    },
                );
            }
            AccountEvent::ActionItemCompleted(e) => {
                if let Some(a) = self.action_items.get_mut(&e.action_item_id) {
                    a.status = ActionItemStatus::Completed(e.completed_on);
                }
            }
            AccountEvent::ActionItemCancelled(e) => {
                if let Some(a) = self.action_items.get_mut(&e.action_item_id) {
                    a.status = ActionItemStatus::Cancelled(e.reason.clone());
                }
            }
            AccountEvent::RevenueRecorded(e) => self.revenue.push(e.clone()),
            AccountEvent::StakeholderAdded(e) => {
                self.stakeholders
                    .insert(e.stakeholder_id.clone(), Stakeholder::added(e));
            }
            AccountEvent::StakeholderProfileChanged(e) => {
                if let Some(s) = self.stakeholders.get_mut(&e.stakeholder_id) {
                    s.change_profile(e);
                }
            }
            AccountEvent::StakeholderDeparted(e) => {
                if let Some(s) = self.stakeholders.get_mut(&e.stakeholder_id) {
                    s.departed_on = Some(e.departed_on);
                }
            }
            AccountEvent::EngagementRuleSet(e) => {
                self.rules.insert(
                    e.rule_id.clone(),
                    EngagementRule {
                        definition: e.clone(),
                        retired: None,
                    },
                );
            }
            AccountEvent::EngagementRuleRetired(e) => {
                if let Some(r) = self.rules.get_mut(&e.rule_id) {
                    r.retired = Some(e.reason.clone());
                }
            }
            AccountEvent::InteractionLogged(e) => {
                self.interaction_ids.insert(&e.interaction_id);
                if !self.interactions_dropped {
                    self.interactions
                        .insert(e.interaction_id.clone(), Interaction::new(&e.details, 0));
                }
            }
            AccountEvent::InteractionCorrected(e) => {
                if let Some(i) = self.interactions.get_mut(&e.interaction_id) {
                    *i = Interaction::new(&e.details, i.corrections + 1);
                }
            }
            AccountEvent::ReviewScheduled(e) => {
                self.reviews.insert(
                    e.review_id.clone(),
                    Review {
                        scheduled: e.clone(),
                        status: ReviewStatus::Scheduled,
                    },
                );
            }
            AccountEvent::ReviewOutcomeRecorded(e) => {
                for f in &e.follow_up_actions {
                    self.action_items.insert(
                        f.action_item_id.clone(),
                        ActionItem {
                            added: ActionItemAdded {
                                action_item_id: f.action_item_id.clone(),
                                title: f.title.clone(),
                                owner: f.owner.clone(),
                                due_on: f.due_on,
                                link: Some(ActionLink::Review(e.review_id.clone())),
                            },
                            status: ActionItemStatus::Open,
                        },
                    );
                }
                if let Some(r) = self.reviews.get_mut(&e.review_id) {
                    r.status = ReviewStatus::Held(e.clone());
                }
            }
            AccountEvent::ReviewCancelled(e) => {
                if let Some(r) = self.reviews.get_mut(&e.review_id) {
                    r.status = ReviewStatus::Cancelled(e.reason.clone());
                }
            }
        }
    }
}
