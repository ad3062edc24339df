//! Request shapes that depend on the server's release, built once here for apply, plan and
//! `export --blueprint` alike, so what a blueprint declares is what ssoctl would send.
//!
//! Redirect URIs: servers before 2024.8.5 / 2024.10.3 hold them as one string of regular
//! expressions, one per line, and match every line as a regex (CVE-2024-52289 changed that to
//! `{matching_mode, url}` entries): a strict URL sent to them is escaped, or `.` in its host
//! would match any character.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::authentik::RequestShapes;
use crate::bindings::sso::flow::types::{MatchMode, RedirectUri};
use crate::stack::declared::DEFAULT_GRANT_TYPES;

/// The `grant_types` of an OAuth2 provider, on servers that have the field (2026.5 and later;
/// created without it, a provider gets none and every login fails with "Invalid grant_type").
pub fn grant_types(caps: &RequestShapes, wanted: &[String]) -> Option<BTreeSet<String>> {
    caps.grant_types.then(|| {
        if wanted.is_empty() {
            DEFAULT_GRANT_TYPES.iter().map(|g| g.to_string()).collect()
        } else {
            wanted.iter().cloned().collect()
        }
    })
}

/// The field a SAML provider's issuer (IdP entity id) is sent in: `issuer_override` from
/// 2026.5, `issuer` before.
pub fn saml_issuer_field(caps: &RequestShapes) -> &'static str {
    if caps.saml_issuer_override {
        "issuer_override"
    } else {
        "issuer"
    }
}

/// Text as Authentik stores it: DRF's `CharField` strips leading and trailing whitespace
/// (`trim_whitespace`, on by default for every text field of its serializers; Python's
/// `str.strip` also counts U+001C..U+001F as whitespace).
pub fn stored_text(text: &str) -> String {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .to_string()
}

/// The SAML sign switches a request carries: both, on servers that have them (2024.8 and later;
/// older ones sign assertions whenever a keypair is set), none otherwise. Authentik checks a
/// keypair against the switches sent in the same request (`SAMLProviderSerializer.validate`),
/// so every request with `signing_kp` carries these.
pub fn saml_sign_switches(
    caps: &RequestShapes,
    sign_assertion: bool,
    sign_response: bool,
) -> Vec<(&'static str, bool)> {
    if caps.saml_sign_switches {
        vec![("sign_assertion", sign_assertion), ("sign_response", sign_response)]
    } else {
        Vec::new()
    }
}

/// One registered redirect URI, normalised across server versions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Uri {
    pub regex: bool,
    pub url: String,
}

/// Escapes a URL so that a server matching redirect URIs as regular expressions matches exactly
/// that URL and nothing else.
pub fn regex_escape(url: &str) -> String {
    let mut out = String::with_capacity(url.len() + 8);
    for c in url.chars() {
        if "\\.^$*+?()[]{}|".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The redirect URIs a flow asked for, as this server will hold them.
pub fn redirect_uris(caps: &RequestShapes, wanted: &[RedirectUri]) -> BTreeSet<Uri> {
    wanted
        .iter()
        .map(|r| {
            let regex = r.matching == MatchMode::Regex;
            if caps.redirect_uri_list || regex {
                Uri {
                    regex,
                    url: r.url.clone(),
                }
            } else {
                // Old servers match every entry as a regex: escape strict URLs.
                Uri {
                    regex: true,
                    url: regex_escape(&r.url),
                }
            }
        })
        .collect()
}

/// The `redirect_uris` field of a request: entries (with `keep`, the ones ssoctl does not
/// manage, appended) or the newline-joined string of old servers.
pub fn redirect_uris_body(caps: &RequestShapes, uris: &BTreeSet<Uri>, keep: &[Value]) -> Value {
    if caps.redirect_uri_list {
        let mut list: Vec<Value> = uris
            .iter()
            .map(|u| json!({"matching_mode": if u.regex { "regex" } else { "strict" }, "url": u.url}))
            .collect();
        list.extend(keep.iter().cloned());
        Value::Array(list)
    } else {
        Value::String(uris.iter().map(|u| u.url.as_str()).collect::<Vec<_>>().join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_urls_are_escaped_for_regex_servers() {
        assert_eq!(
            regex_escape("https://g.example.org/login?x=1"),
            r"https://g\.example\.org/login\?x=1"
        );
    }
}
