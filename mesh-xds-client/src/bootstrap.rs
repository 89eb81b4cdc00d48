//! The gRPC xDS bootstrap file (gRFC A27, A47), so one file configures grpcio and us alike.
//!
//! | field | meaning | default |
//! |---|---|---|
//! | `xds_servers[].server_uri` | the control plane, `host:port` (an `http://`/`https://` scheme is accepted) | required |
//! | `xds_servers[].channel_creds[].type` | the first supported of `insecure`, `tls` is used | required |
//! | `xds_servers[].server_features` | e.g. `xds_v3`, `ignore_resource_deletion` | none |
//! | `node.id`, `node.cluster` | sent in `Node` | empty |
//! | `node.metadata` | sent as `Node.metadata` (a JSON object) | none |
//! | `node.locality` | `region`, `zone`, `sub_zone` | empty |
//! | `certificate_providers` | kept verbatim (the workload's certificate comes from the mesh CA in-process) | none |
//! | `meshlib_ca` | our extension: the mesh CA, the workload's SPIFFE ID, its token file and trust bundle (`identity::IdentityOptions::from_bootstrap`); other gRPC implementations ignore unknown top-level keys, while they refuse unknown `certificate_providers` plugins | none |
//! | `server_listener_resource_name_template` | a server's inbound listener name, `%s` = `ip:port` (gRFC A36) | Istio's `xds.istio.io/grpc/lds/inbound/%s` |
//!
//! Lookup order in [`Bootstrap::from_env`]: `MESH_XDS_BOOTSTRAP` (a path), `GRPC_XDS_BOOTSTRAP`
//! (a path), `GRPC_XDS_BOOTSTRAP_CONFIG` (the JSON itself).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Environment variables read by [`Bootstrap::from_env`], in order.
pub const ENV_VARS: [&str; 3] = [
    "MESH_XDS_BOOTSTRAP",
    "GRPC_XDS_BOOTSTRAP",
    "GRPC_XDS_BOOTSTRAP_CONFIG",
];

/// A parsed bootstrap.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// Control planes in order of preference. Only the first is used; the others are read and
    /// kept, not yet tried as fallbacks.
    pub servers: Vec<XdsServer>,
    /// Who we are.
    pub node: NodeInfo,
    /// `certificate_providers`, kept verbatim until mTLS uses it.
    pub certificate_providers: Option<serde_json::Value>,
    /// `meshlib_ca`: where the workload gets its certificate (see
    /// [`crate::identity::IdentityOptions::from_bootstrap`]), kept verbatim.
    pub mesh_ca: Option<serde_json::Value>,
    /// `server_listener_resource_name_template` (gRFC A36). Default: `None`, read as
    /// [`mesh_core::inbound::INBOUND_TEMPLATE`].
    pub server_listener_resource_name_template: Option<String>,
}

impl Bootstrap {
    /// The inbound listener name of a server listening on `addr`.
    pub fn inbound_listener_name(&self, addr: std::net::SocketAddr) -> String {
        mesh_core::inbound::inbound_name(
            self.server_listener_resource_name_template
                .as_deref()
                .unwrap_or(mesh_core::inbound::INBOUND_TEMPLATE),
            addr,
        )
    }
}

/// One control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsServer {
    /// `http://host:port` or `https://host:port`.
    pub uri: String,
    /// The credentials chosen.
    pub creds: ChannelCreds,
    /// Server features, e.g. `xds_v3`, `ignore_resource_deletion`.
    pub features: Vec<String>,
}

impl XdsServer {
    /// True when the server feature `ignore_resource_deletion` (gRFC A53) is set.
    pub fn ignores_resource_deletion(&self) -> bool {
        self.features
            .iter()
            .any(|f| f == "ignore_resource_deletion")
    }
}

/// Channel credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelCreds {
    /// Plaintext.
    Insecure,
    /// TLS with the system roots (not yet supported by the client; reported at connect time).
    Tls,
}

/// `node` of the bootstrap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
    /// `node.metadata`.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `node.locality`.
    pub locality: mesh_core::endpoint::Locality,
}

/// Why a bootstrap could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// No environment variable names a bootstrap.
    #[error(
        "no xDS bootstrap: set one of MESH_XDS_BOOTSTRAP, GRPC_XDS_BOOTSTRAP (a path) or GRPC_XDS_BOOTSTRAP_CONFIG (JSON)"
    )]
    NotConfigured,
    /// The file could not be read.
    #[error("xDS bootstrap {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The JSON is malformed.
    #[error("xDS bootstrap {origin}: invalid JSON: {source}")]
    Json {
        /// The file, or the variable that held the JSON.
        origin: String,
        /// Where and what.
        source: serde_json::Error,
    },
    /// A field is missing or has a value we cannot use.
    #[error("xDS bootstrap {origin}: {field}: {reason}")]
    Invalid {
        /// The file, or the variable that held the JSON.
        origin: String,
        /// e.g. `xds_servers[0].channel_creds`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
struct RawBootstrap {
    #[serde(default)]
    xds_servers: Vec<RawServer>,
    #[serde(default)]
    node: RawNode,
    #[serde(default)]
    certificate_providers: Option<serde_json::Value>,
    #[serde(default)]
    meshlib_ca: Option<serde_json::Value>,
    #[serde(default)]
    server_listener_resource_name_template: Option<String>,
}

#[derive(Deserialize)]
struct RawServer {
    #[serde(default)]
    server_uri: String,
    #[serde(default)]
    channel_creds: Vec<RawCreds>,
    #[serde(default)]
    server_features: Vec<String>,
}

#[derive(Deserialize)]
struct RawCreds {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize, Default)]
struct RawNode {
    #[serde(default)]
    id: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    locality: RawLocality,
}

#[derive(Deserialize, Default)]
struct RawLocality {
    #[serde(default)]
    region: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    sub_zone: String,
}

impl Bootstrap {
    /// Reads the bootstrap named by the environment (see [`ENV_VARS`]).
    pub fn from_env() -> Result<Self, BootstrapError> {
        for var in &ENV_VARS[..2] {
            if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                return Self::from_file(Path::new(&path));
            }
        }
        match std::env::var(ENV_VARS[2]) {
            Ok(json) if !json.is_empty() => Self::from_json(&json, ENV_VARS[2]),
            _ => Err(BootstrapError::NotConfigured),
        }
    }

    /// Reads a bootstrap file.
    pub fn from_file(path: &Path) -> Result<Self, BootstrapError> {
        let text = std::fs::read_to_string(path).map_err(|source| BootstrapError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses bootstrap JSON; `origin` names it in errors.
    pub fn from_json(json: &str, origin: &str) -> Result<Self, BootstrapError> {
        let raw: RawBootstrap =
            serde_json::from_str(json).map_err(|source| BootstrapError::Json {
                origin: origin.to_string(),
                source,
            })?;
        let invalid = |field: String, reason: &str| BootstrapError::Invalid {
            origin: origin.to_string(),
            field,
            reason: reason.to_string(),
        };
        if raw.xds_servers.is_empty() {
            return Err(invalid(
                "xds_servers".into(),
                "must list at least one server",
            ));
        }
        let mut servers = Vec::new();
        for (i, s) in raw.xds_servers.into_iter().enumerate() {
            if s.server_uri.is_empty() {
                return Err(invalid(
                    format!("xds_servers[{i}].server_uri"),
                    "must not be empty",
                ));
            }
            // gRFC A27: use the first credential type we support.
            let creds = s
                .channel_creds
                .iter()
                .find_map(|c| match c.kind.as_str() {
                    "insecure" => Some(ChannelCreds::Insecure),
                    "tls" => Some(ChannelCreds::Tls),
                    _ => None,
                })
                .ok_or_else(|| {
                    invalid(
                        format!("xds_servers[{i}].channel_creds"),
                        "no supported type (supported: insecure, tls)",
                    )
                })?;
            let uri = if s.server_uri.contains("://") {
                s.server_uri
            } else {
                let scheme = if creds == ChannelCreds::Tls {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}", s.server_uri)
            };
            servers.push(XdsServer {
                uri,
                creds,
                features: s.server_features,
            });
        }
        Ok(Bootstrap {
            servers,
            node: NodeInfo {
                id: raw.node.id,
                cluster: raw.node.cluster,
                metadata: raw.node.metadata,
                locality: mesh_core::endpoint::Locality {
                    region: raw.node.locality.region,
                    zone: raw.node.locality.zone,
                    sub_zone: raw.node.locality.sub_zone,
                },
            },
            certificate_providers: raw.certificate_providers,
            mesh_ca: raw.meshlib_ca,
            server_listener_resource_name_template: raw.server_listener_resource_name_template,
        })
    }

    /// A bootstrap for one plaintext server, built in code.
    pub fn insecure(server: &str, node_id: &str) -> Self {
        let uri = if server.contains("://") {
            server.to_string()
        } else {
            format!("http://{server}")
        };
        Bootstrap {
            servers: vec![XdsServer {
                uri,
                creds: ChannelCreds::Insecure,
                features: vec!["xds_v3".into()],
            }],
            node: NodeInfo {
                id: node_id.to_string(),
                ..NodeInfo::default()
            },
            certificate_providers: None,
            mesh_ca: None,
            server_listener_resource_name_template: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_file_grpcio_reads() {
        let b = Bootstrap::from_json(
            r#"{"xds_servers":[{"server_uri":"127.0.0.1:15010","channel_creds":[{"type":"google_default"},{"type":"insecure"}],"server_features":["xds_v3"]}],
                "node":{"id":"app-1","cluster":"shop","locality":{"zone":"z1"},"metadata":{"TRAFFICDIRECTOR_NETWORK_NAME":"x"}}}"#,
            "test",
        )
        .unwrap();
        assert_eq!(b.servers[0].uri, "http://127.0.0.1:15010");
        assert_eq!(b.servers[0].creds, ChannelCreds::Insecure);
        assert_eq!(b.node.id, "app-1");
        assert_eq!(b.node.locality.zone, "z1");
        assert_eq!(b.node.metadata.len(), 1);
    }

    #[test]
    fn errors_name_the_field() {
        let e = Bootstrap::from_json(
            r#"{"xds_servers":[{"server_uri":"x:1","channel_creds":[{"type":"google_default"}]}]}"#,
            "b.json",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "xDS bootstrap b.json: xds_servers[0].channel_creds: no supported type (supported: insecure, tls)"
        );
        let e = Bootstrap::from_json("{", "b.json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("xDS bootstrap b.json: invalid JSON"),
            "{e}"
        );
        let e = Bootstrap::from_json("{}", "b.json").unwrap_err();
        assert!(
            e.to_string()
                .contains("xds_servers: must list at least one server"),
            "{e}"
        );
    }
}
