//! What `docs/security.md` lists beyond the other modules: secrets never
//! printed with the configuration, and CORS as configured.

use reqwest::{Method, StatusCode};
use secrecy::SecretString;

use crate::common::*;

#[test]
fn every_secret_setting_is_redacted_when_the_configuration_is_printed() {
    let secret =
        |n: u32| SecretString::from(format!("secret-marker-{n}-0123456789abcdef0123456789"));
    let mut config = iace_api::config::Config::default();
    config.database.url = secret(1);
    config.auth.jwt_secret = Some(secret(2));
    config.calls.media_secret = Some(secret(3));
    config.sentry.dsn = Some(secret(4));
    config.redis = Some(iace_redis::RedisConfig {
        url: secret(5),
        ..iace_redis::RedisConfig::default()
    });
    config.telnyx = Some(iace_telnyx::TelnyxConfig {
        api_key: secret(6),
        ..iace_telnyx::TelnyxConfig::default()
    });
    config.groq = Some(iace_groq::GroqConfig {
        api_key: secret(7),
        ..iace_groq::GroqConfig::default()
    });
    config.deepgram = Some(iace_deepgram::DeepgramConfig {
        api_key: secret(8),
        ..iace_deepgram::DeepgramConfig::default()
    });
    config.stripe = Some(iace_api::config::StripeConfig {
        webhook_secret: secret(9),
        ..iace_api::config::StripeConfig::default()
    });
    let printed = format!("{config:?} {config:#?}");
    assert!(!printed.contains("secret-marker"), "{printed}");
    // The settings themselves are there.
    assert!(
        printed.contains("telnyx") && printed.contains("deepgram"),
        "{printed}"
    );
}

#[tokio::test]
async fn cors_answers_only_the_listed_origins_and_never_allows_credentials() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.server.cors_allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/v1/customers", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com")
        .await
        .expect("preflight");
    assert_eq!(allowed.status(), StatusCode::OK);
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .expect("methods");
    assert!(methods.contains("POST"), "{methods}");
    assert!(!headers.contains_key("access-control-allow-credentials"));

    let other = preflight("https://evil.example.net")
        .await
        .expect("preflight");
    assert!(
        !other.headers().contains_key("access-control-allow-origin"),
        "{:?}",
        other.headers()
    );
    // Off by default: no CORS headers at all.
    let plain = TestApp::spawn(Backend::Sqlite).await;
    let response = plain
        .client
        .get(format!("{}/healthz", plain.base))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("get");
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn a_method_a_path_does_not_take_is_a_problem_with_the_allowed_ones() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app
        .client
        .delete(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(
        response.headers().contains_key("allow"),
        "{:?}",
        response.headers()
    );
    let problem: serde_json::Value = response.json().await.expect("json");
    assert_eq!(problem["code"], "method_not_allowed");
    assert!(problem["request_id"].is_string(), "{problem}");
}
