//! Bounded shutdown: one signal that reaches every task, and server streams that end on it.
//!
//! Why: tonic's graceful shutdown waits for every open call to finish, and a server stream
//! (`Watch`, `Subscribe`, `WatchTimeline`, health's `Watch`) never finishes by itself, so one
//! open stream kept a stopping node alive until its supervisor's SIGKILL. The node therefore
//! sends one [`Shutdown`] signal (a `watch` channel, in the style of tokio's mini-redis) to
//! the relay, the projection runners and [`EndStreamsLayer`], which ends every open server
//! stream with `UNAVAILABLE` and a message that says how to resume, so clients reconnect
//! (to this node once restarted, or to another) instead of seeing a reset connection.
//!
//! The same layer ends a stream when the token it was opened with expires (the authentication
//! layer puts the instant, `keyplan_auth::CredentialsExpire`, in the response), with
//! `UNAUTHENTICATED` and how to resume: a token checked once at the start of a stream must not
//! keep it open for ever.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use keyplan_auth::CredentialsExpire;
use prost::Message as _;
use tokio::sync::watch;
use tonic::body::Body;
use tonic::Status;
use tower::{Layer, Service};

/// Longest a shutdown may take from its signal to the exit: past this the node exits anyway
/// (logged), so a stuck part cannot keep it from being restarted.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);

/// What an open server stream's client reads when the token it was opened with expires.
pub const TOKEN_EXPIRED: &str = "the token this stream was opened with has expired; reconnect \
     with a fresh token and resume from the position after the last one you received";

/// What an open server stream's client reads when the node shuts down.
pub const SHUTTING_DOWN: &str = "the server is shutting down; reconnect (to this node once it \
     has restarted, or to another) and resume from the position after the last one you \
     received";

/// The node's shutdown signal: cheap to clone; every clone triggers and observes the same one.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            sender: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    /// Asks every part to stop. Idempotent.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Whether the shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// A receiver that turns true on shutdown (for the relay and the projection runners).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.sender.subscribe()
    }

    /// Completes once the shutdown has been triggered.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.subscribe();
        async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    }
}

/// The gRPC paths (`/package.Service/Method`) of every server-streaming method described in
/// `descriptor_sets`: the calls that do not end by themselves.
pub fn streaming_paths(descriptor_sets: &[&[u8]]) -> HashSet<String> {
    paths(descriptor_sets, true)
}

/// The gRPC paths of every method described in `descriptor_sets`.
pub fn method_paths(descriptor_sets: &[&[u8]]) -> HashSet<String> {
    paths(descriptor_sets, false)
}

fn paths(descriptor_sets: &[&[u8]], only_streaming: bool) -> HashSet<String> {
    let mut paths = HashSet::new();
    for encoded in descriptor_sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(*encoded) else {
            tracing::warn!(
                "a file descriptor set does not decode; its streams are not ended at shutdown"
            );
            continue;
        };
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    if !only_streaming || method.server_streaming() {
                        paths.insert(format!(
                            "/{}.{}/{}",
                            file.package(),
                            service.name(),
                            method.name()
                        ));
                    }
                }
            }
        }
    }
    paths
}

/// Ends the responses of server-streaming calls (by path) with `UNAVAILABLE` when the
/// shutdown signal comes; other calls are left to finish (graceful shutdown waits for them).
#[derive(Debug, Clone)]
pub struct EndStreamsLayer {
    shutdown: Shutdown,
    streaming: Arc<HashSet<String>>,
}

impl EndStreamsLayer {
    /// Ends the calls to `streaming` paths on `shutdown`.
    pub fn new(shutdown: Shutdown, streaming: HashSet<String>) -> Self {
        Self {
            shutdown,
            streaming: Arc::new(streaming),
        }
    }
}

impl<S> Layer<S> for EndStreamsLayer {
    type Service = EndStreams<S>;

    fn layer(&self, inner: S) -> EndStreams<S> {
        EndStreams {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`EndStreamsLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct EndStreams<S> {
    inner: S,
    layer: EndStreamsLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for EndStreams<S>
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let streaming = self.layer.streaming.contains(request.uri().path());
        let response = self.inner.call(request);
        if !streaming {
            return Box::pin(response);
        }
        let shutdown = self.layer.shutdown.clone();
        Box::pin(async move {
            let response = response.await?;
            // Set by the authentication layer: the stream ends when the token that opened it
            // expires.
            let expiry = response
                .extensions()
                .get::<CredentialsExpire>()
                .map(|expire| Box::pin(tokio::time::sleep_until(expire.0.into())));
            Ok(response.map(|body| Body::new(EndOnShutdown::new(body, &shutdown, expiry))))
        })
    }
}

/// Messages a stream may still deliver after the shutdown signal, if they are ready at once:
/// e.g. health's NOT_SERVING, sent just before the signal, reaches a health watcher.
const FLUSH_AFTER_SHUTDOWN: usize = 16;

/// A streaming response body that ends with `UNAVAILABLE` trailers on shutdown, or with
/// `UNAUTHENTICATED` when the caller's token expires.
struct EndOnShutdown {
    inner: Body,
    shutdown: BoxFuture<()>,
    /// When the token the stream was opened with expires (no token: never).
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    shutting_down: bool,
    /// Frames delivered since the shutdown signal.
    flushed: usize,
    ended: bool,
}

impl EndOnShutdown {
    /// `inner`, ended on `shutdown` or once `expiry` has elapsed.
    fn new(inner: Body, shutdown: &Shutdown, expiry: Option<Pin<Box<tokio::time::Sleep>>>) -> Self {
        Self {
            inner,
            shutdown: Box::pin(shutdown.triggered()),
            expiry,
            shutting_down: false,
            flushed: 0,
            ended: false,
        }
    }
}

impl http_body::Body for EndOnShutdown {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(expiry) = &mut this.expiry {
            if expiry.as_mut().poll(cx).is_ready() {
                this.ended = true;
                return Poll::Ready(Some(Ok(Frame::trailers(trailers(
                    Status::unauthenticated(TOKEN_EXPIRED),
                )))));
            }
        }
        if !this.shutting_down && this.shutdown.as_mut().poll(cx).is_ready() {
            this.shutting_down = true;
        }
        if this.shutting_down {
            if this.flushed < FLUSH_AFTER_SHUTDOWN {
                if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
                    match &frame {
                        Some(Ok(f)) if f.is_data() => this.flushed += 1,
                        _ => this.ended = true,
                    }
                    return Poll::Ready(frame);
                }
            }
            this.ended = true;
            return Poll::Ready(Some(Ok(Frame::trailers(trailers(Status::unavailable(
                SHUTTING_DOWN,
            ))))));
        }
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::default()
    }
}

/// The trailers that end a stream with `status` (its code kept even if the message would not
/// encode; the messages here are constants that do).
fn trailers(status: Status) -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    if status.add_header(&mut trailers).is_err() {
        trailers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    }
    trailers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response body that never ends by itself, like a live `Watch`.
    struct Endless;

    impl http_body::Body for Endless {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Pending
        }
    }

    async fn next_frame(body: &mut EndOnShutdown) -> Option<Result<Frame<Bytes>, Status>> {
        std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut *body), cx)).await
    }

    #[tokio::test]
    async fn an_endless_stream_ends_with_unavailable_on_shutdown() {
        let shutdown = Shutdown::default();
        let mut body = EndOnShutdown::new(Body::new(Endless), &shutdown, None);
        let waiting = tokio::time::timeout(Duration::from_millis(50), next_frame(&mut body)).await;
        assert!(waiting.is_err(), "nothing to send before the shutdown");

        shutdown.trigger();
        assert!(shutdown.is_triggered());
        let trailers = next_frame(&mut body)
            .await
            .expect("a last frame")
            .expect("not an error")
            .into_trailers()
            .expect("trailers");
        let status = Status::from_header_map(&trailers).expect("a gRPC status");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), SHUTTING_DOWN);
        assert!(next_frame(&mut body).await.is_none());
        assert!(http_body::Body::is_end_stream(&body));
    }

    #[test]
    fn the_streaming_methods_are_found_in_the_descriptors() {
        let paths = streaming_paths(&[
            keyplan_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ]);
        for path in [
            "/keyplan.v1.EventStoreService/Watch",
            "/keyplan.v1.EventStoreService/Subscribe",
            "/keyplan.v1.TimelineService/WatchTimeline",
            "/grpc.health.v1.Health/Watch",
        ] {
            assert!(paths.contains(path), "{path} missing from {paths:?}");
        }
        assert!(!paths.contains("/keyplan.v1.CommandService/Execute"));
        assert!(!paths.contains("/grpc.health.v1.Health/Check"));
    }
}
