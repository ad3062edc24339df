//! Who may see an application: users, groups and policy bindings, Authentik's policy engine as
//! far as group and user bindings decide it, and the per-user application list cache.
//!
//! Modelled on Authentik's code (read at the release tags of the `SAY-5/authentik` fork, which
//! carries upstream's `version/*` tags):
//! - `authentik/core/api/applications.py` `ApplicationViewSet.list`: without
//!   `superuser_full_list=true` the list runs the policy engine for the requesting user,
//!   superusers included; `superuser_full_list` is honoured only for superusers (silently
//!   ignored otherwise). From 2024.4 the page is cut first and then filtered, so `results` can be
//!   shorter than the page while `pagination.count` counts every matching application; 2024.2
//!   does the same but its cache key has no page number; 2023.10 returns every allowed
//!   application, unsliced, under page-1 metadata.
//! - the cache (`user_app_cache_key`, timeout 86400 s): the allowed list per user (and page from
//!   2024.4); an empty list counts as a miss; `search` bypasses it. Cleared for every user when
//!   an application is *created* (`authentik/core/signals.py` `post_save_application` returns
//!   early on updates, and there is no delete handler) and when a binding, group or user is saved
//!   (`authentik/policies/signals.py` `invalidate_policy_cache`). Before 2025.10.3 the cached
//!   objects are served as they were (stale names, deleted applications still listed); from
//!   2025.10.3 `_expand_applications` re-reads them by pk (deleted ones disappear, edits show).
//! - `authentik/policies/engine.py`: an application without enabled bindings passes
//!   (`empty_result=True`); `policy_engine_mode` `any` (default) or `all`; a binding's `negate`
//!   inverts it. A group binding passes when the user is a member of the group or of one of its
//!   descendants (`PolicyBinding.passes` → `Group.is_member` → `User.all_groups`).
//!
//! The REST side: `/core/users/`, `/core/groups/` (with `add_user`, `remove_user`) and
//! `/policies/bindings/`; saving a user, a group or a binding clears the application cache;
//! deleting a binding and `add_user`/`remove_user` (a many-to-many change, no `post_save`) do not.
//! Superuser status comes from groups (`Group.is_superuser`, inherited by descendants' members).
//!
//! Policy objects: the dummy policy only (`authentik/policies/dummy/models.py`: a fixed
//! `result` and the message `dummy`; its random wait of `wait_min`..`wait_max` seconds is not
//! slept), enough to give an application a binding that is neither a group nor a user, which a
//! client must ask Authentik about. Not modelled: other policies (expression, reputation, …),
//! roles and object permissions (a token's user is a superuser or may do nothing).

use serde_json::Value;

/// A group of users.
#[derive(Clone, Debug)]
pub struct Group {
    pub pk: String,
    /// The integer id Authentik shows beside the uuid (`num_pk`).
    pub num_pk: u64,
    pub name: String,
    /// Member user pks (direct members).
    pub users: Vec<u64>,
    /// Parent group pks: at most one up to 2025.10 (`Group.parent`, a foreign key), any number
    /// from 2025.12 (`Group.parents`, many-to-many through `GroupParentageNode`).
    pub parents: Vec<String>,
    /// Members are superusers (`Group.is_superuser`), members of its descendants too.
    pub is_superuser: bool,
}

/// A user (`authentik/core/models.py` `User`).
#[derive(Clone, Debug)]
pub struct User {
    pub pk: u64,
    pub uuid: String,
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    pub path: String,
    /// `internal`, `external`, `service_account` or `internal_service_account`.
    pub kind: String,
}

/// The groups `user` belongs to for policy decisions: its direct groups and all their ancestors
/// (`User.all_groups`, a recursive query over the parents in every release; a group binding
/// passes for members of the group's descendants, never for members of its ancestors). Cycles
/// end because a group is visited once.
pub fn all_groups(groups: &[Group], user: u64) -> Vec<&Group> {
    let mut found: Vec<&Group> = groups.iter().filter(|g| g.users.contains(&user)).collect();
    let mut i = 0;
    while i < found.len() {
        for parent in &found[i].parents {
            if let Some(g) = groups.iter().find(|g| &g.pk == parent)
                && !found.iter().any(|f| f.pk == g.pk)
            {
                found.push(g);
            }
        }
        i += 1;
    }
    found
}

/// Whether `user` is a superuser: a member of a superuser group or of one of its descendants
/// (`User.is_superuser`: `all_groups().filter(is_superuser=True).exists()`).
pub fn is_superuser(groups: &[Group], user: u64) -> bool {
    all_groups(groups, user).iter().any(|g| g.is_superuser)
}

/// `DummyPolicy`: a fixed result.
#[derive(Clone, Debug)]
pub struct DummyPolicy {
    pub pk: String,
    pub name: String,
    pub execution_logging: bool,
    pub result: bool,
    pub wait_min: i64,
    pub wait_max: i64,
}

/// A policy binding of a policy, a group or a user to an application (`target` is its
/// `pbm_uuid`).
#[derive(Clone, Debug)]
pub struct Binding {
    pub pk: String,
    pub target: String,
    pub policy: Option<String>,
    pub group: Option<String>,
    pub user: Option<u64>,
    pub negate: bool,
    pub enabled: bool,
    pub order: i64,
}

/// The user the admin token belongs to (`akadmin`, a superuser, pk 1 in a fresh install).
pub const TOKEN_USER: u64 = 1;

/// The cached allowed applications: per page (`None` for 2024.2, whose key has no page), the
/// pks and the rendered objects as they were when cached.
#[derive(Clone, Debug, Default)]
pub struct AppCache {
    pub entries: std::collections::HashMap<Option<usize>, Vec<(String, Value)>>,
}

impl AppCache {
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// What the policy engine decides for `user` on `target` under `mode` (`any` or `all`), and the
/// messages of the results (`PolicyEngine.result`: every result's messages, in binding order).
fn decide(
    groups: &[Group],
    bindings: &[Binding],
    policies: &[DummyPolicy],
    target: &str,
    mode: &str,
    user: u64,
) -> (bool, Vec<String>) {
    let mut relevant: Vec<&Binding> = bindings.iter().filter(|b| b.target == target && b.enabled).collect();
    if relevant.is_empty() {
        return (true, Vec::new());
    }
    relevant.sort_by_key(|b| b.order);
    let mine = all_groups(groups, user);
    let mut messages = Vec::new();
    let results: Vec<bool> = relevant
        .into_iter()
        .map(|b| {
            let raw = match (&b.policy, &b.group, b.user) {
                (Some(p), _, _) => match policies.iter().find(|x| &x.pk == p) {
                    Some(policy) => {
                        messages.push("dummy".to_string());
                        policy.result
                    }
                    None => false,
                },
                // `Group.is_member`: `user.all_groups()` holds it (authentik/core/models.py).
                (None, Some(g), _) => mine.iter().any(|x| &x.pk == g),
                (None, None, Some(u)) => u == user,
                (None, None, None) => false,
            };
            raw != b.negate
        })
        .collect();
    let passing = if mode == "all" {
        results.iter().all(|r| *r)
    } else {
        results.iter().any(|r| *r)
    };
    (passing, messages)
}

impl crate::world::World {
    /// The policy engine's decision (and messages) for `user` on `app`.
    pub fn decide_access(&self, app: &crate::world::Application, user: u64) -> (bool, Vec<String>) {
        decide(
            &self.groups,
            &self.bindings,
            &self.policies,
            &app.pbm_uuid,
            &app.policy_engine_mode,
            user,
        )
    }
}
