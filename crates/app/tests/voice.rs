//! The voice runtime end to end, in process: the local text providers (text
//! "audio" in and out, scripted replies, lexicon sentiment) and a fake media
//! client that echoes every playback mark, as the telephony side does once the
//! audio before it was played.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use iace_app::AppError;
use iace_app::voice::{
    CallControl, CallReport, CallSetup, ContextPattern, MediaIn, MediaOut, Pacing, ReplyContext,
    TurnLatency, VoiceConfig, VoiceObserver, VoicePorts, run_call,
};
use iace_domain::conversation::Turn;
use iace_domain::conversation::engine::HangUpReason;
use iace_domain::escalation::{EscalationPolicy, EscalationReason};
use iace_domain::model::{CustomerTier, Persona, Skill, Speaker, Style, Voice};
use iace_domain::ports::{ChatRequest, ChatStream, LanguageModel, ProviderError};

use iace_domain::{AgentId, Language, OrgId, PatternId, PersonaId, Sentiment};
use iace_local::replies::ScriptedReplies;
use iace_local::sentiment::LexiconSentiment;
use iace_local::speech::{EchoTextToSpeech, TextSpeechToText};
use tokio::sync::mpsc;

#[derive(Default)]
struct Recorded {
    turns: Vec<Turn>,
    sentiments: Vec<(u32, Sentiment)>,
    contexts: Vec<String>,
    transfers: Vec<(AgentId, EscalationReason)>,
    hang_ups: Vec<HangUpReason>,
}

struct FakeControl {
    agent: Option<AgentId>,
    pattern: PatternId,
    recorded: Mutex<Recorded>,
}

impl FakeControl {
    fn new(agent: Option<AgentId>) -> Arc<Self> {
        Arc::new(Self {
            agent,
            pattern: PatternId::new(),
            recorded: Mutex::new(Recorded::default()),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Recorded) -> T) -> T {
        f(&self.recorded.lock().expect("lock"))
    }
}

#[async_trait]
impl CallControl for FakeControl {
    async fn context(&self, text: &str) -> Result<ReplyContext, AppError> {
        self.recorded
            .lock()
            .expect("lock")
            .contexts
            .push(text.to_owned());
        Ok(ReplyContext {
            memory: "- 2026-11-01: asked about opening hours".into(),
            patterns: vec![ContextPattern {
                id: self.pattern,
                trigger: "caller asks about hours".into(),
                response: "give the hours, then offer help".into(),
            }],
        })
    }

    async fn record_turn(&self, turn: &Turn) -> Result<(), AppError> {
        self.recorded.lock().expect("lock").turns.push(turn.clone());
        Ok(())
    }

    async fn record_sentiment(&self, turn: u32, sentiment: Sentiment) -> Result<(), AppError> {
        self.recorded
            .lock()
            .expect("lock")
            .sentiments
            .push((turn, sentiment));
        Ok(())
    }

    async fn find_agent(
        &self,
        _reason: EscalationReason,
        _skills: &[Skill],
    ) -> Result<Option<AgentId>, AppError> {
        Ok(self.agent)
    }

    async fn transfer(&self, agent: AgentId, reason: EscalationReason) -> Result<(), AppError> {
        self.recorded
            .lock()
            .expect("lock")
            .transfers
            .push((agent, reason));
        Ok(())
    }

    async fn hang_up(&self, reason: HangUpReason) -> Result<(), AppError> {
        self.recorded.lock().expect("lock").hang_ups.push(reason);
        Ok(())
    }
}

fn persona() -> Persona {
    Persona {
        id: PersonaId::new(),
        org_id: OrgId::new(),
        name: "Sam".into(),
        voice: Voice {
            name: "local".into(),
            speed: 1.0,
        },
        system_prompt: "You are Sam, a helpful assistant for Acme.".into(),
        greeting: "Hi, this is Sam from Acme.".into(),
        style: Style::Friendly,
        language: Language::parse("en").expect("language"),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

/// The local text providers around `llm`.
fn local_ports(
    llm: Arc<dyn LanguageModel>,
    observer: Option<Arc<dyn VoiceObserver>>,
) -> VoicePorts {
    VoicePorts {
        stt: Arc::new(TextSpeechToText),
        tts: Arc::new(EchoTextToSpeech::new()),
        llm,
        sentiment: Arc::new(LexiconSentiment),
        observer,
    }
}

/// Sam, a standard caller, the default escalation policy.
fn standard_setup() -> CallSetup {
    CallSetup {
        persona: persona(),
        tier: CustomerTier::Standard,
        policy: Arc::new(EscalationPolicy::default().compile().expect("policy")),
    }
}

fn config() -> VoiceConfig {
    let mut config = VoiceConfig {
        pacing: Pacing {
            frame_bytes: 0,
            ..Pacing::default()
        },
        ..VoiceConfig::default()
    };
    config.engine.end_of_turn_grace_ms = 50;
    config.engine.filler_after_ms = 0;
    config
}

/// A fake media client: it echoes marks and collects what the agent said,
/// one string per speech chunk.
struct Phone {
    to_call: mpsc::Sender<MediaIn>,
    heard: mpsc::UnboundedReceiver<String>,
    clears: Arc<Mutex<u32>>,
}

fn start(
    llm: ScriptedReplies,
    control: Arc<FakeControl>,
    config: VoiceConfig,
) -> (Phone, tokio::task::JoinHandle<CallReport>) {
    start_with(Arc::new(llm), control, config, None)
}

fn start_with(
    llm: Arc<dyn LanguageModel>,
    control: Arc<FakeControl>,
    config: VoiceConfig,
    observer: Option<Arc<dyn VoiceObserver>>,
) -> (Phone, tokio::task::JoinHandle<CallReport>) {
    let (to_call, media_in) = mpsc::channel(64);
    let (media_out, mut from_call) = mpsc::channel::<MediaOut>(64);
    let (heard_tx, heard) = mpsc::unbounded_channel();
    let clears = Arc::new(Mutex::new(0));
    let echo = to_call.clone();
    let counted = clears.clone();
    tokio::spawn(async move {
        let mut said = String::new();
        while let Some(out) = from_call.recv().await {
            match out {
                MediaOut::Audio(audio) => said.push_str(&String::from_utf8_lossy(&audio)),
                MediaOut::Mark(name) => {
                    let _ = heard_tx.send(std::mem::take(&mut said));
                    let _ = echo.send(MediaIn::Mark(name)).await;
                }
                MediaOut::Clear => *counted.lock().expect("lock") += 1,
            }
        }
    });
    let ports = local_ports(llm, observer);
    let setup = standard_setup();
    let call = tokio::spawn(run_call(setup, ports, control, config, media_in, media_out));
    (
        Phone {
            to_call,
            heard,
            clears,
        },
        call,
    )
}

impl Phone {
    async fn say(&self, text: &str) {
        self.to_call
            .send(MediaIn::Audio(Bytes::from(text.to_owned())))
            .await
            .expect("call alive");
    }

    async fn hear(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(5), self.heard.recv())
            .await
            .expect("the agent speaks within 5 s")
            .expect("a chunk")
    }

    async fn hang_up(&self) {
        let _ = self.to_call.send(MediaIn::Stop).await;
    }
}

async fn finished(call: tokio::task::JoinHandle<CallReport>) -> CallReport {
    tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call ends")
        .expect("the call task")
}

#[tokio::test]
async fn a_call_greets_answers_each_turn_and_records_everything() {
    let control = FakeControl::new(None);
    let (mut phone, call) = start(ScriptedReplies::default(), control.clone(), config());
    assert_eq!(phone.hear().await, "Hi, this is Sam from Acme.");
    phone.say("What time do you open tomorrow?").await;
    let answer = phone.hear().await;
    assert!(!answer.is_empty());
    phone.say("Thanks, that is great.").await;
    let second = phone.hear().await;
    assert!(!second.is_empty());
    // Let the last reply finish playing, then hang up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    phone.hang_up().await;
    let report = finished(call).await;

    let speakers: Vec<Speaker> = report.turns.iter().map(|t| t.speaker).collect();
    assert_eq!(
        &speakers[..3],
        &[Speaker::Bot, Speaker::Caller, Speaker::Bot],
        "{:?}",
        report.turns
    );
    assert_eq!(report.turns[1].text, "What time do you open tomorrow?");
    assert_eq!(report.replies, 2);
    assert_eq!(
        report.patterns_used,
        vec![control.pattern],
        "the pattern was in the prompt of a heard reply"
    );
    // Everything recorded reached the control (turns, sentiments, contexts).
    tokio::time::sleep(Duration::from_millis(100)).await;
    control.with(|r| {
        assert_eq!(r.turns.len(), report.turns.len());
        assert!(
            r.sentiments.iter().any(|(turn, _)| *turn == 1),
            "{:?}",
            r.sentiments
        );
        assert!(r.contexts.iter().any(|c| c.contains("open tomorrow")));
        assert!(r.transfers.is_empty() && r.hang_ups.is_empty());
    });
}

#[tokio::test]
async fn speaking_over_the_agent_cancels_the_reply_and_clears_audio() {
    let control = FakeControl::new(None);
    // A long reply, streamed slowly enough to be interrupted.
    let llm = ScriptedReplies::always(
        "Our opening hours are nine to five. On Saturdays we open at ten. \
         On Sundays we are closed. Holidays vary by store. Please check online.",
    )
    .with_chunk_delay(Duration::from_millis(50));
    let (mut phone, call) = start(llm, control.clone(), config());
    assert_eq!(phone.hear().await, "Hi, this is Sam from Acme.");
    phone.say("When are you open?").await;
    let first = phone.hear().await;
    assert!(first.contains("nine to five"), "{first}");
    phone.say("Sorry, which store do you mean exactly?").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        *phone.clears.lock().expect("lock") >= 1,
        "audio was cleared"
    );
    phone.hang_up().await;
    let report = finished(call).await;
    // The reply the caller spoke over is recorded as interrupted, with only
    // what was heard; the caller's words follow it.
    let barged = report
        .turns
        .windows(2)
        .find(|pair| pair[1].text.starts_with("Sorry, which store"))
        .map(|pair| pair[0].clone())
        .expect("the caller's interruption is a turn");
    assert_eq!(barged.speaker, Speaker::Bot, "{:?}", report.turns);
    assert!(barged.interrupted);
    assert!(barged.text.contains("nine to five"));
    assert!(
        !barged.text.contains("Please check online"),
        "only what was heard"
    );
}

#[tokio::test]
async fn asking_for_a_person_transfers_after_the_handover_line() {
    let agent = AgentId::new();
    let control = FakeControl::new(Some(agent));
    let (mut phone, call) = start(ScriptedReplies::default(), control.clone(), config());
    phone.hear().await;
    phone.say("I want to speak to a real person").await;
    let handover = phone.hear().await;
    assert!(handover.contains("connect you"), "{handover}");
    let report = finished(call).await;
    assert_eq!(report.transferred_to, Some(agent));
    assert_eq!(report.escalation, Some(EscalationReason::HumanRequested));
    tokio::time::sleep(Duration::from_millis(50)).await;
    control.with(|r| assert_eq!(r.transfers, vec![(agent, EscalationReason::HumanRequested)]));
}

#[tokio::test]
async fn silence_ends_the_call_politely() {
    let control = FakeControl::new(None);
    let mut config = config();
    config.engine.silence_reprompt_ms = 100;
    config.engine.max_reprompts = 1;
    let (mut phone, call) = start(ScriptedReplies::default(), control.clone(), config);
    phone.hear().await;
    assert_eq!(phone.hear().await, "Are you still there?");
    assert!(phone.hear().await.contains("Goodbye"));
    let report = finished(call).await;
    assert_eq!(report.hung_up, Some(HangUpReason::NoResponse));
}

/// A language model that always fails: the provider is down.
struct DownModel;

#[async_trait]
impl iace_domain::ports::LanguageModel for DownModel {
    async fn stream_chat(
        &self,
        _request: &iace_domain::ports::ChatRequest,
    ) -> Result<iace_domain::ports::ChatStream, iace_domain::ports::ProviderError> {
        Err(iace_domain::ports::ProviderError::CircuitOpen { provider: "down" })
    }
}

#[tokio::test]
async fn a_language_model_that_fails_mid_call_degrades_to_an_apology_then_a_human() {
    let agent = AgentId::new();
    let control = FakeControl::new(Some(agent));
    let (to_call, media_in) = mpsc::channel(64);
    let (media_out, mut from_call) = mpsc::channel::<MediaOut>(64);
    let ports = local_ports(Arc::new(DownModel), None);
    let setup = standard_setup();
    let call = tokio::spawn(run_call(
        setup,
        ports,
        control.clone(),
        config(),
        media_in,
        media_out,
    ));
    // The fake media client: collect speech, echo marks.
    let mut heard = Vec::new();
    let mut said = String::new();
    let mut lines_sent = 0;
    let script = ["What time do you open?", "I said what time do you open?"];
    while let Ok(Some(out)) = tokio::time::timeout(Duration::from_secs(5), from_call.recv()).await {
        match out {
            MediaOut::Audio(audio) => said.push_str(&String::from_utf8_lossy(&audio)),
            MediaOut::Mark(name) => {
                heard.push(std::mem::take(&mut said));
                let _ = to_call.send(MediaIn::Mark(name)).await;
                // After the greeting and after each apology, the caller speaks.
                if lines_sent < script.len() && heard.len() == lines_sent + 1 {
                    let line = script[lines_sent];
                    lines_sent += 1;
                    let _ = to_call.send(MediaIn::Audio(Bytes::from(line))).await;
                }
            }
            MediaOut::Clear => {}
        }
    }
    let report = finished(call).await;
    assert_eq!(heard[0], "Hi, this is Sam from Acme.");
    assert!(
        heard[1].starts_with("Sorry, I didn't catch that"),
        "{heard:?}"
    );
    assert!(heard[2].contains("connect you"), "{heard:?}");
    assert_eq!(report.escalation, Some(EscalationReason::ServiceFailure));
    assert_eq!(
        report.transferred_to,
        Some(agent),
        "the call was not dropped"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    control.with(|r| {
        assert_eq!(r.transfers, vec![(agent, EscalationReason::ServiceFailure)]);
        assert!(r.hang_ups.is_empty());
    });
}

/// Scripted replies that take `delay` to start.
struct SlowModel {
    inner: ScriptedReplies,
    delay: Duration,
}

#[async_trait]
impl LanguageModel for SlowModel {
    async fn stream_chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        tokio::time::sleep(self.delay).await;
        self.inner.stream_chat(request).await
    }
}

#[derive(Default)]
struct Timings(Mutex<Vec<TurnLatency>>);

impl VoiceObserver for Timings {
    fn turn(&self, latency: &TurnLatency) {
        self.0.lock().expect("lock").push(*latency);
    }
}

#[tokio::test]
async fn each_reply_is_timed_from_the_callers_final_words_to_its_first_frame() {
    let timings = Arc::new(Timings::default());
    let model = SlowModel {
        inner: ScriptedReplies::default(),
        delay: Duration::from_millis(40),
    };
    let (mut phone, call) = start_with(
        Arc::new(model),
        FakeControl::new(None),
        config(),
        Some(timings.clone()),
    );
    phone.hear().await;
    phone.say("What time do you open tomorrow?").await;
    phone.hear().await;
    phone.say("Thanks, that is great.").await;
    phone.hear().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    phone.hang_up().await;
    finished(call).await;

    // Two replies; the greeting answers no words, so it is not a turn.
    let seen = timings.0.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for turn in &seen {
        assert!(
            turn.end_of_turn >= Duration::from_millis(50),
            "the end-of-turn grace is in the first stage: {turn:?}"
        );
        assert!(
            turn.first_token >= Duration::from_millis(40),
            "the model's latency is in its stage: {turn:?}"
        );
        assert_eq!(
            turn.total(),
            turn.end_of_turn + turn.first_token + turn.first_audio + turn.first_frame
        );
    }
}

#[tokio::test]
async fn marks_the_telephony_side_never_echoes_do_not_stall_the_call() {
    let mut config = config();
    config.pacing.mark_timeout_ms = 300;
    let (to_call, media_in) = mpsc::channel(64);
    let (media_out, mut from_call) = mpsc::channel::<MediaOut>(64);
    let ports = local_ports(Arc::new(ScriptedReplies::default()), None);
    let setup = standard_setup();
    let call = tokio::spawn(run_call(
        setup,
        ports,
        FakeControl::new(None),
        config,
        media_in,
        media_out,
    ));
    // A media client that plays everything and echoes no mark.
    let mut speeches = Vec::new();
    let mut said = String::new();
    let mut answered = false;
    while let Ok(Some(out)) = tokio::time::timeout(Duration::from_secs(3), from_call.recv()).await {
        match out {
            MediaOut::Audio(audio) => said.push_str(&String::from_utf8_lossy(&audio)),
            MediaOut::Mark(_) => {
                speeches.push(std::mem::take(&mut said));
                if speeches.len() == 1 {
                    // A word while the greeting is, as far as the server
                    // knows, still playing: too short to barge in.
                    to_call
                        .send(MediaIn::Audio(Bytes::from("Hello?")))
                        .await
                        .expect("call alive");
                } else {
                    answered = true;
                    break;
                }
            }
            MediaOut::Clear => {}
        }
    }
    assert!(
        answered,
        "the caller's word was answered once the greeting's unechoed mark timed out: {speeches:?}"
    );
    let _ = to_call.send(MediaIn::Stop).await;
    let report = finished(call).await;
    let greeting = report
        .turns
        .iter()
        .find(|t| t.text == "Hi, this is Sam from Acme.")
        .expect("the greeting is in the transcript");
    assert!(!greeting.interrupted, "taken as played: {:?}", report.turns);
    assert!(report.turns.iter().any(|t| t.text == "Hello?"));
}
