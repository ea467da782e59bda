//! The Globex fixture in a real event store, for the audit service's tests.
//!
//! The store stamps `recorded_at` itself (server time), so the fixture's recorded instants
//! cannot be reproduced; its business times (`occurred_at`), actors and order can. Tests that
//! need a recorded instant read it back from the stored event of a known version.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use keyplan_audit_service::AuditApi;
use keyplan_domain::codec;
use keyplan_domain::values::Timestamp;
use keyplan_projection::ProjectedEvent;
use keyplan_store::{
    AppendMetadata, AppendRequest, Direction, EventStore, ExpectedVersion, ProposedEvent,
    RecordedEvent, StoreConfig, StreamId,
};
use keyplan_testkit::globex;

/// Events of the Globex year: 26 setup events on 2025-01-02, 38 interactions, one correction,
/// three review outcomes, and the rest of the year (see `keyplan_testkit::globex`).
pub const GLOBEX_EVENTS: u64 = 84;

/// A store (in a temporary directory) holding one history.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: EventStore,
    pub api: AuditApi,
}

impl Fixture {
    /// An empty store.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = open(dir.path());
        let api = AuditApi::new(store.clone());
        Self { dir, store, api }
    }

    /// A store holding the Globex year.
    pub async fn globex() -> Self {
        let fixture = Self::empty();
        for event in globex::events() {
            fixture.append(&event).await;
        }
        fixture
    }

    /// Appends one decided event with its business time and actor, as the server would.
    pub async fn append(&self, event: &ProjectedEvent) {
        let encoded = codec::encode(&event.event);
        self.store
            .append(AppendRequest {
                stream: StreamId::new(&event.tenant, &event.account),
                expected: ExpectedVersion::Exact(event.stream_version - 1),
                events: vec![ProposedEvent {
                    event_id: event.event_id,
                    event_type: encoded.event_type.to_owned(),
                    schema_version: encoded.schema_version,
                    occurred_at_micros: event.occurred_at.as_micros(),
                    payload: encoded.payload,
                }],
                metadata: AppendMetadata {
                    actor: event.actor.clone(),
                    correlation_id: uuid::Uuid::now_v7(),
                    causation_id: None,
                    idempotency_key: None,
                },
            })
            .await
            .expect("the fixture appends");
    }

    /// The stored event at `version` of Globex.
    pub fn recorded(&self, version: u64) -> RecordedEvent {
        let slice = self
            .store
            .read_stream(&globex_stream(), version, Direction::Forward, 1)
            .expect("a readable stream");
        slice.events.into_iter().next().expect("the version exists")
    }

    /// When the event at `version` of Globex was recorded.
    pub fn recorded_at(&self, version: u64) -> Timestamp {
        Timestamp(self.recorded(version).recorded_at_micros)
    }

    /// Closes the store and gives back its directory (to tamper with it, then reopen).
    pub fn close(self) -> (tempfile::TempDir, PathBuf) {
        let Self { dir, store, api } = self;
        drop(api);
        store.close();
        drop(store);
        let path = dir.path().to_path_buf();
        (dir, path)
    }
}

/// Opens a store without fdatasync (tests need durability only across a clean close).
pub fn open(path: &Path) -> EventStore {
    EventStore::open(StoreConfig {
        fdatasync: false,
        ..StoreConfig::new(path)
    })
    .expect("the store opens")
}

/// The Globex stream.
pub fn globex_stream() -> StreamId {
    StreamId::new(globex::TENANT, globex::ACCOUNT)
}
