//! `sso.roles`, `sso.default_role` and `sso.roles_claim`: which Authentik groups give which of the
//! service's roles (docs/manifest.md, "Roles").
//!
//! The flows render the list for the service (`{roles_jmespath}` for Grafana, `{roles_by_group_json}`
//! for Flask-AppBuilder). A service that reads role *values* from a claim (Redmine's
//! `redmine_oauth` plugin wants `admin` or `user` in it) gets `sso.roles_claim`: a scope mapping
//! whose expression ssoctl writes from the same list. It is derived here, at load, from the
//! operator's file and added to the declared scope mappings and to the settings the flow
//! receives, so it passes the same verbatim check as a mapping the operator wrote by hand: no
//! flow can make Authentik run anything else.

/// One `sso.roles` entry: the role, and the groups whose members get it.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleEntry {
    pub role: String,
    pub groups: Vec<String>,
}

/// The manifest's roles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeclaredRoles {
    pub entries: Vec<RoleEntry>,
    pub default: Option<String>,
    /// `sso.roles_claim`: the claim (and scope) that carries the role values.
    pub claim: Option<String>,
}

impl DeclaredRoles {
    /// Reads the roles from the flattened `sso:` settings; `None` when there are none.
    pub fn parse(settings: &[(String, String)]) -> Result<Option<Self>, String> {
        let get = |key: &str| {
            settings
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut entries: Vec<(usize, RoleEntry)> = Vec::new();
        for (key, value) in settings {
            let Some(rest) = key.strip_prefix("roles.") else {
                continue;
            };
            let (index, field) = rest.split_once('.').unwrap_or((rest, ""));
            let Ok(index) = index.parse::<usize>() else {
                return Err(format!(
                    "sso.{key}: sso.roles is a list of {{role: NAME, groups: [GROUP, ...]}}"
                ));
            };
            let at = match entries.iter().position(|(i, _)| *i == index) {
                Some(at) => at,
                None => {
                    entries.push((
                        index,
                        RoleEntry {
                            role: String::new(),
                            groups: Vec::new(),
                        },
                    ));
                    entries.len() - 1
                }
            };
            let entry = &mut entries[at].1;
            if field == "role" {
                entry.role = value.trim().to_string();
            } else if field
                .strip_prefix("groups.")
                .is_some_and(|i| i.parse::<usize>().is_ok())
            {
                entry.groups.push(value.trim().to_string());
            } else {
                return Err(format!("sso.{key}: a role entry takes `role` and `groups`"));
            }
        }
        entries.sort_by_key(|(i, _)| *i);
        let entries: Vec<RoleEntry> = entries.into_iter().map(|(_, e)| e).collect();
        let default = get("default_role");
        let claim = get("roles_claim");
        if entries.is_empty() {
            if default.is_some() || claim.is_some() {
                return Err("sso.default_role and sso.roles_claim need sso.roles".to_string());
            }
            return Ok(None);
        }
        for (i, e) in entries.iter().enumerate() {
            if e.role.is_empty() {
                return Err(format!("sso.roles entry {i} needs `role`"));
            }
            if e.groups.is_empty() || e.groups.iter().any(String::is_empty) {
                return Err(format!(
                    "sso.roles: role `{}` needs `groups`, the Authentik groups whose members get it",
                    e.role
                ));
            }
            if entries[..i].iter().any(|o| o.role == e.role) {
                return Err(format!("sso.roles: role `{}` is listed twice", e.role));
            }
        }
        if let Some(c) = &claim
            && !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            return Err(format!(
                "sso.roles_claim `{c}` must be a claim name of letters, digits and `_`"
            ));
        }
        Ok(Some(DeclaredRoles {
            entries,
            default,
            claim,
        }))
    }

    /// Every group the roles name, once each, in manifest order.
    pub fn groups(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for e in &self.entries {
            for g in &e.groups {
                if !out.iter().any(|(name, _)| name == g) {
                    out.push((g, &e.role));
                }
            }
        }
        out
    }

    /// The scope mapping of `sso.roles_claim`: scope and claim of that name, the user's roles in
    /// manifest order (every role one of their groups gives), or the default role when none does.
    /// Groups are the user's own, as in Authentik's `groups` claim (`ak_groups`). Returns the
    /// scope and the expression.
    pub fn claim_mapping(&self) -> Option<(String, String)> {
        let claim = self.claim.as_ref()?;
        let table: Vec<String> = self
            .entries
            .iter()
            .map(|e| {
                let groups: Vec<String> = e.groups.iter().map(|g| py_string(g)).collect();
                format!("({}, [{}])", py_string(&e.role), groups.join(", "))
            })
            .collect();
        let fallback = match &self.default {
            Some(d) => format!(" or [{}]", py_string(d)),
            None => String::new(),
        };
        let expression = format!(
            "# Written by ssoctl from sso.roles: change the manifest, not this mapping.\n\
             member_of = {{group.name for group in request.user.ak_groups.all()}}\n\
             roles = [role for role, groups in [{}] if member_of.intersection(groups)]\n\
             return {{{}: roles{fallback}}}",
            table.join(", "),
            py_string(claim),
        );
        Some((claim.clone(), expression))
    }
}

/// A Python string literal: JSON's escapes (`\"`, `\\`, `\n`, `\u0001`) are Python's too.
fn py_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn roles_read_in_order_and_the_claim_mapping_lists_them() {
        let r = DeclaredRoles::parse(&pairs(&[
            ("roles.1.role", "user"),
            ("roles.1.groups.0", "staff"),
            ("roles.0.role", "admin"),
            ("roles.0.groups.0", "admins"),
            ("roles.0.groups.1", "ops \"on call\""),
            ("default_role", "user"),
            ("roles_claim", "redmine_roles"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.entries[0].role, "admin");
        assert_eq!(
            r.groups(),
            [("admins", "admin"), ("ops \"on call\"", "admin"), ("staff", "user")]
        );
        let (scope, expression) = r.claim_mapping().unwrap();
        assert_eq!(scope, "redmine_roles");
        assert!(
            expression.ends_with(
                "roles = [role for role, groups in [(\"admin\", [\"admins\", \"ops \\\"on call\\\"\"]), \
                 (\"user\", [\"staff\"])] if member_of.intersection(groups)]\nreturn {\"redmine_roles\": roles or \
                 [\"user\"]}"
            ),
            "{expression}"
        );
    }

    #[test]
    fn incomplete_roles_are_refused() {
        for (p, want) in [
            (vec![("roles.0.groups.0", "a")], "needs `role`"),
            (vec![("roles.0.role", "Admin")], "needs `groups`"),
            (vec![("default_role", "Viewer")], "need sso.roles"),
            (
                vec![("roles.0.role", "A"), ("roles.0.groups.0", "a"), ("roles.0.group", "b")],
                "takes `role` and `groups`",
            ),
            (
                vec![
                    ("roles.0.role", "A"),
                    ("roles.0.groups.0", "a"),
                    ("roles.1.role", "A"),
                    ("roles.1.groups.0", "b"),
                ],
                "listed twice",
            ),
            (
                vec![("roles.0.role", "A"), ("roles.0.groups.0", "a"), ("roles_claim", "x-y")],
                "letters, digits",
            ),
        ] {
            let err = DeclaredRoles::parse(&pairs(&p)).unwrap_err();
            assert!(err.contains(want), "{p:?}: {err}");
        }
        assert_eq!(DeclaredRoles::parse(&[]).unwrap(), None);
    }
}
