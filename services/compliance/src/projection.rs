//! The compliance projection: per-account fact histories, kept in memory for queries and
//! persisted as append-only chunks of facts.
//!
//! Queries are answered at request time from the histories (see the `history` module) rather
//! than from precomputed statuses, because statuses depend on the instant asked about and on
//! the axis: precomputing "now" would leave every as-of question unanswerable.
//!
//! Storage (`keyplan_projection::stored`): one key per chunk of at most [`CHUNK_FACTS`]
//! facts of one account, `<tenant>/<account>/c/<chunk>`, valued `postcard(facts)`.
//! A flush appends the facts applied since the previous flush: it rewrites the account's last
//! chunk while that one is not full and starts new chunks after that, so a busy account costs
//! at most one partial chunk plus its new facts per flush, never its whole history. Loading
//! replays the chunks in order.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use keyplan_domain::values::Timestamp;
use keyplan_projection::runner::RESERVED_PREFIX;
use keyplan_projection::shared_state::{read, write, DirtyAccounts};
use keyplan_projection::stored::{LoadedChunks, Stored};
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError};

use crate::error::QueryError;
use crate::facts::Fact;
use crate::history::AccountHistory;
use crate::model::*;

/// Projection name (its tree in the read models' database).
pub const NAME: &str = "compliance";

/// Most facts per stored chunk: bounds what one flush rewrites for an account.
pub const CHUNK_FACTS: usize = 128;

/// Most points of a trend (two years of weeks).
pub const MAX_TREND_WEEKS: u32 = 104;

const WEEK_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

type Key = (String, String);

/// One account: its history, and what of it is not yet persisted.
#[derive(Debug, Default)]
struct Entry {
    history: AccountHistory,
    /// Facts applied since the last flush.
    pending: Vec<Fact>,
    /// Chunks written so far (the next new chunk's index).
    chunks: u32,
    /// The facts of the last written chunk while it holds fewer than [`CHUNK_FACTS`]: the next
    /// flush rewrites that chunk with the new facts appended.
    open_chunk: Vec<Fact>,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: BTreeMap<Key, Arc<RwLock<Entry>>>,
}

/// Compliance histories of every account; cheap to clone (shared).
///
/// The map of accounts and each account have their own lock, so a query on one account (or a
/// tenant) never waits for the whole projection and the runner applying events to another
/// account never waits for a long tenant-wide query.
#[derive(Debug, Clone, Default)]
pub struct ComplianceProjection {
    inner: Arc<RwLock<Inner>>,
    dirty: Arc<DirtyAccounts>,
}

/// The layout of the projection's tree.
const STORED: Stored = Stored::new(NAME);

/// The stored list of an account's facts.
const FACTS: &str = "c";

impl ComplianceProjection {
    fn entry(&self, tenant: &str, account: &str) -> Option<Arc<RwLock<Entry>>> {
        read(&self.inner)
            .accounts
            .get(&(tenant.to_owned(), account.to_owned()))
            .cloned()
    }

    /// A tenant's accounts by id (a range of the sorted map: other tenants are not visited).
    fn tenant_entries(&self, tenant: &str) -> Vec<(String, Arc<RwLock<Entry>>)> {
        read(&self.inner)
            .accounts
            .range((tenant.to_owned(), String::new())..)
            .take_while(|((t, _), _)| t == tenant)
            .map(|((_, a), e)| (a.clone(), Arc::clone(e)))
            .collect()
    }

    /// Whether the projection has seen any compliance-relevant event of the account.
    pub fn contains(&self, tenant: &str, account: &str) -> bool {
        self.entry(tenant, account).is_some()
    }

    /// One account's compliance as of T; `None` if the account is unknown.
    pub fn account_compliance(
        &self,
        tenant: &str,
        account: &str,
        as_of: AsOf,
    ) -> Option<AccountCompliance> {
        let entry = self.entry(tenant, account)?;
        let entry = read(&entry);
        Some(entry.history.compliance(account, &as_of))
    }

    /// Rules counted on track (not late: see [`Share::counted_on_track`]) and active rules of one account, as happened by
    /// `as_of` (the portfolio view's number). `None` if the account is unknown or has no active
    /// rule then: a share of nothing is absent, neither 0 nor 1.
    pub fn account_share(
        &self,
        tenant: &str,
        account: &str,
        as_of: Timestamp,
    ) -> Option<(u32, u32)> {
        let entry = self.entry(tenant, account)?;
        let share = read(&entry).history.share(&AsOf::happened_by(as_of), None);
        (share.active() > 0).then(|| (share.counted_on_track(), share.active()))
    }

    /// A tenant's compliance as of T, grouped; an unknown tenant has no groups.
    pub fn rollup(&self, tenant: &str, group_by: GroupBy, as_of: AsOf) -> Rollup {
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut total = Share::default();
        let mut overdue = Vec::new();
        for (account, entry) in self.tenant_entries(tenant) {
            let entry = read(&entry);
            let history = &entry.history;
            let mut share = Share::default();
            for e in history.evaluations(&as_of) {
                share.count(e.status, e.past_due());
                if group_by == GroupBy::Owner {
                    let owner = e.definition.owner.as_str();
                    let group = groups.entry(owner.to_owned()).or_insert_with(|| Group {
                        key: owner.to_owned(),
                        label: String::new(),
                        share: Share::default(),
                    });
                    if group.label.is_empty() {
                        history.member_name(owner).clone_into(&mut group.label);
                    }
                    group.share.count(e.status, e.past_due());
                }
                if e.past_due() {
                    overdue.push(history.overdue_line(&e, &account));
                }
            }
            total.add(share);
            if group_by == GroupBy::Account && (share.active() > 0 || history.registered_by(&as_of))
            {
                groups.insert(
                    account.clone(),
                    Group {
                        key: account.clone(),
                        label: history.name().to_owned(),
                        share,
                    },
                );
            }
        }
        if group_by == GroupBy::Tenant {
            groups.insert(
                tenant.to_owned(),
                Group {
                    key: tenant.to_owned(),
                    label: tenant.to_owned(),
                    share: total,
                },
            );
        }
        sort_overdue(&mut overdue);
        Rollup {
            groups: groups.into_values().collect(),
            total,
            overdue,
        }
    }

    /// Weekly points ending at T: the counts at T - 7·i days, i = weeks-1 .. 0, each on T's
    /// axis at its own instant; for one account (else the tenant) and one owner (else all).
    pub fn trend(
        &self,
        tenant: &str,
        account: Option<&str>,
        owner: Option<&str>,
        weeks: u32,
        as_of: AsOf,
    ) -> Result<Vec<TrendPoint>, QueryError> {
        if !(1..=MAX_TREND_WEEKS).contains(&weeks) {
            return Err(QueryError::invalid(
                "weeks",
                format!("must be between 1 and {MAX_TREND_WEEKS}, got {weeks}"),
            ));
        }
        let entries = match account {
            Some(account) => vec![(
                account.to_owned(),
                self.entry(tenant, account)
                    .ok_or_else(|| not_found(tenant, account))?,
            )],
            None => self.tenant_entries(tenant),
        };
        let instants: Vec<Timestamp> = (0..weeks)
            .rev()
            .map(|i| Timestamp(as_of.at.0.saturating_sub(i64::from(i) * WEEK_MICROS)))
            .collect();
        let mut points: Vec<TrendPoint> = instants
            .iter()
            .map(|&at| TrendPoint {
                at,
                share: Share::default(),
            })
            .collect();
        // Account by account (one lock each), every point.
        for (_, entry) in entries {
            let entry = read(&entry);
            for point in &mut points {
                let view = AsOf {
                    at: point.at,
                    axis: as_of.axis,
                };
                point.share.add(entry.history.share(&view, owner));
            }
        }
        Ok(points)
    }

    /// The history of one account, for tests comparing two projections.
    #[cfg(test)]
    pub(crate) fn history(&self, tenant: &str, account: &str) -> Option<AccountHistory> {
        self.entry(tenant, account)
            .map(|e| read(&e).history.clone())
    }

    /// Every account key, for tests.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> Vec<(String, String)> {
        read(&self.inner).accounts.keys().cloned().collect()
    }
}

/// The NOT_FOUND answer for an account without events.
pub(crate) fn not_found(tenant: &str, account: &str) -> QueryError {
    QueryError::NotFound(format!(
        "account {account} of tenant {tenant} has no events in the compliance read model; \
         check the ids, or pass min_position to wait for a write you just made"
    ))
}

impl Projection for ComplianceProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(&self, tree: &keyplan_projection::Tree) -> Result<(), ProjectionError> {
        let mut chunks: BTreeMap<Key, LoadedChunks<Fact>> = BTreeMap::new();
        for item in tree.iter() {
            let (key, value) = item?;
            if key.first() == Some(&RESERVED_PREFIX) {
                continue;
            }
            let parsed = STORED.parse_key(&key)?;
            let Some((FACTS, index)) = parsed.chunk else {
                return Err(STORED.corrupt(format!(
                    "unexpected key {:?}",
                    String::from_utf8_lossy(&key)
                )));
            };
            chunks
                .entry((parsed.tenant.to_owned(), parsed.account.to_owned()))
                .or_default()
                .insert(index, STORED.decode(&key, &value)?);
        }
        let mut accounts = BTreeMap::new();
        for (key, loaded) in chunks {
            let facts = loaded.into_items(CHUNK_FACTS, &STORED, &format!("{}/{}", key.0, key.1))?;
            let mut entry = Entry::default();
            for fact in &facts {
                entry.history.apply(fact);
            }
            entry.chunks = u32::try_from(facts.len().div_ceil(CHUNK_FACTS)).unwrap_or(u32::MAX);
            let open = facts.len() % CHUNK_FACTS;
            let mut facts = facts;
            entry.open_chunk = facts.split_off(facts.len() - open);
            accounts.insert(key, Arc::new(RwLock::new(entry)));
        }
        write(&self.inner).accounts = accounts;
        self.dirty.clear();
        Ok(())
    }

    fn apply(&self, event: &ProjectedEvent) {
        let Some(fact) = Fact::from_event(event) else {
            return;
        };
        let key = (event.tenant.clone(), event.account.clone());
        let existing = read(&self.inner).accounts.get(&key).cloned();
        let entry = match existing {
            Some(entry) => entry,
            None => Arc::clone(write(&self.inner).accounts.entry(key.clone()).or_default()),
        };
        let mut entry = write(&entry);
        entry.history.apply(&fact);
        if entry.pending.is_empty() {
            self.dirty.mark(&event.tenant, &event.account);
        }
        entry.pending.push(fact);
    }

    fn flush(&self, batch: &mut keyplan_projection::Batch) -> Result<(), ProjectionError> {
        for key in self.dirty.take() {
            let Some(entry) = self.entry(&key.0, &key.1) else {
                continue;
            };
            let mut entry = write(&entry);
            if entry.pending.is_empty() {
                continue;
            }
            let mut pending = std::mem::take(&mut entry.pending).into_iter();
            loop {
                let index = if entry.open_chunk.is_empty() {
                    entry.chunks += 1;
                    entry.chunks - 1
                } else {
                    entry.chunks - 1
                };
                let room = CHUNK_FACTS - entry.open_chunk.len();
                entry.open_chunk.extend(pending.by_ref().take(room));
                batch.insert(
                    Stored::chunk_key(&key.0, &key.1, FACTS, index),
                    STORED.encode(&entry.open_chunk)?,
                );
                if entry.open_chunk.len() >= CHUNK_FACTS {
                    entry.open_chunk.clear();
                }
                if pending.len() == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// 2: chunks under `<tenant>/<account>/c/<chunk>`, values without a format byte (the
    /// layout shared by the read models, `keyplan_projection::stored`).
    fn format(&self) -> u32 {
        2
    }

    fn adopt(&self, rebuilt: Self) -> bool {
        let accounts = std::mem::take(&mut write(&rebuilt.inner).accounts);
        write(&self.inner).accounts = accounts;
        self.dirty.adopt(&rebuilt.dirty);
        true
    }
}
