//! `sso.roles`: which Authentik groups give which of the service's roles, rendered in the form the
//! service reads from `.env`.
//!
//! ```yaml
//! sso:
//!   roles:                     # first match wins
//!     - {role: Admin, groups: [admins]}
//!     - {role: Editor, groups: [staff, finance]}
//!   default_role: Viewer       # optional: everyone else who may log in
//! ```
//!
//! Authentik sends a user's group names as the `groups` claim of the `profile` scope (its default
//! mapping `goauthentik.io/providers/oauth2/scope-profile`). A service that needs the role values
//! themselves in a claim gets `sso.roles_claim`, a scope mapping the host derives from the same
//! list (docs/manifest.md, "Roles"). The host checks that every group exists.

use crate::{FlowError, Settings};

/// The placeholders `sso.env` templates may use for the roles, besides the OAuth ones.
pub const PLACEHOLDERS: [&str; 3] = ["roles_jmespath", "roles_by_group_json", "default_role"];

/// One `sso.roles` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    pub role: String,
    pub groups: Vec<String>,
}

/// The manifest's `sso.roles` and `sso.default_role`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Roles {
    pub entries: Vec<Role>,
    pub default: Option<String>,
}

impl Roles {
    /// Reads `sso.roles`; `None` when the manifest declares none.
    pub fn from_settings(settings: &Settings) -> Result<Option<Roles>, FlowError> {
        let mut entries = Vec::new();
        for item in settings.items("roles") {
            let item = Settings::new(&item);
            let role = item
                .get("role")
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| FlowError::Invalid("each sso.roles entry needs `role`".into()))?;
            let groups: Vec<String> = item
                .list("groups")
                .unwrap_or_default()
                .into_iter()
                .map(str::to_string)
                .collect();
            if groups.is_empty() {
                return Err(FlowError::Invalid(format!("sso.roles: role `{role}` lists no groups")));
            }
            entries.push(Role {
                role: role.to_string(),
                groups,
            });
        }
        let default = settings.get("default_role").map(str::to_string);
        if entries.is_empty() {
            return match default {
                Some(_) => Err(FlowError::Invalid("sso.default_role needs sso.roles".into())),
                None => Ok(None),
            };
        }
        Ok(Some(Roles { entries, default }))
    }

    /// Grafana's `role_attribute_path`: a JMESPath over the `groups` claim, first match wins,
    /// `'Admin'`-style literals; without a default role it yields nothing for everyone else
    /// (with `role_attribute_strict` Grafana then refuses the login).
    pub fn jmespath(&self) -> String {
        let mut parts: Vec<String> = self
            .entries
            .iter()
            .map(|e| {
                let tests: Vec<String> = e
                    .groups
                    .iter()
                    .map(|g| format!("contains(groups[*], {})", jmes_literal(g)))
                    .collect();
                let test = if tests.len() == 1 {
                    tests[0].clone()
                } else {
                    format!("({})", tests.join(" || "))
                };
                format!("{test} && {}", jmes_literal(&e.role))
            })
            .collect();
        if let Some(default) = &self.default {
            parts.push(jmes_literal(default));
        }
        parts.join(" || ")
    }

    /// Flask-AppBuilder's `AUTH_ROLES_MAPPING` (Superset): each group and the roles it gives, as
    /// JSON, in manifest order.
    pub fn by_group_json(&self) -> String {
        let mut map: Vec<(&str, Vec<&str>)> = Vec::new();
        for e in &self.entries {
            for g in &e.groups {
                match map.iter_mut().find(|(name, _)| name == g) {
                    Some((_, roles)) => roles.push(&e.role),
                    None => map.push((g, vec![&e.role])),
                }
            }
        }
        let body: Vec<String> = map
            .iter()
            .map(|(g, roles)| {
                let roles: Vec<String> = roles.iter().map(|r| json_string(r)).collect();
                format!("{}: [{}]", json_string(g), roles.join(", "))
            })
            .collect();
        format!("{{{}}}", body.join(", "))
    }

    /// The values of [`PLACEHOLDERS`], in that order.
    pub fn values(roles: Option<&Roles>) -> [(&'static str, String); 3] {
        let (jmespath, json, default) = match roles {
            Some(r) => (r.jmespath(), r.by_group_json(), r.default.clone().unwrap_or_default()),
            None => Default::default(),
        };
        [
            (PLACEHOLDERS[0], jmespath),
            (PLACEHOLDERS[1], json),
            (PLACEHOLDERS[2], default),
        ]
    }
}

/// Refuses `sso.roles` in a flow that has no way to hand roles to its service, so a manifest never
/// reads as if roles were mapped when nothing maps them.
pub fn unsupported(settings: &Settings, why: &str) -> Result<(), FlowError> {
    if settings.items("roles").is_empty() && settings.get("default_role").is_none() {
        return Ok(());
    }
    Err(FlowError::Invalid(format!("sso.roles is not supported here: {why}")))
}

/// A JMESPath raw string literal: `'...'` with `\` and `'` escaped.
fn jmes_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn sample() -> Roles {
        let p = pairs(&[
            ("roles.0.role", "Admin"),
            ("roles.0.groups.0", "admins"),
            ("roles.1.role", "Editor"),
            ("roles.1.groups.0", "staff"),
            ("roles.1.groups.1", "o'brien \"team\""),
            ("default_role", "Viewer"),
        ]);
        Roles::from_settings(&Settings::new(&p)).unwrap().unwrap()
    }

    #[test]
    fn grafana_path_tests_groups_in_order_with_the_default_last() {
        assert_eq!(
            sample().jmespath(),
            "contains(groups[*], 'admins') && 'Admin' || (contains(groups[*], 'staff') || \
             contains(groups[*], 'o\\'brien \"team\"')) && 'Editor' || 'Viewer'"
        );
    }

    #[test]
    fn fab_mapping_is_group_to_roles_json() {
        let json = sample().by_group_json();
        assert_eq!(
            json,
            r#"{"admins": ["Admin"], "staff": ["Editor"], "o'brien \"team\"": ["Editor"]}"#
        );
    }

    #[test]
    fn incomplete_roles_are_errors() {
        for p in [
            pairs(&[("roles.0.groups.0", "admins")]),
            pairs(&[("roles.0.role", "Admin")]),
            pairs(&[("default_role", "Viewer")]),
        ] {
            assert!(Roles::from_settings(&Settings::new(&p)).is_err(), "{p:?}");
        }
        assert_eq!(Roles::from_settings(&Settings::new(&[])).unwrap(), None);
    }
}
