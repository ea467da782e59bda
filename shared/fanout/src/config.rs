//! NATS connection options and JetStream stream settings.

use std::path::PathBuf;
use std::time::Duration;

/// How to reach NATS.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URLs (`nats://host:4222`, `tls://...`); the client fails over between them.
    pub urls: Vec<String>,
    /// A `.creds` file (JWT + NKey).
    pub credentials_file: Option<PathBuf>,
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password (with `user`).
    pub password: Option<String>,
    /// Token authentication.
    pub token: Option<String>,
    /// Require TLS.
    pub tls_required: bool,
    /// Extra root certificate (PEM) to trust.
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub tls_client_cert: Option<(PathBuf, PathBuf)>,
    /// Longest pause between reconnect attempts (attempts back off exponentially up to it).
    pub max_reconnect_delay: Duration,
    /// Name the connection reports to the server.
    pub connection_name: String,
    /// The JetStream stream events go to.
    pub stream: StreamSettings,
}

impl NatsConfig {
    /// Defaults for a comma-separated list of URLs.
    pub fn new(urls: &str) -> Self {
        Self {
            urls: urls
                .split(',')
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect(),
            credentials_file: None,
            user: None,
            password: None,
            token: None,
            tls_required: false,
            tls_ca_file: None,
            tls_client_cert: None,
            max_reconnect_delay: Duration::from_secs(5),
            connection_name: "keyplan".into(),
            stream: StreamSettings::default(),
        }
    }
}

/// The JetStream stream Keyplan publishes to; created or updated at start.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Stream name.
    pub name: String,
    /// First subject token: events go to `<prefix>.<tenant>.<account>.<event type>`.
    pub subject_prefix: String,
    /// Drop messages older than this (zero: keep forever). The log in sled keeps everything
    /// regardless; this bounds only what NATS keeps for replay.
    pub max_age: Duration,
    /// Drop the oldest messages beyond this many bytes (-1: unlimited).
    pub max_bytes: i64,
    /// Replicas in a NATS cluster.
    pub replicas: usize,
    /// Window within which JetStream drops a re-published message id.
    pub duplicate_window: Duration,
    /// Signs each published message (relay) and is required of each consumed one
    /// (projections); see [`crate::signing`].
    pub signing_key: Option<crate::signing::SigningKey>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name: "KEYPLAN".into(),
            subject_prefix: "keyplan".into(),
            max_age: Duration::ZERO,
            max_bytes: -1,
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            signing_key: None,
        }
    }
}
