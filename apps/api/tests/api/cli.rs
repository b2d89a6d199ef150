//! The admin CLI: `migrate` and `org create`, as a newcomer runs them.

use std::process::Command;

use iace_domain::audio::{MULAW_SILENCE, linear_to_mulaw};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

fn iace_api(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_iace-api"))
        .args(args)
        .env("IACE_DATABASE__URL", db_url)
        .env("IACE_AUTH__JWT_SECRET", SECRET)
        .env("IACE_LOG__FILTER", "warn")
        .output()
        .expect("run iace-api")
}

#[tokio::test]
async fn migrate_then_org_create_prints_a_working_api_key() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let url = secrecy::ExposeSecret::expose_secret(&app.config.database.url).to_owned();

    let migrate = iace_api(&url, &["migrate"]);
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let created = iace_api(
        &url,
        &[
            "org",
            "create",
            "--name",
            "Acme",
            "--owner-email",
            "Owner@Example.com",
            "--owner-password",
            "correct horse battery",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let out: Value = serde_json::from_slice(&created.stdout).expect("JSON on stdout");
    let key = out["api_key"].as_str().expect("api_key");
    assert!(key.starts_with("iace_"));
    assert!(out["org_id"].is_string() && out["user_id"].is_string());

    let (status, me) = app.get("/v1/me", key).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["org_id"], out["org_id"]);
    assert_eq!(me["role"], "owner");

    // The same owner e-mail again is refused, with a non-zero exit and no output.
    let again = iace_api(
        &url,
        &[
            "org",
            "create",
            "--name",
            "Acme 2",
            "--owner-email",
            "owner@example.com",
        ],
    );
    assert!(!again.status.success());
    assert!(again.stdout.is_empty());
    // A malformed e-mail, and a too-short password, are refused too.
    assert!(
        !iace_api(
            &url,
            &["org", "create", "--name", "X", "--owner-email", "nope"]
        )
        .status
        .success()
    );
    assert!(
        !iace_api(
            &url,
            &[
                "org",
                "create",
                "--name",
                "X",
                "--owner-email",
                "x@example.com",
                "--owner-password",
                "short"
            ]
        )
        .status
        .success()
    );
    let help = Command::new(env!("CARGO_BIN_EXE_iace-api"))
        .args(["org", "create", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--owner-email") && help.contains("shown only this once"),
        "{help}"
    );
}

#[test]
fn sim_plays_a_scripted_call_turn_by_turn() {
    let dir = tempfile_dir();
    let script = dir.join("call.txt");
    std::fs::write(
        &script,
        "# a short call\nWhat time do you open tomorrow?\n\nThanks, goodbye.\n",
    )
    .expect("script");
    // No configuration: the embedded default on an in-memory database.
    let out = Command::new(env!("CARGO_BIN_EXE_iace-api"))
        .args(["sim", "--script", script.to_str().expect("path")])
        .env("IACE_LOG__FILTER", "warn")
        .output()
        .expect("run iace-api sim");
    let stdout = succeeded(&out);
    let at = |needle: &str| line_of(&stdout, needle);
    let greeting = at("agent  │ Hello! How can I help you today?");
    let question = at("caller │ What time do you open tomorrow?");
    let answer = at("agent  │ We are open from nine to five");
    let scored = at("caller sentiment");
    let goodbye = at("caller │ Thanks, goodbye.");
    let after = at("── after the call");
    assert!(greeting < question && question < answer && answer < goodbye && goodbye < after);
    assert!(scored > question);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[after].contains("outcome"), "{}", lines[after]);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iace-sim-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test]
async fn sim_in_audio_mode_streams_mulaw_in_real_time_and_records_the_call() {
    use iace_testkit::fakes::deepgram::{Behaviour, FakeDeepgram};
    // Deepgram's fake, hearing paced frames: one utterance per run of text
    // between μ-law silence; its speech is the text's bytes.
    let deepgram = FakeDeepgram::start(Behaviour {
        segment_on_silence: true,
        ..Behaviour::default()
    })
    .await;
    let dir = tempfile_dir();
    let script = dir.join("call.txt");
    std::fs::write(&script, "What time do you open tomorrow?\n").expect("script");
    let wav = dir.join("call.wav");
    let (ws_url, script_path, wav_path) = (
        deepgram.url.clone(),
        script.to_str().expect("path").to_owned(),
        wav.to_str().expect("path").to_owned(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_iace-api"))
            .args([
                "sim",
                "--audio",
                "--script",
                &script_path,
                "--record",
                &wav_path,
            ])
            .env("IACE_LOG__FILTER", "warn")
            .env("IACE_DEEPGRAM__API_KEY", "KEY_test")
            .env("IACE_DEEPGRAM__WS_URL", ws_url)
            // Nothing listens here: no REST fallback is reached.
            .env("IACE_DEEPGRAM__BASE_URL", "http://127.0.0.1:9")
            .output()
            .expect("run iace-api sim --audio")
    })
    .await
    .expect("the sim");
    let stdout = succeeded(&out);
    // What the server heard and said, from the stored transcript.
    let at = |needle: &str| line_of(&stdout, needle);
    let greeting = at("agent  │ Hello! How can I help you today?");
    let says = at("caller ▶ says: What time do you open tomorrow?");
    let heard = at("caller │ What time do you open tomorrow?");
    let answer = at("agent  │ We are open from nine to five");
    assert!(
        greeting < says && says < heard && heard < answer,
        "{stdout}"
    );
    at("recorded to");
    at("── after the call");
    // Deepgram heard 20 ms frames (160 bytes), many of them: real time.
    assert!(deepgram.frames() > 50, "frames: {}", deepgram.frames());
    let handshake = deepgram
        .handshakes()
        .into_iter()
        .find(|h| {
            h.uri.starts_with("/v1/speak") && h.param("model").as_deref() == Some("aura-2-orion-en")
        })
        .expect("the caller's voice was synthesised by the configured text-to-speech");
    assert_eq!(handshake.param("encoding").as_deref(), Some("mulaw"));

    // The recording: stereo 16-bit PCM, the caller left and the agent right.
    // The fake speaks text as its audio bytes: encoding the samples back to
    // μ-law gives the text again.
    let file = std::fs::read(&wav).expect("the recording");
    assert_eq!(&file[..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([file[20], file[21]]), 1, "PCM");
    assert_eq!(u16::from_le_bytes([file[22], file[23]]), 2, "stereo");
    let data = &file[44..];
    let track = |channel: usize| -> String {
        let bytes: Vec<u8> = data
            .chunks_exact(2)
            .skip(channel)
            .step_by(2)
            .map(|s| linear_to_mulaw(i16::from_le_bytes([s[0], s[1]])))
            .filter(|b| *b != MULAW_SILENCE)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    assert!(
        track(0).contains("What time do you open tomorrow?"),
        "{}",
        track(0)
    );
    let agent = track(1);
    assert!(
        agent.starts_with("Hello! How can I help you today?") && agent.contains("nine to five"),
        "{agent}"
    );
}

/// The index of the first line of `output` containing `needle`.
fn line_of(output: &str, needle: &str) -> usize {
    output
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{output}"))
}

/// The standard output of a run that must have succeeded.
fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
