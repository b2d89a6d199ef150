//! Telnyx settings.

use iace_http::{BreakerConfig, HttpPolicy};
use secrecy::SecretString;
use serde::Deserialize;

/// How to reach Telnyx Call Control v2 and check its webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelnyxConfig {
    /// API key (`Authorization: Bearer …`); secret.
    pub api_key: SecretString,
    /// API base URL.
    pub base_url: String,
    /// The Call Control application (connection) id that outbound calls use.
    pub connection_id: String,
    /// Where Telnyx sends this deployment's call webhooks, when it should not
    /// use the application's configured URL.
    pub webhook_url: Option<String>,
    /// The account's Ed25519 webhook public key (base64, from the portal).
    pub public_key: Option<String>,
    /// Webhooks whose timestamp is further than this from now are refused (s).
    pub webhook_tolerance_secs: u64,
    /// Call commands (answer, hang up, …): idempotent by `command_id`, so
    /// they are retried.
    pub commands: HttpPolicy,
    /// Dial: sent once (a repeated dial could ring the customer twice).
    pub dial: HttpPolicy,
    /// The Telnyx circuit breaker.
    pub breaker: BreakerConfig,
    /// The voice for Telnyx's own text-to-speech when a persona's voice is
    /// not a Telnyx voice id (`Provider.Model.Voice`): `female` or `male`.
    pub fallback_voice: String,
}

impl Default for TelnyxConfig {
    fn default() -> Self {
        Self {
            api_key: SecretString::from(String::new()),
            base_url: "https://api.telnyx.com/v2".to_owned(),
            connection_id: String::new(),
            webhook_url: None,
            public_key: None,
            webhook_tolerance_secs: 300,
            commands: HttpPolicy::telephony(),
            dial: HttpPolicy {
                attempts: 1,
                ..HttpPolicy::telephony()
            },
            breaker: BreakerConfig::default(),
            fallback_voice: "female".to_owned(),
        }
    }
}
