//! What people and things were called at each moment of an account, and the summary templates
//! that name them.
//!
//! A summary names people and things **as they were at the entry's business time**
//! (`occurred_at`), according to everything Keyplan knows now: a title change recorded late
//! (Finance Controller → CFO, occurred 06-01, logged on 06-15) makes a 06-10 interaction read
//! "(CFO)", and a 05-25 interaction logged after it still reads "(Finance Controller)".
//! Freezing the names when an entry is written cannot do that (a late fact changes entries
//! written before it), and rewriting stored entries on every rename would break the
//! append-only chunks. So:
//!
//! - an entry's summary is stored as a **template**: literal text with references
//!   (`REF_START`, a mode, a name key, `REF_END`) where a name goes;
//! - per account, a [`NameHistory`] keeps each subject's naming facts (a person assigned with
//!   a name and role, or unassigned; a stakeholder added, retitled, departed; a plan drafted;
//!   an objective, opportunity or action titled; a review scheduled) ordered by business time,
//!   then position;
//! - a template is resolved when it is read (a page, a watch), against the facts that
//!   happened before the entry: business time earlier, or equal with a smaller position. The
//!   entry's own facts never count, so "updated Lee Park (Finance Controller): title Finance
//!   Controller → CFO" names the stakeholder as before the change it records.
//!
//! A departure takes effect the day after `departed_on` (the domain lets a stakeholder take
//! part in interactions on their last day; compliance and activity count them present then).
//! A subject named at a moment before anything Keyplan knows of it (a stakeholder met on 05-25
//! and added on 05-27) is named as Keyplan first knew it, except the actor: an actor who was
//! not on the team yet reads as recorded ("dana registered ..."), as before.
//!
//! Text and ids never contain control characters (the domain refuses them), so the two
//! markers are unambiguous; a malformed reference is shown as the text it holds.

use std::collections::HashMap;
use std::fmt::Write as _;

use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use serde::{Deserialize, Serialize};

/// Starts a reference in a template.
pub(crate) const REF_START: char = '\u{1}';
/// Ends a reference in a template.
pub(crate) const REF_END: char = '\u{2}';

/// Microseconds in a day (timestamps are microseconds since the epoch).
const DAY_MICROS: i64 = 86_400_000_000;

/// The key of a named subject: a kind letter and its id, e.g. `"Scfo"`. One string, so that a
/// reference in a template is looked up without allocating.
pub(crate) type NameKey = Box<str>;

/// Kind letters of [`NameKey`]s.
mod kind {
    pub const PERSON: char = 'P';
    pub const STAKEHOLDER: char = 'S';
    pub const PLAN: char = 'L';
    pub const OBJECTIVE: char = 'O';
    pub const OPPORTUNITY: char = 'Y';
    pub const ACTION: char = 'C';
    pub const REVIEW: char = 'R';
}

/// How a reference is rendered.
mod mode {
    /// The subject's name: "Lee Park (CFO)", "Dana Kim (key account manager)", "\"Coatings\"".
    pub const NAME: char = 'n';
    /// The actor: a person's name, or the id as recorded if they were not known at that moment.
    pub const ACTOR: char = 'a';
    /// A stakeholder's title alone.
    pub const TITLE: char = 't';
    /// A review's kind and plan, without its due date.
    pub const REVIEW_KIND: char = 'w';
}

pub(crate) fn person_key(id: &PersonId) -> NameKey {
    key(kind::PERSON, id.as_str())
}
pub(crate) fn stakeholder_key(id: &StakeholderId) -> NameKey {
    key(kind::STAKEHOLDER, id.as_str())
}
pub(crate) fn plan_key(id: &PlanId) -> NameKey {
    key(kind::PLAN, id.as_str())
}
pub(crate) fn objective_key(id: &ObjectiveId) -> NameKey {
    key(kind::OBJECTIVE, id.as_str())
}
pub(crate) fn opportunity_key(id: &OpportunityId) -> NameKey {
    key(kind::OPPORTUNITY, id.as_str())
}
pub(crate) fn action_key(id: &ActionItemId) -> NameKey {
    key(kind::ACTION, id.as_str())
}
pub(crate) fn review_key(id: &ReviewId) -> NameKey {
    key(kind::REVIEW, id.as_str())
}

fn key(kind: char, id: &str) -> NameKey {
    let mut key = String::with_capacity(1 + id.len());
    key.push(kind);
    key.push_str(id);
    key.into_boxed_str()
}

/// Whether `key` is a well-formed name key (a kind letter and a non-empty id), for `load`.
pub(crate) fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(
        chars.next(),
        Some(
            kind::PERSON
                | kind::STAKEHOLDER
                | kind::PLAN
                | kind::OBJECTIVE
                | kind::OPPORTUNITY
                | kind::ACTION
                | kind::REVIEW
        )
    ) && chars.next().is_some()
        && !key.contains([REF_START, REF_END, '/'])
}

// ---------------------------------------------------------------- references

fn reference(mode: char, kind: char, id: &str) -> String {
    let mut text = String::with_capacity(id.len() + 4);
    text.push(REF_START);
    text.push(mode);
    text.push(kind);
    text.push_str(id);
    text.push(REF_END);
    text
}

/// A person, named as they were.
pub(crate) fn person(id: &PersonId) -> String {
    reference(mode::NAME, kind::PERSON, id.as_str())
}
/// The actor: as a person if the id is one (named as they were), else as recorded.
pub(crate) fn actor(actor: &str) -> String {
    match PersonId::parse(actor) {
        Ok(id) => reference(mode::ACTOR, kind::PERSON, id.as_str()),
        Err(_) => actor.to_owned(),
    }
}
/// A stakeholder, named as they were.
pub(crate) fn stakeholder(id: &StakeholderId) -> String {
    reference(mode::NAME, kind::STAKEHOLDER, id.as_str())
}
/// A stakeholder's title as it was.
pub(crate) fn stakeholder_title(id: &StakeholderId) -> String {
    reference(mode::TITLE, kind::STAKEHOLDER, id.as_str())
}
/// "plan-2025 (calendar year 2025)".
pub(crate) fn plan(id: &PlanId) -> String {
    reference(mode::NAME, kind::PLAN, id.as_str())
}
/// An objective's title, quoted.
pub(crate) fn objective(id: &ObjectiveId) -> String {
    reference(mode::NAME, kind::OBJECTIVE, id.as_str())
}
/// An opportunity's title, quoted.
pub(crate) fn opportunity(id: &OpportunityId) -> String {
    reference(mode::NAME, kind::OPPORTUNITY, id.as_str())
}
/// An action's title, quoted.
pub(crate) fn action(id: &ActionItemId) -> String {
    reference(mode::NAME, kind::ACTION, id.as_str())
}
/// "the quarterly business review of plan-2025 (calendar year 2025) due 2025-03-31".
pub(crate) fn review(id: &ReviewId) -> String {
    reference(mode::NAME, kind::REVIEW, id.as_str())
}
/// "quarterly business review of plan-2025 (calendar year 2025)".
pub(crate) fn review_kind(id: &ReviewId) -> String {
    reference(mode::REVIEW_KIND, kind::REVIEW, id.as_str())
}

// ---------------------------------------------------------------- facts

/// One change to how a subject is named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Change {
    /// A person joined the team (or came back) with this name and role.
    Assigned { name: String, role: TeamRole },
    /// A person left the team.
    Unassigned,
    /// A stakeholder was added with this name and title.
    Added { name: String, title: String },
    /// A stakeholder's new title.
    Retitled(String),
    /// A stakeholder left (the fact's time is the day after `departed_on`).
    Departed,
    /// A plan was drafted for this period (its label, e.g. "calendar year 2025").
    Drafted(String),
    /// An objective, opportunity or action was titled so (the quoted title).
    Titled(String),
    /// A review was scheduled.
    Scheduled {
        kind: ReviewKind,
        plan_id: Option<PlanId>,
        due_on: Date,
    },
}

/// A naming fact at a business time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fact {
    /// When it takes effect (business time).
    pub occurred_at: i64,
    /// The event's position: orders facts of the same instant, and tells an entry's own facts.
    pub position: u64,
    pub change: Change,
}

impl Fact {
    fn key(&self) -> (i64, u64) {
        (self.occurred_at, self.position)
    }
}

/// A naming fact for a subject, as [`crate::directory::Directory::describe`] finds it.
pub(crate) type NewFact = (NameKey, Fact);

/// The moment a departure on `departed_on` takes effect: the start of the next day (UTC).
pub(crate) fn departure_time(departed_on: Date) -> i64 {
    let midnight = departed_on
        .and_hms_opt(0, 0, 0)
        .map_or(i64::MAX - DAY_MICROS, |t| t.and_utc().timestamp_micros());
    midnight.saturating_add(DAY_MICROS)
}

/// Every subject's naming facts in one account, by business time then position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NameHistory {
    facts: HashMap<NameKey, Vec<Fact>>,
}

/// What a subject was called at a moment (the facts folded).
#[derive(Default)]
struct Folded<'a> {
    /// The name (person, stakeholder) or label (plan period, quoted title); `None` before any
    /// fact that names the subject.
    name: Option<&'a str>,
    /// A stakeholder's title.
    title: Option<&'a str>,
    role: Option<TeamRole>,
    /// Unassigned (person) or departed (stakeholder).
    gone: bool,
    review: Option<(ReviewKind, &'a Option<PlanId>, Date)>,
}

impl<'a> Folded<'a> {
    fn apply(&mut self, change: &'a Change) {
        match change {
            Change::Assigned { name, role } => {
                self.name = Some(name);
                self.role = Some(*role);
                self.gone = false;
            }
            Change::Added { name, title } => {
                self.name = Some(name);
                self.title = Some(title);
                self.gone = false;
            }
            Change::Retitled(title) => self.title = Some(title),
            Change::Unassigned | Change::Departed => self.gone = true,
            Change::Drafted(label) | Change::Titled(label) => self.name = Some(label),
            Change::Scheduled {
                kind,
                plan_id,
                due_on,
            } => {
                self.name = Some("");
                self.review = Some((*kind, plan_id, *due_on));
            }
        }
    }
}

impl NameHistory {
    /// Records a fact in its business-time place (a late one goes before later ones).
    pub fn record(&mut self, key: NameKey, fact: Fact) {
        let facts = self.facts.entry(key).or_default();
        let at = facts.partition_point(|f| f.key() <= fact.key());
        facts.insert(at, fact);
    }

    /// A subject's facts, for persisting them.
    pub fn facts(&self, key: &str) -> Option<&[Fact]> {
        self.facts.get(key).map(Vec::as_slice)
    }

    /// Puts back a persisted subject's facts; `false` if they are not in order.
    pub fn restore(&mut self, key: NameKey, facts: Vec<Fact>) -> bool {
        if !facts.windows(2).all(|w| w[0].key() < w[1].key()) {
            return false;
        }
        self.facts.insert(key, facts);
        true
    }

    /// What `key` was called just before the entry at `(occurred_at, position)`; with
    /// `first_known`, a subject not known yet then is named as Keyplan first knew it.
    fn folded(&self, key: &str, at: (i64, u64), first_known: bool) -> Option<Folded<'_>> {
        let facts = self.facts.get(key)?;
        let before = facts.partition_point(|f| f.key() < at);
        let mut folded = Folded::default();
        for fact in facts[..before].iter().filter(|f| f.position != at.1) {
            folded.apply(&fact.change);
        }
        if folded.name.is_none() && first_known {
            for fact in &facts[before..] {
                folded.apply(&fact.change);
                if folded.name.is_some() {
                    break;
                }
            }
        }
        folded.name.is_some().then_some(folded)
    }

    /// A template with every reference replaced by the name as it was just before the entry
    /// at `(occurred_at, position)`.
    pub fn resolve(&self, template: &str, at: (i64, u64)) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(start) = rest.find(REF_START) {
            out.push_str(&rest[..start]);
            let tail = &rest[start + REF_START.len_utf8()..];
            let Some(end) = tail.find(REF_END) else {
                out.push_str(tail); // malformed: show what it holds
                return out;
            };
            self.render(&tail[..end], at, &mut out);
            rest = &tail[end + REF_END.len_utf8()..];
        }
        out.push_str(rest);
        out
    }

    /// Renders one reference (`mode`, then the name key).
    fn render(&self, reference: &str, at: (i64, u64), out: &mut String) {
        let mut chars = reference.chars();
        let (Some(mode), Some(kind)) = (chars.next(), chars.next()) else {
            out.push_str(reference);
            return;
        };
        let key = &reference[mode.len_utf8()..];
        let id = chars.as_str();
        let folded = self.folded(key, at, mode != mode::ACTOR);
        match (mode, kind, folded) {
            (mode::NAME | mode::ACTOR, kind::PERSON, Some(f)) => {
                out.push_str(f.name.unwrap_or(id));
                if let Some(role) = f.role {
                    out.push_str(if f.gone { " (former " } else { " (" });
                    out.push_str(role.as_str());
                    out.push(')');
                }
            }
            (mode::NAME, kind::STAKEHOLDER, Some(f)) => {
                out.push_str(f.name.unwrap_or(id));
                out.push_str(" (");
                out.push_str(f.title.unwrap_or_default());
                out.push_str(if f.gone { ", departed)" } else { ")" });
            }
            (mode::TITLE, kind::STAKEHOLDER, Some(f)) => out.push_str(f.title.unwrap_or(id)),
            (mode::NAME, kind::PLAN, Some(f)) => {
                out.push_str(id);
                out.push_str(" (");
                out.push_str(f.name.unwrap_or_default());
                out.push(')');
            }
            (mode::NAME, kind::OBJECTIVE | kind::OPPORTUNITY | kind::ACTION, Some(f)) => {
                out.push_str(f.name.unwrap_or(id));
            }
            (mode::NAME, kind::REVIEW, Some(f)) => match f.review {
                Some((review_kind, plan, due_on)) => {
                    out.push_str("the ");
                    self.review_kind_of(review_kind, plan, at, out);
                    let _ = write!(out, " due {due_on}");
                }
                None => {
                    let _ = write!(out, "review {id}");
                }
            },
            (mode::REVIEW_KIND, kind::REVIEW, Some(f)) => match f.review {
                Some((review_kind, plan, _)) => self.review_kind_of(review_kind, plan, at, out),
                None => {
                    let _ = write!(out, "review {id}");
                }
            },
            (mode::NAME | mode::REVIEW_KIND, kind::REVIEW, None) => {
                let _ = write!(out, "review {id}");
            }
            // Not known (yet): the bare id, as recorded.
            _ => out.push_str(id),
        }
    }

    /// "quarterly business review of plan-2025 (calendar year 2025)".
    fn review_kind_of(
        &self,
        kind: ReviewKind,
        plan: &Option<PlanId>,
        at: (i64, u64),
        out: &mut String,
    ) {
        let _ = write!(out, "{kind}");
        if let Some(plan) = plan {
            out.push_str(" of ");
            self.render(&plan_reference_body(plan), at, out);
        }
    }
}

/// The inside of a plan's name reference (mode and key), to render it in place.
fn plan_reference_body(plan: &PlanId) -> String {
    let mut body = String::with_capacity(plan.as_str().len() + 2);
    body.push(mode::NAME);
    body.push(kind::PLAN);
    body.push_str(plan.as_str());
    body
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fact(day: i64, position: u64, change: Change) -> Fact {
        Fact {
            occurred_at: day * DAY_MICROS,
            position,
            change,
        }
    }

    #[test]
    fn a_reference_names_the_subject_as_it_was_before_the_entry() {
        let lee = StakeholderId::parse("lee").unwrap();
        let mut names = NameHistory::default();
        let added = Change::Added {
            name: "Lee Park".into(),
            title: "Finance Controller".into(),
        };
        names.record(stakeholder_key(&lee), fact(10, 2, added));
        // Recorded later (position 9), effective on day 20.
        names.record(
            stakeholder_key(&lee),
            fact(20, 9, Change::Retitled("CFO".into())),
        );
        let template = format!("met {} ({})", stakeholder(&lee), stakeholder_title(&lee));
        let at = |day: i64, position: u64| (day * DAY_MICROS, position);
        assert_eq!(
            names.resolve(&template, at(15, 5)),
            "met Lee Park (Finance Controller) (Finance Controller)"
        );
        assert_eq!(
            names.resolve(&template, at(25, 5)),
            "met Lee Park (CFO) (CFO)"
        );
        // The entry of the change itself names them as before it.
        assert_eq!(
            names.resolve(&template, at(20, 9)),
            "met Lee Park (Finance Controller) (Finance Controller)"
        );
        // Before they were added: as first known.
        assert_eq!(
            names.resolve(&template, at(5, 1)),
            "met Lee Park (Finance Controller) (Finance Controller)"
        );
        // Never known, and malformed references.
        let ghost = StakeholderId::parse("ghost").unwrap();
        assert_eq!(names.resolve(&stakeholder(&ghost), at(25, 5)), "ghost");
        assert_eq!(names.resolve("a \u{1}nSlee", at(25, 5)), "a nSlee");

        // A departure counts from the day after; a person who left reads "former"; an actor
        // not on the team yet reads as recorded, a subject as first known.
        names.record(
            stakeholder_key(&lee),
            Fact {
                occurred_at: departure_time(chrono::NaiveDate::from_ymd_opt(1970, 1, 31).unwrap()),
                position: 12,
                change: Change::Departed,
            },
        );
        assert_eq!(
            names.resolve(&stakeholder(&lee), at(30, 13)),
            "Lee Park (CFO)"
        );
        assert_eq!(
            names.resolve(&stakeholder(&lee), at(31, 13)),
            "Lee Park (CFO, departed)"
        );
        let sam = PersonId::parse("sam").unwrap();
        let assigned = Change::Assigned {
            name: "Sam Ortiz".into(),
            role: TeamRole::Sales,
        };
        names.record(person_key(&sam), fact(10, 3, assigned));
        names.record(person_key(&sam), fact(20, 4, Change::Unassigned));
        let both = format!("{} / {}", actor("sam"), person(&sam));
        assert_eq!(names.resolve(&both, at(5, 1)), "sam / Sam Ortiz (sales)");
        assert_eq!(
            names.resolve(&both, at(15, 1)),
            "Sam Ortiz (sales) / Sam Ortiz (sales)"
        );
        assert_eq!(
            names.resolve(&both, at(25, 1)),
            "Sam Ortiz (former sales) / Sam Ortiz (former sales)"
        );
        assert_eq!(names.resolve(&actor("not an id!"), at(25, 1)), "not an id!");
    }
}
