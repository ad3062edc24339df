//! The simulator's in-memory Authentik: the objects ssoctl touches, seeded with the defaults a fresh
//! Authentik of the chosen version has, and rendered in that version's shapes.
//!
//! Objects are stored once in a version-neutral form. Rendering builds the superset of fields
//! any version has and keeps exactly the properties the version's schema declares (Authentik's
//! serializers emit exactly their declared fields); fields whose *type* changed between versions
//! (OAuth2 `redirect_uris`) are shaped explicitly. Every rendered body is then validated against
//! the schema by the HTTP layer, so a rendering mistake fails the test that triggered it.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::RngExt;
use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::schema::ApiSchema;

/// What the chosen version's schema says about shapes that changed over time.
#[derive(Clone, Debug)]
pub struct Shapes {
    /// OAuth2 redirect URIs are a list of `{matching_mode, url}` (2024.8.5/2024.10.3 and later)
    /// rather than a newline-separated string of regexes.
    pub redirect_uri_list: bool,
    /// Providers have an `invalidation_flow` (2024.10 and later).
    pub invalidation_flow: bool,
    /// OAuth2 providers have `grant_types` (2026.5 and later); created without it, a provider
    /// gets none (every login then fails with "Invalid grant_type").
    pub grant_types: bool,
    /// Path of the OAuth2 scope mappings (moved in 2024.8).
    pub scope_mapping_path: &'static str,
    /// Path of the SAML property mappings (moved in 2024.8).
    pub saml_mapping_path: &'static str,
    /// SAML issuer is `issuer_override` with a generated default (2026.5), not `issuer`.
    pub saml_issuer_override: bool,
    /// SAML providers have `sign_assertion` / `sign_response` (2024.8).
    pub saml_sign_switches: bool,
}

impl Shapes {
    pub fn of(schema: &ApiSchema) -> Self {
        let oauth_req = schema.properties("OAuth2ProviderRequest");
        let has = |p: &str| oauth_req.is_some_and(|m| m.contains_key(p));
        Self {
            redirect_uri_list: schema.has_schema("RedirectURIRequest"),
            invalidation_flow: has("invalidation_flow"),
            grant_types: has("grant_types"),
            scope_mapping_path: if schema.route("GET", "/propertymappings/provider/scope/").is_ok() {
                "/propertymappings/provider/scope/"
            } else {
                "/propertymappings/scope/"
            },
            saml_mapping_path: if schema.route("GET", "/propertymappings/provider/saml/").is_ok() {
                "/propertymappings/provider/saml/"
            } else {
                "/propertymappings/saml/"
            },
            saml_issuer_override: schema
                .properties("SAMLProviderRequest")
                .is_some_and(|p| p.contains_key("issuer_override")),
            saml_sign_switches: schema
                .properties("SAMLProviderRequest")
                .is_some_and(|p| p.contains_key("sign_assertion")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Flow {
    pub pk: String,
    pub slug: String,
    pub name: String,
    pub designation: &'static str,
}

#[derive(Clone, Debug)]
pub struct Keypair {
    pub pk: String,
    pub name: String,
    pub managed: Option<String>,
    pub fingerprint_sha256: String,
    pub fingerprint_sha1: String,
    /// PEM of a real self-signed certificate; the fingerprints are of its DER.
    pub certificate_pem: String,
    /// RFC 3339; tests move it close to now to see expiry warnings.
    pub cert_expiry: String,
}

#[derive(Clone, Debug)]
pub struct ScopeMapping {
    pub pk: String,
    pub managed: Option<String>,
    pub name: String,
    pub scope_name: String,
    pub expression: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RedirectUri {
    pub matching_mode: String,
    pub url: String,
    pub redirect_uri_type: String,
}

#[derive(Clone, Debug)]
pub struct OAuth2Provider {
    pub pk: u64,
    pub name: String,
    pub authorization_flow: String,
    pub authentication_flow: Option<String>,
    pub invalidation_flow: Option<String>,
    pub property_mappings: Vec<String>,
    pub client_type: String,
    pub client_id: String,
    pub client_secret: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub signing_key: Option<String>,
    pub encryption_key: Option<String>,
    pub sub_mode: String,
    pub issuer_mode: String,
    pub include_claims_in_id_token: bool,
    pub access_code_validity: String,
    pub access_token_validity: String,
    pub refresh_token_validity: String,
    pub refresh_token_threshold: String,
}

#[derive(Clone, Debug)]
pub struct ProxyProvider {
    pub pk: u64,
    pub name: String,
    pub authorization_flow: String,
    pub authentication_flow: Option<String>,
    pub invalidation_flow: Option<String>,
    pub property_mappings: Vec<String>,
    pub client_id: String,
    pub mode: String,
    pub external_host: String,
    pub internal_host: String,
    pub internal_host_ssl_validation: bool,
    pub cookie_domain: String,
    pub skip_path_regex: String,
    pub intercept_header_auth: bool,
    pub basic_auth_enabled: bool,
    pub access_token_validity: String,
    pub refresh_token_validity: String,
}

#[derive(Clone, Debug)]
pub struct SamlMapping {
    pub pk: String,
    pub managed: Option<String>,
    pub name: String,
    pub saml_name: String,
    pub friendly_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct SamlProvider {
    pub pk: u64,
    pub name: String,
    pub authorization_flow: String,
    pub authentication_flow: Option<String>,
    pub invalidation_flow: Option<String>,
    pub property_mappings: Vec<String>,
    pub acs_url: String,
    pub audience: String,
    /// `issuer` before 2026.5 (default `authentik`), `issuer_override` after (default empty).
    pub issuer: String,
    pub sp_binding: String,
    pub signing_kp: Option<String>,
    pub name_id_mapping: Option<String>,
    pub sign_assertion: bool,
    pub sign_response: bool,
}

/// The fields every provider type shares (Authentik's `Provider` model).
struct ProviderBase<'a> {
    pk: u64,
    name: &'a str,
    authorization_flow: &'a str,
    authentication_flow: &'a Option<String>,
    invalidation_flow: &'a Option<String>,
    property_mappings: &'a [String],
    component: &'a str,
    verbose_name: &'a str,
    meta_model_name: &'a str,
}

#[derive(Clone, Debug)]
pub struct Application {
    pub pk: String,
    pub pbm_uuid: String,
    pub slug: String,
    pub name: String,
    pub provider: Option<u64>,
    pub meta_launch_url: String,
    pub meta_description: String,
    pub meta_publisher: String,
    pub open_in_new_tab: bool,
    pub policy_engine_mode: String,
    pub group: String,
}

#[derive(Clone, Debug)]
pub struct Outpost {
    pub pk: String,
    pub name: String,
    pub managed: Option<String>,
    pub providers: Vec<u64>,
}

/// The whole simulated server.
#[derive(Clone)]
pub struct World {
    pub schema: Arc<ApiSchema>,
    pub shapes: Shapes,
    /// Public base URL the simulated server builds absolute URLs from.
    pub base_url: String,
    pub flows: Vec<Flow>,
    pub keypairs: Vec<Keypair>,
    pub scope_mappings: Vec<ScopeMapping>,
    pub oauth2: BTreeMap<u64, OAuth2Provider>,
    pub proxy: BTreeMap<u64, ProxyProvider>,
    pub saml: BTreeMap<u64, SamlProvider>,
    pub saml_mappings: Vec<SamlMapping>,
    pub applications: BTreeMap<String, Application>,
    /// A version to report instead of the schema's (a release newer than any vendored one,
    /// speaking the newest known API).
    pub reported_version: Option<String>,
    pub outposts: Vec<Outpost>,
    /// Groups and the policy bindings that decide who sees which application (`crate::access`).
    pub groups: Vec<crate::access::Group>,
    pub bindings: Vec<crate::access::Binding>,
    /// The embedded outpost's sessions and the codes of its logins (`crate::outpost`).
    pub outpost: crate::outpost::OutpostState,
    /// Policy objects (dummy policies only, `crate::access`).
    pub policies: Vec<crate::access::DummyPolicy>,
    /// Whether the token's user is a superuser (the bundled `akadmin` is).
    /// Users; the token's is `akadmin` (pk 1, [`crate::access::TOKEN_USER`]).
    pub users: Vec<crate::access::User>,
    /// The token user's cached application list (`crate::access`).
    pub app_cache: crate::access::AppCache,
    next_provider_pk: u64,
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Random alphanumeric string, as Authentik generates client ids (40) and secrets (128).
pub fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl Keypair {
    /// A keypair with a freshly generated self-signed certificate (ECDSA P-256), fingerprints in
    /// lower-case hex with `:` like Authentik's.
    pub fn generate(name: &str, managed: Option<&str>) -> Self {
        let mut keypair = Self {
            pk: uuid(),
            name: name.to_string(),
            managed: managed.map(str::to_string),
            fingerprint_sha256: String::new(),
            fingerprint_sha1: String::new(),
            certificate_pem: String::new(),
            cert_expiry: "2027-11-22T12:00:00Z".to_string(),
        };
        keypair.rotate();
        keypair
    }

    /// A new certificate under the same keypair (what re-generating it in Authentik's UI does).
    pub fn rotate(&mut self) {
        let generated = rcgen::generate_simple_self_signed(vec!["authentik.default".to_string()])
            .expect("generate a self-signed certificate");
        let der = generated.cert.der();
        self.fingerprint_sha256 = colon_hex(&sha2::Sha256::digest(der));
        self.fingerprint_sha1 = colon_hex(&sha1::Sha1::digest(der));
        self.certificate_pem = generated.cert.pem();
    }
}

/// Authentik's packaged OAuth2 scope mappings: (managed suffix, scope, name).
const SCOPES: &[(&str, &str, &str)] = &[
    ("openid", "openid", "authentik default OAuth Mapping: OpenID 'openid'"),
    ("email", "email", "authentik default OAuth Mapping: OpenID 'email'"),
    (
        "profile",
        "profile",
        "authentik default OAuth Mapping: OpenID 'profile'",
    ),
    (
        "offline_access",
        "offline_access",
        "authentik default OAuth Mapping: OpenID 'offline_access'",
    ),
    (
        "entitlements",
        "entitlements",
        "authentik default OAuth Mapping: Application Entitlements",
    ),
    (
        "authentik_api",
        "goauthentik.io/api",
        "authentik default OAuth Mapping: authentik API access",
    ),
];

/// Every grant type of the 2026.5 enum: what Authentik's migration gave existing providers
/// (docs/authentik-api.md §4, "migrated to all grant types").
const ALL_GRANT_TYPES_2026_5: [&str; 7] = [
    "authorization_code",
    "implicit",
    "hybrid",
    "refresh_token",
    "client_credentials",
    "password",
    "urn:ietf:params:oauth:grant-type:device_code",
];

impl World {
    /// Moves this server to a newer release the way Authentik's migrations move its data:
    /// redirect URI strings become one `strict` entry per line (`*` and `.*` stay regex; the
    /// CVE-2024-52289 migration), providers without grant types get all of them (2026.5), and
    /// providers get the default provider invalidation flow (2024.10; which flow the migration
    /// picks is unconfirmed, this is the one the 2024.10 blueprints create). Objects keep their
    /// pks, client ids and secrets.
    pub fn upgrade(&mut self, schema: Arc<ApiSchema>) {
        let before = self.shapes.clone();
        self.schema = schema;
        self.shapes = Shapes::of(&self.schema);
        if !before.redirect_uri_list && self.shapes.redirect_uri_list {
            for p in self.oauth2.values_mut() {
                for r in &mut p.redirect_uris {
                    r.matching_mode = if r.url == "*" || r.url == ".*" {
                        "regex"
                    } else {
                        "strict"
                    }
                    .into();
                }
            }
        }
        if !before.saml_sign_switches && self.shapes.saml_sign_switches {
            // The new columns' defaults (`sign_assertion=True`, `sign_response=False`).
            for p in self.saml.values_mut() {
                p.sign_assertion = true;
                p.sign_response = false;
            }
        }
        if !before.grant_types && self.shapes.grant_types {
            for p in self.oauth2.values_mut() {
                if p.grant_types.is_empty() {
                    p.grant_types = ALL_GRANT_TYPES_2026_5.iter().map(|g| g.to_string()).collect();
                }
            }
        }
        if !before.invalidation_flow && self.shapes.invalidation_flow {
            if !self
                .flows
                .iter()
                .any(|f| f.slug == "default-provider-invalidation-flow")
            {
                self.flows.push(flow(
                    "default-provider-invalidation-flow",
                    "Logged out of application",
                    "invalidation",
                ));
            }
            let pk = self
                .flows
                .iter()
                .find(|f| f.slug == "default-provider-invalidation-flow")
                .map(|f| f.pk.clone());
            for p in self.oauth2.values_mut() {
                p.invalidation_flow = p.invalidation_flow.take().or(pk.clone());
            }
            for p in self.proxy.values_mut() {
                p.invalidation_flow = p.invalidation_flow.take().or(pk.clone());
            }
            for p in self.saml.values_mut() {
                p.invalidation_flow = p.invalidation_flow.take().or(pk.clone());
            }
        }
    }

    /// A fresh server with the defaults Authentik's packaged blueprints create.
    pub fn seeded(schema: Arc<ApiSchema>, base_url: String) -> Self {
        let shapes = Shapes::of(&schema);
        let mut flows = vec![
            flow("default-authentication-flow", "Welcome to authentik!", "authentication"),
            flow("default-invalidation-flow", "Default Invalidation Flow", "invalidation"),
            flow(
                "default-provider-authorization-explicit-consent",
                "Authorize Application",
                "authorization",
            ),
            flow(
                "default-provider-authorization-implicit-consent",
                "Authorize Application",
                "authorization",
            ),
            flow("default-user-settings-flow", "User settings", "stage_configuration"),
        ];
        if shapes.invalidation_flow {
            flows.push(flow(
                "default-provider-invalidation-flow",
                "Logged out of application",
                "invalidation",
            ));
        }
        let keypairs = vec![
            Keypair::generate("authentik Self-signed Certificate", None),
            Keypair::generate(
                "authentik Internal JWT Certificate",
                Some("goauthentik.io/crypto/jwt-managed"),
            ),
        ];
        let scope_mappings = SCOPES
            .iter()
            .map(|(managed, scope, name)| ScopeMapping {
                pk: uuid(),
                managed: Some(format!("goauthentik.io/providers/oauth2/scope-{managed}")),
                name: name.to_string(),
                scope_name: scope.to_string(),
                expression: "return {}".to_string(),
                description: String::new(),
            })
            .chain(std::iter::once(ScopeMapping {
                pk: uuid(),
                managed: Some("goauthentik.io/providers/proxy/scope-proxy".to_string()),
                name: "authentik default OAuth Mapping: Proxy outpost".to_string(),
                scope_name: "ak_proxy".to_string(),
                expression: "return {}".to_string(),
                description: String::new(),
            }))
            .collect();
        let saml_mappings = [
            "upn",
            "name",
            "email",
            "username",
            "uid",
            "groups",
            "ms-windowsaccountname",
        ]
        .iter()
        .map(|m| SamlMapping {
            pk: uuid(),
            managed: Some(format!("goauthentik.io/providers/saml/{m}")),
            name: format!("authentik default SAML Mapping: {m}"),
            saml_name: format!("http://schemas.xmlsoap.org/claims/{m}"),
            friendly_name: None,
        })
        .collect();
        let outposts = vec![Outpost {
            pk: uuid(),
            name: "authentik Embedded Outpost".to_string(),
            managed: Some("goauthentik.io/outposts/embedded".to_string()),
            providers: Vec::new(),
        }];
        Self {
            schema,
            shapes,
            base_url,
            flows,
            keypairs,
            scope_mappings,
            oauth2: BTreeMap::new(),
            proxy: BTreeMap::new(),
            saml: BTreeMap::new(),
            saml_mappings,
            applications: BTreeMap::new(),
            reported_version: None,
            outposts,
            // A fresh install: `akadmin` in `authentik Admins`, the superuser group
            // (authentik/blueprints `default/default-admin` ... `system/bootstrap.yaml`).
            groups: vec![crate::access::Group {
                pk: uuid(),
                num_pk: 1,
                name: "authentik Admins".to_string(),
                users: vec![crate::access::TOKEN_USER],
                parents: Vec::new(),
                is_superuser: true,
            }],
            bindings: Vec::new(),
            policies: Vec::new(),
            outpost: Default::default(),
            users: vec![crate::access::User {
                pk: crate::access::TOKEN_USER,
                uuid: uuid(),
                username: "akadmin".to_string(),
                name: "authentik Default Admin".to_string(),
                email: "root@localhost".to_string(),
                is_active: true,
                path: "users".to_string(),
                kind: "internal".to_string(),
            }],
            app_cache: Default::default(),
            next_provider_pk: 1,
        }
    }

    /// Binds group `group` (created, without the token's user, when missing) to application
    /// `slug`: from then on only the group's members see it in the filtered list. Saving a
    /// binding clears every user's application cache (`invalidate_policy_cache`).
    pub fn bind_group(&mut self, slug: &str, group: &str) {
        let Some(target) = self.applications.get(slug).map(|a| a.pbm_uuid.clone()) else {
            return;
        };
        let pk = match self.groups.iter().find(|g| g.name == group) {
            Some(g) => g.pk.clone(),
            None => {
                let g = crate::access::Group {
                    pk: uuid(),
                    num_pk: self.groups.iter().map(|g| g.num_pk).max().unwrap_or(0) + 1,
                    name: group.to_string(),
                    users: Vec::new(),
                    parents: Vec::new(),
                    is_superuser: false,
                };
                let pk = g.pk.clone();
                self.groups.push(g);
                pk
            }
        };
        let order = self.bindings.iter().filter(|b| b.target == target).count() as i64;
        self.bindings.push(crate::access::Binding {
            pk: uuid(),
            target,
            policy: None,
            group: Some(pk),
            user: None,
            negate: false,
            enabled: true,
            order,
        });
        self.app_cache.clear();
    }

    /// `Provider.name` is unique on the base table every provider type shares
    /// (authentik/core/models.py, `TextField(unique=True)` since 2023.3): a name is taken by a
    /// provider of any type.
    pub fn provider_name_taken(&self, name: &str, except: u64) -> bool {
        self.oauth2.values().any(|p| p.name == name && p.pk != except)
            || self.proxy.values().any(|p| p.name == name && p.pk != except)
            || self.saml.values().any(|p| p.name == name && p.pk != except)
    }

    /// A proxy provider as the OAuth2 endpoints show it: the OAuth2 row underneath, with what
    /// `ProxyProvider.set_oauth_defaults` (authentik/providers/proxy/models.py) writes on every
    /// save through the proxy API: a confidential client without signing key, claims in the ID
    /// token, the proxy scope mappings, and the two callback URIs on its external host.
    pub fn proxy_as_oauth2(&self, p: &ProxyProvider) -> OAuth2Provider {
        let mut o = OAuth2Provider {
            pk: p.pk,
            name: p.name.clone(),
            authorization_flow: p.authorization_flow.clone(),
            authentication_flow: p.authentication_flow.clone(),
            invalidation_flow: p.invalidation_flow.clone(),
            property_mappings: p.property_mappings.clone(),
            client_type: "confidential".into(),
            client_id: p.client_id.clone(),
            client_secret: String::new(),
            grant_types: Vec::new(),
            redirect_uris: self.proxy_callback_uris(&p.external_host),
            signing_key: None,
            encryption_key: None,
            sub_mode: "hashed_user_id".into(),
            issuer_mode: "per_provider".into(),
            include_claims_in_id_token: true,
            access_code_validity: "minutes=1".into(),
            access_token_validity: p.access_token_validity.clone(),
            refresh_token_validity: p.refresh_token_validity.clone(),
            refresh_token_threshold: "seconds=0".into(),
        };
        o.property_mappings.sort();
        o
    }

    /// `_get_callback_url` (authentik/providers/proxy/models.py): the outpost's callback, joined
    /// to the external host as Python's `urljoin` does (the last path segment replaced), and the
    /// external host itself, each with `?X-authentik-auth-callback=true`. Up to 2024.8.4 and
    /// 2024.10.0–2024.10.2 these are regex lines with the `?` escaped (`\?`); 2024.8.5 and
    /// 2024.10.3 made them strict entries but kept the `\?` (fixed by #12121 in 2024.8.6 and
    /// 2024.10.4); later releases hold plain strict URLs.
    pub fn proxy_callback_uris(&self, external_host: &str) -> Vec<RedirectUri> {
        let escaped = !self.shapes.redirect_uri_list || matches!(self.release(), (2024, 8, 5) | (2024, 10, 3));
        let query = if escaped { "\\?" } else { "?" };
        let callback = format!(
            "{}{query}X-authentik-auth-callback=true",
            url_join(external_host, "outpost.goauthentik.io/callback")
        );
        let root = format!("{external_host}{query}X-authentik-auth-callback=true");
        [callback, root]
            .into_iter()
            .map(|url| RedirectUri {
                matching_mode: if self.shapes.redirect_uri_list {
                    "strict"
                } else {
                    "regex"
                }
                .into(),
                url,
                redirect_uri_type: "authorization".into(),
            })
            .collect()
    }

    /// `ProxyProvider.set_oauth_defaults`, run on every save through the proxy API: the
    /// default OpenID scopes (and `entitlements` from 2024.12, where it exists) and the proxy
    /// scope are *added* to the provider's mappings, never replacing them.
    pub fn proxy_default_mappings(&self, p: &mut ProxyProvider) {
        const DEFAULTS: [&str; 5] = [
            "goauthentik.io/providers/oauth2/scope-openid",
            "goauthentik.io/providers/oauth2/scope-profile",
            "goauthentik.io/providers/oauth2/scope-email",
            "goauthentik.io/providers/oauth2/scope-entitlements",
            "goauthentik.io/providers/proxy/scope-proxy",
        ];
        for m in &self.scope_mappings {
            if m.managed.as_deref().is_some_and(|x| DEFAULTS.contains(&x)) && !p.property_mappings.contains(&m.pk) {
                p.property_mappings.push(m.pk.clone());
            }
        }
    }

    pub fn next_provider_pk(&mut self) -> u64 {
        let pk = self.next_provider_pk;
        self.next_provider_pk += 1;
        pk
    }

    /// A deleted provider leaves its application unlinked and its outposts.
    pub fn forget_provider(&mut self, pk: u64) {
        for app in self.applications.values_mut().filter(|a| a.provider == Some(pk)) {
            app.provider = None;
        }
        for o in &mut self.outposts {
            o.providers.retain(|p| *p != pk);
        }
    }

    pub fn app_of_provider(&self, pk: u64) -> Option<&Application> {
        self.applications.values().find(|a| a.provider == Some(pk))
    }

    /// The component a property of `schema` refers to (`allOf`, `items` or a plain `$ref`).
    fn referenced(&self, schema: &str, prop: &str) -> Option<String> {
        let p = self.schema.properties(schema)?.get(prop)?;
        let r = p["allOf"][0]["$ref"]
            .as_str()
            .or_else(|| p["items"]["$ref"].as_str())
            .or_else(|| p["$ref"].as_str())?;
        r.rsplit('/').next().map(str::to_string)
    }

    /// Whether the token's user is a superuser (through its groups).
    pub fn token_user_superuser(&self) -> bool {
        crate::access::is_superuser(&self.groups, crate::access::TOKEN_USER)
    }

    /// The token's user loses its superuser groups: a token of an ordinary user, which may do
    /// nothing but read its own applications (no roles or object permissions are modelled).
    pub fn demote_token_user(&mut self) {
        for g in self.groups.iter_mut().filter(|g| g.is_superuser) {
            g.users.retain(|u| *u != crate::access::TOKEN_USER);
        }
        self.app_cache.clear();
    }

    /// A user in the shape `name` (`User`, `GroupMember`, `PartialUser`, `UserSelf`, …).
    pub fn render_user_as(&self, u: &crate::access::User, name: &str) -> Value {
        let direct: Vec<&crate::access::Group> = self.groups.iter().filter(|g| g.users.contains(&u.pk)).collect();
        // `/core/users/me/` lists every group the user is in, ancestors included; the list
        // endpoints only the direct ones.
        let shape = self
            .referenced("User", "groups_obj")
            .unwrap_or_else(|| "UserGroup".to_string());
        let groups_obj: Vec<Value> = direct.iter().map(|g| self.render_group_brief(g, &shape)).collect();
        let groups = if name == "UserSelf" {
            json!(
                crate::access::all_groups(&self.groups, u.pk)
                    .iter()
                    .map(|g| json!({"pk": g.pk, "name": g.name}))
                    .collect::<Vec<_>>()
            )
        } else {
            json!(direct.iter().map(|g| g.pk.clone()).collect::<Vec<_>>())
        };
        let m = json!({
            "pk": u.pk, "username": u.username, "name": u.name,
            "is_active": u.is_active, "last_login": null,
            "is_superuser": crate::access::is_superuser(&self.groups, u.pk),
            "email": u.email, "attributes": {}, "settings": {}, "system_permissions": [],
            "uid": sha2::Sha256::digest(u.uuid.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "path": u.path, "type": u.kind, "uuid": u.uuid,
            "avatar": "/static/dist/assets/images/user_default.png",
            "groups": groups, "groups_obj": groups_obj,
            "roles": [], "roles_obj": [], "date_joined": "2026-01-01T00:00:00Z",
            "last_updated": "2026-01-01T00:00:00Z", "password_change_date": "2026-01-01T00:00:00Z",
            // `UserSelf.is_current`: false only while impersonating.
            "is_current": true,
        });
        self.shape(name, into_map(m))
    }

    /// `GET /core/users/me/` (`SessionUser`): the user, and from 2026.5 the session's users.
    pub fn render_session_user(&self, u: &crate::access::User) -> Value {
        let me = self.render_user_as(u, "UserSelf");
        self.shape("SessionUser", into_map(json!({"user": me, "users": [me]})))
    }

    pub fn render_user(&self, u: &crate::access::User) -> Value {
        self.render_user_as(u, "User")
    }

    /// A group as a user's `groups_obj` shows it (no members, so no recursion).
    fn render_group_brief(&self, g: &crate::access::Group, name: &str) -> Value {
        let m = json!({
            "pk": g.pk, "num_pk": g.num_pk, "name": g.name, "is_superuser": g.is_superuser,
            "parent": g.parents.first(), "parent_name": g.parents.first().and_then(|p| self.groups.iter().find(|x| &x.pk == p))
                .map(|x| json!(x.name)).unwrap_or_else(|| self.null_or_empty(name, "parent_name")),
            "attributes": {},
        });
        self.shape(name, into_map(m))
    }

    /// A parent or child as `Group.<field>` embeds it (`GroupChild`, `RelatedGroup`).
    fn related_group(&self, g: &crate::access::Group, field: &str) -> Value {
        let m = json!({"pk": g.pk, "group_uuid": g.pk, "num_pk": g.num_pk, "name": g.name,
            "is_superuser": g.is_superuser, "attributes": {}});
        match self.referenced("Group", field) {
            Some(shape) => self.shape(&shape, into_map(m)),
            None => m,
        }
    }

    /// A group, in the shape `name` (`Group`, or `PartialGroup` where a binding embeds it).
    pub fn render_group_as(&self, g: &crate::access::Group, name: &str) -> Value {
        let member = self
            .referenced("Group", "users_obj")
            .unwrap_or_else(|| "GroupMember".to_string());
        let users_obj: Vec<Value> = g
            .users
            .iter()
            .filter_map(|pk| self.users.iter().find(|u| u.pk == *pk))
            .map(|u| self.render_user_as(u, &member))
            .collect();
        let name_of = |pk: &String| self.groups.iter().find(|x| &x.pk == pk).map(|x| x.name.clone());
        let parents_obj: Vec<Value> = g
            .parents
            .iter()
            .filter_map(|p| self.groups.iter().find(|x| &x.pk == p))
            .map(|p| self.related_group(p, "parents_obj"))
            .collect();
        let children: Vec<&crate::access::Group> = self.groups.iter().filter(|c| c.parents.contains(&g.pk)).collect();
        let m = json!({
            "pk": g.pk, "num_pk": g.num_pk, "name": g.name, "is_superuser": g.is_superuser,
            "parent": g.parents.first(), "parent_name": g.parents.first().and_then(name_of),
            "parents": g.parents, "parents_obj": parents_obj,
            "users": g.users, "users_obj": users_obj, "attributes": {}, "roles": [], "roles_obj": [],
            "inherited_roles_obj": [],
            "children": children.iter().map(|c| c.pk.clone()).collect::<Vec<_>>(),
            "children_obj": children.iter().map(|c| self.related_group(c, "children_obj")).collect::<Vec<_>>(),
        });
        self.shape(name, into_map(m))
    }

    pub fn render_group(&self, g: &crate::access::Group) -> Value {
        self.render_group_as(g, "Group")
    }

    pub fn render_binding(&self, b: &crate::access::Binding) -> Value {
        let group_shape = self
            .referenced("PolicyBinding", "group_obj")
            .unwrap_or_else(|| "Group".to_string());
        let user_shape = self
            .referenced("PolicyBinding", "user_obj")
            .unwrap_or_else(|| "User".to_string());
        let group_obj = b
            .group
            .as_ref()
            .and_then(|g| self.groups.iter().find(|x| &x.pk == g))
            .map(|g| self.render_group_as(g, &group_shape))
            .unwrap_or(Value::Null);
        let user_obj = b
            .user
            .and_then(|pk| self.users.iter().find(|u| u.pk == pk))
            .map(|u| self.render_user_as(u, &user_shape))
            .unwrap_or(Value::Null);
        let policy_obj = b
            .policy
            .as_ref()
            .and_then(|p| self.policies.iter().find(|x| &x.pk == p))
            .map(|p| self.shape("Policy", into_map(self.dummy_policy_fields(p))))
            .unwrap_or(Value::Null);
        let m = json!({
            "pk": b.pk, "policy": b.policy, "group": b.group, "user": b.user,
            "policy_obj": policy_obj, "group_obj": group_obj, "user_obj": user_obj,
            "target": b.target, "negate": b.negate, "enabled": b.enabled, "order": b.order,
            "timeout": 30, "failure_result": false, "expires": null, "expiring": false,
        });
        self.shape("PolicyBinding", into_map(m))
    }

    /// A dummy policy as its API renders it (`DummyPolicySerializer`).
    pub fn render_dummy_policy(&self, p: &crate::access::DummyPolicy) -> Value {
        self.shape("DummyPolicy", into_map(self.dummy_policy_fields(p)))
    }

    /// `PolicySerializer`'s fields and the dummy policy's own.
    fn dummy_policy_fields(&self, p: &crate::access::DummyPolicy) -> Value {
        let bound_to = self
            .bindings
            .iter()
            .filter(|b| b.policy.as_ref() == Some(&p.pk))
            .count();
        json!({
            "pk": p.pk, "name": p.name, "execution_logging": p.execution_logging,
            "component": "ak-policy-dummy-form", "verbose_name": "Dummy Policy",
            "verbose_name_plural": "Dummy Policies", "meta_model_name": "authentik_policies_dummy.dummypolicy",
            "bound_to": bound_to, "result": p.result, "wait_min": p.wait_min, "wait_max": p.wait_max,
        })
    }

    /// Keeps exactly the properties component schema `name` declares.
    fn shape(&self, name: &str, superset: Map<String, Value>) -> Value {
        let Some(props) = self.schema.properties(name) else {
            return Value::Object(superset);
        };
        Value::Object(superset.into_iter().filter(|(k, _)| props.contains_key(k)).collect())
    }

    /// `null` where the version's schema allows it for `schema.prop`, else an empty string:
    /// Authentik sends one or the other depending on the field's definition in that version.
    fn null_or_empty(&self, schema: &str, prop: &str) -> Value {
        let nullable = self
            .schema
            .properties(schema)
            .and_then(|p| p.get(prop))
            .is_some_and(|p| p["nullable"] == true);
        if nullable { Value::Null } else { json!("") }
    }

    pub fn render_flow(&self, f: &Flow) -> Value {
        let background = "/static/dist/assets/images/flow_background.jpg";
        let m = json!({
            "pk": f.pk, "policybindingmodel_ptr_id": f.pk, "name": f.name, "slug": f.slug,
            "title": f.name, "designation": f.designation, "background": background,
            "background_url": background, "background_themed_urls": null, "stages": [],
            "policies": [], "cache_count": 0, "policy_engine_mode": "any",
            "compatibility_mode": false,
            "export_url": format!("/api/v3/flows/instances/{}/export/", f.slug),
            "layout": "stacked", "denied_action": "message_continue", "authentication": "none",
        });
        self.shape("Flow", into_map(m))
    }

    pub fn render_keypair(&self, k: &Keypair) -> Value {
        let m = json!({
            "pk": k.pk, "name": k.name,
            "fingerprint_sha256": k.fingerprint_sha256, "fingerprint_sha1": k.fingerprint_sha1,
            "cert_expiry": k.cert_expiry,
            "cert_subject": format!("OU=Self-signed,O=authentik,CN={}", k.name),
            "private_key_available": true, "private_key_type": "rsa", "key_type": "rsa",
            "certificate_download_url": format!("/api/v3/crypto/certificatekeypairs/{}/view_certificate/?download", k.pk),
            "private_key_download_url": format!("/api/v3/crypto/certificatekeypairs/{}/view_private_key/?download", k.pk),
            "managed": k.managed,
        });
        self.shape("CertificateKeyPair", into_map(m))
    }

    pub fn render_scope_mapping(&self, s: &ScopeMapping) -> Value {
        let component = if self.shapes.scope_mapping_path.contains("/provider/") {
            "ak-property-mapping-provider-scope-form"
        } else {
            "ak-property-mapping-scope-form"
        };
        let m = json!({
            "pk": s.pk, "managed": s.managed, "name": s.name, "expression": s.expression,
            "component": component, "verbose_name": "Scope Mapping",
            "verbose_name_plural": "Scope Mappings",
            "meta_model_name": "authentik_providers_oauth2.scopemapping",
            "scope_name": s.scope_name, "description": s.description,
        });
        self.shape("ScopeMapping", into_map(m))
    }

    fn provider_common(&self, p: &ProviderBase) -> Map<String, Value> {
        let app = self.app_of_provider(p.pk);
        into_map(json!({
            "pk": p.pk, "name": p.name, "authentication_flow": p.authentication_flow,
            "authorization_flow": p.authorization_flow, "invalidation_flow": p.invalidation_flow,
            "property_mappings": p.property_mappings, "component": p.component,
            "assigned_application_slug": app.map(|a| a.slug.clone()),
            "assigned_application_name": app.map(|a| a.name.clone()),
            "assigned_backchannel_application_slug": null,
            "assigned_backchannel_application_name": null,
            "verbose_name": p.verbose_name,
            "verbose_name_plural": format!("{}s", p.verbose_name),
            "meta_model_name": p.meta_model_name,
        }))
    }

    fn oauth2_base(p: &OAuth2Provider) -> ProviderBase<'_> {
        ProviderBase {
            pk: p.pk,
            name: &p.name,
            authorization_flow: &p.authorization_flow,
            authentication_flow: &p.authentication_flow,
            invalidation_flow: &p.invalidation_flow,
            property_mappings: &p.property_mappings,
            component: "ak-provider-oauth2-form",
            verbose_name: "OAuth2/OpenID Provider",
            meta_model_name: "authentik_providers_oauth2.oauth2provider",
        }
    }

    fn proxy_base(p: &ProxyProvider) -> ProviderBase<'_> {
        ProviderBase {
            pk: p.pk,
            name: &p.name,
            authorization_flow: &p.authorization_flow,
            authentication_flow: &p.authentication_flow,
            invalidation_flow: &p.invalidation_flow,
            property_mappings: &p.property_mappings,
            component: "ak-provider-proxy-form",
            verbose_name: "Proxy Provider",
            meta_model_name: "authentik_providers_proxy.proxyprovider",
        }
    }

    fn saml_base(p: &SamlProvider) -> ProviderBase<'_> {
        ProviderBase {
            pk: p.pk,
            name: &p.name,
            authorization_flow: &p.authorization_flow,
            authentication_flow: &p.authentication_flow,
            invalidation_flow: &p.invalidation_flow,
            property_mappings: &p.property_mappings,
            component: "ak-provider-saml-form",
            verbose_name: "SAML Provider",
            meta_model_name: "authentik_providers_saml.samlprovider",
        }
    }

    /// Whether any provider type has `pk`.
    pub fn provider_exists(&self, pk: u64) -> bool {
        self.oauth2.contains_key(&pk) || self.proxy.contains_key(&pk) || self.saml.contains_key(&pk)
    }

    pub fn render_saml(&self, p: &SamlProvider) -> Value {
        let mut m = self.provider_common(&Self::saml_base(p));
        let slug = self.app_of_provider(p.pk).map(|a| a.slug.clone()).unwrap_or_default();
        let base = format!("{}/application/saml/{slug}", self.base_url);
        let generated = format!("{base}/metadata/");
        let extra = json!({
            "acs_url": p.acs_url, "audience": p.audience,
            "issuer": p.issuer, "issuer_override": p.issuer,
            "url_issuer": if p.issuer.is_empty() { generated } else { p.issuer.clone() },
            "assertion_valid_not_before": "minutes=-5", "assertion_valid_not_on_or_after": "minutes=5",
            "session_valid_not_on_or_after": "minutes=86400",
            "name_id_mapping": p.name_id_mapping, "authn_context_class_ref_mapping": null,
            "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            "signature_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "signing_kp": p.signing_kp, "verification_kp": null, "encryption_kp": null,
            "sign_assertion": p.sign_assertion, "sign_response": p.sign_response,
            "sign_logout_request": false, "sign_logout_response": false,
            "sp_binding": p.sp_binding, "sls_binding": "redirect", "logout_method": "frontchannel_iframe",
            "default_relay_state": "", "default_name_id_policy": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
            "url_download_metadata": format!("{base}/metadata/?download"),
            "url_unified": format!("{base}/"), "url_unified_init": format!("{base}/init/"),
            "url_sso_post": format!("{base}/sso/binding/post/"),
            "url_sso_redirect": format!("{base}/sso/binding/redirect/"),
            "url_sso_init": format!("{base}/sso/binding/init/"),
            "url_slo_post": format!("{base}/slo/binding/post/"),
            "url_slo_redirect": format!("{base}/slo/binding/redirect/"),
        });
        m.extend(into_map(extra));
        self.shape("SAMLProvider", m)
    }

    pub fn render_saml_mapping(&self, s: &SamlMapping) -> Value {
        let m = json!({
            "pk": s.pk, "managed": s.managed, "name": s.name, "expression": "return None",
            "component": "ak-property-mapping-provider-saml-form", "verbose_name": "SAML Provider Property Mapping",
            "verbose_name_plural": "SAML Provider Property Mappings",
            "meta_model_name": "authentik_providers_saml.samlpropertymapping",
            "saml_name": s.saml_name, "friendly_name": s.friendly_name,
        });
        self.shape("SAMLPropertyMapping", into_map(m))
    }

    pub fn render_proxy(&self, p: &ProxyProvider) -> Value {
        let mut m = self.provider_common(&Self::proxy_base(p));
        let uris = self.proxy_callback_uris(&p.external_host);
        let redirect_uris = if self.shapes.redirect_uri_list {
            json!(
                uris.iter()
                    .map(|r| json!({"matching_mode": r.matching_mode, "url": r.url}))
                    .collect::<Vec<_>>()
            )
        } else {
            json!(uris.iter().map(|r| r.url.as_str()).collect::<Vec<_>>().join("\n"))
        };
        let outposts: Vec<&str> = self
            .outposts
            .iter()
            .filter(|o| o.providers.contains(&p.pk))
            .map(|o| o.name.as_str())
            .collect();
        let extra = json!({
            "client_id": p.client_id, "external_host": p.external_host,
            "internal_host_ssl_validation": p.internal_host_ssl_validation, "certificate": null,
            "skip_path_regex": p.skip_path_regex, "basic_auth_enabled": p.basic_auth_enabled,
            "basic_auth_password_attribute": "", "basic_auth_user_attribute": "", "mode": p.mode,
            "intercept_header_auth": p.intercept_header_auth, "redirect_uris": redirect_uris,
            "cookie_domain": p.cookie_domain, "jwks_sources": [], "jwt_federation_sources": [],
            "jwt_federation_providers": [], "access_token_validity": p.access_token_validity,
            "refresh_token_validity": p.refresh_token_validity, "outpost_set": outposts,
        });
        m.extend(into_map(extra));
        if !p.internal_host.is_empty() {
            // Optional and format `uri`: absent when forward auth needs none.
            m.insert("internal_host".into(), json!(p.internal_host));
        }
        self.shape("ProxyProvider", m)
    }

    pub fn render_outpost(&self, o: &Outpost) -> Value {
        let providers_obj: Vec<Value> = o.providers.iter().filter_map(|pk| self.render_provider(*pk)).collect();
        let m = json!({
            "pk": o.pk, "name": o.name, "type": "proxy", "providers": o.providers,
            "providers_obj": providers_obj, "service_connection": null,
            "service_connection_obj": null, "refresh_interval_s": 60,
            "token_identifier": format!("ak-outpost-{}-api", o.pk),
            "config": {"authentik_host": self.base_url, "log_level": "info"},
            "managed": o.managed,
        });
        self.shape("Outpost", into_map(m))
    }

    pub fn render_oauth2(&self, p: &OAuth2Provider) -> Value {
        let mut m = self.provider_common(&Self::oauth2_base(p));
        let redirect_uris = if self.shapes.redirect_uri_list {
            Value::Array(
                p.redirect_uris
                    .iter()
                    .map(|r| {
                        let mut o = json!({"matching_mode": r.matching_mode, "url": r.url});
                        if self
                            .schema
                            .properties("RedirectURI")
                            .is_some_and(|props| props.contains_key("redirect_uri_type"))
                        {
                            o["redirect_uri_type"] = json!(r.redirect_uri_type);
                        }
                        o
                    })
                    .collect(),
            )
        } else {
            json!(
                p.redirect_uris
                    .iter()
                    .map(|r| r.url.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        };
        let extra = json!({
            "client_type": p.client_type, "grant_types": p.grant_types, "client_id": p.client_id,
            "client_secret": p.client_secret, "access_code_validity": p.access_code_validity,
            "access_token_validity": p.access_token_validity,
            "refresh_token_validity": p.refresh_token_validity,
            "refresh_token_threshold": p.refresh_token_threshold,
            "include_claims_in_id_token": p.include_claims_in_id_token,
            "signing_key": p.signing_key, "encryption_key": p.encryption_key,
            "redirect_uris": redirect_uris, "logout_method": "backchannel",
            "sub_mode": p.sub_mode, "issuer_mode": p.issuer_mode, "jwks_sources": [],
            "jwt_federation_sources": [], "jwt_federation_providers": [],
        });
        m.extend(into_map(extra));
        self.shape("OAuth2Provider", m)
    }

    /// The generic `Provider` serializer (as in `Application.provider_obj`), for any type.
    pub fn render_provider(&self, pk: u64) -> Option<Value> {
        let base = if let Some(p) = self.oauth2.get(&pk) {
            Self::oauth2_base(p)
        } else if let Some(p) = self.proxy.get(&pk) {
            Self::proxy_base(p)
        } else if let Some(p) = self.saml.get(&pk) {
            Self::saml_base(p)
        } else {
            return None;
        };
        Some(self.shape("Provider", self.provider_common(&base)))
    }

    pub fn render_application(&self, a: &Application) -> Value {
        let provider_obj = a.provider.and_then(|pk| self.render_provider(pk));
        let launch_url = if a.meta_launch_url.is_empty() {
            Value::Null
        } else {
            json!(a.meta_launch_url)
        };
        let m = json!({
            "pk": a.pk, "pbm_uuid": a.pbm_uuid, "name": a.name, "slug": a.slug,
            "provider": a.provider,
            "provider_obj": provider_obj,
            "backchannel_providers": [], "backchannel_providers_obj": [],
            "launch_url": launch_url, "open_in_new_tab": a.open_in_new_tab,
            "meta_launch_url": a.meta_launch_url,
            "meta_icon": self.null_or_empty("Application", "meta_icon"),
            "meta_icon_url": null, "meta_icon_themed_urls": null,
            "meta_description": a.meta_description, "meta_publisher": a.meta_publisher,
            "policy_engine_mode": a.policy_engine_mode, "group": a.group, "meta_hide": false,
        });
        let mut m = into_map(m);
        if a.meta_launch_url.is_empty() {
            // Optional and format `uri`: Authentik leaves an empty launch URL out.
            m.remove("meta_launch_url");
        }
        self.shape("Application", m)
    }

    /// The OpenID discovery document of application `slug` (not part of `/api/v3`, so not
    /// schema-checked): its issuer follows the provider's `issuer_mode`.
    pub fn discovery(&self, slug: &str) -> Option<Value> {
        let app = self.applications.values().find(|a| a.slug == slug)?;
        let provider = self.oauth2.get(&app.provider?)?;
        let base = &self.base_url;
        let issuer = if provider.issuer_mode == "global" {
            format!("{base}/")
        } else {
            format!("{base}/application/o/{slug}/")
        };
        Some(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/application/o/authorize/"),
            "token_endpoint": format!("{base}/application/o/token/"),
            "userinfo_endpoint": format!("{base}/application/o/userinfo/"),
            "end_session_endpoint": format!("{base}/application/o/{slug}/end-session/"),
            "jwks_uri": format!("{base}/application/o/{slug}/jwks/"),
            "response_types_supported": ["code", "id_token", "id_token token", "code token", "code id_token", "code id_token token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }))
    }

    /// The release this world plays, as (year, minor, patch); behaviour that changed between
    /// releases (not visible in the schema) is keyed on it.
    pub fn release(&self) -> (u32, u32, u32) {
        let mut parts = self
            .schema
            .version
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }

    pub fn render_version(&self) -> Value {
        let v = self.reported_version.as_ref().unwrap_or(&self.schema.version);
        let m = json!({
            "version_current": v, "version_latest": v, "version_latest_valid": true,
            "build_hash": "", "outdated": false, "outpost_outdated": false,
        });
        self.shape("Version", into_map(m))
    }

    /// Authentik's own pagination: `next`/`previous` are page numbers, 0 for none.
    pub fn paginate(&self, items: Vec<Value>, page: usize, page_size: usize) -> Value {
        let count = items.len();
        let page_size = page_size.max(1);
        let total_pages = count.div_ceil(page_size).max(1);
        let page = page.clamp(1, total_pages);
        let start = (page - 1) * page_size;
        let results: Vec<Value> = items.into_iter().skip(start).take(page_size).collect();
        let start_index = if results.is_empty() { 0 } else { start + 1 };
        let mut page_body = json!({
            "pagination": {
                "next": if page < total_pages { page + 1 } else { 0 },
                "previous": page.saturating_sub(1),
                "count": count, "current": page, "total_pages": total_pages,
                "start_index": start_index, "end_index": start + results.len(),
            },
            "results": results,
            "autocomplete": {},
        });
        if !self.schema.has_schema("Autocomplete") {
            // Paginated responses gained a required `autocomplete` object in 2025.8.
            page_body.as_object_mut().expect("object").remove("autocomplete");
        }
        page_body
    }
}

fn flow(slug: &str, name: &str, designation: &'static str) -> Flow {
    Flow {
        pk: uuid(),
        slug: slug.to_string(),
        name: name.to_string(),
        designation,
    }
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! object literal"),
    }
}

/// Python's `urljoin(base, relative)` for a relative path without dots: the base's path up to
/// its last `/` (or `/` when it has none), then `relative`; the base's query and fragment go.
fn url_join(base: &str, relative: &str) -> String {
    let cut = base.find(['?', '#']).unwrap_or(base.len());
    let base = &base[..cut];
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[authority_start..].find('/') {
        None => format!("{base}/{relative}"),
        Some(path_start) => {
            let last = base.rfind('/').expect("a slash");
            debug_assert!(last >= authority_start + path_start);
            format!("{}{relative}", &base[..=last])
        }
    }
}
