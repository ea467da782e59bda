//! Running a projection: consume, apply, and commit state and checkpoint together.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::event::ProjectedEvent;
use crate::shared_feed::Delivery;
use crate::source::EventSource;
use crate::store::{Batch, ReadModelDb, Tree};
use crate::ProjectionError;

/// Keys starting with this byte are the runner's (the checkpoint); projections must not use it.
pub const RESERVED_PREFIX: u8 = 0;

/// Where the checkpoint lives in the projection's tree.
const CHECKPOINT_KEY: &[u8] = b"\0checkpoint";

/// Where the format the tree was written in lives ([`Projection::format`]); a tree without it
/// was written in format 1.
const FORMAT_KEY: &[u8] = b"\0format";

/// Most events applied per commit.
const MAX_BATCH: usize = 8192;

/// A read model fed by events.
///
/// Implementations keep their state in memory behind a cheap, cloneable handle (the services
/// read it while the runner writes), or the part of it in use (compliance and activity, through
/// the `resident` module), and persist it to their tree in [`Projection::flush`].
pub trait Projection: Clone + Default + Send + Sync + 'static {
    /// Stable name: the tree and the checkpoint belong to it.
    fn name(&self) -> &'static str;

    /// Replaces the in-memory state by what the tree holds (at start). Entries whose key
    /// starts with [`RESERVED_PREFIX`] are the runner's and must be skipped.
    fn load(&self, tree: &Tree) -> Result<(), ProjectionError>;

    /// Applies one event to the in-memory state. Must not fail: events are facts.
    fn apply(&self, event: &ProjectedEvent);

    /// Writes everything changed since the last flush into `batch`.
    fn flush(&self, batch: &mut Batch) -> Result<(), ProjectionError>;

    /// The batch of the last [`Projection::flush`] is applied to the tree: state held only
    /// for that flush (or in memory only until the tree had it) may go. Not called when the
    /// batch failed.
    fn committed(&self) {}

    /// Replaces this (serving) instance's state by the state of `rebuilt`, a fresh instance
    /// that was rebuilt from the log, so that every clone held by the services sees the new
    /// state at once. Returns `false` if the projection does not support online rebuilds.
    fn adopt(&self, rebuilt: Self) -> bool {
        let _ = rebuilt;
        false
    }

    /// A new, empty instance (for a rebuild).
    fn empty(&self) -> Self {
        Self::default()
    }

    /// The version of what [`Projection::flush`] writes. Raise it when the stored layout
    /// changes in a way [`Projection::load`] cannot read: at its next start the runner finds
    /// the older format, forgets that state and rebuilds it from the log, instead of stopping
    /// on state it cannot decode (read models are derived data; the log is the truth).
    fn format(&self) -> u32 {
        1
    }
}

/// A request to a running projection.
#[derive(Debug)]
pub enum Control {
    /// Rebuild from position 1 into a new generation while the current one keeps serving;
    /// progress (and the final report) go to the sender.
    Rebuild(mpsc::Sender<RebuildProgress>),
}

/// Progress of an online rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Events applied by the new generation so far.
    pub position: u64,
    /// What it is catching up to (the serving generation's position).
    pub target: u64,
    /// The new generation has replaced the old one.
    pub done: bool,
    /// The rebuild failed (the old generation keeps serving).
    pub error: Option<String>,
}

/// What services see of a running projection: how far it got.
#[derive(Debug, Clone)]
pub struct ProjectionHandle {
    name: &'static str,
    position: watch::Receiver<u64>,
    control: Option<mpsc::UnboundedSender<Control>>,
    stopped: watch::Receiver<Option<String>>,
    interruptions: Arc<AtomicU64>,
}

impl ProjectionHandle {
    /// The projection's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Why the projection stopped for good (an event it cannot apply, a commit that failed),
    /// `None` while it runs or after a clean shutdown. Its service keeps answering from where
    /// it stopped, so this is what tells an operator that the answers no longer move.
    pub fn stopped(&self) -> Option<String> {
        self.stopped.borrow().clone()
    }

    /// A feed of [`Self::stopped`], to report it (health) as it happens.
    pub fn watch_stopped(&self) -> watch::Receiver<Option<String>> {
        self.stopped.clone()
    }

    /// How many times its feed was interrupted (NATS away, a consumer lost or gone silent)
    /// and read again from its position: a count that keeps rising while NATS looks healthy
    /// points at a stream peer that does not catch up.
    pub fn interruptions(&self) -> u64 {
        self.interruptions.load(Ordering::Relaxed)
    }

    /// The last global position applied and committed.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Asks the running projection to rebuild itself online; progress arrives on the receiver.
    pub fn rebuild(&self) -> Result<mpsc::Receiver<RebuildProgress>, ProjectionError> {
        let (tx, rx) = mpsc::channel(64);
        let control = self
            .control
            .as_ref()
            .ok_or_else(|| ProjectionError::Rebuild(format!("{} is not running", self.name)))?;
        control
            .send(Control::Rebuild(tx))
            .map_err(|_| ProjectionError::Rebuild(format!("{} is not running", self.name)))?;
        Ok(rx)
    }

    /// Read-your-writes for a query carrying `min_position` (0: no wait): waits up to
    /// [`READ_YOUR_WRITES_TIMEOUT`] for the projection to apply it. Each service maps the
    /// error to its own UNAVAILABLE answer.
    pub async fn catch_up(&self, min_position: u64) -> Result<(), NotCaughtUp> {
        if min_position == 0 || self.wait_for(min_position, READ_YOUR_WRITES_TIMEOUT).await {
            return Ok(());
        }
        Err(NotCaughtUp {
            projection: self.name,
            applied: self.position(),
            wanted: min_position,
            waited: READ_YOUR_WRITES_TIMEOUT,
        })
    }

    /// Waits until the projection has applied `position` (read-your-writes); `false` on timeout.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.position.clone();
        tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// How long a query waits for its `min_position` before it is answered UNAVAILABLE.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// A query asked to read at a position this node's projection has not applied in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this node's {projection} read model has applied events up to position {applied} and did \
     not reach position {wanted} within {waited:?}; retry, or ask a node that is further along"
)]
pub struct NotCaughtUp {
    /// The projection.
    pub projection: &'static str,
    /// Where it is.
    pub applied: u64,
    /// What the caller asked for.
    pub wanted: u64,
    /// How long the request waited.
    pub waited: Duration,
}

/// Feeds one projection from a source, committing state and checkpoint atomically.
///
/// Events are applied to memory as they arrive (queries see them at once); what changed is
/// committed to the store, with the checkpoint, every [`COMMIT_INTERVAL`] under load and once the
/// feed has been idle for [`IDLE_COMMIT_DELAY`]. A crash loses at most that much progress,
/// which is then re-applied from the checkpoint: never twice, never skipped.
pub struct ProjectionRunner<P: Projection> {
    projection: P,
    db: ReadModelDb,
    tree: Tree,
    generation: u64,
    source: EventSource,
    control: mpsc::UnboundedReceiver<Control>,
    rebuild: Option<Rebuilding<P>>,
    /// Last position applied in memory (what queries see).
    applied: watch::Sender<u64>,
    /// Last position committed to the store with the state.
    committed: u64,
    last_commit: Instant,
    /// Why the runner stopped for good (see [`ProjectionHandle::stopped`]).
    stopped: watch::Sender<Option<String>>,
    /// See [`ProjectionHandle::interruptions`].
    interruptions: Arc<AtomicU64>,
    /// Turns true when the node shuts down (`None`: runs until the source closes).
    shutdown: Option<watch::Receiver<bool>>,
}

/// Longest time applied events stay uncommitted under sustained load.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// How long the feed must be idle before applied events are committed (so a node that goes
/// quiet has its checkpoint on disk almost at once, without committing between the pages of
/// a catch-up).
pub const IDLE_COMMIT_DELAY: Duration = Duration::from_millis(20);

impl<P: Projection> std::fmt::Debug for ProjectionRunner<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("name", &self.projection.name())
            .finish_non_exhaustive()
    }
}

impl<P: Projection> ProjectionRunner<P> {
    /// Opens the projection's current generation in `db`, loads its state and checkpoint.
    pub fn open(
        db: &ReadModelDb,
        projection: P,
        source: EventSource,
    ) -> Result<(Self, ProjectionHandle), ProjectionError> {
        let generation = current_generation(db, projection.name())?;
        Self::open_generation(db, projection, source, generation)
    }

    fn open_generation(
        db: &ReadModelDb,
        projection: P,
        source: EventSource,
        generation: u64,
    ) -> Result<(Self, ProjectionHandle), ProjectionError> {
        let tree = db.open_tree(&tree_name(projection.name(), generation))?;
        let stored_format = read_format(&tree, projection.name())?;
        if stored_format != projection.format() {
            if read_checkpoint(&tree, projection.name())? > 0 {
                tracing::warn!(
                    projection = projection.name(),
                    stored_format,
                    format = projection.format(),
                    "stored state is in another format: rebuilding it from the log"
                );
            }
            tree.clear()?;
            tree.insert(FORMAT_KEY, projection.format().to_be_bytes())?;
        }
        let checkpoint = read_checkpoint(&tree, projection.name())?;
        projection.load(&tree)?;
        let (applied, rx) = watch::channel(checkpoint);
        let (control_tx, control) = mpsc::unbounded_channel();
        let (stopped, stopped_rx) = watch::channel(None);
        let interruptions = Arc::new(AtomicU64::new(0));
        let handle = ProjectionHandle {
            name: projection.name(),
            position: rx,
            control: Some(control_tx),
            stopped: stopped_rx,
            interruptions: Arc::clone(&interruptions),
        };
        let runner = Self {
            projection,
            db: db.clone(),
            tree,
            generation,
            source,
            control,
            rebuild: None,
            applied,
            committed: checkpoint,
            last_commit: Instant::now(),
            stopped,
            interruptions,
            shutdown: None,
        };
        Ok((runner, handle))
    }

    /// Forgets a projection's state and checkpoint (every generation), so that it is rebuilt
    /// from position 1 the next time it is opened.
    pub fn reset(db: &ReadModelDb, name: &str) -> Result<(), ProjectionError> {
        let generation = current_generation(db, name)?;
        for g in 0..=generation {
            db.drop_tree(&tree_name(name, g))?;
        }
        db.open_tree(GENERATIONS_TREE)?.remove(name)?;
        Ok(())
    }

    /// The last position applied (in memory).
    pub fn position(&self) -> u64 {
        *self.applied.borrow()
    }

    /// The last position committed to the store.
    pub fn checkpoint(&self) -> u64 {
        self.committed
    }

    /// Makes [`Self::run`] return, after committing what it applied, once `shutdown` turns
    /// true (or its sender is dropped): a node stopping must not lose a runner's progress nor
    /// wait for a feed that never ends.
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Consumes events until the source closes or the shutdown signal comes (see
    /// [`Self::with_shutdown`]), retrying (from the last applied position) when the feed
    /// fails. An error that a retry cannot fix stops it, and [`ProjectionHandle::stopped`]
    /// says why.
    pub async fn run(mut self) -> Result<(), ProjectionError> {
        let result = self.run_retrying().await;
        if let Err(e) = &result {
            tracing::error!(projection = self.projection.name(), error = %e, "projection stopped");
            self.stopped.send_replace(Some(e.to_string()));
        }
        result
    }

    async fn run_retrying(&mut self) -> Result<(), ProjectionError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            let result = self.run_once(u64::MAX).await;
            self.commit().await?;
            match result {
                Ok(()) => return Ok(()),
                Err(
                    e @ (ProjectionError::OutOfOrder { .. }
                    | ProjectionError::Decode { .. }
                    | ProjectionError::Corrupt { .. }),
                ) => return Err(e),
                Err(e) => {
                    self.interruptions.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(projection = self.projection.name(), error = %e, retry_in = ?backoff, "projection feed interrupted");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown_requested(&mut self.shutdown) => return Ok(()),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Applies and commits events until `until` (or the source closes): for rebuilds and tests.
    pub async fn run_until(&mut self, until: u64) -> Result<(), ProjectionError> {
        let result = self.run_once(until).await;
        self.commit().await?;
        result
    }

    /// A rebuild generation's catch-up: [`Self::run_until`] behind a box, since the serving
    /// runner's loop (which finishes rebuilds) and a rebuild generation's loop are the same code.
    fn catch_up_to(
        &mut self,
        until: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ProjectionError>> + Send + '_>>
    {
        Box::pin(self.run_until(until))
    }

    async fn run_once(&mut self, until: u64) -> Result<(), ProjectionError> {
        if self.position() >= until {
            return Ok(());
        }
        let mut feed = self.source.open(self.position() + 1).await?;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while self.position() < until {
            // Applied but uncommitted events are committed once the feed has been idle for
            // IDLE_COMMIT_DELAY, not as soon as the channel is momentarily empty: under live
            // load the channel empties between almost every batch, and committing each time
            // (every commit rewrites the last chunk of each changed account) took CPU the
            // write path needed (keyplan-bench, all-in-one 64x1: 8.6k -> 11.8k events/s).
            let uncommitted = self.position() > self.committed;
            let first = tokio::select! {
                next = feed.next() => next,
                Some(control) = self.control.recv() => {
                    self.handle_control(control);
                    continue;
                }
                finished = wait_rebuild(&mut self.rebuild) => {
                    self.finish_rebuild(finished).await;
                    continue;
                }
                () = tokio::time::sleep(IDLE_COMMIT_DELAY), if uncommitted => {
                    self.commit().await?;
                    continue;
                }
                // The caller commits what was applied.
                () = shutdown_requested(&mut self.shutdown) => return Ok(()),
            };
            let Some(first) = first else { return Ok(()) };
            batch.push(first);
            let room =
                MAX_BATCH.min(until.saturating_sub(self.position()).min(MAX_BATCH as u64) as usize);
            while batch.len() < room {
                match feed.next_within(Duration::ZERO).await {
                    Some(Some(next)) => batch.push(next),
                    _ => break,
                }
            }
            self.apply(&mut batch)?;
            if self.last_commit.elapsed() >= COMMIT_INTERVAL {
                self.commit().await?;
            }
        }
        Ok(())
    }

    fn handle_control(&mut self, control: Control) {
        match control {
            Control::Rebuild(progress) => {
                if self.rebuild.is_some() {
                    let _ = progress.try_send(RebuildProgress {
                        position: 0,
                        target: self.position(),
                        done: false,
                        error: Some(format!(
                            "{} is already being rebuilt",
                            self.projection.name()
                        )),
                    });
                    return;
                }
                match self.start_rebuild(progress.clone()) {
                    Ok(rebuilding) => self.rebuild = Some(rebuilding),
                    Err(e) => {
                        let _ = progress.try_send(RebuildProgress {
                            position: 0,
                            target: self.position(),
                            done: false,
                            error: Some(e.to_string()),
                        });
                    }
                }
            }
        }
    }

    /// Starts building the next generation in a task of its own, from position 1, following
    /// this (serving) runner's position until it is close behind.
    fn start_rebuild(
        &mut self,
        progress: mpsc::Sender<RebuildProgress>,
    ) -> Result<Rebuilding<P>, ProjectionError> {
        let next_generation = self.generation + 1;
        let name = self.projection.name();
        self.db.drop_tree(&tree_name(name, next_generation))?;
        let fresh = self.projection.empty();
        // Its own feed: from position 1 it would hold a shared feed's other projections back.
        let (mut child, child_handle) = ProjectionRunner::open_generation(
            &self.db,
            fresh,
            self.source.private(),
            next_generation,
        )?;
        let live = self.applied.subscribe();
        let reporter_progress = progress.clone();
        let reporter_live = live.clone();
        let reporter = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let update = RebuildProgress {
                    position: child_handle.position(),
                    target: *reporter_live.borrow(),
                    done: false,
                    error: None,
                };
                if reporter_progress.send(update).await.is_err() {
                    return;
                }
            }
        });
        let task = tokio::spawn(async move {
            loop {
                let target = *live.borrow();
                child.catch_up_to(target).await?;
                if live.borrow().saturating_sub(child.position()) <= CLOSE_ENOUGH {
                    return Ok(child);
                }
            }
        });
        tracing::info!(
            projection = name,
            generation = next_generation,
            "rebuild started"
        );
        Ok(Rebuilding {
            task,
            reporter,
            progress,
        })
    }

    /// Brings the new generation exactly to this runner's position, then swaps it in: the
    /// services see the rebuilt state, the old generation's tree is dropped.
    async fn finish_rebuild(
        &mut self,
        finished: (
            Result<Result<Self, ProjectionError>, tokio::task::JoinError>,
            Rebuilding<P>,
        ),
    ) {
        let (result, rebuilding) = finished;
        rebuilding.reporter.abort();
        let progress = rebuilding.progress;
        let outcome = async {
            let mut child = result.map_err(|e| ProjectionError::Rebuild(e.to_string()))??;
            child.catch_up_to(self.position()).await?;
            if child.position() != self.position() {
                return Err(ProjectionError::Rebuild(format!(
                    "the new generation reached {} but the serving one is at {}",
                    child.position(),
                    self.position()
                )));
            }
            Ok(child)
        }
        .await;
        let report = match outcome {
            Ok(child) => {
                let position = child.position();
                let old = std::mem::replace(&mut self.tree, child.tree.clone());
                if !self.projection.adopt(child.projection) {
                    self.tree = old;
                    Err(ProjectionError::Rebuild(format!(
                        "{} cannot be rebuilt online",
                        self.projection.name()
                    )))
                } else {
                    let swap = (|| -> Result<(), ProjectionError> {
                        self.db
                            .open_tree(GENERATIONS_TREE)?
                            .insert(self.projection.name(), child.generation.to_be_bytes())?;
                        self.db.drop_tree(&old.name())?;
                        Ok(())
                    })();
                    self.generation = child.generation;
                    self.committed = child.committed;
                    tracing::info!(
                        projection = self.projection.name(),
                        generation = self.generation,
                        position,
                        "rebuild done"
                    );
                    swap.map(|()| position)
                }
            }
            Err(e) => Err(e),
        };
        let update = match report {
            Ok(position) => RebuildProgress {
                position,
                target: position,
                done: true,
                error: None,
            },
            Err(e) => {
                tracing::warn!(projection = self.projection.name(), error = %e, "rebuild failed; the old generation keeps serving");
                RebuildProgress {
                    position: 0,
                    target: self.position(),
                    done: false,
                    error: Some(e.to_string()),
                }
            }
        };
        let _ = progress.send(update).await;
    }

    /// Applies a batch in memory, in order. On a bad event, what came before it stays applied
    /// (and is committed by the caller), so memory and the checkpoint never disagree.
    fn apply(&mut self, events: &mut Vec<Delivery>) -> Result<(), ProjectionError> {
        let mut next = self.position() + 1;
        let span = tracing::debug_span!(
            "projection_batch",
            projection = self.projection.name(),
            from = next,
            events = events.len(),
            to = tracing::field::Empty,
        );
        let _entered = span.enter();
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
        span.record("to", next - 1);
        if next - 1 > self.position() {
            self.applied.send_replace(next - 1);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes the changed state and the checkpoint in one atomic batch.
    ///
    /// Encoding and writing a commit is blocking work (milliseconds for a busy interval), so
    /// it runs on the blocking pool rather than on one of the runtime's workers, which serve
    /// gRPC (one per core). Nothing is applied meanwhile (this runner awaits it), so the flush
    /// still holds exactly what was applied.
    async fn commit(&mut self) -> Result<(), ProjectionError> {
        let applied = self.position();
        if applied > self.committed {
            let projection = self.projection.clone();
            let tree = self.tree.clone();
            let span = tracing::debug_span!(
                "projection_commit",
                projection = self.projection.name(),
                from = self.committed + 1,
                to = applied,
            );
            tokio::task::spawn_blocking(move || -> Result<(), ProjectionError> {
                let _entered = span.enter();
                let mut batch = Batch::default();
                projection.flush(&mut batch)?;
                batch.insert(CHECKPOINT_KEY, applied.to_be_bytes());
                tree.apply_batch(batch)?;
                projection.committed();
                Ok(())
            })
            .await
            .map_err(|e| ProjectionError::Commit(e.to_string()))??;
            self.committed = applied;
        }
        self.last_commit = Instant::now();
        Ok(())
    }
}

/// Completes once the node shuts down; never for a runner without a shutdown signal.
async fn shutdown_requested(shutdown: &mut Option<watch::Receiver<bool>>) {
    match shutdown {
        Some(shutdown) => {
            let _ = shutdown.wait_for(|stop| *stop).await;
        }
        None => std::future::pending().await,
    }
}

/// A rebuild in progress: the task building the next generation, the task reporting its
/// progress, and where to report.
struct Rebuilding<P: Projection> {
    task: tokio::task::JoinHandle<Result<ProjectionRunner<P>, ProjectionError>>,
    reporter: tokio::task::JoinHandle<()>,
    progress: mpsc::Sender<RebuildProgress>,
}

/// Completes when the rebuild task (if any) finishes; never otherwise.
async fn wait_rebuild<P: Projection>(
    rebuild: &mut Option<Rebuilding<P>>,
) -> (
    Result<Result<ProjectionRunner<P>, ProjectionError>, tokio::task::JoinError>,
    Rebuilding<P>,
) {
    match rebuild {
        Some(r) => {
            let result = (&mut r.task).await;
            let taken = rebuild.take();
            match taken {
                Some(taken) => (result, taken),
                None => std::future::pending().await,
            }
        }
        None => std::future::pending().await,
    }
}

/// How far behind the serving generation the new one may be when the swap starts (the rest is
/// applied while the serving runner waits).
const CLOSE_ENOUGH: u64 = 1000;

/// Which generation of each projection is current (name → u64).
const GENERATIONS_TREE: &str = "projection-generations";

fn current_generation(db: &ReadModelDb, name: &str) -> Result<u64, ProjectionError> {
    match db.open_tree(GENERATIONS_TREE)?.get(name)? {
        None => Ok(0),
        Some(v) => Ok(u64::from_be_bytes(fixed(&v, name, "generation")?)),
    }
}

/// Generation 0 lives in the tree named after the projection; later ones in `name@g`.
fn tree_name(name: &str, generation: u64) -> String {
    if generation == 0 {
        name.to_owned()
    } else {
        format!("{name}@{generation}")
    }
}

/// The format `tree` was written in: 1 when it says nothing (written before formats were
/// recorded), 0 for a tree with no checkpoint either (nothing written yet: any format fits
/// it, and it gets the projection's).
fn read_format(tree: &Tree, name: &str) -> Result<u32, ProjectionError> {
    match tree.get(FORMAT_KEY)? {
        None if tree.get(CHECKPOINT_KEY)?.is_none() => Ok(0),
        None => Ok(1),
        Some(v) => Ok(u32::from_be_bytes(fixed(&v, name, "format")?)),
    }
}

fn read_checkpoint(tree: &Tree, name: &str) -> Result<u64, ProjectionError> {
    match tree.get(CHECKPOINT_KEY)? {
        None => Ok(0),
        Some(v) => Ok(u64::from_be_bytes(fixed(&v, name, "checkpoint")?)),
    }
}

/// A stored big-endian number's `N` bytes; any other length means the runner's own record
/// (`what`) of projection `name` is damaged.
fn fixed<const N: usize>(value: &[u8], name: &str, what: &str) -> Result<[u8; N], ProjectionError> {
    value.try_into().map_err(|_| ProjectionError::Corrupt {
        name: name.to_owned(),
        reason: format!("{what} is not {N} bytes"),
    })
}
