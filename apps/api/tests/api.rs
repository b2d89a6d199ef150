//! The API integration tests: the real server on port 0 over SQLite and over
//! Postgres + pgvector (via `iace-testkit`), driven with an HTTP client.

use iace_api::config::Config;
use iace_api::startup::{self, Application};
use iace_db::{DbConfig, SqlStore};
use iace_domain::Email;
use iace_testkit::pg::TestDatabase;
use reqwest::{Client, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

struct TestApp {
    base: String,
    client: Client,
    config: Config,
    _database: Option<TestDatabase>,
    _dir: Option<TempDir>,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Clone)]
struct Org {
    id: String,
    user_id: String,
    api_key: String,
    email: String,
    password: String,
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

impl TestApp {
    async fn spawn(backend: Backend) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (url, database, dir) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir()
                    .join(format!("iace-api-{}", uuid::Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                (
                    format!("sqlite://{}?mode=rwc", dir.join("iace.db").display()),
                    None,
                    Some(TempDir(dir)),
                )
            }
            Backend::Postgres => {
                let db = TestDatabase::create(iace_migrations::DEFAULT_EMBEDDING_DIMENSION).await;
                (db.url.clone(), Some(db), None)
            }
        };
        let mut config = Config::default();
        config.server.bind = "127.0.0.1:0".parse().expect("addr");
        config.database = DbConfig::default().with_url(url);
        config.auth.jwt_secret = Some(SecretString::from(SECRET));
        let app = Application::build(config.clone()).await.expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        Self {
            base,
            client: Client::new(),
            config,
            _database: database,
            _dir: dir,
        }
    }

    async fn store(&self) -> SqlStore {
        let config = DbConfig {
            migrate_on_connect: false,
            ..self.config.database.clone()
        };
        SqlStore::connect(&config).await.expect("store")
    }

    async fn org(&self, name: &str) -> Org {
        let state = startup::state(&self.config, self.store().await).expect("state");
        let email = format!("owner-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery".to_owned();
        let created = state
            .auth
            .bootstrap_org(
                name,
                Email::parse(&email).expect("email"),
                Some(&SecretString::from(password.clone())),
            )
            .await
            .expect("bootstrap");
        Org {
            id: created.org.id.to_string(),
            user_id: created.owner.id.to_string(),
            api_key: created.api_key.secret.expose_secret().to_owned(),
            email,
            password,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json, headers)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::GET, path, Some(token), None).await;
        (s, v)
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::POST, path, Some(token), Some(body)).await;
        (s, v)
    }

    async fn login(&self, org: &Org) -> Value {
        let (status, body, _) = self
            .call(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"email": org.email, "password": org.password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert_eq!(body["type"], format!("urn:iace:problem:{code}"));
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}

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
        assert!(docs.text().await.expect("html").contains("<html"));
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

#[tokio::test]
async fn customers_crud_validation_and_tenancy() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let (a, b) = (app.org("A").await, app.org("B").await);
        let (s, c) = app
            .post("/v1/customers", &a.api_key, json!({"phone": "+1 (415) 555-0100", "name": "Jane", "tier": "vip", "attributes": {"account": "A-1"}}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c["phone"], "+14155550100");
        assert_eq!(c["tier"], "vip");
        let id = c["id"].as_str().expect("id").to_owned();

        let (s, body) = app
            .post(
                "/v1/customers",
                &a.api_key,
                json!({"phone": "not a number", "email": "nope", "language": "klingon-9"}),
            )
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let fields: Vec<_> = body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].clone())
            .collect();
        assert_eq!(
            fields,
            vec![json!("phone"), json!("email"), json!("language")]
        );
        let (s, body) = app
            .post(
                "/v1/customers",
                &a.api_key,
                json!({"phone": "+14155550100"}),
            )
            .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "already_exists");
        let (s, body) = app
            .post(
                "/v1/customers",
                &a.api_key,
                json!({"phone": "+14155550101", "surprise": 1}),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown fields are rejected: {body}"
        );

        let (s, got) = app.get(&format!("/v1/customers/{id}"), &a.api_key).await;
        assert_eq!((s, got["name"].clone()), (StatusCode::OK, json!("Jane")));
        let (s, found) = app
            .get(
                "/v1/customers/lookup?phone=%2B1%20415%20555%200100",
                &a.api_key,
            )
            .await;
        assert_eq!((s, found["id"].clone()), (StatusCode::OK, json!(id)));
        let (s, updated, _) = app
            .call(
                Method::PUT,
                &format!("/v1/customers/{id}"),
                Some(&a.api_key),
                Some(json!({"phone": "+14155550111", "name": "Jane R."})),
            )
            .await;
        assert_eq!(
            (s, updated["phone"].clone()),
            (StatusCode::OK, json!("+14155550111")),
            "{updated}"
        );
        let (s, memory) = app
            .get(&format!("/v1/customers/{id}/memory"), &a.api_key)
            .await;
        assert_eq!(s, StatusCode::OK, "{memory}");
        assert_eq!(memory["memory_ids"], json!([]));

        // Org B sees nothing of org A.
        let (s, body) = app.get(&format!("/v1/customers/{id}"), &b.api_key).await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, list) = app.get("/v1/customers", &b.api_key).await;
        assert_eq!((s, list["items"].clone()), (StatusCode::OK, json!([])));
        let (s, _, _) = app
            .call(
                Method::PUT,
                &format!("/v1/customers/{id}"),
                Some(&b.api_key),
                Some(json!({"phone": "+14155550122"})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/customers/{id}"),
                Some(&b.api_key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Pagination with opaque cursors.
        for n in 0..4 {
            let (s, _) = app
                .post(
                    "/v1/customers",
                    &a.api_key,
                    json!({"phone": format!("+1415555020{n}")}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let (s, page) = app.get("/v1/customers?limit=3", &a.api_key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
        let cursor = page["next_cursor"].as_str().expect("cursor");
        let (_, rest) = app
            .get(
                &format!("/v1/customers?limit=3&cursor={cursor}"),
                &a.api_key,
            )
            .await;
        assert_eq!(rest["items"].as_array().map(Vec::len), Some(2));
        assert!(rest["next_cursor"].is_null());
        let (s, body) = app.get("/v1/customers?cursor=garbage", &a.api_key).await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let (s, body) = app.get("/v1/customers?limit=0", &a.api_key).await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let (s, body) = app.get("/v1/customers/not-a-uuid", &a.api_key).await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_path");

        // Roles: a viewer reads but cannot write.
        let (_, viewer) = app
            .post(
                "/v1/api-keys",
                &a.api_key,
                json!({"name": "ro", "role": "viewer"}),
            )
            .await;
        let viewer = viewer["secret"].as_str().expect("secret").to_owned();
        let (s, _) = app.get(&format!("/v1/customers/{id}"), &viewer).await;
        assert_eq!(s, StatusCode::OK);
        let (s, body) = app
            .post("/v1/customers", &viewer, json!({"phone": "+14155550999"}))
            .await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        let (s, _, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/customers/{id}"),
                Some(&a.api_key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = app.get(&format!("/v1/customers/{id}"), &a.api_key).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}
