//! [`GeminiEmbedder`]: the domain's `Embedder` on Gemini's
//! `batchEmbedContents`, through the shared outbound stack.

use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderValue, Method};
use iace_domain::Embedding;
use iace_domain::ports::{BoxError, Embedder, ProviderError};
use iace_http::{CircuitBreaker, HttpPolicy, Operation, OutboundClient};
use secrecy::ExposeSecret as _;

use crate::config::{GenaiConfig, MAX_DIMENSION, TaskType};
use crate::wire::{BatchEmbedRequest, BatchEmbedResponse, EmbedContentRequest};

/// The provider name in errors, logs and metrics.
pub const PROVIDER: &str = "gemini";

/// The header that carries the API key (the key never goes in the URL, where
/// proxies and access logs would keep it).
const API_KEY_HEADER: &str = "x-goog-api-key";

/// The embedder could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `api_key` is empty.
    #[error("the Gemini API key is empty")]
    MissingApiKey,
    /// `api_key` contains characters an HTTP header cannot carry.
    #[error("the Gemini API key is not a valid header value")]
    InvalidApiKey,
    /// `base_url` is not an `http://` or `https://` URL.
    #[error("the Gemini base URL must start with http:// or https://")]
    InvalidBaseUrl,
    /// `model` is empty.
    #[error("the Gemini embedding model is empty")]
    MissingModel,
    /// `dimension` is 0 or above what the model produces.
    #[error("the embedding dimension must be between 1 and {MAX_DIMENSION}, not {0}")]
    InvalidDimension(usize),
    /// The HTTP client could not be set up.
    #[error("could not build the Gemini HTTP client")]
    Client(#[source] iace_http::BuildError),
}

/// Gemini embeddings (`gemini-embedding-001` by default) as an [`Embedder`].
///
/// Texts are sent in batches of `batch_size`, one `batchEmbedContents`
/// request per batch, one batch after another (so a large input never has
/// more than one request in flight against the quota); the vectors come back
/// in input order. Each vector is checked against the configured dimension
/// and L2-normalised here: Gemini only normalises its full 3072-component
/// output, and cosine similarity downstream assumes unit vectors.
#[derive(Debug, Clone)]
pub struct GeminiEmbedder {
    client: OutboundClient,
    /// The key as a header value, marked sensitive (redacted in `Debug`).
    api_key: HeaderValue,
    /// `{base}/models/{model}:batchEmbedContents`.
    url: String,
    /// The model as requests name it: `models/{model}`.
    model: String,
    dimension: usize,
    task_type: TaskType,
    batch_size: usize,
    policy: HttpPolicy,
}

impl GeminiEmbedder {
    /// An embedder with its own HTTP client and circuit breaker.
    ///
    /// # Errors
    /// [`BuildError`] when the key, base URL, model or dimension is invalid,
    /// or the HTTP client cannot be set up.
    pub fn new(config: &GenaiConfig) -> Result<Self, BuildError> {
        let key = config.api_key.expose_secret().trim();
        if key.is_empty() {
            return Err(BuildError::MissingApiKey);
        }
        let mut api_key = HeaderValue::from_str(key).map_err(|_| BuildError::InvalidApiKey)?;
        api_key.set_sensitive(true);
        let base_url = config.base_url.trim().trim_end_matches('/');
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(BuildError::InvalidBaseUrl);
        }
        let model = config.model.trim();
        let model = model.strip_prefix("models/").unwrap_or(model);
        if model.is_empty() {
            return Err(BuildError::MissingModel);
        }
        if !(1..=MAX_DIMENSION).contains(&config.dimension) {
            return Err(BuildError::InvalidDimension(config.dimension));
        }
        let client = OutboundClient::new(PROVIDER, &config.breaker).map_err(BuildError::Client)?;
        Ok(Self {
            client,
            api_key,
            url: format!("{base_url}/models/{model}:batchEmbedContents"),
            model: format!("models/{model}"),
            dimension: config.dimension,
            task_type: config.task_type,
            batch_size: config.effective_batch_size(),
            policy: config.policy,
        })
    }

    /// The model's name, without the `models/` prefix (store it beside each
    /// vector: vectors of different models are not comparable).
    #[must_use]
    pub fn model(&self) -> &str {
        self.model.strip_prefix("models/").unwrap_or(&self.model)
    }

    /// Gemini's circuit breaker (its state feeds metrics and readiness).
    #[must_use]
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        self.client.breaker()
    }

    /// One `batchEmbedContents` request for at most `batch_size` texts.
    async fn embed_batch(&self, batch: &[String]) -> Result<Vec<Embedding>, ProviderError> {
        let body = BatchEmbedRequest {
            requests: batch
                .iter()
                .map(|text| {
                    EmbedContentRequest::new(&self.model, text, self.task_type, self.dimension)
                })
                .collect(),
        };
        let request = self
            .client
            .request(Method::POST, &self.url)
            .header(API_KEY_HEADER, self.api_key.clone())
            .json(&body);
        let response: BatchEmbedResponse = self
            .client
            .send_json(Operation::safe("embed", self.policy), request)
            .await
            .map_err(credentials_refused)?;
        if response.embeddings.len() != batch.len() {
            return Err(invalid(format!(
                "{} embeddings for {} texts",
                response.embeddings.len(),
                batch.len()
            )));
        }
        response
            .embeddings
            .into_iter()
            .map(|embedding| self.normalised(embedding.values))
            .collect()
    }

    /// Checks the dimension and scales `values` to unit length.
    fn normalised(&self, values: Vec<f32>) -> Result<Embedding, ProviderError> {
        if values.len() != self.dimension {
            return Err(invalid(format!(
                "an embedding of dimension {}, expected {}",
                values.len(),
                self.dimension
            )));
        }
        let norm = values
            .iter()
            .map(|v| f64::from(*v) * f64::from(*v))
            .sum::<f64>()
            .sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Err(invalid(
                "an embedding that cannot be normalised (all zeros or not finite)".to_owned(),
            ));
        }
        let unit = values
            .into_iter()
            .map(|v| {
                // Components are stored as f32; the division is done in f64.
                #[allow(clippy::cast_possible_truncation)]
                let scaled = (f64::from(v) / norm) as f32;
                scaled
            })
            .collect();
        Embedding::new(unit).map_err(|err| ProviderError::InvalidResponse {
            provider: PROVIDER,
            source: Box::new(err),
        })
    }
}

/// Gemini refuses a wrong or expired key with `400 INVALID_ARGUMENT`
/// (reason `API_KEY_INVALID`, message "API key not valid. Please pass a valid
/// API key."), not 401/403: that is a credentials problem, not a bad request.
fn credentials_refused(err: ProviderError) -> ProviderError {
    match err {
        ProviderError::Rejected {
            provider,
            status: Some(400),
            ref detail,
        } if detail.to_ascii_lowercase().contains("api key") => {
            ProviderError::Unauthorized { provider }
        }
        other => other,
    }
}

/// An answer Gemini should never give.
fn invalid(detail: String) -> ProviderError {
    ProviderError::InvalidResponse {
        provider: PROVIDER,
        source: BoxError::from(detail),
    }
}

#[async_trait]
impl Embedder for GeminiEmbedder {
    fn dimension(&self) -> usize {
        self.dimension
    }

    /// # Errors
    /// [`ProviderError`] from the outbound stack (timeouts, 429, 401/403,
    /// 5xx, open circuit); [`ProviderError::InvalidResponse`] when the body
    /// is not the documented JSON, the count or a dimension is wrong, or a
    /// vector is all zeros. A failed batch fails the whole call.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Embedding>, ProviderError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        tracing::debug!(
            provider = PROVIDER,
            texts = texts.len(),
            batches = texts.len().div_ceil(self.batch_size),
            model = self.model(),
            "embedding texts"
        );
        let mut embeddings = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            embeddings.extend(self.embed_batch(batch).await?);
        }
        Ok(embeddings)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn config() -> GenaiConfig {
        GenaiConfig {
            api_key: SecretString::from("test-key"),
            ..GenaiConfig::default()
        }
    }

    type Expected = fn(&BuildError) -> bool;

    #[test]
    fn invalid_configurations_are_refused() {
        let cases: [(GenaiConfig, Expected); 5] = [
            (GenaiConfig::default(), |e| {
                matches!(e, BuildError::MissingApiKey)
            }),
            (
                GenaiConfig {
                    api_key: SecretString::from("bad\nkey"),
                    ..config()
                },
                |e| matches!(e, BuildError::InvalidApiKey),
            ),
            (
                GenaiConfig {
                    base_url: "generativelanguage.googleapis.com".into(),
                    ..config()
                },
                |e| matches!(e, BuildError::InvalidBaseUrl),
            ),
            (
                GenaiConfig {
                    model: "models/".into(),
                    ..config()
                },
                |e| matches!(e, BuildError::MissingModel),
            ),
            (
                GenaiConfig {
                    dimension: 4_096,
                    ..config()
                },
                |e| matches!(e, BuildError::InvalidDimension(4_096)),
            ),
        ];
        for (config, expected) in cases {
            let err = GeminiEmbedder::new(&config).expect_err("refused");
            assert!(expected(&err), "{err:?}");
        }
    }

    #[test]
    fn the_url_names_the_model_once_and_never_the_key() {
        let embedder = GeminiEmbedder::new(&GenaiConfig {
            base_url: "https://example.test/v1beta/".into(),
            model: "models/gemini-embedding-001".into(),
            ..config()
        })
        .expect("embedder");
        assert_eq!(
            embedder.url,
            "https://example.test/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(embedder.model, "models/gemini-embedding-001");
        assert_eq!(embedder.model(), "gemini-embedding-001");
        assert!(!format!("{embedder:?}").contains("test-key"));
    }

    #[test]
    fn vectors_are_normalised_and_checked() {
        let embedder = GeminiEmbedder::new(&GenaiConfig {
            dimension: 2,
            ..config()
        })
        .expect("embedder");
        let unit = embedder.normalised(vec![3.0, 4.0]).expect("valid");
        assert_eq!(unit.as_slice(), &[0.6, 0.8]);
        for bad in [vec![0.0, 0.0], vec![1.0], vec![1.0, f32::NAN]] {
            let err = embedder.normalised(bad).expect_err("invalid");
            assert!(
                matches!(
                    err,
                    ProviderError::InvalidResponse {
                        provider: "gemini",
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }
}
