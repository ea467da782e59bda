//! Builders for realistic commands, so tests read like the domain.
#![allow(dead_code)]

use keyplan_proto::pb;
use keyplan_proto::pb::command::Kind;

pub const TENANT: &str = "acme-supplies";

/// A request carrying one command, with "any" expected version.
pub fn request(account: &str, kind: Kind) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        tenant: TENANT.into(),
        account_id: account.into(),
        expected_version: None,
        idempotency_key: String::new(),
        actor: "dana.kim".into(),
        occurred_at: None,
        correlation_id: String::new(),
        causation_id: String::new(),
        command: Some(pb::Command { kind: Some(kind) }),
    }
}

/// A page of `account`'s whole timeline, oldest first, with no filter.
pub fn timeline_page(
    account: &str,
    page_size: u32,
    page_token: String,
    min_position: u64,
) -> pb::ListTimelineRequest {
    pb::ListTimelineRequest {
        tenant: TENANT.into(),
        account_id: account.into(),
        scope: None,
        event_types: vec![],
        occurred_from: None,
        occurred_to: None,
        actor: String::new(),
        order: pb::TimelineOrder::OldestFirst as i32,
        page_size,
        page_token,
        min_position,
    }
}

/// An `ExecuteBatch` request for `account`, with the same defaults as [`request`].
pub fn batch(account: &str, kinds: Vec<Kind>) -> pb::ExecuteBatchRequest {
    pb::ExecuteBatchRequest {
        tenant: TENANT.into(),
        account_id: account.into(),
        expected_version: None,
        idempotency_key: String::new(),
        actor: "dana.kim".into(),
        occurred_at: None,
        correlation_id: String::new(),
        causation_id: String::new(),
        commands: kinds
            .into_iter()
            .map(|k| pb::Command { kind: Some(k) })
            .collect(),
    }
}

pub fn exact(mut r: pb::ExecuteRequest, version: u64) -> pb::ExecuteRequest {
    r.expected_version = Some(pb::ExpectedVersion {
        kind: Some(pb::expected_version::Kind::Exact(version)),
    });
    r
}

pub fn no_stream(mut r: pb::ExecuteRequest) -> pb::ExecuteRequest {
    r.expected_version = Some(pb::ExpectedVersion {
        kind: Some(pb::expected_version::Kind::NoStream(true)),
    });
    r
}

pub fn keyed(mut r: pb::ExecuteRequest, key: &str) -> pb::ExecuteRequest {
    r.idempotency_key = key.into();
    r
}

pub fn register(name: &str) -> Kind {
    Kind::RegisterAccount(pb::AccountRegistered {
        name: name.into(),
        industry: "Chemicals".into(),
        region: "EMEA".into(),
        headquarters: "Rotterdam".into(),
        tier: pb::Tier::Key as i32,
    })
}

pub fn assign(person: &str, name: &str, role: pb::TeamRole) -> Kind {
    Kind::AssignTeamMember(pb::TeamMemberAssigned {
        person_id: person.into(),
        name: name.into(),
        role: role as i32,
    })
}

pub fn stakeholder(id: &str, name: &str, role: pb::BuyingRole) -> Kind {
    Kind::AddStakeholder(pb::StakeholderAdded {
        stakeholder_id: id.into(),
        name: name.into(),
        title: "CFO".into(),
        reports_to: String::new(),
        buying_role: role as i32,
        influence: 5,
        attitude: pb::Attitude::Supporter as i32,
    })
}

pub fn plan(id: &str) -> Kind {
    Kind::DraftPlan(pb::PlanDrafted {
        plan_id: id.into(),
        period: Some(pb::PlanPeriod {
            kind: pb::PlanPeriodKind::CalendarYear as i32,
            start: "2026-01-01".into(),
            end: "2026-12-31".into(),
        }),
        prepared_by: "dana.kim".into(),
        prepared_on: "2025-12-01".into(),
        review_frequency: pb::ReviewFrequency::Quarterly as i32,
    })
}

pub fn revise(plan: &str, text: &str) -> Kind {
    Kind::RevisePlanSection(pb::PlanSectionRevised {
        plan_id: plan.into(),
        section: pb::PlanSection::Risks as i32,
        text: text.into(),
    })
}

/// An interaction at `seconds` after 2026-03-01T00:00:00Z.
pub fn interaction(id: &str, stakeholder: &str, seconds: i64) -> Kind {
    Kind::LogInteraction(pb::InteractionLogged {
        interaction_id: id.into(),
        details: Some(details(stakeholder, seconds, "Discussed pricing")),
    })
}

pub fn details(stakeholder: &str, seconds: i64, summary: &str) -> pb::InteractionDetails {
    pb::InteractionDetails {
        occurred_at: Some(prost_types::Timestamp {
            seconds: 1_772_323_200 + seconds,
            nanos: 0,
        }),
        channel: pb::Channel::InPerson as i32,
        stakeholders: vec![stakeholder.into()],
        participants: vec!["dana.kim".into()],
        summary: summary.into(),
        sentiment: pb::Sentiment::Positive as i32,
        next_step: "Send pricing proposal".into(),
        opportunity_id: String::new(),
    }
}

/// Registers `account` with a KAM (dana.kim), a second team member (lee.chan), a stakeholder
/// (`cfo`, economic buyer) and a plan (`plan-2026`): 5 events.
pub async fn onboard(server: &super::Server, account: &str) {
    onboard_in(server, TENANT, account).await;
}

/// [`onboard`] in `tenant`.
pub async fn onboard_in(server: &super::Server, tenant: &str, account: &str) {
    let mut c = server.commands();
    for kind in [
        register("Globex Corporation"),
        assign("dana.kim", "Dana Kim", pb::TeamRole::KeyAccountManager),
        assign("lee.chan", "Lee Chan", pb::TeamRole::Sales),
        stakeholder("cfo", "Lee Park", pb::BuyingRole::EconomicBuyer),
        plan("plan-2026"),
    ] {
        let mut r = request(account, kind);
        r.tenant = tenant.into();
        c.execute(r).await.expect("onboarding command succeeds");
    }
}
