//! `cargo bench -p ssoctl --bench flows`: where the time of a run goes, measured against the
//! in-process simulator. Prints medians over repeated runs; numbers go to BENCHMARKS.md.
//!
//! - component load: Cranelift compile vs. deserializing the cached artifact;
//! - one flow run: fresh Store + instantiate + `run` in check mode for one converged service;
//! - whole commands on the sample stack's seven oauth/oidc services: bootstrap, check, fix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ssoctl::runtime::{FlowRuntime, Limits};
use ssoctl::session::{Options, Session};
use ssoctl_sim::{Sim, SimConfig};

const SERVICES: [&str; 7] = [
    "grafana",
    "n8n",
    "superset",
    "outline",
    "redmine",
    "mattermost",
    "linkding",
];
const TOKEN: &str = "bench-admin-token-0123456789";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn names() -> Vec<String> {
    SERVICES.iter().map(|s| s.to_string()).collect()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    println!("ssoctl bench ({iterations} iterations each, medians)");

    // Component load.
    let cache = tempfile::tempdir().unwrap();
    let compile: Vec<Duration> = (0..iterations.min(10))
        .map(|_| {
            let runtime = FlowRuntime::new(Limits::default(), None).unwrap();
            let t = Instant::now();
            runtime.flow("oidc").unwrap().unwrap();
            t.elapsed()
        })
        .collect();
    FlowRuntime::new(Limits::default(), Some(cache.path().into()))
        .unwrap()
        .flow("oidc")
        .unwrap();
    let cached: Vec<Duration> = (0..iterations)
        .map(|_| {
            let runtime = FlowRuntime::new(Limits::default(), Some(cache.path().into())).unwrap();
            let t = Instant::now();
            runtime.flow("oidc").unwrap().unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "load oidc component: compile {} · from cache {}",
        ms(median(compile)),
        ms(median(cached))
    );

    rt.block_on(async {
        for version in ["2024.2", "2026.8.3"] {
            let runtime = Arc::new(FlowRuntime::new(Limits::default(), Some(cache.path().into())).unwrap());
            let mut boot = Vec::new();
            let mut check = Vec::new();
            let mut fix = Vec::new();
            let mut one = Vec::new();
            let mut requests = (0, 0, 0);
            for _ in 0..iterations {
                let sim = Sim::start(SimConfig { version: version.into(), token: TOKEN.into(), ..Default::default() }).await.unwrap();
                let dir = tempfile::tempdir().unwrap();
                ssoctl::demo::write_sample_stack(dir.path(), &sim.url(), TOKEN, None).unwrap();
                let options = Options::new(dir.path());

                let t = Instant::now();
                let s = Session::open(&options, runtime.clone()).await.unwrap();
                s.apply(&names(), None).await.unwrap();
                boot.push(t.elapsed());
                requests.0 = sim.requests();

                sim.reset_counts();
                let t = Instant::now();
                let s = Session::open(&options, runtime.clone()).await.unwrap();
                s.check(&names(), None).await.unwrap();
                check.push(t.elapsed());
                requests.1 = sim.requests();

                sim.reset_counts();
                let t = Instant::now();
                let s = Session::open(&options, runtime.clone()).await.unwrap();
                s.apply(&names(), None).await.unwrap();
                fix.push(t.elapsed());
                requests.2 = sim.writes();

                // One service, session already open (lookups cached): the per-run cost.
                let t = Instant::now();
                s.check(&["grafana".to_string()], None).await.unwrap();
                one.push(t.elapsed());
                assert!(sim.violations().is_empty());
            }
            println!(
                "Authentik {version}: bootstrap 7 services {} ({} requests) · check {} ({} requests) · fix on converged stack {} ({} writes) · check 1 service in an open session {}",
                ms(median(boot)),
                requests.0,
                ms(median(check)),
                requests.1,
                ms(median(fix)),
                requests.2,
                ms(median(one)),
            );
        }
    });
}
