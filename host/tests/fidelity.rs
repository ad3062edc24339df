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
/// the application from a superuser outside the group; adding the user to the group shows it
/// (an empty list is never cached, so the `add_user` that clears nothing still shows it). Every response is checked against the release's
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

/// Conformance — 404 bodies (DRF `APIView.handle_exception`, Django `get_object_or_404`): up to
/// 2025.2 (DRF 3.14) every unknown id is `{"detail": "Not found."}`; from 2025.4 (DRF 3.16) the
/// model's class is named (`No OAuth2Provider matches the given query.`); a malformed id fails
/// before the query (`generics.get_object_or_404` raises a bare `Http404`) and stays "Not found.".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_not_found_names_the_model_from_2025_4() {
    for version in all_releases() {
        let h = Harness::new(version).await;
        let named = release(version) >= (2025, 4);
        let expect = |model: &str| {
            if named {
                format!("No {model} matches the given query.")
            } else {
                "Not found.".to_string()
            }
        };
        for (path, model) in [
            ("core/applications/nothing-here/", "Application"),
            ("providers/oauth2/999/", "OAuth2Provider"),
            ("providers/proxy/999/", "ProxyProvider"),
            ("providers/saml/999/", "SAMLProvider"),
            ("core/groups/00000000-0000-4000-8000-000000000000/", "Group"),
            ("core/users/999/", "User"),
            ("outposts/instances/00000000-0000-4000-8000-000000000000/", "Outpost"),
        ] {
            let (status, answer) = call(&h, "GET", path, None).await;
            assert_eq!(
                (status, answer),
                (404, json!({"detail": expect(model)})),
                "{version} {path}"
            );
        }
        for path in [
            "providers/oauth2/abc/",
            "outposts/instances/not-a-uuid/",
            "core/groups/not-a-uuid/",
        ] {
            let (status, answer) = call(&h, "GET", path, None).await;
            assert_eq!(
                (status, answer),
                (404, json!({"detail": "Not found."})),
                "{version} {path}"
            );
        }
        assert!(h.sim.take_violations().is_empty(), "{version}");
    }
}

/// Conformance — expressions compiled at save (`PropertyMappingSerializer.validate_expression`
/// → `BaseEvaluator.validate`, authentik/lib/expression/evaluator.py; upstream
/// `core/tests/test_property_mapping_api.py::test_validate` asserts that `/` is refused): a syntax
/// error is 400 `{"expression": ["Expression Syntax Error: …"]}` in CPython's words, the line one
/// past the expression's (the wrapper's `def handler` comes first), the file `None` on create and
/// the mapping's saved name on update; text is stored trimmed (DRF `CharField`), so a blank
/// expression is DRF's "This field may not be blank.".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_expressions_are_compiled_at_save() {
    for version in all_releases() {
        let h = Harness::new(version).await;
        let path = h
            .sim
            .with_world(|w| w.shapes.scope_mapping_path.trim_start_matches('/').to_string());
        let mapping = |expression: &str| json!({"name": "claims", "scope_name": "claims", "expression": expression});
        let (status, answer) = call(&h, "POST", &path, Some(mapping("/"))).await;
        assert_eq!(
            (status, answer),
            (
                400,
                json!({"expression": ["Expression Syntax Error: invalid syntax (None, line 2)"]})
            ),
            "{version}"
        );
        let (status, answer) = call(&h, "POST", &path, Some(mapping(" \n\t"))).await;
        assert_eq!(
            (status, answer),
            (400, json!({"expression": ["This field may not be blank."]})),
            "{version}"
        );
        let (status, created) = call(&h, "POST", &path, Some(mapping("return {\n    \"a\": 1,\n}\n"))).await;
        assert_eq!(status, 201, "{version}: {created}");
        assert_eq!(
            created["expression"], "return {\n    \"a\": 1,\n}",
            "{version}: stored trimmed"
        );
        let pk = created["pk"].as_str().unwrap();
        let (status, answer) = call(
            &h,
            "PATCH",
            &format!("{path}{pk}/"),
            Some(json!({"expression": "x = 1\nreturn ("})),
        )
        .await;
        assert_eq!(
            (status, answer),
            (
                400,
                json!({"expression": ["Expression Syntax Error: '(' was never closed (claims, line 3)"]})
            ),
            "{version}"
        );
        assert!(h.sim.take_violations().is_empty(), "{version}");
    }
}

/// Client — a scope mapping whose expression is a YAML block scalar (the sample Mattermost's,
/// ending in a newline) converges: Authentik stores text trimmed, so before the fix every
/// `check` reported "expression differs" and every `fix` sent it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_scalar_expression_converges() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        assert!(
            h.manifest("mattermost").contains("expression: |"),
            "the sample uses a block scalar"
        );
        assert_all_ok(&h.fix(&["mattermost"]).await);
        assert_all_ok(&h.check(&["mattermost"]).await);
        let reports = h.fix(&["mattermost"]).await;
        assert!(
            report(&reports, "mattermost").changes.is_empty(),
            "{version}: {reports:?}"
        );
    }
}

/// Conformance — users, group parents and `check_access` (authentik/core/api/users.py,
/// authentik/core/api/groups.py, authentik/core/models.py `User.all_groups` / `Group.is_member`,
/// `ApplicationViewSet.check_access`; upstream `core/tests/test_users_api.py`,
/// `core/tests/test_applications_api.py::test_check_access`): a username is unique; a binding
/// on a group passes for members of its child groups, not of its parents; `check_access`
/// answers for `?for_user` (400 "User not found" for an unknown one from 2024.2); a parent is
/// `parent` up to 2025.10 (itself refused) and `parents` from 2025.12; saving a user or a group
/// clears the cached application list, `add_user` does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_users_group_parents_and_check_access() {
    for version in all_releases() {
        let h = Harness::new(version).await;
        let (status, alice) = call(
            &h,
            "POST",
            "core/users/",
            Some(json!({"username": "alice", "name": "Alice", "path": "users"})),
        )
        .await;
        assert_eq!(status, 201, "{version}: {alice}");
        assert_eq!(alice["is_superuser"], false, "{version}");
        let alice_pk = alice["pk"].as_u64().unwrap();
        let (status, answer) = call(
            &h,
            "POST",
            "core/users/",
            Some(json!({"username": "alice", "name": ""})),
        )
        .await;
        assert_eq!(
            (status, answer),
            (400, json!({"username": ["This field must be unique."]})),
            "{version}"
        );
        let (status, answer) = call(
            &h,
            "POST",
            "core/users/",
            Some(json!({"username": "bob", "name": "", "path": "/users"})),
        )
        .await;
        assert_eq!(
            (status, answer),
            (400, json!({"path": ["No leading or trailing slashes allowed."]})),
            "{version}"
        );

        let new_parents = release(version) >= (2025, 12);
        let (status, staff) = call(&h, "POST", "core/groups/", Some(json!({"name": "staff"}))).await;
        assert_eq!(status, 201, "{version}: {staff}");
        let staff_pk = staff["pk"].as_str().unwrap().to_string();
        let parent_field = if new_parents {
            json!({"name": "finance", "parents": [staff_pk], "users": [alice_pk]})
        } else {
            json!({"name": "finance", "parent": staff_pk, "users": [alice_pk]})
        };
        let (status, finance) = call(&h, "POST", "core/groups/", Some(parent_field)).await;
        assert_eq!(status, 201, "{version}: {finance}");
        let finance_pk = finance["pk"].as_str().unwrap().to_string();
        if !new_parents {
            let (status, answer) = call(
                &h,
                "PATCH",
                &format!("core/groups/{staff_pk}/"),
                Some(json!({"parent": staff_pk})),
            )
            .await;
            assert_eq!(
                (status, answer),
                (400, json!({"parent": ["Cannot set group as parent of itself."]})),
                "{version}"
            );
        }

        let (_, app) = call(
            &h,
            "POST",
            "core/applications/",
            Some(json!({"name": "Intranet", "slug": "intranet"})),
        )
        .await;
        let (_, payroll) = call(
            &h,
            "POST",
            "core/applications/",
            Some(json!({"name": "Payroll", "slug": "payroll"})),
        )
        .await;
        for (target, group) in [(&app, &staff_pk), (&payroll, &finance_pk)] {
            let (status, b) = call(
                &h,
                "POST",
                "policies/bindings/",
                Some(json!({"target": target["pk"], "group": group, "order": 0})),
            )
            .await;
            assert_eq!(status, 201, "{version}: {b}");
        }
        let access = |slug: &str, user: u64| format!("core/applications/{slug}/check_access/?for_user={user}");
        for (slug, user, passing) in [
            // alice is in finance, a child of staff: both bindings pass for her.
            ("intranet", alice_pk, true),
            ("payroll", alice_pk, true),
            // akadmin is in neither (a superuser still goes through the policy engine).
            ("intranet", 1, false),
        ] {
            let (status, answer) = call(&h, "GET", &access(slug, user), None).await;
            assert_eq!(status, 200, "{version}: {answer}");
            assert_eq!(answer["passing"], passing, "{version} {slug} {user}: {answer}");
        }
        // A member of the parent only does not pass the child's binding.
        let (_, carol) = call(
            &h,
            "POST",
            "core/users/",
            Some(json!({"username": "carol", "name": ""})),
        )
        .await;
        let carol_pk = carol["pk"].as_u64().unwrap();
        let (status, _) = call(
            &h,
            "POST",
            &format!("core/groups/{staff_pk}/add_user/"),
            Some(json!({"pk": carol_pk})),
        )
        .await;
        assert_eq!(status, 204, "{version}");
        let (_, answer) = call(&h, "GET", &access("payroll", carol_pk), None).await;
        assert_eq!(answer["passing"], false, "{version}: {answer}");
        let (_, answer) = call(&h, "GET", &access("intranet", carol_pk), None).await;
        assert_eq!(answer["passing"], true, "{version}: {answer}");

        let (status, answer) = call(&h, "GET", &access("intranet", 999), None).await;
        if release(version) >= (2024, 2) {
            assert_eq!(
                (status, answer),
                (400, json!({"for_user": "User not found"})),
                "{version}"
            );
        } else {
            assert_eq!(status, 404, "{version}: {answer}");
        }
        let (status, me) = call(&h, "GET", "core/users/me/", None).await;
        assert_eq!(status, 200, "{version}: {me}");
        assert_eq!(me["user"]["username"], "akadmin", "{version}");
        assert_eq!(me["user"]["is_superuser"], true, "{version}");
        let (_, listed) = call(&h, "GET", "core/users/?username=alice", None).await;
        assert_eq!(listed["pagination"]["count"], 1, "{version}: {listed}");
        assert!(h.sim.take_violations().is_empty(), "{version}");
    }
}

/// Conformance — a token whose user is not a superuser and holds no permission
/// (`ObjectPermissions`, `ObjectFilter`; upstream `test_list_denied`-style assertions): lists and
/// creates are 403 `You do not have permission to perform this action.`, `users/me/` and the
/// filtered application list still answer.
/// Client — ssoctl names the missing right instead of calling the token invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_superuser_rights_is_named_as_such() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        h.sim.with_world(|w| w.demote_token_user());
        let denied = json!({"detail": "You do not have permission to perform this action."});
        for (method, path) in [
            ("GET", "providers/oauth2/"),
            ("GET", "core/groups/"),
            ("POST", "core/groups/"),
        ] {
            let body = (method == "POST").then(|| json!({"name": "x"}));
            let (status, answer) = call(&h, method, path, body).await;
            assert_eq!((status, answer), (403, denied.clone()), "{version} {method} {path}");
        }
        let (status, me) = call(&h, "GET", "core/users/me/", None).await;
        assert_eq!(
            (status, me["user"]["is_superuser"].clone()),
            (200, json!(false)),
            "{version}"
        );
        let (status, _) = call(&h, "GET", "core/applications/", None).await;
        assert_eq!(status, 200, "{version}");

        // Nothing can be looked up, so the whole command stops, saying why.
        let err = h
            .session()
            .await
            .check(&names(&["grafana"]), None)
            .await
            .expect_err("no service can be checked");
        let text = err.to_string();
        assert!(
            text.contains("the token's user may not do this") && text.contains("superuser"),
            "{version}: {text}"
        );
        assert!(!text.contains("rejected AUTHENTIK_ADMIN_TOKEN"), "{version}: {text}");
    }
}

/// Conformance — a proxy provider as the OAuth2 endpoints show it (`ProxyProvider.
/// set_oauth_defaults` and `_get_callback_url`, authentik/providers/proxy/models.py): the
/// callback joined to the external host as `urljoin` does plus the host itself, with `\?` in
/// regex strings up to 2024.10.2 and plain strict URLs from 2024.12; the default OpenID and
/// proxy scope mappings added; no signing key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_proxy_providers_get_the_oauth_defaults() {
    for version in all_releases() {
        let h = Harness::new(version).await;
        let flow = flow_pk(&h, "authorization").unwrap();
        let mut body = json!({"name": "px", "mode": "forward_single", "authorization_flow": flow,
            "external_host": "https://app.example.org/sub/page"});
        if release(version) >= (2024, 10) {
            body["invalidation_flow"] = json!(flow_pk(&h, "invalidation").unwrap());
        }
        let (status, created) = call(&h, "POST", "providers/proxy/", Some(body)).await;
        assert_eq!(status, 201, "{version}: {created}");
        let pk = created["pk"].as_u64().unwrap();
        let (_, oauth) = call(&h, "GET", &format!("providers/oauth2/{pk}/"), None).await;
        let old = release(version) < (2024, 12);
        let q = if old { "\\?" } else { "?" };
        let callback =
            format!("https://app.example.org/sub/outpost.goauthentik.io/callback{q}X-authentik-auth-callback=true");
        let root = format!("https://app.example.org/sub/page{q}X-authentik-auth-callback=true");
        if old && oauth["redirect_uris"].is_string() {
            assert_eq!(oauth["redirect_uris"], format!("{callback}\n{root}"), "{version}");
        } else {
            assert_eq!(
                oauth["redirect_uris"],
                json!([{"matching_mode": "strict", "url": callback}, {"matching_mode": "strict", "url": root}])
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(oauth["redirect_uris"].as_array().unwrap())
                    .map(|(want, got)| {
                        let mut want = want.clone();
                        if let Some(t) = got.get("redirect_uri_type") {
                            want["redirect_uri_type"] = t.clone();
                        }
                        want
                    })
                    .collect::<Value>(),
                "{version}: {oauth}"
            );
        }
        assert_eq!(oauth["signing_key"], Value::Null, "{version}");
        let managed: Vec<String> = h.sim.with_world(|w| {
            w.proxy[&pk]
                .property_mappings
                .iter()
                .filter_map(|m| w.scope_mappings.iter().find(|s| &s.pk == m))
                .filter_map(|s| s.managed.clone())
                .collect()
        });
        for m in [
            "goauthentik.io/providers/oauth2/scope-openid",
            "goauthentik.io/providers/oauth2/scope-profile",
            "goauthentik.io/providers/oauth2/scope-email",
            "goauthentik.io/providers/proxy/scope-proxy",
        ] {
            assert!(managed.iter().any(|x| x == m), "{version}: {m} in {managed:?}");
        }
        assert!(h.sim.take_violations().is_empty(), "{version}");
    }
}

/// Conformance — `OutpostSerializer.validate_providers` (authentik/outposts/api/outposts.py,
/// upstream `outposts/tests/test_api.py::test_outpost_validation`): a provider must be of the
/// class the request's `type` serves ("Outpost type proxy can't be used with OAuth2Provider
/// providers."); a PATCH without `type` checks against `Provider`, so any provider passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_outpost_providers_match_the_type_in_the_request() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        assert_all_ok(&h.fix(&["grafana", "adminer"]).await);
        let (oauth_pk, proxy_pk, outpost) = h.sim.with_world(|w| {
            (
                *w.oauth2.keys().next().unwrap(),
                *w.proxy.keys().next().unwrap(),
                w.outposts[0].pk.clone(),
            )
        });
        let path = format!("outposts/instances/{outpost}/");
        let (status, answer) = call(
            &h,
            "PATCH",
            &path,
            Some(json!({"type": "proxy", "providers": [proxy_pk, oauth_pk]})),
        )
        .await;
        assert_eq!(
            (status, answer),
            (
                400,
                json!({"providers": ["Outpost type proxy can't be used with OAuth2Provider providers."]})
            ),
            "{version}"
        );
        let (status, answer) = call(&h, "PATCH", &path, Some(json!({"providers": [proxy_pk, oauth_pk]}))).await;
        assert_eq!(status, 200, "{version}: {answer}");
    }
}
