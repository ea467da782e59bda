//! The activity of one account: the facts the read model keeps, and the indexes derived from
//! them that make every query a walk over a few hundred entries at most.
//!
//! Facts are what events said, reduced to what the queries need (names, tiers, buying-role
//! history, plans, opportunities, revenue, interactions with their latest content). They are
//! what is stored. The indexes (per-day counts, a time-ordered list of interactions, each
//! stakeholder's contacts) are derived from the facts: maintained incrementally as events
//! arrive, and recomputed from the facts when the projection is loaded, so the stored form
//! cannot disagree with them.
//!
//! Supplier people and stakeholders are interned per account (interactions hold small
//! indexes rather than id strings), which keeps a year of interactions compact in memory and
//! on disk.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use keyplan_domain::events::InteractionDetails;
use keyplan_domain::values::{
    BuyingRole, Channel, Date, Money, OpportunityStage, Sentiment, Tier, Timestamp,
};
use keyplan_domain::AccountEvent;
use keyplan_projection::{IdIndex, ProjectedEvent};
use serde::{Deserialize, Serialize};

/// Interactions per stored chunk: a busy account rewrites only its last chunk (and the chunk
/// of a corrected interaction) on each flush, never its whole history.
pub(crate) const CHUNK: usize = 128;

/// The score of a sentiment: very negative -2 ... very positive +2.
pub(crate) fn sentiment_score(sentiment: Sentiment) -> i64 {
    match sentiment {
        Sentiment::VeryNegative => -2,
        Sentiment::Negative => -1,
        Sentiment::Neutral => 0,
        Sentiment::Positive => 1,
        Sentiment::VeryPositive => 2,
    }
}

// ---------------------------------------------------------------- facts

/// A supplier person who took part in interactions or was assigned to the team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Person {
    /// Person id.
    pub id: String,
    /// Name as (last) assigned to the team; empty if never assigned.
    pub name: String,
}

/// A stakeholder with the history of their buying role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StakeholderFacts {
    /// Stakeholder id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Business time of `StakeholderAdded`; `None` for an id only seen in an interaction
    /// (which a valid stream never produces).
    pub added_at: Option<Timestamp>,
    /// Role when added: it applies from `added_at` until a later change, and before the first
    /// role fact (the relationship predates its record).
    pub initial_role: Option<BuyingRole>,
    /// Role changes by business time (ties in recording order).
    pub role_changes: Vec<(Timestamp, BuyingRole)>,
    /// Departure date, if they departed.
    pub departed_on: Option<Date>,
}

impl StakeholderFacts {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: String::new(),
            added_at: None,
            initial_role: None,
            role_changes: Vec::new(),
            departed_on: None,
        }
    }

    /// The buying role at business time `at`: the latest role fact by then, the addition
    /// counting as one (at `added_at`, with the role they were added with); before any fact,
    /// the role they were added with. A change back-dated before the addition applies from its
    /// own time until the addition, as in compliance (README, "Qualifying interaction").
    pub fn role_at(&self, at: Timestamp) -> Option<BuyingRole> {
        let i = self.role_changes.partition_point(|(t, _)| *t <= at);
        match i {
            0 => self.initial_role,
            _ => {
                let (changed, role) = self.role_changes[i - 1];
                if self
                    .added_at
                    .is_some_and(|added| changed < added && added <= at)
                {
                    self.initial_role
                } else {
                    Some(role)
                }
            }
        }
    }

    /// The buying role at business time `at` as it stood at `as_of` (`at <= as_of`): only the
    /// role facts whose business time is <= `as_of` count, as in compliance. So someone met
    /// on 05-05 and added to the DMU on 05-10 has no role on 05-07 (nobody knew them as
    /// anything yet), and from 05-10 on the role they were added with covers the earlier
    /// meeting too (the relationship predates its record).
    pub fn role_at_as_of(&self, at: Timestamp, as_of: Timestamp) -> Option<BuyingRole> {
        if self.added_at.is_some_and(|added| added <= as_of) {
            // Every fact that matters is by `as_of`: a later one is after `at` too, and the
            // addition is among them.
            return self.role_at(at);
        }
        // Not added by `as_of`: only a (back-dated) change by `at` can say; a change after
        // `at` says nothing about `at`, and the role they were added with is not known yet.
        let i = self.role_changes.partition_point(|(t, _)| *t <= at);
        (i > 0).then(|| self.role_changes[i - 1].1)
    }

    /// Whether they belong to the DMU at `as_of`: added by then and not departed before
    /// as_of's date (the domain lets them take part in interactions on their last day).
    pub fn present_at(&self, as_of: Timestamp) -> bool {
        self.added_at.is_some_and(|added| added <= as_of)
            && self.departed_on.is_none_or(|d| d >= as_of.date())
    }
}

/// A tier assessment's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Assessment {
    /// Weighted score x 1000.
    pub score_milli: u32,
    /// Recommended tier.
    pub recommended: Tier,
}

/// An account plan's period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PlanFacts {
    /// Plan id.
    pub id: String,
    /// First day.
    pub start: Date,
    /// Last day (`None`: perpetual).
    pub end: Option<Date>,
}

impl PlanFacts {
    /// Whether `date` lies within the plan's period.
    pub fn contains(&self, date: Date) -> bool {
        self.start <= date && self.end.is_none_or(|end| date <= end)
    }
}

/// How an opportunity closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// Won for a value.
    Won {
        /// Value won.
        value: Money,
        /// Close date.
        closed_on: Date,
    },
    /// Lost.
    Lost {
        /// Close date.
        closed_on: Date,
    },
}

impl Outcome {
    /// The close date.
    pub fn closed_on(&self) -> Date {
        match self {
            Outcome::Won { closed_on, .. } | Outcome::Lost { closed_on } => *closed_on,
        }
    }
}

/// An opportunity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OpportunityFacts {
    /// Expected value as identified.
    pub value: Money,
    /// Current stage (the last one while open).
    pub stage: OpportunityStage,
    /// Business time of `OpportunityIdentified`.
    pub identified_at: Timestamp,
    /// Set when won or lost.
    pub outcome: Option<Outcome>,
}

impl OpportunityFacts {
    /// Whether it was open at `as_of`: identified by then and not closed by as_of's date.
    pub fn open_at(&self, as_of: Timestamp) -> bool {
        self.identified_at <= as_of
            && self
                .outcome
                .as_ref()
                .is_none_or(|o| o.closed_on() > as_of.date())
    }
}

/// Revenue of a period and product (the latest record wins).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RevenueFacts {
    /// Actual revenue.
    pub actual: Money,
    /// Goal (same currency).
    pub goal: Money,
    /// Gross margin, basis points.
    pub margin_basis_points: Option<i32>,
    /// How many times this period and product were recorded.
    pub records: u32,
}

/// Revenue records are keyed by period start, period end and product.
pub(crate) type RevenueKey = (Date, Date, String);

/// Everything about an account except its interactions (stored as one value).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Facts {
    /// Customer name.
    pub name: String,
    /// Set by `AccountRegistered`.
    pub registered: bool,
    /// Tier from each registration, promotion and demotion, by business time.
    pub tiers: Vec<(Timestamp, Tier)>,
    /// Tier assessments, by business time.
    pub assessments: Vec<(Timestamp, Assessment)>,
    /// Interned supplier people.
    pub people: Vec<Person>,
    /// Interned stakeholders.
    pub stakeholders: Vec<StakeholderFacts>,
    /// Plans, in drafting order.
    pub plans: Vec<PlanFacts>,
    /// Opportunities by id.
    pub opportunities: BTreeMap<String, OpportunityFacts>,
    /// Revenue by period and product.
    pub revenue: BTreeMap<RevenueKey, RevenueFacts>,
}

/// An interaction with its latest content, reduced to what is counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InteractionFacts {
    /// Interaction id.
    pub id: Box<str>,
    /// Business time.
    pub at: Timestamp,
    /// Channel.
    pub channel: Channel,
    /// Sentiment.
    pub sentiment: Sentiment,
    /// Stakeholders (indexes into [`Facts::stakeholders`]).
    pub stakeholders: Box<[u32]>,
    /// Supplier participants (indexes into [`Facts::people`]).
    pub participants: Box<[u32]>,
}

// ---------------------------------------------------------------- derived indexes

/// A count and the sum of the sentiment scores of what was counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// How many.
    pub count: u32,
    /// Sum of their sentiment scores.
    pub sentiment_sum: i64,
}

impl Tally {
    fn bump(&mut self, sign: Sign, score: i64) {
        match sign {
            Sign::Add => {
                self.count += 1;
                self.sentiment_sum += score;
            }
            Sign::Remove => {
                self.count = self.count.saturating_sub(1);
                self.sentiment_sum -= score;
            }
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &Tally) {
        self.count += other.count;
        self.sentiment_sum += other.sentiment_sum;
    }
}

/// Whether an interaction's contribution is being added or taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sign {
    Add,
    Remove,
}

/// Adds to or takes from one key's tally; a tally back at zero is dropped, so that an index
/// built incrementally equals one rebuilt from the facts.
fn bump<K: Ord>(map: &mut BTreeMap<K, Tally>, key: K, sign: Sign, score: i64) {
    match map.entry(key) {
        Entry::Occupied(mut entry) => {
            entry.get_mut().bump(sign, score);
            if entry.get().count == 0 {
                entry.remove();
            }
        }
        Entry::Vacant(entry) => {
            if sign == Sign::Add {
                entry.insert(Tally::default()).bump(sign, score);
            }
        }
    }
}

/// The counts of one day (only days with interactions are kept).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DayStats {
    /// Distinct interactions.
    pub total: Tally,
    /// Per channel.
    pub channels: BTreeMap<Channel, Tally>,
    /// Per supplier participant (person index).
    pub members: BTreeMap<u32, Tally>,
    /// Per stakeholder (stakeholder index).
    pub stakeholders: BTreeMap<u32, Tally>,
    /// Per distinct buying role among the stakeholders, at the interaction's time.
    pub roles: BTreeMap<BuyingRole, Tally>,
}

/// Indexes derived from the facts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Derived {
    people: HashMap<String, u32>,
    stakeholders: HashMap<String, u32>,
    /// Index in [`AccountActivity::interactions`] by id (the ids are not copied: see
    /// [`IdIndex`]).
    interactions: IdIndex,
    /// Counts per UTC date.
    pub days: BTreeMap<Date, DayStats>,
    /// Every interaction by business time.
    pub timeline: BTreeSet<(Timestamp, u32)>,
    /// Each stakeholder's interactions by business time (index = stakeholder index).
    pub contacts: Vec<BTreeSet<(Timestamp, u32)>>,
}

/// What changed since the last flush.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dirty {
    /// The facts.
    pub facts: bool,
    /// Interaction chunks.
    pub chunks: BTreeSet<u32>,
}

/// One account's activity.
#[derive(Clone, Debug, Default)]
pub(crate) struct AccountActivity {
    /// Stored as one value.
    pub facts: Facts,
    /// Stored in chunks of [`CHUNK`], in logging order.
    pub interactions: Vec<InteractionFacts>,
    /// Derived from both.
    pub derived: Derived,
    /// Changed since the last flush.
    pub dirty: Dirty,
}

impl PartialEq for AccountActivity {
    /// Equal content; what is still to be flushed does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.facts == other.facts
            && self.interactions == other.interactions
            && self.derived == other.derived
    }
}

/// Why stored facts cannot be restored.
pub(crate) type RestoreError = String;

/// An interaction's id (how [`Derived::interactions`] reads the list).
fn interaction_id(interaction: &InteractionFacts) -> &str {
    &interaction.id
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn insert_by_time<T>(list: &mut Vec<(Timestamp, T)>, at: Timestamp, value: T) {
    let position = list.partition_point(|(t, _)| *t <= at);
    list.insert(position, (at, value));
}

impl AccountActivity {
    /// Rebuilds an account from its stored facts and interactions (derived indexes
    /// recomputed).
    pub fn restore(
        facts: Facts,
        interactions: Vec<InteractionFacts>,
    ) -> Result<Self, RestoreError> {
        let mut account = Self {
            facts,
            interactions,
            ..Self::default()
        };
        let people = account.facts.people.len();
        let stakeholders = account.facts.stakeholders.len();
        for (i, p) in account.facts.people.iter().enumerate() {
            account.derived.people.insert(p.id.clone(), index(i));
        }
        for (i, s) in account.facts.stakeholders.iter().enumerate() {
            account.derived.stakeholders.insert(s.id.clone(), index(i));
        }
        account.derived.contacts = vec![BTreeSet::new(); stakeholders];
        for (i, interaction) in account.interactions.iter().enumerate() {
            if interaction
                .stakeholders
                .iter()
                .any(|&s| s as usize >= stakeholders)
                || interaction
                    .participants
                    .iter()
                    .any(|&p| p as usize >= people)
            {
                return Err(format!(
                    "interaction {} names a stakeholder or person that is not stored",
                    interaction.id
                ));
            }
            let list = &account.interactions;
            if account
                .derived
                .interactions
                .get(&interaction.id, list, interaction_id)
                .is_some()
            {
                return Err(format!("interaction {} is stored twice", interaction.id));
            }
            account
                .derived
                .interactions
                .insert(&interaction.id, index(i), list, interaction_id);
        }
        for i in 0..account.interactions.len() {
            account.count(index(i), Sign::Add);
        }
        Ok(account)
    }

    /// Applies one event; `true` if anything changed.
    pub fn apply(&mut self, event: &ProjectedEvent) -> bool {
        let at = event.occurred_at;
        match &event.event {
            AccountEvent::AccountRegistered(e) => {
                self.facts.name = e.name.clone();
                self.facts.registered = true;
                insert_by_time(&mut self.facts.tiers, at, e.tier);
            }
            AccountEvent::TierAssessed(e) => insert_by_time(
                &mut self.facts.assessments,
                at,
                Assessment {
                    score_milli: e.weighted_score_milli,
                    recommended: e.recommended_tier,
                },
            ),
            AccountEvent::AccountPromoted(e) => insert_by_time(&mut self.facts.tiers, at, e.to),
            AccountEvent::AccountDemoted(e) => insert_by_time(&mut self.facts.tiers, at, e.to),
            AccountEvent::TeamMemberAssigned(e) => {
                let i = self.person(e.person_id.as_str());
                self.facts.people[i as usize].name = e.name.clone();
            }
            AccountEvent::PlanDrafted(e) => {
                let plan = PlanFacts {
                    id: e.plan_id.to_string(),
                    start: e.period.start,
                    end: e.period.end,
                };
                self.facts.plans.retain(|p| p.id != plan.id);
                self.facts.plans.push(plan);
            }
            AccountEvent::OpportunityIdentified(e) => {
                self.facts.opportunities.insert(
                    e.opportunity_id.to_string(),
                    OpportunityFacts {
                        value: e.value.clone(),
                        stage: e.stage,
                        identified_at: at,
                        outcome: None,
                    },
                );
            }
            AccountEvent::OpportunityStageChanged(e) => {
                match self.facts.opportunities.get_mut(e.opportunity_id.as_str()) {
                    Some(o) => o.stage = e.stage,
                    None => return false,
                }
            }
            AccountEvent::OpportunityWon(e) => {
                match self.facts.opportunities.get_mut(e.opportunity_id.as_str()) {
                    Some(o) => {
                        o.outcome = Some(Outcome::Won {
                            value: e.value.clone(),
                            closed_on: e.closed_on,
                        })
                    }
                    None => return false,
                }
            }
            AccountEvent::OpportunityLost(e) => {
                match self.facts.opportunities.get_mut(e.opportunity_id.as_str()) {
                    Some(o) => {
                        o.outcome = Some(Outcome::Lost {
                            closed_on: e.closed_on,
                        })
                    }
                    None => return false,
                }
            }
            AccountEvent::RevenueRecorded(e) => {
                let key = (e.period_start, e.period_end, e.product.clone());
                let records = self.facts.revenue.get(&key).map_or(0, |r| r.records);
                self.facts.revenue.insert(
                    key,
                    RevenueFacts {
                        actual: e.actual.clone(),
                        goal: e.goal.clone(),
                        margin_basis_points: e.margin_basis_points,
                        records: records + 1,
                    },
                );
            }
            AccountEvent::StakeholderAdded(e) => {
                let s = self.stakeholder(e.stakeholder_id.as_str());
                let (name, role) = (e.name.clone(), e.buying_role);
                self.reattribute_roles(s, |facts| {
                    facts.name = name;
                    facts.added_at = Some(at);
                    facts.initial_role = Some(role);
                    facts.role_changes.clear();
                    facts.departed_on = None;
                });
            }
            AccountEvent::StakeholderProfileChanged(e) => {
                let (Some(role), Some(&s)) = (
                    e.buying_role,
                    self.derived.stakeholders.get(e.stakeholder_id.as_str()),
                ) else {
                    return false;
                };
                self.reattribute_roles(s, |facts| {
                    insert_by_time(&mut facts.role_changes, at, role)
                });
            }
            AccountEvent::StakeholderDeparted(e) => {
                let Some(&s) = self.derived.stakeholders.get(e.stakeholder_id.as_str()) else {
                    return false;
                };
                self.facts.stakeholders[s as usize].departed_on = Some(e.departed_on);
            }
            AccountEvent::InteractionLogged(e) => {
                self.record_interaction(e.interaction_id.as_str(), &e.details);
                return true;
            }
            AccountEvent::InteractionCorrected(e) => {
                self.record_interaction(e.interaction_id.as_str(), &e.details);
                return true;
            }
            _ => return false,
        }
        self.dirty.facts = true;
        true
    }

    /// The index of a supplier person, interned on first sight.
    fn person(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.derived.people.get(id) {
            return i;
        }
        let i = index(self.facts.people.len());
        self.facts.people.push(Person {
            id: id.to_owned(),
            name: String::new(),
        });
        self.derived.people.insert(id.to_owned(), i);
        self.dirty.facts = true;
        i
    }

    /// The index of a stakeholder, interned on first sight.
    fn stakeholder(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.derived.stakeholders.get(id) {
            return i;
        }
        let i = index(self.facts.stakeholders.len());
        self.facts.stakeholders.push(StakeholderFacts::new(id));
        self.derived.stakeholders.insert(id.to_owned(), i);
        self.derived.contacts.push(BTreeSet::new());
        self.dirty.facts = true;
        i
    }

    /// Logs an interaction, or replaces its content when it is known (a correction): its
    /// old contribution is taken back before the new one is added, so it is never counted
    /// twice and moves to its corrected day, channel and participants.
    fn record_interaction(&mut self, id: &str, details: &InteractionDetails) {
        let stakeholders = details
            .stakeholders
            .iter()
            .map(|s| self.stakeholder(s.as_str()))
            .collect();
        let participants = details
            .participants
            .iter()
            .map(|p| self.person(p.as_str()))
            .collect();
        let facts = InteractionFacts {
            id: id.into(),
            at: details.occurred_at,
            channel: details.channel,
            sentiment: details.sentiment,
            stakeholders,
            participants,
        };
        let i = match self
            .derived
            .interactions
            .get(id, &self.interactions, interaction_id)
        {
            Some(i) => {
                self.count(i, Sign::Remove);
                self.interactions[i as usize] = facts;
                i
            }
            None => {
                let i = index(self.interactions.len());
                self.interactions.push(facts);
                self.derived
                    .interactions
                    .insert(id, i, &self.interactions, interaction_id);
                i
            }
        };
        self.count(i, Sign::Add);
        self.dirty.chunks.insert(i / CHUNK as u32);
    }

    /// Re-attributes the buying-role counts of a stakeholder's interactions around a change
    /// of their role history: a change recorded today may concern interactions counted long
    /// ago (its business time can be earlier), so their role contributions are taken back
    /// under the old history and added again under the new one.
    fn reattribute_roles(&mut self, s: u32, change: impl FnOnce(&mut StakeholderFacts)) {
        let affected: Vec<u32> = self.derived.contacts[s as usize]
            .iter()
            .map(|&(_, i)| i)
            .collect();
        for &i in &affected {
            self.count_roles(i, Sign::Remove);
        }
        change(&mut self.facts.stakeholders[s as usize]);
        for &i in &affected {
            self.count_roles(i, Sign::Add);
        }
    }

    /// The distinct buying roles among an interaction's stakeholders, each at the
    /// interaction's time.
    pub fn roles_of(&self, interaction: &InteractionFacts) -> BTreeSet<BuyingRole> {
        interaction
            .stakeholders
            .iter()
            .filter_map(|&s| self.facts.stakeholders[s as usize].role_at(interaction.at))
            .collect()
    }

    /// The distinct buying roles among an interaction's stakeholders, each at the
    /// interaction's time as it stood at `as_of` (see [`StakeholderFacts::role_at_as_of`]).
    pub fn roles_as_of(
        &self,
        interaction: &InteractionFacts,
        as_of: Timestamp,
    ) -> BTreeSet<BuyingRole> {
        interaction
            .stakeholders
            .iter()
            .filter_map(|&s| {
                self.facts.stakeholders[s as usize].role_at_as_of(interaction.at, as_of)
            })
            .collect()
    }

    /// Adds or takes back an interaction's whole contribution to the indexes.
    fn count(&mut self, i: u32, sign: Sign) {
        let interaction = &self.interactions[i as usize];
        let key = (interaction.at, i);
        let score = sentiment_score(interaction.sentiment);
        let day = self.derived.days.entry(interaction.at.date()).or_default();
        day.total.bump(sign, score);
        bump(&mut day.channels, interaction.channel, sign, score);
        for &p in &interaction.participants {
            bump(&mut day.members, p, sign, score);
        }
        for &s in &interaction.stakeholders {
            bump(&mut day.stakeholders, s, sign, score);
            let contacts = &mut self.derived.contacts[s as usize];
            match sign {
                Sign::Add => contacts.insert(key),
                Sign::Remove => contacts.remove(&key),
            };
        }
        match sign {
            Sign::Add => self.derived.timeline.insert(key),
            Sign::Remove => self.derived.timeline.remove(&key),
        };
        self.count_roles(i, sign);
    }

    /// Adds or takes back an interaction's buying-role contribution.
    fn count_roles(&mut self, i: u32, sign: Sign) {
        let interaction = &self.interactions[i as usize];
        let roles = self.roles_of(interaction);
        let score = sentiment_score(interaction.sentiment);
        let date = interaction.at.date();
        let day = self.derived.days.entry(date).or_default();
        for role in roles {
            bump(&mut day.roles, role, sign, score);
        }
        if day.total.count == 0 && sign == Sign::Remove && day.roles.is_empty() {
            self.derived.days.remove(&date);
        }
    }

    // ------------------------------------------------------------ what queries ask

    /// Whether `AccountRegistered` was applied.
    pub fn exists(&self) -> bool {
        self.facts.registered
    }

    /// The tier at business time `as_of` (`None` before registration).
    pub fn tier_at(&self, as_of: Timestamp) -> Option<Tier> {
        let i = self.facts.tiers.partition_point(|(t, _)| *t <= as_of);
        (i > 0).then(|| self.facts.tiers[i - 1].1)
    }

    /// Whether the account is in the key account programme (key or strategic) at `as_of`.
    pub fn is_key_at(&self, as_of: Timestamp) -> Option<Tier> {
        self.tier_at(as_of)
            .filter(|t| matches!(t, Tier::Key | Tier::Strategic))
    }

    /// The latest tier assessment at or before `as_of`.
    pub fn assessment_at(&self, as_of: Timestamp) -> Option<(Timestamp, Assessment)> {
        let i = self.facts.assessments.partition_point(|(t, _)| *t <= as_of);
        (i > 0).then(|| self.facts.assessments[i - 1])
    }

    /// The latest interaction at or before `as_of`.
    pub fn last_contact(&self, as_of: Timestamp) -> Option<Timestamp> {
        self.derived
            .timeline
            .range(..=(as_of, u32::MAX))
            .next_back()
            .map(|&(t, _)| t)
    }

    /// Interactions between `start` and `end` (both inclusive), by business time.
    pub fn interactions_between(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> impl Iterator<Item = &InteractionFacts> + '_ {
        let range = if start <= end {
            Some(self.derived.timeline.range((start, 0)..=(end, u32::MAX)))
        } else {
            None
        };
        range
            .into_iter()
            .flatten()
            .map(|&(_, i)| &self.interactions[i as usize])
    }

    /// A stakeholder's interactions between `start` and `end` (inclusive) and their latest
    /// interaction at or before `end`.
    pub fn stakeholder_contacts(
        &self,
        s: usize,
        start: Timestamp,
        end: Timestamp,
    ) -> (u32, Option<Timestamp>) {
        let Some(contacts) = self.derived.contacts.get(s) else {
            return (0, None);
        };
        let in_window = if start <= end {
            contacts.range((start, 0)..=(end, u32::MAX)).count()
        } else {
            0
        };
        let last = contacts
            .range(..=(end, u32::MAX))
            .next_back()
            .map(|&(t, _)| t);
        (index(in_window), last)
    }

    /// The interaction chunk `chunk` (for storage).
    pub fn chunk(&self, chunk: u32) -> &[InteractionFacts] {
        let start = (chunk as usize * CHUNK).min(self.interactions.len());
        let end = (start + CHUNK).min(self.interactions.len());
        &self.interactions[start..end]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn interaction(id: &str, at: i64) -> InteractionFacts {
        InteractionFacts {
            id: id.into(),
            at: Timestamp(at),
            channel: Channel::Email,
            sentiment: Sentiment::Neutral,
            stakeholders: Box::new([]),
            participants: Box::new([]),
        }
    }

    #[test]
    fn a_restored_account_finds_its_interactions_by_id_and_refuses_one_stored_twice() {
        let stored: Vec<InteractionFacts> = (0..300)
            .map(|n| interaction(&format!("i-{n}"), n))
            .collect();
        let account = AccountActivity::restore(Facts::default(), stored.clone()).unwrap();
        for (n, item) in stored.iter().enumerate() {
            let found =
                account
                    .derived
                    .interactions
                    .get(&item.id, &account.interactions, interaction_id);
            assert_eq!(found, Some(n as u32));
        }

        let mut twice = stored;
        twice.push(interaction("i-7", 1_000));
        let error = AccountActivity::restore(Facts::default(), twice).unwrap_err();
        assert_eq!(error, "interaction i-7 is stored twice");
    }
}
