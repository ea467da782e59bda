//! One account's fact histories and the compliance rules computed from them at query time.
//!
//! Nothing here is precomputed per instant: each history keeps every version of every fact
//! with both clocks, sorted by business time, so that "as of T on axis A" is answered by
//! looking at the right prefix. Lookups are binary searches plus short backward scans (the
//! latest qualifying contact of a rule is usually among a stakeholder's last few contacts),
//! which keeps one account's answer well under a millisecond however long its history.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Months;
use keyplan_domain::events::{EngagementRuleSet, RuleTarget};
use keyplan_domain::values::{BuyingRole, Channel, Date, ReviewFrequency, Timestamp};
use keyplan_projection::IdIndex;

use crate::facts::{Fact, Stamp};
use crate::model::*;

/// Review windows listed at most per plan (100 years of monthly reviews): a bound for
/// perpetual plans, which have no end date.
const MAX_WINDOWS: u32 = 1200;

/// An interaction's id (how `AccountHistory::interaction_index` reads the list).
fn interaction_id(interaction: &InteractionHistory) -> &str {
    &interaction.id
}

/// Whether a fact with these clocks is visible as of `view`: its business time is not after
/// T, and (as known at T) it was recorded by T.
fn includes(view: &AsOf, stamp: &Stamp) -> bool {
    stamp.bt <= view.at && view.knows(stamp.rt)
}

/// Inserts keeping `list` sorted by `key`; equal keys keep arrival order. Events mostly arrive
/// in business-time order, so this is an append in the common case.
fn insert_sorted<T, K: Ord>(list: &mut Vec<T>, item: T, key: impl Fn(&T) -> K) {
    let k = key(&item);
    let at = list.partition_point(|x| key(x) <= k);
    list.insert(at, item);
}

/// One team membership change of a person.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Membership {
    stamp: Stamp,
    assigned: bool,
}

/// A stakeholder's name and buying-role history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct StakeholderHistory {
    name: String,
    /// Their addition to the decision-making unit and the role they were added with.
    added: Option<(Stamp, BuyingRole)>,
    /// Sorted by (business time, position).
    roles: Vec<(Stamp, BuyingRole)>,
}

/// Every definition and retirement of one rule id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RuleHistory {
    /// Sorted by (business time, position).
    sets: Vec<(Stamp, EngagementRuleSet)>,
    /// Sorted by (business time, position).
    retirements: Vec<Stamp>,
}

/// One version (as logged, or a correction) of an interaction.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Version {
    rt: Timestamp,
    pos: u64,
    occurred_at: Timestamp,
    corrected: bool,
    channel: Channel,
    /// Indexes into [`AccountHistory::people`]: an account's interactions name the same few
    /// supplier people over and over.
    participants: Box<[u32]>,
}

/// An interaction's versions, in the order recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
struct InteractionHistory {
    id: Box<str>,
    versions: Vec<Version>,
}

impl InteractionHistory {
    /// The version in force on `view`'s axis: the last one recorded (as known at T: the last
    /// one recorded by T). Its own occurred_at decides whether it happened by T.
    fn effective(&self, view: &AsOf) -> Option<usize> {
        self.versions.iter().rposition(|v| view.knows(v.rt))
    }
}

/// A stakeholder took part in a version of an interaction (an index entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Contact {
    occurred_at: Timestamp,
    pos: u64,
    interaction: u32,
    version: u32,
}

/// An account plan as drafted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PlanHistory {
    stamp: Stamp,
    start: Date,
    end: Option<Date>,
    frequency: ReviewFrequency,
}

/// A review: the plan it was scheduled for, and its outcome(s).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ReviewHistory {
    scheduled: Option<(Stamp, Option<String>)>,
    held: Vec<(Stamp, Date)>,
}

/// The latest qualifying interaction of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hit<'a> {
    interaction: &'a str,
    occurred_at: Timestamp,
    pos: u64,
    corrected: bool,
}

/// A rule's standing as of T, borrowed from the history (no allocation: used by rollups and
/// trends over many accounts).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Evaluation<'a> {
    pub rule_id: &'a str,
    pub definition: &'a EngagementRuleSet,
    pub set_on: Date,
    pub status: RuleStatus,
    pub due_on: Date,
    pub days_overdue: u32,
    pub days_until_due: u32,
    last: Option<Hit<'a>>,
}

impl Evaluation<'_> {
    /// Whether the rule is late: its due date is before today (OVERDUE, or NEVER_MET past its
    /// first due date). Late rules make the overdue list; every other rule counts as on track,
    /// so the share and the overdue list always add up to the active rules.
    pub fn past_due(&self) -> bool {
        self.days_overdue > 0
    }
}

/// Everything compliance knows about one account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AccountHistory {
    registered: Option<(Stamp, String)>,
    /// Per person, sorted by (business time, position).
    members: BTreeMap<String, Vec<Membership>>,
    member_names: BTreeMap<String, String>,
    stakeholders: BTreeMap<String, StakeholderHistory>,
    /// Stakeholders who ever held a buying role: the candidates of a buying-role rule.
    role_holders: BTreeMap<BuyingRole, BTreeSet<String>>,
    rules: BTreeMap<String, RuleHistory>,
    interactions: Vec<InteractionHistory>,
    /// Index in `interactions` by id (the ids are not copied: see [`IdIndex`]).
    interaction_index: IdIndex,
    /// Supplier people named as participants, interned.
    people: Vec<Box<str>>,
    people_index: HashMap<Box<str>, u32>,
    /// Per stakeholder, every interaction version they took part in, sorted by
    /// (occurred_at, position).
    contacts: HashMap<String, Vec<Contact>>,
    plans: BTreeMap<String, PlanHistory>,
    reviews: BTreeMap<String, ReviewHistory>,
}

impl AccountHistory {
    /// Adds one fact. Facts may arrive in any business-time order (late logging, back-dated
    /// events); every list stays sorted.
    pub fn apply(&mut self, fact: &Fact) {
        match fact {
            Fact::Registered { stamp, name } => {
                if self.registered.is_none() {
                    self.registered = Some((*stamp, name.clone()));
                }
            }
            Fact::MemberAssigned {
                stamp,
                person,
                name,
            } => {
                self.member_names.insert(person.clone(), name.clone());
                insert_sorted(
                    self.members.entry(person.clone()).or_default(),
                    Membership {
                        stamp: *stamp,
                        assigned: true,
                    },
                    |m| m.stamp.key(),
                );
            }
            Fact::MemberUnassigned { stamp, person } => insert_sorted(
                self.members.entry(person.clone()).or_default(),
                Membership {
                    stamp: *stamp,
                    assigned: false,
                },
                |m| m.stamp.key(),
            ),
            Fact::StakeholderAdded {
                stamp,
                stakeholder,
                name,
                role,
            } => {
                let history = self.stakeholders.entry(stakeholder.clone()).or_default();
                history.name.clone_from(name);
                history.added.get_or_insert((*stamp, *role));
                insert_sorted(&mut history.roles, (*stamp, *role), |r| r.0.key());
                self.role_holders
                    .entry(*role)
                    .or_default()
                    .insert(stakeholder.clone());
            }
            Fact::BuyingRoleChanged {
                stamp,
                stakeholder,
                role,
            } => {
                let history = self.stakeholders.entry(stakeholder.clone()).or_default();
                insert_sorted(&mut history.roles, (*stamp, *role), |r| r.0.key());
                self.role_holders
                    .entry(*role)
                    .or_default()
                    .insert(stakeholder.clone());
            }
            Fact::RuleSet { stamp, definition } => insert_sorted(
                &mut self
                    .rules
                    .entry(definition.rule_id.to_string())
                    .or_default()
                    .sets,
                (*stamp, definition.clone()),
                |s| s.0.key(),
            ),
            Fact::RuleRetired { stamp, rule } => insert_sorted(
                &mut self.rules.entry(rule.clone()).or_default().retirements,
                *stamp,
                Stamp::key,
            ),
            Fact::Interaction {
                stamp,
                interaction,
                corrected,
                channel,
                stakeholders,
                participants,
            } => {
                let index = match self.interaction_index.get(
                    interaction,
                    &self.interactions,
                    interaction_id,
                ) {
                    Some(i) => i,
                    None => {
                        let i = u32::try_from(self.interactions.len()).unwrap_or(u32::MAX);
                        self.interactions.push(InteractionHistory {
                            id: interaction.as_str().into(),
                            versions: Vec::new(),
                        });
                        self.interaction_index.insert(
                            interaction,
                            i,
                            &self.interactions,
                            interaction_id,
                        );
                        i
                    }
                };
                let participants = participants
                    .iter()
                    .map(|person| self.person_index(person))
                    .collect();
                let Some(history) = self.interactions.get_mut(index as usize) else {
                    return;
                };
                let version = u32::try_from(history.versions.len()).unwrap_or(u32::MAX);
                // Exactly: most interactions are never corrected, and a `Vec` grown by `push`
                // reserves room for four versions (about 170 wasted bytes per interaction).
                history.versions.reserve_exact(1);
                history.versions.push(Version {
                    rt: stamp.rt,
                    pos: stamp.pos,
                    occurred_at: stamp.bt,
                    corrected: *corrected,
                    channel: *channel,
                    participants,
                });
                for stakeholder in stakeholders {
                    insert_sorted(
                        self.contacts.entry(stakeholder.clone()).or_default(),
                        Contact {
                            occurred_at: stamp.bt,
                            pos: stamp.pos,
                            interaction: index,
                            version,
                        },
                        |c| (c.occurred_at, c.pos),
                    );
                }
            }
            Fact::PlanDrafted {
                stamp,
                plan,
                start,
                end,
                frequency,
            } => {
                self.plans.entry(plan.clone()).or_insert(PlanHistory {
                    stamp: *stamp,
                    start: *start,
                    end: *end,
                    frequency: *frequency,
                });
            }
            Fact::ReviewScheduled {
                stamp,
                review,
                plan,
            } => {
                let history = self.reviews.entry(review.clone()).or_default();
                if history.scheduled.is_none() {
                    history.scheduled = Some((*stamp, plan.clone()));
                }
            }
            Fact::ReviewHeld {
                stamp,
                review,
                held_on,
            } => self
                .reviews
                .entry(review.clone())
                .or_default()
                .held
                .push((*stamp, *held_on)),
        }
    }

    /// The index of a participant, interned on first sight.
    fn person_index(&mut self, person: &str) -> u32 {
        if let Some(&i) = self.people_index.get(person) {
            return i;
        }
        let i = u32::try_from(self.people.len()).unwrap_or(u32::MAX);
        self.people.push(person.into());
        self.people_index.insert(person.into(), i);
        i
    }

    /// The participant interned as `index` ("" for none, which cannot happen).
    fn person(&self, index: u32) -> &str {
        self.people.get(index as usize).map_or("", |p| p)
    }

    /// The account's name ("" if its registration was not seen).
    pub fn name(&self) -> &str {
        self.registered.as_ref().map_or("", |(_, name)| name)
    }

    /// Whether the account was registered by T on the axis.
    pub fn registered_by(&self, view: &AsOf) -> bool {
        self.registered
            .as_ref()
            .is_some_and(|(stamp, _)| includes(view, stamp))
    }

    /// A team member's display name ("" if unknown).
    pub fn member_name(&self, person: &str) -> &str {
        self.member_names.get(person).map_or("", String::as_str)
    }

    // ------------------------------------------------------------------ facts at an instant

    /// Whether `person` was in the key account team at instant `t` (their latest membership
    /// change with business time <= t, visible on the axis, is an assignment).
    fn is_member(&self, person: &str, t: Timestamp, view: &AsOf) -> bool {
        let Some(changes) = self.members.get(person) else {
            return false;
        };
        let end = changes.partition_point(|m| m.stamp.bt <= t);
        changes[..end]
            .iter()
            .rev()
            .find(|m| view.knows(m.stamp.rt))
            .is_some_and(|m| m.assigned)
    }

    /// The buying role `stakeholder` had at instant `t`: the latest role fact with business time
    /// <= t visible on the axis; if there is none (they were added to the DMU only after `t`),
    /// the role they were added with, once their addition is visible as of T (the relationship
    /// predates its record in Keyplan). Not the earliest role fact: a role change back-dated
    /// before the addition says nothing about the time before it.
    fn role_at(&self, stakeholder: &str, t: Timestamp, view: &AsOf) -> Option<BuyingRole> {
        let history = self.stakeholders.get(stakeholder)?;
        let roles = &history.roles;
        let end = roles.partition_point(|r| r.0.bt <= t);
        roles[..end]
            .iter()
            .rev()
            .find(|r| view.knows(r.0.rt))
            .map(|r| r.1)
            .or_else(|| {
                history
                    .added
                    .filter(|(stamp, _)| includes(view, stamp))
                    .map(|(_, role)| role)
            })
    }

    /// The rule's definition in force at T and the date it was first set, if it is active
    /// (set by T and not retired by T).
    fn active_rule<'a>(
        &'a self,
        rule: &'a RuleHistory,
        view: &AsOf,
    ) -> Option<(Date, &'a EngagementRuleSet)> {
        if rule.retirements.iter().any(|s| includes(view, s)) {
            return None;
        }
        let mut first = None;
        let mut latest = None;
        for (stamp, definition) in &rule.sets {
            if includes(view, stamp) {
                first.get_or_insert(stamp.bt);
                latest = Some(definition);
            }
        }
        Some((first?.date(), latest?))
    }

    /// The stakeholders whose contacts may meet `rule`, and the buying role they must have had
    /// (buying-role rule).
    fn candidates<'a>(&'a self, rule: &'a EngagementRuleSet) -> (Vec<&'a str>, Option<BuyingRole>) {
        match &rule.target {
            RuleTarget::Stakeholder(id) => (vec![id.as_str()], None),
            RuleTarget::BuyingRole(role) => (
                self.role_holders
                    .get(role)
                    .map(|s| s.iter().map(String::as_str).collect())
                    .unwrap_or_default(),
                Some(*role),
            ),
        }
    }

    /// Whether one contact of `stakeholder` (one version of an interaction naming them) meets
    /// `rule` as of T: the one predicate that decides qualification, returning the first
    /// condition that fails. In order: the version is the content in force on the axis (else
    /// a later correction replaced it, or, as known at T, it was not recorded yet), it
    /// happened by T, on one of the rule's channels, (buying-role rule) the stakeholder then
    /// had the role, and at least one supplier participant was then in the key account team.
    /// `None` only if the indexes do not resolve (cannot happen).
    fn judge<'a>(
        &'a self,
        rule: &EngagementRuleSet,
        role: Option<BuyingRole>,
        stakeholder: &str,
        contact: &Contact,
        view: &AsOf,
    ) -> Option<Result<Hit<'a>, NotCounted>> {
        let interaction = self.interactions.get(contact.interaction as usize)?;
        let v = interaction.versions.get(contact.version as usize)?;
        if interaction.effective(view) != Some(contact.version as usize) {
            return Some(Err(if view.knows(v.rt) {
                NotCounted::CorrectedAway
            } else if v.occurred_at > view.at {
                NotCounted::HappenedAfterAsOf
            } else {
                NotCounted::NotYetRecorded
            }));
        }
        if v.occurred_at > view.at {
            return Some(Err(NotCounted::HappenedAfterAsOf));
        }
        if !rule.channels.contains(&v.channel) {
            return Some(Err(NotCounted::WrongChannel));
        }
        if role.is_some() && self.role_at(stakeholder, v.occurred_at, view) != role {
            return Some(Err(NotCounted::NotInBuyingRoleAtTheTime));
        }
        if !v
            .participants
            .iter()
            .any(|&p| self.is_member(self.person(p), v.occurred_at, view))
        {
            return Some(Err(NotCounted::NoTeamMemberAtTheTime));
        }
        Some(Ok(Hit {
            interaction: &interaction.id,
            occurred_at: v.occurred_at,
            pos: v.pos,
            corrected: v.corrected,
        }))
    }

    /// The latest interaction by T that meets `rule` (see [`Self::judge`]): its content in
    /// force on the axis happened by T, on one of the rule's channels, with the target (the
    /// stakeholder, or a stakeholder who then had the buying role) and at least one supplier
    /// participant then in the key account team. Ties on occurred_at go to the one recorded
    /// last.
    fn last_qualifying<'a>(&'a self, rule: &EngagementRuleSet, view: &AsOf) -> Option<Hit<'a>> {
        let (candidates, role) = self.candidates(rule);
        let mut best: Option<Hit<'a>> = None;
        for stakeholder in candidates {
            let Some(contacts) = self.contacts.get(stakeholder) else {
                continue;
            };
            // Contacts after T cannot qualify (judge says so too): not looked at.
            let end = contacts.partition_point(|c| c.occurred_at <= view.at);
            for contact in contacts[..end].iter().rev() {
                if best
                    .is_some_and(|b| (contact.occurred_at, contact.pos) <= (b.occurred_at, b.pos))
                {
                    break;
                }
                if let Some(Ok(hit)) = self.judge(rule, role, stakeholder, contact, view) {
                    best = Some(hit);
                    break;
                }
            }
        }
        best
    }

    /// Whether `contacts` (one stakeholder's) include version `version` of interaction
    /// `interaction`.
    fn names(&self, contacts: &[Contact], interaction: u32, version: usize) -> bool {
        let Some(v) = self
            .interactions
            .get(interaction as usize)
            .and_then(|i| i.versions.get(version))
        else {
            return false;
        };
        let key = (v.occurred_at, v.pos);
        contacts
            .binary_search_by(|c| (c.occurred_at, c.pos).cmp(&key))
            .is_ok()
    }

    /// The interactions `rule` considers as of T, each judged by [`Self::judge`] (the same
    /// predicate that decides the rule's status), with the failing condition in words: at most
    /// [`MAX_CONSIDERED`], up to [`MAX_CONSIDERED_AFTER`] of them that happened soonest after T,
    /// then the most recent by T; most recent first. A version replaced by a correction (or,
    /// as known at T, by one not recorded yet) that still names the same stakeholder is left
    /// out: the version in force speaks for the interaction.
    pub(crate) fn considered(
        &self,
        rule: &EngagementRuleSet,
        view: &AsOf,
    ) -> Vec<ConsideredInteraction> {
        let (candidates, role) = self.candidates(rule);
        // (occurred_at, pos, after T, entry)
        let mut found: Vec<(Timestamp, u64, bool, ConsideredInteraction)> = Vec::new();
        for stakeholder in candidates {
            let Some(contacts) = self.contacts.get(stakeholder) else {
                continue;
            };
            let end = contacts.partition_point(|c| c.occurred_at <= view.at);
            let (by, after) = contacts.split_at(end);
            let mut take = |contact: &Contact, is_after: bool| -> bool {
                let Some(verdict) = self.judge(rule, role, stakeholder, contact, view) else {
                    return false;
                };
                let Some(interaction) = self.interactions.get(contact.interaction as usize) else {
                    return false;
                };
                let Some(v) = interaction.versions.get(contact.version as usize) else {
                    return false;
                };
                if let Err(NotCounted::CorrectedAway | NotCounted::NotYetRecorded) = verdict {
                    if let Some(effective) = interaction.effective(view) {
                        if self.names(contacts, contact.interaction, effective) {
                            return false;
                        }
                    }
                }
                let not_counted = verdict.err();
                let detail = self.detail(not_counted, rule, stakeholder, interaction, v, view);
                found.push((
                    v.occurred_at,
                    v.pos,
                    is_after,
                    ConsideredInteraction {
                        interaction_id: interaction.id.to_string(),
                        stakeholder: stakeholder.to_owned(),
                        occurred_at: v.occurred_at,
                        recorded_at: v.rt,
                        channel: v.channel,
                        corrected: v.corrected,
                        not_counted,
                        detail,
                    },
                ));
                true
            };
            let mut n = 0;
            for contact in after {
                if n == MAX_CONSIDERED_AFTER {
                    break;
                }
                if take(contact, true) {
                    n += 1;
                }
            }
            let mut n = 0;
            for contact in by.iter().rev() {
                if n == MAX_CONSIDERED - MAX_CONSIDERED_AFTER {
                    break;
                }
                if take(contact, false) {
                    n += 1;
                }
            }
        }
        // Across stakeholders: the soonest after T, the latest by T.
        let (mut after, mut by): (Vec<_>, Vec<_>) = found.into_iter().partition(|f| f.2);
        after.sort_by_key(|f| (f.0, f.1));
        after.truncate(MAX_CONSIDERED_AFTER);
        by.sort_by_key(|f| std::cmp::Reverse((f.0, f.1)));
        by.truncate(MAX_CONSIDERED - after.len());
        after.reverse();
        after.into_iter().chain(by).map(|f| f.3).collect()
    }

    /// A considered interaction's verdict in words.
    fn detail(
        &self,
        not_counted: Option<NotCounted>,
        rule: &EngagementRuleSet,
        stakeholder: &str,
        interaction: &InteractionHistory,
        v: &Version,
        view: &AsOf,
    ) -> String {
        let Some(reason) = not_counted else {
            return "counted: meets the rule".to_owned();
        };
        let why = match reason {
            NotCounted::CorrectedAway => {
                let by = interaction
                    .effective(view)
                    .and_then(|e| interaction.versions.get(e));
                match by {
                    Some(c) => format!(
                        "a correction recorded {} replaced this version and no longer names {stakeholder}",
                        c.rt
                    ),
                    None => "a later correction replaced this version".to_owned(),
                }
            }
            NotCounted::HappenedAfterAsOf => format!("it happened after {}", view.at),
            NotCounted::NotYetRecorded => format!(
                "it was recorded {}, after {} (as known at that instant it was not in Keyplan yet)",
                v.rt, view.at
            ),
            NotCounted::WrongChannel => {
                let channels: Vec<&str> = rule.channels.iter().map(|c| c.as_str()).collect();
                format!(
                    "its channel, {}, is not one of the rule's ({})",
                    v.channel,
                    channels.join(", ")
                )
            }
            NotCounted::NotInBuyingRoleAtTheTime => {
                let wanted = match &rule.target {
                    RuleTarget::BuyingRole(r) => r.as_str(),
                    RuleTarget::Stakeholder(_) => "",
                };
                match self.role_at(stakeholder, v.occurred_at, view) {
                    Some(had) => format!(
                        "{stakeholder} was {had}, not {wanted}, at {}",
                        v.occurred_at
                    ),
                    None => format!(
                        "{stakeholder} had no known buying role at {}",
                        v.occurred_at
                    ),
                }
            }
            NotCounted::NoTeamMemberAtTheTime => {
                let people: Vec<String> = v
                    .participants
                    .iter()
                    .map(|&p| {
                        let person = self.person(p);
                        format!(
                            "{person}: {}",
                            self.membership_note(person, v.occurred_at, view)
                        )
                    })
                    .collect();
                if people.is_empty() {
                    "it names no supplier participant, so no one from the key account team took part"
                        .to_owned()
                } else {
                    format!(
                        "no participant was in the key account team at {} ({})",
                        v.occurred_at,
                        people.join("; ")
                    )
                }
            }
        };
        format!("not counted: {why}")
    }

    /// Why `person` was not in the team at `t`, on the axis, in words.
    fn membership_note(&self, person: &str, t: Timestamp, view: &AsOf) -> String {
        let visible: Vec<&Membership> = self
            .members
            .get(person)
            .map(|m| m.iter().filter(|m| view.knows(m.stamp.rt)).collect())
            .unwrap_or_default();
        let before = visible.iter().rev().find(|m| m.stamp.bt <= t);
        let after = visible.iter().find(|m| m.stamp.bt > t && m.assigned);
        let mut note = match before {
            Some(m) if !m.assigned => format!("left the team {}", m.stamp.bt),
            Some(_) => "in the team".to_owned(),
            None => "not yet in the team".to_owned(),
        };
        match after {
            Some(m) => note.push_str(&format!(", assigned {}", m.stamp.bt)),
            None if before.is_none() => note = "never in the key account team".to_owned(),
            None => {}
        }
        if view.axis == Axis::AsKnownAt {
            if let Some(m) = self.members.get(person).and_then(|m| {
                m.iter()
                    .find(|m| !view.knows(m.stamp.rt) && m.stamp.bt <= t)
            }) {
                note.push_str(&format!(
                    " (a team change dated {} was recorded only {})",
                    m.stamp.bt, m.stamp.rt
                ));
            }
        }
        note
    }

    // ------------------------------------------------------------------ rules

    /// Every active rule as of T, by rule id, evaluated.
    pub fn evaluations<'a>(&'a self, view: &AsOf) -> impl Iterator<Item = Evaluation<'a>> + 'a {
        let view = *view;
        self.rules.iter().filter_map(move |(id, rule)| {
            let (set_on, definition) = self.active_rule(rule, &view)?;
            Some(self.evaluate(id, definition, set_on, &view))
        })
    }

    fn evaluate<'a>(
        &'a self,
        rule_id: &'a str,
        definition: &'a EngagementRuleSet,
        set_on: Date,
        view: &AsOf,
    ) -> Evaluation<'a> {
        let today = view.date();
        let cadence = definition.cadence_days;
        let last = self.last_qualifying(definition, view);
        // The clock never starts before the rule existed: a contact from before the set date
        // is still the last qualifying one (and shown), but a rule set today cannot be late
        // today for a cadence it did not impose yet.
        let (status, due_on) = match &last {
            None => (RuleStatus::NeverMet, add_days(set_on, cadence)),
            Some(hit) => {
                let due_on = add_days(hit.occurred_at.date().max(set_on), cadence);
                let d = days_between(today, due_on);
                let status = if d < 0 {
                    RuleStatus::Overdue
                } else if d <= i64::from(due_soon_window(cadence)) {
                    RuleStatus::DueSoon
                } else {
                    RuleStatus::OnTrack
                };
                (status, due_on)
            }
        };
        let d = days_between(today, due_on);
        Evaluation {
            rule_id,
            definition,
            set_on,
            status,
            due_on,
            days_overdue: day_count(-d),
            days_until_due: day_count(d),
            last,
        }
    }

    /// Counts of the active rules as of T (only those owned by `owner`, if given).
    pub fn share(&self, view: &AsOf, owner: Option<&str>) -> Share {
        let mut share = Share::default();
        for e in self.evaluations(view) {
            if owner.is_none_or(|o| e.definition.owner.as_str() == o) {
                share.count(e.status, e.past_due());
            }
        }
        share
    }

    /// The target of a rule in words.
    pub fn describe_target(&self, target: &RuleTarget) -> String {
        match target {
            RuleTarget::Stakeholder(id) => match self.stakeholders.get(id.as_str()) {
                Some(s) if !s.name.is_empty() => format!("stakeholder {id} ({})", s.name),
                _ => format!("stakeholder {id}"),
            },
            RuleTarget::BuyingRole(role) => format!("buying role {role}"),
        }
    }

    /// The full report of one evaluated rule.
    pub fn rule_report(&self, e: &Evaluation<'_>) -> RuleCompliance {
        RuleCompliance {
            definition: e.definition.clone(),
            target_description: self.describe_target(&e.definition.target),
            owner_name: self.member_name(e.definition.owner.as_str()).to_owned(),
            set_on: e.set_on,
            status: e.status,
            last_interaction: e.last.map(|hit| LastInteraction {
                interaction_id: hit.interaction.to_owned(),
                occurred_at: hit.occurred_at,
                corrected: hit.corrected,
            }),
            due_on: e.due_on,
            days_overdue: e.days_overdue,
            days_until_due: e.days_until_due,
            due_soon_window_days: due_soon_window(e.definition.cadence_days),
            considered: Vec::new(),
        }
    }

    /// The line of an overdue rule in an overdue list.
    pub fn overdue_line(&self, e: &Evaluation<'_>, account: &str) -> OverdueRule {
        OverdueRule {
            account: account.to_owned(),
            rule_id: e.rule_id.to_owned(),
            owner: e.definition.owner.to_string(),
            target_description: self.describe_target(&e.definition.target),
            status: e.status,
            days_overdue: e.days_overdue,
            due_on: e.due_on,
            last_interaction_on: e.last.map(|hit| hit.occurred_at.date()),
        }
    }

    /// Rules retired by T, by rule id, with the business time of their retirement.
    pub fn retired(&self, view: &AsOf) -> Vec<RetiredRule> {
        self.rules
            .iter()
            .filter_map(|(id, rule)| {
                let stamp = rule.retirements.iter().find(|s| includes(view, s))?;
                Some(RetiredRule {
                    rule_id: id.clone(),
                    retired_at: stamp.bt,
                })
            })
            .collect()
    }

    /// The account's whole answer as of T; with `explain`, each rule lists the interactions
    /// it considered (see [`Self::considered`]).
    pub fn compliance(&self, account: &str, view: &AsOf, explain: bool) -> AccountCompliance {
        let mut share = Share::default();
        let mut rules = Vec::new();
        let mut overdue = Vec::new();
        for e in self.evaluations(view) {
            share.count(e.status, e.past_due());
            let mut report = self.rule_report(&e);
            if explain {
                report.considered = self.considered(e.definition, view);
            }
            rules.push(report);
            if e.past_due() {
                overdue.push(self.overdue_line(&e, account));
            }
        }
        sort_overdue(&mut overdue);
        AccountCompliance {
            as_of: *view,
            rules,
            share,
            overdue,
            plan_reviews: self.plan_reviews(view),
            retired: self.retired(view),
        }
    }

    // ------------------------------------------------------------------ reviews

    /// Review cadence of every plan drafted by T, by plan id.
    pub fn plan_reviews(&self, view: &AsOf) -> Vec<PlanReviews> {
        self.plans
            .iter()
            .filter(|(_, plan)| includes(view, &plan.stamp))
            .map(|(plan_id, plan)| {
                let mut held: Vec<HeldReview> = self
                    .reviews
                    .iter()
                    .filter(|(_, r)| {
                        r.scheduled.as_ref().is_some_and(|(stamp, p)| {
                            view.knows(stamp.rt) && p.as_deref() == Some(plan_id.as_str())
                        })
                    })
                    .flat_map(|(review_id, r)| {
                        // A review's business time is the day it was held, not when its
                        // outcome was entered: a review held on the due date and written up
                        // two days later was on time. As known at T it must also have been
                        // recorded by T.
                        r.held
                            .iter()
                            .filter(|(stamp, held_on)| {
                                view.knows(stamp.rt) && *held_on <= view.date()
                            })
                            .map(|(_, held_on)| HeldReview {
                                review_id: review_id.clone(),
                                held_on: *held_on,
                            })
                    })
                    .collect();
                held.sort_by(|a, b| {
                    a.held_on
                        .cmp(&b.held_on)
                        .then_with(|| a.review_id.cmp(&b.review_id))
                });
                PlanReviews {
                    plan_id: plan_id.clone(),
                    frequency: plan.frequency,
                    period_start: plan.start,
                    period_end: plan.end,
                    windows: review_windows(
                        plan.start,
                        plan.end,
                        plan.frequency,
                        &held,
                        view.date(),
                    ),
                }
            })
            .collect()
    }
}

/// D_k = start + k * months - 1 day (D_0 = start - 1 day); `None` past the calendar's end.
fn review_due(start: Date, k: u32, months: u32) -> Option<Date> {
    start
        .checked_add_months(Months::new(k.checked_mul(months)?))?
        .pred_opt()
}

/// The review windows of a plan as of `today`, given the reviews held for it (sorted by date).
///
/// Window k is (D_{k-1}, D_k]. For a due date before today: ON_TIME if a review was held in
/// the window; else LATE if the first review after D_k was held by D_{k+1}; else MISSED if
/// D_{k+1} is before today; else OVERDUE. A due date today or later is UPCOMING.
///
/// A review counts for one window only: the review that makes window k LATE lies in window
/// k+1 but is not also that window's review (else one late review would answer for two
/// quarters, and a skipped quarter would never show). Window k+1 needs a review of its own.
pub(crate) fn review_windows(
    start: Date,
    end: Option<Date>,
    frequency: ReviewFrequency,
    held: &[HeldReview],
    today: Date,
) -> Vec<ReviewWindow> {
    let months = frequency.months();
    let mut windows = Vec::new();
    let Some(mut previous_due) = start.pred_opt() else {
        return windows;
    };
    // The review the previous window counted as LATE (by id: it is not this window's).
    let mut taken: Option<&str> = None;
    for k in 1..=MAX_WINDOWS {
        let Some(due_on) = review_due(start, k, months) else {
            break;
        };
        match end {
            Some(end) if due_on > end => break,
            // A perpetual plan: stop after the first window not yet due.
            None if k > 1 && previous_due >= today => break,
            _ => {}
        }
        let in_window = held.iter().rfind(|h| {
            taken != Some(h.review_id.as_str()) && h.held_on > previous_due && h.held_on <= due_on
        });
        let next_due = review_due(start, k + 1, months).unwrap_or(Date::MAX);
        let mut late = None;
        let mut window = ReviewWindow {
            index: k,
            opens_on: previous_due.succ_opt().unwrap_or(previous_due),
            due_on,
            status: ReviewStatus::Upcoming,
            review: None,
            days_late: 0,
            days_overdue: 0,
        };
        if due_on >= today {
            window.review = in_window.cloned();
        } else if let Some(h) = in_window {
            window.status = ReviewStatus::OnTime;
            window.review = Some(h.clone());
        } else if let Some(h) = held
            .iter()
            .find(|h| h.held_on > due_on)
            .filter(|h| h.held_on <= next_due)
        {
            window.status = ReviewStatus::Late;
            window.days_late = day_count(days_between(due_on, h.held_on));
            window.review = Some(h.clone());
            late = Some(h.review_id.as_str());
        } else if next_due < today {
            window.status = ReviewStatus::Missed;
        } else {
            window.status = ReviewStatus::Overdue;
            window.days_overdue = day_count(days_between(due_on, today));
        }
        windows.push(window);
        previous_due = due_on;
        taken = late;
    }
    windows
}
