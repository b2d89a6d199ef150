//! Calls: the entity, its state machine and the provider's hang-up causes.
//!
//! [`Call::apply`] is how every change of status happens: it consults the
//! transition table ([`transition`]), stamps the timestamps and the end reason,
//! and bumps [`Call::version`]. Repositories persist the result with a
//! conditional update on the version they read, so two instances applying two
//! webhooks to the same call cannot both win.

mod hangup;
mod history;
mod state;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::escalation::EscalationReason;
use crate::sentiment::SentimentSummary;
use crate::{AgentId, CallId, CustomerId, ExperimentId, OrgId, PersonaId, PhoneNumber, VariantId};

pub use hangup::{HangupCause, HangupSource};
pub use history::{CallEventRecord, EventResult, EventSource, Rejection};
pub use state::{
    CallEvent, CallStatus, Notice, TransitionError, TransitionOutcome, Unchanged,
    UnknownCallStatus, transition,
};

/// Who placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// A customer called in.
    Inbound,
    /// IACE called the customer.
    Outbound,
}

impl CallDirection {
    /// The stable snake_case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// The business result of a call, set when the call is wrapped up; it feeds the
/// experiment metric and the success rate of the patterns the call used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The caller's request was resolved.
    Resolved,
    /// The call achieved its goal (sale, booking, renewal).
    Converted,
    /// The caller asked to be called back.
    CallbackRequested,
    /// The goal was not reached.
    Unresolved,
    /// An answering machine took the call.
    Voicemail,
    /// The call was handed to a human agent.
    Escalated,
    /// The caller left (or never spoke) before anything was resolved.
    Abandoned,
}

impl CallOutcome {
    /// Whether the outcome counts as a success for learning and experiments.
    #[must_use]
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Resolved | Self::Converted)
    }
}

/// Why a call ended, in more detail than its terminal status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndReason {
    /// The provider reported a hang-up.
    Hangup {
        /// Its cause.
        cause: HangupCause,
    },
    /// Handed to a human agent.
    Transferred,
    /// A command failed for good.
    Failed,
    /// Cancelled by an operator before answer.
    Canceled,
}

/// A phone call handled by the AI agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Identity; also sent to the provider as `client_state`.
    pub id: CallId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// Life-cycle state. Change it only through [`Call::apply`].
    pub status: CallStatus,
    /// The calling party.
    pub from: PhoneNumber,
    /// The called party.
    pub to: PhoneNumber,
    /// The customer on the line, when known.
    pub customer_id: Option<CustomerId>,
    /// The persona the AI agent speaks as.
    pub persona_id: Option<PersonaId>,
    /// The experiment the call takes part in, if any ...
    pub experiment_id: Option<ExperimentId>,
    /// ... and the arm it was assigned.
    pub variant_id: Option<VariantId>,
    /// The provider's call id (Telnyx `call_control_id`).
    pub provider_call_id: Option<String>,
    /// The provider's session id (Telnyx `call_session_id`).
    pub provider_session_id: Option<String>,
    /// Why the call ended (set with a terminal status).
    pub end_reason: Option<EndReason>,
    /// The business result.
    pub outcome: Option<CallOutcome>,
    /// The caller's sentiment over the call.
    pub sentiment: Option<SentimentSummary>,
    /// Why the call was escalated to a human, if it was.
    pub escalation_reason: Option<EscalationReason>,
    /// The human agent it was transferred to.
    pub transferred_to: Option<AgentId>,
    /// Where the provider stored the recording.
    pub recording_url: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the call was connected.
    pub answered_at: Option<DateTime<Utc>>,
    /// When the call ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version, bumped by every applied transition.
    pub version: i64,
}

/// The fields a new call starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCall {
    /// Owning organisation.
    pub org_id: OrgId,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// The calling party.
    pub from: PhoneNumber,
    /// The called party.
    pub to: PhoneNumber,
    /// The customer, when known.
    pub customer_id: Option<CustomerId>,
    /// The persona.
    pub persona_id: Option<PersonaId>,
    /// The experiment and arm, when assigned.
    pub assignment: Option<(ExperimentId, VariantId)>,
    /// The provider's ids, when the provider created the call (inbound).
    pub provider_call_id: Option<String>,
    /// The provider's session id.
    pub provider_session_id: Option<String>,
}

impl Call {
    /// A new call in [`CallStatus::Pending`], version 0.
    #[must_use]
    pub fn new(new: NewCall, now: DateTime<Utc>) -> Self {
        Self {
            id: CallId::new(),
            org_id: new.org_id,
            direction: new.direction,
            status: CallStatus::Pending,
            from: new.from,
            to: new.to,
            customer_id: new.customer_id,
            persona_id: new.persona_id,
            experiment_id: new.assignment.map(|(e, _)| e),
            variant_id: new.assignment.map(|(_, v)| v),
            provider_call_id: new.provider_call_id,
            provider_session_id: new.provider_session_id,
            end_reason: None,
            outcome: None,
            sentiment: None,
            escalation_reason: None,
            transferred_to: None,
            recording_url: None,
            created_at: now,
            answered_at: None,
            ended_at: None,
            version: 0,
        }
    }

    /// Applies `event` at `at`: moves the status through the transition table,
    /// stamps `answered_at` / `ended_at` / `end_reason`, and bumps `version`.
    /// An unchanged outcome leaves the call untouched (version included).
    ///
    /// # Errors
    /// The [`TransitionError`] from the table; the call is left untouched.
    pub fn apply(
        &mut self,
        event: CallEvent,
        at: DateTime<Utc>,
    ) -> Result<TransitionOutcome, TransitionError> {
        let outcome = transition(self.status, event)?;
        if let TransitionOutcome::Applied { to, .. } = outcome {
            self.status = to;
            if to.is_connected() && self.answered_at.is_none() {
                self.answered_at = Some(at);
            }
            if to.is_terminal() {
                self.ended_at = Some(at);
                self.end_reason = Some(match event {
                    CallEvent::HungUp { cause } => EndReason::Hangup { cause },
                    CallEvent::Transferred => EndReason::Transferred,
                    CallEvent::Canceled => EndReason::Canceled,
                    _ => EndReason::Failed,
                });
            }
            self.version += 1;
        }
        Ok(outcome)
    }

    /// Whether the call has ended.
    #[must_use]
    pub const fn is_ended(&self) -> bool {
        self.status.is_terminal()
    }

    /// Talk time, when the call was answered and has ended.
    #[must_use]
    pub fn talk_time(&self) -> Option<chrono::Duration> {
        Some(self.ended_at? - self.answered_at?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn new_call() -> Call {
        Call::new(
            NewCall {
                org_id: OrgId::new(),
                direction: CallDirection::Outbound,
                from: PhoneNumber::parse("+14155550100").expect("valid"),
                to: PhoneNumber::parse("+442079460958").expect("valid"),
                customer_id: None,
                persona_id: None,
                assignment: Some((ExperimentId::new(), VariantId::new())),
                provider_call_id: None,
                provider_session_id: None,
            },
            Utc::now(),
        )
    }

    #[test]
    fn a_new_call_is_pending_at_version_zero() {
        let call = new_call();
        assert_eq!(call.status, CallStatus::Pending);
        assert_eq!(call.version, 0);
        assert!(call.experiment_id.is_some() && call.variant_id.is_some());
        assert!(!call.is_ended());
    }

    #[test]
    fn apply_stamps_times_reason_and_version() {
        let mut call = new_call();
        let t0 = call.created_at;
        call.apply(CallEvent::Ringing, t0 + Duration::seconds(1))
            .expect("ringing");
        call.apply(CallEvent::Answered, t0 + Duration::seconds(5))
            .expect("answered");
        assert_eq!(call.answered_at, Some(t0 + Duration::seconds(5)));
        assert_eq!(call.version, 2);
        call.apply(
            CallEvent::HungUp {
                cause: HangupCause::NormalClearing,
            },
            t0 + Duration::seconds(65),
        )
        .expect("hangup");
        assert_eq!(call.status, CallStatus::Completed);
        assert_eq!(
            call.end_reason,
            Some(EndReason::Hangup {
                cause: HangupCause::NormalClearing
            })
        );
        assert_eq!(call.talk_time(), Some(Duration::seconds(60)));
        assert_eq!(call.version, 3);
    }

    #[test]
    fn unchanged_and_rejected_events_leave_the_call_untouched() {
        let mut call = new_call();
        let now = call.created_at;
        call.apply(CallEvent::Answered, now).expect("answered");
        let before = call.clone();
        assert_eq!(
            call.apply(CallEvent::Answered, now + Duration::seconds(3)),
            Ok(TransitionOutcome::Unchanged {
                reason: Unchanged::Duplicate
            })
        );
        assert_eq!(
            call, before,
            "a duplicate changes nothing, not even answered_at"
        );
        assert!(call.apply(CallEvent::Canceled, now).is_err());
        assert_eq!(call, before);
    }

    #[test]
    fn transfer_records_the_end_reason() {
        let mut call = new_call();
        let now = call.created_at;
        for event in [
            CallEvent::Answered,
            CallEvent::EscalationStarted,
            CallEvent::Transferred,
        ] {
            call.apply(event, now).expect("valid path");
        }
        assert_eq!(call.status, CallStatus::Transferred);
        assert_eq!(call.end_reason, Some(EndReason::Transferred));
        assert!(call.ended_at.is_some());
    }

    #[test]
    fn unanswered_calls_have_no_talk_time() {
        let mut call = new_call();
        let now = call.created_at;
        call.apply(
            CallEvent::HungUp {
                cause: HangupCause::NoAnswer,
            },
            now,
        )
        .expect("hangup");
        assert_eq!(call.status, CallStatus::NoAnswer);
        assert_eq!(call.talk_time(), None);
    }

    #[test]
    fn outcomes_that_count_as_success() {
        assert!(CallOutcome::Resolved.is_success());
        assert!(CallOutcome::Converted.is_success());
        assert!(!CallOutcome::Unresolved.is_success());
        assert!(!CallOutcome::Voicemail.is_success());
        assert!(!CallOutcome::CallbackRequested.is_success());
    }
}
