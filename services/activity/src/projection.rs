//! The activity projection: every account's activity, in memory, persisted in chunks.
//!
//! Accounts live in a map behind their own locks, so that applying an event to one account
//! and answering a query about another never wait for each other, and a one-account query
//! never touches the other accounts.
//!
//! # Stored form
//! In the projection's sled tree (the runner's checkpoint sits beside it, under keys that
//! start with byte 0):
//! - `<tenant>/<account>/f`: the account's facts (names, tiers, buying-role history, plans,
//!   opportunities, revenue), one value;
//! - `<tenant>/<account>/i/<chunk as 8 hex digits>`: its interactions, 128 per value,
//!   in logging order.
//!
//! Tenant and account ids never contain '/', so keys are unambiguous. Every value starts
//! with a format byte, then postcard. A flush writes the facts only if they changed and only
//! the interaction chunks that changed (the last one, usually, plus the chunk of a corrected
//! interaction): a busy account costs one small value per flush, not its whole history. The
//! derived indexes are not stored: [`Projection::load`] recomputes them from the facts.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use keyplan_projection::runner::RESERVED_PREFIX;
pub(crate) use keyplan_projection::shared_state::{read, write};
use keyplan_projection::DirtyAccounts;
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError};

use crate::model::{AccountActivity, Facts, InteractionFacts, CHUNK};

/// Projection name (its sled tree).
pub const NAME: &str = "activity";

/// Version of the stored form; a projection stored in another format must be rebuilt.
const FORMAT: u8 = 1;

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

fn corrupt(reason: String) -> ProjectionError {
    ProjectionError::Corrupt {
        name: NAME.into(),
        reason,
    }
}

fn facts_key(tenant: &str, account: &str) -> Vec<u8> {
    format!("{tenant}/{account}/f").into_bytes()
}

fn chunk_key(tenant: &str, account: &str, chunk: u32) -> Vec<u8> {
    format!("{tenant}/{account}/i/{chunk:08x}").into_bytes()
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ProjectionError> {
    let mut bytes = vec![FORMAT];
    postcard::to_io(value, &mut bytes).map_err(|e| corrupt(format!("encoding: {e}")))?;
    Ok(bytes)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ProjectionError> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => {
            postcard::from_bytes(rest).map_err(|e| corrupt(format!("{what}: {e}")))
        }
        Some((other, _)) => Err(corrupt(format!(
            "{what} is stored in format {other}, this build reads format {FORMAT}; \
             reset the projection so that it is rebuilt from the log"
        ))),
        None => Err(corrupt(format!("{what} is empty"))),
    }
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

    fn load(&self, tree: &sled::Tree) -> Result<(), ProjectionError> {
        type Staged = (Option<Facts>, BTreeMap<u32, Vec<InteractionFacts>>);
        let mut staged: BTreeMap<Key, Staged> = BTreeMap::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            if key.first() == Some(&RESERVED_PREFIX) {
                continue;
            }
            let text = std::str::from_utf8(&key).map_err(|e| corrupt(format!("key: {e}")))?;
            let mut parts = text.splitn(3, '/');
            let (Some(tenant), Some(account), Some(rest)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(corrupt(format!("unexpected key {text:?}")));
            };
            let slot = staged
                .entry((tenant.to_owned(), account.to_owned()))
                .or_default();
            if rest == "f" {
                slot.0 = Some(decode(text, &value)?);
            } else if let Some(chunk) = rest.strip_prefix("i/") {
                let chunk = u32::from_str_radix(chunk, 16)
                    .map_err(|e| corrupt(format!("key {text:?}: {e}")))?;
                slot.1.insert(chunk, decode(text, &value)?);
            } else {
                return Err(corrupt(format!("unexpected key {text:?}")));
            }
        }
        let mut accounts = BTreeMap::new();
        for (key, (facts, chunks)) in staged {
            let facts = facts.ok_or_else(|| {
                corrupt(format!("{}/{} has interactions but no facts", key.0, key.1))
            })?;
            let count = chunks.len();
            let mut interactions = Vec::with_capacity(count * CHUNK);
            for (expected, (chunk, list)) in chunks.into_iter().enumerate() {
                let last = expected + 1 == count;
                if chunk as usize != expected
                    || list.len() > CHUNK
                    || (!last && list.len() != CHUNK)
                {
                    return Err(corrupt(format!(
                        "{}/{}: interaction chunk {chunk} is missing, misplaced or of the wrong size",
                        key.0, key.1
                    )));
                }
                interactions.extend(list);
            }
            let account = AccountActivity::restore(facts, interactions)
                .map_err(|reason| corrupt(format!("{}/{}: {reason}", key.0, key.1)))?;
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

    fn flush(&self, batch: &mut sled::Batch) -> Result<(), ProjectionError> {
        let dirty = self.inner.dirty.take();
        let accounts = read(&self.inner.accounts);
        for key in dirty {
            let Some(shared) = accounts.get(&key) else {
                continue;
            };
            let mut account = write(shared);
            if account.dirty.facts {
                batch.insert(facts_key(&key.0, &key.1), encode(&account.facts)?);
            }
            for &chunk in &account.dirty.chunks {
                batch.insert(
                    chunk_key(&key.0, &key.1, chunk),
                    encode(&account.chunk(chunk))?,
                );
            }
            account.dirty = Default::default();
        }
        Ok(())
    }

    fn adopt(&self, rebuilt: Self) -> bool {
        let accounts = std::mem::take(&mut *write(&rebuilt.inner.accounts));
        *write(&self.inner.accounts) = accounts;
        self.inner.dirty.adopt(&rebuilt.inner.dirty);
        true
    }
}
