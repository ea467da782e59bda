//! `keyplan.v1.AccountService`.

use keyplan_domain::ids::{AccountId, TenantId};
use keyplan_domain::DomainError;
use keyplan_proto::convert::{account_summary_to_proto, account_to_proto};
use keyplan_proto::pb;
use keyplan_proto::pb::account_service_server::AccountService;
use keyplan_repository::{AccountRepository, RepositoryError};
use tonic::{Request, Response, Status};

use crate::status::to_status;

/// Implements `keyplan.v1.AccountService` over an [`AccountRepository`].
#[derive(Debug, Clone)]
pub struct AccountApi {
    repository: AccountRepository,
}

impl AccountApi {
    /// A query service reading through `repository`.
    pub fn new(repository: AccountRepository) -> Self {
        Self { repository }
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
        let state = self
            .repository
            .load(&tenant, &account)
            .await
            .map_err(to_status)?;
        if !state.exists() {
            return Err(Status::not_found(format!(
                "account {account} is not registered for tenant {tenant}; list the tenant's accounts with ListAccounts"
            )));
        }
        Ok(Response::new(account_to_proto(
            tenant.as_str(),
            account.as_str(),
            &state,
        )))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let tenant = TenantId::parse(request.into_inner().tenant).map_err(invalid)?;
        let streams = self
            .repository
            .store()
            .list_streams(tenant.as_str())
            .map_err(|e| to_status(e.into()))?;
        let mut accounts = Vec::with_capacity(streams.len());
        for stream in streams {
            let Ok(account) = AccountId::parse(stream) else {
                continue;
            };
            let state = self
                .repository
                .load(&tenant, &account)
                .await
                .map_err(to_status)?;
            if state.exists() {
                accounts.push(account_summary_to_proto(account.as_str(), &state));
            }
        }
        Ok(Response::new(pb::ListAccountsResponse { accounts }))
    }
}
