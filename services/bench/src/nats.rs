//! A private `nats-server` with JetStream for the fan-out and rebuild scenarios: on a free
//! loopback port, storing in a temporary directory, killed when dropped.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// Running nats-servers: one, or a JetStream cluster.
#[derive(Debug)]
pub struct NatsProcess {
    _children: Vec<Child>,
    urls: Vec<String>,
    _dir: TempDir,
}

/// A port that was free a moment ago on loopback (for a process that must be told its port).
pub fn free_port() -> Result<u16> {
    Ok(keyplan_testkit::ports::loopback_port()?)
}

impl NatsProcess {
    /// Starts `nats-server -js` on a free port and waits until it accepts clients.
    pub async fn start() -> Result<Self> {
        Self::start_nodes(1).await
    }

    /// Starts `nodes` nats-servers with JetStream, clustered when more than one (routes
    /// between all of them on loopback), and waits until JetStream answers (a meta leader was
    /// elected).
    pub async fn start_nodes(nodes: usize) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("keyplan-bench-nats-")
            .tempdir()?;
        let ports: Vec<(u16, u16)> = (0..nodes)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<Result<_>>()?;
        let routes = ports
            .iter()
            .map(|(_, cluster)| format!("nats://127.0.0.1:{cluster}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut children = Vec::new();
        let mut urls = Vec::new();
        for (n, (client, cluster)) in ports.iter().enumerate() {
            let mut command = Command::new("nats-server");
            command
                .args(["-a", "127.0.0.1", "-p", &client.to_string(), "-js", "-sd"])
                .arg(dir.path().join(format!("n{n}")));
            if nodes > 1 {
                command.args([
                    "--server_name",
                    &format!("n{n}"),
                    "--cluster_name",
                    "keyplan-bench",
                    "--cluster",
                    &format!("nats://127.0.0.1:{cluster}"),
                    "--routes",
                    &routes,
                ]);
            }
            children.push(
                command
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .context(
                        "starting nats-server (Debian package nats-server; .ci/run installs it)",
                    )?,
            );
            urls.push(format!("nats://127.0.0.1:{client}"));
        }
        for _ in 0..400 {
            if let Ok(client) = async_nats::connect(urls[0].as_str()).await {
                if let Ok(answer) = client.request("$JS.API.INFO", "".into()).await {
                    if !answer.payload.windows(8).any(|w| w == b"\"error\"") {
                        return Ok(Self {
                            _children: children,
                            urls,
                            _dir: dir,
                        });
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!(
            "nats-server ({nodes} node(s)) did not start on {}",
            urls.join(", ")
        )
    }

    /// The first node's `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.urls[0]
    }

    /// The nats-servers' process ids (to read the CPU time they used).
    pub fn pids(&self) -> Vec<u32> {
        self._children.iter().filter_map(Child::id).collect()
    }

    /// Every node's URL, comma-separated (what `--nats-url` takes).
    pub fn urls(&self) -> String {
        self.urls.join(",")
    }
}
