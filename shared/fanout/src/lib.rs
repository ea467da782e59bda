//! Fan-out of Keyplan's log over NATS JetStream.
//!
//! sled stays the source of truth; JetStream is the distribution layer. The [`relay`] (a
//! transactional outbox) tails the committed log and publishes every event, in order, to one
//! JetStream stream so that the **JetStream sequence equals the global position**: one
//! coordinate for every consumer, whether it reads the local log or NATS.
//!
//! - [`config`]: connection options (servers, credentials, TLS, reconnect backoff) and the
//!   stream's settings.
//! - [`connection`]: connecting, with the connection state observable.
//! - [`subjects`]: the subject scheme and message headers.
//! - [`stream`]: creating/updating the stream at start.
//! - [`relay`]: the outbox relay.
//! - [`alerts`]: compliance alerts' subjects and stream (not events: a stream of their own).

pub mod alerts;
pub mod config;
pub mod connection;
pub mod relay;
pub mod signing;
pub mod stream;
pub mod subjects;

pub use config::{NatsConfig, StreamSettings};
pub use connection::{connect, NatsConnection};
pub use relay::{Relay, RelayStatus};

use thiserror::Error;

/// Why talking to NATS failed.
#[derive(Debug, Error)]
pub enum FanoutError {
    /// Connecting failed.
    #[error("connecting to NATS: {0}")]
    Connect(String),
    /// A JetStream request failed.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// JetStream holds something the log does not: the relay refuses to publish over it.
    #[error("JetStream stream does not match the log: {0}")]
    Mismatch(String),
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] keyplan_store::StoreError),
    /// A stored event cannot be turned into its protobuf form.
    #[error("stored event cannot be decoded: {0}")]
    Codec(#[from] keyplan_domain::codec::CodecError),
    /// Reading a credentials or certificate file failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
