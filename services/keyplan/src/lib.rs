//! The `keyplan` server: assembles a node of the configured role (all, ingest, projections).
//!
//! `main` stays thin (parse the configuration, start the node, bind, serve); everything a
//! test needs to start a real node lives here.

pub mod admin;
pub mod alerts;
pub mod cli;
pub mod cluster;
pub mod cluster_status;
pub mod config;
pub mod identity;
pub mod limits;
pub mod loading;
pub mod metrics;
pub mod operations;
pub mod recover;
pub mod server;
pub mod server_timing;
pub mod shutdown;
pub mod status_guard;
pub mod tls;
pub mod web;

pub use server::{Node, NodeError};
