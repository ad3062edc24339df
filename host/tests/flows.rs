//! End-to-end behaviour of the oauth and oidc flows against the simulator, for every Authentik
//! version in `common::VERSIONS` (2024.2: redirect URIs as a regex string, no invalidation flow;
//! 2026.8.3: `{matching_mode, url}` lists, grant types required).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::json;
use ssoctl::runner::Status;

/// Runs an async test body once per version.
macro_rules! per_version {
    ($($name:ident => $body:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for version in VERSIONS {
                    let f: fn(&'static str) -> _ = $body;
                    f(version).await;
                }
            }
        )*
    };
}

per_version! {
    bootstrap_registers_writes_env_and_checks_green => |version| async move {
        let h = Harness::new(version).await;
        let before = h.manifest("grafana");
        let reports = h.bootstrap().await;
        for name in OAUTH_SERVICES {
            let r = report(&reports, name);
            assert_eq!(r.status, Status::Ok, "{version} {name}: {:?}", r.error);
            assert!(r.changes.iter().any(|c| c == &format!("created OAuth2 provider `{name}`")), "{name}: {:?}", r.changes);
        }
        // All six types, the whole sample stack.
        assert_all_ok(&reports);
        assert_eq!(reports.len(), implemented().len());
        // Authentik holds the provider the service's .env points at.
        let p = h.provider("grafana").await.expect("grafana provider");
        assert_eq!(h.env_value("GF_AUTH_GENERIC_OAUTH_CLIENT_ID").as_deref(), Some(p.client_id.as_str()));
        assert_eq!(h.env_value("GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"), p.client_secret);
        assert_eq!(h.env_value("GF_AUTH_GENERIC_OAUTH_AUTH_URL").unwrap(), format!("{}/application/o/authorize/", h.sim.url()));
        assert_eq!(h.env_value("SUPERSET_OIDC_ISSUER").unwrap(), format!("{}/application/o/superset/", h.sim.url()));
        assert_eq!(h.env_value("REDMINE_OAUTH_TOKEN_URL").unwrap(), format!("{}/application/o/token/", h.sim.url()));
        assert_eq!(h.env_value("OIDC_OP_JWKS_ENDPOINT").unwrap(), format!("{}/application/o/linkding/jwks/", h.sim.url()));
        // .env keeps its comments and is private; the manifest changed by exactly one line.
        assert!(h.env().starts_with("# Sample stack settings."));
        let mode = std::fs::metadata(h.root().join(".env")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let after = h.manifest("grafana");
        let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(changed[0].1.trim_start().starts_with("configured: true   "), "comment kept: {changed:?}");
        assert!(h.manifest("wikijs").contains("configured: true"));
        assert_all_ok(&h.check(&OAUTH_SERVICES).await);
    };

    version_specific_shapes_reach_authentik => |version| async move {
        let h = Harness::new(version).await;
        h.bootstrap().await;
        let p = h.provider("mattermost").await.unwrap();
        if version == "2024.2" {
            let uris = p.redirect_uris.as_str().expect("a newline-separated string on 2024.2");
            assert_eq!(uris, "https://mattermost\\.example\\.org/login/gitlab/complete\nhttps://mattermost\\.example\\.org/signup/gitlab/complete");
            assert!(p.grant_types.is_none());
            assert!(p.invalidation_flow.is_none());
        } else {
            assert_eq!(p.redirect_uris.as_array().expect("a list on 2026.8").len(), 2);
            assert_eq!(p.grant_types.clone().unwrap(), vec!["authorization_code", "refresh_token"]);
            assert!(p.invalidation_flow.is_some());
        }
        assert!(p.signing_key.is_some(), "tokens are signed (Linkding needs RS256)");
        assert_eq!(p.property_mappings.len(), 4, "openid, email, profile and Mattermost's read_user");
    };

    each_drift_kind_is_reported_by_name_and_fixed => |version| async move {
        let h = Harness::new(version).await;
        h.bootstrap().await;
        let ak_session = h.session().await;
        let ak = ak_session.authentik();
        let grafana = h.provider("grafana").await.unwrap();
        let n8n = h.provider("n8n").await.unwrap();
        let redmine = h.provider("redmine").await.unwrap();
        let evil = if version == "2024.2" { json!("https://evil.example.net/cb") } else { json!([{"matching_mode": "strict", "url": "https://evil.example.net/cb"}]) };
        ak.patch::<serde_json::Value>(&format!("providers/oauth2/{}/", grafana.pk), &json!({"redirect_uris": evil})).await.unwrap();
        ak.patch::<serde_json::Value>(&format!("providers/oauth2/{}/", n8n.pk), &json!({"client_secret": "rotated-by-an-admin-0000"})).await.unwrap();
        ak.patch::<serde_json::Value>(&format!("providers/oauth2/{}/", redmine.pk), &json!({"signing_key": null})).await.unwrap();
        ak.delete("core/applications/superset/").await.unwrap();
        let outline = h.provider("outline").await.unwrap();
        ak.delete(&format!("providers/oauth2/{}/", outline.pk)).await.unwrap();
        // Local drift: someone edited the service's client id in .env.
        let env = h.env().replace(&format!("OIDC_RP_CLIENT_ID={}", h.env_value("OIDC_RP_CLIENT_ID").unwrap()), "OIDC_RP_CLIENT_ID=stale");
        std::fs::write(h.root().join(".env"), env).unwrap();

        let checked = h.check(&OAUTH_SERVICES).await;
        let expect = [
            ("grafana", "redirect-uri-mismatch"),
            ("n8n", "client-secret-mismatch"),
            ("redmine", "signing-key-mismatch"),
            ("superset", "application-missing"),
            ("outline", "provider-missing"),
            ("linkding", "env-mismatch"),
        ];
        for (name, kind) in expect {
            let r = report(&checked, name);
            assert_eq!(r.status, Status::Drift, "{version} {name}");
            assert!(kinds(r).contains(&kind), "{version} {name}: {:?}", r.findings);
        }
        assert_eq!(report(&checked, "mattermost").status, Status::Ok, "untouched service stays green");
        let grafana_line = ssoctl::report::lines(report(&checked, "grafana"), ssoctl::capabilities::Mode::Check).join("\n");
        assert!(grafana_line.starts_with("❌ grafana (oidc) — redirect URI mismatch: Authentik has https://evil.example.net/cb"), "{grafana_line}");
        // The rotated secret itself is never shown.
        let all = format!("{checked:?}");
        assert!(!all.contains("rotated-by-an-admin-0000"), "{all}");

        let fixed = h.fix(&OAUTH_SERVICES).await;
        assert_all_ok(&fixed);
        assert_all_ok(&h.check(&OAUTH_SERVICES).await);
        assert_eq!(h.env_value("N8N_SSO_OIDC_CLIENT_SECRET").as_deref(), Some("rotated-by-an-admin-0000"), "Authentik's secret wins");
    };

    a_converged_stack_makes_zero_write_requests => |version| async move {
        let h = Harness::new(version).await;
        h.bootstrap().await;
        let env_before = h.env();
        h.sim.reset_counts();
        // Second bootstrap: every implemented service is configured, so nothing to do.
        let again = h.bootstrap().await;
        assert!(again.iter().all(|r| !implemented().contains(&r.service.as_str())));
        // Forget `configured` and bootstrap again: every object is compared, none written.
        for name in implemented() {
            let text = h.manifest(name).replace("configured: true", "configured: false");
            std::fs::write(h.manifest_path(name), text).unwrap();
        }
        let rerun = h.bootstrap().await;
        for name in implemented() {
            let r = report(&rerun, name);
            assert_eq!(r.status, Status::Ok, "{name}: {:?}", r.error);
            assert_eq!(r.changes, vec!["marked sso.configured: true"], "{name}");
        }
        let fixed = h.fix(&implemented()).await;
        assert_eq!(fixed.len(), 12);
        assert!(fixed.iter().all(|r| r.changes.is_empty()), "{fixed:?}");
        assert_eq!(h.sim.writes(), 0, "write requests on a converged stack: {:?}", h.sim.counts());
        assert!(h.sim.requests() > 0);
        assert_eq!(h.env(), env_before, ".env untouched");
    };

    plan_and_check_write_nothing => |version| async move {
        let h = Harness::new(version).await;
        let env_before = h.env();
        let manifest_before = h.manifest("grafana");
        let plan = h.plan(&OAUTH_SERVICES).await;
        for r in &plan {
            assert_eq!(r.status, Status::Ok, "{:?}", r.error);
            assert!(r.changes.iter().any(|c| c.starts_with("create OAuth2 provider")), "{:?}", r.changes);
            assert!(r.changes.iter().any(|c| c.starts_with("create application")), "{:?}", r.changes);
        }
        assert_eq!(ssoctl::report::exit_code(&plan, ssoctl::capabilities::Mode::Plan), 1);
        let checked = h.check(&OAUTH_SERVICES).await;
        for r in &checked {
            // The root cause only: .env values derived from a missing provider are not compared.
            let expected: &[&str] = if matches!(r.service.as_str(), "mattermost" | "redmine") {
                &["scope-mapping-missing", "provider-missing", "application-missing"]
            } else {
                &["provider-missing", "application-missing"]
            };
            assert_eq!(kinds(r), expected, "{}", r.service);
        }
        assert_eq!(h.sim.writes(), 0);
        assert_eq!(h.env(), env_before);
        assert_eq!(h.manifest("grafana"), manifest_before);
        // After bootstrap, plan has nothing to do.
        h.bootstrap().await;
        let plan = h.plan(&OAUTH_SERVICES).await;
        assert!(plan.iter().all(|r| r.changes.is_empty()), "{plan:?}");
        assert_eq!(ssoctl::report::exit_code(&plan, ssoctl::capabilities::Mode::Plan), 0);
    };

    mattermost_gets_its_own_scope_mapping => |version| async move {
        let h = Harness::new(version).await;
        assert_all_ok(&h.fix(&["mattermost"]).await);
        let name = "ssoctl mattermost read_user";
        let (pk, expression) = h.sim.with_world(|w| {
            let m = w.scope_mappings.iter().find(|m| m.name == name).expect("mapping created");
            assert_eq!(m.scope_name, "read_user");
            (m.pk.clone(), m.expression.clone())
        });
        assert!(expression.contains("\"id\": request.user.pk"), "{expression}");
        let p = h.provider("mattermost").await.unwrap();
        assert!(p.property_mappings.contains(&pk), "attached to the provider");
        assert_eq!(p.property_mappings.len(), 4);
        // Someone edits the expression in the admin UI: check names it, fix restores it.
        let session = h.session().await;
        let path = if version == "2024.2" { "propertymappings/scope" } else { "propertymappings/provider/scope" };
        session.authentik().patch::<serde_json::Value>(&format!("{path}/{pk}/"), &json!({"expression": "return {}"})).await.unwrap();
        let checked = h.check(&["mattermost"]).await;
        assert_eq!(kinds(report(&checked, "mattermost")), ["scope-mapping-mismatch"]);
        assert_all_ok(&h.fix(&["mattermost"]).await);
        assert_all_ok(&h.check(&["mattermost"]).await);
        let n = h.sim.with_world(|w| w.scope_mappings.iter().filter(|m| m.name == name).count());
        assert_eq!(n, 1, "no duplicate mapping");
    };

    proxy_services_join_the_embedded_outpost_and_keep_the_others => |version| async move {
        let h = Harness::new(version).await;
        // A provider someone else attached to the embedded outpost.
        let foreign = h.sim.with_world(|w| {
            let pk = w.next_provider_pk();
            let mut p = ssoctl_sim::world::ProxyProvider {
                pk, name: "hand-made".into(), authorization_flow: w.flows[3].pk.clone(), authentication_flow: None,
                invalidation_flow: None, property_mappings: vec![], client_id: "x".into(), mode: "forward_single".into(),
                external_host: "https://hand.example.org".into(), internal_host: String::new(),
                internal_host_ssl_validation: true, cookie_domain: String::new(), skip_path_regex: String::new(),
                intercept_header_auth: true, basic_auth_enabled: false, access_token_validity: "hours=24".into(),
                refresh_token_validity: "days=30".into(),
            };
            p.invalidation_flow = w.flows.iter().find(|f| f.slug == "default-provider-invalidation-flow").map(|f| f.pk.clone());
            w.proxy.insert(pk, p);
            w.outposts[0].providers.push(pk);
            pk
        });
        // Both proxy services at once, with a slow outpost read so that both read the list before
        // either writes it: the list is replaced on every PATCH, so only serialising keeps both.
        h.sim.add_latency("GET", "/outposts/instances/", std::time::Duration::from_millis(100));
        let mut services: Vec<String> = PROXY_SERVICES.iter().map(|s| s.to_string()).collect();
        for i in 0..6 {
            let name = format!("gate-{i}");
            let dir = h.root().join("packages").join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("manifest.yaml"), "sso:\n  type: proxy\n  configured: false\n").unwrap();
            services.push(name);
        }
        let reports = h.session().await.apply(&services, None).await.unwrap();
        assert_all_ok(&reports);
        let attached = h.sim.with_world(|w| w.outposts[0].providers.len());
        assert_eq!(attached, 1 + services.len(), "every provider attached, the foreign one kept");
        let (outpost_providers, adminer, kuma) = h.sim.with_world(|w| {
            let pk = |n: &str| w.proxy.values().find(|p| p.name == n).map(|p| (p.pk, p.mode.clone(), p.external_host.clone())).unwrap();
            (w.outposts[0].providers.clone(), pk("adminer"), pk("uptime-kuma"))
        });
        for pk in [foreign, adminer.0, kuma.0] {
            assert!(outpost_providers.contains(&pk), "{outpost_providers:?} lacks {pk}");
        }
        assert_eq!(adminer.1, "forward_single");
        assert_eq!(kuma.2, "https://status.example.org");
        let traefik = std::fs::read_to_string(h.root().join("packages/adminer/traefik/sso.yml")).unwrap();
        assert!(traefik.contains("address: http://authentik-server:9000/outpost.goauthentik.io/auth/traefik"), "{traefik}");
        assert!(traefik.contains("rule: \"Host(`adminer.example.org`) && PathPrefix(`/outpost.goauthentik.io/`)\"\n      service: adminer-authentik-outpost\n      priority: 1000"), "{traefik}");
        assert_all_ok(&h.check(&PROXY_SERVICES).await);

        // Drift: adminer detached by hand, uptime-kuma's host changed, adminer's file edited.
        let session = h.session().await;
        let ak = session.authentik();
        let outpost = h.sim.with_world(|w| w.outposts[0].pk.clone());
        let keep: Vec<u64> = outpost_providers.iter().copied().filter(|p| *p != adminer.0).collect();
        ak.patch::<serde_json::Value>(&format!("outposts/instances/{outpost}/"), &json!({"providers": keep})).await.unwrap();
        ak.patch::<serde_json::Value>(&format!("providers/proxy/{}/", kuma.0), &json!({"mode": "forward_single", "external_host": "https://old.example.org"})).await.unwrap();
        std::fs::write(h.root().join("packages/adminer/traefik/sso.yml"), "http: {}\n").unwrap();
        let checked = h.check(&PROXY_SERVICES).await;
        assert_eq!(kinds(report(&checked, "adminer")), ["outpost-detached", "file-mismatch"]);
        assert_eq!(kinds(report(&checked, "uptime-kuma")), ["external-host-mismatch"]);
        assert_all_ok(&h.fix(&PROXY_SERVICES).await);
        assert_all_ok(&h.check(&PROXY_SERVICES).await);
        assert!(h.sim.with_world(|w| w.outposts[0].providers.contains(&foreign)), "never removes others' providers");
    };

    saml_provider_and_the_certificate_the_service_trusts => |version| async move {
        let h = Harness::new(version).await;
        assert_all_ok(&h.fix(&["zammad"]).await);
        let (provider, keypair) = h.sim.with_world(|w| (w.saml.values().next().unwrap().clone(), w.keypairs[0].clone()));
        assert_eq!(provider.acs_url, "https://zammad.example.org/auth/saml/callback");
        assert_eq!(provider.audience, "https://zammad.example.org/auth/saml/metadata");
        assert_eq!(provider.issuer, format!("{}/application/saml/zammad/metadata/", h.sim.url()), "issuer set explicitly on every version");
        assert_eq!(provider.sp_binding, "post");
        assert_eq!(provider.signing_kp.as_deref(), Some(keypair.pk.as_str()));
        assert_eq!(provider.property_mappings.len(), 3);
        assert!(provider.name_id_mapping.is_some());
        assert_eq!(h.env_value("ZAMMAD_SAML_IDP_CERT_FINGERPRINT").as_deref(), Some(keypair.fingerprint_sha256.as_str()));
        assert_eq!(
            h.env_value("ZAMMAD_SAML_IDP_SSO_TARGET_URL").unwrap(),
            format!("{}/application/saml/zammad/sso/binding/redirect/", h.sim.url())
        );
        // Zammad's own settings, over its REST API.
        let zammad = &h.fakes.zammad;
        let pem = h.sim.with_world(|w| w.keypairs[0].certificate_pem.clone());
        let credentials = zammad.setting("auth_saml_credentials").unwrap();
        assert_eq!(credentials["idp_cert"], pem.as_str());
        assert_eq!(credentials["idp_sso_target_url"], format!("{}/application/saml/zammad/sso/binding/redirect/", h.sim.url()));
        assert_eq!(credentials["idp_slo_service_url"], format!("{}/application/saml/zammad/slo/binding/redirect/", h.sim.url()));
        assert_eq!(credentials["security"], "off", "keys ssoctl does not own are kept");
        assert_eq!(zammad.setting("auth_saml"), Some(json!(true)));
        assert_eq!(zammad.setting("fqdn"), Some(json!("zammad.example.org")));
        assert_eq!(zammad.setting("http_type"), Some(json!("https")));
        let green = h.check(&["zammad"]).await;
        assert_eq!(ssoctl::report::lines(&green[0], ssoctl::capabilities::Mode::Check), ["✓ zammad (saml) — Authentik app present, signing cert matches", "⚠ zammad — open to every Authentik user (no sso.access)"]);
        let before = zammad.requests().len();
        assert!(h.fix(&["zammad"]).await[0].changes.is_empty());
        assert!(zammad.requests()[before..].iter().all(|r| r.starts_with("GET ")), "converged: {:?}", zammad.requests());

        // Key rotation: Authentik signs with a new certificate; Zammad still trusts the old one.
        h.sim.with_world(|w| w.keypairs[0].rotate());
        let rotated = h.check(&["zammad"]).await;
        assert_eq!(kinds(&rotated[0]), ["signing-cert-mismatch", "signing-cert-mismatch"]);
        assert!(rotated[0].findings[0].message.starts_with("signing cert mismatch: ZAMMAD_SAML_IDP_CERT_FINGERPRINT"));
        assert_eq!(rotated[0].findings[1].message, "signing cert mismatch: Zammad's idp_cert is not the certificate Authentik signs with");
        assert_all_ok(&h.fix(&["zammad"]).await);
        assert_all_ok(&h.check(&["zammad"]).await);
        let pem = h.sim.with_world(|w| w.keypairs[0].certificate_pem.clone());
        assert_eq!(zammad.setting("auth_saml_credentials").unwrap()["idp_cert"], pem.as_str());
        // An admin switches SAML off in Zammad.
        zammad.edit("auth_saml", None, json!(false));
        zammad.edit("auth_saml_credentials", Some("idp_sso_target_url"), json!("https://old-idp.example.org/sso"));
        assert_eq!(kinds(&h.check(&["zammad"]).await[0]), ["zammad-saml-disabled", "zammad-setting-mismatch"]);
        assert_all_ok(&h.fix(&["zammad"]).await);
        assert_all_ok(&h.check(&["zammad"]).await);
        // Someone points the provider at another keypair.
        let jwt = h.sim.with_world(|w| {
            let jwt = w.keypairs[1].pk.clone();
            w.saml.values_mut().next().unwrap().signing_kp = Some(jwt.clone());
            jwt
        });
        assert!(kinds(&h.check(&["zammad"]).await[0]).contains(&"signing-key-mismatch"));
        assert_all_ok(&h.fix(&["zammad"]).await);
        assert_all_ok(&h.check(&["zammad"]).await);
        let (kp, fingerprint) = h.sim.with_world(|w| (w.saml.values().next().unwrap().signing_kp.clone(), w.keypairs[0].fingerprint_sha256.clone()));
        assert_ne!(kp.as_deref(), Some(jwt.as_str()));
        assert_eq!(h.env_value("ZAMMAD_SAML_IDP_CERT_FINGERPRINT"), Some(fingerprint));
        // A wrong API token: one clear error, no token in it.
        std::fs::write(h.root().join(".env"), h.env().replace(ssoctl::demo::ZAMMAD_TOKEN, "wrong-token")).unwrap();
        let r = h.check(&["zammad"]).await;
        assert_eq!(r[0].error.as_deref(), Some("Zammad refused the API token (401): it needs admin.security, and API token access must be on"));
    };

    frappe_social_login_key_follows_authentik => |version| async move {
        let h = Harness::new(version).await;
        let r = h.fix(&["erpnext"]).await;
        assert_all_ok(&r);
        assert!(r[0].changes.iter().any(|c| c.starts_with("POST /api/resource/Social%20Login%20Key on ")), "{:?}", r[0].changes);
        let p = h.provider("erpnext").await.unwrap();
        let doc = h.fakes.frappe.doc("authentik").expect("Social Login Key created");
        assert_eq!(doc["client_id"], p.client_id.as_str());
        assert_eq!(doc["authorize_url"], format!("{}/application/o/authorize/", h.sim.url()));
        assert_eq!(doc["redirect_url"], "/api/method/frappe.integrations.oauth2_logins.custom/authentik");
        assert_eq!(doc["enable_social_login"], 1);
        assert_eq!(h.fakes.frappe.secret("authentik"), p.client_secret, "the secret reached Frappe");
        let green = h.check(&["erpnext"]).await;
        assert_eq!(ssoctl::report::lines(&green[0], ssoctl::capabilities::Mode::Check), ["✓ erpnext (frappe) — Authentik app present, client secret matches", "⚠ erpnext — open to every Authentik user (no sso.access)"]);

        // Drift on both sides: Authentik's secret rotated, Frappe's authorize URL edited.
        let session = h.session().await;
        session.authentik().patch::<serde_json::Value>(&format!("providers/oauth2/{}/", p.pk), &json!({"client_secret": "rotated-by-hand-000000"})).await.unwrap();
        h.fakes.frappe.edit("authentik", "authorize_url", json!("https://old-idp.example.org/authorize"));
        let checked = h.check(&["erpnext"]).await;
        assert_eq!(kinds(&checked[0]), ["social-login-key-mismatch", "client-secret-mismatch"]);
        assert!(!format!("{checked:?}").contains("rotated-by-hand-000000"));
        assert_all_ok(&h.fix(&["erpnext"]).await);
        assert_all_ok(&h.check(&["erpnext"]).await);
        assert_eq!(h.fakes.frappe.secret("authentik").as_deref(), Some("rotated-by-hand-000000"));

        // Converged: reads only.
        let before = h.fakes.frappe.requests().len();
        let r = h.fix(&["erpnext"]).await;
        assert!(r[0].changes.is_empty(), "{:?}", r[0].changes);
        assert!(h.fakes.frappe.requests()[before..].iter().all(|r| r.starts_with("GET ")), "{:?}", h.fakes.frappe.requests());

        // Wrong API credentials: one clear error.
        std::fs::write(h.root().join(".env"), h.env().replace(ssoctl::demo::FRAPPE_SECRET, "wrong")).unwrap();
        let r = h.check(&["erpnext"]).await;
        assert_eq!(r[0].error.as_deref(), Some("Frappe refused the API credentials (401): check the keys named by sso.http in the manifest"));
    };

    wikijs_strategy_and_api_key => |version| async move {
        use ssoctl_sim::wikijs::Strategy;
        let h = Harness::new(version).await;
        let wiki = &h.fakes.wikijs;
        // A Wiki.js configured by hand before: GitHub logins that people use.
        let github = Strategy {
            key: "0b6c1c36-github".into(),
            strategy_key: "github".into(),
            display_name: "GitHub".into(),
            order: 1,
            is_enabled: true,
            config: json!({"clientId": "gh-client", "clientSecret": "gh-secret-value", "useEnterprise": false}).as_object().unwrap().clone(),
            self_registration: true,
            domain_whitelist: vec!["example.org".into()],
            auto_enroll_groups: vec![2],
        };
        wiki.put_strategy(github.clone());
        wiki.set_users("local", 1);
        wiki.set_users(&github.key, 3);
        assert!(!wiki.api_enabled());

        // Plan and check on a fresh stack: Wiki.js sees no write, .env is untouched.
        let env_before = h.env();
        let plan = h.plan(&["wikijs"]).await;
        assert_eq!(plan[0].status, Status::Ok, "{:?}", plan[0].error);
        assert!(plan[0].changes.iter().any(|c| c.starts_with("POST /graphql (login) on ")), "{:?}", plan[0].changes);
        assert_eq!(kinds(&h.check(&["wikijs"]).await[0]), ["provider-missing", "application-missing"]);
        assert!(!wiki.api_enabled() && wiki.api_keys().is_empty() && wiki.strategies().len() == 2);
        assert_eq!(h.env(), env_before);

        let r = h.fix(&["wikijs"]).await;
        assert_all_ok(&r);
        assert!(wiki.api_enabled(), "the API was switched on");
        assert_eq!(wiki.api_keys(), [("ssoctl".to_string(), false)]);
        let api_key = h.env_value("WIKIJS_API_KEY").expect("API key stored in .env");
        assert!(!format!("{r:?}").contains(&api_key), "the minted key never shows");
        let key = h.env_value("WIKIJS_OIDC_STRATEGY_KEY").expect("strategy key persisted");
        assert!(key.len() == 36 && key.matches('-').count() == 4, "a UUID: {key}");
        let p = h.provider("wikijs").await.unwrap();
        assert!(format!("{:?}", p.redirect_uris).replace('\\', "").contains(&format!("https://wiki.example.org/login/{key}/callback")), "{:?}", p.redirect_uris);
        let strategies = wiki.strategies();
        assert_eq!(strategies.len(), 3, "{strategies:?}");
        assert_eq!(strategies.iter().find(|s| s.key == "local"), Some(&Strategy::local()), "local survives the full replace");
        assert_eq!(strategies.iter().find(|s| s.key == github.key), Some(&github), "GitHub survives, config intact");
        let ours = strategies.iter().find(|s| s.key == key).expect("our strategy");
        assert_eq!(ours.strategy_key, "oidc");
        assert_eq!(ours.config["clientId"], p.client_id.as_str());
        assert_eq!(ours.config["clientSecret"], p.client_secret.clone().unwrap().as_str());
        assert_eq!(ours.config["issuer"], format!("{}/application/o/wikijs/", h.sim.url()));
        assert_eq!(ours.config["authorizationURL"], format!("{}/application/o/authorize/", h.sim.url()));
        let green = h.check(&["wikijs"]).await;
        assert_eq!(
            ssoctl::report::lines(&green[0], ssoctl::capabilities::Mode::Check),
            ["✓ wikijs (wikijs) — Authentik app present, API key valid, strategy matches", "⚠ wikijs — open to every Authentik user (no sso.access)"]
        );
        let again = h.fix(&["wikijs"]).await;
        assert!(again[0].changes.is_empty(), "converged: {:?}", again[0].changes);

        // The key is revoked in Wiki.js: check says so, fix mints a new one and green again.
        wiki.revoke_all_keys();
        let revoked = h.check(&["wikijs"]).await;
        assert_eq!(kinds(&revoked[0]), ["api-key-invalid"]);
        assert!(revoked[0].findings[0].message.contains(ssoctl_sim::wikijs::KEY_REVOKED), "{:?}", revoked[0].findings);
        assert_all_ok(&h.fix(&["wikijs"]).await);
        assert_all_ok(&h.check(&["wikijs"]).await);
        assert_eq!(wiki.api_keys(), [("ssoctl".to_string(), true), ("ssoctl".to_string(), false)]);
        assert_ne!(h.env_value("WIKIJS_API_KEY"), Some(api_key));

        // The API switched off: switched on again, the key kept.
        wiki.set_api_enabled(false);
        let off = h.check(&["wikijs"]).await;
        assert!(off[0].findings[0].message.contains(ssoctl_sim::wikijs::API_DISABLED), "{:?}", off[0].findings);
        assert_all_ok(&h.fix(&["wikijs"]).await);
        assert_eq!(wiki.api_keys().len(), 2, "no new key minted");

        // Someone edits the secret and disables the strategy in Wiki.js's admin area.
        wiki.edit_config(&key, "clientSecret", json!("stale-secret"));
        wiki.edit_config(&key, "issuer", json!("https://old-idp.example.org/"));
        let drifted = h.check(&["wikijs"]).await;
        assert_eq!(kinds(&drifted[0]), ["client-secret-mismatch", "strategy-mismatch"]);
        assert!(!format!("{drifted:?}").contains(p.client_secret.as_deref().unwrap()));
        assert_all_ok(&h.fix(&["wikijs"]).await);
        assert_all_ok(&h.check(&["wikijs"]).await);
        assert_eq!(wiki.strategies().iter().find(|s| s.key == github.key), Some(&github));

        // The strategy deleted by hand: recreated under the same key, so Authentik's callback holds.
        wiki.delete_strategy(&key);
        assert_eq!(kinds(&h.check(&["wikijs"]).await[0]), ["strategy-missing"]);
        assert_all_ok(&h.fix(&["wikijs"]).await);
        assert!(wiki.strategies().iter().any(|s| s.key == key));

        // A wrong admin password is a clear error once the key is gone, and names no secret.
        wiki.revoke_all_keys();
        std::fs::write(h.root().join(".env"), h.env().replace(ssoctl::demo::WIKIJS_ADMIN_PASSWORD, "wrong-password")).unwrap();
        let r = h.fix(&["wikijs"]).await;
        assert_eq!(
            r[0].error.as_deref(),
            Some("Wiki.js refused the local admin login (WIKIJS_ADMIN_EMAIL): Invalid email / username or password.")
        );
    };

    regex_redirect_uris_from_the_manifest => |version| async move {
        let h = Harness::new(version).await;
        let dir = h.root().join("packages/portal");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("manifest.yaml"),
            "sso:\n  type: oidc\n  redirect_uris_regex: ['https://[a-z]+\\.tenants\\.example\\.org/oauth/callback']\n  configured: false\n",
        )
        .unwrap();
        let r = h.fix(&["portal"]).await;
        assert_all_ok(&r);
        let p = h.provider("portal").await.unwrap();
        let text = p.redirect_uris.to_string();
        assert!(text.contains(r"https://[a-z]+\\.tenants\\.example\\.org/oauth/callback"), "{text}");
        if version != "2024.2" {
            assert_eq!(p.redirect_uris[0]["matching_mode"], "regex");
        }
        assert_all_ok(&h.check(&["portal"]).await);
    };
}
