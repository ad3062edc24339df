//! Third-party flows: `examples/keycloak` is built on its own, outside the workspace, as an
//! integrator would build it, turned into a component with `ssoctl plugins componentize`, dropped
//! into a plugin folder and run by the already-built host binary against a fake of Keycloak's
//! admin API. Its `idp-http` import is refused until the operator grants it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::json;
use ssoctl_sim::keycloak::KeycloakFake;

const REALM: &str = "pma";
const ADMIN_CLIENT: &str = "ssoctl-admin";
const ADMIN_SECRET: &str = "kc-service-account-secret-0123456789";
const ADMIN_SECRET_KEY: &str = "KEYCLOAK_SSOCTL_SECRET";
const TOKEN_PATH: &str = "/realms/master/protocol/openid-connect/token";

/// Removes the outer `cargo test`'s settings (`CARGO_*` but the registry's, `RUSTFLAGS`, a
/// workspace wrapper) from a command that runs cargo on a crate of its own.
fn without_outer_cargo(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep = key == "CARGO_HOME" || key.starts_with("CARGO_NET_") || key.starts_with("CARGO_HTTP_");
        if (key.starts_with("CARGO_") || key == "RUSTFLAGS" || key.starts_with("RUSTC_WORKSPACE_WRAPPER")) && !keep {
            cmd.env_remove(&key);
        }
    }
}

/// `cargo build` of `examples/<name>` for wasm32 with its own lock file, in a target folder of its
/// own (the outer `cargo test` holds the workspace's), with the outer build's settings removed.
fn build_example(name: &str) -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root().join("examples").join(name))
        .args(["build", "--release", "--locked", "--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(&target_dir);
    without_outer_cargo(&mut cmd);
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "building examples/{name} failed ({status})");
    target_dir
        .join("wasm32-unknown-unknown")
        .join("release")
        .join(format!("ssoctl_example_{name}.wasm"))
}

/// `examples/<name>`, built and componentized with the ssoctl binary, as the drop-in
/// `setup-<sso_type>.wasm` in `<root>/scripts/sso`.
async fn install_example(root: &Path, name: &'static str, sso_type: &str) -> PathBuf {
    let core = tokio::task::spawn_blocking(move || build_example(name)).await.unwrap();
    let folder = root.join("scripts").join("sso");
    std::fs::create_dir_all(&folder).unwrap();
    let component = folder.join(format!("setup-{sso_type}.wasm"));
    let out = ssoctl(
        root,
        &[
            "plugins",
            "componentize",
            core.to_str().unwrap(),
            "-o",
            component.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    component
}

/// The Keycloak example as a drop-in.
async fn install_keycloak_flow(root: &Path) -> PathBuf {
    install_example(root, "keycloak", "keycloak").await
}

/// Whether a test that needs another language's toolchain (`node`, `python3`) must be skipped:
/// only when that toolchain is missing and the run does not require it. CI sets
/// `SSOCTL_REQUIRE_NON_RUST_TESTS=1` (see `.ci/run`), so there a missing toolchain fails.
fn missing_toolchain(program: &str, args: &[&str], what: &str) -> bool {
    let present = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return false;
    }
    assert!(
        std::env::var_os("SSOCTL_REQUIRE_NON_RUST_TESTS").is_none(),
        "this test needs {what}, which is not installed"
    );
    eprintln!("SKIPPED: this test needs {what}, which is not installed");
    true
}

/// componentize-py, pinned in `examples/keycloak-python/requirements.txt`, installed from PyPI
/// into a virtualenv the tests share (created once, by one test at a time).
fn componentize_py() -> PathBuf {
    pip_tool(
        "componentize-py",
        "componentize-py",
        "examples/keycloak-python/requirements.txt",
    )
    .expect("python3 -m venv failed")
}

/// The Python twin (`examples/keycloak-python`), built with componentize-py (pinned in its
/// requirements.txt, installed from PyPI into a virtualenv of the test's own) for the world
/// `idp-flow`, with every WASI import stubbed out.
async fn install_python_keycloak_flow(root: &Path) -> PathBuf {
    let folder = root.join("scripts").join("sso");
    std::fs::create_dir_all(&folder).unwrap();
    let component = folder.join("setup-keycloak.wasm");
    let out = component.clone();
    tokio::task::spawn_blocking(move || {
        let source = repo_root().join("examples").join("keycloak-python");
        let tool = componentize_py();
        let status = Command::new(&tool)
            .arg("-d")
            .arg(repo_root().join("wit"))
            .args(["-w", "idp-flow", "componentize", "-p"])
            .arg(&source)
            .args(["app", "--stub-wasi", "-o"])
            .arg(&out)
            .status()
            .expect("run componentize-py");
        assert!(status.success(), "componentize-py failed");
    })
    .await
    .unwrap();
    component
}

/// `plugins audit --json` for the stack at `root`: its exit code and the entry of `sso_type`.
async fn audit_of(root: &Path, sso_type: &str) -> (Option<i32>, serde_json::Value) {
    let out = ssoctl(root, &["--json", "plugins", "audit"]).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sso_type"] == sso_type)
        .cloned()
        .unwrap_or_else(|| panic!("`{sso_type}` is audited: {doc}"));
    (out.status.code(), entry)
}

fn add_keycloak_service(root: &Path, name: &str) {
    let dir = root.join("packages").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.yaml"),
        format!(
            "sso:\n  type: keycloak\n  realm: {REALM}\n  redirect_path: /auth/oauth2/callback\n  configured: false\n"
        ),
    )
    .unwrap();
}

fn grant_keycloak(root: &Path, kc: &KeycloakFake) {
    let url = kc.url();
    std::fs::write(
        root.join("sso-grants.yaml"),
        format!(
            "keycloak:\n  idp-http:\n    origin: {url}\n    paths: [/admin/realms/{REALM}/]\n    auth:\n      client-credentials:\n        token-url: {url}{TOKEN_PATH}\n        client-id: {ADMIN_CLIENT}\n        client-secret-env: {ADMIN_SECRET_KEY}\n"
        ),
    )
    .unwrap();
}

fn set_env(root: &Path, key: &str, value: &str) {
    let path = root.join(".env");
    let mut env = std::fs::read_to_string(&path).unwrap();
    env.push_str(&format!("{key}={value}\n"));
    std::fs::write(&path, env).unwrap();
}

fn output(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Where a Keycloak flow comes from: the Rust crate, or its Python twin.
#[derive(Clone, Copy, Debug)]
enum KeycloakFlow {
    Rust,
    Python,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keycloak_flow_built_outside_the_workspace_runs_with_the_unchanged_host() {
    keycloak_scenario(KeycloakFlow::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_twin_of_the_keycloak_flow_passes_the_same_test() {
    if missing_toolchain(
        "python3",
        &["-c", "import venv, ensurepip"],
        "Python 3 with venv and pip",
    ) {
        return;
    }
    keycloak_scenario(KeycloakFlow::Python).await;
}

/// The Keycloak flow's whole life with an operator: refused until granted, registration, a
/// converged re-run, drift, a rotated secret, a wrong service-account secret.
async fn keycloak_scenario(flow: KeycloakFlow) {
    let h = Harness::new("2026.8.3").await;
    let root = h.root();
    let kc = KeycloakFake::start(&[REALM], ADMIN_CLIENT, ADMIN_SECRET).await.unwrap();
    add_keycloak_service(root, "hedgedoc");
    set_env(root, ADMIN_SECRET_KEY, ADMIN_SECRET);
    match flow {
        KeycloakFlow::Rust => install_keycloak_flow(root).await,
        KeycloakFlow::Python => install_python_keycloak_flow(root).await,
    };

    // What an auditor sees: the interfaces of the world `idp-flow` and not one WASI import
    // (componentize-py's `--stub-wasi`); the Python one carries its interpreter.
    let (_, audit) = audit_of(root, "keycloak").await;
    assert_eq!(audit["wasi_imports"], json!([]), "{audit}");
    assert_eq!(audit["optional_imports"], json!(["idp-http"]), "{audit}");
    let imports: Vec<&str> = audit["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(imports.iter().all(|i| i.starts_with("sso:flow/")), "{imports:?}");
    let size = audit["size"].as_u64().unwrap() as usize;
    match flow {
        KeycloakFlow::Rust => assert!(size < ssoctl::runtime::LANGUAGE_RUNTIME_BYTES, "{size}"),
        KeycloakFlow::Python => assert!(size > ssoctl::runtime::LANGUAGE_RUNTIME_BYTES, "{size}"),
    }

    // Default deny: the component imports idp-http, which nobody granted yet.
    let out = ssoctl(root, &["add", "hedgedoc"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("imports sso:flow/idp-http@0.2.0, which is not granted to sso.type `keycloak`")
            && text.contains("grant it in sso-grants.yaml"),
        "{text}"
    );
    assert!(h.env_value("HEDGEDOC_OIDC_CLIENT_ID").is_none());
    assert!(
        kc.requests().is_empty(),
        "nothing reached Keycloak: {:?}",
        kc.requests()
    );

    // Granted: the client is registered and its id, secret and issuer land in .env.
    grant_keycloak(root, &kc);
    let out = ssoctl(root, &["add", "hedgedoc"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let client = kc.client(REALM, "hedgedoc").expect("client registered");
    let secret = client["secret"].as_str().unwrap().to_string();
    assert!(
        !text.contains(&secret) && !text.contains(ADMIN_SECRET),
        "no secret in output: {text}"
    );
    assert!(text.contains("registered Keycloak client `hedgedoc`"), "{text}");
    assert_eq!(h.env_value("HEDGEDOC_OIDC_CLIENT_ID").as_deref(), Some("hedgedoc"));
    assert_eq!(
        h.env_value("HEDGEDOC_OIDC_CLIENT_SECRET").as_deref(),
        Some(secret.as_str())
    );
    assert_eq!(
        h.env_value("HEDGEDOC_OIDC_ISSUER"),
        Some(format!("{}/realms/{REALM}", kc.url()))
    );
    let root_url = client["rootUrl"].as_str().unwrap();
    assert_eq!(
        client["redirectUris"],
        json!([format!("{root_url}/auth/oauth2/callback")])
    );
    assert_eq!(client["publicClient"], json!(false));
    assert_eq!(kc.token_requests(), 1);
    assert!(h.manifest("hedgedoc").contains("configured: true"));

    // Converged: check is green and a re-run writes nothing.
    let writes = kc.writes();
    let out = ssoctl(root, &["check", "hedgedoc"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    let out = ssoctl(root, &["fix", "hedgedoc"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    assert_eq!(kc.writes(), writes, "a converged re-run writes nothing");

    // Drift in Keycloak: reported by check, repaired by fix.
    kc.edit(
        REALM,
        "hedgedoc",
        "redirectUris",
        json!(["https://evil.example.net/cb"]),
    );
    let out = ssoctl(root, &["check", "hedgedoc"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("client `hedgedoc` in realm `pma` differs: redirectUris"),
        "{text}"
    );
    let out = ssoctl(root, &["fix", "hedgedoc"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    let client = kc.client(REALM, "hedgedoc").unwrap();
    assert_eq!(
        client["redirectUris"],
        json!([format!("{root_url}/auth/oauth2/callback")])
    );

    // A secret rotated in Keycloak: check names the mismatch, fix writes the new one.
    kc.edit(REALM, "hedgedoc", "secret", json!("rotated-in-keycloak-0123456789"));
    let out = ssoctl(root, &["check", "hedgedoc"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("client secret mismatch: HEDGEDOC_OIDC_CLIENT_SECRET"),
        "{text}"
    );
    assert!(!text.contains("rotated-in-keycloak"), "{text}");
    assert_eq!(ssoctl(root, &["fix", "hedgedoc"]).await.status.code(), Some(0));
    assert_eq!(
        h.env_value("HEDGEDOC_OIDC_CLIENT_SECRET").as_deref(),
        Some("rotated-in-keycloak-0123456789")
    );

    // A wrong service-account secret: the token endpoint is named, the secret is not.
    let env = std::fs::read_to_string(root.join(".env")).unwrap();
    std::fs::write(
        root.join(".env"),
        env.replace(ADMIN_SECRET, "a-wrong-service-account-secret"),
    )
    .unwrap();
    let out = ssoctl(root, &["check", "hedgedoc"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("token endpoint {}{TOKEN_PATH} answered 401", kc.url()))
            && text.contains(ADMIN_SECRET_KEY),
        "{text}"
    );
    assert!(!text.contains("a-wrong-service-account-secret"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idp_token_is_shared_by_a_command_and_renewed_when_refused() {
    let h = Harness::new("2026.8.3").await;
    let root = h.root();
    let kc = KeycloakFake::start(&[REALM], ADMIN_CLIENT, ADMIN_SECRET).await.unwrap();
    let component = install_keycloak_flow(root).await;
    let names = ["app-a", "app-b", "app-c", "app-d"];
    for name in names {
        add_keycloak_service(root, name);
    }
    set_env(root, ADMIN_SECRET_KEY, ADMIN_SECRET);
    grant_keycloak(root, &kc);
    h.runtime.register(
        "keycloak",
        std::fs::read(&component).unwrap(),
        ssoctl::runtime::Source::File(component.clone()),
    );
    h.runtime
        .set_grants(ssoctl::grants::Grants::load(&root.join("sso-grants.yaml"), true).unwrap());

    // Three services at once: one token request.
    let session = h.session().await;
    let all: Vec<String> = names[..3].iter().map(|s| s.to_string()).collect();
    let reports = session.apply(&all, None).await.unwrap();
    assert!(reports.iter().all(|r| r.error.is_none()), "{reports:?}");
    assert_eq!(kc.token_requests(), 1);

    // Keycloak stops accepting the token mid-command: the host gets a new one and retries.
    kc.revoke_tokens();
    let reports = session.apply(&["app-d".to_string()], None).await.unwrap();
    assert!(reports[0].error.is_none(), "{reports:?}");
    assert_eq!(kc.token_requests(), 2);
    assert!(kc.client(REALM, "app-d").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_bearer_token_from_env_is_injected_and_never_shown() {
    let h = Harness::new("2026.8.3").await;
    let root = h.root();
    let kc = KeycloakFake::start(&[REALM], ADMIN_CLIENT, ADMIN_SECRET).await.unwrap();
    // An admin token handed over out of band (by `kcadm.sh`, a CI secret store).
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}{TOKEN_PATH}", kc.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ADMIN_CLIENT),
            ("client_secret", ADMIN_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["access_token"].as_str().unwrap().to_string();
    set_env(root, "KEYCLOAK_ADMIN_TOKEN", &token);
    add_keycloak_service(root, "hedgedoc");
    install_keycloak_flow(root).await;
    std::fs::write(
        root.join("sso-grants.yaml"),
        format!(
            "keycloak:\n  idp-http:\n    origin: {}\n    auth: {{bearer-env: KEYCLOAK_ADMIN_TOKEN}}\n",
            kc.url()
        ),
    )
    .unwrap();

    let out = ssoctl(root, &["add", "hedgedoc"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(kc.client(REALM, "hedgedoc").is_some());
    assert_eq!(kc.token_requests(), 1, "the host asked for no token of its own");
    assert!(!text.contains(&token), "{text}");

    // Keycloak stops accepting it: Keycloak's 401 is reported with a hint, the token is not.
    kc.revoke_tokens();
    let out = ssoctl(root, &["check", "hedgedoc"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("Keycloak answered 401") && text.contains("the service account's token was refused"),
        "{text}"
    );
    assert!(!text.contains(&token), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_shows_what_a_drop_in_imports_and_what_it_is_granted() {
    let h = Harness::new("2026.8.3").await;
    let root = h.root();
    let kc = KeycloakFake::start(&[REALM], ADMIN_CLIENT, ADMIN_SECRET).await.unwrap();
    install_keycloak_flow(root).await;

    let (code, keycloak) = audit_of(root, "keycloak").await;
    assert_eq!(code, Some(1), "a refused component fails the audit");
    assert_eq!(keycloak["optional_imports"], json!(["idp-http"]));
    assert_eq!(keycloak["grants"]["optional"], json!([]));
    assert!(keycloak["refused"].as_str().unwrap().contains("idp-http"));
    assert_eq!(keycloak["wasi_imports"], json!([]));
    let imports: Vec<&str> = keycloak["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(imports.contains(&"sso:flow/idp-http@0.2.0"), "{imports:?}");
    let idp = keycloak["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "sso:flow/idp-http@0.2.0")
        .unwrap();
    assert_eq!(idp["functions"], json!(["origin", "send"]));

    grant_keycloak(root, &kc);
    let (code, keycloak) = audit_of(root, "keycloak").await;
    assert_eq!(code, Some(0));
    assert_eq!(keycloak["refused"], serde_json::Value::Null);
    assert_eq!(
        keycloak["grants"]["optional"],
        json!([format!(
            "idp-http to {} (paths /admin/realms/{REALM}/), client-credentials token injected",
            kc.url()
        )])
    );
    assert_eq!(keycloak["grants"]["source"]["kind"], "operator");
}

/// panva's `oidc-provider` (pinned in `examples/dcr/provider/package-lock.json`) on a free
/// loopback port, stopped when dropped (and by itself when the test process's pipe closes).
struct OidcProvider {
    child: std::process::Child,
    issuer: String,
}

impl OidcProvider {
    /// `None` when Node.js is missing and the run does not require it (see [`missing_toolchain`]).
    fn start() -> Option<Self> {
        use std::io::BufRead;
        if missing_toolchain("node", &["--version"], "Node.js (20 or later) with npm") {
            return None;
        }
        let dir = repo_root().join("examples").join("dcr").join("provider");
        if !dir.join("node_modules").join("oidc-provider").exists() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("run npm ci");
            assert!(status.success(), "npm ci in {} failed", dir.display());
        }
        let mut child = Command::new("node")
            .args(["server.mjs", "0"])
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start node server.mjs");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Keep reading: the provider prints notices, and a closed pipe would end it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let issuer = line
            .trim()
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("oidc-provider did not start: {line:?}"))
            .to_string();
        Some(Self { child, issuer })
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser's authorization-code login at `issuer`, through the provider's development login
/// and consent forms (any user name is accepted), then the code exchanged at the token endpoint
/// with the client's id and secret. Returns the ID token's claims.
async fn log_in(issuer: &str, client_id: &str, client_secret: &str, redirect_uri: &str) -> serde_json::Value {
    use base64::Engine;
    let http = no_redirects();
    let mut cookies: std::collections::BTreeMap<String, String> = Default::default();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", client_id),
            ("response_type", "code"),
            ("scope", "openid"),
            ("redirect_uri", redirect_uri),
            ("state", "state-1234"),
            ("nonce", "nonce-5678"),
        ])
        .finish();
    let mut url = format!("{issuer}/auth?{query}");
    let mut form: Option<Vec<(&str, &str)>> = None;
    let mut code = None;
    for _ in 0..12 {
        let cookie = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = match form.take() {
            Some(fields) => http.post(&url).form(&fields),
            None => http.get(&url),
        };
        let response = request.header("cookie", cookie).send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    cookies.remove(name);
                } else {
                    cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response.headers()["location"].to_str().unwrap().to_string();
            if location.starts_with(redirect_uri) {
                let back = url::Url::parse(&location).unwrap();
                let params: std::collections::BTreeMap<_, _> = back.query_pairs().into_owned().collect();
                assert_eq!(
                    params.get("state").map(String::as_str),
                    Some("state-1234"),
                    "{location}"
                );
                code = params.get("code").cloned();
                assert!(code.is_some(), "no code in {location}");
                break;
            }
            url = url::Url::parse(issuer).unwrap().join(&location).unwrap().to_string();
            continue;
        }
        let page = response.text().await.unwrap();
        assert_eq!(status, 200, "{url}: {page}");
        if page.contains(r#"name="prompt" value="login""#) {
            form = Some(vec![("prompt", "login"), ("login", "alice"), ("password", "any")]);
        } else if page.contains(r#"name="prompt" value="consent""#) {
            form = Some(vec![("prompt", "consent")]);
        } else {
            panic!("unexpected page at {url}: {page}");
        }
    }
    let code = code.expect("the login ended at the service's redirect URI");
    let answer: serde_json::Value = http
        .post(format!("{issuer}/token"))
        .basic_auth(client_id, Some(client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = answer["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {answer}"));
    let payload = id_token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&claims).unwrap()
}

fn add_dcr_service(root: &Path, name: &str) {
    let dir = root.join("packages").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.yaml"),
        "sso:\n  type: dcr\n  redirect_path: /auth/oidc/callback\n  configured: false\n",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dcr_flow_registers_with_a_real_provider_and_the_client_logs_in() {
    let Some(provider) = tokio::task::spawn_blocking(OidcProvider::start).await.unwrap() else {
        return;
    };
    let issuer = provider.issuer.clone();
    let h = Harness::new("2026.8.3").await;
    let root = h.root();
    add_dcr_service(root, "outline-dcr");
    install_example(root, "dcr", "dcr").await;
    // Open registration: the grant names the provider's origin and two paths, no credentials.
    std::fs::write(
        root.join("sso-grants.yaml"),
        format!("dcr:\n  idp-http:\n    origin: {issuer}\n    paths: [/.well-known/openid-configuration, /reg]\n"),
    )
    .unwrap();

    let out = ssoctl(root, &["check", "outline-dcr"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    assert!(
        output(&out).contains(&format!("not registered with {issuer}")),
        "{}",
        output(&out)
    );

    let out = ssoctl(root, &["add", "outline-dcr"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("registered with {issuer}")), "{text}");
    let client_id = h.env_value("OUTLINE_DCR_OIDC_CLIENT_ID").expect("client id in .env");
    let secret = h
        .env_value("OUTLINE_DCR_OIDC_CLIENT_SECRET")
        .expect("client secret in .env");
    let token = h
        .env_value("OUTLINE_DCR_OIDC_REGISTRATION_TOKEN")
        .expect("registration token in .env");
    assert!(
        !text.contains(&secret) && !text.contains(&token),
        "no secret in output: {text}"
    );
    assert_eq!(h.env_value("OUTLINE_DCR_OIDC_ISSUER"), Some(issuer.clone()));
    let registration_uri = h.env_value("OUTLINE_DCR_OIDC_REGISTRATION_URI").unwrap();
    assert_eq!(registration_uri, format!("{issuer}/reg/{client_id}"));

    // The registered client completes a real login; the ID token is for it.
    let manifest = std::fs::read_to_string(h.manifest_path("outline-dcr")).unwrap();
    assert!(manifest.contains("configured: true"), "{manifest}");
    let registered: serde_json::Value = reqwest::Client::new()
        .get(&registration_uri)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let redirect_uri = registered["redirect_uris"][0].as_str().unwrap().to_string();
    assert!(redirect_uri.ends_with("/auth/oidc/callback"), "{registered}");
    let claims = log_in(&issuer, &client_id, &secret, &redirect_uri).await;
    assert_eq!(claims["aud"], json!(client_id), "{claims}");
    assert_eq!(claims["iss"], json!(issuer));
    assert_eq!(claims["sub"], json!("alice"));
    assert_eq!(claims["nonce"], json!("nonce-5678"));

    // Converged: check is green and a re-run keeps the same client.
    let out = ssoctl(root, &["check", "outline-dcr"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    assert_eq!(ssoctl(root, &["fix", "outline-dcr"]).await.status.code(), Some(0));
    assert_eq!(h.env_value("OUTLINE_DCR_OIDC_CLIENT_ID"), Some(client_id.clone()));

    // Someone changes the registration at the provider (RFC 7592): check reports it, fix puts
    // it back through the management endpoint, and the client still logs in.
    let token = h.env_value("OUTLINE_DCR_OIDC_REGISTRATION_TOKEN").unwrap();
    let mut changed = registered.clone();
    let changed_fields = changed.as_object_mut().unwrap();
    for field in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        changed_fields.remove(field);
    }
    changed_fields.insert("redirect_uris".into(), json!(["https://elsewhere.example.net/cb"]));
    let put = reqwest::Client::new()
        .put(&registration_uri)
        .bearer_auth(&token)
        .json(&changed)
        .send()
        .await
        .unwrap();
    let status = put.status();
    let answer: serde_json::Value = put.json().await.unwrap();
    assert_eq!(status.as_u16(), 200, "{answer}");
    // The provider rotates the registration token on update: keep .env in step, as its owner would.
    if let Some(rotated) = answer["registration_access_token"].as_str() {
        let env = std::fs::read_to_string(root.join(".env")).unwrap();
        std::fs::write(root.join(".env"), env.replace(&token, rotated)).unwrap();
    }
    let out = ssoctl(root, &["check", "outline-dcr"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the registered client differs: redirect_uris"), "{text}");
    let out = ssoctl(root, &["fix", "outline-dcr"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    let out = ssoctl(root, &["check", "outline-dcr"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    let secret = h.env_value("OUTLINE_DCR_OIDC_CLIENT_SECRET").unwrap();
    let claims = log_in(&issuer, &client_id, &secret, &redirect_uri).await;
    assert_eq!(claims["aud"], json!(client_id));
    drop(provider);
}

/// A flow from zero with only the binary, exactly as docs/plugins.md tells it: the page's first
/// shell block (`plugins new`, `plugins build`, the project's own `test.sh`, which drops the
/// component into a throw-away stack and runs `add` and `check` against `ssoctl sim`) is run as
/// written, in an empty folder, with `ssoctl` on `PATH`. The project holds the SDK and the WIT
/// itself: nothing in it points into this repository.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_from_zero_with_only_the_binary() {
    let page = std::fs::read_to_string(repo_root().join("docs/plugins.md")).unwrap();
    let marker = "<!-- These lines are run as they are by host/tests/examples.rs";
    let after = &page[page.find(marker).expect("the tested block is marked")..];
    let block = after
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a shell block after the marker")
        .to_string();
    assert!(block.contains("ssoctl plugins new hello"), "{block}");

    let empty = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ssoctl"), bin.path().join("ssoctl")).unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", &block])
        .current_dir(empty.path())
        .env("PATH", path);
    // The outer `cargo test`'s settings removed, as for the examples; a target folder shared
    // with them keeps the dependencies built once.
    without_outer_cargo(&mut cmd);
    cmd.env(
        "CARGO_TARGET_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples"),
    );
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("next: cd setup-hello && ssoctl plugins build && ./test.sh"),
        "{stdout}"
    );
    assert!(stdout.contains("wrote setup-hello.wasm ("), "{stdout}");
    assert!(stdout.contains("✓ myapp (hello)"), "{stdout}");
    assert!(
        stdout.contains("ok: setup-hello.wasm registered myapp and wrote MYAPP_CLIENT_ID / MYAPP_CLIENT_SECRET"),
        "{stdout}"
    );
    let project = empty.path().join("setup-hello");
    let repo = repo_root().display().to_string();
    for entry in walk(&project).into_iter().filter(|p| !p.ends_with("setup-hello.wasm")) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains(&repo), "{} points into the repository", entry.display());
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The same from zero in Python: `plugins new --lang python`, `plugins build` (componentize-py,
/// pinned as the project's requirements.txt pins it, on `PATH`), then the project's `test.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_flow_from_zero_with_only_the_binary() {
    if missing_toolchain(
        "python3",
        &["-c", "import venv, ensurepip"],
        "Python 3 with venv and pip",
    ) {
        return;
    }
    let tool = tokio::task::spawn_blocking(componentize_py).await.unwrap();
    let empty = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ssoctl"), bin.path().join("ssoctl")).unwrap();
    let path = format!(
        "{}:{}:{}",
        bin.path().display(),
        tool.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = "ssoctl plugins new hello-py --lang python\ncd setup-hello-py\nssoctl plugins build\n./test.sh\n";
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(empty.path())
        .env("PATH", path);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("✓ myapp (hello-py)"), "{stdout}");
    assert!(
        stdout.contains("ok: setup-hello-py.wasm registered myapp and wrote MYAPP_CLIENT_ID / MYAPP_CLIENT_SECRET"),
        "{stdout}"
    );
}
