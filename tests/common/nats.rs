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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
