//! The walk-through: each step edits the YAML in the control plane's config directory, exactly
//! as an operator would, and the mesh picks the change up live.

use std::path::{Path, PathBuf};

/// The steps, in order; `--steps` picks some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Step {
    /// Canary reviews v3: 10% → 50% → 100%.
    Canary,
    /// One reviews instance fails half its calls: retries hide it, outlier detection ejects it,
    /// it comes back after its ejection time.
    Fault,
    /// An AuthorizationPolicy lets only reviews call ratings; the intruder is refused.
    Deny,
}

/// The demo's config directory (a copy of `examples/demo/config`).
pub(crate) struct ConfigDir {
    pub(crate) path: PathBuf,
}

impl ConfigDir {
    /// Copies the demo's config into `dir`.
    pub(crate) fn create(dir: &Path) -> std::io::Result<ConfigDir> {
        let src = source();
        let path = dir.join("config");
        std::fs::create_dir_all(&path)?;
        for entry in std::fs::read_dir(src.join("config"))? {
            let entry = entry?;
            std::fs::copy(entry.path(), path.join(entry.file_name()))?;
        }
        Ok(ConfigDir { path })
    }

    /// Writes `name` atomically (a rename), so the control plane never reads half a file.
    fn write(&self, name: &str, text: &str) -> std::io::Result<()> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, self.path.join(name))
    }

    /// Routes reviews by `(subset, weight)`; `None` as subset means every endpoint.
    pub(crate) fn route_reviews(&self, split: &[(Option<&str>, u32)]) -> std::io::Result<()> {
        let mut routes = String::new();
        for (subset, weight) in split {
            let subset = subset.map_or(String::new(), |s| format!(", subset: {s}"));
            routes.push_str(&format!(
                "    - destination: {{ host: reviews.shop.svc.cluster.local{subset} }}\n      weight: {weight}\n"
            ));
        }
        let yaml = format!(
            "# Written by the demo.\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{ name: reviews, namespace: shop }}\nspec:\n  hosts: [reviews.shop.svc.cluster.local]\n  http:\n  - name: canary\n    route:\n{routes}    timeout: 2s\n    retries: {{ attempts: 2, retryOn: \"unavailable,reset,connect-failure\" }}\n"
        );
        self.write("reviews-route.yaml", &yaml)
    }

    /// Adds the AuthorizationPolicy that lets only reviews call ratings.
    pub(crate) fn protect_ratings(&self) -> std::io::Result<()> {
        let text = std::fs::read_to_string(source().join("steps/ratings-policy.yaml"))?;
        self.write("ratings-policy.yaml", &text)
    }
}

/// `examples/demo` in the source tree.
fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo")
}
