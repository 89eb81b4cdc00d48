//! What the debug views ([`crate::debug`]) read from a client: the live state of its clusters,
//! and the listener name a request is routed by. Read-only; nothing here is on the request path.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use http::Request;

use crate::balance::BalancerKind;
use crate::endpoint::EndpointStats;

use super::{Client, has_port, with_default_port};

/// The live state of one cluster of a client.
#[derive(Debug)]
pub(crate) struct LiveCluster {
    /// The algorithm its balancer runs.
    pub(crate) balancer: BalancerKind,
    /// Every endpoint's live statistics (in flight, EWMA, ejection), once per address.
    pub(crate) endpoints: Vec<Arc<EndpointStats>>,
    /// Requests in flight (the circuit breaker's count).
    pub(crate) requests: u32,
    /// Retries in flight.
    pub(crate) retries: u32,
    /// Requests waiting for a connection.
    pub(crate) pending: u32,
    /// Endpoints outlier detection counts as ejected; `None` without outlier detection.
    pub(crate) ejected: Option<u32>,
}

impl Client {
    /// The live state of every cluster of the client's newest state, by cluster name.
    pub(crate) fn live_clusters(&self) -> BTreeMap<String, LiveCluster> {
        let set = self.inner.current();
        set.clusters
            .iter()
            .map(|(name, rt)| {
                let live = LiveCluster {
                    balancer: rt.balancer.kind().clone(),
                    endpoints: rt.balancer.endpoints().to_vec(),
                    requests: rt.breaker.requests(),
                    retries: rt.breaker.retries(),
                    pending: rt.breaker.pending(),
                    ejected: rt.outlier.as_ref().map(|d| d.ejected_count()),
                };
                (name.clone(), live)
            })
            .collect()
    }
}

/// The authority of `req` (the URI's, else the `Host` header) and the listener name the client
/// looks up for it: the authority itself when it has a port, else with the scheme's default port
/// (443 for `https`, else 80). `None` without an authority.
pub(crate) fn target<B>(req: &Request<B>) -> Option<(&str, Cow<'_, str>)> {
    let authority = crate::route::authority(req)?;
    let target = if has_port(authority) {
        Cow::Borrowed(authority)
    } else {
        Cow::Owned(with_default_port(authority, req.uri().scheme_str()))
    };
    Some((authority, target))
}
