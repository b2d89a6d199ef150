//! # iace-app — the use cases
//!
//! What IACE does, expressed over the domain's ports: authentication and API
//! keys, and the operations on agents, customers, personas, experiments, calls,
//! patterns and memory. Every operation takes the caller's [`auth::Principal`]
//! and is scoped to its organisation; role checks happen here, once.
//!
//! **Must not depend on** any adapter (db, redis, providers) nor on axum or any
//! HTTP type: it is driven by `apps/api` and tested with the domain's mocks and
//! in-memory doubles.

pub mod agents;
pub mod auth;
pub mod billing;
mod cached;
pub mod calls;
pub mod customers;
pub mod error;
pub mod experiments;
pub mod orgs;
pub mod patterns;
pub mod personas;
pub mod postcall;
pub mod voice;
pub mod webhooks;

pub use error::{AppError, FieldError};
