use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use mesh_core::cluster::{CircuitBreakers, RetryBudget as BudgetConfig};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

use super::*;

type Req = Request<Full<Bytes>>;
type Res = Response<Full<Bytes>>;

fn limits(max_requests: u32) -> CircuitBreakers {
    CircuitBreakers {
        max_connections: 1,
        max_pending_requests: 2,
        max_requests,
        max_retries: 1,
        retry_budget: None,
    }
}

fn req() -> Req {
    Request::new(Full::new(Bytes::new()))
}

fn ok() -> Res {
    Response::new(Full::new(Bytes::new()))
}

#[tokio::test(start_paused = true)]
async fn max_requests_pass_then_overflow_answers_503() {
    let breaker = CircuitBreaker::new(&limits(2));
    let (svc, mut handle) = mock::pair::<Req, Res>();
    let mut svc = BreakerLayer::new(breaker.clone()).layer(svc);

    // Two requests held open by the upstream.
    let first = svc.ready().await.unwrap().call(req());
    let second = svc.ready().await.unwrap().call(req());
    assert_eq!(breaker.requests(), 2);

    // The third is refused locally, without reaching the upstream.
    let refused = svc.ready().await.unwrap().call(req()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["x-envoy-overloaded"], "true");
    assert_eq!(refused.headers()[OVERFLOW_HEADER], "max_requests");
    let overflow = refused.extensions().get::<Overflow>().unwrap();
    assert_eq!((overflow.limit, overflow.max), (Limit::MaxRequests, 2));

    // The upstream saw exactly two requests; answering one frees its slot.
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(ok());
    assert_eq!(first.await.unwrap().status(), StatusCode::OK);
    assert_eq!(breaker.requests(), 1);

    let third = svc.ready().await.unwrap().call(req());
    let (_, send2) = handle.next_request().await.unwrap();
    let (_, send3) = handle.next_request().await.unwrap();
    send2.send_response(ok());
    send3.send_response(ok());
    assert_eq!(second.await.unwrap().status(), StatusCode::OK);
    assert_eq!(third.await.unwrap().status(), StatusCode::OK);
    assert_eq!(breaker.requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn live_update_raises_the_limit_and_keeps_counts() {
    let breaker = CircuitBreaker::new(&limits(1));
    let (svc, mut handle) = mock::pair::<Req, Res>();
    let mut svc = BreakerLayer::new(breaker.clone()).layer(svc);

    let held = svc.ready().await.unwrap().call(req());
    let refused = svc.ready().await.unwrap().call(req()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);

    breaker.update(&limits(2));
    assert_eq!(breaker.requests(), 1, "in-flight count survives the update");
    let admitted = svc.ready().await.unwrap().call(req());
    let refused = svc.ready().await.unwrap().call(req()).await.unwrap();
    assert_eq!(refused.headers()[OVERFLOW_HEADER], "max_requests");

    for _ in 0..2 {
        let (_, send) = handle.next_request().await.unwrap();
        send.send_response(ok());
    }
    assert_eq!(held.await.unwrap().status(), StatusCode::OK);
    assert_eq!(admitted.await.unwrap().status(), StatusCode::OK);
}

#[test]
fn each_cap_counts_separately_and_permits_release_on_drop() {
    let b = CircuitBreaker::new(&limits(10));
    let conn = b.try_connection().unwrap();
    assert_eq!(conn.limit(), Limit::MaxConnections);
    assert_eq!(b.try_connection().unwrap_err().limit, Limit::MaxConnections);
    let pending: Vec<_> = (0..2).map(|_| b.try_pending().unwrap()).collect();
    let err = b.try_pending().unwrap_err();
    assert_eq!(err.limit.as_str(), "max_pending_requests");
    assert_eq!(
        err.to_string(),
        "circuit breaker overflow: max_pending_requests (2) reached"
    );
    let retry = b.try_retry().unwrap();
    assert_eq!(b.try_retry().unwrap_err().limit, Limit::MaxRetries);
    assert_eq!((b.connections(), b.pending(), b.retries()), (1, 2, 1));
    drop((conn, pending, retry));
    assert_eq!((b.connections(), b.pending(), b.retries()), (0, 0, 0));
}

#[test]
fn retry_budget_replaces_max_retries_and_follows_requests() {
    let b = CircuitBreaker::new(&CircuitBreakers {
        retry_budget: Some(BudgetConfig {
            budget_percent: 50.0,
            min_retry_concurrency: 0,
        }),
        ..limits(10)
    });
    assert!(b.try_retry().is_err(), "no requests, no floor");
    let requests: Vec<_> = (0..4).map(|_| b.try_request().unwrap()).collect();
    let retries: Vec<_> = (0..2).map(|_| b.try_retry().unwrap()).collect();
    assert_eq!(b.try_retry().unwrap_err().max, 2);
    drop((requests, retries));
}
