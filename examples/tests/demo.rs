//! The demo runs end to end, every step doing what it says: the canary split is observed, the
//! failing instance is retried around, ejected and comes back, the intruder is refused.

use std::process::Command;

#[test]
fn the_demo_runs_every_step_and_exits_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--duration", "2", "--rate", "40"])
        .output()
        .expect("the demo starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    for line in [
        "canary: v3 at 10%",
        "canary: v3 at 100%",
        "fault injected: reviews-v2",
        "ejection(s) of v2",
        "the intruder gets: 200",
        "the intruder gets: 403 RBAC: access denied",
        "every step did what it said",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
}

#[test]
fn a_bad_flag_is_refused_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--steps", "teleport"])
        .output()
        .expect("the demo starts");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("teleport") && stderr.contains("canary"),
        "{stderr}"
    );
}
