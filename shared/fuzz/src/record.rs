//! Fuzz body: a log record's bytes, as `RecordView` parses them and the store then walks them.
//!
//! Input: 8 bytes of first position (little-endian; shorter inputs pad with zeros), then the
//! record's value. Whatever the bytes, parsing and iterating must return errors, not panic.

use keyplan_store::layout::{position_of_key, RecordView};

/// Runs one input.
pub fn run(data: &[u8]) {
    let split = data.len().min(8);
    let (key, value) = data.split_at(split);
    let mut first = [0u8; 8];
    first[..split].copy_from_slice(key);
    let first_position = u64::from_le_bytes(first);
    // A key of any length: only 8 bytes name a position.
    let _ = position_of_key(key);

    let Ok(view) = RecordView::parse(first_position, value) else {
        return;
    };
    let _ = (view.len(), view.is_empty(), view.first_position());
    let _ = view.end_position();
    // What reads do: one event by index (also one past the end; indexes near usize::MAX
    // overflow `4 * i` in `end_of`, but no caller can pass one: the store's indexes are
    // `position - record start`, below the record's u32 count), then every event in order.
    let _ = view.event(view.len());
    // A huge claimed count with few bytes fails at the first missing event: stop there, as the
    // store does (an error ends its scan).
    for event in view.events() {
        let Ok(event) = event else { break };
        let recorded = event.to_recorded();
        assert_eq!(recorded.global_position, event.body.global_position);
        let _ = event.expected_hash();
    }
}
