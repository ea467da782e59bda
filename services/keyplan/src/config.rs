//! Command-line and environment configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keyplan: an event-sourced collaboration backend for key account management.
#[derive(Debug, Parser)]
#[command(name = "keyplan", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (embedded: sled in a local data directory, no other server needed).
    Serve(ServeArgs),
}

/// Options of `keyplan serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory holding the event store (created if missing).
    #[arg(long, env = "KEYPLAN_DATA_DIR", default_value = "./keyplan-data")]
    pub data_dir: PathBuf,

    /// Address to serve gRPC on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "KEYPLAN_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// sled page cache size, in MiB (bounds the store's memory besides its indexes).
    #[arg(long, env = "KEYPLAN_CACHE_MB", default_value_t = 256)]
    pub cache_mb: u64,

    /// Number of account states kept in memory for command validation.
    #[arg(long, env = "KEYPLAN_CACHED_ACCOUNTS", default_value_t = 1024)]
    pub cached_accounts: usize,
}
