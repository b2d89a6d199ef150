//! A/B experiments over personas: validating an experiment's arms, assigning
//! callers to arms, and analysing the outcome.
//!
//! - [`validate_variants`] checks the rules every experiment's arms must obey
//!   (at least two arms, exactly one control, positive weights, unique ids and
//!   names).
//! - [`assign`](fn@assign) puts a caller in an arm by deterministic bucketing:
//!   the same caller always lands in the same arm of the same experiment, and
//!   different experiments (different salts) split callers independently. See
//!   the [`assign` module](mod@assign) for the hash, which is stable forever.
//! - [`analyze`] turns per-arm trial and conversion counts into rates, Wilson
//!   confidence intervals, two-proportion z-tests against the control and a
//!   [`Decision`]. See [`stats`] for the numerical building blocks.
//!
//! Everything here is pure: no clock, no randomness, no I/O.

pub mod assign;
pub mod stats;

use std::collections::HashSet;

use crate::{Variant, VariantId};

pub use assign::{AssignmentError, AssignmentKey, assign, assignment_hash, stable_hash};
pub use stats::{
    AnalysisConfig, Decision, ExperimentReport, StatsError, VariantCounts, VariantReport, ZTest,
    analyze, erfc, normal_cdf, normal_quantile, two_proportion_z_test, wilson_interval,
    z_for_confidence,
};

/// The fewest arms an experiment can have: a control and one treatment.
pub const MIN_VARIANTS: usize = 2;

/// Why an experiment's set of variants (arms) is not usable.
///
/// [`validate_variants`] reports the first rule broken, checking in this order:
/// the number of arms, then each arm in order (weight, id, name), then the
/// control, then the total weight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExperimentError {
    /// Fewer than [`MIN_VARIANTS`] arms.
    #[error(
        "an experiment needs at least {MIN_VARIANTS} variants (a control and a treatment), \
         but this one has {count}"
    )]
    TooFewVariants {
        /// Arms found.
        count: usize,
    },
    /// An arm has weight 0, so it would never receive a caller.
    #[error("variant `{name}` has weight 0; every variant needs a weight of at least 1")]
    ZeroWeight {
        /// The arm's name, as configured.
        name: String,
    },
    /// Two arms share an id.
    #[error("variant id {id} is used by more than one variant")]
    DuplicateId {
        /// The repeated id.
        id: VariantId,
    },
    /// Two arms share a name (compared trimmed and case-insensitively).
    #[error(
        "variant name `{name}` is used more than once \
         (names are compared ignoring case and surrounding spaces)"
    )]
    DuplicateName {
        /// The second occurrence of the name, as configured.
        name: String,
    },
    /// No arm is marked as the control.
    #[error("no variant is marked as the control; mark exactly one")]
    NoControl,
    /// More than one arm is marked as the control.
    #[error("{count} variants are marked as the control; mark exactly one")]
    MultipleControls {
        /// Arms marked as control.
        count: usize,
    },
    /// The weights add up to more than `u64::MAX`. Needs over four billion arms,
    /// so it cannot happen in practice; checked so that no input can overflow.
    #[error("the variants' weights add up to more than the largest supported total (2^64 - 1)")]
    TotalWeightOverflow,
}

/// Checks that `variants` can form an experiment: at least two arms, exactly one
/// marked `is_control`, every weight at least 1, no repeated id, no repeated
/// name (compared after trimming, ignoring case) and a total weight that fits
/// in a `u64`.
///
/// # Errors
/// The first [`ExperimentError`] found, in the order documented on the enum.
pub fn validate_variants(variants: &[Variant]) -> Result<(), ExperimentError> {
    validated_total_weight(variants).map(|_| ())
}

/// [`validate_variants`], returning the total weight when the arms are valid.
fn validated_total_weight(variants: &[Variant]) -> Result<u64, ExperimentError> {
    if variants.len() < MIN_VARIANTS {
        return Err(ExperimentError::TooFewVariants {
            count: variants.len(),
        });
    }

    let mut ids = HashSet::with_capacity(variants.len());
    let mut names = HashSet::with_capacity(variants.len());
    for variant in variants {
        if variant.weight == 0 {
            return Err(ExperimentError::ZeroWeight {
                name: variant.name.clone(),
            });
        }
        if !ids.insert(variant.id) {
            return Err(ExperimentError::DuplicateId { id: variant.id });
        }
        if !names.insert(normalized_name(&variant.name)) {
            return Err(ExperimentError::DuplicateName {
                name: variant.name.clone(),
            });
        }
    }

    match variants.iter().filter(|v| v.is_control).count() {
        0 => return Err(ExperimentError::NoControl),
        1 => {}
        count => return Err(ExperimentError::MultipleControls { count }),
    }

    variants
        .iter()
        .try_fold(0u64, |total, v| total.checked_add(u64::from(v.weight)))
        .ok_or(ExperimentError::TotalWeightOverflow)
}

/// The form in which names are compared for uniqueness.
fn normalized_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Builders shared by the tests of this module and its children.
#[cfg(test)]
pub(crate) mod test_support {
    use uuid::Uuid;

    use crate::{
        Experiment, ExperimentId, ExperimentMetric, ExperimentStatus, OrgId, PersonaId, Variant,
        VariantId,
    };

    /// An arm with a fixed, readable id (`n` as the UUID's low bits).
    pub(crate) fn variant(n: u128, name: &str, weight: u32, is_control: bool) -> Variant {
        Variant {
            id: VariantId::from_uuid(Uuid::from_u128(n)),
            name: name.to_owned(),
            persona_id: PersonaId::from_uuid(Uuid::from_u128(1000 + n)),
            weight,
            is_control,
        }
    }

    /// A control plus treatments, with the given weights (the first is the control).
    pub(crate) fn variants_with_weights(weights: &[u32]) -> Vec<Variant> {
        weights
            .iter()
            .zip(0u128..)
            .map(|(&w, i)| variant(i + 1, &format!("arm-{i}"), w, i == 0))
            .collect()
    }

    /// A running experiment with the given salt and arms.
    pub(crate) fn experiment(salt: &str, variants: Vec<Variant>) -> Experiment {
        Experiment {
            id: ExperimentId::from_uuid(Uuid::from_u128(42)),
            org_id: OrgId::from_uuid(Uuid::from_u128(7)),
            name: "greeting test".to_owned(),
            salt: salt.to_owned(),
            status: ExperimentStatus::Running,
            metric: ExperimentMetric::Conversion,
            variants,
            created_at: chrono::DateTime::UNIX_EPOCH,
            started_at: None,
            ended_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{variant, variants_with_weights};
    use super::*;

    #[test]
    fn accepts_a_well_formed_set() {
        assert_eq!(validate_variants(&variants_with_weights(&[50, 50])), Ok(()));
        assert_eq!(
            validate_variants(&variants_with_weights(&[1, 2, 3])),
            Ok(())
        );
        assert_eq!(
            validated_total_weight(&variants_with_weights(&[u32::MAX, u32::MAX])),
            Ok(2 * u64::from(u32::MAX)),
            "u32 weights are summed in u64 without overflow"
        );
    }

    #[test]
    fn needs_at_least_two_variants() {
        assert_eq!(
            validate_variants(&[]),
            Err(ExperimentError::TooFewVariants { count: 0 })
        );
        let err = validate_variants(&variants_with_weights(&[1])).expect_err("one arm");
        assert_eq!(err, ExperimentError::TooFewVariants { count: 1 });
        assert!(err.to_string().contains("at least 2 variants"));
    }

    #[test]
    fn needs_exactly_one_control() {
        let none = vec![variant(1, "a", 1, false), variant(2, "b", 1, false)];
        assert_eq!(validate_variants(&none), Err(ExperimentError::NoControl));
        let two = vec![
            variant(1, "a", 1, true),
            variant(2, "b", 1, true),
            variant(3, "c", 1, false),
        ];
        let err = validate_variants(&two).expect_err("two controls");
        assert_eq!(err, ExperimentError::MultipleControls { count: 2 });
        assert_eq!(
            err.to_string(),
            "2 variants are marked as the control; mark exactly one"
        );
    }

    #[test]
    fn rejects_zero_weight_naming_the_arm() {
        let arms = vec![
            variant(1, "control", 1, true),
            variant(2, "friendly", 0, false),
        ];
        let err = validate_variants(&arms).expect_err("zero weight");
        assert_eq!(
            err,
            ExperimentError::ZeroWeight {
                name: "friendly".to_owned()
            }
        );
        assert!(err.to_string().contains("`friendly` has weight 0"));
    }

    #[test]
    fn rejects_duplicate_ids() {
        let mut arms = variants_with_weights(&[1, 1]);
        arms[1].id = arms[0].id;
        assert_eq!(
            validate_variants(&arms),
            Err(ExperimentError::DuplicateId { id: arms[0].id })
        );
    }

    #[test]
    fn rejects_names_equal_up_to_case_and_spaces() {
        let arms = vec![
            variant(1, "Control", 1, true),
            variant(2, "  control ", 1, false),
        ];
        assert_eq!(
            validate_variants(&arms),
            Err(ExperimentError::DuplicateName {
                name: "  control ".to_owned()
            })
        );
        let distinct = vec![
            variant(1, "control", 1, true),
            variant(2, "control-2", 1, false),
        ];
        assert_eq!(validate_variants(&distinct), Ok(()));
    }
}
