//! A hashing embedder: text to a fixed-dimension vector with no model and no
//! network (the "hashing trick").
//!
//! The text is lower-cased and split on every character that is not
//! alphanumeric. Each token, and each pair of adjacent tokens, is hashed with
//! 64-bit FNV-1a: the hash picks a bucket (`hash % dimension`) and its top bit
//! a sign (±1), and the feature adds its sign to that bucket. The vector is then
//! L2-normalised, so cosine similarity is a dot product and texts sharing words
//! (and word order) score higher than texts that share none.
//!
//! It knows nothing of synonyms or meaning: "refund" and "money back" are
//! unrelated to it. It is the embedded default so that retrieval works on a
//! laptop and in tests; a model-backed embedder replaces it when configured.
//!
//! The hash is fixed here forever (FNV-1a, not std's `DefaultHasher`, whose
//! output may change between Rust releases): stored embeddings stay comparable
//! with new ones across upgrades.

use async_trait::async_trait;
use iace_domain::Embedding;
use iace_domain::ports::{Embedder, ProviderError};

const PROVIDER: &str = "local";
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An [`Embedder`] that hashes words and word pairs into `dimension` buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingEmbedder {
    dimension: usize,
}

impl HashingEmbedder {
    /// An embedder producing vectors of `dimension` components (at least 1:
    /// a dimension of 0 is raised to 1, since an embedding cannot be empty).
    #[must_use]
    pub fn new(dimension: usize) -> Self {
        Self {
            dimension: dimension.max(1),
        }
    }

    /// The embedding of one text: unit length, never all zeros. A text without
    /// any alphanumeric character gets the first basis vector.
    #[must_use]
    pub fn embed_text(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0.0f32; self.dimension];
        let lower = text.to_lowercase();
        let tokens: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .collect();
        for token in &tokens {
            self.add_feature(&mut vector, &[b"w:", token.as_bytes()]);
        }
        for pair in tokens.windows(2) {
            self.add_feature(
                &mut vector,
                &[b"b:", pair[0].as_bytes(), b" ", pair[1].as_bytes()],
            );
        }
        let norm = vector
            .iter()
            .map(|v| f64::from(*v) * f64::from(*v))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            for v in &mut vector {
                // Narrowing back to f32 is the point: components are stored as f32.
                #[allow(clippy::cast_possible_truncation)]
                let scaled = (f64::from(*v) / norm) as f32;
                *v = scaled;
            }
        } else {
            // No tokens, or every feature cancelled out: a fixed unit vector, so
            // the embedding is valid and its cosine with anything is defined.
            vector.fill(0.0);
            vector[0] = 1.0;
        }
        vector
    }

    /// Adds ±1 to the bucket the feature (the concatenation of `parts`) hashes to.
    fn add_feature(&self, vector: &mut [f32], parts: &[&[u8]]) {
        let hash = fnv1a(parts);
        // `dimension` fits in u64 and the remainder is below it, so both
        // conversions are lossless.
        let bucket = usize::try_from(hash % self.dimension as u64).unwrap_or(0);
        let sign = if hash >> 63 == 1 { -1.0 } else { 1.0 };
        vector[bucket] += sign;
    }
}

/// 64-bit FNV-1a over the concatenation of `parts`.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .flat_map(|part| part.iter())
        .fold(FNV_OFFSET_BASIS, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
        })
}

#[async_trait]
impl Embedder for HashingEmbedder {
    fn dimension(&self) -> usize {
        self.dimension
    }

    /// # Errors
    /// Never in practice: the vectors are finite and non-empty by construction;
    /// [`ProviderError::InvalidResponse`] if that ever failed.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Embedding>, ProviderError> {
        texts
            .iter()
            .map(|text| {
                Embedding::new(self.embed_text(text)).map_err(|e| ProviderError::InvalidResponse {
                    provider: PROVIDER,
                    source: Box::new(e),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embed(embedder: &HashingEmbedder, text: &str) -> Embedding {
        Embedding::new(embedder.embed_text(text)).expect("valid embedding")
    }

    fn similarity(embedder: &HashingEmbedder, a: &str, b: &str) -> f64 {
        embed(embedder, a)
            .cosine_similarity(&embed(embedder, b))
            .expect("same dimension")
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(&[b"foobar"]), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a(&[b"foo", b"bar"]), fnv1a(&[b"foobar"]));
    }

    #[tokio::test]
    async fn is_deterministic_and_honours_the_dimension() {
        let embedder = HashingEmbedder::new(64);
        let texts = vec![
            "The caller disputes a late fee".to_owned(),
            "The caller disputes a late fee".to_owned(),
        ];
        let out = embedder.embed(&texts).await.expect("embed");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], out[1]);
        assert_eq!(out[0].dimension(), 64);
        assert_eq!(embedder.dimension(), 64);
        assert_eq!(
            embed(&HashingEmbedder::new(64), "The caller disputes a late fee"),
            out[0],
            "a second embedder gives the same vector"
        );
        assert_eq!(HashingEmbedder::new(768).embed_text("hello").len(), 768);
        assert_eq!(HashingEmbedder::new(0).dimension(), 1);
    }

    #[test]
    fn vectors_are_unit_length() {
        let embedder = HashingEmbedder::new(128);
        for text in ["refund please", "a", "Ünïcödé wörds and 42 numbers"] {
            let norm: f64 = embedder
                .embed_text(text)
                .iter()
                .map(|v| f64::from(*v).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!((norm - 1.0).abs() < 1e-6, "{text}: {norm}");
        }
    }

    #[test]
    fn similar_sentences_are_closer_than_unrelated_ones() {
        let embedder = HashingEmbedder::new(256);
        let base = "the caller disputes a late fee on their invoice";
        let close = "caller disputes the late fee on the invoice";
        let far = "book a table for two tomorrow evening";
        let near = similarity(&embedder, base, close);
        let unrelated = similarity(&embedder, base, far);
        assert!(near > 0.5, "{near}");
        assert!(near > unrelated + 0.3, "{near} vs {unrelated}");
        assert!(
            (similarity(&embedder, "Late FEE!", "late fee") - 1.0).abs() < 1e-6,
            "case and punctuation are ignored"
        );
    }

    #[test]
    fn empty_text_gets_a_fixed_unit_vector() {
        let embedder = HashingEmbedder::new(8);
        let expected = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(embedder.embed_text(""), expected);
        assert_eq!(embedder.embed_text("  ?!  "), expected);
        assert!(Embedding::new(embedder.embed_text("")).is_ok());
    }
}
