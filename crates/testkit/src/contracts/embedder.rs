//! `Embedder` contract: one normalised vector of the right dimension per
//! input, in order, deterministic, batches beyond the provider's limit,
//! wrong dimensions refused, provider failures.

use std::sync::Arc;

use async_trait::async_trait;
use iace_domain::ports::{Embedder, ProviderError};

use super::provider_failure::{self, Failure};

/// Makes embedders whose provider behaves as asked; `None` skips the case.
#[async_trait]
pub trait EmbedderFixture: Send + Sync {
    /// An embedder whose provider answers deterministic vectors per text.
    async fn embedding(&self) -> Arc<dyn Embedder>;
    /// The provider answers vectors of another dimension than configured.
    async fn wrong_dimension(&self) -> Option<Arc<dyn Embedder>>;
    /// The provider fails this way.
    async fn failing(&self, failure: Failure) -> Option<Arc<dyn Embedder>>;
}

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("caller {i} asked about the invoice"))
        .collect()
}

/// Runs every case.
pub async fn run<F: EmbedderFixture>(fixture: &F) {
    super::announce("embedder: one unit vector of the dimension per text, in order");
    let embedder = fixture.embedding().await;
    let dimension = embedder.dimension();
    assert!(dimension > 0);
    let input = vec![
        "I want to cancel my subscription".to_owned(),
        "What time do you open?".to_owned(),
        "I want to cancel my subscription".to_owned(),
    ];
    let out = embedder.embed(&input).await.expect("embed");
    assert_eq!(out.len(), 3);
    for embedding in &out {
        assert_eq!(embedding.dimension(), dimension);
        let norm: f32 = embedding
            .as_slice()
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "normalised: {norm}");
    }
    assert_eq!(out[0], out[2], "same text, same vector");
    assert_ne!(out[0], out[1]);
    let alone = embedder.embed(&input[1..2]).await.expect("embed");
    assert_eq!(
        alone[0], out[1],
        "a text's vector does not depend on its batch"
    );

    super::announce("embedder: no input, no request");
    assert!(embedder.embed(&[]).await.expect("embed").is_empty());

    super::announce("embedder: more texts than one provider batch");
    let many = texts(250);
    let out = embedder.embed(&many).await.expect("embed");
    assert_eq!(out.len(), 250);
    let last = embedder.embed(&many[249..]).await.expect("embed");
    assert_eq!(out[249], last[0], "order kept across batches");

    if let Some(embedder) = fixture.wrong_dimension().await {
        super::announce("embedder: a wrong dimension is refused");
        let err = embedder
            .embed(&texts(2))
            .await
            .expect_err("wrong dimension");
        assert!(
            matches!(err, ProviderError::InvalidResponse { .. }),
            "{err:?}"
        );
    }

    for failure in provider_failure::ALL {
        let Some(embedder) = fixture.failing(failure).await else {
            continue;
        };
        let case = format!("embedder: {failure:?}");
        super::announce(&case);
        let err = embedder.embed(&texts(2)).await.expect_err("an error");
        provider_failure::assert_maps(&case, failure, &err);
    }
}
