//! Fresh Postgres databases for tests.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::sync::OnceCell;

/// How to get a Postgres when none is configured.
const HOW_TO: &str = "no PostgreSQL with pgvector for tests: set TEST_DATABASE_URL \
(e.g. run `eval \"$(scripts/test-services.sh start)\"` from the repository root, which \
starts one with no Docker), or make a Docker engine available for testcontainers";

/// Serialises template creation across test processes.
const TEMPLATE_LOCK: i64 = 0x1ace_0001;

/// A database that exists for one test and is dropped with this value.
#[derive(Debug)]
pub struct TestDatabase {
    /// URL of the fresh database.
    pub url: String,
    admin_url: String,
    name: String,
}

static CONTAINER_URL: OnceCell<(String, ContainerAsync<GenericImage>)> = OnceCell::const_new();

/// The server's admin URL (a database we may CREATE DATABASE from).
async fn server_url() -> String {
    // Test configuration is read here, once, by design: this is the test-support
    // crate's only input.
    #[allow(clippy::disallowed_methods)]
    if let Ok(url) = std::env::var("TEST_DATABASE_URL")
        && !url.trim().is_empty()
    {
        return url;
    }
    if !docker_available() {
        panic!("{HOW_TO}");
    }
    let (url, _) = CONTAINER_URL
        .get_or_init(|| async {
            let container = GenericImage::new("pgvector/pgvector", "pg17")
                .with_exposed_port(5432.tcp())
                .with_wait_for(WaitFor::message_on_stderr(
                    "database system is ready to accept connections",
                ))
                .with_env_var("POSTGRES_PASSWORD", "postgres")
                .start()
                .await
                .unwrap_or_else(|e| panic!("{HOW_TO} (starting the container failed: {e})"));
            let port = container
                .get_host_port_ipv4(5432)
                .await
                .unwrap_or_else(|e| panic!("{HOW_TO} (no port for the container: {e})"));
            (
                format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
                container,
            )
        })
        .await;
    url.clone()
}

fn docker_available() -> bool {
    #[allow(clippy::disallowed_methods)]
    let host = std::env::var("DOCKER_HOST").ok();
    host.is_some() || std::path::Path::new("/var/run/docker.sock").exists()
}

/// `postgres://u:p@h:port/db?x` with the database replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn connect(url: &str) -> DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    options
        .max_connections(2)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL ({e}); {HOW_TO}"))
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("test database setup failed on `{sql}`: {e}"));
}

impl TestDatabase {
    /// A fresh database with the schema migrated at `dimension`, cloned from a
    /// template so each test pays milliseconds, not a migration.
    pub async fn create(dimension: u32) -> Self {
        let admin_url = server_url().await;
        let admin = connect(&admin_url).await;
        let template = format!(
            "iace_test_tpl_{:016x}_d{dimension}",
            iace_migrations::SCHEMA_FINGERPRINT
        );
        let name = format!("iace_test_{}", uuid::Uuid::new_v4().simple());

        // pg_advisory_lock is held by this session; the template is created at
        // most once across every concurrent test process.
        exec(&admin, &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})")).await;
        let exists = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 AS one FROM pg_database WHERE datname = $1",
                [template.clone().into()],
            ))
            .await
            .unwrap_or_else(|e| panic!("test database setup failed: {e}"))
            .is_some();
        if !exists {
            exec(&admin, &format!("CREATE DATABASE {template}_build")).await;
            let build = connect(&with_database(&admin_url, &format!("{template}_build"))).await;
            iace_migrations::run(&build, dimension)
                .await
                .unwrap_or_else(|e| panic!("migrating the test template failed: {e}"));
            // Migrations are idempotent: prove it on every fresh template.
            iace_migrations::run(&build, dimension)
                .await
                .unwrap_or_else(|e| panic!("re-running migrations failed: {e}"));
            let _ = build.close().await;
            exec(
                &admin,
                &format!("ALTER DATABASE {template}_build RENAME TO {template}"),
            )
            .await;
        }
        exec(
            &admin,
            &format!("CREATE DATABASE {name} TEMPLATE {template}"),
        )
        .await;
        exec(
            &admin,
            &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"),
        )
        .await;
        let _ = admin.close().await;

        Self {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a thread of
        // its own so it cannot block that runtime.
        let handle = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_in_a_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
    }
}
