//! The demo shop: a small bookinfo on loopback, meshed end to end.
//!
//! ```sh
//! cargo run --release -p mesh-examples --bin demo                       # every step
//! cargo run --release -p mesh-examples --bin demo -- --steps canary --duration 5
//! ```
//!
//! One process starts the control plane (directory source, CA), then the shop — `frontend`
//! (HTTP), `reviews` v1/v2/v3 (tonic), `ratings` (HTTP), each with its own certificate, xDS
//! client and meshed server — a load generator calling the frontend and an intruder calling
//! ratings. Every hop is mutual TLS (PeerAuthentication STRICT). A live view shows the traffic;
//! the steps edit the YAML in the control plane's config directory and say what the traffic did.
//! Ctrl-C stops everything.

mod shop;
mod steps;
mod traffic;
mod view;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use control_plane::server::{ControlPlane, Options as CpOptions};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::time::Instant;

use shop::{ACCOUNTS, App, FRONTEND, NAMESPACE, RATINGS, Seen};
use steps::{ConfigDir, Step};
use traffic::{Stats, Window};
use view::{Counters, Frame};

/// The demo shop: a meshed bookinfo on loopback, walked through a canary, a failing instance and
/// an authorization policy.
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Args {
    /// Steps to run, in order (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Step::Canary, Step::Fault, Step::Deny])]
    steps: Vec<Step>,
    /// Seconds each phase of a step runs.
    #[arg(long, default_value_t = 6)]
    duration: u64,
    /// Requests per second from the load generator.
    #[arg(long, default_value_t = 50)]
    rate: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::select! {
        code = run(args) => code,
        _ = tokio::signal::ctrl_c() => {
            println!("\ninterrupted: stopping the shop and the control plane");
            ExitCode::from(130)
        }
    }
}

/// Everything the running demo holds; dropping it stops every task.
struct Shop {
    cp: Option<ControlPlane>,
    config: ConfigDir,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    v2_failing: Arc<std::sync::atomic::AtomicU32>,
    stats: Arc<Stats>,
    seen: Arc<Seen>,
    prometheus: PrometheusHandle,
    live: bool,
    started: Instant,
    _dir: tempfile::TempDir,
}

impl Drop for Shop {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let shop = match start(&args).await {
        Ok(shop) => shop,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let d = Duration::from_secs(args.duration.max(1));
    let mut failures = Vec::new();
    phase(&shop, "baseline: reviews v1 takes everything", d).await;
    for step in &args.steps {
        let result = match step {
            Step::Canary => canary(&shop, d).await,
            Step::Fault => fault(&shop, d).await,
            Step::Deny => deny(&shop, d).await,
        };
        if let Err(e) = result {
            failures.push(format!("{step:?}: {e}"));
        }
    }
    let mut shop = shop;
    let cp = shop.cp.take();
    drop(shop);
    if let Some(cp) = cp {
        cp.shutdown().await;
    }
    if failures.is_empty() {
        println!("\ndemo: done — every step did what it said.");
        ExitCode::SUCCESS
    } else {
        println!("\ndemo: done, but the traffic did not do what a step expected:");
        for f in &failures {
            println!("  - {f}");
        }
        ExitCode::FAILURE
    }
}

/// The control plane on the default ports when they are free, else on any.
async fn control_plane(dir: &std::path::Path, config: &ConfigDir) -> Result<ControlPlane, String> {
    let tokens = dir.join("tokens.yaml");
    let mut text = String::from("tokens:\n");
    for (token, sa) in ACCOUNTS {
        text.push_str(&format!(
            "- {{ token: \"{token}\", namespace: {NAMESPACE}, serviceAccount: {sa} }}\n"
        ));
    }
    std::fs::write(&tokens, text).map_err(|e| format!("writing the token file: {e}"))?;
    let opts = |xds: u16, admin: u16| CpOptions {
        config_dir: Some(config.path.clone()),
        xds_addr: SocketAddr::from(([127, 0, 0, 1], xds)),
        admin_addr: SocketAddr::from(([127, 0, 0, 1], admin)),
        ca: Some(control_plane::ca::CaOptions {
            token_file: Some(tokens.clone()),
            ..control_plane::ca::CaOptions::default()
        }),
        ..CpOptions::default()
    };
    match ControlPlane::start(opts(15010, 15014)).await {
        Ok(cp) => Ok(cp),
        Err(_) => ControlPlane::start(opts(0, 0))
            .await
            .map_err(|e| format!("starting the control plane: {e}")),
    }
}

async fn start(args: &Args) -> Result<Shop, String> {
    let prometheus = mesh_tower::telemetry::prometheus().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = ConfigDir::create(dir.path()).map_err(|e| format!("copying the config: {e}"))?;
    let cp = control_plane(dir.path(), &config).await?;
    let status = cp.config_status();
    if status.errors() > 0 {
        return Err(format!(
            "the demo config has errors: {:#?}",
            status.diagnostics
        ));
    }
    let xds = cp.xds_addr();
    println!("meshlib demo shop");
    println!(
        "  control plane: xDS + CA on {xds}, admin on http://{} (try /debug/syncz)",
        cp.admin_addr()
    );
    println!("  config (edit it too): {}", config.path.display());
    let seen = Arc::new(Seen::default());
    let mut tasks = Vec::new();
    let ratings = App::start(xds, "ratings", "ratings", "v1").await;
    tasks.push(tokio::spawn(shop::ratings(ratings, seen.clone())));
    let mut v2_failing = None;
    for version in ["v1", "v2", "v3"] {
        let app = App::start(xds, "reviews", "reviews", version).await;
        let (failing, task) = shop::reviews(app, version, seen.clone()).await;
        tasks.push(task);
        if version == "v2" {
            v2_failing = Some(failing);
        }
    }
    let frontend = App::start(xds, "frontend", "frontend", "v1").await;
    tasks.push(tokio::spawn(shop::frontend(frontend, seen.clone())));

    let stats = Arc::new(Stats::default());
    let loadgen = App::start(xds, "loadgen", "loadgen", "v1").await;
    let target = loadgen.follow(FRONTEND).await;
    let client = loadgen.http_client();
    let (rate, s) = (args.rate, stats.clone());
    tasks.push(tokio::spawn(async move {
        let _keep = (loadgen, target);
        traffic::load(client, rate, s).await;
    }));
    let intruder = App::start(xds, "intruder", "intruder", "v1").await;
    let target = intruder.follow(RATINGS).await;
    let client = intruder.http_client();
    let s = stats.clone();
    tasks.push(tokio::spawn(async move {
        let _keep = (intruder, target);
        traffic::intrude(client, s).await;
    }));
    println!(
        "  shop: frontend 127.0.0.31:8080, reviews v1/v2/v3 127.0.0.11-13:9080, ratings 127.0.0.21:9080; {} req/s of load\n",
        args.rate
    );
    let live = view::is_live();
    if live {
        view::reserve();
    }
    Ok(Shop {
        cp: Some(cp),
        config,
        tasks,
        v2_failing: v2_failing.expect("reviews v2 started"),
        stats,
        seen,
        prometheus,
        live,
        started: Instant::now(),
        _dir: dir,
    })
}

/// Runs the view for `d` under `title`; returns what the traffic did and the counters' growth.
async fn phase(shop: &Shop, title: &str, d: Duration) -> (Window, Counters) {
    view::note(shop.live, &format!("▶ {title}"));
    let before = Counters::read(&shop.prometheus.render());
    let mut last = before;
    // Start clean: nothing sent before the phase counts in it.
    shop.stats.tick();
    shop.stats.phase();
    let end = Instant::now() + d;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while Instant::now() < end {
        tick.tick().await;
        let window = shop.stats.tick();
        let counters = Counters::read(&shop.prometheus.render());
        let seen = shop.seen.pairs();
        let intruder = shop.stats.intruder.lock().unwrap().clone();
        let delta = Counters {
            retries: counters.retries - last.retries,
            ejections: counters.ejections - last.ejections,
        };
        last = counters;
        Frame {
            step: title,
            elapsed: shop.started.elapsed().as_secs(),
            window: &window,
            counters,
            delta,
            seen: &seen,
            intruder: intruder.as_deref(),
        }
        .draw(shop.live);
    }
    let after = Counters::read(&shop.prometheus.render());
    (
        shop.stats.phase(),
        Counters {
            retries: after.retries - before.retries,
            ejections: after.ejections - before.ejections,
        },
    )
}

/// Prints what a phase showed, above the live view.
fn say(shop: &Shop, text: &str) {
    view::note(shop.live, text);
}

fn io(e: std::io::Error) -> String {
    format!("writing the config: {e}")
}

/// Canary reviews v3: 10% → 50% → 100%, each checked against what the traffic did.
async fn canary(shop: &Shop, d: Duration) -> Result<(), String> {
    let mut problems = Vec::new();
    for percent in [10u32, 50, 100] {
        shop.config
            .route_reviews(&[(Some("v1"), 100 - percent), (Some("v3"), percent)])
            .map_err(io)?;
        say(
            shop,
            &format!(
                "✎ reviews-route.yaml: v1 {}% / v3 {percent}%",
                100 - percent
            ),
        );
        // Let the edit reach the clients (file watch, debounce, xDS push) before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (w, _) = phase(shop, &format!("canary: v3 at {percent}%"), d).await;
        let share = w.share("v3");
        say(
            shop,
            &format!(
                "  → v3 answered {share:.1}% of {} requests (configured {percent}%), {} failed",
                w.total(),
                w.failed
            ),
        );
        // A random split over n requests: allow four standard deviations (plus two points).
        let p = f64::from(percent) / 100.0;
        let sigma = 100.0 * (p * (1.0 - p) / w.total().max(1) as f64).sqrt();
        if (share - f64::from(percent)).abs() > 4.0 * sigma + 2.0 || w.failed > w.total() / 100 {
            problems.push(format!(
                "v3 at {percent}%: observed {share:.1}%, {} failed",
                w.failed
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// reviews-v2 fails half its calls; retries and outlier detection keep the shop up.
async fn fault(shop: &Shop, d: Duration) -> Result<(), String> {
    shop.config.route_reviews(&[(None, 100)]).map_err(io)?;
    say(
        shop,
        "✎ reviews-route.yaml: every reviews instance (v1, v2, v3), retries on UNAVAILABLE",
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    phase(shop, "all reviews versions share the traffic", d).await;
    shop.v2_failing.store(500, Ordering::Relaxed);
    say(
        shop,
        "✗ fault injected: reviews-v2 now fails half its calls with UNAVAILABLE",
    );
    let (w, c) = phase(
        shop,
        "reviews-v2 failing: retries and outlier detection",
        d * 2,
    )
    .await;
    let success = 100.0 * w.ok as f64 / w.total().max(1) as f64;
    say(
        shop,
        &format!(
            "  → success stayed {success:.2}% over {} requests: {} retries, {} ejection(s) of v2",
            w.total(),
            c.retries,
            c.ejections
        ),
    );
    shop.v2_failing.store(0, Ordering::Relaxed);
    say(
        shop,
        "✓ fault removed: reviews-v2 returns once its ejection time is over",
    );
    let (back, _) = phase(shop, "reviews-v2 recovered", d + Duration::from_secs(12)).await;
    say(
        shop,
        &format!(
            "  → v2 answered {:.1}% again, {} failed",
            back.share("v2"),
            back.failed
        ),
    );
    let mut problems = Vec::new();
    if success < 97.0 {
        problems.push(format!("success fell to {success:.2}%"));
    }
    if c.retries < 1.0 {
        problems.push("no retry was made".to_string());
    }
    if c.ejections < 1.0 {
        problems.push("reviews-v2 was never ejected".to_string());
    }
    if back.share("v2") < 5.0 {
        problems.push(format!("v2 did not come back ({:.1}%)", back.share("v2")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The intruder is allowed until an AuthorizationPolicy lets only reviews call ratings.
async fn deny(shop: &Shop, d: Duration) -> Result<(), String> {
    // reviews v3 calls ratings, so the policy's effect on legitimate callers shows too.
    shop.config
        .route_reviews(&[(Some("v3"), 100)])
        .map_err(io)?;
    say(shop, "✎ reviews-route.yaml: v3 100% (v3 calls ratings)");
    tokio::time::sleep(Duration::from_secs(1)).await;
    phase(shop, "intruder calls ratings directly (no policy yet)", d).await;
    let before = shop.stats.intruder_answer();
    say(shop, &format!("  → the intruder gets: {before}"));
    shop.config.protect_ratings().map_err(io)?;
    say(
        shop,
        "✎ ratings-policy.yaml: AuthorizationPolicy ALLOW from cluster.local/ns/shop/sa/reviews",
    );
    let (w, _) = phase(shop, "only reviews may call ratings", d).await;
    let after = shop.stats.intruder_answer();
    let ratings_ok = *w.ratings.get("ok").unwrap_or(&0);
    say(
        shop,
        &format!(
            "  → the intruder gets: {after}\n  → reviews still got {ratings_ok} answers from ratings"
        ),
    );
    if !after.starts_with("403") {
        return Err(format!("the intruder was not refused: {after}"));
    }
    if ratings_ok == 0 {
        return Err("reviews got no answer from ratings under the policy".into());
    }
    Ok(())
}
