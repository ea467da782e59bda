//! Tests on the Globex fixture (`keyplan-testkit`) and accounts derived from it. Expected
//! numbers are computed by hand from the fixture's table; the arithmetic is next to each
//! assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;
mod load;
mod property;
mod rebuild;

use keyplan_domain::commands::{AssessTier, ChangeTier};
use keyplan_domain::events::TierCriterion;
use keyplan_domain::ids::PersonId;
use keyplan_domain::values::{Tier, Timestamp};
use keyplan_domain::AccountCommand as C;
use keyplan_projection::{ProjectedEvent, Projection};
use keyplan_testkit::globex::{self, TENANT};
use keyplan_testkit::{at, decide_steps, Step};

use crate::ActivityProjection;

/// A step recorded when it happened.
pub(crate) fn step(t: Timestamp, actor: &str, command: C) -> Step {
    Step {
        recorded_at: t,
        occurred_at: t,
        actor: actor.into(),
        command,
    }
}

/// Globex's steps recorded at or before `until`, plus `extra`, in recorded order.
pub(crate) fn steps_until(until: Timestamp, extra: Vec<Step>) -> Vec<Step> {
    let mut steps: Vec<Step> = globex::steps()
        .into_iter()
        .filter(|s| s.recorded_at <= until)
        .chain(extra)
        .collect();
    steps.sort_by_key(|s| s.recorded_at);
    steps
}

/// The events of `steps` for `account` (positions from 1; see [`renumber`]).
pub(crate) fn decide(account: &str, steps: &[Step]) -> Vec<ProjectedEvent> {
    decide_steps(TENANT, account, steps, 1)
}

/// Concatenates account histories into one log with positions 1..=N.
pub(crate) fn renumber(histories: Vec<Vec<ProjectedEvent>>) -> Vec<ProjectedEvent> {
    let mut all: Vec<ProjectedEvent> = histories.into_iter().flatten().collect();
    for (i, e) in all.iter_mut().enumerate() {
        e.position = i as u64 + 1;
    }
    all
}

fn assess(score: u8) -> C {
    C::AssessTier(AssessTier {
        criteria: vec![TierCriterion {
            name: "revenue".into(),
            weight: 1,
            score,
        }],
        recommended_tier: Tier::Strategic,
        assessed_by: PersonId::parse("eve").unwrap(),
    })
}

/// The tenant's portfolio, four accounts:
/// - `globex`: the whole fixture (key; assessed 7833 on 2025-01-02).
/// - `initech`: Globex's history up to 2025-06-30 (last interaction i23 on 2025-06-25), plus
///   a second assessment on 2025-06-01 09:00 scoring 9 on one criterion: 9000.
/// - `umbrella`: Globex's setup of 2025-01-02 09:00 without its assessment: key, no
///   interaction, never assessed.
/// - `hooli`: Globex's history up to 2025-03-31 (last interaction i14 on 2025-03-28),
///   demoted to standard on 2025-04-15 09:00.
pub(crate) fn portfolio_histories() -> Vec<Vec<ProjectedEvent>> {
    let setup = at(2025, 1, 2, 9);
    let initech = steps_until(
        at(2025, 6, 30, 23),
        vec![step(at(2025, 6, 1, 9), "eve", assess(9))],
    );
    let umbrella: Vec<Step> = globex::steps()
        .into_iter()
        .filter(|s| s.recorded_at <= setup && !matches!(s.command, C::AssessTier(_)))
        .collect();
    let hooli = steps_until(
        at(2025, 3, 31, 23),
        vec![step(
            at(2025, 4, 15, 9),
            "dana",
            C::DemoteAccount(ChangeTier {
                to: Tier::Standard,
                reason: "volume moved to a distributor".into(),
            }),
        )],
    );
    vec![
        globex::events(),
        decide("initech", &initech),
        decide("umbrella", &umbrella),
        decide("hooli", &hooli),
    ]
}

/// A projection fed with `events`.
pub(crate) fn project(events: &[ProjectedEvent]) -> ActivityProjection {
    let projection = ActivityProjection::default();
    for e in events {
        projection.apply(e);
    }
    projection
}
