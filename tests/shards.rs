//! Tenants sharded over two ingest nodes on a 3-node JetStream cluster running the shipped
//! `deploy/nats/cluster/nats-sharded.conf` (each node as its user there; R3 streams, replicated
//! acks), with two projections replicas that follow both shards (one started with
//! `--shard all`, one with `--shard s1,s2`) and a third that follows s1 only, all five nodes
//! started with one shard map:
//! - commands for several tenants, sent concurrently through every node with tokens that name
//!   the tenant, land on their tenant's shard only, answered with `keyplan-shard`;
//! - every acknowledged event is in its shard's stream exactly once (sequence == position per
//!   shard), and no event is in the other shard's stream, also across the kill -9 of shard
//!   s1's stream leader under load and then a partition (SIGSTOP) of shard s2's, during each
//!   of which both shards' appends go on being acknowledged (two of three NATS nodes), and
//!   their healing;
//! - each replica follows each of its shards to the head, with a checkpoint per shard, and
//!   keeps each shard's read models in their own database; a new replica of both shards
//!   seeded from a running one (`keyplan projections seed`) starts from each shard's
//!   snapshot and reaches both heads;
//! - read-your-writes holds through any node, and every node answers the same (both
//!   two-shard replicas serve every tenant themselves); a server stream (Watch) through a
//!   node of the other shard streams the tenant's events;
//! - with a two-shard replica killed -9, reads of both shards' tenants through every node go
//!   to the others; restarted, it catches up on both shards from its checkpoints and answers
//!   the same;
//! - an admin reads each shard's whole log (`ReadAll`, `Subscribe`) through any node by
//!   naming the shard (`keyplan-shard`), the same through each;
//! - a forwarded call from a node with another map, a read token of another shard, and nodes
//!   whose configuration disagrees with the map are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::fixtures::*;
use common::nats::{free_port, raw_message, NatsCluster};
use common::Server;
use keyplan_auth::mint::{mint_hs256, TokenRequest};
use keyplan_auth::Role;
use keyplan_cluster::ShardMap;
use keyplan_proto::pb;
use keyplan_proto::pb::account_service_client::AccountServiceClient;
use keyplan_proto::pb::command_service_client::CommandServiceClient;
use keyplan_proto::pb::event_store_service_client::EventStoreServiceClient;
use keyplan_proto::pb::timeline_service_client::TimelineServiceClient;
use tonic::Request;

/// The shards' streams and subject prefixes.
const SHARDS: [(&str, &str, &str); 2] = [
    ("s1", "KEYPLAN_S1", "keyplan-s1"),
    ("s2", "KEYPLAN_S2", "keyplan-s2"),
];

/// Tenants of the test: `acme` is assigned to s2 in the map, the others go by hash.
const TENANTS: [&str; 7] = ["acme", "t-0", "t-1", "t-2", "t-3", "t-4", "t-5"];

struct Sharded {
    cluster: NatsCluster,
    map: ShardMap,
    map_file: PathBuf,
    secret: PathBuf,
    dir: PathBuf,
    /// s1 ingest, s2 ingest, then the replicas of [`REPLICAS`].
    ports: [u16; 5],
    nodes: Vec<Server>,
}

/// The replicas (nodes 2, 3 and 4): their `--shard`, and the shards (indexes in [`SHARDS`])
/// they follow.
const REPLICAS: [(&str, &[usize]); 3] = [("all", &[0, 1]), ("s2,s1", &[0, 1]), ("s1", &[0])];

/// `keyplan serve` arguments of shard `i`'s ingest node.
fn ingest_args(s: &Sharded, i: usize) -> Vec<String> {
    node_args_on(s, SHARDS[i].0, false, s.ports[i])
}

/// `keyplan serve` arguments of replica `r` of [`REPLICAS`] (node `2 + r`).
fn replica_args(s: &Sharded, r: usize) -> Vec<String> {
    node_args_on(s, REPLICAS[r].0, true, s.ports[2 + r])
}

/// The arguments of a node of `shards` (`--shard`) listening on `port`. A node of one shard
/// gets its stream and subject prefix; one of several reads them from the map.
fn node_args_on(s: &Sharded, shards: &str, replica: bool, port: u16) -> Vec<String> {
    let user = if replica {
        "keyplan-projections"
    } else {
        "keyplan-ingest"
    };
    let mut args: Vec<String> = [
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--role",
        if replica { "projections" } else { "ingest" },
        "--nats-url",
        &s.cluster.urls(),
        "--nats-replicas",
        "3",
        "--shard-map",
        s.map_file.to_str().unwrap(),
        "--shard",
        shards,
        "--nats-user",
        user,
        "--nats-password",
        NatsCluster::password(user),
        "--auth-hs256-secret-file",
        s.secret.to_str().unwrap(),
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    if let Some((_, stream, prefix)) = SHARDS.iter().find(|(id, _, _)| *id == shards) {
        args.extend(["--nats-stream", stream, "--nats-subject-prefix", prefix].map(String::from));
    }
    if !replica {
        args.extend(["--ack", "replicated", "--ack-timeout-ms", "10000"].map(String::from));
    }
    args
}

async fn start(s: &Sharded, name: &str, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(&s.dir.join(name), &args).await
}

/// The cluster: NATS, the map, and the four nodes.
async fn sharded(dir: &Path) -> Sharded {
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats/cluster/nats-sharded.conf");
    let cluster = NatsCluster::start_with_config(&dir.join("nats"), config).await;
    let ports = [
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    ];
    // Each shard lists the replicas that follow it.
    let replicas_of = |shard: usize| -> String {
        REPLICAS
            .iter()
            .enumerate()
            .filter(|(_, (_, follows))| follows.contains(&shard))
            .map(|(r, _)| format!("\"http://127.0.0.1:{}\"", ports[2 + r]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let map_text = format!(
        "[[shards]]\nid = \"s1\"\ningest = \"http://127.0.0.1:{}\"\n\
         replicas = [{}]\nstream = \"KEYPLAN_S1\"\nsubject_prefix = \"keyplan-s1\"\n\n\
         [[shards]]\nid = \"s2\"\ningest = \"http://127.0.0.1:{}\"\nreplicas = [{}]\n\
         stream = \"KEYPLAN_S2\"\nsubject_prefix = \"keyplan-s2\"\n\n[tenants]\nacme = \"s2\"\n",
        ports[0],
        replicas_of(0),
        ports[1],
        replicas_of(1)
    );
    let map_file = dir.join("shards.toml");
    std::fs::write(&map_file, &map_text).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "a test secret of at least 32 bytes, for HS256").unwrap();
    let mut s = Sharded {
        cluster,
        map: ShardMap::parse(&map_text).unwrap(),
        map_file,
        secret,
        dir: dir.to_owned(),
        ports,
        nodes: Vec::new(),
    };
    for (i, name) in ["s1-ingest", "s2-ingest"].iter().enumerate() {
        let node = start(&s, name, &ingest_args(&s, i)).await;
        s.nodes.push(node);
    }
    for r in 0..REPLICAS.len() {
        let node = start(&s, &format!("replica-{r}"), &replica_args(&s, r)).await;
        s.nodes.push(node);
    }
    s
}

/// Every replica has followed each of its shards to the head.
async fn replicas_followed(s: &Sharded) {
    for (r, (_, follows)) in REPLICAS.iter().enumerate() {
        for &shard in *follows {
            wait_followed(s, 2 + r, shard).await;
        }
    }
}

/// A token of a rep and manager of `tenant`.
fn token(s: &Sharded, tenant: &str) -> String {
    mint_hs256(
        &s.secret,
        &TokenRequest {
            subject: "dana.kim".into(),
            tenant: Some(tenant.into()),
            roles: vec![Role::Rep, Role::Manager],
            ttl: Duration::from_secs(3600),
            issuer: None,
            audience: None,
        },
    )
    .unwrap()
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A command for the token's tenant: tenant and actor left empty, for the token to fill in.
fn command(account: &str, kind: pb::command::Kind) -> pb::ExecuteRequest {
    let mut r = request(account, kind);
    r.tenant.clear();
    r.actor.clear();
    r
}

fn shard_of<T>(response: &tonic::Response<T>) -> String {
    response
        .metadata()
        .get("keyplan-shard")
        .expect("every routed answer says its shard")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Event ids acknowledged per tenant.
#[derive(Default)]
struct Acknowledged {
    ids: tokio::sync::Mutex<BTreeMap<String, Vec<String>>>,
    refused: std::sync::atomic::AtomicUsize,
}

/// One writer per (tenant, node) logging interactions until `stop`; every answer's shard is
/// checked against the map.
fn drive(
    s: &Sharded,
    acknowledged: &Arc<Acknowledged>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut writers = Vec::new();
    for tenant in TENANTS {
        for (n, node) in s.nodes.iter().enumerate() {
            let mut commands = CommandServiceClient::new(node.channel());
            let token = token(s, tenant);
            let owner = s.map.owner(tenant).id.clone();
            let acknowledged = acknowledged.clone();
            let stop = stop.clone();
            let tenant = tenant.to_owned();
            writers.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let call = format!("call-{n}-{i}");
                    let r = command("account-1", interaction(&call, "cfo", i64::from(i)));
                    match commands.execute(authorized(r, &token)).await {
                        Ok(answer) => {
                            assert_eq!(shard_of(&answer), owner, "{tenant} served by its shard");
                            acknowledged
                                .ids
                                .lock()
                                .await
                                .entry(tenant.clone())
                                .or_default()
                                .extend(answer.into_inner().event_ids);
                        }
                        Err(_) => {
                            acknowledged.refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }));
        }
    }
    writers
}

/// Waits until each shard has 30 more commands acknowledged (at most 30 s: an election of a
/// stream's leader comes first if the leader went).
async fn go_on(s: &Sharded, acknowledged: &Acknowledged, what: &str) {
    let per_shard = |ids: &BTreeMap<String, Vec<String>>, shard: &str| -> usize {
        ids.iter()
            .filter(|(t, _)| s.map.owner(t).id == shard)
            .map(|(_, ids)| ids.len())
            .sum()
    };
    let before: Vec<usize> = {
        let ids = acknowledged.ids.lock().await;
        ["s1", "s2"].iter().map(|sh| per_shard(&ids, sh)).collect()
    };
    for _ in 0..600 {
        {
            let ids = acknowledged.ids.lock().await;
            if ["s1", "s2"]
                .iter()
                .zip(&before)
                .all(|(sh, b)| per_shard(&ids, sh) >= b + 30)
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: each shard's appends are acknowledged within 30 s (from {before:?})");
}

/// A shard's stream as (sequence, tenant from the subject, event id).
async fn stream_messages(
    cluster: &NatsCluster,
    stream: &str,
    prefix: &str,
) -> Vec<(u64, String, String)> {
    let js = async_nats::jetstream::new(cluster.client("keyplan-ingest").await.unwrap());
    let mut stream = js.get_stream(stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for sequence in 1..=last {
        let message = raw_message(&stream, sequence).await;
        let subject = message.subject.to_string();
        let rest = subject
            .strip_prefix(&format!("{prefix}."))
            .unwrap_or_else(|| panic!("{subject} is on the shard's subjects"));
        let tenant = rest.split('.').next().unwrap().to_owned();
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push((message.sequence, tenant, id));
    }
    out
}

/// Every acknowledged event is in its tenant's shard's stream exactly once; each stream holds
/// its shard's log, one message per position, and only its shard's tenants.
async fn check_streams(s: &Sharded, acknowledged: &Acknowledged) {
    let mut held: HashMap<String, &str> = HashMap::new();
    let mut streams = Vec::new();
    for (i, (id, stream, prefix)) in SHARDS.iter().enumerate() {
        let log_head = head(s, i).await;
        let mut messages = Vec::new();
        for _ in 0..200 {
            messages = stream_messages(&s.cluster, stream, prefix).await;
            if messages.len() as u64 >= log_head {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            messages.len() as u64,
            log_head,
            "{stream}: one message per position"
        );
        streams.push(messages);
        for (n, (sequence, tenant, event)) in streams[i].iter().enumerate() {
            assert_eq!(*sequence, n as u64 + 1, "{stream}: sequence == position");
            assert_eq!(
                s.map.owner(tenant).id,
                *id,
                "{stream} holds only {id}'s tenants"
            );
            assert!(
                held.insert(event.clone(), id).is_none(),
                "event {event} twice"
            );
        }
    }
    let acknowledged = acknowledged.ids.lock().await;
    let mut per_shard = HashMap::<&str, usize>::new();
    for (tenant, ids) in acknowledged.iter() {
        let owner = s.map.owner(tenant).id.as_str();
        for id in ids {
            assert_eq!(
                held.get(id).copied(),
                Some(owner),
                "{tenant}'s event {id} on {owner}"
            );
        }
        *per_shard.entry(owner).or_default() += ids.len();
    }
    assert!(
        per_shard.len() == 2 && per_shard.values().all(|&n| n > 0),
        "both shards took commands: {per_shard:?}"
    );
}

/// One test at a time: each runs a NATS cluster and four nodes.
static CLUSTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_tenant_lands_on_its_shard_through_any_node_and_reads_follow_it() {
    let _one_at_a_time = CLUSTERS.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = if std::env::var_os("KEEP").is_some() {
        Box::leak(Box::new(dir)).path().to_owned()
    } else {
        dir.path().to_owned()
    };
    let mut s = sharded(&dir).await;
    let owners: HashSet<&str> = TENANTS.iter().map(|t| s.map.owner(t).id.as_str()).collect();
    assert_eq!(owners.len(), 2, "the test's tenants span both shards");
    assert_eq!(
        s.map.owner("acme").id,
        "s2",
        "the explicit assignment holds"
    );

    // Onboard one account per tenant, each through another node.
    let mut onboarded = 0;
    for (t, tenant) in TENANTS.iter().enumerate() {
        let node = &s.nodes[t % 4];
        for kind in [
            register(&format!("{tenant} account")),
            assign("dana.kim", "Dana Kim", pb::TeamRole::KeyAccountManager),
            stakeholder("cfo", "Lee Park", pb::BuyingRole::EconomicBuyer),
        ] {
            // A replicated ack may time out while a new stream elects its leader: retried
            // with the same idempotency key, as the error says, it stores nothing twice.
            let mut keyed = command("account-1", kind);
            keyed.idempotency_key = format!("onboard-{tenant}-{}", keyed_count(&mut onboarded));
            let mut attempt = 0;
            let answer = loop {
                attempt += 1;
                match CommandServiceClient::new(node.channel())
                    .execute(authorized(keyed.clone(), &token(&s, tenant)))
                    .await
                {
                    Ok(answer) => break answer,
                    Err(e) if e.code() == tonic::Code::DeadlineExceeded && attempt < 4 => {}
                    Err(e) => panic!("onboarding {tenant} through node {t}: {e}"),
                }
            };
            assert_eq!(shard_of(&answer), s.map.owner(tenant).id);
        }
    }

    // Concurrent writers for every tenant through every node; s1's stream leader killed -9, then
    // s2's partitioned, on the way.
    let acknowledged = Arc::new(Acknowledged::default());
    let stop = Arc::new(AtomicBool::new(false));
    let writers = drive(&s, &acknowledged, &stop);
    let count = || async {
        acknowledged
            .ids
            .lock()
            .await
            .values()
            .map(Vec::len)
            .sum::<usize>()
    };
    go_on(&s, &acknowledged, "before").await;
    let leader = s
        .cluster
        .stream_leader("keyplan-ingest", "KEYPLAN_S1")
        .await;
    s.cluster.kill(leader).await;
    go_on(&s, &acknowledged, "with KEYPLAN_S1's leader killed").await;
    s.cluster.restart(leader).await;
    go_on(&s, &acknowledged, "healed").await;
    // Then s2's stream leader partitioned (SIGSTOP: its connections stay open, nothing
    // answers) and healed (SIGCONT).
    let leader = s
        .cluster
        .stream_leader("keyplan-ingest", "KEYPLAN_S2")
        .await;
    s.cluster.signal(leader, "STOP");
    go_on(&s, &acknowledged, "with KEYPLAN_S2's leader partitioned").await;
    s.cluster.signal(leader, "CONT");
    go_on(&s, &acknowledged, "partition healed").await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    eprintln!(
        "acknowledged {} events; {} commands not acknowledged",
        count().await,
        acknowledged.refused.load(Ordering::SeqCst)
    );
    check_streams(&s, &acknowledged).await;
    // Each replica follows each of its shards' streams to the head: the ordered consumer of
    // a lost NATS node is recreated within seconds (`keyplan_projection::source::PULL_EXPIRES`),
    // and one that went silent on a peer whose copy of the stream is behind is replaced after
    // `SILENT_AFTER`; the bound is generous for CI's two shared cores.
    replicas_followed(&s).await;
    // A replica of two shards keeps each one's read models apart.
    for shard in ["s1", "s2"] {
        let db = s
            .dir
            .join("replica-0/shards")
            .join(shard)
            .join("read-models");
        assert!(db.is_dir(), "{} holds {shard}'s read models", db.display());
    }
    // A new replica of both shards seeded from that one while it runs: laid out as it is,
    // each shard from its own snapshot, it resumes each from there.
    let seeded = s.dir.join("seeded");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args([
            "projections",
            "seed",
            "--server",
            &s.nodes[2].address,
            "--data-dir",
        ])
        .arg(&seeded)
        .env("KEYPLAN_TOKEN", admin_token(&s))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let logged = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("s1: ") && said.contains("s2: "),
        "{said}{logged}"
    );
    // A command's stderr is for what went wrong, not the stores' routine lines.
    assert!(!logged.contains(" INFO "), "{logged}");
    for shard in ["s1", "s2"] {
        assert!(seeded
            .join("shards")
            .join(shard)
            .join("read-models")
            .is_dir());
    }
    let args = node_args_on(&s, "all", true, free_port());
    let node = start(&s, "seeded", &args).await;
    s.nodes.push(node);
    for shard in [0, 1] {
        wait_followed(&s, 5, shard).await;
    }
    s.nodes.pop().unwrap().stop().await;

    // Read-your-writes through any node: a command through one node, read at its position
    // through each of the others; every node answers the same.
    for tenant in TENANTS {
        let token = token(&s, tenant);
        let answer = CommandServiceClient::new(s.nodes[0].channel())
            .execute(authorized(
                command("account-1", interaction("after", "cfo", 9_999)),
                &token,
            ))
            .await
            .unwrap();
        let shard = shard_of(&answer);
        let written = answer.into_inner();
        let mut answers = Vec::new();
        for node in &s.nodes {
            // Newest first: the write (at business time 9,999 s) leads the page.
            let mut page = timeline_page("account-1", 5, String::new(), written.last_position);
            page.tenant.clear();
            page.order = pb::TimelineOrder::NewestFirst as i32;
            let mut read = authorized(page, &token);
            read.metadata_mut()
                .insert("keyplan-shard", shard.parse().unwrap());
            let timeline = TimelineServiceClient::new(node.channel())
                .list_timeline(read)
                .await
                .unwrap_or_else(|e| panic!("{tenant}'s timeline through {}: {e}", node.address));
            assert_eq!(shard_of(&timeline), shard);
            let entries = timeline.into_inner().entries;
            assert!(
                entries.iter().any(|e| e.event_id == written.event_ids[0]),
                "{tenant}: the write is read back through {}",
                node.address
            );
            let account = AccountServiceClient::new(node.channel())
                .get_account(authorized(
                    pb::GetAccountRequest {
                        tenant: String::new(),
                        account_id: "account-1".into(),
                        min_position: written.last_position,
                        max_interactions: 0,
                    },
                    &token,
                ))
                .await
                .unwrap()
                .into_inner();
            let ids: Vec<String> = entries.iter().map(|e| e.event_id.clone()).collect();
            answers.push((ids, account.version));
        }
        // The replicas follow the stream; the ingest node answers from its log.
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "{tenant}: {answers:?}"
        );
    }

    // An admin reads each shard's whole log through any node, naming the shard; a node of one
    // shard reads its own without the header; a node of several asks for it.
    let admin = admin_token(&s);
    // From position 1, through node `node`, naming `shard` if given.
    let read_all = |node: usize, shard: Option<&str>, max_count: u32| {
        let mut request = authorized(
            pb::ReadAllRequest {
                from_position: 1,
                max_count,
                filter: None,
            },
            &admin,
        );
        if let Some(shard) = shard {
            request
                .metadata_mut()
                .insert("keyplan-shard", shard.parse().unwrap());
        }
        let mut client = EventStoreServiceClient::new(s.nodes[node].channel());
        async move { client.read_all(request).await }
    };
    let mut pages = BTreeMap::<&str, Vec<(u64, String)>>::new();
    for (n, node) in s.nodes.iter().enumerate() {
        for (i, (shard, _, _)) in SHARDS.iter().enumerate() {
            let answer = read_all(n, Some(shard), 50)
                .await
                .unwrap_or_else(|e| panic!("{shard}'s log through {}: {e}", node.address));
            assert_eq!(shard_of(&answer), *shard);
            let answer = answer.into_inner();
            assert_eq!(answer.head_position, head(&s, i).await, "{shard}'s head");
            let page: Vec<(u64, String)> = answer
                .events
                .iter()
                .map(|e| {
                    let m = e.metadata.as_ref().unwrap();
                    assert_eq!(s.map.owner(&m.tenant).id, *shard, "{shard}'s tenants only");
                    (m.global_position, m.event_id.clone())
                })
                .collect();
            let positions: Vec<u64> = page.iter().map(|(p, _)| *p).collect();
            assert_eq!(
                positions,
                (1..=50).collect::<Vec<u64>>(),
                "{shard}'s log in order"
            );
            let first = pages.entry(shard).or_insert_with(|| page.clone());
            assert_eq!(
                *first, page,
                "{shard}'s log is the same through {}",
                node.address
            );
        }
    }
    // The replica of s1 only (node 4) and s2's ingest node: their own shard.
    assert_eq!(shard_of(&read_all(4, None, 1).await.unwrap()), "s1");
    assert_eq!(shard_of(&read_all(1, None, 1).await.unwrap()), "s2");
    failed_precondition(read_all(2, None, 1).await, "keyplan-shard request header");
    let refused = read_all(3, Some("s9"), 1).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    // A subscription to s2's log through a replica is forwarded whole.
    let mut subscribe = authorized(
        pb::SubscribeRequest {
            from_position: 1,
            filter: None,
        },
        &admin,
    );
    subscribe
        .metadata_mut()
        .insert("keyplan-shard", "s2".parse().unwrap());
    let mut subscription = EventStoreServiceClient::new(s.nodes[3].channel())
        .subscribe(subscribe)
        .await
        .unwrap();
    assert_eq!(shard_of(&subscription), "s2");
    let first = subscription.get_mut().message().await.unwrap().unwrap();
    assert_eq!(first.metadata.unwrap().event_id, pages["s2"][0].1);
    drop(subscription);

    // A server stream through a node of the other shard: Watch is forwarded whole, and its
    // events are the tenant's, from its shard's log.
    let tenant = TENANTS.iter().find(|t| s.map.owner(t).id == "s1").unwrap();
    let mut watch = EventStoreServiceClient::new(s.nodes[1].channel())
        .watch(authorized(
            pb::WatchRequest {
                tenant: String::new(),
                account_id: "account-1".into(),
                from_position: 0,
            },
            &token(&s, tenant),
        ))
        .await
        .unwrap();
    assert_eq!(shard_of(&watch), "s1");
    let first = watch.get_mut().message().await.unwrap().unwrap();
    let metadata = first.metadata.unwrap();
    assert_eq!(metadata.tenant, *tenant);
    drop(watch);

    // A read token of the other shard is refused, not compared.
    let mut page = timeline_page("account-1", 10, String::new(), 1);
    page.tenant.clear();
    let mut read = authorized(page, &token(&s, tenant));
    read.metadata_mut()
        .insert("keyplan-shard", "s2".parse().unwrap());
    let refused = TimelineServiceClient::new(s.nodes[1].channel())
        .list_timeline(read)
        .await;
    failed_precondition(refused, "shard s1");

    // A call forwarded by a node with another map is refused, and forwarded no further.
    let mut forged = authorized(
        command("account-1", interaction("forged", "cfo", 1)),
        &token(&s, tenant),
    );
    forged
        .metadata_mut()
        .insert("keyplan-forwarded", "s2".parse().unwrap());
    forged
        .metadata_mut()
        .insert("keyplan-shard-map", "0000000000000000".parse().unwrap());
    let before = head(&s, 0).await;
    let refused = CommandServiceClient::new(s.nodes[0].channel())
        .execute(forged)
        .await;
    failed_precondition(refused, "same --shard-map");
    assert_eq!(head(&s, 0).await, before, "nothing stored");

    // `keyplan cluster status` sees both shards, their heads and the replicas at them.
    replicas_followed(&s).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args(["cluster", "status", "--json", "--shard-map"])
        .arg(&s.map_file)
        .env("KEYPLAN_TOKEN", admin_token(&s))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    let nodes = status["nodes"].as_array().unwrap();
    // A replica of both shards is listed (and asked) under each.
    assert_eq!(nodes.len(), 7, "{text}");
    for shard in ["s1", "s2"] {
        let of = |kind: &str| -> Vec<&serde_json::Value> {
            nodes
                .iter()
                .filter(|n| n["shard"] == shard && n["node"] == kind)
                .collect()
        };
        let ingest = of("ingest")[0];
        let head = ingest["headPosition"].as_u64().unwrap();
        assert!(head > 0, "{text}");
        assert_eq!(ingest["relayLag"], 0, "{text}");
        for replica in of("replica") {
            assert_eq!(replica["followedPosition"].as_u64(), Some(head), "{text}");
        }
        assert!(nodes.iter().all(|n| n["problem"].is_null()), "{text}");
    }

    // A replica of both shards killed -9: reads for either shard's tenants, through every
    // node, go to the others; restarted, it catches up on both shards from its checkpoints
    // and answers the same.
    let killed = s.nodes.remove(2);
    killed.kill().await;
    let mut written = Vec::new();
    for shard in ["s1", "s2"] {
        let tenant = *TENANTS.iter().find(|t| s.map.owner(t).id == shard).unwrap();
        let token = token(&s, tenant);
        let answer = CommandServiceClient::new(s.nodes[1].channel())
            .execute(authorized(
                command("account-1", interaction("while-down", "cfo", 9_998)),
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        written.push((token, answer));
    }
    let read = |node: &Server, (token, written): &(String, pb::ExecuteResponse)| {
        let mut page = timeline_page("account-1", 5, String::new(), written.last_position);
        page.tenant.clear();
        page.order = pb::TimelineOrder::NewestFirst as i32;
        let channel = node.channel();
        let request = authorized(page, token);
        async move {
            TimelineServiceClient::new(channel)
                .list_timeline(request)
                .await
                .map(|r| {
                    r.into_inner()
                        .entries
                        .into_iter()
                        .map(|e| e.event_id)
                        .collect::<Vec<_>>()
                })
        }
    };
    let mut pages = vec![Vec::new(); written.len()];
    for node in &s.nodes {
        for (w, write) in written.iter().enumerate() {
            for _ in 0..2 {
                // Twice per node: the node takes the shard's replicas in turn.
                let page = read(node, write).await.unwrap_or_else(|e| {
                    panic!("a read through {} with a replica down: {e}", node.address)
                });
                assert!(page.contains(&write.1.event_ids[0]), "{page:?}");
                pages[w].push(page);
            }
        }
    }
    let restarted = start(&s, "replica-0", &replica_args(&s, 0)).await;
    s.nodes.insert(2, restarted);
    wait_followed(&s, 2, 0).await;
    wait_followed(&s, 2, 1).await;
    for (w, write) in written.iter().enumerate() {
        pages[w].push(read(&s.nodes[2], write).await.unwrap());
        assert!(pages[w].windows(2).all(|p| p[0] == p[1]), "{pages:?}");
    }

    // Nodes that disagree with the map are refused at start, saying why.
    let mut args = ingest_args(&s, 0);
    let stream = args.iter().position(|a| a == "KEYPLAN_S1").unwrap();
    args[stream] = "KEYPLAN".into();
    args[1] = format!("127.0.0.1:{}", free_port());
    let refused = refused_start(&s.dir.join("wrong-stream"), &args);
    assert!(
        refused.contains("was given --nats-stream")
            && refused.contains("KEYPLAN_NATS_STREAM=KEYPLAN_S1"),
        "{refused}"
    );
    let mut args = node_args_on(&s, "s1,s2", false, free_port());
    let refused = refused_start(&s.dir.join("ingest-of-two"), &args);
    assert!(
        refused.contains("only a projections node follows several"),
        "{refused}"
    );
    args = node_args_on(&s, "all", true, free_port());
    args.extend(["--nats-stream", "KEYPLAN_S3"].map(String::from));
    let refused = refused_start(&s.dir.join("replica-of-all"), &args);
    assert!(refused.contains("leave both unset"), "{refused}");
    // s1's log, started as shard s2: it holds s1's tenants.
    let s1 = s.nodes.remove(0);
    s1.stop().await;
    let mut args = ingest_args(&s, 1);
    args[1] = format!("127.0.0.1:{}", free_port());
    let refused = refused_start(&s.dir.join("s1-ingest"), &args);
    assert!(refused.contains("its log holds"), "{refused}");
}

fn keyed_count(n: &mut usize) -> usize {
    *n += 1;
    *n
}

/// The log head of node `i` (an ingest node), asked with an admin token.
async fn head(s: &Sharded, i: usize) -> u64 {
    status(s, i).await.head_position
}

/// Node `i`'s status, asked with an admin token.
async fn status(s: &Sharded, i: usize) -> pb::NodeStatus {
    keyplan_proto::pb::operations_service_client::OperationsServiceClient::new(s.nodes[i].channel())
        .get_status(authorized(pb::GetStatusRequest {}, &admin_token(s)))
        .await
        .unwrap()
        .into_inner()
}

/// Waits until replica `replica` has followed shard `shard`'s ingest node to its head (at
/// most 60 s), saying how long it took.
async fn wait_followed(s: &Sharded, replica: usize, shard: usize) {
    let head = head(s, shard).await;
    let started = std::time::Instant::now();
    loop {
        let followed = followed(s, replica, shard).await;
        if followed >= head {
            eprintln!(
                "{} at the head of shard {} after {:?}",
                s.nodes[replica].address,
                shard + 1,
                started.elapsed()
            );
            return;
        }
        if started.elapsed() >= Duration::from_secs(60) {
            // The test's directory is gone once it fails: say what the replica reports.
            let projections: Vec<String> = status(s, replica)
                .await
                .projections
                .iter()
                .map(|p| {
                    format!(
                        "{}@{}: {} {} {}",
                        p.name, p.shard, p.position, p.state, p.stopped_reason
                    )
                })
                .collect();
            panic!(
                "replica {} is at {followed} of shard {}'s {head} after 60 s; its projections: \
                 {projections:#?}\nits log ends:\n{}",
                s.nodes[replica].address,
                shard + 1,
                s.nodes[replica].log_tail(40)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How far node `i` (a replica) has followed shard `shard`: the lowest position of its
/// projections of that shard (each has its own checkpoint per shard).
async fn followed(s: &Sharded, i: usize, shard: usize) -> u64 {
    status(s, i)
        .await
        .projections
        .iter()
        .filter(|p| p.shard == SHARDS[shard].0)
        .map(|p| p.position)
        .min()
        .unwrap_or(0)
}

/// `answer` is a FAILED_PRECONDITION whose message says `saying`.
fn failed_precondition<T: std::fmt::Debug>(answer: Result<T, tonic::Status>, saying: &str) {
    let refused = answer.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message().contains(saying), "{}", refused.message());
}

/// An admin token (no tenant), for the cluster's status.
fn admin_token(s: &Sharded) -> String {
    mint_hs256(
        &s.secret,
        &TokenRequest {
            subject: "ops".into(),
            tenant: None,
            roles: vec![Role::Admin],
            ttl: Duration::from_secs(600),
            issuer: None,
            audience: None,
        },
    )
    .unwrap()
}

/// Runs `keyplan serve` with `args` over `data_dir`, which must exit non-zero; its stderr.
fn refused_start(data_dir: &Path, args: &[String]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the node refused to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
