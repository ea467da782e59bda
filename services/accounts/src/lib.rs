//! The account service: the current state of key accounts, for people and other services.
//!
//! Answers from the repository's cached account states (folded from each account's
//! stream), so what it returns is always up to the last committed event.

mod service;
pub mod status;

pub use service::AccountApi;
