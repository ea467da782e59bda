//! The outbox relay: publishes the committed log to JetStream, in order, exactly once in
//! effect.
//!
//! # How "exactly once" holds
//! - Every event is published with `Nats-Msg-Id` = its event id (JetStream drops a repeat
//!   within the duplicate window) and `Nats-Expected-Last-Sequence` = its position - 1
//!   (JetStream refuses it unless it is the next one). Together they make the JetStream
//!   sequence equal the global position, forever.
//! - On (re)start and after any error, the relay reconciles with JetStream instead of trusting
//!   its own checkpoint: the stream's last sequence says what is published. It checks that the
//!   message there carries the event id the log has at that position (otherwise the stream
//!   belongs to another log, and the relay stops rather than publish over it), then resumes
//!   at the next position. A stream that was deleted and created again (empty, last sequence
//!   0) gets the whole log republished from position 1. A *purged* stream keeps its last
//!   sequence, and JetStream never reuses a sequence, so purged events cannot be put back at
//!   their positions: the relay goes on after the stream's last sequence (its message there
//!   being gone, it trusts the sequence), and readers take the purged part from the log
//!   (`ReadAll`); to have JetStream hold everything again, delete the stream and restart the
//!   relay, which republishes the whole log.
//! - Appends never wait for NATS (unless the server runs with `--ack replicated`): while NATS
//!   is down the relay retries with backoff, and its lag grows, visibly.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    context::{PublishAckFuture, PublishError},
    publish::PublishAck,
};
use futures::stream::{FuturesOrdered, StreamExt};
use keyplan_proto::convert::recorded_event_to_proto;
use keyplan_proto::pb;
use keyplan_store::{EventFilter, EventStore, RecordedEvent};
use prost::Message as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::StreamSettings;
use crate::signing;
use crate::stream::ensure_stream;
use crate::subjects;
use crate::FanoutError;

/// Name of the relay's checkpoint in the store.
pub const CHECKPOINT: &str = "nats-relay";

/// Publishes in flight before the relay waits for acknowledgements.
const MAX_IN_FLIGHT: usize = 512;

/// How often the checkpoint is saved while publishing.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// What the relay reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayStatus {
    /// Last position JetStream has acknowledged.
    pub published_position: u64,
    /// Recorded-at (µs) of the last published event (0 if none).
    pub published_recorded_at_micros: i64,
    /// Whether the relay is currently publishing (connected and reconciled).
    pub running: bool,
    /// The last error, if the relay is retrying.
    pub last_error: Option<String>,
    /// Why the relay stopped publishing, while it refuses to (the JetStream stream does not
    /// match the log). Unlike a NATS outage this does not heal by itself: an operator must
    /// look, so the node reports it in its health and status rather than only in its log.
    pub stopped: Option<String>,
    /// How many times the relay found messages the log did not produce at the stream's tail
    /// and republished the stream (see [`repair_foreign_tail`]).
    pub repairs: u64,
}

/// The relay task's handle: status and lag.
#[derive(Debug, Clone)]
pub struct Relay {
    status: watch::Receiver<RelayStatus>,
    store: EventStore,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Relay {
    /// Starts the relay on the current tokio runtime. It runs until `shutdown` turns true
    /// (or its sender is dropped, or the store closes); [`Relay::join`] waits for that.
    pub fn spawn(
        store: EventStore,
        js: jetstream::Context,
        settings: StreamSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Relay {
        let initial = RelayStatus {
            published_position: store.checkpoint(CHECKPOINT).unwrap_or(0),
            ..RelayStatus::default()
        };
        let (tx, rx) = watch::channel(initial);
        let task_store = store.clone();
        let task = tokio::spawn(async move { run(task_store, js, settings, tx, shutdown).await });
        Relay {
            status: rx,
            store,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Waits for the relay task to end (after its shutdown signal), so that the node closes
    /// the store only once the relay no longer reads it and its checkpoint is saved.
    pub async fn join(&self) {
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The relay's current status.
    pub fn status(&self) -> RelayStatus {
        self.status.borrow().clone()
    }

    /// A feed of the relay's status (e.g. to wait until a position is replicated).
    pub fn watch(&self) -> watch::Receiver<RelayStatus> {
        self.status.clone()
    }

    /// Lag: positions committed but not yet acknowledged by JetStream, and the age in seconds
    /// of the oldest of them (0 when caught up).
    pub fn lag(&self) -> (u64, f64) {
        let status = self.status();
        let head = self.store.head();
        let behind = head.saturating_sub(status.published_position);
        if behind == 0 {
            return (0, 0.0);
        }
        let oldest = self
            .store
            .read_at(status.published_position + 1)
            .ok()
            .flatten()
            .map(|e| e.recorded_at_micros)
            .unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        (behind, ((now - oldest).max(0) as f64) / 1e6)
    }

    /// Waits until JetStream has acknowledged `position`, or `timeout` passes.
    pub async fn wait_published(&self, position: u64, timeout: Duration) -> bool {
        let mut status = self.status.clone();
        tokio::time::timeout(
            timeout,
            status.wait_for(|s| s.published_position >= position),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }
}

/// Completes once the node asks the relay to stop (or can no longer ask).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn run(
    store: EventStore,
    js: jetstream::Context,
    settings: StreamSettings,
    status: watch::Sender<RelayStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let started = Instant::now();
        // Stopping mid-publish is safe: whatever JetStream acknowledged is reconciled from the
        // stream's last sequence on the next start, and a repeat is refused by its
        // expected-last-sequence and de-duplicated by its message id.
        let outcome = tokio::select! {
            outcome = publish_until_error(&store, &js, &settings, &status) => outcome,
            () = shutdown_requested(&mut shutdown) => {
                stop(&store, &status);
                return;
            }
        };
        let error = match outcome {
            Ok(()) => return, // the store closed
            Err(e) => e,
        };
        let mut mismatch = matches!(error, FanoutError::Mismatch(_));
        if mismatch {
            match repair_foreign_tail(&store, &js, &settings).await {
                Ok(Some(repaired)) => {
                    tracing::error!(
                        error = %error,
                        foreign = repaired,
                        stream = %settings.name,
                        "messages the log did not produce were on the stream; it was deleted \
                         and is being republished from the log"
                    );
                    status.send_modify(|s| {
                        s.repairs += 1;
                        s.last_error = Some(format!(
                            "{error}; {repaired} foreign message(s) found: the stream was \
                             deleted and is republished from the log"
                        ));
                    });
                    mismatch = false;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not inspect the stream's tail"),
            }
        }
        if mismatch {
            tracing::error!(error = %error, "relay stopped publishing: the JetStream stream does not match the log");
        } else {
            tracing::warn!(error = %error, retry_in = ?backoff, "relay interrupted; will reconcile and resume");
        }
        status.send_modify(|s| {
            s.running = false;
            s.last_error = Some(error.to_string());
            s.stopped = mismatch.then(|| error.to_string());
        });
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(50);
        }
        let pause = if mismatch {
            Duration::from_secs(30)
        } else {
            backoff
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown_requested(&mut shutdown) => {
                stop(&store, &status);
                return;
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Saves the last acknowledged position as the checkpoint (a hint: every start reconciles
/// with JetStream anyway) and reports the relay as no longer running.
fn stop(store: &EventStore, status: &watch::Sender<RelayStatus>) {
    let published = status.borrow().published_position;
    if published > 0 {
        if let Err(e) = store.save_checkpoint(CHECKPOINT, published) {
            tracing::warn!(error = %e, "relay checkpoint not saved at shutdown; the next start reconciles with JetStream");
        }
    }
    status.send_modify(|s| s.running = false);
    tracing::info!(published, "relay stopped for shutdown");
}

/// Reconciles with JetStream, then publishes until something fails.
async fn publish_until_error(
    store: &EventStore,
    js: &jetstream::Context,
    settings: &StreamSettings,
    status: &watch::Sender<RelayStatus>,
) -> Result<(), FanoutError> {
    let mut stream = ensure_stream(js, settings).await?;
    let last = stream
        .info()
        .await
        .map_err(|e| FanoutError::JetStream(format!("stream info: {e}")))?
        .state
        .last_sequence;
    let head = store.head();
    if last > head {
        return Err(FanoutError::Mismatch(format!(
            "stream {} has sequence {last}, but the log ends at position {head}",
            settings.name
        )));
    }
    if last > 0 {
        check_same_event(store, &stream, last).await?;
    }
    let checkpoint = store.checkpoint(CHECKPOINT)?;
    if checkpoint != last {
        tracing::info!(
            checkpoint,
            jetstream = last,
            "relay resumes from JetStream's last sequence"
        );
    }
    store.save_checkpoint(CHECKPOINT, last)?;
    let recorded_at = match store.read_at(last)? {
        Some(e) => e.recorded_at_micros,
        None => 0,
    };
    status.send_modify(|s| {
        s.published_position = last;
        s.published_recorded_at_micros = recorded_at;
        s.running = true;
        s.last_error = None;
        s.stopped = None;
    });

    let mut feed = store.subscribe(last + 1, EventFilter::default());
    let mut in_flight: FuturesOrdered<AckFuture> = FuturesOrdered::new();
    let mut last_saved = Instant::now();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            Some((position, recorded_at, ack)) = in_flight.next(), if !in_flight.is_empty() => {
                let ack: PublishAck = ack.map_err(|e: PublishError| {
                    FanoutError::JetStream(format!("publish of position {position} not acknowledged: {e}"))
                })?;
                if ack.sequence != position {
                    return Err(FanoutError::Mismatch(format!(
                        "position {position} was stored as JetStream sequence {}",
                        ack.sequence
                    )));
                }
                status.send_modify(|s| {
                    s.published_position = position;
                    s.published_recorded_at_micros = recorded_at;
                });
                tracing::trace!(position, "published: acknowledged by JetStream");
                if last_saved.elapsed() >= CHECKPOINT_EVERY || in_flight.is_empty() {
                    store.save_checkpoint(CHECKPOINT, position)?;
                    last_saved = Instant::now();
                }
            }
            next = feed.next(), if open && in_flight.len() < MAX_IN_FLIGHT => match next {
                None => open = false,
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(event)) => {
                    let (position, recorded_at) = (event.global_position, event.recorded_at_micros);
                    let ack = tracing::Instrument::instrument(
                        publish(js, settings, &event),
                        tracing::debug_span!("relay_publish", position),
                    )
                    .await?;
                    in_flight.push_back(Box::pin(async move { (position, recorded_at, ack.await) }));
                }
            },
            else => return Ok(()),
        }
    }
}

/// A pending acknowledgement: position, recorded-at, and JetStream's answer.
type AckFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = (u64, i64, Result<PublishAck, PublishError>)> + Send>,
>;

/// Publishes one event as the next JetStream sequence.
async fn publish(
    js: &jetstream::Context,
    settings: &StreamSettings,
    event: &RecordedEvent,
) -> Result<PublishAckFuture, FanoutError> {
    let payload = recorded_event_to_proto(event)?.encode_to_vec();
    let event_id = event.event_id.to_string();
    let signature = settings.signing_key.as_ref().map(|key| {
        key.sign(
            &subjects::subject_for(&settings.subject_prefix, event),
            &payload,
        )
    });
    let message = subjects::message(
        payload.into(),
        subjects::Envelope {
            event_id: &event_id,
            position: event.global_position,
            stream_version: event.stream_version,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            tenant: &event.stream.tenant,
            account: &event.stream.stream,
        },
    );
    let message = match &signature {
        Some(signature) => message.header(signing::SIGNATURE, signature.as_str()),
        None => message,
    };
    js.send_publish(
        subjects::subject_for(&settings.subject_prefix, event),
        message,
    )
    .await
    .map_err(|e| {
        FanoutError::JetStream(format!(
            "publishing position {}: {e}",
            event.global_position
        ))
    })
}

/// Most messages [`repair_foreign_tail`] inspects back from the stream's tail.
const MAX_FOREIGN_TAIL: u64 = 1000;

/// After a mismatch: if every message at the stream's tail after the last one that is the log's
/// own is *provably* foreign (not a Keyplan event at all, or, with a signing key, not signed
/// with it), deletes the stream so that the next reconcile recreates it and republishes the
/// whole log at sequence = position (JetStream never reuses a sequence, so this is the only
/// way back to one coordinate). Returns how many foreign messages there were, or `None` (and
/// touches nothing) when the tail may be another Keyplan log's events: the relay then stops,
/// as before, for an operator to look.
///
/// The stream's other consumers lose their state: Keyplan's projections nodes resume by
/// position; an integration's durable consumer must be created again.
async fn repair_foreign_tail(
    store: &EventStore,
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<Option<u64>, FanoutError> {
    let jetstream = |e: &dyn std::fmt::Display| FanoutError::JetStream(e.to_string());
    let mut stream = js
        .get_stream(&settings.name)
        .await
        .map_err(|e| jetstream(&e))?;
    let state = stream
        .info()
        .await
        .map_err(|e| jetstream(&e))?
        .state
        .clone();
    let mut foreign = 0;
    let mut sequence = state.last_sequence;
    while sequence >= state.first_sequence.max(1) && foreign < MAX_FOREIGN_TAIL {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            return Ok(None);
        };
        let ours = store.read_at(sequence)?.is_some_and(|event| {
            message
                .headers
                .get(subjects::EVENT_ID)
                .is_some_and(|id| id.as_str() == event.event_id.to_string())
        });
        if ours {
            break;
        }
        let keyplan_event = pb::Event::decode(message.payload.as_ref())
            .is_ok_and(|e| e.metadata.is_some() && e.payload.is_some());
        let signed = settings.signing_key.as_ref().map(|key| {
            key.verify(
                message.subject.as_str(),
                &message.payload,
                message.headers.get(signing::SIGNATURE).map(|v| v.as_str()),
            )
        });
        let provably_foreign = !keyplan_event || signed == Some(false);
        if !provably_foreign {
            return Ok(None);
        }
        foreign += 1;
        sequence -= 1;
    }
    if foreign == 0 || foreign >= MAX_FOREIGN_TAIL {
        return Ok(None);
    }
    js.delete_stream(&settings.name)
        .await
        .map_err(|e| jetstream(&format!("deleting the stream: {e}")))?;
    Ok(Some(foreign))
}

/// Checks that JetStream's message at `sequence` is the log's event at that position.
async fn check_same_event(
    store: &EventStore,
    stream: &jetstream::stream::Stream,
    sequence: u64,
) -> Result<(), FanoutError> {
    let Some(event) = store.read_at(sequence)? else {
        return Err(FanoutError::Mismatch(format!(
            "the log has no position {sequence}"
        )));
    };
    let message = match stream.get_raw_message(sequence).await {
        Ok(m) => m,
        // Expired by max-age or max-bytes: nothing to compare, the sequence still holds.
        Err(e) => {
            tracing::debug!(sequence, error = %e, "last JetStream message not readable; trusting its sequence");
            return Ok(());
        }
    };
    let id = message
        .headers
        .get(subjects::EVENT_ID)
        .map(|v| v.as_str().to_owned());
    if id.as_deref() != Some(event.event_id.to_string().as_str()) {
        return Err(FanoutError::Mismatch(format!(
            "JetStream sequence {sequence} holds event {id:?}, the log has {} there",
            event.event_id
        )));
    }
    Ok(())
}
