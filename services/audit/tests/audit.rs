//! The audit service on the Globex year (see `keyplan_testkit::globex`), in a real event store.
//!
//! Versions of the Globex stream used below, from the fixture's recorded order (one event per
//! step):
//! - 1 registered; 2-5 team; 6 plan-2025 drafted; 7-14 stakeholders; 15-19 engagement rules;
//!   20 tier assessed; 21 opp-coatings; 22 obj-share; 23-26 reviews rev-q1..rev-q4 scheduled
//!   (all on 2025-01-02 09:00).
//! - 27-37 interactions i01-i11; 38 i12 (happened 03-10, logged 03-14); 39 i13; 40 i13
//!   corrected (lee); 41 i14; **42 rev-q1 outcome** (dana, 03-28 16:00, follow-up a-proc).
//! - 43 opp-solvents (lee), 44 Q1 revenue (dana), 45 risks section revised (dana), all
//!   04-01 09:00; 46 a-demo added (sam); 47 i15; 48 i16; 49 a-proc completed (lee); 50 i17;
//!   51 i18; 52 i19; 53 opp-coatings to proposal (lee); 54 i20; 55 a-demo completed (sam);
//!   56 i21; 57 cto's attitude neutral -> supporter (lee, 06-02 11:00); 58 i22; 59 i23;
//!   60 r-coach retired (dana), 61 Q2 revenue (dana), both 07-01 09:00; 62 i24;
//!   **63 rev-q2 outcome** (dana); 64 i25; 65 i26; 66 opp-coatings to negotiation (lee);
//!   67-71 i27-i31; 72 opp-coatings won (lee, 09-20); 73 i32; **74 rev-q3 outcome** (dana).
//! - 75 opp-digital, 76 Q3 revenue, 77 risks revised again (10-01); 78 i33; 79 i34 (happened
//!   10-20, logged 10-27); 80 i35; 81 i36; 82 opp-solvents lost; 83 i37; 84 i38.

mod common;

use common::{globex_stream, open, Fixture, GLOBEX_EVENTS};
use keyplan_audit_service::AuditApi;
use keyplan_domain::events::{InteractionDetails, InteractionLogged};
use keyplan_domain::ids::{InteractionId, PersonId, StakeholderId};
use keyplan_domain::values::{Channel, Sentiment, Timestamp};
use keyplan_domain::AccountEvent;
use keyplan_projection::ProjectedEvent;
use keyplan_proto::convert::timestamp_to_proto;
use keyplan_proto::pb;
use keyplan_proto::pb::audit_service_client::AuditServiceClient;
use keyplan_proto::pb::audit_service_server::{AuditService, AuditServiceServer};
use keyplan_testkit::{at, globex};
use tonic::{Code, Request, Response, Status};

use pb::diff_account_request::Range;
use pb::get_account_as_of_request::Point;

// ---------------------------------------------------------------- helpers

async fn as_of(api: &AuditApi, point: Option<Point>) -> Result<pb::AsOfResponse, Status> {
    api.get_account_as_of(Request::new(pb::GetAccountAsOfRequest {
        tenant: globex::TENANT.into(),
        account_id: globex::ACCOUNT.into(),
        point,
    }))
    .await
    .map(Response::into_inner)
}

async fn diff(api: &AuditApi, range: Option<Range>) -> Result<pb::DiffAccountResponse, Status> {
    api.diff_account(Request::new(pb::DiffAccountRequest {
        tenant: globex::TENANT.into(),
        account_id: globex::ACCOUNT.into(),
        range,
    }))
    .await
    .map(Response::into_inner)
}

fn versions(from: u64, to: u64) -> Option<Range> {
    Some(Range::Versions(pb::DiffVersionRange {
        from_version: from,
        to_version: to,
    }))
}

fn reviews(from: &str, to: &str) -> Option<Range> {
    Some(Range::Reviews(pb::DiffReviewRange {
        from_review_id: from.into(),
        to_review_id: to.into(),
    }))
}

async fn verify(api: &AuditApi) -> pb::VerifyAccountResponse {
    api.verify_account(Request::new(pb::VerifyAccountRequest {
        tenant: globex::TENANT.into(),
        account_id: globex::ACCOUNT.into(),
    }))
    .await
    .map(Response::into_inner)
    .expect("verification runs")
}

async fn export(api: &AuditApi, from_version: u64) -> Result<Vec<pb::ExportChunk>, Status> {
    use futures::StreamExt;
    let mut stream = api
        .export_account(Request::new(pb::ExportAccountRequest {
            tenant: globex::TENANT.into(),
            account_id: globex::ACCOUNT.into(),
            from_version,
        }))
        .await?
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk?);
    }
    Ok(chunks)
}

/// The export's lines, parsed.
fn lines(chunks: &[pb::ExportChunk]) -> Vec<serde_json::Value> {
    chunks
        .iter()
        .flat_map(|c| {
            let text = std::str::from_utf8(&c.jsonl).expect("UTF-8 JSON lines");
            assert!(text.is_empty() || text.ends_with('\n'), "whole lines only");
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON object"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_owned()).collect()
}

fn micros(t: Option<&prost_types::Timestamp>) -> Timestamp {
    t.map(|t| keyplan_proto::convert::timestamp_from_proto(*t))
        .unwrap_or(Timestamp(i64::MIN))
}

fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, needle: &str) {
    let status = result.expect_err("the request is refused");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(
        status.message().contains(needle),
        "{:?} should mention {needle:?}",
        status.message()
    );
}

/// A late-logged interaction appended to Globex as version 85: happened 2025-06-10 10:00.
fn backdated_interaction() -> ProjectedEvent {
    ProjectedEvent {
        position: 85,
        event_id: uuid::Uuid::now_v7(),
        tenant: globex::TENANT.into(),
        account: globex::ACCOUNT.into(),
        stream_version: 85,
        recorded_at: at(2025, 12, 20, 9),
        occurred_at: at(2025, 6, 10, 10),
        actor: "sam".into(),
        event: AccountEvent::InteractionLogged(InteractionLogged {
            interaction_id: InteractionId::parse("i39").expect("valid id"),
            details: InteractionDetails {
                occurred_at: at(2025, 6, 10, 10),
                channel: Channel::SiteVisit,
                stakeholders: vec![StakeholderId::parse("ops").expect("valid id")],
                participants: vec![PersonId::parse("sam").expect("valid id")],
                summary: "Plant walk-through (logged late)".into(),
                sentiment: Sentiment::Positive,
                next_step: String::new(),
                opportunity_id: None,
            },
        }),
    }
}

#[test]
fn the_version_map_above_matches_the_fixture() {
    let events = globex::events();
    assert_eq!(events.len() as u64, GLOBEX_EVENTS);
    let at_version = |v: usize| events[v - 1].event.event_type();
    assert_eq!(at_version(26), "ReviewScheduled");
    assert_eq!(at_version(40), "InteractionCorrected");
    assert_eq!(at_version(42), "ReviewOutcomeRecorded");
    assert_eq!(at_version(45), "PlanSectionRevised");
    assert_eq!(at_version(57), "StakeholderProfileChanged");
    assert_eq!(at_version(60), "EngagementRuleRetired");
    assert_eq!(at_version(63), "ReviewOutcomeRecorded");
    assert_eq!(at_version(72), "OpportunityWon");
    assert_eq!(at_version(74), "ReviewOutcomeRecorded");
    assert_eq!(at_version(79), "InteractionLogged");
    assert_eq!(events[78].occurred_at, at(2025, 10, 20, 10));
}

// ---------------------------------------------------------------- as of

#[tokio::test]
async fn as_of_a_version_is_the_account_after_exactly_that_many_events() {
    let fx = Fixture::globex().await;

    // Version 26: the setup of 2025-01-02 and nothing else.
    let r = as_of(&fx.api, Some(Point::Version(26)))
        .await
        .expect("version 26");
    assert_eq!(
        (r.version, r.events_applied, r.stream_version),
        (26, 26, 84)
    );
    let a = r.account.expect("an account");
    assert_eq!(a.version, 26);
    assert_eq!(a.name, "Globex Corporation");
    assert_eq!(
        ids(&a.team, |m| &m.person_id),
        ["dana", "eve", "lee", "sam"]
    );
    assert_eq!(
        ids(&a.stakeholders, |s| &s.stakeholder_id),
        ["cfo", "coach", "cto", "eng", "legal", "ops", "proc", "qa"]
    );
    assert_eq!(a.engagement_rules.len(), 5);
    assert!(a.engagement_rules.iter().all(|r| !r.retired));
    assert!(a.interactions.is_empty());
    assert_eq!(a.reviews.len(), 4);
    assert!(a
        .reviews
        .iter()
        .all(|r| r.status == pb::ReviewStatus::Scheduled as i32));
    assert_eq!(a.plans.len(), 1);
    assert!(a.plans[0].sections.is_empty());
    assert_eq!(
        a.last_assessment.as_ref().map(|t| t.weighted_score_milli),
        Some(7833)
    );
    assert!(a.action_items.is_empty() && a.revenue.is_empty());
    assert_eq!(micros(r.version_recorded_at.as_ref()), fx.recorded_at(26));
    assert!(r.point.starts_with("version 26 of 84"), "{}", r.point);

    // Version 42: after the Q1 review. i01-i14 logged, i13 corrected, a-proc open.
    let r = as_of(&fx.api, Some(Point::Version(42)))
        .await
        .expect("version 42");
    let a = r.account.expect("an account");
    assert_eq!(a.interactions.len(), 14);
    let i13 = a
        .interactions
        .iter()
        .find(|i| i.interaction_id == "i13")
        .expect("i13");
    assert_eq!(i13.corrections, 1);
    // The account's state keeps the facts and a hash of the content, not the text (GetAccount's
    // bounded answer); the corrected text is in the log, and in DiffAccount.
    assert_eq!(i13.details.as_ref().map(|d| d.summary.as_str()), Some(""));
    assert_eq!(i13.content_sha256.len(), 32);
    let held: Vec<&str> = a
        .reviews
        .iter()
        .filter(|r| r.status == pb::ReviewStatus::Held as i32)
        .filter_map(|r| r.scheduled.as_ref().map(|s| s.review_id.as_str()))
        .collect();
    assert_eq!(held, ["rev-q1"]);
    assert_eq!(
        ids(&a.action_items, |i| i
            .added
            .as_ref()
            .map_or("", |a| a.action_item_id.as_str())),
        ["a-proc"]
    );
    assert_eq!(a.action_items[0].status, pb::ActionItemStatus::Open as i32);
    let cto = a
        .stakeholders
        .iter()
        .find(|s| s.stakeholder_id == "cto")
        .expect("cto");
    assert_eq!(cto.attitude, pb::Attitude::Neutral as i32);
}

#[tokio::test]
async fn as_of_a_recorded_instant_is_what_keyplan_knew_then() {
    let fx = Fixture::globex().await;
    let (before, at_57) = (fx.recorded_at(56), fx.recorded_at(57));
    assert!(
        before < at_57,
        "separate appends get increasing recorded times"
    );

    // At the instant version 57 (cto turns supporter) was recorded: versions 1-57.
    let r = as_of(&fx.api, Some(Point::RecordedAt(timestamp_to_proto(at_57))))
        .await
        .expect("known then");
    assert_eq!((r.version, r.events_applied), (57, 57));
    let attitude = |r: &pb::AsOfResponse| {
        r.account
            .as_ref()
            .and_then(|a| a.stakeholders.iter().find(|s| s.stakeholder_id == "cto"))
            .map(|s| s.attitude)
    };
    assert_eq!(attitude(&r), Some(pb::Attitude::Supporter as i32));
    assert!(r.point.contains("versions 1-57 of 84"), "{}", r.point);

    // One microsecond earlier Keyplan did not know it yet.
    let r = as_of(
        &fx.api,
        Some(Point::RecordedAt(timestamp_to_proto(Timestamp(
            at_57.as_micros() - 1,
        )))),
    )
    .await
    .expect("known then");
    assert_eq!(r.version, 56);
    assert_eq!(attitude(&r), Some(pb::Attitude::Neutral as i32));

    // Before the first event, the account did not exist.
    let first = fx.recorded_at(1);
    expect_code(
        as_of(
            &fx.api,
            Some(Point::RecordedAt(timestamp_to_proto(Timestamp(
                first.as_micros() - 1,
            )))),
        )
        .await,
        Code::NotFound,
        "its first event was recorded at",
    );
}

#[tokio::test]
async fn as_of_a_business_instant_includes_late_entries_and_skips_later_happenings() {
    let fx = Fixture::globex().await;

    // 2025-03-12: i12 happened on 03-10 but was logged on 03-14; the business view has it.
    let r = as_of(
        &fx.api,
        Some(Point::OccurredAt(timestamp_to_proto(at(2025, 3, 12, 0)))),
    )
    .await
    .expect("happened by then");
    assert_eq!((r.version, r.events_applied), (38, 38));
    let a = r.account.expect("an account");
    assert_eq!(a.interactions.len(), 12);
    // Newest first.
    assert_eq!(
        a.interactions.first().map(|i| i.interaction_id.as_str()),
        Some("i12")
    );

    // A site visit of 2025-06-10 logged in December (version 85): at 2025-06-20 the business
    // view is versions 1-58 (up to i22 of 06-16) plus version 85, not a prefix.
    fx.append(&backdated_interaction()).await;
    let r = as_of(
        &fx.api,
        Some(Point::OccurredAt(timestamp_to_proto(at(2025, 6, 20, 0)))),
    )
    .await
    .expect("happened by then");
    assert_eq!(
        (r.version, r.events_applied, r.stream_version),
        (85, 59, 85)
    );
    let a = r.account.expect("an account");
    assert_eq!(a.version, 85);
    let logged = ids(&a.interactions, |i| &i.interaction_id);
    assert_eq!(logged.len(), 23);
    assert!(logged.contains(&"i39".to_owned()) && logged.contains(&"i22".to_owned()));
    assert!(!logged.contains(&"i23".to_owned()));
    assert!(r.point.contains("59 of the 85 events"), "{}", r.point);

    // Before anything happened.
    expect_code(
        as_of(
            &fx.api,
            Some(Point::OccurredAt(timestamp_to_proto(at(2025, 1, 1, 0)))),
        )
        .await,
        Code::NotFound,
        "none of its 85 events had occurred by then, the earliest occurred at 2025-01-02T09:00:00Z",
    );
}

#[tokio::test]
async fn as_of_refuses_what_cannot_be_answered() {
    let fx = Fixture::globex().await;
    expect_code(
        as_of(&fx.api, None).await,
        Code::InvalidArgument,
        "point is required",
    );
    expect_code(
        as_of(&fx.api, Some(Point::Version(0))).await,
        Code::InvalidArgument,
        "at least 1",
    );
    expect_code(
        as_of(&fx.api, Some(Point::Version(85))).await,
        Code::NotFound,
        "version 85 does not exist: account acme/globex has 84 events",
    );
    expect_code(
        as_of(
            &fx.api,
            Some(Point::OccurredAt(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            })),
        )
        .await,
        Code::InvalidArgument,
        "occurred_at",
    );
    let unknown = fx
        .api
        .get_account_as_of(Request::new(pb::GetAccountAsOfRequest {
            tenant: "acme".into(),
            account_id: "initech".into(),
            point: Some(Point::Version(1)),
        }))
        .await;
    expect_code(
        unknown,
        Code::NotFound,
        "account initech has no events for tenant acme",
    );
    let malformed = fx
        .api
        .get_account_as_of(Request::new(pb::GetAccountAsOfRequest {
            tenant: "ac me".into(),
            account_id: "globex".into(),
            point: Some(Point::Version(1)),
        }))
        .await;
    expect_code(malformed, Code::InvalidArgument, "invalid tenant");
}

// ---------------------------------------------------------------- diff

/// (area, entity, kind) of each change.
fn shape(d: &pb::DiffAccountResponse) -> Vec<(pb::AuditArea, String, pb::AuditChangeKind)> {
    d.changes
        .iter()
        .map(|c| {
            (
                pb::AuditArea::try_from(c.area).expect("a known area"),
                c.entity_id.clone(),
                pb::AuditChangeKind::try_from(c.kind).expect("a known kind"),
            )
        })
        .collect()
}

fn change<'a>(d: &'a pb::DiffAccountResponse, entity: &str) -> &'a pb::AuditChange {
    d.changes
        .iter()
        .find(|c| c.entity_id == entity)
        .unwrap_or_else(|| panic!("a change of {entity}"))
}

/// (field, old, new, actor, version) of each field change.
fn fields(c: &pb::AuditChange) -> Vec<(&str, &str, &str, &str, u64)> {
    c.fields
        .iter()
        .map(|f| {
            let by = f.changed_by.as_ref().expect("attributed");
            (
                f.field.as_str(),
                f.old_value.as_str(),
                f.new_value.as_str(),
                by.actor.as_str(),
                by.version,
            )
        })
        .collect()
}

#[tokio::test]
async fn diff_between_the_q1_and_q3_reviews_lists_exactly_the_net_changes_and_their_authors() {
    use pb::AuditArea as A;
    use pb::AuditChangeKind::{Added, Changed};
    let fx = Fixture::globex().await;
    let d = diff(&fx.api, reviews("rev-q1", "rev-q3"))
        .await
        .expect("a diff");

    assert_eq!((d.from_version, d.to_version), (42, 74));
    assert_eq!(
        d.range,
        "versions 42-74 (outcome of review rev-q1 to outcome of review rev-q3)"
    );
    // The events in between: 43..=74.
    assert_eq!(d.events.len(), 32);
    assert_eq!(d.events_omitted, 0);
    assert_eq!(
        d.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        (43..=74).collect::<Vec<_>>()
    );
    let first = &d.events[0];
    assert_eq!(
        (
            first.event_type.as_str(),
            first.actor.as_str(),
            first.global_position
        ),
        ("OpportunityIdentified", "lee", 43)
    );
    assert_eq!(micros(first.occurred_at.as_ref()), at(2025, 4, 1, 9));
    assert_eq!(micros(first.recorded_at.as_ref()), fx.recorded_at(43));
    assert!(
        first
            .description
            .starts_with("opportunity opp-solvents identified: \"Solvents\""),
        "{}",
        first.description
    );
    assert_eq!(
        d.events[31].description,
        "review rev-q3 held on 2025-09-26: approved, health green, 1 decision(s), 0 follow-up action(s)"
    );

    // The net changes, by area then id.
    let mut expected = vec![
        (A::Plan, "plan-2025".to_owned(), Changed),
        (A::Opportunity, "opp-coatings".to_owned(), Changed),
        (A::Opportunity, "opp-solvents".to_owned(), Added),
        (A::ActionItem, "a-demo".to_owned(), Added),
        (A::ActionItem, "a-proc".to_owned(), Changed),
        (A::Revenue, "1".to_owned(), Added),
        (A::Revenue, "2".to_owned(), Added),
        (A::Stakeholder, "cto".to_owned(), Changed),
        (A::EngagementRule, "r-coach".to_owned(), Changed),
    ];
    expected.extend((15..=32).map(|i| (A::Interaction, format!("i{i}"), Added)));
    expected.push((A::Review, "rev-q2".to_owned(), Changed));
    expected.push((A::Review, "rev-q3".to_owned(), Changed));
    assert_eq!(shape(&d), expected);

    // Who changed what, and when.
    let plan = change(&d, "plan-2025");
    assert_eq!(
        fields(plan),
        [(
            "section.risks",
            "",
            "Procurement pushes for a second supplier.",
            "dana",
            45
        )]
    );
    let by = plan.last_changed_by.as_ref().expect("attributed");
    assert_eq!(by.event_type, "PlanSectionRevised");
    assert_eq!(micros(by.occurred_at.as_ref()), at(2025, 4, 1, 9));
    assert_eq!(micros(by.recorded_at.as_ref()), fx.recorded_at(45));
    assert_eq!(
        plan.description,
        "plan plan-2025 revised: section.risks (none) -> Procurement pushes for a second supplier."
    );

    // Three stage changes, one net change: qualified -> won, credited to the win (v72).
    let coatings = change(&d, "opp-coatings");
    assert_eq!(
        fields(coatings),
        [
            ("status", "qualified", "won", "lee", 72),
            ("won_value", "", "EUR 240000.00", "lee", 72),
            ("closed_on", "", "2025-09-20", "lee", 72),
            ("close_reason", "", "Best total cost", "lee", 72),
        ]
    );
    assert!(coatings
        .description
        .starts_with("opportunity opp-coatings won: status qualified -> won"));

    let solvents = change(&d, "opp-solvents");
    assert_eq!(
        solvents.description,
        "opportunity opp-solvents identified: Solvents, EUR 80000.00"
    );
    assert!(fields(solvents).iter().all(|f| f.3 == "lee" && f.4 == 43));

    let demo = change(&d, "a-demo");
    assert_eq!(
        demo.description,
        "action item a-demo added: Run coatings demo (since completed)"
    );
    let demo_fields = fields(demo);
    assert!(demo_fields.contains(&("title", "", "Run coatings demo", "sam", 46)));
    assert!(demo_fields.contains(&("status", "", "completed", "sam", 55)));
    assert!(demo_fields.contains(&("completed_on", "", "2025-05-28", "sam", 55)));
    assert_eq!(demo.last_changed_by.as_ref().map(|a| a.version), Some(55));

    assert_eq!(
        fields(change(&d, "a-proc")),
        [
            ("status", "open", "completed", "lee", 49),
            ("completed_on", "", "2025-04-25", "lee", 49),
        ]
    );

    let q1 = d
        .changes
        .iter()
        .find(|c| c.area == A::Revenue as i32 && c.entity_id == "1")
        .expect("Q1 revenue");
    assert_eq!(
        q1.description,
        "revenue record 1 recorded: 2025-01-01 to 2025-03-31, EUR 1100000.00"
    );
    assert!(fields(q1).contains(&("margin", "", "22.00 %", "dana", 44)));

    let cto = change(&d, "cto");
    assert_eq!(
        fields(cto),
        [("attitude", "neutral", "supporter", "lee", 57)]
    );
    assert_eq!(
        cto.description,
        "stakeholder cto changed: attitude neutral -> supporter"
    );
    assert_eq!(
        micros(
            cto.last_changed_by
                .as_ref()
                .and_then(|a| a.occurred_at.as_ref())
        ),
        at(2025, 6, 2, 11)
    );

    let coach = change(&d, "r-coach");
    assert_eq!(
        fields(coach),
        [
            ("status", "active", "retired", "dana", 60),
            (
                "retire_reason",
                "",
                "coaching now runs through r-cfo",
                "dana",
                60
            ),
        ]
    );
    assert_eq!(
        coach.description,
        "engagement rule r-coach retired: status active -> retired; retire_reason (none) -> coaching now runs through r-cfo"
    );

    let i15 = change(&d, "i15");
    assert_eq!(
        i15.description,
        "interaction i15 logged: video call, 2025-04-14T10:00:00Z"
    );
    assert!(fields(i15).iter().all(|f| f.3 == "sam" && f.4 == 47));

    let q2 = change(&d, "rev-q2");
    assert_eq!(
        fields(q2),
        [
            ("status", "scheduled", "held", "dana", 63),
            ("held_on", "", "2025-07-08", "dana", 63),
            ("supplier_attendees", "", "dana, eve", "dana", 63),
            ("outcome", "", "approved", "dana", 63),
            ("health", "", "green", "dana", 63),
        ]
    );
    assert!(q2
        .description
        .starts_with("review rev-q2 held: status scheduled -> held"));
    let q3 = change(&d, "rev-q3");
    assert!(fields(q3).contains(&("decisions", "", "Expand to digital services", "dana", 74)));
}

#[tokio::test]
async fn a_review_range_is_the_version_range_between_their_outcomes() {
    let fx = Fixture::globex().await;
    let by_reviews = diff(&fx.api, reviews("rev-q1", "rev-q3"))
        .await
        .expect("a diff");
    let by_versions = diff(&fx.api, versions(42, 74)).await.expect("a diff");
    assert_eq!(by_versions.range, "versions 42-74");
    assert_eq!(by_reviews.events, by_versions.events);
    assert_eq!(by_reviews.changes, by_versions.changes);

    // The same review twice: nothing in between.
    let none = diff(&fx.api, reviews("rev-q2", "rev-q2"))
        .await
        .expect("a diff");
    assert_eq!((none.from_version, none.to_version), (63, 63));
    assert!(none.events.is_empty() && none.changes.is_empty());
}

#[tokio::test]
async fn diff_of_the_whole_history_adds_every_entity_and_credits_every_field() {
    let fx = Fixture::globex().await;
    // to_version 0: up to the current version.
    let d = diff(&fx.api, versions(0, 0)).await.expect("a diff");
    assert_eq!((d.from_version, d.to_version), (0, 84));
    assert_eq!(d.events.len(), 84);
    // profile 1, assessment 1, team 4, plan 1, objective 1, opportunities 3, action items 2,
    // revenue 3, stakeholders 8, rules 5, interactions 38, reviews 4.
    let count = |area: pb::AuditArea| d.changes.iter().filter(|c| c.area == area as i32).count();
    use pb::AuditArea as A;
    assert_eq!(
        [
            A::Profile,
            A::TierAssessment,
            A::Team,
            A::Plan,
            A::Objective,
            A::Opportunity,
            A::ActionItem,
            A::Revenue,
            A::Stakeholder,
            A::EngagementRule,
            A::Interaction,
            A::Review
        ]
        .map(count),
        [1, 1, 4, 1, 1, 3, 2, 3, 8, 5, 38, 4]
    );
    assert!(d
        .changes
        .iter()
        .all(|c| c.kind == pb::AuditChangeKind::Added as i32));
    // Every field is credited to an event of the stream, never to nobody.
    for c in &d.changes {
        for f in &c.fields {
            let by = f.changed_by.as_ref().unwrap_or_else(|| panic!("{c:?}"));
            assert!((1..=84).contains(&by.version));
        }
    }
    // The risks section was revised twice (v45 and v77): the later text, by the later event.
    let plan = change(&d, "plan-2025");
    let risks = plan
        .fields
        .iter()
        .find(|f| f.field == "section.risks")
        .expect("risks");
    assert_eq!(
        risks.new_value,
        "Procurement pushes for a second supplier; solvents pricing under pressure."
    );
    assert_eq!(risks.changed_by.as_ref().map(|a| a.version), Some(77));
    let period = plan
        .fields
        .iter()
        .find(|f| f.field == "period")
        .expect("period");
    assert_eq!(
        period.new_value,
        "calendar year from 2025-01-01 to 2025-12-31"
    );
    assert_eq!(period.changed_by.as_ref().map(|a| a.version), Some(6));
    assert_eq!(
        change(&d, "").description,
        "account registered: Globex Corporation, key"
    );
}

#[tokio::test]
async fn diff_ranges_are_checked_with_actionable_messages() {
    let fx = Fixture::globex().await;
    expect_code(
        diff(&fx.api, None).await,
        Code::InvalidArgument,
        "range is required",
    );
    expect_code(
        diff(&fx.api, versions(50, 40)).await,
        Code::InvalidArgument,
        "put the earlier version first",
    );
    expect_code(
        diff(&fx.api, versions(90, 0)).await,
        Code::NotFound,
        "versions.from_version 90 does not exist: account acme/globex has 84 events",
    );
    expect_code(
        diff(&fx.api, versions(1, 85)).await,
        Code::NotFound,
        "versions.to_version 85 does not exist: account acme/globex has 84 events",
    );
    expect_code(
        diff(&fx.api, reviews("rev-q1", "rev-q4")).await,
        Code::NotFound,
        "review rev-q4 (reviews.to_review_id) of account acme/globex has no recorded outcome (it is scheduled)",
    );
    expect_code(
        diff(&fx.api, reviews("rev-q9", "rev-q3")).await,
        Code::NotFound,
        "its reviews with a recorded outcome are: rev-q1 (version 42), rev-q2 (version 63), rev-q3 (version 74)",
    );
    expect_code(
        diff(&fx.api, reviews("rev-q3", "rev-q1")).await,
        Code::InvalidArgument,
        "review rev-q3's outcome (version 74) was recorded after review rev-q1's (version 42)",
    );
    expect_code(
        diff(&fx.api, reviews("", "rev-q1")).await,
        Code::InvalidArgument,
        "reviews.from_review_id",
    );
}

// ---------------------------------------------------------------- verify and export

#[tokio::test]
async fn verify_and_export_agree_on_an_intact_chain() {
    let fx = Fixture::globex().await;
    let v = verify(&fx.api).await;
    assert!(v.intact, "{}", v.detail);
    assert_eq!(
        (v.events_checked, v.first_broken_version, v.stream_version),
        (84, 0, 84)
    );
    assert_eq!(v.detail, "all 84 events verified");
    assert_eq!(v.last_hash, hex::encode(fx.recorded(84).hash));

    let chunks = export(&fx.api, 0).await.expect("an export");
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        (
            chunks[0].events,
            chunks[0].first_version,
            chunks[0].last_version
        ),
        (84, 1, 84)
    );
    let lines = lines(&chunks);
    assert_eq!(lines.len(), 84);
    // The chain links: version 1 starts from zeros, each line continues the previous one, and
    // the last hash is the one VerifyAccount reports.
    let mut prev = "0".repeat(64);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["stream_version"], i as u64 + 1);
        assert_eq!(line["prev_hash"], prev.as_str(), "version {}", i + 1);
        prev = line["hash"].as_str().expect("a hex hash").to_owned();
        assert_eq!(prev.len(), 64);
    }
    assert_eq!(prev, v.last_hash);

    // Every piece of metadata, and the decoded event.
    let first = &lines[0];
    let stored = fx.recorded(1);
    assert_eq!(first["event_id"], stored.event_id.to_string().as_str());
    assert_eq!(first["tenant"], "acme");
    assert_eq!(first["account_id"], "globex");
    assert_eq!(first["global_position"], 1);
    assert_eq!(first["occurred_at"], "2025-01-02T09:00:00.000000Z");
    assert_eq!(first["actor"], "dana");
    assert_eq!(
        first["correlation_id"],
        stored.correlation_id.to_string().as_str()
    );
    assert!(first["causation_id"].is_null() && first["idempotency_key"].is_null());
    assert_eq!(first["event_type"], "AccountRegistered");
    assert_eq!(first["schema_version"], 1);
    assert_eq!(
        first["event"],
        serde_json::json!({"AccountRegistered": {
            "name": "Globex Corporation", "industry": "Chemicals", "region": "EMEA",
            "headquarters": "Rotterdam", "tier": "Key"
        }})
    );
    let recorded_at = first["recorded_at"].as_str().expect("an instant");
    let parsed = chrono::DateTime::parse_from_rfc3339(recorded_at).expect("RFC 3339");
    assert_eq!(parsed.timestamp_micros(), stored.recorded_at_micros);
    // The correction (v40) carries its corrected content; interactions are schema version 2.
    assert_eq!(lines[39]["event_type"], "InteractionCorrected");
    assert_eq!(lines[39]["schema_version"], 2);
    assert_eq!(
        lines[39]["event"]["InteractionCorrected"]["details"]["summary"],
        "Architecture review (corrected)"
    );
    // Fixed field order, as documented.
    let raw = std::str::from_utf8(&chunks[0].jsonl).expect("UTF-8");
    let first_line = raw.lines().next().expect("a line");
    let order = [
        "event_id",
        "tenant",
        "account_id",
        "stream_version",
        "global_position",
        "recorded_at",
        "occurred_at",
        "actor",
        "correlation_id",
        "causation_id",
        "idempotency_key",
        "event_type",
        "schema_version",
        "prev_hash",
        "hash",
        "event",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|k| {
            first_line
                .find(&format!("\"{k}\":"))
                .expect("the key is there")
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{first_line}");

    // Exporting twice gives the same bytes.
    let again = export(&fx.api, 0).await.expect("an export");
    assert_eq!(again, chunks);
}

#[tokio::test]
async fn tampering_with_a_stored_event_is_detected_at_its_version() {
    let fx = Fixture::globex().await;
    let intact_hash = verify(&fx.api).await.last_hash;
    let (_dir, path) = fx.close();
    // Version 45 (position 45): the first revision of the risks section.
    keyplan_store::tamper::flip_payload_byte(&path, 45).expect("tampered");
    let store = open(&path);
    let api = AuditApi::new(store.clone());
    let v = verify(&api).await;
    assert!(!v.intact);
    assert_eq!((v.first_broken_version, v.events_checked), (45, 45));
    assert!(
        v.detail.contains("altered after it was written"),
        "{}",
        v.detail
    );
    assert_eq!(
        v.last_hash,
        hex::encode(
            store
                .read_stream(&globex_stream(), 44, keyplan_store::Direction::Forward, 1)
                .expect("readable")
                .events[0]
                .hash
        )
    );
    assert_ne!(v.last_hash, intact_hash);
}

#[tokio::test]
async fn exports_stream_in_chunks_of_256_events_and_resume_from_a_version() {
    let fx = Fixture::globex().await;
    // Pad the stream to 600 events with copies of i01 (the store does not interpret them).
    let template = globex::events()[26].clone();
    for version in 85..=600 {
        let mut e = template.clone();
        e.event_id = uuid::Uuid::now_v7();
        e.stream_version = version;
        fx.append(&e).await;
    }
    let sizes = |chunks: &[pb::ExportChunk]| {
        chunks
            .iter()
            .map(|c| (c.events, c.first_version, c.last_version))
            .collect::<Vec<_>>()
    };
    let all = export(&fx.api, 1).await.expect("an export");
    assert_eq!(
        sizes(&all),
        [(256, 1, 256), (256, 257, 512), (88, 513, 600)]
    );
    let lines = lines(&all);
    assert_eq!(lines.len(), 600);
    assert!(lines.windows(2).all(|w| w[1]["prev_hash"] == w[0]["hash"]));
    assert_eq!(lines[599]["hash"], verify(&fx.api).await.last_hash.as_str());

    let tail = export(&fx.api, 300).await.expect("an export");
    assert_eq!(sizes(&tail), [(256, 300, 555), (45, 556, 600)]);
    assert_eq!(self::lines(&tail)[0]["prev_hash"], lines[298]["hash"]);

    expect_code(
        export(&fx.api, 601).await,
        Code::NotFound,
        "from_version 601 does not exist: account acme/globex has 600 events",
    );
}

#[tokio::test]
async fn unknown_accounts_cannot_be_verified_or_exported() {
    let fx = Fixture::empty();
    let verify = fx
        .api
        .verify_account(Request::new(pb::VerifyAccountRequest {
            tenant: "acme".into(),
            account_id: "globex".into(),
        }))
        .await;
    expect_code(verify, Code::NotFound, "has no events");
    expect_code(export(&fx.api, 0).await, Code::NotFound, "has no events");
}

// ---------------------------------------------------------------- over a socket

#[tokio::test]
async fn the_service_answers_over_a_real_socket() {
    use futures::StreamExt;
    let fx = Fixture::globex().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AuditServiceServer::new(fx.api.clone()))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let mut client = AuditServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connected");

    let r = client
        .get_account_as_of(pb::GetAccountAsOfRequest {
            tenant: "acme".into(),
            account_id: "globex".into(),
            point: Some(Point::Version(42)),
        })
        .await
        .expect("as of")
        .into_inner();
    assert_eq!(r.account.map(|a| a.interactions.len()), Some(14));

    let d = client
        .diff_account(pb::DiffAccountRequest {
            tenant: "acme".into(),
            account_id: "globex".into(),
            range: reviews("rev-q1", "rev-q3"),
        })
        .await
        .expect("diff")
        .into_inner();
    assert_eq!(
        (d.from_version, d.to_version, d.changes.len()),
        (42, 74, 29)
    );

    let v = client
        .verify_account(pb::VerifyAccountRequest {
            tenant: "acme".into(),
            account_id: "globex".into(),
        })
        .await
        .expect("verify")
        .into_inner();
    assert!(v.intact);

    let mut chunks = client
        .export_account(pb::ExportAccountRequest {
            tenant: "acme".into(),
            account_id: "globex".into(),
            from_version: 0,
        })
        .await
        .expect("export")
        .into_inner();
    let mut exported = Vec::new();
    while let Some(chunk) = chunks.next().await {
        exported.push(chunk.expect("a chunk"));
    }
    let lines = lines(&exported);
    assert_eq!(lines.len(), 84);
    assert_eq!(lines[83]["hash"], v.last_hash.as_str());

    let missing = client
        .diff_account(pb::DiffAccountRequest {
            tenant: "acme".into(),
            account_id: "globex".into(),
            range: reviews("rev-q1", "rev-q4"),
        })
        .await;
    expect_code(missing, Code::NotFound, "no recorded outcome");

    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("a clean shutdown");
}
