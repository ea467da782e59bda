//! The command service: the write side of Keyplan's gRPC API.
//!
//! One `Execute` call per command, carrying the tenant, the account, the version its author
//! saw, an idempotency key and the command itself. This crate only translates: wire to domain
//! (via `keyplan-proto`), domain errors to gRPC statuses ([`status`]); the work is done by
//! `keyplan-repository`.

mod service;
pub mod status;

pub use service::CommandApi;
