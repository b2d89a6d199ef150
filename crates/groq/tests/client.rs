//! `GroqClient` against fakes: what goes on the wire, how failures map, and
//! what a stream does when the connection stalls or the caller hangs up.

mod support;

use std::time::Duration;

use futures::StreamExt as _;
use iace_domain::Language;
use iace_domain::ports::{
    ChatChunk, ChatMessage, ChatRequest, ChatRole, FinishReason, LanguageModel, ProviderError,
    SentimentAnalyzer, TokenUsage, ToolCall, ToolSpec,
};
use iace_groq::{GroqClient, GroqConfig, SentimentOutput};
use secrecy::SecretString;
use serde_json::{Value, json};
use support::{
    API_KEY, CHAT_PATH, Sequence, client, config, error_body, reply_chunks, role_chunk, sse,
    sse_body, text_chunk, usage_chunk,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn server_answering(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CHAT_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

fn ask(question: &str) -> ChatRequest {
    ChatRequest {
        model: None,
        messages: vec![
            ChatMessage::new(ChatRole::System, "You are Sam."),
            ChatMessage::new(ChatRole::User, question),
        ],
        tools: Vec::new(),
        temperature: None,
        max_tokens: None,
    }
}

/// Every item of the reply, the error (if any) last.
async fn collect(
    model: &GroqClient,
    request: &ChatRequest,
) -> Result<Vec<ChatChunk>, ProviderError> {
    let mut stream = model.stream_chat(request).await?;
    let mut chunks = Vec::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream moves")
    {
        chunks.push(item?);
    }
    Ok(chunks)
}

fn en() -> Language {
    Language::parse("en-US").expect("language")
}

// ---------------------------------------------------------------- the request

#[tokio::test]
async fn a_reply_request_carries_the_documented_fields() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CHAT_PATH))
        .and(header(
            "authorization",
            format!("Bearer {API_KEY}").as_str(),
        ))
        .and(header("content-type", "application/json"))
        .respond_with(sse(&reply_chunks("Let me check."), true))
        .expect(1)
        .mount(&server)
        .await;
    let model = client(&server.uri(), false);

    let mut assistant = ChatMessage::new(ChatRole::Assistant, "");
    assistant.tool_calls.push(ToolCall {
        id: "call_1".into(),
        name: "lookup_order".into(),
        arguments: json!({"order": "A-42"}),
    });
    let mut result = ChatMessage::new(ChatRole::Tool, r#"{"status":"shipped"}"#);
    result.tool_call_id = Some("call_1".into());
    let request = ChatRequest {
        model: None,
        messages: vec![
            ChatMessage::new(ChatRole::System, "You are Sam."),
            ChatMessage::new(ChatRole::User, "Where is order A-42?"),
            assistant,
            result,
        ],
        tools: vec![ToolSpec {
            name: "lookup_order".into(),
            description: "Find an order by its number.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"order": {"type": "string"}},
                "required": ["order"]
            }),
        }],
        temperature: Some(0.5),
        max_tokens: Some(120),
    };
    collect(&model, &request).await.expect("a reply");

    let sent = requests(&server).await;
    let body: Value = sent[0].body_json().expect("JSON");
    assert_eq!(
        body,
        json!({
            "model": "llama-3.3-70b-versatile",
            "messages": [
                {"role": "system", "content": "You are Sam."},
                {"role": "user", "content": "Where is order A-42?"},
                {"role": "assistant", "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": "{\"order\":\"A-42\"}"}
                }]},
                {"role": "tool", "content": "{\"status\":\"shipped\"}", "tool_call_id": "call_1"}
            ],
            "tools": [{
                "type": "function",
                "function": {
                    "name": "lookup_order",
                    "description": "Find an order by its number.",
                    "parameters": {
                        "type": "object",
                        "properties": {"order": {"type": "string"}},
                        "required": ["order"]
                    }
                }
            }],
            "temperature": 0.5,
            "max_completion_tokens": 120,
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
    assert!(
        sent[0].headers.contains_key("traceparent"),
        "the outbound stack propagates the trace"
    );
}

#[tokio::test]
async fn a_request_may_name_its_own_model() {
    let server = server_answering(sse(&reply_chunks("Hi."), true)).await;
    let model = client(&server.uri(), false);
    let request = ChatRequest {
        model: Some("openai/gpt-oss-20b".into()),
        ..ask("Hello?")
    };
    collect(&model, &request).await.expect("a reply");
    let body: Value = requests(&server).await[0].body_json().expect("JSON");
    assert_eq!(body["model"], "openai/gpt-oss-20b");
    assert!(body.get("tools").is_none(), "no tools, no `tools`");
    assert!(body.get("temperature").is_none());
}

#[tokio::test]
async fn any_openai_compatible_server_works_and_no_key_sends_no_authorization() {
    // A local server at its own base URL (as Ollama's `/v1`), without a key.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(&reply_chunks("Hello from a local model."), true))
        .mount(&server)
        .await;
    let model = GroqClient::new(GroqConfig {
        api_key: SecretString::from(""),
        base_url: format!("{}/v1/", server.uri()),
        model: "llama3.2".into(),
        ..GroqConfig::default()
    })
    .expect("client");
    let chunks = collect(&model, &ask("Hello?")).await.expect("a reply");
    assert!(matches!(chunks.last(), Some(ChatChunk::Finished { .. })));
    let sent = requests(&server).await;
    assert!(!sent[0].headers.contains_key("authorization"));
    assert_eq!(
        sent[0].body_json::<Value>().expect("JSON")["model"],
        "llama3.2"
    );
}

// ---------------------------------------------------------------- the reply

#[tokio::test]
async fn usage_from_the_last_chunk_is_reported() {
    let mut chunks = vec![role_chunk(), text_chunk("Hi "), text_chunk("there.")];
    // An OpenAI-style server: finish without x_groq, then the usage chunk.
    chunks.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
    chunks.push(usage_chunk(40, 2));
    let server = server_answering(sse(&chunks, true)).await;
    let reply = collect(&client(&server.uri(), false), &ask("Hi"))
        .await
        .expect("a reply");
    assert_eq!(
        reply,
        vec![
            ChatChunk::Text {
                delta: "Hi ".into()
            },
            ChatChunk::Text {
                delta: "there.".into()
            },
            ChatChunk::Finished {
                reason: FinishReason::Stop,
                usage: Some(TokenUsage {
                    prompt_tokens: 40,
                    completion_tokens: 2
                }),
            },
        ]
    );
}

#[tokio::test]
async fn an_error_in_the_stream_fails_the_reply_after_its_text() {
    let mut body = sse_body(&[role_chunk(), text_chunk("We are")], false);
    body.push_str(&format!(
        "data: {}\n\n",
        error_body("The server had an error", "server_error", "internal_error")
    ));
    let server =
        server_answering(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")).await;
    let mut stream = client(&server.uri(), false)
        .stream_chat(&ask("Hours?"))
        .await
        .expect("stream");
    assert!(matches!(
        stream.next().await,
        Some(Ok(ChatChunk::Text { .. }))
    ));
    let err = stream
        .next()
        .await
        .expect("an item")
        .expect_err("the error");
    assert!(
        matches!(
            err,
            ProviderError::Unavailable {
                provider: "groq",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(stream.next().await.is_none());
}

// ---------------------------------------------------------------- failures

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited() {
    let server = server_answering(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "30")
            .set_body_json(error_body(
                "Rate limit reached",
                "tokens",
                "rate_limit_exceeded",
            )),
    )
    .await;
    let err = collect(&client(&server.uri(), false), &ask("Hi"))
        .await
        .expect_err("rate limited");
    assert!(
        matches!(
            err,
            ProviderError::RateLimited {
                provider: "groq",
                retry_after: Some(wait)
            } if wait == Duration::from_secs(30)
        ),
        "{err:?}"
    );
    assert_eq!(
        requests(&server).await.len(),
        1,
        "30 s is past the deadline"
    );
}

#[tokio::test]
async fn a_5xx_then_success_is_retried_before_any_text() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CHAT_PATH))
        .respond_with(Sequence::new(vec![
            ResponseTemplate::new(503),
            sse(&reply_chunks("Second time lucky."), true),
        ]))
        .mount(&server)
        .await;
    let chunks = collect(&client(&server.uri(), false), &ask("Hi"))
        .await
        .expect("retried to success");
    assert!(matches!(chunks.last(), Some(ChatChunk::Finished { .. })));
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn groq_capacity_exceeded_498_is_unavailable() {
    let server = server_answering(ResponseTemplate::new(498).set_body_json(error_body(
        "Flex tier capacity exceeded",
        "capacity_exceeded",
        "capacity_exceeded",
    )))
    .await;
    let err = collect(&client(&server.uri(), false), &ask("Hi"))
        .await
        .expect_err("498");
    assert!(
        matches!(
            err,
            ProviderError::Unavailable {
                provider: "groq",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_400_is_rejected_with_the_providers_explanation() {
    let server = server_answering(ResponseTemplate::new(400).set_body_json(error_body(
        "The model `nope` does not exist",
        "invalid_request_error",
        "model_not_found",
    )))
    .await;
    let err = collect(&client(&server.uri(), false), &ask("Hi"))
        .await
        .expect_err("400");
    assert!(
        matches!(&err, ProviderError::Rejected { status: Some(400), detail, .. } if detail.contains("does not exist")),
        "{err:?}"
    );
    assert_eq!(requests(&server).await.len(), 1, "a 4xx is not retried");
}

// ---------------------------------------------------------------- the connection

/// A bare HTTP/1.1 server for one request: it answers with an event-stream
/// head and `events`, then holds the connection open and reports whether the
/// client hung up (within `watch`).
async fn stalling_server(
    events: String,
    watch: Duration,
) -> (String, tokio::task::JoinHandle<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let uri = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("a connection");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head, then the body by its length.
        let body_start = loop {
            let n = socket.read(&mut buf).await.expect("read");
            assert!(n > 0, "the client sent a whole request");
            request.extend_from_slice(&buf[..n]);
            if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8_lossy(&request[..body_start]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().expect("a length"));
        while request.len() < body_start + length {
            let n = socket.read(&mut buf).await.expect("read");
            assert!(n > 0, "the whole body");
            request.extend_from_slice(&buf[..n]);
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.expect("head");
        let chunk = format!("{:x}\r\n{events}\r\n", events.len());
        socket.write_all(chunk.as_bytes()).await.expect("events");
        socket.flush().await.expect("flush");
        // Now stall; a read ending (EOF or reset) means the client hung up.
        matches!(
            tokio::time::timeout(watch, socket.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    });
    (uri, task)
}

#[tokio::test]
async fn dropping_the_stream_hangs_up_the_connection() {
    let events = sse_body(&[role_chunk(), text_chunk("We are open")], false);
    let (uri, server) = stalling_server(events, Duration::from_secs(5)).await;
    let model = GroqClient::new(GroqConfig {
        base_url: uri,
        ..config("unused")
    })
    .expect("client");
    let mut stream = model.stream_chat(&ask("Hours?")).await.expect("stream");
    let first = stream.next().await;
    assert!(
        matches!(first, Some(Ok(ChatChunk::Text { .. }))),
        "{first:?}"
    );
    drop(stream);
    assert!(
        server.await.expect("server task"),
        "the connection closed when the stream was dropped"
    );
}

#[tokio::test]
async fn a_stream_that_stalls_times_out() {
    let events = sse_body(&[role_chunk(), text_chunk("We are")], false);
    let (uri, server) = stalling_server(events, Duration::from_secs(5)).await;
    let model = GroqClient::new(GroqConfig {
        base_url: uri,
        idle_timeout_ms: 300,
        ..config("unused")
    })
    .expect("client");
    let result = collect(&model, &ask("Hours?")).await;
    assert!(
        matches!(result, Err(ProviderError::Timeout { provider: "groq" })),
        "{result:?}"
    );
    assert!(
        server.await.expect("server task"),
        "the failed stream hung up too"
    );
}

#[tokio::test]
async fn keep_alive_comments_do_not_hold_a_silent_reply_open() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let uri = format!("http://{}", listener.local_addr().expect("address"));
    let events = sse_body(&[role_chunk(), text_chunk("We are")], false);
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("a connection");
        let mut buf = [0u8; 8192];
        let _ = socket.read(&mut buf).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket
            .write_all(format!("{:x}\r\n{events}\r\n", events.len()).as_bytes())
            .await;
        // Then only keep-alive comments, for longer than the idle timeout.
        let comment = ": keep-alive\n\n";
        for _ in 0..200 {
            let chunk = format!("{:x}\r\n{comment}\r\n", comment.len());
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let model = GroqClient::new(GroqConfig {
        base_url: uri,
        idle_timeout_ms: 300,
        ..config("unused")
    })
    .expect("client");
    let result = collect(&model, &ask("Hours?")).await;
    assert!(
        matches!(result, Err(ProviderError::Timeout { provider: "groq" })),
        "comments every 50 ms must not extend a 300 ms idle timeout: {result:?}"
    );
}

// ---------------------------------------------------------------- sentiment

#[tokio::test]
async fn a_sentiment_request_asks_for_the_schema_and_reads_the_verdict() {
    let server =
        server_answering(support::verdict(-0.7, "negative", &["asked for a manager"])).await;
    let analyzer = client(&server.uri(), false);
    let reading = analyzer
        .analyze(
            "  I want your manager, now.  ",
            &Language::parse("de-DE").expect("de"),
        )
        .await
        .expect("a reading");
    assert!((reading.sentiment.score() + 0.7).abs() < 1e-9);
    assert_eq!(reading.reasons, vec!["asked for a manager".to_owned()]);

    let sent = requests(&server).await;
    assert_eq!(
        sent[0].headers.get("authorization").map(|v| v.as_bytes()),
        Some(format!("Bearer {API_KEY}").as_bytes())
    );
    let body: Value = sent[0].body_json().expect("JSON");
    assert_eq!(body["model"], "openai/gpt-oss-20b");
    assert_eq!(body["stream"], false);
    assert_eq!(body["temperature"], 0.0);
    assert!(body.get("stream_options").is_none());
    assert_eq!(body["messages"][0]["role"], "system");
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("de-DE")),
        "the prompt names the language"
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "I want your manager, now."})
    );
    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "sentiment");
    assert_eq!(format["json_schema"]["strict"], true);
    assert_eq!(
        format["json_schema"]["schema"]["required"],
        json!(["score", "label", "reasons"])
    );
    assert_eq!(
        format["json_schema"]["schema"]["properties"]["label"]["enum"],
        json!(["negative", "neutral", "positive"])
    );
}

#[tokio::test]
async fn json_mode_can_be_chosen_for_models_without_structured_outputs() {
    let server = server_answering(support::verdict(0.5, "positive", &[])).await;
    let analyzer = GroqClient::new(GroqConfig {
        sentiment_output: SentimentOutput::JsonObject,
        ..config(&server.uri())
    })
    .expect("client");
    analyzer
        .analyze("Great, thanks!", &en())
        .await
        .expect("a reading");
    let body: Value = requests(&server).await[0].body_json().expect("JSON");
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
}

#[tokio::test]
async fn empty_text_is_neutral_without_a_request() {
    let server = server_answering(support::verdict(-1.0, "negative", &[])).await;
    let reading = client(&server.uri(), false)
        .analyze(" \n\t ", &en())
        .await
        .expect("a reading");
    assert!(reading.sentiment.score().abs() < 1e-12);
    assert!(reading.reasons.is_empty());
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn long_utterances_are_cut_before_sending() {
    let server = server_answering(support::verdict(0.0, "neutral", &[])).await;
    let analyzer = GroqClient::new(GroqConfig {
        sentiment_max_input_chars: 10,
        ..config(&server.uri())
    })
    .expect("client");
    analyzer
        .analyze(
            "\u{e9}t\u{e9} \u{e9}t\u{e9} \u{e9}t\u{e9} \u{e9}t\u{e9}",
            &en(),
        )
        .await
        .expect("a reading");
    let body: Value = requests(&server).await[0].body_json().expect("JSON");
    // Ten characters, not ten bytes.
    assert_eq!(
        body["messages"][1]["content"],
        "\u{e9}t\u{e9} \u{e9}t\u{e9} \u{e9}t"
    );
}

#[tokio::test]
async fn a_verdict_in_another_shape_is_an_invalid_response() {
    for answer in [
        support::completion("I think the caller is upset."),
        support::completion(r#"{"label": "negative"}"#),
        ResponseTemplate::new(200).set_body_json(json!({"choices": []})),
        ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null}}]
        })),
    ] {
        let server = server_answering(answer).await;
        let err = client(&server.uri(), false)
            .analyze("This is terrible.", &en())
            .await
            .expect_err("invalid");
        assert!(
            matches!(
                err,
                ProviderError::InvalidResponse {
                    provider: "groq",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn the_circuit_opens_on_repeated_failures_and_closes_after_recovery() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CHAT_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CHAT_PATH))
        .respond_with(sse(&reply_chunks("Back again."), true))
        .mount(&server)
        .await;
    let model = GroqClient::new(GroqConfig {
        chat: iace_http::HttpPolicy {
            attempts: 1,
            ..support::policy(1_000, 2_000)
        },
        breaker: iace_http::BreakerConfig {
            failure_threshold: 3,
            window_ms: 10_000,
            open_ms: 200,
        },
        ..config(&server.uri())
    })
    .expect("client");
    for _ in 0..3 {
        let err = collect(&model, &ask("Hi")).await.expect_err("503");
        assert!(matches!(err, ProviderError::Unavailable { .. }), "{err:?}");
    }
    let err = collect(&model, &ask("Hi")).await.expect_err("open");
    assert!(
        matches!(err, ProviderError::CircuitOpen { provider: "groq" }),
        "{err:?}"
    );
    assert_eq!(requests(&server).await.len(), 3, "nothing sent while open");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let chunks = collect(&model, &ask("Hi"))
        .await
        .expect("the probe succeeds");
    assert!(matches!(chunks.last(), Some(ChatChunk::Finished { .. })));
    assert_eq!(model.breaker().state(), iace_http::BreakerState::Closed);
}
