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
use std::sync::{Arc, Mutex};

pub(crate) use keyplan_projection::resident::ResidentRef;
use keyplan_projection::resident::{AccountFold, AccountSlot, ResidentAccounts};
use keyplan_projection::shared_state::lock;
use keyplan_projection::stored::{LoadedChunks, Stored};
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError, Tree};

use crate::error::ActivityError;
use crate::model::{AccountActivity, Facts, InteractionFacts, CHUNK};

/// Projection name (its tree in the read models' database).
pub const NAME: &str = "activity";

/// The layout of the projection's tree.
const STORED: Stored = Stored::new(NAME);

/// The part of an account's key holding its facts.
const FACTS: &str = "f";

/// The stored list of an account's interactions.
const INTERACTIONS: &str = "i";

/// About how many bytes one interaction adds to an account in memory (with its share of the
/// derived indexes): the unit of the memory budget (BENCHMARKS.md has the measurement).
const BYTES_PER_INTERACTION: usize = 192;

/// About how many bytes an account takes without interactions.
const BYTES_PER_ACCOUNT: usize = 2048;

/// How accounts' activity is read back and weighed (see `keyplan_projection::resident`).
#[derive(Debug)]
pub(crate) struct Accounts;

impl AccountFold for Accounts {
    type Meta = ();
    type State = AccountActivity;

    fn load(
        tree: &Tree,
        tenant: &str,
        account: &str,
        (): &(),
    ) -> Result<AccountActivity, ProjectionError> {
        let owner = format!("{tenant}/{account}");
        let mut facts: Option<Facts> = None;
        let mut chunks = LoadedChunks::<InteractionFacts>::default();
        for item in tree.scan_prefix(format!("{owner}/")) {
            let (key, value) = item?;
            let parsed = STORED.parse_key(&key)?;
            match (parsed.part, parsed.chunk) {
                (FACTS, None) => facts = Some(STORED.decode(&key, &value)?),
                (_, Some((INTERACTIONS, chunk))) => {
                    chunks.insert(chunk, STORED.decode(&key, &value)?);
                }
                _ => {
                    return Err(STORED.corrupt(format!(
                        "unexpected key {:?}",
                        String::from_utf8_lossy(&key)
                    )))
                }
            }
        }
        let facts = facts
            .ok_or_else(|| STORED.corrupt(format!("{owner} has interactions but no facts")))?;
        let interactions = chunks.into_items(CHUNK, &STORED, &owner)?;
        AccountActivity::restore(facts, interactions)
            .map_err(|reason| STORED.corrupt(format!("{owner}: {reason}")))
    }

    fn weight((): &(), account: &AccountActivity) -> usize {
        BYTES_PER_ACCOUNT + account.interactions.len() * BYTES_PER_INTERACTION
    }

    fn is_flushed((): &(), account: &AccountActivity) -> bool {
        !account.dirty.facts && account.dirty.chunks.is_empty()
    }
}

/// A shared account.
pub(crate) type Shared = keyplan_projection::resident::Shared<(), AccountActivity>;

#[derive(Debug)]
struct Inner {
    accounts: ResidentAccounts<Accounts>,
    /// Why an event could not be applied (its account could not be read back): the next
    /// flush fails with it, so the projection stops before committing past that event.
    failure: Mutex<Option<ProjectionError>>,
}

/// Historical activity of every account; cheap to clone (shared), `Default` is empty.
#[derive(Debug, Clone)]
pub struct ActivityProjection {
    inner: Arc<Inner>,
}

impl Default for ActivityProjection {
    fn default() -> Self {
        Self::with_budget(keyplan_projection::resident::DEFAULT_BUDGET)
    }
}

impl ActivityProjection {
    /// No account yet; accounts beyond `budget` bytes (about) leave memory, least recently
    /// used first, and are read back from the tree when needed.
    pub fn with_budget(budget: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                accounts: ResidentAccounts::new(NAME, budget),
                failure: Mutex::default(),
            }),
        }
    }

    /// Reads accounts back until the memory budget is full (see `ResidentAccounts::warm`): for
    /// a node that just started.
    pub fn warm(&self) {
        self.inner.accounts.warm();
    }

    /// One account, if it has events.
    pub(crate) fn account(&self, tenant: &str, account: &str) -> Option<Shared> {
        self.inner.accounts.get(tenant, account)
    }

    /// A tenant's accounts, by account id.
    pub(crate) fn tenant_accounts(&self, tenant: &str) -> Vec<(String, Shared)> {
        self.inner.accounts.tenant(tenant)
    }

    /// An account's activity, read back from the tree if it is not in memory.
    pub(crate) fn resident<'s>(
        &self,
        tenant: &str,
        account: &str,
        shared: &'s Shared,
    ) -> Result<ResidentRef<'s, (), AccountActivity>, ActivityError> {
        self.inner
            .accounts
            .read(tenant, account, shared)
            .map_err(|e| {
                ActivityError::Unreadable(format!(
                    "the activity read model cannot read account {account}: {e}; rebuild it \
                     with `keyplan projections rebuild activity`"
                ))
            })
    }

    /// How many accounts are in memory, for tests.
    #[cfg(test)]
    pub(crate) fn resident_count(&self) -> usize {
        self.inner.accounts.resident_count()
    }

    /// A deep copy of every account (for tests comparing two instances).
    #[cfg(test)]
    pub(crate) fn snapshot(
        &self,
    ) -> BTreeMap<keyplan_projection::resident::AccountKey, AccountActivity> {
        let mut copy = BTreeMap::new();
        for (tenant, account) in self.inner.accounts.keys() {
            if let Some(shared) = self.account(&tenant, &account) {
                if let Ok(resident) = self.resident(&tenant, &account, &shared) {
                    let activity = (*resident).clone();
                    copy.insert((tenant, account), activity);
                }
            }
        }
        copy
    }
}

impl Projection for ActivityProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Lists the accounts only: each account is read back when first used.
    fn load(&self, tree: &Tree) -> Result<(), ProjectionError> {
        let mut accounts = BTreeMap::new();
        STORED.for_each_account(tree, |key, _| {
            accounts.insert(key, AccountSlot::stored(()));
            Ok(())
        })?;
        self.inner.accounts.reset(tree, accounts);
        *lock(&self.inner.failure) = None;
        Ok(())
    }

    fn apply(&self, event: &ProjectedEvent) {
        let accounts = &self.inner.accounts;
        let (shared, created) = accounts.get_or_insert(&event.tenant, &event.account, || {
            // A new account is stored even if its first event changes nothing here, so
            // that a reloaded projection lists exactly the accounts this one does.
            let mut fresh = AccountActivity::default();
            fresh.dirty.facts = true;
            AccountSlot::new((), fresh)
        });
        match accounts.with_mut(&event.tenant, &event.account, &shared, |(), account| {
            account.apply(event)
        }) {
            Ok(changed) => {
                if changed || created {
                    accounts.mark_dirty(&event.tenant, &event.account);
                }
            }
            Err(e) => {
                lock(&self.inner.failure).get_or_insert(e);
            }
        }
    }

    fn flush(&self, batch: &mut keyplan_projection::Batch) -> Result<(), ProjectionError> {
        if let Some(e) = &*lock(&self.inner.failure) {
            return Err(e.duplicate());
        }
        self.inner.accounts.flush(|(tenant, account), slot| {
            let Some(activity) = &mut slot.state else {
                return Ok(());
            };
            if activity.dirty.facts {
                batch.insert(
                    Stored::key(tenant, account, FACTS),
                    STORED.encode(&activity.facts)?,
                );
            }
            for &chunk in &activity.dirty.chunks {
                batch.insert(
                    Stored::chunk_key(tenant, account, INTERACTIONS, chunk),
                    STORED.encode(&activity.chunk(chunk))?,
                );
            }
            activity.dirty = Default::default();
            Ok(())
        })
    }

    fn committed(&self) {
        self.inner.accounts.confirm();
    }

    /// 2: values without a format byte (the layout shared by the read models,
    /// `keyplan_projection::stored`).
    fn format(&self) -> u32 {
        2
    }

    fn adopt(&self, rebuilt: Self) -> bool {
        self.inner.accounts.adopt(&rebuilt.inner.accounts);
        true
    }

    fn empty(&self) -> Self {
        Self {
            inner: Arc::new(Inner {
                accounts: self.inner.accounts.empty_like(),
                failure: Mutex::default(),
            }),
        }
    }
}
