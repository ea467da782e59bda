//! Scale-out: tenants sharded over several ingest nodes, each shard with its own log and its
//! own JetStream stream, so that "sequence == position" holds per shard.
//!
//! - [`map`]: the shard map every node of a cluster is started with, and which shard owns a
//!   tenant.
//! - [`route`]: the tower layer that serves a call on this node or forwards it to a node of
//!   its tenant's shard, and [`ByShard`], which serves it with the right shard's service on
//!   a node that follows several.

pub mod map;
pub mod route;

pub use map::{MapError, Shard, ShardMap, ALL_SHARDS};
pub use route::{ByShard, RouteError, RouteLayer, ServedShard};
