//! A node's compliance alerts: the evaluator beside the compliance read model, and NATS as
//! where alerts go besides `WatchAlerts` (see `keyplan_compliance_service::alerts` for what
//! an alert is and when it is raised, `keyplan_fanout::alerts` for its subject and stream).

use std::sync::Arc;

use keyplan_compliance_service::alerts::{
    Alert, AlertError, AlertEvaluator, AlertHub, AlertPublisher, AlertRecord, TREE,
};
use keyplan_compliance_service::ComplianceProjection;
use keyplan_fanout::alerts::{AlertMessage, AlertStream};
use keyplan_projection::{EventSource, ProjectionHandle, ReadModelDb};
use prost::Message as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::server::NodeError;

/// Publishes alerts into the node's JetStream alerts stream.
#[derive(Debug)]
pub struct NatsAlerts(pub AlertStream);

#[tonic::async_trait]
impl AlertPublisher for NatsAlerts {
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError> {
        let id = alert.id();
        let payload = alert.to_wire().encode_to_vec();
        self.0
            .publish(AlertMessage {
                id: &id,
                kind: alert.kind.token(),
                tenant: &alert.tenant,
                account: &alert.account,
                payload: &payload,
            })
            .await
            .map_err(|e| AlertError::Publisher(e.to_string()))
    }

    async fn published(&self) -> Result<Vec<String>, AlertError> {
        self.0
            .published_ids()
            .await
            .map_err(|e| AlertError::Publisher(e.to_string()))
    }
}

/// Starts the alert evaluator of `compliance`; returns where its alerts arrive (for
/// `WatchAlerts`) and its task, which ends on `shutdown`.
pub fn start(
    db: &ReadModelDb,
    compliance: (&ComplianceProjection, &ProjectionHandle),
    source: EventSource,
    publisher: Option<AlertStream>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<(AlertHub, JoinHandle<()>), NodeError> {
    let record = AlertRecord::new(db.open_tree(TREE)?);
    let hub = AlertHub::default();
    let mut evaluator = AlertEvaluator::new(
        compliance.0.clone(),
        compliance.1.clone(),
        source,
        record,
        hub.clone(),
    )
    .with_observer(Arc::new(move |alert: &Alert| {
        metrics.record_alert(alert.kind.token())
    }));
    if let Some(stream) = publisher {
        evaluator = evaluator.with_publisher(Arc::new(NatsAlerts(stream)));
    }
    Ok((hub, tokio::spawn(evaluator.run(shutdown))))
}
