//! Creating or updating the JetStream stream at start.

use async_nats::jetstream::{self, stream};

use crate::config::StreamSettings;
use crate::subjects::all_subjects;
use crate::FanoutError;

/// The stream configuration Keyplan wants.
pub fn stream_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: settings.name.clone(),
        subjects: vec![all_subjects(&settings.subject_prefix)],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        max_age: settings.max_age,
        max_bytes: settings.max_bytes,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        discard: stream::DiscardPolicy::Old,
        description: Some("Keyplan events; the sequence equals Keyplan's global position".into()),
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates the stream, or brings the settings Keyplan manages (subjects, limits, replicas,
/// duplicate window) to the configured ones if it exists. An update happens only when one of
/// them differs, and is logged at warn level naming each change, so that an operator who
/// changed the stream by hand sees that Keyplan's configuration wins (change Keyplan's
/// `--nats-*` settings instead). Settings Keyplan does not manage are kept as they are.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<jetstream::stream::Stream, FanoutError> {
    let wanted = stream_config(settings);
    match js.get_stream(&settings.name).await {
        Ok(mut existing) => {
            let current = existing
                .info()
                .await
                .map_err(|e| FanoutError::JetStream(format!("stream info: {e}")))?
                .config
                .clone();
            let changes = managed_differences(&current, &wanted);
            if !changes.is_empty() {
                tracing::warn!(
                    stream = %settings.name,
                    changes = %changes.join("; "),
                    "the JetStream stream's settings differ from Keyplan's configuration; updating them"
                );
                let updated = stream::Config {
                    subjects: wanted.subjects,
                    max_age: wanted.max_age,
                    max_bytes: wanted.max_bytes,
                    num_replicas: wanted.num_replicas,
                    duplicate_window: wanted.duplicate_window,
                    ..current
                };
                js.update_stream(&updated)
                    .await
                    .map_err(|e| FanoutError::JetStream(format!("updating stream: {e}")))?;
            }
        }
        Err(_) => {
            js.create_stream(wanted)
                .await
                .map_err(|e| FanoutError::JetStream(format!("creating stream: {e}")))?;
        }
    }
    js.get_stream(&settings.name)
        .await
        .map_err(|e| FanoutError::JetStream(format!("opening stream: {e}")))
}

/// The settings Keyplan manages that differ between `current` and `wanted`, as `name: from ->
/// to`.
fn managed_differences(current: &stream::Config, wanted: &stream::Config) -> Vec<String> {
    let mut changes = Vec::new();
    let mut compare = |name: &str, from: String, to: String| {
        if from != to {
            changes.push(format!("{name}: {from} -> {to}"));
        }
    };
    compare(
        "subjects",
        format!("{:?}", current.subjects),
        format!("{:?}", wanted.subjects),
    );
    compare(
        "max_age",
        format!("{:?}", current.max_age),
        format!("{:?}", wanted.max_age),
    );
    compare(
        "max_bytes",
        current.max_bytes.to_string(),
        wanted.max_bytes.to_string(),
    );
    compare(
        "replicas",
        current.num_replicas.to_string(),
        wanted.num_replicas.to_string(),
    );
    compare(
        "duplicate_window",
        format!("{:?}", current.duplicate_window),
        format!("{:?}", wanted.duplicate_window),
    );
    changes
}
