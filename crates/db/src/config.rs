//! Connection settings.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// The default [`DbConfig::hnsw_ef_search`].
pub const DEFAULT_HNSW_EF_SEARCH: u32 = 100;

/// How to reach the database. Every field has a default, so an empty
/// configuration opens `./iace.db` (SQLite).
///
/// Supabase: use the **direct** connection or the **session** pooler (port
/// 5432). The transaction pooler (port 6543) does not keep prepared statements
/// across transactions: if you must use it, set `statement_cache_capacity = 0`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbConfig {
    /// `sqlite://./iace.db?mode=rwc`, `sqlite::memory:` or
    /// `postgres://user:pass@host:5432/db`. Secret: it may carry a password.
    pub url: SecretString,
    /// Largest pool size (Postgres). SQLite always uses one connection: it
    /// serialises writes anyway, and one connection keeps it free of lock errors.
    pub max_connections: u32,
    /// Connections kept open when idle (Postgres).
    pub min_connections: u32,
    /// Time allowed to open a connection, ms.
    pub connect_timeout_ms: u64,
    /// Time a query may wait for a free connection before failing as
    /// unavailable, ms.
    pub acquire_timeout_ms: u64,
    /// Idle connections are closed after this long, ms.
    pub idle_timeout_ms: u64,
    /// Server-side statement timeout (Postgres), ms; 0 means none.
    pub statement_timeout_ms: u64,
    /// Prepared statements cached per connection (Postgres); 0 disables the cache
    /// (needed behind transaction-mode poolers such as PgBouncer/Supavisor 6543).
    pub statement_cache_capacity: usize,
    /// Dimension of stored embeddings; must match the embedder and the schema
    /// (see `iace-migrations`).
    pub embedding_dimension: u32,
    /// Run migrations when connecting. On for the embedded default; production
    /// runs `iace-api migrate` as a separate step.
    pub migrate_on_connect: bool,
    /// pgvector's `hnsw.ef_search` for vector search (Postgres): the size of the
    /// candidate list the HNSW index keeps while searching. Larger means better
    /// recall and slower queries; pgvector's own default is 40. Set per query
    /// (`SET LOCAL`, raised to `k` when a query asks for more rows), together with
    /// `hnsw.iterative_scan = strict_order` so that filtered searches (one org,
    /// one kind) still find `k` rows — which needs pgvector >= 0.8. Clamped into
    /// 1..=1000 (pgvector's range). Measured with `just bench-vector` (100 000
    /// patterns of dimension 768, k = 10, 2 cores): 40 → recall@10 0.94, 100 →
    /// 0.99 at p95 ≈ 8 ms end to end, 200 → 0.996 for about the same latency.
    pub hnsw_ef_search: u32,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://./iace.db?mode=rwc"),
            max_connections: 10,
            min_connections: 0,
            connect_timeout_ms: 5_000,
            acquire_timeout_ms: 3_000,
            idle_timeout_ms: 600_000,
            statement_timeout_ms: 0,
            statement_cache_capacity: 100,
            embedding_dimension: 768,
            migrate_on_connect: true,
            hnsw_ef_search: DEFAULT_HNSW_EF_SEARCH,
        }
    }
}

impl DbConfig {
    /// The same settings for another URL.
    #[must_use]
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = SecretString::from(url.into());
        self
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}
