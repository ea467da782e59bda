//! The account-state projection: the current state of every account, folded from the event
//! feed. A projections node serves `AccountService` from it (the ingest side serves it from the
//! repository, which reads its own log).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use keyplan_domain::AccountState;
use keyplan_projection::runner::RESERVED_PREFIX;
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError};

/// Projection name (its sled tree).
pub const NAME: &str = "account-state";

type Key = (String, String);

#[derive(Debug, Default)]
struct Inner {
    accounts: BTreeMap<Key, AccountState>,
    dirty: HashSet<Key>,
}

/// Current account states by tenant and account; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct AccountStateProjection {
    inner: Arc<RwLock<Inner>>,
}

fn storage_key(tenant: &str, account: &str) -> Vec<u8> {
    // Neither id may contain '/', so the key is unambiguous and sorts by tenant.
    format!("{tenant}/{account}").into_bytes()
}

impl AccountStateProjection {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One account's state, if it has any events.
    pub fn get(&self, tenant: &str, account: &str) -> Option<AccountState> {
        self.read()
            .accounts
            .get(&(tenant.to_owned(), account.to_owned()))
            .cloned()
    }

    /// A tenant's accounts, sorted by id.
    pub fn list(&self, tenant: &str) -> Vec<(String, AccountState)> {
        self.read()
            .accounts
            .range((tenant.to_owned(), String::new())..)
            .take_while(|((t, _), _)| t == tenant)
            .map(|((_, a), s)| (a.clone(), s.clone()))
            .collect()
    }
}

impl Projection for AccountStateProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(&self, tree: &sled::Tree) -> Result<(), ProjectionError> {
        let mut inner = self.write();
        inner.accounts.clear();
        inner.dirty.clear();
        for entry in tree.iter() {
            let (key, value) = entry?;
            if key.first() == Some(&RESERVED_PREFIX) {
                continue;
            }
            let corrupt = |reason: String| ProjectionError::Corrupt {
                name: NAME.into(),
                reason,
            };
            let text = std::str::from_utf8(&key).map_err(|e| corrupt(format!("key: {e}")))?;
            let (tenant, account) = text
                .split_once('/')
                .ok_or_else(|| corrupt(format!("key {text:?}")))?;
            let state: AccountState = postcard::from_bytes(&value)
                .map_err(|e| corrupt(format!("state of {text}: {e}")))?;
            inner
                .accounts
                .insert((tenant.to_owned(), account.to_owned()), state);
        }
        Ok(())
    }

    fn apply(&self, event: &ProjectedEvent) {
        let key = (event.tenant.clone(), event.account.clone());
        let mut inner = self.write();
        inner
            .accounts
            .entry(key.clone())
            .or_default()
            .apply(&event.event);
        inner.dirty.insert(key);
    }

    /// 2: interactions keep a content hash instead of their text (`AccountState` of format 1
    /// cannot be decoded any more; the runner rebuilds it from the log). 3: `AccountState`
    /// gained its interaction ids (`interaction_ids`, `interactions_dropped`).
    fn format(&self) -> u32 {
        3
    }

    fn adopt(&self, rebuilt: Self) -> bool {
        let state = std::mem::take(&mut *rebuilt.write());
        *self.write() = state;
        true
    }

    fn flush(&self, batch: &mut sled::Batch) -> Result<(), ProjectionError> {
        let mut inner = self.write();
        let dirty: Vec<Key> = inner.dirty.drain().collect();
        for key in dirty {
            if let Some(state) = inner.accounts.get(&key) {
                let bytes = postcard::to_allocvec(state).map_err(|e| ProjectionError::Corrupt {
                    name: NAME.into(),
                    reason: e.to_string(),
                })?;
                batch.insert(storage_key(&key.0, &key.1), bytes);
            }
        }
        Ok(())
    }
}
