//! The NATS configuration shipped in deploy/nats/ against a real nats-server started with it:
//! Keyplan's ingest and projections nodes work with their users, nobody but the ingest node's
//! user can put a message on the stream's subjects, and a tenant's integration user
//! (`keyplan-tenant-acme`) reads its tenant's events, live and replayed, and nothing else.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::response::Response;
use async_nats::jetstream::ErrorCode;
use futures::StreamExt;
use tokio::sync::mpsc;

use common::fixtures::*;
use common::nats::NatsServer;
use common::{status, wait_projected, Server};
use keyplan_proto::pb;
use keyplan_proto::pb::command::Kind;

const INGEST: (&str, &str) = ("keyplan-ingest", "ingest-secret");
const PROJECTIONS: (&str, &str) = ("keyplan-projections", "projections-secret");
const READER: (&str, &str) = ("keyplan-reader", "reader-secret");
/// The shipped template's per-tenant user, for tenant `acme`.
const TENANT_USER: (&str, &str) = ("keyplan-tenant-acme", "tenant-acme-secret");
/// Its tenant, its one consumer's name and its own inbox prefix, as in the configuration file.
const TENANT_A: &str = "acme";
const TENANT_A_CONSUMER: &str = "keyplan-tenant-acme";
const TENANT_A_INBOX: &str = "_INBOX_acme";
/// Another tenant, whose id starts like A's (`keyplan.acme.>` must not match it).
const TENANT_B: &str = TENANT;

async fn start_nats(dir: &Path) -> NatsServer {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats/nats-server.conf");
    NatsServer::start_with_config(
        dir,
        &config,
        &[
            ("KEYPLAN_INGEST_PASSWORD", INGEST.1),
            ("KEYPLAN_PROJECTIONS_PASSWORD", PROJECTIONS.1),
            ("KEYPLAN_READER_PASSWORD", READER.1),
            ("KEYPLAN_TENANT_ACME_PASSWORD", TENANT_USER.1),
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

async fn connect(url: &str, user: (&str, &str)) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.0.into(), user.1.into())
        .connect(url)
        .await
        .unwrap()
}

/// Publishes a message that looks like Keyplan's on `tenant`'s subjects as `client`'s user;
/// returns whether JetStream stored it.
async fn forge(client: &async_nats::Client, tenant: &str, position: u64) -> bool {
    let js = async_nats::jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client.clone());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Keyplan-Position", position.to_string().as_str());
    headers.insert("Keyplan-Event-Type", "InteractionLogged");
    let published = js
        .publish_with_headers(
            format!("keyplan.{tenant}.account-0.InteractionLogged"),
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
            format!("keyplan.{tenant}.account-0.Forged"),
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
            !forge(&connect(&url, user).await, TENANT, before + 1).await,
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

    // The projections node raises compliance alerts with its user: a rule set 60 days ago
    // (every 30 days) and never met lands in KEYPLAN_ALERTS.
    let days_ago = |days: i64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Some(prost_types::Timestamp {
            seconds: now - days * 86_400,
            nanos: 0,
        })
    };
    let rule = Kind::SetEngagementRule(pb::EngagementRuleSet {
        rule_id: "r-late".into(),
        target: Some(pb::RuleTarget {
            target: Some(pb::rule_target::Target::StakeholderId("cfo".into())),
        }),
        owner: "dana.kim".into(),
        cadence_days: 30,
        channels: vec![pb::Channel::InPerson as i32],
        opportunity_id: String::new(),
    });
    for (version, (kind, days)) in [
        (register("Late Corp"), 90),
        (
            assign("dana.kim", "Dana Kim", pb::TeamRole::KeyAccountManager),
            90,
        ),
        (
            stakeholder("cfo", "Lee Park", pb::BuyingRole::EconomicBuyer),
            90,
        ),
        (rule, 60),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = match version {
            0 => no_stream(request("late", kind)),
            v => exact(request("late", kind), v as u64),
        };
        r.occurred_at = days_ago(days);
        ingest.commands().execute(r).await.unwrap();
    }
    let js = async_nats::jetstream::new(connect(&url, INGEST).await);
    let late_rule_alerted = || async {
        let Ok(mut alerts) = js.get_stream("KEYPLAN_ALERTS").await else {
            return false;
        };
        let last = alerts.info().await.unwrap().state.last_sequence;
        for sequence in 1..=last {
            let message = alerts.get_raw_message(sequence).await.unwrap();
            let alert =
                <pb::ComplianceAlert as prost::Message>::decode(message.payload.as_ref()).unwrap();
            if alert.rule_id == "r-late" && alert.account_id == "late" {
                return true;
            }
        }
        false
    };
    let mut alerted = false;
    for _ in 0..200 {
        alerted = late_rule_alerted().await;
        if alerted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(alerted, "the projections node published the rule's alert");
}

/// The tenant user's client, as a tenant's integration must connect: with its own inbox prefix.
/// Every error the server sends it (permissions violations) goes to the returned channel.
async fn connect_tenant(url: &str) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(
        TENANT_USER.0.into(),
        TENANT_USER.1.into(),
    )
    .custom_inbox_prefix(TENANT_A_INBOX)
    .event_callback(move |event| {
        let tx = tx.clone();
        async move {
            if let async_nats::Event::ServerError(error) = event {
                let _ = tx.send(error.to_string());
            }
        }
    })
    .connect(url)
    .await
    .unwrap();
    (client, rx)
}

/// The server errors a client has been sent, and a way to wait for one.
struct ServerErrors {
    rx: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl ServerErrors {
    /// Waits until the server has reported a permissions violation for `what` ("Publish" or
    /// "Subscription") on exactly `subject`.
    async fn refused(&mut self, what: &str, subject: &str) {
        let needle = format!("permissions violation for {what} to \"{subject}\"").to_lowercase();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if self.seen.iter().any(|e| e.to_lowercase().contains(&needle)) {
                return;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(error)) => self.seen.push(error),
                _ => panic!(
                    "no permissions violation for {what} to {subject:?}; server errors: {:?}",
                    self.seen
                ),
            }
        }
    }

    /// The errors not looked at yet.
    fn new_ones(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(error) = self.rx.try_recv() {
            self.seen.push(error.clone());
            out.push(error);
        }
        out
    }
}

/// Every message of the KEYPLAN stream as (sequence, subject), read as the ingest user, once
/// the stream holds `head` messages.
async fn stream_subjects(url: &str, head: u64) -> Vec<(u64, String)> {
    let js = async_nats::jetstream::new(connect(url, INGEST).await);
    let mut stream = js.get_stream("KEYPLAN").await.unwrap();
    for _ in 0..400 {
        if stream.info().await.unwrap().state.last_sequence >= head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(stream.info().await.unwrap().state.last_sequence, head);
    let mut out = Vec::new();
    for sequence in 1..=head {
        let message = stream.get_raw_message(sequence).await.unwrap();
        out.push((sequence, message.subject.to_string()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_user_reads_its_own_tenant_only_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let nats = start_nats(&dir.path().join("nats")).await;
    let url = nats.url();
    let ingest = Server::start_with(
        &dir.path().join("ingest"),
        &[
            "--role",
            "ingest",
            "--nats-url",
            url.as_str(),
            "--nats-user",
            INGEST.0,
            "--nats-password",
            INGEST.1,
        ],
    )
    .await;
    let (tenant, errors) = connect_tenant(&url).await;
    let mut errors = ServerErrors {
        rx: errors,
        seen: Vec::new(),
    };

    // Live feed: a subscription on A's subjects is allowed; one on all of Keyplan's subjects,
    // on every tenant's or on B's is refused by the server.
    let mut live = tenant
        .subscribe(format!("keyplan.{TENANT_A}.>"))
        .await
        .unwrap();
    let mut refused_subscriptions = Vec::new();
    for subject in [
        "keyplan.>".to_owned(),
        "keyplan.*.>".to_owned(),
        format!("keyplan.{TENANT_B}.>"),
        ">".to_owned(),
        "_INBOX.>".to_owned(),
    ] {
        refused_subscriptions.push((
            subject.clone(),
            tenant.subscribe(subject.clone()).await.unwrap(),
        ));
        errors.refused("Subscription", &subject).await;
    }
    tenant.flush().await.unwrap();

    // Events of both tenants, interleaved on the stream: A 1-5, B 6-10, A 11.
    onboard_in(&ingest, TENANT_A, "globex").await;
    onboard_in(&ingest, TENANT_B, "initech").await;
    let mut call = request("globex", interaction("call-1", "cfo", 1));
    call.tenant = TENANT_A.into();
    ingest.commands().execute(call).await.unwrap();
    let head = status(&ingest).await.head_position;
    let all = stream_subjects(&url, head).await;
    let of = |tenant: &str| -> Vec<(u64, String)> {
        let prefix = format!("keyplan.{tenant}.");
        all.iter()
            .filter(|(_, subject)| subject.starts_with(&prefix))
            .cloned()
            .collect()
    };
    let (a, b) = (of(TENANT_A), of(TENANT_B));
    assert_eq!((a.len(), b.len(), all.len()), (6, 5, 11), "{all:?}");

    // The live subscription gets A's events, in order, and nothing else.
    let mut received = Vec::new();
    while received.len() < a.len() {
        let message = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("A's events arrive on the live subscription")
            .unwrap();
        received.push(message.subject.to_string());
    }
    let a_subjects: Vec<String> = a.iter().map(|(_, subject)| subject.clone()).collect();
    assert_eq!(received, a_subjects);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), live.next())
            .await
            .is_err(),
        "the live subscription got more than A's events"
    );
    for (subject, subscription) in &mut refused_subscriptions {
        if let Ok(message) =
            tokio::time::timeout(Duration::from_millis(100), subscription.next()).await
        {
            panic!("the refused subscription on {subject} received {message:?}");
        }
    }

    // Replay from JetStream through the tenant's consumer: all of A's events from the start,
    // acknowledged one by one, and nothing of B's.
    let js = async_nats::jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(tenant.clone());
    let a_filter = format!("keyplan.{TENANT_A}.>");
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .create_consumer_on_stream(
            pull::Config {
                name: Some(TENANT_A_CONSUMER.into()),
                filter_subject: a_filter.clone(),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
            "KEYPLAN",
        )
        .await
        .unwrap();
    let mut replayed = Vec::new();
    let mut messages = consumer.fetch().max_messages(100).messages().await.unwrap();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        replayed.push((
            message.info().unwrap().stream_sequence,
            message.subject.to_string(),
        ));
        message.double_ack().await.unwrap();
    }
    assert_eq!(replayed, a);
    let info = consumer.info().await.unwrap();
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0));
    js.delete_consumer_from_stream(TENANT_A_CONSUMER, "KEYPLAN")
        .await
        .unwrap();
    assert_eq!(
        errors.new_ones(),
        Vec::<String>::new(),
        "what the tenant user may do raised no violation"
    );

    // No consumer of another name, unfiltered, or filtered to anything but A: the client's
    // requests for them are refused by the server's permissions.
    let denied_js = async_nats::jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_millis(500))
        .build(tenant.clone());
    let b_filter = format!("keyplan.{TENANT_B}.>");
    for (name, filter) in [
        (Some(TENANT_A_CONSUMER), "keyplan.>"),
        (Some(TENANT_A_CONSUMER), b_filter.as_str()),
        (Some(TENANT_A_CONSUMER), ""),
        (Some("integration-b"), a_filter.as_str()),
        (None, a_filter.as_str()),
    ] {
        let config = pull::Config {
            name: name.map(Into::into),
            filter_subject: filter.into(),
            ..Default::default()
        };
        assert!(
            denied_js
                .create_consumer_on_stream(config, "KEYPLAN")
                .await
                .is_err(),
            "consumer {name:?} filtered to {filter:?} was created"
        );
        let subject = match (name, filter) {
            (Some(name), "") => format!("$JS.API.CONSUMER.CREATE.KEYPLAN.{name}"),
            (Some(name), filter) => format!("$JS.API.CONSUMER.CREATE.KEYPLAN.{name}.{filter}"),
            (None, _) => "$JS.API.CONSUMER.CREATE.KEYPLAN".to_owned(),
        };
        errors.refused("Publish", &subject).await;
    }
    // On the one subject it may use, nats-server itself holds the consumer to the filter and
    // the name in the subject, whatever the request's body says.
    let permitted = format!("CONSUMER.CREATE.KEYPLAN.{TENANT_A_CONSUMER}.{a_filter}");
    let mismatch = ErrorCode::CONSUMER_CREATE_FILTER_SUBJECT_MISMATCH;
    for (config, refusal) in [
        (
            serde_json::json!({"name": TENANT_A_CONSUMER, "filter_subject": "keyplan.>"}),
            mismatch,
        ),
        (
            serde_json::json!({"name": TENANT_A_CONSUMER, "filter_subject": b_filter}),
            mismatch,
        ),
        (serde_json::json!({"name": TENANT_A_CONSUMER}), mismatch),
        (
            serde_json::json!({"durable_name": "integration-b", "filter_subject": a_filter}),
            ErrorCode::CONSUMER_DURABLE_NAME_NOT_MATCH_SUBJECT,
        ),
        // A push consumer delivering onto the stream's own subjects (a loop, and a way to
        // publish there) is refused too.
        (
            serde_json::json!({
                "name": TENANT_A_CONSUMER,
                "filter_subject": a_filter,
                "deliver_subject": format!("keyplan.{TENANT_A}.loop.Forged"),
            }),
            ErrorCode::CONSUMER_DELIVER_CYCLE,
        ),
    ] {
        let mut config = config;
        config["deliver_policy"] = "all".into();
        config["ack_policy"] = "explicit".into();
        let response: Response<serde_json::Value> = js
            .request(
                permitted.clone(),
                &serde_json::json!({"stream_name": "KEYPLAN", "config": config}),
            )
            .await
            .unwrap();
        match response {
            Response::Err { error } => assert_eq!(error.error_code(), refusal, "{config}: {error}"),
            Response::Ok(info) => panic!("nats-server accepted {config} on {permitted}: {info}"),
        }
    }

    // Another consumer (here one filtered to B, as an operator's integration for B would
    // have): the tenant user can neither pull from it nor look at it.
    let admin = async_nats::jetstream::new(connect(&url, INGEST).await);
    let mut b_consumer: async_nats::jetstream::consumer::PullConsumer = admin
        .create_consumer_on_stream(
            pull::Config {
                durable_name: Some("integration-b".into()),
                filter_subject: b_filter.clone(),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
            "KEYPLAN",
        )
        .await
        .unwrap();
    let inbox = format!("{TENANT_A_INBOX}.pull");
    let mut pulled = tenant.subscribe(inbox.clone()).await.unwrap();
    tenant
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.KEYPLAN.integration-b",
            inbox,
            r#"{"batch": 10, "no_wait": true}"#.into(),
        )
        .await
        .unwrap();
    tenant.flush().await.unwrap();
    errors
        .refused("Publish", "$JS.API.CONSUMER.MSG.NEXT.KEYPLAN.integration-b")
        .await;
    if let Ok(message) = tokio::time::timeout(Duration::from_millis(500), pulled.next()).await {
        panic!("the tenant user pulled from B's consumer: {message:?}");
    }
    let info = b_consumer.info().await.unwrap();
    assert_eq!(
        (info.delivered.stream_sequence, info.num_pending),
        (0, 5),
        "B's consumer delivered nothing"
    );
    assert!(denied_js
        .request::<_, _, Response<serde_json::Value>>(
            "CONSUMER.INFO.KEYPLAN.integration-b",
            &serde_json::json!({})
        )
        .await
        .is_err());
    errors
        .refused("Publish", "$JS.API.CONSUMER.INFO.KEYPLAN.integration-b")
        .await;
    // None of the refused requests left a consumer of the tenant's name behind.
    assert!(
        admin
            .get_consumer_from_stream::<pull::Config, _, _>(TENANT_A_CONSUMER, "KEYPLAN")
            .await
            .is_err(),
        "consumer {TENANT_A_CONSUMER} exists"
    );

    // Single messages: a B message the trusted all-tenant reader can fetch (the requests are
    // valid), the tenant user cannot, by direct get, by last-for-subject, by msg get; nor the
    // stream's info (its per-subject counts would name B's accounts).
    let (b_sequence, b_subject) = b[0].clone();
    let reader = async_nats::jetstream::new(connect(&url, READER).await)
        .get_stream_no_info("KEYPLAN")
        .await
        .unwrap();
    assert_eq!(
        reader
            .direct_get(b_sequence)
            .await
            .unwrap()
            .subject
            .as_str(),
        b_subject
    );
    assert_eq!(
        reader
            .get_raw_message(b_sequence)
            .await
            .unwrap()
            .subject
            .as_str(),
        b_subject
    );
    let stream = denied_js.get_stream_no_info("KEYPLAN").await.unwrap();
    assert!(stream.direct_get(b_sequence).await.is_err());
    errors
        .refused("Publish", "$JS.API.DIRECT.GET.KEYPLAN")
        .await;
    assert!(stream
        .direct_get_last_for_subject(b_subject.clone())
        .await
        .is_err());
    errors
        .refused(
            "Publish",
            &format!("$JS.API.DIRECT.GET.KEYPLAN.{b_subject}"),
        )
        .await;
    assert!(stream.get_raw_message(b_sequence).await.is_err());
    errors
        .refused("Publish", "$JS.API.STREAM.MSG.GET.KEYPLAN")
        .await;
    assert!(denied_js.get_stream("KEYPLAN").await.is_err());
    errors
        .refused("Publish", "$JS.API.STREAM.INFO.KEYPLAN")
        .await;

    // Publishing, core or JetStream, on its own tenant's subjects or another's: refused, and
    // the stream does not grow.
    let before = last_sequence(&url).await;
    for tenant_id in [TENANT_A, TENANT_B] {
        assert!(
            !forge(&tenant, tenant_id, before + 1).await,
            "the tenant user stored a message on {tenant_id}'s subjects"
        );
        errors
            .refused(
                "Publish",
                &format!("keyplan.{tenant_id}.account-0.InteractionLogged"),
            )
            .await;
        errors
            .refused("Publish", &format!("keyplan.{tenant_id}.account-0.Forged"))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(last_sequence(&url).await, before, "the stream did not grow");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), live.next())
            .await
            .is_err(),
        "a forged message reached the live feed"
    );
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
