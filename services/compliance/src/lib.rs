//! The engagement-plan compliance service: is each engagement rule of a key account kept, are
//! account plans reviewed as often as they say, and how did that stand at any past instant.
//!
//! - [`projection::ComplianceProjection`] follows the event log (checkpointed and rebuildable
//!   like every projection) and keeps, per account, the histories compliance depends on: team
//!   membership, stakeholders' buying roles, rule definitions and retirements, every version
//!   of every interaction, plans and review outcomes, each with its business time and its
//!   recorded time.
//! - The `history` module computes the answers from those histories at query time, for any
//!   instant on either time axis ([`model::Axis`]): statuses depend on the instant asked about,
//!   so they cannot be stored.
//! - [`ComplianceApi`] serves `keyplan.v1.ComplianceService`; [`status`] maps its errors.
//!
//! The rules themselves are documented on the proto (`proto/keyplan/v1/compliance.proto`) and in
//! the README's compliance section.

pub mod alerts;
pub mod error;
mod facts;
mod history;
pub mod model;
pub mod projection;
mod service;
pub mod status;
mod wire;

pub use error::QueryError;
pub use model::{AsOf, Axis, GroupBy};
pub use projection::ComplianceProjection;
pub use service::ComplianceApi;

#[cfg(test)]
mod tests;
