//! The outbound stack against wiremock: retries (and when not), Retry-After,
//! timeouts and deadlines, error mapping, the circuit breaker, propagation.

use std::time::Duration;

use http::Method;
use iace_domain::ports::ProviderError;
use iace_http::{
    BreakerConfig, BreakerState, HttpPolicy, Operation, OutboundClient, OutboundContext,
    TraceParent,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn policy(attempts: u32) -> HttpPolicy {
    HttpPolicy {
        attempts,
        attempt_timeout_ms: 1_000,
        deadline_ms: 5_000,
        backoff_min_ms: 1,
        backoff_max_ms: 10,
    }
}

fn client() -> OutboundClient {
    OutboundClient::new("acme", &BreakerConfig::default()).expect("client")
}

/// Answers with each template in turn, then repeats the last.
struct Sequence(std::sync::Mutex<Vec<ResponseTemplate>>);

impl Sequence {
    fn new(mut templates: Vec<ResponseTemplate>) -> Self {
        templates.reverse();
        Self(std::sync::Mutex::new(templates))
    }
}

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut left = self.0.lock().expect("lock");
        if left.len() > 1 {
            left.pop().expect("one left")
        } else {
            left.last().cloned().expect("a template")
        }
    }
}

async fn server_with(templates: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/op"))
        .respond_with(Sequence::new(templates))
        .mount(&server)
        .await;
    server
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn a_5xx_then_success_is_retried_when_safe() {
    let server = server_with(vec![
        ResponseTemplate::new(503),
        ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})),
    ])
    .await;
    let client = client();
    let body: serde_json::Value = client
        .send_json(
            Operation::safe("op", policy(3)),
            client.request(Method::POST, &format!("{}/op", server.uri())),
        )
        .await
        .expect("retried to success");
    assert_eq!(body["ok"], true);
    assert_eq!(hits(&server).await, 2);
}

#[tokio::test]
async fn an_unsafe_request_is_never_repeated() {
    let server = server_with(vec![ResponseTemplate::new(503)]).await;
    let client = client();
    let err = client
        .send(
            Operation::once("op", policy(3)),
            client.request(Method::POST, &format!("{}/op", server.uri())),
        )
        .await
        .expect_err("503");
    assert!(
        matches!(
            err,
            ProviderError::Unavailable {
                provider: "acme",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(hits(&server).await, 1);
}

#[tokio::test]
async fn attempts_are_bounded() {
    let server = server_with(vec![ResponseTemplate::new(500)]).await;
    let client = client();
    let err = client
        .send(
            Operation::safe("op", policy(3)),
            client.request(Method::GET, &format!("{}/op", server.uri())),
        )
        .await
        .expect_err("always 500");
    assert!(err.is_retryable());
    assert_eq!(hits(&server).await, 3);
}

#[tokio::test]
async fn retry_after_is_honoured_within_the_deadline() {
    let server = server_with(vec![
        ResponseTemplate::new(429).insert_header("retry-after", "0.2"),
        ResponseTemplate::new(200),
    ])
    .await;
    let client = client();
    client
        .send(
            Operation::safe("op", policy(2)),
            client.request(Method::GET, &format!("{}/op", server.uri())),
        )
        .await
        .expect("second attempt succeeds");
    assert_eq!(hits(&server).await, 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_gives_up_at_once() {
    let server = server_with(vec![
        ResponseTemplate::new(429).insert_header("retry-after", "30"),
        ResponseTemplate::new(200),
    ])
    .await;
    let client = client();
    let err = client
        .send(
            Operation::safe("op", policy(3)),
            client.request(Method::GET, &format!("{}/op", server.uri())),
        )
        .await
        .expect_err("429");
    match err {
        ProviderError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hits(&server).await, 1);
}

#[tokio::test]
async fn a_slow_provider_times_out() {
    let server = server_with(vec![
        ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
    ])
    .await;
    let client = client();
    let slow = HttpPolicy {
        attempt_timeout_ms: 100,
        deadline_ms: 250,
        ..policy(5)
    };
    let err = client
        .send(
            Operation::safe("op", slow),
            client.request(Method::GET, &format!("{}/op", server.uri())),
        )
        .await
        .expect_err("timeout");
    assert!(
        matches!(err, ProviderError::Timeout { provider: "acme" }),
        "{err:?}"
    );
    // The deadline (250 ms) allows at most a few 100 ms attempts, not five.
    assert!((1..=3).contains(&hits(&server).await));
}

#[tokio::test]
async fn client_errors_map_to_the_domain_and_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/denied"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(path("/bad"))
        .respond_with(ResponseTemplate::new(422).set_body_json(serde_json::json!({
            "errors": [{"code": "90018", "title": "Call has already ended", "detail": "Call has already ended"}]
        })))
        .mount(&server)
        .await;
    let client = client();
    let err = client
        .send(
            Operation::safe("op", policy(3)),
            client.request(Method::GET, &format!("{}/denied", server.uri())),
        )
        .await
        .expect_err("401");
    assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err:?}");
    let err = client
        .send(
            Operation::safe("op", policy(3)),
            client.request(Method::GET, &format!("{}/bad", server.uri())),
        )
        .await
        .expect_err("422");
    match err {
        ProviderError::Rejected { status, detail, .. } => {
            assert_eq!(status, Some(422));
            assert!(detail.contains("90018"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hits(&server).await, 2, "one request each");
}

#[tokio::test]
async fn a_malformed_body_is_an_invalid_response() {
    let server = server_with(vec![
        ResponseTemplate::new(200).set_body_string("{not json"),
    ])
    .await;
    let client = client();
    let err = client
        .send_json::<serde_json::Value>(
            Operation::safe("op", policy(1)),
            client.request(Method::GET, &format!("{}/op", server.uri())),
        )
        .await
        .expect_err("malformed");
    assert!(
        matches!(err, ProviderError::InvalidResponse { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_and_closes_after_recovery() {
    let server = server_with(vec![
        ResponseTemplate::new(500),
        ResponseTemplate::new(500),
        ResponseTemplate::new(200),
    ])
    .await;
    let client = OutboundClient::new(
        "acme",
        &BreakerConfig {
            failure_threshold: 2,
            window_ms: 10_000,
            open_ms: 200,
        },
    )
    .expect("client");
    let url = format!("{}/op", server.uri());
    for _ in 0..2 {
        let err = client
            .send(
                Operation::once("op", policy(1)),
                client.request(Method::GET, &url),
            )
            .await
            .expect_err("500");
        assert!(matches!(err, ProviderError::Unavailable { .. }));
    }
    assert_eq!(client.breaker().state(), BreakerState::Open);
    let err = client
        .send(
            Operation::once("op", policy(1)),
            client.request(Method::GET, &url),
        )
        .await
        .expect_err("open");
    assert!(
        matches!(err, ProviderError::CircuitOpen { provider: "acme" }),
        "{err:?}"
    );
    assert_eq!(hits(&server).await, 2, "an open circuit sends nothing");

    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(client.breaker().state(), BreakerState::HalfOpen);
    client
        .send(
            Operation::once("op", policy(1)),
            client.request(Method::GET, &url),
        )
        .await
        .expect("the probe succeeds");
    assert_eq!(client.breaker().state(), BreakerState::Closed);
}

#[tokio::test]
async fn request_id_trace_context_and_user_agent_are_propagated() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let client = client();
    let parent = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .expect("traceparent");
    let context = OutboundContext {
        request_id: Some("req-42".into()),
        trace: Some(parent),
    };
    iace_http::context::scope(context, async {
        client
            .send(
                Operation::safe("op", policy(1)),
                client.request(Method::GET, &format!("{}/op", server.uri())),
            )
            .await
            .expect("ok");
    })
    .await;
    // Outside any scope: no request id, a fresh trace.
    client
        .send(
            Operation::safe("op", policy(1)),
            client.request(Method::GET, &format!("{}/op", server.uri())),
        )
        .await
        .expect("ok");
    let received = server.received_requests().await.expect("recorded");
    let header = |i: usize, name: &str| {
        received[i]
            .headers
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    assert_eq!(header(0, "x-request-id").as_deref(), Some("req-42"));
    let sent = TraceParent::parse(&header(0, "traceparent").expect("traceparent")).expect("valid");
    assert_eq!(sent.trace_id(), parent.trace_id());
    assert_ne!(sent, parent, "a new parent id per request");
    assert!(header(0, "user-agent").expect("ua").starts_with("iace/"));
    assert_eq!(header(1, "x-request-id"), None);
    let fresh = TraceParent::parse(&header(1, "traceparent").expect("traceparent")).expect("valid");
    assert_ne!(fresh.trace_id(), parent.trace_id());
}

#[tokio::test]
async fn a_body_cut_mid_way_is_unavailable() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\ncontent-type: application/json\r\n\r\n{\"partial\":")
            .await;
        // Dropped: the connection closes 90 bytes short.
    });
    let client = client();
    let err = client
        .send_json::<serde_json::Value>(
            Operation::once("op", policy(1)),
            client.request(Method::GET, &format!("http://{addr}/op")),
        )
        .await
        .expect_err("cut");
    assert!(matches!(err, ProviderError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_half_open_probe_whose_caller_gives_up_does_not_stick_the_circuit() {
    let server = MockServer::start().await;
    Mock::given(path("/fail"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    Mock::given(path("/ok"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let client = OutboundClient::new(
        "acme",
        &BreakerConfig {
            failure_threshold: 2,
            window_ms: 10_000,
            open_ms: 100,
        },
    )
    .expect("client");
    for _ in 0..2 {
        let _ = client
            .send(
                Operation::once("op", policy(1)),
                client.request(Method::GET, &format!("{}/fail", server.uri())),
            )
            .await;
    }
    assert_eq!(client.breaker().state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The probe's caller gives up mid-request (a barge-in, a disconnect).
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        client.send(
            Operation::once("op", policy(1)),
            client.request(Method::GET, &format!("{}/slow", server.uri())),
        ),
    )
    .await;
    assert!(abandoned.is_err(), "the probe was abandoned");
    // The next caller probes, and its success closes the circuit.
    client
        .send(
            Operation::once("op", policy(1)),
            client.request(Method::GET, &format!("{}/ok", server.uri())),
        )
        .await
        .expect("the next probe goes through");
    assert_eq!(client.breaker().state(), BreakerState::Closed);
}

#[tokio::test]
async fn the_deadline_bounds_reading_the_body_too() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\ncontent-type: application/json\r\n\r\n{")
            .await;
        // The rest of the body never comes.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let client = client();
    let generous_attempt = HttpPolicy {
        attempts: 1,
        attempt_timeout_ms: 30_000,
        deadline_ms: 300,
        ..policy(1)
    };
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        client.send_json::<serde_json::Value>(
            Operation::once("op", generous_attempt),
            client.request(Method::GET, &format!("http://{addr}/op")),
        ),
    )
    .await
    .expect("the 300 ms deadline, not the 30 s attempt timeout, ends the wait");
    assert!(
        matches!(result, Err(ProviderError::Timeout { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/moved"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "http://127.0.0.1:9/elsewhere"),
        )
        .mount(&server)
        .await;
    let client = client();
    let err = client
        .send(
            Operation::once("op", policy(1)),
            client
                .request(Method::GET, &format!("{}/moved", server.uri()))
                .header("x-goog-api-key", "secret"),
        )
        .await
        .expect_err("a redirect is not a success");
    assert!(matches!(err, ProviderError::Unavailable { .. }), "{err:?}");
}
