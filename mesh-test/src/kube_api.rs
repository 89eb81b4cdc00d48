//! An in-process fake Kubernetes API server speaking the real HTTP list/watch protocol.
//!
//! No API server can run on this machine, so the Kubernetes source is tested against this one: a
//! loopback HTTP server that a stock `kube::Client` talks to as it would to a cluster. It keeps
//! objects as JSON per resource (`group/plural`), cluster-wide and per namespace, and speaks:
//! - `GET` of a collection: a `…List` with `metadata.resourceVersion`, paged by `limit` and
//!   `continue`;
//! - `GET …?watch=true&resourceVersion=N`: a chunked stream of `{"type","object"}` JSON lines
//!   (`ADDED`, `MODIFIED`, `DELETED`), with `BOOKMARK` events when `allowWatchBookmarks=true`,
//!   and `ERROR` with a 410 `Status` when `N` is older than the compaction point (then a client
//!   must list again);
//! - `GET`, `POST`, `PUT` (optimistic concurrency on `metadata.resourceVersion`, 409 on
//!   conflict), `PATCH` (JSON merge patch) and `DELETE` of one object, and of its `status`
//!   subresource, which changes only `status` and never `metadata.generation`.
//!
//! Tests change objects through the same HTTP API or directly ([`FakeApiServer::apply`],
//! [`FakeApiServer::delete`]) and force a relist with [`FakeApiServer::expire_watches`].
//! `POST …/tokenreviews` is answered by a function the test sets
//! ([`FakeApiServer::on_token_review`]).
//!
//! ```no_run
//! # async fn demo() {
//! let api = mesh_test::kube_api::FakeApiServer::start().await;
//! api.apply(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Service",
//!     "metadata": {"name": "web", "namespace": "default"},
//!     "spec": {"ports": [{"name": "http", "port": 80}]},
//! }));
//! let client: kube::Client = api.client();
//! # let _ = client;
//! # }
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, Infallible>;

/// A resource type: its API group (empty for core) and plural.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: String,
    /// Plural name, e.g. `services`.
    pub plural: String,
}

/// The kinds this server knows by name (for [`FakeApiServer::apply`] and list kinds).
const KINDS: [(&str, &str, &str); 18] = [
    ("", "Service", "services"),
    ("", "Pod", "pods"),
    ("", "Node", "nodes"),
    ("", "Secret", "secrets"),
    ("", "Event", "events"),
    ("discovery.k8s.io", "EndpointSlice", "endpointslices"),
    ("coordination.k8s.io", "Lease", "leases"),
    ("events.k8s.io", "Event", "events"),
    ("networking.istio.io", "VirtualService", "virtualservices"),
    ("networking.istio.io", "DestinationRule", "destinationrules"),
    ("networking.istio.io", "ServiceEntry", "serviceentries"),
    ("networking.istio.io", "WorkloadEntry", "workloadentries"),
    (
        "security.istio.io",
        "PeerAuthentication",
        "peerauthentications",
    ),
    (
        "security.istio.io",
        "AuthorizationPolicy",
        "authorizationpolicies",
    ),
    ("gateway.networking.k8s.io", "HTTPRoute", "httproutes"),
    ("gateway.networking.k8s.io", "GRPCRoute", "grpcroutes"),
    ("authentication.k8s.io", "TokenReview", "tokenreviews"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
    ),
];

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The resource of an object's `apiVersion` and `kind`.
pub fn resource_of(api_version: &str, kind: &str) -> Resource {
    let group = group_of(api_version);
    let plural = KINDS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map(|(_, _, p)| p.to_string())
        .unwrap_or_else(|| panic!("fake API server: unknown kind {api_version} {kind}"));
    Resource {
        group: group.to_string(),
        plural,
    }
}

fn kind_of(r: &Resource) -> &'static str {
    KINDS
        .iter()
        .find(|(g, _, p)| *g == r.group && *p == r.plural)
        .map_or("Object", |(_, k, _)| k)
}

/// Decides a `TokenReview`: gets the token and the requested audiences, returns the `status`.
pub type TokenReviewer = Arc<dyn Fn(&str, &[String]) -> Value + Send + Sync>;

/// Counters a test can assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Collection GETs (lists).
    pub lists: u64,
    /// Watch requests.
    pub watches: u64,
    /// BOOKMARK events sent.
    pub bookmarks: u64,
    /// 410 Gone errors sent to watchers.
    pub gone: u64,
}

struct Watcher {
    id: u64,
    resource: Resource,
    namespace: Option<String>,
    tx: mpsc::UnboundedSender<Bytes>,
}

#[derive(Default)]
struct State {
    rv: u64,
    /// Watches that resume from a resourceVersion below this get 410 Gone.
    compacted: u64,
    objects: BTreeMap<Resource, BTreeMap<(String, String), Value>>,
    /// Every change: (resourceVersion, resource, namespace, event line).
    log: Vec<(u64, Resource, String, Bytes)>,
    watchers: Vec<Watcher>,
    next_watcher: u64,
    stats: Stats,
    token_review: Option<TokenReviewer>,
}

/// The running fake API server; dropping it stops it.
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApiServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
        self.lock().watchers.clear();
    }
}

/// How often watch streams that asked for bookmarks get one.
const BOOKMARK_EVERY: Duration = Duration::from_millis(500);

impl FakeApiServer {
    /// Starts on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake API server: bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            rv: 1000,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, the cluster URL for a `kube::Config`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A `kube::Client` for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url().parse().expect("fake API server URL"));
        kube::Client::try_from(config).expect("kube client for the fake API server")
    }

    /// Creates or replaces `object` (by `apiVersion`, `kind`, namespace and name), as a client's
    /// create or update would; returns the stored object.
    pub fn apply(&self, object: Value) -> Value {
        let r = resource_of(
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        );
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("fake API server: metadata.name")
            .to_string();
        let mut st = self.lock();
        let existing = st
            .objects
            .get(&r)
            .and_then(|m| m.get(&(ns.clone(), name)))
            .cloned();
        match existing {
            Some(old) => st.replace(&r, old, object, false),
            None => st.create(&r, object),
        }
    }

    /// Deletes an object; true when it existed.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let r = resource_of(api_version, kind);
        self.lock().remove(&r, namespace, name).is_some()
    }

    /// The stored object, if any.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let r = resource_of(api_version, kind);
        self.lock()
            .objects
            .get(&r)
            .and_then(|m| m.get(&(namespace.to_string(), name.to_string())))
            .cloned()
    }

    /// Every stored object of a kind.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let r = resource_of(api_version, kind);
        self.lock()
            .objects
            .get(&r)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Compacts history to now: every open watch gets `ERROR` 410 Gone and is closed, and a
    /// watch that resumes from any earlier resourceVersion gets 410 too, so clients must list.
    pub fn expire_watches(&self) {
        let mut st = self.lock();
        st.compacted = st.rv + 1;
        let gone = gone_line();
        let n = st.watchers.len() as u64;
        for w in st.watchers.drain(..) {
            let _ = w.tx.send(gone.clone());
        }
        st.stats.gone += n;
    }

    /// Answers `TokenReview`s with `reviewer` (without it they get 403).
    pub fn on_token_review(&self, reviewer: TokenReviewer) {
        self.lock().token_review = Some(reviewer);
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }
}

fn gone_line() -> Bytes {
    line(&json!({"type": "ERROR", "object": status_body(
        StatusCode::GONE, "Expired", "too old resource version")}))
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn status_body(code: StatusCode, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    })
}

fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

impl State {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, r: &Resource, ns: &str, kind: &str, object: &Value) {
        let rv = self.rv;
        let l = line(&json!({"type": kind, "object": object}));
        self.log.push((rv, r.clone(), ns.to_string(), l.clone()));
        self.watchers.retain(|w| {
            if w.resource != *r || w.namespace.as_deref().is_some_and(|n| n != ns) {
                return !w.tx.is_closed();
            }
            w.tx.send(l.clone()).is_ok()
        });
    }

    fn create(&mut self, r: &Resource, mut object: Value) -> Value {
        let rv = self.next_rv();
        let meta = &mut object["metadata"];
        meta["resourceVersion"] = json!(rv.to_string());
        meta["uid"] = json!(format!("uid-{rv}"));
        meta["generation"] = json!(1);
        meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        let ns = meta["namespace"].as_str().unwrap_or_default().to_string();
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        self.objects
            .entry(r.clone())
            .or_default()
            .insert((ns.clone(), name), object.clone());
        self.record(r, &ns, "ADDED", &object);
        object
    }

    /// Replaces `old` by `new`: only `status` when `status_only`, else everything but `status`.
    fn replace(&mut self, r: &Resource, old: Value, mut new: Value, status_only: bool) -> Value {
        let mut stored = old.clone();
        if status_only {
            stored["status"] = new["status"].take();
        } else {
            let status = old.get("status").cloned();
            stored = new;
            stored["metadata"]["uid"] = old["metadata"]["uid"].clone();
            stored["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
            let mut generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            if stored.get("spec") != old.get("spec") {
                generation += 1;
            }
            stored["metadata"]["generation"] = json!(generation);
            match status {
                Some(s) => stored["status"] = s,
                None => {
                    if let Some(o) = stored.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        let rv = self.next_rv();
        stored["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = stored["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = stored["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.objects
            .entry(r.clone())
            .or_default()
            .insert((ns.clone(), name), stored.clone());
        self.record(r, &ns, "MODIFIED", &stored);
        stored
    }

    fn remove(&mut self, r: &Resource, ns: &str, name: &str) -> Option<Value> {
        let mut old = self
            .objects
            .get_mut(r)?
            .remove(&(ns.to_string(), name.to_string()))?;
        let rv = self.next_rv();
        old["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(r, ns, "DELETED", &old);
        Some(old)
    }
}

/// A parsed request path.
struct Target {
    resource: Resource,
    api_version: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (plural, name, status) = match rest {
        [p] => (*p, None, false),
        [p, n] => (*p, Some(n.to_string()), false),
        [p, n, "status"] => (*p, Some(n.to_string()), true),
        _ => return None,
    };
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(Target {
        resource: Resource {
            group: group.to_string(),
            plural: plural.to_string(),
        },
        api_version,
        namespace,
        name,
        status,
    })
}

fn query(req: &Request<Incoming>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.replace("%2F", "/")))
        .collect()
}

fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("response")
}

fn failure(code: StatusCode, reason: &str, message: impl Into<String>) -> Response<Body> {
    respond(code, &status_body(code, reason, &message.into()))
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Body> {
    let Some(t) = parse_path(req.uri().path()) else {
        return failure(StatusCode::NOT_FOUND, "NotFound", "unknown path");
    };
    let q = query(&req);
    let method = req.method().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    match (method, &t.name) {
        (Method::GET, None) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(&state, &t, &q)
        }
        (Method::GET, None) => list(&mut lock(), &t, &q),
        (Method::GET, Some(name)) => {
            let st = lock();
            match st
                .objects
                .get(&t.resource)
                .and_then(|m| m.get(&(t.namespace.clone().unwrap_or_default(), name.clone())))
            {
                Some(o) => respond(StatusCode::OK, o),
                None => not_found(&t, name),
            }
        }
        (Method::POST, None) if t.resource.plural == "tokenreviews" => {
            token_review(&lock(), parsed.unwrap_or_default())
        }
        (Method::POST, None) => {
            let Some(mut obj) = parsed else {
                return failure(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
            };
            let ns = t.namespace.clone().unwrap_or_default();
            obj["metadata"]["namespace"] = json!(ns);
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let name = if name.is_empty() {
                let prefix = obj["metadata"]["generateName"]
                    .as_str()
                    .unwrap_or("object-")
                    .to_string();
                let n = format!("{prefix}{}", lock().rv + 1);
                obj["metadata"]["name"] = json!(n);
                n
            } else {
                name
            };
            let mut st = lock();
            if st
                .objects
                .get(&t.resource)
                .is_some_and(|m| m.contains_key(&(ns.clone(), name.clone())))
            {
                return failure(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{} {name:?} already exists", t.resource.plural),
                );
            }
            respond(StatusCode::CREATED, &st.create(&t.resource, obj))
        }
        (m @ (Method::PUT | Method::PATCH), Some(name)) => {
            let Some(new) = parsed else {
                return failure(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
            };
            let mut st = lock();
            let key = (t.namespace.clone().unwrap_or_default(), name.clone());
            let Some(old) = st
                .objects
                .get(&t.resource)
                .and_then(|o| o.get(&key))
                .cloned()
            else {
                return not_found(&t, name);
            };
            let new = if m == Method::PATCH {
                let mut merged = old.clone();
                merge_patch(&mut merged, &new);
                merged
            } else {
                let want = new["metadata"]["resourceVersion"].as_str().unwrap_or("");
                if !want.is_empty() && Some(want) != old["metadata"]["resourceVersion"].as_str() {
                    return failure(
                        StatusCode::CONFLICT,
                        "Conflict",
                        format!(
                            "Operation cannot be fulfilled on {} {name:?}: the object has been \
                             modified; please apply your changes to the latest version and try again",
                            t.resource.plural
                        ),
                    );
                }
                new
            };
            respond(StatusCode::OK, &st.replace(&t.resource, old, new, t.status))
        }
        (Method::DELETE, Some(name)) => {
            let ns = t.namespace.clone().unwrap_or_default();
            match lock().remove(&t.resource, &ns, name) {
                Some(o) => respond(StatusCode::OK, &o),
                None => not_found(&t, name),
            }
        }
        _ => failure(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not supported",
        ),
    }
}

fn not_found(t: &Target, name: &str) -> Response<Body> {
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} {name:?} not found", t.resource.plural),
    )
}

fn token_review(st: &State, review: Value) -> Response<Body> {
    let Some(reviewer) = &st.token_review else {
        return failure(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "tokenreviews are not allowed",
        );
    };
    let token = review["spec"]["token"].as_str().unwrap_or_default();
    let audiences: Vec<String> = review["spec"]["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut out = review.clone();
    out["status"] = reviewer(token, &audiences);
    respond(StatusCode::CREATED, &out)
}

fn list(st: &mut State, t: &Target, q: &BTreeMap<String, String>) -> Response<Body> {
    st.stats.lists += 1;
    let all: Vec<Value> = st
        .objects
        .get(&t.resource)
        .map(|m| {
            m.iter()
                .filter(|((ns, _), _)| t.namespace.as_ref().is_none_or(|n| n == ns))
                .map(|(_, v)| v.clone())
                .collect()
        })
        .unwrap_or_default();
    let start: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(all.len());
    let items = all.get(start..end).unwrap_or_default();
    let mut metadata = json!({"resourceVersion": st.rv.to_string()});
    if end < all.len() {
        metadata["continue"] = json!(end.to_string());
    }
    respond(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", kind_of(&t.resource)),
            "apiVersion": t.api_version,
            "metadata": metadata,
            "items": items,
        }),
    )
}

fn watch(state: &Arc<Mutex<State>>, t: &Target, q: &BTreeMap<String, String>) -> Response<Body> {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.stats.watches += 1;
        if from != 0 && from < st.compacted {
            st.stats.gone += 1;
            let _ = tx.send(gone_line());
            drop(tx);
        } else {
            st.next_watcher += 1;
            let id = st.next_watcher;
            let from = if from == 0 { st.rv } else { from };
            for (rv, r, ns, l) in &st.log {
                if *rv > from && *r == t.resource && t.namespace.as_ref().is_none_or(|n| n == ns) {
                    let _ = tx.send(l.clone());
                }
            }
            if bookmarks {
                let (state, tx, t_kind, api_version) = (
                    state.clone(),
                    tx.clone(),
                    kind_of(&t.resource),
                    t.api_version.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(BOOKMARK_EVERY).await;
                        let rv = {
                            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                            // A watch closed by the server (410, shutdown) gets no more events.
                            if !st.watchers.iter().any(|w| w.id == id) {
                                return;
                            }
                            st.stats.bookmarks += 1;
                            st.rv
                        };
                        let l = line(&json!({"type": "BOOKMARK", "object": {
                            "kind": t_kind, "apiVersion": api_version,
                            "metadata": {"resourceVersion": rv.to_string()}}}));
                        if tx.send(l).is_err() {
                            return;
                        }
                    }
                });
            }
            st.watchers.push(Watcher {
                id,
                resource: t.resource.clone(),
                namespace: t.namespace.clone(),
                tx,
            });
        }
    }
    let stream = body_stream(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("response")
}

/// The receiver as a stream of body frames; it ends when every sender is gone.
fn body_stream(
    rx: mpsc::UnboundedReceiver<Bytes>,
) -> impl tokio_stream::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync + 'static {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(|b| Ok(Frame::data(b)))
}
