//! `TextToSpeech` over Deepgram Aura: the streaming WebSocket, or REST.
//!
//! Over the WebSocket, one connection per text: `Speak`, `Flush`, then the
//! binary frames are the audio until `Flushed`, after which `Close` is sent.
//! The returned stream owns the socket and nothing else runs behind it:
//! **dropping the stream is the cancellation** (barge-in drops it; the socket
//! closes with it and Deepgram stops). A connection lost before `Flushed` is
//! `StreamClosed` (retryable), never a quiet end; a Deepgram `Error` message
//! ends the stream at once with `Rejected` (its code and description).
//!
//! When the WebSocket cannot be opened for a reason worth retrying and
//! `rest_fallback` is on, or when `tts_transport = "rest"`, the text goes as
//! `POST /v1/speak` (raw audio, `container=none`) on the `iace-http` stack,
//! its body streamed.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt as _, TryStreamExt as _};
use http::{HeaderValue, Method};
use iace_domain::ports::{AudioChunkStream, ProviderError, SpeechRequest, TextToSpeech};
use iace_http::Operation;
use secrecy::ExposeSecret as _;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{DeepgramClient, PROVIDER};
use crate::config::TtsTransport;
use crate::stt::encoding;
use crate::wire::{self, SpeakControl, SpeakMessage};
use crate::ws::{self, Socket};

impl DeepgramClient {
    /// The Aura model for `request`: its voice when that is an Aura voice,
    /// else the configured default.
    fn voice<'a>(&'a self, request: &'a SpeechRequest) -> &'a str {
        let voice = request.voice.name.trim();
        if voice.starts_with("aura") {
            voice
        } else {
            &self.tts.model
        }
    }

    /// `model`, `encoding` and `sample_rate` for `request`.
    ///
    /// `request.voice.speed` is deliberately not sent: `speed` is unconfirmed
    /// in the provider reference (named for the WebSocket only, no range).
    fn speak_query(&self, request: &SpeechRequest) -> [(&'static str, String); 3] {
        [
            ("model", self.voice(request).to_owned()),
            ("encoding", encoding(request.format.encoding).to_owned()),
            ("sample_rate", request.format.sample_rate.to_string()),
        ]
    }

    /// Synthesis over the streaming WebSocket.
    async fn speak_ws(&self, request: &SpeechRequest) -> Result<AudioChunkStream, ProviderError> {
        let query: Vec<String> = self
            .speak_query(request)
            .iter()
            .map(|(key, value)| format!("{key}={}", ws::encode(value)))
            .collect();
        let mut socket = self
            .ws
            .connect(&format!("/v1/speak?{}", query.join("&")))
            .await?;
        let limit = self.tts.write_timeout;
        for control in [
            SpeakControl::Speak {
                text: &request.text,
            },
            SpeakControl::Flush,
        ] {
            ws::send(&mut socket, ws::json_frame(&control), limit)
                .await
                .map_err(|err| {
                    tracing::warn!(provider = PROVIDER, error = %err, "could not send the text");
                    ProviderError::StreamClosed { provider: PROVIDER }
                })?;
        }
        Ok(speech_frames(socket, self.tts.idle_timeout, limit))
    }

    /// Synthesis over REST, the body streamed as it arrives.
    async fn speak_rest(&self, request: &SpeechRequest) -> Result<AudioChunkStream, ProviderError> {
        let mut query = self.speak_query(request).to_vec();
        query.push(("container", "none".to_owned()));
        let mut auth = HeaderValue::from_str(&format!("Token {}", self.api_key.expose_secret()))
            .map_err(|_| ProviderError::Rejected {
                provider: PROVIDER,
                status: None,
                detail: "the API key is not a valid header value".to_owned(),
            })?;
        auth.set_sensitive(true);
        let builder = self
            .http
            .request(Method::POST, &format!("{}/v1/speak", self.base_url))
            .query(&query)
            .header(http::header::AUTHORIZATION, auth)
            .json(&wire::SpeakBody {
                text: &request.text,
            });
        // Synthesis has no side effect: safe to repeat.
        let response = self
            .http
            .send(Operation::safe("speak", self.tts.rest), builder)
            .await?;
        let idle = self.tts.idle_timeout;
        let body = response.bytes_stream().map_err(|err| {
            if err.is_timeout() {
                ProviderError::Timeout { provider: PROVIDER }
            } else {
                tracing::warn!(provider = PROVIDER, error = %err.without_url(), "speech body cut");
                ProviderError::StreamClosed { provider: PROVIDER }
            }
        });
        Ok(with_idle_timeout(body.boxed(), idle))
    }
}

/// The audio of a flushed text: binary frames until `Flushed`.
fn speech_frames(
    socket: Socket,
    idle: std::time::Duration,
    write_timeout: std::time::Duration,
) -> AudioChunkStream {
    stream::unfold(Some(socket), move |socket| async move {
        let mut socket = socket?;
        loop {
            let message = match tokio::time::timeout(idle, socket.next()).await {
                Err(_elapsed) => {
                    tracing::warn!(provider = PROVIDER, "no speech within the idle timeout");
                    return Some((Err(ProviderError::Timeout { provider: PROVIDER }), None));
                }
                Ok(message) => message,
            };
            match message {
                Some(Ok(Message::Binary(audio))) if !audio.is_empty() => {
                    return Some((Ok(audio), Some(socket)));
                }
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<SpeakMessage>(text.as_str()) {
                        Ok(SpeakMessage::Flushed { sequence_id }) => {
                            tracing::debug!(provider = PROVIDER, sequence_id, "speech flushed");
                            let close = ws::json_frame(&SpeakControl::Close);
                            let _ = ws::send(&mut socket, close, write_timeout).await;
                            return None;
                        }
                        Ok(SpeakMessage::Warning { description, code }) => {
                            tracing::warn!(
                                provider = PROVIDER,
                                code,
                                description,
                                "Deepgram speech warning"
                            );
                        }
                        Ok(SpeakMessage::Error(error)) => {
                            // Deepgram gave up on this text: end at once
                            // rather than wait for a close or the idle
                            // timeout. The socket closes with the stream.
                            let err = speech_error(&error);
                            tracing::warn!(
                                provider = PROVIDER,
                                err_code = error.err_code,
                                variant = error.variant,
                                description = error.description,
                                message = error.message,
                                err_msg = error.err_msg,
                                "Deepgram reported a speech error"
                            );
                            return Some((Err(err), None));
                        }
                        Ok(SpeakMessage::Metadata(wire::Metadata { request_id })) => {
                            tracing::debug!(provider = PROVIDER, request_id, "speech metadata");
                        }
                        Ok(SpeakMessage::Cleared | SpeakMessage::Other) => {}
                        Err(err) => {
                            tracing::warn!(provider = PROVIDER, error = %err, "undecodable speech message");
                            let err = ProviderError::InvalidResponse {
                                provider: PROVIDER,
                                source: Box::new(err),
                            };
                            return Some((Err(err), None));
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    tracing::warn!(
                        provider = PROVIDER,
                        code = frame.as_ref().map(|f| u16::from(f.code)),
                        reason = frame.as_ref().map(|f| f.reason.as_str()),
                        "Deepgram closed the speech connection before Flushed"
                    );
                    return Some((Err(ProviderError::StreamClosed { provider: PROVIDER }), None));
                }
                Some(Ok(_control_or_empty)) => {}
                Some(Err(err)) => {
                    tracing::warn!(provider = PROVIDER, error = %err, "speech connection lost");
                    return Some((Err(ProviderError::StreamClosed { provider: PROVIDER }), None));
                }
                None => {
                    tracing::warn!(provider = PROVIDER, "speech connection ended before Flushed");
                    return Some((Err(ProviderError::StreamClosed { provider: PROVIDER }), None));
                }
            }
        }
    })
    .boxed()
}

/// A Deepgram `Error` message as the stream's last item: `Rejected` with
/// Deepgram's explanation, or `InvalidResponse` when it gives none.
fn speech_error(error: &wire::ErrorMessage) -> ProviderError {
    match error.detail() {
        Some(detail) => ProviderError::Rejected {
            provider: PROVIDER,
            status: None,
            detail,
        },
        None => ProviderError::InvalidResponse {
            provider: PROVIDER,
            source: "an Error message without code or description".into(),
        },
    }
}

/// `body` without empty chunks, failing with `Timeout` when nothing arrives
/// for `idle`, and ending after its first error.
fn with_idle_timeout(
    body: BoxStream<'static, Result<Bytes, ProviderError>>,
    idle: std::time::Duration,
) -> AudioChunkStream {
    stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        loop {
            match tokio::time::timeout(idle, body.next()).await {
                Err(_elapsed) => {
                    return Some((Err(ProviderError::Timeout { provider: PROVIDER }), None));
                }
                Ok(None) => return None,
                Ok(Some(Ok(chunk))) if chunk.is_empty() => {}
                Ok(Some(Ok(chunk))) => return Some((Ok(chunk), Some(body))),
                Ok(Some(Err(err))) => return Some((Err(err), None)),
            }
        }
    })
    .boxed()
}

/// Whether a failed WebSocket open should be retried over REST: only when
/// trying again could work (timeout, 5xx, 429, connection error). Refused
/// credentials or requests would be refused over REST too, and an open
/// circuit is the same breaker.
const fn worth_rest(err: &ProviderError) -> bool {
    err.is_retryable()
}

#[async_trait]
impl TextToSpeech for DeepgramClient {
    async fn synthesize(&self, request: &SpeechRequest) -> Result<AudioChunkStream, ProviderError> {
        if request.text.trim().is_empty() {
            return Ok(stream::empty().boxed());
        }
        match self.tts.transport {
            TtsTransport::Rest => self.speak_rest(request).await,
            TtsTransport::Websocket => match self.speak_ws(request).await {
                Err(err) if self.tts.rest_fallback && worth_rest(&err) => {
                    tracing::warn!(
                        provider = PROVIDER,
                        error = %err,
                        "speech WebSocket unavailable: falling back to REST"
                    );
                    self.speak_rest(request).await
                }
                result => result,
            },
        }
    }
}
