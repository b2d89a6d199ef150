//! Traces exported over OTLP: a local receiver (wiremock) gets the spans of
//! a simulated call. This test installs the process's subscriber with an
//! exporter, so it lives in its own module and (as every test under
//! nextest) its own process.

use std::time::Duration;

use iace_telemetry::{LogConfig, OtlpProtocol, TracesConfig};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::Backend;
use crate::media::{answered_call, connect, hear, say, send, setup_with};

/// A span as the receiver got it.
#[derive(Debug)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    /// Key → string value.
    attributes: Vec<(String, String)>,
}

/// Every span the receiver got.
fn spans(bodies: &[Value]) -> Vec<Span> {
    let mut all = Vec::new();
    for body in bodies {
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let attributes = span["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            let value = &a["value"];
                            let text = value["stringValue"]
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| value.to_string());
                            (a["key"].as_str().unwrap_or_default().to_owned(), text)
                        })
                        .collect();
                    let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                    all.push(Span {
                        trace: text("traceId"),
                        id: text("spanId"),
                        parent: text("parentSpanId"),
                        name: text("name"),
                        attributes,
                    });
                }
            }
        }
    }
    all
}

#[tokio::test]
async fn a_simulated_call_is_exported_as_spans_to_an_otlp_receiver() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let telemetry = iace_telemetry::init(
        &LogConfig {
            filter: "warn".into(),
            ..LogConfig::default()
        },
        &TracesConfig {
            otlp_endpoint: Some(receiver.uri()),
            otlp_protocol: OtlpProtocol::Json,
            service_name: "iace-test".into(),
            sample_ratio: 1.0,
            // Quiet logs keep their traces.
            filter: "info".into(),
        },
        &iace_telemetry::SentryConfig::default(),
    );
    let (app, telnyx, org) = setup_with(Backend::Sqlite, |_| {}).await;
    let (call, token) = answered_call(&app, &telnyx, &org).await;
    let mut socket = connect(&app, &token, &call).await;
    hear(&mut socket).await;
    say(&mut socket, "What time do you open tomorrow?").await;
    hear(&mut socket).await;
    send(&mut socket, json!({"event": "stop"})).await;
    // A client puts a phone number where a customer id goes: the request
    // span's `path` carries it, and it must leave masked.
    let status = reqwest::get(format!("{}/v1/customers/+14155550123", app.base))
        .await
        .expect("request")
        .status();
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .expect("flushed");

    let bodies: Vec<Value> = receiver
        .received_requests()
        .await
        .expect("requests")
        .iter()
        .map(|r| r.body_json().expect("an OTLP/JSON body"))
        .collect();
    assert!(!bodies.is_empty(), "the receiver got spans");
    let resource = bodies[0]["resourceSpans"][0]["resource"].to_string();
    assert!(resource.contains("iace-test"), "service.name: {resource}");
    let spans = spans(&bodies);
    let the_call = spans
        .iter()
        .find(|s| {
            s.name == "call"
                && s.attributes
                    .iter()
                    .any(|(k, v)| k == "call_id" && *v == call.id)
        })
        .unwrap_or_else(|| panic!("no call span for {} in {spans:?}", call.id));
    let trace = &the_call.trace;
    // The call's stages are in its trace, below it.
    for stage in ["reply", "language_model", "text_to_speech", "line"] {
        assert!(
            spans.iter().any(|s| s.name == stage && s.trace == *trace),
            "no {stage} span in the call's trace: {spans:?}"
        );
    }
    assert!(
        spans
            .iter()
            .any(|s| s.name == "reply" && s.parent == the_call.id),
        "a reply is the call's child"
    );
    // The HTTP requests are traced too (the webhooks, the stream's upgrade).
    assert!(spans.iter().any(|s| s.name == "request"), "{spans:?}");
    // Nothing personal leaves in an attribute.
    let everything = serde_json::to_string(&bodies).expect("json");
    assert!(
        everything.contains("/v1/customers/+1415***0123"),
        "the path, masked: {spans:?}"
    );
    for number in ["14155550123", "442079460958"] {
        assert!(!everything.contains(number), "{number} was exported");
    }
}
