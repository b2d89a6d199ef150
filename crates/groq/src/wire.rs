//! The OpenAI-compatible chat completions format, as Groq speaks it: request
//! bodies (serialised from the domain's types) and the stream chunks and
//! completions we read back. Private: nothing here leaves the crate.
//!
//! Reading is lenient where servers differ harmlessly (missing or `null`
//! fields, unknown fields) and strict where a difference would change the
//! meaning.

use iace_domain::ports::{ChatMessage, ChatRole, TokenUsage, ToolSpec};
use serde::{Deserialize, Deserializer, Serialize};

// ---------------------------------------------------------------- requests

/// `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(crate) struct CompletionRequest<'a> {
    pub(crate) model: &'a str,
    pub(crate) messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_completion_tokens: Option<u32>,
    pub(crate) stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_format: Option<serde_json::Value>,
}

/// `stream_options`.
#[derive(Debug, Serialize)]
pub(crate) struct StreamOptions {
    /// Ask for a last chunk carrying the token usage.
    pub(crate) include_usage: bool,
}

/// One message of `messages`.
#[derive(Debug, Serialize)]
pub(crate) struct Message<'a> {
    pub(crate) role: &'static str,
    /// Omitted for an assistant message that only calls tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tool_calls: Vec<ToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_call_id: Option<&'a str>,
}

impl<'a> Message<'a> {
    /// A plain message.
    pub(crate) const fn text(role: &'static str, content: &'a str) -> Self {
        Self {
            role,
            content: Some(content),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

impl<'a> From<&'a ChatMessage> for Message<'a> {
    fn from(message: &'a ChatMessage) -> Self {
        let role = match message.role {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
            ChatRole::Tool => "tool",
        };
        let tool_calls: Vec<ToolCallOut<'a>> = if message.role == ChatRole::Assistant {
            message
                .tool_calls
                .iter()
                .map(|call| ToolCallOut {
                    id: &call.id,
                    kind: "function",
                    function: FunctionCallOut {
                        name: &call.name,
                        // The format carries arguments as a JSON *string*.
                        arguments: call.arguments.to_string(),
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        let content = if message.content.is_empty() && !tool_calls.is_empty() {
            None
        } else {
            Some(message.content.as_str())
        };
        let tool_call_id = if message.role == ChatRole::Tool {
            message.tool_call_id.as_deref()
        } else {
            None
        };
        Self {
            role,
            content,
            tool_calls,
            tool_call_id,
        }
    }
}

/// A tool call in an assistant message we send back.
#[derive(Debug, Serialize)]
pub(crate) struct ToolCallOut<'a> {
    pub(crate) id: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) function: FunctionCallOut<'a>,
}

/// The function of a [`ToolCallOut`].
#[derive(Debug, Serialize)]
pub(crate) struct FunctionCallOut<'a> {
    pub(crate) name: &'a str,
    pub(crate) arguments: String,
}

/// One entry of `tools`.
#[derive(Debug, Serialize)]
pub(crate) struct Tool<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) function: FunctionSpec<'a>,
}

/// The function of a [`Tool`].
#[derive(Debug, Serialize)]
pub(crate) struct FunctionSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) description: &'a str,
    pub(crate) parameters: &'a serde_json::Value,
}

impl<'a> From<&'a ToolSpec> for Tool<'a> {
    fn from(tool: &'a ToolSpec) -> Self {
        Self {
            kind: "function",
            function: FunctionSpec {
                name: &tool.name,
                description: &tool.description,
                parameters: &tool.parameters,
            },
        }
    }
}

// ---------------------------------------------------------------- responses

/// `null` reads as the default (servers send `"tool_calls": null` and the like).
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// One `data:` payload of a streamed completion (`chat.completion.chunk`).
#[derive(Debug, Deserialize)]
pub(crate) struct StreamChunk {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) choices: Vec<ChunkChoice>,
    /// With `stream_options.include_usage`: on the last chunk.
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
    /// Groq's extension: usage on the final chunk, an error when the stream
    /// stopped early.
    #[serde(default)]
    pub(crate) x_groq: Option<XGroq>,
    /// An error sent in place of a chunk.
    #[serde(default)]
    pub(crate) error: Option<ApiError>,
}

/// `choices[i]` of a chunk.
#[derive(Debug, Deserialize)]
pub(crate) struct ChunkChoice {
    #[serde(default)]
    pub(crate) index: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) delta: Delta,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

/// What a chunk adds.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) tool_calls: Vec<ToolCallDelta>,
}

/// A fragment of a tool call.
#[derive(Debug, Deserialize)]
pub(crate) struct ToolCallDelta {
    /// Which call the fragment belongs to (some servers omit it).
    #[serde(default)]
    pub(crate) index: Option<u32>,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) function: Option<FunctionDelta>,
}

/// The function part of a [`ToolCallDelta`].
#[derive(Debug, Deserialize)]
pub(crate) struct FunctionDelta {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) arguments: Option<String>,
}

/// Token accounting.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct Usage {
    #[serde(default)]
    pub(crate) prompt_tokens: u32,
    #[serde(default)]
    pub(crate) completion_tokens: u32,
}

impl From<Usage> for TokenUsage {
    fn from(usage: Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        }
    }
}

/// Groq's `x_groq` extension object.
#[derive(Debug, Deserialize)]
pub(crate) struct XGroq {
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
    #[serde(default)]
    pub(crate) error: Option<ApiError>,
}

/// An error object: `{"message","type","code"}`, or just a message.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ApiError {
    /// A bare message.
    Text(String),
    /// The documented shape.
    Object {
        #[serde(default)]
        message: Option<String>,
        #[serde(default, rename = "type")]
        kind: Option<String>,
        #[serde(default)]
        code: Option<serde_json::Value>,
    },
    /// Anything else: still an error.
    Other(serde_json::Value),
}

/// A non-streamed completion (only what we read).
#[derive(Debug, Deserialize)]
pub(crate) struct Completion {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) choices: Vec<CompletionChoice>,
}

/// `choices[i]` of a completion.
#[derive(Debug, Deserialize)]
pub(crate) struct CompletionChoice {
    pub(crate) message: CompletionMessage,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

/// The assistant's message in a completion.
#[derive(Debug, Deserialize)]
pub(crate) struct CompletionMessage {
    #[serde(default)]
    pub(crate) content: Option<String>,
}

/// The sentiment verdict the model writes as its message content.
#[derive(Debug, Deserialize)]
pub(crate) struct SentimentVerdict {
    pub(crate) score: f64,
    /// Redundant with the score; only compared with it.
    #[serde(default)]
    pub(crate) label: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) reasons: Vec<String>,
}

#[cfg(test)]
mod tests {
    use iace_domain::ports::ToolCall;
    use serde_json::json;

    use super::*;

    #[test]
    fn messages_take_the_openai_shapes() {
        let mut assistant = ChatMessage::new(ChatRole::Assistant, "");
        assistant.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "lookup".into(),
            arguments: json!({"order": 42}),
        });
        let mut tool = ChatMessage::new(ChatRole::Tool, "{\"status\":\"shipped\"}");
        tool.tool_call_id = Some("call_1".into());
        let messages = [
            ChatMessage::new(ChatRole::System, "Be brief."),
            ChatMessage::new(ChatRole::User, "Where is my order?"),
            assistant,
            tool,
        ];
        let wire: Vec<Message<'_>> = messages.iter().map(Message::from).collect();
        assert_eq!(
            serde_json::to_value(&wire).expect("serialises"),
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Where is my order?"},
                {"role": "assistant", "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": "{\"order\":42}"}
                }]},
                {"role": "tool", "content": "{\"status\":\"shipped\"}", "tool_call_id": "call_1"}
            ])
        );
    }

    #[test]
    fn chunks_read_with_nulls_and_missing_fields() {
        let chunk: StreamChunk = serde_json::from_value(json!({
            "id": "x", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": null, "tool_calls": null}, "finish_reason": null}],
            "usage": null,
            "x_groq": {"id": "req_1"}
        }))
        .expect("reads");
        assert_eq!(chunk.choices.len(), 1);
        assert!(chunk.choices[0].delta.tool_calls.is_empty());
        assert!(chunk.usage.is_none());

        let last: StreamChunk =
            serde_json::from_value(json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}))
                .expect("reads");
        assert_eq!(last.usage.map(|u| u.completion_tokens), Some(4));
    }

    #[test]
    fn errors_read_in_any_shape() {
        for error in [
            json!("overloaded"),
            json!({"message": "m", "type": "server_error", "code": null}),
            json!(17),
        ] {
            let chunk: StreamChunk =
                serde_json::from_value(json!({ "error": error })).expect("reads");
            assert!(chunk.error.is_some());
        }
    }
}
