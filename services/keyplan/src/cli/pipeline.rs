//! The plan's working parts: objectives, opportunities, action items and revenue. Kept apart
//! from `writes` because each group has its own vocabulary (stages, statuses, money).

use clap::{Args, Subcommand};
use keyplan_proto::pb;
use keyplan_proto::pb::command::Kind;

use super::args::{ClientArgs, EditArgs, WriteArgs};
use super::enums::parse;
use super::output::currency_decimals;
use super::time;
use super::writes::{edit_version, execute};
use super::{CliError, Session};

/// `keyplan objective ...`
#[derive(Debug, Args)]
pub struct ObjectiveArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ObjectiveCommand,
}

/// A plan's objectives.
#[derive(Debug, Subcommand)]
pub enum ObjectiveCommand {
    /// Set (or redefine) an objective of a plan.
    Set {
        /// The account.
        account: String,
        /// The objective's id.
        objective: String,
        /// The plan it belongs to.
        #[arg(long)]
        plan: String,
        /// Short title.
        #[arg(long)]
        title: String,
        /// What is measured, e.g. "share of wallet %".
        #[arg(long, default_value = "")]
        metric: String,
        /// Target value, as text ("35%", "EUR 2M").
        #[arg(long, default_value = "")]
        target: String,
        /// Due date, YYYY-MM-DD.
        #[arg(long)]
        due: String,
        /// The team member who owns it (default: the actor).
        #[arg(long)]
        owner: Option<String>,
        /// Status: not-started, on-track, at-risk, off-track, achieved, abandoned.
        #[arg(long, default_value = "not-started")]
        status: String,
        #[command(flatten)]
        edit: EditArgs,
    },
    /// Record progress on an objective.
    Progress {
        /// The account.
        account: String,
        /// The objective's id.
        objective: String,
        /// New status: not-started, on-track, at-risk, off-track, achieved, abandoned.
        #[arg(long)]
        status: String,
        /// The metric's current value, as text.
        #[arg(long, default_value = "")]
        value: String,
        /// Note.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `keyplan opportunity ...`
#[derive(Debug, Args)]
pub struct OpportunityArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: OpportunityCommand,
}

/// Sales opportunities.
#[derive(Debug, Subcommand)]
pub enum OpportunityCommand {
    /// Identify a sales opportunity.
    Identify {
        /// The account.
        account: String,
        /// The opportunity's id.
        opportunity: String,
        /// Short title.
        #[arg(long)]
        title: String,
        /// Expected value: an amount and an ISO currency, e.g. `250000 EUR` or `1,200.50 USD`.
        #[arg(long)]
        value: String,
        /// Stage: identified, qualified, proposal, negotiation.
        #[arg(long, default_value = "identified")]
        stage: String,
        /// Expected close date, YYYY-MM-DD.
        #[arg(long)]
        close: String,
        /// The team member who owns it (default: the actor).
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Move an open opportunity to another stage.
    Stage {
        /// The account.
        account: String,
        /// The opportunity's id.
        opportunity: String,
        /// New stage: identified, qualified, proposal, negotiation.
        #[arg(long)]
        stage: String,
        /// New expected close date, YYYY-MM-DD (default: unchanged).
        #[arg(long)]
        close: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Record an opportunity as won.
    Win {
        /// The account.
        account: String,
        /// The opportunity's id.
        opportunity: String,
        /// The value actually won, e.g. `240000 EUR`.
        #[arg(long)]
        value: String,
        /// Date it closed, YYYY-MM-DD (default: today).
        #[arg(long)]
        on: Option<String>,
        /// Why it was won.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Record an opportunity as lost.
    Lose {
        /// The account.
        account: String,
        /// The opportunity's id.
        opportunity: String,
        /// Date it closed, YYYY-MM-DD (default: today).
        #[arg(long)]
        on: Option<String>,
        /// Why it was lost.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `keyplan action ...`
#[derive(Debug, Args)]
pub struct ActionArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ActionCommand,
}

/// The action plan.
#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Add an action item, optionally linked to an objective, an opportunity or a review.
    Add {
        /// The account.
        account: String,
        /// The action item's id.
        action: String,
        /// What is to be done.
        #[arg(long)]
        title: String,
        /// The team member who owns it (default: the actor).
        #[arg(long)]
        owner: Option<String>,
        /// Due date, YYYY-MM-DD.
        #[arg(long)]
        due: String,
        /// It contributes to this objective...
        #[arg(long, group = "link")]
        objective: Option<String>,
        /// ... or to this opportunity...
        #[arg(long, group = "link")]
        opportunity: Option<String>,
        /// ... or follows up this review.
        #[arg(long, group = "link")]
        review: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Complete an action item.
    Complete {
        /// The account.
        account: String,
        /// The action item's id.
        action: String,
        /// Date it was completed, YYYY-MM-DD (default: today).
        #[arg(long)]
        on: Option<String>,
        /// Note.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Cancel an action item.
    Cancel {
        /// The account.
        account: String,
        /// The action item's id.
        action: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `keyplan revenue ...`
#[derive(Debug, Args)]
pub struct RevenueArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: RevenueCommand,
}

/// Revenue against its goal.
#[derive(Debug, Subcommand)]
pub enum RevenueCommand {
    /// Record the revenue of a period against its goal.
    Record {
        /// The account.
        account: String,
        /// First day of the period, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day of the period, YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// Actual revenue, e.g. `180000 EUR`.
        #[arg(long)]
        actual: String,
        /// The period's goal, in the same currency, e.g. `200000 EUR`.
        #[arg(long)]
        goal: String,
        /// Product or product line (default: all products).
        #[arg(long, default_value = "")]
        product: String,
        /// Gross margin in percent, e.g. `23.5`.
        #[arg(long)]
        margin: Option<f64>,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `AMOUNT CURRENCY` or `CURRENCY AMOUNT`, the amount with at most the currency's decimals and
/// optional `,` or `_` thousands separators; exact (no floating point).
pub fn money(option: &str, given: &str) -> Result<pb::Money, CliError> {
    let invalid = |why: &str| {
        CliError::Usage(format!(
            "{option} {given:?}: {why}; write an amount and an ISO currency, e.g. `250000 EUR` \
             or `1,200.50 USD`"
        ))
    };
    let parts: Vec<&str> = given.split_whitespace().collect();
    let (amount, currency) = match parts.as_slice() {
        [a, c] if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => (*a, *c),
        [c, a] if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => (*a, *c),
        _ => return Err(invalid("not an amount and a currency")),
    };
    let currency = currency.to_ascii_uppercase();
    let decimals = currency_decimals(&currency);
    let amount: String = amount.chars().filter(|c| *c != ',' && *c != '_').collect();
    let (whole, fraction) = amount.split_once('.').unwrap_or((&amount, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return Err(invalid("the amount is not a number"));
    }
    if fraction.len() > decimals as usize {
        return Err(invalid(&format!("{currency} has {decimals} decimals")));
    }
    let scale = 10_i64.pow(decimals);
    let padded = format!("{fraction:0<width$}", width = decimals as usize);
    let minor_units = whole
        .parse::<i64>()
        .ok()
        .and_then(|w| w.checked_mul(scale))
        .and_then(|w| {
            let f = if padded.is_empty() {
                0
            } else {
                padded.parse::<i64>().ok()?
            };
            w.checked_add(f)
        })
        .ok_or_else(|| invalid("the amount is too large"))?;
    Ok(pb::Money {
        currency,
        minor_units,
    })
}

/// `keyplan objective set|progress`.
pub async fn objective(s: &Session, command: ObjectiveCommand) -> Result<(), CliError> {
    match command {
        ObjectiveCommand::Set {
            account,
            objective,
            plan,
            title,
            metric,
            target,
            due,
            owner,
            status,
            edit,
        } => {
            let kind = Kind::SetObjective(pb::ObjectiveSet {
                objective_id: objective,
                plan_id: plan,
                title,
                metric,
                target,
                due_on: time::date("--due", &due)?,
                owner: owner.unwrap_or_else(|| s.actor.clone()),
                status: parse("--status", "keyplan.v1.ObjectiveStatus", &status)?,
            });
            let expected = edit_version(s, &account, &edit).await?;
            execute(s, &account, expected, &edit.write, kind, "objective set").await
        }
        ObjectiveCommand::Progress {
            account,
            objective,
            status,
            value,
            note,
            write,
        } => {
            let kind = Kind::ProgressObjective(pb::ObjectiveProgressed {
                objective_id: objective,
                status: parse("--status", "keyplan.v1.ObjectiveStatus", &status)?,
                current_value: value,
                note,
            });
            execute(s, &account, None, &write, kind, "progress recorded").await
        }
    }
}

/// `keyplan opportunity identify|stage|win|lose`.
pub async fn opportunity(s: &Session, command: OpportunityCommand) -> Result<(), CliError> {
    match command {
        OpportunityCommand::Identify {
            account,
            opportunity,
            title,
            value,
            stage,
            close,
            owner,
            write,
        } => {
            let kind = Kind::IdentifyOpportunity(pb::OpportunityIdentified {
                opportunity_id: opportunity,
                title,
                value: Some(money("--value", &value)?),
                stage: parse("--stage", "keyplan.v1.OpportunityStage", &stage)?,
                expected_close_on: time::date("--close", &close)?,
                owner: owner.unwrap_or_else(|| s.actor.clone()),
            });
            execute(s, &account, None, &write, kind, "opportunity identified").await
        }
        OpportunityCommand::Stage {
            account,
            opportunity,
            stage,
            close,
            write,
        } => {
            let kind = Kind::ChangeOpportunityStage(pb::OpportunityStageChanged {
                opportunity_id: opportunity,
                stage: parse("--stage", "keyplan.v1.OpportunityStage", &stage)?,
                expected_close_on: close
                    .map(|c| time::date("--close", &c))
                    .transpose()?
                    .unwrap_or_default(),
            });
            execute(s, &account, None, &write, kind, "stage changed").await
        }
        OpportunityCommand::Win {
            account,
            opportunity,
            value,
            on,
            reason,
            write,
        } => {
            let kind = Kind::WinOpportunity(pb::OpportunityWon {
                opportunity_id: opportunity,
                value: Some(money("--value", &value)?),
                closed_on: time::date_or_today("--on", on)?,
                reason,
            });
            execute(s, &account, None, &write, kind, "opportunity won").await
        }
        OpportunityCommand::Lose {
            account,
            opportunity,
            on,
            reason,
            write,
        } => {
            let kind = Kind::LoseOpportunity(pb::OpportunityLost {
                opportunity_id: opportunity,
                closed_on: time::date_or_today("--on", on)?,
                reason,
            });
            execute(s, &account, None, &write, kind, "opportunity lost").await
        }
    }
}

/// `keyplan action add|complete|cancel`.
pub async fn action(s: &Session, command: ActionCommand) -> Result<(), CliError> {
    match command {
        ActionCommand::Add {
            account,
            action,
            title,
            owner,
            due,
            objective,
            opportunity,
            review,
            write,
        } => {
            use pb::action_link::Target;
            let target = objective
                .map(Target::ObjectiveId)
                .or(opportunity.map(Target::OpportunityId))
                .or(review.map(Target::ReviewId));
            let kind = Kind::AddActionItem(pb::ActionItemAdded {
                action_item_id: action,
                title,
                owner: owner.unwrap_or_else(|| s.actor.clone()),
                due_on: time::date("--due", &due)?,
                link: target.map(|t| pb::ActionLink { target: Some(t) }),
            });
            execute(s, &account, None, &write, kind, "action added").await
        }
        ActionCommand::Complete {
            account,
            action,
            on,
            note,
            write,
        } => {
            let kind = Kind::CompleteActionItem(pb::ActionItemCompleted {
                action_item_id: action,
                completed_on: time::date_or_today("--on", on)?,
                note,
            });
            execute(s, &account, None, &write, kind, "action completed").await
        }
        ActionCommand::Cancel {
            account,
            action,
            reason,
            write,
        } => {
            let kind = Kind::CancelActionItem(pb::ActionItemCancelled {
                action_item_id: action,
                reason,
            });
            execute(s, &account, None, &write, kind, "action cancelled").await
        }
    }
}

/// `keyplan revenue record`.
pub async fn revenue(s: &Session, command: RevenueCommand) -> Result<(), CliError> {
    let RevenueCommand::Record {
        account,
        from,
        to,
        actual,
        goal,
        product,
        margin,
        write,
    } = command;
    let margin_basis_points = margin
        .map(|m| {
            let bp = (m * 100.0).round();
            if bp.is_finite() && (-1_000_000.0..=1_000_000.0).contains(&bp) {
                #[allow(clippy::cast_possible_truncation)] // bounded just above
                Ok(bp as i32)
            } else {
                Err(CliError::Usage(format!(
                    "--margin {m}: a percentage between -10000 and 10000"
                )))
            }
        })
        .transpose()?;
    let kind = Kind::RecordRevenue(pb::RevenueRecorded {
        period_start: time::date("--from", &from)?,
        period_end: time::date("--to", &to)?,
        product,
        actual: Some(money("--actual", &actual)?),
        goal: Some(money("--goal", &goal)?),
        margin_basis_points,
    });
    execute(s, &account, None, &write, kind, "revenue recorded").await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn money_is_exact_in_the_currencys_minor_unit() {
        let m = money("--value", "1,200.5 usd").unwrap();
        assert_eq!((m.currency.as_str(), m.minor_units), ("USD", 120_050));
        let m = money("--value", "EUR 250000").unwrap();
        assert_eq!(m.minor_units, 25_000_000);
        assert_eq!(money("--value", "5000 JPY").unwrap().minor_units, 5000);
        assert_eq!(money("--value", "1.234 KWD").unwrap().minor_units, 1234);
        assert!(money("--value", "12.5 JPY").is_err());
        assert!(money("--value", "1.234 EUR").is_err());
        assert!(money("--value", "-5 EUR").is_err());
        assert!(money("--value", "5").is_err());
        assert!(money("--value", "5 EURO").is_err());
        assert!(money("--value", "99999999999999999999 EUR").is_err());
    }
}
