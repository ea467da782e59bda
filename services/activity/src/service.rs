//! `keyplan.v1.ActivityService`: request validation, read-your-writes, and the projection's
//! answers.

use std::sync::Arc;

use keyplan_domain::ids::{AccountId, TenantId};
use keyplan_domain::values::{parse_date, Timestamp};
use keyplan_projection::ProjectionHandle;
use keyplan_proto::convert::timestamp_from_proto_checked;
use keyplan_proto::pb;
use keyplan_proto::pb::activity_service_server::ActivityService;
use tonic::{Request, Response, Status};

use crate::calendar::Period;
use crate::error::ActivityError;
use crate::projection::ActivityProjection;
use crate::queries::Dimension;
use crate::status::to_status;

/// Engagement-rule compliance of an account, as the portfolio shows it.
///
/// Implemented by the compliance read model when the node runs it; the activity service
/// only needs the two numbers, and does not depend on that crate.
pub trait ComplianceSource: Send + Sync + 'static {
    /// `(rules on track, active rules)` of an account at business time `as_of`; `None` if
    /// the compliance model knows nothing of the account; `Err` (what went wrong) if it
    /// cannot read what it knows.
    fn share(
        &self,
        tenant: &str,
        account: &str,
        as_of: Timestamp,
    ) -> Result<Option<(u32, u32)>, String>;
}

/// Implements `keyplan.v1.ActivityService` over an [`ActivityProjection`].
#[derive(Clone)]
pub struct ActivityApi {
    projection: ActivityProjection,
    progress: ProjectionHandle,
    compliance: Option<Arc<dyn ComplianceSource>>,
}

impl std::fmt::Debug for ActivityApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityApi")
            .field("progress", &self.progress)
            .field("compliance", &self.compliance.is_some())
            .finish_non_exhaustive()
    }
}

impl ActivityApi {
    /// Serves `projection`, whose runner reports through `progress`; `compliance` feeds the
    /// portfolio's compliance column when the node runs the compliance model.
    pub fn new(
        projection: ActivityProjection,
        progress: ProjectionHandle,
        compliance: Option<Arc<dyn ComplianceSource>>,
    ) -> Self {
        Self {
            projection,
            progress,
            compliance,
        }
    }

    /// Waits until the projection includes `min_position` (read-your-writes).
    async fn catch_up(&self, min_position: u64) -> Result<(), ActivityError> {
        Ok(self.progress.catch_up(min_position).await?)
    }
}

fn tenant(value: String) -> Result<TenantId, ActivityError> {
    Ok(TenantId::parse(value)?)
}

fn account(value: String) -> Result<AccountId, ActivityError> {
    if value.is_empty() {
        return Err(ActivityError::invalid("account_id", "is required"));
    }
    Ok(AccountId::parse(value)?)
}

fn required_date(
    field: &'static str,
    value: &str,
) -> Result<keyplan_domain::values::Date, ActivityError> {
    if value.is_empty() {
        return Err(ActivityError::invalid(field, "is required, as YYYY-MM-DD"));
    }
    Ok(parse_date(field, value)?)
}

/// `as_of` from the wire: now when absent.
fn as_of(value: Option<prost_types::Timestamp>) -> Result<Timestamp, ActivityError> {
    match value {
        Some(t) => Ok(timestamp_from_proto_checked("as_of", &t)?),
        None => Ok(Timestamp::now()),
    }
}

fn period(value: i32) -> Result<Period, ActivityError> {
    match pb::ActivityPeriod::try_from(value) {
        Ok(pb::ActivityPeriod::Day) => Ok(Period::Day),
        Ok(pb::ActivityPeriod::Week) => Ok(Period::Week),
        Ok(pb::ActivityPeriod::Month) => Ok(Period::Month),
        Ok(pb::ActivityPeriod::Quarter) => Ok(Period::Quarter),
        Ok(pb::ActivityPeriod::Unspecified) | Err(_) => Err(ActivityError::invalid(
            "period",
            format!(
                "must be one of ACTIVITY_PERIOD_DAY, ACTIVITY_PERIOD_WEEK, ACTIVITY_PERIOD_MONTH, \
                 ACTIVITY_PERIOD_QUARTER; got {}",
                unset_or(value)
            ),
        )),
    }
}

fn dimension(value: i32) -> Result<Dimension, ActivityError> {
    match pb::ActivityDimension::try_from(value) {
        Ok(pb::ActivityDimension::Account) => Ok(Dimension::Account),
        Ok(pb::ActivityDimension::Channel) => Ok(Dimension::Channel),
        Ok(pb::ActivityDimension::TeamMember) => Ok(Dimension::TeamMember),
        Ok(pb::ActivityDimension::Stakeholder) => Ok(Dimension::Stakeholder),
        Ok(pb::ActivityDimension::BuyingRole) => Ok(Dimension::BuyingRole),
        Ok(pb::ActivityDimension::Unspecified) | Err(_) => Err(ActivityError::invalid(
            "dimension",
            format!(
                "must be one of ACTIVITY_DIMENSION_ACCOUNT, ACTIVITY_DIMENSION_CHANNEL, \
                 ACTIVITY_DIMENSION_TEAM_MEMBER, ACTIVITY_DIMENSION_STAKEHOLDER, \
                 ACTIVITY_DIMENSION_BUYING_ROLE; got {}",
                unset_or(value)
            ),
        )),
    }
}

fn unset_or(value: i32) -> String {
    if value == 0 {
        "0 (unset)".to_owned()
    } else {
        value.to_string()
    }
}

#[tonic::async_trait]
impl ActivityService for ActivityApi {
    async fn get_activity_counts(
        &self,
        request: Request<pb::GetActivityCountsRequest>,
    ) -> Result<Response<pb::GetActivityCountsResponse>, Status> {
        let r = request.into_inner();
        let answer = async {
            let tenant = tenant(r.tenant)?;
            let account = if r.account_id.is_empty() {
                None
            } else {
                Some(account(r.account_id)?)
            };
            let period = period(r.period)?;
            let dimension = dimension(r.dimension)?;
            let from = required_date("from", &r.from)?;
            let to = required_date("to", &r.to)?;
            self.catch_up(r.min_position).await?;
            self.projection.activity_counts(
                tenant.as_str(),
                account.as_ref().map(AccountId::as_str),
                period,
                dimension,
                from,
                to,
            )
        };
        answer.await.map(Response::new).map_err(to_status)
    }

    async fn get_dmu_coverage(
        &self,
        request: Request<pb::GetDmuCoverageRequest>,
    ) -> Result<Response<pb::GetDmuCoverageResponse>, Status> {
        let r = request.into_inner();
        let answer = async {
            let tenant = tenant(r.tenant)?;
            let account = account(r.account_id)?;
            let as_of = as_of(r.as_of)?;
            self.catch_up(r.min_position).await?;
            self.projection
                .dmu_coverage(tenant.as_str(), account.as_str(), r.days, as_of)
        };
        answer.await.map(Response::new).map_err(to_status)
    }

    async fn list_quiet_accounts(
        &self,
        request: Request<pb::ListQuietAccountsRequest>,
    ) -> Result<Response<pb::ListQuietAccountsResponse>, Status> {
        let r = request.into_inner();
        let answer = async {
            let tenant = tenant(r.tenant)?;
            let as_of = as_of(r.as_of)?;
            self.catch_up(r.min_position).await?;
            self.projection
                .quiet_accounts(tenant.as_str(), r.days, as_of)
        };
        answer.await.map(Response::new).map_err(to_status)
    }

    async fn get_opportunity_summary(
        &self,
        request: Request<pb::GetOpportunitySummaryRequest>,
    ) -> Result<Response<pb::GetOpportunitySummaryResponse>, Status> {
        let r = request.into_inner();
        let answer = async {
            let tenant = tenant(r.tenant)?;
            let account = account(r.account_id)?;
            let as_of = as_of(r.as_of)?;
            self.catch_up(r.min_position).await?;
            self.projection
                .opportunity_summary(tenant.as_str(), account.as_str(), as_of)
        };
        answer.await.map(Response::new).map_err(to_status)
    }

    async fn get_portfolio(
        &self,
        request: Request<pb::GetPortfolioRequest>,
    ) -> Result<Response<pb::GetPortfolioResponse>, Status> {
        let r = request.into_inner();
        let answer = async {
            let tenant = tenant(r.tenant)?;
            let as_of = as_of(r.as_of)?;
            self.catch_up(r.min_position).await?;
            self.projection
                .portfolio(tenant.as_str(), as_of, self.compliance.as_deref())
        };
        answer.await.map(Response::new).map_err(to_status)
    }
}
