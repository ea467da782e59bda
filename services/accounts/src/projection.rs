//! The account-state projection: the current state of every account, folded from the event
//! feed. A projections node serves `AccountService` from it (the ingest side serves it from the
//! repository, which reads its own log).
//!
//! Memory grows with accounts, not with events: an account's state is kept in memory without
//! its interactions' facts ([`AccountState::without_interactions`]: 16 bytes per interaction
//! instead of a few hundred), and the facts live in the projection's sled tree, ordered by
//! `occurred_at`, so that `GetAccount`'s newest interactions are one short range read. What
//! was applied but is not yet on disk stays in memory until the commit after the one that wrote
//! it (the runner applies each flush's batch before the next flush, so by then it is on disk).
//!
//! Stored layout (one sled tree; the first byte of a key says what it holds):
//! - `S tenant/account` -> the account's state without interactions' facts (postcard);
//! - `I tenant/account/ id` -> `occurred_at` of the interaction's content in force (8 bytes), to
//!   find its `T` entry again when a correction moves it;
//! - `T tenant/account/ occurred_at id` -> the interaction's facts (postcard), `occurred_at`
//!   encoded so that bytes sort as times.
//!
//! Neither id may contain '/', so every prefix is unambiguous.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use keyplan_domain::ids::InteractionId;
use keyplan_domain::state::Interaction;
use keyplan_domain::values::Timestamp;
use keyplan_domain::{AccountEvent, AccountState};
use keyplan_projection::shared_state::{read, write};
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError};

/// Projection name (its sled tree).
pub const NAME: &str = "account-state";

/// Key tag of an account's state.
const STATE: u8 = b'S';
/// Key tag of an interaction's `occurred_at`, by id.
const BY_ID: u8 = b'I';
/// Key tag of an interaction's facts, by `occurred_at`.
const BY_TIME: u8 = b'T';

type Key = (String, String);

/// Interactions of one account whose facts may not be on disk yet.
#[derive(Debug, Default)]
struct Recent {
    /// Applied since the last flush.
    unflushed: BTreeMap<InteractionId, Interaction>,
    /// Written by the last flush, whose batch the runner may still be applying.
    flushing: BTreeMap<InteractionId, Interaction>,
}

impl Recent {
    /// The newest content of `id` held here.
    fn get(&self, id: &InteractionId) -> Option<&Interaction> {
        self.unflushed.get(id).or_else(|| self.flushing.get(id))
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// States without interactions' facts.
    accounts: BTreeMap<Key, AccountState>,
    /// States changed since the last flush.
    dirty: HashSet<Key>,
    /// Interactions' facts not yet known to be on disk.
    recent: HashMap<Key, Recent>,
    /// The tree this instance was loaded from and flushes to; `None` before [`Projection::load`]
    /// (then every fact is in `recent`). Under the same lock as the states, so that an online
    /// rebuild swaps both at once and a query never reads one generation's states with the
    /// other's facts.
    tree: Option<sled::Tree>,
}

/// Current account states by tenant and account; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct AccountStateProjection {
    inner: Arc<RwLock<Inner>>,
}

/// `tenant/account`, after a tag.
fn tagged(tag: u8, tenant: &str, account: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + tenant.len() + account.len() + 32);
    key.push(tag);
    key.extend_from_slice(tenant.as_bytes());
    key.push(b'/');
    key.extend_from_slice(account.as_bytes());
    key
}

/// The prefix of every `tag` entry of one account's interactions.
fn interactions_prefix(tag: u8, (tenant, account): &Key) -> Vec<u8> {
    let mut key = tagged(tag, tenant, account);
    key.push(b'/');
    key
}

fn by_id_key(key: &Key, id: &InteractionId) -> Vec<u8> {
    let mut k = interactions_prefix(BY_ID, key);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

/// Big-endian with the sign bit flipped: bytes sort as the times do, negative ones first.
fn time_bytes(at: Timestamp) -> [u8; 8] {
    ((at.as_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

fn by_time_key(key: &Key, at: Timestamp, id: &InteractionId) -> Vec<u8> {
    let mut k = interactions_prefix(BY_TIME, key);
    k.extend_from_slice(&time_bytes(at));
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

fn corrupt(reason: String) -> ProjectionError {
    ProjectionError::Corrupt {
        name: NAME.into(),
        reason,
    }
}

/// Splits a `T` key's suffix (after the account's prefix) into the time and the id.
fn decode_by_time(suffix: &[u8]) -> Result<(Timestamp, InteractionId), ProjectionError> {
    let (time, id) = suffix
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt(format!("interaction key of {} bytes", suffix.len())))?;
    let micros = (u64::from_be_bytes(*time) ^ (1 << 63)) as i64;
    let id = std::str::from_utf8(id)
        .ok()
        .and_then(|id| InteractionId::parse(id).ok())
        .ok_or_else(|| corrupt(format!("interaction id {:?}", String::from_utf8_lossy(id))))?;
    Ok((Timestamp(micros), id))
}

fn decode_facts(bytes: &[u8], id: &InteractionId) -> Result<Interaction, ProjectionError> {
    postcard::from_bytes(bytes).map_err(|e| corrupt(format!("facts of interaction {id}: {e}")))
}

/// The facts of `id` as stored, if they are.
fn stored(
    tree: &sled::Tree,
    key: &Key,
    id: &InteractionId,
) -> Result<Option<Interaction>, ProjectionError> {
    let Some(at) = stored_time(tree, key, id)? else {
        return Ok(None);
    };
    tree.get(by_time_key(key, at, id))?
        .map(|bytes| decode_facts(&bytes, id))
        .transpose()
}

/// `occurred_at` of the stored facts of `id`, if they are stored.
fn stored_time(
    tree: &sled::Tree,
    key: &Key,
    id: &InteractionId,
) -> Result<Option<Timestamp>, ProjectionError> {
    let Some(bytes) = tree.get(by_id_key(key, id))? else {
        return Ok(None);
    };
    let time: [u8; 8] = bytes
        .as_ref()
        .try_into()
        .map_err(|_| corrupt(format!("time of interaction {id}: {} bytes", bytes.len())))?;
    Ok(Some(Timestamp(i64::from_be_bytes(time))))
}

impl AccountStateProjection {
    /// One account's state, if it has any events, with (at least) its `newest` interactions by
    /// `occurred_at` (ties: interaction id), the order in which `GetAccount` lists them;
    /// `interaction_ids` counts them all.
    pub fn get(
        &self,
        tenant: &str,
        account: &str,
        newest: usize,
    ) -> Result<Option<AccountState>, ProjectionError> {
        let inner = read(&self.inner);
        let key = (tenant.to_owned(), account.to_owned());
        let Some(state) = inner.accounts.get(&key) else {
            return Ok(None);
        };
        let mut state = state.clone();
        let mut interactions = BTreeMap::new();
        if let Some(recent) = inner.recent.get(&key) {
            interactions.extend(recent.flushing.clone());
            interactions.extend(recent.unflushed.clone());
        }
        if let Some(tree) = &inner.tree {
            let prefix = interactions_prefix(BY_TIME, &key);
            let mut from_disk = 0;
            let mut boundary = None;
            for item in tree.scan_prefix(&prefix).rev() {
                let (k, v) = item?;
                let (at, id) = decode_by_time(&k[prefix.len()..])?;
                // Stale: a newer content of it is in memory. (Disk entries join the same map,
                // but a scan never meets an id twice: a flush removes an id's old entry.)
                if interactions.contains_key(&id) {
                    continue;
                }
                // Past `newest` entries, only ties of the last one can still be among the
                // newest (ties order by id ascending; this scan goes by id descending).
                if from_disk >= newest && boundary != Some(at) {
                    break;
                }
                boundary = Some(at);
                let facts = decode_facts(&v, &id)?;
                interactions.insert(id, facts);
                from_disk += 1;
            }
        }
        state.restore_interactions(interactions);
        Ok(Some(state))
    }

    /// A tenant's accounts, sorted by id, without interactions' facts.
    pub fn list(&self, tenant: &str) -> Vec<(String, AccountState)> {
        read(&self.inner)
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
        let mut accounts = BTreeMap::new();
        for entry in tree.scan_prefix([STATE]) {
            let (key, value) = entry?;
            let text = std::str::from_utf8(&key[1..]).map_err(|e| corrupt(format!("key: {e}")))?;
            let (tenant, account) = text
                .split_once('/')
                .ok_or_else(|| corrupt(format!("key {text:?}")))?;
            let state: AccountState = postcard::from_bytes(&value)
                .map_err(|e| corrupt(format!("state of {text}: {e}")))?;
            accounts.insert((tenant.to_owned(), account.to_owned()), state);
        }
        *write(&self.inner) = Inner {
            accounts,
            tree: Some(tree.clone()),
            ..Inner::default()
        };
        Ok(())
    }

    fn apply(&self, event: &ProjectedEvent) {
        let key = (event.tenant.clone(), event.account.clone());
        let mut inner = write(&self.inner);
        let Inner {
            accounts,
            dirty,
            recent,
            tree,
        } = &mut *inner;
        accounts
            .entry(key.clone())
            .or_insert_with(AccountState::without_interactions)
            .apply(&event.event);
        let facts = match &event.event {
            AccountEvent::InteractionLogged(e) => {
                Some((e.interaction_id.clone(), Interaction::new(&e.details, 0)))
            }
            AccountEvent::InteractionCorrected(e) => {
                let id = &e.interaction_id;
                let previous = match recent.get(&key).and_then(|r| r.get(id)) {
                    Some(facts) => Some(facts.corrections),
                    None => tree.as_ref().and_then(|tree| {
                        stored(tree, &key, id)
                            .unwrap_or_else(|e| {
                                // `apply` cannot fail (events are facts): the correction is
                                // still shown, its count of corrections may be one short.
                                tracing::error!(
                                    projection = NAME,
                                    interaction = %id,
                                    "reading the corrected interaction back: {e}"
                                );
                                None
                            })
                            .map(|facts| facts.corrections)
                    }),
                };
                // A correction of an interaction never logged is refused by the domain; if one
                // came, there would be nothing to correct, as in `AccountState::apply`.
                previous
                    .map(|corrections| (id.clone(), Interaction::new(&e.details, corrections + 1)))
            }
            _ => None,
        };
        if let Some((id, facts)) = facts {
            recent
                .entry(key.clone())
                .or_default()
                .unflushed
                .insert(id, facts);
        }
        dirty.insert(key);
    }

    /// 2: interactions keep a content hash instead of their text (`AccountState` of format 1
    /// cannot be decoded any more; the runner rebuilds it from the log). 3: `AccountState`
    /// gained its interaction ids (`interaction_ids`, `interactions_dropped`). 4: states are
    /// stored without interactions' facts, which have keys of their own (module docs).
    fn format(&self) -> u32 {
        4
    }

    fn adopt(&self, rebuilt: Self) -> bool {
        let state = std::mem::take(&mut *write(&rebuilt.inner));
        *write(&self.inner) = state;
        true
    }

    fn flush(&self, batch: &mut sled::Batch) -> Result<(), ProjectionError> {
        let mut inner = write(&self.inner);
        let Inner {
            accounts,
            dirty,
            recent,
            tree,
        } = &mut *inner;
        // What the last flush wrote is on disk now: the runner applied its batch before
        // calling this one.
        for r in recent.values_mut() {
            r.flushing = std::mem::take(&mut r.unflushed);
        }
        recent.retain(|_, r| !r.flushing.is_empty());
        for (key, r) in recent.iter() {
            for (id, facts) in &r.flushing {
                if let Some(tree) = tree {
                    if let Some(before) = stored_time(tree, key, id)? {
                        batch.remove(by_time_key(key, before, id));
                    }
                }
                let bytes = postcard::to_allocvec(facts).map_err(|e| corrupt(e.to_string()))?;
                batch.insert(
                    by_id_key(key, id),
                    &facts.occurred_at.as_micros().to_be_bytes(),
                );
                batch.insert(by_time_key(key, facts.occurred_at, id), bytes);
            }
        }
        for key in dirty.drain() {
            if let Some(state) = accounts.get(&key) {
                let bytes = postcard::to_allocvec(state).map_err(|e| corrupt(e.to_string()))?;
                batch.insert(tagged(STATE, &key.0, &key.1), bytes);
            }
        }
        Ok(())
    }
}
