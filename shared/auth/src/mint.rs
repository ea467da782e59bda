//! Minting HS256 tokens with the node's shared secret: for development, demos and tests
//! (`keyplan token mint`). Production deployments take tokens from their identity provider
//! and give the node its JWKS instead.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use thiserror::Error;

use crate::claims::{Audience, Claims, Role};
use crate::verify::{read_secret, KeyError};

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Who the token is for.
    pub subject: String,
    /// The tenant it acts for (may be absent only for an `admin` token).
    pub tenant: Option<String>,
    /// Its roles.
    pub roles: Vec<Role>,
    /// How long it is valid from now.
    pub ttl: Duration,
    /// `iss`, if the node checks one.
    pub issuer: Option<String>,
    /// `aud`, if the node checks one.
    pub audience: Option<String>,
}

/// Why a token could not be minted.
#[derive(Debug, Error)]
pub enum MintError {
    /// The secret file is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The request is incomplete.
    #[error("{0}")]
    Invalid(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Mints an HS256 token signed with the secret in `secret_file`.
pub fn mint_hs256(secret_file: &Path, request: &TokenRequest) -> Result<String, MintError> {
    let secret = read_secret(secret_file)?;
    mint_hs256_with(&secret, request, SystemTime::now())
}

/// Mints an HS256 token signed with `secret`, as of `now`.
pub fn mint_hs256_with(
    secret: &[u8],
    request: &TokenRequest,
    now: SystemTime,
) -> Result<String, MintError> {
    let claims = claims(request, now)?;
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}

/// The claims a token for `request` carries, issued at `now`.
pub fn claims(request: &TokenRequest, now: SystemTime) -> Result<Claims, MintError> {
    if request.subject.is_empty() {
        return Err(MintError::Invalid(
            "the subject (--sub) must not be empty".into(),
        ));
    }
    if request.roles.is_empty() {
        return Err(MintError::Invalid("give at least one role (--role)".into()));
    }
    if request.tenant.as_deref().unwrap_or_default().is_empty()
        && !request.roles.contains(&Role::Admin)
    {
        return Err(MintError::Invalid(
            "give the tenant the token acts for (--tenant); only an admin token may have none"
                .into(),
        ));
    }
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| MintError::Invalid("the clock is before 1970".into()))?
        .as_secs();
    Ok(Claims {
        sub: request.subject.clone(),
        tenant: request.tenant.clone().filter(|t| !t.is_empty()),
        roles: request
            .roles
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        exp: iat.saturating_add(request.ttl.as_secs()),
        iat: Some(iat),
        nbf: None,
        iss: request.issuer.clone(),
        aud: request.audience.clone().map(Audience::One),
    })
}
