//! The Kubernetes source: the control plane as a cluster citizen.
//!
//! [`KubeSource::start`] runs one kube-rs watcher per kind of [`kinds::KINDS`] into a shared
//! watch cache ([`store`]):
//! - `Service`, `EndpointSlice` and `Pod` become one `ServiceEntry` per Service ([`services`]);
//! - Istio's `ServiceEntry`, `WorkloadEntry`, `DestinationRule`, `VirtualService`,
//!   `PeerAuthentication`, `AuthorizationPolicy` and Gateway API's `HTTPRoute` and `GRPCRoute`
//!   are read by the same parser as the directory source ([`documents`]), so the same document
//!   yields the same xDS from both.
//!
//! With a CA, workloads authenticate their first CSR with a projected service account token,
//! checked with the TokenReview API ([`token_review`]), and every replica signs with the same
//! CA, kept in a Secret ([`ca_secret`]).
//!
//! Pods labelled `meshlib.dev/inject: "true"` get the gRPC xDS bootstrap, the trust bundle and a
//! projected token from a mutating webhook ([`inject`], [`webhook`]).
//!
//! Every replica serves xDS from its own cache. One replica, elected on a Lease ([`lease`]),
//! writes status conditions back to each custom resource and an Event when one is rejected
//! ([`status`]).
//!
//! A watch that fails (a CRD that is not installed, no permission) is retried with backoff and
//! does not hold the others back; after a `410 Gone` the watcher lists again, and the cache is
//! swapped whole when the list completes, so nothing is lost or left behind.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use control_plane::k8s::KubeOptions;
//! use control_plane::server::{ControlPlane, Options};
//! let client = kube::Client::try_default().await?;
//! let cp = ControlPlane::start(Options {
//!     kubernetes: Some(KubeOptions::new(client, "mesh-system", "replica-0")),
//!     ..Options::default()
//! })
//! .await?;
//! # drop(cp); Ok(()) }
//! ```

pub mod ca_secret;
pub mod documents;
pub mod inject;
pub mod kinds;
pub mod lease;
pub mod services;
pub mod status;
pub mod store;
pub mod token_review;
pub mod webhook;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Diagnostic, LoadedConfig};
use kinds::KINDS;
use store::Store;

/// How to run the Kubernetes source.
#[derive(Clone)]
pub struct KubeOptions {
    /// The API server client (in-cluster config, a kubeconfig, or a test's fake server).
    pub client: kube::Client,
    /// The control plane's own namespace (its Lease lives there).
    pub namespace: String,
    /// This replica's name: the Lease holder identity and the Events' reporting instance.
    pub replica: String,
    /// The Lease that elects the status writer. Default: `mesh-control-plane-leader`.
    pub lease_name: String,
    /// Lease duration; the leader renews every third of it. Default: 15 s.
    pub lease_duration: Duration,
    /// The cluster's DNS domain for Service hosts. Default: `cluster.local`.
    pub cluster_domain: String,
    /// Write status conditions and Events (when leader). Default: true.
    pub write_status: bool,
    /// Keep the CA's root and key in this Secret of [`KubeOptions::namespace`], created on first
    /// start ([`ca_secret`]); used when the control plane runs a CA. Default: none.
    pub ca_secret: Option<String>,
    /// The audience a service account token must be bound to for the CA to accept it
    /// ([`token_review`]). Default: `istio-ca`.
    pub token_audience: String,
    /// Serve the injection webhook ([`inject`]); needs the CA. Default: none.
    pub injection: Option<inject::InjectionOptions>,
}

impl std::fmt::Debug for KubeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeOptions")
            .field("namespace", &self.namespace)
            .field("replica", &self.replica)
            .field("lease_name", &self.lease_name)
            .field("lease_duration", &self.lease_duration)
            .field("cluster_domain", &self.cluster_domain)
            .field("write_status", &self.write_status)
            .field("ca_secret", &self.ca_secret)
            .field("token_audience", &self.token_audience)
            .field("injection", &self.injection)
            .finish_non_exhaustive()
    }
}

impl KubeOptions {
    /// Defaults for a replica named `replica` in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, replica: &str) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            replica: replica.into(),
            lease_name: "mesh-control-plane-leader".into(),
            lease_duration: Duration::from_secs(15),
            cluster_domain: "cluster.local".into(),
            write_status: true,
            ca_secret: None,
            token_audience: token_review::DEFAULT_AUDIENCE.into(),
            injection: None,
        }
    }
}

/// The running source; dropping it stops its watchers and its status writer.
#[derive(Debug)]
pub struct KubeSource {
    store: Arc<Mutex<Store>>,
    changed: watch::Receiver<u64>,
    leader: watch::Receiver<bool>,
    verdicts: watch::Sender<Arc<Vec<status::Verdict>>>,
    cluster_domain: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for KubeSource {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl KubeSource {
    /// Starts the watchers, the leader election and the status writer.
    pub fn start(opts: &KubeOptions) -> Self {
        let store = Arc::new(Mutex::new(Store::default()));
        let (changed_tx, changed) = watch::channel(0u64);
        let changed_tx = Arc::new(changed_tx);
        let mut tasks = Vec::new();
        for (i, kind) in KINDS.iter().enumerate() {
            let api: Api<DynamicObject> = Api::all_with(opts.client.clone(), &kind.api_resource());
            let (store, changed_tx) = (store.clone(), changed_tx.clone());
            tasks.push(tokio::spawn(async move {
                let mut events = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .boxed();
                while let Some(event) = events.next().await {
                    let mut st = store.lock().unwrap_or_else(|e| e.into_inner());
                    let wake = match event {
                        Ok(event) => st.apply(i, event),
                        Err(e) => {
                            let first = st.kinds[i].error.is_none();
                            let error = e.to_string();
                            if first {
                                tracing::warn!(kind = kind.kind, error = %error, "watch failed; retrying");
                            }
                            st.kinds[i].error = Some(error);
                            // A kind that cannot be listed no longer holds back the first build.
                            first
                        }
                    };
                    drop(st);
                    if wake {
                        changed_tx.send_modify(|n| *n += 1);
                    }
                }
            }));
        }
        let (leader_tx, leader) = watch::channel(false);
        let (verdicts, verdicts_rx) = watch::channel(Arc::new(Vec::new()));
        if opts.write_status {
            let candidate = lease::Candidate {
                namespace: opts.namespace.clone(),
                lease: opts.lease_name.clone(),
                identity: opts.replica.clone(),
                duration: opts.lease_duration,
            };
            tasks.push(tokio::spawn(lease::run(
                opts.client.clone(),
                candidate,
                leader_tx,
            )));
            tasks.push(tokio::spawn(write_status(
                opts.client.clone(),
                store.clone(),
                leader.clone(),
                verdicts_rx,
                opts.replica.clone(),
            )));
        }
        Self {
            store,
            changed,
            leader,
            verdicts,
            cluster_domain: opts.cluster_domain.clone(),
            tasks,
        }
    }

    /// Waits until every kind has been listed once or has failed to be, at most `limit`:
    /// a first build from a half-filled cache would briefly take routes away.
    pub async fn settled(&mut self, limit: Duration) {
        let store = self.store.clone();
        let wait = self
            .changed
            .wait_for(|_| store.lock().unwrap_or_else(|e| e.into_inner()).settled());
        if tokio::time::timeout(limit, wait).await.is_err() {
            tracing::warn!(
                ?limit,
                "Kubernetes watches not all listed yet; building anyway"
            );
        }
    }

    /// Waits for the next change of the cache that may change the config, then until it has
    /// been quiet for `debounce` (a burst of watch events makes one build).
    pub async fn changed(&mut self, debounce: Duration) {
        if self.changed.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        loop {
            tokio::time::sleep(debounce).await;
            if !self.changed.has_changed().unwrap_or(false) {
                return;
            }
            self.changed.borrow_and_update();
        }
    }

    /// A function that reads the cache as config documents (to run on a blocking thread).
    pub fn loader(&self) -> impl FnOnce() -> LoadedConfig + Send + 'static {
        let (store, domain) = (self.store.clone(), self.cluster_domain.clone());
        move || {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            documents::load(&store, &domain)
        }
    }

    /// Hands the diagnostics of a build to the status writer.
    pub fn report(&self, diags: &[Diagnostic]) {
        let verdicts = {
            let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            status::verdicts(&store, diags)
        };
        self.verdicts.send_replace(Arc::new(verdicts));
    }

    /// True while this replica holds the Lease and writes status.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Leadership changes.
    pub fn leader(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }
}

/// How often the leader checks every status again.
const RESYNC: Duration = Duration::from_secs(30);

/// Writes status whenever new verdicts arrive or this replica becomes leader.
async fn write_status(
    client: kube::Client,
    store: Arc<Mutex<Store>>,
    mut leader: watch::Receiver<bool>,
    mut verdicts: watch::Receiver<Arc<Vec<status::Verdict>>>,
    reporter: String,
) {
    // Now and then again, in case a write failed: unchanged statuses are not rewritten.
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            r = leader.changed() => if r.is_err() { return },
            r = verdicts.changed() => if r.is_err() { return },
            _ = resync.tick() => {}
        }
        if *leader.borrow_and_update() {
            let v = verdicts.borrow_and_update().clone();
            status::write(&client, &store, &v, &reporter).await;
        }
    }
}
