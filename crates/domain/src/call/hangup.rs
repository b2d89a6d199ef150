//! Provider hang-up causes and the end state each one means.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::CallStatus;

/// Why the provider says a call ended (Telnyx `call.hangup` `hangup_cause`).
///
/// Unknown strings parse to [`HangupCause::Unspecified`] rather than failing: a new
/// cause introduced by the provider must still end the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupCause {
    /// A party hung up normally.
    NormalClearing,
    /// The originator cancelled before the call was answered.
    OriginatorCancel,
    /// The callee declined the call.
    CallRejected,
    /// The callee's line was busy.
    UserBusy,
    /// Nobody answered.
    NoAnswer,
    /// Ringing timed out.
    Timeout,
    /// The call reached its maximum duration.
    TimeLimit,
    /// The number does not exist or cannot be routed.
    NotFound,
    /// Anything else, including causes this version does not know.
    Unspecified,
}

impl HangupCause {
    /// Parses the provider's string, case-insensitively; unknown → `Unspecified`.
    #[must_use]
    pub fn from_provider(raw: &str) -> Self {
        match raw.trim().to_ascii_lowercase().as_str() {
            "normal_clearing" => Self::NormalClearing,
            "originator_cancel" => Self::OriginatorCancel,
            "call_rejected" => Self::CallRejected,
            "user_busy" => Self::UserBusy,
            "no_answer" => Self::NoAnswer,
            "timeout" => Self::Timeout,
            "time_limit" => Self::TimeLimit,
            "not_found" => Self::NotFound,
            _ => Self::Unspecified,
        }
    }

    /// The stable snake_case name (the provider's spelling).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NormalClearing => "normal_clearing",
            Self::OriginatorCancel => "originator_cancel",
            Self::CallRejected => "call_rejected",
            Self::UserBusy => "user_busy",
            Self::NoAnswer => "no_answer",
            Self::Timeout => "timeout",
            Self::TimeLimit => "time_limit",
            Self::NotFound => "not_found",
            Self::Unspecified => "unspecified",
        }
    }

    /// The end state a hang-up with this cause leads to.
    ///
    /// `answered` says whether the call was ever connected. A call that was never
    /// answered cannot be `Completed`: a normal clearing before answer is the
    /// caller giving up (`Canceled`). Once answered, every orderly cause means the
    /// conversation took place (`Completed`) — `unspecified` and causes this
    /// version does not know included, so a conversation is never counted as a
    /// failure for lack of a reason; only `not_found` after an answer means the
    /// call was routed abnormally (`Failed`).
    #[must_use]
    pub const fn end_state(self, answered: bool) -> CallStatus {
        if answered {
            return match self {
                Self::NotFound => CallStatus::Failed,
                _ => CallStatus::Completed,
            };
        }
        match self {
            Self::NormalClearing | Self::OriginatorCancel => CallStatus::Canceled,
            // A decline is reported like a busy line: the callee would not take it.
            Self::CallRejected | Self::UserBusy => CallStatus::Busy,
            Self::NoAnswer | Self::Timeout | Self::TimeLimit => CallStatus::NoAnswer,
            Self::NotFound | Self::Unspecified => CallStatus::Failed,
        }
    }
}

impl fmt::Display for HangupCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who hung up (Telnyx `hangup_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupSource {
    /// The party that placed the call.
    Caller,
    /// The party that received it.
    Callee,
    /// Not reported.
    Unknown,
}

impl HangupSource {
    /// Parses the provider's string; anything unrecognised is `Unknown`.
    #[must_use]
    pub fn from_provider(raw: &str) -> Self {
        match raw.trim().to_ascii_lowercase().as_str() {
            "caller" => Self::Caller,
            "callee" => Self::Callee,
            _ => Self::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [HangupCause; 9] = [
        HangupCause::NormalClearing,
        HangupCause::OriginatorCancel,
        HangupCause::CallRejected,
        HangupCause::UserBusy,
        HangupCause::NoAnswer,
        HangupCause::Timeout,
        HangupCause::TimeLimit,
        HangupCause::NotFound,
        HangupCause::Unspecified,
    ];

    #[test]
    fn provider_strings_round_trip() {
        for cause in ALL {
            assert_eq!(HangupCause::from_provider(cause.as_str()), cause);
            assert_eq!(
                serde_json::to_string(&cause).expect("ser"),
                format!("\"{}\"", cause.as_str())
            );
        }
        assert_eq!(
            HangupCause::from_provider("USER_BUSY"),
            HangupCause::UserBusy
        );
        assert_eq!(
            HangupCause::from_provider("brand_new_cause"),
            HangupCause::Unspecified
        );
    }

    #[test]
    fn unanswered_calls_never_complete() {
        for cause in ALL {
            assert_ne!(cause.end_state(false), CallStatus::Completed, "{cause}");
            assert!(cause.end_state(false).is_terminal());
            assert!(cause.end_state(true).is_terminal());
        }
    }

    #[test]
    fn the_mapping_table() {
        use CallStatus::*;
        let table = [
            (HangupCause::NormalClearing, Canceled, Completed),
            (HangupCause::OriginatorCancel, Canceled, Completed),
            (HangupCause::CallRejected, Busy, Completed),
            (HangupCause::UserBusy, Busy, Completed),
            (HangupCause::NoAnswer, NoAnswer, Completed),
            (HangupCause::Timeout, NoAnswer, Completed),
            (HangupCause::TimeLimit, NoAnswer, Completed),
            (HangupCause::NotFound, Failed, Failed),
            (HangupCause::Unspecified, Failed, Completed),
        ];
        for (cause, unanswered, answered) in table {
            assert_eq!(cause.end_state(false), unanswered, "{cause} before answer");
            assert_eq!(cause.end_state(true), answered, "{cause} after answer");
        }
    }

    #[test]
    fn hangup_source_parses() {
        assert_eq!(HangupSource::from_provider("caller"), HangupSource::Caller);
        assert_eq!(HangupSource::from_provider("Callee"), HangupSource::Callee);
        assert_eq!(HangupSource::from_provider(""), HangupSource::Unknown);
    }
}
