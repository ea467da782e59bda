//! TLS on gRPC and the limits that protect a shared node, end to end: the real `keyplan`
//! binary, certificates from a CA the test generates (rcgen), real sockets.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fixtures::*;
use common::{head, read_all, Server};
use keyplan_proto::pb;
use keyplan_proto::pb::event_store_service_client::EventStoreServiceClient;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A certificate and its key, as PEM files.
struct Pem {
    cert: PathBuf,
    key: PathBuf,
}

/// The test's PKI, in a temporary directory: a CA, a server certificate it signed for
/// 127.0.0.1 and localhost, a client certificate it signed, and a client certificate signed
/// by another CA.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    server: Pem,
    client: Pem,
    foreign_client: Pem,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca("Keyplan test CA");
        let other = new_ca("Some other CA");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let leaf = |name: &str, issuer: &CertifiedIssuer<'static, KeyPair>, server: bool| {
            let names = if server {
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
            } else {
                vec![]
            };
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.use_authority_key_identifier_extension = true;
            params.key_usages.push(KeyUsagePurpose::DigitalSignature);
            params.extended_key_usages.push(if server {
                ExtendedKeyUsagePurpose::ServerAuth
            } else {
                ExtendedKeyUsagePurpose::ClientAuth
            });
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, issuer).unwrap();
            Pem {
                cert: write(&format!("{name}.crt"), cert.pem()),
                key: write(&format!("{name}.key"), key.serialize_pem()),
            }
        };
        let server = leaf("server", &ca, true);
        let client = leaf("client", &ca, false);
        let foreign_client = leaf("foreign-client", &other, false);
        Pki {
            ca: write("ca.crt", ca.pem()),
            other_ca: write("other-ca.crt", other.pem()),
            server,
            client,
            foreign_client,
            _dir: dir,
        }
    }

    /// `serve` arguments for TLS with the server certificate.
    fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            path(&self.server.cert),
            "--tls-key".into(),
            path(&self.server.key),
        ]
    }

    /// ... and requiring client certificates signed by the CA.
    fn serve_args_mutual(&self) -> Vec<String> {
        let mut args = self.serve_args();
        args.extend(["--tls-client-ca".into(), path(&self.ca)]);
        args
    }

    /// A client configuration trusting `ca`, presenting `identity` if given.
    fn client(ca: &Path, identity: Option<&Pem>) -> ClientTlsConfig {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()));
        if let Some(pem) = identity {
            tls = tls.identity(Identity::from_pem(
                std::fs::read(&pem.cert).unwrap(),
                std::fs::read(&pem.key).unwrap(),
            ));
        }
        tls
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Connects to `address` (`https` with `tls`, plain `http` without) and asks health for the
/// node's status: the error, connecting or calling, as text. Bounded, so that a refusal
/// that hangs fails the test instead of passing for one.
async fn health(address: &str, tls: Option<ClientTlsConfig>) -> Result<i32, String> {
    let attempt = async {
        let endpoint = match tls {
            Some(tls) => Channel::from_shared(format!("https://{address}"))
                .unwrap()
                .tls_config(tls)
                .unwrap(),
            None => Channel::from_shared(format!("http://{address}")).unwrap(),
        };
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| format!("call: {s:?}"))?;
        Ok(answer.into_inner().status)
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .unwrap_or_else(|_| panic!("the call to {address} neither succeeded nor failed in 10 s"))
}

const SERVING: i32 = ServingStatus::Serving as i32;

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca_and_no_one_else() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_tls(
        &dir.path().join("data"),
        &strs(&pki.serve_args()),
        Pki::client(&pki.ca, None),
    )
    .await;

    // Over TLS: calls go through, reads and writes alike.
    onboard(&server, "globex").await;
    assert_eq!(read_all(&server).await.len(), 5);
    let status = common::status(&server).await;
    assert_eq!(status.head_position, 5);
    assert_eq!(
        health(&server.address, Some(Pki::client(&pki.ca, None))).await,
        Ok(SERVING)
    );

    // Plain text to a TLS listener gets nothing.
    let plain = health(&server.address, None).await;
    eprintln!("plain: {plain:?}");
    assert!(plain.is_err(), "a plain-text client was served: {plain:?}");

    // A client that does not trust the node's CA refuses the handshake.
    let untrusting = health(&server.address, Some(Pki::client(&pki.other_ca, None))).await;
    let error = untrusting.expect_err("a client not trusting the CA was served");
    assert!(
        error.contains("UnknownIssuer") || error.contains("invalid peer certificate"),
        "{error}"
    );

    server.stop().await;
}

#[tokio::test]
async fn a_client_ca_requires_a_client_certificate_it_signed() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_tls(
        &dir.path().join("data"),
        &strs(&pki.serve_args_mutual()),
        Pki::client(&pki.ca, Some(&pki.client)),
    )
    .await;

    // The harness's own channel presents the valid certificate: calls go through.
    onboard(&server, "globex").await;
    assert_eq!(head(&server).await, 5);
    assert_eq!(
        health(
            &server.address,
            Some(Pki::client(&pki.ca, Some(&pki.client)))
        )
        .await,
        Ok(SERVING)
    );

    // No certificate: refused (in TLS 1.3 the server says so after the client's finished
    // message, so this may fail at connect or at the first call).
    let anonymous = health(&server.address, Some(Pki::client(&pki.ca, None))).await;
    eprintln!("anonymous: {anonymous:?}");
    assert!(
        anonymous.is_err(),
        "a client without a certificate was served"
    );

    // A certificate another CA signed: refused.
    let foreign = health(
        &server.address,
        Some(Pki::client(&pki.ca, Some(&pki.foreign_client))),
    )
    .await;
    eprintln!("foreign: {foreign:?}");
    assert!(
        foreign.is_err(),
        "a client certificate from another CA was accepted"
    );

    server.stop().await;
}

/// Runs `keyplan` with `args` (and `env`): its exit status, stdout and stderr.
async fn keyplan(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args(args)
        .env_remove("KEYPLAN_TOKEN")
        .env_remove("KEYPLAN_TLS_CA")
        .env_remove("KEYPLAN_TLS_CLIENT_CERT")
        .env_remove("KEYPLAN_TLS_CLIENT_KEY")
        .env_remove("KEYPLAN_SERVER")
        .envs(env.iter().copied())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("keyplan answers within 30 s")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_speaks_tls_with_the_given_ca_and_client_certificate() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_tls(
        &dir.path().join("data"),
        &strs(&pki.serve_args_mutual()),
        Pki::client(&pki.ca, Some(&pki.client)),
    )
    .await;
    onboard(&server, "globex").await;
    let https = format!("https://{}", server.address);
    let ca = path(&pki.ca);
    let (cert, key) = (path(&pki.client.cert), path(&pki.client.key));

    let (ok, out, err) = keyplan(
        &[
            "projections",
            "status",
            "--server",
            &https,
            "--tls-ca",
            &ca,
            "--tls-client-cert",
            &cert,
            "--tls-client-key",
            &key,
            "--token",
            "not-a-real-token",
        ],
        &[],
    )
    .await;
    assert!(ok, "status failed: {err}");
    assert!(out.starts_with("role all, log head 5\n"), "{out}");
    assert!(out.contains("timeline"), "{out}");

    // The same through the environment, and a bare `host:port` taken as https with a CA.
    let (ok, out, err) = keyplan(
        &["projections", "status", "--server", &server.address],
        &[
            ("KEYPLAN_TLS_CA", &ca),
            ("KEYPLAN_TLS_CLIENT_CERT", &cert),
            ("KEYPLAN_TLS_CLIENT_KEY", &key),
        ],
    )
    .await;
    assert!(ok, "status through the environment failed: {err}");
    assert!(out.starts_with("role all, log head 5\n"), "{out}");

    // Without the client certificate the node refuses; without the CA the CLI does.
    let (ok, _, err) = keyplan(
        &["projections", "status", "--server", &https, "--tls-ca", &ca],
        &[],
    )
    .await;
    assert!(!ok, "served without a client certificate");
    assert!(!err.is_empty());
    let (ok, _, err) = keyplan(
        &[
            "projections",
            "status",
            "--server",
            &https,
            "--tls-client-cert",
            &cert,
            "--tls-client-key",
            &key,
        ],
        &[],
    )
    .await;
    assert!(!ok, "trusted the node without its CA");
    assert!(err.contains("cannot reach"), "{err}");

    server.stop().await;
}

#[tokio::test]
async fn the_cli_sends_its_token_on_every_call_over_tls() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "keyplan-tls-test-secret-0123456789abcdef").unwrap();
    let mut args = pki.serve_args();
    args.extend(["--auth-hs256-secret-file".into(), path(&secret)]);
    let server = Server::start_tls(
        &dir.path().join("data"),
        &strs(&args),
        Pki::client(&pki.ca, None),
    )
    .await;
    let (ok, token, err) = keyplan(
        &[
            "token",
            "mint",
            "--secret-file",
            &path(&secret),
            "--sub",
            "ops.bot",
            "--role",
            "admin",
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let token = token.trim();
    let https = format!("https://{}", server.address);
    let ca = path(&pki.ca);
    let status = ["projections", "status", "--server", &https, "--tls-ca", &ca];

    // The node authenticates the call by the token the CLI sent, given as a flag or in the
    // environment.
    let mut with_flag = status.to_vec();
    with_flag.extend(["--token", token]);
    let (ok, out, err) = keyplan(&with_flag, &[]).await;
    assert!(ok, "status with --token failed: {err}");
    assert!(out.starts_with("role all, log head 0\n"), "{out}");
    let (ok, out, err) = keyplan(&status, &[("KEYPLAN_TOKEN", token)]).await;
    assert!(ok, "status with KEYPLAN_TOKEN failed: {err}");
    assert!(out.starts_with("role all, log head 0\n"), "{out}");

    // Without it (or with another), the node refuses; the token is never echoed.
    let (ok, _, err) = keyplan(&status, &[]).await;
    assert!(!ok, "served without a token");
    assert!(err.to_lowercase().contains("token"), "{err}");
    let forged = format!("{token}x");
    let (ok, out, err) = keyplan(&status, &[("KEYPLAN_TOKEN", &forged)]).await;
    assert!(!ok, "served with a forged token");
    assert!(!out.contains(token) && !err.contains(token), "{out}{err}");

    server.stop().await;
}

#[tokio::test]
async fn the_cli_never_prints_its_token_and_names_a_bad_file() {
    let pki = Pki::new();
    let secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLXNlY3JldA";
    // Nothing listens on port 9 of the loopback: the connection is refused.
    let (ok, out, err) = keyplan(
        &[
            "projections",
            "status",
            "--server",
            "https://127.0.0.1:9",
            "--tls-ca",
            &path(&pki.ca),
        ],
        &[("KEYPLAN_TOKEN", secret)],
    )
    .await;
    assert!(!ok);
    assert!(!out.contains(secret) && !err.contains(secret), "{out}{err}");
    assert!(err.contains("cannot reach"), "{err}");

    let (ok, _, err) = keyplan(
        &[
            "projections",
            "status",
            "--tls-ca",
            "/nonexistent/ca.pem",
            "--token",
            secret,
        ],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("--tls-ca /nonexistent/ca.pem"), "{err}");
    assert!(!err.contains(secret), "{err}");

    let help = keyplan(
        &["projections", "status", "--help"],
        &[("KEYPLAN_TOKEN", secret)],
    )
    .await;
    assert!(help.0 && help.1.contains("--token"), "{help:?}");
    assert!(!help.1.contains(secret), "--help shows the token");
}

#[tokio::test]
async fn serve_refuses_incomplete_or_unreadable_tls_files_naming_them() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: Vec<String>| {
        let data = path(&dir.path().join("data"));
        async move {
            let mut args = vec![
                "serve".to_owned(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--data-dir".into(),
                data,
            ];
            args.extend(extra);
            keyplan(&strs(&args), &[]).await
        }
    };

    let (ok, _, err) = serve(vec!["--tls-cert".into(), path(&pki.server.cert)]).await;
    assert!(!ok);
    assert!(err.contains("--tls-key"), "{err}");

    // A key that is not PEM.
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "not a key").unwrap();
    let (ok, _, err) = serve(vec![
        "--tls-cert".into(),
        path(&pki.server.cert),
        "--tls-key".into(),
        path(&garbage),
    ])
    .await;
    assert!(!ok);
    assert!(
        err.contains("--tls-key") && err.contains("garbage.key"),
        "{err}"
    );

    // A key that is not the certificate's.
    let (ok, _, err) = serve(vec![
        "--tls-cert".into(),
        path(&pki.server.cert),
        "--tls-key".into(),
        path(&pki.client.key),
    ])
    .await;
    assert!(!ok);
    assert!(
        err.contains("server.crt") && err.contains("client.key"),
        "{err}"
    );

    // A client CA that cannot be read.
    let mut args = pki.serve_args();
    args.extend(["--tls-client-ca".into(), "/nonexistent/clients.pem".into()]);
    let (ok, _, err) = serve(args).await;
    assert!(!ok);
    assert!(
        err.contains("cannot read --tls-client-ca /nonexistent/clients.pem"),
        "{err}"
    );
}

/// The status of a call that must fail (without printing a successful answer, which may be
/// large).
trait ExpectRefused {
    fn expect_refused(self, what: &str) -> tonic::Status;
}

impl<T> ExpectRefused for Result<T, tonic::Status> {
    fn expect_refused(self, what: &str) -> tonic::Status {
        match self {
            Ok(_) => panic!("{what}: the call succeeded"),
            Err(status) => status,
        }
    }
}

/// A plan text of about `len` characters, different for each `n`.
fn text(n: u64, len: usize) -> String {
    format!("Revision {n}: {}", "risk ".repeat(len / 5))
}

#[tokio::test]
async fn messages_larger_than_the_limit_are_refused_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start_with(&dir.path().join("data"), &["--max-message-bytes", "32768"]).await;
    onboard(&server, "globex").await;
    let mut commands = server.commands();

    // A request over the limit (three 15 kB sections) is refused before it is decoded, and
    // stores nothing.
    let mut big = batch(
        "globex",
        (0..3)
            .map(|n| revise("plan-2026", &text(n, 15_000)))
            .collect(),
    );
    big.expected_version = exact(request("globex", register("unused")), 5).expected_version;
    let refused = commands
        .execute_batch(big)
        .await
        .expect_refused("a request over the limit is refused");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("32768"), "{refused:?}");
    assert_eq!(head(&server).await, 5);

    // Under the limit, the same kind of request goes through: three events of 15 kB.
    for version in 5..8 {
        let revision = request("globex", revise("plan-2026", &text(version, 15_000)));
        commands.execute(exact(revision, version)).await.unwrap();
    }
    assert_eq!(head(&server).await, 8);

    // An answer over the limit (the three sections at once) is not sent, not even in part.
    let mut events = server.events();
    let too_big = events
        .read_all(pb::ReadAllRequest {
            from_position: 0,
            max_count: 100,
            filter: None,
        })
        .await
        .expect_refused("an answer over the limit is not sent");
    assert_eq!(too_big.code(), Code::OutOfRange, "{too_big:?}");
    // Page by page, each answer fits.
    let page = events
        .read_all(pb::ReadAllRequest {
            from_position: 6,
            max_count: 1,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.events.len(), 1);
    assert_eq!(position(&page.events[0]), 6);

    // The limit covers the read models' services too (built once their models load): a
    // query over it is refused, the same query under it answered.
    let mut timeline = pb::timeline_service_client::TimelineServiceClient::new(server.channel());
    let mut query = timeline_request("globex", 0);
    query.actor = "x".repeat(40_000);
    let too_big = timeline
        .list_timeline(query)
        .await
        .expect_refused("a query over the limit is refused");
    assert_eq!(too_big.code(), Code::OutOfRange, "{too_big:?}");
    let mut query = timeline_request("globex", 0);
    query.actor = "dana.kim".into();
    query.page_size = 1;
    let answered = timeline.list_timeline(query).await.unwrap().into_inner();
    assert_eq!(answered.entries.len(), 1);

    server.stop().await;
}

fn timeline_request(account: &str, min_position: u64) -> pb::ListTimelineRequest {
    pb::ListTimelineRequest {
        tenant: TENANT.into(),
        account_id: account.into(),
        min_position,
        ..Default::default()
    }
}

/// An event's global position.
fn position(event: &pb::Event) -> u64 {
    event.metadata.as_ref().unwrap().global_position
}

fn subscribe_all() -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        from_position: 0,
        filter: None,
    }
}

#[tokio::test]
async fn a_connection_gets_at_most_max_concurrent_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start_with(&dir.path().join("data"), &["--max-concurrent-streams", "2"]).await;
    onboard(&server, "globex").await;
    // One channel is one HTTP/2 connection.
    let channel = server.channel();

    let mut first = EventStoreServiceClient::new(channel.clone())
        .subscribe(subscribe_all())
        .await
        .unwrap()
        .into_inner();
    let mut second = EventStoreServiceClient::new(channel.clone())
        .subscribe(subscribe_all())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(position(&first.message().await.unwrap().unwrap()), 1);
    assert_eq!(position(&second.message().await.unwrap().unwrap()), 1);

    let third_channel = channel.clone();
    let third = tokio::spawn(async move {
        let mut stream = EventStoreServiceClient::new(third_channel)
            .subscribe(subscribe_all())
            .await?
            .into_inner();
        let event = stream.message().await?;
        Ok::<_, tonic::Status>((event.map(|e| position(&e)), stream))
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !third.is_finished(),
        "a third stream was served while two were open"
    );

    // One closes: the third is served.
    drop(first);
    let (third_first, _stream) = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("the third stream is served once one closed")
        .unwrap()
        .unwrap();
    assert_eq!(third_first, Some(1));
    assert_eq!(position(&second.message().await.unwrap().unwrap()), 2);

    server.stop().await;
}

#[tokio::test]
async fn the_request_timeout_ends_slow_unary_calls_but_not_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start_with(&dir.path().join("data"), &["--request-timeout-secs", "1"]).await;
    onboard(&server, "globex").await;

    let mut stream = server
        .events()
        .subscribe(subscribe_all())
        .await
        .unwrap()
        .into_inner();
    for expected in 1..=5 {
        assert_eq!(
            position(&stream.message().await.unwrap().unwrap()),
            expected
        );
    }

    // A read waiting for a position the log does not reach would wait 5 s (then UNAVAILABLE):
    // the timeout ends it after 1 s. tonic reports an expired server timeout as CANCELLED.
    let mut timeline = pb::timeline_service_client::TimelineServiceClient::new(server.channel());
    let started = Instant::now();
    let cut = timeline
        .list_timeline(timeline_request("globex", 1_000))
        .await
        .expect_refused("the slow call is cut");
    let took = started.elapsed();
    assert_eq!(cut.code(), Code::Cancelled, "{cut:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    // A quick unary call is not affected.
    assert_eq!(
        timeline
            .list_timeline(timeline_request("globex", 5))
            .await
            .unwrap()
            .into_inner()
            .entries
            .len(),
        5
    );

    // The stream outlives the timeout and still delivers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    server
        .commands()
        .execute(exact(
            request("globex", revise("plan-2026", "Currency risk")),
            5,
        ))
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the stream delivers after the timeout")
        .unwrap()
        .unwrap();
    assert_eq!(position(&next), 6);

    server.stop().await;
}
