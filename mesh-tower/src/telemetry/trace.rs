//! Spans: the OTLP exporter set-up, and the span names and attributes of the HTTP semantic
//! conventions.

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{ExporterBuildError, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

/// A tracer provider exporting spans over OTLP/gRPC to `endpoint` (such as
/// `http://otel-collector:4317`) in batches, with `service.name` = `service`, sampling this
/// share (0.0–1.0) of new traces and following the caller's decision for the others
/// (`ParentBased(TraceIdRatioBased)`, as Istio's `randomSamplingPercentage`). Must be called
/// inside a tokio runtime. Call `shutdown()` (or `force_flush()`) on it before exiting so the
/// last batch is sent.
pub fn otlp(
    endpoint: &str,
    service: &str,
    sample: f64,
) -> Result<SdkTracerProvider, ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            sample.clamp(0.0, 1.0),
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build())
}

/// The span name of a request: its method (the semantic conventions' low-cardinality name),
/// `_OTHER` for extension methods.
pub(crate) fn method_name(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// Starts a span of `kind` under `parent` and returns the context holding it.
pub(crate) fn start<B>(
    tracer: &SdkTracer,
    parent: &Context,
    kind: SpanKind,
    req: &http::Request<B>,
    extra: impl FnOnce(&mut Vec<KeyValue>),
) -> Context {
    let mut span = tracer
        .span_builder(method_name(req.method()))
        .with_kind(kind.clone())
        .start_with_context(tracer, parent);
    if span.is_recording() {
        let mut attrs = Vec::with_capacity(8);
        attrs.push(KeyValue::new(
            "http.request.method",
            method_name(req.method()),
        ));
        attrs.push(KeyValue::new("url.path", req.uri().path().to_string()));
        if let Some(host) = crate::route::authority(req) {
            attrs.push(KeyValue::new("server.address", host.to_string()));
        }
        attrs.push(KeyValue::new(
            "network.protocol.version",
            match req.version() {
                http::Version::HTTP_2 => "2",
                http::Version::HTTP_10 => "1.0",
                _ => "1.1",
            },
        ));
        extra(&mut attrs);
        span.set_attributes(attrs);
    }
    parent.with_span(span)
}

/// Ends `cx`'s span with the outcome (status code, gRPC status, error), as the HTTP semantic
/// conventions ask: server spans are errors from 500 up, client spans from 400 up.
pub(crate) fn end(cx: &Context, server: bool, code: u16, grpc: Option<u32>, error: Option<&str>) {
    let span = cx.span();
    if span.is_recording() {
        if code != 0 {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
        }
        if let Some(g) = grpc {
            span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(g)));
        }
        let failed = error.is_some() || code >= if server { 500 } else { 400 } || code == 0;
        if failed {
            let kind = error
                .map(str::to_string)
                .unwrap_or_else(|| code.to_string());
            span.set_attribute(KeyValue::new("error.type", kind.clone()));
            span.set_status(Status::error(kind));
        }
    }
    span.end();
}
