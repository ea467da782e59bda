//! Scenario `fanout`: appends at a fixed rate; latency from "append acknowledged" to "event
//! received", by a JetStream consumer (NATS) and by a gRPC `Watch` client.
//!
//! Latency is receive time minus the client's acknowledgement time for the same event id. An
//! event can reach a subscriber before its acknowledgement reaches the appending client (the
//! relay publishes as soon as the batch is durable); such events count as 0 ms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use futures::StreamExt;
use hdrhistogram::Histogram;
use keyplan_proto::pb;
use keyplan_proto::pb::command_service_client::CommandServiceClient;
use keyplan_proto::pb::event_store_service_client::EventStoreServiceClient;
use prost::Message;
use serde::Serialize;

use crate::nats::NatsProcess;
use crate::server::{connect, head, Channel, KeyplanProcess};
use crate::workload::{onboarding, AccountWorkload, TENANT};

/// Clients sharing the offered load: one per 100 events/s, at least 32 and at most 128. Each
/// waits for its acknowledgement before its next append, so at a few milliseconds per ack 32
/// clients cannot offer 10k/s (measured: 6.2k–7.8k/s).
pub(crate) fn clients_for(rate: u32) -> usize {
    (rate / 100).clamp(32, 128) as usize
}

/// Where the events fan out to: NATS nodes, stream replicas, when appends are acknowledged.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NatsSetup {
    /// nats-servers (3: a JetStream cluster).
    pub nodes: usize,
    /// The stream's replicas (`--nats-replicas`).
    pub replicas: usize,
    /// `--ack replicated`: an append is acknowledged once JetStream has it.
    pub ack_replicated: bool,
}

impl NatsSetup {
    /// One nats-server, an R1 stream, local acknowledgements (the `fanout` scenario).
    pub const SINGLE: NatsSetup = NatsSetup {
        nodes: 1,
        replicas: 1,
        ack_replicated: false,
    };

    /// The `replicas` scenario's setups, compared in one run: a 3-node cluster with an R1
    /// stream (the baseline), with an R3 stream, and with an R3 stream and replicated acks.
    pub const CLUSTER: [NatsSetup; 3] = [
        NatsSetup {
            nodes: 3,
            replicas: 1,
            ack_replicated: false,
        },
        NatsSetup {
            nodes: 3,
            replicas: 3,
            ack_replicated: false,
        },
        NatsSetup {
            nodes: 3,
            replicas: 3,
            ack_replicated: true,
        },
    ];

    /// E.g. `3 nodes R3 ack replicated`.
    pub fn label(&self) -> String {
        let ack = if self.ack_replicated {
            " ack replicated"
        } else {
            ""
        };
        let nodes = if self.nodes == 1 { "node" } else { "nodes" };
        format!("{} {nodes} R{}{ack}", self.nodes, self.replicas)
    }
}

/// One fan-out measurement.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    /// NATS nodes, stream replicas, acknowledgements.
    pub setup: NatsSetup,
    /// Offered appends (events) per second.
    pub rate_per_s: u32,
    /// Appending clients sharing the offered load.
    pub clients: usize,
    /// Events acknowledged in the measured window.
    pub acknowledged: u64,
    /// Achieved append rate.
    pub achieved_per_s: f64,
    /// Ack → JetStream consumer, milliseconds: p50, p99, p999, max.
    pub jetstream_ms: [f64; 4],
    /// Events acknowledged but not seen by the JetStream consumer.
    pub jetstream_missing: u64,
    /// The JetStream latency split at the instant nats-server stored the message (its
    /// `published` time): ack → stored (the relay's tailing of the log and the publish),
    /// milliseconds p50, p99, p999, max; 0 when stored before the ack arrived.
    pub jetstream_stored_ms: [f64; 4],
    /// ... and stored → received by the consumer (JetStream's delivery), milliseconds.
    pub jetstream_delivery_ms: [f64; 4],
    /// Ack → gRPC Watch, milliseconds: p50, p99, p999, max.
    pub watch_ms: [f64; 4],
    /// Events acknowledged but not seen by the watcher.
    pub watch_missing: u64,
    /// Append acknowledgement latency, milliseconds: p50, p99, p999, max.
    pub ack_ms: [f64; 4],
}

/// Event id → when it was acknowledged, or received.
pub(crate) type Times = Arc<Mutex<HashMap<String, Instant>>>;

/// Event id → when nats-server stored it (its `published` time, ns since the epoch).
pub(crate) type StoredTimes = Arc<Mutex<HashMap<String, i128>>>;

pub(crate) fn lock<T>(times: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    times
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Maps this process's monotonic instants to wall-clock ns since the epoch (to compare them
/// with nats-server's timestamps; same machine, same clock).
#[derive(Clone, Copy)]
pub(crate) struct WallClock {
    instant: Instant,
    unix_ns: i128,
}

impl WallClock {
    pub(crate) fn now() -> Self {
        let unix_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Self {
            instant: Instant::now(),
            unix_ns,
        }
    }

    fn unix_ns(self, at: Instant) -> i128 {
        let since = at.saturating_duration_since(self.instant).as_nanos() as i128;
        let before = self.instant.saturating_duration_since(at).as_nanos() as i128;
        self.unix_ns + since - before
    }
}

pub(crate) fn quantiles(h: &Histogram<u64>) -> [f64; 4] {
    let ms = |us: u64| us as f64 / 1000.0;
    [
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    ]
}

/// Runs the scenario at each rate and in each setup (rate by rate, the setups one after the
/// other), each on fresh nats-servers and a fresh Keyplan.
pub async fn run(
    binary: &std::path::Path,
    rates: &[u32],
    setups: &[NatsSetup],
    measured: Duration,
    server_args: &[String],
) -> Result<Vec<FanoutResult>> {
    let mut out = Vec::new();
    for &rate in rates {
        for setup in setups {
            out.push(
                run_rate(binary, rate, *setup, measured, server_args)
                    .await
                    .with_context(|| format!("fan-out at {rate}/s, {}", setup.label()))?,
            );
        }
    }
    Ok(out)
}

async fn run_rate(
    binary: &std::path::Path,
    rate: u32,
    setup: NatsSetup,
    measured: Duration,
    server_args: &[String],
) -> Result<FanoutResult> {
    let clients = clients_for(rate);
    let nats = NatsProcess::start_nodes(setup.nodes).await?;
    let mut args = vec![
        "--nats-url".to_owned(),
        nats.urls(),
        "--nats-replicas".to_owned(),
        setup.replicas.to_string(),
    ];
    if setup.ack_replicated {
        args.extend(["--ack".to_owned(), "replicated".to_owned()]);
    }
    args.extend(server_args.iter().cloned());
    let server = KeyplanProcess::start_with(binary, &args).await?;
    let channel = connect(server.address()).await?;

    let mut accounts = Vec::new();
    let mut commands = CommandServiceClient::new(channel.clone());
    for i in 0..clients {
        let account = format!("fanout-{i}");
        commands
            .execute_batch(onboarding(&account))
            .await
            .context("onboarding")?;
        accounts.push(account);
    }
    // Wait for the relay to have created the stream and published the onboarding.
    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let stream = loop {
        if let Ok(s) = js.get_stream("KEYPLAN").await {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let start_at = head(&channel).await? + 1;

    let clock = WallClock::now();
    let acked: Times = Arc::default();
    let via_jetstream: Times = Arc::default();
    let via_watch: Times = Arc::default();

    let stored_at: StoredTimes = Arc::default();
    let js_task = consume(
        &stream,
        "keyplan.>",
        start_at,
        via_jetstream.clone(),
        stored_at.clone(),
    )
    .await?;
    let mut watch = EventStoreServiceClient::new(channel.clone())
        .watch(pb::WatchRequest {
            tenant: TENANT.into(),
            account_id: String::new(),
            from_position: start_at,
        })
        .await?
        .into_inner();
    let watch_times = via_watch.clone();
    let watch_task = tokio::spawn(async move {
        while let Some(Ok(event)) = watch.next().await {
            let now = Instant::now();
            if let Some(meta) = event.metadata {
                lock(&watch_times).insert(meta.event_id, now);
            }
        }
    });

    let load = accounts
        .into_iter()
        .map(|account| {
            (
                CommandServiceClient::new(channel.clone()),
                AccountWorkload::new(account),
            )
        })
        .collect();
    let (ack_hist, _errors) = offer_load(load, rate, measured, &acked).await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // let the last events arrive
    js_task.abort();
    watch_task.abort();

    let acked = lock(&acked).clone();
    let (js_hist, js_missing) = latency(&acked, &via_jetstream)?;
    let (stored_hist, delivery_hist) = split_at_store(clock, &acked, &stored_at, &via_jetstream)?;
    let (watch_hist, watch_missing) = latency(&acked, &via_watch)?;
    server.stop().await?;
    Ok(FanoutResult {
        setup,
        rate_per_s: rate,
        clients,
        acknowledged: acked.len() as u64,
        achieved_per_s: acked.len() as f64 / measured.as_secs_f64(),
        jetstream_ms: quantiles(&js_hist),
        jetstream_missing: js_missing,
        jetstream_stored_ms: quantiles(&stored_hist),
        jetstream_delivery_ms: quantiles(&delivery_hist),
        watch_ms: quantiles(&watch_hist),
        watch_missing,
        ack_ms: quantiles(&ack_hist),
    })
}

/// Consumes `stream` on `filter` from `start_sequence` on with an ordered consumer, noting
/// when each event (by id) arrived and when nats-server stored it, until the task is aborted.
pub(crate) async fn consume(
    stream: &async_nats::jetstream::stream::Stream,
    filter: &str,
    start_sequence: u64,
    received: Times,
    stored_at: StoredTimes,
) -> Result<tokio::task::JoinHandle<()>> {
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
            filter_subject: filter.into(),
            ..Default::default()
        })
        .await
        .context("creating the JetStream consumer")?;
    let mut messages = consumer.messages().await.context("consuming")?;
    Ok(tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            let now = Instant::now();
            let stored = message
                .info()
                .ok()
                .map(|info| info.published.unix_timestamp_nanos());
            if let Ok(event) = pb::Event::decode(message.payload.as_ref()) {
                if let Some(meta) = event.metadata {
                    if let Some(stored) = stored {
                        lock(&stored_at).insert(meta.event_id.clone(), stored);
                    }
                    lock(&received).insert(meta.event_id, now);
                }
            }
        }
    }))
}

/// The offered load: one task per (client, workload), together `rate` single-event appends
/// per second for `measured`, each client waiting for its acknowledgement before its next
/// append (a client that falls behind sends its missed ticks at once). Notes when each event
/// was acknowledged in `acked`; returns the acknowledgement latencies (µs) and how many
/// appends failed.
pub(crate) async fn offer_load(
    load: Vec<(CommandServiceClient<Channel>, AccountWorkload)>,
    rate: u32,
    measured: Duration,
    acked: &Times,
) -> Result<(Histogram<u64>, u64)> {
    let per_client = Duration::from_secs_f64(load.len() as f64 / f64::from(rate));
    let deadline = Instant::now() + measured;
    let mut ack_hist = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    let mut tasks = Vec::new();
    for (mut commands, mut workload) in load {
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(per_client);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            while Instant::now() < deadline {
                ticks.tick().await;
                let sent = Instant::now();
                match commands.execute(workload.single()).await {
                    Ok(response) => {
                        let now = Instant::now();
                        latencies.push(now.duration_since(sent));
                        let mut map = lock(&acked);
                        for id in response.into_inner().event_ids {
                            map.insert(id, now);
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    for task in tasks {
        let (latencies, failed) = task.await?;
        errors += failed;
        for latency in latencies {
            ack_hist.record(latency.as_micros().max(1) as u64)?;
        }
    }
    Ok((ack_hist, errors))
}

/// Latencies (µs) from each acknowledged event's ack to its receipt, and how many
/// acknowledged events were never received.
pub(crate) fn latency(
    acked: &HashMap<String, Instant>,
    received: &Times,
) -> Result<(Histogram<u64>, u64)> {
    let received = lock(received);
    let mut h = Histogram::<u64>::new(3)?;
    let mut missing = 0;
    for (id, ack) in acked {
        match received.get(id) {
            Some(at) => h.record(at.saturating_duration_since(*ack).as_micros().max(1) as u64)?,
            None => missing += 1,
        }
    }
    Ok((h, missing))
}

/// The ack → received latencies split at the instant nats-server stored each event: ack →
/// stored and stored → received (µs; 1 when stored before the ack arrived).
pub(crate) fn split_at_store(
    clock: WallClock,
    acked: &HashMap<String, Instant>,
    stored_at: &StoredTimes,
    received: &Times,
) -> Result<(Histogram<u64>, Histogram<u64>)> {
    let stored_at = lock(stored_at);
    let received = lock(received);
    let mut stored_hist = Histogram::<u64>::new(3)?;
    let mut delivery_hist = Histogram::<u64>::new(3)?;
    for (id, ack) in acked {
        if let (Some(&stored), Some(&at)) = (stored_at.get(id), received.get(id)) {
            let micros = |ns: i128| (ns / 1000).clamp(1, i128::from(u32::MAX)) as u64;
            stored_hist.record(micros(stored - clock.unix_ns(*ack)))?;
            delivery_hist.record(micros(clock.unix_ns(at) - stored))?;
        }
    }
    Ok((stored_hist, delivery_hist))
}
