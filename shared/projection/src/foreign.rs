//! Messages on the stream that the log did not produce.
//!
//! Only the ingest node's relay should publish on the stream's subjects (the configuration in
//! `deploy/nats/` makes that so), but where NATS is not locked down anyone can put a message at
//! the stream's next sequence. A projections node must never apply such a message, and one
//! foreign message must not stop every read model for good: the JetStream feed skips any
//! message that does not decode as a Keyplan event, whose position is not its sequence, or
//! (with a signing key, `keyplan_fanout::signing`) whose signature does not verify, and
//! records it here, from where `GetStatus`, `keyplan projections status` and health report it.
//!
//! The record is process-wide, like a metrics registry: every projection of a node reads the
//! same stream, and each skip is the same fact about that stream.

use std::sync::{Mutex, OnceLock};

/// The longest reason kept (a foreign message's content is not ours to echo at length).
const MAX_REASON: usize = 240;

/// What has been refused so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForeignMessages {
    /// Messages skipped (each stream sequence counted once, however many projections met it).
    pub skipped: u64,
    /// The stream sequence of the last one.
    pub last_sequence: u64,
    /// Why the last one was refused.
    pub last_reason: String,
}

fn registry() -> &'static Mutex<ForeignMessages> {
    static REGISTRY: OnceLock<Mutex<ForeignMessages>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// Records a refused message.
pub(crate) fn record(sequence: u64, reason: &str) {
    let mut reason = reason.to_owned();
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push_str("...");
    }
    if let Ok(mut seen) = registry().lock() {
        if seen.skipped > 0 && seen.last_sequence == sequence {
            return;
        }
        tracing::error!(
            sequence,
            reason = %reason,
            "skipped a message on the stream that Keyplan's log did not produce"
        );
        seen.skipped += 1;
        seen.last_sequence = sequence;
        seen.last_reason = reason;
    }
}

/// What this process has refused so far.
pub fn foreign_messages() -> ForeignMessages {
    registry().lock().map(|s| s.clone()).unwrap_or_default()
}
