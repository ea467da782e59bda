//! Test harness: the real `keyplan` binary on port 0 with a temp data dir, real gRPC clients.
#![allow(dead_code, clippy::unwrap_used)]

pub mod fixtures;
pub mod nats;
pub mod nats_proxy;
pub mod raw;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use keyplan_proto::pb;
use keyplan_proto::pb::account_service_client::AccountServiceClient;
use keyplan_proto::pb::command_service_client::CommandServiceClient;
use keyplan_proto::pb::event_store_service_client::EventStoreServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::{Channel, ClientTlsConfig};

/// A running `keyplan serve` process.
pub struct Server {
    child: Child,
    pub address: String,
    /// Where `--metrics-listen` serves, if given (the `keyplan metrics on` line).
    pub metrics_address: Option<String>,
    pub data_dir: PathBuf,
    channel: Channel,
}

impl Server {
    /// Starts the binary on a free port over `data_dir` and waits until it serves.
    pub async fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[]).await
    }

    /// As [`Server::start`], with extra `keyplan serve` arguments.
    pub async fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        // Nodes with read models (all, projections) serve them once loaded: wait for that, so
        // that tests see loaded read models rather than UNAVAILABLE.
        let has_read_models = !extra.windows(2).any(|w| w == ["--role", "ingest"]);
        Server::launch(data_dir, extra, has_read_models).await
    }

    /// As [`Server::start_with`], with environment variables for the binary (e.g. a
    /// `KEYPLAN_LOG` filter instead of the harness's `warn`).
    pub async fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyplan"));
        command.envs(env.iter().copied());
        let has_read_models = !extra.windows(2).any(|w| w == ["--role", "ingest"]);
        Server::launch_command(command, data_dir, extra, has_read_models).await
    }

    /// Starts an all-in-one node and returns as soon as it listens, without waiting for its
    /// read models (which may still load, or fail to).
    pub async fn start_listening(data_dir: &Path) -> Server {
        Server::launch(data_dir, &[], false).await
    }

    /// As [`Server::start_with`], started by `sh` after the shell command `setup` (e.g. a
    /// `ulimit`), which the binary inherits.
    pub async fn start_after(setup: &str, data_dir: &Path, extra: &[&str]) -> Server {
        let has_read_models = !extra.windows(2).any(|w| w == ["--role", "ingest"]);
        let mut command = Command::new("sh");
        command.args(["-c", &format!("{setup}\nexec \"$0\" \"$@\"")]);
        command.arg(env!("CARGO_BIN_EXE_keyplan"));
        Server::launch_command(command, data_dir, extra, has_read_models).await
    }

    async fn launch(data_dir: &Path, extra: &[&str], wait_for_read_models: bool) -> Server {
        let command = Command::new(env!("CARGO_BIN_EXE_keyplan"));
        Server::launch_command(command, data_dir, extra, wait_for_read_models).await
    }

    /// As [`Server::start_with`], for a node serving TLS (`extra` gives `--tls-cert` and
    /// `--tls-key`): the server's channel is `https://` with `tls` (which must trust the
    /// node's certificate, and present a client certificate if the node requires one).
    pub async fn start_tls(data_dir: &Path, extra: &[&str], tls: ClientTlsConfig) -> Server {
        let command = Command::new(env!("CARGO_BIN_EXE_keyplan"));
        Server::launch_command_tls(command, data_dir, extra, true, Some(tls)).await
    }

    async fn launch_command(
        command: Command,
        data_dir: &Path,
        extra: &[&str],
        wait_for_read_models: bool,
    ) -> Server {
        Server::launch_command_tls(command, data_dir, extra, wait_for_read_models, None).await
    }

    async fn launch_command_tls(
        mut command: Command,
        data_dir: &Path,
        extra: &[&str],
        wait_for_read_models: bool,
        tls: Option<ClientTlsConfig>,
    ) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .unwrap();
        if !command
            .as_std()
            .get_envs()
            .any(|(name, _)| name == "KEYPLAN_LOG")
        {
            // `KEYPLAN_TEST_LOG` (a `KEYPLAN_LOG` filter) makes every node of a test run log
            // more, to diagnose a failure.
            let filter = std::env::var("KEYPLAN_TEST_LOG").unwrap_or_else(|_| "warn".into());
            command.env("KEYPLAN_LOG", filter);
        }
        command.arg("serve");
        if !extra.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("the keyplan binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut metrics_address = None;
        let address = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(address) = line.strip_prefix("keyplan metrics on ") {
                    metrics_address = Some(address.to_owned());
                }
                if let Some(address) = line.strip_prefix("keyplan listening on ") {
                    return address.to_owned();
                }
            }
            panic!(
                "keyplan exited before listening; see {}",
                data_dir.with_extension("log").display()
            );
        })
        .await
        .expect("keyplan starts listening within 30 s");
        if wait_for_read_models {
            tokio::time::timeout(Duration::from_secs(30), async {
                while let Some(line) = lines.next_line().await.unwrap() {
                    if line == "keyplan read models ready" {
                        return;
                    }
                }
                panic!(
                    "keyplan exited before its read models were ready; see {}",
                    data_dir.with_extension("log").display()
                );
            })
            .await
            .expect("keyplan's read models are ready within 30 s");
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let channel = match tls {
            None => Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
            Some(tls) => Channel::from_shared(format!("https://{address}"))
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
                .unwrap(),
        };
        Server {
            child,
            address,
            metrics_address,
            data_dir: data_dir.to_owned(),
            channel,
        }
    }

    /// `GET /metrics` on the node's `--metrics-listen` over a plain TCP connection; the body
    /// (checked to be an OpenMetrics answer).
    pub async fn scrape_metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.metrics_address.as_deref().expect("a metrics listener");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(
                format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text"),
            "{head}"
        );
        body.to_owned()
    }

    pub fn commands(&self) -> CommandServiceClient<Channel> {
        CommandServiceClient::new(self.channel.clone())
    }

    pub fn events(&self) -> EventStoreServiceClient<Channel> {
        EventStoreServiceClient::new(self.channel.clone())
    }

    pub fn accounts(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.channel.clone())
    }

    pub fn operations(
        &self,
    ) -> keyplan_proto::pb::operations_service_client::OperationsServiceClient<Channel> {
        keyplan_proto::pb::operations_service_client::OperationsServiceClient::new(
            self.channel.clone(),
        )
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// From now on, the kernel refuses any write of the process past `bytes` into a file
    /// (EFBIG, as a full disk refuses with ENOSPC; start the node after `trap '' XFSZ` so that
    /// the write fails instead of the signal killing it). Set after the start, so that what
    /// the start creates (fjall preallocates a 64 MiB journal, sparse) is not refused.
    pub fn limit_file_size(&self, bytes: u64) {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("prlimit")
            .args([
                "--pid",
                &pid.to_string(),
                &format!("--fsize={bytes}:{bytes}"),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal `name` (e.g. `HUP`) without waiting.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `timeout` for the process to exit; its exit status.
    pub async fn wait_exit(mut self, timeout: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .expect("keyplan exits in time")
            .unwrap()
    }

    /// The node's log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// The last `n` lines of the node's log (see [`log_tail`]).
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.data_dir.with_extension("log"), n, "\n")
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn stop(mut self) {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(
            exit.success(),
            "keyplan exited with {exit}; its log:\n{}",
            self.log()
        );
    }
}

/// The whole global log, read through the API.
pub async fn read_all(server: &Server) -> Vec<pb::Event> {
    let mut client = server.events();
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let page = client
            .read_all(pb::ReadAllRequest {
                from_position: from,
                max_count: 1000,
                filter: None,
            })
            .await
            .unwrap()
            .into_inner();
        let done = page.events.is_empty();
        out.extend(page.events);
        if done || page.next_position > page.head_position {
            return out;
        }
        from = page.next_position;
    }
}

/// The head position, read through the API.
pub async fn head(server: &Server) -> u64 {
    server
        .events()
        .read_all(pb::ReadAllRequest {
            from_position: u64::MAX,
            max_count: 1,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner()
        .head_position
}

/// The last `n` lines of the log file at `path`, joined by `separator`: what a failing test
/// prints, since its temporary directory is gone once it fails.
pub fn log_tail(path: &Path, n: usize, separator: &str) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(separator)
}

/// Waits until the relay has published everything the log holds.
pub async fn wait_published(server: &Server) -> pb::NodeStatus {
    for _ in 0..600 {
        let status = server
            .operations()
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        let relay = status.relay.clone().unwrap();
        if relay.running
            && relay.published_position == status.head_position
            && relay.lag_positions == 0
        {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the relay did not catch up");
}

/// The node's `GetStatus`.
pub async fn status(server: &Server) -> pb::NodeStatus {
    server
        .operations()
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// Waits until every projection of `node` has applied `position`.
pub async fn wait_projected(node: &Server, position: u64) {
    for _ in 0..400 {
        let s = status(node).await;
        if !s.projections.is_empty() && s.projections.iter().all(|p| p.position >= position) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the projections did not reach position {position}");
}
