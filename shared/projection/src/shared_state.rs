//! What every read model's in-memory state needs around its locks: lock helpers that survive a
//! poisoned lock, and the set of accounts changed since the last flush.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Reads through a poisoned lock: a panic elsewhere must not take a read model down, and every
/// mutation of a read model leaves its state consistent before it can panic.
pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes through a poisoned lock (see [`read`]).
pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks through a poisoned mutex (see [`read`]).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The accounts (tenant, account) whose state changed since the last flush, so that a flush
/// writes those and never scans every account. Flushed in key order.
#[derive(Debug, Default)]
pub struct DirtyAccounts(Mutex<BTreeSet<(String, String)>>);

impl DirtyAccounts {
    /// Notes that `account` of `tenant` changed.
    pub fn mark(&self, tenant: &str, account: &str) {
        lock(&self.0).insert((tenant.to_owned(), account.to_owned()));
    }

    /// The changed accounts, leaving the set empty (a flush writes them).
    pub fn take(&self) -> BTreeSet<(String, String)> {
        std::mem::take(&mut *lock(&self.0))
    }

    /// Forgets every change (the state was just loaded from what is stored).
    pub fn clear(&self) {
        lock(&self.0).clear();
    }

    /// Takes over `rebuilt`'s changes (a rebuilt generation replacing this one), leaving it
    /// empty.
    pub fn adopt(&self, rebuilt: &DirtyAccounts) {
        let changes = rebuilt.take();
        *lock(&self.0) = changes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_taken_once_in_key_order_and_adopted() {
        let dirty = DirtyAccounts::default();
        dirty.mark("b", "2");
        dirty.mark("a", "9");
        dirty.mark("b", "2");
        let taken: Vec<_> = dirty.take().into_iter().collect();
        assert_eq!(taken, [("a".into(), "9".into()), ("b".into(), "2".into())]);
        assert!(dirty.take().is_empty());

        let rebuilt = DirtyAccounts::default();
        rebuilt.mark("c", "1");
        dirty.mark("stale", "x");
        dirty.adopt(&rebuilt);
        assert!(rebuilt.take().is_empty());
        let taken: Vec<_> = dirty.take().into_iter().collect();
        assert_eq!(taken, [("c".to_owned(), "1".to_owned())]);
        dirty.mark("d", "1");
        dirty.clear();
        assert!(dirty.take().is_empty());
    }
}
