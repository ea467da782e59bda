//! Starting and stopping the `keyplan` server under test, and connecting to it.
//!
//! Each measured configuration gets its own process over a fresh data directory, so that a
//! result never depends on what ran before it (log size, index size, caches, sled's segments).
//! The process is started exactly as the end-to-end tests start it (port 0, the address read
//! from its stdout), so the harness needs no knowledge of free ports.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use std::sync::OnceLock;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

/// A connection to the node under test: every call carries the run's bearer token, if any.
pub type Channel = InterceptedService<tonic::transport::Channel, Bearer>;

/// The bearer token every call sends (`--auth`); unset: none.
static TOKEN: OnceLock<MetadataValue<Ascii>> = OnceLock::new();

/// Makes every call from now on carry `token` (once per run).
pub fn send_token(token: &str) -> Result<()> {
    let value: MetadataValue<Ascii> = format!("Bearer {token}")
        .parse()
        .context("the token is not a valid header value")?;
    TOKEN
        .set(value)
        .map_err(|_| anyhow::anyhow!("the token was already set"))
}

/// Adds `authorization: Bearer <token>` to every call when the run has a token.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bearer;

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = TOKEN.get() {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// How long the server may take to start listening, or to stop after SIGTERM. Generous: a
/// node restarted on a 10M-event log took longer than 30 s to listen.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(300);

/// The line `keyplan serve` prints once it listens, followed by the address.
const LISTENING_PREFIX: &str = "keyplan listening on ";

/// The line `keyplan serve` prints once its read models serve (nodes with read models).
const READ_MODELS_READY: &str = "keyplan read models ready";

/// How long a start took, from launching the process.
#[derive(Debug, Clone, Copy)]
pub struct ColdStart {
    /// Until it listened: its log and commands serve from then on.
    pub listening: Duration,
    /// Until its read models served too (`None`: the node has none, e.g. `--role ingest`).
    pub read_models: Option<Duration>,
}

/// A launched server: where it listens, and how long it took.
struct Started {
    address: String,
    cold_start: ColdStart,
}

/// Launches `keyplan serve` and waits until it listens and, if the node has read models
/// (every role but ingest), until they serve too; its stderr goes to `log_path`.
async fn launch(
    binary: &Path,
    listen: &str,
    data_dir: &Path,
    extra: &[String],
    log_path: &Path,
) -> Result<(Child, Started)> {
    let has_read_models = !extra
        .windows(2)
        .any(|w| w[0] == "--role" && w[1] == "ingest");
    let launched = std::time::Instant::now();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut child = Command::new(binary)
        .args(["serve", "--listen", listen, "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("KEYPLAN_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child
        .stdout
        .take()
        .context("the server's stdout is not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let waited = tokio::time::timeout(PROCESS_TIMEOUT, async {
        let mut address = None;
        let mut listening = Duration::ZERO;
        while let Some(line) = lines.next_line().await? {
            if let Some(listen) = line.strip_prefix(LISTENING_PREFIX) {
                address = Some(listen.trim().to_owned());
                listening = launched.elapsed();
                if !has_read_models {
                    break;
                }
            } else if line == READ_MODELS_READY {
                let read_models = Some(launched.elapsed());
                let address = address.context("keyplan reported read models before listening")?;
                return Ok(Started {
                    address,
                    cold_start: ColdStart {
                        listening,
                        read_models,
                    },
                });
            }
        }
        match address {
            Some(address) if !has_read_models => Ok(Started {
                address,
                cold_start: ColdStart {
                    listening,
                    read_models: None,
                },
            }),
            Some(_) => bail!("keyplan exited before its read models were ready"),
            None => bail!("keyplan exited before listening"),
        }
    })
    .await;
    let started = match waited {
        Ok(Ok(started)) => started,
        Ok(Err(e)) => bail!("{e:#}; its log: {}", log_tail(log_path)),
        Err(_) => bail!(
            "keyplan did not serve within {PROCESS_TIMEOUT:?}; its log: {}",
            log_tail(log_path)
        ),
    };
    // Keep draining stdout so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, started))
}

/// The `keyplan` binary built alongside this one (`target/release/keyplan` next to
/// `target/release/keyplan-bench`), so that a release build of both is all a run needs.
pub fn default_binary() -> Result<PathBuf> {
    Ok(std::env::current_exe()
        .context("locating the keyplan-bench executable")?
        .with_file_name("keyplan"))
}

/// Fails with a helpful message if there is no `keyplan` binary at `binary` (checked before
/// anything is measured, so a missing build does not cost a whole baseline run).
pub fn check_binary(binary: &Path) -> Result<()> {
    if !binary.is_file() {
        bail!(
            "no keyplan binary at {}: build it with `cargo build --release -p keyplan` \
             (or pass --keyplan-bin PATH, or --server ADDR for a running server)",
            binary.display()
        );
    }
    Ok(())
}

/// A running `keyplan serve` over a temporary data directory (deleted when this is dropped;
/// the process is killed then too, if [`KeyplanProcess::stop`] was not called).
#[derive(Debug)]
pub struct KeyplanProcess {
    child: Child,
    address: String,
    log_path: PathBuf,
    binary: PathBuf,
    extra: Vec<String>,
    // Declared last: dropped after the child is killed.
    _dir: TempDir,
}

impl KeyplanProcess {
    /// Starts `binary` on a free loopback port over a fresh data directory, with extra
    /// `keyplan serve` arguments (role, NATS...), and waits until it serves (its read models
    /// included, if it has any).
    pub async fn start_with(binary: &Path, extra: &[String]) -> Result<Self> {
        Self::start_on(binary, "127.0.0.1:0", extra).await
    }

    /// [`KeyplanProcess::start_with`] listening on `listen` (`127.0.0.1:PORT`): for nodes
    /// whose address must be known before they start (a shard map names every node's).
    pub async fn start_on(binary: &Path, listen: &str, extra: &[String]) -> Result<Self> {
        Self::start_in(binary, Self::new_dir()?, listen, extra).await
    }

    /// A new temporary directory for a node: its data directory goes in `data` inside it.
    pub fn new_dir() -> Result<TempDir> {
        tempfile::Builder::new()
            .prefix("keyplan-bench-server-")
            .tempdir()
            .context("creating a temporary directory for the server")
    }

    /// As [`Self::start_on`], over `dir`'s `data` directory, which may already hold a node's
    /// data (a copy of another node's, to start a replica from); `dir` goes when this is
    /// dropped.
    pub async fn start_in(
        binary: &Path,
        dir: TempDir,
        listen: &str,
        extra: &[String],
    ) -> Result<Self> {
        check_binary(binary)?;
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("keyplan.log");
        std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let (child, started) = launch(binary, listen, &data_dir, extra, &log_path).await?;
        Ok(Self {
            child,
            address: started.address,
            log_path,
            binary: binary.to_owned(),
            extra: extra.to_vec(),
            _dir: dir,
        })
    }

    /// The process id (to read its memory use).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// Stops the node gracefully and starts it again over the same data (a cold start);
    /// returns how long it took to listen again and to serve its read models.
    pub async fn restart(&mut self) -> Result<ColdStart> {
        let pid = self.child.id().context("keyplan already exited")?;
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !sent.success() {
            bail!("kill -TERM {pid} failed");
        }
        tokio::time::timeout(PROCESS_TIMEOUT, self.child.wait())
            .await
            .context("keyplan did not stop")??;
        let (child, started) = launch(
            &self.binary,
            &self.address,
            &self.data_dir(),
            &self.extra,
            &self.log_path,
        )
        .await?;
        self.child = child;
        Ok(started.cold_start)
    }

    /// The address it listens on (`127.0.0.1:PORT`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Stops it the way an operator would (SIGTERM: finish in-flight requests, close the
    /// store), falling back to SIGKILL if it does not exit in time, and removes its data.
    pub async fn stop(mut self) -> Result<()> {
        self.stop_keeping_data().await
    }

    /// As [`Self::stop`], but the data directory stays until this is dropped (to copy a
    /// stopped node's data).
    pub async fn stop_keeping_data(&mut self) -> Result<()> {
        let Some(pid) = self.child.id() else {
            bail!(
                "keyplan had already exited; its log: {}",
                log_tail(&self.log_path)
            );
        };
        // `kill` rather than a signal crate: the workspace forbids unsafe code, and this runs
        // once per configuration.
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        if !sent.success() {
            self.child.kill().await.context("killing keyplan")?;
            bail!("kill -TERM {pid} failed ({sent}); killed keyplan instead");
        }
        match tokio::time::timeout(PROCESS_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status.context("waiting for keyplan to exit")?;
                if !status.success() {
                    bail!(
                        "keyplan exited with {status}; its log: {}",
                        log_tail(&self.log_path)
                    );
                }
                Ok(())
            }
            Err(_) => {
                self.child.kill().await.context("killing keyplan")?;
                bail!("keyplan did not stop within {PROCESS_TIMEOUT:?} of SIGTERM; killed it")
            }
        }
    }
}

/// The last lines of the server's log, for error messages.
fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => "(empty)".into(),
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        }
        Err(e) => format!("(unreadable: {e})"),
    }
}

/// A new gRPC channel (its own HTTP/2 connection) to `address` (`host:port` or a URI).
pub async fn connect(address: &str) -> Result<Channel> {
    let uri = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let channel = Endpoint::from_shared(uri.clone())
        .with_context(|| format!("invalid server address {uri}"))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {uri}"))?;
    Ok(InterceptedService::new(channel, Bearer))
}

/// The log's head position on the node behind `channel`.
pub async fn head(channel: &Channel) -> Result<u64> {
    Ok(
        keyplan_proto::pb::event_store_service_client::EventStoreServiceClient::new(
            channel.clone(),
        )
        .read_all(keyplan_proto::pb::ReadAllRequest {
            from_position: u64::MAX,
            max_count: 1,
            filter: None,
        })
        .await?
        .into_inner()
        .head_position,
    )
}
