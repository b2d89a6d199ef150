//! The speech contract suites on Deepgram, against a local fake of its
//! WebSockets and wiremock for REST (nothing reaches the internet).

#[allow(dead_code, reason = "shared by the test binaries, each uses a part")]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use iace_deepgram::{DeepgramClient, DeepgramConfig, TtsTransport};
use iace_domain::ports::{SpeechToText, TextToSpeech};
use iace_http::HttpPolicy;
use iace_testkit::contracts::provider_failure::Failure;
use iace_testkit::contracts::speech::{self, SpeechToTextFixture, TextToSpeechFixture};
use support::{Behaviour, EchoSpeech, FakeDeepgram, NO_REST, config};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// For `Slow`: give up quickly.
fn impatient(config: &mut DeepgramConfig) {
    config.connect_timeout_ms = 300;
    config.tts_rest = HttpPolicy {
        attempts: 2,
        attempt_timeout_ms: 200,
        deadline_ms: 500,
        backoff_min_ms: 1,
        backoff_max_ms: 5,
    };
}

/// Keeps the fakes alive as long as the suite runs.
#[derive(Default)]
struct Fixture {
    fakes: Mutex<Vec<FakeDeepgram>>,
    rest: Mutex<Vec<MockServer>>,
}

impl Fixture {
    async fn fake(&self, behaviour: Behaviour) -> String {
        let fake = FakeDeepgram::start(behaviour).await;
        let url = fake.url.clone();
        self.fakes.lock().expect("lock").push(fake);
        url
    }

    fn client(config: &DeepgramConfig) -> Arc<DeepgramClient> {
        Arc::new(DeepgramClient::new(config).expect("client"))
    }

    /// A REST endpoint failing as `failure` asks (what the TTS fallback meets).
    async fn failing_rest(&self, failure: Failure) -> String {
        let server = MockServer::start().await;
        let template = match failure {
            Failure::RateLimited { retry_after_secs } => ResponseTemplate::new(429)
                .insert_header("retry-after", retry_after_secs.to_string().as_str()),
            Failure::Unavailable => ResponseTemplate::new(503),
            Failure::Unauthorized => ResponseTemplate::new(401),
            Failure::Slow => ResponseTemplate::new(200)
                .set_body_bytes(b"late".to_vec())
                .set_delay(Duration::from_secs(3)),
            // Raw audio has no format to break; the WebSocket carries this case.
            Failure::Malformed => ResponseTemplate::new(200).set_body_bytes(b"x".to_vec()),
        };
        Mock::given(method("POST"))
            .and(path("/v1/speak"))
            .respond_with(template)
            .mount(&server)
            .await;
        let uri = server.uri();
        self.rest.lock().expect("lock").push(server);
        uri
    }
}

#[async_trait]
impl SpeechToTextFixture for Fixture {
    async fn transcribing(&self) -> Arc<dyn SpeechToText> {
        let url = self.fake(Behaviour::default()).await;
        Self::client(&config(&url, NO_REST))
    }

    async fn dropping_after_first_final(&self) -> Option<Arc<dyn SpeechToText>> {
        let url = self
            .fake(Behaviour {
                drop_after_first_final: true,
                ..Behaviour::default()
            })
            .await;
        Some(Self::client(&config(&url, NO_REST)))
    }

    async fn failing(&self, failure: Failure) -> Option<Arc<dyn SpeechToText>> {
        let url = self
            .fake(Behaviour {
                failure: Some(failure),
                ..Behaviour::default()
            })
            .await;
        let mut config = config(&url, NO_REST);
        if failure == Failure::Slow {
            impatient(&mut config);
        }
        Some(Self::client(&config))
    }
}

#[async_trait]
impl TextToSpeechFixture for Fixture {
    async fn speaking(&self) -> Arc<dyn TextToSpeech> {
        let url = self.fake(Behaviour::default()).await;
        Self::client(&config(&url, NO_REST))
    }

    async fn cut_mid_stream(&self) -> Option<Arc<dyn TextToSpeech>> {
        let url = self
            .fake(Behaviour {
                cut_speech: true,
                ..Behaviour::default()
            })
            .await;
        Some(Self::client(&config(&url, NO_REST)))
    }

    /// The WebSocket fails; REST (the fallback) fails the same way.
    async fn failing(&self, failure: Failure) -> Option<Arc<dyn TextToSpeech>> {
        let url = self
            .fake(Behaviour {
                failure: Some(failure),
                ..Behaviour::default()
            })
            .await;
        let rest = self.failing_rest(failure).await;
        let mut config = config(&url, &rest);
        if failure == Failure::Slow {
            impatient(&mut config);
        }
        Some(Self::client(&config))
    }
}

#[tokio::test]
async fn deepgram_passes_the_speech_to_text_contract() {
    speech::run_stt(&Fixture::default()).await;
}

#[tokio::test]
async fn deepgram_passes_the_text_to_speech_contract() {
    speech::run_tts(&Fixture::default()).await;
}

/// Text-to-speech configured for REST only, on wiremock.
#[derive(Default)]
struct RestFixture {
    servers: Mutex<Vec<MockServer>>,
    inner: Fixture,
}

impl RestFixture {
    async fn echoing(&self) -> Arc<DeepgramClient> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/speak"))
            .respond_with(EchoSpeech)
            .mount(&server)
            .await;
        let mut config = config("ws://127.0.0.1:9", &server.uri());
        config.tts_transport = TtsTransport::Rest;
        self.servers.lock().expect("lock").push(server);
        Fixture::client(&config)
    }
}

#[async_trait]
impl TextToSpeechFixture for RestFixture {
    async fn speaking(&self) -> Arc<dyn TextToSpeech> {
        self.echoing().await
    }

    async fn cut_mid_stream(&self) -> Option<Arc<dyn TextToSpeech>> {
        // wiremock cannot cut a body midway; the WebSocket suite covers it.
        None
    }

    async fn failing(&self, failure: Failure) -> Option<Arc<dyn TextToSpeech>> {
        if failure == Failure::Malformed {
            // Any body is valid raw audio.
            return None;
        }
        let rest = self.inner.failing_rest(failure).await;
        let mut config = config("ws://127.0.0.1:9", &rest);
        config.tts_transport = TtsTransport::Rest;
        if failure == Failure::Slow {
            impatient(&mut config);
        }
        Some(Fixture::client(&config))
    }
}

#[tokio::test]
async fn deepgram_rest_speech_passes_the_text_to_speech_contract() {
    speech::run_tts(&RestFixture::default()).await;
}
