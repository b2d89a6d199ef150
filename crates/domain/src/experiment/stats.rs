//! Statistics for conversion-rate experiments.
//!
//! - [`wilson_interval`]: the Wilson score interval for one proportion, which
//!   (unlike the textbook "Wald" interval) behaves well for small samples and
//!   rates near 0 or 1.
//! - [`two_proportion_z_test`]: the pooled two-proportion z-test, two-sided.
//! - [`normal_cdf`], [`normal_quantile`], [`erfc`]: the standard normal
//!   distribution, implemented here so the domain needs no numerics crate.
//! - [`analyze`]: all of the above applied to an experiment's per-arm counts,
//!   ending in a [`Decision`].
//!
//! The tests check the numbers against published tables (Newcombe 1998) and
//! against values computed independently with Python's `math.erfc` and
//! `statistics.NormalDist`.
//!
//! No correction for multiple comparisons is applied: with several treatments,
//! each is tested against the control at `alpha`. Operators running many arms
//! should lower `alpha` accordingly (e.g. Bonferroni: `alpha / treatments`).

use std::collections::HashMap;
use std::f64::consts::SQRT_2;

use serde::{Deserialize, Serialize};

use crate::{Experiment, ExperimentId, ExperimentMetric, VariantId};

use super::{ExperimentError, validate_variants};

/// Why an experiment could not be analysed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// The experiment's arms break a rule of [`super::validate_variants`].
    #[error("the experiment's variants are invalid, so its results cannot be analysed")]
    InvalidVariants(#[from] ExperimentError),
    /// A count reports more conversions than trials.
    #[error(
        "variant {variant_id} reports {conversions} conversions out of only {trials} trials; \
         conversions cannot exceed trials"
    )]
    ConversionsExceedTrials {
        /// The arm the counts belong to.
        variant_id: VariantId,
        /// Conversions reported.
        conversions: u64,
        /// Trials reported.
        trials: u64,
    },
    /// Counts were given for an arm the experiment does not have.
    #[error("counts were given for variant {variant_id}, which is not part of this experiment")]
    UnknownVariant {
        /// The unknown arm.
        variant_id: VariantId,
    },
    /// Two counts were given for the same arm.
    #[error("counts for variant {variant_id} were given more than once")]
    DuplicateCounts {
        /// The repeated arm.
        variant_id: VariantId,
    },
    /// [`AnalysisConfig::confidence`] is not strictly between 0 and 1.
    #[error("confidence level {confidence} must be strictly between 0 and 1 (e.g. 0.95)")]
    InvalidConfidence {
        /// The rejected value.
        confidence: f64,
    },
    /// [`AnalysisConfig::alpha`] is not strictly between 0 and 1.
    #[error("significance level (alpha) {alpha} must be strictly between 0 and 1 (e.g. 0.05)")]
    InvalidAlpha {
        /// The rejected value.
        alpha: f64,
    },
}

/// Observed outcomes of one arm: how many callers were exposed (`trials`) and
/// how many of them converted (by the experiment's [`ExperimentMetric`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VariantCounts {
    /// The arm.
    pub variant_id: VariantId,
    /// Callers exposed to the arm.
    pub trials: u64,
    /// Callers who converted; at most `trials`.
    pub conversions: u64,
}

impl VariantCounts {
    /// Counts for `variant_id`, checked.
    ///
    /// # Errors
    /// [`StatsError::ConversionsExceedTrials`] when `conversions > trials`.
    pub fn new(variant_id: VariantId, trials: u64, conversions: u64) -> Result<Self, StatsError> {
        let counts = Self {
            variant_id,
            trials,
            conversions,
        };
        counts.validate()?;
        Ok(counts)
    }

    /// Checks `conversions <= trials` (the fields are public, so counts built
    /// directly or deserialized may break it; [`analyze`] checks every count).
    ///
    /// # Errors
    /// [`StatsError::ConversionsExceedTrials`] when `conversions > trials`.
    pub fn validate(&self) -> Result<(), StatsError> {
        if self.conversions > self.trials {
            return Err(StatsError::ConversionsExceedTrials {
                variant_id: self.variant_id,
                conversions: self.conversions,
                trials: self.trials,
            });
        }
        Ok(())
    }
}

/// Settings for [`analyze`]. Missing fields deserialize to their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisConfig {
    /// Confidence level of the per-arm Wilson intervals, strictly between 0 and
    /// 1. Default 0.95.
    pub confidence: f64,
    /// Significance level of the z-tests against the control, strictly between
    /// 0 and 1: an arm is significant when its p-value is below it. Default 0.05.
    pub alpha: f64,
    /// Fewest trials every arm needs before a winner may be declared. Default 100.
    pub min_trials_per_variant: u64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            confidence: 0.95,
            alpha: 0.05,
            min_trials_per_variant: 100,
        }
    }
}

impl AnalysisConfig {
    /// Checks that `confidence` and `alpha` are strictly between 0 and 1.
    ///
    /// # Errors
    /// [`StatsError::InvalidConfidence`] or [`StatsError::InvalidAlpha`].
    pub fn validate(&self) -> Result<(), StatsError> {
        if !is_open_unit(self.confidence) {
            return Err(StatsError::InvalidConfidence {
                confidence: self.confidence,
            });
        }
        if !is_open_unit(self.alpha) {
            return Err(StatsError::InvalidAlpha { alpha: self.alpha });
        }
        Ok(())
    }
}

/// `0 < x < 1` (false for NaN).
fn is_open_unit(x: f64) -> bool {
    x > 0.0 && x < 1.0
}

/// Result of a two-proportion z-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZTest {
    /// The test statistic `(p̂_a − p̂_b) / SE`: positive when `a` converts better.
    pub z: f64,
    /// Two-sided p-value, in `[0, 1]`.
    pub p_value: f64,
}

/// The outcome of an experiment, as far as the data allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Some arm has fewer than [`AnalysisConfig::min_trials_per_variant`] trials.
    InsufficientData,
    /// Enough data, but no arm is significantly better than all it is compared with.
    NoSignificantDifference,
    /// This arm won (see [`analyze`] for the rule).
    Winner(VariantId),
}

/// One arm's line in an [`ExperimentReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantReport {
    /// The arm.
    pub variant_id: VariantId,
    /// The arm's name.
    pub name: String,
    /// Whether this arm is the control.
    pub is_control: bool,
    /// Callers exposed (0 when no counts were given for the arm).
    pub trials: u64,
    /// Callers who converted.
    pub conversions: u64,
    /// `conversions / trials`; `None` with 0 trials.
    pub rate: Option<f64>,
    /// Wilson score interval for the rate at [`AnalysisConfig::confidence`];
    /// `None` with 0 trials.
    pub interval: Option<(f64, f64)>,
    /// `rate − control rate`; `None` for the control or when a rate is undefined.
    pub absolute_lift: Option<f64>,
    /// `(rate − control rate) / control rate`; `None` for the control, when a rate
    /// is undefined, or when the control rate is 0.
    pub relative_lift: Option<f64>,
    /// Two-sided p-value of the z-test against the control; `None` for the
    /// control or when the test is undefined (see [`two_proportion_z_test`]).
    pub p_value: Option<f64>,
    /// Whether the arm differs from the control at [`AnalysisConfig::alpha`]
    /// (in either direction: read the sign of `absolute_lift`). Always `false`
    /// for the control.
    pub significant: bool,
}

/// The analysis of an experiment: one line per arm plus a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentReport {
    /// The experiment analysed.
    pub experiment_id: ExperimentId,
    /// What was counted as a conversion.
    pub metric: ExperimentMetric,
    /// The configuration used.
    pub config: AnalysisConfig,
    /// One line per arm, in the experiment's order.
    pub variants: Vec<VariantReport>,
    /// The verdict.
    pub decision: Decision,
}

/// The complementary error function, `erfc(x) = 1 − erf(x)`.
///
/// Chebyshev approximation from Numerical Recipes in C, 2nd ed., §6.2
/// (`erfcc`): fractional error below 1.2e-7 everywhere, including the far
/// tails (so small p-values keep their relative accuracy). `NaN` in gives
/// `NaN` out; `±∞` give 0 and 2.
#[must_use]
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * (-z * z + poly).exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

/// The standard normal cumulative distribution function `Φ(x) = P(Z ≤ x)`,
/// computed as `erfc(−x/√2) / 2` (absolute error below 1.2e-7; relative error
/// below 1.2e-7 in the lower tail).
#[must_use]
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / SQRT_2)
}

/// The inverse of [`normal_cdf`]: the `x` with `Φ(x) = p`.
///
/// Peter J. Acklam's rational approximation (2003), relative error below
/// 1.15e-9 over the whole open interval. `None` unless `0 < p < 1`.
#[must_use]
pub fn normal_quantile(p: f64) -> Option<f64> {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;

    if !is_open_unit(p) {
        return None;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    };
    Some(x)
}

/// The two-sided critical value for a confidence level: `Φ⁻¹(1 − (1 − c)/2)`,
/// e.g. 1.959964 for 0.95 and 2.575829 for 0.99. `None` unless `0 < c < 1`.
#[must_use]
pub fn z_for_confidence(confidence: f64) -> Option<f64> {
    if !is_open_unit(confidence) {
        return None;
    }
    normal_quantile(0.5 + confidence / 2.0)
}

/// `num / den` as `f64`. Counts below 2^53 convert exactly; beyond that the
/// relative rounding error is 2^-53, irrelevant for rates.
#[allow(clippy::cast_precision_loss)] // documented above: counts → rates
fn to_f64(n: u64) -> f64 {
    n as f64
}

/// The Wilson score interval `(lower, upper)` for `conversions` out of `trials`
/// with critical value `z` (use [`z_for_confidence`], e.g. 1.959964 for 95%).
///
/// Always within `[0, 1]` and containing `conversions / trials`. `None` when
/// `trials` is 0, `conversions > trials`, or `z` is negative or not finite.
#[must_use]
pub fn wilson_interval(conversions: u64, trials: u64, z: f64) -> Option<(f64, f64)> {
    if trials == 0 || conversions > trials || !z.is_finite() || z < 0.0 {
        return None;
    }
    let n = to_f64(trials);
    let p = to_f64(conversions) / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // Mathematically lower ≤ p ≤ upper within [0, 1]; the min/max/clamp only
    // absorb rounding (e.g. −1e-17 for 0 conversions).
    let lower = (centre - half).clamp(0.0, 1.0).min(p);
    let upper = (centre + half).clamp(0.0, 1.0).max(p);
    Some((lower, upper))
}

/// The pooled two-proportion z-test of `c_a / n_a` against `c_b / n_b`:
/// `z = (p̂_a − p̂_b) / √(p̂(1 − p̂)(1/n_a + 1/n_b))` with the pooled rate
/// `p̂ = (c_a + c_b) / (n_a + n_b)`, and the two-sided p-value `erfc(|z|/√2)`.
///
/// `None` when the test is undefined: a sample has 0 trials, conversions exceed
/// trials, or the pooled rate is 0 or 1 (no variance at all).
#[must_use]
pub fn two_proportion_z_test(c_a: u64, n_a: u64, c_b: u64, n_b: u64) -> Option<ZTest> {
    if n_a == 0 || n_b == 0 || c_a > n_a || c_b > n_b {
        return None;
    }
    let conversions = u128::from(c_a) + u128::from(c_b);
    let trials = u128::from(n_a) + u128::from(n_b);
    if conversions == 0 || conversions == trials {
        return None;
    }
    let (na, nb) = (to_f64(n_a), to_f64(n_b));
    let pooled = (to_f64(c_a) + to_f64(c_b)) / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if !(se.is_finite() && se > 0.0) {
        return None;
    }
    let z = (to_f64(c_a) / na - to_f64(c_b) / nb) / se;
    let p_value = erfc(z.abs() / SQRT_2).clamp(0.0, 1.0);
    Some(ZTest { z, p_value })
}

/// Analyses an experiment's counts.
///
/// Each arm gets its rate, a Wilson interval at `config.confidence` (critical
/// value from [`z_for_confidence`]), and — for treatments — the lift over the
/// control and the p-value of [`two_proportion_z_test`] against it. Arms with
/// no entry in `counts` count as 0 trials.
///
/// The [`Decision`] is:
/// - [`Decision::InsufficientData`] if any arm has fewer than
///   `config.min_trials_per_variant` trials;
/// - otherwise [`Decision::Winner`] of the treatment with the highest rate among
///   those that beat the control significantly (p < `alpha` and a higher rate;
///   ties go to the earlier arm);
/// - otherwise [`Decision::Winner`] of the control if it beats *every*
///   treatment significantly;
/// - otherwise [`Decision::NoSignificantDifference`].
///
/// # Errors
/// [`StatsError::InvalidConfidence`]/[`StatsError::InvalidAlpha`] for a bad
/// config, [`StatsError::InvalidVariants`] for invalid arms, and for the counts
/// [`StatsError::ConversionsExceedTrials`], [`StatsError::UnknownVariant`] or
/// [`StatsError::DuplicateCounts`].
pub fn analyze(
    experiment: &Experiment,
    counts: &[VariantCounts],
    config: &AnalysisConfig,
) -> Result<ExperimentReport, StatsError> {
    config.validate()?;
    validate_variants(&experiment.variants)?;
    let z_crit = z_for_confidence(config.confidence).ok_or(StatsError::InvalidConfidence {
        confidence: config.confidence,
    })?;

    let mut by_id: HashMap<VariantId, VariantCounts> = HashMap::with_capacity(counts.len());
    for c in counts {
        c.validate()?;
        if !experiment.variants.iter().any(|v| v.id == c.variant_id) {
            return Err(StatsError::UnknownVariant {
                variant_id: c.variant_id,
            });
        }
        if by_id.insert(c.variant_id, *c).is_some() {
            return Err(StatsError::DuplicateCounts {
                variant_id: c.variant_id,
            });
        }
    }
    let counts_of = |id: VariantId| by_id.get(&id).map_or((0, 0), |c| (c.trials, c.conversions));

    // Validation guarantees exactly one control.
    let Some(control) = experiment.variants.iter().find(|v| v.is_control) else {
        return Err(ExperimentError::NoControl.into());
    };
    let (control_trials, control_conversions) = counts_of(control.id);
    let control_rate = rate(control_conversions, control_trials);

    let variants: Vec<VariantReport> = experiment
        .variants
        .iter()
        .map(|v| {
            let (trials, conversions) = counts_of(v.id);
            let rate = rate(conversions, trials);
            let mut report = VariantReport {
                variant_id: v.id,
                name: v.name.clone(),
                is_control: v.is_control,
                trials,
                conversions,
                rate,
                interval: wilson_interval(conversions, trials, z_crit),
                absolute_lift: None,
                relative_lift: None,
                p_value: None,
                significant: false,
            };
            if !v.is_control {
                if let (Some(r), Some(rc)) = (rate, control_rate) {
                    report.absolute_lift = Some(r - rc);
                    report.relative_lift = (rc > 0.0).then(|| (r - rc) / rc);
                }
                report.p_value =
                    two_proportion_z_test(conversions, trials, control_conversions, control_trials)
                        .map(|t| t.p_value);
                report.significant = report.p_value.is_some_and(|p| p < config.alpha);
            }
            report
        })
        .collect();

    let decision = decide(&variants, control_rate, config.min_trials_per_variant);
    Ok(ExperimentReport {
        experiment_id: experiment.id,
        metric: experiment.metric,
        config: *config,
        variants,
        decision,
    })
}

/// `conversions / trials`, `None` for 0 trials.
fn rate(conversions: u64, trials: u64) -> Option<f64> {
    (trials > 0).then(|| to_f64(conversions) / to_f64(trials))
}

/// The decision rule documented on [`analyze`].
fn decide(variants: &[VariantReport], control_rate: Option<f64>, min_trials: u64) -> Decision {
    if variants.iter().any(|v| v.trials < min_trials) {
        return Decision::InsufficientData;
    }
    let Some(control_rate) = control_rate else {
        return Decision::NoSignificantDifference;
    };
    let treatments = || variants.iter().filter(|v| !v.is_control);

    let mut best: Option<(&VariantReport, f64)> = None;
    for v in treatments() {
        if let (true, Some(r)) = (v.significant, v.rate)
            && r > control_rate
            && best.is_none_or(|(_, best_rate)| r > best_rate)
        {
            best = Some((v, r));
        }
    }
    if let Some((winner, _)) = best {
        return Decision::Winner(winner.variant_id);
    }

    let control_beats_all =
        treatments().all(|v| v.significant && v.rate.is_some_and(|r| control_rate > r));
    match variants.iter().find(|v| v.is_control) {
        Some(control) if control_beats_all => Decision::Winner(control.variant_id),
        _ => Decision::NoSignificantDifference,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::test_support::{experiment, variant, variants_with_weights};
    use super::*;
    use crate::Variant;

    fn close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol,
            "expected {expected} ± {tol}, got {actual}"
        );
    }

    fn z95() -> f64 {
        z_for_confidence(0.95).expect("valid confidence")
    }

    #[test]
    fn erfc_matches_reference_values() {
        // Reference values from Python's math.erfc (correctly rounded libm).
        let cases = [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_266),
            (3.0, 2.209_049_699_858_544e-5),
            (5.0, 1.537_459_794_428_035e-12),
            (-1.0, 1.842_700_792_949_715),
        ];
        for (x, expected) in cases {
            let rel = (erfc(x) - expected).abs() / expected;
            assert!(rel < 1.2e-7, "erfc({x}) = {}, expected {expected}", erfc(x));
        }
        assert!(erfc(f64::INFINITY).abs() < f64::EPSILON);
        close(erfc(f64::NEG_INFINITY), 2.0, f64::EPSILON);
        assert!(erfc(f64::NAN).is_nan());
    }

    #[test]
    fn normal_cdf_matches_textbook_values() {
        // Φ values: standard normal tables; digits from Python's
        // 0.5 * math.erfc(-x / math.sqrt(2)).
        close(normal_cdf(0.0), 0.5, 1e-7);
        close(normal_cdf(1.959_964), 0.975, 1e-7);
        close(normal_cdf(1.0), 0.841_344_746, 1e-7);
        close(normal_cdf(-1.0), 1.0 - 0.841_344_746, 1e-7);
        // Lower tail: relative accuracy is kept.
        let tail = normal_cdf(-3.0);
        assert!(
            (tail - 0.001_349_898).abs() / 0.001_349_898 < 2e-7,
            "{tail}"
        );
    }

    #[test]
    fn normal_quantile_matches_reference_values() {
        // Python: statistics.NormalDist().inv_cdf(p).
        let cases = [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.995, 2.575_829_303_548_9),
            (0.9, 1.281_551_565_544_600_8),
            (0.01, -2.326_347_874_040_840_8),
            (1e-6, -4.753_424_308_822_899),
        ];
        for (p, expected) in cases {
            let x = normal_quantile(p).expect("0 < p < 1");
            close(x, expected, 1e-8 * expected.abs().max(1.0));
        }
        for bad in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert_eq!(normal_quantile(bad), None, "{bad}");
        }
    }

    #[test]
    fn critical_values_for_common_confidence_levels() {
        close(z95(), 1.959_964, 1e-6);
        close(z_for_confidence(0.99).expect("valid"), 2.575_829, 1e-6);
        close(z_for_confidence(0.90).expect("valid"), 1.644_854, 1e-6);
        assert_eq!(z_for_confidence(1.0), None);
        assert_eq!(z_for_confidence(0.0), None);
    }

    #[test]
    fn wilson_matches_newcombe_1998() {
        // Newcombe RG (1998), "Two-sided confidence intervals for the single
        // proportion: comparison of seven methods", Stat Med 17:857-872,
        // Table I, method 3 (Wilson score interval, no continuity correction),
        // 95%, to 4 d.p.
        let table = [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0000, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ];
        for (k, n, lo, hi) in table {
            let (l, u) = wilson_interval(k, n, z95()).expect("defined");
            close(l, lo, 5e-5);
            close(u, hi, 5e-5);
        }
        // With zero conversions the lower bound is exactly 0.
        assert_eq!(wilson_interval(0, 20, z95()).map(|i| i.0), Some(0.0));
    }

    #[test]
    fn wilson_is_undefined_without_data_or_with_bad_input() {
        assert_eq!(wilson_interval(0, 0, 1.96), None);
        assert_eq!(wilson_interval(5, 4, 1.96), None);
        assert_eq!(wilson_interval(1, 4, f64::NAN), None);
        assert_eq!(wilson_interval(1, 4, -1.0), None);
        assert_eq!(wilson_interval(1, 4, 0.0), Some((0.25, 0.25)));
        assert_eq!(wilson_interval(4, 4, 1.96).map(|i| i.1), Some(1.0));
    }

    #[test]
    fn z_test_worked_example() {
        // 200/1000 vs 250/1000, by hand:
        //   pooled p = 450/2000 = 0.225
        //   SE = sqrt(0.225 * 0.775 * (1/1000 + 1/1000)) = sqrt(0.00034875) = 0.0186748
        //   z = (0.20 - 0.25) / 0.0186748 = -2.677398
        //   two-sided p = erfc(2.677398 / sqrt 2) = 0.0074196
        // (checked with Python's math.erfc)
        let t = two_proportion_z_test(200, 1000, 250, 1000).expect("defined");
        close(t.z, -2.677_397_763, 1e-6);
        close(t.p_value, 0.007_419_649, 1e-8);
        let swapped = two_proportion_z_test(250, 1000, 200, 1000).expect("defined");
        close(swapped.z, 2.677_397_763, 1e-6);
    }

    #[test]
    fn z_test_is_undefined_without_variance_or_data() {
        assert_eq!(two_proportion_z_test(0, 0, 1, 10), None);
        assert_eq!(two_proportion_z_test(1, 10, 0, 0), None);
        assert_eq!(two_proportion_z_test(0, 10, 0, 20), None, "pooled rate 0");
        assert_eq!(two_proportion_z_test(10, 10, 20, 20), None, "pooled rate 1");
        assert_eq!(two_proportion_z_test(11, 10, 1, 20), None, "c > n");
        let equal = two_proportion_z_test(5, 10, 10, 20).expect("defined");
        assert!(equal.z.abs() < 1e-12);
        close(equal.p_value, 1.0, 2e-7);
        let huge = two_proportion_z_test(u64::MAX / 2, u64::MAX, 1, u64::MAX).expect("defined");
        assert!(huge.p_value < 1e-12);
    }

    #[test]
    fn counts_reject_more_conversions_than_trials() {
        let id = VariantId::new();
        assert!(VariantCounts::new(id, 10, 10).is_ok());
        let err = VariantCounts::new(id, 10, 11).expect_err("11 > 10");
        assert_eq!(
            err,
            StatsError::ConversionsExceedTrials {
                variant_id: id,
                conversions: 11,
                trials: 10
            }
        );
        assert!(
            err.to_string()
                .contains("11 conversions out of only 10 trials")
        );
    }

    #[test]
    fn config_defaults_and_serde() {
        let d = AnalysisConfig::default();
        assert_eq!(
            (d.confidence, d.alpha, d.min_trials_per_variant),
            (0.95, 0.05, 100)
        );
        let partial: AnalysisConfig =
            serde_json::from_str(r#"{"alpha":0.01}"#).expect("deserialize");
        assert_eq!(
            partial,
            AnalysisConfig {
                alpha: 0.01,
                ..AnalysisConfig::default()
            }
        );
        let json = serde_json::to_string(&d).expect("serialize");
        assert_eq!(
            serde_json::from_str::<AnalysisConfig>(&json).expect("round trip"),
            d
        );
    }

    fn arms3() -> Vec<Variant> {
        vec![
            variant(1, "control", 1, true),
            variant(2, "friendly", 1, false),
            variant(3, "formal", 1, false),
        ]
    }

    fn counts(arms: &[Variant], data: &[(u64, u64)]) -> Vec<VariantCounts> {
        arms.iter()
            .zip(data)
            .map(|(v, &(c, n))| VariantCounts::new(v.id, n, c).expect("valid"))
            .collect()
    }

    fn run(data: &[(u64, u64)]) -> ExperimentReport {
        let exp = experiment("s", arms3());
        analyze(
            &exp,
            &counts(&exp.variants, data),
            &AnalysisConfig::default(),
        )
        .expect("analyze")
    }

    #[test]
    fn best_significant_treatment_wins() {
        let arms = arms3();
        // Both treatments beat 200/1000 significantly; "formal" has the higher rate.
        let report = run(&[(200, 1000), (250, 1000), (260, 1000)]);
        assert_eq!(report.decision, Decision::Winner(arms[2].id));

        let control = &report.variants[0];
        assert!(control.is_control && !control.significant);
        assert_eq!((control.p_value, control.absolute_lift), (None, None));

        let friendly = &report.variants[1];
        assert_eq!(friendly.name, "friendly");
        close(friendly.rate.expect("rate"), 0.25, 1e-12);
        close(friendly.absolute_lift.expect("lift"), 0.05, 1e-12);
        close(friendly.relative_lift.expect("lift"), 0.25, 1e-12);
        close(friendly.p_value.expect("p"), 0.007_419_649, 1e-8);
        assert!(friendly.significant);
        let (lo, hi) = friendly.interval.expect("interval");
        assert!(lo < 0.25 && 0.25 < hi);
    }

    #[test]
    fn significant_treatment_wins_over_a_better_but_uncertain_one() {
        let arms = arms3();
        // "formal" has a higher rate but too little evidence; "friendly" is significant.
        // 27/100 vs 200/1000: z = 1.649, p = 0.0991 (Python); 250/1000: p = 0.0074.
        let report = run(&[(200, 1000), (250, 1000), (27, 100)]);
        assert!(!report.variants[2].significant);
        assert_eq!(report.decision, Decision::Winner(arms[1].id));
    }

    #[test]
    fn control_wins_only_if_it_beats_every_treatment() {
        let arms = arms3();
        let report = run(&[(250, 1000), (200, 1000), (195, 1000)]);
        assert!(report.variants[1].significant && report.variants[2].significant);
        assert!(report.variants[1].absolute_lift.expect("lift") < 0.0);
        assert_eq!(report.decision, Decision::Winner(arms[0].id));

        // One treatment is not significantly worse: nobody wins.
        let report = run(&[(250, 1000), (200, 1000), (240, 1000)]);
        assert_eq!(report.decision, Decision::NoSignificantDifference);
    }

    #[test]
    fn no_difference_is_reported_as_such() {
        let report = run(&[(200, 1000), (205, 1000), (198, 1000)]);
        assert_eq!(report.decision, Decision::NoSignificantDifference);
        assert!(report.variants.iter().all(|v| !v.significant));
    }

    #[test]
    fn too_few_trials_is_insufficient_data() {
        // A huge effect, but one arm has 99 < 100 trials.
        let report = run(&[(10, 1000), (500, 1000), (50, 99)]);
        assert_eq!(report.decision, Decision::InsufficientData);
        assert!(
            report.variants[1].significant,
            "per-arm stats are still reported"
        );
    }

    #[test]
    fn arms_without_counts_have_zero_trials() {
        let exp = experiment("s", arms3());
        let partial = counts(&exp.variants[..2], &[(200, 1000), (250, 1000)]);
        let report = analyze(&exp, &partial, &AnalysisConfig::default()).expect("analyze");
        let formal = &report.variants[2];
        assert_eq!((formal.trials, formal.conversions), (0, 0));
        assert_eq!(
            (formal.rate, formal.interval, formal.p_value),
            (None, None, None)
        );
        assert_eq!(report.decision, Decision::InsufficientData);

        let lenient = AnalysisConfig {
            min_trials_per_variant: 0,
            ..AnalysisConfig::default()
        };
        let report = analyze(&exp, &partial, &lenient).expect("analyze");
        assert_eq!(report.decision, Decision::Winner(exp.variants[1].id));
        let report = analyze(&exp, &[], &lenient).expect("analyze");
        assert_eq!(report.decision, Decision::NoSignificantDifference);
    }

    #[test]
    fn relative_lift_is_undefined_for_a_zero_control_rate() {
        let exp = experiment("s", variants_with_weights(&[1, 1]));
        let data = counts(&exp.variants, &[(0, 1000), (30, 1000)]);
        let report = analyze(&exp, &data, &AnalysisConfig::default()).expect("analyze");
        let t = &report.variants[1];
        close(t.absolute_lift.expect("lift"), 0.03, 1e-12);
        assert_eq!(t.relative_lift, None);
        assert_eq!(report.decision, Decision::Winner(t.variant_id));
    }

    #[test]
    fn bad_counts_are_rejected() {
        let exp = experiment("s", arms3());
        let cfg = AnalysisConfig::default();
        let stranger = VariantId::new();
        let unknown = [VariantCounts::new(stranger, 10, 1).expect("valid")];
        assert_eq!(
            analyze(&exp, &unknown, &cfg),
            Err(StatsError::UnknownVariant {
                variant_id: stranger
            })
        );

        let id = exp.variants[1].id;
        let twice = [
            VariantCounts::new(id, 10, 1).expect("valid"),
            VariantCounts::new(id, 20, 2).expect("valid"),
        ];
        assert_eq!(
            analyze(&exp, &twice, &cfg),
            Err(StatsError::DuplicateCounts { variant_id: id })
        );

        let impossible = [VariantCounts {
            variant_id: id,
            trials: 5,
            conversions: 6,
        }];
        assert!(matches!(
            analyze(&exp, &impossible, &cfg),
            Err(StatsError::ConversionsExceedTrials { .. })
        ));
    }

    #[test]
    fn bad_config_and_bad_variants_are_rejected() {
        let exp = experiment("s", arms3());
        for confidence in [0.0, 1.0, f64::NAN, 95.0] {
            let cfg = AnalysisConfig {
                confidence,
                ..AnalysisConfig::default()
            };
            assert!(matches!(
                analyze(&exp, &[], &cfg),
                Err(StatsError::InvalidConfidence { .. })
            ));
        }
        let cfg = AnalysisConfig {
            alpha: 5.0,
            ..AnalysisConfig::default()
        };
        let err = analyze(&exp, &[], &cfg).expect_err("alpha 5");
        assert_eq!(err, StatsError::InvalidAlpha { alpha: 5.0 });

        let broken = experiment("s", vec![variant(1, "only", 1, true)]);
        let err = analyze(&broken, &[], &AnalysisConfig::default()).expect_err("one arm");
        assert_eq!(
            err,
            StatsError::InvalidVariants(ExperimentError::TooFewVariants { count: 1 })
        );
        assert!(
            !err.to_string().contains("at least 2"),
            "source not repeated"
        );
    }

    #[test]
    fn report_serializes_with_a_readable_decision() {
        let report = run(&[(200, 1000), (250, 1000), (260, 1000)]);
        let json = serde_json::to_value(&report).expect("serialize");
        assert_eq!(
            json["decision"]["winner"],
            serde_json::json!(report.variants[2].variant_id.to_string())
        );
        assert_eq!(
            serde_json::to_value(Decision::InsufficientData).expect("serialize"),
            serde_json::json!("insufficient_data")
        );
        let back: ExperimentReport = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, report);
    }

    proptest! {
        #[test]
        fn wilson_is_within_unit_and_contains_the_rate(
            n in 1u64..1_000_000,
            frac in 0.0f64..=1.0,
            confidence in 0.5f64..0.9999,
        ) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // frac ∈ [0, 1]
            let k = ((n as f64) * frac).floor() as u64;
            let k = k.min(n);
            let z = z_for_confidence(confidence).expect("valid");
            let (lo, hi) = wilson_interval(k, n, z).expect("defined");
            let p = k as f64 / n as f64;
            prop_assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
            prop_assert!(lo <= p && p <= hi, "{lo} <= {p} <= {hi}");
        }

        #[test]
        fn wilson_narrows_as_n_grows(k in 0u64..50, extra in 1u64..50, m in 1u64..1000) {
            // Same rate k/n, sample sizes m·n < 2m·n.
            let n = k + extra;
            let (lo1, hi1) = wilson_interval(k * m, n * m, 1.96).expect("defined");
            let (lo2, hi2) = wilson_interval(2 * k * m, 2 * n * m, 1.96).expect("defined");
            prop_assert!(hi2 - lo2 < hi1 - lo1, "{} !< {}", hi2 - lo2, hi1 - lo1);
        }

        #[test]
        fn p_value_is_a_probability_and_symmetric(
            n_a in 0u64..100_000, c_a in 0u64..100_000,
            n_b in 0u64..100_000, c_b in 0u64..100_000,
        ) {
            let ab = two_proportion_z_test(c_a, n_a, c_b, n_b);
            let ba = two_proportion_z_test(c_b, n_b, c_a, n_a);
            prop_assert_eq!(ab.is_some(), ba.is_some());
            if let (Some(ab), Some(ba)) = (ab, ba) {
                prop_assert!((0.0..=1.0).contains(&ab.p_value));
                prop_assert_eq!(ab.p_value, ba.p_value);
                prop_assert_eq!(ab.z, -ba.z);
            }
        }

        #[test]
        fn analyze_never_panics(
            data in proptest::collection::vec((0u64..5_000, 0u64..5_000), 0..4),
            confidence in -1.0f64..2.0,
            alpha in -1.0f64..2.0,
            min_trials in 0u64..2_000,
        ) {
            let exp = experiment("s", arms3());
            let cs: Vec<VariantCounts> = exp
                .variants
                .iter()
                .zip(&data)
                .map(|(v, &(c, n))| VariantCounts { variant_id: v.id, trials: n, conversions: c })
                .collect();
            let cfg = AnalysisConfig { confidence, alpha, min_trials_per_variant: min_trials };
            if let Ok(report) = analyze(&exp, &cs, &cfg) {
                prop_assert_eq!(report.variants.len(), 3);
                if let Decision::Winner(id) = report.decision {
                    prop_assert!(exp.variants.iter().any(|v| v.id == id));
                }
            }
        }
    }
}
