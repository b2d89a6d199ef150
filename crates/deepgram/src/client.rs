//! The Deepgram client: one value implementing both speech ports, sharing one
//! circuit breaker between live speech-to-text, streaming text-to-speech and
//! REST.

use std::sync::Arc;
use std::time::Duration;

use iace_http::{BuildError, CircuitBreaker, HttpPolicy, OutboundClient};
use secrecy::SecretString;

use crate::config::{DeepgramConfig, TtsTransport};
use crate::stt::CLOSE_TIMEOUT;
use crate::ws::Connector;

pub(crate) const PROVIDER: &str = "deepgram";

/// Deepgram's live speech-to-text (`SpeechToText`) and text-to-speech
/// (`TextToSpeech`). Cheap to clone.
#[derive(Clone)]
pub struct DeepgramClient {
    pub(crate) http: OutboundClient,
    pub(crate) ws: Connector,
    pub(crate) api_key: SecretString,
    pub(crate) base_url: String,
    pub(crate) stt: SttSettings,
    pub(crate) tts: TtsSettings,
}

/// What live sessions need from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct SttSettings {
    pub model: String,
    pub smart_format: bool,
    pub keepalive: Duration,
    /// Also the write timeout of a session's frames.
    pub connect_timeout: Duration,
    pub reconnect_attempts: u32,
    pub reconnect_backoff: Duration,
    pub buffer_frames: usize,
    /// How long a closing session waits for Deepgram's last results after
    /// `CloseStream` ([`CLOSE_TIMEOUT`] unless a test shortens it).
    pub close_timeout: Duration,
}

/// What synthesis needs from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct TtsSettings {
    pub model: String,
    pub transport: TtsTransport,
    pub rest_fallback: bool,
    pub rest: HttpPolicy,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
}

impl std::fmt::Debug for DeepgramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeepgramClient")
            .field("base_url", &self.base_url)
            .field("ws", &self.ws)
            .field("stt", &self.stt)
            .field("tts", &self.tts)
            .finish_non_exhaustive()
    }
}

impl DeepgramClient {
    /// A client over `config`.
    ///
    /// Installs ring as the process's rustls provider if none is installed
    /// yet (`wss` and `https` both use rustls).
    ///
    /// # Errors
    /// [`BuildError`] when the HTTP client cannot be built.
    pub fn new(config: &DeepgramConfig) -> Result<Self, BuildError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = OutboundClient::new(PROVIDER, &config.breaker)?;
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        let ws = Connector::new(
            &config.ws_url,
            config.api_key.clone(),
            connect_timeout,
            http.breaker().clone(),
        );
        Ok(Self {
            ws,
            api_key: config.api_key.clone(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            stt: SttSettings {
                model: config.stt_model.clone(),
                smart_format: config.smart_format,
                keepalive: Duration::from_millis(config.keepalive_ms.max(1)),
                connect_timeout,
                reconnect_attempts: config.reconnect_attempts,
                reconnect_backoff: Duration::from_millis(config.reconnect_backoff_ms),
                buffer_frames: config.audio_buffer_frames.max(1),
                close_timeout: CLOSE_TIMEOUT,
            },
            tts: TtsSettings {
                model: config.tts_model.clone(),
                transport: config.tts_transport,
                rest_fallback: config.rest_fallback,
                rest: config.tts_rest,
                idle_timeout: Duration::from_millis(config.tts_idle_timeout_ms.max(1)),
                write_timeout: connect_timeout,
            },
            http,
        })
    }

    /// Test knob, not configuration: how long a closing live session waits
    /// for Deepgram's last results after `CloseStream` before it ends (with
    /// `StreamClosed` when audio is still unfinalised). Defaults to 5 s.
    #[doc(hidden)]
    #[must_use]
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.stt.close_timeout = timeout;
        self
    }

    /// The Deepgram circuit breaker, shared by every transport (metrics,
    /// readiness).
    #[must_use]
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        self.http.breaker()
    }
}
