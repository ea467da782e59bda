//! The `keyplan` server: assembles the gRPC services over one event store.
//!
//! `main` stays thin (parse the configuration, open the store, bind, [`run`]); everything a
//! test needs to start a real server on port 0 lives here.

pub mod config;
pub mod server;

pub use server::{run, ServerError};
