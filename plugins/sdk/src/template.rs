//! `{placeholder}` expansion for the `.env` values a manifest declares (`sso.env`).

use crate::FlowError;

/// The placeholder that stands for the client secret. It must be a value on its own: the flow
/// never sees the secret, so it cannot splice it into a longer string.
pub const SECRET_PLACEHOLDER: &str = "{client_secret}";

/// Expands every `{name}` in `template` from `values`. Unknown names and `{client_secret}` inside
/// a longer value are errors that name the key, so a typo in a manifest never writes garbage.
pub fn expand(key: &str, template: &str, values: &[(&str, &str)]) -> Result<String, FlowError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| FlowError::Invalid(format!("sso.env.{key}: unclosed `{{` in `{template}`")))?;
        let name = &after[..end];
        if name == "client_secret" {
            return Err(FlowError::Invalid(format!(
                "sso.env.{key}: {SECRET_PLACEHOLDER} must be the whole value, not part of `{template}`"
            )));
        }
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let known: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
                FlowError::Invalid(format!(
                    "sso.env.{key}: unknown placeholder {{{name}}} (known: {}, client_secret)",
                    known.join(", ")
                ))
            })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks `template` against the placeholder `names` a flow will fill, before the flow writes
/// anything: a typo found after the provider was created would leave it behind half-configured.
pub fn check(key: &str, template: &str, names: &[&str]) -> Result<(), FlowError> {
    if template == SECRET_PLACEHOLDER {
        return Ok(());
    }
    let blanks: Vec<(&str, &str)> = names.iter().map(|n| (*n, "")).collect();
    expand(key, template, &blanks).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_placeholders_and_keeps_literals() {
        let v = [("slug", "grafana"), ("authentik_url", "https://auth.x")];
        assert_eq!(
            expand("K", "{authentik_url}/application/o/{slug}/", &v).unwrap(),
            "https://auth.x/application/o/grafana/"
        );
        assert_eq!(expand("K", "true", &v).unwrap(), "true");
    }

    #[test]
    fn check_finds_what_expand_would_refuse() {
        assert!(check("K", "{client_id}", &["client_id"]).is_ok());
        assert!(check("K", SECRET_PLACEHOLDER, &[]).is_ok());
        assert!(check("K", "{clientid}", &["client_id"]).is_err());
        assert!(check("K", "x{client_secret}", &[]).is_err());
    }

    #[test]
    fn unknown_placeholder_names_the_key() {
        let err = expand("GF_X", "{clientid}", &[("client_id", "a")]).unwrap_err();
        let FlowError::Invalid(msg) = err else {
            panic!("wrong variant")
        };
        assert!(msg.contains("GF_X") && msg.contains("{clientid}"), "{msg}");
    }

    #[test]
    fn secret_cannot_be_spliced() {
        assert!(expand("K", "id:{client_secret}", &[]).is_err());
        assert!(expand("K", "{unclosed", &[]).is_err());
    }
}
