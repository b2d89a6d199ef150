use serde::{Deserialize, Serialize};

/// Why a vector cannot be an embedding, or two cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbeddingError {
    /// No components.
    #[error("embedding is empty")]
    Empty,
    /// A NaN or infinite component.
    #[error("embedding has a non-finite component at index {0}")]
    NonFinite(usize),
    /// Two embeddings of different dimensions were compared or stored together.
    #[error("embedding dimension mismatch: expected {expected}, got {actual}")]
    DimensionMismatch {
        /// The dimension required.
        expected: usize,
        /// The dimension given.
        actual: usize,
    },
}

/// A dense text embedding: finite `f32` components, never empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f32>", into = "Vec<f32>")]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Wraps a vector.
    ///
    /// # Errors
    /// [`EmbeddingError::Empty`] or [`EmbeddingError::NonFinite`].
    pub fn new(values: Vec<f32>) -> Result<Self, EmbeddingError> {
        if values.is_empty() {
            return Err(EmbeddingError::Empty);
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(EmbeddingError::NonFinite(i));
        }
        Ok(Self(values))
    }

    /// Number of components.
    #[must_use]
    pub fn dimension(&self) -> usize {
        self.0.len()
    }

    /// The components.
    #[must_use]
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// The components, by value.
    #[must_use]
    pub fn into_vec(self) -> Vec<f32> {
        self.0
    }

    /// Cosine similarity in −1..=1 (0 when either vector is all zeros), computed in
    /// `f64` for stability.
    ///
    /// # Errors
    /// [`EmbeddingError::DimensionMismatch`] when the dimensions differ.
    pub fn cosine_similarity(&self, other: &Self) -> Result<f64, EmbeddingError> {
        if self.0.len() != other.0.len() {
            return Err(EmbeddingError::DimensionMismatch {
                expected: self.0.len(),
                actual: other.0.len(),
            });
        }
        let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
        for (a, b) in self.0.iter().zip(&other.0) {
            let (a, b) = (f64::from(*a), f64::from(*b));
            dot += a * b;
            na += a * a;
            nb += b * b;
        }
        if na == 0.0 || nb == 0.0 {
            return Ok(0.0);
        }
        Ok((dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0))
    }

    /// Checks the dimension against a configured one.
    ///
    /// # Errors
    /// [`EmbeddingError::DimensionMismatch`].
    pub fn ensure_dimension(&self, expected: usize) -> Result<(), EmbeddingError> {
        if self.0.len() == expected {
            Ok(())
        } else {
            Err(EmbeddingError::DimensionMismatch {
                expected,
                actual: self.0.len(),
            })
        }
    }
}

impl TryFrom<Vec<f32>> for Embedding {
    type Error = EmbeddingError;

    fn try_from(values: Vec<f32>) -> Result<Self, Self::Error> {
        Self::new(values)
    }
}

impl From<Embedding> for Vec<f32> {
    fn from(e: Embedding) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn e(v: &[f32]) -> Embedding {
        Embedding::new(v.to_vec()).expect("valid")
    }

    #[test]
    fn rejects_empty_and_non_finite() {
        assert_eq!(Embedding::new(vec![]), Err(EmbeddingError::Empty));
        assert_eq!(
            Embedding::new(vec![1.0, f32::NAN]),
            Err(EmbeddingError::NonFinite(1))
        );
        assert!(serde_json::from_str::<Embedding>("[]").is_err());
    }

    #[test]
    fn cosine_of_known_vectors() {
        let sim = |a: &[f32], b: &[f32]| e(a).cosine_similarity(&e(b)).expect("same dim");
        assert!((sim(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(sim(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-12);
        assert!((sim(&[1.0, 0.0], &[-2.0, 0.0]) + 1.0).abs() < 1e-12);
        assert!((sim(&[1.0, 1.0], &[1.0, 0.0]) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(sim(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn dimension_mismatch_is_an_error() {
        assert_eq!(
            e(&[1.0]).cosine_similarity(&e(&[1.0, 2.0])),
            Err(EmbeddingError::DimensionMismatch {
                expected: 1,
                actual: 2
            })
        );
        assert!(e(&[1.0, 2.0]).ensure_dimension(2).is_ok());
        assert!(e(&[1.0, 2.0]).ensure_dimension(768).is_err());
    }

    proptest! {
        #[test]
        fn cosine_is_symmetric_and_bounded(v in proptest::collection::vec(-10.0f32..10.0, 1..16), seed in -10.0f32..10.0) {
            let w: Vec<f32> = v.iter().map(|x| x * seed + 1.0).collect();
            let (a, b) = (e(&v), e(&w));
            let ab = a.cosine_similarity(&b).expect("dim");
            let ba = b.cosine_similarity(&a).expect("dim");
            prop_assert!((ab - ba).abs() < 1e-12);
            prop_assert!((-1.0..=1.0).contains(&ab));
        }
    }
}
