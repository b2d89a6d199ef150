//! Route groups, each with its OpenAPI description.

pub mod agents;
pub mod api_keys;
pub mod auth;
pub mod calls;
pub mod customers;
pub mod experiments;
pub mod health;
pub mod media;
pub mod metrics;
pub mod org;
pub mod pagination;
pub mod patterns;
pub mod personas;
pub mod webhooks;
