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
        vec![Box::new(m20261126_000001_initial::Migration {
            embedding_dimension: DIM,
        })]
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

/// The name of the newest migration: changes whenever the schema does (test
/// templates are keyed by it).
pub const SCHEMA_VERSION: &str = "m20261126_000001_initial";
