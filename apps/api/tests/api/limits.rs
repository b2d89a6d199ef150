//! Per-plan rate limits: headers, 429s, live calls, and limits shared by two
//! instances through Redis.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

fn tight(config: &mut iace_api::config::Config) {
    config.limits.free.requests_per_minute = 6;
    config.limits.free.burst = 3;
    config.limits.free.live_calls = 1;
}

#[tokio::test]
async fn requests_over_the_plan_get_429_with_headers() {
    let app = TestApp::spawn_with(Backend::Sqlite, tight).await;
    let org = app.org("Acme").await;
    for remaining in [2, 1, 0] {
        let response = app
            .client
            .get(format!("{}/v1/me", app.base))
            .bearer_auth(&org.api_key)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["ratelimit-policy"], "\"free\";q=6;w=60");
        let current = response.headers()["ratelimit"]
            .to_str()
            .expect("header")
            .to_owned();
        assert!(
            current.starts_with(&format!("\"free\";r={remaining};t=")),
            "{current}"
        );
    }
    let response = app
        .client
        .get(format!("{}/v1/me", app.base))
        .bearer_auth(&org.api_key)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("retry")
        .parse()
        .expect("seconds");
    assert!((1..=10).contains(&retry), "{retry}");
    assert!(
        response.headers()["ratelimit"]
            .to_str()
            .expect("header")
            .contains("r=0")
    );
    let body: serde_json::Value = response.json().await.expect("json");
    assert_problem(
        StatusCode::TOO_MANY_REQUESTS,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    // Another organisation has its own budget; health checks are not counted.
    let other = app.org("Other").await;
    let (status, _) = app.get("/v1/me", &other.api_key).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_call_beyond_the_live_call_limit_is_refused() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.limits.free.live_calls = 1).await;
    let org = app.org("Acme").await;
    let (status, body) = app
        .post(
            "/v1/calls",
            &org.api_key,
            json!({"to": "+442079460958", "from": "+14155550100"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            "/v1/calls",
            &org.api_key,
            json!({"to": "+442079460959", "from": "+14155550100"}),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "live_call_limit",
    );
}

#[tokio::test]
async fn two_instances_sharing_redis_limit_a_split_burst_as_one() {
    let redis = iace_redis::RedisConfig {
        url: secrecy::SecretString::from(iace_testkit::redis::url().await),
        key_prefix: iace_testkit::redis::unique_prefix(),
        ..iace_redis::RedisConfig::default()
    };
    let first = TestApp::spawn_with(Backend::Postgres, |c| {
        tight(c);
        c.redis = Some(redis.clone());
    })
    .await;
    // The second instance: same database, same Redis, another port.
    let mut config = first.config.clone();
    config.server.bind = "127.0.0.1:0".parse().expect("addr");
    let second = iace_api::startup::Application::build(config)
        .await
        .expect("second instance");
    let second_base = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until(std::future::pending()));

    let (status, ready, _) = first
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["checks"][1], json!({"name": "redis", "ok": true}));

    let org = first.org("Acme").await;
    let mut allowed = 0;
    for i in 0..8 {
        let base = if i % 2 == 0 {
            &first.base
        } else {
            &second_base
        };
        let response = first
            .client
            .get(format!("{base}/v1/me"))
            .bearer_auth(&org.api_key)
            .send()
            .await
            .expect("send");
        if response.status() == StatusCode::OK {
            allowed += 1;
        } else {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        }
    }
    assert_eq!(allowed, 3, "the burst of 3 is shared by both instances");
}

#[tokio::test]
async fn placing_calls_faster_than_the_plan_is_refused() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.limits.free.live_calls = 100;
        c.limits.free.outbound_calls_per_minute = 20;
    })
    .await;
    let org = app.org("Acme").await;
    // Burst 2 (a tenth of 20): two calls, then a refusal.
    for n in 0..2 {
        let (status, body) = app
            .post(
                "/v1/calls",
                &org.api_key,
                json!({"to": format!("+44207946095{n}"), "from": "+14155550100"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .post(
            "/v1/calls",
            &org.api_key,
            json!({"to": "+442079460959", "from": "+14155550100"}),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "outbound_call_rate",
    );
}

#[tokio::test]
async fn lookups_by_phone_are_cached_and_invalidated_by_writes() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let org = app.org("Acme").await;
    let (status, created) = app
        .post(
            "/v1/customers",
            &org.api_key,
            json!({"phone": "+14155550100", "name": "Jane"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, found) = app
        .get("/v1/customers/lookup?phone=%2B14155550100", &org.api_key)
        .await;
    assert_eq!(
        (status, found["name"].clone()),
        (StatusCode::OK, json!("Jane"))
    );
    // A write through the API invalidates: old number gone, new one found.
    let (status, _, _) = app
        .call(
            reqwest::Method::PUT,
            &format!("/v1/customers/{id}"),
            Some(&org.api_key),
            Some(json!({"phone": "+14155550111", "name": "Jane R."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .get("/v1/customers/lookup?phone=%2B14155550100", &org.api_key)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, found) = app
        .get("/v1/customers/lookup?phone=%2B14155550111", &org.api_key)
        .await;
    assert_eq!(
        (status, found["name"].clone()),
        (StatusCode::OK, json!("Jane R."))
    );
    let (status, _, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/customers/{id}"),
            Some(&org.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .get("/v1/customers/lookup?phone=%2B14155550111", &org.api_key)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_api_key_with_its_own_rate_cannot_starve_the_others() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.limits.free.requests_per_minute = 600;
        c.limits.free.burst = 10;
        c.limits.free.api_key_requests_per_minute = Some(60);
        c.limits.free.api_key_burst = Some(2);
    })
    .await;
    let org = app.org("Acme").await;
    // The bootstrap key spends its own burst of 2 (plus one org unit each).
    for remaining in [1, 0] {
        let (status, _, headers) = app
            .call(reqwest::Method::GET, "/v1/me", Some(&org.api_key), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers["ratelimit-policy"],
            "\"api_key\";q=60;w=60, \"free\";q=600;w=60"
        );
        let current = headers["ratelimit"].to_str().expect("header");
        assert!(
            current.starts_with(&format!("\"api_key\";r={remaining};t=")),
            "{current}"
        );
    }
    let (status, body, headers) = app
        .call(reqwest::Method::GET, "/v1/me", Some(&org.api_key), None)
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "api_key_rate_limited",
    );
    assert!(headers.contains_key("retry-after"));
    // A user's session token is limited by the organisation only, and another
    // key has a budget of its own.
    let session = app.login(&org).await;
    let token = session["access_token"].as_str().expect("token").to_owned();
    let (status, created) = app
        .post("/v1/api-keys", &token, json!({"name": "second"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let second = created["secret"].as_str().expect("secret");
    let (status, _) = app.get("/v1/me", second).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, headers) = app
        .call(reqwest::Method::GET, "/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["ratelimit-policy"], "\"free\";q=600;w=60");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_a_problem() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.server.body_limit_bytes = 64 * 1024).await;
    let org = app.org("Acme").await;
    let big = json!({"phone": "+14155550100", "name": "x".repeat(100 * 1024)});
    let (status, problem) = app.post("/v1/customers", &org.api_key, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(problem["code"], "body_too_large", "{problem}");
    assert_eq!(problem["status"], 413);
    // Just under the limit is read (and refused for what it says, not its size).
    let under = json!({"phone": "+14155550100", "name": "x".repeat(60 * 1024)});
    let (status, problem) = app.post("/v1/customers", &org.api_key, under).await;
    assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
}

#[tokio::test]
async fn password_guessing_against_one_account_is_slowed_to_the_configured_pace() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, |c| c.limits.login_attempts_per_minute = 2).await;
    let victim = app.org("Acme").await;
    let other = app.org("Other").await;
    let login = |email: String, password: &'static str| {
        let app = &app;
        async move {
            let (status, body, headers) = app
                .call(
                    reqwest::Method::POST,
                    "/v1/auth/login",
                    None,
                    Some(json!({"email": email, "password": password})),
                )
                .await;
            (status, body, headers)
        }
    };
    // A burst of one (half of two a minute): the first guess is answered…
    let (status, body, _) = login(victim.email.clone(), "wrong password 1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // …the next is refused before the password is even checked, whatever
    // the case of the address.
    let (status, body, headers) = login(victim.email.to_uppercase(), "wrong password 2").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "too_many_login_attempts");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    let (status, body, _) = login(victim.email.clone(), "correct horse battery").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Another account is not affected.
    let (status, body, _) = login(other.email.clone(), "correct horse battery").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
