//! Outside providers: telephony, speech, language model, sentiment, embeddings.
//!
//! Streaming ports use `futures` streams and sinks (no runtime here): an adapter
//! backs them with whatever it likes (a tokio channel, a WebSocket). Dropping a
//! stream cancels the work behind it — that is how barge-in stops a reply.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Sink;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use super::BoxError;
use crate::{CallId, Embedding, Language, PhoneNumber, Sentiment, Voice};

/// Why a provider call failed. Every variant names the provider (`telnyx`,
/// `deepgram`, `groq`, `gemini`, `local`).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer within the operation's deadline.
    #[error("{provider} did not answer in time")]
    Timeout {
        /// Provider name.
        provider: &'static str,
    },
    /// The provider asked us to slow down.
    #[error("{provider} rate-limited the request")]
    RateLimited {
        /// Provider name.
        provider: &'static str,
        /// How long it asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// Our credentials were refused.
    #[error("{provider} refused our credentials")]
    Unauthorized {
        /// Provider name.
        provider: &'static str,
    },
    /// The provider rejected the request as invalid (a 4xx other than 401/429).
    #[error("{provider} rejected the request: {detail}")]
    Rejected {
        /// Provider name.
        provider: &'static str,
        /// HTTP status, when there was one.
        status: Option<u16>,
        /// The provider's explanation (never contains secrets).
        detail: String,
    },
    /// The provider failed or could not be reached (5xx, connection error).
    #[error("{provider} is unavailable")]
    Unavailable {
        /// Provider name.
        provider: &'static str,
        /// The transport or server error.
        #[source]
        source: BoxError,
    },
    /// The circuit breaker is open: recent calls failed, so this one was not made.
    #[error("{provider} circuit is open")]
    CircuitOpen {
        /// Provider name.
        provider: &'static str,
    },
    /// The provider answered with something we could not understand.
    #[error("{provider} sent an invalid response")]
    InvalidResponse {
        /// Provider name.
        provider: &'static str,
        /// The decoding error.
        #[source]
        source: BoxError,
    },
    /// A streaming session ended unexpectedly.
    #[error("{provider} stream closed unexpectedly")]
    StreamClosed {
        /// Provider name.
        provider: &'static str,
    },
}

impl ProviderError {
    /// The provider's name.
    #[must_use]
    pub const fn provider(&self) -> &'static str {
        match self {
            Self::Timeout { provider }
            | Self::RateLimited { provider, .. }
            | Self::Unauthorized { provider }
            | Self::Rejected { provider, .. }
            | Self::Unavailable { provider, .. }
            | Self::CircuitOpen { provider }
            | Self::InvalidResponse { provider, .. }
            | Self::StreamClosed { provider } => provider,
        }
    }

    /// Whether the same request may succeed if retried later.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::RateLimited { .. }
                | Self::Unavailable { .. }
                | Self::StreamClosed { .. }
        )
    }

    /// A stable snake_case name for metrics labels.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Rejected { .. } => "rejected",
            Self::Unavailable { .. } => "unavailable",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::StreamClosed { .. } => "stream_closed",
        }
    }
}

// ---------------------------------------------------------------- telephony

/// A live call at the provider, as commands address it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHandle {
    /// Our id (echoed back by the provider as `client_state`).
    pub call_id: CallId,
    /// The provider's call id (`call_control_id`).
    pub provider_call_id: String,
}

/// Answering-machine detection on outbound calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineDetection {
    /// Off.
    #[default]
    Disabled,
    /// Detect human vs machine.
    Detect,
    /// Also wait for the greeting to end (to leave a message).
    DetectWithGreetingEnd,
}

/// Audio sample encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioEncoding {
    /// G.711 μ-law (the telephone network's native format).
    Mulaw,
    /// G.711 A-law.
    Alaw,
    /// 16-bit signed little-endian PCM.
    Linear16,
}

/// An audio format: encoding, sample rate, channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AudioFormat {
    /// Encoding.
    pub encoding: AudioEncoding,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels (1 on calls).
    pub channels: u8,
}

impl AudioFormat {
    /// 8 kHz mono μ-law: what phone media streams carry.
    pub const TELEPHONY: Self = Self {
        encoding: AudioEncoding::Mulaw,
        sample_rate: 8_000,
        channels: 1,
    };
}

/// Where the provider should stream a call's audio (a bidirectional media
/// WebSocket on our side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStreamSpec {
    /// Our media endpoint, `wss://…/v1/media/telnyx?token=…`.
    pub url: String,
    /// Audio format both ways.
    pub format: AudioFormat,
    /// A token the provider presents when it connects (Telnyx sends it in
    /// the `x-telnyx-streaming-auth-token` header); the URL carries it too.
    pub auth_token: Option<String>,
}

/// Place an outbound call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialRequest {
    /// Our id, sent as `client_state` so webhooks find the call.
    pub call_id: CallId,
    /// Caller id (one of the organisation's numbers).
    pub from: PhoneNumber,
    /// Whom to call.
    pub to: PhoneNumber,
    /// Stream audio to us once answered.
    pub media_stream: Option<MediaStreamSpec>,
    /// Answering-machine detection.
    pub machine_detection: MachineDetection,
    /// Give up ringing after this long.
    pub ring_timeout: Duration,
    /// The provider connection (Telnyx Call Control application) to dial
    /// through, when the organisation has its own; the adapter's otherwise.
    pub connection: Option<String>,
}

/// The provider's ids for a dialled call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialResponse {
    /// `call_control_id`.
    pub provider_call_id: String,
    /// `call_session_id`.
    pub provider_session_id: Option<String>,
}

/// Answer an inbound call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerOptions {
    /// Stream audio to us.
    pub media_stream: Option<MediaStreamSpec>,
}

/// Where to transfer a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransferTarget {
    /// A phone number.
    Phone {
        /// The number.
        number: PhoneNumber,
    },
    /// A SIP URI (`sip:agent@pbx.example.com`).
    Sip {
        /// The URI.
        uri: String,
    },
}

/// What a call command achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    /// The provider accepted the command.
    Accepted,
    /// The call had already ended (Telnyx 422 / 90018): nothing to do, not an error.
    CallAlreadyEnded,
}

/// Call control at the telephony provider.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TelephonyGateway: Send + Sync {
    /// Places an outbound call.
    ///
    /// # Errors
    /// [`ProviderError::Rejected`] for an undialable number or a number we do not
    /// own; transport errors as [`ProviderError`].
    async fn dial(&self, request: &DialRequest) -> Result<DialResponse, ProviderError>;

    /// Answers an inbound call.
    ///
    /// # Errors
    /// [`ProviderError`]; an ended call is [`CommandOutcome::CallAlreadyEnded`].
    async fn answer(
        &self,
        call: &CallHandle,
        options: &AnswerOptions,
    ) -> Result<CommandOutcome, ProviderError>;

    /// Hangs up.
    ///
    /// # Errors
    /// [`ProviderError`]; an ended call is [`CommandOutcome::CallAlreadyEnded`].
    async fn hang_up(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError>;

    /// Transfers the call (blind) to a human agent.
    ///
    /// # Errors
    /// [`ProviderError`]; an ended call is [`CommandOutcome::CallAlreadyEnded`].
    async fn transfer(
        &self,
        call: &CallHandle,
        target: &TransferTarget,
    ) -> Result<CommandOutcome, ProviderError>;

    /// Has the provider speak `text` with its own TTS (used for fallbacks when our
    /// speech pipeline is down).
    ///
    /// # Errors
    /// [`ProviderError`]; an ended call is [`CommandOutcome::CallAlreadyEnded`].
    async fn speak(
        &self,
        call: &CallHandle,
        text: &str,
        voice: &Voice,
        language: &Language,
    ) -> Result<CommandOutcome, ProviderError>;

    /// Plays an audio file from a URL.
    ///
    /// # Errors
    /// [`ProviderError`]; an ended call is [`CommandOutcome::CallAlreadyEnded`].
    async fn play_audio(
        &self,
        call: &CallHandle,
        url: &str,
    ) -> Result<CommandOutcome, ProviderError>;

    /// Stops any audio the provider is playing (speak or playback).
    ///
    /// # Errors
    /// [`ProviderError`]; an ended call is [`CommandOutcome::CallAlreadyEnded`].
    async fn stop_audio(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError>;

    /// Starts streaming the call's audio to `stream`.
    ///
    /// # Errors
    /// [`ProviderError`]; an ended call is [`CommandOutcome::CallAlreadyEnded`].
    async fn start_streaming(
        &self,
        call: &CallHandle,
        stream: &MediaStreamSpec,
    ) -> Result<CommandOutcome, ProviderError>;

    /// Stops streaming.
    ///
    /// # Errors
    /// [`ProviderError`]; an ended call is [`CommandOutcome::CallAlreadyEnded`].
    async fn stop_streaming(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError>;

    /// Starts recording (the recording arrives later by webhook).
    ///
    /// # Errors
    /// [`ProviderError`]; an ended call is [`CommandOutcome::CallAlreadyEnded`].
    async fn start_recording(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError>;
}

/// What answering-machine detection concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineDetectionResult {
    /// A person answered.
    Human,
    /// A machine (voicemail, fax) answered.
    Machine,
    /// Detection could not tell.
    NotSure,
}

/// How a speak or playback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaybackStatus {
    /// Played to the end.
    Completed,
    /// Stopped early (by us, a hang-up or machine detection).
    Stopped,
    /// Could not be played.
    Failed,
}

/// Something the telephony provider reports about a call, after its webhook
/// was verified and parsed — the same shape whatever the provider. It is
/// stored as JSON in the webhook inbox, so the background worker can process
/// it again after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelephonyEvent {
    /// The provider's event id: the key that deduplicates redeliveries.
    pub id: String,
    /// The provider's event type (`call.answered`), for history and metrics.
    pub event_type: String,
    /// When it happened at the provider.
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// Our call id, when the event carries the `client_state` we set.
    pub call_id: Option<CallId>,
    /// The provider's call id (`call_control_id`).
    pub provider_call_id: Option<String>,
    /// The provider's session id (groups the legs of a transferred call).
    pub provider_session_id: Option<String>,
    /// What happened.
    pub kind: TelephonyEventKind,
}

/// What a [`TelephonyEvent`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TelephonyEventKind {
    /// A call leg was created: an incoming call to answer, or our outbound
    /// call now ringing.
    Initiated {
        /// Incoming or outgoing, from our side.
        direction: crate::call::CallDirection,
        /// The caller, when it is an E.164 number.
        from: Option<PhoneNumber>,
        /// The called number, when it is an E.164 number.
        to: Option<PhoneNumber>,
    },
    /// The call was answered.
    Answered,
    /// The call ended.
    HungUp {
        /// The provider's cause.
        cause: crate::call::HangupCause,
        /// Who hung up.
        source: crate::call::HangupSource,
        /// The SIP response code, when reported.
        sip_code: Option<u16>,
    },
    /// Two legs were bridged (a transfer connected).
    Bridged,
    /// Answering-machine detection finished.
    MachineDetected {
        /// What it concluded.
        result: MachineDetectionResult,
    },
    /// A machine's greeting ended (leave the message now).
    MachineGreetingEnded {
        /// Whether a beep was heard.
        beep: bool,
    },
    /// The caller pressed a key.
    Dtmf {
        /// The key (`0`-`9`, `*`, `#`, `A`-`D`).
        digit: char,
    },
    /// Media streaming to our endpoint started.
    StreamingStarted,
    /// Media streaming stopped.
    StreamingStopped,
    /// Media streaming failed.
    StreamingFailed {
        /// The provider's reason.
        reason: String,
    },
    /// The provider's own text-to-speech finished.
    SpeakEnded {
        /// How it ended.
        status: PlaybackStatus,
    },
    /// An audio file finished playing.
    PlaybackEnded {
        /// How it ended.
        status: PlaybackStatus,
    },
    /// A recording is ready to fetch.
    RecordingSaved {
        /// MP3 link, when offered (short-lived at the provider).
        mp3_url: Option<String>,
        /// WAV link, when offered.
        wav_url: Option<String>,
    },
    /// An event this version does not act on; recorded and acknowledged.
    Other,
}

// ---------------------------------------------------------------- speech-to-text

/// Settings of a live transcription session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SttConfig {
    /// Spoken language.
    pub language: Language,
    /// Format of the audio we send.
    pub format: AudioFormat,
    /// Send interim (non-final) transcripts.
    pub interim_results: bool,
    /// Silence (ms) after which the provider finalises a segment.
    pub endpointing_ms: u32,
    /// Silence (ms) after the last word before an utterance-end event.
    pub utterance_end_ms: u32,
    /// Words to boost (product names, the persona's name).
    pub keywords: Vec<String>,
}

/// Something the speech-to-text session heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SttEvent {
    /// Voice activity began.
    SpeechStarted {
        /// Offset into the stream, ms.
        at_ms: u64,
    },
    /// A transcript that may still change.
    Interim {
        /// Text so far.
        text: String,
        /// Offset of the segment's start, ms.
        start_ms: u64,
    },
    /// A finalised segment.
    Final {
        /// Text.
        text: String,
        /// Provider confidence, 0..=1.
        confidence: f32,
        /// Offset of the segment's start, ms.
        start_ms: u64,
        /// Offset of the segment's end, ms.
        end_ms: u64,
        /// The provider detected the end of the speaker's turn.
        speech_final: bool,
    },
    /// The speaker stopped (no words for `utterance_end_ms`).
    UtteranceEnd {
        /// Offset of the last word's end, ms.
        last_word_end_ms: u64,
    },
}

/// Audio going into a transcription session. Closing it ends the session
/// gracefully (the provider flushes its last results).
pub type AudioSink = Pin<Box<dyn Sink<Bytes, Error = ProviderError> + Send>>;

/// Transcription results coming out of a session; ends when the session closes.
pub type SttEventStream = BoxStream<'static, Result<SttEvent, ProviderError>>;

/// An open transcription session: audio in, events out.
pub struct SttSession {
    /// Where to send audio frames.
    pub audio: AudioSink,
    /// What the provider heard.
    pub events: SttEventStream,
}

impl std::fmt::Debug for SttSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SttSession").finish_non_exhaustive()
    }
}

/// Streaming speech-to-text.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// Opens a live session.
    ///
    /// # Errors
    /// [`ProviderError`] when the session cannot be opened (credentials, network,
    /// unsupported language). Errors after opening arrive on the event stream.
    async fn open(&self, config: &SttConfig) -> Result<SttSession, ProviderError>;
}

// ---------------------------------------------------------------- text-to-speech

/// Text to synthesise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechRequest {
    /// What to say (one sentence or a few; the runtime chunks replies).
    pub text: String,
    /// Voice.
    pub voice: Voice,
    /// Language.
    pub language: Language,
    /// Output format (normally [`AudioFormat::TELEPHONY`]).
    pub format: AudioFormat,
}

/// Synthesised audio, in order; dropping it cancels the synthesis.
pub type AudioChunkStream = BoxStream<'static, Result<Bytes, ProviderError>>;

/// Streaming text-to-speech.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TextToSpeech: Send + Sync {
    /// Starts synthesising; audio arrives as it is produced.
    ///
    /// # Errors
    /// [`ProviderError`] when synthesis cannot start; later errors arrive on the
    /// stream.
    async fn synthesize(&self, request: &SpeechRequest) -> Result<AudioChunkStream, ProviderError>;
}

// ---------------------------------------------------------------- language model

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    /// Instructions.
    System,
    /// The caller.
    User,
    /// The AI agent.
    Assistant,
    /// A tool's result.
    Tool,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The model's id for the call (echoed in the tool's result message).
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments, as JSON.
    pub arguments: serde_json::Value,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Author.
    pub role: ChatRole,
    /// Text.
    pub content: String,
    /// For [`ChatRole::Tool`]: which call this answers.
    pub tool_call_id: Option<String>,
    /// For [`ChatRole::Assistant`]: tools it called.
    pub tool_calls: Vec<ToolCall>,
}

impl ChatMessage {
    /// A plain message.
    #[must_use]
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_call_id: None,
            tool_calls: Vec::new(),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// What it does (the model reads this).
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

/// A chat completion request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model override; the adapter's configured model when `None`.
    pub model: Option<String>,
    /// The conversation, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// Tools offered.
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Cap on generated tokens.
    pub max_tokens: Option<u32>,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end.
    Stop,
    /// Hit `max_tokens`.
    Length,
    /// Wants tool results.
    ToolCalls,
    /// Filtered by the provider.
    ContentFilter,
}

/// Token accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
}

/// A piece of a streamed completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatChunk {
    /// More text.
    Text {
        /// The new text.
        delta: String,
    },
    /// A complete tool call.
    ToolCall {
        /// The call.
        call: ToolCall,
    },
    /// The end.
    Finished {
        /// Why.
        reason: FinishReason,
        /// Tokens used, when reported.
        usage: Option<TokenUsage>,
    },
}

/// A streamed completion; dropping it cancels generation.
pub type ChatStream = BoxStream<'static, Result<ChatChunk, ProviderError>>;

/// A chat language model with streaming and tools.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait LanguageModel: Send + Sync {
    /// Starts a streamed completion.
    ///
    /// # Errors
    /// [`ProviderError`] when the request is refused or the provider is down;
    /// later errors arrive on the stream.
    async fn stream_chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError>;
}

// ---------------------------------------------------------------- sentiment, embeddings

/// A sentiment reading of one utterance: the score (its label derives from
/// it) and, when the analyzer gives them, short reasons ("asked for a
/// manager", "thanked the agent").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentimentReading {
    /// The score.
    pub sentiment: Sentiment,
    /// Why, in a few words each; may be empty.
    pub reasons: Vec<String>,
}

/// Scores the sentiment of an utterance.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SentimentAnalyzer: Send + Sync {
    /// The sentiment of `text` in `language`.
    ///
    /// # Errors
    /// [`ProviderError`]; the caller treats failures as "no sentiment for this
    /// turn", never as a failed call.
    async fn analyze(
        &self,
        text: &str,
        language: &Language,
    ) -> Result<SentimentReading, ProviderError>;
}

/// Turns text into embeddings.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The dimension of every embedding this embedder returns.
    fn dimension(&self) -> usize;

    /// One embedding per input, in the same order.
    ///
    /// # Errors
    /// [`ProviderError`]; [`ProviderError::InvalidResponse`] when the provider
    /// returns the wrong count or dimension.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Embedding>, ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_the_kind() {
        let retryable = [
            ProviderError::Timeout { provider: "groq" },
            ProviderError::RateLimited {
                provider: "groq",
                retry_after: Some(Duration::from_secs(2)),
            },
            ProviderError::Unavailable {
                provider: "groq",
                source: "reset".into(),
            },
            ProviderError::StreamClosed {
                provider: "deepgram",
            },
        ];
        for err in &retryable {
            assert!(err.is_retryable(), "{}", err.kind());
        }
        let final_errors = [
            ProviderError::Unauthorized { provider: "groq" },
            ProviderError::Rejected {
                provider: "telnyx",
                status: Some(422),
                detail: "bad number".into(),
            },
            ProviderError::CircuitOpen { provider: "gemini" },
            ProviderError::InvalidResponse {
                provider: "gemini",
                source: "eof".into(),
            },
        ];
        for err in &final_errors {
            assert!(!err.is_retryable(), "{}", err.kind());
        }
    }

    #[test]
    fn errors_name_the_provider_and_not_the_source() {
        let err = ProviderError::Unavailable {
            provider: "telnyx",
            source: "connection reset".into(),
        };
        assert_eq!(err.provider(), "telnyx");
        assert_eq!(err.kind(), "unavailable");
        assert_eq!(err.to_string(), "telnyx is unavailable");
    }

    #[test]
    fn chat_chunks_are_tagged() {
        let chunk = ChatChunk::Text {
            delta: "Hello".into(),
        };
        let json = serde_json::to_string(&chunk).expect("ser");
        assert_eq!(json, r#"{"type":"text","delta":"Hello"}"#);
        let target = TransferTarget::Sip {
            uri: "sip:a@pbx.example.com".into(),
        };
        let json = serde_json::to_value(&target).expect("ser");
        assert_eq!(json["kind"], "sip");
    }
}
