//! The operator's stack: `.env`, `services.yaml` profiles and `packages/<svc>/manifest.yaml`,
//! resolved into the [`ServiceSpec`]s flows run against.

pub mod declared;
pub mod envfile;
pub mod lock;
pub mod manifest;
pub mod roles;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::error::{Error, Result};
pub use declared::Declared;
pub use envfile::EnvFile;
pub use manifest::Manifest;

/// A redirect URI a service needs registered.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RedirectUri {
    pub regex: bool,
    pub url: String,
}

/// One service with an `sso:` block, resolved against `.env`.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    pub name: String,
    pub slug: String,
    pub display_name: String,
    pub sso_type: String,
    pub public_url: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub env_prefix: String,
    /// `.env` keys the manifest declares under `sso.env`.
    pub declared_env: Vec<String>,
    pub settings: Vec<(String, String)>,
    pub manifest_path: PathBuf,
    pub configured: bool,
    /// What the manifest declares beyond the name: origins, expressions, files (the capability
    /// layer holds every flow call to it).
    pub declared: Declared,
    /// `.env` keys the manifest expands with `${VAR}`: the operator's input, which no flow may set.
    pub expanded_env: Vec<String>,
    /// `.env` keys the manifest names as its own beyond `sso.env` (`sso.http.key_env`, ...).
    pub named_env: Vec<String>,
}

/// A service whose manifest cannot be used, and why.
#[derive(Clone, Debug)]
pub struct Broken {
    pub name: String,
    /// Its `sso.type` when the manifest says, else `?`.
    pub sso_type: String,
    pub manifest_path: PathBuf,
    /// The error, naming the file (and line where known).
    pub error: String,
}

impl Broken {
    fn new(name: &str, path: &Path, error: &Error) -> Self {
        let sso_type = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_yaml::from_str::<Value>(&t).ok())
            .and_then(|d| d.get("sso")?.get("type")?.as_str().map(str::to_string))
            .unwrap_or_else(|| "?".to_string());
        Self {
            name: name.to_string(),
            sso_type,
            manifest_path: path.to_path_buf(),
            error: error.to_string(),
        }
    }
}

/// What a command selected: the services to run, and those whose manifest is broken.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub services: Vec<ServiceSpec>,
    pub broken: Vec<Broken>,
    /// Every selected name, in the order given (a profile's, or the command line's).
    pub order: Vec<String>,
}

/// A stack root on disk.
#[derive(Clone, Debug)]
pub struct Stack {
    pub root: PathBuf,
    pub env: EnvFile,
    /// Every service under `packages/` that has an `sso:` block, by name.
    pub services: BTreeMap<String, ServiceSpec>,
    /// Services whose manifest cannot be used (it does not parse, names an unset variable,
    /// conflicts with another's slug or keys), by name: each fails on its own line while the
    /// others run.
    pub broken: BTreeMap<String, Broken>,
    profiles: BTreeMap<String, Vec<String>>,
    default_profile: Option<String>,
    /// `.env` key ownership, indexed once: every env write of every service asks.
    owners: EnvOwners,
}

/// Declared keys and prefixes → service name, and the keys some manifest expands.
#[derive(Clone, Debug, Default)]
struct EnvOwners {
    declared: std::collections::HashMap<String, String>,
    prefixes: std::collections::HashMap<String, String>,
    /// Keys any manifest expands with `${VAR}`: read by ssoctl as the operator's input.
    expanded: std::collections::HashSet<String>,
}

impl EnvOwners {
    /// Indexes ownership, and finds what would let one service take another's keys: a key two
    /// manifests claim, a key one manifest claims inside another service's prefix, and a
    /// `${VAR}` that expands another service's key. Each such service is returned with the
    /// conflict (its first), naming both files; its keys stay indexed, so no other service
    /// can take them while it is broken.
    fn index(services: &BTreeMap<String, ServiceSpec>) -> (Self, BTreeMap<String, Error>) {
        let mut owners = Self::default();
        let mut conflicts: BTreeMap<String, Error> = BTreeMap::new();
        for s in services.values() {
            owners
                .prefixes
                .entry(s.env_prefix.clone())
                .or_insert_with(|| s.name.clone());
        }
        let conflict = |s: &ServiceSpec, other: &str, message: String| Error::Stack {
            path: s.manifest_path.clone(),
            message: format!(
                "{message} ({}); a .env key has one owner: rename the key or one of the services",
                services[other].manifest_path.display()
            ),
        };
        // Keys a manifest names (`sso.env`, `sso.http.*_env`) or expands inside its own prefix.
        let claims = |s: &ServiceSpec| -> Vec<(String, bool)> {
            let mut keys: Vec<(String, bool)> = s
                .declared_env
                .iter()
                .chain(&s.named_env)
                .map(|k| (k.clone(), true))
                .collect();
            for key in s.expanded_env.iter().filter(|k| k.starts_with(&s.env_prefix)) {
                if !keys.iter().any(|(k, _)| k == key) {
                    keys.push((key.clone(), false));
                }
            }
            keys
        };
        // Services whose prefix covers a key a neighbour claims inside its own: they own nothing.
        let mut swallowers = Vec::new();
        for s in services.values() {
            for (key, named) in claims(s) {
                if let Some(first) = owners.declared.get(&key).filter(|o| **o != s.name) {
                    let e = conflict(s, first, format!("`{key}` is also claimed by service `{first}`"));
                    conflicts.entry(s.name.clone()).or_insert(e);
                    continue;
                }
                if let Some(by_prefix) = owners.prefix_owner(&key).filter(|o| *o != s.name) {
                    if key.starts_with(&s.env_prefix) {
                        // Its own prefix covers the key, and a longer one (`ZAMMAD_API_` of a
                        // service `zammad-api`, over `ZAMMAD_API_TOKEN` that `zammad` names)
                        // would take it: the longer one is refused, this one keeps its key.
                        let other = &services[by_prefix];
                        let how = if named { "names as its own" } else { "expands" };
                        let e = conflict(
                            other,
                            &s.name,
                            format!(
                                "its .env prefix `{}` covers `{key}`, which service `{}` {how}",
                                other.env_prefix, s.name
                            ),
                        );
                        conflicts.entry(other.name.clone()).or_insert(e);
                        swallowers.push(other.name.clone());
                    } else {
                        let e = conflict(
                            s,
                            by_prefix,
                            format!("`{key}` lies inside the .env prefix of service `{by_prefix}`"),
                        );
                        conflicts.entry(s.name.clone()).or_insert(e);
                        continue;
                    }
                }
                owners.declared.insert(key, s.name.clone());
            }
        }
        owners.prefixes.retain(|_, owner| !swallowers.contains(owner));
        for s in services.values() {
            for key in &s.expanded_env {
                if let Some(owner) = owners.owner(key).filter(|o| *o != s.name) {
                    let e = conflict(
                        s,
                        owner,
                        format!("`${{{key}}}` expands a .env key of service `{owner}`, whose flow may set it"),
                    );
                    conflicts.entry(s.name.clone()).or_insert(e);
                }
                owners.expanded.insert(key.clone());
            }
        }
        (owners, conflicts)
    }

    /// The longest service prefix `key` starts with.
    fn prefix_owner(&self, key: &str) -> Option<&str> {
        // Prefixes end in `_`: try the key's own `_`-ended prefixes, longest first.
        key.char_indices()
            .rev()
            .filter(|(_, c)| *c == '_')
            .find_map(|(at, _)| self.prefixes.get(&key[..=at]))
            .map(String::as_str)
    }

    fn owner(&self, key: &str) -> Option<&str> {
        if key.starts_with("AUTHENTIK_") {
            return None;
        }
        match self.declared.get(key) {
            Some(name) => Some(name),
            None => self.prefix_owner(key),
        }
    }
}

impl Stack {
    pub fn load(root: &Path) -> Result<Self> {
        Self::load_with_env(root, EnvFile::load(&root.join(".env"))?)
    }

    /// [`Stack::load`] with the stack's `.env` already read (the session reads it first, to
    /// check ssoctl's own settings before any manifest).
    pub fn load_with_env(root: &Path, env: EnvFile) -> Result<Self> {
        let packages = root.join("packages");
        let mut services = BTreeMap::new();
        let entries = std::fs::read_dir(&packages).map_err(|e| Error::io(&packages, e))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("manifest.yaml").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut broken = BTreeMap::new();
        for name in names {
            let path = packages.join(&name).join("manifest.yaml");
            let resolved = Manifest::load(&path).and_then(|m| resolve_service(&name, &path, &m, &env));
            match resolved {
                Ok(Some(spec)) => {
                    services.insert(name, spec);
                }
                Ok(None) => {}
                Err(e) => {
                    broken.insert(name.clone(), Broken::new(&name, &path, &e));
                }
            }
        }
        // Two services registering the same slug would fight over one provider and application:
        // the second (by name) is refused.
        let mut by_slug: BTreeMap<String, String> = BTreeMap::new();
        let mut clashes = Vec::new();
        for spec in services.values() {
            match by_slug.get(&spec.slug) {
                Some(first) => {
                    let first = &services[first];
                    clashes.push((
                        spec.name.clone(),
                        Error::Stack {
                            path: spec.manifest_path.clone(),
                            message: format!(
                                "slug `{}` is already used by service `{}` ({}); give one of them another sso.slug",
                                spec.slug,
                                first.name,
                                first.manifest_path.display()
                            ),
                        },
                    ));
                }
                None => {
                    by_slug.insert(spec.slug.clone(), spec.name.clone());
                }
            }
        }
        let (owners, conflicts) = EnvOwners::index(&services);
        // A key of a service set twice in `.env`: which line the operator meant is theirs to say,
        // and the service stops before anything is registered for it.
        let mut doubled = Vec::new();
        for (key, lines) in env.duplicates() {
            if let Some(owner) = owners.owner(&key).filter(|o| services.contains_key(*o)) {
                doubled.push((
                    owner.to_string(),
                    Error::Stack {
                        path: env.path().to_path_buf(),
                        message: format!(
                            "{} (a key of service `{owner}`)",
                            envfile::duplicate_message(&key, &lines)
                        ),
                    },
                ));
            }
        }
        for (name, e) in clashes.into_iter().chain(conflicts).chain(doubled) {
            if let Some(spec) = services.remove(&name) {
                broken.insert(name.clone(), Broken::new(&name, &spec.manifest_path, &e));
            }
        }
        let (profiles, default_profile) = load_profiles(&root.join("services.yaml"))?;
        let services_yaml = root.join("services.yaml");
        for (profile, members) in &profiles {
            if let Some(unknown) = members
                .iter()
                .find(|m| !packages.join(m.as_str()).join("manifest.yaml").is_file())
            {
                return Err(Error::Stack {
                    path: services_yaml.clone(),
                    message: format!(
                        "profile `{profile}` lists `{unknown}`, which has no packages/{unknown}/manifest.yaml"
                    ),
                });
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            env,
            services,
            broken,
            profiles,
            default_profile,
            owners,
        })
    }

    /// Services of a profile (or the default one) that have SSO, in profile order, and those
    /// of its members whose manifest is broken.
    pub fn profile_services(&self, profile: Option<&str>) -> Result<Selection> {
        let chosen = profile.map(str::to_string).or_else(|| self.default_profile.clone());
        let names: Vec<String> = match chosen {
            Some(p) => {
                let members = self.profiles.get(&p).ok_or_else(|| {
                    Error::Config(format!(
                        "profile `{p}` is not in {} (profiles: {})",
                        self.root.join("services.yaml").display(),
                        self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                if members.is_empty() {
                    return Err(Error::Config(format!(
                        "profile `{p}` in {} lists no services: nothing to do",
                        self.root.join("services.yaml").display()
                    )));
                }
                members.clone()
            }
            None => self.services.keys().chain(self.broken.keys()).cloned().collect(),
        };
        Ok(self.selection(
            names
                .into_iter()
                .filter(|n| self.services.contains_key(n) || self.broken.contains_key(n)),
        ))
    }

    /// The named services; an unknown name or one without `sso:` is an error naming it, a
    /// broken one is selected as broken.
    pub fn named(&self, names: &[String]) -> Result<Selection> {
        for n in names {
            if self.services.contains_key(n) || self.broken.contains_key(n) {
                continue;
            }
            let has_folder = self.root.join("packages").join(n).join("manifest.yaml").is_file();
            return Err(Error::Config(if has_folder {
                format!("service `{n}` has no `sso:` block in packages/{n}/manifest.yaml")
            } else {
                format!(
                    "no service `{n}` under {} (services with SSO: {})",
                    self.root.join("packages").display(),
                    self.services.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }));
        }
        Ok(self.selection(names.iter().cloned()))
    }

    fn selection(&self, names: impl Iterator<Item = String>) -> Selection {
        let mut selection = Selection::default();
        for name in names {
            if selection.order.contains(&name) {
                continue;
            }
            match (self.services.get(&name), self.broken.get(&name)) {
                (Some(spec), _) => selection.services.push(spec.clone()),
                (None, Some(broken)) => selection.broken.push(broken.clone()),
                (None, None) => continue,
            }
            selection.order.push(name);
        }
        selection
    }

    /// ssoctl's own setting `key` (`AUTHENTIK_*`): see [`EnvFile::setting`].
    pub fn setting(&self, key: &str) -> Option<String> {
        self.env.setting(key)
    }

    /// Which service owns `.env` key `key`: a declaration under `sso.env` (or a key named by
    /// `sso.http.*_env`) wins, then the longest matching service prefix. `AUTHENTIK_*` keys
    /// belong to no service.
    pub fn env_owner(&self, key: &str) -> Option<&str> {
        self.owners.owner(key)
    }

    /// Whether some manifest expands `key` with `${VAR}`: the operator's input (a service's API
    /// origin, its public host), which no flow may set.
    pub fn env_expanded(&self, key: &str) -> bool {
        self.owners.expanded.contains(key)
    }
}

/// Profiles (name → services) and the default profile's name.
type Profiles = (BTreeMap<String, Vec<String>>, Option<String>);

/// Reads `services.yaml`: `profiles: {<name>: {services: [<folder>, ...]}}` and an optional
/// `default_profile`. Held to that shape like a manifest: every service is a folder name under
/// `packages/` (never a path), listed once per profile; errors name the file and line.
fn load_profiles(path: &Path) -> Result<Profiles> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((BTreeMap::new(), None)),
        Err(e) => return Err(Error::io(path, e)),
    };
    let doc: Value = serde_yaml::from_str(&text).map_err(|e| manifest::yaml_error(path, &e))?;
    let lines = Manifest::lines_of(&text);
    let bad = |line: Option<usize>, message: String| Error::Stack {
        path: path.to_path_buf(),
        message: match line {
            Some(line) => format!("line {line}: {message}"),
            None => message,
        },
    };
    let doc = match doc {
        Value::Null => return Ok((BTreeMap::new(), None)),
        Value::Mapping(m) => m,
        _ => {
            return Err(bad(
                Some(1),
                "services.yaml must be a mapping with `profiles:` (name → `services:` list)".into(),
            ));
        }
    };
    let mut profiles = BTreeMap::new();
    match doc.get("profiles") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(map)) => {
            for (name, body) in map {
                let name = name
                    .as_str()
                    .ok_or_else(|| bad(lines.line_of(&["profiles"]), "profile names must be strings".into()))?;
                let at = lines.line_of(&["profiles", name]);
                let list = match body.get("services") {
                    Some(Value::Sequence(list)) if body.is_mapping() => list,
                    Some(Value::Null) if body.is_mapping() => &Vec::new(),
                    _ => {
                        return Err(bad(
                            at,
                            format!("profile `{name}` must be a mapping with a `services:` list of folder names"),
                        ));
                    }
                };
                let mut services: Vec<String> = Vec::new();
                for item in list {
                    let service = item
                        .as_str()
                        .ok_or_else(|| bad(at, format!("profile `{name}`: service names must be strings")))?;
                    let line = lines.line_after(at.unwrap_or(1), service).or(at);
                    if !valid_service_name(service) {
                        return Err(bad(
                            line,
                            format!(
                                "profile `{name}` lists `{}`: a service is a folder name under packages/ (letters, \
                                 digits, `-`, `_`, `.`; not a path)",
                                service.escape_debug()
                            ),
                        ));
                    }
                    if services.iter().any(|s| s == service) {
                        return Err(bad(line, format!("profile `{name}` lists `{service}` twice")));
                    }
                    services.push(service.to_string());
                }
                profiles.insert(name.to_string(), services);
            }
        }
        Some(_) => {
            return Err(bad(
                lines.line_of(&["profiles"]),
                "`profiles:` must map each profile name to `services: [...]`".into(),
            ));
        }
    }
    let default = match doc.get("default_profile") {
        None | Some(Value::Null) => (profiles.len() == 1).then(|| profiles.keys().next().cloned()).flatten(),
        Some(Value::String(p)) if profiles.contains_key(p) => Some(p.clone()),
        Some(other) => {
            return Err(bad(
                lines.line_of(&["default_profile"]),
                format!(
                    "default_profile `{}` is not one of the profiles ({})",
                    serde_yaml::to_string(other).unwrap_or_default().trim(),
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    };
    Ok((profiles, default))
}

/// A service name as `packages/<name>/` holds it: one plain folder name.
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `${VAR}` from `.env` (or the process environment); an unset variable is an error naming it,
/// and so is an `AUTHENTIK_*` one: ssoctl's own settings (the admin token among them) never
/// become a service's. Each variable expanded is added to `expanded`.
fn interpolate(path: &Path, what: &str, text: &str, env: &EnvFile, expanded: &mut Vec<String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| Error::Stack {
            path: path.to_path_buf(),
            message: format!("{what}: unclosed `${{` in `{text}`"),
        })?;
        let var = &after[..end];
        if var.starts_with("AUTHENTIK_") {
            return Err(Error::Stack {
                path: path.to_path_buf(),
                message: format!(
                    "{what} uses ${{{var}}}: AUTHENTIK_* settings are ssoctl's own and never expand into a service's"
                ),
            });
        }
        let value = env
            .get(var)
            .map(str::to_string)
            .or_else(|| std::env::var(var).ok())
            .ok_or_else(|| Error::Stack {
                path: path.to_path_buf(),
                message: format!("{what} uses ${{{var}}}, which is not set in {}", env.path().display()),
            })?;
        if !expanded.iter().any(|v| v == var) {
            expanded.push(var.to_string());
        }
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Stock types that cannot work without a redirect (or ACS) path; drop-in types decide for
/// themselves.
const NEEDS_REDIRECT: [&str; 4] = ["oauth", "oidc", "saml", "frappe"];

fn resolve_service(name: &str, path: &Path, manifest: &Manifest, env: &EnvFile) -> Result<Option<ServiceSpec>> {
    let Some(sso) = manifest.sso() else {
        return Ok(None);
    };
    let bad = |message: String| Error::Stack {
        path: path.to_path_buf(),
        message,
    };
    let get = |k: &str| sso.get(k);
    // Shape errors point at the key's line.
    let at = |k: &str, message: String| {
        bad(match manifest.line_of(&["sso", k]) {
            Some(line) => format!("line {line}: {message}"),
            None => message,
        })
    };
    let sso_type = match get("type") {
        None | Some(Value::Null) => {
            return Err(bad(
                "sso.type is missing (oauth, oidc, saml, proxy, wikijs, frappe or a drop-in type)".into(),
            ));
        }
        Some(Value::String(t)) if t.trim().is_empty() => return Err(at("type", "sso.type is empty".into())),
        Some(Value::String(t)) => t.trim().to_string(),
        Some(_) => return Err(at("type", "sso.type must be a string such as oidc".into())),
    };
    let slug = get("slug").and_then(Value::as_str).unwrap_or(name).to_string();
    if slug.is_empty() || !slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || slug.len() > 50 {
        return Err(at(
            "slug",
            format!("slug `{slug}` must be 1-50 letters, digits, `-` or `_`"),
        ));
    }
    let mut expanded_env = Vec::new();
    // Authentik's `Application.reserved_slugs` (refused from 2025.8): the names of its OAuth2
    // endpoints under `/application/o/`, which an application of that slug would shadow on
    // every release.
    const RESERVED_SLUGS: [&str; 6] = ["authorize", "token", "device", "userinfo", "introspect", "revoke"];
    if RESERVED_SLUGS.contains(&slug.as_str()) {
        return Err(at(
            "slug",
            format!(
                "slug `{slug}` is one of Authentik's OAuth2 endpoints ({}); give the service another sso.slug",
                RESERVED_SLUGS.join(", ")
            ),
        ));
    }
    let public_url = match manifest.str("public_url") {
        Some(url) => interpolate(path, "public_url", url, env, &mut expanded_env)?,
        None => interpolate(
            path,
            "the default public URL",
            &format!("https://{name}.${{ASD_TUNNEL_HOST}}"),
            env,
            &mut expanded_env,
        )?,
    };
    let public_url = public_url.trim_end_matches('/').to_string();
    // Every URL registered for the service is built on this one: it must be an origin (and
    // optional path) that cannot turn into another host or swallow the path appended to it.
    let top = |k: &str, message: String| {
        bad(match manifest.line_of(&[k]) {
            Some(line) => format!("line {line}: {message}"),
            None => message,
        })
    };
    let parsed = declared::http_url(&public_url).map_err(|e| top("public_url", format!("public_url {e}")))?;
    if parsed.query().is_some() || parsed.fragment().is_some() || public_url.contains(['?', '#']) {
        return Err(top(
            "public_url",
            format!("public_url `{public_url}` has a query or fragment; paths are appended to it"),
        ));
    }
    let strings = |key: &str| -> Result<Vec<String>> {
        match get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("sso.{key} must list strings")))
                })
                .collect(),
            Some(_) => Err(at(key, format!("sso.{key} must be a string or a list of strings"))),
        }
    };
    let mut redirect_uris = Vec::new();
    for p in strings("redirect_path")?.into_iter().chain(strings("redirect_paths")?) {
        let p = interpolate(path, "sso.redirect_path", &p, env, &mut expanded_env)?;
        if !p.starts_with('/') {
            return Err(at(
                "redirect_path",
                format!("sso.redirect_path `{}` must start with `/`", p.escape_debug()),
            ));
        }
        // A line break would register a second URI (Authentik stores redirect URIs one per
        // line on older releases); a fragment is never sent back by a browser.
        if p.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#')
        {
            return Err(at(
                "redirect_path",
                format!(
                    "sso.redirect_path `{}` contains whitespace, a control character, `\\` or `#`",
                    p.escape_debug()
                ),
            ));
        }
        redirect_uris.push(RedirectUri {
            regex: false,
            url: format!("{public_url}{p}"),
        });
    }
    for r in strings("redirect_uris_regex")? {
        let r = interpolate(path, "sso.redirect_uris_regex", &r, env, &mut expanded_env)?;
        if r.chars().any(char::is_control) {
            return Err(at(
                "redirect_uris_regex",
                format!(
                    "sso.redirect_uris_regex `{}` contains a control character",
                    r.escape_debug()
                ),
            ));
        }
        redirect_uris.push(RedirectUri { regex: true, url: r });
    }
    if redirect_uris.is_empty() && NEEDS_REDIRECT.contains(&sso_type.as_str()) {
        return Err(bad(format!(
            "sso.redirect_path is missing: a `{sso_type}` service needs the path Authentik redirects back to \
             (or redirect_paths / redirect_uris_regex)"
        )));
    }
    let declared_env = match get("env") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Mapping(m)) => m
            .keys()
            .map(|k| {
                let key = k.as_str().ok_or_else(|| bad("sso.env keys must be strings".into()))?;
                if !valid_env_key(key) {
                    return Err(bad(format!(
                        "sso.env key `{key}` is not a valid .env name (A-Z, 0-9, _)"
                    )));
                }
                if key.starts_with("AUTHENTIK_") {
                    return Err(bad(format!(
                        "sso.env key `{key}`: AUTHENTIK_* keys belong to ssoctl, not to a service"
                    )));
                }
                Ok(key.to_string())
            })
            .collect::<Result<Vec<_>>>()?,
        Some(_) => return Err(bad("sso.env must map .env keys to values".into())),
    };
    let display_name = manifest
        .str("name")
        .map(str::to_string)
        .unwrap_or_else(|| name.to_string());
    let configured = match get("configured") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(at("configured", "sso.configured must be true or false".into())),
    };
    let env_prefix = match get("env_prefix") {
        None | Some(Value::Null) => {
            let prefix = format!("{}_", name.to_ascii_uppercase().replace('-', "_"));
            if !valid_env_key(&prefix) || prefix.starts_with("AUTHENTIK_") {
                return Err(bad(format!(
                    "the folder name `{name}` does not make a .env prefix (`{prefix}` is not A-Z, 0-9 and `_`, \
                     or is ssoctl's own AUTHENTIK_); set sso.env_prefix"
                )));
            }
            prefix
        }
        Some(Value::String(p)) if valid_env_key(p) && p.ends_with('_') && !p.starts_with("AUTHENTIK_") => p.clone(),
        Some(_) => {
            return Err(at(
                "env_prefix",
                "sso.env_prefix must be an upper-case .env prefix ending in `_` (not AUTHENTIK_)".into(),
            ));
        }
    };
    let mut settings = Vec::new();
    for (k, v) in manifest::flatten(sso) {
        // `${VAR}` from .env in any setting, e.g. `http.base_url: ${ERPNEXT_API_URL}`.
        let v = if v.contains("${") {
            interpolate(path, &format!("sso.{k}"), &v, env, &mut expanded_env)?
        } else {
            v
        };
        settings.push((k, v));
    }
    let declared = Declared::parse(&public_url, &settings).map_err(bad)?;
    // The scope mapping ssoctl derives from `sso.roles` reaches the flow like one the operator
    // wrote (stack/roles.rs), after theirs.
    if let Some((scope, expression)) = declared.roles.as_ref().and_then(roles::DeclaredRoles::claim_mapping) {
        let index = declared.scope_mappings.len() - 1;
        settings.push((format!("scope_mappings.{index}.scope"), scope));
        settings.push((format!("scope_mappings.{index}.expression"), expression));
        settings.push((
            format!("scope_mappings.{index}.description"),
            "roles from sso.roles (ssoctl)".to_string(),
        ));
    }
    // Empty lists leave no trace in the flattened settings: an `sso.access` that names nobody
    // must not read as no `sso.access` (an application open to every user).
    if sso.contains_key("access") && declared.access.is_none() {
        return Err(at(
            "access",
            "sso.access lists no group or user, so nobody could log in: list `groups` or `users`, or remove \
             sso.access to leave the application open to every user"
                .into(),
        ));
    }
    // The credentials the service's own API needs (`sso.http.auth`) must be in `.env` before
    // anything is registered: found missing half-way, they leave a provider and application
    // behind for a service that is not configured.
    let setting = |k: &str| settings.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let needed: &[&str] = match setting("http.auth") {
        Some("token") => &["key_env", "secret_env"],
        Some("bearer" | "http-token") => &["key_env"],
        _ => &[],
    };
    for field in needed {
        let line = |m: String| match manifest
            .line_of(&["sso", "http", field])
            .or(manifest.line_of(&["sso", "http"]))
        {
            Some(line) => bad(format!("line {line}: {m}")),
            None => bad(m),
        };
        let key = setting(&format!("http.{field}")).ok_or_else(|| {
            line(format!(
                "sso.http.{field} must name the .env key that holds the API credential"
            ))
        })?;
        if env.get(key).is_none_or(str::is_empty) {
            return Err(line(format!(
                "sso.http.{field}: {key} is not set in {}; the flow needs it to configure the service's side",
                env.path().display()
            )));
        }
    }
    // Keys the manifest names as the service's credentials (`sso.http.key_env`, ...) are claimed
    // like `sso.env` keys: no other service may own them.
    let mut named_env = Vec::new();
    for (k, v) in &settings {
        if k.ends_with("_env") && valid_env_key(v) && !declared_env.contains(v) && !named_env.contains(v) {
            if v.starts_with("AUTHENTIK_") {
                return Err(bad(format!(
                    "sso.{k}: `{v}` is ssoctl's own setting, never a service's"
                )));
            }
            named_env.push(v.clone());
        }
    }
    Ok(Some(ServiceSpec {
        name: name.to_string(),
        slug,
        display_name,
        sso_type,
        public_url,
        redirect_uris,
        env_prefix,
        declared_env,
        settings,
        manifest_path: path.to_path_buf(),
        configured,
        declared,
        expanded_env,
        named_env,
    }))
}

pub fn valid_env_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Stack>) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let s = Stack::load(dir.path());
        (dir, s)
    }

    #[test]
    fn resolves_urls_and_ownership() {
        let (_d, s) = stack(&[
            (".env", "ASD_TUNNEL_HOST=example.org\n"),
            (
                "packages/grafana/manifest.yaml",
                "sso:\n  type: oidc\n  redirect_path: /login/generic_oauth\n  env:\n    GF_AUTH_GENERIC_OAUTH_CLIENT_ID: '{client_id}'\n",
            ),
            (
                "packages/grafana-agent/manifest.yaml",
                "sso:\n  type: oauth\n  redirect_paths: [/a, /b]\n  redirect_uris_regex: ['https://.*\\.example\\.org/cb']\n",
            ),
            ("packages/postgres/manifest.yaml", "image: postgres\n"),
        ]);
        let s = s.unwrap();
        assert_eq!(s.services.len(), 2, "postgres has no sso block");
        let g = &s.services["grafana"];
        assert_eq!(g.public_url, "https://grafana.example.org");
        assert_eq!(
            g.redirect_uris,
            vec![RedirectUri {
                regex: false,
                url: "https://grafana.example.org/login/generic_oauth".into()
            }]
        );
        assert_eq!(s.env_owner("GF_AUTH_GENERIC_OAUTH_CLIENT_ID"), Some("grafana"));
        assert_eq!(s.env_owner("GRAFANA_OIDC_ISSUER"), Some("grafana"));
        assert_eq!(
            s.env_owner("GRAFANA_AGENT_OAUTH_CLIENT_ID"),
            Some("grafana-agent"),
            "longest prefix wins where no manifest names the key"
        );
        // With a prefix of its own (`sso.env_prefix`).
        let (_d2, s) = stack(&[
            (".env", "ASD_TUNNEL_HOST=example.org\n"),
            (
                "packages/grafana/manifest.yaml",
                "sso:\n  type: oidc\n  redirect_path: /login/generic_oauth\n",
            ),
            (
                "packages/grafana-agent/manifest.yaml",
                "sso:\n  type: oauth\n  env_prefix: AGENT_\n  redirect_paths: [/a, /b]\n  redirect_uris_regex: ['https://.*\\.example\\.org/cb']\n",
            ),
        ]);
        let s = s.unwrap();
        assert!(s.broken.is_empty(), "{:?}", s.broken);
        assert_eq!(s.services["grafana-agent"].redirect_uris.len(), 3);
        assert_eq!(s.env_owner("AGENT_OAUTH_CLIENT_ID"), Some("grafana-agent"));
        assert_eq!(s.env_owner("AUTHENTIK_ADMIN_TOKEN"), None);
        assert_eq!(s.env_owner("POSTGRES_PASSWORD"), None);
    }

    #[test]
    fn reserved_slugs_are_refused() {
        let (_d, s) = stack(&[
            (".env", "ASD_TUNNEL_HOST=example.org\n"),
            (
                "packages/token/manifest.yaml",
                "sso:\n  type: oidc\n  redirect_path: /cb\n",
            ),
            (
                "packages/app/manifest.yaml",
                "sso:\n  type: oidc\n  slug: authorize\n  redirect_path: /cb\n",
            ),
        ]);
        let s = s.unwrap();
        for name in ["token", "app"] {
            assert!(
                s.broken[name].error.contains("is one of Authentik's OAuth2 endpoints"),
                "{:?}",
                s.broken
            );
        }
    }

    #[test]
    fn missing_tunnel_host_is_named() {
        let (_d, s) = stack(&[(
            "packages/grafana/manifest.yaml",
            "sso:\n  type: oidc\n  redirect_path: /x\n",
        )]);
        let s = s.unwrap();
        assert!(s.services.is_empty());
        let err = s.broken["grafana"].error.clone();
        assert_eq!(s.broken["grafana"].sso_type, "oidc");
        assert!(
            err.contains("packages/grafana/manifest.yaml") && err.contains("ASD_TUNNEL_HOST"),
            "{err}"
        );
    }

    #[test]
    fn profiles_choose_services() {
        let (_d, s) = stack(&[
            (".env", "ASD_TUNNEL_HOST=x.org\n"),
            (
                "services.yaml",
                "default_profile: core\nprofiles:\n  core:\n    services: [b]\n  all:\n    services: [a, b, db]\n",
            ),
            ("packages/a/manifest.yaml", "sso: {type: oauth, redirect_path: /cb}\n"),
            ("packages/b/manifest.yaml", "sso: {type: oidc, redirect_path: /cb}\n"),
            ("packages/db/manifest.yaml", "image: postgres\n"),
        ]);
        let s = s.unwrap();
        let names = |v: Selection| v.services.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(s.profile_services(None).unwrap()), vec!["b"]);
        assert_eq!(names(s.profile_services(Some("all")).unwrap()), vec!["a", "b"]);
        let err = s.profile_services(Some("nope")).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("core"), "{err}");
        let err = s.named(&["db".into()]).unwrap_err().to_string();
        assert!(err.contains("no `sso:` block"), "{err}");
    }
}
