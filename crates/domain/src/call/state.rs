//! The call state machine.
//!
//! ```text
//!            ┌────────── Failed / Canceled / HungUp(cause) ──────────┐
//!            │                                                       ▼
//! Pending ─Ringing─▶ Ringing ─Answered─▶ InProgress ─HungUp─▶ Completed | Failed
//!    └────────Answered────────────────────▲   │  ▲
//!                                            │  └─TransferFailed─┐
//!                        EscalationStarted   ▼                   │
//!                                         Escalating ───────────┘
//!                                            │ Transferred
//!                                            ▼
//!                                       Transferred
//! ```
//!
//! [`transition`] is the whole table. It never silently overwrites: every pair
//! (state, event) is either a change, a benign no-op with a reason
//! ([`Unchanged`]), or a typed [`TransitionError`]. Terminal states are final: no
//! event leaves them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::HangupCause;

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Created; not yet reported by the provider.
    Pending,
    /// The provider is ringing the other party.
    Ringing,
    /// Connected; the AI agent is talking.
    InProgress,
    /// A transfer to a human agent is under way.
    Escalating,
    /// Ended after a conversation. Terminal.
    Completed,
    /// Ended abnormally (routing failure, dropped call, provider error). Terminal.
    Failed,
    /// Nobody answered. Terminal.
    NoAnswer,
    /// The line was busy or the callee declined. Terminal.
    Busy,
    /// Given up before being answered. Terminal.
    Canceled,
    /// Handed over to a human agent; IACE's part is done. Terminal.
    Transferred,
}

impl CallStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [Self; 10] = [
        Self::Pending,
        Self::Ringing,
        Self::InProgress,
        Self::Escalating,
        Self::Completed,
        Self::Failed,
        Self::NoAnswer,
        Self::Busy,
        Self::Canceled,
        Self::Transferred,
    ];

    /// Whether the call is over (no event leaves this state).
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed
                | Self::Failed
                | Self::NoAnswer
                | Self::Busy
                | Self::Canceled
                | Self::Transferred
        )
    }

    /// Whether the call has been answered (it is or was connected).
    #[must_use]
    pub const fn is_connected(self) -> bool {
        matches!(self, Self::InProgress | Self::Escalating)
    }

    /// The stable snake_case name used in storage, the API and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ringing => "ringing",
            Self::InProgress => "in_progress",
            Self::Escalating => "escalating",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::NoAnswer => "no_answer",
            Self::Busy => "busy",
            Self::Canceled => "canceled",
            Self::Transferred => "transferred",
        }
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no call status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown call status `{0}`")]
pub struct UnknownCallStatus(pub String);

impl FromStr for CallStatus {
    type Err = UnknownCallStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownCallStatus(s.chars().take(32).collect()))
    }
}

/// Something that happened to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEvent {
    /// The provider is ringing the other party (Telnyx `call.initiated`).
    Ringing,
    /// The call was connected (`call.answered`).
    Answered,
    /// The escalation policy decided to hand over and a transfer was issued.
    EscalationStarted,
    /// The transfer did not connect; the AI agent carries on.
    TransferFailed,
    /// The human agent is connected (`call.bridged` after a transfer).
    Transferred,
    /// The call ended (`call.hangup`).
    HungUp {
        /// The provider's cause.
        cause: HangupCause,
    },
    /// A command on the call failed for good before it was connected (dial
    /// rejected, answer failed).
    Failed,
    /// An operator cancelled the call before it was answered.
    Canceled,
    /// The provider reported something that does not change the call's
    /// status; it is recorded in the history (in any state, ended included:
    /// a recording is saved after the hang-up).
    Noted {
        /// What.
        notice: Notice,
    },
}

/// A provider report that leaves the call's status as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// The caller pressed a key.
    KeyPressed,
    /// Answering-machine detection heard a person.
    HumanDetected,
    /// Answering-machine detection heard a machine (voicemail).
    MachineDetected,
    /// Answering-machine detection could not tell.
    MachineDetectionUnsure,
    /// A machine's greeting ended.
    MachineGreetingEnded,
    /// The media stream to our endpoint started.
    MediaStreamStarted,
    /// The media stream stopped.
    MediaStreamStopped,
    /// The media stream failed.
    MediaStreamFailed,
    /// The provider's own speech finished.
    SpeakEnded,
    /// An audio file finished playing.
    PlaybackEnded,
    /// A recording was saved (its reference is on the call).
    RecordingSaved,
    /// An event type this version does not act on.
    Unhandled,
}

impl Notice {
    /// The stable snake_case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::KeyPressed => "key_pressed",
            Self::HumanDetected => "human_detected",
            Self::MachineDetected => "machine_detected",
            Self::MachineDetectionUnsure => "machine_detection_unsure",
            Self::MachineGreetingEnded => "machine_greeting_ended",
            Self::MediaStreamStarted => "media_stream_started",
            Self::MediaStreamStopped => "media_stream_stopped",
            Self::MediaStreamFailed => "media_stream_failed",
            Self::SpeakEnded => "speak_ended",
            Self::PlaybackEnded => "playback_ended",
            Self::RecordingSaved => "recording_saved",
            Self::Unhandled => "unhandled",
        }
    }
}

impl CallEvent {
    /// The stable snake_case name of the event kind.
    #[must_use]
    pub const fn kind(self) -> &'static str {
        match self {
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::EscalationStarted => "escalation_started",
            Self::TransferFailed => "transfer_failed",
            Self::Transferred => "transferred",
            Self::HungUp { .. } => "hung_up",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Noted { .. } => "noted",
        }
    }
}

impl fmt::Display for CallEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HungUp { cause } => write!(f, "hung_up({cause})"),
            Self::Noted { notice } => write!(f, "noted({})", notice.as_str()),
            other => f.write_str(other.kind()),
        }
    }
}

/// Why an event changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unchanged {
    /// The event was already applied (a redelivered webhook).
    Duplicate,
    /// The call is already past the point this event describes (an event that
    /// arrived late, e.g. `ringing` after `answered`).
    Stale,
    /// The call has ended; the event describes nothing new (e.g. the hang-up that
    /// follows a completed transfer).
    AlreadyEnded,
    /// A report that never changes the status ([`CallEvent::Noted`]).
    Noted,
}

impl Unchanged {
    /// The stable snake_case name, recorded in the call's event history.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
            Self::AlreadyEnded => "already_ended",
            Self::Noted => "noted",
        }
    }
}

/// What applying an event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TransitionOutcome {
    /// The call moves to `to`.
    Applied {
        /// Status before.
        from: CallStatus,
        /// Status after.
        to: CallStatus,
    },
    /// The call stays where it is, for a benign reason.
    Unchanged {
        /// Why.
        reason: Unchanged,
    },
}

/// An event that cannot apply to a call in its current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TransitionError {
    /// The call has ended and the event would reopen it (e.g. an answer after the
    /// hang-up). It must be recorded as ignored, never applied.
    #[error("call already ended as {status}; `{event}` cannot reopen it")]
    CallEnded {
        /// The terminal status.
        status: CallStatus,
        /// The rejected event.
        event: CallEvent,
    },
    /// The event makes no sense in this state (e.g. a transfer before answer).
    #[error("`{event}` is not allowed while the call is {from}")]
    NotAllowed {
        /// The current status.
        from: CallStatus,
        /// The rejected event.
        event: CallEvent,
    },
}

impl TransitionError {
    /// The stable snake_case name, recorded in the call's event history.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::CallEnded { .. } => "call_ended",
            Self::NotAllowed { .. } => "not_allowed",
        }
    }
}

/// The transition table: what `event` does to a call in `from`.
///
/// # Errors
/// [`TransitionError::CallEnded`] for an event that would reopen an ended call;
/// [`TransitionError::NotAllowed`] for an event that has no meaning in `from`.
pub fn transition(
    from: CallStatus,
    event: CallEvent,
) -> Result<TransitionOutcome, TransitionError> {
    use CallEvent as E;
    use CallStatus as S;

    let to = |to: S| Ok(TransitionOutcome::Applied { from, to });
    let unchanged = |reason| Ok(TransitionOutcome::Unchanged { reason });
    let not_allowed = Err(TransitionError::NotAllowed { from, event });

    if let E::Noted { .. } = event {
        return unchanged(Unchanged::Noted);
    }

    if from.is_terminal() {
        return match (from, event) {
            // The hang-up after a transfer or a second hang-up: nothing new.
            (_, E::HungUp { .. }) => unchanged(Unchanged::AlreadyEnded),
            (S::Failed, E::Failed) | (S::Canceled, E::Canceled) => unchanged(Unchanged::Duplicate),
            (S::Transferred, E::Transferred) => unchanged(Unchanged::Duplicate),
            // The late `call.initiated` of a call already over.
            (_, E::Ringing) => unchanged(Unchanged::Stale),
            _ => Err(TransitionError::CallEnded {
                status: from,
                event,
            }),
        };
    }

    match (from, event) {
        (S::Pending, E::Ringing) => to(S::Ringing),
        (S::Ringing, E::Ringing) => unchanged(Unchanged::Duplicate),
        (S::InProgress | S::Escalating, E::Ringing) => unchanged(Unchanged::Stale),

        (S::Pending | S::Ringing, E::Answered) => to(S::InProgress),
        (S::InProgress, E::Answered) => unchanged(Unchanged::Duplicate),
        (S::Escalating, E::Answered) => unchanged(Unchanged::Stale),

        (S::InProgress, E::EscalationStarted) => to(S::Escalating),
        (S::Escalating, E::EscalationStarted) => unchanged(Unchanged::Duplicate),

        (S::Escalating, E::TransferFailed) => to(S::InProgress),
        (S::InProgress, E::TransferFailed) => unchanged(Unchanged::Duplicate),

        (S::Escalating, E::Transferred) => to(S::Transferred),

        (S::Pending | S::Ringing, E::HungUp { cause }) => to(cause.end_state(false)),
        (S::InProgress | S::Escalating, E::HungUp { cause }) => to(cause.end_state(true)),

        // A command failure ends a call only before it is connected; a live call
        // ends through its hang-up (the runtime hangs up when it cannot go on).
        (S::Pending | S::Ringing, E::Failed) => to(S::Failed),
        (S::Pending | S::Ringing, E::Canceled) => to(S::Canceled),

        _ => not_allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, VecDeque};

    const CAUSES: [HangupCause; 9] = [
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

    fn all_events() -> Vec<CallEvent> {
        let mut events = vec![
            CallEvent::Ringing,
            CallEvent::Answered,
            CallEvent::EscalationStarted,
            CallEvent::TransferFailed,
            CallEvent::Transferred,
            CallEvent::Failed,
            CallEvent::Canceled,
        ];
        events.extend(CAUSES.map(|cause| CallEvent::HungUp { cause }));
        events.extend(
            [
                Notice::KeyPressed,
                Notice::RecordingSaved,
                Notice::Unhandled,
            ]
            .map(|notice| CallEvent::Noted { notice }),
        );
        events
    }

    #[test]
    fn notices_are_recorded_in_every_state_and_change_nothing() {
        for s in CallStatus::ALL {
            assert_eq!(
                transition(
                    s,
                    CallEvent::Noted {
                        notice: Notice::RecordingSaved
                    }
                ),
                Ok(TransitionOutcome::Unchanged {
                    reason: Unchanged::Noted
                }),
                "{s}"
            );
        }
    }

    fn event_strategy() -> impl Strategy<Value = CallEvent> {
        prop::sample::select(all_events())
    }

    fn apply(from: CallStatus, event: CallEvent) -> CallStatus {
        match transition(from, event) {
            Ok(TransitionOutcome::Applied { to, .. }) => to,
            Ok(TransitionOutcome::Unchanged { .. }) | Err(_) => from,
        }
    }

    fn applied(from: CallStatus, event: CallEvent) -> CallStatus {
        match transition(from, event) {
            Ok(TransitionOutcome::Applied { to, .. }) => to,
            other => panic!("{event} from {from} should apply, got {other:?}"),
        }
    }

    #[test]
    fn outbound_happy_path() {
        let s = applied(CallStatus::Pending, CallEvent::Ringing);
        assert_eq!(s, CallStatus::Ringing);
        let s = applied(s, CallEvent::Answered);
        assert_eq!(s, CallStatus::InProgress);
        let s = applied(
            s,
            CallEvent::HungUp {
                cause: HangupCause::NormalClearing,
            },
        );
        assert_eq!(s, CallStatus::Completed);
    }

    #[test]
    fn escalation_path_and_failed_transfer() {
        let s = applied(CallStatus::InProgress, CallEvent::EscalationStarted);
        assert_eq!(s, CallStatus::Escalating);
        assert_eq!(
            applied(s, CallEvent::TransferFailed),
            CallStatus::InProgress
        );
        assert_eq!(applied(s, CallEvent::Transferred), CallStatus::Transferred);
        assert_eq!(
            applied(
                s,
                CallEvent::HungUp {
                    cause: HangupCause::NormalClearing
                }
            ),
            CallStatus::Completed,
            "the caller hanging up during the transfer still had a conversation"
        );
    }

    #[test]
    fn hangup_before_answer_ends_without_completing() {
        assert_eq!(
            applied(
                CallStatus::Ringing,
                CallEvent::HungUp {
                    cause: HangupCause::UserBusy
                }
            ),
            CallStatus::Busy
        );
        assert_eq!(
            applied(
                CallStatus::Ringing,
                CallEvent::HungUp {
                    cause: HangupCause::Timeout
                }
            ),
            CallStatus::NoAnswer
        );
        // Out of order: the hang-up arrives before even `call.initiated`.
        assert_eq!(
            applied(
                CallStatus::Pending,
                CallEvent::HungUp {
                    cause: HangupCause::NormalClearing
                }
            ),
            CallStatus::Canceled
        );
    }

    #[test]
    fn answer_may_arrive_before_ringing() {
        assert_eq!(
            applied(CallStatus::Pending, CallEvent::Answered),
            CallStatus::InProgress
        );
        assert_eq!(
            transition(CallStatus::InProgress, CallEvent::Ringing),
            Ok(TransitionOutcome::Unchanged {
                reason: Unchanged::Stale
            })
        );
    }

    #[test]
    fn a_late_answer_does_not_resurrect_an_ended_call() {
        let ended = applied(
            CallStatus::Ringing,
            CallEvent::HungUp {
                cause: HangupCause::NoAnswer,
            },
        );
        assert_eq!(
            transition(ended, CallEvent::Answered),
            Err(TransitionError::CallEnded {
                status: CallStatus::NoAnswer,
                event: CallEvent::Answered
            })
        );
    }

    #[test]
    fn redelivered_events_are_duplicates() {
        let cases = [
            (CallStatus::Ringing, CallEvent::Ringing),
            (CallStatus::InProgress, CallEvent::Answered),
            (CallStatus::Escalating, CallEvent::EscalationStarted),
            (CallStatus::Transferred, CallEvent::Transferred),
            (CallStatus::Failed, CallEvent::Failed),
            (CallStatus::Canceled, CallEvent::Canceled),
        ];
        for (status, event) in cases {
            assert_eq!(
                transition(status, event),
                Ok(TransitionOutcome::Unchanged {
                    reason: Unchanged::Duplicate
                }),
                "{event} in {status}"
            );
        }
    }

    #[test]
    fn hangup_after_transfer_is_already_ended() {
        assert_eq!(
            transition(
                CallStatus::Transferred,
                CallEvent::HungUp {
                    cause: HangupCause::NormalClearing
                }
            ),
            Ok(TransitionOutcome::Unchanged {
                reason: Unchanged::AlreadyEnded
            })
        );
    }

    #[test]
    fn nonsense_events_are_typed_errors() {
        let cases = [
            (CallStatus::Pending, CallEvent::EscalationStarted),
            (CallStatus::Ringing, CallEvent::Transferred),
            (CallStatus::InProgress, CallEvent::Transferred),
            (CallStatus::InProgress, CallEvent::Canceled),
            (CallStatus::Pending, CallEvent::TransferFailed),
            (CallStatus::InProgress, CallEvent::Failed),
            (CallStatus::Escalating, CallEvent::Failed),
        ];
        for (from, event) in cases {
            let err = transition(from, event).expect_err("must be rejected");
            assert_eq!(err, TransitionError::NotAllowed { from, event });
            assert_eq!(err.code(), "not_allowed");
        }
    }

    #[test]
    fn error_messages_name_state_and_event() {
        let err = transition(CallStatus::Completed, CallEvent::Answered).expect_err("ended");
        assert_eq!(
            err.to_string(),
            "call already ended as completed; `answered` cannot reopen it"
        );
        assert_eq!(err.code(), "call_ended");
    }

    #[test]
    fn status_names_round_trip() {
        for status in CallStatus::ALL {
            assert_eq!(status.as_str().parse::<CallStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_string(&status).expect("ser"),
                format!("\"{}\"", status.as_str())
            );
        }
        assert!("done".parse::<CallStatus>().is_err());
    }

    #[test]
    fn event_serializes_with_a_type_tag() {
        let json = serde_json::to_string(&CallEvent::HungUp {
            cause: HangupCause::UserBusy,
        })
        .expect("ser");
        assert_eq!(json, r#"{"type":"hung_up","cause":"user_busy"}"#);
        assert_eq!(
            serde_json::from_str::<CallEvent>(&json).expect("de"),
            CallEvent::HungUp {
                cause: HangupCause::UserBusy
            }
        );
    }

    #[test]
    fn every_state_is_reachable_from_pending() {
        let mut seen = BTreeSet::from([CallStatus::Pending.as_str()]);
        let mut queue = VecDeque::from([CallStatus::Pending]);
        while let Some(s) = queue.pop_front() {
            for e in all_events() {
                let next = apply(s, e);
                if seen.insert(next.as_str()) {
                    queue.push_back(next);
                }
            }
        }
        let all: BTreeSet<_> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn the_table_is_total() {
        // Every (state, event) pair has a defined answer; this also pins that only
        // the documented pairs change state.
        let mut changes = 0;
        for s in CallStatus::ALL {
            for e in all_events() {
                if let Ok(TransitionOutcome::Applied { from, to }) = transition(s, e) {
                    assert_eq!(from, s);
                    assert_ne!(from, to, "an applied transition changes the state");
                    changes += 1;
                }
            }
        }
        // Pending: ringing, answered, 9 hang-ups, failed, canceled = 13
        // Ringing: answered, 9 hang-ups, failed, canceled = 12
        // InProgress: escalation, 9 hang-ups = 10
        // Escalating: transfer failed, transferred, 9 hang-ups = 11
        assert_eq!(changes, 46);
    }

    proptest! {
        #[test]
        fn no_sequence_leaves_a_terminal_state(events in proptest::collection::vec(event_strategy(), 0..40)) {
            let mut state = CallStatus::Pending;
            let mut ended = false;
            for e in events {
                let next = apply(state, e);
                if ended {
                    prop_assert_eq!(next, state, "terminal {} left on {}", state, e);
                }
                state = next;
                ended |= state.is_terminal();
            }
        }

        #[test]
        fn reapplying_an_event_never_changes_state(events in proptest::collection::vec(event_strategy(), 1..30)) {
            let mut state = CallStatus::Pending;
            for e in events {
                state = apply(state, e);
                let again = transition(state, e);
                let changed_again = matches!(again, Ok(TransitionOutcome::Applied { .. }));
                // A redelivered webhook must never move the call a second time.
                prop_assert!(!changed_again, "{} re-applied in {} changed state: {:?}", e, state, again);
            }
        }

        #[test]
        fn connected_calls_never_end_as_unanswered(events in proptest::collection::vec(event_strategy(), 0..40)) {
            let mut state = CallStatus::Pending;
            let mut was_connected = false;
            for e in events {
                state = apply(state, e);
                was_connected |= state.is_connected();
            }
            if was_connected {
                prop_assert!(!matches!(state, CallStatus::NoAnswer | CallStatus::Busy | CallStatus::Canceled));
            }
        }
    }
}
