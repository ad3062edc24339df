//! The Authentik client and the whole run under a flaky server: injected 5xx, throttling and
//! answers lost after the change landed. Bootstrap converges and Authentik ends up holding
//! exactly one provider and one application per service.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use ssoctl::authentik::RetryPolicy;
use ssoctl::runner::Status;
use ssoctl::session::{Options, Session};

/// Providers and applications per name, across every provider type.
fn objects_per_name(h: &Harness) -> BTreeMap<String, usize> {
    h.sim.with_world(|w| {
        let mut n = BTreeMap::new();
        let names = w
            .oauth2
            .values()
            .map(|p| format!("provider {}", p.name))
            .chain(w.proxy.values().map(|p| format!("provider {}", p.name)))
            .chain(w.saml.values().map(|p| format!("provider {}", p.name)))
            .chain(w.applications.values().map(|a| format!("application {}", a.slug)));
        for name in names {
            *n.entry(name).or_default() += 1;
        }
        n
    })
}

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
