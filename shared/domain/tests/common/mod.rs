//! Helpers shared by the integration tests: short constructors for ids, dates and times.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate};
use keyplan_domain::ids::*;
use keyplan_domain::values::*;

pub fn person(id: &str) -> PersonId {
    PersonId::parse(id).expect("valid person id")
}
pub fn sh(id: &str) -> StakeholderId {
    StakeholderId::parse(id).expect("valid stakeholder id")
}
pub fn plan(id: &str) -> PlanId {
    PlanId::parse(id).expect("valid plan id")
}
pub fn obj(id: &str) -> ObjectiveId {
    ObjectiveId::parse(id).expect("valid objective id")
}
pub fn opp(id: &str) -> OpportunityId {
    OpportunityId::parse(id).expect("valid opportunity id")
}
pub fn act(id: &str) -> ActionItemId {
    ActionItemId::parse(id).expect("valid action item id")
}
pub fn rule(id: &str) -> RuleId {
    RuleId::parse(id).expect("valid rule id")
}
pub fn int(id: &str) -> InteractionId {
    InteractionId::parse(id).expect("valid interaction id")
}
pub fn rev(id: &str) -> ReviewId {
    ReviewId::parse(id).expect("valid review id")
}

/// A date written `YYYY-MM-DD`.
pub fn date(text: &str) -> Date {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("valid test date")
}

/// An instant written in RFC 3339.
pub fn at(text: &str) -> Timestamp {
    let t = DateTime::parse_from_rfc3339(text).expect("valid test timestamp");
    Timestamp(t.timestamp_micros())
}

pub fn eur(euros: i64) -> Money {
    Money {
        currency: "EUR".into(),
        minor_units: euros * 100,
    }
}
