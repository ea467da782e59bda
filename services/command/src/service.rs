//! `keyplan.v1.CommandService`.

use std::time::Duration;

use keyplan_domain::ids::{AccountId, TenantId};
use keyplan_domain::{AccountCommand, DomainError};
use keyplan_fanout::Relay;
use keyplan_proto::convert;
use keyplan_proto::pb;
use keyplan_proto::pb::command_service_server::CommandService;
use keyplan_repository::{AccountRepository, CommandEnvelope};
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;

use crate::status::to_status;

/// Implements `keyplan.v1.CommandService` over an [`AccountRepository`].
#[derive(Debug, Clone)]
pub struct CommandApi {
    repository: AccountRepository,
    replication: Option<(Relay, Duration)>,
}

impl CommandApi {
    /// A command service writing through `repository`, acknowledging once events are durable
    /// on local disk.
    pub fn new(repository: AccountRepository) -> Self {
        Self {
            repository,
            replication: None,
        }
    }

    /// Acknowledges only once JetStream has acknowledged the events too (`--ack replicated`,
    /// like Kafka's acks=all), waiting at most `timeout`.
    pub fn with_replication(mut self, relay: Relay, timeout: Duration) -> Self {
        self.replication = Some((relay, timeout));
        self
    }
}

#[tonic::async_trait]
impl CommandService for CommandApi {
    async fn execute(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let request_id = request_id(&request).to_owned();
        let r = request.into_inner();
        let commands = vec![command_from_proto(r.command)?];
        let context = RequestContext {
            tenant: r.tenant,
            account_id: r.account_id,
            expected_version: r.expected_version,
            idempotency_key: r.idempotency_key,
            actor: r.actor,
            occurred_at: r.occurred_at,
            correlation_id: r.correlation_id,
            causation_id: r.causation_id,
        };
        self.run(context, commands, &request_id).await
    }

    async fn execute_batch(
        &self,
        request: Request<pb::ExecuteBatchRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let request_id = request_id(&request).to_owned();
        let r = request.into_inner();
        let commands = r
            .commands
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                command_from_proto(Some(c))
                    .map_err(|s| Status::new(s.code(), format!("commands[{i}]: {}", s.message())))
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let context = RequestContext {
            tenant: r.tenant,
            account_id: r.account_id,
            expected_version: r.expected_version,
            idempotency_key: r.idempotency_key,
            actor: r.actor,
            occurred_at: r.occurred_at,
            correlation_id: r.correlation_id,
            causation_id: r.causation_id,
        };
        self.run(context, commands, &request_id).await
    }
}

/// The fields `Execute` and `ExecuteBatch` share.
struct RequestContext {
    tenant: String,
    account_id: String,
    expected_version: Option<pb::ExpectedVersion>,
    idempotency_key: String,
    actor: String,
    occurred_at: Option<prost_types::Timestamp>,
    correlation_id: String,
    causation_id: String,
}

impl CommandApi {
    async fn run(
        &self,
        context: RequestContext,
        commands: Vec<AccountCommand>,
        request_id: &str,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let envelope = envelope(context, commands).map_err(|e| to_status(e.into()))?;
        // Fields of every log line written while the command runs (its append and commit
        // included), so that a collector can group them, with the request id the caller sent.
        let span = tracing::info_span!(
            "execute",
            tenant = %envelope.tenant,
            account = %envelope.account,
            kind = envelope.commands.first().map_or("", AccountCommand::name),
            commands = envelope.commands.len(),
            request_id,
        );
        self.execute_in(envelope).instrument(span).await
    }

    async fn execute_in(
        &self,
        envelope: CommandEnvelope,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let account = format!("{}/{}", envelope.tenant, envelope.account);
        let count = envelope.commands.len();
        let outcome = self.repository.execute(envelope).await.map_err(to_status)?;
        let a = &outcome.append;
        if let Some((relay, timeout)) = &self.replication {
            if !relay.wait_published(a.last_position, *timeout).await {
                return Err(Status::deadline_exceeded(format!(
                    "stored durably at positions {}-{}, but JetStream did not acknowledge them within {timeout:?} \
                     (NATS unreachable?); they will be published when it is. Retry with the same idempotency key \
                     to confirm without storing twice",
                    a.first_position, a.last_position
                )));
            }
        }
        tracing::debug!(%account, count, version = a.last_version, deduplicated = a.deduplicated, "commands executed");
        Ok(Response::new(convert::execute_response_to_proto(a)))
    }
}

/// Longest request id taken from a caller.
const MAX_REQUEST_ID: usize = 128;

/// The request's `x-request-id` (the node's tower layer sets one on every request: the
/// caller's, or a generated UUID), if it is at most 128 characters of `[A-Za-z0-9._-]`; else
/// empty: a caller's text goes into log lines only once bounded.
fn request_id<T>(request: &Request<T>) -> &str {
    request
        .metadata()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .unwrap_or("")
}

fn command_from_proto(command: Option<pb::Command>) -> Result<AccountCommand, Status> {
    let kind = command.and_then(|c| c.kind).ok_or_else(|| {
        to_status(
            DomainError::invalid(
                "command",
                "is missing: set exactly one command (e.g. register_account, log_interaction)",
            )
            .into(),
        )
    })?;
    convert::command_from_proto(kind).map_err(|e| to_status(e.into()))
}

/// Translates and validates everything in the request but the commands' own rules.
fn envelope(
    context: RequestContext,
    commands: Vec<AccountCommand>,
) -> Result<CommandEnvelope, DomainError> {
    Ok(CommandEnvelope {
        tenant: TenantId::parse(context.tenant)?,
        account: AccountId::parse(context.account_id)?,
        expected: convert::expected_version_from_proto(context.expected_version.as_ref()),
        idempotency_key: (!context.idempotency_key.is_empty()).then_some(context.idempotency_key),
        actor: context.actor,
        occurred_at: context
            .occurred_at
            .as_ref()
            .map(|t| convert::timestamp_from_proto_checked("occurred_at", t))
            .transpose()?,
        correlation_id: parse_uuid("correlation_id", &context.correlation_id)?,
        causation_id: parse_uuid("causation_id", &context.causation_id)?,
        commands,
    })
}

fn parse_uuid(field: &'static str, value: &str) -> Result<Option<Uuid>, DomainError> {
    if value.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(value).map(Some).map_err(|_| {
        DomainError::invalid(
            field,
            format!("must be a UUID, got {}", keyplan_domain::text::quote(value)),
        )
    })
}
