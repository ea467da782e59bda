//! Ports for processes that must be told theirs before they start (nats-server, a node named
//! in a shard map), on 127.0.0.1.
//!
//! Why not "bind port 0, read the port, drop the listener": that port comes from the kernel's
//! ephemeral range, the same range every outgoing connection (a NATS route, a gRPC client)
//! takes its local port from. Between the drop and the child's bind, another connection can
//! take it, and the child exits with "address in use"; a 3-node NATS cluster needs nine such
//! ports at once. So ports are picked at random *below* the ephemeral range, where no outgoing
//! connection goes, checked free by a bind, and never handed out twice by one process (tests
//! in one binary run side by side).

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports this process has handed out.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The lowest port this picks from: above the well-known and most registered services' ports.
const LOWEST: u16 = 20_000;

/// A port on 127.0.0.1 that was free a moment ago, outside the kernel's ephemeral range, and
/// not handed out before by this process.
pub fn loopback_port() -> std::io::Result<u16> {
    let highest = ephemeral_range_start().unwrap_or(32_768);
    if highest <= LOWEST + 1_000 {
        // An unusual kernel setting: fall back to the kernel's choice.
        return Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    }
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let seed = std::collections::hash_map::RandomState::new();
    for attempt in 0u32..1_000 {
        let mut hasher = seed.build_hasher();
        hasher.write_u32(attempt);
        let span = u64::from(highest - LOWEST);
        let port = LOWEST + u16::try_from(hasher.finish() % span).unwrap_or(0);
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free port on 127.0.0.1 between {LOWEST} and {highest}"),
    ))
}

/// The first port of the kernel's ephemeral range (Linux), if it can be read.
fn ephemeral_range_start() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let start = ephemeral_range_start().unwrap_or(32_768);
        let ports: Vec<u16> = (0..200).map(|_| loopback_port().unwrap()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        for port in ports {
            assert!(port >= LOWEST);
            if start > LOWEST + 1_000 {
                assert!(port < start, "{port} is in the ephemeral range");
            }
            TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
}
