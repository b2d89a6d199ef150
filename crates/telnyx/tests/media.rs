//! The media-stream frame codec on the documented frames.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use iace_domain::CallId;
use iace_domain::ports::{AudioEncoding, AudioFormat};
use iace_telnyx::client_state;
use iace_telnyx::media::{InboundFrame, OutboundFrame, Track, decode};
use proptest::prelude::*;
use serde_json::json;

#[test]
fn inbound_frames_decode() {
    assert_eq!(
        decode(r#"{"event":"connected","version":"1.0.0"}"#).expect("connected"),
        InboundFrame::Connected
    );
    let call = CallId::new();
    let start = json!({"event":"start","sequence_number":"1","stream_id":"s-1",
        "start":{"user_id":"u","call_control_id":"v3:abc","call_session_id":"cs",
                 "from":"+14155550100","to":"+442079460958","client_state": client_state(call),
                 "custom_parameters":{"k":"v"},
                 "media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}}});
    match decode(&start.to_string()).expect("start") {
        InboundFrame::Start(start) => {
            assert_eq!(start.stream_id, "s-1");
            assert_eq!(start.call_control_id.as_deref(), Some("v3:abc"));
            assert_eq!(start.call_id, Some(call));
            assert_eq!(start.format, AudioFormat::TELEPHONY);
        }
        other => panic!("{other:?}"),
    }
    let audio = vec![0xffu8; 160];
    let media = json!({"event":"media","sequence_number":"4","stream_id":"s-1",
        "media":{"track":"inbound","chunk":"2","timestamp":"40","payload": STANDARD.encode(&audio)}});
    match decode(&media.to_string()).expect("media") {
        InboundFrame::Media(chunk) => {
            assert_eq!(chunk.track, Track::Inbound);
            assert_eq!(
                (chunk.sequence, chunk.chunk, chunk.timestamp_ms),
                (Some(4), Some(2), Some(40))
            );
            assert_eq!(chunk.payload, Bytes::from(audio));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decode(r#"{"event":"dtmf","stream_id":"s","dtmf":{"digit":"7"}}"#).expect("dtmf"),
        InboundFrame::Dtmf { digit: '7' }
    );
    assert_eq!(
        decode(r#"{"event":"mark","stream_id":"s","mark":{"name":"utt-42"}}"#).expect("mark"),
        InboundFrame::Mark {
            name: "utt-42".into()
        }
    );
    assert_eq!(
        decode(r#"{"event":"stop","stream_id":"s","stop":{"call_control_id":"v3:abc"}}"#)
            .expect("stop"),
        InboundFrame::Stop
    );
    assert!(matches!(
        decode(r#"{"event":"error","payload":{"code":100003,"title":"malformed frame"}}"#).expect("error"),
        InboundFrame::Error { detail } if detail.contains("malformed frame")
    ));
    assert_eq!(
        decode(r#"{"event":"something_new"}"#).expect("unknown"),
        InboundFrame::Unknown {
            event: "something_new".into()
        }
    );
    // An A-law stream reports its format.
    let alaw = json!({"event":"start","stream_id":"s","start":{"media_format":{"encoding":"PCMA","sample_rate":8000,"channels":1}}});
    assert!(matches!(
        decode(&alaw.to_string()).expect("start"),
        InboundFrame::Start(s) if s.format.encoding == AudioEncoding::Alaw
    ));
}

#[test]
fn bad_frames_are_errors() {
    for bad in [
        "not json",
        r#"{"no_event":1}"#,
        r#"{"event":"media","media":{"payload":"***"}}"#,
        r#"{"event":"media"}"#,
        r#"{"event":"dtmf","dtmf":{"digit":"x"}}"#,
    ] {
        assert!(decode(bad).is_err(), "{bad}");
    }
}

#[test]
fn outbound_frames_encode_as_documented() {
    let audio = Bytes::from_static(&[1, 2, 3]);
    let media: serde_json::Value =
        serde_json::from_str(&OutboundFrame::Media(audio).encode()).expect("json");
    assert_eq!(media, json!({"event":"media","media":{"payload":"AQID"}}));
    let mark: serde_json::Value =
        serde_json::from_str(&OutboundFrame::Mark("utt-1".into()).encode()).expect("json");
    assert_eq!(mark, json!({"event":"mark","mark":{"name":"utt-1"}}));
    let clear: serde_json::Value =
        serde_json::from_str(&OutboundFrame::Clear.encode()).expect("json");
    assert_eq!(clear, json!({"event":"clear"}));
}

proptest! {
    #[test]
    fn media_payloads_round_trip(audio in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let out: serde_json::Value = serde_json::from_str(&OutboundFrame::Media(Bytes::from(audio.clone())).encode()).expect("json");
        let inbound = json!({"event":"media","media":{"payload": out["media"]["payload"]}});
        match decode(&inbound.to_string()).expect("decode") {
            InboundFrame::Media(chunk) => prop_assert_eq!(chunk.payload, Bytes::from(audio)),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        let _ = decode(&text);
    }
}
