//! Loading key accounts from the event store and executing commands against them.
//!
//! This is the write path between the gRPC services and the store: it keeps a cache of current
//! account states, bounded in accounts and bytes, (so validating a command does not replay the stream), runs the
//! domain's `decide`, and appends the resulting events with optimistic concurrency. Commands
//! for one account are serialised in-process by a per-account lock, so a busy team logging
//! calls on one account queues instead of colliding; the store's expected-version check
//! remains the final guard.

mod cache;
mod error;
mod repository;
mod snapshot;

pub use error::{Conflict, RepositoryError};
pub use repository::{
    AccountRepository, CommandEnvelope, ExecuteOutcome, RepositoryConfig, DEFAULT_CACHE_BYTES,
    MAX_COMMANDS_PER_REQUEST,
};
