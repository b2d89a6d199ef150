//! Pattern scoring: which learned patterns to suggest for the current conversation.
//!
//! A [`LearnedPattern`] is retrieved by the similarity of its trigger to the current
//! context and ranked by how often it worked. The raw rate `successes / uses` is a
//! poor ranking key: a pattern used once and successful would be "100 %" and beat a
//! pattern with 90 successes in 100 uses. So the rate is smoothed with a Beta prior
//! ([`SuccessPrior`], pseudo-counts `α` successes and `β` failures):
//!
//! ```text
//! smoothed = (successes + α) / (uses + α + β)
//! ```
//!
//! With no evidence this is the prior mean `α / (α + β)`; as uses grow it converges
//! on the observed rate. The prior's *strength* `α + β` is how many calls of
//! evidence it takes before the observed rate dominates.
//!
//! Candidates are then scored by
//!
//! ```text
//! score = similarity × smoothed success rate
//! ```
//!
//! so a pattern must be both relevant to the situation and proven to work. Patterns
//! below [`RankingConfig::min_similarity`] are dropped before scoring (a perfect
//! pattern for a different situation is noise), as are those below
//! [`RankingConfig::min_success_rate`].

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Embedding, EmbeddingError, LearnedPattern};

/// Why a prior or ranking configuration is invalid.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum LearningError {
    /// The prior mean is not strictly between 0 and 1.
    #[error("prior mean {0} is outside the open interval (0, 1)")]
    InvalidPriorMean(f64),
    /// The prior strength is not a positive, finite number (or is so small that a
    /// pseudo-count underflows to zero).
    #[error("prior strength {0} is not a positive finite number")]
    InvalidPriorStrength(f64),
    /// The minimum similarity is outside −1..=1 (or NaN).
    #[error("minimum similarity {0} is outside -1..=1")]
    InvalidMinSimilarity(f64),
    /// The minimum success rate is outside 0..=1 (or NaN).
    #[error("minimum success rate {0} is outside 0..=1")]
    InvalidMinSuccessRate(f64),
}

/// A Beta(`α`, `β`) prior on a pattern's success rate: `α` pseudo-successes and `β`
/// pseudo-failures added to every pattern's counts.
///
/// Serialized as `{ "mean": …, "strength": … }` and validated on deserialization.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PriorRepr", into = "PriorRepr")]
pub struct SuccessPrior {
    alpha: f64,
    beta: f64,
}

/// The serialized form of [`SuccessPrior`].
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorRepr {
    mean: f64,
    strength: f64,
}

impl SuccessPrior {
    /// A prior with the given mean (the rate assumed for an untried pattern) and
    /// strength (how many calls of evidence it is worth): `α = mean × strength`,
    /// `β = (1 − mean) × strength`.
    ///
    /// # Errors
    /// [`LearningError::InvalidPriorMean`] unless `0 < mean < 1`;
    /// [`LearningError::InvalidPriorStrength`] unless `strength` is finite and
    /// positive (and large enough that neither pseudo-count underflows to 0).
    pub fn new(mean: f64, strength: f64) -> Result<Self, LearningError> {
        if !(mean > 0.0 && mean < 1.0) {
            return Err(LearningError::InvalidPriorMean(mean));
        }
        if !(strength.is_finite() && strength > 0.0) {
            return Err(LearningError::InvalidPriorStrength(strength));
        }
        let alpha = mean * strength;
        let beta = (1.0 - mean) * strength;
        if alpha > 0.0 && beta > 0.0 {
            Ok(Self { alpha, beta })
        } else {
            Err(LearningError::InvalidPriorStrength(strength))
        }
    }

    /// Pseudo-successes `α`.
    #[must_use]
    pub const fn alpha(self) -> f64 {
        self.alpha
    }

    /// Pseudo-failures `β`.
    #[must_use]
    pub const fn beta(self) -> f64 {
        self.beta
    }

    /// The prior mean `α / (α + β)`: the smoothed rate of a pattern never used.
    #[must_use]
    pub fn mean(self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// The strength `α + β`, in calls of evidence.
    #[must_use]
    pub fn strength(self) -> f64 {
        self.alpha + self.beta
    }
}

impl Default for SuccessPrior {
    /// Mean 0.5, strength 4 (`α = β = 2`): an untried pattern is assumed to work
    /// half the time, a pattern used once and successful scores 0.6 rather than 1.0,
    /// and after about a dozen uses the observed rate dominates. Weak enough that
    /// good patterns surface within a day of calls, strong enough that one lucky
    /// call does not put a pattern at the top. Organisations with a known base rate
    /// should set the mean to it.
    fn default() -> Self {
        Self {
            alpha: 2.0,
            beta: 2.0,
        }
    }
}

impl TryFrom<PriorRepr> for SuccessPrior {
    type Error = LearningError;

    fn try_from(repr: PriorRepr) -> Result<Self, Self::Error> {
        Self::new(repr.mean, repr.strength)
    }
}

impl From<SuccessPrior> for PriorRepr {
    fn from(prior: SuccessPrior) -> Self {
        Self {
            mean: prior.mean(),
            strength: prior.strength(),
        }
    }
}

/// The success rate smoothed by `prior`: `(s + α) / (n + α + β)`.
///
/// Strictly between 0 and 1 for any realistic prior (it is only rounded to 0 or 1
/// for pseudo-counts many orders of magnitude below the use count). `successes`
/// greater than `uses` (inconsistent data) is clamped to `uses`, so a pattern can
/// never look better than "every use succeeded".
#[must_use]
pub fn smoothed_success_rate(successes: u32, uses: u32, prior: &SuccessPrior) -> f64 {
    let s = f64::from(successes.min(uses));
    let n = f64::from(uses);
    (s + prior.alpha) / (n + prior.alpha + prior.beta)
}

/// Records the outcome of one call that used `pattern`: `uses` is incremented,
/// `successes` too when `success`, both saturating at `u32::MAX`.
///
/// `last_used_at` becomes `at`, unless it is already later: outcomes may be
/// recorded out of order (a call's outcome is often known only after later calls
/// started), and the field must not move backwards.
pub fn record_outcome(pattern: &mut LearnedPattern, success: bool, at: DateTime<Utc>) {
    pattern.uses = pattern.uses.saturating_add(1);
    if success {
        pattern.successes = pattern.successes.saturating_add(1);
    }
    pattern.last_used_at = Some(match pattern.last_used_at {
        Some(previous) if previous > at => previous,
        _ => at,
    });
}

/// How candidates are filtered and ranked.
///
/// Deserializes with defaults for missing fields; call [`RankingConfig::validate`]
/// after loading it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankingConfig {
    /// Candidates less similar than this (cosine, −1..=1) are dropped. Default 0.3:
    /// below that, text embeddings are usually about a different topic.
    pub min_similarity: f64,
    /// At most this many patterns are returned (default 5: more would crowd the
    /// prompt). 0 disables suggestions.
    pub max_results: usize,
    /// The prior used to smooth success rates.
    pub prior: SuccessPrior,
    /// Candidates whose smoothed success rate is below this are dropped (default 0:
    /// keep all, the score already penalises poor patterns).
    pub min_success_rate: f64,
}

impl Default for RankingConfig {
    fn default() -> Self {
        Self {
            min_similarity: 0.3,
            max_results: 5,
            prior: SuccessPrior::default(),
            min_success_rate: 0.0,
        }
    }
}

impl RankingConfig {
    /// Checks that the thresholds are in range (the prior is valid by construction).
    ///
    /// # Errors
    /// [`LearningError::InvalidMinSimilarity`] or
    /// [`LearningError::InvalidMinSuccessRate`].
    pub fn validate(&self) -> Result<(), LearningError> {
        if !(-1.0..=1.0).contains(&self.min_similarity) {
            return Err(LearningError::InvalidMinSimilarity(self.min_similarity));
        }
        if !(0.0..=1.0).contains(&self.min_success_rate) {
            return Err(LearningError::InvalidMinSuccessRate(self.min_success_rate));
        }
        Ok(())
    }
}

/// A pattern chosen for the current context, with the numbers behind its rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedPattern {
    /// The pattern.
    pub pattern: LearnedPattern,
    /// Similarity of its trigger to the current context, −1..=1.
    pub similarity: f64,
    /// Its smoothed success rate, 0..=1.
    pub success_rate: f64,
    /// `similarity × success_rate`; the ranking key.
    pub score: f64,
}

/// Ranks candidates retrieved by a vector store: `f64` is each pattern's similarity
/// to the current context.
///
/// Drops candidates whose similarity is NaN or infinite, below
/// `config.min_similarity`, or whose smoothed rate is below
/// `config.min_success_rate`; similarities slightly outside −1..=1 (rounding in
/// the store) are clamped. Sorts by score, then success rate (both descending), then
/// pattern id (ascending) so that equal candidates always come out in the same
/// order, and keeps at most `config.max_results`.
#[must_use]
pub fn rank_patterns(
    candidates: Vec<(LearnedPattern, f64)>,
    config: &RankingConfig,
) -> Vec<RankedPattern> {
    let mut ranked: Vec<RankedPattern> = candidates
        .into_iter()
        .filter(|(_, similarity)| similarity.is_finite())
        .map(|(pattern, similarity)| (pattern, similarity.clamp(-1.0, 1.0)))
        .filter(|(_, similarity)| *similarity >= config.min_similarity)
        .filter_map(|(pattern, similarity)| {
            let success_rate =
                smoothed_success_rate(pattern.successes, pattern.uses, &config.prior);
            if success_rate < config.min_success_rate {
                return None;
            }
            Some(RankedPattern {
                similarity,
                success_rate,
                // A dissimilar pattern scores 0 whatever its success, so a
                // negative similarity can never reverse the order.
                score: similarity.max(0.0) * success_rate,
                pattern,
            })
        })
        .collect();
    ranked.sort_by(compare_ranked);
    ranked.truncate(config.max_results);
    ranked
}

/// Like [`rank_patterns`], computing each pattern's similarity to `query` here
/// (cosine of the trigger embeddings). For stores without a vector index, such as
/// SQLite. Patterns without an embedding are skipped.
///
/// # Errors
/// [`EmbeddingError::DimensionMismatch`] when a pattern's embedding has a different
/// dimension from `query`: the store mixes embedding models, which needs a
/// re-embedding migration rather than silently worse suggestions.
pub fn rank_patterns_by_embedding(
    patterns: Vec<LearnedPattern>,
    query: &Embedding,
    config: &RankingConfig,
) -> Result<Vec<RankedPattern>, EmbeddingError> {
    let mut candidates = Vec::with_capacity(patterns.len());
    for pattern in patterns {
        let Some(embedding) = &pattern.embedding else {
            continue;
        };
        let similarity = query.cosine_similarity(embedding)?;
        candidates.push((pattern, similarity));
    }
    Ok(rank_patterns(candidates, config))
}

fn compare_ranked(a: &RankedPattern, b: &RankedPattern) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| b.success_rate.total_cmp(&a.success_rate))
        .then_with(|| a.pattern.id.cmp(&b.pattern.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrgId, PatternId, PatternKind};
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn pattern(successes: u32, uses: u32) -> LearnedPattern {
        LearnedPattern {
            id: PatternId::new(),
            org_id: OrgId::new(),
            kind: PatternKind::Resolution,
            trigger: "caller disputes a late fee".into(),
            response: "Offer a one-time waiver".into(),
            embedding: None,
            uses,
            successes,
            created_at: t0(),
            last_used_at: None,
        }
    }

    fn embedded(successes: u32, uses: u32, v: &[f32]) -> LearnedPattern {
        LearnedPattern {
            embedding: Some(Embedding::new(v.to_vec()).expect("valid")),
            ..pattern(successes, uses)
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn prior_is_validated() {
        assert!(SuccessPrior::new(0.5, 4.0).is_ok());
        for mean in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert!(matches!(
                SuccessPrior::new(mean, 4.0),
                Err(LearningError::InvalidPriorMean(_))
            ));
        }
        for strength in [0.0, -1.0, f64::INFINITY, f64::NAN, 5e-324] {
            assert!(matches!(
                SuccessPrior::new(0.5, strength),
                Err(LearningError::InvalidPriorStrength(_))
            ));
        }
        let p = SuccessPrior::new(0.25, 8.0).expect("valid");
        assert!(close(p.alpha(), 2.0) && close(p.beta(), 6.0));
        assert!(close(p.mean(), 0.25) && close(p.strength(), 8.0));
        assert_eq!(
            SuccessPrior::default(),
            SuccessPrior::new(0.5, 4.0).expect("valid")
        );
    }

    #[test]
    fn prior_pulls_a_single_success_toward_the_mean() {
        let prior = SuccessPrior::default();
        let one_of_one = smoothed_success_rate(1, 1, &prior);
        assert!(close(one_of_one, 0.6));
        assert!(one_of_one < 1.0 && one_of_one > prior.mean());
        let zero_of_one = smoothed_success_rate(0, 1, &prior);
        assert!(close(zero_of_one, 0.4));
        // No evidence at all: exactly the prior mean.
        let skewed = SuccessPrior::new(0.2, 10.0).expect("valid");
        assert!(close(smoothed_success_rate(0, 0, &skewed), 0.2));
        // A proven pattern beats a lucky one.
        assert!(smoothed_success_rate(90, 100, &prior) > one_of_one);
    }

    #[test]
    fn many_uses_converge_on_the_observed_rate() {
        let prior = SuccessPrior::new(0.5, 20.0).expect("valid");
        let rate = smoothed_success_rate(80_000, 100_000, &prior);
        assert!((rate - 0.8).abs() < 1e-3, "{rate}");
        let rate = smoothed_success_rate(u32::MAX / 10, u32::MAX, &prior);
        assert!((rate - 0.1).abs() < 1e-6, "{rate}");
    }

    #[test]
    fn successes_above_uses_are_clamped() {
        let prior = SuccessPrior::default();
        assert_eq!(
            smoothed_success_rate(50, 10, &prior),
            smoothed_success_rate(10, 10, &prior)
        );
        assert!(smoothed_success_rate(u32::MAX, 0, &prior) < 1.0);
    }

    #[test]
    fn record_outcome_counts_and_never_moves_time_backwards() {
        let mut p = pattern(0, 0);
        record_outcome(&mut p, true, t0());
        record_outcome(&mut p, false, t0() + Duration::minutes(5));
        assert_eq!((p.successes, p.uses), (1, 2));
        assert_eq!(p.last_used_at, Some(t0() + Duration::minutes(5)));
        // A late-arriving outcome of an earlier call.
        record_outcome(&mut p, true, t0() - Duration::hours(1));
        assert_eq!((p.successes, p.uses), (2, 3));
        assert_eq!(p.last_used_at, Some(t0() + Duration::minutes(5)));

        let mut full = pattern(u32::MAX, u32::MAX);
        record_outcome(&mut full, true, t0());
        assert_eq!((full.successes, full.uses), (u32::MAX, u32::MAX));
    }

    #[test]
    fn ranks_by_similarity_times_smoothed_rate() {
        let config = RankingConfig::default();
        let proven = pattern(90, 100); // rate 92/104 ≈ 0.885
        let lucky = pattern(1, 1); // rate 0.6
        let poor = pattern(1, 20); // rate 3/24 = 0.125
        let ranked = rank_patterns(
            vec![
                (poor.clone(), 0.95),
                (lucky.clone(), 0.9),
                (proven.clone(), 0.7),
            ],
            &config,
        );
        let ids: Vec<_> = ranked.iter().map(|r| r.pattern.id).collect();
        assert_eq!(ids, vec![proven.id, lucky.id, poor.id]);
        let top = &ranked[0];
        assert!(close(top.success_rate, 92.0 / 104.0));
        assert!(close(top.score, 0.7 * 92.0 / 104.0));
        assert!(close(top.similarity, 0.7));
    }

    #[test]
    fn ties_break_on_success_rate_then_id() {
        let config = RankingConfig::default();
        // Same score 0.375 (exact in binary): 0.5 × 0.75 and 0.75 × 0.5.
        let high_rate = pattern(4, 4); // 6/8
        let low_rate = pattern(0, 0); // 2/4
        let ranked = rank_patterns(vec![(low_rate, 0.75), (high_rate.clone(), 0.5)], &config);
        assert_eq!(ranked[0].score, ranked[1].score);
        assert_eq!(ranked[0].pattern.id, high_rate.id);

        // Fully equal candidates come out in id order, whatever the input order.
        let a = pattern(3, 4);
        let b = pattern(3, 4);
        let (first, second) = if a.id < b.id { (&a, &b) } else { (&b, &a) };
        for input in [
            vec![(a.clone(), 0.8), (b.clone(), 0.8)],
            vec![(b.clone(), 0.8), (a.clone(), 0.8)],
        ] {
            let ids: Vec<_> = rank_patterns(input, &config)
                .into_iter()
                .map(|r| r.pattern.id)
                .collect();
            assert_eq!(ids, vec![first.id, second.id]);
        }
    }

    #[test]
    fn filters_on_similarity_and_success_rate() {
        let config = RankingConfig {
            min_similarity: 0.5,
            min_success_rate: 0.3,
            ..RankingConfig::default()
        };
        let kept = pattern(5, 5);
        let ranked = rank_patterns(
            vec![
                (pattern(5, 5), 0.49),
                (pattern(5, 5), f64::NAN),
                (pattern(5, 5), f64::NEG_INFINITY),
                (pattern(0, 20), 0.99), // rate 2/24
                (kept.clone(), 0.5),
            ],
            &config,
        );
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].pattern.id, kept.id);
    }

    #[test]
    fn truncates_and_clamps() {
        let config = RankingConfig {
            max_results: 2,
            ..RankingConfig::default()
        };
        let candidates: Vec<_> = (0..10).map(|i| (pattern(i, 10), 0.8)).collect();
        let ranked = rank_patterns(candidates.clone(), &config);
        assert_eq!(ranked.len(), 2);
        assert_eq!(ranked[0].pattern.successes, 9);
        assert_eq!(ranked[1].pattern.successes, 8);

        let none = RankingConfig {
            max_results: 0,
            ..RankingConfig::default()
        };
        assert!(rank_patterns(candidates, &none).is_empty());

        let ranked = rank_patterns(vec![(pattern(1, 1), 1.000_001)], &config);
        assert_eq!(ranked[0].similarity, 1.0);
    }

    #[test]
    fn ranks_by_embedding_and_skips_missing_ones() {
        let config = RankingConfig::default();
        let query = Embedding::new(vec![1.0, 0.0]).expect("valid");
        let same = embedded(5, 10, &[2.0, 0.0]);
        let diagonal = embedded(10, 10, &[1.0, 1.0]);
        let orthogonal = embedded(10, 10, &[0.0, 1.0]);
        let ranked = rank_patterns_by_embedding(
            vec![orthogonal, pattern(10, 10), same.clone(), diagonal.clone()],
            &query,
            &config,
        )
        .expect("same dimension");
        let ids: Vec<_> = ranked.iter().map(|r| r.pattern.id).collect();
        // 1.0 × 7/14 = 0.5 vs 0.707 × 12/14 ≈ 0.606.
        assert_eq!(ids, vec![diagonal.id, same.id]);
        assert!(close(ranked[1].similarity, 1.0));
    }

    #[test]
    fn embedding_dimension_mismatch_is_an_error() {
        let query = Embedding::new(vec![1.0, 0.0]).expect("valid");
        let result = rank_patterns_by_embedding(
            vec![embedded(1, 1, &[1.0, 0.0, 0.0])],
            &query,
            &RankingConfig::default(),
        );
        assert_eq!(
            result,
            Err(EmbeddingError::DimensionMismatch {
                expected: 2,
                actual: 3
            })
        );
    }

    #[test]
    fn config_validates_and_round_trips() {
        assert_eq!(RankingConfig::default().validate(), Ok(()));
        let bad = RankingConfig {
            min_similarity: 1.5,
            ..RankingConfig::default()
        };
        assert_eq!(
            bad.validate(),
            Err(LearningError::InvalidMinSimilarity(1.5))
        );
        let bad = RankingConfig {
            min_success_rate: f64::NAN,
            ..RankingConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(LearningError::InvalidMinSuccessRate(_))
        ));

        let json = serde_json::to_string(&RankingConfig::default()).expect("ser");
        assert!(
            json.contains(r#""prior":{"mean":0.5,"strength":4.0}"#),
            "{json}"
        );
        let back: RankingConfig = serde_json::from_str(&json).expect("de");
        assert_eq!(back, RankingConfig::default());
        let partial: RankingConfig =
            serde_json::from_str(r#"{"max_results":3,"prior":{"mean":0.7,"strength":10}}"#)
                .expect("de");
        assert_eq!(partial.max_results, 3);
        assert!(close(partial.prior.mean(), 0.7));
        assert!(
            serde_json::from_str::<RankingConfig>(r#"{"prior":{"mean":1.0,"strength":4}}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<RankingConfig>(r#"{"max_result":3}"#).is_err());
    }

    fn prior_strategy() -> impl Strategy<Value = SuccessPrior> {
        (0.01f64..0.99, 0.1f64..1000.0)
            .prop_map(|(mean, strength)| SuccessPrior::new(mean, strength).expect("valid"))
    }

    proptest! {
        #[test]
        fn smoothed_rate_is_strictly_inside_the_unit_interval(
            successes in any::<u32>(),
            uses in any::<u32>(),
            prior in prior_strategy(),
        ) {
            let rate = smoothed_success_rate(successes, uses, &prior);
            prop_assert!(rate > 0.0 && rate < 1.0, "{rate}");
        }

        #[test]
        fn smoothed_rate_is_monotone_in_successes(
            uses in 0u32..10_000,
            a in 0u32..12_000,
            b in 0u32..12_000,
            prior in prior_strategy(),
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            let r_lo = smoothed_success_rate(lo, uses, &prior);
            let r_hi = smoothed_success_rate(hi, uses, &prior);
            prop_assert!(r_lo <= r_hi);
            if hi <= uses && lo < hi {
                prop_assert!(r_lo < r_hi);
            }
        }

        #[test]
        fn ranking_is_sorted_filtered_and_bounded(
            specs in proptest::collection::vec((0u32..50, 0u32..50, -1.5f64..1.5), 0..30),
            max_results in 0usize..10,
            min_similarity in -1.0f64..1.0,
        ) {
            let config = RankingConfig { max_results, min_similarity, ..RankingConfig::default() };
            let candidates: Vec<_> = specs
                .into_iter()
                .map(|(s, n, sim)| (pattern(s, n), sim))
                .collect();
            let ranked = rank_patterns(candidates, &config);
            prop_assert!(ranked.len() <= max_results);
            for r in &ranked {
                prop_assert!(r.similarity >= min_similarity && r.similarity <= 1.0);
                prop_assert!((0.0..=1.0).contains(&r.success_rate));
            }
            for pair in ranked.windows(2) {
                prop_assert!(compare_ranked(&pair[0], &pair[1]) != Ordering::Greater);
                prop_assert!(pair[0].score >= pair[1].score);
            }
        }
    }
}
