//! Test support: rewrite a stored event's bytes behind the store's back, as an attacker with
//! file access would, so tests can prove that [`crate::EventStore::verify_stream`] notices.
//! Compiled only with the `test-support` feature; never part of a release build.

use std::path::Path;

use crate::error::StoreError;
use crate::layout::{position_of_key, record_key, RecordView, HASH_LEN, LOG_TREE};

/// Flips one byte of the payload of the event at `position`, keeping its stored hashes.
/// The store at `path` must not be open.
pub fn flip_payload_byte(path: &Path, position: u64) -> Result<(), StoreError> {
    let settings = crate::settings::LogSettings::load(path)?
        .ok_or_else(|| StoreError::Corrupt(format!("{} holds no log", path.display())))?;
    let db = crate::store::open_sled(&crate::StoreConfig::new(path), &settings)?;
    let log = db.open_tree(LOG_TREE)?;
    let (key, value) = log
        .range(..=record_key(position))
        .next_back()
        .ok_or_else(|| StoreError::Corrupt(format!("no record holds position {position}")))??;
    let start = position_of_key(&key)?;
    let view = RecordView::parse(start, &value)?;
    let event = view.event((position - start) as usize)?;
    // The payload is the tail of the body, just before the two hashes.
    let body_end =
        event.body_bytes.as_ptr() as usize - value.as_ptr() as usize + event.body_bytes.len();
    let payload_len = event.body.payload.len();
    if payload_len == 0 {
        return Err(StoreError::Corrupt("event has an empty payload".into()));
    }
    let mut bytes = value.to_vec();
    bytes[body_end - 1] ^= 0x01;
    debug_assert!(body_end + 2 * HASH_LEN <= bytes.len());
    log.insert(key, bytes)?;
    db.flush()?;
    Ok(())
}
