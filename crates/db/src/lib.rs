//! # iace-db — persistence on Postgres + pgvector, or SQLite
//!
//! One adapter crate, two backends, one contract: [`SqlStore`] implements every
//! repository and store port of `iace_domain::ports::store` with sea-orm, on
//! PostgreSQL with pgvector (production, Supabase included) or SQLite (the
//! embedded default: a single file, no server). The schema comes from
//! `iace-migrations`.
//!
//! - Entities are private; rows convert to domain types, and a row that does not
//!   convert is reported as `StoreError::Corrupt`, never a panic.
//! - Every org-owned query is scoped by `OrgId`.
//! - Call transitions are conditional updates on the version read, in one
//!   transaction with the history entry.
//! - Vector search: pgvector's `<=>` (cosine distance) through the HNSW index on
//!   Postgres; exact cosine similarity in Rust on SQLite.
//!
//! **Must not depend on** other adapter crates (redis, providers) or on the API.

mod config;
mod convert;
mod entity;
mod error;
mod repo;
mod store;
mod vector;

pub use config::{DEFAULT_HNSW_EF_SEARCH, DbConfig};
pub use store::{Backend, ConnectError, SqlStore};
