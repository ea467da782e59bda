//! `keyplan.v1.EventStoreService`.

use std::pin::Pin;

use futures::Stream;
use keyplan_domain::ids::{AccountId, TenantId};
use keyplan_proto::convert::recorded_event_to_proto;
use keyplan_proto::pb;
use keyplan_proto::pb::event_store_service_server::EventStoreService;
use keyplan_store::{Direction, EventFilter, EventStore, RecordedEvent, StreamId};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::status::ReadError;

/// Default page size of reads.
const DEFAULT_PAGE: u32 = 100;
/// Most bytes of events one page answers with (at least one event, which the store bounds at
/// 192 KiB), so that a page stays under gRPC's default 4 MiB message limit whatever the events
/// hold: a page of 1,000 events carrying ~9 KB of text each was 9 MiB, which stock clients
/// refuse. A cut page says where to continue, as a short page does.
const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// Keeps the events that fit [`MAX_PAGE_BYTES`]; returns them and the metadata of the first
/// event left out, if any (where the next page starts).
fn cap_page(mut events: Vec<pb::Event>) -> (Vec<pb::Event>, Option<pb::EventMetadata>) {
    let mut total = 0;
    let keep = events
        .iter()
        .position(|e| {
            total += prost::Message::encoded_len(e) + 8;
            total > MAX_PAGE_BYTES
        })
        .map_or(events.len(), |cut| cut.max(1));
    if keep >= events.len() {
        return (events, None);
    }
    let first_left_out = events[keep].metadata.clone();
    events.truncate(keep);
    (events, first_left_out)
}

/// `bytes` as lower-case hex, the one text form of hashes in the API (as `VerifyAccount` and
/// the audit export write them).
fn lower_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, b| {
            let _ = write!(text, "{b:02x}");
            text
        })
}

/// Largest page a read may ask for.
const MAX_PAGE: u32 = 1000;

/// Implements `keyplan.v1.EventStoreService` over an [`EventStore`].
#[derive(Debug, Clone)]
pub struct EventStoreApi {
    store: EventStore,
}

impl EventStoreApi {
    /// A read service over `store`.
    pub fn new(store: EventStore) -> Self {
        Self { store }
    }
}

fn page_size(requested: u32) -> Result<usize, ReadError> {
    match requested {
        0 => Ok(DEFAULT_PAGE as usize),
        n if n <= MAX_PAGE => Ok(n as usize),
        n => Err(keyplan_domain::DomainError::invalid(
            "max_count",
            format!(
                "must be at most {MAX_PAGE}, got {n}; page with next_version/next_position instead"
            ),
        )
        .into()),
    }
}

fn stream_id(tenant: String, account_id: String) -> Result<StreamId, ReadError> {
    let tenant = TenantId::parse(tenant)?;
    let account = AccountId::parse(account_id)?;
    Ok(StreamId::new(tenant.as_str(), account.as_str()))
}

fn filter_from_proto(filter: Option<pb::EventFilter>) -> Result<EventFilter, ReadError> {
    let Some(f) = filter else {
        return Ok(EventFilter::default());
    };
    let tenant = if f.tenant.is_empty() {
        None
    } else {
        Some(TenantId::parse(f.tenant)?.to_string())
    };
    let stream = if f.account_id.is_empty() {
        None
    } else {
        if tenant.is_none() {
            return Err(keyplan_domain::DomainError::invalid(
                "filter.account_id",
                "needs filter.tenant too: account ids are unique only within a tenant",
            )
            .into());
        }
        Some(AccountId::parse(f.account_id)?.to_string())
    };
    for t in &f.event_types {
        if !keyplan_domain::AccountEvent::TYPES.contains(&t.as_str()) {
            return Err(keyplan_domain::DomainError::invalid(
                "filter.event_types",
                format!(
                    "unknown event type {}; known types: {}",
                    keyplan_domain::text::quote(t),
                    keyplan_domain::AccountEvent::TYPES.join(", ")
                ),
            )
            .into());
        }
    }
    Ok(EventFilter {
        tenant,
        stream,
        event_types: f.event_types,
    })
}

fn to_proto(events: &[RecordedEvent]) -> Result<Vec<pb::Event>, ReadError> {
    events
        .iter()
        .map(|e| recorded_event_to_proto(e).map_err(ReadError::from))
        .collect()
}

impl EventStoreApi {
    /// A gRPC stream of the log from `from_position`, filtered: catch-up, then live.
    fn feed(&self, from_position: u64, filter: EventFilter) -> EventStream {
        let mut subscription = self.store.subscribe(from_position, filter);
        // Convert in a task so the gRPC stream is a plain channel: back-pressure from a slow
        // client propagates to the subscription, which then reads further behind in the log.
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            while let Some(next) = subscription.next().await {
                let item = next
                    .map_err(ReadError::from)
                    .and_then(|e| recorded_event_to_proto(&e).map_err(ReadError::from))
                    .map_err(Status::from);
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl EventStoreService for EventStoreApi {
    async fn read_stream(
        &self,
        request: Request<pb::ReadStreamRequest>,
    ) -> Result<Response<pb::ReadStreamResponse>, Status> {
        let r = request.into_inner();
        let direction = match pb::Direction::try_from(r.direction) {
            Ok(pb::Direction::Unspecified | pb::Direction::Forward) => Direction::Forward,
            Ok(pb::Direction::Backward) => Direction::Backward,
            Err(_) => {
                return Err(ReadError::from(keyplan_domain::DomainError::invalid(
                    "direction",
                    format!(
                        "unknown value {}; use DIRECTION_FORWARD (default) or DIRECTION_BACKWARD",
                        r.direction
                    ),
                ))
                .into())
            }
        };
        let max = page_size(r.max_count)?;
        let stream = stream_id(r.tenant, r.account_id)?;
        let store = self.store.clone();
        let slice = tokio::task::spawn_blocking(move || {
            store.read_stream(&stream, r.from_version, direction, max)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(ReadError::from)?;
        let (events, cut_at) = cap_page(to_proto(&slice.events)?);
        Ok(Response::new(pb::ReadStreamResponse {
            events,
            stream_version: slice.stream_version,
            next_version: cut_at
                .map(|m| m.stream_version)
                .or(slice.next_version)
                .unwrap_or(0),
        }))
    }

    async fn read_all(
        &self,
        request: Request<pb::ReadAllRequest>,
    ) -> Result<Response<pb::ReadAllResponse>, Status> {
        let r = request.into_inner();
        let max = page_size(r.max_count)?;
        let filter = filter_from_proto(r.filter)?;
        let store = self.store.clone();
        let slice =
            tokio::task::spawn_blocking(move || store.read_all(r.from_position, max, &filter))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(ReadError::from)?;
        let (events, cut_at) = cap_page(to_proto(&slice.events)?);
        Ok(Response::new(pb::ReadAllResponse {
            events,
            next_position: cut_at.map_or(slice.next_position, |m| m.global_position),
            head_position: slice.head_position,
        }))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let r = request.into_inner();
        let filter = filter_from_proto(r.filter)?;
        Ok(Response::new(self.feed(r.from_position, filter)))
    }

    type WatchStream = EventStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let r = request.into_inner();
        if r.tenant.is_empty() {
            return Err(ReadError::from(keyplan_domain::DomainError::invalid(
                "tenant",
                "is required: watch one account, or every account of one tenant",
            ))
            .into());
        }
        let filter = filter_from_proto(Some(pb::EventFilter {
            tenant: r.tenant,
            account_id: r.account_id,
            event_types: Vec::new(),
        }))?;
        Ok(Response::new(self.feed(r.from_position, filter)))
    }

    async fn verify_stream(
        &self,
        request: Request<pb::VerifyStreamRequest>,
    ) -> Result<Response<pb::VerifyStreamResponse>, Status> {
        let r = request.into_inner();
        let stream = stream_id(r.tenant, r.account_id)?;
        let store = self.store.clone();
        let not_found = stream.clone();
        let report = tokio::task::spawn_blocking(move || {
            if store.stream_version(&stream)? == 0 {
                return Ok(None);
            }
            store.verify_stream(&stream).map(Some)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(ReadError::from)?
        .ok_or_else(|| Status::not_found(format!("account {not_found} has no events")))?;
        // `last_hash` is deprecated in favour of `last_hash_hex`, and still filled for the
        // clients written before it.
        #[allow(deprecated)]
        let response = pb::VerifyStreamResponse {
            intact: report.first_broken_version.is_none(),
            events_checked: report.events_checked,
            first_broken_version: report.first_broken_version.unwrap_or(0),
            detail: report.detail,
            last_hash: report.last_hash.to_vec(),
            last_hash_hex: lower_hex(&report.last_hash),
        };
        Ok(Response::new(response))
    }
}
