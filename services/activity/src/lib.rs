//! The historical activity service (`keyplan.v1.ActivityService`): activity counts per
//! period and dimension with the sentiment trend, decision-making-unit coverage, quiet
//! accounts, opportunity and revenue summary against the plan's goal, and the portfolio.
//!
//! Everything is answered from the [`ActivityProjection`], a read model fed by the event
//! feed like every projection (checkpointed with its state, rebuildable from the log). It
//! keeps per account the facts the queries need and indexes derived from them (counts per
//! day, interactions by business time, each stakeholder's contacts), so that a query reads
//! one account's few hundred index entries, never the log and never the other accounts.
//!
//! The definitions (business time, corrections, calendar periods, windows, money per
//! currency) are documented once, in `proto/keyplan/v1/activity.proto`.

pub mod calendar;
pub mod error;
mod model;
pub mod projection;
mod queries;
mod service;
pub mod status;
pub mod wire;

pub use error::ActivityError;
pub use projection::ActivityProjection;
pub use queries::Dimension;
pub use service::{ActivityApi, ComplianceSource};

#[cfg(test)]
mod tests;
