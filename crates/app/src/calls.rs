//! Calls: placing outbound calls (idempotently), reading them with their
//! transcript and history, hanging up and transferring to a human agent.
//!
//! Status changes that the provider reports (ringing, answered, hung up,
//! bridged) arrive later through its webhooks; these use cases only change the
//! status for what they decide themselves — a dial that failed, an escalation
//! they started — always through [`Call::apply`] and
//! [`CallRepository::save_transition`], so the history records them.

use std::sync::Arc;
use std::time::Duration;

use iace_domain::call::{
    Call, CallDirection, CallEvent, CallEventRecord, CallOutcome, CallStatus, EventSource, NewCall,
    Notice, TransitionError, TransitionOutcome,
};
use iace_domain::escalation::EscalationReason;
use iace_domain::experiment::{self, AssignmentKey};
use iace_domain::ports::{
    AgentRepository, AnswerOptions, BusEvent, BusEventKind, CallFilter, CallHandle, CallLocator,
    CallRepository, Clock, CommandOutcome, CustomerRepository, DialRequest, EventBus,
    ExperimentRepository, MachineDetection, MachineDetectionResult, MediaStreamSpec, OrgRepository,
    Page, PageRequest, PersonaRepository, ProviderError, StoreError, TelephonyEvent,
    TelephonyEventKind, TelephonyGateway, TranscriptRepository, TransferTarget,
};
use iace_domain::routing::{self, RoutingRequest};
use iace_domain::{
    AgentId, Availability, CallId, ExperimentId, OrgId, PersonaId, PhoneNumber, Role, Skill,
    TelephonySettings, TranscriptEntry, VariantId,
};

use crate::auth::Principal;
use crate::error::{AppError, FieldError};
use crate::voice::MediaTokens;

/// How long an outbound call rings before the provider gives up.
const RING_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a write that lost a race with a webhook is re-read and retried.
const WRITE_ATTEMPTS: usize = 3;

/// Writes `edit` of `call`'s non-status fields under the version check; on a
/// concurrent change re-reads the call and edits it again. Nothing is
/// written when the edit changes nothing.
///
/// # Errors
/// Store errors; Conflict after [`WRITE_ATTEMPTS`] lost races.
pub(crate) async fn update_call(
    calls: &dyn CallRepository,
    mut call: Call,
    edit: impl Fn(&mut Call) + Send + Sync,
) -> Result<Call, AppError> {
    for _ in 0..WRITE_ATTEMPTS {
        let mut updated = call.clone();
        edit(&mut updated);
        if updated == call {
            return Ok(call);
        }
        updated.version += 1;
        match calls.update(&updated, call.version).await {
            Ok(()) => return Ok(updated),
            Err(StoreError::Conflict { .. }) => call = calls.get(call.org_id, call.id).await?,
            Err(other) => return Err(other.into()),
        }
    }
    Err(StoreError::Conflict {
        entity: "call",
        expected: call.version,
    }
    .into())
}

/// A client's idempotency key: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 255;

    /// Checks a key.
    ///
    /// # Errors
    /// A [`FieldError`] on `field` for an empty, over-long or non-visible-ASCII key.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let visible = raw.bytes().all(|b| b.is_ascii_graphic());
        if (1..=Self::MAX_LEN).contains(&raw.len()) && visible {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "invalid_idempotency_key",
                "idempotency keys are 1-255 visible ASCII characters",
            ))
        }
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An outbound call to place (already parsed at the edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceCall {
    /// Whom to call.
    pub to: PhoneNumber,
    /// Caller id (one of the organisation's numbers).
    pub from: PhoneNumber,
    /// The persona the AI agent speaks as.
    pub persona_id: Option<PersonaId>,
    /// Makes retries of the same request return the same call.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// What placing a call did.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The call.
    pub call: Call,
    /// `false` when an earlier request with the same idempotency key created it
    /// (nothing was dialled this time).
    pub created: bool,
}

/// A call with what was said and what happened to it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallDetails {
    /// The call.
    pub call: Call,
    /// The transcript, in order.
    pub transcript: Vec<TranscriptEntry>,
    /// Every event that reached the call, oldest first.
    pub history: Vec<CallEventRecord>,
}

/// Call details read recently, per instance, for at most `ttl`; every write
/// through this service forgets the call at once. Keyed by organisation and
/// call, so it cannot serve one tenant another's call.
#[derive(Debug, Default)]
struct DetailsCache {
    ttl: std::time::Duration,
    entries: std::sync::RwLock<CacheMap>,
}

/// Details, when they were read, and whether a request is re-reading them.
type CacheMap =
    std::collections::HashMap<(OrgId, CallId), (Arc<CallDetails>, std::time::Instant, bool)>;

impl DetailsCache {
    const MAX_ENTRIES: usize = 10_000;

    /// A fresh entry; or, once it is older than `ttl` (but younger than twice
    /// that), the old entry to every caller but one, which gets `None` and
    /// re-reads the store. Without that, every request arriving while the
    /// entry is being re-read would hit the store at once.
    fn get(&self, org: OrgId, id: CallId) -> Option<CallDetails> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = (org, id);
        let (details, age, refreshing) = {
            let entries = self
                .entries
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (details, at, refreshing) = entries.get(&key)?;
            (Arc::clone(details), at.elapsed(), *refreshing)
        };
        if age < self.ttl || (refreshing && age < self.ttl * 2) {
            return Some(details.as_ref().clone());
        }
        if age >= self.ttl * 2 {
            return None;
        }
        // Stale: the first caller to get here re-reads; the others keep
        // getting the old entry until it is replaced.
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get_mut(&key) {
            Some(entry) if !entry.2 => {
                entry.2 = true;
                None
            }
            Some(entry) => Some(entry.0.as_ref().clone()),
            None => None,
        }
    }

    fn put(&self, org: OrgId, id: CallId, details: &CallDetails) {
        if self.ttl.is_zero() {
            return;
        }
        let value = (Arc::new(details.clone()), std::time::Instant::now(), false);
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= Self::MAX_ENTRIES {
            entries.clear();
        }
        entries.insert((org, id), value);
    }

    fn forget(&self, org: OrgId, id: CallId) {
        if !self.ttl.is_zero() {
            self.entries
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&(org, id));
        }
    }
}

/// Call use cases.
#[derive(Clone)]
pub struct CallService {
    calls: Arc<dyn CallRepository>,
    transcripts: Arc<dyn TranscriptRepository>,
    customers: Arc<dyn CustomerRepository>,
    personas: Arc<dyn PersonaRepository>,
    agents: Arc<dyn AgentRepository>,
    telephony: Arc<dyn TelephonyGateway>,
    clock: Arc<dyn Clock>,
    cache: Arc<DetailsCache>,
    bus: Option<Arc<dyn EventBus>>,
    voicemail: VoicemailAction,
    inbound: Option<Inbound>,
    media_tokens: Option<MediaTokens>,
}

/// What answering inbound calls needs: which organisation a number belongs
/// to, its experiments (to pick the persona), and where media streams go.
#[derive(Clone)]
struct Inbound {
    orgs: Arc<dyn OrgRepository>,
    experiments: Arc<dyn ExperimentRepository>,
    media_base_url: Option<String>,
}

/// What to do when answering-machine detection says a machine answered an
/// outbound call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VoicemailAction {
    /// Hang up at once (the default).
    #[default]
    HangUp,
    /// Wait for the greeting to end, say `message` with the provider's
    /// voice, then hang up.
    LeaveMessage {
        /// What to say.
        message: String,
    },
}

/// What a provider event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// It changed the call's status.
    Applied,
    /// It was recorded in the call's history without changing its status
    /// (a duplicate, a late event, a notice, or one the state machine
    /// refused, such as an answer after the hang-up).
    Recorded,
    /// It names no call we know: acknowledged and ignored.
    UnknownCall,
}

impl std::fmt::Debug for CallService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallService").finish_non_exhaustive()
    }
}

fn transition_conflict(err: &TransitionError) -> AppError {
    match err {
        TransitionError::CallEnded { status, .. } => AppError::Conflict {
            code: "call_ended",
            message: format!("the call has ended ({status})"),
        },
        TransitionError::NotAllowed { from, event } => AppError::Conflict {
            code: "invalid_call_state",
            message: format!("`{event}` is not possible while the call is {from}"),
        },
    }
}

fn handle(call: &Call) -> Option<CallHandle> {
    call.provider_call_id.as_ref().map(|id| CallHandle {
        call_id: call.id,
        provider_call_id: id.clone(),
    })
}

impl CallService {
    /// Builds the service.
    pub fn new(
        calls: Arc<dyn CallRepository>,
        transcripts: Arc<dyn TranscriptRepository>,
        customers: Arc<dyn CustomerRepository>,
        personas: Arc<dyn PersonaRepository>,
        agents: Arc<dyn AgentRepository>,
        telephony: Arc<dyn TelephonyGateway>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            calls,
            transcripts,
            customers,
            personas,
            agents,
            telephony,
            clock,
            cache: Arc::new(DetailsCache::default()),
            bus: None,
            voicemail: VoicemailAction::default(),
            inbound: None,
            media_tokens: None,
        }
    }

    /// Signs media-stream URLs with `tokens`: answered and dialled calls
    /// stream to `{media_base_url}/v1/media/telnyx?token=…`, the token also
    /// given as the provider's stream auth token.
    #[must_use]
    pub fn with_media_tokens(mut self, tokens: MediaTokens) -> Self {
        self.media_tokens = Some(tokens);
        self
    }

    /// The media stream for `call`: to the organisation's base URL, else the
    /// deployment's; none without either (or without a signer).
    fn media_stream(
        &self,
        call: &Call,
        settings: Option<&TelephonySettings>,
    ) -> Option<MediaStreamSpec> {
        let base = settings
            .and_then(|s| s.media_base_url.clone())
            .or_else(|| self.inbound.as_ref().and_then(|i| i.media_base_url.clone()))?;
        let token = self.media_tokens.as_ref()?.issue(call.id, self.clock.now());
        Some(MediaStreamSpec {
            url: format!(
                "{}/v1/media/telnyx?token={token}",
                base.trim_end_matches('/')
            ),
            format: iace_domain::ports::AudioFormat::TELEPHONY,
            auth_token: Some(token),
        })
    }

    /// Answers inbound calls: a call to one of an organisation's numbers is
    /// created for it, linked to the customer calling, given a persona by the
    /// organisation's running experiment, and answered with a bidirectional
    /// media stream to `{media_base_url}/v1/media/telnyx?token=…` (the
    /// organisation's own base URL first, then this deployment's).
    #[must_use]
    pub fn with_inbound(
        mut self,
        orgs: Arc<dyn OrgRepository>,
        experiments: Arc<dyn ExperimentRepository>,
        media_base_url: Option<String>,
    ) -> Self {
        self.inbound = Some(Inbound {
            orgs,
            experiments,
            media_base_url,
        });
        self
    }

    /// Publishes every status change (and the provider's notices) on `bus`,
    /// so the instance holding a call's media session learns what another
    /// instance's webhook said.
    #[must_use]
    pub fn with_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// What to do when a machine answers an outbound call (answering-machine
    /// detection is requested on every dial).
    #[must_use]
    pub fn with_voicemail(mut self, action: VoicemailAction) -> Self {
        self.voicemail = action;
        self
    }

    /// The organisation's telephony settings, when this service knows
    /// organisations (a read failure is logged and counts as none).
    async fn org_telephony(&self, org: OrgId) -> Option<TelephonySettings> {
        let inbound = self.inbound.as_ref()?;
        match inbound.orgs.telephony(org).await {
            Ok(settings) => Some(settings),
            Err(err) => {
                tracing::warn!(org_id = %org, error = %err, "could not read telephony settings");
                None
            }
        }
    }

    /// The voicemail action: the organisation's own message when its
    /// settings have one, the deployment's action otherwise.
    fn voicemail_from(&self, settings: Option<&TelephonySettings>) -> VoicemailAction {
        match settings.and_then(|s| s.voicemail_message.clone()) {
            Some(message) => VoicemailAction::LeaveMessage { message },
            None => self.voicemail.clone(),
        }
    }

    async fn voicemail_for(&self, org: OrgId) -> VoicemailAction {
        let settings = self.org_telephony(org).await;
        self.voicemail_from(settings.as_ref())
    }

    /// Publishes `kind` for `call` (best effort: a bus failure is logged).
    async fn publish(&self, call: &Call, kind: BusEventKind) {
        let Some(bus) = &self.bus else { return };
        let event = BusEvent {
            org_id: call.org_id,
            call_id: call.id,
            kind,
            at: self.clock.now(),
        };
        if let Err(err) = bus.publish(&event).await {
            tracing::warn!(call_id = %call.id, error = %err, "could not publish a call event");
        }
    }

    /// Applies an event the telephony provider reported (a verified webhook)
    /// to its call, through the state machine: `call.initiated` of our
    /// outbound call → ringing, answered, hung up (the cause decides the end
    /// state), bridged → transferred; key presses, media-stream, playback,
    /// machine-detection and recording reports are recorded as notices (a
    /// recording's reference is stored on the call). Out-of-order and
    /// repeated events are recorded as unchanged or refused, never applied
    /// twice; a late answer never reopens an ended call. A machine answering
    /// leads to the configured [`VoicemailAction`].
    ///
    /// # Errors
    /// Store errors (the event is then retried from the inbox); a failed
    /// voicemail command is logged, not returned.
    pub async fn on_telephony_event(
        &self,
        event: &TelephonyEvent,
    ) -> Result<Disposition, AppError> {
        let located = self.locate(event).await?;
        let Some(call) = located else {
            if let TelephonyEventKind::Initiated {
                direction: CallDirection::Inbound,
                from,
                to,
            } = &event.kind
            {
                return self.answer_inbound(event, from.as_ref(), to.as_ref()).await;
            }
            tracing::info!(
                event_type = %event.event_type,
                "telephony event for no known call; ignored"
            );
            return Ok(Disposition::UnknownCall);
        };
        let source = EventSource::Webhook {
            provider_event_id: event.id.clone(),
        };
        let at = Some(event.occurred_at);
        let noted = |notice| CallEvent::Noted { notice };
        let provider_ids = |c: &mut Call| {
            if c.provider_call_id.is_none() {
                c.provider_call_id.clone_from(&event.provider_call_id);
            }
            if c.provider_session_id.is_none() {
                c.provider_session_id.clone_from(&event.provider_session_id);
            }
        };
        let (call_event, bus_kind) = match &event.kind {
            TelephonyEventKind::Initiated { .. } => (CallEvent::Ringing, None),
            TelephonyEventKind::Answered => (CallEvent::Answered, None),
            TelephonyEventKind::HungUp { cause, .. } => (CallEvent::HungUp { cause: *cause }, None),
            TelephonyEventKind::Bridged => (CallEvent::Transferred, None),
            TelephonyEventKind::MachineDetected { result } => (
                noted(match result {
                    MachineDetectionResult::Human => Notice::HumanDetected,
                    MachineDetectionResult::Machine => Notice::MachineDetected,
                    MachineDetectionResult::NotSure => Notice::MachineDetectionUnsure,
                }),
                None,
            ),
            TelephonyEventKind::MachineGreetingEnded { .. } => {
                (noted(Notice::MachineGreetingEnded), None)
            }
            TelephonyEventKind::Dtmf { digit } => (
                noted(Notice::KeyPressed),
                Some(BusEventKind::Dtmf {
                    digits: digit.to_string(),
                }),
            ),
            TelephonyEventKind::StreamingStarted => (
                noted(Notice::MediaStreamStarted),
                Some(BusEventKind::StreamingStarted),
            ),
            TelephonyEventKind::StreamingStopped => (
                noted(Notice::MediaStreamStopped),
                Some(BusEventKind::StreamingStopped),
            ),
            TelephonyEventKind::StreamingFailed { reason } => {
                tracing::warn!(call_id = %call.id, reason, "media streaming failed");
                (
                    noted(Notice::MediaStreamFailed),
                    Some(BusEventKind::StreamingStopped),
                )
            }
            TelephonyEventKind::SpeakEnded { .. } => {
                (noted(Notice::SpeakEnded), Some(BusEventKind::PlaybackEnded))
            }
            TelephonyEventKind::PlaybackEnded { .. } => (
                noted(Notice::PlaybackEnded),
                Some(BusEventKind::PlaybackEnded),
            ),
            TelephonyEventKind::RecordingSaved { .. } => (noted(Notice::RecordingSaved), None),
            TelephonyEventKind::Other => (noted(Notice::Unhandled), None),
        };
        let recording = match &event.kind {
            TelephonyEventKind::RecordingSaved { mp3_url, wav_url } => {
                mp3_url.clone().or_else(|| wav_url.clone())
            }
            _ => None,
        };
        // An agent reserved for a transfer that never happened: the hang-up
        // frees the slot.
        let reserved = (call.status == CallStatus::Escalating)
            .then_some(call.transferred_to)
            .flatten();
        let result = self
            .apply(call, call_event, source, at, |c| {
                provider_ids(c);
                if recording.is_some() {
                    c.recording_url.clone_from(&recording);
                }
            })
            .await;
        let (call, applied) = match result {
            Ok(done) => done,
            // Refused by the state machine (an answer after the hang-up): it
            // is in the history, and the webhook is handled. Any other
            // conflict (lost write races) is an error, so it is retried.
            Err(AppError::Conflict {
                code: "call_ended" | "invalid_call_state",
                ..
            }) => return Ok(Disposition::Recorded),
            Err(other) => return Err(other),
        };
        if let Some(agent) = reserved
            && applied
            && matches!(event.kind, TelephonyEventKind::HungUp { .. })
        {
            self.release_slot(call.org_id, agent).await;
        }
        if let Some(kind) = bus_kind {
            self.publish(&call, kind).await;
        }
        // A retried incoming `call.initiated` whose call was created but
        // perhaps never answered: answer it (the provider ignores a repeat).
        if matches!(
            event.kind,
            TelephonyEventKind::Initiated {
                direction: CallDirection::Inbound,
                ..
            }
        ) && call.direction == CallDirection::Inbound
            && matches!(call.status, CallStatus::Pending | CallStatus::Ringing)
        {
            let settings = self.org_telephony(call.org_id).await;
            self.spawn_answer(call.clone(), settings.as_ref());
        }
        // Provider commands run after the answer (the provider wants its
        // webhook acknowledged within 2 s; a command may take longer).
        if may_need_voicemail_step(&event.kind) {
            let this = self.clone();
            let kind = event.kind.clone();
            tokio::spawn(async move { this.voicemail_step(&call, &kind).await });
        }
        Ok(if applied {
            Disposition::Applied
        } else {
            Disposition::Recorded
        })
    }

    /// The call a provider event names: by our id (its `client_state`), else
    /// by the provider's call id.
    async fn locate(&self, event: &TelephonyEvent) -> Result<Option<Call>, StoreError> {
        match (event.call_id, &event.provider_call_id) {
            (Some(id), _) => self.calls.locate(&CallLocator::Id(id)).await,
            (None, Some(provider_id)) => {
                self.calls
                    .locate(&CallLocator::ProviderCallId(provider_id.clone()))
                    .await
            }
            (None, None) => Ok(None),
        }
    }

    /// An inbound call reported by `call.initiated`: creates it for the
    /// organisation that owns the called number and answers it.
    async fn answer_inbound(
        &self,
        event: &TelephonyEvent,
        from: Option<&PhoneNumber>,
        to: Option<&PhoneNumber>,
    ) -> Result<Disposition, AppError> {
        let (Some(inbound), Some(to)) = (&self.inbound, to) else {
            tracing::info!("inbound call to no number we answer; ignored");
            return Ok(Disposition::UnknownCall);
        };
        let Some(org) = inbound.orgs.org_for_number(to).await? else {
            tracing::info!(to = %to, "inbound call to a number no organisation owns; ignored");
            return Ok(Disposition::UnknownCall);
        };
        let Some(from) = from else {
            // A call needs the caller's number; a withheld caller id is not
            // answered (the provider's own handling applies).
            tracing::warn!(org_id = %org, "inbound call with a withheld caller id; not answered");
            return Ok(Disposition::UnknownCall);
        };
        if event.provider_call_id.is_none() {
            tracing::warn!(org_id = %org, "inbound call without a provider call id; not answered");
            return Ok(Disposition::UnknownCall);
        }
        // Everything that can fail is read before the call exists, so a
        // retried event never finds a call it cannot answer.
        let settings = inbound.orgs.telephony(org).await?;
        let customer = self.customers.find_by_phone(org, from).await?;
        let key = match &customer {
            Some(c) => AssignmentKey::Customer(c.id),
            None => AssignmentKey::Phone(from.clone()),
        };
        let (assignment, persona_id) = self.pick_persona(inbound, org, &key).await?;
        let now = self.clock.now();
        let call = Call::new(
            NewCall {
                org_id: org,
                direction: CallDirection::Inbound,
                from: from.clone(),
                to: to.clone(),
                customer_id: customer.map(|c| c.id),
                persona_id,
                assignment,
                provider_call_id: event.provider_call_id.clone(),
                provider_session_id: event.provider_session_id.clone(),
            },
            now,
        );
        match self.calls.create(&call).await {
            Ok(()) => started(&call),
            // The provider call id is taken: the call exists (a concurrent
            // delivery created it); this event is then a duplicate.
            Err(StoreError::AlreadyExists { .. }) => return Ok(Disposition::Recorded),
            Err(other) => return Err(other.into()),
        }
        let source = EventSource::Webhook {
            provider_event_id: event.id.clone(),
        };
        let (call, _) = self
            .apply(
                call,
                CallEvent::Ringing,
                source,
                Some(event.occurred_at),
                |_| {},
            )
            .await?;
        self.spawn_answer(call, Some(&settings));
        Ok(Disposition::Applied)
    }

    /// Answers `call` after the webhook's 200 (the provider wants it within
    /// 2 s), with its media stream.
    fn spawn_answer(&self, call: Call, settings: Option<&TelephonySettings>) {
        let media_stream = self.media_stream(&call, settings);
        let this = self.clone();
        tokio::spawn(async move { this.answer(call, media_stream).await });
    }

    /// The persona of the organisation's first running experiment for this
    /// caller (sticky per caller), or none.
    async fn pick_persona(
        &self,
        inbound: &Inbound,
        org: OrgId,
        key: &AssignmentKey,
    ) -> Result<(Option<(ExperimentId, VariantId)>, Option<PersonaId>), AppError> {
        let running = inbound.experiments.running(org).await?;
        let Some(experiment) = running.first() else {
            return Ok((None, None));
        };
        let Ok(variant) = experiment::assign(experiment, key) else {
            return Ok((None, None));
        };
        let subject = match key {
            AssignmentKey::Customer(id) => id.to_string(),
            AssignmentKey::Phone(number) => number.as_str().to_owned(),
        };
        let kept = inbound
            .experiments
            .assign(org, experiment.id, &subject, variant.id, self.clock.now())
            .await?;
        let chosen = experiment
            .variants
            .iter()
            .find(|v| v.id == kept)
            .unwrap_or(variant);
        Ok((Some((experiment.id, chosen.id)), Some(chosen.persona_id)))
    }

    /// Answers an inbound call, retrying a retryable failure twice; a call
    /// that cannot be answered is hung up at the provider (so the caller
    /// does not ring on) and fails.
    async fn answer(&self, call: Call, media_stream: Option<MediaStreamSpec>) {
        let Some(handle) = handle(&call) else {
            tracing::warn!(call_id = %call.id, "an inbound call without a provider id cannot be answered");
            return;
        };
        let options = AnswerOptions { media_stream };
        let mut last = None;
        for attempt in 0..3u32 {
            match self.telephony.answer(&handle, &options).await {
                Ok(_) => return,
                Err(err) => {
                    tracing::warn!(call_id = %call.id, attempt, error = %err, "answering failed");
                    let retry = err.is_retryable();
                    last = Some(err);
                    if !retry {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
                }
            }
        }
        if let Some(err) = last {
            tracing::warn!(call_id = %call.id, error = %err, "giving up answering; hanging up");
        }
        if let Err(err) = self.telephony.hang_up(&handle).await {
            tracing::warn!(call_id = %call.id, error = %err, "could not hang up an unanswered call");
        }
        if let Err(err) = self
            .apply(call, CallEvent::Failed, EventSource::Runtime, None, |_| {})
            .await
        {
            tracing::warn!(error = %err, "could not record the failed answer");
        }
    }

    /// Whether `event` is already in its call's history (a webhook event
    /// processed before, by another attempt): processing it again would
    /// repeat its notices and commands.
    ///
    /// # Errors
    /// Store errors.
    pub async fn already_recorded(&self, event: &TelephonyEvent) -> Result<bool, AppError> {
        let located = self.locate(event).await?;
        let Some(call) = located else {
            return Ok(false);
        };
        Ok(self
            .calls
            .events(call.org_id, call.id)
            .await?
            .iter()
            .any(|record| {
                matches!(&record.source, EventSource::Webhook { provider_event_id } if *provider_event_id == event.id)
            }))
    }

    /// The configured voicemail handling, step by step as the provider
    /// reports: machine detected → hang up, or wait for the greeting → speak
    /// → hang up after the message.
    async fn voicemail_step(&self, call: &Call, kind: &TelephonyEventKind) {
        if !may_need_voicemail_step(kind)
            || call.is_ended()
            || call.direction != CallDirection::Outbound
        {
            return;
        }
        let Some(handle) = handle(call) else { return };
        let voicemail = self.voicemail_for(call.org_id).await;
        let command = match (&voicemail, kind) {
            (
                VoicemailAction::HangUp,
                TelephonyEventKind::MachineDetected {
                    result: MachineDetectionResult::Machine,
                },
            ) => self.telephony.hang_up(&handle).await,
            (
                VoicemailAction::LeaveMessage { message },
                TelephonyEventKind::MachineGreetingEnded { .. },
            ) => {
                if !self.machine_answered(call).await {
                    return;
                }
                self.telephony
                    .speak(
                        &handle,
                        message,
                        &iace_domain::Voice {
                            name: "female".to_owned(),
                            speed: 1.0,
                        },
                        &iace_domain::Language::default(),
                    )
                    .await
            }
            (VoicemailAction::LeaveMessage { .. }, TelephonyEventKind::SpeakEnded { .. }) => {
                if !self.machine_answered(call).await {
                    return;
                }
                self.telephony.hang_up(&handle).await
            }
            _ => return,
        };
        if let Err(err) = command {
            tracing::warn!(call_id = %call.id, error = %err, "voicemail command failed");
        }
    }

    /// Whether answering-machine detection reported a machine on `call`.
    async fn machine_answered(&self, call: &Call) -> bool {
        match self.calls.events(call.org_id, call.id).await {
            Ok(events) => events.iter().any(|e| {
                e.event
                    == CallEvent::Noted {
                        notice: Notice::MachineDetected,
                    }
            }),
            Err(err) => {
                tracing::warn!(call_id = %call.id, error = %err, "could not read the call's history");
                false
            }
        }
    }

    /// Serves repeated reads of a call's details from memory for up to `ttl`
    /// (off by default). Writes through this service take effect at once;
    /// changes made by another instance show within `ttl` (while one request
    /// re-reads an expired entry, others may get it for up to `2 × ttl`).
    #[must_use]
    pub fn with_read_cache(mut self, ttl: std::time::Duration) -> Self {
        self.cache = Arc::new(DetailsCache {
            ttl,
            ..DetailsCache::default()
        });
        self
    }

    /// Places an outbound call: creates it (pending), dials it, and stores the
    /// provider's call id. With an idempotency key, a repeated request gets the
    /// call of the first one back (`created: false`) and dials nothing. The
    /// customer with the dialled number, if any, is linked. Ringing and answer
    /// come later from the provider's webhooks.
    ///
    /// # Errors
    /// Forbidden below member; Validation when `to` equals `from`, when `from`
    /// is not one of the organisation's numbers (once it has listed some) or
    /// is another organisation's (`not_an_org_number`), or the persona is not
    /// in the organisation (`persona_id`); Conflict
    /// `idempotency_key_reused` when the key was used for a call with other
    /// numbers or persona; Provider (`dial_failed`, the
    /// call id in the message) when the provider refused or failed the dial —
    /// the call is then Failed; store errors.
    pub async fn place(&self, who: &Principal, input: PlaceCall) -> Result<Placed, AppError> {
        who.require(Role::Member)?;
        if input.to == input.from {
            return Err(AppError::invalid(
                "to",
                "same_as_from",
                "a call cannot be placed to its own caller id",
            ));
        }
        if let Some(persona) = input.persona_id {
            match self.personas.get(who.org_id, persona).await {
                Ok(_) => {}
                Err(StoreError::NotFound { .. }) => {
                    return Err(AppError::invalid(
                        "persona_id",
                        "unknown_persona",
                        "no such persona in this organisation",
                    ));
                }
                Err(other) => return Err(other.into()),
            }
        }
        let settings = match &self.inbound {
            Some(inbound) => {
                let settings = inbound.orgs.telephony(who.org_id).await?;
                let listed = settings.numbers.contains(&input.from);
                let owner = inbound.orgs.org_for_number(&input.from).await?;
                if (!settings.numbers.is_empty() && !listed)
                    || owner.is_some_and(|owner| owner != who.org_id)
                {
                    return Err(AppError::invalid(
                        "from",
                        "not_an_org_number",
                        "calls are placed from one of the organisation's numbers (PUT /v1/org/telephony)",
                    ));
                }
                Some(settings)
            }
            None => None,
        };
        let customer = self.customers.find_by_phone(who.org_id, &input.to).await?;
        let call = Call::new(
            NewCall {
                org_id: who.org_id,
                direction: CallDirection::Outbound,
                from: input.from,
                to: input.to,
                customer_id: customer.map(|c| c.id),
                persona_id: input.persona_id,
                assignment: None,
                provider_call_id: None,
                provider_session_id: None,
            },
            self.clock.now(),
        );
        match &input.idempotency_key {
            Some(key) => {
                let (existing, created) = self.calls.create_idempotent(&call, key.as_str()).await?;
                if !created {
                    let same_request = (&existing.to, &existing.from, existing.persona_id)
                        == (&call.to, &call.from, call.persona_id);
                    if !same_request {
                        return Err(AppError::Conflict {
                            code: "idempotency_key_reused",
                            message: format!(
                                "this idempotency key was used for call {} with other parameters",
                                existing.id
                            ),
                        });
                    }
                    return Ok(Placed {
                        call: existing,
                        created: false,
                    });
                }
            }
            None => self.calls.create(&call).await?,
        }
        started(&call);
        let call = self.dial(call, settings).await?;
        Ok(Placed {
            call,
            created: true,
        })
    }

    /// Dials a freshly created call and records the result.
    async fn dial(
        &self,
        call: Call,
        settings: Option<TelephonySettings>,
    ) -> Result<Call, AppError> {
        let request = DialRequest {
            call_id: call.id,
            from: call.from.clone(),
            to: call.to.clone(),
            media_stream: self.media_stream(&call, settings.as_ref()),
            machine_detection: match self.voicemail_from(settings.as_ref()) {
                VoicemailAction::HangUp => MachineDetection::Detect,
                VoicemailAction::LeaveMessage { .. } => MachineDetection::DetectWithGreetingEnd,
            },
            ring_timeout: RING_TIMEOUT,
            connection: settings.and_then(|s| s.connection_id),
        };
        match self.telephony.dial(&request).await {
            Ok(response) => {
                // A webhook may already have moved the call (it finds it by our
                // id): re-read on conflict and set only the provider's ids.
                self.cache.forget(call.org_id, call.id);
                let updated = update_call(&*self.calls, call, |c| {
                    c.provider_call_id = Some(response.provider_call_id.clone());
                    if response.provider_session_id.is_some() {
                        c.provider_session_id
                            .clone_from(&response.provider_session_id);
                    }
                })
                .await;
                if let Ok(call) = &updated {
                    self.cache.forget(call.org_id, call.id);
                }
                updated
            }
            Err(err) => {
                tracing::warn!(call_id = %call.id, error = %err, "dial failed");
                let id = call.id;
                self.apply(call, CallEvent::Failed, EventSource::Runtime, None, |_| {})
                    .await?;
                Err(dial_failed(id, err))
            }
        }
    }

    /// Applies `event` from `source`, with `edit` made to the call in the
    /// same write, re-reading and retrying when another writer got there
    /// first. A webhook's event is stamped with the provider's time
    /// (`occurred_at`), others with now. Every event lands in the history;
    /// an applied one is published on the event bus. Returns the saved call
    /// and whether the event changed its status (an unchanged event's `edit`
    /// is saved too, e.g. a recording reference on an ended call).
    async fn apply(
        &self,
        call: Call,
        event: CallEvent,
        source: EventSource,
        occurred_at: Option<chrono::DateTime<chrono::Utc>>,
        edit: impl Fn(&mut Call) + Send + Sync,
    ) -> Result<(Call, bool), AppError> {
        let (call, applied, from) = self
            .apply_inner(call, event, source, occurred_at, edit)
            .await?;
        if applied {
            self.publish(
                &call,
                BusEventKind::StatusChanged {
                    from,
                    to: call.status,
                },
            )
            .await;
        }
        Ok((call, applied))
    }

    async fn apply_inner(
        &self,
        mut call: Call,
        event: CallEvent,
        source: EventSource,
        occurred_at: Option<chrono::DateTime<chrono::Utc>>,
        edit: impl Fn(&mut Call) + Send + Sync,
    ) -> Result<(Call, bool, CallStatus), AppError> {
        for _ in 0..WRITE_ATTEMPTS {
            let (from, expected, now) = (call.status, call.version, self.clock.now());
            let result = call.apply(event, occurred_at.unwrap_or(now));
            let record = CallEventRecord::new(
                call.org_id,
                call.id,
                from,
                event,
                &result,
                source.clone(),
                occurred_at.unwrap_or(now),
            );
            // Even an ignored event adds to the history.
            self.cache.forget(call.org_id, call.id);
            match result {
                Err(err) => {
                    self.calls.record_event(&record).await?;
                    return Err(transition_conflict(&err));
                }
                Ok(TransitionOutcome::Unchanged { .. }) => {
                    let mut edited = call.clone();
                    edit(&mut edited);
                    if edited != call {
                        edited.version += 1;
                        match self.calls.update(&edited, expected).await {
                            Ok(()) => {}
                            Err(StoreError::Conflict { .. }) => {
                                call = self.calls.get(call.org_id, call.id).await?;
                                continue;
                            }
                            Err(other) => return Err(other.into()),
                        }
                        call = edited;
                    }
                    self.calls.record_event(&record).await?;
                    return Ok((call, false, from));
                }
                Ok(TransitionOutcome::Applied { .. }) => {
                    edit(&mut call);
                    self.cache.forget(call.org_id, call.id);
                    match self.calls.save_transition(&call, expected, &record).await {
                        Ok(()) => {
                            if call.status.is_terminal() && !from.is_terminal() {
                                metrics::counter!(
                                    "iace_calls_ended_total",
                                    "direction" => call.direction.as_str(),
                                    "status" => call.status.as_str(),
                                )
                                .increment(1);
                            }
                            return Ok((call, true, from));
                        }
                        Err(StoreError::Conflict { .. }) => {
                            call = self.calls.get(call.org_id, call.id).await?;
                        }
                        Err(other) => return Err(other.into()),
                    }
                }
            }
        }
        Err(StoreError::Conflict {
            entity: "call",
            expected: call.version,
        }
        .into())
    }

    /// A call with its transcript and history.
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn get(&self, who: &Principal, id: CallId) -> Result<CallDetails, AppError> {
        who.require(Role::Viewer)?;
        if let Some(details) = self.cache.get(who.org_id, id) {
            return Ok(details);
        }
        // Three independent reads: issue them together (each is scoped to the
        // org, so a foreign id fails all three with NotFound).
        let (call, transcript, history) = futures::try_join!(
            self.calls.get(who.org_id, id),
            self.transcripts.for_call(who.org_id, id),
            self.calls.events(who.org_id, id),
        )?;
        let details = CallDetails {
            call,
            transcript,
            history,
        };
        self.cache.put(who.org_id, id, &details);
        Ok(details)
    }

    /// Calls matching `filter`, one page.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(
        &self,
        who: &Principal,
        filter: &CallFilter,
        page: PageRequest,
    ) -> Result<Page<Call>, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.calls.list(who.org_id, filter, page).await?)
    }

    /// Asks the provider to hang up a live call. The status changes when the
    /// provider's hang-up webhook arrives — except for a pending call that was
    /// never dialled (no provider call), which is cancelled at once.
    ///
    /// # Errors
    /// Forbidden below member; NotFound; Conflict `call_ended` when the call is
    /// over; Provider `hangup_failed`; store errors.
    pub async fn hang_up(&self, who: &Principal, id: CallId) -> Result<Call, AppError> {
        who.require(Role::Member)?;
        let call = self.calls.get(who.org_id, id).await?;
        if call.is_ended() {
            return Err(AppError::Conflict {
                code: "call_ended",
                message: format!("call {id} has already ended ({})", call.status),
            });
        }
        let Some(handle) = handle(&call) else {
            let (call, _) = self
                .apply(call, CallEvent::Canceled, EventSource::Api, None, |_| {})
                .await?;
            return Ok(call);
        };
        match self.telephony.hang_up(&handle).await {
            Ok(CommandOutcome::Accepted | CommandOutcome::CallAlreadyEnded) => Ok(call),
            Err(err) => Err(AppError::Provider {
                code: "hangup_failed",
                message: format!("the telephony provider could not hang up call {id}"),
                retryable: err.is_retryable(),
                source: Box::new(err),
            }),
        }
    }

    /// Hands a connected call to a human agent: takes one of the agent's
    /// slots, moves the call to Escalating (its `transferred_to` set) and asks
    /// the provider to transfer it. The provider's bridge webhook completes it.
    ///
    /// # Errors
    /// Forbidden below member; NotFound (the call); Validation `agent_id` for an
    /// agent not in the organisation; Conflict `invalid_call_state` unless the
    /// call is in progress, `agent_unavailable` when the agent is not available,
    /// not reachable or at capacity, `call_ended` when the provider says the
    /// call is over; Provider `transfer_failed` (the call is back in progress);
    /// store errors.
    pub async fn transfer(
        &self,
        who: &Principal,
        id: CallId,
        agent_id: AgentId,
    ) -> Result<Call, AppError> {
        who.require(Role::Member)?;
        let call = self.calls.get(who.org_id, id).await?;
        let invalid_state = |status: CallStatus| AppError::Conflict {
            code: "invalid_call_state",
            message: format!("only a call in progress can be transferred; this one is {status}"),
        };
        let Some(handle) = handle(&call).filter(|_| call.status == CallStatus::InProgress) else {
            return Err(invalid_state(call.status));
        };
        let agent = match self.agents.get(who.org_id, agent_id).await {
            Ok(agent) => agent,
            Err(StoreError::NotFound { .. }) => {
                return Err(AppError::invalid(
                    "agent_id",
                    "unknown_agent",
                    "no such agent in this organisation",
                ));
            }
            Err(other) => return Err(other.into()),
        };
        let unavailable = |why: &str| AppError::Conflict {
            code: "agent_unavailable",
            message: format!("agent {agent_id} {why}"),
        };
        let target = match (&agent.phone, &agent.sip_uri) {
            (Some(number), _) => TransferTarget::Phone {
                number: number.clone(),
            },
            (None, Some(uri)) => TransferTarget::Sip { uri: uri.clone() },
            (None, None) => return Err(unavailable("has no phone number or SIP URI")),
        };
        if agent.availability != Availability::Available {
            return Err(unavailable("is not available"));
        }
        match self
            .agents
            .adjust_active_calls(who.org_id, agent_id, 1)
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => return Err(unavailable("is at capacity")),
            Err(other) => return Err(other.into()),
        }
        let escalated = self
            .apply(
                call,
                CallEvent::EscalationStarted,
                EventSource::Api,
                None,
                |c| {
                    c.transferred_to = Some(agent_id);
                },
            )
            .await;
        let call = match escalated {
            Ok((call, true)) => call,
            Ok((call, false)) => {
                self.release(who, agent_id).await;
                return Err(invalid_state(call.status));
            }
            Err(err) => {
                self.release(who, agent_id).await;
                return Err(err);
            }
        };
        match self.telephony.transfer(&handle, &target).await {
            Ok(CommandOutcome::Accepted) => Ok(call),
            Ok(CommandOutcome::CallAlreadyEnded) => {
                // The hang-up webhook ends the call; the agent never got it.
                self.release(who, agent_id).await;
                Err(AppError::Conflict {
                    code: "call_ended",
                    message: format!("call {id} ended before it could be transferred"),
                })
            }
            Err(err) => {
                tracing::warn!(call_id = %id, error = %err, "transfer failed");
                self.release(who, agent_id).await;
                self.apply(
                    call,
                    CallEvent::TransferFailed,
                    EventSource::Runtime,
                    None,
                    |c| c.transferred_to = None,
                )
                .await?;
                Err(AppError::Provider {
                    code: "transfer_failed",
                    message: format!("the telephony provider could not transfer call {id}"),
                    retryable: err.is_retryable(),
                    source: Box::new(err),
                })
            }
        }
    }

    /// Sets the call's outcome (member): what the operator's own systems know
    /// (a sale closed, a callback booked). Set before the call's post-call
    /// work runs, it is the outcome that work counts for the experiment and
    /// the learned patterns; set later, it only changes the call.
    ///
    /// # Errors
    /// Forbidden; NotFound; store errors.
    pub async fn set_outcome(
        &self,
        who: &Principal,
        id: CallId,
        outcome: CallOutcome,
    ) -> Result<Call, AppError> {
        who.require(Role::Member)?;
        let call = self.calls.get(who.org_id, id).await?;
        let call = update_call(&*self.calls, call, |c| c.outcome = Some(outcome)).await?;
        self.cache.forget(who.org_id, id);
        Ok(call)
    }

    // ------------------------------------------------------------ voice runtime

    /// For the voice runtime: reserves a free agent with every one of
    /// `skills` for the call (the domain's routing picks; a slot taken by a
    /// concurrent escalation moves on to the next) and moves the call to
    /// escalating with `reason`. `None` when nobody is free or the call is no
    /// longer in progress.
    ///
    /// # Errors
    /// Store errors.
    pub async fn escalate(
        &self,
        org: OrgId,
        id: CallId,
        reason: EscalationReason,
        skills: &[Skill],
    ) -> Result<Option<AgentId>, AppError> {
        let reserved = self.reserve_agent(org, id, reason, skills).await?;
        metrics::counter!(
            "iace_escalations_total",
            "reason" => reason.as_str(),
            "result" => if reserved.is_some() { "agent_reserved" } else { "no_agent" },
        )
        .increment(1);
        Ok(reserved)
    }

    /// [`escalate`](Self::escalate)'s work.
    async fn reserve_agent(
        &self,
        org: OrgId,
        id: CallId,
        reason: EscalationReason,
        skills: &[Skill],
    ) -> Result<Option<AgentId>, AppError> {
        let mut candidates = self.agents.candidates(org, skills).await?;
        loop {
            let request = RoutingRequest {
                required_skills: skills,
            };
            let Ok(agent) = routing::route(&candidates, &request) else {
                return Ok(None);
            };
            let agent_id = agent.id;
            match self.agents.adjust_active_calls(org, agent_id, 1).await {
                Ok(_) => {}
                Err(StoreError::Conflict { .. }) => {
                    candidates.retain(|a| a.id != agent_id);
                    continue;
                }
                Err(other) => return Err(other.into()),
            }
            let call = match self.calls.get(org, id).await {
                Ok(call) => call,
                Err(err) => {
                    self.release_slot(org, agent_id).await;
                    return Err(err.into());
                }
            };
            let escalated = self
                .apply(
                    call,
                    CallEvent::EscalationStarted,
                    EventSource::Runtime,
                    None,
                    |c| {
                        c.transferred_to = Some(agent_id);
                        c.escalation_reason = Some(reason);
                    },
                )
                .await;
            return match escalated {
                Ok((_, true)) => Ok(Some(agent_id)),
                Ok((_, false)) => {
                    self.release_slot(org, agent_id).await;
                    Ok(None)
                }
                Err(err) => {
                    self.release_slot(org, agent_id).await;
                    Err(err)
                }
            };
        }
    }

    /// For the voice runtime: transfers an escalating call to the agent
    /// reserved for it. The `call.bridged` webhook then marks it transferred;
    /// a failed transfer frees the agent and puts the call back in progress.
    ///
    /// # Errors
    /// NotFound; Conflict when the agent cannot be reached; provider and store
    /// errors.
    pub async fn transfer_escalated(
        &self,
        org: OrgId,
        id: CallId,
        agent_id: AgentId,
    ) -> Result<(), AppError> {
        let found = futures::try_join!(self.calls.get(org, id), self.agents.get(org, agent_id));
        let (call, agent) = match found {
            Ok(found) => found,
            Err(err) => {
                self.release_slot(org, agent_id).await;
                return Err(err.into());
            }
        };
        let target = match (&agent.phone, &agent.sip_uri) {
            (Some(number), _) => Some(TransferTarget::Phone {
                number: number.clone(),
            }),
            (None, Some(uri)) => Some(TransferTarget::Sip { uri: uri.clone() }),
            (None, None) => None,
        };
        let (Some(handle), Some(target)) = (handle(&call), target) else {
            self.release_slot(org, agent_id).await;
            return Err(AppError::Conflict {
                code: "agent_unreachable",
                message: format!("call {id} cannot be transferred to agent {agent_id}"),
            });
        };
        match self.telephony.transfer(&handle, &target).await {
            Ok(CommandOutcome::Accepted) => Ok(()),
            Ok(CommandOutcome::CallAlreadyEnded) => {
                self.release_slot(org, agent_id).await;
                Ok(())
            }
            Err(err) => {
                self.release_slot(org, agent_id).await;
                self.apply(
                    call,
                    CallEvent::TransferFailed,
                    EventSource::Runtime,
                    None,
                    |c| c.transferred_to = None,
                )
                .await?;
                Err(err.into())
            }
        }
    }

    /// For the voice runtime: hangs the call up (the hang-up webhook ends
    /// it).
    ///
    /// # Errors
    /// NotFound; provider errors.
    pub async fn hang_up_call(&self, org: OrgId, id: CallId) -> Result<(), AppError> {
        let call = self.calls.get(org, id).await?;
        if let Some(handle) = handle(&call) {
            self.telephony.hang_up(&handle).await?;
        }
        Ok(())
    }

    /// The call, for the voice runtime (no principal: the media stream was
    /// authenticated by its token).
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn for_runtime(&self, org: OrgId, id: CallId) -> Result<Call, AppError> {
        Ok(self.calls.get(org, id).await?)
    }

    async fn release_slot(&self, org: OrgId, agent: AgentId) {
        if let Err(err) = self.agents.adjust_active_calls(org, agent, -1).await {
            tracing::warn!(agent_id = %agent, error = %err, "could not release the agent's slot");
        }
    }

    /// Gives back the agent slot a failed transfer took (best effort: logged).
    async fn release(&self, who: &Principal, agent: AgentId) {
        if let Err(err) = self.agents.adjust_active_calls(who.org_id, agent, -1).await {
            tracing::warn!(agent_id = %agent, error = %err, "could not release the agent's slot");
        }
    }
}

/// Whether a provider event can lead to a voicemail command (a machine
/// answered, its greeting ended, our message was said).
fn may_need_voicemail_step(kind: &TelephonyEventKind) -> bool {
    matches!(
        kind,
        TelephonyEventKind::MachineDetected {
            result: MachineDetectionResult::Machine
        } | TelephonyEventKind::MachineGreetingEnded { .. }
            | TelephonyEventKind::SpeakEnded { .. }
    )
}

fn dial_failed(id: CallId, err: ProviderError) -> AppError {
    let message = if err.is_retryable() {
        format!("call {id} failed: the telephony provider could not be reached; retry later")
    } else {
        format!("call {id} failed: the telephony provider refused to dial it")
    };
    AppError::Provider {
        code: "dial_failed",
        message,
        retryable: err.is_retryable(),
        source: Box::new(err),
    }
}

/// Counts a call created (`iace_calls_started_total` by direction).
fn started(call: &Call) {
    metrics::counter!("iace_calls_started_total", "direction" => call.direction.as_str())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use iace_domain::ports::providers::MockTelephonyGateway;
    use iace_domain::ports::store::{
        MockAgentRepository, MockCallRepository, MockCustomerRepository, MockPersonaRepository,
        MockTranscriptRepository,
    };
    use iace_domain::ports::{DialResponse, FixedClock};
    use iace_domain::{ApiKeyId, HumanAgent};

    use super::*;
    use crate::auth::Subject;

    struct Mocks {
        calls: MockCallRepository,
        customers: MockCustomerRepository,
        personas: MockPersonaRepository,
        agents: MockAgentRepository,
        telephony: MockTelephonyGateway,
    }

    impl Mocks {
        fn new() -> Self {
            let mut customers = MockCustomerRepository::new();
            customers.expect_find_by_phone().returning(|_, _| Ok(None));
            Self {
                calls: MockCallRepository::new(),
                customers,
                personas: MockPersonaRepository::new(),
                agents: MockAgentRepository::new(),
                telephony: MockTelephonyGateway::new(),
            }
        }

        fn service(self) -> CallService {
            CallService::new(
                Arc::new(self.calls),
                Arc::new(MockTranscriptRepository::new()),
                Arc::new(self.customers),
                Arc::new(self.personas),
                Arc::new(self.agents),
                Arc::new(self.telephony),
                Arc::new(FixedClock::new(Utc::now())),
            )
        }
    }

    fn principal(role: Role) -> Principal {
        Principal {
            org_id: OrgId::new(),
            role,
            subject: Subject::ApiKey(ApiKeyId::new()),
        }
    }

    fn number(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw).expect("valid")
    }

    fn input(key: Option<&str>) -> PlaceCall {
        PlaceCall {
            to: number("+442079460958"),
            from: number("+14155550100"),
            persona_id: None,
            idempotency_key: key.map(|k| IdempotencyKey::parse("key", k).expect("key")),
        }
    }

    fn live_call(who: &Principal, status: CallStatus) -> Call {
        let mut call = Call::new(
            NewCall {
                org_id: who.org_id,
                direction: CallDirection::Outbound,
                from: number("+14155550100"),
                to: number("+442079460958"),
                customer_id: None,
                persona_id: None,
                assignment: None,
                provider_call_id: Some("sim:1".into()),
                provider_session_id: None,
            },
            Utc::now(),
        );
        call.status = status;
        call
    }

    fn agent(who: &Principal) -> HumanAgent {
        HumanAgent {
            id: AgentId::new(),
            org_id: who.org_id,
            name: "Ana".into(),
            email: None,
            phone: None,
            sip_uri: Some("sip:ana@pbx.example.com".into()),
            skills: Default::default(),
            availability: Availability::Available,
            max_concurrent_calls: 1,
            active_calls: 1,
        }
    }

    #[tokio::test]
    async fn details_are_cached_until_this_service_changes_the_call() {
        let who = principal(Role::Member);
        let mut call = live_call(&who, CallStatus::Pending);
        call.provider_call_id = None;
        let id = call.id;
        let mut mocks = Mocks::new();
        let stored = call.clone();
        mocks
            .calls
            .expect_get()
            .returning(move |_, _| Ok(stored.clone()));
        // Read twice before the write, once after: the store sees two reads.
        mocks
            .calls
            .expect_events()
            .times(2)
            .returning(|_, _| Ok(Vec::new()));
        mocks
            .calls
            .expect_save_transition()
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut transcripts = MockTranscriptRepository::new();
        transcripts
            .expect_for_call()
            .times(2)
            .returning(|_, _| Ok(Vec::new()));
        let service = CallService::new(
            Arc::new(mocks.calls),
            Arc::new(transcripts),
            Arc::new(mocks.customers),
            Arc::new(mocks.personas),
            Arc::new(mocks.agents),
            Arc::new(mocks.telephony),
            Arc::new(FixedClock::new(Utc::now())),
        )
        .with_read_cache(std::time::Duration::from_secs(60));
        service.get(&who, id).await.expect("first read");
        service.get(&who, id).await.expect("served from memory");
        service
            .hang_up(&who, id)
            .await
            .expect("cancel a call never dialled");
        service
            .get(&who, id)
            .await
            .expect("re-read after the write");
    }

    #[test]
    fn an_expired_entry_is_re_read_by_one_caller_while_others_get_it() {
        let who = principal(Role::Viewer);
        let details = CallDetails {
            call: live_call(&who, CallStatus::InProgress),
            transcript: Vec::new(),
            history: Vec::new(),
        };
        let id = details.call.id;
        let cache = DetailsCache {
            ttl: std::time::Duration::from_secs(10),
            ..DetailsCache::default()
        };
        cache.put(who.org_id, id, &details);
        assert_eq!(cache.get(who.org_id, id), Some(details.clone()), "fresh");
        assert_eq!(cache.get(OrgId::new(), id), None, "keyed by organisation");
        let age = |secs: u64| {
            let mut entries = cache.entries.write().expect("lock");
            let entry = entries.get_mut(&(who.org_id, id)).expect("entry");
            entry.1 = std::time::Instant::now()
                .checked_sub(std::time::Duration::from_secs(secs))
                .expect("instant");
        };
        age(15);
        assert_eq!(cache.get(who.org_id, id), None, "the first caller re-reads");
        assert_eq!(
            cache.get(who.org_id, id),
            Some(details.clone()),
            "the others get the old entry"
        );
        cache.put(who.org_id, id, &details);
        age(25);
        assert_eq!(cache.get(who.org_id, id), None, "too old for anyone");
        cache.forget(who.org_id, id);
        assert_eq!(cache.get(who.org_id, id), None);
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("k", "order-42_x.y:z").is_ok());
        assert!(IdempotencyKey::parse("k", &"k".repeat(255)).is_ok());
        for bad in ["", "two words", "caf\u{e9}", "tab\t", &"k".repeat(256)] {
            let err = IdempotencyKey::parse("Idempotency-Key", bad).expect_err(bad);
            assert_eq!(err.field, "Idempotency-Key");
        }
    }

    #[tokio::test]
    async fn a_placed_call_is_dialled_once_and_keeps_the_provider_id() {
        let who = principal(Role::Member);
        let mut mocks = Mocks::new();
        mocks
            .calls
            .expect_create_idempotent()
            .times(1)
            .returning(|call, _| Ok((call.clone(), true)));
        mocks
            .telephony
            .expect_dial()
            .times(1)
            .withf(|r| r.to.as_str() == "+442079460958")
            .returning(|_| {
                Ok(DialResponse {
                    provider_call_id: "sim:abc".into(),
                    provider_session_id: None,
                })
            });
        mocks
            .calls
            .expect_update()
            .times(1)
            .withf(|call, expected| {
                *expected == 0
                    && call.version == 1
                    && call.provider_call_id.as_deref() == Some("sim:abc")
                    && call.status == CallStatus::Pending
            })
            .returning(|_, _| Ok(()));
        let placed = mocks
            .service()
            .place(&who, input(Some("k-1")))
            .await
            .expect("placed");
        assert!(placed.created);
        assert_eq!(placed.call.provider_call_id.as_deref(), Some("sim:abc"));
    }

    #[tokio::test]
    async fn a_replayed_key_returns_the_first_call_without_dialling() {
        let who = principal(Role::Member);
        let first = live_call(&who, CallStatus::Pending);
        let mut mocks = Mocks::new();
        let existing = first.clone();
        mocks
            .calls
            .expect_create_idempotent()
            .withf(|_, key| key == "k-1")
            .returning(move |_, _| Ok((existing.clone(), false)));
        mocks.telephony.expect_dial().times(0);
        let service = mocks.service();
        let placed = service
            .place(&who, input(Some("k-1")))
            .await
            .expect("replay");
        assert_eq!((placed.call, placed.created), (first, false));

        let mut other = input(Some("k-1"));
        other.to = number("+442079460900");
        let err = service.place(&who, other).await.expect_err("reused");
        assert_eq!(err.code(), "idempotency_key_reused");
    }

    #[tokio::test]
    async fn a_failed_dial_fails_the_call_and_names_it() {
        let who = principal(Role::Member);
        let mut mocks = Mocks::new();
        mocks.calls.expect_create().times(1).returning(|_| Ok(()));
        mocks.telephony.expect_dial().returning(|_| {
            Err(ProviderError::Rejected {
                provider: "local",
                status: Some(422),
                detail: "unroutable".into(),
            })
        });
        mocks
            .calls
            .expect_save_transition()
            .times(1)
            .withf(|call, expected, record| {
                *expected == 0
                    && call.status == CallStatus::Failed
                    && record.event == CallEvent::Failed
                    && record.source == EventSource::Runtime
            })
            .returning(|_, _, _| Ok(()));
        let err = mocks
            .service()
            .place(&who, input(None))
            .await
            .expect_err("dial failed");
        let AppError::Provider {
            code,
            message,
            retryable,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*code, *retryable), ("dial_failed", false));
        assert!(message.starts_with("call "), "{message}");
    }

    #[tokio::test]
    async fn viewers_cannot_place_and_bad_input_is_refused_before_any_write() {
        let mut mocks = Mocks::new();
        mocks
            .personas
            .expect_get()
            .returning(|_, _| Err(StoreError::NotFound { entity: "persona" }));
        let service = mocks.service();
        let err = service
            .place(&principal(Role::Viewer), input(None))
            .await
            .expect_err("viewer");
        assert_eq!(err.code(), "forbidden");
        let who = principal(Role::Member);
        let mut same = input(None);
        same.to = same.from.clone();
        let err = service.place(&who, same).await.expect_err("same");
        assert!(matches!(&err, AppError::Validation { errors } if errors[0].field == "to"));
        let mut unknown = input(None);
        unknown.persona_id = Some(PersonaId::new());
        let err = service.place(&who, unknown).await.expect_err("persona");
        assert!(matches!(&err, AppError::Validation { errors } if errors[0].field == "persona_id"));
    }

    #[tokio::test]
    async fn hanging_up_an_ended_call_conflicts() {
        let who = principal(Role::Member);
        let ended = live_call(&who, CallStatus::Completed);
        let mut mocks = Mocks::new();
        mocks
            .calls
            .expect_get()
            .returning(move |_, _| Ok(ended.clone()));
        mocks.telephony.expect_hang_up().times(0);
        let err = mocks
            .service()
            .hang_up(&who, CallId::new())
            .await
            .expect_err("ended");
        assert_eq!(err.code(), "call_ended");
    }

    #[tokio::test]
    async fn transfer_to_an_agent_at_capacity_changes_nothing() {
        let who = principal(Role::Member);
        let call = live_call(&who, CallStatus::InProgress);
        let ana = agent(&who);
        let mut mocks = Mocks::new();
        mocks
            .calls
            .expect_get()
            .returning(move |_, _| Ok(call.clone()));
        mocks
            .agents
            .expect_get()
            .returning(move |_, _| Ok(ana.clone()));
        mocks
            .agents
            .expect_adjust_active_calls()
            .withf(|_, _, delta| *delta == 1)
            .returning(|_, _, _| {
                Err(StoreError::Conflict {
                    entity: "agent",
                    expected: 1,
                })
            });
        mocks.calls.expect_save_transition().times(0);
        mocks.telephony.expect_transfer().times(0);
        let err = mocks
            .service()
            .transfer(&who, CallId::new(), AgentId::new())
            .await
            .expect_err("at capacity");
        assert_eq!(err.code(), "agent_unavailable");
    }

    #[tokio::test]
    async fn a_failed_transfer_gives_the_slot_back_and_resumes_the_call() {
        let who = principal(Role::Member);
        let call = live_call(&who, CallStatus::InProgress);
        let ana = agent(&who);
        let mut mocks = Mocks::new();
        mocks
            .calls
            .expect_get()
            .returning(move |_, _| Ok(call.clone()));
        let got = ana.clone();
        mocks
            .agents
            .expect_get()
            .returning(move |_, _| Ok(got.clone()));
        let taken = ana.clone();
        mocks
            .agents
            .expect_adjust_active_calls()
            .withf(|_, _, delta| *delta == 1)
            .times(1)
            .returning(move |_, _, _| Ok(taken.clone()));
        mocks
            .agents
            .expect_adjust_active_calls()
            .withf(|_, _, delta| *delta == -1)
            .times(1)
            .returning(move |_, _, _| Ok(ana.clone()));
        let mut seq = mockall::Sequence::new();
        mocks
            .calls
            .expect_save_transition()
            .times(1)
            .in_sequence(&mut seq)
            .withf(|call, _, _| {
                call.status == CallStatus::Escalating && call.transferred_to.is_some()
            })
            .returning(|_, _, _| Ok(()));
        mocks
            .calls
            .expect_save_transition()
            .times(1)
            .in_sequence(&mut seq)
            .withf(|call, _, _| {
                call.status == CallStatus::InProgress && call.transferred_to.is_none()
            })
            .returning(|_, _, _| Ok(()));
        mocks
            .telephony
            .expect_transfer()
            .returning(|_, _| Err(ProviderError::Timeout { provider: "local" }));
        let err = mocks
            .service()
            .transfer(&who, CallId::new(), AgentId::new())
            .await
            .expect_err("transfer failed");
        assert_eq!(err.code(), "transfer_failed");
    }
}
