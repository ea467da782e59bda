//! The activity projection: every account's activity, in memory, persisted in chunks.
//!
//! Accounts live in a map behind their own locks, so that applying an event to one account
//! and answering a query about another never wait for each other, and a one-account query
//! never touches the other accounts.
//!
//! # Stored form
//! In the projection's tree (the runner's checkpoint sits beside it, under keys that
//! start with byte 0):
//! - `<tenant>/<account>/f`: the account's facts (names, tiers, buying-role history, plans,
//!   opportunities, revenue), one value;
//! - `<tenant>/<account>/i/<chunk as 8 hex digits>`: its interactions, 128 per value,
//!   in logging order.
//!
//! The layout is the one every read model shares (`keyplan_projection::stored`): values are
//! postcard, and the projection's `format` versions them. A flush writes the facts only if they changed and only
//! the interaction chunks that changed (the last one, usually, plus the chunk of a corrected
//! interaction): a busy account costs one small value per flush, not its whole history. The
//! derived indexes are not stored: [`Projection::load`] recomputes them from the facts.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use keyplan_projection::runner::RESERVED_PREFIX;
pub(crate) use keyplan_projection::shared_state::{read, write};
use keyplan_projection::stored::{LoadedChunks, Stored};
use keyplan_projection::DirtyAccounts;
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError};

use crate::model::{AccountActivity, Facts, InteractionFacts, CHUNK};

/// Projection name (its tree in the read models' database).
pub const NAME: &str = "activity";

/// The layout of the projection's tree.
const STORED: Stored = Stored::new(NAME);

/// The part of an account's key holding its facts.
const FACTS: &str = "f";

/// The stored list of an account's interactions.
const INTERACTIONS: &str = "i";

/// Tenant and account.
pub(crate) type Key = (String, String);

/// A shared account.
pub(crate) type Shared = Arc<RwLock<AccountActivity>>;

#[derive(Debug, Default)]
struct Inner {
    accounts: RwLock<BTreeMap<Key, Shared>>,
    /// Accounts changed since the last flush (so a flush never scans every account).
    dirty: DirtyAccounts,
}

/// Historical activity of every account; cheap to clone (shared), `Default` is empty.
#[derive(Debug, Clone, Default)]
pub struct ActivityProjection {
    inner: Arc<Inner>,
}

impl ActivityProjection {
    /// One account, if it has events.
    pub(crate) fn account(&self, tenant: &str, account: &str) -> Option<Shared> {
        read(&self.inner.accounts)
            .get(&(tenant.to_owned(), account.to_owned()))
            .cloned()
    }

    /// A tenant's accounts, by account id.
    pub(crate) fn tenant_accounts(&self, tenant: &str) -> Vec<(String, Shared)> {
        read(&self.inner.accounts)
            .range((tenant.to_owned(), String::new())..)
            .take_while(|((t, _), _)| t == tenant)
            .map(|((_, a), shared)| (a.clone(), shared.clone()))
            .collect()
    }

    /// A deep copy of every account (for tests comparing two instances).
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> BTreeMap<Key, AccountActivity> {
        read(&self.inner.accounts)
            .iter()
            .map(|(k, v)| (k.clone(), read(v).clone()))
            .collect()
    }
}

impl Projection for ActivityProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(&self, tree: &keyplan_projection::Tree) -> Result<(), ProjectionError> {
        type Staged = (Option<Facts>, LoadedChunks<InteractionFacts>);
        let mut staged: BTreeMap<Key, Staged> = BTreeMap::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            if key.first() == Some(&RESERVED_PREFIX) {
                continue;
            }
            let parsed = STORED.parse_key(&key)?;
            let slot = staged
                .entry((parsed.tenant.to_owned(), parsed.account.to_owned()))
                .or_default();
            match (parsed.part, parsed.chunk) {
                (FACTS, None) => slot.0 = Some(STORED.decode(&key, &value)?),
                (_, Some((INTERACTIONS, chunk))) => {
                    slot.1.insert(chunk, STORED.decode(&key, &value)?);
                }
                _ => {
                    return Err(STORED.corrupt(format!(
                        "unexpected key {:?}",
                        String::from_utf8_lossy(&key)
                    )))
                }
            }
        }
        let mut accounts = BTreeMap::new();
        for (key, (facts, chunks)) in staged {
            let owner = format!("{}/{}", key.0, key.1);
            let facts = facts
                .ok_or_else(|| STORED.corrupt(format!("{owner} has interactions but no facts")))?;
            let interactions = chunks.into_items(CHUNK, &STORED, &owner)?;
            let account = AccountActivity::restore(facts, interactions)
                .map_err(|reason| STORED.corrupt(format!("{owner}: {reason}")))?;
            accounts.insert(key, Arc::new(RwLock::new(account)));
        }
        *write(&self.inner.accounts) = accounts;
        self.inner.dirty.clear();
        Ok(())
    }

    fn apply(&self, event: &ProjectedEvent) {
        let (shared, created) = match self.account(&event.tenant, &event.account) {
            Some(shared) => (shared, false),
            None => {
                // A new account is stored even if its first event changes nothing here, so
                // that a reloaded projection lists exactly the accounts this one does.
                let mut fresh = AccountActivity::default();
                fresh.dirty.facts = true;
                let shared = write(&self.inner.accounts)
                    .entry((event.tenant.clone(), event.account.clone()))
                    .or_insert_with(|| Arc::new(RwLock::new(fresh)))
                    .clone();
                (shared, true)
            }
        };
        let changed = write(&shared).apply(event);
        if changed || created {
            self.inner.dirty.mark(&event.tenant, &event.account);
        }
    }

    fn flush(&self, batch: &mut keyplan_projection::Batch) -> Result<(), ProjectionError> {
        let dirty = self.inner.dirty.take();
        let accounts = read(&self.inner.accounts);
        for key in dirty {
            let Some(shared) = accounts.get(&key) else {
                continue;
            };
            let mut account = write(shared);
            if account.dirty.facts {
                batch.insert(
                    Stored::key(&key.0, &key.1, FACTS),
                    STORED.encode(&account.facts)?,
                );
            }
            for &chunk in &account.dirty.chunks {
                batch.insert(
                    Stored::chunk_key(&key.0, &key.1, INTERACTIONS, chunk),
                    STORED.encode(&account.chunk(chunk))?,
                );
            }
            account.dirty = Default::default();
        }
        Ok(())
    }

    /// 2: values without a format byte (the layout shared by the read models,
    /// `keyplan_projection::stored`).
    fn format(&self) -> u32 {
        2
    }

    fn adopt(&self, rebuilt: Self) -> bool {
        let accounts = std::mem::take(&mut *write(&rebuilt.inner.accounts));
        *write(&self.inner.accounts) = accounts;
        self.inner.dirty.adopt(&rebuilt.inner.dirty);
        true
    }
}
