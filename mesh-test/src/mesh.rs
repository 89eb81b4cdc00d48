//! An in-process control plane over a real config directory, and plain HTTP helpers for its
//! admin API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use control_plane::server::{ControlPlane, Options};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tempfile::TempDir;
use tokio::time::Instant;

use crate::envoy::Reply;

/// A control plane serving a temporary config directory on loopback.
#[derive(Debug)]
pub struct TestMesh {
    cp: Option<ControlPlane>,
    dir: TempDir,
}

impl TestMesh {
    /// Writes `files` (name, YAML) into a fresh directory and starts a control plane on it with
    /// ephemeral ports.
    pub async fn start(files: &[(&str, &str)]) -> TestMesh {
        let dir = tempfile::tempdir().expect("temp config dir");
        for (name, yaml) in files {
            write_atomically(&dir.path().join(name), yaml);
        }
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let cp = start(dir.path(), any, any).await;
        TestMesh { cp: Some(cp), dir }
    }

    /// The running control plane.
    pub fn cp(&self) -> &ControlPlane {
        self.cp.as_ref().expect("the control plane is running")
    }

    /// Stops the control plane (every stream ends, the port closes), leaves it down for `down`,
    /// then starts a new one on the same addresses and the same directory.
    pub async fn restart_after(&mut self, down: Duration) {
        let old = self.cp.take().expect("the control plane is running");
        let (xds, admin) = (old.xds_addr(), old.admin_addr());
        old.shutdown().await;
        tokio::time::sleep(down).await;
        self.cp = Some(start(self.dir.path(), xds, admin).await);
    }

    /// The config directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces (or creates) one config file, atomically, as an editor or `kubectl cp` would.
    pub fn write(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        write_atomically(&path, yaml);
        path
    }

    /// `GET` on the admin API, parsed as JSON.
    pub async fn admin_json(&self, path: &str) -> Value {
        let reply = get(self.cp().admin_addr(), path, &[]).await;
        serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("admin {path}: not JSON ({e}): {}", reply.body))
    }

    /// Waits until the client with `node_id` is SYNCED and has ACKed at least `min_resources`
    /// resources, all of them; returns its `/debug/syncz` entry. Panics with the last view.
    pub async fn wait_synced(
        &self,
        node_id: &str,
        min_resources: usize,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let syncz = self.admin_json("/debug/syncz").await;
            let client = syncz["clients"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["node_id"] == node_id)
                .cloned();
            if let Some(c) = &client {
                let states: Vec<&str> = c["types"]
                    .as_object()
                    .into_iter()
                    .flat_map(|t| t.values())
                    .flat_map(|t| {
                        t["resources"]
                            .as_object()
                            .into_iter()
                            .flat_map(|r| r.values())
                    })
                    .filter_map(|r| r["state"].as_str())
                    .collect();
                if c["status"] == "SYNCED"
                    && states.len() >= min_resources
                    && states.iter().all(|s| *s == "ACKED")
                {
                    return c.clone();
                }
            }
            if Instant::now() >= deadline {
                panic!("{node_id} not synced after {timeout:?}; /debug/syncz: {syncz:#}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn start(dir: &Path, xds_addr: SocketAddr, admin_addr: SocketAddr) -> ControlPlane {
    ControlPlane::start(Options {
        config_dir: Some(dir.to_path_buf()),
        xds_addr,
        admin_addr,
        ..Options::default()
    })
    .await
    .expect("control plane starts")
}

/// Writes through a temporary file and a rename, so a watcher never reads half a file.
pub fn write_atomically(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, contents).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// A plain HTTP/1.1 `GET` to `addr` with extra headers (a `host` header overrides the authority).
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http();
    crate::envoy::send(&client, addr, path, headers)
        .await
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// A control plane on loopback (admin on an ephemeral port) running a CA with an in-memory root,
/// whose token file (written into `dir`) grants each `(token, namespace, service account)`;
/// serving `config_dir` when given; the xDS port on `xds_addr` (`127.0.0.1:0` for any).
pub async fn start_with_ca(
    dir: &Path,
    config_dir: Option<PathBuf>,
    xds_addr: SocketAddr,
    grants: &[(&str, &str, &str)],
) -> ControlPlane {
    let tokens = dir.join("tokens.yaml");
    let mut text = String::from("tokens:\n");
    for (token, ns, sa) in grants {
        text.push_str(&format!(
            "- {{token: \"{token}\", namespace: {ns}, serviceAccount: {sa}}}\n"
        ));
    }
    std::fs::write(&tokens, text).expect("write the token file");
    ControlPlane::start(Options {
        config_dir,
        xds_addr,
        admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ca: Some(control_plane::ca::CaOptions {
            token_file: Some(tokens),
            ..control_plane::ca::CaOptions::default()
        }),
        ..Options::default()
    })
    .await
    .expect("control plane starts")
}

/// A static mesh without a control plane: target `host:port` routes everything to one cluster
/// (`outbound|<port>||<host>`) holding `addr`, over mutual TLS with `tls` when given.
pub fn single_cluster(
    host: &str,
    port: u16,
    addr: SocketAddr,
    tls: Option<mesh_core::cluster::UpstreamTls>,
) -> mesh_core::MeshResources {
    use mesh_core::route::{ForwardAction, Route, RouteAction};
    let target = mesh_core::target_name(host, port);
    let cluster = mesh_core::cluster_name(host, port, None);
    let mut r = mesh_core::MeshResources::default();
    let action = RouteAction::Forward(ForwardAction::to_cluster(cluster.clone()));
    r.add_target(&target, host, vec![Route::new("all", action)]);
    let mut c = mesh_core::cluster::Cluster::new(cluster);
    c.tls = tls;
    r.add_cluster(c, vec![mesh_core::endpoint::Endpoint::new(addr)]);
    r
}
