//! Property test: the compliance read model against a brute-force replay of random histories.
//!
//! Random command sequences for two accounts of one tenant are decided by the real domain
//! (`keyplan_domain::decide`, refused commands are dropped), so every history is one the server
//! could have stored: team changes, stakeholders added, buying-role and title changes,
//! departures (which retire their stakeholder's rules), rules set, redefined and retired,
//! interactions logged on time or late and corrected (date, channel, stakeholders and
//! participants), plans drafted with reviews scheduled and held. Business times lag recorded
//! times by up to 25 days (role changes up to 75, half the team assignments date from before
//! the history starts); recorded times never decrease along the log.
//!
//! The oracle below re-reads the whole event list for every question and applies the README's
//! rules ("The rules, exactly") literally. It shares no code with the model: it works on the
//! raw events, not on the model's facts or histories, and does its own date arithmetic. It
//! builds the model's answer types only so that answers compare with `==`.
//!
//! The projection is fed the same events incrementally, flushed to sled and reloaded from it at
//! random cut points (a restart), and compared with the oracle at each cut and at the end, on
//! both axes, at instants before, between, on and after the events. A projection built from
//! scratch in one go is compared too (rebuilt == incremental).
//!
//! Compared on both axes (`AS_HAPPENED_BY`, `AS_KNOWN_AT`): `GetAccountCompliance` whole (every
//! active rule's definition, set date, status, last qualifying interaction and whether it is a
//! correction, due date, days overdue / until due, due-soon window; the counts and share; the
//! overdue list and its order; every plan's review windows with status, review named, days
//! late / overdue; the rules retired by T), the rollups by account, owner and tenant (with the
//! tenant's overdue list), trends (tenant, one account, one owner) and the portfolio's
//! `account_share`.
//!
//! Not covered: rules serving an opportunity, reviews not scheduled for a plan or cancelled,
//! other tenants, instants finer than an hour, and the gRPC layer (`service.rs`, `wire.rs`);
//! labels (target descriptions, owner and account names) are checked only as "the names known
//! now, on both axes", which is what the model gives and the README does not specify.
//!
//! Where the README leaves a choice open the oracle follows the model, and says so where it
//! does (ties between interactions with the same occurredAt).
//!
//! `PROPTEST_CASES=N` runs N cases instead of the default.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate};
use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_domain::{AccountCommand, AccountEvent, AccountState};
use keyplan_projection::{ProjectedEvent, Projection};
use keyplan_testkit::flush_and_reload;
use keyplan_testkit::random_history::{
    self, cases, choose, dump, instants, op, pick, plan_period, start, subset, Op, DAY,
};
use proptest::prelude::*;

use super::handmade::{assigned, interaction, outcome, person, registered, sh, stakeholder};
use super::persistence::temp_tree;
use super::*;

/// Cases run by default: about 7 s in a debug build on 2 cores (about 14 ms a case).
const DEFAULT_CASES: u32 = 512;

const TENANT: &str = "t";
const ACCOUNTS: [&str; 2] = ["a", "b"];
const PEOPLE: [&str; 4] = ["p0", "p1", "p2", "p3"];
const STAKEHOLDERS: [&str; 3] = ["s0", "s1", "s2"];
const ROLES: [BuyingRole; 3] = [
    BuyingRole::EconomicBuyer,
    BuyingRole::TechnicalBuyer,
    BuyingRole::User,
];
const TITLES: [&str; 3] = ["CFO", "Finance Controller", "CTO"];
const CHANNELS: [Channel; 4] = [
    Channel::InPerson,
    Channel::PhoneCall,
    Channel::Email,
    Channel::VideoCall,
];
const RULES: [&str; 3] = ["r0", "r1", "r2"];
const CADENCES: [u32; 8] = [1, 2, 7, 10, 14, 30, 45, 60];
const PLANS: [&str; 2] = ["pl0", "pl1"];
const FREQUENCIES: [ReviewFrequency; 4] = [
    ReviewFrequency::Monthly,
    ReviewFrequency::Monthly,
    ReviewFrequency::Quarterly,
    ReviewFrequency::HalfYearly,
];

// ---------------------------------------------------------------- random histories

/// The command an op proposes, picked among what the account's state makes plausible (so that
/// most commands are accepted), and the business time of its event's envelope; `None` if the
/// state offers nothing to pick (e.g. retiring a rule before any exists). The domain still
/// decides: a proposal it refuses is dropped.
fn command(
    op: &Op,
    kind: u8,
    state: &AccountState,
    recorded: Timestamp,
    occurred: Timestamp,
) -> Option<(AccountCommand, Timestamp)> {
    use AccountCommand as C;
    let x = op.x;
    let current = || {
        state
            .stakeholders
            .iter()
            .filter(|(_, s)| s.departed_on.is_none())
            .map(|(id, _)| id.clone())
    };
    let present = || {
        // Stakeholders who may take part in an interaction on `occurred`'s date.
        state
            .stakeholders
            .iter()
            .filter(|(_, s)| s.departed_on.is_none_or(|d| d >= occurred.date()))
            .map(|(id, _)| id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let details = |stakeholders: Vec<String>| {
        let stakeholders: Vec<&str> = stakeholders.iter().map(String::as_str).collect();
        interaction(
            "i",
            occurred,
            pick(&CHANNELS, x[1]),
            &subset(&stakeholders, x[2]),
            &subset(&PEOPLE, x[3]),
        )
        .details
    };
    if !state.exists() {
        return Some((C::RegisterAccount(registered()), occurred));
    }
    let command = match kind {
        // Half of the team was in place before the account's history starts, so that
        // back-dated contacts often have a team member in them.
        0..=10 => {
            return Some((
                C::AssignTeamMember(assigned(choose(
                    PEOPLE
                        .iter()
                        .filter(|p| !state.team.contains_key(&person(p))),
                    x[0],
                )?)),
                if x[4] % 2 == 0 {
                    Timestamp(start().0 - 30 * DAY)
                } else {
                    occurred
                },
            ))
        }
        11..=15 => C::UnassignTeamMember(TeamMemberUnassigned {
            person_id: choose(state.team.keys(), x[0])?.clone(),
            reason: String::new(),
        }),
        // Mostly dated when recorded, so that back-dated contacts and role changes often
        // precede the addition (a relationship older than its record).
        16..=23 => {
            return Some((
                C::AddStakeholder(stakeholder(
                    choose(
                        STAKEHOLDERS
                            .iter()
                            .filter(|s| !state.stakeholders.contains_key(&sh(s))),
                        x[0],
                    )?,
                    pick(&ROLES, x[1]),
                )),
                if x[4] % 4 == 0 { occurred } else { recorded },
            ))
        }
        // Profile changes are back-dated further (often before the stakeholder's addition).
        24..=31 => {
            return Some((
                C::ChangeStakeholderProfile(StakeholderProfileChanged {
                    stakeholder_id: choose(current(), x[0])?,
                    // A third of the changes are title changes (compliance must ignore them).
                    title: (x[2] % 3 == 0).then(|| pick(&TITLES, x[3]).to_owned()),
                    reports_to: None,
                    clear_reports_to: false,
                    buying_role: (x[2] % 3 != 0).then(|| pick(&ROLES, x[1])),
                    influence: None,
                    attitude: None,
                    note: String::new(),
                }),
                Timestamp(recorded.0 - 3 * (recorded.0 - occurred.0)),
            ));
        }
        32..=34 => C::RecordStakeholderDeparture(StakeholderDeparted {
            stakeholder_id: choose(current(), x[0])?,
            departed_on: occurred.date(),
            reason: String::new(),
        }),
        35..=46 => C::SetEngagementRule(EngagementRuleSet {
            rule_id: RuleId::parse(*choose(
                RULES.iter().filter(|r| {
                    state
                        .rules
                        .get(&RuleId::parse(**r).unwrap())
                        .is_none_or(|rule| rule.retired.is_none())
                }),
                x[0],
            )?)
            .unwrap(),
            target: if x[1] % 2 == 0 {
                RuleTarget::Stakeholder(choose(current(), x[2])?)
            } else {
                RuleTarget::BuyingRole(pick(&ROLES, x[2]))
            },
            owner: choose(state.team.keys(), x[3])?.clone(),
            cadence_days: pick(&CADENCES, x[4]),
            channels: subset(&CHANNELS, x[4] >> 3),
            opportunity_id: None,
        }),
        47..=50 => C::RetireEngagementRule(EngagementRuleRetired {
            rule_id: choose(
                state
                    .rules
                    .iter()
                    .filter(|(_, r)| r.retired.is_none())
                    .map(|(id, _)| id.clone()),
                x[0],
            )?,
            reason: "x".into(),
        }),
        51..=70 => C::LogInteraction(InteractionLogged {
            interaction_id: InteractionId::parse(format!("i{}", state.interactions.len())).unwrap(),
            details: details(choose([present()], 0).filter(|p| !p.is_empty())?),
        }),
        // Moves the date (to `occurred`), and may change the channel and the people.
        71..=79 => C::CorrectInteraction(InteractionCorrected {
            interaction_id: choose(state.interactions.keys(), x[0])?.clone(),
            details: details(choose([present()], 0).filter(|p| !p.is_empty())?),
            reason: "x".into(),
        }),
        80..=82 => C::DraftPlan(PlanDrafted {
            plan_id: PlanId::parse(pick(&PLANS, x[0])).unwrap(),
            period: plan_period(x[1], x[2])?,
            prepared_by: person("p0"),
            prepared_on: recorded.date(),
            review_frequency: pick(&FREQUENCIES, x[3]),
        }),
        83..=89 => C::ScheduleReview(ReviewScheduled {
            review_id: ReviewId::parse(format!("v{}", state.reviews.len())).unwrap(),
            kind: ReviewKind::InternalPlanReview,
            plan_id: Some(choose(state.plans.keys(), x[1])?.clone()),
            due_on: recorded.date(),
            supplier_attendees: vec![person("p0")],
            customer_attendees: vec![],
        }),
        // Held on the lagged date, entered with the recorded time as its occurredAt: the
        // rules date a review by the day it was held.
        _ => {
            let review = choose(
                state
                    .reviews
                    .iter()
                    .filter(|(_, r)| {
                        matches!(r.status, keyplan_domain::state::ReviewStatus::Scheduled)
                    })
                    .map(|(id, _)| id.to_string()),
                x[0],
            )?;
            return Some((
                C::RecordReviewOutcome(outcome(&review, occurred.date())),
                recorded,
            ));
        }
    };
    Some((command, occurred))
}

/// The kind of command that makes `kind` possible, if `command` offers nothing for it.
fn prerequisite(kind: u8, state: &AccountState) -> Option<u8> {
    match kind {
        11..=15 => Some(0),                                    // unassign: assign
        24..=34 => Some(16),                                   // profile, departure: add
        35..=46 if state.team.is_empty() => Some(0),           // rule: an owner
        35..=46 => Some(16),                                   // rule: a stakeholder
        47..=50 => Some(35),                                   // retire: set
        71..=79 if !state.interactions.is_empty() => Some(16), // correct: a stakeholder
        71..=79 => Some(51),                                   // correct: log
        51..=70 => Some(16),                                   // log: a stakeholder
        83..=89 => Some(80),                                   // schedule: draft
        90..=99 => Some(83),                                   // outcome: schedule
        _ => None,
    }
}

/// Decides the ops in order, as the server would (one state per account), and returns the
/// accepted events with positions from 1. Account `a` is registered first; `b` by its first op.
fn build(ops: &[Op]) -> Vec<ProjectedEvent> {
    let register = Op {
        account: 0,
        gap_hours: 0,
        lag_hours: 0,
        kind: 0,
        x: [0; 5],
    };
    random_history::build(
        TENANT,
        &ACCOUNTS,
        std::iter::once(&register).chain(ops),
        |op, state, recorded, occurred| {
            // A command the state offers nothing for is replaced by its prerequisite (a rule
            // needs a team member, a review outcome a scheduled review...).
            let mut kind = Some(op.kind);
            std::iter::from_fn(|| {
                let k = kind?;
                kind = prerequisite(k, state);
                Some(command(op, k, state, recorded, occurred))
            })
            .take(3)
            .flatten()
            .next()
        },
    )
}

// ---------------------------------------------------------------- the oracle

/// The README's rules, by brute force over the raw events.
struct Oracle<'a> {
    events: &'a [ProjectedEvent],
}

/// Whether the event is among those the axis holds at T: every event as happened by T, only
/// those recorded by T as known at T.
fn knows(view: &AsOf, e: &ProjectedEvent) -> bool {
    match view.axis {
        Axis::AsHappenedBy => true,
        Axis::AsKnownAt => e.recorded_at <= view.at,
    }
}

/// Whether a fact dated by the event's occurredAt is visible as of T.
fn sees(view: &AsOf, e: &ProjectedEvent) -> bool {
    knows(view, e) && e.occurred_at <= view.at
}

/// The order of facts about the same thing: business time, then log position.
fn order(e: &ProjectedEvent) -> (Timestamp, u64) {
    (e.occurred_at, e.position)
}

fn plus_days(d: NaiveDate, days: i64) -> NaiveDate {
    d + Duration::days(days)
}

fn days(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

/// `d` plus `months` calendar months: the same day of the month, or the month's last day.
fn plus_months(d: NaiveDate, months: u32) -> NaiveDate {
    let index = d.year() * 12 + d.month0() as i32 + months as i32;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
    (0..4)
        .find_map(|back| NaiveDate::from_ymd_opt(year, month, d.day() - back))
        .unwrap()
}

/// The interaction that last met a rule: (id, content's occurredAt, its version's position,
/// whether that version is a correction).
type Last = (String, Timestamp, u64, bool);

/// One evaluated rule, as the oracle sees it.
struct Evaluated {
    report: RuleCompliance,
    overdue: Option<OverdueRule>,
}

impl Oracle<'_> {
    fn of(&self, account: &str) -> impl Iterator<Item = &ProjectedEvent> + '_ {
        let account = account.to_owned();
        self.events
            .iter()
            .filter(move |e| e.tenant == TENANT && e.account == account)
    }

    fn accounts(&self) -> BTreeSet<String> {
        self.events.iter().map(|e| e.account.clone()).collect()
    }

    /// Whether `who` was in the team at instant `t`: their latest visible assignment or
    /// unassignment with business time <= t is an assignment.
    fn in_team(&self, account: &str, who: &PersonId, t: Timestamp, view: &AsOf) -> bool {
        self.of(account)
            .filter(|e| knows(view, e) && e.occurred_at <= t)
            .filter_map(|e| match &e.event {
                AccountEvent::TeamMemberAssigned(m) if m.person_id == *who => {
                    Some((order(e), true))
                }
                AccountEvent::TeamMemberUnassigned(m) if m.person_id == *who => {
                    Some((order(e), false))
                }
                _ => None,
            })
            .max_by_key(|(key, _)| *key)
            .is_some_and(|(_, assigned)| assigned)
    }

    /// The buying role `who` had at instant `t`: their latest visible role fact with business
    /// time <= t; if they were added to the DMU only later, the role they were added with.
    fn role_at(
        &self,
        account: &str,
        who: &StakeholderId,
        t: Timestamp,
        view: &AsOf,
    ) -> Option<BuyingRole> {
        let facts: Vec<(&ProjectedEvent, BuyingRole, bool)> = self
            .of(account)
            .filter(|e| knows(view, e))
            .filter_map(|e| match &e.event {
                AccountEvent::StakeholderAdded(s) if s.stakeholder_id == *who => {
                    Some((e, s.buying_role, true))
                }
                AccountEvent::StakeholderProfileChanged(c) if c.stakeholder_id == *who => {
                    Some((e, c.buying_role?, false))
                }
                _ => None,
            })
            .collect();
        if let Some((_, role, _)) = facts
            .iter()
            .filter(|(e, _, _)| e.occurred_at <= t)
            .max_by_key(|(e, _, _)| order(e))
        {
            return Some(*role);
        }
        facts
            .iter()
            .find(|(e, _, added)| *added && sees(view, e))
            .map(|(_, role, _)| *role)
    }

    /// The latest interaction whose content in force meets the rule as of T.
    fn last_qualifying(
        &self,
        account: &str,
        rule: &EngagementRuleSet,
        view: &AsOf,
    ) -> Option<Last> {
        let mut best: Option<Last> = None;
        let ids: BTreeSet<&InteractionId> = self
            .of(account)
            .filter_map(|e| match &e.event {
                AccountEvent::InteractionLogged(i) => Some(&i.interaction_id),
                _ => None,
            })
            .collect();
        for id in ids {
            // The content in force: the latest version (logged or corrected) the axis holds.
            let Some((e, details, corrected)) = self
                .of(account)
                .filter(|e| knows(view, e))
                .filter_map(|e| match &e.event {
                    AccountEvent::InteractionLogged(i) if i.interaction_id == *id => {
                        Some((e, &i.details, false))
                    }
                    AccountEvent::InteractionCorrected(i) if i.interaction_id == *id => {
                        Some((e, &i.details, true))
                    }
                    _ => None,
                })
                .last()
            else {
                continue;
            };
            let when = details.occurred_at;
            let reached = match &rule.target {
                RuleTarget::Stakeholder(s) => details.stakeholders.contains(s),
                RuleTarget::BuyingRole(role) => details
                    .stakeholders
                    .iter()
                    .any(|s| self.role_at(account, s, when, view) == Some(*role)),
            };
            let qualifies = when <= view.at
                && rule.channels.contains(&details.channel)
                && reached
                && details
                    .participants
                    .iter()
                    .any(|p| self.in_team(account, p, when, view));
            // Ties on occurredAt: the one recorded last (the position of its content in force;
            // the README says "recorded last", the model reads it as the version's position).
            if qualifies
                && best
                    .as_ref()
                    .is_none_or(|b| (when, e.position) > (b.1, b.2))
            {
                best = Some((id.to_string(), when, e.position, corrected));
            }
        }
        best
    }

    /// Labels are names as known now, whatever the axis (as the model gives them).
    fn target_description(&self, account: &str, target: &RuleTarget) -> String {
        match target {
            RuleTarget::Stakeholder(id) => {
                let name = self.of(account).find_map(|e| match &e.event {
                    AccountEvent::StakeholderAdded(s) if s.stakeholder_id == *id => {
                        Some(s.name.clone())
                    }
                    _ => None,
                });
                match name {
                    Some(name) if !name.is_empty() => format!("stakeholder {id} ({name})"),
                    _ => format!("stakeholder {id}"),
                }
            }
            RuleTarget::BuyingRole(role) => format!("buying role {role}"),
        }
    }

    fn member_name(&self, account: &str, who: &str) -> String {
        self.of(account)
            .filter_map(|e| match &e.event {
                AccountEvent::TeamMemberAssigned(m) if m.person_id.as_str() == who => {
                    Some(m.name.clone())
                }
                _ => None,
            })
            .last()
            .unwrap_or_default()
    }

    /// Every active rule of the account as of T, by rule id.
    fn rules(&self, account: &str, view: &AsOf) -> Vec<Evaluated> {
        let ids: BTreeSet<String> = self
            .of(account)
            .filter_map(|e| match &e.event {
                AccountEvent::EngagementRuleSet(r) => Some(r.rule_id.to_string()),
                AccountEvent::EngagementRuleRetired(r) => Some(r.rule_id.to_string()),
                _ => None,
            })
            .collect();
        let today = view.at.date();
        let mut out = Vec::new();
        for id in ids {
            let sets: Vec<(&ProjectedEvent, &EngagementRuleSet)> = self
                .of(account)
                .filter(|e| sees(view, e))
                .filter_map(|e| match &e.event {
                    AccountEvent::EngagementRuleSet(r) if r.rule_id.as_str() == id => Some((e, r)),
                    _ => None,
                })
                .collect();
            let retired = self.of(account).any(|e| {
                sees(view, e)
                    && matches!(&e.event, AccountEvent::EngagementRuleRetired(r)
                        if r.rule_id.as_str() == id)
            });
            if sets.is_empty() || retired {
                continue;
            }
            let definition = sets.iter().max_by_key(|(e, _)| order(e)).unwrap().1;
            let set_on = sets
                .iter()
                .min_by_key(|(e, _)| order(e))
                .unwrap()
                .0
                .occurred_at
                .date();
            let cadence = i64::from(definition.cadence_days);
            let window = (definition.cadence_days / 4).clamp(1, 7);
            let last = self.last_qualifying(account, definition, view);
            let (status, due_on) = match &last {
                None => (RuleStatus::NeverMet, plus_days(set_on, cadence)),
                Some(last) => {
                    let due_on = plus_days(last.1.date().max(set_on), cadence);
                    let d = days(today, due_on);
                    let status = if d < 0 {
                        RuleStatus::Overdue
                    } else if d <= i64::from(window) {
                        RuleStatus::DueSoon
                    } else {
                        RuleStatus::OnTrack
                    };
                    (status, due_on)
                }
            };
            let days_overdue = days(due_on, today).max(0) as u32;
            let target_description = self.target_description(account, &definition.target);
            let late =
                status == RuleStatus::Overdue || (status == RuleStatus::NeverMet && due_on < today);
            out.push(Evaluated {
                overdue: late.then(|| OverdueRule {
                    account: account.to_owned(),
                    rule_id: id.clone(),
                    owner: definition.owner.to_string(),
                    target_description: target_description.clone(),
                    status,
                    days_overdue,
                    due_on,
                    last_interaction_on: last.as_ref().map(|l| l.1.date()),
                }),
                report: RuleCompliance {
                    definition: definition.clone(),
                    target_description,
                    owner_name: self.member_name(account, definition.owner.as_str()),
                    set_on,
                    status,
                    last_interaction: last.map(|(interaction_id, occurred_at, _, corrected)| {
                        LastInteraction {
                            interaction_id,
                            occurred_at,
                            corrected,
                        }
                    }),
                    due_on,
                    days_overdue,
                    days_until_due: days(today, due_on).max(0) as u32,
                    due_soon_window_days: window,
                    considered: Vec::new(),
                },
            });
        }
        out
    }

    /// The counts of evaluated rules (only `owner`'s, if given).
    fn share<'r>(rules: impl IntoIterator<Item = &'r Evaluated>, owner: Option<&str>) -> Share {
        let mut share = Share::default();
        for r in rules {
            if owner.is_some_and(|o| r.report.definition.owner.as_str() != o) {
                continue;
            }
            match r.report.status {
                RuleStatus::OnTrack => share.on_track += 1,
                RuleStatus::DueSoon => share.due_soon += 1,
                RuleStatus::Overdue => share.overdue += 1,
                RuleStatus::NeverMet => {
                    share.never_met += 1;
                    if r.overdue.is_none() {
                        share.never_met_not_due += 1;
                    }
                }
            }
        }
        share
    }

    fn sort_overdue(list: &mut [OverdueRule]) {
        list.sort_by(|a, b| {
            (b.days_overdue, &a.account, &a.rule_id).cmp(&(a.days_overdue, &b.account, &b.rule_id))
        });
    }

    fn retired(&self, account: &str, view: &AsOf) -> Vec<RetiredRule> {
        let mut first: BTreeMap<String, (Timestamp, u64)> = BTreeMap::new();
        for e in self.of(account).filter(|e| sees(view, e)) {
            if let AccountEvent::EngagementRuleRetired(r) = &e.event {
                let slot = first.entry(r.rule_id.to_string()).or_insert(order(e));
                *slot = (*slot).min(order(e));
            }
        }
        first
            .into_iter()
            .map(|(rule_id, (retired_at, _))| RetiredRule {
                rule_id,
                retired_at,
            })
            .collect()
    }

    /// The review windows of every plan drafted by T.
    fn plan_reviews(&self, account: &str, view: &AsOf) -> Vec<PlanReviews> {
        let today = view.at.date();
        let mut plans = BTreeMap::new();
        for e in self.of(account).filter(|e| sees(view, e)) {
            if let AccountEvent::PlanDrafted(p) = &e.event {
                plans.entry(p.plan_id.to_string()).or_insert(p);
            }
        }
        plans
            .into_iter()
            .map(|(plan_id, plan)| {
                // Reviews scheduled for the plan, held by T's date, whose outcome the axis
                // holds; dated by the day they were held.
                let mut held: Vec<HeldReview> = self
                    .of(account)
                    .filter(|e| knows(view, e))
                    .filter_map(|e| match &e.event {
                        AccountEvent::ReviewOutcomeRecorded(o) if o.held_on <= today => Some(o),
                        _ => None,
                    })
                    .filter(|o| {
                        self.of(account).any(|e| {
                            matches!(&e.event, AccountEvent::ReviewScheduled(s)
                                if s.review_id == o.review_id
                                    && s.plan_id.as_ref().map(PlanId::as_str)
                                        == Some(plan_id.as_str()))
                        })
                    })
                    .map(|o| HeldReview {
                        review_id: o.review_id.to_string(),
                        held_on: o.held_on,
                    })
                    .collect();
                held.sort_by(|a, b| (a.held_on, &a.review_id).cmp(&(b.held_on, &b.review_id)));
                PlanReviews {
                    plan_id,
                    frequency: plan.review_frequency,
                    period_start: plan.period.start,
                    period_end: plan.period.end,
                    windows: windows(
                        plan.period.start,
                        plan.period.end,
                        plan.review_frequency.months(),
                        &held,
                        today,
                    ),
                }
            })
            .collect()
    }

    fn compliance(&self, account: &str, view: &AsOf) -> Option<AccountCompliance> {
        self.of(account).next()?;
        let rules = self.rules(account, view);
        let mut overdue: Vec<OverdueRule> =
            rules.iter().filter_map(|r| r.overdue.clone()).collect();
        Self::sort_overdue(&mut overdue);
        Some(AccountCompliance {
            as_of: *view,
            share: Self::share(&rules, None),
            rules: rules.into_iter().map(|r| r.report).collect(),
            overdue,
            plan_reviews: self.plan_reviews(account, view),
            retired: self.retired(account, view),
        })
    }

    fn rollup(&self, group_by: GroupBy, view: &AsOf) -> Rollup {
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut total = Share::default();
        let mut overdue = Vec::new();
        for account in self.accounts() {
            let rules = self.rules(&account, view);
            let share = Self::share(&rules, None);
            total.add(share);
            overdue.extend(rules.iter().filter_map(|r| r.overdue.clone()));
            let registered = self
                .of(&account)
                .find(|e| sees(view, e) && matches!(e.event, AccountEvent::AccountRegistered(_)));
            match group_by {
                GroupBy::Account if share.active() > 0 || registered.is_some() => {
                    let name = self.of(&account).find_map(|e| match &e.event {
                        AccountEvent::AccountRegistered(r) => Some(r.name.clone()),
                        _ => None,
                    });
                    groups.insert(
                        account.clone(),
                        Group {
                            key: account.clone(),
                            label: name.unwrap_or_default(),
                            share,
                        },
                    );
                }
                GroupBy::Owner => {
                    for r in &rules {
                        let owner = r.report.definition.owner.to_string();
                        let group = groups.entry(owner.clone()).or_insert_with(|| Group {
                            key: owner.clone(),
                            label: String::new(),
                            share: Share::default(),
                        });
                        if group.label.is_empty() {
                            group.label = self.member_name(&account, &owner);
                        }
                        group.share.add(Self::share([r], None));
                    }
                }
                _ => {}
            }
        }
        if group_by == GroupBy::Tenant {
            groups.insert(
                TENANT.into(),
                Group {
                    key: TENANT.into(),
                    label: TENANT.into(),
                    share: total,
                },
            );
        }
        Self::sort_overdue(&mut overdue);
        Rollup {
            groups: groups.into_values().collect(),
            total,
            overdue,
        }
    }

    fn trend(
        &self,
        account: Option<&str>,
        owner: Option<&str>,
        weeks: u32,
        view: &AsOf,
    ) -> Vec<TrendPoint> {
        (0..weeks)
            .rev()
            .map(|i| {
                let at = Timestamp(view.at.0 - i64::from(i) * 7 * DAY);
                let point = AsOf {
                    at,
                    axis: view.axis,
                };
                let mut share = Share::default();
                for a in self.accounts() {
                    if account.is_none_or(|x| x == a) {
                        share.add(Self::share(&self.rules(&a, &point), owner));
                    }
                }
                TrendPoint { at, share }
            })
            .collect()
    }
}

/// The review windows of a plan, literally: D_k = S + k·f months - 1 day, D_0 = S - 1 day,
/// listed while D_k <= the end (perpetual: up to the first D_k >= today).
fn windows(
    start: NaiveDate,
    end: Option<NaiveDate>,
    months: u32,
    held: &[HeldReview],
    today: NaiveDate,
) -> Vec<ReviewWindow> {
    let due = |k: u32| plus_days(plus_months(start, k * months), -1);
    let mut out = Vec::new();
    let mut taken: Option<String> = None; // the review that made the previous window LATE
    for k in 1.. {
        let (previous, due_on, next) = (due(k - 1), due(k), due(k + 1));
        match end {
            Some(end) if due_on > end => break,
            None if k > 1 && previous >= today => break,
            _ => {}
        }
        let own = |h: &&HeldReview| taken.as_deref() != Some(h.review_id.as_str());
        let in_window = held
            .iter()
            .filter(own)
            .filter(|h| previous < h.held_on && h.held_on <= due_on)
            .max_by(|a, b| (a.held_on, &a.review_id).cmp(&(b.held_on, &b.review_id)));
        let first_after = held
            .iter()
            .filter(|h| h.held_on > due_on)
            .min_by(|a, b| (a.held_on, &a.review_id).cmp(&(b.held_on, &b.review_id)));
        let mut window = ReviewWindow {
            index: k,
            opens_on: plus_days(previous, 1),
            due_on,
            status: ReviewStatus::Upcoming,
            review: None,
            days_late: 0,
            days_overdue: 0,
        };
        let mut late = None;
        if due_on >= today {
            window.review = in_window.cloned();
        } else if let Some(h) = in_window {
            window.status = ReviewStatus::OnTime;
            window.review = Some(h.clone());
        } else if let Some(h) = first_after.filter(|h| h.held_on <= next) {
            window.status = ReviewStatus::Late;
            window.days_late = days(due_on, h.held_on) as u32;
            window.review = Some(h.clone());
            late = Some(h.review_id.clone());
        } else if next < today {
            window.status = ReviewStatus::Missed;
        } else {
            window.status = ReviewStatus::Overdue;
            window.days_overdue = days(due_on, today) as u32;
        }
        out.push(window);
        taken = late;
    }
    out
}

// ---------------------------------------------------------------- the comparison

/// With `explain` the answer is the same plus each rule's considered interactions, and those
/// agree with the status: nothing counted when never met, nothing counted later than the last
/// qualifying interaction, and that one listed as counted unless the list was cut.
fn explained_agrees(
    p: &ComplianceProjection,
    account: &str,
    view: AsOf,
    events: &[ProjectedEvent],
) -> Result<(), TestCaseError> {
    let (Ok(plain), Ok(mut explained)) = (
        p.account_compliance(TENANT, account, view),
        p.account_compliance_with(TENANT, account, view, true),
    ) else {
        return Ok(());
    };
    for r in &explained.rules {
        let counted: Vec<_> = r
            .considered
            .iter()
            .filter(|c| c.not_counted.is_none())
            .collect();
        prop_assert!(counted.iter().all(|c| c.occurred_at <= view.at));
        let by_t = r
            .considered
            .iter()
            .filter(|c| c.not_counted != Some(NotCounted::HappenedAfterAsOf))
            .count();
        match &r.last_interaction {
            None => prop_assert!(counted.is_empty(), "{:?}{}", r, dump(events)),
            Some(last) => {
                prop_assert!(
                    counted.iter().all(|c| c.occurred_at <= last.occurred_at),
                    "{:?}{}",
                    r,
                    dump(events)
                );
                if by_t < MAX_CONSIDERED - MAX_CONSIDERED_AFTER {
                    prop_assert!(
                        counted
                            .iter()
                            .any(|c| c.interaction_id == last.interaction_id
                                && c.occurred_at == last.occurred_at),
                        "{:?}{}",
                        r,
                        dump(events)
                    );
                }
            }
        }
    }
    for r in &mut explained.rules {
        r.considered.clear();
    }
    prop_assert_eq!(plain, explained);
    Ok(())
}

/// The instants asked about: chosen among the events' two clocks (exact hits test the `<=`
/// boundaries) and shifted by a few hours or days, plus one before everything and one long
/// after.
/// Compares every answer of `p` with the oracle's over `events`, at each instant on both axes.
fn compare(
    p: &ComplianceProjection,
    events: &[ProjectedEvent],
    at: &[Timestamp],
    deep: bool,
) -> Result<(), TestCaseError> {
    let oracle = Oracle { events };
    for &t in at {
        for view in [AsOf::happened_by(t), AsOf::known_at(t)] {
            for account in ACCOUNTS {
                prop_assert_eq!(
                    p.account_compliance(TENANT, account, view).ok(),
                    oracle.compliance(account, &view),
                    "account {} {:?}{}",
                    account,
                    view,
                    dump(events)
                );
            }
            if !deep {
                continue;
            }
            for account in ACCOUNTS {
                explained_agrees(p, account, view, events)?;
            }
            if view.axis == Axis::AsHappenedBy {
                // The portfolio's number: (counted on track, active), absent without rules.
                for account in ACCOUNTS {
                    let share = oracle
                        .compliance(account, &view)
                        .map(|c| c.share)
                        .filter(|s| s.active() > 0);
                    prop_assert_eq!(
                        p.account_share(TENANT, account, t).unwrap(),
                        share.map(|s| (s.on_track + s.due_soon + s.never_met_not_due, s.active())),
                        "account share {} {:?}{}",
                        account,
                        view,
                        dump(events)
                    );
                }
            }
            for group_by in [GroupBy::Account, GroupBy::Owner, GroupBy::Tenant] {
                prop_assert_eq!(
                    p.rollup(TENANT, group_by, view).unwrap(),
                    oracle.rollup(group_by, &view),
                    "rollup {:?} {:?}{}",
                    group_by,
                    view,
                    dump(events)
                );
            }
            let weeks = (t.0.rem_euclid(5) + 1) as u32;
            for (account, owner) in [(None, None), (Some("a"), Some("p1")), (None, Some("p0"))] {
                if account.is_some() && !p.contains(TENANT, "a") {
                    continue;
                }
                prop_assert_eq!(
                    p.trend(TENANT, account, owner, weeks, view).unwrap(),
                    oracle.trend(account, owner, weeks, &view),
                    "trend {:?} {:?} {} {:?}{}",
                    account,
                    owner,
                    weeks,
                    view,
                    dump(events)
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(DEFAULT_CASES)))]

    #[test]
    fn compliance_agrees_with_a_brute_force_replay_of_random_histories(
        ops in prop::collection::vec(op(), 1..64),
        picks in prop::collection::vec((any::<u16>(), prop_oneof![2 => Just(0i16), 1 => -72..72i16]), 6..10),
        cuts in prop::collection::vec(1..12usize, 1..4),
    ) {
        let events = build(&ops);
        let at = instants(&events, &picks, 200);

        // Incrementally, in slices; after each, flush to sled and continue with a projection
        // loaded from it (a restart), checking the prefix against the oracle of the prefix.
        let (_db, tree) = temp_tree();
        let mut live = ComplianceProjection::default();
        let mut done = 0;
        for size in cuts.iter().cycle() {
            if done == events.len() {
                break;
            }
            let next = (done + size).min(events.len());
            for e in &events[done..next] {
                live.apply(e);
            }
            done = next;
            live = flush_and_reload(&live, &tree);
            compare(&live, &events[..done], &at[..3], false)?;
        }
        compare(&live, &events, &at, true)?;

        // Rebuilt from scratch in one go: the same answers.
        let scratch = project(&events);
        for (tenant, account) in scratch.account_keys() {
            prop_assert_eq!(live.history(&tenant, &account), scratch.history(&tenant, &account));
        }
        compare(&scratch, &events, &at, false)?;
    }
}

/// The generator is worth its name: over a fixed set of seeds, histories hold every kind of
/// event the oracle looks at, late ones included.
#[test]
fn random_histories_exercise_every_rule_input() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut late_interactions = 0;
    let mut lengths = 0;
    // What the oracle answers at the instants the property test asks about.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut axes_differ = 0;
    for _ in 0..64 {
        let ops = prop::collection::vec(op(), 1..64)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let events = build(&ops);
        lengths += events.len();
        let oracle = Oracle { events: &events };
        let picks: Vec<(u16, i16)> = (0..8u16)
            .map(|i| (i * 7, (i as i16 % 3 - 1) * 30))
            .collect();
        for t in instants(&events, &picks, 200) {
            let happened = oracle.compliance("a", &AsOf::happened_by(t)).unwrap();
            let known = oracle.compliance("a", &AsOf::known_at(t)).unwrap();
            axes_differ += usize::from(happened.rules != known.rules);
            for r in happened.rules.iter().chain(&known.rules) {
                *seen.entry(format!("{:?}", r.status)).or_default() += 1;
                if r.last_interaction.as_ref().is_some_and(|i| i.corrected) {
                    *seen.entry("corrected".into()).or_default() += 1;
                }
            }
            for w in happened.plan_reviews.iter().flat_map(|p| &p.windows) {
                *seen.entry(format!("{:?}", w.status)).or_default() += 1;
            }
            *seen.entry("retired".into()).or_default() += happened.retired.len();
        }
        for e in &events {
            *kinds.entry(e.event.event_type()).or_default() += 1;
            if let AccountEvent::InteractionLogged(i) = &e.event {
                if e.recorded_at.date() > i.details.occurred_at.date() {
                    late_interactions += 1;
                }
            }
        }
    }
    for kind in [
        "AccountRegistered",
        "TeamMemberAssigned",
        "TeamMemberUnassigned",
        "StakeholderAdded",
        "StakeholderProfileChanged",
        "StakeholderDeparted",
        "EngagementRuleSet",
        "EngagementRuleRetired",
        "InteractionLogged",
        "InteractionCorrected",
        "PlanDrafted",
        "ReviewScheduled",
        "ReviewOutcomeRecorded",
    ] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) >= 5,
            "{kind}: {kinds:?}"
        );
    }
    assert!(late_interactions >= 20, "{late_interactions}");
    assert!(lengths / 64 >= 15, "{} {kinds:?}", lengths / 64);
    for outcome in [
        "OnTrack",
        "DueSoon",
        "Overdue",
        "NeverMet",
        "corrected",
        "retired",
        "OnTime",
        "Late",
        "Missed",
        "Upcoming",
    ] {
        assert!(
            seen.get(outcome).copied().unwrap_or(0) >= 5,
            "{outcome}: {seen:?}"
        );
    }
    assert!(axes_differ >= 20, "{axes_differ}");
}
