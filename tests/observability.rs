//! Metrics (`--metrics-listen`), the request id and JSON logs, against the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::fixtures::{self, TENANT};
use common::Server;
use keyplan_proto::pb;
use tokio_stream::StreamExt;

/// The node's metrics, scraped.
async fn scrape(server: &Server) -> String {
    server.scrape_metrics().await
}

/// The value of the sample named exactly `series` (name and labels as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

/// Waits until `series` has `value` in a scrape; the last scrape.
async fn until(server: &Server, series: &str, value: f64) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(server).await;
        if sample(&text, series) == Some(value) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} never was {value}:\n{text}");
}

#[tokio::test]
async fn metrics_count_commands_rpcs_watchers_lag_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("node"),
        &["--metrics-listen", "127.0.0.1:0"],
    )
    .await;

    // Five acknowledged commands, one refused as INVALID_ARGUMENT (no command in it).
    fixtures::onboard(&server, "globex").await;
    let mut bad = fixtures::request("globex", fixtures::plan("plan-x"));
    bad.command = None;
    let refused = server.commands().execute(bad).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // A watch, open while scraped: it has delivered the account's first event.
    let mut watch = server
        .events()
        .watch(pb::WatchRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
            from_position: 0,
        })
        .await
        .unwrap()
        .into_inner();
    watch.next().await.unwrap().unwrap();

    let text = until(&server, "keyplan_active_watchers", 1.0).await;
    assert_eq!(
        sample(&text, "keyplan_append_duration_seconds_count"),
        Some(5.0),
        "{text}"
    );
    let execute = "keyplan.v1.CommandService/Execute";
    assert_eq!(
        sample(
            &text,
            &format!("keyplan_grpc_requests_total{{method=\"{execute}\",code=\"OK\"}}")
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "keyplan_grpc_requests_total{{method=\"{execute}\",code=\"InvalidArgument\"}}"
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("keyplan_grpc_request_duration_seconds_count{{method=\"{execute}\"}}")
        ),
        Some(6.0),
        "{text}"
    );
    // Five commands, five appends: each commit took at least one.
    let commits = sample(&text, "keyplan_commit_batch_appends_count").unwrap();
    assert!((1.0..=5.0).contains(&commits), "{text}");
    assert_eq!(
        sample(&text, "keyplan_commit_batch_appends_sum"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "keyplan_commit_batch_events_sum"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "keyplan_log_head_position"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "keyplan_store_writer_up"),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "keyplan_store_size_bytes").unwrap() > 0.0,
        "{text}"
    );

    // Every projection GetStatus names has its lag and position, and catches up to 0 lag.
    let status = common::status(&server).await;
    assert!(!status.projections.is_empty());
    common::wait_projected(&server, 5).await;
    let text = scrape(&server).await;
    for projection in &status.projections {
        let label = format!("{{projection=\"{}\"}}", projection.name);
        assert_eq!(
            sample(&text, &format!("keyplan_projection_lag_events{label}")),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, &format!("keyplan_projection_position{label}")),
            Some(5.0),
            "{text}"
        );
    }

    // The watch closed by its client is no longer counted.
    drop(watch);
    until(&server, "keyplan_active_watchers", 0.0).await;

    // The store writer has its own health service name.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let store = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "keyplan.store".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        store.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn the_request_id_is_echoed_generated_and_in_the_json_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    // The command's own line ("commands executed") is at debug: one line per command at info
    // would put a log write on every command.
    let server = Server::start_with_env(
        &dir.path().join("node"),
        &["--log-format", "json"],
        &[("KEYPLAN_LOG", "info,keyplan_command_service=debug")],
    )
    .await;
    let mut commands = server.commands();

    let mut sent = tonic::Request::new(fixtures::request(
        "globex",
        fixtures::register("Globex Corporation"),
    ));
    sent.metadata_mut()
        .insert("x-request-id", "req-42.a_b".parse().unwrap());
    let answer = commands.execute(sent).await.unwrap();
    assert_eq!(answer.metadata().get("x-request-id").unwrap(), "req-42.a_b");

    // None sent, or one that is not at most 128 of [A-Za-z0-9._-]: a generated UUID.
    let generated = commands
        .execute(fixtures::request("initech", fixtures::register("Initech")))
        .await
        .unwrap();
    let id = generated
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    uuid::Uuid::parse_str(id).expect("a UUID");
    let mut malformed = tonic::Request::new(fixtures::request(
        "umbrella",
        fixtures::register("Umbrella"),
    ));
    malformed
        .metadata_mut()
        .insert("x-request-id", "a b/c".parse().unwrap());
    let replaced = commands.execute(malformed).await.unwrap();
    let replaced = replaced
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    uuid::Uuid::parse_str(replaced).expect("a UUID");

    // Refusals carry it too.
    let mut bad = tonic::Request::new(fixtures::request("globex", fixtures::plan("p")));
    bad.get_mut().command = None;
    bad.metadata_mut()
        .insert("x-request-id", "req-refused".parse().unwrap());
    let refused = commands.execute(bad).await.unwrap_err();
    assert_eq!(
        refused.metadata().get("x-request-id").unwrap(),
        "req-refused"
    );

    server.stop().await;
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    let line = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| {
            line["fields"]["message"] == "commands executed"
                && line["span"]["request_id"] == "req-42.a_b"
        })
        .unwrap_or_else(|| panic!("no JSON line of the command with its request id:\n{log}"));
    // The spans: the call (method, request id) and the command (tenant, account, kind).
    let spans = line["spans"].as_array().unwrap();
    let rpc = spans.iter().find(|s| s["name"] == "rpc").unwrap();
    assert_eq!(rpc["request_id"], "req-42.a_b");
    assert_eq!(rpc["method"], "keyplan.v1.CommandService/Execute");
    let execute = &line["span"];
    assert_eq!(execute["name"], "execute");
    assert_eq!(execute["tenant"], TENANT);
    assert_eq!(execute["account"], "globex");
    assert_eq!(execute["kind"], "RegisterAccount");
    // No line carries ANSI colours (stderr is a file).
    assert!(!log.contains('\u{1b}'), "{log}");
}

#[tokio::test]
async fn relay_lag_is_served_on_a_node_with_nats_and_absent_without() {
    let dir = tempfile::tempdir().unwrap();
    let nats = common::nats::NatsServer::start(&dir.path().join("nats")).await;
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--nats-url", &nats.url(), "--metrics-listen", "127.0.0.1:0"],
    )
    .await;
    fixtures::onboard(&server, "globex").await;
    common::wait_published(&server).await;
    let text = scrape(&server).await;
    assert_eq!(
        sample(&text, "keyplan_relay_lag_events"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "keyplan_relay_lag_seconds"),
        Some(0.0),
        "{text}"
    );
    server.stop().await;

    // A node without NATS has no relay: no relay metrics rather than zeros.
    let alone = Server::start_with(
        &dir.path().join("alone"),
        &["--metrics-listen", "127.0.0.1:0"],
    )
    .await;
    let text = scrape(&alone).await;
    assert!(!text.contains("keyplan_relay_lag"), "{text}");
    alone.stop().await;
}
