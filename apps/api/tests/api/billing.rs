//! Stripe webhooks signed exactly as Stripe's documented scheme does, and
//! the plan changes they make, visible through `GET /v1/org`.

use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::*;

const SECRET: &str = "whsec_test_9ZQ4Sxx3u3bqS9R7";

fn stripe(config: &mut iace_api::config::Config) {
    config.stripe = Some(iace_api::config::StripeConfig {
        webhook_secret: secrecy::SecretString::from(SECRET),
        prices: [
            ("price_pro".to_owned(), iace_domain::Plan::Pro),
            ("price_enterprise".to_owned(), iace_domain::Plan::Enterprise),
        ]
        .into_iter()
        .collect(),
        ..iace_api::config::StripeConfig::default()
    });
}

fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

async fn post(app: &TestApp, body: &Value, secret: &str) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    let header = signature(secret, chrono::Utc::now().timestamp(), &bytes);
    let response = app
        .client
        .post(format!("{}/webhooks/stripe", app.base))
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(bytes)
        .send()
        .await
        .expect("send");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

async fn deliver(app: &TestApp, body: &Value) -> String {
    let (status, receipt) = post(app, body, SECRET).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    receipt["status"].as_str().expect("status").to_owned()
}

#[allow(clippy::needless_pass_by_value)] // called with `json!` temporaries
fn event(event_type: &str, object: Value) -> Value {
    json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "type": event_type,
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "data": {"object": object}
    })
}

fn subscription(event_type: &str, customer: &str, price: &str, status: &str) -> Value {
    event(
        event_type,
        json!({
            "id": "sub_1", "object": "subscription", "customer": customer, "status": status,
            "items": {"object": "list", "data": [{"id": "si_1", "price": {"id": price, "object": "price"}}]}
        }),
    )
}

async fn plan(app: &TestApp, org: &Org) -> Value {
    let (status, body) = app.get("/v1/org", &org.api_key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn the_plan_follows_the_subscription() {
    let app = TestApp::spawn_with(Backend::Sqlite, stripe).await;
    let org = app.org("Acme").await;
    let before = plan(&app, &org).await;
    assert_eq!(
        (before["plan"].clone(), before["billing_linked"].clone()),
        (json!("free"), json!(false))
    );

    let checkout = event(
        "checkout.session.completed",
        json!({"object": "checkout.session", "customer": "cus_acme", "client_reference_id": org.id, "subscription": "sub_1"}),
    );
    assert_eq!(deliver(&app, &checkout).await, "processed");
    assert_eq!(plan(&app, &org).await["billing_linked"], true);

    let steps = [
        (
            subscription(
                "customer.subscription.created",
                "cus_acme",
                "price_pro",
                "active",
            ),
            "pro",
        ),
        (
            subscription(
                "customer.subscription.updated",
                "cus_acme",
                "price_pro",
                "past_due",
            ),
            "pro",
        ),
        (
            subscription(
                "customer.subscription.updated",
                "cus_acme",
                "price_pro",
                "unpaid",
            ),
            "free",
        ),
        (
            subscription(
                "customer.subscription.updated",
                "cus_acme",
                "price_enterprise",
                "active",
            ),
            "enterprise",
        ),
        (
            event(
                "invoice.payment_failed",
                json!({"object": "invoice", "customer": "cus_acme"}),
            ),
            "enterprise",
        ),
        (
            event(
                "customer.subscription.deleted",
                json!({"object": "subscription", "customer": "cus_acme", "status": "canceled"}),
            ),
            "free",
        ),
    ];
    for (body, expected) in steps {
        deliver(&app, &body).await;
        assert_eq!(plan(&app, &org).await["plan"], expected, "{}", body["type"]);
    }

    // A redelivery is acknowledged and changes nothing.
    let upgrade = subscription(
        "customer.subscription.updated",
        "cus_acme",
        "price_pro",
        "active",
    );
    assert_eq!(deliver(&app, &upgrade).await, "processed");
    deliver(
        &app,
        &subscription(
            "customer.subscription.deleted",
            "cus_acme",
            "price_pro",
            "canceled",
        ),
    )
    .await;
    assert_eq!(deliver(&app, &upgrade).await, "duplicate");
    assert_eq!(plan(&app, &org).await["plan"], "free");
}

#[tokio::test]
async fn unknown_customers_and_prices_change_no_plan() {
    let app = TestApp::spawn_with(Backend::Sqlite, stripe).await;
    let org = app.org("Acme").await;
    // A subscription of a customer not linked yet (its checkout may come
    // later) is deferred, to be retried a bounded number of times.
    assert_eq!(
        deliver(
            &app,
            &subscription(
                "customer.subscription.created",
                "cus_nobody",
                "price_pro",
                "active"
            )
        )
        .await,
        "deferred"
    );
    let checkout = event(
        "checkout.session.completed",
        json!({"customer": "cus_acme", "client_reference_id": org.id}),
    );
    deliver(&app, &checkout).await;
    assert_eq!(
        deliver(
            &app,
            &subscription(
                "customer.subscription.created",
                "cus_acme",
                "price_unmapped",
                "active"
            )
        )
        .await,
        "ignored"
    );
    assert_eq!(
        deliver(
            &app,
            &event("charge.refunded", json!({"customer": "cus_acme"}))
        )
        .await,
        "ignored"
    );
    assert_eq!(plan(&app, &org).await["plan"], "free");
}

#[tokio::test]
async fn a_subscription_before_its_checkout_is_applied_once_the_checkout_links_the_customer() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        stripe(c);
        c.calls.worker_interval_ms = 50;
    })
    .await;
    let org = app.org("Acme").await;
    let early = subscription(
        "customer.subscription.created",
        "cus_late",
        "price_pro",
        "active",
    );
    assert_eq!(deliver(&app, &early).await, "deferred");
    let checkout = event(
        "checkout.session.completed",
        json!({"customer": "cus_late", "client_reference_id": org.id}),
    );
    assert_eq!(deliver(&app, &checkout).await, "processed");
    // The worker retries the deferred subscription (after its 10 s delay).
    let mut seen = Value::Null;
    for _ in 0..300 {
        seen = plan(&app, &org).await["plan"].clone();
        if seen == "pro" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "pro");
    // A second checkout naming another customer does not relink.
    let other = event(
        "checkout.session.completed",
        json!({"customer": "cus_other", "client_reference_id": org.id}),
    );
    assert_eq!(deliver(&app, &other).await, "ignored");
}

#[tokio::test]
async fn forged_and_stale_stripe_webhooks_are_refused() {
    let app = TestApp::spawn_with(Backend::Sqlite, stripe).await;
    let org = app.org("Acme").await;
    let body = event(
        "checkout.session.completed",
        json!({"customer": "cus_evil", "client_reference_id": org.id}),
    );
    let (status, problem) = post(&app, &body, "whsec_forged").await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
    );
    let bytes = serde_json::to_vec(&body).expect("json");
    let stale = signature(SECRET, chrono::Utc::now().timestamp() - 301, &bytes);
    let response = app
        .client
        .post(format!("{}/webhooks/stripe", app.base))
        .header("stripe-signature", stale)
        .body(bytes)
        .send()
        .await
        .expect("send");
    let status = response.status();
    let problem: Value = response.json().await.expect("json");
    assert_problem(
        status,
        &problem,
        StatusCode::UNAUTHORIZED,
        "stale_timestamp",
    );
    assert_eq!(plan(&app, &org).await["billing_linked"], false);
    // Without Stripe configured, the endpoint says so.
    let plain = TestApp::spawn(Backend::Sqlite).await;
    let (status, problem, _) = plain
        .call(
            reqwest::Method::POST,
            "/webhooks/stripe",
            None,
            Some(json!({})),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::NOT_FOUND,
        "provider_not_configured",
    );
}

#[tokio::test]
async fn telephony_settings_are_read_by_members_and_set_by_admins() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (a, b) = (app.org("Acme").await, app.org("Other").await);
    let (status, empty) = app.get("/v1/org/telephony", &a.api_key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        empty,
        json!({"numbers": [], "connection_id": null, "media_base_url": null, "voicemail_message": null})
    );

    let settings = json!({
        "numbers": ["+1 (415) 555-0100", "+14155550101"],
        "connection_id": "1494404757140276705",
        "media_base_url": "wss://media.acme.example.com",
        "voicemail_message": "Hi, this is Acme. Please call us back."
    });
    let (status, saved, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/org/telephony",
            Some(&a.api_key),
            Some(settings),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(
        saved["numbers"],
        json!(["+14155550100", "+14155550101"]),
        "normalised"
    );
    let (_, read) = app.get("/v1/org/telephony", &a.api_key).await;
    assert_eq!(read, saved);

    // Another organisation can neither call from a number ...
    let (status, problem) = app
        .post(
            "/v1/calls",
            &b.api_key,
            json!({"to": "+442079460958", "from": "+14155550101"}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(problem["errors"][0]["code"], "not_an_org_number");
    // ... nor take it.
    let (status, problem, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/org/telephony",
            Some(&b.api_key),
            Some(json!({"numbers": ["+14155550101"]})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "number_taken");
    // Invalid fields, every one reported.
    let (status, problem, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/org/telephony",
            Some(&b.api_key),
            Some(json!({"numbers": ["not a number"]})),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(problem["errors"][0]["field"], "numbers[0]");
    let (status, problem, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/org/telephony",
            Some(&b.api_key),
            Some(json!({"media_base_url": "http://insecure", "voicemail_message": ""})),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let fields: Vec<_> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(
        fields,
        vec![json!("media_base_url"), json!("voicemail_message")]
    );
    // A member may read but not change them.
    let (status, key) = app
        .post(
            "/v1/api-keys",
            &a.api_key,
            json!({"name": "ops", "role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let member = key["secret"].as_str().expect("secret");
    let (status, _) = app.get("/v1/org/telephony", member).await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/org/telephony",
            Some(member),
            Some(json!({})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
}
