//! `keyplan.v1.ComplianceService`.

use keyplan_projection::ProjectionHandle;
use keyplan_proto::convert::timestamp_to_proto;
use keyplan_proto::pb;
use keyplan_proto::pb::compliance_service_server::ComplianceService;
use tonic::{Request, Response, Status};

use crate::error::QueryError;
use crate::projection::ComplianceProjection;
use crate::status::to_status;
use crate::wire;

/// Implements `keyplan.v1.ComplianceService` over the compliance projection.
#[derive(Debug, Clone)]
pub struct ComplianceApi {
    projection: ComplianceProjection,
    progress: ProjectionHandle,
}

impl ComplianceApi {
    /// A query service reading `projection`, whose runner reports its progress on `progress`
    /// (for read-your-writes waits).
    pub fn new(projection: ComplianceProjection, progress: ProjectionHandle) -> Self {
        Self {
            projection,
            progress,
        }
    }

    /// Waits until the projection includes `min_position` (0: no wait).
    async fn catch_up(&self, min_position: u64) -> Result<(), QueryError> {
        self.progress
            .catch_up(min_position)
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string()))
    }

    async fn account_compliance(
        &self,
        r: pb::GetAccountComplianceRequest,
    ) -> Result<pb::AccountCompliance, QueryError> {
        let tenant = wire::tenant(r.tenant)?;
        let account = wire::account(r.account_id)?;
        let as_of = wire::as_of(r.as_of, r.axis)?;
        self.catch_up(r.min_position).await?;
        let position = self.progress.position();
        let answer = self.projection.account_compliance_with(
            tenant.as_str(),
            account.as_str(),
            as_of,
            r.explain,
        )?;
        Ok(wire::account_compliance(
            tenant.as_str(),
            account.as_str(),
            position,
            &answer,
        ))
    }

    async fn rollup(
        &self,
        r: pb::GetComplianceRollupRequest,
    ) -> Result<pb::ComplianceRollup, QueryError> {
        let tenant = wire::tenant(r.tenant)?;
        let group_by = wire::group_by(r.group_by)?;
        let as_of = wire::as_of(r.as_of, r.axis)?;
        self.catch_up(r.min_position).await?;
        let position = self.progress.position();
        let rollup = self.projection.rollup(tenant.as_str(), group_by, as_of)?;
        Ok(pb::ComplianceRollup {
            tenant: tenant.to_string(),
            group_by: wire::group_by_to_wire(group_by),
            as_of: Some(timestamp_to_proto(as_of.at)),
            axis: wire::axis(as_of.axis),
            position,
            groups: rollup.groups.iter().map(wire::group).collect(),
            total: Some(wire::share(&rollup.total)),
            overdue: rollup.overdue.iter().map(wire::overdue).collect(),
        })
    }

    async fn trend(
        &self,
        r: pb::GetComplianceTrendRequest,
    ) -> Result<pb::ComplianceTrend, QueryError> {
        let tenant = wire::tenant(r.tenant)?;
        let account = wire::optional_account(r.account_id)?;
        let owner = wire::optional_owner(r.owner)?;
        let as_of = wire::as_of(r.as_of, r.axis)?;
        self.catch_up(r.min_position).await?;
        let position = self.progress.position();
        let points = self.projection.trend(
            tenant.as_str(),
            account.as_ref().map(|a| a.as_str()),
            owner.as_ref().map(|o| o.as_str()),
            r.weeks,
            as_of,
        )?;
        Ok(pb::ComplianceTrend {
            tenant: tenant.to_string(),
            account_id: account.map(|a| a.to_string()).unwrap_or_default(),
            owner: owner.map(|o| o.to_string()).unwrap_or_default(),
            axis: wire::axis(as_of.axis),
            position,
            points: points.iter().map(wire::trend_point).collect(),
        })
    }
}

#[tonic::async_trait]
impl ComplianceService for ComplianceApi {
    async fn get_account_compliance(
        &self,
        request: Request<pb::GetAccountComplianceRequest>,
    ) -> Result<Response<pb::AccountCompliance>, Status> {
        self.account_compliance(request.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn get_compliance_rollup(
        &self,
        request: Request<pb::GetComplianceRollupRequest>,
    ) -> Result<Response<pb::ComplianceRollup>, Status> {
        self.rollup(request.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn get_compliance_trend(
        &self,
        request: Request<pb::GetComplianceTrendRequest>,
    ) -> Result<Response<pb::ComplianceTrend>, Status> {
        self.trend(request.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}
