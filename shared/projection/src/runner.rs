//! Running a projection: consume, apply, and commit state and checkpoint together.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::event::ProjectedEvent;
use crate::source::EventSource;
use crate::ProjectionError;

/// Keys starting with this byte are the runner's (the checkpoint); projections must not use it.
pub const RESERVED_PREFIX: u8 = 0;

/// Where the checkpoint lives in the projection's tree.
const CHECKPOINT_KEY: &[u8] = b"\0checkpoint";

/// Most events applied per commit.
const MAX_BATCH: usize = 8192;

/// A read model fed by events.
///
/// Implementations keep their state in memory behind a cheap, cloneable handle (the services
/// read it while the runner writes), and persist it to their sled tree in [`Projection::flush`].
pub trait Projection: Clone + Send + Sync + 'static {
    /// Stable name: the sled tree and the checkpoint belong to it.
    fn name(&self) -> &'static str;

    /// Replaces the in-memory state by what the tree holds (at start). Entries whose key
    /// starts with [`RESERVED_PREFIX`] are the runner's and must be skipped.
    fn load(&self, tree: &sled::Tree) -> Result<(), ProjectionError>;

    /// Applies one event to the in-memory state. Must not fail: events are facts.
    fn apply(&self, event: &ProjectedEvent);

    /// Writes everything changed since the last flush into `batch`.
    fn flush(&self, batch: &mut sled::Batch) -> Result<(), ProjectionError>;
}

/// What services see of a running projection: how far it got.
#[derive(Debug, Clone)]
pub struct ProjectionHandle {
    name: &'static str,
    position: watch::Receiver<u64>,
}

impl ProjectionHandle {
    /// The projection's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The last global position applied and committed.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until the projection has applied `position` (read-your-writes); `false` on timeout.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.position.clone();
        tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Feeds one projection from a source, committing state and checkpoint atomically.
///
/// Events are applied to memory as they arrive (queries see them at once); what changed is
/// committed to sled, with the checkpoint, at most every [`COMMIT_INTERVAL`] under load and
/// whenever the feed goes quiet. A crash loses at most that much progress, which is then
/// re-applied from the checkpoint: never twice, never skipped.
pub struct ProjectionRunner<P: Projection> {
    projection: P,
    tree: sled::Tree,
    source: EventSource,
    /// Last position applied in memory (what queries see).
    applied: watch::Sender<u64>,
    /// Last position committed to sled with the state.
    committed: u64,
    last_commit: Instant,
}

/// Longest time applied events stay uncommitted under sustained load.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(500);

impl<P: Projection> std::fmt::Debug for ProjectionRunner<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner").field("name", &self.projection.name()).finish_non_exhaustive()
    }
}

impl<P: Projection> ProjectionRunner<P> {
    /// Opens the projection's tree in `db`, loads its state and checkpoint.
    pub fn open(db: &sled::Db, projection: P, source: EventSource) -> Result<(Self, ProjectionHandle), ProjectionError> {
        let tree = db.open_tree(projection.name())?;
        let checkpoint = read_checkpoint(&tree, projection.name())?;
        projection.load(&tree)?;
        let (applied, rx) = watch::channel(checkpoint);
        let handle = ProjectionHandle { name: projection.name(), position: rx };
        Ok((Self { projection, tree, source, applied, committed: checkpoint, last_commit: Instant::now() }, handle))
    }

    /// Forgets a projection's state and checkpoint, so that it is rebuilt from position 1 the
    /// next time it is opened.
    pub fn reset(db: &sled::Db, name: &str) -> Result<(), ProjectionError> {
        db.drop_tree(name)?;
        Ok(())
    }

    /// The last position applied (in memory).
    pub fn position(&self) -> u64 {
        *self.applied.borrow()
    }

    /// The last position committed to sled.
    pub fn checkpoint(&self) -> u64 {
        self.committed
    }

    /// Consumes events until the source closes, retrying (from the last applied position)
    /// when it fails.
    pub async fn run(mut self) -> Result<(), ProjectionError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            let result = self.run_once(u64::MAX).await;
            self.commit()?;
            match result {
                Ok(()) => return Ok(()),
                Err(
                    e @ (ProjectionError::OutOfOrder { .. }
                    | ProjectionError::Decode { .. }
                    | ProjectionError::Corrupt { .. }),
                ) => {
                    tracing::error!(projection = self.projection.name(), error = %e, "projection stopped");
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(projection = self.projection.name(), error = %e, retry_in = ?backoff, "projection feed interrupted");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Applies and commits events until `until` (or the source closes): for rebuilds and tests.
    pub async fn run_until(&mut self, until: u64) -> Result<(), ProjectionError> {
        let result = self.run_once(until).await;
        self.commit()?;
        result
    }

    async fn run_once(&mut self, until: u64) -> Result<(), ProjectionError> {
        if self.position() >= until {
            return Ok(());
        }
        let mut feed = self.source.open(self.position() + 1).await?;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while self.position() < until {
            let Some(first) = feed.next().await else { return Ok(()) };
            batch.push(first);
            let room = MAX_BATCH.min(until.saturating_sub(self.position()).min(MAX_BATCH as u64) as usize);
            let mut quiet = false;
            while batch.len() < room {
                match feed.next_within(Duration::ZERO).await {
                    Some(Some(next)) => batch.push(next),
                    _ => {
                        quiet = true;
                        break;
                    }
                }
            }
            self.apply(&mut batch)?;
            if quiet || self.last_commit.elapsed() >= COMMIT_INTERVAL {
                self.commit()?;
            }
        }
        Ok(())
    }

    /// Applies a batch in memory, in order. On a bad event, what came before it stays applied
    /// (and is committed by the caller), so memory and the checkpoint never disagree.
    fn apply(&mut self, events: &mut Vec<Result<ProjectedEvent, ProjectionError>>) -> Result<(), ProjectionError> {
        let mut next = self.position() + 1;
        let mut failure = None;
        for event in events.drain(..) {
            match event {
                Ok(event) if event.position == next => {
                    self.projection.apply(&event);
                    next += 1;
                }
                Ok(event) if event.position < next => {} // a redelivery: already applied
                Ok(event) => {
                    failure = Some(ProjectionError::OutOfOrder {
                        expected: next,
                        got: event.position,
                        hint: "the source no longer holds every event (JetStream limits?); rebuild from the log",
                    });
                    break;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        events.clear();
        if next - 1 > self.position() {
            self.applied.send_replace(next - 1);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes the changed state and the checkpoint in one atomic sled batch.
    fn commit(&mut self) -> Result<(), ProjectionError> {
        let applied = self.position();
        if applied > self.committed {
            let mut batch = sled::Batch::default();
            self.projection.flush(&mut batch)?;
            batch.insert(CHECKPOINT_KEY, &applied.to_be_bytes());
            self.tree.apply_batch(batch)?;
            self.committed = applied;
        }
        self.last_commit = Instant::now();
        Ok(())
    }
}

fn read_checkpoint(tree: &sled::Tree, name: &str) -> Result<u64, ProjectionError> {
    match tree.get(CHECKPOINT_KEY)? {
        None => Ok(0),
        Some(v) => {
            let bytes: [u8; 8] = v
                .as_ref()
                .try_into()
                .map_err(|_| ProjectionError::Corrupt {
                    name: name.to_owned(),
                    reason: "checkpoint is not 8 bytes".into(),
                })?;
            Ok(u64::from_be_bytes(bytes))
        }
    }
}
