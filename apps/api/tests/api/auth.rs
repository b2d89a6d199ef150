//! Sign-in, tokens (rotation, reuse, forgery, expiry) and API keys.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn login_me_refresh_rotation_and_reuse_detection() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let org = app.org("Acme").await;
        let tokens = app.login(&org).await;
        let access = tokens["access_token"].as_str().expect("access").to_owned();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 900);
        let (s, me) = app.get("/v1/me", &access).await;
        assert_eq!(s, StatusCode::OK, "{me}");
        assert_eq!(me["org_id"], org.id);
        assert_eq!(me["user_id"], org.user_id);
        assert_eq!(me["role"], "owner");
        assert_eq!(me["kind"], "user");

        let (s, body, headers) = app
            .call(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"email": org.email, "password": "wrong password!"})),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (s, body, _) = app
            .call(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"email": "nobody@example.com", "password": "whatever123"})),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "invalid_credentials");

        let first = tokens["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_owned();
        let (s, rotated, _) = app
            .call(
                Method::POST,
                "/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": first})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{rotated}");
        let second = rotated["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_owned();
        assert_ne!(first, second);
        // The rotated token again: theft. The whole family dies, the new one too.
        let (s, body, _) = app
            .call(
                Method::POST,
                "/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": first})),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "token_reused");
        let (s, body, _) = app
            .call(
                Method::POST,
                "/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": second})),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "token_reused");

        // Revocation ends a session.
        let fresh = app.login(&org).await;
        let token = fresh["refresh_token"].as_str().expect("refresh");
        let (s, _, _) = app
            .call(
                Method::POST,
                "/v1/auth/revoke",
                None,
                Some(json!({"refresh_token": token})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, body, _) = app
            .call(
                Method::POST,
                "/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": token})),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
        let (s, body, _) = app
            .call(
                Method::POST,
                "/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": "rt_garbage"})),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    }
}

#[tokio::test]
async fn forged_expired_and_orphaned_tokens_are_rejected() {
    use base64::Engine as _;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let org = app.org("Acme").await;
    let access = app.login(&org).await["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let parts: Vec<&str> = access.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // alg: none, no signature.
    let none_header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let forged = format!("{none_header}.{}.", parts[1]);
    let (s, body) = app.get("/v1/me", &forged).await;
    assert_problem(s, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    // Tampered payload (role upgrade) with the old signature.
    let mut claims: Value =
        serde_json::from_slice(&b64.decode(parts[1]).expect("b64")).expect("claims");
    claims["role"] = json!("owner");
    claims["org"] = json!(uuid::Uuid::new_v4().to_string());
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    let (s, body) = app.get("/v1/me", &tampered).await;
    assert_problem(s, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    // Signed with another key.
    let other = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-another"),
    )
    .expect("encode");
    let (s, body) = app.get("/v1/me", &other).await;
    assert_problem(s, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    // Expired, correctly signed.
    let now = chrono::Utc::now().timestamp();
    let expired = json!({"sub": org.user_id, "org": org.id, "role": "owner", "iat": now - 3600, "exp": now - 600, "jti": "x", "iss": "iace"});
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &expired,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encode");
    let (s, body) = app.get("/v1/me", &expired).await;
    assert_problem(s, &body, StatusCode::UNAUTHORIZED, "token_expired");
    // Not a bearer scheme.
    let response = app
        .client
        .get(format!("{}/v1/me", app.base))
        .header("authorization", "Basic abc")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A deleted user's token stops working at once.
    use iace_domain::ports::UserRepository as _;
    let store = app.store().await;
    store
        .delete(
            org.id.parse().expect("org"),
            org.user_id.parse().expect("user"),
        )
        .await
        .expect("delete user");
    let (s, body) = app.get("/v1/me", &access).await;
    assert_problem(s, &body, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn api_key_lifecycle_and_roles() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let org = app.org("Acme").await;
        let (s, created) = app
            .post(
                "/v1/api-keys",
                &org.api_key,
                json!({"name": "billing", "role": "member"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let secret = created["secret"].as_str().expect("secret").to_owned();
        assert!(secret.starts_with(created["prefix"].as_str().expect("prefix")));
        let (s, me) = app.get("/v1/me", &secret).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (me["kind"].clone(), me["role"].clone()),
            (json!("api_key"), json!("member"))
        );

        let (s, list) = app.get("/v1/api-keys", &org.api_key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
        assert!(
            list.to_string().find(&secret).is_none(),
            "secrets are never listed"
        );

        // A member may not manage keys, nor mint a key above its role.
        let (s, body) = app
            .post("/v1/api-keys", &secret, json!({"name": "x"}))
            .await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        let (s, body) = app
            .post("/v1/api-keys", &org.api_key, json!({"name": ""}))
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );

        let id = created["id"].as_str().expect("id");
        let (s, _, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/api-keys/{id}"),
                Some(&org.api_key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, body) = app.get("/v1/me", &secret).await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "revoked_key");
        let (s, body, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/api-keys/{}", uuid::Uuid::new_v4()),
                Some(&org.api_key),
                None,
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body) = app.get("/v1/me", "iace_unknown_key").await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    }
}
