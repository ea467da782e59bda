//! Random account histories for the read models' property tests, which compare each model's
//! answers with a brute-force replay of the same events.
//!
//! A history is a sequence of [`Op`]s: raw random choices that each model's test turns into a
//! command plausible for the account's state (so that most are accepted), and that
//! [`build`] then decides with the real domain, as the server would, dropping what the domain
//! refuses: every history is one the server could have stored. Times move forward in recorded
//! time by random gaps; business time lags behind by hours or days (late logging, back-dated
//! facts). What commands an op becomes is each model's choice; the mechanics live here once.

use chrono::{Datelike, Duration};
use keyplan_domain::decide::{decide, expected_period_end};
use keyplan_domain::events::{InteractionCorrected, InteractionLogged, PlanPeriod};
use keyplan_domain::values::{PlanPeriodKind, Timestamp};
use keyplan_domain::{AccountCommand, AccountEvent, AccountState};
use keyplan_projection::ProjectedEvent;
use proptest::prelude::*;

use crate::at;

/// An hour, in microseconds.
pub const HOUR: i64 = 3_600_000_000;
/// A day, in microseconds.
pub const DAY: i64 = 24 * HOUR;

/// When every random history starts (recorded time of its first command).
pub fn start() -> Timestamp {
    at(2025, 1, 1, 9)
}

/// One random command: its account (an index in the test's accounts), the hours since the
/// previous command was recorded, how many hours its business time lies before its recorded
/// time, its kind (0..100, weighted by each test) and raw parameters, read modulo the test's
/// pools.
#[derive(Clone, Debug)]
pub struct Op {
    /// Index of the account: 0 four times in five, else 1.
    pub account: usize,
    /// Hours since the previous command was recorded.
    pub gap_hours: i64,
    /// Hours between business time and recorded time.
    pub lag_hours: i64,
    /// What to do, 0..100.
    pub kind: u8,
    /// Parameters.
    pub x: [u8; 5],
}

/// Random [`Op`]s over two accounts.
pub fn op() -> impl Strategy<Value = Op> {
    (
        prop_oneof![4 => Just(0usize), 1 => Just(1usize)],
        prop_oneof![1 => Just(0i64), 4 => 1..120i64],
        // Mostly on time, some late by hours, some by days (late logging, back-dated facts).
        prop_oneof![3 => Just(0i64), 1 => 1..48i64, 2 => 48..600i64],
        0..100u8,
        any::<[u8; 5]>(),
    )
        .prop_map(|(account, gap_hours, lag_hours, kind, x)| Op {
            account,
            gap_hours,
            lag_hours,
            kind,
            x,
        })
}

/// The element of `pool` that `x` picks.
pub fn pick<T: Copy>(pool: &[T], x: u8) -> T {
    pool[usize::from(x) % pool.len()]
}

/// A plan period near [`start`] for a random plan: its kind picked by `kind`, a calendar year
/// from the first of the month, any other kind from up to 59 days after [`start`] (`offset`);
/// `None` if the domain cannot compute its end (a command the generator then drops).
pub fn plan_period(kind: u8, offset: u8) -> Option<PlanPeriod> {
    let kind = pick(
        &[
            PlanPeriodKind::CalendarYear,
            PlanPeriodKind::HalfYear,
            PlanPeriodKind::Rolling12Months,
            PlanPeriodKind::Perpetual,
        ],
        kind,
    );
    let begin = match kind {
        PlanPeriodKind::CalendarYear => start().date().with_day(1)?,
        _ => start().date() + Duration::days(i64::from(offset % 60)),
    };
    Some(PlanPeriod {
        kind,
        start: begin,
        end: expected_period_end(kind, begin).ok()?,
    })
}

/// A non-empty subset of (the first 7 of) `pool`, chosen by the bits of `bits`.
pub fn subset<T: Clone>(pool: &[T], bits: u8) -> Vec<T> {
    let n = pool.len().min(7) as u32;
    let mask = u32::from(bits) % ((1 << n) - 1) + 1;
    (0..n)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| pool[i as usize].clone())
        .collect()
}

/// The `x`-th of `items` (`None` if there is none).
pub fn choose<T>(items: impl IntoIterator<Item = T>, x: u8) -> Option<T> {
    let items: Vec<T> = items.into_iter().collect();
    let i = usize::from(x) % items.len().max(1);
    items.into_iter().nth(i)
}

/// Decides the command `propose` makes of each op (with the op's recorded and business
/// times, for the account's state so far; `None`: nothing plausible) and returns the accepted
/// events in log order, positions from 1. `accounts` names the accounts ops index.
pub fn build<'a>(
    tenant: &str,
    accounts: &[&str],
    ops: impl IntoIterator<Item = &'a Op>,
    mut propose: impl FnMut(
        &Op,
        &AccountState,
        Timestamp,
        Timestamp,
    ) -> Option<(AccountCommand, Timestamp)>,
) -> Vec<ProjectedEvent> {
    let mut states = vec![AccountState::default(); accounts.len()];
    let mut events = Vec::new();
    let mut recorded = start();
    for op in ops {
        recorded = Timestamp(recorded.0 + op.gap_hours * HOUR);
        let occurred = Timestamp(recorded.0 - op.lag_hours * HOUR);
        let state = &mut states[op.account];
        let Some((command, occurred)) = propose(op, state, recorded, occurred) else {
            continue;
        };
        let Ok(decided) = decide(state, &command, recorded) else {
            continue;
        };
        for event in decided {
            state.apply(&event);
            let position = events.len() as u64 + 1;
            events.push(ProjectedEvent {
                position,
                event_id: uuid::Uuid::from_u64_pair(0x7072_6f70_6572_7479, position),
                tenant: tenant.into(),
                account: accounts[op.account].into(),
                stream_version: state.version,
                recorded_at: recorded,
                occurred_at: occurred,
                actor: "test".into(),
                event,
            });
        }
    }
    events
}

/// Instants to ask at: one day before the history, `horizon_days` after its last clock, and
/// one per pick, near a clock of the history (recorded, business, or an interaction's
/// `occurred_at`), shifted by the pick's hours: before, on, between and after the events.
pub fn instants(
    events: &[ProjectedEvent],
    picks: &[(u16, i16)],
    horizon_days: i64,
) -> Vec<Timestamp> {
    let mut clocks: Vec<Timestamp> = events
        .iter()
        .flat_map(|e| {
            let mut v = vec![e.recorded_at, e.occurred_at];
            if let AccountEvent::InteractionLogged(InteractionLogged { details, .. })
            | AccountEvent::InteractionCorrected(InteractionCorrected { details, .. }) = &e.event
            {
                v.push(details.occurred_at);
            }
            v
        })
        .collect();
    clocks.sort();
    clocks.dedup();
    let last = clocks.last().copied().unwrap_or(start());
    let mut out = vec![
        Timestamp(start().0 - DAY),
        Timestamp(last.0 + horizon_days * DAY),
    ];
    if clocks.is_empty() {
        return out;
    }
    for &(i, shift) in picks {
        let base = clocks[usize::from(i) % clocks.len()];
        out.push(Timestamp(base.0 + i64::from(shift) * HOUR));
    }
    out
}

/// The history, one line per event, for failure messages.
pub fn dump(events: &[ProjectedEvent]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "\n#{} {} rec {} occ {} {:?}",
                e.position, e.account, e.recorded_at, e.occurred_at, e.event
            )
        })
        .collect()
}

/// Cases per property: `PROPTEST_CASES` if set (long runs), else `default` (CI).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
