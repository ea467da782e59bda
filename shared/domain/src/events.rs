//! The events of a key account's stream: every fact Keyplan records.
//!
//! Events are immutable and named in the past tense. A command usually proposes exactly the
//! fact it wants recorded (see [`crate::commands`]), so most payload types serve both.
//! The stored form is postcard (see [`crate::codec`]); the wire form is protobuf (in
//! `keyplan-proto`).

use serde::{Deserialize, Serialize};

use crate::ids::*;
use crate::values::*;

// ---------------------------------------------------------------- account

/// A customer enters the key account programme.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRegistered {
    /// Customer name.
    pub name: String,
    /// Industry.
    pub industry: String,
    /// Sales region responsible for the account.
    pub region: String,
    /// Headquarters location.
    pub headquarters: String,
    /// Initial tier (usually `key`).
    pub tier: Tier,
}

/// One criterion of a weighted tier assessment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierCriterion {
    /// e.g. "revenue", "strategic fit".
    pub name: String,
    /// Relative weight (> 0).
    pub weight: u32,
    /// Score from 1 (very low) to 10 (very high).
    pub score: u8,
}

/// The account was scored against weighted criteria.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierAssessed {
    /// The criteria that were scored (irrelevant ones dropped).
    pub criteria: Vec<TierCriterion>,
    /// Σ(weight × score) / Σ(weight), times 1000 and rounded half up (so 7.25 is 7250).
    pub weighted_score_milli: u32,
    /// The tier the assessment recommends.
    pub recommended_tier: Tier,
    /// Who assessed.
    pub assessed_by: PersonId,
}

/// The account moved to a higher tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPromoted {
    /// Tier before.
    pub from: Tier,
    /// Tier after.
    pub to: Tier,
    /// Why.
    pub reason: String,
}

/// The account moved to a lower tier (a deliberate, recorded decision).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDemoted {
    /// Tier before.
    pub from: Tier,
    /// Tier after.
    pub to: Tier,
    /// Why.
    pub reason: String,
}

/// A supplier person joined the key account team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMemberAssigned {
    /// The person.
    pub person_id: PersonId,
    /// Display name.
    pub name: String,
    /// Role in the team.
    pub role: TeamRole,
}

/// A supplier person left the key account team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMemberUnassigned {
    /// The person.
    pub person_id: PersonId,
    /// Why (may be empty).
    pub reason: String,
}

// ---------------------------------------------------------------- plan

/// The period an account plan covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPeriod {
    /// Kind of period.
    pub kind: PlanPeriodKind,
    /// First day.
    pub start: Date,
    /// Last day (`None` only for perpetual plans).
    pub end: Option<Date>,
}

/// A new account plan was drafted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDrafted {
    /// The plan.
    pub plan_id: PlanId,
    /// Period covered.
    pub period: PlanPeriod,
    /// Who prepared it.
    pub prepared_by: PersonId,
    /// On which date.
    pub prepared_on: Date,
    /// How often it is to be reviewed.
    pub review_frequency: ReviewFrequency,
}

/// The text of one plan section was replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSectionRevised {
    /// The plan.
    pub plan_id: PlanId,
    /// The section.
    pub section: PlanSection,
    /// New text of the whole section.
    pub text: String,
}

/// A measurable objective was set (or redefined) in a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectiveSet {
    /// The objective.
    pub objective_id: ObjectiveId,
    /// The plan it belongs to.
    pub plan_id: PlanId,
    /// Short title.
    pub title: String,
    /// What is measured, e.g. "share of wallet %".
    pub metric: String,
    /// Target value, as text ("35%", "EUR 2M").
    pub target: String,
    /// Due date.
    pub due_on: Date,
    /// Owner (a team member).
    pub owner: PersonId,
    /// Status.
    pub status: ObjectiveStatus,
}

/// Progress was recorded on an objective.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectiveProgressed {
    /// The objective.
    pub objective_id: ObjectiveId,
    /// New status.
    pub status: ObjectiveStatus,
    /// Current value of the metric, as text.
    pub current_value: String,
    /// Note.
    pub note: String,
}

/// A sales opportunity was identified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpportunityIdentified {
    /// The opportunity.
    pub opportunity_id: OpportunityId,
    /// Short title.
    pub title: String,
    /// Expected value.
    pub value: Money,
    /// Stage.
    pub stage: OpportunityStage,
    /// Expected close date.
    pub expected_close_on: Date,
    /// Owner (a team member).
    pub owner: PersonId,
}

/// An open opportunity moved to another stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpportunityStageChanged {
    /// The opportunity.
    pub opportunity_id: OpportunityId,
    /// New stage.
    pub stage: OpportunityStage,
    /// Updated expected close date, if it moved.
    pub expected_close_on: Option<Date>,
}

/// An opportunity was won.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpportunityWon {
    /// The opportunity.
    pub opportunity_id: OpportunityId,
    /// Value actually won.
    pub value: Money,
    /// On which date.
    pub closed_on: Date,
    /// Why we won.
    pub reason: String,
}

/// An opportunity was lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpportunityLost {
    /// The opportunity.
    pub opportunity_id: OpportunityId,
    /// On which date.
    pub closed_on: Date,
    /// Why we lost.
    pub reason: String,
}

/// What an action item contributes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionLink {
    /// An objective of a plan.
    Objective(ObjectiveId),
    /// An opportunity.
    Opportunity(OpportunityId),
    /// A review (follow-up of a review).
    Review(ReviewId),
}

/// A concrete action was added to the action plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionItemAdded {
    /// The action item.
    pub action_item_id: ActionItemId,
    /// What is to be done.
    pub title: String,
    /// Owner (a team member).
    pub owner: PersonId,
    /// Due date.
    pub due_on: Date,
    /// What it contributes to, if anything.
    pub link: Option<ActionLink>,
}

/// An action item was completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionItemCompleted {
    /// The action item.
    pub action_item_id: ActionItemId,
    /// On which date.
    pub completed_on: Date,
    /// Note.
    pub note: String,
}

/// An action item was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionItemCancelled {
    /// The action item.
    pub action_item_id: ActionItemId,
    /// Why.
    pub reason: String,
}

/// Revenue for a period (optionally per product) was recorded against its goal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevenueRecorded {
    /// First day of the period.
    pub period_start: Date,
    /// Last day of the period.
    pub period_end: Date,
    /// Product or product line (empty for all products).
    pub product: String,
    /// Actual revenue.
    pub actual: Money,
    /// Goal for the period (same currency as `actual`).
    pub goal: Money,
    /// Gross margin in basis points (1234 = 12.34 %), if known.
    pub margin_basis_points: Option<i32>,
}

// ---------------------------------------------------------------- decision-making unit

/// A customer stakeholder was added to the decision-making unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakeholderAdded {
    /// The stakeholder.
    pub stakeholder_id: StakeholderId,
    /// Name.
    pub name: String,
    /// Job title.
    pub title: String,
    /// Whom they report to in the customer's org chart.
    pub reports_to: Option<StakeholderId>,
    /// Buying role.
    pub buying_role: BuyingRole,
    /// Influence, 1 (low) to 5 (high).
    pub influence: u8,
    /// Attitude toward the supplier.
    pub attitude: Attitude,
}

/// Part of a stakeholder's profile changed; fields left `None` are unchanged.
/// Keeping these as events gives attitude and influence a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakeholderProfileChanged {
    /// The stakeholder.
    pub stakeholder_id: StakeholderId,
    /// New title.
    pub title: Option<String>,
    /// New manager (`Some(None)` is not expressible: use [`Self::clear_reports_to`]).
    pub reports_to: Option<StakeholderId>,
    /// Remove the reports-to link.
    pub clear_reports_to: bool,
    /// New buying role.
    pub buying_role: Option<BuyingRole>,
    /// New influence (1-5).
    pub influence: Option<u8>,
    /// New attitude.
    pub attitude: Option<Attitude>,
    /// Why, or what was observed.
    pub note: String,
}

/// A stakeholder left the customer or the decision-making unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakeholderDeparted {
    /// The stakeholder.
    pub stakeholder_id: StakeholderId,
    /// On which date.
    pub departed_on: Date,
    /// Why.
    pub reason: String,
}

// ---------------------------------------------------------------- engagement

/// Whom an engagement rule targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleTarget {
    /// One stakeholder.
    Stakeholder(StakeholderId),
    /// Every stakeholder with this buying role (any one of them qualifies).
    BuyingRole(BuyingRole),
}

/// An engagement rule was set (created, or replaced as a whole if the id is active).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementRuleSet {
    /// The rule.
    pub rule_id: RuleId,
    /// Whom to keep in contact with.
    pub target: RuleTarget,
    /// The team member who keeps the contact.
    pub owner: PersonId,
    /// At least one qualifying contact every this many days (> 0).
    pub cadence_days: u32,
    /// Channels that count (non-empty).
    pub channels: Vec<Channel>,
    /// Opportunity the rule serves, if any.
    pub opportunity_id: Option<OpportunityId>,
}

/// An engagement rule stopped applying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementRuleRetired {
    /// The rule.
    pub rule_id: RuleId,
    /// Why.
    pub reason: String,
}

/// The content of an interaction (used by both logging and correcting it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionDetails {
    /// When it happened (business time).
    pub occurred_at: Timestamp,
    /// Channel.
    pub channel: Channel,
    /// Customer stakeholders who took part (non-empty).
    pub stakeholders: Vec<StakeholderId>,
    /// Supplier people who took part (non-empty).
    pub participants: Vec<PersonId>,
    /// What was discussed.
    pub summary: String,
    /// Sentiment.
    pub sentiment: Sentiment,
    /// Agreed next step (may be empty).
    pub next_step: String,
    /// Opportunity discussed, if any (added in schema version 2).
    pub opportunity_id: Option<OpportunityId>,
}

impl InteractionDetails {
    /// SHA-256 over every field, each length-prefixed so that no two different contents feed
    /// the hash the same bytes. The account's state keeps this instead of the text (see
    /// [`crate::state::Interaction`]); the encoding is fixed here, not borrowed from the
    /// stored format, so that the hash does not change when the schema of events does.
    pub fn content_hash(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        fn field(hash: &mut Sha256, bytes: &[u8]) {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        }
        let mut hash = Sha256::new();
        field(&mut hash, &self.occurred_at.0.to_le_bytes());
        field(&mut hash, self.channel.as_str().as_bytes());
        field(&mut hash, &(self.stakeholders.len() as u64).to_le_bytes());
        for id in &self.stakeholders {
            field(&mut hash, id.as_str().as_bytes());
        }
        field(&mut hash, &(self.participants.len() as u64).to_le_bytes());
        for id in &self.participants {
            field(&mut hash, id.as_str().as_bytes());
        }
        field(&mut hash, self.summary.as_bytes());
        field(&mut hash, self.sentiment.as_str().as_bytes());
        field(&mut hash, self.next_step.as_bytes());
        match &self.opportunity_id {
            Some(id) => {
                field(&mut hash, &[1]);
                field(&mut hash, id.as_str().as_bytes());
            }
            None => field(&mut hash, &[0]),
        }
        hash.finalize().into()
    }
}

/// An interaction with the customer was logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionLogged {
    /// The interaction.
    pub interaction_id: InteractionId,
    /// What happened.
    pub details: InteractionDetails,
}

/// A logged interaction was corrected; the original stays in the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionCorrected {
    /// The interaction.
    pub interaction_id: InteractionId,
    /// The full corrected content (replaces the previous content).
    pub details: InteractionDetails,
    /// Why it was corrected.
    pub reason: String,
}

// ---------------------------------------------------------------- reviews

/// A review was scheduled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewScheduled {
    /// The review.
    pub review_id: ReviewId,
    /// Kind.
    pub kind: ReviewKind,
    /// Plan under review, if any.
    pub plan_id: Option<PlanId>,
    /// Date it is due.
    pub due_on: Date,
    /// Supplier attendees invited.
    pub supplier_attendees: Vec<PersonId>,
    /// Customer attendees invited.
    pub customer_attendees: Vec<StakeholderId>,
}

/// A follow-up action decided at a review; becomes an action item linked to the review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpAction {
    /// The new action item.
    pub action_item_id: ActionItemId,
    /// What is to be done.
    pub title: String,
    /// Owner (a team member).
    pub owner: PersonId,
    /// Due date.
    pub due_on: Date,
}

/// A scheduled review was held and its outcome recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewOutcomeRecorded {
    /// The review.
    pub review_id: ReviewId,
    /// Date it was held.
    pub held_on: Date,
    /// Supplier attendees.
    pub supplier_attendees: Vec<PersonId>,
    /// Customer attendees.
    pub customer_attendees: Vec<StakeholderId>,
    /// Outcome.
    pub outcome: ReviewOutcome,
    /// Health rating.
    pub health: HealthRating,
    /// Decisions taken.
    pub decisions: Vec<String>,
    /// Follow-up actions (each becomes an action item).
    pub follow_up_actions: Vec<FollowUpAction>,
}

/// A scheduled review was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewCancelled {
    /// The review.
    pub review_id: ReviewId,
    /// Why.
    pub reason: String,
}

// ---------------------------------------------------------------- the event enum

macro_rules! account_events {
    ($($variant:ident),+ $(,)?) => {
        /// Every event of a key account's stream.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum AccountEvent {
            $(
                #[allow(missing_docs)]
                $variant($variant)
            ),+
        }

        impl AccountEvent {
            /// Every event type name, as stored in the envelope.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The event type name stored in the envelope (e.g. `"InteractionLogged"`).
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(AccountEvent::$variant(_) => stringify!($variant)),+
                }
            }
        }

        $(
            impl From<$variant> for AccountEvent {
                fn from(e: $variant) -> Self {
                    AccountEvent::$variant(e)
                }
            }
        )+
    };
}

account_events!(
    AccountRegistered,
    TierAssessed,
    AccountPromoted,
    AccountDemoted,
    TeamMemberAssigned,
    TeamMemberUnassigned,
    PlanDrafted,
    PlanSectionRevised,
    ObjectiveSet,
    ObjectiveProgressed,
    OpportunityIdentified,
    OpportunityStageChanged,
    OpportunityWon,
    OpportunityLost,
    ActionItemAdded,
    ActionItemCompleted,
    ActionItemCancelled,
    RevenueRecorded,
    StakeholderAdded,
    StakeholderProfileChanged,
    StakeholderDeparted,
    EngagementRuleSet,
    EngagementRuleRetired,
    InteractionLogged,
    InteractionCorrected,
    ReviewScheduled,
    ReviewOutcomeRecorded,
    ReviewCancelled,
);
