//! The store: one connection pool, every repository port.

use std::time::Duration;

use iace_domain::ports::StoreError;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use secrecy::ExposeSecret;

use crate::config::{DEFAULT_HNSW_EF_SEARCH, DbConfig};

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL with pgvector.
    Postgres,
    /// SQLite (the embedded default).
    Sqlite,
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL names neither `postgres://` nor `sqlite:`.
    #[error("database URL must start with postgres:// or sqlite:")]
    UnsupportedUrl,
    /// The embedding dimension is not one the schema supports.
    #[error("embedding dimension {0} is not supported by the schema")]
    UnsupportedDimension(u32),
    /// The database could not be reached.
    #[error("could not connect to the database")]
    Connect(#[source] sea_orm::DbErr),
    /// Migrating on connect failed.
    #[error("could not migrate the database")]
    Migrate(#[source] iace_migrations::MigrateError),
}

/// Every repository and store port over one sea-orm connection pool. Cheap to
/// clone (the pool is shared); hand it out as `Arc<dyn Port>`.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) db: DatabaseConnection,
    pub(crate) dimension: usize,
    /// pgvector's `hnsw.ef_search` for vector queries ([`DbConfig::hnsw_ef_search`]).
    pub(crate) ef_search: u32,
}

impl SqlStore {
    /// Connects with `config` (and migrates when `migrate_on_connect`).
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect(config: &DbConfig) -> Result<Self, ConnectError> {
        let url = config.url.expose_secret();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(ConnectError::UnsupportedUrl);
        };
        if !iace_migrations::SUPPORTED_EMBEDDING_DIMENSIONS.contains(&config.embedding_dimension) {
            return Err(ConnectError::UnsupportedDimension(
                config.embedding_dimension,
            ));
        }
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .connect_timeout(config.connect_timeout())
            .acquire_timeout(config.acquire_timeout())
            .idle_timeout(config.idle_timeout())
            .sqlx_logging(false);
        match backend {
            Backend::Postgres => {
                options
                    .max_connections(config.max_connections.max(1))
                    .min_connections(config.min_connections);
                if config.statement_timeout_ms > 0 {
                    options.statement_timeout(Duration::from_millis(config.statement_timeout_ms));
                }
                let capacity = config.statement_cache_capacity;
                options.map_sqlx_postgres_opts(move |o| o.statement_cache_capacity(capacity));
            }
            Backend::Sqlite => {
                // One connection: SQLite serialises writers anyway, and a single
                // connection cannot hit SQLITE_BUSY between its own transactions.
                // (`sqlite::memory:` also needs it: each connection would be a
                // separate database.)
                options.max_connections(1).min_connections(1);
                options.map_sqlx_sqlite_opts(|o| {
                    o.foreign_keys(true)
                        .busy_timeout(Duration::from_secs(5))
                        .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                });
            }
        }
        let db = Database::connect(options)
            .await
            .map_err(ConnectError::Connect)?;
        let store = Self {
            db,
            dimension: config.embedding_dimension as usize,
            ef_search: config.hnsw_ef_search,
        };
        if config.migrate_on_connect {
            store.migrate(config.embedding_dimension).await?;
        }
        Ok(store)
    }

    /// Wraps an open connection (tests, or a host that manages its own pool).
    #[must_use]
    pub fn from_connection(db: DatabaseConnection, embedding_dimension: usize) -> Self {
        Self {
            db,
            dimension: embedding_dimension,
            ef_search: DEFAULT_HNSW_EF_SEARCH,
        }
    }

    /// The same store with another `hnsw.ef_search` ([`DbConfig::hnsw_ef_search`]),
    /// e.g. after [`SqlStore::from_connection`] or to trade recall for speed.
    #[must_use]
    pub fn with_hnsw_ef_search(mut self, ef_search: u32) -> Self {
        self.ef_search = ef_search;
        self
    }

    /// Applies pending migrations.
    ///
    /// # Errors
    /// [`ConnectError::Migrate`].
    pub async fn migrate(&self, dimension: u32) -> Result<(), ConnectError> {
        iace_migrations::run(&self.db, dimension)
            .await
            .map_err(ConnectError::Migrate)
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.db.get_database_backend() {
            DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// The embedding dimension this store accepts.
    #[must_use]
    pub fn embedding_dimension(&self) -> usize {
        self.dimension
    }

    /// The underlying connection (for migrations and diagnostics).
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The pool's connections: (open, idle).
    #[must_use]
    pub fn pool_connections(&self) -> (u32, usize) {
        match self.backend() {
            Backend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            Backend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
    }

    /// Checks that the database answers (readiness probes).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(|e| StoreError::Unavailable {
            source: Box::new(e),
        })
    }

    /// Closes the pool.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when closing fails.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await.map_err(|e| StoreError::Unavailable {
            source: Box::new(e),
        })
    }
}
