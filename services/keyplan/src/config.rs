//! Command-line and environment configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keyplan_auth::mint::TokenRequest;
use keyplan_auth::{KeyError as AuthKeyError, Role as TokenRole, Verifier};
use keyplan_fanout::signing::{KeyError, SigningKey};
use keyplan_fanout::{NatsConfig, StreamSettings};

/// Keyplan: an event-sourced collaboration backend for key account management.
#[derive(Debug, Parser)]
#[command(name = "keyplan", version, about)]
pub struct Cli {
    /// How log lines are written to stderr: `text` (for people; colours only on a terminal)
    /// or `json` (one object per line, for a log collector).
    #[arg(
        long,
        env = "KEYPLAN_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true,
        help_heading = "Logging"
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: timestamp, level, target, message, fields and the spans.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a Keyplan node (embedded by default: sled in a local data directory, no other server).
    Serve(Box<ServeArgs>),
    /// Operate a running node's read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Operate a sharded cluster (`--shard-map`).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Ask a running node's health service (`grpc.health.v1`), over TLS and with a token as
    /// other commands do: exit status 0 when the part asked about serves, 1 otherwise. For
    /// probes that cannot speak gRPC themselves (Kubernetes exec probes under TLS, compose).
    Health(HealthArgs),
    /// Development tokens (signed with the HS256 secret a node is given with
    /// `--auth-hs256-secret-file`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Rebuild a log the node refuses to open (damaged, or shorter than what it acknowledged)
    /// from its readable part and JetStream, verifying every hash and chain link; the node
    /// must be stopped. The damaged directory is kept beside the rebuilt one.
    Recover(Box<RecoverArgs>),
    /// Key account management against a running node (see `keyplan account --help`, ...).
    #[command(flatten)]
    Kam(Box<crate::cli::KamCommand>),
}

/// `keyplan health ...`
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The part to ask about: `""` (the node), `keyplan.relay`, `keyplan.nats`, or a service
    /// such as `keyplan.v1.CommandService` (each read model's service follows its projection).
    #[arg(long, default_value = "")]
    pub service: String,

    /// Give up after this many seconds without an answer (exit status 1).
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,

    #[command(flatten)]
    pub node: NodeArgs,
}

/// `keyplan recover ...`
#[derive(Debug, Clone, Args)]
pub struct RecoverArgs {
    /// The stopped node's data directory.
    #[arg(long, env = "KEYPLAN_DATA_DIR", default_value = "./keyplan-data")]
    pub data_dir: PathBuf,

    /// Compress the rebuilt log (zstd level 1), as `serve --log-compression` does for a new one.
    #[arg(long, env = "KEYPLAN_LOG_COMPRESSION", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub log_compression: bool,

    #[command(flatten)]
    pub nats: NatsArgs,
}

/// `keyplan token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a signed HS256 token, for demos and tests. Production deployments use tokens from
    /// their identity provider and give the node its JWKS (`--auth-jwks-file`).
    Mint(MintArgs),
}

/// `keyplan token mint ...`
#[derive(Debug, Clone, Args)]
pub struct MintArgs {
    /// The HS256 secret file the node verifies with (`--auth-hs256-secret-file`).
    #[arg(long, env = "KEYPLAN_AUTH_HS256_SECRET_FILE")]
    pub secret_file: PathBuf,
    /// The tenant the token acts for (may be omitted only for an admin token).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Who the token is for: recorded as the actor of every event written with it.
    #[arg(long)]
    pub sub: String,
    /// A role (repeat for several): rep, manager, auditor, service, admin.
    #[arg(long = "role", required = true, value_parser = parse_role)]
    pub roles: Vec<TokenRole>,
    /// How long the token is valid, e.g. 8h, 30m, 7d.
    #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// `iss` claim (when the node checks `--auth-issuer`).
    #[arg(long)]
    pub issuer: Option<String>,
    /// `aud` claim (when the node checks `--auth-audience`).
    #[arg(long)]
    pub audience: Option<String>,
}

impl MintArgs {
    /// What the token is to say.
    pub fn request(&self) -> TokenRequest {
        TokenRequest {
            subject: self.sub.clone(),
            tenant: self.tenant.clone(),
            roles: self.roles.clone(),
            ttl: self.ttl,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
        }
    }
}

fn parse_role(name: &str) -> Result<TokenRole, String> {
    TokenRole::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = TokenRole::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role {name:?}; one of: {}", names.join(", "))
    })
}

/// `keyplan cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Ask every node of the shard map for its status: each shard's log head and relay lag,
    /// and how far each replica has followed its shard. Exits with status 1 if a node does not
    /// answer, is stopped, or runs another shard or another map than the file says.
    Status {
        /// The cluster's shard map (the file the nodes were started with).
        #[arg(long, env = "KEYPLAN_SHARD_MAP")]
        shard_map: PathBuf,
        /// Print JSON, for scripts.
        #[arg(long)]
        json: bool,
        /// `--server` is not used: every node of the map is asked.
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// `keyplan projections ...`
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Show the node's log head, its relay and each projection's position; a stopped part
    /// says so, and why.
    Status {
        /// Print the node's status as JSON (the API's proto3 JSON), for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Rebuild read models from position 1 while the current ones keep serving; shows progress
    /// (bars on a terminal, a plain line per projection every 2 s otherwise).
    Rebuild {
        /// Projections to rebuild (default: all of the node's projections).
        names: Vec<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Give a new projections node the read models of a running one (`--server`), taken at
    /// one instant while it goes on serving: started on the directory, the new node reads only
    /// the stream's tail instead of replaying it. Copies every shard the running node follows,
    /// laid out as it keeps them (start the new node with the same `--shard`), or one.
    Seed {
        /// The new node's data directory; it must not hold read models yet.
        #[arg(long)]
        data_dir: PathBuf,
        /// Only this shard's read models, for a node that follows that shard alone
        /// (`--shard ID`).
        #[arg(long)]
        shard: Option<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// Which running node to talk to, and how (TLS, token).
#[derive(Clone, Args)]
pub struct NodeArgs {
    /// The node's gRPC address, `host:port` or a URL (`https://...` speaks TLS, as does any
    /// address with `--tls-ca`).
    #[arg(
        long,
        env = "KEYPLAN_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true,
        help_heading = "Connection"
    )]
    pub server: String,

    /// Bearer token sent as `authorization: Bearer <token>` on every call (never printed).
    #[arg(
        long,
        env = "KEYPLAN_TOKEN",
        hide_env_values = true,
        global = true,
        help_heading = "Connection"
    )]
    pub token: Option<String>,

    /// CA certificate (PEM) that the node's certificate must chain to; speaks TLS. Without
    /// it, an `https://` address is checked against the system's trusted roots.
    #[arg(
        long,
        env = "KEYPLAN_TLS_CA",
        global = true,
        help_heading = "Connection"
    )]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) to present, for a node that requires one (with
    /// `--tls-client-key`).
    #[arg(
        long,
        env = "KEYPLAN_TLS_CLIENT_CERT",
        global = true,
        help_heading = "Connection"
    )]
    pub tls_client_cert: Option<PathBuf>,

    /// Private key (PEM) of `--tls-client-cert`.
    #[arg(
        long,
        env = "KEYPLAN_TLS_CLIENT_KEY",
        global = true,
        help_heading = "Connection"
    )]
    pub tls_client_key: Option<PathBuf>,
}

/// Written by hand so that the token never reaches a log or an error message.
impl std::fmt::Debug for NodeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeArgs")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .field("tls_client_cert", &self.tls_client_cert)
            .field("tls_client_key", &self.tls_client_key)
            .finish()
    }
}

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Everything in one process: commands, raw reads and read models over the local log, and
    /// (with `--nats-url`) the relay to JetStream.
    All,
    /// Commands and raw reads over the local log, and the relay to JetStream.
    Ingest,
    /// Read models fed from JetStream (no log of its own); several may run side by side.
    Projections,
}

impl Role {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Ingest => "ingest",
            Role::Projections => "projections",
        }
    }
}

/// When a command is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AckMode {
    /// Once its events are durable on local disk (fdatasync).
    Local,
    /// Once JetStream has acknowledged them too (requires `--nats-url`).
    Replicated,
}

/// Options of `keyplan serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory holding the event store and projections (created if missing).
    #[arg(long, env = "KEYPLAN_DATA_DIR", default_value = "./keyplan-data")]
    pub data_dir: PathBuf,

    /// Address to serve gRPC on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "KEYPLAN_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Serve Prometheus metrics at `GET /metrics` over plain HTTP on this address, a listener
    /// of its own (port 0 picks a free port; the chosen address is printed). Off by default.
    #[arg(long, env = "KEYPLAN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// What this node does.
    #[arg(long, env = "KEYPLAN_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,

    #[command(flatten)]
    pub auth: AuthArgs,

    /// Block cache, in MiB, of the read models' database (fjall). Timeline pages read their
    /// entries through it, and accounts that left the read models' memory are read back
    /// through it: a small one makes those queries slower. A projections node that follows
    /// several shards shares it out among their databases.
    #[arg(long, env = "KEYPLAN_CACHE_MB", default_value_t = 64)]
    pub cache_mb: u64,

    /// Page cache, in MiB, of the log (sled), counted as sled counts it: by a page's size in
    /// the log file, compressed, so the pages take about three times this in memory. Appends
    /// go from the writer's batch and catch-ups read each record once, so the log's cache
    /// mostly holds what the start's whole-log read left behind. At least 1: sled refuses a
    /// cache too small to split between its shards.
    #[arg(
        long,
        env = "KEYPLAN_LOG_CACHE_MB",
        default_value_t = 8,
        value_parser = clap::value_parser!(u64).range(1..=1 << 20)
    )]
    pub log_cache_mb: u64,

    /// Compress the log (zstd level 1) when this node creates it; an existing log keeps the
    /// setting it was created with. Much less disk for a small part of the peak batched
    /// append rate (measured by keyplan-bench: BENCHMARKS.md). `true`/`false` (or
    /// `yes`/`no`, `on`/`off`, `1`/`0`).
    #[arg(long, env = "KEYPLAN_LOG_COMPRESSION", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub log_compression: bool,

    /// About how much memory, in MiB, the compliance read model and the activity read model
    /// each keep of accounts' histories. Beyond it, the least recently used accounts leave
    /// memory and are read back from the read models' database when a query or an event
    /// needs them, so memory follows the accounts in use, not the events ever projected. A
    /// projections node that follows several shards shares it out among them.
    #[arg(long, env = "KEYPLAN_READ_MODEL_MEMORY_MB", default_value_t = 64)]
    pub read_model_memory_mb: usize,

    /// Number of account states kept in memory for command validation.
    #[arg(long, env = "KEYPLAN_CACHED_ACCOUNTS", default_value_t = 1024)]
    pub cached_accounts: usize,

    /// About how much memory, in MiB, the cached account states may hold together: a state
    /// keeps 16 bytes per interaction its account ever logged, so the least recently used
    /// states leave first once they pass it, however few accounts that is.
    #[arg(long, env = "KEYPLAN_ACCOUNT_CACHE_MB", default_value_t = 64)]
    pub account_cache_mb: usize,

    /// When commands are acknowledged.
    #[arg(long, env = "KEYPLAN_ACK", value_enum, default_value_t = AckMode::Local)]
    pub ack: AckMode,

    /// With `--ack replicated`: how long to wait for JetStream, in milliseconds.
    #[arg(long, env = "KEYPLAN_ACK_TIMEOUT_MS", default_value_t = 5000)]
    pub ack_timeout_ms: u64,

    #[command(flatten)]
    pub nats: NatsArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub web: crate::web::WebArgs,

    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

impl ServeArgs {
    /// `--read-model-memory-mb` in bytes.
    pub fn read_model_memory_bytes(&self) -> usize {
        self.read_model_memory_mb.saturating_mul(1 << 20)
    }
}

/// TLS on the gRPC listener (rustls). Without `--tls-cert` the node speaks plain HTTP/2,
/// which is for loopback only: tokens and events would cross the network in clear text.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Server certificate chain (PEM, leaf first): serve gRPC over TLS (with `--tls-key`).
    #[arg(long, env = "KEYPLAN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long, env = "KEYPLAN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificate(s) (PEM) that client certificates must chain to: with it, every client
    /// must present one (mutual TLS, e.g. for services), and the handshake fails otherwise.
    #[arg(long, env = "KEYPLAN_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Limits that keep one client from taking a shared node's memory, connections or handlers.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest gRPC message, in bytes, in either direction, on every service. A bigger
    /// request is refused (OUT_OF_RANGE) before it is decoded, so it costs no more memory
    /// than this; a bigger answer is not sent (the call ends OUT_OF_RANGE) rather than cut.
    /// 4 MiB is gRPC's usual default, and what tonic and grpc-go clients accept by default:
    /// a command batch or a page of 1000 typical events fits; a page of many large events
    /// (plan texts take up to 20 000 characters) may not, and the client asks for fewer.
    #[arg(long, env = "KEYPLAN_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Most concurrent calls (HTTP/2 streams) on one client connection; a client that opens
    /// more waits until one ends. Bounds what one connection can hold open (each `Subscribe`
    /// or `Watch` is one stream), while a client that needs more opens more connections.
    #[arg(long, env = "KEYPLAN_MAX_CONCURRENT_STREAMS", default_value_t = 128)]
    pub max_concurrent_streams: u32,

    /// Longest time, in seconds, a call may take until its answer starts: a unary call that
    /// has not answered by then ends CANCELLED ("Timeout expired"), and a client's shorter
    /// `grpc-timeout` wins. Server streams (`Subscribe`, `Watch`, `WatchTimeline`,
    /// `ExportAccount`, `RebuildProjections`) are not cut once they have started. 0 = no
    /// limit.
    #[arg(long, env = "KEYPLAN_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
}

impl LimitArgs {
    /// The request timeout, if any.
    pub fn request_timeout(&self) -> Option<Duration> {
        (self.request_timeout_secs > 0).then(|| Duration::from_secs(self.request_timeout_secs))
    }
}

/// Authentication of gRPC calls (see README, "Security"). Without any key, authentication is
/// off: allowed on a loopback address only, unless `--insecure-no-auth`.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// File holding the HS256 secret (at least 32 bytes) that bearer tokens may be signed
    /// with (`keyplan token mint` signs with it).
    #[arg(long, env = "KEYPLAN_AUTH_HS256_SECRET_FILE")]
    pub auth_hs256_secret_file: Option<PathBuf>,

    /// JWKS file with the identity provider's public keys (RS256, ES256, EdDSA) that bearer
    /// tokens may be signed with.
    #[arg(long, env = "KEYPLAN_AUTH_JWKS_FILE")]
    pub auth_jwks_file: Option<PathBuf>,

    /// Required `iss` of tokens.
    #[arg(long, env = "KEYPLAN_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,

    /// Required `aud` of tokens.
    #[arg(long, env = "KEYPLAN_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,

    /// Serve without authentication on an address other than loopback: every caller can then
    /// read and write every tenant's data. Never in production.
    #[arg(long, env = "KEYPLAN_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

impl AuthArgs {
    /// The token verifier, or `None` when no key is configured (authentication off).
    pub fn verifier(&self) -> Result<Option<Verifier>, AuthKeyError> {
        if self.auth_hs256_secret_file.is_none() && self.auth_jwks_file.is_none() {
            return Ok(None);
        }
        let mut verifier = Verifier::new()
            .with_issuer(self.auth_issuer.clone())
            .with_audience(self.auth_audience.clone());
        if let Some(path) = &self.auth_hs256_secret_file {
            verifier = verifier.with_hs256_secret_file(path)?;
        }
        if let Some(path) = &self.auth_jwks_file {
            verifier = verifier.with_jwks_file(path)?;
        }
        Ok(Some(verifier))
    }
}

/// NATS options (all optional: without `--nats-url` Keyplan runs fully embedded).
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URLs, comma-separated (e.g. `nats://10.0.0.1:4222,nats://10.0.0.2:4222`).
    #[arg(long, env = "KEYPLAN_NATS_URL")]
    pub nats_url: Option<String>,

    /// NATS credentials file (JWT + NKey).
    #[arg(long, env = "KEYPLAN_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,

    /// NATS user (with `--nats-password`).
    #[arg(long, env = "KEYPLAN_NATS_USER")]
    pub nats_user: Option<String>,

    /// NATS password.
    #[arg(long, env = "KEYPLAN_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,

    /// NATS token.
    #[arg(long, env = "KEYPLAN_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,

    /// Require TLS to NATS.
    #[arg(long, env = "KEYPLAN_NATS_TLS")]
    pub nats_tls: bool,

    /// Extra CA certificate (PEM) to trust for NATS TLS.
    #[arg(long, env = "KEYPLAN_NATS_CA")]
    pub nats_ca: Option<PathBuf>,

    /// Client certificate (PEM) for NATS mutual TLS (with `--nats-client-key`).
    #[arg(long, env = "KEYPLAN_NATS_CLIENT_CERT")]
    pub nats_client_cert: Option<PathBuf>,

    /// Client key (PEM) for NATS mutual TLS.
    #[arg(long, env = "KEYPLAN_NATS_CLIENT_KEY")]
    pub nats_client_key: Option<PathBuf>,

    /// Longest pause between reconnect attempts, in milliseconds.
    #[arg(long, env = "KEYPLAN_NATS_MAX_RECONNECT_MS", default_value_t = 2000)]
    pub nats_max_reconnect_ms: u64,

    /// JetStream stream name.
    #[arg(long, env = "KEYPLAN_NATS_STREAM", default_value = "KEYPLAN")]
    pub nats_stream: String,

    /// First subject token (events go to `<prefix>.<tenant>.<account>.<event type>`).
    #[arg(long, env = "KEYPLAN_NATS_SUBJECT_PREFIX", default_value = "keyplan")]
    pub nats_subject_prefix: String,

    /// JetStream max age of messages, in seconds (0 = keep forever).
    #[arg(long, env = "KEYPLAN_NATS_MAX_AGE_SECS", default_value_t = 0)]
    pub nats_max_age_secs: u64,

    /// JetStream replicas.
    #[arg(long, env = "KEYPLAN_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,

    /// File holding the key (at least 32 bytes) that signs every published message (ingest)
    /// and that every consumed message must be signed with (projections): give the same file
    /// to both, and a message the log did not produce is never applied, even where others can
    /// publish on the stream's subjects.
    #[arg(long, env = "KEYPLAN_NATS_SIGNING_KEY_FILE")]
    pub nats_signing_key_file: Option<PathBuf>,

    /// JetStream duplicate window, in seconds.
    #[arg(
        long,
        env = "KEYPLAN_NATS_DUPLICATE_WINDOW_SECS",
        default_value_t = 120
    )]
    pub nats_duplicate_window_secs: u64,
}

impl NatsArgs {
    /// The connection settings, if NATS is configured (reading the signing key, if one is
    /// given).
    pub fn to_config(&self) -> Result<Option<NatsConfig>, KeyError> {
        let Some(urls) = self.nats_url.as_deref() else {
            return Ok(None);
        };
        let signing_key = self
            .nats_signing_key_file
            .as_deref()
            .map(SigningKey::from_file)
            .transpose()?;
        let mut config = NatsConfig::new(urls);
        config.credentials_file = self.nats_creds.clone();
        config.user = self.nats_user.clone();
        config.password = self.nats_password.clone();
        config.token = self.nats_token.clone();
        config.tls_required = self.nats_tls;
        config.tls_ca_file = self.nats_ca.clone();
        config.tls_client_cert = self
            .nats_client_cert
            .clone()
            .zip(self.nats_client_key.clone());
        config.max_reconnect_delay = Duration::from_millis(self.nats_max_reconnect_ms);
        config.stream = StreamSettings {
            name: self.nats_stream.clone(),
            subject_prefix: self.nats_subject_prefix.clone(),
            max_age: Duration::from_secs(self.nats_max_age_secs),
            max_bytes: -1,
            replicas: self.nats_replicas,
            duplicate_window: Duration::from_secs(self.nats_duplicate_window_secs),
            signing_key,
        };
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::{Cli, Command};

    fn log_cache_mb(args: &[&str]) -> Result<u64, clap::Error> {
        let cli = Cli::try_parse_from(["keyplan", "serve"].iter().chain(args))?;
        let Command::Serve(serve) = cli.command else {
            panic!("not serve")
        };
        Ok(serve.log_cache_mb)
    }

    #[test]
    fn the_log_cache_is_at_least_one_mebibyte() {
        assert_eq!(log_cache_mb(&[]).unwrap(), 8);
        assert_eq!(log_cache_mb(&["--log-cache-mb", "16"]).unwrap(), 16);
        let refused = log_cache_mb(&["--log-cache-mb", "0"]).unwrap_err();
        assert!(refused.to_string().contains("--log-cache-mb"), "{refused}");
    }
}
