//! Connection faults and the embedded file database.

use iace_db::{ConnectError, DbConfig, SqlStore};
use iace_domain::ports::{OrgRepository, StoreError};
use iace_testkit::{fixtures, pg::TestDatabase};
use sea_orm::{ConnectionTrait, Database};

const DIMENSION: u32 = iace_migrations::DEFAULT_EMBEDDING_DIMENSION;

#[tokio::test]
async fn recovers_after_the_server_drops_every_connection() {
    let database = TestDatabase::create(DIMENSION).await;
    let config = DbConfig {
        migrate_on_connect: false,
        max_connections: 2,
        ..DbConfig::default()
    }
    .with_url(database.url.clone());
    let store = SqlStore::connect(&config).await.expect("connect");
    let org = fixtures::org();
    store.create(&org).await.expect("create");

    // Kill every connection of the store, as a Postgres restart or failover would.
    let name = database
        .url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let admin_url = database.url.replace(&format!("/{name}"), "/postgres");
    let admin = Database::connect(admin_url.as_str()).await.expect("admin");
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .expect("terminate");
    let _ = admin.close().await;

    // The first query may see the dead connection (a transient error, never a
    // panic or a wrong answer); the store recovers without being rebuilt.
    match store.get(org.id).await {
        Ok(found) => assert_eq!(found, org),
        Err(err) => assert!(err.is_transient(), "{err:?}"),
    }
    assert_eq!(store.get(org.id).await.expect("recovered"), org);
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_not_a_hang() {
    let config = DbConfig {
        connect_timeout_ms: 1_000,
        acquire_timeout_ms: 1_000,
        ..DbConfig::default()
    }
    .with_url("postgres://nobody:nothing@127.0.0.1:1/none");
    let started = std::time::Instant::now();
    let result = SqlStore::connect(&config).await;
    assert!(
        matches!(result, Err(ConnectError::Connect(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn bad_settings_are_refused_up_front() {
    let mysql = DbConfig::default().with_url("mysql://x@localhost/db");
    assert!(matches!(
        SqlStore::connect(&mysql).await,
        Err(ConnectError::UnsupportedUrl)
    ));
    let odd = DbConfig {
        embedding_dimension: 700,
        ..DbConfig::default()
    }
    .with_url("sqlite::memory:");
    assert!(matches!(
        SqlStore::connect(&odd).await,
        Err(ConnectError::UnsupportedDimension(700))
    ));
}

#[tokio::test]
async fn the_sqlite_file_keeps_its_data_across_restarts() {
    let dir = std::env::temp_dir().join(format!("iace-db-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("iace.db").display());
    let org = fixtures::org();
    {
        let store = SqlStore::connect(&DbConfig::default().with_url(url.clone()))
            .await
            .expect("open");
        store.create(&org).await.expect("create");
        store.close().await.expect("close");
    }
    // Re-opening migrates again (a no-op) and finds the data.
    let store = SqlStore::connect(&DbConfig::default().with_url(url))
        .await
        .expect("reopen");
    assert_eq!(store.get(org.id).await.expect("get"), org);
    assert!(matches!(
        store.get(iace_domain::OrgId::new()).await,
        Err(StoreError::NotFound { .. })
    ));
    store.close().await.expect("close");
    let _ = std::fs::remove_dir_all(dir);
}
