//! Text-in, text-out speech providers for the call simulator and tests.
//!
//! No audio is involved: the "audio" is UTF-8 text, so a simulated caller can
//! type (or a test can script) what it says and read what the agent says.
//!
//! - [`TextSpeechToText`] is a `SpeechToText` whose audio sink takes text:
//!   every chunk sent in is one utterance, heard as
//!   [`SttEvent::SpeechStarted`], an [`SttEvent::Interim`] (all words but the
//!   last, when interim results are asked for), an [`SttEvent::Final`] with
//!   `speech_final: true` and confidence 1, and [`SttEvent::UtteranceEnd`].
//!   Offsets are simulated: each word lasts [`WORD_MS`], and utterances are
//!   `utterance_end_ms` apart. Chunks that are blank or not UTF-8 are
//!   silence. Closing (or dropping) the sink ends the event stream once the
//!   events already heard are delivered; dropping the event stream makes the
//!   sink refuse further audio with [`ProviderError::StreamClosed`].
//! - [`EchoTextToSpeech`] is a `TextToSpeech` whose "audio" is the request's
//!   text as UTF-8 bytes, streamed in a few chunks cut between words (so each
//!   chunk is valid text and the chunks add up to the text).
//!
//! Both use bounded channels and tasks on the current tokio runtime only
//! while a session is open; neither opens a socket.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Sink, StreamExt as _};
use iace_domain::ports::{
    AudioChunkStream, ProviderError, SpeechRequest, SpeechToText, SttConfig, SttEvent, SttSession,
    TextToSpeech,
};
use tokio::sync::mpsc::{self, OwnedPermit, error::SendError};

/// The provider name in errors.
const PROVIDER: &str = "local";

/// How long one simulated word lasts (ms).
pub const WORD_MS: u64 = 300;

/// Audio chunks (and events) buffered before the sender waits.
const CHANNEL_CAPACITY: usize = 32;

/// [`EchoTextToSpeech`] cuts its audio into chunks of about this many bytes.
const TTS_CHUNK_BYTES: usize = 24;

fn closed() -> ProviderError {
    ProviderError::StreamClosed { provider: PROVIDER }
}

// ---------------------------------------------------------------- speech-to-text

/// The text speech-to-text provider (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextSpeechToText;

impl TextSpeechToText {
    /// The provider.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

/// The events one chunk of "audio" text is heard as, advancing `clock_ms`.
fn hear(text: &str, config: &SttConfig, clock_ms: &mut u64) -> Vec<SttEvent> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((_, but_last)) = words.split_last() else {
        return Vec::new();
    };
    let start_ms = *clock_ms;
    let spoken_ms = WORD_MS.saturating_mul(u64::try_from(words.len()).unwrap_or(u64::MAX));
    let end_ms = start_ms.saturating_add(spoken_ms);
    *clock_ms = end_ms.saturating_add(u64::from(config.utterance_end_ms));
    let text = words.join(" ");
    let mut events = vec![SttEvent::SpeechStarted { at_ms: start_ms }];
    if config.interim_results {
        let so_far = if but_last.is_empty() {
            text.clone()
        } else {
            but_last.join(" ")
        };
        events.push(SttEvent::Interim {
            text: so_far,
            start_ms,
        });
    }
    events.push(SttEvent::Final {
        text,
        confidence: 1.0,
        start_ms,
        end_ms,
        speech_final: true,
    });
    events.push(SttEvent::UtteranceEnd {
        last_word_end_ms: end_ms,
    });
    events
}

#[async_trait]
impl SpeechToText for TextSpeechToText {
    /// Opens a session served by a task on the current tokio runtime.
    ///
    /// # Errors
    /// [`ProviderError::Unavailable`] when called outside a tokio runtime.
    async fn open(&self, config: &SttConfig) -> Result<SttSession, ProviderError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|err| ProviderError::Unavailable {
                provider: PROVIDER,
                source: Box::new(err),
            })?;
        let (audio_tx, mut audio_rx) = mpsc::channel::<Bytes>(CHANNEL_CAPACITY);
        let (event_tx, event_rx) =
            mpsc::channel::<Result<SttEvent, ProviderError>>(CHANNEL_CAPACITY);
        let config = config.clone();
        runtime.spawn(async move {
            let mut clock_ms = 0;
            loop {
                let audio = tokio::select! {
                    audio = audio_rx.recv() => audio,
                    // The event stream was dropped: the session is over, even
                    // if only silence was sent since.
                    () = event_tx.closed() => return,
                };
                let Some(audio) = audio else { return };
                let Ok(text) = std::str::from_utf8(&audio) else {
                    tracing::debug!(bytes = audio.len(), "non-text audio heard as silence");
                    continue;
                };
                for event in hear(text, &config, &mut clock_ms) {
                    if event_tx.send(Ok(event)).await.is_err() {
                        return; // the event stream was dropped: the session is over
                    }
                }
            }
        });
        let events = futures::stream::unfold(event_rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })
        .boxed();
        Ok(SttSession {
            audio: Box::pin(ChannelSink::new(audio_tx)),
            events,
        })
    }
}

/// The future of a channel slot.
type Reserve<T> = Pin<Box<dyn Future<Output = Result<OwnedPermit<T>, SendError<()>>> + Send>>;

/// A [`Sink`] into a bounded tokio channel: ready once a slot is reserved,
/// closed by dropping the sender (so the receiver sees the end).
struct ChannelSink<T> {
    sender: Option<mpsc::Sender<T>>,
    reserving: Option<Reserve<T>>,
    permit: Option<OwnedPermit<T>>,
}

impl<T> ChannelSink<T> {
    const fn new(sender: mpsc::Sender<T>) -> Self {
        Self {
            sender: Some(sender),
            reserving: None,
            permit: None,
        }
    }
}

impl<T: Send + 'static> Sink<T> for ChannelSink<T> {
    type Error = ProviderError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        if this.permit.is_some() {
            return Poll::Ready(Ok(()));
        }
        let reserving = match &mut this.reserving {
            Some(reserving) => reserving,
            None => {
                let Some(sender) = this.sender.clone() else {
                    return Poll::Ready(Err(closed()));
                };
                this.reserving.insert(Box::pin(sender.reserve_owned()))
            }
        };
        let reserved = ready!(reserving.as_mut().poll(cx));
        this.reserving = None;
        match reserved {
            Ok(permit) => {
                this.permit = Some(permit);
                Poll::Ready(Ok(()))
            }
            Err(_) => {
                this.sender = None;
                Poll::Ready(Err(closed()))
            }
        }
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        let permit = self.get_mut().permit.take().ok_or_else(closed)?;
        permit.send(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // A sent item is already in the channel.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        this.permit = None;
        this.reserving = None;
        this.sender = None;
        Poll::Ready(Ok(()))
    }
}

// ---------------------------------------------------------------- text-to-speech

/// The echo text-to-speech provider (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoTextToSpeech {
    chunk_delay: Duration,
}

impl EchoTextToSpeech {
    /// The provider, streaming without delay.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            chunk_delay: Duration::ZERO,
        }
    }

    /// Waits `delay` before each chunk (default none), to pace simulations
    /// like real synthesis.
    #[must_use]
    pub const fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }
}

/// `text` cut after whole words into chunks of at least
/// [`TTS_CHUNK_BYTES`] (the last may be shorter).
fn audio_chunks(text: &str) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    for word in text.split_inclusive(char::is_whitespace) {
        current.push_str(word);
        if current.len() >= TTS_CHUNK_BYTES {
            chunks.push(Bytes::from(std::mem::take(&mut current)));
        }
    }
    if !current.is_empty() {
        chunks.push(Bytes::from(current));
    }
    chunks
}

#[async_trait]
impl TextToSpeech for EchoTextToSpeech {
    /// # Errors
    /// Never.
    async fn synthesize(&self, request: &SpeechRequest) -> Result<AudioChunkStream, ProviderError> {
        let delay = self.chunk_delay;
        // Nothing to say is no audio (as from a real provider), not silence.
        let chunks = if request.text.trim().is_empty() {
            Vec::new()
        } else {
            audio_chunks(&request.text)
        };
        Ok(futures::stream::iter(chunks)
            .then(move |chunk| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(chunk)
            })
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use futures::{SinkExt as _, TryStreamExt as _};
    use iace_domain::ports::AudioFormat;
    use iace_domain::{Language, Voice};

    use super::*;

    fn config(interim_results: bool) -> SttConfig {
        SttConfig {
            language: Language::default(),
            format: AudioFormat::TELEPHONY,
            interim_results,
            endpointing_ms: 300,
            utterance_end_ms: 1_000,
            keywords: Vec::new(),
        }
    }

    async fn next(session: &mut SttSession) -> Option<SttEvent> {
        tokio::time::timeout(Duration::from_secs(5), session.events.next())
            .await
            .expect("an event or the end in time")
            .map(|event| event.expect("no error"))
    }

    #[test]
    fn opening_outside_a_tokio_runtime_is_an_error_not_a_panic() {
        let opened = futures::executor::block_on(TextSpeechToText::new().open(&config(true)));
        assert!(matches!(
            opened,
            Err(ProviderError::Unavailable {
                provider: "local",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn each_text_chunk_is_heard_as_one_utterance() {
        let mut session = TextSpeechToText::new()
            .open(&config(true))
            .await
            .expect("open");
        session
            .audio
            .send(Bytes::from_static(b"  I need   help "))
            .await
            .expect("send");
        let expected = [
            SttEvent::SpeechStarted { at_ms: 0 },
            SttEvent::Interim {
                text: "I need".into(),
                start_ms: 0,
            },
            SttEvent::Final {
                text: "I need help".into(),
                confidence: 1.0,
                start_ms: 0,
                end_ms: 900,
                speech_final: true,
            },
            SttEvent::UtteranceEnd {
                last_word_end_ms: 900,
            },
        ];
        for event in expected {
            assert_eq!(next(&mut session).await, Some(event));
        }
        session
            .audio
            .send(Bytes::from_static("Merci".as_bytes()))
            .await
            .expect("send");
        assert_eq!(
            next(&mut session).await,
            Some(SttEvent::SpeechStarted { at_ms: 1_900 }),
            "the next utterance starts after the silence"
        );
        assert_eq!(
            next(&mut session).await,
            Some(SttEvent::Interim {
                text: "Merci".into(),
                start_ms: 1_900
            })
        );
    }

    #[tokio::test]
    async fn closing_the_sink_ends_the_events_after_the_last_utterance() {
        let mut session = TextSpeechToText::new()
            .open(&config(false))
            .await
            .expect("open");
        session
            .audio
            .send(Bytes::from_static(b"bye"))
            .await
            .expect("send");
        session.audio.close().await.expect("close");
        let mut heard = Vec::new();
        while let Some(event) = next(&mut session).await {
            heard.push(event);
        }
        assert_eq!(heard.len(), 3, "no interim when not asked: {heard:?}");
        assert!(matches!(&heard[1], SttEvent::Final { text, .. } if text == "bye"));
        let err = session
            .audio
            .send(Bytes::from_static(b"more"))
            .await
            .expect_err("closed");
        assert!(matches!(err, ProviderError::StreamClosed { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn blank_and_non_text_audio_is_silence() {
        let mut session = TextSpeechToText::new()
            .open(&config(true))
            .await
            .expect("open");
        for audio in [&b"   \n"[..], &[0xff, 0xfe, 0x7f][..], b"ok"] {
            session
                .audio
                .send(Bytes::copy_from_slice(audio))
                .await
                .expect("send");
        }
        assert_eq!(
            next(&mut session).await,
            Some(SttEvent::SpeechStarted { at_ms: 0 })
        );
    }

    #[tokio::test]
    async fn dropping_the_events_closes_the_sink() {
        let SttSession { mut audio, events } = TextSpeechToText::new()
            .open(&config(true))
            .await
            .expect("open");
        drop(events);
        let refused = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Err(err) = audio.send(Bytes::from_static(b"hello")).await {
                    return err;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the sink refuses audio once nobody listens");
        assert!(matches!(refused, ProviderError::StreamClosed { .. }));
    }

    #[tokio::test]
    async fn dropping_the_events_closes_the_sink_even_while_only_silence_is_sent() {
        let SttSession { mut audio, events } = TextSpeechToText::new()
            .open(&config(true))
            .await
            .expect("open");
        drop(events);
        let refused = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Err(err) = audio.send(Bytes::from_static(b"   ")).await {
                    return err;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the sink refuses silence too once nobody listens");
        assert!(matches!(refused, ProviderError::StreamClosed { .. }));
    }

    #[tokio::test]
    async fn the_sink_waits_when_the_channel_is_full() {
        let SttSession { mut audio, events } = TextSpeechToText::new()
            .open(&config(true))
            .await
            .expect("open");
        // Nobody reads the events: the buffers fill, then sending waits.
        let filled = tokio::time::timeout(Duration::from_millis(500), async {
            for _ in 0..1_000 {
                audio.send(Bytes::from_static(b"word")).await.expect("send");
            }
        })
        .await;
        assert!(filled.is_err(), "backpressure, not unbounded buffering");
        drop(events);
    }

    fn speech(text: &str) -> SpeechRequest {
        SpeechRequest {
            text: text.to_owned(),
            voice: Voice {
                name: "echo".into(),
                speed: 1.0,
            },
            language: Language::default(),
            format: AudioFormat::TELEPHONY,
        }
    }

    #[tokio::test]
    async fn the_audio_is_the_text_in_a_few_whole_word_chunks() {
        let text = "Thank you for calling Acme. How can I help you today?";
        let chunks: Vec<Bytes> = EchoTextToSpeech::new()
            .synthesize(&speech(text))
            .await
            .expect("synthesize")
            .try_collect()
            .await
            .expect("chunks");
        assert!((2..=4).contains(&chunks.len()), "{chunks:?}");
        assert!(chunks.iter().all(|c| std::str::from_utf8(c).is_ok()));
        assert_eq!(chunks.concat(), text.as_bytes());
        let none: Vec<Bytes> = EchoTextToSpeech::new()
            .synthesize(&speech(""))
            .await
            .expect("synthesize")
            .try_collect()
            .await
            .expect("chunks");
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn what_one_says_the_other_hears() {
        let tts = EchoTextToSpeech::new().with_chunk_delay(Duration::from_millis(1));
        let said = "Your appointment is on Tuesday at ten";
        let audio: Vec<Bytes> = tts
            .synthesize(&speech(said))
            .await
            .expect("synthesize")
            .try_collect()
            .await
            .expect("chunks");
        let mut session = TextSpeechToText::new()
            .open(&config(false))
            .await
            .expect("open");
        session
            .audio
            .send(Bytes::from(audio.concat()))
            .await
            .expect("send");
        session.audio.close().await.expect("close");
        let mut finals = Vec::new();
        while let Some(event) = next(&mut session).await {
            if let SttEvent::Final { text, .. } = event {
                finals.push(text);
            }
        }
        assert_eq!(finals, vec![said.to_owned()]);
    }
}
