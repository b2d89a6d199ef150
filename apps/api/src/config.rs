//! Typed, layered configuration: defaults → optional TOML file (`--config`) →
//! `IACE_*` environment variables (`IACE_DATABASE__URL`, `IACE_AUTH__JWT_SECRET`,
//! `IACE_SERVER__BIND`; `IACE_BIND` is accepted as a shorthand). Every key is
//! documented in docs/configuration.md. Each adapter receives only its section.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use iace_app::auth::{AuthConfig, JwtAlgorithm};
use iace_app::voice::VoiceConfig;
use iace_db::DbConfig;
use iace_domain::conversation::engine::{EngineConfig, NoAgentFallback};
pub use iace_telemetry::{LogConfig, LogFormat};
use secrecy::SecretString;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Database (`iace-db`).
    pub database: DbConfig,
    /// Sign-in and tokens.
    pub auth: AuthSettings,
    /// Logging.
    pub log: LogConfig,
    /// Traces exported over OTLP (`iace-telemetry`): off unless an endpoint
    /// is set.
    pub traces: iace_telemetry::TracesConfig,
    /// Error reporting to Sentry (`iace-telemetry`): off unless a DSN is set.
    pub sentry: iace_telemetry::SentryConfig,
    /// Redis (`iace-redis`): when set, rate limits are shared by every
    /// instance; when absent, the in-process limiter of one instance is used.
    pub redis: Option<iace_redis::RedisConfig>,
    /// Per-plan limits.
    pub limits: LimitsConfig,
    /// Call handling.
    pub calls: CallsConfig,
    /// Turn-taking of live calls.
    pub voice: VoiceSettings,
    /// Stripe billing webhooks (`iace-stripe`): when set, `POST
    /// /webhooks/stripe` verifies events with `webhook_secret` and sets plans
    /// by `prices`; when absent, that endpoint answers 404.
    pub stripe: Option<StripeConfig>,
    /// Telnyx (`iace-telnyx`): when set, calls are placed and answered
    /// through Telnyx and its webhooks are verified with `public_key`; when
    /// absent, the simulated provider is used.
    pub telnyx: Option<iace_telnyx::TelnyxConfig>,
    /// Groq or any OpenAI-compatible server (`iace-groq`): when set, replies
    /// and sentiment come from it; when absent, scripted replies and the
    /// lexicon.
    pub groq: Option<iace_groq::GroqConfig>,
    /// Google Gemini embeddings (`iace-genai`): when set, patterns and
    /// memories are embedded by Gemini; when absent, by the hashing embedder.
    pub genai: Option<iace_genai::GenaiConfig>,
    /// Deepgram (`iace-deepgram`): when set, live transcription and speech
    /// come from Deepgram; when absent, the text-as-audio providers of the
    /// simulator.
    pub deepgram: Option<iace_deepgram::DeepgramConfig>,
}

/// Stripe billing.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeConfig {
    /// The endpoint's signing secret (`whsec_…`); secret.
    pub webhook_secret: SecretString,
    /// Events whose timestamp is further than this from now are refused (s).
    pub tolerance_secs: u64,
    /// Stripe price id → plan (`{ "price_123" = "pro" }`).
    pub prices: std::collections::HashMap<String, iace_domain::Plan>,
}

impl Default for StripeConfig {
    fn default() -> Self {
        Self {
            webhook_secret: SecretString::from(String::new()),
            tolerance_secs: 300,
            prices: std::collections::HashMap::new(),
        }
    }
}

/// Call handling.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// When a machine answers an outbound call: `None` hangs up; a message is
    /// said (after the greeting) with the provider's voice before hanging up.
    pub voicemail_message: Option<String>,
    /// How often the webhook worker looks for events to (re)process (ms).
    pub worker_interval_ms: u64,
    /// Where the telephony provider streams call audio to (`wss://host`):
    /// calls are answered (inbound) or dialled (outbound) with a stream to
    /// `{this}/v1/media/telnyx?token=…` unless the organisation's settings
    /// name their own base URL; with neither, they go without a stream.
    pub media_base_url: Option<String>,
    /// Signs media-stream tokens; every instance must share it. Unset: a key
    /// derived from `auth.jwt_secret` (random when that is unset too).
    pub media_secret: Option<SecretString>,
    /// How long a media-stream token is valid (s): long enough for an
    /// outbound call to ring and be answered.
    pub media_token_ttl_s: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            voicemail_message: None,
            worker_interval_ms: 1_000,
            media_base_url: None,
            media_secret: None,
            media_token_ttl_s: 600,
        }
    }
}

/// Turn-taking of the voice runtime (`[voice]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceSettings {
    /// Quiet time after a possible end of the caller's turn before replying (ms).
    pub end_of_turn_grace_ms: u64,
    /// Words spoken over the agent that interrupt it.
    pub barge_in_min_words: usize,
    /// Speech over the agent (with a word) that interrupts it, however short (ms).
    pub barge_in_min_speech_ms: u64,
    /// How long a reply waits for its context (memory, patterns) (ms).
    pub context_timeout_ms: u64,
    /// A reply not heard this long after the turn gets a filler line first (ms; 0: never).
    pub filler_after_ms: u64,
    /// Silence before a re-prompt (ms; 0: never).
    pub silence_reprompt_ms: u64,
    /// Unanswered re-prompts before goodbye.
    pub max_reprompts: u32,
    /// With no human free on escalation: `take_message` or `keep_ai`.
    pub no_agent: NoAgentFallback,
    /// The key that asks for a human (empty: none).
    pub human_key: String,
    /// Speech-to-text endpointing (ms).
    pub endpointing_ms: u32,
    /// Speech-to-text utterance end (ms).
    pub utterance_end_ms: u32,
    /// How long after a call its post-call work starts (ms).
    pub post_call_delay_ms: u64,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        let engine = EngineConfig::default();
        let runtime = VoiceConfig::default();
        Self {
            end_of_turn_grace_ms: engine.end_of_turn_grace_ms,
            barge_in_min_words: engine.barge_in_min_words,
            barge_in_min_speech_ms: engine.barge_in_min_speech_ms,
            context_timeout_ms: engine.context_timeout_ms,
            filler_after_ms: engine.filler_after_ms,
            silence_reprompt_ms: engine.silence_reprompt_ms,
            max_reprompts: engine.max_reprompts,
            no_agent: engine.no_agent,
            human_key: engine.human_key.map(String::from).unwrap_or_default(),
            endpointing_ms: runtime.endpointing_ms,
            utterance_end_ms: runtime.utterance_end_ms,
            post_call_delay_ms: u64::try_from(runtime.post_call_delay.as_millis())
                .unwrap_or(u64::MAX),
        }
    }
}

impl VoiceSettings {
    /// The runtime's configuration.
    #[must_use]
    pub fn to_voice_config(&self) -> VoiceConfig {
        let mut config = VoiceConfig::default();
        let engine = &mut config.engine;
        engine.end_of_turn_grace_ms = self.end_of_turn_grace_ms;
        engine.barge_in_min_words = self.barge_in_min_words;
        engine.barge_in_min_speech_ms = self.barge_in_min_speech_ms;
        engine.context_timeout_ms = self.context_timeout_ms;
        engine.filler_after_ms = self.filler_after_ms;
        engine.silence_reprompt_ms = self.silence_reprompt_ms;
        engine.max_reprompts = self.max_reprompts;
        engine.no_agent = self.no_agent;
        engine.human_key = self.human_key.trim().chars().next();
        config.endpointing_ms = self.endpointing_ms;
        config.utterance_end_ms = self.utterance_end_ms;
        config.post_call_delay = Duration::from_millis(self.post_call_delay_ms);
        config
    }
}

/// What each plan may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanLimits {
    /// Authenticated API requests per minute (sustained).
    pub requests_per_minute: u32,
    /// Requests that may arrive at once (burst).
    pub burst: u32,
    /// Calls live at the same time.
    pub live_calls: u32,
    /// Outbound calls placed per minute (burst: a tenth of it, at least 1).
    pub outbound_calls_per_minute: u32,
    /// Requests per minute one API key may make (its own counter, on top of
    /// the organisation's), so one integration cannot starve the others;
    /// `None`: API keys share the organisation's budget only.
    pub api_key_requests_per_minute: Option<u32>,
    /// Burst of one API key (defaults to a tenth of its rate, at least 1).
    pub api_key_burst: Option<u32>,
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self {
            requests_per_minute: 600,
            burst: 100,
            live_calls: 5,
            outbound_calls_per_minute: 30,
            api_key_requests_per_minute: None,
            api_key_burst: None,
        }
    }
}

/// What to do when the shared limiter cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Allow the request, log, and carry on (default: availability first).
    #[default]
    Open,
    /// Refuse with 503.
    Closed,
}

/// Limits per plan and the limiter's failure policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Free plan.
    pub free: PlanLimits,
    /// Pro plan.
    pub pro: PlanLimits,
    /// Enterprise plan.
    pub enterprise: PlanLimits,
    /// When the limiter is unreachable.
    pub failure_policy: FailurePolicy,
    /// Sign-in attempts per e-mail address per minute (every instance
    /// together), with half as many at once: password guessing against one
    /// account is slowed to this pace. Refresh-token exchanges per token
    /// family are not limited (a refresh token is unguessable).
    pub login_attempts_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            free: PlanLimits::default(),
            pro: PlanLimits {
                requests_per_minute: 3_000,
                burst: 300,
                live_calls: 50,
                outbound_calls_per_minute: 300,
                api_key_requests_per_minute: None,
                api_key_burst: None,
            },
            enterprise: PlanLimits {
                requests_per_minute: 30_000,
                burst: 3_000,
                live_calls: 1_000,
                outbound_calls_per_minute: 3_000,
                api_key_requests_per_minute: None,
                api_key_burst: None,
            },
            failure_policy: FailurePolicy::Open,
            login_attempts_per_minute: 10,
        }
    }
}

impl LimitsConfig {
    /// The limits of `plan`.
    #[must_use]
    pub fn of(&self, plan: iace_domain::Plan) -> PlanLimits {
        match plan {
            iace_domain::Plan::Free => self.free,
            iace_domain::Plan::Pro => self.pro,
            iace_domain::Plan::Enterprise => self.enterprise,
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Requests taking longer are answered 503 (ms).
    pub request_timeout_ms: u64,
    /// Largest request body accepted (bytes).
    pub body_limit_bytes: usize,
    /// Origins allowed by CORS (`*` for any); empty disables CORS.
    pub cors_allowed_origins: Vec<String>,
    /// On SIGTERM/ctrl-c the instance drains first: readiness fails, new
    /// media streams are refused, and live calls get this long to end (ms)
    /// while everything else (webhooks included) is still served.
    pub drain_timeout_ms: u64,
    /// After the drain, in-flight requests get this long to finish (ms).
    pub shutdown_timeout_ms: u64,
    /// Repeated reads of a call's details are served from memory for this
    /// long (ms); writes through this instance show at once, writes through
    /// another within this time. 0 disables.
    pub read_cache_ttl_ms: u64,
    /// Customers looked up by phone and personas are served from the cache
    /// (Redis when configured, so shared) for this long (ms); writes through
    /// any instance invalidate them. 0 disables.
    pub lookup_cache_ttl_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_ms: 10_000,
            body_limit_bytes: 1024 * 1024,
            cors_allowed_origins: Vec::new(),
            drain_timeout_ms: 300_000,
            shutdown_timeout_ms: 30_000,
            read_cache_ttl_ms: 1_000,
            lookup_cache_ttl_ms: 60_000,
        }
    }
}

impl ServerConfig {
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub(crate) fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub(crate) fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

/// Token settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// `hs256` (default) or `eddsa`.
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256 secret, at least 32 bytes. When unset, a random one is generated at
    /// start (tokens then do not survive a restart) and a warning is logged.
    pub jwt_secret: Option<SecretString>,
    /// EdDSA private key, PKCS#8 PEM.
    pub ed25519_private_pem: Option<SecretString>,
    /// EdDSA public key, SPKI PEM.
    pub ed25519_public_pem: Option<String>,
    /// `iss` claim.
    pub issuer: String,
    /// Access token lifetime (s).
    pub access_ttl_secs: u64,
    /// Refresh token lifetime (s).
    pub refresh_ttl_secs: u64,
    /// How long a resolved credential is remembered per instance (ms); a key
    /// revoked or a user deleted elsewhere stops working within this. 0 disables.
    pub principal_cache_ttl_ms: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_algorithm: JwtAlgorithm::Hs256,
            jwt_secret: None,
            ed25519_private_pem: None,
            ed25519_public_pem: None,
            issuer: "iace".to_owned(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 7 * 24 * 3600,
            principal_cache_ttl_ms: 5_000,
        }
    }
}

impl AuthSettings {
    /// The use-case configuration, with `secret` filled in when none was set.
    pub(crate) fn to_auth_config(&self, fallback_secret: Option<SecretString>) -> AuthConfig {
        AuthConfig {
            algorithm: self.jwt_algorithm,
            hs256_secret: self.jwt_secret.clone().or(fallback_secret),
            ed25519_private_pem: self.ed25519_private_pem.clone(),
            ed25519_public_pem: self.ed25519_public_pem.clone(),
            issuer: self.issuer.clone(),
            access_ttl: Duration::from_secs(self.access_ttl_secs),
            refresh_ttl: Duration::from_secs(self.refresh_ttl_secs),
            principal_cache_ttl: Duration::from_millis(self.principal_cache_ttl_ms),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `--config` does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(String),
    /// A value is malformed or a key is unknown.
    #[error("invalid configuration")]
    Invalid(#[source] Box<figment::Error>),
}

const SECTIONS: [&str; 15] = [
    "server", "database", "auth", "log", "traces", "sentry", "redis", "limits", "calls", "voice",
    "telnyx", "groq", "genai", "deepgram", "stripe",
];

/// Loads the configuration: defaults, then `file` (if given), then `IACE_*`
/// variables from `env` (the process environment in production, a fixed list
/// in tests).
///
/// # Errors
/// [`ConfigError`].
pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let mut figment = Figment::new();
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError::MissingFile(file.display().to_string()));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    // Only IACE_<SECTION>__<KEY> (and IACE_BIND): other IACE_* variables belong
    // to tools (e.g. the test-services script) and must not fail the start.
    let mut pairs = Vec::new();
    for (key, value) in env {
        let Some(rest) = key.strip_prefix("IACE_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let path = if rest == "bind" {
            "server.bind".to_owned()
        } else if SECTIONS.iter().any(|s| rest.starts_with(&format!("{s}__"))) {
            rest.replace("__", ".")
        } else {
            continue;
        };
        pairs.push((path, value.clone()));
    }
    for (path, value) in pairs {
        // Numbers and booleans are parsed; secrets, URLs and other free text
        // stay strings whatever they look like.
        // (A numeric-looking id or key, e.g. a Telnyx connection id, is text.)
        let textual = [
            "secret",
            "url",
            "pem",
            "issuer",
            "filter",
            "key",
            "_id",
            "model",
            "voice",
            "prefix",
            "message",
            "dsn",
            "endpoint",
            "environment",
            "service_name",
        ]
        .iter()
        .any(|suffix| path.ends_with(suffix));
        let parsed = if textual {
            Value::from(value)
        } else {
            let Ok(parsed) = value.parse::<Value>();
            parsed
        };
        figment = figment.merge(Serialized::default(&path, parsed));
    }
    figment
        .extract()
        .map_err(|e| ConfigError::Invalid(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_configuration_is_the_embedded_default() {
        let config = load(None, &[]).expect("defaults");
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.database.url.expose_secret(),
            "sqlite://./iace.db?mode=rwc"
        );
        assert!(config.auth.jwt_secret.is_none());
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir =
            std::env::temp_dir().join(format!("iace-config-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("iace.toml");
        let mut file = std::fs::File::create(&path).expect("file");
        writeln!(
            file,
            "[server]\nbind = \"0.0.0.0:9000\"\nrequest_timeout_ms = 5000\n[database]\nmax_connections = 4"
        )
        .expect("write");
        let config = load(
            Some(&path),
            &env(&[
                ("IACE_SERVER__REQUEST_TIMEOUT_MS", "2500"),
                ("IACE_DATABASE__URL", "postgres://u:p@db:5432/iace"),
                ("IACE_AUTH__JWT_SECRET", "12345678901234567890123456789012"),
                ("IACE_TEST_SERVICES_DIR", "/tmp/ignored"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .expect("load");
        assert_eq!(
            config.server.bind.to_string(),
            "0.0.0.0:9000",
            "from the file"
        );
        assert_eq!(config.server.request_timeout_ms, 2500, "env beats the file");
        assert_eq!(config.database.max_connections, 4);
        assert_eq!(
            config.database.url.expose_secret(),
            "postgres://u:p@db:5432/iace"
        );
        assert_eq!(
            config
                .auth
                .jwt_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .as_deref(),
            Some("12345678901234567890123456789012"),
            "a numeric-looking secret stays text"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_provider_section_from_the_environment_chooses_that_provider() {
        use secrecy::ExposeSecret as _;
        let config = load(
            None,
            &env(&[
                ("IACE_GROQ__API_KEY", "gsk_test"),
                ("IACE_GROQ__BASE_URL", "http://127.0.0.1:11434/v1"),
                ("IACE_TELNYX__CONNECTION_ID", "1494404757140276705"),
                ("IACE_TELNYX__COMMANDS__ATTEMPTS", "5"),
            ]),
        )
        .expect("load");
        let groq = config.groq.expect("groq section");
        assert_eq!(groq.api_key.expose_secret(), "gsk_test");
        assert_eq!(groq.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(groq.model, iace_groq::GroqConfig::default().model);
        let telnyx = config.telnyx.expect("telnyx section");
        assert_eq!(telnyx.connection_id, "1494404757140276705");
        assert_eq!(telnyx.commands.attempts, 5);
        assert_eq!(
            telnyx.commands.deadline_ms, 10_000,
            "the rest keeps its defaults"
        );
        assert!(config.genai.is_none());
    }

    #[test]
    fn voice_traces_and_sentry_are_set_from_the_environment_too() {
        use secrecy::ExposeSecret as _;

        let config = load(
            None,
            &env(&[
                ("IACE_VOICE__END_OF_TURN_GRACE_MS", "350"),
                ("IACE_TRACES__OTLP_ENDPOINT", "http://otel-collector:4318"),
                ("IACE_TRACES__SAMPLE_RATIO", "0.25"),
                ("IACE_SENTRY__DSN", "https://key@o1.ingest.sentry.io/42"),
                ("IACE_SENTRY__ENVIRONMENT", "2026"),
            ]),
        )
        .expect("load");
        assert_eq!(config.voice.end_of_turn_grace_ms, 350);
        assert_eq!(
            config.traces.otlp_endpoint.as_deref(),
            Some("http://otel-collector:4318")
        );
        assert!((config.traces.sample_ratio - 0.25).abs() < f64::EPSILON);
        assert_eq!(
            config
                .sentry
                .dsn
                .as_ref()
                .map(|d| d.expose_secret().to_owned()),
            Some("https://key@o1.ingest.sentry.io/42".to_owned())
        );
        assert_eq!(config.sentry.environment.as_deref(), Some("2026"), "text");
    }

    #[test]
    fn iace_bind_is_a_shorthand() {
        let config = load(None, &env(&[("IACE_BIND", "127.0.0.1:0")])).expect("load");
        assert_eq!(config.server.bind.port(), 0);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(matches!(
            load(None, &env(&[("IACE_SERVER__BINDD", "x")])),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            load(None, &env(&[("IACE_SERVER__REQUEST_TIMEOUT_MS", "soon")])),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            load(Some(Path::new("/nonexistent/iace.toml")), &[]),
            Err(ConfigError::MissingFile(_))
        ));
    }
}
