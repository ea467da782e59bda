//! Per-account read-model state that stays in memory only while it is used.
//!
//! Compliance and activity answer from a fold of an account's whole history. Holding every
//! account's fold in memory makes a node's memory grow with every event it ever projected, so
//! [`ResidentAccounts`] keeps, for each account, a small part that is always in memory (`M`:
//! what a flush needs, e.g. the facts not yet written) and the fold itself (`S`) only while it
//! is used, within a memory budget. A fold that is not resident is read back from the
//! projection's tree when a query or an event needs it.
//!
//! # Why evicting never loses anything
//! A fold may be dropped only when the tree holds all of it. Three things make that true:
//! - an account with changes not yet flushed is never evicted (the projection says which are,
//!   through `is_flushed`);
//! - an account flushed into a batch is *in flight* until the runner reports the batch applied
//!   ([`ResidentAccounts::confirm`], from [`crate::Projection::committed`]): a batch that
//!   failed leaves its accounts in flight, so they are never evicted;
//! - loading and evicting one account hold its lock, so a query never reads a fold half
//!   replaced.
//!
//! Without a tree (tests that apply events by hand) nothing is ever evicted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use crate::shared_state::{lock, read, write, DirtyAccounts};
use crate::{ProjectionError, Tree};

/// Tenant and account.
pub type AccountKey = (String, String);

/// The default budget of one projection's resident folds, bytes.
pub const DEFAULT_BUDGET: usize = 64 << 20;

/// One account: the part always in memory, and the fold while resident.
#[derive(Debug)]
pub struct AccountSlot<M, S> {
    /// What stays in memory whatever the budget (small: what a flush needs).
    pub meta: M,
    /// The fold, while resident.
    pub state: Option<S>,
    /// Flushed into a batch that is not yet known to be applied.
    in_flight: bool,
    /// When a query or an event last used the fold (a tick of [`ResidentAccounts`]' clock).
    last_used: AtomicU64,
}

impl<M, S> AccountSlot<M, S> {
    /// An account first seen now, its fold resident (nothing of it is stored yet).
    pub fn new(meta: M, state: S) -> Self {
        Self {
            meta,
            state: Some(state),
            in_flight: false,
            last_used: AtomicU64::new(0),
        }
    }

    /// An account known from the tree, its fold not loaded.
    pub fn stored(meta: M) -> Self {
        Self {
            meta,
            state: None,
            in_flight: false,
            last_used: AtomicU64::new(0),
        }
    }
}

/// A shared account.
pub type Shared<M, S> = Arc<RwLock<AccountSlot<M, S>>>;

/// A shared account of the projection whose folds `F` describes.
pub type SharedOf<F> = Shared<<F as AccountFold>::Meta, <F as AccountFold>::State>;

/// A read guard on a resident fold (see [`ResidentAccounts::read`]).
#[derive(Debug)]
pub struct ResidentRef<'s, M, S>(RwLockReadGuard<'s, AccountSlot<M, S>>);

impl<M, S> std::ops::Deref for ResidentRef<'_, M, S> {
    type Target = S;

    fn deref(&self) -> &S {
        match &self.0.state {
            Some(state) => state,
            // Made only when the fold was resident, and only a writer evicts it.
            None => unreachable!("a ResidentRef is made for a resident fold"),
        }
    }
}

/// What a projection tells [`ResidentAccounts`] about its per-account state.
pub trait AccountFold: Send + Sync + 'static {
    /// The part always in memory.
    type Meta: Send + Sync + 'static;
    /// The fold.
    type State: Send + Sync + 'static;

    /// Reads an account's fold back from the tree (the tree holds all of it: see the module
    /// documentation).
    fn load(
        tree: &Tree,
        tenant: &str,
        account: &str,
        meta: &Self::Meta,
    ) -> Result<Self::State, ProjectionError>;

    /// About how many bytes the fold takes in memory (the budget's unit).
    fn weight(meta: &Self::Meta, state: &Self::State) -> usize;

    /// Whether every change of the account has been written by a flush.
    fn is_flushed(meta: &Self::Meta, state: &Self::State) -> bool;

    /// The batch holding the account's last flush is applied: what the meta kept only until
    /// the tree had it may go.
    fn confirmed(meta: &mut Self::Meta) {
        let _ = meta;
    }
}

/// Every account of one projection, their folds resident within a budget. Cheap to share
/// (`Arc`); a rebuild makes a fresh one with [`ResidentAccounts::empty_like`].
pub struct ResidentAccounts<F: AccountFold> {
    /// The projection's name (in errors).
    name: &'static str,
    accounts: RwLock<BTreeMap<AccountKey, SharedOf<F>>>,
    /// Where evicted folds are read back from; `None` until the runner loads the projection.
    tree: RwLock<Option<Tree>>,
    /// Accounts changed since the last flush.
    dirty: DirtyAccounts,
    /// Accounts flushed into the batch being committed.
    in_flight: Mutex<Vec<SharedOf<F>>>,
    /// Most bytes of resident folds (about) before the least recently used are evicted.
    budget: usize,
    /// Bytes of resident folds, about: exact after each eviction pass, grown by loads.
    resident: AtomicUsize,
    clock: AtomicU64,
}

impl<F: AccountFold> std::fmt::Debug for ResidentAccounts<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidentAccounts")
            .field("name", &self.name)
            .field("budget", &self.budget)
            .field("accounts", &read(&self.accounts).len())
            .finish_non_exhaustive()
    }
}

impl<F: AccountFold> ResidentAccounts<F> {
    /// No account yet, for the projection called `name`; folds beyond `budget` bytes (about)
    /// are evicted.
    pub fn new(name: &'static str, budget: usize) -> Self {
        Self {
            name,
            accounts: RwLock::default(),
            tree: RwLock::default(),
            dirty: DirtyAccounts::default(),
            in_flight: Mutex::default(),
            budget,
            resident: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
        }
    }

    /// A fresh, empty instance with the same budget (for a rebuild).
    pub fn empty_like(&self) -> Self {
        Self::new(self.name, self.budget)
    }

    /// The memory budget, bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// One account, if known.
    pub fn get(&self, tenant: &str, account: &str) -> Option<SharedOf<F>> {
        read(&self.accounts)
            .get(&(tenant.to_owned(), account.to_owned()))
            .cloned()
    }

    /// One account, created by `make` if unknown; `true` if it was created.
    pub fn get_or_insert(
        &self,
        tenant: &str,
        account: &str,
        make: impl FnOnce() -> AccountSlot<F::Meta, F::State>,
    ) -> (SharedOf<F>, bool) {
        if let Some(shared) = self.get(tenant, account) {
            return (shared, false);
        }
        let mut accounts = write(&self.accounts);
        let mut created = false;
        let shared = accounts
            .entry((tenant.to_owned(), account.to_owned()))
            .or_insert_with(|| {
                created = true;
                Arc::new(RwLock::new(make()))
            })
            .clone();
        (shared, created)
    }

    /// A tenant's accounts by id (a range of the sorted map: other tenants are not visited).
    pub fn tenant(&self, tenant: &str) -> Vec<(String, SharedOf<F>)> {
        read(&self.accounts)
            .range((tenant.to_owned(), String::new())..)
            .take_while(|((t, _), _)| t == tenant)
            .map(|((_, a), shared)| (a.clone(), Arc::clone(shared)))
            .collect()
    }

    /// Every account key, in order.
    pub fn keys(&self) -> Vec<AccountKey> {
        read(&self.accounts).keys().cloned().collect()
    }

    /// Notes that an account changed (the next flush writes it).
    pub fn mark_dirty(&self, tenant: &str, account: &str) {
        self.dirty.mark(tenant, account);
    }

    /// A read guard on an account's fold, reading the fold back from the tree first if it is
    /// not resident. Other readers share it; the account's writer waits for it.
    pub fn read<'s>(
        &self,
        tenant: &str,
        account: &str,
        shared: &'s SharedOf<F>,
    ) -> Result<ResidentRef<'s, F::Meta, F::State>, ProjectionError> {
        loop {
            {
                let slot = read(shared);
                if slot.state.is_some() {
                    slot.last_used.store(self.tick(), Ordering::Relaxed);
                    return Ok(ResidentRef(slot));
                }
            }
            let loaded = {
                let mut slot = write(shared);
                let loaded = slot.state.is_none();
                self.make_resident(tenant, account, &mut slot)?;
                loaded
            };
            if loaded {
                self.evict_if_over(Some(shared));
            }
            // Read again: evicted in between only if other folds were used more recently
            // since, which a loop of a few turns outlasts.
        }
    }

    /// Changes an account through `f`, reading its fold back first if it is not resident.
    /// The caller marks it dirty if `f` changed anything.
    pub fn with_mut<R>(
        &self,
        tenant: &str,
        account: &str,
        shared: &SharedOf<F>,
        f: impl FnOnce(&mut F::Meta, &mut F::State) -> R,
    ) -> Result<R, ProjectionError> {
        let mut slot = write(shared);
        let (meta, state) = self.make_resident(tenant, account, &mut slot)?;
        Ok(f(meta, state))
    }

    /// The account's meta and fold, the fold read back from the tree if it was not resident.
    fn make_resident<'s>(
        &self,
        tenant: &str,
        account: &str,
        slot: &'s mut AccountSlot<F::Meta, F::State>,
    ) -> Result<(&'s mut F::Meta, &'s mut F::State), ProjectionError> {
        slot.last_used.store(self.tick(), Ordering::Relaxed);
        let AccountSlot { meta, state, .. } = slot;
        let state = match state.take() {
            Some(resident) => state.insert(resident),
            None => {
                let tree = read(&self.tree)
                    .clone()
                    .ok_or_else(|| ProjectionError::Corrupt {
                        name: self.name.into(),
                        reason: format!(
                        "{tenant}/{account} is not in memory and there is no tree to read it from"
                    ),
                    })?;
                let loaded = F::load(&tree, tenant, account, meta)?;
                self.resident
                    .fetch_add(F::weight(meta, &loaded), Ordering::Relaxed);
                state.insert(loaded)
            }
        };
        Ok((meta, state))
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Hands the accounts changed since the last flush to `write`, one at a time, each under
    /// its lock, and notes them in flight until [`Self::confirm`].
    pub fn flush(
        &self,
        mut write_one: impl FnMut(
            &AccountKey,
            &mut AccountSlot<F::Meta, F::State>,
        ) -> Result<(), ProjectionError>,
    ) -> Result<(), ProjectionError> {
        let dirty = self.dirty.take();
        let mut in_flight = lock(&self.in_flight);
        for key in dirty {
            let Some(shared) = read(&self.accounts).get(&key).cloned() else {
                continue;
            };
            let mut slot = write(&shared);
            write_one(&key, &mut slot)?;
            slot.in_flight = true;
            drop(slot);
            in_flight.push(shared);
        }
        Ok(())
    }

    /// The batch of the last flush is applied: its accounts may be evicted again; then evicts
    /// the least recently used folds beyond the budget.
    pub fn confirm(&self) {
        for shared in std::mem::take(&mut *lock(&self.in_flight)) {
            let mut slot = write(&shared);
            slot.in_flight = false;
            F::confirmed(&mut slot.meta);
        }
        // A full pass: folds grow by events and new accounts start resident, which the
        // running count does not follow.
        self.evict(None);
    }

    /// [`Self::evict`] if the running count of resident bytes is over the budget.
    fn evict_if_over(&self, spare: Option<&SharedOf<F>>) {
        if self.resident.load(Ordering::Relaxed) > self.budget {
            self.evict(spare);
        }
    }

    /// Evicts least recently used folds until the resident ones fit the budget, sparing
    /// `spare` (the fold a caller is using) and every account that is not safe to drop.
    fn evict(&self, spare: Option<&SharedOf<F>>) {
        if read(&self.tree).is_none() {
            return;
        }
        let accounts: Vec<_> = read(&self.accounts).values().cloned().collect();
        let mut total = 0usize;
        let mut candidates = Vec::new();
        for shared in &accounts {
            if spare.is_some_and(|spare| Arc::ptr_eq(spare, shared)) {
                // Its lock is held by the caller, who is using it: it stays.
                continue;
            }
            let Ok(slot) = shared.try_read() else {
                continue;
            };
            if let Some(state) = &slot.state {
                let weight = F::weight(&slot.meta, state);
                total += weight;
                if !slot.in_flight && F::is_flushed(&slot.meta, state) {
                    candidates.push((slot.last_used.load(Ordering::Relaxed), weight, shared));
                }
            }
        }
        candidates.sort_unstable_by_key(|(used, _, _)| *used);
        for (_, weight, shared) in candidates {
            if total <= self.budget {
                break;
            }
            let Ok(mut slot) = shared.try_write() else {
                continue;
            };
            let safe = !slot.in_flight
                && slot
                    .state
                    .as_ref()
                    .is_some_and(|state| F::is_flushed(&slot.meta, state));
            if safe {
                slot.state = None;
                total = total.saturating_sub(weight);
            }
        }
        self.resident.store(total, Ordering::Relaxed);
    }

    /// Replaces every account by `accounts` (just read from `tree`, which folds are read back
    /// from from now on), forgetting every change.
    pub fn reset(
        &self,
        tree: &Tree,
        accounts: BTreeMap<AccountKey, AccountSlot<F::Meta, F::State>>,
    ) {
        let accounts = accounts
            .into_iter()
            .map(|(key, slot)| (key, Arc::new(RwLock::new(slot))))
            .collect();
        *write(&self.accounts) = accounts;
        *write(&self.tree) = Some(tree.clone());
        self.dirty.clear();
        lock(&self.in_flight).clear();
        self.resident.store(0, Ordering::Relaxed);
    }

    /// Takes over `rebuilt`'s accounts, tree and changes (a rebuilt generation replacing this
    /// one), leaving it empty.
    pub fn adopt(&self, rebuilt: &Self) {
        let accounts = std::mem::take(&mut *write(&rebuilt.accounts));
        let tree = write(&rebuilt.tree).take();
        let in_flight = std::mem::take(&mut *lock(&rebuilt.in_flight));
        *write(&self.accounts) = accounts;
        *write(&self.tree) = tree;
        self.dirty.adopt(&rebuilt.dirty);
        *lock(&self.in_flight) = in_flight;
        self.resident.store(
            rebuilt.resident.swap(0, Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    /// Reads folds back, in key order, until the budget is full or every account is resident,
    /// so that a node that just started answers its first queries from memory (a start reads
    /// no fold: the read models serve at once, and this runs beside them). Logs what it did; a
    /// fold that cannot be read is left for the query that needs it to report.
    pub fn warm(&self) {
        let started = std::time::Instant::now();
        let accounts: Vec<_> = read(&self.accounts)
            .iter()
            .map(|(key, shared)| (key.clone(), Arc::clone(shared)))
            .collect();
        let mut loaded = 0usize;
        for ((tenant, account), shared) in accounts {
            if self.resident.load(Ordering::Relaxed) >= self.budget {
                break;
            }
            let mut slot = write(&shared);
            if slot.state.is_some() {
                continue;
            }
            match self.make_resident(&tenant, &account, &mut slot) {
                Ok(_) => loaded += 1,
                Err(e) => {
                    tracing::warn!(projection = self.name, %tenant, %account, error = %e, "cannot read an account back");
                }
            }
        }
        tracing::info!(
            projection = self.name,
            accounts = loaded,
            bytes = self.resident.load(Ordering::Relaxed),
            elapsed = ?started.elapsed(),
            "accounts read back into memory after the start"
        );
    }

    /// How many folds are resident (tests and status).
    pub fn resident_count(&self) -> usize {
        read(&self.accounts)
            .values()
            .filter(|shared| read(shared).state.is_some())
            .count()
    }
}
