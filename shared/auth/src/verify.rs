//! Verifying bearer tokens against the node's configured keys.
//!
//! Two kinds of keys, each from a file: an HS256 shared secret (for development tokens and
//! small deployments, see [`crate::mint`]) and a JWKS holding an identity provider's public
//! keys (RS256, ES256, EdDSA). A token's header names its algorithm, and for JWKS keys its key
//! id (`kid`); only keys of a configured kind verify, and each key only the algorithm it is
//! for, so a token cannot choose a weaker check (`alg: none`, or HS256 keyed with a public
//! key).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use thiserror::Error;

use crate::claims::{Caller, Claims};

/// Shortest HS256 secret accepted, in bytes (RFC 7518, 3.2: at least the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;

/// How far a token's `exp` and `nbf` may be off the node's clock.
pub const CLOCK_LEEWAY: Duration = Duration::from_secs(30);

/// Why the keys could not be loaded (a configuration error: the node does not start).
#[derive(Debug, Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The HS256 secret is too short to be safe.
    #[error("{path} holds {len} bytes; an HS256 secret needs at least {MIN_SECRET_BYTES}")]
    SecretTooShort {
        /// The file.
        path: String,
        /// Its length without the trailing line break.
        len: usize,
    },
    /// The JWKS file is not a JWK set Keyplan can use.
    #[error("{path}: {reason}")]
    Jwks {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Why a call's token was refused: each says which check failed, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No `authorization` header.
    #[error("no bearer token: send `authorization: Bearer <JWT>`")]
    Missing,
    /// The header is not `Bearer <token>`.
    #[error("the authorization header is not `Bearer <JWT>`")]
    NotBearer,
    /// Not a JWT, or a claim has the wrong type.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names an algorithm this node does not accept (`none` included).
    #[error("token algorithm {0} is not accepted by this node")]
    Algorithm(String),
    /// No configured key has the token's key id.
    #[error("unknown signing key id {0:?}")]
    UnknownKey(String),
    /// The JWKS holds several keys for the algorithm and the token names none.
    #[error("the token names no key id (`kid`) and several keys could verify it")]
    NoKeyId,
    /// The signature does not verify with the key.
    #[error("invalid token signature")]
    Signature,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Before `nbf`.
    #[error("token not valid yet (nbf is in the future)")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong token issuer")]
    Issuer,
    /// `aud` does not include the configured audience.
    #[error("wrong token audience")]
    Audience,
    /// A required claim is absent or empty.
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
}

/// One JWKS key with what it verifies.
#[derive(Clone)]
struct PublicKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies tokens: the node's keys, expected issuer and audience.
#[derive(Clone, Default)]
pub struct Verifier {
    secret: Option<DecodingKey>,
    /// JWKS keys by key id (keys without one under the empty id).
    public: HashMap<String, PublicKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a key.
        f.debug_struct("Verifier")
            .field("hs256", &self.secret.is_some())
            .field("jwks_key_ids", &self.public.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Verifier {
    /// A verifier with no keys yet (verifies nothing until given some).
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts HS256 tokens signed with the secret in `path` (its bytes, without a trailing
    /// line break; at least [`MIN_SECRET_BYTES`]).
    pub fn with_hs256_secret_file(mut self, path: &Path) -> Result<Self, KeyError> {
        let secret = read_secret(path)?;
        self.secret = Some(DecodingKey::from_secret(&secret));
        Ok(self)
    }

    /// Accepts tokens signed by the keys of the JWK set in `path` (RS256, ES256 on P-256,
    /// EdDSA on Ed25519). A key without `alg` verifies the algorithm its type implies.
    pub fn with_jwks_file(mut self, path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|error| KeyError::Read {
            path: path.display().to_string(),
            error,
        })?;
        let jwks_error = |reason: String| KeyError::Jwks {
            path: path.display().to_string(),
            reason,
        };
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| jwks_error(format!("not a JWK set ({e})")))?;
        if set.keys.is_empty() {
            return Err(jwks_error("the set holds no key".into()));
        }
        for jwk in &set.keys {
            let id = jwk.common.key_id.clone().unwrap_or_default();
            let algorithm = algorithm_of(jwk).map_err(|reason| {
                jwks_error(format!("key {id:?}: {reason}; Keyplan accepts RS256, ES256 (P-256) and EdDSA (Ed25519)"))
            })?;
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| jwks_error(format!("key {id:?}: {e}")))?;
            if self
                .public
                .insert(id.clone(), PublicKey { algorithm, key })
                .is_some()
            {
                return Err(jwks_error(format!("two keys have the id {id:?}")));
            }
        }
        Ok(self)
    }

    /// Requires `iss` to be `issuer`.
    pub fn with_issuer(mut self, issuer: Option<String>) -> Self {
        self.issuer = issuer;
        self
    }

    /// Requires `aud` to include `audience`.
    pub fn with_audience(mut self, audience: Option<String>) -> Self {
        self.audience = audience;
        self
    }

    /// Verifies the value of an `authorization` header and returns who calls.
    pub fn verify_header(&self, header: Option<&[u8]>) -> Result<Caller, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let header = std::str::from_utf8(header).map_err(|_| AuthError::NotBearer)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::NotBearer)?
            .trim();
        self.verify(token)
    }

    /// Verifies a token (signature, expiry, not-before, issuer, audience, required claims)
    /// and returns who calls.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| match named_algorithm(token) {
                // `none`, or a name jsonwebtoken does not know: say which.
                Some(alg) if alg != "HS256" => AuthError::Algorithm(cut(&alg)),
                _ => refusal(&e),
            })?;
        let (algorithm, key) = if header.alg == Algorithm::HS256 {
            let key = self
                .secret
                .as_ref()
                .ok_or_else(|| AuthError::Algorithm("HS256".into()))?;
            (Algorithm::HS256, key)
        } else {
            let key = match &header.kid {
                Some(id) => self
                    .public
                    .get(id)
                    .ok_or_else(|| AuthError::UnknownKey(cut(id)))?,
                None => {
                    let mut candidates = self
                        .public
                        .values()
                        .filter(|key| key.algorithm == header.alg);
                    match (candidates.next(), candidates.next()) {
                        (Some(key), None) => key,
                        (Some(_), Some(_)) => return Err(AuthError::NoKeyId),
                        (None, _) => return Err(AuthError::Algorithm(format!("{:?}", header.alg))),
                    }
                }
            };
            if key.algorithm != header.alg {
                return Err(AuthError::Algorithm(format!(
                    "{:?} (key {:?} is for {:?})",
                    header.alg,
                    header.kid.as_deref().map(cut).unwrap_or_default(),
                    key.algorithm
                )));
            }
            (key.algorithm, &key.key)
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = CLOCK_LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.validate_aud = self.audience.is_some();
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = &self.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| refusal(&e))?
            .claims;
        if claims.sub.is_empty() {
            return Err(AuthError::MissingClaim("sub"));
        }
        let caller = Caller::from_claims(&claims);
        if caller.tenant.is_none() && !caller.reads_every_tenant() {
            return Err(AuthError::MissingClaim("tenant"));
        }
        Ok(caller)
    }
}

/// The algorithm a JWK verifies: its `alg` if given, else the one its key type implies; only
/// the algorithms Keyplan accepts.
fn algorithm_of(jwk: &Jwk) -> Result<Algorithm, String> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "symmetric keys do not belong in a JWKS file (use --auth-hs256-secret-file)".into(),
            )
        }
        _ => return Err("unsupported key type or curve".into()),
    };
    match jwk.common.key_algorithm {
        None => Ok(implied),
        Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => Ok(implied),
        Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => Ok(implied),
        Some(KeyAlgorithm::EdDSA) if implied == Algorithm::EdDSA => Ok(implied),
        Some(other) => Err(format!("algorithm {other:?} is not accepted for this key")),
    }
}

/// The `alg` a token's header names, read without trusting anything else in it.
fn named_algorithm(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&json).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

/// The refusal a `jsonwebtoken` error stands for.
fn refusal(error: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::Signature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::Issuer,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "sub" => "sub",
            "iss" => "iss",
            "aud" => "aud",
            _ => "required",
        }),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::Algorithm("named in its header".into())
        }
        ErrorKind::Json(e) => AuthError::Malformed(cut(&format!("claims: {e}"))),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            AuthError::Malformed("not a JWT (three base64url parts)".into())
        }
        other => AuthError::Malformed(cut(&format!("{other:?}"))),
    }
}

/// Text from a token, bounded (a key id or a parser's message may quote the caller's input).
fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Reads a secret file: its bytes without a trailing line break, at least
/// [`MIN_SECRET_BYTES`].
pub fn read_secret(path: &Path) -> Result<Vec<u8>, KeyError> {
    let bytes = std::fs::read(path).map_err(|error| KeyError::Read {
        path: path.display().to_string(),
        error,
    })?;
    let secret = bytes.trim_ascii_end();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::SecretTooShort {
            path: path.display().to_string(),
            len: secret.len(),
        });
    }
    Ok(secret.to_vec())
}

/// The node's current [`Verifier`], replaceable while the node serves: keys rotate (an
/// identity provider publishes a new JWKS) without a restart. Cheap to clone; every clone sees
/// the same verifier.
#[derive(Debug, Clone)]
pub struct SharedVerifier(Arc<RwLock<Arc<Verifier>>>);

impl SharedVerifier {
    /// Starts with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(verifier))))
    }

    /// The verifier in force now (calls already admitted keep the one they were checked with).
    pub fn current(&self) -> Arc<Verifier> {
        match self.0.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `verifier` in force for every call from now on.
    pub fn replace(&self, verifier: Verifier) {
        let mut current = match self.0.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = Arc::new(verifier);
    }
}
