//! Alerts on NATS: their subjects, their JetStream stream, publishing one, and reading back the
//! ids of those published.
//!
//! Alerts are not events: they are derived from the read models and the clock, and must stay
//! out of the event stream, whose sequence is Keyplan's global position. The event stream
//! takes every subject under `<prefix>.`, so alerts use their own first token,
//! `<prefix>-alerts`: subject `<prefix>-alerts.<tenant>.<kind>` (e.g.
//! `keyplan-alerts.acme.rule_overdue`), in their own stream `<stream>_ALERTS`. A notification
//! service subscribes to `keyplan-alerts.acme.>` (one tenant) or `keyplan-alerts.*.rule_overdue`
//! (one kind), or reads the stream with a durable consumer to miss none while it is down.
//!
//! Each message carries `Nats-Msg-Id` = the alert's id, so JetStream keeps one message per
//! alert however many nodes raise it within [`DUPLICATE_WINDOW`], and the signature header when
//! the node has a signing key (the same key and scheme as events, [`crate::signing`]).

use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use futures::StreamExt;

use crate::config::StreamSettings;
use crate::{signing, FanoutError};

/// Header: the alert's kind (`rule_overdue`, ...).
pub const KIND: &str = "Keyplan-Alert-Kind";
/// Header: the tenant.
pub const TENANT: &str = "Keyplan-Tenant";
/// Header: the account.
pub const ACCOUNT: &str = "Keyplan-Account";

/// How long the alerts stream keeps an alert: what a node reads back at start, so an alert
/// older than this may be raised again if its condition still holds (a reminder after a year).
pub const MAX_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

/// Window within which JetStream drops a second message with the same alert id: covers nodes
/// that evaluate the same transition at different ticks, and a node that crashed between
/// publishing and recording an alert.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Longest wait for the next message while reading the published ids back.
const READ_BACK_WAIT: Duration = Duration::from_secs(5);

/// The first subject token of alerts for events under `prefix`.
pub fn alert_prefix(prefix: &str) -> String {
    format!("{prefix}-alerts")
}

/// The subject of an alert of `kind` for `tenant`.
pub fn alert_subject(prefix: &str, tenant: &str, kind: &str) -> String {
    format!("{}.{tenant}.{kind}", alert_prefix(prefix))
}

/// The alerts stream's name beside the event stream `settings.name`.
pub fn alert_stream_name(settings: &StreamSettings) -> String {
    format!("{}_ALERTS", settings.name)
}

/// The alerts stream's configuration.
pub fn alert_stream_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: alert_stream_name(settings),
        subjects: vec![format!("{}.>", alert_prefix(&settings.subject_prefix))],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        max_age: MAX_AGE,
        num_replicas: settings.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        discard: stream::DiscardPolicy::Old,
        description: Some("Keyplan compliance alerts, one message per alert id".into()),
        ..Default::default()
    }
}

/// One alert to publish.
#[derive(Debug, Clone, Copy)]
pub struct AlertMessage<'a> {
    /// The alert's id (`Nats-Msg-Id`).
    pub id: &'a str,
    /// Its kind's token.
    pub kind: &'a str,
    /// The tenant.
    pub tenant: &'a str,
    /// The account.
    pub account: &'a str,
    /// The payload (protobuf `keyplan.v1.ComplianceAlert`).
    pub payload: &'a [u8],
}

/// The alerts stream of one node.
#[derive(Debug, Clone)]
pub struct AlertStream {
    js: jetstream::Context,
    settings: StreamSettings,
}

impl AlertStream {
    /// The alerts stream of the event stream `settings` describes. Nothing is asked of NATS
    /// yet: a node starts while NATS is down, and the stream is created when first read
    /// ([`Self::published_ids`], which the evaluator retries until it succeeds).
    pub fn new(js: jetstream::Context, settings: StreamSettings) -> Self {
        Self { js, settings }
    }

    /// Creates the alerts stream if there is none (an existing one is kept as it is: its
    /// limits are not Keyplan's source of truth).
    async fn ensure(&self) -> Result<stream::Stream, FanoutError> {
        let wanted = alert_stream_config(&self.settings);
        let name = wanted.name.clone();
        if let Ok(existing) = self.js.get_stream(&name).await {
            return Ok(existing);
        }
        self.js
            .create_stream(wanted)
            .await
            .map_err(|e| FanoutError::JetStream(format!("creating the alerts stream {name}: {e}")))
    }

    /// Publishes one alert and waits for JetStream to store it (or to report it a duplicate).
    pub async fn publish(&self, alert: AlertMessage<'_>) -> Result<(), FanoutError> {
        let subject = alert_subject(&self.settings.subject_prefix, alert.tenant, alert.kind);
        let mut message = PublishMessage::build()
            .payload(alert.payload.to_vec().into())
            .message_id(alert.id)
            .header(KIND, alert.kind)
            .header(TENANT, alert.tenant)
            .header(ACCOUNT, alert.account);
        if let Some(key) = &self.settings.signing_key {
            message = message.header(
                signing::SIGNATURE,
                key.sign(&subject, alert.payload).as_str(),
            );
        }
        let failed = |e: &dyn std::fmt::Display| {
            FanoutError::JetStream(format!("publishing alert {}: {e}", alert.id))
        };
        self.js
            .send_publish(subject, message)
            .await
            .map_err(|e| failed(&e))?
            .await
            .map_err(|e| failed(&e))?;
        Ok(())
    }

    /// The id (`Nats-Msg-Id`) of every alert the stream holds, oldest first.
    pub async fn published_ids(&self) -> Result<Vec<String>, FanoutError> {
        let name = alert_stream_name(&self.settings);
        let failed = |e: &dyn std::fmt::Display| {
            FanoutError::JetStream(format!("reading the alerts stream {name}: {e}"))
        };
        let mut stream = self.ensure().await?;
        let state = stream.info().await.map_err(|e| failed(&e))?.state.clone();
        let (last, held) = (state.last_sequence, state.messages);
        let mut ids = Vec::new();
        if held == 0 {
            return Ok(ids);
        }
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                headers_only: true,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
        let mut reached = 0;
        // Bounded: were the newest messages to age out after `info` (400 days without an
        // alert), the one at `last` would never come.
        while let Ok(Some(message)) = tokio::time::timeout(READ_BACK_WAIT, messages.next()).await {
            let message = message.map_err(|e| failed(&e))?;
            let sequence = message.info().map_err(|e| failed(&e))?.stream_sequence;
            reached = sequence;
            if let Some(id) = message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            {
                ids.push(id.as_str().to_owned());
            }
            if sequence >= last {
                break;
            }
        }
        if reached < last {
            // Not the whole list: alerts missing from it would be published again. The
            // consumer went silent, or the newest alerts aged out; asked again, the stream
            // says which (a new consumer, or a new `last`).
            return Err(failed(&format!(
                "read up to sequence {reached} of {last} within {} s",
                READ_BACK_WAIT.as_secs()
            )));
        }
        Ok(ids)
    }
}
