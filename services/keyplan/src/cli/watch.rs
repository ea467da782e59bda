//! `keyplan watch ACCOUNT`: an account's timeline as it is written, one line per entry, until
//! Ctrl-C or the node ends the stream (a node shutting down says so; the line printed tells
//! how to resume). `keyplan alerts watch`: the tenant's compliance alerts as they are raised,
//! one line per alert, until Ctrl-C or the node ends the stream.

use keyplan_proto::pb;
use keyplan_proto::pb::compliance_service_client::ComplianceServiceClient;
use keyplan_proto::pb::timeline_service_client::TimelineServiceClient;

use super::args::WatchArgs;
use super::enums::{label, parse};
use super::output::{print_line, Output, Tone};
use super::reads::timeline_row;
use super::{CliError, Session};

const ALERT_KIND: &str = "keyplan.v1.ComplianceAlertKind";

/// Follows the tenant's compliance alerts, optionally only some kinds or one account.
pub async fn alerts(
    s: &Session,
    kinds: &[String],
    account: Option<String>,
) -> Result<(), CliError> {
    let kinds = kinds
        .iter()
        .map(|k| parse("--kind", ALERT_KIND, k))
        .collect::<Result<Vec<_>, _>>()?;
    let mut client = ComplianceServiceClient::new(s.channel.clone());
    let mut alerts = client
        .watch_alerts(pb::WatchAlertsRequest {
            tenant: s.tenant.clone(),
            kinds,
            account_id: account.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    // On stderr, so also with --json: printed once the node answered, i.e. subscribed (a
    // script may wait for it before it causes an alert).
    let scope = match &account {
        Some(account) => format!("account {account}"),
        None => format!("tenant {}", s.tenant),
    };
    eprintln!("watching the alerts of {scope} (Ctrl-C to stop)");
    loop {
        let next = tokio::select! {
            next = alerts.message() => next,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match next {
            Ok(Some(alert)) => {
                if s.out.json {
                    s.out.json_line("keyplan.v1.ComplianceAlert", &alert)?;
                } else {
                    print_line(&alert_line(&s.out, &alert))?;
                }
            }
            Ok(None) => return Ok(()),
            Err(status) => {
                eprintln!(
                    "the alerts watch ended; watch again with: keyplan alerts watch (alerts \
                     raised meanwhile can be read from the node's NATS alerts stream)"
                );
                return Err(status.into());
            }
        }
    }
}

/// One alert in words: kind, account, rule (with owner) or plan window, due date, lateness.
fn alert_line(out: &Output, a: &pb::ComplianceAlert) -> String {
    let kind = pb::ComplianceAlertKind::try_from(a.kind).ok();
    let tone = match kind {
        Some(pb::ComplianceAlertKind::RuleDueSoon) => Tone::Warning,
        _ => Tone::Bad,
    };
    // The kind as in NATS subjects and `--kind`: rule_never_met.
    let kind = label(ALERT_KIND, a.kind).replace('-', "_");
    let named = |id: &str, name: &str| {
        if name.is_empty() {
            id.to_owned()
        } else {
            format!("{id} ({name})")
        }
    };
    let what = if a.rule_id.is_empty() {
        format!("plan {} window {}", a.plan_id, a.review_window)
    } else {
        format!(
            "rule {} [{}]  owner {}",
            a.rule_id,
            a.target_description,
            named(&a.owner, &a.owner_name)
        )
    };
    let when = if a.days_overdue > 0 {
        format!("due {}, {} days overdue", a.due_on, a.days_overdue)
    } else {
        format!("due {}, in {} days", a.due_on, a.days_until_due)
    };
    format!(
        "{}  {}  {what}  {when}",
        out.paint(&kind, tone),
        named(&a.account_id, &a.account_name)
    )
}

/// Follows the account's timeline.
pub async fn run(s: &Session, args: &WatchArgs) -> Result<(), CliError> {
    let mut client = TimelineServiceClient::new(s.channel.clone());
    let from_position = match args.from_position {
        Some(position) => position,
        // Only what comes next: the position after the latest entry the timeline holds.
        None => {
            let latest = client
                .list_timeline(pb::ListTimelineRequest {
                    tenant: s.tenant.clone(),
                    account_id: args.account.clone(),
                    page_size: 1,
                    ..Default::default()
                })
                .await?
                .into_inner();
            latest.last_position + 1
        }
    };
    let mut entries = client
        .watch_timeline(pb::WatchTimelineRequest {
            tenant: s.tenant.clone(),
            account_id: args.account.clone(),
            from_position,
            min_position: 0,
        })
        .await?
        .into_inner();
    if !s.out.json {
        eprintln!(
            "watching {} from position {from_position} (Ctrl-C to stop)",
            args.account
        );
    }
    let mut last = from_position.saturating_sub(1);
    loop {
        let next = tokio::select! {
            next = entries.message() => next,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match next {
            Ok(Some(entry)) => {
                last = entry.position;
                if s.out.json {
                    s.out.json_line("keyplan.v1.TimelineEntry", &entry)?;
                } else {
                    print_line(&timeline_row(&entry).join("  "))?;
                }
            }
            Ok(None) => return Ok(()),
            Err(status) => {
                eprintln!(
                    "the watch ended after position {last}; resume with: keyplan watch {} \
                     --from-position {}",
                    args.account,
                    last + 1
                );
                return Err(status.into());
            }
        }
    }
}
