//! Projections: read models built by consuming Keyplan's events in global order.
//!
//! A [`Projection`] folds events into in-memory state and, once per batch, writes what changed
//! into its own tree of the read models' database ([`store`], fjall). The [`runner`] stores the
//! projection's checkpoint (the last global position applied) **in the same batch** as the
//! state change, and the store applies a batch atomically and recovers a prefix of batches
//! after a crash, so a crash can lose recent work
//! but never apply an event twice or skip one: the projection reloads its state as of its
//! checkpoint and continues from the next position.
//!
//! Events come from a [`source`]: the local log (all-in-one process) or JetStream (a separate
//! projections process). Both speak global positions, since the JetStream sequence equals the
//! position.

pub mod event;
pub mod foreign;
pub mod id_index;
pub mod resident;
pub mod runner;
pub mod shared_feed;
pub mod shared_state;
pub mod source;
pub mod store;
pub mod stored;

pub use event::ProjectedEvent;
pub use foreign::{foreign_messages, ForeignMessages};
pub use id_index::IdIndex;
pub use resident::{AccountFold, AccountSlot, ResidentAccounts};
pub use runner::{
    NotCaughtUp, Projection, ProjectionHandle, ProjectionRunner, RebuildProgress,
    READ_YOUR_WRITES_TIMEOUT,
};
pub use shared_feed::SharedFeed;
pub use shared_state::DirtyAccounts;
pub use source::EventSource;
pub use store::{Batch, ReadModelDb, SnapshotPiece, SnapshotSize, Tree, Value, READ_MODELS_DIR};

use thiserror::Error;

/// Why a projection stopped.
#[derive(Debug, Error)]
pub enum ProjectionError {
    /// The read models' database failed.
    #[error("read-model store: {0}")]
    ReadModelStore(#[from] fjall::Error),
    /// The local log failed.
    #[error(transparent)]
    Store(#[from] keyplan_store::StoreError),
    /// An event cannot be decoded.
    #[error("event at position {position} cannot be decoded: {reason}")]
    Decode {
        /// Where.
        position: u64,
        /// Why.
        reason: String,
    },
    /// JetStream failed.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// Reading events failed (a shared feed passing on its source's error, or stopped).
    #[error("reading events: {0}")]
    Feed(String),
    /// The source skipped or repeated a position.
    #[error("expected position {expected}, got {got}: {hint}")]
    OutOfOrder {
        /// Next position the projection needs.
        expected: u64,
        /// Position the source delivered.
        got: u64,
        /// What to do about it.
        hint: &'static str,
    },
    /// An online rebuild could not be started or finished (the old generation keeps serving).
    #[error("rebuild: {0}")]
    Rebuild(String),
    /// The task writing a commit died: the projection stops, and its next start resumes from
    /// the last committed checkpoint (a commit is one atomic batch).
    #[error("committing state and checkpoint: {0}")]
    Commit(String),
    /// The projection's stored state is unreadable.
    #[error("stored state of projection {name} is corrupt: {reason}")]
    Corrupt {
        /// Projection.
        name: String,
        /// Why.
        reason: String,
    },
}

impl ProjectionError {
    /// The same error for another projection (a shared feed tells each projection it serves):
    /// the kinds the runner tells apart stay what they are; the store's own errors, which
    /// cannot be cloned, become [`ProjectionError::Feed`] with their message (the runner
    /// retries both alike).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Decode { position, reason } => Self::Decode {
                position: *position,
                reason: reason.clone(),
            },
            Self::JetStream(reason) => Self::JetStream(reason.clone()),
            Self::Feed(reason) => Self::Feed(reason.clone()),
            Self::OutOfOrder {
                expected,
                got,
                hint,
            } => Self::OutOfOrder {
                expected: *expected,
                got: *got,
                hint,
            },
            Self::Rebuild(reason) => Self::Rebuild(reason.clone()),
            Self::Commit(reason) => Self::Commit(reason.clone()),
            Self::Corrupt { name, reason } => Self::Corrupt {
                name: name.clone(),
                reason: reason.clone(),
            },
            Self::ReadModelStore(_) | Self::Store(_) => Self::Feed(self.to_string()),
        }
    }
}
