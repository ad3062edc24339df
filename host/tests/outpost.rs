//! The simulator's embedded outpost and authorize endpoint held to Authentik's own: the
//! assertions of `internal/outpost/proxyv2/application/mode_forward_traefik_test.go` and
//! `mode_forward_nginx_test.go` (Authentik's Go tests), ported to requests against the
//! simulator, and the login that follows, on every release (sim/src/outpost.rs cites the code).

mod common;

use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};

const HOST: &str = "adminer.example.org";

struct Outpost {
    h: Harness,
    client: reqwest::Client,
    client_id: String,
}

impl Outpost {
    /// The sample stack's adminer (forward_single on https://adminer.example.org) with
    /// `skip_path_regex: /skip.*` as in the Go tests' application, attached to the embedded outpost.
    async fn new(version: &str) -> Outpost {
        let h = Harness::new(version).await;
        let text = h.manifest("adminer");
        std::fs::write(
            h.manifest_path("adminer"),
            format!("{}\n  skip_path_regex: \"/skip.*\"\n", text.trim_end()),
        )
        .unwrap();
        assert_all_ok(&h.fix(&["adminer"]).await);
        let client_id = h.sim.with_world(|w| {
            w.proxy
                .values()
                .find(|p| p.name == "adminer")
                .unwrap()
                .client_id
                .clone()
        });
        Outpost {
            h,
            client: no_redirects(),
            client_id,
        }
    }

    /// A request to the simulator at `path` with `headers`.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.h.sim.url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// The Traefik endpoint, as Traefik calls it for `uri` on the application's host.
    async fn traefik(&self, uri: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut headers = vec![
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", HOST),
            ("X-Forwarded-Uri", uri),
        ];
        if let Some(c) = cookie {
            headers.push(("Cookie", c));
        }
        self.get("/outpost.goauthentik.io/auth/traefik", &headers).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outpost_answers_forward_auth_as_authentiks_does() {
    for version in ssoctl_sim::schema::known_versions() {
        let o = Outpost::new(version).await;
        let release: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();

        // `TestForwardHandleTraefik_Single_Blank`: no forwarded URL is a configuration error.
        let r = o
            .get("/outpost.goauthentik.io/auth/traefik", &[("X-Forwarded-Host", HOST)])
            .await;
        assert_eq!(r.status(), 500, "{version}");
        assert_eq!(r.text().await.unwrap(), "configuration error\n", "{version}");
        // `TestForwardHandleTraefik_Single_Skip`: a path skip_path_regex allows passes.
        assert_eq!(o.traefik("/skip", None).await.status(), 200, "{version}");

        // `TestForwardHandleTraefik_Single_Headers`: 302 to the authorize endpoint with the
        // client id, the callback on the external host, `response_type=code`.
        let r = o.traefik("/app", None).await;
        assert_eq!(r.status(), 302, "{version}");
        let to = url::Url::parse(&location(&r)).unwrap();
        let q = |k: &str| to.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        assert_eq!(to.path(), "/application/o/authorize/", "{version}");
        assert_eq!(q("client_id").as_deref(), Some(o.client_id.as_str()), "{version}");
        assert_eq!(
            q("redirect_uri").as_deref(),
            Some("https://adminer.example.org/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"),
            "{version}"
        );
        assert_eq!(q("response_type").as_deref(), Some("code"), "{version}");
        let scopes = q("scope").unwrap_or_default();
        for scope in ["openid", "profile", "email", "ak_proxy"] {
            assert!(scopes.split(' ').any(|s| s == scope), "{version}: {scopes}");
        }
        // The session cookie's name: 8 characters of the client id up to 2025.6, of its hex
        // SHA-256 from 2025.8 (`NewApplication`).
        let set = header_of(&r, "set-cookie");
        let suffix = if (release[0], release[1]) >= (2025, 8) {
            hex::encode(Sha256::digest(o.client_id.as_bytes()))[..8].to_string()
        } else {
            o.client_id[..8].to_string()
        };
        assert!(
            set.starts_with(&format!("authentik_proxy_{suffix}=")),
            "{version}: {set}"
        );
        assert!(
            set.contains("Path=/")
                && set.contains("HttpOnly")
                && set.contains("Secure")
                && set.contains("SameSite=Lax"),
            "{version}: {set}"
        );
        let session = set.split(';').next().unwrap().to_string();

        // nginx: `_Single_Blank` 500, `_Single_Skip` 200, `_Single_Headers`/`_Single_URI` 401.
        let nginx = |h: Vec<(&'static str, &'static str)>| {
            let o = &o;
            async move {
                o.get(
                    "/outpost.goauthentik.io/auth/nginx",
                    &[vec![("Host", HOST)], h].concat(),
                )
                .await
            }
        };
        assert_eq!(nginx(vec![]).await.status(), 500, "{version}");
        assert_eq!(
            nginx(vec![("X-Original-URL", "https://adminer.example.org/skip")])
                .await
                .status(),
            200,
            "{version}"
        );
        let r = nginx(vec![("X-Original-URL", "https://adminer.example.org/app")]).await;
        assert_eq!(r.status(), 401, "{version}");
        assert_eq!(r.text().await.unwrap(), "unauthorized request\n", "{version}");
        assert_eq!(nginx(vec![("X-Original-URI", "/app")]).await.status(), 401, "{version}");

        // Hosts: ping answers everywhere; a host the outpost does not serve is the core's 404.
        assert_eq!(
            o.get("/outpost.goauthentik.io/ping", &[("Host", "elsewhere.example.org")])
                .await
                .status(),
            204,
            "{version}"
        );
        let stranger = o
            .get(
                "/outpost.goauthentik.io/auth/traefik",
                &[
                    ("X-Forwarded-Proto", "https"),
                    ("X-Forwarded-Host", "elsewhere.example.org"),
                    ("X-Forwarded-Uri", "/"),
                ],
            )
            .await;
        assert_eq!(stranger.status(), 404, "{version}");

        // The authorize endpoint: without a login, to the authentication flow with `next`.
        let r = o.get(&format!("{}?{}", to.path(), to.query().unwrap()), &[]).await;
        assert_eq!(r.status(), 302, "{version}");
        assert!(
            location(&r).starts_with(&format!("{}/flows/-/default/authentication/?next=", o.h.sim.url())),
            "{version}: {}",
            location(&r)
        );
        // A redirect URI the provider does not allow, an unknown client: 400 pages.
        let mut wrong = to.clone();
        wrong
            .query_pairs_mut()
            .clear()
            .append_pair("client_id", &o.client_id)
            .append_pair(
                "redirect_uri",
                "https://evil.example.net/outpost.goauthentik.io/callback",
            )
            .append_pair("response_type", "code");
        let r = o
            .get(
                &format!("{}?{}", wrong.path(), wrong.query().unwrap()),
                &[("Cookie", "authentik_session=sim:akadmin")],
            )
            .await;
        assert_eq!(r.status(), 400, "{version}");
        assert!(r.text().await.unwrap().contains("Redirect URI Error"), "{version}");
        let r = o
            .get(
                "/application/o/authorize/?client_id=nope&response_type=code",
                &[("Cookie", "authentik_session=sim:akadmin")],
            )
            .await;
        assert_eq!(r.status(), 400, "{version}");

        // A callback whose state this outpost did not issue: 400 from 2024.6 (the state is a
        // signed token), back to the application before (the state lived in the session).
        let r = o
            .traefik(
                "/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code=x&state=forged",
                Some(&session),
            )
            .await;
        if (release[0], release[1]) >= (2024, 6) {
            assert_eq!(r.status(), 400, "{version}");
        } else {
            assert_eq!(r.status(), 302, "{version}");
        }

        // The login: akadmin at the authorize endpoint, the code back through forward auth
        // (the callback signature in the forwarded URL), then the identity headers.
        let r = o
            .get(
                &format!("{}?{}", to.path(), to.query().unwrap()),
                &[("Cookie", "authentik_session=sim:akadmin")],
            )
            .await;
        assert_eq!(r.status(), 302, "{version}");
        let back = url::Url::parse(&location(&r)).unwrap();
        let forwarded = format!("{}?{}", back.path(), back.query().unwrap());
        let r = o.traefik(&forwarded, Some(&session)).await;
        assert_eq!(r.status(), 302, "{version}");
        assert_eq!(location(&r), "https://adminer.example.org/app", "{version}");
        // The code is spent: the same callback again does not log anyone in twice.
        assert_ne!(o.traefik(&forwarded, Some(&session)).await.status(), 200, "{version}");
        let r = o.traefik("/app", Some(&session)).await;
        assert_eq!(r.status(), 200, "{version}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("{version}: no {name}"))
        };
        assert_eq!(header("x-authentik-username"), "akadmin");
        assert_eq!(header("x-authentik-groups"), "authentik Admins");
        assert_eq!(header("x-authentik-meta-app"), "adminer");
        assert_eq!(header("x-authentik-meta-provider"), "adminer");
        assert_eq!(header("x-authentik-meta-outpost"), "authentik Embedded Outpost");
        assert_eq!(header("x-authentik-entitlements"), "");
        assert_eq!(header("x-authentik-uid").len(), 64, "{version}: hashed user id");
        assert!(header("x-authentik-meta-version").starts_with("goauthentik.io/outpost/"));

        // Access is Authentik's decision at the authorize endpoint: a user the application's
        // bindings refuse gets no code.
        let (status, bob) = call(
            &o.h,
            "POST",
            "core/users/",
            Some(json!({"username": "bob", "name": "Bob"})),
        )
        .await;
        assert_eq!(status, 201, "{version}: {bob}");
        let text = o.h.manifest("adminer");
        std::fs::write(
            o.h.manifest_path("adminer"),
            format!("{}\n  access:\n    groups: [\"authentik Admins\"]\n", text.trim_end()),
        )
        .unwrap();
        assert_all_ok(&o.h.fix(&["adminer"]).await);
        let r = o
            .get(
                &format!("{}?{}", to.path(), to.query().unwrap()),
                &[("Cookie", "authentik_session=sim:bob")],
            )
            .await;
        assert_eq!(r.status(), 403, "{version}");

        // Sign-out: the session ends, the user goes to the end-session URL; forward auth then
        // sends them to log in again.
        let r = o
            .get(
                "/outpost.goauthentik.io/sign_out",
                &[("Host", HOST), ("Cookie", &session)],
            )
            .await;
        assert_eq!(r.status(), 302, "{version}");
        assert!(
            location(&r).starts_with(&format!(
                "{}/application/o/adminer/end-session/?id_token_hint=",
                o.h.sim.url()
            )),
            "{version}: {}",
            location(&r)
        );
        assert_eq!(o.traefik("/app", Some(&session)).await.status(), 302, "{version}");
        assert!(o.h.sim.take_violations().is_empty(), "{version}");
    }
}

/// `lookupApp` matches a `forward_domain` cookie domain against the `Host` with its port: a
/// service on another port is no app of the domain. The simulator answers so, and `check`
/// warns about a manifest that would meet it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_domain_hosts_with_a_port_are_not_served() {
    let h = Harness::new("2026.8.3").await;
    let text = h.manifest("adminer");
    let public_url = text.lines().find(|l| l.starts_with("public_url:")).unwrap().to_string();
    let text = text
        .replace(&public_url, "public_url: https://adminer.example.org:8443")
        .replace("mode: forward_single", "mode: forward_domain");
    std::fs::write(
        h.manifest_path("adminer"),
        format!(
            "{}\n  external_host: https://auth.example.org\n  origins: [https://auth.example.org]\n  cookie_domain: \
             example.org\n",
            text.trim_end()
        ),
    )
    .unwrap();
    assert_all_ok(&h.fix(&["adminer"]).await);
    let reports = h.check(&["adminer"]).await;
    let r = report(&reports, "adminer");
    assert!(
        r.warnings.iter().any(|w| w.starts_with("forward_domain on port 8443")),
        "{r:?}"
    );
    let client = no_redirects();
    let ask = |host: &'static str| {
        client
            .get(format!("{}/outpost.goauthentik.io/auth/traefik", h.sim.url()))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", host)
            .header("X-Forwarded-Uri", "/")
            .send()
    };
    assert_eq!(ask("adminer.example.org:8443").await.unwrap().status(), 404);
    assert_eq!(ask("adminer.example.org").await.unwrap().status(), 302);
}
