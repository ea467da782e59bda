//! The one table of who may call what, and the tenancy rules every call is held to.
//!
//! Every RPC of `keyplan.v1` has exactly one [`Rule`] (a unit test holds the table to the
//! descriptors, so a new RPC without a rule fails the build's tests rather than being open);
//! a call to a path without a rule is refused. The README's role table is this table.
//!
//! Tenancy, for every request that names a tenant:
//! - an empty tenant is the caller's (filled in before the service sees the request);
//! - another tenant than the caller's is refused (`PERMISSION_DENIED`), except for reads by
//!   an `admin`, whose reads cross tenants (and whose `ReadAll`/`Subscribe` without a tenant
//!   filter read every tenant);
//! - commands record the caller's subject as their actor: an empty actor takes it, another
//!   actor is refused.

use bytes::{BufMut, Bytes, BytesMut};
use keyplan_proto::pb;

use crate::claims::{Caller, Role, Roles};
use crate::scope::{Scoped, TenantField};

/// What kind of call an RPC is, for tenancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Writes events: only in the caller's own tenant, as the caller.
    Command,
    /// Reads one tenant's data (or every tenant's, for an `admin`).
    Read,
    /// About the node, not a tenant.
    Operations,
}

/// Who may call one RPC.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The RPC's path, `/keyplan.v1.Service/Method`.
    pub path: &'static str,
    /// What kind of call it is.
    pub kind: Kind,
    /// The roles that may call it (any one suffices).
    pub roles: Roles,
    /// Decodes, checks and (if needed) rewrites the request message.
    scope: fn(Bytes, &Caller, Kind) -> Result<Option<Bytes>, Refusal>,
    /// Decodes the request message and returns the one tenant it names, if any.
    tenant: fn(Bytes) -> Result<Option<String>, Refusal>,
}

/// Why the policy refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller may not do this (`PERMISSION_DENIED`).
    Denied(String),
    /// The request itself is unusable (`INVALID_ARGUMENT`).
    Invalid(String),
}

impl Refusal {
    /// The refusal as a gRPC status.
    pub fn to_status(&self) -> tonic::Status {
        match self {
            Refusal::Denied(message) => tonic::Status::permission_denied(message.clone()),
            Refusal::Invalid(message) => tonic::Status::invalid_argument(message.clone()),
        }
    }
}

/// Anyone with a role in the tenant: its accounts, log, timelines, compliance and activity.
const READERS: Roles = Roles::of(&[
    Role::Rep,
    Role::Manager,
    Role::Auditor,
    Role::Service,
    Role::Admin,
]);
/// Tenant-wide dashboards (portfolio, roll-ups, trends, quiet accounts).
const DASHBOARDS: Roles = Roles::of(&[Role::Manager, Role::Auditor, Role::Service, Role::Admin]);
/// Commands. A `service` token writes only if it also grants `rep`.
const WRITERS: Roles = Roles::of(&[Role::Rep, Role::Manager]);
/// Whole-history exports, confidential text included.
const EXPORTERS: Roles = Roles::of(&[Role::Manager, Role::Auditor, Role::Admin]);
/// The node's status and rebuilds.
const OPERATORS: Roles = Roles::of(&[Role::Admin]);

macro_rules! rule {
    ($service:literal, $method:literal, $message:ty, $kind:ident, $roles:expr) => {
        Rule {
            path: concat!("/keyplan.v1.", $service, "/", $method),
            kind: Kind::$kind,
            roles: $roles,
            scope: scope::<$message>,
            tenant: tenant::<$message>,
        }
    };
}

/// The table: every RPC of `keyplan.v1`, its kind and who may call it.
pub static RULES: &[Rule] = &[
    rule!(
        "CommandService",
        "Execute",
        pb::ExecuteRequest,
        Command,
        WRITERS
    ),
    rule!(
        "CommandService",
        "ExecuteBatch",
        pb::ExecuteBatchRequest,
        Command,
        WRITERS
    ),
    rule!(
        "AccountService",
        "GetAccount",
        pb::GetAccountRequest,
        Read,
        READERS
    ),
    rule!(
        "AccountService",
        "ListAccounts",
        pb::ListAccountsRequest,
        Read,
        READERS
    ),
    rule!(
        "EventStoreService",
        "ReadStream",
        pb::ReadStreamRequest,
        Read,
        READERS
    ),
    rule!(
        "EventStoreService",
        "ReadAll",
        pb::ReadAllRequest,
        Read,
        READERS
    ),
    rule!(
        "EventStoreService",
        "Subscribe",
        pb::SubscribeRequest,
        Read,
        READERS
    ),
    rule!(
        "EventStoreService",
        "VerifyStream",
        pb::VerifyStreamRequest,
        Read,
        READERS
    ),
    rule!(
        "EventStoreService",
        "Watch",
        pb::WatchRequest,
        Read,
        READERS
    ),
    rule!(
        "TimelineService",
        "ListTimeline",
        pb::ListTimelineRequest,
        Read,
        READERS
    ),
    rule!(
        "TimelineService",
        "WatchTimeline",
        pb::WatchTimelineRequest,
        Read,
        READERS
    ),
    rule!(
        "ComplianceService",
        "GetAccountCompliance",
        pb::GetAccountComplianceRequest,
        Read,
        READERS
    ),
    rule!(
        "ComplianceService",
        "GetComplianceRollup",
        pb::GetComplianceRollupRequest,
        Read,
        DASHBOARDS
    ),
    rule!(
        "ComplianceService",
        "GetComplianceTrend",
        pb::GetComplianceTrendRequest,
        Read,
        DASHBOARDS
    ),
    rule!(
        "ComplianceService",
        "WatchAlerts",
        pb::WatchAlertsRequest,
        Read,
        READERS
    ),
    rule!(
        "ActivityService",
        "GetActivityCounts",
        pb::GetActivityCountsRequest,
        Read,
        READERS
    ),
    rule!(
        "ActivityService",
        "GetDmuCoverage",
        pb::GetDmuCoverageRequest,
        Read,
        READERS
    ),
    rule!(
        "ActivityService",
        "GetOpportunitySummary",
        pb::GetOpportunitySummaryRequest,
        Read,
        READERS
    ),
    rule!(
        "ActivityService",
        "ListQuietAccounts",
        pb::ListQuietAccountsRequest,
        Read,
        DASHBOARDS
    ),
    rule!(
        "ActivityService",
        "GetPortfolio",
        pb::GetPortfolioRequest,
        Read,
        DASHBOARDS
    ),
    rule!(
        "AuditService",
        "GetAccountAsOf",
        pb::GetAccountAsOfRequest,
        Read,
        READERS
    ),
    rule!(
        "AuditService",
        "DiffAccount",
        pb::DiffAccountRequest,
        Read,
        READERS
    ),
    rule!(
        "AuditService",
        "VerifyAccount",
        pb::VerifyAccountRequest,
        Read,
        READERS
    ),
    rule!(
        "AuditService",
        "ExportAccount",
        pb::ExportAccountRequest,
        Read,
        EXPORTERS
    ),
    rule!(
        "OperationsService",
        "GetStatus",
        pb::GetStatusRequest,
        Operations,
        OPERATORS
    ),
    rule!(
        "OperationsService",
        "RebuildProjections",
        pb::RebuildProjectionsRequest,
        Operations,
        OPERATORS
    ),
    rule!(
        "OperationsService",
        "ExportReadModels",
        pb::ExportReadModelsRequest,
        Operations,
        OPERATORS
    ),
];

/// Services open to every caller, without a token: health (load balancers and orchestrators
/// probe it) and reflection (it describes the API, which is public; it holds no data).
pub const OPEN_SERVICES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Whether `path` is open to every caller.
pub fn is_open(path: &str) -> bool {
    OPEN_SERVICES.iter().any(|open| path.starts_with(open))
}

/// The rule for `path`, if it has one.
pub fn rule(path: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.path == path)
}

impl Rule {
    /// Whether `caller`'s roles allow this RPC at all.
    pub fn admits(&self, caller: &Caller) -> Result<(), Refusal> {
        if caller.roles.intersects(self.roles) {
            return Ok(());
        }
        Err(Refusal::Denied(format!(
            "{} may not be called with {}; it needs one of: {}",
            self.path.trim_start_matches('/'),
            match caller.roles.is_empty() {
                true => "a token that grants no Keyplan role".to_owned(),
                false => format!("role {}", caller.roles),
            },
            self.roles
        )))
    }

    /// Holds the request message (a gRPC frame's payload) to the caller's tenant and
    /// subject: `Ok(None)` if it passes as it is, `Ok(Some(message))` with the tenant or actor
    /// filled in.
    pub fn scope(&self, message: Bytes, caller: &Caller) -> Result<Option<Bytes>, Refusal> {
        (self.scope)(message, caller, self.kind)
    }

    /// The one tenant the request message names: `None` for a request about no tenant (the
    /// node's operations) or about every tenant (an admin's `ReadAll` or `Subscribe` without
    /// a tenant filter), and for an empty tenant (which the caller's token fills in, when
    /// authentication is on).
    pub fn tenant(&self, message: Bytes) -> Result<Option<String>, Refusal> {
        (self.tenant)(message)
    }
}

/// [`Rule::tenant`] for requests of type `M`.
fn tenant<M: Scoped>(message: Bytes) -> Result<Option<String>, Refusal> {
    let mut request = M::decode(message)
        .map_err(|e| Refusal::Invalid(format!("the request is not a valid message: {e}")))?;
    let named = match request.tenant() {
        TenantField::None => None,
        TenantField::One(tenant) => Some(std::mem::take(tenant)),
        TenantField::Filter(filter) => filter.take().map(|f| f.tenant),
    };
    Ok(named.filter(|t| !t.is_empty()))
}

/// [`Rule::scope`] for requests of type `M`.
fn scope<M: Scoped>(message: Bytes, caller: &Caller, kind: Kind) -> Result<Option<Bytes>, Refusal> {
    let mut request = M::decode(message)
        .map_err(|e| Refusal::Invalid(format!("the request is not a valid message: {e}")))?;
    let mut changed = false;
    let cross_tenant = kind == Kind::Read && caller.reads_every_tenant();
    match request.tenant() {
        TenantField::None => {}
        TenantField::One(tenant) => {
            if tenant.is_empty() {
                if let Some(own) = &caller.tenant {
                    tenant.clone_from(own);
                    changed = true;
                }
            } else if caller.tenant.as_deref() != Some(tenant.as_str()) && !cross_tenant {
                return Err(other_tenant(caller, tenant));
            }
        }
        TenantField::Filter(filter) => {
            let asked = filter
                .as_ref()
                .map(|f| f.tenant.as_str())
                .unwrap_or_default();
            if asked.is_empty() {
                // Every tenant: only for an admin; anyone else reads their own.
                if !cross_tenant {
                    if let Some(own) = &caller.tenant {
                        filter
                            .get_or_insert_with(Default::default)
                            .tenant
                            .clone_from(own);
                        changed = true;
                    }
                }
            } else if caller.tenant.as_deref() != Some(asked) && !cross_tenant {
                return Err(other_tenant(caller, asked));
            }
        }
    }
    if let Some(actor) = request.actor() {
        if actor.is_empty() {
            actor.clone_from(&caller.subject);
            changed = true;
        } else if *actor != caller.subject {
            return Err(Refusal::Denied(format!(
                "the actor recorded on events is the token's subject {:?}; the request names \
                 actor {:?} (leave actor empty, or call with that person's token)",
                cut(&caller.subject),
                cut(actor)
            )));
        }
    }
    Ok(changed.then(|| {
        let mut frame = BytesMut::with_capacity(request.encoded_len());
        // Encoding into a buffer of the message's length cannot fail.
        let _ = request.encode(&mut frame);
        frame.freeze()
    }))
}

fn other_tenant(caller: &Caller, asked: &str) -> Refusal {
    Refusal::Denied(match &caller.tenant {
        Some(own) => format!(
            "this token acts for tenant {:?}; the request is for tenant {:?}",
            cut(own),
            cut(asked)
        ),
        None => format!(
            "this token acts for no tenant; the request is for tenant {:?}",
            cut(asked)
        ),
    })
}

/// Caller input quoted in a refusal, bounded.
fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// A gRPC frame (uncompressed) holding `message`.
pub fn frame(message: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(message.len() + 5);
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    frame.put_slice(message);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn caller(tenant: Option<&str>, roles: &[Role]) -> Caller {
        Caller {
            subject: "dana.kim".into(),
            tenant: tenant.map(str::to_owned),
            roles: Roles::of(roles),
            expires_at: u64::MAX,
        }
    }

    #[test]
    fn every_rpc_of_the_api_has_exactly_one_rule() {
        let set = <prost_types::FileDescriptorSet as prost::Message>::decode(
            keyplan_proto::FILE_DESCRIPTOR_SET,
        )
        .expect("descriptor set");
        let mut paths = Vec::new();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    paths.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        assert!(!paths.is_empty());
        for path in &paths {
            let rules = RULES.iter().filter(|rule| rule.path == path).count();
            assert_eq!(rules, 1, "{path} needs exactly one rule in policy::RULES");
        }
        assert_eq!(
            paths.len(),
            RULES.len(),
            "a rule names an RPC that does not exist"
        );
    }

    #[test]
    fn an_empty_tenant_and_actor_take_the_callers() {
        let rule = rule("/keyplan.v1.CommandService/Execute").expect("rule");
        let request = pb::ExecuteRequest::default().encode_to_vec();
        let rewritten = rule
            .scope(Bytes::from(request), &caller(Some("acme"), &[Role::Rep]))
            .expect("allowed")
            .expect("rewritten");
        let request = pb::ExecuteRequest::decode(rewritten).expect("decodes");
        assert_eq!(
            (request.tenant.as_str(), request.actor.as_str()),
            ("acme", "dana.kim")
        );
    }

    #[test]
    fn a_request_already_scoped_passes_unchanged() {
        let rule = rule("/keyplan.v1.CommandService/ExecuteBatch").expect("rule");
        let request = pb::ExecuteBatchRequest {
            tenant: "acme".into(),
            actor: "dana.kim".into(),
            ..Default::default()
        };
        let scoped = rule.scope(
            Bytes::from(request.encode_to_vec()),
            &caller(Some("acme"), &[Role::Rep]),
        );
        assert_eq!(scoped, Ok(None));
    }

    #[test]
    fn other_tenants_and_actors_are_refused() {
        let execute = rule("/keyplan.v1.CommandService/Execute").expect("rule");
        let rep = caller(Some("acme"), &[Role::Rep]);
        let other_tenant = pb::ExecuteRequest {
            tenant: "globex".into(),
            ..Default::default()
        };
        assert!(matches!(
            execute.scope(Bytes::from(other_tenant.encode_to_vec()), &rep),
            Err(Refusal::Denied(_))
        ));
        let spoofed = pb::ExecuteRequest {
            actor: "someone.else".into(),
            ..Default::default()
        };
        assert!(matches!(
            execute.scope(Bytes::from(spoofed.encode_to_vec()), &rep),
            Err(Refusal::Denied(_))
        ));
        // An admin reads across tenants but writes in none but its own.
        let admin = caller(Some("ops"), &[Role::Admin, Role::Rep]);
        assert!(execute
            .scope(Bytes::from(other_tenant.encode_to_vec()), &admin)
            .is_err());
        let read = rule("/keyplan.v1.AccountService/GetAccount").expect("rule");
        let other = pb::GetAccountRequest {
            tenant: "globex".into(),
            ..Default::default()
        };
        assert!(read
            .scope(Bytes::from(other.encode_to_vec()), &admin)
            .is_ok());
        assert!(read
            .scope(Bytes::from(other.encode_to_vec()), &rep)
            .is_err());
    }

    #[test]
    fn read_all_without_a_tenant_reads_the_callers_unless_admin() {
        let read_all = rule("/keyplan.v1.EventStoreService/ReadAll").expect("rule");
        let everything = Bytes::from(pb::ReadAllRequest::default().encode_to_vec());
        let scoped = read_all
            .scope(everything.clone(), &caller(Some("acme"), &[Role::Service]))
            .expect("allowed")
            .expect("rewritten");
        let scoped = pb::ReadAllRequest::decode(scoped).expect("decodes");
        assert_eq!(scoped.filter.expect("filter").tenant, "acme");
        assert_eq!(
            read_all.scope(everything, &caller(None, &[Role::Admin])),
            Ok(None)
        );
    }

    #[test]
    fn roles_are_checked_against_the_table() {
        let auditor = caller(Some("acme"), &[Role::Auditor]);
        for rule in RULES {
            let admitted = rule.admits(&auditor).is_ok();
            assert_eq!(
                admitted,
                rule.kind == Kind::Read,
                "{}: an auditor reads everything and writes nothing",
                rule.path
            );
        }
        let rep = caller(Some("acme"), &[Role::Rep]);
        assert!(rule("/keyplan.v1.OperationsService/GetStatus")
            .expect("rule")
            .admits(&rep)
            .is_err());
        let none = caller(Some("acme"), &[]);
        assert!(RULES.iter().all(|rule| rule.admits(&none).is_err()));
    }
}
