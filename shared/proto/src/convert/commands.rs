//! Commands: the `ExecuteRequest.command` oneof to and from `AccountCommand`, plus the
//! request and response envelope pieces that map onto the store's types.
//!
//! 25 of the 28 commands carry an event payload and reuse its conversion (`events.rs`), so a
//! command is validated exactly like the event it proposes. Only `AssessTier` and `ChangeTier`
//! (used by promote and demote) have messages of their own, because their events hold facts
//! the domain derives (the weighted score, the tier moved from).

use keyplan_domain::commands as cmd;
use keyplan_domain::{AccountCommand, DomainError};
use keyplan_store::{AppendOutcome, ExpectedVersion};

use super::events::{criteria_from_wire, criteria_to_wire};
use super::values::*;
use crate::pb;

/// Calls `$mac!` with every command name; `AccountCommand` variants and the
/// `ExecuteRequest.command` oneof variants share these names.
macro_rules! with_commands {
    ($mac:ident) => {
        $mac! {
            RegisterAccount,
            AssessTier,
            PromoteAccount,
            DemoteAccount,
            AssignTeamMember,
            UnassignTeamMember,
            DraftPlan,
            RevisePlanSection,
            SetObjective,
            ProgressObjective,
            IdentifyOpportunity,
            ChangeOpportunityStage,
            WinOpportunity,
            LoseOpportunity,
            AddActionItem,
            CompleteActionItem,
            CancelActionItem,
            RecordRevenue,
            AddStakeholder,
            ChangeStakeholderProfile,
            RecordStakeholderDeparture,
            SetEngagementRule,
            RetireEngagementRule,
            LogInteraction,
            CorrectInteraction,
            ScheduleReview,
            RecordReviewOutcome,
            CancelReview,
        }
    };
}

macro_rules! command_dispatch {
    ($($variant:ident),+ $(,)?) => {
        /// A command from the wire, validated field by field (ids, dates, enums, required
        /// sub-messages, integer ranges). Business rules are left to the domain's `decide`.
        pub fn command_from_proto(
            command: pb::command::Kind,
        ) -> Result<AccountCommand, DomainError> {
            use pb::command::Kind as Command;
            Ok(match command {
                $(Command::$variant(p) => AccountCommand::$variant(p.try_into()?),)+
            })
        }

        /// The wire form of a command, for Rust clients and tests; the inverse of
        /// [`command_from_proto`].
        pub fn command_to_proto(command: &AccountCommand) -> pb::command::Kind {
            use pb::command::Kind as Command;
            match command {
                $(AccountCommand::$variant(p) => Command::$variant(p.into()),)+
            }
        }
    };
}

with_commands!(command_dispatch);

impl TryFrom<pb::AssessTier> for cmd::AssessTier {
    type Error = DomainError;
    fn try_from(w: pb::AssessTier) -> Result<Self, DomainError> {
        Ok(Self {
            criteria: criteria_from_wire(w.criteria)?,
            recommended_tier: enumeration("recommended_tier", w.recommended_tier)?,
            assessed_by: id("assessed_by", w.assessed_by)?,
        })
    }
}

impl From<&cmd::AssessTier> for pb::AssessTier {
    fn from(c: &cmd::AssessTier) -> Self {
        Self {
            criteria: criteria_to_wire(&c.criteria),
            recommended_tier: c.recommended_tier.to_wire(),
            assessed_by: c.assessed_by.to_string(),
        }
    }
}

impl TryFrom<pb::ChangeTier> for cmd::ChangeTier {
    type Error = DomainError;
    fn try_from(w: pb::ChangeTier) -> Result<Self, DomainError> {
        Ok(Self {
            to: enumeration("to", w.to)?,
            reason: w.reason,
        })
    }
}

impl From<&cmd::ChangeTier> for pb::ChangeTier {
    fn from(c: &cmd::ChangeTier) -> Self {
        Self {
            to: c.to.to_wire(),
            reason: c.reason.clone(),
        }
    }
}

/// The store's concurrency check for a request's `expected_version`.
///
/// Absent means `Any`, so that additive facts need no ceremony; the domain decides which
/// commands must carry an exact version (`AccountCommand::edits_shared_content`). For `any`
/// and `no_stream` the variant being set is what counts, whatever its bool.
pub fn expected_version_from_proto(value: Option<&pb::ExpectedVersion>) -> ExpectedVersion {
    use pb::expected_version::Kind;
    match value.and_then(|v| v.kind) {
        None | Some(Kind::Any(_)) => ExpectedVersion::Any,
        Some(Kind::NoStream(_)) => ExpectedVersion::NoStream,
        Some(Kind::Exact(version)) => ExpectedVersion::Exact(version),
    }
}

/// The wire form of a successful append.
pub fn execute_response_to_proto(outcome: &AppendOutcome) -> pb::ExecuteResponse {
    pb::ExecuteResponse {
        first_version: outcome.first_version,
        last_version: outcome.last_version,
        first_position: outcome.first_position,
        last_position: outcome.last_position,
        event_ids: outcome.event_ids.iter().map(ToString::to_string).collect(),
        deduplicated: outcome.deduplicated,
    }
}
