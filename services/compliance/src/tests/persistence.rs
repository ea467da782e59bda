//! Persistence: a projection rebuilt from scratch equals one built incrementally across
//! flush/load round trips, and flushes write only what changed.

use keyplan_testkit::{at, globex};

use keyplan_projection::stored::Stored;

use super::*;
use crate::error::QueryError;
use crate::projection::CHUNK_FACTS;

pub(super) fn temp_tree() -> (keyplan_projection::ReadModelDb, keyplan_projection::Tree) {
    let db = keyplan_projection::ReadModelDb::temporary().unwrap();
    let tree = db.open_tree("compliance").unwrap();
    (db, tree)
}

/// Flushes `p` into `tree` (as the runner commits: one batch, then `committed`).
fn flush(p: &ComplianceProjection, tree: &keyplan_projection::Tree) {
    let mut batch = keyplan_projection::Batch::default();
    p.flush(&mut batch).unwrap();
    tree.apply_batch(batch).unwrap();
    p.committed();
}

/// Keys (other than the runner's) a flush of `p` writes.
fn keys_written(p: &ComplianceProjection) -> usize {
    let (_db, scratch) = temp_tree();
    flush(p, &scratch);
    scratch.count().unwrap()
}

/// Every answer that matters, at many instants on both axes.
fn answers(p: &ComplianceProjection) -> Vec<String> {
    let mut out = Vec::new();
    for (y, m, d) in [
        (2025, 1, 2),
        (2025, 1, 25),
        (2025, 3, 12),
        (2025, 3, 22),
        (2025, 3, 25),
        (2025, 7, 1),
        (2025, 7, 10),
        (2025, 10, 25),
        (2025, 12, 31),
        (2026, 4, 1),
    ] {
        for as_of in [
            AsOf::happened_by(at(y, m, d, 12)),
            AsOf::known_at(at(y, m, d, 12)),
        ] {
            for account in ["globex", "initech"] {
                out.push(format!(
                    "{:?}",
                    p.account_compliance(globex::TENANT, account, as_of)
                ));
            }
            for group_by in [GroupBy::Account, GroupBy::Owner, GroupBy::Tenant] {
                out.push(format!("{:?}", p.rollup(globex::TENANT, group_by, as_of)));
            }
            out.push(format!(
                "{:?}",
                p.trend(globex::TENANT, None, None, 8, as_of)
            ));
        }
    }
    out
}

fn all_events() -> Vec<ProjectedEvent> {
    let mut events = globex::events();
    events.extend(globex_twin("initech"));
    events
}

#[test]
fn rebuilt_from_scratch_equals_incremental_with_flush_and_load_round_trips() {
    let events = all_events();
    let scratch = project(&events);

    // Incrementally, in uneven slices; after each, flush to sled and continue with a fresh
    // instance loaded from it (a restart).
    let (_db, tree) = temp_tree();
    let mut live = ComplianceProjection::default();
    let mut rest = events.as_slice();
    for size in [1, 7, 40, 3, 0, 100, 2].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (slice, tail) = rest.split_at((*size).min(rest.len()));
        for e in slice {
            live.apply(e);
        }
        flush(&live, &tree);
        let restarted = ComplianceProjection::default();
        restarted.load(&tree).unwrap();
        live = restarted;
        rest = tail;
    }

    assert_eq!(live.account_keys(), scratch.account_keys());
    for (tenant, account) in scratch.account_keys() {
        assert_eq!(
            live.history(&tenant, &account),
            scratch.history(&tenant, &account),
            "{tenant}/{account}"
        );
    }
    assert_eq!(answers(&live), answers(&scratch));

    // The rebuilt one, persisted in one go and reloaded, is the same again.
    let (_db2, tree2) = temp_tree();
    flush(&scratch, &tree2);
    let reloaded = ComplianceProjection::default();
    reloaded.load(&tree2).unwrap();
    assert_eq!(answers(&reloaded), answers(&scratch));
    // Globex has fewer relevant events than a chunk holds: one key per account.
    let facts = globex::events()
        .iter()
        .filter(|e| crate::facts::Fact::from_event(e).is_some())
        .count();
    assert!(facts < CHUNK_FACTS, "{facts}");
    assert_eq!(tree2.count().unwrap(), 2);
}

#[test]
fn a_flush_writes_only_the_accounts_changed_since_the_last_one() {
    let events = all_events();
    let p = project(&events);
    let (_db, tree) = temp_tree();
    flush(&p, &tree);
    // Nothing changed: nothing written.
    assert_eq!(keys_written(&p), 0);
    // One new fact of one account: one key (that account's open chunk).
    let mut next = globex::events()[40].clone();
    next.position = 10_000;
    next.event = keyplan_domain::AccountEvent::EngagementRuleRetired(
        keyplan_domain::events::EngagementRuleRetired {
            rule_id: keyplan_domain::ids::RuleId::parse("r-cfo").unwrap(),
            reason: "x".into(),
        },
    );
    p.apply(&next);
    assert_eq!(keys_written(&p), 1);
    // Events compliance ignores write nothing.
    let mut ignored = next.clone();
    ignored.position = 10_001;
    ignored.event = globex::events()
        .into_iter()
        .find(|e| e.event.event_type() == "RevenueRecorded")
        .unwrap()
        .event;
    p.apply(&ignored);
    assert_eq!(keys_written(&p), 0);
}

#[test]
fn a_busy_account_is_appended_to_not_rewritten() {
    use keyplan_domain::events::{InteractionDetails, InteractionLogged};
    use keyplan_domain::ids::{InteractionId, PersonId, StakeholderId};
    use keyplan_domain::values::{Channel, Sentiment};
    // 300 interactions of one account, flushed after each one.
    let mut log = Log::default();
    for i in 0..300u32 {
        let t = Timestamp(at(2025, 1, 1, 0).0 + i64::from(i) * 3_600_000_000);
        log.now(
            t,
            InteractionLogged {
                interaction_id: InteractionId::parse(format!("i{i}")).unwrap(),
                details: InteractionDetails {
                    occurred_at: t,
                    channel: Channel::PhoneCall,
                    stakeholders: vec![StakeholderId::parse("s").unwrap()],
                    participants: vec![PersonId::parse("p").unwrap()],
                    summary: "x".into(),
                    sentiment: Sentiment::Neutral,
                    next_step: String::new(),
                    opportunity_id: None,
                },
            },
        );
    }
    let p = ComplianceProjection::default();
    let (_db, tree) = temp_tree();
    for e in &log.events {
        p.apply(e);
        // Each flush writes one key: the open chunk grown by one fact, or a new chunk.
        let (_scratch_db, scratch) = temp_tree();
        flush(&p, &scratch);
        assert_eq!(scratch.count().unwrap(), 1);
        for item in scratch.iter() {
            let (k, v) = item.unwrap();
            tree.insert(k, v).unwrap();
        }
    }
    // 300 facts in chunks of at most 128: 3 keys.
    assert_eq!(tree.count().unwrap(), 300usize.div_ceil(CHUNK_FACTS));
    let reloaded = ComplianceProjection::default();
    reloaded.load(&tree).unwrap();
    assert_eq!(reloaded.history("t", "a"), p.history("t", "a"));
    // A flush after a burst splits it into full chunks: 300 facts at once, 3 keys.
    let burst = project(&log.events);
    assert_eq!(keys_written(&burst), 3);
}

/// `count` interactions of each of `accounts` (tenant Globex's), interleaved, positions from
/// `first`.
fn interactions(accounts: &[&str], count: u32, first: u64) -> Vec<ProjectedEvent> {
    use keyplan_domain::events::{InteractionDetails, InteractionLogged};
    use keyplan_domain::ids::{InteractionId, PersonId, StakeholderId};
    use keyplan_domain::values::{Channel, Sentiment};
    let mut events = Vec::new();
    for i in 0..count {
        for account in accounts {
            let t = Timestamp(at(2025, 2, 1, 0).0 + i64::from(i) * 3_600_000_000);
            let position = first + events.len() as u64;
            events.push(ProjectedEvent {
                position,
                event_id: super::uuid_for(position),
                tenant: globex::TENANT.into(),
                account: (*account).into(),
                stream_version: position,
                recorded_at: t,
                occurred_at: t,
                actor: "test".into(),
                event: InteractionLogged {
                    interaction_id: InteractionId::parse(format!("busy-{i}")).unwrap(),
                    details: InteractionDetails {
                        occurred_at: t,
                        channel: Channel::PhoneCall,
                        stakeholders: vec![StakeholderId::parse("s-cfo").unwrap()],
                        participants: vec![PersonId::parse("p-anna").unwrap()],
                        summary: "x".into(),
                        sentiment: Sentiment::Neutral,
                        next_step: String::new(),
                        opportunity_id: None,
                    },
                }
                .into(),
            });
        }
    }
    events
}

#[test]
fn histories_evicted_from_memory_are_read_back_and_answer_the_same() {
    let mut events = all_events();
    events.extend(interactions(
        &["globex", "initech"],
        300,
        events.len() as u64 + 1,
    ));
    // A budget of one byte: after every commit, no history stays in memory.
    let (_db, tree) = temp_tree();
    let live = ComplianceProjection::with_budget(1);
    live.load(&tree).unwrap();
    let unbounded = ComplianceProjection::default();
    let mut rest = events.as_slice();
    for size in [1, 7, 140, 3, 0, 260, 2, 129].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (slice, tail) = rest.split_at((*size).min(rest.len()));
        for e in slice {
            live.apply(e);
            unbounded.apply(e);
        }
        // A query between the flush and its batch landing: the account is in flight and
        // must not leave memory, since the tree does not have its facts yet.
        let mut batch = keyplan_projection::Batch::default();
        live.flush(&mut batch).unwrap();
        let in_flight = live.history(globex::TENANT, "globex");
        tree.apply_batch(batch).unwrap();
        live.committed();
        assert_eq!(live.resident(), 0);
        assert_eq!(in_flight, unbounded.history(globex::TENANT, "globex"));
        assert_eq!(answers(&live), answers(&unbounded));
        rest = tail;
    }
    for (tenant, account) in unbounded.account_keys() {
        assert_eq!(
            live.history(&tenant, &account),
            unbounded.history(&tenant, &account),
            "{tenant}/{account}"
        );
    }
    // A restart reads each account's last chunk only, and folds histories when asked.
    let restarted = ComplianceProjection::with_budget(1);
    restarted.load(&tree).unwrap();
    assert_eq!(restarted.resident(), 0);
    assert_eq!(answers(&restarted), answers(&unbounded));
    // Warming after a start reads histories back until the budget is full.
    for (budget, resident) in [(1, 1), (usize::MAX, 2)] {
        let warmed = ComplianceProjection::with_budget(budget);
        warmed.load(&tree).unwrap();
        warmed.warm();
        assert_eq!(warmed.resident(), resident, "budget {budget}");
        assert_eq!(answers(&warmed), answers(&unbounded));
    }

    // A damaged chunk before the last is found when the history is folded: the query fails
    // with a message naming it, and the start does not.
    let key = Stored::chunk_key(globex::TENANT, "globex", "c", 0);
    let value = tree.get(&key).unwrap().unwrap();
    tree.insert(&key, &value[..value.len() / 2]).unwrap();
    let damaged = ComplianceProjection::with_budget(1);
    damaged.load(&tree).unwrap();
    let as_of = AsOf::happened_by(at(2025, 7, 1, 12));
    let err = damaged
        .account_compliance(globex::TENANT, "globex", as_of)
        .unwrap_err();
    assert!(
        matches!(&err, QueryError::Unreadable(m) if m.contains(&String::from_utf8_lossy(&key).into_owned())),
        "{err:?}"
    );
    assert!(damaged
        .account_compliance(globex::TENANT, "initech", as_of)
        .is_ok());
}

#[test]
fn corrupt_or_foreign_state_is_reported_not_guessed() {
    let (_db, tree) = temp_tree();
    let p = globex_projection();
    flush(&p, &tree);
    // A chunk that does not decode (cut short): named in the error.
    let (key, value) = tree.iter().next().unwrap().unwrap();
    tree.insert(&key, &value[..value.len() / 2]).unwrap();
    let err = ComplianceProjection::default().load(&tree).unwrap_err();
    let name = String::from_utf8_lossy(&key).into_owned();
    assert!(err.to_string().contains(&name), "{err}");
    // A missing chunk: chunk 0 stored as chunk 1.
    tree.remove(&key).unwrap();
    let mut renamed = key.to_vec();
    let last = renamed.len() - 1;
    renamed[last] = b'1';
    tree.insert(renamed, value).unwrap();
    let err = ComplianceProjection::default().load(&tree).unwrap_err();
    assert!(err.to_string().contains("chunk 0 is missing"), "{err}");
    // The runner's own keys are skipped.
    let (_db2, tree2) = temp_tree();
    flush(&p, &tree2);
    tree2.insert(b"\0checkpoint", 7u64.to_be_bytes()).unwrap();
    ComplianceProjection::default().load(&tree2).unwrap();
}

#[test]
fn adopt_swaps_in_a_rebuilt_state_for_every_clone() {
    let serving = ComplianceProjection::default();
    let clone_held_by_the_service = serving.clone();
    let rebuilt = globex_projection();
    assert!(serving.adopt(rebuilt));
    assert_eq!(
        clone_held_by_the_service.account_share(
            globex::TENANT,
            globex::ACCOUNT,
            at(2025, 7, 1, 12)
        ),
        Ok(Some((1, 4)))
    );
}
