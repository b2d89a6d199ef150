//! The telephony contract suite on Telnyx, against a wiremock server that
//! answers as Call Control v2 documents; plus the request shapes Telnyx
//! expects.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use iace_domain::ports::{
    AudioFormat, CallHandle, DialRequest, MachineDetection, MediaStreamSpec, TelephonyGateway,
};
use iace_domain::{CallId, PhoneNumber};
use iace_http::{BreakerConfig, HttpPolicy};
use iace_telnyx::{TelnyxConfig, TelnyxGateway, call_id_from_client_state};
use iace_testkit::contracts::provider_failure::Failure;
use iace_testkit::contracts::telephony::{self, TelephonyFixture};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fast(attempts: u32) -> HttpPolicy {
    HttpPolicy {
        attempts,
        attempt_timeout_ms: 1_000,
        deadline_ms: 3_000,
        backoff_min_ms: 1,
        backoff_max_ms: 5,
    }
}

fn config(server: &MockServer) -> TelnyxConfig {
    TelnyxConfig {
        api_key: secrecy::SecretString::from("KEY_test"),
        base_url: server.uri(),
        connection_id: "conn-1".into(),
        commands: fast(3),
        dial: fast(1),
        breaker: BreakerConfig {
            failure_threshold: 100,
            ..BreakerConfig::default()
        },
        ..TelnyxConfig::default()
    }
}

fn dialled() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {
        "call_control_id": "v3:abc", "call_leg_id": "leg", "call_session_id": "session",
        "is_alive": false, "record_type": "call"
    }}))
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {"result": "ok"}}))
}

fn ended() -> ResponseTemplate {
    ResponseTemplate::new(422).set_body_json(json!({"errors": [{
        "code": "90018", "title": "Call has already ended",
        "detail": "This call is no longer active and can't receive commands."
    }]}))
}

async fn gateway(
    routes: Vec<(&'static str, ResponseTemplate)>,
    adjust: impl FnOnce(&mut TelnyxConfig),
) -> (Arc<dyn TelephonyGateway>, MockServer) {
    let server = MockServer::start().await;
    for (route, template) in routes {
        let matcher = if route == "dial" {
            Mock::given(method("POST")).and(path("/calls"))
        } else {
            Mock::given(method("POST")).and(path_regex(r"^/calls/[^/]+/actions/[a-z_]+$"))
        };
        matcher.respond_with(template).mount(&server).await;
    }
    let mut config = config(&server);
    adjust(&mut config);
    let gateway = TelnyxGateway::new(&config).expect("gateway");
    (Arc::new(gateway), server)
}

struct Fixture {
    servers: std::sync::Mutex<Vec<MockServer>>,
}

impl Fixture {
    fn keep(&self, server: MockServer) {
        self.servers.lock().expect("lock").push(server);
    }
}

#[async_trait]
impl TelephonyFixture for Fixture {
    async fn accepting(&self) -> Arc<dyn TelephonyGateway> {
        let (g, s) = gateway(vec![("dial", dialled()), ("action", ok())], |_| {}).await;
        self.keep(s);
        g
    }

    async fn ended_call(&self) -> (Arc<dyn TelephonyGateway>, CallHandle) {
        let (g, s) = gateway(vec![("action", ended())], |_| {}).await;
        self.keep(s);
        let call = CallHandle {
            call_id: CallId::new(),
            provider_call_id: "v3:gone".into(),
        };
        (g, call)
    }

    async fn refusing(&self, _to: &PhoneNumber) -> Option<Arc<dyn TelephonyGateway>> {
        let refusal = ResponseTemplate::new(422).set_body_json(json!({"errors": [{
            "code": "10016", "title": "Invalid phone number", "detail": "The 'to' number is not dialable."
        }]}));
        let (g, s) = gateway(vec![("dial", refusal)], |_| {}).await;
        self.keep(s);
        Some(g)
    }

    async fn failing(&self, failure: Failure) -> Option<Arc<dyn TelephonyGateway>> {
        let template = match failure {
            Failure::RateLimited { retry_after_secs } => ResponseTemplate::new(429)
                .insert_header("retry-after", retry_after_secs.to_string().as_str()),
            Failure::Unavailable => ResponseTemplate::new(503),
            Failure::Unauthorized => ResponseTemplate::new(401).set_body_json(json!({"errors": [{
                "code": "10009", "title": "Authentication failed"
            }]})),
            Failure::Slow => dialled().set_delay(Duration::from_secs(3)),
            Failure::Malformed => ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
        };
        let slow = failure == Failure::Slow;
        let (g, s) = gateway(
            vec![("dial", template.clone()), ("action", template)],
            |c| {
                if slow {
                    let short = HttpPolicy {
                        attempt_timeout_ms: 100,
                        deadline_ms: 300,
                        ..fast(2)
                    };
                    c.commands = short;
                    c.dial = short;
                }
            },
        )
        .await;
        self.keep(s);
        Some(g)
    }
}

#[tokio::test]
async fn telnyx_passes_the_telephony_contract() {
    let fixture = Fixture {
        servers: std::sync::Mutex::new(Vec::new()),
    };
    telephony::run(&fixture).await;
}

fn dial_request() -> DialRequest {
    DialRequest {
        call_id: CallId::new(),
        from: PhoneNumber::parse("+14155550100").expect("from"),
        to: PhoneNumber::parse("+442079460958").expect("to"),
        media_stream: Some(MediaStreamSpec {
            url: "wss://iace.example.com/media/1?token=t".into(),
            format: AudioFormat::TELEPHONY,
            auth_token: None,
        }),
        machine_detection: MachineDetection::Detect,
        ring_timeout: Duration::from_secs(30),
        connection: None,
    }
}

#[tokio::test]
async fn dial_sends_what_call_control_expects() {
    let (gateway, server) = gateway(vec![("dial", dialled())], |_| {}).await;
    let request = dial_request();
    let response = gateway.dial(&request).await.expect("dial");
    assert_eq!(response.provider_call_id, "v3:abc");
    assert_eq!(response.provider_session_id.as_deref(), Some("session"));
    let sent = &server.received_requests().await.expect("recorded")[0];
    assert_eq!(sent.headers["authorization"], "Bearer KEY_test");
    let body: serde_json::Value = sent.body_json().expect("json");
    assert_eq!(body["connection_id"], "conn-1");
    assert_eq!(body["to"], "+442079460958");
    assert_eq!(body["from"], "+14155550100");
    assert_eq!(body["timeout_secs"], 30);
    assert_eq!(body["answering_machine_detection"], "detect");
    assert_eq!(body["stream_url"], "wss://iace.example.com/media/1?token=t");
    assert!(
        body.get("stream_auth_token").is_none(),
        "no token, no field"
    );
    assert_eq!(body["stream_track"], "inbound_track");
    assert_eq!(body["stream_codec"], "PCMU");
    assert_eq!(body["stream_bidirectional_mode"], "rtp");
    assert_eq!(body["stream_bidirectional_codec"], "PCMU");
    assert_eq!(body["stream_bidirectional_sampling_rate"], 8000);
    let state = body["client_state"].as_str().expect("client_state");
    assert_eq!(call_id_from_client_state(state), Some(request.call_id));
    assert!(body["command_id"].as_str().is_some_and(|c| !c.is_empty()));
}

#[tokio::test]
async fn a_failed_dial_is_not_repeated() {
    let (gateway, server) = gateway(vec![("dial", ResponseTemplate::new(503))], |_| {}).await;
    gateway.dial(&dial_request()).await.expect_err("503");
    assert_eq!(server.received_requests().await.map_or(0, |r| r.len()), 1);
}

#[tokio::test]
async fn commands_are_retried_with_the_same_command_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/calls/v3%3Aabc%2Fx/actions/hangup"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/calls/v3%3Aabc%2Fx/actions/hangup"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let gateway = TelnyxGateway::new(&config(&server)).expect("gateway");
    let call = CallHandle {
        call_id: CallId::new(),
        provider_call_id: "v3:abc/x".into(),
    };
    let outcome = gateway.hang_up(&call).await.expect("hang up");
    assert_eq!(outcome, iace_domain::ports::CommandOutcome::Accepted);
    let received = server.received_requests().await.expect("recorded");
    assert_eq!(received.len(), 2, "one retry");
    let ids: Vec<String> = received
        .iter()
        .map(|r| {
            r.body_json::<serde_json::Value>().expect("json")["command_id"]
                .as_str()
                .expect("command_id")
                .to_owned()
        })
        .collect();
    assert_eq!(ids[0], ids[1], "a retry repeats the command_id");
    // A second hang-up is a new command with a new id.
    gateway.hang_up(&call).await.expect("hang up");
    let received = server.received_requests().await.expect("recorded");
    let third: serde_json::Value = received[2].body_json().expect("json");
    assert_ne!(third["command_id"], ids[0]);
}

#[tokio::test]
async fn answer_asks_for_a_bidirectional_stream_and_speak_falls_back_to_a_telnyx_voice() {
    let (gateway, server) = gateway(vec![("action", ok())], |_| {}).await;
    let call = CallHandle {
        call_id: CallId::new(),
        provider_call_id: "v3:abc".into(),
    };
    gateway
        .answer(
            &call,
            &iace_domain::ports::AnswerOptions {
                media_stream: Some(MediaStreamSpec {
                    url: "wss://x/media".into(),
                    format: AudioFormat::TELEPHONY,
                    auth_token: Some("stream-token".into()),
                }),
            },
        )
        .await
        .expect("answer");
    gateway
        .speak(
            &call,
            "One moment.",
            &iace_domain::Voice {
                name: "aura-2-thalia-en".into(),
                speed: 1.0,
            },
            &iace_domain::Language::parse("en-US").expect("language"),
        )
        .await
        .expect("speak");
    gateway
        .transfer(
            &call,
            &iace_domain::ports::TransferTarget::Sip {
                uri: "sip:agent@pbx.example.com".into(),
            },
        )
        .await
        .expect("transfer");
    let received = server.received_requests().await.expect("recorded");
    assert_eq!(received[0].url.path(), "/calls/v3%3Aabc/actions/answer");
    let answer: serde_json::Value = received[0].body_json().expect("json");
    assert_eq!(answer["stream_url"], "wss://x/media");
    assert_eq!(answer["stream_auth_token"], "stream-token");
    assert_eq!(answer["stream_bidirectional_mode"], "rtp");
    assert_eq!(
        call_id_from_client_state(answer["client_state"].as_str().expect("state")),
        Some(call.call_id)
    );
    let speak: serde_json::Value = received[1].body_json().expect("json");
    assert_eq!(speak["voice"], "female");
    assert_eq!(speak["service_level"], "basic");
    assert_eq!(speak["language"], "en-US");
    assert_eq!(speak["payload"], "One moment.");
    let transfer: serde_json::Value = received[2].body_json().expect("json");
    assert_eq!(transfer["to"], "sip:agent@pbx.example.com");
}

#[tokio::test]
async fn the_circuit_opens_on_repeated_failures_and_closes_after_recovery() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/calls/[^/]+/actions/hangup$"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/calls/[^/]+/actions/hangup$"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let gateway = TelnyxGateway::new(&TelnyxConfig {
        commands: fast(1),
        breaker: BreakerConfig {
            failure_threshold: 3,
            window_ms: 10_000,
            open_ms: 200,
        },
        ..config(&server)
    })
    .expect("gateway");
    let call = CallHandle {
        call_id: CallId::new(),
        provider_call_id: "v3:abc".into(),
    };
    for _ in 0..3 {
        let err = gateway.hang_up(&call).await.expect_err("503");
        assert!(
            matches!(err, iace_domain::ports::ProviderError::Unavailable { .. }),
            "{err:?}"
        );
    }
    let err = gateway.hang_up(&call).await.expect_err("open");
    assert!(
        matches!(
            err,
            iace_domain::ports::ProviderError::CircuitOpen { provider: "telnyx" }
        ),
        "{err:?}"
    );
    assert_eq!(
        server.received_requests().await.map_or(0, |r| r.len()),
        3,
        "nothing sent while open"
    );
    assert_eq!(gateway.breaker().state(), iace_http::BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        gateway.hang_up(&call).await.expect("the probe succeeds"),
        iace_domain::ports::CommandOutcome::Accepted
    );
    assert_eq!(gateway.breaker().state(), iace_http::BreakerState::Closed);
}
