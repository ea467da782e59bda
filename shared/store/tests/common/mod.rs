//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use keyplan_store::{AppendMetadata, AppendRequest, ExpectedVersion, ProposedEvent, StreamId};
use uuid::Uuid;

/// Copies a directory tree: what the disk holds right now, as a crash would leave it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A deterministic pseudo-random byte source (xorshift), so payloads do not compress away.
pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// An interaction event with this payload.
pub fn event(payload: Vec<u8>) -> ProposedEvent {
    ProposedEvent {
        event_id: Uuid::now_v7(),
        event_type: "InteractionLogged".into(),
        schema_version: 2,
        occurred_at_micros: 1_700_000_000_000_000,
        payload,
    }
}

/// An append of `events` to `stream`, any version.
pub fn request(stream: &StreamId, events: Vec<ProposedEvent>) -> AppendRequest {
    AppendRequest {
        stream: stream.clone(),
        expected: ExpectedVersion::Any,
        events,
        metadata: AppendMetadata {
            actor: "dana".into(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            idempotency_key: None,
        },
    }
}
