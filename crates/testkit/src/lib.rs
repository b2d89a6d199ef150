//! # iace-testkit — contract suites and test services
//!
//! - [`contracts`]: one suite per port, written once against the domain traits
//!   and run by every adapter of that port (SQLite and Postgres for the stores).
//!   A suite takes a factory that makes a fresh, empty store per case.
//! - [`pg`]: a fresh PostgreSQL database per test, created from a migrated
//!   template and dropped afterwards. The server comes from `TEST_DATABASE_URL`,
//!   else from a `pgvector/pgvector:pg17` container where a Docker engine
//!   answers, else the test fails saying how to start one
//!   (`eval "$(scripts/test-services.sh start)"`). Never silently skipped.
//! - [`fixtures`]: valid domain values to build tests from.
//! - [`proxy`]: a TCP proxy a test can cut or stall, to take a real service
//!   away mid-test (as a restart or a partition would) and give it back.
//! - [`fakes`]: local fakes of Deepgram (WebSocket) and an OpenAI-compatible
//!   chat server (Groq), for the adapters' tests and the end-to-end tests.
//!
//! Test support only: a dev-dependency of adapters. **Must not depend on** any
//! adapter crate (adapters depend on it), only on the domain and the schema.

pub mod contracts;
pub mod fakes;
pub mod fixtures;
pub mod pg;
pub mod proxy;
pub mod redis;

/// A store under test and whatever keeps its database alive (dropped last).
#[derive(Debug)]
pub struct Harness<S> {
    /// The store.
    pub store: S,
    /// The Postgres database behind it, dropped with the harness.
    pub database: Option<pg::TestDatabase>,
}

impl<S> Harness<S> {
    /// A harness whose store needs nothing kept alive (SQLite in memory).
    pub fn new(store: S) -> Self {
        Self {
            store,
            database: None,
        }
    }
}
