//! gRPC-Web as a browser speaks it: HTTP/1.1 requests with an `Origin`, a CORS preflight,
//! `application/grpc-web+proto` frames, trailers in the body. Against the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Buf, Bytes};
use common::fixtures::*;
use common::Server;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use keyplan_proto::pb;
use prost::Message;

const ALLOWED: &str = "https://kam.example.com";

/// Sends one HTTP/1.1 request on a new connection; the response with its whole body.
async fn http1(server: &Server, request: Request<Full<Bytes>>) -> (Response<Incoming>, Bytes) {
    let stream = tokio::net::TcpStream::connect(&server.address)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut response = sender.send_request(request).await.unwrap();
    let body = response.body_mut().collect().await.unwrap().to_bytes();
    (response, body)
}

/// A gRPC-Web call of `path` with `message`, from a page of `origin`.
fn call(path: &str, origin: &str, message: &impl Message) -> Request<Full<Bytes>> {
    let payload = message.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&payload);
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "keyplan")
        .header("origin", origin)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(Full::new(Bytes::from(frame)))
        .unwrap()
}

/// The data frames and the trailers (`name: value` lines) of a gRPC-Web body.
fn frames(mut body: Bytes) -> (Vec<Bytes>, String) {
    let mut data = Vec::new();
    let mut trailers = String::new();
    while body.has_remaining() {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        let chunk = body.split_to(len);
        if flag & 0x80 == 0 {
            data.push(chunk);
        } else {
            trailers.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
    (data, trailers)
}

fn header<'a>(response: &'a Response<Incoming>, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_browser_page_of_an_allowed_origin_calls_over_grpc_web() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--grpc-web-origins",
            &format!("{ALLOWED},http://localhost:5173"),
        ],
    )
    .await;
    onboard(&server, "globex").await;

    // The preflight a browser sends before a cross-origin POST with these headers.
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/keyplan.v1.AccountService/GetAccount")
        .header("host", "keyplan")
        .header("origin", ALLOWED)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization",
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, _) = http1(&server, preflight).await;
    assert!(response.status().is_success(), "{response:?}");
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let allowed = header(&response, "access-control-allow-headers").unwrap();
    for h in ["x-grpc-web", "authorization", "content-type"] {
        assert!(allowed.contains(h), "{allowed}");
    }

    // The call itself: the account comes back in a data frame, the status in the trailers.
    let get = pb::GetAccountRequest {
        tenant: TENANT.into(),
        account_id: "globex".into(),
        ..Default::default()
    };
    let (response, body) = http1(
        &server,
        call("/keyplan.v1.AccountService/GetAccount", ALLOWED, &get),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        Some("application/grpc-web+proto")
    );
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let exposed = header(&response, "access-control-expose-headers").unwrap();
    assert!(exposed.contains("grpc-status"), "{exposed}");
    let (data, trailers) = frames(body);
    assert_eq!(data.len(), 1);
    let account = pb::Account::decode(data[0].clone()).unwrap();
    assert_eq!(account.account_id, "globex");
    assert!(account.version > 0);
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");

    // A refusal arrives as a gRPC status a browser client reads (trailers-only: headers).
    let missing = pb::GetAccountRequest {
        tenant: TENANT.into(),
        account_id: "nope".into(),
        ..Default::default()
    };
    let (response, body) = http1(
        &server,
        call("/keyplan.v1.AccountService/GetAccount", ALLOWED, &missing),
    )
    .await;
    let (_, trailers) = frames(body);
    let status = header(&response, "grpc-status")
        .map(str::to_owned)
        .or_else(|| {
            trailers
                .lines()
                .find_map(|l| l.strip_prefix("grpc-status:").map(|v| v.trim().to_owned()))
        });
    assert_eq!(status.as_deref(), Some("5"), "{response:?} {trailers:?}");
    server.stop().await;
}

#[tokio::test]
async fn other_origins_get_no_cors_headers_and_a_bad_origin_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start_with(&dir.path().join("data"), &["--grpc-web-origins", ALLOWED]).await;
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/keyplan.v1.AccountService/GetAccount")
        .header("host", "keyplan")
        .header("origin", "https://evil.example.net")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-grpc-web")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, _) = http1(&server, preflight).await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    server.stop().await;

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("other"))
        .args(["--grpc-web-origins", "https://kam.example.com/app"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--grpc-web-origins") && stderr.contains("https://kam.example.com/app"),
        "{stderr}"
    );
}
