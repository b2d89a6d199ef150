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
//!   finalised is sent again, so a drop loses no speech. A Deepgram `Error`
//!   message or a close with an error code is a lost connection too. The
//!   budget of attempts comes back only when a new connection delivers
//!   `Results` (or stays up for 5 s), so a Deepgram that fails every
//!   connection ends the session. When reconnecting fails the event stream
//!   ends with `StreamClosed`, or with the handshake's error when retrying
//!   cannot help (`Unauthorized`, `Rejected`, `CircuitOpen`);
//! - a reconnection ends an open turn (finals without `speech_final` yet)
//!   with `UtteranceEnd` at once: the new connection never heard those
//!   words, so neither its endpointing nor its `UtteranceEnd` would close
//!   the turn. Words after it (replayed or new) start the next turn; a
//!   caller talking through a drop gets the turn split in two, which beats
//!   a turn that never ends;
//! - closing waits at most 5 s for Deepgram's last results; when the time is
//!   up with audio still unfinalised the stream ends with `StreamClosed`;
//! - a message that is not Deepgram's JSON ends the session with
//!   `InvalidResponse`.
//!
//! **Events must be drained independently of writing audio** (another task,
//! or a `select!`). A slow reader does not stop the session: while the event
//! channel is full the session stops *reading* Deepgram's messages (they wait
//! in the socket, none is lost) but keeps forwarding audio and sending
//! `KeepAlive`. Never reading, though, leaves Deepgram's messages unread
//! until it gives up on the connection.

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
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::client::{DeepgramClient, PROVIDER, SttSettings};
use crate::wire::{self, ListenControl, ListenMessage};
use crate::ws::{self, Connector, Socket};

/// How long to wait for Deepgram's last results after `CloseStream`.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection up this long restores the full reconnection budget.
const STABLE_AFTER: Duration = Duration::from_secs(5);
/// Events buffered for a slow reader before the session stops reading.
const EVENT_BUFFER: usize = 64;
/// The longest time read from Deepgram (µs, about 11.6 days of audio):
/// anything above is nonsense, clamped so that sums cannot overflow.
const MAX_MICROS: f64 = 1e12;

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

/// Deepgram's seconds as microseconds: negative and NaN read as zero, at
/// most [`MAX_MICROS`] (the server's numbers are not trusted).
fn micros(seconds: f64) -> u64 {
    let us = (seconds * 1_000_000.0).round();
    if us.is_nan() || us <= 0.0 {
        0
    } else {
        us.min(MAX_MICROS) as u64
    }
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
            pending: VecDeque::new(),
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
        self.sent_bytes = self.sent_bytes.saturating_add(frame.len() as u64);
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
    /// (or now); returns the frames to send again. An open turn stays open
    /// (see [`end_open_turn`](Self::end_open_turn)).
    fn restart(&mut self) -> Vec<Bytes> {
        self.offset_us = self
            .unfinalised
            .front()
            .map_or_else(|| self.now_us(), |s| s.start_us);
        self.unfinalised.iter().map(|s| s.frame.clone()).collect()
    }

    /// Ends the turn left open by a lost connection: the new connection
    /// never heard its words, so nothing it sends would end it.
    fn end_open_turn(&mut self) -> Option<SttEvent> {
        self.open_turn_end_us
            .take()
            .map(|last_word_end_us| SttEvent::UtteranceEnd {
                last_word_end_ms: last_word_end_us / 1_000,
            })
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
        let at_us = |seconds: f64| offset_us.saturating_add(micros(seconds));
        let at_ms = |seconds: f64| at_us(seconds) / 1_000;
        match message {
            ListenMessage::Results(results) => {
                let (text, confidence) = results
                    .channel
                    .alternatives
                    .first()
                    .map(|a| (a.transcript.trim(), a.confidence))
                    .unwrap_or_default();
                let start_us = at_us(results.start);
                let end_us = at_us(results.start + results.duration).max(start_us);
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
            // The session treats it as a lost connection before this.
            ListenMessage::Error(_) | ListenMessage::Other => Vec::new(),
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
    /// Reconnection attempts since the last sign of a healthy connection
    /// (`Results` received, or up for [`STABLE_AFTER`]).
    attempts_used: u32,
    audio: futures::channel::mpsc::Receiver<Bytes>,
    events: mpsc::Sender<Result<SttEvent, ProviderError>>,
    /// Events not yet in the channel (it was full). The socket is read only
    /// when this is empty, so it holds at most one message's events (and a
    /// reconnection's `UtteranceEnd`).
    pending: VecDeque<Result<SttEvent, ProviderError>>,
    timeline: Timeline,
}

/// What woke the session up.
enum Step {
    ReaderGone,
    /// A pending event went into the channel.
    Delivered,
    Server(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Audio(Option<Bytes>),
    KeepAlive,
    CloseTimeout,
}

/// Whether the session goes on after handling something.
enum Flow {
    Continue,
    /// The connection is gone (or failed); reconnect.
    Lost,
    /// The session is over: deliver the pending events, then this error if
    /// any.
    End(Option<ProviderError>),
}

impl Session {
    async fn run(mut self) {
        let keepalive = self.settings.keepalive;
        let close_timeout = self.settings.close_timeout;
        let mut audio_open = true;
        let mut keepalive_at = Instant::now() + keepalive;
        let mut close_until: Option<Instant> = None;
        loop {
            let step = tokio::select! {
                biased;
                () = self.events.closed() => Step::ReaderGone,
                permit = self.events.reserve(), if !self.pending.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.pending.pop_front() {
                            permit.send(event);
                        }
                        Step::Delivered
                    }
                    Err(_closed) => Step::ReaderGone,
                },
                // Deepgram's next message is read only once the last one's
                // events are in the channel: a slow reader holds messages
                // back in the socket, never the audio or the KeepAlive (a
                // blocking send here would stop both).
                message = self.socket.next(), if self.pending.is_empty() => Step::Server(message),
                frame = self.audio.next(), if audio_open => Step::Audio(frame),
                () = tokio::time::sleep_until(keepalive_at), if audio_open => Step::KeepAlive,
                () = sleep_until_some(close_until), if close_until.is_some() => Step::CloseTimeout,
            };
            let flow = match step {
                Step::ReaderGone => {
                    tracing::debug!(provider = PROVIDER, "transcription reader gone: closing");
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
                    return;
                }
                Step::Delivered => Flow::Continue,
                Step::Server(message) => self.on_server(message, audio_open),
                // An empty binary frame would read as "close the stream":
                // nothing goes out, so the KeepAlive timer runs on.
                Step::Audio(Some(frame)) if frame.is_empty() => Flow::Continue,
                Step::Audio(Some(frame)) => {
                    keepalive_at = Instant::now() + keepalive;
                    self.send_audio(frame).await
                }
                Step::Audio(None) => {
                    audio_open = false;
                    close_until = Some(Instant::now() + close_timeout);
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
                Step::CloseTimeout if self.timeline.all_finalised() => {
                    tracing::warn!(
                        provider = PROVIDER,
                        "no close from Deepgram after CloseStream: ending the session"
                    );
                    Flow::End(None)
                }
                Step::CloseTimeout => {
                    tracing::warn!(
                        provider = PROVIDER,
                        unfinalised_frames = self.timeline.unfinalised.len(),
                        "audio still unfinalised when the close timed out"
                    );
                    Flow::End(Some(ProviderError::StreamClosed { provider: PROVIDER }))
                }
            };
            match flow {
                Flow::Continue => {}
                Flow::End(error) => return self.finish(error).await,
                Flow::Lost if !audio_open && self.timeline.all_finalised() => {
                    // Closing, and every word was already delivered.
                    return self.finish(None).await;
                }
                Flow::Lost => {
                    if let Err(error) = self.reconnect().await {
                        return self.finish(error).await;
                    }
                    keepalive_at = Instant::now() + keepalive;
                    if !audio_open {
                        // The replayed audio still needs its results.
                        close_until = Some(Instant::now() + close_timeout);
                        if let Flow::Lost = self.close_stream().await {
                            let closed = ProviderError::StreamClosed { provider: PROVIDER };
                            return self.finish(Some(closed)).await;
                        }
                    }
                }
            }
        }
    }

    /// Delivers the pending events, then `error` if any; the session ends.
    async fn finish(&mut self, error: Option<ProviderError>) {
        let last = error.map(Err);
        for event in self.pending.drain(..).chain(last) {
            if self.events.send(event).await.is_err() {
                return;
            }
        }
    }

    fn on_server(
        &mut self,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        audio_open: bool,
    ) -> Flow {
        match message {
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map(|f| f.code);
                let failed = code.is_some_and(|code| code != CloseCode::Normal);
                if audio_open || failed {
                    tracing::warn!(
                        provider = PROVIDER,
                        code = code.map(u16::from),
                        reason = frame.as_ref().map(|f| f.reason.as_str()),
                        "Deepgram closed the transcription connection"
                    );
                    Flow::Lost
                } else {
                    Flow::End(None)
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
            None => Flow::End(None),
        }
    }

    fn on_text(&mut self, text: &str) -> Flow {
        let message = match serde_json::from_str::<ListenMessage>(text) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(provider = PROVIDER, error = %err, "undecodable transcription message");
                return Flow::End(Some(ProviderError::InvalidResponse {
                    provider: PROVIDER,
                    source: Box::new(err),
                }));
            }
        };
        match &message {
            // Only results show the connection works: the budget of
            // reconnections comes back.
            ListenMessage::Results(_) => self.attempts_used = 0,
            // Deepgram gives up on this connection (it closes next).
            ListenMessage::Error(error) => {
                tracing::warn!(
                    provider = PROVIDER,
                    err_code = error.err_code,
                    variant = error.variant,
                    description = error.description,
                    message = error.message,
                    err_msg = error.err_msg,
                    "Deepgram reported a transcription error"
                );
                return Flow::Lost;
            }
            _ => {}
        }
        self.pending
            .extend(self.timeline.interpret(message).into_iter().map(Ok));
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

    /// Sends a (non-empty) audio frame.
    async fn send_audio(&mut self, frame: Bytes) -> Flow {
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

    /// Reopens the connection, replays unfinalised audio and ends an open
    /// turn. `Err` when the session is over: `Err(None)` when the reader is
    /// gone; else the error to report — the handshake's when retrying
    /// cannot help (refused credentials or request, open circuit),
    /// `StreamClosed` when the attempts ran out.
    async fn reconnect(&mut self) -> Result<(), Option<ProviderError>> {
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
                () = self.events.closed() => return Err(None),
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
                        if let Some(end) = self.timeline.end_open_turn() {
                            self.pending.push_back(Ok(end));
                        }
                        return Ok(());
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        provider = PROVIDER,
                        attempt = self.attempts_used,
                        error = %err,
                        "transcription reconnection failed"
                    );
                    if !err.is_retryable() {
                        return Err(Some(err));
                    }
                }
            }
        }
        Err(Some(ProviderError::StreamClosed { provider: PROVIDER }))
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
            close_timeout: CLOSE_TIMEOUT,
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
    fn absurd_server_times_are_clamped_not_overflowed() {
        assert_eq!(micros(f64::NAN), 0);
        assert_eq!(micros(-3.0), 0);
        assert_eq!(micros(f64::NEG_INFINITY), 0);
        assert_eq!(micros(1.5), 1_500_000);
        assert_eq!(micros(1e300), 1_000_000_000_000);
        assert_eq!(micros(f64::INFINITY), 1_000_000_000_000);
        let mut t = Timeline::new(8_000, 16);
        t.offset_us = u64::MAX - 10;
        let events = feed(&mut t, &results("hi", 1e300, 1e300, true, false));
        let [
            SttEvent::Final {
                start_ms, end_ms, ..
            },
        ] = events.as_slice()
        else {
            panic!("{events:?}");
        };
        assert_eq!((*start_ms, *end_ms), (u64::MAX / 1_000, u64::MAX / 1_000));
        assert_eq!(
            feed(
                &mut t,
                r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":1e300}"#
            ),
            vec![SttEvent::UtteranceEnd {
                last_word_end_ms: u64::MAX / 1_000
            }]
        );
        // A negative duration does not end a segment before its start.
        t.offset_us = 0;
        let events = feed(&mut t, &results("hi", 2.0, -1.0, true, true));
        let [
            SttEvent::Final {
                start_ms, end_ms, ..
            },
        ] = events.as_slice()
        else {
            panic!("{events:?}");
        };
        assert_eq!((*start_ms, *end_ms), (2_000, 2_000));
    }

    #[test]
    fn a_turn_open_at_a_restart_is_ended_once() {
        let mut t = Timeline::new(8_000, 16);
        t.record(&Bytes::from_static(&[0; 800]));
        feed(&mut t, &results("I want", 0.0, 0.1, true, false));
        assert!(t.restart().is_empty());
        assert_eq!(
            t.end_open_turn(),
            Some(SttEvent::UtteranceEnd {
                last_word_end_ms: 100
            })
        );
        assert_eq!(t.end_open_turn(), None);
        feed(&mut t, &results("done", 0.0, 0.1, true, true));
        t.restart();
        assert_eq!(t.end_open_turn(), None, "no turn was open");
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
