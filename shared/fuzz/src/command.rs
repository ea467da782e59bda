//! Fuzz body: a command as the command service receives it: arbitrary bytes decoded as the
//! protobuf `Command`, then converted to the domain's `AccountCommand`.
//!
//! Conversion must never panic, and a command it accepts must convert back to the wire and
//! in again unchanged (the wire form loses nothing the domain keeps).

use keyplan_proto::convert::{command_from_proto, command_to_proto};
use keyplan_proto::pb;
use prost::Message;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(command) = pb::Command::decode(data) else {
        return;
    };
    let Some(kind) = command.kind else {
        return;
    };
    let Ok(domain) = command_from_proto(kind) else {
        return;
    };
    let again = command_from_proto(command_to_proto(&domain));
    assert_eq!(
        again.as_ref().ok(),
        Some(&domain),
        "wire round trip changed the command: {again:?}"
    );
}
