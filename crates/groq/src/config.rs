//! Settings of the Groq adapter (the `groq` section of the configuration).

use iace_http::{BreakerConfig, HttpPolicy};
use secrecy::SecretString;
use serde::Deserialize;

/// How to reach Groq, or any server speaking the OpenAI chat completions API
/// (vLLM, Ollama, llama.cpp's server, OpenAI itself...): point `base_url` at
/// it and pick its model names.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroqConfig {
    /// API key, sent as `Authorization: Bearer …` (Groq keys start with
    /// `gsk_`). Secret: never logged. Empty sends no `Authorization` header
    /// (for local servers that need none).
    pub api_key: SecretString,
    /// The API's base URL; requests go to `{base_url}/chat/completions`.
    /// Any OpenAI-compatible server works, e.g. `http://localhost:11434/v1`.
    pub base_url: String,
    /// Model for replies, unless a request names its own.
    pub model: String,
    /// Model for sentiment readings (small and fast is enough). The default
    /// is one Groq documents strict JSON-schema output for; with a model
    /// that lacks it, set `sentiment_output` to `schema` or `json_object`.
    pub sentiment_model: String,
    /// How the sentiment model is asked for its JSON answer.
    pub sentiment_output: SentimentOutput,
    /// Sentiment reads at most this many characters of an utterance (the
    /// start of it); longer utterances are cut, to bound cost and latency.
    pub sentiment_max_input_chars: usize,
    /// Attempts and timeouts of a streamed reply, up to its response head.
    /// The request is retried only before any of the body was read.
    pub chat: HttpPolicy,
    /// Attempts and timeouts of a sentiment request (the whole body).
    pub sentiment: HttpPolicy,
    /// When the `groq` circuit opens (shared by replies and sentiment).
    pub breaker: BreakerConfig,
    /// A streamed reply must send its first event within this long after its
    /// response head (ms), keep-alive comments notwithstanding.
    pub first_token_timeout_ms: u64,
    /// Longest silence between two pieces of a streamed reply (ms); a stalled
    /// stream then fails with a timeout.
    pub idle_timeout_ms: u64,
    /// Largest accepted tool call arguments (bytes of JSON, per call); a
    /// larger call fails the reply as an invalid response.
    pub max_tool_arguments_bytes: usize,
}

impl Default for GroqConfig {
    fn default() -> Self {
        Self {
            api_key: SecretString::from(""),
            base_url: "https://api.groq.com/openai/v1".to_owned(),
            model: "llama-3.3-70b-versatile".to_owned(),
            sentiment_model: "openai/gpt-oss-20b".to_owned(),
            sentiment_output: SentimentOutput::default(),
            sentiment_max_input_chars: 4_000,
            chat: HttpPolicy::streaming(),
            sentiment: HttpPolicy::sentiment(),
            breaker: BreakerConfig::default(),
            first_token_timeout_ms: 10_000,
            idle_timeout_ms: 10_000,
            max_tool_arguments_bytes: 64 * 1024,
        }
    }
}

/// The `response_format` of sentiment requests. The answer is read the same
/// way in every case (the prompt describes its shape too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentOutput {
    /// `json_schema` with `strict: true`: constrained decoding, the answer
    /// always matches the schema. Groq accepts it on some models only; others
    /// answer 400.
    #[default]
    StrictSchema,
    /// `json_schema` with `strict: false`: the schema is followed on a best
    /// effort basis.
    Schema,
    /// `json_object` (JSON mode): valid JSON whose shape the prompt asks for;
    /// the widest support across models and servers.
    JsonObject,
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn an_empty_section_gives_the_defaults() {
        let config: GroqConfig = serde_json::from_str("{}").expect("defaults");
        assert_eq!(config.base_url, "https://api.groq.com/openai/v1");
        assert_eq!(config.model, "llama-3.3-70b-versatile");
        assert_eq!(config.sentiment_model, "openai/gpt-oss-20b");
        assert_eq!(config.sentiment_output, SentimentOutput::StrictSchema);
        assert_eq!(config.chat, HttpPolicy::streaming());
        assert_eq!(config.sentiment, HttpPolicy::sentiment());
        assert!(config.api_key.expose_secret().is_empty());
    }

    #[test]
    fn keys_are_read_and_unknown_keys_refused() {
        let config: GroqConfig = serde_json::from_value(serde_json::json!({
            "api_key": "gsk_secret",
            "base_url": "http://localhost:11434/v1",
            "sentiment_output": "json_object",
            "chat": {"attempts": 1},
            "idle_timeout_ms": 2000
        }))
        .expect("reads");
        assert_eq!(config.api_key.expose_secret(), "gsk_secret");
        assert_eq!(config.sentiment_output, SentimentOutput::JsonObject);
        assert_eq!(config.chat.attempts, 1);
        assert_eq!(config.idle_timeout_ms, 2_000);

        let err = serde_json::from_str::<GroqConfig>(r#"{"modle": "x"}"#).expect_err("typo");
        assert!(err.to_string().contains("modle"), "{err}");
    }

    #[test]
    fn the_api_key_never_shows_in_debug_output() {
        let config = GroqConfig {
            api_key: SecretString::from("gsk_do_not_print"),
            ..GroqConfig::default()
        };
        assert!(!format!("{config:?}").contains("gsk_do_not_print"));
    }
}
