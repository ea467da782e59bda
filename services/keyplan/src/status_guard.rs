//! The last word on every status the node sends, whatever service produced it:
//!
//! - **a bound on its message.** Messages that quote caller input quote at most 200
//!   characters of it (`keyplan_domain::text::quote`), so refusals stay far below the bound;
//!   this layer is the backstop for any message that would still be longer (a status from a
//!   library, a future code path): a `grpc-message` longer than a client accepts in its
//!   headers turns a refusal into a transport error (`RESOURCE_EXHAUSTED` from h2) and hides
//!   the real code.
//! - **undecodable requests are the caller's error** in the services that are not generated
//!   here (health, reflection): they use tonic-prost's codec, which reports a request that is
//!   not valid protobuf as `INTERNAL`; this layer turns that status (recognised by prost's
//!   message, `failed to decode Protobuf message`) into `INVALID_ARGUMENT`, as
//!   `keyplan_proto::codec::KeyplanCodec` does for the `keyplan.v1` services.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Longest `grpc-message` header the node sends, in bytes (as percent-encoded on the wire).
pub const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

/// What a cut message ends with.
const CUT_MARK: &str = " ... (message truncated)";

const GRPC_MESSAGE: http::HeaderName = http::HeaderName::from_static("grpc-message");
const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// How tonic-prost's `INTERNAL` for an undecodable message starts, as percent-encoded in
/// `grpc-message` (prost's `DecodeError` text).
const UNDECODABLE: &[u8] = b"failed%20to%20decode%20Protobuf%20message";

/// Cuts `grpc-message` response headers to [`MAX_STATUS_MESSAGE_BYTES`] and makes an
/// undecodable request `INVALID_ARGUMENT` (see the module's documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusGuardLayer;

impl<S> tower::Layer<S> for StatusGuardLayer {
    type Service = StatusGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StatusGuard { inner }
    }
}

/// The service [`StatusGuardLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct StatusGuard<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for StatusGuard<S>
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
            let headers = response.headers_mut();
            if is_undecodable(headers) {
                headers.insert(GRPC_STATUS, http::HeaderValue::from_static("3"));
            }
            if let Some(cut) = headers.get(GRPC_MESSAGE).and_then(cut) {
                headers.insert(GRPC_MESSAGE, cut);
            }
            Ok(response)
        })
    }
}

/// Whether the headers hold tonic-prost's `INTERNAL` for a request that is not protobuf.
fn is_undecodable(headers: &http::HeaderMap) -> bool {
    headers.get(GRPC_STATUS).map(|v| v.as_bytes()) == Some(b"13")
        && headers
            .get(GRPC_MESSAGE)
            .is_some_and(|m| m.as_bytes().starts_with(UNDECODABLE))
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
    fn only_an_undecodable_request_becomes_invalid_argument() {
        let headers = |status: &'static str, message: &'static str| {
            let mut h = http::HeaderMap::new();
            h.insert(GRPC_STATUS, http::HeaderValue::from_static(status));
            h.insert(GRPC_MESSAGE, http::HeaderValue::from_static(message));
            h
        };
        // What tonic-prost's codec answers to the bytes `0e 01`.
        let Err(error) =
            <keyplan_proto::pb::ExecuteRequest as prost::Message>::decode(&[0x0e_u8, 0x01][..])
        else {
            panic!("0e 01 is not a valid message");
        };
        let status = tonic::Status::internal(error.to_string());
        let mut encoded = http::HeaderMap::new();
        status
            .add_header(&mut encoded)
            .expect("a status encodes as headers");
        assert!(is_undecodable(&encoded));
        assert!(!is_undecodable(&headers("13", "sled%20failed")));
        assert!(!is_undecodable(&headers(
            "3",
            "failed%20to%20decode%20Protobuf%20message"
        )));
    }

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
