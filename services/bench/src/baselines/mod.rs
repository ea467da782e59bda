//! What Keyplan is compared with, measured in the same run on the same machine.
//!
//! - [`sled`]: the same embedded store with the same durability (flush + `fdatasync`) and no
//!   other work at all: the ceiling Keyplan's write path can approach, in two layouts.
//! - [`postgres`]: the events table most teams would build instead.
//! - [`jetstream`]: a bare nats-server with Keyplan's stream settings, publishing and reading
//!   back Keyplan-sized events: the ceiling of the relay and of a rebuild from JetStream.
//! - [`fdatasync_latency`](sled::fdatasync_latency): the disk's price of one durable write, a
//!   fact of the machine that bounds every durable append.

pub mod jetstream;
pub mod postgres;
pub mod sled;

/// Bytes of one event in the baselines: about what Keyplan stores for one `InteractionLogged`
/// of the workload (postcard body: ids, tenant, stream, times, actor, type and a ~140-byte
/// payload, about 260 bytes; plus two 32-byte hashes and a 4-byte offset).
pub const EVENT_BYTES: usize = 300;

/// Event-sized filler that does not compress or deduplicate to nothing (a fixed xorshift
/// sequence), so no layer gets an unrealistic shortcut.
pub fn event_bytes() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..EVENT_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}
