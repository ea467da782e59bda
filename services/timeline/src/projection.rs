//! The timeline projection: one entry per event, per account, with the indexes that make a
//! page a few B-tree steps away whatever the size of the log.
//!
//! # In memory
//! Per account (never a scan over all accounts for a one-account query):
//! - `entries`, in position order (append-only; an entry never changes once written). In
//!   memory an entry keeps what queries sort, filter and page on (position, business time,
//!   type, actor, what it corrects); the rest (its summary, a template naming people and
//!   things by reference, see `crate::names`; ids, times, subjects) stays in memory only
//!   until its chunk is sealed in the store, and a page reads it back from there (one read per
//!   chunk a page touches). That detail was most of an entry's memory, and sealed chunks
//!   never change, so nothing can go stale. The flush that seals a chunk keeps the details:
//!   the runner has not written its batch yet; the next flush lets them go, except the two
//!   newest sealed chunks' (an account's newest page is read from memory);
//! - `by_time`, the account's entries by `(occurred_at, position)`: the timeline order;
//! - one such index per subject (plan, stakeholder, person, opportunity), for the scoped views;
//! - `corrected_by`: which later correction superseded an entry. It is derived from the
//!   corrections' `corrects_position`, so marking an entry as corrected never rewrites it;
//! - the directory the summaries are described from (`crate::directory`), except the
//!   content of interactions already flushed: only a correction needs it (to say what
//!   changed), corrections are rare, and it is the largest part of the directory, so it is
//!   read back from the store when a correction comes;
//! - `names`, what each subject was called, by business time: a summary is resolved against
//!   it whenever the entry is read (a page, a watch), naming things as they were at the
//!   entry's `occurred_at` according to everything known then. A late rename changes what
//!   later-in-business-time entries read without rewriting any of them;
//! - a broadcast channel of new positions, only while someone watches the account.
//!
//! Actor names and subject ids are interned per account. What this costs in memory and in
//! page latency at 1,000,000 events (`tests/perf.rs`) is in BENCHMARKS.md.
//!
//! # In the store
//! - `c/<tenant>/<account>/<chunk>`: entries `chunk * 32 ..` of the account (postcard). A
//!   flush rewrites only the chunks that gained entries since the last flush (usually the
//!   last one), never an account's whole history;
//! - `x/<tenant>/<account>/<chunk>`: the content of every interaction logged or corrected by
//!   an entry of chunk `chunk` (postcard `Vec<(InteractionId, InteractionInfo)>`, in position
//!   order), written beside the chunk and rewritten only while the chunk is open. This is
//!   where a correction finds the content it corrects: newest chunk first;
//! - `n/<tenant>/<account>/<kind letter><id>`: one subject's naming facts (postcard
//!   `Vec<names::Fact>`, by business time), rewritten when it gains one (a rename writes this
//!   key, never an older chunk);
//! - `d/<tenant>/<account>/<kind>/<id>`: one directory item, rewritten when it changes.
//!   Interactions are not stored this way any more (older projections did; such keys are
//!   still read, after the `x/` ones). A key per interaction cost more than anything else
//!   in the read models: measured by keyplan-bench at 300k events, writing none made the
//!   rebuild 2.5x faster and RSS 35 % smaller (sled's memory per key), see BENCHMARKS.md.
//!
//! Indexes and `corrected_by` are rebuilt from the entries at load. Ids never contain '/', so
//! the keys are unambiguous; none starts with byte 0 (the runner's checkpoint).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use keyplan_domain::ids::*;
use keyplan_domain::values::Timestamp;
use keyplan_domain::AccountEvent;
use keyplan_projection::runner::RESERVED_PREFIX;
use keyplan_projection::shared_state::{read, write, DirtyAccounts};
use keyplan_projection::{ProjectedEvent, Projection, ProjectionError};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::directory::{DirItem, DirKey, Directory, InteractionInfo, SubjectKey};
use crate::error::TimelineError;
use crate::names::{self, Fact, NameHistory, NameKey};
use crate::query::{type_index, Cursor, Order, Scope, TimelineQuery};

/// Projection name (its tree in the read models' database).
pub const NAME: &str = "timeline";

/// The stored format ([`Projection::format`]). 2: summaries are templates resolved against the
/// `n/` name histories (format 1 stored them with the names written in).
const FORMAT: u32 = 2;

/// Entries per stored chunk: small enough that rewriting the last chunk at every flush is
/// cheap, large enough that an account's history is a handful of keys.
const CHUNK: usize = 32;

/// Sealed chunks per account whose entries keep their details in memory anyway: an account's
/// newest page (the page people read most, also while appends arrive) then needs no read from
/// the store, for a bounded cost per account (two chunks' worth), not per event.
const RECENT_SEALED_CHUNKS: usize = 2;

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
    event_type: String,
    actor: String,
    occurred_at: i64,
    recorded_at: i64,
    /// A template: names are references, resolved when the entry is read.
    summary: String,
    subjects: Vec<SubjectKey>,
    corrects: Option<u64>,
}

/// An entry in memory (ids interned in its account): what queries filter, sort and page on,
/// and, until its chunk is sealed and stored, what a page shows of it.
#[derive(Debug)]
struct Entry {
    position: u64,
    occurred_at: i64,
    /// 0 = not a correction (positions start at 1).
    corrects: u64,
    /// Index in [`AccountEvent::TYPES`].
    event_type: u8,
    /// Index in `AccountTimeline::actors`.
    actor: u32,
    /// `None` once the entry's chunk is sealed and stored: a page reads it back from the store.
    detail: Option<Box<Detail>>,
}

/// What a page shows of an entry besides what it is filtered and sorted on. Most of an
/// entry's memory (the summary above all), so it is kept only for entries whose chunk is not
/// yet sealed in the store: the timeline's memory then grows with accounts and subjects, not with
/// every event ever projected, and a page of recent entries still reads one or two chunks.
#[derive(Debug)]
struct Detail {
    stream_version: u64,
    recorded_at: i64,
    event_id: [u8; 16],
    /// A template (see `crate::names`).
    summary: Box<str>,
    /// Indexes in `AccountTimeline::subjects`.
    subjects: Box<[u32]>,
}

type SortKey = (i64, u64);

/// One account's timeline, its indexes and its name directory.
#[derive(Default)]
struct AccountTimeline {
    entries: Vec<Entry>,
    by_time: BTreeMap<SortKey, u32>,
    subject_ids: HashMap<SubjectKey, u32>,
    subjects: Vec<SubjectKey>,
    by_subject: Vec<BTreeMap<SortKey, u32>>,
    actor_ids: HashMap<Box<str>, u32>,
    actors: Vec<Box<str>>,
    corrected_by: HashMap<u64, u64>,
    directory: Directory,
    /// Directory items changed since the last flush.
    touched: BTreeSet<DirKey>,
    /// What each subject was called, by business time: the summaries are resolved with it.
    names: NameHistory,
    /// Subjects whose naming facts changed since the last flush.
    names_touched: BTreeSet<NameKey>,
    /// Entries already in the store.
    persisted: usize,
    /// Entries `..detailed_from` have their detail only in the store (their chunks are sealed).
    detailed_from: usize,
    /// Entries in sealed chunks as of the previous flush, whose batch the runner has applied
    /// since: their details can leave memory at the next flush. (Not at the flush that seals
    /// them: until the runner applies that batch, a page could not read them back.)
    sealed_when_flushed: usize,
    /// The content of each interaction logged or corrected by an entry of the chunks not yet
    /// sealed (from the first chunk a flush will rewrite), in position order: what the next
    /// flush writes under `x/`. At most a chunk's worth after a flush.
    chunk_interactions: Vec<(InteractionId, InteractionInfo)>,
    /// Present while someone watches the account: the position of each new entry. Watchers
    /// read the entry itself when they send it, so that it names things as known then.
    live: Option<broadcast::Sender<u64>>,
}

impl AccountTimeline {
    fn last_position(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.position)
    }

    fn intern_actor(&mut self, actor: &str) -> u32 {
        if let Some(&id) = self.actor_ids.get(actor) {
            return id;
        }
        let id = self.actors.len() as u32;
        self.actors.push(actor.into());
        self.actor_ids.insert(actor.into(), id);
        id
    }

    fn intern_subject(&mut self, subject: &SubjectKey) -> u32 {
        if let Some(&id) = self.subject_ids.get(subject) {
            return id;
        }
        let id = self.subjects.len() as u32;
        self.subjects.push(subject.clone());
        self.subject_ids.insert(subject.clone(), id);
        self.by_subject.push(BTreeMap::new());
        id
    }

    /// Appends an entry and indexes it; `false` (and nothing changed) if it is out of
    /// position order or of an unknown type.
    fn push(&mut self, stored: StoredEntry) -> bool {
        if stored.position <= self.last_position() {
            return false;
        }
        let Some(event_type) = type_index(&stored.event_type) else {
            return false;
        };
        let index = self.entries.len() as u32;
        let key = (stored.occurred_at, stored.position);
        let actor = self.intern_actor(&stored.actor);
        let subjects: Box<[u32]> = stored
            .subjects
            .iter()
            .map(|s| self.intern_subject(s))
            .collect();
        for &s in subjects.iter() {
            self.by_subject[s as usize].insert(key, index);
        }
        self.by_time.insert(key, index);
        if let Some(corrected) = stored.corrects {
            self.corrected_by.insert(corrected, stored.position);
        }
        self.entries.push(Entry {
            position: stored.position,
            occurred_at: stored.occurred_at,
            corrects: stored.corrects.unwrap_or(0),
            event_type,
            actor,
            detail: Some(Box::new(Detail {
                stream_version: stored.stream_version,
                recorded_at: stored.recorded_at,
                event_id: stored.event_id,
                summary: stored.summary.into_boxed_str(),
                subjects,
            })),
        });
        true
    }

    /// Drops the details of entries sealed in the store by the last flush whose batch has been
    /// written, except the newest [`RECENT_SEALED_CHUNKS`] chunks'.
    fn forget_sealed_details(&mut self) {
        let up_to = self
            .sealed_when_flushed
            .saturating_sub(RECENT_SEALED_CHUNKS * CHUNK)
            .min(self.entries.len());
        for entry in self
            .entries
            .get_mut(self.detailed_from..up_to)
            .into_iter()
            .flatten()
        {
            entry.detail = None;
        }
        self.detailed_from = self.detailed_from.max(up_to);
    }

    /// The entry as stored; `None` if its detail is no longer in memory (see [`SealedChunks`]).
    fn stored(&self, index: usize) -> Option<StoredEntry> {
        let e = &self.entries[index];
        let d = e.detail.as_deref()?;
        Some(StoredEntry {
            position: e.position,
            stream_version: d.stream_version,
            event_id: d.event_id,
            event_type: AccountEvent::TYPES[e.event_type as usize].to_owned(),
            actor: self.actors[e.actor as usize].to_string(),
            occurred_at: e.occurred_at,
            recorded_at: d.recorded_at,
            summary: d.summary.to_string(),
            subjects: d
                .subjects
                .iter()
                .map(|&s| self.subjects[s as usize].clone())
                .collect(),
            corrects: (e.corrects != 0).then_some(e.corrects),
        })
    }

    /// The entry as a page shows it, its detail read back from `sealed` if it is no longer
    /// in memory.
    fn view(
        &self,
        index: usize,
        sealed: &mut SealedChunks,
    ) -> Result<TimelineEntry, TimelineError> {
        let e = &self.entries[index];
        let (stream_version, recorded_at, event_id, summary, subjects) = match e.detail.as_deref() {
            Some(d) => (
                d.stream_version,
                d.recorded_at,
                d.event_id,
                &*d.summary,
                subjects_view(d.subjects.iter().map(|&s| &self.subjects[s as usize])),
            ),
            None => {
                let s = sealed.entry(index, e.position)?;
                (
                    s.stream_version,
                    s.recorded_at,
                    s.event_id,
                    s.summary.as_str(),
                    subjects_view(s.subjects.iter()),
                )
            }
        };
        Ok(TimelineEntry {
            position: e.position,
            stream_version,
            event_id: Uuid::from_bytes(event_id),
            event_type: AccountEvent::TYPES[e.event_type as usize],
            actor: self.actors[e.actor as usize].to_string(),
            occurred_at: Timestamp(e.occurred_at),
            recorded_at: Timestamp(recorded_at),
            summary: self.names.resolve(summary, (e.occurred_at, e.position)),
            subjects,
            corrects_position: (e.corrects != 0).then_some(e.corrects),
            corrected_by_position: self.corrected_by.get(&e.position).copied(),
        })
    }

    /// Index of the first entry with a position greater than `after`.
    fn first_after(&self, after: u64) -> usize {
        self.entries.partition_point(|e| e.position <= after)
    }
}

/// A page's subjects, by kind.
fn subjects_view<'a>(keys: impl Iterator<Item = &'a SubjectKey>) -> Subjects {
    let mut subjects = Subjects::default();
    for key in keys {
        match key {
            SubjectKey::Plan(id) => subjects.plan_ids.push(id.to_string()),
            SubjectKey::Stakeholder(id) => subjects.stakeholder_ids.push(id.to_string()),
            SubjectKey::Person(id) => subjects.person_ids.push(id.to_string()),
            SubjectKey::Opportunity(id) => subjects.opportunity_ids.push(id.to_string()),
        }
    }
    subjects
}

/// Reads sealed chunks of one account back from the store for one query, each chunk at most once.
struct SealedChunks<'a> {
    tree: Option<keyplan_projection::Tree>,
    tenant: &'a str,
    account: &'a str,
    chunks: HashMap<usize, Vec<StoredEntry>>,
}

impl<'a> SealedChunks<'a> {
    fn new(tree: Option<keyplan_projection::Tree>, tenant: &'a str, account: &'a str) -> Self {
        Self {
            tree,
            tenant,
            account,
            chunks: HashMap::new(),
        }
    }

    /// Entry `index` of the account, which must be at `position`.
    fn entry(&mut self, index: usize, position: u64) -> Result<&StoredEntry, TimelineError> {
        let chunk = index / CHUNK;
        let unreadable = |reason: String| TimelineError::Unreadable {
            tenant: self.tenant.to_owned(),
            account: self.account.to_owned(),
            reason,
        };
        if !self.chunks.contains_key(&chunk) {
            let tree = self
                .tree
                .as_ref()
                .ok_or_else(|| unreadable("no stored timeline is open".into()))?;
            let key = chunk_key(self.tenant, self.account, chunk);
            let bytes = tree
                .get(&key)
                .map_err(|e| unreadable(format!("reading chunk {chunk}: {e}")))?
                .ok_or_else(|| unreadable(format!("chunk {chunk} is missing")))?;
            let entries: Vec<StoredEntry> = postcard::from_bytes(&bytes)
                .map_err(|e| unreadable(format!("chunk {chunk}: {e}")))?;
            self.chunks.insert(chunk, entries);
        }
        match self.chunks.get(&chunk).and_then(|c| c.get(index % CHUNK)) {
            Some(stored) if stored.position == position => Ok(stored),
            _ => Err(unreadable(format!(
                "chunk {chunk} does not hold the entry at position {position}"
            ))),
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
    /// before it applies the next event): where flushed interaction details are read back.
    /// `None` until `load`, and then nothing is evicted.
    tree: RwLock<Option<keyplan_projection::Tree>>,
    /// Accounts whose last flush sealed chunks: the next flush drops those entries' details
    /// from memory (the runner has applied the sealing batch by then), even if the account
    /// gained nothing since.
    sealed_last_flush: RwLock<Vec<(String, String)>>,
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

fn corrupt(reason: impl Into<String>) -> ProjectionError {
    ProjectionError::Corrupt {
        name: NAME.into(),
        reason: reason.into(),
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
        tree: Option<&keyplan_projection::Tree>,
        event: &ProjectedEvent,
        id: &InteractionId,
    ) -> Option<InteractionInfo> {
        let tree = tree?;
        // Newest chunk first: a later version of an interaction sits in a later chunk.
        for item in tree
            .scan_prefix(interactions_prefix(&event.tenant, &event.account))
            .rev()
        {
            let bytes = match item {
                Ok((_, bytes)) => bytes,
                Err(e) => {
                    tracing::error!(position = event.position, error = %e, "timeline: reading stored interactions failed");
                    return None;
                }
            };
            match postcard::from_bytes::<Vec<(InteractionId, InteractionInfo)>>(&bytes) {
                Ok(infos) => {
                    if let Some((_, info)) = infos.into_iter().rev().find(|(i, _)| i == id) {
                        return Some(info);
                    }
                }
                Err(e) => {
                    tracing::error!(position = event.position, error = %e, "timeline: stored interactions are unreadable");
                    return None;
                }
            }
        }
        // Written by older versions: one key per interaction.
        let key = dir_key(
            &event.tenant,
            &event.account,
            &DirKey::Interaction(id.clone()),
        );
        let bytes = match tree.get(key) {
            Ok(found) => found?,
            Err(e) => {
                tracing::error!(position = event.position, error = %e, "timeline: reading a corrected interaction failed");
                return None;
            }
        };
        match postcard::from_bytes(&bytes) {
            Ok(DirItem::Interaction(info)) => Some(info),
            other => {
                tracing::error!(
                    position = event.position,
                    ?other,
                    "timeline: a stored interaction is unreadable"
                );
                None
            }
        }
    }

    /// One page of an account's timeline.
    ///
    /// Walks the scope's `(occurred_at, position)` index from the cursor (or the time range's
    /// edge) in the query's direction, skipping entries that fail the type or actor filter,
    /// until the page is full; one more match decides whether there is a next page.
    pub fn list(
        &self,
        tenant: &str,
        account: &str,
        query: &TimelineQuery,
    ) -> Result<TimelinePage, TimelineError> {
        // Held for the whole query, so that the account and the tree its sealed chunks are
        // read from belong to the same generation (`adopt` swaps both under this lock).
        let tree = read(&self.inner.tree);
        let shared = self.require(tenant, account)?;
        let mut sealed = SealedChunks::new(tree.clone(), tenant, account);
        let timeline = read(&shared);
        let last_position = timeline.last_position();
        let empty = || TimelinePage {
            entries: Vec::new(),
            next: None,
            last_position,
        };
        let index = match &query.scope {
            Scope::Account => &timeline.by_time,
            Scope::Subject(subject) => match timeline.subject_ids.get(subject) {
                Some(&id) => &timeline.by_subject[id as usize],
                None if timeline.directory.knows(subject) => return Ok(empty()),
                None => {
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
            },
        };
        let actor = match &query.actor {
            Some(name) => match timeline.actor_ids.get(name.as_str()) {
                Some(&id) => Some(id),
                None => return Ok(empty()), // nobody of that name recorded anything here
            },
            None => None,
        };
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
        let range = index.range((
            Bound::Included(lower),
            upper.map_or(Bound::Unbounded, Bound::Excluded),
        ));
        let walk: Box<dyn Iterator<Item = (&SortKey, &u32)>> = match query.order {
            Order::NewestFirst => Box::new(range.rev()),
            Order::OldestFirst => Box::new(range),
        };
        let mut page: Vec<usize> = Vec::with_capacity(query.page_size.min(64));
        let mut more = false;
        for (_, &i) in walk {
            let e = &timeline.entries[i as usize];
            if mask != 0 && mask & (1u64 << e.event_type) == 0 {
                continue;
            }
            if actor.is_some_and(|a| a != e.actor) {
                continue;
            }
            if page.len() == query.page_size {
                more = true;
                break;
            }
            page.push(i as usize);
        }
        let next = match (more, page.last()) {
            (true, Some(&i)) => {
                let e = &timeline.entries[i];
                Some(Cursor {
                    occurred_at: Timestamp(e.occurred_at),
                    position: e.position,
                })
            }
            _ => None,
        };
        Ok(TimelinePage {
            entries: page
                .into_iter()
                .map(|i| timeline.view(i, &mut sealed))
                .collect::<Result<_, _>>()?,
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
        let mut sealed = SealedChunks::new(tree.clone(), tenant, account);
        let timeline = read(&shared);
        let first = timeline.first_after(after);
        (first..timeline.entries.len())
            .take_while(|&i| timeline.entries[i].position <= up_to)
            .take(limit)
            .map(|i| timeline.view(i, &mut sealed))
            .collect()
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

    /// How many entries of an account keep their detail in memory (tests of the eviction).
    #[cfg(test)]
    pub(crate) fn details_in_memory(&self, tenant: &str, account: &str) -> usize {
        self.account(tenant, account).map_or(0, |shared| {
            read(&shared)
                .entries
                .iter()
                .filter(|e| e.detail.is_some())
                .count()
        })
    }

    /// Every account's entries (in position order) and directory (without the interaction
    /// details, which may live only in the store), to compare two projections in tests.
    #[cfg(test)]
    pub(crate) fn export(
        &self,
    ) -> BTreeMap<(String, String), (Vec<StoredEntry>, Directory, NameHistory)> {
        let accounts = read(&self.inner.accounts);
        let tree = read(&self.inner.tree).clone();
        let mut out = BTreeMap::new();
        for (tenant, by_account) in accounts.iter() {
            for (account, shared) in by_account {
                let timeline = read(shared);
                let mut sealed = SealedChunks::new(tree.clone(), tenant, account);
                let entries = (0..timeline.entries.len())
                    .map(|i| match timeline.stored(i) {
                        Some(entry) => entry,
                        None => sealed
                            .entry(i, timeline.entries[i].position)
                            .cloned()
                            .expect("a sealed chunk reads back"),
                    })
                    .collect();
                // Interaction details may have been evicted to the store: compare those there.
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

fn chunk_key(tenant: &str, account: &str, chunk: usize) -> Vec<u8> {
    format!("c/{tenant}/{account}/{chunk:010}").into_bytes()
}

fn interactions_key(tenant: &str, account: &str, chunk: usize) -> Vec<u8> {
    format!("x/{tenant}/{account}/{chunk:010}").into_bytes()
}

/// One subject's naming facts (postcard `Vec<Fact>`, by business time), rewritten when it
/// gains one.
fn names_key(tenant: &str, account: &str, key: &str) -> Vec<u8> {
    format!("n/{tenant}/{account}/{key}").into_bytes()
}

fn interactions_prefix(tenant: &str, account: &str) -> Vec<u8> {
    format!("x/{tenant}/{account}/").into_bytes()
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

/// What one account's keys held, gathered during `load`.
#[derive(Default)]
struct Loaded {
    chunks: BTreeMap<usize, Vec<StoredEntry>>,
    /// `x/` values by chunk (only the open chunk's is decoded).
    interactions: BTreeMap<usize, keyplan_projection::Value>,
    items: Vec<(DirKey, DirItem)>,
    names: Vec<(NameKey, Vec<Fact>)>,
}

impl Projection for TimelineProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn format(&self) -> u32 {
        FORMAT
    }

    fn load(&self, tree: &keyplan_projection::Tree) -> Result<(), ProjectionError> {
        let mut loaded: BTreeMap<(String, String), Loaded> = BTreeMap::new();
        for item in tree.iter() {
            let (key, value) = item?;
            if key.first() == Some(&RESERVED_PREFIX) {
                continue;
            }
            let text = std::str::from_utf8(&key).map_err(|e| corrupt(format!("key: {e}")))?;
            let bad_key = || corrupt(format!("unexpected key {text:?}"));
            let mut parts = text.split('/');
            let (Some(prefix), Some(tenant), Some(account)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad_key());
            };
            let slot = loaded
                .entry((tenant.to_owned(), account.to_owned()))
                .or_default();
            match (prefix, parts.next(), parts.next(), parts.next()) {
                ("c", Some(chunk), None, None) => {
                    let chunk: usize = chunk.parse().map_err(|_| bad_key())?;
                    let entries: Vec<StoredEntry> = postcard::from_bytes(&value)
                        .map_err(|e| corrupt(format!("{text}: {e}")))?;
                    slot.chunks.insert(chunk, entries);
                }
                ("x", Some(chunk), None, None) => {
                    let chunk: usize = chunk.parse().map_err(|_| bad_key())?;
                    slot.interactions.insert(chunk, value);
                }
                ("d", Some(kind), Some(id), None) => {
                    let dir_key = parse_dir_key(kind, id).ok_or_else(bad_key)?;
                    if let DirKey::Interaction(_) = dir_key {
                        continue; // read back only if a correction needs it
                    }
                    let item: DirItem = postcard::from_bytes(&value)
                        .map_err(|e| corrupt(format!("{text}: {e}")))?;
                    slot.items.push((dir_key, item));
                }
                ("n", Some(key), None, None) => {
                    if !names::valid_key(key) {
                        return Err(bad_key());
                    }
                    let facts: Vec<Fact> = postcard::from_bytes(&value)
                        .map_err(|e| corrupt(format!("{text}: {e}")))?;
                    slot.names.push((key.into(), facts));
                }
                _ => return Err(bad_key()),
            }
        }

        let mut accounts: HashMap<String, HashMap<String, Shared>> = HashMap::new();
        for ((tenant, account), slot) in loaded {
            let mut timeline = AccountTimeline::default();
            let last_chunk = slot.chunks.len().saturating_sub(1);
            for (expected, (chunk, entries)) in slot.chunks.into_iter().enumerate() {
                if chunk != expected || (chunk < last_chunk && entries.len() != CHUNK) {
                    return Err(corrupt(format!(
                        "account {tenant}/{account}: chunk {chunk} is out of sequence or not full"
                    )));
                }
                for entry in entries {
                    let position = entry.position;
                    if !timeline.push(entry) {
                        return Err(corrupt(format!(
                            "account {tenant}/{account}: entry at position {position} is out of \
                             order or of an unknown type"
                        )));
                    }
                }
            }
            for (key, item) in slot.items {
                if !timeline.directory.restore(key, item) {
                    return Err(corrupt(format!(
                        "account {tenant}/{account}: a directory item does not match its key"
                    )));
                }
            }
            for (key, facts) in slot.names {
                if !timeline.names.restore(key, facts) {
                    return Err(corrupt(format!(
                        "account {tenant}/{account}: naming facts out of order"
                    )));
                }
            }
            timeline.persisted = timeline.entries.len();
            // Sealed chunks are in the tree already: a page reads their details back.
            timeline.sealed_when_flushed = timeline.persisted / CHUNK * CHUNK;
            timeline.forget_sealed_details();
            // The open chunk's interactions: its next rewrite writes them again.
            if timeline.persisted % CHUNK != 0 {
                if let Some(bytes) = slot.interactions.get(&(timeline.persisted / CHUNK)) {
                    timeline.chunk_interactions = postcard::from_bytes(bytes)
                        .map_err(|e| corrupt(format!("interactions of {tenant}/{account}: {e}")))?;
                }
            }
            accounts
                .entry(tenant)
                .or_default()
                .insert(account, Arc::new(RwLock::new(timeline)));
        }
        *write(&self.inner.accounts) = accounts;
        *write(&self.inner.tree) = Some(tree.clone());
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
                event_type: event.event.event_type().to_owned(),
                actor: event.actor.clone(),
                occurred_at: event.occurred_at.0,
                recorded_at: event.recorded_at.0,
                summary: described.summary,
                subjects: described.subjects.into_iter().collect(),
                corrects: described.corrects,
            });
            if let (true, Some((id, details))) = (pushed, content) {
                timeline.chunk_interactions.push((
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
        let sealed = std::mem::take(&mut *write(&rebuilt.inner.sealed_last_flush));
        // Both under the tree's lock, taken first as queries take it: a query sees the old
        // timelines with the old tree or the new with the new, never a mix.
        let mut serving_tree = write(&self.inner.tree);
        let old = std::mem::replace(&mut *write(&self.inner.accounts), accounts);
        *serving_tree = tree;
        drop(serving_tree);
        *write(&self.inner.sealed_last_flush) = sealed;
        self.inner.dirty.adopt(&rebuilt.inner.dirty);
        drop(old); // closes the old live channels (outside the lock)
        true
    }

    fn flush(&self, batch: &mut keyplan_projection::Batch) -> Result<(), ProjectionError> {
        let dirty = self.inner.dirty.take();
        let evict = read(&self.inner.tree).is_some();
        let sealed_before = std::mem::take(&mut *write(&self.inner.sealed_last_flush));
        if evict {
            for (tenant, account) in sealed_before {
                if let Some(shared) = self.account(&tenant, &account) {
                    let mut timeline = write(&shared);
                    timeline.forget_sealed_details();
                }
            }
        }
        let mut sealed_now = Vec::new();
        for (tenant, account) in dirty {
            let Some(shared) = self.account(&tenant, &account) else {
                continue;
            };
            let mut timeline = write(&shared);
            let len = timeline.entries.len();
            if len > timeline.persisted {
                for chunk in timeline.persisted / CHUNK..=(len - 1) / CHUNK {
                    let range = chunk * CHUNK..len.min((chunk + 1) * CHUNK);
                    let entries = range
                        .clone()
                        .map(|i| timeline.stored(i))
                        .collect::<Option<Vec<StoredEntry>>>()
                        .ok_or_else(|| {
                            corrupt(format!(
                                "{tenant}/{account}: chunk {chunk} is open but lost entries"
                            ))
                        })?;
                    let bytes = postcard::to_allocvec(&entries)
                        .map_err(|e| corrupt(format!("encoding {tenant}/{account}: {e}")))?;
                    batch.insert(chunk_key(&tenant, &account, chunk), bytes);
                    let positions = timeline.entries[range.start].position
                        ..=timeline.entries[range.end - 1].position;
                    let interactions: Vec<&(InteractionId, InteractionInfo)> = timeline
                        .chunk_interactions
                        .iter()
                        .filter(|(_, info)| positions.contains(&info.position))
                        .collect();
                    if !interactions.is_empty() {
                        let bytes = postcard::to_allocvec(&interactions)
                            .map_err(|e| corrupt(format!("encoding {tenant}/{account}: {e}")))?;
                        batch.insert(interactions_key(&tenant, &account, chunk), bytes);
                    }
                }
                timeline.persisted = len;
                if len / CHUNK * CHUNK > timeline.sealed_when_flushed {
                    timeline.sealed_when_flushed = len / CHUNK * CHUNK;
                    sealed_now.push((tenant.clone(), account.clone()));
                }
                // Sealed chunks are never rewritten: keep only the open chunk's content.
                match timeline
                    .entries
                    .get(len / CHUNK * CHUNK)
                    .map(|e| e.position)
                {
                    Some(open_from) => timeline
                        .chunk_interactions
                        .retain(|(_, info)| info.position >= open_from),
                    None => timeline.chunk_interactions.clear(),
                }
            }
            for key in std::mem::take(&mut timeline.touched) {
                if matches!(key, DirKey::Interaction(_)) {
                    continue; // stored per chunk, under `x/`
                }
                if let Some(item) = timeline.directory.item(&key) {
                    let bytes = postcard::to_allocvec(&item)
                        .map_err(|e| corrupt(format!("encoding {tenant}/{account}: {e}")))?;
                    batch.insert(dir_key(&tenant, &account, &key), bytes);
                }
            }
            for key in std::mem::take(&mut timeline.names_touched) {
                if let Some(facts) = timeline.names.facts(&key) {
                    let bytes = postcard::to_allocvec(facts)
                        .map_err(|e| corrupt(format!("encoding {tenant}/{account}: {e}")))?;
                    batch.insert(names_key(&tenant, &account, &key), bytes);
                }
            }
            if evict {
                // Every interaction in memory was logged or corrected since the last flush, so
                // is in this batch's `x/` keys, which the runner applies before the next event.
                timeline.directory.interactions.clear();
            }
        }
        *write(&self.inner.sealed_last_flush) = sealed_now;
        Ok(())
    }
}
