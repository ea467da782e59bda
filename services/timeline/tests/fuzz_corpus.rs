//! Replays the committed corpus of the `page_token` fuzz target (the timeline's page tokens (`TimelineQuery::resume`)) as an ordinary test:
//! the same function the fuzz target runs (compiled from the fuzz crate's own source file),
//! on every input in `shared/fuzz/corpus/page_token`, must not panic.
#![allow(clippy::unwrap_used)]

use std::path::Path;

#[path = "../../../shared/fuzz/src/page_token.rs"]
mod page_token;

#[test]
fn the_page_token_fuzz_corpus_replays_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fuzz/corpus/page_token");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| page_token::run(&data));
        assert!(outcome.is_ok(), "{} panicked", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "no corpus in {}", dir.display());
}

/// Writes seed inputs for every fuzz target into `shared/fuzz/corpus/<target>/seed-*`, from
/// the Globex fixture year: its commands on the wire, its events as stored (current and v1
/// schemas), log records holding them, and page tokens. Run by hand before fuzzing from
/// scratch (`cargo test -p keyplan-timeline-service --test fuzz_corpus -- --ignored`); the
/// fuzzer's minimized corpus then replaces most of them.
#[test]
#[ignore = "writes seed files; run by hand"]
fn write_fuzz_seeds() {
    use keyplan_domain::codec::{self, legacy};
    use keyplan_domain::values::Timestamp;
    use keyplan_domain::AccountEvent;
    use keyplan_proto::convert::command_to_proto;
    use keyplan_proto::pb;
    use keyplan_store::layout::{EventBody, RecordBuilder};
    use keyplan_timeline_service::query::{Cursor, Order, Scope, TimelineQuery};
    use prost::Message;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fuzz/corpus");
    let write = |target: &str, n: usize, data: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{n:03}")), data).unwrap();
    };

    // Commands: one of each kind the fixture issues.
    let mut kinds = std::collections::BTreeSet::new();
    for step in keyplan_testkit::globex::steps() {
        if kinds.insert(step.command.name()) {
            let wire = pb::Command {
                kind: Some(command_to_proto(&step.command)),
            };
            write("command", kinds.len(), &wire.encode_to_vec());
        }
    }

    // Stored events: one of each type, plus v1 interactions; and records holding them.
    let events = keyplan_testkit::globex::events();
    let mut types = std::collections::BTreeSet::new();
    let mut stored = Vec::new();
    for e in &events {
        if types.insert(e.event.event_type()) {
            stored.push(codec::encode(&e.event));
            match &e.event {
                AccountEvent::InteractionLogged(i) => {
                    stored.push(legacy::encode_interaction_logged_v1(i));
                }
                AccountEvent::InteractionCorrected(i) => {
                    stored.push(legacy::encode_interaction_corrected_v1(i));
                }
                _ => {}
            }
        }
    }
    for (n, s) in stored.iter().enumerate() {
        let selector = AccountEvent::TYPES
            .iter()
            .position(|t| *t == s.event_type)
            .unwrap() as u8;
        let mut data = vec![selector];
        data.extend_from_slice(&s.schema_version.to_le_bytes());
        data.extend_from_slice(&s.payload);
        write("stored_event", n, &data);
    }
    for (n, chunk) in stored.chunks(5).take(6).enumerate() {
        let first = 1 + 5 * n as u64;
        let mut builder = RecordBuilder::default();
        let mut prev = [0u8; 32];
        for (i, s) in chunk.iter().enumerate() {
            let body = EventBody {
                event_id: uuid::Uuid::from_u128(first as u128 + i as u128),
                tenant: "acme",
                stream: "globex",
                stream_version: first + i as u64,
                global_position: first + i as u64,
                recorded_at_micros: 1_700_000_000_000_000,
                occurred_at_micros: 1_700_000_000_000_000,
                actor: "dana",
                correlation_id: uuid::Uuid::nil(),
                causation_id: None,
                idempotency_key: (i % 2 == 0).then_some("k"),
                event_type: s.event_type,
                schema_version: s.schema_version,
                payload: &s.payload,
            };
            prev = builder.push(&body, &prev).unwrap();
        }
        for (start, value) in builder.finish() {
            let mut data = start.to_le_bytes().to_vec();
            data.extend_from_slice(&value);
            write("record", n, &data);
        }
    }

    // Page tokens, for each selector the target understands.
    for selector in 0u8..8 {
        let mut query = TimelineQuery::new(Scope::Account);
        if selector & 1 == 1 {
            query.order = Order::OldestFirst;
        }
        if selector & 2 == 2 {
            query = query.with_event_types(["InteractionLogged"]).unwrap();
        }
        let (tenant, account) = if selector & 4 == 4 {
            ("acme", "globex")
        } else {
            ("initech", "acme-corp")
        };
        let cursor = Cursor {
            occurred_at: Timestamp(1_700_000_000_000_000 + i64::from(selector)),
            position: 42 + u64::from(selector),
        };
        let mut data = vec![selector];
        data.extend_from_slice(query.page_token(tenant, account, cursor).as_bytes());
        write("page_token", usize::from(selector), &data);
    }
}
