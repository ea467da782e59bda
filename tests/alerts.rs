//! Compliance alerts end to end: a real node raises each transition once, on `WatchAlerts`
//! and on NATS, across a restart and across a second (projections) node on the same NATS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::fixtures::{assign, exact, no_stream, register, request, stakeholder, TENANT};
use common::nats::{stream_messages, NatsServer};
use common::{head, wait_projected, Server};
use futures::StreamExt;
use keyplan_proto::pb;
use keyplan_proto::pb::command::Kind;
use keyplan_proto::pb::compliance_service_client::ComplianceServiceClient;
use prost::Message;

const DAY: i64 = 86_400;

/// Now minus `days`, as a protobuf timestamp.
fn days_ago(days: i64) -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    prost_types::Timestamp {
        seconds: now - days * DAY,
        nanos: 0,
    }
}

/// The UTC date `days` ago, YYYY-MM-DD.
fn date_ago(days: i64) -> String {
    let at = days_ago(days);
    chrono::DateTime::from_timestamp(at.seconds, 0)
        .unwrap()
        .date_naive()
        .to_string()
}

/// One account as the test writes it: its id and the version it last wrote.
struct Account {
    id: &'static str,
    version: u64,
}

/// Executes `kind` on `account`, dated `days` ago, at the account's exact version.
async fn execute_at(node: &Server, account: &mut Account, kind: Kind, days: i64) {
    let mut r = match account.version {
        0 => no_stream(request(account.id, kind)),
        version => exact(request(account.id, kind), version),
    };
    r.occurred_at = Some(days_ago(days));
    account.version = node
        .commands()
        .execute(r)
        .await
        .expect("the command is accepted")
        .into_inner()
        .last_version;
}

/// An account registered 90 days ago with a KAM (dana.kim) and two stakeholders, `cfo` and
/// `cto`.
async fn account(node: &Server, id: &'static str) -> Account {
    let mut account = Account { id, version: 0 };
    for kind in [
        register("Globex Corporation"),
        assign("dana.kim", "Dana Kim", pb::TeamRole::KeyAccountManager),
        stakeholder("cfo", "Lee Park", pb::BuyingRole::EconomicBuyer),
        stakeholder("cto", "Sam Ito", pb::BuyingRole::TechnicalBuyer),
    ] {
        execute_at(node, &mut account, kind, 90).await;
    }
    account
}

/// A rule "meet `who` in person every 30 days".
fn rule(id: &str, who: &str) -> Kind {
    Kind::SetEngagementRule(pb::EngagementRuleSet {
        rule_id: id.into(),
        target: Some(pb::RuleTarget {
            target: Some(pb::rule_target::Target::StakeholderId(who.into())),
        }),
        owner: "dana.kim".into(),
        cadence_days: 30,
        channels: vec![pb::Channel::InPerson as i32],
        opportunity_id: String::new(),
    })
}

/// A meeting with `who` `days` ago.
fn meeting(id: &str, who: &str, days: i64) -> Kind {
    let mut details = common::fixtures::details(who, 0, "Quarterly business review");
    details.occurred_at = Some(days_ago(days));
    Kind::LogInteraction(pb::InteractionLogged {
        interaction_id: id.into(),
        details: Some(details),
    })
}

type Alerts = tonic::Streaming<pb::ComplianceAlert>;

async fn watch_alerts(node: &Server) -> Alerts {
    ComplianceServiceClient::new(node.channel())
        .watch_alerts(pb::WatchAlertsRequest {
            tenant: TENANT.into(),
            kinds: Vec::new(),
            account_id: String::new(),
        })
        .await
        .expect("WatchAlerts opens")
        .into_inner()
}

async fn next_alert(alerts: &mut Alerts, what: &str) -> pb::ComplianceAlert {
    tokio::time::timeout(Duration::from_secs(20), alerts.message())
        .await
        .unwrap_or_else(|_| panic!("no alert within 20 s: expected {what}"))
        .expect("the stream stays open")
        .expect("the stream does not end")
}

/// How often the node's log says it raised `alert_id` (the nodes here log at info).
fn times_raised(node: &Server, alert_id: &str) -> usize {
    node.log()
        .lines()
        .filter(|line| line.contains("alert raised") && line.contains(alert_id))
        .count()
}

const INFO: [(&str, &str); 1] = [("KEYPLAN_LOG", "warn,keyplan_compliance_service=info")];

#[tokio::test]
async fn each_transition_is_alerted_once_with_its_rule_owner_and_account_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let metrics = ["--metrics-listen", "127.0.0.1:0"];
    let node = Server::start_with_env(&data, &metrics, &INFO).await;
    let mut alerts = watch_alerts(&node).await;

    // A rule set 60 days ago, never met: due 30 days ago.
    let mut globex = account(&node, "globex").await;
    execute_at(&node, &mut globex, rule("rule-cfo", "cfo"), 60).await;
    let never_met = next_alert(&mut alerts, "RULE_NEVER_MET").await;
    assert_eq!(
        never_met.kind(),
        pb::ComplianceAlertKind::RuleNeverMet,
        "{never_met:?}"
    );
    let due = date_ago(30);
    assert_eq!(
        never_met.alert_id,
        format!("{TENANT}/globex/rule/rule-cfo/rule_never_met/{due}")
    );
    assert_eq!(never_met.tenant, TENANT);
    assert_eq!(never_met.account_id, "globex");
    assert_eq!(never_met.account_name, "Globex Corporation");
    assert_eq!(never_met.rule_id, "rule-cfo");
    assert_eq!(never_met.owner, "dana.kim");
    assert_eq!(never_met.owner_name, "Dana Kim");
    assert!(
        never_met.target_description.contains("cfo"),
        "{never_met:?}"
    );
    assert_eq!(never_met.due_on, due);
    assert_eq!(never_met.days_overdue, 30);
    assert!(never_met.position >= head(&node).await - 1);

    // Met 25 days ago: due in 5 days, within the 7-day due-soon window.
    execute_at(&node, &mut globex, meeting("qbr-1", "cfo", 25), 25).await;
    let due_soon = next_alert(&mut alerts, "RULE_DUE_SOON").await;
    assert_eq!(
        due_soon.kind(),
        pb::ComplianceAlertKind::RuleDueSoon,
        "the never-met alert is not sent twice: {due_soon:?}"
    );
    assert_eq!(due_soon.due_on, date_ago(-5));
    assert_eq!(due_soon.days_until_due, 5);
    assert_eq!(due_soon.days_overdue, 0);
    let scraped = node.scrape_metrics().await;
    for kind in ["rule_never_met", "rule_due_soon"] {
        let series = format!("keyplan_alerts_raised_total{{kind=\"{kind}\"}} 1");
        assert!(
            scraped.lines().any(|l| l == series),
            "{series} in:\n{scraped}"
        );
    }

    // Other tenants' alerts are not sent, and a filter keeps to its kinds.
    let mut overdue_only = ComplianceServiceClient::new(node.channel())
        .watch_alerts(pb::WatchAlertsRequest {
            tenant: TENANT.into(),
            kinds: vec![pb::ComplianceAlertKind::RuleOverdue as i32],
            account_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let refused = ComplianceServiceClient::new(node.channel())
        .watch_alerts(pb::WatchAlertsRequest {
            tenant: TENANT.into(),
            kinds: vec![0],
            account_id: String::new(),
        })
        .await
        .expect_err("an unset kind is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");

    // The CTO, last met 40 days ago: a rule set 60 days ago is overdue since 10 days ago.
    execute_at(&node, &mut globex, meeting("visit-1", "cto", 40), 40).await;
    execute_at(&node, &mut globex, rule("rule-cto", "cto"), 60).await;
    let overdue = next_alert(&mut overdue_only, "RULE_OVERDUE").await;
    assert_eq!(overdue.rule_id, "rule-cto", "{overdue:?}");
    assert_eq!(overdue.due_on, date_ago(10));
    assert_eq!(overdue.days_overdue, 10);
    let also = next_alert(&mut alerts, "the CTO rule's alert").await;
    assert_eq!(also.alert_id, overdue.alert_id);
    node.stop().await;

    // Restarted on the same data: the transitions already alerted are not alerted again.
    let node = Server::start_with_env(&data, &[], &INFO).await;
    let mut alerts = watch_alerts(&node).await;
    let mut initech = account(&node, "initech").await;
    execute_at(&node, &mut initech, rule("rule-cfo", "cfo"), 60).await;
    let fresh = next_alert(&mut alerts, "the new account's alert").await;
    assert_eq!(fresh.account_id, "initech", "{fresh:?}");
    // The start's sweep over every account ran before the new account's alert (one tick
    // evaluates the queued accounts after the sweep), so the log holds whatever it raised.
    for id in [&never_met.alert_id, &due_soon.alert_id, &overdue.alert_id] {
        assert_eq!(times_raised(&node, id), 1, "{id} raised once in both runs");
    }
}

#[tokio::test]
async fn alerts_go_to_nats_once_whichever_node_raises_them() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats")).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut published = client.subscribe("keyplan-alerts.>").await.unwrap();
    client.flush().await.unwrap();
    let node = Server::start_with_env(
        &dir.path().join("node"),
        &["--nats-url", &nats.url()],
        &INFO,
    )
    .await;

    let mut globex = account(&node, "globex").await;
    execute_at(&node, &mut globex, rule("rule-cfo", "cfo"), 60).await;
    let message = tokio::time::timeout(Duration::from_secs(20), published.next())
        .await
        .expect("an alert is published within 20 s")
        .unwrap();
    assert_eq!(
        message.subject.as_str(),
        format!("keyplan-alerts.{TENANT}.rule_never_met")
    );
    let alert = pb::ComplianceAlert::decode(message.payload.as_ref()).unwrap();
    assert_eq!(alert.rule_id, "rule-cfo");
    let headers = message.headers.expect("the alert has headers");
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(alert.alert_id.as_str())
    );
    assert_eq!(
        headers.get("Keyplan-Alert-Kind").map(|v| v.as_str()),
        Some("rule_never_met")
    );
    // Not in the event stream: its sequence stays the log's position.
    let events = stream_messages(&nats.url(), "KEYPLAN").await;
    assert_eq!(events.len() as u64, head(&node).await);
    assert!(events.iter().all(|m| m.subject.starts_with("keyplan.")));

    // A projections node on the same NATS evaluates the same accounts: it reads what was
    // published at start and raises nothing already raised; a new transition is raised by
    // both nodes and kept once.
    let replica = Server::start_with_env(
        &dir.path().join("replica"),
        &["--role", "projections", "--nats-url", &nats.url()],
        &INFO,
    )
    .await;
    wait_projected(&replica, head(&node).await).await;
    let mut replica_alerts = watch_alerts(&replica).await;
    execute_at(&node, &mut globex, rule("rule-cfo-2", "cfo"), 60).await;
    let second = next_alert(
        &mut replica_alerts,
        "the second rule's alert on the replica",
    )
    .await;
    assert_eq!(second.rule_id, "rule-cfo-2");
    let mut node_alerts_seen = 0;
    for _ in 0..200 {
        node_alerts_seen = times_raised(&node, &second.alert_id);
        if node_alerts_seen == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(node_alerts_seen, 1, "both nodes raise the new transition");
    assert_eq!(times_raised(&replica, &alert.alert_id), 0);
    let stored = stream_messages(&nats.url(), "KEYPLAN_ALERTS").await;
    let ids: Vec<String> = stored
        .iter()
        .map(|m| {
            pb::ComplianceAlert::decode(m.payload.as_ref())
                .unwrap()
                .alert_id
        })
        .collect();
    assert_eq!(ids, vec![alert.alert_id.clone(), second.alert_id.clone()]);
}
