//! The Authentik layer against the simulator: retries on 429/503, no duplicate after a create
//! whose answer was lost, pagination past one page, lookups cached per run, and the simulator's
//! own error shapes (403, 400 field errors, 404) and schema enforcement.

mod common;

use common::*;
use serde_json::{Value, json};
use ssoctl::authentik::AkError;
use ssoctl::authentik::models::OAuth2Provider;
use ssoctl::runner::Status;
use ssoctl_sim::Fault;

fn fault(method: &str, template: &str, status: u16, after_commit: bool, times: u32) -> Fault {
    Fault {
        method: method.into(),
        template: template.into(),
        status,
        retry_after: None,
        after_commit,
        times,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_unavailability_are_retried() {
    let h = Harness::new("2026.8.3").await;
    h.sim.inject(Fault {
        retry_after: Some(1),
        ..fault("GET", "/providers/oauth2/", 429, false, 2)
    });
    h.sim.inject(fault("POST", "/providers/oauth2/", 503, false, 1));
    let started = std::time::Instant::now();
    let reports = h.fix(&["grafana"]).await;
    assert_all_ok(&reports);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After was honoured"
    );
    let counts = h.sim.counts();
    assert_eq!(counts["GET /providers/oauth2/"], 3, "two throttled, one answered");
    assert_eq!(counts["POST /providers/oauth2/"], 2, "one unavailable, one created");
    assert_all_ok(&h.check(&["grafana"]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_looked_up_not_repeated() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        h.sim.inject(fault("POST", "/providers/oauth2/", 502, true, 1));
        h.sim.inject(fault("POST", "/core/applications/", 504, true, 1));
        let reports = h.fix(&["grafana"]).await;
        assert_all_ok(&reports);
        let counts = h.sim.counts();
        assert_eq!(counts["POST /providers/oauth2/"], 1, "{version}: never re-POSTed");
        assert_eq!(counts["POST /core/applications/"], 1, "{version}: never re-POSTed");
        let n = h
            .sim
            .with_world(|w| w.oauth2.values().filter(|p| p.name == "grafana").count());
        assert_eq!(n, 1, "{version}: no duplicate provider");
        assert_all_ok(&h.check(&["grafana"]).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_server_errors_fail_the_service_with_the_status() {
    let h = Harness::new("2026.8.3").await;
    h.fix(&["grafana"]).await;
    h.sim.inject(fault("GET", "/core/applications/", 500, false, 100));
    let reports = h.check(&["grafana"]).await;
    let r = report(&reports, "grafana");
    assert_eq!(r.status, Status::Error);
    assert_eq!(
        r.error.as_deref(),
        Some("Authentik answered 500 to GET core/applications/: injected fault 500")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_read_past_the_first_page() {
    let h = Harness::new("2026.8.3").await;
    h.fix(&["grafana"]).await;
    let session = h.session().await;
    let ak = session.authentik();
    for i in 0..130 {
        ak.post::<Value>(
            "providers/oauth2/",
            &json!({
                "name": format!("filler-{i:03}"),
                "authorization_flow": h.sim.with_world(|w| w.flows.iter().find(|f| f.designation == "authorization").unwrap().pk.clone()),
                "invalidation_flow": h.sim.with_world(|w| w.flows.iter().find(|f| f.slug == "default-provider-invalidation-flow").unwrap().pk.clone()),
                "redirect_uris": [],
            }),
        )
        .await
        .unwrap();
    }
    h.sim.reset_counts();
    let all: Vec<OAuth2Provider> = ak.list("providers/oauth2/", &[]).await.unwrap();
    assert_eq!(all.len(), 131);
    assert_eq!(h.sim.counts()["GET /providers/oauth2/"], 2, "page_size=100: two pages");
}

/// Someone deletes objects while a list is read page by page: the last page is gone, and
/// Authentik answers it with 404 "Invalid page." (DRF `PageNumberPagination`, every release).
/// The list is read again from the first page instead of failing the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_disappears_while_a_list_is_read_is_read_again() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        let session = h.session().await;
        let ak = session.authentik();
        let flow = |designation: &str| {
            h.sim.with_world(|w| {
                w.flows
                    .iter()
                    .find(|f| f.designation == designation)
                    .unwrap()
                    .pk
                    .clone()
            })
        };
        for i in 0..130 {
            let mut body = json!({"name": format!("filler-{i:03}"), "authorization_flow": flow("authorization")});
            if version != "2024.2" {
                body["invalidation_flow"] = json!(flow("invalidation"));
                body["redirect_uris"] = json!([]);
            }
            ak.post::<Value>("providers/oauth2/", &body).await.unwrap();
        }
        // Right after page 1 is answered, 40 providers go: page 2 no longer exists.
        h.sim.after_request("GET", "/providers/oauth2/", 1, |w| {
            let gone: Vec<u64> = w.oauth2.keys().copied().take(40).collect();
            for pk in gone {
                w.oauth2.remove(&pk);
            }
        });
        h.sim.reset_counts();
        let all: Vec<OAuth2Provider> = ak.list("providers/oauth2/", &[]).await.unwrap();
        assert_eq!(all.len(), 90, "{version}: the list as it is now");
        assert_eq!(
            h.sim.counts()["GET /providers/oauth2/"],
            3,
            "{version}: pages 1 and 2 (404), then the list again (now one page)"
        );
        // A page past the last, asked for directly, is the 404 the client met.
        let err = ak
            .get::<Value>("providers/oauth2/", &[("page", "9".into())])
            .await
            .unwrap_err();
        assert!(matches!(err, AkError::NotFound { .. }), "{version}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_made_once_per_run() {
    let h = Harness::new("2026.8.3").await;
    let reports = h.fix(&OAUTH_SERVICES).await;
    assert_all_ok(&reports);
    let counts = h.sim.counts();
    // Every list is read once and shared by the seven services; nothing is read per service.
    for list in [
        "GET /flows/instances/",
        "GET /crypto/certificatekeypairs/",
        "GET /propertymappings/provider/scope/",
        "GET /providers/oauth2/",
        "GET /core/applications/",
        "GET /core/groups/",
        "GET /policies/bindings/",
        "GET /schema/",
    ] {
        assert_eq!(counts.get(list), Some(&1), "{list}: {counts:#?}");
    }
    assert!(
        !counts.keys().any(|k| k.starts_with("GET ") && k.contains('{')),
        "a single object was read: {counts:#?}"
    );
    // The schema names the version: no separate version request.
    assert_eq!(counts.get("GET /admin/version/"), None);
    // Groups are read for the roles of Grafana, Superset and Redmine (their groups must exist);
    // the bindings (who may use an existing application) travel with the preflight.
    assert_eq!(h.sim.requests() - h.sim.writes(), 8, "{counts:#?}");
    // A provider and an application per service, Mattermost's own scope mapping and the one
    // ssoctl writes for Redmine's roles claim.
    assert_eq!(h.sim.writes(), 16, "{counts:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_errors_as_authentik_does() {
    let h = Harness::new("2026.8.3").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}/api/v3/{p}", h.sim.url());

    let r = http
        .get(url("core/applications/"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Token invalid/expired"})
    );

    let r = http
        .get(url("core/applications/nope/"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // DRF 3.15 and later (Authentik 2025.4 and later) name the model in a 404.
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "No Application matches the given query."})
    );

    let r = http
        .post(url("providers/oauth2/"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    for field in ["authorization_flow", "invalidation_flow", "redirect_uris"] {
        assert_eq!(body[field], json!(["This field is required."]), "{body}");
    }
    // A request outside the schema is recorded as a violation (and would fail the test).
    let violations = h.sim.take_violations();
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0].to_string().contains("authorization_flow"),
        "{}",
        violations[0]
    );

    // The wrong shape for this version: a string of redirect URIs sent to 2026.8.
    let session = h.session().await;
    let err = session
        .authentik()
        .post::<Value>("providers/oauth2/", &json!({"name": "x", "authorization_flow": "00000000-0000-4000-8000-000000000001", "invalidation_flow": "00000000-0000-4000-8000-000000000002", "redirect_uris": "https://x/cb"}))
        .await
        .unwrap_err();
    assert!(matches!(err, AkError::Validation { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("Authentik refused POST providers/oauth2/: redirect_uris:"),
        "{err}"
    );
    let violations = h.sim.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");

    // A path this version no longer has (scope mappings moved in 2024.8).
    let r = http
        .get(url("propertymappings/scope/"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(h.sim.take_violations().len(), 1);
}

/// Lookups come from snapshots taken when the command starts; once a run has written, its own
/// lookups go to the server, so a flow that ensures the same objects twice creates them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_ensuring_its_objects_twice_in_one_run_creates_them_once() {
    let h = Harness::new("2026.8.3").await;
    h.add_misbehaving_service("twice", "twice");
    let reports = h.fix(&["twice"]).await;
    assert_all_ok(&reports);
    let count = || {
        h.sim.with_world(|w| {
            (
                w.oauth2.values().filter(|p| p.name == "twice").count(),
                w.applications.keys().filter(|slug| *slug == "twice").count(),
            )
        })
    };
    assert_eq!(count(), (1, 1), "{:#?}", report(&reports, "twice"));
    let again = h.fix(&["twice"]).await;
    assert!(report(&again, "twice").changes.is_empty(), "{:#?}", again);
    assert_eq!(count(), (1, 1));
}
