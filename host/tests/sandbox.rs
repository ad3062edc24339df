//! The sandbox and the capability layer against a hostile component: every reach outside the
//! service's scope is `denied` with a message naming it, a loop is stopped by the deadline, a
//! memory hog by its limit, a panic is reported with its message, and in every case the other
//! services of the same run still succeed and nothing of the failed run is written.

mod common;

use common::*;
use ssoctl::runner::Status;
use ssoctl::runtime::Limits;

async fn run_with_victim(h: &Harness, behaviour: &str) -> (String, Vec<ssoctl::runner::ServiceReport>) {
    h.add_misbehaving_service("evil", behaviour);
    let reports = h.fix(&["evil", "grafana", "redmine"]).await;
    let evil = report(&reports, "evil");
    assert_eq!(evil.status, Status::Error, "{behaviour}: {evil:?}");
    for name in ["grafana", "redmine"] {
        assert_eq!(
            report(&reports, name).status,
            Status::Ok,
            "{behaviour}: {name} must still succeed"
        );
    }
    (evil.error.clone().unwrap(), reports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaching_into_another_service_is_denied() {
    for version in VERSIONS {
        let h = Harness::new(version).await;
        h.fix(&["grafana"]).await;
        let grafana_before = h.provider("grafana").await.unwrap();
        let cases = [
            ("foreign-provider", "denied: OAuth2 provider `grafana` is not `evil`'s"),
            ("foreign-app", "denied: application `grafana` is not `evil`'s"),
            (
                "foreign-scope",
                "denied: scope mapping `ssoctl grafana read_user` was not ensured by `evil` in this run",
            ),
            (
                "foreign-env",
                "denied: `GRAFANA_OAUTH_CLIENT_ID` belongs to service `grafana`",
            ),
            (
                "admin-token",
                "denied: `AUTHENTIK_ADMIN_TOKEN`: AUTHENTIK_* keys are never available to flows",
            ),
            (
                "escape-file",
                "denied: `../grafana/manifest.yaml` is outside packages/evil/",
            ),
            (
                "foreign-http",
                "denied: `//evil.example.net/steal` is not a path on evil's API",
            ),
            (
                "idp-foreign",
                "denied: https://evil.example.net is not the granted identity provider's origin http://127.0.0.1:9",
            ),
            (
                "idp-outside",
                "denied: `/admin/realms/master/users` is outside the paths granted on http://127.0.0.1:9 (/admin/realms/pma/)",
            ),
            (
                "idp-credential",
                "denied: `EVIL_IDP_TOKEN` holds an idp-http credential of the operator's grants",
            ),
        ];
        for (behaviour, expected) in cases {
            let (error, _) = run_with_victim(&h, behaviour).await;
            assert!(error.starts_with(expected), "{version} {behaviour}: {error}");
        }
        // Nothing of the victim changed, and the hostile service was never marked configured.
        let grafana_after = h.provider("grafana").await.unwrap();
        assert_eq!(grafana_after.redirect_uris, grafana_before.redirect_uris);
        assert_eq!(grafana_after.client_secret, grafana_before.client_secret);
        assert_eq!(h.env_value("GRAFANA_OAUTH_CLIENT_ID"), None);
        assert!(!h.manifest("grafana").contains("pwned"));
        assert!(h.manifest("evil").contains("configured: false"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_flow_is_stopped_by_the_deadline_and_the_others_succeed() {
    for version in VERSIONS {
        let h = Harness::with_limits(version, short_deadline()).await;
        let started = std::time::Instant::now();
        let (error, _) = run_with_victim(&h, "loop").await;
        assert!(
            error.contains("flow `misbehave` for `evil` did not finish within 2 s (deadline)"),
            "{error}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the loop was not cut short"
        );
        assert!(
            h.manifest("evil").contains("configured: false"),
            "nothing of the stopped run lands"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_stopped_by_its_limit() {
    let h = Harness::new("2026.8.3").await;
    let (error, _) = run_with_victim(&h, "oom").await;
    assert!(
        error.contains("flow `misbehave` for `evil` exceeded its memory limit"),
        "{error}"
    );
    assert!(error.contains("limit 64.0 MiB"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_reported_with_its_message() {
    let h = Harness::new("2026.8.3").await;
    let (error, _) = run_with_victim(&h, "panic").await;
    assert!(error.starts_with("flow `misbehave` for `evil` failed:"), "{error}");
    assert!(error.contains("misbehave asked to panic"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_sso_type_is_an_error_naming_it() {
    let h = Harness::new("2026.8.3").await;
    let dir = h.root().join("packages/sso-less");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.yaml"),
        "sso:\n  type: keycloak\n  redirect_path: /cb\n",
    )
    .unwrap();
    // Checked before anything runs, and only that service fails: the others are configured.
    let reports = h
        .session()
        .await
        .apply(&["sso-less".to_string(), "grafana".to_string()], None)
        .await
        .unwrap();
    let error = report(&reports, "sso-less").error.clone().unwrap_or_default();
    assert_eq!(report(&reports, "sso-less").status, Status::Error);
    assert!(
        error.contains("packages/sso-less/manifest.yaml: line 2: unknown sso.type `keycloak`"),
        "{error}"
    );
    assert!(
        error.contains("available: oauth, oidc, saml, proxy, wikijs, frappe"),
        "{error}"
    );
    assert_eq!(report(&reports, "grafana").status, Status::Ok);
    assert!(h.provider("grafana").await.is_some());
    assert!(h.provider("sso-less").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_importing_wasi_is_refused_at_load_naming_the_import() {
    // A component built for wasm32-wasip2 imports WASI interfaces; hand-made here with the
    // component model's text format so the test needs no extra toolchain.
    let wat = r#"(component
        (import "wasi:cli/environment@0.2.6" (instance (export "get-arguments" (func (result (list string))))))
    )"#;
    let h = Harness::new("2026.8.3").await;
    let bytes = wat_component(wat);
    h.runtime.register(
        "wasi-user",
        bytes,
        ssoctl::runtime::Source::File("setup-wasi-user.wasm".into()),
    );
    let err = h.runtime.flow("wasi-user").err().expect("refused").to_string();
    assert!(
        err.contains("imports `wasi:cli/environment@0.2.6`, which ssoctl does not grant"),
        "{err}"
    );
}

/// The component-model binary of `wat`, through wasmtime's own text parser.
fn wat_component(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("valid component text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompiled_components_are_cached_and_a_corrupt_artifact_is_replaced() {
    use ssoctl::runtime::{FlowRuntime, Limits};
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let artifacts = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    let rt = FlowRuntime::new(Limits::default(), Some(cache.clone())).unwrap();
    let flow = rt.flow("oidc").unwrap().unwrap();
    let files = artifacts();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&flow.sha256),
        "keyed by the component's sha256: {name}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

    // A second process with the same engine reuses the artifact as is.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let rt2 = FlowRuntime::new(Limits::default(), Some(cache.clone())).unwrap();
    rt2.flow("oidc").unwrap().unwrap();
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), written);

    // A damaged artifact is discarded and rebuilt, never trusted.
    std::fs::write(&files[0], b"not a precompiled component").unwrap();
    let rt3 = FlowRuntime::new(Limits::default(), Some(cache.clone())).unwrap();
    rt3.flow("oidc").unwrap().unwrap();
    assert!(std::fs::metadata(&files[0]).unwrap().len() > 1000, "rebuilt");
}

/// The rest of the hostile repertoire: each is contained with an error naming the limit or the
/// refusal, the other services of the run succeed, nothing of the hostile run is written, and
/// nothing outside the stack is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_behaviour_is_contained() {
    let h = Harness::new("2026.8.3").await;
    let outside = tempfile::tempdir().unwrap();
    let evil_dir = h.root().join("packages/evil");
    std::fs::create_dir_all(&evil_dir).unwrap();
    std::os::unix::fs::symlink(outside.path(), evil_dir.join("link")).unwrap();
    let cases = [
        ("recurse", "flow `misbehave` for `evil` failed:"),
        ("huge-string", "flow `misbehave` for `evil` exceeded its memory limit"),
        (
            "huge-answer",
            "flow `misbehave` for `evil` answered 16.0 MiB; the limit is 1 MiB",
        ),
        (
            "log-flood",
            "flow `misbehave` for `evil` exceeded its log quota of 1024 KiB",
        ),
        (
            "call-flood",
            "flow `misbehave` for `evil` exceeded its quota of 4096 host calls",
        ),
        ("absolute-file", "denied: `/etc/ssoctl-pwned` is outside packages/evil/"),
        (
            "symlink-file",
            "denied: packages/evil/link/pwned: a path led outside of the filesystem",
        ),
        ("trap-mid-write", "flow `misbehave` for `evil` failed:"),
    ];
    let env_before = h.env();
    for (behaviour, expected) in cases {
        let (error, _) = run_with_victim(&h, behaviour).await;
        eprintln!("{behaviour}: {error}");
        assert!(error.starts_with(expected), "{behaviour}: {error}");
        assert!(
            error.len() < 2048,
            "{behaviour}: the error itself is bounded: {} bytes",
            error.len()
        );
        assert!(h.manifest("evil").contains("configured: false"), "{behaviour}");
        assert!(
            !evil_dir.join("half-written.txt").exists(),
            "{behaviour}: a staged file landed"
        );
        assert!(
            !h.env().contains("EVIL_HALF_WRITTEN"),
            "{behaviour}: a staged .env key landed"
        );
    }
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );
    assert!(!std::path::Path::new("/etc/ssoctl-pwned").exists());
    // grafana and redmine were configured by the first run and left alone by the others.
    let env_after = h.env();
    for line in env_before
        .lines()
        .filter(|l| l.starts_with("ASD_") || l.starts_with("AUTHENTIK_"))
    {
        assert!(env_after.contains(line));
    }
}

/// A file that is not a component, and a component of another world, are refused when the run
/// starts, with a message naming the file and the problem, before that service is touched; the
/// other services of the command still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_wasm_is_refused_before_anything_runs() {
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "not-wasm",
            b"#!/bin/sh\necho not a component\n".to_vec(),
            "is not a valid WebAssembly component",
        ),
        (
            "core-module",
            wat::parse_str("(module (func (export \"run\")))").unwrap(),
            "is not a valid WebAssembly component",
        ),
        (
            "other-world",
            wat_component(
                r#"(component (core module $m (func (export "f"))) (core instance $i (instantiate $m)) (func (export "hello") (canon lift (core func $i "f"))))"#,
            ),
            "does not export `sso:flow/flow@0.2.0`",
        ),
    ];
    for (sso_type, bytes, expected) in cases {
        let h = Harness::new("2026.8.3").await;
        h.runtime.register(
            sso_type,
            bytes,
            ssoctl::runtime::Source::File(format!("setup-{sso_type}.wasm").into()),
        );
        let dir = h.root().join("packages/odd");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("manifest.yaml"),
            format!("sso:\n  type: {sso_type}\n  redirect_path: /cb\n"),
        )
        .unwrap();
        let reports = h
            .session()
            .await
            .apply(&["grafana".to_string(), "odd".to_string()], None)
            .await
            .unwrap();
        let error = report(&reports, "odd").error.clone().unwrap_or_default();
        assert!(error.contains(expected), "{sso_type}: {error}");
        assert!(
            error.contains(&format!("setup-{sso_type}.wasm")),
            "{sso_type}: names the file: {error}"
        );
        assert!(!h.manifest("odd").contains("configured"), "{sso_type}: odd untouched");
        assert!(h.provider("odd").await.is_none(), "{sso_type}: nothing written for odd");
        assert_eq!(
            report(&reports, "grafana").status,
            Status::Ok,
            "{sso_type}: grafana still runs"
        );
    }
}

/// A component whose compilation outlasts the compile deadline fails its own services with
/// that reason; a service of another type in the same command does not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_compiles_too_long_fails_only_its_services() {
    let limits = Limits {
        compile_deadline: std::time::Duration::from_secs(1),
        ..Limits::default()
    };
    let h = Harness::with_limits("2026.8.3", limits).await;
    // grafana's component loaded beforehand: on a busy machine its own first compilation must
    // not be what the deadline measures.
    h.runtime.flow("oidc").unwrap();
    h.runtime.register(
        "slow",
        slow_to_compile(),
        ssoctl::runtime::Source::File("setup-slow.wasm".into()),
    );
    let dir = h.root().join("packages/slowpoke");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("manifest.yaml"), "sso:\n  type: slow\n  redirect_path: /cb\n").unwrap();
    let session = h.session().await;
    let finished = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let order = finished.clone();
    session
        .runner
        .on_done(std::sync::Arc::new(move |r: &ssoctl::runner::ServiceReport| {
            order.lock().unwrap().push(r.service.clone())
        }));
    let reports = session
        .apply(&["slowpoke".to_string(), "grafana".to_string()], None)
        .await
        .unwrap();
    let error = report(&reports, "slowpoke").error.clone().unwrap_or_default();
    assert!(
        error.starts_with("compiling the `slow` flow component took longer than 1 s (--compile-deadline)"),
        "{error}"
    );
    assert!(error.contains("packages/slowpoke/manifest.yaml"), "{error}");
    assert_eq!(report(&reports, "grafana").status, Status::Ok);
    assert_eq!(
        *finished.lock().unwrap(),
        ["grafana", "slowpoke"],
        "grafana was not held up by the compilation"
    );
}

/// A component whose one core module compiles for seconds (thousands of locals live across a
/// loop keep Cranelift's register allocator busy), made unique per test run so no earlier run's
/// cached artifact makes it fast.
fn slow_to_compile() -> Vec<u8> {
    let n = 5000;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!("(local.set {i} (i64.const {}))\n", nonce.wrapping_add(i)));
    }
    body.push_str("(loop $l\n");
    for i in 0..n {
        body.push_str(&format!(
            "(local.set {i} (i64.add (local.get {i}) (local.get {})))\n",
            (i * 7 + 1) % n
        ));
    }
    body.push_str("(br_if $l (i64.eqz (local.get 0))))\n(local.get 5)");
    let locals = vec!["i64"; n as usize].join(" ");
    let funcs: String = (0..3)
        .map(|k| format!("(func (export \"f{k}\") (result i64) (local {locals}) {body})\n"))
        .collect();
    wat::parse_str(format!("(component (core module $m {funcs}))")).expect("valid component text")
}
