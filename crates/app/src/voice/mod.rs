//! The real-time voice runtime: one task per live call drives the domain's
//! [`ConversationEngine`](iace_domain::conversation::engine::ConversationEngine)
//! with the real ports.
//!
//! ```text
//!  media in ──audio──▶ STT forwarder ──▶ SpeechToText session
//!     │  dtmf, marks, stop                    │ transcript events
//!     ▼                                       ▼
//!  ┌──────────────────── call task ─────────────────────┐
//!  │ ConversationEngine::on_event → actions              │◀── results of the
//!  │  Say / StartReply → speech producer tasks           │    spawned work
//!  │  FetchContext, AnalyzeSentiment, FindAgent → tasks  │    (context, sentiment,
//!  │  CancelSpeech / ClearAudio → abort + pacer          │     chunks, audio done,
//!  │  RecordTurn, Transfer, HangUp → CallControl         │     failures)
//!  └─────────────────────────────────────────────────────┘
//!  speech producer: LanguageModel stream → SentenceChunker → TextToSpeech
//!                   → pieces (audio, marks) ─▶ pacer ─▶ media out
//! ```
//!
//! Every channel is bounded: a slow caller connection slows the pacer, which
//! slows synthesis, which stops reading the model's stream — nothing piles up
//! in memory. Cancelling a speech aborts its tasks (dropping a provider stream
//! cancels it upstream). Sentiment, context and agent look-ups run beside the
//! conversation and report back as events; the engine decides what waits for
//! them (only a reply waits for its context, and only up to its timeout).
//!
//! Each reply is timed stage by stage ([`TurnLatency`]: end of turn, the
//! model's first text, the first audio, the first frame out) for a
//! [`VoiceObserver`], when one is set.

mod live;
mod pacer;
mod runtime;
mod timing;
mod token;

pub use live::{OpenCall, VoiceService, VoiceStores};
pub use pacer::{MediaOut, Pacing, mark_name, parse_mark};
pub use runtime::{
    CallControl, CallReport, CallSetup, ContextPattern, MediaIn, ReplyContext, VoiceConfig,
    VoicePorts, run_call,
};
pub use timing::{TurnLatency, VoiceObserver};
pub use token::{MediaTokens, TokenError};
