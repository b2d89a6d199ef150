//! The escalation policy: when the AI agent should hand a call to a human.
//!
//! [`EscalationPolicy::evaluate`] is a pure, deterministic function of the
//! conversation so far ([`EscalationInput`]): the same turns and tier always give
//! the same [`EscalationDecision`]. The runtime calls it after every turn and
//! transfers the call on the first [`EscalationDecision::Escalate`].
//!
//! # Rules, in priority order
//!
//! The first rule that fires decides the [`EscalationReason`]:
//!
//! 1. **VIP** ([`EscalationReason::VipCustomer`]) — when
//!    [`EscalationPolicy::vip_direct_to_human`] is set and the customer's tier is
//!    [`CustomerTier::Vip`], escalate at once, even before the caller speaks.
//! 2. **Human requested** ([`EscalationReason::HumanRequested`]) — the *latest*
//!    caller turn asks for a person, as judged by [`HumanRequestMatcher`]. An
//!    earlier request the caller moved on from does not count.
//! 3. **Sustained negative sentiment**
//!    ([`EscalationReason::SustainedNegativeSentiment`]) — the last
//!    [`EscalationPolicy::consecutive_negative_turns`] scored caller turns all
//!    have a score ≤ [`EscalationPolicy::negative_threshold`].
//! 4. **Sharp drop** ([`EscalationReason::SharpSentimentDrop`]) — between the
//!    last two scored caller turns the score fell by at least
//!    [`EscalationPolicy::sharp_drop`] *and* the latest score is itself
//!    negative ([`SentimentLabel::Negative`]): a caller going from delighted to
//!    neutral is not upset.
//! 5. **No progress** ([`EscalationReason::NoProgress`]) — the last
//!    [`EscalationPolicy::max_turns_without_progress`] bot turns (counted back
//!    from the end until a bot turn with [`TurnSnapshot::made_progress`]) all
//!    failed to advance the caller's goal. Bot turns before the caller first
//!    speaks (the greeting) are not counted.
//!
//! Caller turns without a sentiment (not scored yet, or scoring failed) are
//! skipped by the sentiment rules: they neither count towards nor break a
//! streak. Bot turns do not break a caller streak either. Turns by a human agent
//! or the system are ignored by every rule. A count of `0` (or a `sharp_drop`
//! of `0.0`) disables the rule.
//!
//! The escalation carries the skills the receiving human needs:
//! [`EscalationPolicy::skills_by_reason`] for the reason, plus
//! [`EscalationPolicy::vip_skill`] when the customer is a VIP — de-duplicated
//! and sorted. [`crate::routing`] then picks the agent.
//!
//! # Detecting a request for a human
//!
//! [`HumanRequestMatcher`] compiles the policy's phrases once. Both the phrases
//! and what the caller said are normalised the same way: lower-cased,
//! apostrophes (straight or curly) removed (`don’t` → `dont`), every other
//! non-alphanumeric character a word separator; sentence punctuation (`, . ! ?
//! ; :` …) additionally marks a clause boundary. Words are then compared whole,
//! so `agentic` never matches `agent`.
//!
//! A phrase is a list of words; a word may list alternatives separated by `|`
//! (`speak|talk human|person`). Its words must appear in order, within one
//! clause, with at most two other words between consecutive phrase words — not
//! counting filler (`a an the to with your some any of one`), so "can I speak to
//! a *real* human please" matches `speak human`. A gap may not contain `about`,
//! `like` or `than` ("talk about my agent" is not a request). A phrase starting
//! with `=` matches only an utterance made of nothing but its words and
//! politeness filler ("Agent!", "a real person, please"), so bare nouns can be
//! used without matching "my insurance agent" or "are you human?".
//!
//! A match is ignored when a negation (`no not dont doesnt didnt wont wouldnt
//! shouldnt without nor neither`) precedes its first word in the same clause with
//! at most three words between them ("I don't want to talk to an agent", "no
//! need for a manager"), unless `but just so please instead rather` comes
//! between. `no` followed by punctuation or by an imperative ("no, get me a
//! human", "no get me a human") is an answer, not a negation, and a negation
//! right after `why` is rhetorical ("why don't you get me a manager").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CustomerTier, Sentiment, SentimentLabel, Skill, Speaker};

/// Tolerance for the sharp-drop comparison, so that a drop of exactly the
/// configured size fires despite floating-point rounding.
const DROP_EPSILON: f64 = 1e-9;

/// Most other (non-filler) words allowed between two consecutive phrase words.
const MAX_GAP: usize = 2;
/// Most words of any kind scanned between two phrase words (bounds the work).
const MAX_GAP_SCAN: usize = 8;
/// Most words between a negation and the match it negates.
const NEGATION_WINDOW: usize = 3;
/// Most words (slots) in one phrase.
pub const MAX_PHRASE_WORDS: usize = 8;

/// Words that do not count towards the gap between two phrase words.
const GLUE: &[&str] = &[
    "a", "an", "the", "to", "with", "your", "some", "any", "of", "one",
];
/// Words that may not appear in a gap: "talk about my agent".
const GAP_BLOCKERS: &[&str] = &["about", "like", "than"];
/// Words that negate a following request.
const NEGATIONS: &[&str] = &[
    "no", "not", "dont", "doesnt", "didnt", "wont", "wouldnt", "shouldnt", "without", "nor",
    "neither",
];
/// Words after which `no` is an answer ("no get me a human"), not a negation.
const ANSWER_STARTERS: &[&str] = &[
    "get", "put", "give", "send", "transfer", "connect", "let", "speak", "talk", "i", "just",
    "please",
];
/// Words that end the reach of an earlier negation.
const NEGATION_BREAKERS: &[&str] = &["but", "just", "so", "please", "instead", "rather"];
/// Words an utterance may contain besides the phrase words for a `=` phrase.
const UTTERANCE_FILLER: &[&str] = &[
    "please", "a", "an", "the", "just", "now", "hey", "hi", "hello", "uh", "um", "er", "erm", "ok",
    "okay", "yes", "yeah", "real", "live", "actual", "another", "oh", "sorry", "can", "could", "i",
    "have", "being", "me", "want", "need", "get", "speak", "talk", "to",
];

/// The human-request phrases an [`EscalationPolicy`] uses by default.
///
/// See the module documentation for the phrase syntax. The list favours
/// precision: bare nouns only match when they are the whole utterance.
pub const DEFAULT_HUMAN_REQUEST_PHRASES: &[&str] = &[
    "speak|talk|chat human|humans|person|someone|somebody|anyone|anybody|agent|agents|representative|representatives|rep|operator|manager|supervisor|people|staff",
    "transfer|connect|put|get|give|send me human|person|someone|somebody|agent|representative|rep|operator|manager|supervisor",
    "transferred|connected|escalated human|person|someone|somebody|agent|representative|rep|operator|manager|supervisor",
    "want|need|wanna|demand|request human|person|agent|representative|operator|manager|supervisor",
    "is there human|person|someone|somebody|anyone|anybody|agent|representative|operator|manager|supervisor",
    "escalate",
    "=human|humans|person|people|agent|representative|rep|operator|someone|manager|supervisor",
];

// ---------------------------------------------------------------------------
// Turns and input
// ---------------------------------------------------------------------------

/// One turn of the conversation so far, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnSnapshot {
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// Sentiment of the turn (caller turns, once scored).
    pub sentiment: Option<Sentiment>,
    /// Set by the runtime on a bot turn that advanced the caller's goal (e.g. a
    /// tool call succeeded).
    pub made_progress: bool,
}

impl TurnSnapshot {
    /// A caller turn.
    #[must_use]
    pub fn caller(text: impl Into<String>, sentiment: Option<Sentiment>) -> Self {
        Self {
            speaker: Speaker::Caller,
            text: text.into(),
            sentiment,
            made_progress: false,
        }
    }

    /// A bot turn.
    #[must_use]
    pub fn bot(text: impl Into<String>, made_progress: bool) -> Self {
        Self {
            speaker: Speaker::Bot,
            text: text.into(),
            sentiment: None,
            made_progress,
        }
    }
}

/// What [`EscalationPolicy::evaluate`] decides on.
#[derive(Debug, Clone, Copy)]
pub struct EscalationInput<'a> {
    /// The conversation so far, oldest first.
    pub turns: &'a [TurnSnapshot],
    /// The caller's tier.
    pub customer_tier: CustomerTier,
}

// ---------------------------------------------------------------------------
// Reasons and decisions
// ---------------------------------------------------------------------------

/// Why a call is escalated. Ordered by rule priority (VIP first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// The customer is a VIP and the policy sends VIPs straight to a human.
    VipCustomer,
    /// The caller asked for a human in their latest turn.
    HumanRequested,
    /// Several caller turns in a row were negative.
    SustainedNegativeSentiment,
    /// The caller's sentiment fell sharply into negative.
    SharpSentimentDrop,
    /// The bot failed to make progress for several turns.
    NoProgress,
    /// The AI agent cannot go on: speech recognition was lost, or replies
    /// kept failing. Decided by the conversation engine, not by the policy.
    ServiceFailure,
}

impl EscalationReason {
    /// Every reason, in priority order.
    pub const ALL: [Self; 6] = [
        Self::VipCustomer,
        Self::HumanRequested,
        Self::SustainedNegativeSentiment,
        Self::SharpSentimentDrop,
        Self::NoProgress,
        Self::ServiceFailure,
    ];

    /// The stable name used in storage, the API and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VipCustomer => "vip_customer",
            Self::HumanRequested => "human_requested",
            Self::SustainedNegativeSentiment => "sustained_negative_sentiment",
            Self::SharpSentimentDrop => "sharp_sentiment_drop",
            Self::NoProgress => "no_progress",
            Self::ServiceFailure => "service_failure",
        }
    }
}

impl fmt::Display for EscalationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`EscalationPolicy::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum EscalationDecision {
    /// The AI agent keeps the call.
    Stay,
    /// Hand the call to a human.
    Escalate {
        /// The rule that fired.
        reason: EscalationReason,
        /// Skills the receiving human must have (sorted, no duplicates).
        required_skills: Vec<Skill>,
    },
}

impl EscalationDecision {
    /// The reason, when escalating.
    #[must_use]
    pub const fn reason(&self) -> Option<EscalationReason> {
        match self {
            Self::Stay => None,
            Self::Escalate { reason, .. } => Some(*reason),
        }
    }

    /// Whether the call should go to a human.
    #[must_use]
    pub const fn is_escalate(&self) -> bool {
        matches!(self, Self::Escalate { .. })
    }
}

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

/// An organisation's escalation policy. Missing fields deserialize to their
/// defaults; check a policy with [`EscalationPolicy::validate`] when it is saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EscalationPolicy {
    /// A caller turn with a score ≤ this is negative for the sustained rule.
    /// In −1..=1; default −0.5 (clearly upset, not merely terse).
    pub negative_threshold: f64,
    /// How many scored caller turns in a row must be negative; `0` disables the
    /// rule. Default 2 (one bad turn is noise, two is a pattern).
    pub consecutive_negative_turns: usize,
    /// Smallest fall between the last two caller scores that escalates (the
    /// latest score must also be negative); in 0..=2, `0.0` disables the rule.
    /// Default 0.8 (e.g. +0.4 → −0.4).
    pub sharp_drop: f64,
    /// Phrases that mean "let me talk to a human" (syntax in the module
    /// documentation). Default [`DEFAULT_HUMAN_REQUEST_PHRASES`]; empty disables
    /// the rule.
    pub human_request_phrases: Vec<String>,
    /// How many bot turns in a row without progress escalate; `0` disables the
    /// rule. Default 4.
    pub max_turns_without_progress: usize,
    /// Send VIP customers to a human at once. Default `false`.
    pub vip_direct_to_human: bool,
    /// Skills the human needs, per reason (e.g. `no_progress` → `tier2`).
    /// Default empty.
    pub skills_by_reason: BTreeMap<EscalationReason, Vec<Skill>>,
    /// Skill added to every escalation of a VIP customer (e.g. `vip`). Default
    /// none.
    pub vip_skill: Option<Skill>,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        Self {
            negative_threshold: -0.5,
            consecutive_negative_turns: 2,
            sharp_drop: 0.8,
            human_request_phrases: DEFAULT_HUMAN_REQUEST_PHRASES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            max_turns_without_progress: 4,
            vip_direct_to_human: false,
            skills_by_reason: BTreeMap::new(),
            vip_skill: None,
        }
    }
}

/// Why an [`EscalationPolicy`] makes no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidEscalationPolicy {
    /// `negative_threshold` is outside −1..=1 or not a number.
    #[error("negative_threshold {0} is outside -1..=1")]
    NegativeThreshold(f64),
    /// `sharp_drop` is outside 0..=2 or not a number.
    #[error("sharp_drop {0} is outside 0..=2 (0 disables the rule)")]
    SharpDrop(f64),
    /// A human-request phrase does not compile.
    #[error(transparent)]
    Phrase(#[from] InvalidPhrase),
}

impl EscalationPolicy {
    /// A policy with every rule disabled: it always decides
    /// [`EscalationDecision::Stay`].
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            consecutive_negative_turns: 0,
            sharp_drop: 0.0,
            human_request_phrases: Vec::new(),
            max_turns_without_progress: 0,
            vip_direct_to_human: false,
            ..Self::default()
        }
    }

    /// Checks the policy for values that make no sense.
    ///
    /// # Errors
    /// [`InvalidEscalationPolicy`] for a threshold outside −1..=1, a sharp drop
    /// outside 0..=2, or a phrase that does not compile (empty, an empty or
    /// multi-word alternative, too many words).
    pub fn validate(&self) -> Result<(), InvalidEscalationPolicy> {
        self.compile().map(|_| ())
    }

    /// Validates the policy and compiles its phrases once, for evaluating many
    /// turns.
    ///
    /// # Errors
    /// As [`EscalationPolicy::validate`].
    pub fn compile(&self) -> Result<CompiledEscalationPolicy, InvalidEscalationPolicy> {
        let t = self.negative_threshold;
        if !(t.is_finite() && (-1.0..=1.0).contains(&t)) {
            return Err(InvalidEscalationPolicy::NegativeThreshold(t));
        }
        let d = self.sharp_drop;
        if !(d.is_finite() && (0.0..=2.0).contains(&d)) {
            return Err(InvalidEscalationPolicy::SharpDrop(d));
        }
        let matcher = HumanRequestMatcher::new(&self.human_request_phrases)?;
        Ok(CompiledEscalationPolicy {
            policy: self.clone(),
            matcher,
        })
    }

    /// Decides whether to escalate (rules in the module documentation).
    ///
    /// Compiles the phrases on every call; use [`EscalationPolicy::compile`] to
    /// do it once. Never panics: an invalid policy is applied as far as it makes
    /// sense (phrases that do not compile are skipped, a NaN threshold never
    /// fires).
    #[must_use]
    pub fn evaluate(&self, input: &EscalationInput<'_>) -> EscalationDecision {
        let matcher = HumanRequestMatcher::lossy(&self.human_request_phrases);
        decide(self, &matcher, input)
    }
}

/// A validated [`EscalationPolicy`] with its phrases compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledEscalationPolicy {
    policy: EscalationPolicy,
    matcher: HumanRequestMatcher,
}

impl CompiledEscalationPolicy {
    /// The policy it was compiled from.
    #[must_use]
    pub const fn policy(&self) -> &EscalationPolicy {
        &self.policy
    }

    /// The compiled human-request matcher (for reuse by the runtime).
    #[must_use]
    pub const fn matcher(&self) -> &HumanRequestMatcher {
        &self.matcher
    }

    /// Same as [`EscalationPolicy::evaluate`], without recompiling phrases.
    #[must_use]
    pub fn evaluate(&self, input: &EscalationInput<'_>) -> EscalationDecision {
        decide(&self.policy, &self.matcher, input)
    }
}

fn decide(
    policy: &EscalationPolicy,
    matcher: &HumanRequestMatcher,
    input: &EscalationInput<'_>,
) -> EscalationDecision {
    match first_reason(policy, matcher, input) {
        None => EscalationDecision::Stay,
        Some(reason) => {
            let mut skills: BTreeSet<Skill> = policy
                .skills_by_reason
                .get(&reason)
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            if input.customer_tier == CustomerTier::Vip {
                skills.extend(policy.vip_skill.iter().cloned());
            }
            EscalationDecision::Escalate {
                reason,
                required_skills: skills.into_iter().collect(),
            }
        }
    }
}

fn first_reason(
    policy: &EscalationPolicy,
    matcher: &HumanRequestMatcher,
    input: &EscalationInput<'_>,
) -> Option<EscalationReason> {
    let turns = input.turns;
    if policy.vip_direct_to_human && input.customer_tier == CustomerTier::Vip {
        return Some(EscalationReason::VipCustomer);
    }
    let latest_caller = turns.iter().rev().find(|t| t.speaker == Speaker::Caller);
    if latest_caller.is_some_and(|t| matcher.is_match(&t.text)) {
        return Some(EscalationReason::HumanRequested);
    }
    // Scored caller turns, newest first.
    let scores = || {
        turns
            .iter()
            .rev()
            .filter(|t| t.speaker == Speaker::Caller)
            .filter_map(|t| t.sentiment)
    };
    let n = policy.consecutive_negative_turns;
    if n > 0 {
        let mut negative = 0;
        for s in scores().take(n) {
            if s.score() <= policy.negative_threshold {
                negative += 1;
            } else {
                break;
            }
        }
        if negative == n {
            return Some(EscalationReason::SustainedNegativeSentiment);
        }
    }
    if policy.sharp_drop > 0.0 {
        let mut recent = scores();
        if let (Some(last), Some(prev)) = (recent.next(), recent.next()) {
            let fell = prev.score() - last.score();
            if fell + DROP_EPSILON >= policy.sharp_drop && last.label() == SentimentLabel::Negative
            {
                return Some(EscalationReason::SharpSentimentDrop);
            }
        }
    }
    let max = policy.max_turns_without_progress;
    if max > 0 {
        let first_caller = turns.iter().position(|t| t.speaker == Speaker::Caller);
        let after_greeting = first_caller.and_then(|i| turns.get(i..)).unwrap_or(&[]);
        let stalled = after_greeting
            .iter()
            .rev()
            .filter(|t| t.speaker == Speaker::Bot)
            .take_while(|t| !t.made_progress)
            .count();
        if stalled >= max {
            return Some(EscalationReason::NoProgress);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Human-request matcher
// ---------------------------------------------------------------------------

/// What is wrong with a human-request phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhraseProblem {
    /// No words (empty, whitespace, punctuation or a lone `=`).
    Empty,
    /// An alternative between `|` is empty (`talk||speak`, `|human`).
    EmptyAlternative,
    /// An alternative is more than one word (`talk|real-person`).
    MultiWordAlternative,
    /// More than [`MAX_PHRASE_WORDS`] words.
    TooManyWords,
}

impl PhraseProblem {
    /// A stable snake_case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::EmptyAlternative => "empty_alternative",
            Self::MultiWordAlternative => "multi_word_alternative",
            Self::TooManyWords => "too_many_words",
        }
    }
}

impl fmt::Display for PhraseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "has no words",
            Self::EmptyAlternative => "has an empty alternative",
            Self::MultiWordAlternative => "has an alternative of more than one word",
            Self::TooManyWords => "has too many words (at most 8)",
        })
    }
}

/// A human-request phrase that does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("human_request_phrases[{index}] {problem}")]
pub struct InvalidPhrase {
    /// Position of the phrase in the list.
    pub index: usize,
    /// What is wrong with it.
    pub problem: PhraseProblem,
}

/// Lower-cases and tokenises `text` the way [`HumanRequestMatcher`] sees it:
/// apostrophes removed, other punctuation and whitespace collapsed into single
/// spaces (`"Don’t — get me a HUMAN!!"` → `"dont get me a human"`).
#[must_use]
pub fn normalize_utterance(text: &str) -> String {
    tokenize(text)
        .into_iter()
        .map(|t| t.text)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A normalised word, and whether clause punctuation follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    clause_end: bool,
}

fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '\u{00B4}'
    )
}

fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        ',' | '.'
            | '!'
            | '?'
            | ';'
            | ':'
            | '\u{2026}'
            | '\u{2014}'
            | '\u{2013}'
            | '('
            | ')'
            | '['
            | ']'
            | '"'
            | '\u{201C}'
            | '\u{201D}'
            | '\u{00BF}'
            | '\u{00A1}'
    )
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if is_apostrophe(c) {
            // Joined: "don't" → "dont".
        } else {
            if !current.is_empty() {
                tokens.push(Token {
                    text: std::mem::take(&mut current),
                    clause_end: false,
                });
            }
            if is_clause_break(c)
                && let Some(last) = tokens.last_mut()
            {
                last.clause_end = true;
            }
        }
    }
    if !current.is_empty() {
        tokens.push(Token {
            text: current,
            clause_end: false,
        });
    }
    tokens
}

fn listed(list: &[&str], token: &Token) -> bool {
    list.contains(&token.text.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Phrase {
    source: String,
    /// Each slot: the words accepted at that position.
    slots: Vec<Vec<String>>,
    /// `=` phrase: the whole utterance must be phrase words and filler.
    whole_utterance: bool,
}

impl Phrase {
    fn compile(raw: &str) -> Result<Self, PhraseProblem> {
        let trimmed = raw.trim();
        let (whole_utterance, body) = match trimmed.strip_prefix('=') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut slots: Vec<Vec<String>> = Vec::new();
        for word in body.split_whitespace() {
            if word.contains('|') {
                let mut slot: Vec<String> = Vec::new();
                for alt in word.split('|') {
                    match tokenize(alt).as_slice() {
                        [] => return Err(PhraseProblem::EmptyAlternative),
                        [one] => {
                            if !slot.contains(&one.text) {
                                slot.push(one.text.clone());
                            }
                        }
                        _ => return Err(PhraseProblem::MultiWordAlternative),
                    }
                }
                slots.push(slot);
            } else {
                // "real-person" is two words; "-" alone is none.
                slots.extend(tokenize(word).into_iter().map(|t| vec![t.text]));
            }
        }
        if slots.is_empty() {
            Err(PhraseProblem::Empty)
        } else if slots.len() > MAX_PHRASE_WORDS {
            Err(PhraseProblem::TooManyWords)
        } else {
            Ok(Self {
                source: trimmed.to_owned(),
                slots,
                whole_utterance,
            })
        }
    }

    fn accepts(slot: &[String], token: &Token) -> bool {
        slot.contains(&token.text)
    }

    fn matches(&self, tokens: &[Token]) -> bool {
        let Some((first, rest)) = self.slots.split_first() else {
            return false;
        };
        if self.whole_utterance
            && !tokens.iter().all(|t| {
                listed(UTTERANCE_FILLER, t) || self.slots.iter().any(|s| Self::accepts(s, t))
            })
        {
            return false;
        }
        (0..tokens.len()).any(|start| {
            tokens.get(start).is_some_and(|t| Self::accepts(first, t))
                && !is_negated(tokens, start)
                && completes(rest, tokens, start)
        })
    }
}

/// Whether `slots` can be matched in order after the word at `start`.
fn completes(slots: &[Vec<String>], tokens: &[Token], start: usize) -> bool {
    let mut frontier = vec![start];
    for slot in slots {
        let mut next: Vec<usize> = Vec::new();
        for &from in &frontier {
            let mut extra = 0;
            let mut prev = from;
            for (j, token) in tokens
                .iter()
                .enumerate()
                .skip(from + 1)
                .take(MAX_GAP_SCAN + 1)
            {
                if tokens.get(prev).is_none_or(|p| p.clause_end) {
                    break;
                }
                if Phrase::accepts(slot, token) && !next.contains(&j) {
                    next.push(j);
                }
                // Going further makes `token` part of the gap.
                if listed(GAP_BLOCKERS, token) {
                    break;
                }
                if !listed(GLUE, token) {
                    extra += 1;
                    if extra > MAX_GAP {
                        break;
                    }
                }
                prev = j;
            }
        }
        if next.is_empty() {
            return false;
        }
        frontier = next;
    }
    true
}

/// Whether a negation in the same clause, at most [`NEGATION_WINDOW`] words
/// before `start`, negates the match starting there.
fn is_negated(tokens: &[Token], start: usize) -> bool {
    let mut between = 0;
    let mut j = start;
    while j > 0 {
        j -= 1;
        let Some(t) = tokens.get(j) else {
            return false;
        };
        if t.clause_end || listed(NEGATION_BREAKERS, t) {
            return false;
        }
        if listed(NEGATIONS, t) {
            let answer = t.text == "no"
                && tokens
                    .get(j + 1)
                    .is_some_and(|n| listed(ANSWER_STARTERS, n));
            let rhetorical = j
                .checked_sub(1)
                .and_then(|k| tokens.get(k))
                .is_some_and(|p| p.text == "why" && !p.clause_end);
            return !answer && !rhetorical;
        }
        between += 1;
        if between > NEGATION_WINDOW {
            return false;
        }
    }
    false
}

/// Recognises a caller asking for a human, with precompiled phrases (syntax and
/// rules in the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanRequestMatcher {
    phrases: Vec<Phrase>,
}

impl Default for HumanRequestMatcher {
    /// Compiled [`DEFAULT_HUMAN_REQUEST_PHRASES`].
    fn default() -> Self {
        Self::lossy(DEFAULT_HUMAN_REQUEST_PHRASES)
    }
}

impl HumanRequestMatcher {
    /// Compiles `phrases`. An empty list matches nothing.
    ///
    /// # Errors
    /// [`InvalidPhrase`] for the first phrase that does not compile.
    pub fn new<S: AsRef<str>>(phrases: &[S]) -> Result<Self, InvalidPhrase> {
        let phrases = phrases
            .iter()
            .enumerate()
            .map(|(index, p)| {
                Phrase::compile(p.as_ref()).map_err(|problem| InvalidPhrase { index, problem })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { phrases })
    }

    /// Compiles `phrases`, skipping those that do not compile.
    #[must_use]
    pub fn lossy<S: AsRef<str>>(phrases: &[S]) -> Self {
        Self {
            phrases: phrases
                .iter()
                .filter_map(|p| Phrase::compile(p.as_ref()).ok())
                .collect(),
        }
    }

    /// The first phrase (as configured, trimmed) that `utterance` matches.
    #[must_use]
    pub fn find(&self, utterance: &str) -> Option<&str> {
        if self.phrases.is_empty() {
            return None;
        }
        let tokens = tokenize(utterance);
        self.phrases
            .iter()
            .find(|p| p.matches(&tokens))
            .map(|p| p.source.as_str())
    }

    /// Whether `utterance` asks for a human.
    #[must_use]
    pub fn is_match(&self, utterance: &str) -> bool {
        self.find(utterance).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(score: f64) -> Option<Sentiment> {
        Some(Sentiment::new(score).expect("valid score"))
    }

    fn skill(name: &str) -> Skill {
        Skill::parse(name).expect("valid skill")
    }

    fn caller(text: &str, score: f64) -> TurnSnapshot {
        TurnSnapshot::caller(text, s(score))
    }

    fn bot(progress: bool) -> TurnSnapshot {
        TurnSnapshot::bot("Let me check that for you.", progress)
    }

    fn eval(policy: &EscalationPolicy, turns: &[TurnSnapshot]) -> EscalationDecision {
        policy.evaluate(&EscalationInput {
            turns,
            customer_tier: CustomerTier::Standard,
        })
    }

    fn reason(policy: &EscalationPolicy, turns: &[TurnSnapshot]) -> Option<EscalationReason> {
        eval(policy, turns).reason()
    }

    /// Only the named rule enabled, with its default settings.
    fn only(reason: EscalationReason) -> EscalationPolicy {
        let d = EscalationPolicy::default();
        let mut p = EscalationPolicy::disabled();
        match reason {
            EscalationReason::VipCustomer => p.vip_direct_to_human = true,
            EscalationReason::HumanRequested => p.human_request_phrases = d.human_request_phrases,
            EscalationReason::SustainedNegativeSentiment => {
                p.consecutive_negative_turns = d.consecutive_negative_turns;
            }
            EscalationReason::SharpSentimentDrop => p.sharp_drop = d.sharp_drop,
            EscalationReason::NoProgress => {
                p.max_turns_without_progress = d.max_turns_without_progress;
            }
            // Not a policy rule: the conversation engine decides it.
            EscalationReason::ServiceFailure => {}
        }
        p
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let p = EscalationPolicy::default();
        assert_eq!(p.negative_threshold, -0.5);
        assert_eq!(p.consecutive_negative_turns, 2);
        assert_eq!(p.sharp_drop, 0.8);
        assert_eq!(p.max_turns_without_progress, 4);
        assert!(!p.vip_direct_to_human);
        assert!(p.validate().is_ok());
        assert!(EscalationPolicy::disabled().validate().is_ok());
        assert_eq!(
            HumanRequestMatcher::new(DEFAULT_HUMAN_REQUEST_PHRASES).expect("compiles"),
            HumanRequestMatcher::default()
        );
    }

    #[test]
    fn validate_rejects_nonsense() {
        let bad = |f: fn(&mut EscalationPolicy)| {
            let mut p = EscalationPolicy::default();
            f(&mut p);
            p.validate().expect_err("invalid")
        };
        assert_eq!(
            bad(|p| p.negative_threshold = -1.5),
            InvalidEscalationPolicy::NegativeThreshold(-1.5)
        );
        assert!(matches!(
            bad(|p| p.negative_threshold = f64::NAN),
            InvalidEscalationPolicy::NegativeThreshold(_)
        ));
        assert_eq!(
            bad(|p| p.sharp_drop = -0.1),
            InvalidEscalationPolicy::SharpDrop(-0.1)
        );
        assert_eq!(
            bad(|p| p.sharp_drop = 2.5),
            InvalidEscalationPolicy::SharpDrop(2.5)
        );
        let err = bad(|p| p.human_request_phrases.push("  ".into()));
        let index = DEFAULT_HUMAN_REQUEST_PHRASES.len();
        assert_eq!(
            err,
            InvalidEscalationPolicy::Phrase(InvalidPhrase {
                index,
                problem: PhraseProblem::Empty
            })
        );
        assert_eq!(
            err.to_string(),
            format!("human_request_phrases[{index}] has no words")
        );
        for (phrase, problem) in [
            ("=", PhraseProblem::Empty),
            ("?!", PhraseProblem::Empty),
            ("talk||speak human", PhraseProblem::EmptyAlternative),
            ("talk|real-person", PhraseProblem::MultiWordAlternative),
            ("a b c d e f g h i", PhraseProblem::TooManyWords),
        ] {
            assert_eq!(
                HumanRequestMatcher::new(&[phrase]),
                Err(InvalidPhrase { index: 0, problem }),
                "{phrase:?}"
            );
        }
    }

    #[test]
    fn policy_serde_fills_defaults_and_uses_snake_case() {
        let p: EscalationPolicy = serde_json::from_str(
            r#"{"vip_direct_to_human": true, "skills_by_reason": {"no_progress": ["tier2"]}}"#,
        )
        .expect("de");
        assert!(p.vip_direct_to_human);
        assert_eq!(p.consecutive_negative_turns, 2);
        assert_eq!(
            p.skills_by_reason.get(&EscalationReason::NoProgress),
            Some(&vec![skill("tier2")])
        );
        let back: EscalationPolicy =
            serde_json::from_str(&serde_json::to_string(&p).expect("ser")).expect("de");
        assert_eq!(back, p);
        for r in EscalationReason::ALL {
            assert_eq!(
                serde_json::to_string(&r).expect("ser"),
                format!("\"{}\"", r.as_str())
            );
        }
        let d = EscalationDecision::Escalate {
            reason: EscalationReason::HumanRequested,
            required_skills: vec![skill("billing")],
        };
        assert_eq!(
            serde_json::to_string(&d).expect("ser"),
            r#"{"decision":"escalate","reason":"human_requested","required_skills":["billing"]}"#
        );
    }

    #[test]
    fn reason_order_is_priority_order() {
        let mut sorted = EscalationReason::ALL;
        sorted.sort();
        assert_eq!(sorted, EscalationReason::ALL);
        assert_eq!(
            EscalationReason::SustainedNegativeSentiment.as_str(),
            "sustained_negative_sentiment"
        );
    }

    #[test]
    fn vip_escalates_immediately_only_when_configured() {
        let p = only(EscalationReason::VipCustomer);
        for (tier, expected) in [
            (CustomerTier::Vip, Some(EscalationReason::VipCustomer)),
            (CustomerTier::Premium, None),
            (CustomerTier::Standard, None),
        ] {
            let d = p.evaluate(&EscalationInput {
                turns: &[],
                customer_tier: tier,
            });
            assert_eq!(d.reason(), expected, "{tier:?}");
        }
        let off = EscalationPolicy::default();
        let d = off.evaluate(&EscalationInput {
            turns: &[],
            customer_tier: CustomerTier::Vip,
        });
        assert_eq!(d, EscalationDecision::Stay);
    }

    #[test]
    fn human_request_only_counts_in_the_latest_caller_turn() {
        let p = only(EscalationReason::HumanRequested);
        let mut turns = vec![TurnSnapshot::bot("Hi, how can I help?", false)];
        turns.push(TurnSnapshot::caller("I have a billing question", None));
        assert_eq!(reason(&p, &turns), None);
        turns.push(TurnSnapshot::caller("can I talk to a real person", None));
        assert_eq!(reason(&p, &turns), Some(EscalationReason::HumanRequested));
        // A bot turn after the request does not hide it.
        turns.push(TurnSnapshot::bot("Sure, one moment.", false));
        assert_eq!(reason(&p, &turns), Some(EscalationReason::HumanRequested));
        // The caller moved on.
        turns.push(TurnSnapshot::caller("actually never mind, it's fine", None));
        assert_eq!(reason(&p, &turns), None);
        // A bot saying "agent" is not a caller request.
        let bot_only = [TurnSnapshot::bot("I can transfer you to an agent.", false)];
        assert_eq!(reason(&p, &bot_only), None);
    }

    #[test]
    fn sustained_negative_fires_on_the_nth_turn_not_before() {
        let p = only(EscalationReason::SustainedNegativeSentiment);
        let mut turns = vec![caller("this is ridiculous", -0.6), bot(false)];
        assert_eq!(reason(&p, &turns), None, "one turn is not a pattern");
        turns.push(caller("still wrong", -0.5));
        assert_eq!(
            reason(&p, &turns),
            Some(EscalationReason::SustainedNegativeSentiment),
            "threshold is inclusive; bot turns don't break the streak"
        );
        let broken = [
            caller("awful", -0.9),
            caller("ok", -0.49),
            caller("awful", -0.9),
        ];
        assert_eq!(reason(&p, &broken), None, "streak must end at the latest");
    }

    #[test]
    fn unscored_caller_turns_are_skipped() {
        let p = only(EscalationReason::SustainedNegativeSentiment);
        let turns = [
            caller("no!", -0.7),
            TurnSnapshot::caller("(inaudible)", None),
            caller("this is useless", -0.8),
            TurnSnapshot::caller("hello?", None),
        ];
        assert_eq!(
            reason(&p, &turns),
            Some(EscalationReason::SustainedNegativeSentiment)
        );
        let three = EscalationPolicy {
            consecutive_negative_turns: 3,
            ..p
        };
        assert_eq!(reason(&three, &turns), None, "only two scored turns");
    }

    #[test]
    fn sharp_drop_needs_the_size_and_a_negative_landing() {
        let p = only(EscalationReason::SharpSentimentDrop);
        assert_eq!(reason(&p, &[caller("great", 0.5)]), None, "needs two");
        let exact = [caller("great", 0.5), bot(true), caller("what?!", -0.3)];
        assert_eq!(
            reason(&p, &exact),
            Some(EscalationReason::SharpSentimentDrop)
        );
        let small = [caller("great", 0.5), caller("hmm", -0.29)];
        assert_eq!(reason(&p, &small), None, "a drop of 0.79");
        let to_neutral = [caller("fantastic", 1.0), caller("ok", 0.0)];
        assert_eq!(reason(&p, &to_neutral), None, "lands neutral");
        let older = [
            caller("great", 0.9),
            caller("bad", -0.3),
            caller("meh", -0.2),
        ];
        assert_eq!(reason(&p, &older), None, "only the last two count");
    }

    #[test]
    fn no_progress_fires_after_the_configured_bot_turns() {
        let p = only(EscalationReason::NoProgress);
        let mut turns = vec![TurnSnapshot::bot("Hello, this is Acme.", false)];
        for i in 1..=4 {
            turns.push(caller("I need to change my address", 0.0));
            turns.push(bot(false));
            let expected = (i == 4).then_some(EscalationReason::NoProgress);
            assert_eq!(reason(&p, &turns), expected, "after {i} bot replies");
        }
        // A bot turn with progress resets the count.
        let mut reset = turns.clone();
        reset.push(caller("ok", 0.0));
        reset.push(bot(true));
        assert_eq!(reason(&p, &reset), None);
        let before_caller = [bot(false), bot(false), bot(false), bot(false)];
        assert_eq!(reason(&p, &before_caller), None, "greetings don't count");
        let mixed = [
            caller("hi", 0.0),
            bot(false),
            bot(true),
            bot(false),
            bot(false),
        ];
        assert_eq!(reason(&p, &mixed), None);
    }

    #[test]
    fn rules_fire_in_priority_order() {
        let mut p = EscalationPolicy {
            vip_direct_to_human: true,
            ..EscalationPolicy::default()
        };
        let everything = [
            caller("I'm so angry", 0.6),
            bot(false),
            caller("terrible", -0.9),
            bot(false),
            caller("useless", -0.9),
            bot(false),
            bot(false),
            caller("get me a human", -0.95),
            bot(false),
        ];
        let run_as = |p: &EscalationPolicy, tier| {
            p.evaluate(&EscalationInput {
                turns: &everything,
                customer_tier: tier,
            })
            .reason()
        };
        assert_eq!(
            run_as(&p, CustomerTier::Vip),
            Some(EscalationReason::VipCustomer)
        );
        let run = |p: &EscalationPolicy| run_as(p, CustomerTier::Standard);
        assert_eq!(run(&p), Some(EscalationReason::HumanRequested));
        p.human_request_phrases.clear();
        assert_eq!(run(&p), Some(EscalationReason::SustainedNegativeSentiment));
        p.consecutive_negative_turns = 0;
        let drop = [caller("great", 0.6), caller("what", -0.5), bot(false)];
        assert_eq!(
            reason(&p, &drop),
            Some(EscalationReason::SharpSentimentDrop)
        );
        p.sharp_drop = 0.0;
        assert_eq!(run(&p), Some(EscalationReason::NoProgress));
        p.max_turns_without_progress = 0;
        assert_eq!(run(&p), None);
    }

    #[test]
    fn skills_are_attached_deduplicated_and_sorted() {
        let mut p = EscalationPolicy::default();
        p.skills_by_reason.insert(
            EscalationReason::HumanRequested,
            vec![skill("billing"), skill("vip"), skill("billing")],
        );
        p.vip_skill = Some(skill("vip"));
        let turns = [caller("agent please", 0.0)];
        let vip = p.evaluate(&EscalationInput {
            turns: &turns,
            customer_tier: CustomerTier::Vip,
        });
        assert_eq!(
            vip,
            EscalationDecision::Escalate {
                reason: EscalationReason::HumanRequested,
                required_skills: vec![skill("billing"), skill("vip")],
            }
        );
        p.vip_skill = Some(skill("concierge"));
        let vip = p.evaluate(&EscalationInput {
            turns: &turns,
            customer_tier: CustomerTier::Vip,
        });
        assert_eq!(
            vip,
            EscalationDecision::Escalate {
                reason: EscalationReason::HumanRequested,
                required_skills: vec![skill("billing"), skill("concierge"), skill("vip")],
            }
        );
        let standard = eval(&p, &turns);
        assert_eq!(
            standard,
            EscalationDecision::Escalate {
                reason: EscalationReason::HumanRequested,
                required_skills: vec![skill("billing"), skill("vip")],
            },
            "vip_skill only for VIPs"
        );
        let other = eval(&p, &[caller("bad", -0.9), caller("worse", -0.9)]);
        assert_eq!(
            other,
            EscalationDecision::Escalate {
                reason: EscalationReason::SustainedNegativeSentiment,
                required_skills: vec![],
            }
        );
    }

    #[test]
    fn compiled_policy_agrees_with_evaluate() {
        let p = EscalationPolicy::default();
        let compiled = p.compile().expect("valid");
        assert_eq!(compiled.policy(), &p);
        let turns = [caller("speak to a supervisor now", -0.2)];
        let input = EscalationInput {
            turns: &turns,
            customer_tier: CustomerTier::Standard,
        };
        assert_eq!(compiled.evaluate(&input), p.evaluate(&input));
        assert!(compiled.matcher().is_match("operator"));
    }

    #[test]
    fn invalid_policy_is_applied_without_panicking() {
        let p = EscalationPolicy {
            negative_threshold: f64::NAN,
            sharp_drop: f64::NAN,
            human_request_phrases: vec!["".into(), "|".into(), "manager".into()],
            ..EscalationPolicy::default()
        };
        let turns = [caller("bad", -1.0), caller("worse", -1.0)];
        assert_eq!(eval(&p, &turns), EscalationDecision::Stay);
        assert_eq!(
            reason(&p, &[caller("get the manager", 0.0)]),
            Some(EscalationReason::HumanRequested),
            "valid phrases still apply"
        );
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize_utterance("Don’t — get me a HUMAN!!  now"),
            "dont get me a human now"
        );
        assert_eq!(normalize_utterance("  ¿¡ ... "), "");
        assert_eq!(
            normalize_utterance("real-person/agent"),
            "real person agent"
        );
    }

    #[test]
    fn matcher_accepts_realistic_requests() {
        let m = HumanRequestMatcher::default();
        for text in [
            "Can I speak to a REAL human please?",
            "I want to talk to a person.",
            "let me talk to someone",
            "Agent!",
            "agent. agent. AGENT.",
            "Representative",
            "a real person, please",
            "Operator?",
            "get me a human",
            "No, get me a human.",
            "no get me a human",
            "Just transfer me to somebody who can actually help",
            "put me through to your supervisor",
            "I need a manager right now",
            "I'd like to speak with an actual live human being",
            "Is there a human I can talk to?",
            "I don’t want a bot, I want a human",
            "i dont need a bot i need a person",
            "I don't know, just connect me to an agent",
            "why don't you get me a manager",
            "can I be transferred to a representative",
            "this is useless. Speak to manager.",
            "Hey can you escalate this",
            "I wanna talk to one of your agents",
        ] {
            assert!(m.is_match(text), "should match: {text:?}");
        }
    }

    #[test]
    fn matcher_rejects_non_requests() {
        let m = HumanRequestMatcher::default();
        for text in [
            "I don't want to talk to an agent",
            "I do not need to speak to a human, thanks",
            "no need for a manager",
            "no need to transfer me to anyone",
            "Are you a real person?",
            "Are you human?",
            "my insurance agent told me to call",
            "I'm the office manager here",
            "I'd like to talk about my travel agent's booking",
            "you talk like a human",
            "I work in human resources",
            "the agentic workflow broke",
            "it's for humanity's sake",
            "I spoke to someone yesterday about this",
            "Can you check my balance?",
            "",
            "I wouldn't want to bother a supervisor with this",
            "I'd rather not speak to anyone",
        ] {
            assert!(
                !m.is_match(text),
                "should not match: {text:?} (matched {:?})",
                m.find(text)
            );
        }
    }

    #[test]
    fn matcher_uses_whole_words_and_negation_window() {
        let m = HumanRequestMatcher::new(&["human", "agent"]).expect("compiles");
        assert!(m.is_match("human"));
        assert!(!m.is_match("humanity"));
        assert!(!m.is_match("agentic"));
        assert!(!m.is_match("not a human"));
        assert!(m.is_match("not now, a human"), "comma ends the negation");
        assert!(m.is_match("nope human"));
        // Three words between negation and match: negated; four: not.
        assert!(!m.is_match("no one two three agent"));
        assert!(m.is_match("no one two three four agent"));
        assert_eq!(m.find("get me a human"), Some("human"));
        assert!(
            !HumanRequestMatcher::new::<&str>(&[])
                .expect("ok")
                .is_match("human")
        );
    }

    #[test]
    fn matcher_gap_rules() {
        let m = HumanRequestMatcher::new(&["speak human"]).expect("compiles");
        assert!(m.is_match("speak to a human"));
        assert!(m.is_match("speak with two humble human"), "two extra words");
        assert!(!m.is_match("speak with three very humble human"), "three");
        assert!(
            m.is_match("speak to the a an to with human"),
            "glue is free"
        );
        assert!(!m.is_match("speak. human"), "no match across a clause");
        assert!(!m.is_match("human speak"), "order matters");
        assert!(!m.is_match("speak about the human"), "blocked gap");
        let natural = HumanRequestMatcher::new(&["speak to a human"]).expect("compiles");
        assert!(natural.is_match("can I speak to a REAL human please"));
        assert!(
            !natural.is_match("speak with a human"),
            "every word is needed"
        );
    }

    fn arb_turn() -> impl Strategy<Value = TurnSnapshot> {
        (
            prop::sample::select(vec![
                Speaker::Caller,
                Speaker::Bot,
                Speaker::HumanAgent,
                Speaker::System,
            ]),
            prop_oneof![
                "\\PC{0,60}",
                prop::sample::select(vec![
                    "get me a human".to_owned(),
                    "no, not an agent".to_owned(),
                    "why is this so hard".to_owned(),
                ]),
            ],
            prop::option::of(-1.0f64..=1.0),
            any::<bool>(),
        )
            .prop_map(|(speaker, text, score, made_progress)| TurnSnapshot {
                speaker,
                text,
                sentiment: score.map(Sentiment::saturating),
                made_progress,
            })
    }

    fn arb_tier() -> impl Strategy<Value = CustomerTier> {
        prop::sample::select(vec![
            CustomerTier::Standard,
            CustomerTier::Premium,
            CustomerTier::Vip,
        ])
    }

    proptest! {
        #[test]
        fn disabled_policy_always_stays(turns in prop::collection::vec(arb_turn(), 0..20), tier in arb_tier()) {
            let p = EscalationPolicy::disabled();
            let d = p.evaluate(&EscalationInput { turns: &turns, customer_tier: tier });
            prop_assert_eq!(d, EscalationDecision::Stay);
        }

        #[test]
        fn evaluate_never_panics_and_is_deterministic(
            turns in prop::collection::vec(arb_turn(), 0..20),
            tier in arb_tier(),
            threshold in -1.0f64..=1.0,
            n in 0usize..4,
            drop in 0.0f64..=2.0,
            max in 0usize..5,
            vip in any::<bool>(),
        ) {
            let p = EscalationPolicy {
                negative_threshold: threshold,
                consecutive_negative_turns: n,
                sharp_drop: drop,
                max_turns_without_progress: max,
                vip_direct_to_human: vip,
                ..EscalationPolicy::default()
            };
            let input = EscalationInput { turns: &turns, customer_tier: tier };
            let first = p.evaluate(&input);
            let cloned = turns.clone();
            let again = p.evaluate(&EscalationInput { turns: &cloned, customer_tier: tier });
            prop_assert_eq!(&first, &again);
            let compiled = p.compile().expect("valid");
            prop_assert_eq!(&compiled.evaluate(&input), &first);
        }

        #[test]
        fn matcher_never_panics(text in "\\PC{0,200}", phrase in "\\PC{0,30}") {
            let _ = HumanRequestMatcher::default().find(&text);
            let _ = HumanRequestMatcher::lossy(&[phrase]).find(&text);
        }
    }
}
