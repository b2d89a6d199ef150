//! Health, readiness, OpenAPI, docs UI and the problem format.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn health_readiness_openapi_and_docs() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let (s, body, _) = app.call(Method::GET, "/healthz", None, None).await;
        assert_eq!((s, body["status"].clone()), (StatusCode::OK, json!("ok")));
        let (s, body, _) = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["checks"][0], json!({"name": "database", "ok": true}));
        let (s, spec, _) = app.call(Method::GET, "/openapi.json", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            spec["openapi"]
                .as_str()
                .unwrap_or_default()
                .starts_with("3.1"),
            "{}",
            spec["openapi"]
        );
        for path in [
            "/healthz",
            "/readyz",
            "/v1/auth/login",
            "/v1/auth/refresh",
            "/v1/auth/revoke",
            "/v1/me",
            "/v1/api-keys",
            "/v1/api-keys/{id}",
            "/v1/customers",
            "/v1/customers/lookup",
            "/v1/customers/{id}",
            "/v1/customers/{id}/memory",
            "/v1/agents",
            "/v1/agents/{id}",
            "/v1/agents/{id}/availability",
            "/v1/personas",
            "/v1/personas/{id}",
            "/v1/experiments",
            "/v1/experiments/{id}",
            "/v1/experiments/{id}/start",
            "/v1/experiments/{id}/pause",
            "/v1/experiments/{id}/stop",
            "/v1/experiments/{id}/results",
            "/v1/patterns/top",
            "/v1/patterns/search",
            "/v1/patterns/{id}",
            "/v1/calls",
            "/v1/calls/{id}",
            "/v1/calls/{id}/hangup",
            "/v1/calls/{id}/transfer",
        ] {
            assert!(spec["paths"][path].is_object(), "{path} is not documented");
        }
        assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
        assert!(spec["components"]["schemas"]["Problem"].is_object());
        let docs = app
            .client
            .get(format!("{}/docs", app.base))
            .send()
            .await
            .expect("docs");
        assert_eq!(docs.status(), StatusCode::OK);
        let html = docs.text().await.expect("html");
        assert!(html.contains("<html") && html.contains("/docs/scalar.js"));
        assert!(
            !html.contains("https://"),
            "the docs page loads nothing from the network"
        );
        let script = app
            .client
            .get(format!("{}/docs/scalar.js", app.base))
            .send()
            .await
            .expect("js");
        assert_eq!(script.status(), StatusCode::OK);
        assert!(script.bytes().await.expect("bytes").len() > 1_000_000);
    }
}

#[tokio::test]
async fn problem_format_is_pinned() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app
        .client
        .get(format!("{}/v1/me", app.base))
        .header("x-request-id", "req-123")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(response.headers()["x-request-id"], "req-123");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({
            "type": "urn:iace:problem:missing_credentials",
            "title": "Unauthorized",
            "status": 401,
            "detail": "send Authorization: Bearer <token or API key>",
            "code": "missing_credentials",
            "request_id": "req-123"
        })
    );
    // A generated request id when none (or a hostile one) is sent.
    let (s, body, headers) = app.call(Method::GET, "/nope", None, None).await;
    assert_problem(s, &body, StatusCode::NOT_FOUND, "route_not_found");
    assert_eq!(
        body["request_id"],
        headers["x-request-id"].to_str().expect("id")
    );
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting_and_returns() {
    use iace_api::startup::Application;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("iace-shutdown-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut config = iace_api::config::Config::default();
    config.server.bind = "127.0.0.1:0".parse().expect("addr");
    config.server.shutdown_timeout_ms = 2_000;
    config.database = iace_db::DbConfig::default().with_url(format!(
        "sqlite://{}?mode=rwc",
        dir.join("iace.db").display()
    ));
    config.auth.jwt_secret = Some(secrecy::SecretString::from(SECRET));
    let app = Application::build(config).await.expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("up");
    assert_eq!(ok.status(), StatusCode::OK);
    stop.send(()).expect("signal");
    let result = tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("stops within the shutdown timeout")
        .expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "no longer accepting"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn remote_providers_configured_report_their_circuits_and_are_checked_at_start() {
    // RFC 8032, test 1: a valid Ed25519 public key.
    let key = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_owned();
    let telnyx = |public_key: Option<String>| iace_telnyx::TelnyxConfig {
        api_key: secrecy::SecretString::from("KEY_test"),
        connection_id: "conn-1".into(),
        base_url: "http://127.0.0.1:9".into(),
        public_key,
        ..iace_telnyx::TelnyxConfig::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.telnyx = Some(telnyx(Some(key.clone())))
    })
    .await;
    let (status, ready, _) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{ready}");
    assert_eq!(
        ready["providers"],
        serde_json::json!([{"name": "telnyx", "circuit": "closed"}])
    );

    // Without the webhook key the instance refuses to start.
    let mut config = app.config.clone();
    config.server.bind = "127.0.0.1:0".parse().expect("addr");
    config.telnyx = Some(telnyx(None));
    let err = iace_api::startup::Application::build(config)
        .await
        .expect_err("no public key");
    assert!(format!("{err:#}").contains("telnyx.public_key"), "{err:#}");
}

/// Found by contract fuzzing: problem bodies (rewritten to carry the request
/// id) were sent with the `content-encoding: gzip` of the body they replaced,
/// so every client accepting gzip got an undecodable error.
#[tokio::test]
async fn errors_sent_to_a_client_accepting_gzip_are_valid_gzip() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = reqwest::Client::new()
        .get(format!("{}/v1/customers", app.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    let gzipped = response
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let body = response.bytes().await.expect("body");
    if gzipped {
        assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip stream: {body:?}");
    } else {
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("plain JSON");
        assert_eq!(problem["code"], "missing_credentials");
    }
    assert!(gzipped, "bodies this size are compressed");
}
