//! A request as RBAC sees it, borrowed from the `http::Request` without copying.

use std::borrow::Cow;

use http::Request;
use mesh_core::identity::PeerIdentity;
use mesh_core::rbac::{HeaderSource, RequestFacts};

use super::ConnectionAddrs;
use crate::route::matching::joined_header;

/// The request's header map as RBAC's [`HeaderSource`]: repeated headers joined with `,`.
pub(super) struct Headers<'a>(pub(super) &'a http::HeaderMap);

impl HeaderSource for Headers<'_> {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        joined_header(self.0, name)
    }
}

/// The facts of `req`; `headers` must wrap `req.headers()`. The port and address come from
/// [`ConnectionAddrs`] when present, else the port is `local_port`.
pub(super) fn of<'a, B>(
    req: &'a Request<B>,
    headers: &'a Headers<'a>,
    local_port: Option<u16>,
) -> RequestFacts<'a> {
    let addrs = req.extensions().get::<ConnectionAddrs>();
    RequestFacts {
        method: req.method().as_str(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path(), |p| p.as_str()),
        authority: crate::route::authority(req),
        headers,
        peer: req.extensions().get::<PeerIdentity>().map(|p| p.0.as_uri()),
        local_port: addrs.map(|a| a.local.port()).or(local_port),
        remote_ip: addrs.map(|a| a.remote.ip()),
    }
}

/// True for gRPC requests (`content-type: application/grpc`, `application/grpc+proto`, …).
pub(super) fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}
