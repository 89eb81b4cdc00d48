use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use mesh_core::cluster::CircuitBreakers;
use mesh_core::route::{RetryOn, RetryPolicy};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::{BoxError, Layer, ServiceExt};
use tower_test::mock;

use super::*;

type Req = Request<Full<Bytes>>;
type Res = Response<Full<Bytes>>;

enum Step {
    Status(u16),
    Hang,
    Fail(io::ErrorKind),
}

fn policy(retry_on: &[RetryOn], num_retries: u32) -> RetryPolicy {
    RetryPolicy {
        retry_on: retry_on.to_vec(),
        num_retries,
        ..RetryPolicy::default()
    }
}

fn request() -> Req {
    Request::builder()
        .uri("http://svc/x")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap()
}

/// Answers attempts in order; returns, per attempt, its `x-envoy-attempt-count` and arrival time.
fn serve(mut handle: mock::Handle<Req, Res>, script: Vec<Step>) -> JoinHandle<Vec<(u32, Instant)>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut hung = Vec::new();
        for step in script {
            let Some((req, send)) = handle.next_request().await else {
                break;
            };
            let attempt = req.headers()[ATTEMPT_COUNT]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "payload", "every attempt replays the body");
            seen.push((attempt, Instant::now()));
            match step {
                Step::Status(code) => send.send_response(
                    Response::builder()
                        .status(code)
                        .body(Full::new(Bytes::new()))
                        .unwrap(),
                ),
                Step::Hang => hung.push(send),
                Step::Fail(kind) => send.send_error(io::Error::from(kind)),
            }
        }
        // Unscripted attempts are recorded (and fail); hung attempts stay open until the client
        // is gone.
        while let Some((req, _send)) = handle.next_request().await {
            let attempt = req.headers()[ATTEMPT_COUNT]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            seen.push((attempt, Instant::now()));
        }
        drop(hung);
        seen
    })
}

async fn run(layer: RetryLayer, req: Req, script: Vec<Step>) -> (Result<Res, BoxError>, Vec<u32>) {
    let (svc, handle) = mock::pair::<Req, Res>();
    let server = serve(handle, script);
    let result = layer.layer(svc).oneshot(req).await;
    let seen = server.await.unwrap().into_iter().map(|(a, _)| a).collect();
    (result, seen)
}

fn info(res: &Res) -> RetryInfo {
    *res.extensions().get::<RetryInfo>().expect("RetryInfo")
}

#[tokio::test(start_paused = true)]
async fn retries_503_until_success() {
    let layer = RetryLayer::new(policy(&[RetryOn::FiveXx], 3));
    let script = vec![Step::Status(503), Step::Status(503), Step::Status(200)];
    let (res, seen) = run(layer, request(), script).await;
    let res = res.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(seen, [1, 2, 3]);
    let info = info(&res);
    assert_eq!((info.attempts, info.stop), (3, StopReason::NotRetryable));
}

#[tokio::test(start_paused = true)]
async fn stops_after_num_retries() {
    let layer = RetryLayer::new(policy(&[RetryOn::GatewayError], 2));
    let script = (0..5).map(|_| Step::Status(503)).collect();
    let (res, seen) = run(layer, request(), script).await;
    let res = res.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen, [1, 2, 3]);
    assert_eq!(info(&res).stop, StopReason::RetriesExhausted);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_404_is_returned_at_once() {
    let layer = RetryLayer::new(policy(&[RetryOn::FiveXx, RetryOn::Retriable4xx], 3));
    let (res, seen) = run(layer, request(), vec![Step::Status(404), Step::Status(200)]).await;
    assert_eq!(res.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(seen, [1]);
}

#[tokio::test(start_paused = true)]
async fn per_try_timeout_triggers_a_retry() {
    let p = RetryPolicy {
        per_try_timeout: Some(Duration::from_millis(100)),
        ..policy(&[RetryOn::Reset], 1)
    };
    let start = Instant::now();
    let (res, seen) = run(
        RetryLayer::new(p),
        request(),
        vec![Step::Hang, Step::Status(200)],
    )
    .await;
    assert_eq!(res.unwrap().status(), StatusCode::OK);
    assert_eq!(seen, [1, 2]);
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn last_per_try_timeout_is_a_typed_error() {
    let p = RetryPolicy {
        per_try_timeout: Some(Duration::from_millis(100)),
        ..policy(&[RetryOn::Reset], 1)
    };
    let (res, seen) = run(RetryLayer::new(p), request(), vec![Step::Hang, Step::Hang]).await;
    let err = res.unwrap_err();
    match err.downcast_ref::<RetryError>() {
        Some(RetryError::PerTryTimeout { attempt: 2, .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(seen, [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn exhausted_budget_refuses_the_retry_and_says_so() {
    let no_retries = CircuitBreakers {
        max_retries: 0,
        ..CircuitBreakers::default()
    };
    let budget = RetryBudget::new(&no_retries);
    let layer = RetryLayer::new(policy(&[RetryOn::FiveXx], 3)).with_budget(budget.clone());
    let (res, seen) = run(layer.clone(), request(), vec![Step::Status(503)]).await;
    let res = res.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen, [1]);
    assert_eq!(info(&res).stop, StopReason::BudgetExhausted);

    // An error instead of a response comes back as `RetryBudgetExhausted`, wrapping it.
    let script = vec![Step::Fail(io::ErrorKind::ConnectionRefused)];
    let (res, _) = run(layer, request(), script).await;
    let err = res.unwrap_err();
    let err = err.downcast_ref::<RetryError>().expect("RetryError");
    assert!(err.is_budget_exhausted());
    assert_eq!(budget.active_requests(), 0);
    assert_eq!(budget.active_retries(), 0);
}

#[tokio::test(start_paused = true)]
async fn connect_failures_are_retried_under_connect_failure() {
    let layer = RetryLayer::new(policy(&[RetryOn::ConnectFailure], 2));
    let script = vec![
        Step::Fail(io::ErrorKind::ConnectionRefused),
        Step::Status(200),
    ];
    let (res, seen) = run(layer, request(), script).await;
    assert_eq!(res.unwrap().status(), StatusCode::OK);
    assert_eq!(seen, [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_follow_the_jittered_exponential_schedule() {
    let p = policy(&[RetryOn::FiveXx], 4);
    let backoff = Backoff::from_policy(&p);
    let layer = RetryLayer::new(p).with_rng_seed(42);
    let (svc, handle) = mock::pair::<Req, Res>();
    let script = vec![
        Step::Status(503),
        Step::Status(503),
        Step::Status(503),
        Step::Status(503),
        Step::Status(200),
    ];
    let server = serve(handle, script);
    let res = layer.layer(svc).oneshot(request()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = server.await.unwrap();

    let mut rng = fastrand::Rng::with_seed(42);
    let one_ms = Duration::from_millis(1); // the timer's resolution
    for (n, pair) in seen.windows(2).enumerate() {
        let gap = pair[1].1 - pair[0].1;
        let expected = backoff.delay(n as u32, &mut rng);
        assert!(
            gap + one_ms >= expected && gap <= expected + one_ms,
            "retry {n}: {gap:?}"
        );
        assert!(gap < backoff.ceiling(n as u32) + one_ms);
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_extension_policy_overrides_the_layer() {
    let layer = RetryLayer::per_request();
    // Without a policy the request is sent once.
    let (res, seen) = run(layer.clone(), request(), vec![Step::Status(503)]).await;
    assert_eq!(res.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen, [1]);

    let mut req = request();
    req.extensions_mut()
        .insert(Arc::new(policy(&[RetryOn::FiveXx], 1)));
    let (res, seen) = run(layer, req, vec![Step::Status(503), Step::Status(200)]).await;
    assert_eq!(res.unwrap().status(), StatusCode::OK);
    assert_eq!(seen, [1, 2]);
}
