//! Memory relevance: which [`CustomerMemory`] items to put in front of the language
//! model when a customer calls, and how to summarise them within a budget.
//!
//! Each memory is scored by
//!
//! ```text
//! relevance = max(similarity, 0) × 0.5^(age / half_life) × importance
//! ```
//!
//! - *similarity* is the cosine between the current conversation and the memory's
//!   summary embedding: what the caller talks about now selects what we recall.
//!   Negative similarity carries no information we want (it does not make a memory
//!   "anti-relevant"), so it is floored at 0. Before the caller has said anything
//!   there is no query and similarity is taken as 1, leaving recency × importance.
//! - *exponential decay* with a half-life: people expect an agent to remember last
//!   week's call better than last year's, and a half-life is one number an operator
//!   can reason about ("after 30 days a memory counts half"). It never reaches 0, so
//!   an old but important memory can still surface when it matches well.
//! - *importance* (0..=1) lets "is allergic to latex" outlive "called about the
//!   weather"; importance 0 removes a memory from retrieval without deleting it.
//!
//! Memories below [`MemoryConfig::min_relevance`] are dropped, the rest sorted and
//! capped at [`MemoryConfig::max_items`], and [`build_context`] renders them as
//! one line each, bounded by [`MemoryConfig::max_context_chars`] so a long customer
//! history can never crowd out the rest of the prompt.

use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{CustomerMemory, Embedding, EmbeddingError, Importance, MemoryId};

/// Why a [`MemoryConfig`] is invalid.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum MemoryConfigError {
    /// The half-life is zero or negative.
    #[error("memory half-life must be positive, got {0}")]
    NonPositiveHalfLife(Duration),
    /// The minimum relevance is outside 0..=1 (or NaN).
    #[error("minimum memory relevance {0} is outside 0..=1")]
    InvalidMinRelevance(f64),
}

/// How memories are weighted, filtered and rendered.
///
/// Serialized with the half-life as whole seconds under `half_life_secs`
/// (`2592000` for 30 days; sub-second parts are dropped). Missing fields take their
/// defaults; call [`MemoryConfig::validate`] after loading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Age at which a memory counts half (default 30 days).
    #[serde(rename = "half_life_secs", with = "duration_secs")]
    pub half_life: Duration,
    /// Memories less relevant than this are dropped (default 0.05: a memory about
    /// four half-lives old, trivial, or about something else entirely).
    pub min_relevance: f64,
    /// At most this many memories are kept (default 8). 0 disables recall.
    pub max_items: usize,
    /// Upper bound on the rendered context, in characters (default 1200, roughly
    /// 300 tokens).
    pub max_context_chars: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            half_life: Duration::days(30),
            min_relevance: 0.05,
            max_items: 8,
            max_context_chars: 1200,
        }
    }
}

impl MemoryConfig {
    /// Checks the half-life and the relevance threshold.
    ///
    /// # Errors
    /// [`MemoryConfigError::NonPositiveHalfLife`] or
    /// [`MemoryConfigError::InvalidMinRelevance`].
    pub fn validate(&self) -> Result<(), MemoryConfigError> {
        if self.half_life <= Duration::zero() {
            return Err(MemoryConfigError::NonPositiveHalfLife(self.half_life));
        }
        if !(0.0..=1.0).contains(&self.min_relevance) {
            return Err(MemoryConfigError::InvalidMinRelevance(self.min_relevance));
        }
        Ok(())
    }
}

/// Serde for a [`Duration`] as whole seconds.
mod duration_secs {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = i64::deserialize(d)?;
        Duration::try_seconds(secs)
            .ok_or_else(|| serde::de::Error::custom(format!("{secs} s is out of range")))
    }
}

/// The weight `0.5^(age / half_life)` of a memory of the given age, in 0..=1.
///
/// A negative age (the memory's clock was ahead of ours) counts as brand new: 1.0.
/// A non-positive half-life, which [`MemoryConfig::validate`] rejects, is treated as
/// its limit, instant forgetting (0.0 for any positive age), so the result is never
/// NaN. Astronomically old memories (thousands of half-lives) underflow to 0.0.
#[must_use]
pub fn time_decay(age: Duration, half_life: Duration) -> f64 {
    if age <= Duration::zero() {
        return 1.0;
    }
    if half_life <= Duration::zero() {
        return 0.0;
    }
    0.5f64.powf(seconds(age) / seconds(half_life))
}

/// `max(similarity, 0) × time_decay(age) × importance`, in 0..=1.
///
/// `similarity` is clamped to 0..=1 and NaN counts as 0.
#[must_use]
pub fn relevance(
    similarity: f64,
    age: Duration,
    importance: Importance,
    config: &MemoryConfig,
) -> f64 {
    combine(similarity, time_decay(age, config.half_life), importance)
}

fn combine(similarity: f64, decay: f64, importance: Importance) -> f64 {
    let similarity = if similarity.is_nan() {
        0.0
    } else {
        similarity.clamp(0.0, 1.0)
    };
    similarity * decay * importance.value()
}

fn seconds(d: Duration) -> f64 {
    d.num_seconds() as f64 + f64::from(d.subsec_nanos()) * 1e-9
}

/// A memory with the numbers behind its rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredMemory {
    /// The memory.
    pub memory: CustomerMemory,
    /// Similarity to the query, −1..=1 (1 when there was no query).
    pub similarity: f64,
    /// Its age weight, 0..=1.
    pub decay: f64,
    /// `max(similarity, 0) × decay × importance`; the ranking key.
    pub relevance: f64,
}

/// Scores, filters and orders a customer's memories.
///
/// With a `query` (the embedding of what the caller is talking about) similarity is
/// the cosine to each memory's embedding; a memory without an embedding gets
/// similarity 0, and so is dropped unless `min_relevance` is 0: we cannot tell
/// whether it is on topic, and memories are embedded when they are written, so a
/// missing one is rare. Without a query (the start of a call) similarity is 1 and
/// only recency and importance count.
///
/// Keeps memories with `relevance >= config.min_relevance`, sorted by relevance
/// (descending), then newer first, then id, and at most `config.max_items` of them.
/// Age is `now − created_at`.
///
/// # Errors
/// [`EmbeddingError::DimensionMismatch`] when a memory's embedding and the query
/// differ in dimension (a mix of embedding models needs a migration, not a guess).
pub fn rank_memories(
    memories: Vec<CustomerMemory>,
    query: Option<&Embedding>,
    now: DateTime<Utc>,
    config: &MemoryConfig,
) -> Result<Vec<ScoredMemory>, EmbeddingError> {
    let mut candidates = Vec::with_capacity(memories.len());
    for memory in memories {
        let similarity = match (query, &memory.embedding) {
            (None, _) => 1.0,
            (Some(query), Some(embedding)) => query.cosine_similarity(embedding)?,
            (Some(_), None) => 0.0,
        };
        candidates.push((memory, similarity));
    }
    Ok(rank_scored_memories(candidates, now, config))
}

/// Like [`rank_memories`], for candidates whose similarity to the query is
/// already known (a vector index computed it, so the embeddings need not be
/// shipped back). Non-finite similarities count as 0.
#[must_use]
pub fn rank_scored_memories(
    candidates: Vec<(CustomerMemory, f64)>,
    now: DateTime<Utc>,
    config: &MemoryConfig,
) -> Vec<ScoredMemory> {
    let mut scored = Vec::with_capacity(candidates.len());
    for (memory, similarity) in candidates {
        let similarity = if similarity.is_finite() {
            similarity.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let decay = time_decay(
            now.signed_duration_since(memory.created_at),
            config.half_life,
        );
        let relevance = combine(similarity, decay, memory.importance);
        if relevance >= config.min_relevance {
            scored.push(ScoredMemory {
                memory,
                similarity,
                decay,
                relevance,
            });
        }
    }
    scored.sort_by(compare_scored);
    scored.truncate(config.max_items);
    scored
}

fn compare_scored(a: &ScoredMemory, b: &ScoredMemory) -> Ordering {
    b.relevance
        .total_cmp(&a.relevance)
        .then_with(|| b.memory.created_at.cmp(&a.memory.created_at))
        .then_with(|| a.memory.id.cmp(&b.memory.id))
}

/// The memory section of the language model's prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryContext {
    /// The memories that made it into `text`, in order (for attribution and
    /// learning which memories helped).
    pub used: Vec<MemoryId>,
    /// One line per memory, at most `max_context_chars` characters.
    pub text: String,
}

/// Renders ranked memories as lines `- <YYYY-MM-DD>: <summary> (facts: a; b)`, in
/// the given order.
///
/// Whitespace (newlines included) in summaries and facts is collapsed so that each
/// memory stays on one line. A fact already shown for an earlier memory is not
/// repeated (compared case-insensitively), and the `(facts: …)` part is left out
/// when no new fact remains; a memory with neither summary nor new facts is skipped.
///
/// The text never exceeds `config.max_context_chars` characters (not bytes): lines
/// are added whole until the next one would not fit. If not even the first line
/// fits, it is cut at a character boundary and ends with `…`.
#[must_use]
pub fn build_context(ranked: &[ScoredMemory], config: &MemoryConfig) -> MemoryContext {
    let budget = config.max_context_chars;
    let mut context = MemoryContext::default();
    let mut chars = 0usize;
    let mut seen_facts: HashSet<String> = HashSet::new();

    for scored in ranked {
        let memory = &scored.memory;
        let summary = collapse_whitespace(&memory.summary);
        let mut facts: Vec<String> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        for fact in &memory.facts {
            let fact = collapse_whitespace(fact);
            let key = fact.to_lowercase();
            if fact.is_empty() || seen_facts.contains(&key) || keys.contains(&key) {
                continue;
            }
            facts.push(fact);
            keys.push(key);
        }
        if summary.is_empty() && facts.is_empty() {
            continue;
        }

        let mut line = format!("- {}: {summary}", memory.created_at.format("%Y-%m-%d"));
        if !facts.is_empty() {
            if !summary.is_empty() {
                line.push(' ');
            }
            line.push_str("(facts: ");
            line.push_str(&facts.join("; "));
            line.push(')');
        }

        let separator = usize::from(!context.text.is_empty());
        let needed = separator + line.chars().count();
        if chars + needed <= budget {
            if separator == 1 {
                context.text.push('\n');
            }
            context.text.push_str(&line);
            chars += needed;
            context.used.push(memory.id);
            seen_facts.extend(keys);
        } else {
            if context.used.is_empty() && budget > 0 {
                context.text = truncate_with_ellipsis(&line, budget);
                context.used.push(memory.id);
            }
            break;
        }
    }
    context
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `max_chars − 1` characters of `line`, trailing spaces removed, then
/// `…`. `max_chars` must be at least 1.
fn truncate_with_ellipsis(line: &str, max_chars: usize) -> String {
    let keep: String = line.chars().take(max_chars.saturating_sub(1)).collect();
    let mut out = keep.trim_end().to_owned();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CustomerId, OrgId};
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 9, 0, 0)
            .single()
            .expect("valid time")
    }

    fn imp(v: f64) -> Importance {
        Importance::new(v).expect("valid importance")
    }

    fn memory(days_old: i64, importance: f64, embedding: Option<&[f32]>) -> CustomerMemory {
        CustomerMemory {
            id: MemoryId::new(),
            org_id: OrgId::new(),
            customer_id: CustomerId::new(),
            call_id: None,
            summary: "Asked to move the appointment to Friday".into(),
            facts: vec![],
            importance: imp(importance),
            embedding: embedding.map(|v| Embedding::new(v.to_vec()).expect("valid")),
            created_at: now() - Duration::days(days_old),
        }
    }

    fn scored(memory: CustomerMemory) -> ScoredMemory {
        ScoredMemory {
            memory,
            similarity: 1.0,
            decay: 1.0,
            relevance: 1.0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn decay_halves_every_half_life() {
        let hl = Duration::days(30);
        assert!(close(time_decay(Duration::days(30), hl), 0.5));
        assert!(close(time_decay(Duration::days(60), hl), 0.25));
        assert!(close(time_decay(Duration::days(15), hl), 0.5f64.sqrt()));
        assert_eq!(time_decay(Duration::zero(), hl), 1.0);
        // Sub-second half-lives still work (no division by a truncated zero).
        assert!(close(
            time_decay(Duration::milliseconds(1), Duration::microseconds(500)),
            0.25
        ));
    }

    #[test]
    fn decay_handles_clock_skew_and_bad_half_lives() {
        let hl = Duration::days(30);
        assert_eq!(time_decay(Duration::days(-3), hl), 1.0);
        assert_eq!(time_decay(Duration::days(1), Duration::zero()), 0.0);
        assert_eq!(time_decay(Duration::days(1), Duration::days(-1)), 0.0);
        assert_eq!(time_decay(Duration::zero(), Duration::zero()), 1.0);
        let extreme = time_decay(Duration::MAX, Duration::nanoseconds(1));
        assert!(!extreme.is_nan() && (0.0..=1.0).contains(&extreme));
    }

    #[test]
    fn relevance_multiplies_its_factors() {
        let config = MemoryConfig::default();
        let month = Duration::days(30);
        assert!(close(relevance(0.8, month, imp(0.5), &config), 0.2));
        assert_eq!(relevance(0.9, Duration::zero(), imp(0.0), &config), 0.0);
        assert_eq!(relevance(-0.7, Duration::zero(), imp(1.0), &config), 0.0);
        assert_eq!(
            relevance(f64::NAN, Duration::zero(), imp(1.0), &config),
            0.0
        );
        assert_eq!(relevance(1.2, Duration::zero(), imp(1.0), &config), 1.0);
    }

    #[test]
    fn config_validates() {
        assert_eq!(MemoryConfig::default().validate(), Ok(()));
        let zero = MemoryConfig {
            half_life: Duration::zero(),
            ..MemoryConfig::default()
        };
        assert_eq!(
            zero.validate(),
            Err(MemoryConfigError::NonPositiveHalfLife(Duration::zero()))
        );
        let negative = MemoryConfig {
            half_life: Duration::days(-1),
            ..MemoryConfig::default()
        };
        assert!(negative.validate().is_err());
        for min_relevance in [-0.1, 1.1, f64::NAN] {
            let bad = MemoryConfig {
                min_relevance,
                ..MemoryConfig::default()
            };
            assert!(matches!(
                bad.validate(),
                Err(MemoryConfigError::InvalidMinRelevance(_))
            ));
        }
    }

    #[test]
    fn config_serde_uses_seconds() {
        let json = serde_json::to_string(&MemoryConfig::default()).expect("ser");
        assert!(json.contains(r#""half_life_secs":2592000"#), "{json}");
        let back: MemoryConfig = serde_json::from_str(&json).expect("de");
        assert_eq!(back, MemoryConfig::default());
        let partial: MemoryConfig =
            serde_json::from_str(r#"{"half_life_secs":604800,"max_items":3}"#).expect("de");
        assert_eq!(partial.half_life, Duration::days(7));
        assert_eq!(partial.max_items, 3);
        assert_eq!(partial.max_context_chars, 1200);
        assert!(serde_json::from_str::<MemoryConfig>(r#"{"half_life":5}"#).is_err());
        assert!(
            serde_json::from_str::<MemoryConfig>(r#"{"half_life_secs":9223372036854775807}"#)
                .is_err()
        );
    }

    #[test]
    fn ranks_by_similarity_age_and_importance() {
        let config = MemoryConfig::default();
        let query = Embedding::new(vec![1.0, 0.0]).expect("valid");
        let on_topic_old = memory(30, 1.0, Some(&[1.0, 0.0])); // 1 × 0.5 × 1 = 0.5
        let on_topic_new = memory(0, 0.8, Some(&[1.0, 0.0])); // 0.8
        let half_topic = memory(0, 0.5, Some(&[1.0, 1.0])); // 0.707 × 0.5 ≈ 0.354
        let off_topic = memory(0, 1.0, Some(&[0.0, 1.0])); // 0
        let no_embedding = memory(0, 1.0, None); // 0
        let ranked = rank_memories(
            vec![
                off_topic,
                half_topic.clone(),
                no_embedding,
                on_topic_old.clone(),
                on_topic_new.clone(),
            ],
            Some(&query),
            now(),
            &config,
        )
        .expect("same dimension");
        let ids: Vec<_> = ranked.iter().map(|s| s.memory.id).collect();
        assert_eq!(ids, vec![on_topic_new.id, on_topic_old.id, half_topic.id]);
        assert!(close(ranked[1].relevance, 0.5));
        assert!(close(ranked[1].decay, 0.5));
        assert!(close(ranked[1].similarity, 1.0));
    }

    #[test]
    fn without_a_query_recency_and_importance_decide() {
        let config = MemoryConfig::default();
        let recent = memory(1, 0.5, None);
        let important_old = memory(60, 1.0, Some(&[1.0])); // 0.25
        let trivial = memory(0, 0.0, None);
        let ranked = rank_memories(
            vec![important_old.clone(), trivial, recent.clone()],
            None,
            now(),
            &config,
        )
        .expect("no query");
        let ids: Vec<_> = ranked.iter().map(|s| s.memory.id).collect();
        assert_eq!(ids, vec![recent.id, important_old.id]);
        assert!(ranked.iter().all(|s| s.similarity == 1.0));
    }

    #[test]
    fn ties_prefer_newer_then_id_and_future_dates_count_as_new() {
        let config = MemoryConfig::default();
        // Clock skew: both a "future" memory and a current one have decay 1.
        let future = memory(-2, 0.5, None);
        let current = memory(0, 0.5, None);
        let ranked =
            rank_memories(vec![current, future.clone()], None, now(), &config).expect("no query");
        assert_eq!(ranked[0].relevance, ranked[1].relevance);
        assert_eq!(ranked[0].memory.id, future.id, "newer first");

        let a = memory(3, 0.5, None);
        let mut b = memory(3, 0.5, None);
        b.created_at = a.created_at;
        let first = a.id.min(b.id);
        for input in [vec![a.clone(), b.clone()], vec![b, a]] {
            let ranked = rank_memories(input, None, now(), &config).expect("no query");
            assert_eq!(ranked[0].memory.id, first);
        }
    }

    #[test]
    fn filters_and_truncates() {
        let config = MemoryConfig {
            min_relevance: 0.3,
            max_items: 2,
            ..MemoryConfig::default()
        };
        let memories: Vec<_> = (0..6).map(|d| memory(d * 10, 1.0, None)).collect();
        let ranked = rank_memories(memories.clone(), None, now(), &config).expect("no query");
        assert_eq!(ranked.len(), 2);
        assert_eq!(ranked[0].memory.id, memories[0].id);
        assert_eq!(ranked[1].memory.id, memories[1].id);
        let strict = MemoryConfig {
            min_relevance: 0.7,
            ..MemoryConfig::default()
        };
        // 0, 10 days pass (1.0, 0.79); 20 days (0.63) does not.
        let ranked = rank_memories(memories, None, now(), &strict).expect("no query");
        assert_eq!(ranked.len(), 2);
    }

    #[test]
    fn dimension_mismatch_is_an_error() {
        let query = Embedding::new(vec![1.0, 0.0]).expect("valid");
        assert_eq!(
            rank_memories(
                vec![memory(0, 1.0, Some(&[1.0]))],
                Some(&query),
                now(),
                &MemoryConfig::default()
            ),
            Err(EmbeddingError::DimensionMismatch {
                expected: 2,
                actual: 1
            })
        );
    }

    #[test]
    fn context_lists_memories_and_dedups_facts() {
        let mut first = memory(0, 1.0, None);
        first.summary = "Asked to move the appointment\nto Friday".into();
        first.facts = vec![
            "prefers mornings".into(),
            "Account 4411".into(),
            "  ".into(),
        ];
        let mut second = memory(10, 1.0, None);
        second.summary = "Disputed a late fee".into();
        second.facts = vec![
            "Prefers  Mornings".into(),
            "has a dog".into(),
            "HAS A DOG".into(),
        ];
        let mut third = memory(20, 1.0, None);
        third.summary = "Called back".into();
        third.facts = vec!["account 4411".into()];
        let mut empty = memory(30, 1.0, None);
        empty.summary = " ".into();
        empty.facts = vec!["prefers mornings".into()];

        let ranked: Vec<_> = [&first, &second, &third, &empty]
            .into_iter()
            .map(|m| scored(m.clone()))
            .collect();
        let context = build_context(&ranked, &MemoryConfig::default());
        assert_eq!(
            context.text,
            "- 2025-06-01: Asked to move the appointment to Friday (facts: prefers mornings; Account 4411)\n\
             - 2025-05-22: Disputed a late fee (facts: has a dog)\n\
             - 2025-05-12: Called back"
        );
        assert_eq!(context.used, vec![first.id, second.id, third.id]);
    }

    #[test]
    fn context_stops_at_a_whole_line() {
        let mut a = memory(0, 1.0, None);
        a.summary = "a".repeat(20); // line: 2 + 10 + 2 + 20 = 34 chars
        let mut b = memory(0, 1.0, None);
        b.summary = "b".repeat(20);
        let ranked = vec![scored(a.clone()), scored(b.clone())];
        let line_a = format!("- 2025-06-01: {}", "a".repeat(20));
        assert_eq!(line_a.chars().count(), 34);

        let config = |max_context_chars| MemoryConfig {
            max_context_chars,
            ..MemoryConfig::default()
        };
        let exact = build_context(&ranked, &config(69));
        assert_eq!(exact.text.chars().count(), 69);
        assert_eq!(exact.used, vec![a.id, b.id]);
        let short = build_context(&ranked, &config(68));
        assert_eq!(short.text, line_a);
        assert_eq!(short.used, vec![a.id]);
        let nothing = build_context(&ranked, &config(0));
        assert_eq!(nothing, MemoryContext::default());
        assert_eq!(build_context(&[], &config(100)), MemoryContext::default());
    }

    #[test]
    fn context_truncates_a_lone_long_line_with_multibyte_text() {
        let mut m = memory(0, 1.0, None);
        m.summary = "Größe ändern – 東京 🎉 ".repeat(20);
        let config = MemoryConfig {
            max_context_chars: 40,
            ..MemoryConfig::default()
        };
        let context = build_context(&[scored(m.clone())], &config);
        assert!(context.text.chars().count() <= 40, "{}", context.text);
        assert!(context.text.len() > 40, "multibyte: more bytes than chars");
        assert!(context.text.ends_with('…'));
        assert!(
            context
                .text
                .starts_with("- 2025-06-01: Größe ändern – 東京 🎉")
        );
        assert_eq!(context.used, vec![m.id]);
        let tiny = MemoryConfig {
            max_context_chars: 1,
            ..MemoryConfig::default()
        };
        assert_eq!(build_context(&[scored(m)], &tiny).text, "…");
    }

    proptest! {
        #[test]
        fn decay_is_in_unit_interval_and_non_increasing(
            a in 0i64..(10 * 365 * 86_400),
            b in 0i64..(10 * 365 * 86_400),
            half_life_days in 7i64..=365,
        ) {
            let hl = Duration::days(half_life_days);
            let (younger, older) = (a.min(b), a.max(b));
            let d_young = time_decay(Duration::seconds(younger), hl);
            let d_old = time_decay(Duration::seconds(older), hl);
            prop_assert!(d_young > 0.0 && d_young <= 1.0);
            prop_assert!(d_old > 0.0 && d_old <= 1.0);
            prop_assert!(d_old <= d_young);
        }

        #[test]
        fn relevance_is_in_unit_interval(
            similarity in -2.0f64..2.0,
            age_secs in -1_000_000i64..1_000_000_000,
            importance in 0.0f64..=1.0,
        ) {
            let r = relevance(similarity, Duration::seconds(age_secs), imp(importance), &MemoryConfig::default());
            prop_assert!((0.0..=1.0).contains(&r));
        }

        #[test]
        fn context_never_exceeds_its_budget(
            entries in proptest::collection::vec(
                ("\\PC{0,80}", proptest::collection::vec("\\PC{0,20}", 0..4)),
                0..8,
            ),
            budget in 0usize..300,
        ) {
            let ranked: Vec<_> = entries
                .into_iter()
                .map(|(summary, facts)| scored(CustomerMemory { summary, facts, ..memory(1, 1.0, None) }))
                .collect();
            let config = MemoryConfig { max_context_chars: budget, ..MemoryConfig::default() };
            let context = build_context(&ranked, &config);
            prop_assert!(context.text.chars().count() <= budget);
            prop_assert_eq!(context.text.lines().count(), context.used.len());
        }
    }
}
