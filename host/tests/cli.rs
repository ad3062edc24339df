//! The `ssoctl` binary as operators use it: exit codes, output lines, `--json`, preflight
//! messages, audit, and secrets that never reach the terminal.

mod common;

use std::process::Output;

use common::*;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exit_codes_lines_and_json() {
    let h = Harness::new("2026.8.3").await;
    let root = h.root();
    let out = ssoctl(root, &["check", "grafana", "redmine"]).await;
    assert_eq!(out.status.code(), Some(1), "not registered yet = drift");
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("❌ grafana (oidc) — no OAuth2 provider `grafana` in Authentik"),
        "{stdout}"
    );

    let out = ssoctl(root, &["bootstrap"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "the whole sample stack: {stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("[redmine sso] "))
            .eq(["[redmine sso] registered"]),
        "{stdout}"
    );
    assert!(
        stdout.contains("[wikijs sso] created Wiki.js API key `ssoctl` and stored it in WIKIJS_API_KEY"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ wikijs (wikijs) — Authentik app present, API key valid, strategy matches"),
        "{stdout}"
    );

    let out = ssoctl(root, &["check", "grafana", "redmine"]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "✓ grafana (oidc) — Authentik app present, redirects match",
            "⚠ grafana — open to every Authentik user (no sso.access)",
            "✓ redmine (oauth) — Authentik app present, redirects match",
            "⚠ redmine — open to every Authentik user (no sso.access)"
        ]
    );
    assert!(
        lines[4].starts_with("2 green, 0 drifted, 0 failed, 2 warnings in "),
        "summary line: {stdout}"
    );
    assert_eq!(lines.len(), 5);
    assert!(!stdout.contains('\x1b'), "no colour when stdout is not a terminal");

    let out = ssoctl(root, &["--json", "check", "grafana"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["command"], "check");
    assert_eq!(v["mode"], "check");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["totals"]["green"], 1);
    assert_eq!(v["services"][0]["service"], "grafana");
    assert_eq!(v["services"][0]["status"], "ok");

    let out = ssoctl(root, &["fix"]).await;
    assert_eq!(out.status.code(), Some(2), "fix needs services or --all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_output() {
    let h = Harness::new("2026.8.3").await;
    let run = |args: &'static [&'static str]| {
        let root = h.root().to_path_buf();
        async move {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ssoctl"));
            cmd.arg("--root")
                .arg(&root)
                .args(args)
                .env("SSOCTL_CACHE_DIR", root.join(".cache"))
                .env("RUST_LOG", "trace")
                .env_remove("SSOCTL_LOG")
                .env_remove("AUTHENTIK_URL")
                .env_remove("AUTHENTIK_ADMIN_TOKEN");
            let out = tokio::task::spawn_blocking(move || cmd.output().expect("run ssoctl"))
                .await
                .unwrap();
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }
    };
    // Components compiled once without tracing (cranelift's trace output alone takes minutes);
    // every traced run below loads them from the cache.
    let warm = ssoctl(h.root(), &["plugins", "list"]).await;
    assert!(warm.status.success());
    let mut output = run(&["bootstrap"]).await;
    assert!(
        output.contains("TRACE") || output.contains("DEBUG"),
        "trace logging is on"
    );
    // Drift on both sides of a secret, then every command that reads or writes them.
    let p = h.provider("n8n").await.unwrap();
    h.session()
        .await
        .authentik()
        .patch::<serde_json::Value>(
            &format!("providers/oauth2/{}/", p.pk),
            &serde_json::json!({"client_secret": "rotated-secret-0123456789abcdef"}),
        )
        .await
        .unwrap();
    h.fakes.frappe.edit(
        "authentik",
        "client_secret",
        serde_json::json!("frappe-side-secret-0123456789"),
    );
    for args in [
        &["--json", "check"][..],
        &["--json", "plan"][..],
        &["fix", "--all"][..],
        &["--json", "check"][..],
    ] {
        output.push_str(&run(args).await);
    }
    let env = h.env();
    let mut secrets: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, v)| ["SECRET", "TOKEN", "PASSWORD", "API_KEY"].iter().any(|s| k.contains(s)) && !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    secrets.push(("rotated".into(), "rotated-secret-0123456789abcdef".into()));
    secrets.push(("frappe side".into(), "frappe-side-secret-0123456789".into()));
    assert!(secrets.len() >= 12, "{secrets:?}");
    for (key, value) in &secrets {
        assert!(value.len() >= 12, "{key}");
        assert!(!output.contains(value.as_str()), "{key} leaked into the output or logs");
    }
    assert!(!output.contains(TOKEN), "admin token leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_failures_are_one_clear_message_and_write_nothing() {
    let h = Harness::new("2026.8.3").await;
    let env_path = h.root().join(".env");
    let original = h.env();

    // Wrong token.
    std::fs::write(&env_path, original.replace(TOKEN, "not-the-token-at-all")).unwrap();
    let before = std::fs::read_to_string(&env_path).unwrap();
    let out = ssoctl(h.root(), &["bootstrap"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "Authentik at {} rejected AUTHENTIK_ADMIN_TOKEN (Token invalid/expired)",
            h.sim.url()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-token-at-all"), "the token is never printed");
    assert_eq!(std::fs::read_to_string(&env_path).unwrap(), before);
    assert!(h.manifest("grafana").contains("configured: false"));

    // Unreachable: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(&env_path, original.replace(&h.sim.url(), &format!("http://{closed}"))).unwrap();
    let out = ssoctl(h.root(), &["check"]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(&format!("Authentik at http://{closed} is unreachable")),
        "{stderr}"
    );
    assert!(
        stderr.contains("AUTHENTIK_BOOTSTRAP_SKIP=true: an external Authentik must answer at once"),
        "{stderr}"
    );

    // Missing key.
    std::fs::write(&env_path, "ASD_TUNNEL_HOST=example.org\n").unwrap();
    let out = ssoctl(h.root(), &["check"]).await;
    let (_, stderr) = text(&out);
    assert!(stderr.contains("AUTHENTIK_URL is not set: add it to"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_manifest_names_file_and_line() {
    let h = Harness::new("2026.8.3").await;
    std::fs::write(
        h.manifest_path("redmine"),
        "sso:\n  type: oauth\n  redirect_path: [/oauth2callback\n",
    )
    .unwrap();
    let out = ssoctl(h.root(), &["check"]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    // Its own line says why; the other services are still checked.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("❌ redmine (?) — ") && l.contains("packages/redmine/manifest.yaml: line ")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("❌ grafana (oidc) — ")),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_shows_imports_and_no_wasi() {
    let dir = tempfile::tempdir().unwrap();
    let out = ssoctl(dir.path(), &["--json", "plugins", "audit"]).await;
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["command"], "plugins audit");
    assert_eq!(v["exit_code"], 0);
    let items = v["components"].as_array().unwrap();
    let types: Vec<&str> = items.iter().map(|i| i["sso_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["oauth", "oidc", "saml", "proxy", "wikijs", "frappe"]);
    for item in items {
        assert_eq!(item["wit_package"], "sso:flow@0.2.0", "{item}");
        assert_eq!(
            item["grants"]["base"],
            serde_json::json!([
                "sso:flow/types@0.2.0",
                "sso:flow/authentik@0.2.0",
                "sso:flow/service-config@0.2.0",
                "sso:flow/log@0.2.0"
            ])
        );
        // Only the flows that talk to the service's own API import service-http, and theirs is
        // the built-in grant; nothing else is optional.
        let talks_to_service = matches!(item["sso_type"].as_str(), Some("saml" | "wikijs" | "frappe"));
        let expected: &[&str] = if talks_to_service { &["service-http"] } else { &[] };
        assert_eq!(item["optional_imports"], serde_json::json!(expected), "{item}");
        assert_eq!(item["grants"]["optional"], serde_json::json!(expected), "{item}");
        let source = if talks_to_service { "built-in" } else { "default" };
        assert_eq!(item["grants"]["source"]["kind"], source, "{item}");
        assert!(item["wasi_imports"].as_array().unwrap().is_empty(), "{item}");
        assert_eq!(item["refused"], serde_json::Value::Null, "{item}");
        for import in item["imports"].as_array().unwrap() {
            assert!(import["name"].as_str().unwrap().starts_with("sso:flow/"), "{import}");
        }
    }
    let oauth = &items[0];
    let authentik = oauth["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "sso:flow/authentik@0.2.0")
        .unwrap();
    assert_eq!(
        authentik["functions"],
        serde_json::json!([
            "server-info",
            "ensure-oauth2-provider",
            "ensure-scope-mapping",
            "ensure-application",
            "ensure-access"
        ])
    );

    // The reach, in the operator's terms: what each import lets the flow do, and what it never can.
    let may = |item: &serde_json::Value| -> Vec<String> {
        item["reach"]["may"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    let oauth_may = may(oauth);
    assert!(
        oauth_may
            .iter()
            .any(|l| l.contains("expressions (Python Authentik runs) only verbatim from the manifest")),
        "{oauth_may:?}"
    );
    assert!(
        !oauth_may.iter().any(|l| l.contains("send HTTP")),
        "oauth reaches no network: {oauth_may:?}"
    );
    let proxy = items.iter().find(|i| i["sso_type"] == "proxy").unwrap();
    assert!(
        may(proxy)
            .iter()
            .any(|l| l.contains("Traefik file routes only the service's own hosts")),
        "{proxy}"
    );
    assert!(!may(proxy).iter().any(|l| l.contains("scope mappings")), "{proxy}");
    let wikijs = items.iter().find(|i| i["sso_type"] == "wikijs").unwrap();
    assert!(
        may(wikijs)
            .iter()
            .any(|l| l.starts_with("send HTTP to its service's own API origin")),
        "{wikijs}"
    );
    for item in items {
        let never = item["reach"]["never"].as_array().unwrap();
        assert!(
            never.iter().any(|l| l.as_str().unwrap().contains("on Authentik's own")),
            "{item}"
        );
    }

    let out = ssoctl(dir.path(), &["plugins", "audit"]).await;
    let (stdout, _) = text(&out);
    assert!(stdout.contains("oidc (stock) sha256 "), "{stdout}");
    assert!(stdout.contains("  WIT package: sso:flow@0.2.0"), "{stdout}");
    assert!(stdout.contains("  WASI imports: none"), "{stdout}");
    assert!(
        stdout.contains("  may, for the service it runs for:\n    - "),
        "{stdout}"
    );
    assert!(
        stdout.contains("  never:\n    - read Authentik's admin token"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssoctl_sim_serves_a_chosen_version() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ssoctl"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--version",
            "2024.2",
            "--token",
            "standalone-token",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert!(
        first.starts_with("Authentik simulator 2024.2.0 listening on http://127.0.0.1:"),
        "{first}"
    );
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();
    let ready = http.get(format!("{url}/-/health/ready/")).send().await.unwrap();
    assert_eq!(ready.status(), 204);
    let version: serde_json::Value = http
        .get(format!("{url}/api/v3/admin/version/"))
        .bearer_auth("standalone-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["version_current"], "2024.2.0");
    let counters: serde_json::Value = http
        .get(format!("{url}/-/sim/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["GET /admin/version/"], 1);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_man_page_come_from_the_cli_definition() {
    let dir = tempfile::tempdir().unwrap();
    let out = ssoctl(dir.path(), &["completions", "bash"]).await;
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("_ssoctl()") && script.contains("bootstrap") && script.contains("--profile"),
        "{script}"
    );
    let out = ssoctl(dir.path(), &["man"]).await;
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH ssoctl") && page.contains("bootstrap"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_lists_managed_and_unclaimed_applications() {
    let h = Harness::new("2026.8.3").await;
    assert_eq!(ssoctl(h.root(), &["add", "grafana"]).await.status.code(), Some(0));
    assert_eq!(ssoctl(h.root(), &["add", "zammad"]).await.status.code(), Some(0));
    h.session()
        .await
        .authentik()
        .post::<serde_json::Value>(
            "core/applications/",
            &serde_json::json!({"name": "Legacy wiki", "slug": "legacy-wiki"}),
        )
        .await
        .unwrap();
    let out = ssoctl(h.root(), &["apps"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("✓ grafana (oidc) — oauth2 grafana · launch https://grafana.example.org/ · https://grafana.example.org/login/generic_oauth · cert expires 2027-11-22"),
        "{stdout}"
    );
    assert!(stdout.contains("✓ zammad (saml) — saml zammad"), "{stdout}");
    assert!(
        stdout.contains("❌ n8n (oidc) — application `n8n` missing in Authentik"),
        "{stdout}"
    );
    assert!(
        stdout.contains("⚠ Legacy wiki — application `legacy-wiki` is not claimed by any manifest"),
        "{stdout}"
    );
    let out = ssoctl(h.root(), &["--json", "apps"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let legacy = v["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == "legacy-wiki")
        .unwrap();
    assert!(legacy["service"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_about_what_will_break_soon() {
    let h = Harness::new("2026.8.3").await;
    assert_eq!(ssoctl(h.root(), &["add", "grafana"]).await.status.code(), Some(0));
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 86_400 + 3600);
    h.sim.with_world(|w| {
        for k in &mut w.keypairs {
            k.cert_expiry = humantime::format_rfc3339_seconds(soon).to_string();
        }
    });
    let out = ssoctl(h.root(), &["check", "grafana"]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "a warning is not drift: {stdout}");
    assert!(
        stdout
            .contains("⚠ grafana — the certificate of keypair `authentik Self-signed Certificate` expires in 10 days"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 green, 0 drifted, 0 failed, 2 warnings in "),
        "{stdout}"
    );
    // A service reached over plain http.
    let manifest = h
        .manifest("grafana")
        .replace("public_url: https://", "public_url: http://");
    std::fs::write(h.manifest_path("grafana"), manifest).unwrap();
    let out = ssoctl(h.root(), &["--json", "check", "grafana"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = v["services"][0]["warnings"].to_string();
    assert!(
        warnings.contains("redirect URI http://grafana.example.org/login/generic_oauth uses http://"),
        "{v}"
    );
    // The plain-http redirect URI, the certificate, and the application open to everyone.
    assert_eq!(v["totals"]["warnings"], 3);
    // A manifest that opts out of signed tokens.
    let manifest = h
        .manifest("grafana")
        .replacen("  configured:", "  sign_tokens: false\n  configured:", 1);
    std::fs::write(h.manifest_path("grafana"), manifest).unwrap();
    let out = ssoctl(h.root(), &["check", "grafana"]).await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("⚠ grafana — provider `grafana` has no signing key: ID tokens fall back to HS256"),
        "{stdout}"
    );
}

/// The justfile's recipes call commands that exist, with the arguments they take: each recipe's
/// command line is run (without `just`, which CI machines lack) against a sample stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn justfile_recipes_run() {
    let h = Harness::new("2026.8.3").await;
    let justfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../justfile")).unwrap();
    // recipe name → its command line.
    let mut recipes = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in justfile.lines() {
        if line.starts_with(|c: char| c.is_ascii_lowercase()) && line.trim_end().ends_with(':') && !line.contains(":=")
        {
            current = line
                .split_whitespace()
                .next()
                .map(|n| n.trim_end_matches(':').to_string());
        } else if let (Some(name), Some(cmd)) = (&current, line.strip_prefix("    ")) {
            recipes.insert(name.clone(), cmd.to_string());
        }
    }
    let expected = [
        "sso-check",
        "sso-add",
        "sso-fix",
        "sso-fix-all",
        "bootstrap-local",
        "authentik-apps",
        "authentik-access",
    ];
    assert_eq!(
        recipes.keys().map(String::as_str).collect::<Vec<_>>().len(),
        expected.len(),
        "{recipes:?}"
    );
    // In an order that makes sense on a fresh stack, with the arguments an operator would pass.
    let runs = [
        ("sso-add", "grafana", 0),
        ("sso-check", "grafana", 0),
        ("sso-fix", "grafana", 0),
        ("bootstrap-local", "monitoring", 0),
        ("sso-fix-all", "", 0),
        ("sso-check", "", 0),
        ("authentik-apps", "", 0),
        ("authentik-access", "--verify", 0),
    ];
    for (recipe, arg, code) in runs {
        let line = recipes.get(recipe).unwrap_or_else(|| panic!("no recipe {recipe}"));
        let line = line
            .replace("{{svc}}", arg)
            .replace("{{profile}}", arg)
            .replace("{{args}}", arg);
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        assert!(line.starts_with("{{ssoctl}} "), "{recipe}: {line}");
        let out = ssoctl(h.root(), &args).await;
        assert_eq!(
            out.status.code(),
            Some(code),
            "{recipe} {arg}: {}",
            text(&out).0 + &text(&out).1
        );
    }
}

/// How a fake service behaves for `check --probe`.
#[derive(Clone)]
struct Behaviour {
    authorize: String,
    client_id: String,
    redirect_uri: String,
}

/// A fake service on loopback: `/login/generic_oauth` redirects to `authorize` with the configured
/// `client_id` and `redirect_uri` (a correct or a misconfigured Grafana). Proxy services are
/// probed through a real Traefik (`tests/traefik.rs`).
async fn fake_service(behaviour: std::sync::Arc<std::sync::Mutex<Behaviour>>) -> ssoctl_sim::FakeServer {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let b = behaviour.lock().unwrap().clone();
        async move {
            match uri.path() {
                "/login/generic_oauth" => {
                    let q: String = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("client_id", &b.client_id)
                        .append_pair("redirect_uri", &b.redirect_uri)
                        .append_pair("response_type", "code")
                        .finish();
                    (StatusCode::FOUND, [(header::LOCATION, format!("{}?{q}", b.authorize))]).into_response()
                }
                _ => (StatusCode::NOT_FOUND, "").into_response(),
            }
        }
    });
    ssoctl_sim::FakeServer::start(app).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probe_catches_what_only_a_login_would_show() {
    let h = Harness::new("2026.8.3").await;
    let behaviour = std::sync::Arc::new(std::sync::Mutex::new(Behaviour {
        authorize: format!("{}/application/o/authorize/", h.sim.url()),
        client_id: String::new(),
        redirect_uri: "https://grafana.example.org/login/generic_oauth".into(),
    }));
    let server = fake_service(behaviour.clone()).await;
    let fake = server.url();
    // grafana's sample manifest names its login path already.
    let manifest = h.manifest("grafana").replacen(
        "  configured: false",
        &format!("  configured: false\n  probe_url: {fake}"),
        1,
    );
    std::fs::write(h.manifest_path("grafana"), manifest).unwrap();
    assert_eq!(ssoctl(h.root(), &["add", "grafana"]).await.status.code(), Some(0));
    let p = h.provider("grafana").await.unwrap();
    behaviour.lock().unwrap().client_id = p.client_id.clone();
    let probe = || ssoctl(h.root(), &["check", "--probe", "grafana"]);
    let out = probe().await;
    assert_eq!(out.status.code(), Some(0), "a correct service passes: {}", text(&out).0);

    // Grafana kept an old client id in its database.
    behaviour.lock().unwrap().client_id = "stale-client-id".into();
    let (stdout, _) = text(&probe().await);
    assert!(
        stdout.contains("logs in with client_id `stale-client-id`, not the provider's"),
        "{stdout}"
    );
    assert_eq!(
        ssoctl(h.root(), &["check", "grafana"]).await.status.code(),
        Some(0),
        "invisible without --probe"
    );
    behaviour.lock().unwrap().client_id = p.client_id.clone();

    // Grafana's root URL is wrong, so it asks Authentik to come back elsewhere.
    behaviour.lock().unwrap().redirect_uri = "http://localhost:3000/login/generic_oauth".into();
    let (stdout, _) = text(&probe().await);
    assert!(
        stdout.contains("asks Authentik to return to `http://localhost:3000/login/generic_oauth`"),
        "{stdout}"
    );
    behaviour.lock().unwrap().redirect_uri = "https://grafana.example.org/login/generic_oauth".into();

    // The provider's issuer changed to the global one: tokens no longer match what Grafana expects.
    h.sim
        .with_world(|w| w.oauth2.values_mut().for_each(|p| p.issuer_mode = "global".into()));
    let (stdout, _) = text(&probe().await);
    assert!(
        stdout.contains(&format!("probe: the discovery document says issuer `{}/`", h.sim.url())),
        "{stdout}"
    );
}

/// `export --blueprint`, loaded back: exactly the objects `plan` would create, with the manifest's
/// values, `!Find` lookups for what Authentik ships and `!KeyOf` links that resolve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_blueprint_matches_what_plan_would_create() {
    use serde_yaml::Value;
    use std::collections::BTreeSet;
    let h = Harness::new("2026.8.3").await;
    let out = ssoctl(h.root(), &["export", "--blueprint"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_yaml::from_str(&stdout).expect("a YAML blueprint");
    assert_eq!(doc["version"], Value::from(1));
    let entries = doc["entries"].as_sequence().unwrap();

    let plan = h.plan(&implemented()).await;
    let mut planned = BTreeSet::new();
    for change in plan.iter().flat_map(|r| r.changes.iter()) {
        let name = change.split('`').nth(1).unwrap_or("").to_string();
        if change.starts_with("create application") {
            planned.insert(("application".to_string(), name));
        } else if change.starts_with("create scope mapping") {
            planned.insert(("mapping".to_string(), name));
        } else if change.starts_with("create ") && change.contains(" provider `") {
            planned.insert(("provider".to_string(), name));
        }
    }
    let exported: BTreeSet<(String, String)> = entries
        .iter()
        .map(|e| {
            let model = e["model"].as_str().unwrap();
            let ids = &e["identifiers"];
            match model {
                "authentik_core.application" => ("application".to_string(), ids["slug"].as_str().unwrap().to_string()),
                "authentik_providers_oauth2.scopemapping" => {
                    ("mapping".to_string(), ids["name"].as_str().unwrap().to_string())
                }
                m if m.ends_with("provider") => ("provider".to_string(), ids["name"].as_str().unwrap().to_string()),
                other => panic!("unexpected model {other}"),
            }
        })
        .collect();
    assert_eq!(exported.len(), entries.len(), "no object twice");
    assert_eq!(exported, planned, "the blueprint holds what plan would create");

    let find = |model: &str, key: &str, value: &str| {
        entries
            .iter()
            .find(|e| e["model"].as_str() == Some(model) && e["identifiers"][key].as_str() == Some(value))
            .unwrap_or_else(|| panic!("{model} {value}"))
    };
    let grafana = find("authentik_providers_oauth2.oauth2provider", "name", "grafana");
    assert_eq!(
        grafana["attrs"]["redirect_uris"][0]["url"],
        Value::from("https://grafana.example.org/login/generic_oauth")
    );
    assert_eq!(
        grafana["attrs"]["redirect_uris"][0]["matching_mode"],
        Value::from("strict")
    );
    let Value::Tagged(flow) = &grafana["attrs"]["authorization_flow"] else {
        panic!("flows are looked up: {:?}", grafana["attrs"]["authorization_flow"])
    };
    assert_eq!(flow.tag.to_string(), "!Find");
    assert_eq!(
        flow.value[1][1],
        Value::from("default-provider-authorization-implicit-consent")
    );
    let zammad = find("authentik_providers_saml.samlprovider", "name", "zammad");
    assert_eq!(
        zammad["attrs"]["acs_url"],
        Value::from("https://zammad.example.org/auth/saml/callback")
    );
    // Every !KeyOf names an entry of the blueprint.
    let ids: BTreeSet<&str> = entries.iter().filter_map(|e| e["id"].as_str()).collect();
    let app = find("authentik_core.application", "slug", "grafana");
    let Value::Tagged(link) = &app["attrs"]["provider"] else {
        panic!("provider is a !KeyOf")
    };
    assert_eq!(link.tag.to_string(), "!KeyOf");
    assert!(ids.contains(link.value.as_str().unwrap()));
    let mattermost = find("authentik_providers_oauth2.oauth2provider", "name", "mattermost");
    let mut links = 0;
    for m in mattermost["attrs"]["property_mappings"].as_sequence().unwrap() {
        if let Value::Tagged(t) = m
            && t.tag == "!KeyOf"
        {
            assert!(ids.contains(t.value.as_str().unwrap()), "{t:?}");
            links += 1;
        }
    }
    assert_eq!(links, 1, "Mattermost's own scope mapping is linked, not looked up");
    assert_eq!(h.sim.writes(), 0, "exporting writes nothing");
}

/// An integrator's component dropped into the plugin folder serves its `sso.type` with the
/// already-built binary; a drop-in never replaces a stock flow unless the operator says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_in_components_serve_their_type_without_rebuilding_the_host() {
    let h = Harness::new("2026.8.3").await;
    h.add_misbehaving_service("keycloakish", "hello");
    let component = std::fs::read(ssoctl::TEST_MISBEHAVE_WASM).unwrap();

    // Without the drop-in the binary does not know the type, and nothing is written.
    let out = ssoctl(h.root(), &["add", "keycloakish"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stdout.contains("❌ keycloakish (misbehave) — "), "{stdout}");
    assert!(stdout.contains("unknown sso.type `misbehave`"), "{stdout}");
    assert!(h.env_value("KEYCLOAKISH_HELLO").is_none());

    // Dropped into the default folder, <root>/scripts/sso.
    let folder = h.root().join("scripts").join("sso");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("setup-misbehave.wasm"), &component).unwrap();
    std::fs::write(folder.join("setup-oidc.py"), "# the script it replaces: ignored\n").unwrap();
    // It imports service-http (and idp-http), which its type is not granted: refused at load
    // time, naming the import and how to grant it.
    let out = ssoctl(h.root(), &["add", "keycloakish"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("imports sso:flow/service-http@0.2.0, which is not granted to sso.type `misbehave`")
            && stdout.contains("grant it in sso-grants.yaml, e.g. `misbehave: {service-http: true}`"),
        "{stdout}"
    );
    assert!(h.env_value("KEYCLOAKISH_HELLO").is_none());
    std::fs::write(
        h.root().join("sso-grants.yaml"),
        "misbehave:\n  service-http: true\n  idp-http: {origin: 'http://127.0.0.1:9'}\n",
    )
    .unwrap();
    let out = ssoctl(h.root(), &["add", "keycloakish"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("keycloakish"), "{stdout}");
    assert_eq!(h.env_value("KEYCLOAKISH_HELLO").as_deref(), Some("from a drop-in"));
    let out = ssoctl(h.root(), &["--json", "plugins", "list"]).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sso_type"] == "misbehave")
        .expect("the drop-in is listed")
        .clone();
    assert_eq!(listed["source"]["kind"], "file");
    assert!(
        listed["source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("scripts/sso/setup-misbehave.wasm")
    );

    // Pinned: the lock file holds the reviewed hash; a changed or an unlisted component is refused.
    let out = ssoctl(h.root(), &["plugins", "pin"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sha = listed["sha256"].as_str().unwrap();
    assert!(stdout.contains(&format!("setup-misbehave.wasm  {sha}")), "{stdout}");
    let lock = std::fs::read_to_string(folder.join("plugins.lock")).unwrap();
    assert!(lock.contains(&format!("setup-misbehave.wasm: {sha}")), "{lock}");
    assert_eq!(ssoctl(h.root(), &["check", "keycloakish"]).await.status.code(), Some(0));
    let mut changed = component.clone();
    changed.extend_from_slice(b"tampered");
    std::fs::write(folder.join("setup-misbehave.wasm"), &changed).unwrap();
    let out = ssoctl(h.root(), &["check", "keycloakish", "grafana"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let changed_sha = hex_sha256(&changed);
    assert!(
        stdout.contains(&format!("has sha256 {changed_sha}, but")) && stdout.contains(&format!("pins {sha}")),
        "both hashes named: {stdout}"
    );
    // Only the services of the refused type fail: a stock service of the same command is checked.
    assert!(
        stdout.contains("grafana (oidc)") && !stdout.contains("❌ grafana (oidc) — flow"),
        "{stdout}"
    );
    std::fs::write(folder.join("setup-misbehave.wasm"), &component).unwrap();
    std::fs::write(folder.join("setup-another.wasm"), &component).unwrap();
    // Listed as refused (exit 1), while the reviewed one is still listed.
    let out = ssoctl(h.root(), &["plugins", "list"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("setup-another.wasm (sha256 "), "{}", text(&out).1);
    assert!(text(&out).1.contains("is not pinned in"));
    assert!(text(&out).0.contains("misbehave "), "{}", text(&out).0);
    std::fs::remove_file(folder.join("setup-another.wasm")).unwrap();
    std::fs::remove_file(folder.join("plugins.lock")).unwrap();

    // A drop-in for a stock type is refused until the operator names it with --override.
    std::fs::write(folder.join("setup-oauth.wasm"), &component).unwrap();
    let out = ssoctl(h.root(), &["plugins", "list"]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("setup-oauth.wasm would replace the stock `oauth` flow; pass --override oauth"),
        "{stderr}"
    );
    // Listed in its place, and refused to run: the oauth type is not granted its service-http.
    let out = ssoctl(h.root(), &["--json", "plugins", "list", "--override", "oauth"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let oauth = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sso_type"] == "oauth")
        .unwrap()
        .clone();
    assert_eq!(oauth["source"]["kind"], "file");
    assert!(
        oauth["refused"]
            .as_str()
            .unwrap()
            .contains("not granted to sso.type `oauth`"),
        "{oauth}"
    );
    std::fs::remove_file(folder.join("setup-oauth.wasm")).unwrap();

    // An override without its drop-in, and a named folder that does not exist, are errors.
    let out = ssoctl(h.root(), &["plugins", "list", "--override", "saml"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--override saml: there is no setup-saml.wasm in"));
    let out = ssoctl(h.root(), &["plugins", "list", "--plugins", "/nonexistent/plugins"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--plugins /nonexistent/plugins: no such folder"));

    // Another folder, named with --plugins.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::rename(
        folder.join("setup-misbehave.wasm"),
        elsewhere.path().join("setup-misbehave.wasm"),
    )
    .unwrap();
    let dir = elsewhere.path().to_str().unwrap();
    let out = ssoctl(h.root(), &["check", "keycloakish", "--plugins", dir]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("hello from a drop-in component"), "{stdout}");
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `ssoctl demo | head -1`: the reader goes away after one line; ssoctl ends as any Unix tool in
/// a pipeline does (SIGPIPE), not with a panic and exit 101.
#[test]
fn a_closed_pipe_ends_ssoctl_quietly() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ssoctl"))
        .arg("demo")
        .env("SSOCTL_CACHE_DIR", shared_cache_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("Authentik simulator"), "{first}");
    drop(reader);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?} {stderr}", out.status);
}

/// `AUTHENTIK_*` in the shell wins over `.env` (a CI secret, a recipe's variable); `-v` says so,
/// without the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_takes_precedence_over_env_and_v_says_so() {
    let h = Harness::new("2026.8.3").await;
    let env = std::fs::read_to_string(h.root().join(".env")).unwrap();
    std::fs::write(
        h.root().join(".env"),
        env.replace(
            &format!("AUTHENTIK_URL={}", h.sim.url()),
            "AUTHENTIK_URL=http://127.0.0.1:9",
        ),
    )
    .unwrap();
    let mut cmd = ssoctl_command(h.root(), &["-v", "check", "grafana"]);
    cmd.env("AUTHENTIK_URL", h.sim.url());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "reached the simulator: grafana not registered yet; {stderr}"
    );
    assert!(
        stderr.contains("AUTHENTIK_URL is taken from the environment, which takes precedence over its value in"),
        "{stderr}"
    );
}

/// Each command's `--help` lists the flags it reads, and only those.
#[test]
fn each_command_help_lists_only_its_own_flags() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ssoctl"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let runs = [
        "--concurrency",
        "--deadline",
        "--wait",
        "--plugins",
        "--override",
        "--grants",
        "--no-cache",
    ];
    for args in [
        &["sim"][..],
        &["demo"],
        &["plugins", "componentize"],
        &["completions"],
        &["man"],
    ] {
        let text = help(args);
        for flag in runs.iter().chain(&["--lock-timeout", "--profile"]) {
            assert!(
                !text.contains(flag),
                "`ssoctl {} --help` lists {flag}:\n{text}",
                args.join(" ")
            );
        }
        assert!(text.contains("--root") && text.contains("--json"), "{text}");
    }
    for args in [&["check"][..], &["plan"], &["fix"], &["bootstrap"], &["add"]] {
        let text = help(args);
        for flag in runs {
            assert!(text.contains(flag), "`ssoctl {} --help` lacks {flag}", args.join(" "));
        }
        let writes = args[0] != "check" && args[0] != "plan";
        assert_eq!(text.contains("--lock-timeout"), writes, "{args:?}:\n{text}");
    }
    let text = help(&["check"]);
    assert!(
        text.contains("--profile <PROFILE>") && text.contains("A profile of services.yaml"),
        "{text}"
    );
    let text = help(&["plugins", "list"]);
    assert!(text.contains("--override") && !text.contains("--concurrency"), "{text}");
}

/// A drop-in under the wrong name, or a core module instead of a component, is named with what
/// to do, not left as an unknown type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misnamed_drop_ins_and_core_modules_are_named_with_what_to_do() {
    let h = Harness::new("2026.8.3").await;
    let dir = h.root().join("scripts/sso");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("setup_hello.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
    std::fs::write(dir.join("setup-core.wasm"), wat::parse_str("(module)").unwrap()).unwrap();
    let out = ssoctl(h.root(), &["plugins", "list"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("setup_hello.wasm: not loaded: rename it to setup-hello.wasm"),
        "{stderr}"
    );
    let text = format!("{stdout}{stderr}");
    assert!(
        text.contains("setup-core.wasm is a core WebAssembly module, not a component")
            && text.contains("ssoctl plugins componentize"),
        "{text}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused drop-in makes `plugins list` exit 1"
    );
}

/// `plugins wit` prints the released WIT a flow is built against, for plain wit-bindgen users;
/// an unknown release is named with the ones this binary has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_wit_prints_the_released_wit() {
    let dir = tempfile::tempdir().unwrap();
    let wit = |path: &str| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../wit")
                .join(path),
        )
        .unwrap()
    };
    for (args, file) in [
        (&["plugins", "wit"][..], "sso-flow.wit"),
        (&["plugins", "wit", "--release", "0.2.0"], "sso-flow.wit"),
        (&["plugins", "wit", "--release", "0.1.0"], "0.1.0/sso-flow.wit"),
    ] {
        let out = ssoctl(dir.path(), args).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert_eq!(stdout, wit(file), "{args:?}");
    }
    assert!(wit("sso-flow.wit").contains("package sso:flow@0.2.0;"));
    let out = ssoctl(dir.path(), &["plugins", "wit", "--release", "9.9.9"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .1
            .contains("no sso:flow WIT release `9.9.9`; this ssoctl has 0.1.0, 0.2.0"),
        "{}",
        text(&out).1
    );
}

/// A drop-in runs only for the type it says it serves (`describe().sso-type` against its file
/// name), and `check --probe` says which types it cannot try instead of passing them in silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_in_serves_only_the_type_it_describes_and_the_probe_names_what_it_cannot_try() {
    let h = Harness::new("2026.8.3").await;
    let folder = h.root().join("scripts").join("sso");
    std::fs::create_dir_all(&folder).unwrap();
    let component = std::fs::read(ssoctl::TEST_MISBEHAVE_WASM).unwrap();
    // The hostile test component describes itself as `misbehave`; here it is named for `other`.
    std::fs::write(folder.join("setup-other.wasm"), &component).unwrap();
    std::fs::write(
        h.root().join("sso-grants.yaml"),
        "other:\n  service-http: true\n  idp-http: {origin: 'http://127.0.0.1:9'}\n\
         misbehave:\n  service-http: true\n  idp-http: {origin: 'http://127.0.0.1:9'}\n",
    )
    .unwrap();
    h.add_hostile("renamed", "hello", &[("type", "other".into())]);
    let out = ssoctl(h.root(), &["add", "renamed"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("setup-other.wasm describes itself as sso.type `misbehave` (describe()), but serves `other` by its file name: rename it to setup-misbehave.wasm"),
        "{stdout}"
    );
    assert!(h.env_value("RENAMED_HELLO").is_none(), "nothing of it ran");

    // Named for its type, it runs; the probe has nothing to try for it and says so.
    std::fs::rename(folder.join("setup-other.wasm"), folder.join("setup-misbehave.wasm")).unwrap();
    h.add_hostile("renamed", "hello", &[]);
    let out = ssoctl(h.root(), &["add", "renamed"]).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out).0, text(&out).1);
    let out = ssoctl(h.root(), &["check", "--probe", "renamed"]).await;
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("⚠ renamed — probe: sso.type `misbehave` has no probe"),
        "{stdout}{stderr}"
    );
}

/// The development loop: a drop-in changed since it was pinned is still described by `plugins
/// list` and `plugins audit` (with both hashes) while it is refused to run, other types keep
/// working, and the same component in `--dev-plugins` runs without a pin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_drop_in_is_described_not_hidden_and_a_dev_folder_needs_no_pin() {
    let h = Harness::new("2026.8.3").await;
    let folder = h.root().join("scripts").join("sso");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        h.root().join("sso-grants.yaml"),
        "misbehave:\n  service-http: true\n  idp-http: {origin: 'http://127.0.0.1:9'}\n",
    )
    .unwrap();
    let component = std::fs::read(ssoctl::TEST_MISBEHAVE_WASM).unwrap();
    // Pinned as a different, valid component (the released-0.1.0 fixture), then "rebuilt".
    let fixture = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sso-flow-0.1.0/setup-oidc.wasm"),
    )
    .unwrap();
    std::fs::write(folder.join("setup-misbehave.wasm"), &fixture).unwrap();
    assert_eq!(ssoctl(h.root(), &["plugins", "pin"]).await.status.code(), Some(0));
    std::fs::write(folder.join("setup-misbehave.wasm"), &component).unwrap();
    let new_sha = hex_sha256(&component);

    let out = ssoctl(h.root(), &["plugins", "list"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("misbehave") && stdout.contains(&new_sha),
        "listed with its new hash: {stdout}"
    );
    assert!(stderr.contains(&format!("has sha256 {new_sha}, but")), "{stderr}");
    let out = ssoctl(h.root(), &["plugins", "audit"]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("import sso:flow/service-http@0.2.0")
            && stdout.contains("REFUSED: ")
            && stdout.contains(&new_sha),
        "described while refused: {stdout}"
    );

    h.add_hostile("dev", "hello", &[]);
    let out = ssoctl(h.root(), &["check", "dev", "grafana"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("❌ dev (misbehave)") && stdout.contains("pins"),
        "{stdout}{stderr}"
    );
    // The stock type ran its check (grafana is not registered yet, so it drifts).
    assert!(
        stdout.contains("❌ grafana (oidc) — no OAuth2 provider `grafana`"),
        "other types run: {stdout}"
    );

    // The same component in the development folder: no pin needed, and it wins over the folder's.
    let dev = tempfile::tempdir().unwrap();
    std::fs::write(dev.path().join("setup-misbehave.wasm"), &component).unwrap();
    let dev_dir = dev.path().to_str().unwrap();
    let out = ssoctl(h.root(), &["add", "dev", "--dev-plugins", dev_dir]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(h.env_value("DEV_HELLO").as_deref(), Some("from a drop-in"));
    assert!(stderr.contains("are not pinned"), "{stderr}");
    let out = ssoctl(h.root(), &["--json", "plugins", "list", "--dev-plugins", dev_dir]).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sso_type"] == "misbehave")
        .unwrap()
        .clone();
    assert_eq!(listed["source"]["kind"], "dev", "{listed}");
    assert!(listed["refused"].is_null(), "{listed}");
}

/// `ssoctl sim --fakes` serves the service fakes too and prints `.env` lines with which the
/// sample stack goes green against the standalone simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_simulator_with_fakes_serves_the_whole_sample_stack() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ssoctl"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--token",
            "standalone-token",
            "--fakes",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let done = line.starts_with("ZAMMAD_API_TOKEN=");
            lines.push(line.trim_end().to_string());
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    let env: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains('=') && !l.starts_with(' '))
        .collect();
    assert!(
        env.iter().any(|l| l.starts_with("AUTHENTIK_URL=http://127.0.0.1:"))
            && env.iter().any(|l| *l == "AUTHENTIK_ADMIN_TOKEN=standalone-token")
            && env.iter().any(|l| l.starts_with("ERPNEXT_API_URL=http://127.0.0.1:")),
        "{lines:#?}"
    );
    let dir = tempfile::tempdir().unwrap();
    ssoctl::demo::write_sample_stack(dir.path(), "http://127.0.0.1:9", "unused", None).unwrap();
    let mut text_env = std::fs::read_to_string(dir.path().join(".env")).unwrap();
    for line in &env {
        let key = line.split('=').next().unwrap();
        text_env = text_env
            .lines()
            .filter(|l| !l.starts_with(&format!("{key}=")))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        text_env.push_str(line);
        text_env.push('\n');
    }
    std::fs::write(dir.path().join(".env"), text_env).unwrap();
    let out = ssoctl(dir.path(), &["bootstrap"]).await;
    let (stdout, stderr) = text(&out);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for service in ["erpnext", "wikijs", "zammad", "grafana"] {
        assert!(stdout.contains(&format!("✓ {service} (")), "{service}: {stdout}");
    }
}

/// Waiting for an Authentik that is not up yet says what it waits for and for how long, then
/// gives up with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_authentik_says_what_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of the loopback.
    ssoctl::demo::write_sample_stack(dir.path(), "http://127.0.0.1:9", "unused-token", None).unwrap();
    let out = ssoctl(dir.path(), &["check", "grafana", "--wait", "1"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("waiting for Authentik at http://127.0.0.1:9 to be ready")
            && stderr.contains("at most 1 s (--wait)"),
        "{stderr}"
    );
    assert!(!stderr.contains("unused-token"), "{stderr}");
}
