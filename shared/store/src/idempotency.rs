//! Idempotency keys, stored with the fingerprint of the request they were first used for.
//!
//! A retry must repeat its request: a key reused with a *different* request is a client bug
//! that would otherwise be answered "deduplicated" while the new request is silently dropped.
//! So the writer of an append may give, with its key, a fingerprint of the request (the
//! repository hashes the commands), and the store keeps both in the event's stored
//! `idempotency_key` as `key` [`SEPARATOR`] `fingerprint`. Keys cannot contain the separator
//! (an ASCII control character, refused in every key at the edge), and keys stored before
//! fingerprints existed have none: those keep answering any retry, as they always did.

/// Between a key and its fingerprint in the stored form (ASCII unit separator).
pub const SEPARATOR: char = '\u{1f}';

/// Splits a stored key into the caller's key and the fingerprint, if it has one.
pub fn split(stored: &str) -> (&str, Option<&str>) {
    match stored.split_once(SEPARATOR) {
        Some((key, fingerprint)) => (key, Some(fingerprint)),
        None => (stored, None),
    }
}

/// The stored form of `key` with `fingerprint`.
pub fn join(key: &str, fingerprint: &str) -> String {
    format!("{key}{SEPARATOR}{fingerprint}")
}

/// Whether a retry with `offered` may be answered with what was stored under `stored`: yes
/// unless both have a fingerprint and they differ.
pub fn same_request(stored: Option<&str>, offered: Option<&str>) -> bool {
    match (stored, offered) {
        (Some(stored), Some(offered)) => stored == offered,
        _ => true,
    }
}
