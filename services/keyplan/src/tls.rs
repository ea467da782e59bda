//! TLS on gRPC (rustls, through tonic), both sides: the node's listener (`serve --tls-cert
//! --tls-key [--tls-client-ca]`) and the channel the CLI's client subcommands open
//! (`--tls-ca`, `--tls-client-cert`, `--tls-client-key`), with the bearer token those send.
//!
//! Every PEM file is read and parsed here, when the node or the command starts, so that a
//! missing or unreadable file is a configuration error naming the file, not a handshake that
//! fails later for every client with a message that names nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};

use crate::config::{NodeArgs, TlsArgs};

/// How long a client may take to complete the TLS handshake: a connection that stalls in it
/// would otherwise hold a handshake slot of the listener for as long as it likes.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS configuration (server or client) cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// Options that only work together were given alone.
    #[error("{0}")]
    Incomplete(&'static str),
    /// A file could not be read.
    #[error("cannot read {option} {}: {source}", path.display())]
    Read {
        /// The option that named the file.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file holds no usable PEM of the expected kind.
    #[error("{option} {}: {what}", path.display())]
    Parse {
        /// The option that named the file.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// rustls refused the certificates and keys together (e.g. a key that does not belong to
    /// the certificate).
    #[error("{files}: {reason}")]
    Rejected {
        /// The files involved.
        files: String,
        /// rustls's reason.
        reason: String,
    },
}

/// Why the CLI cannot reach a node.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The TLS options are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// `--server` is not a URL.
    #[error("--server {server:?} is not a valid address: {reason}")]
    Address {
        /// What was given.
        server: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The token cannot be sent as an HTTP header (the token itself is not repeated).
    #[error("--token (KEYPLAN_TOKEN) is not a valid header value: it must be visible ASCII")]
    Token,
    /// Connecting failed (refused, TLS handshake failed, ...).
    #[error("cannot reach {server}: {reason}")]
    Unreachable {
        /// The address.
        server: String,
        /// Why, with the causes tonic nests.
        reason: String,
    },
}

/// The listener's TLS configuration, `None` without `--tls-cert`. Checked here in full (the
/// files read and parsed, and rustls given the lot), so that `serve` fails at start with a
/// message naming the file rather than at the first handshake.
pub fn server_config(args: &TlsArgs) -> Result<Option<ServerTlsConfig>, TlsError> {
    let (cert_path, key_path) = match (&args.tls_cert, &args.tls_key) {
        (None, None) => {
            return match args.tls_client_ca {
                Some(_) => Err(TlsError::Incomplete(
                    "--tls-client-ca needs --tls-cert and --tls-key: client certificates are \
                     checked only over TLS",
                )),
                None => Ok(None),
            };
        }
        (Some(cert), Some(key)) => (cert, key),
        _ => {
            return Err(TlsError::Incomplete(
                "--tls-cert and --tls-key go together: give both (TLS) or neither (plain text)",
            ))
        }
    };
    let cert = read_certificates("--tls-cert", cert_path)?;
    let key = read_key("--tls-key", key_path)?;
    let mut config = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .timeout(HANDSHAKE_TIMEOUT);
    let mut files = format!(
        "--tls-cert {} with --tls-key {}",
        cert_path.display(),
        key_path.display()
    );
    if let Some(ca_path) = &args.tls_client_ca {
        let ca = read_certificates("--tls-client-ca", ca_path)?;
        config = config.client_ca_root(Certificate::from_pem(ca));
        files.push_str(&format!(" and --tls-client-ca {}", ca_path.display()));
    }
    // tonic builds the rustls configuration here: a key that does not match the certificate,
    // or a CA rustls cannot use, is refused now.
    Server::builder()
        .tls_config(config.clone())
        .map_err(|e| TlsError::Rejected {
            files,
            reason: causes(&e),
        })?;
    Ok(Some(config))
}

/// `builder` serving over TLS when `config` is given (as is otherwise). tonic applies TLS to
/// every connection of any incoming stream (its `ServerIoStream` wraps the stream given to
/// `serve_with_incoming_shutdown` and runs the handshakes concurrently), so the listener's
/// own sockets, with `TCP_NODELAY`, carry the TLS.
pub fn serve_with(
    builder: Server,
    config: Option<ServerTlsConfig>,
) -> Result<Server, tonic::transport::Error> {
    match config {
        Some(config) => builder.tls_config(config),
        None => Ok(builder),
    }
}

/// Reads a PEM file that must hold at least one certificate; its bytes.
fn read_certificates(option: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = read(option, path)?;
    let parsed = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Parse {
            option,
            path: path.to_owned(),
            what: format!("not valid PEM: {e}"),
        })?;
    if parsed.is_empty() {
        return Err(TlsError::Parse {
            option,
            path: path.to_owned(),
            what: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(pem)
}

/// Reads a PEM file that must hold a private key; its bytes.
fn read_key(option: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = read(option, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Parse {
        option,
        path: path.to_owned(),
        what: format!("holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })?;
    Ok(pem)
}

fn read(option: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        option,
        path: path.to_owned(),
        source,
    })
}

/// An error with its causes, `: `-separated (tonic's transport errors say little at the top).
fn causes(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Sends `authorization: Bearer <token>` on every call, if a token was given.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

/// Written by hand so that the token is never printed.
impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "BearerToken(<redacted>)",
            None => "BearerToken(none)",
        })
    }
}

impl BearerToken {
    /// The header value for `token` (marked sensitive: HTTP/2 never indexes it, and its
    /// `Debug` hides it).
    pub fn new(token: Option<&str>) -> Result<Self, ConnectError> {
        let value = token
            .map(|token| {
                let mut value = MetadataValue::try_from(format!("Bearer {}", token.trim()))
                    .map_err(|_| ConnectError::Token)?;
                value.set_sensitive(true);
                Ok::<_, ConnectError>(value)
            })
            .transpose()?;
        Ok(Self(value))
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The channel a client subcommand talks over: TLS as configured, the token on every call.
pub type NodeChannel = InterceptedService<Channel, BearerToken>;

/// Connects to the node `args` names. TLS is used when the address is `https://` or a CA is
/// given (an `http://` address is then taken as `https://`); the node's certificate must
/// chain to `--tls-ca`, or to the system's roots without it, and name the address's host.
pub async fn connect(args: &NodeArgs) -> Result<NodeChannel, ConnectError> {
    let token = BearerToken::new(args.token.as_deref())?;
    let client_identity = match (&args.tls_client_cert, &args.tls_client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(Identity::from_pem(
            read_certificates("--tls-client-cert", cert)?,
            read_key("--tls-client-key", key)?,
        )),
        _ => {
            return Err(TlsError::Incomplete(
                "--tls-client-cert and --tls-client-key go together: give both or neither",
            )
            .into())
        }
    };
    let tls_wanted = args.tls_ca.is_some() || client_identity.is_some();
    let address = address(&args.server, tls_wanted);
    let invalid = |reason: String| ConnectError::Address {
        server: args.server.clone(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(address.clone()).map_err(|e| invalid(causes(&e)))?;
    if address.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        tls = match &args.tls_ca {
            Some(ca) => {
                tls.ca_certificate(Certificate::from_pem(read_certificates("--tls-ca", ca)?))
            }
            None => tls.with_native_roots(),
        };
        if let Some(identity) = client_identity {
            tls = tls.identity(identity);
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| invalid(causes(&e)))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| ConnectError::Unreachable {
            server: address,
            reason: causes(&e),
        })?;
    Ok(InterceptedService::new(channel, token))
}

/// `server` as a URL: with a scheme as given (`http://` turned into `https://` when TLS is
/// wanted), or `http://`/`https://` prepended to a bare `host:port`.
fn address(server: &str, tls_wanted: bool) -> String {
    let scheme = if tls_wanted { "https://" } else { "http://" };
    if let Some(rest) = server.strip_prefix("http://") {
        format!("{scheme}{rest}")
    } else if server.contains("://") {
        server.to_owned()
    } else {
        format!("{scheme}{server}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_the_scheme_tls_needs() {
        assert_eq!(address("http://a:1", false), "http://a:1");
        assert_eq!(address("http://a:1", true), "https://a:1");
        assert_eq!(address("https://a:1", false), "https://a:1");
        assert_eq!(address("a:1", false), "http://a:1");
        assert_eq!(address("a:1", true), "https://a:1");
    }

    #[test]
    fn the_token_is_sent_as_a_bearer_header_and_never_printed() {
        let mut token = BearerToken::new(Some("s3cret.jwt")).expect("a valid token");
        assert!(!format!("{token:?}").contains("s3cret"));
        let request = token
            .call(tonic::Request::new(()))
            .expect("the interceptor never refuses");
        let header = request.metadata().get("authorization");
        assert_eq!(
            header.and_then(|v| v.to_str().ok()),
            Some("Bearer s3cret.jwt")
        );
        assert!(header.is_some_and(MetadataValue::is_sensitive));
        assert!(matches!(
            BearerToken::new(Some("bad\ntoken")),
            Err(ConnectError::Token)
        ));
    }

    #[test]
    fn cert_and_key_go_together() {
        let args = TlsArgs {
            tls_cert: Some("cert.pem".into()),
            tls_key: None,
            tls_client_ca: None,
        };
        assert!(matches!(server_config(&args), Err(TlsError::Incomplete(_))));
        let none = TlsArgs {
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        };
        assert!(matches!(server_config(&none), Ok(None)));
    }

    #[test]
    fn an_unreadable_or_unparsable_file_is_named() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let not_pem = dir.path().join("not-pem.txt");
        std::fs::write(&not_pem, "hello").expect("written");
        let args = TlsArgs {
            tls_cert: Some(not_pem.clone()),
            tls_key: Some(dir.path().join("missing-key.pem")),
            tls_client_ca: None,
        };
        let message = server_config(&args).err().map(|e| e.to_string());
        let message = message.unwrap_or_default();
        assert!(message.contains("--tls-cert"), "{message}");
        assert!(message.contains("not-pem.txt"), "{message}");
        assert!(message.contains("no PEM certificate"), "{message}");
    }
}
