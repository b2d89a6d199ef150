//! Gemini's JSON, as sent and received (private: nothing outside the crate
//! sees these shapes).

use serde::{Deserialize, Serialize};

use crate::config::TaskType;

/// `POST {base}/models/{model}:batchEmbedContents` body.
#[derive(Debug, Serialize)]
pub(crate) struct BatchEmbedRequest<'a> {
    /// One request per text, each repeating the model.
    pub(crate) requests: Vec<EmbedContentRequest<'a>>,
}

/// One text to embed (`EmbedContentRequest`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmbedContentRequest<'a> {
    /// `models/{model}`.
    pub(crate) model: &'a str,
    /// The text, as a one-part content.
    pub(crate) content: Content<'a>,
    /// What the vector is for.
    pub(crate) task_type: TaskType,
    /// Components wanted (the vector is truncated from the end).
    pub(crate) output_dimensionality: usize,
}

/// A `Content` with text parts.
#[derive(Debug, Serialize)]
pub(crate) struct Content<'a> {
    /// The parts; one text part here.
    pub(crate) parts: [Part<'a>; 1],
}

/// A text part.
#[derive(Debug, Serialize)]
pub(crate) struct Part<'a> {
    /// The text.
    pub(crate) text: &'a str,
}

impl<'a> EmbedContentRequest<'a> {
    /// The request for `text`.
    pub(crate) fn new(
        model: &'a str,
        text: &'a str,
        task_type: TaskType,
        output_dimensionality: usize,
    ) -> Self {
        Self {
            model,
            content: Content {
                parts: [Part { text }],
            },
            task_type,
            output_dimensionality,
        }
    }
}

/// `batchEmbedContents` response: one embedding per request, in order.
#[derive(Debug, Deserialize)]
pub(crate) struct BatchEmbedResponse {
    /// The embeddings.
    pub(crate) embeddings: Vec<ContentEmbedding>,
}

/// One embedding.
#[derive(Debug, Deserialize)]
pub(crate) struct ContentEmbedding {
    /// The components (not normalised unless the full 3072 were asked for).
    pub(crate) values: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_has_gemini_documented_shape() {
        let body = BatchEmbedRequest {
            requests: vec![EmbedContentRequest::new(
                "models/gemini-embedding-001",
                "hello",
                TaskType::RetrievalDocument,
                768,
            )],
        };
        assert_eq!(
            serde_json::to_value(&body).expect("ser"),
            serde_json::json!({"requests": [{
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "hello"}]},
                "taskType": "RETRIEVAL_DOCUMENT",
                "outputDimensionality": 768
            }]})
        );
    }

    #[test]
    fn a_response_decodes_and_ignores_extra_fields() {
        let response: BatchEmbedResponse = serde_json::from_value(serde_json::json!({
            "embeddings": [{"values": [0.5, -0.25]}, {"values": [1]}],
            "usageMetadata": {"promptTokenCount": 3}
        }))
        .expect("decode");
        assert_eq!(response.embeddings.len(), 2);
        assert_eq!(response.embeddings[0].values, vec![0.5, -0.25]);
        assert_eq!(response.embeddings[1].values, vec![1.0]);
    }
}
