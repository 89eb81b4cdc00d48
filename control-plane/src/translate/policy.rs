//! `DestinationRule` → cluster policies: load balancing, circuit breakers, outlier detection,
//! and the hash policies that routes to hashed clusters must carry.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_core::StringMatch;
use mesh_core::Validate;
use mesh_core::cluster::{
    CircuitBreakers, Cluster, LbPolicy, OutlierDetection, RetryBudget, UpstreamTls,
};
use mesh_core::route::HashPolicy;

use super::registry::Registry;
use crate::config::destination_rule::{ConsistentHash, TrafficPolicy};
use crate::config::{DestinationRule, Diagnostic, Document, Kind, Severity};

/// Istio's circuit-breaker thresholds when a `DestinationRule` is silent: every limit at 2^32−1,
/// i.e. no circuit breaking (Envoy's own defaults, 1024 and 3 retries, are deliberately replaced).
pub fn istio_default_circuit_breakers() -> CircuitBreakers {
    CircuitBreakers {
        max_connections: u32::MAX,
        max_pending_requests: u32::MAX,
        max_requests: u32::MAX,
        max_retries: u32::MAX,
        retry_budget: None,
    }
}

/// Envoy's ring-hash upper bound (8M entries).
const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;
/// Istio's default minimum ring size.
const DEFAULT_RING_SIZE: u64 = 1024;

/// The policy part of a cluster, from a (merged) traffic policy.
#[derive(Debug, Clone)]
pub(crate) struct ClusterPolicy {
    lb: LbPolicy,
    circuit_breakers: CircuitBreakers,
    outlier: Option<OutlierDetection>,
    connect_timeout: Option<Duration>,
    pub(crate) hash: Vec<HashPolicy>,
    /// `ISTIO_MUTUAL`: mTLS with these SNI and server identities (empty: the endpoints' own).
    pub(crate) tls: Option<UpstreamTls>,
}

impl Default for ClusterPolicy {
    fn default() -> Self {
        ClusterPolicy::from_traffic_policy(&TrafficPolicy::default())
    }
}

impl ClusterPolicy {
    fn from_traffic_policy(tp: &TrafficPolicy) -> Self {
        let (lb, hash) = match &tp.load_balancer {
            Some(lb) => match &lb.consistent_hash {
                Some(ch) => consistent_hash(ch),
                None => (simple(lb.simple.as_deref()), Vec::new()),
            },
            None => (LbPolicy::default(), Vec::new()),
        };
        let mut cb = istio_default_circuit_breakers();
        let mut connect_timeout = None;
        if let Some(pool) = &tp.connection_pool {
            let set = |target: &mut u32, v: Option<u32>| {
                if let Some(v) = v.filter(|v| *v > 0) {
                    *target = v;
                }
            };
            if let Some(tcp) = &pool.tcp {
                set(&mut cb.max_connections, tcp.max_connections);
                connect_timeout = tcp.connect_timeout;
            }
            if let Some(http) = &pool.http {
                set(
                    &mut cb.max_pending_requests,
                    http.http1_max_pending_requests,
                );
                set(&mut cb.max_requests, http.http2_max_requests);
                set(&mut cb.max_retries, http.max_retries);
            }
        }
        if let Some(b) = &tp.retry_budget {
            let d = RetryBudget::default();
            cb.retry_budget = Some(RetryBudget {
                budget_percent: b.percent.unwrap_or(d.budget_percent),
                min_retry_concurrency: b.min_retry_concurrency.unwrap_or(d.min_retry_concurrency),
            });
        }
        let outlier = tp.outlier_detection.as_ref().map(|o| {
            let d = OutlierDetection::default();
            let base = o.base_ejection_time.unwrap_or(d.base_ejection_time);
            OutlierDetection {
                consecutive_5xx: match o.consecutive_5xx_errors {
                    None => d.consecutive_5xx,
                    Some(0) => None,
                    Some(n) => Some(n),
                },
                consecutive_gateway_failure: o.consecutive_gateway_errors.filter(|n| *n > 0),
                interval: o.interval.unwrap_or(d.interval),
                base_ejection_time: base,
                // Envoy's default: max(300 s, base ejection time).
                max_ejection_time: d.max_ejection_time.max(base),
                max_ejection_percent: o
                    .max_ejection_percent
                    .filter(|p| *p > 0)
                    .unwrap_or(d.max_ejection_percent),
                ..d
            }
        });
        let tls = tp
            .tls
            .as_ref()
            .filter(|t| t.is_mutual())
            .map(|t| UpstreamTls {
                sni: t.sni.clone(),
                san_matchers: t
                    .subject_alt_names
                    .iter()
                    .map(|s| StringMatch::Exact(s.clone()))
                    .collect(),
            });
        ClusterPolicy {
            lb,
            circuit_breakers: cb,
            outlier,
            connect_timeout,
            hash,
            tls,
        }
    }

    /// A cluster named `name` (EDS under the same name) with this policy.
    pub(crate) fn cluster(&self, name: &str) -> Cluster {
        let mut c = Cluster::new(name);
        c.lb_policy = self.lb.clone();
        c.circuit_breakers = self.circuit_breakers.clone();
        c.outlier_detection = self.outlier.clone();
        if let Some(t) = self.connect_timeout {
            c.connect_timeout = t;
        }
        c.tls = self.tls.clone();
        c
    }
}

fn simple(name: Option<&str>) -> LbPolicy {
    match name {
        Some("ROUND_ROBIN") => LbPolicy::RoundRobin,
        Some("RANDOM") => LbPolicy::Random,
        // UNSPECIFIED, LEAST_REQUEST, LEAST_CONN: Istio's default.
        _ => LbPolicy::default(),
    }
}

fn consistent_hash(ch: &ConsistentHash) -> (LbPolicy, Vec<HashPolicy>) {
    let lb = if ch.maglev.is_some() {
        LbPolicy::Maglev
    } else {
        let min = ch
            .ring_hash
            .as_ref()
            .and_then(|r| r.minimum_ring_size)
            .or(ch.minimum_ring_size)
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_RING_SIZE);
        LbPolicy::RingHash {
            minimum_ring_size: min,
            maximum_ring_size: MAX_RING_SIZE,
        }
    };
    let hash = if let Some(h) = &ch.http_header_name {
        HashPolicy::Header(h.to_ascii_lowercase())
    } else if let Some(c) = &ch.http_cookie {
        HashPolicy::Cookie {
            name: c.name.clone(),
            ttl: c.ttl,
        }
    } else if let Some(q) = &ch.http_query_parameter_name {
        HashPolicy::QueryParam(q.clone())
    } else {
        HashPolicy::SourceIp
    };
    (lb, vec![hash])
}

/// The accepted `DestinationRule` of one host.
#[derive(Debug)]
pub(crate) struct HostPolicy<'a> {
    pub(crate) base: ClusterPolicy,
    /// Subsets in document order: name, labels, merged policy.
    pub(crate) subsets: Vec<(&'a str, &'a BTreeMap<String, String>, ClusterPolicy)>,
}

/// Accepted `DestinationRule`s by resolved host.
#[derive(Debug, Default)]
pub(crate) struct Policies<'a> {
    pub(crate) by_host: BTreeMap<String, HostPolicy<'a>>,
    owners: BTreeMap<String, &'a Document>,
}

impl<'a> Policies<'a> {
    pub(crate) fn build(
        docs: &'a [Document],
        reg: &Registry<'a>,
        diags: &mut Vec<Diagnostic>,
    ) -> Self {
        let mut out = Policies::default();
        for doc in docs {
            if let Kind::DestinationRule(dr) = &doc.kind {
                out.add(doc, dr, reg, diags);
            }
        }
        out
    }

    fn add(
        &mut self,
        doc: &'a Document,
        dr: &'a DestinationRule,
        reg: &Registry<'a>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let host = match reg.resolve(&dr.host, &doc.namespace) {
            Ok(h) => h,
            Err(why) => {
                diags.push(doc.diagnostic(Severity::Error, "spec.host", why));
                return;
            }
        };
        if let Some(earlier) = self.owners.get(&host) {
            diags.push(doc.diagnostic(
                Severity::Error,
                "spec.host",
                format!(
                    "host {host} already has {} ({}, document {}); only the first applies",
                    earlier.describe(),
                    earlier.source.file.display(),
                    earlier.source.index
                ),
            ));
            return;
        }
        let top = dr.traffic_policy.clone().unwrap_or_default();
        let base = ClusterPolicy::from_traffic_policy(&top);
        let subsets: Vec<_> = dr
            .subsets
            .iter()
            .map(|s| {
                let merged = match &s.traffic_policy {
                    Some(sp) => top.merged_with(sp),
                    None => top.clone(),
                };
                (
                    s.name.as_str(),
                    &s.labels,
                    ClusterPolicy::from_traffic_policy(&merged),
                )
            })
            .collect();
        // Validate every cluster this rule produces before accepting it.
        let mut failed = false;
        for port in reg.ports(&host) {
            let candidates = std::iter::once(("spec.trafficPolicy".to_string(), None, &base))
                .chain(
                    subsets
                        .iter()
                        .enumerate()
                        .map(|(i, (name, _, p))| (format!("spec.subsets[{i}]"), Some(*name), p)),
                );
            for (field, subset, policy) in candidates {
                let name = mesh_core::cluster_name(&host, port, subset);
                if let Err(e) = policy.cluster(&name).validate() {
                    diags.push(doc.diagnostic(
                        Severity::Error,
                        field,
                        format!("cluster {name}: {e}"),
                    ));
                    failed = true;
                }
            }
        }
        if !failed {
            self.owners.insert(host.clone(), doc);
            self.by_host.insert(host, HostPolicy { base, subsets });
        }
    }

    /// The policy of `host`'s `subset` (or of the host) — `None` when the subset is unknown.
    pub(crate) fn policy(&self, host: &str, subset: Option<&str>) -> Option<&ClusterPolicy> {
        match (self.by_host.get(host), subset) {
            (None, None) => None,
            (Some(p), None) => Some(&p.base),
            (Some(p), Some(s)) => p
                .subsets
                .iter()
                .find(|(n, _, _)| *n == s)
                .map(|(_, _, p)| p),
            (None, Some(_)) => None,
        }
    }

    /// True when `subset` of `host` is defined.
    pub(crate) fn has_subset(&self, host: &str, subset: &str) -> bool {
        self.policy(host, Some(subset)).is_some()
    }

    /// Hash policies routes to this cluster must carry.
    pub(crate) fn hash_policies(&self, host: &str, subset: Option<&str>) -> &[HashPolicy] {
        self.policy(host, subset)
            .map(|p| p.hash.as_slice())
            .unwrap_or(&[])
    }
}
