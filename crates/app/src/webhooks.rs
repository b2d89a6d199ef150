//! Provider webhooks after verification: idempotent intake, then processing.
//!
//! Intake is durable before it is acknowledged: an event is recorded in the
//! [`WebhookInbox`] by its provider event id (a redelivery is a duplicate and
//! does nothing), then processed inline — applied to its call through the
//! state machine. When processing fails (the database hiccups), the event
//! stays in the inbox and the background worker ([`WebhookService::process_due`])
//! retries it, on whichever instance, after a restart too. A Redis-backed
//! [`EventDedupe`], when present, answers redeliveries without touching the
//! database; an event is marked there only once the inbox holds it.
//!
//! Settling (marking an event processed) may be batched by an
//! [`InboxSettler`]: the acknowledgement does not wait for it, and one write
//! settles every event processed meanwhile. An event whose settling is lost
//! (the instance dies first) is still pending; the worker finds it already in
//! its call's history and only settles it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use iace_domain::InboxEventId;
use iace_domain::billing::BillingEvent;
use iace_domain::ports::{
    Clock, EventDedupe, InboxOutcome, InboxStatus, NewInboxEvent, TelephonyEvent, WebhookInbox,
};
use tokio::sync::mpsc;

use crate::billing::{BillingOutcome, BillingService};
use crate::calls::{CallService, Disposition};
use crate::error::AppError;
use crate::postcall::{CallEnded, INTERNAL_PROVIDER, PostCallService};

/// A verified event from a provider.
#[derive(Debug, Clone, Copy)]
pub enum ProviderEvent<'a> {
    /// From the telephony provider.
    Telephony(&'a TelephonyEvent),
    /// From the payment provider.
    Billing(&'a BillingEvent),
}

impl ProviderEvent<'_> {
    fn id(&self) -> &str {
        match self {
            Self::Telephony(e) => &e.id,
            Self::Billing(e) => &e.id,
        }
    }

    fn event_type(&self) -> &str {
        match self {
            Self::Telephony(e) => &e.event_type,
            Self::Billing(e) => &e.event_type,
        }
    }

    fn occurred_at(&self) -> chrono::DateTime<chrono::Utc> {
        match self {
            Self::Telephony(e) => e.occurred_at,
            Self::Billing(e) => e.occurred_at,
        }
    }

    fn payload(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Self::Telephony(e) => serde_json::to_value(e),
            Self::Billing(e) => serde_json::to_value(e),
        }
    }
}

/// Providers whose stored payloads are billing events (the others'
/// are telephony events).
const BILLING_PROVIDERS: [&str; 1] = ["stripe"];

/// A payload read back from the inbox.
enum StoredEvent {
    Telephony(TelephonyEvent),
    Billing(BillingEvent),
    CallEnded(CallEnded),
}

/// Intake and retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookConfig {
    /// How long the fast-path dedupe remembers an event id.
    pub dedupe_ttl: Duration,
    /// An event not processed inline within this is the worker's.
    pub process_within: Duration,
    /// After a failed processing, the next attempt waits this long.
    pub retry_after: Duration,
    /// A claimed event is hidden from other workers for this long.
    pub lease: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            dedupe_ttl: Duration::from_secs(24 * 3600),
            process_within: Duration::from_secs(30),
            retry_after: Duration::from_secs(10),
            lease: Duration::from_secs(60),
        }
    }
}

/// What intake did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// First delivery, processed now.
    Processed,
    /// First delivery of an event that concerns nothing we act on (an
    /// unknown call); recorded and ignored.
    Ignored,
    /// A redelivery: nothing done.
    Duplicate,
    /// Recorded, but processing failed; the worker retries it.
    Deferred,
}

impl Receipt {
    /// The stable snake_case name (the webhook response's `status`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Ignored => "ignored",
            Self::Duplicate => "duplicate",
            Self::Deferred => "deferred",
        }
    }
}

/// An event processed and waiting to be marked so in the inbox.
type Settled = (InboxEventId, InboxStatus);

/// Webhook intake and processing.
#[derive(Clone)]
pub struct WebhookService {
    inbox: Arc<dyn WebhookInbox>,
    dedupe: Option<Arc<dyn EventDedupe>>,
    calls: Arc<CallService>,
    billing: Option<Arc<BillingService>>,
    post_call: Option<Arc<PostCallService>>,
    clock: Arc<dyn Clock>,
    config: WebhookConfig,
    settler: Option<mpsc::Sender<Settled>>,
}

/// Marks processed events in the inbox in batches, off the webhook's
/// response path: whatever arrived while the last write ran goes in the next
/// one. Run it with [`InboxSettler::run`]; built by
/// [`WebhookService::with_batched_settling`].
pub struct InboxSettler {
    inbox: Arc<dyn WebhookInbox>,
    clock: Arc<dyn Clock>,
    queue: mpsc::Receiver<Settled>,
}

impl std::fmt::Debug for InboxSettler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxSettler").finish_non_exhaustive()
    }
}

impl InboxSettler {
    /// The most events one write settles.
    const BATCH: usize = 256;

    /// Settles queued events until `stop` resolves, then refuses new ones
    /// (they are settled inline again) and settles what is queued.
    pub async fn run(mut self, stop: impl Future<Output = ()> + Send) {
        let mut batch = Vec::with_capacity(Self::BATCH);
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                received = self.queue.recv_many(&mut batch, Self::BATCH) => {
                    if received == 0 {
                        return;
                    }
                    self.settle(&mut batch).await;
                }
                () = &mut stop => break,
            }
        }
        self.queue.close();
        while self.queue.recv_many(&mut batch, Self::BATCH).await > 0 {
            self.settle(&mut batch).await;
        }
    }

    async fn settle(&self, batch: &mut Vec<Settled>) {
        let now = self.clock.now();
        for status in [InboxStatus::Processed, InboxStatus::Ignored] {
            let ids: Vec<InboxEventId> = batch
                .iter()
                .filter(|(_, s)| *s == status)
                .map(|(id, _)| *id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            if let Err(err) = self.inbox.complete_many(&ids, status, now).await {
                // Left pending: the worker settles them later (each is
                // already in its call's history, so nothing is applied twice).
                tracing::warn!(error = %err, events = ids.len(), "could not settle webhook events");
            }
        }
        batch.clear();
    }
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn after(at: chrono::DateTime<chrono::Utc>, wait: Duration) -> chrono::DateTime<chrono::Utc> {
    at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

impl WebhookService {
    /// Builds the service.
    pub fn new(
        inbox: Arc<dyn WebhookInbox>,
        calls: Arc<CallService>,
        clock: Arc<dyn Clock>,
        config: WebhookConfig,
    ) -> Self {
        Self {
            inbox,
            dedupe: None,
            calls,
            billing: None,
            post_call: None,
            clock,
            config,
            settler: None,
        }
    }

    /// Settles processed events in batches through the returned
    /// [`InboxSettler`], which the caller runs (and stops on shutdown). When
    /// its queue of `capacity` is full or it has stopped, events are settled
    /// inline as without it.
    #[must_use]
    pub fn with_batched_settling(mut self, capacity: usize) -> (Self, InboxSettler) {
        let (queue_tx, queue) = mpsc::channel(capacity.max(1));
        self.settler = Some(queue_tx);
        let settler = InboxSettler {
            inbox: self.inbox.clone(),
            clock: self.clock.clone(),
            queue,
        };
        (self, settler)
    }

    /// Processes billing events with `billing`.
    #[must_use]
    pub fn with_billing(mut self, billing: Arc<BillingService>) -> Self {
        self.billing = Some(billing);
        self
    }

    /// Does the work after live calls ([`crate::postcall`]) recorded in the
    /// inbox.
    #[must_use]
    pub fn with_post_call(mut self, post_call: Arc<PostCallService>) -> Self {
        self.post_call = Some(post_call);
        self
    }

    /// Answers redeliveries from `dedupe` (Redis, shared by instances) before
    /// the database is asked.
    #[must_use]
    pub fn with_dedupe(mut self, dedupe: Arc<dyn EventDedupe>) -> Self {
        self.dedupe = Some(dedupe);
        self
    }

    /// Takes a verified event from `provider` (`telnyx`, `stripe`): records
    /// it, then processes it.
    ///
    /// # Errors
    /// Store errors while recording: the event is not held, so the webhook
    /// must not be acknowledged (the provider retries). Processing errors are
    /// not returned: the event is held and retried ([`Receipt::Deferred`]).
    pub async fn receive(
        &self,
        provider: &'static str,
        event: ProviderEvent<'_>,
    ) -> Result<Receipt, AppError> {
        if let Some(dedupe) = &self.dedupe {
            match dedupe.seen(provider, event.id()).await {
                Ok(true) => return Ok(Receipt::Duplicate),
                Ok(false) => {}
                Err(err) => tracing::debug!(error = %err, "dedupe unavailable; using the inbox"),
            }
        }
        let now = self.clock.now();
        let payload = event.payload().map_err(|err| AppError::Internal {
            source: Box::new(err),
        })?;
        let recorded = self
            .inbox
            .record(
                &NewInboxEvent {
                    provider: provider.to_owned(),
                    provider_event_id: event.id().to_owned(),
                    event_type: event.event_type().to_owned(),
                    payload,
                    occurred_at: Some(event.occurred_at()),
                    received_at: now,
                },
                after(now, self.config.process_within),
            )
            .await?;
        let id = match recorded {
            InboxOutcome::Duplicate { .. } => return Ok(Receipt::Duplicate),
            InboxOutcome::New { id } => id,
        };
        if let Some(dedupe) = &self.dedupe
            && let Err(err) = dedupe
                .first_seen(provider, event.id(), self.config.dedupe_ttl)
                .await
        {
            tracing::debug!(error = %err, "could not mark the event in the dedupe");
        }
        Ok(self.process(id, event).await)
    }

    /// [`receive`](Self::receive) for a telephony event.
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub async fn receive_telephony(
        &self,
        provider: &'static str,
        event: &TelephonyEvent,
    ) -> Result<Receipt, AppError> {
        self.receive(provider, ProviderEvent::Telephony(event))
            .await
    }

    /// Applies one event; `Ok(true)` when it concerned something we act on.
    async fn apply(&self, event: ProviderEvent<'_>) -> Result<bool, AppError> {
        match event {
            ProviderEvent::Telephony(event) => Ok(!matches!(
                self.calls.on_telephony_event(event).await?,
                Disposition::UnknownCall
            )),
            ProviderEvent::Billing(event) => match &self.billing {
                Some(billing) => Ok(matches!(
                    billing.on_billing_event(event).await?,
                    BillingOutcome::Applied
                )),
                None => Ok(false),
            },
        }
    }

    /// Processes one recorded event and settles its inbox entry.
    async fn process(&self, id: InboxEventId, event: ProviderEvent<'_>) -> Receipt {
        match self.apply(event).await {
            Ok(acted) => {
                let (status, receipt) = if acted {
                    (InboxStatus::Processed, Receipt::Processed)
                } else {
                    (InboxStatus::Ignored, Receipt::Ignored)
                };
                self.settle(id, status).await;
                receipt
            }
            Err(err) => {
                tracing::warn!(
                    event_type = %event.event_type(),
                    error = %err,
                    "webhook processing failed; the worker will retry it"
                );
                let retry_at = after(self.clock.now(), self.config.retry_after);
                if let Err(err) = self.inbox.fail(id, &err.to_string(), retry_at).await {
                    tracing::warn!(error = %err, "could not record a failed webhook attempt");
                }
                Receipt::Deferred
            }
        }
    }

    /// The work after a live call; failures are retried like any event's.
    async fn after_call(&self, id: InboxEventId, ended: &CallEnded) {
        let Some(post_call) = &self.post_call else {
            self.settle(id, InboxStatus::Ignored).await;
            return;
        };
        match post_call.process(ended).await {
            Ok(result) => {
                tracing::info!(
                    call_id = %ended.call_id,
                    outcome = ?result.outcome,
                    patterns_counted = result.patterns_counted,
                    new_patterns = result.new_patterns,
                    memory = result.memory_stored,
                    "post-call work done"
                );
                self.settle(id, InboxStatus::Processed).await;
            }
            Err(AppError::NotFound { .. }) => self.settle(id, InboxStatus::Ignored).await,
            Err(err) => {
                tracing::warn!(call_id = %ended.call_id, error = %err, "post-call work failed; retried later");
                let retry_at = after(self.clock.now(), self.config.retry_after);
                if let Err(err) = self.inbox.fail(id, &err.to_string(), retry_at).await {
                    tracing::warn!(error = %err, "could not record a failed post-call attempt");
                }
            }
        }
    }

    /// Marks a processed event settled: through the batching settler when
    /// there is one with room, inline otherwise.
    async fn settle(&self, id: InboxEventId, status: InboxStatus) {
        if let Some(settler) = &self.settler
            && settler.try_send((id, status)).is_ok()
        {
            return;
        }
        if let Err(err) = self.inbox.complete(id, status, self.clock.now()).await {
            // Left pending: the worker processes it again, harmlessly
            // (every handler is idempotent).
            tracing::warn!(error = %err, "could not mark a webhook event processed");
        }
    }

    /// The background worker's step: claims up to `limit` due events (not
    /// processed inline in time, or failed and due for a retry) and
    /// processes them. Returns how many it claimed.
    ///
    /// # Errors
    /// Store errors while claiming.
    pub async fn process_due(&self, limit: u32) -> Result<usize, AppError> {
        let now = self.clock.now();
        let due = self
            .inbox
            .claim_due(now, after(now, self.config.lease), limit)
            .await?;
        let claimed = due.len();
        for entry in due {
            let id = entry.id;
            let provider = entry.event.provider.as_str();
            let payload = entry.event.payload;
            let read = if BILLING_PROVIDERS.contains(&provider) {
                serde_json::from_value::<BillingEvent>(payload).map(StoredEvent::Billing)
            } else if provider == INTERNAL_PROVIDER {
                serde_json::from_value::<CallEnded>(payload).map(StoredEvent::CallEnded)
            } else {
                serde_json::from_value::<TelephonyEvent>(payload).map(StoredEvent::Telephony)
            };
            match read {
                Ok(StoredEvent::Telephony(event)) => {
                    // Another attempt may have applied it and died before
                    // settling it: do not repeat its notices and commands.
                    match self.calls.already_recorded(&event).await {
                        Ok(true) => {
                            if let Err(err) = self
                                .inbox
                                .complete(id, InboxStatus::Processed, self.clock.now())
                                .await
                            {
                                tracing::warn!(error = %err, "could not settle a webhook event");
                            }
                        }
                        _ => {
                            self.process(id, ProviderEvent::Telephony(&event)).await;
                        }
                    }
                }
                Ok(StoredEvent::Billing(event)) => {
                    self.process(id, ProviderEvent::Billing(&event)).await;
                }
                Ok(StoredEvent::CallEnded(ended)) => self.after_call(id, &ended).await,
                Err(err) => {
                    tracing::error!(error = %err, "an inbox event could not be read back; ignored");
                    if let Err(err) = self
                        .inbox
                        .complete(id, InboxStatus::Ignored, self.clock.now())
                        .await
                    {
                        tracing::warn!(error = %err, "could not settle an unreadable event");
                    }
                }
            }
        }
        Ok(claimed)
    }
}
