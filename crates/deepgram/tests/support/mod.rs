//! The Deepgram fakes (`iace_testkit::fakes::deepgram`) and a client
//! configuration pointing at them.

use iace_deepgram::DeepgramConfig;
use iace_http::{BreakerConfig, HttpPolicy};
pub(crate) use iace_testkit::fakes::deepgram::*;

/// Where nothing listens: for transports a test never reaches.
pub(crate) const NO_REST: &str = "http://127.0.0.1:9";

/// A client configuration for the fakes: short waits, a breaker that stays
/// closed unless a test wants it open.
pub(crate) fn config(ws_url: &str, base_url: &str) -> DeepgramConfig {
    DeepgramConfig {
        api_key: secrecy::SecretString::from("KEY_test"),
        ws_url: ws_url.to_owned(),
        base_url: base_url.to_owned(),
        connect_timeout_ms: 2_000,
        reconnect_backoff_ms: 20,
        tts_rest: HttpPolicy {
            attempts: 2,
            attempt_timeout_ms: 2_000,
            deadline_ms: 4_000,
            backoff_min_ms: 1,
            backoff_max_ms: 5,
        },
        tts_idle_timeout_ms: 5_000,
        breaker: BreakerConfig {
            failure_threshold: 100,
            ..BreakerConfig::default()
        },
        ..DeepgramConfig::default()
    }
}
