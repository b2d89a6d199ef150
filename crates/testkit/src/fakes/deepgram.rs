//! A local fake of Deepgram's WebSockets (and a REST echo for wiremock),
//! following the testkit's convention: **the audio of a text is its UTF-8
//! bytes**.
//!
//! - `/v1/listen`: each binary frame is one utterance (or, with
//!   [`Behaviour::segment_on_silence`], each run of text between μ-law
//!   silence); the fake answers
//!   `SpeechStarted`, an interim `Results`, a final `Results`
//!   (`speech_final`) with the frame's text, then `UtteranceEnd`, with times
//!   from the byte offsets at 8000 bytes/s (μ-law 8 kHz). `CloseStream` gets
//!   `Metadata` and a close.
//! - `/v1/speak`: `Speak` texts are buffered; `Flush` answers their bytes as
//!   binary frames of a few bytes each, then `Flushed`; `Close` closes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::contracts::provider_failure::Failure;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderMap;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// How generous "eventually" is.
pub const EVENTUALLY: Duration = Duration::from_secs(10);

/// How the fake behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Fail every connection this way (`Malformed`: after the handshake).
    pub failure: Option<Failure>,
    /// Transcription: drop the TCP connection right after the first final
    /// (once per fake).
    pub drop_after_first_final: bool,
    /// Transcription: on the first connection, drop the TCP connection when
    /// the second frame arrives, without answering it (the adapter must
    /// send it again after reconnecting).
    pub lose_second_frame: bool,
    /// Transcription: on the first connection, leave frames after the first
    /// unanswered and drop the TCP connection at `CloseStream` (the adapter
    /// must reopen, send them again and close again).
    pub drop_at_close_stream: bool,
    /// Refuse every handshake after the first with this status (503, 401…).
    pub refuse_after_first: Option<u16>,
    /// Speech: drop the TCP connection after the first piece of audio.
    pub cut_speech: bool,
    /// Transcription: answer every connection at once with a Deepgram
    /// `Error` message, then close it with 1011.
    pub error_every_connection: bool,
    /// Transcription: on the first connection, answer the first frame with
    /// a final that does not end the turn (`speech_final: false`), then drop
    /// the TCP connection.
    pub open_turn_then_drop: bool,
    /// Transcription: after the first connection, every time in the replies
    /// is `1e300` s.
    pub absurd_times_after_first: bool,
    /// Transcription: read everything, answer nothing, never close (not even
    /// after `CloseStream`).
    pub mute: bool,
    /// Speech: answer `Flush` with a Deepgram `Error` message, then keep the
    /// connection open.
    pub speech_error: bool,
    /// Transcription: audio paced as on a line — text bytes cut into frames,
    /// with μ-law silence (`0xFF`) between lines — is heard as one utterance
    /// per run of text, ended by the first silence after it (instead of one
    /// utterance per frame).
    pub segment_on_silence: bool,
}

/// One upgrade request the fake saw.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: HeaderMap,
}

impl Handshake {
    /// The query's pairs, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        let query = self.uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect()
    }

    /// The first value of `key` in the query.
    pub fn param(&self, key: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find_map(|(k, v)| (k == key).then_some(v))
    }
}

fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = raw.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Default)]
struct State {
    handshakes: Mutex<Vec<Handshake>>,
    texts: Mutex<Vec<String>>,
    connections: AtomicUsize,
    closed: AtomicUsize,
    frames: AtomicUsize,
    dropped: AtomicBool,
}

/// A running fake; stops accepting when dropped.
#[derive(Debug)]
pub struct FakeDeepgram {
    /// `ws://127.0.0.1:port`.
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDeepgram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeDeepgram {
    /// Starts a fake on a free local port.
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, behaviour, shared.clone()));
            }
        });
        Self {
            url: format!("ws://{addr}"),
            state,
            task,
        }
    }

    /// Upgrade requests seen so far.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.state.handshakes.lock().expect("lock").clone()
    }

    /// Text frames received so far, in order.
    pub fn texts(&self) -> Vec<String> {
        self.state.texts.lock().expect("lock").clone()
    }

    /// Transcription audio frames received so far (every connection).
    pub fn frames(&self) -> usize {
        self.state.frames.load(Ordering::SeqCst)
    }

    /// Connections whose WebSocket ended (either side).
    pub fn closed(&self) -> usize {
        self.state.closed.load(Ordering::SeqCst)
    }

    /// Waits (within [`EVENTUALLY`]) until `check` holds.
    pub async fn eventually(&self, what: &str, check: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        while !check(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {EVENTUALLY:?}; texts {:?}",
                self.texts()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn refusal(status: u16, retry_after: Option<u64>) -> ErrorResponse {
    let mut builder = Response::builder().status(status);
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    builder
        .body(Some(
            json!({"err_code": "FAKE", "err_msg": "refused by the fake"}).to_string(),
        ))
        .expect("response")
}

async fn serve(stream: TcpStream, behaviour: Behaviour, state: Arc<State>) {
    let nth = state.connections.fetch_add(1, Ordering::SeqCst);
    if behaviour.failure == Some(Failure::Slow) {
        // Accept TCP, never answer the upgrade.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(stream);
        return;
    }
    let mut path = String::new();
    #[allow(
        clippy::result_large_err,
        reason = "the signature tungstenite's handshake callback must have"
    )]
    let callback = |request: &Request, response: Response| {
        path = request.uri().path().to_owned();
        state.handshakes.lock().expect("lock").push(Handshake {
            uri: request.uri().to_string(),
            headers: request.headers().clone(),
        });
        match behaviour.failure {
            Some(Failure::Unauthorized) => Err(refusal(401, None)),
            Some(Failure::Unavailable) => Err(refusal(503, None)),
            Some(Failure::RateLimited { retry_after_secs }) => {
                Err(refusal(429, Some(retry_after_secs)))
            }
            _ => match behaviour.refuse_after_first {
                Some(status) if nth > 0 => Err(refusal(status, None)),
                _ => Ok(response),
            },
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    if behaviour.failure == Some(Failure::Malformed) {
        let _ = ws
            .send(Message::text("<html>this is not JSON</html>"))
            .await;
    }
    if path == "/v1/listen" {
        listen(&mut ws, behaviour, &state, nth == 0).await;
    } else if path == "/v1/speak" {
        speak(&mut ws, behaviour, &state).await;
    }
    state.closed.fetch_add(1, Ordering::SeqCst);
}

/// μ-law silence.
const SILENCE: u8 = 0xFF;

/// One whole utterance: speech started, an interim, the final, its end.
async fn utterance(
    ws: &mut WebSocketStream<TcpStream>,
    text: &str,
    start: f64,
    duration: f64,
) -> bool {
    let first_word = text.split_whitespace().next().unwrap_or_default();
    let replies = [
        json!({"type": "SpeechStarted", "channel": [0, 1], "timestamp": start}),
        results(first_word, start, duration / 2.0, false, false),
        results(text, start, duration, true, true),
        json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": start + duration}),
    ];
    for reply in replies {
        if !send_json(ws, reply).await {
            return false;
        }
    }
    true
}

async fn send_json(ws: &mut WebSocketStream<TcpStream>, value: serde_json::Value) -> bool {
    ws.send(Message::text(value.to_string())).await.is_ok()
}

fn results(
    text: &str,
    start: f64,
    duration: f64,
    is_final: bool,
    speech_final: bool,
) -> serde_json::Value {
    json!({
        "type": "Results", "channel_index": [0, 1], "start": start, "duration": duration,
        "is_final": is_final, "speech_final": speech_final, "from_finalize": false,
        "channel": {"alternatives": [{"transcript": text, "confidence": 0.98, "words": []}]},
        "metadata": {"request_id": "fake"}
    })
}

async fn listen(
    ws: &mut WebSocketStream<TcpStream>,
    behaviour: Behaviour,
    state: &State,
    first_connection: bool,
) {
    if behaviour.error_every_connection {
        let error = json!({"type": "Error", "err_code": "NET-0000",
            "description": "fake: the service failed"});
        let _ = send_json(ws, error).await;
        let close = CloseFrame {
            code: CloseCode::Error,
            reason: "NET-0000".into(),
        };
        let _ = ws.close(Some(close)).await;
        while let Some(Ok(_)) = ws.next().await {}
        return;
    }
    let mut offset = 0usize;
    let mut frames = 0usize;
    // Text heard since the last silence (segmenting on silence).
    let mut spoken = Vec::new();
    while let Some(Ok(message)) = ws.next().await {
        if behaviour.mute {
            if let Message::Text(text) = &message {
                state
                    .texts
                    .lock()
                    .expect("lock")
                    .push(text.as_str().to_owned());
            }
            continue;
        }
        match message {
            Message::Binary(audio) if behaviour.segment_on_silence => {
                state.frames.fetch_add(1, Ordering::SeqCst);
                for &byte in audio.iter() {
                    if byte != SILENCE {
                        spoken.push(byte);
                    } else if !spoken.is_empty() {
                        let text =
                            String::from_utf8_lossy(&std::mem::take(&mut spoken)).into_owned();
                        let (start, duration) =
                            (offset as f64 / 8_000.0, text.len() as f64 / 8_000.0);
                        if !utterance(ws, &text, start, duration).await {
                            return;
                        }
                    }
                    offset += 1;
                }
            }
            Message::Binary(audio) => {
                frames += 1;
                state.frames.fetch_add(1, Ordering::SeqCst);
                if behaviour.lose_second_frame && first_connection && frames == 2 {
                    return;
                }
                if behaviour.drop_at_close_stream && first_connection && frames > 1 {
                    continue;
                }
                let text = String::from_utf8_lossy(&audio).into_owned();
                let (start, duration) = if behaviour.absurd_times_after_first && !first_connection {
                    (1e300, 1e300)
                } else {
                    (offset as f64 / 8_000.0, audio.len() as f64 / 8_000.0)
                };
                offset += audio.len();
                let first_word = text.split_whitespace().next().unwrap_or_default();
                let open_turn = behaviour.open_turn_then_drop && first_connection;
                let replies = [
                    json!({"type": "SpeechStarted", "channel": [0, 1], "timestamp": start}),
                    results(first_word, start, duration / 2.0, false, false),
                    results(&text, start, duration, true, !open_turn),
                ];
                for reply in replies {
                    if !send_json(ws, reply).await {
                        return;
                    }
                }
                if open_turn {
                    // Abrupt, with the turn still open.
                    return;
                }
                if behaviour.drop_after_first_final && !state.dropped.swap(true, Ordering::SeqCst) {
                    // Abrupt: the TCP connection goes, no closing handshake.
                    return;
                }
                let end = json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": start + duration});
                if !send_json(ws, end).await {
                    return;
                }
            }
            Message::Text(text) => {
                let kind = serde_json::from_str::<serde_json::Value>(text.as_str())
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_owned));
                state
                    .texts
                    .lock()
                    .expect("lock")
                    .push(text.as_str().to_owned());
                if kind.as_deref() == Some("CloseStream")
                    && behaviour.drop_at_close_stream
                    && first_connection
                {
                    return;
                }
                if kind.as_deref() == Some("CloseStream") {
                    let metadata = json!({"type": "Metadata", "request_id": "fake",
                        "duration": offset as f64 / 8_000.0, "channels": 1});
                    let _ = send_json(ws, metadata).await;
                    let _ = ws.close(None).await;
                    while let Some(Ok(_)) = ws.next().await {}
                    return;
                }
            }
            Message::Close(_) => return,
            _ => {}
        }
    }
}

async fn speak(ws: &mut WebSocketStream<TcpStream>, behaviour: Behaviour, state: &State) {
    if !send_json(ws, json!({"type": "Metadata", "request_id": "fake"})).await {
        return;
    }
    let mut buffered = String::new();
    let mut sequence = 0u64;
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                return;
            }
            continue;
        };
        state
            .texts
            .lock()
            .expect("lock")
            .push(text.as_str().to_owned());
        let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        match value["type"].as_str() {
            Some("Speak") => buffered.push_str(value["text"].as_str().unwrap_or_default()),
            Some("Flush") if behaviour.speech_error => {
                let error = json!({"type": "Error", "err_code": "INVALID_TEXT",
                    "description": "fake: the text cannot be spoken", "err_msg": "Bad text."});
                if !send_json(ws, error).await {
                    return;
                }
                // And nothing more: no audio, no Flushed, no close.
            }
            Some("Flush") => {
                let warning =
                    json!({"type": "Warning", "description": "fake warning", "code": "W-1"});
                if !send_json(ws, warning).await {
                    return;
                }
                for piece in buffered.as_bytes().chunks(8) {
                    if ws.send(Message::binary(piece.to_vec())).await.is_err() {
                        return;
                    }
                    if behaviour.cut_speech {
                        return;
                    }
                }
                buffered.clear();
                let flushed = json!({"type": "Flushed", "sequence_id": sequence});
                sequence += 1;
                if !send_json(ws, flushed).await {
                    return;
                }
            }
            Some("Clear") => {
                buffered.clear();
                let _ = send_json(ws, json!({"type": "Cleared", "sequence_id": sequence})).await;
            }
            Some("Close") => {
                let _ = ws.close(None).await;
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            _ => {}
        }
    }
}

/// Wiremock responder for `POST /v1/speak`: the body's text as audio.
#[derive(Debug, Clone, Copy)]
pub struct EchoSpeech;

impl wiremock::Respond for EchoSpeech {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body: serde_json::Value = request.body_json().unwrap_or_default();
        let text = body["text"].as_str().unwrap_or_default().to_owned();
        wiremock::ResponseTemplate::new(200)
            .insert_header("content-type", "audio/basic")
            .set_body_bytes(text.into_bytes())
    }
}
