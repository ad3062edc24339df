//! `cargo bench -p ssoctl --bench scale`: what commands cost as the stack grows.
//!
//! The `ssoctl` binary runs as its own process (so its peak RSS is its own) against the
//! simulator in this process, with a per-request latency added by the simulator. Stacks are
//! generated: N services, four oidc, four oauth and two proxy in every ten.
//!
//! - per N (10, 100, 1000) and latency (0, 20 ms): bootstrap of a fresh stack, a re-run on the
//!   converged stack (`fix --all`), `check`, `plan`: wall time, requests by method, round trips
//!   (wall ÷ latency), peak RSS;
//! - per-service plugin overhead: instantiate and `run` of each service's flow in an open session
//!   whose lookups are cached (no request at all), median over the services;
//! - start-up: process start to the first request and to the first request a flow made, with a
//!   cold (empty) and a warm component cache.
//!
//! `BENCH_SIZES=10,100` and `BENCH_LATENCIES=0` narrow the matrix; each row is the median of
//! `BENCH_RUNS` (default 3) repetitions on fresh stacks, with the range beside it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssoctl::runtime::{FlowRuntime, Limits};
use ssoctl::session::{Options, Session};
use ssoctl_sim::{Chaos, Sim, SimConfig};

const TOKEN: &str = "bench-admin-token-0123456789";
const BIN: &str = env!("CARGO_BIN_EXE_ssoctl");

struct Run {
    wall: Duration,
    exit: i32,
    by_method: BTreeMap<String, u64>,
    peak_rss_mib: f64,
    /// ssoctl's own CPU time (user + system): what is left of the wall time once the round
    /// trips and the simulator's share of the two cores are taken out.
    cpu: Duration,
    /// Process start to the first request, and to the first request of a flow (a provider list).
    first_request: Option<Duration>,
    first_flow_request: Option<Duration>,
    /// Sequential rounds of requests: arrivals more than half the added latency apart start a
    /// new round (the command's dependency chain; CPU time between rounds can split one).
    rounds: usize,
}

/// Runs `ssoctl --root ROOT ARGS…`, reading its peak RSS (`VmHWM` of its own address space)
/// every millisecond until it exits. (`wait4`'s `ru_maxrss` would not do: a child's figure starts
/// from the RSS of the process that forked it, here the simulator's.)
fn ssoctl(sim: &Sim, root: &Path, cache: &Path, args: &[&str], latency: Duration) -> Run {
    // Earlier rows' files (a thousand-service stack written and removed) are flushed first:
    // otherwise this command's fsyncs wait for their writeback, and a row's time depends on
    // which rows ran before it.
    let _ = Command::new("sync").status();
    sim.reset_counts();
    let cpu_before = children_cpu();
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(args)
        .env("SSOCTL_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ssoctl");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait for ssoctl") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let wall = started.elapsed();
    let cpu = children_cpu().saturating_sub(cpu_before);
    let mut by_method = BTreeMap::new();
    for (key, n) in sim.counts() {
        let method = key.split(' ').next().unwrap_or("?").to_string();
        *by_method.entry(method).or_insert(0) += n;
    }
    // Arrival times are taken before the simulator's added latency.
    let arrivals = sim.arrivals();
    let since = |at: Instant| at.saturating_duration_since(started);
    let mut times: Vec<Instant> = arrivals.iter().map(|(at, _)| *at).collect();
    times.sort();
    let rounds = if times.is_empty() {
        0
    } else {
        1 + times.windows(2).filter(|w| w[1] - w[0] > latency / 2).count()
    };
    // BENCH_TIMELINE=1: when each round started and what it sent, to see where wall time goes.
    if std::env::var_os("BENCH_TIMELINE").is_some() {
        let mut sorted = arrivals.clone();
        sorted.sort_by_key(|(at, _)| *at);
        let mut previous: Option<Instant> = None;
        let mut round: Vec<String> = Vec::new();
        let mut round_start = started;
        let flush = |round: &mut Vec<String>, start: Instant| {
            if !round.is_empty() {
                let mut kinds = round.clone();
                kinds.dedup();
                eprintln!(
                    "  +{:>6.1} ms  {} request(s): {}",
                    since(start).as_secs_f64() * 1e3,
                    round.len(),
                    kinds.join(", ")
                );
                round.clear();
            }
        };
        for (at, key) in &sorted {
            if previous.is_none_or(|p| *at - p > latency / 2) {
                flush(&mut round, round_start);
                round_start = *at;
            }
            round.push(key.split('?').next().unwrap_or(key).to_string());
            previous = Some(*at);
        }
        flush(&mut round, round_start);
        eprintln!("  +{:>6.1} ms  exit", wall.as_secs_f64() * 1e3);
    }
    Run {
        wall,
        exit: status.code().unwrap_or(-1),
        by_method,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        cpu,
        rounds,
        first_request: arrivals.iter().map(|(at, _)| since(*at)).min(),
        first_flow_request: arrivals
            .iter()
            .filter(|(_, key)| key.contains("/providers/"))
            .map(|(at, _)| since(*at))
            .min(),
    }
}

/// CPU time of every child reaped so far (children are run one at a time, so a difference is
/// one child's).
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The simulator every measurement runs against: the newest release, the bench's token.
async fn start_sim() -> Sim {
    Sim::start(SimConfig {
        version: "2026.8.3".into(),
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .expect("start the simulator")
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn list(var: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(var)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sizes = list("BENCH_SIZES", &[10, 100, 1000]);
    let latencies = list("BENCH_LATENCIES", &[0, 20]);
    let cache = tempfile::tempdir().unwrap();
    // Warm up first, so every row measures the same warm state whichever rows
    // BENCH_SIZES/BENCH_LATENCIES select: the components compiled into the cache (cold start-up
    // is measured at the end), and the simulator's schema validators, which it compiles on first
    // use of each operation and keeps for the process (~100 ms of its CPU a fresh simulator
    // would otherwise spend inside the first measured command).
    {
        let sim = rt.block_on(start_sim());
        let dir = tempfile::tempdir().unwrap();
        ssoctl::demo::write_generated_stack(dir.path(), &sim.url(), TOKEN, 10).unwrap();
        for args in [&["bootstrap"][..], &["check"][..]] {
            let run = ssoctl(&sim, dir.path(), cache.path(), args, Duration::ZERO);
            assert_eq!(run.exit, 0, "warm-up {args:?} failed");
        }
    }
    println!("ssoctl scale bench: {BIN}");
    println!();
    println!(
        "| latency | N | command | wall ms, median (range) | round trips (wall ÷ latency) | ssoctl CPU ms | GET | POST | PATCH | peak RSS MiB | exit |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    // Each row is the run of median wall time among `BENCH_RUNS` repetitions, each on a fresh
    // simulator and stack (a fresh bootstrap cannot be repeated on the same one).
    let repetitions = list("BENCH_RUNS", &[3]).first().copied().unwrap_or(3).max(1) as usize;
    const COMMANDS: [(&str, &[&str]); 4] = [
        ("bootstrap (fresh)", &["bootstrap"]),
        ("re-run (converged)", &["fix", "--all"]),
        ("check", &["check"]),
        ("plan", &["plan"]),
    ];
    for &latency_ms in &latencies {
        let latency = Duration::from_millis(latency_ms);
        for &n in &sizes {
            let mut runs: Vec<Vec<Run>> = COMMANDS.iter().map(|_| Vec::new()).collect();
            for _ in 0..repetitions {
                let sim = rt.block_on(start_sim());
                sim.set_chaos(Chaos {
                    latency,
                    ..Default::default()
                });
                let dir = tempfile::tempdir().unwrap();
                ssoctl::demo::write_generated_stack(dir.path(), &sim.url(), TOKEN, n as usize).unwrap();
                for (at, (_, args)) in COMMANDS.iter().enumerate() {
                    runs[at].push(ssoctl(&sim, dir.path(), cache.path(), args, latency));
                }
                assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
            }
            for ((label, _), mut runs) in COMMANDS.iter().zip(runs) {
                runs.sort_by_key(|r| r.wall);
                let (fastest, slowest) = (runs[0].wall, runs[runs.len() - 1].wall);
                let run = &runs[runs.len() / 2];
                let wall = if runs.len() > 1 {
                    format!("{} ({}–{})", ms(run.wall), ms(fastest), ms(slowest))
                } else {
                    ms(run.wall)
                };
                let trips = if latency_ms > 0 {
                    format!("{} ({:.1})", run.rounds, run.wall.as_secs_f64() / latency.as_secs_f64())
                } else {
                    "–".into()
                };
                let count = |m: &str| run.by_method.get(m).copied().unwrap_or(0);
                println!(
                    "| {latency_ms} ms | {n} | {label} | {wall} | {trips} | {} | {} | {} | {} | {:.1} | {} |",
                    ms(run.cpu),
                    count("GET"),
                    count("POST"),
                    count("PATCH"),
                    run.peak_rss_mib,
                    run.exit
                );
            }
        }
    }

    // Per-service plugin overhead: a converged stack of 100, checked twice in one session; the
    // second check finds every lookup cached and sends nothing, so what is left is the flows.
    // One service at a time, so no service's time includes another's.
    rt.block_on(async {
        let sim = start_sim().await;
        let dir = tempfile::tempdir().unwrap();
        ssoctl::demo::write_generated_stack(dir.path(), &sim.url(), TOKEN, 100).unwrap();
        let runtime = Arc::new(FlowRuntime::new(Limits::default(), Some(cache.path().into())).unwrap());
        let options = Options::new(dir.path());
        Session::open(&options, runtime.clone())
            .await
            .unwrap()
            .bootstrap(None)
            .await
            .unwrap();
        let mut one_at_a_time = options.clone();
        one_at_a_time.concurrency = 1;
        let session = Session::open(&one_at_a_time, runtime.clone()).await.unwrap();
        session.check(&[], None).await.unwrap();
        sim.reset_counts();
        let mut instantiate = Vec::new();
        let mut call = Vec::new();
        let mut walls = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let reports = session.check(&[], None).await.unwrap();
            walls.push(t.elapsed() / reports.len() as u32);
            instantiate.extend(reports.iter().map(|r| r.timing.instantiate));
            call.extend(reports.iter().map(|r| r.timing.call));
        }
        assert_eq!(sim.requests(), 0, "the cached check sent requests");
        println!();
        println!(
            "per-service plugin overhead (100 services one at a time, lookups cached, 0 requests): instantiate {} µs · run {} µs · \
             instantiate + run {} µs (medians) · whole check ÷ services {} µs",
            median(instantiate.clone()).as_micros(),
            median(call.clone()).as_micros(),
            median(instantiate.iter().zip(&call).map(|(a, b)| *a + *b).collect()).as_micros(),
            median(walls).as_micros(),
        );
    });

    // Start-up: 10 services, no latency, cold and warm component cache.
    let sim = rt.block_on(start_sim());
    let dir = tempfile::tempdir().unwrap();
    ssoctl::demo::write_generated_stack(dir.path(), &sim.url(), TOKEN, 10).unwrap();
    ssoctl(&sim, dir.path(), cache.path(), &["bootstrap"], Duration::ZERO);
    println!();
    for warm in [false, true] {
        let mut first = Vec::new();
        let mut flow = Vec::new();
        let mut wall = Vec::new();
        for _ in 0..10 {
            let cold_dir = tempfile::tempdir().unwrap();
            let cache_dir = if warm { cache.path() } else { cold_dir.path() };
            let run = ssoctl(&sim, dir.path(), cache_dir, &["check"], Duration::ZERO);
            first.push(run.first_request.expect("a request"));
            flow.push(run.first_flow_request.expect("a flow request"));
            wall.push(run.wall);
        }
        println!(
            "start-up, {} component cache (check of 10 services, medians of 10): first request {} ms · first flow \
             request {} ms · whole command {} ms",
            if warm { "warm" } else { "cold" },
            ms(median(first)),
            ms(median(flow)),
            ms(median(wall)),
        );
    }
}
