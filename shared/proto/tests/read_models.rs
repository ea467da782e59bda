//! The read side: stored events and folded account states in their wire form.

#[allow(dead_code)]
mod examples;

use keyplan_domain::codec;
use keyplan_domain::values::Timestamp;
use keyplan_domain::AccountState;
use keyplan_proto::convert::*;
use keyplan_proto::pb;
use keyplan_store::{RecordedEvent, StreamId};

fn recorded(event: &keyplan_domain::AccountEvent) -> RecordedEvent {
    let encoded = codec::encode(event);
    RecordedEvent {
        event_id: Default::default(),
        stream: StreamId::new("acme-supplies", "nordwind"),
        stream_version: 7,
        global_position: 1042,
        recorded_at_micros: 1_740_000_000_654_321,
        occurred_at_micros: 1_739_999_000_000_000,
        actor: "anna.berger@acme.example".to_owned(),
        correlation_id: Default::default(),
        causation_id: None,
        idempotency_key: Some("log-2025-02-19-hub-walk".to_owned()),
        event_type: encoded.event_type.to_owned(),
        schema_version: encoded.schema_version,
        payload: encoded.payload,
        prev_hash: [1; 32],
        hash: [2; 32],
    }
}

#[test]
fn a_recorded_event_carries_its_metadata_and_decoded_payload() {
    for event in examples::one_of_each() {
        let record = recorded(&event);
        let wire = recorded_event_to_proto(&record).expect("decodes");
        assert_eq!(wire.payload, Some(event_payload_to_proto(&event)));
        assert_eq!(wire.metadata, Some(event_metadata_to_proto(&record)));
    }
}

#[test]
fn metadata_maps_every_field() {
    let event = &examples::one_of_each()[0];
    let mut record = recorded(event);
    let m = event_metadata_to_proto(&record);
    assert_eq!(m.event_id, "00000000-0000-0000-0000-000000000000");
    assert_eq!(m.tenant, "acme-supplies");
    assert_eq!(m.account_id, "nordwind");
    assert_eq!((m.stream_version, m.global_position), (7, 1042));
    assert_eq!(
        m.recorded_at,
        Some(prost_types::Timestamp {
            seconds: 1_740_000_000,
            nanos: 654_321_000
        })
    );
    assert_eq!(
        m.occurred_at,
        Some(timestamp_to_proto(Timestamp(1_739_999_000_000_000)))
    );
    assert_eq!(m.actor, "anna.berger@acme.example");
    assert_eq!(m.correlation_id, "00000000-0000-0000-0000-000000000000");
    assert_eq!(m.causation_id, "");
    assert_eq!(m.idempotency_key, "log-2025-02-19-hub-walk");
    assert_eq!(m.event_type, "AccountRegistered");
    assert_eq!(m.schema_version, u32::from(record.schema_version));
    assert_eq!(m.prev_hash, vec![1; 32]);
    assert_eq!(m.hash, vec![2; 32]);

    record.causation_id = Some(Default::default());
    record.idempotency_key = None;
    let m = event_metadata_to_proto(&record);
    assert_eq!(m.causation_id, "00000000-0000-0000-0000-000000000000");
    assert_eq!(m.idempotency_key, "");
}

#[test]
fn an_undecodable_record_is_an_error_not_a_panic() {
    let mut record = recorded(&examples::one_of_each()[0]);
    record.event_type = "AccountMerged".to_owned();
    assert!(recorded_event_to_proto(&record).is_err());
}

fn state() -> AccountState {
    let mut events = examples::one_of_each();
    events.extend(examples::other_shapes());
    AccountState::from_events(&events)
}

#[test]
fn an_account_shows_its_full_current_state() {
    let s = state();
    let a = account_to_proto("acme-supplies", "nordwind", &s, DEFAULT_INTERACTIONS);
    assert_eq!(
        (a.tenant.as_str(), a.account_id.as_str()),
        ("acme-supplies", "nordwind")
    );
    assert_eq!(a.version, s.version);
    assert_eq!(a.name, "Nordwind Logistics GmbH");
    assert_eq!(a.headquarters, "Hamburg, Germany");
    assert_eq!(a.tier, i32::from(pb::Tier::Key)); // promoted, then demoted
    assert_eq!(
        a.last_assessment.as_ref().map(|t| t.weighted_score_milli),
        Some(7875)
    );

    assert_eq!(a.team.len(), 1);
    assert_eq!(a.team[0].person_id, "p-anna");
    assert_eq!(a.team[0].role, i32::from(pb::TeamRole::KeyAccountManager));

    // Plans ordered by id; sections carry their current text.
    let ids: Vec<_> = a
        .plans
        .iter()
        .map(|p| p.drafted.as_ref().map(|d| d.plan_id.as_str()))
        .collect();
    assert_eq!(ids, [Some("plan-2025"), Some("plan-evergreen")]);
    assert_eq!(a.plans[0].sections.len(), 1);
    assert_eq!(
        a.plans[0].sections[0].section,
        i32::from(pb::PlanSection::Risks)
    );
    assert_eq!(
        a.plans[1]
            .drafted
            .as_ref()
            .and_then(|d| d.period.as_ref())
            .map(|p| p.end.as_str()),
        Some("")
    );

    assert_eq!(a.objectives.len(), 1);
    assert_eq!(
        a.objectives[0].status,
        i32::from(pb::ObjectiveStatus::OnTrack)
    );
    assert_eq!(a.objectives[0].current_value, "27%");

    // The won opportunity keeps the close date from its last stage change.
    assert_eq!(a.opportunities.len(), 1);
    let o = &a.opportunities[0];
    assert_eq!(o.expected_close_on, "2025-07-15");
    match &o.status {
        Some(pb::opportunity::Status::Won(w)) => {
            assert_eq!(w.closed_on, "2025-07-10");
            assert_eq!(
                w.value,
                Some(pb::Money {
                    currency: "EUR".to_owned(),
                    minor_units: 118_000_000
                })
            );
        }
        other => panic!("expected won, got {other:?}"),
    }

    // act-1 completed; act-2 was never added (its cancellation is ignored by the fold);
    // act-qbr-1 comes from the review outcome, linked to the review.
    let item = |id: &str| {
        a.action_items
            .iter()
            .find(|i| i.added.as_ref().map(|x| x.action_item_id.as_str()) == Some(id))
    };
    let done = item("act-1").expect("act-1");
    assert_eq!(done.status, i32::from(pb::ActionItemStatus::Completed));
    assert_eq!(done.completed_on, "2025-03-12");
    let follow_up = item("act-qbr-1").expect("follow-up");
    assert_eq!(follow_up.status, i32::from(pb::ActionItemStatus::Open));
    assert_eq!(
        follow_up.added.as_ref().and_then(|x| x.link.clone()),
        Some(pb::ActionLink {
            target: Some(pb::action_link::Target::ReviewId("qbr-2025-q1".to_owned()))
        })
    );

    assert_eq!(a.revenue.len(), 2);

    let head = a
        .stakeholders
        .iter()
        .find(|x| x.stakeholder_id == "sh-head-logistics")
        .expect("stakeholder");
    assert_eq!(
        (head.title.as_str(), head.reports_to.as_str()),
        ("VP Logistics", "")
    );
    assert_eq!(
        (head.influence, head.attitude),
        (5, i32::from(pb::Attitude::Champion))
    );
    assert_eq!(head.departed_on, "");
    let cfo = a
        .stakeholders
        .iter()
        .find(|x| x.stakeholder_id == "sh-cfo")
        .expect("stakeholder");
    assert_eq!(
        (cfo.title.as_str(), cfo.reports_to.as_str()),
        ("", "sh-ceo")
    );
    assert_eq!(cfo.buying_role, i32::from(pb::BuyingRole::Coach));

    assert_eq!(a.engagement_rules.len(), 2);
    assert!(a
        .engagement_rules
        .iter()
        .all(|r| !r.retired && r.retire_reason.is_empty()));

    let corrected = a
        .interactions
        .iter()
        .find(|i| i.interaction_id == "int-2025-02-19")
        .expect("interaction");
    assert_eq!(corrected.corrections, 1);
    assert_eq!(
        corrected
            .details
            .as_ref()
            .map(|d| d.opportunity_id.as_str()),
        Some("opp-cold-chain")
    );
    // The facts of the content in force, not its text; the hash stands for the whole content.
    let details = corrected.details.as_ref().expect("details");
    assert_eq!(
        (details.summary.as_str(), details.next_step.as_str()),
        ("", "")
    );
    assert_eq!(corrected.content_sha256.len(), 32);
    assert_eq!(a.interactions_total as usize, a.interactions.len());
    let times: Vec<i64> = a
        .interactions
        .iter()
        .map(|i| {
            i.details
                .as_ref()
                .and_then(|d| d.occurred_at.as_ref())
                .map_or(0, |t| t.seconds)
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    // A smaller answer keeps the newest ones, and still counts them all.
    assert_eq!(a.interactions_total, 2);
    let one = account_to_proto("acme-supplies", "nordwind", &s, 1);
    assert_eq!(one.interactions.len(), 1);
    assert_eq!(one.interactions_total, 2);
    assert_eq!(one.interactions[..], a.interactions[..1]);
    assert!(account_to_proto("acme-supplies", "nordwind", &s, 0)
        .interactions
        .is_empty());

    let qbr = a
        .reviews
        .iter()
        .find(|r| r.scheduled.as_ref().map(|s| s.review_id.as_str()) == Some("qbr-2025-q1"))
        .expect("review");
    assert_eq!(qbr.status, i32::from(pb::ReviewStatus::Held));
    assert_eq!(
        qbr.outcome.as_ref().map(|o| o.health),
        Some(i32::from(pb::HealthRating::Amber))
    );
    let internal = a
        .reviews
        .iter()
        .find(|r| r.scheduled.as_ref().map(|s| s.review_id.as_str()) == Some("internal-1"))
        .expect("review");
    assert_eq!(internal.status, i32::from(pb::ReviewStatus::Scheduled));
    assert_eq!(internal.outcome, None);
}

#[test]
fn retired_rules_cancelled_items_and_reviews_show_their_reason() {
    use keyplan_domain::events::*;
    use keyplan_domain::ids::*;
    let mut s = state();
    s.apply(
        &EngagementRuleRetired {
            rule_id: RuleId::parse("rule-cfo").expect("id"),
            reason: "CFO left".to_owned(),
        }
        .into(),
    );
    s.apply(
        &ActionItemCancelled {
            action_item_id: ActionItemId::parse("act-5").expect("id"),
            reason: "Online instead".to_owned(),
        }
        .into(),
    );
    s.apply(
        &ReviewCancelled {
            review_id: ReviewId::parse("internal-1").expect("id"),
            reason: "Merged".to_owned(),
        }
        .into(),
    );
    let a = account_to_proto("t", "a", &s, DEFAULT_INTERACTIONS);
    let rule = a
        .engagement_rules
        .iter()
        .find(|r| r.definition.as_ref().map(|d| d.rule_id.as_str()) == Some("rule-cfo"))
        .expect("rule");
    assert!(rule.retired);
    assert_eq!(rule.retire_reason, "CFO left");
    let item = a
        .action_items
        .iter()
        .find(|i| i.added.as_ref().map(|x| x.action_item_id.as_str()) == Some("act-5"))
        .expect("item");
    assert_eq!(
        (item.status, item.cancel_reason.as_str()),
        (i32::from(pb::ActionItemStatus::Cancelled), "Online instead")
    );
    let review = a
        .reviews
        .iter()
        .find(|r| r.scheduled.as_ref().map(|x| x.review_id.as_str()) == Some("internal-1"))
        .expect("review");
    assert_eq!(
        (review.status, review.cancel_reason.as_str()),
        (i32::from(pb::ReviewStatus::Cancelled), "Merged")
    );
}

#[test]
fn a_summary_counts_what_is_current() {
    use keyplan_domain::events::*;
    use keyplan_domain::ids::*;
    let mut s = state();
    let summary = account_summary_to_proto("nordwind", &s);
    assert_eq!(summary.account_id, "nordwind");
    assert_eq!(summary.name, "Nordwind Logistics GmbH");
    assert_eq!(
        (summary.industry.as_str(), summary.region.as_str()),
        ("Logistics", "DACH")
    );
    assert_eq!(summary.tier, i32::from(pb::Tier::Key));
    assert_eq!(summary.version, s.version);
    assert_eq!(summary.key_account_manager, "Anna Berger");
    assert_eq!(summary.stakeholders, 2);
    assert_eq!(summary.active_rules, 2);
    assert_eq!(summary.open_opportunities, 0); // the only one identified was won
    assert_eq!(summary.interactions, 2);

    s.apply(
        &StakeholderDeparted {
            stakeholder_id: StakeholderId::parse("sh-cfo").expect("id"),
            departed_on: examples::d("2025-09-30"),
            reason: String::new(),
        }
        .into(),
    );
    s.apply(
        &EngagementRuleRetired {
            rule_id: RuleId::parse("rule-cfo").expect("id"),
            reason: "CFO left".to_owned(),
        }
        .into(),
    );
    let summary = account_summary_to_proto("nordwind", &s);
    assert_eq!((summary.stakeholders, summary.active_rules), (1, 1));
}

#[test]
fn an_unregistered_account_has_an_empty_profile() {
    let a = account_to_proto("t", "a", &AccountState::default(), DEFAULT_INTERACTIONS);
    assert_eq!((a.version, a.name.as_str(), a.tier), (0, "", 0));
    let s = account_summary_to_proto("a", &AccountState::default());
    assert_eq!((s.key_account_manager.as_str(), s.stakeholders), ("", 0));
}

#[test]
fn the_descriptor_set_describes_the_services_with_their_comments() {
    use prost::Message;
    let fds = prost_types::FileDescriptorSet::decode(keyplan_proto::FILE_DESCRIPTOR_SET)
        .expect("valid descriptor set");
    let services: Vec<_> = fds
        .file
        .iter()
        .filter(|f| f.package() == "keyplan.v1")
        .flat_map(|f| f.service.iter().map(|s| s.name().to_owned()))
        .collect();
    assert_eq!(
        services,
        [
            "CommandService",
            "EventStoreService",
            "AccountService",
            "OperationsService",
            "TimelineService",
            "ComplianceService",
            "ActivityService",
            "AuditService"
        ]
    );
    assert!(fds
        .file
        .iter()
        .any(|f| f.name() == "google/protobuf/timestamp.proto"));
    let commands = fds
        .file
        .iter()
        .find(|f| f.name() == "keyplan/v1/commands.proto")
        .expect("commands.proto");
    let comments = commands
        .source_code_info
        .as_ref()
        .expect("source info kept");
    assert!(comments
        .location
        .iter()
        .any(|l| l.leading_comments().contains("optimistic concurrency")));
}
