//! The conversation: what happens between answering a call and hanging up.
//!
//! - [`engine`]: the sans-IO turn-taking state machine
//!   ([`engine::ConversationEngine::on_event`] → actions).
//! - [`chunker`]: streamed model text → speakable chunks for text-to-speech.
//! - [`prompt`]: the language model's prompt within a token budget.

pub mod chunker;
pub mod engine;
pub mod prompt;

use serde::{Deserialize, Serialize};

use crate::Sentiment;
use crate::model::Speaker;

/// One finished utterance of the conversation, as the engine records it (the
/// transcript line without its ids).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Position in the call, from 0.
    pub sequence: u32,
    /// Who spoke ([`Speaker::Caller`] or [`Speaker::Bot`]).
    pub speaker: Speaker,
    /// What was said; for an interrupted bot turn only what the caller heard.
    pub text: String,
    /// Start, ms from the call's start.
    pub started_ms: u64,
    /// End, ms from the call's start.
    pub ended_ms: u64,
    /// The caller turn's sentiment, once scored.
    pub sentiment: Option<Sentiment>,
    /// A bot turn cut off by the caller (barge-in) or by the hang-up.
    pub interrupted: bool,
}
