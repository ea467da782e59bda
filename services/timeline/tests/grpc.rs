//! `keyplan.v1.TimelineService` over a real socket: the Globex year appended to a real log,
//! projected by the real runner, queried and watched with the generated client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use keyplan_domain::codec;
use keyplan_domain::events::{AccountRegistered, InteractionDetails, InteractionLogged};
use keyplan_domain::ids::{InteractionId, PersonId, StakeholderId};
use keyplan_domain::values::{Channel, Sentiment, Tier};
use keyplan_domain::AccountEvent;
use keyplan_projection::{EventSource, ProjectionRunner};
use keyplan_proto::pb;
use keyplan_proto::pb::list_timeline_request::Scope as WireScope;
use keyplan_proto::pb::timeline_service_client::TimelineServiceClient;
use keyplan_proto::pb::timeline_service_server::TimelineServiceServer;
use keyplan_store::{
    AppendMetadata, AppendRequest, EventStore, ExpectedVersion, ProposedEvent, StoreConfig,
    StreamId,
};
use keyplan_testkit::{at, globex};
use keyplan_timeline_service::{TimelineApi, TimelineProjection};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::transport::{Channel as GrpcChannel, Server};
use tonic::Code;

/// Appends one event as the repository would (business time and actor from the event); the
/// store stamps its own recorded-at. Returns its global position.
async fn append(
    store: &EventStore,
    account: &str,
    actor: &str,
    occurred_at: keyplan_domain::values::Timestamp,
    event: &AccountEvent,
) -> u64 {
    let encoded = codec::encode(event);
    store
        .append(AppendRequest {
            stream: StreamId::new(globex::TENANT, account),
            expected: ExpectedVersion::Any,
            events: vec![ProposedEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: encoded.event_type.into(),
                schema_version: encoded.schema_version,
                occurred_at_micros: occurred_at.0,
                payload: encoded.payload,
            }],
            metadata: AppendMetadata {
                actor: actor.into(),
                ..Default::default()
            },
        })
        .await
        .unwrap()
        .last_position
}

fn request(scope: Option<WireScope>) -> pb::ListTimelineRequest {
    pb::ListTimelineRequest {
        tenant: globex::TENANT.into(),
        account_id: globex::ACCOUNT.into(),
        scope,
        ..Default::default()
    }
}

/// Every entry of a query, following next_page_token.
async fn walk(
    client: &mut TimelineServiceClient<GrpcChannel>,
    mut r: pb::ListTimelineRequest,
) -> (Vec<u64>, Vec<usize>) {
    let mut positions = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = client.list_timeline(r.clone()).await.unwrap().into_inner();
        sizes.push(page.entries.len());
        positions.extend(page.entries.iter().map(|e| e.position));
        if page.next_page_token.is_empty() {
            return (positions, sizes);
        }
        r.page_token = page.next_page_token;
    }
}

async fn status_of(
    client: &mut TimelineServiceClient<GrpcChannel>,
    r: pb::ListTimelineRequest,
) -> tonic::Status {
    client.list_timeline(r).await.expect_err("refused")
}

fn cto_call(id: &str, day: u32) -> (keyplan_domain::values::Timestamp, AccountEvent) {
    let occurred = at(2025, 12, day, 10);
    let event = AccountEvent::InteractionLogged(InteractionLogged {
        interaction_id: InteractionId::parse(id).unwrap(),
        details: InteractionDetails {
            occurred_at: occurred,
            channel: Channel::VideoCall,
            stakeholders: vec![StakeholderId::parse("cto").unwrap()],
            participants: vec![PersonId::parse("lee").unwrap()],
            summary: "Roadmap 2026".into(),
            sentiment: Sentiment::Positive,
            next_step: "Send the roadmap".into(),
            opportunity_id: None,
        },
    });
    (occurred, event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_watch_the_globex_timeline_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    // The Globex year (positions 1..=84), then another account of the tenant (85).
    for e in globex::events() {
        append(&store, &e.account, &e.actor, e.occurred_at, &e.event).await;
    }
    let initech = AccountEvent::AccountRegistered(AccountRegistered {
        name: "Initech".into(),
        industry: "Software".into(),
        region: "NA".into(),
        headquarters: "Austin".into(),
        tier: Tier::Key,
    });
    assert_eq!(
        append(&store, "initech", "dana", at(2025, 12, 1, 9), &initech).await,
        85
    );

    let db =
        keyplan_projection::ReadModelDb::open(dir.path().join("projections"), 64 << 20).unwrap();
    let projection = TimelineProjection::default();
    let (runner, progress) =
        ProjectionRunner::open(&db, projection.clone(), EventSource::Local(store.clone())).unwrap();
    let runner = tokio::spawn(runner.run());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .add_service(TimelineServiceServer::new(TimelineApi::new(
                projection, progress,
            )))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );
    let mut client = TimelineServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();

    // Read-your-writes: wait for position 85, then page newest first: 84 = 50 + 34, only
    // Globex's entries (85 belongs to Initech).
    let mut whole = request(None);
    whole.min_position = 85;
    let first = client
        .list_timeline(whole.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.entries.len(), 50);
    assert_eq!(first.entries[0].position, 84);
    assert_eq!(first.entries[49].position, 35);
    assert_eq!(first.last_position, 84);
    assert!(first.entries.iter().all(|e| e.account_id == "globex"));
    let e = &first.entries[0]; // i38, 2025-12-08 10:00, lee with the CTO
    assert_eq!(e.event_type, "InteractionLogged");
    assert_eq!(e.actor, "lee");
    assert_eq!(
        e.occurred_at.unwrap().seconds,
        at(2025, 12, 8, 10).0 / 1_000_000
    );
    assert!(e
        .summary
        .starts_with("Lee Chan (sales) had a phone call with Ana Ruiz (CTO) about \"phone call with cto\": positive"));
    assert_eq!(e.subjects.as_ref().unwrap().stakeholder_ids, vec!["cto"]);
    assert_eq!(
        uuid::Uuid::parse_str(&e.event_id)
            .unwrap()
            .get_version_num(),
        7
    );
    let (all, sizes) = walk(&mut client, whole.clone()).await;
    assert_eq!(sizes, vec![50, 34]);
    assert_eq!(all, (1..=84).rev().collect::<Vec<_>>());

    // Scoped views, in pages of 8: cto has 21 entries (8 + 8 + 5), oldest first.
    let mut cto = request(Some(WireScope::StakeholderId("cto".into())));
    cto.page_size = 8;
    cto.order = pb::TimelineOrder::OldestFirst as i32;
    let (cto_positions, sizes) = walk(&mut client, cto.clone()).await;
    assert_eq!(sizes, vec![8, 8, 5]);
    assert_eq!(
        cto_positions,
        vec![8, 25, 28, 30, 33, 35, 39, 40, 41, 47, 54, 56, 57, 64, 65, 71, 73, 74, 78, 81, 84]
    );
    let plan = request(Some(WireScope::PlanId("plan-2025".into())));
    assert_eq!(walk(&mut client, plan).await.0.len(), 12);
    let sam = request(Some(WireScope::PersonId("sam".into())));
    assert_eq!(walk(&mut client, sam).await.0.len(), 11);
    let coatings = request(Some(WireScope::OpportunityId("opp-coatings".into())));
    assert_eq!(walk(&mut client, coatings).await.0.len(), 6);
    let whole_scope = request(Some(WireScope::WholeAccount(pb::TimelineWholeAccount {})));
    assert_eq!(walk(&mut client, whole_scope).await.0.len(), 84);

    // Filters: actor lee = 26 entries; interactions with the CTO in Q1 = 6 (see the unit tests).
    let mut by_lee = request(None);
    by_lee.actor = "lee".into();
    assert_eq!(walk(&mut client, by_lee).await.0.len(), 26);
    let mut cto_q1 = request(Some(WireScope::StakeholderId("cto".into())));
    cto_q1.event_types = vec!["InteractionLogged".into()];
    cto_q1.occurred_from = Some(prost_types::Timestamp {
        seconds: at(2025, 1, 1, 0).0 / 1_000_000,
        nanos: 0,
    });
    cto_q1.occurred_to = Some(prost_types::Timestamp {
        seconds: at(2025, 4, 1, 0).0 / 1_000_000,
        nanos: 0,
    });
    assert_eq!(
        walk(&mut client, cto_q1.clone()).await.0,
        vec![41, 39, 35, 33, 30, 28]
    );

    // The correction and the entry it corrects.
    let mut corrections = request(None);
    corrections.event_types = vec!["InteractionCorrected".into(), "InteractionLogged".into()];
    corrections.occurred_from = cto_q1.occurred_from;
    let page = client
        .list_timeline(corrections)
        .await
        .unwrap()
        .into_inner();
    let by_position = |p: u64| page.entries.iter().find(|e| e.position == p).unwrap();
    assert_eq!(by_position(40).corrects_position, 39);
    assert_eq!(by_position(40).corrected_by_position, 0);
    assert_eq!(by_position(39).corrected_by_position, 40);
    assert_eq!(by_position(39).corrects_position, 0);

    // Refusals, each with the code and the field or id that explains it.
    let mut r = request(None);
    r.tenant = String::new();
    let s = status_of(&mut client, r).await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("tenant"), "{}", s.message());
    let mut r = request(None);
    r.account_id = "umbrella".into();
    let s = status_of(&mut client, r).await;
    assert_eq!(s.code(), Code::NotFound);
    assert!(s.message().contains("umbrella"), "{}", s.message());
    let s = status_of(
        &mut client,
        request(Some(WireScope::StakeholderId("ceo".into()))),
    )
    .await;
    assert_eq!(s.code(), Code::NotFound);
    assert!(s.message().contains("stakeholder ceo"), "{}", s.message());
    let mut r = request(None);
    r.event_types = vec!["MeetingHeld".into()];
    let s = status_of(&mut client, r).await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("event_types"), "{}", s.message());
    let mut r = request(None);
    r.occurred_from = cto_q1.occurred_to;
    r.occurred_to = cto_q1.occurred_from;
    let s = status_of(&mut client, r).await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("occurred_to"), "{}", s.message());
    let mut r = request(None);
    r.occurred_from = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    });
    assert_eq!(
        status_of(&mut client, r).await.code(),
        Code::InvalidArgument
    );
    let mut r = request(None);
    r.order = 7;
    assert_eq!(
        status_of(&mut client, r).await.code(),
        Code::InvalidArgument
    );
    let mut r = request(None);
    r.page_token = "not-a-token".into();
    let s = status_of(&mut client, r).await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("page_token"), "{}", s.message());
    // A cto token does not continue a cfo query.
    let cto_page = client
        .list_timeline(cto.clone())
        .await
        .unwrap()
        .into_inner();
    let mut cfo = cto.clone();
    cfo.scope = Some(WireScope::StakeholderId("cfo".into()));
    cfo.page_token = cto_page.next_page_token;
    let s = status_of(&mut client, cfo).await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("different query"), "{}", s.message());

    // Watch from position 80: the catch-up (80..=84), then live.
    let watch = pb::WatchTimelineRequest {
        tenant: globex::TENANT.into(),
        account_id: globex::ACCOUNT.into(),
        from_position: 80,
        min_position: 85,
    };
    let mut feed = client.watch_timeline(watch).await.unwrap().into_inner();
    let mut seen = Vec::new();
    for _ in 80..=84 {
        seen.push(next(&mut feed).await.position);
    }
    assert_eq!(seen, vec![80, 81, 82, 83, 84]);
    let mut everything = client
        .watch_timeline(pb::WatchTimelineRequest {
            tenant: globex::TENANT.into(),
            account_id: globex::ACCOUNT.into(),
            from_position: 0,
            min_position: 0,
        })
        .await
        .unwrap()
        .into_inner();

    // A new call (86, 2025-12-20) arrives live on both watches (Initech's 85 on neither)...
    let (occurred, call) = cto_call("i39", 20);
    let position = append(&store, "globex", "lee", occurred, &call).await;
    assert_eq!(position, 86);
    let live = next(&mut feed).await;
    assert_eq!(live.position, 86);
    assert!(live
        .summary
        .starts_with("Lee Chan (sales) had a video call with Ana Ruiz (CTO) about \"Roadmap 2026\": positive; next step: Send the roadmap"));
    let mut from_start = Vec::new();
    for _ in 0..85 {
        from_start.push(next(&mut everything).await.position);
    }
    let expected: Vec<u64> = (1..=84).chain([86]).collect();
    assert_eq!(from_start, expected);
    assert_eq!(
        from_start.iter().collect::<BTreeSet<_>>().len(),
        85,
        "no duplicate"
    );
    // ...and in pages once the projection has it (read-your-writes).
    let mut newest = request(None);
    newest.page_size = 1;
    newest.min_position = position;
    let page = client.list_timeline(newest).await.unwrap().into_inner();
    assert_eq!(page.entries[0].position, 86);
    assert_eq!(page.last_position, 86);

    // Watching an unknown account is NOT_FOUND at once.
    let s = client
        .watch_timeline(pb::WatchTimelineRequest {
            tenant: globex::TENANT.into(),
            account_id: "umbrella".into(),
            from_position: 0,
            min_position: 0,
        })
        .await
        .expect_err("unknown account");
    assert_eq!(s.code(), Code::NotFound);

    // A position this node has not reached: UNAVAILABLE after the 5 s read-your-writes wait.
    let mut ahead = request(None);
    ahead.min_position = 10_000;
    let s = status_of(&mut client, ahead).await;
    assert_eq!(s.code(), Code::Unavailable);
    assert!(s.message().contains("10000"), "{}", s.message());

    drop(feed);
    drop(everything);
    drop(client);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server shuts down")
        .unwrap()
        .unwrap();
    runner.abort();
    store.close();
}

async fn next(feed: &mut tonic::Streaming<pb::TimelineEntry>) -> pb::TimelineEntry {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("an entry within 10 s")
        .expect("the watch is open")
        .expect("an entry, not an error")
}
