//! What every outbound request carries from the work that caused it: the
//! inbound request id and a W3C trace context.
//!
//! The API runs each request's handler inside [`scope`]; everything it calls,
//! down to the provider adapters, then sends `x-request-id` and a
//! `traceparent` whose trace id is the caller's (a fresh trace when there was
//! none), with a new parent id per outbound request.

use std::fmt;

tokio::task_local! {
    static CONTEXT: OutboundContext;
}

/// The propagated context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundContext {
    /// The inbound request's id.
    pub request_id: Option<String>,
    /// The inbound trace context, if the caller sent one.
    pub trace: Option<TraceParent>,
}

/// Runs `future` with `context` as the outbound context.
pub async fn scope<F: Future>(context: OutboundContext, future: F) -> F::Output {
    CONTEXT.scope(context, future).await
}

/// The context of the running task, if it has one.
#[must_use]
pub fn current() -> Option<OutboundContext> {
    CONTEXT.try_with(Clone::clone).ok()
}

/// What an outbound request made now carries: the task's request id, and a
/// `traceparent` — the current span's when traces are exported (the
/// provider's work then sits below the span that asked for it, in a live
/// call as in a request), else a child of the task's trace, else a new trace.
#[must_use]
pub fn outbound() -> (Option<String>, TraceParent) {
    let task = current();
    let trace = span_trace()
        .or_else(|| task.as_ref().and_then(|c| c.trace).map(|t| t.child()))
        .unwrap_or_else(TraceParent::new_root);
    (task.and_then(|c| c.request_id), trace)
}

/// The current span's OpenTelemetry context as a `traceparent`.
fn span_trace() -> Option<TraceParent> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| TraceParent {
        trace_id: span_context.trace_id().to_bytes(),
        parent_id: span_context.span_id().to_bytes(),
        flags: span_context.trace_flags().to_u8(),
    })
}

/// A W3C `traceparent` (version 00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let mut filled = 0;
    while filled < N {
        let chunk = *uuid::Uuid::new_v4().as_bytes();
        let take = (N - filled).min(chunk.len());
        out[filled..filled + take].copy_from_slice(&chunk[..take]);
        filled += take;
    }
    out
}

fn hex_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl TraceParent {
    /// Parses a `traceparent` header; `None` when it is malformed or uses
    /// the all-zero ids the specification forbids.
    #[must_use]
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let trace_id = hex_decode::<16>(trace)?;
        let parent_id = hex_decode::<8>(parent)?;
        let [flags] = hex_decode::<1>(flags)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// A new sampled trace.
    #[must_use]
    pub fn new_root() -> Self {
        Self {
            trace_id: random_bytes(),
            parent_id: random_bytes(),
            flags: 1,
        }
    }

    /// The same trace, a new parent id (one outbound request).
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            parent_id: random_bytes(),
            ..*self
        }
    }

    /// The trace id as 32 hex digits.
    #[must_use]
    pub fn trace_id(&self) -> String {
        self.trace_id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("00-")?;
        for b in self.trace_id {
            write!(f, "{b:02x}")?;
        }
        f.write_str("-")?;
        for b in self.parent_id {
            write!(f, "{b:02x}")?;
        }
        write!(f, "-{:02x}", self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_w3c_example() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(header).expect("valid");
        assert_eq!(parsed.to_string(), header);
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_parent() {
        let root = TraceParent::new_root();
        let child = root.child();
        assert_eq!(child.trace_id(), root.trace_id());
        assert_ne!(child.to_string(), root.to_string());
        assert!(TraceParent::parse(&child.to_string()).is_some());
    }

    #[tokio::test]
    async fn the_scope_is_visible_inside_and_not_outside() {
        assert!(current().is_none());
        let context = OutboundContext {
            request_id: Some("req-1".into()),
            trace: None,
        };
        let seen = scope(context.clone(), async { current() }).await;
        assert_eq!(seen, Some(context));
        assert!(current().is_none());
    }
}
