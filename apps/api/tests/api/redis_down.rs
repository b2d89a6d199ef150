//! Redis stopped mid-test (a Redis this test starts itself): requests follow
//! the configured failure policy within the command timeout, readiness reports
//! it, and everything recovers when Redis returns.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use iace_testkit::redis::{OwnRedis, free_port};

use crate::common::*;

async fn me(app: &TestApp, key: &str) -> (StatusCode, Duration) {
    let started = Instant::now();
    let (status, _) = app.get("/v1/me", key).await;
    (status, started.elapsed())
}

async fn run(policy: iace_api::config::FailurePolicy, expected_while_down: StatusCode) {
    let mut redis = OwnRedis::start(free_port()).await;
    let config = iace_redis::RedisConfig {
        url: secrecy::SecretString::from(format!("redis://127.0.0.1:{}", redis.port)),
        command_timeout_ms: 300,
        reconnect_max_delay_ms: 200,
        ..iace_redis::RedisConfig::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.redis = Some(config.clone());
        c.limits.failure_policy = policy;
    })
    .await;
    let org = app.org("Acme").await;
    assert_eq!(me(&app, &org.api_key).await.0, StatusCode::OK);

    redis.stop();
    let (status, took) = me(&app, &org.api_key).await;
    assert_eq!(status, expected_while_down);
    // Bounded by the command timeout (300 ms), with a wide margin for a busy machine.
    assert!(took < Duration::from_secs(5), "a request hung for {took:?}");
    let (status, ready, _) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");

    redis.restart().await;
    let started = Instant::now();
    loop {
        let (status, _, _) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(me(&app, &org.api_key).await.0, StatusCode::OK);
}

#[tokio::test]
async fn fail_open_allows_while_redis_is_down_and_recovers() {
    run(iace_api::config::FailurePolicy::Open, StatusCode::OK).await;
}

#[tokio::test]
async fn fail_closed_refuses_while_redis_is_down_and_recovers() {
    run(
        iace_api::config::FailurePolicy::Closed,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
}
