//! `keyplan watch ACCOUNT`: an account's timeline as it is written, one line per entry, until
//! Ctrl-C or the node ends the stream (a node shutting down says so; the line printed tells
//! how to resume).

use keyplan_proto::pb;
use keyplan_proto::pb::timeline_service_client::TimelineServiceClient;

use super::args::WatchArgs;
use super::output::print_line;
use super::reads::timeline_row;
use super::{CliError, Session};

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
