//! The conversation engine: turn-taking, barge-in, silence, escalation and
//! failures for one call, as a deterministic state machine.
//!
//! It does no IO and has no clock: the runtime feeds it [`Event`]s — what the
//! caller said (speech-to-text), how far the agent's audio has been played
//! (playback marks), timer ticks, results of the work it asked for — each
//! stamped with the call's time in milliseconds, and executes the
//! [`Action`]s it returns. [`ConversationEngine::next_deadline`] says when
//! the next tick is due, so an idle call needs no periodic timer.
//!
//! # Turn-taking
//!
//! Final transcripts accumulate into the caller's turn. The turn may end on a
//! `speech_final` transcript or an utterance-end event; it ends once
//! [`EngineConfig::end_of_turn_grace_ms`] pass with no new words (new words
//! reopen it). The context for the reply (memory, learned patterns) is asked
//! for as soon as the turn may end, so it is usually ready when the grace has
//! passed; the reply starts when it is, or after
//! [`EngineConfig::context_timeout_ms`] without it (the reply then uses the
//! last context there was).
//!
//! # Agent speech
//!
//! Everything the agent says is a *speech* ([`SpeechId`]): a reply generated
//! by the language model ([`Action::StartReply`]) or a fixed line
//! ([`Action::Say`]: greeting, filler, re-prompt, hand-over, apology…).
//! Speeches play in the order they were started; at most one reply exists at
//! a time. A reply's text reaches the engine chunk by chunk
//! ([`Event::ReplyChunk`]); the runtime places a playback mark after each
//! chunk's audio, and the caller has heard a chunk once its mark comes back
//! ([`Event::Played`]). A speech ends either played to the end
//! ([`Action::SpeechFinished`]) or cut short ([`Action::CancelSpeech`]) —
//! every started speech ends exactly one of these ways.
//!
//! # Barge-in
//!
//! When the caller speaks over the agent — at least
//! [`EngineConfig::barge_in_min_words`] words, or words and at least
//! [`EngineConfig::barge_in_min_speech_ms`] of speech (so a cough does not
//! interrupt) — every speech is cancelled, queued audio is cleared, and the
//! interrupted reply is recorded with only what the caller heard.
//!
//! # Silence, escalation, failures
//!
//! After [`EngineConfig::silence_reprompt_ms`] of silence the agent re-prompts;
//! after [`EngineConfig::max_reprompts`] unanswered re-prompts it says goodbye
//! and hangs up. After every caller turn and sentiment reading the
//! [escalation policy](crate::escalation) is evaluated; on escalation the
//! engine asks for an agent ([`Action::FindAgent`]), speaks the hand-over line
//! and then transfers — or, with no agent free, applies
//! [`NoAgentFallback`]. A failed reply is apologised for and the caller asked
//! to repeat; repeated failures, or a lost speech-to-text session, hand the
//! call to a human ([`EscalationReason::ServiceFailure`]).

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Turn;
use crate::escalation::{
    CompiledEscalationPolicy, EscalationDecision, EscalationInput, EscalationReason, TurnSnapshot,
};
use crate::model::{CustomerTier, Skill, Speaker};
use crate::{AgentId, Sentiment};

/// Milliseconds since the call's media started.
pub type Millis = u64;

/// One piece of agent speech: a reply or a fixed line. Playback marks name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpeechId(pub u32);

impl std::fmt::Display for SpeechId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a fixed line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// The persona's greeting, first thing on the call.
    Greeting,
    /// Said while a slow reply is on its way.
    Filler,
    /// Said after a silence.
    Reprompt,
    /// Said before hanging up.
    Goodbye,
    /// Said before the transfer to a human.
    Handover,
    /// Said when a reply could not be produced.
    Apology,
    /// Said when no human is free and the policy takes a message.
    TakeMessage,
}

/// A pipeline stage that can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Speech-to-text.
    SpeechToText,
    /// The language model.
    LanguageModel,
    /// Text-to-speech.
    TextToSpeech,
}

/// Why the engine hangs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangUpReason {
    /// The caller stopped answering the re-prompts.
    NoResponse,
    /// The caller left a message (no human was free).
    MessageTaken,
    /// The agent cannot go on and no human was free.
    ServiceFailure,
}

/// How fresh the context of a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextUse {
    /// Fetched for this turn.
    Fresh {
        /// The [`Action::FetchContext`] request it answered.
        request: u32,
    },
    /// Not ready in time: use the last context there was (possibly none).
    Stale,
}

/// Something that happened, stamped with the call's time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The call's media is up: the engine greets.
    Started {
        /// Time.
        at: Millis,
    },
    /// Speech-to-text heard voice activity begin.
    SpeechStarted {
        /// Time.
        at: Millis,
    },
    /// A transcript that may still change.
    Interim {
        /// Time.
        at: Millis,
        /// The words so far of the current segment.
        text: String,
    },
    /// A finalised transcript segment.
    Final {
        /// Time.
        at: Millis,
        /// The words.
        text: String,
        /// The provider thinks the caller's turn ended.
        speech_final: bool,
    },
    /// Speech-to-text heard no words for a while.
    UtteranceEnd {
        /// Time.
        at: Millis,
    },
    /// A chunk of a reply's text was handed to text-to-speech; the mark
    /// `(speech, seq)` follows its audio. `seq` counts from 0.
    ReplyChunk {
        /// Time.
        at: Millis,
        /// The reply.
        speech: SpeechId,
        /// Position of the chunk in the reply.
        seq: u32,
        /// The text.
        text: String,
    },
    /// All of a speech's audio has been queued: `chunks` chunks in all (a
    /// fixed line is one chunk).
    AudioDone {
        /// Time.
        at: Millis,
        /// The speech.
        speech: SpeechId,
        /// How many chunks it had.
        chunks: u32,
    },
    /// A playback mark came back: the caller heard the speech through chunk
    /// `seq`.
    Played {
        /// Time.
        at: Millis,
        /// The speech.
        speech: SpeechId,
        /// The chunk.
        seq: u32,
    },
    /// The caller pressed a key.
    Dtmf {
        /// Time.
        at: Millis,
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: char,
    },
    /// Time passed (see [`ConversationEngine::next_deadline`]).
    Tick {
        /// Time.
        at: Millis,
    },
    /// The sentiment of a caller turn ([`Action::AnalyzeSentiment`]); `None`
    /// when it could not be scored.
    Sentiment {
        /// Time.
        at: Millis,
        /// The turn's sequence.
        turn: u32,
        /// The reading.
        sentiment: Option<Sentiment>,
    },
    /// The context asked for by [`Action::FetchContext`] is ready.
    ContextReady {
        /// Time.
        at: Millis,
        /// The request.
        request: u32,
    },
    /// The answer to [`Action::FindAgent`].
    AgentFound {
        /// Time.
        at: Millis,
        /// The agent reserved for this call, or `None` when none is free.
        agent: Option<AgentId>,
    },
    /// A provider failed. `speech` names the speech it was producing, if any.
    ProviderFailed {
        /// Time.
        at: Millis,
        /// Which stage.
        stage: Stage,
        /// The speech affected.
        speech: Option<SpeechId>,
    },
    /// The call ended (the caller hung up, or the media stream stopped).
    Ended {
        /// Time.
        at: Millis,
    },
}

impl Event {
    /// When it happened.
    #[must_use]
    pub const fn at(&self) -> Millis {
        match self {
            Self::Started { at }
            | Self::SpeechStarted { at }
            | Self::Interim { at, .. }
            | Self::Final { at, .. }
            | Self::UtteranceEnd { at }
            | Self::ReplyChunk { at, .. }
            | Self::AudioDone { at, .. }
            | Self::Played { at, .. }
            | Self::Dtmf { at, .. }
            | Self::Tick { at }
            | Self::Sentiment { at, .. }
            | Self::ContextReady { at, .. }
            | Self::AgentFound { at, .. }
            | Self::ProviderFailed { at, .. }
            | Self::Ended { at } => *at,
        }
    }
}

/// What the runtime should do, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Speak a fixed line (after the speeches already queued). One chunk:
    /// mark `(speech, 0)` after its audio, then [`Event::AudioDone`].
    Say {
        /// The speech.
        speech: SpeechId,
        /// What to say.
        text: String,
        /// What for.
        kind: LineKind,
    },
    /// Generate a reply to the conversation so far
    /// ([`ConversationEngine::turns`]) and speak it chunk by chunk.
    StartReply {
        /// The speech.
        speech: SpeechId,
        /// The caller turn it answers.
        turn: u32,
        /// Which context to prompt with.
        context: ContextUse,
    },
    /// Stop producing this speech (model and synthesis) and drop its audio.
    CancelSpeech {
        /// The speech.
        speech: SpeechId,
    },
    /// The speech was played to the end.
    SpeechFinished {
        /// The speech.
        speech: SpeechId,
    },
    /// Drop every bit of audio queued to the caller (barge-in).
    ClearAudio,
    /// Fetch the context (memory, learned patterns) for the caller's turn so
    /// far; answer with [`Event::ContextReady`].
    FetchContext {
        /// The request id.
        request: u32,
        /// What the caller said.
        text: String,
    },
    /// Score a caller turn; answer with [`Event::Sentiment`]. Not on the
    /// reply's critical path.
    AnalyzeSentiment {
        /// The turn's sequence.
        turn: u32,
        /// What the caller said.
        text: String,
    },
    /// Append a finished turn to the transcript. `speech` is the agent's
    /// speech it came from.
    RecordTurn {
        /// The turn.
        turn: Turn,
        /// For a bot turn, its speech.
        speech: Option<SpeechId>,
    },
    /// Store a caller turn's sentiment.
    RecordSentiment {
        /// The turn's sequence.
        turn: u32,
        /// The reading.
        sentiment: Sentiment,
    },
    /// A key the caller pressed (kept for the call's outcome).
    RecordKey {
        /// The key.
        digit: char,
    },
    /// Find and reserve a human agent; answer with [`Event::AgentFound`].
    FindAgent {
        /// Why.
        reason: EscalationReason,
        /// Skills the agent needs.
        skills: Vec<Skill>,
    },
    /// Transfer the call to the agent (the hand-over line has been played).
    Transfer {
        /// The agent.
        agent: AgentId,
        /// Why.
        reason: EscalationReason,
    },
    /// Hang up (the last line has been played).
    HangUp {
        /// Why.
        reason: HangUpReason,
    },
}

/// What to do when an escalation finds no human free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoAgentFallback {
    /// Apologise, take a message, thank the caller and hang up.
    #[default]
    TakeMessage,
    /// Stay with the AI agent (and do not escalate again on this call).
    KeepAi,
}

/// The fixed lines, in the persona's language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lines {
    /// While a slow reply is on its way.
    pub filler: String,
    /// After a silence.
    pub reprompt: String,
    /// Before hanging up after unanswered re-prompts.
    pub goodbye: String,
    /// Before transferring.
    pub handover: String,
    /// When a reply failed.
    pub apology: String,
    /// No human free: take a message.
    pub take_message: String,
    /// After the message.
    pub message_taken: String,
    /// The agent cannot go on and no human is free.
    pub service_failure: String,
}

impl Default for Lines {
    fn default() -> Self {
        Self {
            filler: "One moment.".into(),
            reprompt: "Are you still there?".into(),
            goodbye: "I'll let you go now. Goodbye!".into(),
            handover: "Let me connect you with a colleague who can help. Please hold.".into(),
            apology: "Sorry, I didn't catch that. Could you say it again?".into(),
            take_message: "I'm sorry, no one is available right now. Please leave your message \
                           after this, and we'll get back to you."
                .into(),
            message_taken: "Thank you, we have your message. Goodbye!".into(),
            service_failure: "I'm sorry, we're having technical trouble. Please call again \
                              later. Goodbye!"
                .into(),
        }
    }
}

/// Turn-taking settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// Quiet time after a possible end of turn before the agent replies.
    pub end_of_turn_grace_ms: Millis,
    /// Words that interrupt the agent (0: words alone never do).
    pub barge_in_min_words: usize,
    /// Speech with at least one word that lasts this long interrupts the
    /// agent (0: duration alone never does).
    pub barge_in_min_speech_ms: Millis,
    /// How long a reply waits for its context.
    pub context_timeout_ms: Millis,
    /// A reply with no audio heard this long after the turn ended gets a
    /// filler line first (0: never).
    pub filler_after_ms: Millis,
    /// Silence before a re-prompt (0: never).
    pub silence_reprompt_ms: Millis,
    /// Unanswered re-prompts before goodbye.
    pub max_reprompts: u32,
    /// Failed replies in a row before the call goes to a human.
    pub max_failed_replies: u32,
    /// The key that asks for a human (`None`: none does).
    pub human_key: Option<char>,
    /// With no human free.
    pub no_agent: NoAgentFallback,
    /// The fixed lines.
    pub lines: Lines,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            end_of_turn_grace_ms: 200,
            barge_in_min_words: 2,
            barge_in_min_speech_ms: 600,
            context_timeout_ms: 5_000,
            filler_after_ms: 1_500,
            silence_reprompt_ms: 8_000,
            max_reprompts: 2,
            max_failed_replies: 2,
            human_key: Some('0'),
            no_agent: NoAgentFallback::default(),
            lines: Lines::default(),
        }
    }
}

/// What a speech is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpeechKind {
    Reply,
    Line(LineKind),
}

/// A speech started and not yet ended.
#[derive(Debug, Clone)]
struct Speech {
    id: SpeechId,
    kind: SpeechKind,
    /// Text per chunk, by `seq` (fixed lines: one chunk).
    chunks: Vec<String>,
    /// Chunks heard: marks came back for `0..heard`.
    heard: u32,
    /// Total chunks, once all audio is queued.
    total: Option<u32>,
    started_at: Millis,
    /// When the caller first heard some of it.
    first_heard_at: Option<Millis>,
}

impl Speech {
    fn heard_text(&self) -> String {
        let mut text = String::new();
        for chunk in self.chunks.iter().take(self.heard as usize) {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(chunk.trim());
        }
        text
    }

    fn complete(&self) -> bool {
        self.total.is_some_and(|total| self.heard >= total)
    }
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before [`Event::Started`].
    Waiting,
    /// Talking with the caller.
    Talking,
    /// Waiting for [`Event::AgentFound`].
    FindingAgent(EscalationReason),
    /// The hand-over line plays; the transfer follows it.
    HandingOver(AgentId, EscalationReason),
    /// No human was free; the caller's next turn is the message.
    TakingMessage,
    /// The last line plays; the hang-up follows it.
    Closing(HangUpReason),
    /// Transferred, hung up, or the caller left: nothing more happens.
    Over,
}

/// The caller's turn being heard.
#[derive(Debug, Clone, Default)]
struct Listening {
    /// Final text of the turn so far.
    text: String,
    /// The latest interim text (replaced by the next final).
    interim: String,
    /// When the turn's first words came.
    started_at: Option<Millis>,
    /// Voice activity began (cleared at the end of an utterance).
    speaking_since: Option<Millis>,
    /// The turn ends at this time unless words come first.
    ends_at: Option<Millis>,
    /// The context request for this turn.
    context: Option<u32>,
}

impl Listening {
    fn words(&self) -> usize {
        self.text.split_whitespace().count() + self.interim.split_whitespace().count()
    }
}

/// A reply waiting for its context.
#[derive(Debug, Clone, Copy)]
struct PendingReply {
    turn: u32,
    request: Option<u32>,
    give_up_at: Millis,
}

/// The conversation state machine of one call. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ConversationEngine {
    config: EngineConfig,
    policy: Arc<CompiledEscalationPolicy>,
    tier: CustomerTier,
    greeting: String,
    phase: Phase,
    now: Millis,
    next_speech: u32,
    next_request: u32,
    turns: Vec<Turn>,
    made_progress: Vec<bool>,
    speeches: VecDeque<Speech>,
    listening: Listening,
    pending_reply: Option<PendingReply>,
    /// A caller turn that ended while the agent was talking, answered when
    /// it has finished: (turn, context request).
    unanswered: Option<(u32, Option<u32>)>,
    /// Context requests answered.
    contexts_ready: Vec<u32>,
    filler_at: Option<Millis>,
    reprompt_at: Option<Millis>,
    reprompts: u32,
    failed_replies: u32,
    escalated: bool,
}

impl ConversationEngine {
    /// An engine for a call whose persona greets with `greeting` (empty: no
    /// greeting) and whose caller is of `tier`.
    #[must_use]
    pub fn new(
        config: EngineConfig,
        policy: Arc<CompiledEscalationPolicy>,
        tier: CustomerTier,
        greeting: impl Into<String>,
    ) -> Self {
        Self {
            config,
            policy,
            tier,
            greeting: greeting.into(),
            phase: Phase::Waiting,
            now: 0,
            next_speech: 0,
            next_request: 0,
            turns: Vec::new(),
            made_progress: Vec::new(),
            speeches: VecDeque::new(),
            listening: Listening::default(),
            pending_reply: None,
            unanswered: None,
            contexts_ready: Vec::new(),
            filler_at: None,
            reprompt_at: None,
            reprompts: 0,
            failed_replies: 0,
            escalated: false,
        }
    }

    /// The conversation so far, oldest first.
    #[must_use]
    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// Whether the conversation is over (transferred, hung up, or the caller
    /// left).
    #[must_use]
    pub fn is_over(&self) -> bool {
        self.phase == Phase::Over
    }

    /// The reply being produced or played, if any.
    #[must_use]
    pub fn reply_in_flight(&self) -> Option<SpeechId> {
        self.speeches
            .iter()
            .find(|s| s.kind == SpeechKind::Reply)
            .map(|s| s.id)
    }

    /// When the engine next needs an [`Event::Tick`] (if nothing else happens
    /// first).
    #[must_use]
    pub fn next_deadline(&self) -> Option<Millis> {
        if self.phase == Phase::Over {
            return None;
        }
        let barge_in = self.barge_in_deadline();
        [
            self.listening.ends_at,
            self.pending_reply.map(|p| p.give_up_at),
            self.filler_at,
            self.reprompt_at,
            barge_in,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Takes one event; returns what to do, in order.
    pub fn on_event(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Over {
            return out;
        }
        // Time never goes back, whatever order events arrive in.
        self.now = self.now.max(event.at());
        match event {
            Event::Started { .. } => self.start(&mut out),
            Event::SpeechStarted { .. } => {
                self.listening.speaking_since.get_or_insert(self.now);
                self.reprompt_at = None;
            }
            Event::Interim { text, .. } => {
                self.listening.interim = text;
                self.heard_words(&mut out);
            }
            Event::Final {
                text, speech_final, ..
            } => {
                self.listening.interim.clear();
                let text = text.trim();
                if !text.is_empty() {
                    if !self.listening.text.is_empty() {
                        self.listening.text.push(' ');
                    }
                    self.listening.text.push_str(text);
                    self.heard_words(&mut out);
                }
                if speech_final {
                    self.maybe_end_of_turn(&mut out);
                }
            }
            Event::UtteranceEnd { .. } => {
                self.listening.speaking_since = None;
                self.maybe_end_of_turn(&mut out);
            }
            Event::ReplyChunk {
                speech, seq, text, ..
            } => {
                if let Some(s) = self.speech_mut(speech)
                    && s.kind == SpeechKind::Reply
                {
                    let index = seq as usize;
                    if s.chunks.len() <= index {
                        s.chunks.resize(index + 1, String::new());
                    }
                    s.chunks[index] = text;
                }
            }
            Event::AudioDone { speech, chunks, .. } => {
                if let Some(s) = self.speech_mut(speech) {
                    s.total = Some(chunks);
                }
                self.settle_speeches(&mut out);
            }
            Event::Played { speech, seq, .. } => {
                let now = self.now;
                if let Some(s) = self.speech_mut(speech) {
                    s.heard = s.heard.max(seq.saturating_add(1));
                    s.first_heard_at.get_or_insert(now);
                    if s.kind == SpeechKind::Reply {
                        self.filler_at = None;
                    }
                }
                self.settle_speeches(&mut out);
            }
            Event::Dtmf { digit, .. } => {
                out.push(Action::RecordKey { digit });
                self.reprompts = 0;
                self.reprompt_at = None;
                if self.config.human_key == Some(digit) && self.phase == Phase::Talking {
                    self.escalate(EscalationReason::HumanRequested, Vec::new(), &mut out);
                }
            }
            Event::Tick { .. } => {}
            Event::Sentiment {
                turn, sentiment, ..
            } => self.sentiment(turn, sentiment, &mut out),
            Event::ContextReady { request, .. } => {
                self.contexts_ready.push(request);
                if let Some(pending) = self.pending_reply
                    && pending.request == Some(request)
                {
                    self.pending_reply = None;
                    self.start_reply(pending.turn, ContextUse::Fresh { request }, &mut out);
                }
            }
            Event::AgentFound { agent, .. } => self.agent_found(agent, &mut out),
            Event::ProviderFailed { stage, speech, .. } => self.failed(stage, speech, &mut out),
            Event::Ended { .. } => {
                self.cancel_all(&mut out, false);
                self.commit_caller_turn_if_any(&mut out);
                self.phase = Phase::Over;
                return out;
            }
        }
        self.advance(&mut out);
        out
    }

    // ------------------------------------------------------------ the call

    fn start(&mut self, out: &mut Vec<Action>) {
        if self.phase != Phase::Waiting {
            return;
        }
        self.phase = Phase::Talking;
        // A VIP may go straight to a human, before any greeting.
        if let EscalationDecision::Escalate {
            reason,
            required_skills,
        } = self.evaluate()
        {
            self.escalate(reason, required_skills, out);
            return;
        }
        let greeting = self.greeting.trim().to_owned();
        if greeting.is_empty() {
            self.listen_for_silence();
        } else {
            self.say(LineKind::Greeting, greeting, out);
        }
    }

    fn say(&mut self, kind: LineKind, text: String, out: &mut Vec<Action>) {
        let id = self.speech_id();
        self.speeches.push_back(Speech {
            id,
            kind: SpeechKind::Line(kind),
            chunks: vec![text.clone()],
            heard: 0,
            total: None,
            started_at: self.now,
            first_heard_at: None,
        });
        self.reprompt_at = None;
        out.push(Action::Say {
            speech: id,
            text,
            kind,
        });
    }

    fn speech_id(&mut self) -> SpeechId {
        let id = SpeechId(self.next_speech);
        self.next_speech = self.next_speech.wrapping_add(1);
        id
    }

    fn speech_mut(&mut self, id: SpeechId) -> Option<&mut Speech> {
        self.speeches.iter_mut().find(|s| s.id == id)
    }

    /// Speaking or about to: a speech is in flight or a reply is coming.
    fn agent_busy(&self) -> bool {
        !self.speeches.is_empty() || self.pending_reply.is_some()
    }

    // ------------------------------------------------------------ caller

    /// New words from the caller: they reopen a turn that may have ended and
    /// may interrupt the agent.
    fn heard_words(&mut self, out: &mut Vec<Action>) {
        if self.listening.words() == 0 {
            return;
        }
        self.listening.started_at.get_or_insert(self.now);
        self.listening.ends_at = None;
        self.reprompt_at = None;
        self.reprompts = 0;
        if self.agent_busy() && self.barge_in_due() {
            self.barge_in(out);
        }
    }

    fn barge_in_due(&self) -> bool {
        let words = self.listening.words();
        let by_words =
            self.config.barge_in_min_words > 0 && words >= self.config.barge_in_min_words;
        let by_time = self.config.barge_in_min_speech_ms > 0
            && words > 0
            && self.listening.speaking_since.is_some_and(|since| {
                self.now.saturating_sub(since) >= self.config.barge_in_min_speech_ms
            });
        by_words || by_time
    }

    fn barge_in_deadline(&self) -> Option<Millis> {
        // Only where a barge-in can happen: elsewhere the deadline would stay
        // in the past and the runtime would tick for nothing.
        if !matches!(self.phase, Phase::Talking | Phase::TakingMessage)
            || !self.agent_busy()
            || self.config.barge_in_min_speech_ms == 0
            || self.listening.words() == 0
        {
            return None;
        }
        self.listening
            .speaking_since
            .map(|since| since.saturating_add(self.config.barge_in_min_speech_ms))
    }

    /// The caller spoke over the agent: stop talking and listen.
    fn barge_in(&mut self, out: &mut Vec<Action>) {
        // The hand-over line and the last words are not interrupted.
        if !matches!(self.phase, Phase::Talking | Phase::TakingMessage) {
            return;
        }
        let had_audio = !self.speeches.is_empty();
        self.cancel_all(out, had_audio);
    }

    /// Cancels every speech and a reply waiting for context; records what the
    /// caller heard of each.
    fn cancel_all(&mut self, out: &mut Vec<Action>, clear_audio: bool) {
        self.pending_reply = None;
        self.unanswered = None;
        self.filler_at = None;
        let speeches: Vec<Speech> = self.speeches.drain(..).collect();
        for speech in &speeches {
            out.push(Action::CancelSpeech { speech: speech.id });
        }
        if clear_audio && !speeches.is_empty() {
            out.push(Action::ClearAudio);
        }
        for speech in speeches {
            self.record_speech(&speech, true, out);
        }
    }

    /// A possible end of the caller's turn: start the grace period and fetch
    /// the reply's context meanwhile.
    fn maybe_end_of_turn(&mut self, out: &mut Vec<Action>) {
        if self.listening.text.trim().is_empty() {
            return;
        }
        self.listening.ends_at = Some(self.now.saturating_add(self.config.end_of_turn_grace_ms));
        if self.listening.context.is_none() && self.phase == Phase::Talking {
            let request = self.next_request;
            self.next_request = self.next_request.wrapping_add(1);
            self.listening.context = Some(request);
            out.push(Action::FetchContext {
                request,
                text: self.listening.text.clone(),
            });
        }
    }

    /// Records the caller's turn if it has words; returns its sequence.
    fn commit_caller_turn_if_any(&mut self, out: &mut Vec<Action>) -> Option<(u32, Option<u32>)> {
        let listening = std::mem::take(&mut self.listening);
        let text = listening.text.trim();
        if text.is_empty() {
            return None;
        }
        let sequence = self.record(
            Turn {
                sequence: 0,
                speaker: Speaker::Caller,
                text: text.to_owned(),
                started_ms: listening.started_at.unwrap_or(self.now),
                ended_ms: self.now,
                sentiment: None,
                interrupted: false,
            },
            None,
            false,
            out,
        );
        out.push(Action::AnalyzeSentiment {
            turn: sequence,
            text: text.to_owned(),
        });
        Some((sequence, listening.context))
    }

    /// The caller's turn is over: record it, then reply (or escalate).
    fn end_turn(&mut self, out: &mut Vec<Action>) {
        let Some((turn, request)) = self.commit_caller_turn_if_any(out) else {
            return;
        };
        self.reprompts = 0;
        match self.phase {
            Phase::TakingMessage => {
                let text = self.config.lines.message_taken.clone();
                self.phase = Phase::Closing(HangUpReason::MessageTaken);
                self.say(LineKind::Goodbye, text, out);
                return;
            }
            Phase::Talking => {}
            _ => return,
        }
        if let EscalationDecision::Escalate {
            reason,
            required_skills,
        } = self.evaluate()
        {
            self.escalate(reason, required_skills, out);
            return;
        }
        // A reply not heard yet (the caller added words without
        // interrupting) gives way to one for the whole conversation.
        if let Some(reply) = self.reply_in_flight()
            && self.speech_mut(reply).is_some_and(|s| s.heard == 0)
        {
            self.cancel_speech(reply, out);
        }
        if self.speeches.is_empty() {
            self.reply_to(turn, request, out);
        } else {
            // The agent is still talking (the caller's words were too few to
            // interrupt): answer once it has finished.
            self.unanswered = Some((turn, request));
        }
    }

    /// Starts the reply to `turn` now if its context is ready, or once it is.
    fn reply_to(&mut self, turn: u32, request: Option<u32>, out: &mut Vec<Action>) {
        self.unanswered = None;
        match request {
            Some(request) if self.contexts_ready.contains(&request) => {
                self.start_reply(turn, ContextUse::Fresh { request }, out);
            }
            _ => {
                self.pending_reply = Some(PendingReply {
                    turn,
                    request,
                    give_up_at: self.now.saturating_add(self.config.context_timeout_ms),
                });
                self.arm_filler();
            }
        }
    }

    fn start_reply(&mut self, turn: u32, context: ContextUse, out: &mut Vec<Action>) {
        if self.phase != Phase::Talking {
            return;
        }
        if let Some(reply) = self.reply_in_flight() {
            self.cancel_speech(reply, out);
        }
        let id = self.speech_id();
        self.speeches.push_back(Speech {
            id,
            kind: SpeechKind::Reply,
            chunks: Vec::new(),
            heard: 0,
            total: None,
            started_at: self.now,
            first_heard_at: None,
        });
        self.reprompt_at = None;
        out.push(Action::StartReply {
            speech: id,
            turn,
            context,
        });
        self.arm_filler();
    }

    fn arm_filler(&mut self) {
        if self.config.filler_after_ms > 0 && self.filler_at.is_none() {
            self.filler_at = Some(self.now.saturating_add(self.config.filler_after_ms));
        }
    }

    fn cancel_speech(&mut self, id: SpeechId, out: &mut Vec<Action>) {
        if let Some(index) = self.speeches.iter().position(|s| s.id == id)
            && let Some(speech) = self.speeches.remove(index)
        {
            out.push(Action::CancelSpeech { speech: id });
            self.record_speech(&speech, true, out);
        }
    }

    /// Records a bot turn for a speech that ended, if the caller heard any of
    /// it.
    fn record_speech(&mut self, speech: &Speech, cut_short: bool, out: &mut Vec<Action>) {
        let text = speech.heard_text();
        if text.is_empty() {
            return;
        }
        let progress = speech.kind == SpeechKind::Reply;
        self.record(
            Turn {
                sequence: 0,
                speaker: Speaker::Bot,
                text,
                started_ms: speech.first_heard_at.unwrap_or(speech.started_at),
                ended_ms: self.now,
                sentiment: None,
                interrupted: cut_short && !speech.complete(),
            },
            Some(speech.id),
            progress,
            out,
        );
    }

    fn record(
        &mut self,
        mut turn: Turn,
        speech: Option<SpeechId>,
        made_progress: bool,
        out: &mut Vec<Action>,
    ) -> u32 {
        let sequence = u32::try_from(self.turns.len()).unwrap_or(u32::MAX);
        turn.sequence = sequence;
        self.turns.push(turn.clone());
        self.made_progress.push(made_progress);
        out.push(Action::RecordTurn { turn, speech });
        sequence
    }

    // ------------------------------------------------------------ speeches

    /// Ends the speeches played to the end, in order, and does what follows
    /// the last one (transfer, hang-up, listening).
    fn settle_speeches(&mut self, out: &mut Vec<Action>) {
        while let Some(front) = self.speeches.front() {
            if !front.complete() {
                break;
            }
            let Some(speech) = self.speeches.pop_front() else {
                break;
            };
            out.push(Action::SpeechFinished { speech: speech.id });
            if speech.kind == SpeechKind::Reply {
                self.failed_replies = 0;
            }
            self.record_speech(&speech, false, out);
        }
        if self.agent_busy() {
            return;
        }
        match self.phase {
            Phase::HandingOver(agent, reason) => {
                self.phase = Phase::Over;
                out.push(Action::Transfer { agent, reason });
            }
            Phase::Closing(reason) => {
                self.phase = Phase::Over;
                out.push(Action::HangUp { reason });
            }
            Phase::Talking => match self.unanswered {
                Some((turn, request)) => self.reply_to(turn, request, out),
                None => self.listen_for_silence(),
            },
            Phase::TakingMessage => self.listen_for_silence(),
            Phase::Waiting | Phase::FindingAgent(_) | Phase::Over => {}
        }
    }

    fn listen_for_silence(&mut self) {
        if self.config.silence_reprompt_ms > 0 && self.listening.words() == 0 {
            self.reprompt_at = Some(self.now.saturating_add(self.config.silence_reprompt_ms));
        }
    }

    // ------------------------------------------------------------ time

    /// Fires every deadline that has passed.
    fn advance(&mut self, out: &mut Vec<Action>) {
        if self.phase == Phase::Over {
            return;
        }
        if self.agent_busy() && self.barge_in_due() {
            self.barge_in(out);
        }
        if self.listening.ends_at.is_some_and(|at| at <= self.now) {
            self.listening.ends_at = None;
            self.end_turn(out);
        }
        if let Some(pending) = self.pending_reply
            && pending.give_up_at <= self.now
        {
            self.pending_reply = None;
            self.start_reply(pending.turn, ContextUse::Stale, out);
        }
        if self.filler_at.is_some_and(|at| at <= self.now) {
            self.filler_at = None;
            // Only before the reply has any audio: the filler plays first.
            let waiting = self.pending_reply.is_some()
                || self
                    .speeches
                    .iter()
                    .any(|s| s.kind == SpeechKind::Reply && s.chunks.is_empty());
            let no_line_queued = self.speeches.iter().all(|s| s.kind == SpeechKind::Reply);
            if waiting && no_line_queued && self.phase == Phase::Talking {
                let text = self.config.lines.filler.clone();
                // Played before the reply: it goes ahead of it in the queue.
                self.say(LineKind::Filler, text, out);
                if let Some(filler) = self.speeches.pop_back() {
                    self.speeches.push_front(filler);
                }
            }
        }
        if self.reprompt_at.is_some_and(|at| at <= self.now) {
            self.reprompt_at = None;
            if !self.agent_busy() && self.listening.words() == 0 {
                self.silence(out);
            }
        }
    }

    fn silence(&mut self, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Talking | Phase::TakingMessage => {}
            _ => return,
        }
        if self.reprompts >= self.config.max_reprompts {
            let text = self.config.lines.goodbye.clone();
            self.phase = Phase::Closing(HangUpReason::NoResponse);
            self.say(LineKind::Goodbye, text, out);
        } else {
            self.reprompts += 1;
            let text = self.config.lines.reprompt.clone();
            self.say(LineKind::Reprompt, text, out);
        }
    }

    // ------------------------------------------------------------ escalation

    fn evaluate(&self) -> EscalationDecision {
        if self.escalated {
            return EscalationDecision::Stay;
        }
        let snapshots: Vec<TurnSnapshot> = self
            .turns
            .iter()
            .zip(&self.made_progress)
            .map(|(turn, progress)| TurnSnapshot {
                speaker: turn.speaker,
                text: turn.text.clone(),
                sentiment: turn.sentiment,
                made_progress: *progress,
            })
            .collect();
        self.policy.evaluate(&EscalationInput {
            turns: &snapshots,
            customer_tier: self.tier,
        })
    }

    fn escalate(&mut self, reason: EscalationReason, skills: Vec<Skill>, out: &mut Vec<Action>) {
        if self.escalated || !matches!(self.phase, Phase::Talking) {
            return;
        }
        self.escalated = true;
        self.pending_reply = None;
        self.unanswered = None;
        // A reply nobody has heard yet is moot; one being heard finishes.
        if let Some(reply) = self.reply_in_flight()
            && self.speech_mut(reply).is_some_and(|s| s.heard == 0)
        {
            self.cancel_speech(reply, out);
        }
        self.phase = Phase::FindingAgent(reason);
        out.push(Action::FindAgent { reason, skills });
    }

    fn agent_found(&mut self, agent: Option<AgentId>, out: &mut Vec<Action>) {
        let Phase::FindingAgent(reason) = self.phase else {
            return;
        };
        match (agent, self.config.no_agent) {
            (Some(agent), _) => {
                self.phase = Phase::HandingOver(agent, reason);
                let text = self.config.lines.handover.clone();
                self.say(LineKind::Handover, text, out);
            }
            (None, NoAgentFallback::TakeMessage) => {
                self.phase = Phase::TakingMessage;
                let text = self.config.lines.take_message.clone();
                self.say(LineKind::TakeMessage, text, out);
            }
            (None, NoAgentFallback::KeepAi) if reason == EscalationReason::ServiceFailure => {
                self.phase = Phase::Closing(HangUpReason::ServiceFailure);
                let text = self.config.lines.service_failure.clone();
                self.say(LineKind::Goodbye, text, out);
            }
            (None, NoAgentFallback::KeepAi) => {
                self.phase = Phase::Talking;
                match self.last_caller_turn() {
                    // The turn that escalated still deserves an answer: now,
                    // or once the agent has finished what it is saying.
                    Some(turn) if self.agent_busy() => self.unanswered = Some((turn, None)),
                    Some(turn) => self.start_reply(turn, ContextUse::Stale, out),
                    // Escalated before anything was said (a VIP): greet.
                    None if self.turns.is_empty() && !self.agent_busy() => {
                        let greeting = self.greeting.trim().to_owned();
                        if greeting.is_empty() {
                            self.listen_for_silence();
                        } else {
                            self.say(LineKind::Greeting, greeting, out);
                        }
                    }
                    None => {
                        if !self.agent_busy() {
                            self.listen_for_silence();
                        }
                    }
                }
            }
        }
    }

    fn last_caller_turn(&self) -> Option<u32> {
        let last = self.turns.last()?;
        (last.speaker == Speaker::Caller).then_some(last.sequence)
    }

    fn sentiment(&mut self, turn: u32, sentiment: Option<Sentiment>, out: &mut Vec<Action>) {
        let Some(sentiment) = sentiment else {
            return;
        };
        let Some(entry) = self.turns.get_mut(turn as usize) else {
            return;
        };
        if entry.speaker != Speaker::Caller || entry.sentiment.is_some() {
            return;
        }
        entry.sentiment = Some(sentiment);
        out.push(Action::RecordSentiment { turn, sentiment });
        if self.phase == Phase::Talking
            && let EscalationDecision::Escalate {
                reason,
                required_skills,
            } = self.evaluate()
        {
            self.escalate(reason, required_skills, out);
        }
    }

    // ------------------------------------------------------------ failures

    fn failed(&mut self, stage: Stage, speech: Option<SpeechId>, out: &mut Vec<Action>) {
        match stage {
            Stage::SpeechToText => {
                // The agent cannot hear: a human takes over, or goodbye.
                self.pending_reply = None;
                if self.phase == Phase::Talking {
                    self.escalate(EscalationReason::ServiceFailure, Vec::new(), out);
                }
            }
            Stage::LanguageModel => {
                let Some(id) = speech.or_else(|| self.reply_in_flight()) else {
                    return;
                };
                let Some(reply) = self.speeches.iter().find(|s| s.id == id) else {
                    return;
                };
                if reply.kind != SpeechKind::Reply {
                    return;
                }
                let produced = u32::try_from(reply.chunks.len()).unwrap_or(u32::MAX);
                if produced > 0 {
                    // What was produced still plays; the reply just ends early.
                    if let Some(s) = self.speech_mut(id) {
                        s.total = Some(produced);
                    }
                    self.settle_speeches(out);
                    return;
                }
                self.cancel_speech(id, out);
                self.failed_replies += 1;
                if self.phase != Phase::Talking {
                    return;
                }
                if self.failed_replies >= self.config.max_failed_replies {
                    self.escalate(EscalationReason::ServiceFailure, Vec::new(), out);
                } else {
                    let text = self.config.lines.apology.clone();
                    self.say(LineKind::Apology, text, out);
                }
            }
            Stage::TextToSpeech => {
                // The speech cannot be voiced: it ends with what was heard.
                let Some(id) = speech else {
                    return;
                };
                let reply = self
                    .speeches
                    .iter()
                    .any(|s| s.id == id && s.kind == SpeechKind::Reply);
                self.cancel_speech(id, out);
                // A reply the caller could not hear is a failed reply: when
                // the agent cannot be heard again and again, a human takes
                // over (the transfer does not wait for a line it cannot say).
                if reply && self.phase == Phase::Talking {
                    self.failed_replies += 1;
                    if self.failed_replies >= self.config.max_failed_replies {
                        self.escalate(EscalationReason::ServiceFailure, Vec::new(), out);
                        return;
                    }
                }
                self.settle_speeches(out);
            }
        }
    }
}

#[cfg(test)]
mod tests;
