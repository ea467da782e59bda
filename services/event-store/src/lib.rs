//! The event-store service: raw reads of Keyplan's log over gRPC.
//!
//! Read a stream forwards or backwards, read the global log with filters, subscribe (catch-up
//! then live, as a server stream), and verify a stream's hash chain. Events go out in their
//! protobuf form, decoded and upcast to the current schema, with full metadata and hashes.

mod service;
pub mod status;

pub use service::EventStoreApi;
