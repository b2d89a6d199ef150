//! Error reporting to Sentry, when `[sentry] dsn` is set (off by default).
//!
//! - What is sent: panics (the panic integration, wherever they happen) and
//!   every `ERROR`-level event — the API logs a 500's error chain at that
//!   level — with the warnings before it as breadcrumbs.
//! - Each request runs in its own Sentry scope tagged with `request_id` and
//!   `trace_id` ([`request_scope`]), so an event leads to the request's log
//!   lines and trace.
//! - Personal data is scrubbed before an event leaves: `send_default_pii` is
//!   off, and phone numbers and e-mail addresses are masked in the message,
//!   exception values, tags, extra data, contexts and breadcrumbs, as in log
//!   lines.
//! - Delivery: a transport of our own on a background thread with the
//!   blocking HTTP client (rustls, like every client here), a bounded queue
//!   (events are dropped rather than piling up when Sentry is unreachable),
//!   flushed at shutdown.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret as _;
use sentry::protocol::{Breadcrumb, Event, Map, Value};
use sentry::{Envelope, Transport, TransportFactory, TransportOptions};
use serde::Deserialize;

use crate::mask::mask_pii;

/// Error reporting: `[sentry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentryConfig {
    /// The project's DSN; none (default): nothing is reported.
    pub dsn: Option<secrecy::SecretString>,
    /// The environment events are filed under (`production`, `staging`).
    pub environment: Option<String>,
    /// The share of error events sent, 0 to 1. Default 1.
    pub sample_rate: f32,
}

impl Default for SentryConfig {
    fn default() -> Self {
        Self {
            dsn: None,
            environment: None,
            sample_rate: 1.0,
        }
    }
}

/// Starts the Sentry client when a DSN is configured.
///
/// # Errors
/// When the DSN does not parse.
pub fn init(config: &SentryConfig) -> Result<Option<sentry::ClientInitGuard>, String> {
    let Some(dsn) = &config.dsn else {
        return Ok(None);
    };
    let dsn: sentry::types::Dsn = dsn
        .expose_secret()
        .parse()
        .map_err(|err| format!("sentry.dsn does not parse: {err}"))?;
    let rate = if config.sample_rate.is_finite() {
        config.sample_rate.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let mut options = sentry::ClientOptions::default().sample_rate(rate);
    options.dsn = Some(dsn);
    options.environment = config.environment.clone().map(Into::into);
    options.release = sentry::release_name!();
    options.send_default_pii = false;
    options.before_send = Some(Arc::new(|mut event| {
        scrub(&mut event);
        Some(event)
    }));
    options.before_breadcrumb = Some(Arc::new(|mut breadcrumb| {
        scrub_breadcrumb(&mut breadcrumb);
        Some(breadcrumb)
    }));
    options.transport = Some(Arc::new(Factory));
    Ok(Some(sentry::init(options)))
}

/// Runs `future` in a Sentry scope of its own tagged with the request's id
/// and trace id (no cost when Sentry is off).
pub async fn request_scope<F: Future>(
    request_id: &str,
    trace_id: Option<&str>,
    future: F,
) -> F::Output {
    use sentry::SentryFutureExt as _;

    if sentry::Hub::current().client().is_none() {
        return future.await;
    }
    let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::current()));
    hub.configure_scope(|scope| {
        scope.set_tag("request_id", request_id);
        if let Some(trace_id) = trace_id {
            scope.set_tag("trace_id", trace_id);
        }
    });
    future.bind_hub(hub).await
}

fn mask_string(text: &mut String) {
    if let std::borrow::Cow::Owned(masked) = mask_pii(text) {
        *text = masked;
    }
}

fn mask_json(value: &mut Value) {
    match value {
        Value::String(text) => mask_string(text),
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::Object(map) => map.values_mut().for_each(mask_json),
        _ => {}
    }
}

fn mask_map(map: &mut Map<String, Value>) {
    map.values_mut().for_each(mask_json);
}

/// Masks phone numbers and e-mail addresses everywhere an event carries
/// text.
pub fn scrub(event: &mut Event<'static>) {
    if let Some(message) = &mut event.message {
        mask_string(message);
    }
    if let Some(logentry) = &mut event.logentry {
        mask_string(&mut logentry.message);
        logentry.params.iter_mut().for_each(mask_json);
    }
    for exception in event.exception.values.iter_mut() {
        if let Some(value) = &mut exception.value {
            mask_string(value);
        }
    }
    for value in event.tags.values_mut() {
        mask_string(value);
    }
    mask_map(&mut event.extra);
    for context in event.contexts.values_mut() {
        if let sentry::protocol::Context::Other(map) = context {
            mask_map(map);
        }
    }
    for breadcrumb in event.breadcrumbs.values.iter_mut() {
        scrub_breadcrumb(breadcrumb);
    }
    event.user = None;
    event.request = None;
}

fn scrub_breadcrumb(breadcrumb: &mut Breadcrumb) {
    if let Some(message) = &mut breadcrumb.message {
        mask_string(message);
    }
    mask_map(&mut breadcrumb.data);
}

/// Makes [`BackgroundTransport`]s.
struct Factory;

impl TransportFactory for Factory {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        Arc::new(BackgroundTransport::start(&options))
    }
}

/// Envelopes queued and not yet sent.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    idle: Condvar,
}

impl Pending {
    fn add(&self) {
        if let Ok(mut count) = self.count.lock() {
            *count += 1;
        }
    }

    fn done(&self) {
        if let Ok(mut count) = self.count.lock() {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.idle.notify_all();
            }
        }
    }

    /// `true` when everything went out within `timeout`.
    fn wait(&self, timeout: Duration) -> bool {
        let Ok(count) = self.count.lock() else {
            return false;
        };
        self.idle
            .wait_timeout_while(count, timeout, |count| *count > 0)
            .is_ok_and(|(_, waited)| !waited.timed_out())
    }
}

/// Sends envelopes from a thread of its own.
struct BackgroundTransport {
    queue: Option<SyncSender<Envelope>>,
    pending: Arc<Pending>,
}

/// How many events may wait to be sent.
const QUEUE: usize = 64;

impl BackgroundTransport {
    fn start(options: &TransportOptions) -> Self {
        let url = options.dsn.envelope_api_url().to_string();
        let auth = options.dsn.to_auth(Some(&options.user_agent)).to_string();
        let pending = Arc::new(Pending::default());
        let (queue, envelopes) = sync_channel::<Envelope>(QUEUE);
        let worker = pending.clone();
        let started = std::thread::Builder::new()
            .name("sentry-transport".to_owned())
            .spawn(move || deliver(&url, &auth, &envelopes, &worker));
        Self {
            queue: started.is_ok().then_some(queue),
            pending,
        }
    }
}

fn deliver(url: &str, auth: &str, envelopes: &Receiver<Envelope>, pending: &Pending) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build();
    for envelope in envelopes {
        let mut body = Vec::new();
        if let (Ok(client), Ok(())) = (&client, envelope.to_writer(&mut body)) {
            // Failures are dropped: error reporting must not fail the app.
            let _ = client
                .post(url)
                .header("x-sentry-auth", auth)
                .header("content-type", "application/x-sentry-envelope")
                .body(body)
                .send();
        }
        pending.done();
    }
}

impl Transport for BackgroundTransport {
    fn send_envelope(&self, envelope: Envelope) {
        let Some(queue) = &self.queue else {
            return;
        };
        self.pending.add();
        match queue.try_send(envelope) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.pending.done(),
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.pending.wait(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.flush(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_scrubbed_of_numbers_and_addresses() {
        let mut event = Event {
            message: Some("calling +14155550123 for jane@example.com".into()),
            ..Event::default()
        };
        event.tags.insert("to".into(), "+442079460958".into());
        event
            .extra
            .insert("detail".into(), Value::from("sms to 14155550123"));
        event.exception.values.push(sentry::protocol::Exception {
            ty: "error".into(),
            value: Some("no route to +14155550123".into()),
            ..Default::default()
        });
        scrub(&mut event);
        let text = serde_json::to_string(&event).expect("json");
        assert!(!text.contains("14155550123"), "{text}");
        assert!(!text.contains("442079460958"), "{text}");
        assert!(!text.contains("jane@"), "{text}");
        assert!(text.contains("+1415***0123"), "{text}");
    }
}
