//! `keyplan.v1.AccountService`.

use keyplan_domain::ids::{AccountId, TenantId};
use keyplan_domain::{AccountState, DomainError};
use keyplan_projection::ProjectionHandle;
use keyplan_proto::convert::{
    account_summary_to_proto, account_to_proto, DEFAULT_INTERACTIONS, MAX_INTERACTIONS,
};
use keyplan_proto::pb;
use keyplan_proto::pb::account_service_server::AccountService;
use keyplan_repository::{AccountRepository, RepositoryError};
use tonic::{Request, Response, Status};

use crate::projection::AccountStateProjection;
use crate::status::to_status;

/// Where account states come from.
#[derive(Debug, Clone)]
pub enum AccountSource {
    /// The repository over the local log (always current).
    Repository(AccountRepository),
    /// A projection fed through NATS, with its progress.
    Projection(AccountStateProjection, ProjectionHandle),
}

/// Implements `keyplan.v1.AccountService`.
#[derive(Debug, Clone)]
pub struct AccountApi {
    source: AccountSource,
}

impl AccountApi {
    /// A query service reading from `source`.
    pub fn new(source: AccountSource) -> Self {
        Self { source }
    }

    /// Waits until the source includes `min_position`.
    async fn catch_up(&self, min_position: u64) -> Result<(), Status> {
        if let AccountSource::Projection(_, handle) = &self.source {
            handle.catch_up(min_position).await.map_err(|e| {
                Status::unavailable(format!("{e}; an ingest node answers from its log at once"))
            })?;
        }
        Ok(())
    }

    /// The account's state with (at least) its `newest` interactions' facts.
    async fn get(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        newest: usize,
    ) -> Result<Option<AccountState>, Status> {
        match &self.source {
            AccountSource::Repository(repository) => {
                let state = repository
                    .load_with_interactions(tenant, account)
                    .await
                    .map_err(to_status)?;
                Ok(state.exists().then_some(state))
            }
            AccountSource::Projection(projection, _) => Ok(projection
                .get(tenant.as_str(), account.as_str(), newest)
                .map_err(to_status)?
                .filter(AccountState::exists)),
        }
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<(String, AccountState)>, Status> {
        match &self.source {
            AccountSource::Repository(repository) => {
                let streams = repository
                    .store()
                    .list_streams(tenant.as_str())
                    .map_err(|e| to_status(RepositoryError::from(e)))?;
                let mut accounts = Vec::with_capacity(streams.len());
                for stream in streams {
                    let Ok(account) = AccountId::parse(stream) else {
                        continue;
                    };
                    let state = repository.load(tenant, &account).await.map_err(to_status)?;
                    accounts.push((account.to_string(), state));
                }
                Ok(accounts)
            }
            AccountSource::Projection(projection, _) => Ok(projection.list(tenant.as_str())),
        }
    }
}

fn invalid(e: DomainError) -> Status {
    to_status(RepositoryError::Domain(e))
}

#[tonic::async_trait]
impl AccountService for AccountApi {
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let r = request.into_inner();
        let tenant = TenantId::parse(r.tenant).map_err(invalid)?;
        let account = AccountId::parse(r.account_id).map_err(invalid)?;
        let max_interactions = match r.max_interactions as usize {
            0 => DEFAULT_INTERACTIONS,
            n if n > MAX_INTERACTIONS => {
                return Err(invalid(DomainError::invalid(
                    "max_interactions",
                    format!(
                        "must be at most {MAX_INTERACTIONS}, got {n}; page through an account's \
                         interactions with the timeline (ListTimeline)"
                    ),
                )))
            }
            n => n,
        };
        self.catch_up(r.min_position).await?;
        let state = self.get(&tenant, &account, max_interactions).await?.ok_or_else(|| {
            Status::not_found(format!(
                "account {account} is not registered for tenant {tenant}; list the tenant's accounts with ListAccounts"
            ))
        })?;
        Ok(Response::new(account_to_proto(
            tenant.as_str(),
            account.as_str(),
            &state,
            max_interactions,
        )))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let r = request.into_inner();
        let tenant = TenantId::parse(r.tenant).map_err(invalid)?;
        self.catch_up(r.min_position).await?;
        let accounts = self
            .list(&tenant)
            .await?
            .iter()
            .filter(|(_, state)| state.exists())
            .map(|(account, state)| account_summary_to_proto(account, state))
            .collect();
        Ok(Response::new(pb::ListAccountsResponse { accounts }))
    }
}
