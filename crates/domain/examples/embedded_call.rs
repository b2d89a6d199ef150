//! Embedding `iace-domain` in another Rust service.
//!
//! A host service brings its own storage and telephony by implementing two ports
//! (`CallRepository`, `TelephonyGateway`) — here as in-memory doubles — and then
//! uses the domain's rules as they are: the call state machine with optimistic
//! concurrency, the escalation policy turn by turn, and agent routing.
//!
//! Run it with `cargo run -p iace-domain --example embedded_call`.

// An example program talks to its user on stdout.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use iace_domain::call::{
    Call, CallDirection, CallEvent, CallEventRecord, CallOutcome, CallStatus, EventSource,
    HangupCause, NewCall,
};
use iace_domain::escalation::{
    EscalationDecision, EscalationInput, EscalationPolicy, TurnSnapshot,
};
use iace_domain::ports::{
    AnswerOptions, CallFilter, CallHandle, CallLocator, CallRepository, CommandOutcome,
    DialRequest, DialResponse, MediaStreamSpec, Page, PageRequest, ProviderError, StoreError,
    TelephonyGateway, TransferTarget,
};
use iace_domain::routing::{RoutingRequest, route};
use iace_domain::{
    AgentId, Availability, CallId, CustomerTier, HumanAgent, Language, OrgId, PhoneNumber,
    Sentiment, Skill, Voice,
};

/// Calls in a map; the version check makes concurrent writers conflict exactly as
/// the SQL adapter's conditional UPDATE does.
#[derive(Default)]
struct InMemoryCalls {
    calls: Mutex<HashMap<CallId, Call>>,
    history: Mutex<Vec<CallEventRecord>>,
    /// Idempotency keys of calls created with one, by organisation.
    keys: Mutex<HashMap<(OrgId, String), CallId>>,
}

impl InMemoryCalls {
    fn write(&self, call: &Call, expected_version: i64) -> Result<(), StoreError> {
        let mut calls = self.calls.lock().map_err(|_| poisoned())?;
        let stored = calls
            .get_mut(&call.id)
            .ok_or(StoreError::NotFound { entity: "call" })?;
        if stored.version != expected_version {
            return Err(StoreError::Conflict {
                entity: "call",
                expected: expected_version,
            });
        }
        *stored = call.clone();
        Ok(())
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable {
        source: "lock poisoned".into(),
    }
}

#[async_trait]
impl CallRepository for InMemoryCalls {
    async fn create(&self, call: &Call) -> Result<(), StoreError> {
        let mut calls = self.calls.lock().map_err(|_| poisoned())?;
        if calls.contains_key(&call.id) {
            return Err(StoreError::AlreadyExists {
                entity: "call",
                field: "id",
            });
        }
        calls.insert(call.id, call.clone());
        Ok(())
    }

    async fn create_idempotent(&self, call: &Call, key: &str) -> Result<(Call, bool), StoreError> {
        // Both locks are held across the check and the insert: race-free.
        let mut keys = self.keys.lock().map_err(|_| poisoned())?;
        let mut calls = self.calls.lock().map_err(|_| poisoned())?;
        if let Some(existing) = keys
            .get(&(call.org_id, key.to_owned()))
            .and_then(|id| calls.get(id))
        {
            return Ok((existing.clone(), false));
        }
        if calls.contains_key(&call.id) {
            return Err(StoreError::AlreadyExists {
                entity: "call",
                field: "id",
            });
        }
        calls.insert(call.id, call.clone());
        keys.insert((call.org_id, key.to_owned()), call.id);
        Ok((call.clone(), true))
    }

    async fn get(&self, org: OrgId, id: CallId) -> Result<Call, StoreError> {
        let calls = self.calls.lock().map_err(|_| poisoned())?;
        calls
            .get(&id)
            .filter(|c| c.org_id == org)
            .cloned()
            .ok_or(StoreError::NotFound { entity: "call" })
    }

    async fn locate(&self, locator: &CallLocator) -> Result<Option<Call>, StoreError> {
        let calls = self.calls.lock().map_err(|_| poisoned())?;
        Ok(calls
            .values()
            .find(|c| match locator {
                CallLocator::Id(id) => c.id == *id,
                CallLocator::ProviderCallId(pid) => c.provider_call_id.as_deref() == Some(pid),
            })
            .cloned())
    }

    async fn save_transition(
        &self,
        call: &Call,
        expected_version: i64,
        record: &CallEventRecord,
    ) -> Result<(), StoreError> {
        self.write(call, expected_version)?;
        self.history
            .lock()
            .map_err(|_| poisoned())?
            .push(record.clone());
        Ok(())
    }

    async fn update(&self, call: &Call, expected_version: i64) -> Result<(), StoreError> {
        self.write(call, expected_version)
    }

    async fn record_event(&self, record: &CallEventRecord) -> Result<(), StoreError> {
        self.history
            .lock()
            .map_err(|_| poisoned())?
            .push(record.clone());
        Ok(())
    }

    async fn events(&self, org: OrgId, id: CallId) -> Result<Vec<CallEventRecord>, StoreError> {
        let history = self.history.lock().map_err(|_| poisoned())?;
        Ok(history
            .iter()
            .filter(|r| r.org_id == org && r.call_id == id)
            .cloned()
            .collect())
    }

    async fn list(
        &self,
        org: OrgId,
        filter: &CallFilter,
        page: PageRequest,
    ) -> Result<Page<Call>, StoreError> {
        let calls = self.calls.lock().map_err(|_| poisoned())?;
        let mut items: Vec<Call> = calls
            .values()
            .filter(|c| c.org_id == org && filter.status.is_none_or(|s| s == c.status))
            .filter(|c| page.after.is_none_or(|after| *c.id.as_uuid() > after))
            .cloned()
            .collect();
        items.sort_by_key(|c| c.id);
        items.truncate(page.limit as usize);
        let next = (items.len() == page.limit as usize)
            .then(|| items.last().map(|c| c.id.into_uuid()))
            .flatten();
        Ok(Page { items, next })
    }

    async fn count_live(&self, org: OrgId) -> Result<u64, StoreError> {
        let calls = self.calls.lock().map_err(|_| poisoned())?;
        Ok(calls
            .values()
            .filter(|c| c.org_id == org && !c.is_ended())
            .count() as u64)
    }
}

/// A telephony double that accepts every command and remembers it.
#[derive(Default)]
struct RecordingTelephony {
    commands: Mutex<Vec<String>>,
}

impl RecordingTelephony {
    fn log(&self, command: String) -> Result<CommandOutcome, ProviderError> {
        self.commands
            .lock()
            .map_err(|_| ProviderError::StreamClosed {
                provider: "recording",
            })?
            .push(command);
        Ok(CommandOutcome::Accepted)
    }
}

#[async_trait]
impl TelephonyGateway for RecordingTelephony {
    async fn dial(&self, request: &DialRequest) -> Result<DialResponse, ProviderError> {
        self.log(format!("dial {}", request.to))?;
        Ok(DialResponse {
            provider_call_id: format!("v3:{}", request.call_id),
            provider_session_id: None,
        })
    }
    async fn answer(
        &self,
        call: &CallHandle,
        _: &AnswerOptions,
    ) -> Result<CommandOutcome, ProviderError> {
        self.log(format!("answer {}", call.provider_call_id))
    }
    async fn hang_up(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        self.log(format!("hangup {}", call.provider_call_id))
    }
    async fn transfer(
        &self,
        call: &CallHandle,
        target: &TransferTarget,
    ) -> Result<CommandOutcome, ProviderError> {
        let to = match target {
            TransferTarget::Phone { number } => number.to_string(),
            TransferTarget::Sip { uri } => uri.clone(),
        };
        self.log(format!("transfer {} -> {to}", call.provider_call_id))
    }
    async fn speak(
        &self,
        call: &CallHandle,
        text: &str,
        _: &Voice,
        _: &Language,
    ) -> Result<CommandOutcome, ProviderError> {
        self.log(format!("speak {} {text:?}", call.provider_call_id))
    }
    async fn play_audio(
        &self,
        call: &CallHandle,
        url: &str,
    ) -> Result<CommandOutcome, ProviderError> {
        self.log(format!("play {} {url}", call.provider_call_id))
    }
    async fn stop_audio(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        self.log(format!("stop_audio {}", call.provider_call_id))
    }
    async fn start_streaming(
        &self,
        call: &CallHandle,
        _: &MediaStreamSpec,
    ) -> Result<CommandOutcome, ProviderError> {
        self.log(format!("start_streaming {}", call.provider_call_id))
    }
    async fn stop_streaming(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        self.log(format!("stop_streaming {}", call.provider_call_id))
    }
    async fn start_recording(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        self.log(format!("start_recording {}", call.provider_call_id))
    }
}

/// Read, apply, conditionally save — and on a conflict, re-read and re-apply.
/// This is the whole recipe a webhook handler follows.
async fn apply_event(
    calls: &dyn CallRepository,
    org: OrgId,
    id: CallId,
    event: CallEvent,
    source: EventSource,
) -> Result<Call, Box<dyn std::error::Error>> {
    loop {
        let mut call = calls.get(org, id).await?;
        let (from, expected) = (call.status, call.version);
        let now = Utc::now();
        let result = call.apply(event, now);
        let record = CallEventRecord::new(org, id, from, event, &result, source.clone(), now);
        let saved = if call.version == expected {
            calls.record_event(&record).await
        } else {
            calls.save_transition(&call, expected, &record).await
        };
        match saved {
            Ok(()) => {
                println!(
                    "  {event:<28} {from:>11} -> {:<11} ({})",
                    record.to,
                    record.result.as_str()
                );
                return Ok(call);
            }
            Err(StoreError::Conflict { .. }) => println!("  conflict on {event}; re-reading"),
            Err(other) => return Err(other.into()),
        }
    }
}

fn skill(name: &str) -> Result<Skill, Box<dyn std::error::Error>> {
    Ok(Skill::parse(name)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    futures::executor::block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let calls: Arc<dyn CallRepository> = Arc::new(InMemoryCalls::default());
    let telephony = Arc::new(RecordingTelephony::default());
    let gateway: Arc<dyn TelephonyGateway> = telephony.clone();
    let org = OrgId::new();

    // An inbound call arrives; numbers are parsed (and masked in output) at the edge.
    let call = Call::new(
        NewCall {
            org_id: org,
            direction: CallDirection::Inbound,
            from: PhoneNumber::parse("+1 (415) 555-0100")?,
            to: PhoneNumber::parse("+1 415 555 0199")?,
            customer_id: None,
            persona_id: None,
            assignment: None,
            provider_call_id: Some("v3:demo-call".into()),
            provider_session_id: None,
        },
        Utc::now(),
    );
    calls.create(&call).await?;
    println!(
        "call {} from {} (status {})",
        call.id, call.from, call.status
    );
    let webhook = |id: &str| EventSource::Webhook {
        provider_event_id: id.to_owned(),
    };

    apply_event(
        calls.as_ref(),
        org,
        call.id,
        CallEvent::Ringing,
        webhook("evt-1"),
    )
    .await?;
    apply_event(
        calls.as_ref(),
        org,
        call.id,
        CallEvent::Answered,
        webhook("evt-2"),
    )
    .await?;
    // The provider redelivers the answer: recorded, changes nothing.
    apply_event(
        calls.as_ref(),
        org,
        call.id,
        CallEvent::Answered,
        webhook("evt-2"),
    )
    .await?;

    // Two instances read the same version; the second writer loses and retries.
    let stale = calls.get(org, call.id).await?;
    let mut other = stale.clone();
    other.recording_url = Some("https://recordings.example.com/demo.mp3".into());
    other.version += 1;
    calls.update(&other, stale.version).await?;
    let mut late = stale.clone();
    late.outcome = Some(CallOutcome::Resolved);
    late.version += 1;
    match calls.update(&late, stale.version).await {
        Err(StoreError::Conflict { expected, .. }) => {
            println!("  a concurrent write at version {expected} was refused, not lost");
        }
        other => println!("  unexpected: {other:?}"),
    }

    // The conversation: the escalation policy looks at every turn.
    let policy = EscalationPolicy::default();
    let script = [
        ("I was charged twice this month.", -0.2),
        ("No, that is not what I asked.", -0.6),
        ("This is ridiculous, nothing works.", -0.8),
    ];
    let mut turns = Vec::new();
    let mut decision = EscalationDecision::Stay;
    for (i, (text, score)) in script.iter().enumerate() {
        turns.push(TurnSnapshot::caller(*text, Some(Sentiment::new(*score)?)));
        decision = policy.evaluate(&EscalationInput {
            turns: &turns,
            customer_tier: CustomerTier::Standard,
        });
        println!("turn {}: caller {:+.1} -> {decision:?}", i + 1, score);
        if decision.is_escalate() {
            break;
        }
        turns.push(TurnSnapshot::bot("Let me look into that for you.", false));
    }

    let EscalationDecision::Escalate {
        reason,
        required_skills,
    } = decision
    else {
        println!("the AI agent kept the call");
        return Ok(());
    };

    // Route to the least busy agent with the required skills.
    let agents = vec![
        HumanAgent {
            id: AgentId::new(),
            org_id: org,
            name: "Ana".into(),
            email: None,
            phone: Some(PhoneNumber::parse("+14155550123")?),
            sip_uri: None,
            skills: [skill("billing")?].into_iter().collect(),
            availability: Availability::Available,
            max_concurrent_calls: 2,
            active_calls: 1,
        },
        HumanAgent {
            id: AgentId::new(),
            org_id: org,
            name: "Ben".into(),
            email: None,
            phone: None,
            sip_uri: Some("sip:ben@pbx.example.com".into()),
            skills: [skill("billing")?, skill("spanish")?].into_iter().collect(),
            availability: Availability::Available,
            max_concurrent_calls: 3,
            active_calls: 0,
        },
    ];
    let agent = route(
        &agents,
        &RoutingRequest {
            required_skills: &required_skills,
        },
    )?;
    println!("escalating ({reason}) to {}", agent.name);

    apply_event(
        calls.as_ref(),
        org,
        call.id,
        CallEvent::EscalationStarted,
        EventSource::Runtime,
    )
    .await?;
    let target = match (&agent.phone, &agent.sip_uri) {
        (Some(number), _) => TransferTarget::Phone {
            number: number.clone(),
        },
        (None, Some(uri)) => TransferTarget::Sip { uri: uri.clone() },
        (None, None) => return Err("routed agent is unreachable".into()),
    };
    let handle = CallHandle {
        call_id: call.id,
        provider_call_id: "v3:demo-call".into(),
    };
    gateway.transfer(&handle, &target).await?;
    apply_event(
        calls.as_ref(),
        org,
        call.id,
        CallEvent::Transferred,
        webhook("evt-3"),
    )
    .await?;
    // The hang-up that follows a transfer changes nothing; a late answer cannot reopen it.
    apply_event(
        calls.as_ref(),
        org,
        call.id,
        CallEvent::HungUp {
            cause: HangupCause::NormalClearing,
        },
        webhook("evt-4"),
    )
    .await?;
    apply_event(
        calls.as_ref(),
        org,
        call.id,
        CallEvent::Answered,
        webhook("evt-5"),
    )
    .await?;

    let done = calls.get(org, call.id).await?;
    assert_eq!(done.status, CallStatus::Transferred);
    println!("final status: {} (version {})", done.status, done.version);
    println!(
        "history: {} events",
        calls.events(org, call.id).await?.len()
    );
    let commands = telephony
        .commands
        .lock()
        .map_err(|_| "telephony log poisoned")?;
    println!("telephony commands: {commands:?}");
    Ok(())
}
