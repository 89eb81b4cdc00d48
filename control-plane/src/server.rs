//! The running control plane: the config source, the ADS server and the admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mesh_core::{MeshResources, Snapshot};
use tokio::net::TcpListener;

use tokio::task::JoinHandle;

use crate::admin::{self, AdminState};
use crate::ca::tokens::{TokenFile, TokenFileError};
use crate::ca::{Ca, CaError, CaOptions, CaService};
use crate::publish::{self, ConfigStatus};
use crate::watch;
use crate::xds::{AdsServer, ClientRegistry, XdsSnapshot};

/// How to run a control plane.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory of YAML documents; `None` means resources are set with
    /// [`ControlPlane::publish`] only.
    pub config_dir: Option<PathBuf>,
    /// Address of the ADS gRPC server. Default: 127.0.0.1:15010.
    pub xds_addr: SocketAddr,
    /// Address of the admin HTTP server. Default: 127.0.0.1:15014.
    pub admin_addr: SocketAddr,
    /// How often the directory is checked for changes. Default: 50 ms.
    pub poll_interval: Duration,
    /// Quiet time after a change before the directory is read. Default: 100 ms.
    pub debounce: Duration,
    /// The certificate authority, served on the xDS port as Istio's `IstioCertificateService`
    /// (and its trust bundle at the admin API's `/ca/root-cert.pem`). Default: none (no CA).
    pub ca: Option<CaOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config_dir: None,
            xds_addr: SocketAddr::from(([127, 0, 0, 1], 15010)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 15014)),
            poll_interval: Duration::from_millis(50),
            debounce: Duration::from_millis(100),
            ca: None,
        }
    }
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listening socket could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// `xDS` or `admin`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The CA could not be set up (its files, its options).
    #[error("certificate authority: {0}")]
    Ca(#[from] CaError),
    /// The bootstrap token file could not be read at start.
    #[error("certificate authority: {0}")]
    TokenFile(#[from] TokenFileError),
}

/// A running control plane; dropping it stops every task.
#[derive(Debug)]
pub struct ControlPlane {
    xds_addr: SocketAddr,
    admin_addr: SocketAddr,
    snapshot: Snapshot<XdsSnapshot>,
    config: Snapshot<ConfigStatus>,
    registry: ClientRegistry,
    ca: Option<Arc<Ca>>,
    tasks: Vec<JoinHandle<()>>,
    /// Turns true to end every ADS stream and stop the xDS server.
    stop: tokio::sync::watch::Sender<bool>,
    xds_task: Option<JoinHandle<()>>,
}

impl ControlPlane {
    /// Binds both servers, loads the config directory once, and starts serving.
    pub async fn start(opts: Options) -> Result<Self, StartError> {
        // Install the metrics recorder before the first load records anything.
        admin::prometheus();
        // The CA first: a bad CA directory or token file fails the start before any port opens.
        let (ca, ca_service) = match &opts.ca {
            Some(ca_opts) => {
                let ca = Arc::new(Ca::new(ca_opts)?);
                let tokens = match &ca_opts.token_file {
                    Some(path) => Some(Arc::new(TokenFile::open(path, &ca_opts.trust_domain)?)),
                    None => None,
                };
                let service = CaService::new(ca.clone(), tokens).into_service();
                (Some(ca), Some(service))
            }
            None => (None, None),
        };
        let xds = TcpListener::bind(opts.xds_addr)
            .await
            .map_err(|source| StartError::Bind {
                what: "xDS",
                addr: opts.xds_addr,
                source,
            })?;
        let admin =
            TcpListener::bind(opts.admin_addr)
                .await
                .map_err(|source| StartError::Bind {
                    what: "admin",
                    addr: opts.admin_addr,
                    source,
                })?;
        let xds_addr = xds.local_addr().unwrap_or(opts.xds_addr);
        let admin_addr = admin.local_addr().unwrap_or(opts.admin_addr);

        let snapshot = Snapshot::new(XdsSnapshot::default());
        let config = Snapshot::new(ConfigStatus::default());
        let registry = ClientRegistry::default();
        let mut cp = Self {
            xds_addr,
            admin_addr,
            snapshot: snapshot.clone(),
            config: config.clone(),
            registry: registry.clone(),
            ca: ca.clone(),
            tasks: Vec::new(),
            stop: tokio::sync::watch::channel(false).0,
            xds_task: None,
        };

        if let Some(dir) = opts.config_dir.clone() {
            // Workload identities (expected SANs, principals) are in the CA's trust domain.
            let trust_domain = ca.as_ref().map_or_else(
                || crate::translate::DEFAULT_TRUST_DOMAIN.to_string(),
                |ca| ca.trust_domain().to_string(),
            );
            let mut fp = watch::fingerprint(&dir);
            let nodes = registry.workloads().clone();
            reload_into(&dir, &trust_domain, &nodes.all(), &snapshot, &config).await;
            let (snapshot, config) = (snapshot.clone(), config.clone());
            let (poll, debounce) = (opts.poll_interval, opts.debounce);
            let mut nodes_changed = nodes.watch();
            cp.tasks.push(tokio::spawn(async move {
                loop {
                    // A config edit, or a server that (dis)connected and described itself.
                    tokio::select! {
                        next = watch::next_change(&dir, &fp, poll, debounce) => fp = next,
                        _ = nodes_changed.changed() => {}
                    }
                    reload_into(&dir, &trust_domain, &nodes.all(), &snapshot, &config).await;
                }
            }));
        }

        let ads =
            AdsServer::new(snapshot.clone(), registry.clone(), cp.stop.subscribe()).into_service();
        // With a CA, the xDS port also speaks TLS with the control plane's own SVID, and knows
        // a client that presents a certificate by its SPIFFE ID.
        let tls = match &ca {
            Some(ca) => {
                let mut names = vec!["localhost".to_string()];
                if !xds_addr.ip().is_unspecified() {
                    names.push(xds_addr.ip().to_string());
                }
                let (identity, task) = crate::xds_port::serving_identity(ca.clone(), names)
                    .map_err(|reason| StartError::Ca(CaError::Serving(reason)))?;
                cp.tasks.push(task);
                let config = mesh_xds_client::tls::server_config(
                    identity,
                    mesh_xds_client::tls::ClientAuth::Optional,
                    &[mesh_xds_client::tls::ALPN_H2],
                );
                Some(tokio_rustls::TlsAcceptor::from(config))
            }
            None => None,
        };
        let (incoming, accept_task) = crate::xds_port::incoming(xds, tls);
        cp.tasks.push(accept_task);
        let mut stopped = cp.stop.subscribe();
        cp.xds_task = Some(tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(Duration::from_secs(30)))
                .layer(tower::util::MapRequestLayer::new(
                    crate::xds_port::copy_peer::<tonic::body::Body>,
                ))
                .add_service(ads)
                .add_optional_service(ca_service)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "xDS server stopped");
            }
        }));
        let router = admin::router(AdminState {
            snapshot,
            registry,
            config,
            ca,
        });
        cp.tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(admin, router).await {
                tracing::error!(error = %e, "admin server stopped");
            }
        }));
        tracing::info!(%xds_addr, %admin_addr, "control plane serving");
        Ok(cp)
    }

    /// Publishes `resources` directly (for embedders and tests that do not use a directory).
    pub fn publish(&self, resources: MeshResources) {
        publish_model(&self.snapshot, &self.config, resources, Vec::new(), 0);
    }

    /// Where the ADS server listens.
    pub fn xds_addr(&self) -> SocketAddr {
        self.xds_addr
    }

    /// Where the admin API listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The served resources.
    pub fn snapshot(&self) -> &Snapshot<XdsSnapshot> {
        &self.snapshot
    }

    /// The outcome of the latest load.
    pub fn config_status(&self) -> Arc<ConfigStatus> {
        self.config.load_full()
    }

    /// Connected clients.
    pub fn registry(&self) -> &ClientRegistry {
        &self.registry
    }

    /// The certificate authority, when [`Options::ca`] was set.
    pub fn ca(&self) -> Option<&Arc<Ca>> {
        self.ca.as_ref()
    }
}

impl ControlPlane {
    /// Ends every ADS stream, stops accepting and waits (up to 5 s) until the xDS port is closed.
    /// Dropping the control plane does the same without waiting.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.xds_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // The xDS server finishes by itself once its streams end: aborting it would leave
        // connections open that still accept streams.
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn reload_into(
    dir: &std::path::Path,
    trust_domain: &str,
    nodes: &[crate::xds::NodeWorkload],
    snapshot: &Snapshot<XdsSnapshot>,
    config: &Snapshot<ConfigStatus>,
) {
    let (d, td, nodes) = (dir.to_path_buf(), trust_domain.to_string(), nodes.to_vec());
    let compiled =
        tokio::task::spawn_blocking(move || publish::compile_dir_in(&d, &td, &nodes)).await;
    let Ok((resources, diags, accepted)) = compiled else {
        tracing::error!(dir = %dir.display(), "config load panicked; keeping the last good config");
        return;
    };
    for d in &diags {
        match d.severity {
            crate::config::Severity::Error => tracing::warn!("config rejected: {d}"),
            crate::config::Severity::Warning => tracing::info!("config warning: {d}"),
        }
    }
    publish_model(
        snapshot,
        config,
        resources,
        publish::views(&diags),
        accepted,
    );
}

fn publish_model(
    snapshot: &Snapshot<XdsSnapshot>,
    config: &Snapshot<ConfigStatus>,
    resources: MeshResources,
    mut diagnostics: Vec<publish::DiagnosticView>,
    documents: usize,
) {
    let generation = snapshot.load().generation + 1;
    let (xds, encode_errors) = publish::encode(generation, &resources);
    for e in encode_errors {
        tracing::warn!("resource not served: {e}");
        diagnostics.push(publish::DiagnosticView {
            severity: "error",
            message: e,
        });
    }
    let counts = xds.counts();
    let status = ConfigStatus {
        generation,
        loaded: true,
        documents,
        diagnostics,
        resources: Arc::new(resources),
    };
    metrics::gauge!("mesh_config_errors").set(status.errors() as f64);
    metrics::counter!("mesh_config_reloads_total").increment(1);
    metrics::gauge!("mesh_config_generation").set(generation as f64);
    tracing::info!(
        generation,
        ?counts,
        errors = status.errors(),
        "config published"
    );
    config.store(status);
    snapshot.store(xds);
}
