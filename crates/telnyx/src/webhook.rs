//! Webhook verification (Ed25519 over `"{timestamp}|{raw body}"`, ±300 s)
//! and parsing into the domain's provider-neutral [`TelephonyEvent`].
//!
//! Verify first, on the raw bytes exactly as received; parse only what
//! verified.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use iace_domain::PhoneNumber;
use iace_domain::call::{CallDirection, HangupCause, HangupSource};
use iace_domain::ports::{
    MachineDetectionResult, PlaybackStatus, TelephonyEvent, TelephonyEventKind,
};

use crate::client::call_id_from_client_state;
use crate::wire;

/// The signature header (base64 of 64 bytes).
pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
/// The timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A signature header is missing.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp is not a Unix time in seconds.
    #[error("the timestamp is not a Unix time")]
    BadTimestamp,
    /// The timestamp is too far from now (replayed or clock-skewed).
    #[error("the timestamp is {skew_secs} s from now (tolerance {tolerance_secs} s)")]
    OutsideTolerance {
        /// Distance from now.
        skew_secs: i64,
        /// Allowed distance.
        tolerance_secs: u64,
    },
    /// The signature is not base64 of 64 bytes.
    #[error("the signature is not base64 of 64 bytes")]
    MalformedSignature,
    /// The signature does not match the body.
    #[error("the signature does not match")]
    InvalidSignature,
    /// The body is not a Telnyx event.
    #[error("the body is not a Telnyx event")]
    Malformed(#[source] serde_json::Error),
}

impl WebhookError {
    /// A stable snake_case code for problem responses and metrics.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_signature",
            Self::BadTimestamp => "invalid_timestamp",
            Self::OutsideTolerance { .. } => "stale_timestamp",
            Self::MalformedSignature | Self::InvalidSignature => "invalid_signature",
            Self::Malformed(_) => "malformed_event",
        }
    }
}

/// The configured public key is unusable.
#[derive(Debug, thiserror::Error)]
#[error("the Telnyx public key must be base64 of 32 bytes (an Ed25519 key)")]
pub struct InvalidPublicKey;

/// Checks webhook signatures with the account's public key.
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    key: VerifyingKey,
    tolerance_secs: u64,
}

impl WebhookVerifier {
    /// A verifier for `public_key` (base64 of 32 bytes).
    ///
    /// # Errors
    /// [`InvalidPublicKey`].
    pub fn new(public_key: &str, tolerance_secs: u64) -> Result<Self, InvalidPublicKey> {
        let bytes = STANDARD
            .decode(public_key.trim())
            .map_err(|_| InvalidPublicKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| InvalidPublicKey)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| InvalidPublicKey)?;
        Ok(Self {
            key,
            tolerance_secs,
        })
    }

    /// Verifies `body` against the two headers' values at `now` (Unix s).
    ///
    /// # Errors
    /// [`WebhookError`] for a missing or malformed header, a timestamp out of
    /// tolerance either way, or a signature that does not match.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), WebhookError> {
        let signature = signature.ok_or(WebhookError::MissingHeader(SIGNATURE_HEADER))?;
        let timestamp = timestamp.ok_or(WebhookError::MissingHeader(TIMESTAMP_HEADER))?;
        let timestamp = timestamp.trim();
        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(WebhookError::BadTimestamp);
        }
        let at: i64 = timestamp.parse().map_err(|_| WebhookError::BadTimestamp)?;
        let skew = now.saturating_sub(at);
        if skew.unsigned_abs() > self.tolerance_secs {
            return Err(WebhookError::OutsideTolerance {
                skew_secs: skew,
                tolerance_secs: self.tolerance_secs,
            });
        }
        let signature = STANDARD
            .decode(signature.trim())
            .map_err(|_| WebhookError::MalformedSignature)?;
        let signature: [u8; 64] = signature
            .try_into()
            .map_err(|_| WebhookError::MalformedSignature)?;
        let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.push(b'|');
        message.extend_from_slice(body);
        self.key
            .verify(&message, &Signature::from_bytes(&signature))
            .map_err(|_| WebhookError::InvalidSignature)
    }
}

fn playback_status(raw: Option<&str>) -> PlaybackStatus {
    match raw.unwrap_or("completed") {
        "completed" => PlaybackStatus::Completed,
        "call_hangup" | "cancelled" | "cancelled_amd" => PlaybackStatus::Stopped,
        _ => PlaybackStatus::Failed,
    }
}

fn phone(raw: Option<&str>) -> Option<PhoneNumber> {
    raw.and_then(|r| PhoneNumber::parse(r).ok())
}

/// A string field of the payload; anything else (absent, null, an object)
/// is `None`.
fn text<'a>(payload: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    payload.get(key).and_then(serde_json::Value::as_str)
}

/// Parses a verified webhook body.
///
/// Unknown event types parse to [`TelephonyEventKind::Other`] (recorded and
/// acknowledged, never refused); so do known types missing a field this
/// version needs, except where a safe reading exists (a hang-up without a
/// cause still ends the call).
///
/// # Errors
/// [`WebhookError::Malformed`] when the body is not a Telnyx event envelope.
pub fn parse_event(body: &[u8]) -> Result<TelephonyEvent, WebhookError> {
    let envelope: wire::Envelope = serde_json::from_slice(body).map_err(WebhookError::Malformed)?;
    let data = envelope.data;
    let p = &data.payload;
    let field = |key: &str| text(p, key);
    let kind = match data.event_type.as_str() {
        "call.initiated" => TelephonyEventKind::Initiated {
            direction: if field("direction") == Some("incoming") {
                CallDirection::Inbound
            } else {
                CallDirection::Outbound
            },
            from: phone(field("from")),
            to: phone(field("to")),
        },
        "call.answered" => TelephonyEventKind::Answered,
        "call.hangup" => TelephonyEventKind::HungUp {
            cause: HangupCause::from_provider(field("hangup_cause").unwrap_or("unspecified")),
            source: HangupSource::from_provider(field("hangup_source").unwrap_or("unknown")),
            sip_code: p.get("sip_hangup_cause").and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            }),
        },
        "call.bridged" => TelephonyEventKind::Bridged,
        "call.machine.detection.ended" | "call.machine.premium.detection.ended" => {
            let result = match field("result") {
                Some("human" | "human_residence" | "human_business") => {
                    MachineDetectionResult::Human
                }
                Some("machine" | "fax_detected") => MachineDetectionResult::Machine,
                _ => MachineDetectionResult::NotSure,
            };
            TelephonyEventKind::MachineDetected { result }
        }
        "call.machine.greeting.ended" | "call.machine.premium.greeting.ended" => {
            TelephonyEventKind::MachineGreetingEnded {
                beep: field("result") == Some("beep_detected"),
            }
        }
        "call.dtmf.received" => match field("digit")
            .and_then(|d| d.chars().next())
            .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
        {
            Some(digit) => TelephonyEventKind::Dtmf { digit },
            None => TelephonyEventKind::Other,
        },
        "streaming.started" => TelephonyEventKind::StreamingStarted,
        "streaming.stopped" => TelephonyEventKind::StreamingStopped,
        "streaming.failed" => TelephonyEventKind::StreamingFailed {
            reason: field("failure_reason")
                .unwrap_or("unspecified")
                .chars()
                .take(200)
                .collect(),
        },
        "call.speak.ended" => TelephonyEventKind::SpeakEnded {
            status: playback_status(field("status")),
        },
        "call.playback.ended" => TelephonyEventKind::PlaybackEnded {
            status: playback_status(field("status")),
        },
        "call.recording.saved" => {
            let urls = p.get("recording_urls").unwrap_or(&serde_json::Value::Null);
            TelephonyEventKind::RecordingSaved {
                mp3_url: text(urls, "mp3").map(str::to_owned),
                wav_url: text(urls, "wav").map(str::to_owned),
            }
        }
        _ => TelephonyEventKind::Other,
    };
    Ok(TelephonyEvent {
        call_id: field("client_state").and_then(call_id_from_client_state),
        provider_call_id: field("call_control_id").map(str::to_owned),
        provider_session_id: field("call_session_id").map(str::to_owned),
        id: data.id,
        event_type: data.event_type.chars().take(100).collect(),
        occurred_at: data.occurred_at,
        kind,
    })
}
