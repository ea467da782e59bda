//! Replays the committed corpus of the `stored_event` fuzz target (stored-event decoding and upcasting (`codec::decode`)) as an ordinary test:
//! the same function the fuzz target runs (compiled from the fuzz crate's own source file),
//! on every input in `shared/fuzz/corpus/stored_event`, must not panic.
#![allow(clippy::unwrap_used)]

use std::path::Path;

#[path = "../../fuzz/src/stored_event.rs"]
mod stored_event;

#[test]
fn the_stored_event_fuzz_corpus_replays_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/stored_event");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| stored_event::run(&data));
        assert!(outcome.is_ok(), "{} panicked", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "no corpus in {}", dir.display());
}
