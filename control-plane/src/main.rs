//! `mesh-control-plane`: serves xDS from Istio and Gateway API documents, read from a directory
//! or watched in a Kubernetes cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use control_plane::ca::{CaOptions, CaSource};
use control_plane::config::{Severity, parse_duration};
use control_plane::k8s::KubeOptions;
use control_plane::k8s::inject::InjectionOptions;
use control_plane::publish;
use control_plane::server::{ControlPlane, Options};

#[derive(Debug, Parser)]
#[command(
    name = "mesh-control-plane",
    version,
    about = "The mesh control plane: YAML in, xDS out"
)]
struct Cli {
    /// Log level: error, warn, info, debug or trace (or a tracing filter directive).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once at start: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Serve xDS from a directory of YAML documents (reloading on change) or from a Kubernetes
    /// cluster (watching it), or both.
    Serve {
        /// Where config comes from: `directory` (--config-dir) or `kubernetes` (Services,
        /// EndpointSlices, Pods and the Istio and Gateway API custom resources; --config-dir
        /// then adds a directory beside it).
        #[arg(long, value_enum, default_value = "directory")]
        source: SourceKind,
        /// Directory whose *.yaml / *.yml files hold the config.
        #[arg(long)]
        config_dir: Option<PathBuf>,
        #[command(flatten)]
        kube: KubeArgs,
        /// ADS gRPC address.
        #[arg(long, default_value = "127.0.0.1:15010")]
        xds_addr: SocketAddr,
        /// Admin HTTP address (/healthz, /readyz, /metrics, /debug/*, /ca/root-cert.pem).
        #[arg(long, default_value = "127.0.0.1:15014")]
        admin_addr: SocketAddr,
        #[command(flatten)]
        ca: CaArgs,
    },
    /// Check a directory: print every problem (file, document, field, reason); exit 1 on errors.
    Validate {
        /// Directory to check.
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SourceKind {
    Directory,
    Kubernetes,
}

/// The Kubernetes source.
#[derive(Debug, clap::Args)]
struct KubeArgs {
    /// Kubeconfig file; without it, the in-cluster config (or $KUBECONFIG, ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The control plane's namespace, where the leader Lease lives.
    #[arg(long, env = "POD_NAMESPACE", default_value = "mesh-system")]
    control_plane_namespace: String,
    /// This replica's name (Lease holder identity, Events' reporting instance).
    #[arg(long, env = "POD_NAME", default_value = "mesh-control-plane")]
    replica_name: String,
    /// The Lease that elects the replica writing status.
    #[arg(long, default_value = "mesh-control-plane-leader")]
    lease_name: String,
    /// The cluster's DNS domain (Service hosts are NAME.NAMESPACE.svc.DOMAIN).
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Keep the CA's root and key in this Secret of the control plane's namespace (created with
    /// a new root on first start; Istio's cacerts layout). Takes precedence over --ca-dir and
    /// --state-dir.
    #[arg(long)]
    ca_secret: Option<String>,
    /// The audience a workload's service account token must be bound to for the CA
    /// (checked with the TokenReview API).
    #[arg(long, default_value = "istio-ca")]
    token_audience: String,
    /// Serve the injection webhook (HTTPS, POST /inject) here: pods labelled
    /// meshlib.dev/inject=true get the gRPC xDS bootstrap, the trust bundle and a projected token.
    #[arg(long)]
    injection_addr: Option<SocketAddr>,
    /// DNS name of the webhook's serving certificate (repeat for several), e.g.
    /// mesh-control-plane.mesh-system.svc.
    #[arg(long)]
    injection_dns_name: Vec<String>,
    /// The xDS and CA address injected pods dial (host:port), e.g.
    /// mesh-control-plane.mesh-system.svc:15010.
    #[arg(long, requires = "injection_addr")]
    injection_xds_address: Option<String>,
    /// The MutatingWebhookConfiguration whose caBundle the leader keeps equal to the CA root.
    #[arg(long, requires = "injection_addr")]
    injection_webhook_config: Option<String>,
}

impl KubeArgs {
    async fn options(self) -> Result<KubeOptions, String> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
                kube::Config::from_custom_kubeconfig(file, &Default::default())
                    .await
                    .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| format!("no Kubernetes config (in-cluster or kubeconfig): {e}"))?,
        };
        let client = kube::Client::try_from(config)
            .map_err(|e| format!("cannot build a Kubernetes client: {e}"))?;
        let mut opts = KubeOptions::new(client, &self.control_plane_namespace, &self.replica_name);
        opts.lease_name = self.lease_name;
        opts.cluster_domain = self.cluster_domain;
        opts.ca_secret = self.ca_secret;
        opts.token_audience = self.token_audience;
        if let Some(addr) = self.injection_addr {
            let xds_address = self.injection_xds_address.ok_or(
                "--injection-addr needs --injection-xds-address (the address injected pods dial)",
            )?;
            if self.injection_dns_name.is_empty() {
                return Err(
                    "--injection-addr needs --injection-dns-name (the webhook Service's DNS name)"
                        .into(),
                );
            }
            opts.injection = Some(InjectionOptions {
                addr,
                dns_names: self.injection_dns_name,
                xds_address,
                webhook_config: self.injection_webhook_config,
            });
        }
        Ok(opts)
    }
}

/// The certificate authority, served on the xDS port (Istio's IstioCertificateService).
#[derive(Debug, clap::Args)]
struct CaArgs {
    /// State directory: the CA's root is generated on first start and kept in STATE_DIR/ca/.
    /// Without it (and without --ca-dir) the root lives in memory and changes on every restart.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// An operator's CA in Istio's plugged-in layout (ca-cert.pem, ca-key.pem, cert-chain.pem,
    /// root-cert.pem); takes precedence over --state-dir for the CA.
    #[arg(long)]
    ca_dir: Option<PathBuf>,
    /// Trust domain of issued SPIFFE IDs (spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT).
    #[arg(long, default_value = "cluster.local")]
    trust_domain: String,
    /// Lifetime of a workload certificate whose request asks for none (e.g. 24h, 90m).
    #[arg(long, default_value = "24h", value_parser = ttl)]
    cert_ttl: Duration,
    /// Longest lifetime a request may ask for; longer requests get this.
    #[arg(long, default_value = "24h", value_parser = ttl)]
    max_cert_ttl: Duration,
    /// Bootstrap token file (YAML: tokens: [{token, namespace, serviceAccount}]), re-read when
    /// it changes. Without it, only renewals over mTLS are accepted.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

impl CaArgs {
    fn options(self) -> CaOptions {
        let source = match (self.ca_dir, self.state_dir) {
            (Some(dir), _) => CaSource::Plugged(dir),
            (None, Some(dir)) => CaSource::StateDir(dir),
            (None, None) => CaSource::InMemory,
        };
        CaOptions {
            source,
            trust_domain: self.trust_domain,
            cert_ttl: self.cert_ttl,
            max_cert_ttl: self.max_cert_ttl,
            token_file: self.token_file,
        }
    }
}

fn ttl(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    match cli.command {
        Command::Serve {
            source,
            config_dir,
            kube,
            xds_addr,
            admin_addr,
            ca,
        } => {
            match &config_dir {
                Some(dir) if !dir.is_dir() => {
                    eprintln!("error: --config-dir {}: not a directory", dir.display());
                    return ExitCode::from(2);
                }
                None if source == SourceKind::Directory => {
                    eprintln!("error: --source directory needs --config-dir");
                    return ExitCode::from(2);
                }
                _ => {}
            }
            let kubernetes = match source {
                SourceKind::Directory => None,
                SourceKind::Kubernetes => match kube.options().await {
                    Ok(k) => Some(k),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            let opts = Options {
                config_dir,
                kubernetes,
                xds_addr,
                admin_addr,
                ca: Some(ca.options()),
                ..Options::default()
            };
            let cp = match ControlPlane::start(opts).await {
                Ok(cp) => cp,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
            drop(cp);
            ExitCode::SUCCESS
        }
        Command::Validate { dir } => {
            if !dir.is_dir() {
                eprintln!("error: {}: not a directory", dir.display());
                return ExitCode::from(2);
            }
            let (_, diags, accepted) = publish::compile_dir(&dir);
            let errors = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            for d in &diags {
                let level = if d.severity == Severity::Error {
                    "error"
                } else {
                    "warning"
                };
                println!("{level}: {d}");
            }
            println!(
                "{accepted} document(s) accepted, {errors} error(s), {} warning(s)",
                diags.len() - errors
            );
            if errors > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
