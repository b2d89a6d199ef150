//! Live calls: what the media endpoint runs once a stream is authenticated —
//! the call's persona and customer loaded, the runtime wired to the stores
//! (transcript, sentiment, context) and to the call service (escalation,
//! transfer, hang-up).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use iace_domain::call::Call;
use iace_domain::conversation::Turn;
use iace_domain::conversation::engine::HangUpReason;
use iace_domain::escalation::{CompiledEscalationPolicy, EscalationReason};
use iace_domain::memory::MemoryConfig;
use iace_domain::model::{CustomerTier, Persona, Skill, Style, Voice};
use iace_domain::ports::{
    CallLocator, CallRepository, Clock, CustomerRepository, Embedder, MemoryStore,
    MemoryStoreExt as _, PatternFilter, PatternStore, PersonaRepository, TranscriptRepository,
    WebhookInbox,
};
use iace_domain::{
    AgentId, CallId, CustomerId, Language, OrgId, PersonaId, Sentiment, TranscriptEntry,
    TranscriptEntryId,
};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::pacer::MediaOut;
use super::runtime::{
    CallControl, CallReport, CallSetup, ContextPattern, MediaIn, ReplyContext, VoiceConfig,
    VoicePorts, run_call,
};
use super::token::{MediaTokens, TokenError};
use crate::calls::CallService;
use crate::error::AppError;
use crate::postcall::{self, CallEnded};

/// Learned patterns offered per reply.
const PATTERNS_PER_TURN: u32 = 3;

/// The stores a live call reads and writes.
#[derive(Clone)]
pub struct VoiceStores {
    /// Calls (tenant-less look-up of the streamed call).
    pub calls: Arc<dyn CallRepository>,
    /// Personas.
    pub personas: Arc<dyn PersonaRepository>,
    /// Customers (the caller's tier).
    pub customers: Arc<dyn CustomerRepository>,
    /// Customer memories.
    pub memories: Arc<dyn MemoryStore>,
    /// Learned patterns.
    pub patterns: Arc<dyn PatternStore>,
    /// Embeds a turn for memory and pattern search.
    pub embedder: Arc<dyn Embedder>,
    /// Transcripts.
    pub transcripts: Arc<dyn TranscriptRepository>,
    /// Where the work after the call is recorded (durably).
    pub inbox: Arc<dyn WebhookInbox>,
}

impl std::fmt::Debug for VoiceStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceStores").finish_non_exhaustive()
    }
}

/// Runs the live calls of this instance.
#[derive(Clone)]
pub struct VoiceService {
    stores: VoiceStores,
    calls: Arc<CallService>,
    ports: VoicePorts,
    config: VoiceConfig,
    tokens: MediaTokens,
    policy: Arc<CompiledEscalationPolicy>,
    memory: MemoryConfig,
    clock: Arc<dyn Clock>,
    live: Arc<Mutex<HashSet<CallId>>>,
}

impl std::fmt::Debug for VoiceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceService")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// A call whose stream was authenticated, ready to run. While it exists, no
/// second stream for the call opens on this instance.
#[derive(Debug)]
pub struct OpenCall {
    /// The call.
    pub call: Call,
    /// Who speaks for the organisation.
    pub persona: Persona,
    /// The caller's tier.
    pub tier: CustomerTier,
    _live: LiveGuard,
}

/// Marks a call as streaming on this instance until dropped.
#[derive(Debug)]
struct LiveGuard {
    call: CallId,
    live: Arc<Mutex<HashSet<CallId>>>,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&self.call);
        }
    }
}

impl VoiceService {
    /// Builds the service.
    #[must_use]
    #[allow(clippy::too_many_arguments)] // the composition root's one call
    pub fn new(
        stores: VoiceStores,
        calls: Arc<CallService>,
        ports: VoicePorts,
        config: VoiceConfig,
        tokens: MediaTokens,
        policy: Arc<CompiledEscalationPolicy>,
        memory: MemoryConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            stores,
            calls,
            ports,
            config,
            tokens,
            policy,
            memory,
            clock,
            live: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// How many calls stream on this instance now.
    #[must_use]
    pub fn live_calls(&self) -> usize {
        self.live.lock().map_or(0, |live| live.len())
    }

    /// The runtime's settings.
    #[must_use]
    pub const fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// A media-stream token for `call` (what answered and dialled calls
    /// carry; the simulator uses it to open its own stream).
    #[must_use]
    pub fn issue_token(&self, call: CallId) -> String {
        self.tokens.issue(call, self.clock.now())
    }

    /// The call a media-stream token opens.
    ///
    /// # Errors
    /// [`TokenError`] when it is malformed, forged or expired.
    pub fn authenticate(&self, token: &str) -> Result<CallId, TokenError> {
        self.tokens.verify(token, self.clock.now())
    }

    /// Loads what the call needs: the call itself (it must not have ended),
    /// its persona (a built-in one when it has none) and the caller's tier.
    ///
    /// # Errors
    /// NotFound; Conflict (`call_ended`) for a call that is over,
    /// (`stream_already_open`) for a call already streaming here; store
    /// errors.
    pub async fn open(&self, id: CallId) -> Result<OpenCall, AppError> {
        let call = self
            .stores
            .calls
            .locate(&CallLocator::Id(id))
            .await?
            .ok_or(AppError::NotFound { entity: "call" })?;
        if call.status.is_terminal() {
            return Err(AppError::Conflict {
                code: "call_ended",
                message: format!("call {id} has ended"),
            });
        }
        let persona = match call.persona_id {
            Some(persona) => self.stores.personas.get(call.org_id, persona).await?,
            None => default_persona(call.org_id),
        };
        let tier = match call.customer_id {
            Some(customer) => self
                .stores
                .customers
                .get(call.org_id, customer)
                .await
                .map(|c| c.tier)
                .unwrap_or_default(),
            None => CustomerTier::default(),
        };
        let claimed = self.live.lock().is_ok_and(|mut live| live.insert(id));
        if !claimed {
            return Err(AppError::Conflict {
                code: "stream_already_open",
                message: format!("call {id} already has a media stream"),
            });
        }
        Ok(OpenCall {
            call,
            persona,
            tier,
            _live: LiveGuard {
                call: id,
                live: self.live.clone(),
            },
        })
    }

    /// Runs the call on its media stream until it ends.
    pub async fn run(
        &self,
        open: OpenCall,
        media_in: mpsc::Receiver<MediaIn>,
        media_out: mpsc::Sender<MediaOut>,
    ) -> CallReport {
        let control = Arc::new(LiveCall {
            org: open.call.org_id,
            call: open.call.id,
            customer: open.call.customer_id,
            stores: self.stores.clone(),
            calls: self.calls.clone(),
            memory: self.memory.clone(),
            clock: self.clock.clone(),
        });
        let setup = CallSetup {
            persona: open.persona,
            tier: open.tier,
            policy: self.policy.clone(),
        };
        let (org_id, call_id) = (open.call.org_id, open.call.id);
        // The call's span: its stages (replies, the model, speech) are its
        // children, and every log line inside carries the call's id.
        let span = tracing::info_span!(
            "call",
            call_id = %call_id,
            org_id = %org_id,
            direction = open.call.direction.as_str(),
        );
        let report = run_call(
            setup,
            self.ports.clone(),
            control,
            self.config.clone(),
            media_in,
            media_out,
        )
        .instrument(span)
        .await;
        let ended = CallEnded {
            org_id,
            call_id,
            keys: report.keys.iter().collect(),
            escalation: report.escalation,
            transferred_to: report.transferred_to,
            hung_up: report.hung_up,
            patterns_used: report.patterns_used.clone(),
            ended_at: self.clock.now(),
        };
        // Durable before this returns; retried briefly if the store hiccups.
        for attempt in 1..=3u64 {
            match postcall::enqueue(
                &*self.stores.inbox,
                &ended,
                self.clock.now(),
                self.config.post_call_delay,
            )
            .await
            {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(call_id = %call_id, attempt, error = %err, "could not record the post-call work");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                }
            }
        }
        report
    }
}

/// The persona of a call that has none (no experiment chose one).
fn default_persona(org: OrgId) -> Persona {
    let now = Utc::now();
    Persona {
        // Not stored: a placeholder identity.
        id: PersonaId::new(),
        org_id: org,
        name: "Assistant".into(),
        voice: Voice {
            name: String::new(),
            speed: 1.0,
        },
        system_prompt: "You are a helpful, friendly phone assistant for this company. Answer \
                        briefly and ask one question at a time."
            .into(),
        greeting: "Hello! How can I help you today?".into(),
        style: Style::default(),
        language: Language::default(),
        created_at: now,
        updated_at: now,
    }
}

/// One live call's link to the rest of the system.
struct LiveCall {
    org: OrgId,
    call: CallId,
    customer: Option<CustomerId>,
    stores: VoiceStores,
    calls: Arc<CallService>,
    memory: MemoryConfig,
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl CallControl for LiveCall {
    async fn context(&self, text: &str) -> Result<ReplyContext, AppError> {
        let embedding = match self.stores.embedder.embed(&[text.to_owned()]).await {
            Ok(mut embeddings) => embeddings.pop(),
            Err(err) => {
                tracing::warn!(error = %err, "the turn could not be embedded; context without search");
                None
            }
        };
        let memory = match self.customer {
            Some(customer) => {
                self.stores
                    .memories
                    .context(
                        self.org,
                        customer,
                        embedding.as_ref(),
                        self.clock.now(),
                        &self.memory,
                    )
                    .await?
                    .text
            }
            None => String::new(),
        };
        let patterns = match &embedding {
            Some(embedding) => self
                .stores
                .patterns
                .find_similar(
                    self.org,
                    embedding,
                    PATTERNS_PER_TURN,
                    &PatternFilter::default(),
                )
                .await?
                .into_iter()
                .map(|m| ContextPattern {
                    id: m.item.id,
                    trigger: m.item.trigger,
                    response: m.item.response,
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(ReplyContext { memory, patterns })
    }

    async fn record_turn(&self, turn: &Turn) -> Result<(), AppError> {
        let entry = TranscriptEntry {
            id: TranscriptEntryId::new(),
            call_id: self.call,
            sequence: turn.sequence,
            speaker: turn.speaker,
            text: turn.text.clone(),
            started_ms: turn.started_ms,
            ended_ms: turn.ended_ms,
            sentiment: turn.sentiment,
            interrupted: turn.interrupted,
        };
        Ok(self.stores.transcripts.append(self.org, &[entry]).await?)
    }

    async fn record_sentiment(&self, turn: u32, sentiment: Sentiment) -> Result<(), AppError> {
        // The turn's append may still be on its way: try again briefly.
        for attempt in 0..5u64 {
            if self
                .stores
                .transcripts
                .set_sentiment(self.org, self.call, turn, sentiment)
                .await?
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
        }
        tracing::warn!(turn, "no transcript entry to score");
        Ok(())
    }

    async fn find_agent(
        &self,
        reason: EscalationReason,
        skills: &[Skill],
    ) -> Result<Option<AgentId>, AppError> {
        self.calls
            .escalate(self.org, self.call, reason, skills)
            .await
    }

    async fn transfer(&self, agent: AgentId, _reason: EscalationReason) -> Result<(), AppError> {
        self.calls
            .transfer_escalated(self.org, self.call, agent)
            .await
    }

    async fn hang_up(&self, _reason: HangUpReason) -> Result<(), AppError> {
        self.calls.hang_up_call(self.org, self.call).await
    }
}
