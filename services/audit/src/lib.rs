//! The audit service: the full, unaltered history of every key account, for auditors.
//!
//! - **As of** ([`AuditApi`]'s `GetAccountAsOf`): the account after a given version, as
//!   Keyplan knew it at an instant (recorded time), or as things had happened by an instant
//!   (business time, including facts recorded late).
//! - **Diff**: what changed between two versions or between the recorded outcomes of two
//!   reviews: the events in between and the net, field-by-field changes, each credited to the
//!   event (actor and times) that last changed it.
//! - **Verify**: the stream's hash chain, recomputed by the store.
//! - **Export**: the stream as JSON Lines with every piece of metadata and the hash chain.
//!
//! Answers are always replays of the stream itself, never of a cache or a read model: what an
//! auditor is shown is exactly what the hash chain protects.

mod asof;
mod diff;
mod export;
mod history;
mod service;
pub mod status;
mod text;

pub use service::AuditApi;
