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
//!   inverts it. A group binding passes when the user is a direct member of the group.
//!
//! The REST side: `/core/groups/` (list, create, retrieve, delete, `add_user`, `remove_user`) and
//! `/policies/bindings/` (list, create, retrieve, update, delete); saving a group or a binding
//! clears the application cache, deleting a binding does not (no `post_delete` handler).
//!
//! Not modelled: policy objects (expression, reputation, …) — a binding here names a group or a
//! user; group parents and roles; users other than the token's (`for_user`).

use serde_json::Value;

/// A group of users.
#[derive(Clone, Debug)]
pub struct Group {
    pub pk: String,
    /// The integer id Authentik shows beside the uuid (`num_pk`).
    pub num_pk: u64,
    pub name: String,
    /// Member user pks.
    pub users: Vec<u64>,
}

/// A policy binding of a group or a user to an application (`target` is its `pbm_uuid`).
#[derive(Clone, Debug)]
pub struct Binding {
    pub pk: String,
    pub target: String,
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

/// Whether `user` passes the bindings on `target` under `mode` (`any` or `all`).
pub fn passes(groups: &[Group], bindings: &[Binding], target: &str, mode: &str, user: u64) -> bool {
    let mut relevant: Vec<&Binding> = bindings.iter().filter(|b| b.target == target && b.enabled).collect();
    if relevant.is_empty() {
        return true;
    }
    relevant.sort_by_key(|b| b.order);
    let result = |b: &Binding| {
        let raw = match (&b.group, b.user) {
            (Some(g), _) => groups.iter().any(|x| &x.pk == g && x.users.contains(&user)),
            (None, Some(u)) => u == user,
            (None, None) => false,
        };
        raw != b.negate
    };
    if mode == "all" {
        relevant.into_iter().all(result)
    } else {
        relevant.into_iter().any(result)
    }
}
