//! Identity, tenancy and roles, against the real binary over a socket: every RPC of the API
//! (from the policy table, which a unit test holds to the descriptors) without a token, with
//! bad tokens, with another tenant's token, and with each role.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::fixtures::*;
use common::raw::call;
use common::Server;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyplan_auth::claims::{Audience, Claims};
use keyplan_auth::policy::{Kind as RpcKind, RULES};
use keyplan_proto::pb;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use tonic::{Code, Status};

const SECRET: &[u8] = b"keyplan-auth-test-secret-0123456789abcdef";
const ISSUER: &str = "https://id.keyplan.test";
const AUDIENCE: &str = "keyplan";
/// Tenant A is the fixtures' tenant; tenant B's data must never show in A's answers.
const OTHER_TENANT: &str = "globex-industrial";
const OTHER_ACCOUNT: &str = "globex-secret-account";
/// How long an open stream may stay quiet before the test stops reading it.
const QUIET: Duration = Duration::from_millis(400);

fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/auth/tests/keys")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(sub: &str, tenant: Option<&str>, roles: &[&str]) -> Claims {
    Claims {
        sub: sub.into(),
        tenant: tenant.map(str::to_owned),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        exp: now() + 600,
        iat: Some(now()),
        nbf: None,
        iss: Some(ISSUER.into()),
        aud: Some(Audience::One(AUDIENCE.into())),
    }
}

fn hs256(claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// `claims` signed with the test key in `pem` (under `keys()`) for `algorithm`, naming key
/// `kid`.
fn signed(claims: &Claims, algorithm: Algorithm, pem: &str, kid: &str) -> String {
    let pem = std::fs::read(keys().join(pem)).unwrap();
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => panic!("no test key for {other:?}"),
    }
    .unwrap();
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A token for `sub` in tenant A with `roles`.
fn token(sub: &str, roles: &[&str]) -> String {
    hs256(&claims(sub, Some(TENANT), roles))
}

/// A node with HS256 and JWKS keys, issuer and audience checks.
async fn start(dir: &Path) -> Server {
    let secret = dir.join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let jwks = keys().join("jwks.json");
    Server::start_with(
        &dir.join("data"),
        &[
            "--auth-hs256-secret-file",
            secret.to_str().unwrap(),
            "--auth-jwks-file",
            jwks.to_str().unwrap(),
            "--auth-issuer",
            ISSUER,
            "--auth-audience",
            AUDIENCE,
        ],
    )
    .await
}

fn pool() -> DescriptorPool {
    DescriptorPool::decode(keyplan_proto::FILE_DESCRIPTOR_SET).unwrap()
}

/// A request for the RPC at `path` naming `tenant` (in its `tenant` field, or its event
/// filter's), and `account` where it has an `account_id`.
fn request_for(pool: &DescriptorPool, path: &str, tenant: &str, account: &str) -> Vec<u8> {
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap();
    let method = pool
        .get_service_by_name(service)
        .unwrap()
        .methods()
        .find(|m| m.name() == method)
        .unwrap();
    let input = method.input();
    let mut message = DynamicMessage::new(input.clone());
    if let Some(field) = input.get_field_by_name("tenant") {
        message.set_field(&field, Value::String(tenant.into()));
    }
    if let Some(field) = input.get_field_by_name("filter") {
        let mut filter = DynamicMessage::new(field.kind().as_message().unwrap().clone());
        filter.set_field_by_name("tenant", Value::String(tenant.into()));
        message.set_field(&field, Value::Message(filter));
    }
    if let Some(field) = input.get_field_by_name("account_id") {
        message.set_field(&field, Value::String(account.into()));
    }
    message.encode_to_vec()
}

async fn rpc(
    server: &Server,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> Result<Vec<Vec<u8>>, Status> {
    call(server.channel(), path, token, body, QUIET).await
}

/// Writes a few events in tenant A (as dana.kim) and in tenant B (as its own rep).
async fn write_both_tenants(server: &Server) {
    let a = token("dana.kim", &["rep"]);
    for (i, kind) in [register("Acme Key Account"), plan("plan-a")]
        .into_iter()
        .enumerate()
    {
        let body = request("acme-account", kind).encode_to_vec();
        rpc(server, "/keyplan.v1.CommandService/Execute", Some(&a), body)
            .await
            .unwrap_or_else(|e| panic!("A's command {i}: {e:?}"));
    }
    let b = hs256(&claims("lee.park", Some(OTHER_TENANT), &["rep"]));
    for kind in [register("GLOBEX SECRET NAME"), plan("plan-b")] {
        let mut command = request(OTHER_ACCOUNT, kind);
        command.tenant = OTHER_TENANT.into();
        command.actor = "lee.park".into();
        rpc(
            server,
            "/keyplan.v1.CommandService/Execute",
            Some(&b),
            command.encode_to_vec(),
        )
        .await
        .unwrap();
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn without_a_token_every_rpc_is_unauthenticated_and_health_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let pool = pool();
    for rule in RULES {
        let body = request_for(&pool, rule.path, TENANT, "acme-account");
        let status = rpc(&server, rule.path, None, body).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{}: {status:?}",
            rule.path
        );
        assert!(status.message().contains("bearer token"), "{status:?}");
    }
    let status = rpc(
        &server,
        "/keyplan.v1.AccountService/ListAccounts",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(status.unwrap_err().code(), Code::Unauthenticated);
    // Health answers anyone (probes carry no token).
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(serving.status, 1);
    // Refusals are logged with the RPC and the reason, never the token.
    let log = server.log();
    assert!(log.contains("call refused"), "{log}");
    assert!(log.contains("/keyplan.v1.CommandService/Execute"), "{log}");
}

#[tokio::test]
async fn bad_tokens_are_refused_each_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let path = "/keyplan.v1.AccountService/ListAccounts";
    let body = pb::ListAccountsRequest::default().encode_to_vec();
    let refused = |token: String, why: &'static str| {
        let server = &server;
        let body = body.clone();
        async move {
            let status = rpc(server, path, Some(&token), body).await.unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{why}: {status:?}");
            assert!(
                status.message().contains(why),
                "expected {why:?} in {:?}",
                status.message()
            );
            assert!(!server.log().contains(&token), "a token was logged");
        }
    };
    let good = claims("dana.kim", Some(TENANT), &["rep"]);

    let mut expired = good.clone();
    expired.exp = now() - 300;
    refused(hs256(&expired), "expired").await;

    let mut early = good.clone();
    early.nbf = Some(now() + 3600);
    refused(hs256(&early), "not valid yet").await;

    let wrong_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"not-the-node-secret-not-the-node-secret"),
    )
    .unwrap();
    refused(wrong_secret, "signature").await;

    let mut wrong_issuer = good.clone();
    wrong_issuer.iss = Some("https://evil.test".into());
    refused(hs256(&wrong_issuer), "issuer").await;

    let mut wrong_audience = good.clone();
    wrong_audience.aud = Some(Audience::One("crm".into()));
    refused(hs256(&wrong_audience), "audience").await;

    refused(
        signed(&good, Algorithm::RS256, "rsa.pem", "retired-key"),
        "unknown signing key id",
    )
    .await;
    refused(
        signed(&good, Algorithm::RS256, "other-rsa.pem", "rsa-1"),
        "signature",
    )
    .await;

    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&serde_json::to_string(&good).unwrap())
    );
    refused(none, "algorithm none").await;
    refused("garbage".into(), "malformed").await;

    // The JWKS's keys, each for its algorithm, are accepted.
    for (algorithm, pem, kid) in [
        (Algorithm::RS256, "rsa.pem", "rsa-1"),
        (Algorithm::ES256, "ec.pem", "ec-1"),
        (Algorithm::EdDSA, "ed25519.pem", "ed-1"),
    ] {
        let token = signed(&good, algorithm, pem, kid);
        rpc(&server, path, Some(&token), body.clone())
            .await
            .unwrap_or_else(|e| panic!("{algorithm:?}: {e:?}"));
    }
}

#[tokio::test]
async fn another_tenants_data_is_out_of_reach_on_every_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    write_both_tenants(&server).await;
    let pool = pool();
    // Every role but admin: only the tenancy can refuse.
    let a = token("dana.kim", &["rep", "manager", "auditor", "service"]);
    for rule in RULES.iter().filter(|r| r.kind != RpcKind::Operations) {
        let body = request_for(&pool, rule.path, OTHER_TENANT, OTHER_ACCOUNT);
        let status = rpc(&server, rule.path, Some(&a), body).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{}: {status:?}",
            rule.path
        );
        assert!(status.message().contains(OTHER_TENANT), "{status:?}");
    }
    // With the tenant left empty, every read answers for A only, whatever account it names.
    for rule in RULES.iter().filter(|r| r.kind == RpcKind::Read) {
        for account in [OTHER_ACCOUNT, ""] {
            let body = request_for(&pool, rule.path, "", account);
            if let Ok(messages) = rpc(&server, rule.path, Some(&a), body).await {
                for message in messages {
                    for secret in [OTHER_TENANT, OTHER_ACCOUNT, "GLOBEX SECRET NAME"] {
                        assert!(
                            !contains(&message, secret),
                            "{} answered with tenant B's {secret:?}",
                            rule.path
                        );
                    }
                }
            }
        }
    }
    // ReadAll and Subscribe without a filter: A's events, all of them, and only those.
    for path in [
        "/keyplan.v1.EventStoreService/ReadAll",
        "/keyplan.v1.EventStoreService/Subscribe",
    ] {
        let body = match path.ends_with("ReadAll") {
            true => pb::ReadAllRequest::default().encode_to_vec(),
            false => pb::SubscribeRequest::default().encode_to_vec(),
        };
        let messages = rpc(&server, path, Some(&a), body).await.unwrap();
        let events: Vec<pb::Event> = match path.ends_with("ReadAll") {
            true => messages
                .iter()
                .flat_map(|m| pb::ReadAllResponse::decode(&m[..]).unwrap().events)
                .collect(),
            false => messages
                .iter()
                .map(|m| pb::Event::decode(&m[..]).unwrap())
                .collect(),
        };
        assert_eq!(events.len(), 2, "{path}: A's two events");
        assert!(
            events
                .iter()
                .all(|e| e.metadata.as_ref().unwrap().tenant == TENANT),
            "{path}"
        );
    }
    // An admin reads across tenants: both tenants' events.
    let admin = hs256(&claims("ops.oncall", None, &["admin"]));
    let messages = rpc(
        &server,
        "/keyplan.v1.EventStoreService/ReadAll",
        Some(&admin),
        pb::ReadAllRequest::default().encode_to_vec(),
    )
    .await
    .unwrap();
    let all = pb::ReadAllResponse::decode(&messages[0][..])
        .unwrap()
        .events;
    assert_eq!(all.len(), 4);
    // ... but writes in no tenant it does not act for.
    let mut command = request("acme-account", interaction("i-1", "cfo", 0));
    command.actor = String::new();
    let status = rpc(
        &server,
        "/keyplan.v1.CommandService/Execute",
        Some(&admin),
        command.encode_to_vec(),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn roles_decide_what_a_caller_may_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    write_both_tenants(&server).await;
    let pool = pool();
    let call_all = |token: String| {
        let server = &server;
        let pool = &pool;
        async move {
            let mut outcomes = Vec::new();
            for rule in RULES {
                let body = request_for(pool, rule.path, TENANT, "acme-account");
                let outcome = rpc(server, rule.path, Some(&token), body).await;
                outcomes.push((rule, outcome.err().map(|s| s.code())));
            }
            outcomes
        }
    };
    let denied = |code: Option<Code>| code == Some(Code::PermissionDenied);

    // An auditor: every command refused, every read allowed, no operations.
    for (rule, code) in call_all(token("audrey.auditor", &["auditor"])).await {
        match rule.kind {
            RpcKind::Command | RpcKind::Operations => {
                assert!(denied(code), "auditor on {}: {code:?}", rule.path)
            }
            RpcKind::Read => assert!(!denied(code), "auditor on {}: {code:?}", rule.path),
        }
    }
    // A rep: commands and per-account reads; no dashboards, exports or operations.
    for (rule, code) in call_all(token("dana.kim", &["rep"])).await {
        let dashboard = [
            "GetComplianceRollup",
            "GetComplianceTrend",
            "ListQuietAccounts",
            "GetPortfolio",
            "ExportAccount",
        ]
        .iter()
        .any(|m| rule.path.ends_with(m));
        let expect_denied = rule.kind == RpcKind::Operations || dashboard;
        assert_eq!(
            denied(code),
            expect_denied,
            "rep on {}: {code:?}",
            rule.path
        );
    }
    // A service: reads and subscriptions, no commands unless it is also a rep.
    for (rule, code) in call_all(token("crm-sync", &["service"])).await {
        let expect_denied = rule.kind != RpcKind::Read || rule.path.ends_with("ExportAccount");
        assert_eq!(
            denied(code),
            expect_denied,
            "service on {}: {code:?}",
            rule.path
        );
    }
    let service_rep = token("crm-sync", &["service", "rep"]);
    let mut command = request(
        "acme-account",
        assign("p-crm", "CRM Sync", pb::TeamRole::Sales),
    );
    command.actor = String::new();
    rpc(
        &server,
        "/keyplan.v1.CommandService/Execute",
        Some(&service_rep),
        command.encode_to_vec(),
    )
    .await
    .unwrap();
    // Operations: admin only.
    for (rule, code) in call_all(hs256(&claims("ops.oncall", None, &["admin"]))).await {
        let expect_denied = rule.kind == RpcKind::Command;
        assert_eq!(
            denied(code),
            expect_denied,
            "admin on {}: {code:?}",
            rule.path
        );
    }
    // A token with no Keyplan role calls nothing.
    for (rule, code) in call_all(token("nobody", &["offline_access"])).await {
        assert!(denied(code), "no role on {}: {code:?}", rule.path);
    }
    let log = server.log();
    assert!(log.contains("subject=audrey.auditor"), "{log}");
}

#[tokio::test]
async fn the_recorded_actor_is_the_tokens_subject() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let dana = token("dana.kim", &["rep"]);
    let execute = "/keyplan.v1.CommandService/Execute";

    // Spoofing another actor is refused and stores nothing.
    let mut spoofed = request("acme-account", register("Acme"));
    spoofed.actor = "ceo.of.acme".into();
    let status = rpc(&server, execute, Some(&dana), spoofed.encode_to_vec())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("ceo.of.acme"), "{status:?}");
    let admin = hs256(&claims("ops.oncall", None, &["admin"]));
    let head = |server: &Server| {
        let admin = admin.clone();
        let channel = server.channel();
        async move {
            let messages = call(
                channel,
                "/keyplan.v1.EventStoreService/ReadAll",
                Some(&admin),
                pb::ReadAllRequest::default().encode_to_vec(),
                QUIET,
            )
            .await
            .unwrap();
            pb::ReadAllResponse::decode(&messages[0][..])
                .unwrap()
                .events
        }
    };
    assert!(head(&server).await.is_empty());

    // An empty actor takes the subject; the subject itself is accepted.
    let mut anonymous = request("acme-account", register("Acme"));
    anonymous.actor = String::new();
    rpc(&server, execute, Some(&dana), anonymous.encode_to_vec())
        .await
        .unwrap();
    let batch = batch("acme-account", vec![plan("plan-1")]);
    rpc(
        &server,
        "/keyplan.v1.CommandService/ExecuteBatch",
        Some(&dana),
        batch.encode_to_vec(),
    )
    .await
    .unwrap();
    let events = head(&server).await;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.metadata.as_ref().unwrap().actor == "dana.kim"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_minted_token_works_and_the_cli_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let secret = dir.path().join("secret");
    let mint = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
            .args(["token", "mint", "--secret-file", secret.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = mint(&[
        "--tenant",
        TENANT,
        "--sub",
        "dana.kim",
        "--role",
        "rep",
        "--ttl",
        "1h",
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let minted = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    rpc(
        &server,
        "/keyplan.v1.AccountService/ListAccounts",
        Some(&minted),
        pb::ListAccountsRequest::default().encode_to_vec(),
    )
    .await
    .unwrap();
    let out = mint(&["--sub", "dana.kim", "--role", "rep"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant"));
    let out = mint(&["--tenant", TENANT, "--sub", "x", "--role", "superuser"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));
}

#[tokio::test]
async fn without_auth_a_node_serves_loopback_only_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--insecure-no-auth"), "{stderr}");
    // The embedded default on loopback serves, and says loudly that authentication is off.
    let server = Server::start(&dir.path().join("open")).await;
    rpc(
        &server,
        "/keyplan.v1.AccountService/ListAccounts",
        None,
        pb::ListAccountsRequest {
            tenant: TENANT.into(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await
    .unwrap();
    assert!(server.log().contains("AUTHENTICATION IS OFF"));
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    // Expired 24 s ago: still valid within the 30 s leeway, for about 6 s more (time enough
    // to open the streams on a loaded machine).
    let mut short = claims("dana.kim", Some(TENANT), &["rep"]);
    short.exp = now() - 24;
    let short = hs256(&short);
    let long = token("dana.kim", &["rep"]);
    let subscribe = |token: String| {
        let channel = server.channel();
        async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.unwrap();
            let mut request = tonic::Request::new(pb::SubscribeRequest::default().encode_to_vec());
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            grpc.server_streaming(
                request,
                "/keyplan.v1.EventStoreService/Subscribe".parse().unwrap(),
                common::raw::RawCodec,
            )
            .await
            .unwrap()
            .into_inner()
        }
    };
    let mut expiring = subscribe(short).await;
    let mut lasting = subscribe(long).await;
    let started = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match expiring.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream ends once its token expires");
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    assert!(ended.message().contains("expired"), "{ended:?}");
    assert!(started.elapsed() < Duration::from_secs(25));
    // A stream opened with a valid token goes on, and delivers what is written now.
    rpc(
        &server,
        "/keyplan.v1.CommandService/Execute",
        Some(&token("dana.kim", &["rep"])),
        request("acme-account", register("Acme")).encode_to_vec(),
    )
    .await
    .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), lasting.message())
        .await
        .expect("the lasting stream delivers")
        .unwrap()
        .expect("an event");
    assert!(!event.is_empty());
}

#[tokio::test]
async fn keys_rotate_on_sighup_and_a_bad_file_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    // The identity provider's JWKS holds only the EC key at first.
    let full: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys().join("jwks.json")).unwrap()).unwrap();
    let only = |kid: &str| {
        let keys: Vec<_> = full["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kid"] == kid)
            .cloned()
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    };
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, only("ec-1")).unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--auth-jwks-file", jwks.to_str().unwrap()],
    )
    .await;
    let dana = claims("dana.kim", Some(TENANT), &["rep"]);
    let rsa = signed(&dana, Algorithm::RS256, "rsa.pem", "rsa-1");
    let ec = signed(&dana, Algorithm::ES256, "ec.pem", "ec-1");
    let list = |token: String| {
        let channel = server.channel();
        async move {
            call(
                channel,
                "/keyplan.v1.AccountService/ListAccounts",
                Some(&token),
                pb::ListAccountsRequest::default().encode_to_vec(),
                QUIET,
            )
            .await
            .map(drop)
        }
    };
    assert_eq!(
        list(rsa.clone()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    list(ec.clone()).await.unwrap();

    // The provider rotates: the RSA key replaces the EC key. SIGHUP reloads.
    std::fs::write(&jwks, only("rsa-1")).unwrap();
    server.signal("HUP");
    let mut accepted = false;
    for _ in 0..50 {
        if list(rsa.clone()).await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "the new key is in force after SIGHUP");
    assert_eq!(
        list(ec.clone()).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // A half-written file: the keys in force stay.
    std::fs::write(&jwks, "{\"keys\": [").unwrap();
    server.signal("HUP");
    let mut logged = false;
    for _ in 0..50 {
        if server.log().contains("keeping the previous keys") {
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged, "{}", server.log());
    list(rsa).await.unwrap();
    server.stop().await;
}
