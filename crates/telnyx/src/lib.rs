//! # iace-telnyx — the Telnyx adapter
//!
//! - [`TelnyxGateway`]: the domain's `TelephonyGateway` over Call Control v2
//!   (dial, answer with a bidirectional media stream, hang up, transfer,
//!   speak, playback, stop, streaming start/stop, record), on the resilient
//!   outbound stack of `iace-http`. `client_state` carries our call id;
//!   `command_id` makes retries safe; "call already ended" (422 / 90018) is a
//!   benign outcome, not an error.
//! - [`webhook`]: Ed25519 verification of webhooks (over
//!   `"{timestamp}|{raw body}"`, ±300 s) and parsing into the domain's
//!   provider-neutral `TelephonyEvent`.
//! - [`media`]: the media-stream WebSocket frame codec.
//!
//! **Must not depend on** other adapter crates, the app crate or axum; wire
//! structs stay private.

mod client;
pub mod config;
pub mod media;
pub mod webhook;
mod wire;

pub use client::{TelnyxGateway, call_id_from_client_state, client_state};
pub use config::TelnyxConfig;
pub use webhook::{WebhookError, WebhookVerifier, parse_event};
