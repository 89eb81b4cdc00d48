//! Forwarding one request to a cluster: split, balance, break, retry, report outliers, mirror.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, Uri};
use mesh_core::route::{ForwardAction, PathMatch, Route};
use mesh_xds_client::tls::TlsError;
use tokio::time::Instant;

use super::body::{self, Body, BoxError};
use super::replay::Replay;
use super::runtime::ClusterRuntime;
use super::{Error, Inner, headers};
use crate::retry::{Backoff, Outcome, is_retryable, retriable_by_headers};
use crate::telemetry::{Exchange, ResponseFlags};

/// The latency a failed attempt is charged at least, for the peak-EWMA balancer.
const FAILURE_PENALTY: std::time::Duration = std::time::Duration::from_secs(1);

/// Envoy's attempt-count request header.
const ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");

pub(super) async fn forward<B>(
    inner: &Inner,
    runtimes: &super::runtime::RuntimeSet,
    route: &Route,
    f: &ForwardAction,
    host: HeaderValue,
    req: Request<B>,
    ex: &mut Option<Exchange>,
) -> Result<Response<Body>, Error>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let weighted =
        crate::route::pick_weighted(&f.clusters, fastrand::u32(..)).ok_or_else(|| {
            Error::NoCluster {
                cluster: String::new(),
                route: route.name.clone(),
            }
        })?;
    let hash = crate::balance::hash_request(&f.hash_policies, &req, None);
    let (mut parts, body) = req.into_parts();
    headers::apply(&route.request_headers, &mut parts.headers);
    let host = match &f.host_rewrite {
        Some(h) => HeaderValue::try_from(h.as_str())
            .map_err(|e| Error::InvalidRequest(format!("host rewrite {h:?}: {e}")))?,
        None => host,
    };
    let path = rewrite_path(route, f, &parts.uri)?;
    let mut body = Replay::new(body, inner.max_replay)
        .await
        .map_err(|e| Error::InvalidRequest(format!("reading the request body: {e}")))?;
    let rt = runtimes
        .clusters
        .get(&weighted.name)
        .cloned()
        .ok_or_else(|| Error::NoCluster {
            cluster: weighted.name.clone(),
            route: route.name.clone(),
        })?;

    for m in &f.mirrors {
        if body.replayable()
            && fastrand::u32(0..1_000_000) < m.percent.per_million()
            && let Some(target) = runtimes.clusters.get(&m.cluster).cloned()
        {
            mirror(inner, target, &parts, &host, &path, &mut body);
        }
    }
    // A TLS cluster is never sent plaintext: without a certificate, fail here.
    if rt.cluster.tls.is_some()
        && (rt.tls.is_none() || inner.identity.as_ref().is_none_or(|id| id.load().is_none()))
    {
        return Err(Error::NoIdentity {
            cluster: rt.cluster.name.clone(),
        });
    }

    if let Some(ex) = ex.as_mut() {
        ex.reached_cluster(&rt.cluster, &rt.peer, &rt.service, body.len());
    }
    let _active = rt.budget.request();
    let _permit = match rt.breaker.try_request() {
        Ok(p) => p,
        Err(overflow) => {
            if let Some(ex) = ex.as_mut() {
                ex.flags.insert(ResponseFlags::UPSTREAM_OVERFLOW);
            }
            metrics::counter!(
                "mesh_breaker_overflows_total",
                "cluster" => rt.cluster.name.clone(),
                "threshold" => overflow.limit.as_str()
            )
            .increment(1);
            return Ok(crate::breaker::overflow_response(overflow));
        }
    };
    let retry = f.retry.as_ref().filter(|_| body.replayable());
    let attempts = 1 + retry.map_or(0, |r| r.num_retries);
    let backoff = retry.map(Backoff::from_policy);
    let mut rng = fastrand::Rng::new();
    let mut avoid = None;
    let mut attempt = 1u32;
    // Held while a retry is in flight, so the budget counts it.
    let mut _retry_permit = None;
    loop {
        let pick = rt
            .balancer
            .pick(hash, avoid)
            .ok_or_else(|| Error::NoHealthyEndpoint {
                cluster: rt.cluster.name.clone(),
            })?;
        let addr = pick.addr();
        let Some(attempt_body) = body.take() else {
            return Err(Error::InvalidRequest(
                "the request body was already sent".into(),
            ));
        };
        let mut out = Request::new(attempt_body);
        *out.method_mut() = parts.method.clone();
        *out.version_mut() = parts.version;
        *out.headers_mut() = parts.headers.clone();
        *out.uri_mut() = endpoint_uri(&pick.stats().authority, &path)?;
        out.headers_mut().insert(HOST, host.clone());
        out.headers_mut()
            .insert(ATTEMPT_COUNT, attempt_count(attempt));
        let span = ex
            .as_mut()
            .and_then(|ex| ex.attempt(&mut out, attempt, addr));

        let started = Instant::now();
        let per_try = retry.and_then(|r| r.per_try_timeout);
        let sent = match (&rt.tls, parts.version == http::Version::HTTP_2) {
            (Some(tls), true) => tls.http2.request(out),
            (Some(tls), false) => tls.http1.request(out),
            (None, true) => inner.http2.request(out),
            (None, false) => inner.http1.request(out),
        };
        // `None`: the per-try timeout expired.
        let result = match per_try {
            Some(t) => tokio::time::timeout(t, sent).await.ok(),
            None => Some(sent.await),
        };
        let (outcome, result) = match result {
            Some(Ok(resp)) => {
                let grpc = resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok()?.parse().ok());
                (
                    Outcome::Response(resp.status(), grpc),
                    Ok(resp.map(body::boxed)),
                )
            }
            Some(Err(e)) => {
                let connect = e.is_connect();
                let outcome = if connect {
                    Outcome::ConnectFailure
                } else {
                    Outcome::Reset
                };
                // On a TLS cluster, name what mTLS refused: the handshake (connect), or the
                // server refusing our certificate, which TLS 1.3 reports at the first read.
                let tls = match rt.tls {
                    Some(_) => TlsError::find_in(&e).filter(|t| connect || t.is_refused_by_peer()),
                    None => None,
                };
                let err = match tls {
                    Some(source) => Error::Tls {
                        cluster: rt.cluster.name.clone(),
                        endpoint: addr,
                        source: Box::new(source),
                    },
                    None => Error::Upstream {
                        cluster: rt.cluster.name.clone(),
                        endpoint: addr,
                        connect,
                        source: Box::new(e),
                    },
                };
                (outcome, Err(err))
            }
            None => (
                Outcome::Timeout,
                Err(Error::Timeout {
                    route: route.name.clone(),
                    timeout: per_try.unwrap_or_default(),
                }),
            ),
        };
        if let Some(cx) = &span {
            end_attempt(cx, &outcome, &result);
        }
        report(&rt, &pick, &outcome);
        // A failure is no evidence of speed: charge it at least a penalty latency, so an endpoint
        // that fails fast does not attract more traffic (Linkerd's penalty EWMA).
        let failed = matches!(outcome, Outcome::Response(s, g) if effective_status(s, g) >= 500)
            || outcome.is_failure_without_response();
        let latency = started.elapsed();
        pick.observe(if failed {
            latency.max(FAILURE_PENALTY)
        } else {
            latency
        });

        let retryable = retry.is_some_and(|r| {
            is_retryable(&r.retry_on, &r.retriable_status_codes, outcome)
                || result.as_ref().is_ok_and(|resp| {
                    retriable_by_headers(&r.retry_on, &r.retriable_headers, resp.headers())
                })
        });
        if !retryable || attempt >= attempts {
            if retryable
                && attempts > 1
                && let Some(ex) = ex.as_mut()
            {
                ex.flags
                    .insert(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
            }
            return result;
        }
        // Envoy: a retry the budget does not allow is not made; the caller gets this attempt's
        // result, so a failing cluster is not hit harder.
        let Some(permit) = rt.budget.try_retry() else {
            tracing::debug!(cluster = %rt.cluster.name, "retry budget exhausted; not retrying");
            metrics::counter!("mesh_retry_budget_exhausted_total", "cluster" => rt.cluster.name.clone())
                .increment(1);
            return result;
        };
        metrics::counter!("mesh_retries_total", "cluster" => rt.cluster.name.clone()).increment(1);
        _retry_permit = Some(permit);
        attempt += 1;
        avoid = Some(addr);
        if let Some(b) = &backoff {
            tokio::time::sleep(b.delay(attempt - 1, &mut rng)).await;
        }
    }
}

/// The HTTP status a response counts as for outlier detection and balancing: a gRPC status in
/// the headers (a trailers-only answer) as Envoy maps it (`grpcToHttpStatus`: UNAVAILABLE →
/// 503, DEADLINE_EXCEEDED → 504, INTERNAL/UNKNOWN/DATA_LOSS → 500, …), else the HTTP status.
fn effective_status(status: http::StatusCode, grpc: Option<u32>) -> u16 {
    match grpc {
        None | Some(0) => status.as_u16(),
        Some(1) => 499,
        Some(3 | 9 | 11) => 400,
        Some(4) => 504,
        Some(5) => 404,
        Some(6 | 10) => 409,
        Some(7) => 403,
        Some(8) => 429,
        Some(12) => 501,
        Some(14) => 503,
        Some(16) => 401,
        Some(_) => 500,
    }
}

/// Ends an attempt's span with what the attempt got.
fn end_attempt(
    cx: &opentelemetry::Context,
    outcome: &Outcome,
    result: &Result<Response<Body>, Error>,
) {
    match (outcome, result) {
        (Outcome::Response(status, grpc), _) => {
            Exchange::end_attempt(cx, status.as_u16(), *grpc, None)
        }
        (_, Err(e)) => Exchange::end_attempt(cx, e.http_status(), None, Some(&e.to_string())),
        (_, Ok(_)) => Exchange::end_attempt(cx, 0, None, Some("no response")),
    }
}

fn report(rt: &ClusterRuntime, pick: &crate::balance::Pick, outcome: &Outcome) {
    let Some(d) = &rt.outlier else { return };
    let (status, connect_failure) = match outcome {
        Outcome::Response(s, grpc) => (Some(effective_status(*s, *grpc)), false),
        Outcome::ConnectFailure => (None, true),
        _ => (Some(503), false),
    };
    d.report(pick.stats(), status, connect_failure, Instant::now());
}

/// The path (and query) after the route's prefix rewrite; without a rewrite, the request's own
/// (a reference-counted clone, no copy).
fn rewrite_path(route: &Route, f: &ForwardAction, uri: &Uri) -> Result<PathAndQuery, Error> {
    let original = || {
        uri.path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"))
    };
    let Some(new) = &f.prefix_rewrite else {
        return Ok(original());
    };
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let rewritten = match &route.matcher.path {
        PathMatch::Prefix(p) if pq.len() >= p.len() => format!("{new}{}", &pq[p.len()..]),
        PathMatch::Exact(p) if uri.path() == p => match uri.query() {
            Some(q) => format!("{new}?{q}"),
            None => new.clone(),
        },
        _ => return Ok(original()),
    };
    PathAndQuery::try_from(rewritten)
        .map_err(|e| Error::InvalidRequest(format!("rewritten path: {e}")))
}

fn endpoint_uri(authority: &Authority, path: &PathAndQuery) -> Result<Uri, Error> {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(http::uri::Scheme::HTTP);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(path.clone());
    Uri::from_parts(parts).map_err(|e| Error::InvalidRequest(e.to_string()))
}

/// `x-envoy-attempt-count` without formatting for the usual attempt numbers.
fn attempt_count(n: u32) -> HeaderValue {
    const STATIC: [&str; 6] = ["0", "1", "2", "3", "4", "5"];
    match STATIC.get(n as usize) {
        Some(s) => HeaderValue::from_static(s),
        None => HeaderValue::from(n),
    }
}

/// Fire and forget: a copy to the mirror cluster, its response discarded, never awaited. The
/// authority gets Envoy's `-shadow` suffix so the mirror can tell copies apart.
fn mirror(
    inner: &Inner,
    rt: Arc<ClusterRuntime>,
    parts: &http::request::Parts,
    host: &HeaderValue,
    path: &PathAndQuery,
    body: &mut Replay,
) {
    let Some(pick) = rt.balancer.pick(None, None) else {
        return;
    };
    let Some(b) = body.take() else { return };
    let mut out = Request::new(b);
    *out.method_mut() = parts.method.clone();
    *out.headers_mut() = parts.headers.clone();
    let Ok(uri) = endpoint_uri(&pick.stats().authority, path) else {
        return;
    };
    *out.uri_mut() = uri;
    let host = host.to_str().unwrap_or_default();
    let shadow = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => format!("{h}-shadow:{p}"),
        _ => format!("{host}-shadow"),
    };
    if let Ok(h) = HeaderValue::try_from(shadow) {
        out.headers_mut().insert(HOST, h);
    }
    if rt.cluster.tls.is_some() && rt.tls.is_none() {
        return;
    }
    let sent = match &rt.tls {
        Some(tls) => tls.http1.request(out),
        None => inner.http1.request(out),
    };
    tokio::spawn(async move {
        let _pick = pick;
        if let Ok(resp) = sent.await {
            // Drain so the connection returns to the pool.
            let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
        }
    });
}
