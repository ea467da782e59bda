//! The compliance projection: per-account fact histories, folded in memory while used and
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
//! at most one partial chunk plus its new facts per flush, never its whole history.
//!
//! Memory (`keyplan_projection::resident`): an account's folded history stays in memory only
//! while it is used, within a budget; what always stays is its [`Tail`], the facts of its
//! last, open chunk. An event for an account whose history is not resident only joins the
//! tail: the history is folded from the chunks and the tail when a query needs it. Start-up
//! reads each account's last chunk, not its history.

use std::collections::BTreeMap;
use std::sync::Arc;

use keyplan_domain::values::Timestamp;
use keyplan_projection::resident::{AccountFold, AccountSlot, ResidentAccounts, Shared};
use keyplan_projection::shared_state::write;
use keyplan_projection::stored::{chunks_from, Stored};
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError, Tree};

use crate::alerts::{Alert, AlertQueue};
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

/// About how many bytes one fact adds to a folded history in memory: the unit of the memory
/// budget (BENCHMARKS.md has the measurement).
const HISTORY_BYTES_PER_FACT: usize = 192;

const WEEK_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// What always stays in memory of an account: its facts from the first chunk that is not
/// known to be full in the tree on.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// Chunks known to be full in the tree: `0..full`, [`CHUNK_FACTS`] facts each.
    full: u32,
    /// The facts after those chunks, in order.
    facts: Vec<Fact>,
    /// How many of `facts` a flush has written.
    flushed: usize,
}

impl Tail {
    /// Facts of the account in all.
    fn len(&self) -> usize {
        self.full as usize * CHUNK_FACTS + self.facts.len()
    }
}

/// How compliance histories are folded, weighed and read back (see
/// `keyplan_projection::resident`).
#[derive(Debug)]
pub(crate) struct Histories;

impl AccountFold for Histories {
    type Meta = Tail;
    type State = AccountHistory;

    fn load(
        tree: &Tree,
        tenant: &str,
        account: &str,
        tail: &Tail,
    ) -> Result<AccountHistory, ProjectionError> {
        let mut history = AccountHistory::default();
        let mut next = 0u32;
        let prefix = format!("{tenant}/{account}/{FACTS}/");
        for item in tree.scan_prefix(&prefix) {
            if next == tail.full {
                break;
            }
            let (key, value) = item?;
            let chunk = STORED.parse_key(&key)?.chunk;
            let facts: Vec<Fact> = STORED.decode(&key, &value)?;
            if chunk != Some((FACTS, next)) || facts.len() != CHUNK_FACTS {
                return Err(STORED.corrupt(format!(
                    "{tenant}/{account}: chunk {next} is missing, misplaced or of the wrong size"
                )));
            }
            for fact in &facts {
                history.apply(fact);
            }
            next += 1;
        }
        if next != tail.full {
            return Err(STORED.corrupt(format!("{tenant}/{account}: chunk {next} is missing")));
        }
        for fact in &tail.facts {
            history.apply(fact);
        }
        Ok(history)
    }

    fn weight(tail: &Tail, _: &AccountHistory) -> usize {
        tail.len() * HISTORY_BYTES_PER_FACT
    }

    fn is_flushed(tail: &Tail, _: &AccountHistory) -> bool {
        tail.flushed == tail.facts.len()
    }

    /// The tree now holds the chunks the flush filled: they leave the tail.
    fn confirmed(tail: &mut Tail) {
        let filled = tail.flushed / CHUNK_FACTS;
        tail.facts.drain(..filled * CHUNK_FACTS);
        tail.flushed -= filled * CHUNK_FACTS;
        tail.full += u32::try_from(filled).unwrap_or(u32::MAX);
    }
}

type Slot = Shared<Tail, AccountHistory>;

/// Compliance histories of every account; cheap to clone (shared).
///
/// Each account has its own lock, so a query on one account (or a tenant) never waits for
/// the whole projection and the runner applying events to another account never waits for a
/// long tenant-wide query.
#[derive(Debug, Clone)]
pub struct ComplianceProjection {
    accounts: Arc<ResidentAccounts<Histories>>,
    /// Accounts whose alert conditions need evaluating (`crate::alerts`): shared with the
    /// instance a rebuild makes, so an adopted rebuild queues every account.
    alert_queue: Arc<AlertQueue>,
}

impl Default for ComplianceProjection {
    fn default() -> Self {
        Self::with_budget(keyplan_projection::resident::DEFAULT_BUDGET)
    }
}

/// The layout of the projection's tree.
const STORED: Stored = Stored::new(NAME);

/// The stored list of an account's facts.
const FACTS: &str = "c";

impl ComplianceProjection {
    /// No account yet; folded histories beyond `budget` bytes (about) leave memory, least
    /// recently used first, and are read back from the tree when needed.
    pub fn with_budget(budget: usize) -> Self {
        Self {
            accounts: Arc::new(ResidentAccounts::new(NAME, budget)),
            alert_queue: Arc::default(),
        }
    }

    /// The accounts queued for alert evaluation.
    pub(crate) fn alert_queue(&self) -> &AlertQueue {
        &self.alert_queue
    }

    /// Every account (tenant, account), in order.
    pub(crate) fn account_keys(&self) -> Vec<(String, String)> {
        self.accounts.keys()
    }

    /// The alert conditions that hold for one account as happened by `now` (see
    /// `crate::alerts`); none for an unknown account.
    pub(crate) fn alerts(
        &self,
        tenant: &str,
        account: &str,
        now: Timestamp,
    ) -> Result<Vec<Alert>, QueryError> {
        let Some(slot) = self.entry(tenant, account) else {
            return Ok(Vec::new());
        };
        self.with_history(tenant, account, &slot, |history| {
            history.alerts(tenant, account, now)
        })
    }

    /// Folds accounts' histories until the memory budget is full (see
    /// `ResidentAccounts::warm`): for a node that just started.
    pub fn warm(&self) {
        self.accounts.warm();
    }

    fn entry(&self, tenant: &str, account: &str) -> Option<Slot> {
        self.accounts.get(tenant, account)
    }

    /// Answers `f` from one account's history, folding it first if it is not in memory.
    fn with_history<R>(
        &self,
        tenant: &str,
        account: &str,
        slot: &Slot,
        f: impl FnOnce(&AccountHistory) -> R,
    ) -> Result<R, QueryError> {
        self.accounts
            .read(tenant, account, slot)
            .map(|history| f(&history))
            .map_err(|e| QueryError::Unreadable(e.to_string()))
    }

    /// Whether the projection has seen any compliance-relevant event of the account.
    pub fn contains(&self, tenant: &str, account: &str) -> bool {
        self.entry(tenant, account).is_some()
    }

    /// One account's compliance as of T; `NotFound` if the account is unknown.
    pub fn account_compliance(
        &self,
        tenant: &str,
        account: &str,
        as_of: AsOf,
    ) -> Result<AccountCompliance, QueryError> {
        self.account_compliance_with(tenant, account, as_of, false)
    }

    /// [`Self::account_compliance`], with each rule's considered interactions when `explain`
    /// (see [`crate::model::RuleCompliance::considered`]).
    pub fn account_compliance_with(
        &self,
        tenant: &str,
        account: &str,
        as_of: AsOf,
        explain: bool,
    ) -> Result<AccountCompliance, QueryError> {
        let slot = self
            .entry(tenant, account)
            .ok_or_else(|| not_found(tenant, account))?;
        self.with_history(tenant, account, &slot, |history| {
            history.compliance(account, &as_of, explain)
        })
    }

    /// Rules counted on track (not late: see [`Share::counted_on_track`]) and active rules of one account, as happened by
    /// `as_of` (the portfolio view's number). `None` if the account is unknown or has no active
    /// rule then: a share of nothing is absent, neither 0 nor 1.
    pub fn account_share(
        &self,
        tenant: &str,
        account: &str,
        as_of: Timestamp,
    ) -> Result<Option<(u32, u32)>, QueryError> {
        let Some(slot) = self.entry(tenant, account) else {
            return Ok(None);
        };
        let share = self.with_history(tenant, account, &slot, |history| {
            history.share(&AsOf::happened_by(as_of), None)
        })?;
        Ok((share.active() > 0).then(|| (share.counted_on_track(), share.active())))
    }

    /// A tenant's compliance as of T, grouped; an unknown tenant has no groups.
    pub fn rollup(
        &self,
        tenant: &str,
        group_by: GroupBy,
        as_of: AsOf,
    ) -> Result<Rollup, QueryError> {
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut total = Share::default();
        let mut overdue = Vec::new();
        for (account, slot) in self.accounts.tenant(tenant) {
            self.with_history(tenant, &account, &slot, |history| {
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
                if group_by == GroupBy::Account
                    && (share.active() > 0 || history.registered_by(&as_of))
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
            })?;
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
        Ok(Rollup {
            groups: groups.into_values().collect(),
            total,
            overdue,
        })
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
            None => self.accounts.tenant(tenant),
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
        for (account, slot) in entries {
            self.with_history(tenant, &account, &slot, |history| {
                for point in &mut points {
                    let view = AsOf {
                        at: point.at,
                        axis: as_of.axis,
                    };
                    point.share.add(history.share(&view, owner));
                }
            })?;
        }
        Ok(points)
    }

    /// The history of one account, for tests comparing two projections.
    #[cfg(test)]
    pub(crate) fn history(&self, tenant: &str, account: &str) -> Option<AccountHistory> {
        let slot = self.entry(tenant, account)?;
        self.with_history(tenant, account, &slot, AccountHistory::clone)
            .ok()
    }

    /// How many histories are in memory, for tests.
    #[cfg(test)]
    pub(crate) fn resident(&self) -> usize {
        self.accounts.resident_count()
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

    /// Reads each account's last chunk (its tail), not its history: histories are folded
    /// when first used. The chunks before the last are checked when the history is folded.
    fn load(&self, tree: &Tree) -> Result<(), ProjectionError> {
        let mut accounts = BTreeMap::new();
        STORED.for_each_account(tree, |(tenant, account), chunks| {
            for (expected, (key, _)) in (0u32..).zip(&chunks) {
                match STORED.parse_key(key)?.chunk {
                    Some((FACTS, index)) if index == expected => {}
                    Some((FACTS, _)) => {
                        return Err(STORED
                            .corrupt(format!("{tenant}/{account}: chunk {expected} is missing")))
                    }
                    _ => {
                        return Err(STORED
                            .corrupt(format!("unexpected key {:?}", String::from_utf8_lossy(key))))
                    }
                }
            }
            let count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
            let Some((last_key, last)) = chunks.last() else {
                return Ok(());
            };
            let facts: Vec<Fact> = STORED.decode(last_key, last)?;
            let tail = if facts.len() == CHUNK_FACTS {
                Tail {
                    full: count,
                    ..Tail::default()
                }
            } else {
                Tail {
                    full: count - 1,
                    flushed: facts.len(),
                    facts,
                }
            };
            accounts.insert((tenant, account), AccountSlot::stored(tail));
            Ok(())
        })?;
        self.accounts.reset(tree, accounts);
        Ok(())
    }

    fn apply(&self, event: &ProjectedEvent) {
        let Some(fact) = Fact::from_event(event) else {
            return;
        };
        let (slot, _) = self
            .accounts
            .get_or_insert(&event.tenant, &event.account, || {
                AccountSlot::new(Tail::default(), AccountHistory::default())
            });
        let mut slot = write(&slot);
        let AccountSlot {
            meta: tail, state, ..
        } = &mut *slot;
        // A history that is not in memory is folded from the chunks and the tail when used.
        if let Some(history) = state {
            history.apply(&fact);
        }
        if tail.flushed == tail.facts.len() {
            self.accounts.mark_dirty(&event.tenant, &event.account);
        }
        tail.facts.push(fact);
        drop(slot);
        self.alert_queue.changed(&event.tenant, &event.account);
    }

    fn flush(&self, batch: &mut keyplan_projection::Batch) -> Result<(), ProjectionError> {
        self.accounts.flush(|(tenant, account), slot| {
            let tail = &mut slot.meta;
            for (index, range) in chunks_from(tail.flushed, tail.facts.len(), CHUNK_FACTS) {
                batch.insert(
                    Stored::chunk_key(tenant, account, FACTS, tail.full + index),
                    STORED.encode(&tail.facts[range])?,
                );
            }
            tail.flushed = tail.facts.len();
            Ok(())
        })
    }

    fn committed(&self) {
        self.accounts.confirm();
    }

    /// 2: chunks under `<tenant>/<account>/c/<chunk>`, values without a format byte (the
    /// layout shared by the read models, `keyplan_projection::stored`).
    fn format(&self) -> u32 {
        2
    }

    fn adopt(&self, rebuilt: Self) -> bool {
        self.accounts.adopt(&rebuilt.accounts);
        self.alert_queue.everything();
        true
    }

    fn empty(&self) -> Self {
        Self {
            accounts: Arc::new(self.accounts.empty_like()),
            alert_queue: self.alert_queue.clone(),
        }
    }
}
