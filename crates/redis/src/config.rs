//! Connection settings.

use secrecy::SecretString;
use serde::Deserialize;

/// How to reach Redis. `rediss://` URLs use TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:6379/0` or `rediss://...`; may carry a password (secret).
    pub url: SecretString,
    /// Prepended to every key and channel (several deployments can share one
    /// Redis).
    pub key_prefix: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// A command not answered within this is an error (ms), so no request
    /// waits longer on Redis.
    pub command_timeout_ms: u64,
    /// Time to connect (ms).
    pub connect_timeout_ms: u64,
    /// Longest pause between reconnection attempts (ms).
    pub reconnect_max_delay_ms: u32,
    /// With `rediss://`: a PEM file of the CA certificate(s) to trust instead
    /// of the system's roots (a private CA, or a self-signed server).
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("redis://127.0.0.1:6379"),
            key_prefix: "iace:".to_owned(),
            pool_size: 4,
            command_timeout_ms: 500,
            connect_timeout_ms: 2_000,
            reconnect_max_delay_ms: 2_000,
            tls_ca_file: None,
        }
    }
}
