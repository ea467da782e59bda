//! The repository decides on states that keep interaction ids, not interactions' facts; the
//! commands whose decision reads those facts (corrections, departures, a reused interaction
//! id) get them folded from the log first. This property test checks that the repository
//! decides every such command exactly as the domain does on a state that keeps every fact:
//! random commands on two accounts through a real repository over a real sled log, with a
//! cache of one account (so commands alternate between cache hits, misses from scratch and
//! misses from snapshots), against `decide` on a full state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroUsize;

use chrono::NaiveDate;
use keyplan_domain::codec;
use keyplan_domain::decide::decide_all_in_place;
use keyplan_domain::events::{
    AccountRegistered, InteractionCorrected, InteractionDetails, InteractionLogged,
    StakeholderAdded, StakeholderDeparted, TeamMemberAssigned,
};
use keyplan_domain::ids::{AccountId, InteractionId, PersonId, StakeholderId, TenantId};
use keyplan_domain::values::{Attitude, BuyingRole, Channel, Sentiment, TeamRole, Tier, Timestamp};
use keyplan_domain::{AccountCommand, AccountEvent, AccountState};
use keyplan_repository::{AccountRepository, CommandEnvelope, RepositoryConfig, RepositoryError};
use keyplan_store::{Direction, EventStore, ExpectedVersion, StoreConfig, StreamId};
use proptest::prelude::*;

const TENANT: &str = "acme";
const ACCOUNTS: [&str; 2] = ["alpha", "beta"];
const STAKEHOLDERS: [&str; 3] = ["cfo", "cto", "buyer"];
const INTERACTIONS: usize = 6;

/// One random command: on which account, what, and raw parameters.
#[derive(Debug, Clone)]
struct Op {
    account: usize,
    kind: u8,
    interaction: usize,
    day: u16,
    stakeholders: u8,
    channel: u8,
    summary: u8,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0..ACCOUNTS.len(),
        0u8..10,
        0..INTERACTIONS,
        0u16..60,
        1u8..8,
        0u8..2,
        0u8..2,
    )
        .prop_map(
            |(account, kind, interaction, day, stakeholders, channel, summary)| Op {
                account,
                kind,
                interaction,
                day,
                stakeholders,
                channel,
                summary,
            },
        )
}

fn day(n: u16) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 1).unwrap() + chrono::Days::new(u64::from(n))
}

fn details(op: &Op) -> InteractionDetails {
    let at = day(op.day).and_hms_opt(10, 0, 0).unwrap().and_utc();
    InteractionDetails {
        occurred_at: Timestamp(at.timestamp_micros()),
        channel: [Channel::InPerson, Channel::VideoCall][usize::from(op.channel)],
        stakeholders: STAKEHOLDERS
            .iter()
            .enumerate()
            .filter(|(i, _)| op.stakeholders & (1 << i) != 0)
            .map(|(_, s)| StakeholderId::parse(*s).unwrap())
            .collect(),
        participants: vec![PersonId::parse("dana").unwrap()],
        summary: ["Discussed the renewal.", "Walked the plant."][usize::from(op.summary)].into(),
        sentiment: Sentiment::Positive,
        next_step: String::new(),
        opportunity_id: None,
    }
}

/// The command an op makes: mostly logging (ids from a small pool, so reused ones are
/// frequent), then corrections (a third of them identical to some content) and departures.
fn command(op: &Op) -> AccountCommand {
    let interaction_id = InteractionId::parse(format!("i{}", op.interaction)).unwrap();
    match op.kind {
        0..=4 => AccountCommand::LogInteraction(InteractionLogged {
            interaction_id,
            details: details(op),
        }),
        5..=7 => AccountCommand::CorrectInteraction(InteractionCorrected {
            interaction_id,
            details: details(op),
            reason: "wrong date".into(),
        }),
        _ => AccountCommand::RecordStakeholderDeparture(StakeholderDeparted {
            stakeholder_id: StakeholderId::parse(STAKEHOLDERS[op.interaction % 3]).unwrap(),
            departed_on: day(op.day),
            reason: "left the company".into(),
        }),
    }
}

fn setup() -> Vec<AccountCommand> {
    let mut commands = vec![
        AccountCommand::RegisterAccount(AccountRegistered {
            name: "Customer".into(),
            industry: "Chemicals".into(),
            region: "EMEA".into(),
            headquarters: "Rotterdam".into(),
            tier: Tier::Key,
        }),
        AccountCommand::AssignTeamMember(TeamMemberAssigned {
            person_id: PersonId::parse("dana").unwrap(),
            name: "Dana Kim".into(),
            role: TeamRole::KeyAccountManager,
        }),
    ];
    commands.extend(STAKEHOLDERS.iter().map(|s| {
        AccountCommand::AddStakeholder(StakeholderAdded {
            stakeholder_id: StakeholderId::parse(*s).unwrap(),
            name: format!("Person {s}"),
            title: s.to_uppercase(),
            reports_to: None,
            buying_role: BuyingRole::EconomicBuyer,
            influence: 3,
            attitude: Attitude::Neutral,
        })
    }));
    commands
}

fn envelope(account: &str, version: u64, commands: Vec<AccountCommand>) -> CommandEnvelope {
    CommandEnvelope {
        tenant: TenantId::parse(TENANT).unwrap(),
        account: AccountId::parse(account).unwrap(),
        expected: ExpectedVersion::Exact(version),
        idempotency_key: None,
        actor: "dana".into(),
        occurred_at: None,
        correlation_id: None,
        causation_id: None,
        commands,
    }
}

/// The events the log holds for `account` from `version`.
fn stored(store: &EventStore, account: &str, version: u64) -> Vec<AccountEvent> {
    store
        .read_stream(
            &StreamId::new(TENANT, account),
            version,
            Direction::Forward,
            usize::MAX,
        )
        .unwrap()
        .events
        .iter()
        .map(|r| codec::decode(&r.event_type, r.schema_version, &r.payload).unwrap())
        .collect()
}

/// Runs `ops` (in batches of `batch`) through a repository with a cache of one account and
/// through `decide` on full states, and compares every outcome.
fn check(ops: &[Op], batch: usize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path())).unwrap();
    let repository = AccountRepository::new(
        store.clone(),
        RepositoryConfig {
            cached_accounts: NonZeroUsize::MIN,
            ..RepositoryConfig::default()
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut full = vec![AccountState::default(); ACCOUNTS.len()];
    let mut run = |account: usize, commands: Vec<AccountCommand>| {
        let name = ACCOUNTS[account];
        let state = &mut full[account];
        let version = state.version;
        let mut expected = state.clone();
        let decided = decide_all_in_place(&mut expected, &commands, Timestamp::now());
        let executed =
            runtime.block_on(repository.execute(envelope(name, version, commands.clone())));
        match (decided, executed) {
            (Ok(events), Ok(outcome)) => {
                prop_assert_eq!(outcome.append.first_version, version + 1);
                prop_assert_eq!(
                    &stored(&store, name, version + 1),
                    &events,
                    "{:?}",
                    commands
                );
                *state = expected;
            }
            (Err(want), Err(RepositoryError::Domain(got))) => {
                prop_assert_eq!(got.to_string(), want.to_string(), "{:?}", commands);
                prop_assert_eq!(stored(&store, name, version + 1).len(), 0);
            }
            (want, got) => {
                prop_assert!(false, "{commands:?}: domain {want:?}, repository {got:?}");
            }
        }
        Ok(())
    };
    for account in 0..ACCOUNTS.len() {
        run(account, setup())?;
    }
    for chunk in ops.chunks(batch) {
        // A batch of commands goes to one account: the first op's.
        let account = chunk[0].account;
        run(account, chunk.iter().map(command).collect())?;
    }
    // What the repository ends up with is the full state without the facts.
    for (account, state) in full.iter().enumerate() {
        let loaded = runtime
            .block_on(repository.load(
                &TenantId::parse(TENANT).unwrap(),
                &AccountId::parse(ACCOUNTS[account]).unwrap(),
            ))
            .unwrap();
        let mut compact = state.clone();
        compact.drop_interactions();
        prop_assert_eq!(loaded, compact);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// One command per request.
    #[test]
    fn single_commands_are_decided_as_on_a_full_state(ops in prop::collection::vec(op(), 1..120)) {
        check(&ops, 1)?;
    }

    /// Batches, where a command may read what an earlier one of the batch did (a log then
    /// its correction, a duplicate within the batch).
    #[test]
    fn batches_are_decided_as_on_a_full_state(ops in prop::collection::vec(op(), 1..120)) {
        check(&ops, 3)?;
    }
}
