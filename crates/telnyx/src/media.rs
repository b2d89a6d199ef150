//! The Telnyx media-stream WebSocket frames: `connected`, `start`, `media`,
//! `dtmf`, `mark`, `stop`, `error` in; `media`, `mark`, `clear` out. Every
//! frame is a JSON text message; audio is base64 of raw RTP payload (no RTP
//! header).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use iace_domain::CallId;
use iace_domain::ports::{AudioEncoding, AudioFormat};
use serde::Deserialize;

use crate::client::call_id_from_client_state;

/// Which leg a media frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The caller's audio.
    Inbound,
    /// Audio played to the caller.
    Outbound,
}

/// The stream's opening frame.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStart {
    /// Telnyx's stream id.
    pub stream_id: String,
    /// The call's `call_control_id`.
    pub call_control_id: Option<String>,
    /// Our call id, from `client_state`.
    pub call_id: Option<CallId>,
    /// Audio format of the frames that follow.
    pub format: AudioFormat,
}

/// A piece of audio.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaChunk {
    /// Which leg.
    pub track: Track,
    /// Telnyx's ordering fields (frames may arrive out of order).
    pub sequence: Option<u64>,
    /// The chunk number.
    pub chunk: Option<u64>,
    /// Milliseconds into the stream.
    pub timestamp_ms: Option<u64>,
    /// The audio.
    pub payload: Bytes,
}

/// A frame from Telnyx.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundFrame {
    /// The socket is up.
    Connected,
    /// The stream starts.
    Start(StreamStart),
    /// Audio.
    Media(MediaChunk),
    /// A key press.
    Dtmf {
        /// The key.
        digit: char,
    },
    /// A mark we sent has been played (or cleared).
    Mark {
        /// Its name.
        name: String,
    },
    /// The stream ends.
    Stop,
    /// Telnyx reports an error on the stream.
    Error {
        /// What it said.
        detail: String,
    },
    /// A frame this version does not know (ignored).
    Unknown {
        /// Its `event`.
        event: String,
    },
}

/// A frame that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not JSON, or a known frame without its fields.
    #[error("invalid media frame")]
    Json(#[source] serde_json::Error),
    /// The audio is not base64.
    #[error("media payload is not base64")]
    Payload,
    /// A DTMF frame without a valid key.
    #[error("dtmf frame without a key")]
    Dtmf,
}

/// Frames received are at most this large (a 30 s chunk of 8 kHz μ-law,
/// base64) — the caller should refuse bigger WebSocket messages.
pub const MAX_FRAME_BYTES: usize = 400 * 1024;

#[derive(Deserialize)]
struct Raw {
    event: String,
    #[serde(default)]
    sequence_number: Option<String>,
    #[serde(default)]
    stream_id: Option<String>,
    #[serde(default)]
    start: Option<RawStart>,
    #[serde(default)]
    media: Option<RawMedia>,
    #[serde(default)]
    dtmf: Option<RawDtmf>,
    #[serde(default)]
    mark: Option<RawMark>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawStart {
    #[serde(default)]
    call_control_id: Option<String>,
    #[serde(default)]
    client_state: Option<String>,
    #[serde(default)]
    media_format: Option<RawFormat>,
}

#[derive(Deserialize)]
struct RawFormat {
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    sample_rate: Option<u32>,
    #[serde(default)]
    channels: Option<u8>,
}

#[derive(Deserialize)]
struct RawMedia {
    #[serde(default)]
    track: Option<String>,
    #[serde(default)]
    chunk: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    payload: String,
}

#[derive(Deserialize)]
struct RawDtmf {
    digit: String,
}

#[derive(Deserialize)]
struct RawMark {
    name: String,
}

fn number(raw: Option<&str>) -> Option<u64> {
    raw.and_then(|r| r.trim().parse().ok())
}

/// Decodes one text frame.
///
/// # Errors
/// [`FrameError`].
pub fn decode(text: &str) -> Result<InboundFrame, FrameError> {
    let raw: Raw = serde_json::from_str(text).map_err(FrameError::Json)?;
    Ok(match raw.event.as_str() {
        "connected" => InboundFrame::Connected,
        "start" => {
            let start = raw.start.unwrap_or(RawStart {
                call_control_id: None,
                client_state: None,
                media_format: None,
            });
            let format = start.media_format.map_or(AudioFormat::TELEPHONY, |f| {
                let encoding = match f.encoding.as_deref() {
                    Some("PCMA") => AudioEncoding::Alaw,
                    Some("L16") => AudioEncoding::Linear16,
                    _ => AudioEncoding::Mulaw,
                };
                AudioFormat {
                    encoding,
                    sample_rate: f.sample_rate.unwrap_or(8_000),
                    channels: f.channels.unwrap_or(1),
                }
            });
            InboundFrame::Start(StreamStart {
                stream_id: raw.stream_id.unwrap_or_default(),
                call_control_id: start.call_control_id,
                call_id: start
                    .client_state
                    .as_deref()
                    .and_then(call_id_from_client_state),
                format,
            })
        }
        "media" => {
            let media = raw.media.ok_or(FrameError::Payload)?;
            let payload = STANDARD
                .decode(media.payload.trim())
                .map_err(|_| FrameError::Payload)?;
            InboundFrame::Media(MediaChunk {
                track: if media.track.as_deref() == Some("outbound") {
                    Track::Outbound
                } else {
                    Track::Inbound
                },
                sequence: number(raw.sequence_number.as_deref()),
                chunk: number(media.chunk.as_deref()),
                timestamp_ms: number(media.timestamp.as_deref()),
                payload: Bytes::from(payload),
            })
        }
        "dtmf" => {
            let digit = raw
                .dtmf
                .and_then(|d| d.digit.chars().next())
                .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
                .ok_or(FrameError::Dtmf)?;
            InboundFrame::Dtmf { digit }
        }
        "mark" => InboundFrame::Mark {
            name: raw.mark.map(|m| m.name).unwrap_or_default(),
        },
        "stop" => InboundFrame::Stop,
        "error" => InboundFrame::Error {
            detail: raw
                .payload
                .map(|p| p.to_string())
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect(),
        },
        other => InboundFrame::Unknown {
            event: other.chars().take(50).collect(),
        },
    })
}

/// A frame to Telnyx (bidirectional streams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundFrame {
    /// Audio to play (raw, in the negotiated codec).
    Media(Bytes),
    /// Echoed back when the audio before it has played.
    Mark(String),
    /// Stop playback and drop queued audio (barge-in).
    Clear,
}

impl OutboundFrame {
    /// The JSON text message.
    #[must_use]
    pub fn encode(&self) -> String {
        match self {
            Self::Media(audio) => serde_json::json!({
                "event": "media",
                "media": {"payload": STANDARD.encode(audio)}
            })
            .to_string(),
            Self::Mark(name) => serde_json::json!({
                "event": "mark",
                "mark": {"name": name}
            })
            .to_string(),
            Self::Clear => r#"{"event":"clear"}"#.to_owned(),
        }
    }
}
