//! # iace-api — the composition root
//!
//! The axum HTTP server and the admin CLI. It reads the configuration, builds
//! every adapter once (the `startup` module), hands them to the use cases
//! (`iace-app`) as `Arc<dyn Port>`, and maps HTTP to use cases and errors to
//! problem+json (`http`). It is the only crate that knows every other crate.

pub mod config;
pub mod http;
pub mod providers;
pub mod sim;
pub mod startup;
