//! `keyplan demo seed` against a real node: the CLI binary seeds a small portfolio over gRPC,
//! then the read models are asked what a user of the demo would look at (accounts, portfolio,
//! compliance, a corrected interaction); running the same seed again records nothing, and the
//! same seed gives the same accounts in another tenant.
#![allow(clippy::unwrap_used)]

mod common;

use common::{head, wait_projected, Server};
use keyplan_proto::pb;
use keyplan_proto::pb::account_service_client::AccountServiceClient;
use keyplan_proto::pb::activity_service_client::ActivityServiceClient;
use keyplan_proto::pb::compliance_service_client::ComplianceServiceClient;

async fn seed(server: &Server, tenant: &str, extra: &[&str]) -> std::process::Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyplan"))
        .args([
            "demo",
            "seed",
            "--server",
            &server.address,
            "--tenant",
            tenant,
        ])
        .args(["--accounts", "3", "--months", "3", "--seed", "42"])
        .args(extra)
        .env_remove("KEYPLAN_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "demo seed failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

#[tokio::test]
async fn the_demo_seeds_a_portfolio_once_and_the_same_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;

    let out = seed(&server, "demo", &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("seeded 3 accounts in tenant demo"),
        "{stdout}"
    );
    assert!(stdout.contains("keyplan portfolio"), "{stdout}");
    // Not a terminal: plain progress lines on stderr, the last one at the end.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("seeding: "), "{stderr}");
    let position = head(&server).await;
    assert!(position > 100, "a realistic history, got {position} events");
    wait_projected(&server, position).await;

    // The accounts.
    let accounts = AccountServiceClient::new(server.channel())
        .list_accounts(pb::ListAccountsRequest {
            tenant: "demo".into(),
            min_position: position,
        })
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert_eq!(accounts.len(), 3, "{accounts:?}");
    for a in &accounts {
        assert!(stdout.contains(&a.account_id), "{stdout}");
        assert!(
            a.stakeholders >= 3 && a.active_rules >= 1 && a.interactions > 10,
            "{a:?}"
        );
    }

    // The portfolio lists them.
    let portfolio = ActivityServiceClient::new(server.channel())
        .get_portfolio(pb::GetPortfolioRequest {
            tenant: "demo".into(),
            as_of: None,
            min_position: position,
        })
        .await
        .unwrap()
        .into_inner();
    let mut listed: Vec<_> = portfolio
        .accounts
        .iter()
        .map(|e| e.account_id.clone())
        .collect();
    listed.sort();
    let mut ids: Vec<_> = accounts.iter().map(|a| a.account_id.clone()).collect();
    ids.sort();
    assert_eq!(listed, ids);

    // Compliance: some rules kept, some not.
    let mut statuses = Vec::new();
    for id in &ids {
        let compliance = ComplianceServiceClient::new(server.channel())
            .get_account_compliance(pb::GetAccountComplianceRequest {
                tenant: "demo".into(),
                account_id: id.clone(),
                as_of: None,
                axis: pb::ComplianceAxis::AsHappenedBy as i32,
                min_position: position,
                explain: false,
            })
            .await
            .unwrap()
            .into_inner();
        statuses.extend(compliance.rules.iter().map(|r| r.status()));
    }
    use pb::ComplianceRuleStatus as S;
    assert!(
        statuses
            .iter()
            .any(|s| matches!(s, S::Overdue | S::NeverMet)),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|s| matches!(s, S::OnTrack | S::DueSoon)),
        "{statuses:?}"
    );

    // A corrected interaction.
    let mut corrected = 0;
    for id in &ids {
        let account = AccountServiceClient::new(server.channel())
            .get_account(pb::GetAccountRequest {
                tenant: "demo".into(),
                account_id: id.clone(),
                min_position: position,
                max_interactions: 1_000,
            })
            .await
            .unwrap()
            .into_inner();
        corrected += account
            .interactions
            .iter()
            .filter(|i| i.corrections > 0)
            .count();
    }
    assert!(corrected >= 1);

    // The same seed again: nothing new.
    let again = seed(&server, "demo", &[]).await;
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("nothing new was recorded"), "{again}");
    assert_eq!(head(&server).await, position);

    // The same seed in another tenant: the same ids and names.
    let json = seed(&server, "demo-b", &["--json"]).await;
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let mut seeded: Vec<(String, String)> = summary["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["accountId"].as_str().unwrap().to_owned(),
                a["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seeded.sort();
    let mut first: Vec<(String, String)> = accounts
        .iter()
        .map(|a| (a.account_id.clone(), a.name.clone()))
        .collect();
    first.sort();
    assert_eq!(seeded, first);
    assert_eq!(summary["batchesAlreadyStored"], "0");
    assert!(head(&server).await > position);
}
