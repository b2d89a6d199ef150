//! The store contract suites from `iace-testkit`, on SQLite and on Postgres +
//! pgvector. Postgres comes from `TEST_DATABASE_URL` (see
//! `scripts/test-services.sh`), else testcontainers; without either these tests
//! fail, they are never skipped.

use iace_db::{DbConfig, SqlStore};
use iace_testkit::Harness;
use iace_testkit::contracts;
use iace_testkit::pg::TestDatabase;

const DIMENSION: u32 = iace_migrations::DEFAULT_EMBEDDING_DIMENSION;

async fn sqlite() -> Harness<SqlStore> {
    let config = DbConfig {
        embedding_dimension: DIMENSION,
        ..DbConfig::default()
    }
    .with_url("sqlite::memory:");
    Harness::new(SqlStore::connect(&config).await.expect("sqlite store"))
}

async fn postgres() -> Harness<SqlStore> {
    let database = TestDatabase::create(DIMENSION).await;
    let config = DbConfig {
        embedding_dimension: DIMENSION,
        migrate_on_connect: false,
        max_connections: 20,
        ..DbConfig::default()
    }
    .with_url(database.url.clone());
    let store = SqlStore::connect(&config).await.expect("postgres store");
    Harness {
        store,
        database: Some(database),
    }
}

macro_rules! suites {
    ($($suite:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    iace_testkit::contracts::$suite::run(super::sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    iace_testkit::contracts::$suite::run(super::postgres).await;
                }
            )*
        }
    };
}

suites!(
    orgs,
    customers,
    calls,
    transcripts,
    users,
    refresh_tokens,
    api_keys,
    experiments,
    agents,
    personas,
    inbox,
    patterns,
    memories
);

#[allow(unused_imports)]
use contracts as _;
