//! Raw JetStream: what this machine's nats-server does with Keyplan-sized events and none of
//! Keyplan's work. The ceiling of Keyplan's relay (publish) and of a rebuild from JetStream
//! (consume), measured on a private `nats-server -js` ([`NatsProcess`]) with a stream
//! configured exactly as Keyplan configures its own ([`stream_config`]: file storage, limits
//! retention, 2-minute duplicate window).
//!
//! - **publish**: one client publishes as fast as it can with [`IN_FLIGHT`] acknowledged
//!   publishes outstanding, as Keyplan's relay does. Every message is what the relay sends for
//!   an interaction of the workload: the encoded protobuf `Event` (built once; its bytes are
//!   reused, where the relay encodes each), the relay's headers, a unique `Nats-Msg-Id` (so
//!   de-duplication costs what it costs Keyplan) and `Nats-Expected-Last-Sequence`, on
//!   `keyplan.<tenant>.<account>.InteractionLogged` round-robin over [`SUBJECTS`] accounts.
//!   Throughput counts the messages acknowledged in the measured window; latency is publish →
//!   acknowledgement (with the window full, mostly queueing: about `IN_FLIGHT` / throughput).
//! - **publish, one in flight**: the same, one publish at a time: the round trip of a single
//!   acknowledged publish (client → stored → acknowledged), the floor under any fan-out
//!   latency.
//! - **consume**: an ordered pull consumer (as a projections node uses) reads the whole stream
//!   from sequence 1 and decodes every message as a `pb::Event`, the least any consumer of
//!   Keyplan's stream does; messages per second, consumer creation included.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{
    self,
    consumer::{pull::OrderedConfig, DeliverPolicy},
    context::{PublishAckFuture, PublishError},
    stream::Stream,
};
use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt};
use keyplan_fanout::stream::stream_config;
use keyplan_fanout::subjects::{self, all_subjects};
use keyplan_fanout::StreamSettings;
use keyplan_proto::convert::{event_payload_to_proto, timestamp_to_proto};
use keyplan_proto::pb;
use prost::Message as _;
use serde::Serialize;

use crate::measure::{Recorder, Window};
use crate::nats::NatsProcess;
use crate::report::Figures;
use crate::workload::{interaction_event, TENANT};

/// Acknowledged publishes outstanding, as in Keyplan's relay (`MAX_IN_FLIGHT`).
pub const IN_FLIGHT: usize = 512;

/// Accounts (subjects) the messages are spread over, round robin.
pub const SUBJECTS: usize = 100;

/// A consume that receives nothing for this long has failed.
const CONSUME_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the baseline measured.
#[derive(Debug, Clone, Serialize)]
pub struct JetStreamBaseline {
    /// Bytes of one message's payload (the encoded protobuf `Event`), headers not counted.
    pub payload_bytes: usize,
    /// Acknowledged publishes outstanding in the pipelined run.
    pub in_flight: usize,
    /// Accounts (subjects) published to.
    pub subjects: usize,
    /// Warm-up before the pipelined run's measured window, seconds.
    pub warmup_s: f64,
    /// Pipelined publishing: `events_per_s` is messages acknowledged per second, the
    /// latencies are publish → acknowledgement.
    pub publish: Figures,
    /// One publish at a time: the latencies are one acknowledged publish's round trip.
    pub publish_one_in_flight: Figures,
    /// Reading the whole stream back.
    pub consume: ConsumeFigures,
}

/// The consume run.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumeFigures {
    /// Messages read (the whole stream).
    pub messages: u64,
    /// Seconds from creating the consumer to the last message.
    pub seconds: f64,
    /// messages / seconds.
    pub messages_per_s: f64,
    /// Messages that did not decode as a `pb::Event` (none are expected).
    pub errors: u64,
}

/// The headline figures, repeated on each result compared with them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct JetStreamSummary {
    /// Pipelined publishes acknowledged per second.
    pub publish_per_s: f64,
    /// Pipelined publish → acknowledgement, ms: p50, p99.
    pub publish_ack_ms: [f64; 2],
    /// One publish at a time, publish → acknowledgement, ms: p50, p99.
    pub single_publish_ack_ms: [f64; 2],
    /// Messages per second read back by an ordered pull consumer.
    pub consume_per_s: f64,
}

impl JetStreamBaseline {
    /// The headline figures.
    pub fn summary(&self) -> JetStreamSummary {
        JetStreamSummary {
            publish_per_s: self.publish.events_per_s,
            publish_ack_ms: [self.publish.p50_ms, self.publish.p99_ms],
            single_publish_ack_ms: [
                self.publish_one_in_flight.p50_ms,
                self.publish_one_in_flight.p99_ms,
            ],
            consume_per_s: self.consume.messages_per_s,
        }
    }
}

/// Runs the three measurements on a fresh nats-server: pipelined publishing (`warmup`, then
/// `measured`), one publish at a time for `single`, then the consume of everything published.
pub async fn measure(
    warmup: Duration,
    measured: Duration,
    single: Duration,
) -> Result<JetStreamBaseline> {
    let nats = NatsProcess::start().await?;
    let client = async_nats::connect(nats.url())
        .await
        .context("connecting to nats-server")?;
    let js = jetstream::new(client);
    let settings = StreamSettings::default();
    let mut stream = js
        .create_stream(stream_config(&settings))
        .await
        .context("creating the stream")?;
    let mut publisher = Publisher::new(js, &settings)?;

    let publish = publish_for(
        &mut publisher,
        &mut stream,
        IN_FLIGHT,
        Window::starting_now(warmup, measured),
    )
    .await
    .context("publishing, pipelined")?;
    let publish_one_in_flight = publish_for(
        &mut publisher,
        &mut stream,
        1,
        Window::starting_now(Duration::ZERO, single),
    )
    .await
    .context("publishing, one in flight")?;
    let consume = consume_all(&mut stream, &settings)
        .await
        .context("consuming the stream")?;
    Ok(JetStreamBaseline {
        payload_bytes: publisher.payload.len(),
        in_flight: IN_FLIGHT,
        subjects: SUBJECTS,
        warmup_s: warmup.as_secs_f64(),
        publish,
        publish_one_in_flight,
        consume,
    })
}

/// Publishes messages like the relay's, numbering them as the stream will.
struct Publisher {
    js: jetstream::Context,
    payload: Bytes,
    event_type: String,
    schema_version: u16,
    /// Per account: (account id, subject).
    accounts: Vec<(String, String)>,
    /// The stream sequence the next message will get.
    next: u64,
}

impl Publisher {
    fn new(js: jetstream::Context, settings: &StreamSettings) -> Result<Self> {
        let (payload, event_type, schema_version) = sample_event()?;
        let accounts = (0..SUBJECTS)
            .map(|i| {
                let account = format!("bench-{i:03}");
                let subject = format!(
                    "{}.{TENANT}.{account}.{event_type}",
                    settings.subject_prefix
                );
                (account, subject)
            })
            .collect();
        Ok(Self {
            js,
            payload: payload.into(),
            event_type: event_type.to_owned(),
            schema_version,
            accounts,
            next: 1,
        })
    }

    /// Sends the next message; resolves once it is written to the connection.
    async fn send(&mut self) -> Result<PublishAckFuture, PublishError> {
        let sequence = self.next;
        self.next += 1;
        let (account, subject) = &self.accounts[(sequence % SUBJECTS as u64) as usize];
        let id = uuid::Uuid::now_v7().to_string();
        let message = subjects::message(
            self.payload.clone(),
            subjects::Envelope {
                event_id: &id,
                position: sequence,
                stream_version: sequence / SUBJECTS as u64 + 1,
                event_type: &self.event_type,
                schema_version: self.schema_version,
                tenant: TENANT,
                account,
            },
        );
        self.js.send_publish(subject.clone(), message).await
    }
}

/// Publishes with up to `depth` acknowledgements outstanding until the window ends, then
/// waits for the last ones.
async fn publish_for(
    publisher: &mut Publisher,
    stream: &mut Stream,
    depth: usize,
    window: Window,
) -> Result<Figures> {
    let mut recorder = Recorder::new()?;
    let mut in_flight = FuturesOrdered::new();
    let mut resync = false;
    loop {
        let sending = !resync && !window.is_over(Instant::now());
        if sending && in_flight.len() < depth {
            let started = Instant::now();
            match publisher.send().await {
                Ok(ack) => in_flight.push_back(async move { (started, ack.await) }),
                Err(e) => {
                    recorder.error(|| format!("publishing: {e}"));
                    resync = true;
                }
            }
            continue;
        }
        match in_flight.next().await {
            Some((started, Ok(_))) => recorder.record(&window, started, Instant::now(), 1),
            Some((_, Err(e))) => {
                recorder.error(|| format!("publish not acknowledged: {e}"));
                resync = true;
            }
            None if resync => {
                // A lost publish breaks the expected-sequence chain of every later one: go on
                // from what the stream holds.
                let info = stream.info().await.context("stream info")?;
                publisher.next = info.state.last_sequence + 1;
                resync = false;
            }
            None => break,
        }
    }
    Ok(recorder.figures(window.measured()))
}

/// Reads the whole stream from sequence 1 with an ordered pull consumer.
async fn consume_all(stream: &mut Stream, settings: &StreamSettings) -> Result<ConsumeFigures> {
    let total = stream.info().await.context("stream info")?.state.messages;
    let started = Instant::now();
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: all_subjects(&settings.subject_prefix),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .context("creating the consumer")?;
    let mut messages = consumer.messages().await.context("consuming")?;
    let (mut received, mut errors) = (0u64, 0u64);
    while received < total {
        let message = match tokio::time::timeout(CONSUME_IDLE_TIMEOUT, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => bail!("after {received} of {total} messages: {e}"),
            Ok(None) => bail!("the consumer ended after {received} of {total} messages"),
            Err(_) => bail!(
                "no message for {CONSUME_IDLE_TIMEOUT:?} after {received} of {total} messages"
            ),
        };
        let sequence = message.info().map(|info| info.stream_sequence);
        if sequence.is_err() || pb::Event::decode(message.payload.as_ref()).is_err() {
            errors += 1;
        }
        received += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(ConsumeFigures {
        messages: received,
        seconds,
        messages_per_s: received as f64 / seconds,
        errors,
    })
}

/// The encoded protobuf `Event` the relay publishes for one interaction of the workload (with
/// metadata of realistic sizes: UUIDs, multi-digit positions, both hashes), its event type and
/// schema version.
fn sample_event() -> Result<(Vec<u8>, &'static str, u16)> {
    let event = interaction_event()?;
    let encoded = keyplan_domain::codec::encode(&event);
    let occurred = keyplan_domain::values::Timestamp(1_772_323_200_000_000);
    let recorded = keyplan_domain::values::Timestamp(1_780_000_000_123_456);
    let proto = pb::Event {
        metadata: Some(pb::EventMetadata {
            event_id: uuid::Uuid::now_v7().to_string(),
            tenant: TENANT.into(),
            account_id: "bench-042".into(),
            stream_version: 1_234,
            global_position: 1_234_567,
            recorded_at: Some(timestamp_to_proto(recorded)),
            occurred_at: Some(timestamp_to_proto(occurred)),
            actor: "dana.kim".into(),
            correlation_id: uuid::Uuid::now_v7().to_string(),
            causation_id: String::new(),
            idempotency_key: String::new(),
            event_type: encoded.event_type.into(),
            schema_version: u32::from(encoded.schema_version),
            prev_hash: vec![0xA5; 32],
            hash: vec![0x5A; 32],
            idempotency_fingerprint: String::new(),
        }),
        payload: Some(event_payload_to_proto(&event)),
    };
    Ok((
        proto.encode_to_vec(),
        encoded.event_type,
        encoded.schema_version,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_event_is_a_whole_interaction() {
        let (bytes, event_type, _) = sample_event().expect("the workload's interaction");
        assert_eq!(event_type, "InteractionLogged");
        let event = pb::Event::decode(bytes.as_slice()).expect("decodes");
        assert!(matches!(
            event.payload.and_then(|p| p.event),
            Some(pb::event_payload::Event::InteractionLogged(_))
        ));
        // The relay's events are a few hundred bytes; anything else means a wrong sample.
        assert!((200..1000).contains(&bytes.len()), "{} bytes", bytes.len());
    }
}
