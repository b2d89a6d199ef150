//! Webhook verification (every way a request can be forged or stale) and
//! parsing of the documented event payloads.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use iace_domain::CallId;
use iace_domain::call::{CallDirection, HangupCause, HangupSource};
use iace_domain::ports::{MachineDetectionResult, PlaybackStatus, TelephonyEventKind};
use iace_telnyx::client_state;
use iace_telnyx::webhook::{WebhookError, WebhookVerifier, parse_event};
use proptest::prelude::*;
use serde_json::json;

const NOW: i64 = 1_764_000_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn verifier(signing: &SigningKey) -> WebhookVerifier {
    WebhookVerifier::new(&STANDARD.encode(signing.verifying_key().as_bytes()), 300)
        .expect("verifier")
}

fn sign(signing: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut message = format!("{timestamp}|").into_bytes();
    message.extend_from_slice(body);
    STANDARD.encode(signing.sign(&message).to_bytes())
}

const BODY: &[u8] = br#"{"data":{"record_type":"event","event_type":"call.answered","id":"e1","occurred_at":"2026-11-26T07:00:00.000000Z","payload":{"call_control_id":"v3:abc"}}}"#;

#[test]
fn a_valid_signature_verifies() {
    let signing = key(7);
    let ts = NOW.to_string();
    let sig = sign(&signing, &ts, BODY);
    verifier(&signing)
        .verify(Some(&sig), Some(&ts), BODY, NOW)
        .expect("valid");
    // At the tolerance's edges, both ways.
    for at in [NOW - 300, NOW + 300] {
        let ts = at.to_string();
        let sig = sign(&signing, &ts, BODY);
        verifier(&signing)
            .verify(Some(&sig), Some(&ts), BODY, NOW)
            .expect("within tolerance");
    }
}

#[test]
fn a_tampered_body_fails() {
    let signing = key(7);
    let ts = NOW.to_string();
    let sig = sign(&signing, &ts, BODY);
    let mut tampered = BODY.to_vec();
    tampered[60] ^= 1;
    let err = verifier(&signing)
        .verify(Some(&sig), Some(&ts), &tampered, NOW)
        .expect_err("tampered");
    assert!(matches!(err, WebhookError::InvalidSignature), "{err:?}");
    assert_eq!(err.code(), "invalid_signature");
    // Re-serialised JSON (same meaning, other bytes) fails too: the raw body is signed.
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(BODY).expect("json"))
            .expect("ser");
    assert_ne!(reserialised, BODY);
    assert!(
        verifier(&signing)
            .verify(Some(&sig), Some(&ts), &reserialised, NOW)
            .is_err()
    );
}

#[test]
fn a_signature_by_another_key_fails() {
    let ts = NOW.to_string();
    let sig = sign(&key(8), &ts, BODY);
    let err = verifier(&key(7))
        .verify(Some(&sig), Some(&ts), BODY, NOW)
        .expect_err("wrong key");
    assert!(matches!(err, WebhookError::InvalidSignature), "{err:?}");
}

#[test]
fn stale_and_future_timestamps_fail() {
    let signing = key(7);
    for at in [NOW - 301, NOW + 301, 0] {
        let ts = at.to_string();
        let sig = sign(&signing, &ts, BODY);
        let err = verifier(&signing)
            .verify(Some(&sig), Some(&ts), BODY, NOW)
            .expect_err("outside tolerance");
        assert!(
            matches!(err, WebhookError::OutsideTolerance { .. }),
            "{err:?}"
        );
        assert_eq!(err.code(), "stale_timestamp");
    }
    // The signed timestamp is the header's: a valid signature replayed with a
    // fresh timestamp no longer matches.
    let old = (NOW - 3_600).to_string();
    let sig = sign(&signing, &old, BODY);
    let err = verifier(&signing)
        .verify(Some(&sig), Some(&NOW.to_string()), BODY, NOW)
        .expect_err("replay");
    assert!(matches!(err, WebhookError::InvalidSignature), "{err:?}");
}

#[test]
fn missing_and_malformed_headers_fail() {
    let signing = key(7);
    let v = verifier(&signing);
    let ts = NOW.to_string();
    let sig = sign(&signing, &ts, BODY);
    assert!(matches!(
        v.verify(None, Some(&ts), BODY, NOW),
        Err(WebhookError::MissingHeader("telnyx-signature-ed25519"))
    ));
    assert!(matches!(
        v.verify(Some(&sig), None, BODY, NOW),
        Err(WebhookError::MissingHeader("telnyx-timestamp"))
    ));
    for bad_ts in ["", "-5", "1e9", "abc", " 17640 00000"] {
        assert!(
            matches!(
                v.verify(Some(&sig), Some(bad_ts), BODY, NOW),
                Err(WebhookError::BadTimestamp)
            ),
            "{bad_ts:?}"
        );
    }
    for bad_sig in [
        "not base64!!",
        "",
        &STANDARD.encode([1u8; 63]),
        &STANDARD.encode([1u8; 65]),
    ] {
        assert!(
            matches!(
                v.verify(Some(bad_sig), Some(&ts), BODY, NOW),
                Err(WebhookError::MalformedSignature)
            ),
            "{bad_sig:?}"
        );
    }
}

#[test]
fn a_bad_public_key_is_refused_at_start() {
    assert!(WebhookVerifier::new("not base64", 300).is_err());
    assert!(WebhookVerifier::new(&STANDARD.encode([1u8; 31]), 300).is_err());
}

#[allow(clippy::needless_pass_by_value)] // called with `json!` temporaries
fn event(event_type: &str, payload: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
            "occurred_at": "2026-11-26T07:00:00.076316Z",
            "payload": payload
        },
        "meta": {"attempt": 1, "delivered_to": "https://iace.example.com/webhooks/telnyx"}
    }))
    .expect("json")
}

#[test]
fn lifecycle_events_parse_to_the_domain() {
    let call = CallId::new();
    let state = client_state(call);
    let initiated = parse_event(&event(
        "call.initiated",
        json!({"call_control_id": "v3:abc", "call_session_id": "s1", "client_state": null,
               "direction": "incoming", "state": "parked", "from": "+14155550100", "to": "+442079460958"}),
    ))
    .expect("parse");
    assert_eq!(initiated.id, "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0");
    assert_eq!(initiated.provider_call_id.as_deref(), Some("v3:abc"));
    assert_eq!(initiated.provider_session_id.as_deref(), Some("s1"));
    assert_eq!(initiated.call_id, None);
    match initiated.kind {
        TelephonyEventKind::Initiated {
            direction,
            from,
            to,
        } => {
            assert_eq!(direction, CallDirection::Inbound);
            assert_eq!(from.expect("from").as_str(), "+14155550100");
            assert_eq!(to.expect("to").as_str(), "+442079460958");
        }
        other => panic!("{other:?}"),
    }
    let outgoing = parse_event(&event(
        "call.initiated",
        json!({"direction": "outgoing", "client_state": state, "from": "sip:bot@x", "to": "+442079460958"}),
    ))
    .expect("parse");
    assert_eq!(outgoing.call_id, Some(call));
    assert!(matches!(
        outgoing.kind,
        TelephonyEventKind::Initiated {
            direction: CallDirection::Outbound,
            from: None,
            ..
        }
    ));

    let hangup = parse_event(&event(
        "call.hangup",
        json!({"client_state": state, "hangup_cause": "user_busy", "hangup_source": "callee", "sip_hangup_cause": "486"}),
    ))
    .expect("parse");
    assert_eq!(
        hangup.kind,
        TelephonyEventKind::HungUp {
            cause: HangupCause::UserBusy,
            source: HangupSource::Callee,
            sip_code: Some(486)
        }
    );
    let bare = parse_event(&event("call.hangup", json!({}))).expect("parse");
    assert!(matches!(
        bare.kind,
        TelephonyEventKind::HungUp {
            cause: HangupCause::Unspecified,
            ..
        }
    ));
}

#[test]
fn the_other_handled_events_parse() {
    let cases = [
        ("call.answered", json!({}), TelephonyEventKind::Answered),
        ("call.bridged", json!({}), TelephonyEventKind::Bridged),
        (
            "call.machine.detection.ended",
            json!({"result": "machine"}),
            TelephonyEventKind::MachineDetected {
                result: MachineDetectionResult::Machine,
            },
        ),
        (
            "call.machine.premium.detection.ended",
            json!({"result": "human_business"}),
            TelephonyEventKind::MachineDetected {
                result: MachineDetectionResult::Human,
            },
        ),
        (
            "call.machine.detection.ended",
            json!({"result": "not_sure"}),
            TelephonyEventKind::MachineDetected {
                result: MachineDetectionResult::NotSure,
            },
        ),
        (
            "call.machine.greeting.ended",
            json!({"result": "beep_detected"}),
            TelephonyEventKind::MachineGreetingEnded { beep: true },
        ),
        (
            "call.dtmf.received",
            json!({"digit": "#"}),
            TelephonyEventKind::Dtmf { digit: '#' },
        ),
        (
            "call.dtmf.received",
            json!({"digit": "x"}),
            TelephonyEventKind::Other,
        ),
        (
            "streaming.started",
            json!({"stream_url": "wss://x"}),
            TelephonyEventKind::StreamingStarted,
        ),
        (
            "streaming.stopped",
            json!({}),
            TelephonyEventKind::StreamingStopped,
        ),
        (
            "streaming.failed",
            json!({"failure_reason": "connection refused", "stream_type": "websocket"}),
            TelephonyEventKind::StreamingFailed {
                reason: "connection refused".into(),
            },
        ),
        (
            "call.speak.ended",
            json!({"status": "completed"}),
            TelephonyEventKind::SpeakEnded {
                status: PlaybackStatus::Completed,
            },
        ),
        (
            "call.playback.ended",
            json!({"status": "file_not_found"}),
            TelephonyEventKind::PlaybackEnded {
                status: PlaybackStatus::Failed,
            },
        ),
        (
            "call.playback.ended",
            json!({"status": "call_hangup"}),
            TelephonyEventKind::PlaybackEnded {
                status: PlaybackStatus::Stopped,
            },
        ),
        (
            "call.recording.saved",
            json!({"recording_urls": {"mp3": "https://r/1.mp3", "wav": null}, "channels": "dual"}),
            TelephonyEventKind::RecordingSaved {
                mp3_url: Some("https://r/1.mp3".into()),
                wav_url: None,
            },
        ),
        ("call.fork.started", json!({}), TelephonyEventKind::Other),
        (
            "conference.created",
            json!({"anything": [1, 2]}),
            TelephonyEventKind::Other,
        ),
    ];
    for (event_type, payload, expected) in cases {
        let parsed = parse_event(&event(event_type, payload)).expect(event_type);
        assert_eq!(parsed.kind, expected, "{event_type}");
        assert_eq!(parsed.event_type, event_type);
    }
}

#[test]
fn bodies_that_are_not_events_are_malformed() {
    for body in [&b"not json"[..], b"{}", br#"{"data":{"id":"x"}}"#, b"[]"] {
        let err = parse_event(body).expect_err("malformed");
        assert_eq!(err.code(), "malformed_event");
    }
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        sig in ".{0,100}",
        ts in ".{0,20}",
    ) {
        let v = verifier(&key(7));
        let _ = v.verify(Some(&sig), Some(&ts), &body, NOW);
        let _ = parse_event(&body);
    }
}

#[test]
fn odd_payloads_are_read_field_by_field_never_refused() {
    // `call.ai_gather.ended` carries `result` as an object; a null payload;
    // fields of unexpected types: all parse, unknown kinds as Other.
    let ai_gather = parse_event(&event(
        "call.ai_gather.ended",
        json!({"result": {"name": "Jane"}, "status": {"code": 1}, "call_control_id": "v3:abc"}),
    ))
    .expect("object-valued fields");
    assert_eq!(ai_gather.kind, TelephonyEventKind::Other);
    assert_eq!(ai_gather.provider_call_id.as_deref(), Some("v3:abc"));
    let null = parse_event(&event("call.answered", serde_json::Value::Null)).expect("null payload");
    assert_eq!(null.kind, TelephonyEventKind::Answered);
    let odd = parse_event(&event(
        "call.machine.detection.ended",
        json!({"result": 42, "client_state": {"x": 1}}),
    ))
    .expect("odd types");
    assert_eq!(
        odd.kind,
        TelephonyEventKind::MachineDetected {
            result: MachineDetectionResult::NotSure
        }
    );
    assert_eq!(odd.call_id, None);
}
