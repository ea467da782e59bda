//! Fan-out over NATS JetStream with a real `nats-server` (started per test on a free port),
//! real `keyplan` processes, kills and restarts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::fixtures::*;
use common::nats::{stream_messages, NatsServer};
use common::nats_proxy::SilencingProxy;
use common::{read_all, status, wait_projected, wait_published, Server};
use futures::StreamExt;
use keyplan_proto::pb;
use keyplan_testkit::files::copy_dir;
use prost::Message;

/// JetStream holds exactly the log: sequence == position, same event ids, in order, once.
async fn assert_stream_equals_log(nats: &NatsServer, server: &Server) -> usize {
    let log = read_all(server).await;
    let messages = stream_messages(&nats.url(), "KEYPLAN").await;
    assert_eq!(messages.len(), log.len(), "one JetStream message per event");
    for (message, event) in messages.iter().zip(&log) {
        let meta = event.metadata.as_ref().unwrap();
        assert_eq!(message.sequence, meta.global_position);
        assert_eq!(
            message.headers.get("Keyplan-Position").unwrap().as_str(),
            meta.global_position.to_string()
        );
        assert_eq!(
            message.headers.get("Nats-Msg-Id").unwrap().as_str(),
            meta.event_id
        );
        assert_eq!(
            message.subject.as_str(),
            format!(
                "keyplan.{}.{}.{}",
                meta.tenant, meta.account_id, meta.event_type
            )
        );
        let decoded = pb::Event::decode(message.payload.as_ref()).unwrap();
        assert_eq!(
            &decoded, event,
            "the payload is the protobuf form of the event"
        );
    }
    log.len()
}

#[tokio::test]
async fn every_event_reaches_jetstream_once_in_order_with_sequence_equal_to_position() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let server = Server::start_with(&dir.path().join("data"), &["--nats-url", &nats.url()]).await;
    let mut writers = Vec::new();
    for w in 0..8 {
        let mut c = server.commands();
        let account = format!("account-{w}");
        onboard(&server, &account).await;
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                c.execute(request(
                    &account,
                    interaction(&format!("call-{i}"), "cfo", i),
                ))
                .await
                .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    wait_published(&server).await;
    assert_eq!(assert_stream_equals_log(&nats, &server).await, 8 * (5 + 25));
}

#[tokio::test]
async fn a_nats_outage_delays_fan_out_but_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start(&dir.path().join("nats")).await;
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--nats-url", &nats.url(), "--nats-max-reconnect-ms", "200"],
    )
    .await;
    onboard(&server, "globex").await;
    let mut c = server.commands();
    for i in 0..50 {
        c.execute(request(
            "globex",
            interaction(&format!("before-{i}"), "cfo", i),
        ))
        .await
        .unwrap();
    }
    nats.stop().await;
    // Appends keep working while NATS is down, and the lag is visible.
    for i in 0..100 {
        c.execute(request(
            "globex",
            interaction(&format!("during-{i}"), "cfo", i),
        ))
        .await
        .unwrap();
    }
    let status = server
        .operations()
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        status.relay.unwrap().lag_positions > 0,
        "the relay reports its lag while NATS is down"
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let mut nats_down_seen = false;
    for _ in 0..100 {
        let h = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "keyplan.nats".into(),
            })
            .await
            .unwrap();
        if h.into_inner().status
            == tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
        {
            nats_down_seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(nats_down_seen, "health reports NATS as not serving");

    nats.restart().await;
    for i in 0..50 {
        c.execute(request(
            "globex",
            interaction(&format!("after-{i}"), "cfo", i),
        ))
        .await
        .unwrap();
    }
    wait_published(&server).await;
    assert_eq!(assert_stream_equals_log(&nats, &server).await, 5 + 200);
}

#[tokio::test]
async fn killing_the_relaying_process_mid_stream_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--nats-url", &nats.url()]).await;
    onboard(&server, "globex").await;
    let mut writers = Vec::new();
    for w in 0..8 {
        let mut c = server.commands();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                if c.execute(request(
                    "globex",
                    interaction(&format!("w{w}-{i}"), "cfo", i),
                ))
                .await
                .is_err()
                {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.kill().await;
    for w in writers {
        w.await.unwrap();
    }
    let server = Server::start_with(&data, &["--nats-url", &nats.url()]).await;
    wait_published(&server).await;
    let n = assert_stream_equals_log(&nats, &server).await;
    assert!(n > 50, "the load was real: {n} events");
}

#[tokio::test]
async fn a_command_on_an_ingest_node_is_visible_on_a_projections_node() {
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
    let second = Server::start_with(
        &dir.path().join("projections-2"),
        &["--role", "projections", "--nats-url", &nats.url()],
    )
    .await;
    onboard(&ingest, "globex").await;
    let written = ingest
        .commands()
        .execute(request("globex", interaction("call-1", "cfo", 60)))
        .await
        .unwrap()
        .into_inner();
    for node in [&projections, &second] {
        let account = node
            .accounts()
            .get_account(pb::GetAccountRequest {
                tenant: TENANT.into(),
                account_id: "globex".into(),
                min_position: written.last_position,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(account.name, "Globex Corporation");
        assert_eq!(account.version, written.last_version);
        assert_eq!(account.interactions.len(), 1);
        assert_eq!(account.stakeholders[0].name, "Lee Park");
    }
    // The projections node has no log: commands are not served there.
    let refused = projections
        .commands()
        .execute(request("globex", interaction("call-2", "cfo", 60)))
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::Unimplemented);

    // A restarted projections node resumes from its checkpoint without double counting.
    projections.kill().await;
    ingest
        .commands()
        .execute(request("globex", interaction("call-3", "cfo", 60)))
        .await
        .unwrap();
    let restarted = Server::start_with(
        &dir.path().join("projections"),
        &["--role", "projections", "--nats-url", &nats.url()],
    )
    .await;
    let head = common::head(&ingest).await;
    let account = restarted
        .accounts()
        .get_account(pb::GetAccountRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
            min_position: head,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(account.interactions.len(), 2);
    assert_eq!(account.version, 7);
}

/// A projections node whose JetStream consumer goes silent (its idle heartbeats keep coming,
/// its deliveries do not, as nats-server's consumers at times do after a node of the cluster
/// restarts) asks the stream whether it holds more, and reads again from its position on a
/// new consumer: it reaches the head without a restart, each event applied once.
#[tokio::test]
async fn a_projections_node_whose_consumer_goes_silent_reads_again_from_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let proxy = SilencingProxy::start(nats.port).await;
    let ingest = Server::start_with(
        &dir.path().join("ingest"),
        &["--role", "ingest", "--nats-url", &nats.url()],
    )
    .await;
    let projections = Server::start_with(
        &dir.path().join("projections"),
        &[
            "--role",
            "projections",
            "--nats-url",
            &proxy.url(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    )
    .await;
    onboard(&ingest, "globex").await;
    wait_projected(&projections, common::head(&ingest).await).await;
    let interruptions = |metrics: &str| -> Vec<u64> {
        metrics
            .lines()
            .filter(|l| l.starts_with("keyplan_projection_feed_interruptions_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    };
    let before = interruptions(&projections.scrape_metrics().await);
    assert_eq!(before.len(), 4, "one counter per projection");
    assert_eq!(
        proxy.silence_consumers_so_far(),
        1,
        "the node's projections share one consumer"
    );

    for call in 1..=3 {
        ingest
            .commands()
            .execute(request(
                "globex",
                interaction(&format!("call-{call}"), "cfo", 60),
            ))
            .await
            .unwrap();
    }
    let head = common::head(&ingest).await;
    let silenced = std::time::Instant::now();
    loop {
        let s = status(&projections).await;
        if s.projections.iter().all(|p| p.position >= head) {
            break;
        }
        assert!(
            silenced.elapsed() < Duration::from_secs(60),
            "the projections stand still behind {head} with a silent consumer: {:?}",
            s.projections
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "at the head {:?} after the consumer went silent",
        silenced.elapsed()
    );
    // Each projection counts the interruption: what an operator can alert on.
    let after = interruptions(&projections.scrape_metrics().await);
    assert!(
        after.len() == 4 && after.iter().zip(&before).all(|(a, b)| a > b),
        "{before:?} -> {after:?}"
    );
    let account = account_at(&projections, "globex", head).await;
    assert_eq!(account.interactions.len(), 3);
    assert_eq!(account.version, common::head(&ingest).await);
}

#[tokio::test]
async fn watchers_see_the_same_events_in_the_same_order_and_late_ones_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server, "globex").await;
    onboard(&server, "initech").await;
    let watch = |from| pb::WatchRequest {
        tenant: TENANT.into(),
        account_id: "globex".into(),
        from_position: from,
    };
    let mut watchers = Vec::new();
    for _ in 0..3 {
        watchers.push(server.events().watch(watch(0)).await.unwrap().into_inner());
    }
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut c = server.commands();
        writers.push(tokio::spawn(async move {
            for i in 0..20 {
                for account in ["globex", "initech"] {
                    c.execute(request(
                        account,
                        interaction(&format!("w{w}-{i}"), "cfo", i),
                    ))
                    .await
                    .unwrap();
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let expected = 5 + 80;
    let mut seen: Vec<Vec<(u64, String)>> = Vec::new();
    for watcher in &mut watchers {
        let mut events = Vec::new();
        for _ in 0..expected {
            let e = watcher.next().await.unwrap().unwrap();
            let m = e.metadata.unwrap();
            assert_eq!(
                m.account_id, "globex",
                "an account watch sees only that account"
            );
            events.push((m.global_position, m.event_id));
        }
        seen.push(events);
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "every watcher sees the same events in the same order"
    );
    assert!(
        seen[0].windows(2).all(|w| w[0].0 < w[1].0),
        "in global order"
    );
    // A late watcher catches up first, then gets the same sequence.
    let mut late = server.events().watch(watch(0)).await.unwrap().into_inner();
    let mut late_events = Vec::new();
    for _ in 0..expected {
        let m = late.next().await.unwrap().unwrap().metadata.unwrap();
        late_events.push((m.global_position, m.event_id));
    }
    assert_eq!(late_events, seen[0]);
    // A tenant watch sees both accounts.
    let mut tenant = server
        .events()
        .watch(pb::WatchRequest {
            tenant: TENANT.into(),
            account_id: String::new(),
            from_position: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut accounts: HashMap<String, usize> = HashMap::new();
    for _ in 0..(2 * expected) {
        *accounts
            .entry(
                tenant
                    .next()
                    .await
                    .unwrap()
                    .unwrap()
                    .metadata
                    .unwrap()
                    .account_id,
            )
            .or_default() += 1;
    }
    assert_eq!(accounts.get("globex"), Some(&expected));
    assert_eq!(accounts.get("initech"), Some(&expected));
}

#[tokio::test]
async fn replicated_acks_wait_for_jetstream_and_say_so_when_it_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start(&dir.path().join("nats")).await;
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--nats-url",
            &nats.url(),
            "--ack",
            "replicated",
            "--ack-timeout-ms",
            "700",
            "--nats-max-reconnect-ms",
            "200",
        ],
    )
    .await;
    onboard(&server, "globex").await;
    let status = server
        .operations()
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.relay.unwrap().published_position,
        status.head_position,
        "acknowledged means replicated"
    );

    nats.stop().await;
    let call = keyed(
        request("globex", interaction("call-1", "cfo", 60)),
        "call-1",
    );
    let err = server.commands().execute(call.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    assert!(
        err.message().contains("stored durably"),
        "{}",
        err.message()
    );
    nats.restart().await;
    let retried = server.commands().execute(call).await.unwrap().into_inner();
    assert!(
        retried.deduplicated,
        "the retry confirms the stored command instead of storing it twice"
    );
    wait_published(&server).await;
    assert_stream_equals_log(&nats, &server).await;
}

/// A stream deleted by an operator gets the whole log republished at the relay's next start,
/// with sequence == position again; a purged one keeps its sequence numbers, so the relay goes
/// on after them and the purged events stay readable from the log (README, "Only the log
/// writes to the stream").
#[tokio::test]
async fn a_deleted_stream_is_republished_whole_and_a_purged_one_goes_on_after_its_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let data = dir.path().join("data");
    let args = ["--role", "ingest", "--nats-url", &nats.url()];
    let server = Server::start_with(&data, &args).await;
    onboard(&server, "globex").await;
    wait_published(&server).await;
    server.stop().await;

    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.delete_stream("KEYPLAN").await.unwrap();
    let server = Server::start_with(&data, &args).await;
    wait_published(&server).await;
    assert_eq!(assert_stream_equals_log(&nats, &server).await, 5);

    // Purged: the sequence stays at the head, new events follow it.
    js.get_stream("KEYPLAN")
        .await
        .unwrap()
        .purge()
        .await
        .unwrap();
    server
        .commands()
        .execute(request("globex", interaction("call-1", "cfo", 60)))
        .await
        .unwrap();
    let status = wait_published(&server).await;
    assert_eq!(status.head_position, 6);
    let mut stream = js.get_stream("KEYPLAN").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(
        (state.first_sequence, state.last_sequence, state.messages),
        (6, 6, 1)
    );
    let message = stream.get_raw_message(6).await.unwrap();
    let event = pb::Event::decode(message.payload.as_ref()).unwrap();
    assert_eq!(event.metadata.unwrap().global_position, 6);
    assert_eq!(
        read_all(&server).await.len(),
        6,
        "the log still has everything"
    );
    server.stop().await;
}

/// With a signing key shared by the ingest and projections nodes, a well-formed event forged
/// for the next position (what anyone reading the stream could compute, hash chain included)
/// is never applied: it is skipped and reported, while the relay's signed messages are applied.
#[tokio::test]
async fn a_projections_node_with_the_signing_key_never_applies_a_forged_event() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let key = dir.path().join("signing.key");
    std::fs::write(&key, "c2lnbmluZy1rZXktZm9yLXRoZS10ZXN0LW9mLWtleXBsYW4K\n").unwrap();
    let url = nats.url();
    let args = |role: &'static str| {
        vec![
            "--role".to_owned(),
            role.to_owned(),
            "--nats-url".to_owned(),
            url.clone(),
            "--nats-signing-key-file".to_owned(),
            key.display().to_string(),
        ]
    };
    let ingest_args = args("ingest");
    let ingest_args: Vec<&str> = ingest_args.iter().map(String::as_str).collect();
    let ingest = Server::start_with(&dir.path().join("ingest"), &ingest_args).await;
    let projections_args = args("projections");
    let projections_args: Vec<&str> = projections_args.iter().map(String::as_str).collect();
    let projections = Server::start_with(&dir.path().join("projections"), &projections_args).await;
    onboard(&ingest, "globex").await;
    let head = wait_published(&ingest).await.head_position;
    wait_projected(&projections, head).await;

    // The forger copies the last event and makes it the next one, headers and all, unsigned.
    let messages = stream_messages(&url, "KEYPLAN").await;
    let last = messages.last().unwrap();
    let mut forged = pb::Event::decode(last.payload.as_ref()).unwrap();
    let meta = forged.metadata.as_mut().unwrap();
    meta.global_position = head + 1;
    meta.stream_version += 1;
    meta.event_id = uuid::Uuid::now_v7().to_string();
    meta.prev_hash = meta.hash.clone();
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    let mut headers = async_nats::HeaderMap::new();
    for name in [
        "Keyplan-Stream-Version",
        "Keyplan-Event-Type",
        "Keyplan-Schema-Version",
        "Keyplan-Tenant",
        "Keyplan-Account",
    ] {
        if let Some(value) = last.headers.get(name) {
            headers.insert(name, value.as_str());
        }
    }
    headers.insert("Keyplan-Position", (head + 1).to_string().as_str());
    headers.insert("Keyplan-Event-Id", meta.event_id.as_str());
    headers.insert("Nats-Msg-Id", meta.event_id.as_str());
    js.publish_with_headers(
        last.subject.to_string(),
        headers,
        forged.encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    let mut skipped = None;
    for _ in 0..200 {
        let node = status(&projections).await;
        if let Some(foreign) = node.foreign_messages.filter(|f| f.skipped > 0) {
            skipped = Some(foreign);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let skipped = skipped.expect("the forged event is reported");
    assert_eq!(skipped.last_sequence, head + 1);
    assert!(skipped.last_reason.contains("signature"), "{skipped:?}");
    for p in status(&projections).await.projections {
        assert_eq!(p.position, head, "{} applied the forged event", p.name);
    }
    ingest.stop().await;
    projections.stop().await;
}

/// `node` reaches `head` with every projection running, and answers for both accounts as
/// `full`, which replayed the whole stream.
async fn answers_as(node: &Server, full: &Server, head: u64) {
    wait_projected(node, head).await;
    for p in status(node).await.projections {
        assert_eq!((p.state.as_str(), p.position), ("running", head), "{p:?}");
    }
    for account in ["globex", "initech"] {
        assert_eq!(
            account_at(node, account, head).await,
            account_at(full, account, head).await,
            "{account}"
        );
        assert_eq!(
            whole_timeline(node, account, head).await,
            whole_timeline(full, account, head).await,
            "{account}"
        );
    }
}

/// Runs `keyplan projections seed --data-dir to` against `node`: what it printed, or its
/// error.
async fn seed(node: &Server, to: &std::path::Path) -> Result<String, String> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args([
            "projections",
            "seed",
            "--server",
            &node.address,
            "--data-dir",
        ])
        .arg(to)
        .output()
        .await
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `account`'s whole timeline (one page of up to 500 entries), as `node` serves it at `head`.
async fn whole_timeline(node: &Server, account: &str, head: u64) -> pb::ListTimelineResponse {
    let mut timeline = pb::timeline_service_client::TimelineServiceClient::new(node.channel());
    let page = timeline
        .list_timeline(timeline_page(account, 500, String::new(), head))
        .await
        .unwrap()
        .into_inner();
    assert!(page.next_page_token.is_empty(), "one page holds it all");
    page
}

/// `account` as `node` serves it at `head`.
async fn account_at(node: &Server, account: &str, head: u64) -> pb::Account {
    node.accounts()
        .get_account(pb::GetAccountRequest {
            tenant: TENANT.into(),
            account_id: account.into(),
            min_position: head,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// A new replica started from a copy of a stopped replica's data directory, or seeded from a
/// running one's snapshot (`keyplan projections seed`), resumes from the copied checkpoints
/// and reads only the stream's tail (deploy/README.md, "Adding a projections node from a
/// copy"). To show that it did not replay from position 1, the stream loses every position
/// the copy holds before the replica starts: a node started empty then stops at the gap,
/// while the ones on the copy and the snapshot reach the head and answer as a node that
/// replayed everything before the loss.
#[tokio::test]
async fn a_projections_node_started_on_a_copy_of_another_reads_only_the_streams_tail() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let url = nats.url();
    let projections = ["--role", "projections", "--nats-url", &url];
    let ingest = Server::start_with(
        &dir.path().join("ingest"),
        &["--role", "ingest", "--nats-url", &url],
    )
    .await;
    let a = Server::start_with(&dir.path().join("a"), &projections).await;
    onboard(&ingest, "globex").await;
    let mut c = ingest.commands();
    for i in 0..20 {
        c.execute(request(
            "globex",
            interaction(&format!("before-{i}"), "cfo", i),
        ))
        .await
        .unwrap();
    }
    let copied = wait_published(&ingest).await.head_position;
    wait_projected(&a, copied).await;
    // A snapshot of the running node, through its API (`keyplan projections seed`).
    let seeded = dir.path().join("seeded");
    let said = seed(&a, &seeded).await.expect("seeded");
    assert!(
        said.contains(&format!("every projection at position {copied} or later")),
        "{said}"
    );
    let again = seed(&a, &seeded)
        .await
        .expect_err("a second seed is refused");
    assert!(again.contains("already exists"), "{again}");
    a.stop().await;
    let copy = dir.path().join("b");
    assert!(copy_dir(&dir.path().join("a"), &copy).unwrap() > 0);
    // The original goes: nothing in the copy may lean on it (a path, a lock).
    std::fs::remove_dir_all(dir.path().join("a")).unwrap();

    // The tail: more on globex, and a new account.
    for i in 0..15 {
        c.execute(request(
            "globex",
            interaction(&format!("after-{i}"), "cfo", 100 + i),
        ))
        .await
        .unwrap();
    }
    onboard(&ingest, "initech").await;
    let head = wait_published(&ingest).await.head_position;
    assert_eq!((copied, head), (25, 45));
    // The reference: a node that replays the whole stream while it still holds position 1.
    let full = Server::start_with(&dir.path().join("full"), &projections).await;
    wait_projected(&full, head).await;

    // The stream loses every position the copy holds.
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    let mut stream = js.get_stream("KEYPLAN").await.unwrap();
    stream.purge().sequence(copied + 1).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(
        (state.first_sequence, state.last_sequence),
        (copied + 1, head)
    );

    // A node started empty now cannot replay from 1: its projections stop at the gap.
    let empty = Server::start_with(&dir.path().join("empty"), &projections).await;
    let mut stopped = Vec::new();
    for _ in 0..200 {
        stopped = status(&empty).await.projections;
        if stopped.iter().all(|p| p.state == "stopped") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!stopped.is_empty());
    for p in &stopped {
        assert_eq!(p.state, "stopped", "{p:?}");
        assert_eq!(p.position, 0, "{p:?}");
        assert!(
            p.stopped_reason
                .contains(&format!("expected position 1, got {}", copied + 1)),
            "{p:?}"
        );
    }
    empty.stop().await;

    // The node on the copy starts at its checkpoints and reads the tail only.
    let b = Server::start_with(&copy, &projections).await;
    answers_as(&b, &full, head).await;
    let globex = account_at(&b, "globex", head).await;
    assert_eq!(
        globex.name, "Globex Corporation",
        "from the copy: position 1"
    );
    assert_eq!(globex.interactions.len(), 35);
    let timeline = whole_timeline(&b, "globex", head).await;
    assert!(
        timeline.entries.iter().any(|e| e.position == 1),
        "from the copy: position 1"
    );
    b.stop().await;

    // The node seeded from the running one's snapshot does the same.
    let c = Server::start_with(&seeded, &projections).await;
    answers_as(&c, &full, head).await;
    c.stop().await;
    full.stop().await;
    ingest.stop().await;
}
