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
