//! Timeline queries: scope, filters, order, and the opaque page token.
//!
//! A page is keyed by the sort key of its last entry, `(occurred_at, position)`, never by an
//! offset: appending events (even ones that sort before the cursor) cannot shift, duplicate or
//! hide entries on the pages still to come. The token also carries a fingerprint of the query
//! it continues, so that a token replayed against another account, scope, filter or order is
//! refused instead of silently returning an unrelated slice.

use std::collections::BTreeSet;

use keyplan_domain::values::Timestamp;
use keyplan_domain::AccountEvent;

use crate::directory::SubjectKey;
use crate::error::TimelineError;

/// Entries per page when the request does not say.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Most entries per page; larger requests are served this many.
pub const MAX_PAGE_SIZE: usize = 500;

/// Token format version (first byte), so the format can evolve without misreading old tokens.
const TOKEN_VERSION: u8 = 1;
/// Version, order, occurred_at, position, fingerprint.
const TOKEN_LEN: usize = 1 + 1 + 8 + 8 + 8;

/// Which entries of the account a query reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every entry.
    Account,
    /// Entries concerning one plan, stakeholder, supplier person or opportunity.
    Subject(SubjectKey),
}

/// Page order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Latest business time first (the default: what happened lately).
    #[default]
    NewestFirst,
    /// Earliest business time first.
    OldestFirst,
}

/// Where a page ends: the sort key of its last entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Business time of the last entry returned.
    pub occurred_at: Timestamp,
    /// Its global position (unique, breaks ties).
    pub position: u64,
}

/// A validated timeline query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineQuery {
    /// Which entries.
    pub scope: Scope,
    /// Only these event types (names from [`AccountEvent::TYPES`]); empty = all.
    pub event_types: BTreeSet<&'static str>,
    /// Only entries with `occurred_at >= occurred_from`.
    pub occurred_from: Option<Timestamp>,
    /// Only entries with `occurred_at < occurred_to`.
    pub occurred_to: Option<Timestamp>,
    /// Only entries recorded by this actor.
    pub actor: Option<String>,
    /// Page order.
    pub order: Order,
    /// Most entries returned (1..=[`MAX_PAGE_SIZE`]).
    pub page_size: usize,
    /// Continue after this entry (from a page token).
    pub after: Option<Cursor>,
}

impl TimelineQuery {
    /// The first page of `scope`, newest first, unfiltered, [`DEFAULT_PAGE_SIZE`] entries.
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            event_types: BTreeSet::new(),
            occurred_from: None,
            occurred_to: None,
            actor: None,
            order: Order::NewestFirst,
            page_size: DEFAULT_PAGE_SIZE,
            after: None,
        }
    }

    /// Sets the page size from a request value: 0 means the default, larger than
    /// [`MAX_PAGE_SIZE`] means the maximum.
    pub fn with_page_size(mut self, requested: u32) -> Self {
        self.page_size = match requested as usize {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        self
    }

    /// Adds event types to the filter; an unknown name is refused, listing the known ones.
    pub fn with_event_types<S: AsRef<str>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, TimelineError> {
        for name in names {
            self.event_types.insert(event_type(name.as_ref())?);
        }
        Ok(self)
    }

    /// Restricts business time to `[from, to)`; refused if `to` is not after `from`.
    pub fn with_time_range(
        mut self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Self, TimelineError> {
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                return Err(TimelineError::invalid(
                    "occurred_to",
                    format!(
                        "must be after occurred_from ({from}), got {to}; the range is \
                         [occurred_from, occurred_to)"
                    ),
                ));
            }
        }
        self.occurred_from = from;
        self.occurred_to = to;
        Ok(self)
    }

    /// Bit `i` set for every filtered type `AccountEvent::TYPES[i]`; 0 when unfiltered.
    pub(crate) fn event_type_mask(&self) -> u64 {
        self.event_types
            .iter()
            .filter_map(|name| type_index(name))
            .fold(0, |mask, i| mask | (1u64 << i))
    }

    /// A stable hash of what the query selects (not of its page size or position), so that a
    /// token only continues the query that issued it. FNV-1a: stable across Rust versions
    /// and restarts, unlike `DefaultHasher`.
    fn fingerprint(&self, tenant: &str, account: &str) -> u64 {
        let mut h = Fnv::default();
        h.field(tenant.as_bytes());
        h.field(account.as_bytes());
        match &self.scope {
            Scope::Account => h.field(b"account"),
            Scope::Subject(SubjectKey::Plan(id)) => {
                h.field(b"plan");
                h.field(id.as_str().as_bytes());
            }
            Scope::Subject(SubjectKey::Stakeholder(id)) => {
                h.field(b"stakeholder");
                h.field(id.as_str().as_bytes());
            }
            Scope::Subject(SubjectKey::Person(id)) => {
                h.field(b"person");
                h.field(id.as_str().as_bytes());
            }
            Scope::Subject(SubjectKey::Opportunity(id)) => {
                h.field(b"opportunity");
                h.field(id.as_str().as_bytes());
            }
        }
        for name in &self.event_types {
            h.field(name.as_bytes());
        }
        h.field(b"|");
        for bound in [self.occurred_from, self.occurred_to] {
            match bound {
                Some(t) => h.field(&t.0.to_be_bytes()),
                None => h.field(b"-"),
            }
        }
        h.field(self.actor.as_deref().unwrap_or("\0any").as_bytes());
        h.field(match self.order {
            Order::NewestFirst => b"newest",
            Order::OldestFirst => b"oldest",
        });
        h.0
    }

    /// The opaque token that continues this query after `cursor`.
    pub fn page_token(&self, tenant: &str, account: &str, cursor: Cursor) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.push(TOKEN_VERSION);
        bytes.push(match self.order {
            Order::NewestFirst => 0,
            Order::OldestFirst => 1,
        });
        bytes.extend_from_slice(&cursor.occurred_at.0.to_be_bytes());
        bytes.extend_from_slice(&cursor.position.to_be_bytes());
        bytes.extend_from_slice(&self.fingerprint(tenant, account).to_be_bytes());
        hex::encode(bytes)
    }

    /// Continues after the page that issued `token` (field `page_token`).
    pub fn resume(
        mut self,
        tenant: &str,
        account: &str,
        token: &str,
    ) -> Result<Self, TimelineError> {
        let malformed = || {
            TimelineError::invalid(
                "page_token",
                "is not a token issued by ListTimeline (it must be passed back unchanged); \
                 leave it empty to start from the first page",
            )
        };
        let bytes = hex::decode(token).map_err(|_| malformed())?;
        if bytes.len() != TOKEN_LEN || bytes[0] != TOKEN_VERSION {
            return Err(malformed());
        }
        let word = |at: usize| -> Result<[u8; 8], TimelineError> {
            bytes[at..at + 8].try_into().map_err(|_| malformed())
        };
        let order = match bytes[1] {
            0 => Order::NewestFirst,
            1 => Order::OldestFirst,
            _ => return Err(malformed()),
        };
        let occurred_at = Timestamp(i64::from_be_bytes(word(2)?));
        let position = u64::from_be_bytes(word(10)?);
        let fingerprint = u64::from_be_bytes(word(18)?);
        if order != self.order || fingerprint != self.fingerprint(tenant, account) {
            return Err(TimelineError::invalid(
                "page_token",
                "was issued for a different query: a token only continues the same account, \
                 scope, event types, time range, actor and order; leave it empty to start \
                 this query from the first page",
            ));
        }
        self.after = Some(Cursor {
            occurred_at,
            position,
        });
        Ok(self)
    }
}

/// The static name of an event type, or `InvalidArgument` listing the known ones.
pub fn event_type(name: &str) -> Result<&'static str, TimelineError> {
    AccountEvent::TYPES
        .iter()
        .find(|t| **t == name)
        .copied()
        .ok_or_else(|| {
            TimelineError::invalid(
                "event_types",
                format!(
                    "unknown event type {}; known types: {}",
                    keyplan_domain::text::quote(name),
                    AccountEvent::TYPES.join(", ")
                ),
            )
        })
}

/// Index of an event type in [`AccountEvent::TYPES`].
pub(crate) fn type_index(name: &str) -> Option<u8> {
    AccountEvent::TYPES
        .iter()
        .position(|t| *t == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// 64-bit FNV-1a, with a separator after each field so that ("ab","c") != ("a","bc").
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn field(&mut self, bytes: &[u8]) {
        for b in bytes.iter().chain(std::iter::once(&0xff)) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplan_domain::ids::PlanId;

    fn plan(id: &str) -> Scope {
        Scope::Subject(SubjectKey::Plan(PlanId::parse(id).expect("valid id")))
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(
            TimelineQuery::new(Scope::Account)
                .with_page_size(0)
                .page_size,
            50
        );
        assert_eq!(
            TimelineQuery::new(Scope::Account)
                .with_page_size(7)
                .page_size,
            7
        );
        assert_eq!(
            TimelineQuery::new(Scope::Account)
                .with_page_size(10_000)
                .page_size,
            500
        );
    }

    #[test]
    fn unknown_event_types_and_empty_ranges_are_refused() {
        let err = TimelineQuery::new(Scope::Account)
            .with_event_types(["InteractionLogged", "MeetingHappened"])
            .expect_err("unknown type");
        assert!(
            matches!(&err, TimelineError::InvalidArgument { field: "event_types", reason } if reason.contains("MeetingHappened") && reason.contains("InteractionCorrected"))
        );
        let err = TimelineQuery::new(Scope::Account)
            .with_time_range(Some(Timestamp(10)), Some(Timestamp(10)))
            .expect_err("empty range");
        assert!(matches!(
            err,
            TimelineError::InvalidArgument {
                field: "occurred_to",
                ..
            }
        ));
    }

    #[test]
    fn tokens_round_trip_and_only_continue_their_own_query() {
        let query = TimelineQuery::new(plan("plan-2025"))
            .with_event_types(["InteractionLogged"])
            .expect("known type");
        let cursor = Cursor {
            occurred_at: Timestamp(-5),
            position: 42,
        };
        let token = query.page_token("acme", "globex", cursor);
        let resumed = query
            .clone()
            .with_page_size(3)
            .resume("acme", "globex", &token)
            .expect("same query");
        assert_eq!(resumed.after, Some(cursor));

        let other_scope = TimelineQuery {
            scope: plan("plan-2026"),
            ..query.clone()
        };
        let other_order = TimelineQuery {
            order: Order::OldestFirst,
            ..query.clone()
        };
        let other_actor = TimelineQuery {
            actor: Some("dana.kim".into()),
            ..query.clone()
        };
        for (q, account) in [
            (other_scope, "globex"),
            (other_order, "globex"),
            (other_actor, "globex"),
            (query.clone(), "initech"),
        ] {
            let err = q
                .resume("acme", account, &token)
                .expect_err("different query");
            assert!(
                matches!(&err, TimelineError::InvalidArgument { field: "page_token", reason } if reason.contains("different query"))
            );
        }
        for bad in ["", "zz", "01", &token[..token.len() - 2]] {
            let err = query
                .clone()
                .resume("acme", "globex", bad)
                .expect_err("malformed");
            assert!(
                matches!(&err, TimelineError::InvalidArgument { field: "page_token", reason } if reason.contains("not a token"))
            );
        }
    }
}
