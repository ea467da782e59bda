//! `keyplan.v1.ComplianceService`.

use std::pin::Pin;

use keyplan_projection::ProjectionHandle;
use keyplan_proto::convert::timestamp_to_proto;
use keyplan_proto::pb;
use keyplan_proto::pb::compliance_service_server::ComplianceService;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::alerts::{Alert, AlertHub, AlertKind};

use crate::error::QueryError;
use crate::projection::ComplianceProjection;
use crate::status::to_status;
use crate::wire;

/// Implements `keyplan.v1.ComplianceService` over the compliance projection.
#[derive(Debug, Clone)]
pub struct ComplianceApi {
    projection: ComplianceProjection,
    progress: ProjectionHandle,
    /// Where raised alerts arrive; `None` on a node that does not evaluate them.
    alerts: Option<AlertHub>,
}

/// Alerts buffered per `WatchAlerts` stream for a slow reader.
const WATCH_BUFFER: usize = 64;

/// What one `WatchAlerts` call asked for.
struct AlertFilter {
    tenant: String,
    kinds: Vec<AlertKind>,
    account: Option<String>,
}

impl AlertFilter {
    fn matches(&self, alert: &Alert) -> bool {
        alert.tenant == self.tenant
            && (self.kinds.is_empty() || self.kinds.contains(&alert.kind))
            && self.account.as_ref().is_none_or(|a| *a == alert.account)
    }
}

impl ComplianceApi {
    /// A query service reading `projection`, whose runner reports its progress on `progress`
    /// (for read-your-writes waits).
    pub fn new(projection: ComplianceProjection, progress: ProjectionHandle) -> Self {
        Self {
            projection,
            progress,
            alerts: None,
        }
    }

    /// Also serves `WatchAlerts` from `hub` (where the node's evaluator sends alerts).
    pub fn with_alerts(mut self, hub: AlertHub) -> Self {
        self.alerts = Some(hub);
        self
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

/// Sends one `WatchAlerts` caller the alerts that match its filter until it leaves, or ends
/// its stream saying it fell behind if it read too slowly.
async fn forward_alerts(
    mut raised: broadcast::Receiver<std::sync::Arc<Alert>>,
    filter: AlertFilter,
    out: mpsc::Sender<Result<pb::ComplianceAlert, Status>>,
) {
    loop {
        tokio::select! {
            () = out.closed() => return,
            next = raised.recv() => match next {
                Ok(alert) if filter.matches(&alert) => {
                    if out.send(Ok(alert.to_wire())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = out.send(Err(to_status(QueryError::FellBehind))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[tonic::async_trait]
impl ComplianceService for ComplianceApi {
    type WatchAlertsStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ComplianceAlert, Status>> + Send>>;

    async fn watch_alerts(
        &self,
        request: Request<pb::WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let r = request.into_inner();
        let filter = (|| {
            Ok::<_, QueryError>(AlertFilter {
                tenant: wire::tenant(r.tenant)?.to_string(),
                kinds: wire::alert_kinds(&r.kinds)?,
                account: wire::optional_account(r.account_id)?.map(|a| a.to_string()),
            })
        })()
        .map_err(to_status)?;
        let hub = self.alerts.as_ref().ok_or_else(|| {
            to_status(QueryError::Unavailable(
                "this node does not evaluate alerts; ask a node that serves the compliance \
                 read model with alerts on"
                    .into(),
            ))
        })?;
        let (out, rx) = mpsc::channel(WATCH_BUFFER);
        tokio::spawn(forward_alerts(hub.subscribe(), filter, out));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

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
