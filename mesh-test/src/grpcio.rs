//! The stock Python gRPC client (`grpcio`) as an interop peer.
//!
//! [`write_bootstrap`] writes the standard gRPC xDS bootstrap file; [`GrpcioClient`] runs
//! `interop/grpc_client.py` with `$MESH_PYTHON` (set by `scripts/test.sh`) and
//! `GRPC_XDS_BOOTSTRAP` pointing at that file, so that `xds:///name` targets resolve through our
//! control plane exactly as they would for any gRPC application. The script makes unary
//! `mesh.test.echo.v1.Echo/Echo` calls (5 s deadline each; only the first waits for the channel to
//! be ready) and reports each one; [`CallResults`] holds them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Environment variable holding the venv's Python (with grpcio installed).
pub const PYTHON_ENV: &str = "MESH_PYTHON";
/// The client script run by [`GrpcioClient`].
pub const CLIENT_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/grpc_client.py");
/// The node's cluster name in bootstraps written by [`write_bootstrap`].
pub const NODE_CLUSTER: &str = "grpcio-interop";
/// How long [`GrpcioClient::spawn`] waits for the script to start calling.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time [`GrpcioClient::finish`] allows beyond the calls' own deadlines.
const FINISH_SLACK: Duration = Duration::from_secs(20);
/// The script's per-call deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes `bootstrap.json` (the standard gRPC xDS bootstrap) in `dir`; returns its path.
///
/// The node is `{id: node_id, cluster: "grpcio-interop", locality: {zone: "z1"}}`; the one xDS
/// server is `xds_addr` over plaintext, speaking xDS v3.
pub fn write_bootstrap(dir: &Path, xds_addr: SocketAddr, node_id: &str) -> PathBuf {
    write_bootstrap_with(dir, xds_addr, node_id, json!({}))
}

/// As [`write_bootstrap`], with `extra` top-level fields merged in (for example
/// `certificate_providers` and `server_listener_resource_name_template`); the file is
/// `<node_id>.bootstrap.json` when `extra` is not empty, so several can share `dir`.
pub fn write_bootstrap_with(
    dir: &Path,
    xds_addr: SocketAddr,
    node_id: &str,
    extra: Value,
) -> PathBuf {
    let named = extra.as_object().is_some_and(|o| !o.is_empty());
    let mut bootstrap = json!({
        "xds_servers": [{
            "server_uri": xds_addr.to_string(),
            "channel_creds": [{ "type": "insecure" }],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": node_id,
            "cluster": NODE_CLUSTER,
            "locality": { "zone": "z1" },
            "metadata": {},
        },
    });
    if let (Some(b), Some(e)) = (bootstrap.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let path = if named {
        dir.join(format!("{node_id}.bootstrap.json"))
    } else {
        dir.join("bootstrap.json")
    };
    let text = serde_json::to_vec_pretty(&bootstrap).expect("bootstrap serializes");
    std::fs::write(&path, text)
        .unwrap_or_else(|e| panic!("cannot write gRPC bootstrap {}: {e}", path.display()));
    path
}

/// How many calls the client makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Exactly this many calls, back to back.
    Calls(u32),
    /// Calls for `duration`, pausing `interval` between them.
    For {
        /// How long to keep calling.
        duration: Duration,
        /// Pause after each call.
        interval: Duration,
    },
}

impl Load {
    fn args(self) -> Vec<String> {
        match self {
            Load::Calls(n) => vec!["--calls".into(), n.to_string()],
            Load::For { duration, interval } => vec![
                "--duration-secs".into(),
                duration.as_secs_f64().to_string(),
                "--interval-ms".into(),
                (interval.as_secs_f64() * 1000.0).to_string(),
            ],
        }
    }

    /// Upper bound on the script's run time once it has started.
    fn bound(self) -> Duration {
        match self {
            Load::Calls(n) => CALL_TIMEOUT * n + FINISH_SLACK,
            Load::For { duration, .. } => duration + CALL_TIMEOUT + FINISH_SLACK,
        }
    }
}

/// One call as the script reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    /// Seconds from the script's start (just before its first call) to this call's start.
    pub t: f64,
    /// The backend that answered (`EchoReply.backend`), if the call succeeded.
    pub backend: Option<String>,
    /// `EchoReply.message` of a successful call (the grpcio server puts the caller's URI SANs
    /// there).
    pub message: Option<String>,
    /// `"<STATUS_CODE>: <details>"` if the call failed.
    pub error: Option<String>,
}

/// Every call of one run, in order.
#[derive(Debug, Clone, Default)]
pub struct CallResults {
    /// The calls.
    pub calls: Vec<CallResult>,
    /// What the script wrote on stderr (grpcio logs; set `GRPC_VERBOSITY`/`GRPC_TRACE` for more).
    pub stderr: String,
}

impl CallResults {
    /// Successful calls per backend name.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for backend in self.calls.iter().filter_map(|c| c.backend.as_ref()) {
            *counts.entry(backend.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Number of successful calls.
    pub fn ok(&self) -> usize {
        self.calls.iter().filter(|c| c.backend.is_some()).count()
    }

    /// The failed calls.
    pub fn errors(&self) -> Vec<&CallResult> {
        self.calls.iter().filter(|c| c.error.is_some()).collect()
    }

    /// The calls that started in `[from_secs, to_secs)` since the script's start.
    pub fn window(&self, from_secs: f64, to_secs: f64) -> CallResults {
        let calls = self
            .calls
            .iter()
            .filter(|c| c.t >= from_secs && c.t < to_secs);
        CallResults {
            calls: calls.cloned().collect(),
            stderr: String::new(),
        }
    }
}

/// A running `grpc_client.py`. Killed if dropped before [`GrpcioClient::finish`].
#[derive(Debug)]
pub struct GrpcioClient {
    child: Child,
    load: Load,
    started: Instant,
    stdout: JoinHandle<Vec<String>>,
    stderr: JoinHandle<String>,
}

impl GrpcioClient {
    /// Runs the client to completion and returns its calls. `bootstrap` is required for
    /// `xds:///` targets (see [`write_bootstrap`]).
    pub async fn run(target: &str, bootstrap: Option<&Path>, load: Load) -> CallResults {
        Self::spawn(target, bootstrap, load).await.finish().await
    }

    /// Starts the client and returns once it is about to make its first call, so that a test
    /// can change the mesh's config while it runs. Call times are relative to this moment
    /// ([`GrpcioClient::started`]).
    pub async fn spawn(target: &str, bootstrap: Option<&Path>, load: Load) -> GrpcioClient {
        Self::spawn_with(target, bootstrap, load, &[]).await
    }

    /// As [`GrpcioClient::run`], with extra script arguments (e.g. `--xds-creds`).
    pub async fn run_with(
        target: &str,
        bootstrap: Option<&Path>,
        load: Load,
        args: &[&str],
    ) -> CallResults {
        Self::spawn_with(target, bootstrap, load, args)
            .await
            .finish()
            .await
    }

    /// As [`GrpcioClient::spawn`], with extra script arguments.
    pub async fn spawn_with(
        target: &str,
        bootstrap: Option<&Path>,
        load: Load,
        args: &[&str],
    ) -> GrpcioClient {
        let python = std::env::var_os(PYTHON_ENV).unwrap_or_else(|| {
            panic!(
                "{PYTHON_ENV} is not set: run the tests through scripts/test.sh, which installs \
                 grpcio into a venv and exports it"
            )
        });
        let mut command = Command::new(&python);
        command
            .arg(CLIENT_SCRIPT)
            .args(["--target", target])
            .args(load.args())
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match bootstrap {
            Some(path) => command.env("GRPC_XDS_BOOTSTRAP", path),
            None => command.env_remove("GRPC_XDS_BOOTSTRAP"),
        };
        if std::env::var_os("GRPC_VERBOSITY").is_none() {
            command.env("GRPC_VERBOSITY", "ERROR");
        }
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {} {CLIENT_SCRIPT}: {e}",
                Path::new(&python).display()
            )
        });
        let (started_tx, started_rx) = oneshot::channel();
        let stdout = tokio::spawn(read_stdout(child.stdout.take(), started_tx));
        let stderr = tokio::spawn(read_stderr(child.stderr.take()));
        let mut client = GrpcioClient {
            child,
            load,
            started: Instant::now(),
            stdout,
            stderr,
        };
        match tokio::time::timeout(STARTUP_TIMEOUT, started_rx).await {
            Ok(Ok(())) => client.started = Instant::now(),
            Ok(Err(_)) => client.fail("exited before its first call").await,
            Err(_) => client.fail("did not start within 30s").await,
        }
        client
    }

    /// When the script started calling: `CallResult::t` counts from here.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits (bounded by the load's own deadlines plus slack) for the script to finish and
    /// returns its calls. Panics with the script's stderr if it fails or overruns.
    pub async fn finish(mut self) -> CallResults {
        let bound = self.load.bound();
        let status = match tokio::time::timeout(bound, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => self.fail(&format!("cannot wait for the script: {e}")).await,
            Err(_) => self.fail(&format!("still running after {bound:?}")).await,
        };
        if !status.success() {
            self.fail(&format!("exited with {status}")).await;
        }
        let lines = (&mut self.stdout).await.unwrap_or_default();
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        parse_output(&lines, stderr)
    }

    async fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill().await;
        let stdout = (&mut self.stdout).await.unwrap_or_default();
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        panic!(
            "grpc_client.py {what}\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
            stdout.join("\n")
        )
    }
}

/// Collects stdout lines, signalling `started` at the script's `{"event": "start"}` line.
async fn read_stdout(
    stdout: Option<tokio::process::ChildStdout>,
    started: oneshot::Sender<()>,
) -> Vec<String> {
    let mut started = Some(started);
    let mut lines_out = Vec::new();
    let Some(stdout) = stdout else {
        return lines_out;
    };
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("\"event\": \"start\"") {
            if let Some(tx) = started.take() {
                let _ = tx.send(());
            }
        } else {
            lines_out.push(line);
        }
    }
    lines_out
}

async fn read_stderr(stderr: Option<tokio::process::ChildStderr>) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = stderr {
        let _ = stderr.read_to_string(&mut text).await;
    }
    text
}

/// Parses the script's call lines; panics on a line it does not understand or a missing summary.
fn parse_output(lines: &[String], stderr: String) -> CallResults {
    let mut calls = Vec::new();
    let mut summary = None;
    for line in lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("grpc_client.py printed a non-JSON line {line:?}: {e}"));
        if let Some(s) = value.get("summary") {
            summary = Some(s.clone());
            continue;
        }
        let t = value["t"]
            .as_f64()
            .unwrap_or_else(|| panic!("grpc_client.py line without a numeric t: {line}"));
        calls.push(CallResult {
            t,
            backend: value["backend"].as_str().map(str::to_owned),
            message: value["message"].as_str().map(str::to_owned),
            error: value["error"].as_str().map(str::to_owned),
        });
    }
    let summary = summary.unwrap_or_else(|| panic!("grpc_client.py printed no summary:\n{stderr}"));
    let reported = summary["calls"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok());
    assert_eq!(
        reported,
        Some(calls.len()),
        "grpc_client.py summary disagrees with its call lines: {summary}"
    );
    CallResults { calls, stderr }
}

/// The server script run by [`GrpcioServer`].
pub const SERVER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/grpc_xds_server.py");

/// The stock Python gRPC server as an xDS-enabled server (gRFC A36): `interop/grpc_xds_server.py`
/// listening on an address with xDS server credentials, its inbound listener (mTLS mode, RBAC)
/// from the control plane in `bootstrap`. Its Echo replies name the caller's URI SANs. Killed
/// on drop.
#[derive(Debug)]
pub struct GrpcioServer {
    child: Child,
    /// The address it serves.
    pub addr: SocketAddr,
}

impl GrpcioServer {
    /// Starts a plain (not xDS-enabled, plaintext) grpcio server on `addr` as `backend`.
    pub async fn spawn_plain(addr: SocketAddr, backend: &str) -> GrpcioServer {
        Self::start(addr, backend, None).await
    }

    /// Starts the server on `addr` as `backend`, and returns once it serves.
    pub async fn spawn(addr: SocketAddr, backend: &str, bootstrap: &Path) -> GrpcioServer {
        Self::start(addr, backend, Some(bootstrap)).await
    }

    async fn start(addr: SocketAddr, backend: &str, bootstrap: Option<&Path>) -> GrpcioServer {
        let python = std::env::var_os(PYTHON_ENV).unwrap_or_else(|| {
            panic!("{PYTHON_ENV} is not set: run the tests through scripts/test.sh")
        });
        let mut command = Command::new(&python);
        command
            .arg(SERVER_SCRIPT)
            .args(["--address", &addr.to_string(), "--backend", backend])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match bootstrap {
            Some(b) => command.env("GRPC_XDS_BOOTSTRAP", b),
            None => command.arg("--plain").env_remove("GRPC_XDS_BOOTSTRAP"),
        };
        if std::env::var_os("GRPC_VERBOSITY").is_none() {
            command.env("GRPC_VERBOSITY", "ERROR");
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SERVER_SCRIPT}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let serving = tokio::time::timeout(STARTUP_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("\"event\": \"serving\"") {
                    return true;
                }
            }
            false
        })
        .await;
        if serving != Ok(true) {
            let _ = child.kill().await;
            let stderr = read_stderr(child.stderr.take()).await;
            panic!("grpc_xds_server.py did not start serving on {addr}:\n{stderr}");
        }
        GrpcioServer { child, addr }
    }

    /// Stops the server and returns what it wrote on stderr.
    pub async fn stop(mut self) -> String {
        let _ = self.child.kill().await;
        read_stderr(self.child.stderr.take()).await
    }
}
