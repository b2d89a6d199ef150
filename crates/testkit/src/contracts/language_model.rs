//! `LanguageModel` contract: streamed replies, tool calls, cancellation by
//! drop, a stream cut mid-way, and provider failures.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use iace_domain::ports::{
    ChatChunk, ChatMessage, ChatRequest, ChatRole, FinishReason, LanguageModel, ProviderError,
    ToolSpec,
};

use super::provider_failure::{self, Failure};

/// Makes adapters whose provider behaves as asked (a fake server, or the
/// adapter itself for local providers). `None`: this adapter cannot be made
/// to behave so, and the case is skipped.
#[async_trait]
pub trait LanguageModelFixture: Send + Sync {
    /// The provider streams `text` back as the reply, in several pieces.
    async fn replying(&self, text: &str) -> Arc<dyn LanguageModel>;
    /// The provider asks for tool `name` with `arguments`.
    async fn calling_tool(
        &self,
        name: &str,
        arguments: &serde_json::Value,
    ) -> Option<Arc<dyn LanguageModel>>;
    /// The provider streams `text`, then the connection drops.
    async fn cut_after(&self, text: &str) -> Option<Arc<dyn LanguageModel>>;
    /// The provider fails this way.
    async fn failing(&self, failure: Failure) -> Option<Arc<dyn LanguageModel>>;
}

fn request(tools: Vec<ToolSpec>) -> ChatRequest {
    ChatRequest {
        model: None,
        messages: vec![
            ChatMessage::new(ChatRole::System, "You are Sam, a helpful agent."),
            ChatMessage::new(ChatRole::User, "What are your opening hours?"),
        ],
        tools,
        temperature: Some(0.2),
        max_tokens: Some(200),
    }
}

/// Everything the stream yields, until it ends or errs (bounded in time).
async fn drain(
    model: &dyn LanguageModel,
    req: &ChatRequest,
) -> (Vec<ChatChunk>, Option<ProviderError>) {
    let mut stream = match model.stream_chat(req).await {
        Ok(stream) => stream,
        Err(err) => return (Vec::new(), Some(err)),
    };
    let mut chunks = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
            Err(_) => panic!("the stream neither ended nor failed within 20 s"),
            Ok(None) => return (chunks, None),
            Ok(Some(Ok(chunk))) => chunks.push(chunk),
            Ok(Some(Err(err))) => return (chunks, Some(err)),
        }
    }
}

fn text_of(chunks: &[ChatChunk]) -> String {
    chunks
        .iter()
        .filter_map(|c| match c {
            ChatChunk::Text { delta } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

/// Runs every case.
pub async fn run<F: LanguageModelFixture>(fixture: &F) {
    super::announce("language model: a streamed reply");
    let text = "We are open from nine to five, Monday to Friday. Anything else?";
    let model = fixture.replying(text).await;
    let (chunks, err) = drain(model.as_ref(), &request(Vec::new())).await;
    assert!(err.is_none(), "no error: {err:?}");
    assert_eq!(text_of(&chunks), text, "the deltas add up to the reply");
    assert!(
        chunks
            .iter()
            .filter(|c| matches!(c, ChatChunk::Text { .. }))
            .count()
            >= 2,
        "the reply streams in pieces"
    );
    assert!(
        matches!(
            chunks.last(),
            Some(ChatChunk::Finished {
                reason: FinishReason::Stop,
                ..
            })
        ),
        "it ends with Finished(stop): {chunks:?}"
    );
    assert_eq!(
        chunks
            .iter()
            .filter(|c| matches!(c, ChatChunk::Finished { .. }))
            .count(),
        1
    );

    super::announce("language model: dropping a stream cancels it; the adapter goes on");
    let mut stream = model
        .stream_chat(&request(Vec::new()))
        .await
        .expect("stream");
    let first = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("a first chunk in time");
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    drop(stream);
    let (chunks, err) = drain(model.as_ref(), &request(Vec::new())).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&chunks), text);

    if let Some(model) = fixture
        .calling_tool(
            "transfer_to_agent",
            &serde_json::json!({"reason": "billing"}),
        )
        .await
    {
        super::announce("language model: a tool call");
        let tool = ToolSpec {
            name: "transfer_to_agent".into(),
            description: "Hand the call to a human agent.".into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"reason": {"type": "string"}},
                "required": ["reason"]
            }),
        };
        let (chunks, err) = drain(model.as_ref(), &request(vec![tool])).await;
        assert!(err.is_none(), "{err:?}");
        let call = chunks
            .iter()
            .find_map(|c| match c {
                ChatChunk::ToolCall { call } => Some(call),
                _ => None,
            })
            .expect("a tool call");
        assert_eq!(call.name, "transfer_to_agent");
        assert_eq!(call.arguments, serde_json::json!({"reason": "billing"}));
        assert!(!call.id.is_empty());
        assert!(matches!(
            chunks.last(),
            Some(ChatChunk::Finished {
                reason: FinishReason::ToolCalls,
                ..
            })
        ));
    }

    if let Some(model) = fixture.cut_after("We are open from").await {
        super::announce("language model: a stream cut mid-way is an error, not an end");
        let (chunks, err) = drain(model.as_ref(), &request(Vec::new())).await;
        assert!(text_of(&chunks).starts_with("We are open"), "{chunks:?}");
        assert!(
            !chunks
                .iter()
                .any(|c| matches!(c, ChatChunk::Finished { .. })),
            "a cut stream never reports Finished"
        );
        let err = err.expect("the cut is reported");
        assert!(err.is_retryable(), "{err:?}");
    }

    for failure in provider_failure::ALL {
        let Some(model) = fixture.failing(failure).await else {
            continue;
        };
        let case = format!("language model: {failure:?}");
        super::announce(&case);
        let (chunks, err) = drain(model.as_ref(), &request(Vec::new())).await;
        assert!(text_of(&chunks).is_empty(), "{case}: no text");
        provider_failure::assert_maps(&case, failure, &err.expect("an error"));
    }
}
