//! `ssoctl access`: who may use which application, users × applications, as Authentik decides it,
//! for compliance reviews. Read-only.
//!
//! Where only group and user bindings decide an application, the matrix is computed from a
//! handful of lists (applications, users, groups with their members and parents, bindings) the
//! way Authentik's policy engine decides it (docs/authentik-api.md §6): no enabled binding
//! admits everyone; a group binding admits the members of the group and of its descendants; a
//! user binding its user; `negate` inverts a binding; `policy_engine_mode` `any` needs one
//! passing binding, `all` every one. An application with any other binding (an expression
//! policy, reputation, …) is asked of Authentik itself, user by user
//! (`check_access?for_user=`), with bounded concurrency. Each cell says which way it was decided
//! and why.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::session::Session;

/// Requests to `check_access` in flight at once, for applications decided by other policies.
const ASKED_AT_ONCE: usize = 8;

/// One cell of the matrix.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cell {
    pub user: String,
    pub application: String,
    pub allowed: bool,
    /// Why: `no bindings: open to every user`, `group staff`, `user binding`, `not in staff`, …
    pub reason: String,
    /// `bindings` (computed from the lists) or `authentik` (Authentik's own check).
    pub source: &'static str,
}

#[derive(Debug, Deserialize)]
struct App {
    pk: String,
    slug: String,
    #[serde(default = "any")]
    policy_engine_mode: String,
}

fn any() -> String {
    "any".to_string()
}

#[derive(Debug, Deserialize)]
struct User {
    pk: u64,
    username: String,
    #[serde(default)]
    r#type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Group {
    pk: String,
    name: String,
    #[serde(default)]
    users: Vec<u64>,
    /// Up to 2025.10: one parent.
    #[serde(default)]
    parent: Option<String>,
    /// From 2025.12: any number of parents.
    #[serde(default)]
    parents: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Binding {
    target: String,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    user: Option<u64>,
    #[serde(default)]
    negate: bool,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    order: i64,
}

fn yes() -> bool {
    true
}

/// The groups `user` belongs to for policy decisions: its direct groups and their ancestors.
fn all_groups(groups: &[Group], user: u64) -> Vec<&Group> {
    let mut found: Vec<&Group> = groups.iter().filter(|g| g.users.contains(&user)).collect();
    let mut i = 0;
    while i < found.len() {
        let parents: Vec<&String> = found[i].parent.iter().chain(&found[i].parents).collect();
        for parent in parents {
            if let Some(g) = groups.iter().find(|g| &g.pk == parent)
                && !found.iter().any(|f| f.pk == g.pk)
            {
                found.push(g);
            }
        }
        i += 1;
    }
    found
}

/// The decision for `user` on an application decided by group and user bindings only.
fn decide(app: &App, bindings: &[&Binding], groups: &[Group], user: &User) -> (bool, String) {
    if bindings.is_empty() {
        return (true, "no bindings: open to every user".to_string());
    }
    let mine = all_groups(groups, user.pk);
    let name_of = |pk: &str| {
        groups
            .iter()
            .find(|g| g.pk == pk)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| pk.to_string())
    };
    let results: Vec<(bool, String)> = bindings
        .iter()
        .map(|b| {
            let (raw, what) = match (&b.group, b.user) {
                (Some(g), _) => (mine.iter().any(|x| &x.pk == g), format!("group {}", name_of(g))),
                (None, Some(u)) => (
                    u == user.pk,
                    format!(
                        "user binding of {}",
                        if u == user.pk { "this user" } else { "another user" }
                    ),
                ),
                (None, None) => (false, "empty binding".to_string()),
            };
            let passed = raw != b.negate;
            let negated = if b.negate { "not " } else { "" };
            (passed, format!("{negated}{what}"))
        })
        .collect();
    let all = app.policy_engine_mode == "all";
    let allowed = if all {
        results.iter().all(|(p, _)| *p)
    } else {
        results.iter().any(|(p, _)| *p)
    };
    let reason = if allowed == all {
        // `all` allowed, or `any` refused: every binding counted.
        let verdict = if allowed {
            "passes every binding"
        } else {
            "passes no binding"
        };
        format!(
            "{verdict} ({})",
            results.iter().map(|(_, w)| w.as_str()).collect::<Vec<_>>().join(", ")
        )
    } else {
        // The first binding that decided it, in order.
        let deciding = results
            .iter()
            .find(|(p, _)| *p == allowed)
            .map(|(_, w)| w.clone())
            .unwrap_or_default();
        if allowed { deciding } else { format!("fails {deciding}") }
    };
    (allowed, reason)
}

/// What `matrix` found: the cells, and with `verify`, every computed cell Authentik's own check
/// decided otherwise.
pub struct Matrix {
    pub cells: Vec<Cell>,
    pub disagreements: Vec<String>,
}

/// The matrix, optionally for one user and/or one application. With `verify`, Authentik's own
/// check is asked for every cell too, and a computed cell it contradicts is a disagreement.
/// `progress` is told how many `check_access` requests there will be, then each one done.
pub async fn matrix(
    session: &Session,
    only_user: Option<&str>,
    only_app: Option<&str>,
    verify: bool,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Matrix> {
    session.preflight(&[]).await?;
    let ak = session.authentik();
    let (apps, users, groups, bindings) = tokio::try_join!(
        ak.list::<App>("core/applications/", &[]),
        ak.list::<User>("core/users/", &[]),
        ak.list::<Group>("core/groups/", &[]),
        ak.list::<Binding>("policies/bindings/", &[]),
    )?;
    let apps: Vec<App> = apps
        .into_iter()
        .filter(|a| only_app.is_none_or(|s| s == a.slug))
        .collect();
    // Logins are people's: the accounts Authentik's outposts use are not.
    let users: Vec<User> = users
        .into_iter()
        .filter(|u| u.r#type.as_deref() != Some("internal_service_account"))
        .filter(|u| only_user.is_none_or(|n| n == u.username))
        .collect();
    if let Some(slug) = only_app.filter(|_| apps.is_empty()) {
        return Err(crate::error::Error::Config(format!(
            "no application `{slug}` in Authentik"
        )));
    }
    if let Some(name) = only_user.filter(|_| users.is_empty()) {
        return Err(crate::error::Error::Config(format!("no user `{name}` in Authentik")));
    }
    let mut by_target: BTreeMap<&str, Vec<&Binding>> = BTreeMap::new();
    for b in bindings.iter().filter(|b| b.enabled) {
        by_target.entry(b.target.as_str()).or_default().push(b);
    }
    for list in by_target.values_mut() {
        list.sort_by_key(|b| b.order);
    }
    let mut cells = Vec::new();
    let mut asked: Vec<(&App, &User)> = Vec::new();
    for app in &apps {
        let bound = by_target.get(app.pk.as_str()).cloned().unwrap_or_default();
        let policies = bound.iter().any(|b| b.policy.is_some());
        if policies || verify {
            asked.extend(users.iter().map(|u| (app, u)));
        }
        if policies {
            continue;
        }
        for user in &users {
            let (allowed, reason) = decide(app, &bound, &groups, user);
            cells.push(Cell {
                user: user.username.clone(),
                application: app.slug.clone(),
                allowed,
                reason,
                source: "bindings",
            });
        }
    }
    let total = asked.len() as u64;
    progress(0, total);
    let done = std::sync::atomic::AtomicU64::new(0);
    let answers: Vec<Result<Cell>> = futures::stream::iter(asked)
        .map(|(app, user)| {
            let done = &done;
            async move {
                let answer: Value = ak
                    .get(
                        &format!("core/applications/{}/check_access/", app.slug),
                        &[("for_user", user.pk.to_string())],
                    )
                    .await?;
                progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, total);
                let allowed = answer["passing"].as_bool().unwrap_or(false);
                let messages: Vec<&str> = answer["messages"]
                    .as_array()
                    .map(|m| m.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let reason = if messages.is_empty() {
                    "decided by Authentik's policies".to_string()
                } else {
                    messages.join("; ")
                };
                Ok(Cell {
                    user: user.username.clone(),
                    application: app.slug.clone(),
                    allowed,
                    reason,
                    source: "authentik",
                })
            }
        })
        .buffer_unordered(ASKED_AT_ONCE)
        .collect()
        .await;
    let mut disagreements = Vec::new();
    for answer in answers {
        let answer = answer?;
        match cells
            .iter()
            .find(|c| c.user == answer.user && c.application == answer.application)
        {
            Some(computed) if computed.allowed != answer.allowed => disagreements.push(format!(
                "{} → {}: computed {} ({}), Authentik says {}",
                answer.user,
                answer.application,
                if computed.allowed { "allowed" } else { "refused" },
                computed.reason,
                if answer.allowed { "allowed" } else { "refused" }
            )),
            Some(_) => {}
            None => cells.push(answer),
        }
    }
    cells.sort_by(|a, b| (&a.user, &a.application).cmp(&(&b.user, &b.application)));
    Ok(Matrix { cells, disagreements })
}

/// The matrix as text: one row per user, one column per application (✓ / ✗), then the reasons.
pub fn lines(cells: &[Cell]) -> Vec<String> {
    let apps: BTreeSet<&str> = cells.iter().map(|c| c.application.as_str()).collect();
    let users: BTreeSet<&str> = cells.iter().map(|c| c.user.as_str()).collect();
    let width = users.iter().map(|u| u.chars().count()).max().unwrap_or(4).max(4);
    let mut out = vec![format!(
        "{:width$}  {}",
        "user",
        apps.iter().copied().collect::<Vec<_>>().join("  ")
    )];
    for user in &users {
        let marks: Vec<String> = apps
            .iter()
            .map(|app| {
                let mark = match cells.iter().find(|c| c.user == *user && c.application == *app) {
                    Some(c) if c.allowed => "✓",
                    Some(_) => "✗",
                    None => "·",
                };
                format!("{mark:<w$}", w = app.chars().count())
            })
            .collect();
        out.push(format!("{user:width$}  {}", marks.join("  ")).trim_end().to_string());
    }
    out.push(String::new());
    for c in cells {
        let mark = if c.allowed { "✓" } else { "✗" };
        let via = if c.source == "authentik" {
            " [Authentik's check]"
        } else {
            ""
        };
        out.push(format!("{mark} {} → {}: {}{via}", c.user, c.application, c.reason));
    }
    out
}

/// The matrix as CSV (`user,application,allowed,reason,source`), fields quoted where needed.
pub fn csv(cells: &[Cell]) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from("user,application,allowed,reason,source\n");
    for c in cells {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            field(&c.user),
            field(&c.application),
            c.allowed,
            field(&c.reason),
            c.source
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(pk: &str, users: &[u64], parents: &[&str]) -> Group {
        Group {
            pk: pk.into(),
            name: pk.into(),
            users: users.to_vec(),
            parent: None,
            parents: parents.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn binding(group: Option<&str>, user: Option<u64>, negate: bool, order: i64) -> Binding {
        Binding {
            target: "app".into(),
            policy: None,
            group: group.map(str::to_string),
            user,
            negate,
            enabled: true,
            order,
        }
    }

    #[test]
    fn the_policy_engine_rules() {
        let groups = vec![group("staff", &[], &[]), group("finance", &[2], &["staff"])];
        let app = |mode: &str| App {
            pk: "app".into(),
            slug: "app".into(),
            policy_engine_mode: mode.into(),
        };
        let alice = User {
            pk: 2,
            username: "alice".into(),
            r#type: None,
        };
        let bob = User {
            pk: 3,
            username: "bob".into(),
            r#type: None,
        };
        // No binding: everyone.
        assert!(decide(&app("any"), &[], &groups, &bob).0);
        // A parent's binding admits the members of its children, not others.
        let staff = binding(Some("staff"), None, false, 0);
        assert_eq!(
            decide(&app("any"), &[&staff], &groups, &alice),
            (true, "group staff".into())
        );
        assert!(!decide(&app("any"), &[&staff], &groups, &bob).0);
        // Negated; and `all` needs every binding.
        let not_finance = binding(Some("finance"), None, true, 1);
        assert!(decide(&app("any"), &[&not_finance], &groups, &bob).0);
        assert!(!decide(&app("any"), &[&not_finance], &groups, &alice).0);
        let user_bob = binding(None, Some(3), false, 2);
        assert!(!decide(&app("all"), &[&staff, &user_bob], &groups, &bob).0);
        assert!(decide(&app("any"), &[&staff, &user_bob], &groups, &bob).0);
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let cells = vec![Cell {
            user: "a,b".into(),
            application: "app".into(),
            allowed: true,
            reason: "say \"hi\"".into(),
            source: "bindings",
        }];
        assert_eq!(
            csv(&cells),
            "user,application,allowed,reason,source\n\"a,b\",app,true,\"say \"\"hi\"\"\",bindings\n"
        );
    }
}
