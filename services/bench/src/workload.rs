//! Realistic requests: what a key account team's client sends, with the payloads of the
//! end-to-end tests (`tests/common/fixtures.rs`), so that events have production-like sizes
//! (about 300 bytes stored) and go through full validation.

use anyhow::{bail, Context, Result};
use keyplan_proto::pb;
use keyplan_proto::pb::command::Kind;

/// The tenant (supplier organisation) of every benchmark account.
pub const TENANT: &str = "acme-supplies";

/// The key account manager: the actor of every request and a participant of every meeting.
pub const KAM_ID: &str = "dana.kim";

/// The customer stakeholder every interaction is held with.
const STAKEHOLDER_ID: &str = "lee.park";

/// 2026-03-01T00:00:00Z: interactions are dated from here on, one second apart, so they are
/// in the past (the server refuses future interactions) and never identical.
pub const FIRST_INTERACTION_UNIX: i64 = 1_772_323_200;

/// Meeting summaries to rotate through, so payloads vary like real ones.
const SUMMARIES: [&str; 4] = [
    "Discussed 2027 pricing and volume commitments for the EMEA plants",
    "Reviewed the delivery incidents of Q3; agreed on a joint root-cause workshop",
    "Presented the sustainability roadmap; the CFO asked for a TCO comparison",
    "Quarterly check-in: renewal on track, procurement wants a two-year term",
];

/// A request for one account of `tenant` with "any" expected version.
fn envelope(tenant: &str, account: &str, commands: Vec<pb::Command>) -> pb::ExecuteBatchRequest {
    pb::ExecuteBatchRequest {
        tenant: tenant.into(),
        account_id: account.into(),
        expected_version: None,
        idempotency_key: String::new(),
        actor: KAM_ID.into(),
        occurred_at: None,
        correlation_id: String::new(),
        causation_id: String::new(),
        commands,
    }
}

fn command(kind: Kind) -> pb::Command {
    pb::Command { kind: Some(kind) }
}

/// Registers `account`, assigns its KAM and adds the stakeholder interactions are held with:
/// one atomic batch, expected to create the stream.
pub fn onboarding(account: &str) -> pb::ExecuteBatchRequest {
    onboarding_in(TENANT, account)
}

/// [`onboarding`] of an account of another tenant (the `shards` scenario spreads its accounts
/// over many tenants, so that they spread over the shards).
pub fn onboarding_in(tenant: &str, account: &str) -> pb::ExecuteBatchRequest {
    let mut request = envelope(
        tenant,
        account,
        vec![
            command(Kind::RegisterAccount(pb::AccountRegistered {
                name: "Globex Corporation".into(),
                industry: "Chemicals".into(),
                region: "EMEA".into(),
                headquarters: "Rotterdam".into(),
                tier: pb::Tier::Key as i32,
            })),
            command(Kind::AssignTeamMember(pb::TeamMemberAssigned {
                person_id: KAM_ID.into(),
                name: "Dana Kim".into(),
                role: pb::TeamRole::KeyAccountManager as i32,
            })),
            command(Kind::AddStakeholder(pb::StakeholderAdded {
                stakeholder_id: STAKEHOLDER_ID.into(),
                name: "Lee Park".into(),
                title: "CFO".into(),
                reports_to: String::new(),
                buying_role: pb::BuyingRole::EconomicBuyer as i32,
                influence: 5,
                attitude: pb::Attitude::Supporter as i32,
            })),
        ],
    );
    request.expected_version = Some(pb::ExpectedVersion {
        kind: Some(pb::expected_version::Kind::NoStream(true)),
    });
    request
}

/// The engagement rule every benchmark account gets (so compliance has work to do).
pub fn rule(account: &str) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        tenant: TENANT.into(),
        account_id: account.into(),
        expected_version: Some(pb::ExpectedVersion {
            kind: Some(pb::expected_version::Kind::Exact(3)),
        }),
        idempotency_key: String::new(),
        actor: KAM_ID.into(),
        occurred_at: None,
        correlation_id: String::new(),
        causation_id: String::new(),
        command: Some(pb::Command {
            kind: Some(pb::command::Kind::SetEngagementRule(
                pb::EngagementRuleSet {
                    rule_id: "r-cfo".into(),
                    target: Some(pb::RuleTarget {
                        target: Some(pb::rule_target::Target::StakeholderId(
                            STAKEHOLDER_ID.into(),
                        )),
                    }),
                    owner: KAM_ID.into(),
                    cadence_days: 30,
                    channels: vec![pb::Channel::InPerson as i32],
                    opportunity_id: String::new(),
                },
            )),
        }),
    }
}

/// The interactions one client logs on its own account: unique ids, increasing dates.
#[derive(Debug)]
pub struct AccountWorkload {
    tenant: String,
    account: String,
    logged: u64,
    /// What every interaction id of this workload starts with.
    id_prefix: &'static str,
}

impl AccountWorkload {
    /// A workload on an account already set up with [`onboarding`].
    pub fn new(account: String) -> Self {
        Self::with_id_prefix(account, "mtg")
    }

    /// A second workload on an account that another one has loaded: its ids start with
    /// `id_prefix` instead, so that its interactions are new ones. With the same ids, each
    /// would be a retry of a logged interaction, which stores nothing and is decided on the
    /// account's whole history.
    pub fn with_id_prefix(account: String, id_prefix: &'static str) -> Self {
        Self {
            tenant: TENANT.into(),
            account,
            logged: 0,
            id_prefix,
        }
    }

    /// A workload on an account of `tenant` set up with [`onboarding_in`].
    pub fn in_tenant(tenant: &str, account: String) -> Self {
        Self {
            tenant: tenant.into(),
            ..Self::new(account)
        }
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    fn next_interaction(&mut self) -> pb::Command {
        let n = self.logged;
        self.logged += 1;
        let seconds = i64::try_from(n).unwrap_or(i64::MAX - FIRST_INTERACTION_UNIX);
        command(Kind::LogInteraction(pb::InteractionLogged {
            interaction_id: format!("{}-{n:09}", self.id_prefix),
            details: Some(pb::InteractionDetails {
                occurred_at: Some(prost_types::Timestamp {
                    seconds: FIRST_INTERACTION_UNIX + seconds,
                    nanos: 0,
                }),
                channel: pb::Channel::InPerson as i32,
                stakeholders: vec![STAKEHOLDER_ID.into()],
                participants: vec![KAM_ID.into()],
                summary: SUMMARIES[(n % SUMMARIES.len() as u64) as usize].into(),
                sentiment: pb::Sentiment::Positive as i32,
                next_step: "Send pricing proposal".into(),
                opportunity_id: String::new(),
            }),
        }))
    }

    /// `Execute` with one `LogInteraction` (one event).
    pub fn single(&mut self) -> pb::ExecuteRequest {
        let kind = self.next_interaction().kind;
        pb::ExecuteRequest {
            tenant: self.tenant.clone(),
            account_id: self.account.clone(),
            expected_version: None,
            idempotency_key: String::new(),
            actor: KAM_ID.into(),
            occurred_at: None,
            correlation_id: String::new(),
            causation_id: String::new(),
            command: Some(pb::Command { kind }),
        }
    }

    /// `ExecuteBatch` with `count` `LogInteraction` commands (`count` events, atomically).
    pub fn batch(&mut self, count: usize) -> pb::ExecuteBatchRequest {
        let commands = (0..count).map(|_| self.next_interaction()).collect();
        envelope(&self.tenant, &self.account, commands)
    }
}

/// The domain event one interaction of the workload records (validated exactly as the server
/// validates the command), to size what Keyplan stores and publishes per event.
pub fn interaction_event() -> Result<keyplan_domain::AccountEvent> {
    let request = AccountWorkload::new("acct-0000".into()).single();
    let kind = request.command.and_then(|c| c.kind).context("a command")?;
    let command = keyplan_proto::convert::command_from_proto(kind)?;
    let keyplan_domain::AccountCommand::LogInteraction(logged) = command else {
        bail!("the workload's command is not an interaction")
    };
    Ok(keyplan_domain::AccountEvent::InteractionLogged(logged))
}
