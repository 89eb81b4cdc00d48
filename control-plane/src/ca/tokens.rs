//! Bootstrap tokens: which secret grants which identity before a workload has a certificate.
//!
//! The operator writes a YAML file and hands each workload its token:
//!
//! ```yaml
//! tokens:
//! - token: "3f9c0a6e1d2b4c5a8e7f6d5c4b3a2918"   # at least 16 characters; `openssl rand -hex 16`
//!   namespace: default
//!   serviceAccount: web
//! ```
//!
//! The file is re-read when its size or modification time changes, checked on every
//! authentication (one `stat`), so a token added is usable by the very next request. A file that
//! does not read or parse keeps the previous tokens and logs an error naming the file and reason.
//! Tokens are compared in constant time and never appear in messages or logs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use mesh_core::identity::SpiffeId;
use serde::Deserialize;

/// Shortest bootstrap token accepted, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("token file {}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape, or an entry is invalid.
    #[error("token file {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (with the entry index when it is about one entry; never the token).
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    tokens: Vec<EntrySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EntrySpec {
    /// Kept as a YAML value so that a wrongly typed token is refused without being echoed.
    token: serde_yaml_ng::Value,
    namespace: String,
    service_account: String,
}

/// Tokens and the identity each grants.
#[derive(Default)]
pub struct TokenTable {
    entries: Vec<(Vec<u8>, SpiffeId)>,
}

impl std::fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenTable")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

impl TokenTable {
    /// Parses a token file's YAML; identities are in `trust_domain`. The error says what is wrong
    /// (with the entry index), never the token.
    pub fn parse(yaml: &str, trust_domain: &str) -> Result<TokenTable, String> {
        let spec: FileSpec = if yaml.trim().is_empty() {
            FileSpec { tokens: Vec::new() }
        } else {
            serde_yaml_ng::from_str(yaml).map_err(|e| format!("not a token file: {e}"))?
        };
        let mut entries: Vec<(Vec<u8>, SpiffeId)> = Vec::with_capacity(spec.tokens.len());
        for (i, e) in spec.tokens.into_iter().enumerate() {
            let serde_yaml_ng::Value::String(token) = e.token else {
                return Err(format!("tokens[{i}].token: must be a string (quote it)"));
            };
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "tokens[{i}].token: shorter than {MIN_TOKEN_LEN} characters; use a random secret such as `openssl rand -hex 16`"
                ));
            }
            if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "tokens[{i}].token: contains whitespace or control characters"
                ));
            }
            let id = SpiffeId::new(trust_domain, &e.namespace, &e.service_account)
                .map_err(|err| format!("tokens[{i}]: {err}"))?;
            if let Some(j) = entries.iter().position(|(t, _)| t == token.as_bytes()) {
                return Err(format!("tokens[{i}].token: same token as tokens[{j}]"));
            }
            entries.push((token.into_bytes(), id));
        }
        Ok(TokenTable { entries })
    }

    /// The identity `presented` grants. Every token is compared, each in constant time, so the
    /// time taken does not tell how much of a token was right (only, at most, its length).
    pub fn lookup(&self, presented: &[u8]) -> Option<&SpiffeId> {
        let mut found = None;
        for (token, id) in &self.entries {
            let eq = constant_time_eq(token, presented);
            if eq && found.is_none() {
                found = Some(id);
            }
        }
        found
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Equality whose time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What identifies the file's content without reading it: size and modification time.
type Stamp = Option<(u64, Option<SystemTime>)>;

/// A token file, re-read when it changes.
pub struct TokenFile {
    path: PathBuf,
    trust_domain: String,
    state: Mutex<Loaded>,
}

struct Loaded {
    stamp: Stamp,
    table: Arc<TokenTable>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl TokenFile {
    /// Reads `path` once; it must be valid now (later, a bad version keeps the previous tokens).
    pub fn open(path: &Path, trust_domain: &str) -> Result<TokenFile, TokenFileError> {
        let stamp = stamp(path);
        let table = read(path, trust_domain)?;
        record(&table);
        tracing::info!(file = %path.display(), tokens = table.len(), "CA: bootstrap tokens loaded");
        Ok(TokenFile {
            path: path.to_path_buf(),
            trust_domain: trust_domain.to_string(),
            state: Mutex::new(Loaded {
                stamp,
                table: Arc::new(table),
            }),
        })
    }

    /// The current tokens, re-reading the file first if its size or modification time changed.
    pub fn current(&self) -> Arc<TokenTable> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamp(&self.path);
        if now != state.stamp {
            state.stamp = now;
            match read(&self.path, &self.trust_domain) {
                Ok(table) => {
                    tracing::info!(file = %self.path.display(), tokens = table.len(), "CA: bootstrap tokens reloaded");
                    metrics::counter!("mesh_ca_token_file_reloads_total", "result" => "ok")
                        .increment(1);
                    record(&table);
                    state.table = Arc::new(table);
                }
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        kept = state.table.len(),
                        "CA: token file not reloaded; keeping the previous tokens"
                    );
                    metrics::counter!("mesh_ca_token_file_reloads_total", "result" => "error")
                        .increment(1);
                }
            }
        }
        state.table.clone()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

fn read(path: &Path, trust_domain: &str) -> Result<TokenTable, TokenFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    TokenTable::parse(&text, trust_domain).map_err(|reason| TokenFileError::Invalid {
        path: path.to_path_buf(),
        reason,
    })
}

fn record(table: &TokenTable) {
    metrics::gauge!("mesh_ca_bootstrap_tokens").set(table.len() as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const TOKEN_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn yaml(entries: &[(&str, &str, &str)]) -> String {
        let mut s = String::from("tokens:\n");
        for (t, ns, sa) in entries {
            s.push_str(&format!(
                "- token: \"{t}\"\n  namespace: {ns}\n  serviceAccount: {sa}\n"
            ));
        }
        s
    }

    #[test]
    fn a_token_grants_its_identity_and_nothing_else_does() {
        let t = TokenTable::parse(
            &yaml(&[(TOKEN_A, "default", "web"), (TOKEN_B, "shop", "cart")]),
            "mesh.local",
        )
        .unwrap();
        assert_eq!(
            t.lookup(TOKEN_A.as_bytes()).unwrap().to_string(),
            "spiffe://mesh.local/ns/default/sa/web"
        );
        assert_eq!(
            t.lookup(TOKEN_B.as_bytes()).unwrap().to_string(),
            "spiffe://mesh.local/ns/shop/sa/cart"
        );
        assert!(t.lookup(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab").is_none());
        assert!(t.lookup(&TOKEN_A.as_bytes()[..31]).is_none());
        assert!(t.lookup(b"").is_none());
    }

    #[test]
    fn bad_files_say_which_entry_and_never_show_the_token() {
        let secret = "s3cr3t-but-short";
        let cases = [
            (
                yaml(&[("short", "default", "web")]),
                "tokens[0].token: shorter than 16",
            ),
            (
                yaml(&[(TOKEN_A, "default", "web"), (TOKEN_A, "default", "db")]),
                "tokens[1].token: same token as tokens[0]",
            ),
            (yaml(&[(TOKEN_A, "Bad NS", "web")]), "tokens[0]:"),
            (
                "tokens:\n- token: 12345678901234567890\n  namespace: a\n  serviceAccount: b\n"
                    .into(),
                "tokens[0].token: must be a string",
            ),
            (
                format!("tokens:\n- token: \"{secret}x\"\n  namespace: a\n  sa: b\n"),
                "unknown field `sa`",
            ),
            ("tokens: [".into(), "not a token file"),
        ];
        for (text, want) in cases {
            let e = TokenTable::parse(&text, "cluster.local").unwrap_err();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
            assert!(
                !e.contains(secret) && !e.contains(TOKEN_A),
                "{e} echoes a token"
            );
            assert!(!e.contains("12345678901234567890"), "{e} echoes a token");
        }
    }

    #[test]
    fn a_changed_file_is_reloaded_and_a_bad_one_keeps_the_previous_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        std::fs::write(&path, yaml(&[(TOKEN_A, "default", "web")])).unwrap();
        let file = TokenFile::open(&path, "cluster.local").unwrap();
        assert_eq!(file.current().len(), 1);

        std::fs::write(
            &path,
            yaml(&[(TOKEN_A, "default", "web"), (TOKEN_B, "default", "db")]),
        )
        .unwrap();
        assert!(file.current().lookup(TOKEN_B.as_bytes()).is_some());

        std::fs::write(&path, "tokens: [ {token: 1").unwrap();
        let kept = file.current();
        assert_eq!(kept.len(), 2, "a bad file keeps the previous tokens");

        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.current().len(), 2, "a missing file keeps them too");
    }

    #[test]
    fn a_missing_or_bad_file_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.yaml");
        let e = TokenFile::open(&path, "cluster.local").unwrap_err();
        assert!(e.to_string().contains("nope.yaml: cannot read"), "{e}");
        std::fs::write(&path, "tokens: 3").unwrap();
        let e = TokenFile::open(&path, "cluster.local").unwrap_err();
        assert!(e.to_string().contains("nope.yaml: not a token file"), "{e}");
    }
}
