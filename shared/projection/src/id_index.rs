//! The way back from an id to its place in a list that already holds the ids.
//!
//! Read models keep an account's interactions in a `Vec` (in logging order) and need, for a
//! correction, the index of an interaction by its id. A `HashMap<Box<str>, u32>` stores every id
//! a second time, as an allocation of its own plus a pointer, a length and the index: per
//! interaction, a large share of what a read model keeps (BENCHMARKS.md). [`IdIndex`]
//! stores only the indexes (4 bytes and a control byte per id) and asks the list for the id
//! whenever it compares or rehashes, so the list stays the only copy.
//!
//! Hashing uses the standard library's randomly keyed hasher: ids are chosen by clients, and a
//! fixed hash would let one account's ids collide on purpose.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// Indexes into a list, found by the id of the item there. The list is the caller's: every
/// method takes it, and `id_of`, which reads an item's id.
#[derive(Clone, Default)]
pub struct IdIndex {
    table: HashTable<u32>,
    hasher: RandomState,
}

/// The id of the item at `index` of `list` ("" past its end, which an inserted index never is).
fn id_at<'a, T>(list: &'a [T], id_of: &impl Fn(&T) -> &str, index: u32) -> &'a str {
    list.get(index as usize).map_or("", id_of)
}

impl IdIndex {
    /// The index of the item with id `id`, if it was inserted.
    pub fn get<T>(&self, id: &str, list: &[T], id_of: impl Fn(&T) -> &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.table
            .find(hash, |&i| id_at(list, &id_of, i) == id)
            .copied()
    }

    /// Records that the item with id `id` is at `index` of `list`. The caller inserts each id
    /// once: a second insertion of the same id would shadow the first for [`IdIndex::get`].
    /// When the table grows, the ids of the indexes already inserted are read from `list`.
    pub fn insert<T>(&mut self, id: &str, index: u32, list: &[T], id_of: impl Fn(&T) -> &str) {
        let hash = self.hasher.hash_one(id);
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, index, |&i| hasher.hash_one(id_at(list, &id_of, i)));
    }

    /// How many ids it holds.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn sorted(&self) -> Vec<u32> {
        let mut indexes: Vec<u32> = self.table.iter().copied().collect();
        indexes.sort_unstable();
        indexes
    }
}

impl PartialEq for IdIndex {
    /// The same indexes (the hashers differ between instances; over equal lists, the same
    /// indexes mean the same ids).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.sorted() == other.sorted()
    }
}

impl Eq for IdIndex {}

impl std::fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdIndex")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn finds_every_inserted_id_and_nothing_else_through_growth() {
        let mut list: Vec<String> = Vec::new();
        let mut index = IdIndex::default();
        for n in 0..10_000u32 {
            let id = format!("interaction-{n}");
            list.push(id.clone());
            index.insert(&id, n, &list, String::as_str);
        }
        assert_eq!(index.len(), 10_000);
        for (n, id) in list.iter().enumerate() {
            assert_eq!(index.get(id, &list, String::as_str), Some(n as u32));
        }
        assert_eq!(index.get("interaction-10000", &list, String::as_str), None);
        assert_eq!(index.get("", &list, String::as_str), None);
    }

    #[test]
    fn equal_when_it_holds_the_same_indexes() {
        let list: Vec<String> = (0..100).map(|n| format!("i{n}")).collect();
        let mut a = IdIndex::default();
        let mut b = IdIndex::default();
        for (n, id) in list.iter().enumerate() {
            a.insert(id, n as u32, &list, String::as_str);
        }
        for (n, id) in list.iter().enumerate().rev() {
            b.insert(id, n as u32, &list, String::as_str);
        }
        assert_eq!(a, b);
        b = IdIndex::default();
        assert_ne!(a, b);
    }
}
