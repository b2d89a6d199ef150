//! `SpeechToText` and `TextToSpeech` contracts.
//!
//! Fakes and local providers agree on one convention so the suites can check
//! content without real audio: **the audio of a text is its UTF-8 bytes**. A
//! speech-to-text fake transcribes each audio frame it receives as the text
//! those bytes spell (one utterance per frame); a text-to-speech fake answers
//! a text with its bytes as audio.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use iace_domain::Language;
use iace_domain::Voice;
use iace_domain::ports::{
    AudioFormat, ProviderError, SpeechRequest, SpeechToText, SttConfig, SttEvent, SttSession,
    TextToSpeech,
};

use super::provider_failure::{self, Failure};

/// Makes speech-to-text adapters whose provider behaves as asked; `None`
/// skips the case.
#[async_trait]
pub trait SpeechToTextFixture: Send + Sync {
    /// Transcribes each frame as the text its bytes spell, with interim
    /// results, `speech_final` finals and utterance ends.
    async fn transcribing(&self) -> Arc<dyn SpeechToText>;
    /// Like `transcribing`, but the provider drops the connection right after
    /// its first final; the adapter must carry the session on.
    async fn dropping_after_first_final(&self) -> Option<Arc<dyn SpeechToText>>;
    /// The provider fails this way (at connection, or on the first frame).
    async fn failing(&self, failure: Failure) -> Option<Arc<dyn SpeechToText>>;
}

/// Makes text-to-speech adapters whose provider behaves as asked; `None`
/// skips the case.
#[async_trait]
pub trait TextToSpeechFixture: Send + Sync {
    /// Answers each text with its UTF-8 bytes as audio, in pieces.
    async fn speaking(&self) -> Arc<dyn TextToSpeech>;
    /// Sends part of the audio, then the connection drops.
    async fn cut_mid_stream(&self) -> Option<Arc<dyn TextToSpeech>>;
    /// The provider fails this way.
    async fn failing(&self, failure: Failure) -> Option<Arc<dyn TextToSpeech>>;
}

/// The settings the speech-to-text cases open sessions with.
#[must_use]
pub fn stt_config() -> SttConfig {
    SttConfig {
        language: Language::default(),
        format: AudioFormat::TELEPHONY,
        interim_results: true,
        endpointing_ms: 300,
        utterance_end_ms: 1_000,
        keywords: vec!["Acme".into()],
    }
}

fn speech(text: &str) -> SpeechRequest {
    SpeechRequest {
        text: text.into(),
        voice: Voice {
            name: "aura-2-thalia-en".into(),
            speed: 1.0,
        },
        language: Language::default(),
        format: AudioFormat::TELEPHONY,
    }
}

const WAIT: Duration = Duration::from_secs(15);

/// Events until `finals` finals have arrived (or an error / the end).
async fn until_finals(
    session: &mut SttSession,
    finals: usize,
) -> (Vec<SttEvent>, Option<ProviderError>) {
    let mut events = Vec::new();
    let mut seen = 0;
    while seen < finals {
        match tokio::time::timeout(WAIT, session.events.next()).await {
            Err(_) => panic!("no final within {WAIT:?}; got {events:?}"),
            Ok(None) => return (events, None),
            Ok(Some(Err(err))) => return (events, Some(err)),
            Ok(Some(Ok(event))) => {
                if matches!(event, SttEvent::Final { .. }) {
                    seen += 1;
                }
                events.push(event);
            }
        }
    }
    (events, None)
}

fn finals(events: &[SttEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Final { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Runs every speech-to-text case.
pub async fn run_stt<F: SpeechToTextFixture>(fixture: &F) {
    super::announce("speech-to-text: frames in, speech_final finals out, in order");
    let stt = fixture.transcribing().await;
    let mut session = stt.open(&stt_config()).await.expect("open");
    session
        .audio
        .send(Bytes::from_static(b"I would like to pay my bill"))
        .await
        .expect("send");
    let (first, err) = until_finals(&mut session, 1).await;
    assert!(err.is_none(), "{err:?}");
    session
        .audio
        .send(Bytes::from_static(b"my account is closed"))
        .await
        .expect("send");
    let (second, err) = until_finals(&mut session, 1).await;
    assert!(err.is_none(), "{err:?}");
    let events: Vec<SttEvent> = first.into_iter().chain(second).collect();
    assert_eq!(
        finals(&events),
        vec!["I would like to pay my bill", "my account is closed"]
    );
    assert!(
        events.iter().all(|e| !matches!(
            e,
            SttEvent::Final {
                speech_final: false,
                ..
            }
        )),
        "each utterance ends its turn: {events:?}"
    );
    assert!(
        matches!(
            events.first(),
            Some(SttEvent::SpeechStarted { .. } | SttEvent::Interim { .. })
        ),
        "speech is noticed before the final: {events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, SttEvent::Interim { .. })));

    super::announce("speech-to-text: closing the audio ends the session");
    session.audio.close().await.expect("close");
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(event) = session.events.next().await {
            if let Err(err) = event {
                panic!("no error on a graceful close: {err:?}");
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream ends after the audio closes"
    );

    if let Some(stt) = fixture.dropping_after_first_final().await {
        super::announce("speech-to-text: a dropped connection does not end the session");
        let mut session = stt.open(&stt_config()).await.expect("open");
        session
            .audio
            .send(Bytes::from_static(b"hello"))
            .await
            .expect("send");
        let (events, err) = until_finals(&mut session, 1).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(finals(&events), vec!["hello"]);
        // The provider hung up; the adapter reconnects behind the session.
        let mut sent_again = false;
        for _ in 0..50 {
            if session
                .audio
                .send(Bytes::from_static(b"are you there"))
                .await
                .is_ok()
            {
                sent_again = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(sent_again, "audio is accepted again after the drop");
        let (events, err) = until_finals(&mut session, 1).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(finals(&events), vec!["are you there"]);
    }

    for failure in provider_failure::ALL {
        let Some(stt) = fixture.failing(failure).await else {
            continue;
        };
        let case = format!("speech-to-text: {failure:?}");
        super::announce(&case);
        let err = match stt.open(&stt_config()).await {
            Err(err) => err,
            Ok(mut session) => {
                let _ = session.audio.send(Bytes::from_static(b"hello")).await;
                let (events, err) = until_finals(&mut session, 1).await;
                assert!(finals(&events).is_empty(), "{case}: no transcript");
                err.unwrap_or_else(|| panic!("{case}: the failure is reported"))
            }
        };
        provider_failure::assert_maps(&case, failure, &err);
    }
}

/// All the audio of a synthesis (bounded in time).
async fn collect_audio(tts: &dyn TextToSpeech, text: &str) -> (Vec<Bytes>, Option<ProviderError>) {
    let mut stream = match tts.synthesize(&speech(text)).await {
        Ok(stream) => stream,
        Err(err) => return (Vec::new(), Some(err)),
    };
    let mut chunks = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Err(_) => panic!("the audio neither ended nor failed within {WAIT:?}"),
            Ok(None) => return (chunks, None),
            Ok(Some(Ok(chunk))) => chunks.push(chunk),
            Ok(Some(Err(err))) => return (chunks, Some(err)),
        }
    }
}

/// Runs every text-to-speech case.
pub async fn run_tts<F: TextToSpeechFixture>(fixture: &F) {
    super::announce("text-to-speech: the audio streams and ends");
    let tts = fixture.speaking().await;
    let text = "Thanks for calling Acme. How can I help you today?";
    let (chunks, err) = collect_audio(tts.as_ref(), text).await;
    assert!(err.is_none(), "{err:?}");
    assert!(!chunks.is_empty());
    assert!(chunks.iter().all(|c| !c.is_empty()), "no empty chunks");
    assert_eq!(chunks.concat(), text.as_bytes(), "all the audio, in order");

    super::announce("text-to-speech: dropping the audio cancels; the adapter goes on");
    let mut stream = tts.synthesize(&speech(text)).await.expect("synthesize");
    let first = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("in time");
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    drop(stream);
    let (chunks, err) = collect_audio(tts.as_ref(), "Still here.").await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(chunks.concat(), b"Still here.");

    super::announce("text-to-speech: nothing to say, no audio");
    let (chunks, err) = collect_audio(tts.as_ref(), "   ").await;
    assert!(err.is_none(), "{err:?}");
    assert!(chunks.concat().is_empty());

    if let Some(tts) = fixture.cut_mid_stream().await {
        super::announce("text-to-speech: a cut stream is an error, not an end");
        let (_, err) = collect_audio(tts.as_ref(), text).await;
        let err = err.expect("the cut is reported");
        assert!(err.is_retryable(), "{err:?}");
    }

    for failure in provider_failure::ALL {
        let Some(tts) = fixture.failing(failure).await else {
            continue;
        };
        let case = format!("text-to-speech: {failure:?}");
        super::announce(&case);
        let (_, err) = collect_audio(tts.as_ref(), text).await;
        provider_failure::assert_maps(&case, failure, &err.expect("an error"));
    }
}
