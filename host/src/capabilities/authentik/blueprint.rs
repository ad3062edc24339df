//! The blueprint entries a run asks for: every `ensure-*` call is recorded as the Authentik
//! blueprint entry that would produce the same object (`ssoctl export --blueprint`), with `!Find`
//! lookups for flows, keypairs and packaged mappings and `!KeyOf` between the run's own objects.
//! Recorded from the specs the flow passes, so it is the desired state whatever the server holds.

use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

use super::objects::{DEFAULT_AUTHORIZATION_FLOW, DEFAULT_INVALIDATION_FLOW, setting};
use super::shapes;
use crate::authentik::{RequestShapes, SELF_SIGNED_KEYPAIR};
use crate::bindings::sso::flow::authentik::{
    ApplicationSpec, ClientType, Oauth2ProviderSpec, ProxyMode, ProxyProviderSpec, SamlProviderSpec, ScopeMappingSpec,
};
use crate::capabilities::state::RunState;

fn tagged(tag: &str, value: Value) -> Value {
    Value::Tagged(Box::new(TaggedValue {
        tag: Tag::new(tag),
        value,
    }))
}

/// `!Find [model, [field, value]]`
fn find(model: &str, field: &str, value: &str) -> Value {
    tagged(
        "Find",
        Value::Sequence(vec![model.into(), Value::Sequence(vec![field.into(), value.into()])]),
    )
}

fn key_of(id: &str) -> Value {
    tagged("KeyOf", id.into())
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(k.into(), v);
    }
    Value::Mapping(m)
}

fn entry(model: &str, id: &str, identifiers: Value, attrs: Vec<(&str, Value)>) -> Value {
    map(vec![
        ("model", model.into()),
        ("id", id.into()),
        ("identifiers", identifiers),
        ("attrs", map(attrs)),
    ])
}

/// The flow fields every provider carries.
fn login_flows(state: &RunState, caps: &RequestShapes, attrs: &mut Vec<(&str, Value)>) {
    let auth = setting(state, "authorization_flow").unwrap_or(DEFAULT_AUTHORIZATION_FLOW);
    attrs.push(("authorization_flow", find("authentik_flows.flow", "slug", auth)));
    if caps.invalidation_flow {
        let inv = setting(state, "invalidation_flow").unwrap_or(DEFAULT_INVALIDATION_FLOW);
        attrs.push(("invalidation_flow", find("authentik_flows.flow", "slug", inv)));
    }
}

fn keypair() -> Value {
    find("authentik_crypto.certificatekeypair", "name", SELF_SIGNED_KEYPAIR)
}

pub fn provider_id(name: &str) -> String {
    format!("provider-{name}")
}

pub fn oauth2(state: &RunState, caps: &RequestShapes, name: &str, spec: &Oauth2ProviderSpec) -> Value {
    let mut attrs = vec![("name", Value::from(name))];
    login_flows(state, caps, &mut attrs);
    attrs.push((
        "client_type",
        match spec.client_type {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
        .into(),
    ));
    // The same shape apply sends (escaped strict URIs for old regex-matching servers).
    let uris = super::shapes::redirect_uris(caps, &spec.redirect_uris);
    let body = super::shapes::redirect_uris_body(caps, &uris, &[]);
    attrs.push(("redirect_uris", serde_yaml::to_value(&body).unwrap_or(Value::Null)));
    let mut mappings: Vec<Value> = spec
        .scopes
        .iter()
        .map(|s| {
            find(
                "authentik_providers_oauth2.scopemapping",
                "managed",
                &format!("goauthentik.io/providers/oauth2/scope-{s}"),
            )
        })
        .collect();
    mappings.extend(spec.custom_scopes.iter().map(|n| key_of(&mapping_id(n))));
    attrs.push(("property_mappings", Value::Sequence(mappings)));
    if spec.sign_tokens {
        attrs.push(("signing_key", keypair()));
    }
    attrs.push((
        "issuer_mode",
        if spec.issuer_per_provider {
            "per_provider"
        } else {
            "global"
        }
        .into(),
    ));
    attrs.push(("include_claims_in_id_token", spec.include_claims_in_id_token.into()));
    if let Some(sub) = &spec.sub_mode {
        attrs.push(("sub_mode", sub.as_str().into()));
    }
    if let Some(v) = &spec.access_token_validity {
        attrs.push(("access_token_validity", v.as_str().into()));
    }
    if let Some(grants) = super::shapes::grant_types(caps, &spec.grant_types) {
        attrs.push((
            "grant_types",
            Value::Sequence(grants.into_iter().map(Value::from).collect()),
        ));
    }
    entry(
        "authentik_providers_oauth2.oauth2provider",
        &provider_id(name),
        map(vec![("name", name.into())]),
        attrs,
    )
}

pub fn saml(state: &RunState, caps: &RequestShapes, name: &str, spec: &SamlProviderSpec) -> Value {
    let mut attrs = vec![("name", Value::from(name))];
    login_flows(state, caps, &mut attrs);
    attrs.push(("acs_url", spec.acs_url.as_str().into()));
    attrs.push(("audience", spec.audience.as_str().into()));
    if let Some(issuer) = &spec.issuer {
        attrs.push((super::shapes::saml_issuer_field(caps), issuer.as_str().into()));
    }
    attrs.push((
        "sp_binding",
        if spec.sp_binding_post { "post" } else { "redirect" }.into(),
    ));
    attrs.push(("signing_kp", keypair()));
    let saml_mapping = |m: &str| {
        find(
            "authentik_providers_saml.samlpropertymapping",
            "managed",
            &format!("goauthentik.io/providers/saml/{m}"),
        )
    };
    attrs.push((
        "property_mappings",
        Value::Sequence(spec.mappings.iter().map(|m| saml_mapping(m)).collect()),
    ));
    if let Some(m) = &spec.name_id_mapping {
        attrs.push(("name_id_mapping", saml_mapping(m)));
    }
    for (field, on) in shapes::saml_sign_switches(caps, spec.sign_assertion, spec.sign_response) {
        attrs.push((field, on.into()));
    }
    entry(
        "authentik_providers_saml.samlprovider",
        &provider_id(name),
        map(vec![("name", name.into())]),
        attrs,
    )
}

pub fn proxy(state: &RunState, caps: &RequestShapes, name: &str, spec: &ProxyProviderSpec) -> Value {
    let mut attrs = vec![("name", Value::from(name))];
    login_flows(state, caps, &mut attrs);
    attrs.push((
        "mode",
        match spec.mode {
            ProxyMode::ForwardSingle => "forward_single",
            ProxyMode::ForwardDomain => "forward_domain",
            ProxyMode::Proxy => "proxy",
        }
        .into(),
    ));
    attrs.push(("external_host", spec.external_host.as_str().into()));
    for (field, value) in [
        ("internal_host", &spec.internal_host),
        ("cookie_domain", &spec.cookie_domain),
        ("skip_path_regex", &spec.skip_path_regex),
        ("access_token_validity", &spec.access_token_validity),
    ] {
        if let Some(v) = value {
            attrs.push((field, v.as_str().into()));
        }
    }
    entry(
        "authentik_providers_proxy.proxyprovider",
        &provider_id(name),
        map(vec![("name", name.into())]),
        attrs,
    )
}

pub fn mapping_id(name: &str) -> String {
    format!("mapping-{}", name.replace(' ', "-"))
}

pub fn scope_mapping(name: &str, spec: &ScopeMappingSpec) -> Value {
    entry(
        "authentik_providers_oauth2.scopemapping",
        &mapping_id(name),
        map(vec![("name", name.into())]),
        vec![
            ("name", name.into()),
            ("scope_name", spec.scope_name.trim().into()),
            ("expression", spec.expression.as_str().into()),
            ("description", spec.description.as_str().into()),
        ],
    )
}

pub fn application(provider: Option<&str>, spec: &ApplicationSpec) -> Value {
    let mut attrs = vec![("name", Value::from(spec.name.as_str()))];
    if let Some(p) = provider {
        attrs.push(("provider", key_of(&provider_id(p))));
    }
    if let Some(url) = &spec.launch_url {
        attrs.push(("meta_launch_url", url.as_str().into()));
    }
    attrs.push(("open_in_new_tab", spec.open_in_new_tab.into()));
    attrs.push(("policy_engine_mode", "any".into()));
    entry(
        "authentik_core.application",
        &format!("application-{}", spec.slug),
        map(vec![("slug", spec.slug.as_str().into())]),
        attrs,
    )
}

/// The group and user bindings `sso.access` gives the application `slug`, with the orders
/// `ensure-access` marks its own bindings with (groups from 10000, users from 10500); identified
/// by target and subject, so an import converges on the bindings a run made.
pub fn access(slug: &str, groups: &[String], users: &[String]) -> Vec<Value> {
    let target = key_of(&format!("application-{slug}"));
    let subjects = groups
        .iter()
        .enumerate()
        .map(|(i, g)| ("group", find("authentik_core.group", "name", g), 10_000 + i as i64, g))
        .chain(
            users
                .iter()
                .enumerate()
                .map(|(i, u)| ("user", find("authentik_core.user", "username", u), 10_500 + i as i64, u)),
        );
    subjects
        .map(|(field, subject, order, name)| {
            entry(
                "authentik_policies.policybinding",
                &format!("access-{slug}-{field}-{name}"),
                map(vec![("target", target.clone()), (field, subject)]),
                vec![
                    ("order", order.into()),
                    ("negate", false.into()),
                    ("enabled", true.into()),
                    ("timeout", 30.into()),
                ],
            )
        })
        .collect()
}

/// The whole blueprint for `entries` (what plan-mode runs recorded), as YAML text.
pub fn document(name: &str, entries: Vec<Value>) -> String {
    let doc = map(vec![
        ("version", 1.into()),
        (
            "metadata",
            map(vec![
                ("name", name.into()),
                (
                    "labels",
                    map(vec![(
                        "blueprints.goauthentik.io/description",
                        "Desired state of the stack's SSO, exported by ssoctl".into(),
                    )]),
                ),
            ]),
        ),
        ("entries", Value::Sequence(entries)),
    ]);
    let yaml = serde_yaml::to_string(&doc).unwrap_or_default();
    format!(
        "# yaml-language-server: $schema=https://goauthentik.io/blueprints/schema.json\n\
         # Exported by `ssoctl export --blueprint`. Proxy providers still need attaching to the embedded\n\
         # outpost (its provider list is replaced as a whole, so it is not part of this blueprint), and\n\
         # the client secrets stay in Authentik: services read them through ssoctl's .env.\n{yaml}"
    )
}
