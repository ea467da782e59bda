//! The KAM CLI against a real node: the `keyplan` binary run as a person (or a script) runs
//! it, its output read back. Covers a walk-through from registration to compliance, JSON for
//! scripts, errors in words with a failing exit status, a live watch, alerts, and audit.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::Server;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// `keyplan ARGS` against `server` as tenant `acme`, actor `alice`; not on a terminal.
async fn keyplan(server: &Server, args: &[&str]) -> Output {
    command(server, args).output().await.unwrap()
}

fn command(server: &Server, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyplan"));
    c.args(args)
        .env("KEYPLAN_SERVER", &server.address)
        .env("KEYPLAN_TENANT", "acme")
        .env("KEYPLAN_ACTOR", "alice")
        .env_remove("KEYPLAN_TOKEN")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

/// Runs and expects success; its stdout.
async fn ok(server: &Server, args: &[&str]) -> String {
    let out = keyplan(server, args).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "keyplan {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// Runs with `--json` and parses the one JSON document printed.
async fn json(server: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let stdout = ok(server, &args).await;
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// The walk-through of the README, by the CLI: the rule is met because the team member was
/// on the team (`--effective`) when the meeting happened.
async fn onboard(server: &Server) {
    ok(
        server,
        &["account", "register", "globex", "--name", "Globex Corp"],
    )
    .await;
    ok(
        server,
        &[
            "team",
            "assign",
            "globex",
            "alice",
            "--name",
            "Alice",
            "--effective",
            &days_ago(60),
        ],
    )
    .await;
    ok(
        server,
        &[
            "stakeholder",
            "add",
            "globex",
            "cfo",
            "--name",
            "Dana Fox",
            "--title",
            "CFO",
            "--buying-role",
            "economic-buyer",
        ],
    )
    .await;
    ok(
        server,
        &[
            "rule",
            "set",
            "globex",
            "cfo-monthly",
            "--stakeholder",
            "cfo",
            "--owner",
            "alice",
            "--every-days",
            "30",
            "--channel",
            "in-person",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_walk_through_from_registration_to_compliance_and_the_portfolio() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server).await;

    // Before any meeting the rule was never met (it is not due yet).
    let c = json(&server, &["compliance", "globex"]).await;
    assert_eq!(
        c["rules"][0]["status"], "COMPLIANCE_RULE_STATUS_NEVER_MET",
        "{c}"
    );

    let said = ok(
        &server,
        &[
            "interaction",
            "log",
            "globex",
            "mtg-1",
            "--channel",
            "in-person",
            "--with",
            "cfo",
            "--summary",
            "Budget review for next year",
            "--sentiment",
            "positive",
            "--ago",
            "2h",
        ],
    )
    .await;
    assert!(
        said.starts_with("interaction logged: account globex is now at version 5"),
        "{said}"
    );

    let c = json(&server, &["compliance", "globex"]).await;
    assert_eq!(
        c["rules"][0]["status"], "COMPLIANCE_RULE_STATUS_ON_TRACK",
        "{c}"
    );
    assert_eq!(
        c["rules"][0]["lastInteraction"]["interactionId"], "mtg-1",
        "{c}"
    );

    // A person's view: a table, no escape sequences when not on a terminal.
    let table = ok(&server, &["compliance", "globex"]).await;
    assert!(
        table.contains("cfo-monthly") && table.contains("on-track"),
        "{table}"
    );
    assert!(
        !table.contains('\u{1b}'),
        "colours off a terminal: {table:?}"
    );

    let timeline = ok(&server, &["timeline", "globex"]).await;
    assert!(
        timeline.contains("Budget review for next year"),
        "{timeline}"
    );

    let portfolio = json(&server, &["portfolio"]).await;
    assert_eq!(
        portfolio["accounts"][0]["accountId"], "globex",
        "{portfolio}"
    );
    assert_eq!(
        portfolio["accounts"][0]["interactions30Days"], 1,
        "{portfolio}"
    );

    let account = json(&server, &["account", "show", "globex"]).await;
    assert_eq!(account["version"], "5", "{account}");
    assert_eq!(account["team"][0]["personId"], "alice", "{account}");

    // Plan work, money parsed exactly.
    ok(
        &server,
        &[
            "opportunity",
            "identify",
            "globex",
            "opp-1",
            "--title",
            "Line 4 retrofit",
            "--value",
            "1,250,000.05 EUR",
            "--close",
            &days_ago(-90),
        ],
    )
    .await;
    let summary = json(&server, &["activity", "opportunities", "globex"]).await;
    assert_eq!(
        summary["openValue"][0]["minorUnits"], "125000005",
        "{summary}"
    );
    assert_eq!(summary["openValue"][0]["currency"], "EUR", "{summary}");

    // Retrying with the same idempotency key stores nothing new (the time is given: "now"
    // would make each run another command).
    let at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for attempt in 0..2 {
        let said = ok(
            &server,
            &[
                "interaction",
                "log",
                "globex",
                "call-1",
                "--channel",
                "phone-call",
                "--with",
                "cfo",
                "--summary",
                "Follow-up",
                "--idempotency-key",
                "call-1-key",
                "--at",
                &at,
            ],
        )
        .await;
        assert!(said.contains("version 7"), "{said}");
        assert_eq!(said.contains("a retry"), attempt == 1, "{said}");
    }
    let account = json(&server, &["account", "show", "globex"]).await;
    assert_eq!(account["version"], "7", "{account}");
    server.stop().await;
}

#[tokio::test]
async fn errors_are_in_words_with_a_failing_status_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server).await;

    let out = keyplan(&server, &["account", "show", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("keyplan: not found: ") && stderr.contains("nope"),
        "{stderr}"
    );

    // An unknown enum value names the choices; nothing is sent.
    let out = keyplan(
        &server,
        &[
            "interaction",
            "log",
            "globex",
            "m",
            "--channel",
            "pigeon",
            "--with",
            "cfo",
            "--summary",
            "x",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("pigeon") && stderr.contains("in-person"),
        "{stderr}"
    );

    // A refused command says so and is not stored.
    let out = keyplan(
        &server,
        &["account", "register", "globex", "--name", "Again"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("nothing was stored"), "{stderr}");

    // A stale --expected-version is reported, not overwritten.
    let out = keyplan(
        &server,
        &[
            "rule",
            "set",
            "globex",
            "cfo-monthly",
            "--stakeholder",
            "cfo",
            "--owner",
            "alice",
            "--every-days",
            "14",
            "--expected-version",
            "2",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let account = json(&server, &["account", "show", "globex"]).await;
    assert_eq!(account["version"], "4", "{account}");
    assert_eq!(
        account["engagementRules"][0]["definition"]["cadenceDays"],
        30
    );

    // No node there: a connection error in words.
    let out = Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args([
            "account",
            "list",
            "--server",
            "127.0.0.1:1",
            "--tenant",
            "acme",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("keyplan: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    server.stop().await;
}

#[tokio::test]
async fn watch_prints_new_events_live_and_audit_verifies_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server).await;

    let mut watch = command(&server, &["watch", "globex", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    // Give the stream a moment to open, then write.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ok(
        &server,
        &[
            "interaction",
            "log",
            "globex",
            "live-1",
            "--channel",
            "video-call",
            "--with",
            "cfo",
            "--summary",
            "Seen live",
        ],
    )
    .await;
    let line = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("watch keeps running");
            if line.contains("Seen live") {
                return line;
            }
        }
    })
    .await
    .expect("the watch prints the new event within 10 s");
    let entry: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["eventType"], "InteractionLogged", "{entry}");
    watch.kill().await.unwrap();

    let verified = ok(&server, &["audit", "verify", "globex"]).await;
    assert!(
        verified.starts_with("globex: intact, 5 events"),
        "{verified}"
    );

    let file = dir.path().join("globex.jsonl");
    ok(
        &server,
        &["audit", "export", "globex", "--out", file.to_str().unwrap()],
    )
    .await;
    let exported = std::fs::read_to_string(&file).unwrap();
    let events: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 5);
    assert_eq!(events[4]["event_type"], "InteractionLogged");

    let as_of = json(&server, &["audit", "as-of", "globex", "--version", "3"]).await;
    assert_eq!(as_of["account"]["stakeholders"][0]["stakeholderId"], "cfo");
    assert_eq!(
        as_of["account"]["engagementRules"],
        serde_json::json!([]),
        "{as_of}"
    );
    server.stop().await;
}

/// The next line of `lines` containing `text`, within `secs` seconds.
async fn line_with<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    text: &str,
    secs: u64,
    what: &str,
) -> String {
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{what}: ended before printing {text:?}"));
            if line.contains(text) {
                return line;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: no line with {text:?} within {secs} s"))
}

/// `keyplan alerts watch ARGS` running, once it said `watching` on stderr (printed once the
/// node answered, i.e. subscribed); its stdout's lines.
async fn alerts_watch(
    server: &Server,
    args: &[&str],
    watching: &str,
) -> (
    tokio::process::Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut all = vec!["alerts", "watch"];
    all.extend_from_slice(args);
    let mut child = command(server, &all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    line_with(&mut errors, watching, 10, &all.join(" ")).await;
    (child, lines)
}

#[tokio::test]
async fn alerts_watch_prints_a_rule_never_met_past_its_due_date() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;

    // An unknown kind is refused in words.
    let out = keyplan(&server, &["alerts", "watch", "--kind", "gold"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("rule-never-met"), "{stderr}");

    // One watch for a person (filtered to the account and kind), one for scripts (everything).
    let (mut plain, mut plain_lines) = alerts_watch(
        &server,
        &["--kind", "rule_never_met", "--account", "late"],
        "watching the alerts of account late",
    )
    .await;
    let (mut scripted, mut json_lines) =
        alerts_watch(&server, &["--json"], "watching the alerts of tenant acme").await;

    // A rule set 60 days ago, every 30 days, never met: NEVER_MET past its first due date.
    let long_ago = days_ago(61);
    ok(
        &server,
        &[
            "account",
            "register",
            "late",
            "--name",
            "Late Corp",
            "--effective",
            &long_ago,
        ],
    )
    .await;
    ok(
        &server,
        &[
            "team",
            "assign",
            "late",
            "alice",
            "--name",
            "Alice",
            "--effective",
            &long_ago,
        ],
    )
    .await;
    ok(
        &server,
        &[
            "stakeholder",
            "add",
            "late",
            "cfo",
            "--name",
            "Dana Fox",
            "--buying-role",
            "economic-buyer",
            "--effective",
            &long_ago,
        ],
    )
    .await;
    ok(
        &server,
        &[
            "rule",
            "set",
            "late",
            "cfo-monthly",
            "--stakeholder",
            "cfo",
            "--owner",
            "alice",
            "--every-days",
            "30",
            "--channel",
            "in-person",
            "--effective",
            &days_ago(60),
        ],
    )
    .await;

    let due = days_ago(30);
    let line = line_with(&mut json_lines, "cfo-monthly", 15, "alerts watch --json").await;
    let alert: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        alert["kind"], "COMPLIANCE_ALERT_KIND_RULE_NEVER_MET",
        "{alert}"
    );
    assert_eq!(alert["tenant"], "acme", "{alert}");
    assert_eq!(alert["accountId"], "late", "{alert}");
    assert_eq!(alert["accountName"], "Late Corp", "{alert}");
    assert_eq!(alert["ruleId"], "cfo-monthly", "{alert}");
    assert_eq!(alert["owner"], "alice", "{alert}");
    assert_eq!(alert["ownerName"], "Alice", "{alert}");
    assert_eq!(alert["dueOn"], due.as_str(), "{alert}");
    assert_eq!(alert["daysOverdue"], 30, "{alert}");
    assert_eq!(
        alert["alertId"],
        format!("acme/late/rule/cfo-monthly/rule_never_met/{due}"),
        "{alert}"
    );

    let line = line_with(&mut plain_lines, "cfo-monthly", 15, "alerts watch").await;
    assert_eq!(
        line,
        format!(
            "rule_never_met  late (Late Corp)  rule cfo-monthly [stakeholder cfo (Dana Fox)]  \
             owner alice (Alice)  due {due}, 30 days overdue"
        )
    );
    plain.kill().await.unwrap();
    scripted.kill().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn projections_status_json_rebuild_lines_and_health_for_probes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server).await;

    // `--server` as host:port (the harness's address has no scheme).
    let status = json(&server, &["projections", "status"]).await;
    assert_eq!(status["headPosition"], "4", "{status}");
    let names: Vec<&str> = status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"timeline"), "{status}");

    // Not on a terminal: plain lines on stderr, one at least when each projection is done.
    let out = keyplan(&server, &["projections", "rebuild", "timeline"]).await;
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l == "timeline: 4/4 events, done: the new generation serves"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");

    // `keyplan health`: exit status 0 while the part serves, 1 otherwise (for probes).
    let serving = keyplan(&server, &["health"]).await;
    assert_eq!(serving.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(serving.stdout).unwrap(),
        "the node: SERVING\n"
    );
    let commands = keyplan(
        &server,
        &["health", "--service", "keyplan.v1.CommandService"],
    )
    .await;
    assert_eq!(commands.status.code(), Some(0));
    let unknown = keyplan(&server, &["health", "--service", "keyplan.v1.Nothing"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    server.stop().await;
    let gone = Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args(["health", "--server", "127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8(gone.stdout)
        .unwrap()
        .contains("no answer"));
}
