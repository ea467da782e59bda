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

/// Creates the stream, or updates its limits if it exists.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<jetstream::stream::Stream, FanoutError> {
    let config = stream_config(settings);
    match js.get_stream(&settings.name).await {
        Ok(_) => {
            js.update_stream(&config)
                .await
                .map_err(|e| FanoutError::JetStream(format!("updating stream: {e}")))?;
        }
        Err(_) => {
            js.create_stream(config)
                .await
                .map_err(|e| FanoutError::JetStream(format!("creating stream: {e}")))?;
        }
    }
    js.get_stream(&settings.name)
        .await
        .map_err(|e| FanoutError::JetStream(format!("opening stream: {e}")))
}
