//! What goes over the wire to Deepgram: handshake headers and queries,
//! control frames, the REST request, the fallback and the shared breaker.

#[allow(dead_code, reason = "shared by the test binaries, each uses a part")]
mod support;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use iace_deepgram::{DeepgramClient, DeepgramConfig, TtsTransport};
use iace_domain::ports::{
    AudioChunkStream, AudioFormat, ProviderError, SpeechRequest, SpeechToText as _, SttEvent,
    SttSession, TextToSpeech as _,
};
use iace_domain::{Language, Voice};
use iace_http::context::{self, OutboundContext, TraceParent};
use iace_http::{BreakerConfig, BreakerState};
use iace_testkit::contracts::provider_failure::Failure;
use iace_testkit::contracts::speech::stt_config;
use serde_json::json;
use support::{Behaviour, EVENTUALLY, EchoSpeech, FakeDeepgram, NO_REST, config};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer};

fn client(config: &DeepgramConfig) -> DeepgramClient {
    DeepgramClient::new(config).expect("client")
}

fn speech(text: &str, voice: &str) -> SpeechRequest {
    SpeechRequest {
        text: text.into(),
        voice: Voice {
            name: voice.into(),
            speed: 1.0,
        },
        language: Language::default(),
        format: AudioFormat::TELEPHONY,
    }
}

/// The next event, within [`EVENTUALLY`].
async fn next_event(session: &mut SttSession) -> Option<Result<SttEvent, ProviderError>> {
    tokio::time::timeout(EVENTUALLY, session.events.next())
        .await
        .expect("an event in time")
}

/// Events up to and including the next final.
async fn until_final(session: &mut SttSession) -> Vec<SttEvent> {
    let mut events = Vec::new();
    loop {
        match next_event(session).await {
            Some(Ok(event)) => {
                let last = matches!(event, SttEvent::Final { .. });
                events.push(event);
                if last {
                    return events;
                }
            }
            other => panic!("expected a final, got {other:?} after {events:?}"),
        }
    }
}

/// All audio, or the error that ended it.
async fn collect(mut stream: AudioChunkStream) -> Result<Vec<u8>, ProviderError> {
    let mut audio = Vec::new();
    loop {
        match tokio::time::timeout(EVENTUALLY, stream.next())
            .await
            .expect("audio in time")
        {
            None => return Ok(audio),
            Some(Ok(chunk)) => audio.extend_from_slice(&chunk),
            Some(Err(err)) => return Err(err),
        }
    }
}

#[tokio::test]
async fn the_transcription_handshake_carries_the_token_the_context_and_the_telephony_query() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let client = client(&config(&fake.url, NO_REST));
    let inbound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let context = OutboundContext {
        request_id: Some("req-42".into()),
        trace: TraceParent::parse(inbound),
    };
    let _session = context::scope(context, client.open(&stt_config()))
        .await
        .expect("open");

    let handshakes = fake.handshakes();
    assert_eq!(handshakes.len(), 1);
    let handshake = &handshakes[0];
    assert!(
        handshake.uri.starts_with("/v1/listen?"),
        "{}",
        handshake.uri
    );
    assert_eq!(handshake.headers["authorization"], "Token KEY_test");
    assert_eq!(handshake.headers["x-request-id"], "req-42");
    let traceparent = handshake.headers["traceparent"].to_str().expect("ascii");
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "the caller's trace: {traceparent}"
    );
    assert_ne!(traceparent, inbound, "a new parent id");
    let expected: Vec<(String, String)> = [
        ("model", "nova-3"),
        ("encoding", "mulaw"),
        ("sample_rate", "8000"),
        ("channels", "1"),
        ("interim_results", "true"),
        ("endpointing", "300"),
        ("utterance_end_ms", "1000"),
        ("vad_events", "true"),
        ("smart_format", "true"),
        ("punctuate", "true"),
        ("language", "en-US"),
        ("keyterm", "Acme"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(handshake.query(), expected);
}

#[tokio::test]
async fn keywords_go_as_keywords_to_models_before_nova_3() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let mut config = config(&fake.url, NO_REST);
    config.stt_model = "nova-2-phonecall".into();
    config.smart_format = false;
    let _session = client(&config).open(&stt_config()).await.expect("open");
    let handshake = &fake.handshakes()[0];
    assert_eq!(
        handshake.param("model").as_deref(),
        Some("nova-2-phonecall")
    );
    assert_eq!(handshake.param("keywords").as_deref(), Some("Acme"));
    assert_eq!(handshake.param("keyterm"), None);
    assert_eq!(handshake.param("smart_format").as_deref(), Some("false"));
}

#[tokio::test]
async fn keep_alive_is_sent_while_no_audio_flows() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let mut config = config(&fake.url, NO_REST);
    config.keepalive_ms = 100;
    let _session = client(&config).open(&stt_config()).await.expect("open");
    fake.eventually("a KeepAlive", |f| {
        f.texts().iter().any(|t| t == r#"{"type":"KeepAlive"}"#)
    })
    .await;
}

#[tokio::test]
async fn closing_the_audio_sends_close_stream_then_the_events_end() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let mut session = client(&config(&fake.url, NO_REST))
        .open(&stt_config())
        .await
        .expect("open");
    session
        .audio
        .send(Bytes::from_static(b"goodbye"))
        .await
        .expect("send");
    until_final(&mut session).await;
    session.audio.close().await.expect("close");
    fake.eventually("a CloseStream", |f| {
        f.texts().iter().any(|t| t == r#"{"type":"CloseStream"}"#)
    })
    .await;
    loop {
        match next_event(&mut session).await {
            None => break,
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("a graceful close has no error: {err:?}"),
        }
    }
    let err = session
        .audio
        .send(Bytes::from_static(b"too late"))
        .await
        .expect_err("the session is over");
    assert!(matches!(err, ProviderError::StreamClosed { .. }), "{err:?}");
}

#[tokio::test]
async fn dropping_the_events_closes_the_connection() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let session = client(&config(&fake.url, NO_REST))
        .open(&stt_config())
        .await
        .expect("open");
    let SttSession { mut audio, events } = session;
    drop(events);
    fake.eventually("the connection closed", |f| f.closed() == 1)
        .await;
    // The session's task is gone: audio is refused.
    let refused = tokio::time::timeout(EVENTUALLY, async {
        loop {
            if audio.send(Bytes::from_static(b"anyone?")).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "audio is refused once the session ended");
}

#[tokio::test]
async fn audio_lost_with_a_dropped_connection_is_sent_again() {
    let fake = FakeDeepgram::start(Behaviour {
        lose_second_frame: true,
        ..Behaviour::default()
    })
    .await;
    let mut session = client(&config(&fake.url, NO_REST))
        .open(&stt_config())
        .await
        .expect("open");
    session
        .audio
        .send(Bytes::from_static(b"hello"))
        .await
        .expect("send");
    until_final(&mut session).await;
    // The fake reads this frame, then drops the connection without answering.
    session
        .audio
        .send(Bytes::from_static(b"are you there"))
        .await
        .expect("send");
    let events = until_final(&mut session).await;
    let Some(SttEvent::Final {
        text,
        start_ms,
        end_ms,
        ..
    }) = events.last()
    else {
        panic!("{events:?}");
    };
    assert_eq!(text, "are you there");
    // Session time: 5 + 13 bytes at 8 bytes per ms.
    assert_eq!((*start_ms, *end_ms), (0, 2));
    assert_eq!(fake.handshakes().len(), 2, "one reconnection");
}

#[tokio::test]
async fn a_drop_while_closing_still_delivers_the_last_words() {
    let fake = FakeDeepgram::start(Behaviour {
        drop_at_close_stream: true,
        ..Behaviour::default()
    })
    .await;
    let mut session = client(&config(&fake.url, NO_REST))
        .open(&stt_config())
        .await
        .expect("open");
    session
        .audio
        .send(Bytes::from_static(b"hello"))
        .await
        .expect("send");
    until_final(&mut session).await;
    // The fake leaves this frame unanswered and drops the connection at
    // CloseStream.
    session
        .audio
        .send(Bytes::from_static(b"bye"))
        .await
        .expect("send");
    session.audio.close().await.expect("close");
    let mut finals = Vec::new();
    while let Some(event) = next_event(&mut session).await {
        match event {
            Ok(SttEvent::Final { text, .. }) => finals.push(text),
            Ok(_) => {}
            Err(err) => panic!("no error: the words were delivered: {err:?}"),
        }
    }
    assert_eq!(finals, vec!["bye"]);
    assert_eq!(fake.handshakes().len(), 2, "one reconnection");
}

#[tokio::test]
async fn a_session_that_cannot_reconnect_ends_with_stream_closed() {
    let fake = FakeDeepgram::start(Behaviour {
        drop_after_first_final: true,
        refuse_after_first: true,
        ..Behaviour::default()
    })
    .await;
    let mut config = config(&fake.url, NO_REST);
    config.reconnect_attempts = 2;
    config.reconnect_backoff_ms = 10;
    let mut session = client(&config).open(&stt_config()).await.expect("open");
    session
        .audio
        .send(Bytes::from_static(b"hello"))
        .await
        .expect("send");
    until_final(&mut session).await;
    let err = loop {
        match next_event(&mut session).await {
            Some(Ok(_)) => {}
            Some(Err(err)) => break err,
            None => panic!("the failure is reported"),
        }
    };
    assert!(matches!(err, ProviderError::StreamClosed { .. }), "{err:?}");
    assert!(
        next_event(&mut session).await.is_none(),
        "then the events end"
    );
    assert_eq!(fake.handshakes().len(), 3, "the first and two attempts");
}

#[tokio::test]
async fn speech_over_the_websocket_speaks_flushes_and_closes() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let client = client(&config(&fake.url, NO_REST));
    let audio = collect(
        client
            .synthesize(&speech("Hello there.", "aura-2-luna-en"))
            .await
            .expect("synthesize"),
    )
    .await
    .expect("audio");
    assert_eq!(audio, b"Hello there.");
    fake.eventually("Speak, Flush, Close", |f| f.texts().len() == 3)
        .await;
    let texts: Vec<serde_json::Value> = fake
        .texts()
        .iter()
        .map(|t| serde_json::from_str(t).expect("json"))
        .collect();
    assert_eq!(
        texts,
        vec![
            json!({"type": "Speak", "text": "Hello there."}),
            json!({"type": "Flush"}),
            json!({"type": "Close"}),
        ]
    );
    let handshake = &fake.handshakes()[0];
    assert!(handshake.uri.starts_with("/v1/speak?"), "{}", handshake.uri);
    assert_eq!(handshake.headers["authorization"], "Token KEY_test");
    assert_eq!(handshake.param("model").as_deref(), Some("aura-2-luna-en"));
    assert_eq!(handshake.param("encoding").as_deref(), Some("mulaw"));
    assert_eq!(handshake.param("sample_rate").as_deref(), Some("8000"));

    // A voice that is not Aura's gets the configured default.
    collect(
        client
            .synthesize(&speech("Hi.", "en-US-Standard-A"))
            .await
            .expect("synthesize"),
    )
    .await
    .expect("audio");
    assert_eq!(
        fake.handshakes()[1].param("model").as_deref(),
        Some("aura-2-thalia-en")
    );
}

#[tokio::test]
async fn nothing_to_say_opens_no_connection() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let client = client(&config(&fake.url, NO_REST));
    let audio = collect(
        client
            .synthesize(&speech(" \n ", "aura-2-thalia-en"))
            .await
            .expect("synthesize"),
    )
    .await
    .expect("audio");
    assert!(audio.is_empty());
    assert!(fake.handshakes().is_empty());
}

#[tokio::test]
async fn speech_falls_back_to_rest_when_the_websocket_is_unavailable() {
    let fake = FakeDeepgram::start(Behaviour {
        failure: Some(Failure::Unavailable),
        ..Behaviour::default()
    })
    .await;
    let rest = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/speak"))
        .respond_with(EchoSpeech)
        .expect(1)
        .mount(&rest)
        .await;
    let client = client(&config(&fake.url, &rest.uri()));
    let audio = collect(
        client
            .synthesize(&speech("Still here.", "aura-2-thalia-en"))
            .await
            .expect("synthesize"),
    )
    .await
    .expect("audio");
    assert_eq!(audio, b"Still here.");
    assert_eq!(fake.handshakes().len(), 1, "the WebSocket was tried first");
}

#[tokio::test]
async fn refused_credentials_do_not_fall_back_to_rest() {
    let fake = FakeDeepgram::start(Behaviour {
        failure: Some(Failure::Unauthorized),
        ..Behaviour::default()
    })
    .await;
    let rest = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(EchoSpeech)
        .expect(0)
        .mount(&rest)
        .await;
    let client = client(&config(&fake.url, &rest.uri()));
    let Err(err) = client
        .synthesize(&speech("Hello.", "aura-2-thalia-en"))
        .await
    else {
        panic!("unauthorized");
    };
    assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn rest_speech_sends_the_documented_request() {
    let rest = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/speak"))
        .and(query_param("model", "aura-2-thalia-en"))
        .and(query_param("encoding", "mulaw"))
        .and(query_param("sample_rate", "8000"))
        .and(query_param("container", "none"))
        .and(header("authorization", "Token KEY_test"))
        .and(body_json(json!({"text": "Your balance is zero."})))
        .respond_with(EchoSpeech)
        .expect(1)
        .mount(&rest)
        .await;
    let mut config = config("ws://127.0.0.1:9", &rest.uri());
    config.tts_transport = TtsTransport::Rest;
    let client = client(&config);
    let audio = collect(
        client
            .synthesize(&speech("Your balance is zero.", "aura-2-thalia-en"))
            .await
            .expect("synthesize"),
    )
    .await
    .expect("audio");
    assert_eq!(audio, b"Your balance is zero.");
    let sent = &rest.received_requests().await.expect("recorded")[0];
    assert!(sent.headers.contains_key("traceparent"));
}

#[tokio::test]
async fn one_breaker_guards_every_transport() {
    let fake = FakeDeepgram::start(Behaviour {
        failure: Some(Failure::Unavailable),
        ..Behaviour::default()
    })
    .await;
    let mut config = config(&fake.url, NO_REST);
    config.breaker = BreakerConfig {
        failure_threshold: 1,
        window_ms: 60_000,
        open_ms: 60_000,
    };
    let client = client(&config);
    let err = client.open(&stt_config()).await.expect_err("503");
    assert!(matches!(err, ProviderError::Unavailable { .. }), "{err:?}");
    assert_eq!(client.breaker().state(), BreakerState::Open);
    let Err(err) = client
        .synthesize(&speech("Hello.", "aura-2-thalia-en"))
        .await
    else {
        panic!("open circuit");
    };
    assert!(matches!(err, ProviderError::CircuitOpen { .. }), "{err:?}");
    let err = client.open(&stt_config()).await.expect_err("open circuit");
    assert!(matches!(err, ProviderError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(fake.handshakes().len(), 1, "no connection while open");
}
