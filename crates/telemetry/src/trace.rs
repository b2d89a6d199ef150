//! OpenTelemetry traces, exported over OTLP/HTTP by a batch processor on
//! its own thread (the blocking HTTP client: the async one needs a Tokio
//! reactor the processor's thread does not have). String attributes and
//! span names are masked like log lines before they leave the process.

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};

use crate::config::{OtlpProtocol, TracesConfig};
use crate::mask::mask_pii;

/// A tracer provider exporting to `config.otlp_endpoint`; `None` when none
/// is configured.
///
/// # Errors
/// When the exporter cannot be built (an unusable endpoint).
pub fn provider(config: &TracesConfig) -> Result<Option<SdkTracerProvider>, String> {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let protocol = match config.otlp_protocol {
        OtlpProtocol::Protobuf => Protocol::HttpBinary,
        OtlpProtocol::Json => Protocol::HttpJson,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|err| format!("the OTLP exporter for {endpoint}: {err}"))?;
    let ratio = config.sample_ratio.clamp(0.0, 1.0);
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(Masked(exporter))
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build(),
    ))
}

/// The trace and span ids (hex) of `context`'s span, when it is a real one.
#[must_use]
pub fn ids(context: &opentelemetry::Context) -> Option<(String, String)> {
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

/// Masks what a span carries before the inner exporter sends it.
#[derive(Debug)]
struct Masked<E>(E);

fn mask_value(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(masked) = mask_pii(text.as_str()) {
                *value = Value::String(masked.into());
            }
        }
        Value::Array(opentelemetry::Array::String(items)) => {
            for item in items.iter_mut() {
                if let std::borrow::Cow::Owned(masked) = mask_pii(item.as_str()) {
                    *item = masked.into();
                }
            }
        }
        _ => {}
    }
}

fn mask_attributes(attributes: &mut [KeyValue]) {
    for attribute in attributes {
        mask_value(&mut attribute.value);
    }
}

fn mask_span(span: &mut SpanData) {
    if let std::borrow::Cow::Owned(masked) = mask_pii(&span.name) {
        span.name = masked.into();
    }
    mask_attributes(&mut span.attributes);
    if let opentelemetry::trace::Status::Error { description } = &mut span.status
        && let std::borrow::Cow::Owned(masked) = mask_pii(description)
    {
        *description = masked.into();
    }
    for event in &mut span.events.events {
        // An event's name is its log message.
        if let std::borrow::Cow::Owned(masked) = mask_pii(&event.name) {
            event.name = masked.into();
        }
        mask_attributes(&mut event.attributes);
    }
}

impl<E: SpanExporter> SpanExporter for Masked<E> {
    fn export(
        &self,
        mut batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        batch.iter_mut().for_each(mask_span);
        self.0.export(batch)
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// Makes the span a child of the caller's trace, when `traceparent` is a
/// valid W3C header (no-op without a tracer).
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// The `traceparent` header naming `span`, for outbound requests; `None`
/// without a tracer (the span has no OpenTelemetry context).
#[must_use]
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let context = span.context();
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}
