//! The account service: the current state of key accounts, for people and other services.
//!
//! Two sources answer it: on a node that holds the log (roles `all` and `ingest`) the
//! repository's cached account states, always up to the last committed event; on a
//! projections node the [`projection::AccountStateProjection`], which follows the log through
//! NATS (a request can ask to wait for a position: read-your-writes).

pub mod projection;
mod service;
pub mod status;

pub use service::{AccountApi, AccountSource};
