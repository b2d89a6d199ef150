//! The media stream (`GET /v1/media/telnyx`) end to end: a signed inbound
//! call is answered with a tokened stream URL, a fake Telnyx media client
//! connects with the token and talks to the agent over the real WebSocket —
//! with the local providers, its "audio" is text — echoing every mark as
//! Telnyx does once the audio before it was played.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::{SinkExt as _, StreamExt as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::common::{Backend, Org, TestApp};
use crate::webhooks::{Placed, Telnyx, deliver, event, incoming};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An org owning +14155550100, its app and the fake Telnyx.
async fn setup(backend: Backend) -> (TestApp, Telnyx, Org) {
    setup_with(backend, |_| {}).await
}

/// [`setup`], with the configuration adjusted by `adjust` too.
pub(crate) async fn setup_with(
    backend: Backend,
    adjust: impl FnOnce(&mut iace_api::config::Config),
) -> (TestApp, Telnyx, Org) {
    let telnyx = Telnyx::start().await;
    let app = TestApp::spawn_with(backend, |c| {
        telnyx.configure(c);
        c.calls.media_base_url = Some("wss://media.iace.test".into());
        adjust(c);
    })
    .await;
    let org = app.org("Acme").await;
    let (s, body, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/org/telephony",
            Some(&org.api_key),
            Some(json!({"numbers": ["+14155550100"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    (app, telnyx, org)
}

/// An inbound call, answered: its id and stream token.
pub(crate) async fn answered_call(app: &TestApp, telnyx: &Telnyx, org: &Org) -> (Placed, String) {
    let provider_call_id = format!("v3:{}", uuid::Uuid::new_v4().simple());
    let answers_before = telnyx
        .server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().ends_with("/actions/answer"))
        .count();
    let initiated = incoming(&provider_call_id, "+442079460958", "+14155550100");
    assert_eq!(deliver(app, telnyx, &initiated).await, "processed");
    assert_eq!(
        telnyx.wait_for("answer", answers_before + 1).await,
        answers_before + 1
    );
    let answer: Value = telnyx
        .server
        .received_requests()
        .await
        .expect("requests")
        .into_iter()
        .rfind(|r| r.url.path().ends_with("/actions/answer"))
        .expect("answer")
        .body_json()
        .expect("json");
    let token = answer["stream_auth_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, list) = app.get("/v1/calls?direction=inbound", &org.api_key).await;
    let id = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["status"] == "ringing")
        .and_then(|c| c["id"].as_str())
        .expect("the new call")
        .to_owned();
    let placed = Placed {
        id,
        provider_call_id,
    };
    let mut answered = event("call.answered", &placed, json!({}));
    answered["data"]["payload"]["client_state"] = Value::Null;
    assert_eq!(deliver(app, telnyx, &answered).await, "processed");
    (placed, token)
}

pub(crate) fn ws_url(app: &TestApp) -> String {
    format!("{}/v1/media/telnyx", app.base.replacen("http", "ws", 1))
}

/// Connects as Telnyx does: the token in the auth header.
pub(crate) async fn connect(app: &TestApp, token: &str, call: &Placed) -> Socket {
    let mut request = ws_url(app).into_client_request().expect("request");
    request.headers_mut().insert(
        "x-telnyx-streaming-auth-token",
        token.parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the stream opens");
    send(
        &mut socket,
        json!({"event": "connected", "version": "1.0.0"}),
    )
    .await;
    send(
        &mut socket,
        json!({"event": "start", "sequence_number": "1", "stream_id": "s-1", "start": {
            "call_control_id": call.provider_call_id,
            "client_state": STANDARD.encode(&call.id),
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}
        }}),
    )
    .await;
    socket
}

pub(crate) async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("send");
}

/// The caller says `text` (the local speech-to-text hears text as audio).
pub(crate) async fn say(socket: &mut Socket, text: &str) {
    send(
        socket,
        json!({"event": "media", "media": {"track": "inbound", "chunk": "1", "timestamp": "20",
            "payload": STANDARD.encode(text)}}),
    )
    .await;
}

/// Everything the agent says until it goes quiet (every mark echoed, as
/// Telnyx does once the audio before it was played), and whether a `clear`
/// came. With the text providers audio is not paced, so a whole reply
/// arrives at once.
pub(crate) async fn hear(socket: &mut Socket) -> (String, bool) {
    let mut said = String::new();
    let mut cleared = false;
    let mut marks = 0;
    loop {
        let wait = if marks == 0 {
            Duration::from_secs(10)
        } else {
            Duration::from_millis(400)
        };
        let message = match tokio::time::timeout(wait, socket.next()).await {
            // The call ended (a transfer, a hang-up) after its last words.
            Ok(None | Some(Err(_))) if marks > 0 => return (said, cleared),
            Ok(message) => message.expect("the stream is open").expect("a frame"),
            Err(_) if marks > 0 => return (said, cleared),
            Err(_) => panic!("the agent did not speak within 10 s"),
        };
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).expect("json frame");
        match frame["event"].as_str() {
            Some("media") => {
                let audio = STANDARD
                    .decode(frame["media"]["payload"].as_str().expect("payload"))
                    .expect("base64");
                if !said.is_empty() && !said.ends_with(' ') {
                    said.push(' ');
                }
                said.push_str(String::from_utf8_lossy(&audio).trim());
            }
            Some("mark") => {
                marks += 1;
                send(
                    socket,
                    json!({"event": "mark", "mark": {"name": frame["mark"]["name"]}}),
                )
                .await;
            }
            Some("clear") => cleared = true,
            other => panic!("unexpected frame {other:?}: {text}"),
        }
    }
}

pub(crate) async fn transcript(app: &TestApp, org: &Org, id: &str, turns: usize) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..100 {
        let (s, details) = app.get(&format!("/v1/calls/{id}"), &org.api_key).await;
        assert_eq!(s, StatusCode::OK, "{details}");
        last = details["transcript"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if last.len() >= turns
            && last
                .iter()
                .all(|t| t["speaker"] != "caller" || !t["sentiment"].is_null())
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[tokio::test]
async fn a_caller_hears_the_greeting_and_an_answer_and_the_transcript_is_stored() {
    let (app, telnyx, org) = setup(Backend::Postgres).await;
    let (call, token) = answered_call(&app, &telnyx, &org).await;
    let mut socket = connect(&app, &token, &call).await;
    let (greeting, _) = hear(&mut socket).await;
    assert_eq!(greeting, "Hello! How can I help you today?");
    say(&mut socket, "What time do you open tomorrow?").await;
    let (answer, _) = hear(&mut socket).await;
    assert!(answer.to_lowercase().contains("open"), "{answer}");
    // The caller hangs up.
    send(&mut socket, json!({"event": "stop"})).await;
    let turns = transcript(&app, &org, &call.id, 3).await;
    let lines: Vec<(String, String)> = turns
        .iter()
        .map(|t| {
            (
                t["speaker"].as_str().unwrap_or_default().to_owned(),
                t["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(lines[0], ("bot".into(), greeting));
    assert_eq!(
        lines[1],
        ("caller".into(), "What time do you open tomorrow?".into())
    );
    assert_eq!(lines[2].0, "bot");
    assert!(
        !turns[1]["sentiment"].is_null(),
        "the caller's turn was scored: {turns:?}"
    );
}

/// Ana (+14155550177), a human agent on duty; her id.
pub(crate) async fn available_agent(app: &TestApp, org: &Org) -> String {
    let (s, agent) = app
        .post(
            "/v1/agents",
            &org.api_key,
            json!({"name": "Ana", "phone": "+14155550177"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{agent}");
    let agent_id = agent["id"].as_str().expect("id").to_owned();
    let (s, body, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/agents/{agent_id}/availability"),
            Some(&org.api_key),
            Some(json!({"availability": "available"})),
        )
        .await;
    assert!(s.is_success(), "{body}");
    agent_id
}

/// The first Telnyx `transfer` command, once it was sent.
pub(crate) async fn transfer_command(telnyx: &Telnyx) -> Value {
    assert_eq!(telnyx.wait_for("transfer", 1).await, 1, "transferred");
    telnyx
        .server
        .received_requests()
        .await
        .expect("requests")
        .into_iter()
        .find(|r| r.url.path().ends_with("/actions/transfer"))
        .expect("transfer")
        .body_json()
        .expect("json")
}

#[tokio::test]
async fn asking_for_a_person_escalates_and_transfers_to_a_free_agent() {
    let (app, telnyx, org) = setup(Backend::Postgres).await;
    let agent_id = available_agent(&app, &org).await;
    let (call, token) = answered_call(&app, &telnyx, &org).await;
    let mut socket = connect(&app, &token, &call).await;
    hear(&mut socket).await;
    say(&mut socket, "I want to speak to a real person").await;
    let (handover, _) = hear(&mut socket).await;
    assert!(handover.contains("connect you"), "{handover}");
    let transfer = transfer_command(&telnyx).await;
    assert_eq!(transfer["to"], "+14155550177");
    let (_, details) = app
        .get(&format!("/v1/calls/{}", call.id), &org.api_key)
        .await;
    assert_eq!(details["status"], "escalating");
    assert_eq!(details["escalation_reason"], "human_requested");
    assert_eq!(details["transferred_to"], agent_id.as_str());
}

#[tokio::test]
async fn speaking_over_the_agent_clears_its_audio() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let (call, token) = answered_call(&app, &telnyx, &org).await;
    let mut socket = connect(&app, &token, &call).await;
    // The greeting is sent but its mark is not echoed: still "playing".
    let mut greeting = String::new();
    loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            panic!("the stream closed");
        };
        let frame: Value = serde_json::from_str(&text).expect("json");
        if frame["event"] == "mark" {
            break;
        }
        if frame["event"] == "media" {
            greeting.push('.');
        }
    }
    assert!(!greeting.is_empty());
    say(&mut socket, "Sorry to interrupt, quick question").await;
    let mut cleared = false;
    for _ in 0..20 {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).expect("json");
            if frame["event"] == "clear" {
                cleared = true;
                break;
            }
        }
    }
    assert!(cleared, "barge-in sends clear");
}

#[tokio::test]
async fn streams_without_a_valid_token_or_for_an_ended_call_are_refused() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let (call, token) = answered_call(&app, &telnyx, &org).await;
    let url = ws_url(&app);
    let status = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{other}"),
        Ok(_) => 101,
    };
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(url.as_str())
                .await
                .map(|_| ())
        ),
        401
    );
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(format!("{url}?token={forged}"))
                .await
                .map(|_| ())
        ),
        401
    );
    // One stream per call: a second one with the same token is refused
    // while the first is open.
    let first = connect(&app, &token, &call).await;
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(format!("{url}?token={token}"))
                .await
                .map(|_| ())
        ),
        409
    );
    drop(first);
    // Plain HTTP with a good token: not a WebSocket.
    let (s, body, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/media/telnyx?token={token}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "websocket_required");
    // The call ends: its token no longer opens a stream.
    let mut hangup = event(
        "call.hangup",
        &call,
        json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}),
    );
    hangup["data"]["payload"]["client_state"] = Value::Null;
    deliver(&app, &telnyx, &hangup).await;
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(format!("{url}?token={token}"))
                .await
                .map(|_| ())
        ),
        409
    );
    let _ = org;
}

/// Polls `GET path` until `done` holds (10 s at most); returns the last body.
pub(crate) async fn until(
    app: &TestApp,
    org: &Org,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut body = Value::Null;
    for _ in 0..200 {
        let (s, read) = app.get(path, &org.api_key).await;
        assert_eq!(s, StatusCode::OK, "{read}");
        body = read;
        if done(&body) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    body
}

/// The caller's customer record (+442079460958, Jane); its id.
pub(crate) async fn caller_customer(app: &TestApp, org: &Org) -> String {
    let (s, customer) = app
        .post(
            "/v1/customers",
            &org.api_key,
            json!({"phone": "+442079460958", "name": "Jane"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{customer}");
    customer["id"].as_str().expect("id").to_owned()
}

/// Two personas in a started A/B test on `resolved_without_escalation`
/// (both greet "Hi, this is Acme. How can I help?"); its id.
pub(crate) async fn running_experiment(app: &TestApp, org: &Org) -> String {
    let (_, a) = app
        .post(
            "/v1/personas",
            &org.api_key,
            crate::webhooks::persona_body("Sam"),
        )
        .await;
    let (_, b) = app
        .post(
            "/v1/personas",
            &org.api_key,
            crate::webhooks::persona_body("Alex"),
        )
        .await;
    let (s, experiment) = app
        .post(
            "/v1/experiments",
            &org.api_key,
            json!({"name": "greeting", "metric": "resolved_without_escalation", "variants": [
                {"name": "sam", "persona_id": a["id"], "weight": 50, "is_control": true},
                {"name": "alex", "persona_id": b["id"], "weight": 50},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{experiment}");
    let id = experiment["id"].as_str().expect("id").to_owned();
    let (s, started, _) = app
        .call(
            reqwest::Method::POST,
            &format!("/v1/experiments/{id}/start"),
            Some(&org.api_key),
            None,
        )
        .await;
    assert!(s.is_success(), "{started}");
    id
}

/// What is remembered about the customer, once the work after the call
/// stored it (10 s at most).
pub(crate) async fn remembered(app: &TestApp, org: &Org, customer_id: &str) -> String {
    let memory = until(
        app,
        org,
        &format!("/v1/customers/{customer_id}/memory"),
        |m| m["summary"].as_str().is_some_and(|s| !s.is_empty()),
    )
    .await;
    memory["summary"].as_str().unwrap_or_default().to_owned()
}

/// Waits for the experiment to count one trial, and checks it converted.
pub(crate) async fn assert_one_converted_trial(app: &TestApp, org: &Org, experiment: &str) {
    let results = until(
        app,
        org,
        &format!("/v1/experiments/{experiment}/results"),
        |r| {
            r["variants"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x["trials"] == 1))
        },
    )
    .await;
    let counted: Vec<(u64, u64)> = results["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .map(|v| {
            (
                v["trials"].as_u64().unwrap_or(0),
                v["conversions"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(counted.contains(&(1, 1)), "one trial, converted: {results}");
}

#[tokio::test]
async fn after_the_call_its_outcome_experiment_patterns_and_memory_are_stored() {
    let (app, telnyx, org) = setup_with(Backend::Postgres, |c| {
        c.calls.worker_interval_ms = 50;
        c.voice.post_call_delay_ms = 100;
    })
    .await;
    let customer_id = caller_customer(&app, &org).await;
    let experiment_id = running_experiment(&app, &org).await;

    // First call: a question answered, and the caller is pleased.
    let (call, token) = answered_call(&app, &telnyx, &org).await;
    let mut socket = connect(&app, &token, &call).await;
    let (greeting, _) = hear(&mut socket).await;
    assert_eq!(greeting, "Hi, this is Acme. How can I help?");
    say(&mut socket, "What time do you open tomorrow?").await;
    hear(&mut socket).await;
    say(&mut socket, "Great, that is really helpful, thank you!").await;
    hear(&mut socket).await;
    send(&mut socket, json!({"event": "stop"})).await;

    let details = until(&app, &org, &format!("/v1/calls/{}", call.id), |d| {
        !d["outcome"].is_null()
    })
    .await;
    assert_eq!(details["outcome"], "resolved", "{details}");
    assert!(
        details["sentiment"]["turns"].as_u64() >= Some(2),
        "{details}"
    );
    assert_one_converted_trial(&app, &org, &experiment_id).await;
    let memory = remembered(&app, &org, &customer_id).await;
    assert!(memory.contains("open tomorrow"), "{memory}");
    let patterns = until(&app, &org, "/v1/patterns/top?limit=10", |p| {
        p["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    let items = patterns["items"].as_array().expect("items");
    assert_eq!(
        items.len(),
        1,
        "only the exchange the caller was pleased with: {patterns}"
    );
    let learned = &items[0];
    assert_eq!(
        learned["trigger"], "What time do you open tomorrow?",
        "{patterns}"
    );
    assert!(
        learned["response"]
            .as_str()
            .unwrap_or_default()
            .contains("nine to five")
    );
    assert_eq!(learned["uses"], 0);

    // Second call, same question: the learned pattern is in the reply's
    // prompt, so its use (and success) is counted after the call.
    let (second, token) = answered_call(&app, &telnyx, &org).await;
    let mut socket = connect(&app, &token, &second).await;
    hear(&mut socket).await;
    say(&mut socket, "What time do you open tomorrow?").await;
    hear(&mut socket).await;
    say(&mut socket, "Perfect, thanks a lot!").await;
    hear(&mut socket).await;
    send(&mut socket, json!({"event": "stop"})).await;
    let pattern_id = learned["id"].as_str().expect("id").to_owned();
    let used = until(&app, &org, &format!("/v1/patterns/{pattern_id}"), |p| {
        p["uses"] == 1
    })
    .await;
    assert_eq!(
        (used["uses"].clone(), used["successes"].clone()),
        (json!(1), json!(1)),
        "{used}"
    );
}

#[tokio::test]
async fn a_stream_whose_start_names_another_call_is_closed() {
    let (app, telnyx, org) = setup(Backend::Sqlite).await;
    let (call, token) = answered_call(&app, &telnyx, &org).await;
    let (other, _) = answered_call(&app, &telnyx, &org).await;
    // The token opens `call`; the start frame claims `other`.
    let mut socket = connect(&app, &token, &other).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_) | Ok(Message::Close(_))) => return true,
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("json");
                    // Nothing of the call is played to the wrong stream but
                    // what was queued before the start frame was read.
                    assert!(
                        ["media", "mark"].contains(&frame["event"].as_str().unwrap_or_default()),
                        "{text}"
                    );
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the server closed the stream");
    // Neither call took the other's audio: `other` never had a stream.
    let (_, details) = app
        .get(&format!("/v1/calls/{}", other.id), &org.api_key)
        .await;
    assert_eq!(details["transcript"], json!([]), "{details}");
    let _ = call;
}

#[tokio::test]
async fn a_second_stream_for_a_call_is_refused_on_every_instance() {
    let redis = iace_redis::RedisConfig {
        url: secrecy::SecretString::from(iace_testkit::redis::url().await),
        key_prefix: iace_testkit::redis::unique_prefix(),
        ..iace_redis::RedisConfig::default()
    };
    let (first, telnyx, org) =
        setup_with(Backend::Postgres, |c| c.redis = Some(redis.clone())).await;
    // The second instance: same database, same Redis, another port.
    let mut config = first.config.clone();
    config.server.bind = "127.0.0.1:0".parse().expect("addr");
    let second = iace_api::startup::Application::build(config)
        .await
        .expect("second instance");
    let second_url = format!("ws://127.0.0.1:{}/v1/media/telnyx", second.port());
    tokio::spawn(second.run_until(std::future::pending()));

    let (call, token) = answered_call(&first, &telnyx, &org).await;
    let mut socket = connect(&first, &token, &call).await;
    hear(&mut socket).await;
    let on_second = || async {
        match tokio_tungstenite::connect_async(format!("{second_url}?token={token}")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                (response.status().as_u16(), body)
            }
            Err(other) => panic!("{other}"),
            Ok(_) => (101, String::new()),
        }
    };
    let (status, body) = on_second().await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("stream_already_open"), "{body}");

    // The first stream ends (Telnyx reconnecting after a network blip, say):
    // the claim is released and the call's stream may open elsewhere.
    send(&mut socket, json!({"event": "stop"})).await;
    drop(socket);
    let started = std::time::Instant::now();
    loop {
        let (status, body) = on_second().await;
        if status == 101 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still refused: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
