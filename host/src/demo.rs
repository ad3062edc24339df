//! `ssoctl demo`: the embedded default. Starts the Authentik simulator on a free loopback port,
//! copies the sample stack (embedded in the binary) to a temp folder, and runs what an operator
//! would: bootstrap → check → (drift: a changed redirect URI, a rotated secret, a deleted
//! application, a revoked Wiki.js API key) → check → fix --all → check. Every line printed is
//! the line an operator sees. Exit 0 only if each step behaved as it must.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::authentik::models::OAuth2Provider;
use crate::capabilities::Mode;
use crate::report;
use crate::runner::Status;
use crate::runtime::FlowRuntime;
use crate::session::{Options, Session};

include!(concat!(env!("OUT_DIR"), "/sample_stack.rs"));

/// API credentials the demo's Frappe fake accepts.
pub const FRAPPE_KEY: &str = "demo-frappe-key";
pub const FRAPPE_SECRET: &str = "demo-frappe-secret-0123456789";
/// The local admin of the demo's Wiki.js fake (ssoctl logs in once to mint its API key).
pub const WIKIJS_ADMIN_EMAIL: &str = "admin@example.org";
pub const WIKIJS_ADMIN_PASSWORD: &str = "demo-wiki-admin-Passw0rd";
/// The API token the demo's Zammad fake accepts.
pub const ZAMMAD_TOKEN: &str = "demo-zammad-token-0123456789abcdef";

/// Fakes of the service APIs the sample stack's flows drive (ERPNext's REST, Wiki.js's GraphQL,
/// Zammad's settings REST).
pub struct ServiceFakes {
    pub frappe: ssoctl_sim::frappe::FrappeFake,
    pub wikijs: ssoctl_sim::wikijs::WikiFake,
    pub zammad: ssoctl_sim::zammad::ZammadFake,
}

impl ServiceFakes {
    pub async fn start() -> Result<Self, String> {
        Ok(Self {
            frappe: ssoctl_sim::frappe::FrappeFake::start(FRAPPE_KEY, FRAPPE_SECRET).await?,
            wikijs: ssoctl_sim::wikijs::WikiFake::start(WIKIJS_ADMIN_EMAIL, WIKIJS_ADMIN_PASSWORD).await?,
            zammad: ssoctl_sim::zammad::ZammadFake::start(ZAMMAD_TOKEN).await?,
        })
    }
}

/// A generated stack of `n` services for benchmarks and scale tests: in every ten, four `oidc`,
/// four `oauth` and two `proxy` services (`svc-0001`, …), all in the default profile.
pub fn write_generated_stack(dir: &std::path::Path, url: &str, token: &str, n: usize) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let mut members = Vec::with_capacity(n);
    for i in 1..=n {
        let name = format!("svc-{i:04}");
        let folder = dir.join("packages").join(&name);
        std::fs::create_dir_all(&folder)?;
        // No `sso.env`: the flows write their default keys under the service's prefix
        // (`SVC_0001_OIDC_CLIENT_ID`, …).
        let sso = match i % 10 {
            1..=4 => "  type: oidc\n  redirect_path: /login/generic_oauth\n",
            5..=8 => "  type: oauth\n  redirect_path: /oauth/callback\n",
            _ => "  type: proxy\n  mode: forward_single\n",
        };
        std::fs::write(
            folder.join("manifest.yaml"),
            format!("name: Service {i}\npublic_url: https://{name}.example.org\nsso:\n{sso}  configured: false\n"),
        )?;
        members.push(name);
    }
    let mut services = String::from("default_profile: all\nprofiles:\n  all:\n    services:\n");
    for m in &members {
        let _ = writeln!(services, "      - {m}");
    }
    std::fs::write(dir.join("services.yaml"), services)?;
    let env = format!("AUTHENTIK_URL={url}\nAUTHENTIK_ADMIN_TOKEN={token}\nAUTHENTIK_BOOTSTRAP_SKIP=true\n");
    std::fs::write(dir.join(".env"), env)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join(".env"), std::fs::Permissions::from_mode(0o600))
}

/// Writes the sample stack into `dir`, pointing it at Authentik `url` with `token`, and at the
/// service fakes with their credentials (`None`: an address nothing listens on).
pub fn write_sample_stack(
    dir: &std::path::Path,
    url: &str,
    token: &str,
    fakes: Option<&ServiceFakes>,
) -> std::io::Result<()> {
    for (path, text) in SAMPLE_STACK {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, text)?;
    }
    let settings = simulator_env(url, token, fakes);
    let example = std::fs::read_to_string(dir.join(".env.example"))?;
    let env: String = example
        .lines()
        .map(|l| match l.split_once('=') {
            Some((key, _)) => match settings.iter().find(|(k, _)| k == key) {
                Some((k, v)) => format!("{k}={v}"),
                None => l.to_string(),
            },
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join(".env"), env + "\n")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join(".env"), std::fs::Permissions::from_mode(0o600))
}

/// The `.env` settings that point the sample stack at a simulator (and at the service fakes, or
/// at a port nothing listens on without them): what the demo writes and `ssoctl sim --fakes`
/// prints for pasting.
pub fn simulator_env(url: &str, token: &str, fakes: Option<&ServiceFakes>) -> Vec<(String, String)> {
    let nowhere = "http://127.0.0.1:9".to_string();
    let frappe_url = fakes.map_or(nowhere.clone(), |f| f.frappe.url());
    let wikijs_url = fakes.map_or(nowhere.clone(), |f| f.wikijs.url());
    let zammad_url = fakes.map_or(nowhere, |f| f.zammad.url());
    [
        ("AUTHENTIK_URL", url.to_string()),
        ("AUTHENTIK_ADMIN_TOKEN", token.to_string()),
        ("AUTHENTIK_BOOTSTRAP_SKIP", "true".to_string()),
        ("ERPNEXT_API_URL", frappe_url),
        ("ERPNEXT_API_KEY", FRAPPE_KEY.to_string()),
        ("ERPNEXT_API_SECRET", FRAPPE_SECRET.to_string()),
        ("WIKIJS_API_URL", wikijs_url),
        ("WIKIJS_ADMIN_EMAIL", WIKIJS_ADMIN_EMAIL.to_string()),
        ("WIKIJS_ADMIN_PASSWORD", WIKIJS_ADMIN_PASSWORD.to_string()),
        ("ZAMMAD_API_URL", zammad_url),
        ("ZAMMAD_API_TOKEN", ZAMMAD_TOKEN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn step(title: &str) {
    println!("\n== {title}");
}

pub async fn run(version: &str, runtime: Arc<FlowRuntime>) -> u8 {
    match demo(version, runtime).await {
        Ok(()) => {
            println!("\ndemo passed");
            0
        }
        Err(e) => {
            eprintln!("\ndemo FAILED: {e}");
            1
        }
    }
}

async fn demo(version: &str, runtime: Arc<FlowRuntime>) -> Result<(), String> {
    let token = format!("demo-{}", uuid_like());
    let sim = ssoctl_sim::Sim::start(ssoctl_sim::SimConfig {
        version: version.to_string(),
        token: token.clone(),
        ..Default::default()
    })
    .await?;
    let fakes = ServiceFakes::start().await?;
    let dir = tempfile::Builder::new()
        .prefix("ssoctl-demo-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    write_sample_stack(dir.path(), &sim.url(), &token, Some(&fakes)).map_err(|e| e.to_string())?;
    // Who may log in, as code: the demo's Linkding admits only the `authentik Admins` group.
    let linkding = dir.path().join("packages/linkding/manifest.yaml");
    let manifest = std::fs::read_to_string(&linkding).map_err(|e| e.to_string())?;
    let manifest = manifest.replacen(
        "  configured: false\n",
        "  configured: false\n  access:\n    groups: [\"authentik Admins\"]\n",
        1,
    );
    std::fs::write(&linkding, manifest).map_err(|e| e.to_string())?;
    println!(
        "Authentik simulator {} at {} · API fakes: Frappe {}, Wiki.js {}, Zammad {} · sample stack in {}",
        sim.version(),
        sim.url(),
        fakes.frappe.url(),
        fakes.wikijs.url(),
        fakes.zammad.url(),
        dir.path().display()
    );
    let options = Options::new(dir.path());
    let open = || async {
        Session::open(&options, runtime.clone())
            .await
            .map_err(|e| e.to_string())
    };

    step("ssoctl bootstrap");
    let session = open().await?;
    let boot = session.bootstrap(None).await.map_err(|e| e.to_string())?;
    report::print_reports(&boot, Mode::Apply, false);
    if let Some(bad) = boot.iter().find(|r| r.status != Status::Ok) {
        return Err(format!("bootstrap failed for {}", bad.service));
    }
    let services: Vec<String> = boot.iter().map(|r| r.service.clone()).collect();
    let types: std::collections::BTreeSet<&str> = boot.iter().map(|r| r.sso_type.as_str()).collect();
    if types.len() < 6 {
        return Err(format!(
            "the sample stack covers {} sso types, not all six: {types:?}",
            types.len()
        ));
    }

    step("ssoctl check");
    let checked = open().await?.check(&services, None).await.map_err(|e| e.to_string())?;
    report::print_reports(&checked, Mode::Check, false);
    if report::exit_code(&checked, Mode::Check) != 0 {
        return Err("check after bootstrap is not green".into());
    }

    step("drift, as an admin clicking around Authentik would cause it");
    let expected = introduce_drift(&open().await?, &services, &sim, &fakes).await?;

    step("ssoctl check");
    let drifted = open().await?.check(&services, None).await.map_err(|e| e.to_string())?;
    report::print_reports(&drifted, Mode::Check, false);
    for r in &drifted {
        let kinds: Vec<&str> = r.findings.iter().map(|f| f.kind.as_str()).collect();
        match expected.iter().find(|(svc, _)| *svc == r.service) {
            Some((_, kind)) if !kinds.contains(kind) => {
                return Err(format!("check did not report `{kind}` for {}", r.service));
            }
            None if r.status != Status::Ok => return Err(format!("{} drifted although nothing changed it", r.service)),
            _ => {}
        }
    }

    step("ssoctl fix --all");
    let fixed = open().await?.apply(&services, None).await.map_err(|e| e.to_string())?;
    report::print_reports(&fixed, Mode::Apply, false);
    if report::exit_code(&fixed, Mode::Apply) != 0 {
        return Err("fix failed".into());
    }

    step("ssoctl check");
    let green = open().await?.check(&services, None).await.map_err(|e| e.to_string())?;
    report::print_reports(&green, Mode::Check, false);
    if report::exit_code(&green, Mode::Check) != 0 {
        return Err("check after fix is not green".into());
    }

    step("ssoctl fix --all, again");
    let writes_before = sim.writes();
    let again = open().await?.apply(&services, None).await.map_err(|e| e.to_string())?;
    let changed: Vec<&str> = again
        .iter()
        .filter(|r| r.status != Status::Ok || !r.changes.is_empty())
        .map(|r| r.service.as_str())
        .collect();
    if !changed.is_empty() {
        return Err(format!("a converged stack changed again: {}", changed.join(", ")));
    }
    let writes = sim.writes() - writes_before;
    println!("{} services converged: {writes} write requests", again.len());
    if writes != 0 {
        return Err(format!("{writes} write requests on a converged stack"));
    }

    let violations = sim.violations();
    println!(
        "\nsimulator: {} API requests ({} writes), {} schema violation(s) against Authentik {}'s OpenAPI schema",
        sim.requests(),
        sim.writes(),
        violations.len(),
        sim.version()
    );
    for v in &violations {
        println!("  {v}");
    }
    if !violations.is_empty() {
        return Err("the simulator saw requests or responses outside the schema".into());
    }
    Ok(())
}

/// Changes a redirect URI, rotates a client secret and deletes an application through the API;
/// rotates the signing certificate and detaches a proxy provider from the outpost in the
/// simulator; revokes Wiki.js's API key and edits the secret Frappe holds. Returns (service,
/// finding kind check must report).
async fn introduce_drift(
    session: &Session,
    services: &[String],
    sim: &ssoctl_sim::Sim,
    fakes: &ServiceFakes,
) -> Result<Vec<(String, &'static str)>, String> {
    let ak = session.authentik();
    let caps = ak.request_shapes().await.map_err(|e| e.to_string())?.clone();
    let pick = |i: usize| services.get(i % services.len()).cloned().unwrap_or_default();
    let (a, b, c) = (pick(0), pick(1), pick(2));
    let slug_of = |name: &str| {
        session
            .stack
            .services
            .get(name)
            .map(|s| s.slug.clone())
            .unwrap_or_default()
    };
    let provider = |slug: String| async move {
        ak.list::<OAuth2Provider>("providers/oauth2/", &[("name", slug.clone())])
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|p| p.name == slug)
            .ok_or_else(|| format!("provider {slug} not found"))
    };

    let p = provider(slug_of(&a)).await?;
    let evil = "https://attacker.example.net/callback";
    let uris = if caps.redirect_uri_list {
        json!([{"matching_mode": "strict", "url": evil}])
    } else {
        json!(evil)
    };
    ak.patch::<Value>(
        &format!("providers/oauth2/{}/", p.pk),
        &json!({ "redirect_uris": uris }),
    )
    .await
    .map_err(|e| e.to_string())?;
    println!("changed the redirect URI of {a} to {evil}");

    let p = provider(slug_of(&b)).await?;
    let secret = format!("rotated-{}-{}", uuid_like(), uuid_like());
    ak.patch::<Value>(
        &format!("providers/oauth2/{}/", p.pk),
        &json!({ "client_secret": secret }),
    )
    .await
    .map_err(|e| e.to_string())?;
    println!("rotated the client secret of {b} in Authentik");

    ak.delete(&format!("core/applications/{}/", slug_of(&c)))
        .await
        .map_err(|e| e.to_string())?;
    println!("deleted the Authentik application of {c}");
    // An administrator removes the group binding: the application is open to every user again.
    let app: Value = ak
        .get("core/applications/linkding/", &[])
        .await
        .map_err(|e| e.to_string())?;
    let target = app["pk"].as_str().unwrap_or_default().to_string();
    let bindings: Vec<Value> = ak
        .list("policies/bindings/", &[("target", target)])
        .await
        .map_err(|e| e.to_string())?;
    for b in &bindings {
        ak.delete(&format!("policies/bindings/{}/", b["pk"].as_str().unwrap_or_default()))
            .await
            .map_err(|e| e.to_string())?;
    }
    println!("removed the `authentik Admins` binding from linkding: every Authentik user could log in");
    let mut expected = vec![
        ("linkding".to_string(), "access-binding-missing"),
        (a, "redirect-uri-mismatch"),
        (b, "client-secret-mismatch"),
        (c, "application-missing"),
    ];
    let has = |name: &str| services.iter().any(|s| s == name);
    if has("zammad") {
        sim.with_world(|w| w.keypairs.iter_mut().for_each(|k| k.rotate()));
        println!("re-generated Authentik's signing certificate (Zammad still trusts the old one)");
        expected.push(("zammad".to_string(), "signing-cert-mismatch"));
    }
    if has("adminer") {
        let pk = provider_pk(session, "providers/proxy/", &slug_of("adminer")).await?;
        sim.with_world(|w| w.outposts.iter_mut().for_each(|o| o.providers.retain(|p| *p != pk)));
        println!("removed adminer's proxy provider from the embedded outpost");
        expected.push(("adminer".to_string(), "outpost-detached"));
    }
    if has("wikijs") {
        fakes.wikijs.revoke_all_keys();
        println!("revoked ssoctl's API key in Wiki.js");
        expected.push(("wikijs".to_string(), "api-key-invalid"));
    }
    if has("erpnext") {
        fakes
            .frappe
            .edit("authentik", "client_secret", json!("typed-in-by-hand"));
        println!("changed the client secret of ERPNext's Social Login Key in Frappe");
        expected.push(("erpnext".to_string(), "client-secret-mismatch"));
    }
    Ok(expected)
}

/// The pk of provider `name` (listed unfiltered: not every provider list takes `name`).
async fn provider_pk(session: &Session, path: &str, name: &str) -> Result<u64, String> {
    #[derive(serde::Deserialize)]
    struct Named {
        pk: u64,
        name: String,
    }
    session
        .authentik()
        .list::<Named>(path, &[])
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|p| p.name == name)
        .map(|p| p.pk)
        .ok_or_else(|| format!("provider {name} not found"))
}

fn uuid_like() -> String {
    use sha2::Digest;
    let seed = format!("{:?}{:?}", std::time::SystemTime::now(), std::thread::current().id());
    hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..12])
}
