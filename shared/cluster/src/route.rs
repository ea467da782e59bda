//! Routing: any node of a sharded cluster accepts any call and serves it where the call's
//! tenant lives.
//!
//! [`RouteLayer`] sits inside the authentication layer, so it sees each call with the caller
//! verified and the tenant filled in from the token. It reads the request's one message, asks
//! the policy table which tenant it names, and finds the tenant's shard in the [`ShardMap`]:
//! - one of this node's shards (an ingest node's one; those a projections node follows), and
//!   a service this node serves: the call goes on, here, marked with its shard
//!   ([`ServedShard`]);
//! - otherwise the whole HTTP/2 request (unary or server streaming, headers and token
//!   included) is forwarded to a node of the tenant's shard: read models to one of its
//!   replicas (the next one when one is unreachable, or refuses with `UNAVAILABLE` before any
//!   message, as one whose read models are still loading does), everything else to its
//!   ingest node.
//!   The answer, streamed, is the client's answer.
//!
//! Forwarding instead of redirecting keeps every client (grpcurl, the generated clients, the
//! browser through gRPC-Web) unaware of shards. The owner verifies the token again: a node
//! passes on the caller's credentials, never its own.
//!
//! A forwarded request carries `keyplan-forwarded` (the shard that forwarded it) and
//! `keyplan-shard-map` (the map's fingerprint). The receiving node forwards nothing further:
//! a forwarded call it cannot serve, because its map differs or because no node of the shard
//! serves that service, is refused with `FAILED_PRECONDITION` saying so. So a tenant's commands
//! land on one shard's log, or on none.
//!
//! Every call routed by tenant is answered with `keyplan-shard`, the shard that served it: with
//! a position from that answer, the pair (shard, position) is the read-your-writes token. A
//! read that sends `keyplan-shard` with its `min_position` is refused (`FAILED_PRECONDITION`)
//! if the tenant is on another shard, rather than compare positions of two logs.
//!
//! A read about every tenant (an admin's `ReadAll` or `Subscribe` without a tenant) reads one
//! shard's log: the one its `keyplan-shard` request header names, from any node; without the
//! header, the shard of the node asked (a node of several shards asks for the header). Its
//! positions are that shard's. Calls about the node itself (status, rebuilds, exports) are
//! always the node's own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::HeaderName;
use http::HeaderValue;
use http_body_util::Full;
use keyplan_auth::layer::read_message;
use keyplan_auth::policy::{self, frame, Kind};
use tonic::body::Body;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::Status;
use tower::{Layer, Service, ServiceExt};

use crate::map::{cut, Shard, ShardMap};

/// Request header of a forwarded call: the id of the shard whose node forwarded it.
pub const FORWARDED: HeaderName = HeaderName::from_static("keyplan-forwarded");
/// Request header of a forwarded call: the forwarding node's [`ShardMap::fingerprint`].
pub const MAP_FINGERPRINT: HeaderName = HeaderName::from_static("keyplan-shard-map");
/// Response header: the shard that served the call. Request header: the shard a
/// `min_position` was read from.
pub const SHARD: HeaderName = HeaderName::from_static("keyplan-shard");

/// The services whose calls go to a shard's replicas (its read models) when it lists any.
const READ_MODEL_SERVICES: &[&str] = &[
    "/keyplan.v1.TimelineService/",
    "/keyplan.v1.ComplianceService/",
    "/keyplan.v1.ActivityService/",
];

/// Headers of one HTTP connection, not of the call: never forwarded over HTTP/2.
const CONNECTION_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// What a node needs to route: the map, its own shards, which services it serves, and a
/// channel to every other node of the map.
#[derive(Debug)]
struct Routes {
    map: Arc<ShardMap>,
    /// The shards this node serves: one (its log's), or those a projections node follows.
    shards: Vec<String>,
    /// `shards`, joined with commas, for headers and messages.
    named: String,
    /// Path prefixes (`/keyplan.v1.CommandService/`) of the services this node serves.
    served: Vec<String>,
    channels: HashMap<String, Channel>,
    /// Spreads reads over a shard's replicas.
    next_replica: AtomicUsize,
    max_message_bytes: usize,
}

/// Adds [`Route`] to every route of a node of shard `shard`.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    /// `None`: not in a sharded cluster; every call is served here.
    routes: Option<Arc<Routes>>,
}

/// Why routing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The node's shard is not in the map.
    #[error("--shard {0:?} is not a shard of the shard map")]
    UnknownShard(String),
    /// A node address of the map is not usable as a gRPC endpoint.
    #[error("the shard map's address {address:?}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
}

impl RouteLayer {
    /// The layer of a node outside any sharded cluster: every call passes untouched.
    pub fn off() -> RouteLayer {
        RouteLayer { routes: None }
    }

    /// Routes for a node of `shards` (one, or several a projections node follows) that
    /// serves the services named in `served` (full names, `keyplan.v1.CommandService`),
    /// reading request messages of at most `max_message_bytes`. Nodes with an `https://`
    /// address are reached over TLS with `tls` (or the system's roots). Channels connect on
    /// first use.
    pub fn new(
        map: Arc<ShardMap>,
        shards: &[String],
        served: &[&str],
        tls: Option<ClientTlsConfig>,
        max_message_bytes: usize,
    ) -> Result<RouteLayer, RouteError> {
        if let Some(unknown) = shards.iter().find(|s| map.shard(s).is_none()) {
            return Err(RouteError::UnknownShard(unknown.clone()));
        }
        if shards.is_empty() {
            return Err(RouteError::UnknownShard(String::new()));
        }
        let mut channels = HashMap::new();
        for s in map.shards() {
            for address in std::iter::once(&s.ingest).chain(&s.replicas) {
                let mut endpoint =
                    Endpoint::from_shared(address.clone()).map_err(|e| RouteError::Address {
                        address: address.clone(),
                        reason: e.to_string(),
                    })?;
                if address.starts_with("https://") {
                    let tls = tls
                        .clone()
                        .unwrap_or_else(|| ClientTlsConfig::new().with_native_roots());
                    endpoint = endpoint.tls_config(tls).map_err(|e| RouteError::Address {
                        address: address.clone(),
                        reason: e.to_string(),
                    })?;
                }
                let endpoint = endpoint
                    .connect_timeout(std::time::Duration::from_secs(3))
                    .http2_keep_alive_interval(std::time::Duration::from_secs(10))
                    .keep_alive_while_idle(true);
                channels
                    .entry(address.clone())
                    .or_insert_with(|| endpoint.connect_lazy());
            }
        }
        Ok(RouteLayer {
            routes: Some(Arc::new(Routes {
                map,
                shards: shards.to_vec(),
                named: shards.join(","),
                served: served.iter().map(|s| format!("/{s}/")).collect(),
                channels,
                next_replica: AtomicUsize::new(0),
                max_message_bytes,
            })),
        })
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Route {
            inner,
            routes: self.routes.clone(),
        }
    }
}

/// See [`RouteLayer`].
#[derive(Debug, Clone)]
pub struct Route<S> {
    inner: S,
    routes: Option<Arc<Routes>>,
}

/// Where one call goes.
enum Destination<'a> {
    /// Served by this node.
    Here,
    /// Forwarded to these addresses, tried in order.
    There(&'a Shard, Vec<&'a String>),
}

impl<S> Service<http::Request<Body>> for Route<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (Some(routes), Some(rule)) = (&self.routes, policy::rule(request.uri().path())) else {
            // Not sharded; or health, reflection, and paths the node answers as unknown.
            return Box::pin(self.inner.call(request));
        };
        let routes = routes.clone();
        // The inner service was made ready for this call: take it, leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let message = match read_message(body, routes.max_message_bytes).await {
                Ok(message) => message,
                Err(status) => return Ok(status.into_http()),
            };
            let tenant = match rule.tenant(message.clone()) {
                Ok(tenant) => tenant,
                Err(refusal) => return Ok(refusal.to_status().into_http()),
            };
            // The one frame, kept: served here, it becomes the body again; forwarded, it is
            // sent as it is (and again to the next node if one is unreachable or unavailable).
            let framed = frame(&message);
            let here =
                |parts| http::Request::from_parts(parts, Body::new(Full::new(framed.clone())));
            let (shard, tenant) = match tenant {
                None if rule.kind == Kind::Operations => {
                    // About the node: its own answer.
                    return inner.call(here(parts)).await;
                }
                None => {
                    // About every tenant: one shard's log, named for the node that serves it.
                    let shard = match routes.shard_read(&parts.headers, parts.uri.path()) {
                        Ok(Some(shard)) => shard,
                        Ok(None) => return inner.call(here(parts)).await,
                        Err(status) => return Ok(status.into_http()),
                    };
                    if let Ok(id) = HeaderValue::from_str(&shard.id) {
                        parts.headers.insert(SHARD, id);
                    }
                    (shard, None)
                }
                Some(tenant) => {
                    let owner = routes.map.owner(&tenant);
                    if let Err(status) = routes.check(&parts.headers, &tenant, owner) {
                        return Ok(with_shard(status.into_http(), owner));
                    }
                    (owner, Some(tenant))
                }
            };
            let response = match routes.destination(parts.uri.path(), shard) {
                Destination::Here => {
                    let mut request = here(parts);
                    request
                        .extensions_mut()
                        .insert(ServedShard(shard.id.clone()));
                    inner.call(request).await?
                }
                // A forwarded call is forwarded no further.
                Destination::There(to, _) if parts.headers.contains_key(&FORWARDED) => {
                    routes.not_served(parts.uri.path(), to).into_http()
                }
                Destination::There(to, addresses) => {
                    // Words for the log and for an UNAVAILABLE answer: made only when forwarding.
                    let what = match &tenant {
                        Some(tenant) => format!("tenant {:?} is on shard {}", cut(tenant), to.id),
                        None => format!("the call reads shard {}'s log", to.id),
                    };
                    routes
                        .forward(parts, framed.clone(), &what, to, &addresses)
                        .await
                }
            };
            Ok(with_shard(response, shard))
        })
    }
}

impl Routes {
    /// Refuses a forwarded call from a node with another map, a call forwarded for a tenant
    /// this node's map gives to another shard, and a read-your-writes token of another shard.
    fn check(&self, headers: &http::HeaderMap, tenant: &str, owner: &Shard) -> Result<(), Status> {
        if let Some(from) = headers.get(&FORWARDED) {
            let from = header_text(from);
            self.check_same_map(headers)?;
            if !self.serves(owner) {
                return Err(Status::failed_precondition(format!(
                    "shard {from} forwarded a call for tenant {:?} to shard {}, but the map \
                     gives that tenant to shard {}",
                    cut(tenant),
                    self.named,
                    owner.id
                )));
            }
        }
        if let Some(token_shard) = headers.get(&SHARD) {
            if token_shard.as_bytes() != owner.id.as_bytes() {
                return Err(Status::failed_precondition(format!(
                    "the request's keyplan-shard {:?} says its min_position is a position of \
                     that shard's log; tenant {:?} is on shard {}: positions of two shards do \
                     not compare (read again without min_position, or with one from shard {})",
                    header_text(token_shard),
                    cut(tenant),
                    owner.id,
                    owner.id
                )));
            }
        }
        Ok(())
    }

    /// Refuses a forwarded call from a node whose map differs from this node's.
    fn check_same_map(&self, headers: &http::HeaderMap) -> Result<(), Status> {
        let Some(from) = headers.get(&FORWARDED) else {
            return Ok(());
        };
        let theirs = headers
            .get(&MAP_FINGERPRINT)
            .map(header_text)
            .unwrap_or_default();
        if theirs == self.map.fingerprint() {
            return Ok(());
        }
        Err(Status::failed_precondition(format!(
            "shard {} forwarded this call with shard map {theirs:?}; this node (shard {}) has \
             shard map {:?}: start every node with the same --shard-map file",
            header_text(from),
            self.named,
            self.map.fingerprint()
        )))
    }

    /// The shard whose log a read about every tenant (an admin's `ReadAll` or `Subscribe`
    /// without a tenant) reads: the one its `keyplan-shard` header names, else this node's
    /// own when it has one. Positions are each log's own, so such a read never merges shards;
    /// an admin reads each shard in turn, from any node.
    ///
    /// `None`: a node of several shards that serves the call itself answers it as it is (a
    /// read that names no tenant only because authentication is off, which the service
    /// refuses).
    fn shard_read(&self, headers: &http::HeaderMap, path: &str) -> Result<Option<&Shard>, Status> {
        self.check_same_map(headers)?;
        let all = || {
            self.map
                .shards()
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(named) = headers.get(&SHARD) {
            return self
                .map
                .shard(&String::from_utf8_lossy(named.as_bytes()))
                .map(Some)
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "keyplan-shard {:?} is not a shard of the shard map ({})",
                        header_text(named),
                        all()
                    ))
                });
        }
        match self.shards.as_slice() {
            [own] => self.map.shard(own).map(Some).ok_or_else(|| {
                // `RouteLayer::new` checked every shard of the node against the map.
                Status::internal(format!("shard {own} is not in the shard map"))
            }),
            _ if self.served.iter().any(|s| path.starts_with(s.as_str())) => Ok(None),
            _ => {
                let service = path
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or_default();
                Err(Status::failed_precondition(format!(
                    "this call reads one shard's log, and this node follows shards {}: name \
                     the shard with the keyplan-shard request header (one of {}); {} reads \
                     every tenant of one shard",
                    self.named,
                    all(),
                    service.chars().take(64).collect::<String>()
                )))
            }
        }
    }

    /// Whether `shard` is one of this node's.
    fn serves(&self, shard: &Shard) -> bool {
        self.shards.contains(&shard.id)
    }

    /// Here, if the tenant is one of this node's shards' and this node serves the call's service;
    /// else the nodes of the tenant's shard that serve it.
    fn destination<'a>(&'a self, path: &str, owner: &'a Shard) -> Destination<'a> {
        let served_here = self.served.iter().any(|s| path.starts_with(s.as_str()));
        if self.serves(owner) && served_here {
            return Destination::Here;
        }
        let read_model = READ_MODEL_SERVICES.iter().any(|s| path.starts_with(s));
        if read_model && !owner.replicas.is_empty() {
            let n = owner.replicas.len();
            let first = self.next_replica.fetch_add(1, Ordering::Relaxed) % n;
            let order = (0..n).map(|i| &owner.replicas[(first + i) % n]).collect();
            Destination::There(owner, order)
        } else {
            Destination::There(owner, vec![&owner.ingest])
        }
    }

    /// A forwarded call this node could not serve either.
    fn not_served(&self, path: &str, shard: &Shard) -> Status {
        let service = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        Status::failed_precondition(format!(
            "no node of shard {} serves {}: list the shard's projections nodes as its \
             replicas in the shard map, or run its ingest node with --role all",
            shard.id,
            service.chars().take(64).collect::<String>()
        ))
    }

    /// Sends the call (`parts` and its one gRPC frame) to the first of `addresses` that
    /// answers.
    async fn forward(
        &self,
        mut parts: http::request::Parts,
        frame: bytes::Bytes,
        what: &str,
        shard: &Shard,
        addresses: &[&String],
    ) -> http::Response<Body> {
        for name in CONNECTION_HEADERS {
            parts.headers.remove(*name);
        }
        parts
            .headers
            .insert(http::header::TE, HeaderValue::from_static("trailers"));
        if let Ok(shard_id) = HeaderValue::from_str(&self.named) {
            parts.headers.insert(FORWARDED, shard_id);
        }
        if let Ok(fingerprint) = HeaderValue::from_str(self.map.fingerprint()) {
            parts.headers.insert(MAP_FINGERPRINT, fingerprint);
        }
        let mut failures = Vec::new();
        for (n, address) in addresses.iter().enumerate() {
            let Some(channel) = self.channels.get(address.as_str()) else {
                continue;
            };
            let next_one = n + 1 < addresses.len();
            let mut attempt = http::Request::new(Body::new(Full::new(frame.clone())));
            *attempt.method_mut() = parts.method.clone();
            *attempt.uri_mut() = parts.uri.clone();
            *attempt.version_mut() = http::Version::HTTP_2;
            *attempt.headers_mut() = parts.headers.clone();
            match channel.clone().oneshot(attempt).await {
                // A node that answers UNAVAILABLE before any message (its read models still
                // loading, it is shutting down, a read-your-writes wait ran out): the next one
                // may serve the call, which is a read (only reads have several nodes to try).
                Ok(response) if next_one && unavailable(&response) => {
                    let said = response
                        .headers()
                        .get("grpc-message")
                        .map(header_text)
                        .unwrap_or_default();
                    tracing::warn!(shard = %shard.id, %address, %said, "a node of the shard answered UNAVAILABLE; trying the next");
                    failures.push(format!("{address}: UNAVAILABLE {said}"));
                }
                Ok(response) => {
                    tracing::debug!(
                        %what,
                        shard = %shard.id,
                        %address,
                        rpc = %parts.uri.path(),
                        "forwarded"
                    );
                    return response;
                }
                Err(e) => {
                    tracing::warn!(shard = %shard.id, %address, error = %e, "a node of the shard is unreachable");
                    failures.push(format!("{address}: {e}"));
                }
            }
        }
        Status::unavailable(format!(
            "{what}, and no node of it answered ({}); retry",
            failures.join("; ").chars().take(400).collect::<String>()
        ))
        .into_http()
    }
}

/// Request extension of a call served here: the shard of its tenant, for [`ByShard`] to
/// pick that shard's service on a node that serves several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedShard(pub String);

/// One gRPC service per shard, behind one name: a projections node that follows several
/// shards keeps each shard's read models apart (own database, feed, checkpoints and
/// positions), and serves a call with the service of the shard [`RouteLayer`] found for its
/// tenant ([`ServedShard`]). A call without one (no tenant: the service refuses it; or
/// routing off) goes to the first shard's.
#[derive(Debug)]
pub struct ByShard<S> {
    services: Arc<Vec<(String, S)>>,
}

impl<S> Clone for ByShard<S> {
    fn clone(&self) -> Self {
        Self {
            services: self.services.clone(),
        }
    }
}

impl<S> ByShard<S> {
    /// Each shard's service (at least one; the first serves calls that name no shard).
    pub fn new(services: Vec<(String, S)>) -> Option<Self> {
        (!services.is_empty()).then(|| Self {
            services: Arc::new(services),
        })
    }

    /// The service for a call served for `shard` (`None`: the first).
    fn pick(&self, shard: Option<&ServedShard>) -> &S {
        let found = shard.and_then(|ServedShard(id)| {
            self.services
                .iter()
                .find(|(own, _)| own == id)
                .map(|(_, service)| service)
        });
        // `new` refuses an empty list.
        found.unwrap_or_else(|| &self.services[0].1)
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for ByShard<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for ByShard<S>
where
    S: Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call readies the service it goes to.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let service = self.pick(request.extensions().get()).clone();
        Box::pin(service.oneshot(request))
    }
}

/// `response` with `keyplan-shard` naming the shard that served it.
fn with_shard(mut response: http::Response<Body>, owner: &Shard) -> http::Response<Body> {
    if let Ok(value) = HeaderValue::from_str(&owner.id) {
        response.headers_mut().insert(SHARD, value);
    }
    response
}

/// Whether `response` is a gRPC "trailers-only" answer with status `UNAVAILABLE`: refused
/// before any message, so the call can go to another node as if this one were unreachable.
fn unavailable(response: &http::Response<Body>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == b"14")
}

/// A header a caller sent, quoted in a refusal, bounded.
fn header_text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes())
        .chars()
        .take(32)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MAP: &str = r#"
[[shards]]
id = "s1"
ingest = "http://127.0.0.1:1"
replicas = ["http://127.0.0.1:11", "http://127.0.0.1:12"]
stream = "KEYPLAN_S1"
subject_prefix = "keyplan-s1"

[[shards]]
id = "s2"
ingest = "http://127.0.0.1:2"
stream = "KEYPLAN_S2"
subject_prefix = "keyplan-s2"

[tenants]
one = "s1"
two = "s2"
"#;

    const INGEST: &[&str] = &["keyplan.v1.CommandService", "keyplan.v1.AccountService"];
    const TIMELINE: &str = "/keyplan.v1.TimelineService/ListTimeline";
    const EXECUTE: &str = "/keyplan.v1.CommandService/Execute";

    fn routes(shards: &str, served: &[&str]) -> Arc<Routes> {
        let map = Arc::new(ShardMap::parse(MAP).unwrap());
        let shards: Vec<String> = shards.split(',').map(str::to_owned).collect();
        RouteLayer::new(map, &shards, served, None, 1 << 20)
            .unwrap()
            .routes
            .unwrap()
    }

    fn there<'a>(d: Destination<'a>) -> (String, Vec<String>) {
        match d {
            Destination::Here => ("here".into(), vec![]),
            Destination::There(shard, to) => (shard.id.clone(), to.into_iter().cloned().collect()),
        }
    }

    #[tokio::test]
    async fn a_call_is_served_here_only_for_this_shard_and_a_service_it_serves() {
        let s1 = routes("s1", INGEST);
        let owner = |t: &str| s1.map.owner(t).clone();
        assert_eq!(there(s1.destination(EXECUTE, &owner("one"))).0, "here");
        // Another shard's command: to its ingest node.
        assert_eq!(
            there(s1.destination(EXECUTE, &owner("two"))),
            ("s2".into(), vec!["http://127.0.0.1:2".into()])
        );
        // This shard's read model, which an ingest node does not serve: to its replicas, in
        // turn, each call starting at the next one.
        let first = there(s1.destination(TIMELINE, &owner("one")));
        let second = there(s1.destination(TIMELINE, &owner("one")));
        assert_eq!(first.1.len(), 2);
        assert_ne!(first.1[0], second.1[0]);
        assert_eq!(first.1[0], second.1[1]);
        // A shard without replicas: its ingest node (an all-in-one node serves read models).
        assert_eq!(
            there(s1.destination(TIMELINE, &owner("two"))),
            ("s2".into(), vec!["http://127.0.0.1:2".into()])
        );
    }

    #[tokio::test]
    async fn a_replica_of_several_shards_serves_each_of_their_tenants_here() {
        const READ_MODELS: &[&str] = &["keyplan.v1.TimelineService"];
        let both = routes("s1,s2", READ_MODELS);
        let owner = |t: &str| both.map.owner(t).clone();
        assert_eq!(there(both.destination(TIMELINE, &owner("one"))).0, "here");
        assert_eq!(there(both.destination(TIMELINE, &owner("two"))).0, "here");
        // Commands still go to each tenant's ingest node.
        assert_eq!(
            there(both.destination(EXECUTE, &owner("two"))),
            ("s2".into(), vec!["http://127.0.0.1:2".into()])
        );
        // A forwarded call for either shard's tenant is this node's to serve.
        let fingerprint = both.map.fingerprint().to_owned();
        let forwarded = request(&[
            ("keyplan-forwarded", "s1"),
            ("keyplan-shard-map", fingerprint.as_str()),
        ]);
        assert!(both.check(forwarded.headers(), "t", &owner("two")).is_ok());
        assert!(both.check(forwarded.headers(), "t", &owner("one")).is_ok());
        let unknown = RouteLayer::new(
            both.map.clone(),
            &["s1".into(), "s9".into()],
            READ_MODELS,
            None,
            1 << 20,
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("\"s9\""), "{unknown}");
    }

    fn request(headers: &[(&'static str, &str)]) -> http::Request<Body> {
        let mut r = http::Request::new(Body::empty());
        for (name, value) in headers {
            r.headers_mut()
                .insert(*name, HeaderValue::from_str(value).unwrap());
        }
        r
    }

    #[tokio::test]
    async fn by_shard_serves_each_call_with_its_shards_service() {
        let service = |name: &'static str| {
            tower::service_fn(move |_: http::Request<()>| async move {
                Ok::<_, std::convert::Infallible>(name)
            })
        };
        assert!(ByShard::<()>::new(Vec::new()).is_none());
        let by_shard = ByShard::new(vec![
            ("s1".into(), service("one")),
            ("s2".into(), service("two")),
        ])
        .unwrap();
        let call = |shard: Option<&str>| {
            let mut request = http::Request::new(());
            if let Some(shard) = shard {
                request.extensions_mut().insert(ServedShard(shard.into()));
            }
            by_shard.clone().oneshot(request)
        };
        assert_eq!(call(Some("s2")).await.unwrap(), "two");
        assert_eq!(call(Some("s1")).await.unwrap(), "one");
        assert_eq!(call(None).await.unwrap(), "one");
    }

    #[tokio::test]
    async fn a_read_about_every_tenant_reads_the_shard_its_header_names() {
        const READ_ALL: &str = "/keyplan.v1.EventStoreService/ReadAll";
        let read = |routes: &Routes, headers: &[(&'static str, &str)], path: &str| {
            routes
                .shard_read(request(headers).headers(), path)
                .map(|shard| shard.map(|s| s.id.clone()))
                .map_err(|s| (s.code(), s.message().to_owned()))
        };
        let s1 = routes("s1", INGEST);
        assert_eq!(read(&s1, &[], READ_ALL), Ok(Some("s1".into())));
        assert_eq!(
            read(&s1, &[("keyplan-shard", "s2")], READ_ALL),
            Ok(Some("s2".into()))
        );
        // Not served here: to the named shard's ingest node.
        let s2 = s1.map.shard("s2").unwrap();
        assert_eq!(
            there(s1.destination(READ_ALL, s2)),
            ("s2".into(), vec!["http://127.0.0.1:2".into()])
        );
        let (code, message) = read(&s1, &[("keyplan-shard", "s9")], READ_ALL).unwrap_err();
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(message.contains("\"s9\" is not a shard") && message.contains("s1, s2"));
        let (code, message) = read(
            &s1,
            &[("keyplan-forwarded", "s2"), ("keyplan-shard-map", "0")],
            READ_ALL,
        )
        .unwrap_err();
        assert_eq!(code, tonic::Code::FailedPrecondition);
        assert!(message.contains("same --shard-map"), "{message}");

        // A node of several shards cannot pick one for the caller.
        let both = routes("s1,s2", &["keyplan.v1.TimelineService"]);
        let (code, message) = read(&both, &[], READ_ALL).unwrap_err();
        assert_eq!(code, tonic::Code::FailedPrecondition);
        assert!(
            message.contains("keyplan-shard request header") && message.contains("s1,s2"),
            "{message}"
        );
        assert_eq!(
            read(&both, &[("keyplan-shard", "s2")], READ_ALL),
            Ok(Some("s2".into()))
        );
        // A call it serves itself that names no tenant (authentication off): its own answer.
        assert_eq!(read(&both, &[], TIMELINE), Ok(None));
    }

    /// A node on 127.0.0.1 that answers every call of the timeline and command services
    /// with `code` (trailers-only, as a node refusing a call before any message does); its
    /// address.
    async fn node_answering(code: tonic::Code) -> String {
        /// The command service if `COMMANDS`, else the timeline service.
        #[derive(Clone)]
        struct Answer<const COMMANDS: bool>(tonic::Code);
        impl<const COMMANDS: bool> tonic::server::NamedService for Answer<COMMANDS> {
            const NAME: &'static str = if COMMANDS {
                "keyplan.v1.CommandService"
            } else {
                "keyplan.v1.TimelineService"
            };
        }
        impl<const COMMANDS: bool> Service<http::Request<Body>> for Answer<COMMANDS> {
            type Response = http::Response<Body>;
            type Error = std::convert::Infallible;
            type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: http::Request<Body>) -> Self::Future {
                std::future::ready(Ok(Status::new(self.0, "as this node says").into_http()))
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(Answer::<false>(code))
                .add_service(Answer::<true>(code))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        address
    }

    #[tokio::test]
    async fn a_read_goes_on_to_the_next_replica_when_one_answers_unavailable() {
        let ingest = node_answering(tonic::Code::Unavailable).await;
        let loading = node_answering(tonic::Code::Unavailable).await;
        let serving = node_answering(tonic::Code::Ok).await;
        let map = format!(
            "[[shards]]\nid = \"s1\"\ningest = \"{ingest}\"\nreplicas = [\"{loading}\", \"{serving}\"]\n\
             stream = \"KEYPLAN_S1\"\nsubject_prefix = \"keyplan-s1\"\n\n\
             [[shards]]\nid = \"s2\"\ningest = \"http://127.0.0.1:2\"\nstream = \"KEYPLAN_S2\"\n\
             subject_prefix = \"keyplan-s2\"\n\n[tenants]\none = \"s1\"\n"
        );
        let map = Arc::new(ShardMap::parse(&map).unwrap());
        let s2 = RouteLayer::new(map, &["s2".into()], INGEST, None, 1 << 20)
            .unwrap()
            .routes
            .unwrap();
        let owner = s2.map.owner("one").clone();
        let forward = |path: &'static str| {
            let s2 = s2.clone();
            let owner = owner.clone();
            async move {
                let Destination::There(shard, addresses) = s2.destination(path, &owner) else {
                    panic!("forwarded");
                };
                let addresses: Vec<String> = addresses.into_iter().cloned().collect();
                let addresses: Vec<&String> = addresses.iter().collect();
                let (parts, ()) = http::Request::post(path).body(()).unwrap().into_parts();
                let response = s2
                    .forward(parts, bytes::Bytes::new(), "a test", shard, &addresses)
                    .await;
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .unwrap_or_default()
                };
                (header("grpc-status"), header("grpc-message"))
            }
        };
        // Each replica in turn comes first: the loading one passes the read on.
        for _ in 0..2 {
            assert_eq!(forward(TIMELINE).await.0, "0");
        }
        // The only node (a command's ingest node) answers as it is, in its own words.
        let (status, message) = forward(EXECUTE).await;
        assert_eq!(status, "14");
        assert!(message.contains("this%20node%20says"), "{message}");
    }

    #[tokio::test]
    async fn forwarded_calls_and_read_tokens_are_held_to_the_map() {
        let s2 = routes("s2", INGEST);
        let own = s2.map.owner("two").clone();
        let other = s2.map.owner("one").clone();
        let fingerprint = s2.map.fingerprint().to_owned();
        let refused = |headers: &[(&'static str, &str)], owner: &Shard| {
            s2.check(request(headers).headers(), "t", owner)
                .err()
                .map(|s| (s.code(), s.message().to_owned()))
        };
        assert_eq!(refused(&[], &own), None);
        let forwarded = [
            ("keyplan-forwarded", "s1"),
            ("keyplan-shard-map", fingerprint.as_str()),
        ];
        assert_eq!(refused(&forwarded, &own), None);
        let (code, message) = refused(&forwarded, &other).unwrap();
        assert_eq!(code, tonic::Code::FailedPrecondition);
        assert!(
            message.contains("gives that tenant to shard s1"),
            "{message}"
        );
        let (code, message) = refused(
            &[("keyplan-forwarded", "s1"), ("keyplan-shard-map", "0")],
            &own,
        )
        .unwrap();
        assert_eq!(code, tonic::Code::FailedPrecondition);
        assert!(message.contains("same --shard-map"), "{message}");
        assert_eq!(refused(&[("keyplan-shard", "s2")], &own), None);
        let (code, message) = refused(&[("keyplan-shard", "s1")], &own).unwrap();
        assert_eq!(code, tonic::Code::FailedPrecondition);
        assert!(message.contains("do not compare"), "{message}");
        let unserved = s2.not_served(TIMELINE, &own);
        assert!(unserved
            .message()
            .contains("no node of shard s2 serves keyplan.v1.TimelineService"));
    }
}
