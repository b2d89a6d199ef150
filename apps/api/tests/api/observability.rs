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
    // A method of the client's own invention does not mint a series.
    let custom = reqwest::Method::from_bytes(b"FOO1").expect("method");
    let answer = reqwest::Client::new()
        .request(custom, format!("{}/healthz", app.base))
        .send()
        .await
        .expect("request");
    assert!(answer.status().is_client_error());
    let text = scrape(&app).await;
    assert!(text.contains("http_request_method=\"_OTHER\""), "{text}");
    assert!(!text.contains("FOO1"), "{text}");
    assert!(
        text.contains(
            "http_server_request_duration_seconds_count{http_route=\"/v1/customers/{id}\",http_request_method=\"GET\",http_response_status_code=\"404\"} 1"
        ),
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

/// `iace-api serve` on a free port (in-memory database, JSON logs), once it
/// listens.
pub(crate) struct Served {
    pub(crate) server: std::process::Child,
    pub(crate) port: u16,
    /// The log lines still to come.
    pub(crate) lines: std::io::Lines<BufReader<std::process::ChildStderr>>,
    /// The log lines up to "listening".
    pub(crate) seen: Vec<String>,
}

pub(crate) fn serve_binary() -> Served {
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
    Served {
        server,
        port: u16::try_from(port).expect("port"),
        lines,
        seen,
    }
}

#[test]
fn a_phone_number_a_request_handled_is_masked_in_the_log_and_credentials_never_reach_it() {
    let Served {
        mut server,
        port,
        lines,
        mut seen,
    } = serve_binary();
    // A client puts a phone number where a customer id goes.
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .write_all(
            b"GET /v1/customers/+14155550123 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .expect("request");
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // Credentials never reach the log: a media token in the query string,
    // a bearer key in the header.
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .write_all(
            b"GET /v1/media/telnyx?token=v1.leak-check-media-token HTTP/1.1\r\nHost: localhost\r\n\
              Authorization: Bearer iace_leakcheck_bearer_key\r\nConnection: close\r\n\r\n",
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
    assert!(
        seen.iter()
            .any(|l| l.contains("iace_api::access") && l.contains("/v1/media/telnyx")),
        "the media request was logged: {}",
        seen.join("\n")
    );
    assert!(
        seen.iter()
            .all(|l| !l.contains("leak-check-media-token") && !l.contains("leakcheck_bearer")),
        "{}",
        seen.join("\n")
    );
}

/// A W3C `traceparent` as a caller sends it.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn a_callers_traceparent_reaches_the_provider_requests_it_causes() {
    let telnyx = crate::webhooks::Telnyx::start().await;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| telnyx.configure(c)).await;
    let org = app.org("Acme").await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/calls", app.base))
        .bearer_auth(&org.api_key)
        .header("traceparent", TRACEPARENT)
        .header("x-request-id", "req-trace-1")
        .json(&serde_json::json!({"to": "+442079460958", "from": "+14155550100"}))
        .send()
        .await
        .expect("place a call");
    assert_eq!(response.status(), StatusCode::CREATED);
    let dial = telnyx
        .server
        .received_requests()
        .await
        .expect("requests")
        .into_iter()
        .find(|r| r.method == wiremock::http::Method::POST && r.url.path().ends_with("/calls"))
        .expect("the dial request");
    let header = |name: &str| {
        dial.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let outbound = header("traceparent");
    let parts: Vec<&str> = outbound.split('-').collect();
    assert_eq!(parts.len(), 4, "{outbound}");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_eq!(header("x-request-id"), "req-trace-1");
}

/// Every series named in `text` (`iace_…` and the HTTP histogram), without
/// the histogram suffixes.
fn series_named(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    for (start, _) in text.char_indices() {
        let rest = &text[start..];
        if !(rest.starts_with("iace_") || rest.starts_with("http_server_request_duration_seconds"))
            || (start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_'))
        {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if rest[name.len()..].starts_with("::") || rest[name.len()..].starts_with('=') {
            // A Rust path or a filter directive (`iace_api::access`,
            // `iace_api=debug`), not a series.
            continue;
        }
        let name = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .map_or(name.clone(), str::to_owned);
        names.insert(name);
    }
    names
}

/// The series the code records: the names given to the `metrics` macros.
fn recorded_series() -> std::collections::BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("tests") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                // Unit tests (at the end of a file) record series of their own.
                out.push_str(text.split("#[cfg(test)]").next().unwrap_or_default());
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut source = String::new();
    walk(&root.join("crates"), &mut source);
    walk(&root.join("apps/api/src"), &mut source);
    let mut names = std::collections::BTreeSet::new();
    for macro_name in ["counter!(", "gauge!(", "histogram!("] {
        for (at, _) in source.match_indices(macro_name) {
            let rest = source[at + macro_name.len()..].trim_start();
            if let Some(quoted) = rest.strip_prefix('"')
                && let Some(end) = quoted.find('"')
            {
                names.insert(quoted[..end].to_owned());
            }
        }
    }
    names
}

#[test]
fn dashboards_alerts_and_docs_name_only_series_the_code_records() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let recorded = recorded_series();
    assert!(recorded.contains("iace_turn_stage_seconds"), "{recorded:?}");
    let read = |path: &str| std::fs::read_to_string(root.join(path)).expect(path);
    let dashboard = read("deploy/grafana/iace-overview.json");
    let _: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    for (what, text) in [
        ("the dashboard", dashboard),
        ("the alert rules", read("deploy/prometheus/alerts.yml")),
        ("docs/observability.md", read("docs/observability.md")),
    ] {
        let named = series_named(&text);
        assert!(!named.is_empty(), "{what} names no series");
        let unknown: Vec<_> = named.difference(&recorded).collect();
        assert!(
            unknown.is_empty(),
            "{what} names series nothing records: {unknown:?}"
        );
    }
    // And every recorded series is documented.
    let documented = series_named(&read("docs/observability.md"));
    let undocumented: Vec<_> = recorded.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "undocumented series: {undocumented:?}"
    );
}
