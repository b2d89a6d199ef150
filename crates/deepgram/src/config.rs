//! Deepgram settings.

use iace_http::{BreakerConfig, HttpPolicy};
use secrecy::SecretString;
use serde::Deserialize;

/// How text-to-speech reaches Deepgram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TtsTransport {
    /// The streaming WebSocket (`/v1/speak` over `wss`): the first audio
    /// arrives soonest.
    #[default]
    Websocket,
    /// One REST request per text (`POST /v1/speak`), its body streamed.
    Rest,
}

/// How to reach Deepgram for live speech-to-text and text-to-speech.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepgramConfig {
    /// API key (`Authorization: Token …`); secret, never logged.
    pub api_key: SecretString,
    /// REST base URL (text-to-speech over REST).
    pub base_url: String,
    /// WebSocket base URL (live speech-to-text, streaming text-to-speech).
    pub ws_url: String,
    /// Speech-to-text model. Keywords are sent as `keyterm` to Nova-3 models
    /// and as `keywords` to the others.
    pub stt_model: String,
    /// Text-to-speech voice used when a request's voice is not an Aura
    /// voice (a name starting with `aura`).
    pub tts_model: String,
    /// Ask for smart formatting (numbers, dates, currency as written text).
    pub smart_format: bool,
    /// A `KeepAlive` is sent when no audio went out for this long (ms);
    /// Deepgram closes a session after 10 s without audio or a `KeepAlive`.
    pub keepalive_ms: u64,
    /// Time to open a WebSocket: TCP, TLS and the HTTP upgrade (ms).
    pub connect_timeout_ms: u64,
    /// After a live session's connection drops, reconnect at most this many
    /// times in a row before the session fails with `StreamClosed`.
    pub reconnect_attempts: u32,
    /// First wait before a reconnection (ms); doubled on each further
    /// attempt, at most 5 s.
    pub reconnect_backoff_ms: u64,
    /// How text-to-speech reaches Deepgram: `websocket` or `rest`.
    pub tts_transport: TtsTransport,
    /// With `tts_transport = "websocket"`: when the WebSocket cannot be opened
    /// for a reason worth retrying (timeout, 5xx, 429, connection error),
    /// synthesise over REST instead.
    pub rest_fallback: bool,
    /// Text-to-speech over REST: attempts, timeouts, backoff.
    pub tts_rest: HttpPolicy,
    /// A text-to-speech stream fails with `Timeout` when neither audio nor a
    /// message arrives for this long (ms).
    pub tts_idle_timeout_ms: u64,
    /// The Deepgram circuit breaker, shared by speech-to-text,
    /// text-to-speech and REST.
    pub breaker: BreakerConfig,
    /// Audio frames a live session buffers: between the caller and the
    /// connection (the sink waits when it is full), and for replay after a
    /// reconnection (audio not yet finalised is sent again).
    pub audio_buffer_frames: usize,
}

impl Default for DeepgramConfig {
    fn default() -> Self {
        Self {
            api_key: SecretString::from(String::new()),
            base_url: "https://api.deepgram.com".to_owned(),
            ws_url: "wss://api.deepgram.com".to_owned(),
            stt_model: "nova-3".to_owned(),
            tts_model: "aura-2-thalia-en".to_owned(),
            smart_format: true,
            keepalive_ms: 4_000,
            connect_timeout_ms: 3_000,
            reconnect_attempts: 3,
            reconnect_backoff_ms: 200,
            tts_transport: TtsTransport::Websocket,
            rest_fallback: true,
            tts_rest: HttpPolicy {
                attempts: 2,
                attempt_timeout_ms: 5_000,
                deadline_ms: 8_000,
                backoff_min_ms: 100,
                backoff_max_ms: 1_000,
            },
            tts_idle_timeout_ms: 10_000,
            breaker: BreakerConfig::default(),
            audio_buffer_frames: 256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_section_keeps_the_other_defaults() {
        let config: DeepgramConfig = serde_json::from_str(
            r#"{"api_key":"k","tts_transport":"rest","tts_rest":{"attempts":1}}"#,
        )
        .expect("config");
        assert_eq!(config.tts_transport, TtsTransport::Rest);
        assert_eq!(config.tts_rest.attempts, 1);
        assert_eq!(
            config.tts_rest.deadline_ms, 10_000,
            "HttpPolicy's own default"
        );
        assert_eq!(config.stt_model, "nova-3");
        assert!(config.rest_fallback);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(serde_json::from_str::<DeepgramConfig>(r#"{"modle":"nova-2"}"#).is_err());
    }
}
