//! After the call: what each call teaches, worked out in the background.
//!
//! When a live call ends, the runtime records a [`CallEnded`] in the
//! durable inbox (the same table, claims, retries and dead letters as the
//! webhooks; provider [`INTERNAL_PROVIDER`]), due a few seconds later so the
//! hang-up webhook and the last transcript writes land first. The webhook
//! worker — on any instance, after a restart too — hands it to
//! [`PostCallService::process`], which:
//!
//! 1. reads the call and its transcript (stored turn by turn during the call,
//!    with each caller turn's sentiment);
//! 2. sums the caller's sentiment up and decides the outcome (an outcome set
//!    through the API wins): escalated when it went to a human, a callback
//!    requested when nobody was free and a message was taken, converted
//!    when the caller pressed the conversion key, abandoned when the caller
//!    said nothing, resolved when the last word was not negative, otherwise
//!    unresolved;
//! 3. asks the language model for a short summary (an extract of what the
//!    caller said when the model gives nothing usable);
//! 4. stores outcome and sentiment on the call, counts the call for its
//!    experiment variant (a conversion when the experiment's metric says so),
//!    and counts a use (and a success when the
//!    outcome is one) for every learned pattern whose prompt the caller
//!    heard;
//! 5. on a successful call, keeps up to a few exchanges (a caller turn of a
//!    few words and the reply that followed it, not interrupted, after which
//!    the caller went on and was not negative) as new candidate patterns — embedded, and skipped
//!    when a near-identical one exists;
//! 6. stores a memory snapshot of the call for the customer (the summary,
//!    embedded).
//!
//! Every write is idempotent per call (the experiment and usage counts by
//! call, the memory and candidate ids derived from the call id), so a retry
//! after a crash halfway counts nothing twice.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use iace_domain::call::{Call, CallOutcome};
use iace_domain::conversation::engine::HangUpReason;
use iace_domain::escalation::EscalationReason;
use iace_domain::model::{CustomerMemory, Importance, LearnedPattern, PatternKind, Speaker};
use iace_domain::ports::{
    CallLocator, CallRepository, ChatChunk, ChatMessage, ChatRequest, ChatRole, Clock, Embedder,
    ExperimentRepository, LanguageModel, MemoryStore, NewInboxEvent, PatternFilter, PatternStore,
    StoreError, TranscriptRepository, WebhookInbox,
};
use iace_domain::sentiment::{SentimentTracker, TrackerConfig};
use iace_domain::{AgentId, CallId, MemoryId, OrgId, PatternId, TranscriptEntry};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::calls::update_call;
use crate::error::AppError;

/// A caller turn shorter than this is not kept as a pattern's trigger.
const MIN_TRIGGER_WORDS: usize = 3;

/// The inbox provider name of work we give ourselves.
pub const INTERNAL_PROVIDER: &str = "iace";

/// The inbox event type of a finished live call.
pub const CALL_ENDED: &str = "call.ended";

/// What the runtime knew when a live call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEnded {
    /// The organisation.
    pub org_id: OrgId,
    /// The call.
    pub call_id: CallId,
    /// Keys the caller pressed, in order.
    pub keys: String,
    /// Why it went to a human, if it did.
    pub escalation: Option<EscalationReason>,
    /// The human it went to.
    pub transferred_to: Option<AgentId>,
    /// Why the agent hung up, if it did.
    pub hung_up: Option<HangUpReason>,
    /// Learned patterns in the prompts of replies the caller heard.
    pub patterns_used: Vec<PatternId>,
    /// When the media stream ended.
    pub ended_at: DateTime<Utc>,
}

/// Records `ended` for processing from `process_after` on (durably: it
/// survives a restart). Recording the same call twice is a no-op.
///
/// # Errors
/// Store errors.
pub async fn enqueue(
    inbox: &dyn WebhookInbox,
    ended: &CallEnded,
    now: DateTime<Utc>,
    process_after: std::time::Duration,
) -> Result<(), AppError> {
    let payload = serde_json::to_value(ended).map_err(|err| AppError::Internal {
        source: Box::new(err),
    })?;
    inbox
        .record(
            &NewInboxEvent {
                provider: INTERNAL_PROVIDER.to_owned(),
                provider_event_id: format!("{CALL_ENDED}:{}", ended.call_id),
                event_type: CALL_ENDED.to_owned(),
                payload,
                occurred_at: Some(ended.ended_at),
                received_at: now,
            },
            now + chrono::Duration::from_std(process_after).unwrap_or(chrono::Duration::zero()),
        )
        .await?;
    Ok(())
}

/// Settings of the work after a call.
#[derive(Debug, Clone, PartialEq)]
pub struct PostCallConfig {
    /// The key that means "converted" (say, "press 1 to confirm").
    pub conversion_key: Option<char>,
    /// New candidate patterns kept per call.
    pub max_new_patterns: usize,
    /// A candidate at least this similar to an existing pattern is not kept.
    pub duplicate_similarity: f64,
    /// How long the summary may take.
    pub summary_timeout: std::time::Duration,
}

impl Default for PostCallConfig {
    fn default() -> Self {
        Self {
            conversion_key: Some('1'),
            max_new_patterns: 3,
            duplicate_similarity: 0.92,
            summary_timeout: std::time::Duration::from_secs(20),
        }
    }
}

/// What the work after a call did.
#[derive(Debug, Clone, PartialEq)]
pub struct PostCallResult {
    /// The outcome stored.
    pub outcome: CallOutcome,
    /// The summary.
    pub summary: String,
    /// Whether the experiment variant was counted now.
    pub experiment_counted: bool,
    /// Patterns whose use was counted now.
    pub patterns_counted: u32,
    /// New candidate patterns stored.
    pub new_patterns: usize,
    /// Whether a memory snapshot was stored.
    pub memory_stored: bool,
}

/// The stores and providers the work after a call uses.
#[derive(Clone)]
pub struct PostCallService {
    calls: Arc<dyn CallRepository>,
    transcripts: Arc<dyn TranscriptRepository>,
    experiments: Arc<dyn ExperimentRepository>,
    patterns: Arc<dyn PatternStore>,
    memories: Arc<dyn MemoryStore>,
    embedder: Arc<dyn Embedder>,
    llm: Arc<dyn LanguageModel>,
    clock: Arc<dyn Clock>,
    config: PostCallConfig,
}

impl std::fmt::Debug for PostCallService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostCallService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The stores [`PostCallService`] writes.
#[derive(Clone)]
pub struct PostCallStores {
    /// Calls.
    pub calls: Arc<dyn CallRepository>,
    /// Transcripts.
    pub transcripts: Arc<dyn TranscriptRepository>,
    /// Experiments (outcome counts).
    pub experiments: Arc<dyn ExperimentRepository>,
    /// Learned patterns.
    pub patterns: Arc<dyn PatternStore>,
    /// Customer memories.
    pub memories: Arc<dyn MemoryStore>,
}

impl std::fmt::Debug for PostCallStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostCallStores").finish_non_exhaustive()
    }
}

/// A UUID derived from `call` and `label` (stable across retries).
fn derived(call: CallId, label: &str) -> uuid::Uuid {
    let digest = Sha256::digest(format!("{call}|{label}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version-4-shaped id (random-looking, valid in every store).
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

impl PostCallService {
    /// Builds the service.
    #[must_use]
    pub fn new(
        stores: PostCallStores,
        embedder: Arc<dyn Embedder>,
        llm: Arc<dyn LanguageModel>,
        clock: Arc<dyn Clock>,
        config: PostCallConfig,
    ) -> Self {
        Self {
            calls: stores.calls,
            transcripts: stores.transcripts,
            experiments: stores.experiments,
            patterns: stores.patterns,
            memories: stores.memories,
            embedder,
            llm,
            clock,
            config,
        }
    }

    /// Does the work after one call (see the [module docs](self)).
    ///
    /// # Errors
    /// NotFound when the call is gone; store errors (the worker retries).
    pub async fn process(&self, ended: &CallEnded) -> Result<PostCallResult, AppError> {
        let call = self
            .calls
            .locate(&CallLocator::Id(ended.call_id))
            .await?
            .filter(|c| c.org_id == ended.org_id)
            .ok_or(AppError::NotFound { entity: "call" })?;
        let transcript = self.transcripts.for_call(call.org_id, call.id).await?;
        let now = self.clock.now();

        let mut tracker = SentimentTracker::new(TrackerConfig::default());
        for entry in transcript.iter().filter(|e| e.speaker == Speaker::Caller) {
            if let Some(sentiment) = entry.sentiment {
                tracker.push(sentiment);
            }
        }
        let sentiment = tracker.summary();
        let outcome = call
            .outcome
            .unwrap_or_else(|| self.outcome(ended, &transcript));
        let summary = self.summarise(&transcript).await;
        let call = update_call(&*self.calls, call, |c| {
            c.outcome = Some(outcome);
            c.sentiment = sentiment;
        })
        .await?;

        let escalated = ended.transferred_to.is_some() || call.transferred_to.is_some();
        let last_sentiment = sentiment.map(|s| s.last);
        let experiment_counted = match (call.experiment_id, call.variant_id) {
            (Some(experiment), Some(variant)) => {
                let counted = async {
                    let metric = self.experiments.get(call.org_id, experiment).await?.metric;
                    let converted = metric.achieved(outcome, escalated, last_sentiment);
                    self.experiments
                        .record_outcome(call.org_id, experiment, variant, call.id, converted)
                        .await
                };
                counted.await.or_else(|err| match err {
                    // The experiment was deleted meanwhile: nothing to count.
                    StoreError::NotFound { .. } => Ok(false),
                    other => Err(other),
                })?
            }
            _ => false,
        };
        let patterns_counted = if ended.patterns_used.is_empty() {
            0
        } else {
            self.patterns
                .record_usage(
                    call.org_id,
                    call.id,
                    &ended.patterns_used,
                    outcome.is_success(),
                    now,
                )
                .await?
        };
        let new_patterns = if outcome.is_success() {
            self.learn(&call, &transcript, now).await?
        } else {
            0
        };
        let memory_stored = self.remember(&call, &summary, outcome, now).await?;
        Ok(PostCallResult {
            outcome,
            summary,
            experiment_counted,
            patterns_counted,
            new_patterns,
            memory_stored,
        })
    }

    /// The outcome from what happened (see the [module docs](self)).
    fn outcome(&self, ended: &CallEnded, transcript: &[TranscriptEntry]) -> CallOutcome {
        let caller: Vec<&TranscriptEntry> = transcript
            .iter()
            .filter(|e| e.speaker == Speaker::Caller)
            .collect();
        // An escalation that found nobody is not one: the AI carried on, or
        // took a message.
        if ended.transferred_to.is_some() {
            return CallOutcome::Escalated;
        }
        if ended.hung_up == Some(HangUpReason::MessageTaken) {
            return CallOutcome::CallbackRequested;
        }
        if self
            .config
            .conversion_key
            .is_some_and(|key| ended.keys.contains(key))
        {
            return CallOutcome::Converted;
        }
        if caller.is_empty() || ended.hung_up == Some(HangUpReason::NoResponse) {
            return CallOutcome::Abandoned;
        }
        let last = caller
            .iter()
            .rev()
            .find_map(|e| e.sentiment)
            .map_or(0.0, |s| s.score());
        if last >= 0.0 {
            CallOutcome::Resolved
        } else {
            CallOutcome::Unresolved
        }
    }

    /// A short summary from the model; an extract of the caller's words when
    /// the model gives nothing usable.
    async fn summarise(&self, transcript: &[TranscriptEntry]) -> String {
        let conversation: String = transcript
            .iter()
            .filter(|e| matches!(e.speaker, Speaker::Caller | Speaker::Bot))
            .map(|e| {
                let who = if e.speaker == Speaker::Caller {
                    "Caller"
                } else {
                    "Agent"
                };
                format!("{who}: {}\n", e.text)
            })
            .collect();
        let extract = extract_summary(transcript);
        if conversation.is_empty() {
            return extract;
        }
        let request = ChatRequest {
            model: None,
            messages: vec![
                ChatMessage::new(
                    ChatRole::System,
                    "Summarise the call below for the next agent who speaks with this \
                     caller: what they wanted and how it ended, in at most two sentences. \
                     Plain text only.",
                ),
                ChatMessage::new(ChatRole::User, conversation),
            ],
            tools: Vec::new(),
            temperature: Some(0.2),
            max_tokens: Some(120),
        };
        let collect = async {
            let mut stream = self.llm.stream_chat(&request).await.ok()?;
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                match chunk.ok()? {
                    ChatChunk::Text { delta } => text.push_str(&delta),
                    ChatChunk::Finished { .. } => break,
                    ChatChunk::ToolCall { .. } => {}
                }
            }
            Some(text)
        };
        match tokio::time::timeout(self.config.summary_timeout, collect).await {
            Ok(Some(text)) if !text.trim().is_empty() => {
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            }
            _ => extract,
        }
    }

    /// Keeps the call's good exchanges as candidate patterns; returns how
    /// many were stored.
    async fn learn(
        &self,
        call: &Call,
        transcript: &[TranscriptEntry],
        now: DateTime<Utc>,
    ) -> Result<usize, AppError> {
        let mut exchanges = Vec::new();
        for (i, pair) in transcript.windows(2).enumerate() {
            let (asked, answered) = (&pair[0], &pair[1]);
            if asked.speaker != Speaker::Caller
                || answered.speaker != Speaker::Bot
                || answered.interrupted
                || asked.text.trim().is_empty()
                || answered.text.trim().is_empty()
            {
                continue;
            }
            // Something worth matching later (not "yes" or "okay").
            if asked.text.split_whitespace().count() < MIN_TRIGGER_WORDS {
                continue;
            }
            // The caller went on, and not upset: the reply worked.
            let reaction = transcript[i + 2..]
                .iter()
                .find(|e| e.speaker == Speaker::Caller);
            if reaction.is_some_and(|e| e.sentiment.is_none_or(|s| s.score() >= 0.0)) {
                exchanges.push((asked.text.trim(), answered.text.trim()));
            }
            if exchanges.len() == self.config.max_new_patterns {
                break;
            }
        }
        if exchanges.is_empty() {
            return Ok(0);
        }
        let triggers: Vec<String> = exchanges.iter().map(|(t, _)| (*t).to_owned()).collect();
        let embeddings = match self.embedder.embed(&triggers).await {
            Ok(embeddings) => embeddings,
            Err(err) => {
                tracing::warn!(error = %err, "candidate patterns could not be embedded; none kept");
                return Ok(0);
            }
        };
        let mut stored = 0;
        for (n, ((trigger, response), embedding)) in
            exchanges.into_iter().zip(embeddings).enumerate()
        {
            let id = PatternId::from_uuid(derived(call.id, &format!("pattern-{n}")));
            let similar = self
                .patterns
                .find_similar(call.org_id, &embedding, 1, &PatternFilter::default())
                .await?;
            if similar.first().is_some_and(|m| {
                m.item.id != id && m.similarity >= self.config.duplicate_similarity
            }) {
                continue;
            }
            self.patterns
                .upsert(&LearnedPattern {
                    id,
                    org_id: call.org_id,
                    kind: PatternKind::Resolution,
                    trigger: trigger.to_owned(),
                    response: response.to_owned(),
                    embedding: Some(embedding),
                    uses: 0,
                    successes: 0,
                    created_at: now,
                    last_used_at: None,
                })
                .await?;
            stored += 1;
        }
        Ok(stored)
    }

    /// Stores a memory snapshot of the call for its customer.
    async fn remember(
        &self,
        call: &Call,
        summary: &str,
        outcome: CallOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let Some(customer) = call.customer_id else {
            return Ok(false);
        };
        if summary.trim().is_empty() {
            return Ok(false);
        }
        let embedding = match self.embedder.embed(&[summary.to_owned()]).await {
            Ok(mut embeddings) => embeddings.pop(),
            Err(err) => {
                tracing::warn!(error = %err, "the call's memory is stored without an embedding");
                None
            }
        };
        let importance = if outcome.is_success() { 0.5 } else { 0.7 };
        self.memories
            .add(&CustomerMemory {
                id: MemoryId::from_uuid(derived(call.id, "memory")),
                org_id: call.org_id,
                customer_id: customer,
                call_id: Some(call.id),
                summary: summary.to_owned(),
                facts: Vec::new(),
                importance: Importance::new(importance).unwrap_or_default(),
                embedding,
                created_at: now,
            })
            .await?;
        Ok(true)
    }
}

/// What the caller said, shortened: the summary when the model gives none.
fn extract_summary(transcript: &[TranscriptEntry]) -> String {
    const MAX_CHARS: usize = 300;
    let said: Vec<&str> = transcript
        .iter()
        .filter(|e| e.speaker == Speaker::Caller)
        .map(|e| e.text.trim())
        .filter(|t| !t.is_empty())
        .collect();
    if said.is_empty() {
        return "The caller said nothing.".to_owned();
    }
    let mut summary = format!("The caller said: {}", said.join(" / "));
    if summary.chars().count() > MAX_CHARS {
        summary = summary.chars().take(MAX_CHARS - 1).collect::<String>() + "…";
    }
    summary
}
