//! Who may log in, as code (sso:flow 0.2.0 `ensure-access`): a manifest's `sso.access` becomes
//! exactly those group and user bindings on the service's application, on every release the
//! simulator plays; bindings ssoctl did not make are reported and kept, a missing group is a
//! clear error, and the simulator's own access decision follows the bindings.

mod common;

use common::*;
use serde_json::{Value, json};

/// Sets grafana's `sso.access` (an empty `groups` list leaves the key out).
fn set_access(h: &Harness, groups: &[&str], users: &[&str]) {
    let text = h.manifest("grafana");
    let base: String = text.split("\n  access:").next().unwrap().trim_end().to_string();
    let mut access = String::from("\n  access:\n");
    if !groups.is_empty() {
        access.push_str(&format!("    groups: [{}]\n", groups.join(", ")));
    }
    if !users.is_empty() {
        access.push_str(&format!("    users: [{}]\n", users.join(", ")));
    }
    std::fs::write(h.manifest_path("grafana"), format!("{base}{access}")).unwrap();
}

/// The bindings on grafana's application: (group name or username, order).
async fn bindings(h: &Harness) -> Vec<(String, i64)> {
    let (_, app) = call(h, "GET", "core/applications/grafana/", None).await;
    let target = app["pk"].as_str().unwrap().to_string();
    let (_, list) = call(h, "GET", &format!("policies/bindings/?target={target}"), None).await;
    list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let who = b["group_obj"]["name"]
                .as_str()
                .or(b["user_obj"]["username"].as_str())
                .unwrap_or("?")
                .to_string();
            (who, b["order"].as_i64().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_is_bound_checked_restored_and_others_bindings_kept() {
    for version in ssoctl_sim::schema::known_versions() {
        let h = Harness::new(version).await;
        for group in ["staff", "finance"] {
            let (status, g) = call(&h, "POST", "core/groups/", Some(json!({"name": group}))).await;
            assert_eq!(status, 201, "{version}: {g}");
        }
        let (status, alice) = call(
            &h,
            "POST",
            "core/users/",
            Some(json!({"username": "alice", "name": "Alice"})),
        )
        .await;
        assert_eq!(status, 201, "{version}: {alice}");

        set_access(&h, &["staff"], &["alice"]);
        let reports = h.fix(&["grafana"]).await;
        assert_all_ok(&reports);
        let r = report(&reports, "grafana");
        assert!(
            r.changes
                .iter()
                .any(|c| c == "bound group `staff` to application `grafana`")
                && r.changes
                    .iter()
                    .any(|c| c == "bound user `alice` to application `grafana`"),
            "{version}: {r:?}"
        );
        let mut bound = bindings(&h).await;
        bound.sort();
        assert_eq!(
            bound,
            [("alice".to_string(), 10_500), ("staff".to_string(), 10_000)],
            "{version}"
        );
        let reports = h.check(&["grafana"]).await;
        assert_all_ok(&reports);
        assert!(
            report(&reports, "grafana").warnings.is_empty(),
            "{version}: {reports:?}"
        );
        // Without sso.access, check says the application is open to everyone (for auditors).
        let open = h.check(&["n8n"]).await;
        assert_eq!(
            report(&open, "n8n").warnings,
            ["open to every Authentik user (no sso.access)"],
            "{version}"
        );
        // Authentik's own decision follows: alice may use it, akadmin (in neither) may not.
        let (_, ok) = call(
            &h,
            "GET",
            &format!("core/applications/grafana/check_access/?for_user={}", alice["pk"]),
            None,
        )
        .await;
        assert_eq!(ok["passing"], true, "{version}: {ok}");
        let (_, admin) = call(&h, "GET", "core/applications/grafana/check_access/?for_user=1", None).await;
        assert_eq!(admin["passing"], false, "{version}: {admin}");

        // A binding removed by hand is drift, and fix restores it.
        let (_, app) = call(&h, "GET", "core/applications/grafana/", None).await;
        let target = app["pk"].as_str().unwrap().to_string();
        let (_, list) = call(&h, "GET", &format!("policies/bindings/?target={target}"), None).await;
        let staff_binding = list["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["group_obj"]["name"] == "staff")
            .unwrap()["pk"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, _) = call(&h, "DELETE", &format!("policies/bindings/{staff_binding}/"), None).await;
        assert_eq!(status, 204, "{version}");
        let reports = h.check(&["grafana"]).await;
        assert_eq!(
            kinds(report(&reports, "grafana")),
            ["access-binding-missing"],
            "{version}: {reports:?}"
        );
        assert_all_ok(&h.fix(&["grafana"]).await);
        assert_all_ok(&h.check(&["grafana"]).await);

        // A binding an administrator added is reported and kept, by check and by fix.
        let finance = h
            .sim
            .with_world(|w| w.groups.iter().find(|g| g.name == "finance").unwrap().pk.clone());
        let (status, added) = call(
            &h,
            "POST",
            "policies/bindings/",
            Some(json!({"target": target, "group": finance, "order": 0})),
        )
        .await;
        assert_eq!(status, 201, "{version}: {added}");
        let reports = h.check(&["grafana"]).await;
        let r = report(&reports, "grafana");
        assert!(r.findings.is_empty(), "{version}: {r:?}");
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("a binding ssoctl did not make, kept: group `finance` (order 0)")),
            "{version}: {r:?}"
        );
        assert_all_ok(&h.fix(&["grafana"]).await);
        assert!(
            bindings(&h).await.contains(&("finance".to_string(), 0)),
            "{version}: kept"
        );

        // A group dropped from sso.access: ssoctl's binding is extra, and fix removes only it.
        set_access(&h, &[], &["alice"]);
        let reports = h.check(&["grafana"]).await;
        assert_eq!(
            kinds(report(&reports, "grafana")),
            ["access-binding-extra"],
            "{version}: {reports:?}"
        );
        assert_all_ok(&h.fix(&["grafana"]).await);
        let mut bound = bindings(&h).await;
        bound.sort();
        assert_eq!(
            bound,
            [("alice".to_string(), 10_500), ("finance".to_string(), 0)],
            "{version}"
        );

        // sso.access dropped from the manifest altogether: the binding ssoctl made is drift (the
        // application would otherwise stay restricted while check called it open), fix removes
        // only it, and check then names the binding that still decides.
        let text = h.manifest("grafana");
        let without = text.split("\n  access:").next().unwrap().trim_end().to_string();
        std::fs::write(h.manifest_path("grafana"), format!("{without}\n")).unwrap();
        let reports = h.check(&["grafana"]).await;
        let r = report(&reports, "grafana");
        assert_eq!(kinds(r), ["access-binding-extra"], "{version}: {r:?}");
        assert!(
            r.findings[0].message.contains("user `alice`") && r.findings[0].message.contains("no sso.access"),
            "{version}: {r:?}"
        );
        assert_all_ok(&h.fix(&["grafana"]).await);
        assert_eq!(bindings(&h).await, [("finance".to_string(), 0)], "{version}");
        let reports = h.check(&["grafana"]).await;
        assert_all_ok(&reports);
        assert_eq!(
            report(&reports, "grafana").warnings,
            [
                "no sso.access: who may use application `grafana` is decided by bindings ssoctl did not make: group \
              `finance` (order 0)"
            ],
            "{version}"
        );

        // A group that does not exist is a clear error, and nothing is bound for it.
        set_access(&h, &["nobody"], &[]);
        let reports = h.fix(&["grafana"]).await;
        let r = report(&reports, "grafana");
        let error = r.error.clone().unwrap_or_default();
        assert!(
            error.contains("group `nobody` (sso.access in")
                && error.contains("does not exist in Authentik: create it, or remove it from sso.access"),
            "{version}: {r:?}"
        );
        assert!(h.sim.take_violations().is_empty(), "{version}");
    }
}

/// `sso.access` that names nobody is refused before anything is registered (it would otherwise
/// read as no `sso.access`, an application open to every user).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_block_that_names_nobody_is_refused() {
    let h = Harness::new("2026.8.3").await;
    let text = h.manifest("grafana");
    std::fs::write(
        h.manifest_path("grafana"),
        format!("{}\n  access:\n    groups: []\n", text.trim_end()),
    )
    .unwrap();
    let out = ssoctl(h.root(), &["check", "grafana"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("sso.access lists no group or user, so nobody could log in"),
        "{stdout}{stderr}"
    );
}

/// `export --blueprint` carries the access bindings, identified by application and subject, with
/// the orders `ensure-access` gives its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blueprint_carries_the_access_bindings() {
    let h = Harness::new("2026.8.3").await;
    let (status, _) = call(&h, "POST", "core/groups/", Some(json!({"name": "staff"}))).await;
    assert_eq!(status, 201);
    set_access(&h, &["staff"], &["akadmin"]);
    let out = ssoctl(h.root(), &["export", "--blueprint", "grafana"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_yaml::Value = serde_yaml::from_str(&stdout).unwrap();
    let bindings: Vec<&serde_yaml::Value> = doc["entries"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|e| e["model"] == "authentik_policies.policybinding")
        .collect();
    assert_eq!(bindings.len(), 2, "{stdout}");
    assert!(stdout.contains("id: access-grafana-group-staff"), "{stdout}");
    assert!(stdout.contains("authentik_core.group"), "{stdout}");
    assert!(
        stdout.contains("order: 10000") && stdout.contains("order: 10500"),
        "{stdout}"
    );
}

/// `ssoctl access`: the users × applications matrix agrees with Authentik's own check on every
/// cell (`--verify` asks it for each), on every release: parents' bindings admit their children's
/// members, user bindings their user, an application without bindings everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_matrix_agrees_with_authentik_on_every_cell() {
    for version in ssoctl_sim::schema::known_versions() {
        let h = Harness::new(version).await;
        let (_, staff) = call(&h, "POST", "core/groups/", Some(json!({"name": "staff"}))).await;
        let staff_pk = staff["pk"].as_str().unwrap().to_string();
        let (_, alice) = call(
            &h,
            "POST",
            "core/users/",
            Some(json!({"username": "alice", "name": ""})),
        )
        .await;
        let (status, _) = call(&h, "POST", "core/users/", Some(json!({"username": "bob", "name": ""}))).await;
        assert_eq!(status, 201, "{version}");
        let child = if version.starts_with("2025.12") || version.starts_with("2026") {
            json!({"name": "finance", "parents": [staff_pk], "users": [alice["pk"]]})
        } else {
            json!({"name": "finance", "parent": staff_pk, "users": [alice["pk"]]})
        };
        let (status, finance) = call(&h, "POST", "core/groups/", Some(child)).await;
        assert_eq!(status, 201, "{version}: {finance}");
        set_access(&h, &["staff"], &[]);
        let text = h.manifest("n8n");
        std::fs::write(
            h.manifest_path("n8n"),
            format!("{}\n  access:\n    users: [bob]\n", text.trim_end()),
        )
        .unwrap();
        assert_all_ok(&h.fix(&["grafana", "n8n", "redmine", "outline"]).await);
        // Outline gets a policy besides a group: a policy ssoctl cannot evaluate, so its cells
        // are Authentik's own answers (a dummy policy that refuses, `any` mode: staff pass).
        let (status, deny) = call(
            &h,
            "POST",
            "policies/dummy/",
            Some(json!({"name": "deny", "result": false, "wait_min": 0, "wait_max": 1})),
        )
        .await;
        assert_eq!(status, 201, "{version}: {deny}");
        let (_, outline) = call(&h, "GET", "core/applications/outline/", None).await;
        for binding in [
            json!({"target": outline["pk"], "policy": deny["pk"], "order": 0}),
            json!({"target": outline["pk"], "group": staff_pk, "order": 1}),
        ] {
            let (status, b) = call(&h, "POST", "policies/bindings/", Some(binding)).await;
            assert_eq!(status, 201, "{version}: {b}");
        }

        let out = ssoctl(h.root(), &["--json", "access", "--verify"]).await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(0), "{version}: {stdout}");
        let doc: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(doc["disagreements"], json!([]), "{version}");
        let cell = |user: &str, app: &str| {
            doc["cells"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["user"] == user && c["application"] == app)
                .unwrap_or_else(|| panic!("{version}: no cell {user} {app}"))
                .clone()
        };
        assert_eq!(cell("alice", "grafana")["allowed"], true, "{version}");
        assert_eq!(cell("alice", "grafana")["reason"], "group staff", "{version}");
        assert_eq!(cell("bob", "grafana")["allowed"], false, "{version}");
        assert_eq!(cell("akadmin", "grafana")["allowed"], false, "{version}");
        assert_eq!(cell("bob", "n8n")["allowed"], true, "{version}");
        assert_eq!(cell("alice", "n8n")["allowed"], false, "{version}");
        assert_eq!(cell("alice", "redmine")["allowed"], true, "{version}");
        assert_eq!(
            cell("alice", "redmine")["reason"],
            "no bindings: open to every user",
            "{version}"
        );
        assert_eq!(cell("alice", "redmine")["source"], "bindings", "{version}");
        // Asked of Authentik, with the policies' own messages as the reason.
        assert_eq!(cell("alice", "outline")["allowed"], true, "{version}");
        assert_eq!(cell("alice", "outline")["source"], "authentik", "{version}");
        assert_eq!(cell("bob", "outline")["allowed"], false, "{version}");
        assert_eq!(cell("bob", "outline")["reason"], "dummy", "{version}");
        assert_eq!(cell("bob", "grafana")["source"], "bindings", "{version}");

        let out = ssoctl(h.root(), &["access", "--csv", "--user", "alice", "--app", "grafana"]).await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "user,application,allowed,reason,source\nalice,grafana,true,group staff,bindings\n",
            "{version}"
        );
        let out = ssoctl(h.root(), &["access", "--user", "nobody"]).await;
        assert_eq!(out.status.code(), Some(2), "{version}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no user `nobody` in Authentik"));
        assert!(h.sim.take_violations().is_empty(), "{version}");
    }
}
