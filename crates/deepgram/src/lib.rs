//! # iace-deepgram — the Deepgram adapter
//!
//! [`DeepgramClient`] implements the domain's speech ports:
//! - `SpeechToText` over the live transcription WebSocket (`/v1/listen`):
//!   one task per session owns the socket, audio in through a bounded sink,
//!   interim / final / speech-started / utterance-end events out; `KeepAlive`
//!   while no audio flows, `CloseStream` when the audio ends, reconnection
//!   with replay of unfinalised audio when the connection drops.
//!   **Drain a session's events independently of writing its audio** (in
//!   another task or a `select!`): while the event channel is full the
//!   session stops reading Deepgram's messages but keeps taking audio and
//!   sending `KeepAlive`, so a slow reader never stalls the audio; a reader
//!   that never reads leaves Deepgram's messages unread until it drops the
//!   connection;
//! - `TextToSpeech` over the Aura streaming WebSocket (`/v1/speak`), with
//!   REST (`POST /v1/speak`, raw audio) as a fallback or as the configured
//!   transport. Dropping an audio stream cancels its synthesis (barge-in).
//!
//! WebSockets are opened in one place (the `ws` module): `Authorization:
//! Token …`, `x-request-id` and `traceparent`, a connect timeout, and the
//! provider's circuit breaker — the same breaker as the REST calls, which go
//! through `iace-http`. Every failure leaves as the domain's
//! `ProviderError` naming `deepgram`.
//!
//! **Must not depend on** other adapter crates, the app crate or axum; wire
//! structs stay private.

mod client;
pub mod config;
mod stt;
mod tts;
mod wire;
mod ws;

pub use client::DeepgramClient;
pub use config::{DeepgramConfig, TtsTransport};
