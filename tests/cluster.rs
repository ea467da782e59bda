//! Keyplan on a 3-node JetStream cluster (the shipped `deploy/nats/cluster/nats-cluster.conf`):
//! with R3 streams and `--ack replicated`, losing one NATS node (kill -9, or a pause standing
//! for a partition) loses and duplicates nothing, appends keep being acknowledged while two of
//! three nodes are up, and a projections node follows throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::fixtures::*;
use common::nats::NatsCluster;
use common::{head, Server};
use keyplan_proto::pb;
use tokio::sync::Mutex;

/// `keyplan serve` arguments for a node of `role` on the cluster, as `user`.
fn node_args(cluster: &NatsCluster, role: &str, user: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "--role",
        role,
        "--nats-url",
        &cluster.urls(),
        "--nats-user",
        user,
        "--nats-password",
        NatsCluster::password(user),
        "--nats-replicas",
        "3",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if role == "ingest" {
        args.extend(["--ack", "replicated", "--ack-timeout-ms", "10000"].map(String::from));
    }
    args
}

async fn start(dir: &std::path::Path, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(dir, &args).await
}

/// Event ids of commands acknowledged (OK) by the ingest node.
#[derive(Default)]
struct Acknowledged {
    event_ids: Mutex<Vec<String>>,
    refused: std::sync::atomic::AtomicUsize,
}

/// Writers logging interactions on their own accounts until `stop`, recording what was
/// acknowledged; an answer that is not OK (e.g. a replicated ack that timed out during an
/// election) is counted, not retried.
fn drive(
    node: &Server,
    writers: usize,
    acknowledged: Arc<Acknowledged>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..writers)
        .map(|w| {
            let mut commands = node.commands();
            let acknowledged = acknowledged.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let account = format!("account-{w}");
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let r = request(
                        &account,
                        interaction(&format!("call-{n}"), "cfo", i64::from(n)),
                    );
                    match commands.execute(r).await {
                        Ok(answer) => acknowledged
                            .event_ids
                            .lock()
                            .await
                            .extend(answer.into_inner().event_ids),
                        Err(_) => {
                            acknowledged.refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect()
}

/// Every acknowledged event is in the stream once, and the stream holds exactly the log: one
/// message per position, sequence == position, no id twice.
async fn check_stream(cluster: &NatsCluster, ingest: &Server, acknowledged: &Acknowledged) {
    let log_head = head(ingest).await;
    // Replicated acks: the relay has published everything acknowledged; what a timed-out
    // command wrote follows shortly.
    let mut stream = Vec::new();
    for _ in 0..200 {
        stream = cluster.stream_ids("keyplan-ingest", "KEYPLAN").await;
        if stream.len() as u64 >= log_head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stream.len() as u64, log_head, "one message per position");
    for (i, (sequence, _)) in stream.iter().enumerate() {
        assert_eq!(*sequence, i as u64 + 1);
    }
    let ids: HashSet<&String> = stream.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), stream.len(), "no event id twice");
    let acknowledged = acknowledged.event_ids.lock().await;
    for id in acknowledged.iter() {
        assert!(ids.contains(id), "acknowledged event {id} is in the stream");
    }
}

/// What the test does to one NATS node, and how it heals it.
#[derive(Clone, Copy)]
enum Loss {
    /// kill -9 the stream's leader (an election follows), then restart it.
    KillTheLeader,
    /// SIGSTOP the node the ingest node is connected to (a partition: the TCP connection stays
    /// open, nothing answers), then SIGCONT.
    PauseTheIngestNodesServer,
}

/// A 3-node cluster and an ingest node on it with three onboarded accounts, `account-0..3`.
async fn cluster_with_ingest(dir: &std::path::Path) -> (NatsCluster, Server) {
    let cluster = NatsCluster::start(&dir.join("nats")).await;
    let ingest = start(
        &dir.join("ingest"),
        &node_args(&cluster, "ingest", "keyplan-ingest"),
    )
    .await;
    for w in 0..3 {
        onboard(&ingest, &format!("account-{w}")).await;
    }
    (cluster, ingest)
}

/// Each test runs three nats-servers and two or three nodes: on CI's two cores, side by side
/// they starved each other (a projections node took over 20 s to follow a new stream leader),
/// so they run one at a time.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Waits until every projection of `node` has applied `position`; a new stream leader and a
/// restarted replica take a while to follow on a loaded machine, so this waits up to 60 s.
async fn projected(node: &Server, position: u64) {
    for _ in 0..600 {
        let status = common::status(node).await;
        if !status.projections.is_empty()
            && status.projections.iter().all(|p| p.position >= position)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the projections did not reach position {position} within 60 s");
}

async fn run_with_one_node_lost(loss: Loss) {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, ingest) = cluster_with_ingest(dir.path()).await;
    let projections = start(
        &dir.path().join("projections"),
        &node_args(&cluster, "projections", "keyplan-projections"),
    )
    .await;

    let acknowledged = Arc::new(Acknowledged::default());
    let stop = Arc::new(AtomicBool::new(false));
    let writers = drive(&ingest, 3, acknowledged.clone(), stop.clone());
    let count = || async { acknowledged.event_ids.lock().await.len() };
    while count().await < 30 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let lost = match loss {
        Loss::KillTheLeader => {
            let leader = cluster.stream_leader("keyplan-ingest", "KEYPLAN").await;
            cluster.kill(leader).await;
            leader
        }
        Loss::PauseTheIngestNodesServer => {
            let serving = cluster.node_serving("keyplan-ingest").await;
            cluster.signal(serving, "STOP");
            serving
        }
    };
    // Two of three nodes keep the R3 stream writable (after an election if the leader went):
    // replicated acknowledgements go on.
    let before = count().await;
    let mut went_on = false;
    for _ in 0..600 {
        if count().await >= before + 30 {
            went_on = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        went_on,
        "appends are acknowledged with one NATS node down ({} before, {} after 30 s)",
        before,
        count().await
    );

    match loss {
        Loss::KillTheLeader => cluster.restart(lost).await,
        Loss::PauseTheIngestNodesServer => cluster.signal(lost, "CONT"),
    }
    let healed = count().await;
    while count().await < healed + 30 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }

    eprintln!(
        "acknowledged {} events ({} before the loss, {} before healing); {} commands not acknowledged",
        count().await,
        before,
        healed,
        acknowledged.refused.load(Ordering::SeqCst)
    );
    let replicas = cluster.stream_replicas("keyplan-ingest", "KEYPLAN").await;
    assert_eq!(replicas, 3, "an R3 stream");
    check_stream(&cluster, &ingest, &acknowledged).await;
    projected(&projections, head(&ingest).await).await;
    let status = common::status(&ingest).await;
    assert!(
        status.relay.as_ref().is_some_and(|r| r.lag_positions == 0),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_leader_killed_under_load_loses_and_duplicates_nothing() {
    run_with_one_node_lost(Loss::KillTheLeader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_nodes_nats_server_cut_off_and_healed_loses_and_duplicates_nothing() {
    run_with_one_node_lost(Loss::PauseTheIngestNodesServer).await;
}

/// Each account as a projections node answers at `position` (read-your-writes).
async fn accounts_at(node: &Server, accounts: usize, position: u64) -> Vec<pb::Account> {
    let mut out = Vec::new();
    for w in 0..accounts {
        out.push(
            node.accounts()
                .get_account(pb::GetAccountRequest {
                    tenant: TENANT.into(),
                    account_id: format!("account-{w}"),
                    min_position: position,
                    ..Default::default()
                })
                .await
                .expect("the replica answers at the position")
                .into_inner(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_leaves_the_other_serving_and_catches_up() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (cluster, ingest) = cluster_with_ingest(dir.path()).await;
    let replica_args = node_args(&cluster, "projections", "keyplan-projections");
    let first = start(&dir.path().join("replica-1"), &replica_args).await;
    let second = start(&dir.path().join("replica-2"), &replica_args).await;

    let acknowledged = Arc::new(Acknowledged::default());
    let stop = Arc::new(AtomicBool::new(false));
    let writers = drive(&ingest, 3, acknowledged.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The first replica dies; the second answers every read at the newest position.
    first.kill().await;
    for _ in 0..10 {
        let position = head(&ingest).await;
        accounts_at(&second, 3, position).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Restarted, the first resumes from its checkpoints and answers as the second does.
    let first = start(&dir.path().join("replica-1"), &replica_args).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    let position = head(&ingest).await;
    let from_first = accounts_at(&first, 3, position).await;
    assert_eq!(from_first, accounts_at(&second, 3, position).await);
    // Each account: 5 onboarding events, then one per interaction.
    let logged: u64 = from_first.iter().map(|a| a.version - 5).sum();
    let acknowledged = acknowledged.event_ids.lock().await.len() as u64;
    assert!(
        logged >= acknowledged,
        "{logged} interactions on the replicas, {acknowledged} acknowledged"
    );
}
