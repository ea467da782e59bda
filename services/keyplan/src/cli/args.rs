//! The KAM commands' arguments (clap): what a person types. Each group (`account`, `rule`,
//! ...) carries the connection options as global arguments, so they may come before or after
//! the subcommand (`keyplan account --tenant acme list` and `keyplan account list --tenant
//! acme` are the same), and every one of them also reads its `KEYPLAN_*` variable.

use clap::{Args, Subcommand};

use crate::config::NodeArgs;

/// Who calls which node for which tenant, and how the answer is printed.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// The tenant (supplier organisation) to act for; defaults to the `tenant` claim of
    /// `--token`.
    #[arg(
        long,
        env = "KEYPLAN_TENANT",
        global = true,
        help_heading = "Connection"
    )]
    pub tenant: Option<String>,

    /// Who does it, recorded as the actor of every event written; defaults to the `sub` claim
    /// of `--token`, else the login name (`$USER`). A node with authentication takes the
    /// token's subject and refuses any other actor.
    #[arg(
        long,
        env = "KEYPLAN_ACTOR",
        global = true,
        help_heading = "Connection"
    )]
    pub actor: Option<String>,

    /// Print the answer as JSON (the API's proto3 JSON), for scripts; one object per line for
    /// `watch`.
    #[arg(long, global = true, help_heading = "Output")]
    pub json: bool,
}

/// Options every write takes.
#[derive(Debug, Clone, Default, Args)]
pub struct WriteArgs {
    /// A key that makes a retry safe: the same key with the same command returns the first
    /// result and records nothing new.
    #[arg(long)]
    pub idempotency_key: Option<String>,

    /// When the fact took effect (business time): RFC 3339, a date (from 00:00 UTC) or how
    /// long ago (`30days`), not in the future; default: now. E.g. a team member on the account
    /// since the quarter began, so that the meetings they logged since count toward the rules
    /// they own.
    #[arg(long)]
    pub effective: Option<String>,
}

/// Options of writes that edit shared content, which must name the version they edit.
#[derive(Debug, Clone, Default, Args)]
pub struct EditArgs {
    /// The account version this edit was prepared against (as `account show` printed it). An
    /// edit someone else made after it is reported instead of overwritten. Default: the
    /// account's version read just before sending, which still catches edits racing with this
    /// command, not those made since you last looked.
    #[arg(long)]
    pub expected_version: Option<u64>,

    #[command(flatten)]
    pub write: WriteArgs,
}

/// `keyplan account ...`
#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: AccountCommand,
}

/// Key accounts.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Register a new key account.
    Register {
        /// The account's id (letters, digits, `_:-`; at most 64).
        account: String,
        /// The customer's name.
        #[arg(long)]
        name: String,
        /// Industry.
        #[arg(long, default_value = "")]
        industry: String,
        /// Sales region.
        #[arg(long, default_value = "")]
        region: String,
        /// Headquarters.
        #[arg(long, default_value = "")]
        headquarters: String,
        /// Tier: standard, key or strategic.
        #[arg(long, default_value = "key")]
        tier: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Show an account: plan, team, decision-making unit, rules, recent interactions, reviews.
    Show {
        /// The account.
        account: String,
        /// How many of the most recent interactions to show (at most 1,000).
        #[arg(long, default_value_t = 10)]
        interactions: u32,
    },
    /// The tenant's accounts at a glance.
    List,
    /// Move the account to a higher tier.
    Promote {
        /// The account.
        account: String,
        /// The new tier: key or strategic.
        #[arg(long)]
        to: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Move the account to a lower tier (a reason is required).
    Demote {
        /// The account.
        account: String,
        /// The new tier: standard or key.
        #[arg(long)]
        to: String,
        /// Why (required: demoting is a deliberate decision).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Score the account on weighted criteria and recommend a tier.
    Assess {
        /// The account.
        account: String,
        /// A criterion as NAME:WEIGHT:SCORE (score 1-10), e.g. `revenue potential:3:8`;
        /// repeat for each.
        #[arg(long = "criterion", required = true)]
        criteria: Vec<String>,
        /// The tier recommended: standard, key or strategic.
        #[arg(long)]
        recommend: String,
        /// The assessor's person id (default: the actor).
        #[arg(long)]
        assessed_by: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `keyplan team ...`
#[derive(Debug, Args)]
pub struct TeamArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: TeamCommand,
}

/// The supplier's account team.
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Put a person on the account team.
    Assign {
        /// The account.
        account: String,
        /// The person's id.
        person: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Role: key-account-manager, executive-sponsor, sales, operations, supply-chain,
        /// service, other.
        #[arg(long, default_value = "key-account-manager")]
        role: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Take a person off the account team.
    Unassign {
        /// The account.
        account: String,
        /// The person's id.
        person: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `keyplan plan ...`
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: PlanCommand,
}

/// Account plans.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Draft a plan for a period, with its review frequency.
    Draft {
        /// The account.
        account: String,
        /// The plan's id.
        plan: String,
        /// Period: calendar-year, half-year, rolling-12-months or perpetual.
        #[arg(long, default_value = "calendar-year")]
        period: String,
        /// First day of the period, YYYY-MM-DD.
        #[arg(long)]
        start: String,
        /// Last day, YYYY-MM-DD (none for a perpetual plan).
        #[arg(long, default_value = "")]
        end: String,
        /// How often the plan is reviewed: monthly, quarterly, half-yearly or yearly.
        #[arg(long, default_value = "quarterly")]
        review_frequency: String,
        /// Who prepared it (default: the actor).
        #[arg(long)]
        prepared_by: Option<String>,
        /// When, YYYY-MM-DD (default: today).
        #[arg(long)]
        prepared_on: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Rewrite one section of a plan.
    Revise {
        /// The account.
        account: String,
        /// The plan.
        plan: String,
        /// Section: account-overview, customer-landscape, competitors, revenue-snapshot,
        /// risks, strategy.
        #[arg(long)]
        section: String,
        /// The section's new text.
        #[arg(long)]
        text: String,
        #[command(flatten)]
        edit: EditArgs,
    },
    /// Show an account's plans (or one), with their sections and objectives.
    Show {
        /// The account.
        account: String,
        /// Only this plan.
        plan: Option<String>,
    },
}

/// `keyplan stakeholder ...`
#[derive(Debug, Args)]
pub struct StakeholderArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: StakeholderCommand,
}

/// The customer's decision-making unit.
#[derive(Debug, Subcommand)]
pub enum StakeholderCommand {
    /// Add a person of the customer to the decision-making unit.
    Add {
        /// The account.
        account: String,
        /// The stakeholder's id.
        stakeholder: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Job title.
        #[arg(long, default_value = "")]
        title: String,
        /// The stakeholder they report to.
        #[arg(long, default_value = "")]
        reports_to: String,
        /// Buying role: economic-buyer, technical-buyer, user, influencer, gatekeeper, coach.
        #[arg(long = "buying-role")]
        buying_role: String,
        /// Influence, 1 (little) to 5 (decisive).
        #[arg(long, default_value_t = 3)]
        influence: u32,
        /// Attitude: champion, supporter, neutral, critic, blocker.
        #[arg(long, default_value = "neutral")]
        attitude: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Change a stakeholder's title, role, influence, attitude or manager.
    Update {
        /// The account.
        account: String,
        /// The stakeholder.
        stakeholder: String,
        /// New job title.
        #[arg(long)]
        title: Option<String>,
        /// New manager (a stakeholder id).
        #[arg(long, conflicts_with = "clear_reports_to")]
        reports_to: Option<String>,
        /// Reports to nobody in the unit any more.
        #[arg(long)]
        clear_reports_to: bool,
        /// New buying role.
        #[arg(long = "buying-role")]
        buying_role: Option<String>,
        /// New influence, 1 to 5.
        #[arg(long)]
        influence: Option<u32>,
        /// New attitude.
        #[arg(long)]
        attitude: Option<String>,
        /// Why (kept with the change).
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        edit: EditArgs,
    },
    /// Record that a stakeholder left the customer.
    Depart {
        /// The account.
        account: String,
        /// The stakeholder.
        stakeholder: String,
        /// Their last day, YYYY-MM-DD (default: today).
        #[arg(long)]
        on: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `keyplan rule ...`
#[derive(Debug, Args)]
pub struct RuleArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: RuleCommand,
}

/// Engagement rules: who must be met, how often, how.
#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Set (or redefine) a rule, e.g. "the CFO, in person, every 30 days".
    Set {
        /// The account.
        account: String,
        /// The rule's id.
        rule: String,
        /// The rule is about this stakeholder...
        #[arg(
            long,
            conflicts_with = "buying_role",
            required_unless_present = "buying_role"
        )]
        stakeholder: Option<String>,
        /// ... or about whoever holds this buying role.
        #[arg(long = "buying-role")]
        buying_role: Option<String>,
        /// The team member who must keep it (person id).
        #[arg(long)]
        owner: String,
        /// At most this many days between qualifying contacts.
        #[arg(long = "every-days")]
        every_days: u32,
        /// A channel that counts (repeat; none: any): in-person, video-call, phone-call, email,
        /// site-visit, business-review, event.
        #[arg(long = "channel")]
        channels: Vec<String>,
        /// The opportunity the rule serves (recorded with the rule; compliance does not filter
        /// contacts by opportunity).
        #[arg(long, default_value = "")]
        opportunity: String,
        #[command(flatten)]
        edit: EditArgs,
    },
    /// Retire a rule: it no longer counts.
    Retire {
        /// The account.
        account: String,
        /// The rule.
        rule: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `keyplan interaction ...`
#[derive(Debug, Args)]
pub struct InteractionArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: InteractionCommand,
}

/// What happened in one contact with the customer.
#[derive(Debug, Clone, Args)]
pub struct InteractionDetailsArgs {
    /// When it happened: RFC 3339 (`2026-11-20T10:00:00Z`) or a date (taken as 12:00 UTC);
    /// default: now.
    #[arg(long, conflicts_with = "ago")]
    pub at: Option<String>,
    /// ... or how long ago, e.g. `2h`, `3days`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ago: Option<std::time::Duration>,
    /// Channel: in-person, video-call, phone-call, email, site-visit, business-review, event.
    #[arg(long)]
    pub channel: String,
    /// Stakeholders met (repeat or comma-separate).
    #[arg(long = "with", value_delimiter = ',', required = true)]
    pub stakeholders: Vec<String>,
    /// Team members who took part (repeat or comma-separate; default: the actor).
    #[arg(long = "by", value_delimiter = ',')]
    pub participants: Vec<String>,
    /// What was discussed.
    #[arg(long)]
    pub summary: String,
    /// Sentiment: very-negative, negative, neutral, positive, very-positive.
    #[arg(long, default_value = "neutral")]
    pub sentiment: String,
    /// The agreed next step.
    #[arg(long, default_value = "")]
    pub next_step: String,
    /// The opportunity it was about.
    #[arg(long, default_value = "")]
    pub opportunity: String,
}

/// Interactions with the customer.
#[derive(Debug, Subcommand)]
pub enum InteractionCommand {
    /// Log a meeting, call, visit, ...
    Log {
        /// The account.
        account: String,
        /// The interaction's id.
        interaction: String,
        #[command(flatten)]
        details: InteractionDetailsArgs,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Correct a logged interaction: the corrected details replace the old ones, which stay in
    /// the log.
    Correct {
        /// The account.
        account: String,
        /// The interaction.
        interaction: String,
        #[command(flatten)]
        details: InteractionDetailsArgs,
        /// Why it is corrected.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        edit: EditArgs,
    },
}

/// `keyplan review ...`
#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ReviewCommand,
}

/// Plan reviews and business reviews.
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Schedule a review.
    Schedule {
        /// The account.
        account: String,
        /// The review's id.
        review: String,
        /// Kind: internal-plan-review, quarterly-business-review, executive.
        #[arg(long, default_value = "quarterly-business-review")]
        kind: String,
        /// The plan it reviews.
        #[arg(long, default_value = "")]
        plan: String,
        /// Due date, YYYY-MM-DD.
        #[arg(long)]
        due: String,
        /// Supplier attendees (person ids; repeat or comma-separate; default: the actor).
        #[arg(long, value_delimiter = ',')]
        supplier: Vec<String>,
        /// Customer attendees (stakeholder ids; repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        customer: Vec<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Record how a review went.
    Record {
        /// The account.
        account: String,
        /// The review.
        review: String,
        /// When it was held, YYYY-MM-DD (default: today).
        #[arg(long)]
        held_on: Option<String>,
        /// Outcome: approved, approved-with-changes, rejected, escalated.
        #[arg(long)]
        outcome: String,
        /// Health of the relationship: green, amber, red.
        #[arg(long)]
        health: String,
        /// A decision taken (repeat).
        #[arg(long = "decision")]
        decisions: Vec<String>,
        /// Supplier attendees (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        supplier: Vec<String>,
        /// Customer attendees (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        customer: Vec<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Cancel a scheduled review.
    Cancel {
        /// The account.
        account: String,
        /// The review's id.
        review: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `keyplan timeline ACCOUNT`
#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The account.
    pub account: String,
    /// Only what concerns this stakeholder.
    #[arg(long, group = "scope")]
    pub stakeholder: Option<String>,
    /// Only what concerns this plan.
    #[arg(long, group = "scope")]
    pub plan: Option<String>,
    /// Only what concerns this team member.
    #[arg(long, group = "scope")]
    pub person: Option<String>,
    /// Only what concerns this opportunity.
    #[arg(long, group = "scope")]
    pub opportunity: Option<String>,
    /// Only these event types (repeat), e.g. `InteractionLogged`.
    #[arg(long = "type")]
    pub event_types: Vec<String>,
    /// Only events written by this actor.
    #[arg(long, default_value = "")]
    pub by: String,
    /// Oldest first (default: newest first).
    #[arg(long)]
    pub oldest_first: bool,
    /// At most this many entries (1 to 1,000).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Continue after a previous page (the token it printed).
    #[arg(long, default_value = "")]
    pub page_token: String,
}

/// `keyplan compliance ...`
#[derive(Debug, Args)]
pub struct ComplianceArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The account (or `--rollup`).
    #[arg(required_unless_present = "rollup", conflicts_with = "rollup")]
    pub account: Option<String>,
    /// The tenant's compliance grouped by rule owner, by account or for the whole tenant.
    #[arg(long, value_parser = ["owner", "account", "tenant"])]
    pub rollup: Option<String>,
    /// The instant to answer for: RFC 3339 or a date (end of that day, UTC); default: now.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Judge by what had been recorded by then (AS_KNOWN_AT), not by when things happened.
    #[arg(long)]
    pub known_at: bool,
    /// Explain each rule's status: under each rule, the interactions it considered (at most 50)
    /// and, for each one that did not count, which condition failed.
    #[arg(long, conflicts_with = "rollup")]
    pub why: bool,
}

/// `keyplan portfolio`
#[derive(Debug, Args)]
pub struct PortfolioArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The instant to answer for: RFC 3339 or a date (end of that day, UTC); default: now.
    #[arg(long)]
    pub as_of: Option<String>,
}

/// `keyplan activity ...`
#[derive(Debug, Args)]
pub struct ActivityArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ActivityCommand,
}

/// Historical activity: counts, coverage of the decision-making unit, quiet accounts, pipeline.
#[derive(Debug, Subcommand)]
pub enum ActivityCommand {
    /// Interactions counted per period and by channel, sentiment, stakeholder, buying role or
    /// team member.
    Counts {
        /// Only this account (default: every account of the tenant).
        account: Option<String>,
        /// Period: day, week, month, quarter.
        #[arg(long, default_value = "month")]
        period: String,
        /// Dimension: account, channel, team-member, stakeholder, buying-role.
        #[arg(long, default_value = "channel")]
        by: String,
        /// First day, YYYY-MM-DD (default: 90 days ago).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long)]
        to: Option<String>,
    },
    /// Which stakeholders and buying roles were met in the last days.
    Dmu {
        /// The account.
        account: String,
        /// The window, in days.
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Accounts nobody met in the last days.
    Quiet {
        /// The window, in days.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// An account's open pipeline by stage, won and lost, and revenue against goal.
    Opportunities {
        /// The account.
        account: String,
    },
}

/// `keyplan audit ...`
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// Proving who changed what and when.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the account's hash chain from its log and say whether it is intact.
    Verify {
        /// The account.
        account: String,
    },
    /// Write the account's whole history, verified, as JSON lines (to a file or stdout).
    Export {
        /// The account.
        account: String,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        out: Option<std::path::PathBuf>,
    },
    /// The account as it was at a version or an instant.
    AsOf {
        /// The account.
        account: String,
        /// After this version.
        #[arg(long, group = "point", required = true)]
        version: Option<u64>,
        /// As recorded by this instant (RFC 3339 or a date).
        #[arg(long, group = "point")]
        recorded_at: Option<String>,
        /// As it had happened by this instant (RFC 3339 or a date).
        #[arg(long, group = "point")]
        occurred_at: Option<String>,
    },
    /// What changed between two versions, or between two reviews.
    Diff {
        /// The account.
        account: String,
        /// From this version (exclusive)...
        #[arg(long, requires = "to_version", conflicts_with = "from_review")]
        from_version: Option<u64>,
        /// ... to this one (inclusive).
        #[arg(long)]
        to_version: Option<u64>,
        /// From this review...
        #[arg(long, requires = "to_review", required_unless_present = "from_version")]
        from_review: Option<String>,
        /// ... to this one.
        #[arg(long)]
        to_review: Option<String>,
    },
}

/// `keyplan watch ACCOUNT`
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The account.
    pub account: String,
    /// Start with the entries from this global position (1: the whole history); default: only
    /// what is written from now on.
    #[arg(long)]
    pub from_position: Option<u64>,
}

/// `keyplan alerts ...`
#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: AlertsCommand,
}

/// Compliance alerts.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Follow the tenant's compliance alerts as they are raised, one line each (Ctrl-C to
    /// stop): a rule due soon, overdue or never met past its first due date, a plan review
    /// window missed. Only alerts raised from now on; earlier ones are in the NATS alerts
    /// stream.
    Watch {
        /// Only alerts of this kind: rule_due_soon, rule_overdue, rule_never_met,
        /// review_missed (repeat for several); default: every kind.
        #[arg(long = "kind", value_name = "KIND")]
        kinds: Vec<String>,
        /// Only alerts of this account.
        #[arg(long)]
        account: Option<String>,
    },
}

/// `keyplan demo ...`
#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: DemoCommand,
}

/// Demonstration data.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Write a realistic, deterministic portfolio into a running node: accounts scored and
    /// tiered, plans, objectives, opportunities, revenue, decision-making units, engagement
    /// rules, months of interactions (rules kept, overdue and never met) and reviews. Dates
    /// end today. The same seed on the same day writes exactly the same commands, so running it
    /// again records nothing new. The tenant defaults to `demo`.
    Seed(SeedArgs),
}

/// `keyplan demo seed`
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// How many key accounts (1 to 100).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub accounts: u32,
    /// How many months of history, ending today (1 to 36).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=36))]
    pub months: u32,
    /// The seed: the same seed gives the same accounts, ids, names and content.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}
