//! Test fixtures shared by the read-model crates: realistic, deterministic account histories
//! whose numbers can be recomputed by hand.
//!
//! [`globex`] is the canonical one: a year (2025) in the life of one key account.

pub mod files;
pub mod globex;
pub mod ports;
pub mod random_history;

use chrono::{NaiveDate, TimeZone, Utc};
use keyplan_domain::decide::decide;
use keyplan_domain::values::Timestamp;
use keyplan_domain::{AccountCommand, AccountState};
use keyplan_projection::{ProjectedEvent, Projection};

/// The UTC instant `y-m-d h:00:00`. Panics on an impossible date (fixtures are constants).
pub fn at(y: i32, m: u32, d: u32, h: u32) -> Timestamp {
    let t = Utc
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("a valid fixture instant");
    Timestamp(t.timestamp_micros())
}

/// The calendar date `y-m-d`. Panics on an impossible date (fixtures are constants).
pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid fixture date")
}

/// One command of a scripted history, with both times and its author.
#[derive(Debug, Clone)]
pub struct Step {
    /// When Keyplan recorded it (used as the domain's "now" when deciding it).
    pub recorded_at: Timestamp,
    /// When it happened (business time).
    pub occurred_at: Timestamp,
    /// Who issued it.
    pub actor: String,
    /// The command.
    pub command: AccountCommand,
}

/// Decides `steps` in order for one account, as the server would, and returns the events with
/// positions `first_position..` (panics if the domain refuses a step: a fixture bug).
pub fn decide_steps(
    tenant: &str,
    account: &str,
    steps: &[Step],
    first_position: u64,
) -> Vec<ProjectedEvent> {
    let mut state = AccountState::default();
    let mut out = Vec::new();
    let mut position = first_position;
    for (i, step) in steps.iter().enumerate() {
        let events = decide(&state, &step.command, step.recorded_at).unwrap_or_else(|e| {
            panic!(
                "fixture step {} ({}) refused: {e}",
                i + 1,
                step.command.name()
            )
        });
        for event in events {
            state.apply(&event);
            out.push(ProjectedEvent {
                position,
                event_id: uuid::Uuid::from_u64_pair(0x6b65_7970_6c61_6e00, position),
                tenant: tenant.to_owned(),
                account: account.to_owned(),
                stream_version: state.version,
                recorded_at: step.recorded_at,
                occurred_at: step.occurred_at,
                actor: step.actor.clone(),
                event,
            });
            position += 1;
        }
    }
    out
}

/// A commit, as the runner makes one: flushes `projection` into `tree` in one batch, applies
/// it, and tells the projection. Panics on a storage error.
pub fn commit<P: Projection>(projection: &P, tree: &keyplan_projection::Tree) {
    let mut batch = keyplan_projection::Batch::default();
    projection.flush(&mut batch).expect("the flush encodes");
    tree.apply_batch(batch).expect("the store writes the flush");
    projection.committed();
}

/// A restart, as the runner does one: commits `projection` into `tree` ([`commit`]), then
/// loads a fresh instance from the tree and returns it. Panics on a storage error.
pub fn flush_and_reload<P: Projection>(projection: &P, tree: &keyplan_projection::Tree) -> P {
    commit(projection, tree);
    let reloaded = P::default();
    reloaded.load(tree).expect("the flushed tree loads");
    reloaded
}
