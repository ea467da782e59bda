//! How read models lay out their state in their tree ([`crate::store`]), once for all of them:
//! keys per account, postcard values, and histories stored as numbered chunks of a fixed size.
//!
//! Why chunks: a read model's per-account history only grows, and both extremes cost too
//! much. One key per item costs a key, a write and a lookup per item at every rebuild (under
//! sled, where this layout was chosen, a rebuild ran 0.27× as fast, BENCHMARKS.md); one value
//! per account would rewrite the account's whole history at every flush. Chunks of
//! a few dozen to a few hundred items make a flush rewrite only the chunks that gained (or,
//! for a read model that edits old items, changed) items, usually just the last one.
//!
//! Values carry no version byte: the layout's version is the projection's
//! [`crate::Projection::format`], recorded once per tree by the runner, which rebuilds a tree
//! stored in another format from the log.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::resident::AccountKey;
use crate::runner::RESERVED_PREFIX;
use crate::{ProjectionError, Tree, Value};

/// Encoding, decoding and the errors that name the projection whose state is damaged.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    name: &'static str,
}

impl Stored {
    /// For the projection called `name`.
    pub const fn new(name: &'static str) -> Self {
        Self { name }
    }

    /// The projection's stored state is unreadable, for `reason`.
    pub fn corrupt(&self, reason: impl Into<String>) -> ProjectionError {
        ProjectionError::Corrupt {
            name: self.name.into(),
            reason: reason.into(),
        }
    }

    /// `value` as postcard.
    pub fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, ProjectionError> {
        postcard::to_allocvec(value).map_err(|e| self.corrupt(format!("encoding: {e}")))
    }

    /// The value stored under `key`, naming the key if it does not decode.
    pub fn decode<T: DeserializeOwned>(
        &self,
        key: &[u8],
        bytes: &[u8],
    ) -> Result<T, ProjectionError> {
        postcard::from_bytes(bytes)
            .map_err(|e| self.corrupt(format!("{}: {e}", String::from_utf8_lossy(key))))
    }

    /// The key of one part of an account's state: `<tenant>/<account>/<part>`. Tenant and
    /// account ids never contain '/', so the first two '/' delimit them; the part may contain
    /// more. None starts with byte 0 (the runner's keys).
    pub fn key(tenant: &str, account: &str, part: &str) -> Vec<u8> {
        format!("{tenant}/{account}/{part}").into_bytes()
    }

    /// The key of chunk `index` of an account's history called `list`:
    /// `<tenant>/<account>/<list>/<index as 8 hex digits>` (so chunks sort in order).
    pub fn chunk_key(tenant: &str, account: &str, list: &str, index: u32) -> Vec<u8> {
        format!("{tenant}/{account}/{list}/{index:08x}").into_bytes()
    }

    /// `(occurred_at, position)` as 16 bytes whose order is the pair's order (big endian, the
    /// sign bit of `occurred_at` flipped so that times before 1970 sort first): the suffix of
    /// a key in an index by business time, read as a range from either end.
    pub fn sort_key(occurred_at: i64, position: u64) -> [u8; 16] {
        let mut key = [0; 16];
        key[..8].copy_from_slice(&((occurred_at as u64) ^ (1 << 63)).to_be_bytes());
        key[8..].copy_from_slice(&position.to_be_bytes());
        key
    }

    /// The pair a [`Stored::sort_key`] was made from; `None` if `bytes` is not 16 bytes long.
    pub fn parse_sort_key(bytes: &[u8]) -> Option<(i64, u64)> {
        let at = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?) ^ (1 << 63);
        let position = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        (bytes.len() == 16).then_some((at as i64, position))
    }

    /// Walks `tree` one account at a time, in key order, skipping the runner's keys: `each`
    /// gets an account and its entries in key order. For a start that reads the shape of each
    /// account's state rather than all of it; a key that is not an account's fails the walk.
    pub fn for_each_account(
        &self,
        tree: &Tree,
        mut each: impl FnMut(AccountKey, Vec<(Value, Value)>) -> Result<(), ProjectionError>,
    ) -> Result<(), ProjectionError> {
        let mut current: Option<(AccountKey, Vec<(Value, Value)>)> = None;
        for item in tree.iter() {
            let (key, value) = item?;
            if key.first() == Some(&RESERVED_PREFIX) {
                continue;
            }
            let parsed = self.parse_key(&key)?;
            let same = current.as_ref().is_some_and(|((tenant, account), _)| {
                tenant == parsed.tenant && account == parsed.account
            });
            if !same {
                let account = (parsed.tenant.to_owned(), parsed.account.to_owned());
                if let Some((done, entries)) = current.replace((account, Vec::new())) {
                    each(done, entries)?;
                }
            }
            if let Some((_, entries)) = &mut current {
                entries.push((key, value));
            }
        }
        match current {
            Some((account, entries)) => each(account, entries),
            None => Ok(()),
        }
    }

    /// Splits a key made by [`Stored::key`] or [`Stored::chunk_key`] into tenant, account and
    /// part, and a chunk key's part into its list and index.
    pub fn parse_key<'k>(&self, key: &'k [u8]) -> Result<Key<'k>, ProjectionError> {
        let text = std::str::from_utf8(key)
            .map_err(|e| self.corrupt(format!("key {:?}: {e}", String::from_utf8_lossy(key))))?;
        let mut parts = text.splitn(3, '/');
        let (Some(tenant), Some(account), Some(part)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(self.corrupt(format!("key {text:?} is not <tenant>/<account>/<part>")));
        };
        let chunk = part.rsplit_once('/').and_then(|(list, index)| {
            (index.len() == 8)
                .then(|| u32::from_str_radix(index, 16).ok())
                .flatten()
                .map(|index| (list, index))
        });
        Ok(Key {
            tenant,
            account,
            part,
            chunk,
        })
    }
}

/// A parsed key (see [`Stored::parse_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<'k> {
    /// The tenant.
    pub tenant: &'k str,
    /// The account.
    pub account: &'k str,
    /// What follows `<tenant>/<account>/`.
    pub part: &'k str,
    /// For a chunk key: the list and the chunk's index.
    pub chunk: Option<(&'k str, u32)>,
}

/// One account's history as its chunks are read back at load, in any order.
#[derive(Debug)]
pub struct LoadedChunks<T> {
    chunks: BTreeMap<u32, Vec<T>>,
}

impl<T> Default for LoadedChunks<T> {
    fn default() -> Self {
        Self {
            chunks: BTreeMap::new(),
        }
    }
}

impl<T> LoadedChunks<T> {
    /// Adds chunk `index`.
    pub fn insert(&mut self, index: u32, items: Vec<T>) {
        self.chunks.insert(index, items);
    }

    /// The items in order, once it is checked that the chunks are 0, 1, 2... with none
    /// missing, every one but the last full (`size` items) and the last not over full: any
    /// other shape means the tree was damaged, since a flush only ever writes that one.
    pub fn into_items(
        self,
        size: usize,
        stored: &Stored,
        owner: &str,
    ) -> Result<Vec<T>, ProjectionError> {
        let count = self.chunks.len();
        let mut items = Vec::with_capacity(count * size);
        for (expected, (index, chunk)) in (0u32..).zip(self.chunks) {
            let last = expected as usize + 1 == count;
            if index != expected || chunk.len() > size || (!last && chunk.len() != size) {
                return Err(stored.corrupt(format!(
                    "{owner}: chunk {index} is missing, misplaced or of the wrong size"
                )));
            }
            items.extend(chunk);
        }
        Ok(items)
    }
}

/// The chunks of a history of `len` items, `size` per chunk, that hold the items from
/// `first_changed` on: what a flush rewrites after items were appended from `first_changed`
/// (an append-only history: `first_changed` is the number of items already stored).
pub fn chunks_from(
    first_changed: usize,
    len: usize,
    size: usize,
) -> impl Iterator<Item = (u32, Range<usize>)> {
    let first = first_changed / size;
    let end = len.div_ceil(size);
    (first..end).map(move |chunk| {
        (
            u32::try_from(chunk).unwrap_or(u32::MAX),
            chunk * size..len.min((chunk + 1) * size),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Stored = Stored::new("test");

    #[test]
    fn keys_round_trip() {
        let key = Stored::chunk_key("acme", "globex", "i", 0x1a);
        assert_eq!(key, b"acme/globex/i/0000001a");
        let parsed = S.parse_key(&key).expect("parses");
        assert_eq!(
            (parsed.tenant, parsed.account, parsed.chunk),
            ("acme", "globex", Some(("i", 0x1a)))
        );
        let key = Stored::key("acme", "globex", "f");
        let parsed = S.parse_key(&key).expect("parses");
        assert_eq!((parsed.part, parsed.chunk), ("f", None));
        assert!(S.parse_key(b"acme/globex").is_err());
        assert!(S.parse_key(&[b'a', b'/', 0xff, b'/', b'x']).is_err());
    }

    #[test]
    fn sort_keys_sort_as_their_pairs() {
        let pairs = [
            (i64::MIN, 0),
            (-86_400_000_000, 7),
            (-1, u64::MAX),
            (0, 0),
            (0, 1),
            (1, 0),
            (1_780_000_000_000_000, 12),
            (i64::MAX, u64::MAX),
        ];
        let keys: Vec<[u8; 16]> = pairs.iter().map(|&(t, p)| Stored::sort_key(t, p)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for (key, pair) in keys.iter().zip(pairs) {
            assert_eq!(Stored::parse_sort_key(key), Some(pair));
        }
        assert_eq!(Stored::parse_sort_key(b"too short"), None);
        assert_eq!(Stored::parse_sort_key(&[0; 17]), None);
    }

    #[test]
    fn chunks_come_back_in_order_and_only_in_the_shape_a_flush_writes() {
        let mut loaded = LoadedChunks::default();
        loaded.insert(1, vec![4, 5]);
        loaded.insert(0, vec![1, 2, 3]);
        assert_eq!(
            loaded.into_items(3, &S, "a").expect("fits"),
            [1, 2, 3, 4, 5]
        );

        for chunks in [
            vec![(0, vec![1, 2]), (1, vec![3])], // a short chunk before the last
            vec![(0, vec![1, 2, 3]), (2, vec![4])], // a missing chunk
            vec![(1, vec![1])],                  // no chunk 0
            vec![(0, vec![1, 2, 3, 4])],         // over full
        ] {
            let mut loaded = LoadedChunks::default();
            for (index, items) in chunks.clone() {
                loaded.insert(index, items);
            }
            assert!(loaded.into_items(3, &S, "a").is_err(), "{chunks:?}");
        }
    }

    #[test]
    fn a_flush_rewrites_the_chunks_that_gained_items() {
        let chunks: Vec<_> = chunks_from(5, 11, 4).collect();
        assert_eq!(chunks, [(1, 4..8), (2, 8..11)]);
        assert_eq!(chunks_from(8, 8, 4).count(), 0);
        assert_eq!(chunks_from(0, 3, 4).collect::<Vec<_>>(), [(0, 0..3)]);
    }
}
