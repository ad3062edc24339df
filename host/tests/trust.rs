//! The trust boundary (docs/threat-model.md): whatever data a flow sends, it changes its own
//! service and nothing else. Each test drives the hostile test component with payloads of one
//! class (several encodings each, not only the one an issue named) and checks the refusal names
//! what was refused, that the other services of the run still succeed, and that nothing of the
//! refused call reached Authentik or the disk. A control case per class shows the same call
//! with what the manifest declares still works, so the refusals are not a blanket "no".

mod common;

use common::*;
use serde_yaml::Value;
use ssoctl::runner::{ServiceReport, Status};

/// Runs the hostile service `evil` with `behaviour` and `extra` settings next to two honest
/// services; returns evil's report after asserting the honest ones succeeded.
async fn attempt(h: &Harness, behaviour: &str, extra: &[(&str, Value)]) -> ServiceReport {
    h.add_hostile("evil", behaviour, extra);
    let reports = h.fix(&["evil", "grafana", "redmine"]).await;
    for name in ["grafana", "redmine"] {
        assert_eq!(report(&reports, name).status, Status::Ok, "{behaviour}: {name}");
    }
    report(&reports, "evil").clone()
}

/// `attempt` that must be refused with an error starting with `expected`.
async fn refused(h: &Harness, behaviour: &str, extra: &[(&str, Value)], expected: &str) {
    let r = attempt(h, behaviour, extra).await;
    assert_eq!(r.status, Status::Error, "{behaviour} {extra:?}: {r:?}");
    let error = r.error.clone().unwrap_or_default();
    assert!(
        error.starts_with(expected),
        "{behaviour} {extra:?}:\n{error}\nwanted: {expected}"
    );
    assert!(h.manifest("evil").contains("configured: false"), "{behaviour}");
}

fn payload(text: &str) -> (&'static str, Value) {
    ("payload", Value::from(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_expression_reaches_authentik_unless_the_manifest_wrote_it() {
    let h = Harness::new("2026.8.3").await;
    let declared = "return {\"id\": request.user.pk}";
    let mapping = |scope: &str, expression: &str| {
        let mut m = serde_yaml::Mapping::new();
        m.insert("scope".into(), scope.into());
        m.insert("expression".into(), expression.into());
        ("scope_mappings", Value::Sequence(vec![Value::Mapping(m)]))
    };
    let expected = "denied: the expression for scope `read_user` is not one of sso.scope_mappings";
    for expression in [
        "import os; return os.environ",
        "from authentik.core.models import Token\nreturn {\"t\": [t.key for t in Token.objects.all()]}",
        "ak_logger.info(requests.get('https://evil.example.net').text)",
        "",
    ] {
        refused(&h, "expression", &[payload(expression)], expected).await;
    }
    // Declared, but not this: a variant of the declared text, and the declared text for
    // another scope.
    refused(
        &h,
        "expression",
        &[payload(&format!("{declared} ")), mapping("read_user", declared)],
        expected,
    )
    .await;
    refused(
        &h,
        "expression",
        &[
            payload(declared),
            mapping("read_user", declared),
            ("scope", "email".into()),
        ],
        "denied: the expression for scope `email` is not one of sso.scope_mappings",
    )
    .await;
    let session = h.session().await;
    let mappings: Vec<ssoctl::authentik::models::ScopeMapping> = session
        .authentik()
        .list("propertymappings/provider/scope/", &[])
        .await
        .unwrap();
    assert!(
        !mappings.iter().any(|m| m.name.starts_with("ssoctl evil")),
        "no hostile expression was stored"
    );
    // Control: the manifest's own expression, verbatim, is what a flow may send.
    let r = attempt(&h, "expression", &[payload(declared), mapping("read_user", declared)]).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_url_is_on_an_origin_the_operator_declared() {
    let h = Harness::new("2026.8.3").await;
    let idp = h.sim.url();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "redirect",
            "https://evil.example.net/cb".into(),
            "denied: redirect URI `https://evil.example.net/cb` is not on an origin declared for `evil`",
        ),
        (
            "redirect",
            "https://evil.example.org.evil.net/cb".into(),
            "denied: redirect URI",
        ),
        (
            "redirect",
            "https://evil.example.org:8443/cb".into(),
            "denied: redirect URI",
        ),
        ("redirect", "http://evil.example.org/cb".into(), "denied: redirect URI"),
        (
            "redirect",
            "https://evil.example.org@evil.example.net/cb".into(),
            "denied: redirect URI: ",
        ),
        (
            "redirect",
            "javascript:alert(document.cookie)//https://evil.example.org/cb".into(),
            "denied: redirect URI: ",
        ),
        (
            "redirect",
            "data:text/html,<script>x</script>".into(),
            "denied: redirect URI: ",
        ),
        // The URL parser drops line breaks and tabs and reads `\` as `/`; Authentik stores the text.
        (
            "redirect",
            "https://evil.example.org/cb\nhttps://evil.example.net/cb".into(),
            "denied: redirect URI: ",
        ),
        (
            "redirect",
            "https://evil.example.org/cb\thttps://evil.example.net/cb".into(),
            "denied: redirect URI: ",
        ),
        (
            "redirect",
            "https://evil.example.org\\@evil.example.net/cb".into(),
            "denied: redirect URI: ",
        ),
        (
            "redirect",
            " https://evil.example.org/cb".into(),
            "denied: redirect URI: ",
        ),
        (
            "redirect",
            "https://evil.example.org/cb#x".into(),
            "denied: redirect URI `https://evil.example.org/cb#x` has a fragment",
        ),
        ("redirect", format!("{idp}/application/o/evil/"), "denied: redirect URI"),
        (
            "redirect-regex",
            ".*".into(),
            "denied: regex redirect URI `.*` is not one of sso.redirect_uris_regex",
        ),
        (
            "redirect-regex",
            "https://evil\\.example\\.org/.*".into(),
            "denied: regex redirect URI",
        ),
    ];
    for (behaviour, url, expected) in &cases {
        refused(&h, behaviour, &[payload(url)], expected).await;
    }
    assert!(
        h.provider("evil").await.is_none(),
        "no provider was created for a refused redirect URI"
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("launch", format!("{idp}/if/admin/"), "denied: launch URL"),
        (
            "launch",
            "javascript:fetch('//evil.example.net')".into(),
            "denied: launch URL: ",
        ),
        (
            "launch",
            "https://grafana.example.org/".into(),
            "denied: launch URL `https://grafana.example.org/` is not on an origin declared",
        ),
        (
            "acs",
            "https://evil.example.net/saml/acs".into(),
            "denied: ACS URL `https://evil.example.net/saml/acs` is not on an origin",
        ),
        ("acs", format!("{idp}/saml/acs"), "denied: ACS URL"),
        (
            "proxy-external",
            "https://grafana.example.org".into(),
            "denied: proxy external host",
        ),
        ("proxy-external", idp.clone(), "denied: proxy external host"),
    ];
    for (behaviour, url, expected) in &cases {
        refused(&h, behaviour, &[payload(url)], expected).await;
    }
    // Controls: the service's own origin in another spelling, an origin the manifest adds, and
    // the manifest's own regex.
    let r = attempt(&h, "redirect", &[payload("HTTPS://EVIL.example.org:443/other")]).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let origins = (
        "origins",
        Value::Sequence(vec!["https://evil-alt.example.org:8443".into()]),
    );
    let r = attempt(
        &h,
        "launch",
        &[payload("https://evil-alt.example.org:8443/home"), origins],
    )
    .await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let regex = "https://evil\\.example\\.org/cb/.*";
    let r = attempt(
        &h,
        "redirect-regex",
        &[
            payload(regex),
            ("redirect_uris_regex", Value::Sequence(vec![regex.into()])),
        ],
    )
    .await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_shape_and_proxy_upstream_are_the_manifests() {
    let h = Harness::new("2026.8.3").await;
    refused(
        &h,
        "public-client",
        &[],
        "denied: a public client (no secret) needs `sso.client_type: public`",
    )
    .await;
    for grants in [
        "implicit",
        "authorization_code,implicit",
        "password",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        refused(&h, "grant", &[payload(grants)], "denied: grant type `").await;
    }
    let proxy = |mode: &str| ("mode", Value::from(mode));
    refused(
        &h,
        "proxy-mode",
        &[payload("proxy")],
        "denied: proxy mode `proxy` is not the manifest's",
    )
    .await;
    refused(
        &h,
        "proxy-internal",
        &[
            payload("http://169.254.169.254"),
            proxy("proxy"),
            ("internal_host", "http://evil-app:8080".into()),
        ],
        "denied: internal host `http://169.254.169.254` is not the manifest's sso.internal_host",
    )
    .await;
    refused(
        &h,
        "proxy-cookie",
        &[
            payload("example.org"),
            proxy("forward_domain"),
            ("cookie_domain", "evil.example.org".into()),
        ],
        "denied: cookie domain `example.org` is not the manifest's sso.cookie_domain",
    )
    .await;
    for skip in [".*", "^/", "/admin"] {
        refused(
            &h,
            "proxy-skip",
            &[payload(skip)],
            "denied: skip_path_regex is not the manifest's",
        )
        .await;
    }
    // Controls: declared in the manifest, the same calls go through.
    let r = attempt(&h, "public-client", &[("client_type", "public".into())]).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let r = attempt(
        &h,
        "grant",
        &[
            payload("implicit"),
            ("grant_types", Value::Sequence(vec!["implicit".into()])),
        ],
    )
    .await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_writes_only_its_declared_files_and_routes_only_its_own_host() {
    let h = Harness::new("2026.8.3").await;
    let path = |p: &str| ("path", Value::from(p));
    for (file, expected) in [
        ("manifest.yaml", "denied: `manifest.yaml` is not a file evil may write"),
        (
            "docker-compose.yml",
            "denied: `docker-compose.yml` is not a file evil may write",
        ),
        (
            "sub/../manifest.yaml",
            "denied: `sub/../manifest.yaml` is outside packages/evil/",
        ),
        ("MANIFEST.YAML", "denied: `MANIFEST.YAML` is not a file evil may write"),
    ] {
        refused(&h, "write", &[payload("sso: {type: misbehave}"), path(file)], expected).await;
    }
    // A declared file that is a link to the manifest is still the manifest.
    std::os::unix::fs::symlink("manifest.yaml", h.root().join("packages/evil/app.yml")).unwrap();
    refused(
        &h,
        "write",
        &[
            payload("pwned"),
            path("app.yml"),
            ("files", Value::Sequence(vec!["app.yml".into()])),
        ],
        "denied: packages/evil/app.yml resolves to the service's manifest",
    )
    .await;
    let idp_host = url::Url::parse(&h.sim.url()).unwrap().host_str().unwrap().to_string();
    let router = |name: &str, rule: &str| {
        format!(
            "http:\n  routers:\n    {name}:\n      rule: {}\n      service: evil-app\n",
            serde_json::json!(rule)
        )
    };
    for (text, expected) in [
        (router("evil", &format!("Host(`{idp_host}`)")), "denied: `traefik/sso.yml`: router `evil`: rule"),
        (router("evil", "Host(`evil.example.org`) || PathPrefix(`/`)"), "denied: `traefik/sso.yml`: router `evil`: rule"),
        (router("evil", "HostRegexp(`{any:.+}`)"), "denied: `traefik/sso.yml`: router `evil`: rule"),
        (
            "http:\n  middlewares:\n    evil-h:\n      headers:\n        customRequestHeaders:\n          X-Leak: '{{ env \"AUTHENTIK_SECRET_KEY\" }}'\n".to_string(),
            "denied: `traefik/sso.yml`: Go template",
        ),
        (router("evil", "PathPrefix(`/outpost.goauthentik.io/`)"), "denied: `traefik/sso.yml`: router `evil`"),
        (router("grafana", "Host(`evil.example.org`)"), "denied: `traefik/sso.yml`: `http.routers.grafana`"),
        ("tcp:\n  routers:\n    evil:\n      rule: HostSNI(`*`)\n".to_string(), "denied: `traefik/sso.yml`: top-level `tcp`"),
    ] {
        refused(&h, "write", &[payload(&text), path("traefik/sso.yml")], expected).await;
    }
    // Traefik watches the folder: a declared file beside the Traefik file is held to the same rules.
    refused(
        &h,
        "write",
        &[
            payload(&router("evil", &format!("Host(`{idp_host}`)"))),
            path("traefik/extra.yml"),
            ("files", Value::Sequence(vec!["traefik/extra.yml".into()])),
        ],
        "denied: `traefik/extra.yml`: router `evil`: rule",
    )
    .await;
    assert!(
        h.manifest("evil").contains("misbehave: write"),
        "the manifest is untouched"
    );
    assert!(!h.root().join("packages/evil/traefik/sso.yml").exists());
    assert!(!h.root().join("packages/evil/docker-compose.yml").exists());
    // Control: a router for its own host lands.
    let own = router("evil", "Host(`evil.example.org`) && PathPrefix(`/`)");
    let r = attempt(&h, "write", &[payload(&own), path("traefik/sso.yml")]).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(h.root().join("packages/evil/traefik/sso.yml")).unwrap(),
        own
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_http_path_grants_hold_against_dot_segments_in_any_encoding() {
    let h = Harness::new("2026.8.3").await;
    for path in [
        "/admin/realms/pma/../master/users",
        "/admin/realms/pma/%2e%2e/master/users",
        "/admin/realms/pma/%2E%2e/master/users",
        "/admin/realms/pma/.%2e/master/users",
        "/admin/realms/pma/./../master/users",
        "/admin/realms/pma/..;/master/users",
        "/admin/realms/pma%2F..%2Fmaster/users",
        "/admin/realms/pma/%252e%252e/master/users",
        "/admin/realms/pma/%c0%ae%c0%ae/master/users",
        "/admin/realms/pma/%5C../master/users",
        "http://127.0.0.1:9/admin/realms/pma/%2e%2e/master/users",
    ] {
        refused(&h, "idp-path", &[payload(path)], "denied: `").await;
    }
    refused(
        &h,
        "idp-path",
        &[payload("/admin/realms/pmax/users")],
        "denied: `/admin/realms/pmax/users` is outside the paths granted",
    )
    .await;
    // Control: a granted path passes the grant and fails only because nothing listens there.
    std::fs::write(
        h.root().join(".env"),
        h.env() + &format!("{IDP_CREDENTIAL}=not-a-real-token\n"),
    )
    .unwrap();
    let r = attempt(&h, "idp-path", &[payload("/admin/realms/pma/clients")]).await;
    let error = r.error.unwrap_or_default();
    assert!(
        error.starts_with("identity provider at http://127.0.0.1:9 did not answer"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_cannot_expand_ssoctls_settings_or_another_services_keys() {
    let h = Harness::new("2026.8.3").await;
    // A broken manifest fails its own service: the stack loads, with that service broken.
    let broken = |name: &str| {
        let stack = ssoctl::stack::Stack::load(h.root()).unwrap();
        assert!(!stack.services.contains_key(name), "{name} must not run");
        stack
            .broken
            .get(name)
            .map(|b| b.error.clone())
            .unwrap_or_else(|| panic!("{name} is not broken"))
    };
    let write = |name: &str, text: &str| {
        let dir = h.root().join("packages").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("manifest.yaml"), text).unwrap();
    };
    // The admin token (or any AUTHENTIK_* setting) never becomes a service's setting.
    for setting in [
        "http:\n    base_url: ${AUTHENTIK_API_URL}",
        "note: ${AUTHENTIK_ADMIN_TOKEN}",
    ] {
        write(
            "evil",
            &format!("sso:\n  type: oidc\n  redirect_path: /cb\n  {setting}\n"),
        );
        let err = broken("evil");
        assert!(
            err.contains("packages/evil/manifest.yaml") && err.contains("AUTHENTIK_* settings are ssoctl's own"),
            "{err}"
        );
    }
    // Another service's key: its flow may set it, so expanding it hands that flow this one's URLs.
    write(
        "evil",
        "sso:\n  type: oidc\n  redirect_path: /cb\n  http:\n    base_url: ${ZAMMAD_API_URL}\n",
    );
    let err = broken("evil");
    assert!(
        err.contains("`${ZAMMAD_API_URL}` expands a .env key of service `zammad`"),
        "{err}"
    );
    assert!(err.contains("packages/zammad/manifest.yaml"), "names both files: {err}");
    // A name whose prefix covers a neighbour's key: `zammad-api` would own ZAMMAD_API_TOKEN.
    std::fs::remove_dir_all(h.root().join("packages/evil")).unwrap();
    write("zammad-api", "sso:\n  type: oidc\n  redirect_path: /cb\n");
    let err = broken("zammad-api");
    assert!(
        err.contains(
            "its .env prefix `ZAMMAD_API_` covers `ZAMMAD_API_TOKEN`, which service `zammad` names as its own"
        ),
        "{err}"
    );
    assert!(
        ssoctl::stack::Stack::load(h.root())
            .unwrap()
            .services
            .contains_key("zammad"),
        "zammad keeps its keys and runs"
    );
    assert!(
        err.contains("packages/zammad/manifest.yaml") && err.contains("packages/zammad-api/manifest.yaml"),
        "{err}"
    );
    std::fs::remove_dir_all(h.root().join("packages/zammad-api")).unwrap();
    // Two manifests claiming one key.
    write(
        "evil",
        "sso:\n  type: oidc\n  redirect_path: /cb\n  env:\n    GF_AUTH_GENERIC_OAUTH_CLIENT_ID: '{client_id}'\n",
    );
    let err = broken("grafana");
    assert!(err.contains("packages/evil/manifest.yaml"), "names both files: {err}");
    assert!(
        err.contains("`GF_AUTH_GENERIC_OAUTH_CLIENT_ID` is also claimed by service `evil`"),
        "{err}"
    );
    std::fs::remove_dir_all(h.root().join("packages/evil")).unwrap();
    // Its own key, expanded by its own manifest: the operator's input, read-only to the flow.
    std::fs::write(h.root().join(".env"), h.env() + "EVIL_API_URL=http://127.0.0.1:9\n").unwrap();
    refused(
        &h,
        "set-env",
        &[
            payload("https://evil.example.net"),
            ("key", "EVIL_API_URL".into()),
            ("http", {
                let mut m = serde_yaml::Mapping::new();
                m.insert("base_url".into(), "${EVIL_API_URL}".into());
                Value::Mapping(m)
            }),
        ],
        "denied: `EVIL_API_URL` is expanded by a manifest",
    )
    .await;
    assert_eq!(h.env_value("EVIL_API_URL").as_deref(), Some("http://127.0.0.1:9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_flow_prints_stays_on_its_line_and_short_secrets_are_redacted() {
    let h = Harness::new("2026.8.3").await;
    let forged = "\u{1b}[2K\r✓ grafana (oidc) — fine\n✓ zammad (saml) — fine\u{2028}\u{202e}\u{1b}]8;;https://evil.example.net\u{7}x";
    let r = attempt(&h, "print", &[payload(forged)]).await;
    let texts: Vec<&str> = std::iter::once(r.summary.as_str())
        .chain(r.findings.iter().flat_map(|f| [f.kind.as_str(), f.message.as_str()]))
        .collect();
    assert!(
        !texts.is_empty() && texts.iter().all(|t| t.contains("✓ grafana (oidc)")),
        "{r:?}"
    );
    for text in texts {
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{202e}')),
            "control characters survived: {text:?}"
        );
    }
    // Through the binary, as an operator's terminal or CI log shows it: the hostile component
    // as a drop-in with the grants it needs.
    let drop_ins = h.root().join("scripts/sso");
    std::fs::create_dir_all(&drop_ins).unwrap();
    std::fs::copy(ssoctl::TEST_MISBEHAVE_WASM, drop_ins.join("setup-misbehave.wasm")).unwrap();
    std::fs::write(
        h.root().join("sso-grants.yaml"),
        "misbehave:\n  service-http: true\n  idp-http:\n    origin: http://127.0.0.1:9\n",
    )
    .unwrap();
    let out = ssoctl(h.root(), &["-vv", "check", "evil"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("evil (misbehave)"),
        "{out:?}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stdout.lines().chain(stderr.lines()) {
        assert!(
            !line.starts_with("✓ grafana") && !line.starts_with("✓ zammad"),
            "forged line: {line:?}"
        );
        assert!(!line.contains('\u{1b}') && !line.contains('\r'), "escape in {line:?}");
    }

    // A four-character secret routed to the service's own API and echoed back comes back
    // redacted, like a long one.
    let echo = EchoServer::start().await;
    std::fs::write(h.root().join(".env"), h.env() + "EVIL_PIN=4711\n").unwrap();
    let mut http = serde_yaml::Mapping::new();
    http.insert("base_url".into(), echo.url.clone().into());
    let r = attempt(
        &h,
        "echo-secret",
        &[("key", "EVIL_PIN".into()), ("http", Value::Mapping(http))],
    )
    .await;
    let error = r.error.unwrap_or_default();
    assert!(
        error.contains("read back:") && error.contains("{client_secret}"),
        "{error}"
    );
    assert!(!error.contains("4711"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_traps_after_writing_reports_what_it_changed() {
    let h = Harness::new("2026.8.3").await;
    let r = attempt(&h, "trap-after-writes", &[]).await;
    assert_eq!(r.status, Status::Error);
    assert!(
        r.error
            .as_deref()
            .unwrap_or_default()
            .starts_with("flow `misbehave` for `evil` failed:"),
        "{r:?}"
    );
    assert_eq!(
        r.changes,
        vec!["created OAuth2 provider `evil`", "created application `evil`"],
        "{r:?}"
    );
    let lines = ssoctl::report::lines(&r, ssoctl::capabilities::Mode::Apply);
    assert!(
        lines.iter().any(|l| l.contains("created application `evil`")),
        "{lines:?}"
    );
    assert!(h.provider("evil").await.is_some(), "the objects stay in Authentik");
    // A check after it (here with the stock flow of the same shape) sees what stayed: the
    // provider and application exist, the .env keys the failed run never wrote are drift.
    std::fs::write(
        h.manifest_path("evil"),
        "sso:\n  type: oidc\n  redirect_path: /cb\n  configured: false\n",
    )
    .unwrap();
    let reports = h.check(&["evil"]).await;
    let evil = report(&reports, "evil");
    assert_eq!(evil.status, Status::Drift, "{evil:?}");
    assert!(!kinds(evil).contains(&"provider-missing"), "{evil:?}");
    assert!(!kinds(evil).contains(&"application-missing"), "{evil:?}");
    assert!(kinds(evil).contains(&"env-mismatch"), "{evil:?}");
}

/// Answers every request with its own body (a service API that echoes what it was sent).
struct EchoServer {
    url: String,
}

impl EchoServer {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(end) = text.find("\r\n\r\n") else { continue };
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() < end + 4 + length {
                            continue;
                        }
                        let body = &buf[end + 4..end + 4 + length];
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(body).await;
                        return;
                    }
                });
            }
        });
        Self { url }
    }
}

/// Who may log in is the manifest's `sso.access`, exactly: a flow cannot bind another group, drop
/// one, or bind anything when the manifest declares no access (sso:flow 0.2.0 `ensure-access`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_manifest_decides_who_may_log_in() {
    let h = Harness::new("2026.8.3").await;
    for group in ["staff", "everyone-else"] {
        h.sim.with_world(|w| {
            let num_pk = w.groups.iter().map(|g| g.num_pk).max().unwrap_or(0) + 1;
            w.groups.push(ssoctl_sim::access::Group {
                pk: ssoctl_sim::world::uuid(),
                num_pk,
                name: group.to_string(),
                users: Vec::new(),
                parents: Vec::new(),
                is_superuser: false,
            });
        });
    }
    let access = |groups: &[&str]| {
        let mut m = serde_yaml::Mapping::new();
        m.insert(
            "groups".into(),
            Value::Sequence(groups.iter().map(|g| Value::from(*g)).collect()),
        );
        ("access", Value::Mapping(m))
    };
    let not_declared = "denied: sso.access is not declared in";
    let not_access = "denied: the groups and users asked for are not sso.access in";
    refused(&h, "access", &[payload("staff")], not_declared).await;
    for asked in ["everyone-else", "staff,everyone-else", ""] {
        refused(&h, "access", &[payload(asked), access(&["staff"])], not_access).await;
    }
    let bindings = h.sim.with_world(|w| w.bindings.len());
    assert_eq!(bindings, 0, "nothing was bound");
    // Exactly the manifest's: allowed.
    let r = attempt(&h, "access", &[payload("staff"), access(&["staff"])]).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
}
