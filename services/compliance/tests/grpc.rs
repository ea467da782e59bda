//! `keyplan.v1.ComplianceService` over a real socket: a tonic server on 127.0.0.1:0 serving
//! the compliance projection fed with the Globex fixture, a generated client, and
//! read-your-writes through a projection runner following a real local log.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use keyplan_compliance_service::{ComplianceApi, ComplianceProjection};
use keyplan_domain::codec;
use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_domain::AccountEvent;
use keyplan_projection::{EventSource, Projection, ProjectionRunner};
use keyplan_proto::convert::timestamp_to_proto;
use keyplan_proto::pb;
use keyplan_proto::pb::compliance_service_client::ComplianceServiceClient;
use keyplan_proto::pb::compliance_service_server::ComplianceServiceServer;
use keyplan_store::{
    AppendMetadata, AppendRequest, EventStore, ExpectedVersion, ProposedEvent, StoreConfig,
    StreamId,
};
use keyplan_testkit::{at, globex};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel as GrpcChannel;
use tonic::Code;

struct Harness {
    client: ComplianceServiceClient<GrpcChannel>,
    store: EventStore,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(StoreConfig::new(dir.path().join("log"))).unwrap();
        let db = keyplan_projection::ReadModelDb::open(dir.path().join("projections"), 64 << 20)
            .unwrap();
        let projection = ComplianceProjection::default();
        let (runner, handle) =
            ProjectionRunner::open(&db, projection.clone(), EventSource::Local(store.clone()))
                .unwrap();
        // The Globex year goes straight into the projection (its recorded times are in 2025,
        // which a live log cannot produce); live writes come through the runner.
        for event in globex::events() {
            projection.apply(&event);
        }
        tokio::spawn(runner.run());

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(ComplianceServiceServer::new(ComplianceApi::new(
                    projection, handle,
                )))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        let client = ComplianceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        Self {
            client,
            store,
            shutdown: Some(tx),
            server,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.await.unwrap();
    }

    /// Appends events to the live log for account `initech`, now; returns the last position.
    async fn append(&self, events: Vec<AccountEvent>) -> u64 {
        let now = Timestamp::now().as_micros();
        let proposed = events
            .iter()
            .map(|e| {
                let encoded = codec::encode(e);
                ProposedEvent {
                    event_id: uuid::Uuid::now_v7(),
                    event_type: encoded.event_type.into(),
                    schema_version: encoded.schema_version,
                    occurred_at_micros: now,
                    payload: encoded.payload,
                }
            })
            .collect();
        self.store
            .append(AppendRequest {
                stream: StreamId::new(globex::TENANT, "initech"),
                expected: ExpectedVersion::Any,
                events: proposed,
                metadata: AppendMetadata {
                    actor: "kam".into(),
                    ..Default::default()
                },
            })
            .await
            .unwrap()
            .last_position
    }
}

fn account_request(
    y: i32,
    m: u32,
    d: u32,
    h: u32,
    axis: pb::ComplianceAxis,
) -> pb::GetAccountComplianceRequest {
    pb::GetAccountComplianceRequest {
        tenant: globex::TENANT.into(),
        account_id: globex::ACCOUNT.into(),
        as_of: Some(timestamp_to_proto(at(y, m, d, h))),
        axis: axis.into(),
        min_position: 0,
        explain: false,
    }
}

fn share(s: &Option<pb::ComplianceShare>) -> (u32, u32, Option<f64>) {
    let s = s.as_ref().unwrap();
    (s.on_track, s.active, s.share)
}

#[tokio::test]
async fn account_compliance_rollups_and_trends_over_grpc() {
    let h = Harness::start().await;
    let mut client = h.client.clone();

    // 2025-03-12 12:00 as known then: i12 (cfo, 03-10) was logged on 03-14, so r-cfo is 5 days
    // overdue (i06 02-05 + 30 = 03-07) and r-tech 2 (i09 02-24 + 14 = 03-10): 3 of 5.
    let r = client
        .get_account_compliance(account_request(
            2025,
            3,
            12,
            12,
            pb::ComplianceAxis::AsKnownAt,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.axis, i32::from(pb::ComplianceAxis::AsKnownAt));
    assert_eq!(share(&r.share), (3, 5, Some(0.6)));
    let cfo = &r.rules[0];
    assert_eq!(cfo.rule_id, "r-cfo");
    assert_eq!(cfo.status, i32::from(pb::ComplianceRuleStatus::Overdue));
    assert_eq!(cfo.next_due_on, "2025-03-07");
    assert_eq!(cfo.days_overdue, 5);
    assert_eq!(cfo.set_on, "2025-01-02");
    assert_eq!(cfo.owner_name, "Dana Kim");
    assert_eq!(cfo.target_description, "stakeholder cfo (Lee Park)");
    let last = cfo.last_interaction.as_ref().unwrap();
    assert_eq!(
        (last.interaction_id.as_str(), last.occurred_on.as_str()),
        ("i06", "2025-02-05")
    );
    let definition = cfo.definition.as_ref().unwrap();
    assert_eq!(definition.cadence_days, 30);
    assert_eq!(definition.owner, "dana");
    assert_eq!(
        r.overdue
            .iter()
            .map(|o| (o.rule_id.as_str(), o.days_overdue, o.due_on.as_str()))
            .collect::<Vec<_>>(),
        vec![("r-cfo", 5, "2025-03-07"), ("r-tech", 2, "2025-03-10")]
    );

    // The same instant with the axis unset (= as happened by): i12 counts, 4 of 5.
    let r = client
        .get_account_compliance(account_request(
            2025,
            3,
            12,
            12,
            pb::ComplianceAxis::Unspecified,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.axis, i32::from(pb::ComplianceAxis::AsHappenedBy));
    assert_eq!(share(&r.share), (4, 5, Some(0.8)));

    // Review cadence on 2025-07-10: Q1 on time, Q2 late by 8 days (held 07-08), Q3 and Q4 to come.
    let r = client
        .get_account_compliance(account_request(
            2025,
            7,
            10,
            12,
            pb::ComplianceAxis::AsHappenedBy,
        ))
        .await
        .unwrap()
        .into_inner();
    let plan = &r.plan_reviews[0];
    assert_eq!(plan.plan_id, "plan-2025");
    assert_eq!(
        plan.review_frequency,
        i32::from(pb::ReviewFrequency::Quarterly)
    );
    assert_eq!(
        (plan.period_start.as_str(), plan.period_end.as_str()),
        ("2025-01-01", "2025-12-31")
    );
    assert_eq!(
        plan.windows
            .iter()
            .map(|w| (
                w.due_on.as_str(),
                w.status,
                w.review_id.as_str(),
                w.held_on.as_str(),
                w.days_late
            ))
            .collect::<Vec<_>>(),
        vec![
            (
                "2025-03-31",
                i32::from(pb::ComplianceReviewStatus::OnTime),
                "rev-q1",
                "2025-03-28",
                0
            ),
            (
                "2025-06-30",
                i32::from(pb::ComplianceReviewStatus::Late),
                "rev-q2",
                "2025-07-08",
                8
            ),
            // rev-q2 answered for Q2 (late): it is not Q3's review.
            (
                "2025-09-30",
                i32::from(pb::ComplianceReviewStatus::Upcoming),
                "",
                "",
                0
            ),
            (
                "2025-12-31",
                i32::from(pb::ComplianceReviewStatus::Upcoming),
                "",
                "",
                0
            ),
        ]
    );
    assert_eq!(
        (
            plan.on_time,
            plan.late,
            plan.missed,
            plan.overdue,
            plan.upcoming
        ),
        (1, 1, 0, 0, 2)
    );
    assert_eq!(r.retired_rules.len(), 1);
    assert_eq!(r.retired_rules[0].rule_id, "r-coach");

    // Per owner on 2025-07-01 12:00: dana 1/1 (r-coach retired), lee 0/2, sam 0/1.
    let rollup = client
        .get_compliance_rollup(pb::GetComplianceRollupRequest {
            tenant: globex::TENANT.into(),
            group_by: pb::ComplianceGroupBy::Owner.into(),
            as_of: Some(timestamp_to_proto(at(2025, 7, 1, 12))),
            axis: pb::ComplianceAxis::AsHappenedBy.into(),
            min_position: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rollup
            .groups
            .iter()
            .map(|g| (g.key.as_str(), g.label.as_str(), share(&g.share)))
            .collect::<Vec<_>>(),
        vec![
            ("dana", "Dana Kim", (1, 1, Some(1.0))),
            ("lee", "Lee Chan", (0, 2, Some(0.0))),
            ("sam", "Sam Ortiz", (0, 1, Some(0.0))),
        ]
    );
    assert_eq!(share(&rollup.total), (1, 4, Some(0.25)));
    assert_eq!(
        rollup
            .overdue
            .iter()
            .map(|o| (o.account_id.as_str(), o.rule_id.as_str(), o.days_overdue))
            .collect::<Vec<_>>(),
        vec![
            ("globex", "r-users", 32),
            ("globex", "r-proc", 25),
            ("globex", "r-tech", 15)
        ]
    );

    // Weekly trend of the account, four weeks to 2025-07-01 12:00: 1/5, 0/5, 0/5, 1/4.
    let trend = client
        .get_compliance_trend(pb::GetComplianceTrendRequest {
            tenant: globex::TENANT.into(),
            account_id: globex::ACCOUNT.into(),
            owner: String::new(),
            weeks: 4,
            as_of: Some(timestamp_to_proto(at(2025, 7, 1, 12))),
            axis: 0,
            min_position: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        trend
            .points
            .iter()
            .map(|p| (p.at.unwrap().seconds, share(&p.share)))
            .collect::<Vec<_>>(),
        vec![
            (at(2025, 6, 10, 12).to_parts().0, (1, 5, Some(0.2))),
            (at(2025, 6, 17, 12).to_parts().0, (0, 5, Some(0.0))),
            (at(2025, 6, 24, 12).to_parts().0, (0, 5, Some(0.0))),
            (at(2025, 7, 1, 12).to_parts().0, (1, 4, Some(0.25))),
        ]
    );

    h.stop().await;
}

#[tokio::test]
async fn refusals_name_the_field_or_the_missing_account() {
    let h = Harness::start().await;
    let mut client = h.client.clone();

    let mut request = account_request(2025, 3, 12, 12, pb::ComplianceAxis::AsHappenedBy);
    request.account_id = "nope".into();
    let status = client.get_account_compliance(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("account nope of tenant acme"),
        "{}",
        status.message()
    );

    let mut request = account_request(2025, 3, 12, 12, pb::ComplianceAxis::AsHappenedBy);
    request.tenant = "a.b".into();
    let status = client.get_account_compliance(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("invalid tenant"),
        "{}",
        status.message()
    );

    let mut request = account_request(2025, 3, 12, 12, pb::ComplianceAxis::AsHappenedBy);
    request.axis = 7;
    let status = client.get_account_compliance(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("COMPLIANCE_AXIS_AS_KNOWN_AT"),
        "{}",
        status.message()
    );

    let mut request = account_request(2025, 3, 12, 12, pb::ComplianceAxis::AsHappenedBy);
    request.as_of = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    });
    let status = client.get_account_compliance(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("invalid as_of"),
        "{}",
        status.message()
    );

    let status = client
        .get_compliance_rollup(pb::GetComplianceRollupRequest {
            tenant: globex::TENANT.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("COMPLIANCE_GROUP_BY_UNSPECIFIED (unset)"),
        "{}",
        status.message()
    );

    let status = client
        .get_compliance_trend(pb::GetComplianceTrendRequest {
            tenant: globex::TENANT.into(),
            weeks: 105,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("between 1 and 104"),
        "{}",
        status.message()
    );

    h.stop().await;
}

#[tokio::test]
async fn read_your_writes_waits_for_the_position_or_answers_unavailable() {
    let h = Harness::start().await;
    let mut client = h.client.clone();
    let position = h
        .append(vec![
            AccountRegistered {
                name: "Initech".into(),
                industry: "Software".into(),
                region: "EMEA".into(),
                headquarters: "Austin".into(),
                tier: Tier::Key,
            }
            .into(),
            TeamMemberAssigned {
                person_id: PersonId::parse("kam").unwrap(),
                name: "Kim".into(),
                role: TeamRole::KeyAccountManager,
            }
            .into(),
            StakeholderAdded {
                stakeholder_id: StakeholderId::parse("ceo").unwrap(),
                name: "Bill".into(),
                title: "CEO".into(),
                reports_to: None,
                buying_role: BuyingRole::EconomicBuyer,
                influence: 5,
                attitude: Attitude::Neutral,
            }
            .into(),
            EngagementRuleSet {
                rule_id: RuleId::parse("r-ceo").unwrap(),
                target: RuleTarget::Stakeholder(StakeholderId::parse("ceo").unwrap()),
                owner: PersonId::parse("kam").unwrap(),
                cadence_days: 30,
                channels: vec![Channel::InPerson],
                opportunity_id: None,
            }
            .into(),
        ])
        .await;
    assert_eq!(position, 4);

    // Written a moment ago, read at once (as_of defaults to now): the new rule, never met, due
    // in 30 days.
    let r = client
        .get_account_compliance(pb::GetAccountComplianceRequest {
            tenant: globex::TENANT.into(),
            account_id: "initech".into(),
            as_of: None,
            axis: 0,
            min_position: position,
            explain: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.position >= position);
    assert_eq!(r.rules.len(), 1);
    assert_eq!(
        r.rules[0].status,
        i32::from(pb::ComplianceRuleStatus::NeverMet)
    );
    assert!((29..=30).contains(&r.rules[0].days_until_due));
    // Not late yet, so it counts as on track (the status stays NEVER_MET).
    assert_eq!(share(&r.share), (1, 1, Some(1.0)));

    // A position the log does not have yet: UNAVAILABLE after the 5 s wait.
    let started = std::time::Instant::now();
    let status = client
        .get_account_compliance(pb::GetAccountComplianceRequest {
            tenant: globex::TENANT.into(),
            account_id: "initech".into(),
            as_of: None,
            axis: 0,
            min_position: position + 1000,
            explain: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert!(
        status.message().contains("up to position 4"),
        "{}",
        status.message()
    );

    h.stop().await;
}

#[tokio::test]
async fn explain_says_why_a_rule_met_by_someone_assigned_later_stays_never_met() {
    // The README walk-through case: alice is assigned to the team now, and logs an in-person
    // meeting with the CFO that happened two hours ago, before she was on the team.
    let h = Harness::start().await;
    let mut client = h.client.clone();
    let two_hours_ago = Timestamp::from_parts(Timestamp::now().as_micros() / 1_000_000 - 7200, 0);
    let position = h
        .append(vec![
            AccountRegistered {
                name: "Initech".into(),
                industry: "Software".into(),
                region: "EMEA".into(),
                headquarters: "Austin".into(),
                tier: Tier::Key,
            }
            .into(),
            TeamMemberAssigned {
                person_id: PersonId::parse("alice").unwrap(),
                name: "Alice".into(),
                role: TeamRole::KeyAccountManager,
            }
            .into(),
            StakeholderAdded {
                stakeholder_id: StakeholderId::parse("cfo").unwrap(),
                name: "Lee Park".into(),
                title: "CFO".into(),
                reports_to: None,
                buying_role: BuyingRole::EconomicBuyer,
                influence: 5,
                attitude: Attitude::Neutral,
            }
            .into(),
            EngagementRuleSet {
                rule_id: RuleId::parse("r-cfo").unwrap(),
                target: RuleTarget::Stakeholder(StakeholderId::parse("cfo").unwrap()),
                owner: PersonId::parse("alice").unwrap(),
                cadence_days: 30,
                channels: vec![Channel::InPerson],
                opportunity_id: None,
            }
            .into(),
            InteractionLogged {
                interaction_id: InteractionId::parse("mtg-1").unwrap(),
                details: InteractionDetails {
                    occurred_at: two_hours_ago,
                    channel: Channel::InPerson,
                    stakeholders: vec![StakeholderId::parse("cfo").unwrap()],
                    participants: vec![PersonId::parse("alice").unwrap()],
                    summary: "Met the CFO".into(),
                    sentiment: Sentiment::Positive,
                    next_step: String::new(),
                    opportunity_id: None,
                },
            }
            .into(),
        ])
        .await;
    let request = |explain| pb::GetAccountComplianceRequest {
        tenant: globex::TENANT.into(),
        account_id: "initech".into(),
        as_of: None,
        axis: 0,
        min_position: position,
        explain,
    };

    let plain = client
        .get_account_compliance(request(false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plain.rules.len(), 1);
    assert_eq!(
        plain.rules[0].status,
        i32::from(pb::ComplianceRuleStatus::NeverMet)
    );
    assert!(plain.rules[0].considered.is_empty());

    let explained = client
        .get_account_compliance(request(true))
        .await
        .unwrap()
        .into_inner();
    let rule = &explained.rules[0];
    assert_eq!(rule.status, i32::from(pb::ComplianceRuleStatus::NeverMet));
    assert_eq!(rule.considered.len(), 1, "{:?}", rule.considered);
    let why = &rule.considered[0];
    assert_eq!(why.interaction_id, "mtg-1");
    assert_eq!(why.stakeholder_id, "cfo");
    assert!(!why.qualifies);
    assert_eq!(
        why.reason,
        i32::from(pb::ComplianceNotCountedReason::NoTeamMemberAtTheTime)
    );
    assert_eq!(why.channel, i32::from(pb::Channel::InPerson));
    assert_eq!(why.occurred_at, Some(timestamp_to_proto(two_hours_ago)));
    assert!(
        why.detail.contains("alice: not yet in the team, assigned "),
        "{}",
        why.detail
    );
    // Everything else is as without explain.
    let mut stripped = explained.clone();
    stripped.rules[0].considered.clear();
    stripped.position = plain.position;
    stripped.as_of = plain.as_of;
    assert_eq!(stripped, plain);

    h.stop().await;
}
