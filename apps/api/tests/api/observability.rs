//! What operators see: `/metrics` and the log lines.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use crate::common::{Backend, TestApp};

async fn scrape(app: &TestApp) -> String {
    let response = reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        response.headers()
    );
    response.text().await.expect("body")
}

#[tokio::test]
async fn metrics_show_request_durations_by_route_template_and_the_instances_state() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let org = app.org("Acme").await;
    let id = uuid::Uuid::new_v4();
    let (s, _) = app.get(&format!("/v1/customers/{id}"), &org.api_key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let text = scrape(&app).await;
    assert!(
        text.contains(
            "http_server_request_duration_seconds_bucket{http_route=\"/v1/customers/{id}\",http_request_method=\"GET\",http_response_status_code=\"404\",le=\"0.005\"}"
        ) || text.contains("http_route=\"/v1/customers/{id}\""),
        "{text}"
    );
    assert!(!text.contains(&id.to_string()), "no raw id as a label");
    assert!(
        text.contains("http_server_request_duration_seconds_count"),
        "{text}"
    );
    // The instance's state, read at scrape time.
    assert!(text.contains("iace_live_calls "), "{text}");
    assert!(
        text.contains("iace_db_pool_connections{state=\"idle\"}"),
        "{text}"
    );
    // Every series follows the naming rules: the unit in the name of
    // durations, `_total` on counters.
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (name, kind) = (parts[2], parts[3]);
        if kind == "counter" {
            assert!(name.ends_with("_total"), "{line}");
        }
        if kind == "histogram" {
            assert!(name.ends_with("_seconds"), "{line}");
        }
    }
}

#[test]
fn a_phone_number_a_request_handled_is_masked_in_the_log() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_iace-api"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("IACE_DATABASE__URL", "sqlite::memory:")
        .env("IACE_LOG__FORMAT", "json")
        .env("IACE_LOG__FILTER", "info")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start iace-api serve");
    let stderr = server.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let port = loop {
        let line = lines
            .next()
            .expect("the server logs before it listens")
            .expect("a line");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        seen.push(line);
        if parsed["message"] == "listening" {
            break parsed["port"].as_u64().expect("port");
        }
    };
    // A client puts a phone number where a customer id goes.
    let mut socket =
        std::net::TcpStream::connect(("127.0.0.1", u16::try_from(port).expect("port")))
            .expect("connect");
    socket
        .write_all(
            b"GET /v1/customers/+14155550123 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .expect("request");
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let _ = server.kill();
    let _ = server.wait();
    seen.extend(lines.map_while(Result::ok));
    let access = seen
        .iter()
        .find(|l| l.contains("iace_api::access") && l.contains("/v1/customers/"))
        .unwrap_or_else(|| panic!("no access line in:\n{}", seen.join("\n")));
    let line: serde_json::Value = serde_json::from_str(access).expect("json line");
    assert_eq!(line["path"], "/v1/customers/+1415***0123", "{access}");
    assert_eq!(line["status"], 401);
    assert!(
        line["request_id"].is_string(),
        "the request's span: {access}"
    );
    assert!(line["timestamp"].is_string() && line["level"] == "INFO");
    assert!(
        seen.iter().all(|l| !l.contains("14155550123")),
        "{}",
        seen.join("\n")
    );
}
