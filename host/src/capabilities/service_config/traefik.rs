//! A Traefik dynamic-configuration file a flow writes for its service (the proxy flow's
//! forward-auth middleware and routers). Traefik's file provider watches the folder and applies
//! whatever it finds to every host it serves, so the host checks the file before it is staged:
//! only HTTP routers, middlewares and services named after the service, every router pinned by a
//! `Host(...)` matcher to the service's own hosts, and no Go template (Traefik renders file-provider
//! files as templates, which can read its environment).

use serde_yaml::Value;

/// Why `text` may not be written as the Traefik file of service `slug` with `hosts`.
pub fn check(text: &str, slug: &str, hosts: &[String]) -> Result<(), String> {
    if text.contains("{{") {
        return Err("Go template markers (`{{`) are refused: Traefik would render them with its environment".into());
    }
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("not YAML Traefik can read: {e}"))?;
    no_merge_keys(&doc)?;
    let top = match &doc {
        Value::Null => return Ok(()),
        Value::Mapping(m) => m,
        _ => return Err("a Traefik dynamic configuration is a mapping".into()),
    };
    for (key, value) in top {
        if key.as_str() != Some("http") {
            return Err(format!(
                "top-level `{}` is refused: a service's file may hold only `http` routers, middlewares and services",
                show(key)
            ));
        }
        let Some(http) = value.as_mapping() else {
            return Err("`http` must be a mapping".into());
        };
        for (section, items) in http {
            let section = section.as_str().unwrap_or_default();
            if !matches!(section, "routers" | "middlewares" | "services") {
                return Err(format!(
                    "`http.{section}` is refused (routers, middlewares and services only)"
                ));
            }
            let Some(items) = items.as_mapping() else {
                return Err(format!("`http.{section}` must be a mapping of names"));
            };
            for (name, body) in items {
                let name = name.as_str().unwrap_or_default();
                if name != slug && !name.starts_with(&format!("{slug}-")) {
                    return Err(format!(
                        "`http.{section}.{name}`: names must be `{slug}` or start with `{slug}-`, so no other \
                         service's definitions are replaced"
                    ));
                }
                if section == "routers" {
                    let rule = body.get("rule").and_then(Value::as_str).unwrap_or_default();
                    pinned_to_hosts(rule, hosts).map_err(|why| format!("router `{name}`: {why}"))?;
                }
            }
        }
    }
    Ok(())
}

fn show(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_default().trim().to_string()
}

/// YAML merge keys (`<<`) would let Traefik (which applies them) see fields this check did not.
fn no_merge_keys(v: &Value) -> Result<(), String> {
    match v {
        Value::Mapping(m) => {
            for (k, item) in m {
                if k.as_str() == Some("<<") {
                    return Err("YAML merge keys (`<<`) are refused".into());
                }
                no_merge_keys(item)?;
            }
            Ok(())
        }
        Value::Sequence(items) => items.iter().try_for_each(no_merge_keys),
        Value::Tagged(t) => no_merge_keys(&t.value),
        _ => Ok(()),
    }
}

/// The rule matches only requests for `hosts`: at its top level a conjunction (`&&`, no `||`)
/// one of whose terms is `Host(...)` naming only those hosts.
fn pinned_to_hosts(rule: &str, hosts: &[String]) -> Result<(), String> {
    let terms = top_level_conjuncts(rule)?;
    let pinned = terms.iter().any(|term| {
        let Some(args) = term.strip_prefix("Host(").and_then(|t| t.strip_suffix(')')) else {
            return false;
        };
        let Some(names) = quoted_list(args) else {
            return false;
        };
        !names.is_empty() && names.iter().all(|n| hosts.contains(&n.to_ascii_lowercase()))
    });
    if pinned {
        Ok(())
    } else {
        Err(format!(
            "rule `{rule}` is not limited to the service's own hosts ({}): it needs a top-level `Host(...)` term \
             joined with `&&` only",
            hosts.join(", ")
        ))
    }
}

/// Splits `rule` at top-level `&&`; a top-level `||` or unbalanced parentheses are errors.
fn top_level_conjuncts(rule: &str) -> Result<Vec<String>, String> {
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            current.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '`' | '"' | '\'' => {
                quote = Some(c);
                current.push(c);
            }
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("rule `{rule}` has unbalanced parentheses"));
                }
                current.push(c);
            }
            '|' if depth == 0 && chars.peek() == Some(&'|') => {
                return Err(format!(
                    "rule `{rule}` has a top-level `||`, which could match any host"
                ));
            }
            '&' if depth == 0 && chars.peek() == Some(&'&') => {
                chars.next();
                terms.push(current.trim().to_string());
                current.clear();
            }
            _ => current.push(c),
        }
    }
    if depth != 0 || quote.is_some() {
        return Err(format!("rule `{rule}` has unbalanced parentheses or quotes"));
    }
    terms.push(current.trim().to_string());
    Ok(terms)
}

/// `` `a`, "b" `` → `[a, b]`; `None` unless every item is one quoted string.
fn quoted_list(args: &str) -> Option<Vec<String>> {
    args.split(',')
        .map(|item| {
            let item = item.trim();
            let q = item.chars().next()?;
            if !matches!(q, '`' | '"') || item.len() < 2 || !item.ends_with(q) {
                return None;
            }
            let inner = &item[1..item.len() - 1];
            (!inner.contains(['`', '"', ','])).then(|| inner.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["adminer.example.org".to_string()]
    }

    fn file(rule: &str) -> String {
        format!(
            "http:\n  routers:\n    adminer:\n      rule: {}\n      service: adminer@docker\n",
            serde_json::json!(rule)
        )
    }

    #[test]
    fn own_host_routers_pass() {
        for rule in [
            "Host(`adminer.example.org`)",
            "Host(`ADMINER.example.org`) && PathPrefix(`/outpost.goauthentik.io/`)",
            "PathPrefix(`/x`) && Host(\"adminer.example.org\") && (Path(`/a`) || Path(`/b`))",
        ] {
            assert_eq!(check(&file(rule), "adminer", &hosts()), Ok(()), "{rule}");
        }
    }

    #[test]
    fn routers_reaching_other_hosts_are_refused() {
        for rule in [
            "Host(`auth.example.org`)",
            "Host(`adminer.example.org`) || Host(`auth.example.org`)",
            "Host(`adminer.example.org`) && PathPrefix(`/`) || PathPrefix(`/`)",
            "HostRegexp(`.+`)",
            "PathPrefix(`/`)",
            "!Host(`adminer.example.org`)",
            "(Host(`adminer.example.org`) || Host(`x.org`))",
            "Host(`adminer.example.org`, `auth.example.org`)",
            "Host(`adminer.example.org`))",
            "",
        ] {
            assert!(check(&file(rule), "adminer", &hosts()).is_err(), "{rule}");
        }
    }

    #[test]
    fn other_names_sections_templates_and_merges_are_refused() {
        let cases = [
            "http:\n  routers:\n    grafana:\n      rule: Host(`adminer.example.org`)\n",
            "tcp:\n  routers:\n    adminer:\n      rule: HostSNI(`*`)\n",
            "http:\n  serversTransports:\n    adminer: {}\n",
            "http:\n  middlewares:\n    adminer-x:\n      headers:\n        customRequestHeaders:\n          X: '{{ env \"AUTHENTIK_SECRET_KEY\" }}'\n",
            "base: &b\n  rule: Host(`x.org`)\nhttp:\n  routers:\n    adminer:\n      <<: *b\n",
        ];
        for text in cases {
            assert!(check(text, "adminer", &hosts()).is_err(), "{text}");
        }
    }
}
