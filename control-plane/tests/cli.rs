//! `mesh-control-plane validate DIR`: every problem printed with file, document, field and reason;
//! exit status 1 when a document is invalid, 0 otherwise.

use std::process::Command;

const GOOD: &str = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.mesh.local]
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: { http: 18080 }
    labels: { version: v1 }
"#;

const BAD: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web.mesh.local]
  http:
  - route:
    - destination: { host: web.mesh.local, subset: nope }
---
apiVersion: networking.istio.io/v1
kind: Gadget
metadata: { name: what }
spec: {}
"#;

fn validate(dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mesh-control-plane"))
        .arg("validate")
        .arg(dir)
        .output()
        .expect("run mesh-control-plane");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_valid_directory_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.yaml"), GOOD).unwrap();
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 document(s) accepted, 0 error(s)"), "{out}");
}

#[test]
fn every_problem_is_printed_and_the_exit_status_is_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.yaml"), GOOD).unwrap();
    std::fs::write(dir.path().join("bad.yaml"), BAD).unwrap();
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "{out}");
    let subset = errors
        .iter()
        .find(|l| l.contains("nope"))
        .expect("unknown subset reported");
    assert!(
        subset.contains("bad.yaml: document 0 (VirtualService default/web)"),
        "{subset}"
    );
    assert!(
        subset.contains("field spec.http[0].route[0].destination: unknown subset"),
        "{subset}"
    );
    let kind = errors
        .iter()
        .find(|l| l.contains("Gadget"))
        .expect("unknown kind reported");
    assert!(kind.contains("bad.yaml: document 1"), "{kind}");
}

#[test]
fn the_example_mesh_in_the_readme_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/config");
    let (code, out) = validate(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 error(s), 0 warning(s)"), "{out}");
}

/// `serve` with the given extra arguments on ephemeral ports; returns the child.
fn serve(config_dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mesh-control-plane"))
        .arg("serve")
        .arg("--config-dir")
        .arg(config_dir)
        .args(["--xds-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mesh-control-plane serve")
}

fn exit_and_stderr(child: std::process::Child) -> (i32, String) {
    let out = child.wait_with_output().expect("wait for serve");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_ca_flags_that_contradict_or_do_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = exit_and_stderr(serve(dir.path(), &["--cert-ttl", "48h"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exceeds the maximum"), "{err}");

    let (code, err) = exit_and_stderr(serve(dir.path(), &["--cert-ttl", "3d"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown unit \"d\""), "{err}");

    let missing = dir.path().join("tokens.yaml");
    let (code, err) = exit_and_stderr(serve(
        dir.path(),
        &["--token-file", missing.to_str().unwrap()],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tokens.yaml: cannot read"), "{err}");
}

#[test]
fn serve_with_a_state_dir_generates_and_keeps_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = serve(dir.path(), &["--state-dir", state.to_str().unwrap()]);
    let root = state.join("ca/root-cert.pem");
    // Up to 20 s for the process to start.
    for _ in 0..400 {
        if root.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let pem = std::fs::read_to_string(&root).expect("root-cert.pem written");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
}

#[test]
fn serve_refuses_kubernetes_flags_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("kubeconfig");
    let (code, err) = exit_and_stderr(serve(
        dir.path(),
        &[
            "--source",
            "kubernetes",
            "--kubeconfig",
            missing.to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--kubeconfig") && err.contains("kubeconfig"),
        "{err}"
    );

    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n\
         current-context: x\n",
    )
    .unwrap();
    let (code, err) = exit_and_stderr(serve(
        dir.path(),
        &[
            "--source",
            "kubernetes",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--injection-addr",
            "127.0.0.1:0",
        ],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--injection-xds-address"), "{err}");
}
