//! The Authentik client and the whole run under a flaky server: injected 5xx, throttling and
//! answers lost after the change landed. Bootstrap converges and Authentik ends up holding
//! exactly one provider and one application per service.

mod common;

use std::time::Duration;

use common::*;
use ssoctl::authentik::RetryPolicy;
use ssoctl::runner::Status;
use ssoctl::session::{Options, Session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_converges_under_faults_with_exactly_one_object_each() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        h.sim.set_chaos(ssoctl_sim::Chaos {
            error_rate: 0.2,
            throttle_rate: 0.05,
            retry_after_s: 0,
            drop_rate: 0.2,
            ..Default::default()
        });
        let mut options = Options::new(h.root());
        options.retry = RetryPolicy {
            attempts: 8,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(50),
            max_total: Duration::from_secs(20),
        };
        // Bootstrap picks up what is not configured yet: a service that failed is retried by
        // the next run, as an operator would re-run it.
        let mut runs = 0;
        loop {
            runs += 1;
            let session = Session::open(&options, h.runtime.clone())
                .await
                .expect("preflight retried through faults");
            let reports = session.bootstrap(None).await.unwrap();
            if reports.iter().all(|r| r.status == Status::Ok) {
                break;
            }
            assert!(runs < 5, "{version}: still failing after {runs} runs: {reports:?}");
        }
        let faults = h.sim.faults_injected();
        eprintln!(
            "{version}: {faults} faults injected over {} requests, converged in {runs} run(s)",
            h.sim.requests()
        );
        h.sim.set_chaos(ssoctl_sim::Chaos::default());
        assert_all_ok(&h.check(&implemented()).await);
        let objects = objects_per_name(&h);
        assert_eq!(objects.len(), 2 * implemented().len(), "{version}: {objects:?}");
        assert!(objects.values().all(|n| *n == 1), "{version}: duplicates: {objects:?}");
        assert!(faults >= 5, "{version}: only {faults} faults injected");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_and_latency_only_slow_things_down() {
    let h = Harness::new("2026.8.3").await;
    h.sim.set_chaos(ssoctl_sim::Chaos {
        latency: Duration::from_millis(5),
        slow_body: Duration::from_millis(16),
        ..Default::default()
    });
    assert_all_ok(&h.fix(&["grafana", "zammad", "adminer"]).await);
    assert_all_ok(&h.check(&["grafana", "zammad", "adminer"]).await);
}

/// Parses what a crash may have left: `.env` and every manifest must be whole.
fn assert_stack_parses(h: &Harness, at: &str) {
    let env = std::fs::read_to_string(h.root().join(".env")).unwrap();
    assert!(env.starts_with("# Sample stack settings."), "{at}: .env lost its head");
    ssoctl::stack::EnvFile::load(&h.root().join(".env")).unwrap_or_else(|e| panic!("{at}: .env: {e}"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(h.root().join(".env")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{at}");
    for entry in std::fs::read_dir(h.root().join("packages")).unwrap() {
        let manifest = entry.unwrap().path().join("manifest.yaml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        serde_yaml::from_str::<serde_yaml::Value>(&text)
            .unwrap_or_else(|e| panic!("{at}: {}: {e}", manifest.display()));
    }
}

/// `ssoctl bootstrap` killed with SIGKILL at 20 points spread over its requests (and so over the
/// commits between them): every time `.env` and the manifests are whole, and a re-run converges
/// with exactly one object per service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_twenty_points_leaves_a_stack_that_converges() {
    let slow = || ssoctl_sim::Chaos {
        latency: Duration::from_millis(4),
        ..Default::default()
    };
    // One component cache for all runs: the first, whole run fills it, so the kills land in the
    // work itself rather than in compilation.
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_path_buf();
    let spawn = |h: &Harness| {
        ssoctl_command(h.root(), &["bootstrap"])
            .env("SSOCTL_CACHE_DIR", &cache_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How many requests a whole bootstrap makes.
    let h = Harness::new("2026.8.3").await;
    h.sim.set_chaos(slow());
    let status = tokio::task::spawn_blocking({
        let mut child = spawn(&h);
        move || child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    let total = h.sim.requests();
    drop(h);

    let mut kills = 0;
    for point in 0..20u64 {
        let at = 1 + point * (total - 2) / 19;
        let h = Harness::new("2026.8.3").await;
        h.sim.set_chaos(slow());
        let mut child = spawn(&h);
        let finished = loop {
            if h.sim.requests() >= at {
                break false;
            }
            if child.try_wait().unwrap().is_some() {
                break true;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        if !finished {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        let where_ = format!("killed after request {at} of {total}");
        assert_stack_parses(&h, &where_);
        h.sim.set_chaos(ssoctl_sim::Chaos::default());
        let rerun = h.bootstrap().await;
        assert!(rerun.iter().all(|r| r.status == Status::Ok), "{where_}: {rerun:?}");
        assert_all_ok(&h.check(&implemented()).await);
        let objects = objects_per_name(&h);
        assert_eq!(objects.len(), 2 * implemented().len(), "{where_}: {objects:?}");
        assert!(objects.values().all(|n| *n == 1), "{where_}: duplicates: {objects:?}");
    }
    assert!(kills >= 18, "only {kills} of 20 kills landed before the run ended");
}
