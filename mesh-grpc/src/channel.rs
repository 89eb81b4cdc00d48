//! [`Channel`]: a tonic channel for `xds:///<host>:<port>` targets, sending every call through
//! the mesh client stack.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery};
use mesh_core::Snapshot;
use mesh_core::identity::Svid;
use mesh_tower::client::Body;
use mesh_xds_client::{Target, XdsClient};
use tonic::{Code, Status};

use crate::body::prefetch;
use crate::error::to_status;

/// Calls whose request messages add up to at most this many bytes when the call starts are
/// buffered so they can be retried (gRFC A44's per-call buffer limit).
pub const DEFAULT_RETRY_BUFFER: usize = 64 * 1024;

/// Why a channel could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The target is not `xds:///<host>:<port>` (or `<host>:<port>`).
    #[error("invalid target {target:?}: {reason}")]
    InvalidTarget {
        /// The target given.
        target: String,
        /// Why.
        reason: String,
    },
    /// No xDS bootstrap in the environment (for [`crate::channel`]).
    #[error("no xDS bootstrap: {0}")]
    Bootstrap(String),
}

/// A gRPC channel through the mesh: every tonic-generated client accepts it
/// (`EchoClient::new(channel)`). Each call is routed on its `/package.Service/Method` path and
/// headers by the target's route table, balanced, retried by `grpc-status` as the route's retry
/// policy says (unary and ready-made calls; never once a streamed request has started), bounded
/// by its `grpc-timeout` deadline, and sent over mTLS when the cluster asks for it.
///
/// Cheap to clone. Holds the target's xDS subscription for as long as a clone lives.
#[derive(Clone)]
pub struct Channel {
    client: mesh_tower::Client,
    authority: Authority,
    /// The `Host` every call carries (the target), made once.
    host: http::HeaderValue,
    _subscription: Option<Arc<Target>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Channel`] on an xDS client.
#[derive(Debug)]
pub struct ChannelBuilder {
    xds: XdsClient,
    identity: Option<Snapshot<Option<Svid>>>,
}

impl ChannelBuilder {
    /// The workload's certificate, for clusters with mTLS. Default: none (such clusters fail
    /// with UNAVAILABLE naming the missing identity).
    pub fn identity(mut self, identity: Snapshot<Option<Svid>>) -> Self {
        self.identity = Some(identity);
        self
    }

    /// A channel to `target` (`xds:///host:port` or `host:port`), subscribing to it.
    pub fn connect(self, target: &str) -> Result<Channel, ChannelError> {
        let authority = parse_target(target)?;
        let subscription = self.xds.subscribe(authority.as_str());
        let mut client = mesh_tower::Client::builder(self.xds.state().resources().clone());
        if let Some(identity) = self.identity {
            client = client.identity(identity);
        }
        Ok(Channel {
            client: client.build(),
            host: host_of(&authority),
            authority,
            _subscription: Some(Arc::new(subscription)),
        })
    }
}

impl Channel {
    /// A builder on `xds`'s live state.
    pub fn builder(xds: &XdsClient) -> ChannelBuilder {
        ChannelBuilder {
            xds: xds.clone(),
            identity: None,
        }
    }

    /// A channel on a [`MeshState`](mesh_xds_client::MeshState) (with `identity` for mTLS
    /// clusters); the target must be subscribed by whoever owns the xDS client
    /// (`xds.subscribe("host:port")`, kept alive as long as the channel is used).
    pub fn from_state(
        state: &mesh_xds_client::MeshState,
        identity: Option<Snapshot<Option<Svid>>>,
        target: &str,
    ) -> Result<Channel, ChannelError> {
        let mut client = mesh_tower::Client::builder(state.resources().clone());
        if let Some(identity) = identity {
            client = client.identity(identity);
        }
        Channel::from_client(client.build(), target)
    }

    /// A channel on a mesh client you built (static configs, tests); the target must be
    /// subscribed by whoever feeds the client's state.
    pub fn from_client(client: mesh_tower::Client, target: &str) -> Result<Channel, ChannelError> {
        let authority = parse_target(target)?;
        Ok(Channel {
            client,
            host: host_of(&authority),
            authority,
            _subscription: None,
        })
    }
}

/// A channel for `target` on a process-wide xDS client started from the environment's bootstrap
/// (`MESH_XDS_BOOTSTRAP`, else `GRPC_XDS_BOOTSTRAP` as grpcio and grpc-go read it, else
/// `GRPC_XDS_BOOTSTRAP_CONFIG`). Must be called inside a tokio runtime.
pub fn channel(target: &str) -> Result<Channel, ChannelError> {
    static XDS: OnceLock<Result<XdsClient, String>> = OnceLock::new();
    let xds = XDS
        .get_or_init(|| XdsClient::from_env().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ChannelError::Bootstrap(e.clone()))?;
    Channel::builder(xds).connect(target)
}

fn host_of(authority: &Authority) -> http::HeaderValue {
    // An authority is always a valid header value.
    http::HeaderValue::from_str(authority.as_str()).unwrap_or(http::HeaderValue::from_static(""))
}

fn parse_target(target: &str) -> Result<Authority, ChannelError> {
    let invalid = |reason: &str| ChannelError::InvalidTarget {
        target: target.to_string(),
        reason: reason.to_string(),
    };
    let name = target.strip_prefix("xds:///").unwrap_or(target);
    if name.contains('/') || !name.contains(':') {
        return Err(invalid("expected xds:///<host>:<port>"));
    }
    Authority::try_from(name).map_err(|e| invalid(&e.to_string()))
}

impl tower::Service<http::Request<tonic::body::Body>> for Channel {
    type Response = http::Response<Body>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Status>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let client = self.client.clone();
        let authority = self.authority.clone();
        let host = self.host.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            parts.headers.insert(http::header::HOST, host);
            let mut uri = http::uri::Parts::default();
            uri.scheme = Some(http::uri::Scheme::HTTP);
            uri.authority = Some(authority);
            uri.path_and_query = Some(
                parts
                    .uri
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/")),
            );
            parts.uri = http::Uri::from_parts(uri)
                .map_err(|e| Status::internal(format!("call URI: {e}")))?;
            parts.version = http::Version::HTTP_2;
            // gRFC A31: the call's own deadline bounds it, retries included.
            let deadline = parts
                .headers
                .get("grpc-timeout")
                .and_then(|v| crate::timeout::parse(v.to_str().ok()?));
            let body = prefetch(body, DEFAULT_RETRY_BUFFER)?;
            let send = client.request(http::Request::from_parts(parts, body));
            let resp = match deadline {
                Some(d) => tokio::time::timeout(d, send)
                    .await
                    .map_err(|_| deadline_exceeded(d))?,
                None => send.await,
            }
            .map_err(|e| to_status(&e))?;
            non_grpc_answer(&resp).map_or(Ok(resp), Err)
        })
    }
}

fn deadline_exceeded(d: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the call's deadline of {d:?} expired in the mesh client"
    ))
}

/// A local answer of the mesh (breaker overflow, rate limit, HTTP-status fault) or a non-gRPC
/// upstream response, as the status gRPC gives it (the HTTP → gRPC mapping of the gRPC spec),
/// with a message that says why.
fn non_grpc_answer(resp: &http::Response<Body>) -> Option<Status> {
    let h = resp.headers();
    if h.contains_key("grpc-status") {
        return None;
    }
    let grpc = h
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc && resp.status() == http::StatusCode::OK {
        return None;
    }
    let code = match resp.status().as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    let why = if let Some(limit) = h.get(mesh_tower::breaker::OVERFLOW_HEADER) {
        format!(
            "circuit breaker overflow: {} reached",
            limit.to_str().unwrap_or("a limit")
        )
    } else if h.contains_key("x-mesh-fault") {
        "fault injected".to_string()
    } else if h.contains_key(http::header::RETRY_AFTER) {
        "local rate limit".to_string()
    } else {
        format!("HTTP status {} from the upstream", resp.status())
    };
    Some(Status::new(code, why))
}
