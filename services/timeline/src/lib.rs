//! The timeline of key accounts: every event as one human-readable entry, in business-time
//! order, for the whole account or one plan, stakeholder, team member or opportunity; paged
//! with stable cursors, filtered, and live.
//!
//! - [`projection::TimelineProjection`]: the read model (a [`keyplan_projection::Projection`],
//!   checkpointed and rebuildable), with per-account indexes so that a page costs a few
//!   B-tree steps whatever the size of the log;
//! - `directory`: what each summary says, written as a template that names people and things
//!   by reference;
//! - `names`: what people and things were called at each business time; a summary is
//!   resolved when it is read, naming them as they were at its entry's `occurred_at`;
//! - [`query`]: scopes, filters, order and the opaque page token;
//! - [`TimelineApi`]: `keyplan.v1.TimelineService` (`ListTimeline`, `WatchTimeline`);
//! - [`status`]: the one mapping from [`TimelineError`] to gRPC statuses.
//!
//! Corrections show as corrections: an `InteractionCorrected` entry points at the entry it
//! corrects (`corrects_position`), and that entry is shown with `corrected_by_position`, but
//! stays in the timeline unchanged, as auditors need.

mod directory;
pub mod error;
#[cfg(test)]
mod fixture_tests;
mod names;
pub mod projection;
#[cfg(test)]
mod property_tests;
pub mod query;
mod service;
pub mod status;

pub use directory::SubjectKey;
pub use error::TimelineError;
pub use projection::{Subjects, TimelineEntry, TimelinePage, TimelineProjection};
pub use query::{Cursor, Order, Scope, TimelineQuery};
pub use service::{entry_to_proto, TimelineApi};
