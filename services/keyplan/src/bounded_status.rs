//! A bound on every status message the node sends, whatever produced it.
//!
//! Messages that quote caller input quote at most 200 characters of it
//! (`keyplan_domain::text::quote`), so refusals stay far below the bound; this layer is the
//! backstop for any message that would still be longer (a status from a library, a future
//! code path): a `grpc-message` longer than a client accepts in its headers turns a refusal
//! into a transport error (`RESOURCE_EXHAUSTED` from h2) and hides the real code.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Longest `grpc-message` header the node sends, in bytes (as percent-encoded on the wire).
pub const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

/// What a cut message ends with.
const CUT_MARK: &str = " ... (message truncated)";

const GRPC_MESSAGE: http::HeaderName = http::HeaderName::from_static("grpc-message");

/// Cuts `grpc-message` response headers to [`MAX_STATUS_MESSAGE_BYTES`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundedStatusLayer;

impl<S> tower::Layer<S> for BoundedStatusLayer {
    type Service = BoundedStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BoundedStatus { inner }
    }
}

/// The service [`BoundedStatusLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct BoundedStatus<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for BoundedStatus<S>
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
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            if let Some(cut) = response.headers().get(GRPC_MESSAGE).and_then(cut) {
                response.headers_mut().insert(GRPC_MESSAGE, cut);
            }
            Ok(response)
        })
    }
}

/// The value cut to the bound, or `None` if it is within it.
fn cut(value: &http::HeaderValue) -> Option<http::HeaderValue> {
    let bytes = value.as_bytes();
    if bytes.len() <= MAX_STATUS_MESSAGE_BYTES {
        return None;
    }
    let mut end = MAX_STATUS_MESSAGE_BYTES - CUT_MARK.len();
    // Never split a percent-escape (`%XX`).
    if let Some(percent) = bytes[end.saturating_sub(2)..end]
        .iter()
        .rposition(|b| *b == b'%')
    {
        end = end.saturating_sub(2) + percent;
    }
    let mut kept = bytes[..end].to_vec();
    kept.extend_from_slice(CUT_MARK.as_bytes());
    http::HeaderValue::from_bytes(&kept).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_and_short_ones_kept() {
        let short = http::HeaderValue::from_static("invalid tenant: must not be empty");
        assert!(cut(&short).is_none());
        let long = http::HeaderValue::from_str(&"%22a".repeat(1000)).expect("ASCII");
        let cut = cut(&long).expect("cut");
        assert!(cut.len() <= MAX_STATUS_MESSAGE_BYTES);
        let text = cut.to_str().expect("ASCII");
        assert!(text.ends_with(CUT_MARK));
        let body = text.trim_end_matches(CUT_MARK);
        assert!(body.ends_with("%22a") || body.ends_with('a'), "{body}");
    }
}
