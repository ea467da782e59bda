//! The timeline projection: one entry per event, per account, kept in the store under the keys
//! a page reads, so that a page is one range read whatever the size of the log, and the
//! projection's memory grows with accounts and what they name, not with events.
//!
//! # In the store
//! Per account (never a scan over all accounts for a one-account query). Ids never contain
//! '/', so the keys are unambiguous; none starts with byte 0 (the runner's keys).
//! - `t/<tenant>/<account>/<sort key>`: the entry (postcard [`StoredEntry`]; its summary a
//!   template naming people and things by reference, see `crate::names`), under its
//!   `(occurred_at, position)` as [`Stored::sort_key`] (16 bytes): the timeline's order, so a page of the
//!   account is one range read from either end. An entry is written once and never rewritten;
//!   a later correction writes a `k/` key, a late rename an `n/` key;
//! - `s/<tenant>/<account>/<subject>/<sort key>`: empty, one per subject (plan, stakeholder,
//!   person, opportunity) an entry concerns, the subject as its name key: a scoped page reads
//!   this range and then each entry it names under `t/`;
//! - `p/<tenant>/<account>/<position, 8 bytes big endian>`: the entry's `occurred_at` (8
//!   bytes, big endian): position order, for a watch's catch-up;
//! - `k/<tenant>/<account>/<position, 16 hex digits>`: the position of the correction that superseded the
//!   entry at `position` (8 bytes, big endian);
//! - `h/<tenant>/<account>`: the account's [`Head`] (its last position and who recorded in it);
//! - `x/<tenant>/<account>/<interaction id>`: an interaction's latest content
//!   ([`InteractionInfo`]), read back only when a correction says what it changed;
//! - `n/<tenant>/<account>/<name key>`: one subject's naming facts (postcard
//!   `Vec<names::Fact>`, by business time), rewritten when it gains one;
//! - `d/<tenant>/<account>/<kind>/<id>`: one directory item, rewritten when it changes.
//!
//! A start reads `h/`, `d/`, `n/` and `k/` only: nothing per event but corrections.
//!
//! # In memory, per account
//! - the head, the directory (without interactions already flushed: they are the largest
//!   part of it, and only a correction needs one), the name histories, and which entry each
//!   correction superseded: what grows with the account's people, things and corrections;
//! - `recent`: the entries applied since the flush before the last one. The runner writes a
//!   flush's batch before it applies the next event, so at each flush the entries of the
//!   previous one are in the store and leave memory; until then a page reads them here
//!   (read-your-writes). A projection that was never loaded from a tree keeps every entry
//!   here (tests, and a projection without a store);
//! - a broadcast channel of new positions, only while someone watches the account.
//!
//! What this costs in memory, in rebuilds and in page latency is in BENCHMARKS.md.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use keyplan_domain::ids::*;
use keyplan_domain::values::Timestamp;
use keyplan_domain::AccountEvent;
use keyplan_projection::shared_state::{read, write, DirtyAccounts};
use keyplan_projection::stored::Stored;
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError, Tree};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::directory::{DirItem, DirKey, Directory, InteractionInfo, SubjectKey};
use crate::error::TimelineError;
use crate::names::{self, Fact, NameHistory, NameKey};
use crate::query::{type_index, Cursor, Order, Scope, TimelineQuery};

/// Projection name (its tree in the read models' database).
pub const NAME: &str = "timeline";

/// The stored format ([`Projection::format`]). 3: one key per entry by business time, with
/// subject and position indexes (format 2 stored chunks of 32 entries in position order, and
/// kept every entry's sort and filter fields in memory).
const FORMAT: u32 = 3;

/// Encoding and errors for this projection's stored values.
const STORED: Stored = Stored::new(NAME);

/// Live entries buffered per watched account before a slow watcher lags (and then catches up
/// from the stored entries instead of being dropped).
const LIVE_BUFFER: usize = 1024;

/// What an entry concerns, by kind; each list sorted and free of duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subjects {
    /// Account plans.
    pub plan_ids: Vec<String>,
    /// Customer stakeholders.
    pub stakeholder_ids: Vec<String>,
    /// Supplier people.
    pub person_ids: Vec<String>,
    /// Opportunities.
    pub opportunity_ids: Vec<String>,
}

/// One event of an account, as the timeline shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineEntry {
    /// Global position.
    pub position: u64,
    /// Version in the account's stream.
    pub stream_version: u64,
    /// Event id.
    pub event_id: Uuid,
    /// Event type name, e.g. `"InteractionLogged"`.
    pub event_type: &'static str,
    /// Who caused it.
    pub actor: String,
    /// Business time.
    pub occurred_at: Timestamp,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// One English sentence, naming people and things as they were at `occurred_at`
    /// (according to everything known when the entry is read).
    pub summary: String,
    /// What it concerns.
    pub subjects: Subjects,
    /// For a correction: the position of the entry it supersedes.
    pub corrects_position: Option<u64>,
    /// For a superseded entry: the position of the correction that superseded it.
    pub corrected_by_position: Option<u64>,
}

/// One page of a timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelinePage {
    /// The entries, in the query's order.
    pub entries: Vec<TimelineEntry>,
    /// Where the next page starts, if more entries matched.
    pub next: Option<Cursor>,
    /// The account's latest position that the page reflects.
    pub last_position: u64,
}

/// An entry as stored: self-contained (no interned ids), so the format does not
/// depend on the order things were interned in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    position: u64,
    stream_version: u64,
    event_id: [u8; 16],
    /// Index in [`AccountEvent::TYPES`].
    event_type: u8,
    actor: String,
    occurred_at: i64,
    recorded_at: i64,
    /// A template: names are references, resolved when the entry is read.
    summary: String,
    subjects: Vec<SubjectKey>,
    corrects: Option<u64>,
}

type SortKey = (i64, u64);

impl StoredEntry {
    /// Its position (tests read stored entries).
    #[cfg(test)]
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    fn sort_key(&self) -> SortKey {
        (self.occurred_at, self.position)
    }

    /// Whether the entry is of one of the types in `mask` (0: any) and by `actor` (if given).
    fn passes(&self, mask: u64, actor: Option<&str>) -> bool {
        let typed = mask == 0 || mask & (1 << self.event_type) != 0;
        typed && actor.is_none_or(|a| a == self.actor)
    }

    fn in_scope(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Account => true,
            Scope::Subject(subject) => self.subjects.contains(subject),
        }
    }
}

/// What the store keeps of an account besides its entries, directory and names: read at
/// every start, rewritten by each flush that writes entries of the account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    /// The position of the account's latest entry (0: none).
    last_position: u64,
    /// Everyone who recorded an entry here, so that a filter on anybody else answers at once.
    actors: BTreeSet<String>,
}

/// One account's timeline as far as memory holds it (see the module docs).
#[derive(Default)]
struct AccountTimeline {
    head: Head,
    /// Which later correction superseded an entry: position -> position.
    corrected_by: HashMap<u64, u64>,
    /// Pairs of `corrected_by` since the last flush: what the next flush writes under `k/`.
    corrections: Vec<(u64, u64)>,
    /// Entries not yet known to be in the store, in position order.
    recent: Vec<StoredEntry>,
    /// `recent[..written]` went into the last flush's batch.
    written: usize,
    directory: Directory,
    /// Directory items changed since the last flush.
    touched: BTreeSet<DirKey>,
    /// What each subject was called, by business time: the summaries are resolved with it.
    names: NameHistory,
    /// Subjects whose naming facts changed since the last flush.
    names_touched: BTreeSet<NameKey>,
    /// The content of each interaction logged or corrected since the last flush, in position
    /// order: what the next flush writes under `x/`.
    interactions: Vec<(InteractionId, InteractionInfo)>,
    /// Present while someone watches the account: the position of each new entry. Watchers
    /// read the entry itself when they send it, so that it names things as known then.
    live: Option<broadcast::Sender<u64>>,
}

impl AccountTimeline {
    fn last_position(&self) -> u64 {
        self.head.last_position
    }

    /// Entries at this position or later are read from `recent`, not from the store (which
    /// may hold some of them already).
    fn recent_from(&self) -> u64 {
        self.recent.first().map_or(u64::MAX, |e| e.position)
    }

    /// Appends an entry; `false` (and nothing changed) if it is out of position order or of
    /// an unknown type.
    fn push(&mut self, entry: StoredEntry) -> bool {
        if entry.position <= self.last_position()
            || usize::from(entry.event_type) >= AccountEvent::TYPES.len()
        {
            return false;
        }
        self.head.last_position = entry.position;
        if !self.head.actors.contains(&entry.actor) {
            self.head.actors.insert(entry.actor.clone());
        }
        if let Some(corrected) = entry.corrects {
            self.corrected_by.insert(corrected, entry.position);
            self.corrections.push((corrected, entry.position));
        }
        self.recent.push(entry);
        true
    }

    /// The entry as a page shows it, its names resolved as of its business time.
    fn view(&self, entry: StoredEntry) -> TimelineEntry {
        let mut subjects = Subjects::default();
        for key in entry.subjects {
            match key {
                SubjectKey::Plan(id) => subjects.plan_ids.push(id.to_string()),
                SubjectKey::Stakeholder(id) => subjects.stakeholder_ids.push(id.to_string()),
                SubjectKey::Person(id) => subjects.person_ids.push(id.to_string()),
                SubjectKey::Opportunity(id) => subjects.opportunity_ids.push(id.to_string()),
            }
        }
        TimelineEntry {
            position: entry.position,
            stream_version: entry.stream_version,
            event_id: Uuid::from_bytes(entry.event_id),
            event_type: AccountEvent::TYPES
                .get(usize::from(entry.event_type))
                .copied()
                .unwrap_or(""),
            actor: entry.actor,
            occurred_at: Timestamp(entry.occurred_at),
            recorded_at: Timestamp(entry.recorded_at),
            summary: self
                .names
                .resolve(&entry.summary, (entry.occurred_at, entry.position)),
            subjects,
            corrects_position: entry.corrects,
            corrected_by_position: self.corrected_by.get(&entry.position).copied(),
        }
    }
}

/// One account's entries in the store, read for one query.
struct StoredTimeline<'a> {
    tree: &'a Tree,
    tenant: &'a str,
    account: &'a str,
}

impl<'a> StoredTimeline<'a> {
    fn unreadable(&self, reason: String) -> TimelineError {
        TimelineError::Unreadable {
            tenant: self.tenant.to_owned(),
            account: self.account.to_owned(),
            reason,
        }
    }

    fn read_failed(&self, error: ProjectionError) -> TimelineError {
        self.unreadable(format!("reading the timeline: {error}"))
    }

    fn decode(&self, key: &[u8], bytes: &[u8]) -> Result<StoredEntry, TimelineError> {
        let entry: StoredEntry = postcard::from_bytes(bytes).map_err(|e| {
            self.unreadable(format!("entry {} does not decode: {e}", key_text(key)))
        })?;
        if usize::from(entry.event_type) >= AccountEvent::TYPES.len() {
            return Err(
                self.unreadable(format!("entry {} has an unknown event type", key_text(key)))
            );
        }
        Ok(entry)
    }

    /// The entry at `at`, which an index names.
    fn entry(&self, at: SortKey) -> Result<StoredEntry, TimelineError> {
        let key = entry_key(self.tenant, self.account, &Stored::sort_key(at.0, at.1));
        let bytes = self
            .tree
            .get(&key)
            .map_err(|e| self.unreadable(format!("reading the entry at position {}: {e}", at.1)))?
            .ok_or_else(|| self.unreadable(format!("the entry at position {} is missing", at.1)))?;
        self.decode(&key, &bytes)
    }

    /// The entries of `scope` with `lower <= (occurred_at, position) < upper` and a position
    /// before `recent_from`, in `order`.
    ///
    /// Entries at `recent_from` or later are skipped by their key, before anything is read
    /// under it: they are in memory, and their keys may be in a batch the runner is applying
    /// right now. A batch is atomic against a crash but not isolated from readers (see
    /// `keyplan_projection::store`): its `s/` keys become visible before its `t/` keys, so
    /// following such an index key could find no entry yet.
    fn walk(
        &self,
        scope: &Scope,
        (lower, upper): (SortKey, Option<SortKey>),
        order: Order,
        recent_from: u64,
    ) -> Box<dyn Iterator<Item = Result<StoredEntry, TimelineError>> + '_> {
        let prefix = match scope {
            Scope::Account => entries_prefix(self.tenant, self.account),
            Scope::Subject(subject) => subject_prefix(self.tenant, self.account, subject),
        };
        let mut from = prefix.clone();
        from.extend_from_slice(&Stored::sort_key(lower.0, lower.1));
        let to = match upper {
            Some((at, position)) => {
                let mut to = prefix;
                to.extend_from_slice(&Stored::sort_key(at, position));
                to
            }
            None => prefix_end(prefix),
        };
        let range = self.tree.range(from, to);
        let range: Box<dyn Iterator<Item = _>> = match order {
            Order::NewestFirst => Box::new(range.rev()),
            Order::OldestFirst => Box::new(range),
        };
        let indexed = matches!(scope, Scope::Subject(_));
        Box::new(range.filter_map(move |item| {
            let read = || {
                let (key, value) = item.map_err(|e| self.read_failed(e))?;
                let at = key
                    .len()
                    .checked_sub(16)
                    .and_then(|start| Stored::parse_sort_key(&key[start..]))
                    .ok_or_else(|| {
                        self.unreadable(format!("key {} is malformed", key_text(&key)))
                    })?;
                if at.1 >= recent_from {
                    return Ok(None); // read from memory
                }
                if indexed {
                    self.entry(at).map(Some)
                } else {
                    self.decode(&key, &value).map(Some)
                }
            };
            read().transpose()
        }))
    }

    /// The entries with `after < position <= up_to`, in position order.
    fn between(
        &self,
        after: u64,
        up_to: u64,
    ) -> Box<dyn Iterator<Item = Result<StoredEntry, TimelineError>> + '_> {
        if after >= up_to {
            return Box::new(std::iter::empty());
        }
        let from = position_key(self.tenant, self.account, after.saturating_add(1));
        let to = match up_to.checked_add(1) {
            Some(end) => position_key(self.tenant, self.account, end),
            None => prefix_end(format!("p/{}/{}/", self.tenant, self.account).into_bytes()),
        };
        Box::new(self.tree.range(from, to).map(move |item| {
            let (key, value) = item.map_err(|e| self.read_failed(e))?;
            let malformed =
                || self.unreadable(format!("position key {} is malformed", key_text(&key)));
            let position = key
                .len()
                .checked_sub(8)
                .and_then(|start| <[u8; 8]>::try_from(&key[start..]).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(malformed)?;
            let occurred_at = <[u8; 8]>::try_from(&value[..])
                .map(i64::from_be_bytes)
                .map_err(|_| malformed())?;
            self.entry((occurred_at, position))
        }))
    }

    /// Whether any entry concerns `subject`.
    fn mentions(&self, subject: &SubjectKey) -> Result<bool, TimelineError> {
        match self
            .tree
            .scan_prefix(subject_prefix(self.tenant, self.account, subject))
            .next()
        {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(self.read_failed(e)),
        }
    }
}

type Shared = Arc<RwLock<AccountTimeline>>;

#[derive(Default)]
struct Inner {
    /// tenant -> account -> timeline (nested so lookups need no allocation).
    accounts: RwLock<HashMap<String, HashMap<String, Shared>>>,
    /// Accounts changed since the last flush.
    dirty: DirtyAccounts,
    /// The tree this instance was loaded from and flushes to (the runner applies each flush
    /// before it applies the next event): where flushed entries are read back. `None` until
    /// `load`, and then every entry stays in memory.
    tree: RwLock<Option<Tree>>,
    /// Accounts whose entries the last flush wrote: the next flush lets those entries leave
    /// memory (the runner has applied that batch by then), even if the account gained nothing
    /// since.
    written_last_flush: RwLock<Vec<(String, String)>>,
}

/// The timelines of every account; cheap to clone (shared).
///
/// The runner applies events while services query: each account has its own lock, held for
/// one event or one page, so a query on one account never waits for work on another.
#[derive(Clone, Default)]
pub struct TimelineProjection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TimelineProjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let accounts: usize = read(&self.inner.accounts).values().map(HashMap::len).sum();
        f.debug_struct("TimelineProjection")
            .field("accounts", &accounts)
            .finish_non_exhaustive()
    }
}

impl TimelineProjection {
    /// An empty projection.
    pub fn new() -> Self {
        Self::default()
    }

    fn account(&self, tenant: &str, account: &str) -> Option<Shared> {
        read(&self.inner.accounts)
            .get(tenant)
            .and_then(|accounts| accounts.get(account))
            .cloned()
    }

    fn account_or_insert(&self, tenant: &str, account: &str) -> Shared {
        if let Some(found) = self.account(tenant, account) {
            return found;
        }
        write(&self.inner.accounts)
            .entry(tenant.to_owned())
            .or_default()
            .entry(account.to_owned())
            .or_default()
            .clone()
    }

    fn require(&self, tenant: &str, account: &str) -> Result<Shared, TimelineError> {
        self.account(tenant, account)
            .ok_or_else(|| TimelineError::AccountNotFound {
                tenant: tenant.to_owned(),
                account: account.to_owned(),
            })
    }

    /// The last flushed content of an interaction, read back from the store (see the module
    /// docs); `None` if there is no tree or no such item. A read failure is logged and the
    /// correction is then described without the comparison (apply cannot fail).
    fn stored_interaction(
        tree: Option<&Tree>,
        event: &ProjectedEvent,
        id: &InteractionId,
    ) -> Option<InteractionInfo> {
        let key = interaction_key(&event.tenant, &event.account, id);
        let bytes = match tree?.get(&key) {
            Ok(found) => found?,
            Err(e) => {
                tracing::error!(position = event.position, error = %e, "timeline: reading a corrected interaction failed");
                return None;
            }
        };
        match postcard::from_bytes(&bytes) {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::error!(position = event.position, error = %e, "timeline: a stored interaction is unreadable");
                None
            }
        }
    }

    /// One page of an account's timeline.
    ///
    /// Walks the scope's `(occurred_at, position)` index in the store from the cursor (or the
    /// time range's edge) in the query's direction, merged with the recent entries still in
    /// memory, skipping entries that fail the type or actor filter, until the page is full;
    /// one more match decides whether there is a next page.
    pub fn list(
        &self,
        tenant: &str,
        account: &str,
        query: &TimelineQuery,
    ) -> Result<TimelinePage, TimelineError> {
        // Held for the whole query, so that the account and the tree its entries are read
        // from belong to the same generation (`adopt` swaps both under this lock).
        let tree = read(&self.inner.tree);
        let shared = self.require(tenant, account)?;
        let timeline = read(&shared);
        let stored = tree.as_ref().map(|tree| StoredTimeline {
            tree,
            tenant,
            account,
        });
        let last_position = timeline.last_position();
        let empty = || TimelinePage {
            entries: Vec::new(),
            next: None,
            last_position,
        };
        if let Scope::Subject(subject) = &query.scope {
            let known = timeline.directory.knows(subject)
                || timeline.recent.iter().any(|e| e.subjects.contains(subject))
                || match &stored {
                    Some(stored) => stored.mentions(subject)?,
                    None => false,
                };
            if !known {
                let (what, id) = match subject {
                    SubjectKey::Plan(id) => ("plan", id.to_string()),
                    SubjectKey::Stakeholder(id) => ("stakeholder", id.to_string()),
                    SubjectKey::Person(id) => ("person", id.to_string()),
                    SubjectKey::Opportunity(id) => ("opportunity", id.to_string()),
                };
                return Err(TimelineError::SubjectNotFound {
                    what,
                    id,
                    account: account.to_owned(),
                });
            }
        }
        let actor = query.actor.as_deref();
        if actor.is_some_and(|a| !timeline.head.actors.contains(a)) {
            return Ok(empty()); // nobody of that name recorded anything here
        }
        let mask = query.event_type_mask();

        // [lower, upper): the time range, narrowed by the cursor on the side already read.
        let mut lower: SortKey = (i64::MIN, 0);
        let mut upper: Option<SortKey> = None;
        if let Some(from) = query.occurred_from {
            lower = lower.max((from.0, 0));
        }
        if let Some(to) = query.occurred_to {
            upper = Some((to.0, 0));
        }
        if let Some(cursor) = query.after {
            let key = (cursor.occurred_at.0, cursor.position);
            match query.order {
                Order::OldestFirst => lower = lower.max((key.0, key.1.saturating_add(1))),
                Order::NewestFirst => upper = Some(upper.map_or(key, |u| u.min(key))),
            }
        }
        if upper.is_some_and(|u| lower >= u) {
            return Ok(empty());
        }
        let in_range = |e: &StoredEntry| {
            let key = e.sort_key();
            key >= lower && upper.is_none_or(|u| key < u)
        };
        let newest_first = query.order == Order::NewestFirst;
        // `a` comes before `b` in the page's order.
        let before = |a: &StoredEntry, b: &StoredEntry| {
            if newest_first {
                a.sort_key() > b.sort_key()
            } else {
                a.sort_key() < b.sort_key()
            }
        };

        // The recent entries that match, in the page's order.
        let mut recent: Vec<&StoredEntry> = timeline
            .recent
            .iter()
            .filter(|e| e.in_scope(&query.scope) && in_range(e) && e.passes(mask, actor))
            .collect();
        recent.sort_by_key(|e| e.sort_key());
        if newest_first {
            recent.reverse();
        }
        let mut recent = recent.into_iter().peekable();
        // The stored ones, except those `recent` holds.
        let recent_from = timeline.recent_from();
        let mut walk = stored
            .as_ref()
            .map(|stored| stored.walk(&query.scope, (lower, upper), query.order, recent_from))
            .into_iter()
            .flatten()
            .filter(|item| item.as_ref().map_or(true, |e| e.passes(mask, actor)));
        let mut from_store = walk.next().transpose()?;

        let mut page: Vec<StoredEntry> = Vec::with_capacity(query.page_size.min(64));
        let mut more = false;
        loop {
            let next = match (recent.peek(), &from_store) {
                (None, None) => break,
                (Some(r), Some(s)) if !before(r, s) => None,
                (Some(_), _) => recent.next().cloned(),
                (None, Some(_)) => None,
            };
            let next = match next {
                Some(entry) => entry,
                None => {
                    let taken = from_store.take();
                    from_store = walk.next().transpose()?;
                    match taken {
                        Some(entry) => entry,
                        None => break,
                    }
                }
            };
            if page.len() == query.page_size {
                more = true;
                break;
            }
            page.push(next);
        }
        let next = match (more, page.last()) {
            (true, Some(e)) => Some(Cursor {
                occurred_at: Timestamp(e.occurred_at),
                position: e.position,
            }),
            _ => None,
        };
        Ok(TimelinePage {
            entries: page.into_iter().map(|e| timeline.view(e)).collect(),
            next,
            last_position,
        })
    }

    /// Up to `limit` entries of an account with `after < position <= up_to`, in position
    /// order: the catch-up part of a watch.
    pub fn entries_between(
        &self,
        tenant: &str,
        account: &str,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, TimelineError> {
        // As in `list`: the account and its tree from the same generation.
        let tree = read(&self.inner.tree);
        let shared = self.require(tenant, account)?;
        let timeline = read(&shared);
        let recent_from = timeline.recent_from();
        let mut entries = Vec::new();
        if let Some(tree) = tree.as_ref() {
            let stored = StoredTimeline {
                tree,
                tenant,
                account,
            };
            for entry in stored
                .between(after, up_to.min(recent_from.saturating_sub(1)))
                .take(limit)
            {
                entries.push(entry?);
            }
        }
        let recent = timeline
            .recent
            .iter()
            .filter(|e| e.position > after && e.position <= up_to);
        entries.extend(recent.take(limit - entries.len()).cloned());
        Ok(entries.into_iter().map(|e| timeline.view(e)).collect())
    }

    /// Subscribes to an account's new entries; returns the receiver and the position of the
    /// account's latest entry at that instant.
    ///
    /// Both are taken under the account's lock, the same lock `apply` holds while it appends
    /// and broadcasts, so every entry is either at or before the returned position (read it
    /// with [`Self::entries_between`]) or arrives on the receiver: no gap. A watcher skips
    /// received entries at or before what it already sent: no duplicate.
    pub fn subscribe(
        &self,
        tenant: &str,
        account: &str,
    ) -> Result<(broadcast::Receiver<u64>, u64), TimelineError> {
        let shared = self.require(tenant, account)?;
        let mut timeline = write(&shared);
        let receiver = match &timeline.live {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(LIVE_BUFFER);
                timeline.live = Some(sender);
                receiver
            }
        };
        Ok((receiver, timeline.last_position()))
    }

    /// The position of an account's latest entry, if it has any.
    pub fn last_position(&self, tenant: &str, account: &str) -> Option<u64> {
        self.account(tenant, account)
            .map(|shared| read(&shared).last_position())
    }

    /// How many entries of an account are held in memory (tests of the eviction).
    #[cfg(test)]
    pub(crate) fn entries_in_memory(&self, tenant: &str, account: &str) -> usize {
        self.account(tenant, account)
            .map_or(0, |shared| read(&shared).recent.len())
    }

    /// Every account's entries (in position order), directory (without the interaction
    /// details, which may live only in the store) and names, to compare two projections in
    /// tests.
    #[cfg(test)]
    pub(crate) fn export(
        &self,
    ) -> std::collections::BTreeMap<(String, String), (Vec<StoredEntry>, Directory, NameHistory)>
    {
        let accounts = read(&self.inner.accounts);
        let tree = read(&self.inner.tree).clone();
        let mut out = std::collections::BTreeMap::new();
        for (tenant, by_account) in accounts.iter() {
            for (account, shared) in by_account {
                let timeline = read(shared);
                let mut entries: Vec<StoredEntry> = match &tree {
                    Some(tree) => StoredTimeline {
                        tree,
                        tenant,
                        account,
                    }
                    .between(0, timeline.recent_from().saturating_sub(1))
                    .collect::<Result<_, _>>()
                    .expect("stored entries read back"),
                    None => Vec::new(),
                };
                entries.extend(timeline.recent.iter().cloned());
                let mut directory = timeline.directory.clone();
                directory.interactions.clear();
                out.insert(
                    (tenant.clone(), account.clone()),
                    (entries, directory, timeline.names.clone()),
                );
            }
        }
        out
    }
}

// ---------------------------------------------------------------- storage keys

fn entries_prefix(tenant: &str, account: &str) -> Vec<u8> {
    format!("t/{tenant}/{account}/").into_bytes()
}

/// An entry's key: `at` is its [`Stored::sort_key`].
fn entry_key(tenant: &str, account: &str, at: &[u8; 16]) -> Vec<u8> {
    let mut key = entries_prefix(tenant, account);
    key.extend_from_slice(at);
    key
}

/// The first key after every key that starts with `prefix` (which ends with '/').
fn prefix_end(mut prefix: Vec<u8>) -> Vec<u8> {
    if let Some(last) = prefix.last_mut() {
        *last += 1;
    }
    prefix
}

/// A key as people read it (messages, tests): its binary suffix (a sort key under `t/` and
/// `s/`, a position under `p/`) in hex.
pub(crate) fn key_text(key: &[u8]) -> String {
    let binary = match key.first() {
        Some(b't' | b's') => 16,
        Some(b'p') => 8,
        _ => 0,
    };
    let (text, binary) = key.split_at(key.len().saturating_sub(binary));
    let hex: String = binary.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}{hex}", String::from_utf8_lossy(text))
}

/// A subject in keys: its name key (a kind letter and its id).
fn subject_tag(subject: &SubjectKey) -> NameKey {
    match subject {
        SubjectKey::Plan(id) => names::plan_key(id),
        SubjectKey::Stakeholder(id) => names::stakeholder_key(id),
        SubjectKey::Person(id) => names::person_key(id),
        SubjectKey::Opportunity(id) => names::opportunity_key(id),
    }
}

fn subject_prefix(tenant: &str, account: &str, subject: &SubjectKey) -> Vec<u8> {
    format!("s/{tenant}/{account}/{}/", subject_tag(subject)).into_bytes()
}

fn position_key(tenant: &str, account: &str, position: u64) -> Vec<u8> {
    let mut key = format!("p/{tenant}/{account}/").into_bytes();
    key.extend_from_slice(&position.to_be_bytes());
    key
}

fn corrected_key(tenant: &str, account: &str, position: u64) -> Vec<u8> {
    format!("k/{tenant}/{account}/{position:016x}").into_bytes()
}

fn head_key(tenant: &str, account: &str) -> Vec<u8> {
    format!("h/{tenant}/{account}").into_bytes()
}

fn interaction_key(tenant: &str, account: &str, id: &InteractionId) -> Vec<u8> {
    format!("x/{tenant}/{account}/{id}").into_bytes()
}

/// One subject's naming facts (postcard `Vec<Fact>`, by business time), rewritten when it
/// gains one.
fn names_key(tenant: &str, account: &str, key: &str) -> Vec<u8> {
    format!("n/{tenant}/{account}/{key}").into_bytes()
}

pub(crate) fn dir_key(tenant: &str, account: &str, key: &DirKey) -> Vec<u8> {
    let (kind, id) = match key {
        DirKey::Account => ("account", "-"),
        DirKey::Person(id) => ("person", id.as_str()),
        DirKey::Stakeholder(id) => ("stakeholder", id.as_str()),
        DirKey::Plan(id) => ("plan", id.as_str()),
        DirKey::Objective(id) => ("objective", id.as_str()),
        DirKey::Opportunity(id) => ("opportunity", id.as_str()),
        DirKey::Action(id) => ("action", id.as_str()),
        DirKey::Rule(id) => ("rule", id.as_str()),
        DirKey::Interaction(id) => ("interaction", id.as_str()),
        DirKey::Review(id) => ("review", id.as_str()),
    };
    format!("d/{tenant}/{account}/{kind}/{id}").into_bytes()
}

fn parse_dir_key(kind: &str, id: &str) -> Option<DirKey> {
    Some(match kind {
        "account" => DirKey::Account,
        "person" => DirKey::Person(PersonId::parse(id).ok()?),
        "stakeholder" => DirKey::Stakeholder(StakeholderId::parse(id).ok()?),
        "plan" => DirKey::Plan(PlanId::parse(id).ok()?),
        "objective" => DirKey::Objective(ObjectiveId::parse(id).ok()?),
        "opportunity" => DirKey::Opportunity(OpportunityId::parse(id).ok()?),
        "action" => DirKey::Action(ActionItemId::parse(id).ok()?),
        "rule" => DirKey::Rule(RuleId::parse(id).ok()?),
        "interaction" => DirKey::Interaction(InteractionId::parse(id).ok()?),
        "review" => DirKey::Review(ReviewId::parse(id).ok()?),
        _ => return None,
    })
}

/// The kinds of keys a start reads (see the module docs).
const LOADED_PREFIXES: [&str; 4] = ["h/", "d/", "n/", "k/"];

impl Projection for TimelineProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn format(&self) -> u32 {
        FORMAT
    }

    fn load(&self, tree: &Tree) -> Result<(), ProjectionError> {
        let mut accounts: HashMap<String, HashMap<String, AccountTimeline>> = HashMap::new();
        for prefix in LOADED_PREFIXES {
            for item in tree.scan_prefix(prefix) {
                let (key, value) = item?;
                let text =
                    std::str::from_utf8(&key).map_err(|e| STORED.corrupt(format!("key: {e}")))?;
                let bad_key = || STORED.corrupt(format!("unexpected key {text:?}"));
                let mut parts = text[prefix.len()..].splitn(3, '/');
                let (Some(tenant), Some(account), rest) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad_key());
                };
                let timeline = accounts
                    .entry(tenant.to_owned())
                    .or_default()
                    .entry(account.to_owned())
                    .or_default();
                match (prefix, rest) {
                    ("h/", None) => timeline.head = STORED.decode(&key, &value)?,
                    ("d/", Some(rest)) => {
                        let (kind, id) = rest.split_once('/').ok_or_else(bad_key)?;
                        let dir_key = parse_dir_key(kind, id).ok_or_else(bad_key)?;
                        let item: DirItem = STORED.decode(&key, &value)?;
                        if !timeline.directory.restore(dir_key, item) {
                            return Err(STORED.corrupt(format!(
                                "{text}: the directory item does not match its key"
                            )));
                        }
                    }
                    ("n/", Some(name)) => {
                        if !names::valid_key(name) {
                            return Err(bad_key());
                        }
                        let facts: Vec<Fact> = STORED.decode(&key, &value)?;
                        if !timeline.names.restore(name.into(), facts) {
                            return Err(
                                STORED.corrupt(format!("{text}: naming facts out of order"))
                            );
                        }
                    }
                    ("k/", Some(position)) => {
                        let corrected = u64::from_str_radix(position, 16).map_err(|_| bad_key())?;
                        let by = <[u8; 8]>::try_from(&value[..])
                            .map(u64::from_be_bytes)
                            .map_err(|_| STORED.corrupt(format!("{text}: not a position")))?;
                        timeline.corrected_by.insert(corrected, by);
                    }
                    _ => return Err(bad_key()),
                }
            }
        }
        let accounts = accounts
            .into_iter()
            .map(|(tenant, by_account)| {
                let by_account = by_account
                    .into_iter()
                    .map(|(account, timeline)| (account, Arc::new(RwLock::new(timeline))))
                    .collect();
                (tenant, by_account)
            })
            .collect();
        *write(&self.inner.accounts) = accounts;
        *write(&self.inner.tree) = Some(tree.clone());
        write(&self.inner.written_last_flush).clear();
        self.inner.dirty.clear();
        Ok(())
    }

    fn apply(&self, event: &ProjectedEvent) {
        let shared = self.account_or_insert(&event.tenant, &event.account);
        {
            // A correction may read its interaction's previous content back from the tree:
            // the tree's lock is taken before the account's, never under it (queries take the
            // tree's lock first).
            let tree = matches!(event.event, AccountEvent::InteractionCorrected(_))
                .then(|| read(&self.inner.tree).clone())
                .flatten();
            let mut guard = write(&shared);
            let timeline = &mut *guard;
            if event.position <= timeline.last_position() {
                return; // already applied (a redelivery): entries are never rewritten
            }
            if let AccountEvent::InteractionCorrected(c) = &event.event {
                if !timeline
                    .directory
                    .interactions
                    .contains_key(&c.interaction_id)
                {
                    if let Some(previous) =
                        Self::stored_interaction(tree.as_ref(), event, &c.interaction_id)
                    {
                        timeline
                            .directory
                            .interactions
                            .insert(c.interaction_id.clone(), previous);
                    }
                }
            }
            let described = timeline.directory.describe(event, &mut timeline.touched);
            for (key, fact) in described.facts {
                timeline.names_touched.insert(key.clone());
                timeline.names.record(key, fact);
            }
            let content = match &event.event {
                AccountEvent::InteractionLogged(e) => Some((&e.interaction_id, &e.details)),
                AccountEvent::InteractionCorrected(e) => Some((&e.interaction_id, &e.details)),
                _ => None,
            };
            let pushed = timeline.push(StoredEntry {
                position: event.position,
                stream_version: event.stream_version,
                event_id: *event.event_id.as_bytes(),
                event_type: type_index(event.event.event_type()).unwrap_or(u8::MAX),
                actor: event.actor.clone(),
                occurred_at: event.occurred_at.0,
                recorded_at: event.recorded_at.0,
                summary: described.summary,
                subjects: described.subjects.into_iter().collect(),
                corrects: described.corrects,
            });
            if let (true, Some((id, details))) = (pushed, content) {
                timeline.interactions.push((
                    id.clone(),
                    InteractionInfo {
                        details: details.clone(),
                        position: event.position,
                    },
                ));
            }
            if pushed {
                if let Some(sender) = &timeline.live {
                    if sender.receiver_count() == 0 {
                        timeline.live = None; // the last watcher left
                    } else {
                        let _ = sender.send(event.position);
                    }
                }
            }
        }
        self.inner.dirty.mark(&event.tenant, &event.account);
    }

    /// Takes over a rebuilt instance's timelines, so every service clone sees them at once.
    /// Watchers of the old timelines see their live channel close, subscribe again to the new
    /// ones and catch up from the last position they sent: nothing missed, nothing repeated.
    fn adopt(&self, rebuilt: Self) -> bool {
        let accounts = std::mem::take(&mut *write(&rebuilt.inner.accounts));
        let tree = write(&rebuilt.inner.tree).take();
        let written = std::mem::take(&mut *write(&rebuilt.inner.written_last_flush));
        // Both under the tree's lock, taken first as queries take it: a query sees the old
        // timelines with the old tree or the new with the new, never a mix.
        let mut serving_tree = write(&self.inner.tree);
        let old = std::mem::replace(&mut *write(&self.inner.accounts), accounts);
        *serving_tree = tree;
        drop(serving_tree);
        *write(&self.inner.written_last_flush) = written;
        self.inner.dirty.adopt(&rebuilt.inner.dirty);
        drop(old); // closes the old live channels (outside the lock)
        true
    }

    fn flush(&self, batch: &mut keyplan_projection::Batch) -> Result<(), ProjectionError> {
        let dirty = self.inner.dirty.take();
        let evict = read(&self.inner.tree).is_some();
        let written_before = std::mem::take(&mut *write(&self.inner.written_last_flush));
        if evict {
            // The runner applied the last flush's batch before this flush: those entries
            // are read from the store from now on.
            for (tenant, account) in written_before {
                if let Some(shared) = self.account(&tenant, &account) {
                    let mut timeline = write(&shared);
                    let written = std::mem::take(&mut timeline.written);
                    timeline.recent.drain(..written);
                }
            }
        }
        let mut written_now = Vec::new();
        for (tenant, account) in dirty {
            let Some(shared) = self.account(&tenant, &account) else {
                continue;
            };
            let mut guard = write(&shared);
            let timeline = &mut *guard;
            if timeline.written < timeline.recent.len() {
                for entry in &timeline.recent[timeline.written..] {
                    let at = Stored::sort_key(entry.occurred_at, entry.position);
                    batch.insert(entry_key(&tenant, &account, &at), STORED.encode(entry)?);
                    batch.insert(
                        position_key(&tenant, &account, entry.position),
                        entry.occurred_at.to_be_bytes().to_vec(),
                    );
                    for subject in &entry.subjects {
                        let mut key = subject_prefix(&tenant, &account, subject);
                        key.extend_from_slice(&at);
                        batch.insert(key, Vec::new());
                    }
                }
                batch.insert(head_key(&tenant, &account), STORED.encode(&timeline.head)?);
                timeline.written = timeline.recent.len();
                written_now.push((tenant.clone(), account.clone()));
            }
            for (corrected, by) in std::mem::take(&mut timeline.corrections) {
                batch.insert(
                    corrected_key(&tenant, &account, corrected),
                    by.to_be_bytes().to_vec(),
                );
            }
            for (id, info) in std::mem::take(&mut timeline.interactions) {
                batch.insert(
                    interaction_key(&tenant, &account, &id),
                    STORED.encode(&info)?,
                );
            }
            for key in std::mem::take(&mut timeline.touched) {
                if matches!(key, DirKey::Interaction(_)) {
                    continue; // stored under `x/`
                }
                if let Some(item) = timeline.directory.item(&key) {
                    batch.insert(dir_key(&tenant, &account, &key), STORED.encode(&item)?);
                }
            }
            for key in std::mem::take(&mut timeline.names_touched) {
                if let Some(facts) = timeline.names.facts(&key) {
                    batch.insert(names_key(&tenant, &account, &key), STORED.encode(facts)?);
                }
            }
            if evict {
                // Every interaction in memory was logged or corrected since the last flush, so
                // is in this batch's `x/` keys, which the runner applies before the next event.
                timeline.directory.interactions.clear();
            }
        }
        *write(&self.inner.written_last_flush) = written_now;
        Ok(())
    }
}
