//! The key account management domain of Keyplan: identifiers, value objects, events,
//! commands, the account state folded from events, and the rules that decide which
//! events a command produces.
//!
//! This crate does no I/O: it knows neither sled, NATS nor gRPC. Everything here is a pure
//! function of its inputs (the current time is passed in), which is what makes the
//! given/when/then tests in `decide` possible.

pub mod codec;
pub mod commands;
pub mod decide;
pub mod error;
pub mod events;
pub mod ids;
pub mod state;
pub mod text;
pub mod values;

pub use commands::AccountCommand;
pub use error::DomainError;
pub use events::AccountEvent;
pub use state::AccountState;
