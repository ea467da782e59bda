//! Request fields from the wire, and answers to the wire.

use keyplan_domain::ids::{AccountId, PersonId, TenantId};
use keyplan_domain::values::Timestamp;
use keyplan_proto::convert::{
    date_to_wire, optional_date_to_wire, timestamp_from_proto_checked, timestamp_to_proto, WireEnum,
};
use keyplan_proto::pb;

use crate::error::QueryError;
use crate::model::*;

// ---------------------------------------------------------------- requests

fn domain(error: keyplan_domain::DomainError, field: &'static str) -> QueryError {
    match error {
        keyplan_domain::DomainError::InvalidArgument { reason, .. } => {
            QueryError::invalid(field, reason)
        }
        other => QueryError::invalid(field, other.to_string()),
    }
}

/// A required tenant id.
pub(crate) fn tenant(value: String) -> Result<TenantId, QueryError> {
    TenantId::parse(value).map_err(|e| domain(e, "tenant"))
}

/// A required account id.
pub(crate) fn account(value: String) -> Result<AccountId, QueryError> {
    AccountId::parse(value).map_err(|e| domain(e, "account_id"))
}

/// An optional account id (empty = absent).
pub(crate) fn optional_account(value: String) -> Result<Option<AccountId>, QueryError> {
    if value.is_empty() {
        Ok(None)
    } else {
        account(value).map(Some)
    }
}

/// An optional person id (empty = absent).
pub(crate) fn optional_owner(value: String) -> Result<Option<PersonId>, QueryError> {
    if value.is_empty() {
        Ok(None)
    } else {
        PersonId::parse(value)
            .map(Some)
            .map_err(|e| domain(e, "owner"))
    }
}

/// The question's instant and axis: `as_of` defaults to now, the axis to AS_HAPPENED_BY.
pub(crate) fn as_of(at: Option<prost_types::Timestamp>, axis: i32) -> Result<AsOf, QueryError> {
    let at = match at {
        Some(t) => timestamp_from_proto_checked("as_of", &t).map_err(|e| domain(e, "as_of"))?,
        None => Timestamp::now(),
    };
    let axis = match pb::ComplianceAxis::try_from(axis) {
        Ok(pb::ComplianceAxis::Unspecified | pb::ComplianceAxis::AsHappenedBy) => {
            Axis::AsHappenedBy
        }
        Ok(pb::ComplianceAxis::AsKnownAt) => Axis::AsKnownAt,
        Err(_) => {
            return Err(QueryError::invalid(
                "axis",
                format!(
                    "must be one of: {}, {} (or unset for the first); got {axis}",
                    pb::ComplianceAxis::AsHappenedBy.as_str_name(),
                    pb::ComplianceAxis::AsKnownAt.as_str_name()
                ),
            ))
        }
    };
    Ok(AsOf { at, axis })
}

/// A required grouping.
pub(crate) fn group_by(value: i32) -> Result<GroupBy, QueryError> {
    match pb::ComplianceGroupBy::try_from(value) {
        Ok(pb::ComplianceGroupBy::Account) => Ok(GroupBy::Account),
        Ok(pb::ComplianceGroupBy::Owner) => Ok(GroupBy::Owner),
        Ok(pb::ComplianceGroupBy::Tenant) => Ok(GroupBy::Tenant),
        Ok(pb::ComplianceGroupBy::Unspecified) | Err(_) => Err(QueryError::invalid(
            "group_by",
            format!(
                "must be one of: {}, {}, {}; got {}",
                pb::ComplianceGroupBy::Account.as_str_name(),
                pb::ComplianceGroupBy::Owner.as_str_name(),
                pb::ComplianceGroupBy::Tenant.as_str_name(),
                if value == 0 {
                    "COMPLIANCE_GROUP_BY_UNSPECIFIED (unset)".to_owned()
                } else {
                    value.to_string()
                }
            ),
        )),
    }
}

// ---------------------------------------------------------------- answers

pub(crate) fn axis(value: Axis) -> i32 {
    match value {
        Axis::AsHappenedBy => pb::ComplianceAxis::AsHappenedBy,
        Axis::AsKnownAt => pb::ComplianceAxis::AsKnownAt,
    }
    .into()
}

pub(crate) fn group_by_to_wire(value: GroupBy) -> i32 {
    match value {
        GroupBy::Account => pb::ComplianceGroupBy::Account,
        GroupBy::Owner => pb::ComplianceGroupBy::Owner,
        GroupBy::Tenant => pb::ComplianceGroupBy::Tenant,
    }
    .into()
}

fn rule_status(value: RuleStatus) -> i32 {
    match value {
        RuleStatus::OnTrack => pb::ComplianceRuleStatus::OnTrack,
        RuleStatus::DueSoon => pb::ComplianceRuleStatus::DueSoon,
        RuleStatus::Overdue => pb::ComplianceRuleStatus::Overdue,
        RuleStatus::NeverMet => pb::ComplianceRuleStatus::NeverMet,
    }
    .into()
}

fn review_status(value: ReviewStatus) -> i32 {
    match value {
        ReviewStatus::OnTime => pb::ComplianceReviewStatus::OnTime,
        ReviewStatus::Late => pb::ComplianceReviewStatus::Late,
        ReviewStatus::Missed => pb::ComplianceReviewStatus::Missed,
        ReviewStatus::Overdue => pb::ComplianceReviewStatus::Overdue,
        ReviewStatus::Upcoming => pb::ComplianceReviewStatus::Upcoming,
    }
    .into()
}

pub(crate) fn share(value: &Share) -> pb::ComplianceShare {
    pb::ComplianceShare {
        on_track: value.counted_on_track(),
        active: value.active(),
        share: value.share(),
        status_on_track: value.on_track,
        status_due_soon: value.due_soon,
        status_overdue: value.overdue,
        status_never_met: value.never_met,
    }
}

fn rule(value: &RuleCompliance) -> pb::ComplianceRule {
    pb::ComplianceRule {
        rule_id: value.definition.rule_id.to_string(),
        definition: Some((&value.definition).into()),
        target_description: value.target_description.clone(),
        owner_name: value.owner_name.clone(),
        set_on: date_to_wire(value.set_on),
        status: rule_status(value.status),
        last_interaction: value
            .last_interaction
            .as_ref()
            .map(|i| pb::ComplianceLastInteraction {
                interaction_id: i.interaction_id.clone(),
                occurred_at: Some(timestamp_to_proto(i.occurred_at)),
                occurred_on: date_to_wire(i.occurred_at.date()),
                corrected: i.corrected,
            }),
        next_due_on: date_to_wire(value.due_on),
        days_overdue: value.days_overdue,
        days_until_due: value.days_until_due,
        due_soon_window_days: value.due_soon_window_days,
        considered: value.considered.iter().map(considered).collect(),
    }
}

fn not_counted(value: Option<NotCounted>) -> i32 {
    match value {
        None => pb::ComplianceNotCountedReason::Unspecified,
        Some(NotCounted::CorrectedAway) => pb::ComplianceNotCountedReason::CorrectedAway,
        Some(NotCounted::HappenedAfterAsOf) => pb::ComplianceNotCountedReason::HappenedAfterAsOf,
        Some(NotCounted::NotYetRecorded) => pb::ComplianceNotCountedReason::NotYetRecorded,
        Some(NotCounted::WrongChannel) => pb::ComplianceNotCountedReason::WrongChannel,
        Some(NotCounted::NotInBuyingRoleAtTheTime) => {
            pb::ComplianceNotCountedReason::NotInBuyingRoleAtTheTime
        }
        Some(NotCounted::NoTeamMemberAtTheTime) => {
            pb::ComplianceNotCountedReason::NoTeamMemberAtTheTime
        }
    }
    .into()
}

fn considered(value: &ConsideredInteraction) -> pb::ComplianceConsideredInteraction {
    pb::ComplianceConsideredInteraction {
        interaction_id: value.interaction_id.clone(),
        stakeholder_id: value.stakeholder.clone(),
        occurred_at: Some(timestamp_to_proto(value.occurred_at)),
        recorded_at: Some(timestamp_to_proto(value.recorded_at)),
        channel: value.channel.to_wire(),
        corrected: value.corrected,
        qualifies: value.not_counted.is_none(),
        reason: not_counted(value.not_counted),
        detail: value.detail.clone(),
    }
}

pub(crate) fn overdue(value: &OverdueRule) -> pb::ComplianceOverdueRule {
    pb::ComplianceOverdueRule {
        account_id: value.account.clone(),
        rule_id: value.rule_id.clone(),
        owner: value.owner.clone(),
        target_description: value.target_description.clone(),
        status: rule_status(value.status),
        days_overdue: value.days_overdue,
        due_on: date_to_wire(value.due_on),
        last_interaction_on: optional_date_to_wire(value.last_interaction_on),
    }
}

fn plan_reviews(value: &PlanReviews) -> pb::CompliancePlanReviews {
    pb::CompliancePlanReviews {
        plan_id: value.plan_id.clone(),
        review_frequency: value.frequency.to_wire(),
        period_start: date_to_wire(value.period_start),
        period_end: optional_date_to_wire(value.period_end),
        windows: value
            .windows
            .iter()
            .map(|w| pb::ComplianceReviewWindow {
                index: w.index,
                opens_on: date_to_wire(w.opens_on),
                due_on: date_to_wire(w.due_on),
                status: review_status(w.status),
                review_id: w
                    .review
                    .as_ref()
                    .map(|r| r.review_id.clone())
                    .unwrap_or_default(),
                held_on: optional_date_to_wire(w.review.as_ref().map(|r| r.held_on)),
                days_late: w.days_late,
                days_overdue: w.days_overdue,
            })
            .collect(),
        on_time: value.count(ReviewStatus::OnTime),
        late: value.count(ReviewStatus::Late),
        missed: value.count(ReviewStatus::Missed),
        overdue: value.count(ReviewStatus::Overdue),
        upcoming: value.count(ReviewStatus::Upcoming),
    }
}

pub(crate) fn account_compliance(
    tenant: &str,
    account: &str,
    position: u64,
    value: &crate::model::AccountCompliance,
) -> pb::AccountCompliance {
    pb::AccountCompliance {
        tenant: tenant.to_owned(),
        account_id: account.to_owned(),
        as_of: Some(timestamp_to_proto(value.as_of.at)),
        axis: axis(value.as_of.axis),
        position,
        rules: value.rules.iter().map(rule).collect(),
        share: Some(share(&value.share)),
        overdue: value.overdue.iter().map(overdue).collect(),
        plan_reviews: value.plan_reviews.iter().map(plan_reviews).collect(),
        retired_rules: value
            .retired
            .iter()
            .map(|r| pb::ComplianceRetiredRule {
                rule_id: r.rule_id.clone(),
                retired_at: Some(timestamp_to_proto(r.retired_at)),
            })
            .collect(),
    }
}

pub(crate) fn group(value: &Group) -> pb::ComplianceGroup {
    pb::ComplianceGroup {
        key: value.key.clone(),
        label: value.label.clone(),
        share: Some(share(&value.share)),
    }
}

pub(crate) fn trend_point(value: &TrendPoint) -> pb::ComplianceTrendPoint {
    pb::ComplianceTrendPoint {
        at: Some(timestamp_to_proto(value.at)),
        share: Some(share(&value.share)),
    }
}

// ---------------------------------------------------------------- alerts

fn alert_kind_to_pb(kind: crate::alerts::AlertKind) -> pb::ComplianceAlertKind {
    use crate::alerts::AlertKind;
    match kind {
        AlertKind::RuleDueSoon => pb::ComplianceAlertKind::RuleDueSoon,
        AlertKind::RuleOverdue => pb::ComplianceAlertKind::RuleOverdue,
        AlertKind::RuleNeverMet => pb::ComplianceAlertKind::RuleNeverMet,
        AlertKind::ReviewMissed => pb::ComplianceAlertKind::ReviewMissed,
    }
}

/// A `WatchAlerts` kind filter (empty: every kind).
pub(crate) fn alert_kinds(values: &[i32]) -> Result<Vec<crate::alerts::AlertKind>, QueryError> {
    use crate::alerts::AlertKind;
    values
        .iter()
        .map(|&value| {
            AlertKind::ALL
                .into_iter()
                .find(|kind| alert_kind_to_pb(*kind) as i32 == value)
                .ok_or_else(|| {
                    let accepted: Vec<&str> = AlertKind::ALL
                        .iter()
                        .map(|k| alert_kind_to_pb(*k).as_str_name())
                        .collect();
                    QueryError::invalid(
                        "kinds",
                        format!("each must be one of: {}; got {value}", accepted.join(", ")),
                    )
                })
        })
        .collect()
}

/// An alert on the wire (gRPC and the NATS payload).
pub(crate) fn alert(alert: &crate::alerts::Alert) -> pb::ComplianceAlert {
    use crate::alerts::AlertSubject;
    let mut wire = pb::ComplianceAlert {
        alert_id: alert.id(),
        kind: alert_kind_to_pb(alert.kind) as i32,
        tenant: alert.tenant.clone(),
        account_id: alert.account.clone(),
        account_name: alert.account_name.clone(),
        due_on: date_to_wire(alert.due_on),
        days_overdue: alert.days_overdue,
        days_until_due: alert.days_until_due,
        raised_at: Some(timestamp_to_proto(alert.raised_at)),
        position: alert.position,
        ..Default::default()
    };
    match &alert.subject {
        AlertSubject::Rule {
            rule_id,
            owner,
            owner_name,
            target_description,
        } => {
            wire.rule_id.clone_from(rule_id);
            wire.owner.clone_from(owner);
            wire.owner_name.clone_from(owner_name);
            wire.target_description.clone_from(target_description);
        }
        AlertSubject::Review { plan_id, window } => {
            wire.plan_id.clone_from(plan_id);
            wire.review_window = *window;
        }
    }
    wire
}
