//! gRPC-Web, so that a browser front end can call a node directly (no proxy): `tonic-web`
//! translates gRPC-Web (HTTP/1.1 or HTTP/2, binary or base64 text) into gRPC in front of every
//! service, and a CORS layer decides which other origins' pages may call. Both sit outside
//! authentication, so a browser's call carries its bearer token like any other client's.

use std::time::Duration;

use clap::Args;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Uri};
use thiserror::Error;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which browser origins may call the node.
#[derive(Debug, Clone, Default, Args)]
pub struct WebArgs {
    /// Browser origins whose pages may call the node through gRPC-Web (CORS), comma-separated,
    /// e.g. `https://kam.example.com`; `*` lets any origin call (for development). gRPC-Web
    /// itself is always served; with no origin here only same-origin pages can use it.
    #[arg(long, env = "KEYPLAN_GRPC_WEB_ORIGINS", value_delimiter = ',')]
    pub grpc_web_origins: Vec<String>,
}

/// A `--grpc-web-origins` entry that is not an origin.
#[derive(Debug, Error)]
#[error(
    "--grpc-web-origins: {given:?} is not an origin (scheme://host[:port], e.g. \
     https://kam.example.com, with no path), nor `*` alone"
)]
pub struct OriginError {
    given: String,
}

/// Request headers a gRPC-Web client sends (besides the CORS-safe ones).
const ALLOWED_HEADERS: [&str; 7] = [
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "x-request-id",
    "content-type",
    "authorization",
    // In a sharded cluster: the shard a read's `minPosition` was read from.
    "keyplan-shard",
];

/// Response headers and trailers a gRPC-Web client must be able to read.
const EXPOSED_HEADERS: [&str; 5] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-request-id",
    // In a sharded cluster: the shard that served the call (half of a read-your-writes token).
    "keyplan-shard",
];

/// The CORS layer for `args`: preflights of allowed origins are answered (and cached a day by
/// the browser), other origins get no CORS headers, so their pages cannot read an answer.
pub fn cors(args: &WebArgs) -> Result<CorsLayer, OriginError> {
    let origins: Vec<&str> = args
        .grpc_web_origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    let allow_origin = if origins == ["*"] {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .map(|o| origin(o))
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(Duration::from_secs(24 * 60 * 60)))
}

/// `https://host[:port]` as browsers send it in `Origin` (no trailing slash, no path).
fn origin(given: &str) -> Result<HeaderValue, OriginError> {
    let refused = || OriginError {
        given: given.to_owned(),
    };
    let uri: Uri = given.parse().map_err(|_| refused())?;
    let scheme = uri.scheme_str().ok_or_else(refused)?;
    let authority = uri.authority().ok_or_else(refused)?;
    let bare_path = matches!(uri.path(), "" | "/") && uri.query().is_none();
    if !(scheme == "http" || scheme == "https") || !bare_path || given.ends_with('/') {
        return Err(refused());
    }
    HeaderValue::from_str(&format!("{scheme}://{authority}")).map_err(|_| refused())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(origins: &[&str]) -> WebArgs {
        WebArgs {
            grpc_web_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert!(cors(&args(&[])).is_ok());
        assert!(cors(&args(&["*"])).is_ok());
        assert!(cors(&args(&["https://kam.example.com", "http://localhost:5173"])).is_ok());
        for bad in [
            "kam.example.com",
            "https://kam.example.com/",
            "https://kam.example.com/app",
            "ftp://kam.example.com",
            "https://kam.example.com?x=1",
        ] {
            let e = cors(&args(&[bad])).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        // `*` is only meaningful alone.
        assert!(cors(&args(&["*", "https://kam.example.com"])).is_err());
    }
}
