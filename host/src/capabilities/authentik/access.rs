//! `ensure-access` (sso:flow 0.2.0): who may use the service's application, as group and user
//! policy bindings on it (docs/authentik-api.md §6).
//!
//! The host marks the bindings it makes by their `order` ([`OWN_ORDERS`]): Authentik keeps no
//! other field a client could use, and an administrator's bindings in the admin interface start
//! at 0. Bindings in that range that name a group or user are ssoctl's, and only those are ever
//! removed; every other binding on the application (a policy, a group an administrator bound, a
//! negated one) is reported as a warning and kept. Groups and users must exist: creating them is
//! the operator's decision, not a flow's.

use serde_json::json;

use crate::authentik::models::{Group, PolicyBinding, User};
use crate::bindings::sso::flow::authentik::AccessSpec;
use crate::capabilities::state::{FlowError, Mode, RunState};

/// Where Authentik lists policy bindings.
pub const BINDINGS: &str = "policies/bindings/";

/// The `order` values of the bindings ssoctl makes: groups from 10000, users from 10500.
pub const OWN_ORDERS: std::ops::Range<i64> = 10_000..11_000;
const FIRST_USER_ORDER: i64 = 10_500;

/// Who a binding admits.
#[derive(Clone, Debug, PartialEq)]
enum Subject {
    Group { pk: String, name: String },
    User { pk: u64, username: String },
}

impl Subject {
    fn describe(&self) -> String {
        match self {
            Subject::Group { name, .. } => format!("group `{name}`"),
            Subject::User { username, .. } => format!("user `{username}`"),
        }
    }

    fn matches(&self, b: &PolicyBinding) -> bool {
        match self {
            Subject::Group { pk, .. } => b.group.as_deref() == Some(pk.as_str()),
            Subject::User { pk, .. } => b.user == Some(*pk),
        }
    }
}

/// A binding ssoctl made: in its order range, a group or a user, not negated.
fn is_own(b: &PolicyBinding) -> bool {
    OWN_ORDERS.contains(&b.order) && b.policy.is_none() && (b.group.is_some() || b.user.is_some()) && !b.negate
}

/// What a binding someone else made admits or decides, for the warning that keeps it.
fn describe_foreign(b: &PolicyBinding) -> String {
    let what = if let Some(p) = &b.policy_obj {
        format!("policy `{}`", p.name)
    } else if let Some(g) = &b.group_obj {
        format!("group `{}`", g.name)
    } else if let Some(u) = &b.user_obj {
        format!("user `{}`", u.username)
    } else {
        "a binding".to_string()
    };
    let negated = if b.negate { ", negated" } else { "" };
    let disabled = if b.enabled { "" } else { ", disabled" };
    format!("{what} (order {}{negated}{disabled})", b.order)
}

/// Ensures exactly `spec`'s group and user bindings on the application ensured in this run.
pub async fn ensure_access(state: &mut RunState, spec: &AccessSpec) -> Result<(), FlowError> {
    state.access_ensured = true;
    let ak = state.ctx.authentik.clone();
    let manifest = state.service.manifest_path.display().to_string();
    let mut wanted = Vec::new();
    for name in &spec.groups {
        let found = ak
            .list::<Group>("core/groups/", &[("name", name.clone())])
            .await
            .map_err(|e| state.upstream(e))?
            .into_iter()
            .find(|g| &g.name == name);
        match found {
            Some(g) => wanted.push(Subject::Group { pk: g.pk, name: g.name }),
            None => {
                return Err(FlowError::NotFound(format!(
                    "group `{name}` (sso.access in {manifest}) does not exist in Authentik: create it, or remove it \
                     from sso.access; ssoctl does not create groups"
                )));
            }
        }
    }
    for username in &spec.users {
        let found = ak
            .list::<User>("core/users/", &[("username", username.clone())])
            .await
            .map_err(|e| state.upstream(e))?
            .into_iter()
            .find(|u| &u.username == username);
        match found {
            Some(u) => wanted.push(Subject::User {
                pk: u.pk,
                username: u.username,
            }),
            None => {
                return Err(FlowError::NotFound(format!(
                    "user `{username}` (sso.access in {manifest}) does not exist in Authentik"
                )));
            }
        }
    }
    let slug = state.service.slug.clone();
    let Some(Some(target)) = state.application.clone() else {
        // The application does not exist yet (check or plan): every binding is still to make.
        for s in &wanted {
            match state.mode {
                Mode::Check => state.finding(
                    "access-binding-missing",
                    format!("{} is not bound to application `{slug}`", s.describe()),
                ),
                _ => state.change(format!("bind {} to application `{slug}`", s.describe())),
            }
        }
        return Ok(());
    };
    let bindings = ak
        .list::<PolicyBinding>(BINDINGS, &[("target", target.clone())])
        .await
        .map_err(|e| state.upstream(e))?;
    for b in bindings.iter().filter(|b| !is_own(b)) {
        state.warn(format!(
            "application `{slug}` has a binding ssoctl did not make, kept: {}",
            describe_foreign(b)
        ));
    }
    let own: Vec<&PolicyBinding> = bindings.iter().filter(|b| is_own(b)).collect();
    // Each new binding takes the first order of its range no binding on the application uses.
    let mut used: Vec<i64> = bindings.iter().map(|b| b.order).collect();
    let mut free_order = |from: i64| {
        let mut order = from;
        while used.contains(&order) {
            order += 1;
        }
        used.push(order);
        order
    };
    for s in &wanted {
        if own.iter().any(|b| s.matches(b) && b.enabled) {
            continue;
        }
        match state.mode {
            Mode::Check => state.finding(
                "access-binding-missing",
                format!("{} is not bound to application `{slug}`", s.describe()),
            ),
            Mode::Plan => state.change(format!("bind {} to application `{slug}`", s.describe())),
            Mode::Apply => {
                let (field, value, from) = match s {
                    Subject::Group { pk, .. } => ("group", json!(pk), OWN_ORDERS.start),
                    Subject::User { pk, .. } => ("user", json!(pk), FIRST_USER_ORDER),
                };
                let body = json!({
                    "target": target, field: value, "order": free_order(from),
                    "negate": false, "enabled": true, "timeout": 30,
                });
                ak.post::<serde_json::Value>(BINDINGS, &body)
                    .await
                    .map_err(|e| state.upstream(e))?;
                state.change(format!("bound {} to application `{slug}`", s.describe()));
            }
        }
    }
    for b in own.iter().filter(|b| !wanted.iter().any(|s| s.matches(b) && b.enabled)) {
        let what = describe_foreign(b);
        match state.mode {
            Mode::Check => state.finding(
                "access-binding-extra",
                format!("application `{slug}` has ssoctl's binding of {what}, which sso.access no longer lists"),
            ),
            Mode::Plan => state.change(format!("remove ssoctl's binding of {what} from application `{slug}`")),
            Mode::Apply => {
                ak.delete(&format!("policies/bindings/{}/", b.pk))
                    .await
                    .map_err(|e| state.upstream(e))?;
                state.change(format!("removed ssoctl's binding of {what} from application `{slug}`"));
            }
        }
    }
    Ok(())
}

/// What the host does after a flow returned, whatever the flow called: the application it
/// ensured ends with exactly the manifest's `sso.access`. A flow built against sso:flow 0.1.0
/// cannot call `ensure-access`, and a drop-in may simply not: without this the application would
/// stay open to every user although the manifest restricts it. Without `sso.access`, the bindings
/// ssoctl made earlier are drift (the manifest dropped them), found in the one shared listing of
/// bindings rather than a request per service.
pub async fn complete(state: &mut RunState) -> Result<(), FlowError> {
    if !state.access_ensured {
        complete_access(state).await?;
    }
    role_groups_exist(state).await
}

/// Every group `sso.roles` names exists: a role mapped from a group Authentik does not have is
/// given to nobody, silently, in the service.
async fn role_groups_exist(state: &mut RunState) -> Result<(), FlowError> {
    let Some(roles) = state.service.declared.roles.clone() else {
        return Ok(());
    };
    // One listing of groups for the whole command, shared by every service that maps roles.
    let groups = state
        .ctx
        .authentik
        .snapshot("core/groups/")
        .await
        .map_err(|e| state.upstream(e))?;
    for (group, role) in roles.groups() {
        let found = groups.find("name", group).is_some();
        if !found {
            return Err(FlowError::NotFound(format!(
                "group `{group}` (role `{role}` in sso.roles, {}) does not exist in Authentik: create it, or remove it \
                 from sso.roles; ssoctl does not create groups",
                state.service.manifest_path.display()
            )));
        }
    }
    Ok(())
}

async fn complete_access(state: &mut RunState) -> Result<(), FlowError> {
    let Some(application) = state.application.clone() else {
        return Ok(());
    };
    if let Some(declared) = state.service.declared.access.clone() {
        tracing::debug!(
            service = %state.service.name,
            "the flow did not call ensure-access: ssoctl applies sso.access itself"
        );
        let spec = AccessSpec {
            groups: declared.groups,
            users: declared.users,
        };
        return ensure_access(state, &spec).await;
    }
    let slug = state.service.slug.clone();
    let Some(target) = application else {
        // Not created yet (check or plan): it will be created without bindings.
        if state.mode == Mode::Check {
            state.warn("open to every Authentik user (no sso.access)".to_string());
        }
        return Ok(());
    };
    if state.application_created {
        // Created by this run: nothing is bound to it yet, and nothing needs asking.
        return Ok(());
    }
    let all = state
        .ctx
        .authentik
        .snapshot(BINDINGS)
        .await
        .map_err(|e| state.upstream(e))?;
    let bindings: Vec<PolicyBinding> = all
        .items()
        .iter()
        .filter(|b| b.get("target").and_then(|t| t.as_str()) == Some(target.as_str()))
        .filter_map(|b| serde_json::from_value(b.clone()).ok())
        .collect();
    let (own, foreign): (Vec<&PolicyBinding>, Vec<&PolicyBinding>) = bindings.iter().partition(|b| is_own(b));
    for b in &own {
        let what = describe_foreign(b);
        match state.mode {
            Mode::Check => state.finding(
                "access-binding-extra",
                format!("application `{slug}` has ssoctl's binding of {what}, but the manifest has no sso.access"),
            ),
            Mode::Plan => state.change(format!("remove ssoctl's binding of {what} from application `{slug}`")),
            Mode::Apply => {
                state
                    .ctx
                    .authentik
                    .delete(&format!("policies/bindings/{}/", b.pk))
                    .await
                    .map_err(|e| state.upstream(e))?;
                state.change(format!("removed ssoctl's binding of {what} from application `{slug}`"));
            }
        }
    }
    if state.mode == Mode::Check {
        if foreign.is_empty() {
            state.warn("open to every Authentik user (no sso.access)".to_string());
        } else {
            let what: Vec<String> = foreign.iter().map(|b| describe_foreign(b)).collect();
            state.warn(format!(
                "no sso.access: who may use application `{slug}` is decided by bindings ssoctl did not make: {}",
                what.join("; ")
            ));
        }
    }
    Ok(())
}
