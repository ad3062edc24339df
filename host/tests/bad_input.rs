//! The bad-input corpus: each case breaks one thing an operator can get wrong (a manifest, `.env`,
//! `services.yaml`, the Authentik endpoint) and must give one clear message naming the file (and,
//! for YAML, the line) and exit 2. What concerns every service (`.env`, `services.yaml`, grants,
//! Authentik) stops the command and writes nothing: `.env` and every manifest byte-identical, no
//! write request to Authentik. A broken manifest concerns only its own service: that service's
//! line is ❌ with the cause and nothing of it is written, and the other services still run.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

/// Every file a run could write, with its bytes.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // The stack lock's file is ssoctl's own, created by the first command that writes.
            if path.file_name().is_some_and(|n| n == ".cache" || n == ".ssoctl.lock") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

fn edit(root: &Path, file: &str, f: impl FnOnce(String) -> String) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, f(text)).unwrap();
}

fn set_manifest(root: &Path, service: &str, text: &str) {
    edit(root, &format!("packages/{service}/manifest.yaml"), |_| text.to_string());
}

fn replace_in(root: &Path, file: &str, from: &str, to: &str) {
    edit(root, file, |t| {
        assert!(t.contains(from), "{file} has no `{from}`");
        t.replacen(from, to, 1)
    });
}

/// An HTTP server on loopback answering every request with an HTML page (a proxy's error page,
/// a login portal): what `AUTHENTIK_URL` pointing at the wrong thing looks like.
async fn html_server() -> ssoctl_sim::FakeServer {
    let app = axum::Router::new().fallback(|| async {
        (
            [(axum::http::header::CONTENT_TYPE, "text/html")],
            "<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>",
        )
    });
    ssoctl_sim::FakeServer::start(app).await.unwrap()
}

/// A server that answers every request with a JSON 404: another service's API behind the URL.
async fn not_found_server() -> ssoctl_sim::FakeServer {
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            "{\"detail\": \"Not found.\"}",
        )
    });
    ssoctl_sim::FakeServer::start(app).await.unwrap()
}

type Breaker = Box<dyn Fn(&Path, &Harness)>;

fn cases(html_url: String, not_found_url: String) -> Vec<(&'static str, Breaker, Vec<&'static str>)> {
    const M: &str = "packages/grafana/manifest.yaml";
    let m = M;
    vec![
        (
            "malformed YAML",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n  type: oidc\n  redirect_path: [unclosed\n")),
            vec![m, "line 4"],
        ),
        (
            "tab indentation",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n\ttype: oidc\n")),
            vec![m, "line 2"],
        ),
        (
            "sso is a string",
            Box::new(|r, _| set_manifest(r, "grafana", "sso: yes\n")),
            vec![m, "sso"],
        ),
        (
            "sso.type is a list",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n  type: [oidc]\n  redirect_path: /cb\n")),
            vec![m, "line 2", "type"],
        ),
        (
            "unknown sso.type",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n  type: keycloak\n  redirect_path: /cb\n")),
            vec![m, "unknown sso.type `keycloak`"],
        ),
        (
            "missing sso.type",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n  redirect_path: /cb\n")),
            vec![m, "sso.type"],
        ),
        (
            "empty sso.type",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n  type: ''\n  redirect_path: /cb\n")),
            vec![m, "sso.type"],
        ),
        (
            "missing redirect_path",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n  type: oidc\n")),
            vec![m, "redirect_path"],
        ),
        (
            "relative redirect_path",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n  type: oidc\n  redirect_path: login/cb\n")),
            vec![m, "must start with `/`"],
        ),
        (
            "redirect_path is a map",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n  type: oidc\n  redirect_path: {a: b}\n")),
            vec![m, "redirect_path"],
        ),
        (
            "configured is not a boolean",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "sso:\n  type: oidc\n  redirect_path: /cb\n  configured: maybe\n",
                )
            }),
            vec![m, "configured"],
        ),
        (
            "public_url not a URL",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "public_url: grafana dot example\nsso:\n  type: oidc\n  redirect_path: /cb\n",
                )
            }),
            vec![m, "public_url"],
        ),
        (
            "public_url not http(s)",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "public_url: ftp://grafana.example.org\nsso:\n  type: oidc\n  redirect_path: /cb\n",
                )
            }),
            vec![m, "public_url"],
        ),
        (
            "public_url with a space",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "public_url: https://gra fana.example.org\nsso:\n  type: oidc\n  redirect_path: /cb\n",
                )
            }),
            vec![m, "public_url"],
        ),
        (
            "undefined ${VAR}",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "public_url: https://${NO_SUCH_VAR}\nsso:\n  type: oidc\n  redirect_path: /cb\n",
                )
            }),
            vec![m, "NO_SUCH_VAR"],
        ),
        (
            "invalid slug",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "sso:\n  type: oidc\n  slug: Graf ana\n  redirect_path: /cb\n",
                )
            }),
            vec![m, "slug"],
        ),
        (
            "slug too long",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    &format!("sso:\n  type: oidc\n  slug: {}\n  redirect_path: /cb\n", "g".repeat(51)),
                )
            }),
            vec![m, "slug"],
        ),
        (
            "duplicate slug",
            Box::new(|r, _| set_manifest(r, "n8n", "sso:\n  type: oidc\n  slug: grafana\n  redirect_path: /cb\n")),
            vec!["slug `grafana`", "grafana", "n8n"],
        ),
        (
            "empty manifest",
            Box::new(|r, _| set_manifest(r, "grafana", "")),
            vec![m, "empty"],
        ),
        (
            "manifest is a list",
            Box::new(|r, _| set_manifest(r, "grafana", "- sso\n- type\n")),
            vec![m],
        ),
        (
            "manifest not UTF-8",
            Box::new(|r, _| std::fs::write(r.join(M), b"sso:\n  type: \xff\xfe\n").unwrap()),
            vec![m],
        ),
        (
            "redirect_paths is a map",
            Box::new(|r, _| set_manifest(r, "grafana", "sso:\n  type: oidc\n  redirect_paths:\n    a: /cb\n")),
            vec![m, "line 3", "redirect_paths"],
        ),
        (
            ".env malformed line",
            Box::new(|r, _| edit(r, ".env", |t| format!("{t}THIS IS NOT AN ASSIGNMENT\n"))),
            vec![".env", "line"],
        ),
        (
            ".env without AUTHENTIK_URL",
            Box::new(|r, _| {
                edit(r, ".env", |t| {
                    t.lines()
                        .filter(|l| !l.starts_with("AUTHENTIK_URL="))
                        .collect::<Vec<_>>()
                        .join("\n")
                        + "\n"
                })
            }),
            vec!["AUTHENTIK_URL"],
        ),
        (
            "empty AUTHENTIK_ADMIN_TOKEN",
            Box::new(|r, _| {
                edit(r, ".env", |t| {
                    t.lines()
                        .map(|l| {
                            if l.starts_with("AUTHENTIK_ADMIN_TOKEN=") {
                                "AUTHENTIK_ADMIN_TOKEN=".to_string()
                            } else {
                                l.to_string()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                        + "\n"
                })
            }),
            vec!["AUTHENTIK_ADMIN_TOKEN"],
        ),
        (
            "AUTHENTIK_URL not http(s)",
            Box::new(|r, h| {
                replace_in(
                    r,
                    ".env",
                    &format!("AUTHENTIK_URL={}", h.sim.url()),
                    "AUTHENTIK_URL=auth.example.org",
                )
            }),
            vec!["AUTHENTIK_URL", "http"],
        ),
        (
            "no .env at all",
            Box::new(|r, _| std::fs::remove_file(r.join(".env")).unwrap()),
            vec![".env"],
        ),
        (
            "unreachable Authentik",
            Box::new(|r, h| replace_in(r, ".env", &h.sim.url(), "http://127.0.0.1:9")),
            vec!["unreachable"],
        ),
        (
            "wrong token",
            Box::new(|r, _| replace_in(r, ".env", TOKEN, "not-the-right-token")),
            vec!["rejected AUTHENTIK_ADMIN_TOKEN"],
        ),
        (
            "Authentik answering HTML",
            Box::new(move |r, h| replace_in(r, ".env", &h.sim.url(), &html_url)),
            vec!["HTML"],
        ),
        (
            "Authentik URL answering 404 JSON",
            Box::new(move |r, h| replace_in(r, ".env", &h.sim.url(), &not_found_url)),
            vec![
                "answers, but not as Authentik's API",
                "flows/instances/ answered 404",
                "AUTHENTIK_URL",
            ],
        ),
        (
            "services.yaml malformed",
            Box::new(|r, _| edit(r, "services.yaml", |t| format!("{t}  broken: [\n"))),
            vec!["services.yaml", "line"],
        ),
        (
            "malformed grants file",
            Box::new(|r, _| std::fs::write(r.join("sso-grants.yaml"), "keycloak:\n  idp-http: [unclosed\n").unwrap()),
            vec!["sso-grants.yaml", "line 2"],
        ),
        (
            "grants file names an unknown capability",
            Box::new(|r, _| std::fs::write(r.join("sso-grants.yaml"), "keycloak:\n  idp-htp: {}\n").unwrap()),
            vec!["sso-grants.yaml", "line 2", "idp-htp"],
        ),
        (
            "grants file: an idp-http origin with a path",
            Box::new(|r, _| {
                std::fs::write(
                    r.join("sso-grants.yaml"),
                    "keycloak:\n  idp-http: {origin: 'https://kc.example.org/admin'}\n",
                )
                .unwrap()
            }),
            vec![
                "sso-grants.yaml",
                "keycloak.idp-http: origin `https://kc.example.org/admin` must be",
            ],
        ),
        // Operators' files as they are (issue 16): each of these once wrote first and failed after.
        (
            "redirect_path with a line break",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "sso:\n  type: oidc\n  redirect_path: \"/login/generic_oauth\\nhttps://evil.example/cb\"\n",
                )
            }),
            vec![m, "line 3", "redirect_path"],
        ),
        (
            "public_url with user info",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "name: Grafana\npublic_url: https://grafana.example.org@other.example\nsso:\n  type: oidc\n  redirect_path: /cb\n",
                )
            }),
            vec![m, "line 2", "user info"],
        ),
        (
            "public_url with a query",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "public_url: https://grafana.example.org/?x=1\nsso:\n  type: oidc\n  redirect_path: /cb\n",
                )
            }),
            vec![m, "line 1", "query or fragment"],
        ),
        (
            "public_url with a fragment",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "public_url: https://grafana.example.org#top\nsso:\n  type: oidc\n  redirect_path: /cb\n",
                )
            }),
            vec![m, "line 1", "query or fragment"],
        ),
        (
            "public_url on an empty host variable",
            Box::new(|r, _| {
                edit(r, ".env", |t| format!("{t}GRAFANA_HOST=\n"));
                set_manifest(
                    r,
                    "grafana",
                    "public_url: https://grafana.${GRAFANA_HOST}\nsso:\n  type: oidc\n  redirect_path: /cb\n",
                )
            }),
            vec![m, "line 1", "no usable host name"],
        ),
        (
            "sso in flow style",
            Box::new(|r, _| set_manifest(r, "grafana", "sso: {type: oidc, redirect_path: /login/generic_oauth}\n")),
            vec![m, "line 1", "block", "Nothing was registered"],
        ),
        (
            "sso behind an anchor",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "sso: &grafana_sso\n  type: oidc\n  redirect_path: /login/generic_oauth\n",
                )
            }),
            vec![m, "line 1", "anchor"],
        ),
        (
            "sso.env template with an unknown placeholder",
            Box::new(|r, _| {
                set_manifest(
                    r,
                    "grafana",
                    "sso:\n  type: oidc\n  redirect_path: /login/generic_oauth\n  env:\n    GF_AUTH_GENERIC_OAUTH_CLIENT_ID: '{clientid}'\n",
                )
            }),
            // The flow's own check, made before its first call to Authentik.
            vec![
                "grafana (oidc)",
                "sso.env.GF_AUTH_GENERIC_OAUTH_CLIENT_ID: unknown placeholder {clientid}",
            ],
        ),
        (
            "folder name that makes no .env prefix",
            Box::new(|r, _| {
                std::fs::create_dir_all(r.join("packages/2fa-portal")).unwrap();
                std::fs::write(
                    r.join("packages/2fa-portal/manifest.yaml"),
                    "sso:\n  type: oidc\n  redirect_path: /cb\n",
                )
                .unwrap();
                replace_in(r, "services.yaml", "wikijs, erpnext", "wikijs, 2fa-portal, erpnext");
            }),
            vec!["packages/2fa-portal/manifest.yaml", "sso.env_prefix"],
        ),
        (
            "the service API credential missing from .env",
            Box::new(|r, _| {
                edit(r, ".env", |t| {
                    t.lines()
                        .filter(|l| !l.starts_with("ZAMMAD_API_TOKEN="))
                        .map(|l| format!("{l}\n"))
                        .collect()
                })
            }),
            vec![
                "packages/zammad/manifest.yaml",
                "line 17",
                "ZAMMAD_API_TOKEN is not set",
            ],
        ),
        (
            "a service's .env key set twice",
            Box::new(|r, _| {
                edit(r, ".env", |t| {
                    format!("GRAFANA_OIDC_CLIENT_ID=one\n{t}GRAFANA_OIDC_CLIENT_ID=two\n")
                })
            }),
            vec![".env", "GRAFANA_OIDC_CLIENT_ID", "is set on lines 1 and "],
        ),
        (
            ".env with an unclosed quote",
            Box::new(|r, _| {
                edit(r, ".env", |t| {
                    let (head, tail) = t.split_at(t.find("AUTHENTIK_ADMIN_TOKEN").unwrap());
                    format!("{head}OPENED='never closed\n{tail}")
                })
            }),
            vec![".env", "line ", "`OPENED`"],
        ),
        (
            "services.yaml lists a path",
            Box::new(|r, _| {
                replace_in(
                    r,
                    "services.yaml",
                    "[grafana, uptime-kuma]",
                    "[grafana, ../uptime-kuma]",
                )
            }),
            vec!["services.yaml", "line ", "not a path"],
        ),
        (
            "services.yaml lists an absolute path",
            Box::new(|r, _| replace_in(r, "services.yaml", "[grafana, uptime-kuma]", "[grafana, /etc]")),
            vec!["services.yaml", "line ", "not a path"],
        ),
        (
            "services.yaml profile that is a list",
            Box::new(|r, _| replace_in(r, "services.yaml", "services: [grafana, uptime-kuma]", "[grafana]")),
            vec!["services.yaml", "line ", "must be a mapping with a `services:` list"],
        ),
        (
            "services.yaml that is a list",
            Box::new(|r, _| std::fs::write(r.join("services.yaml"), "- grafana\n- n8n\n").unwrap()),
            vec!["services.yaml", "line 1", "must be a mapping"],
        ),
        (
            "profile that is empty",
            Box::new(|r, _| replace_in(r, "services.yaml", "[grafana, uptime-kuma]", "[]")),
            vec!["services.yaml", "monitoring", "lists no services"],
        ),
        (
            "profile listing a service twice",
            Box::new(|r, _| {
                replace_in(
                    r,
                    "services.yaml",
                    "[grafana, uptime-kuma]",
                    "[grafana, uptime-kuma, grafana]",
                )
            }),
            vec!["services.yaml", "line ", "`grafana` twice"],
        ),
        (
            "profile names an unknown service",
            Box::new(|r, _| replace_in(r, "services.yaml", "[grafana, uptime-kuma]", "[grafana, nosuchservice]")),
            vec!["services.yaml", "nosuchservice"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_one_clear_error_exit_2_and_nothing_of_it_written() {
    let html = html_server().await;
    let html_url = html.url();
    let not_found = not_found_server().await;
    let all = cases(html_url, not_found.url());
    assert!(all.len() >= 50, "{} cases", all.len());
    let mut failures = Vec::new();
    for (name, breaker, expected) in all {
        let broken = if name == "duplicate slug" {
            Some("n8n")
        } else if name.starts_with("folder name") {
            Some("2fa-portal")
        } else if name.starts_with("the service API credential") {
            Some("zammad")
        } else if name == "a service's .env key set twice" || name.starts_with("sso.env template") {
            Some("grafana")
        } else {
            expected
                .contains(&"packages/grafana/manifest.yaml")
                .then_some("grafana")
        };
        let h = Harness::new("2026.8.3").await;
        breaker(h.root(), &h);
        let before = snapshot(h.root());
        let root = h.root().to_path_buf();
        let args: Vec<String> = if name.starts_with("profile") {
            vec!["bootstrap".into(), "--profile".into(), "monitoring".into()]
        } else {
            vec!["bootstrap".into()]
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ssoctl(&root, &args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let mut problems = Vec::new();
        if stdout.contains(TOKEN) || stderr.contains(TOKEN) {
            problems.push("the admin token was printed".into());
        }
        if out.status.code() != Some(2) {
            problems.push(format!("exit {:?}", out.status.code()));
        }
        if let Some(service) = broken {
            // Its own line says why; its manifest is untouched; the others ran.
            let line = stdout.lines().find(|l| l.starts_with(&format!("❌ {service} (")));
            match line {
                None => problems.push(format!("no ❌ line for {service}")),
                Some(line) => {
                    for e in &expected {
                        if !line.contains(e) {
                            problems.push(format!("the ❌ line lacks `{e}`"));
                        }
                    }
                }
            }
            let manifest = format!("packages/{service}/manifest.yaml");
            if snapshot(h.root()).get(&manifest) != before.get(&manifest) {
                problems.push(format!("{manifest} changed"));
            }
            if !stdout.lines().any(|l| l.starts_with("✓ ")) {
                problems.push("no other service ran".into());
            }
            if h.provider(service).await.is_some() {
                problems.push(format!("{service}'s provider was created"));
            }
        } else {
            for e in &expected {
                if !stderr.contains(e) {
                    problems.push(format!("stderr lacks `{e}`"));
                }
            }
            if snapshot(h.root()) != before {
                problems.push("files changed".into());
            }
            if h.sim.writes() != 0 {
                problems.push(format!("{} write requests", h.sim.writes()));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{name}: {}\n    stderr: {}\n    stdout: {}",
                problems.join("; "),
                stderr.trim(),
                stdout.trim().lines().take(3).collect::<Vec<_>>().join(" | ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
