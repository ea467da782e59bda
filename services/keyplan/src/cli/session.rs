//! One CLI invocation's connection: the channel to the node, the tenant and actor it acts as,
//! and how it prints.

use base64::Engine as _;

use super::args::ClientArgs;
use super::output::Output;
use super::CliError;
use crate::tls::{connect, NodeChannel};

/// The connection and identity a subcommand works with.
#[derive(Debug)]
pub struct Session {
    /// The channel (TLS and token as configured).
    pub channel: NodeChannel,
    /// The tenant every request names.
    pub tenant: String,
    /// The actor every write names.
    pub actor: String,
    /// How answers are printed.
    pub out: Output,
}

impl Session {
    /// Works out tenant and actor (options, then the token's claims, then the login name) and
    /// connects.
    pub async fn open(args: &ClientArgs) -> Result<Self, CliError> {
        let claims = args
            .node
            .token
            .as_deref()
            .and_then(unverified_claims)
            .unwrap_or_default();
        let claim = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let tenant = args
            .tenant
            .clone()
            .or_else(|| claim("tenant"))
            .ok_or_else(|| {
                CliError::Usage(
                "which tenant? Pass --tenant (or set KEYPLAN_TENANT), or a --token that names one"
                    .to_owned(),
            )
            })?;
        let actor = args
            .actor
            .clone()
            .or_else(|| claim("sub"))
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "keyplan-cli".to_owned());
        Ok(Self {
            channel: connect(&args.node).await?,
            tenant,
            actor,
            out: Output::new(args.json),
        })
    }
}

/// The claims of a JWT, read without checking its signature: only to fill in defaults (the
/// node verifies the token on every call and refuses an actor or tenant it does not grant).
fn unverified_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn claims_are_read_from_the_token_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"dana.kim","tenant":"acme"}"#);
        let claims = unverified_claims(&format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln")).unwrap();
        assert_eq!(claims["sub"], "dana.kim");
        assert_eq!(claims["tenant"], "acme");
        assert!(unverified_claims("not-a-jwt").is_none());
        assert!(unverified_claims("a.!!!.c").is_none());
    }
}
