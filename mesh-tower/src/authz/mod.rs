//! Authorization on the server side: the RBAC filters of the workload's inbound listener
//! (Istio `AuthorizationPolicy`, sent as Envoy's RBAC HTTP filter) applied to every request.
//!
//! [`AuthzLayer`] reads the live list of filters from a `Snapshot<Vec<Rbac>>` once per request
//! (a lock-free load: a policy change applies to the next request, never to one in flight) and
//! runs them with Envoy's semantics ([`mesh_core::rbac::authorize`]): DENY policies first, then,
//! when the workload has ALLOW policies, a request none of them matches is refused.
//!
//! What a request is, for the policies:
//! - method, path (`:path`; `url_path` is the part before `?`), authority, headers;
//! - the peer's SPIFFE ID from the [`PeerIdentity`] extension the mTLS acceptor inserts; a
//!   plaintext request (PERMISSIVE mode) has none and never matches a principal;
//! - the local port and the peer's address from the [`ConnectionAddrs`] extension the accept
//!   loop inserts, or the port given to [`AuthzLayer::with_local_port`]; unknown, no port or
//!   address condition matches.
//!
//! A refused request never reaches the service. It is answered `403` with the body
//! `RBAC: access denied by policy <name>` (or `RBAC: access denied: no ALLOW policy matched`),
//! or, for gRPC (`content-type: application/grpc…`), `200` with `grpc-status: 7`
//! (PERMISSION_DENIED) and the same text in `grpc-message`, as a trailers-only response.
//!
//! Every decision counts in `mesh_authz_decisions_total{decision="allow"|"deny", policy}`, the
//! policy label being the deciding policy's name or empty (allowed with no ALLOW policy, or
//! denied because no ALLOW policy matched): bounded by the policies configured, never by
//! requests. Counter handles are registered when the set of filters changes, so the allow path
//! neither allocates nor hashes label sets; install the metrics recorder before serving. Denials
//! and matches of AUDIT (`Log`) policies are logged with `tracing` (target `mesh_tower::authz`)
//! naming the policy, the peer, the method and the path (without the query string).
//!
//! ```no_run
//! use mesh_core::Snapshot;
//! use mesh_core::rbac::Rbac;
//! use mesh_tower::authz::AuthzLayer;
//! use tower::ServiceBuilder;
//!
//! // Filled from the inbound listener's RBAC filters (or by hand); replaced on every update.
//! let policies: Snapshot<Vec<Rbac>> = Snapshot::new(Vec::new());
//! let app = tower::service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
//! });
//! let svc = ServiceBuilder::new()
//!     .layer(AuthzLayer::new(policies.clone()).with_local_port(8080))
//!     .service(app);
//! # let _ = svc;
//! ```
//!
//! [`PeerIdentity`]: mesh_core::identity::PeerIdentity

mod counters;
mod facts;
mod future;
mod layer;

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{Either, Full};
use mesh_core::rbac::Decision;

pub use future::ResponseFuture;
pub use layer::{Authz, AuthzLayer};

/// The body of an [`Authz`] response: the service's own, or the text of a refusal.
pub type AuthzBody<B> = Either<B, Full<Bytes>>;

/// The addresses of the connection a request arrived on. The server's accept loop puts it in
/// every request's extensions; authorization reads the local port (`destination_port`) and the
/// peer's address (`remote_ip`, `direct_remote_ip`) from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionAddrs {
    /// The local (server) address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
}

/// gRPC's PERMISSION_DENIED.
const GRPC_PERMISSION_DENIED: &str = "7";

/// The text of a refusal: `RBAC: access denied by policy <name>`, or `RBAC: access denied: no
/// ALLOW policy matched`.
pub fn denial_text(decision: &Decision<'_>) -> String {
    match decision.policy() {
        Some(p) => format!("RBAC: access denied by policy {}", p.name),
        None => "RBAC: access denied: no ALLOW policy matched".to_owned(),
    }
}

/// The answer to a refused request: 403 with [`denial_text`], or for gRPC a trailers-only
/// PERMISSION_DENIED carrying it in `grpc-message`.
pub fn denied_response(decision: &Decision<'_>, grpc: bool) -> Response<Full<Bytes>> {
    let text = denial_text(decision);
    if grpc {
        let mut r = Response::new(Full::new(Bytes::new()));
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert(
            "grpc-status",
            HeaderValue::from_static(GRPC_PERMISSION_DENIED),
        );
        if let Ok(v) = HeaderValue::from_str(&grpc_message(&text)) {
            h.insert("grpc-message", v);
        }
        r
    } else {
        let mut r = Response::new(Full::new(Bytes::from(text)));
        *r.status_mut() = StatusCode::FORBIDDEN;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`, are percent-encoded.
fn grpc_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
