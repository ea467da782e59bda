//! Fuzz body: the timeline's page token, as `TimelineQuery::resume` decodes it.
//!
//! Input: one byte choosing the query (order, event-type filter), then the token text.
//! Resuming must never panic; a token it accepts must be exactly the one the query would
//! issue for the decoded cursor (tokens are hex: compared ignoring case).

use keyplan_timeline_service::query::{Order, Scope, TimelineQuery};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&selector, token)) = data.split_first() else {
        return;
    };
    let Ok(token) = std::str::from_utf8(token) else {
        return;
    };
    let mut query = TimelineQuery::new(Scope::Account);
    if selector & 1 == 1 {
        query.order = Order::OldestFirst;
    }
    if selector & 2 == 2 {
        let Ok(filtered) = query.with_event_types(["InteractionLogged"]) else {
            return;
        };
        query = filtered;
    }
    let (tenant, account) = if selector & 4 == 4 {
        ("acme", "globex")
    } else {
        ("initech", "acme-corp")
    };
    let Ok(resumed) = query.clone().resume(tenant, account, token) else {
        return;
    };
    let cursor = resumed
        .after
        .expect("a resumed query continues after a cursor");
    let reissued = query.page_token(tenant, account, cursor);
    assert!(
        reissued.eq_ignore_ascii_case(token),
        "accepted {token:?}, which this query would issue as {reissued:?}"
    );
}
