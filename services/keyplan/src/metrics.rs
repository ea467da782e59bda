//! Prometheus metrics (`serve --metrics-listen ADDR`, `GET /metrics`) and the request id.
//!
//! One registry per node ([`Metrics`]), no global recorder: the library crates record nothing
//! themselves. The writer's batches come through the store's commit hook
//! ([`keyplan_store::EventStore::on_commit`]); RPCs, their codes and latencies, the append
//! latency and the open watches through [`ObserveLayer`], the outermost layer of the router;
//! everything `GetStatus` also shows (head, relay lag, projection positions) is read at scrape
//! time from the same sources, so the two never disagree.
//!
//! Recording is in memory only (atomics and short locks, no I/O): metrics never make the write
//! path wait on anything but memory. The scrape does its file-system walk (the store's size)
//! on the blocking pool.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Frame;
use keyplan_fanout::Relay;
use keyplan_projection::READ_MODELS_DIR;
use keyplan_store::{CommitStats, EventStore};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::operations::Projections;

/// The request and response header carrying a call's request id.
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Longest request id taken from a caller; a longer or otherwise malformed one is replaced.
pub const MAX_REQUEST_ID: usize = 128;

/// The method label of a path that names no method of the node's services.
const OTHER_METHOD: &str = "other";

/// Calls that count as an open watch while their response streams.
const WATCH_PATHS: [&str; 3] = [
    "/keyplan.v1.EventStoreService/Watch",
    "/keyplan.v1.TimelineService/WatchTimeline",
    "/keyplan.v1.ComplianceService/WatchAlerts",
];

/// Calls whose OK answer acknowledges durable commands (the append latency).
const COMMAND_PATHS: [&str; 2] = [
    "/keyplan.v1.CommandService/Execute",
    "/keyplan.v1.CommandService/ExecuteBatch",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: &'static str,
}

/// `projection`, and `shard` in a sharded cluster (where a node may run a projection per
/// shard).
type ProjectionLabel = Vec<(&'static str, String)>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabel {
    kind: &'static str,
}

/// Which parts a node runs, so that it serves only their metrics.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    /// The log and its writer (all, ingest).
    pub log: bool,
    /// The outbox relay (all, ingest, with NATS).
    pub relay: bool,
    /// Read models (all, projections).
    pub read_models: bool,
}

/// What the scrape reads, the same things `GetStatus` reads.
#[derive(Debug)]
struct Sources {
    store: Option<EventStore>,
    relay: Option<Relay>,
    projections: Projections,
}

/// A node's metrics. Cheap to share (`Arc`); every metric is recorded whether or not a
/// listener serves them.
pub struct Metrics {
    registry: Registry,
    data_dir: PathBuf,
    sources: OnceLock<Sources>,
    known_methods: HashSet<String>,
    append_seconds: Histogram,
    commit_events: Histogram,
    commit_appends: Histogram,
    commit_seconds: Histogram,
    rpcs: Family<RpcLabels, Counter>,
    rpc_seconds: Family<MethodLabel, Histogram>,
    watchers: Gauge,
    head: Gauge,
    writer_up: Gauge,
    relay_lag_events: Gauge,
    relay_lag_seconds: Gauge<f64, AtomicU64>,
    /// Labelled `projection`, and `shard` in a sharded cluster.
    projection_position: Family<ProjectionLabel, Gauge>,
    projection_lag: Family<ProjectionLabel, Gauge>,
    projection_interruptions: Family<ProjectionLabel, Counter>,
    store_bytes: Gauge,
    read_models_bytes: Gauge,
    alerts: Family<AlertLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// Latency buckets: 100 µs to about 3.3 s, doubling.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// Batch-size buckets: 1 to 8,192 (the writer's most events per batch), doubling.
fn size_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 14))
}

fn as_gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Metrics {
    /// The metrics of a node over `data_dir` that runs `parts` (only their metrics are
    /// served: a part the node does not run shows no zeros), with the methods of `descriptor_sets` as the
    /// only `method` label values (any other path counts as `other`: the labels stay bounded
    /// whatever a caller sends).
    pub fn new(data_dir: &Path, descriptor_sets: &[&[u8]], parts: Parts) -> Self {
        let mut known_methods = crate::shutdown::method_paths(descriptor_sets);
        known_methods.extend(
            [
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            ]
            .map(String::from),
        );
        let mut metrics = Self {
            registry: Registry::default(),
            data_dir: data_dir.to_owned(),
            sources: OnceLock::new(),
            known_methods,
            append_seconds: latency_buckets(),
            commit_events: size_buckets(),
            commit_appends: size_buckets(),
            commit_seconds: latency_buckets(),
            rpcs: Family::default(),
            rpc_seconds: Family::new_with_constructor(latency_buckets),
            watchers: Gauge::default(),
            head: Gauge::default(),
            writer_up: Gauge::default(),
            relay_lag_events: Gauge::default(),
            relay_lag_seconds: Gauge::default(),
            projection_position: Family::default(),
            projection_lag: Family::default(),
            projection_interruptions: Family::default(),
            alerts: Family::default(),
            store_bytes: Gauge::default(),
            read_models_bytes: Gauge::default(),
        };
        let r = &mut metrics.registry;
        if parts.log {
            r.register(
                "keyplan_append_duration_seconds",
                "Acknowledged commands (Execute, ExecuteBatch answered OK): from the call's arrival to its answer, the events durable",
                metrics.append_seconds.clone(),
            );
        }
        if parts.log {
            r.register(
                "keyplan_commit_batch_events",
                "Events per group commit of the store's writer",
                metrics.commit_events.clone(),
            );
        }
        if parts.log {
            r.register(
                "keyplan_commit_batch_appends",
                "Appends (callers) per group commit of the store's writer",
                metrics.commit_appends.clone(),
            );
        }
        if parts.log {
            r.register(
                "keyplan_commit_duration_seconds",
                "Group commits: from taking the batch to its appends answered (write, flush, fdatasync)",
                metrics.commit_seconds.clone(),
            );
        }
        r.register(
            "keyplan_grpc_requests",
            "gRPC calls finished, by method and status code",
            metrics.rpcs.clone(),
        );
        r.register(
            "keyplan_grpc_request_duration_seconds",
            "gRPC calls: from arrival to status (for a stream, its whole life), by method",
            metrics.rpc_seconds.clone(),
        );
        r.register(
            "keyplan_active_watchers",
            "Open Watch, WatchTimeline and WatchAlerts streams",
            metrics.watchers.clone(),
        );
        if parts.log {
            r.register(
                "keyplan_log_head_position",
                "Last committed global position of the local log",
                metrics.head.clone(),
            );
        }
        if parts.log {
            r.register(
                "keyplan_store_writer_up",
                "1 while the log can be written, 0 once a write failed (the node then exits)",
                metrics.writer_up.clone(),
            );
        }
        if parts.relay {
            r.register(
                "keyplan_relay_lag_events",
                "Events committed but not yet acknowledged by JetStream",
                metrics.relay_lag_events.clone(),
            );
        }
        if parts.relay {
            r.register(
                "keyplan_relay_lag_seconds",
                "Age of the oldest event not yet acknowledged by JetStream (0 when caught up)",
                metrics.relay_lag_seconds.clone(),
            );
        }
        if parts.read_models {
            r.register(
                "keyplan_projection_position",
                "Last global position applied by each projection",
                metrics.projection_position.clone(),
            );
            r.register(
                "keyplan_projection_feed_interruptions",
                "Times each projection's feed was interrupted (NATS away, a JetStream consumer \
                 lost or gone silent) and read again from its position",
                metrics.projection_interruptions.clone(),
            );
        }
        if parts.log && parts.read_models {
            r.register(
                "keyplan_projection_lag_events",
                "Events in the local log not yet applied by each projection (head - position)",
                metrics.projection_lag.clone(),
            );
        }
        if parts.log {
            r.register(
                "keyplan_store_size_bytes",
                "Bytes on disk of the event store: the log, its position index and snapshots",
                metrics.store_bytes.clone(),
            );
        }
        if parts.read_models {
            r.register(
                "keyplan_read_models_size_bytes",
                "Bytes on disk of the read models' database",
                metrics.read_models_bytes.clone(),
            );
            r.register(
                "keyplan_alerts_raised",
                "Compliance alerts this node raised (published, recorded, sent to WatchAlerts), by kind",
                metrics.alerts.clone(),
            );
        }
        metrics
    }

    /// Where the scrape reads what `GetStatus` reads; set once, when the node serves.
    pub fn set_sources(
        &self,
        store: Option<EventStore>,
        relay: Option<Relay>,
        projections: Projections,
    ) {
        let _ = self.sources.set(Sources {
            store,
            relay,
            projections,
        });
    }

    /// Counts one raised compliance alert of `kind` (`rule_overdue`, ...).
    pub fn record_alert(&self, kind: &'static str) {
        self.alerts.get_or_create(&AlertLabel { kind }).inc();
    }

    /// Records one group commit (the store's commit hook, on the writer thread).
    pub fn record_commit(&self, stats: &CommitStats) {
        self.commit_events.observe(stats.events as f64);
        self.commit_appends.observe(stats.appends as f64);
        self.commit_seconds.observe(stats.duration.as_secs_f64());
    }

    /// The method label of a request path.
    fn method(&self, path: &str) -> String {
        match self.known_methods.contains(path) {
            true => path.trim_start_matches('/').to_owned(),
            false => OTHER_METHOD.to_owned(),
        }
    }

    fn finished(&self, call: &Call, code: tonic::Code) {
        let seconds = call.started.elapsed().as_secs_f64();
        self.rpcs
            .get_or_create(&RpcLabels {
                method: call.method.clone(),
                code: code_name(code),
            })
            .inc();
        self.rpc_seconds
            .get_or_create(&MethodLabel {
                method: call.method.clone(),
            })
            .observe(seconds);
        if call.command && code == tonic::Code::Ok {
            if let Some(handled) = call.handled {
                self.append_seconds.observe(handled.as_secs_f64());
            }
        }
    }

    /// Brings the gauges mirroring the node's status up to date, then encodes everything in
    /// the text format.
    pub async fn render(&self) -> String {
        let (store_bytes, read_models_bytes) = {
            let (data_dir, with_log) = (
                self.data_dir.clone(),
                self.sources.get().is_some_and(|s| s.store.is_some()),
            );
            tokio::task::spawn_blocking(move || {
                let read_models = data_dir.join(READ_MODELS_DIR);
                let store = with_log.then(|| disk_usage(&data_dir, Some(&read_models)));
                (store, disk_usage(&read_models, None))
            })
            .await
            .unwrap_or((None, 0))
        };
        if let Some(bytes) = store_bytes {
            self.store_bytes.set(as_gauge(bytes));
        }
        self.read_models_bytes.set(as_gauge(read_models_bytes));
        if let Some(sources) = self.sources.get() {
            let head = sources.store.as_ref().map(EventStore::head);
            if let Some(store) = &sources.store {
                self.head.set(as_gauge(store.head()));
                self.writer_up
                    .set(i64::from(store.failure().borrow().is_none()));
            }
            if let Some(relay) = &sources.relay {
                let (events, seconds) = relay.lag();
                self.relay_lag_events.set(as_gauge(events));
                self.relay_lag_seconds.set(seconds);
            }
            for running in sources.projections.get().into_iter().flatten() {
                let projection = &running.handle;
                let mut label = vec![("projection", projection.name().to_owned())];
                if !running.shard.is_empty() {
                    label.push(("shard", running.shard.clone()));
                }
                let position = projection.position();
                self.projection_position
                    .get_or_create(&label)
                    .set(as_gauge(position));
                // The handle counts; the counter follows it (it only ever rises).
                let interruptions = self.projection_interruptions.get_or_create(&label);
                interruptions.inc_by(
                    projection
                        .interruptions()
                        .saturating_sub(interruptions.get()),
                );
                if let Some(head) = head {
                    self.projection_lag
                        .get_or_create(&label)
                        .set(as_gauge(head.saturating_sub(position)));
                }
            }
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Bytes allocated on disk under `dir` (sparse files count what they use), `skip` excluded.
fn disk_usage(dir: &Path, skip: Option<&Path>) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if Some(path.as_path()) == skip {
            continue;
        }
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if metadata.is_dir() {
            total += disk_usage(&path, skip);
        } else {
            #[cfg(unix)]
            {
                total += std::os::unix::fs::MetadataExt::blocks(&metadata) * 512;
            }
            #[cfg(not(unix))]
            {
                total += metadata.len();
            }
        }
    }
    total
}

/// gRPC's names of the status codes (as other gRPC servers label them).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The status code in `headers` (a trailers-only answer's headers, or trailers), if any.
fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from_i32(value))
}

/// The caller's request id if it is at most [`MAX_REQUEST_ID`] characters of
/// `[A-Za-z0-9._-]`, else a new UUID.
pub fn request_id(headers: &http::HeaderMap) -> http::HeaderValue {
    headers
        .get(&REQUEST_ID)
        .filter(|value| {
            let id = value.as_bytes();
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .cloned()
        .unwrap_or_else(|| {
            // A UUID's text is always a valid header value.
            http::HeaderValue::try_from(uuid::Uuid::now_v7().to_string())
                .unwrap_or_else(|_| http::HeaderValue::from_static("unknown"))
        })
}

/// Counts every call by method and status code with its latency, the append latency of
/// acknowledged commands and the open watches; gives every call a request id (the caller's
/// `x-request-id`, or a new UUID), set on the request for the services, on the call's `rpc`
/// span (so every log line of the call carries it) and on the response.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
}

impl ObserveLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`ObserveLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// One call being observed.
struct Call {
    metrics: Arc<Metrics>,
    method: String,
    started: Instant,
    /// From arrival to the response's headers (the handler's answer).
    handled: Option<Duration>,
    command: bool,
    /// Counted in the open watches until dropped.
    _watcher: Option<WatcherGuard>,
}

struct WatcherGuard(Gauge);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let method = self.metrics.method(path);
        let command = COMMAND_PATHS.contains(&path);
        let watcher = WATCH_PATHS.contains(&path).then(|| {
            self.metrics.watchers.inc();
            WatcherGuard(self.metrics.watchers.clone())
        });
        let id = request_id(request.headers());
        request.headers_mut().insert(REQUEST_ID, id.clone());
        let span = tracing::info_span!(
            "rpc",
            method = %method,
            request_id = id.to_str().unwrap_or_default(),
        );
        let mut call = Call {
            metrics: self.metrics.clone(),
            method,
            started: Instant::now(),
            handled: None,
            command,
            _watcher: watcher,
        };
        let response = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let mut response = match response.await {
                Ok(response) => response,
                Err(e) => {
                    call.finish(tonic::Code::Unknown);
                    return Err(e);
                }
            };
            call.handled = Some(call.started.elapsed());
            response.headers_mut().insert(REQUEST_ID, id);
            // A trailers-only answer (an error, usually) has its status in the headers.
            if let Some(code) = grpc_status(response.headers()) {
                call.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(ObservedBody {
                    inner: body,
                    call: Some(call),
                })
            }))
        })
    }
}

impl Call {
    fn finish(self, code: tonic::Code) {
        self.metrics.finished(&self, code);
    }
}

/// A response body that records its call when its status (trailers) goes by; a body dropped
/// before that (the client went away) counts as `Canceled`.
struct ObservedBody {
    inner: Body,
    call: Option<Call>,
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(tonic::Code::Cancelled);
        }
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.get_mut();
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) if f.is_trailers() => {
                if let Some(call) = this.call.take() {
                    let code = f
                        .trailers_ref()
                        .and_then(grpc_status)
                        .unwrap_or(tonic::Code::Unknown);
                    call.finish(code);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                if let Some(call) = this.call.take() {
                    call.finish(tonic::Code::Unknown);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The content type of the text format [`Metrics::render`] writes (OpenMetrics 1.0, which
/// Prometheus reads).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` over HTTP/1.1 on `listener` until the process ends.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&metrics, &request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

async fn respond<B>(
    metrics: &Metrics,
    request: &http::Request<B>,
) -> http::Response<http_body_util::Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/metrics") => {
            (http::StatusCode::OK, CONTENT_TYPE, metrics.render().await)
        }
        (_, "/metrics") => (
            http::StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET\n".to_owned(),
        ),
        _ => (
            http::StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "metrics are at /metrics\n".to_owned(),
        ),
    };
    let mut response = http::Response::new(http_body_util::Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_well_formed_request_id_is_kept_and_any_other_replaced_by_a_uuid() {
        let mut headers = http::HeaderMap::new();
        headers.insert(REQUEST_ID, http::HeaderValue::from_static("abc-1.2_3"));
        assert_eq!(request_id(&headers), "abc-1.2_3");
        for bad in ["", "a b", "x/y", &"a".repeat(MAX_REQUEST_ID + 1)] {
            headers.insert(REQUEST_ID, http::HeaderValue::try_from(bad).unwrap());
            let id = request_id(&headers);
            assert!(
                uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok(),
                "{bad:?}"
            );
        }
        headers.insert(
            REQUEST_ID,
            http::HeaderValue::try_from("a".repeat(MAX_REQUEST_ID)).unwrap(),
        );
        assert_eq!(request_id(&headers).len(), MAX_REQUEST_ID);
    }

    #[test]
    fn unknown_paths_share_one_method_label() {
        let metrics = Metrics::new(
            Path::new("/nonexistent"),
            &[keyplan_proto::FILE_DESCRIPTOR_SET],
            Parts {
                log: true,
                relay: false,
                read_models: true,
            },
        );
        assert_eq!(
            metrics.method("/keyplan.v1.CommandService/Execute"),
            "keyplan.v1.CommandService/Execute"
        );
        assert_eq!(metrics.method("/anything/else"), OTHER_METHOD);
    }
}
