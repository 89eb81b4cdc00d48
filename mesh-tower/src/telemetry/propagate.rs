//! Trace context on the wire: W3C `traceparent`/`tracestate` (the OpenTelemetry default) and
//! Zipkin's B3 (Istio's and Envoy's), read from inbound requests and written on outbound ones.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// Which headers carry trace context. Extraction tries W3C first, then B3 (single `b3`, then
/// the `x-b3-*` set); injection writes every enabled format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    /// `traceparent` / `tracestate`. Default: on.
    pub w3c: bool,
    /// `x-b3-traceid` / `x-b3-spanid` / `x-b3-sampled` (and the single `b3` header on input).
    /// Default: on, as Istio propagates B3.
    pub b3: bool,
}

impl Default for Propagation {
    fn default() -> Self {
        Propagation {
            w3c: true,
            b3: true,
        }
    }
}

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const B3: HeaderName = HeaderName::from_static("b3");
const B3_TRACE: HeaderName = HeaderName::from_static("x-b3-traceid");
const B3_SPAN: HeaderName = HeaderName::from_static("x-b3-spanid");
const B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
const B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");
const B3_PARENT: HeaderName = HeaderName::from_static("x-b3-parentspanid");

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

impl Propagation {
    /// The remote span context `headers` carry, if any, as a parent context.
    pub fn extract(&self, headers: &HeaderMap) -> Option<Context> {
        if self.w3c && headers.contains_key("traceparent") {
            let cx = TraceContextPropagator::new().extract(&Headers(headers));
            if cx.span().span_context().is_valid() {
                return Some(cx);
            }
        }
        if self.b3 {
            let sc = b3_single(headers).or_else(|| b3_multi(headers))?;
            return Some(Context::new().with_remote_span_context(sc));
        }
        None
    }

    /// Writes `cx`'s span context into `headers` in every enabled format (nothing when it has
    /// no valid span).
    pub fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let trace = sc.trace_id().to_bytes();
        let span_id = sc.span_id().to_bytes();
        if self.w3c {
            // `00-{trace}-{span}-{flags}`, formatted on the stack.
            let mut buf = [0u8; 55];
            buf[..3].copy_from_slice(b"00-");
            hex_into(&trace, &mut buf[3..35]);
            buf[35] = b'-';
            hex_into(&span_id, &mut buf[36..52]);
            buf[52] = b'-';
            hex_into(&[u8::from(sc.is_sampled())], &mut buf[53..55]);
            if let Ok(v) = HeaderValue::from_bytes(&buf) {
                headers.insert(TRACEPARENT, v);
            }
            let state = sc.trace_state().header();
            match HeaderValue::try_from(state) {
                Ok(v) if !v.is_empty() => {
                    headers.insert(TRACESTATE, v);
                }
                _ => {
                    headers.remove(TRACESTATE);
                }
            }
        }
        if self.b3 {
            let mut t = [0u8; 32];
            hex_into(&trace, &mut t);
            let mut s = [0u8; 16];
            hex_into(&span_id, &mut s);
            if let (Ok(t), Ok(s)) = (HeaderValue::from_bytes(&t), HeaderValue::from_bytes(&s)) {
                headers.insert(B3_TRACE, t);
                headers.insert(B3_SPAN, s);
            }
            headers.insert(
                B3_SAMPLED,
                HeaderValue::from_static(if sc.is_sampled() { "1" } else { "0" }),
            );
            headers.remove(B3_PARENT);
            headers.remove(B3);
        }
    }
}

/// Lowercase hex of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
}

/// A 64- or 128-bit B3 trace id (64-bit ids are left-padded, as Zipkin does).
fn trace_id(s: &str) -> Option<TraceId> {
    let ok = (s.len() == 16 || s.len() == 32) && s.bytes().all(|b| b.is_ascii_hexdigit());
    let id = TraceId::from_hex(s).ok().filter(|_| ok)?;
    (id != TraceId::INVALID).then_some(id)
}

fn span_id(s: &str) -> Option<SpanId> {
    let ok = s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let id = SpanId::from_hex(s).ok().filter(|_| ok)?;
    (id != SpanId::INVALID).then_some(id)
}

fn flags(sampled: Option<&str>, debug: bool) -> TraceFlags {
    match sampled {
        _ if debug => TraceFlags::SAMPLED,
        Some("1" | "true" | "d") => TraceFlags::SAMPLED,
        _ => TraceFlags::default(),
    }
}

fn remote(trace: TraceId, span: SpanId, flags: TraceFlags) -> SpanContext {
    SpanContext::new(trace, span, flags, true, TraceState::default())
}

/// `b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]]`.
fn b3_single(headers: &HeaderMap) -> Option<SpanContext> {
    let v = headers.get(B3)?.to_str().ok()?;
    let mut it = v.split('-');
    let trace = trace_id(it.next()?)?;
    let span = span_id(it.next()?)?;
    let sampled = it.next();
    Some(remote(trace, span, flags(sampled, sampled == Some("d"))))
}

fn b3_multi(headers: &HeaderMap) -> Option<SpanContext> {
    let get = |n: &HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let trace = trace_id(get(&B3_TRACE)?)?;
    let span = span_id(get(&B3_SPAN)?)?;
    Some(remote(
        trace,
        span,
        flags(get(&B3_SAMPLED), get(&B3_FLAGS) == Some("1")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    fn span_of(cx: &Context) -> SpanContext {
        cx.span().span_context().clone()
    }

    #[test]
    fn extracts_w3c_then_b3() {
        let p = Propagation::default();
        let w3c = headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )]);
        let sc = span_of(&p.extract(&w3c).unwrap());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(sc.is_sampled() && sc.is_remote());

        let multi = headers(&[
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-sampled", "1"),
        ]);
        let sc = span_of(&p.extract(&multi).unwrap());
        assert_eq!(sc.span_id().to_string(), "e457b5a2e4d86bd1");
        assert!(sc.is_sampled());

        let single = headers(&[("b3", "a3ce929d0e0e4736-00f067aa0ba902b7-0")]);
        let sc = span_of(&p.extract(&single).unwrap());
        assert_eq!(
            sc.trace_id().to_string(),
            "0000000000000000a3ce929d0e0e4736"
        );
        assert!(!sc.is_sampled());

        for bad in [
            headers(&[("b3", "zz-00f067aa0ba902b7")]),
            headers(&[
                ("x-b3-traceid", "80f198ee56343ba8"),
                ("x-b3-spanid", "0000000000000000"),
            ]),
            HeaderMap::new(),
        ] {
            assert!(p.extract(&bad).is_none(), "{bad:?}");
        }
        let w3c_only = Propagation {
            w3c: true,
            b3: false,
        };
        assert!(w3c_only.extract(&multi).is_none());
    }

    fn sc_trace() -> TraceId {
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    }

    #[test]
    fn injects_both_formats() {
        let sc = remote(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
        );
        let cx = Context::new().with_remote_span_context(sc);
        let mut h = headers(&[("b3", "stale")]);
        Propagation::default().inject(&cx, &mut h);
        assert_eq!(
            h["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(h["x-b3-traceid"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(h["x-b3-spanid"], "00f067aa0ba902b7");
        assert_eq!(h["x-b3-sampled"], "1");
        assert!(!h.contains_key("b3"));
        // The SDK's own W3C propagator reads what we wrote.
        let sdk = TraceContextPropagator::new().extract(&Headers(&h));
        assert_eq!(span_of(&sdk).trace_id(), sc_trace());
        // Round trip through our own extraction.
        let back = span_of(&Propagation::default().extract(&h).unwrap());
        assert_eq!(
            back.span_id(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
    }
}
