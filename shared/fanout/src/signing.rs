//! Signed messages: only a holder of the key can produce a message a projections node applies.
//!
//! The NATS permissions in `deploy/nats/` keep others from publishing on the stream's subjects;
//! where that cannot be relied on, the relay signs each message with a key shared with the
//! projections nodes (`--nats-signing-key-file`): the header [`SIGNATURE`] carries the hex
//! HMAC-SHA256 of the subject and the payload. A projections node with the key applies only
//! messages whose signature verifies, and skips and reports the rest. The hash chain alone
//! would not do: anyone who reads the stream can compute a well-formed next event.

use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header: the message's signature.
pub const SIGNATURE: &str = "Keyplan-Signature";

/// Fewest bytes a key file must hold.
pub const MIN_KEY_BYTES: usize = 32;

/// A signing key (never printed).
#[derive(Clone)]
pub struct SigningKey(Arc<[u8]>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("signing key file {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The key is too short.
    #[error("signing key file {path} holds {len} bytes; a key needs at least {MIN_KEY_BYTES} (e.g. `head -c 32 /dev/urandom | base64 > FILE`)")]
    TooShort {
        /// The file.
        path: String,
        /// Its length after trimming.
        len: usize,
    },
}

impl SigningKey {
    /// Reads a key from a file (its bytes, without a trailing line break).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let bytes = std::fs::read(path).map_err(|error| KeyError::Read {
            path: path.display().to_string(),
            error,
        })?;
        let key = bytes.trim_ascii_end();
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                path: path.display().to_string(),
                len: key.len(),
            });
        }
        Ok(Self(Arc::from(key)))
    }

    fn mac(&self, subject: &str, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(subject.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        mac
    }

    /// The signature header's value for a message.
    pub fn sign(&self, subject: &str, payload: &[u8]) -> String {
        hex::encode(self.mac(subject, payload).finalize().into_bytes())
    }

    /// Whether `signature` (the header's value, if any) signs the message (in constant time).
    pub fn verify(&self, subject: &str, payload: &[u8], signature: Option<&str>) -> bool {
        let Some(Ok(bytes)) = signature.map(hex::decode) else {
            return false;
        };
        self.mac(subject, payload).verify_slice(&bytes).is_ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_subject_payload_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        let key = SigningKey::from_file(&path).unwrap();
        let signature = key.sign("keyplan.acme.globex.InteractionLogged", b"payload");
        assert!(key.verify(
            "keyplan.acme.globex.InteractionLogged",
            b"payload",
            Some(&signature)
        ));
        assert!(!key.verify(
            "keyplan.acme.globex.InteractionLogged",
            b"payloaD",
            Some(&signature)
        ));
        assert!(!key.verify(
            "keyplan.acme.other.InteractionLogged",
            b"payload",
            Some(&signature)
        ));
        assert!(!key.verify("keyplan.acme.globex.InteractionLogged", b"payload", None));
        assert!(!key.verify(
            "keyplan.acme.globex.InteractionLogged",
            b"payload",
            Some("zz")
        ));
        std::fs::write(&path, "0123456789abcdef0123456789abcdeX\n").unwrap();
        let other = SigningKey::from_file(&path).unwrap();
        assert!(!other.verify(
            "keyplan.acme.globex.InteractionLogged",
            b"payload",
            Some(&signature)
        ));
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(
            SigningKey::from_file(&path),
            Err(KeyError::TooShort { len: 5, .. })
        ));
        assert!(!format!("{key:?}").contains("0123"));
    }
}
