//! Error reporting through a local Sentry receiver (wiremock): an error
//! inside a request's scope and a panic arrive tagged and scrubbed.

use iace_telemetry::{LogConfig, SentryConfig, TracesConfig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn errors_and_panics_reach_sentry_tagged_with_the_request_and_scrubbed() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/42/envelope/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let dsn = format!("http://public@{}/42", receiver.address());
    let telemetry = iace_telemetry::init(
        &LogConfig::default(),
        &TracesConfig::default(),
        &SentryConfig {
            dsn: Some(dsn.into()),
            environment: Some("test".into()),
            sample_rate: 1.0,
        },
    );
    iace_telemetry::errors::request_scope(
        "req-42",
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        async {
            tracing::warn!("looking up +14155550123");
            tracing::error!(
                detail = "sms to jane@example.com",
                "internal error: dialling +14155550123 failed"
            );
        },
    )
    .await;
    // Outside any request: a panic on another thread.
    let panicked = std::thread::spawn(|| panic!("boom for +442079460958")).join();
    assert!(panicked.is_err());
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .expect("flushed");

    let received = receiver.received_requests().await.expect("requests");
    assert!(
        received.len() >= 2,
        "an error and a panic: {}",
        received.len()
    );
    assert!(
        received.iter().all(|r| r
            .headers
            .get("x-sentry-auth")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("sentry_key=public"))),
        "authenticated with the DSN's key"
    );
    let all: String = received
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let error = all
        .lines()
        .find(|l| l.contains("internal error: dialling"))
        .unwrap_or_else(|| panic!("no error event in:\n{all}"));
    assert!(error.contains("req-42"), "tagged with the request: {error}");
    assert!(
        error.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "tagged with the trace: {error}"
    );
    assert!(error.contains("+1415***0123"), "{error}");
    assert!(
        error.contains("looking up"),
        "the warning as a breadcrumb: {error}"
    );
    assert!(all.contains("boom for +4420***0958"), "the panic: {all}");
    for secret in ["14155550123", "442079460958", "jane@example.com"] {
        assert!(!all.contains(secret), "{secret} left the process:\n{all}");
    }
}
