//! Where each request names its tenant and its actor, so that the policy can hold a request to
//! the caller's tenant and record the caller as the actor, whatever the service.

use keyplan_proto::pb;

/// Where a request names the tenant it is about.
#[derive(Debug)]
pub enum TenantField<'a> {
    /// A tenant field (empty: the caller's tenant is filled in).
    One(&'a mut String),
    /// An event filter whose empty tenant means every tenant.
    Filter(&'a mut Option<pb::EventFilter>),
    /// The request is about no tenant (operations).
    None,
}

/// A request message the policy can scope.
pub trait Scoped: prost::Message + Default {
    /// The request's tenant.
    fn tenant(&mut self) -> TenantField<'_>;

    /// The actor the request asks to record (commands only).
    fn actor(&mut self) -> Option<&mut String> {
        None
    }
}

/// Requests with a `tenant` field.
macro_rules! tenant_field {
    ($($message:ty),* $(,)?) => {
        $(impl Scoped for $message {
            fn tenant(&mut self) -> TenantField<'_> {
                TenantField::One(&mut self.tenant)
            }
        })*
    };
}

tenant_field!(
    pb::GetAccountRequest,
    pb::ListAccountsRequest,
    pb::ReadStreamRequest,
    pb::VerifyStreamRequest,
    pb::WatchRequest,
    pb::ListTimelineRequest,
    pb::WatchTimelineRequest,
    pb::GetAccountComplianceRequest,
    pb::GetComplianceRollupRequest,
    pb::GetComplianceTrendRequest,
    pb::WatchAlertsRequest,
    pb::GetActivityCountsRequest,
    pb::GetDmuCoverageRequest,
    pb::ListQuietAccountsRequest,
    pb::GetOpportunitySummaryRequest,
    pb::GetPortfolioRequest,
    pb::GetAccountAsOfRequest,
    pb::DiffAccountRequest,
    pb::VerifyAccountRequest,
    pb::ExportAccountRequest,
);

impl Scoped for pb::ExecuteRequest {
    fn tenant(&mut self) -> TenantField<'_> {
        TenantField::One(&mut self.tenant)
    }

    fn actor(&mut self) -> Option<&mut String> {
        Some(&mut self.actor)
    }
}

impl Scoped for pb::ExecuteBatchRequest {
    fn tenant(&mut self) -> TenantField<'_> {
        TenantField::One(&mut self.tenant)
    }

    fn actor(&mut self) -> Option<&mut String> {
        Some(&mut self.actor)
    }
}

impl Scoped for pb::ReadAllRequest {
    fn tenant(&mut self) -> TenantField<'_> {
        TenantField::Filter(&mut self.filter)
    }
}

impl Scoped for pb::SubscribeRequest {
    fn tenant(&mut self) -> TenantField<'_> {
        TenantField::Filter(&mut self.filter)
    }
}

impl Scoped for pb::GetStatusRequest {
    fn tenant(&mut self) -> TenantField<'_> {
        TenantField::None
    }
}

impl Scoped for pb::RebuildProjectionsRequest {
    fn tenant(&mut self) -> TenantField<'_> {
        TenantField::None
    }
}

impl Scoped for pb::ExportReadModelsRequest {
    fn tenant(&mut self) -> TenantField<'_> {
        TenantField::None
    }
}
