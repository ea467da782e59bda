//! Snapshots of account states over a real sled log: a cache miss loads the latest snapshot
//! plus the events after it, and a snapshot that does not fit the log is never used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroUsize;

use keyplan_domain::codec;
use keyplan_domain::events::{AccountRegistered, PlanSectionRevised};
use keyplan_domain::ids::{AccountId, PlanId, TenantId};
use keyplan_domain::values::{PlanSection, Tier};
use keyplan_domain::{AccountCommand, AccountState};
use keyplan_repository::{AccountRepository, CommandEnvelope, RepositoryConfig};
use keyplan_store::{Direction, EventStore, ExpectedVersion, StoreConfig, StreamId};

const TENANT: &str = "acme";

fn envelope(account: &str, command: AccountCommand) -> CommandEnvelope {
    CommandEnvelope {
        tenant: TenantId::parse(TENANT).unwrap(),
        account: AccountId::parse(account).unwrap(),
        expected: ExpectedVersion::Any,
        idempotency_key: None,
        actor: "dana".into(),
        occurred_at: None,
        correlation_id: None,
        causation_id: None,
        commands: vec![command],
    }
}

/// An account whose stream has `versions` (>= 3) events: registered, a team member, a plan,
/// then revisions of one section.
async fn account_with(repository: &AccountRepository, account: &str, versions: u64) {
    let steps = [
        AccountCommand::RegisterAccount(AccountRegistered {
            name: format!("Customer {account}"),
            industry: "Chemicals".into(),
            region: "EMEA".into(),
            headquarters: "Rotterdam".into(),
            tier: Tier::Key,
        }),
        AccountCommand::AssignTeamMember(keyplan_domain::events::TeamMemberAssigned {
            person_id: keyplan_domain::ids::PersonId::parse("dana").unwrap(),
            name: "Dana Kim".into(),
            role: keyplan_domain::values::TeamRole::KeyAccountManager,
        }),
    ];
    for command in steps {
        repository
            .execute(envelope(account, command))
            .await
            .unwrap();
    }
    let plan = PlanId::parse("plan-1").unwrap();
    repository
        .execute(envelope(
            account,
            AccountCommand::DraftPlan(keyplan_domain::events::PlanDrafted {
                plan_id: plan,
                period: keyplan_domain::events::PlanPeriod {
                    kind: keyplan_domain::values::PlanPeriodKind::Perpetual,
                    start: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                    end: None,
                },
                prepared_by: keyplan_domain::ids::PersonId::parse("dana").unwrap(),
                prepared_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                review_frequency: keyplan_domain::values::ReviewFrequency::Quarterly,
            }),
        ))
        .await
        .unwrap();
    account_with_more(repository, account, 4, versions).await;
}

/// Revisions `from..=to` of the strategy section of `account`'s plan (its versions).
async fn account_with_more(repository: &AccountRepository, account: &str, from: u64, to: u64) {
    for i in from..=to {
        revise(repository, account, i).await;
    }
}

async fn revise(repository: &AccountRepository, account: &str, version: u64) {
    repository
        .execute(CommandEnvelope {
            expected: ExpectedVersion::Exact(version - 1),
            ..envelope(
                account,
                AccountCommand::RevisePlanSection(PlanSectionRevised {
                    plan_id: PlanId::parse("plan-1").unwrap(),
                    section: PlanSection::Strategy,
                    text: format!("strategy, revision {version}"),
                }),
            )
        })
        .await
        .unwrap();
}

fn stream(account: &str) -> StreamId {
    StreamId::new(TENANT, account)
}

/// The account folded from its whole stream, the slow way, as the repository keeps it
/// (without interactions' facts).
fn replayed(store: &EventStore, account: &str) -> AccountState {
    let slice = store
        .read_stream(&stream(account), 1, Direction::Forward, usize::MAX)
        .unwrap();
    let events: Vec<_> = slice
        .events
        .iter()
        .map(|r| codec::decode(&r.event_type, r.schema_version, &r.payload).unwrap())
        .collect();
    let mut state = AccountState::from_events(&events);
    state.drop_interactions();
    state
}

fn snapshot_version(store: &EventStore, account: &str) -> Option<u64> {
    store.flush_snapshots();
    let bytes = store.snapshot(&stream(account)).unwrap()?;
    // The header (format, event id) is 20 bytes; the state's version is its first field.
    let state: AccountState = postcard::from_bytes(&bytes[20..]).ok()?;
    Some(state.version)
}

fn repository(dir: &std::path::Path, cached: usize) -> AccountRepository {
    let store = EventStore::open(StoreConfig::new(dir)).unwrap();
    AccountRepository::new(
        store,
        RepositoryConfig {
            cached_accounts: NonZeroUsize::new(cached).unwrap(),
            ..RepositoryConfig::default()
        },
    )
}

/// Loads `account` after evicting it from a cache of one (by a command on another account).
async fn load_after_a_miss(
    repository: &AccountRepository,
    account: &str,
    evictor: &str,
) -> AccountState {
    account_with(repository, evictor, 3).await;
    repository
        .load(
            &TenantId::parse(TENANT).unwrap(),
            &AccountId::parse(account).unwrap(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_miss_that_replays_many_events_saves_a_snapshot_and_the_next_miss_starts_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let repository = repository(dir.path(), 1);
    account_with(&repository, "big", 300).await;
    assert_eq!(
        snapshot_version(repository.store(), "big"),
        None,
        "a cached account costs no snapshot"
    );
    let loaded = load_after_a_miss(&repository, "big", "other-1").await;
    assert_eq!(loaded, replayed(repository.store(), "big"));
    assert_eq!(
        snapshot_version(repository.store(), "big"),
        Some(300),
        "the miss replayed 300 >= 32 events, and saved where it got"
    );
    account_with_more(&repository, "big", 301, 320).await;

    // Plant a snapshot that fits the log (the right event at its version) but says something
    // the log does not: if a miss uses it, the state shows it.
    let mut bytes = repository
        .store()
        .snapshot(&stream("big"))
        .unwrap()
        .unwrap()
        .to_vec();
    let mut marked: AccountState = postcard::from_bytes(&bytes[20..]).unwrap();
    if let Some(profile) = marked.profile.as_mut() {
        profile.name = "from the snapshot".into();
    }
    bytes.truncate(20);
    bytes.extend(postcard::to_allocvec(&marked).unwrap());
    repository
        .store()
        .save_snapshot(&stream("big"), &bytes)
        .unwrap();

    let loaded = load_after_a_miss(&repository, "big", "other-2").await;
    assert_eq!(
        loaded.profile.as_ref().map(|p| p.name.as_str()),
        Some("from the snapshot"),
        "a miss starts from the snapshot"
    );
    let mut expected = replayed(repository.store(), "big");
    if let Some(profile) = expected.profile.as_mut() {
        profile.name = "from the snapshot".into();
    }
    assert_eq!(loaded, expected, "and replays the 20 events after it");
    assert_eq!(
        snapshot_version(repository.store(), "big"),
        Some(300),
        "20 events replayed (< 32): no new snapshot"
    );
}

#[tokio::test]
async fn a_snapshot_that_does_not_fit_the_log_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let repository = repository(dir.path(), 1);
    account_with(&repository, "big", 270).await;
    load_after_a_miss(&repository, "big", "other").await;
    let store = repository.store().clone();
    store.flush_snapshots();
    let good = store.snapshot(&stream("big")).unwrap().unwrap().to_vec();
    let tenant = TenantId::parse(TENANT).unwrap();
    let big = AccountId::parse("big").unwrap();

    let mut wrong_event = good.clone();
    wrong_event[4] ^= 0xff; // another event id than the log's at that version
    let mut other_format = good.clone();
    other_format[3] ^= 1;
    let mut beyond_the_log = good[..20].to_vec();
    let mut ahead: AccountState = postcard::from_bytes(&good[20..]).unwrap();
    ahead.version = 9_999;
    beyond_the_log.extend(postcard::to_allocvec(&ahead).unwrap());
    let cut = good[..good.len() / 2].to_vec();

    let bad = [
        wrong_event,
        other_format,
        beyond_the_log,
        cut,
        b"junk".to_vec(),
    ];
    for (n, bad) in bad.into_iter().enumerate() {
        store.save_snapshot(&stream("big"), &bad).unwrap();
        account_with(&repository, &format!("other-{n}"), 3).await; // evicts "big"
        let loaded = repository.load(&tenant, &big).await.unwrap();
        assert_eq!(loaded, replayed(&store, "big"), "case {n}");
        // Removed, then (the miss replayed 270 >= 32 events) replaced by a good one.
        assert_eq!(snapshot_version(&store, "big"), Some(270), "case {n}");
    }
}

#[tokio::test]
async fn a_cache_over_its_bytes_lets_the_least_recently_used_state_go() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path())).unwrap();
    // Room for a thousand accounts, but not for two states' bytes.
    let repository = AccountRepository::new(
        store,
        RepositoryConfig {
            cache_bytes: 1,
            ..RepositoryConfig::default()
        },
    );
    account_with(&repository, "big", 300).await;
    let loaded = load_after_a_miss(&repository, "big", "other").await;
    assert_eq!(loaded, replayed(repository.store(), "big"));
    assert_eq!(
        snapshot_version(repository.store(), "big"),
        Some(300),
        "the state had left the cache, so the load replayed the stream (and saved a snapshot)"
    );
}
