//! A damaged log is refused at start with a message naming the damage, and `keyplan recover`
//! rebuilds it from its readable part and JetStream with every hash and chain link verified.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::fixtures::*;
use common::nats::NatsServer;
use common::{read_all, wait_published, Server};
use keyplan_proto::pb;

const ACCOUNTS: usize = 4;

/// Writes some history and waits until JetStream holds all of it.
async fn write_history(server: &Server) {
    for a in 0..ACCOUNTS {
        let account = format!("account-{a}");
        onboard(server, &account).await;
        let mut c = server.commands();
        for i in 0..30 {
            // Some keyed: their stored key carries the request's fingerprint, which the
            // rebuilt events must reproduce exactly to match their hashes.
            let command = request(&account, interaction(&format!("call-{i}"), "cfo", i));
            let command = if i % 3 == 0 {
                keyed(command, &format!("{account}-call-{i}"))
            } else {
                command
            };
            c.execute(command).await.unwrap();
        }
    }
    wait_published(server).await;
}

/// Runs the binary to completion; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args(args)
        .env("KEYPLAN_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("keyplan {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A node over `data` refuses to start; returns what it said.
fn refused_start(data: &Path) -> String {
    let (ok, stdout, stderr) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--role",
        "ingest",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(
        !ok && !stdout.contains("keyplan listening"),
        "a damaged log was served: {stdout}"
    );
    stderr
}

async fn assert_recovered(server: &Server, before: &[pb::Event]) {
    let after = read_all(server).await;
    assert_eq!(
        after.len(),
        before.len(),
        "every acknowledged event is back"
    );
    assert!(
        after == before,
        "the rebuilt log is the log that was written"
    );
    for a in 0..ACCOUNTS {
        let report = server
            .events()
            .verify_stream(pb::VerifyStreamRequest {
                tenant: TENANT.into(),
                account_id: format!("account-{a}"),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(report.intact, "account-{a}: {}", report.detail);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_is_refused_and_recovered_from_jetstream() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let data = dir.path().join("data");
    let url = nats.url();
    let server = Server::start_with(&data, &["--role", "ingest", "--nats-url", &url]).await;
    write_history(&server).await;
    let before = read_all(&server).await;
    server.stop().await;

    for damage in ["zeroed tail", "emptied data file"] {
        // Damage sled's data file as a failing disk or a lost write would.
        let db = data.join("db");
        let mut bytes = std::fs::read(&db).unwrap();
        match damage {
            "zeroed tail" => {
                let half = bytes.len() / 2;
                bytes[half..].fill(0);
            }
            _ => bytes.clear(),
        }
        std::fs::write(&db, &bytes).unwrap();

        let said = refused_start(&data);
        assert!(
            said.contains("keyplan recover"),
            "{damage}: the refusal names the way back: {said}"
        );

        let (ok, stdout, stderr) = run(&[
            "recover",
            "--data-dir",
            data.to_str().unwrap(),
            "--nats-url",
            &url,
        ]);
        assert!(ok, "{damage}: recover failed: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("ends at position {}", before.len())),
            "{damage}: {stdout}"
        );

        let server = Server::start_with(&data, &["--role", "ingest", "--nats-url", &url]).await;
        assert_recovered(&server, &before).await;
        server.stop().await;
    }

    // A new append after recovery takes the next position, and the relay goes on from there.
    let server = Server::start_with(&data, &["--role", "ingest", "--nats-url", &url]).await;
    let outcome = server
        .commands()
        .execute(request("account-0", interaction("call-after", "cfo", 99)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.first_position, before.len() as u64 + 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_that_cannot_reach_what_was_acknowledged_replaces_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let data = dir.path().join("data");
    // Written without NATS: JetStream holds none of it.
    let server = Server::start_with(&data, &["--role", "ingest"]).await;
    write_history_without_relay(&server).await;
    server.stop().await;
    std::fs::write(data.join("db"), b"").unwrap();
    let (ok, stdout, stderr) = run(&[
        "recover",
        "--data-dir",
        data.to_str().unwrap(),
        "--nats-url",
        &nats.url(),
    ]);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("left as it was"), "{stderr}");
    assert!(refused_start(&data).contains("acknowledged"));
}

async fn write_history_without_relay(server: &Server) {
    for a in 0..2 {
        onboard(server, &format!("account-{a}")).await;
    }
}

/// A node started on a new, empty volume (a rescheduled pod, a wiped disk) while its stream
/// holds the log would acknowledge new events at positions JetStream already holds: it is
/// refused at start, and `keyplan recover` restores the whole log from the stream into the
/// empty (or missing) directory, verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_empty_volume_is_refused_and_restored_wholly_from_jetstream() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let data = dir.path().join("data");
    let url = nats.url();
    let server = Server::start_with(&data, &["--role", "ingest", "--nats-url", &url]).await;
    write_history(&server).await;
    let before = read_all(&server).await;
    server.stop().await;

    for volume in ["empty", "missing"] {
        let fresh = dir.path().join(format!("fresh-{volume}"));
        if volume == "empty" {
            std::fs::create_dir(&fresh).unwrap();
        }
        let (ok, stdout, stderr) = run(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--role",
            "ingest",
            "--nats-url",
            &url,
            "--data-dir",
            fresh.to_str().unwrap(),
        ]);
        assert!(!ok && !stdout.contains("keyplan listening"), "{stdout}");
        assert!(
            stderr.contains(&format!("holds events up to position {}", before.len()))
                && stderr.contains("keyplan recover"),
            "{volume}: the refusal says why and the way back: {stderr}"
        );

        let (ok, stdout, stderr) = run(&[
            "recover",
            "--data-dir",
            fresh.to_str().unwrap(),
            "--nats-url",
            &url,
        ]);
        assert!(ok, "{volume}: recover failed: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!(
                "0 events salvaged from the damaged log, {} from JetStream",
                before.len()
            )),
            "{volume}: {stdout}"
        );
        let server = Server::start_with(&fresh, &["--role", "ingest", "--nats-url", &url]).await;
        assert_recovered(&server, &before).await;
        server.stop().await;
    }

    // A directory with something else in it is not taken for an empty volume.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "not a log").unwrap();
    let (ok, _, stderr) = run(&[
        "recover",
        "--data-dir",
        other.to_str().unwrap(),
        "--nats-url",
        &url,
    ]);
    assert!(!ok && stderr.contains("holds no Keyplan log"), "{stderr}");
    assert!(other.join("notes.txt").exists());
}
