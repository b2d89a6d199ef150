//! A fake Gemini embedding endpoint on wiremock, shared by the test binaries.

#![allow(dead_code, unreachable_pub)] // each test binary uses part of it

use std::time::Duration;

use iace_genai::{GeminiEmbedder, GenaiConfig};
use iace_http::HttpPolicy;
use secrecy::SecretString;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The key the fake accepts.
pub const KEY: &str = "test-gemini-key";
/// The batch endpoint of the default model, under `/v1beta`.
pub const BATCH_PATH: &str = "/v1beta/models/gemini-embedding-001:batchEmbedContents";

/// A short policy so failure cases end quickly.
pub fn fast_policy() -> HttpPolicy {
    HttpPolicy {
        attempts: 2,
        attempt_timeout_ms: 300,
        deadline_ms: 1_000,
        backoff_min_ms: 1,
        backoff_max_ms: 10,
    }
}

/// A configuration pointing at `server`.
pub fn config(server: &MockServer) -> GenaiConfig {
    GenaiConfig {
        api_key: SecretString::from(KEY),
        base_url: format!("{}/v1beta", server.uri()),
        policy: fast_policy(),
        ..GenaiConfig::default()
    }
}

/// An embedder configured for `server`.
pub fn embedder(server: &MockServer) -> GeminiEmbedder {
    GeminiEmbedder::new(&config(server)).expect("embedder")
}

/// Deterministic, *not* normalised components for `text`: 64-bit FNV-1a of
/// the text seeds a xorshift generator, each component in -4..4.
pub fn raw_vector(text: &str, dimension: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }) | 1;
    (0..dimension)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32; // 0..1
            unit.mul_add(8.0, -4.0)
        })
        .collect()
}

/// Answers `batchEmbedContents` as Gemini does: one `values` per request,
/// derived from its text, of the requested `outputDimensionality` (or of
/// `dimension` when set, to play a misbehaving provider).
pub struct FakeGemini {
    /// Answer this dimension whatever was asked.
    pub dimension: Option<usize>,
}

impl Respond for FakeGemini {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return ResponseTemplate::new(400);
        };
        let Some(requests) = body["requests"].as_array() else {
            return ResponseTemplate::new(400);
        };
        let embeddings: Vec<_> = requests
            .iter()
            .map(|r| {
                let text = r["content"]["parts"][0]["text"].as_str().unwrap_or("");
                let asked = r["outputDimensionality"].as_u64().unwrap_or(3_072);
                let dimension = self
                    .dimension
                    .unwrap_or_else(|| usize::try_from(asked).expect("small"));
                serde_json::json!({"values": raw_vector(text, dimension)})
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({ "embeddings": embeddings }))
    }
}

/// Mounts the fake (only for requests carrying the key) on `server`.
pub async fn mount_fake(server: &MockServer, dimension: Option<usize>) {
    Mock::given(method("POST"))
        .and(path(BATCH_PATH))
        .and(header("x-goog-api-key", KEY))
        .respond_with(FakeGemini { dimension })
        .mount(server)
        .await;
}

/// Mounts a fixed answer for every batch request.
pub async fn mount_template(server: &MockServer, template: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(BATCH_PATH))
        .respond_with(template)
        .mount(server)
        .await;
}

/// Gemini's answer to a wrong key: 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
pub fn invalid_key() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}
        }]
    }}))
}

/// Gemini's answer once the quota is spent.
pub fn rate_limited(retry_after_secs: u64) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("retry-after", retry_after_secs.to_string().as_str())
        .set_body_json(serde_json::json!({"error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED"
        }}))
}

/// A slow answer (beyond [`fast_policy`]'s deadline).
pub fn slow() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"embeddings": []}))
        .set_delay(Duration::from_secs(3))
}

/// The requests `server` received.
pub async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}
