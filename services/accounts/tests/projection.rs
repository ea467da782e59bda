//! Property test: the account-state read model, which keeps each interaction's facts encoded
//! beside a state without them, against the domain's fold of the same events with every
//! interaction's facts.
//!
//! Random histories of two accounts (registered, stakeholders added, interactions logged on
//! time or late, corrected, some corrections moving `occurred_at`; business times rounded to
//! the day so that equal times, ordered by id, are common) are decided by the real domain.
//! They are applied to the projection over a real sled tree, flushed at random cut points as
//! the runner does (one batch per flush, applied before the next flush), and sometimes reloaded
//! from the tree (a restart). At every cut point, also between a flush and its batch being
//! applied (what a query may meet while a commit is on its way), `GetAccount`'s answer for
//! several `max_interactions` must be exactly the answer built from the full fold.
//!
//! `PROPTEST_CASES=N` runs N cases instead of the default.

#![allow(clippy::unwrap_used)]

use keyplan_account_service::projection::AccountStateProjection;
use keyplan_domain::events::*;
use keyplan_domain::ids::*;
use keyplan_domain::values::*;
use keyplan_domain::{AccountCommand, AccountState};
use keyplan_projection::{ProjectedEvent, Projection};
use keyplan_proto::convert::account_to_proto;
use keyplan_testkit::random_history::{self, cases, choose, dump, op, pick, subset, Op, DAY};
use proptest::prelude::*;

const TENANT: &str = "t";
const ACCOUNTS: [&str; 2] = ["a", "b"];
const STAKEHOLDERS: [&str; 3] = ["s0", "s1", "s2"];
const CHANNELS: [Channel; 3] = [Channel::InPerson, Channel::PhoneCall, Channel::Email];
/// `max_interactions` asked for: fewer than an account has, the default, and more.
const LIMITS: [usize; 4] = [1, 3, 10, 100];

/// Business time of registrations and stakeholders: before any interaction, whose times are
/// rounded down to the day.
fn long_ago() -> Timestamp {
    Timestamp(random_history::start().0 - 30 * DAY)
}

/// The command an op proposes for the account's state, and its envelope's business time.
fn command(
    op: &Op,
    state: &AccountState,
    _recorded: Timestamp,
    occurred: Timestamp,
) -> Option<(AccountCommand, Timestamp)> {
    use AccountCommand as C;
    let x = op.x;
    if !state.exists() {
        return Some((
            C::RegisterAccount(AccountRegistered {
                name: "A".into(),
                industry: "x".into(),
                region: "x".into(),
                headquarters: "x".into(),
                tier: Tier::Key,
            }),
            long_ago(),
        ));
    }
    // Whole days, so that several interactions share an `occurred_at`.
    let day = Timestamp(occurred.0 - occurred.0.rem_euclid(DAY));
    let present: Vec<StakeholderId> = state
        .stakeholders
        .iter()
        .filter(|(_, s)| s.departed_on.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let details = |at: Timestamp| -> Option<InteractionDetails> {
        (!present.is_empty()).then(|| InteractionDetails {
            occurred_at: at,
            channel: pick(&CHANNELS, x[1]),
            stakeholders: subset(&present, x[2]),
            participants: vec![PersonId::parse("p0").unwrap()],
            summary: format!("summary {}", x[3]),
            sentiment: Sentiment::Neutral,
            next_step: String::new(),
            opportunity_id: None,
        })
    };
    let logged = state.interaction_ids.len();
    Some(match op.kind {
        0..=14 => (
            C::AddStakeholder(StakeholderAdded {
                stakeholder_id: StakeholderId::parse(*choose(
                    STAKEHOLDERS.iter().filter(|s| {
                        !state
                            .stakeholders
                            .contains_key(&StakeholderId::parse(**s).unwrap())
                    }),
                    x[0],
                )?)
                .unwrap(),
                name: "S".into(),
                title: "x".into(),
                reports_to: None,
                buying_role: BuyingRole::User,
                influence: 3,
                attitude: Attitude::Neutral,
            }),
            long_ago(),
        ),
        15..=74 => (
            C::LogInteraction(InteractionLogged {
                // Ids whose order is not the order they were logged in.
                interaction_id: InteractionId::parse(format!("i{}", (logged * 7919) % 1000))
                    .unwrap(),
                details: details(day)?,
            }),
            occurred,
        ),
        _ => {
            // The generator's state keeps facts: the domain decides a correction from them.
            let id = choose(state.interactions.keys(), x[0])?.clone();
            // Half of the corrections move the interaction by up to a week either way.
            let moved = if x[4] % 2 == 0 {
                let before = state.interactions.get(&id)?.occurred_at;
                Timestamp(before.0 + (i64::from(x[4] % 15) - 7) * DAY).min(day)
            } else {
                state.interactions.get(&id)?.occurred_at
            };
            (
                C::CorrectInteraction(InteractionCorrected {
                    interaction_id: id,
                    details: details(moved)?,
                    reason: "x".into(),
                }),
                occurred,
            )
        }
    })
}

/// Every answer of `projection` against the full fold of `events`.
fn compare(
    projection: &AccountStateProjection,
    events: &[ProjectedEvent],
    when: &str,
) -> Result<(), TestCaseError> {
    for account in ACCOUNTS {
        let mut full = AccountState::default();
        for e in events.iter().filter(|e| e.account == account) {
            full.apply(&e.event);
        }
        for limit in LIMITS {
            let got = projection.get(TENANT, account, limit).unwrap();
            match got {
                None => prop_assert!(
                    !full.exists() && full.version == 0,
                    "{when}: account {account} missing"
                ),
                Some(state) => {
                    let want = account_to_proto(TENANT, account, &full, limit);
                    let got = account_to_proto(TENANT, account, &state, limit);
                    prop_assert_eq!(got, want, "{}: account {} limit {}", when, account, limit);
                }
            }
        }
    }
    Ok(())
}

fn check(ops: &[Op], cuts: &[u16], restarts: u8) -> Result<(), TestCaseError> {
    let events = random_history::build(TENANT, &ACCOUNTS, ops, command);
    let dir = tempfile::tempdir().unwrap();
    let db = keyplan_projection::ReadModelDb::open(dir.path(), 64 << 20).unwrap();
    let tree = db.open_tree("account-state").unwrap();
    let mut projection = AccountStateProjection::default();
    projection.load(&tree).unwrap();
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (events.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut applied = 0;
    for (i, &cut) in cuts.iter().enumerate() {
        for e in &events[applied..cut] {
            projection.apply(e);
        }
        applied = cut;
        let so_far = &events[..applied];
        compare(&projection, so_far, &format!("before flush at {applied}"))
            .map_err(|e| TestCaseError::fail(format!("{e}{}", dump(so_far))))?;
        let mut batch = keyplan_projection::Batch::default();
        projection.flush(&mut batch).unwrap();
        compare(
            &projection,
            so_far,
            &format!("flushed, not applied, at {applied}"),
        )
        .map_err(|e| TestCaseError::fail(format!("{e}{}", dump(so_far))))?;
        tree.apply_batch(batch).unwrap();
        if restarts & (1 << (i % 8)) != 0 {
            projection = AccountStateProjection::default();
            projection.load(&tree).unwrap();
            compare(&projection, so_far, &format!("reloaded at {applied}"))
                .map_err(|e| TestCaseError::fail(format!("{e}{}", dump(so_far))))?;
        }
    }
    for e in &events[applied..] {
        projection.apply(e);
    }
    compare(&projection, &events, "at the end")
        .map_err(|e| TestCaseError::fail(format!("{e}{}", dump(&events))))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(64)))]

    #[test]
    fn newest_interactions_match_the_full_fold(
        ops in prop::collection::vec(op(), 1..300),
        cuts in prop::collection::vec(any::<u16>(), 0..12),
        restarts in any::<u8>(),
    ) {
        check(&ops, &cuts, restarts)?;
    }
}

/// A state comes back with the facts of the newest interactions only, and counts them all,
/// before and after a restart.
#[test]
fn a_state_comes_with_its_newest_interactions_facts_only() {
    let ops: Vec<Op> = (0..400)
        .map(|i| Op {
            account: 0,
            gap_hours: 1,
            lag_hours: 0,
            kind: if i < 3 { 0 } else { 20 },
            x: [0, 0, 1, 0, 1],
        })
        .collect();
    let events = random_history::build(TENANT, &ACCOUNTS, &ops, command);
    let logged = events
        .iter()
        .filter(|e| matches!(e.event, keyplan_domain::AccountEvent::InteractionLogged(_)))
        .count();
    assert!(logged > 300, "{logged} interactions logged");
    let dir = tempfile::tempdir().unwrap();
    let db = keyplan_projection::ReadModelDb::open(dir.path(), 64 << 20).unwrap();
    let tree = db.open_tree("account-state").unwrap();
    let projection = AccountStateProjection::default();
    projection.load(&tree).unwrap();
    for e in &events {
        projection.apply(e);
    }
    let got = projection.get(TENANT, "a", 5).unwrap().unwrap();
    assert_eq!(got.interaction_ids.len(), logged);
    assert_eq!(got.interactions.len(), 5);
    assert_eq!(projection.list(TENANT)[0].1.interactions.len(), 0);
    let mut batch = keyplan_projection::Batch::default();
    projection.flush(&mut batch).unwrap();
    tree.apply_batch(batch).unwrap();
    let reloaded = AccountStateProjection::default();
    reloaded.load(&tree).unwrap();
    let got = reloaded.get(TENANT, "a", 5).unwrap().unwrap();
    assert_eq!(got.interaction_ids.len(), logged);
    assert_eq!(got.interactions.len(), 5);
    compare(&reloaded, &events, "reloaded").unwrap();
}
