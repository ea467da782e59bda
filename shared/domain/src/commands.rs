//! Commands: requests to record new facts in a key account's stream.
//!
//! Most commands propose exactly the event they want recorded, so they carry the event's
//! payload type; [`crate::decide`] validates the proposal against the account's current state.
//! Commands whose event holds derived facts (a weighted score, the tier moved from) have their
//! own payload types.

use serde::{Deserialize, Serialize};

use crate::events::*;
use crate::ids::PersonId;
use crate::values::Tier;

/// Score an account against weighted criteria; the weighted score is computed by the domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessTier {
    /// Criteria scored 1-10 with their weights.
    pub criteria: Vec<TierCriterion>,
    /// The tier the assessor recommends.
    pub recommended_tier: Tier,
    /// Who assessed.
    pub assessed_by: PersonId,
}

/// Move an account to another tier; the current tier is taken from the account's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeTier {
    /// Target tier.
    pub to: Tier,
    /// Why (required: demoting is a deliberate decision).
    pub reason: String,
}

macro_rules! account_commands {
    ($($variant:ident($payload:ty)),+ $(,)?) => {
        /// Every command a key account accepts.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum AccountCommand {
            $(
                #[allow(missing_docs)]
                $variant($payload)
            ),+
        }

        impl AccountCommand {
            /// The command's name, for messages and logs (e.g. `"LogInteraction"`).
            pub fn name(&self) -> &'static str {
                match self {
                    $(AccountCommand::$variant(_) => stringify!($variant)),+
                }
            }
        }
    };
}

account_commands!(
    RegisterAccount(AccountRegistered),
    AssessTier(AssessTier),
    PromoteAccount(ChangeTier),
    DemoteAccount(ChangeTier),
    AssignTeamMember(TeamMemberAssigned),
    UnassignTeamMember(TeamMemberUnassigned),
    DraftPlan(PlanDrafted),
    RevisePlanSection(PlanSectionRevised),
    SetObjective(ObjectiveSet),
    ProgressObjective(ObjectiveProgressed),
    IdentifyOpportunity(OpportunityIdentified),
    ChangeOpportunityStage(OpportunityStageChanged),
    WinOpportunity(OpportunityWon),
    LoseOpportunity(OpportunityLost),
    AddActionItem(ActionItemAdded),
    CompleteActionItem(ActionItemCompleted),
    CancelActionItem(ActionItemCancelled),
    RecordRevenue(RevenueRecorded),
    AddStakeholder(StakeholderAdded),
    ChangeStakeholderProfile(StakeholderProfileChanged),
    RecordStakeholderDeparture(StakeholderDeparted),
    SetEngagementRule(EngagementRuleSet),
    RetireEngagementRule(EngagementRuleRetired),
    LogInteraction(InteractionLogged),
    CorrectInteraction(InteractionCorrected),
    ScheduleReview(ReviewScheduled),
    RecordReviewOutcome(ReviewOutcomeRecorded),
    CancelReview(ReviewCancelled),
);

impl AccountCommand {
    /// Whether this command edits content that several people edit together (plan text,
    /// objectives, profiles, rules, corrections). Such a command must carry the exact stream
    /// version its author saw, so that a concurrent edit is detected instead of overwritten.
    /// Additive facts (an interaction logged, revenue recorded) may be appended with "any".
    pub fn edits_shared_content(&self) -> bool {
        matches!(
            self,
            AccountCommand::RevisePlanSection(_)
                | AccountCommand::SetObjective(_)
                | AccountCommand::ChangeStakeholderProfile(_)
                | AccountCommand::SetEngagementRule(_)
                | AccountCommand::CorrectInteraction(_)
        )
    }
}
