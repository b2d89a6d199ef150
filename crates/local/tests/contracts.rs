//! The contract suites from `iace-testkit` on the embedded implementations:
//! infrastructure (the Redis adapter runs the same suites) and providers (the
//! remote adapters run the same suites against fakes of their services).
//!
//! The local providers are their own "provider": a case they cannot be made
//! to play (a failing network, a cut stream) is skipped by returning `None`.

use std::sync::Arc;

use async_trait::async_trait;
use iace_domain::PhoneNumber;
use iace_domain::ports::{
    CallHandle, DialRequest, Embedder, LanguageModel, MachineDetection, SentimentAnalyzer,
    SystemClock, TelephonyGateway,
};
use iace_local::bus::LocalEventBus;
use iace_local::cache::LocalCache;
use iace_local::dedupe::LocalEventDedupe;
use iace_local::embedder::HashingEmbedder;
use iace_local::limiter::LocalRateLimiter;
use iace_local::replies::ScriptedReplies;
use iace_local::sentiment::LexiconSentiment;
use iace_local::telephony::SimulatedTelephony;
use iace_testkit::Harness;
use iace_testkit::contracts;
use iace_testkit::contracts::embedder::EmbedderFixture;
use iace_testkit::contracts::language_model::LanguageModelFixture;
use iace_testkit::contracts::provider_failure::Failure;
use iace_testkit::contracts::sentiment::SentimentFixture;
use iace_testkit::contracts::telephony::TelephonyFixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiter() {
    contracts::rate_limiter::run(|| async {
        Harness::new(LocalRateLimiter::new(Arc::new(SystemClock)))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache() {
    contracts::cache::run(|| async { Harness::new(LocalCache::new(Arc::new(SystemClock), 1_000)) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_bus() {
    contracts::event_bus::run(|| async { Harness::new(LocalEventBus::new(64)) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_dedupe() {
    contracts::event_dedupe::run(|| async {
        Harness::new(LocalEventDedupe::new(Arc::new(SystemClock), 1_000))
    })
    .await;
}

/// Builds the local providers for the provider suites.
struct Local;

#[async_trait]
impl SentimentFixture for Local {
    async fn reading(&self) -> Arc<dyn SentimentAnalyzer> {
        Arc::new(LexiconSentiment::new())
    }

    async fn scoring(&self, _score: f64, _reasons: &[&str]) -> Option<Arc<dyn SentimentAnalyzer>> {
        None // the lexicon's score is the text's, never imposed
    }

    async fn failing(&self, _failure: Failure) -> Option<Arc<dyn SentimentAnalyzer>> {
        None
    }
}

#[async_trait]
impl LanguageModelFixture for Local {
    async fn replying(&self, text: &str) -> Arc<dyn LanguageModel> {
        Arc::new(ScriptedReplies::always(text))
    }

    async fn calling_tool(
        &self,
        name: &str,
        arguments: &serde_json::Value,
    ) -> Option<Arc<dyn LanguageModel>> {
        Some(Arc::new(ScriptedReplies::always_calling(
            name,
            arguments.clone(),
        )))
    }

    async fn cut_after(&self, _text: &str) -> Option<Arc<dyn LanguageModel>> {
        None
    }

    async fn failing(&self, _failure: Failure) -> Option<Arc<dyn LanguageModel>> {
        None
    }
}

#[async_trait]
impl EmbedderFixture for Local {
    async fn embedding(&self) -> Arc<dyn Embedder> {
        Arc::new(HashingEmbedder::new(768))
    }

    async fn wrong_dimension(&self) -> Option<Arc<dyn Embedder>> {
        None
    }

    async fn failing(&self, _failure: Failure) -> Option<Arc<dyn Embedder>> {
        None
    }
}

#[async_trait]
impl TelephonyFixture for Local {
    async fn accepting(&self) -> Arc<dyn TelephonyGateway> {
        Arc::new(SimulatedTelephony::new())
    }

    async fn ended_call(&self) -> (Arc<dyn TelephonyGateway>, CallHandle) {
        let telephony = SimulatedTelephony::new();
        let request = DialRequest {
            call_id: iace_domain::CallId::new(),
            from: PhoneNumber::parse("+14155550100").expect("number"),
            to: PhoneNumber::parse("+442079460958").expect("number"),
            media_stream: None,
            machine_detection: MachineDetection::Disabled,
            ring_timeout: std::time::Duration::from_secs(30),
            connection: None,
        };
        let dialled = telephony.dial(&request).await.expect("dial");
        let call = CallHandle {
            call_id: request.call_id,
            provider_call_id: dialled.provider_call_id,
        };
        telephony.hang_up(&call).await.expect("hang up");
        (Arc::new(telephony), call)
    }

    async fn refusing(&self, to: &PhoneNumber) -> Option<Arc<dyn TelephonyGateway>> {
        Some(Arc::new(
            SimulatedTelephony::new().with_failing_numbers([to.clone()]),
        ))
    }

    async fn failing(&self, _failure: Failure) -> Option<Arc<dyn TelephonyGateway>> {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentiment() {
    contracts::sentiment::run(&Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn language_model() {
    contracts::language_model::run(&Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedder() {
    contracts::embedder::run(&Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telephony() {
    contracts::telephony::run(&Local).await;
}

#[async_trait]
impl contracts::speech::SpeechToTextFixture for Local {
    async fn transcribing(&self) -> Arc<dyn iace_domain::ports::SpeechToText> {
        Arc::new(iace_local::speech::TextSpeechToText::new())
    }

    async fn dropping_after_first_final(
        &self,
    ) -> Option<Arc<dyn iace_domain::ports::SpeechToText>> {
        None
    }

    async fn failing(&self, _: Failure) -> Option<Arc<dyn iace_domain::ports::SpeechToText>> {
        None
    }
}

#[async_trait]
impl contracts::speech::TextToSpeechFixture for Local {
    async fn speaking(&self) -> Arc<dyn iace_domain::ports::TextToSpeech> {
        Arc::new(iace_local::speech::EchoTextToSpeech::new())
    }

    async fn cut_mid_stream(&self) -> Option<Arc<dyn iace_domain::ports::TextToSpeech>> {
        None
    }

    async fn failing(&self, _: Failure) -> Option<Arc<dyn iace_domain::ports::TextToSpeech>> {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_to_text() {
    contracts::speech::run_stt(&Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_to_speech() {
    contracts::speech::run_tts(&Local).await;
}
