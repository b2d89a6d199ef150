//! The client: one outbound HTTP client, hence one `groq` circuit breaker,
//! behind both ports (`LanguageModel` in `chat.rs`, `SentimentAnalyzer` in
//! `sentiment.rs`).

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use iace_domain::ports::ProviderError;
use iace_http::{CircuitBreaker, HttpPolicy, Operation, OutboundClient};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;

use crate::chat::StreamLimits;
use crate::config::{GroqConfig, SentimentOutput};
use crate::error::{BuildError, PROVIDER, refine};

/// A Groq (or other OpenAI-compatible) chat completions client. Implements
/// `LanguageModel` (streamed replies with tools) and `SentimentAnalyzer`
/// (sentiment as structured JSON). Cheap to clone; clones share the
/// connection pool and the circuit breaker.
#[derive(Debug, Clone)]
pub struct GroqClient {
    pub(crate) http: OutboundClient,
    api_key: SecretString,
    /// `{base_url}/chat/completions`.
    chat_url: String,
    pub(crate) model: String,
    pub(crate) sentiment_model: String,
    pub(crate) sentiment_output: SentimentOutput,
    pub(crate) sentiment_max_input_chars: usize,
    pub(crate) chat_policy: HttpPolicy,
    pub(crate) sentiment_policy: HttpPolicy,
    pub(crate) stream_limits: StreamLimits,
}

impl GroqClient {
    /// A client for the server at `config.base_url`, with a circuit breaker
    /// named `groq`. Nothing is sent until the first request.
    ///
    /// # Errors
    /// [`BuildError::InvalidBaseUrl`] when `base_url` is not an absolute
    /// http(s) URL; [`BuildError::Http`] when the HTTP client cannot be set up.
    pub fn new(config: GroqConfig) -> Result<Self, BuildError> {
        let base_url = config.base_url.trim().trim_end_matches('/');
        let parsed = reqwest::Url::parse(base_url).map_err(|_| BuildError::InvalidBaseUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() {
            return Err(BuildError::InvalidBaseUrl);
        }
        let http = OutboundClient::new(PROVIDER, &config.breaker)?;
        Ok(Self {
            http,
            chat_url: format!("{base_url}/chat/completions"),
            api_key: config.api_key,
            model: config.model,
            sentiment_model: config.sentiment_model,
            sentiment_output: config.sentiment_output,
            sentiment_max_input_chars: config.sentiment_max_input_chars.max(1),
            chat_policy: config.chat,
            sentiment_policy: config.sentiment,
            stream_limits: StreamLimits {
                first_event: Duration::from_millis(config.first_token_timeout_ms.max(1)),
                idle: Duration::from_millis(config.idle_timeout_ms.max(1)),
                max_tool_arguments: config.max_tool_arguments_bytes,
            },
        })
    }

    /// The `groq` circuit breaker (its state feeds readiness and metrics).
    /// Failed requests and replies that break off mid-stream count against it.
    #[must_use]
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        self.http.breaker()
    }

    /// Posts `body` as JSON to `/chat/completions` as `operation`: a 2xx
    /// response, or the failure as a [`ProviderError`].
    pub(crate) async fn post(
        &self,
        operation: Operation,
        body: &impl Serialize,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut request = self.http.request(Method::POST, &self.chat_url).json(body);
        let key = self.api_key.expose_secret();
        if !key.is_empty() {
            // reqwest marks the header sensitive: it never shows in debug output.
            request = request.bearer_auth(key);
        }
        self.http.send(operation, request).await.map_err(refine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_base_url(base_url: &str) -> Result<GroqClient, BuildError> {
        GroqClient::new(GroqConfig {
            base_url: base_url.to_owned(),
            ..GroqConfig::default()
        })
    }

    #[test]
    fn the_chat_url_follows_the_base_url() {
        let client = with_base_url("http://localhost:11434/v1/").expect("valid");
        assert_eq!(
            client.chat_url,
            "http://localhost:11434/v1/chat/completions"
        );
        let client = GroqClient::new(GroqConfig::default()).expect("defaults");
        assert_eq!(
            client.chat_url,
            "https://api.groq.com/openai/v1/chat/completions"
        );
    }

    #[test]
    fn a_base_url_that_is_not_http_is_refused() {
        for bad in [
            "",
            "api.groq.com/openai/v1",
            "ftp://example.com",
            "unix:/tmp/x",
        ] {
            assert!(
                matches!(with_base_url(bad), Err(BuildError::InvalidBaseUrl)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_api_key_never_shows_in_debug_output() {
        let client = GroqClient::new(GroqConfig {
            api_key: SecretString::from("gsk_do_not_print"),
            ..GroqConfig::default()
        })
        .expect("client");
        assert!(!format!("{client:?}").contains("gsk_do_not_print"));
    }
}
