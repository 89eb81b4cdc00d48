//! The Helm chart `charts/mesh-control-plane`, checked offline by `scripts/check_chart.py` with
//! the venv's Python (`$MESH_PYTHON`, prepared by `scripts/test.sh` with helm-python-sdk and
//! kubernetes-validate): lint, render with several value sets, every manifest validated against
//! the Kubernetes 1.33 schemas, the CRD schemas against the repository's documents and broken
//! ones, and values.schema.json against bad values. No cluster is involved.

use std::process::Command;

#[test]
fn the_chart_lints_renders_and_validates_offline() {
    let python = std::env::var(mesh_test::grpcio::PYTHON_ENV).unwrap_or_else(|_| {
        panic!(
            "MESH_PYTHON is not set: run the tests with scripts/test.sh, which prepares the venv"
        )
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/check_chart.py");
    let out = Command::new(&python)
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("run {python} {script}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "check_chart.py failed:\n{text}");
    assert!(text.contains("check_chart: OK"), "{text}");
}
