//! One binary for every Authentik release ssoctl knows (the thirteen vendored schemas): the full
//! cycle for all six types on each, and an old server upgraded step by step whose objects
//! converge without being recreated. The simulator validates every request and response against
//! the schema of the release it plays.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use ssoctl::runtime::{FlowRuntime, Limits};

/// bootstrap → check green → each type's own drift reported by name → fix → green → a re-run
/// with zero writes and zero schema violations: what `ssoctl demo` checks, on every release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_runs_the_full_cycle_for_all_six_types() {
    let runtime = Arc::new(FlowRuntime::new(Limits::default(), Some(shared_cache_dir())).unwrap());
    let versions = ssoctl_sim::schema::known_versions();
    assert_eq!(versions.len(), 13, "{versions:?}");
    let mut failed = Vec::new();
    for version in versions {
        if ssoctl::demo::run(version, runtime.clone()).await != 0 {
            failed.push(version);
        }
    }
    assert!(
        failed.is_empty(),
        "the cycle failed on {failed:?} (the output above says where)"
    );
}

/// What identifies each object Authentik holds: recreating any of them changes this.
fn identities(h: &Harness) -> BTreeMap<String, String> {
    h.sim.with_world(|w| {
        let mut ids = BTreeMap::new();
        for p in w.oauth2.values() {
            ids.insert(format!("oauth2 {}", p.name), format!("{} {}", p.pk, p.client_id));
        }
        for p in w.proxy.values() {
            ids.insert(format!("proxy {}", p.name), p.pk.to_string());
        }
        for p in w.saml.values() {
            ids.insert(format!("saml {}", p.name), p.pk.to_string());
        }
        for a in w.applications.values() {
            ids.insert(format!("app {}", a.slug), a.pk.clone());
        }
        ids
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_server_converges_without_recreating_anything() {
    let mut h = Harness::new("2023.10").await;
    assert_all_ok(&h.bootstrap().await);
    let services = implemented();
    let before = identities(&h);
    assert_eq!(before.len(), 2 * services.len(), "{before:?}");
    let env_before = h.env();
    for next in ["2024.8", "2024.12", "2026.5.6", "2026.8.3"] {
        h.sim.upgrade(next).unwrap();
        let checked = h.check(&services).await;
        let drift: Vec<(String, Vec<&str>)> = checked
            .iter()
            .filter(|r| !r.findings.is_empty())
            .map(|r| (r.service.clone(), kinds(r)))
            .collect();
        match next {
            // The migration added SAML signing switches with `sign_response=False`.
            "2024.8" => assert_eq!(
                drift,
                [("zammad".to_string(), vec!["provider-field-mismatch"])],
                "{next}"
            ),
            // The migration made each escaped regex a strict URI that no longer matches.
            "2024.12" => assert!(
                drift
                    .iter()
                    .any(|(s, k)| s == "grafana" && k.contains(&"redirect-uri-mismatch")),
                "{next}: {drift:?}"
            ),
            // Migrated providers allow every grant type; ssoctl narrows them again.
            "2026.5.6" => assert!(
                drift
                    .iter()
                    .any(|(s, k)| s == "grafana" && k.contains(&"grant-types-mismatch")),
                "{next}: {drift:?}"
            ),
            _ => assert!(
                drift.is_empty(),
                "{next}: {drift:?} {:?}",
                checked.iter().flat_map(|r| r.findings.clone()).collect::<Vec<_>>()
            ),
        }
        assert_all_ok(&h.fix(&services).await);
        assert_all_ok(&h.check(&services).await);
        assert_eq!(identities(&h), before, "{next}: an object was recreated");
        let writes = h.sim.writes();
        let again = h.fix(&services).await;
        assert!(again.iter().all(|r| r.changes.is_empty()), "{next}: {again:?}");
        assert_eq!(h.sim.writes(), writes, "{next}: writes on a converged stack");
    }
    let secret = |env: &str| {
        env.lines()
            .find(|l| l.starts_with("GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET="))
            .map(str::to_string)
    };
    assert_eq!(
        secret(&h.env()),
        secret(&env_before),
        "client secrets survive the upgrades"
    );
}

/// A server newer than the newest known release: a warning on stderr, then best effort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_servers_are_warned_about_not_refused() {
    let newest = ssoctl::authentik::NEWEST_KNOWN;
    assert_eq!(
        newest.to_string(),
        *ssoctl_sim::schema::known_versions().last().unwrap()
    );
    let h = Harness::new("2026.8.3").await;
    h.sim.report_version("2027.2.1");
    let root = h.root().to_path_buf();
    let out = ssoctl(&root, &["bootstrap"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Authentik 2027.2.1 is newer than the newest release ssoctl is tested against ({newest})"
        )),
        "{stderr}"
    );
}

/// The live schema decides, not the version number: a server reporting 2024.8.5 (whose table
/// entry says list-shaped redirect URIs) that serves the string-shaped 2024.8 API gets strings.
/// The simulator would flag a list as a schema violation (the harness fails on any).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_schema_beats_the_version_table() {
    let h = Harness::new("2024.8").await;
    h.sim.report_version("2024.8.5");
    assert_all_ok(&h.bootstrap().await);
    assert_all_ok(&h.check(&implemented()).await);
}

/// No readable schema (a proxy blocking it, an error): the version table decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_schema_the_version_table_decides() {
    for version in ["2024.2", "2026.8.3"] {
        let h = Harness::new(version).await;
        h.sim.inject(ssoctl_sim::Fault {
            method: "GET".into(),
            template: "/schema/".into(),
            status: 503,
            retry_after: None,
            after_commit: false,
            times: 100,
        });
        assert_all_ok(&h.bootstrap().await);
        assert_all_ok(&h.check(&implemented()).await);
        assert!(h.sim.counts()["GET /schema/"] >= 2, "the schema was asked for");
    }
}
