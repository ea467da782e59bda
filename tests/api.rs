//! The gRPC API end to end: the real `keyplan` binary, real sled files, real sockets.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::fixtures::*;
use common::{head, read_all, Server};
use futures::StreamExt;
use keyplan_proto::pb;
use keyplan_proto::pb::command::Kind;
use prost::Message;
use tonic::Code;

#[tokio::test]
async fn health_and_both_reflection_versions_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;

    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let overall = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        overall.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let commands = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "keyplan.v1.CommandService".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        commands.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1 as r1;
    use tonic_reflection::pb::v1alpha as r1a;
    let mut v1 = r1::server_reflection_client::ServerReflectionClient::new(server.channel());
    let req = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = v1
        .server_reflection_info(futures::stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(r1::ServerReflectionResponse {
        message_response:
            Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(list)),
        ..
    })) = answers.next().await
    else {
        panic!("v1 reflection lists services")
    };
    let names: HashSet<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "keyplan.v1.CommandService",
        "keyplan.v1.EventStoreService",
        "keyplan.v1.AccountService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }

    let mut v1alpha = r1a::server_reflection_client::ServerReflectionClient::new(server.channel());
    let req = r1a::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            r1a::server_reflection_request::MessageRequest::FileContainingSymbol(
                "keyplan.v1.CommandService".into(),
            ),
        ),
    };
    let mut answers = v1alpha
        .server_reflection_info(futures::stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    assert!(
        matches!(
            answer.message_response,
            Some(r1a::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()
        ),
        "v1alpha reflection resolves the command service: {answer:?}"
    );
}

#[tokio::test]
async fn concurrent_edits_with_the_same_expected_version_have_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server, "globex").await;
    let before = head(&server).await;

    let mut tasks = Vec::new();
    for editor in 0..16 {
        let mut client = server.commands();
        tasks.push(tokio::spawn(async move {
            let mut r = exact(
                request(
                    "globex",
                    revise("plan-2026", &format!("risk seen by editor {editor}")),
                ),
                5,
            );
            r.actor = format!("editor-{editor}");
            client.execute(r).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(response) => {
                winners += 1;
                assert_eq!(response.into_inner().last_version, 6);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{status:?}");
                assert_eq!(
                    status.metadata().get("keyplan-current-version").unwrap(),
                    "6"
                );
                assert!(
                    status
                        .message()
                        .contains("version 6 (PlanSectionRevised) was recorded by editor-"),
                    "{}",
                    status.message()
                );
                let winner = status
                    .metadata()
                    .get_bin("keyplan-conflict-event-bin")
                    .unwrap()
                    .to_bytes()
                    .unwrap();
                let winner = pb::Event::decode(winner).unwrap();
                assert_eq!(winner.metadata.unwrap().stream_version, 6);
                assert!(matches!(
                    winner.payload.unwrap().event,
                    Some(pb::event_payload::Event::PlanSectionRevised(_))
                ));
            }
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(head(&server).await, before + 1);
}

#[tokio::test]
async fn a_retried_command_returns_the_original_outcome_and_stores_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    onboard(&server, "globex").await;
    let mut c = server.commands();
    let call = keyed(
        request("globex", interaction("call-1", "cfo", 3600)),
        "log-call-1",
    );
    let first = c.execute(call.clone()).await.unwrap().into_inner();
    assert!(!first.deduplicated);
    let again = c.execute(call.clone()).await.unwrap().into_inner();
    assert!(again.deduplicated);
    assert_eq!(
        (
            again.first_position,
            again.last_position,
            again.last_version,
            &again.event_ids
        ),
        (
            first.first_position,
            first.last_position,
            first.last_version,
            &first.event_ids
        )
    );
    assert_eq!(head(&server).await, first.last_position);

    // Guaranteed, not a time window: still a retry after a restart.
    server.stop().await;
    let server = Server::start(&data).await;
    let after = server.commands().execute(call).await.unwrap().into_inner();
    assert!(after.deduplicated);
    assert_eq!(after.event_ids, first.event_ids);
    assert_eq!(head(&server).await, first.last_position);
    let account = server
        .accounts()
        .get_account(pb::GetAccountRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
            min_position: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(account.interactions.len(), 1);

    // The key reused for a different command is refused (not answered "deduplicated" while
    // the new command is dropped), also after the restart, and stores nothing.
    let other = keyed(
        request("globex", interaction("call-2", "cfo", 7200)),
        "log-call-1",
    );
    let refused = server.commands().execute(other).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("different command") && refused.message().contains("new key"),
        "{}",
        refused.message()
    );
    assert_eq!(head(&server).await, first.last_position);
    // The key is still shown to readers as the client sent it.
    let stored = common::read_all(&server).await;
    let last = stored.last().unwrap().metadata.clone().unwrap();
    assert_eq!(last.idempotency_key, "log-call-1");
    assert_eq!(last.idempotency_fingerprint.len(), 32);
}

#[tokio::test]
async fn a_batch_of_commands_is_appended_atomically_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    let mut c = server.commands();
    let onboarding = vec![
        register("Initech"),
        assign("dana.kim", "Dana Kim", pb::TeamRole::KeyAccountManager),
        stakeholder("cto", "Sam Roy", pb::BuyingRole::TechnicalBuyer),
    ];
    // The fourth command names a stakeholder that does not exist: nothing may be stored.
    let mut broken = onboarding.clone();
    broken.push(interaction("call-1", "ghost", 60));
    let err = c.execute_batch(batch("initech", broken)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("ghost"), "{}", err.message());
    assert_eq!(head(&server).await, 0);

    let mut whole = onboarding;
    whole.push(interaction("call-1", "cto", 60));
    let ok = c
        .execute_batch(batch("initech", whole))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            ok.first_version,
            ok.last_version,
            ok.first_position,
            ok.last_position
        ),
        (1, 4, 1, 4)
    );
    assert_eq!(ok.event_ids.len(), 4);
}

#[tokio::test]
async fn a_restart_keeps_every_event_and_the_account_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    onboard(&server, "globex").await;
    onboard(&server, "initech").await;
    for i in 0..20 {
        server
            .commands()
            .execute(request(
                "globex",
                interaction(&format!("call-{i}"), "cfo", i * 60),
            ))
            .await
            .unwrap();
    }
    let events = read_all(&server).await;
    let get = pb::GetAccountRequest {
        tenant: TENANT.into(),
        account_id: "globex".into(),
        min_position: 0,
        ..Default::default()
    };
    let account = server
        .accounts()
        .get_account(get.clone())
        .await
        .unwrap()
        .into_inner();
    server.stop().await;

    let server = Server::start(&data).await;
    assert_eq!(read_all(&server).await, events);
    assert_eq!(
        server
            .accounts()
            .get_account(get.clone())
            .await
            .unwrap()
            .into_inner(),
        account
    );

    // GetAccount's answer is bounded: the newest interactions, and how many there are.
    assert_eq!(
        (account.interactions.len(), account.interactions_total),
        (20, 20)
    );
    let few = server
        .accounts()
        .get_account(pb::GetAccountRequest {
            max_interactions: 5,
            ..get.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(few.interactions_total, 20);
    assert_eq!(few.interactions[..], account.interactions[..5]);
    let newest_first = |a: &pb::Account| {
        a.interactions
            .iter()
            .map(|i| {
                i.details
                    .as_ref()
                    .and_then(|d| d.occurred_at)
                    .map(|t| t.seconds)
            })
            .collect::<Vec<_>>()
    };
    let times = newest_first(&account);
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    for i in &account.interactions {
        assert_eq!(i.content_sha256.len(), 32);
        assert_eq!(i.details.as_ref().map(|d| d.summary.as_str()), Some(""));
    }
    let too_many = server
        .accounts()
        .get_account(pb::GetAccountRequest {
            max_interactions: 1001,
            ..get.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(
        too_many.code(),
        tonic::Code::InvalidArgument,
        "{too_many:?}"
    );
    assert!(
        too_many.message().contains("at most 1000"),
        "{}",
        too_many.message()
    );

    let list = server
        .accounts()
        .list_accounts(pb::ListAccountsRequest {
            tenant: TENANT.into(),
            min_position: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = list
        .accounts
        .iter()
        .map(|a| a.account_id.as_str())
        .collect();
    assert_eq!(ids, ["globex", "initech"]);
    assert_eq!(list.accounts[0].key_account_manager, "Dana Kim");
    assert_eq!(list.accounts[0].interactions, 20);
}

#[tokio::test]
async fn subscribe_catches_up_then_follows_live_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server, "globex").await;
    for i in 0..45 {
        server
            .commands()
            .execute(request(
                "globex",
                interaction(&format!("early-{i}"), "cfo", i),
            ))
            .await
            .unwrap();
    }
    let mut feed = server
        .events()
        .subscribe(pb::SubscribeRequest {
            from_position: 1,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut c = server.commands();
        writers.push(tokio::spawn(async move {
            for i in 0..50 {
                c.execute(request(
                    "globex",
                    interaction(&format!("live-{w}-{i}"), "cfo", i),
                ))
                .await
                .unwrap();
            }
        }));
    }
    let mut ids = HashSet::new();
    for expected in 1..=250u64 {
        let event = feed.next().await.unwrap().unwrap();
        let meta = event.metadata.unwrap();
        assert_eq!(meta.global_position, expected);
        assert!(ids.insert(meta.event_id));
    }
    for w in writers {
        w.await.unwrap();
    }
    // Filtered subscription from the middle: only this tenant's interactions.
    let mut filtered = server
        .events()
        .subscribe(pb::SubscribeRequest {
            from_position: 200,
            filter: Some(pb::EventFilter {
                tenant: TENANT.into(),
                account_id: "globex".into(),
                event_types: vec!["InteractionLogged".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let first = filtered.next().await.unwrap().unwrap();
    assert_eq!(first.metadata.unwrap().global_position, 200);
}

#[tokio::test]
async fn the_hash_chain_verifies_and_names_the_first_tampered_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    onboard(&server, "globex").await;
    onboard(&server, "initech").await;
    let verify = |account: &str| pb::VerifyStreamRequest {
        tenant: TENANT.into(),
        account_id: account.into(),
    };
    let ok = server
        .events()
        .verify_stream(verify("globex"))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.intact, "{}", ok.detail);
    assert_eq!(ok.events_checked, 5);
    server.stop().await;

    // Position 8 is initech's version 3 (globex holds positions 1-5).
    keyplan_store::tamper::flip_payload_byte(&data, 8).unwrap();
    let server = Server::start(&data).await;
    let report = server
        .events()
        .verify_stream(verify("initech"))
        .await
        .unwrap()
        .into_inner();
    assert!(!report.intact);
    assert_eq!(report.first_broken_version, 3, "{}", report.detail);
    let untouched = server
        .events()
        .verify_stream(verify("globex"))
        .await
        .unwrap()
        .into_inner();
    assert!(untouched.intact);
    let missing = server
        .events()
        .verify_stream(verify("nobody"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// Hashes have one text form: `VerifyStream`'s `last_hash_hex` is `VerifyAccount`'s `last_hash`
/// (lower-case hex), and the deprecated `last_hash` bytes still hold the same hash.
#[tokio::test]
async fn verify_stream_and_verify_account_give_the_same_hex_hash() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server, "globex").await;
    let stream = server
        .events()
        .verify_stream(pb::VerifyStreamRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let account = pb::audit_service_client::AuditServiceClient::new(server.channel())
        .verify_account(pb::VerifyAccountRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stream.intact && account.intact);
    assert_eq!(stream.last_hash_hex, account.last_hash);
    assert_eq!(stream.last_hash_hex.len(), 64);
    assert!(
        stream
            .last_hash_hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{}",
        stream.last_hash_hex
    );
    #[allow(deprecated)]
    let bytes = stream.last_hash;
    assert_eq!(to_hex(&bytes), stream.last_hash_hex);
    // The head event's own hash is the same one.
    let last = read_all(&server).await.pop().unwrap().metadata.unwrap();
    assert_eq!(to_hex(&last.hash), account.last_hash);
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn an_event_stored_in_schema_version_1_is_read_upcast() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    onboard(&server, "globex").await;
    server.stop().await;

    // Write an InteractionLogged the way a Keyplan that predates schema version 2 did.
    {
        use keyplan_domain::events::{InteractionDetails, InteractionLogged};
        use keyplan_domain::ids::*;
        use keyplan_domain::values::*;
        let event = InteractionLogged {
            interaction_id: InteractionId::parse("old-call").unwrap(),
            details: InteractionDetails {
                occurred_at: Timestamp(1_767_225_600_000_000),
                channel: Channel::PhoneCall,
                stakeholders: vec![StakeholderId::parse("cfo").unwrap()],
                participants: vec![PersonId::parse("dana.kim").unwrap()],
                summary: "Renewal timing".into(),
                sentiment: Sentiment::Neutral,
                next_step: String::new(),
                opportunity_id: None,
            },
        };
        let v1 = keyplan_domain::codec::legacy::encode_interaction_logged_v1(&event);
        assert_eq!(v1.schema_version, 1);
        let store =
            keyplan_store::EventStore::open(keyplan_store::StoreConfig::new(&data)).unwrap();
        store
            .append(keyplan_store::AppendRequest {
                stream: keyplan_store::StreamId::new(TENANT, "globex"),
                expected: keyplan_store::ExpectedVersion::Exact(5),
                events: vec![keyplan_store::ProposedEvent {
                    event_id: uuid::Uuid::now_v7(),
                    event_type: v1.event_type.into(),
                    schema_version: v1.schema_version,
                    occurred_at_micros: event.details.occurred_at.as_micros(),
                    payload: v1.payload,
                }],
                metadata: keyplan_store::AppendMetadata {
                    actor: "legacy-import".into(),
                    ..Default::default()
                },
            })
            .await
            .unwrap();
        store.close();
    }

    let server = Server::start(&data).await;
    let page = server
        .events()
        .read_stream(pb::ReadStreamRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
            from_version: 6,
            direction: pb::Direction::Forward as i32,
            max_count: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let event = &page.events[0];
    assert_eq!(
        event.metadata.as_ref().unwrap().schema_version,
        1,
        "the stored version is reported as stored"
    );
    let Some(pb::event_payload::Event::InteractionLogged(logged)) =
        event.payload.clone().unwrap().event
    else {
        panic!("an InteractionLogged")
    };
    let details = logged.details.unwrap();
    assert_eq!(details.summary, "Renewal timing");
    assert_eq!(
        details.opportunity_id, "",
        "v1 had no opportunity; the upcast leaves it empty"
    );
    let account = server
        .accounts()
        .get_account(pb::GetAccountRequest {
            tenant: TENANT.into(),
            account_id: "globex".into(),
            min_position: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(account.interactions.len(), 1);
}

#[tokio::test]
async fn reads_page_forwards_and_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server, "globex").await;
    let read = |from, direction: pb::Direction, max| pb::ReadStreamRequest {
        tenant: TENANT.into(),
        account_id: "globex".into(),
        from_version: from,
        direction: direction as i32,
        max_count: max,
    };
    let versions = |r: &pb::ReadStreamResponse| -> Vec<u64> {
        r.events
            .iter()
            .map(|e| e.metadata.as_ref().unwrap().stream_version)
            .collect()
    };
    let mut c = server.events();
    let page = c
        .read_stream(read(0, pb::Direction::Forward, 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (versions(&page), page.next_version, page.stream_version),
        (vec![1, 2], 3, 5)
    );
    let page = c
        .read_stream(read(0, pb::Direction::Backward, 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((versions(&page), page.next_version), (vec![5, 4], 3));
    let page = c
        .read_stream(read(4, pb::Direction::Forward, 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((versions(&page), page.next_version), (vec![4, 5], 0));
    let err = c
        .read_stream(read(0, pb::Direction::Forward, 5000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .read_all(pb::ReadAllRequest {
            from_position: 0,
            max_count: 10,
            filter: Some(pb::EventFilter {
                tenant: String::new(),
                account_id: String::new(),
                event_types: vec!["Nope".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("InteractionLogged"),
        "lists the known types: {}",
        err.message()
    );
}

/// Pages of events are cut by size, so that a stock gRPC client (4 MiB limit) can read any
/// log: 1,000 events of long interactions would be about 18 MiB.
#[tokio::test]
async fn pages_of_large_events_stay_under_the_default_message_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    onboard(&server, "globex").await;
    let summary = "Reviewed the renewal terms line by line. ".repeat(450);
    let mut c = server.commands();
    for i in 0..200 {
        let kind = Kind::LogInteraction(pb::InteractionLogged {
            interaction_id: format!("call-{i}"),
            details: Some(details("cfo", i, &summary)),
        });
        c.execute(request("globex", kind)).await.unwrap();
    }
    let head = head(&server).await;
    let mut events = server.events();
    let mut seen = 0;
    let mut from = 0;
    let mut pages = 0;
    loop {
        let page = events
            .read_all(pb::ReadAllRequest {
                from_position: from,
                max_count: 1000,
                filter: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            page.encoded_len() < 4 * 1024 * 1024,
            "{}",
            page.encoded_len()
        );
        pages += 1;
        seen += page.events.len() as u64;
        if page.events.is_empty() || page.next_position > page.head_position {
            break;
        }
        from = page.next_position;
    }
    assert_eq!(seen, head, "paging reads every event once");
    assert!(pages > 1, "a 4 MiB log fits no single page");

    // ReadStream too, both ways.
    for direction in [pb::Direction::Forward, pb::Direction::Backward] {
        let mut seen = 0;
        let mut from = 0;
        loop {
            let page = events
                .read_stream(pb::ReadStreamRequest {
                    tenant: TENANT.into(),
                    account_id: "globex".into(),
                    from_version: from,
                    max_count: 1000,
                    direction: direction as i32,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.encoded_len() < 4 * 1024 * 1024);
            seen += page.events.len() as u64;
            if page.next_version == 0 {
                break;
            }
            from = page.next_version;
        }
        assert_eq!(seen, head, "{direction:?}: paging reads every event once");
    }
}
