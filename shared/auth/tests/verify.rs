//! Token verification: every way a token can be wrong is refused, and says which.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyplan_auth::claims::{Audience, Claims};
use keyplan_auth::{AuthError, Role, Roles, Verifier};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Claims {
    Claims {
        sub: "dana.kim".into(),
        tenant: Some("acme".into()),
        roles: vec!["rep".into()],
        exp: now() + 600,
        iat: Some(now()),
        nbf: None,
        iss: None,
        aud: None,
    }
}

fn hs256(claims: &Claims, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn signed(claims: &Claims, algorithm: Algorithm, pem: &str, kid: Option<&str>) -> String {
    let pem = std::fs::read(keys().join(pem)).unwrap();
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => panic!("no key for {other:?}"),
    }
    .unwrap();
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn secret_file(dir: &Path) -> PathBuf {
    let path = dir.join("secret");
    std::fs::write(&path, [SECRET, b"\n"].concat()).unwrap();
    path
}

fn hs256_verifier(dir: &Path) -> Verifier {
    Verifier::new()
        .with_hs256_secret_file(&secret_file(dir))
        .unwrap()
}

fn jwks_verifier() -> Verifier {
    Verifier::new()
        .with_jwks_file(&keys().join("jwks.json"))
        .unwrap()
}

#[test]
fn a_valid_token_names_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = claims();
    c.roles = vec!["manager".into(), "auditor".into(), "crm-sync".into()];
    let caller = hs256_verifier(dir.path())
        .verify(&hs256(&c, SECRET))
        .unwrap();
    assert_eq!(caller.subject, "dana.kim");
    assert_eq!(caller.tenant.as_deref(), Some("acme"));
    assert_eq!(caller.roles, Roles::of(&[Role::Manager, Role::Auditor]));
}

#[test]
fn header_must_be_bearer() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = hs256_verifier(dir.path());
    assert_eq!(verifier.verify_header(None), Err(AuthError::Missing));
    assert_eq!(
        verifier.verify_header(Some(b"Basic ZGFuYTpzZWNyZXQ=")),
        Err(AuthError::NotBearer)
    );
    let token = hs256(&claims(), SECRET);
    assert!(verifier
        .verify_header(Some(format!("Bearer {token}").as_bytes()))
        .is_ok());
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused_with_a_small_leeway() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = hs256_verifier(dir.path());
    let mut c = claims();
    c.exp = now() - 120;
    assert_eq!(verifier.verify(&hs256(&c, SECRET)), Err(AuthError::Expired));
    c.exp = now() - 5;
    assert!(
        verifier.verify(&hs256(&c, SECRET)).is_ok(),
        "within the leeway"
    );
    let mut c = claims();
    c.nbf = Some(now() + 300);
    assert_eq!(
        verifier.verify(&hs256(&c, SECRET)),
        Err(AuthError::NotYetValid)
    );
}

#[test]
fn wrong_signatures_and_tampered_claims_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = hs256_verifier(dir.path());
    let other = hs256(&claims(), b"another-secret-another-secret-0123456789");
    assert_eq!(verifier.verify(&other), Err(AuthError::Signature));

    // Another tenant spliced into a genuine token.
    let token = hs256(&claims(), SECRET);
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged.tenant = Some("globex".into());
    let forged_payload = hs256(&forged, SECRET);
    let forged_payload = forged_payload.split('.').nth(1).unwrap();
    let spliced = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(verifier.verify(&spliced), Err(AuthError::Signature));
}

#[test]
fn alg_none_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = hs256_verifier(dir.path());
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let payload = serde_json::to_string(&claims()).unwrap();
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&payload)
    );
    assert!(
        matches!(verifier.verify(&none), Err(AuthError::Algorithm(_))),
        "{:?}",
        verifier.verify(&none)
    );
    assert!(matches!(
        verifier.verify("not-a-token"),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let issuer_only = hs256_verifier(dir.path()).with_issuer(Some("https://id.example.com".into()));
    let mut c = claims();
    assert_eq!(
        issuer_only.verify(&hs256(&c, SECRET)),
        Err(AuthError::MissingClaim("iss"))
    );
    let verifier = issuer_only.with_audience(Some("keyplan".into()));
    c.iss = Some("https://evil.example.com".into());
    c.aud = Some(Audience::One("keyplan".into()));
    assert_eq!(verifier.verify(&hs256(&c, SECRET)), Err(AuthError::Issuer));
    c.iss = Some("https://id.example.com".into());
    c.aud = Some(Audience::Many(vec!["crm".into()]));
    assert_eq!(
        verifier.verify(&hs256(&c, SECRET)),
        Err(AuthError::Audience)
    );
    c.aud = Some(Audience::Many(vec!["crm".into(), "keyplan".into()]));
    assert!(verifier.verify(&hs256(&c, SECRET)).is_ok());
}

#[test]
fn a_token_needs_a_subject_and_a_tenant_unless_admin() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = hs256_verifier(dir.path());
    let mut c = claims();
    c.tenant = None;
    assert_eq!(
        verifier.verify(&hs256(&c, SECRET)),
        Err(AuthError::MissingClaim("tenant"))
    );
    c.roles = vec!["admin".into()];
    assert!(verifier.verify(&hs256(&c, SECRET)).is_ok());
    let mut c = claims();
    c.sub = String::new();
    assert_eq!(
        verifier.verify(&hs256(&c, SECRET)),
        Err(AuthError::MissingClaim("sub"))
    );
}

#[test]
fn jwks_keys_verify_rs256_es256_and_eddsa() {
    let verifier = jwks_verifier();
    for (algorithm, pem, kid) in [
        (Algorithm::RS256, "rsa.pem", "rsa-1"),
        (Algorithm::ES256, "ec.pem", "ec-1"),
        (Algorithm::EdDSA, "ed25519.pem", "ed-1"),
    ] {
        let token = signed(&claims(), algorithm, pem, Some(kid));
        let caller = verifier
            .verify(&token)
            .unwrap_or_else(|e| panic!("{algorithm:?}: {e}"));
        assert_eq!(caller.subject, "dana.kim");
    }
}

#[test]
fn jwks_refuses_unknown_key_ids_other_keys_and_algorithm_confusion() {
    let verifier = jwks_verifier();
    assert_eq!(
        verifier.verify(&signed(
            &claims(),
            Algorithm::RS256,
            "rsa.pem",
            Some("rsa-2")
        )),
        Err(AuthError::UnknownKey("rsa-2".into()))
    );
    assert_eq!(
        verifier.verify(&signed(
            &claims(),
            Algorithm::RS256,
            "other-rsa.pem",
            Some("rsa-1")
        )),
        Err(AuthError::Signature)
    );
    // An RS256 token that names the EC key.
    assert!(matches!(
        verifier.verify(&signed(
            &claims(),
            Algorithm::RS256,
            "rsa.pem",
            Some("ec-1")
        )),
        Err(AuthError::Algorithm(_))
    ));
    // HS256 "signed" with the RSA public key's text: no HS256 secret is configured.
    let public = std::fs::read(keys().join("jwks.json")).unwrap();
    assert!(matches!(
        verifier.verify(&hs256(&claims(), &public)),
        Err(AuthError::Algorithm(_))
    ));
    // Without a key id, the only key of the token's algorithm verifies it.
    assert!(verifier
        .verify(&signed(&claims(), Algorithm::ES256, "ec.pem", None))
        .is_ok());
}

#[test]
fn key_files_must_be_usable() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "too-short\n").unwrap();
    assert!(Verifier::new().with_hs256_secret_file(&short).is_err());
    assert!(Verifier::new()
        .with_hs256_secret_file(&dir.path().join("missing"))
        .is_err());
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, r#"{"keys":[]}"#).unwrap();
    assert!(Verifier::new().with_jwks_file(&empty).is_err());
    let symmetric = dir.path().join("oct.json");
    std::fs::write(
        &symmetric,
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"x"}]}"#,
    )
    .unwrap();
    let error = Verifier::new().with_jwks_file(&symmetric).unwrap_err();
    assert!(error.to_string().contains("symmetric"), "{error}");
}

#[test]
fn minted_tokens_verify() {
    let dir = tempfile::tempdir().unwrap();
    let request = keyplan_auth::mint::TokenRequest {
        subject: "svc-crm".into(),
        tenant: Some("acme".into()),
        roles: vec![Role::Service, Role::Rep],
        ttl: Duration::from_secs(3600),
        issuer: None,
        audience: None,
    };
    let token = keyplan_auth::mint::mint_hs256(&secret_file(dir.path()), &request).unwrap();
    let caller = hs256_verifier(dir.path()).verify(&token).unwrap();
    assert_eq!(caller.subject, "svc-crm");
    assert_eq!(caller.roles, Roles::of(&[Role::Service, Role::Rep]));
    let mut no_tenant = request.clone();
    no_tenant.tenant = None;
    assert!(keyplan_auth::mint::mint_hs256(&secret_file(dir.path()), &no_tenant).is_err());
}
