//! The KAM CLI: key account management against a running node without writing JSON
//! (`keyplan account register`, `rule set`, `interaction log`, `timeline`, `compliance`,
//! `portfolio`, `watch`, `alerts watch`, ...).
//!
//! Every subcommand is one or two gRPC calls over the public API, the same an integration
//! makes, so the CLI can do nothing a client could not. Answers are printed as tables for a
//! person (colours only on a terminal, and never with `NO_COLOR`) or as the API's proto3 JSON
//! with `--json`; a refusal is printed in plain words with what to do about it, and the
//! process exits with status 1.

pub mod args;
mod audit;
mod demo;
mod enums;
mod output;
mod pipeline;
mod reads;
mod session;
mod time;
mod watch;
mod writes;

use thiserror::Error;

use crate::tls::ConnectError;
pub use output::to_json;
pub use session::Session;

/// The KAM subcommands, flattened into `keyplan`'s own.
#[derive(Debug, clap::Subcommand)]
pub enum KamCommand {
    /// Key accounts: register, show, list, assess, promote, demote.
    Account(args::AccountArgs),
    /// The supplier's account team: assign, unassign.
    Team(args::TeamArgs),
    /// Account plans: draft, revise, show.
    Plan(args::PlanArgs),
    /// The customer's decision-making unit: add, update, depart.
    Stakeholder(args::StakeholderArgs),
    /// Engagement rules: set, retire.
    Rule(args::RuleArgs),
    /// Interactions: log, correct.
    Interaction(args::InteractionArgs),
    /// Objectives of a plan: set, progress.
    Objective(pipeline::ObjectiveArgs),
    /// Sales opportunities: identify, stage, win, lose.
    Opportunity(pipeline::OpportunityArgs),
    /// The action plan: add, complete, cancel.
    Action(pipeline::ActionArgs),
    /// Revenue against its goal: record.
    Revenue(pipeline::RevenueArgs),
    /// Reviews: schedule, record, cancel.
    Review(args::ReviewArgs),
    /// An account's history, newest first, in words.
    Timeline(args::TimelineArgs),
    /// Whether engagement rules and plan reviews are kept, for an account or rolled up.
    Compliance(args::ComplianceArgs),
    /// The tenant's accounts ranked, with activity, pipeline and compliance.
    Portfolio(args::PortfolioArgs),
    /// Historical activity: counts, DMU coverage, quiet accounts, opportunities.
    Activity(args::ActivityArgs),
    /// Audit: verify, export, as-of, diff.
    Audit(args::AuditArgs),
    /// Follow an account's timeline live (Ctrl-C to stop).
    Watch(args::WatchArgs),
    /// Compliance alerts: watch them live (Ctrl-C to stop).
    Alerts(args::AlertsArgs),
    /// Demonstration data: `demo seed` writes a realistic portfolio into a running node.
    Demo(args::DemoArgs),
}

/// Why a CLI command failed, in words a person can act on.
#[derive(Debug, Error)]
pub enum CliError {
    /// The node cannot be reached, or the connection options are unusable.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The node refused or failed the call.
    #[error("{}", explain(.0))]
    Status(#[from] tonic::Status),
    /// An argument's value is not usable (checked before anything is sent).
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a local file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The audit found a broken hash chain (the command's answer, as a failure status).
    #[error("{0}")]
    Verification(String),
}

/// A refusal in plain words: what it means and, where there is one, what to do.
fn explain(status: &tonic::Status) -> String {
    use tonic::Code;
    let message = status.message();
    match status.code() {
        Code::InvalidArgument => format!("refused, nothing was stored: {message}"),
        Code::NotFound => format!("not found: {message}"),
        Code::AlreadyExists => format!("already exists, nothing was stored: {message}"),
        Code::FailedPrecondition => format!("not possible now, nothing was stored: {message}"),
        // The node's message says what the account holds and what was expected.
        Code::Aborted => format!("nothing was stored: {message}"),
        Code::PermissionDenied => format!("not allowed: {message}"),
        Code::Unauthenticated => format!(
            "the node wants to know who you are: {message} (pass a token with --token or \
             KEYPLAN_TOKEN)"
        ),
        Code::Unavailable => format!("the node cannot answer now: {message}; try again"),
        Code::DeadlineExceeded => format!("no answer in time: {message}"),
        Code::Unimplemented => format!(
            "this node does not serve that (a projections node keeps no log, an ingest node \
             no read models): {message}"
        ),
        Code::Unknown => format!("the outcome is unknown: {message}"),
        code => format!("{code:?}: {message}"),
    }
}

/// Runs one KAM subcommand.
pub async fn run(command: KamCommand) -> Result<(), CliError> {
    match command {
        KamCommand::Account(a) => {
            let session = Session::open(&a.client).await?;
            match a.command {
                args::AccountCommand::Show {
                    account,
                    interactions,
                } => reads::account_show(&session, &account, interactions).await,
                args::AccountCommand::List => reads::account_list(&session).await,
                command => writes::account(&session, command).await,
            }
        }
        KamCommand::Team(a) => writes::team(&Session::open(&a.client).await?, a.command).await,
        KamCommand::Plan(a) => {
            let session = Session::open(&a.client).await?;
            match a.command {
                args::PlanCommand::Show { account, plan } => {
                    reads::plan_show(&session, &account, plan.as_deref()).await
                }
                command => writes::plan(&session, command).await,
            }
        }
        KamCommand::Stakeholder(a) => {
            writes::stakeholder(&Session::open(&a.client).await?, a.command).await
        }
        KamCommand::Rule(a) => writes::rule(&Session::open(&a.client).await?, a.command).await,
        KamCommand::Interaction(a) => {
            writes::interaction(&Session::open(&a.client).await?, a.command).await
        }
        KamCommand::Objective(a) => {
            pipeline::objective(&Session::open(&a.client).await?, a.command).await
        }
        KamCommand::Opportunity(a) => {
            pipeline::opportunity(&Session::open(&a.client).await?, a.command).await
        }
        KamCommand::Action(a) => {
            pipeline::action(&Session::open(&a.client).await?, a.command).await
        }
        KamCommand::Revenue(a) => {
            pipeline::revenue(&Session::open(&a.client).await?, a.command).await
        }
        KamCommand::Review(a) => writes::review(&Session::open(&a.client).await?, a.command).await,
        KamCommand::Timeline(a) => reads::timeline(&Session::open(&a.client).await?, &a).await,
        KamCommand::Compliance(a) => reads::compliance(&Session::open(&a.client).await?, &a).await,
        KamCommand::Portfolio(a) => reads::portfolio(&Session::open(&a.client).await?, &a).await,
        KamCommand::Activity(a) => {
            reads::activity(&Session::open(&a.client).await?, a.command).await
        }
        KamCommand::Audit(a) => audit::run(&Session::open(&a.client).await?, a.command).await,
        KamCommand::Watch(a) => watch::run(&Session::open(&a.client).await?, &a).await,
        KamCommand::Alerts(a) => {
            let session = Session::open(&a.client).await?;
            match a.command {
                args::AlertsCommand::Watch { kinds, account } => {
                    watch::alerts(&session, &kinds, account).await
                }
            }
        }
        KamCommand::Demo(a) => demo::run(a).await,
    }
}
