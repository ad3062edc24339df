//! The simulator held to Authentik's own behaviour, and the client bugs a lenient simulator hid.
//!
//! Two kinds of test live here:
//! - **conformance**: HTTP-visible assertions of Authentik's own API tests (or, where upstream has
//!   no test, of the code path named), replayed black-box against the simulator on every release
//!   where the upstream behaviour applies; each names its upstream source;
//! - **client**: a bug the faithful simulator exposes in ssoctl, each failing on the client
//!   before its fix (checked by hand, noted in the commit).

mod common;

use common::*;
use serde_json::{Value, json};
use ssoctl::authentik::AkError;

/// Every release the simulator plays (`sim/schemas/`).
fn all_releases() -> Vec<&'static str> {
    ssoctl_sim::schema::known_versions()
}

fn release(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The pk of the simulator's flow of `designation` (`authorization`, `invalidation`), if any.
fn flow_pk(h: &Harness, designation: &str) -> Option<String> {
    h.sim.with_world(|w| {
        w.flows
            .iter()
            .find(|f| f.designation == designation)
            .map(|f| f.pk.clone())
    })
}

/// A raw request to the simulator with the admin token: status and JSON body.
async fn call(h: &Harness, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}/api/v3/{}", h.sim.url(), path.trim_start_matches('/'));
    let mut req = client
        .request(method.parse().unwrap(), &url)
        .header("Authorization", format!("Bearer {TOKEN}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Creates `n` applications `<prefix>-000`… (named `<prefix> 0`…) through the API.
async fn create_applications(h: &Harness, prefix: &str, n: usize) {
    for i in 0..n {
        let body = json!({"name": format!("{prefix} {i}"), "slug": format!("{prefix}-{i:03}")});
        let (status, answer) = call(h, "POST", "core/applications/", Some(body)).await;
        assert_eq!(status, 201, "{answer}");
    }
}

/// Conformance — pagination (`authentik/api/pagination.py`; DRF `PageNumberPagination`):
/// a page past the last, page 0 and a non-numeric page are 404 `{"detail": "Invalid page."}`
/// in every release; `page=last` is the last page; the default page size is 100 up to 2025.10
/// (`REST_FRAMEWORK["PAGE_SIZE"]`) and 20 from 2025.12 (tenant `pagination_default_page_size`,
/// commit 196bce348), where an asked size is capped at 100 (`pagination_max_page_size`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_pagination_per_release() {
    for version in all_releases() {
        let h = Harness::new(version).await;
        // 25 applications: more than one page of 20, less than one of 100.
        create_applications(&h, "app", 25).await;
        let (status, body) = call(&h, "GET", "core/applications/?superuser_full_list=true", None).await;
        assert_eq!(status, 200, "{version}: {body}");
        let default = if release(version) >= (2025, 12) { 20 } else { 100 };
        assert_eq!(
            body["results"].as_array().unwrap().len(),
            25.min(default),
            "{version}: default page size {default}"
        );
        assert_eq!(body["pagination"]["count"], 25, "{version}");
        let (_, body) = call(
            &h,
            "GET",
            "core/applications/?superuser_full_list=true&page_size=1000",
            None,
        )
        .await;
        let capped = if release(version) >= (2025, 12) { 100 } else { 1000 };
        assert_eq!(body["pagination"]["total_pages"], 25usize.div_ceil(capped), "{version}");
        let (_, body) = call(
            &h,
            "GET",
            "core/applications/?superuser_full_list=true&page_size=10&page=last",
            None,
        )
        .await;
        assert_eq!(body["pagination"]["current"], 3, "{version}: page=last");
        assert_eq!(body["pagination"]["next"], 0, "{version}: no next page is 0, not null");
        for page in ["4", "0", "abc"] {
            let (status, body) = call(
                &h,
                "GET",
                &format!("core/applications/?superuser_full_list=true&page_size=10&page={page}"),
                None,
            )
            .await;
            assert_eq!(
                (status, body),
                (404, json!({"detail": "Invalid page."})),
                "{version}: page={page}"
            );
        }
    }
}

/// Conformance — `authentik/providers/saml/tests/test_api.py::test_create_validate_signing_kp`
/// (2024.8.0 and later): a keypair without a sign switch in the same request is refused with
/// the exact `non_field_errors` body; with `sign_assertion: true` it is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_saml_signing_keypair_needs_a_sign_switch() {
    for version in all_releases().into_iter().filter(|v| release(v) >= (2024, 8)) {
        let h = Harness::new(version).await;
        let flow = flow_pk(&h, "authorization").unwrap();
        let keypair = h.sim.with_world(|w| w.keypairs[0].pk.clone());
        let invalidation = flow_pk(&h, "invalidation");
        let mut body = json!({
            "name": "test", "authorization_flow": flow, "acs_url": "https://sp.example.org/acs",
            "signing_kp": keypair,
        });
        if let Some(f) = invalidation.filter(|_| release(version) >= (2024, 10)) {
            body["invalidation_flow"] = json!(f);
        }
        let (status, answer) = call(&h, "POST", "providers/saml/", Some(body.clone())).await;
        assert_eq!(status, 400, "{version}: {answer}");
        assert_eq!(
            answer,
            json!({"non_field_errors": ["With a signing keypair selected, at least one of 'Sign assertion' and 'Sign Response' must be selected."]}),
            "{version}"
        );
        body["sign_assertion"] = json!(true);
        let (status, answer) = call(&h, "POST", "providers/saml/", Some(body)).await;
        assert_eq!(status, 201, "{version}: {answer}");
        // On PATCH too: the stored switches do not count, only the submitted ones.
        let pk = answer["pk"].as_u64().unwrap();
        let (status, _) = call(
            &h,
            "PATCH",
            &format!("providers/saml/{pk}/"),
            Some(json!({"signing_kp": keypair})),
        )
        .await;
        assert_eq!(status, 400, "{version}: PATCH of the keypair alone");
    }
}

/// Client — a SAML provider whose only drift is its keypair is fixed: the PATCH carries the
/// sign switches with the keypair. Before the fix the PATCH held `signing_kp` alone and every
/// release from 2024.8 refused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saml_keypair_drift_is_fixed_on_releases_with_sign_switches() {
    for version in ["2024.8", "2026.8.3"] {
        let h = Harness::new(version).await;
        assert_all_ok(&h.fix(&["zammad"]).await);
        h.sim.with_world(|w| {
            for p in w.saml.values_mut() {
                p.signing_kp = None;
            }
        });
        let reports = h.check(&["zammad"]).await;
        assert!(
            kinds(report(&reports, "zammad")).contains(&"signing-key-mismatch"),
            "{version}"
        );
        let reports = h.fix(&["zammad"]).await;
        assert_all_ok(&reports);
        assert_all_ok(&h.check(&["zammad"]).await);
    }
}

/// Client — a list read while objects are deleted (see `authentik_layer.rs` for the paging
/// itself): a command whose snapshot of the applications loses its last page still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_survives_applications_deleted_while_it_lists_them() {
    let h = Harness::new("2026.8.3").await;
    assert_all_ok(&h.fix(&["grafana"]).await);
    create_applications(&h, "filler", 120).await;
    h.sim.after_request("GET", "/core/applications/", 1, |w| {
        let gone: Vec<String> = w
            .applications
            .keys()
            .filter(|s| s.starts_with("filler-"))
            .take(60)
            .cloned()
            .collect();
        for slug in gone {
            w.applications.remove(&slug);
        }
    });
    let reports = h.check(&["grafana"]).await;
    assert_all_ok(&reports);
    let err = h
        .session()
        .await
        .authentik()
        .get::<Value>("core/applications/", &[("page", "99".into())])
        .await
        .unwrap_err();
    assert!(matches!(err, AkError::NotFound { .. }), "{err}");
}

/// Conformance — `authentik/core/tests/test_applications_api.py::test_list` and
/// `test_list_superuser_full_list`: an application whose binding the admin does not pass is
/// left out of the admin's (a superuser's) list, while `pagination.count` still counts it (page
/// cut before the policy check, 2024.4 and later); `superuser_full_list=true` lists both. The
/// filtered list is cached per user and page and cleared when an application is created, not
/// when one changes (`authentik/core/signals.py`): before 2025.10.3 it shows the old name, from
/// 2025.10.3 (`_expand_applications`) the current one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_application_list_is_filtered_and_cached_per_user() {
    for version in all_releases() {
        let h = Harness::new(version).await;
        for (name, slug) in [("allowed", "allowed"), ("denied", "denied")] {
            let (status, body) = call(
                &h,
                "POST",
                "core/applications/",
                Some(json!({"name": name, "slug": slug})),
            )
            .await;
            assert_eq!(status, 201, "{version}: {body}");
        }
        h.sim.with_world(|w| w.bind_group("denied", "finance"));
        let (_, filtered) = call(&h, "GET", "core/applications/", None).await;
        let slugs = |v: &Value| -> Vec<String> {
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["slug"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(slugs(&filtered), ["allowed"], "{version}: {filtered}");
        assert_eq!(
            filtered["pagination"]["count"], 2,
            "{version}: count before the policy check"
        );
        let (_, full) = call(&h, "GET", "core/applications/?superuser_full_list=true", None).await;
        assert_eq!(slugs(&full), ["allowed", "denied"], "{version}");
        // An update does not clear the cached list.
        let (status, _) = call(
            &h,
            "PATCH",
            "core/applications/allowed/",
            Some(json!({"name": "renamed"})),
        )
        .await;
        assert_eq!(status, 200);
        let (_, again) = call(&h, "GET", "core/applications/", None).await;
        let shown = again["results"][0]["name"].as_str().unwrap().to_string();
        let stale = release(version) < (2025, 10) || version == "2025.10.2";
        assert_eq!(shown, if stale { "allowed" } else { "renamed" }, "{version}");
        let (_, full) = call(&h, "GET", "core/applications/?superuser_full_list=true", None).await;
        assert_eq!(
            full["results"][1]["name"], "renamed",
            "{version}: the full list is never cached"
        );
    }
}

/// Client — an application bound to a group the admin is not in is found (the list is read
/// with `superuser_full_list=true`): `check` is green and `fix` does not try to create it again.
/// Before the fix `check` said "application missing" and `fix` got a 400 (slug exists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_the_admin_cannot_access_is_still_found() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        assert_all_ok(&h.fix(&["grafana"]).await);
        h.sim.with_world(|w| w.bind_group("grafana", "staff"));
        assert_all_ok(&h.check(&["grafana"]).await);
        let reports = h.fix(&["grafana"]).await;
        assert_all_ok(&reports);
        assert!(report(&reports, "grafana").changes.is_empty(), "{version}: {reports:?}");
    }
}

/// Conformance — `Provider.name` is unique on the table every provider type shares
/// (authentik/core/models.py): a name taken by a provider of another type is refused; and
/// `OAuth2ProviderViewSet` lists proxy providers too, as OAuth2 providers
/// (authentik/providers/oauth2/api/providers.py, `OAuth2Provider.objects.all()`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_provider_names_are_unique_across_types() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        assert_all_ok(&h.fix(&["adminer"]).await);
        let proxy_pk = h.sim.with_world(|w| w.proxy.keys().copied().next().unwrap());
        let (_, list) = call(&h, "GET", "providers/oauth2/?name=adminer", None).await;
        assert_eq!(
            list["results"][0]["pk"],
            json!(proxy_pk),
            "{version}: the proxy provider, as OAuth2: {list}"
        );
        assert_eq!(
            list["results"][0]["meta_model_name"], "authentik_providers_oauth2.oauth2provider",
            "{version}: serialized as an OAuth2 provider"
        );
        let flow = flow_pk(&h, "authorization").unwrap();
        let mut body = json!({"name": "adminer", "authorization_flow": flow, "acs_url": "https://a.example.org/acs"});
        if version != "2024.2" {
            body["invalidation_flow"] = json!(flow_pk(&h, "invalidation").unwrap());
        }
        let (status, answer) = call(&h, "POST", "providers/saml/", Some(body)).await;
        assert_eq!(
            (status, answer),
            (400, json!({"name": ["provider with this name already exists."]})),
            "{version}"
        );
    }
}

/// Client — a service whose `sso.type` changed keeps nothing of its old provider: `check`
/// names it, `plan` says it will be replaced, `fix` deletes it, creates the new one and relinks
/// the application. Before the fix, a proxy provider was taken for the service's OAuth2
/// provider (the OAuth2 list shows it), and a SAML provider made the create fail with 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_changes_its_sso_type_gets_a_provider_of_the_new_type() {
    for version in VERSIONS {
        for (service, old) in [("adminer", "Proxy Provider"), ("zammad", "SAML Provider")] {
            let h = Harness::new(version).await;
            assert_all_ok(&h.fix(&[service]).await);
            std::fs::write(
                h.manifest_path(service),
                format!("public_url: https://{service}.example.org\nsso:\n  type: oidc\n  redirect_path: /oauth/callback\n  configured: true\n"),
            )
            .unwrap();
            let reports = h.check(&[service]).await;
            let r = report(&reports, service);
            assert!(
                kinds(r).contains(&"provider-type-mismatch"),
                "{version} {service}: {r:?}"
            );
            let finding = r.findings.iter().find(|f| f.kind == "provider-type-mismatch").unwrap();
            assert!(
                finding.message.starts_with(&format!(
                    "`{service}` is a {old}, but sso.type `oidc` needs an OAuth2 provider"
                )),
                "{version}: {}",
                finding.message
            );
            let plan = h.plan(&[service]).await;
            assert!(
                report(&plan, service)
                    .changes
                    .contains(&format!("replace {old} `{service}` with an OAuth2 provider")),
                "{version}: {plan:?}"
            );
            let reports = h.fix(&[service]).await;
            assert_all_ok(&reports);
            let (oauth, proxy, saml, linked) = h.sim.with_world(|w| {
                let oauth = w.oauth2.values().find(|p| p.name == service).map(|p| p.pk);
                (
                    oauth,
                    w.proxy.values().any(|p| p.name == service),
                    w.saml.values().any(|p| p.name == service),
                    w.applications.get(service).and_then(|a| a.provider),
                )
            });
            assert!(
                oauth.is_some() && !proxy && !saml,
                "{version} {service}: only an OAuth2 provider is left"
            );
            assert_eq!(linked, oauth, "{version} {service}: the application is relinked");
            assert_all_ok(&h.check(&[service]).await);
        }
    }
}

/// Conformance — `authentik/api/authentication.py` `bearer_auth` (and `authentik/api/tests/
/// test_auth.py`): the `Bearer` keyword in any case; another scheme refused with
/// "Unsupported authentication type" up to 2025.10 and ignored (no credentials) from 2025.12;
/// always 403, never 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_token_authentication() {
    for version in ["2024.2", "2025.10.4", "2025.12.6", "2026.8.3"] {
        let h = Harness::new(version).await;
        let http = reqwest::Client::new();
        let url = format!("{}/api/v3/core/applications/?superuser_full_list=true", h.sim.url());
        for header in [
            format!("bearer {TOKEN}"),
            format!("BEARER {TOKEN}"),
            format!("  Bearer {TOKEN}  "),
        ] {
            let r = http.get(&url).header("Authorization", &header).send().await.unwrap();
            assert_eq!(r.status(), 200, "{version}: `{header}`");
        }
        let r = http
            .get(&url)
            .header("Authorization", format!("Basic {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{version}");
        let detail = if release(version) >= (2025, 12) {
            "Authentication credentials were not provided."
        } else {
            "Unsupported authentication type"
        };
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({ "detail": detail }),
            "{version}"
        );
        let r = http.get(&url).header("Authorization", "Bearer ").send().await.unwrap();
        assert_eq!(
            (r.status().as_u16(), r.json::<Value>().await.unwrap()),
            (403, json!({"detail": "Authentication credentials were not provided."})),
            "{version}: an empty token is no credentials"
        );
    }
}

/// Conformance — `authentik/providers/oauth2/tests/test_api.py::test_validate_redirect_uris`
/// (2024.8.5, 2024.10.3 and later): a regex redirect URI is compiled with Python's `re`; `**`
/// is refused with exactly `{"redirect_uris": ["Invalid Regex Pattern: **"]}`, while a
/// lookahead (valid Python, not valid for Rust's `regex`) is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_regex_redirect_uris_are_python_regexes() {
    for version in ["2024.12", "2026.8.3"] {
        let h = Harness::new(version).await;
        let (flow, invalidation) = (
            flow_pk(&h, "authorization").unwrap(),
            flow_pk(&h, "invalidation").unwrap(),
        );
        let body = |url: &str| {
            json!({"name": format!("p-{}", url.len()), "authorization_flow": flow, "invalidation_flow": invalidation,
                   "redirect_uris": [{"matching_mode": "regex", "url": url}]})
        };
        let (status, answer) = call(&h, "POST", "providers/oauth2/", Some(body("**"))).await;
        assert_eq!(
            (status, answer),
            (400, json!({"redirect_uris": ["Invalid Regex Pattern: **"]})),
            "{version}"
        );
        let (status, answer) = call(
            &h,
            "POST",
            "providers/oauth2/",
            Some(body("https://(?!evil)[a-z]+\\.example\\.org/cb")),
        )
        .await;
        assert_eq!(status, 201, "{version}: {answer}");
    }
}

/// Conformance — `authentik/core/tests/test_applications_api.py::
/// test_create_application_with_reserved_slug` / `test_update_application_with_reserved_slug`
/// (2025.8.0 and later): reserved slugs are refused on create and on update; before 2025.8 they
/// are ordinary slugs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_reserved_application_slugs() {
    for version in ["2025.4", "2025.8.6", "2026.8.3"] {
        let h = Harness::new(version).await;
        let (status, answer) = call(
            &h,
            "POST",
            "core/applications/",
            Some(json!({"name": "x", "slug": "authorize"})),
        )
        .await;
        if release(version) >= (2025, 8) {
            assert_eq!(status, 400, "{version}");
            assert!(
                answer["slug"][0].as_str().unwrap().contains("reserved"),
                "{version}: {answer}"
            );
            let (status, _) = call(
                &h,
                "POST",
                "core/applications/",
                Some(json!({"name": "x", "slug": "ok"})),
            )
            .await;
            assert_eq!(status, 201);
            let (status, answer) = call(&h, "PATCH", "core/applications/ok/", Some(json!({"slug": "token"}))).await;
            assert_eq!(status, 400, "{version}: {answer}");
        } else {
            assert_eq!(status, 201, "{version}: {answer}");
        }
    }
}

/// Conformance — `authentik/outposts/tests/test_api.py::test_managed_name_change`: the embedded
/// outpost's name cannot be changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_embedded_outpost_keeps_its_name() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        let pk = h.sim.with_world(|w| w.outposts[0].pk.clone());
        let (status, answer) = call(
            &h,
            "PATCH",
            &format!("outposts/instances/{pk}/"),
            Some(json!({"name": "mine"})),
        )
        .await;
        assert_eq!(
            (status, answer),
            (400, json!({"name": ["Embedded outpost's name cannot be changed"]})),
            "{version}"
        );
    }
}

/// Client — `export --blueprint` declares the redirect URIs apply sends: on a server that
/// matches every redirect URI as a regex (before 2024.8.5), the strict URL escaped. Before the
/// fix the blueprint held the unescaped URL, where `.` matches any character.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blueprint_declares_the_redirect_uris_apply_sends() {
    for version in ["2024.2", "2026.8.3"] {
        let h = Harness::new(version).await;
        let out = ssoctl(h.root(), &["export", "--blueprint", "grafana"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
        let entry = doc["entries"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["model"].as_str() == Some("authentik_providers_oauth2.oauth2provider"))
            .unwrap()
            .clone();
        assert_all_ok(&h.fix(&["grafana"]).await);
        let registered = h.sim.with_world(|w| {
            w.oauth2
                .values()
                .find(|p| p.name == "grafana")
                .unwrap()
                .redirect_uris
                .iter()
                .map(|r| r.url.clone())
                .collect::<Vec<_>>()
        });
        let declared: Vec<String> = match &entry["attrs"]["redirect_uris"] {
            serde_yaml::Value::String(text) => text.lines().map(str::to_string).collect(),
            serde_yaml::Value::Sequence(items) => {
                items.iter().map(|i| i["url"].as_str().unwrap().to_string()).collect()
            }
            other => panic!("{version}: {other:?}"),
        };
        assert_eq!(declared, registered, "{version}");
        if version == "2024.2" {
            assert_eq!(declared, [r"https://grafana\.example\.org/login/generic_oauth"]);
        }
    }
}

/// Conformance — `authentik/core/tests/test_transactional_applications_api.py`:
/// `test_create_transactional` (applied, provider linked), `test_create_transactional_invalid`
/// (empty flows: "This field may not be null." under `provider`),
/// `test_create_transactional_duplicate_name_provider` (must-create); and atomicity (derived
/// from `Importer.apply` in `atomic()`): an application part that is refused creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_transactional_application_create() {
    for version in ["2024.12", "2026.8.3"] {
        let h = Harness::new(version).await;
        let flow = flow_pk(&h, "authorization").unwrap();
        let request = |name: &str, slug: &str, authorization: &str| {
            json!({
                "app": {"name": name, "slug": slug},
                "provider_model": "authentik_providers_oauth2.oauth2provider",
                "provider": {"name": name, "authorization_flow": authorization, "invalidation_flow": authorization, "redirect_uris": []},
            })
        };
        let put = |body: Value| call(&h, "PUT", "core/transactional/applications/", Some(body));
        let (status, answer) = put(request("one", "one", &flow)).await;
        assert_eq!(
            (status, answer),
            (200, json!({"applied": true, "logs": []})),
            "{version}"
        );
        let linked = h.sim.with_world(|w| {
            let provider = w.oauth2.values().find(|p| p.name == "one").map(|p| p.pk);
            (provider, w.applications.get("one").and_then(|a| a.provider))
        });
        assert!(linked.0.is_some() && linked.0 == linked.1, "{version}: {linked:?}");

        let (status, answer) = put(request("two", "two", "")).await;
        assert_eq!(status, 400, "{version}");
        assert_eq!(
            answer,
            json!({"provider": {"authorization_flow": ["This field may not be null."], "invalidation_flow": ["This field may not be null."]}}),
            "{version}"
        );

        let (status, answer) = put(request("one", "other", &flow)).await;
        assert_eq!(
            (status, answer),
            (
                400,
                json!({"provider": {"name": ["State is set to must_created and object exists already"]}})
            ),
            "{version}"
        );

        // The application part refused (its slug is taken): no provider is left behind.
        let (status, answer) = put(request("three", "one", &flow)).await;
        assert_eq!(status, 400, "{version}: {answer}");
        assert!(answer["app"]["slug"].is_array(), "{version}: {answer}");
        assert!(
            h.sim.with_world(|w| !w.oauth2.values().any(|p| p.name == "three")),
            "{version}: nothing created"
        );
    }
}

/// Conformance — groups and policy bindings over the API, and what they do to the filtered
/// application list (`authentik/policies/api/bindings.py` `PolicyBindingSerializer.validate`,
/// `authentik/core/api/groups.py` `add_user`, `authentik/policies/signals.py`): a binding needs
/// exactly one of policy, group and user (the wording changed in 2024.12); a group binding hides
/// the application from a superuser outside the group; adding the user to the group (a group
/// save) clears the cached list and shows it. Every response is checked against the release's
/// schema by the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_groups_and_bindings_decide_the_filtered_list() {
    for version in all_releases() {
        let h = Harness::new(version).await;
        let (_, app) = call(
            &h,
            "POST",
            "core/applications/",
            Some(json!({"name": "Payroll", "slug": "payroll"})),
        )
        .await;
        // The application's pk is its policy binding model's `pbm_uuid`.
        let target = app["pk"].as_str().unwrap().to_string();
        let (status, group) = call(
            &h,
            "POST",
            "core/groups/",
            Some(json!({"name": "finance", "users": []})),
        )
        .await;
        assert_eq!(status, 201, "{version}: {group}");
        let group_pk = group["pk"].as_str().unwrap().to_string();

        let (status, answer) = call(
            &h,
            "POST",
            "policies/bindings/",
            Some(json!({"target": target, "order": 0})),
        )
        .await;
        let wording = if release(version) >= (2024, 12) {
            "One of 'group', 'policy', 'user' must be set."
        } else {
            "One of 'policy', 'group' or 'user' must be set."
        };
        assert_eq!(
            (status, answer),
            (400, json!({ "non_field_errors": [wording] })),
            "{version}"
        );

        let (status, binding) = call(
            &h,
            "POST",
            "policies/bindings/",
            Some(json!({"target": target, "group": group_pk, "order": 0})),
        )
        .await;
        assert_eq!(status, 201, "{version}: {binding}");
        assert_eq!(binding["group_obj"]["name"], "finance", "{version}");
        let slugs = |v: &Value| -> Vec<String> {
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["slug"].as_str().unwrap().to_string())
                .collect()
        };
        let (_, filtered) = call(&h, "GET", "core/applications/", None).await;
        assert!(slugs(&filtered).is_empty(), "{version}: {filtered}");
        let (status, _) = call(
            &h,
            "POST",
            &format!("core/groups/{group_pk}/add_user/"),
            Some(json!({"pk": 1})),
        )
        .await;
        assert_eq!(status, 204, "{version}");
        let (_, filtered) = call(&h, "GET", "core/applications/", None).await;
        assert_eq!(slugs(&filtered), ["payroll"], "{version}: a member sees it");
        let (_, bindings) = call(&h, "GET", &format!("policies/bindings/?target={target}"), None).await;
        assert_eq!(bindings["pagination"]["count"], 1, "{version}: {bindings}");
        let pk = binding["pk"].as_str().unwrap();
        let (status, _) = call(&h, "DELETE", &format!("policies/bindings/{pk}/"), None).await;
        assert_eq!(status, 204, "{version}");
    }
}

/// Conformance — `authentik/providers/proxy/tests.py::test_validate`: a proxy provider in mode
/// `proxy` without an internal host; `authentik/providers/oauth2/api/scopes.py` (`no_space`)
/// and `PropertyMapping.name` (unique over every mapping type, DRF's message with the verbose
/// name `Property Mapping`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_proxy_and_scope_mapping_validation() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        let (flow, invalidation) = (flow_pk(&h, "authorization").unwrap(), flow_pk(&h, "invalidation"));
        let mut body =
            json!({"name": "p", "mode": "proxy", "authorization_flow": flow, "external_host": "http://localhost"});
        if let Some(f) = invalidation.filter(|_| version != "2024.2") {
            body["invalidation_flow"] = json!(f);
        }
        let (status, answer) = call(&h, "POST", "providers/proxy/", Some(body)).await;
        assert_eq!(
            (status, answer),
            (
                400,
                json!({"internal_host": ["Internal host cannot be empty when forward auth is disabled."]})
            ),
            "{version}"
        );
        let path = h
            .sim
            .with_world(|w| w.shapes.scope_mapping_path.trim_start_matches('/').to_string());
        let mapping = |name: &str, scope: &str| json!({"name": name, "scope_name": scope, "expression": "return {}"});
        let (status, answer) = call(&h, "POST", &path, Some(mapping("m", "two words"))).await;
        assert_eq!(
            (status, answer),
            (400, json!({"scope_name": ["Value must not contain spaces."]})),
            "{version}"
        );
        let (status, _) = call(&h, "POST", &path, Some(mapping("m", "one"))).await;
        assert_eq!(status, 201, "{version}");
        let (status, answer) = call(&h, "POST", &path, Some(mapping("m", "other"))).await;
        assert_eq!(
            (status, answer),
            (
                400,
                json!({"name": ["Property Mapping with this name already exists."]})
            ),
            "{version}"
        );
    }
}
