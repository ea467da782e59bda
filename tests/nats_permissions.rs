//! The NATS configuration shipped in deploy/nats/ against a real nats-server started with it:
//! Keyplan's ingest and projections nodes work with their users, and nobody but the ingest
//! node's user can put a message on the stream's subjects.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::fixtures::*;
use common::nats::NatsServer;
use common::{status, wait_projected, Server};

const INGEST: (&str, &str) = ("keyplan-ingest", "ingest-secret");
const PROJECTIONS: (&str, &str) = ("keyplan-projections", "projections-secret");
const READER: (&str, &str) = ("keyplan-reader", "reader-secret");

async fn start_nats(dir: &Path) -> NatsServer {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats/nats-server.conf");
    NatsServer::start_with_config(
        dir,
        &config,
        &[
            ("KEYPLAN_INGEST_PASSWORD", INGEST.1),
            ("KEYPLAN_PROJECTIONS_PASSWORD", PROJECTIONS.1),
            ("KEYPLAN_READER_PASSWORD", READER.1),
        ],
        INGEST,
    )
    .await
}

async fn last_sequence(url: &str) -> u64 {
    let client =
        async_nats::ConnectOptions::with_user_and_password(INGEST.0.into(), INGEST.1.into())
            .connect(url)
            .await
            .unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("KEYPLAN").await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

/// Publishes a message that looks like Keyplan's on the stream's subject as `user`; returns
/// whether JetStream stored it.
async fn forge(url: &str, user: (&str, &str), position: u64) -> bool {
    let client = async_nats::ConnectOptions::with_user_and_password(user.0.into(), user.1.into())
        .connect(url)
        .await
        .unwrap();
    let js = async_nats::jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client.clone());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Keyplan-Position", position.to_string().as_str());
    headers.insert("Keyplan-Event-Type", "InteractionLogged");
    let published = js
        .publish_with_headers(
            format!("keyplan.{TENANT}.account-0.InteractionLogged"),
            headers,
            "forged".into(),
        )
        .await;
    let stored = match published {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    // A plain publish, without waiting for JetStream, is refused by the server too.
    let _ = client
        .publish(
            format!("keyplan.{TENANT}.account-0.Forged"),
            "forged".into(),
        )
        .await;
    let _ = client.flush().await;
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_ingest_user_can_publish_on_keyplans_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let nats = start_nats(&dir.path().join("nats")).await;
    let url = nats.url();
    let node_args = |role: &'static str, user: (&'static str, &'static str)| {
        vec![
            "--role",
            role,
            "--nats-url",
            Box::leak(url.clone().into_boxed_str()),
            "--nats-user",
            user.0,
            "--nats-password",
            user.1,
        ]
    };
    let ingest = Server::start_with(&dir.path().join("ingest"), &node_args("ingest", INGEST)).await;
    onboard(&ingest, "account-0").await;
    let projections = Server::start_with(
        &dir.path().join("projections"),
        &node_args("projections", PROJECTIONS),
    )
    .await;
    let head = status(&ingest).await.head_position;
    wait_projected(&projections, head).await;

    // Neither the projections' user nor an integration's can put anything on the stream.
    let before = last_sequence(&url).await;
    for user in [PROJECTIONS, READER] {
        assert!(
            !forge(&url, user, before + 1).await,
            "{} stored a message on the stream",
            user.0
        );
    }
    assert_eq!(last_sequence(&url).await, before, "the stream did not grow");

    // Nor can anyone without a user.
    assert!(
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(Some(1))
            .connection_timeout(Duration::from_secs(2))
            .connect(&url)
            .await
            .and_then_flush()
            .await
            .is_err(),
        "an anonymous client connected"
    );

    // Keyplan itself goes on: new events reach the projections node, sequence == position.
    ingest
        .commands()
        .execute(request("account-0", interaction("call-1", "cfo", 1)))
        .await
        .unwrap();
    let head = status(&ingest).await.head_position;
    wait_projected(&projections, head).await;
    assert_eq!(last_sequence(&url).await, head);
}

/// `connect(...).await.and_then_flush()`: a connection that is refused, or accepted and then
/// closed by the server for lack of credentials, is an error.
trait AndThenFlush {
    async fn and_then_flush(self) -> Result<(), String>;
}

impl AndThenFlush for Result<async_nats::Client, async_nats::ConnectError> {
    async fn and_then_flush(self) -> Result<(), String> {
        let client = self.map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_secs(2), client.flush())
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())
    }
}
