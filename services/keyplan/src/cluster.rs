//! This node's place in a sharded cluster (`--shard-map`, `--shard`): checked at start, so
//! that a node whose configuration disagrees with the map never serves, and turned into the
//! routing layer (`keyplan_cluster::route`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use keyplan_cluster::{RouteLayer, Shard, ShardMap};
use keyplan_fanout::{NatsConfig, StreamSettings};
use keyplan_store::EventStore;

use crate::config::Role;

/// Options of a node in a sharded cluster.
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// The shard map (TOML) that every node of the cluster is started with: its shards (id,
    /// ingest address, replicas, JetStream stream, subject prefix) and explicit tenant
    /// assignments; other tenants go to a shard by rendezvous hashing. With it, the node
    /// serves its shard's tenants and forwards every other call to the tenant's shard.
    #[arg(
        long,
        env = "KEYPLAN_SHARD_MAP",
        requires = "shard",
        help_heading = "Cluster"
    )]
    pub shard_map: Option<PathBuf>,

    /// This node's shard in `--shard-map`: an ingest (or all) node holds its log, a
    /// projections node follows its stream. A projections node may follow several, each
    /// with its own read models (`s1,s2`, or `all` for every shard of the map), and serves
    /// all their tenants; the map lists it as a replica of each.
    #[arg(
        long,
        env = "KEYPLAN_SHARD",
        requires = "shard_map",
        help_heading = "Cluster"
    )]
    pub shard: Option<String>,

    /// CA certificate (PEM) that other nodes' certificates chain to, for `https://`
    /// addresses in the shard map; without it, the system's trusted roots.
    #[arg(long, env = "KEYPLAN_SHARD_TLS_CA", help_heading = "Cluster")]
    pub shard_tls_ca: Option<PathBuf>,
}

/// This node's shards and the map it belongs to.
#[derive(Debug, Clone)]
pub struct Membership {
    pub map: Arc<ShardMap>,
    /// The shards this node serves, in the map's order: one, except on a projections node
    /// that follows several.
    pub shards: Vec<String>,
    tls_ca: Option<PathBuf>,
}

impl Membership {
    /// Reads the map and checks this node against it: its shards are in the map (one, unless
    /// it is a projections node), and with NATS its stream and subject prefix are its shard's
    /// (so that its events go where the map says and no two shards share a stream). A
    /// projections node of several shards reads each shard's stream named in the map, so its
    /// own `--nats-stream` and `--nats-subject-prefix` must be left unset (or be one of
    /// them). `None` without `--shard-map`.
    pub fn from_config(
        args: &ClusterArgs,
        role: Role,
        nats: Option<&NatsConfig>,
    ) -> Result<Option<Membership>, String> {
        let (Some(path), Some(named)) = (&args.shard_map, &args.shard) else {
            return Ok(None);
        };
        let map = ShardMap::load(path).map_err(|e| e.to_string())?;
        let entries = map
            .select(named)
            .map_err(|e| format!("{e} (shard map {})", path.display()))?;
        match (entries.as_slice(), nats) {
            ([entry], Some(nats)) => {
                check_stream(entry, &nats.stream.name, &nats.stream.subject_prefix)?;
            }
            ([_], None) => {}
            (_, nats) => {
                if role != Role::Projections {
                    return Err(format!(
                        "--shard {named:?} names {} shards: an {} node holds one shard's log; \
                         only a projections node follows several",
                        entries.len(),
                        role.as_str()
                    ));
                }
                if let Some(nats) = nats {
                    let default = keyplan_fanout::StreamSettings::default();
                    let given = (&nats.stream.name, &nats.stream.subject_prefix);
                    let unset = (&default.name, &default.subject_prefix) == given;
                    let one_of = entries
                        .iter()
                        .any(|e| (&e.stream, &e.subject_prefix) == given);
                    if !unset && !one_of {
                        return Err(format!(
                            "this node follows shards {} and reads each one's stream named in \
                             the shard map; --nats-stream {} and --nats-subject-prefix {} are \
                             none of them: leave both unset",
                            ids(&entries),
                            nats.stream.name,
                            nats.stream.subject_prefix
                        ));
                    }
                }
            }
        }
        let shards = entries.iter().map(|e| e.id.clone()).collect();
        Ok(Some(Membership {
            shards,
            map: Arc::new(map),
            tls_ca: args.shard_tls_ca.clone(),
        }))
    }

    /// The shards' ids, joined with commas (status, messages).
    pub fn named(&self) -> String {
        self.shards.join(",")
    }

    /// The stream settings of each shard this node follows: `base` (retention, replicas,
    /// signing key) with the shard's stream and subject prefix from the map.
    pub fn streams(&self, base: &StreamSettings) -> Vec<(String, StreamSettings)> {
        self.shards
            .iter()
            .filter_map(|id| self.map.shard(id))
            .map(|shard| {
                let mut settings = base.clone();
                settings.name.clone_from(&shard.stream);
                settings.subject_prefix.clone_from(&shard.subject_prefix);
                (shard.id.clone(), settings)
            })
            .collect()
    }

    /// Refuses a log that holds a tenant the map gives to another shard: its commands would
    /// now go there, and the tenant's history would be split over two logs. (Moving a tenant
    /// is a procedure of its own: deploy/README.md.)
    pub fn check_log(&self, store: &EventStore) -> Result<(), String> {
        let tenants = store.list_tenants().map_err(|e| e.to_string())?;
        let foreign: Vec<String> = tenants
            .iter()
            .filter_map(|t| {
                let owner = self.map.owner(t);
                (!self.shards.contains(&owner.id)).then(|| format!("{t:?} (shard {})", owner.id))
            })
            .collect();
        if foreign.is_empty() {
            return Ok(());
        }
        Err(format!(
            "this node is shard {} but its log holds {} tenant(s) that the shard map gives to \
             other shards: {}{}; start it with the map it was written under, or move those \
             tenants first (deploy/README.md, \"Moving a tenant\")",
            self.named(),
            foreign.len(),
            foreign
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if foreign.len() > 5 { ", ..." } else { "" }
        ))
    }

    /// The routing layer of a node with `role`, reading messages of at most
    /// `max_message_bytes`.
    pub fn route_layer(&self, role: Role, max_message_bytes: usize) -> Result<RouteLayer, String> {
        let tls = match &self.tls_ca {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("--shard-tls-ca {}: {e}", path.display()))?;
                Some(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                )
            }
            None => None,
        };
        RouteLayer::new(
            self.map.clone(),
            &self.shards,
            served(role),
            tls,
            max_message_bytes,
        )
        .map_err(|e| e.to_string())
    }
}

/// The `keyplan.v1` services a node of `role` serves itself (operations excepted: they are
/// about the node, never routed).
pub fn served(role: Role) -> &'static [&'static str] {
    const LOG: &[&str] = &[
        "keyplan.v1.CommandService",
        "keyplan.v1.EventStoreService",
        "keyplan.v1.AuditService",
        "keyplan.v1.AccountService",
    ];
    const READ_MODELS: &[&str] = &[
        "keyplan.v1.AccountService",
        "keyplan.v1.TimelineService",
        "keyplan.v1.ComplianceService",
        "keyplan.v1.ActivityService",
    ];
    const ALL: &[&str] = &[
        "keyplan.v1.CommandService",
        "keyplan.v1.EventStoreService",
        "keyplan.v1.AuditService",
        "keyplan.v1.AccountService",
        "keyplan.v1.TimelineService",
        "keyplan.v1.ComplianceService",
        "keyplan.v1.ActivityService",
    ];
    match role {
        Role::All => ALL,
        Role::Ingest => LOG,
        Role::Projections => READ_MODELS,
    }
}

fn ids(shards: &[&Shard]) -> String {
    shards
        .iter()
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_stream(entry: &Shard, stream: &str, prefix: &str) -> Result<(), String> {
    if entry.stream != stream || entry.subject_prefix != prefix {
        return Err(format!(
            "the shard map has shard {} publish to stream {} on subjects {}.>, but this node \
             was given --nats-stream {stream} and --nats-subject-prefix {prefix}: give it the \
             map's (KEYPLAN_NATS_STREAM={} KEYPLAN_NATS_SUBJECT_PREFIX={})",
            entry.id, entry.stream, entry.subject_prefix, entry.stream, entry.subject_prefix
        ));
    }
    Ok(())
}
