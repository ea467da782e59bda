//! The read models end to end: the Globex 2025 fixture (shared/testkit) sent as commands over
//! gRPC to a real all-in-one node, then the read-model services queried and checked against
//! hand-computed answers (the arithmetic is in the services' own fixture tests and in the
//! comments here). Business times are sent with each command, so "as happened by" answers do not
//! depend on when the test runs.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use futures::StreamExt;
use keyplan_proto::convert::{command_to_proto, timestamp_to_proto};
use keyplan_proto::pb;
use keyplan_testkit::{at, globex};

/// Sends every fixture step with its business time and actor; returns the last version.
/// Edits of shared content carry the exact version (the previous step's), as a client would.
async fn load_globex(server: &Server) -> u64 {
    let mut c = server.commands();
    let mut last = 0;
    for step in globex::steps() {
        let expected_version = step
            .command
            .edits_shared_content()
            .then_some(pb::ExpectedVersion {
                kind: Some(pb::expected_version::Kind::Exact(last)),
            });
        let request = pb::ExecuteRequest {
            tenant: globex::TENANT.into(),
            account_id: globex::ACCOUNT.into(),
            expected_version,
            idempotency_key: String::new(),
            actor: step.actor.clone(),
            occurred_at: Some(timestamp_to_proto(step.occurred_at)),
            correlation_id: String::new(),
            causation_id: String::new(),
            command: Some(pb::Command {
                kind: Some(command_to_proto(&step.command)),
            }),
        };
        let response = c.execute(request).await.unwrap_or_else(|status| {
            panic!("fixture step {} refused: {status:?}", step.command.name())
        });
        last = response.into_inner().last_version;
    }
    last
}

fn compliance_request(
    as_of: keyplan_domain::values::Timestamp,
    min_position: u64,
) -> pb::GetAccountComplianceRequest {
    pb::GetAccountComplianceRequest {
        tenant: globex::TENANT.into(),
        account_id: globex::ACCOUNT.into(),
        as_of: Some(timestamp_to_proto(as_of)),
        axis: pb::ComplianceAxis::AsHappenedBy as i32,
        min_position,
        explain: false,
    }
}

#[tokio::test]
async fn the_globex_year_over_grpc_gives_the_hand_computed_answers_and_survives_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    globex_year_over_grpc(&dir.path().join("data"), &[]).await;
}

/// With no memory for accounts' histories, compliance and activity evict every account after
/// each commit and read it back from the store for each query and event: the same answers,
/// also after a restart.
#[tokio::test]
async fn read_models_without_memory_for_histories_answer_the_same_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let no_memory = ["--read-model-memory-mb", "0"];
    let (head, july) = globex_year_over_grpc(&data, &no_memory).await;
    let server = Server::start_with(&data, &no_memory).await;
    let mut compliance =
        pb::compliance_service_client::ComplianceServiceClient::new(server.channel());
    let again = compliance
        .get_account_compliance(compliance_request(at(2025, 7, 1, 12), head))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.share, again.overdue), (july.share, july.overdue));
}

/// Loads the Globex year into a node on `data` started with `extra` arguments, checks the
/// answers of every read model and a rebuild, and stops the node; returns the log's head and
/// compliance on 2025-07-01.
async fn globex_year_over_grpc(
    data: &std::path::Path,
    extra: &[&str],
) -> (u64, pb::AccountCompliance) {
    let server = Server::start_with(data, extra).await;
    let head = load_globex(&server).await;
    assert_eq!(
        head,
        globex::events().len() as u64,
        "one event per step, as the fixture says"
    );

    // Compliance on 2025-07-01 12:00 (r-coach retired at 09:00): r-cfo is the only rule on track
    // (i23 on 06-25 by eve, a team member: due 07-25); overdue: r-users (last i17 04-30, due
    // 05-30: 32 days), r-proc (last i16 04-22, due 06-06: 25 days), r-tech (last i21 06-02,
    // i22 is with an influencer: due 06-16: 15 days). Share 1/4.
    let mut compliance =
        pb::compliance_service_client::ComplianceServiceClient::new(server.channel());
    let july = compliance
        .get_account_compliance(compliance_request(at(2025, 7, 1, 12), head))
        .await
        .unwrap()
        .into_inner();
    let share = july.share.unwrap();
    assert_eq!((share.on_track, share.active), (1, 4));
    let overdue: Vec<(String, u32)> = july
        .overdue
        .iter()
        .map(|o| (o.rule_id.clone(), o.days_overdue))
        .collect();
    assert_eq!(
        overdue,
        [
            ("r-users".into(), 32),
            ("r-proc".into(), 25),
            ("r-tech".into(), 15)
        ]
    );

    // Audit: version 26 is the end of the setup: 4 team members, 8 stakeholders, 5 rules.
    let mut audit = pb::audit_service_client::AuditServiceClient::new(server.channel());
    let v26 = audit
        .get_account_as_of(pb::GetAccountAsOfRequest {
            tenant: globex::TENANT.into(),
            account_id: globex::ACCOUNT.into(),
            point: Some(pb::get_account_as_of_request::Point::Version(26)),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(
        (
            v26.team.len(),
            v26.stakeholders.len(),
            v26.engagement_rules.len()
        ),
        (4, 8, 5)
    );

    // Activity per quarter of 2025 (after the correction of i13): 14 / 9 / 9 / 6 interactions.
    let mut activity = pb::activity_service_client::ActivityServiceClient::new(server.channel());
    let quarters = activity
        .get_activity_counts(pb::GetActivityCountsRequest {
            tenant: globex::TENANT.into(),
            account_id: globex::ACCOUNT.into(),
            period: pb::ActivityPeriod::Quarter as i32,
            dimension: pb::ActivityDimension::Channel as i32,
            from: "2025-01-01".into(),
            to: "2025-12-31".into(),
            min_position: head,
        })
        .await
        .unwrap()
        .into_inner();
    let per_quarter: Vec<u32> = quarters.periods.iter().map(|p| p.interactions).collect();
    assert_eq!(per_quarter, [14, 9, 9, 6]);
    assert_eq!(quarters.total_interactions, 38);
    // The portfolio shows the compliance share from the compliance model. On 2025-12-15 12:00:
    // r-cfo on track (i37 12-01, due 12-31), r-tech on track (i38 12-08, due 12-22: 7 days, more
    // than its 3-day due-soon window), r-proc overdue (i28 08-20, due 10-04), r-users overdue
    // (i35 11-03, due 12-03): 2 of 4.
    let portfolio = activity
        .get_portfolio(pb::GetPortfolioRequest {
            tenant: globex::TENANT.into(),
            as_of: Some(timestamp_to_proto(at(2025, 12, 15, 12))),
            min_position: head,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(portfolio.compliance_available);
    let globex_row = &portfolio.accounts[0];
    assert_eq!(globex_row.weighted_score_milli, Some(7833));
    let compliance_row = globex_row.compliance.unwrap();
    assert_eq!(
        (compliance_row.rules_on_track, compliance_row.active_rules),
        (2, 4)
    );

    // Timeline: 84 entries; the CFO's view has 18 (see the timeline service's fixture tests);
    // the correction (position 40) links to the interaction it corrects (39).
    let mut timeline = pb::timeline_service_client::TimelineServiceClient::new(server.channel());
    let list =
        |scope: Option<pb::list_timeline_request::Scope>, page_size| pb::ListTimelineRequest {
            tenant: globex::TENANT.into(),
            scope,
            ..common::fixtures::timeline_page(globex::ACCOUNT, page_size, String::new(), head)
        };
    let first = timeline
        .list_timeline(list(None, 50))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.entries.len(), 50);
    let mut second = list(None, 50);
    second.page_token = first.next_page_token.clone();
    let second = timeline.list_timeline(second).await.unwrap().into_inner();
    assert_eq!(second.entries.len(), 34);
    let correction = second
        .entries
        .iter()
        .chain(&first.entries)
        .find(|e| e.position == 40)
        .unwrap();
    assert_eq!(correction.corrects_position, 39);
    let cfo = timeline
        .list_timeline(list(
            Some(pb::list_timeline_request::Scope::StakeholderId(
                "cfo".into(),
            )),
            100,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cfo.entries.len(), 18);

    // An online rebuild of the compliance read model gives the same answers.
    let mut operations = server.operations();
    let mut progress = operations
        .rebuild_projections(pb::RebuildProjectionsRequest {
            names: vec!["compliance".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let mut done = false;
    while let Some(update) = progress.next().await {
        let update = update.unwrap();
        assert_eq!(update.error, "", "rebuild failed");
        done |= update.done;
    }
    assert!(done, "the rebuild reports completion");
    let again = compliance
        .get_account_compliance(compliance_request(at(2025, 7, 1, 12), head))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.share, july.share);
    assert_eq!(again.overdue, july.overdue);
    let status = operations
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(status
        .projections
        .iter()
        .any(|p| p.name == "compliance" && p.position == head));
    server.stop().await;
    (head, july)
}

/// A read model that cannot load does not take the node down: commands and the log keep
/// serving, the read-model services answer UNAVAILABLE saying why, and health reports them
/// NOT_SERVING.
#[tokio::test]
async fn a_read_model_that_fails_to_load_leaves_the_rest_of_the_node_serving() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    common::fixtures::onboard(&server, "globex").await;
    server.stop().await;
    // Damage the timeline's stored state behind the node's back: a directory key its
    // loader cannot read.
    {
        let db = keyplan_projection::ReadModelDb::open(
            data.join(keyplan_projection::READ_MODELS_DIR),
            8 << 20,
        )
        .unwrap();
        db.open_tree("timeline")
            .unwrap()
            .insert("d/acme-supplies/globex/not-a-kind/x", [1u8])
            .unwrap();
        db.persist().unwrap();
    }

    let server = Server::start_listening(&data).await;
    let request = common::fixtures::timeline_page("globex", 10, String::new(), 0);
    let mut timeline = pb::timeline_service_client::TimelineServiceClient::new(server.channel());
    // Loading may still be under way at first ("still loading"); it fails within moments.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let refusal = loop {
        let status = timeline
            .list_timeline(request.clone())
            .await
            .expect_err("a timeline that failed to load answers nothing");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        if status.message().contains("failed to load") {
            break status;
        }
        assert!(status.message().contains("still loading"), "{status:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "still loading after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(refusal.message().contains("timeline"), "{refusal:?}");

    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let timeline_health = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "keyplan.v1.TimelineService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        timeline_health.status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );

    // Nothing to rebuild: the operator is told why rather than given an empty answer.
    let refused = server
        .operations()
        .rebuild_projections(pb::RebuildProjectionsRequest { names: vec![] })
        .await
        .expect_err("no projections to rebuild");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("failed to load"), "{refused:?}");

    // The write path and the log serve regardless.
    let outcome = server
        .commands()
        .execute(common::fixtures::request(
            "globex",
            common::fixtures::interaction("call-1", "cfo", 3600),
        ))
        .await
        .expect("commands are served while the read models are down")
        .into_inner();
    assert!(outcome.last_position > 0, "{outcome:?}");
    server.stop().await;
}

/// A data directory from before the read models moved to fjall holds them in a sled database,
/// `<data dir>/projections`: the node removes it and rebuilds them from the log into
/// `<data dir>/read-models`, and they answer as before.
#[tokio::test]
async fn read_models_of_the_former_sled_database_are_rebuilt_into_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    common::fixtures::onboard(&server, "globex").await;
    let head = common::head(&server).await;
    common::wait_projected(&server, head).await;
    server.stop().await;

    // What sled leaves in a database directory (its settings file and its data file), with
    // nothing the new store could read; and no new database at all.
    std::fs::remove_dir_all(data.join(keyplan_projection::READ_MODELS_DIR)).unwrap();
    let legacy = data.join("projections");
    std::fs::create_dir_all(legacy.join("blobs")).unwrap();
    std::fs::write(legacy.join("conf"), b"segment_size: 524288\n").unwrap();
    std::fs::write(legacy.join("db"), vec![0u8; 4096]).unwrap();

    let server = Server::start(&data).await;
    common::wait_projected(&server, head).await;
    assert!(!legacy.exists(), "the former sled database is removed");
    assert!(data.join(keyplan_projection::READ_MODELS_DIR).is_dir());
    let page = pb::timeline_service_client::TimelineServiceClient::new(server.channel())
        .list_timeline(common::fixtures::timeline_page(
            "globex",
            100,
            String::new(),
            head,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.entries.len() as u64,
        head,
        "one entry per event, rebuilt"
    );
    server.stop().await;
}
