//! Contract suites: what every adapter of a port must do, tested the same way.
//!
//! Each store and infrastructure suite is `run(make)`, where `make` returns a
//! fresh, empty store per case. Each provider suite is `run(&fixture)`, where
//! the fixture builds adapters whose provider (a fake speaking the provider's
//! documented format, or the adapter itself for local providers) behaves as a
//! case asks. A failing assertion names its case in the message.

pub mod agents;
pub mod api_keys;
pub mod cache;
pub mod calls;
pub mod customers;
pub mod embedder;
pub mod event_bus;
pub mod event_dedupe;
pub mod experiments;
pub mod inbox;
pub mod language_model;
pub mod memories;
pub mod orgs;
pub mod patterns;
pub mod personas;
pub mod provider_failure;
pub mod rate_limiter;
pub mod refresh_tokens;
pub mod sentiment;
pub mod speech;
pub mod telephony;
pub mod transcripts;
pub mod users;

/// Names the case about to run (so a failure's output says which).
#[allow(clippy::print_stderr)]
pub(crate) fn announce(case: &str) {
    eprintln!("contract case: {case}");
}

/// Runs one case of a suite on a fresh harness, naming it if it fails.
macro_rules! case {
    ($make:expr, $name:literal, |$s:ident| $body:block) => {{
        eprintln!("contract case: {}", $name);
        let harness = $make().await;
        {
            let $s = &harness.store;
            $body
        }
        drop(harness);
    }};
}
pub(crate) use case;
