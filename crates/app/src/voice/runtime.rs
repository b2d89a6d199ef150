//! One live call: the task that drives the conversation engine with the real
//! ports (see the [module docs](super)).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use iace_domain::conversation::Turn;
use iace_domain::conversation::chunker::{ChunkerConfig, SentenceChunker};
use iace_domain::conversation::engine::{
    Action, ContextUse, ConversationEngine, EngineConfig, Event, HangUpReason, LineKind, SpeechId,
    Stage,
};
use iace_domain::conversation::prompt::{PatternHint, PromptBudget, PromptInputs, build_prompt};
use iace_domain::escalation::{CompiledEscalationPolicy, EscalationReason};
use iace_domain::model::{CustomerTier, Persona, Skill};
use iace_domain::ports::{
    AudioFormat, ChatChunk, ChatRequest, LanguageModel, SentimentAnalyzer, SpeechRequest,
    SpeechToText, SttConfig, SttEvent, SttEventStream, TextToSpeech,
};
use iace_domain::{AgentId, PatternId, Sentiment};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::pacer::{self, MediaOut, PacerCommand, Pacing, Piece, parse_mark};
use super::timing::{TurnStamps, VoiceObserver};
use crate::error::AppError;

/// What comes in from the caller's media stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaIn {
    /// Caller audio (one frame).
    Audio(Bytes),
    /// A key press.
    Dtmf(char),
    /// A playback mark came back: everything sent before it was played.
    Mark(String),
    /// The stream stopped (the caller hung up, or the call was transferred).
    Stop,
}

/// A learned pattern offered to the model for a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextPattern {
    /// Which pattern (for learning which ones helped).
    pub id: PatternId,
    /// The situation.
    pub trigger: String,
    /// What worked.
    pub response: String,
}

/// What the model is told besides the conversation: the caller's memory and
/// the learned patterns for this turn, best first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplyContext {
    /// Memory lines ([`iace_domain::memory::MemoryContext`]'s text).
    pub memory: String,
    /// Patterns, best first.
    pub patterns: Vec<ContextPattern>,
}

/// What the runtime needs from the rest of the system for one call: the
/// context of a turn, persistence, and the telephony commands that end it.
#[async_trait]
pub trait CallControl: Send + Sync {
    /// The context for a reply to `text`.
    ///
    /// # Errors
    /// Any; the reply then goes without fresh context.
    async fn context(&self, text: &str) -> Result<ReplyContext, AppError>;

    /// Appends a finished turn to the call's transcript.
    ///
    /// # Errors
    /// Store errors (logged; the call goes on).
    async fn record_turn(&self, turn: &Turn) -> Result<(), AppError>;

    /// Stores a caller turn's sentiment.
    ///
    /// # Errors
    /// Store errors (logged; the call goes on).
    async fn record_sentiment(&self, turn: u32, sentiment: Sentiment) -> Result<(), AppError>;

    /// Finds and reserves a free human agent with `skills` and moves the
    /// call to escalating; `None` when nobody is free.
    ///
    /// # Errors
    /// Store errors (treated as nobody free).
    async fn find_agent(
        &self,
        reason: EscalationReason,
        skills: &[Skill],
    ) -> Result<Option<AgentId>, AppError>;

    /// Transfers the call to the agent.
    ///
    /// # Errors
    /// Provider errors (logged; the call is over for the runtime anyway).
    async fn transfer(&self, agent: AgentId, reason: EscalationReason) -> Result<(), AppError>;

    /// Hangs up.
    ///
    /// # Errors
    /// Provider errors (logged).
    async fn hang_up(&self, reason: HangUpReason) -> Result<(), AppError>;
}

/// The providers a call talks through.
#[derive(Clone)]
pub struct VoicePorts {
    /// Speech-to-text.
    pub stt: Arc<dyn SpeechToText>,
    /// Text-to-speech.
    pub tts: Arc<dyn TextToSpeech>,
    /// The language model.
    pub llm: Arc<dyn LanguageModel>,
    /// Sentiment per caller turn.
    pub sentiment: Arc<dyn SentimentAnalyzer>,
    /// Receives each reply's stage timings, when set.
    pub observer: Option<Arc<dyn VoiceObserver>>,
}

impl std::fmt::Debug for VoicePorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoicePorts").finish_non_exhaustive()
    }
}

/// Tuning of the voice runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    /// Turn-taking.
    pub engine: EngineConfig,
    /// Audio out.
    pub pacing: Pacing,
    /// The media stream's audio format (what STT hears and TTS produces).
    pub format: AudioFormat,
    /// Reply text → speakable chunks.
    pub chunker: ChunkerConfig,
    /// The prompt's size.
    pub prompt: PromptBudget,
    /// Sampling temperature of replies.
    pub temperature: Option<f32>,
    /// Cap on a reply's tokens.
    pub max_reply_tokens: Option<u32>,
    /// Silence (ms) after which the STT provider finalises a segment.
    pub endpointing_ms: u32,
    /// Silence (ms) after the last word before an utterance-end event.
    pub utterance_end_ms: u32,
    /// How long a sentiment reading may take before the turn goes unscored.
    pub sentiment_timeout: Duration,
    /// Room in each bounded channel (frames, pieces, events).
    pub channel_capacity: usize,
    /// How long after the call its post-call work starts (the hang-up
    /// webhook and the last transcript writes land first).
    pub post_call_delay: Duration,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            engine: EngineConfig::default(),
            pacing: Pacing::default(),
            format: AudioFormat::TELEPHONY,
            chunker: ChunkerConfig::default(),
            prompt: PromptBudget::default(),
            temperature: Some(0.6),
            max_reply_tokens: Some(300),
            endpointing_ms: 300,
            utterance_end_ms: 1_000,
            sentiment_timeout: Duration::from_secs(10),
            channel_capacity: 64,
            post_call_delay: Duration::from_secs(3),
        }
    }
}

/// Who is on the call.
#[derive(Debug, Clone)]
pub struct CallSetup {
    /// The persona speaking.
    pub persona: Persona,
    /// The caller's tier (for the escalation policy).
    pub tier: CustomerTier,
    /// The organisation's escalation policy.
    pub policy: Arc<CompiledEscalationPolicy>,
}

/// What happened on the call, for the work after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallReport {
    /// The conversation.
    pub turns: Vec<Turn>,
    /// Keys pressed, in order.
    pub keys: Vec<char>,
    /// Why the call went to a human, if it did.
    pub escalation: Option<EscalationReason>,
    /// The agent it was transferred to.
    pub transferred_to: Option<AgentId>,
    /// Why the agent hung up, if it did.
    pub hung_up: Option<HangUpReason>,
    /// Learned patterns offered in the prompts of replies the caller heard
    /// some of.
    pub patterns_used: Vec<PatternId>,
    /// Replies started.
    pub replies: u32,
}

/// Reports from the call's helper tasks.
enum Report {
    Engine(Event),
    /// `None` when the fetch failed: the reply uses the last context.
    Context {
        request: u32,
        context: Option<ReplyContext>,
    },
}

/// A speech being produced.
struct Producing {
    task: JoinHandle<()>,
}

/// The call's clock: milliseconds since the media started.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Runs one call until it ends (the caller hangs up, the stream stops, or the
/// engine transfers or hangs up), then returns what happened.
pub async fn run_call(
    setup: CallSetup,
    ports: VoicePorts,
    control: Arc<dyn CallControl>,
    config: VoiceConfig,
    mut media_in: mpsc::Receiver<MediaIn>,
    media_out: mpsc::Sender<MediaOut>,
) -> CallReport {
    let clock = Clock(Instant::now());
    let capacity = config.channel_capacity.max(1);
    let (reports_tx, mut reports) = mpsc::channel::<Report>(capacity);
    // Commands are few and small; never dropped.
    let (pacer_tx, pacer_rx) = mpsc::unbounded_channel::<PacerCommand>();
    let (unechoed_tx, mut unechoed) = mpsc::unbounded_channel::<(SpeechId, u32)>();
    let pacer = tokio::spawn(pacer::run(config.pacing, pacer_rx, media_out, unechoed_tx));

    let mut call = Call {
        engine: ConversationEngine::new(
            config.engine.clone(),
            setup.policy.clone(),
            setup.tier,
            setup.persona.greeting.clone(),
        ),
        setup,
        ports,
        control,
        config,
        clock,
        reports: reports_tx,
        pacer: pacer_tx,
        producing: HashMap::new(),
        reply_patterns: HashMap::new(),
        contexts: HashMap::new(),
        latest_context: None,
        heard_at: None,
        report: CallReport::default(),
    };

    // Speech-to-text: audio goes through a bounded forwarder, so a slow
    // provider holds the media reader back instead of buffering.
    let (stt_tx, stt_rx) = mpsc::channel::<Bytes>(capacity);
    let mut stt_events: Option<SttEventStream> = match call.ports.stt.open(&call.stt_config()).await
    {
        Ok(session) => {
            tokio::spawn(forward_audio(stt_rx, session.audio));
            Some(session.events)
        }
        Err(err) => {
            tracing::warn!(error = %err, "speech-to-text could not be opened");
            None
        }
    };
    call.handle(Event::Started { at: clock.now() });
    if stt_events.is_none() {
        // After the start, so the engine acts on it (hands the call over).
        call.handle(Event::ProviderFailed {
            at: clock.now(),
            stage: Stage::SpeechToText,
            speech: None,
        });
    }

    let mut dropped_frames = 0u64;
    while !call.engine.is_over() {
        let deadline = call
            .engine
            .next_deadline()
            .map(|ms| clock.0 + Duration::from_millis(ms));
        tokio::select! {
            biased;
            media = media_in.recv() => match media {
                Some(MediaIn::Audio(audio)) => {
                    // Audio is real time: when speech-to-text falls a second
                    // behind (a reconnect), frames are dropped rather than
                    // holding up marks, keys and the hang-up. A closed
                    // forwarder (STT gone) drops them too; the engine knows.
                    if let Err(mpsc::error::TrySendError::Full(_)) = stt_tx.try_send(audio) {
                        dropped_frames += 1;
                    }
                }
                Some(MediaIn::Dtmf(digit)) => call.handle(Event::Dtmf { at: clock.now(), digit }),
                Some(MediaIn::Mark(name)) => {
                    if let Some((speech, seq)) = parse_mark(&name) {
                        call.handle(Event::Played { at: clock.now(), speech, seq });
                    }
                }
                Some(MediaIn::Stop) | None => call.handle(Event::Ended { at: clock.now() }),
            },
            heard = next_stt(&mut stt_events) => match heard {
                Some(Ok(event)) => call.handle(stt_event(event, clock.now())),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "speech-to-text failed mid-call");
                    stt_events = None;
                    call.handle(Event::ProviderFailed { at: clock.now(), stage: Stage::SpeechToText, speech: None });
                }
                None => {
                    stt_events = None;
                    call.handle(Event::ProviderFailed { at: clock.now(), stage: Stage::SpeechToText, speech: None });
                }
            },
            Some(report) = reports.recv() => match report {
                Report::Engine(event) => call.handle(event),
                Report::Context { request, context } => {
                    if let Some(context) = context {
                        call.contexts.insert(request, Arc::new(context));
                        call.latest_context = Some(request);
                    }
                    call.handle(Event::ContextReady { at: clock.now(), request });
                }
            },
            // A mark the telephony side never echoed: its audio has had
            // time to play (an echo that did come makes this a no-op).
            Some((speech, seq)) = unechoed.recv() => {
                call.handle(Event::Played { at: clock.now(), speech, seq });
            }
            () = sleep_until(deadline) => call.handle(Event::Tick { at: clock.now() }),
        }
    }

    if dropped_frames > 0 {
        tracing::warn!(
            dropped_frames,
            "speech-to-text fell behind; caller audio was dropped"
        );
    }
    for (_, producing) in call.producing.drain() {
        producing.task.abort();
    }
    drop(stt_tx);
    drop(call.pacer);
    // The last line was played before the engine ended the call; let the
    // pacer send what it holds.
    let _ = tokio::time::timeout(Duration::from_secs(1), pacer).await;
    call.report.turns = call.engine.turns().to_vec();
    call.report
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_stt(
    events: &mut Option<SttEventStream>,
) -> Option<Result<SttEvent, iace_domain::ports::ProviderError>> {
    match events {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

async fn forward_audio(mut frames: mpsc::Receiver<Bytes>, mut sink: iace_domain::ports::AudioSink) {
    while let Some(frame) = frames.recv().await {
        if sink.send(frame).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

fn stt_event(event: SttEvent, at: u64) -> Event {
    match event {
        SttEvent::SpeechStarted { .. } => Event::SpeechStarted { at },
        SttEvent::Interim { text, .. } => Event::Interim { at, text },
        SttEvent::Final {
            text, speech_final, ..
        } => Event::Final {
            at,
            text,
            speech_final,
        },
        SttEvent::UtteranceEnd { .. } => Event::UtteranceEnd { at },
    }
}

/// The call task's state.
struct Call {
    engine: ConversationEngine,
    setup: CallSetup,
    ports: VoicePorts,
    control: Arc<dyn CallControl>,
    config: VoiceConfig,
    clock: Clock,
    reports: mpsc::Sender<Report>,
    pacer: mpsc::UnboundedSender<PacerCommand>,
    producing: HashMap<SpeechId, Producing>,
    /// Patterns in each reply's prompt, until its turn is recorded.
    reply_patterns: HashMap<SpeechId, Vec<PatternId>>,
    contexts: HashMap<u32, Arc<ReplyContext>>,
    latest_context: Option<u32>,
    /// When the caller's latest final words reached the call (the start of
    /// the next reply's timing).
    heard_at: Option<Instant>,
    report: CallReport,
}

impl Call {
    fn stt_config(&self) -> SttConfig {
        SttConfig {
            language: self.setup.persona.language.clone(),
            format: self.config.format,
            interim_results: true,
            endpointing_ms: self.config.endpointing_ms,
            utterance_end_ms: self.config.utterance_end_ms,
            keywords: vec![self.setup.persona.name.clone()],
        }
    }

    fn handle(&mut self, event: Event) {
        if matches!(event, Event::Final { .. }) {
            self.heard_at = Some(Instant::now());
        }
        let actions = self.engine.on_event(event);
        for action in actions {
            self.execute(action);
        }
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Say { speech, text, kind } => self.say(speech, text, kind),
            Action::StartReply {
                speech, context, ..
            } => self.start_reply(speech, context),
            Action::CancelSpeech { speech } => {
                if let Some(producing) = self.producing.remove(&speech) {
                    producing.task.abort();
                }
                self.command(PacerCommand::Cancel(speech));
            }
            Action::SpeechFinished { speech } => {
                self.producing.remove(&speech);
            }
            Action::ClearAudio => {
                // The engine clears the caller's audio only on a barge-in.
                metrics::counter!("iace_barge_ins_total").increment(1);
                self.command(PacerCommand::Clear);
            }
            Action::FetchContext { request, text } => {
                let (control, reports) = (self.control.clone(), self.reports.clone());
                let timeout = Duration::from_millis(self.config.engine.context_timeout_ms);
                tokio::spawn(async move {
                    let context = match tokio::time::timeout(timeout, control.context(&text)).await
                    {
                        Ok(Ok(context)) => Some(context),
                        Ok(Err(err)) => {
                            tracing::warn!(error = %err, "reply context failed; the last one is used");
                            None
                        }
                        Err(_) => {
                            tracing::warn!("reply context timed out; the last one is used");
                            None
                        }
                    };
                    // Reported either way: a failed fetch must not make the
                    // reply wait out the whole timeout.
                    let _ = reports.send(Report::Context { request, context }).await;
                }.in_current_span());
            }
            Action::AnalyzeSentiment { turn, text } => {
                let (sentiment, reports, control) = (
                    self.ports.sentiment.clone(),
                    self.reports.clone(),
                    self.control.clone(),
                );
                let (language, timeout, clock) = (
                    self.setup.persona.language.clone(),
                    self.config.sentiment_timeout,
                    self.clock,
                );
                tokio::spawn(async move {
                    let reading = match tokio::time::timeout(
                        timeout,
                        sentiment.analyze(&text, &language),
                    )
                    .await
                    {
                        Ok(Ok(reading)) => Some(reading.sentiment),
                        Ok(Err(err)) => {
                            tracing::debug!(error = %err, "sentiment failed; the turn goes unscored");
                            None
                        }
                        Err(_) => None,
                    };
                    // Stored from here, not through the engine: the last
                    // turns are scored after the call loop has stopped.
                    if let Some(score) = reading
                        && let Err(err) = control.record_sentiment(turn, score).await
                    {
                        tracing::warn!(error = %err, "a turn's sentiment could not be stored");
                    }
                    let _ = reports
                        .send(Report::Engine(Event::Sentiment {
                            at: clock.now(),
                            turn,
                            sentiment: reading,
                        }))
                        .await;
                }.in_current_span());
            }
            Action::RecordTurn { turn, speech } => {
                // Patterns count as used once the caller heard the reply.
                if let Some(patterns) = speech.and_then(|s| self.reply_patterns.remove(&s)) {
                    for id in patterns {
                        if !self.report.patterns_used.contains(&id) {
                            self.report.patterns_used.push(id);
                        }
                    }
                }
                let control = self.control.clone();
                tokio::spawn(
                    async move {
                        if let Err(err) = control.record_turn(&turn).await {
                            tracing::warn!(error = %err, "a transcript turn could not be stored");
                        }
                    }
                    .in_current_span(),
                );
            }
            // Already stored by the scoring task (see AnalyzeSentiment).
            Action::RecordSentiment { .. } => {}
            Action::RecordKey { digit } => self.report.keys.push(digit),
            Action::FindAgent { reason, skills } => {
                self.report.escalation = Some(reason);
                let (control, reports, clock) =
                    (self.control.clone(), self.reports.clone(), self.clock);
                tokio::spawn(
                    async move {
                        let agent =
                            control
                                .find_agent(reason, &skills)
                                .await
                                .unwrap_or_else(|err| {
                                    tracing::warn!(error = %err, "no agent could be found");
                                    None
                                });
                        let _ = reports
                            .send(Report::Engine(Event::AgentFound {
                                at: clock.now(),
                                agent,
                            }))
                            .await;
                    }
                    .in_current_span(),
                );
            }
            Action::Transfer { agent, reason } => {
                self.report.transferred_to = Some(agent);
                let control = self.control.clone();
                tokio::spawn(
                    async move {
                        if let Err(err) = control.transfer(agent, reason).await {
                            tracing::warn!(error = %err, "the transfer failed");
                        }
                    }
                    .in_current_span(),
                );
            }
            Action::HangUp { reason } => {
                self.report.hung_up = Some(reason);
                let control = self.control.clone();
                tokio::spawn(
                    async move {
                        if let Err(err) = control.hang_up(reason).await {
                            tracing::warn!(error = %err, "the hang-up failed");
                        }
                    }
                    .in_current_span(),
                );
            }
        }
    }

    fn command(&self, command: PacerCommand) {
        // Closed only when the media side is gone, and then nothing matters.
        if self.pacer.send(command).is_err() {
            tracing::debug!("pacer gone; command dropped");
        }
    }

    fn speech_request(&self, text: String) -> SpeechRequest {
        SpeechRequest {
            text,
            voice: self.setup.persona.voice.clone(),
            language: self.setup.persona.language.clone(),
            format: self.config.format,
        }
    }

    /// A fixed line: one chunk.
    fn say(&mut self, speech: SpeechId, text: String, kind: LineKind) {
        let (pieces_tx, pieces) = mpsc::channel(self.config.channel_capacity.max(1));
        self.command(PacerCommand::Enqueue {
            speech,
            pieces,
            first: kind == LineKind::Filler,
            stamps: None,
        });
        let request = self.speech_request(text);
        let (tts, reports, clock) = (self.ports.tts.clone(), self.reports.clone(), self.clock);
        let span = tracing::info_span!("line", speech = speech.0, kind = ?kind);
        let task = tokio::spawn(
            async move {
                let ok = synthesize(
                    &*tts, &request, 0, &pieces_tx, &reports, speech, clock, None,
                )
                .await;
                if ok {
                    let _ = reports
                        .send(Report::Engine(Event::AudioDone {
                            at: clock.now(),
                            speech,
                            chunks: 1,
                        }))
                        .await;
                }
            }
            .instrument(span),
        );
        self.producing.insert(speech, Producing { task });
    }

    /// A reply: the model's stream, chunked, each chunk synthesised in order
    /// while the model goes on.
    fn start_reply(&mut self, speech: SpeechId, context: ContextUse) {
        self.report.replies += 1;
        let latest = || {
            self.latest_context
                .and_then(|r| self.contexts.get(&r).cloned())
        };
        let context = match context {
            ContextUse::Fresh { request } => self.contexts.get(&request).cloned().or_else(latest),
            ContextUse::Stale => latest(),
        }
        .unwrap_or_default();
        let hints: Vec<PatternHint<'_>> = context
            .patterns
            .iter()
            .map(|p| PatternHint {
                trigger: &p.trigger,
                response: &p.response,
            })
            .collect();
        let persona = &self.setup.persona;
        let prompt = build_prompt(
            &PromptInputs {
                system_prompt: &persona.system_prompt,
                persona_name: &persona.name,
                memory: &context.memory,
                patterns: &hints,
                turns: self.engine.turns(),
            },
            self.config.prompt,
        );
        let patterns: Vec<PatternId> = context
            .patterns
            .iter()
            .take(prompt.patterns_used)
            .map(|p| p.id)
            .collect();
        let request = ChatRequest {
            model: None,
            messages: prompt.messages,
            tools: Vec::new(),
            temperature: self.config.temperature,
            max_tokens: self.config.max_reply_tokens,
        };
        let stamps = self
            .heard_at
            .take()
            .map(|heard| TurnStamps::start(heard, self.ports.observer.clone()));
        let (pieces_tx, pieces) = mpsc::channel(self.config.channel_capacity.max(1));
        self.command(PacerCommand::Enqueue {
            speech,
            pieces,
            first: false,
            stamps: stamps.clone(),
        });
        let producer = ReplyProducer {
            llm: self.ports.llm.clone(),
            tts: self.ports.tts.clone(),
            template: self.speech_request(String::new()),
            chunker: self.config.chunker,
            reports: self.reports.clone(),
            clock: self.clock,
            speech,
            stamps,
        };
        let span = tracing::info_span!("reply", speech = speech.0);
        let task = tokio::spawn(producer.run(request, pieces_tx).instrument(span));
        self.producing.insert(speech, Producing { task });
        self.reply_patterns.insert(speech, patterns);
    }
}

/// Synthesises one chunk into `pieces`, then its mark. `false` when
/// synthesis failed (reported) or the speech was dropped.
#[allow(
    clippy::too_many_arguments,
    reason = "one speech's whole context; a struct would only rename it"
)]
async fn synthesize(
    tts: &dyn TextToSpeech,
    request: &SpeechRequest,
    seq: u32,
    pieces: &mpsc::Sender<Piece>,
    reports: &mpsc::Sender<Report>,
    speech: SpeechId,
    clock: Clock,
    stamps: Option<&TurnStamps>,
) -> bool {
    let failed = || {
        Report::Engine(Event::ProviderFailed {
            at: clock.now(),
            stage: Stage::TextToSpeech,
            speech: Some(speech),
        })
    };
    let span = tracing::info_span!("text_to_speech", chunk = seq);
    let mut audio = match tts.synthesize(request).instrument(span).await {
        Ok(audio) => audio,
        Err(err) => {
            tracing::warn!(error = %err, "text-to-speech failed");
            let _ = reports.send(failed()).await;
            return false;
        }
    };
    while let Some(chunk) = audio.next().await {
        match chunk {
            Ok(bytes) => {
                if let Some(stamps) = stamps {
                    stamps.audio();
                }
                if pieces.send(Piece::Audio(bytes)).await.is_err() {
                    return false;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "text-to-speech failed mid-stream");
                let _ = reports.send(failed()).await;
                return false;
            }
        }
    }
    pieces.send(Piece::Mark(seq)).await.is_ok()
}

/// Produces one reply.
struct ReplyProducer {
    llm: Arc<dyn LanguageModel>,
    tts: Arc<dyn TextToSpeech>,
    template: SpeechRequest,
    chunker: ChunkerConfig,
    reports: mpsc::Sender<Report>,
    clock: Clock,
    speech: SpeechId,
    /// The reply's stage timings, when observed.
    stamps: Option<Arc<TurnStamps>>,
}

impl ReplyProducer {
    async fn run(self, request: ChatRequest, pieces: mpsc::Sender<Piece>) {
        let (chunks_tx, chunks_rx) = mpsc::channel::<(u32, String)>(8);
        // Both halves live in this task: aborting it stops the model and the
        // synthesis together.
        tokio::join!(
            self.read_model(request, chunks_tx),
            self.speak(chunks_rx, pieces)
        );
    }

    fn report(&self, event: Event) -> impl Future<Output = ()> + Send + 'static {
        let reports = self.reports.clone();
        async move {
            let _ = reports.send(Report::Engine(event)).await;
        }
    }

    async fn read_model(&self, request: ChatRequest, chunks: mpsc::Sender<(u32, String)>) {
        let failed = |clock: Clock, speech| Event::ProviderFailed {
            at: clock.now(),
            stage: Stage::LanguageModel,
            speech: Some(speech),
        };
        let model = tracing::info_span!("language_model");
        let mut stream = match self.llm.stream_chat(&request).instrument(model).await {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "the language model refused the reply");
                self.report(failed(self.clock, self.speech)).await;
                return;
            }
        };
        let mut chunker = SentenceChunker::new(self.chunker);
        let mut seq = 0u32;
        let emit = async |text: String, seq: &mut u32| -> bool {
            self.report(Event::ReplyChunk {
                at: self.clock.now(),
                speech: self.speech,
                seq: *seq,
                text: text.clone(),
            })
            .await;
            let sent = chunks.send((*seq, text)).await.is_ok();
            *seq += 1;
            sent
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(ChatChunk::Text { delta }) => {
                    if let Some(stamps) = &self.stamps
                        && !delta.is_empty()
                    {
                        stamps.text();
                    }
                    for text in chunker.push(&delta) {
                        if !emit(text, &mut seq).await {
                            return;
                        }
                    }
                }
                Ok(ChatChunk::Finished { .. }) => break,
                Ok(ChatChunk::ToolCall { .. }) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "the language model failed mid-reply");
                    // What was produced still plays; the engine ends the reply.
                    if let Some(text) = chunker.finish() {
                        let _ = emit(text, &mut seq).await;
                    }
                    self.report(failed(self.clock, self.speech)).await;
                    return;
                }
            }
        }
        if let Some(text) = chunker.finish() {
            let _ = emit(text, &mut seq).await;
        }
    }

    async fn speak(&self, mut chunks: mpsc::Receiver<(u32, String)>, pieces: mpsc::Sender<Piece>) {
        let mut spoken = 0u32;
        while let Some((seq, text)) = chunks.recv().await {
            let mut request = self.template.clone();
            request.text = text;
            if !synthesize(
                &*self.tts,
                &request,
                seq,
                &pieces,
                &self.reports,
                self.speech,
                self.clock,
                self.stamps.as_deref(),
            )
            .await
            {
                return;
            }
            spoken = seq + 1;
        }
        self.report(Event::AudioDone {
            at: self.clock.now(),
            speech: self.speech,
            chunks: spoken,
        })
        .await;
    }
}
