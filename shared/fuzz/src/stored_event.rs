//! Fuzz body: a stored event's (type, schema version, payload), as the domain decodes and
//! upcasts it.
//!
//! Input: one byte choosing the event type (a known one, or, past the table, the rest of a
//! NUL-terminated string), two bytes of schema version (little-endian), then the payload.
//! Decoding must never panic, and whatever decodes must survive encode -> decode unchanged.

use keyplan_domain::codec::{decode, encode};
use keyplan_domain::AccountEvent;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let types = AccountEvent::TYPES;
    let (event_type, rest): (String, &[u8]) = match types.get(usize::from(selector)) {
        Some(t) => ((*t).to_owned(), rest),
        None => {
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let name = String::from_utf8_lossy(&rest[..end]).into_owned();
            (name, rest.get(end + 1..).unwrap_or(&[]))
        }
    };
    let (version, payload) = match rest {
        [a, b, payload @ ..] => (u16::from_le_bytes([*a, *b]), payload),
        _ => (u16::from(rest.first().copied().unwrap_or(1)), &[][..]),
    };
    let Ok(event) = decode(&event_type, version, payload) else {
        return;
    };
    let encoded = encode(&event);
    assert_eq!(encoded.event_type, event_type, "decoded into another type");
    let again = decode(encoded.event_type, encoded.schema_version, &encoded.payload);
    assert_eq!(
        again.as_ref(),
        Ok(&event),
        "encode -> decode changed the event"
    );
}
