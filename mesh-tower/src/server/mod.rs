//! The server side: accept mutual-TLS connections (or, in PERMISSIVE mode, plaintext too on the
//! same port) and hand each request the verified identity of its peer.
//!
//! - [`serve`] / [`serve_with_shutdown`]: an accept loop that wraps any hyper, axum or tower
//!   service (`Service<http::Request<Incoming>>`), serving HTTP/1.1 and HTTP/2 on each
//!   connection, with [`PeerIdentity`](mesh_core::identity::PeerIdentity) in every request's
//!   extensions when the peer presented a verified certificate.
//! - [`serve_meshed`]: the same, following the workload's inbound listener from xDS
//!   (PeerAuthentication STRICT / PERMISSIVE / DISABLE, changed live).
//! - [`Acceptor`]: the handshake alone, for your own accept loop; with [`PeerIdentityLayer`] to
//!   put the connection's identity into each request.
//!
//! [`serve`] and [`Acceptor`] authenticate; authorization (which identities may call what) is
//! [`crate::authz::AuthzLayer`], which [`serve_meshed`] adds with the inbound listener's RBAC
//! filters.
//!
//! ```no_run
//! # async fn demo(identity: mesh_core::Snapshot<Option<mesh_core::identity::Svid>>) {
//! use mesh_core::identity::PeerIdentity;
//! use mesh_tower::server::{self, Acceptor, PeerAuthMode};
//!
//! let app = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
//!     let who = match req.extensions().get::<PeerIdentity>() {
//!         Some(PeerIdentity(id)) => format!("hello {id}"),
//!         None => "hello plaintext peer".to_string(),
//!     };
//!     Ok::<_, std::convert::Infallible>(http::Response::new(who))
//! });
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await.unwrap();
//! let acceptor = Acceptor::new(identity).mode(PeerAuthMode::Permissive);
//! server::serve(listener, acceptor, app).await;
//! # }
//! ```

mod accept;
mod error;
mod layer;
mod local;
mod meshed;
mod serve;

pub use accept::{Acceptor, DEFAULT_HANDSHAKE_TIMEOUT, PeerAuthMode, ServerStream};
pub use error::AcceptError;
pub use layer::{AddPeerIdentity, PeerIdentityLayer};
pub use local::{LocalBody, LocalFuture, LocalPolicy, LocalPolicyLayer, LocalPolicyService};
pub use meshed::serve_meshed;
pub use serve::{serve, serve_with_shutdown};
