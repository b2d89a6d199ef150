//! The admin CLI: `migrate` and `org create`, as a newcomer runs them.

use std::process::Command;

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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{stdout}"))
    };
    let greeting = at("agent  │ Hello! How can I help you today?");
    let question = at("caller │ What time do you open tomorrow?");
    let answer = at("agent  │ We are open from nine to five");
    let scored = at("caller sentiment");
    let goodbye = at("caller │ Thanks, goodbye.");
    let after = at("── after the call");
    assert!(greeting < question && question < answer && answer < goodbye && goodbye < after);
    assert!(scored > question);
    assert!(lines[after].contains("outcome"), "{}", lines[after]);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iace-sim-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
