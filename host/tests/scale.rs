//! Cost at scale: a generated stack of 250 services (4 oidc, 4 oauth, 2 proxy in every ten).
//! What a run costs in requests is deterministic, so it is asserted here; what it costs in time
//! is measured by `cargo bench -p ssoctl --bench scale` (BENCHMARKS.md).

mod common;

use std::sync::Arc;

use ssoctl::runner::Status;
use ssoctl::runtime::{FlowRuntime, Limits};
use ssoctl::session::{Options, Session};
use ssoctl_sim::{Sim, SimConfig};

const TOKEN: &str = "scale-admin-token-0123456789";

fn pages(objects: usize) -> u64 {
    objects.div_ceil(100).max(1) as u64
}

/// A simulator playing `version`, a generated stack of `n` services pointed at it, and the
/// options and runtime to run ssoctl on it.
async fn generated(version: &str, n: usize) -> (Sim, tempfile::TempDir, Options, Arc<FlowRuntime>) {
    let sim = Sim::start(SimConfig {
        version: version.into(),
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    ssoctl::demo::write_generated_stack(dir.path(), &sim.url(), TOKEN, n).unwrap();
    let runtime = Arc::new(FlowRuntime::new(Limits::default(), Some(common::shared_cache_dir())).unwrap());
    let options = Options::new(dir.path());
    (sim, dir, options, runtime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_stack_costs_a_few_list_pages_not_a_request_per_service() {
    const N: usize = 250;
    let (sim, dir, options, runtime) = generated("2026.8.3", N).await;
    let open = || async { Session::open(&options, runtime.clone()).await.unwrap() };

    let boot = open().await.bootstrap(None).await.unwrap();
    let failed: Vec<_> = boot.iter().filter(|r| r.status != Status::Ok).collect();
    assert!(failed.is_empty(), "bootstrap failed: {failed:#?}");
    let (oauth, proxy, apps, attached) = sim.with_world(|w| {
        let embedded = w
            .outposts
            .iter()
            .find(|o| o.managed.as_deref() == Some("goauthentik.io/outposts/embedded"))
            .unwrap();
        (
            w.oauth2.len(),
            w.proxy.len(),
            w.applications.len(),
            w.proxy.keys().filter(|pk| embedded.providers.contains(pk)).count(),
        )
    });
    // Exactly one of each per service, and every proxy provider attached: the batched outpost
    // writes lost none of the 50 that were attached at once.
    assert_eq!((oauth, proxy, apps, attached), (200, 50, 250, 50));
    let env = ssoctl::stack::EnvFile::load(&dir.path().join(".env")).unwrap();
    for i in (1..=N).filter(|i| !matches!(i % 10, 9 | 0)) {
        let prefix = if (1..=4).contains(&(i % 10)) { "OIDC" } else { "OAUTH" };
        let key = format!("SVC_{i:04}_{prefix}_CLIENT_ID");
        assert!(
            env.get(&key).is_some_and(|v| !v.is_empty()),
            "{key} missing from .env: the grouped .env writes lost a service's keys"
        );
    }

    // check: schema and flow list (preflight), scope mappings, keypair, outposts, the policy
    // bindings (who may use each application, one list for all), and the pages of the three
    // lists every service is found in — nothing per service. The OAuth2 list holds
    // the proxy providers too (a proxy provider is an OAuth2 provider underneath, and Authentik's
    // `OAuth2ProviderViewSet` lists every row of that table).
    sim.reset_counts();
    let checked = open().await.check(&[], None).await.unwrap();
    assert!(checked.iter().all(|r| r.status == Status::Ok));
    let counts = sim.counts();
    let budget = 6 + pages(200 + 50) + pages(50) + pages(N);
    assert!(
        sim.requests() <= budget,
        "check of {N} services sent {} requests, budget {budget}: {counts:#?}",
        sim.requests()
    );
    assert_eq!(sim.writes(), 0);
    assert!(
        !counts.keys().any(|k| k.contains("{")),
        "check read single objects, one per service: {counts:#?}"
    );

    // A re-run on the converged stack: the same reads, no writes.
    sim.reset_counts();
    let again = open().await.apply(&[], None).await.unwrap();
    assert!(again.iter().all(|r| r.status == Status::Ok && r.changes.is_empty()));
    assert_eq!(sim.writes(), 0, "{:#?}", sim.counts());
    assert!(sim.requests() <= budget);
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_only_stack_meets_the_five_plus_two_pages_budget() {
    // 10 services of the generated kind minus the proxies: 5 + 2·⌈N/100⌉ requests for check
    // (schema, flows, scope mappings, keypair, policy bindings; providers and applications).
    let (sim, _dir, options, runtime) = generated("2024.2", 8).await;
    let session = Session::open(&options, runtime.clone()).await.unwrap();
    assert!(
        session
            .bootstrap(None)
            .await
            .unwrap()
            .iter()
            .all(|r| r.status == Status::Ok)
    );
    sim.reset_counts();
    let session = Session::open(&options, runtime).await.unwrap();
    let checked = session.check(&[], None).await.unwrap();
    assert_eq!(checked.len(), 8);
    assert!(checked.iter().all(|r| r.status == Status::Ok));
    assert!(
        sim.requests() <= 5 + 2 * pages(8),
        "{} requests: {:#?}",
        sim.requests(),
        sim.counts()
    );
}

/// Sequential rounds in a list of arrival times: a gap of more than `gap` starts a new one.
fn rounds(mut arrivals: Vec<std::time::Instant>, gap: std::time::Duration) -> usize {
    arrivals.sort();
    1 + arrivals.windows(2).filter(|w| w[1] - w[0] > gap).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flows_first_lists_travel_with_the_preflight() {
    // With every answer held back by the latency, a request that waited for the preflight's
    // answers cannot arrive before the schema request's arrival plus the latency.
    const LATENCY: std::time::Duration = std::time::Duration::from_millis(400);
    let (sim, _dir, options, runtime) = generated("2026.8.3", 10).await;
    sim.set_chaos(ssoctl_sim::Chaos {
        latency: LATENCY,
        ..Default::default()
    });
    sim.reset_counts();
    let session = Session::open(&options, runtime.clone()).await.unwrap();
    let boot = session.bootstrap(None).await.unwrap();
    assert!(boot.iter().all(|r| r.status == Status::Ok), "{boot:#?}");
    let arrivals = sim.arrivals();
    let at = |key: &str| {
        arrivals
            .iter()
            .find(|(_, k)| k == key)
            .map(|(at, _)| *at)
            .unwrap_or_else(|| panic!("no `{key}` request: {arrivals:#?}"))
    };
    let preflight_answered = at("GET /schema/") + LATENCY;
    for list in [
        "GET /providers/oauth2/",
        "GET /providers/proxy/",
        "GET /core/applications/",
        "GET /outposts/instances/",
        "GET /crypto/certificatekeypairs/",
    ] {
        assert!(
            at(list) < preflight_answered,
            "`{list}` waited for the preflight: {:?} after the schema request",
            at(list) - at("GET /schema/")
        );
    }
    // The whole bootstrap: preflight with those lists; scope mappings and the proxy providers;
    // OAuth2 providers and proxy applications; OAuth2 applications and the outpost read; the
    // outpost write. One round fewer than when the lists waited for the preflight.
    let all: Vec<_> = arrivals.iter().map(|(at, _)| *at).collect();
    let n = rounds(all, LATENCY / 2);
    assert!(n <= 5, "bootstrap of 10 took {n} rounds: {arrivals:#?}");
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
}
