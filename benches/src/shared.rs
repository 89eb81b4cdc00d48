//! Pieces several load benchmarks share: the closed-loop round through the mesh client, a bare
//! hyper server, a median, and a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

/// What a closed-loop worker is told: whether to go on, and where to count its calls.
#[derive(Debug, Clone)]
pub struct Loop {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
}

impl Loop {
    /// True until the round's time is up.
    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// Counts one completed call.
    pub fn done(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `workers` tasks made by `worker` for `secs`, each calling in a loop while
/// [`Loop::running`] and counting with [`Loop::done`]; returns calls per second.
pub async fn closed_loop_with<Fut>(workers: usize, secs: f64, worker: impl Fn(Loop) -> Fut) -> f64
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = Loop {
        stop: Arc::new(AtomicBool::new(false)),
        count: Arc::new(AtomicU64::new(0)),
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(worker(l.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    l.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    l.count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// `workers` closed-loop workers send `GET uri` through `client` for `secs`; returns requests
/// per second.
pub async fn closed_loop(client: &mesh_tower::Client, uri: &str, workers: usize, secs: f64) -> f64 {
    closed_loop_with(workers, secs, |l| {
        let (client, uri) = (client.clone(), uri.to_string());
        async move {
            while l.running() {
                let req = http::Request::get(&uri)
                    .body(Empty::<Bytes>::new())
                    .expect("a valid request");
                let resp = client.request(req).await.expect("request");
                let _ = resp.into_body().collect().await;
                l.done();
            }
        }
    })
    .await
}

/// A bare hyper HTTP/1.1 server on `127.0.0.1:0`, answering with `handler`; runs on the current
/// `LocalSet`. Returns its address.
pub async fn bare_server<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(http::Request<Incoming>) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = http::Response<Full<Bytes>>> + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    tokio::task::spawn_local(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::task::spawn_local(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let h = handler.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// The median (the mean of the two middle values for an even count; NaN when empty).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A global allocator that counts allocations and live bytes (`#[global_allocator] static A: CountingAlloc =
/// CountingAlloc;` in a bench binary, then [`allocations`] and [`live_bytes`]).
#[derive(Debug)]
pub struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Allocations (and reallocations) made so far through [`CountingAlloc`].
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Heap bytes allocated through [`CountingAlloc`] and not yet freed.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed through unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, new) }
    }
}
