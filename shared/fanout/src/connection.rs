//! Connecting to NATS, with reconnection and an observable connection state.

use std::time::Duration;

use async_nats::{ConnectOptions, Event};
use tokio::sync::watch;

use crate::config::NatsConfig;
use crate::FanoutError;

/// A NATS client and a feed of whether it is connected.
#[derive(Debug, Clone)]
pub struct NatsConnection {
    /// The client (reconnects by itself).
    pub client: async_nats::Client,
    /// `true` while connected; health reporting follows it.
    pub connected: watch::Receiver<bool>,
}

/// How often the client pings its server. A server that stops answering (paused, or cut off
/// by a partition while its TCP connection stays open) is given up after a few unanswered
/// pings and the client moves to another server of the cluster; with async-nats' default of a
/// minute, replicated acknowledgements stalled for minutes behind one silent node
/// (`tests/cluster.rs`, the node paused with SIGSTOP).
pub const PING_INTERVAL: Duration = Duration::from_secs(2);

/// Connects with the configured authentication and TLS, retrying the first connection and
/// reconnecting forever with exponential backoff (capped at `max_reconnect_delay`), so that a
/// NATS outage delays fan-out but never stops Keyplan.
pub async fn connect(config: &NatsConfig) -> Result<NatsConnection, FanoutError> {
    if config.urls.is_empty() {
        return Err(FanoutError::Connect("no NATS URL given".into()));
    }
    let (state_tx, state_rx) = watch::channel(false);
    let max_delay = config.max_reconnect_delay;
    let mut options = ConnectOptions::new()
        .name(&config.connection_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .ping_interval(PING_INTERVAL)
        .reconnect_delay_callback(move |attempts| {
            let exp = 10u64.saturating_mul(1u64 << attempts.min(16));
            Duration::from_millis(exp).min(max_delay)
        })
        .event_callback(move |event| {
            let state = state_tx.clone();
            async move {
                match event {
                    Event::Connected => {
                        state.send_replace(true);
                        tracing::info!("connected to NATS");
                    }
                    Event::Disconnected => {
                        state.send_replace(false);
                        tracing::warn!("disconnected from NATS; reconnecting");
                    }
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            }
        });
    if let Some(path) = &config.credentials_file {
        options = options.credentials_file(path).await?;
    }
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &config.token {
        options = options.token(token.clone());
    }
    if config.tls_required {
        options = options.require_tls(true);
    }
    if let Some(ca) = &config.tls_ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &config.tls_client_cert {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    let client = options
        .connect(config.urls.clone())
        .await
        .map_err(|e| FanoutError::Connect(e.to_string()))?;
    Ok(NatsConnection {
        client,
        connected: state_rx,
    })
}
