//! Fakes of an OpenAI-compatible server, shared by the test binaries (each
//! uses a part of them).
#![allow(dead_code)]

use iace_groq::{GroqClient, GroqConfig};
use iace_http::HttpPolicy;
use secrecy::SecretString;

pub(crate) use iace_testkit::fakes::openai::*;

/// The path the client posts to, under a base URL ending in `/openai/v1`
/// (as Groq's does).
pub(crate) const CHAT_PATH: &str = "/openai/v1/chat/completions";

/// The key the test clients send.
pub(crate) const API_KEY: &str = "gsk_test_key";

/// Quick retries, so failure cases stay fast.
pub(crate) fn policy(attempt_timeout_ms: u64, deadline_ms: u64) -> HttpPolicy {
    HttpPolicy {
        attempts: 2,
        attempt_timeout_ms,
        deadline_ms,
        backoff_min_ms: 1,
        backoff_max_ms: 10,
    }
}

/// A config pointing at `server_uri` with fast policies.
pub(crate) fn config(server_uri: &str) -> GroqConfig {
    GroqConfig {
        api_key: SecretString::from(API_KEY),
        base_url: format!("{server_uri}/openai/v1"),
        chat: policy(1_000, 3_000),
        sentiment: policy(1_000, 3_000),
        first_token_timeout_ms: 2_000,
        idle_timeout_ms: 2_000,
        ..GroqConfig::default()
    }
}

/// A client for `server_uri`; `slow_to_answer` gives it timeouts shorter than
/// a slow fake's delay (attempt 200 ms, deadline 500 ms).
pub(crate) fn client(server_uri: &str, short_timeouts: bool) -> GroqClient {
    let mut config = config(server_uri);
    if short_timeouts {
        config.chat = policy(200, 500);
        config.sentiment = policy(200, 500);
    }
    GroqClient::new(config).expect("client")
}
