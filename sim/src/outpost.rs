//! The embedded outpost's HTTP side, and the authorize endpoint it sends strangers to.
//!
//! Modelled on Authentik's Go proxy, `internal/outpost/proxyv2/` (read at `version/2025.10.0`
//! of the `SAY-5/authentik` fork, which carries upstream's tags, and compared with 2024.2.0 and
//! 2024.6.0), and on `authentik/providers/oauth2/views/authorize.py`:
//! - `/outpost.goauthentik.io/ping` answers 204 on every host (`HandlePing`, before any lookup).
//! - The application is found by the request's host, `X-Forwarded-Host` first
//!   (`internal/utils/web/host.go` `GetHost`): a proxy provider attached to the embedded outpost
//!   and used by an application whose `external_host` has that host (port included), else a
//!   `forward_domain` one whose cookie domain ends the host, the longest (`handlers.go`
//!   `lookupApp`). The embedded outpost hands a host it does not know to the core, which has no
//!   such path: 404 (`proxyv2.go` `HandleHost`).
//! - `auth/traefik` and `auth/caddy` (`mode_forward.go`): the forwarded URL is
//!   `X-Forwarded-Proto://X-Forwarded-Host X-Forwarded-Uri` (no proto: 500 `configuration
//!   error`); a forwarded URL carrying `X-authentik-auth-callback=true` is the callback,
//!   `X-authentik-logout=true` the sign-out; a session with a user gets 200 and the
//!   `X-authentik-*` headers (`mode_common.go` `getHeaders`); a path `skip_path_regex` allows
//!   gets 200 without them; anyone else a 302 straight to Authentik's authorize endpoint
//!   (`oauth.go` `handleAuthStart`, the same in every release modelled), with a session cookie
//!   when the request had none.
//! - `auth/nginx`: `X-Original-URI`/`X-Original-URL`; 401 `unauthorized request` for a
//!   stranger (nginx turns it into a redirect to `start`), 200 on `/outpost.goauthentik.io/` paths.
//! - `start?rd=`: the same redirect, `rd` kept when it is relative or on the provider's host
//!   (`forward_domain`: under the cookie domain); `callback`: the state must be one this outpost
//!   issued for the session the cookie names, else 400 with an empty body (2024.6 and later;
//!   earlier releases kept the state in the session and sent the user back instead); the code
//!   is exchanged and the user lands on the state's URL (a code that does not exchange: the same
//!   URL, still a stranger); `sign_out`: the session is deleted and the user sent to the
//!   provider's end-session URL (no session: to `start`).
//! - The session cookie is `authentik_proxy_` and 8 characters: of the client id up to 2025.6,
//!   of the hex SHA-256 of the client id from 2025.8 (`application.go` `NewApplication`); `Path=/`,
//!   `HttpOnly`, `SameSite=Lax`, `Secure` on an https external host, `Domain` the cookie domain.
//! - The authorize endpoint: an unknown `client_id` or a `redirect_uri` the provider does not
//!   allow is a 400 page (strict entries compared exactly, regex entries matched whole); a
//!   request without a logged-in user is sent to the default authentication flow with `next`; a
//!   user the application's bindings refuse is denied (`World::decide_access`); otherwise a
//!   code, appended to the redirect URI with the state.
//!
//! The simulator has no login flow: a request carrying the cookie `authentik_session=sim:<username>`
//! is that user's (tests and `ssoctl sim` users set it).
//! - `proxy` mode: every path of the application's host is the outpost's; a user with a session
//!   is passed on to the internal host (`Host` kept, `X-Forwarded-Host` set, the identity headers
//!   set over any the client sent, the answer marked `X-Powered-By: goauthentik.io`), an upstream
//!   that does not answer is a 502; anyone else is sent to `start` (`mode_proxy.go`).
//!
//! Not modelled: header and basic authentication (`intercept_header_auth`), the state's JWT form
//! (here an opaque random token), token lifetimes and refresh.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::world::{ProxyProvider, World};

const PREFIX: &str = "/outpost.goauthentik.io";
const CALLBACK_SIGNATURE: &str = "X-authentik-auth-callback";
const LOGOUT_SIGNATURE: &str = "X-authentik-logout";
/// The cookie that stands for an Authentik login in the simulator.
pub const LOGIN_COOKIE: &str = "authentik_session";

/// The outpost's sessions, pending logins and the codes the authorize endpoint issued.
#[derive(Clone, Debug, Default)]
pub struct OutpostState {
    sessions: HashMap<String, Session>,
    states: HashMap<String, Pending>,
    codes: HashMap<String, Code>,
}

#[derive(Clone, Debug)]
struct Session {
    provider: u64,
    user: Option<u64>,
    token: String,
}

#[derive(Clone, Debug)]
struct Pending {
    sid: String,
    provider: u64,
    redirect: String,
}

#[derive(Clone, Debug)]
struct Code {
    user: u64,
    client_id: String,
    redirect_uri: String,
}

/// What the outpost needs of one application it serves.
#[derive(Clone, Debug)]
struct App {
    provider: ProxyProvider,
    slug: String,
}

/// Whether the request may be the outpost's or the authorize endpoint's: anything but the API
/// and the simulator's own pages (checked before the simulated state is locked, so API requests
/// do not wait for it twice).
pub fn concerns(uri: &Uri) -> bool {
    !uri.path().starts_with("/api/v3/") && !uri.path().starts_with("/-/")
}

/// What the outpost does with a request.
pub enum Answer {
    /// It answers.
    Respond(Response),
    /// It passes the request on to the application (`proxy` mode): the caller sends it, holding
    /// no lock on the simulated state.
    Forward(Forward),
}

/// A request the outpost passes on to a `proxy` provider's internal host.
pub struct Forward {
    /// The internal host's scheme and authority with the request's path and query.
    pub url: String,
    /// The request's headers, the identity headers set over any the client sent.
    pub headers: HeaderMap,
}

/// Answers the request when it is the outpost's or the authorize endpoint's; `None` leaves it to
/// the API.
/// Every method is served alike (gorilla's routes in `NewApplication` take any method).
pub fn handle(world: &mut World, uri: &Uri, headers: &HeaderMap) -> Option<Answer> {
    let path = uri.path();
    let answer = |r: Response| Some(Answer::Respond(r));
    if path == "/application/o/authorize/" {
        return answer(authorize(world, uri, headers));
    }
    if path.starts_with(&format!("{PREFIX}/ping")) {
        return answer(StatusCode::NO_CONTENT.into_response());
    }
    let query = uri.query().unwrap_or("");
    let signed = has_signature(query, CALLBACK_SIGNATURE) || has_signature(query, LOGOUT_SIGNATURE);
    let host = request_host(headers);
    let app = lookup_app(world, &host);
    let proxied = app.as_ref().is_some_and(|a| a.provider.mode == "proxy");
    if !path.starts_with(PREFIX) && !signed && !proxied {
        return None;
    }
    let Some(app) = app else {
        // The embedded outpost leaves an unknown host to the core, which has no such page.
        return answer(not_found());
    };
    if !path.starts_with(PREFIX) && !signed {
        return Some(proxy_mode(world, &app, uri, headers));
    }
    let request_url = format!("{}://{host}{}", scheme_of(&app.provider.external_host), uri);
    if has_signature(query, CALLBACK_SIGNATURE) {
        return answer(callback(world, &app, &request_url, headers));
    }
    if has_signature(query, LOGOUT_SIGNATURE) {
        return answer(sign_out(world, &app, path, headers));
    }
    answer(match path.strip_prefix(PREFIX).unwrap_or("") {
        "/auth/traefik" | "/auth/caddy" => forward_traefik(world, &app, headers),
        "/auth/nginx" => forward_nginx(world, &app, headers),
        "/start" => start(world, &app, uri, headers),
        "/callback" => callback(world, &app, &request_url, headers),
        "/sign_out" => sign_out(world, &app, path, headers),
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    })
}

fn has_signature(query: &str, key: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == key && v.eq_ignore_ascii_case("true"))
}

fn param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// `GetHost`: `X-Forwarded-Host` when set, else `Host`.
fn request_host(headers: &HeaderMap) -> String {
    header_str(headers, "x-forwarded-host")
        .or(header_str(headers, "host"))
        .unwrap_or("")
        .to_string()
}

fn scheme_of(url: &str) -> &str {
    url.split("://").next().unwrap_or("http")
}

/// The host (and port, when the URL has one) of a URL, as Go's `url.URL.Host`.
fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn lookup_app(world: &World, host: &str) -> Option<App> {
    let embedded = world
        .outposts
        .iter()
        .find(|o| o.managed.as_deref() == Some("goauthentik.io/outposts/embedded"))?;
    // `ProxyOutpostConfigViewSet`: the outpost's proxy providers that have an application.
    let with_app: std::collections::HashSet<u64> = world.applications.values().filter_map(|a| a.provider).collect();
    let served = embedded
        .providers
        .iter()
        .filter(|pk| with_app.contains(pk))
        .filter_map(|pk| world.proxy.get(pk));
    let host = host.to_ascii_lowercase();
    let exact = served.clone().find(|p| host_of(&p.external_host) == host);
    let provider = exact.or_else(|| {
        served
            .filter(|p| p.mode == "forward_domain")
            .filter_map(|p| {
                let domain = p.cookie_domain.trim_start_matches('.').to_ascii_lowercase();
                (!domain.is_empty() && host.ends_with(&domain)).then_some((domain.len(), p))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, p)| p)
    })?;
    let app = world.applications.values().find(|a| a.provider == Some(provider.pk))?;
    Some(App {
        provider: provider.clone(),
        slug: app.slug.clone(),
    })
}

/// `authentik_proxy_` and 8 characters of the client id, hashed from 2025.8.
fn session_cookie(world: &World, provider: &ProxyProvider) -> String {
    let suffix: String = if world.release() >= (2025, 8, 0) {
        hex::encode(Sha256::digest(provider.client_id.as_bytes()))[..8].to_string()
    } else {
        provider.client_id.chars().take(8).collect()
    };
    format!("authentik_proxy_{suffix}")
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn random_token(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(raw)
}

/// The session the request's cookie names for this application, if the outpost has it.
fn session_id(world: &World, app: &App, headers: &HeaderMap) -> Option<String> {
    let sid = cookie(headers, &session_cookie(world, &app.provider))?;
    let session = world.outpost.sessions.get(sid)?;
    (session.provider == app.provider.pk).then(|| sid.to_string())
}

fn authenticated_user(world: &World, app: &App, headers: &HeaderMap) -> Option<(u64, String)> {
    let sid = session_id(world, app, headers)?;
    let session = world.outpost.sessions.get(&sid)?;
    session.user.map(|u| (u, session.token.clone()))
}

/// `Set-Cookie` for a session of `app`.
fn set_cookie(world: &World, app: &App, sid: &str) -> HeaderValue {
    let p = &app.provider;
    let mut c = format!(
        "{}={sid}; Path=/; Max-Age={}; HttpOnly",
        session_cookie(world, p),
        validity_seconds(&p.access_token_validity) + 1
    );
    if !p.cookie_domain.is_empty() {
        c.push_str(&format!("; Domain={}", p.cookie_domain));
    }
    if scheme_of(&p.external_host) == "https" {
        c.push_str("; Secure");
    }
    c.push_str("; SameSite=Lax");
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Authentik's `timedelta_string` (`hours=24;minutes=5`) in seconds.
fn validity_seconds(text: &str) -> u64 {
    text.split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(unit, n)| {
            let n: f64 = n.trim().parse().unwrap_or(0.0);
            let per = match unit.trim() {
                "weeks" => 604_800.0,
                "days" => 86_400.0,
                "hours" => 3_600.0,
                "minutes" => 60.0,
                "seconds" => 1.0,
                _ => 0.0,
            };
            (n * per) as u64
        })
        .sum()
}

/// `createState` and the redirect to Authentik's authorize endpoint (`handleAuthStart`).
fn auth_start(world: &mut World, app: &App, headers: &HeaderMap, redirect: String) -> Response {
    let mut new_cookie = None;
    let sid = match session_id(world, app, headers) {
        Some(sid) => sid,
        None => {
            let sid = random_token(32);
            world.outpost.sessions.insert(
                sid.clone(),
                Session {
                    provider: app.provider.pk,
                    user: None,
                    token: String::new(),
                },
            );
            new_cookie = Some(set_cookie(world, app, &sid));
            sid
        }
    };
    let state = random_token(32);
    world.outpost.states.insert(
        state.clone(),
        Pending {
            sid,
            provider: app.provider.pk,
            redirect,
        },
    );
    // golang.org/x/oauth2 `AuthCodeURL`: `url.Values.Encode`, keys in sorted order.
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &app.provider.client_id)
        .append_pair("redirect_uri", &callback_url(&app.provider))
        .append_pair("response_type", "code")
        .append_pair("scope", &scopes(world, &app.provider).join(" "))
        .append_pair("state", &state);
    let location = format!("{}/application/o/authorize/?{}", world.base_url, query.finish());
    let mut response = redirect_to(&location);
    if let Some(c) = new_cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// `<external_host>/outpost.goauthentik.io/callback?X-authentik-auth-callback=true`.
fn callback_url(p: &ProxyProvider) -> String {
    format!(
        "{}{PREFIX}/callback?{CALLBACK_SIGNATURE}=true",
        p.external_host.trim_end_matches('/')
    )
}

/// The scopes of the provider's mappings (`ScopesToRequest`).
fn scopes(world: &World, p: &ProxyProvider) -> Vec<String> {
    let mut out: Vec<String> = p
        .property_mappings
        .iter()
        .filter_map(|pk| world.scope_mappings.iter().find(|m| &m.pk == pk))
        .map(|m| m.scope_name.clone())
        .collect();
    out.dedup();
    out
}

fn redirect_to(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>Not Found</title><h1>Not Found</h1>",
    )
        .into_response()
}

/// `getTraefikForwardUrl`.
fn traefik_forward_url(headers: &HeaderMap) -> Option<String> {
    let proto = header_str(headers, "x-forwarded-proto")?;
    let host = header_str(headers, "x-forwarded-host").unwrap_or("");
    let uri = header_str(headers, "x-forwarded-uri").unwrap_or("");
    Some(format!("{proto}://{host}{uri}"))
}

fn forward_traefik(world: &mut World, app: &App, headers: &HeaderMap) -> Response {
    let Some(fwd) = traefik_forward_url(headers) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "configuration error\n");
    };
    let fwd_query = fwd.split_once('?').map(|(_, q)| q).unwrap_or("");
    if has_signature(fwd_query, CALLBACK_SIGNATURE) {
        return callback(world, app, &fwd, headers);
    }
    if has_signature(fwd_query, LOGOUT_SIGNATURE) {
        let path = path_of(&fwd);
        return sign_out(world, app, &path, headers);
    }
    if let Some((user, token)) = authenticated_user(world, app, headers) {
        return identity(world, app, user, &token, headers);
    }
    if allowlisted(app, &fwd) {
        return StatusCode::OK.into_response();
    }
    auth_start(world, app, headers, fwd)
}

fn forward_nginx(world: &mut World, app: &App, headers: &HeaderMap) -> Response {
    let Some(url) = header_str(headers, "x-original-uri").or(header_str(headers, "x-original-url")) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "configuration error\n");
    };
    if let Some((user, token)) = authenticated_user(world, app, headers) {
        return identity(world, app, user, &token, headers);
    }
    if allowlisted(app, url) || path_of(url).starts_with(PREFIX) {
        return StatusCode::OK.into_response();
    }
    text(StatusCode::UNAUTHORIZED, "unauthorized request\n")
}

/// The path of an absolute or relative URL.
fn path_of(url: &str) -> String {
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => url,
    };
    rest.split(['?', '#']).next().unwrap_or("/").to_string()
}

/// `IsAllowlisted`: each line of `skip_path_regex`, searched (not anchored) in the path, or in
/// the whole URL for `forward_domain`.
fn allowlisted(app: &App, url: &str) -> bool {
    let subject = if app.provider.mode == "forward_domain" {
        url.to_string()
    } else {
        path_of(url)
    };
    app.provider
        .skip_path_regex
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .any(|l| regex::Regex::new(l).is_ok_and(|re| re.is_match(&subject)))
}

/// 200 and the identity headers (`getHeaders`).
fn identity(world: &World, app: &App, user: u64, token: &str, headers: &HeaderMap) -> Response {
    if !world.users.iter().any(|u| u.pk == user) {
        return text(StatusCode::UNAUTHORIZED, "unauthorized request\n");
    }
    let mut r = StatusCode::OK.into_response();
    set_identity(world, app, user, token, headers, r.headers_mut());
    r
}

/// Sets the identity headers for `user` in `out`, over any of the same name.
fn set_identity(world: &World, app: &App, user: u64, token: &str, request: &HeaderMap, out: &mut HeaderMap) {
    let Some(u) = world.users.iter().find(|u| u.pk == user) else {
        return;
    };
    // The `groups` claim of the profile scope: the user's own groups (`ak_groups`).
    let groups: Vec<&str> = world
        .groups
        .iter()
        .filter(|g| g.users.contains(&user))
        .map(|g| g.name.as_str())
        .collect();
    let outpost = world
        .outposts
        .iter()
        .find(|o| o.managed.as_deref() == Some("goauthentik.io/outposts/embedded"))
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let sub = hex::encode(Sha256::digest(format!("{}-{}", u.pk, INSTALL_ID).as_bytes()));
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    set("x-authentik-username", &u.username);
    set("x-authentik-groups", &groups.join("|"));
    set("x-authentik-entitlements", "");
    set("x-authentik-email", &u.email);
    set("x-authentik-name", &u.name);
    set("x-authentik-uid", &sub);
    set("x-authentik-jwt", token);
    set(
        "x-authentik-meta-jwks",
        &format!("{}/application/o/{}/jwks/", world.base_url, app.slug),
    );
    set("x-authentik-meta-outpost", &outpost);
    set("x-authentik-meta-provider", &app.provider.name);
    set("x-authentik-meta-app", &app.slug);
    set(
        "x-authentik-meta-version",
        &format!("goauthentik.io/outpost/{}", world.schema.version),
    );
    set("user-agent", header_str(request, "user-agent").unwrap_or(""));
}

/// `proxy` mode (`mode_proxy.go` `configureProxy`): a user with a session is passed on to the
/// internal host with the identity headers and `X-Forwarded-Host`, the `Host` kept; a skipped
/// path is passed on as it came; anyone else is sent to `start`.
fn proxy_mode(world: &World, app: &App, uri: &Uri, headers: &HeaderMap) -> Answer {
    let user = authenticated_user(world, app, headers);
    if user.is_none() && !allowlisted(app, &uri.to_string()) {
        return Answer::Respond(redirect_to_start(app, uri.path()));
    }
    let mut forwarded = headers.clone();
    if let Some((user, token)) = user {
        set_identity(world, app, user, &token, headers, &mut forwarded);
    }
    if let Some(host) = headers.get(header::HOST) {
        forwarded.insert("x-forwarded-host", host.clone());
    }
    let internal = app.provider.internal_host.trim_end_matches('/');
    let origin = match internal.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)),
        None => internal.to_string(),
    };
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Answer::Forward(Forward {
        url: format!("{origin}{path_and_query}"),
        headers: forwarded,
    })
}

/// The simulator's stand-in for the install id in `hashed_user_id`.
const INSTALL_ID: &str = "ssoctl-sim";

fn start(world: &mut World, app: &App, uri: &Uri, headers: &HeaderMap) -> Response {
    let rd = param(uri.query().unwrap_or(""), "rd").unwrap_or_default();
    let redirect = checked_rd(app, &rd).unwrap_or_default();
    auth_start(world, app, headers, redirect)
}

/// `checkRedirectParam`: a relative `rd` is put on the external host; an absolute one must be on
/// the provider's host (`forward_domain`: under its cookie domain).
fn checked_rd(app: &App, rd: &str) -> Option<String> {
    if rd.is_empty() {
        return None;
    }
    let p = &app.provider;
    if !rd.contains("://") {
        return Some(format!("{}{rd}", p.external_host.trim_end_matches('/')));
    }
    let host = host_of(rd);
    let ok = if p.mode == "forward_domain" {
        host.ends_with(&p.cookie_domain.to_ascii_lowercase())
    } else {
        host == host_of(&p.external_host)
    };
    ok.then(|| rd.to_string())
}

/// `handleAuthCallback`.
fn callback(world: &mut World, app: &App, url: &str, headers: &HeaderMap) -> Response {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let state = param(query, "state").unwrap_or_default();
    let sid = session_id(world, app, headers);
    let pending = world.outpost.states.get(&state).cloned();
    let valid = match (&pending, &sid) {
        (Some(p), Some(sid)) => &p.sid == sid && p.provider == app.provider.pk,
        _ => false,
    };
    let external = app.provider.external_host.clone();
    if !valid {
        if world.release() < (2024, 6, 0) {
            // Before 2024.6 the state lived in the session; a missing one sent the user back.
            return redirect_to(&external);
        }
        return StatusCode::BAD_REQUEST.into_response();
    }
    let pending = pending.expect("checked");
    let sid = sid.expect("checked");
    world.outpost.states.remove(&state);
    let target = if pending.redirect.is_empty() {
        external
    } else {
        pending.redirect.clone()
    };
    let code = param(query, "code").unwrap_or_default();
    let exchanged = world
        .outpost
        .codes
        .remove(&code)
        .filter(|c| c.client_id == app.provider.client_id && c.redirect_uri == callback_url(&app.provider));
    let Some(code) = exchanged else {
        return redirect_to(&target);
    };
    if let Some(session) = world.outpost.sessions.get_mut(&sid) {
        session.user = Some(code.user);
        session.token = format!("sim-access-token-{}", random_token(16));
    }
    let mut r = redirect_to(&target);
    r.headers_mut().append(header::SET_COOKIE, set_cookie(world, app, &sid));
    r
}

/// `handleSignOut`.
fn sign_out(world: &mut World, app: &App, path: &str, headers: &HeaderMap) -> Response {
    let Some((user, token)) = authenticated_user(world, app, headers) else {
        return redirect_to_start(app, path);
    };
    // Every session of that user on this outpost ends.
    world.outpost.sessions.retain(|_, s| s.user != Some(user));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &token)
        .finish();
    redirect_to(&format!(
        "{}/application/o/{}/end-session/?{query}",
        world.base_url, app.slug
    ))
}

/// `redirectToStart`: to the outpost's `start` on the external host, `rd` the path asked for.
fn redirect_to_start(app: &App, path: &str) -> Response {
    let external = app.provider.external_host.trim_end_matches('/');
    let rd = format!("{external}{path}");
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("rd", &rd)
        .finish();
    redirect_to(&format!("{external}{PREFIX}/start?{query}"))
}

/// Authentik's authorize endpoint, as far as the outpost's logins use it.
fn authorize(world: &mut World, uri: &Uri, headers: &HeaderMap) -> Response {
    let query = uri.query().unwrap_or("");
    let client_id = param(query, "client_id").unwrap_or_default();
    let redirect_uri = param(query, "redirect_uri").unwrap_or_default();
    let state = param(query, "state").unwrap_or_default();
    let bad = |title: &str, message: &str| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!("<!doctype html><title>{title}</title><h1>{title}</h1><p>{message}</p>"),
        )
            .into_response()
    };
    // Which provider the client id names, its allowed redirect URIs and its application.
    let found = world
        .proxy
        .values()
        .find(|p| p.client_id == client_id)
        .map(|p| (p.pk, world.proxy_callback_uris(&p.external_host)))
        .or_else(|| {
            world
                .oauth2
                .values()
                .find(|p| p.client_id == client_id)
                .map(|p| (p.pk, p.redirect_uris.clone()))
        });
    let Some((provider, allowed)) = found else {
        return bad(
            "Client ID Error",
            "The client identifier (client_id) is missing or invalid.",
        );
    };
    let allowed_uri = allowed.iter().any(|a| match a.matching_mode.as_str() {
        "regex" => fancy_regex::Regex::new(&format!("^(?:{})$", a.url))
            .ok()
            .and_then(|re| re.is_match(&redirect_uri).ok())
            .unwrap_or(false),
        _ => a.url == redirect_uri,
    });
    if !allowed_uri {
        return bad(
            "Redirect URI Error",
            "The request fails due to a missing, invalid, or mismatching redirection URI (redirect_uri).",
        );
    }
    let Some(app) = world
        .applications
        .values()
        .find(|a| a.provider == Some(provider))
        .cloned()
    else {
        return bad("Application Error", "The provider has no application.");
    };
    let user = cookie(headers, LOGIN_COOKIE)
        .and_then(|v| v.strip_prefix("sim:"))
        .and_then(|name| world.users.iter().find(|u| u.username == name && u.is_active))
        .map(|u| u.pk);
    let Some(user) = user else {
        let next = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &uri.to_string())
            .finish();
        return redirect_to(&format!("{}/flows/-/default/authentication/?{next}", world.base_url));
    };
    if !world.decide_access(&app, user).0 {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><title>Permission denied</title><h1>Permission denied</h1>",
        )
            .into_response();
    }
    let code = random_token(16);
    world.outpost.codes.insert(
        code.clone(),
        Code {
            user,
            client_id,
            redirect_uri: redirect_uri.clone(),
        },
    );
    let mut extra = form_urlencoded::Serializer::new(String::new());
    extra.append_pair("code", &code);
    if !state.is_empty() {
        extra.append_pair("state", &state);
    }
    let join = if redirect_uri.contains('?') { '&' } else { '?' };
    redirect_to(&format!("{redirect_uri}{join}{}", extra.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_and_paths_read_as_the_outpost_reads_them() {
        assert_eq!(validity_seconds("hours=24"), 86_400);
        assert_eq!(validity_seconds("hours=1;minutes=30"), 5_400);
        assert_eq!(path_of("https://a.example/x/y?z=1"), "/x/y");
        assert_eq!(path_of("https://a.example"), "/");
        assert_eq!(
            path_of("/outpost.goauthentik.io/start?rd=x"),
            "/outpost.goauthentik.io/start"
        );
        assert_eq!(host_of("https://A.example:8443/x"), "a.example:8443");
    }
}
