//! The Keyplan event store, on sled.
//!
//! - **Streams** (one per key account, namespaced by tenant) with per-stream versions and
//!   optimistic concurrency ([`ExpectedVersion`]).
//! - A **global log** with gapless positions across all streams, the order every projection
//!   and subscriber follows.
//! - A per-stream **SHA-256 hash chain** and [`EventStore::verify_stream`], so auditors can
//!   prove nothing was rewritten.
//! - **Idempotent** appends: a retry (same idempotency key or event ids) returns the original
//!   outcome and stores nothing, for as long as the log exists.
//! - **Group commit** ([`writer`]): concurrent appends share one sled write, flush and
//!   `fdatasync`; an append is acknowledged only once durable.
//! - **Subscriptions** ([`subscription`]): catch up from a position, then follow live, without
//!   gap or duplicate; a slow subscriber just reads further behind, it is never dropped.
//!
//! The store knows nothing of the KAM domain: payloads are opaque, typed bytes.

pub mod acknowledged;
mod durable;
pub mod error;
pub mod idempotency;
pub mod index;
pub mod layout;
mod position_index;
pub mod record;
pub mod recovery;
pub mod settings;
mod snapshots;
mod store;
pub mod subscription;
#[cfg(feature = "test-support")]
pub mod tamper;
pub mod writer;

pub use error::StoreError;
pub use record::*;
pub use store::{
    Direction, EventFilter, EventStore, LogSlice, StoreConfig, StreamSlice, VerifyReport,
};
pub use subscription::Subscription;
pub use writer::{CommitHook, CommitStats};
