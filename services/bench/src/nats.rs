//! A private `nats-server` with JetStream for the fan-out and rebuild scenarios: on a free
//! loopback port, storing in a temporary directory, killed when dropped.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// A running nats-server.
#[derive(Debug)]
pub struct NatsProcess {
    _child: Child,
    url: String,
    _dir: TempDir,
}

impl NatsProcess {
    /// Starts `nats-server -js` on a free port and waits until it accepts clients.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("keyplan-bench-nats-")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nats-server (Debian package nats-server; .ci/run installs it)")?;
        let url = format!("nats://127.0.0.1:{port}");
        for _ in 0..200 {
            if let Ok(client) = async_nats::connect(&url).await {
                if client.flush().await.is_ok() {
                    return Ok(Self {
                        _child: child,
                        url,
                        _dir: dir,
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("nats-server did not start on port {port}")
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }
}
