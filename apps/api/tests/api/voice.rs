//! Whole calls through the real server, real Postgres and the remote
//! provider adapters, with no internet: a fake Deepgram (its WebSocket
//! `listen` and `speak`, `iace_testkit::fakes::deepgram`), a fake Groq (an
//! OpenAI-compatible server streaming server-sent events, below) and a fake
//! Telnyx (its call-control API and, here, its media client).
//!
//! The testkit's convention holds end to end: the audio of a text is its
//! UTF-8 bytes. The fake media client sends a line as one `media` frame;
//! Deepgram's fake hears it as one utterance; the agent's reply goes through
//! Deepgram's fake `speak`, comes back as audio paced in 20 ms frames, and the
//! media client reads it as text.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt as _;
use iace_testkit::fakes::deepgram::{Behaviour, FakeDeepgram};
use iace_testkit::fakes::openai;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{Backend, Org, TestApp};
use crate::media::{
    Socket, answered_call, assert_one_converted_trial, available_agent, caller_customer, connect,
    remembered, running_experiment, say, send, setup_with, transcript, transfer_command, until,
};
use crate::webhooks::Telnyx;

/// What the fake model answers to "when do you open".
const OPENING: &str = "We open at nine tomorrow morning. Is there anything else?";
/// A long answer (to "deliveries"): seconds of audio, time to interrupt it.
const DELIVERIES: &str = "Deliveries leave our warehouse every weekday morning. \
    Most parcels arrive within two working days of the order. \
    You can follow each parcel online with the number in your e-mail. \
    On the day itself we send you a text with a two-hour window. \
    If nobody is home the driver leaves a card with a new date. \
    Large items are delivered by appointment, which we book with you by phone.";
/// Any other question.
const HELPFUL: &str = "I can help you with that.";
/// The summary the model writes after the call.
const SUMMARY: &str = "The caller asked when the shop opens tomorrow.";

/// A fake Groq: a reply streamed as server-sent events, chosen by the
/// caller's last words; a sentiment verdict by keyword; a summary when
/// asked for one; `503` to every chat while `down`.
#[derive(Clone, Default)]
struct FakeModel {
    down: Arc<AtomicBool>,
    /// How long each streamed reply waits before its first byte, ms.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// The streamed chat requests, in order.
    chats: Arc<Mutex<Vec<Value>>>,
}

impl FakeModel {
    fn chats(&self) -> Vec<Value> {
        self.chats.lock().expect("lock").clone()
    }
}

fn content(message: &Value) -> String {
    message["content"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
}

impl Respond for FakeModel {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = request.body_json().unwrap_or_default();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let last = messages.last().map(content).unwrap_or_default();
        if body["stream"] != true {
            // The sentiment of one caller utterance.
            let (score, label) = if ["ridiculous", "furious", "terrible"]
                .iter()
                .any(|w| last.contains(w))
            {
                (-0.9, "negative")
            } else if ["thank", "great", "perfect"]
                .iter()
                .any(|w| last.contains(w))
            {
                (0.8, "positive")
            } else {
                (0.0, "neutral")
            };
            return openai::verdict(score, label, &[]);
        }
        if self.down.load(Ordering::SeqCst) {
            return ResponseTemplate::new(503).set_body_json(openai::error_body(
                "Service Unavailable",
                "internal_server_error",
                "service_unavailable",
            ));
        }
        self.chats.lock().expect("lock").push(body);
        let summary = messages
            .iter()
            .any(|m| content(m).contains("summarise the call"));
        let reply = if summary {
            SUMMARY
        } else if last.contains("open") {
            OPENING
        } else if last.contains("deliver") {
            DELIVERIES
        } else {
            HELPFUL
        };
        openai::sse(&openai::reply_chunks(reply), true)
            .set_delay(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)))
    }
}

/// The fakes of one test, and the app configured to use them.
struct Fakes {
    app: TestApp,
    telnyx: Telnyx,
    org: Org,
    deepgram: FakeDeepgram,
    model: FakeModel,
    _groq: MockServer,
}

async fn start() -> Fakes {
    start_with(Behaviour::default()).await
}

async fn start_with(behaviour: Behaviour) -> Fakes {
    let deepgram = FakeDeepgram::start(behaviour).await;
    let groq = MockServer::start().await;
    let model = FakeModel::default();
    Mock::given(method("POST"))
        .and(path("/openai/v1/chat/completions"))
        .respond_with(model.clone())
        .mount(&groq)
        .await;
    let quick = iace_http::HttpPolicy {
        attempts: 1,
        attempt_timeout_ms: 2_000,
        deadline_ms: 3_000,
        backoff_min_ms: 1,
        backoff_max_ms: 5,
    };
    let (deepgram_url, groq_url) = (deepgram.url.clone(), format!("{}/openai/v1", groq.uri()));
    let (app, telnyx, org) = setup_with(Backend::Postgres, |c| {
        c.deepgram = Some(iace_deepgram::DeepgramConfig {
            api_key: secrecy::SecretString::from("KEY_test"),
            ws_url: deepgram_url,
            // No REST fallback is reached: nothing listens here.
            base_url: "http://127.0.0.1:9".into(),
            ..iace_deepgram::DeepgramConfig::default()
        });
        c.groq = Some(iace_groq::GroqConfig {
            api_key: secrecy::SecretString::from("gsk_test"),
            base_url: groq_url,
            chat: quick,
            sentiment: quick,
            ..iace_groq::GroqConfig::default()
        });
        c.calls.worker_interval_ms = 50;
        c.voice.post_call_delay_ms = 100;
    })
    .await;
    Fakes {
        app,
        telnyx,
        org,
        deepgram,
        model,
        _groq: groq,
    }
}

/// What the media client received until the agent went quiet.
#[derive(Debug, Default)]
struct Heard {
    /// Each speech, as text: the audio between two marks.
    speeches: Vec<String>,
    /// Audio after the last mark (a speech cut short).
    unfinished: String,
    /// Whether a `clear` came.
    cleared: bool,
    /// Whether the server closed the stream.
    closed: bool,
}

impl Heard {
    fn all(&self) -> String {
        self.speeches.join(" ")
    }
}

/// Reads frames until the agent goes quiet for `quiet`, echoing the first
/// `echo` marks as Telnyx does once the audio before them was played (the
/// audio after the last echoed mark is still "playing" as far as the server
/// knows).
async fn listen(socket: &mut Socket, echo: usize, quiet: Duration) -> Heard {
    let mut heard = Heard::default();
    let mut audio = Vec::new();
    loop {
        let wait = if heard.speeches.is_empty() && audio.is_empty() {
            Duration::from_secs(10)
        } else {
            quiet
        };
        let message = match tokio::time::timeout(wait, socket.next()).await {
            Err(_) => break,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => {
                heard.closed = true;
                break;
            }
            Ok(Some(Ok(message))) => message,
        };
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).expect("json frame");
        match frame["event"].as_str() {
            Some("media") => audio.extend(
                STANDARD
                    .decode(frame["media"]["payload"].as_str().expect("payload"))
                    .expect("base64"),
            ),
            Some("mark") => {
                heard
                    .speeches
                    .push(String::from_utf8_lossy(&std::mem::take(&mut audio)).into_owned());
                if heard.speeches.len() <= echo {
                    send(
                        socket,
                        json!({"event": "mark", "mark": {"name": frame["mark"]["name"]}}),
                    )
                    .await;
                }
            }
            Some("clear") => heard.cleared = true,
            other => panic!("unexpected frame {other:?}: {text}"),
        }
    }
    heard.unfinished = String::from_utf8_lossy(&audio).into_owned();
    heard
}

/// Everything the agent says in answer, every mark echoed.
async fn hear(socket: &mut Socket) -> Heard {
    listen(socket, usize::MAX, Duration::from_millis(600)).await
}

/// How many connections the Deepgram fake accepted on `path`.
fn connections(deepgram: &FakeDeepgram, path: &str) -> usize {
    deepgram
        .handshakes()
        .iter()
        .filter(|h| h.uri.starts_with(path))
        .count()
}

/// The instance's `/metrics`.
async fn metrics(app: &TestApp) -> String {
    reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body")
}

/// The value of one series (name and labels exactly as rendered).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// The transcript as (speaker, text, interrupted, sentiment).
fn lines(turns: &[Value]) -> Vec<(String, String, bool, Option<f64>)> {
    turns
        .iter()
        .map(|t| {
            (
                t["speaker"].as_str().unwrap_or_default().to_owned(),
                t["text"].as_str().unwrap_or_default().to_owned(),
                t["interrupted"].as_bool().unwrap_or(false),
                t["sentiment"].as_f64(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_multi_turn_call_through_deepgram_and_groq() {
    let f = start().await;
    let (call, token) = answered_call(&f.app, &f.telnyx, &f.org).await;
    let mut socket = connect(&f.app, &token, &call).await;
    let greeting = hear(&mut socket).await;
    assert_eq!(greeting.all(), "Hello! How can I help you today?");

    say(&mut socket, "When do you open tomorrow?").await;
    let answer = hear(&mut socket).await;
    assert_eq!(answer.all().replace("  ", " "), OPENING, "{answer:?}");
    say(&mut socket, "Great, thank you so much").await;
    let second = hear(&mut socket).await;
    assert_eq!(second.all(), HELPFUL, "{second:?}");
    send(&mut socket, json!({"event": "stop"})).await;

    // The second reply's prompt holds the conversation so far.
    let chats = f.model.chats();
    let second_prompt = chats
        .iter()
        .find(|c| c.to_string().contains("thank you so much"))
        .expect("the second turn's request");
    let roles: Vec<&str> = second_prompt["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles.first(), Some(&"system"));
    let said = second_prompt.to_string();
    assert!(
        said.contains("When do you open tomorrow?") && said.contains("We open at nine"),
        "{said}"
    );
    // Deepgram was asked for telephony audio: μ-law at 8 kHz.
    let listen = f
        .deepgram
        .handshakes()
        .into_iter()
        .find(|h| h.uri.starts_with("/v1/listen"))
        .expect("a listen connection");
    assert_eq!(listen.param("encoding").as_deref(), Some("mulaw"));
    assert_eq!(listen.param("sample_rate").as_deref(), Some("8000"));

    let turns = transcript(&f.app, &f.org, &call.id, 5).await;
    let lines = lines(&turns);
    let spoken: Vec<(&str, &str)> = lines
        .iter()
        .map(|(s, t, _, _)| (s.as_str(), t.as_str()))
        .collect();
    assert_eq!(spoken[0], ("bot", "Hello! How can I help you today?"));
    assert_eq!(spoken[1], ("caller", "When do you open tomorrow?"));
    assert_eq!(spoken[2].0, "bot");
    assert!(spoken[2].1.contains("We open at nine"), "{spoken:?}");
    assert_eq!(spoken[3], ("caller", "Great, thank you so much"));
    // The fake model's verdicts, stored per caller turn.
    assert_eq!(lines[1].3, Some(0.0));
    assert_eq!(lines[3].3, Some(0.8));

    // What the call left in `/metrics`. The recorder is the process's: under
    // nextest each test has its own, under `cargo test` others add to it, so
    // counts are lower bounds.
    let text = metrics(&f.app).await;
    let value = |series: &str| value(&text, series);
    assert!(value("iace_calls_started_total{direction=\"inbound\"}") >= 1.0);
    let replies = value("iace_turn_seconds_count");
    assert!(replies >= 2.0, "two replies timed: {replies}");
    let mean = value("iace_turn_seconds_sum") / replies;
    assert!(
        (0.0..5.0).contains(&mean),
        "a turn took {mean} s on average"
    );
    assert!(value("iace_turn_stage_seconds_count{stage=\"first_token\"}") >= 2.0);
    assert!(
        value(
            "iace_provider_request_duration_seconds_count{provider=\"groq\",operation=\"chat_stream\",outcome=\"ok\"}"
        ) >= 2.0
    );
    assert!(
        value(
            "iace_provider_request_duration_seconds_count{provider=\"groq\",operation=\"sentiment\",outcome=\"ok\"}"
        ) >= 2.0
    );
    assert!(
        value(
            "iace_provider_request_duration_seconds_count{provider=\"deepgram\",operation=\"listen_connect\",outcome=\"ok\"}"
        ) >= 1.0
    );
    assert!(
        text.contains(
            "iace_webhook_events_total{provider=\"telnyx\",type=\"call.answered\",result="
        )
    );
}

#[tokio::test]
async fn speaking_over_a_reply_cancels_it_and_clears_the_callers_audio() {
    let f = start().await;
    let (call, token) = answered_call(&f.app, &f.telnyx, &f.org).await;
    let mut socket = connect(&f.app, &token, &call).await;
    hear(&mut socket).await;
    say(&mut socket, "How do deliveries work?").await;
    // The reply goes out; the caller hears its first sentence (that mark
    // is echoed) and speaks over the rest (not played yet).
    let started = listen(&mut socket, 1, Duration::from_millis(300)).await;
    let first = "Deliveries leave our warehouse every weekday morning.";
    assert_eq!(started.speeches.first().map(String::as_str), Some(first));
    say(&mut socket, "Sorry, wait, one quick question").await;
    let after = hear(&mut socket).await;
    assert!(after.cleared, "a barge-in sends clear: {after:?}");
    assert_eq!(after.all(), HELPFUL, "then the new turn is answered");
    send(&mut socket, json!({"event": "stop"})).await;

    let turns = transcript(&f.app, &f.org, &call.id, 5).await;
    let lines = lines(&turns);
    let cut = &lines[2];
    assert_eq!(cut.0, "bot", "{lines:?}");
    assert!(cut.2, "the cut reply is recorded as interrupted: {lines:?}");
    assert_eq!(cut.1, first, "only what was played: {lines:?}");
    assert!(value(&metrics(&f.app).await, "iace_barge_ins_total") >= 1.0);
    assert_eq!(lines[3].1, "Sorry, wait, one quick question");
    // The next reply's prompt holds what the caller heard of the cut one.
    let prompt = f.model.chats().last().expect("a chat")["messages"].to_string();
    assert!(
        prompt.contains(first) && !prompt.contains("Most parcels"),
        "{prompt}"
    );
}

#[tokio::test]
async fn an_angry_caller_is_handed_to_a_free_agent() {
    let f = start().await;
    let agent_id = available_agent(&f.app, &f.org).await;
    let (call, token) = answered_call(&f.app, &f.telnyx, &f.org).await;
    let mut socket = connect(&f.app, &token, &call).await;
    hear(&mut socket).await;
    say(&mut socket, "This is ridiculous, my parcel is late again").await;
    hear(&mut socket).await;
    say(&mut socket, "I am furious, this is terrible service").await;
    let heard = hear(&mut socket).await;
    assert!(
        heard.all().contains("connect you with a colleague"),
        "the hand-over line: {heard:?}"
    );
    let transfer = transfer_command(&f.telnyx).await;
    assert_eq!(transfer["to"], "+14155550177");
    let (_, details) = f
        .app
        .get(&format!("/v1/calls/{}", call.id), &f.org.api_key)
        .await;
    assert_eq!(details["status"], "escalating", "{details}");
    assert_eq!(
        details["escalation_reason"], "sustained_negative_sentiment",
        "{details}"
    );
    assert_eq!(details["transferred_to"], agent_id.as_str());
    assert!(
        value(
            &metrics(&f.app).await,
            "iace_escalations_total{reason=\"sustained_negative_sentiment\",result=\"agent_reserved\"}"
        ) >= 1.0
    );
}

#[tokio::test]
async fn hanging_up_mid_reply_stops_everything_and_the_call_is_learned_from() {
    let f = start().await;
    let customer_id = caller_customer(&f.app, &f.org).await;
    let experiment_id = running_experiment(&f.app, &f.org).await;

    let (call, token) = answered_call(&f.app, &f.telnyx, &f.org).await;
    let mut socket = connect(&f.app, &token, &call).await;
    let greeting = hear(&mut socket).await;
    assert_eq!(greeting.all(), "Hi, this is Acme. How can I help?");
    say(&mut socket, "When do you open tomorrow?").await;
    hear(&mut socket).await;
    say(&mut socket, "Perfect, thank you").await;
    hear(&mut socket).await;
    say(&mut socket, "And how do deliveries work?").await;
    // The long reply starts playing; the caller hangs up after its first
    // sentence.
    let started = listen(&mut socket, 1, Duration::from_millis(200)).await;
    assert!(!started.speeches.is_empty(), "{started:?}");
    send(&mut socket, json!({"event": "stop"})).await;
    // Everything stops: the server closes the stream, no more audio comes,
    // and every Deepgram connection is closed.
    let rest = listen(&mut socket, 0, Duration::from_secs(5)).await;
    assert!(rest.closed, "the server closed the stream: {rest:?}");
    assert!(
        rest.all().len() + rest.unfinished.len() < DELIVERIES.len(),
        "the reply stopped: {rest:?}"
    );
    f.deepgram
        .eventually("every Deepgram connection closed", |d| {
            d.closed() == d.handshakes().len()
        })
        .await;

    // After the call: transcript with sentiment, outcome, experiment,
    // learned pattern, memory snapshot (from the model's summary).
    let details = until(&f.app, &f.org, &format!("/v1/calls/{}", call.id), |d| {
        !d["outcome"].is_null()
    })
    .await;
    assert_eq!(details["outcome"], "resolved", "{details}");
    let turns = transcript(&f.app, &f.org, &call.id, 6).await;
    let lines = lines(&turns);
    assert_eq!(lines[3].3, Some(0.8), "{lines:?}");
    let last = lines.last().expect("a last turn");
    assert_eq!(last.0, "bot", "{lines:?}");
    assert!(
        last.2,
        "the cut reply is recorded as interrupted: {lines:?}"
    );
    assert_one_converted_trial(&f.app, &f.org, &experiment_id).await;
    let memory = remembered(&f.app, &f.org, &customer_id).await;
    assert!(
        memory.contains(SUMMARY),
        "the model's summary is remembered: {memory}"
    );
    let patterns = until(&f.app, &f.org, "/v1/patterns/top?limit=10", |p| {
        p["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    // Exchanges the caller went on from, not negative; not the reply the
    // caller hung up on.
    let triggers: Vec<&str> = patterns["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["trigger"].as_str())
        .collect();
    assert!(
        triggers.contains(&"When do you open tomorrow?"),
        "{patterns}"
    );
    assert!(
        !triggers.contains(&"And how do deliveries work?"),
        "{patterns}"
    );
}

#[tokio::test]
async fn a_language_model_failing_mid_call_degrades_instead_of_dropping_the_call() {
    let f = start().await;
    let (call, token) = answered_call(&f.app, &f.telnyx, &f.org).await;
    let mut socket = connect(&f.app, &token, &call).await;
    hear(&mut socket).await;
    say(&mut socket, "When do you open tomorrow?").await;
    assert!(hear(&mut socket).await.all().contains("nine"));
    // The model goes down mid-call.
    f.model.down.store(true, Ordering::SeqCst);
    say(&mut socket, "And on Sunday?").await;
    let apology = hear(&mut socket).await;
    assert!(
        apology.all().starts_with("Sorry, I didn't catch that"),
        "{apology:?}"
    );
    assert!(!apology.closed, "the call goes on");
    say(&mut socket, "I said, are you open on Sunday?").await;
    // Still down, and no agent to hand over to: the caller may leave a
    // message rather than being cut off.
    let fallback = hear(&mut socket).await;
    assert!(
        fallback.all().contains("no one is available"),
        "{fallback:?}"
    );
    say(&mut socket, "Please call me back on Monday").await;
    let goodbye = hear(&mut socket).await;
    assert!(
        goodbye.all().contains("we have your message"),
        "{goodbye:?}"
    );
    assert!(goodbye.closed, "then the agent ends the call: {goodbye:?}");
    assert_eq!(f.telnyx.wait_for("hangup", 1).await, 1, "hung up politely");
    let details = until(&f.app, &f.org, &format!("/v1/calls/{}", call.id), |d| {
        !d["outcome"].is_null()
    })
    .await;
    assert_eq!(details["outcome"], "callback_requested", "{details}");
    let turns = lines(
        &details["transcript"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    assert!(
        turns
            .iter()
            .any(|(s, t, _, _)| s == "caller" && t == "Please call me back on Monday"),
        "the message is in the transcript: {turns:?}"
    );
}

// --- Providers failing mid-call: the call goes on or ends cleanly. -------------

#[tokio::test]
async fn a_language_model_too_slow_to_answer_is_given_up_on_and_the_call_goes_on() {
    let f = start().await;
    let (call, token) = answered_call(&f.app, &f.telnyx, &f.org).await;
    let mut socket = connect(&f.app, &token, &call).await;
    hear(&mut socket).await;
    // Slower than the chat policy's deadline (3 s).
    f.model.delay_ms.store(8_000, Ordering::SeqCst);
    say(&mut socket, "When do you open tomorrow?").await;
    let apology = hear(&mut socket).await;
    // A filler while waiting, then the apology once the deadline passed.
    assert!(
        apology
            .all()
            .ends_with("Sorry, I didn't catch that. Could you say it again?"),
        "{apology:?}"
    );
    assert!(!apology.closed, "the call goes on");
    f.model.delay_ms.store(0, Ordering::SeqCst);
    say(&mut socket, "When do you open tomorrow?").await;
    let answer = hear(&mut socket).await;
    assert_eq!(answer.all().replace("  ", " "), OPENING, "{answer:?}");
    let details = f
        .app
        .get(&format!("/v1/calls/{}", call.id), &f.org.api_key)
        .await
        .1;
    assert_eq!(details["status"], "in_progress", "{details}");
}

#[tokio::test]
async fn the_transcription_stream_dropping_mid_call_is_reopened_and_the_call_goes_on() {
    let f = start_with(Behaviour {
        drop_after_first_final: true,
        ..Behaviour::default()
    })
    .await;
    let (call, token) = answered_call(&f.app, &f.telnyx, &f.org).await;
    let mut socket = connect(&f.app, &token, &call).await;
    hear(&mut socket).await;
    say(&mut socket, "When do you open tomorrow?").await;
    let answer = hear(&mut socket).await;
    assert_eq!(answer.all().replace("  ", " "), OPENING, "{answer:?}");
    // Deepgram dropped the connection after that final: the next words are
    // heard on a new one.
    say(&mut socket, "Do you deliver?").await;
    let second = hear(&mut socket).await;
    assert!(second.all().contains("delivered"), "{second:?}");
    let listens = connections(&f.deepgram, "/v1/listen");
    assert!(
        listens >= 2,
        "the stream was reopened: {listens} connections"
    );
    send(&mut socket, json!({"event": "stop"})).await;
    let turns = transcript(&f.app, &f.org, &call.id, 5).await;
    let callers: Vec<String> = lines(&turns)
        .into_iter()
        .filter(|(s, ..)| s == "caller")
        .map(|(_, t, ..)| t)
        .collect();
    assert_eq!(
        callers,
        ["When do you open tomorrow?", "Do you deliver?"],
        "{turns:?}"
    );
}

#[tokio::test]
async fn speech_synthesis_failing_again_and_again_hands_the_call_to_a_person() {
    let f = start_with(Behaviour {
        cut_speech: true,
        ..Behaviour::default()
    })
    .await;
    let agent_id = available_agent(&f.app, &f.org).await;
    let (call, token) = answered_call(&f.app, &f.telnyx, &f.org).await;
    let mut socket = connect(&f.app, &token, &call).await;
    // Each speech is cut after its first audio: the caller hears a piece of
    // it, and it is not stored as said (only what played to its mark is).
    let greeting = hear(&mut socket).await;
    assert!(
        "Hello! How can I help you today?".starts_with(&greeting.unfinished)
            && !greeting.unfinished.is_empty(),
        "{greeting:?}"
    );
    say(&mut socket, "When do you open tomorrow?").await;
    let answer = hear(&mut socket).await;
    assert!(OPENING.starts_with(&answer.unfinished), "{answer:?}");
    assert!(!answer.closed, "one failed reply: the call goes on");
    let (_, details) = f
        .app
        .get(&format!("/v1/calls/{}", call.id), &f.org.api_key)
        .await;
    assert_eq!(details["status"], "in_progress", "{details}");

    // The second reply cannot be voiced either: a person takes over (the
    // transfer does not wait for a hand-over line that cannot be said).
    say(&mut socket, "Do you deliver?").await;
    hear(&mut socket).await;
    let transfer = transfer_command(&f.telnyx).await;
    assert_eq!(transfer["to"], "+14155550177");
    let details = until(&f.app, &f.org, &format!("/v1/calls/{}", call.id), |d| {
        d["status"] == "escalating"
    })
    .await;
    assert_eq!(details["escalation_reason"], "service_failure", "{details}");
    assert_eq!(details["transferred_to"], agent_id.as_str());
    let speaks = connections(&f.deepgram, "/v1/speak");
    assert!(
        speaks >= 3,
        "each speech opened its own connection: {speaks}"
    );
    let turns = lines(
        &details["transcript"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    assert!(
        turns.iter().all(|(speaker, ..)| speaker == "caller"),
        "no speech that never played to its end is stored: {turns:?}"
    );
}
