//! The provider contract suites from `iace-testkit`, on `GroqClient` against
//! wiremock fakes speaking the OpenAI-compatible format Groq documents
//! (event streams of `chat.completion.chunk` ending in `data: [DONE]`, tool
//! call fragments, Groq's error bodies and statuses).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use iace_domain::ports::{LanguageModel, SentimentAnalyzer};
use iace_testkit::contracts::language_model::{self, LanguageModelFixture};
use iace_testkit::contracts::provider_failure::Failure;
use iace_testkit::contracts::sentiment::{self, SentimentFixture};
use serde_json::Value;
use support::{CHAT_PATH, client, error_body, pieces, reply_chunks, role_chunk, sse, text_chunk};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Starts fakes and keeps them running for as long as the suite needs them.
#[derive(Default)]
struct Fakes(Mutex<Vec<MockServer>>);

impl Fakes {
    /// A fake answering every completion request with `response`; its URI.
    async fn serve(&self, response: impl Respond + 'static) -> String {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(CHAT_PATH))
            .respond_with(response)
            .mount(&server)
            .await;
        let uri = server.uri();
        self.0.lock().expect("lock").push(server);
        uri
    }

    /// A fake failing as `failure` asks, for a streamed (`stream`) or a JSON
    /// answer; the client for it.
    async fn failing(&self, failure: Failure, stream: bool) -> iace_groq::GroqClient {
        let response = match failure {
            Failure::RateLimited { retry_after_secs } => ResponseTemplate::new(429)
                .insert_header("retry-after", retry_after_secs.to_string().as_str())
                .set_body_json(error_body(
                    "Rate limit reached for model `llama-3.3-70b-versatile`",
                    "tokens",
                    "rate_limit_exceeded",
                )),
            Failure::Unavailable => ResponseTemplate::new(503).set_body_json(error_body(
                "Service Unavailable",
                "internal_server_error",
                "service_unavailable",
            )),
            Failure::Unauthorized => ResponseTemplate::new(401).set_body_json(error_body(
                "Invalid API Key",
                "invalid_request_error",
                "invalid_api_key",
            )),
            Failure::Slow => {
                let answer = if stream {
                    sse(&reply_chunks("Too late."), true)
                } else {
                    support::verdict(0.0, "neutral", &[])
                };
                answer.set_delay(Duration::from_secs(2))
            }
            Failure::Malformed if stream => ResponseTemplate::new(200).set_body_raw(
                "<html><body>Upstream answered something else</body></html>",
                "text/html",
            ),
            Failure::Malformed => {
                ResponseTemplate::new(200).set_body_raw("this is not json", "text/plain")
            }
        };
        let uri = self.serve(response).await;
        client(&uri, failure == Failure::Slow)
    }
}

#[async_trait]
impl LanguageModelFixture for Fakes {
    async fn replying(&self, text: &str) -> Arc<dyn LanguageModel> {
        let uri = self.serve(sse(&reply_chunks(text), true)).await;
        Arc::new(client(&uri, false))
    }

    async fn calling_tool(&self, name: &str, arguments: &Value) -> Option<Arc<dyn LanguageModel>> {
        let uri = self
            .serve(sse(&support::tool_call_chunks(name, arguments), true))
            .await;
        Some(Arc::new(client(&uri, false)))
    }

    async fn cut_after(&self, text: &str) -> Option<Arc<dyn LanguageModel>> {
        // Some text, then the body ends: no finish_reason, no [DONE].
        let mut chunks = vec![role_chunk()];
        chunks.extend(pieces(text).iter().map(|piece| text_chunk(piece)));
        let uri = self.serve(sse(&chunks, false)).await;
        Some(Arc::new(client(&uri, false)))
    }

    async fn failing(&self, failure: Failure) -> Option<Arc<dyn LanguageModel>> {
        Some(Arc::new(Fakes::failing(self, failure, true).await))
    }
}

/// Reads the user message by keywords, as the sentiment suite's fake should.
struct Keywords;

impl Respond for Keywords {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = request.body_json().expect("a JSON request");
        let utterance = body["messages"]
            .as_array()
            .and_then(|messages| messages.iter().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| utterance.contains(w));
        if has(&["love", "thank"]) {
            support::verdict(0.8, "positive", &["thanked the agent"])
        } else if has(&["terrible", "angry"]) {
            support::verdict(-0.8, "negative", &["is angry"])
        } else {
            support::verdict(0.0, "neutral", &[])
        }
    }
}

#[async_trait]
impl SentimentFixture for Fakes {
    async fn reading(&self) -> Arc<dyn SentimentAnalyzer> {
        let uri = self.serve(Keywords).await;
        Arc::new(client(&uri, false))
    }

    async fn scoring(&self, score: f64, reasons: &[&str]) -> Option<Arc<dyn SentimentAnalyzer>> {
        // The label disagrees on purpose: the score decides.
        let uri = self
            .serve(support::verdict(score, "neutral", reasons))
            .await;
        Some(Arc::new(client(&uri, false)))
    }

    async fn failing(&self, failure: Failure) -> Option<Arc<dyn SentimentAnalyzer>> {
        Some(Arc::new(Fakes::failing(self, failure, false).await))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn language_model() {
    language_model::run(&Fakes::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentiment() {
    sentiment::run(&Fakes::default()).await;
}
