use std::time::Duration;

use mesh_core::Percent;
use mesh_core::StringMatch;
use mesh_core::route::{AbortStatus, FaultAbort, FaultDelay, FaultPolicy, HeaderMatch};

use super::*;

fn policy(delay_pct: f64, abort_pct: f64) -> FaultPolicy {
    FaultPolicy {
        delay: Some(FaultDelay {
            delay: Duration::from_millis(50),
            percent: Percent::from_percent(delay_pct),
        }),
        abort: Some(FaultAbort {
            status: AbortStatus::Http(503),
            percent: Percent::from_percent(abort_pct),
        }),
        headers: vec![],
    }
}

#[test]
fn percentages_select_by_roll() {
    let req = http::Request::get("/").body(()).unwrap();
    let p = policy(10.0, 25.0);
    assert_eq!(
        decide(&p, &req, 99_999, 249_999),
        Injection {
            delay: Some(Duration::from_millis(50)),
            abort: Some(AbortStatus::Http(503))
        }
    );
    assert_eq!(decide(&p, &req, 100_000, 250_000), Injection::default());
}

#[test]
fn header_match_limits_the_fault() {
    let mut p = policy(100.0, 100.0);
    p.headers = vec![HeaderMatch {
        name: "x-chaos".into(),
        value: Some(StringMatch::Exact("on".into())),
        invert: false,
    }];
    let plain = http::Request::get("/").body(()).unwrap();
    assert_eq!(decide(&p, &plain, 0, 0), Injection::default());
    let chaos = http::Request::get("/")
        .header("x-chaos", "on")
        .body(())
        .unwrap();
    assert!(decide(&p, &chaos, 0, 0).abort.is_some());
}

#[test]
fn grpc_aborts_are_trailers_only_responses() {
    let r = abort_response(AbortStatus::Grpc(14));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["grpc-status"], "14");
}

#[tokio::test(start_paused = true)]
async fn the_layer_delays_then_aborts() {
    use tower::{Layer, ServiceExt};
    let inner = tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(crate::client::body::empty()))
    });
    let svc = FaultLayer::new(policy(100.0, 100.0)).layer(inner);
    let start = tokio::time::Instant::now();
    let resp = svc
        .oneshot(http::Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(start.elapsed(), Duration::from_millis(50));
}
