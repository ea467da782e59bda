//! Unit tests: the Globex fixture with hand-computed numbers, small hand-made histories for
//! what the fixture does not exercise, and persistence (rebuilt equals incremental).
#![allow(clippy::unwrap_used)]

mod alerts;
mod explain;
mod fixture;
mod handmade;
mod persistence;
mod property;

use keyplan_domain::values::Timestamp;
use keyplan_domain::AccountEvent;
use keyplan_projection::{ProjectedEvent, Projection};
use keyplan_testkit::globex;

use crate::model::*;
use crate::projection::ComplianceProjection;

/// A projection fed with `events`.
fn project(events: &[ProjectedEvent]) -> ComplianceProjection {
    let p = ComplianceProjection::default();
    for e in events {
        p.apply(e);
    }
    p
}

/// The Globex year.
fn globex_projection() -> ComplianceProjection {
    project(&globex::events())
}

/// The Globex year again under another account id (positions after Globex's), for rollups.
fn globex_twin(account: &str) -> Vec<ProjectedEvent> {
    let first = globex::events().len() as u64 + 1;
    keyplan_testkit::decide_steps(globex::TENANT, account, &globex::steps(), first)
}

/// One rule's numbers in a compact, comparable form:
/// (rule, status, last interaction, due date, days overdue, days until due).
type Line = (
    &'static str,
    RuleStatus,
    Option<&'static str>,
    chrono::NaiveDate,
    u32,
    u32,
);

fn lines(
    report: &AccountCompliance,
) -> Vec<(
    String,
    RuleStatus,
    Option<String>,
    chrono::NaiveDate,
    u32,
    u32,
)> {
    report
        .rules
        .iter()
        .map(|r| {
            (
                r.definition.rule_id.to_string(),
                r.status,
                r.last_interaction
                    .as_ref()
                    .map(|i| i.interaction_id.clone()),
                r.due_on,
                r.days_overdue,
                r.days_until_due,
            )
        })
        .collect()
}

fn expect(
    lines_expected: &[Line],
) -> Vec<(
    String,
    RuleStatus,
    Option<String>,
    chrono::NaiveDate,
    u32,
    u32,
)> {
    lines_expected
        .iter()
        .map(|(id, s, last, due, over, until)| {
            (
                (*id).to_owned(),
                *s,
                last.map(str::to_owned),
                *due,
                *over,
                *until,
            )
        })
        .collect()
}

/// (rule, days overdue) of an overdue list.
fn overdue_list(list: &[OverdueRule]) -> Vec<(String, String, u32)> {
    list.iter()
        .map(|o| (o.account.clone(), o.rule_id.clone(), o.days_overdue))
        .collect()
}

/// A small hand-made history for one account, positions from 1.
#[derive(Default)]
struct Log {
    events: Vec<ProjectedEvent>,
}

impl Log {
    /// Appends an event recorded at `recorded` that happened at `occurred`.
    fn push(
        &mut self,
        recorded: Timestamp,
        occurred: Timestamp,
        event: impl Into<AccountEvent>,
    ) -> &mut Self {
        let position = self.events.len() as u64 + 1;
        self.events.push(ProjectedEvent {
            position,
            event_id: uuid_for(position),
            tenant: "t".into(),
            account: "a".into(),
            stream_version: position,
            recorded_at: recorded,
            occurred_at: occurred,
            actor: "test".into(),
            event: event.into(),
        });
        self
    }

    /// Appends an event recorded when it happened.
    fn now(&mut self, t: Timestamp, event: impl Into<AccountEvent>) -> &mut Self {
        self.push(t, t, event)
    }
}

fn uuid_for(position: u64) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(1, position)
}
