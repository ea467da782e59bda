//! The tower layer that enforces identity, roles and tenancy on every gRPC call: the one place
//! where they are enforced. Services behind it see only calls from a verified caller, allowed
//! by [`crate::policy::RULES`], whose request names the caller's tenant (or, for an admin's
//! read, the tenant asked for) and, for commands, the caller as actor.
//!
//! Every Keyplan RPC takes one request message (unary or server streaming), so the layer reads
//! that one message (bounded by the node's message size limit), checks it and passes it on,
//! rewritten only when it filled in the tenant or the actor. The verified [`Caller`] travels on
//! in the request's extensions, for a service that needs to know who calls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full, Limited};
use tonic::body::Body;
use tonic::Status;
use tower::{Layer, Service};

use crate::claims::Caller;
use crate::policy::{self, frame};
use crate::verify::{SharedVerifier, Verifier, CLOCK_LEEWAY};

/// Adds [`Auth`] to every route. With no verifier, calls pass untouched (authentication off:
/// the embedded default on loopback).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: Option<SharedVerifier>,
    max_message_bytes: usize,
}

impl AuthLayer {
    /// Verifies every call's token with the verifier in force (none: authentication off), reading request
    /// messages of at most `max_message_bytes`.
    pub fn new(verifier: Option<SharedVerifier>, max_message_bytes: usize) -> Self {
        Self {
            verifier,
            max_message_bytes,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            verifier: self.verifier.clone(),
            max_message_bytes: self.max_message_bytes,
        }
    }
}

/// See [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    verifier: Option<SharedVerifier>,
    max_message_bytes: usize,
}

impl<S> Service<http::Request<Body>> for Auth<S>
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
        let verifier = match &self.verifier {
            Some(shared) if !policy::is_open(request.uri().path()) => shared.current(),
            _ => return Box::pin(self.inner.call(request)),
        };
        // The inner service was made ready for this call: take it, leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.max_message_bytes;
        Box::pin(async move {
            match admit(&verifier, request, limit).await {
                Ok((request, expiry)) => {
                    let mut response = inner.call(request).await?;
                    response.extensions_mut().insert(expiry);
                    Ok(response)
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// When the credentials a call was admitted with stop being valid (the token's `exp` plus the
/// clock leeway). [`Auth`] puts it in the extensions of every response it lets through, so
/// that the layer that ends long-lived server streams can end them then: a stream must not
/// outlive the token that opened it (an expired token must not keep receiving events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialsExpire(pub Instant);

impl CredentialsExpire {
    /// When `caller`'s token stops being valid, as an instant of this process's clock.
    fn of(caller: &Caller) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let left = caller
            .expires_at
            .saturating_add(CLOCK_LEEWAY.as_secs())
            .saturating_sub(now);
        // Far-future expiries are capped (an `Instant` cannot hold any u64 of seconds).
        let left = Duration::from_secs(left.min(10 * 365 * 24 * 3600));
        CredentialsExpire(Instant::now() + left)
    }
}

/// Verifies the caller, applies the policy and returns the request to serve with when its
/// credentials expire, or the status that refuses it (logged with who, which tenant, which RPC
/// and why; never the token).
async fn admit(
    verifier: &Verifier,
    request: http::Request<Body>,
    limit: usize,
) -> Result<(http::Request<Body>, CredentialsExpire), Status> {
    let rpc = request.uri().path().to_owned();
    let caller = verifier
        .verify_header(
            request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
        )
        .map_err(|reason| {
            tracing::warn!(%rpc, %reason, "call refused: unauthenticated");
            Status::unauthenticated(reason.to_string())
        })?;
    let refused = |status: Status| {
        tracing::warn!(
            subject = %caller.subject,
            tenant = caller.tenant.as_deref().unwrap_or(""),
            roles = %caller.roles,
            %rpc,
            code = ?status.code(),
            reason = status.message(),
            "call refused"
        );
        status
    };
    let Some(rule) = policy::rule(&rpc) else {
        return Err(refused(Status::permission_denied(format!(
            "{} has no access rule on this node",
            rpc.chars().take(120).collect::<String>()
        ))));
    };
    rule.admits(&caller).map_err(|r| refused(r.to_status()))?;
    let (mut parts, body) = request.into_parts();
    let message = read_message(body, limit).await.map_err(&refused)?;
    let message = match rule.scope(message.clone(), &caller) {
        Ok(None) => message,
        Ok(Some(rewritten)) => rewritten,
        Err(refusal) => return Err(refused(refusal.to_status())),
    };
    let expiry = CredentialsExpire::of(&caller);
    parts.extensions.insert::<Caller>(caller);
    Ok((
        http::Request::from_parts(parts, Body::new(Full::new(frame(&message)))),
        expiry,
    ))
}

/// The request's one message, from its gRPC frame (at most `limit` bytes): every Keyplan RPC
/// takes exactly one, uncompressed.
pub async fn read_message(body: Body, limit: usize) -> Result<Bytes, Status> {
    let mut bytes = Limited::new(body, limit.saturating_add(5))
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Status::out_of_range(format!(
                    "the request is larger than this node's limit of {limit} bytes"
                ))
            } else {
                match e.downcast::<Status>() {
                    Ok(status) => *status,
                    Err(e) => Status::cancelled(format!("reading the request failed: {e}")),
                }
            }
        })?
        .to_bytes();
    if bytes.len() < 5 {
        return Err(Status::invalid_argument(
            "the request holds no message (a gRPC frame is expected)",
        ));
    }
    let compressed = bytes.get_u8();
    let len = usize::try_from(bytes.get_u32()).unwrap_or(usize::MAX);
    if compressed != 0 {
        return Err(Status::unimplemented(
            "compressed requests are not accepted; send them uncompressed",
        ));
    }
    if len != bytes.len() {
        return Err(Status::invalid_argument(
            "one request message expected: the body does not hold exactly one gRPC frame",
        ));
    }
    Ok(bytes)
}
