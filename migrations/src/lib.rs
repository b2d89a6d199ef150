//! # iace-migrations — the schema of IACE
//!
//! The one source of the database schema, as a sea-orm-migration crate, for both
//! backends: PostgreSQL with pgvector (production) and SQLite (the embedded
//! default). The same tables exist on both; on Postgres embeddings are
//! `vector(N)` columns with HNSW indexes (`vector_cosine_ops`), on SQLite they are
//! blobs of little-endian `f32`s and vector search happens in Rust.
//!
//! The embedding dimension is a migration-time setting ([`run`]'s `dimension`,
//! default [`DEFAULT_EMBEDDING_DIMENSION`]); it must match the embedder's.
//! Migrations run forward on an empty database and are idempotent to re-run.
//!
//! **Must not depend on** the domain or any adapter: the schema is plain DDL.

mod m20261126_000001_initial;
mod m20261126_000002_org_telephony;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseConnection;

/// The embedding dimension used when none is configured (Gemini
/// `text-embedding-004` and many others produce 768).
pub const DEFAULT_EMBEDDING_DIMENSION: u32 = 768;

/// The embedding dimensions a schema can be created with.
pub const SUPPORTED_EMBEDDING_DIMENSIONS: [u32; 6] = [256, 384, 512, 768, 1024, 1536];

/// The migrator for a given embedding dimension. Use [`run`] unless you need the
/// sea-orm-migration API itself (`status`, `fresh`, ...).
#[derive(Debug, Clone, Copy)]
pub struct Migrator<const DIM: u32>;

#[async_trait::async_trait]
impl<const DIM: u32> MigratorTrait for Migrator<DIM> {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_initial::Migration {
                embedding_dimension: DIM,
            }),
            Box::new(m20261126_000002_org_telephony::Migration),
        ]
    }
}

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The dimension is not one of [`SUPPORTED_EMBEDDING_DIMENSIONS`].
    #[error("embedding dimension {0} is not supported (use one of 256, 384, 512, 768, 1024, 1536)")]
    UnsupportedDimension(u32),
    /// The database refused a migration.
    #[error("database migration failed")]
    Database(#[from] DbErr),
}

/// Applies every pending migration, creating embedding columns of `dimension`.
/// Safe to call on every start and from several processes at once on Postgres
/// (the statements are `IF NOT EXISTS`, and applied migrations are skipped).
///
/// # Errors
/// [`MigrateError::UnsupportedDimension`]; [`MigrateError::Database`].
pub async fn run(db: &DatabaseConnection, dimension: u32) -> Result<(), MigrateError> {
    match dimension {
        256 => Migrator::<256>::up(db, None).await?,
        384 => Migrator::<384>::up(db, None).await?,
        512 => Migrator::<512>::up(db, None).await?,
        768 => Migrator::<768>::up(db, None).await?,
        1024 => Migrator::<1024>::up(db, None).await?,
        1536 => Migrator::<1536>::up(db, None).await?,
        other => return Err(MigrateError::UnsupportedDimension(other)),
    }
    Ok(())
}

/// The name of the newest migration.
pub const SCHEMA_VERSION: &str = "m20261126_000002_org_telephony";

/// A fingerprint of every migration's source: changes whenever the schema does,
/// even while a migration is still being written (test templates are keyed by it).
pub const SCHEMA_FINGERPRINT: u64 = fnv1a(include_str!("m20261126_000001_initial.rs").as_bytes())
    ^ fnv1a(include_str!("m20261126_000002_org_telephony.rs").as_bytes()).rotate_left(1);

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

    use super::*;

    async fn tables(db: &DatabaseConnection) -> Vec<String> {
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            ))
            .await
            .expect("list tables");
        rows.iter()
            .map(|r| r.try_get::<String>("", "name").expect("name"))
            .collect()
    }

    #[tokio::test]
    async fn migrates_an_empty_sqlite_database_and_is_idempotent() {
        let db = Database::connect("sqlite::memory:").await.expect("sqlite");
        run(&db, DEFAULT_EMBEDDING_DIMENSION)
            .await
            .expect("first run");
        let first = tables(&db).await;
        run(&db, DEFAULT_EMBEDDING_DIMENSION)
            .await
            .expect("second run");
        assert_eq!(tables(&db).await, first);
        for table in [
            "organizations",
            "users",
            "refresh_tokens",
            "api_keys",
            "agents",
            "customers",
            "personas",
            "experiments",
            "experiment_variants",
            "experiment_assignments",
            "experiment_outcomes",
            "calls",
            "call_events",
            "transcript_entries",
            "learned_patterns",
            "pattern_uses",
            "customer_memories",
            "webhook_inbox",
        ] {
            assert!(
                first.iter().any(|t| t == table),
                "missing table {table}: {first:?}"
            );
        }
    }

    #[tokio::test]
    async fn rejects_an_unsupported_dimension() {
        let db = Database::connect("sqlite::memory:").await.expect("sqlite");
        assert!(matches!(
            run(&db, 7).await,
            Err(MigrateError::UnsupportedDimension(7))
        ));
    }

    #[test]
    fn fingerprint_is_stable_fnv() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
