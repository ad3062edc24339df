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

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
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
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep = key == "CARGO_HOME" || key.starts_with("CARGO_NET_") || key.starts_with("CARGO_HTTP_");
        if (key.starts_with("CARGO_") || key == "RUSTFLAGS" || key.starts_with("RUSTC_WORKSPACE_WRAPPER")) && !keep {
            cmd.env_remove(&key);
        }
    }
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "building examples/{name} failed ({status})");
    target_dir
        .join("wasm32-unknown-unknown")
        .join("release")
        .join(format!("ssoctl_example_{name}.wasm"))
}

/// The Keycloak example as a drop-in in `<root>/scripts/sso`.
async fn install_keycloak_flow(root: &Path) -> PathBuf {
    let core = tokio::task::spawn_blocking(|| build_example("keycloak")).await.unwrap();
    let folder = root.join("scripts").join("sso");
    std::fs::create_dir_all(&folder).unwrap();
    let component = folder.join("setup-keycloak.wasm");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keycloak_flow_built_outside_the_workspace_runs_with_the_unchanged_host() {
    let h = Harness::new("2026.8.3").await;
    let root = h.root();
    let kc = KeycloakFake::start(&[REALM], ADMIN_CLIENT, ADMIN_SECRET).await.unwrap();
    add_keycloak_service(root, "hedgedoc");
    set_env(root, ADMIN_SECRET_KEY, ADMIN_SECRET);
    install_keycloak_flow(root).await;

    // Default deny: the component imports idp-http, which nobody granted yet.
    let out = ssoctl(root, &["add", "hedgedoc"]).await;
    let text = output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("imports sso:flow/idp-http@0.1.0, which is not granted to sso.type `keycloak`")
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

    // Four services at once: one token request.
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
async fn the_audit_shows_what_a_drop_in_imports_and_what_it_is_granted() {
    let h = Harness::new("2026.8.3").await;
    let root = h.root();
    let kc = KeycloakFake::start(&[REALM], ADMIN_CLIENT, ADMIN_SECRET).await.unwrap();
    install_keycloak_flow(root).await;

    let audit = |root: PathBuf| async move {
        let out = ssoctl(&root, &["--json", "plugins", "audit"]).await;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let keycloak = doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["sso_type"] == "keycloak")
            .cloned()
            .expect("the drop-in is audited");
        (out.status.code(), keycloak)
    };
    let (code, keycloak) = audit(root.to_path_buf()).await;
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
    assert!(imports.contains(&"sso:flow/idp-http@0.1.0"), "{imports:?}");
    let idp = keycloak["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "sso:flow/idp-http@0.1.0")
        .unwrap();
    assert_eq!(idp["functions"], json!(["origin", "send"]));

    grant_keycloak(root, &kc);
    let (code, keycloak) = audit(root.to_path_buf()).await;
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
