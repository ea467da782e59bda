//! Rebuilding a damaged log: salvage what is readable of it, then take the rest from a replica
//! (JetStream holds every event with its hashes), verifying every hash and chain link.
//!
//! [`LogImporter`] writes a new log into an empty directory from events given in position
//! order. It accepts an event only if it is the next position, the next version of its stream,
//! links to the stream's previous hash and, re-encoded exactly as the writer stores it, hashes
//! to the hash it carries: so the rebuilt log is byte for byte the log that was acknowledged,
//! and an event that was altered anywhere (in the damaged file, in transit, in the replica) is
//! refused with its position named. [`salvage`] reads the readable prefix of a damaged log,
//! stopping (without panicking) at the first thing it cannot read.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use crate::acknowledged::{Acknowledged, AcknowledgedFile};
use crate::durable::{sync_dir, DirectoryWatch};
use crate::error::StoreError;
use crate::layout::{
    position_of_key, record_key, EventBody, RecordBuilder, RecordView, HASH_LEN, LOG_TREE,
};
use crate::record::{RecordedEvent, StreamId};
use crate::settings::{self, LogSettings};
use crate::store::{catch_sled_panic, open_sled};
use crate::StoreConfig;

/// Events written per sled batch while importing.
const EVENTS_PER_BATCH: usize = 4096;

/// Writes a new, verified log (see the module docs).
pub struct LogImporter {
    config: StoreConfig,
    db: sled::Db,
    log: sled::Tree,
    acknowledged: AcknowledgedFile,
    streams: HashMap<StreamId, (u64, [u8; HASH_LEN])>,
    builder: RecordBuilder,
    pending: usize,
    head: u64,
    last_hash: [u8; HASH_LEN],
}

impl std::fmt::Debug for LogImporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogImporter")
            .field("path", &self.config.path)
            .field("head", &self.head)
            .finish()
    }
}

impl LogImporter {
    /// Creates a new log in `config.path`, which must not exist or be empty.
    pub fn create(config: StoreConfig) -> Result<Self, StoreError> {
        let dir = &config.path;
        if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(StoreError::Unavailable(format!(
                "{} is not empty; a log is imported into a new directory",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir)?;
        let settings = LogSettings {
            compression: config.compress_new_log,
            segment_size: settings::SEGMENT_SIZE,
        };
        let acknowledged = AcknowledgedFile::create(dir, true)?;
        settings.save(dir)?;
        let db = open_sled(&config, &settings)?;
        let log = db.open_tree(LOG_TREE)?;
        Ok(Self {
            config,
            db,
            log,
            acknowledged,
            streams: HashMap::new(),
            builder: RecordBuilder::default(),
            pending: 0,
            head: 0,
            last_hash: [0; HASH_LEN],
        })
    }

    /// The last position imported (0 before the first).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Verifies and adds the next event; on error nothing is added.
    pub fn push(&mut self, event: &RecordedEvent) -> Result<(), StoreError> {
        let position = self.head + 1;
        let refuse = |what: String| {
            StoreError::Corrupt(format!(
                "event {} claiming position {} of {}: {what}",
                event.event_id, event.global_position, event.stream
            ))
        };
        if event.global_position != position {
            return Err(refuse(format!("expected position {position}")));
        }
        let (version, prev_hash) = self
            .streams
            .get(&event.stream)
            .copied()
            .unwrap_or((0, [0; HASH_LEN]));
        if event.stream_version != version + 1 {
            return Err(refuse(format!(
                "the stream is at version {version}, this is version {}",
                event.stream_version
            )));
        }
        if event.prev_hash != prev_hash {
            return Err(refuse(
                "its previous-hash link does not match the stream's previous event".into(),
            ));
        }
        let body = EventBody {
            event_id: event.event_id,
            tenant: &event.stream.tenant,
            stream: &event.stream.stream,
            stream_version: event.stream_version,
            global_position: event.global_position,
            recorded_at_micros: event.recorded_at_micros,
            occurred_at_micros: event.occurred_at_micros,
            actor: &event.actor,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            idempotency_key: event.idempotency_key.as_deref(),
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: &event.payload,
        };
        // Check the hash before the builder takes the event, so a refusal adds nothing.
        let body_bytes =
            postcard::to_allocvec(&body).map_err(|e| refuse(format!("does not encode: {e}")))?;
        if crate::layout::chain_hash(&prev_hash, &body_bytes) != event.hash {
            return Err(refuse(
                "its content does not match its hash (altered, or not reproducible from this \
                 copy)"
                    .into(),
            ));
        }
        self.builder.push(&body, &prev_hash)?;
        self.streams
            .insert(event.stream.clone(), (event.stream_version, event.hash));
        self.head = position;
        self.last_hash = event.hash;
        self.pending += 1;
        if self.pending >= EVENTS_PER_BATCH {
            self.write_pending()?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> Result<(), StoreError> {
        let records = std::mem::take(&mut self.builder).finish();
        let mut batch = sled::Batch::default();
        for (first, value) in &records {
            batch.insert(&record_key(*first), value.as_slice());
        }
        self.log.apply_batch(batch)?;
        self.pending = 0;
        Ok(())
    }

    /// Writes what is pending, makes the new log durable (data, directory entries and the
    /// acknowledgement record at its head) and returns its head.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        self.write_pending()?;
        self.db.flush()?;
        File::open(self.config.path.join("db"))?.sync_data()?;
        DirectoryWatch::new(&self.config.path)?;
        self.acknowledged.record(&Acknowledged {
            position: self.head,
            hash: self.last_hash,
        })?;
        if let Some(parent) = self.config.path.parent() {
            sync_dir(parent)?;
        }
        Ok(self.head)
    }
}

/// What [`salvage`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvage {
    /// The last position read intact (0 if none).
    pub readable_head: u64,
    /// What the damaged directory's acknowledgement record says, if it is readable.
    pub acknowledged: Option<u64>,
    /// Why reading stopped before the end of the log, if it did.
    pub stopped: Option<String>,
}

/// Feeds the readable prefix of the (possibly damaged) log in `dir` to `take`, in position
/// order, stopping at the first record that cannot be read or that `take` refuses. Never
/// writes to `dir`.
pub fn salvage(
    dir: &Path,
    mut take: impl FnMut(&RecordedEvent) -> Result<(), StoreError>,
) -> Result<Salvage, StoreError> {
    let mut found = Salvage {
        acknowledged: AcknowledgedFile::open(dir, false)
            .ok()
            .flatten()
            .map(|(_, a)| a.position),
        ..Salvage::default()
    };
    let settings = match LogSettings::load(dir) {
        Ok(Some(s)) => Some(s),
        _ => settings::from_sled_conf(dir).ok().flatten(),
    };
    let Some(settings) = settings else {
        found.stopped = Some("the log's settings are unreadable; nothing salvaged".into());
        return Ok(found);
    };
    // Work on a copy: sled rewrites its files when it opens them.
    let scratch = tempfile_dir(dir)?;
    let copy = scratch.join("log");
    for name in ["db", "conf", "blobs", "snap"] {
        copy_tree_prefix(dir, &copy, name)?;
    }
    let result = catch_sled_panic("salvaging the log", || {
        let db = open_sled(&StoreConfig::new(&copy), &settings)?;
        let log = db.open_tree(LOG_TREE)?;
        for entry in log.iter() {
            let (key, value) = entry?;
            let first = position_of_key(&key)?;
            let view = RecordView::parse(first, &value)?;
            for event in view.events() {
                let event = event?;
                take(&event.to_recorded())?;
                found.readable_head = event.body.global_position;
            }
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&scratch);
    if let Err(e) = result {
        found.stopped = Some(e.to_string());
    }
    Ok(found)
}

/// A fresh scratch directory beside `dir`.
fn tempfile_dir(dir: &Path) -> Result<std::path::PathBuf, StoreError> {
    let mut name = dir.file_name().unwrap_or_default().to_owned();
    name.push(format!(".salvage-{}", std::process::id()));
    let scratch = dir.with_file_name(name);
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    Ok(scratch)
}

/// Copies the files of `from` whose names start with `prefix` (folders recursively) into `to`.
fn copy_tree_prefix(from: &Path, to: &Path, prefix: &str) -> Result<(), StoreError> {
    std::fs::create_dir_all(to)?;
    let entries = match std::fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(prefix) {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_tree_prefix(&entry.path(), &target, "")?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
