//! A TCP proxy in front of a `nats-server` that can make JetStream consumers go silent: alive
//! by their idle heartbeats and pull statuses, delivering nothing. nats-server's consumers
//! at times do that after a node of its cluster restarts (an R1 consumer placed on a peer
//! whose copy of the stream is behind); this makes it happen on purpose, on one server.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The proxy: clients connect to [`SilencingProxy::url`] instead of the server's.
pub struct SilencingProxy {
    pub port: u16,
    consumers: Arc<Mutex<Consumers>>,
    task: JoinHandle<()>,
}

/// The consumers (as `stream.consumer`) that delivered through the proxy, and those silenced.
#[derive(Default)]
struct Consumers {
    seen: HashSet<String>,
    silenced: HashSet<String>,
}

impl SilencingProxy {
    /// Starts a proxy (on a port of its own) to the server listening on `upstream`.
    pub async fn start(upstream: u16) -> SilencingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let consumers = Arc::new(Mutex::new(Consumers::default()));
        let shared = Arc::clone(&consumers);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let consumers = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        relay(client, server, consumers).await;
                    }
                });
            }
        });
        SilencingProxy {
            port,
            consumers,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// From now on, drops every message delivered by the consumers that have delivered
    /// through the proxy so far; consumers created later deliver as usual. Returns how many
    /// were silenced.
    pub fn silence_consumers_so_far(&self) -> usize {
        let mut consumers = self.consumers.lock().unwrap();
        let seen = consumers.seen.clone();
        consumers.silenced.extend(seen);
        consumers.silenced.len()
    }
}

impl Drop for SilencingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies the client's bytes to the server as they are, and the server's to the client
/// message by message, leaving out the silenced consumers' deliveries.
async fn relay(client: TcpStream, server: TcpStream, consumers: Arc<Mutex<Consumers>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let upstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    let mut server_read = BufReader::new(server_read);
    let mut line = Vec::new();
    loop {
        line.clear();
        match server_read.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        // `MSG <subject> <sid> [reply] <bytes>` and `HMSG <subject> <sid> [reply]
        // <header bytes> <total bytes>` are followed by that many bytes and CRLF.
        let words: Vec<String> = String::from_utf8_lossy(&line)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let (size, reply) = match words.first().map(String::as_str) {
            Some("MSG") => (words.last(), (words.len() == 5).then(|| &words[3])),
            Some("HMSG") => (words.last(), (words.len() == 6).then(|| &words[3])),
            _ => (None, None),
        };
        let mut frame = line.clone();
        if let Some(size) = size {
            let mut body = vec![0; size.parse::<usize>().unwrap() + 2];
            if server_read.read_exact(&mut body).await.is_err() {
                break;
            }
            frame.extend_from_slice(&body);
        }
        if let Some(consumer) = reply.and_then(|reply| delivered_by(reply)) {
            let mut consumers = consumers.lock().unwrap();
            let silenced = consumers.silenced.contains(&consumer);
            consumers.seen.insert(consumer);
            if silenced {
                continue;
            }
        }
        if client_write.write_all(&frame).await.is_err() {
            break;
        }
    }
    upstream.abort();
}

/// The consumer (`stream.consumer`) a JetStream delivery came from, by its reply subject:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`,
/// or with a domain and account hash after `ACK` (12 tokens and more).
fn delivered_by(reply: &str) -> Option<String> {
    let tokens: Vec<&str> = reply.split('.').collect();
    if tokens.len() < 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
        return None;
    }
    let at = if tokens.len() == 9 { 2 } else { 4 };
    Some(format!("{}.{}", tokens[at], tokens[at + 1]))
}
