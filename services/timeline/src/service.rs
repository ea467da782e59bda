//! `keyplan.v1.TimelineService`.

use std::pin::Pin;

use futures::Stream;
use keyplan_domain::ids::*;
use keyplan_projection::ProjectionHandle;
use keyplan_proto::convert::{timestamp_from_proto_checked, timestamp_to_proto};
use keyplan_proto::pb;
use keyplan_proto::pb::list_timeline_request::Scope as WireScope;
use keyplan_proto::pb::timeline_service_server::TimelineService;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::directory::SubjectKey;
use crate::error::TimelineError;
use crate::projection::{TimelineEntry, TimelineProjection};
use crate::query::{Order, Scope, TimelineQuery};
use crate::status::{not_caught_up, to_status, watch_interrupted};

/// Entries read per step of a watch's catch-up (each step holds the account's lock briefly).
const CATCH_UP_BATCH: usize = 256;

/// Entries buffered per watcher between the feed task and the gRPC stream: a slow client
/// makes the task wait, and then lag on the live channel and catch up from stored entries.
const WATCH_BUFFER: usize = 256;

/// Implements `keyplan.v1.TimelineService` over a [`TimelineProjection`].
#[derive(Debug, Clone)]
pub struct TimelineApi {
    projection: TimelineProjection,
    progress: ProjectionHandle,
}

impl TimelineApi {
    /// The service over `projection`, whose runner reports its progress through `progress`
    /// (for `min_position`).
    pub fn new(projection: TimelineProjection, progress: ProjectionHandle) -> Self {
        Self {
            projection,
            progress,
        }
    }

    /// Waits until the projection includes `min_position` (read-your-writes).
    async fn catch_up(&self, min_position: u64) -> Result<(), Status> {
        self.progress
            .catch_up(min_position)
            .await
            .map_err(not_caught_up)
    }
}

/// Tenant and account ids of a request, validated.
fn account_ids(tenant: String, account: String) -> Result<(TenantId, AccountId), TimelineError> {
    Ok((TenantId::parse(tenant)?, AccountId::parse(account)?))
}

/// Longest actor a command may carry, so the longest worth filtering by.
const MAX_ACTOR_LEN: usize = 200;

/// The validated query of a `ListTimelineRequest` (without its ids and min_position).
fn query_from_proto(
    tenant: &TenantId,
    account: &AccountId,
    r: &pb::ListTimelineRequest,
) -> Result<TimelineQuery, TimelineError> {
    let scope = match r.scope.clone() {
        None | Some(WireScope::WholeAccount(_)) => Scope::Account,
        Some(WireScope::PlanId(id)) => Scope::Subject(SubjectKey::Plan(PlanId::parse(id)?)),
        Some(WireScope::StakeholderId(id)) => {
            Scope::Subject(SubjectKey::Stakeholder(StakeholderId::parse(id)?))
        }
        Some(WireScope::PersonId(id)) => Scope::Subject(SubjectKey::Person(PersonId::parse(id)?)),
        Some(WireScope::OpportunityId(id)) => {
            Scope::Subject(SubjectKey::Opportunity(OpportunityId::parse(id)?))
        }
    };
    let order = match pb::TimelineOrder::try_from(r.order) {
        Ok(pb::TimelineOrder::Unspecified | pb::TimelineOrder::NewestFirst) => Order::NewestFirst,
        Ok(pb::TimelineOrder::OldestFirst) => Order::OldestFirst,
        Err(_) => {
            return Err(TimelineError::invalid(
                "order",
                format!(
                    "unknown value {}; use TIMELINE_ORDER_NEWEST_FIRST (default) or \
                     TIMELINE_ORDER_OLDEST_FIRST",
                    r.order
                ),
            ))
        }
    };
    let from = r
        .occurred_from
        .as_ref()
        .map(|t| timestamp_from_proto_checked("occurred_from", t))
        .transpose()?;
    let to = r
        .occurred_to
        .as_ref()
        .map(|t| timestamp_from_proto_checked("occurred_to", t))
        .transpose()?;
    let mut query = TimelineQuery::new(scope)
        .with_event_types(&r.event_types)?
        .with_time_range(from, to)?
        .with_page_size(r.page_size);
    query.order = order;
    if !r.actor.is_empty() {
        // The same syntax a command's actor has: at most 200 bytes, one line.
        if r.actor.len() > MAX_ACTOR_LEN {
            return Err(TimelineError::invalid(
                "actor",
                format!("must be at most {MAX_ACTOR_LEN} characters, as a command's actor"),
            ));
        }
        keyplan_domain::text::check_no_control("actor", &r.actor, false)?;
        query.actor = Some(r.actor.clone());
    }
    if !r.page_token.is_empty() {
        query = query.resume(tenant.as_str(), account.as_str(), &r.page_token)?;
    }
    Ok(query)
}

/// The wire form of an entry.
pub fn entry_to_proto(account: &str, e: &TimelineEntry) -> pb::TimelineEntry {
    pb::TimelineEntry {
        position: e.position,
        stream_version: e.stream_version,
        event_id: e.event_id.to_string(),
        event_type: e.event_type.to_owned(),
        actor: e.actor.clone(),
        occurred_at: Some(timestamp_to_proto(e.occurred_at)),
        recorded_at: Some(timestamp_to_proto(e.recorded_at)),
        summary: e.summary.clone(),
        subjects: Some(pb::TimelineSubjects {
            plan_ids: e.subjects.plan_ids.clone(),
            stakeholder_ids: e.subjects.stakeholder_ids.clone(),
            person_ids: e.subjects.person_ids.clone(),
            opportunity_ids: e.subjects.opportunity_ids.clone(),
        }),
        corrects_position: e.corrects_position.unwrap_or(0),
        corrected_by_position: e.corrected_by_position.unwrap_or(0),
        account_id: account.to_owned(),
    }
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<pb::TimelineEntry, Status>> + Send + 'static>>;

/// One watcher's feed: catch-up from stored entries, then live, falling back to catch-up
/// whenever the live channel lags (or is replaced), so a slow watcher is never dropped and
/// never misses or repeats an entry.
///
/// The live channel carries positions only: the feed reads each entry when it sends it, so its
/// summary names people and things as they were at the entry's business time according to
/// what the projection knows at that moment, as a page read then would.
struct Feed {
    projection: TimelineProjection,
    tenant: String,
    account: String,
    /// Position of the last entry sent.
    sent: u64,
    out: mpsc::Sender<Result<pb::TimelineEntry, Status>>,
}

impl Feed {
    /// Sends one entry unless already sent; `false` once the client is gone.
    async fn send(&mut self, entry: &TimelineEntry) -> bool {
        if entry.position <= self.sent {
            return true;
        }
        self.sent = entry.position;
        self.out
            .send(Ok(entry_to_proto(&self.account, entry)))
            .await
            .is_ok()
    }

    /// Sends the stored entries after the last one sent, up to `up_to`; `false` once the
    /// client is gone or the account cannot be read.
    async fn send_up_to(&mut self, up_to: u64) -> bool {
        while self.sent < up_to {
            let batch = match self.projection.entries_between(
                &self.tenant,
                &self.account,
                self.sent,
                up_to,
                CATCH_UP_BATCH,
            ) {
                Ok(batch) => batch,
                Err(e) => {
                    let _ = self.out.send(Err(to_status(e))).await;
                    return false;
                }
            };
            if batch.is_empty() {
                break;
            }
            for entry in &batch {
                if !self.send(entry).await {
                    return false;
                }
            }
        }
        true
    }

    async fn run(mut self, mut live: broadcast::Receiver<u64>, mut head: u64) {
        loop {
            // Catch up to the head seen when `live` was subscribed.
            if !self.send_up_to(head).await {
                return;
            }
            // Then live, until the channel lags or closes.
            loop {
                tokio::select! {
                    _ = self.out.closed() => return,
                    received = live.recv() => match received {
                        Ok(position) => {
                            if !self.send_up_to(position).await {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(skipped)) => {
                            tracing::debug!(account = %self.account, skipped, "timeline watcher lagged; catching up");
                            break;
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            }
            match self.projection.subscribe(&self.tenant, &self.account) {
                Ok((receiver, new_head)) => {
                    live = receiver;
                    head = new_head;
                }
                Err(e) => {
                    let _ = self.out.send(Err(watch_interrupted(&e.to_string()))).await;
                    return;
                }
            }
        }
    }
}

#[tonic::async_trait]
impl TimelineService for TimelineApi {
    async fn list_timeline(
        &self,
        request: Request<pb::ListTimelineRequest>,
    ) -> Result<Response<pb::ListTimelineResponse>, Status> {
        let r = request.into_inner();
        let (tenant, account) =
            account_ids(r.tenant.clone(), r.account_id.clone()).map_err(to_status)?;
        let query = query_from_proto(&tenant, &account, &r).map_err(to_status)?;
        self.catch_up(r.min_position).await?;
        let page = self
            .projection
            .list(tenant.as_str(), account.as_str(), &query)
            .map_err(to_status)?;
        Ok(Response::new(pb::ListTimelineResponse {
            entries: page
                .entries
                .iter()
                .map(|e| entry_to_proto(account.as_str(), e))
                .collect(),
            next_page_token: page
                .next
                .map(|cursor| query.page_token(tenant.as_str(), account.as_str(), cursor))
                .unwrap_or_default(),
            last_position: page.last_position,
        }))
    }

    type WatchTimelineStream = EntryStream;

    async fn watch_timeline(
        &self,
        request: Request<pb::WatchTimelineRequest>,
    ) -> Result<Response<Self::WatchTimelineStream>, Status> {
        let r = request.into_inner();
        let (tenant, account) = account_ids(r.tenant, r.account_id).map_err(to_status)?;
        self.catch_up(r.min_position).await?;
        let (live, head) = self
            .projection
            .subscribe(tenant.as_str(), account.as_str())
            .map_err(to_status)?;
        let (out, rx) = mpsc::channel(WATCH_BUFFER);
        let feed = Feed {
            projection: self.projection.clone(),
            tenant: tenant.to_string(),
            account: account.to_string(),
            sent: r.from_position.saturating_sub(1),
            out,
        };
        tokio::spawn(feed.run(live, head));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use keyplan_domain::events::AccountRegistered;
    use keyplan_domain::values::{Tier, Timestamp};
    use keyplan_projection::{ProjectedEvent, Projection};

    use super::*;

    fn registered(position: u64) -> ProjectedEvent {
        ProjectedEvent {
            position,
            event_id: uuid::Uuid::from_u64_pair(9, position),
            tenant: "acme".into(),
            account: "globex".into(),
            stream_version: position,
            recorded_at: Timestamp(position as i64),
            occurred_at: Timestamp(position as i64),
            actor: "dana".into(),
            event: AccountRegistered {
                name: format!("Globex {position}"),
                industry: String::new(),
                region: String::new(),
                headquarters: String::new(),
                tier: Tier::Key,
            }
            .into(),
        }
    }

    async fn next_position(rx: &mut mpsc::Receiver<Result<pb::TimelineEntry, Status>>) -> u64 {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an entry within 10 s")
            .expect("the feed is open")
            .expect("an entry, not an error")
            .position
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lagging_watcher_catches_up_from_the_stored_entries_without_gap_or_duplicate() {
        let projection = TimelineProjection::default();
        projection.apply(&registered(1));
        let (live, head) = projection.subscribe("acme", "globex").unwrap();
        assert_eq!(head, 1);
        // A 4-entry outbox that nobody reads yet: the feed blocks, and the 1024-entry live
        // channel overflows while 2999 more entries are applied.
        let (out, mut rx) = mpsc::channel(4);
        let feed = Feed {
            projection: projection.clone(),
            tenant: "acme".into(),
            account: "globex".into(),
            sent: 0,
            out,
        };
        let task = tokio::spawn(feed.run(live, head));
        for position in 2..=3000 {
            projection.apply(&registered(position));
        }
        let mut received = Vec::with_capacity(3000);
        while received.len() < 3000 {
            received.push(next_position(&mut rx).await);
        }
        assert_eq!(received, (1..=3000).collect::<Vec<_>>());
        // And live again afterwards.
        projection.apply(&registered(3001));
        assert_eq!(next_position(&mut rx).await, 3001);
        // A client that goes away ends the feed.
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the feed ends when its client is gone")
            .unwrap();
    }

    async fn next_entry(
        rx: &mut mpsc::Receiver<Result<pb::TimelineEntry, Status>>,
    ) -> pb::TimelineEntry {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an entry within 10 s")
            .expect("the feed is open")
            .expect("an entry, not an error")
    }

    /// A watch names people as they were at each entry's business time, as known when it
    /// sends the entry: the 06-10 meeting, applied before the late title change of 06-01 but
    /// sent after it, reads "(CFO)"; the 05-25 meeting logged afterwards reads "(Finance
    /// Controller)".
    #[tokio::test]
    async fn a_watch_names_people_as_they_were_at_each_entry_when_it_sends_it() {
        use crate::fixture_tests::{title_change_story, STORY_ACCOUNT};
        let story = title_change_story();
        let projection = TimelineProjection::default();
        for e in &story[..3] {
            projection.apply(e);
        }
        let (live, head) = projection
            .subscribe(keyplan_testkit::globex::TENANT, STORY_ACCOUNT)
            .unwrap();
        let (out, mut rx) = mpsc::channel(64);
        let feed = Feed {
            projection: projection.clone(),
            tenant: keyplan_testkit::globex::TENANT.into(),
            account: STORY_ACCOUNT.into(),
            sent: 0,
            out,
        };
        // This runtime has one thread: the feed runs only once the test waits, after both
        // events are applied (and announced on the live channel).
        tokio::spawn(feed.run(live, head));
        projection.apply(&story[3]);
        projection.apply(&story[4]);
        for expected in 1..=3 {
            assert_eq!(next_entry(&mut rx).await.position, expected);
        }
        let meeting = next_entry(&mut rx).await;
        assert_eq!(meeting.position, 4);
        assert_eq!(
            meeting.summary,
            "Dana Kim (key account manager) met Lee Park (CFO) in person about \"Budget\": positive"
        );
        assert_eq!(next_entry(&mut rx).await.position, 5);
        projection.apply(&story[5]);
        let late = next_entry(&mut rx).await;
        assert_eq!(late.position, 6);
        assert!(
            late.summary
                .starts_with("Dana Kim (key account manager) met Lee Park (Finance Controller)"),
            "{}",
            late.summary
        );
    }

    #[tokio::test]
    async fn a_watcher_follows_a_rebuilt_generation_without_gap_or_duplicate() {
        let projection = TimelineProjection::default();
        for position in 1..=10 {
            projection.apply(&registered(position));
        }
        let (live, head) = projection.subscribe("acme", "globex").unwrap();
        let (out, mut rx) = mpsc::channel(64);
        let feed = Feed {
            projection: projection.clone(),
            tenant: "acme".into(),
            account: "globex".into(),
            sent: 4, // from_position 5
            out,
        };
        tokio::spawn(feed.run(live, head));
        for expected in 5..=10 {
            assert_eq!(next_position(&mut rx).await, expected);
        }
        // An online rebuild: a fresh instance replays 1..=12 and is adopted; the old live
        // channel closes, the watcher re-subscribes and catches up with 11 and 12 only.
        let rebuilt = TimelineProjection::default();
        for position in 1..=12 {
            rebuilt.apply(&registered(position));
        }
        assert!(projection.adopt(rebuilt));
        assert_eq!(next_position(&mut rx).await, 11);
        assert_eq!(next_position(&mut rx).await, 12);
        projection.apply(&registered(13));
        assert_eq!(next_position(&mut rx).await, 13);
    }
}
