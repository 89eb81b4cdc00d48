use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use mesh_core::cluster::{FailurePercentageEjection, OutlierDetection, SuccessRateEjection};
use tokio::time::{Instant, advance};
use tower::{Layer, ServiceExt};
use tower_test::mock;

use super::*;

const BASE: Duration = Duration::from_secs(30);

fn endpoints(n: u16) -> Vec<Arc<EndpointStats>> {
    let epoch = Instant::now();
    (0..n)
        .map(|i| Arc::new(EndpointStats::new(([10, 0, 0, 1], 8000 + i).into(), epoch)))
        .collect()
}

fn fail(d: &OutlierDetector, e: &EndpointStats, times: u32) -> Option<EjectionReason> {
    let mut last = None;
    for _ in 0..times {
        last = d.report(e, Some(500), false, Instant::now()).or(last);
    }
    last
}

fn succeed(d: &OutlierDetector, e: &EndpointStats, times: u32) {
    for _ in 0..times {
        d.report(e, Some(200), false, Instant::now());
    }
}

#[tokio::test(start_paused = true)]
async fn five_consecutive_5xx_eject_for_the_base_time_then_twice_as_long() {
    let d = OutlierDetector::new(OutlierDetection::default());
    let eps = endpoints(1);
    let e = &eps[0];
    assert_eq!(fail(&d, e, 4), None);
    assert!(!e.is_ejected(Instant::now()));
    assert_eq!(fail(&d, e, 1), Some(EjectionReason::Consecutive5xx));
    assert!(e.is_ejected(Instant::now()));
    assert_eq!(d.ejected_count(), 1);

    // Responses still in flight when it was ejected keep counting, but do not re-eject.
    fail(&d, e, 3);
    advance(BASE - Duration::from_millis(1)).await;
    assert!(e.is_ejected(Instant::now()));
    advance(Duration::from_millis(1)).await;
    assert!(
        !e.is_ejected(Instant::now()),
        "returns after base_ejection_time"
    );

    // The consecutive counter restarted on return: 4 more failures do not eject.
    assert_eq!(fail(&d, e, 4), None);
    assert_eq!(d.ejected_count(), 0);
    assert_eq!(fail(&d, e, 1), Some(EjectionReason::Consecutive5xx));
    advance(BASE).await;
    assert!(
        e.is_ejected(Instant::now()),
        "second ejection lasts 2× the base"
    );
    advance(BASE).await;
    assert!(!e.is_ejected(Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn ejection_time_is_capped_and_the_multiplier_decays_while_healthy() {
    let d = OutlierDetector::new(OutlierDetection {
        max_ejection_time: Duration::from_secs(45),
        ..OutlierDetection::default()
    });
    let eps = endpoints(1);
    let e = &eps[0];
    for _ in 0..2 {
        fail(&d, e, 5);
        advance(Duration::from_secs(60)).await;
    }
    // Third ejection: 3 × 30 s capped at 45 s.
    fail(&d, e, 5);
    advance(Duration::from_secs(44)).await;
    assert!(e.is_ejected(Instant::now()));
    advance(Duration::from_secs(1)).await;
    assert!(!e.is_ejected(Instant::now()));
    d.sweep(&eps, Instant::now()); // returns it
    assert_eq!(e.ejections.load(std::sync::atomic::Ordering::Relaxed), 3);
    d.sweep(&eps, Instant::now());
    d.sweep(&eps, Instant::now());
    assert_eq!(e.ejections.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_counters() {
    let d = OutlierDetector::new(OutlierDetection {
        consecutive_gateway_failure: Some(3),
        ..OutlierDetection::default()
    });
    let eps = endpoints(1);
    let e = &eps[0];
    fail(&d, e, 4);
    succeed(&d, e, 1);
    assert_eq!(fail(&d, e, 4), None);

    // A non-gateway 5xx resets the gateway counter; connect failures count as gateway failures.
    let d = OutlierDetector::new(OutlierDetection {
        consecutive_5xx: None,
        consecutive_gateway_failure: Some(3),
        ..OutlierDetection::default()
    });
    let now = Instant::now();
    d.report(e, Some(503), false, now);
    d.report(e, Some(503), false, now);
    d.report(e, Some(500), false, now);
    assert_eq!(d.report(e, Some(502), false, now), None);
    assert_eq!(d.report(e, None, true, now), None);
    assert!(!e.is_ejected(now));
    assert_eq!(
        d.report(e, None, true, now),
        Some(EjectionReason::ConsecutiveGatewayFailure)
    );
}

#[tokio::test(start_paused = true)]
async fn max_ejection_percent_caps_ejections() {
    let d = OutlierDetector::new(OutlierDetection {
        max_ejection_percent: 50,
        ..OutlierDetection::default()
    });
    let eps = endpoints(4);
    d.set_host_count(eps.len());
    let ejected: Vec<_> = eps[..3].iter().map(|e| fail(&d, e, 5).is_some()).collect();
    assert_eq!(ejected, [true, true, false]);
    assert_eq!(d.ejected_count(), 2);

    // With 10 % of 4 endpoints, one may still be ejected.
    let d = OutlierDetector::new(OutlierDetection::default());
    let eps = endpoints(4);
    d.sweep(&eps, Instant::now());
    assert!(fail(&d, &eps[0], 5).is_some());
    assert!(fail(&d, &eps[1], 5).is_none());
}

#[tokio::test(start_paused = true)]
async fn success_rate_ejects_only_the_outlier() {
    let d = OutlierDetector::new(OutlierDetection {
        consecutive_5xx: None,
        success_rate: Some(SuccessRateEjection {
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1900,
        }),
        ..OutlierDetection::default()
    });
    let eps = endpoints(6);
    for e in &eps[..4] {
        succeed(&d, e, 100);
    }
    // 50 % success; mean 90, stdev 20, threshold 90 − 38 = 52.
    for _ in 0..50 {
        succeed(&d, &eps[4], 1);
        fail(&d, &eps[4], 1);
    }
    // Below the request volume: not judged, however bad.
    fail(&d, &eps[5], 99);
    let ejected = d.sweep(&eps, Instant::now());
    assert_eq!(ejected.len(), 1);
    assert_eq!(ejected[0].addr, eps[4].addr);
    assert!(eps[4].is_ejected(Instant::now()));
    assert_eq!(
        eps[4]
            .interval_success
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    // Fewer than minimum_hosts qualifying: no success-rate ejection at all.
    for e in &eps[..3] {
        succeed(&d, e, 100);
    }
    fail(&d, &eps[3], 100);
    assert!(d.sweep(&eps, Instant::now()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn failure_percentage_ejects_only_the_outlier() {
    let d = OutlierDetector::new(OutlierDetection {
        consecutive_5xx: None,
        max_ejection_percent: 100,
        failure_percentage: Some(FailurePercentageEjection {
            threshold: 85,
            minimum_hosts: 3,
            request_volume: 50,
        }),
        ..OutlierDetection::default()
    });
    let eps = endpoints(3);
    succeed(&d, &eps[0], 45);
    fail(&d, &eps[0], 5);
    succeed(&d, &eps[1], 50);
    succeed(&d, &eps[2], 5);
    fail(&d, &eps[2], 45);
    let ejected = d.sweep(&eps, Instant::now());
    assert_eq!(ejected.len(), 1);
    assert_eq!(ejected[0].addr, eps[2].addr);
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_runs_every_interval_until_stopped() {
    let d = Arc::new(OutlierDetector::new(OutlierDetection {
        consecutive_5xx: None,
        failure_percentage: Some(FailurePercentageEjection {
            threshold: 50,
            minimum_hosts: 1,
            request_volume: 1,
        }),
        ..OutlierDetection::default()
    }));
    let eps = endpoints(1);
    let list = eps.clone();
    let handle = spawn_sweeper(&d, move || list.clone());
    fail(&d, &eps[0], 1);
    tokio::time::sleep(Duration::from_millis(9_999)).await;
    assert!(!eps[0].is_ejected(Instant::now()));
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert!(
        eps[0].is_ejected(Instant::now()),
        "ejected by the sweep at 10 s"
    );
    drop(d);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(handle.is_finished(), "the task ends with its detector");
}

#[tokio::test(start_paused = true)]
async fn the_layer_reports_responses_and_errors() {
    let d = Arc::new(OutlierDetector::new(OutlierDetection::default()));
    let eps = endpoints(1);
    let (svc, mut handle) = mock::pair::<Request<Full<Bytes>>, Response<Full<Bytes>>>();
    let svc = OutlierLayer::new(d, eps[0].clone()).layer(svc);
    tokio::spawn(async move {
        for i in 0..5 {
            let (_, send) = handle.next_request().await.unwrap();
            if i % 2 == 0 {
                let res = Response::builder().status(503).body(Full::default());
                send.send_response(res.unwrap());
            } else {
                send.send_error(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
            }
        }
    });
    for _ in 0..5 {
        let req = Request::new(Full::default());
        let _ = svc.clone().oneshot(req).await;
    }
    assert!(eps[0].is_ejected(Instant::now()));
}
