//! A state without interactions' facts: what it keeps, what it refuses to decide alone, and
//! the encoding of its interaction ids.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keyplan_domain::decide::{decide, needs_interactions};
use keyplan_domain::events::{
    AccountRegistered, InteractionCorrected, InteractionDetails, InteractionLogged,
    StakeholderAdded, TeamMemberAssigned,
};
use keyplan_domain::ids::{InteractionId, PersonId, StakeholderId};
use keyplan_domain::state::InteractionIds;
use keyplan_domain::values::{Attitude, BuyingRole, Channel, Sentiment, TeamRole, Tier, Timestamp};
use keyplan_domain::{AccountCommand, AccountEvent, AccountState, DomainError};

fn id(s: &str) -> InteractionId {
    InteractionId::parse(s).unwrap()
}

fn details() -> InteractionDetails {
    InteractionDetails {
        occurred_at: Timestamp(1_740_000_000_000_000),
        channel: Channel::Email,
        stakeholders: vec![StakeholderId::parse("cfo").unwrap()],
        participants: vec![PersonId::parse("dana").unwrap()],
        summary: "Sent the proposal.".into(),
        sentiment: Sentiment::Neutral,
        next_step: String::new(),
        opportunity_id: None,
    }
}

fn logged(interaction: &str) -> AccountEvent {
    AccountEvent::InteractionLogged(InteractionLogged {
        interaction_id: id(interaction),
        details: details(),
    })
}

#[test]
fn a_state_without_facts_keeps_the_ids_of_what_was_logged() {
    let events: Vec<_> = (0..50).map(|i| logged(&format!("i{i}"))).collect();
    let full = AccountState::from_events(&events);
    let mut compact = AccountState::without_interactions();
    for e in &events {
        compact.apply(e);
    }
    assert!(compact.interactions.is_empty());
    assert_eq!(full.interactions.len(), 50);
    assert_eq!(compact.interaction_ids, full.interaction_ids);
    assert_eq!(compact.interaction_ids.len(), 50);
    assert!(compact.interaction_ids.contains(&id("i7")));
    assert!(!compact.interaction_ids.contains(&id("i50")));

    let mut dropped = full.clone();
    dropped.drop_interactions();
    assert_eq!(dropped, compact);
    dropped.restore_interactions(full.interactions.clone());
    assert_eq!(dropped, full);
}

#[test]
fn what_needs_the_facts_is_refused_without_them_instead_of_guessed() {
    let history = [
        AccountEvent::AccountRegistered(AccountRegistered {
            name: "Globex".into(),
            industry: "Chemicals".into(),
            region: "EMEA".into(),
            headquarters: "Rotterdam".into(),
            tier: Tier::Key,
        }),
        AccountEvent::TeamMemberAssigned(TeamMemberAssigned {
            person_id: PersonId::parse("dana").unwrap(),
            name: "Dana Kim".into(),
            role: TeamRole::KeyAccountManager,
        }),
        AccountEvent::StakeholderAdded(StakeholderAdded {
            stakeholder_id: StakeholderId::parse("cfo").unwrap(),
            name: "Ana Ruiz".into(),
            title: "CFO".into(),
            reports_to: None,
            buying_role: BuyingRole::EconomicBuyer,
            influence: 4,
            attitude: Attitude::Neutral,
        }),
        logged("i1"),
    ];
    let full = AccountState::from_events(&history);
    let mut state = full.clone();
    state.drop_interactions();
    let correct = AccountCommand::CorrectInteraction(InteractionCorrected {
        interaction_id: id("i1"),
        details: InteractionDetails {
            summary: "Sent the revised proposal.".into(),
            ..details()
        },
        reason: "wrong summary".into(),
    });
    let log_again = AccountCommand::LogInteraction(InteractionLogged {
        interaction_id: id("i1"),
        details: details(),
    });
    let log_new = AccountCommand::LogInteraction(InteractionLogged {
        interaction_id: id("i2"),
        details: details(),
    });
    assert!(needs_interactions(&state, std::slice::from_ref(&correct)));
    assert!(needs_interactions(&state, std::slice::from_ref(&log_again)));
    assert!(!needs_interactions(&state, std::slice::from_ref(&log_new)));
    assert!(!needs_interactions(&full, std::slice::from_ref(&correct)));

    let now = Timestamp::now();
    match decide(&state, &correct, now) {
        Err(DomainError::FailedPrecondition(m)) => {
            assert!(
                m.contains("internal error") && m.contains("nothing was stored"),
                "{m}"
            );
        }
        other => panic!("decided without the facts: {other:?}"),
    }
    assert!(decide(&full, &correct, now).is_ok());
    // Logging without the facts: the digests answer.
    assert!(matches!(
        decide(&state, &log_again, now),
        Err(DomainError::AlreadyExists(_))
    ));
    assert!(decide(&state, &log_new, now).is_ok());
}

#[test]
fn interaction_ids_encode_as_one_byte_string_and_refuse_a_malformed_one() {
    let mut ids = InteractionIds::default();
    for i in 0..3 {
        ids.insert(&id(&format!("i{i}")));
    }
    let bytes = postcard::to_allocvec(&ids).unwrap();
    assert_eq!(bytes.len(), 1 + 3 * 16, "a length, then 16 bytes per id");
    assert_eq!(postcard::from_bytes::<InteractionIds>(&bytes).unwrap(), ids);

    let mut unsorted = bytes.clone();
    unsorted[1..17].copy_from_slice(&bytes[17..33]);
    unsorted[17..33].copy_from_slice(&bytes[1..17]);
    assert!(postcard::from_bytes::<InteractionIds>(&unsorted).is_err());
    let mut cut = bytes[..bytes.len() - 1].to_vec();
    cut[0] = (3 * 16 - 1) as u8;
    assert!(postcard::from_bytes::<InteractionIds>(&cut).is_err());
}

/// Thousands of inserts cross many merges of the two sorted runs: membership, count, equality
/// and the encoding stay those of one sorted set, whichever run a digest sits in.
#[test]
fn interaction_ids_answer_as_one_sorted_set_across_merges() {
    let mut ids = InteractionIds::default();
    let mut reference = std::collections::BTreeSet::new();
    for i in 0..5_000 {
        let logged = id(&format!("i{}", (i * 7919) % 5_003));
        ids.insert(&logged);
        ids.insert(&logged);
        reference.insert(logged);
        if i % 997 == 0 {
            assert_eq!(ids.len(), reference.len());
            let bytes = postcard::to_allocvec(&ids).unwrap();
            let decoded = postcard::from_bytes::<InteractionIds>(&bytes).unwrap();
            assert_eq!(decoded, ids, "decoded (one run) equals the two runs");
            assert_eq!(postcard::to_allocvec(&decoded).unwrap(), bytes);
        }
    }
    assert_eq!(ids.len(), reference.len());
    for n in 0..5_003 {
        let candidate = id(&format!("i{n}"));
        assert_eq!(
            ids.contains(&candidate),
            reference.contains(&candidate),
            "{candidate}"
        );
    }
    let mut other_order = InteractionIds::default();
    for logged in reference.iter().rev() {
        other_order.insert(logged);
    }
    assert_eq!(other_order, ids);
    other_order.insert(&id("one-more"));
    assert_ne!(other_order, ids);
    let json = serde_json::to_string(&ids).unwrap();
    assert_eq!(serde_json::from_str::<InteractionIds>(&json).unwrap(), ids);
}
