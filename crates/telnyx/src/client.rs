//! `TelephonyGateway` over Telnyx Call Control v2.
//!
//! Every command carries `client_state` (our call id, base64) so the webhooks
//! that follow find the call, and a fresh `command_id`, reused by every retry
//! of that command, so Telnyx acts on it once. A 422 with code 90018 ("call
//! has already ended") is the benign [`CommandOutcome::CallAlreadyEnded`].

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use iace_domain::ports::{
    AnswerOptions, AudioEncoding, CallHandle, CommandOutcome, DialRequest, DialResponse,
    MachineDetection, MediaStreamSpec, ProviderError, TelephonyGateway, TransferTarget,
};
use iace_domain::{CallId, Language, Voice};
use iace_http::{BuildError, CircuitBreaker, Operation, OutboundClient};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::config::TelnyxConfig;
use crate::wire;

pub(crate) const PROVIDER: &str = "telnyx";

/// The Telnyx error code for a command on a call that has ended.
const CALL_ENDED: &str = "90018";

/// Telnyx Call Control.
#[derive(Clone)]
pub struct TelnyxGateway {
    http: OutboundClient,
    api_key: SecretString,
    base_url: String,
    connection_id: String,
    webhook_url: Option<String>,
    fallback_voice: String,
    commands: iace_http::HttpPolicy,
    dial: iace_http::HttpPolicy,
}

impl std::fmt::Debug for TelnyxGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelnyxGateway")
            .field("base_url", &self.base_url)
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

/// Our call id as Telnyx `client_state` (base64 of its text form).
#[must_use]
pub fn client_state(call: CallId) -> String {
    STANDARD.encode(call.to_string())
}

/// Our call id back from a `client_state`; `None` when it is not ours.
#[must_use]
pub fn call_id_from_client_state(state: &str) -> Option<CallId> {
    let bytes = STANDARD.decode(state.trim()).ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

/// Percent-encodes one path segment (call control ids contain `:`).
fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn stream_fields(spec: &MediaStreamSpec) -> wire::StreamFields<'_> {
    let codec = match spec.format.encoding {
        AudioEncoding::Mulaw => "PCMU",
        AudioEncoding::Alaw => "PCMA",
        AudioEncoding::Linear16 => "L16",
    };
    wire::StreamFields {
        stream_url: Some(&spec.url),
        stream_track: Some("inbound_track"),
        stream_codec: Some(codec),
        stream_bidirectional_mode: Some("rtp"),
        stream_bidirectional_codec: Some(codec),
        stream_bidirectional_sampling_rate: Some(spec.format.sample_rate),
        stream_auth_token: spec.auth_token.as_deref(),
    }
}

impl TelnyxGateway {
    /// A gateway over `config`.
    ///
    /// # Errors
    /// [`BuildError`] when the HTTP client cannot be built.
    pub fn new(config: &TelnyxConfig) -> Result<Self, BuildError> {
        Ok(Self {
            http: OutboundClient::new(PROVIDER, &config.breaker)?,
            api_key: config.api_key.clone(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            connection_id: config.connection_id.clone(),
            webhook_url: config.webhook_url.clone(),
            fallback_voice: config.fallback_voice.clone(),
            commands: config.commands,
            dial: config.dial,
        })
    }

    /// The Telnyx circuit breaker (metrics, readiness).
    #[must_use]
    pub fn breaker(&self) -> &std::sync::Arc<CircuitBreaker> {
        self.http.breaker()
    }

    /// Sends `action` on `call` with `fields`; maps "call already ended".
    async fn command<T: Serialize + Sync>(
        &self,
        action: &'static str,
        call: &CallHandle,
        fields: T,
    ) -> Result<CommandOutcome, ProviderError> {
        let url = format!(
            "{}/calls/{}/actions/{action}",
            self.base_url,
            segment(&call.provider_call_id)
        );
        let state = client_state(call.call_id);
        let command_id = uuid::Uuid::new_v4().to_string();
        let body = wire::Command {
            client_state: &state,
            command_id: &command_id,
            fields,
        };
        let request = self
            .http
            .request(Method::POST, &url)
            .bearer_auth(self.api_key.expose_secret())
            .json(&body);
        match self
            .http
            .send(Operation::safe(action, self.commands), request)
            .await
        {
            Ok(_) => Ok(CommandOutcome::Accepted),
            Err(ProviderError::Rejected {
                status: Some(422),
                detail,
                ..
            }) if iace_http::error_code(&detail) == Some(CALL_ENDED) => {
                tracing::debug!(action, call_id = %call.call_id, "call already ended at Telnyx");
                Ok(CommandOutcome::CallAlreadyEnded)
            }
            Err(err) => Err(err),
        }
    }
}

#[async_trait]
impl TelephonyGateway for TelnyxGateway {
    async fn dial(&self, request: &DialRequest) -> Result<DialResponse, ProviderError> {
        let state = client_state(request.call_id);
        let command_id = uuid::Uuid::new_v4().to_string();
        let amd = match request.machine_detection {
            MachineDetection::Disabled => "disabled",
            MachineDetection::Detect => "detect",
            MachineDetection::DetectWithGreetingEnd => "greeting_end",
        };
        let body = wire::Dial {
            connection_id: request.connection.as_deref().unwrap_or(&self.connection_id),
            to: request.to.as_str(),
            from: request.from.as_str(),
            client_state: &state,
            command_id: &command_id,
            timeout_secs: request.ring_timeout.as_secs().clamp(5, 600),
            answering_machine_detection: amd,
            webhook_url: self.webhook_url.as_deref(),
            stream: request
                .media_stream
                .as_ref()
                .map(stream_fields)
                .unwrap_or_default(),
        };
        let builder = self
            .http
            .request(Method::POST, &format!("{}/calls", self.base_url))
            .bearer_auth(self.api_key.expose_secret())
            .json(&body);
        let dialled: wire::Data<wire::Dialled> = self
            .http
            .send_json(Operation::once("dial", self.dial), builder)
            .await?;
        Ok(DialResponse {
            provider_call_id: dialled.data.call_control_id,
            provider_session_id: dialled.data.call_session_id,
        })
    }

    async fn answer(
        &self,
        call: &CallHandle,
        options: &AnswerOptions,
    ) -> Result<CommandOutcome, ProviderError> {
        let fields = options
            .media_stream
            .as_ref()
            .map(stream_fields)
            .unwrap_or_default();
        self.command("answer", call, fields).await
    }

    async fn hang_up(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        self.command("hangup", call, wire::Nothing {}).await
    }

    async fn transfer(
        &self,
        call: &CallHandle,
        target: &TransferTarget,
    ) -> Result<CommandOutcome, ProviderError> {
        let to = match target {
            TransferTarget::Phone { number } => number.as_str(),
            TransferTarget::Sip { uri } => uri.as_str(),
        };
        self.command("transfer", call, wire::Transfer { to }).await
    }

    async fn speak(
        &self,
        call: &CallHandle,
        text: &str,
        voice: &Voice,
        language: &Language,
    ) -> Result<CommandOutcome, ProviderError> {
        // A Telnyx voice id looks like `Provider.Model.Voice`; anything else
        // (a Deepgram voice name) falls back to the basic voices.
        let (voice, service_level) = if voice.name.contains('.') {
            (voice.name.as_str(), None)
        } else {
            (self.fallback_voice.as_str(), Some("basic"))
        };
        let payload: String = text.chars().take(3_000).collect();
        let fields = wire::Speak {
            payload: &payload,
            payload_type: "text",
            voice,
            service_level,
            language: language.as_str(),
        };
        self.command("speak", call, fields).await
    }

    async fn play_audio(
        &self,
        call: &CallHandle,
        url: &str,
    ) -> Result<CommandOutcome, ProviderError> {
        self.command("playback_start", call, wire::Playback { audio_url: url })
            .await
    }

    async fn stop_audio(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        self.command("playback_stop", call, wire::StopPlayback { stop: "all" })
            .await
    }

    async fn start_streaming(
        &self,
        call: &CallHandle,
        stream: &MediaStreamSpec,
    ) -> Result<CommandOutcome, ProviderError> {
        self.command("streaming_start", call, stream_fields(stream))
            .await
    }

    async fn stop_streaming(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        self.command("streaming_stop", call, wire::Nothing {}).await
    }

    async fn start_recording(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        self.command(
            "record_start",
            call,
            wire::Record {
                channels: "dual",
                format: "mp3",
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_state_round_trips_our_call_id_only() {
        let id = CallId::new();
        assert_eq!(call_id_from_client_state(&client_state(id)), Some(id));
        assert_eq!(call_id_from_client_state("not base64!"), None);
        assert_eq!(call_id_from_client_state(&STANDARD.encode("other")), None);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("v3:AbC-_.~"), "v3%3AAbC-_.~");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }
}
