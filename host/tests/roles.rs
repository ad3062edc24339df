//! Group claims and role mapping (`sso.roles`): the sample stack's Grafana, Superset and Redmine
//! get their roles from the manifest, in the form each reads; the scope mapping ssoctl derives
//! for Redmine runs in Python as the plugin needs; a group Authentik does not have, roles nothing
//! passes on, and roles in a flow that cannot pass them are clear errors.

mod common;

use common::*;
use serde_json::Value;

/// The pk and stored expression of the scope mapping named `name`.
fn scope_mapping(h: &Harness, name: &str) -> (String, String) {
    h.sim.with_world(|w| {
        let m = w
            .scope_mappings
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no scope mapping `{name}`"));
        (m.pk.clone(), m.expression.clone())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_reach_each_service_in_the_form_it_reads() {
    for version in ssoctl_sim::schema::known_versions() {
        let h = Harness::new(version).await;
        let services = ["grafana", "superset", "redmine"];
        let reports = h.fix(&services).await;
        assert_all_ok(&reports);
        assert_eq!(
            h.env_value("GF_AUTH_GENERIC_OAUTH_ROLE_ATTRIBUTE_PATH").unwrap(),
            "contains(groups[*], 'authentik Admins') && 'Admin' || 'Viewer'",
            "{version}"
        );
        let mapping: Value = serde_json::from_str(&h.env_value("SUPERSET_AUTH_ROLES_MAPPING").unwrap()).unwrap();
        assert_eq!(mapping, serde_json::json!({"authentik Admins": ["Admin"]}), "{version}");
        assert_eq!(h.env_value("SUPERSET_AUTH_USER_REGISTRATION_ROLE").unwrap(), "Gamma");

        // Redmine's claim: a scope mapping written from sso.roles, on Redmine's provider.
        let (pk, expression) = scope_mapping(&h, "ssoctl redmine redmine_roles");
        assert!(
            expression.contains("[(\"admin\", [\"authentik Admins\"])]"),
            "{version}: {expression}"
        );
        let (_, provider) = call(&h, "GET", "providers/oauth2/?name=redmine", None).await;
        let mappings = &provider["results"][0]["property_mappings"];
        assert!(
            mappings
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == &Value::String(pk.clone())),
            "{version}: {provider:#}"
        );
        // Converged: a second check finds nothing, a second fix changes nothing.
        assert_all_ok(&h.check(&services).await);
        let again = h.fix(&services).await;
        for r in &again {
            assert!(r.changes.is_empty(), "{version}: {r:?}");
        }

        // Changing the roles in the manifest is drift in .env until fix writes it.
        let text = h.manifest("grafana");
        std::fs::write(
            h.manifest_path("grafana"),
            text.replace("default_role: Viewer", "default_role: Editor"),
        )
        .unwrap();
        let reports = h.check(&["grafana"]).await;
        assert_eq!(
            kinds(report(&reports, "grafana")),
            ["env-mismatch"],
            "{version}: {reports:?}"
        );
        assert_all_ok(&h.fix(&["grafana"]).await);
        assert!(
            h.env_value("GF_AUTH_GENERIC_OAUTH_ROLE_ATTRIBUTE_PATH")
                .unwrap()
                .ends_with("|| 'Editor'"),
            "{version}"
        );
        let violations = h.sim.take_violations();
        assert!(violations.is_empty(), "{version}: {violations:?}");
    }
}

/// The expression ssoctl writes for `sso.roles_claim` does what the Redmine plugin needs when
/// Python runs it the way Authentik does (inside a function, `request.user.ak_groups.all()`):
/// `admin` for a member of the admin group, the default role for everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_claim_runs_in_python() {
    let h = Harness::new("2026.8.3").await;
    assert_all_ok(&h.fix(&["redmine"]).await);
    let (_, expression) = scope_mapping(&h, "ssoctl redmine redmine_roles");
    let body: String = expression.lines().map(|l| format!("    {l}\n")).collect();
    let program = format!(
        "import json, sys\n\
         class G:\n    def __init__(self, name): self.name = name\n\
         class Q:\n    def __init__(self, names): self.names = names\n    def all(self): return [G(n) for n in self.names]\n\
         class U:\n    def __init__(self, names): self.ak_groups = Q(names)\n\
         class R:\n    def __init__(self, names): self.user = U(names)\n\
         def handler(request):\n{body}\
         print(json.dumps([handler(R(g)) for g in json.loads(sys.argv[1])]))\n"
    );
    let cases = r#"[["authentik Admins"], ["staff"], [], ["staff", "authentik Admins"]]"#;
    let out = match std::process::Command::new("python3")
        .args(["-c", &program, cases])
        .output()
    {
        Ok(out) => out,
        Err(e) if std::env::var_os("SSOCTL_REQUIRE_NON_RUST_TESTS").is_none() => {
            eprintln!("SKIPPED the_roles_claim_runs_in_python: python3 not found ({e})");
            return;
        }
        Err(e) => panic!("python3 is required here (SSOCTL_REQUIRE_NON_RUST_TESTS): {e}"),
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got,
        serde_json::json!([
            {"redmine_roles": ["admin"]},
            {"redmine_roles": ["user"]},
            {"redmine_roles": ["user"]},
            {"redmine_roles": ["admin"]},
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_nobody_receives_are_clear_errors() {
    let h = Harness::new("2026.8.3").await;
    // A group Authentik does not have: the role would go to nobody.
    let grafana = h.manifest("grafana");
    std::fs::write(
        h.manifest_path("grafana"),
        grafana.replace("groups: [\"authentik Admins\"]", "groups: [\"grafana-admins\"]"),
    )
    .unwrap();
    let reports = h.fix(&["grafana"]).await;
    let error = report(&reports, "grafana").error.clone().unwrap_or_default();
    assert!(
        error.contains("group `grafana-admins` (role `Admin` in sso.roles")
            && error.contains("does not exist in Authentik: create it, or remove it from sso.roles"),
        "{error}"
    );

    // Roles no .env value renders and no claim carries.
    let superset = h.manifest("superset");
    std::fs::write(
        h.manifest_path("superset"),
        superset.replace("    SUPERSET_AUTH_ROLES_MAPPING: \"{roles_by_group_json}\"\n", ""),
    )
    .unwrap();
    let reports = h.fix(&["superset"]).await;
    let error = report(&reports, "superset").error.clone().unwrap_or_default();
    assert!(error.contains("sso.roles (1 roles) reaches no .env value"), "{error}");
    // Nothing was registered for it: the check runs before any write.
    let (status, _) = call(&h, "GET", "core/applications/superset/", None).await;
    assert_eq!(status, 404);

    // Rendered over `groups` without the scope that carries it.
    std::fs::write(
        h.manifest_path("grafana"),
        grafana.replace("scopes: [openid, email, profile]", "scopes: [openid, email]"),
    )
    .unwrap();
    let reports = h.fix(&["grafana"]).await;
    let error = report(&reports, "grafana").error.clone().unwrap_or_default();
    assert!(error.contains("Authentik sends in the `profile` scope"), "{error}");

    // A flow that cannot hand roles to its service says so, and where the groups go instead.
    let zammad = h.manifest("zammad");
    std::fs::write(
        h.manifest_path("zammad"),
        format!(
            "{}\n  roles:\n    - role: Admin\n      groups: [\"authentik Admins\"]\n",
            zammad.trim_end()
        ),
    )
    .unwrap();
    let reports = h.fix(&["zammad"]).await;
    let error = report(&reports, "zammad").error.clone().unwrap_or_default();
    assert!(
        error.contains("sso.roles is not supported here") && error.contains("http://schemas.xmlsoap.org/claims/Group"),
        "{error}"
    );
}

/// `sso.roles` is read when the stack loads: a malformed list is refused with the manifest's
/// line, before any service runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_roles_are_refused_at_load() {
    let h = Harness::new("2026.8.3").await;
    let grafana = h.manifest("grafana");
    std::fs::write(
        h.manifest_path("grafana"),
        grafana.replace("      groups: [\"authentik Admins\"]\n", ""),
    )
    .unwrap();
    let out = ssoctl(h.root(), &["check", "grafana", "n8n"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sso.roles: role `Admin` needs `groups`, the Authentik groups whose members get it"),
        "{stdout}"
    );
    // Only grafana is refused; n8n is checked.
    assert!(stdout.contains("n8n"), "{stdout}");
}
