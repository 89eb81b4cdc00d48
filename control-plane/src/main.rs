//! `mesh-control-plane`: serves xDS from a directory of Istio and Gateway API documents.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use control_plane::ca::{CaOptions, CaSource};
use control_plane::config::{Severity, parse_duration};
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
enum Command {
    /// Serve xDS from a directory of YAML documents, reloading on change.
    Serve {
        /// Directory whose *.yaml / *.yml files hold the config.
        #[arg(long)]
        config_dir: PathBuf,
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
            config_dir,
            xds_addr,
            admin_addr,
            ca,
        } => {
            if !config_dir.is_dir() {
                eprintln!(
                    "error: --config-dir {}: not a directory",
                    config_dir.display()
                );
                return ExitCode::from(2);
            }
            let opts = Options {
                config_dir: Some(config_dir),
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
