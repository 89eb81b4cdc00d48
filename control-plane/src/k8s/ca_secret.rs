//! The CA's root and key in a Kubernetes Secret, so every replica signs with the same CA.
//!
//! At start each replica reads the Secret (`ca-cert.pem`, `ca-key.pem`, `cert-chain.pem`,
//! `root-cert.pem`: Istio's `cacerts` layout, so an operator can also provide it). When it is
//! absent, the replica generates a root and creates the Secret; creation is atomic, so when two
//! replicas start together one wins, and the other gets 409 Conflict and uses the winner's. A
//! Secret that lacks one of the four keys is an error naming it: the CA never silently replaces
//! a CA someone provided.
//!
//! The files are written to a private directory (key mode 0600) and loaded as a plugged-in CA,
//! with every check that implies (the key matches, the chain ends at the root, nothing expired).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::ca::store::{self, CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT};
use crate::ca::{CaError, CaSource};

/// Why the CA Secret could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaSecretError {
    /// The API server refused or failed a request.
    #[error("CA Secret {namespace}/{name}: {source}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// The Secret exists without every CA file.
    #[error(
        "CA Secret {namespace}/{name} lacks {missing:?} (it needs ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem)"
    )]
    Incomplete {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The missing keys.
        missing: Vec<&'static str>,
    },
    /// Generating or writing the files failed.
    #[error(transparent)]
    Ca(#[from] CaError),
}

/// Reads the CA from Secret `namespace/name` (creating it with a new root for `trust_domain`
/// when absent), writes its files to `dir`, and returns the source to start the CA with.
pub async fn load_or_create(
    client: kube::Client,
    namespace: &str,
    name: &str,
    trust_domain: &str,
    dir: &Path,
) -> Result<CaSource, CaSecretError> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let api_err = |source| CaSecretError::Api {
        namespace: namespace.into(),
        name: name.into(),
        source,
    };
    let secret = match api.get_opt(name).await.map_err(api_err)? {
        Some(s) => s,
        None => {
            let files = store::files(&store::generate(trust_domain)?);
            let new = Secret {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(namespace.into()),
                    labels: Some(BTreeMap::from([(
                        "app.kubernetes.io/managed-by".to_string(),
                        "mesh-control-plane".to_string(),
                    )])),
                    ..ObjectMeta::default()
                },
                type_: Some("Opaque".into()),
                data: Some(
                    files
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
                        .collect(),
                ),
                ..Secret::default()
            };
            match api.create(&PostParams::default(), &new).await {
                Ok(s) => {
                    tracing::info!(%namespace, %name, "CA: generated a root and stored it in the Secret");
                    s
                }
                // Another replica created it first: use theirs.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    api.get(name).await.map_err(api_err)?
                }
                Err(e) => return Err(api_err(e)),
            }
        }
    };
    let data = secret.data.unwrap_or_default();
    let missing: Vec<&'static str> = [CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT]
        .into_iter()
        .filter(|k| !data.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(CaSecretError::Incomplete {
            namespace: namespace.into(),
            name: name.into(),
            missing,
        });
    }
    let _ = std::fs::remove_dir_all(dir);
    store::create_private_dir(dir)?;
    let files: Vec<(&str, String)> = [CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT]
        .into_iter()
        .map(|k| (k, String::from_utf8_lossy(&data[k].0).into_owned()))
        .collect();
    store::write_files(dir, &files)?;
    Ok(CaSource::Plugged(PathBuf::from(dir)))
}
