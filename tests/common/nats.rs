//! A real `nats-server` with JetStream, on a free port with its own store directory, that a
//! test can stop and start again.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running nats-server.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store_dir: PathBuf,
    /// A configuration file and the environment it reads (users, passwords), if any.
    config: Option<(PathBuf, Vec<(String, String)>)>,
    /// Credentials to check readiness with, when the configuration requires them.
    ready_user: Option<(String, String)>,
}

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    keyplan_testkit::ports::loopback_port().expect("a free port on 127.0.0.1")
}

impl NatsServer {
    /// Starts nats-server with JetStream on a free port, storing under `dir`.
    pub async fn start(dir: &Path) -> NatsServer {
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            store_dir: dir.to_owned(),
            config: None,
            ready_user: None,
        };
        server.launch().await;
        server
    }

    /// Starts nats-server with a configuration file (its `store_dir` pointed under `dir`) and
    /// the environment it reads; `ready_user` is a user of that configuration.
    pub async fn start_with_config(
        dir: &Path,
        config: &Path,
        env: &[(&str, &str)],
        ready_user: (&str, &str),
    ) -> NatsServer {
        std::fs::create_dir_all(dir).unwrap();
        let text = std::fs::read_to_string(config).unwrap();
        let store = dir.join("jetstream");
        let text: String = text
            .lines()
            .map(|line| {
                if line.trim_start().starts_with("store_dir:") {
                    format!("  store_dir: {:?}", store.display().to_string())
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let file = dir.join("nats-server.conf");
        std::fs::write(&file, text).unwrap();
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            store_dir: dir.to_owned(),
            config: Some((
                file,
                env.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )),
            ready_user: Some((ready_user.0.to_owned(), ready_user.1.to_owned())),
        };
        server.launch().await;
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) {
        std::fs::create_dir_all(&self.store_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.store_dir.with_extension("log"))
            .unwrap();
        let mut command = Command::new("nats-server");
        command.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        match &self.config {
            Some((file, env)) => {
                command.arg("-c").arg(file).envs(env.iter().cloned());
            }
            None => {
                command.args(["-js", "-sd"]).arg(&self.store_dir);
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server is installed (.ci/run installs the Debian package)");
        self.child = Some(child);
        // Ready when it accepts connections and JetStream answers.
        for _ in 0..200 {
            let exited = self.child.as_mut().and_then(|child| child.try_wait().ok()?);
            if let Some(status) = exited {
                let log = std::fs::read_to_string(self.store_dir.with_extension("log"))
                    .unwrap_or_default();
                panic!("nats-server on port {} exited ({status}): {log}", self.port);
            }
            let options = match &self.ready_user {
                Some((user, password)) => async_nats::ConnectOptions::with_user_and_password(
                    user.clone(),
                    password.clone(),
                ),
                None => async_nats::ConnectOptions::new(),
            };
            if let Ok(client) = options.connect(self.url()).await {
                if client.flush().await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not start on port {}", self.port);
    }

    /// Kills the server (its JetStream store stays on disk).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    /// Starts it again on the same port and store.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }
}

/// Every message of the stream, by sequence: (sequence, subject, headers, payload).
pub async fn stream_messages(
    url: &str,
    stream: &str,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for sequence in 1..=last {
        out.push(stream.get_raw_message(sequence).await.unwrap());
    }
    out
}

/// Passwords of the shipped configuration's users in the tests (letters and digits, starting
/// with a letter, as the configuration's comment asks).
pub const CLUSTER_USERS: [(&str, &str, &str); 4] = [
    ("KEYPLAN_INGEST_PASSWORD", "keyplan-ingest", "pingest1"),
    (
        "KEYPLAN_PROJECTIONS_PASSWORD",
        "keyplan-projections",
        "pprojections1",
    ),
    ("KEYPLAN_READER_PASSWORD", "keyplan-reader", "preader1"),
    (
        "KEYPLAN_TENANT_ACME_PASSWORD",
        "keyplan-tenant-acme",
        "ptenant1",
    ),
];

/// A 3-node JetStream cluster on 127.0.0.1 running the shipped
/// `deploy/nats/cluster/nats-cluster.conf`, each node with its own store; a node can be killed
/// (SIGKILL), paused (SIGSTOP) and brought back.
pub struct NatsCluster {
    nodes: Vec<Option<Child>>,
    client_ports: Vec<u16>,
    monitor_ports: Vec<u16>,
    envs: Vec<Vec<(String, String)>>,
    dir: PathBuf,
    /// The configuration file the nodes run.
    config: PathBuf,
}

impl NatsCluster {
    /// Starts the three nodes and waits until JetStream has a meta leader.
    pub async fn start(dir: &Path) -> NatsCluster {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/nats/cluster/nats-cluster.conf");
        NatsCluster::start_with_config(dir, shipped).await
    }

    /// As [`NatsCluster::start`], running `config` (a file of `deploy/nats/cluster/`, which
    /// reads the same variables).
    pub async fn start_with_config(dir: &Path, config: PathBuf) -> NatsCluster {
        let ports: Vec<u16> = (0..9).map(|_| free_port()).collect();
        let route_password = "proute1";
        let routes: Vec<String> = (0..3)
            .map(|i| {
                format!(
                    "nats://keyplan-route:{route_password}@127.0.0.1:{}",
                    ports[i * 3 + 1]
                )
            })
            .collect();
        let mut envs = Vec::new();
        for i in 0..3 {
            let mut env = vec![
                ("NATS_SERVER_NAME".to_owned(), format!("nats-{}", i + 1)),
                ("NATS_HOST".to_owned(), "127.0.0.1".to_owned()),
                ("NATS_CLIENT_PORT".to_owned(), ports[i * 3].to_string()),
                ("NATS_CLUSTER_PORT".to_owned(), ports[i * 3 + 1].to_string()),
                ("NATS_MONITOR_PORT".to_owned(), ports[i * 3 + 2].to_string()),
                (
                    "NATS_STORE_DIR".to_owned(),
                    dir.join(format!("nats-{}", i + 1)).display().to_string(),
                ),
                ("NATS_ROUTE_PASSWORD".to_owned(), route_password.to_owned()),
            ];
            for (n, route) in routes.iter().enumerate() {
                env.push((format!("NATS_ROUTE_{}", n + 1), route.clone()));
            }
            for (variable, _, password) in CLUSTER_USERS {
                env.push((variable.to_owned(), password.to_owned()));
            }
            envs.push(env);
        }
        let mut cluster = NatsCluster {
            nodes: vec![None, None, None],
            client_ports: (0..3).map(|i| ports[i * 3]).collect(),
            monitor_ports: (0..3).map(|i| ports[i * 3 + 2]).collect(),
            envs,
            dir: dir.to_owned(),
            config,
        };
        for i in 0..3 {
            cluster.launch(i);
        }
        cluster.wait_ready().await;
        cluster
    }

    fn launch(&mut self, i: usize) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let config = &self.config;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("nats-{}.log", i + 1)))
            .unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(config)
            .envs(self.envs[i].iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server is installed (.ci/run installs the Debian package)");
        self.nodes[i] = Some(child);
    }

    /// Waits until every running node's `/healthz?js-enabled-only` answers and JetStream
    /// answers a request (a meta leader was elected).
    async fn wait_ready(&mut self) {
        let mut waiting_for = String::new();
        for _ in 0..400 {
            waiting_for.clear();
            for i in 0..self.nodes.len() {
                let exited = self.nodes[i]
                    .as_mut()
                    .and_then(|node| node.try_wait().ok()?);
                if let Some(status) = exited {
                    panic!(
                        "nats-server node {} exited ({status}) while the cluster started; \
                         its log ends:\n{}",
                        i + 1,
                        self.log_tail(i)
                    );
                }
            }
            for (i, node) in self.nodes.iter().enumerate() {
                if node.is_some() && !self.healthy(i).await {
                    waiting_for = format!("node {} to answer /healthz", i + 1);
                }
            }
            if waiting_for.is_empty() {
                match self.client("keyplan-ingest").await {
                    Ok(client) => match client.request("$JS.API.INFO", "".into()).await {
                        Ok(answer) if !answer.payload.windows(8).any(|w| w == b"\"error\"") => {
                            return
                        }
                        Ok(answer) => {
                            waiting_for =
                                format!("JetStream: {}", String::from_utf8_lossy(&answer.payload))
                        }
                        Err(e) => waiting_for = format!("JetStream: {e}"),
                    },
                    Err(e) => waiting_for = format!("a connection: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let logs: Vec<String> = (0..self.nodes.len())
            .map(|i| format!("node {}:\n{}", i + 1, self.log_tail(i)))
            .collect();
        panic!(
            "the NATS cluster did not become ready (waiting for {waiting_for}); the logs end:\n{}",
            logs.join("\n")
        );
    }

    /// The last lines of node `i`'s log (the test's directory is gone once it fails).
    fn log_tail(&self, i: usize) -> String {
        super::log_tail(&self.dir.join(format!("nats-{}.log", i + 1)), 15, "\n")
    }

    async fn healthy(&self, i: usize) -> bool {
        self.monitor(i, "/healthz").await.is_some()
    }

    /// The body of node `i`'s monitoring endpoint `path`, if it answers 200.
    async fn monitor(&self, i: usize, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = format!("127.0.0.1:{}", self.monitor_ports[i]);
        let mut stream = tokio::net::TcpStream::connect(&address).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut answer))
            .await
            .ok()?
            .ok()?;
        let ok = answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200");
        let body = answer.split_once("\r\n\r\n")?.1;
        ok.then(|| body.to_owned())
    }

    /// The node (0..3) a client of `user` is connected to (the first, if several are).
    pub async fn node_serving(&self, user: &str) -> usize {
        let wanted = format!("\"authorized_user\":\"{user}\"");
        for i in 0..3 {
            if self.nodes[i].is_none() {
                continue;
            }
            if let Some(body) = self.monitor(i, "/connz?auth=true").await {
                let compact: String = body.split_whitespace().collect();
                if compact.contains(&wanted) {
                    return i;
                }
            }
        }
        panic!("no node has a connection of {user}");
    }

    /// The node (0..3) leading `stream`'s replicas.
    pub async fn stream_leader(&self, user: &str, stream: &str) -> usize {
        let js = async_nats::jetstream::new(self.client(user).await.unwrap());
        let mut stream = js.get_stream(stream).await.unwrap();
        let info = stream.info().await.unwrap();
        let leader = info
            .cluster
            .as_ref()
            .and_then(|c| c.leader.clone())
            .expect("the stream has a leader");
        leader
            .strip_prefix("nats-")
            .and_then(|n| n.parse::<usize>().ok())
            .map(|n| n - 1)
            .expect("servers are named nats-1..3")
    }

    /// Every node's URL, comma-separated (what `--nats-url` takes).
    pub fn urls(&self) -> String {
        self.client_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The password of one of the configuration's users.
    pub fn password(user: &str) -> &'static str {
        CLUSTER_USERS
            .iter()
            .find(|(_, u, _)| *u == user)
            .map(|(_, _, p)| *p)
            .expect("a user of the configuration")
    }

    /// A client of `user` connected to the cluster (any node).
    pub async fn client(&self, user: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
        async_nats::ConnectOptions::with_user_and_password(user.into(), Self::password(user).into())
            .connect(self.urls().split(',').collect::<Vec<_>>())
            .await
    }

    /// Kills node `i` (0..3) with SIGKILL; its store stays on disk.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    /// Starts node `i` again on its ports and store, and waits until the cluster is ready.
    pub async fn restart(&mut self, i: usize) {
        self.launch(i);
        self.wait_ready().await;
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to node `i`.
    pub fn signal(&self, i: usize, signal: &str) {
        let pid = self.nodes[i]
            .as_ref()
            .and_then(Child::id)
            .expect("the node runs");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// How many replicas the stream is configured with.
    pub async fn stream_replicas(&self, user: &str, stream: &str) -> usize {
        let js = async_nats::jetstream::new(self.client(user).await.unwrap());
        let mut stream = js.get_stream(stream).await.unwrap();
        stream.info().await.unwrap().config.num_replicas
    }

    /// The stream's messages as `user` sees them: (sequence, event id header).
    pub async fn stream_ids(&self, user: &str, stream: &str) -> Vec<(u64, String)> {
        let js = async_nats::jetstream::new(self.client(user).await.unwrap());
        let mut stream = js.get_stream(stream).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for sequence in 1..=last {
            let message = raw_message(&stream, sequence).await;
            let id = message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.to_string())
                .unwrap_or_default();
            out.push((sequence, id));
        }
        out
    }
}

/// The message at `sequence` of `stream`, retried for up to 10 s: right after a node of a
/// cluster came back (or was resumed), JetStream may answer 503 ("temporarily unavailable")
/// for a moment.
pub async fn raw_message(
    stream: &async_nats::jetstream::stream::Stream,
    sequence: u64,
) -> async_nats::jetstream::message::StreamMessage {
    let mut tries = 0;
    loop {
        match stream.get_raw_message(sequence).await {
            Ok(message) => return message,
            Err(_) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("sequence {sequence} of the stream: {e}"),
        }
    }
}
