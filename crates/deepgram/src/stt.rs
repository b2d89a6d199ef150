//! `SpeechToText` over Deepgram's live transcription WebSocket.
//!
//! [`open`](SpeechToText::open) connects, then hands the socket to one task
//! per session, which owns it:
//! - audio from the session's sink (a bounded channel) goes out as binary
//!   frames; `KeepAlive` goes out when no audio did for `keepalive_ms`;
//! - `Results`, `SpeechStarted` and `UtteranceEnd` come back as [`SttEvent`]s
//!   (a bounded channel), times in ms from the session's first audio;
//! - closing (or dropping) the audio sink sends `CloseStream`: the last
//!   results are forwarded, then the event stream ends (a connection lost
//!   meanwhile with words still unfinalised is reopened, the audio replayed
//!   and `CloseStream` sent again);
//! - dropping the event stream closes the socket and ends the task, so no
//!   task outlives its session;
//! - a dropped connection is reopened (bounded attempts, exponential
//!   backoff) while audio waits in the sink's channel; audio sent but not yet
//!   finalised is sent again, so a drop loses no speech. When reconnecting
//!   fails the event stream ends with `StreamClosed`;
//! - a message that is not Deepgram's JSON ends the session with
//!   `InvalidResponse`.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use iace_domain::ports::{
    AudioEncoding, ProviderError, SpeechToText, SttConfig, SttEvent, SttSession,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{DeepgramClient, PROVIDER, SttSettings};
use crate::wire::{self, ListenControl, ListenMessage};
use crate::ws::{self, Connector, Socket};

/// How long to wait for Deepgram's last results after `CloseStream`.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection up this long restores the full reconnection budget.
const STABLE_AFTER: Duration = Duration::from_secs(5);
/// Events buffered for a slow reader before the session stops reading.
const EVENT_BUFFER: usize = 64;

/// The `/v1/listen` path and query for `config`.
pub(crate) fn listen_path(config: &SttConfig, settings: &SttSettings) -> String {
    let format = config.format;
    let mut query = vec![
        ("model", settings.model.clone()),
        ("encoding", encoding(format.encoding).to_owned()),
        ("sample_rate", format.sample_rate.to_string()),
        ("channels", format.channels.to_string()),
        ("interim_results", config.interim_results.to_string()),
        (
            "endpointing",
            if config.endpointing_ms == 0 {
                "false".to_owned()
            } else {
                config.endpointing_ms.to_string()
            },
        ),
    ];
    // Deepgram refuses utterance_end_ms without interim results.
    if config.interim_results && config.utterance_end_ms > 0 {
        query.push(("utterance_end_ms", config.utterance_end_ms.to_string()));
    }
    query.push(("vad_events", "true".to_owned()));
    query.push(("smart_format", settings.smart_format.to_string()));
    query.push(("punctuate", "true".to_owned()));
    query.push(("language", config.language.as_str().to_owned()));
    let boost = if settings.model.starts_with("nova-3") {
        "keyterm"
    } else {
        "keywords"
    };
    for keyword in config.keywords.iter().filter(|k| !k.trim().is_empty()) {
        query.push((boost, keyword.trim().to_owned()));
    }
    let query: Vec<String> = query
        .into_iter()
        .map(|(key, value)| format!("{key}={}", ws::encode(&value)))
        .collect();
    format!("/v1/listen?{}", query.join("&"))
}

/// Deepgram's name for an encoding.
pub(crate) const fn encoding(encoding: AudioEncoding) -> &'static str {
    match encoding {
        AudioEncoding::Mulaw => "mulaw",
        AudioEncoding::Alaw => "alaw",
        AudioEncoding::Linear16 => "linear16",
    }
}

/// Bytes of audio per second in `config`'s format (never zero).
fn bytes_per_second(config: &SttConfig) -> u64 {
    let sample_bytes = match config.format.encoding {
        AudioEncoding::Mulaw | AudioEncoding::Alaw => 1,
        AudioEncoding::Linear16 => 2,
    };
    (u64::from(config.format.sample_rate) * u64::from(config.format.channels) * sample_bytes).max(1)
}

/// Deepgram's seconds as microseconds (negative and NaN read as zero).
fn micros(seconds: f64) -> u64 {
    (seconds * 1_000_000.0).round().max(0.0) as u64
}

#[async_trait]
impl SpeechToText for DeepgramClient {
    async fn open(&self, config: &SttConfig) -> Result<SttSession, ProviderError> {
        let path = listen_path(config, &self.stt);
        let socket = self.ws.connect(&path).await?;
        let (audio_tx, audio_rx) = futures::channel::mpsc::channel(self.stt.buffer_frames);
        let (events_tx, mut events_rx) = mpsc::channel(EVENT_BUFFER);
        let session = Session {
            connector: self.ws.clone(),
            path,
            settings: self.stt.clone(),
            socket,
            connected_at: Instant::now(),
            attempts_used: 0,
            audio: audio_rx,
            events: events_tx,
            timeline: Timeline::new(bytes_per_second(config), self.stt.buffer_frames),
        };
        // Reconnections carry the opener's request id and trace.
        let context = iace_http::context::current().unwrap_or_default();
        tokio::spawn(iace_http::context::scope(context, session.run()));
        let audio = audio_tx.sink_map_err(|_| ProviderError::StreamClosed { provider: PROVIDER });
        let events = futures::stream::poll_fn(move |cx| events_rx.poll_recv(cx));
        Ok(SttSession {
            audio: Box::pin(audio),
            events: events.boxed(),
        })
    }
}

/// A frame sent but not yet covered by a final result, kept for replay.
#[derive(Debug)]
struct Sent {
    /// Session time of its start (µs).
    start_us: u64,
    /// Session time of its end (µs).
    end_us: u64,
    frame: Bytes,
}

/// A session's clock and turn state, apart from the socket: session time
/// across connections, the audio to replay, whether a turn is open.
#[derive(Debug)]
struct Timeline {
    bytes_per_second: u64,
    /// All audio received from the caller (each frame counted once).
    sent_bytes: u64,
    /// Session time (µs) of the current connection's time zero.
    offset_us: u64,
    /// Frames not yet finalised, oldest first, at most `cap`.
    unfinalised: VecDeque<Sent>,
    cap: usize,
    /// End (µs) of a final that did not end the turn, until one does.
    open_turn_end_us: Option<u64>,
}

impl Timeline {
    fn new(bytes_per_second: u64, cap: usize) -> Self {
        Self {
            bytes_per_second: bytes_per_second.max(1),
            sent_bytes: 0,
            offset_us: 0,
            unfinalised: VecDeque::new(),
            cap: cap.max(1),
            open_turn_end_us: None,
        }
    }

    fn now_us(&self) -> u64 {
        self.sent_bytes.saturating_mul(1_000_000) / self.bytes_per_second
    }

    /// Notes a frame going out (kept for replay until finalised).
    fn record(&mut self, frame: &Bytes) {
        let start_us = self.now_us();
        self.sent_bytes += frame.len() as u64;
        self.unfinalised.push_back(Sent {
            start_us,
            end_us: self.now_us(),
            frame: frame.clone(),
        });
        while self.unfinalised.len() > self.cap {
            self.unfinalised.pop_front();
        }
    }

    /// A new connection starts: its time zero is the first frame to replay
    /// (or now); returns the frames to send again.
    fn restart(&mut self) -> Vec<Bytes> {
        self.offset_us = self
            .unfinalised
            .front()
            .map_or_else(|| self.now_us(), |s| s.start_us);
        self.open_turn_end_us = None;
        self.unfinalised.iter().map(|s| s.frame.clone()).collect()
    }

    /// Whether every frame sent is covered by a final result.
    fn all_finalised(&self) -> bool {
        self.unfinalised.is_empty()
    }

    /// Forgets frames a final result covered (they need no replay).
    fn finalised_until(&mut self, end_us: u64) {
        while self.unfinalised.front().is_some_and(|s| s.end_us <= end_us) {
            self.unfinalised.pop_front();
        }
    }

    /// The events a server message means.
    fn interpret(&mut self, message: ListenMessage) -> Vec<SttEvent> {
        let offset_us = self.offset_us;
        let at_ms = |seconds: f64| (offset_us + micros(seconds)) / 1_000;
        match message {
            ListenMessage::Results(results) => {
                let (text, confidence) = results
                    .channel
                    .alternatives
                    .first()
                    .map(|a| (a.transcript.trim(), a.confidence))
                    .unwrap_or_default();
                let start_us = offset_us + micros(results.start);
                let end_us = offset_us + micros(results.start + results.duration);
                if !results.is_final {
                    if text.is_empty() {
                        return Vec::new();
                    }
                    return vec![SttEvent::Interim {
                        text: text.to_owned(),
                        start_ms: start_us / 1_000,
                    }];
                }
                self.finalised_until(end_us);
                if !text.is_empty() {
                    self.open_turn_end_us = (!results.speech_final).then_some(end_us);
                    return vec![SttEvent::Final {
                        text: text.to_owned(),
                        confidence: (confidence as f32).clamp(0.0, 1.0),
                        start_ms: start_us / 1_000,
                        end_ms: end_us / 1_000,
                        speech_final: results.speech_final,
                    }];
                }
                // An empty final that ends the turn: Deepgram's endpointing
                // fired after the words were already finalised. Say the turn
                // ended, as UtteranceEnd would.
                if results.speech_final
                    && let Some(last_word_end_us) = self.open_turn_end_us.take()
                {
                    return vec![SttEvent::UtteranceEnd {
                        last_word_end_ms: last_word_end_us / 1_000,
                    }];
                }
                Vec::new()
            }
            ListenMessage::UtteranceEnd(end) => {
                self.open_turn_end_us = None;
                vec![SttEvent::UtteranceEnd {
                    last_word_end_ms: at_ms(end.last_word_end),
                }]
            }
            ListenMessage::SpeechStarted(started) => vec![SttEvent::SpeechStarted {
                at_ms: at_ms(started.timestamp),
            }],
            ListenMessage::Metadata(wire::Metadata { request_id }) => {
                tracing::debug!(provider = PROVIDER, request_id, "transcription metadata");
                Vec::new()
            }
            ListenMessage::Error(error) => {
                tracing::warn!(
                    provider = PROVIDER,
                    description = error.description,
                    message = error.message,
                    variant = error.variant,
                    "Deepgram reported a transcription error"
                );
                Vec::new()
            }
            ListenMessage::Other => Vec::new(),
        }
    }
}

/// One live session: owns the socket; ends when the events reader goes away,
/// after a graceful close, or on a failure it reports.
struct Session {
    connector: Connector,
    path: String,
    settings: SttSettings,
    socket: Socket,
    connected_at: Instant,
    /// Reconnection attempts since the last sign of a healthy connection.
    attempts_used: u32,
    audio: futures::channel::mpsc::Receiver<Bytes>,
    events: mpsc::Sender<Result<SttEvent, ProviderError>>,
    timeline: Timeline,
}

/// What woke the session up.
enum Step {
    ReaderGone,
    Server(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Audio(Option<Bytes>),
    KeepAlive,
    GraceOver,
}

/// Whether the session goes on after handling something.
enum Flow {
    Continue,
    /// The connection is gone; reconnect.
    Lost,
    /// The session is over (its last event, if any, was sent).
    End,
}

impl Session {
    async fn run(mut self) {
        let keepalive = self.settings.keepalive;
        let mut audio_open = true;
        let mut keepalive_at = Instant::now() + keepalive;
        let mut grace_until: Option<Instant> = None;
        loop {
            let step = tokio::select! {
                biased;
                () = self.events.closed() => Step::ReaderGone,
                message = self.socket.next() => Step::Server(message),
                frame = self.audio.next(), if audio_open => Step::Audio(frame),
                () = tokio::time::sleep_until(keepalive_at), if audio_open => Step::KeepAlive,
                () = sleep_until_some(grace_until), if grace_until.is_some() => Step::GraceOver,
            };
            let flow = match step {
                Step::ReaderGone => {
                    tracing::debug!(provider = PROVIDER, "transcription reader gone: closing");
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
                    Flow::End
                }
                Step::Server(message) => self.on_server(message, audio_open).await,
                Step::Audio(Some(frame)) => {
                    keepalive_at = Instant::now() + keepalive;
                    self.send_audio(frame).await
                }
                Step::Audio(None) => {
                    audio_open = false;
                    grace_until = Some(Instant::now() + CLOSE_GRACE);
                    self.close_stream().await
                }
                Step::KeepAlive => {
                    keepalive_at = Instant::now() + keepalive;
                    let frame = ws::json_frame(&ListenControl::KeepAlive);
                    match ws::send(&mut self.socket, frame, self.settings.connect_timeout).await {
                        Ok(()) => Flow::Continue,
                        Err(_) => Flow::Lost,
                    }
                }
                Step::GraceOver => {
                    tracing::warn!(
                        provider = PROVIDER,
                        "no close from Deepgram after CloseStream: ending the session"
                    );
                    Flow::End
                }
            };
            match flow {
                Flow::Continue => {}
                Flow::End => return,
                Flow::Lost if !audio_open && self.timeline.all_finalised() => {
                    // Closing, and every word was already delivered.
                    return;
                }
                Flow::Lost => {
                    if !self.reconnect().await {
                        return;
                    }
                    keepalive_at = Instant::now() + keepalive;
                    if !audio_open {
                        // The replayed audio still needs its results.
                        grace_until = Some(Instant::now() + CLOSE_GRACE);
                        if let Flow::Lost = self.close_stream().await {
                            let _ = self
                                .events
                                .send(Err(ProviderError::StreamClosed { provider: PROVIDER }))
                                .await;
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn on_server(
        &mut self,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        audio_open: bool,
    ) -> Flow {
        match message {
            Some(Ok(Message::Text(text))) => {
                self.attempts_used = 0;
                self.on_text(text.as_str()).await
            }
            Some(Ok(Message::Close(frame))) => {
                if audio_open {
                    tracing::warn!(
                        provider = PROVIDER,
                        code = frame.as_ref().map(|f| u16::from(f.code)),
                        reason = frame.as_ref().map(|f| f.reason.as_str()),
                        "Deepgram closed the transcription connection"
                    );
                    Flow::Lost
                } else {
                    Flow::End
                }
            }
            Some(Ok(_binary_or_control)) => Flow::Continue,
            Some(Err(err)) => {
                tracing::warn!(provider = PROVIDER, error = %err, "transcription connection lost");
                Flow::Lost
            }
            None if audio_open => {
                tracing::warn!(provider = PROVIDER, "transcription connection ended");
                Flow::Lost
            }
            None => Flow::End,
        }
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        let message = match serde_json::from_str::<ListenMessage>(text) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(provider = PROVIDER, error = %err, "undecodable transcription message");
                let _ = self
                    .events
                    .send(Err(ProviderError::InvalidResponse {
                        provider: PROVIDER,
                        source: Box::new(err),
                    }))
                    .await;
                return Flow::End;
            }
        };
        for event in self.timeline.interpret(message) {
            if self.events.send(Ok(event)).await.is_err() {
                return Flow::End;
            }
        }
        Flow::Continue
    }

    /// Asks Deepgram to flush its last results and close.
    async fn close_stream(&mut self) -> Flow {
        let close = ws::json_frame(&ListenControl::CloseStream);
        match ws::send(&mut self.socket, close, self.settings.connect_timeout).await {
            Ok(()) => Flow::Continue,
            Err(err) => {
                tracing::warn!(provider = PROVIDER, error = %err, "could not send CloseStream");
                Flow::Lost
            }
        }
    }

    async fn send_audio(&mut self, frame: Bytes) -> Flow {
        if frame.is_empty() {
            // An empty binary frame would read as "close the stream".
            return Flow::Continue;
        }
        self.timeline.record(&frame);
        let limit = self.settings.connect_timeout;
        match ws::send(&mut self.socket, Message::Binary(frame), limit).await {
            Ok(()) => Flow::Continue,
            Err(err) => {
                tracing::warn!(provider = PROVIDER, error = %err, "could not send audio");
                Flow::Lost
            }
        }
    }

    /// Reopens the connection and replays unfinalised audio. `false` when
    /// the session is over (reader gone, or attempts exhausted and
    /// `StreamClosed` reported).
    async fn reconnect(&mut self) -> bool {
        if self.connected_at.elapsed() >= STABLE_AFTER {
            self.attempts_used = 0;
        }
        while self.attempts_used < self.settings.reconnect_attempts {
            self.attempts_used += 1;
            let exponent = (self.attempts_used - 1).min(16);
            let wait = self
                .settings
                .reconnect_backoff
                .saturating_mul(1 << exponent)
                .min(MAX_BACKOFF);
            let connected = tokio::select! {
                () = self.events.closed() => return false,
                connected = async {
                    tokio::time::sleep(wait).await;
                    self.connector.connect(&self.path).await
                } => connected,
            };
            match connected {
                Ok(socket) => {
                    self.socket = socket;
                    self.connected_at = Instant::now();
                    if self.replay().await {
                        tracing::info!(
                            provider = PROVIDER,
                            attempt = self.attempts_used,
                            "transcription reconnected"
                        );
                        return true;
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        provider = PROVIDER,
                        attempt = self.attempts_used,
                        error = %err,
                        "transcription reconnection failed"
                    );
                    if matches!(err, ProviderError::Unauthorized { .. }) {
                        break;
                    }
                }
            }
        }
        let _ = self
            .events
            .send(Err(ProviderError::StreamClosed { provider: PROVIDER }))
            .await;
        false
    }

    /// Sends the unfinalised audio again on a new connection, whose time zero
    /// is then the first replayed frame's start.
    async fn replay(&mut self) -> bool {
        let limit = self.settings.connect_timeout;
        for frame in self.timeline.restart() {
            if let Err(err) = ws::send(&mut self.socket, Message::Binary(frame), limit).await {
                tracing::warn!(provider = PROVIDER, error = %err, "could not replay audio");
                return false;
            }
        }
        true
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => futures::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iace_domain::Language;
    use iace_domain::ports::AudioFormat;

    fn settings(model: &str) -> SttSettings {
        SttSettings {
            model: model.to_owned(),
            smart_format: true,
            keepalive: Duration::from_secs(4),
            connect_timeout: Duration::from_secs(3),
            reconnect_attempts: 3,
            reconnect_backoff: Duration::from_millis(200),
            buffer_frames: 4,
        }
    }

    fn config() -> SttConfig {
        SttConfig {
            language: Language::default(),
            format: AudioFormat::TELEPHONY,
            interim_results: true,
            endpointing_ms: 300,
            utterance_end_ms: 1_000,
            keywords: vec!["Acme Corp".into()],
        }
    }

    #[test]
    fn the_query_is_the_telephony_one() {
        assert_eq!(
            listen_path(&config(), &settings("nova-3")),
            "/v1/listen?model=nova-3&encoding=mulaw&sample_rate=8000&channels=1\
             &interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true\
             &smart_format=true&punctuate=true&language=en-US&keyterm=Acme%20Corp"
        );
    }

    #[test]
    fn older_models_get_keywords_and_odd_settings_are_adapted() {
        let mut config = config();
        config.interim_results = false;
        config.endpointing_ms = 0;
        config.format.encoding = AudioEncoding::Linear16;
        config.format.sample_rate = 16_000;
        let path = listen_path(&config, &settings("nova-2-phonecall"));
        assert!(path.contains("&keywords=Acme%20Corp"), "{path}");
        assert!(!path.contains("keyterm"), "{path}");
        assert!(
            path.contains("encoding=linear16&sample_rate=16000"),
            "{path}"
        );
        assert!(path.contains("endpointing=false"), "{path}");
        assert!(!path.contains("utterance_end_ms"), "{path}");
        assert_eq!(bytes_per_second(&config), 32_000);
    }

    fn results(
        text: &str,
        start: f64,
        duration: f64,
        is_final: bool,
        speech_final: bool,
    ) -> String {
        serde_json::json!({
            "type": "Results", "start": start, "duration": duration,
            "is_final": is_final, "speech_final": speech_final,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.9}]}
        })
        .to_string()
    }

    fn feed(timeline: &mut Timeline, text: &str) -> Vec<SttEvent> {
        timeline.interpret(serde_json::from_str(text).expect("message"))
    }

    #[test]
    fn results_become_events_in_session_milliseconds() {
        let mut t = Timeline::new(8_000, 16);
        t.offset_us = 2_000_000;
        assert_eq!(
            feed(
                &mut t,
                r#"{"type":"SpeechStarted","channel":[0,1],"timestamp":1.5}"#
            ),
            vec![SttEvent::SpeechStarted { at_ms: 3_500 }]
        );
        assert_eq!(
            feed(&mut t, &results("hello", 1.5, 0.5, false, false)),
            vec![SttEvent::Interim {
                text: "hello".into(),
                start_ms: 3_500
            }]
        );
        assert_eq!(feed(&mut t, &results("", 1.5, 0.5, false, false)), vec![]);
        assert_eq!(
            feed(&mut t, &results("hello there", 1.5, 1.0, true, true)),
            vec![SttEvent::Final {
                text: "hello there".into(),
                confidence: 0.9,
                start_ms: 3_500,
                end_ms: 4_500,
                speech_final: true
            }]
        );
        assert_eq!(
            feed(
                &mut t,
                r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.1}"#
            ),
            vec![SttEvent::UtteranceEnd {
                last_word_end_ms: 4_100
            }]
        );
        assert_eq!(
            feed(
                &mut t,
                r#"{"type":"Metadata","request_id":"r","duration":3.0}"#
            ),
            vec![]
        );
    }

    #[test]
    fn an_empty_speech_final_ends_an_open_turn_once() {
        let mut t = Timeline::new(8_000, 16);
        let silence = feed(&mut t, &results("", 0.0, 1.0, true, true));
        assert_eq!(silence, vec![], "silence ends no turn");
        assert_eq!(
            feed(&mut t, &results("I want", 0.0, 1.0, true, false)).len(),
            1
        );
        assert_eq!(feed(&mut t, &results("", 1.0, 0.5, true, false)), vec![]);
        assert_eq!(
            feed(&mut t, &results("", 1.5, 0.5, true, true)),
            vec![SttEvent::UtteranceEnd {
                last_word_end_ms: 1_000
            }]
        );
        assert_eq!(feed(&mut t, &results("", 2.0, 0.5, true, true)), vec![]);
    }

    #[test]
    fn finals_release_the_audio_they_cover_and_the_rest_is_replayed() {
        // 8 bytes per ms: four 20 ms frames.
        let mut t = Timeline::new(8_000, 16);
        for byte in [b'a', b'b', b'c', b'd'] {
            t.record(&Bytes::from(vec![byte; 160]));
        }
        feed(&mut t, &results("ab", 0.0, 0.04, true, false));
        assert_eq!(t.unfinalised.len(), 2);
        let replay = t.restart();
        assert_eq!(replay.len(), 2);
        assert_eq!(replay[0][0], b'c');
        assert_eq!(t.offset_us, 40_000, "the new connection starts at frame c");
        // Times on the new connection are session times.
        assert_eq!(
            feed(&mut t, &results("cd", 0.0, 0.04, true, true)),
            vec![SttEvent::Final {
                text: "cd".into(),
                confidence: 0.9,
                start_ms: 40,
                end_ms: 80,
                speech_final: true
            }]
        );
        assert!(t.unfinalised.is_empty());
        assert!(t.restart().is_empty());
        assert_eq!(t.offset_us, 80_000, "nothing to replay: it starts now");
    }

    #[test]
    fn the_replay_buffer_is_bounded() {
        let mut t = Timeline::new(8_000, 3);
        for _ in 0..10 {
            t.record(&Bytes::from_static(&[0; 160]));
        }
        assert_eq!(t.restart().len(), 3);
        assert_eq!(t.offset_us, 140_000);
    }
}
