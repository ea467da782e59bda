//! The peer most teams use: an events table in PostgreSQL, written the usual way.
//!
//! Each connection owns one stream and commits transactions that read the stream's current
//! version, insert the next events (one multi-row `INSERT`, optimistic concurrency through the
//! `unique (stream_id, version)` constraint) and commit with `synchronous_commit = on`, i.e.
//! acknowledged means durable, as in Keyplan.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::task::JoinSet;
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

use super::event_bytes;
use crate::measure::{Recorder, Window};
use crate::report::Figures;

/// The benchmark's table, dropped and recreated for every configuration.
const TABLE: &str = "keyplan_bench_events";

/// A reachable PostgreSQL and the connection string that reached it.
pub struct Postgres {
    url: String,
    admin: Client,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("url", &self.url).finish()
    }
}

/// Connects with `url`, or, if that fails and it names `user=postgres`, the same as `root`
/// (the two usual superusers of a local install). The error explains why both failed.
pub async fn connect(url: &str) -> Result<Postgres> {
    let mut candidates = vec![url.to_owned()];
    if url.contains("user=postgres") {
        candidates.push(url.replace("user=postgres", "user=root"));
    }
    let mut failures = Vec::new();
    for candidate in candidates {
        match connect_one(&candidate).await {
            Ok(admin) => {
                return Ok(Postgres {
                    url: candidate,
                    admin,
                })
            }
            Err(e) => failures.push(format!("{candidate}: {e:#}")),
        }
    }
    bail!("{}", failures.join("; "))
}

/// One connection, its driver task spawned, with durable commits.
async fn connect_one(url: &str) -> Result<Client> {
    let (client, connection) =
        tokio::time::timeout(Duration::from_secs(5), tokio_postgres::connect(url, NoTls))
            .await
            .context("timed out after 5 s")??;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection ended: {e}");
        }
    });
    // The server default, but stated: acknowledged must mean durable, as in Keyplan.
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .context("SET synchronous_commit = on")?;
    Ok(client)
}

impl Postgres {
    /// The connection string in use.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops and recreates the events table, so each configuration starts empty.
    async fn reset_table(&self) -> Result<()> {
        self.admin
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {TABLE};
                 CREATE TABLE {TABLE} (
                     global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     stream_id text NOT NULL,
                     version bigint NOT NULL,
                     event_id uuid NOT NULL UNIQUE,
                     event_type text NOT NULL,
                     payload bytea NOT NULL,
                     recorded_at timestamptz NOT NULL DEFAULT now(),
                     UNIQUE (stream_id, version)
                 )"
            ))
            .await
            .with_context(|| format!("creating table {TABLE}"))
    }

    /// Drops the events table (at the end of the run).
    pub async fn drop_table(&self) -> Result<()> {
        self.admin
            .batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}"))
            .await
            .with_context(|| format!("dropping table {TABLE}"))
    }

    /// `clients` connections, each appending transactions of `events_per_tx` events to its own
    /// stream, for `warmup` plus `measured`.
    pub async fn measure(
        &self,
        clients: usize,
        events_per_tx: usize,
        warmup: Duration,
        measured: Duration,
    ) -> Result<Figures> {
        self.reset_table().await?;
        let mut setup = JoinSet::new();
        for i in 0..clients {
            let url = self.url.clone();
            setup.spawn(async move {
                let client = connect_one(&url).await?;
                let statements = Statements::prepare(&client).await?;
                Ok::<_, anyhow::Error>((client, statements, format!("acme-supplies/bench-{i}")))
            });
        }
        let mut connections = Vec::with_capacity(clients);
        while let Some(joined) = setup.join_next().await {
            connections.push(joined.context("a postgres setup task failed")??);
        }

        let window = Window::starting_now(warmup, measured);
        let mut load = JoinSet::new();
        for (client, statements, stream) in connections {
            load.spawn(append_loop(
                client,
                statements,
                stream,
                events_per_tx,
                window,
            ));
        }
        let mut total = Recorder::new()?;
        while let Some(joined) = load.join_next().await {
            total.merge(joined.context("a postgres client task failed")??)?;
        }
        Ok(total.figures(window.measured()))
    }
}

/// The two statements of an append, prepared once per connection.
struct Statements {
    current_version: Statement,
    insert: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Self> {
        Ok(Self {
            current_version: client
                .prepare(&format!(
                    "SELECT coalesce(max(version), 0)::bigint FROM {TABLE} WHERE stream_id = $1"
                ))
                .await
                .context("preparing the version query")?,
            insert: client
                .prepare(&format!(
                    "INSERT INTO {TABLE} (stream_id, version, event_id, event_type, payload)
                     SELECT $1, v, e, $4, p
                     FROM unnest($2::bigint[], $3::uuid[], $5::bytea[]) AS u(v, e, p)"
                ))
                .await
                .context("preparing the insert")?,
        })
    }
}

/// One connection's loop: read version, insert, commit, until the window ends.
async fn append_loop(
    mut client: Client,
    statements: Statements,
    stream: String,
    events_per_tx: usize,
    window: Window,
) -> Result<Recorder> {
    let event = event_bytes();
    let payloads: Vec<&[u8]> = vec![event.as_slice(); events_per_tx];
    let mut recorder = Recorder::new()?;
    loop {
        let ids: Vec<Uuid> = (0..events_per_tx).map(|_| Uuid::now_v7()).collect();
        let started = Instant::now();
        if window.is_over(started) {
            break;
        }
        let outcome = append(&mut client, &statements, &stream, &ids, &payloads).await;
        match outcome {
            Ok(()) => recorder.record(&window, started, Instant::now(), events_per_tx as u64),
            Err(e) => {
                recorder.error(|| format!("{e:#}"));
                if client.is_closed() {
                    break;
                }
            }
        }
    }
    Ok(recorder)
}

/// One append transaction.
async fn append(
    client: &mut Client,
    statements: &Statements,
    stream: &str,
    ids: &[Uuid],
    payloads: &[&[u8]],
) -> Result<()> {
    let tx = client.transaction().await.context("BEGIN")?;
    let current: i64 = tx
        .query_one(&statements.current_version, &[&stream])
        .await
        .context("reading the stream version")?
        .try_get(0)
        .context("decoding the stream version")?;
    let versions: Vec<i64> = (1..=ids.len() as i64).map(|i| current + i).collect();
    tx.execute(
        &statements.insert,
        &[&stream, &versions, &ids, &"InteractionLogged", &payloads],
    )
    .await
    .context("inserting the events")?;
    tx.commit().await.context("COMMIT")
}
