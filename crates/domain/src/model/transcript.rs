use serde::{Deserialize, Serialize};

use crate::{CallId, Sentiment, TranscriptEntryId};

/// Who said a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The person on the phone.
    Caller,
    /// The AI agent.
    Bot,
    /// A human agent after a transfer.
    HumanAgent,
    /// Announcements and events (e.g. "call transferred").
    System,
}

/// One utterance in a call, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// Identity.
    pub id: TranscriptEntryId,
    /// The call it belongs to.
    pub call_id: CallId,
    /// Position in the call, from 0.
    pub sequence: u32,
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said (for an interrupted bot reply: only what was actually spoken).
    pub text: String,
    /// Start, in milliseconds from the call's answer.
    pub started_ms: u64,
    /// End, in milliseconds from the call's answer.
    pub ended_ms: u64,
    /// Sentiment of the utterance (caller lines).
    pub sentiment: Option<Sentiment>,
    /// Set when a bot reply was cut off by the caller (barge-in).
    pub interrupted: bool,
}
