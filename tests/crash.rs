//! Crash safety: kill -9 the server during concurrent appends; every acknowledged event must
//! be there after a restart, exactly once, with a gapless log and intact hash chains.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::fixtures::*;
use common::{read_all, Server};
use keyplan_proto::pb;
use tokio::sync::Mutex;

#[tokio::test]
async fn every_acknowledged_event_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    let accounts: Vec<String> = (0..8).map(|i| format!("account-{i}")).collect();
    for account in &accounts {
        onboard(&server, account).await;
    }

    // 32 clients log interactions as fast as they can; each remembers what was acknowledged.
    let acknowledged: Arc<Mutex<HashMap<String, (String, u64)>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..32 {
        let mut c = server.commands();
        let account = accounts[client % accounts.len()].clone();
        let acknowledged = acknowledged.clone();
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("call-{client}-{i}");
                match c
                    .execute(request(&account, interaction(&id, "cfo", i)))
                    .await
                {
                    Ok(r) => {
                        let r = r.into_inner();
                        assert_eq!(r.event_ids.len(), 1);
                        acknowledged
                            .lock()
                            .await
                            .insert(r.event_ids[0].clone(), (account.clone(), r.first_position));
                    }
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().await;
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(
        acknowledged.len() > 100,
        "the load was real: {} acknowledged",
        acknowledged.len()
    );

    let server = Server::start(&data).await;
    let events = read_all(&server).await;
    // Gapless positions from 1.
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.metadata.as_ref().unwrap().global_position, i as u64 + 1);
    }
    // Every acknowledged event exactly once, at the position it was acknowledged with.
    let mut found: HashMap<&str, Vec<u64>> = HashMap::new();
    for e in &events {
        let m = e.metadata.as_ref().unwrap();
        found
            .entry(m.event_id.as_str())
            .or_default()
            .push(m.global_position);
    }
    for (id, (account, position)) in &acknowledged {
        assert_eq!(
            found.get(id.as_str()),
            Some(&vec![*position]),
            "acknowledged event {id} on {account}"
        );
    }
    // Interaction ids are unique: no command was applied twice.
    let mut interaction_ids = std::collections::HashSet::new();
    for e in &events {
        if let Some(pb::event_payload::Event::InteractionLogged(l)) =
            &e.payload.as_ref().unwrap().event
        {
            let account = &e.metadata.as_ref().unwrap().account_id;
            assert!(interaction_ids.insert((account.clone(), l.interaction_id.clone())));
        }
    }
    for account in &accounts {
        let report = server
            .events()
            .verify_stream(pb::VerifyStreamRequest {
                tenant: TENANT.into(),
                account_id: account.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(report.intact, "{account}: {}", report.detail);
    }
    // And the server takes new commands after recovery.
    server
        .commands()
        .execute(request(&accounts[0], interaction("after-crash", "cfo", 0)))
        .await
        .unwrap();
}
