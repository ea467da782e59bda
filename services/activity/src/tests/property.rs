//! Property test: the activity read model against a brute-force replay of random histories.
//!
//! Random command sequences for two accounts of one tenant are decided by the real domain
//! (refused ones dropped): team changes, stakeholders added, buying-role changes (back-dated
//! up to 75 days, sometimes before the stakeholder's addition) and title changes,
//! departures, tier promotions and demotions (some back-dated), interactions logged on time
//! or late and corrected (date, channel, stakeholders, participants, sentiment).
//!
//! The oracle re-reads the raw events for every question and applies the README's activity
//! definitions literally (an interaction counts at its latest content's occurredAt; UTC
//! calendar periods; "the last N days" from midnight N dates back up to asOf; a stakeholder's
//! role at an instant is their latest role fact (addition or change) with business time <= it,
//! else the role they were added with; in DMU coverage only role facts that had happened by
//! asOf count, as in compliance). It shares no code with the model.
//!
//! Compared, after flush-and-reload restarts at random cut points and at the end:
//! `GetActivityCounts` (one account and the tenant; week and month periods; every dimension:
//! period totals with sentiment sums, buckets with count and sentiment sum),
//! `GetDmuCoverage` (per role: holders, engaged, interactions, last; per stakeholder in the DMU:
//! role, interactions in the window, last contact, days since; never contacted) and
//! `ListQuietAccounts`. Not covered: labels (names), `GetOpportunitySummary` and
//! `GetPortfolio` (no opportunities, revenue, plans or assessments are generated), day and
//! quarter periods, the gRPC layer.
//!
//! `PROPTEST_CASES=N` runs N cases instead of the default.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate};
use keyplan_domain::commands::ChangeTier;
use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_domain::{AccountCommand, AccountEvent, AccountState};
use keyplan_projection::{ProjectedEvent, Projection};
use keyplan_proto::convert::{timestamp_to_proto, WireEnum};
use keyplan_testkit::random_history::{
    self, cases, choose, dump, instants, op, pick, start, subset, Op,
};
use keyplan_testkit::{at, flush_and_reload};
use proptest::prelude::*;

use super::rebuild::temporary_tree;
use crate::calendar::Period;
use crate::{ActivityProjection, Dimension};

/// Cases run by default: about 4 s in a debug build on 2 cores (about 7.5 ms a case).
const DEFAULT_CASES: u32 = 512;

const TENANT: &str = "t";
const ACCOUNTS: [&str; 2] = ["a", "b"];
const PEOPLE: [&str; 4] = ["p0", "p1", "p2", "p3"];
const STAKEHOLDERS: [&str; 4] = ["s0", "s1", "s2", "s3"];
const ROLES: [BuyingRole; 3] = [
    BuyingRole::EconomicBuyer,
    BuyingRole::TechnicalBuyer,
    BuyingRole::User,
];
const CHANNELS: [Channel; 4] = [
    Channel::InPerson,
    Channel::PhoneCall,
    Channel::Email,
    Channel::VideoCall,
];
const SENTIMENTS: [Sentiment; 5] = [
    Sentiment::VeryNegative,
    Sentiment::Negative,
    Sentiment::Neutral,
    Sentiment::Positive,
    Sentiment::VeryPositive,
];
const TIERS: [Tier; 3] = [Tier::Standard, Tier::Key, Tier::Strategic];

// ---------------------------------------------------------------- random histories

/// The command an op proposes (picked among what the state makes plausible) and its
/// envelope's business time; `None` if the state offers nothing to pick.
fn command(
    op: &Op,
    state: &AccountState,
    recorded: Timestamp,
    occurred: Timestamp,
) -> Option<(AccountCommand, Timestamp)> {
    use AccountCommand as C;
    let x = op.x;
    if !state.exists() {
        return Some((
            C::RegisterAccount(AccountRegistered {
                name: "A".into(),
                industry: "x".into(),
                region: "x".into(),
                headquarters: "x".into(),
                tier: pick(&TIERS[1..], x[0]),
            }),
            recorded,
        ));
    }
    let present: Vec<StakeholderId> = state
        .stakeholders
        .iter()
        .filter(|(_, s)| s.departed_on.is_none_or(|d| d >= occurred.date()))
        .map(|(id, _)| id.clone())
        .collect();
    let current = || {
        state
            .stakeholders
            .iter()
            .filter(|(_, s)| s.departed_on.is_none())
            .map(|(id, _)| id.clone())
    };
    let details = || -> Option<InteractionDetails> {
        (!present.is_empty()).then(|| InteractionDetails {
            occurred_at: occurred,
            channel: pick(&CHANNELS, x[1]),
            stakeholders: subset(&present, x[2]),
            participants: subset(&PEOPLE, x[3])
                .into_iter()
                .map(|p| PersonId::parse(p).unwrap())
                .collect(),
            summary: "x".into(),
            sentiment: pick(&SENTIMENTS, x[4]),
            next_step: String::new(),
            opportunity_id: None,
        })
    };
    Some(match op.kind {
        0..=9 => (
            C::AssignTeamMember(TeamMemberAssigned {
                person_id: PersonId::parse(*choose(
                    PEOPLE
                        .iter()
                        .filter(|p| !state.team.contains_key(&PersonId::parse(**p).unwrap())),
                    x[0],
                )?)
                .unwrap(),
                name: format!("Person {}", x[0] % 4),
                role: TeamRole::Sales,
            }),
            occurred,
        ),
        10..=13 => (
            C::UnassignTeamMember(TeamMemberUnassigned {
                person_id: choose(state.team.keys(), x[0])?.clone(),
                reason: String::new(),
            }),
            occurred,
        ),
        // Mostly dated when recorded: back-dated contacts often precede the addition.
        14..=23 => (
            C::AddStakeholder(StakeholderAdded {
                stakeholder_id: StakeholderId::parse(*choose(
                    STAKEHOLDERS.iter().filter(|s| {
                        !state
                            .stakeholders
                            .contains_key(&StakeholderId::parse(**s).unwrap())
                    }),
                    x[0],
                )?)
                .unwrap(),
                name: "S".into(),
                title: "x".into(),
                reports_to: None,
                buying_role: pick(&ROLES, x[1]),
                influence: 3,
                attitude: Attitude::Neutral,
            }),
            if x[4] % 4 == 0 { occurred } else { recorded },
        ),
        // Back-dated further (often before the stakeholder's addition).
        24..=33 => (
            C::ChangeStakeholderProfile(StakeholderProfileChanged {
                stakeholder_id: choose(current(), x[0])?,
                title: (x[2] % 3 == 0).then(|| format!("T{}", x[3] % 3)),
                reports_to: None,
                clear_reports_to: false,
                buying_role: (x[2] % 3 != 0).then(|| pick(&ROLES, x[1])),
                influence: None,
                attitude: None,
                note: String::new(),
            }),
            Timestamp(recorded.0 - 3 * (recorded.0 - occurred.0)),
        ),
        34..=37 => (
            C::RecordStakeholderDeparture(StakeholderDeparted {
                stakeholder_id: choose(current(), x[0])?,
                departed_on: occurred.date(),
                reason: String::new(),
            }),
            occurred,
        ),
        38..=43 => {
            let to = pick(&TIERS, x[0]);
            let from = state.profile.as_ref()?.tier;
            let change = ChangeTier {
                to,
                reason: "x".into(),
            };
            (
                if to > from {
                    C::PromoteAccount(change)
                } else {
                    C::DemoteAccount(change)
                },
                occurred,
            )
        }
        44..=79 => (
            C::LogInteraction(InteractionLogged {
                interaction_id: InteractionId::parse(format!("i{}", state.interactions.len()))
                    .unwrap(),
                details: details()?,
            }),
            occurred,
        ),
        _ => (
            C::CorrectInteraction(InteractionCorrected {
                interaction_id: choose(state.interactions.keys(), x[0])?.clone(),
                details: details()?,
                reason: "x".into(),
            }),
            occurred,
        ),
    })
}

fn build(ops: &[Op]) -> Vec<ProjectedEvent> {
    random_history::build(TENANT, &ACCOUNTS, ops, command)
}

// ---------------------------------------------------------------- the oracle

/// An interaction's content in force (its latest version in the log).
struct Contact<'a> {
    account: &'a str,
    details: &'a InteractionDetails,
}

struct Oracle<'a> {
    events: &'a [ProjectedEvent],
}

fn score(s: Sentiment) -> i64 {
    match s {
        Sentiment::VeryNegative => -2,
        Sentiment::Negative => -1,
        Sentiment::Neutral => 0,
        Sentiment::Positive => 1,
        Sentiment::VeryPositive => 2,
    }
}

fn wire_time(t: Option<Timestamp>) -> Option<(i64, i32)> {
    t.map(|t| {
        let p = timestamp_to_proto(t);
        (p.seconds, p.nanos)
    })
}

fn proto_time(t: &Option<prost_types::Timestamp>) -> Option<(i64, i32)> {
    t.as_ref().map(|p| (p.seconds, p.nanos))
}

/// Midnight UTC of `date`.
fn midnight(date: NaiveDate) -> Timestamp {
    Timestamp(
        date.and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros(),
    )
}

impl<'a> Oracle<'a> {
    fn of(&self, account: &'a str) -> impl Iterator<Item = &'a ProjectedEvent> + 'a {
        self.events.iter().filter(move |e| e.account == account)
    }

    fn accounts(&self) -> BTreeSet<&'a str> {
        self.events.iter().map(|e| e.account.as_str()).collect()
    }

    /// Every interaction with its latest content.
    fn contacts(&self, account: Option<&'a str>) -> Vec<Contact<'a>> {
        let mut latest: BTreeMap<(&str, &str), &InteractionDetails> = BTreeMap::new();
        for e in self.events {
            if account.is_some_and(|a| a != e.account) {
                continue;
            }
            let (id, details) = match &e.event {
                AccountEvent::InteractionLogged(i) => (&i.interaction_id, &i.details),
                AccountEvent::InteractionCorrected(i) => (&i.interaction_id, &i.details),
                _ => continue,
            };
            latest.insert((e.account.as_str(), id.as_str()), details);
        }
        latest
            .into_iter()
            .map(|((account, _), details)| Contact { account, details })
            .collect()
    }

    /// A stakeholder's role at instant `t`, from the role facts with business time <= `by`:
    /// the latest with business time <= t, else the role they were added with (if added by
    /// `by`).
    fn role_at(
        &self,
        account: &'a str,
        who: &StakeholderId,
        t: Timestamp,
        by: Timestamp,
    ) -> Option<BuyingRole> {
        let facts: Vec<(&ProjectedEvent, BuyingRole, bool)> = self
            .of(account)
            .filter(|e| e.occurred_at <= by)
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
        facts
            .iter()
            .filter(|(e, _, _)| e.occurred_at <= t)
            .max_by_key(|(e, _, _)| (e.occurred_at, e.position))
            .or_else(|| facts.iter().find(|(_, _, added)| *added))
            .map(|(_, role, _)| *role)
    }

    /// (totals per period (start, end, count, sum), buckets (start, account, key, count, sum)).
    #[allow(clippy::type_complexity)]
    fn counts(
        &self,
        account: Option<&'a str>,
        period: Period,
        dimension: Dimension,
        from: NaiveDate,
        to: NaiveDate,
    ) -> (
        Vec<(NaiveDate, NaiveDate, u32, i64)>,
        Vec<(NaiveDate, String, String, u32, i64)>,
    ) {
        let start_of = |d: NaiveDate| match period {
            Period::Day => d,
            Period::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Period::Month => NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap(),
            Period::Quarter => {
                NaiveDate::from_ymd_opt(d.year(), d.month0() / 3 * 3 + 1, 1).unwrap()
            }
        };
        let next = |d: NaiveDate| match period {
            Period::Day => d + Duration::days(1),
            Period::Week => d + Duration::days(7),
            Period::Month => start_of(d + Duration::days(32)),
            Period::Quarter => start_of(d + Duration::days(100)),
        };
        let mut periods = Vec::new();
        let mut p = start_of(from);
        while p <= to {
            periods.push((p, next(p) - Duration::days(1), 0u32, 0i64));
            p = next(p);
        }
        let mut buckets: BTreeMap<(NaiveDate, String, usize, String), (u32, i64)> = BTreeMap::new();
        for c in self.contacts(account) {
            let day = c.details.occurred_at.date();
            let Some(slot) = periods.iter_mut().find(|p| p.0 <= day && day <= p.1) else {
                continue;
            };
            let s = score(c.details.sentiment);
            slot.2 += 1;
            slot.3 += s;
            let keys: Vec<(String, usize, String)> = match dimension {
                Dimension::Account => vec![(c.account.to_owned(), 0, c.account.to_owned())],
                Dimension::Channel => vec![(
                    String::new(),
                    Channel::ALL
                        .iter()
                        .position(|x| *x == c.details.channel)
                        .unwrap(),
                    c.details.channel.to_pb().as_str_name().to_owned(),
                )],
                Dimension::TeamMember => c
                    .details
                    .participants
                    .iter()
                    .map(|p| (String::new(), 0, p.to_string()))
                    .collect(),
                Dimension::Stakeholder => c
                    .details
                    .stakeholders
                    .iter()
                    .map(|s| (c.account.to_owned(), 0, s.to_string()))
                    .collect(),
                Dimension::BuyingRole => {
                    let roles: BTreeSet<BuyingRole> = c
                        .details
                        .stakeholders
                        .iter()
                        .filter_map(|s| {
                            let t = c.details.occurred_at;
                            self.role_at(c.account, s, t, Timestamp(i64::MAX))
                        })
                        .collect();
                    roles
                        .into_iter()
                        .map(|r| {
                            (
                                String::new(),
                                BuyingRole::ALL.iter().position(|x| *x == r).unwrap(),
                                r.to_pb().as_str_name().to_owned(),
                            )
                        })
                        .collect()
                }
            };
            for (acc, order, key) in keys {
                let b = buckets.entry((slot.0, acc, order, key)).or_default();
                b.0 += 1;
                b.1 += s;
            }
        }
        (
            periods,
            buckets
                .into_iter()
                .map(|((p, acc, _, key), (n, s))| (p, acc, key, n, s))
                .collect(),
        )
    }

    /// DMU coverage: (roles: (role, holders, engaged, interactions, last), stakeholders:
    /// (id, role, interactions, last, days since), never contacted, window start).
    #[allow(clippy::type_complexity)]
    fn dmu(
        &self,
        account: &'a str,
        days: u32,
        as_of: Timestamp,
    ) -> (
        Vec<(i32, u32, bool, u32, Option<(i64, i32)>)>,
        Vec<(String, i32, u32, Option<(i64, i32)>, Option<u32>)>,
        Vec<String>,
        NaiveDate,
    ) {
        let first = as_of.date() - Duration::days(i64::from(days));
        let in_window = |t: Timestamp| midnight(first) <= t && t <= as_of;
        let contacts = self.contacts(Some(account));
        let mut roles = Vec::new();
        // The DMU at as_of: added by then, not departed before as_of's date.
        let mut dmu: Vec<(StakeholderId, Option<BuyingRole>)> = Vec::new();
        for e in self.of(account) {
            if let AccountEvent::StakeholderAdded(s) = &e.event {
                let departed = self.of(account).any(|d| {
                    matches!(&d.event, AccountEvent::StakeholderDeparted(x)
                        if x.stakeholder_id == s.stakeholder_id && x.departed_on < as_of.date())
                });
                if e.occurred_at <= as_of && !departed {
                    let role = self.role_at(account, &s.stakeholder_id, as_of, as_of);
                    dmu.push((s.stakeholder_id.clone(), role));
                }
            }
        }
        dmu.sort();
        for role in BuyingRole::ALL {
            let holders = dmu.iter().filter(|(_, r)| *r == Some(*role)).count() as u32;
            let engaging: Vec<Timestamp> = contacts
                .iter()
                .filter(|c| in_window(c.details.occurred_at))
                .filter(|c| {
                    c.details.stakeholders.iter().any(|s| {
                        self.role_at(account, s, c.details.occurred_at, as_of) == Some(*role)
                    })
                })
                .map(|c| c.details.occurred_at)
                .collect();
            roles.push((
                role.to_wire(),
                holders,
                !engaging.is_empty(),
                engaging.len() as u32,
                wire_time(engaging.iter().max().copied()),
            ));
        }
        let mut stakeholders = Vec::new();
        let mut never = Vec::new();
        for (id, role) in &dmu {
            let theirs: Vec<Timestamp> = contacts
                .iter()
                .filter(|c| c.details.stakeholders.contains(id) && c.details.occurred_at <= as_of)
                .map(|c| c.details.occurred_at)
                .collect();
            let last = theirs.iter().max().copied();
            if last.is_none() {
                never.push(id.to_string());
            }
            stakeholders.push((
                id.to_string(),
                role.map_or(0, WireEnum::to_wire),
                theirs.iter().filter(|t| in_window(**t)).count() as u32,
                wire_time(last),
                last.map(|t| (as_of.date() - t.date()).num_days() as u32),
            ));
        }
        (roles, stakeholders, never, first)
    }

    /// Quiet accounts: (id, tier, last contact, days since), in the documented order.
    #[allow(clippy::type_complexity)]
    fn quiet(
        &self,
        days: u32,
        as_of: Timestamp,
    ) -> Vec<(String, i32, Option<(i64, i32)>, Option<u32>)> {
        let mut out = Vec::new();
        for account in self.accounts() {
            let tier = self
                .of(account)
                .filter(|e| e.occurred_at <= as_of)
                .filter_map(|e| match &e.event {
                    AccountEvent::AccountRegistered(r) => Some((e, r.tier)),
                    AccountEvent::AccountPromoted(c) => Some((e, c.to)),
                    AccountEvent::AccountDemoted(c) => Some((e, c.to)),
                    _ => None,
                })
                .max_by_key(|(e, _)| (e.occurred_at, e.position))
                .map(|(_, t)| t);
            let Some(tier) = tier.filter(|t| *t != Tier::Standard) else {
                continue;
            };
            let last = self
                .contacts(Some(account))
                .iter()
                .map(|c| c.details.occurred_at)
                .filter(|t| *t <= as_of)
                .max();
            let since = last.map(|t| (as_of.date() - t.date()).num_days() as u32);
            if since.is_some_and(|d| d <= days) {
                continue;
            }
            out.push((account.to_owned(), tier.to_wire(), wire_time(last), since));
        }
        out.sort_by_key(|q| {
            (
                std::cmp::Reverse(q.3.map_or(u64::MAX, u64::from)),
                q.0.clone(),
            )
        });
        out
    }
}

// ---------------------------------------------------------------- the comparison

fn compare(
    p: &ActivityProjection,
    events: &[ProjectedEvent],
    at: &[Timestamp],
) -> Result<(), TestCaseError> {
    let oracle = Oracle { events };
    let (from, to) = (
        start().date() - Duration::days(40),
        start().date() + Duration::days(200),
    );
    for period in [Period::Week, Period::Month] {
        for dimension in [
            Dimension::Account,
            Dimension::Channel,
            Dimension::TeamMember,
            Dimension::Stakeholder,
            Dimension::BuyingRole,
        ] {
            for account in [Some("a"), None] {
                let got = p
                    .activity_counts(TENANT, account, period, dimension, from, to)
                    .unwrap();
                let totals: Vec<(NaiveDate, NaiveDate, u32, i64)> = got
                    .periods
                    .iter()
                    .map(|x| {
                        (
                            x.period_start.parse().unwrap(),
                            x.period_end.parse().unwrap(),
                            x.interactions,
                            x.sentiment.as_ref().map_or(0, |s| s.sum),
                        )
                    })
                    .collect();
                let buckets: Vec<(NaiveDate, String, String, u32, i64)> = got
                    .buckets
                    .iter()
                    .map(|b| {
                        (
                            b.period_start.parse().unwrap(),
                            b.account_id.clone(),
                            b.key.clone(),
                            b.count,
                            b.sentiment.as_ref().map_or(0, |s| s.sum),
                        )
                    })
                    .collect();
                prop_assert_eq!(
                    (totals, buckets),
                    oracle.counts(account, period, dimension, from, to),
                    "counts {:?} {:?} {:?}{}",
                    account,
                    period,
                    dimension,
                    dump(events)
                );
            }
        }
    }
    for &t in at {
        for days in [7, 30] {
            let got = p.dmu_coverage(TENANT, "a", days, t).unwrap();
            let roles: Vec<_> = got
                .buying_roles
                .iter()
                .map(|r| {
                    (
                        r.buying_role,
                        r.stakeholders,
                        r.engaged,
                        r.interactions,
                        proto_time(&r.last_engaged_at),
                    )
                })
                .collect();
            let stakeholders: Vec<_> = got
                .stakeholders
                .iter()
                .map(|s| {
                    (
                        s.stakeholder_id.clone(),
                        s.buying_role,
                        s.interactions,
                        proto_time(&s.last_contact),
                        s.days_since_last_contact,
                    )
                })
                .collect();
            prop_assert_eq!(
                (
                    roles,
                    stakeholders,
                    got.never_contacted.clone(),
                    got.window_start.parse::<NaiveDate>().unwrap()
                ),
                oracle.dmu("a", days, t),
                "dmu {} {}{}",
                days,
                t,
                dump(events)
            );
            let quiet: Vec<_> = p
                .quiet_accounts(TENANT, days, t)
                .unwrap()
                .accounts
                .iter()
                .map(|q| {
                    (
                        q.account_id.clone(),
                        q.tier,
                        proto_time(&q.last_contact),
                        q.days_since_last_contact,
                    )
                })
                .collect();
            prop_assert_eq!(
                quiet,
                oracle.quiet(days, t),
                "quiet {} {}{}",
                days,
                t,
                dump(events)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(DEFAULT_CASES)))]

    #[test]
    fn activity_agrees_with_a_brute_force_replay_of_random_histories(
        ops in prop::collection::vec(op(), 1..64),
        picks in prop::collection::vec((any::<u16>(), prop_oneof![2 => Just(0i16), 1 => -72..72i16]), 4..8),
        cuts in prop::collection::vec(1..16usize, 1..4),
    ) {
        let mut ops = ops;
        ops[0].account = 0; // account `a` exists
        let events = build(&ops);
        let at = instants(&events, &picks, 100);
        let tree = temporary_tree();
        let mut live = ActivityProjection::default();
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
        }
        compare(&live, &events, &at)?;
        prop_assert_eq!(live.snapshot(), super::project(&events).snapshot());
    }
}

/// Found by the property test: a role change back-dated before the stakeholder's addition
/// applies from its own time until the addition, after which the role they were added with
/// holds (the addition is the later role fact), as in compliance.
#[test]
fn a_role_change_back_dated_before_the_addition_gives_way_to_it() {
    let recorded = at(2025, 1, 1, 9);
    let s0 = StakeholderId::parse("s0").unwrap();
    let events: Vec<ProjectedEvent> = [
        (
            recorded,
            AccountEvent::AccountRegistered(AccountRegistered {
                name: "A".into(),
                industry: "x".into(),
                region: "x".into(),
                headquarters: "x".into(),
                tier: Tier::Key,
            }),
        ),
        (
            recorded,
            AccountEvent::StakeholderAdded(StakeholderAdded {
                stakeholder_id: s0.clone(),
                name: "S".into(),
                title: "x".into(),
                reports_to: None,
                buying_role: BuyingRole::EconomicBuyer,
                influence: 3,
                attitude: Attitude::Neutral,
            }),
        ),
        // Technical buyer from 06:00, three hours before the addition.
        (
            at(2025, 1, 1, 6),
            AccountEvent::StakeholderProfileChanged(StakeholderProfileChanged {
                stakeholder_id: s0.clone(),
                title: None,
                reports_to: None,
                clear_reports_to: false,
                buying_role: Some(BuyingRole::TechnicalBuyer),
                influence: None,
                attitude: None,
                note: String::new(),
            }),
        ),
        // Calls at 07:00 (logged late) and at 10:00.
        (
            at(2025, 1, 1, 7),
            AccountEvent::InteractionLogged(InteractionLogged {
                interaction_id: InteractionId::parse("i0").unwrap(),
                details: InteractionDetails {
                    occurred_at: at(2025, 1, 1, 7),
                    channel: Channel::PhoneCall,
                    stakeholders: vec![s0.clone()],
                    participants: vec![PersonId::parse("p0").unwrap()],
                    summary: "x".into(),
                    sentiment: Sentiment::Neutral,
                    next_step: String::new(),
                    opportunity_id: None,
                },
            }),
        ),
        (
            at(2025, 1, 1, 10),
            AccountEvent::InteractionLogged(InteractionLogged {
                interaction_id: InteractionId::parse("i1").unwrap(),
                details: InteractionDetails {
                    occurred_at: at(2025, 1, 1, 10),
                    channel: Channel::PhoneCall,
                    stakeholders: vec![s0.clone()],
                    participants: vec![PersonId::parse("p0").unwrap()],
                    summary: "x".into(),
                    sentiment: Sentiment::Neutral,
                    next_step: String::new(),
                    opportunity_id: None,
                },
            }),
        ),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (occurred, event))| ProjectedEvent {
        position: i as u64 + 1,
        event_id: uuid::Uuid::from_u64_pair(3, i as u64),
        tenant: TENANT.into(),
        account: "a".into(),
        stream_version: i as u64 + 1,
        recorded_at: at(2025, 1, 1, 11),
        occurred_at: occurred,
        actor: "test".into(),
        event,
    })
    .collect();
    let p = super::project(&events);
    let day = start().date();
    let roles = p
        .activity_counts(
            TENANT,
            Some("a"),
            Period::Day,
            Dimension::BuyingRole,
            day,
            day,
        )
        .unwrap();
    let keys: Vec<(&str, u32)> = roles
        .buckets
        .iter()
        .map(|b| (b.key.as_str(), b.count))
        .collect();
    // 07:00: technical buyer (the change); 10:00: economic buyer (the addition, later).
    assert_eq!(
        keys,
        vec![
            ("BUYING_ROLE_ECONOMIC_BUYER", 1),
            ("BUYING_ROLE_TECHNICAL_BUYER", 1)
        ]
    );
    let dmu = p.dmu_coverage(TENANT, "a", 7, at(2025, 1, 2, 12)).unwrap();
    assert_eq!(
        dmu.stakeholders[0].buying_role,
        BuyingRole::EconomicBuyer.to_wire()
    );
}
