//! Where projections read events from: the local log or JetStream.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use futures::{FutureExt, StreamExt};
use keyplan_fanout::subjects::all_subjects;
use keyplan_fanout::StreamSettings;
use keyplan_proto::pb;
use keyplan_store::{EventFilter, EventStore, Subscription};
use prost::Message as _;
use tokio::sync::mpsc;

use crate::event::ProjectedEvent;
use crate::shared_feed::{Delivery, SharedFeed};
use crate::ProjectionError;

/// A source of events in global order (built once per node, so the size difference between
/// variants does not matter).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum EventSource {
    /// This process's own log (the all-in-one and ingest roles).
    Local(EventStore),
    /// The JetStream stream the relay publishes to (the projections role).
    JetStream {
        /// JetStream context.
        context: jetstream::Context,
        /// The stream's settings (name, subject prefix).
        stream: StreamSettings,
    },
    /// One of the others, read once for every projection given this source
    /// ([`EventSource::shared`]).
    Shared(SharedFeed),
}

/// An open feed of events from a position on (one per running projection).
#[allow(clippy::large_enum_variant)]
pub enum Feed {
    /// From the local log.
    Local(Subscription),
    /// From an ordered JetStream consumer.
    JetStream(JetStreamFeed),
    /// From a shared feed.
    Shared(mpsc::Receiver<Delivery>),
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Feed::Local(_) => "Feed::Local",
            Feed::JetStream(..) => "Feed::JetStream",
            Feed::Shared(_) => "Feed::Shared",
        })
    }
}

impl EventSource {
    /// This source, read once for every projection it is given to (see
    /// [`crate::shared_feed`]): what a node gives its projections. Must be called within a
    /// tokio runtime.
    pub fn shared(self) -> Self {
        match self {
            EventSource::Shared(_) => self,
            source => EventSource::Shared(SharedFeed::start(source)),
        }
    }

    /// The source underneath a shared one, read by a projection on its own (a rebuild, which
    /// must not hold the serving projections back); any other source as it is.
    pub fn private(&self) -> Self {
        match self {
            EventSource::Shared(shared) => shared.source().private(),
            source => source.clone(),
        }
    }

    /// Opens a feed starting at `from` (inclusive, >= 1).
    pub async fn open(&self, from: u64) -> Result<Feed, ProjectionError> {
        match self {
            EventSource::Shared(shared) => Ok(Feed::Shared(shared.open(from)?)),
            EventSource::Local(store) => {
                Ok(Feed::Local(store.subscribe(from, EventFilter::default())))
            }
            EventSource::JetStream { context, stream } => {
                let js_stream = context.get_stream(&stream.name).await.map_err(|e| {
                    ProjectionError::JetStream(format!("stream {}: {e}", stream.name))
                })?;
                let consumer = js_stream
                    .create_consumer(OrderedConfig {
                        filter_subject: all_subjects(&stream.subject_prefix),
                        deliver_policy: DeliverPolicy::ByStartSequence {
                            start_sequence: from,
                        },
                        max_expires: PULL_EXPIRES,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| ProjectionError::JetStream(format!("creating consumer: {e}")))?;
                let messages = consumer
                    .messages()
                    .await
                    .map_err(|e| ProjectionError::JetStream(format!("consuming: {e}")))?;
                Ok(Feed::JetStream(JetStreamFeed {
                    messages,
                    key: stream.signing_key.clone(),
                    stream: js_stream,
                    next: from,
                }))
            }
        }
    }

    /// The last position the source holds now (to tell when a rebuild has caught up).
    pub async fn head(&self) -> Result<u64, ProjectionError> {
        match self {
            EventSource::Shared(shared) => Box::pin(shared.source().head()).await,
            EventSource::Local(store) => Ok(store.head()),
            EventSource::JetStream { context, stream } => {
                let mut s = context.get_stream(&stream.name).await.map_err(|e| {
                    ProjectionError::JetStream(format!("stream {}: {e}", stream.name))
                })?;
                let info = s
                    .info()
                    .await
                    .map_err(|e| ProjectionError::JetStream(format!("stream info: {e}")))?;
                Ok(info.state.last_sequence)
            }
        }
    }
}

/// A feed from an ordered JetStream consumer, watched for a consumer that has gone silent.
pub struct JetStreamFeed {
    messages: jetstream::consumer::pull::Ordered,
    /// The key messages must be signed with, if any.
    key: Option<keyplan_fanout::signing::SigningKey>,
    /// The stream, asked for its last sequence when nothing comes (see [`SILENT_AFTER`]).
    stream: jetstream::stream::Stream,
    /// The next position (stream sequence) the feed should deliver.
    next: u64,
}

/// How long a JetStream feed may deliver nothing before the stream is asked whether it holds
/// more. If it does, the consumer has gone silent and the feed ends with an error, so the
/// projection reads again from its position on a new consumer.
///
/// async-nats recreates an ordered consumer that misses its idle heartbeats, but not one that
/// goes on sending them and delivers nothing. nats-server does that at times after a node of
/// its cluster restarts (nats-io/nats-server#5679): `tests/shards.rs` once saw a replica
/// stand still, 36 events behind its shard's head, for over a minute after the kill -9 and
/// restart of a NATS node. Longer than async-nats' own recovery from missed heartbeats (two
/// of them, one every half [`PULL_EXPIRES`]), so that one goes first.
pub const SILENT_AFTER: Duration = Duration::from_secs(10);

/// How long one pull of the ordered consumer waits on the server. async-nats asks for idle
/// heartbeats every half of it and recreates the consumer after two are missed: with its
/// defaults (30 s pulls, 15 s heartbeats), a consumer lost with its NATS node (killed, or
/// cut off) was noticed only after about half a minute, during which a projections node
/// stood still although the stream had moved on to a new leader. With 4 s pulls the node
/// notices within about 4 s, at the cost of one empty pull every 4 s while idle.
pub const PULL_EXPIRES: std::time::Duration = std::time::Duration::from_secs(4);

impl JetStreamFeed {
    /// The next event, or an error if the consumer failed or went silent (see
    /// [`SILENT_AFTER`]).
    async fn next(&mut self) -> Option<Delivery> {
        // A message already buffered needs no timer (most of a catch-up's messages).
        let ready = self.messages.next().now_or_never();
        let message = if let Some(message) = ready {
            message?
        } else {
            loop {
                tokio::select! {
                    biased;
                    message = self.messages.next() => break message?,
                    () = tokio::time::sleep(SILENT_AFTER) => {
                        if let Some(last) = self.holds_more().await {
                            return Some(Err(ProjectionError::JetStream(format!(
                                "the stream holds events up to sequence {last}, but its consumer \
                                 has delivered nothing for {} s; reading again from {}",
                                SILENT_AFTER.as_secs(),
                                self.next
                            ))));
                        }
                    }
                }
            }
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => return Some(Err(ProjectionError::JetStream(e.to_string()))),
        };
        let sequence = match message.info() {
            Ok(info) => info.stream_sequence,
            Err(e) => {
                return Some(Err(ProjectionError::JetStream(format!(
                    "message info: {e}"
                ))))
            }
        };
        let signed = self.key.as_ref().map(|key| {
            let signature = message
                .headers
                .as_ref()
                .and_then(|h| h.get(keyplan_fanout::signing::SIGNATURE))
                .map(|v| v.as_str());
            key.verify(message.subject.as_str(), &message.payload, signature)
        });
        let screened = match signed {
            Some(false) => Err(
                "its signature is missing or does not verify with this node's signing key"
                    .to_owned(),
            ),
            _ => screen(sequence, &message.payload),
        };
        if screened.is_ok() {
            self.next = sequence + 1;
        }
        Some(screened.map(Arc::new).map_err(|reason| {
            crate::foreign::record(sequence, &reason);
            // Not applied, and not stepped over either: the log's own event for this
            // position may still come at this sequence (the relay republishes a stream
            // it finds foreign messages in), so the runner reopens the feed from its
            // position after a pause, as after any interruption.
            ProjectionError::JetStream(format!(
                "skipped a message the log did not produce at stream sequence \
                 {sequence}; reading again from there"
            ))
        }))
    }

    /// The stream's last sequence if it holds the next position, i.e. the consumer has
    /// something to deliver; `None` if not, or if the stream cannot say now (the consumer is
    /// then given more time: async-nats reconnects and recreates it by itself).
    async fn holds_more(&mut self) -> Option<u64> {
        let info = tokio::time::timeout(SILENT_AFTER, self.stream.info()).await;
        match info {
            // A purged stream holds no message up to its last sequence: nothing to deliver.
            Ok(Ok(info)) if info.state.messages > 0 && info.state.last_sequence >= self.next => {
                Some(info.state.last_sequence)
            }
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "stream info, to tell an idle feed from a silent one");
                None
            }
            Err(_) => None,
        }
    }
}

/// The event a stream message carries, or why it is not one of the log's: it must decode as a
/// Keyplan event and claim the position equal to its stream sequence (the relay publishes
/// position p only as sequence p).
fn screen(sequence: u64, payload: &[u8]) -> Result<ProjectedEvent, String> {
    let event = pb::Event::decode(payload)
        .map_err(|e| format!("does not decode as a Keyplan event: {e}"))?;
    let claimed = event.metadata.as_ref().map(|m| m.global_position);
    if claimed != Some(sequence) {
        return Err(format!(
            "claims position {claimed:?} at stream sequence {sequence}"
        ));
    }
    ProjectedEvent::from_proto(sequence, event).map_err(|e| e.to_string())
}

impl Feed {
    /// Waits for the next event (`None` when the source closed).
    pub async fn next(&mut self) -> Option<Delivery> {
        match self {
            Feed::Shared(events) => events.recv().await,
            Feed::Local(subscription) => {
                let next = subscription.next().await?;
                Some(
                    next.map_err(ProjectionError::from)
                        .and_then(|r| ProjectedEvent::from_recorded(&r))
                        .map(Arc::new),
                )
            }
            Feed::JetStream(feed) => feed.next().await,
        }
    }

    /// Takes the next event if one arrives within `wait` (`None`: none came; `Some(None)`:
    /// the source closed).
    pub async fn next_within(&mut self, wait: Duration) -> Option<Option<Delivery>> {
        if let (Feed::Shared(events), true) = (&mut *self, wait.is_zero()) {
            // What the runner asks for to fill a batch, once per event: a timer for no wait
            // at all (reading the clock, registering with the runtime) cost about 2 % of a
            // rebuild (`perf` of `keyplan-bench --scenario apply`).
            return match events.try_recv() {
                Ok(event) => Some(Some(event)),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => Some(None),
            };
        }
        tokio::time::timeout(wait, self.next()).await.ok()
    }
}
