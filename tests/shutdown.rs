//! Shutdown and failures against the real binary: SIGTERM with open streams and appends in
//! flight, a log that can no longer be written (a real write error: the process runs under a
//! file-size limit), and foreign JetStream messages: skipped by projections, repaired by the
//! relay when provably foreign, and a stopped relay, visibly, when they may be another log's.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::fixtures::*;
use common::nats::NatsServer;
use common::{read_all, status, Server};
use keyplan_proto::pb;
use keyplan_proto::pb::command_service_client::CommandServiceClient;
use keyplan_proto::pb::timeline_service_client::TimelineServiceClient;
use prost::Message;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// How long a stopping node may take in these tests (the node's own bound is 10 s).
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// Reads a server stream to its end; the status it ended with (`None`: ended cleanly).
async fn drain<T>(mut stream: tonic::Streaming<T>) -> (usize, Option<tonic::Status>) {
    let mut received = 0;
    loop {
        match stream.message().await {
            Ok(Some(_)) => received += 1,
            Ok(None) => return (received, None),
            Err(status) => return (received, Some(status)),
        }
    }
}

/// Sends commands to `account` until one fails; the event ids of every acknowledged one.
/// Appends until one is refused; returns what was acknowledged and the refusal.
async fn append_until_refused(
    mut commands: CommandServiceClient<Channel>,
    account: String,
    summary: String,
) -> (Vec<String>, tonic::Status) {
    let mut acknowledged = Vec::new();
    for i in 0.. {
        let kind = pb::command::Kind::LogInteraction(pb::InteractionLogged {
            interaction_id: format!("{account}-call-{i}"),
            details: Some(details("cfo", i, &summary)),
        });
        match commands.execute(request(&account, kind)).await {
            Ok(written) => acknowledged.extend(written.into_inner().event_ids),
            Err(refused) => return (acknowledged, refused),
        }
    }
    unreachable!("the loop returns on the first refusal")
}

fn health(server: &Server) -> HealthClient<tonic::transport::Channel> {
    HealthClient::new(server.channel())
}

async fn health_of(server: &Server, service: &str) -> ServingStatus {
    let answer = health(server)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(answer.status).unwrap()
}

/// Polls `service`'s health until it is `wanted` (up to 10 s).
async fn wait_health(server: &Server, service: &str, wanted: ServingStatus) {
    for _ in 0..200 {
        if health_of(server, service).await == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{service} did not become {wanted:?}");
}

/// `keyplan projections status` against `server`, as an operator runs it.
fn projections_status(server: &Server) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args(["projections", "status", "--server"])
        .arg(format!("http://{}", server.address))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn sigterm_ends_open_streams_with_unavailable_and_exits_promptly_keeping_every_acknowledged_append(
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    onboard(&server, "globex").await;

    // Open streams: each has delivered the catch-up and now waits for new events.
    let watch = server
        .events()
        .watch(pb::WatchRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
            from_position: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let subscribe = server
        .events()
        .subscribe(pb::SubscribeRequest {
            from_position: 0,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    let timeline = TimelineServiceClient::new(server.channel())
        .watch_timeline(pb::WatchTimelineRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
            from_position: 0,
            min_position: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let health_watch = health(&server)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let streams = (
        tokio::spawn(drain(watch)),
        tokio::spawn(drain(subscribe)),
        tokio::spawn(drain(timeline)),
        tokio::spawn(drain(health_watch)),
    );

    // Appends in flight: four writers on their own connections, until the node refuses.
    let mut writers = Vec::new();
    for w in 0..4 {
        let account = format!("account-{w}");
        onboard(&server, &account).await;
        let client = server.commands();
        writers.push(tokio::spawn(async move {
            append_until_refused(client, account, "Discussed pricing".into()).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let signalled = Instant::now();
    server.terminate();
    let (watch, subscribe, timeline, health_watch) = streams;
    for (name, stream) in [
        ("Watch", watch),
        ("Subscribe", subscribe),
        ("WatchTimeline", timeline),
        ("health Watch", health_watch),
    ] {
        let (received, ended) = stream.await.unwrap();
        let ended = ended.unwrap_or_else(|| panic!("{name} ended without a status"));
        assert_eq!(ended.code(), tonic::Code::Unavailable, "{name}: {ended:?}");
        assert!(
            ended.message().contains("shutting down") && ended.message().contains("resume"),
            "{name}: {ended:?}"
        );
        assert!(received > 0, "{name} delivered its catch-up first");
    }
    let streams_ended = signalled.elapsed();
    let exit = server.wait_exit(Duration::from_secs(15)).await;
    let exited = signalled.elapsed();
    eprintln!("SIGTERM with open streams: streams ended after {streams_ended:?}, process exited after {exited:?}");
    assert!(exit.success(), "keyplan exited with {exit}");
    assert!(exited < EXIT_WITHIN, "exited after {exited:?}");

    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap().0);
    }
    assert!(!acknowledged.is_empty(), "appends were in flight");

    // Every acknowledged append survived the shutdown.
    let restarted = Server::start(&data).await;
    let stored: HashSet<String> = read_all(&restarted)
        .await
        .into_iter()
        .map(|e| e.metadata.unwrap().event_id)
        .collect();
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events missing",
        missing.len(),
        acknowledged.len()
    );
    restarted.stop().await;
}

#[tokio::test]
async fn a_log_that_cannot_be_written_makes_health_not_serving_and_the_process_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A real write failure: the kernel refuses to grow any file of the process past 512 KiB
    // (EFBIG; SIGXFSZ ignored so that the write fails instead of killing the process), as a
    // full disk refuses with ENOSPC.
    let server = Server::start_after("trap '' XFSZ", &data, &["--role", "ingest"]).await;
    server.limit_file_size(512 * 1024);
    assert_eq!(health_of(&server, "").await, ServingStatus::Serving);
    let mut health_watch = health(&server)
        .watch(HealthCheckRequest {
            // The store writer's own name (CommandService and "" turn NOT_SERVING with it).
            service: "keyplan.store".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = health_watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    // Hard-to-compress events until the log no longer fits.
    let summary: String = (0..24).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let mut writers = Vec::new();
    for w in 0..4 {
        let account = format!("account-{w}");
        onboard(&server, &account).await;
        let client = server.commands();
        let summary = summary.clone();
        writers.push(tokio::spawn(async move {
            append_until_refused(client, account, summary).await
        }));
    }
    let mut acknowledged = Vec::new();
    let mut refusals = Vec::new();
    for writer in writers {
        let (written, refused) = writer.await.unwrap();
        acknowledged.extend(written);
        refusals.push(refused);
    }
    assert!(!acknowledged.is_empty());
    // The appends whose write failed get an answer that says their outcome is unknown, with a
    // code standard retry policies do not retry blindly (UNKNOWN, not UNAVAILABLE).
    assert!(
        refusals.iter().any(|r| r.code() == tonic::Code::Unknown
            && r.message().contains("outcome of this append is unknown")
            && r.message().contains("same idempotency key")),
        "{refusals:?}"
    );

    // Health says so before the process goes ...
    let not_serving = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match health_watch.message().await {
                Ok(Some(update)) if update.status == ServingStatus::NotServing as i32 => {
                    return true
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return false,
            }
        }
    })
    .await
    .unwrap();
    assert!(not_serving, "health reported keyplan.store NOT_SERVING");
    // ... and it goes, with a status a supervisor restarts on, and a line saying why.
    let log_path = data.with_extension("log");
    let exit = server.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(exit.code(), Some(1), "keyplan exited with {exit}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    eprintln!(
        "{} events acknowledged before the write failed; the node's log:\n{log}",
        acknowledged.len()
    );
    assert!(
        log.contains("the event store can no longer write"),
        "the log says why: {log}"
    );

    // Restarted without the limit, it recovers from the log with every acknowledged append.
    let restarted = Server::start_with(&data, &["--role", "ingest"]).await;
    let stored: HashSet<String> = read_all(&restarted)
        .await
        .into_iter()
        .map(|e| e.metadata.unwrap().event_id)
        .collect();
    assert!(acknowledged.iter().all(|id| stored.contains(id)));
    assert_eq!(health_of(&restarted, "").await, ServingStatus::Serving);
    restarted.stop().await;
}

#[tokio::test]
async fn a_foreign_message_is_skipped_by_projections_and_repaired_by_the_relay_another_logs_stops_it(
) {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let ingest = Server::start_with(
        &dir.path().join("ingest"),
        &["--role", "ingest", "--nats-url", &nats.url()],
    )
    .await;
    let projections = Server::start_with(
        &dir.path().join("projections"),
        &["--role", "projections", "--nats-url", &nats.url()],
    )
    .await;
    onboard(&ingest, "globex").await;
    let head = common::head(&ingest).await;
    projections
        .accounts()
        .get_account(pb::GetAccountRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
            min_position: head,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        health_of(&ingest, "keyplan.relay").await,
        ServingStatus::Serving
    );

    // Someone else publishes on Keyplan's subjects: JetStream sequence head + 1 is not the
    // log's event at that position.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.publish("keyplan.someone.else.Foreign", "not a Keyplan event".into())
        .await
        .unwrap()
        .await
        .unwrap();

    // The projections never apply it, and do not stop for it: they skip it and say so.
    let mut node = status(&projections).await;
    for _ in 0..200 {
        if node
            .foreign_messages
            .as_ref()
            .is_some_and(|f| f.skipped > 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        node = status(&projections).await;
    }
    let foreign = node.foreign_messages.clone().unwrap();
    assert!(foreign.skipped > 0, "{foreign:?}");
    assert_eq!(foreign.last_sequence, head + 1, "{foreign:?}");
    assert!(
        foreign.last_reason.contains("does not decode"),
        "{foreign:?}"
    );
    assert!(!node.projections.is_empty());
    for p in &node.projections {
        assert_ne!(p.state, "stopped", "{p:?}");
        assert_eq!(p.position, head, "{p:?}");
    }
    for service in [
        "keyplan.v1.TimelineService",
        "keyplan.v1.ComplianceService",
        "keyplan.v1.ActivityService",
        "keyplan.v1.AccountService",
    ] {
        assert_eq!(
            health_of(&projections, service).await,
            ServingStatus::Serving
        );
    }
    let printed = projections_status(&projections);
    assert!(
        printed.contains("foreign messages on the stream: ")
            && printed.contains("see deploy/nats/"),
        "{printed}"
    );

    // The relay meets it at the next append: a message that is not a Keyplan event at all is
    // provably not another log's, so the relay deletes the stream and republishes the log,
    // sequence = position again, and everyone goes on.
    ingest
        .commands()
        .execute(request("globex", interaction("call-1", "cfo", 60)))
        .await
        .unwrap();
    let head = common::head(&ingest).await;
    let mut relay = status(&ingest).await.relay.unwrap();
    for _ in 0..400 {
        if relay.repairs > 0 && relay.running && relay.published_position == head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        relay = status(&ingest).await.relay.unwrap();
    }
    assert!(
        relay.repairs > 0 && relay.published_position == head,
        "{relay:?}"
    );
    assert_eq!(
        health_of(&ingest, "keyplan.relay").await,
        ServingStatus::Serving
    );
    let messages = common::nats::stream_messages(&nats.url(), "KEYPLAN").await;
    assert_eq!(
        messages.len() as u64,
        head,
        "one message per position again"
    );
    common::wait_projected(&projections, head).await;
    let printed = projections_status(&ingest);
    assert!(
        printed.contains("republished the stream 1 time"),
        "{printed}"
    );

    // A well-formed event of some other log (no signing key to tell it from a forgery) is not
    // provably foreign: the relay stops and says so rather than delete the stream.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut other = pb::Event::decode(messages.last().unwrap().payload.as_ref()).unwrap();
    let meta = other.metadata.as_mut().unwrap();
    meta.event_id = uuid::Uuid::now_v7().to_string();
    meta.global_position = head + 1;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", meta.event_id.as_str());
    headers.insert("Keyplan-Event-Id", meta.event_id.as_str());
    js.publish_with_headers(
        "keyplan.other.log.InteractionLogged",
        headers,
        other.encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    ingest
        .commands()
        .execute(request("globex", interaction("call-2", "cfo", 120)))
        .await
        .unwrap();
    wait_health(&ingest, "keyplan.relay", ServingStatus::NotServing).await;
    let relay = status(&ingest).await.relay.unwrap();
    assert_eq!(relay.state, "stopped", "{relay:?}");
    assert!(
        relay.stopped_reason.contains("does not match the log"),
        "{relay:?}"
    );
    assert!(!relay.running);
    let printed = projections_status(&ingest);
    assert!(
        printed.contains("relay: ")
            && printed.contains("STOPPED: JetStream stream does not match the log"),
        "{printed}"
    );
    // The node itself keeps serving its log.
    assert_eq!(health_of(&ingest, "").await, ServingStatus::Serving);

    ingest.stop().await;
    projections.stop().await;
}
