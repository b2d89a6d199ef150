//! Focused tests of [`GeminiEmbedder`] against wiremock: what goes on the
//! wire (key header, body, batches), retries, normalisation, error mapping.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use iace_domain::ports::{Embedder, ProviderError};
use iace_genai::{GeminiEmbedder, GenaiConfig, TaskType};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use support::{BATCH_PATH, FakeGemini, KEY};

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("text number {i}")).collect()
}

fn body(request: &Request) -> serde_json::Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

fn unit(values: &[f32]) -> Vec<f32> {
    let norm = values
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt();
    values
        .iter()
        .map(|v| {
            #[allow(clippy::cast_possible_truncation)]
            let scaled = (f64::from(*v) / norm) as f32;
            scaled
        })
        .collect()
}

async fn fake() -> MockServer {
    let server = MockServer::start().await;
    support::mount_fake(&server, None).await;
    server
}

#[tokio::test]
async fn the_key_travels_in_the_header_and_never_in_the_url() {
    let server = fake().await;
    let out = support::embedder(&server)
        .embed(&texts(2))
        .await
        .expect("embed");
    assert_eq!(out.len(), 2);
    let requests = support::received(&server).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request
            .headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok()),
        Some(KEY)
    );
    assert_eq!(request.url.query(), None);
    assert!(!request.url.as_str().contains(KEY));
    assert!(!request.url.as_str().contains("key="));
    assert!(request.headers.get("authorization").is_none());
    assert!(
        request.headers.get("traceparent").is_some(),
        "sent through the shared outbound stack"
    );
}

#[tokio::test]
async fn the_body_has_gemini_documented_shape() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path(
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
    ))
    .respond_with(FakeGemini { dimension: None })
    .mount(&server)
    .await;
    let embedder = GeminiEmbedder::new(&GenaiConfig {
        dimension: 1_536,
        task_type: TaskType::RetrievalQuery,
        model: "models/gemini-embedding-001".into(),
        ..support::config(&server)
    })
    .expect("embedder");
    let input = vec!["first text".to_owned(), "second text".to_owned()];
    let out = embedder.embed(&input).await.expect("embed");
    assert_eq!(out[0].dimension(), 1_536);
    let requests = support::received(&server).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method.as_str(), "POST");
    assert_eq!(
        body(&requests[0]),
        serde_json::json!({"requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "first text"}]},
                "taskType": "RETRIEVAL_QUERY",
                "outputDimensionality": 1536
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "second text"}]},
                "taskType": "RETRIEVAL_QUERY",
                "outputDimensionality": 1536
            }
        ]})
    );
}

#[tokio::test]
async fn texts_go_in_batches_of_at_most_100_and_come_back_in_order() {
    let server = fake().await;
    let input = texts(250);
    let out = support::embedder(&server)
        .embed(&input)
        .await
        .expect("embed");
    let sizes: Vec<usize> = support::received(&server)
        .await
        .iter()
        .map(|r| body(r)["requests"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(out.len(), 250);
    for (text, embedding) in input.iter().zip(&out) {
        let expected = unit(&support::raw_vector(text, 768));
        assert_eq!(embedding.as_slice(), expected.as_slice(), "{text}");
    }
}

#[tokio::test]
async fn a_smaller_batch_size_is_honoured() {
    let server = fake().await;
    let embedder = GeminiEmbedder::new(&GenaiConfig {
        batch_size: 40,
        ..support::config(&server)
    })
    .expect("embedder");
    embedder.embed(&texts(100)).await.expect("embed");
    let sizes: Vec<usize> = support::received(&server)
        .await
        .iter()
        .map(|r| body(r)["requests"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![40, 40, 20]);
}

#[tokio::test]
async fn no_text_means_no_request() {
    let server = fake().await;
    let out = support::embedder(&server).embed(&[]).await.expect("embed");
    assert!(out.is_empty());
    assert!(support::received(&server).await.is_empty());
}

/// Answers 503 `failures` times, then as the fake.
struct FailFirst {
    failures: AtomicUsize,
    then: FakeGemini,
}

impl Respond for FailFirst {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return ResponseTemplate::new(503);
        }
        self.then.respond(request)
    }
}

#[tokio::test]
async fn a_5xx_then_success_is_retried() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path(BATCH_PATH))
        .respond_with(FailFirst {
            failures: AtomicUsize::new(1),
            then: FakeGemini { dimension: None },
        })
        .mount(&server)
        .await;
    let out = support::embedder(&server)
        .embed(&texts(3))
        .await
        .expect("retried to success");
    assert_eq!(out.len(), 3);
    assert_eq!(support::received(&server).await.len(), 2);
}

#[tokio::test]
async fn a_truncated_vector_is_normalised() {
    let server = MockServer::start().await;
    support::mount_template(
        &server,
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "embeddings": [{"values": [3.0, 4.0]}, {"values": [0.0, -0.5]}]
        })),
    )
    .await;
    let embedder = GeminiEmbedder::new(&GenaiConfig {
        dimension: 2,
        ..support::config(&server)
    })
    .expect("embedder");
    let out = embedder.embed(&texts(2)).await.expect("embed");
    assert_eq!(out[0].as_slice(), &[0.6, 0.8]);
    assert_eq!(out[1].as_slice(), &[0.0, -1.0]);
}

async fn invalid_response_for(answer: serde_json::Value) {
    let server = MockServer::start().await;
    support::mount_template(&server, ResponseTemplate::new(200).set_body_json(&answer)).await;
    let embedder = GeminiEmbedder::new(&GenaiConfig {
        dimension: 2,
        ..support::config(&server)
    })
    .expect("embedder");
    let err = embedder.embed(&texts(2)).await.expect_err("invalid");
    assert!(
        matches!(
            err,
            ProviderError::InvalidResponse {
                provider: "gemini",
                ..
            }
        ),
        "{answer}: {err:?}"
    );
}

#[tokio::test]
async fn wrong_counts_zero_vectors_and_other_shapes_are_invalid() {
    invalid_response_for(serde_json::json!({"embeddings": [{"values": [1.0, 0.0]}]})).await;
    invalid_response_for(serde_json::json!({
        "embeddings": [{"values": [1.0, 0.0]}, {"values": [0.0, 0.0]}]
    }))
    .await;
    invalid_response_for(serde_json::json!({
        "embeddings": [{"values": [1.0, 0.0]}, {"values": [1.0, 0.0, 1.0]}]
    }))
    .await;
    invalid_response_for(serde_json::json!({"embedding": {"values": [1.0, 0.0]}})).await;
}

async fn error_for(template: ResponseTemplate) -> (ProviderError, usize) {
    let server = MockServer::start().await;
    support::mount_template(&server, template).await;
    let err = support::embedder(&server)
        .embed(&texts(2))
        .await
        .expect_err("an error");
    (err, support::received(&server).await.len())
}

#[tokio::test]
async fn refused_keys_are_unauthorized_whatever_the_status() {
    let (err, _) = error_for(support::invalid_key()).await;
    assert!(
        matches!(err, ProviderError::Unauthorized { provider: "gemini" }),
        "{err:?}"
    );
    let (err, _) = error_for(ResponseTemplate::new(403).set_body_json(serde_json::json!({
        "error": {"code": 403, "message": "Method doesn't allow unregistered callers.",
                  "status": "PERMISSION_DENIED"}
    })))
    .await;
    assert!(
        matches!(err, ProviderError::Unauthorized { provider: "gemini" }),
        "{err:?}"
    );
}

#[tokio::test]
async fn other_bad_requests_are_rejected_with_gemini_explanation() {
    let (err, hits) = error_for(ResponseTemplate::new(400).set_body_json(serde_json::json!({
        "error": {"code": 400, "message": "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch",
                  "status": "INVALID_ARGUMENT"}
    })))
    .await;
    match err {
        ProviderError::Rejected {
            provider: "gemini",
            status: Some(400),
            detail,
        } => assert!(detail.contains("at most 100 requests"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(hits, 1, "a 400 is not retried");
}

#[tokio::test]
async fn a_long_retry_after_gives_up_at_once_and_is_reported() {
    let (err, hits) = error_for(support::rate_limited(30)).await;
    match err {
        ProviderError::RateLimited {
            provider: "gemini",
            retry_after,
        } => assert_eq!(retry_after.map(|d| d.as_secs()), Some(30)),
        other => panic!("{other:?}"),
    }
    assert_eq!(hits, 1);
}

#[tokio::test]
async fn a_failed_batch_fails_the_call_and_stops_there() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path(BATCH_PATH))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let err = support::embedder(&server)
        .embed(&texts(250))
        .await
        .expect_err("unavailable");
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(
        support::received(&server).await.len(),
        2,
        "the first batch's two attempts, no later batch"
    );
}

#[tokio::test]
async fn the_circuit_opens_on_repeated_failures_and_closes_after_recovery() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(BATCH_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    support::mount_fake(&server, None).await;
    let embedder = GeminiEmbedder::new(&GenaiConfig {
        policy: iace_http::HttpPolicy {
            attempts: 1,
            ..support::fast_policy()
        },
        breaker: iace_http::BreakerConfig {
            failure_threshold: 3,
            window_ms: 10_000,
            open_ms: 200,
        },
        ..support::config(&server)
    })
    .expect("embedder");
    let texts = vec!["hello".to_owned()];
    for _ in 0..3 {
        let err = embedder.embed(&texts).await.expect_err("503");
        assert!(matches!(err, ProviderError::Unavailable { .. }), "{err:?}");
    }
    let err = embedder.embed(&texts).await.expect_err("open");
    assert!(
        matches!(err, ProviderError::CircuitOpen { provider: "gemini" }),
        "{err:?}"
    );
    assert_eq!(
        support::received(&server).await.len(),
        3,
        "nothing sent while open"
    );
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(
        embedder
            .embed(&texts)
            .await
            .expect("the probe succeeds")
            .len(),
        1
    );
    assert_eq!(embedder.breaker().state(), iace_http::BreakerState::Closed);
}
