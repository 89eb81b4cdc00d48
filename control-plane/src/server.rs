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
use crate::config::LoadedConfig;
use crate::k8s::{KubeOptions, KubeSource};
use crate::publish::{self, ConfigStatus};
use crate::watch;
use crate::xds::{AdsServer, ClientRegistry, XdsSnapshot};

/// How to run a control plane.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory of YAML documents. With neither this nor [`Options::kubernetes`], resources
    /// are set with [`ControlPlane::publish`] only.
    pub config_dir: Option<PathBuf>,
    /// Watch a Kubernetes cluster for Services and config documents ([`crate::k8s`]); runs
    /// beside the directory when both are set (directory documents come first).
    pub kubernetes: Option<KubeOptions>,
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
            kubernetes: None,
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
    /// The CA Secret could not be read or created.
    #[error("certificate authority: {0}")]
    CaSecret(#[from] crate::k8s::ca_secret::CaSecretError),
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
    leader: Option<tokio::sync::watch::Receiver<bool>>,
    injection_addr: Option<SocketAddr>,
}

/// How long a Kubernetes source may take to list every kind before the first build.
const KUBE_SYNC_LIMIT: Duration = Duration::from_secs(10);

impl ControlPlane {
    /// Binds both servers, loads the config directory once, and starts serving.
    pub async fn start(opts: Options) -> Result<Self, StartError> {
        // Install the metrics recorder before the first load records anything.
        admin::prometheus();
        // The CA first: a bad CA directory or token file fails the start before any port opens.
        let (ca, ca_service) = match &opts.ca {
            Some(ca_opts) => {
                let (ca, service) = start_ca(ca_opts, opts.kubernetes.as_ref()).await?;
                (Some(ca), Some(service.into_service()))
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
            leader: None,
            injection_addr: None,
        };

        let kube = opts.kubernetes.as_ref().map(KubeSource::start);
        cp.leader = kube.as_ref().map(KubeSource::leader);
        if opts.config_dir.is_some() || kube.is_some() {
            // Workload identities (expected SANs, principals) are in the CA's trust domain.
            let trust_domain = ca.as_ref().map_or_else(
                || crate::translate::DEFAULT_TRUST_DOMAIN.to_string(),
                |ca| ca.trust_domain().to_string(),
            );
            let mut sources = Sources {
                dir: opts.config_dir.clone().map(|d| {
                    let fp = watch::fingerprint(&d);
                    (d, fp)
                }),
                kube,
                poll: opts.poll_interval,
                debounce: opts.debounce,
            };
            let nodes = registry.workloads().clone();
            let target = Target {
                trust_domain,
                snapshot: snapshot.clone(),
                config: config.clone(),
            };
            // A directory alone is loaded before the ports serve; Kubernetes first lists every
            // kind, in the background.
            if sources.kube.is_none() {
                sources.reload(&target, &nodes.all()).await;
            }
            let mut nodes_changed = nodes.watch();
            cp.tasks.push(tokio::spawn(async move {
                if let Some(kube) = &mut sources.kube {
                    kube.settled(KUBE_SYNC_LIMIT).await;
                    sources.reload(&target, &nodes.all()).await;
                }
                loop {
                    // A config edit, or a server that (dis)connected and described itself.
                    sources.next_change(&mut nodes_changed).await;
                    sources.reload(&target, &nodes.all()).await;
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
        if let Some(k) = &opts.kubernetes
            && let Some(injection) = &k.injection
        {
            cp.injection_addr = Some(start_injection(&mut cp, k, injection, ca.as_ref()).await?);
        }
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
        let compiled = publish::Compiled {
            resources,
            ..publish::Compiled::default()
        };
        publish_model(&self.snapshot, &self.config, compiled, Vec::new());
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

    /// True while this replica is the Kubernetes source's leader (writes status); `None`
    /// without a Kubernetes source.
    pub fn is_leader(&self) -> Option<bool> {
        self.leader.as_ref().map(|l| *l.borrow())
    }

    /// Where the injection webhook listens, when [`KubeOptions::injection`] was set.
    pub fn injection_addr(&self) -> Option<SocketAddr> {
        self.injection_addr
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

/// The CA and its service: from the Kubernetes Secret when one is named, accepting service
/// account tokens (TokenReview) with a Kubernetes source.
async fn start_ca(
    ca_opts: &CaOptions,
    kube: Option<&KubeOptions>,
) -> Result<(Arc<Ca>, CaService), StartError> {
    let tokens = match &ca_opts.token_file {
        Some(path) => Some(Arc::new(TokenFile::open(path, &ca_opts.trust_domain)?)),
        None => None,
    };
    let ca = match kube.and_then(|k| k.ca_secret.as_ref().map(|s| (k, s))) {
        Some((k, secret)) => {
            // The Secret's files live on disk only while the CA loads them.
            let dir = std::env::temp_dir().join(format!(
                "mesh-ca-{}-{}-{}",
                std::process::id(),
                k.replica,
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            let source = crate::k8s::ca_secret::load_or_create(
                k.client.clone(),
                &k.namespace,
                secret,
                &ca_opts.trust_domain,
                &dir,
            )
            .await;
            let ca = source.map_err(StartError::from).and_then(|source| {
                let opts = CaOptions {
                    source,
                    ..ca_opts.clone()
                };
                Ok(Ca::new(&opts)?)
            });
            let _ = std::fs::remove_dir_all(&dir);
            Arc::new(ca?)
        }
        None => Arc::new(Ca::new(ca_opts)?),
    };
    let mut service = CaService::new(ca.clone(), tokens);
    if let Some(k) = kube {
        service =
            service.with_token_review(Arc::new(crate::k8s::token_review::TokenReviewer::new(
                k.client.clone(),
                &k.token_audience,
                ca.trust_domain(),
            )));
    }
    Ok((ca, service))
}

/// Starts the injection webhook (and, with a webhook configuration named, the leader's upkeep of
/// its `caBundle`); returns where it listens.
async fn start_injection(
    cp: &mut ControlPlane,
    k: &KubeOptions,
    injection: &crate::k8s::inject::InjectionOptions,
    ca: Option<&Arc<Ca>>,
) -> Result<SocketAddr, StartError> {
    use crate::k8s::{inject::Injector, webhook};
    let Some(ca) = ca else {
        return Err(StartError::Ca(CaError::Options(
            "the injection webhook needs the CA (its serving certificate and the trust bundle it injects)".into(),
        )));
    };
    let listener = TcpListener::bind(injection.addr)
        .await
        .map_err(|source| StartError::Bind {
            what: "the injection webhook",
            addr: injection.addr,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(injection.addr);
    let (identity, task) =
        crate::xds_port::serving_identity(ca.clone(), injection.dns_names.clone())
            .map_err(|reason| StartError::Ca(CaError::Serving(reason)))?;
    cp.tasks.push(task);
    let config = mesh_xds_client::tls::server_config(
        identity,
        mesh_xds_client::tls::ClientAuth::Optional,
        &["h2", "http/1.1"],
    );
    let injector = Arc::new(Injector {
        xds_address: injection.xds_address.clone(),
        trust_domain: ca.trust_domain().into(),
        cluster_domain: k.cluster_domain.clone(),
        token_audience: k.token_audience.clone(),
        root_pem: ca.root_pem().into(),
    });
    cp.tasks.push(webhook::serve(
        listener,
        tokio_rustls::TlsAcceptor::from(config),
        injector,
    ));
    if let (Some(name), Some(leader)) = (&injection.webhook_config, &cp.leader) {
        cp.tasks.push(tokio::spawn(webhook::keep_ca_bundle(
            k.client.clone(),
            name.clone(),
            ca.root_pem().into(),
            leader.clone(),
        )));
    }
    tracing::info!(%addr, "injection webhook serving");
    Ok(addr)
}

/// Where config comes from.
struct Sources {
    dir: Option<(PathBuf, watch::Fingerprint)>,
    kube: Option<KubeSource>,
    poll: Duration,
    debounce: Duration,
}

/// Where a build goes.
struct Target {
    trust_domain: String,
    snapshot: Snapshot<XdsSnapshot>,
    config: Snapshot<ConfigStatus>,
}

impl Sources {
    /// Waits for a change of any source (settled), or of the connected servers.
    async fn next_change(&mut self, nodes: &mut tokio::sync::watch::Receiver<u64>) {
        let (poll, debounce) = (self.poll, self.debounce);
        let dir = async {
            match &mut self.dir {
                Some((d, fp)) => *fp = watch::next_change(d, fp, poll, debounce).await,
                None => std::future::pending().await,
            }
        };
        let kube = async {
            match &mut self.kube {
                Some(k) => k.changed(debounce).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = dir => {}
            _ = kube => {}
            _ = nodes.changed() => {}
        }
    }

    /// Reads every source, translates and publishes; the Kubernetes source gets the verdicts.
    async fn reload(&self, target: &Target, nodes: &[crate::xds::NodeWorkload]) {
        let dir = self.dir.as_ref().map(|(d, _)| d.clone());
        let kube = self.kube.as_ref().map(KubeSource::loader);
        let (td, nodes) = (target.trust_domain.clone(), nodes.to_vec());
        let compiled = tokio::task::spawn_blocking(move || {
            let mut loaded = dir.map(|d| crate::config::load_dir(&d)).unwrap_or_default();
            if let Some(kube) = kube {
                let LoadedConfig {
                    documents,
                    diagnostics,
                } = kube();
                loaded.documents.extend(documents);
                loaded.diagnostics.extend(diagnostics);
            }
            publish::compile(loaded, &td, &nodes)
        })
        .await;
        let Ok(compiled) = compiled else {
            tracing::error!("config load panicked; keeping the last good config");
            return;
        };
        for d in &compiled.diagnostics {
            match d.severity {
                crate::config::Severity::Error => tracing::warn!("config rejected: {d}"),
                crate::config::Severity::Warning => tracing::info!("config warning: {d}"),
            }
        }
        if let Some(kube) = &self.kube {
            kube.report(&compiled.diagnostics);
        }
        let views = publish::views(&compiled.diagnostics);
        publish_model(&target.snapshot, &target.config, compiled, views);
    }
}

fn publish_model(
    snapshot: &Snapshot<XdsSnapshot>,
    config: &Snapshot<ConfigStatus>,
    compiled: publish::Compiled,
    mut diagnostics: Vec<publish::DiagnosticView>,
) {
    let publish::Compiled {
        resources,
        accepted: documents,
        provenance,
        ..
    } = compiled;
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
        provenance: Arc::new(provenance),
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
