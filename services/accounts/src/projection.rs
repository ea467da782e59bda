//! The account-state projection: the current state of every account, folded from the event
//! feed. A projections node serves `AccountService` from it (the ingest side serves it from the
//! repository, which reads its own log).
//!
//! An account's state is kept without its interactions' facts
//! ([`AccountState::without_interactions`]), and each interaction's facts beside it as one
//! postcard encoding with the two numbers the projection reads (`occurred_at` to pick the
//! newest, the count of corrections to fold the next one): about 220 bytes per interaction in
//! all, against about 400 as `AccountState::interactions` holds them. A query decodes only the
//! interactions it returns (`GetAccount`'s newest).
//!
//! Why not one key per interaction: under sled, measured with `keyplan-bench --scenario apply`, sled
//! then held the memory instead and a rebuild was several times slower (BENCHMARKS.md, "What
//! each read model holds in memory, and three cuts").
//!
//! Stored layout (`keyplan_projection::stored`, shared with the other read models):
//! - `<tenant>/<account>/s` -> the state without interactions' facts;
//! - `<tenant>/<account>/i/<chunk>` -> chunks of [`CHUNK`] records `(interaction id, facts)`, in
//!   the order applied: a log adds a record, a correction adds one more, and the last record of
//!   an id is its content in force. A flush writes the state and the last chunk, not the
//!   account's whole history.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use keyplan_domain::ids::InteractionId;
use keyplan_domain::state::Interaction;
use keyplan_domain::values::Timestamp;
use keyplan_domain::{AccountEvent, AccountState};
use keyplan_projection::runner::RESERVED_PREFIX;
use keyplan_projection::shared_state::{read, write};
use keyplan_projection::stored::{LoadedChunks, Stored};
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError};
use serde::{Deserialize, Serialize};

/// Projection name (its tree in the read models' database).
pub const NAME: &str = "account-state";

type Key = (String, String);

/// One interaction's facts, encoded.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Facts {
    /// `Interaction::occurred_at`: what the newest are picked by.
    occurred_at: Timestamp,
    /// `Interaction::corrections`: what the next correction counts from.
    corrections: u32,
    /// The [`Interaction`], postcard.
    #[serde(with = "serde_bytes")]
    encoded: Box<[u8]>,
}

impl Facts {
    fn new(interaction: &Interaction) -> Result<Self, ProjectionError> {
        Ok(Self {
            occurred_at: interaction.occurred_at,
            corrections: interaction.corrections,
            encoded: postcard::to_allocvec(interaction)
                .map_err(|e| corrupt(format!("encoding an interaction: {e}")))?
                .into_boxed_slice(),
        })
    }

    fn decode(&self, id: &InteractionId) -> Result<Interaction, ProjectionError> {
        postcard::from_bytes(&self.encoded)
            .map_err(|e| corrupt(format!("facts of interaction {id}: {e}")))
    }
}

/// Records per stored chunk of an account's interactions.
pub const CHUNK: usize = 128;

/// What the stored keys' parts are called.
const STATE: &str = "s";
const RECORDS: &str = "i";

/// The layout of the projection's tree.
const STORED: Stored = Stored::new(NAME);

/// A stored record: an interaction's facts as logged or corrected.
type Record = (InteractionId, Facts);

/// One account.
#[derive(Clone, Debug, Default)]
struct Account {
    /// Without interactions' facts.
    state: AccountState,
    /// Every interaction's facts in force.
    interactions: BTreeMap<InteractionId, Facts>,
    /// Records stored or to be stored so far (the next record's number).
    records: usize,
    /// The records of the last chunk, which is not full: the next flush rewrites it with the
    /// new records appended.
    open_chunk: Vec<Record>,
    /// Records applied since the last flush.
    pending: Vec<Record>,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: BTreeMap<Key, Account>,
    dirty: HashSet<Key>,
}

/// Current account states by tenant and account; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct AccountStateProjection {
    inner: Arc<RwLock<Inner>>,
}

fn corrupt(reason: String) -> ProjectionError {
    STORED.corrupt(reason)
}

impl AccountStateProjection {
    /// One account's state, if it has any events, with the facts of its `newest` interactions
    /// by `occurred_at` (ties: interaction id), the order in which `GetAccount` lists them;
    /// `interaction_ids` counts them all.
    pub fn get(
        &self,
        tenant: &str,
        account: &str,
        newest: usize,
    ) -> Result<Option<AccountState>, ProjectionError> {
        let inner = read(&self.inner);
        let Some(entry) = inner.accounts.get(&(tenant.to_owned(), account.to_owned())) else {
            return Ok(None);
        };
        let order = |a: &(&InteractionId, &Facts), b: &(&InteractionId, &Facts)| {
            b.1.occurred_at
                .cmp(&a.1.occurred_at)
                .then_with(|| a.0.cmp(b.0))
        };
        let mut chosen: Vec<_> = entry.interactions.iter().collect();
        if chosen.len() > newest {
            if newest == 0 {
                chosen.clear();
            } else {
                chosen.select_nth_unstable_by(newest - 1, order);
                chosen.truncate(newest);
            }
        }
        let interactions = chosen
            .into_iter()
            .map(|(id, facts)| Ok((id.clone(), facts.decode(id)?)))
            .collect::<Result<_, ProjectionError>>()?;
        let mut state = entry.state.clone();
        state.restore_interactions(interactions);
        Ok(Some(state))
    }

    /// A tenant's accounts, sorted by id, without interactions' facts.
    pub fn list(&self, tenant: &str) -> Vec<(String, AccountState)> {
        read(&self.inner)
            .accounts
            .range((tenant.to_owned(), String::new())..)
            .take_while(|((t, _), _)| t == tenant)
            .map(|((_, a), s)| (a.clone(), s.state.clone()))
            .collect()
    }
}

impl Projection for AccountStateProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(&self, tree: &keyplan_projection::Tree) -> Result<(), ProjectionError> {
        let mut states = BTreeMap::new();
        let mut chunks: BTreeMap<Key, LoadedChunks<Record>> = BTreeMap::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            if key.first() == Some(&RESERVED_PREFIX) {
                continue;
            }
            let parsed = STORED.parse_key(&key)?;
            let owner = (parsed.tenant.to_owned(), parsed.account.to_owned());
            match (parsed.part, parsed.chunk) {
                (STATE, None) => {
                    states.insert(owner, STORED.decode::<AccountState>(&key, &value)?);
                }
                (_, Some((RECORDS, index))) => chunks
                    .entry(owner)
                    .or_default()
                    .insert(index, STORED.decode(&key, &value)?),
                _ => {
                    return Err(corrupt(format!(
                        "unexpected key {:?}",
                        String::from_utf8_lossy(&key)
                    )))
                }
            }
        }
        let mut accounts = BTreeMap::new();
        for (key, state) in states {
            let records = match chunks.remove(&key) {
                Some(loaded) => {
                    loaded.into_items(CHUNK, &STORED, &format!("{}/{}", key.0, key.1))?
                }
                None => Vec::new(),
            };
            let mut account = Account {
                state,
                records: records.len(),
                ..Account::default()
            };
            let open = records.len() % CHUNK;
            account.open_chunk = records[records.len() - open..].to_vec();
            // Applied in order: the last record of an id is its content in force.
            account.interactions.extend(records);
            accounts.insert(key, account);
        }
        if let Some((key, _)) = chunks.into_iter().next() {
            return Err(corrupt(format!(
                "{}/{}: interactions stored without a state",
                key.0, key.1
            )));
        }
        *write(&self.inner) = Inner {
            accounts,
            dirty: HashSet::new(),
        };
        Ok(())
    }

    fn apply(&self, event: &ProjectedEvent) {
        let key = (event.tenant.clone(), event.account.clone());
        let mut inner = write(&self.inner);
        let account = inner
            .accounts
            .entry(key.clone())
            .or_insert_with(|| Account {
                state: AccountState::without_interactions(),
                ..Account::default()
            });
        account.state.apply(&event.event);
        let changed = match &event.event {
            AccountEvent::InteractionLogged(e) => {
                Some((e.interaction_id.clone(), Interaction::new(&e.details, 0)))
            }
            // A correction of an interaction never logged is refused by the domain; if one
            // came, there would be nothing to correct, as in `AccountState::apply`.
            AccountEvent::InteractionCorrected(e) => {
                account.interactions.get(&e.interaction_id).map(|before| {
                    (
                        e.interaction_id.clone(),
                        Interaction::new(&e.details, before.corrections + 1),
                    )
                })
            }
            _ => None,
        };
        if let Some((id, interaction)) = changed {
            match Facts::new(&interaction) {
                Ok(facts) => {
                    account.pending.push((id.clone(), facts.clone()));
                    account.records += 1;
                    account.interactions.insert(id, facts);
                }
                // Encoding a value in memory does not fail; `apply` cannot (events are facts).
                Err(e) => tracing::error!(projection = NAME, interaction = %id, "{e}"),
            }
        }
        inner.dirty.insert(key);
    }

    /// 2: interactions keep a content hash instead of their text (`AccountState` of format 1
    /// cannot be decoded any more; the runner rebuilds it from the log). 3: `AccountState`
    /// gained its interaction ids (`interaction_ids`, `interactions_dropped`). 4: a
    /// state without interactions' facts, and each interaction's facts encoded, in chunks of
    /// records (module docs).
    fn format(&self) -> u32 {
        4
    }

    fn adopt(&self, rebuilt: Self) -> bool {
        let state = std::mem::take(&mut *write(&rebuilt.inner));
        *write(&self.inner) = state;
        true
    }

    fn flush(&self, batch: &mut keyplan_projection::Batch) -> Result<(), ProjectionError> {
        let mut inner = write(&self.inner);
        let Inner { accounts, dirty } = &mut *inner;
        for key in dirty.drain() {
            let Some(account) = accounts.get_mut(&key) else {
                continue;
            };
            batch.insert(
                Stored::key(&key.0, &key.1, STATE),
                STORED.encode(&account.state)?,
            );
            // The records before `pending` fill `open_chunk` up to the chunk boundary.
            let mut first = account.records - account.pending.len();
            let mut pending = std::mem::take(&mut account.pending).into_iter();
            while pending.len() > 0 {
                let index = u32::try_from(first / CHUNK).unwrap_or(u32::MAX);
                let room = CHUNK - account.open_chunk.len();
                let before = pending.len();
                account.open_chunk.extend(pending.by_ref().take(room));
                first += before - pending.len();
                batch.insert(
                    Stored::chunk_key(&key.0, &key.1, RECORDS, index),
                    STORED.encode(&account.open_chunk)?,
                );
                if account.open_chunk.len() >= CHUNK {
                    account.open_chunk.clear();
                }
            }
        }
        Ok(())
    }
}
