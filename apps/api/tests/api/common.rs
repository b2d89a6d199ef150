//! Shared harness: the real server on port 0 over SQLite or Postgres + pgvector.

use iace_api::config::Config;
use iace_api::startup::{self, Application};
use iace_db::{DbConfig, SqlStore};
use iace_domain::Email;
use iace_testkit::pg::TestDatabase;
use reqwest::{Client, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

pub(crate) const SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) client: Client,
    pub(crate) config: Config,
    /// Sends the server the stop signal (SIGTERM's effect).
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// The server's task: done once it stopped.
    pub(crate) served: tokio::task::JoinHandle<std::io::Result<()>>,
    _database: Option<TestDatabase>,
    _dir: Option<TempDir>,
}

pub(crate) struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) api_key: String,
    pub(crate) email: String,
    pub(crate) password: String,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

pub(crate) const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

impl TestApp {
    pub(crate) async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like `spawn`, with the configuration adjusted by `adjust` first.
    pub(crate) async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
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
        // Tests change users and keys behind the server's back through the store.
        config.auth.principal_cache_ttl_ms = 0;
        config.server.read_cache_ttl_ms = 0;
        // Generous limits unless a test is about limits.
        config.limits.free = iace_api::config::PlanLimits {
            requests_per_minute: 1_000_000,
            burst: 100_000,
            live_calls: 10_000,
            outbound_calls_per_minute: 1_000_000,
            ..iace_api::config::PlanLimits::default()
        };
        adjust(&mut config);
        let app = Application::build(config.clone()).await.expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until(async move {
            // Only a test's `stop` ends the server; dropping the app does not.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        }));
        Self {
            base,
            client: Client::new(),
            config,
            stop: std::sync::Mutex::new(Some(stop)),
            served,
            _database: database,
            _dir: dir,
        }
    }

    /// What SIGTERM does to the binary: the server starts draining, then
    /// stops.
    pub(crate) fn stop(&self) {
        if let Some(stop) = self.stop.lock().expect("lock").take() {
            let _ = stop.send(());
        }
    }

    pub(crate) async fn store(&self) -> SqlStore {
        let config = DbConfig {
            migrate_on_connect: false,
            ..self.config.database.clone()
        };
        SqlStore::connect(&config).await.expect("store")
    }

    pub(crate) async fn org(&self, name: &str) -> Org {
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

    pub(crate) async fn call(
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

    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::GET, path, Some(token), None).await;
        (s, v)
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::POST, path, Some(token), Some(body)).await;
        (s, v)
    }

    pub(crate) async fn login(&self, org: &Org) -> Value {
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

pub(crate) fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert_eq!(body["type"], format!("urn:iace:problem:{code}"));
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}
