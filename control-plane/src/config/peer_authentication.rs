//! `PeerAuthentication` (security.istio.io): which mutual-TLS mode a workload's server accepts.

use std::collections::BTreeMap;

use mesh_core::inbound::MtlsMode;
use serde::Deserialize;

use super::diagnostic::Findings;

/// The `spec` of a `PeerAuthentication`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PeerAuthentication {
    /// Workloads of the namespace this applies to. Default: every workload of the namespace (of
    /// the whole mesh in the root namespace).
    pub selector: Option<Selector>,
    /// The mode. Default: inherited from the less specific policy (mesh default: `STRICT`).
    pub mtls: Option<MutualTls>,
    /// Per-port modes; only with a `selector`, as in Istio. Default: none.
    pub port_level_mtls: BTreeMap<u16, MutualTls>,
}

/// `selector`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Selector {
    /// Labels a workload must carry (all of them).
    pub match_labels: BTreeMap<String, String>,
}

/// `mtls`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MutualTls {
    /// `STRICT`, `PERMISSIVE`, `DISABLE` or `UNSET` (inherit). Default: `UNSET`.
    pub mode: Option<String>,
}

impl MutualTls {
    /// The mode, `None` for `UNSET` (inherit). Valid once checked.
    pub fn mode(&self) -> Option<MtlsMode> {
        match self.mode.as_deref() {
            Some("STRICT") => Some(MtlsMode::Strict),
            Some("PERMISSIVE") => Some(MtlsMode::Permissive),
            Some("DISABLE") => Some(MtlsMode::Disable),
            _ => None,
        }
    }

    fn check(&self, at: &str, f: &mut Findings) {
        match self.mode.as_deref() {
            None | Some("UNSET" | "STRICT" | "PERMISSIVE" | "DISABLE") => {}
            Some(other) => f.error(
                format!("{at}.mode"),
                format!("{other:?} is not STRICT, PERMISSIVE, DISABLE or UNSET"),
            ),
        }
    }
}

impl PeerAuthentication {
    pub(crate) fn check(&self, f: &mut Findings) {
        if let Some(m) = &self.mtls {
            m.check("spec.mtls", f);
        }
        if !self.port_level_mtls.is_empty() && self.selector.is_none() {
            f.error(
                "spec.portLevelMtls",
                "needs a selector (as in Istio: port-level modes apply to selected workloads)",
            );
        }
        for (port, m) in &self.port_level_mtls {
            if *port == 0 {
                f.error("spec.portLevelMtls", "port 0 is not a port");
            }
            m.check(&format!("spec.portLevelMtls.{port}"), f);
        }
    }
}
