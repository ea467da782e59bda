//! `keyplan audit verify|export|as-of|diff`: the auditor's questions, over `AuditService`.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use keyplan_proto::pb;
use keyplan_proto::pb::audit_service_client::AuditServiceClient;

use super::args::AuditCommand;
use super::output::print_line;
use super::reads::show;
use super::time::{self, DayPoint};
use super::{CliError, Session};

/// Runs one audit subcommand.
pub async fn run(s: &Session, command: AuditCommand) -> Result<(), CliError> {
    let mut client = AuditServiceClient::new(s.channel.clone());
    match command {
        AuditCommand::Verify { account } => {
            let answer = client
                .verify_account(pb::VerifyAccountRequest {
                    tenant: s.tenant.clone(),
                    account_id: account.clone(),
                })
                .await?
                .into_inner();
            if s.out.json {
                s.out.json("keyplan.v1.VerifyAccountResponse", &answer)?;
            } else if answer.intact {
                print_line(&format!(
                    "{account}: intact, {} events checked up to version {}, last hash {}",
                    answer.events_checked, answer.stream_version, answer.last_hash
                ))?;
            }
            if answer.intact {
                Ok(())
            } else {
                Err(CliError::Verification(format!(
                    "{account}: the hash chain is BROKEN at version {}: {}",
                    answer.first_broken_version, answer.detail
                )))
            }
        }
        AuditCommand::Export { account, out } => export(s, &mut client, &account, out).await,
        AuditCommand::AsOf {
            account,
            version,
            recorded_at,
            occurred_at,
        } => {
            use pb::get_account_as_of_request::Point;
            let point = match (version, recorded_at, occurred_at) {
                (Some(v), _, _) => Point::Version(v),
                (None, Some(t), _) => {
                    Point::RecordedAt(time::instant("--recorded-at", &t, DayPoint::EndOfDay)?)
                }
                (None, None, Some(t)) => {
                    Point::OccurredAt(time::instant("--occurred-at", &t, DayPoint::EndOfDay)?)
                }
                (None, None, None) => {
                    return Err(CliError::Usage(
                        "say when: --version, --recorded-at or --occurred-at".to_owned(),
                    ))
                }
            };
            let answer = client
                .get_account_as_of(pb::GetAccountAsOfRequest {
                    tenant: s.tenant.clone(),
                    account_id: account,
                    point: Some(point),
                })
                .await?
                .into_inner();
            show(s, "keyplan.v1.AsOfResponse", &answer)
        }
        AuditCommand::Diff {
            account,
            from_version,
            to_version,
            from_review,
            to_review,
        } => {
            use pb::diff_account_request::Range;
            let range = match (from_version, to_version, from_review, to_review) {
                (Some(from), Some(to), _, _) => Range::Versions(pb::DiffVersionRange {
                    from_version: from,
                    to_version: to,
                }),
                (_, _, Some(from), Some(to)) => Range::Reviews(pb::DiffReviewRange {
                    from_review_id: from,
                    to_review_id: to,
                }),
                _ => {
                    return Err(CliError::Usage(
                        "say what to compare: --from-version N --to-version M, or \
                         --from-review A --to-review B"
                            .to_owned(),
                    ))
                }
            };
            let answer = client
                .diff_account(pb::DiffAccountRequest {
                    tenant: s.tenant.clone(),
                    account_id: account,
                    range: Some(range),
                })
                .await?
                .into_inner();
            show(s, "keyplan.v1.DiffAccountResponse", &answer)
        }
    }
}

/// Streams the export into `out` (or stdout), with progress on stderr: a bar on a terminal,
/// a line every few seconds otherwise.
async fn export(
    s: &Session,
    client: &mut AuditServiceClient<crate::tls::NodeChannel>,
    account: &str,
    out: Option<std::path::PathBuf>,
) -> Result<(), CliError> {
    let io = |what: String| move |source| CliError::Io { what, source };
    let mut sink: Box<dyn Write> = match &out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(io(format!("creating {}", path.display())))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut chunks = client
        .export_account(pb::ExportAccountRequest {
            tenant: s.tenant.clone(),
            account_id: account.to_owned(),
            from_version: 0,
        })
        .await?
        .into_inner();
    let bar = if s.out.progress_bars {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} exported {pos} events ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Some(bar)
    } else {
        None
    };
    let mut events = 0_u64;
    let mut last_line = Instant::now();
    while let Some(chunk) = chunks.message().await? {
        sink.write_all(&chunk.jsonl)
            .map_err(io("writing the export".to_owned()))?;
        events += chunk.events;
        match &bar {
            Some(bar) => bar.set_position(events),
            None if last_line.elapsed() >= Duration::from_secs(2) => {
                eprintln!(
                    "exported {events} events (up to version {})",
                    chunk.last_version
                );
                last_line = Instant::now();
            }
            None => {}
        }
    }
    sink.flush().map_err(io("writing the export".to_owned()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let place = out
        .map(|p| format!(" to {}", p.display()))
        .unwrap_or_default();
    eprintln!("exported {events} events of {account}{place}");
    Ok(())
}
