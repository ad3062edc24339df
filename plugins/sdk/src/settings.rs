//! Read access to the manifest's `sso:` block, which the host hands over flattened to dotted keys.

/// The flattened `sso:` block: `scopes.0 = openid`, `env.GF_AUTH_GENERIC_OAUTH_CLIENT_ID = {client_id}`.
pub struct Settings<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Settings<'a> {
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Self { pairs }
    }

    /// The scalar at `key`, e.g. `client_type`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A boolean scalar (`true`/`false`); `default` when absent. Anything else is an error.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, crate::FlowError> {
        match self.get(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(crate::FlowError::Invalid(format!(
                "sso.{key} must be true or false, not `{other}`"
            ))),
        }
    }

    /// The list at `key` (`key.0`, `key.1`, ...), in order; `None` when the key is absent.
    pub fn list(&self, key: &str) -> Option<Vec<&'a str>> {
        let prefix = format!("{key}.");
        let mut items: Vec<(usize, &'a str)> = self
            .pairs
            .iter()
            .filter_map(|(k, v)| {
                let index = k.strip_prefix(&prefix)?.parse::<usize>().ok()?;
                Some((index, v.as_str()))
            })
            .collect();
        if items.is_empty() {
            return None;
        }
        items.sort_by_key(|(i, _)| *i);
        Some(items.into_iter().map(|(_, v)| v).collect())
    }

    /// The list of maps at `key` (`key.0.scope = ...`, `key.0.expression = ...`), in order; wrap
    /// each item in [`Settings::new`] to read it.
    pub fn items(&self, key: &str) -> Vec<Vec<(String, String)>> {
        let mut items: Vec<(usize, Vec<(String, String)>)> = Vec::new();
        let prefix = format!("{key}.");
        for (k, v) in self.pairs {
            let Some((index, field)) = k.strip_prefix(&prefix).and_then(|rest| rest.split_once('.')) else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            let field = (field.to_string(), v.clone());
            match items.iter_mut().find(|(i, _)| *i == index) {
                Some((_, fields)) => fields.push(field),
                None => items.push((index, vec![field])),
            }
        }
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, fields)| fields).collect()
    }

    /// The map at `key` (`key.NAME = value`), in manifest order; `None` when absent.
    pub fn map(&self, key: &str) -> Option<Vec<(&'a str, &'a str)>> {
        let prefix = format!("{key}.");
        let entries: Vec<(&'a str, &'a str)> = self
            .pairs
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?, v.as_str())))
            .filter(|(k, _)| !k.contains('.'))
            .collect();
        (!entries.is_empty()).then_some(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn lists_come_back_in_index_order() {
        let p = pairs(&[("scopes.1", "email"), ("scopes.0", "openid"), ("scopes.10", "x")]);
        let s = Settings::new(&p);
        assert_eq!(s.list("scopes").unwrap(), vec!["openid", "email", "x"]);
        assert_eq!(s.list("missing"), None);
    }

    #[test]
    fn maps_keep_manifest_order_and_skip_nested_keys() {
        let p = pairs(&[("env.B", "2"), ("env.A", "1"), ("env.C.x", "nested"), ("type", "oidc")]);
        let s = Settings::new(&p);
        assert_eq!(s.map("env").unwrap(), vec![("B", "2"), ("A", "1")]);
        assert_eq!(s.get("type"), Some("oidc"));
    }

    #[test]
    fn items_group_lists_of_maps() {
        let p = pairs(&[
            ("scope_mappings.1.scope", "b"),
            ("scope_mappings.0.scope", "a"),
            ("scope_mappings.0.expression", "return {}"),
        ]);
        let items = Settings::new(&p).items("scope_mappings");
        assert_eq!(items.len(), 2);
        let first = Settings::new(&items[0]);
        assert_eq!(
            (first.get("scope"), first.get("expression")),
            (Some("a"), Some("return {}"))
        );
        assert_eq!(Settings::new(&items[1]).get("scope"), Some("b"));
    }

    #[test]
    fn bool_rejects_garbage() {
        let p = pairs(&[("pkce", "yes")]);
        assert!(Settings::new(&p).bool("pkce", false).is_err());
        assert!(Settings::new(&p).bool("other", true).unwrap());
    }
}
