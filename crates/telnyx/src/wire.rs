//! Telnyx JSON shapes: command bodies out, responses and webhooks in. Private
//! to the crate; converted to domain types at the edges.

use serde::{Deserialize, Serialize};

/// Media-stream settings shared by dial, answer and streaming_start.
#[derive(Debug, Serialize, Default)]
pub(crate) struct StreamFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_track: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_codec: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_bidirectional_mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_bidirectional_codec: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_bidirectional_sampling_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_auth_token: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Dial<'a> {
    pub connection_id: &'a str,
    pub to: &'a str,
    pub from: &'a str,
    pub client_state: &'a str,
    pub command_id: &'a str,
    pub timeout_secs: u64,
    pub answering_machine_detection: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<&'a str>,
    #[serde(flatten)]
    pub stream: StreamFields<'a>,
}

/// Any call command: `client_state` and `command_id` plus its own fields.
#[derive(Debug, Serialize)]
pub(crate) struct Command<'a, T: Serialize> {
    pub client_state: &'a str,
    pub command_id: &'a str,
    #[serde(flatten)]
    pub fields: T,
}

#[derive(Debug, Serialize)]
pub(crate) struct Transfer<'a> {
    pub to: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Speak<'a> {
    pub payload: &'a str,
    pub payload_type: &'static str,
    pub voice: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_level: Option<&'static str>,
    pub language: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Playback<'a> {
    pub audio_url: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct StopPlayback {
    pub stop: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Record {
    pub channels: &'static str,
    pub format: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Nothing {}

#[derive(Debug, Deserialize)]
pub(crate) struct Data<T> {
    pub data: T,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Dialled {
    pub call_control_id: String,
    #[serde(default)]
    pub call_session_id: Option<String>,
}

// ---------------------------------------------------------------- webhooks

#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventData {
    pub id: String,
    pub event_type: String,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// Read field by field: payloads differ per event type (and some carry
    /// objects where others carry strings), and none may fail the envelope.
    #[serde(default)]
    pub payload: serde_json::Value,
}
