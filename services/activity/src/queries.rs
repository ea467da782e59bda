//! The answers: each query reads one account (or walks the tenant's accounts once, for the
//! tenant-wide views) through the derived indexes, and builds the wire response.
//!
//! Definitions are those of `proto/keyplan/v1/activity.proto` (its comments are the API
//! documentation); the comments here say how they are computed.

use std::collections::{BTreeMap, BTreeSet};

use keyplan_domain::values::{BuyingRole, Channel, Date, OpportunityStage, Timestamp};
use keyplan_proto::convert::{date_to_wire, optional_date_to_wire, timestamp_to_proto, WireEnum};
use keyplan_proto::pb;

use crate::calendar::{self, days_between, Period, Window};
use crate::error::ActivityError;
use crate::model::{AccountActivity, Outcome, Tally};
use crate::projection::{ActivityProjection, Shared};
use crate::wire::{basis_points, to_i64, Amounts};
use crate::ComplianceSource;

/// What the counts of a period are broken down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// One count per interaction, by account.
    Account,
    /// One count per interaction, by channel.
    Channel,
    /// One count per supplier participant.
    TeamMember,
    /// One count per customer stakeholder.
    Stakeholder,
    /// One count per distinct buying role among the stakeholders (at the interaction's time).
    BuyingRole,
}

/// Days of the portfolio's short and long activity windows.
const PORTFOLIO_WINDOWS: (u32, u32) = (30, 90);

fn sentiment(tally: &Tally) -> pb::ActivitySentiment {
    pb::ActivitySentiment {
        count: tally.count,
        sum: tally.sentiment_sum,
        mean: (tally.count > 0).then(|| tally.sentiment_sum as f64 / f64::from(tally.count)),
    }
}

fn timestamp(t: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    t.map(timestamp_to_proto)
}

/// A bucket's sort key: period index, account, enum order (0 for free-form keys), key.
type BucketKey = (usize, String, usize, String);

/// The position of a vocabulary value in its declaration order (its index in `ALL`).
fn enum_order<T: PartialEq>(all: &[T], value: &T) -> u32 {
    all.iter()
        .position(|v| v == value)
        .map_or(u32::MAX, |i| u32::try_from(i).unwrap_or(u32::MAX))
}

impl ActivityProjection {
    fn registered(&self, tenant: &str, account: &str) -> Result<Shared, ActivityError> {
        let shared = self
            .account(tenant, account)
            .ok_or_else(|| ActivityError::unknown_account(tenant, account))?;
        if !self.resident(tenant, account, &shared)?.exists() {
            return Err(ActivityError::unknown_account(tenant, account));
        }
        Ok(shared)
    }

    /// Interaction counts of one account (or, with `account` `None`, of every account of the
    /// tenant) per period from `from` to `to` (widened to whole periods), broken down by
    /// `dimension`, with the sentiment of each period.
    ///
    /// Reads the per-day counts of the days in range only: a year is at most 366 entries
    /// per account, whatever the number of interactions.
    pub fn activity_counts(
        &self,
        tenant: &str,
        account: Option<&str>,
        period: Period,
        dimension: Dimension,
        from: Date,
        to: Date,
    ) -> Result<pb::GetActivityCountsResponse, ActivityError> {
        let periods = calendar::periods(period, from, to)?;
        let (Some(&(first, _)), Some(&(_, last))) = (periods.first(), periods.last()) else {
            return Err(ActivityError::invalid("from", "the range covers no period"));
        };
        let accounts = match account {
            Some(account) => vec![(account.to_owned(), self.registered(tenant, account)?)],
            None => self.tenant_accounts(tenant),
        };
        let mut totals = vec![Tally::default(); periods.len()];
        let mut buckets: BTreeMap<BucketKey, (String, Tally)> = BTreeMap::new();
        for (account_id, shared) in accounts {
            let a = self.resident(tenant, &account_id, &shared)?;
            // First per account with small copyable keys (period, enum or intern index), so
            // that names are looked up and allocated once per period and key, not per day.
            let mut local: BTreeMap<(usize, u32), Tally> = BTreeMap::new();
            let mut p = 0;
            for (day, stats) in a.derived.days.range(first..=last) {
                while periods[p].1 < *day {
                    p += 1;
                }
                totals[p].merge(&stats.total);
                let mut count =
                    |k: u32, tally: &Tally| local.entry((p, k)).or_default().merge(tally);
                match dimension {
                    Dimension::Account => count(0, &stats.total),
                    Dimension::Channel => {
                        for (channel, tally) in &stats.channels {
                            count(enum_order(Channel::ALL, channel), tally);
                        }
                    }
                    Dimension::TeamMember => {
                        for (&person, tally) in &stats.members {
                            count(person, tally);
                        }
                    }
                    Dimension::Stakeholder => {
                        for (&s, tally) in &stats.stakeholders {
                            count(s, tally);
                        }
                    }
                    Dimension::BuyingRole => {
                        for (role, tally) in &stats.roles {
                            count(enum_order(BuyingRole::ALL, role), tally);
                        }
                    }
                }
            }
            for ((p, k), tally) in local {
                let (key, label): (BucketKey, &str) = match dimension {
                    Dimension::Account => (
                        (p, account_id.clone(), 0, account_id.clone()),
                        &a.facts.name,
                    ),
                    Dimension::Channel => {
                        let channel = Channel::ALL[k as usize];
                        let name = channel.to_pb().as_str_name().to_owned();
                        ((p, String::new(), k as usize, name), channel.as_str())
                    }
                    Dimension::TeamMember => {
                        let person = &a.facts.people[k as usize];
                        ((p, String::new(), 0, person.id.clone()), &person.name)
                    }
                    Dimension::Stakeholder => {
                        let s = &a.facts.stakeholders[k as usize];
                        ((p, account_id.clone(), 0, s.id.clone()), &s.name)
                    }
                    Dimension::BuyingRole => {
                        let role = BuyingRole::ALL[k as usize];
                        let name = role.to_pb().as_str_name().to_owned();
                        ((p, String::new(), k as usize, name), role.as_str())
                    }
                };
                let entry = buckets
                    .entry(key)
                    .or_insert_with(|| (String::new(), Tally::default()));
                if entry.0.is_empty() {
                    entry.0 = label.to_owned();
                }
                entry.1.merge(&tally);
            }
        }
        let mut total = Tally::default();
        for t in &totals {
            total.merge(t);
        }
        Ok(pb::GetActivityCountsResponse {
            from: date_to_wire(first),
            to: date_to_wire(last),
            periods: periods
                .iter()
                .zip(&totals)
                .map(|(&(start, end), tally)| pb::ActivityPeriodTotals {
                    period_start: date_to_wire(start),
                    period_end: date_to_wire(end),
                    interactions: tally.count,
                    sentiment: Some(sentiment(tally)),
                })
                .collect(),
            buckets: buckets
                .into_iter()
                .map(
                    |((p, account_id, _, key), (label, tally))| pb::ActivityBucket {
                        period_start: date_to_wire(periods[p].0),
                        account_id,
                        key,
                        label,
                        count: tally.count,
                        sentiment: Some(sentiment(&tally)),
                    },
                )
                .collect(),
            total_interactions: total.count,
            total_sentiment: Some(sentiment(&total)),
        })
    }

    /// Which buying roles and stakeholders of one account were engaged in the last `days`
    /// days up to `as_of`, and who was never contacted.
    pub fn dmu_coverage(
        &self,
        tenant: &str,
        account: &str,
        days: u32,
        as_of: Timestamp,
    ) -> Result<pb::GetDmuCoverageResponse, ActivityError> {
        let days = calendar::check_days("days", days)?;
        let shared = self.registered(tenant, account)?;
        let a = self.resident(tenant, account, &shared)?;
        let window = Window::last_days(as_of, days);

        // Roles: walk the window's interactions once, each stakeholder with the role they
        // had when it happened, from the role facts that had happened by `as_of` (a person
        // added to the DMU after `as_of` held no role yet; compliance answers the same).
        let mut engaged: BTreeMap<BuyingRole, (u32, Timestamp)> = BTreeMap::new();
        for interaction in a.interactions_between(window.start, window.end) {
            for role in a.roles_as_of(interaction, as_of) {
                let entry = engaged.entry(role).or_insert((0, interaction.at));
                entry.0 += 1;
                entry.1 = entry.1.max(interaction.at);
            }
        }
        let present: Vec<usize> = {
            let mut ids: Vec<(&str, usize)> = a
                .facts
                .stakeholders
                .iter()
                .enumerate()
                .filter(|(_, s)| s.present_at(as_of))
                .map(|(i, s)| (s.id.as_str(), i))
                .collect();
            ids.sort_unstable();
            ids.into_iter().map(|(_, i)| i).collect()
        };
        let mut holders: BTreeMap<BuyingRole, u32> = BTreeMap::new();
        let mut stakeholders = Vec::with_capacity(present.len());
        let mut never_contacted = Vec::new();
        for &i in &present {
            let s = &a.facts.stakeholders[i];
            let role = s.role_at(as_of);
            if let Some(role) = role {
                *holders.entry(role).or_default() += 1;
            }
            let (in_window, last) = a.stakeholder_contacts(i, window.start, window.end);
            if last.is_none() {
                never_contacted.push(s.id.clone());
            }
            stakeholders.push(pb::DmuStakeholderCoverage {
                stakeholder_id: s.id.clone(),
                name: s.name.clone(),
                buying_role: role.map_or(0, WireEnum::to_wire),
                interactions: in_window,
                last_contact: timestamp(last),
                days_since_last_contact: last.map(|t| days_between(t, as_of)),
            });
        }
        let buying_roles: Vec<pb::DmuRoleCoverage> = BuyingRole::ALL
            .iter()
            .map(|role| {
                let hit = engaged.get(role);
                pb::DmuRoleCoverage {
                    buying_role: role.to_wire(),
                    stakeholders: holders.get(role).copied().unwrap_or(0),
                    engaged: hit.is_some(),
                    interactions: hit.map_or(0, |h| h.0),
                    last_engaged_at: timestamp(hit.map(|h| h.1)),
                }
            })
            .collect();
        Ok(pb::GetDmuCoverageResponse {
            account_id: account.to_owned(),
            window_start: date_to_wire(window.first_date),
            as_of: Some(timestamp_to_proto(as_of)),
            roles_engaged: u32::try_from(engaged.len()).unwrap_or(u32::MAX),
            stakeholders_engaged: u32::try_from(
                stakeholders.iter().filter(|s| s.interactions > 0).count(),
            )
            .unwrap_or(u32::MAX),
            buying_roles,
            stakeholders,
            never_contacted,
        })
    }

    /// The tenant's accounts that are key or strategic at `as_of` and had no interaction in
    /// the last `days` days (or none at all).
    pub fn quiet_accounts(
        &self,
        tenant: &str,
        days: u32,
        as_of: Timestamp,
    ) -> Result<pb::ListQuietAccountsResponse, ActivityError> {
        let days = calendar::check_days("days", days)?;
        let mut quiet = Vec::new();
        for (account_id, shared) in self.tenant_accounts(tenant) {
            let a = self.resident(tenant, &account_id, &shared)?;
            let Some(tier) = a.is_key_at(as_of) else {
                continue;
            };
            let last = a.last_contact(as_of);
            let since = last.map(|t| days_between(t, as_of));
            if since.is_some_and(|d| d <= days) {
                continue;
            }
            quiet.push(pb::QuietAccount {
                account_id,
                name: a.facts.name.clone(),
                tier: tier.to_wire(),
                last_contact: timestamp(last),
                days_since_last_contact: since,
            });
        }
        // Never contacted first, then the longest silence; ties by account id (already the
        // order of the walk, and the sort is stable).
        quiet.sort_by_key(|q| {
            std::cmp::Reverse(q.days_since_last_contact.map_or(u64::MAX, u64::from))
        });
        Ok(pb::ListQuietAccountsResponse { accounts: quiet })
    }

    /// Opportunities and revenue of one account, against the annual goal of the plan whose
    /// period contains `as_of`'s date.
    pub fn opportunity_summary(
        &self,
        tenant: &str,
        account: &str,
        as_of: Timestamp,
    ) -> Result<pb::GetOpportunitySummaryResponse, ActivityError> {
        let shared = self.registered(tenant, account)?;
        let a = self.resident(tenant, account, &shared)?;
        let mut open = Amounts::default();
        let mut open_count = 0;
        let mut by_stage: BTreeMap<OpportunityStage, (u32, Amounts)> = BTreeMap::new();
        let (mut won, mut won_count) = (Amounts::default(), 0);
        let (mut lost, mut lost_count) = (Amounts::default(), 0);
        for o in a.facts.opportunities.values() {
            match &o.outcome {
                None => {
                    open_count += 1;
                    open.add(&o.value);
                    let stage = by_stage.entry(o.stage).or_default();
                    stage.0 += 1;
                    stage.1.add(&o.value);
                }
                Some(Outcome::Won { value, .. }) => {
                    won_count += 1;
                    won.add(value);
                }
                Some(Outcome::Lost { .. }) => {
                    lost_count += 1;
                    lost.add(&o.value);
                }
            }
        }
        let revenue = a
            .facts
            .revenue
            .iter()
            .map(|((start, end, product), r)| {
                Ok(pb::RevenuePeriodFigures {
                    period_start: date_to_wire(*start),
                    period_end: date_to_wire(*end),
                    product: product.clone(),
                    figures: Some(against_goal(
                        &r.actual.currency,
                        i128::from(r.actual.minor_units),
                        i128::from(r.goal.minor_units),
                    )?),
                    margin_basis_points: r.margin_basis_points,
                    records: r.records,
                })
            })
            .collect::<Result<_, ActivityError>>()?;
        let (plan_goal, note) = plan_goal(&a, as_of, &open)?;
        Ok(pb::GetOpportunitySummaryResponse {
            account_id: account.to_owned(),
            open_count,
            open_value: open.to_wire()?,
            open_by_stage: OpportunityStage::ALL
                .iter()
                .map(|stage| {
                    let (count, value) = by_stage.remove(stage).unwrap_or_default();
                    Ok(pb::OpportunityStageTotal {
                        stage: stage.to_wire(),
                        count,
                        value: value.to_wire()?,
                    })
                })
                .collect::<Result<_, ActivityError>>()?,
            won_count,
            won_value: won.to_wire()?,
            lost_count,
            lost_value: lost.to_wire()?,
            revenue,
            plan_goal,
            note,
        })
    }

    /// The tenant's key and strategic accounts at `as_of`, ranked by the weighted score of
    /// their latest assessment (highest first, unassessed last, ties by account id).
    pub fn portfolio(
        &self,
        tenant: &str,
        as_of: Timestamp,
        compliance: Option<&dyn ComplianceSource>,
    ) -> Result<pb::GetPortfolioResponse, ActivityError> {
        let short = Window::last_days(as_of, PORTFOLIO_WINDOWS.0);
        let long = Window::last_days(as_of, PORTFOLIO_WINDOWS.1);
        let mut entries = Vec::new();
        for (account_id, shared) in self.tenant_accounts(tenant) {
            let a = self.resident(tenant, &account_id, &shared)?;
            let Some(tier) = a.is_key_at(as_of) else {
                continue;
            };
            let assessment = a.assessment_at(as_of);
            let mut pipeline = Amounts::default();
            let mut open_opportunities = 0;
            for o in a.facts.opportunities.values().filter(|o| o.open_at(as_of)) {
                open_opportunities += 1;
                pipeline.add(&o.value);
            }
            let share = match compliance {
                Some(c) => c
                    .share(tenant, &account_id, as_of)
                    .map_err(ActivityError::Unreadable)?,
                None => None,
            };
            entries.push(pb::PortfolioEntry {
                rank: 0,
                name: a.facts.name.clone(),
                tier: tier.to_wire(),
                weighted_score_milli: assessment.map(|(_, x)| x.score_milli),
                recommended_tier: assessment.map_or(0, |(_, x)| x.recommended.to_wire()),
                assessed_at: timestamp(assessment.map(|(t, _)| t)),
                interactions_30_days: count(a.interactions_between(short.start, short.end)),
                interactions_90_days: count(a.interactions_between(long.start, long.end)),
                last_contact: timestamp(a.last_contact(as_of)),
                open_opportunities,
                open_pipeline: pipeline.to_wire()?,
                compliance: share.map(|(on_track, active)| pb::PortfolioCompliance {
                    rules_on_track: on_track,
                    active_rules: active,
                    on_track_basis_points: basis_points(i128::from(on_track), i128::from(active))
                        .map(|bp| u32::try_from(bp).unwrap_or(u32::MAX)),
                }),
                account_id,
            });
        }
        // Highest score first, unassessed last; the walk is by account id and the sort is
        // stable, so ties stay in account-id order.
        entries.sort_by_key(|e| match e.weighted_score_milli {
            Some(score) => (0, std::cmp::Reverse(score)),
            None => (1, std::cmp::Reverse(0)),
        });
        for (rank, entry) in entries.iter_mut().enumerate() {
            entry.rank = u32::try_from(rank + 1).unwrap_or(u32::MAX);
        }
        Ok(pb::GetPortfolioResponse {
            accounts: entries,
            compliance_available: compliance.is_some(),
        })
    }
}

fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
}

/// Revenue against its goal; sums come in as `i128` and must fit the wire's `int64`.
fn against_goal(
    currency: &str,
    actual: i128,
    goal: i128,
) -> Result<pb::RevenueAgainstGoal, ActivityError> {
    Ok(pb::RevenueAgainstGoal {
        currency: currency.to_owned(),
        actual_minor_units: to_i64(currency, actual)?,
        goal_minor_units: to_i64(currency, goal)?,
        difference_minor_units: to_i64(currency, actual - goal)?,
        attainment_basis_points: basis_points(actual, goal),
    })
}

/// The plan in force at `as_of` (the last drafted whose period contains as_of's date), the
/// annual goal from the revenue records within its period, and a note when the goal is
/// missing or partial.
fn plan_goal(
    a: &AccountActivity,
    as_of: Timestamp,
    open: &Amounts,
) -> Result<(Option<pb::PlanGoal>, String), ActivityError> {
    let today = as_of.date();
    let Some(plan) = a.facts.plans.iter().rev().find(|p| p.contains(today)) else {
        let note = if a.facts.plans.is_empty() {
            "the account has no plan, so there is no annual goal; draft one with DraftPlan"
                .to_owned()
        } else {
            format!(
                "no plan's period contains {today}, so there is no annual goal; ask with an as_of \
                 within a plan's period"
            )
        };
        return Ok((None, note));
    };
    let within: Vec<_> = a
        .facts
        .revenue
        .iter()
        .filter(|((start, end, _), _)| *start >= plan.start && plan.end.is_none_or(|e| *end <= e))
        .collect();
    let (mut goal, mut actual) = (Amounts::default(), Amounts::default());
    for (_, r) in &within {
        goal.add(&r.goal);
        actual.add(&r.actual);
    }
    let mut won = Amounts::default();
    for o in a.facts.opportunities.values() {
        if let Some(Outcome::Won { value, closed_on }) = &o.outcome {
            if plan.contains(*closed_on) {
                won.add(value);
            }
        }
    }
    // Days of the plan covered by the recorded periods: the union of their date ranges.
    let mut ranges: Vec<(Date, Date)> = within.iter().map(|((s, e, _), _)| (*s, *e)).collect();
    ranges.sort_unstable();
    let mut covered: i64 = 0;
    let mut merged: Option<(Date, Date)> = None;
    for (start, end) in ranges {
        merged = match merged {
            Some((s, e)) if start <= e.succ_opt().unwrap_or(e) => Some((s, e.max(end))),
            Some((s, e)) => {
                covered += (e - s).num_days() + 1;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = merged {
        covered += (e - s).num_days() + 1;
    }
    let plan_days = plan.end.map_or(0, |end| (end - plan.start).num_days() + 1);
    let currencies: BTreeSet<&String> = goal
        .currencies()
        .chain(actual.currencies())
        .chain(won.currencies())
        .chain(open.currencies())
        .collect();
    let totals = currencies
        .into_iter()
        .map(|c| {
            Ok(pb::PlanGoalTotal {
                currency: c.clone(),
                annual_goal_minor_units: to_i64(c, goal.get(c))?,
                revenue: Some(against_goal(c, actual.get(c), goal.get(c))?),
                won_minor_units: to_i64(c, won.get(c))?,
                open_minor_units: to_i64(c, open.get(c))?,
            })
        })
        .collect::<Result<_, ActivityError>>()?;
    let period = match plan.end {
        Some(end) => format!("{} to {end}", plan.start),
        None => format!("from {}", plan.start),
    };
    let note = if within.is_empty() {
        format!(
            "no revenue goal is recorded for a period within plan {} ({period}); record revenue \
             with its goal (RecordRevenue) to set the annual goal",
            plan.id
        )
    } else if plan_days > 0 && covered < plan_days {
        format!(
            "revenue goals are recorded for {covered} of the {plan_days} days of plan {} \
             ({period}); the annual goal sums those periods only",
            plan.id
        )
    } else {
        String::new()
    };
    let as_u32 = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    Ok((
        Some(pb::PlanGoal {
            plan_id: plan.id.clone(),
            period_start: date_to_wire(plan.start),
            period_end: optional_date_to_wire(plan.end),
            goal_periods: as_u32(within.len() as i64),
            goal_days_covered: as_u32(covered),
            plan_days: as_u32(plan_days),
            totals,
        }),
        note,
    ))
}
