//! Route groups, each with its OpenAPI description.

pub(crate) mod api_keys;
pub(crate) mod auth;
pub(crate) mod customers;
pub(crate) mod health;
pub(crate) mod pagination;
