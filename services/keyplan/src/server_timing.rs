//! Server-side timing of every call, as a `server-timing` response header.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The response header [`ServerTimingLayer`] writes.
pub const SERVER_TIMING: http::HeaderName = http::HeaderName::from_static("server-timing");

/// Adds `server-timing: app;dur=<milliseconds>` ([W3C Server-Timing] syntax) to every response:
/// the time from the request entering the service stack to its response (headers) being
/// produced.
///
/// Why: latency measured by a client also counts the network, HTTP/2 framing and the client's
/// own scheduling, which on a loopback benchmark sharing two cores dominate sub-millisecond
/// queries. With this header a client (`keyplan-bench` reads it) can report how long the server
/// itself took, call by call, for the price of reading a clock twice. For unary calls the
/// handler has finished when the response future resolves, so `dur` is the server-side handling
/// time (decoding the request included; encoding the response body, which happens as it is
/// sent, not). For streaming calls it is only the time to the response headers. The header
/// tells a client nothing it could not time itself, less precisely.
///
/// [W3C Server-Timing]: https://www.w3.org/TR/server-timing/
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerTimingLayer;

impl<S> tower::Layer<S> for ServerTimingLayer {
    type Service = ServerTiming<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTiming { inner }
    }
}

/// The service [`ServerTimingLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct ServerTiming<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for ServerTiming<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            response
                .headers_mut()
                .append(SERVER_TIMING, server_timing_value(started.elapsed()));
            Ok(response)
        })
    }
}

/// `app;dur=<milliseconds, 3 decimals>`.
fn server_timing_value(elapsed: Duration) -> http::HeaderValue {
    let text = format!("app;dur={:.3}", elapsed.as_secs_f64() * 1000.0);
    // Only ASCII letters, digits and ";=." : always a valid header value.
    http::HeaderValue::try_from(text).unwrap_or_else(|_| http::HeaderValue::from_static("app"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, ServiceExt};

    #[tokio::test]
    async fn every_response_gets_the_handling_time_as_server_timing() {
        let service = ServerTimingLayer.layer(tower::service_fn(|_: http::Request<()>| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }));
        let response = service
            .oneshot(http::Request::new(()))
            .await
            .expect("infallible");
        let value = response
            .headers()
            .get(SERVER_TIMING)
            .expect("a server-timing header")
            .to_str()
            .expect("ASCII");
        let ms: f64 = value
            .strip_prefix("app;dur=")
            .expect("app;dur=")
            .parse()
            .expect("a number");
        assert!((20.0..10_000.0).contains(&ms), "{value}");
    }

    #[test]
    fn the_value_is_milliseconds_with_three_decimals() {
        assert_eq!(
            server_timing_value(Duration::from_micros(1234)),
            "app;dur=1.234"
        );
    }
}
