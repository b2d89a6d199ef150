//! Route groups, each with its OpenAPI description.

pub mod api_keys;
pub mod auth;
pub mod calls;
pub mod customers;
pub mod health;
pub mod pagination;
