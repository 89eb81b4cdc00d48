//! The load generator, run in a child process pinned to CPU1: closed loop (fixed connections,
//! each sending as fast as answers come) for the maximum rate, and open loop (requests start on a
//! schedule, latency counted from the scheduled start — no coordinated omission) for latency,
//! to one URL or alternating between several (a paired measurement).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

async fn connect(url: &http::Uri) -> SendRequest<Empty<Bytes>> {
    let authority = url
        .authority()
        .expect("an absolute URL")
        .as_str()
        .to_string();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let _ = stream.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::task::spawn_local(conn);
    send
}

async fn once(send: &mut SendRequest<Empty<Bytes>>, url: &http::Uri) -> bool {
    if send.ready().await.is_err() {
        return false;
    }
    let req = http::Request::get(url.path())
        .header(http::header::HOST, url.authority().unwrap().as_str())
        .body(Empty::new())
        .unwrap();
    match send.send_request(req).await {
        Ok(resp) => resp.status().is_success() && resp.into_body().collect().await.is_ok(),
        Err(_) => false,
    }
}

/// Closed loop: `conns` connections for `secs`; prints `{requests, errors, rps}`.
async fn closed(url: http::Uri, conns: usize, secs: f64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let url = url.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut send = connect(&url).await;
            let (mut ok, mut err) = (0u64, 0u64);
            while Instant::now() < end {
                if once(&mut send, &url).await {
                    ok += 1;
                } else {
                    err += 1;
                    send = connect(&url).await;
                }
            }
            (ok, err)
        }));
    }
    let (mut ok, mut err) = (0, 0);
    for t in tasks {
        let (o, e) = t.await.unwrap();
        ok += o;
        err += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{{\"requests\":{ok},\"errors\":{err},\"rps\":{}}}",
        ok as f64 / elapsed
    );
}

/// Open loop: `rate` requests a second for `secs`, request `i` to `urls[i % urls.len()]` over up to
/// `conns` connections per URL; prints `{requests, errors, rps, p50_us, p99_us}` of the first URL
/// and `streams`, the same per URL, with latencies from each request's scheduled start. Several
/// URLs make a paired measurement: the streams share every moment of the run, so noise of the
/// machine falls on both alike.
async fn open(urls: Vec<http::Uri>, rate: f64, conns: usize, secs: f64) {
    let start = Instant::now() + Duration::from_millis(20);
    let total = (rate * secs) as u64;
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for _ in &urls {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        senders.push(tx);
        receivers.push(rx);
    }
    // The schedule runs as a task of this runtime that yields after each check: it releases
    // every request due, each stamped with its own scheduled time, so the latency counts any
    // lateness of the release too. (A separate thread sleeping between checks shared this CPU
    // with the runtime, and the kernel woke it up to a time slice late: milliseconds of lateness
    // in every mode's p99. The runtime's timer is too coarse, 1 ms.) The generator has CPU1 to
    // itself, so the spinning costs nothing measured.
    tokio::task::spawn_local(async move {
        let mut i = 0u64;
        while i < total {
            let now = Instant::now();
            while i < total {
                let at = start + Duration::from_secs_f64(i as f64 / rate);
                if at > now {
                    break;
                }
                if senders[(i % senders.len() as u64) as usize]
                    .send(at)
                    .is_err()
                {
                    return;
                }
                i += 1;
            }
            tokio::task::yield_now().await;
        }
    });
    let mut streams = Vec::new();
    for (url, rx) in urls.iter().zip(receivers) {
        let queue = Arc::new(tokio::sync::Mutex::new(rx));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (url, queue) = (url.clone(), queue.clone());
            tasks.push(tokio::task::spawn_local(async move {
                let mut send = connect(&url).await;
                let mut lat = Vec::new();
                let mut err = 0u64;
                loop {
                    let Some(at) = queue.lock().await.recv().await else {
                        break;
                    };
                    if once(&mut send, &url).await {
                        lat.push(at.elapsed().as_micros() as u64);
                    } else {
                        err += 1;
                        send = connect(&url).await;
                    }
                }
                (lat, err)
            }));
        }
        streams.push(tasks);
    }
    let mut out = Vec::new();
    for tasks in streams {
        let mut all = Vec::new();
        let mut err = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            all.extend(l);
            err += e;
        }
        all.sort_unstable();
        let q = |p: f64| {
            all.get(((all.len().max(1) - 1) as f64 * p) as usize)
                .copied()
                .unwrap_or(0)
        };
        out.push(serde_json::json!({
            "requests": all.len(),
            "errors": err,
            "rps": all.len() as f64 / secs,
            "p50_us": q(0.5),
            "p99_us": q(0.99),
        }));
    }
    let mut v = out[0].clone();
    v["streams"] = serde_json::Value::Array(out);
    println!("{v}");
}

/// The child process: `--load <url> closed <conns> <secs>` or `--load <url>[,<url>…] open <rate>
/// <conns> <secs>`.
pub(crate) fn run(args: &[String]) {
    let urls: Vec<http::Uri> = args[0]
        .split(',')
        .map(|u| u.parse().expect("a URL"))
        .collect();
    let url = urls[0].clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let num = |i: usize| -> f64 { args[i].parse().expect("a number") };
    local.block_on(&rt, async {
        match args[1].as_str() {
            "closed" => closed(url, num(2) as usize, num(3)).await,
            "open" => open(urls, num(2), num(3) as usize, num(4)).await,
            other => panic!("unknown load kind {other}"),
        }
    });
}
