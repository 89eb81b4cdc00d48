//! `DestinationRule` (networking.istio.io): subsets and client-side traffic policy of a host.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Deserialize;

use super::common::{check_export_to, check_host, check_percent};
use super::diagnostic::Findings;
use super::duration;

/// The `spec` of a `DestinationRule`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DestinationRule {
    /// Host of a `ServiceEntry` (short names are qualified with the namespace). Required.
    pub host: String,
    /// Policy of every cluster of the host. Default: Istio's defaults.
    pub traffic_policy: Option<TrafficPolicy>,
    /// Named subsets; each gets its own cluster per port. Default: none.
    pub subsets: Vec<Subset>,
    /// Accepted; values other than `*` are ignored with a warning.
    pub export_to: Vec<String>,
}

/// `subsets[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Subset {
    /// Name, unique in the rule. Required.
    pub name: String,
    /// Endpoints carrying all these labels belong to the subset. Default: all endpoints.
    pub labels: BTreeMap<String, String>,
    /// Overrides the rule's policy, each top-level field (`loadBalancer`, `connectionPool`,
    /// `outlierDetection`, `retryBudget`, `tls`) as a whole, as Istio does. Default: the rule's policy.
    pub traffic_policy: Option<TrafficPolicy>,
}

/// `trafficPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// Load-balancing algorithm. Default: `LEAST_REQUEST`.
    pub load_balancer: Option<LoadBalancer>,
    /// Connection and request limits (circuit breaking). Default: unlimited, as Istio.
    pub connection_pool: Option<ConnectionPool>,
    /// Passive ejection of failing endpoints. Default: none.
    pub outlier_detection: Option<OutlierDetectionSpec>,
    /// Limit on concurrent retries relative to active requests. Default: none.
    pub retry_budget: Option<RetryBudgetSpec>,
    /// TLS towards the host's endpoints. Default: none (plaintext).
    pub tls: Option<Box<ClientTls>>,
}

/// `trafficPolicy.tls`: `ISTIO_MUTUAL` (mTLS with the workload's mesh identity) or `DISABLE`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClientTls {
    /// `ISTIO_MUTUAL` or `DISABLE`; `SIMPLE` and `MUTUAL` (certificates from files) are refused.
    /// Required.
    pub mode: Option<String>,
    /// SPIFFE IDs the server may present (exact). Default: the identities of the host's
    /// endpoints (their `serviceAccount`s), else any identity of the trust domain.
    pub subject_alt_names: Vec<String>,
    /// SNI sent. Default: none.
    pub sni: Option<String>,
    /// Refused when true: the server's certificate is always verified.
    pub insecure_skip_verify: Option<bool>,
    /// Ignored with `ISTIO_MUTUAL` (as in Istio): the mesh identity is used.
    pub client_certificate: Option<String>,
    /// Ignored with `ISTIO_MUTUAL`.
    pub private_key: Option<String>,
    /// Ignored with `ISTIO_MUTUAL`.
    pub ca_certificates: Option<String>,
    /// Ignored with `ISTIO_MUTUAL`.
    pub credential_name: Option<String>,
}

impl ClientTls {
    /// True for `ISTIO_MUTUAL`.
    pub fn is_mutual(&self) -> bool {
        self.mode.as_deref() == Some("ISTIO_MUTUAL")
    }

    fn check(&self, at: &str, f: &mut Findings) {
        match self.mode.as_deref() {
            Some("ISTIO_MUTUAL" | "DISABLE") => {}
            Some(m @ ("SIMPLE" | "MUTUAL")) => f.error(
                format!("{at}.mode"),
                format!("{m} (certificates from files) is not supported; use ISTIO_MUTUAL for the mesh identity, or DISABLE"),
            ),
            Some(other) => f.error(
                format!("{at}.mode"),
                format!("{other:?} is not ISTIO_MUTUAL or DISABLE"),
            ),
            None => f.error(format!("{at}.mode"), "required (ISTIO_MUTUAL or DISABLE)"),
        }
        if self.insecure_skip_verify == Some(true) {
            f.error(
                format!("{at}.insecureSkipVerify"),
                "refused: the server's identity is always verified",
            );
        }
        for (i, san) in self.subject_alt_names.iter().enumerate() {
            if let Err(e) = san.parse::<mesh_core::identity::SpiffeId>() {
                f.error(format!("{at}.subjectAltNames[{i}]"), e.to_string());
            }
        }
        if self.is_mutual() {
            for (field, set) in [
                ("clientCertificate", self.client_certificate.is_some()),
                ("privateKey", self.private_key.is_some()),
                ("caCertificates", self.ca_certificates.is_some()),
                ("credentialName", self.credential_name.is_some()),
            ] {
                if set {
                    f.warn(
                        format!("{at}.{field}"),
                        "ignored with ISTIO_MUTUAL: the workload's mesh identity is used",
                    );
                }
            }
        }
    }
}

impl TrafficPolicy {
    /// `subset` over `self`: each top-level field set in `subset` replaces the whole field.
    pub fn merged_with(&self, subset: &TrafficPolicy) -> TrafficPolicy {
        TrafficPolicy {
            load_balancer: subset
                .load_balancer
                .clone()
                .or_else(|| self.load_balancer.clone()),
            connection_pool: subset
                .connection_pool
                .clone()
                .or_else(|| self.connection_pool.clone()),
            outlier_detection: subset
                .outlier_detection
                .clone()
                .or_else(|| self.outlier_detection.clone()),
            retry_budget: subset
                .retry_budget
                .clone()
                .or_else(|| self.retry_budget.clone()),
            tls: subset.tls.clone().or_else(|| self.tls.clone()),
        }
    }
}

/// `loadBalancer`: exactly one of `simple` and `consistentHash`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LoadBalancer {
    /// `ROUND_ROBIN`, `LEAST_REQUEST` (or `LEAST_CONN`), `RANDOM` or `UNSPECIFIED`;
    /// `PASSTHROUGH` is refused. Default: `LEAST_REQUEST`.
    pub simple: Option<String>,
    /// Consistent hashing (ring hash or Maglev). Default: none.
    pub consistent_hash: Option<ConsistentHash>,
}

/// `consistentHash`: one hash key and at most one algorithm.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsistentHash {
    /// Hash on this request header.
    pub http_header_name: Option<String>,
    /// Hash on this cookie.
    pub http_cookie: Option<HttpCookie>,
    /// Hash on the caller's address.
    pub use_source_ip: Option<bool>,
    /// Hash on this query parameter.
    pub http_query_parameter_name: Option<String>,
    /// Ring hash (the default algorithm).
    pub ring_hash: Option<RingHash>,
    /// Maglev instead of ring hash.
    pub maglev: Option<Maglev>,
    /// Deprecated form of `ringHash.minimumRingSize`.
    pub minimum_ring_size: Option<u64>,
}

/// `httpCookie`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HttpCookie {
    /// Cookie name. Required.
    pub name: String,
    /// Lifetime of a generated cookie. Default: no cookie is generated.
    #[serde(deserialize_with = "duration::option")]
    pub ttl: Option<Duration>,
}

/// `ringHash`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RingHash {
    /// Minimum ring size. Default: 1024.
    pub minimum_ring_size: Option<u64>,
}

/// `maglev` (`tableSize` is not supported and reported).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Maglev {}

/// `connectionPool`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConnectionPool {
    /// TCP settings.
    pub tcp: Option<TcpSettings>,
    /// HTTP settings.
    pub http: Option<HttpSettings>,
}

/// `connectionPool.tcp`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TcpSettings {
    /// Connections to the whole cluster; 0 means unset. Default: unlimited (2^32−1).
    pub max_connections: Option<u32>,
    /// Connect timeout. Default: 10 s.
    #[serde(deserialize_with = "duration::option")]
    pub connect_timeout: Option<Duration>,
}

/// `connectionPool.http`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HttpSettings {
    /// Requests waiting for a connection; 0 means unset. Default: unlimited (2^32−1).
    pub http1_max_pending_requests: Option<u32>,
    /// Requests in flight; 0 means unset. Default: unlimited (2^32−1).
    pub http2_max_requests: Option<u32>,
    /// Retries in flight; 0 means unset. Default: unlimited (2^32−1).
    pub max_retries: Option<u32>,
}

/// `outlierDetection`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OutlierDetectionSpec {
    /// Consecutive 5xx before ejection; 0 disables. Default: 5.
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    /// Consecutive 502/503/504 before ejection; 0 disables. Default: disabled.
    pub consecutive_gateway_errors: Option<u32>,
    /// Time between ejection sweeps. Default: 10 s.
    #[serde(deserialize_with = "duration::option")]
    pub interval: Option<Duration>,
    /// Base ejection time. Default: 30 s.
    #[serde(deserialize_with = "duration::option")]
    pub base_ejection_time: Option<Duration>,
    /// Largest share of endpoints ejected, percent; 0 means unset. Default: 10.
    pub max_ejection_percent: Option<u32>,
}

/// `retryBudget`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RetryBudgetSpec {
    /// Retries in flight as a percentage of active requests. Default: 20.
    pub percent: Option<f64>,
    /// Retries always allowed. Default: 3.
    pub min_retry_concurrency: Option<u32>,
}

impl DestinationRule {
    pub(crate) fn check(&self, f: &mut Findings) {
        check_host(&self.host, "spec.host", f);
        if let Some(p) = &self.traffic_policy {
            p.check("spec.trafficPolicy", f);
        }
        let mut names = HashSet::new();
        for (i, s) in self.subsets.iter().enumerate() {
            let at = format!("spec.subsets[{i}]");
            if s.name.is_empty() {
                f.error(format!("{at}.name"), "must not be empty");
            } else if s.name.contains('|') {
                f.error(format!("{at}.name"), "must not contain '|'");
            } else if !names.insert(s.name.as_str()) {
                f.error(
                    format!("{at}.name"),
                    format!("duplicate subset {:?}", s.name),
                );
            }
            if let Some(p) = &s.traffic_policy {
                p.check(&format!("{at}.trafficPolicy"), f);
            }
        }
        check_export_to(&self.export_to, f);
    }
}

impl TrafficPolicy {
    fn check(&self, at: &str, f: &mut Findings) {
        if let Some(lb) = &self.load_balancer {
            let at = format!("{at}.loadBalancer");
            if lb.simple.is_some() && lb.consistent_hash.is_some() {
                f.error(at.clone(), "set only one of simple, consistentHash");
            }
            match lb.simple.as_deref() {
                None
                | Some("UNSPECIFIED" | "ROUND_ROBIN" | "LEAST_REQUEST" | "LEAST_CONN" | "RANDOM") => {}
                Some("PASSTHROUGH") => f.error(
                    format!("{at}.simple"),
                    "PASSTHROUGH is not supported (there is no original destination without a proxy)",
                ),
                Some(other) => f.error(
                    format!("{at}.simple"),
                    format!("{other:?} is not ROUND_ROBIN, LEAST_REQUEST or RANDOM"),
                ),
            }
            if let Some(ch) = &lb.consistent_hash {
                check_consistent_hash(ch, &format!("{at}.consistentHash"), f);
            }
        }
        if let Some(tcp) = self.connection_pool.as_ref().and_then(|c| c.tcp.as_ref())
            && tcp.connect_timeout == Some(Duration::ZERO)
        {
            f.error(
                format!("{at}.connectionPool.tcp.connectTimeout"),
                "must be at least 1ms",
            );
        }
        if let Some(o) = &self.outlier_detection {
            let at = format!("{at}.outlierDetection");
            if o.interval == Some(Duration::ZERO) {
                f.error(format!("{at}.interval"), "must be at least 1ms");
            }
            if o.max_ejection_percent.is_some_and(|p| p > 100) {
                f.error(format!("{at}.maxEjectionPercent"), "must be within 0–100");
            }
        }
        if let Some(p) = self.retry_budget.as_ref().and_then(|b| b.percent) {
            check_percent(p, &format!("{at}.retryBudget.percent"), f);
        }
        if let Some(tls) = &self.tls {
            tls.check(&format!("{at}.tls"), f);
        }
    }
}

fn check_consistent_hash(ch: &ConsistentHash, at: &str, f: &mut Findings) {
    let keys = [
        ch.http_header_name.is_some(),
        ch.http_cookie.is_some(),
        ch.use_source_ip == Some(true),
        ch.http_query_parameter_name.is_some(),
    ];
    match keys.iter().filter(|k| **k).count() {
        0 => f.error(
            at,
            "one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName is required",
        ),
        1 => {}
        _ => f.error(
            at,
            "set only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName",
        ),
    }
    if ch.http_cookie.as_ref().is_some_and(|c| c.name.is_empty()) {
        f.error(format!("{at}.httpCookie.name"), "must not be empty");
    }
    if ch.maglev.is_some() && (ch.ring_hash.is_some() || ch.minimum_ring_size.is_some()) {
        f.error(at, "set only one of ringHash, maglev");
    }
    let ring = ch
        .ring_hash
        .as_ref()
        .and_then(|r| r.minimum_ring_size)
        .or(ch.minimum_ring_size);
    if ring.is_some_and(|r| r > 8 * 1024 * 1024) {
        f.error(
            format!("{at}.ringHash.minimumRingSize"),
            "must not exceed 8388608",
        );
    }
}
