//! The reading subcommands: accounts, plans, the timeline, compliance, the portfolio and
//! activity, as tables for a person or as the API's JSON.

use keyplan_proto::pb;
use keyplan_proto::pb::account_service_client::AccountServiceClient;
use keyplan_proto::pb::activity_service_client::ActivityServiceClient;
use keyplan_proto::pb::compliance_service_client::ComplianceServiceClient;
use keyplan_proto::pb::timeline_service_client::TimelineServiceClient;

use super::args::{ActivityCommand, ComplianceArgs, PortfolioArgs, TimelineArgs};
use super::enums::{label, parse};
use super::output::{cut, money, outline, print_line, print_table, table, Output, Tone};
use super::time::{self, DayPoint};
use super::{CliError, Session};

async fn get_account(
    s: &Session,
    account: &str,
    interactions: u32,
) -> Result<pb::Account, CliError> {
    Ok(AccountServiceClient::new(s.channel.clone())
        .get_account(pb::GetAccountRequest {
            tenant: s.tenant.clone(),
            account_id: account.to_owned(),
            max_interactions: interactions,
            ..Default::default()
        })
        .await?
        .into_inner())
}

/// `keyplan account list`.
pub async fn account_list(s: &Session) -> Result<(), CliError> {
    let list = AccountServiceClient::new(s.channel.clone())
        .list_accounts(pb::ListAccountsRequest {
            tenant: s.tenant.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    if s.out.json {
        return s.out.json("keyplan.v1.ListAccountsResponse", &list);
    }
    let mut t = table(&[
        "ACCOUNT",
        "NAME",
        "TIER",
        "KAM",
        "STAKEHOLDERS",
        "RULES",
        "OPEN OPPS",
        "INTERACTIONS",
        "VERSION",
    ]);
    for a in &list.accounts {
        t.add_row(vec![
            a.account_id.clone(),
            a.name.clone(),
            label("keyplan.v1.Tier", a.tier),
            a.key_account_manager.clone(),
            a.stakeholders.to_string(),
            a.active_rules.to_string(),
            a.open_opportunities.to_string(),
            a.interactions.to_string(),
            a.version.to_string(),
        ]);
    }
    print_table(&t, "no accounts yet")
}

/// `keyplan account show`: the account's state, section by section.
pub async fn account_show(s: &Session, account: &str, interactions: u32) -> Result<(), CliError> {
    let a = get_account(s, account, interactions).await?;
    if s.out.json {
        return s.out.json("keyplan.v1.Account", &a);
    }
    print_line(&format!(
        "{} ({}), {} tier, version {}",
        a.name,
        a.account_id,
        label("keyplan.v1.Tier", a.tier),
        a.version
    ))?;
    let place: Vec<&str> = [&a.industry, &a.region, &a.headquarters]
        .into_iter()
        .map(String::as_str)
        .filter(|x| !x.is_empty())
        .collect();
    if !place.is_empty() {
        print_line(&place.join(" · "))?;
    }
    if let Some(assessed) = &a.last_assessment {
        print_line(&format!(
            "assessed by {}: weighted score {:.2}, recommends {}",
            assessed.assessed_by,
            f64::from(assessed.weighted_score_milli) / 1000.0,
            label("keyplan.v1.Tier", assessed.recommended_tier)
        ))?;
    }

    print_line("\nTeam")?;
    let mut t = table(&["PERSON", "NAME", "ROLE"]);
    for m in &a.team {
        t.add_row(vec![
            m.person_id.clone(),
            m.name.clone(),
            label("keyplan.v1.TeamRole", m.role),
        ]);
    }
    print_table(&t, "  nobody assigned")?;

    print_line("\nDecision-making unit")?;
    let mut t = table(&[
        "STAKEHOLDER",
        "NAME",
        "TITLE",
        "BUYING ROLE",
        "INFLUENCE",
        "ATTITUDE",
        "REPORTS TO",
        "LEFT",
    ]);
    for p in &a.stakeholders {
        t.add_row(vec![
            p.stakeholder_id.clone(),
            p.name.clone(),
            p.title.clone(),
            label("keyplan.v1.BuyingRole", p.buying_role),
            p.influence.to_string(),
            label("keyplan.v1.Attitude", p.attitude),
            p.reports_to.clone(),
            p.departed_on.clone(),
        ]);
    }
    print_table(&t, "  nobody yet")?;

    print_line("\nEngagement rules")?;
    let mut t = table(&["RULE", "TARGET", "OWNER", "EVERY", "CHANNELS", "RETIRED"]);
    for r in &a.engagement_rules {
        let Some(d) = &r.definition else { continue };
        t.add_row(vec![
            d.rule_id.clone(),
            target(d.target.as_ref()),
            d.owner.clone(),
            format!("{} days", d.cadence_days),
            channels(&d.channels),
            if r.retired {
                r.retire_reason.clone().max("yes".to_owned())
            } else {
                String::new()
            },
        ]);
    }
    print_table(&t, "  none")?;

    print_line(&format!(
        "\nInteractions ({} in all, the latest {} shown)",
        a.interactions_total,
        a.interactions.len()
    ))?;
    let mut t = table(&[
        "WHEN",
        "ID",
        "CHANNEL",
        "WITH",
        "BY",
        "SENTIMENT",
        "CORRECTED",
    ]);
    for i in &a.interactions {
        let Some(d) = &i.details else { continue };
        t.add_row(vec![
            time::minutes(d.occurred_at.as_ref()),
            i.interaction_id.clone(),
            label("keyplan.v1.Channel", d.channel),
            d.stakeholders.join(", "),
            d.participants.join(", "),
            label("keyplan.v1.Sentiment", d.sentiment),
            if i.corrections > 0 {
                i.corrections.to_string()
            } else {
                String::new()
            },
        ]);
    }
    print_table(&t, "  none")?;

    print_line("\nOpportunities")?;
    let mut t = table(&["OPPORTUNITY", "TITLE", "VALUE", "STATUS", "CLOSE"]);
    for o in &a.opportunities {
        let Some(id) = &o.identified else { continue };
        let (status, close) = match &o.status {
            Some(pb::opportunity::Status::Open(open)) => (
                label("keyplan.v1.OpportunityStage", open.stage),
                o.expected_close_on.clone(),
            ),
            Some(pb::opportunity::Status::Won(won)) => (
                format!(
                    "won ({})",
                    won.value.as_ref().map(money).unwrap_or_default()
                ),
                won.closed_on.clone(),
            ),
            Some(pb::opportunity::Status::Lost(lost)) => {
                ("lost".to_owned(), lost.closed_on.clone())
            }
            None => (String::new(), String::new()),
        };
        t.add_row(vec![
            id.opportunity_id.clone(),
            id.title.clone(),
            id.value.as_ref().map(money).unwrap_or_default(),
            status,
            close,
        ]);
    }
    print_table(&t, "  none")?;

    print_line("\nPlans")?;
    let mut t = table(&["PLAN", "PERIOD", "FROM", "TO", "REVIEWS", "SECTIONS"]);
    for p in &a.plans {
        let Some(d) = &p.drafted else { continue };
        let period = d.period.clone().unwrap_or_default();
        t.add_row(vec![
            d.plan_id.clone(),
            label("keyplan.v1.PlanPeriodKind", period.kind),
            period.start,
            period.end,
            label("keyplan.v1.ReviewFrequency", d.review_frequency),
            p.sections.len().to_string(),
        ]);
    }
    print_table(&t, "  none")?;

    print_line("\nObjectives")?;
    let mut t = table(&[
        "OBJECTIVE",
        "PLAN",
        "TITLE",
        "TARGET",
        "NOW",
        "STATUS",
        "DUE",
        "OWNER",
    ]);
    for o in &a.objectives {
        let Some(d) = &o.definition else { continue };
        t.add_row(vec![
            d.objective_id.clone(),
            d.plan_id.clone(),
            d.title.clone(),
            format!("{} {}", d.target, d.metric).trim().to_owned(),
            o.current_value.clone(),
            label("keyplan.v1.ObjectiveStatus", o.status),
            d.due_on.clone(),
            d.owner.clone(),
        ]);
    }
    print_table(&t, "  none")?;

    print_line("\nAction items")?;
    let mut t = table(&["ACTION", "TITLE", "OWNER", "DUE", "STATUS", "FOR"]);
    for i in &a.action_items {
        let Some(added) = &i.added else { continue };
        let link = match added.link.as_ref().and_then(|l| l.target.as_ref()) {
            Some(pb::action_link::Target::ObjectiveId(id)) => format!("objective {id}"),
            Some(pb::action_link::Target::OpportunityId(id)) => format!("opportunity {id}"),
            Some(pb::action_link::Target::ReviewId(id)) => format!("review {id}"),
            None => String::new(),
        };
        let status = label("keyplan.v1.ActionItemStatus", i.status);
        let status = if i.completed_on.is_empty() {
            status
        } else {
            format!("{status} {}", i.completed_on)
        };
        t.add_row(vec![
            added.action_item_id.clone(),
            cut(&added.title, 40),
            added.owner.clone(),
            added.due_on.clone(),
            status,
            link,
        ]);
    }
    print_table(&t, "  none")?;

    print_line("\nRevenue")?;
    let mut t = table(&["FROM", "TO", "PRODUCT", "ACTUAL", "GOAL", "MARGIN"]);
    for r in &a.revenue {
        t.add_row(vec![
            r.period_start.clone(),
            r.period_end.clone(),
            r.product.clone(),
            r.actual.as_ref().map(money).unwrap_or_default(),
            r.goal.as_ref().map(money).unwrap_or_default(),
            r.margin_basis_points
                .map(|bp| format!("{:.2} %", f64::from(bp) / 100.0))
                .unwrap_or_default(),
        ]);
    }
    print_table(&t, "  none")?;

    print_line("\nReviews")?;
    let mut t = table(&[
        "REVIEW", "KIND", "DUE", "STATUS", "HELD", "OUTCOME", "HEALTH",
    ]);
    for r in &a.reviews {
        let Some(sch) = &r.scheduled else { continue };
        let outcome = r.outcome.clone().unwrap_or_default();
        t.add_row(vec![
            sch.review_id.clone(),
            label("keyplan.v1.ReviewKind", sch.kind),
            sch.due_on.clone(),
            label("keyplan.v1.ReviewStatus", r.status),
            outcome.held_on,
            label("keyplan.v1.ReviewOutcome", outcome.outcome),
            label("keyplan.v1.HealthRating", outcome.health),
        ]);
    }
    print_table(&t, "  none")
}

fn target(t: Option<&pb::RuleTarget>) -> String {
    match t.and_then(|t| t.target.as_ref()) {
        Some(pb::rule_target::Target::StakeholderId(id)) => format!("stakeholder {id}"),
        Some(pb::rule_target::Target::BuyingRole(role)) => {
            format!("buying role {}", label("keyplan.v1.BuyingRole", *role))
        }
        None => String::new(),
    }
}

fn channels(channels: &[i32]) -> String {
    if channels.is_empty() {
        return "any".to_owned();
    }
    channels
        .iter()
        .map(|c| label("keyplan.v1.Channel", *c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `keyplan plan show`: each plan with its sections and objectives.
pub async fn plan_show(s: &Session, account: &str, plan: Option<&str>) -> Result<(), CliError> {
    let a = get_account(s, account, 1).await?;
    let plans: Vec<&pb::Plan> = a
        .plans
        .iter()
        .filter(|p| match plan {
            Some(id) => p.drafted.as_ref().is_some_and(|d| d.plan_id == id),
            None => true,
        })
        .collect();
    if let (Some(id), true) = (plan, plans.is_empty()) {
        return Err(CliError::Status(tonic::Status::not_found(format!(
            "account {account} has no plan {id:?}"
        ))));
    }
    if s.out.json {
        for p in &plans {
            s.out.json("keyplan.v1.Plan", *p)?;
        }
        return Ok(());
    }
    if plans.is_empty() {
        return print_line(&format!("account {account} has no plan yet"));
    }
    for p in plans {
        let Some(d) = &p.drafted else { continue };
        let period = d.period.clone().unwrap_or_default();
        print_line(&format!(
            "Plan {} ({} {} to {}, reviewed {}), prepared by {} on {}",
            d.plan_id,
            label("keyplan.v1.PlanPeriodKind", period.kind),
            period.start,
            if period.end.is_empty() {
                "open end".to_owned()
            } else {
                period.end
            },
            label("keyplan.v1.ReviewFrequency", d.review_frequency),
            d.prepared_by,
            d.prepared_on
        ))?;
        for section in &p.sections {
            print_line(&format!(
                "\n  {}:",
                label("keyplan.v1.PlanSection", section.section)
            ))?;
            for line in section.text.lines() {
                print_line(&format!("    {line}"))?;
            }
        }
        let mut t = table(&[
            "OBJECTIVE",
            "TITLE",
            "TARGET",
            "DUE",
            "OWNER",
            "STATUS",
            "NOW",
        ]);
        for o in &a.objectives {
            let Some(def) = &o.definition else { continue };
            if def.plan_id != d.plan_id {
                continue;
            }
            t.add_row(vec![
                def.objective_id.clone(),
                def.title.clone(),
                format!("{} {}", def.target, def.metric),
                def.due_on.clone(),
                def.owner.clone(),
                label("keyplan.v1.ObjectiveStatus", o.status),
                o.current_value.clone(),
            ]);
        }
        print_line("\n  Objectives")?;
        print_table(&t, "  none")?;
        print_line("")?;
    }
    Ok(())
}

/// `keyplan timeline ACCOUNT`.
pub async fn timeline(s: &Session, args: &TimelineArgs) -> Result<(), CliError> {
    use pb::list_timeline_request::Scope;
    let scope = if let Some(id) = &args.stakeholder {
        Scope::StakeholderId(id.clone())
    } else if let Some(id) = &args.plan {
        Scope::PlanId(id.clone())
    } else if let Some(id) = &args.person {
        Scope::PersonId(id.clone())
    } else if let Some(id) = &args.opportunity {
        Scope::OpportunityId(id.clone())
    } else {
        Scope::WholeAccount(pb::TimelineWholeAccount {})
    };
    let page = TimelineServiceClient::new(s.channel.clone())
        .list_timeline(pb::ListTimelineRequest {
            tenant: s.tenant.clone(),
            account_id: args.account.clone(),
            scope: Some(scope),
            event_types: args.event_types.clone(),
            actor: args.by.clone(),
            order: if args.oldest_first {
                pb::TimelineOrder::OldestFirst as i32
            } else {
                pb::TimelineOrder::NewestFirst as i32
            },
            page_size: args.limit,
            page_token: args.page_token.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    if s.out.json {
        return s.out.json("keyplan.v1.ListTimelineResponse", &page);
    }
    let mut t = table(&["WHEN", "WHAT", "BY", ""]);
    for e in &page.entries {
        t.add_row(timeline_row(e));
    }
    print_table(&t, "nothing on this timeline yet")?;
    if !page.next_page_token.is_empty() {
        print_line(&format!(
            "more: keyplan timeline {} --page-token {}",
            args.account, page.next_page_token
        ))?;
    }
    Ok(())
}

/// One timeline entry as a table row: when, what, who, and the entry's own summary.
pub fn timeline_row(e: &pb::TimelineEntry) -> Vec<String> {
    let mut summary = cut(&e.summary, 100);
    if e.corrected_by_position > 0 {
        summary.push_str(&format!(
            " (corrected at position {})",
            e.corrected_by_position
        ));
    }
    vec![
        time::minutes(e.occurred_at.as_ref()),
        e.event_type.clone(),
        e.actor.clone(),
        summary,
    ]
}

fn rule_tone(status: i32) -> Tone {
    match pb::ComplianceRuleStatus::try_from(status) {
        Ok(pb::ComplianceRuleStatus::OnTrack) => Tone::Good,
        Ok(pb::ComplianceRuleStatus::DueSoon) => Tone::Warning,
        _ => Tone::Bad,
    }
}

fn share(out: &Output, share: Option<&pb::ComplianceShare>) -> String {
    let Some(sh) = share else {
        return String::new();
    };
    let percent = sh
        .share
        .map(|share| format!("{:.0} %", share * 100.0))
        .unwrap_or_else(|| "-".to_owned());
    let tone = match sh.share {
        Some(share) if share >= 0.8 => Tone::Good,
        Some(share) if share >= 0.5 => Tone::Warning,
        Some(_) => Tone::Bad,
        None => Tone::Good,
    };
    format!(
        "{} on track ({} of {} rules; {} due soon, {} overdue, {} never met)",
        out.paint(&percent, tone),
        sh.on_track,
        sh.active,
        sh.status_due_soon,
        sh.status_overdue,
        sh.status_never_met
    )
}

/// `keyplan compliance ACCOUNT` and `keyplan compliance --rollup owner|account|tenant`.
pub async fn compliance(s: &Session, args: &ComplianceArgs) -> Result<(), CliError> {
    let as_of = args
        .as_of
        .as_deref()
        .map(|t| time::instant("--as-of", t, DayPoint::EndOfDay))
        .transpose()?;
    let axis = if args.known_at {
        pb::ComplianceAxis::AsKnownAt
    } else {
        pb::ComplianceAxis::AsHappenedBy
    } as i32;
    let mut client = ComplianceServiceClient::new(s.channel.clone());
    if let Some(group) = &args.rollup {
        let rollup = client
            .get_compliance_rollup(pb::GetComplianceRollupRequest {
                tenant: s.tenant.clone(),
                group_by: parse("--rollup", "keyplan.v1.ComplianceGroupBy", group)?,
                as_of,
                axis,
                min_position: 0,
            })
            .await?
            .into_inner();
        if s.out.json {
            return s.out.json("keyplan.v1.ComplianceRollup", &rollup);
        }
        print_line(&format!(
            "{}: {}",
            s.tenant,
            share(&s.out, rollup.total.as_ref())
        ))?;
        let mut t = table(&[group.to_ascii_uppercase().as_str(), "", "ON TRACK"]);
        for g in &rollup.groups {
            t.add_row(vec![
                g.key.clone(),
                g.label.clone(),
                share(&s.out, g.share.as_ref()),
            ]);
        }
        print_table(&t, "no groups")?;
        return print_overdue(&s.out, &rollup.overdue, true);
    }
    let Some(account) = &args.account else {
        return Err(CliError::Usage(
            "name an account, or ask for --rollup owner|account|tenant".to_owned(),
        ));
    };
    let c = client
        .get_account_compliance(pb::GetAccountComplianceRequest {
            tenant: s.tenant.clone(),
            account_id: account.clone(),
            as_of,
            axis,
            min_position: 0,
            explain: args.why,
        })
        .await?
        .into_inner();
    if s.out.json {
        return s.out.json("keyplan.v1.AccountCompliance", &c);
    }
    print_line(&format!(
        "{account} as of {} ({}): {}",
        c.as_of.as_ref().map(time::rfc3339).unwrap_or_default(),
        label("keyplan.v1.ComplianceAxis", c.axis),
        share(&s.out, c.share.as_ref())
    ))?;
    let mut t = table(&[
        "RULE",
        "TARGET",
        "OWNER",
        "EVERY",
        "STATUS",
        "LAST CONTACT",
        "NEXT DUE",
        "",
    ]);
    for r in &c.rules {
        let d = r.definition.clone().unwrap_or_default();
        let status = label("keyplan.v1.ComplianceRuleStatus", r.status);
        let when = if r.days_overdue > 0 {
            format!("{} days overdue", r.days_overdue)
        } else if r.status == pb::ComplianceRuleStatus::NeverMet as i32 {
            format!("due in {} days", r.days_until_due)
        } else {
            format!("in {} days", r.days_until_due)
        };
        t.add_row(vec![
            r.rule_id.clone(),
            r.target_description.clone(),
            if r.owner_name.is_empty() {
                d.owner.clone()
            } else {
                r.owner_name.clone()
            },
            format!("{} days", d.cadence_days),
            s.out.paint(&status, rule_tone(r.status)),
            r.last_interaction
                .as_ref()
                .map(|l| format!("{} ({})", l.occurred_on, l.interaction_id))
                .unwrap_or_else(|| "never".to_owned()),
            r.next_due_on.clone(),
            when,
        ]);
    }
    print_table(&t, "no active engagement rules")?;
    if args.why {
        print_why(&s.out, &c.rules)?;
    }
    for p in &c.plan_reviews {
        print_line(&format!(
            "\nPlan {} reviews ({}): {} on time, {} late, {} missed, {} overdue, {} upcoming",
            p.plan_id,
            label("keyplan.v1.ReviewFrequency", p.review_frequency),
            p.on_time,
            p.late,
            p.missed,
            p.overdue,
            p.upcoming
        ))?;
        let mut t = table(&["#", "WINDOW", "DUE", "STATUS", "REVIEW", "HELD"]);
        for w in &p.windows {
            let status = label("keyplan.v1.ComplianceReviewStatus", w.status);
            let tone = match pb::ComplianceReviewStatus::try_from(w.status) {
                Ok(pb::ComplianceReviewStatus::OnTime | pb::ComplianceReviewStatus::Upcoming) => {
                    Tone::Good
                }
                Ok(pb::ComplianceReviewStatus::Late) => Tone::Warning,
                _ => Tone::Bad,
            };
            t.add_row(vec![
                w.index.to_string(),
                format!("{} to {}", w.opens_on, w.due_on),
                w.due_on.clone(),
                s.out.paint(&status, tone),
                w.review_id.clone(),
                w.held_on.clone(),
            ]);
        }
        print_table(&t, "  no review windows yet")?;
    }
    if !c.retired_rules.is_empty() {
        let retired: Vec<&str> = c.retired_rules.iter().map(|r| r.rule_id.as_str()).collect();
        print_line(&format!("\nretired rules: {}", retired.join(", ")))?;
    }
    Ok(())
}

/// `keyplan compliance ACCOUNT --why`: under each rule, the interactions it considered and
/// whether each counted, in the server's words.
fn print_why(out: &Output, rules: &[pb::ComplianceRule]) -> Result<(), CliError> {
    for r in rules {
        let status = label("keyplan.v1.ComplianceRuleStatus", r.status);
        print_line(&format!(
            "\nWhy {} is {} ({}):",
            r.rule_id,
            out.paint(&status, rule_tone(r.status)),
            r.target_description
        ))?;
        if r.considered.is_empty() {
            print_line("  no interaction with the target was considered")?;
            continue;
        }
        for i in &r.considered {
            let channel = label("keyplan.v1.Channel", i.channel).replace('-', " ");
            let detail = if i.qualifies {
                out.paint(&i.detail, Tone::Good)
            } else {
                i.detail.clone()
            };
            print_line(&format!(
                "  {}  {}  {}  {}{}  {}",
                i.interaction_id,
                time::minutes(i.occurred_at.as_ref()),
                channel,
                i.stakeholder_id,
                if i.corrected { " (corrected)" } else { "" },
                detail
            ))?;
        }
    }
    Ok(())
}

fn print_overdue(
    out: &Output,
    overdue: &[pb::ComplianceOverdueRule],
    with_account: bool,
) -> Result<(), CliError> {
    if overdue.is_empty() {
        return Ok(());
    }
    print_line("\nOverdue")?;
    let mut t = table(&[
        "ACCOUNT", "RULE", "OWNER", "TARGET", "STATUS", "DUE", "LAST",
    ]);
    for o in overdue {
        t.add_row(vec![
            if with_account {
                o.account_id.clone()
            } else {
                String::new()
            },
            o.rule_id.clone(),
            o.owner.clone(),
            o.target_description.clone(),
            out.paint(
                &format!(
                    "{} ({} days)",
                    label("keyplan.v1.ComplianceRuleStatus", o.status),
                    o.days_overdue
                ),
                Tone::Bad,
            ),
            o.due_on.clone(),
            o.last_interaction_on.clone(),
        ]);
    }
    print_table(&t, "")
}

/// `keyplan portfolio`.
pub async fn portfolio(s: &Session, args: &PortfolioArgs) -> Result<(), CliError> {
    let as_of = args
        .as_of
        .as_deref()
        .map(|t| time::instant("--as-of", t, DayPoint::EndOfDay))
        .transpose()?;
    let p = ActivityServiceClient::new(s.channel.clone())
        .get_portfolio(pb::GetPortfolioRequest {
            tenant: s.tenant.clone(),
            as_of,
            min_position: 0,
        })
        .await?
        .into_inner();
    if s.out.json {
        return s.out.json("keyplan.v1.GetPortfolioResponse", &p);
    }
    let mut t = table(&[
        "#",
        "ACCOUNT",
        "NAME",
        "TIER",
        "SCORE",
        "30 DAYS",
        "90 DAYS",
        "LAST CONTACT",
        "OPEN OPPS",
        "PIPELINE",
        "COMPLIANCE",
    ]);
    for e in &p.accounts {
        let score = e
            .weighted_score_milli
            .map(|m| format!("{:.2}", f64::from(m) / 1000.0))
            .unwrap_or_default();
        let tier = if e.recommended_tier != 0 && e.recommended_tier != e.tier {
            format!(
                "{} (→ {})",
                label("keyplan.v1.Tier", e.tier),
                label("keyplan.v1.Tier", e.recommended_tier)
            )
        } else {
            label("keyplan.v1.Tier", e.tier)
        };
        let compliance = match &e.compliance {
            Some(c) => match c.on_track_basis_points {
                Some(bp) => {
                    let tone = if bp >= 8000 {
                        Tone::Good
                    } else if bp >= 5000 {
                        Tone::Warning
                    } else {
                        Tone::Bad
                    };
                    s.out.paint(
                        &format!(
                            "{:.0} % ({}/{})",
                            f64::from(bp) / 100.0,
                            c.rules_on_track,
                            c.active_rules
                        ),
                        tone,
                    )
                }
                None => "no rules".to_owned(),
            },
            None => String::new(),
        };
        t.add_row(vec![
            e.rank.to_string(),
            e.account_id.clone(),
            e.name.clone(),
            tier,
            score,
            e.interactions_30_days.to_string(),
            e.interactions_90_days.to_string(),
            time::minutes(e.last_contact.as_ref()),
            e.open_opportunities.to_string(),
            e.open_pipeline
                .iter()
                .map(money)
                .collect::<Vec<_>>()
                .join(" + "),
            compliance,
        ]);
    }
    print_table(&t, "no accounts yet")?;
    if !p.compliance_available {
        print_line("(compliance is not served by this node, so its column is empty)")?;
    }
    Ok(())
}

/// `keyplan activity ...`: answers printed as outlines (their shapes vary too much for one
/// table each).
pub async fn activity(s: &Session, command: ActivityCommand) -> Result<(), CliError> {
    let mut client = ActivityServiceClient::new(s.channel.clone());
    match command {
        ActivityCommand::Counts {
            account,
            period,
            by,
            from,
            to,
        } => {
            let from = match from {
                Some(d) => time::date("--from", &d)?,
                None => (chrono::Utc::now() - chrono::Duration::days(90))
                    .format("%Y-%m-%d")
                    .to_string(),
            };
            let to = time::date_or_today("--to", to)?;
            let answer = client
                .get_activity_counts(pb::GetActivityCountsRequest {
                    tenant: s.tenant.clone(),
                    account_id: account.unwrap_or_default(),
                    period: parse("--period", "keyplan.v1.ActivityPeriod", &period)?,
                    dimension: parse("--by", "keyplan.v1.ActivityDimension", &by)?,
                    from,
                    to,
                    min_position: 0,
                })
                .await?
                .into_inner();
            if s.out.json {
                return s.out.json("keyplan.v1.GetActivityCountsResponse", &answer);
            }
            print_activity_counts(&answer)
        }
        ActivityCommand::Dmu { account, days } => {
            let answer = client
                .get_dmu_coverage(pb::GetDmuCoverageRequest {
                    tenant: s.tenant.clone(),
                    account_id: account,
                    days,
                    ..Default::default()
                })
                .await?
                .into_inner();
            if s.out.json {
                return s.out.json("keyplan.v1.GetDmuCoverageResponse", &answer);
            }
            print_dmu_coverage(&answer)
        }
        ActivityCommand::Quiet { days } => {
            let answer = client
                .list_quiet_accounts(pb::ListQuietAccountsRequest {
                    tenant: s.tenant.clone(),
                    days,
                    ..Default::default()
                })
                .await?
                .into_inner();
            if s.out.json {
                return s.out.json("keyplan.v1.ListQuietAccountsResponse", &answer);
            }
            let mut t = table(&["ACCOUNT", "NAME", "TIER", "LAST CONTACT", "DAYS QUIET"]);
            for a in &answer.accounts {
                t.add_row(vec![
                    a.account_id.clone(),
                    a.name.clone(),
                    label("keyplan.v1.Tier", a.tier),
                    time::minutes(a.last_contact.as_ref()),
                    a.days_since_last_contact
                        .map_or_else(|| "never contacted".to_owned(), |d| d.to_string()),
                ]);
            }
            print_table(&t, "no quiet accounts")
        }
        ActivityCommand::Opportunities { account } => {
            let answer = client
                .get_opportunity_summary(pb::GetOpportunitySummaryRequest {
                    tenant: s.tenant.clone(),
                    account_id: account,
                    ..Default::default()
                })
                .await?
                .into_inner();
            if s.out.json {
                return s
                    .out
                    .json("keyplan.v1.GetOpportunitySummaryResponse", &answer);
            }
            print_opportunity_summary(&answer)
        }
    }
}

/// Interactions per period, then per dimension value, with the mean sentiment (-2..2).
fn print_activity_counts(a: &pb::GetActivityCountsResponse) -> Result<(), CliError> {
    print_line(&format!(
        "{} to {}: {} interactions, mean sentiment {}",
        a.from,
        a.to,
        a.total_interactions,
        mean_sentiment(a.total_sentiment.as_ref())
    ))?;
    let mut t = table(&["PERIOD", "INTERACTIONS", "SENTIMENT"]);
    for p in &a.periods {
        t.add_row(vec![
            format!("{} to {}", p.period_start, p.period_end),
            p.interactions.to_string(),
            mean_sentiment(p.sentiment.as_ref()),
        ]);
    }
    print_table(&t, "no periods")?;
    if !a.buckets.is_empty() {
        print_line("")?;
        let mut t = table(&["PERIOD", "ACCOUNT", "VALUE", "INTERACTIONS", "SENTIMENT"]);
        for b in &a.buckets {
            t.add_row(vec![
                b.period_start.clone(),
                b.account_id.clone(),
                if b.label.is_empty() {
                    b.key.clone()
                } else {
                    b.label.clone()
                },
                b.count.to_string(),
                mean_sentiment(b.sentiment.as_ref()),
            ]);
        }
        print_table(&t, "")?;
    }
    Ok(())
}

fn mean_sentiment(s: Option<&pb::ActivitySentiment>) -> String {
    s.and_then(|s| s.mean)
        .map(|m| format!("{m:+.2}"))
        .unwrap_or_else(|| "-".to_owned())
}

/// Which buying roles and which stakeholders were engaged in the window.
fn print_dmu_coverage(d: &pb::GetDmuCoverageResponse) -> Result<(), CliError> {
    print_line(&format!(
        "{}: {} of {} buying roles and {} of {} stakeholders engaged since {}",
        d.account_id,
        d.roles_engaged,
        d.buying_roles.len(),
        d.stakeholders_engaged,
        d.stakeholders.len(),
        d.window_start
    ))?;
    let mut t = table(&[
        "BUYING ROLE",
        "STAKEHOLDERS",
        "ENGAGED",
        "INTERACTIONS",
        "LAST",
    ]);
    for r in &d.buying_roles {
        t.add_row(vec![
            label("keyplan.v1.BuyingRole", r.buying_role),
            r.stakeholders.to_string(),
            if r.engaged { "yes" } else { "no" }.to_owned(),
            r.interactions.to_string(),
            time::minutes(r.last_engaged_at.as_ref()),
        ]);
    }
    print_table(&t, "")?;
    print_line("")?;
    let mut t = table(&[
        "STAKEHOLDER",
        "NAME",
        "BUYING ROLE",
        "INTERACTIONS",
        "LAST CONTACT",
        "DAYS SINCE",
    ]);
    for p in &d.stakeholders {
        t.add_row(vec![
            p.stakeholder_id.clone(),
            p.name.clone(),
            label("keyplan.v1.BuyingRole", p.buying_role),
            p.interactions.to_string(),
            time::minutes(p.last_contact.as_ref()),
            p.days_since_last_contact
                .map_or_else(|| "never".to_owned(), |d| d.to_string()),
        ]);
    }
    print_table(&t, "no stakeholders")
}

fn moneys(values: &[pb::Money]) -> String {
    if values.is_empty() {
        return "-".to_owned();
    }
    values.iter().map(money).collect::<Vec<_>>().join(" + ")
}

/// The pipeline by stage, won and lost, and revenue against its goals.
fn print_opportunity_summary(o: &pb::GetOpportunitySummaryResponse) -> Result<(), CliError> {
    print_line(&format!(
        "{}: {} open ({}), {} won ({}), {} lost ({})",
        o.account_id,
        o.open_count,
        moneys(&o.open_value),
        o.won_count,
        moneys(&o.won_value),
        o.lost_count,
        moneys(&o.lost_value)
    ))?;
    let mut t = table(&["STAGE", "OPEN", "VALUE"]);
    for st in &o.open_by_stage {
        t.add_row(vec![
            label("keyplan.v1.OpportunityStage", st.stage),
            st.count.to_string(),
            moneys(&st.value),
        ]);
    }
    print_table(&t, "")?;
    let amount = |currency: &str, minor_units: i64| {
        money(&pb::Money {
            currency: currency.to_owned(),
            minor_units,
        })
    };
    let attainment = |f: &pb::RevenueAgainstGoal| {
        f.attainment_basis_points
            .map(|bp| format!("{:.1} %", bp as f64 / 100.0))
            .unwrap_or_else(|| "-".to_owned())
    };
    if !o.revenue.is_empty() {
        print_line("")?;
        let mut t = table(&["FROM", "TO", "PRODUCT", "ACTUAL", "GOAL", "ATTAINMENT"]);
        for r in &o.revenue {
            let Some(f) = &r.figures else { continue };
            t.add_row(vec![
                r.period_start.clone(),
                r.period_end.clone(),
                r.product.clone(),
                amount(&f.currency, f.actual_minor_units),
                amount(&f.currency, f.goal_minor_units),
                attainment(f),
            ]);
        }
        print_table(&t, "")?;
    }
    if let Some(g) = &o.plan_goal {
        print_line(&format!(
            "\nPlan {} ({} to {}): annual goal against revenue, won and open",
            g.plan_id, g.period_start, g.period_end
        ))?;
        let mut t = table(&["GOAL", "REVENUE", "ATTAINMENT", "WON", "OPEN"]);
        for total in &g.totals {
            let revenue = total.revenue.clone().unwrap_or_default();
            t.add_row(vec![
                amount(&total.currency, total.annual_goal_minor_units),
                amount(&total.currency, revenue.actual_minor_units),
                attainment(&revenue),
                amount(&total.currency, total.won_minor_units),
                amount(&total.currency, total.open_minor_units),
            ]);
        }
        print_table(&t, "")?;
    }
    if !o.note.is_empty() {
        print_line(&format!("({})", o.note))?;
    }
    Ok(())
}

/// JSON with `--json`, an outline otherwise.
pub fn show<M: prost::Message>(s: &Session, full_name: &str, message: &M) -> Result<(), CliError> {
    if s.out.json {
        s.out.json(full_name, message)
    } else {
        outline(full_name, message)
    }
}
