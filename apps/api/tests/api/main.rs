//! The API integration-test binary: the real server on port 0 over SQLite and
//! over Postgres + pgvector (via `iace-testkit`), driven with an HTTP client.
//! One module per area; all share `common`.

mod agents;
mod auth;
mod billing;
mod calls;
mod cli;
mod common;
mod customers;
mod deploy;
mod drain;
mod experiments;
mod faults;
mod health;
mod limits;
mod media;
mod observability;
mod patterns;
mod personas;
mod redis_down;
mod security;
mod traces;
mod voice;
mod webhooks;
