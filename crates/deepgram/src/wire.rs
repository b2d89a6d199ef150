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
/// all are optional.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorMessage {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
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
}
