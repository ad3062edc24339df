//! Released WIT stays released: `sso:flow@0.1.0` is frozen under `wit/0.1.0/`, and a component
//! built against it before any later change (`tests/fixtures/sso-flow-0.1.0/`) keeps loading and
//! configuring its services.

mod common;

use std::path::PathBuf;

use common::*;
use sha2::{Digest, Sha256};

const FROZEN_WIT_SHA256: &str = "f986871f67ea18d11dde8dde2dde9e3fea7688fa94565fd51d87b9468b6e0d11";
const FIXTURE_SHA256: &str = "44d35a2a02b95a18c5170d9f335db67ca118958ec00150fbf46bd6fcf41c87bf";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn released_0_1_0_is_never_edited_in_place() {
    let frozen = std::fs::read(repo().join("wit/0.1.0/sso-flow.wit")).unwrap();
    assert_eq!(
        sha256(&frozen),
        FROZEN_WIT_SHA256,
        "wit/0.1.0/sso-flow.wit is released: put interface changes in a new release (wit/0.2.0), never in 0.1.0"
    );
    let working = std::fs::read_to_string(repo().join("wit/sso-flow.wit")).unwrap();
    if working.contains("package sso:flow@0.1.0;") {
        assert_eq!(
            working.as_bytes(),
            frozen.as_slice(),
            "wit/sso-flow.wit still says `sso:flow@0.1.0` but differs from the released 0.1.0: \
             a changed interface needs a new package version"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_built_against_0_1_0_still_configures_its_services() {
    let fixture = std::fs::read(repo().join("tests/fixtures/sso-flow-0.1.0/setup-oidc.wasm")).unwrap();
    assert_eq!(
        sha256(&fixture),
        FIXTURE_SHA256,
        "the fixture is a binary built once, never rebuilt"
    );
    let h = Harness::new("2026.8.3").await;
    let plugins = h.root().join("scripts/sso");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("setup-oidc.wasm"), &fixture).unwrap();

    // The fixture, not the stock flow, serves `oidc`.
    let out = ssoctl(h.root(), &["--json", "plugins", "list", "--override", "oidc"]).await;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let oidc = list["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sso_type"] == "oidc")
        .unwrap_or_else(|| panic!("{list:#}"));
    assert_eq!(oidc["sha256"], FIXTURE_SHA256, "{oidc:#}");
    assert_ne!(oidc["source"]["kind"], "stock", "{oidc:#}");
    assert_eq!(oidc["wit_package"], "sso:flow@0.1.0", "{oidc:#}");
    // Linked onto this host's release by name (runtime/adapter.rs), with the grants of any flow.
    assert_eq!(oidc["linked_as"], "sso:flow@0.2.0", "{oidc:#}");
    assert!(oidc["refused"].is_null(), "{oidc:#}");

    // 0.1.0 has no `ensure-access`: the host applies the manifest's sso.access itself after the
    // run, or n8n would stay open to every user under a component that cannot restrict it.
    let n8n = h.manifest("n8n");
    std::fs::write(
        h.manifest_path("n8n"),
        format!("{}\n  access:\n    groups: [\"authentik Admins\"]\n", n8n.trim_end()),
    )
    .unwrap();

    // Grafana's and Superset's manifests render `sso.roles` ({roles_jmespath}), which a 0.1.0
    // flow does not know (it says so, naming the key): the other oidc services run it.
    let oidc_services = ["n8n", "outline"];
    // In the same command as stock flows built against 0.2.0 (oauth, proxy, saml).
    let current = ["redmine", "adminer", "zammad"];
    let mut args = vec!["fix", "--override", "oidc"];
    args.extend(oidc_services);
    args.extend(current);
    let out = ssoctl(h.root(), &args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for service in oidc_services {
        assert!(stdout.contains(&format!("✓ {service} (oidc)")), "{stdout}");
    }
    for service in current {
        assert!(stdout.contains(&format!("✓ {service} (")), "{stdout}");
    }
    let mut args = vec!["check", "--override", "oidc"];
    args.extend(oidc_services);
    let out = ssoctl(h.root(), &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // And the stock flow agrees with what the 0.1.0 component registered.
    assert_all_ok(&h.check(&oidc_services).await);
    let (_, app) = call(&h, "GET", "core/applications/n8n/", None).await;
    let target = app["pk"].as_str().unwrap();
    let (_, bindings) = call(&h, "GET", &format!("policies/bindings/?target={target}"), None).await;
    let bound: Vec<&str> = bindings["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["group_obj"]["name"].as_str())
        .collect();
    assert_eq!(bound, ["authentik Admins"], "{bindings:#}");
}
