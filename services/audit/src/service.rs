//! `keyplan.v1.AuditService`.

use std::pin::Pin;

use futures::Stream;
use keyplan_domain::ids::{AccountId, ReviewId, TenantId};
use keyplan_domain::values::Timestamp;
use keyplan_proto::convert::{
    account_to_proto, timestamp_from_proto_checked, timestamp_to_proto, DEFAULT_INTERACTIONS,
};
use keyplan_proto::pb;
use keyplan_proto::pb::audit_service_server::AuditService;
use keyplan_store::{Direction, EventStore, StreamId};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::asof::{account_as_of, Point};
use crate::diff::{diff_account, Range};
use crate::export::{write_line, EVENTS_PER_CHUNK};
use crate::history::existing_version;
use crate::status::AuditError;

/// Implements `keyplan.v1.AuditService` over an [`EventStore`].
///
/// Every answer is a fresh replay of the account's stream from the store (no cache, no read
/// model), so it covers exactly what the hash chain covers. Store reads are synchronous and a
/// replay is CPU work, so each request runs on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct AuditApi {
    store: EventStore,
}

impl AuditApi {
    /// An audit service over `store`.
    pub fn new(store: EventStore) -> Self {
        Self { store }
    }

    /// Runs `f` with the store on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EventStore) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, AuditError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store)).await?
    }
}

/// The stream of a request's tenant and account, validated.
fn stream_id(tenant: String, account_id: String) -> Result<StreamId, AuditError> {
    let tenant =
        TenantId::parse(tenant).map_err(|e| AuditError::invalid("tenant", e.to_string()))?;
    let account = AccountId::parse(account_id)
        .map_err(|e| AuditError::invalid("account_id", e.to_string()))?;
    Ok(StreamId::new(tenant.as_str(), account.as_str()))
}

fn instant(field: &'static str, value: &prost_types::Timestamp) -> Result<Timestamp, AuditError> {
    timestamp_from_proto_checked(field, value)
        .map_err(|e| AuditError::invalid(field, e.to_string()))
}

fn review_id(field: &'static str, value: String) -> Result<ReviewId, AuditError> {
    ReviewId::parse(value).map_err(|e| AuditError::invalid(field, e.to_string()))
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportChunk, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn get_account_as_of(
        &self,
        request: Request<pb::GetAccountAsOfRequest>,
    ) -> Result<Response<pb::AsOfResponse>, Status> {
        let r = request.into_inner();
        let stream = stream_id(r.tenant, r.account_id)?;
        let point = match r.point {
            Some(pb::get_account_as_of_request::Point::Version(v)) => Point::Version(v),
            Some(pb::get_account_as_of_request::Point::RecordedAt(t)) => {
                Point::RecordedAt(instant("recorded_at", &t)?)
            }
            Some(pb::get_account_as_of_request::Point::OccurredAt(t)) => {
                Point::OccurredAt(instant("occurred_at", &t)?)
            }
            None => {
                return Err(AuditError::Missing {
                    field: "point",
                    hint: "set version, recorded_at (as Keyplan knew it then) or occurred_at \
                           (business time: as things had happened by then)",
                }
                .into())
            }
        };
        let address = stream.clone();
        let as_of = self
            .blocking(move |store| account_as_of(store, &stream, point))
            .await?;
        let mut account = account_to_proto(
            &address.tenant,
            &address.stream,
            &as_of.state,
            DEFAULT_INTERACTIONS,
        );
        // The state counts the events it applied; the stream version it reflects is what an
        // auditor correlates with ReadStream and the export.
        account.version = as_of.version;
        Ok(Response::new(pb::AsOfResponse {
            account: Some(account),
            version: as_of.version,
            point: as_of.point,
            events_applied: as_of.events_applied,
            stream_version: as_of.stream_version,
            version_recorded_at: Some(timestamp_to_proto(as_of.version_recorded_at)),
        }))
    }

    async fn diff_account(
        &self,
        request: Request<pb::DiffAccountRequest>,
    ) -> Result<Response<pb::DiffAccountResponse>, Status> {
        let r = request.into_inner();
        let stream = stream_id(r.tenant, r.account_id)?;
        let range = match r.range {
            Some(pb::diff_account_request::Range::Versions(v)) => Range::Versions {
                from: v.from_version,
                to: v.to_version,
            },
            Some(pb::diff_account_request::Range::Reviews(v)) => Range::Reviews {
                from: review_id("reviews.from_review_id", v.from_review_id)?,
                to: review_id("reviews.to_review_id", v.to_review_id)?,
            },
            None => {
                return Err(AuditError::Missing {
                    field: "range",
                    hint: "set versions {from_version, to_version} or reviews \
                           {from_review_id, to_review_id}",
                }
                .into())
            }
        };
        let diff = self
            .blocking(move |store| diff_account(store, &stream, &range))
            .await?;
        Ok(Response::new(diff))
    }

    async fn verify_account(
        &self,
        request: Request<pb::VerifyAccountRequest>,
    ) -> Result<Response<pb::VerifyAccountResponse>, Status> {
        let r = request.into_inner();
        let stream = stream_id(r.tenant, r.account_id)?;
        let (report, stream_version) = self
            .blocking(move |store| {
                let version = existing_version(store, &stream)?;
                Ok((store.verify_stream(&stream)?, version))
            })
            .await?;
        Ok(Response::new(pb::VerifyAccountResponse {
            intact: report.first_broken_version.is_none(),
            events_checked: report.events_checked,
            first_broken_version: report.first_broken_version.unwrap_or(0),
            detail: report.detail,
            last_hash: hex::encode(report.last_hash),
            stream_version,
        }))
    }

    type ExportAccountStream = ExportStream;

    async fn export_account(
        &self,
        request: Request<pb::ExportAccountRequest>,
    ) -> Result<Response<Self::ExportAccountStream>, Status> {
        let r = request.into_inner();
        let stream = stream_id(r.tenant, r.account_id)?;
        let from = r.from_version.max(1);
        // Fix the end before streaming: the export is the prefix the stream had when it was
        // asked for, so its last hash is one VerifyAccount also reports for that version.
        let check = stream.clone();
        let last = self
            .blocking(move |store| {
                let current = existing_version(store, &check)?;
                if from > current {
                    return Err(AuditError::VersionBeyondStream {
                        field: "from_version",
                        stream: check,
                        requested: from,
                        current,
                    });
                }
                Ok(current)
            })
            .await?;

        // Small buffer: a slow client slows the reads down instead of piling chunks up.
        let (tx, rx) = mpsc::channel(2);
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut next = from;
            while next <= last {
                let (store, page_stream) = (store.clone(), stream.clone());
                let want = (last - next + 1).min(EVENTS_PER_CHUNK as u64) as usize;
                let chunk = tokio::task::spawn_blocking(move || {
                    let slice = store.read_stream(&page_stream, next, Direction::Forward, want)?;
                    let mut chunk = pb::ExportChunk::default();
                    for recorded in &slice.events {
                        write_line(recorded, &mut chunk.jsonl)?;
                        if chunk.events == 0 {
                            chunk.first_version = recorded.stream_version;
                        }
                        chunk.events += 1;
                        chunk.last_version = recorded.stream_version;
                    }
                    Ok::<_, AuditError>(chunk)
                })
                .await
                .map_err(AuditError::from)
                .and_then(|chunk| chunk);
                let item = match chunk {
                    Ok(chunk) if chunk.events == 0 => {
                        Err(AuditError::Store(keyplan_store::StoreError::Corrupt(
                            format!("version {next} of {stream} is missing from the stream"),
                        )))
                    }
                    other => other,
                };
                let failed = item.is_err();
                if let Ok(chunk) = &item {
                    next = chunk.last_version + 1;
                }
                if tx.send(item.map_err(Status::from)).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
