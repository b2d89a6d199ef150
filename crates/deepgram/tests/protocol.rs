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
        refuse_after_first: Some(503),
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

/// The first error of the session's events, skipping events.
async fn next_error(session: &mut SttSession) -> ProviderError {
    loop {
        match next_event(session).await {
            Some(Ok(_)) => {}
            Some(Err(err)) => return err,
            None => panic!("the events ended without an error"),
        }
    }
}

#[tokio::test]
async fn a_deepgram_that_fails_every_connection_ends_the_session() {
    let fake = FakeDeepgram::start(Behaviour {
        error_every_connection: true,
        ..Behaviour::default()
    })
    .await;
    let mut config = config(&fake.url, NO_REST);
    config.reconnect_attempts = 3;
    config.reconnect_backoff_ms = 10;
    let mut session = client(&config).open(&stt_config()).await.expect("open");
    // Each connection says Error and closes: no Results, so the budget of
    // reconnections is never restored.
    let err = next_error(&mut session).await;
    assert!(matches!(err, ProviderError::StreamClosed { .. }), "{err:?}");
    assert!(
        next_event(&mut session).await.is_none(),
        "then the events end"
    );
    assert_eq!(fake.handshakes().len(), 4, "the first and three attempts");
}

#[tokio::test]
async fn a_turn_open_when_the_connection_drops_is_ended_after_reconnecting() {
    let fake = FakeDeepgram::start(Behaviour {
        open_turn_then_drop: true,
        ..Behaviour::default()
    })
    .await;
    let mut session = client(&config(&fake.url, NO_REST))
        .open(&stt_config())
        .await
        .expect("open");
    // 80 bytes: 10 ms at 8 bytes per ms.
    let frame = format!("{:<80}", "I want to pay");
    session
        .audio
        .send(Bytes::from(frame.into_bytes()))
        .await
        .expect("send");
    let events = until_final(&mut session).await;
    assert!(
        matches!(
            events.last(),
            Some(SttEvent::Final {
                speech_final: false,
                end_ms: 10,
                ..
            })
        ),
        "{events:?}"
    );
    // The fake dropped the connection with the turn open; no more audio
    // goes out, yet the turn ends.
    let event = next_event(&mut session).await;
    assert!(
        matches!(
            event,
            Some(Ok(SttEvent::UtteranceEnd {
                last_word_end_ms: 10
            }))
        ),
        "{event:?}"
    );
    assert_eq!(fake.handshakes().len(), 2, "one reconnection");
}

#[tokio::test]
async fn a_slow_reader_holds_back_neither_audio_nor_keep_alive() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let mut config = config(&fake.url, NO_REST);
    config.keepalive_ms = 100;
    config.audio_buffer_frames = 4;
    let mut session = client(&config).open(&stt_config()).await.expect("open");
    // Four events a frame: far more than the event channel holds while
    // nobody reads them.
    let frames = 40;
    tokio::time::timeout(EVENTUALLY, async {
        for n in 0..frames {
            let frame = Bytes::from(format!("frame {n}").into_bytes());
            session.audio.send(frame).await.expect("send");
        }
    })
    .await
    .expect("audio is taken while the events wait");
    fake.eventually("every frame forwarded", |f| f.frames() == frames)
        .await;
    let keep_alives = |f: &FakeDeepgram| {
        f.texts()
            .iter()
            .filter(|t| *t == r#"{"type":"KeepAlive"}"#)
            .count()
    };
    let before = keep_alives(&fake);
    fake.eventually("a KeepAlive while the events wait", |f| {
        keep_alives(f) > before
    })
    .await;
    // Nothing was lost meanwhile, and the order holds.
    let mut finals = Vec::new();
    while finals.len() < frames {
        match next_event(&mut session).await {
            Some(Ok(SttEvent::Final { text, .. })) => finals.push(text),
            Some(Ok(_)) => {}
            other => panic!("{other:?} after {finals:?}"),
        }
    }
    let expected: Vec<String> = (0..frames).map(|n| format!("frame {n}")).collect();
    assert_eq!(finals, expected);
}

#[tokio::test]
async fn absurd_times_after_a_reconnection_are_clamped() {
    let fake = FakeDeepgram::start(Behaviour {
        drop_after_first_final: true,
        absurd_times_after_first: true,
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
    // The new connection starts 5 bytes (625 µs) into the session, and says
    // every time is 1e300 s.
    session
        .audio
        .send(Bytes::from_static(b"again"))
        .await
        .expect("send");
    let events = until_final(&mut session).await;
    let clamped = 1_000_000_000; // (625 µs + 1e12 µs) in ms
    assert_eq!(
        events,
        vec![
            SttEvent::SpeechStarted { at_ms: clamped },
            SttEvent::Interim {
                text: "again".into(),
                start_ms: clamped
            },
            SttEvent::Final {
                text: "again".into(),
                confidence: 0.98,
                start_ms: clamped,
                end_ms: clamped,
                speech_final: true
            },
        ]
    );
    // The session goes on and closes gracefully.
    session.audio.close().await.expect("close");
    while let Some(event) = next_event(&mut session).await {
        assert!(event.is_ok(), "{event:?}");
    }
    assert_eq!(fake.handshakes().len(), 2, "one reconnection");
}

#[tokio::test]
async fn empty_frames_do_not_hold_back_keep_alive() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let mut config = config(&fake.url, NO_REST);
    config.keepalive_ms = 100;
    let mut session = client(&config).open(&stt_config()).await.expect("open");
    let sent = tokio::time::timeout(EVENTUALLY, async {
        // Empty frames, faster than the KeepAlive period: none goes out, so
        // the KeepAlive must.
        while !fake.texts().iter().any(|t| t == r#"{"type":"KeepAlive"}"#) {
            session.audio.send(Bytes::new()).await.expect("send");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(sent.is_ok(), "a KeepAlive despite the empty frames");
    assert_eq!(fake.frames(), 0, "no empty frame reached Deepgram");
}

#[tokio::test]
async fn a_close_that_never_comes_with_audio_unfinalised_is_stream_closed() {
    let fake = FakeDeepgram::start(Behaviour {
        mute: true,
        ..Behaviour::default()
    })
    .await;
    let mut session = client(&config(&fake.url, NO_REST))
        .with_close_timeout(std::time::Duration::from_millis(200))
        .open(&stt_config())
        .await
        .expect("open");
    session
        .audio
        .send(Bytes::from_static(b"hello"))
        .await
        .expect("send");
    session.audio.close().await.expect("close");
    let event = next_event(&mut session).await;
    assert!(
        matches!(event, Some(Err(ProviderError::StreamClosed { .. }))),
        "{event:?}"
    );
    assert!(
        next_event(&mut session).await.is_none(),
        "then the events end"
    );
    assert!(
        fake.texts()
            .iter()
            .any(|t| t == r#"{"type":"CloseStream"}"#),
        "CloseStream was sent"
    );
}

#[tokio::test]
async fn credentials_refused_at_a_reconnection_end_the_session_as_unauthorized() {
    let fake = FakeDeepgram::start(Behaviour {
        drop_after_first_final: true,
        refuse_after_first: Some(401),
        ..Behaviour::default()
    })
    .await;
    let mut config = config(&fake.url, NO_REST);
    config.reconnect_attempts = 3;
    config.reconnect_backoff_ms = 10;
    let mut session = client(&config).open(&stt_config()).await.expect("open");
    session
        .audio
        .send(Bytes::from_static(b"hello"))
        .await
        .expect("send");
    until_final(&mut session).await;
    let err = next_error(&mut session).await;
    assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err:?}");
    assert!(
        next_event(&mut session).await.is_none(),
        "then the events end"
    );
    assert_eq!(fake.handshakes().len(), 2, "no attempt after the refusal");
}

#[tokio::test]
async fn a_speech_error_ends_the_audio_at_once_as_rejected() {
    let fake = FakeDeepgram::start(Behaviour {
        speech_error: true,
        ..Behaviour::default()
    })
    .await;
    let mut config = config(&fake.url, NO_REST);
    // Far beyond the hang guard: only the Error message can end the stream.
    config.tts_idle_timeout_ms = 600_000;
    let stream = client(&config)
        .synthesize(&speech("Hello.", "aura-2-thalia-en"))
        .await
        .expect("synthesize");
    let err = collect(stream).await.expect_err("Deepgram's error");
    assert!(
        matches!(
            err,
            ProviderError::Rejected { provider: "deepgram", status: None, ref detail }
                if detail == "[INVALID_TEXT] fake: the text cannot be spoken"
        ),
        "{err:?}"
    );
}
