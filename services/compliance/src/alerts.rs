//! Alerts for notification services: a rule turning DUE_SOON, OVERDUE or NEVER_MET past its
//! due date, or a plan's review window ending without a review, raised once per transition.
//!
//! # What is a transition
//! Compliance is computed when asked, so there is no stored "status changed" to watch. An
//! alert is a *condition* that holds "as happened by now" together with the due date it is
//! about ([`Alert::id`]): `RULE_OVERDUE` for rule `r` due on `D` is one alert, however often
//! it is evaluated. A rule met again and then late again has a new due date, so a new alert.
//!
//! # When conditions are evaluated
//! - as events arrive: the projection queues each account an event changed, and the
//!   [`AlertEvaluator`] evaluates queued accounts on its next tick, once the projection has
//!   caught up with its source (a node replaying the log does not alert on a past it is still
//!   reading: a contact later in the log would make the alert false);
//! - as time passes: statuses change only when the UTC date does, so every account is
//!   evaluated at the first tick of each day, at start, and after a rebuild.
//!
//! # Once, across restarts and replicas
//! Every raised alert id is recorded in the read models' database (the `alerts` tree: id ->
//! when raised), and an id already recorded is not raised again. A node with NATS publishes
//! an alert (with `Nats-Msg-Id` = its id, into the alerts stream) before recording it, so a
//! crash in between publishes it again and JetStream drops the repeat within its duplicate
//! window; replicas evaluating the same transition also publish the same id, and JetStream
//! keeps one. A node that starts records every id already in the alerts stream first (see
//! [`AlertPublisher::published`]), so a new replica does not alert again what another did.
//!
//! Only current conditions alert: a review window is alerted while it is OVERDUE (its due
//! date passed, nothing held since, the next window still open), not once it is MISSED
//! (months later), so a first start on an old portfolio alerts what needs doing now, not every
//! window missed in the past.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyplan_domain::values::{Date, Timestamp};
use keyplan_projection::shared_state::lock;
use keyplan_projection::{EventSource, ProjectionError, ProjectionHandle, Tree};
use tokio::sync::{broadcast, watch};

use crate::history::AccountHistory;
use crate::model::{AsOf, ReviewStatus, RuleStatus};
use crate::projection::ComplianceProjection;

/// The read models' tree holding every raised alert's id.
pub const TREE: &str = "alerts";

/// What an alert says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// A rule's next contact is due within its due-soon window.
    RuleDueSoon,
    /// A rule's next contact was due before today.
    RuleOverdue,
    /// A rule never met has passed its first due date.
    RuleNeverMet,
    /// A plan's review window ended without a review.
    ReviewMissed,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 4] = [
        AlertKind::RuleDueSoon,
        AlertKind::RuleOverdue,
        AlertKind::RuleNeverMet,
        AlertKind::ReviewMissed,
    ];

    /// The kind in ids and NATS subjects: `rule_due_soon`, `rule_overdue`, `rule_never_met`,
    /// `review_missed`.
    pub fn token(self) -> &'static str {
        match self {
            AlertKind::RuleDueSoon => "rule_due_soon",
            AlertKind::RuleOverdue => "rule_overdue",
            AlertKind::RuleNeverMet => "rule_never_met",
            AlertKind::ReviewMissed => "review_missed",
        }
    }
}

/// What an alert is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertSubject {
    /// An engagement rule.
    Rule {
        /// The rule.
        rule_id: String,
        /// Its owner (person id).
        owner: String,
        /// The owner's name ("" if unknown).
        owner_name: String,
        /// The rule's target in words.
        target_description: String,
    },
    /// A plan's review window.
    Review {
        /// The plan.
        plan_id: String,
        /// The window's index k, from 1.
        window: u32,
    },
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// What happened.
    pub kind: AlertKind,
    /// The tenant.
    pub tenant: String,
    /// The account.
    pub account: String,
    /// The account's name ("" if unknown).
    pub account_name: String,
    /// The rule or the review window.
    pub subject: AlertSubject,
    /// The due date it is about.
    pub due_on: Date,
    /// Days from `due_on` to the day it was raised (0 if not past).
    pub days_overdue: u32,
    /// DUE_SOON: days from the day it was raised to `due_on`; else 0.
    pub days_until_due: u32,
    /// When it was raised.
    pub raised_at: Timestamp,
    /// The compliance read model's position when it was raised.
    pub position: u64,
}

impl Alert {
    /// The transition's identity (see the module docs):
    /// `<tenant>/<account>/rule/<rule id>/<kind>/<due on>` or
    /// `<tenant>/<account>/plan/<plan id>/<window>/<kind>/<due on>`. Ids never contain '/'.
    pub fn id(&self) -> String {
        let (tenant, account, kind, due) =
            (&self.tenant, &self.account, self.kind.token(), self.due_on);
        match &self.subject {
            AlertSubject::Rule { rule_id, .. } => {
                format!("{tenant}/{account}/rule/{rule_id}/{kind}/{due}")
            }
            AlertSubject::Review { plan_id, window } => {
                format!("{tenant}/{account}/plan/{plan_id}/{window}/{kind}/{due}")
            }
        }
    }
}

impl Alert {
    /// The alert as `WatchAlerts` sends it and NATS carries it (protobuf `ComplianceAlert`).
    pub fn to_wire(&self) -> keyplan_proto::pb::ComplianceAlert {
        crate::wire::alert(self)
    }
}

impl AccountHistory {
    /// The alert conditions that hold for the account as happened by `now` (raised at `now`,
    /// position 0: the evaluator sets it).
    pub(crate) fn alerts(&self, tenant: &str, account: &str, now: Timestamp) -> Vec<Alert> {
        let view = AsOf::happened_by(now);
        let alert = |kind, subject, due_on, days_overdue, days_until_due| Alert {
            kind,
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            account_name: self.name().to_owned(),
            subject,
            due_on,
            days_overdue,
            days_until_due,
            raised_at: now,
            position: 0,
        };
        let mut alerts = Vec::new();
        for e in self.evaluations(&view) {
            let kind = match e.status {
                RuleStatus::DueSoon => AlertKind::RuleDueSoon,
                RuleStatus::Overdue => AlertKind::RuleOverdue,
                RuleStatus::NeverMet if e.past_due() => AlertKind::RuleNeverMet,
                RuleStatus::NeverMet | RuleStatus::OnTrack => continue,
            };
            let owner = e.definition.owner.as_str();
            let subject = AlertSubject::Rule {
                rule_id: e.rule_id.to_owned(),
                owner: owner.to_owned(),
                owner_name: self.member_name(owner).to_owned(),
                target_description: self.describe_target(&e.definition.target),
            };
            let until = if kind == AlertKind::RuleDueSoon {
                e.days_until_due
            } else {
                0
            };
            alerts.push(alert(kind, subject, e.due_on, e.days_overdue, until));
        }
        for plan in self.plan_reviews(&view) {
            for window in plan
                .windows
                .iter()
                .filter(|w| w.status == ReviewStatus::Overdue)
            {
                let subject = AlertSubject::Review {
                    plan_id: plan.plan_id.clone(),
                    window: window.index,
                };
                alerts.push(alert(
                    AlertKind::ReviewMissed,
                    subject,
                    window.due_on,
                    window.days_overdue,
                    0,
                ));
            }
        }
        alerts
    }
}

/// Why alerts could not be evaluated, recorded or published.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The record of raised alerts could not be read or written.
    #[error("the record of raised alerts: {0}")]
    Record(#[from] ProjectionError),
    /// An account's history could not be read back.
    #[error("{0}")]
    Query(#[from] crate::QueryError),
    /// The publisher (NATS) failed: publishing an alert, or reading back the published ids.
    /// Its message names what it was doing and which alert.
    #[error("{0}")]
    Publisher(String),
}

/// Where alerts go besides the gRPC stream: NATS, on a node that has it.
#[tonic::async_trait]
pub trait AlertPublisher: Send + Sync + 'static {
    /// Publishes one alert and waits for it to be stored; an error is retried.
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError>;

    /// The ids of every alert already published (by this node or another), read at start so
    /// that none is raised again.
    async fn published(&self) -> Result<Vec<String>, AlertError>;
}

/// The ids of raised alerts (the `alerts` tree): read by id, never loaded whole, so memory
/// does not grow with alerts.
#[derive(Debug, Clone)]
pub struct AlertRecord {
    tree: Tree,
}

impl AlertRecord {
    /// The record kept in `tree`.
    pub fn new(tree: Tree) -> Self {
        Self { tree }
    }

    /// Whether `id` was raised.
    pub fn contains(&self, id: &str) -> Result<bool, AlertError> {
        Ok(self.tree.get(id)?.is_some())
    }

    /// Records `id` as raised at `at`.
    pub fn insert(&self, id: &str, at: Timestamp) -> Result<(), AlertError> {
        Ok(self.tree.insert(id, at.0.to_be_bytes())?)
    }
}

/// Most alerts buffered for a slow `WatchAlerts` caller before it lags (and its stream ends,
/// saying so).
const HUB_BUFFER: usize = 1024;

/// Raised alerts, to every `WatchAlerts` stream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlertHub {
    sender: broadcast::Sender<Arc<Alert>>,
}

impl Default for AlertHub {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(HUB_BUFFER).0,
        }
    }
}

impl AlertHub {
    /// Alerts raised from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.sender.subscribe()
    }

    fn send(&self, alert: Alert) {
        let _ = self.sender.send(Arc::new(alert)); // nobody watching: fine
    }
}

/// Accounts whose alerts need evaluating: those an event changed, or every account.
#[derive(Debug, Default)]
pub(crate) struct AlertQueue {
    inner: Mutex<Queued>,
}

#[derive(Debug, Default)]
struct Queued {
    accounts: BTreeSet<(String, String)>,
    everything: bool,
}

impl AlertQueue {
    /// An event changed the account.
    pub fn changed(&self, tenant: &str, account: &str) {
        let mut queued = lock(&self.inner);
        if !queued.everything
            && !queued
                .accounts
                .contains(&(tenant.to_owned(), account.to_owned()))
        {
            queued
                .accounts
                .insert((tenant.to_owned(), account.to_owned()));
        }
    }

    /// Every account needs evaluating (a rebuild replaced the histories).
    pub fn everything(&self) {
        let mut queued = lock(&self.inner);
        queued.everything = true;
        queued.accounts.clear();
    }

    /// What is queued; `None` for every account. Empties the queue.
    fn take(&self) -> Option<BTreeSet<(String, String)>> {
        let mut queued = lock(&self.inner);
        let everything = std::mem::take(&mut queued.everything);
        let accounts = std::mem::take(&mut queued.accounts);
        (!everything).then_some(accounts)
    }
}

/// The clock alerts are evaluated at (tests pass their own).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// How often the evaluator looks at queued accounts and the date.
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);

/// Evaluates alert conditions, raises each new one once: publishes it (if a publisher is
/// given), records it, and sends it to `WatchAlerts` streams.
pub struct AlertEvaluator {
    projection: ComplianceProjection,
    progress: ProjectionHandle,
    source: EventSource,
    record: AlertRecord,
    hub: AlertHub,
    publisher: Option<Arc<dyn AlertPublisher>>,
    observer: Option<Observer>,
    clock: Clock,
    tick: Duration,
}

/// Told of every alert raised (the node's metrics).
pub type Observer = Arc<dyn Fn(&Alert) + Send + Sync>;

impl std::fmt::Debug for AlertEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertEvaluator")
            .field("publisher", &self.publisher.is_some())
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl AlertEvaluator {
    /// An evaluator of `projection` (whose runner reports on `progress` and reads `source`),
    /// recording in `record` and sending to `hub`.
    pub fn new(
        projection: ComplianceProjection,
        progress: ProjectionHandle,
        source: EventSource,
        record: AlertRecord,
        hub: AlertHub,
    ) -> Self {
        Self {
            projection,
            progress,
            source,
            record,
            hub,
            publisher: None,
            observer: None,
            clock: system_clock(),
            tick: DEFAULT_TICK,
        }
    }

    /// Also publishes every alert with `publisher`, before recording it.
    pub fn with_publisher(mut self, publisher: Arc<dyn AlertPublisher>) -> Self {
        self.publisher = Some(publisher);
        self
    }

    /// Calls `observer` with every alert raised.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Evaluates at `clock`'s instants, every `tick`.
    pub fn with_clock(mut self, clock: Clock, tick: Duration) -> Self {
        self.clock = clock;
        self.tick = tick;
        self
    }

    /// Runs until `shutdown` turns true. Errors are logged and retried at the next tick: an
    /// account that could not be evaluated stays queued.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if let Some(publisher) = &self.publisher {
            // What other nodes (or this one, before a lost record) already raised.
            loop {
                match self.adopt_published(publisher.as_ref()).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "alerts: reading the published alerts failed; retrying")
                    }
                }
                if sleep_or_stop(&mut shutdown, self.tick.max(Duration::from_secs(1))).await {
                    return;
                }
            }
        }
        let mut evaluated_day: Option<Date> = None;
        loop {
            if sleep_or_stop(&mut shutdown, self.tick).await {
                return;
            }
            match self.source.head().await {
                Ok(head) if self.progress.position() >= head => {}
                Ok(_) => continue, // still catching up
                Err(e) => {
                    tracing::debug!(error = %e, "alerts: the source's head is unknown");
                    continue;
                }
            }
            let now = (self.clock)();
            let queued = self.projection.alert_queue().take();
            let accounts = match queued {
                Some(accounts) if evaluated_day == Some(now.date()) => accounts,
                _ => self.projection.account_keys().into_iter().collect(),
            };
            evaluated_day = Some(now.date());
            let mut accounts = accounts.into_iter();
            while let Some((tenant, account)) = accounts.next() {
                if *shutdown.borrow() {
                    return;
                }
                if let Err(e) = self.evaluate(&tenant, &account, now).await {
                    // Most likely NATS or the store, which the next accounts would wait on
                    // too: they all wait for the next tick.
                    tracing::error!(%tenant, %account, error = %e, "alerts: evaluating an account failed; retrying at the next tick");
                    let queue = self.projection.alert_queue();
                    queue.changed(&tenant, &account);
                    for (tenant, account) in accounts {
                        queue.changed(&tenant, &account);
                    }
                    break;
                }
            }
        }
    }

    async fn adopt_published(&self, publisher: &dyn AlertPublisher) -> Result<(), AlertError> {
        let now = (self.clock)();
        for id in publisher.published().await? {
            if !self.record.contains(&id)? {
                self.record.insert(&id, now)?;
            }
        }
        Ok(())
    }

    /// Raises the account's new alerts.
    async fn evaluate(
        &self,
        tenant: &str,
        account: &str,
        now: Timestamp,
    ) -> Result<(), AlertError> {
        let position = self.progress.position();
        for mut alert in self.projection.alerts(tenant, account, now)? {
            let id = alert.id();
            if self.record.contains(&id)? {
                continue;
            }
            alert.position = position;
            if let Some(publisher) = &self.publisher {
                publisher.publish(&alert).await?;
            }
            self.record.insert(&id, now)?;
            tracing::info!(alert = %id, "alert raised");
            if let Some(observer) = &self.observer {
                observer(&alert);
            }
            self.hub.send(alert);
        }
        Ok(())
    }
}

/// Sleeps `duration`; `true` if `shutdown` turned true meanwhile (or its sender is gone).
async fn sleep_or_stop(shutdown: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => *shutdown.borrow(),
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
    }
}
