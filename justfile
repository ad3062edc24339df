# Recipes operators already use, now backed by ssoctl. `just --list` shows them.
# The stack root defaults to this folder; set SSOCTL_ROOT to run against another one.

ssoctl := env_var_or_default("SSOCTL", "ssoctl")

# Check one service, or every service of the default profile: ✓/❌ per service, exit 1 on drift.
sso-check svc="":
    {{ssoctl}} check {{svc}}

# Register one service with Authentik (provider, application, .env, configured: true).
sso-add svc:
    {{ssoctl}} add {{svc}}

# Repair one service's drift, changing only what differs.
sso-fix svc:
    {{ssoctl}} fix {{svc}}

# Repair every service of the default profile.
sso-fix-all:
    {{ssoctl}} fix --all

# Configure every not-yet-configured service of a profile (services.yaml).
bootstrap-local profile="full":
    {{ssoctl}} bootstrap --profile {{profile}}

# The Authentik applications ssoctl manages, and those no manifest claims.
authentik-apps:
    {{ssoctl}} apps

# Who may use which application (users × applications, with the reason), for compliance reviews;
# `just authentik-access --csv > access.csv`.
authentik-access *args:
    {{ssoctl}} access {{args}}
