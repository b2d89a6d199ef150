//! Deepgram JSON shapes: control messages out, server messages in. Private to
//! the crate; converted to domain types in `stt` and `tts`.

use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- live STT

/// Text control frames of a live transcription session.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "type")]
pub(crate) enum ListenControl {
    /// Keeps an idle session open (no reply).
    KeepAlive,
    /// Flush, send the last results and `Metadata`, then close.
    CloseStream,
}

/// What a live transcription session sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum ListenMessage {
    /// A transcript, interim or final.
    Results(Results),
    /// No word for `utterance_end_ms` after the last final word.
    UtteranceEnd(UtteranceEnd),
    /// Voice activity began (`vad_events=true`).
    SpeechStarted(SpeechStarted),
    /// Session summary (after `CloseStream`).
    Metadata(Metadata),
    /// The provider reports a problem (it closes the connection next).
    Error(ErrorMessage),
    /// Anything newer than this adapter.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Results {
    /// Segment start, seconds from the connection's first audio.
    #[serde(default)]
    pub start: f64,
    /// Segment length, seconds.
    #[serde(default)]
    pub duration: f64,
    #[serde(default)]
    pub is_final: bool,
    #[serde(default)]
    pub speech_final: bool,
    pub channel: Channel,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Channel {
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Alternative {
    #[serde(default)]
    pub transcript: String,
    #[serde(default)]
    pub confidence: f64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UtteranceEnd {
    /// End of the last word, seconds.
    #[serde(default)]
    pub last_word_end: f64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SpeechStarted {
    /// Seconds.
    #[serde(default)]
    pub timestamp: f64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Deepgram's error message; its fields are not documented for certain, so
/// all are optional and any JSON value is read as text (a numeric code
/// must not make the whole message undecodable).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorMessage {
    #[serde(default, deserialize_with = "lenient")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub variant: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub err_code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub err_msg: Option<String>,
}

/// Longest detail taken from an error message.
const MAX_DETAIL: usize = 300;

impl ErrorMessage {
    /// `[code] explanation` as `iace-http` writes details (the code first, so
    /// no cut loses it), at most 300 characters; `None` when the message
    /// carries neither. Only Deepgram's own words: nothing of ours (no key,
    /// no request) goes in.
    pub(crate) fn detail(&self) -> Option<String> {
        let code = first_text([&self.err_code, &self.variant]);
        let text = first_text([&self.description, &self.message, &self.err_msg]);
        let detail = match (code, text) {
            (Some(code), Some(text)) => format!("[{code}] {text}"),
            (Some(code), None) => format!("[{code}]"),
            (None, Some(text)) => text.to_owned(),
            (None, None) => return None,
        };
        Some(detail.chars().take(MAX_DETAIL).collect())
    }
}

/// The first field that holds more than blanks, trimmed.
fn first_text<const N: usize>(fields: [&Option<String>; N]) -> Option<&str> {
    fields
        .into_iter()
        .filter_map(|f| f.as_deref().map(str::trim))
        .find(|f| !f.is_empty())
}

/// Any JSON value as text: a string as is, `null` as nothing, anything else
/// as its JSON.
fn lenient<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text),
        other => Some(other.to_string()),
    })
}

// ---------------------------------------------------------------- TTS

/// Text frames of a streaming synthesis.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "type")]
pub(crate) enum SpeakControl<'a> {
    /// Text to add to the buffer.
    Speak {
        /// The text.
        text: &'a str,
    },
    /// Synthesise what is buffered; `Flushed` follows the audio.
    Flush,
    /// End the session.
    Close,
}

/// What a streaming synthesis sends besides audio.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum SpeakMessage {
    /// All audio of the flushed text was sent.
    Flushed {
        #[serde(default)]
        sequence_id: Option<u64>,
    },
    /// The buffers were cleared.
    Cleared,
    /// Something to know (e.g. too many flushes).
    Warning {
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        code: Option<String>,
    },
    /// Session details.
    Metadata(Metadata),
    /// The provider reports a problem.
    Error(ErrorMessage),
    /// Anything newer than this adapter.
    #[serde(other)]
    Other,
}

/// The body of `POST /v1/speak`.
#[derive(Debug, Serialize)]
pub(crate) struct SpeakBody<'a> {
    pub text: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("json")
    }

    #[test]
    fn control_frames_are_tagged() {
        assert_eq!(json(&ListenControl::KeepAlive), r#"{"type":"KeepAlive"}"#);
        assert_eq!(
            json(&ListenControl::CloseStream),
            r#"{"type":"CloseStream"}"#
        );
        assert_eq!(
            json(&SpeakControl::Speak { text: "Hi" }),
            r#"{"type":"Speak","text":"Hi"}"#
        );
        assert_eq!(json(&SpeakControl::Flush), r#"{"type":"Flush"}"#);
        assert_eq!(json(&SpeakControl::Close), r#"{"type":"Close"}"#);
    }

    #[test]
    fn documented_results_parse() {
        let text = r#"{"type":"Results","channel_index":[0,1],"duration":1.2,"start":3.4,
            "is_final":true,"speech_final":true,"from_finalize":false,
            "channel":{"alternatives":[{"transcript":"hello there","confidence":0.98,"words":[]}]},
            "metadata":{"request_id":"r"}}"#;
        let ListenMessage::Results(results) = serde_json::from_str(text).expect("results") else {
            panic!("not results");
        };
        assert!(results.is_final && results.speech_final);
        assert_eq!(results.channel.alternatives[0].transcript, "hello there");
    }

    #[test]
    fn unknown_types_are_tolerated_and_garbage_is_not() {
        assert!(matches!(
            serde_json::from_str::<ListenMessage>(r#"{"type":"Open"}"#),
            Ok(ListenMessage::Other)
        ));
        assert!(serde_json::from_str::<ListenMessage>("not json").is_err());
        assert!(serde_json::from_str::<ListenMessage>(r#"{"transcript":"x"}"#).is_err());
        assert!(matches!(
            serde_json::from_str::<SpeakMessage>(r#"{"type":"Flushed","sequence_id":0}"#),
            Ok(SpeakMessage::Flushed {
                sequence_id: Some(0)
            })
        ));
    }

    fn error_detail(text: &str) -> Option<String> {
        match serde_json::from_str::<SpeakMessage>(text).expect("an error message") {
            SpeakMessage::Error(error) => error.detail(),
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn error_messages_are_read_whatever_their_fields() {
        assert_eq!(
            error_detail(
                r#"{"type":"Error","err_code":"INVALID_INPUT","err_msg":"Text too long.","description":"The text exceeds 2000 characters."}"#
            )
            .as_deref(),
            Some("[INVALID_INPUT] The text exceeds 2000 characters.")
        );
        assert_eq!(
            error_detail(r#"{"type":"Error","variant":"DATA-0000","message":" bad audio "}"#)
                .as_deref(),
            Some("[DATA-0000] bad audio")
        );
        assert_eq!(
            error_detail(r#"{"type":"Error","err_code":1011,"err_msg":null}"#).as_deref(),
            Some("[1011]"),
            "a numeric code is still read"
        );
        assert_eq!(error_detail(r#"{"type":"Error","description":"  "}"#), None);
        assert_eq!(error_detail(r#"{"type":"Error"}"#), None);
        let long = format!(r#"{{"type":"Error","description":"{}"}}"#, "x".repeat(400));
        assert_eq!(error_detail(&long).map(|d| d.chars().count()), Some(300));
    }
}
