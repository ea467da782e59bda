//! Snapshots of account states, so that loading an account that is not cached replays only
//! the events after its latest snapshot instead of its whole stream.
//!
//! Why: streams only grow, and a service with many tenants has more active accounts than any
//! fixed cache holds; every cache miss used to replay the account from version 1. A snapshot
//! is the folded [`AccountState`] at some version, saved by a cache miss that had to replay
//! [`INTERVAL`] events or more, so that an account that keeps missing replays fewer than
//! [`INTERVAL`] events after decoding one value.
//!
//! Why only on a miss, not every [`INTERVAL`] versions of a cached account: the state grows
//! with the account (16 bytes per interaction: the states the repository decides on keep
//! interaction ids, not facts; see [`AccountState::interactions_dropped`]), so a periodic
//! snapshot writes more bytes per event the longer the stream, and that cost would fall on
//! every account, cached or not. On a miss, the replay it spares the next miss is already
//! being paid for. (What a miss still costs: reading and copying the snapshot, which grows
//! by those 16 bytes per interaction; see BENCHMARKS.md.)
//!
//! Snapshots are derived data, kept in the store's snapshot files apart from the log (see
//! [`EventStore::snapshot`]): the log stays the only source of truth. A snapshot names the id
//! of the event at its version, and is used only if the log holds that very event there;
//! one in another [`FORMAT`], undecodable, or not fitting the log is removed and the stream
//! replayed from version 1. Saving one never fails a command: a snapshot that could not be
//! written is logged and the next one tried later.

use keyplan_domain::AccountState;
use keyplan_store::{Direction, EventStore, StreamId};
use uuid::Uuid;

use crate::error::RepositoryError;

/// A miss that replays this many events or more saves a snapshot: at most what an account
/// that keeps missing replays. Small because an account that keeps missing (more active
/// accounts than the cache holds) gains about one event between two misses, so it replays
/// on average half of this at every miss; large enough that a snapshot (the whole state,
/// encoded and written) is saved at most every this many of its events.
pub(crate) const INTERVAL: u64 = 32;

/// The encoding of a snapshot: `FORMAT` (u32, big-endian), the id of the event at the
/// state's version (16 bytes), then `postcard(AccountState)`. Raise it whenever
/// `AccountState`'s serialized form changes (the test `the_snapshot_format_is_pinned` fails
/// until then): older snapshots are then ignored, and replaced as accounts are loaded.
pub(crate) const FORMAT: u32 = 2;

const HEADER: usize = 4 + 16;

/// `state`, whose last applied event is `last_event`, as snapshot bytes.
pub(crate) fn encode(state: &AccountState, last_event: Uuid) -> Result<Vec<u8>, postcard::Error> {
    let mut bytes = Vec::with_capacity(HEADER + 256);
    bytes.extend_from_slice(&FORMAT.to_be_bytes());
    bytes.extend_from_slice(last_event.as_bytes());
    postcard::to_extend(state, bytes)
}

/// The state and the id of its last event, if `bytes` are a snapshot of this [`FORMAT`].
pub(crate) fn decode(bytes: &[u8]) -> Option<(AccountState, Uuid)> {
    let (format, rest) = bytes.split_first_chunk::<4>()?;
    if u32::from_be_bytes(*format) != FORMAT {
        return None;
    }
    let (id, body) = rest.split_first_chunk::<16>()?;
    let state: AccountState = postcard::from_bytes(body).ok()?;
    Some((state, Uuid::from_bytes(*id)))
}

/// The latest snapshot of `stream` that fits the log, if any. One that does not fit (see the
/// module docs) is removed, so that it is not read again.
pub(crate) fn load(
    store: &EventStore,
    stream: &StreamId,
) -> Result<Option<AccountState>, RepositoryError> {
    let Some(bytes) = store.snapshot(stream)? else {
        return Ok(None);
    };
    if let Some((state, last_event)) = decode(&bytes) {
        if state.version > 0 {
            let at = store.read_stream(stream, state.version, Direction::Forward, 1)?;
            let fits = at
                .events
                .first()
                .is_some_and(|e| e.stream_version == state.version && e.event_id == last_event);
            if fits {
                return Ok(Some(state));
            }
        }
    }
    tracing::info!(%stream, "ignoring a snapshot that does not fit the log; replaying the stream");
    store.remove_snapshot(stream)?;
    Ok(None)
}

/// Queues `state` (whose last event is `last_event`) as `stream`'s snapshot, written in the
/// background ([`EventStore::save_snapshot_later`]); a failure is logged, not returned (see
/// the module docs).
pub(crate) fn save(store: &EventStore, stream: &StreamId, state: &AccountState, last_event: Uuid) {
    match encode(state, last_event) {
        Ok(bytes) => {
            if !store.save_snapshot_later(stream, &bytes) {
                tracing::debug!(%stream, version = state.version, "snapshot skipped: the writer is busy");
            }
        }
        Err(error) => {
            tracing::warn!(%stream, version = state.version, %error, "could not encode a snapshot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// A state exercising every part of `AccountState`, folded from the shared fixture.
    fn rich_state() -> AccountState {
        let events: Vec<_> = keyplan_testkit::globex::events()
            .into_iter()
            .map(|e| e.event)
            .collect();
        AccountState::from_events(&events)
    }

    #[test]
    fn a_snapshot_decodes_to_the_state_it_was_made_of() {
        let state = rich_state();
        let id = Uuid::now_v7();
        let bytes = encode(&state, id).expect("encodes");
        assert_eq!(decode(&bytes), Some((state.clone(), id)));
        let mut compact = state;
        compact.drop_interactions();
        let compact_bytes = encode(&compact, id).expect("encodes");
        assert!(compact_bytes.len() < bytes.len(), "the facts are left out");
        assert_eq!(decode(&compact_bytes), Some((compact, id)));
        let mut other = bytes.clone();
        other[3] ^= 1;
        assert_eq!(decode(&other), None, "another format is ignored");
        assert_eq!(
            decode(&bytes[..HEADER + 3]),
            None,
            "a cut snapshot is ignored"
        );
        assert_eq!(decode(&[]), None);
    }

    /// Pins the serialized form of `AccountState`: when this fails, the snapshot encoding
    /// changed, so raise [`FORMAT`] (old snapshots would otherwise be misread) and put the
    /// new hash here.
    #[test]
    fn the_snapshot_format_is_pinned() {
        let bytes = postcard::to_allocvec(&rich_state()).expect("encodes");
        let hash = hex::encode(Sha256::digest(&bytes));
        assert_eq!(
            (FORMAT, hash.as_str()),
            (
                2,
                "fd896a5785e94889a06973d463c2ecbb0ed62f241cadfe9c012a0e45c0635ec7"
            ),
            "AccountState's encoding changed: raise snapshot::FORMAT and update this hash"
        );
    }
}
