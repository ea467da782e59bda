//! `keyplan.v1.ActivityService` over a real socket: a real event store, the projection runner
//! following it, a tonic server on 127.0.0.1:0 and the generated client, fed with the Globex
//! fixture (and two accounts derived from it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use keyplan_activity_service::{ActivityApi, ActivityProjection, ComplianceSource};
use keyplan_domain::codec;
use keyplan_domain::values::Timestamp;
use keyplan_domain::AccountCommand;
use keyplan_projection::{EventSource, ProjectedEvent, ProjectionRunner};
use keyplan_proto::convert::timestamp_to_proto;
use keyplan_proto::pb;
use keyplan_proto::pb::activity_service_client::ActivityServiceClient;
use keyplan_proto::pb::activity_service_server::ActivityServiceServer;
use keyplan_store::{
    AppendMetadata, AppendRequest, EventStore, ExpectedVersion, ProposedEvent, StoreConfig,
    StreamId,
};
use keyplan_testkit::globex::{self, ACCOUNT, TENANT};
use keyplan_testkit::{at, decide_steps};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic::Code;

/// Appends events to the log as the command service would (same payload, same business
/// time); returns the last global position.
async fn append(store: &EventStore, events: &[ProjectedEvent]) -> u64 {
    let mut last = 0;
    for e in events {
        let encoded = codec::encode(&e.event);
        let outcome = store
            .append(AppendRequest {
                stream: StreamId::new(&e.tenant, &e.account),
                expected: ExpectedVersion::Any,
                events: vec![ProposedEvent {
                    event_id: uuid::Uuid::now_v7(),
                    event_type: encoded.event_type.into(),
                    schema_version: encoded.schema_version,
                    occurred_at_micros: e.occurred_at.0,
                    payload: encoded.payload,
                }],
                metadata: AppendMetadata {
                    actor: e.actor.clone(),
                    ..Default::default()
                },
            })
            .await
            .unwrap();
        last = outcome.last_position;
    }
    last
}

/// Globex's history up to `until`, as account `account`.
fn copy(account: &str, until: Timestamp, keep_assessment: bool) -> Vec<ProjectedEvent> {
    let steps: Vec<_> = globex::steps()
        .into_iter()
        .filter(|s| s.recorded_at <= until)
        .filter(|s| keep_assessment || !matches!(s.command, AccountCommand::AssessTier(_)))
        .collect();
    decide_steps(TENANT, account, &steps, 1)
}

struct Compliance;

impl ComplianceSource for Compliance {
    fn share(
        &self,
        _tenant: &str,
        account: &str,
        _as_of: Timestamp,
    ) -> Result<Option<(u32, u32)>, String> {
        Ok((account == ACCOUNT).then_some((3, 4)))
    }
}

fn as_of() -> Option<prost_types::Timestamp> {
    Some(timestamp_to_proto(at(2025, 12, 15, 12)))
}

#[tokio::test]
async fn the_activity_service_answers_over_grpc_and_reads_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
    let db =
        keyplan_projection::ReadModelDb::open(dir.path().join("projections"), 64 << 20).unwrap();
    let projection = ActivityProjection::default();
    let (runner, handle) =
        ProjectionRunner::open(&db, projection.clone(), EventSource::Local(store.clone())).unwrap();
    let runner = tokio::spawn(runner.run());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let api = ActivityApi::new(projection, handle.clone(), Some(Arc::new(Compliance)));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ActivityServiceServer::new(api))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );
    let mut client: ActivityServiceClient<Channel> =
        ActivityServiceClient::connect(format!("http://{address}"))
            .await
            .unwrap();

    // The events are written after the service started: min_position makes each query
    // wait for the projection to have applied them.
    let last = append(&store, &globex::events()).await;
    let counts = client
        .get_activity_counts(pb::GetActivityCountsRequest {
            tenant: TENANT.into(),
            account_id: ACCOUNT.into(),
            period: pb::ActivityPeriod::Quarter.into(),
            dimension: pb::ActivityDimension::Channel.into(),
            from: "2025-01-01".into(),
            to: "2025-12-31".into(),
            min_position: last,
        })
        .await
        .unwrap()
        .into_inner();
    // Q1 14, Q2 9, Q3 9, Q4 6 interactions; sentiment sums 10, 6, 4, 2 (see the unit tests).
    assert_eq!(
        counts
            .periods
            .iter()
            .map(|p| p.interactions)
            .collect::<Vec<_>>(),
        vec![14, 9, 9, 6]
    );
    assert_eq!(
        counts
            .periods
            .iter()
            .map(|p| p.sentiment.unwrap().sum)
            .collect::<Vec<_>>(),
        vec![10, 6, 4, 2]
    );
    // Q1 video calls: i02 i07 i09 and the corrected i13 = 4.
    let q1_video = counts
        .buckets
        .iter()
        .find(|b| b.period_start == "2025-01-01" && b.key == "CHANNEL_VIDEO_CALL")
        .unwrap();
    assert_eq!(q1_video.count, 4);

    let dmu = client
        .get_dmu_coverage(pb::GetDmuCoverageRequest {
            tenant: TENANT.into(),
            account_id: ACCOUNT.into(),
            days: 30,
            as_of: as_of(),
            min_position: last,
        })
        .await
        .unwrap()
        .into_inner();
    // Window from 2025-11-15: i36, i38 (cto), i37 (cfo); legal never contacted.
    assert_eq!(dmu.window_start, "2025-11-15");
    assert_eq!((dmu.roles_engaged, dmu.stakeholders_engaged), (2, 2));
    assert_eq!(dmu.never_contacted, vec!["legal".to_string()]);

    let summary = client
        .get_opportunity_summary(pb::GetOpportunitySummaryRequest {
            tenant: TENANT.into(),
            account_id: ACCOUNT.into(),
            as_of: as_of(),
            min_position: last,
        })
        .await
        .unwrap()
        .into_inner();
    // Goals Q1-Q3: 1,000,000.00 + 1,000,000.00 + 1,050,000.00 = 3,050,000.00 EUR.
    let goal = summary.plan_goal.unwrap();
    assert_eq!(goal.totals[0].annual_goal_minor_units, 305_000_000);
    assert_eq!(
        (summary.open_count, summary.won_count, summary.lost_count),
        (1, 1, 1)
    );

    // Two more accounts: initech (Globex until 2025-06-30) and umbrella (setup only, never
    // assessed).
    append(&store, &copy("initech", at(2025, 6, 30, 23), true)).await;
    let last = append(&store, &copy("umbrella", at(2025, 1, 2, 9), false)).await;
    let quiet = client
        .list_quiet_accounts(pb::ListQuietAccountsRequest {
            tenant: TENANT.into(),
            days: 30,
            as_of: as_of(),
            min_position: last,
        })
        .await
        .unwrap()
        .into_inner();
    // umbrella never contacted; initech last on 06-25 (day 176): 349 - 176 = 173 days.
    let quiet: Vec<(&str, Option<u32>)> = quiet
        .accounts
        .iter()
        .map(|q| (q.account_id.as_str(), q.days_since_last_contact))
        .collect();
    assert_eq!(quiet, vec![("umbrella", None), ("initech", Some(173))]);

    let portfolio = client
        .get_portfolio(pb::GetPortfolioRequest {
            tenant: TENANT.into(),
            as_of: as_of(),
            min_position: last,
        })
        .await
        .unwrap()
        .into_inner();
    let ranking: Vec<(u32, &str, Option<u32>, Option<u32>)> = portfolio
        .accounts
        .iter()
        .map(|e| {
            (
                e.rank,
                e.account_id.as_str(),
                e.weighted_score_milli,
                e.compliance.map(|c| c.rules_on_track),
            )
        })
        .collect();
    // globex and initech both 7833 (ties by id), umbrella unassessed last; compliance only
    // for globex (the stand-in knows no other account).
    assert_eq!(
        ranking,
        vec![
            (1, "globex", Some(7833), Some(3)),
            (2, "initech", Some(7833), None),
            (3, "umbrella", None, None),
        ]
    );
    assert!(portfolio.compliance_available);
    assert_eq!(portfolio.accounts[0].interactions_90_days, 7); // i32..i38

    // Refusals.
    let err = client
        .get_activity_counts(pb::GetActivityCountsRequest {
            tenant: TENANT.into(),
            account_id: String::new(),
            period: 0,
            dimension: pb::ActivityDimension::Account.into(),
            from: "2025-01-01".into(),
            to: "2025-12-31".into(),
            min_position: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("period"), "{}", err.message());
    let err = client
        .get_activity_counts(pb::GetActivityCountsRequest {
            tenant: TENANT.into(),
            account_id: ACCOUNT.into(),
            period: pb::ActivityPeriod::Day.into(),
            dimension: pb::ActivityDimension::Account.into(),
            from: "2025-13-01".into(),
            to: "2025-12-31".into(),
            min_position: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("from"), "{}", err.message());
    let err = client
        .get_dmu_coverage(pb::GetDmuCoverageRequest {
            tenant: TENANT.into(),
            account_id: "nobody".into(),
            days: 30,
            as_of: None,
            min_position: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .get_portfolio(pb::GetPortfolioRequest {
            tenant: TENANT.into(),
            as_of: None,
            min_position: last + 1_000,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().contains(&format!("up to position {last}")),
        "{}",
        err.message()
    );

    // Without as_of the answer is as of now (after 2025): the account is quiet since 12-08.
    let dmu = client
        .get_dmu_coverage(pb::GetDmuCoverageRequest {
            tenant: TENANT.into(),
            account_id: ACCOUNT.into(),
            days: 7,
            as_of: None,
            min_position: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dmu.roles_engaged, 0);

    // An online rebuild swaps in a new generation; the service answers the same.
    let mut progress = handle.rebuild().unwrap();
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(p) = progress.recv().await {
            assert_eq!(p.error, None);
            if p.done {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(done);
    let again = client
        .get_activity_counts(pb::GetActivityCountsRequest {
            tenant: TENANT.into(),
            account_id: ACCOUNT.into(),
            period: pb::ActivityPeriod::Quarter.into(),
            dimension: pb::ActivityDimension::Channel.into(),
            from: "2025-01-01".into(),
            to: "2025-12-31".into(),
            min_position: last,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, counts);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    runner.abort();
}
