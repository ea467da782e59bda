//! Read models that load in the background while the node already serves its write path.
//!
//! Why: after a restart an all-in-one node can append and read its log as soon as the log is
//! open, but loading the read models takes several times longer (BENCHMARKS.md has the
//! figures). Commands should not wait for timelines. So
//! the node listens once the log is open, and each read-model service answers `UNAVAILABLE`
//! (which clients retry) until its model has loaded. Health reports the services
//! `NOT_SERVING` until then, so a load balancer or a script can wait for them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::server::NamedService;
use tonic::Status;
use tower::{Service, ServiceExt};

/// How loading ended, once it has.
#[derive(Debug, Clone)]
enum Outcome<S> {
    Loaded(S),
    Failed(String),
}

/// A service that becomes available once its read model has loaded: until then (or if loading
/// failed) every call gets `UNAVAILABLE` with a message that says which and why. Cheap to
/// clone; every clone sees the same outcome.
#[derive(Debug)]
pub struct WhenLoaded<S> {
    outcome: Arc<OnceLock<Outcome<S>>>,
    what: &'static str,
}

impl<S> Clone for WhenLoaded<S> {
    fn clone(&self) -> Self {
        Self {
            outcome: self.outcome.clone(),
            what: self.what,
        }
    }
}

impl<S> WhenLoaded<S> {
    /// A service still loading; `what` names it in the error ("the timeline read model").
    pub fn pending(what: &'static str) -> Self {
        Self {
            outcome: Arc::new(OnceLock::new()),
            what,
        }
    }

    /// The model has loaded: calls go to `service` from now on. Only the first outcome counts.
    pub fn loaded(&self, service: S) {
        let _ = self.outcome.set(Outcome::Loaded(service));
    }

    /// Loading failed: calls get `UNAVAILABLE` with `reason` from now on.
    pub fn failed(&self, reason: String) {
        let _ = self.outcome.set(Outcome::Failed(reason));
    }

    fn refusal(&self) -> Status {
        match self.outcome.get() {
            Some(Outcome::Failed(reason)) => Status::unavailable(format!(
                "{} failed to load ({reason}); the node's log has the details, and a restart \
                 retries",
                self.what
            )),
            _ => Status::unavailable(format!(
                "{} is still loading after the node started; retry in a moment (gRPC health \
                 reports the service SERVING once it has loaded)",
                self.what
            )),
        }
    }
}

impl<S: NamedService> NamedService for WhenLoaded<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<http::Request<Body>> for WhenLoaded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness of the loaded service is awaited per call (`oneshot`), as it is cloned.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.outcome.get() {
            Some(Outcome::Loaded(service)) => Box::pin(service.clone().oneshot(request)),
            _ => {
                let status = self.refusal();
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands in for a generated gRPC server: answers every call with an empty 200.
    #[derive(Clone)]
    struct Answering;

    impl NamedService for Answering {
        const NAME: &'static str = "test.Answering";
    }

    impl Service<http::Request<Body>> for Answering {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<http::Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            std::future::ready(Ok(http::Response::new(Body::empty())))
        }
    }

    /// Calls `service` once; the gRPC status its response carries, if any (tonic decodes the
    /// percent-encoded message).
    async fn call(service: &WhenLoaded<Answering>) -> Option<Status> {
        let response = service
            .clone()
            .oneshot(http::Request::new(Body::empty()))
            .await
            .unwrap_or_else(|never| match never {});
        Status::from_header_map(response.headers())
    }

    #[tokio::test]
    async fn refuses_until_loaded_then_forwards() {
        let service = WhenLoaded::<Answering>::pending("the test read model");

        let refused = call(&service).await.expect("a status");
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        assert!(refused.message().contains("still loading"), "{refused:?}");

        service.loaded(Answering);
        assert!(call(&service).await.is_none());
        assert_eq!(
            <WhenLoaded<Answering> as NamedService>::NAME,
            "test.Answering"
        );
    }

    #[tokio::test]
    async fn a_failed_load_says_why() {
        let service = WhenLoaded::<Answering>::pending("the test read model");
        service.failed("checkpoint unreadable".into());
        service.loaded(Answering); // too late: the first outcome counts
        let refused = call(&service).await.expect("a status");
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        let message = refused.message();
        assert!(message.contains("failed to load"), "{message}");
        assert!(message.contains("checkpoint unreadable"), "{message}");
    }
}
