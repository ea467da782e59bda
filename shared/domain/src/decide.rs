//! The decision rules: which events a command produces, given the account's current state.
//!
//! TODO(domain helper): implement.

use crate::commands::AccountCommand;
use crate::error::DomainError;
use crate::events::AccountEvent;
use crate::state::AccountState;
use crate::values::Timestamp;

/// Validates `command` against `state` and returns the events to append (at least one).
///
/// `now` is the server's current time (dates and business times are checked against it).
pub fn decide(
    state: &AccountState,
    command: &AccountCommand,
    now: Timestamp,
) -> Result<Vec<AccountEvent>, DomainError> {
    let _ = (state, command, now);
    unimplemented!()
}
