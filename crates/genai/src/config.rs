//! The adapter's configuration section: credentials, model, dimension, task type,
//! batching and the outbound policy.

use iace_http::{BreakerConfig, HttpPolicy};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The most texts Gemini accepts in one `batchEmbedContents` request.
pub const MAX_BATCH_SIZE: usize = 100;

/// The largest `outputDimensionality` of `gemini-embedding-001` (its full,
/// untruncated size).
pub const MAX_DIMENSION: usize = 3_072;

/// What the embeddings will be used for; Gemini tunes the vector to it.
///
/// Sent as `taskType`. Documents stored for retrieval and the queries that
/// search them are best embedded with [`RetrievalDocument`](Self::RetrievalDocument)
/// and [`RetrievalQuery`](Self::RetrievalQuery) respectively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskType {
    /// `TASK_TYPE_UNSPECIFIED`: no hint.
    TaskTypeUnspecified,
    /// `RETRIEVAL_QUERY`: a search query.
    RetrievalQuery,
    /// `RETRIEVAL_DOCUMENT`: a text stored to be found by queries.
    #[default]
    RetrievalDocument,
    /// `SEMANTIC_SIMILARITY`: texts compared with each other.
    SemanticSimilarity,
    /// `CLASSIFICATION`: texts to be classified.
    Classification,
    /// `CLUSTERING`: texts to be clustered.
    Clustering,
    /// `QUESTION_ANSWERING`: questions answered from documents.
    QuestionAnswering,
    /// `FACT_VERIFICATION`: statements checked against documents.
    FactVerification,
    /// `CODE_RETRIEVAL_QUERY`: a natural-language query for code.
    CodeRetrievalQuery,
}

/// How to reach Gemini's embedding API and what to ask it for.
///
/// Every key has a default; only `api_key` must be set for real use.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenaiConfig {
    /// The Gemini API key (secret). Sent in the `x-goog-api-key` header,
    /// never in the URL, never logged. Empty by default: building the
    /// embedder then fails.
    pub api_key: SecretString,
    /// The API base, without a trailing slash
    /// (default `https://generativelanguage.googleapis.com/v1beta`).
    pub base_url: String,
    /// The embedding model (default `gemini-embedding-001`); a `models/`
    /// prefix is accepted and ignored.
    pub model: String,
    /// Components per vector, sent as `outputDimensionality` (default 768,
    /// at most 3072). It **must equal the dimension of the database's vector
    /// columns**: vectors of another dimension cannot be stored or compared,
    /// and vectors from different models or dimensions are never comparable,
    /// so changing it (or `model`) means re-embedding everything stored.
    pub dimension: usize,
    /// What the vectors are for, sent as `taskType` (default
    /// `RETRIEVAL_DOCUMENT`).
    pub task_type: TaskType,
    /// Texts per `batchEmbedContents` request (default 100; values outside
    /// 1..=100 are clamped, 100 being Gemini's limit).
    pub batch_size: usize,
    /// Attempts, timeouts and backoff of each batch request (default
    /// `HttpPolicy::embeddings()`: 2 attempts within 10 s).
    pub policy: HttpPolicy,
    /// When Gemini's circuit breaker opens and how it recovers.
    pub breaker: BreakerConfig,
}

impl Default for GenaiConfig {
    fn default() -> Self {
        Self {
            api_key: SecretString::from(""),
            base_url: "https://generativelanguage.googleapis.com/v1beta".to_owned(),
            model: "gemini-embedding-001".to_owned(),
            dimension: 768,
            task_type: TaskType::RetrievalDocument,
            batch_size: MAX_BATCH_SIZE,
            policy: HttpPolicy::embeddings(),
            breaker: BreakerConfig::default(),
        }
    }
}

impl GenaiConfig {
    /// `batch_size` clamped to 1..=[`MAX_BATCH_SIZE`].
    #[must_use]
    pub fn effective_batch_size(&self) -> usize {
        self.batch_size.clamp(1, MAX_BATCH_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = GenaiConfig::default();
        assert_eq!(config.api_key.expose_secret(), "");
        assert_eq!(
            config.base_url,
            "https://generativelanguage.googleapis.com/v1beta"
        );
        assert_eq!(config.model, "gemini-embedding-001");
        assert_eq!(config.dimension, 768);
        assert_eq!(config.task_type, TaskType::RetrievalDocument);
        assert_eq!(config.batch_size, 100);
        assert_eq!(config.policy, HttpPolicy::embeddings());
        assert_eq!(config.breaker, BreakerConfig::default());
    }

    #[test]
    fn a_partial_section_keeps_the_other_defaults() {
        let config: GenaiConfig = serde_json::from_value(serde_json::json!({
            "api_key": "k-123",
            "dimension": 1536,
            "task_type": "RETRIEVAL_QUERY",
            "policy": {"attempts": 3}
        }))
        .expect("valid section");
        assert_eq!(config.api_key.expose_secret(), "k-123");
        assert_eq!(config.dimension, 1536);
        assert_eq!(config.task_type, TaskType::RetrievalQuery);
        assert_eq!(config.policy.attempts, 3);
        assert_eq!(
            config.policy.deadline_ms,
            HttpPolicy::default().deadline_ms,
            "a policy's missing keys take HttpPolicy's defaults"
        );
        assert_eq!(config.model, "gemini-embedding-001");
    }

    #[test]
    fn unknown_keys_and_task_types_are_refused() {
        let unknown = serde_json::from_value::<GenaiConfig>(serde_json::json!({"api-key": "x"}));
        assert!(unknown.is_err());
        let bad_task =
            serde_json::from_value::<GenaiConfig>(serde_json::json!({"task_type": "retrieval"}));
        assert!(bad_task.is_err());
    }

    #[test]
    fn every_task_type_has_its_documented_name() {
        let names = [
            (TaskType::TaskTypeUnspecified, "TASK_TYPE_UNSPECIFIED"),
            (TaskType::RetrievalQuery, "RETRIEVAL_QUERY"),
            (TaskType::RetrievalDocument, "RETRIEVAL_DOCUMENT"),
            (TaskType::SemanticSimilarity, "SEMANTIC_SIMILARITY"),
            (TaskType::Classification, "CLASSIFICATION"),
            (TaskType::Clustering, "CLUSTERING"),
            (TaskType::QuestionAnswering, "QUESTION_ANSWERING"),
            (TaskType::FactVerification, "FACT_VERIFICATION"),
            (TaskType::CodeRetrievalQuery, "CODE_RETRIEVAL_QUERY"),
        ];
        for (task, name) in names {
            assert_eq!(serde_json::to_value(task).expect("ser"), name);
            assert_eq!(
                serde_json::from_value::<TaskType>(serde_json::json!(name)).expect("de"),
                task
            );
        }
    }

    #[test]
    fn the_batch_size_is_clamped_to_gemini_limit() {
        let with = |batch_size| GenaiConfig {
            batch_size,
            ..GenaiConfig::default()
        };
        assert_eq!(with(0).effective_batch_size(), 1);
        assert_eq!(with(25).effective_batch_size(), 25);
        assert_eq!(with(500).effective_batch_size(), 100);
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let config: GenaiConfig =
            serde_json::from_value(serde_json::json!({"api_key": "super-secret-key"}))
                .expect("valid");
        assert!(!format!("{config:?}").contains("super-secret-key"));
    }
}
