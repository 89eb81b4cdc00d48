use std::time::Duration;

use mesh_core::route::LocalRateLimit;
use tokio::time::Instant;

use super::*;

fn bucket(max: u32, per_fill: u32, ms: u64) -> TokenBucket {
    TokenBucket::new(LocalRateLimit {
        max_tokens: max,
        tokens_per_fill: per_fill,
        fill_interval: Duration::from_millis(ms),
    })
}

#[tokio::test(start_paused = true)]
async fn a_burst_then_one_token_per_fill() {
    let b = bucket(3, 1, 100);
    let now = Instant::now();
    for _ in 0..3 {
        assert!(b.try_acquire(now).is_ok());
    }
    assert_eq!(b.try_acquire(now), Err(Duration::from_millis(100)));
    tokio::time::advance(Duration::from_millis(130)).await;
    assert!(b.try_acquire(Instant::now()).is_ok());
    assert_eq!(
        b.try_acquire(Instant::now()),
        Err(Duration::from_millis(70))
    );
    // A long pause refills only up to the bucket size.
    tokio::time::advance(Duration::from_secs(10)).await;
    let now = Instant::now();
    assert_eq!((0..5).filter(|_| b.try_acquire(now).is_ok()).count(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_layer_answers_429_with_a_retry_hint() {
    use tower::{Layer, Service, ServiceExt};
    let inner = tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(crate::client::body::empty()))
    });
    let mut svc = RateLimitLayer::new(LocalRateLimit {
        max_tokens: 1,
        tokens_per_fill: 1,
        fill_interval: Duration::from_millis(1500),
    })
    .layer(inner);
    let ok = svc
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(()))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let limited = svc
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(()))
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "2");
    assert_eq!(limited.headers()["x-ratelimit-reset-ms"], "1500");
    assert_eq!(limited.headers()["x-envoy-ratelimited"], "true");
}

#[test]
fn concurrent_takers_never_exceed_the_bucket() {
    let b = std::sync::Arc::new(bucket(1000, 1, 60_000));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let now = rt.block_on(async { Instant::now() });
    let taken: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                s.spawn(move || (0..500).filter(|_| b.try_acquire(now).is_ok()).count())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(taken, 1000);
}
