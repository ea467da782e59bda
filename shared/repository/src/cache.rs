//! The repository's cache of account states: least recently used out first, bounded both in
//! accounts and in bytes.
//!
//! Why bytes as well as accounts: a cached state keeps 16 bytes per interaction the account
//! ever logged (what deciding a new one needs), so a bound in accounts alone lets the cache
//! grow with events: 1,024 accounts of 10,000 interactions each hold about 160 MiB. A state
//! that leaves the cache is loaded again from its latest snapshot plus the events after it.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use keyplan_domain::AccountState;
use keyplan_store::StreamId;
use lru::LruCache;

/// An account's cached state (`None` until loaded), behind the account's lock.
pub(crate) type Slot = Arc<tokio::sync::Mutex<Option<AccountState>>>;

struct Entry {
    slot: Slot,
    /// What the state weighed when last weighed ([`AccountState::approximate_bytes`]).
    bytes: usize,
}

struct Inner {
    lru: LruCache<StreamId, Entry>,
    bytes: usize,
    max_accounts: usize,
    max_bytes: usize,
}

/// The cache (see the module docs).
pub(crate) struct StateCache {
    inner: Mutex<Inner>,
}

impl StateCache {
    /// A cache of at most `max_accounts` states and about `max_bytes` bytes (always at least
    /// the state in use, however large).
    pub fn new(max_accounts: NonZeroUsize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                max_accounts: max_accounts.get(),
                max_bytes,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// `stream`'s slot, made the most recently used (an empty one if it was not cached).
    pub fn slot(&self, stream: &StreamId) -> Slot {
        let mut inner = self.lock();
        let slot = inner
            .lru
            .get_or_insert(stream.clone(), || Entry {
                slot: Slot::default(),
                bytes: 0,
            })
            .slot
            .clone();
        inner.evict();
        slot
    }

    /// Records what `slot`'s state weighs now (its owner holds the account's lock), and lets
    /// the least recently used states go while the cache is over its bounds. A slot that has
    /// left the cache meanwhile is not put back.
    pub fn weigh(&self, stream: &StreamId, slot: &Slot, state: Option<&AccountState>) {
        let bytes = state.map_or(0, AccountState::approximate_bytes);
        let mut inner = self.lock();
        let Some(entry) = inner.lru.get_mut(stream) else {
            return;
        };
        if !Arc::ptr_eq(&entry.slot, slot) {
            return;
        }
        let before = std::mem::replace(&mut entry.bytes, bytes);
        inner.bytes = inner.bytes - before + bytes;
        inner.evict();
    }

    /// How many states and about how many bytes the cache holds.
    #[cfg(test)]
    pub fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.lru.len(), inner.bytes)
    }
}

impl Inner {
    /// Drops least recently used states until both bounds hold, keeping the most recent one.
    fn evict(&mut self) {
        while self.lru.len() > 1
            && (self.lru.len() > self.max_accounts || self.bytes > self.max_bytes)
        {
            let Some((_, entry)) = self.lru.pop_lru() else {
                break;
            };
            self.bytes -= entry.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn state(interactions: usize) -> AccountState {
        let mut state = AccountState::without_interactions();
        for i in 0..interactions {
            state
                .interaction_ids
                .insert(&keyplan_domain::ids::InteractionId::parse(format!("i-{i}")).unwrap());
        }
        state
    }

    #[test]
    fn states_leave_least_recently_used_first_once_over_either_bound() {
        let cache = StateCache::new(NonZeroUsize::new(3).unwrap(), 40_000);
        let streams: Vec<StreamId> = (0..4)
            .map(|i| StreamId::new("t", format!("a{i}")))
            .collect();
        let small = state(10);
        for stream in &streams[..3] {
            let slot = cache.slot(stream);
            cache.weigh(stream, &slot, Some(&small));
        }
        assert_eq!(cache.size().0, 3);
        // A fourth account: over the count, the least recently used (a0) goes.
        let slot = cache.slot(&streams[0]);
        drop(slot);
        let slot = cache.slot(&streams[3]);
        cache.weigh(&streams[3], &slot, Some(&small));
        assert_eq!(cache.size().0, 3);
        let held = cache.slot(&streams[1]);
        assert!(
            Arc::ptr_eq(&held, &cache.slot(&streams[1])),
            "a1 stayed cached"
        );
        // One large state: over the bytes, the others go, the large one stays.
        let large = state(3_000);
        assert!(large.approximate_bytes() > 40_000);
        let slot = cache.slot(&streams[2]);
        cache.weigh(&streams[2], &slot, Some(&large));
        assert_eq!(cache.size(), (1, large.approximate_bytes()));
        // A slot evicted while its owner held it is not put back by its weighing.
        cache.weigh(&streams[1], &held, Some(&small));
        assert_eq!(cache.size(), (1, large.approximate_bytes()));
    }
}
