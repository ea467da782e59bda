//! `keyplan recover`: the way back from a log the node refuses to open.
//!
//! A node refuses a log that is shorter than what it acknowledged, or that sled cannot read
//! (see `keyplan_store::EventStore::open`). JetStream holds every published event with its
//! metadata and hashes, so the log can be rebuilt: the readable prefix of the damaged log is
//! salvaged, the rest is read from the stream, and every event is verified (position, version,
//! hash link, and its content against its hash) by `keyplan_store::recovery::LogImporter`
//! before it is written to a new directory. Only a rebuilt log that reaches the last
//! acknowledged position replaces the damaged one, which is kept beside it for inspection.
//! An empty or missing data directory (a node's new volume) is restored wholly from the
//! stream, which must then still hold position 1.

use std::path::{Path, PathBuf};

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use futures::StreamExt;
use keyplan_fanout::subjects::all_subjects;
use keyplan_projection::source::SILENT_AFTER;
use keyplan_proto::convert::recorded_event_from_proto;
use keyplan_proto::pb;
use keyplan_store::recovery::{salvage, LogImporter, Salvage};
use keyplan_store::{StoreConfig, StoreError};
use prost::Message;
use thiserror::Error;

use crate::config::RecoverArgs;

/// Why a recovery did not replace the log (the damaged directory is then left as it was).
#[derive(Debug, Error)]
pub enum RecoverError {
    /// The arguments do not allow a recovery.
    #[error("{0}")]
    Config(String),
    /// Reading or writing the logs failed, or an event did not verify.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// JetStream could not be read.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// The file system failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The sources together do not reach what the node acknowledged.
    #[error(
        "the rebuilt log ends at position {rebuilt} but the node acknowledged up to {acknowledged}: \
         positions {} to {acknowledged} are in neither the damaged log nor JetStream; nothing was \
         replaced",
        rebuilt + 1
    )]
    Incomplete {
        /// Where the rebuilt log ends.
        rebuilt: u64,
        /// What the damaged log's acknowledgement record says.
        acknowledged: u64,
    },
}

/// What a recovery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverReport {
    /// Events salvaged from the damaged log.
    pub salvaged: u64,
    /// Why salvaging stopped, if before the end.
    pub salvage_stopped: Option<String>,
    /// Events taken from JetStream.
    pub from_jetstream: u64,
    /// The new log's head.
    pub head: u64,
    /// Where the damaged (or empty) directory was moved; `None` if there was none.
    pub damaged_kept_at: Option<PathBuf>,
}

impl std::fmt::Display for RecoverReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "recovered: {} events salvaged from the damaged log, {} from JetStream, every hash \
             and chain link verified; the log now ends at position {}",
            self.salvaged, self.from_jetstream, self.head
        )?;
        if let Some(why) = &self.salvage_stopped {
            writeln!(f, "salvage stopped at: {why}")?;
        }
        match &self.damaged_kept_at {
            Some(kept) => writeln!(
                f,
                "the data directory found there was kept at {}",
                kept.display()
            ),
            None => writeln!(f, "there was no data directory; the log was restored"),
        }
    }
}

/// Rebuilds the log of `args.data_dir` (see the module docs). The node must be stopped.
pub async fn recover(args: &RecoverArgs) -> Result<RecoverReport, RecoverError> {
    let dir = &args.data_dir;
    let has_log =
        dir.join("db").exists() || dir.join(keyplan_store::settings::SETTINGS_FILE).exists();
    if !has_log && dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(RecoverError::Config(format!(
            "{} holds no Keyplan log, yet is not empty: give the node's data directory, or an \
             empty (or missing) one to restore the whole log from JetStream",
            dir.display()
        )));
    }
    let nats = args
        .nats
        .to_config()
        .map_err(|e| RecoverError::Config(e.to_string()))?
        .ok_or_else(|| {
            RecoverError::Config("recovery reads the events from JetStream: give --nats-url".into())
        })?;
    let rebuilt_dir = sibling(dir, "recovering");
    if rebuilt_dir.exists() {
        std::fs::remove_dir_all(&rebuilt_dir)?;
    }
    let mut config = StoreConfig::new(&rebuilt_dir);
    config.compress_new_log = args.log_compression;
    let rebuilt = rebuild(dir, has_log, config, &nats).await;
    let (head, salvaged, salvage, from_jetstream) = match rebuilt {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&rebuilt_dir);
            return Err(e);
        }
    };
    if let Some(acknowledged) = salvage.acknowledged {
        if head < acknowledged {
            let _ = std::fs::remove_dir_all(&rebuilt_dir);
            return Err(RecoverError::Incomplete {
                rebuilt: head,
                acknowledged,
            });
        }
    }

    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let damaged_kept_at = (0..)
        .map(|n| sibling(dir, &format!("damaged-{stamp}-{n}")))
        .find(|candidate| !candidate.exists())
        .unwrap_or_else(|| sibling(dir, "damaged"));
    // An empty directory (a new volume) is kept too, as it was, for the record.
    let damaged_kept_at = if dir.exists() {
        std::fs::rename(dir, &damaged_kept_at)?;
        Some(damaged_kept_at)
    } else {
        None
    };
    std::fs::rename(&rebuilt_dir, dir)?;
    // The read models are rebuilt from the log if they are ahead of it; keep them otherwise.
    if let Some(kept) = &damaged_kept_at {
        let read_models = kept.join(keyplan_projection::READ_MODELS_DIR);
        if read_models.exists() {
            std::fs::rename(&read_models, dir.join(keyplan_projection::READ_MODELS_DIR))?;
        }
    }
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(RecoverReport {
        salvaged,
        salvage_stopped: salvage.stopped,
        from_jetstream,
        head,
        damaged_kept_at,
    })
}

/// Salvages `dir` into a new log made with `config`, then copies the rest from JetStream;
/// returns (head, events salvaged, what salvage found, events from JetStream).
async fn rebuild(
    dir: &Path,
    has_log: bool,
    config: StoreConfig,
    nats: &keyplan_fanout::NatsConfig,
) -> Result<(u64, u64, Salvage, u64), RecoverError> {
    let (importer, salvage) = {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || -> Result<_, RecoverError> {
            let mut importer = LogImporter::create(config)?;
            let found = if has_log {
                salvage(&dir, |event| importer.push(event))?
            } else {
                // Nothing to salvage: the whole log comes from JetStream.
                Salvage::default()
            };
            Ok((importer, found))
        })
        .await
        .map_err(|e| RecoverError::Config(format!("salvaging panicked: {e}")))??
    };
    let salvaged = importer.head();
    if has_log {
        eprintln!("salvaged positions 1 to {salvaged} from the damaged log");
    } else {
        eprintln!(
            "no log in {}: restoring it wholly from JetStream",
            dir.display()
        );
    }

    let connection = keyplan_fanout::connect(nats)
        .await
        .map_err(|e| RecoverError::JetStream(e.to_string()))?;
    let js = async_nats::jetstream::new(connection.client.clone());
    let (importer, from_jetstream) = copy_from_jetstream(&js, &nats.stream, importer).await?;

    let head = tokio::task::spawn_blocking(move || importer.finish())
        .await
        .map_err(|e| RecoverError::Config(format!("finishing panicked: {e}")))??;
    Ok((head, salvaged, salvage, from_jetstream))
}

/// Appends the stream's messages after the importer's head, verified, up to the stream's last
/// sequence as it was when the copy started.
async fn copy_from_jetstream(
    js: &async_nats::jetstream::Context,
    settings: &keyplan_fanout::StreamSettings,
    mut importer: LogImporter,
) -> Result<(LogImporter, u64), RecoverError> {
    let jetstream = |e: &dyn std::fmt::Display| RecoverError::JetStream(e.to_string());
    let mut stream = js
        .get_stream(&settings.name)
        .await
        .map_err(|e| jetstream(&format!("stream {}: {e}", settings.name)))?;
    let state = stream
        .info()
        .await
        .map_err(|e| jetstream(&e))?
        .state
        .clone();
    let from = importer.head() + 1;
    if state.last_sequence < from {
        return Ok((importer, 0));
    }
    if state.first_sequence > from {
        return Err(RecoverError::JetStream(format!(
            "stream {} holds positions {} to {}, but the log is readable only up to {}: \
             positions {from} to {} are lost (the stream's retention removed them)",
            settings.name,
            state.first_sequence,
            state.last_sequence,
            from - 1,
            state.first_sequence - 1
        )));
    }
    let mut messages = open_messages(&stream, settings, from).await?;
    let mut copied = 0;
    let mut silences = 0;
    while importer.head() < state.last_sequence {
        let message = match tokio::time::timeout(SILENT_AFTER, messages.next()).await {
            Ok(message) => message
                .ok_or_else(|| jetstream(&"the stream ended early"))?
                .map_err(|e| jetstream(&e))?,
            // The stream holds more (up to `last_sequence`), so the consumer has gone silent
            // (see `SILENT_AFTER`): read on from the log's head on a new one.
            Err(_) if silences < MAX_SILENCES => {
                silences += 1;
                eprintln!(
                    "JetStream delivered nothing for {} s after position {}; reading on with \
                     a new consumer",
                    SILENT_AFTER.as_secs(),
                    importer.head()
                );
                messages = open_messages(&stream, settings, importer.head() + 1).await?;
                continue;
            }
            Err(_) => {
                return Err(jetstream(&format!(
                    "JetStream delivered nothing after position {} for {} s, {MAX_SILENCES} \
                     times; what was copied is kept: run `keyplan recover` again",
                    importer.head(),
                    SILENT_AFTER.as_secs()
                )))
            }
        };
        let sequence = message.info().map_err(|e| jetstream(&e))?.stream_sequence;
        let event = pb::Event::decode(message.payload.as_ref())
            .map_err(|e| jetstream(&format!("message {sequence} does not decode: {e}")))?;
        let event = recorded_event_from_proto(event).map_err(|e| {
            jetstream(&format!(
                "message {sequence} is not a Keyplan event ({e}); it cannot be verified"
            ))
        })?;
        if event.global_position != sequence {
            return Err(jetstream(&format!(
                "message {sequence} claims position {}: a foreign message in the stream",
                event.global_position
            )));
        }
        tokio::task::block_in_place(|| importer.push(&event))?;
        copied += 1;
        if copied % 100_000 == 0 {
            eprintln!("copied up to position {} from JetStream", importer.head());
        }
    }
    Ok((importer, copied))
}

/// How many times a copy from JetStream takes a new consumer after one went silent.
const MAX_SILENCES: u32 = 5;

/// The stream's events from position `from` on, from a new ordered consumer.
async fn open_messages(
    stream: &async_nats::jetstream::stream::Stream,
    settings: &keyplan_fanout::StreamSettings,
    from: u64,
) -> Result<async_nats::jetstream::consumer::pull::Ordered, RecoverError> {
    let jetstream = |e: &dyn std::fmt::Display| RecoverError::JetStream(e.to_string());
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: all_subjects(&settings.subject_prefix),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| jetstream(&e))?;
    consumer.messages().await.map_err(|e| jetstream(&e))
}

/// `<dir>.<suffix>`, beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}
