//! The answers of the compliance read model, in domain terms (the service turns them into
//! protobuf). Kept separate from the wire types so that the rules can be tested, and used by
//! other services in-process, without going through gRPC.

use chrono::Days;
use keyplan_domain::events::EngagementRuleSet;
use keyplan_domain::values::{Channel, Date, ReviewFrequency, Timestamp};

/// The time axis of an as-of question.
///
/// Two clocks matter: when something happened (business time) and when Keyplan learned it
/// (recorded time). A call held on March 10 and logged on March 14 was "not done" in every
/// report a manager opened between those days, yet the relationship was in fact kept.
/// Auditors need both views, so every query names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Axis {
    /// Everything known now about what had happened by T: facts with business time <= T,
    /// whenever recorded, corrections included.
    #[default]
    AsHappenedBy,
    /// What was known at T: only events recorded by T, and among those only facts with
    /// business time <= T.
    AsKnownAt,
}

/// An instant on an axis: the coordinates of every question the read model answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AsOf {
    /// The instant T.
    pub at: Timestamp,
    /// The axis.
    pub axis: Axis,
}

impl AsOf {
    /// T on the "as happened by" axis.
    pub fn happened_by(at: Timestamp) -> Self {
        Self {
            at,
            axis: Axis::AsHappenedBy,
        }
    }

    /// T on the "as known at" axis.
    pub fn known_at(at: Timestamp) -> Self {
        Self {
            at,
            axis: Axis::AsKnownAt,
        }
    }

    /// Whether an event recorded at `recorded_at` is visible on this axis.
    pub(crate) fn knows(&self, recorded_at: Timestamp) -> bool {
        match self.axis {
            Axis::AsHappenedBy => true,
            Axis::AsKnownAt => recorded_at <= self.at,
        }
    }

    /// T's UTC calendar date: the "today" of day counts.
    pub(crate) fn date(&self) -> Date {
        self.at.date()
    }
}

/// Status of an active engagement rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleStatus {
    /// Next contact due after the due-soon window.
    OnTrack,
    /// Next contact due today or within the due-soon window (still on track).
    DueSoon,
    /// Next contact was due before T's date.
    Overdue,
    /// No qualifying contact yet.
    NeverMet,
}

/// The due-soon window of a rule with cadence `cadence_days`: min(7, max(1, cadence / 4))
/// days. A quarter of the cadence warns early enough to book a meeting, and the bounds keep it
/// meaningful for daily rules and not absurd for yearly ones.
pub fn due_soon_window(cadence_days: u32) -> u32 {
    (cadence_days / 4).clamp(1, 7)
}

/// `date` plus `days`, saturating (cadences are at most 3650 days, dates far from the limits).
pub(crate) fn add_days(date: Date, days: u32) -> Date {
    date.checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(Date::MAX)
}

/// Whole days from `from` to `to` (negative if `to` is earlier).
pub(crate) fn days_between(from: Date, to: Date) -> i64 {
    (to - from).num_days()
}

/// A day count as an unsigned wire number (clamped; day counts here are small).
pub(crate) fn day_count(days: i64) -> u32 {
    u32::try_from(days.max(0)).unwrap_or(u32::MAX)
}

/// The interaction that last met a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastInteraction {
    /// Interaction id.
    pub interaction_id: String,
    /// When it happened (the content used on the axis: corrected or not).
    pub occurred_at: Timestamp,
    /// Whether that content is a correction.
    pub corrected: bool,
}

/// Why an interaction considered for a rule did not count for it: the first condition of the
/// qualification check that failed, in the order it is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotCounted {
    /// This version is not the one in force on the axis: a later correction, visible on the
    /// axis, replaced it (and, when listed, no longer names the stakeholder).
    CorrectedAway,
    /// It happened after T.
    HappenedAfterAsOf,
    /// As known at T: it happened by T but this version was recorded after T.
    NotYetRecorded,
    /// Its channel is not one of the rule's.
    WrongChannel,
    /// Buying-role rule: the stakeholder did not hold the role at the interaction's time.
    NotInBuyingRoleAtTheTime,
    /// No supplier participant was in the key account team at the interaction's time.
    NoTeamMemberAtTheTime,
}

/// Most interactions listed per rule when explaining (see [`RuleCompliance::considered`]).
pub const MAX_CONSIDERED: usize = 50;
/// Of those, most listed that happened after T.
pub const MAX_CONSIDERED_AFTER: usize = 5;

/// One interaction (one version of it, for one target stakeholder) a rule looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsideredInteraction {
    /// Interaction id.
    pub interaction_id: String,
    /// The target stakeholder it was considered for.
    pub stakeholder: String,
    /// When it happened (this version).
    pub occurred_at: Timestamp,
    /// When this version was recorded.
    pub recorded_at: Timestamp,
    /// Its channel (this version).
    pub channel: Channel,
    /// Whether this version is a correction.
    pub corrected: bool,
    /// `None`: it counts for the rule; else the condition that failed.
    pub not_counted: Option<NotCounted>,
    /// The same in words.
    pub detail: String,
}

/// One active rule as of T.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleCompliance {
    /// The rule's latest definition set by T.
    pub definition: EngagementRuleSet,
    /// The target in words.
    pub target_description: String,
    /// Display name of the owner ("" if unknown).
    pub owner_name: String,
    /// Date the rule was first set.
    pub set_on: Date,
    /// Status.
    pub status: RuleStatus,
    /// The latest qualifying interaction, if any.
    pub last_interaction: Option<LastInteraction>,
    /// When the next contact is (or was) due.
    pub due_on: Date,
    /// Days past `due_on` (0 if not past).
    pub days_overdue: u32,
    /// Days until `due_on` (0 if past).
    pub days_until_due: u32,
    /// The rule's due-soon window in days.
    pub due_soon_window_days: u32,
    /// Only when explaining (else empty, not allocated): the interactions considered, most
    /// recent first, at most [`MAX_CONSIDERED`] (up to [`MAX_CONSIDERED_AFTER`] of them that
    /// happened soonest after T, then the most recent by T).
    pub considered: Vec<ConsideredInteraction>,
}

impl RuleCompliance {
    /// Whether the rule belongs in an overdue list: OVERDUE, or NEVER_MET past its due date.
    pub fn is_overdue(&self) -> bool {
        self.days_overdue > 0
    }
}

/// Counts of active rules by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Share {
    /// ON_TRACK.
    pub on_track: u32,
    /// DUE_SOON.
    pub due_soon: u32,
    /// OVERDUE.
    pub overdue: u32,
    /// NEVER_MET (past its first due date or not).
    pub never_met: u32,
    /// Of `never_met`, those whose first due date is today or later: not late yet.
    pub never_met_not_due: u32,
}

impl Share {
    /// Counts one rule; `past_due` says whether its due date is before today (the rule is in
    /// the overdue list).
    pub(crate) fn count(&mut self, status: RuleStatus, past_due: bool) {
        match status {
            RuleStatus::OnTrack => self.on_track += 1,
            RuleStatus::DueSoon => self.due_soon += 1,
            RuleStatus::Overdue => self.overdue += 1,
            RuleStatus::NeverMet => {
                self.never_met += 1;
                if !past_due {
                    self.never_met_not_due += 1;
                }
            }
        }
    }

    /// Adds another group's counts.
    pub(crate) fn add(&mut self, other: Share) {
        self.on_track += other.on_track;
        self.due_soon += other.due_soon;
        self.overdue += other.overdue;
        self.never_met += other.never_met;
        self.never_met_not_due += other.never_met_not_due;
    }

    /// Rules counted as on track: every rule that is not late yet, i.e. ON_TRACK + DUE_SOON +
    /// NEVER_MET whose first due date is today or later. A rule set this morning has had no
    /// chance to be met; counting it as off track would show a new account at 0 %. So a rule
    /// is counted on track exactly when it is not in the overdue list.
    pub fn counted_on_track(&self) -> u32 {
        self.on_track + self.due_soon + self.never_met_not_due
    }

    /// Active rules.
    pub fn active(&self) -> u32 {
        self.on_track + self.due_soon + self.overdue + self.never_met
    }

    /// counted_on_track / active; `None` without active rules (neither 0 nor 1 would be true).
    pub fn share(&self) -> Option<f64> {
        let active = self.active();
        (active > 0).then(|| f64::from(self.counted_on_track()) / f64::from(active))
    }
}

/// A rule in an overdue list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverdueRule {
    /// The account.
    pub account: String,
    /// The rule.
    pub rule_id: String,
    /// Its owner.
    pub owner: String,
    /// The target in words.
    pub target_description: String,
    /// OVERDUE or NEVER_MET.
    pub status: RuleStatus,
    /// Days overdue (>= 1).
    pub days_overdue: u32,
    /// When the contact was due.
    pub due_on: Date,
    /// Date of the last qualifying contact, if any.
    pub last_interaction_on: Option<Date>,
}

/// Sorts an overdue list: most days overdue first, then by account, then by rule id.
pub(crate) fn sort_overdue(list: &mut [OverdueRule]) {
    list.sort_by(|a, b| {
        b.days_overdue
            .cmp(&a.days_overdue)
            .then_with(|| a.account.cmp(&b.account))
            .then_with(|| a.rule_id.cmp(&b.rule_id))
    });
}

/// A rule retired by T.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredRule {
    /// The rule.
    pub rule_id: String,
    /// When (business time of its first retirement).
    pub retired_at: Timestamp,
}

/// Status of a review window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReviewStatus {
    /// A review was held within the window.
    OnTime,
    /// None within the window; the first one after it was held within the next window.
    Late,
    /// None within the window nor the next, which has ended.
    Missed,
    /// Due date passed, nothing held since, next window still open.
    Overdue,
    /// Due date is T's date or later.
    Upcoming,
}

/// A review that counts for a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldReview {
    /// The review.
    pub review_id: String,
    /// Date held.
    pub held_on: Date,
}

/// One review window of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewWindow {
    /// k, from 1.
    pub index: u32,
    /// First day of the window.
    pub opens_on: Date,
    /// Due date D_k (last day of the window).
    pub due_on: Date,
    /// Status.
    pub status: ReviewStatus,
    /// The review it counts (see the proto for which one).
    pub review: Option<HeldReview>,
    /// LATE: days from due date to the review.
    pub days_late: u32,
    /// OVERDUE: days from due date to T's date.
    pub days_overdue: u32,
}

/// Review cadence of one plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanReviews {
    /// The plan.
    pub plan_id: String,
    /// Planned frequency.
    pub frequency: ReviewFrequency,
    /// Period start.
    pub period_start: Date,
    /// Period end (`None`: perpetual).
    pub period_end: Option<Date>,
    /// The windows, in order.
    pub windows: Vec<ReviewWindow>,
}

impl PlanReviews {
    /// Windows with this status.
    pub fn count(&self, status: ReviewStatus) -> u32 {
        let n = self.windows.iter().filter(|w| w.status == status).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// One account's compliance as of T.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountCompliance {
    /// The question.
    pub as_of: AsOf,
    /// Active rules by rule id.
    pub rules: Vec<RuleCompliance>,
    /// Their counts.
    pub share: Share,
    /// Overdue rules, sorted.
    pub overdue: Vec<OverdueRule>,
    /// Review cadence per plan drafted by T, by plan id.
    pub plan_reviews: Vec<PlanReviews>,
    /// Rules retired by T, by rule id.
    pub retired: Vec<RetiredRule>,
}

/// How a rollup groups rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// Per account.
    Account,
    /// Per rule owner.
    Owner,
    /// The whole tenant.
    Tenant,
}

/// One group of a rollup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Account id, owner id or tenant id.
    pub key: String,
    /// Account name, owner name or tenant id ("" if unknown).
    pub label: String,
    /// Counts.
    pub share: Share,
}

/// A tenant's compliance, grouped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollup {
    /// Groups by key.
    pub groups: Vec<Group>,
    /// The tenant's totals.
    pub total: Share,
    /// The tenant's overdue rules, sorted.
    pub overdue: Vec<OverdueRule>,
}

/// One point of a trend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrendPoint {
    /// The instant.
    pub at: Timestamp,
    /// Counts at that instant.
    pub share: Share,
}
