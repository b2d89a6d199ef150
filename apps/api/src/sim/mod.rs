//! `iace-api sim`: a whole call in the terminal.
//!
//! Starts the server in process (the embedded default on an in-memory
//! database unless a configuration is given), sets up an organisation with a
//! human agent and a customer, places a call (answered as the provider
//! would announce it), and plays a scripted caller through the same media
//! WebSocket Telnyx uses — in text mode, the caller's "audio" is text, which
//! the local speech-to-text hears as words, and the agent's speech comes back
//! as text. Each turn is printed with the caller's sentiment; escalation and
//! the work after the call (outcome, summary, learned patterns) follow.
//!
//! In audio mode (`--audio`, [`audio`]) the caller's lines are synthesised
//! with the configured text-to-speech and streamed as 20 ms μ-law frames in
//! real time, as a phone line carries them; what the server heard and said
//! is printed from the call's transcript as it is stored, and `--record
//! FILE` writes both sides to a WAV file. It needs real speech providers
//! (`[deepgram]`): the local ones take and give text, not audio.

#![allow(clippy::print_stdout)] // a terminal program

pub mod audio;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::{SinkExt as _, StreamExt as _};
use iace_app::agents::AgentInput;
use iace_app::calls::PlaceCall;
use iace_app::customers::CustomerInput;
use iace_domain::call::{HangupCause, HangupSource};
use iace_domain::ports::{TelephonyEvent, TelephonyEventKind};
use iace_domain::{Availability, CustomerTier, Email, Language, PhoneNumber, Speaker};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::config::Config;
use crate::startup::Application;

/// What the simulated caller says when no script is given.
pub const DEFAULT_SCRIPT: [&str; 4] = [
    "Hi, I would like to know what time you open tomorrow.",
    "Great, thank you. I also have a question about my last invoice.",
    "This is the third time I am calling about this and nobody helps, it is awful.",
    "I want to speak to a real person.",
];

/// The caller's number (a fictional one).
const CALLER: &str = "+442079460958";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads a script: one caller line per non-empty line (`#` starts a comment).
///
/// # Errors
/// When the file cannot be read or holds no line.
pub fn read_script(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the script {}", path.display()))?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(
        !lines.is_empty(),
        "the script {} has no line",
        path.display()
    );
    Ok(lines)
}

/// How the caller speaks.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// μ-law audio from the configured text-to-speech instead of text.
    pub audio: bool,
    /// Audio mode: write both sides of the call to this WAV file.
    pub record: Option<PathBuf>,
}

/// Runs one simulated call with `script` and prints it.
///
/// # Errors
/// When the server cannot start or the call cannot be set up; in audio mode,
/// when no real speech provider is configured or the caller's lines cannot
/// be synthesised.
pub async fn run(
    mut config: Config,
    script: Vec<String>,
    configured: bool,
    options: SimOptions,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !options.audio || config.deepgram.is_some(),
        "audio mode needs real speech providers: configure [deepgram] (e.g. IACE_DEEPGRAM__API_KEY); the local providers take and give text, not audio"
    );
    if !configured {
        config.database.url = SecretString::from("sqlite::memory:");
    }
    config.server.bind = "127.0.0.1:0".parse()?;
    config.calls.worker_interval_ms = 100;
    config.server.read_cache_ttl_ms = 0;
    config.voice.post_call_delay_ms = 200;
    let providers = crate::providers::build(&config)?;
    let caller_voice = providers.text_to_speech.clone();
    let app = Box::pin(Application::build_with_providers(config, providers)).await?;
    let port = app.port();
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));

    // An organisation with a human agent on duty and a known customer.
    let created = state
        .auth
        .bootstrap_org(
            "Simulation",
            Email::parse(&format!(
                "sim-{}@example.com",
                uuid::Uuid::new_v4().simple()
            ))?,
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("setting up the organisation: {e}"))?;
    let who = state
        .auth
        .authenticate(created.api_key.secret.expose_secret())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let agent = state
        .agents
        .create(
            &who,
            AgentInput {
                name: "Robin (human agent)".into(),
                email: None,
                phone: Some(PhoneNumber::parse("+14155550177")?),
                sip_uri: None,
                skills: std::collections::BTreeSet::new(),
                max_concurrent_calls: 1,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    state
        .agents
        .set_availability(&who, agent.id, Availability::Available)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    state
        .customers
        .create(
            &who,
            CustomerInput {
                phone: PhoneNumber::parse(CALLER)?,
                name: Some("Jane Doe".into()),
                email: None,
                tier: CustomerTier::Standard,
                language: None,
                attributes: std::collections::BTreeMap::new(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // The call, placed and answered (the provider's `call.answered`).
    let placed = state
        .calls
        .place(
            &who,
            PlaceCall {
                to: PhoneNumber::parse(CALLER)?,
                from: PhoneNumber::parse("+14155550100")?,
                persona_id: None,
                idempotency_key: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("placing the call: {e}"))?;
    let call = placed.call;
    state
        .calls
        .on_telephony_event(&TelephonyEvent {
            id: uuid::Uuid::new_v4().to_string(),
            event_type: "call.answered".into(),
            occurred_at: chrono::Utc::now(),
            call_id: Some(call.id),
            provider_call_id: call.provider_call_id.clone(),
            provider_session_id: None,
            kind: TelephonyEventKind::Answered,
        })
        .await
        .map_err(|e| anyhow::anyhow!("answering the call: {e}"))?;

    println!(
        "call {} — the caller is {CALLER}; Ctrl-C to stop\n",
        call.id
    );
    // Audio mode: the caller's lines, synthesised before the call starts.
    let spoken = if options.audio {
        let english = Language::parse("en").map_err(|e| anyhow::anyhow!("{e}"))?;
        Some(audio::synthesise(&*caller_voice, &script, &english).await?)
    } else {
        None
    };
    let token = state.voice.issue_token(call.id);
    let url = format!("ws://127.0.0.1:{port}/v1/media/telnyx?token={token}");
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .context("opening the media stream")?;
    send(
        &mut socket,
        json!({"event": "start", "stream_id": "sim", "start": {
            "call_control_id": call.provider_call_id,
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}
        }}),
    )
    .await?;

    let open = match spoken {
        Some(spoken) => {
            let mut printer = TranscriptPrinter::default();
            // The caller plays in its own task (real-time frames); the
            // transcript is followed here meanwhile.
            let mut playing = tokio::spawn(audio::converse(socket, script.clone(), spoken));
            let (open, recording) = loop {
                tokio::select! {
                    played = &mut playing => break played.context("the simulated caller")??,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {
                        printer.print_new(&state, &who, call.id).await;
                    }
                }
            };
            // The last turns land after the stream ends.
            tokio::time::sleep(Duration::from_millis(500)).await;
            printer.print_new(&state, &who, call.id).await;
            if let Some(path) = &options.record {
                std::fs::write(path, recording.wav())
                    .with_context(|| format!("writing the recording {}", path.display()))?;
                println!(
                    "── recorded to {} (μ-law WAV; left: the caller, right: the agent)",
                    path.display()
                );
            }
            open
        }
        None => text_mode(socket, &script, &state, &who, call.id).await?,
    };
    if open {
        println!("\n── the caller hangs up");
        // As the provider announces it.
        state
            .calls
            .on_telephony_event(&TelephonyEvent {
                id: uuid::Uuid::new_v4().to_string(),
                event_type: "call.hangup".into(),
                occurred_at: chrono::Utc::now(),
                call_id: Some(call.id),
                provider_call_id: call.provider_call_id.clone(),
                provider_session_id: None,
                kind: TelephonyEventKind::HungUp {
                    cause: HangupCause::NormalClearing,
                    source: HangupSource::Callee,
                    sip_code: None,
                },
            })
            .await
            .map_err(|e| anyhow::anyhow!("hanging up the call: {e}"))?;
    }

    after_the_call(&state, &who, call.id, &agent.name).await
}

/// Text mode: each line is sent as one frame of text "audio"; what the agent
/// says comes back as text. `true` when the stream is still open at the end
/// (the caller then hangs up).
async fn text_mode(
    mut socket: Socket,
    script: &[String],
    state: &crate::http::state::AppState,
    who: &iace_app::auth::Principal,
    call: iace_domain::CallId,
) -> anyhow::Result<bool> {
    let mut open = listen(&mut socket).await?;
    let mut scored = 0usize;
    for line in script {
        if !open {
            break;
        }
        println!("  caller │ {line}");
        send(
            &mut socket,
            json!({"event": "media", "media": {"track": "inbound", "payload": STANDARD.encode(line)}}),
        )
        .await?;
        open = listen(&mut socket).await?;
        // Scoring runs beside the conversation: give it a moment.
        for _ in 0..10 {
            let now = print_sentiments(state, who, call, scored).await;
            if now > scored {
                scored = now;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if open {
        let _ = send(&mut socket, json!({"event": "stop"})).await;
    }
    Ok(open)
}

/// Waits for the work after the call and prints what it found.
async fn after_the_call(
    state: &crate::http::state::AppState,
    who: &iace_app::auth::Principal,
    call: iace_domain::CallId,
    agent: &str,
) -> anyhow::Result<()> {
    // The work after the call runs in the background; wait for it.
    let mut details = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let read = state
            .calls
            .get(who, call)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if read.call.outcome.is_some() {
            details = Some(read);
            break;
        }
    }
    match details {
        Some(details) => {
            let c = &details.call;
            if let Some(reason) = c.escalation_reason {
                println!("── escalated ({reason}), transferred to {agent}");
            }
            println!(
                "── after the call: status {}, outcome {}, mean sentiment {}",
                c.status,
                c.outcome
                    .map_or_else(|| "-".to_owned(), |o| format!("{o:?}").to_lowercase()),
                c.sentiment
                    .map_or_else(|| "-".to_owned(), |s| format!("{:+.2}", s.mean.score())),
            );
            let memory = state
                .customers
                .by_phone(who, &PhoneNumber::parse(CALLER)?)
                .await
                .ok();
            if let Some(customer) = memory
                && let Ok(memory) = state.customers.memory(who, customer.id).await
            {
                println!("── remembered about the caller: {}", memory.text);
            }
        }
        None => println!("── the work after the call did not finish in 10 s"),
    }
    Ok(())
}

async fn send(socket: &mut Socket, frame: Value) -> anyhow::Result<()> {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .context("the media stream closed")
}

/// Prints what the agent says until it goes quiet (echoing every mark, as
/// the telephony side does once audio is played); `false` once the stream
/// closed (a transfer or a hang-up).
async fn listen(socket: &mut Socket) -> anyhow::Result<bool> {
    let mut marks = 0;
    let mut said = String::new();
    loop {
        let wait = if marks == 0 {
            Duration::from_secs(15)
        } else {
            Duration::from_millis(600)
        };
        let message = match tokio::time::timeout(wait, socket.next()).await {
            Err(_) => break,
            Ok(None | Some(Err(_))) => {
                flush(&mut said);
                return Ok(false);
            }
            Ok(Some(Ok(message))) => message,
        };
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).context("a frame that is not JSON")?;
        match frame["event"].as_str() {
            Some("media") => {
                let audio = STANDARD
                    .decode(frame["media"]["payload"].as_str().unwrap_or_default())
                    .unwrap_or_default();
                if !said.is_empty() {
                    said.push(' ');
                }
                said.push_str(String::from_utf8_lossy(&audio).trim());
            }
            Some("mark") => {
                marks += 1;
                send(
                    socket,
                    json!({"event": "mark", "mark": {"name": frame["mark"]["name"]}}),
                )
                .await?;
            }
            Some("clear") => println!("  agent  │ (stops: the caller spoke over it)"),
            _ => {}
        }
    }
    flush(&mut said);
    Ok(true)
}

fn flush(said: &mut String) {
    if !said.trim().is_empty() {
        println!("  agent  │ {}", said.trim());
    }
    said.clear();
}

/// Prints the sentiment of caller turns scored since `already`; returns the
/// new count.
async fn print_sentiments(
    state: &crate::http::state::AppState,
    who: &iace_app::auth::Principal,
    call: iace_domain::CallId,
    already: usize,
) -> usize {
    let Ok(details) = state.calls.get(who, call).await else {
        return already;
    };
    let scored: Vec<_> = details
        .transcript
        .iter()
        .filter(|e| e.speaker == Speaker::Caller)
        .filter_map(|e| e.sentiment)
        .collect();
    for sentiment in scored.iter().skip(already) {
        println!(
            "         │ caller sentiment {:+.2} ({})",
            sentiment.score(),
            sentiment.label().as_str()
        );
    }
    scored.len().max(already)
}

/// Prints the call's transcript as the server stores it: what speech-to-text
/// heard the caller say, what the agent said, and each caller turn's
/// sentiment once scored.
#[derive(Debug, Default)]
struct TranscriptPrinter {
    printed: BTreeSet<u32>,
    scored: BTreeSet<u32>,
}

impl TranscriptPrinter {
    async fn print_new(
        &mut self,
        state: &crate::http::state::AppState,
        who: &iace_app::auth::Principal,
        call: iace_domain::CallId,
    ) {
        let Ok(details) = state.calls.get(who, call).await else {
            return;
        };
        for entry in &details.transcript {
            if self.printed.insert(entry.sequence) {
                match entry.speaker {
                    Speaker::Caller => println!("  caller │ {}", entry.text),
                    _ if entry.interrupted => {
                        println!("  agent  │ {} (cut off by the caller)", entry.text);
                    }
                    _ => println!("  agent  │ {}", entry.text),
                }
            }
            if let Some(sentiment) = entry.sentiment
                && self.scored.insert(entry.sequence)
            {
                println!(
                    "         │ caller sentiment {:+.2} ({})",
                    sentiment.score(),
                    sentiment.label().as_str()
                );
            }
        }
    }
}
