//! Scale-out: tenants sharded over several ingest nodes, each shard with its own log and its
//! own JetStream stream, so that "sequence == position" holds per shard.
//!
//! - [`map`]: the shard map every node of a cluster is started with, and which shard owns a
//!   tenant.
//! - [`route`]: the tower layer that serves a call on this node or forwards it to a node of
//!   its tenant's shard.

pub mod map;
pub mod route;

pub use map::{MapError, Shard, ShardMap};
pub use route::{RouteError, RouteLayer};
