//! The shard map: which shards a cluster has, where each shard's nodes listen, which JetStream
//! stream and subjects carry its events, and which shard owns each tenant.
//!
//! Every node of a sharded cluster is started with the same file. A tenant is owned by the
//! shard the file assigns it to, or else by the shard that wins rendezvous (highest random
//! weight) hashing of the tenant with each shard's id: adding a shard moves only the tenants
//! that now hash to it, and no node needs to agree with another on anything but the file. The
//! hash is SHA-256, fixed here and by a test, so that a tenant's owner never changes with the
//! build.
//!
//! ```toml
//! [[shards]]
//! id = "s1"
//! ingest = "http://10.0.0.11:50051"
//! replicas = ["http://10.0.0.21:50051"]
//! stream = "KEYPLAN_S1"
//! subject_prefix = "keyplan-s1"
//!
//! [[shards]]
//! id = "s2"
//! ingest = "http://10.0.0.12:50051"
//! stream = "KEYPLAN_S2"
//! subject_prefix = "keyplan-s2"
//!
//! [tenants]
//! acme = "s2"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Why a shard map was refused.
#[derive(Debug, Error)]
pub enum MapError {
    /// The file could not be read.
    #[error("reading the shard map {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a shard map.
    #[error("the shard map {path} does not parse: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// The map parses but contradicts itself.
    #[error("the shard map is inconsistent: {0}")]
    Inconsistent(String),
}

/// One shard as the map describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// The shard's id: lower-case letters, digits and `-`, at most 32.
    pub id: String,
    /// The gRPC address of the shard's ingest node (its log: commands, raw reads, audit).
    pub ingest: String,
    /// The gRPC addresses of projections nodes that follow the shard's stream (its read
    /// models). A node that follows several shards is listed under each. Empty: the ingest
    /// node serves them (`--role all`).
    #[serde(default)]
    pub replicas: Vec<String>,
    /// The shard's JetStream stream (`--nats-stream` of its nodes).
    pub stream: String,
    /// The first subject token of the shard's events (`--nats-subject-prefix` of its nodes).
    pub subject_prefix: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    shards: Vec<Shard>,
    #[serde(default)]
    tenants: BTreeMap<String, String>,
}

/// A checked shard map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    shards: Vec<Shard>,
    assigned: BTreeMap<String, String>,
    fingerprint: String,
}

impl ShardMap {
    /// Reads and checks the map in `path`.
    pub fn load(path: &Path) -> Result<ShardMap, MapError> {
        let text = std::fs::read_to_string(path).map_err(|source| MapError::Read {
            path: path.display().to_string(),
            source,
        })?;
        ShardMap::parse(&text).map_err(|e| match e {
            MapError::Parse { reason, .. } => MapError::Parse {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Parses and checks a map from its text.
    pub fn parse(text: &str) -> Result<ShardMap, MapError> {
        let file: File = toml::from_str(text).map_err(|e| MapError::Parse {
            path: "(text)".into(),
            reason: e.message().chars().take(300).collect(),
        })?;
        ShardMap::new(file.shards, file.tenants)
    }

    /// Checks a map built from its parts: at least one shard; ids, ingest addresses, streams
    /// and subject prefixes each unique; no replica also an ingest node, or twice in one
    /// shard (one may follow several shards); no shard's subjects inside another's; every
    /// assignment to a shard of the map.
    pub fn new(
        shards: Vec<Shard>,
        assigned: BTreeMap<String, String>,
    ) -> Result<ShardMap, MapError> {
        let bad = |m: String| Err(MapError::Inconsistent(m));
        if shards.is_empty() {
            return bad(
                "it lists no shard ([[shards]] with id, ingest, stream, subject_prefix)".into(),
            );
        }
        let mut ids = BTreeSet::new();
        let ingests: BTreeSet<&str> = shards.iter().map(|s| s.ingest.as_str()).collect();
        let mut ingest_seen = BTreeSet::new();
        let mut streams = BTreeSet::new();
        for shard in &shards {
            if shard.id.is_empty()
                || shard.id.len() > 32
                || !shard
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return bad(format!(
                    "shard id {:?}: use 1 to 32 lower-case letters, digits and '-'",
                    cut(&shard.id)
                ));
            }
            if shard.id == ALL_SHARDS {
                return bad(format!(
                    "shard id {ALL_SHARDS:?} is reserved: `--shard {ALL_SHARDS}` names every shard"
                ));
            }
            if !ids.insert(shard.id.as_str()) {
                return bad(format!("shard id {:?} appears twice", shard.id));
            }
            let mut own_replicas = BTreeSet::new();
            for address in std::iter::once(&shard.ingest).chain(&shard.replicas) {
                if address
                    .parse::<http::Uri>()
                    .map_or(true, |u| u.host().is_none())
                {
                    return bad(format!(
                        "shard {}: {:?} is not an address such as http://host:50051",
                        shard.id,
                        cut(address)
                    ));
                }
            }
            if !ingest_seen.insert(shard.ingest.as_str()) {
                return bad(format!(
                    "ingest address {:?} appears twice: an ingest node holds one shard's log",
                    cut(&shard.ingest)
                ));
            }
            for replica in &shard.replicas {
                // A replica may follow several shards (listed under each), never hold a log.
                if ingests.contains(replica.as_str()) {
                    return bad(format!(
                        "address {:?} is both an ingest node and a replica: an ingest node \
                         holds one shard's log (run it with --role all to serve its read models)",
                        cut(replica)
                    ));
                }
                if !own_replicas.insert(replica.as_str()) {
                    return bad(format!(
                        "shard {}: replica {:?} appears twice",
                        shard.id,
                        cut(replica)
                    ));
                }
            }
            if shard.stream.is_empty()
                || shard
                    .stream
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
            {
                return bad(format!(
                    "shard {}: stream {:?} is not a JetStream stream name",
                    shard.id,
                    cut(&shard.stream)
                ));
            }
            if !streams.insert(shard.stream.as_str()) {
                return bad(format!(
                    "stream {:?} appears twice: each shard has its own, so that its sequence \
                     is its log's position",
                    shard.stream
                ));
            }
            let prefix = &shard.subject_prefix;
            if prefix.is_empty()
                || prefix.starts_with('.')
                || prefix.ends_with('.')
                || prefix.contains("..")
                || prefix
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '*' | '>'))
            {
                return bad(format!(
                    "shard {}: subject prefix {:?} is not a subject prefix",
                    shard.id,
                    cut(prefix)
                ));
            }
        }
        for a in &shards {
            for b in &shards {
                if a.id == b.id {
                    continue;
                }
                let (p, q) = (&a.subject_prefix, &b.subject_prefix);
                // A shard's stream takes `<prefix>.>`, its alerts `<prefix>-alerts.>`.
                if p == q
                    || q.starts_with(&format!("{p}."))
                    || *q == format!("{p}-alerts")
                    || q.starts_with(&format!("{p}-alerts."))
                {
                    return bad(format!(
                        "shards {} and {}: subject prefixes {p:?} and {q:?} overlap (each \
                         shard's stream takes `<prefix>.>` and its alerts `<prefix>-alerts.>`)",
                        a.id, b.id
                    ));
                }
            }
        }
        for (tenant, shard) in &assigned {
            if !ids.contains(shard.as_str()) {
                return bad(format!(
                    "tenant {:?} is assigned to shard {:?}, which the map does not list",
                    cut(tenant),
                    cut(shard)
                ));
            }
        }
        let fingerprint = fingerprint(&shards, &assigned);
        Ok(ShardMap {
            shards,
            assigned,
            fingerprint,
        })
    }

    /// The shards, in the file's order.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard with this id.
    pub fn shard(&self, id: &str) -> Option<&Shard> {
        self.shards.iter().find(|s| s.id == id)
    }

    /// The shards a node's `--shard` names: one id, several separated by commas (a
    /// projections node following several shards), or [`ALL_SHARDS`]. In the map's order,
    /// each once.
    pub fn select(&self, named: &str) -> Result<Vec<&Shard>, MapError> {
        if named.trim() == ALL_SHARDS {
            return Ok(self.shards.iter().collect());
        }
        let mut chosen = BTreeSet::new();
        for id in named.split(',').map(str::trim) {
            if self.shard(id).is_none() {
                return Err(MapError::Inconsistent(format!(
                    "--shard names {:?}, which is not a shard of the map (its shards: {}; or \
                     {ALL_SHARDS:?} for every one)",
                    cut(id),
                    self.shards
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            chosen.insert(id);
        }
        Ok(self
            .shards
            .iter()
            .filter(|s| chosen.contains(s.id.as_str()))
            .collect())
    }

    /// The shard that owns `tenant`: its explicit assignment, else the shard whose
    /// [`weight`] with the tenant is highest.
    pub fn owner(&self, tenant: &str) -> &Shard {
        if let Some(shard) = self.assigned.get(tenant).and_then(|id| self.shard(id)) {
            return shard;
        }
        let mut best = &self.shards[0];
        let mut best_weight = weight(&best.id, tenant);
        for shard in &self.shards[1..] {
            let w = weight(&shard.id, tenant);
            if w > best_weight || (w == best_weight && shard.id < best.id) {
                best = shard;
                best_weight = w;
            }
        }
        best
    }

    /// A short digest of the whole map (shards in order, assignments): nodes put it on the
    /// requests they forward, and refuse one that carries another, so that two nodes with
    /// different maps cannot pass a tenant's commands to two shards.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The `--shard` of a projections node that follows every shard of the map (a shard may not
/// have this id).
pub const ALL_SHARDS: &str = "all";

/// The rendezvous weight of `tenant` on shard `shard_id`: the first 8 bytes, big-endian, of
/// SHA-256(`keyplan-shard` 0 `shard_id` 0 `tenant`).
pub fn weight(shard_id: &str, tenant: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(b"keyplan-shard\0")
        .chain_update(shard_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(tenant.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

fn fingerprint(shards: &[Shard], assigned: &BTreeMap<String, String>) -> String {
    let mut hash = Sha256::new();
    for s in shards {
        for field in [&s.id, &s.ingest, &s.stream, &s.subject_prefix] {
            hash.update(field.as_bytes());
            hash.update(b"\0");
        }
        for r in &s.replicas {
            hash.update(r.as_bytes());
            hash.update(b"\x01");
        }
        hash.update(b"\n");
    }
    for (tenant, shard) in assigned {
        hash.update(tenant.as_bytes());
        hash.update(b"\0");
        hash.update(shard.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(&hash.finalize()[..8])
}

/// Text from a file or a caller quoted in an error, bounded.
pub(crate) fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn shard(id: &str, port: u16) -> String {
        format!(
            "[[shards]]\nid = \"{id}\"\ningest = \"http://127.0.0.1:{port}\"\nstream = \"KEYPLAN_{}\"\nsubject_prefix = \"keyplan-{id}\"\n",
            id.to_uppercase()
        )
    }

    fn map(ids: &[&str]) -> ShardMap {
        let text: String = ids
            .iter()
            .enumerate()
            .map(|(i, id)| shard(id, 5000 + i as u16))
            .collect();
        ShardMap::parse(&text).unwrap()
    }

    #[test]
    fn the_weight_is_fixed() {
        // Changing it would move tenants between shards on an upgrade: never. (The value is
        // SHA-256 computed outside Rust: python3 hashlib.)
        assert_eq!(weight("s1", "acme"), 0x5f24_79da_1ac6_03d7);
    }

    #[test]
    fn tenants_spread_over_shards_and_adding_one_moves_only_what_it_takes() {
        let two = map(&["s1", "s2"]);
        let three = map(&["s1", "s2", "s3"]);
        let tenants: Vec<String> = (0..3000).map(|i| format!("tenant-{i}")).collect();
        let mut on = BTreeMap::<&str, usize>::new();
        let mut moved = 0;
        for t in &tenants {
            let before = two.owner(t).id.as_str();
            let after = three.owner(t).id.as_str();
            *on.entry(before).or_default() += 1;
            if before != after {
                assert_eq!(after, "s3", "{t} moved from {before} to {after}");
                moved += 1;
            }
        }
        assert!(on.values().all(|&n| n > 1300), "{on:?}");
        assert!((800..1200).contains(&moved), "{moved} of 3000 moved to s3");
    }

    #[test]
    fn the_shipped_maps_are_valid_with_replicas_of_both_shards() {
        for text in [
            include_str!("../../../deploy/shards.example.toml"),
            include_str!("../../../deploy/shards.compose.toml"),
        ] {
            let m = ShardMap::parse(text).unwrap();
            assert_eq!(m.shards().len(), 2);
            assert_eq!(m.owner("acme").id, "s1");
            assert_eq!(m.select(ALL_SHARDS).unwrap().len(), 2);
            assert_eq!(m.shards()[0].replicas, m.shards()[1].replicas);
        }
    }

    #[test]
    fn explicit_assignments_win() {
        let text = format!(
            "{}{}[tenants]\nacme = \"s2\"\nglobex = \"s1\"\n",
            shard("s1", 1),
            shard("s2", 2)
        );
        let m = ShardMap::parse(&text).unwrap();
        assert_eq!(m.owner("acme").id, "s2");
        assert_eq!(m.owner("globex").id, "s1");
        assert_ne!(m.fingerprint(), map(&["s1", "s2"]).fingerprint());
    }

    #[test]
    fn a_replica_may_follow_several_shards_and_a_node_names_its_shards() {
        let text = format!("{}{}", shard("s1", 1), shard("s2", 2))
            .replace("stream =", "replicas = [\"http://r:7\"]\nstream =");
        let m = ShardMap::parse(&text).unwrap();
        let ids = |named: &str| -> Vec<String> {
            m.select(named)
                .unwrap()
                .into_iter()
                .map(|s| s.id.clone())
                .collect()
        };
        assert_eq!(ids("all"), ["s1", "s2"]);
        assert_eq!(ids("s2, s1,s2"), ["s1", "s2"]);
        assert_eq!(ids("s2"), ["s2"]);
        let refused = m.select("s1,s9").unwrap_err().to_string();
        assert!(
            refused.contains("\"s9\"") && refused.contains("s1, s2"),
            "{refused}"
        );
    }

    #[test]
    fn inconsistent_maps_are_refused_saying_why() {
        let cases = [
            (String::new(), "no shard"),
            (
                format!("{}{}", shard("s1", 1), shard("s1", 2)),
                "appears twice",
            ),
            (
                format!("{}{}", shard("s1", 1), shard("s2", 1)),
                "ingest address",
            ),
            (
                format!("{}{}", shard("s1", 1), shard("s2", 2)).replace(
                    "stream = \"KEYPLAN_S2\"",
                    "replicas = [\"http://127.0.0.1:1\"]\nstream = \"KEYPLAN_S2\"",
                ),
                "both an ingest node and a replica",
            ),
            (
                shard("s1", 1).replace(
                    "stream =",
                    "replicas = [\"http://r:1\", \"http://r:1\"]\nstream =",
                ),
                "appears twice",
            ),
            (shard("all", 1), "reserved"),
            (
                format!("{}{}", shard("s1", 1), shard("s2", 2)).replace("KEYPLAN_S2", "KEYPLAN_S1"),
                "stream \"KEYPLAN_S1\" appears twice",
            ),
            (
                format!("{}{}", shard("s1", 1), shard("s2", 2))
                    .replace("keyplan-s2", "keyplan-s1.x"),
                "overlap",
            ),
            (
                format!("{}{}", shard("s1", 1), shard("s2", 2))
                    .replace("keyplan-s2", "keyplan-s1-alerts"),
                "overlap",
            ),
            (
                format!("{}[tenants]\nacme = \"s9\"\n", shard("s1", 1)),
                "does not list",
            ),
            (shard("S 1", 1), "shard id"),
            (
                shard("s1", 1).replace("http://127.0.0.1:1", "not an address"),
                "not an address",
            ),
            (format!("{}color = 1\n", shard("s1", 1)), "parse"),
        ];
        for (text, expected) in cases {
            let refused = ShardMap::parse(&text).unwrap_err().to_string();
            assert!(refused.contains(expected), "{text}\n=> {refused}");
        }
    }
}
