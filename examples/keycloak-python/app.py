"""`sso.type: keycloak`, in Python: the twin of examples/keycloak (Rust), line for line.

Registers the service as a confidential OpenID Connect client in a Keycloak realm through the
admin REST API (reached through `idp-http`, granted by the operator), and writes the client id,
secret and issuer to the service's `.env` keys. The client secret is captured by the host from
Keycloak's answer and stored as a handle: this code never sees it.

Build (no WASI: `--stub-wasi` replaces every WASI import with a trap, and the world `idp-flow`
imports only what this flow may use):

    pip install -r requirements.txt
    componentize-py -d ../../wit -w idp-flow componentize app --stub-wasi -o setup-keycloak.wasm

Manifest settings: `realm` (required), `client_id` (default: the slug), `env` (key -> template,
with `{client_id}`, `{issuer}`, ..., and `{client_secret}` as a whole value).
"""

import json
import re
from urllib.parse import quote

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import flow
from wit_world.imports import idp_http, log, service_config, types

SECRET_PLACEHOLDER = "{client_secret}"


def fail(kind, message):
    return Err(kind(message))


def send(method, path, body=None, capture=None):
    """One request to Keycloak: (status, parsed body or None, captured secret or None)."""
    response = idp_http.send(
        service_config.HttpRequest(
            method=method,
            path=path,
            body=None if body is None else json.dumps(body),
            secret=None,
            bearer=None,
            capture=[capture] if capture else [],
        )
    )
    try:
        parsed = json.loads(response.body) if response.body.strip() else None
    except ValueError:
        parsed = response.body
    captured = response.captured[0] if response.captured else None
    return response.status, parsed, captured


def expect_ok(answer, what):
    status, body, _ = answer
    if 200 <= status < 300:
        return answer
    detail = None
    if isinstance(body, dict):
        detail = next((body[k] for k in ("errorMessage", "error_description", "error") if isinstance(body.get(k), str)), None)
    detail = detail or json.dumps(body)
    hint = {401: " (the service account's token was refused)", 403: " (the service account lacks manage-clients in this realm)"}.get(status, "")
    raise fail(types.FlowError_Upstream, f"Keycloak answered {status} to {what}: {detail}{hint}")


def desired(service, client_id):
    redirects = []
    for uri in service.redirect_uris:
        if uri.matching == types.MatchMode.REGEX:
            raise fail(
                types.FlowError_Unsupported,
                f"Keycloak has no regular-expression redirect URIs (`{uri.url}`); use redirect_path, or a URI ending in `*`",
            )
        redirects.append(uri.url)
    if not redirects:
        raise fail(types.FlowError_Invalid, "no redirect URI: set sso.redirect_path in the manifest")
    return {
        "clientId": client_id,
        "name": service.display_name,
        "protocol": "openid-connect",
        "enabled": True,
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": True,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "redirectUris": redirects,
        "webOrigins": ["+"],
        "rootUrl": service.public_url,
        "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": "+"},
    }


def differences(current, want):
    differ = []
    for field, wanted in want.items():
        have = current.get(field)
        if field == "attributes" and isinstance(have, dict):
            same = all(have.get(k) == v for k, v in wanted.items())
        elif isinstance(wanted, list) and isinstance(have, list):
            same = len(wanted) == len(have) and all(x in have for x in wanted)
        else:
            same = wanted == have
        if not same:
            differ.append(field)
    return differ


def find_client(clients_path, client_id):
    path = f"{clients_path}?clientId={quote(client_id, safe='')}"
    _, body, _ = expect_ok(send("GET", path), f"GET {path}")
    for client in body if isinstance(body, list) else []:
        if client.get("clientId") == client_id:
            return client
    return None


def expand(key, template, values):
    """`{name}` placeholders, as the Rust SDK's template::expand."""
    def one(match):
        name = match.group(1)
        if name == "client_secret":
            raise fail(types.FlowError_Invalid, f"sso.env.{key}: {SECRET_PLACEHOLDER} must be the whole value, not part of `{template}`")
        if name not in values:
            raise fail(types.FlowError_Invalid, f"sso.env.{key}: unknown placeholder {{{name}}}")
        return values[name]
    return re.sub(r"\{([^}]*)\}", one, template)


def event(message):
    log.event(message)


class Flow(exports.Flow):
    def describe(self):
        return flow.FlowInfo(
            sso_type="keycloak",
            version="0.1.0",
            description="confidential OIDC client in a Keycloak realm (admin REST API), in Python",
        )

    def run(self, service, mode):
        settings = dict(service.settings)
        realm = settings.get("realm")
        if not realm:
            raise fail(types.FlowError_Invalid, "sso.realm names the Keycloak realm of the client")
        client_id = settings.get("client_id", service.slug)
        keycloak = idp_http.origin()
        clients_path = f"/admin/realms/{quote(realm, safe='')}/clients"
        want = desired(service, client_id)
        findings = []

        current = find_client(clients_path, client_id)
        created = False
        if current is None:
            if mode == types.Mode.CHECK:
                findings.append(types.Finding(kind="client-missing", message=f"no client `{client_id}` in realm `{realm}` of {keycloak}"))
                return flow.Outcome(summary="Keycloak client missing", findings=findings)
            # Plan mode records the POST and gets 204; apply mode gets 201 and the client.
            expect_ok(send("POST", clients_path, want), f"POST {clients_path}")
            current = find_client(clients_path, client_id)
            created = True

        if current is not None and not created:
            differ = differences(current, want)
            if differ:
                if mode == types.Mode.CHECK:
                    findings.append(types.Finding(kind="client-drift", message=f"client `{client_id}` in realm `{realm}` differs: {', '.join(differ)}"))
                else:
                    merged = dict(current)
                    for field, value in want.items():
                        if field == "attributes":
                            merged[field] = {**(current.get("attributes") or {}), **value}
                        else:
                            merged[field] = value
                    path = f"{clients_path}/{current.get('id', '')}"
                    expect_ok(send("PUT", path, merged), f"PUT {path}")
                    if mode == types.Mode.APPLY:
                        event(f"updated Keycloak client `{client_id}` ({', '.join(differ)})")

        # The secret: captured by the host from Keycloak's answer, never seen here.
        secret = None
        if current is not None and current.get("id"):
            path = f"{clients_path}/{current['id']}/client-secret"
            _, _, secret = expect_ok(send("GET", path, capture="/value"), f"GET {path}")
            if secret is None:
                raise fail(types.FlowError_Upstream, f"Keycloak returned no secret for client `{client_id}`")

        issuer = f"{keycloak}/realms/{realm}"
        endpoint = lambda p: f"{issuer}/protocol/openid-connect/{p}"
        values = {
            "client_id": client_id,
            "issuer": issuer,
            "discovery_url": f"{issuer}/.well-known/openid-configuration",
            "authorize_url": endpoint("auth"),
            "token_url": endpoint("token"),
            "userinfo_url": endpoint("userinfo"),
            "jwks_url": endpoint("certs"),
            "end_session_url": endpoint("logout"),
            "public_url": service.public_url,
            "keycloak_url": keycloak,
            "realm": realm,
            "slug": service.slug,
        }
        entries = [(k[len("env."):], v) for k, v in service.settings if k.startswith("env.")]
        if not entries:
            prefix = service.env_prefix
            entries = [
                (f"{prefix}OIDC_CLIENT_ID", "{client_id}"),
                (f"{prefix}OIDC_CLIENT_SECRET", SECRET_PLACEHOLDER),
                (f"{prefix}OIDC_ISSUER", "{issuer}"),
            ]
        for key, template in entries:
            if template == SECRET_PLACEHOLDER:
                if secret is not None:
                    service_config.set_env_secret(key, secret)
            else:
                service_config.set_env(key, expand(key, template, values))
        if created and mode == types.Mode.APPLY:
            event(f"registered Keycloak client `{client_id}` in {issuer}")
        summary = "Keycloak client present, redirects match" if not findings else "Keycloak client differs"
        return flow.Outcome(summary=summary, findings=findings)
