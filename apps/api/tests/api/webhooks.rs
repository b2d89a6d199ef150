//! Telnyx webhooks end to end: realistic, signed event sequences for placed
//! calls (answered and hung up, no answer, busy, voicemail), duplicates,
//! reversed order, concurrent delivery to two instances, and everything a
//! forger or a broken sender can do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

/// A fake Telnyx (Call Control) and the key webhooks are signed with.
pub(crate) struct Telnyx {
    pub(crate) server: MockServer,
    pub(crate) key: SigningKey,
}

impl Telnyx {
    pub(crate) async fn start() -> Self {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/calls"))
            .respond_with(|_: &wiremock::Request| {
                ResponseTemplate::new(200).set_body_json(json!({"data": {
                    "call_control_id": format!("v3:{}", uuid::Uuid::new_v4().simple()),
                    "call_leg_id": uuid::Uuid::new_v4().to_string(),
                    "call_session_id": uuid::Uuid::new_v4().to_string(),
                    "is_alive": false, "record_type": "call"
                }}))
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/calls/[^/]+/actions/[a-z_]+$"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"data": {"result": "ok"}})),
            )
            .mount(&server)
            .await;
        Self {
            server,
            key: SigningKey::from_bytes(&[42u8; 32]),
        }
    }

    pub(crate) fn configure(&self, config: &mut iace_api::config::Config) {
        config.telnyx = Some(iace_telnyx::TelnyxConfig {
            api_key: secrecy::SecretString::from("KEY_test"),
            connection_id: "conn-1".into(),
            base_url: self.server.uri(),
            public_key: Some(STANDARD.encode(self.key.verifying_key().as_bytes())),
            commands: iace_http::HttpPolicy {
                attempts: 1,
                ..iace_http::HttpPolicy::telephony()
            },
            ..iace_telnyx::TelnyxConfig::default()
        });
    }

    /// Waits (up to 10 s) until `n` `action` commands arrived; returns the
    /// count seen (commands are sent after the webhook is answered).
    pub(crate) async fn wait_for(&self, action: &str, n: usize) -> usize {
        for _ in 0..200 {
            if self.commands(action).await >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.commands(action).await
    }

    async fn commands(&self, action: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().ends_with(&format!("/actions/{action}")))
            .count()
    }
}

/// A Telnyx event envelope about `call` (our id, as client_state).
pub(crate) fn event(event_type: &str, call: &Placed, payload: Value) -> Value {
    let mut payload = payload;
    payload["call_control_id"] = json!(call.provider_call_id);
    payload["client_state"] = json!(STANDARD.encode(&call.id));
    payload["connection_id"] = json!("conn-1");
    json!({
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": uuid::Uuid::new_v4().to_string(),
            "occurred_at": chrono::Utc::now().to_rfc3339(),
            "payload": payload
        },
        "meta": {"attempt": 1, "delivered_to": "https://iace.example.com/webhooks/telnyx"}
    })
}

/// Posts `body` signed at `timestamp` (now when `None`) to `base`.
pub(crate) async fn deliver_raw(
    client: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    body: &[u8],
    timestamp: Option<i64>,
) -> (StatusCode, Value) {
    let ts = timestamp
        .unwrap_or_else(|| chrono::Utc::now().timestamp())
        .to_string();
    let mut message = format!("{ts}|").into_bytes();
    message.extend_from_slice(body);
    let signature = STANDARD.encode(key.sign(&message).to_bytes());
    let response = client
        .post(format!("{base}/webhooks/telnyx"))
        .header("content-type", "application/json")
        .header("telnyx-signature-ed25519", signature)
        .header("telnyx-timestamp", ts)
        .body(body.to_vec())
        .send()
        .await
        .expect("send");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub(crate) async fn deliver(app: &TestApp, telnyx: &Telnyx, body: &Value) -> String {
    let bytes = serde_json::to_vec(body).expect("json");
    let (status, receipt) = deliver_raw(&app.client, &app.base, &telnyx.key, &bytes, None).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    receipt["status"].as_str().expect("status").to_owned()
}

pub(crate) struct Placed {
    pub(crate) id: String,
    pub(crate) provider_call_id: String,
}

async fn setup(backend: Backend) -> (TestApp, Telnyx, Org) {
    let telnyx = Telnyx::start().await;
    let app = TestApp::spawn_with(backend, |c| telnyx.configure(c)).await;
    let org = app.org("Acme").await;
    (app, telnyx, org)
}

pub(crate) async fn place(app: &TestApp, org: &Org) -> Placed {
    let (status, body) = app
        .post(
            "/v1/calls",
            &org.api_key,
            json!({"to": "+442079460958", "from": "+14155550100"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Placed {
        id: body["id"].as_str().expect("id").to_owned(),
        provider_call_id: body["provider_call_id"]
            .as_str()
            .expect("provider id")
            .to_owned(),
    }
}

pub(crate) async fn call(app: &TestApp, org: &Org, placed: &Placed) -> Value {
    let (status, body) = app
        .get(&format!("/v1/calls/{}", placed.id), &org.api_key)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn history(call: &Value) -> Vec<(String, String, String)> {
    call["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| {
            (
                h["event"]["type"].as_str().unwrap_or_default().to_owned(),
                h["result"].as_str().unwrap_or_default().to_owned(),
                h["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn entry(kind: &str, result: &str) -> (String, String, String) {
    (kind.to_owned(), result.to_owned(), "webhook".to_owned())
}

#[tokio::test]
async fn an_outbound_call_answered_then_hung_up_by_the_caller_completes() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let placed = place(&app, &org).await;
    let dial: Value = telnyx.server.received_requests().await.expect("requests")[0]
        .body_json()
        .expect("dial body");
    assert_eq!(dial["answering_machine_detection"], "detect");

    assert_eq!(
        deliver(&app, &telnyx, &event("call.initiated", &placed, json!({"direction": "outgoing", "state": "bridging", "from": "+14155550100", "to": "+442079460958"}))).await,
        "processed"
    );
    assert_eq!(call(&app, &org, &placed).await["status"], "ringing");
    deliver(
        &app,
        &telnyx,
        &event("call.answered", &placed, json!({"state": "answered"})),
    )
    .await;
    let answered = call(&app, &org, &placed).await;
    assert_eq!(answered["status"], "in_progress");
    assert!(answered["answered_at"].is_string());
    deliver(
        &app,
        &telnyx,
        &event("call.hangup", &placed, json!({"hangup_cause": "normal_clearing", "hangup_source": "caller", "sip_hangup_cause": "200"})),
    )
    .await;
    deliver(
        &app,
        &telnyx,
        &event(
            "call.recording.saved",
            &placed,
            json!({"recording_urls": {"mp3": "https://rec.example.com/1.mp3"}}),
        ),
    )
    .await;
    let ended = call(&app, &org, &placed).await;
    assert_eq!(ended["status"], "completed");
    assert!(ended["ended_at"].is_string());
    assert_eq!(ended["recording_url"], "https://rec.example.com/1.mp3");
    assert_eq!(
        history(&ended),
        vec![
            entry("ringing", "applied"),
            entry("answered", "applied"),
            entry("hung_up", "applied"),
            entry("noted", "noted"),
        ]
    );
}

#[tokio::test]
async fn unanswered_and_busy_calls_end_as_such() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    for (cause, status) in [
        ("no_answer", "no_answer"),
        ("timeout", "no_answer"),
        ("user_busy", "busy"),
        ("call_rejected", "busy"),
    ] {
        let placed = place(&app, &org).await;
        deliver(
            &app,
            &telnyx,
            &event("call.initiated", &placed, json!({"direction": "outgoing"})),
        )
        .await;
        deliver(
            &app,
            &telnyx,
            &event(
                "call.hangup",
                &placed,
                json!({"hangup_cause": cause, "hangup_source": "callee"}),
            ),
        )
        .await;
        assert_eq!(call(&app, &org, &placed).await["status"], status, "{cause}");
    }
}

#[tokio::test]
async fn a_redelivered_event_is_acknowledged_and_changes_nothing() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let placed = place(&app, &org).await;
    let answered = event("call.answered", &placed, json!({}));
    assert_eq!(deliver(&app, &telnyx, &answered).await, "processed");
    assert_eq!(deliver(&app, &telnyx, &answered).await, "duplicate");
    assert_eq!(deliver(&app, &telnyx, &answered).await, "duplicate");
    let details = call(&app, &org, &placed).await;
    assert_eq!(details["status"], "in_progress");
    assert_eq!(history(&details), vec![entry("answered", "applied")]);
}

#[tokio::test]
async fn a_hang_up_before_the_answer_ends_the_call_and_the_late_answer_does_not_reopen_it() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let placed = place(&app, &org).await;
    let answered = event("call.answered", &placed, json!({}));
    deliver(
        &app,
        &telnyx,
        &event(
            "call.hangup",
            &placed,
            json!({"hangup_cause": "originator_cancel"}),
        ),
    )
    .await;
    assert_eq!(deliver(&app, &telnyx, &answered).await, "processed");
    deliver(
        &app,
        &telnyx,
        &event("call.initiated", &placed, json!({"direction": "outgoing"})),
    )
    .await;
    let details = call(&app, &org, &placed).await;
    assert_eq!(details["status"], "canceled");
    assert_eq!(
        history(&details),
        vec![
            entry("hung_up", "applied"),
            entry("answered", "call_ended"),
            entry("ringing", "stale"),
        ]
    );
}

#[tokio::test]
async fn a_machine_answering_is_hung_up_and_noted() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let placed = place(&app, &org).await;
    deliver(&app, &telnyx, &event("call.answered", &placed, json!({}))).await;
    assert_eq!(telnyx.commands("hangup").await, 0);
    deliver(
        &app,
        &telnyx,
        &event(
            "call.machine.detection.ended",
            &placed,
            json!({"result": "machine"}),
        ),
    )
    .await;
    assert_eq!(
        telnyx.wait_for("hangup", 1).await,
        1,
        "the configured voicemail action"
    );
    deliver(
        &app,
        &telnyx,
        &event(
            "call.hangup",
            &placed,
            json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}),
        ),
    )
    .await;
    let details = call(&app, &org, &placed).await;
    assert_eq!(details["status"], "completed");
    let notices: Vec<Value> = details["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["event"]["type"] == "noted")
        .map(|h| h["event"]["notice"].clone())
        .collect();
    assert_eq!(notices, vec![json!("machine_detected")]);
}

#[tokio::test]
async fn a_machine_can_be_left_a_message() {
    let telnyx = Telnyx::start().await;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        telnyx.configure(c);
        c.calls.voicemail_message = Some("Hi, this is Acme. Please call us back.".into());
    })
    .await;
    let org = app.org("Acme").await;
    let placed = place(&app, &org).await;
    let dial: Value = telnyx.server.received_requests().await.expect("requests")[0]
        .body_json()
        .expect("dial body");
    assert_eq!(dial["answering_machine_detection"], "greeting_end");
    deliver(&app, &telnyx, &event("call.answered", &placed, json!({}))).await;
    deliver(
        &app,
        &telnyx,
        &event(
            "call.machine.detection.ended",
            &placed,
            json!({"result": "machine"}),
        ),
    )
    .await;
    assert_eq!(telnyx.commands("hangup").await, 0, "wait for the greeting");
    deliver(
        &app,
        &telnyx,
        &event(
            "call.machine.greeting.ended",
            &placed,
            json!({"result": "beep_detected"}),
        ),
    )
    .await;
    assert_eq!(telnyx.wait_for("speak", 1).await, 1, "the message");
    deliver(
        &app,
        &telnyx,
        &event("call.speak.ended", &placed, json!({"status": "completed"})),
    )
    .await;
    assert_eq!(telnyx.wait_for("hangup", 1).await, 1, "then hang up");
}

#[tokio::test]
async fn other_events_are_recorded_and_unknown_calls_ignored() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let placed = place(&app, &org).await;
    deliver(&app, &telnyx, &event("call.answered", &placed, json!({}))).await;
    for (event_type, payload) in [
        ("call.dtmf.received", json!({"digit": "5"})),
        ("streaming.started", json!({"stream_url": "wss://x"})),
        (
            "streaming.failed",
            json!({"failure_reason": "connection refused"}),
        ),
        ("call.playback.ended", json!({"status": "completed"})),
        ("call.fork.started", json!({})),
    ] {
        assert_eq!(
            deliver(&app, &telnyx, &event(event_type, &placed, payload)).await,
            "processed"
        );
    }
    let details = call(&app, &org, &placed).await;
    assert_eq!(details["status"], "in_progress");
    let notices: Vec<Value> = details["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["event"]["type"] == "noted")
        .map(|h| h["event"]["notice"].clone())
        .collect();
    assert_eq!(
        notices,
        vec![
            json!("key_pressed"),
            json!("media_stream_started"),
            json!("media_stream_failed"),
            json!("playback_ended"),
            json!("unhandled")
        ]
    );
    let stranger = Placed {
        id: uuid::Uuid::now_v7().to_string(),
        provider_call_id: "v3:unknown".into(),
    };
    assert_eq!(
        deliver(&app, &telnyx, &event("call.answered", &stranger, json!({}))).await,
        "ignored"
    );
}

#[tokio::test]
async fn forged_stale_oversized_and_malformed_webhooks_are_refused() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let placed = place(&app, &org).await;
    let body = serde_json::to_vec(&event("call.answered", &placed, json!({}))).expect("json");

    // Signed by another key.
    let forger = SigningKey::from_bytes(&[7u8; 32]);
    let (status, problem) = deliver_raw(&app.client, &app.base, &forger, &body, None).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
    );
    // Stale, and from the future.
    for skew in [-301, 301] {
        let at = chrono::Utc::now().timestamp() + skew;
        let (status, problem) =
            deliver_raw(&app.client, &app.base, &telnyx.key, &body, Some(at)).await;
        assert_problem(
            status,
            &problem,
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
        );
    }
    // No signature at all.
    let response = app
        .client
        .post(format!("{}/webhooks/telnyx", app.base))
        .body(body.clone())
        .send()
        .await
        .expect("send");
    let status = response.status();
    let problem: Value = response.json().await.expect("problem");
    assert_problem(
        status,
        &problem,
        StatusCode::UNAUTHORIZED,
        "missing_signature",
    );
    // Oversized.
    let huge = vec![b' '; 70 * 1024];
    let (status, problem) = deliver_raw(&app.client, &app.base, &telnyx.key, &huge, None).await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // Signed, but not an event.
    let (status, problem) =
        deliver_raw(&app.client, &app.base, &telnyx.key, b"{not json", None).await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "malformed_event");
    // None of it touched the call.
    let details = call(&app, &org, &placed).await;
    assert_eq!(details["status"], "pending");
    assert!(history(&details).is_empty());
}

#[tokio::test]
async fn without_telnyx_configured_the_endpoint_says_so() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (status, problem, _) = app
        .call(
            reqwest::Method::POST,
            "/webhooks/telnyx",
            None,
            Some(json!({})),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::NOT_FOUND,
        "provider_not_configured",
    );
}

#[tokio::test]
async fn the_same_event_delivered_to_two_instances_at_once_is_applied_once() {
    let (first, telnyx, org) = setup(Backend::Postgres).await;
    let mut config = first.config.clone();
    config.server.bind = "127.0.0.1:0".parse().expect("addr");
    let second = iace_api::startup::Application::build(config)
        .await
        .expect("second instance");
    let second_base = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until(std::future::pending()));

    for round in 0..5 {
        let placed = place(&first, &org).await;
        let body = serde_json::to_vec(&event("call.answered", &placed, json!({}))).expect("json");
        let (a, b) = tokio::join!(
            deliver_raw(&first.client, &first.base, &telnyx.key, &body, None),
            deliver_raw(&first.client, &second_base, &telnyx.key, &body, None),
        );
        assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{a:?} {b:?}");
        let mut receipts = vec![a.1["status"].clone(), b.1["status"].clone()];
        receipts.sort_by_key(ToString::to_string);
        assert_eq!(
            receipts,
            vec![json!("duplicate"), json!("processed")],
            "round {round}"
        );
        let details = call(&first, &org, &placed).await;
        assert_eq!(
            history(&details),
            vec![entry("answered", "applied")],
            "round {round}"
        );
    }
}

#[tokio::test]
async fn processed_events_are_settled_in_the_inbox_by_the_time_the_instance_stops() {
    use iace_domain::ports::WebhookInbox;
    let (first, telnyx, org) = setup(Backend::Postgres).await;
    // A second instance that this test stops.
    let mut config = first.config.clone();
    config.server.bind = "127.0.0.1:0".parse().expect("addr");
    config.calls.worker_interval_ms = 3_600_000; // its worker stays out of it
    let second = iace_api::startup::Application::build(config)
        .await
        .expect("second instance");
    let base = format!("http://127.0.0.1:{}", second.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(second.run_until(async move {
        let _ = stopped.await;
    }));
    let mut delivered = 0;
    for _ in 0..4 {
        let placed = place(&first, &org).await;
        for (kind, payload) in [
            ("call.initiated", json!({"direction": "outgoing"})),
            ("call.answered", json!({})),
            (
                "call.hangup",
                json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}),
            ),
        ] {
            let body = serde_json::to_vec(&event(kind, &placed, payload)).expect("json");
            let (status, receipt) =
                deliver_raw(&first.client, &base, &telnyx.key, &body, None).await;
            assert_eq!(
                (status, receipt["status"].clone()),
                (StatusCode::OK, json!("processed"))
            );
            delivered += 1;
        }
        assert_eq!(call(&first, &org, &placed).await["status"], "completed");
    }
    assert_eq!(delivered, 12);
    let _ = stop.send(());
    server.await.expect("joined").expect("served");
    // Nothing is left open: a worker a day later finds nothing to claim.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let open = first
        .store()
        .await
        .claim_due(later, later + chrono::Duration::minutes(1), 100)
        .await
        .expect("claim");
    assert!(open.is_empty(), "{} events left open", open.len());
}

#[tokio::test]
async fn an_event_recorded_but_never_processed_is_picked_up_by_the_worker() {
    use iace_domain::ports::{NewInboxEvent, TelephonyEvent, TelephonyEventKind, WebhookInbox};
    let telnyx = Telnyx::start().await;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        telnyx.configure(c);
        c.calls.worker_interval_ms = 50;
    })
    .await;
    let org = app.org("Acme").await;
    let placed = place(&app, &org).await;
    // As if an instance recorded the event and died before processing it.
    let event = TelephonyEvent {
        id: uuid::Uuid::new_v4().to_string(),
        event_type: "call.answered".into(),
        occurred_at: chrono::Utc::now(),
        call_id: Some(placed.id.parse().expect("call id")),
        provider_call_id: Some(placed.provider_call_id.clone()),
        provider_session_id: None,
        kind: TelephonyEventKind::Answered,
    };
    let now = chrono::Utc::now();
    app.store()
        .await
        .record(
            &NewInboxEvent {
                provider: "telnyx".into(),
                provider_event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                payload: serde_json::to_value(&event).expect("json"),
                occurred_at: Some(event.occurred_at),
                received_at: now,
            },
            now - chrono::Duration::seconds(1),
        )
        .await
        .expect("recorded");
    let mut status = Value::Null;
    for _ in 0..200 {
        status = call(&app, &org, &placed).await["status"].clone();
        if status == "in_progress" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        status, "in_progress",
        "the worker applied the recorded event"
    );
    // Settled: later worker rounds do not apply it again.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        history(&call(&app, &org, &placed).await),
        vec![entry("answered", "applied")],
        "applied once"
    );
    // A redelivery is a duplicate.
    let mut redelivery = event_json_for(&event, &placed);
    redelivery["data"]["id"] = json!(event.id);
    assert_eq!(deliver(&app, &telnyx, &redelivery).await, "duplicate");
}

fn event_json_for(event: &iace_domain::ports::TelephonyEvent, placed: &Placed) -> Value {
    let mut body = self::event(&event.event_type, placed, json!({}));
    body["data"]["id"] = json!(event.id);
    body
}

pub(crate) fn persona_body(name: &str) -> Value {
    json!({
        "name": name,
        "voice": {"name": "aura-2-thalia-en", "speed": 1.0},
        "system_prompt": "You help customers of Acme with billing questions.",
        "greeting": "Hi, this is Acme. How can I help?",
        "style": "friendly",
        "language": "en-US"
    })
}

/// A Telnyx `call.initiated` for an incoming call the provider created.
pub(crate) fn incoming(provider_call_id: &str, from: &str, to: &str) -> Value {
    json!({
        "data": {
            "record_type": "event",
            "event_type": "call.initiated",
            "id": uuid::Uuid::new_v4().to_string(),
            "occurred_at": chrono::Utc::now().to_rfc3339(),
            "payload": {
                "call_control_id": provider_call_id,
                "call_session_id": uuid::Uuid::new_v4().to_string(),
                "connection_id": "conn-1",
                "direction": "incoming", "state": "parked",
                "from": from, "to": to, "client_state": null
            }
        }
    })
}

#[tokio::test]
async fn an_inbound_call_is_created_for_the_number_owner_linked_assigned_and_answered() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let (s, body, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/org/telephony",
            Some(&org.api_key),
            Some(json!({"numbers": ["+14155550100"], "media_base_url": "wss://media.acme.example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, customer) = app
        .post(
            "/v1/customers",
            &org.api_key,
            json!({"phone": "+442079460958", "name": "Jane"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{customer}");
    let (_, control) = app
        .post("/v1/personas", &org.api_key, persona_body("Sam"))
        .await;
    let (_, treatment) = app
        .post("/v1/personas", &org.api_key, persona_body("Alex"))
        .await;
    let (s, experiment) = app
        .post(
            "/v1/experiments",
            &org.api_key,
            json!({"name": "greeting", "metric": "conversion", "variants": [
                {"name": "control", "persona_id": control["id"], "weight": 50, "is_control": true},
                {"name": "alex", "persona_id": treatment["id"], "weight": 50},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{experiment}");
    let (s, started, _) = app
        .call(
            reqwest::Method::POST,
            &format!(
                "/v1/experiments/{}/start",
                experiment["id"].as_str().expect("id")
            ),
            Some(&org.api_key),
            None,
        )
        .await;
    assert!(s.is_success(), "{started}");

    let provider_call_id = format!("v3:{}", uuid::Uuid::new_v4().simple());
    let initiated = incoming(&provider_call_id, "+442079460958", "+14155550100");
    assert_eq!(deliver(&app, &telnyx, &initiated).await, "processed");
    assert_eq!(deliver(&app, &telnyx, &initiated).await, "duplicate");
    assert_eq!(telnyx.wait_for("answer", 1).await, 1, "answered");
    let answer = telnyx
        .server
        .received_requests()
        .await
        .expect("requests")
        .into_iter()
        .find(|r| r.url.path().ends_with("/actions/answer"))
        .expect("answer command");
    let answer: Value = answer.body_json().expect("json");
    let (s, list) = app.get("/v1/calls?direction=inbound", &org.api_key).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let call = &list["items"][0];
    let call_id = call["id"].as_str().expect("call id");
    let token = answer["stream_auth_token"]
        .as_str()
        .expect("a stream token");
    assert!(token.starts_with("v1."), "{token}");
    assert_eq!(
        answer["stream_url"],
        format!("wss://media.acme.example.com/v1/media/telnyx?token={token}")
    );
    assert_eq!(answer["stream_bidirectional_mode"], "rtp");
    assert_eq!(call["status"], "ringing");
    assert_eq!(call["customer_id"], customer["id"]);
    assert_eq!(call["experiment_id"], experiment["id"]);
    let persona = call["persona_id"].clone();
    assert!(
        persona == control["id"] || persona == treatment["id"],
        "{persona}"
    );

    // The rest of the call follows its provider id.
    let placed = Placed {
        id: call_id.to_owned(),
        provider_call_id: provider_call_id.clone(),
    };
    let mut answered = event("call.answered", &placed, json!({}));
    answered["data"]["payload"]["client_state"] = Value::Null;
    deliver(&app, &telnyx, &answered).await;
    let mut hangup = event(
        "call.hangup",
        &placed,
        json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}),
    );
    hangup["data"]["payload"]["client_state"] = Value::Null;
    deliver(&app, &telnyx, &hangup).await;
    let details = call_details(&app, &org, call_id).await;
    assert_eq!(details["status"], "completed");
    assert_eq!(details["direction"], "inbound");

    // A second call from the same caller gets the same persona.
    let second_id = format!("v3:{}", uuid::Uuid::new_v4().simple());
    deliver(
        &app,
        &telnyx,
        &incoming(&second_id, "+442079460958", "+14155550100"),
    )
    .await;
    let (_, list) = app.get("/v1/calls?direction=inbound", &org.api_key).await;
    let personas: Vec<Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["persona_id"].clone())
        .collect();
    assert_eq!(personas.len(), 2);
    assert_eq!(personas[0], personas[1]);

    // A call to a number nobody owns is ignored.
    assert_eq!(
        deliver(
            &app,
            &telnyx,
            &incoming("v3:stranger", "+442079460958", "+14155550199")
        )
        .await,
        "ignored"
    );
}

async fn call_details(app: &TestApp, org: &Org, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/calls/{id}"), &org.api_key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn an_organisations_own_settings_shape_its_outbound_calls() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let (s, body, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/org/telephony",
            Some(&org.api_key),
            Some(json!({
                "numbers": ["+14155550100"],
                "connection_id": "acme-connection",
                "voicemail_message": "Acme here, please call back."
            })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Calls go out from the organisation's numbers only.
    let (s, problem) = app
        .post(
            "/v1/calls",
            &org.api_key,
            json!({"to": "+442079460958", "from": "+14155550999"}),
        )
        .await;
    assert_problem(
        s,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(problem["errors"][0]["code"], "not_an_org_number");
    let placed = place(&app, &org).await;
    let dial: Value = telnyx.server.received_requests().await.expect("requests")[0]
        .body_json()
        .expect("dial body");
    assert_eq!(dial["connection_id"], "acme-connection");
    assert_eq!(dial["answering_machine_detection"], "greeting_end");
    deliver(&app, &telnyx, &event("call.answered", &placed, json!({}))).await;
    deliver(
        &app,
        &telnyx,
        &event(
            "call.machine.detection.ended",
            &placed,
            json!({"result": "machine"}),
        ),
    )
    .await;
    deliver(
        &app,
        &telnyx,
        &event(
            "call.machine.greeting.ended",
            &placed,
            json!({"result": "ended"}),
        ),
    )
    .await;
    assert_eq!(telnyx.wait_for("speak", 1).await, 1);
    let speak = telnyx
        .server
        .received_requests()
        .await
        .expect("requests")
        .into_iter()
        .find(|r| r.url.path().ends_with("/actions/speak"))
        .expect("speak");
    let speak: Value = speak.body_json().expect("json");
    assert_eq!(speak["payload"], "Acme here, please call back.");
}
