//! A call's event history: every event that reached a call, applied or not, with
//! the reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CallEvent, CallStatus, TransitionError, TransitionOutcome, Unchanged};
use crate::{CallEventId, CallId, OrgId};

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventSource {
    /// A provider webhook, by the provider's event id.
    Webhook {
        /// The provider's event id (the inbox key).
        provider_event_id: String,
    },
    /// An operator request through the API.
    Api,
    /// The live call runtime (escalation, transfer result, command failure).
    Runtime,
}

/// What an event did to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum EventResult {
    /// It changed the call's status.
    Applied,
    /// It changed nothing, for a benign reason.
    Unchanged {
        /// Why.
        reason: Unchanged,
    },
    /// It was rejected by the state machine.
    Rejected {
        /// Why.
        rejection: Rejection,
    },
}

impl EventResult {
    /// The stable snake_case name stored with the record and used as a metric label.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged { reason } => reason.as_str(),
            Self::Rejected { rejection } => rejection.as_str(),
        }
    }
}

/// Why the state machine rejected an event (see [`TransitionError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// [`TransitionError::CallEnded`].
    CallEnded,
    /// [`TransitionError::NotAllowed`].
    NotAllowed,
}

impl Rejection {
    /// The stable snake_case name (equal to [`TransitionError::code`]).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CallEnded => "call_ended",
            Self::NotAllowed => "not_allowed",
        }
    }
}

impl From<&TransitionError> for Rejection {
    fn from(err: &TransitionError) -> Self {
        match err {
            TransitionError::CallEnded { .. } => Self::CallEnded,
            TransitionError::NotAllowed { .. } => Self::NotAllowed,
        }
    }
}

/// One entry of a call's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEventRecord {
    /// Identity.
    pub id: CallEventId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// The call.
    pub call_id: CallId,
    /// What happened.
    pub event: CallEvent,
    /// Status before.
    pub from: CallStatus,
    /// Status after (equal to `from` unless applied).
    pub to: CallStatus,
    /// What it did.
    pub result: EventResult,
    /// Where it came from.
    pub source: EventSource,
    /// When it happened (the provider's timestamp for webhooks).
    pub occurred_at: DateTime<Utc>,
}

impl CallEventRecord {
    /// Builds the record for the result of [`super::Call::apply`] on a call that
    /// was in `from`.
    #[must_use]
    pub fn new(
        org_id: OrgId,
        call_id: CallId,
        from: CallStatus,
        event: CallEvent,
        result: &Result<TransitionOutcome, TransitionError>,
        source: EventSource,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        let (to, result) = match result {
            Ok(TransitionOutcome::Applied { to, .. }) => (*to, EventResult::Applied),
            Ok(TransitionOutcome::Unchanged { reason }) => {
                (from, EventResult::Unchanged { reason: *reason })
            }
            Err(err) => (
                from,
                EventResult::Rejected {
                    rejection: err.into(),
                },
            ),
        };
        Self {
            id: CallEventId::new(),
            org_id,
            call_id,
            event,
            from,
            to,
            result,
            source,
            occurred_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PhoneNumber;
    use crate::call::{Call, CallDirection, HangupCause, NewCall};

    fn call() -> Call {
        let phone = |s: &str| PhoneNumber::parse(s).expect("valid");
        Call::new(
            NewCall {
                org_id: OrgId::new(),
                direction: CallDirection::Inbound,
                from: phone("+14155550100"),
                to: phone("+14155550199"),
                customer_id: None,
                persona_id: None,
                assignment: None,
                provider_call_id: Some("v3:abc".into()),
                provider_session_id: None,
            },
            Utc::now(),
        )
    }

    #[test]
    fn records_applied_unchanged_and_rejected_events() {
        let mut c = call();
        let now = Utc::now();
        let source = || EventSource::Webhook {
            provider_event_id: "evt-1".into(),
        };

        let from = c.status;
        let result = c.apply(CallEvent::Answered, now);
        let applied = CallEventRecord::new(
            c.org_id,
            c.id,
            from,
            CallEvent::Answered,
            &result,
            source(),
            now,
        );
        assert_eq!(
            (applied.from, applied.to),
            (CallStatus::Pending, CallStatus::InProgress)
        );
        assert_eq!(applied.result.as_str(), "applied");

        let from = c.status;
        let result = c.apply(CallEvent::Answered, now);
        let dup = CallEventRecord::new(
            c.org_id,
            c.id,
            from,
            CallEvent::Answered,
            &result,
            source(),
            now,
        );
        assert_eq!(dup.to, CallStatus::InProgress);
        assert_eq!(dup.result.as_str(), "duplicate");

        let hangup = CallEvent::HungUp {
            cause: HangupCause::NormalClearing,
        };
        c.apply(hangup, now).expect("hangup");
        let from = c.status;
        let result = c.apply(CallEvent::Answered, now);
        let rejected = CallEventRecord::new(
            c.org_id,
            c.id,
            from,
            CallEvent::Answered,
            &result,
            source(),
            now,
        );
        assert_eq!(
            rejected.result,
            EventResult::Rejected {
                rejection: Rejection::CallEnded
            }
        );
        assert_eq!(rejected.result.as_str(), "call_ended");
        assert_eq!(rejected.from, rejected.to);
    }

    #[test]
    fn rejection_names_match_transition_error_codes() {
        let ended = TransitionError::CallEnded {
            status: CallStatus::Completed,
            event: CallEvent::Answered,
        };
        let not_allowed = TransitionError::NotAllowed {
            from: CallStatus::Pending,
            event: CallEvent::Transferred,
        };
        assert_eq!(Rejection::from(&ended).as_str(), ended.code());
        assert_eq!(Rejection::from(&not_allowed).as_str(), not_allowed.code());
    }

    #[test]
    fn records_serialize_with_tags() {
        let c = call();
        let record = CallEventRecord::new(
            c.org_id,
            c.id,
            CallStatus::Pending,
            CallEvent::Ringing,
            &Ok(TransitionOutcome::Applied {
                from: CallStatus::Pending,
                to: CallStatus::Ringing,
            }),
            EventSource::Api,
            Utc::now(),
        );
        let json = serde_json::to_value(&record).expect("ser");
        assert_eq!(json["result"]["result"], "applied");
        assert_eq!(json["source"]["kind"], "api");
        let back: CallEventRecord = serde_json::from_value(json).expect("de");
        assert_eq!(back, record);
    }
}
