//! The writing subcommands: each builds one command of `CommandService/Execute` from the
//! options a person typed, sends it, and says what was recorded.

use keyplan_proto::pb;
use keyplan_proto::pb::account_service_client::AccountServiceClient;
use keyplan_proto::pb::command::Kind;
use keyplan_proto::pb::command_service_client::CommandServiceClient;

use super::args::{
    AccountCommand, EditArgs, InteractionCommand, InteractionDetailsArgs, PlanCommand,
    ReviewCommand, RuleCommand, StakeholderCommand, TeamCommand, WriteArgs,
};
use super::enums::parse;
use super::output::print_line;
use super::time::{self, DayPoint};
use super::{CliError, Session};

/// Sends `kind` for `account` and prints where it was stored (or the response as JSON).
pub(super) async fn execute(
    s: &Session,
    account: &str,
    expected_version: Option<pb::ExpectedVersion>,
    write: &WriteArgs,
    kind: Kind,
    done: &str,
) -> Result<(), CliError> {
    let occurred_at = write.effective.as_deref().map(effective).transpose()?;
    let response = CommandServiceClient::new(s.channel.clone())
        .execute(pb::ExecuteRequest {
            tenant: s.tenant.clone(),
            account_id: account.to_owned(),
            expected_version,
            idempotency_key: write.idempotency_key.clone().unwrap_or_default(),
            actor: s.actor.clone(),
            occurred_at,
            command: Some(pb::Command { kind: Some(kind) }),
            ..Default::default()
        })
        .await?
        .into_inner();
    if s.out.json {
        return s.out.json("keyplan.v1.ExecuteResponse", &response);
    }
    let again = if response.deduplicated {
        " (a retry: it had been recorded before, nothing new was stored)"
    } else {
        ""
    };
    print_line(&format!(
        "{done}: account {account} is now at version {} (position {}){again}",
        response.last_version, response.last_position
    ))
}

/// `--effective`: an instant, a date, or how long ago.
fn effective(given: &str) -> Result<prost_types::Timestamp, CliError> {
    match humantime::parse_duration(given.trim()) {
        Ok(ago) => {
            let ago = chrono::Duration::from_std(ago)
                .map_err(|_| CliError::Usage("--effective: too long ago".to_owned()))?;
            Ok(time::timestamp(chrono::Utc::now() - ago))
        }
        Err(_) => time::instant("--effective", given, DayPoint::StartOfDay),
    }
}

fn exact(version: u64) -> Option<pb::ExpectedVersion> {
    Some(pb::ExpectedVersion {
        kind: Some(pb::expected_version::Kind::Exact(version)),
    })
}

/// The version an edit names: the one given, else the account's current one.
pub(super) async fn edit_version(
    s: &Session,
    account: &str,
    edit: &EditArgs,
) -> Result<Option<pb::ExpectedVersion>, CliError> {
    if let Some(version) = edit.expected_version {
        return Ok(exact(version));
    }
    let current = AccountServiceClient::new(s.channel.clone())
        .get_account(pb::GetAccountRequest {
            tenant: s.tenant.clone(),
            account_id: account.to_owned(),
            max_interactions: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(exact(current.version))
}

/// `keyplan account register|assess|promote|demote`.
pub async fn account(s: &Session, command: AccountCommand) -> Result<(), CliError> {
    match command {
        AccountCommand::Register {
            account,
            name,
            industry,
            region,
            headquarters,
            tier,
            write,
        } => {
            let kind = Kind::RegisterAccount(pb::AccountRegistered {
                name,
                industry,
                region,
                headquarters,
                tier: parse("--tier", "keyplan.v1.Tier", &tier)?,
            });
            let no_stream = Some(pb::ExpectedVersion {
                kind: Some(pb::expected_version::Kind::NoStream(true)),
            });
            execute(s, &account, no_stream, &write, kind, "registered").await
        }
        AccountCommand::Assess {
            account,
            criteria,
            recommend,
            assessed_by,
            write,
        } => {
            let criteria = criteria
                .iter()
                .map(|c| criterion(c))
                .collect::<Result<Vec<_>, _>>()?;
            let kind = Kind::AssessTier(pb::AssessTier {
                criteria,
                recommended_tier: parse("--recommend", "keyplan.v1.Tier", &recommend)?,
                assessed_by: assessed_by.unwrap_or_else(|| s.actor.clone()),
            });
            execute(s, &account, None, &write, kind, "assessed").await
        }
        AccountCommand::Promote {
            account,
            to,
            reason,
            write,
        } => {
            let kind = Kind::PromoteAccount(pb::ChangeTier {
                to: parse("--to", "keyplan.v1.Tier", &to)?,
                reason,
            });
            execute(s, &account, None, &write, kind, "promoted").await
        }
        AccountCommand::Demote {
            account,
            to,
            reason,
            write,
        } => {
            let kind = Kind::DemoteAccount(pb::ChangeTier {
                to: parse("--to", "keyplan.v1.Tier", &to)?,
                reason,
            });
            execute(s, &account, None, &write, kind, "demoted").await
        }
        AccountCommand::Show { .. } | AccountCommand::List => Err(CliError::Usage(
            "internal: a read was sent to the writes".to_owned(),
        )),
    }
}

/// `NAME:WEIGHT:SCORE` (the name may hold colons itself).
fn criterion(given: &str) -> Result<pb::TierCriterion, CliError> {
    let invalid = || {
        CliError::Usage(format!(
            "--criterion {given:?}: expected NAME:WEIGHT:SCORE, e.g. \"revenue potential:3:8\""
        ))
    };
    let mut parts = given.rsplitn(3, ':');
    let score = parts.next().and_then(|p| p.trim().parse().ok());
    let weight = parts.next().and_then(|p| p.trim().parse().ok());
    let name = parts.next().map(str::trim).filter(|n| !n.is_empty());
    match (name, weight, score) {
        (Some(name), Some(weight), Some(score)) => Ok(pb::TierCriterion {
            name: name.to_owned(),
            weight,
            score,
        }),
        _ => Err(invalid()),
    }
}

/// `keyplan team assign|unassign`.
pub async fn team(s: &Session, command: TeamCommand) -> Result<(), CliError> {
    match command {
        TeamCommand::Assign {
            account,
            person,
            name,
            role,
            write,
        } => {
            let kind = Kind::AssignTeamMember(pb::TeamMemberAssigned {
                person_id: person,
                name,
                role: parse("--role", "keyplan.v1.TeamRole", &role)?,
            });
            execute(s, &account, None, &write, kind, "assigned").await
        }
        TeamCommand::Unassign {
            account,
            person,
            reason,
            write,
        } => {
            let kind = Kind::UnassignTeamMember(pb::TeamMemberUnassigned {
                person_id: person,
                reason,
            });
            execute(s, &account, None, &write, kind, "unassigned").await
        }
    }
}

/// `keyplan plan draft|revise`.
pub async fn plan(s: &Session, command: PlanCommand) -> Result<(), CliError> {
    match command {
        PlanCommand::Draft {
            account,
            plan,
            period,
            start,
            end,
            review_frequency,
            prepared_by,
            prepared_on,
            write,
        } => {
            let end = if end.is_empty() {
                end
            } else {
                time::date("--end", &end)?
            };
            let kind = Kind::DraftPlan(pb::PlanDrafted {
                plan_id: plan,
                period: Some(pb::PlanPeriod {
                    kind: parse("--period", "keyplan.v1.PlanPeriodKind", &period)?,
                    start: time::date("--start", &start)?,
                    end,
                }),
                prepared_by: prepared_by.unwrap_or_else(|| s.actor.clone()),
                prepared_on: time::date_or_today("--prepared-on", prepared_on)?,
                review_frequency: parse(
                    "--review-frequency",
                    "keyplan.v1.ReviewFrequency",
                    &review_frequency,
                )?,
            });
            execute(s, &account, None, &write, kind, "plan drafted").await
        }
        PlanCommand::Revise {
            account,
            plan,
            section,
            text,
            edit,
        } => {
            let kind = Kind::RevisePlanSection(pb::PlanSectionRevised {
                plan_id: plan,
                section: parse("--section", "keyplan.v1.PlanSection", &section)?,
                text,
            });
            let expected = edit_version(s, &account, &edit).await?;
            execute(s, &account, expected, &edit.write, kind, "plan revised").await
        }
        PlanCommand::Show { .. } => Err(CliError::Usage(
            "internal: a read was sent to the writes".to_owned(),
        )),
    }
}

/// `keyplan stakeholder add|update|depart`.
pub async fn stakeholder(s: &Session, command: StakeholderCommand) -> Result<(), CliError> {
    match command {
        StakeholderCommand::Add {
            account,
            stakeholder,
            name,
            title,
            reports_to,
            buying_role,
            influence,
            attitude,
            write,
        } => {
            let kind = Kind::AddStakeholder(pb::StakeholderAdded {
                stakeholder_id: stakeholder,
                name,
                title,
                reports_to,
                buying_role: parse("--buying-role", "keyplan.v1.BuyingRole", &buying_role)?,
                influence,
                attitude: parse("--attitude", "keyplan.v1.Attitude", &attitude)?,
            });
            execute(s, &account, None, &write, kind, "stakeholder added").await
        }
        StakeholderCommand::Update {
            account,
            stakeholder,
            title,
            reports_to,
            clear_reports_to,
            buying_role,
            influence,
            attitude,
            note,
            edit,
        } => {
            let kind = Kind::ChangeStakeholderProfile(pb::StakeholderProfileChanged {
                stakeholder_id: stakeholder,
                title,
                reports_to: reports_to.unwrap_or_default(),
                clear_reports_to,
                buying_role: buying_role
                    .map(|r| parse("--buying-role", "keyplan.v1.BuyingRole", &r))
                    .transpose()?,
                influence,
                attitude: attitude
                    .map(|a| parse("--attitude", "keyplan.v1.Attitude", &a))
                    .transpose()?,
                note,
            });
            let expected = edit_version(s, &account, &edit).await?;
            execute(
                s,
                &account,
                expected,
                &edit.write,
                kind,
                "stakeholder updated",
            )
            .await
        }
        StakeholderCommand::Depart {
            account,
            stakeholder,
            on,
            reason,
            write,
        } => {
            let kind = Kind::RecordStakeholderDeparture(pb::StakeholderDeparted {
                stakeholder_id: stakeholder,
                departed_on: time::date_or_today("--on", on)?,
                reason,
            });
            execute(s, &account, None, &write, kind, "departure recorded").await
        }
    }
}

/// `keyplan rule set|retire`.
pub async fn rule(s: &Session, command: RuleCommand) -> Result<(), CliError> {
    match command {
        RuleCommand::Set {
            account,
            rule,
            stakeholder,
            buying_role,
            owner,
            every_days,
            channels,
            opportunity,
            edit,
        } => {
            let target = match (stakeholder, buying_role) {
                (Some(id), _) => pb::rule_target::Target::StakeholderId(id),
                (None, Some(role)) => pb::rule_target::Target::BuyingRole(parse(
                    "--buying-role",
                    "keyplan.v1.BuyingRole",
                    &role,
                )?),
                (None, None) => {
                    return Err(CliError::Usage(
                        "a rule is about a --stakeholder or a --buying-role".to_owned(),
                    ))
                }
            };
            let kind = Kind::SetEngagementRule(pb::EngagementRuleSet {
                rule_id: rule,
                target: Some(pb::RuleTarget {
                    target: Some(target),
                }),
                owner,
                cadence_days: every_days,
                channels: channels
                    .iter()
                    .map(|c| parse("--channel", "keyplan.v1.Channel", c))
                    .collect::<Result<_, _>>()?,
                opportunity_id: opportunity,
            });
            let expected = edit_version(s, &account, &edit).await?;
            execute(s, &account, expected, &edit.write, kind, "rule set").await
        }
        RuleCommand::Retire {
            account,
            rule,
            reason,
            write,
        } => {
            let kind = Kind::RetireEngagementRule(pb::EngagementRuleRetired {
                rule_id: rule,
                reason,
            });
            execute(s, &account, None, &write, kind, "rule retired").await
        }
    }
}

/// The interaction as typed. With an idempotency key the time must be given with `--at`: a
/// retry has to repeat the same command, and "now" (or `--ago`) differs on every run.
fn details(
    s: &Session,
    d: InteractionDetailsArgs,
    write: &WriteArgs,
) -> Result<pb::InteractionDetails, CliError> {
    if write.idempotency_key.is_some() && d.at.is_none() {
        return Err(CliError::Usage(
            "with --idempotency-key, say when it happened with --at: a retry must repeat the \
             same command, and \"now\" or --ago is another instant on every run"
                .to_owned(),
        ));
    }
    let occurred_at = match (d.at, d.ago) {
        (Some(at), _) => time::instant("--at", &at, DayPoint::Noon)?,
        (None, Some(ago)) => {
            let ago = chrono::Duration::from_std(ago)
                .map_err(|_| CliError::Usage("--ago: too long ago".to_owned()))?;
            time::timestamp(chrono::Utc::now() - ago)
        }
        (None, None) => time::timestamp(chrono::Utc::now()),
    };
    let participants = if d.participants.is_empty() {
        vec![s.actor.clone()]
    } else {
        d.participants
    };
    Ok(pb::InteractionDetails {
        occurred_at: Some(occurred_at),
        channel: parse("--channel", "keyplan.v1.Channel", &d.channel)?,
        stakeholders: d.stakeholders,
        participants,
        summary: d.summary,
        sentiment: parse("--sentiment", "keyplan.v1.Sentiment", &d.sentiment)?,
        next_step: d.next_step,
        opportunity_id: d.opportunity,
    })
}

/// `keyplan interaction log|correct`.
pub async fn interaction(s: &Session, command: InteractionCommand) -> Result<(), CliError> {
    match command {
        InteractionCommand::Log {
            account,
            interaction,
            details: d,
            write,
        } => {
            let kind = Kind::LogInteraction(pb::InteractionLogged {
                interaction_id: interaction,
                details: Some(details(s, d, &write)?),
            });
            execute(s, &account, None, &write, kind, "interaction logged").await
        }
        InteractionCommand::Correct {
            account,
            interaction,
            details: d,
            reason,
            edit,
        } => {
            let kind = Kind::CorrectInteraction(pb::InteractionCorrected {
                interaction_id: interaction,
                details: Some(details(s, d, &edit.write)?),
                reason,
            });
            let expected = edit_version(s, &account, &edit).await?;
            execute(
                s,
                &account,
                expected,
                &edit.write,
                kind,
                "interaction corrected",
            )
            .await
        }
    }
}

/// `keyplan review schedule|record|cancel`.
pub async fn review(s: &Session, command: ReviewCommand) -> Result<(), CliError> {
    match command {
        ReviewCommand::Schedule {
            account,
            review,
            kind,
            plan,
            due,
            supplier,
            customer,
            write,
        } => {
            let command = Kind::ScheduleReview(pb::ReviewScheduled {
                review_id: review,
                kind: parse("--kind", "keyplan.v1.ReviewKind", &kind)?,
                plan_id: plan,
                due_on: time::date("--due", &due)?,
                supplier_attendees: if supplier.is_empty() {
                    vec![s.actor.clone()]
                } else {
                    supplier
                },
                customer_attendees: customer,
            });
            execute(s, &account, None, &write, command, "review scheduled").await
        }
        ReviewCommand::Record {
            account,
            review,
            held_on,
            outcome,
            health,
            decisions,
            supplier,
            customer,
            write,
        } => {
            let command = Kind::RecordReviewOutcome(pb::ReviewOutcomeRecorded {
                review_id: review,
                held_on: time::date_or_today("--held-on", held_on)?,
                supplier_attendees: supplier,
                customer_attendees: customer,
                outcome: parse("--outcome", "keyplan.v1.ReviewOutcome", &outcome)?,
                health: parse("--health", "keyplan.v1.HealthRating", &health)?,
                decisions,
                follow_up_actions: Vec::new(),
            });
            execute(s, &account, None, &write, command, "review recorded").await
        }
        ReviewCommand::Cancel {
            account,
            review,
            reason,
            write,
        } => {
            let command = Kind::CancelReview(pb::ReviewCancelled {
                review_id: review,
                reason,
            });
            execute(s, &account, None, &write, command, "review cancelled").await
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn criteria_are_name_weight_score() {
        let c = criterion("revenue potential: 3:8").unwrap();
        assert_eq!(
            (c.name.as_str(), c.weight, c.score),
            ("revenue potential", 3, 8)
        );
        let c = criterion("fit: strategy:2:9").unwrap();
        assert_eq!(c.name, "fit: strategy");
        assert!(criterion("revenue:3").is_err());
        assert!(criterion(":3:8").is_err());
        assert!(criterion("revenue:x:8").is_err());
    }
}
