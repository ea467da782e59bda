//! Power loss: the node's data dir lives on a FUSE filesystem that keeps only what was made
//! durable (file contents by fsync/fdatasync, directory entries by fsync on the directory; see
//! `keyplan-powercut`). 16 clients append (single commands and batches of 16) while, at a
//! random moment, the power is cut; the node is killed (-9), what survived is written into a
//! real directory, and a new node starts on it. Every acknowledged event must be there at its
//! position, with gapless positions and intact hash chains.
//!
//! CI runs [`power_cuts_keep_every_acknowledged_event`] with 3 cuts, and
//! [`power_cuts_leave_read_models_that_load_and_catch_up`] (an all-in-one node, whose read models
//! must load and catch up with the log, one timeline entry per event) with 2. The long run:
//! `KEYPLAN_POWER_CUTS=100 cargo test -p keyplan --test power_cut -- --ignored --nocapture`
//! (`KEYPLAN_POWER_CUT_SEED=<n>` replays a run; every run prints its seed). Each cut prints one
//! line; a failed run ends with every failure and the failure rate.
//!
//! `KEYPLAN_POWER_CUT_MODE=journaled` keeps every directory change (creations, renames,
//! unlinks) as if a metadata journal had committed it at once, so that only unsynced file
//! contents are lost: it tells bugs in syncing files from bugs in syncing directories.
//!
//! Needs /dev/fuse and root: a machine without them fails the test, it does not skip it.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fixtures::*;
use common::Server;
use keyplan_powercut::{Model, Mounted};
use keyplan_proto::pb;
use pb::command::Kind;
use tokio::sync::Mutex;

/// The node the acknowledged-events cuts run: the write path alone.
const INGEST: [&str; 4] = ["--role", "ingest", "--log-compression", "false"];
/// The node the read-model cuts run: the write path and the read models, on the same disk.
const ALL_IN_ONE: [&str; 4] = ["--role", "all", "--log-compression", "false"];
const ACCOUNTS: usize = 8;
const WRITERS: usize = 16;
const BATCH: usize = 16;

/// splitmix64: small, seedable, good enough to pick moments and make text.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Words of random letters: compresses poorly, like real notes do not, but keeps sled's
    /// pages large.
    fn text(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len + 12);
        while s.len() < len {
            let word = 2 + self.below(9) as usize;
            for _ in 0..word {
                s.push((b'a' + self.below(26) as u8) as char);
            }
            s.push(if self.below(12) == 0 { '.' } else { ' ' });
        }
        s
    }
}

/// Every acknowledged event: id -> (account, global position).
type Acknowledged = Arc<Mutex<HashMap<String, (String, u64)>>>;

fn long_interaction(rng: &mut Rng, id: &str, seconds: i64) -> Kind {
    let summary_len = 2_000 + rng.below(14_000) as usize;
    Kind::LogInteraction(pb::InteractionLogged {
        interaction_id: id.into(),
        details: Some(details("cfo", seconds, &rng.text(summary_len))),
    })
}

/// Records `ids`, acknowledged at consecutive positions from `first`.
async fn record(acknowledged: &Acknowledged, account: &str, ids: Vec<String>, first: u64) {
    let mut map = acknowledged.lock().await;
    for (i, id) in ids.into_iter().enumerate() {
        map.insert(id, (account.to_owned(), first + i as u64));
    }
}

/// One writer: single commands (even writers) or batches of 16 (odd ones) until an error.
async fn writer(
    server_commands: pb::command_service_client::CommandServiceClient<tonic::transport::Channel>,
    n: usize,
    mut rng: Rng,
    acknowledged: Acknowledged,
) {
    let mut c = server_commands;
    let account = format!("account-{}", n % ACCOUNTS);
    for i in 0.. {
        let result = if n % 2 == 0 {
            let id = format!("call-{n}-{i}");
            c.execute(request(&account, long_interaction(&mut rng, &id, i)))
                .await
                .map(|r| {
                    let r = r.into_inner();
                    (r.event_ids, r.first_position)
                })
        } else {
            let kinds = (0..BATCH)
                .map(|j| {
                    let id = format!("call-{n}-{i}-{j}");
                    long_interaction(&mut rng, &id, i * 100 + j as i64)
                })
                .collect();
            c.execute_batch(batch(&account, kinds)).await.map(|r| {
                let r = r.into_inner();
                (r.event_ids, r.first_position)
            })
        };
        match result {
            Ok((ids, first)) => record(&acknowledged, &account, ids, first).await,
            Err(_) => return, // the power is off, or the node is gone
        }
    }
}

/// The last lines of a node's log, to show why it did not start.
fn log_tail(data_dir: &Path) -> String {
    common::log_tail(&data_dir.with_extension("log"), 8, "\n    ")
}

/// Checks the restarted node; returns what failed.
async fn check(
    server: &Server,
    acknowledged: &HashMap<String, (String, u64)>,
    read_models: bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut client = server.events();
    let mut events = Vec::new();
    let mut from = 0;
    loop {
        let page = match client
            .read_all(pb::ReadAllRequest {
                from_position: from,
                // Events here carry up to 16 KB of text: 1,000 of them would pass tonic's
                // default 4 MiB limit on a decoded message.
                max_count: 100,
                filter: None,
            })
            .await
        {
            Ok(page) => page.into_inner(),
            Err(e) => {
                failures.push(format!("ReadAll failed at position {from}: {e}"));
                return failures;
            }
        };
        let done = page.events.is_empty();
        events.extend(page.events);
        if done || page.next_position > page.head_position {
            break;
        }
        from = page.next_position;
    }
    // Gapless positions from 1.
    if let Some((i, e)) = events
        .iter()
        .enumerate()
        .find(|(i, e)| e.metadata.as_ref().map(|m| m.global_position) != Some(*i as u64 + 1))
    {
        failures.push(format!(
            "positions not gapless: event #{} has position {:?}",
            i + 1,
            e.metadata.as_ref().map(|m| m.global_position)
        ));
    }
    // Every acknowledged event at its position.
    let found: HashMap<&str, u64> = events
        .iter()
        .filter_map(|e| e.metadata.as_ref())
        .map(|m| (m.event_id.as_str(), m.global_position))
        .collect();
    let mut lost: Vec<u64> = Vec::new();
    let mut moved: Vec<String> = Vec::new();
    for (id, (_, position)) in acknowledged {
        match found.get(id.as_str()) {
            None => lost.push(*position),
            Some(p) if p != position => moved.push(format!("{id}: {position} -> {p}")),
            Some(_) => {}
        }
    }
    lost.sort_unstable();
    if !lost.is_empty() {
        failures.push(format!(
            "lost {} of {} acknowledged events (positions {}..={}; the log now ends at {})",
            lost.len(),
            acknowledged.len(),
            lost[0],
            lost[lost.len() - 1],
            events.len()
        ));
    }
    if !moved.is_empty() {
        failures.push(format!(
            "{} acknowledged events at another position, e.g. {}",
            moved.len(),
            moved[0]
        ));
    }
    // Hash chains.
    for a in 0..ACCOUNTS {
        let account = format!("account-{a}");
        match server
            .events()
            .verify_stream(pb::VerifyStreamRequest {
                tenant: TENANT.into(),
                account_id: account.clone(),
            })
            .await
        {
            Ok(r) if r.get_ref().intact => {}
            Ok(r) => failures.push(format!(
                "{account}: hash chain broken at version {}: {}",
                r.get_ref().first_broken_version,
                r.get_ref().detail
            )),
            // A stream that lost every event is reported as lost events above.
            Err(e) if e.code() == tonic::Code::NotFound => {}
            Err(e) => failures.push(format!("{account}: VerifyStream failed: {e}")),
        }
    }
    if read_models {
        let mut per_account: HashMap<String, u64> = HashMap::new();
        for m in events.iter().filter_map(|e| e.metadata.as_ref()) {
            *per_account.entry(m.account_id.clone()).or_default() += 1;
        }
        failures.extend(check_read_models(server, events.len() as u64, &per_account).await);
    }
    // And it takes new commands.
    if let Err(e) = server
        .commands()
        .execute(request("account-0", interaction("after-the-cut", "cfo", 0)))
        .await
    {
        // account-0 may not exist any more if its registration was lost (reported above).
        if e.code() != tonic::Code::NotFound && e.code() != tonic::Code::FailedPrecondition {
            failures.push(format!("a new command after the restart failed: {e}"));
        }
    }
    failures
}

/// The read models load from what survived the cut (their database keeps a prefix of its
/// commits, each with its checkpoint) and catch up with the log: none is stopped, each reaches
/// the log's head, and each account's timeline has one entry per event of its stream (a
/// checkpoint restored ahead of its state would leave entries missing; the timeline ignores an
/// event it already holds, so this does not see the opposite case).
async fn check_read_models(
    server: &Server,
    head: u64,
    per_account: &HashMap<String, u64>,
) -> Vec<String> {
    let mut failures = wait_read_models(server, head).await;
    if !failures.is_empty() {
        return failures;
    }
    let mut timeline = pb::timeline_service_client::TimelineServiceClient::new(server.channel());
    for (account, expected) in per_account {
        let mut entries = 0u64;
        let mut page_token = String::new();
        loop {
            let page = timeline
                .list_timeline(timeline_page(account, 500, page_token, head))
                .await;
            match page {
                Ok(page) => {
                    let page = page.into_inner();
                    entries += page.entries.len() as u64;
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    page_token = page.next_page_token;
                }
                Err(e) => {
                    failures.push(format!("{account}: ListTimeline failed: {e}"));
                    break;
                }
            }
        }
        if entries != *expected {
            failures.push(format!(
                "{account}: the timeline has {entries} entries for {expected} events"
            ));
        }
    }
    failures
}

/// Waits until the three read models reach `head`; what failed otherwise.
async fn wait_read_models(server: &Server, head: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = match server
            .operations()
            .get_status(pb::GetStatusRequest {})
            .await
        {
            Ok(status) => status.into_inner(),
            Err(e) => return vec![format!("GetStatus failed: {e}")],
        };
        let stopped: Vec<String> = status
            .projections
            .iter()
            .filter(|p| p.state == "stopped")
            .map(|p| format!("{}: {}", p.name, p.stopped_reason))
            .collect();
        if !stopped.is_empty() {
            return vec![format!("read models stopped after the cut: {stopped:?}")];
        }
        if status.projections.len() == 3 && status.projections.iter().all(|p| p.position >= head) {
            return Vec::new();
        }
        if Instant::now() > deadline {
            return vec![format!(
                "the read models did not reach the log's head {head} within 60 s: {:?}; log:\n    {}",
                status
                    .projections
                    .iter()
                    .map(|p| (p.name.as_str(), p.position))
                    .collect::<Vec<_>>(),
                server.log().lines().rev().take(8).collect::<Vec<_>>().join("\n    ")
            )];
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One power cut of a node started with `role`; returns a one-line summary and what failed.
async fn one_cut(seed: u64, role: &'static [&'static str]) -> (String, Vec<String>) {
    let read_models = role == ALL_IN_ONE;
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let model = if journaled() {
        Model::with_journaled_entries()
    } else {
        Model::new()
    };
    let mounted = Mounted::mount_model(&mnt, model)
        .unwrap_or_else(|e| panic!("the power-cut test needs a FUSE mount: {e}"));

    let server = Server::start_with(&mnt, role).await;
    let acknowledged: Acknowledged = Arc::default();
    let mut c = server.commands();
    for a in 0..ACCOUNTS {
        let account = format!("account-{a}");
        for kind in [
            register("Globex Corporation"),
            assign("dana.kim", "Dana Kim", pb::TeamRole::KeyAccountManager),
            stakeholder("cfo", "Lee Park", pb::BuyingRole::EconomicBuyer),
        ] {
            let r = c
                .execute(request(&account, kind))
                .await
                .unwrap()
                .into_inner();
            record(&acknowledged, &account, r.event_ids, r.first_position).await;
        }
    }
    let server = if read_models {
        // Stopped and started again, so that the read models' database holds durable state
        // (a stop makes it durable) from before the cut, which the restart must recover, not
        // merely rebuild.
        server.stop().await;
        Server::start_with(&mnt, role).await
    } else {
        server
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let rng = Rng(rng.next());
            tokio::spawn(writer(server.commands(), n, rng, acknowledged.clone()))
        })
        .collect();
    let run_for = Duration::from_millis(200 + rng.below(2_800));
    tokio::time::sleep(run_for).await;

    let durable = mounted.cut();
    server.kill().await;
    for w in writers {
        w.await.unwrap();
    }
    let stats = mounted.stats();
    mounted.unmount().unwrap();
    let acknowledged = acknowledged.lock().await.clone();
    let after = dir.path().join("after");
    durable.write_to(&after).unwrap();
    // The files a crash typically leaves empty: sled's conf, and how many others.
    let files = durable.files();
    let empty = files.iter().filter(|(_, len)| *len == 0).count();
    let conf = files
        .iter()
        .find(|(p, _)| p.ends_with("conf"))
        .map_or("no conf".to_owned(), |(_, len)| format!("conf {len} B"));
    let summary = format!(
        "cut after {run_for:?}: {} acknowledged, fs saw {} writes ({} MiB), {} fsyncs, {} fsyncdirs; \
         {} durable files ({empty} empty, {conf})",
        acknowledged.len(),
        stats.writes,
        stats.bytes_written >> 20,
        stats.fsyncs,
        stats.fsyncdirs,
        files.len(),
    );

    // Restart on what survived; a node that panics or exits is a failure to report, not a
    // test crash.
    let started = tokio::spawn({
        let after = after.clone();
        async move { Server::start_with(&after, role).await }
    })
    .await;
    let failures = match started {
        Err(_) => vec![format!(
            "the node did not start again on what survived; its log:\n    {}",
            log_tail(&after)
        )],
        Ok(server) => {
            let acknowledged = acknowledged.clone();
            let failures = tokio::spawn(async move {
                let failures = check(&server, &acknowledged, read_models).await;
                server.kill().await;
                failures
            })
            .await
            .unwrap_or_else(|_| vec!["the checks panicked (see above)".to_owned()]);
            failures
        }
    };
    (summary, failures)
}

/// Whether directory entries are journaled (`KEYPLAN_POWER_CUT_MODE=journaled`).
fn journaled() -> bool {
    std::env::var("KEYPLAN_POWER_CUT_MODE").is_ok_and(|m| m == "journaled")
}

async fn run_cuts(default_cuts: usize, role: &'static [&'static str]) {
    let cuts = std::env::var("KEYPLAN_POWER_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cuts);
    let seed = std::env::var("KEYPLAN_POWER_CUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mode = if journaled() {
        "directory entries journaled"
    } else {
        "only fsynced contents and fsynced directories survive"
    };
    println!("power cuts: {cuts} ({mode}), seed {seed} (KEYPLAN_POWER_CUT_SEED={seed} replays it)");
    let mut seeds = Rng(seed);
    let mut failed = Vec::new();
    for i in 0..cuts {
        let cut_seed = seeds.next();
        let started = Instant::now();
        let (summary, failures) = one_cut(cut_seed, role).await;
        let verdict = if failures.is_empty() { "ok" } else { "FAILED" };
        println!(
            "cut {}/{cuts} (seed {cut_seed}) {verdict} in {:.1?}: {summary}",
            i + 1,
            started.elapsed()
        );
        for f in &failures {
            println!("    {f}");
        }
        if !failures.is_empty() {
            failed.push((i + 1, cut_seed, failures));
        }
    }
    if !failed.is_empty() {
        let mut report = format!(
            "{} of {cuts} power cuts lost acknowledged data or the node (run seed {seed}):\n",
            failed.len()
        );
        for (i, cut_seed, failures) in &failed {
            let _ = writeln!(report, "  cut {i} (seed {cut_seed}):");
            for f in failures {
                let _ = writeln!(report, "    - {f}");
            }
        }
        panic!("{report}");
    }
}

#[tokio::test]
async fn power_cuts_keep_every_acknowledged_event() {
    run_cuts(3, &INGEST).await;
}

/// An all-in-one node: the read models' database is on the same disk, and after the cut the
/// read models must load and catch up, not merely report that they cannot.
#[tokio::test]
async fn power_cuts_leave_read_models_that_load_and_catch_up() {
    run_cuts(2, &ALL_IN_ONE).await;
}

/// The long run (100 cuts unless `KEYPLAN_POWER_CUTS` says otherwise).
#[tokio::test]
#[ignore = "long: 100 power cuts"]
async fn power_cuts_long_run() {
    run_cuts(100, &INGEST).await;
}

/// The long run of the read-model cuts (100 unless `KEYPLAN_POWER_CUTS` says otherwise).
#[tokio::test]
#[ignore = "long: 100 power cuts"]
async fn power_cuts_long_run_with_read_models() {
    run_cuts(100, &ALL_IN_ONE).await;
}
