//! Deterministic assignment of callers to experiment arms.
//!
//! A caller's arm is a pure function of the experiment's salt, the caller's key
//! and the arms' weights:
//!
//! 1. `h = stable_hash(salt ++ ":" ++ key)` where `key` is the customer id in
//!    its lowercase hyphenated UUID text form (`0190…-…`), or the phone number's
//!    full E.164 form (`+14155550100`). The two never collide: UUID text never
//!    starts with `+`.
//! 2. `bucket = h mod total_weight`.
//! 3. Walk the arms in their configured order, accumulating weights; the caller
//!    gets the first arm whose cumulative weight exceeds `bucket`.
//!
//! **Modulo bias.** `2^64` is not a multiple of `total_weight` in general, so a
//! few buckets get one extra hash value out of `2^64 / total_weight`. The
//! relative bias is below `total_weight / 2^64` (under `10^-9` even for a total
//! weight of four billion) — far below anything an experiment can measure.
//! Plain `mod` was chosen over multiply-shift because it is trivial to
//! reproduce in SQL or a notebook when re-deriving assignments.
//!
//! Re-ordering arms, changing a weight, or changing the salt moves callers
//! between arms; do not do it to a running experiment whose results matter.

use crate::{CustomerId, Experiment, ExperimentStatus, PhoneNumber, Variant};

use super::{ExperimentError, validated_total_weight};

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The stable 64-bit hash used for bucketing (and for anything else the domain
/// persists or must reproduce): FNV-1a 64 over `bytes`, followed by MurmurHash3's
/// `fmix64` finalizer so that every input bit affects every output bit (plain
/// FNV-1a mixes its last bytes poorly into the high bits).
///
/// **Stable forever.** Persisted assignments and reproducible analyses depend on
/// this exact function; a test pins its output. Never change it — add a new,
/// differently named function instead.
#[must_use]
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET_BASIS;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    fmix64(h)
}

/// MurmurHash3's 64-bit finalizer (avalanche step).
const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Who is being assigned.
///
/// Prefer [`AssignmentKey::Customer`] whenever the caller is a known customer:
/// a customer keeps their arm when they call from another number, whereas a
/// phone key follows the number. Use [`AssignmentKey::Phone`] only for callers
/// not (yet) matched to a customer. The two keys hash differently, so a caller
/// first assigned by phone may change arm once matched to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AssignmentKey {
    /// A known customer, hashed by the UUID's lowercase hyphenated text.
    Customer(CustomerId),
    /// An unmatched caller, hashed by the full E.164 number.
    Phone(PhoneNumber),
}

impl AssignmentKey {
    /// The bytes that identify the key in the hash input.
    fn write_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Self::Customer(id) => {
                let mut buf = uuid::Uuid::encode_buffer();
                out.extend_from_slice(id.as_uuid().hyphenated().encode_lower(&mut buf).as_bytes());
            }
            Self::Phone(phone) => out.extend_from_slice(phone.as_str().as_bytes()),
        }
    }
}

/// Why no arm was assigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// Only a [`ExperimentStatus::Running`] experiment assigns callers.
    #[error("the experiment is {}; only a running experiment assigns callers", status_label(.status))]
    NotRunning {
        /// The experiment's current state.
        status: ExperimentStatus,
    },
    /// The experiment's arms break a rule of [`super::validate_variants`].
    #[error("the experiment's variants are invalid, so no caller can be assigned")]
    InvalidVariants(#[from] ExperimentError),
}

/// How a status reads in an operator-facing sentence.
const fn status_label(status: &ExperimentStatus) -> &'static str {
    match status {
        ExperimentStatus::Draft => "still a draft",
        ExperimentStatus::Running => "running",
        ExperimentStatus::Paused => "paused",
        ExperimentStatus::Completed => "completed",
    }
}

/// The 64-bit hash that decides `key`'s arm in an experiment salted with
/// `salt`: [`stable_hash`] of `salt ++ ":" ++ key`. Exposed so analyses can
/// re-derive assignments; [`assign`] reduces it modulo the total weight.
#[must_use]
pub fn assignment_hash(salt: &str, key: &AssignmentKey) -> u64 {
    let mut input = Vec::with_capacity(salt.len() + 1 + 36);
    input.extend_from_slice(salt.as_bytes());
    input.push(b':');
    key.write_bytes(&mut input);
    stable_hash(&input)
}

/// The arm of `experiment` that `key` belongs to. Deterministic: the same key
/// gets the same arm for as long as the salt, weights and order of the arms are
/// unchanged. See the [module docs](self) for the exact procedure.
///
/// # Errors
/// - [`AssignmentError::NotRunning`] unless the experiment is
///   [`ExperimentStatus::Running`] (drafts, paused and completed experiments
///   assign nobody);
/// - [`AssignmentError::InvalidVariants`] when the arms fail
///   [`super::validate_variants`].
pub fn assign<'a>(
    experiment: &'a Experiment,
    key: &AssignmentKey,
) -> Result<&'a Variant, AssignmentError> {
    if experiment.status != ExperimentStatus::Running {
        return Err(AssignmentError::NotRunning {
            status: experiment.status,
        });
    }
    let total = validated_total_weight(&experiment.variants)?;
    // `total >= 2` after validation, so the remainder is well defined.
    let bucket = assignment_hash(&experiment.salt, key) % total;
    let mut cumulative = 0u64;
    for variant in &experiment.variants {
        cumulative += u64::from(variant.weight); // cannot overflow: validated above
        if bucket < cumulative {
            return Ok(variant);
        }
    }
    // Unreachable: `bucket < total` and the cumulative sum reaches `total`.
    // Kept as an error rather than a panic so no input can crash the caller.
    Err(AssignmentError::InvalidVariants(
        ExperimentError::TotalWeightOverflow,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;
    use uuid::Uuid;

    use super::super::test_support::{experiment, variant, variants_with_weights};
    use super::*;
    use crate::VariantId;

    /// The `i`-th synthetic customer: sequential UUIDs, the worst case for a weak hash.
    fn customer(i: u64) -> AssignmentKey {
        AssignmentKey::Customer(CustomerId::from_uuid(Uuid::from_u128(u128::from(i))))
    }

    fn phone(i: u64) -> AssignmentKey {
        let n = PhoneNumber::parse(&format!("+1415{:07}", i % 10_000_000)).expect("valid");
        AssignmentKey::Phone(n)
    }

    #[test]
    fn stable_hash_is_pinned() {
        // FNV-1a 64 reference vectors (Fowler/Noll/Vo test suite), before fmix64.
        assert_eq!(fmix64(0), 0);
        assert_eq!(stable_hash(b""), fmix64(0xcbf2_9ce4_8422_2325));
        assert_eq!(stable_hash(b"a"), fmix64(0xaf63_dc4c_8601_ec8c));
        assert_eq!(stable_hash(b"foobar"), fmix64(0x8594_4171_f739_67e8));
        // Full hash, computed independently in Python (FNV-1a 64 + fmix64).
        // If this fails, persisted assignments no longer reproduce: do not
        // "fix" the constants, revert the hash.
        assert_eq!(stable_hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(stable_hash(b"a"), 0x82a2_a958_a9be_ce5b);
        assert_eq!(
            stable_hash(b"checkout-2024:+14155550100"),
            0xaa7f_8f90_9168_abb8
        );
    }

    #[test]
    fn assignment_hash_uses_salt_colon_and_key_text() {
        let phone = AssignmentKey::Phone(PhoneNumber::parse("+1 415 555 0100").expect("valid"));
        assert_eq!(
            assignment_hash("checkout-2024", &phone),
            0xaa7f_8f90_9168_abb8
        );
        let cust = AssignmentKey::Customer(CustomerId::from_uuid(Uuid::from_u128(1)));
        assert_eq!(
            assignment_hash("checkout-2024", &cust),
            stable_hash(b"checkout-2024:00000000-0000-0000-0000-000000000001")
        );
        assert_eq!(
            assignment_hash("checkout-2024", &cust),
            0x7509_dce5_40c2_3e97
        );
    }

    #[test]
    fn pinned_assignment() {
        // 0xaa7f8f909168abb8 % 100 = 12285696159567621048 % 100 = 48 → arm 0 (weights 50/50).
        let exp = experiment("checkout-2024", variants_with_weights(&[50, 50]));
        let phone = AssignmentKey::Phone(PhoneNumber::parse("+14155550100").expect("valid"));
        assert_eq!(assign(&exp, &phone).expect("assigned").name, "arm-0");
        // 48 falls in the second arm of weights 40/60 (cumulative 40, 100).
        let exp = experiment("checkout-2024", variants_with_weights(&[40, 60]));
        assert_eq!(assign(&exp, &phone).expect("assigned").name, "arm-1");
    }

    #[test]
    fn same_key_always_gets_the_same_variant() {
        let exp = experiment("salt-1", variants_with_weights(&[1, 1, 1]));
        for i in 0..500 {
            for key in [customer(i), phone(i)] {
                let first = assign(&exp, &key).expect("assigned").id;
                let clone = exp.clone();
                for _ in 0..3 {
                    assert_eq!(assign(&clone, &key.clone()).expect("assigned").id, first);
                }
            }
        }
    }

    #[test]
    fn different_salts_split_independently() {
        let a = experiment("greeting-2024", variants_with_weights(&[50, 50]));
        let b = experiment("voice-2024", variants_with_weights(&[50, 50]));
        let n = 20_000u64;
        let mut cells = HashMap::<(VariantId, VariantId), u64>::new();
        for i in 0..n {
            let key = customer(i);
            let va = assign(&a, &key).expect("a").id;
            let vb = assign(&b, &key).expect("b").id;
            *cells.entry((va, vb)).or_default() += 1;
        }
        assert_eq!(cells.len(), 4, "every combination occurs");
        // Each cell's share has a standard deviation of sqrt(.25 * .75 / 20000)
        // ≈ 0.0031 under independence; ±0.02 is over 6 sigma.
        for (&cell, &count) in &cells {
            #[allow(clippy::cast_precision_loss)] // counts ≤ 20 000: exact in f64
            let share = count as f64 / n as f64;
            assert!((share - 0.25).abs() < 0.02, "{cell:?}: {share}");
        }
    }

    #[test]
    fn non_running_experiments_assign_nobody() {
        for status in [
            ExperimentStatus::Draft,
            ExperimentStatus::Paused,
            ExperimentStatus::Completed,
        ] {
            let mut exp = experiment("s", variants_with_weights(&[1, 1]));
            exp.status = status;
            for i in 0..50 {
                assert_eq!(
                    assign(&exp, &customer(i)),
                    Err(AssignmentError::NotRunning { status })
                );
            }
        }
        let err = AssignmentError::NotRunning {
            status: ExperimentStatus::Paused,
        };
        assert_eq!(
            err.to_string(),
            "the experiment is paused; only a running experiment assigns callers"
        );
    }

    #[test]
    fn invalid_variants_assign_nobody() {
        let exp = experiment(
            "s",
            vec![variant(1, "a", 1, false), variant(2, "b", 1, false)],
        );
        let err = assign(&exp, &customer(1)).expect_err("no control");
        assert_eq!(
            err,
            AssignmentError::InvalidVariants(ExperimentError::NoControl)
        );
        // The source is chained, not repeated in the message.
        let source = std::error::Error::source(&err).expect("has a source");
        assert!(!err.to_string().contains(&source.to_string()));
    }

    #[test]
    fn customer_and_phone_keys_hash_differently() {
        let c = customer(1);
        let p = phone(1);
        assert_ne!(assignment_hash("s", &c), assignment_hash("s", &p));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Each arm's share of 20 000 keys is within ±0.02 of weight/total.
        /// The share's standard deviation is sqrt(p(1-p)/n) ≤ 0.5/sqrt(20000)
        /// ≈ 0.0035, so 0.02 is ≥ 5.6 sigma: a real bias of 2 points fails,
        /// hash noise practically never does (P ≈ 2e-8 per arm).
        #[test]
        fn shares_follow_weights(
            weights in proptest::collection::vec(1u32..100, 2..=5),
            salt in "[a-z0-9-]{1,16}",
            use_phones in any::<bool>(),
        ) {
            let exp = experiment(&salt, variants_with_weights(&weights));
            let total: u32 = weights.iter().sum();
            let n = 20_000u64;
            let mut counts = HashMap::<VariantId, u64>::new();
            for i in 0..n {
                let key = if use_phones { phone(i) } else { customer(i) };
                *counts.entry(assign(&exp, &key).expect("assigned").id).or_default() += 1;
            }
            for v in &exp.variants {
                let expected = f64::from(v.weight) / f64::from(total);
                #[allow(clippy::cast_precision_loss)] // counts ≤ 20 000: exact in f64
                let share = counts.get(&v.id).copied().unwrap_or(0) as f64 / n as f64;
                prop_assert!((share - expected).abs() < 0.02,
                    "{}: share {share}, expected {expected}", v.name);
            }
        }

        #[test]
        fn assign_never_panics(
            weights in proptest::collection::vec(0u32..=u32::MAX, 0..6),
            controls in proptest::collection::vec(any::<bool>(), 0..6),
            salt in "\\PC{0,20}",
            i in any::<u64>(),
        ) {
            let mut arms = variants_with_weights(&weights);
            for (arm, &c) in arms.iter_mut().zip(&controls) {
                arm.is_control = c;
            }
            let exp = experiment(&salt, arms);
            match assign(&exp, &customer(i)) {
                Ok(v) => prop_assert!(exp.variants.iter().any(|x| x.id == v.id)),
                Err(AssignmentError::InvalidVariants(_)) => {
                    prop_assert!(validate_variants_fails(&exp));
                }
                Err(AssignmentError::NotRunning { .. }) => prop_assert!(false, "running"),
            }
        }
    }

    fn validate_variants_fails(exp: &Experiment) -> bool {
        super::super::validate_variants(&exp.variants).is_err()
    }
}
