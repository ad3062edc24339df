//! Test harness: a simulator playing one Authentik version, the sample stack in a temp folder,
//! and a flow runtime. Dropping the harness fails the test if the simulator saw any request or
//! response outside that version's OpenAPI schema.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ssoctl::authentik::models::OAuth2Provider;
use ssoctl::runner::{ServiceReport, Status};
use ssoctl::runtime::{FlowRuntime, Limits, Source};
use ssoctl::session::{Options, Session};
use ssoctl_sim::{Sim, SimConfig};

pub const VERSIONS: [&str; 2] = ["2024.2", "2026.8.3"];
pub const TOKEN: &str = "test-admin-token-0123456789";

/// The sample stack's oauth/oidc services (the flows this issue implements).
pub const OAUTH_SERVICES: [&str; 7] = [
    "grafana",
    "n8n",
    "superset",
    "outline",
    "redmine",
    "mattermost",
    "linkding",
];

/// The sample stack's proxy (forward-auth) services.
pub const PROXY_SERVICES: [&str; 2] = ["adminer", "uptime-kuma"];

/// Every sample service whose flow is implemented.
pub fn implemented() -> Vec<&'static str> {
    OAUTH_SERVICES
        .iter()
        .chain(PROXY_SERVICES.iter())
        .chain(["zammad", "erpnext", "wikijs"].iter())
        .copied()
        .collect()
}

/// The `.env` key holding the hostile flow's idp-http credential: inside the prefix of the
/// service the sandbox tests give it (`evil`, prefix `EVIL_`), so only the grant keeps it out of reach.
pub const IDP_CREDENTIAL: &str = "EVIL_IDP_TOKEN";

/// What the sandbox tests grant the hostile flow: its own API, and an identity provider on a
/// loopback port nothing listens on, limited to one realm's admin paths.
pub fn misbehave_grants() -> ssoctl::grants::Grants {
    ssoctl::grants::Grants::parse(&format!(
        "misbehave:\n  service-http: true\n  idp-http:\n    origin: http://127.0.0.1:9\n    paths: [/admin/realms/pma/]\n    auth: {{bearer-env: {IDP_CREDENTIAL}}}\n"
    ))
    .expect("valid grants")
}

pub struct Harness {
    pub sim: Sim,
    pub fakes: ssoctl::demo::ServiceFakes,
    pub dir: tempfile::TempDir,
    pub runtime: Arc<FlowRuntime>,
}

impl Harness {
    pub async fn new(version: &str) -> Self {
        Self::with_limits(version, Limits::default()).await
    }

    pub async fn with_limits(version: &str, limits: Limits) -> Self {
        let sim = Sim::start(SimConfig {
            version: version.into(),
            token: TOKEN.into(),
            ..Default::default()
        })
        .await
        .expect("start the simulator");
        let fakes = ssoctl::demo::ServiceFakes::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        ssoctl::demo::write_sample_stack(dir.path(), &sim.url(), TOKEN, Some(&fakes)).unwrap();
        let runtime = Arc::new(FlowRuntime::new(limits, Some(shared_cache_dir())).unwrap());
        let misbehave = std::fs::read(ssoctl::TEST_MISBEHAVE_WASM).expect("test component built by host/build.rs");
        runtime.register("misbehave", misbehave, Source::File(ssoctl::TEST_MISBEHAVE_WASM.into()));
        runtime.set_grants(misbehave_grants());
        Self {
            sim,
            fakes,
            dir,
            runtime,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn options(&self) -> Options {
        Options::new(self.root())
    }

    pub async fn session(&self) -> Session {
        Session::open(&self.options(), self.runtime.clone())
            .await
            .expect("open a session")
    }

    pub async fn bootstrap(&self) -> Vec<ServiceReport> {
        self.session().await.bootstrap(None).await.unwrap()
    }

    pub async fn check(&self, services: &[&str]) -> Vec<ServiceReport> {
        self.session().await.check(&names(services), None).await.unwrap()
    }

    pub async fn fix(&self, services: &[&str]) -> Vec<ServiceReport> {
        self.session().await.apply(&names(services), None).await.unwrap()
    }

    pub async fn plan(&self, services: &[&str]) -> Vec<ServiceReport> {
        self.session().await.plan(&names(services), None).await.unwrap()
    }

    pub fn env(&self) -> String {
        std::fs::read_to_string(self.root().join(".env")).unwrap()
    }

    pub fn env_value(&self, key: &str) -> Option<String> {
        ssoctl::stack::EnvFile::load(&self.root().join(".env"))
            .unwrap()
            .get(key)
            .map(str::to_string)
    }

    pub fn manifest(&self, service: &str) -> String {
        std::fs::read_to_string(self.manifest_path(service)).unwrap()
    }

    pub fn manifest_path(&self, service: &str) -> PathBuf {
        self.root().join("packages").join(service).join("manifest.yaml")
    }

    /// Adds a service using the hostile test component. Its manifest declares the files the
    /// file cases write, so those reach the filesystem layer.
    pub fn add_misbehaving_service(&self, name: &str, behaviour: &str) {
        self.add_hostile(name, behaviour, &[]);
    }

    /// Adds a service using the hostile test component with more `sso:` settings (the payload of
    /// a trust-boundary case, or declarations), written as YAML so any text survives quoting.
    pub fn add_hostile(&self, name: &str, behaviour: &str, extra: &[(&str, serde_yaml::Value)]) {
        let dir = self.root().join("packages").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut sso = serde_yaml::Mapping::new();
        let mut set = |k: &str, v: serde_yaml::Value| {
            sso.insert(k.into(), v);
        };
        set("type", "misbehave".into());
        set("redirect_path", "/cb".into());
        set("misbehave", behaviour.into());
        set("victim", "grafana".into());
        set("configured", false.into());
        set(
            "files",
            serde_yaml::Value::Sequence(vec!["link/pwned".into(), "half-written.txt".into()]),
        );
        for (k, v) in extra {
            set(k, v.clone());
        }
        let mut doc = serde_yaml::Mapping::new();
        doc.insert("sso".into(), serde_yaml::Value::Mapping(sso));
        std::fs::write(dir.join("manifest.yaml"), serde_yaml::to_string(&doc).unwrap()).unwrap();
    }

    /// The provider of `slug` as the simulator holds it, read through the API.
    pub async fn provider(&self, slug: &str) -> Option<OAuth2Provider> {
        let session = self.session().await;
        session
            .authentik()
            .list::<OAuth2Provider>("providers/oauth2/", &[("name", slug.to_string())])
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.name == slug)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let violations = self.sim.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            let text: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
            panic!(
                "the simulator ({}) saw schema violations:\n{}",
                self.sim.version(),
                text.join("\n")
            );
        }
    }
}

/// One precompiled-artifact cache for every test binary, under cargo's `target/tmp` (cleaned
/// with the build, never left in the system's temp folder). Artifacts are keyed by component
/// and engine and written atomically, so test processes share it safely.
pub fn shared_cache_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ssoctl-component-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn names(services: &[&str]) -> Vec<String> {
    services.iter().map(|s| s.to_string()).collect()
}

pub fn report<'a>(reports: &'a [ServiceReport], service: &str) -> &'a ServiceReport {
    reports
        .iter()
        .find(|r| r.service == service)
        .unwrap_or_else(|| panic!("no report for {service}"))
}

pub fn assert_all_ok(reports: &[ServiceReport]) {
    for r in reports {
        assert_eq!(r.status, Status::Ok, "{}: {:?} {:?}", r.service, r.error, r.findings);
    }
}

pub fn kinds(r: &ServiceReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.kind.as_str()).collect()
}

pub fn short_deadline() -> Limits {
    Limits {
        deadline: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// `ssoctl --root ROOT ARGS…` as operators run it: the stack's `.env` is the only source of
/// Authentik settings (the test process's environment is not), components cached in the stack.
pub fn ssoctl_command(root: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ssoctl"));
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env("SSOCTL_CACHE_DIR", root.join(".cache"))
        .env_remove("AUTHENTIK_URL")
        .env_remove("AUTHENTIK_ADMIN_TOKEN");
    cmd
}

/// Runs [`ssoctl_command`] to completion off the async workers (the simulator runs on them).
pub async fn ssoctl(root: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = ssoctl_command(root, args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run ssoctl"))
        .await
        .unwrap()
}

/// Providers and applications per name, across every provider type.
pub fn objects_per_name(h: &Harness) -> std::collections::BTreeMap<String, usize> {
    h.sim.with_world(|w| {
        let mut n = std::collections::BTreeMap::new();
        let names = w
            .oauth2
            .values()
            .map(|p| format!("provider {}", p.name))
            .chain(w.proxy.values().map(|p| format!("provider {}", p.name)))
            .chain(w.saml.values().map(|p| format!("provider {}", p.name)))
            .chain(w.applications.values().map(|a| format!("application {}", a.slug)));
        for name in names {
            *n.entry(name).or_default() += 1;
        }
        n
    })
}

/// A raw request to the simulator with the admin token: status and JSON body.
pub async fn call(h: &Harness, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let url = format!("{}/api/v3/{}", h.sim.url(), path.trim_start_matches('/'));
    let mut req = client
        .request(method.parse().unwrap(), &url)
        .header("Authorization", format!("Bearer {TOKEN}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// The repository's root (the folder above `host/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// `tool` from the packages pinned in `requirements` (a path in the repository), installed from
/// PyPI once into the virtualenv `name` under the target directory, which the tests share (one
/// install at a time). `None` when python3 cannot make a virtualenv; a failed install panics.
pub fn pip_tool(name: &str, tool: &str, requirements: &str) -> Option<PathBuf> {
    static VENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = VENV.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let path = venv.join("bin").join(tool);
    if path.exists() {
        return Some(path);
    }
    let venv_made = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    if !venv_made {
        return None;
    }
    let status = std::process::Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(repo_root().join(requirements))
        .status()
        .expect("run pip");
    assert!(status.success(), "pip install -r {requirements} failed");
    Some(path)
}

/// An HTTP client that reads redirects instead of following them, as a probe or a test of one.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The first value of header `name` of a response, or "".
pub fn header_of(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A redirect's `Location`, or "".
pub fn location(r: &reqwest::Response) -> String {
    header_of(r, "location")
}
