//! The `/api/v3` operations the simulator implements, with Authentik's semantics: required and
//! unique fields, references that must exist, a provider backing at most one application,
//! 404s worded per release for unknown ids, DRF field errors for bad input. Plain CRUD is one
//! table of collections ([`RESOURCES`]); actions and the filtered application list come first.

use serde_json::{Map, Value, json};

use crate::schema::Operation;
use crate::world::{
    Application, OAuth2Provider, ProxyProvider, RedirectUri, SamlProvider, ScopeMapping, World, random_token, uuid,
};

/// A handler's answer before validation.
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body: Some(body),
        }
    }
    fn created(body: Value) -> Self {
        Self {
            status: 201,
            body: Some(body),
        }
    }
    fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
        }
    }
    /// DRF's `ValidationError` shape: `{"field": ["message"]}`.
    pub fn field_errors(errors: Vec<(String, String)>) -> Self {
        let mut body = Map::new();
        for (field, message) in errors {
            let key = if field.is_empty() {
                "non_field_errors".to_string()
            } else {
                field
            };
            body.entry(key)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .expect("array")
                .push(Value::String(message));
        }
        Self {
            status: 400,
            body: Some(Value::Object(body)),
        }
    }
    fn field_error(field: &str, message: impl Into<String>) -> Self {
        Self::field_errors(vec![(field.to_string(), message.into())])
    }
}

/// The 404 for an id that names nothing (`get_object_or_404`). DRF up to 3.14 answers the
/// generic "Not found."; DRF 3.15 (Authentik 2025.4 and later) passes Django's `Http404` message
/// on, which names the model's class (`No %s matches the given query.` with
/// `_meta.object_name`).
fn not_found(w: &World, model: &str) -> Reply {
    let detail = if w.release() >= (2025, 4, 0) {
        format!("No {model} matches the given query.")
    } else {
        "Not found.".to_string()
    };
    Reply {
        status: 404,
        body: Some(json!({ "detail": detail })),
    }
}

/// Query parameters, in order; a key may repeat (`?managed=a&managed=b`).
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The page asked for, as DRF's `PageNumberPagination` reads it: absent means 1, `last`
    /// the last page, anything else must be a number (checked against the count later).
    fn page(&self, w: &World) -> PageWanted {
        match self.get("page") {
            None => PageWanted::Number(1),
            // DRF 3.15 (Authentik 2025.4 and later) reads an empty `page=` as 1; 3.14 as invalid.
            Some("") if w.release() >= (2025, 4, 0) => PageWanted::Number(1),
            Some("last") => PageWanted::Last,
            Some(p) => p.parse().map(PageWanted::Number).unwrap_or(PageWanted::Number(0)),
        }
    }

    /// The page size per release (`authentik/api/pagination.py`, `authentik/root/settings.py`):
    /// up to 2025.10 `PAGE_SIZE` 100 with no maximum; from 2025.12 (commit 196bce348) the
    /// tenant's `pagination_default_page_size` 20, capped at `pagination_max_page_size` 100. A
    /// size that is not a positive number falls back to the default.
    fn page_size(&self, w: &World) -> usize {
        let (default, max) = if w.release() >= (2025, 12, 0) {
            (20, Some(100))
        } else {
            (100, None)
        };
        let asked = self
            .get("page_size")
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|n| *n > 0);
        match (asked, max) {
            (Some(n), Some(max)) => n.min(max),
            (Some(n), None) => n,
            (None, _) => default,
        }
    }
    /// Case-insensitive filter (`*__iexact`): passes when absent or equal ignoring case.
    fn iexact(&self, key: &str, value: Option<&str>) -> bool {
        self.get(key)
            .is_none_or(|want| value.is_some_and(|v| v.eq_ignore_ascii_case(want)))
    }
    /// Exact filter: passes when the parameter is absent or equal.
    fn exact(&self, key: &str, value: Option<&str>) -> bool {
        self.get(key).is_none_or(|want| Some(want) == value)
    }
}

/// `None` when the simulator does not implement the operation.
///
/// The actions and the list that are not plain CRUD come first; every other operation is one of
/// the four generic ones on a collection of [`RESOURCES`].
pub fn dispatch(w: &mut World, op: &Operation, q: &Query, body: Option<Value>) -> Option<Reply> {
    let id = op.params.first().map(String::as_str).unwrap_or("");
    let mut body = body.unwrap_or(Value::Null);
    trim_text(&mut body);
    let reply = match (op.method.as_str(), op.template.as_str()) {
        ("GET", "/admin/version/") => Reply::ok(w.render_version()),
        ("GET", "/crypto/certificatekeypairs/{kp_uuid}/view_certificate/") => {
            match w.keypairs.iter().find(|k| k.pk == id) {
                Some(k) => Reply::ok(json!({ "data": k.certificate_pem })),
                None => not_found(w, "CertificateKeyPair"),
            }
        }
        ("GET", "/providers/oauth2/{id}/setup_urls/") => match oauth2_pk(w, id).and_then(|pk| w.app_of_provider(pk)) {
            Some(app) => Reply::ok(setup_urls(w, &app.slug)),
            None => not_found(w, "OAuth2Provider"),
        },
        ("GET", "/core/applications/") => {
            // Ordered by name (`ApplicationViewSet.ordering`).
            let mut matching: Vec<&Application> = w
                .applications
                .values()
                .filter(|a| q.exact("slug", Some(&a.slug)) && q.exact("name", Some(&a.name)))
                .collect();
            matching.sort_by(|a, b| a.name.cmp(&b.name).then(a.slug.cmp(&b.slug)));
            let full = q
                .get("superuser_full_list")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            if full && w.token_user_superuser() {
                let items = matching.into_iter().map(|a| w.render_application(a)).collect();
                list(w, q, items)
            } else {
                let pks: Vec<String> = matching.iter().map(|a| a.pk.clone()).collect();
                visible_applications(w, q, pks)
            }
        }
        ("PUT", "/core/transactional/applications/") => transactional_application(w, &body),
        ("POST", "/core/groups/{group_uuid}/add_user/" | "/core/groups/{group_uuid}/remove_user/") => {
            if !w.token_user_superuser() {
                return Some(forbidden());
            }
            let Some(i) = w.groups.iter().position(|g| g.pk == id) else {
                return Some(not_found(w, "Group"));
            };
            // `GroupViewSet.add_user` raises a bare `Http404` for an unknown user: "Not found."
            // in every release.
            let Some(user) = body
                .get("pk")
                .and_then(Value::as_u64)
                .filter(|pk| w.users.iter().any(|u| u.pk == *pk))
            else {
                return Some(Reply {
                    status: 404,
                    body: Some(json!({"detail": "Not found."})),
                });
            };
            let users = &mut w.groups[i].users;
            users.retain(|u| *u != user);
            if op.template.ends_with("/add_user/") {
                users.push(user);
            }
            // `group.users.add(user)` is a many-to-many change: no `post_save`, so the application
            // lists stay cached (authentik/policies/signals.py listens to `post_save` only).
            Reply::no_content()
        }
        ("GET", "/core/users/me/") => {
            let me = w
                .users
                .iter()
                .find(|u| u.pk == crate::access::TOKEN_USER)
                .expect("token user");
            Reply::ok(w.render_session_user(me))
        }
        ("GET", "/core/applications/{slug}/check_access/") => check_access(w, id, q),
        (method, template) => return crud(w, method, template, id, q, &body),
    };
    Some(reply)
}

/// DRF's `CharField` strips leading and trailing whitespace from what it receives
/// (`trim_whitespace=True`, the default for every text field of Authentik's model serializers,
/// nested ones included), so a value is stored, compared and answered trimmed: an expression
/// written as a YAML block scalar loses its final newline. Python's `str.strip` also strips the
/// separators U+001C..U+001F, which Rust's `trim` keeps.
fn trim_text(value: &mut Value) {
    match value {
        Value::String(s) => {
            let trimmed = s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c));
            if trimmed.len() != s.len() {
                *s = trimmed.to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(trim_text),
        Value::Object(fields) => fields.values_mut().for_each(trim_text),
        _ => {}
    }
}

/// One collection of the API: where it lives and what the generic operations do on it. An
/// operation left `None` is not simulated (the request is answered as unimplemented).
struct Resource {
    /// The Django model's class name, which DRF 3.15 (Authentik 2025.4 and later) puts in a 404.
    model: &'static str,
    /// What an item's path segment is.
    key: Key,
    /// The list path; an item is the list path followed by one `{param}/` segment.
    path: fn(&World) -> &'static str,
    /// The rendered items that pass the query's filters, in the list's order (`GET` of the list).
    list: Option<fn(&World, &Query) -> Vec<Value>>,
    /// The rendered item with this id (`GET` of an item; also how the others find it).
    get: fn(&World, &str) -> Option<Value>,
    /// `POST` of the list.
    create: Option<fn(&mut World, &Value) -> Reply>,
    /// `PATCH`/`PUT` of an item the resource's `get` found; `None` when it is not updatable
    /// through this path.
    update: Option<Update>,
    /// `DELETE` of an item `get` found, with what goes with it; false when this path cannot delete it.
    delete: Option<fn(&mut World, &str) -> bool>,
}

/// An update of the item with this id; `None` when this path cannot update it (a 404).
type Update = fn(&mut World, &str, &Value) -> Option<Reply>;

/// What names an item in its path.
enum Key {
    Slug,
    Int,
    Uuid,
}

/// Every collection the simulator serves with plain CRUD.
const RESOURCES: &[Resource] = &[
    Resource {
        model: "Flow",
        key: Key::Slug,
        path: |_| "/flows/instances/",
        list: Some(|w, q| {
            w.flows
                .iter()
                .filter(|f| q.exact("slug", Some(&f.slug)) && q.exact("designation", Some(f.designation)))
                .map(|f| w.render_flow(f))
                .collect()
        }),
        get: |w, slug| w.flows.iter().find(|f| f.slug == slug).map(|f| w.render_flow(f)),
        create: None,
        update: None,
        delete: None,
    },
    Resource {
        model: "CertificateKeyPair",
        key: Key::Uuid,
        path: |_| "/crypto/certificatekeypairs/",
        list: Some(|w, q| {
            w.keypairs
                .iter()
                .filter(|k| {
                    q.exact("name", Some(&k.name))
                        && q.exact("managed", k.managed.as_deref())
                        && q.get("has_key").is_none_or(|v| v == "true")
                })
                .map(|k| w.render_keypair(k))
                .collect()
        }),
        get: |w, id| w.keypairs.iter().find(|k| k.pk == id).map(|k| w.render_keypair(k)),
        create: None,
        update: None,
        delete: None,
    },
    Resource {
        model: "ScopeMapping",
        key: Key::Uuid,
        path: |w| w.shapes.scope_mapping_path,
        list: Some(|w, q| {
            let managed = q.all("managed");
            w.scope_mappings
                .iter()
                .filter(|s| {
                    (managed.is_empty() || s.managed.as_deref().is_some_and(|m| managed.contains(&m)))
                        && q.exact("scope_name", Some(&s.scope_name))
                        && q.exact("name", Some(&s.name))
                })
                .map(|s| w.render_scope_mapping(s))
                .collect()
        }),
        get: |w, id| {
            w.scope_mappings
                .iter()
                .find(|s| s.pk == id)
                .map(|s| w.render_scope_mapping(s))
        },
        create: Some(|w, body| {
            let mapping = ScopeMapping {
                pk: uuid(),
                managed: None,
                name: String::new(),
                scope_name: String::new(),
                expression: String::new(),
                description: String::new(),
            };
            save(
                w,
                mapping,
                body,
                true,
                apply_scope_mapping_fields,
                World::render_scope_mapping,
                store_scope_mapping,
            )
        }),
        update: Some(|w, id, body| {
            let mapping = w.scope_mappings.iter().find(|s| s.pk == id)?.clone();
            Some(save(
                w,
                mapping,
                body,
                false,
                apply_scope_mapping_fields,
                World::render_scope_mapping,
                store_scope_mapping,
            ))
        }),
        delete: Some(|w, id| {
            w.scope_mappings.retain(|s| s.pk != id);
            for p in w.oauth2.values_mut() {
                p.property_mappings.retain(|m| m != id);
            }
            true
        }),
    },
    Resource {
        model: "OAuth2Provider",
        key: Key::Int,
        path: |_| "/providers/oauth2/",
        list: Some(|w, q| {
            // `OAuth2ProviderViewSet.queryset = OAuth2Provider.objects.all()`: a proxy provider
            // is an OAuth2 provider underneath (multi-table inheritance), so it is listed here
            // too, serialized as an OAuth2 provider (authentik/providers/oauth2/api/providers.py).
            let as_oauth2: Vec<OAuth2Provider> = w.proxy.values().map(|p| w.proxy_as_oauth2(p)).collect();
            let mut all: Vec<&OAuth2Provider> = w.oauth2.values().chain(as_oauth2.iter()).collect();
            all.sort_by_key(|p| p.pk);
            all.into_iter()
                .filter(|p| q.exact("name", Some(&p.name)) && q.exact("client_id", Some(&p.client_id)))
                .map(|p| w.render_oauth2(p))
                .collect()
        }),
        get: |w, id| match oauth2_pk(w, id) {
            Some(pk) => Some(w.render_oauth2(&w.oauth2[&pk])),
            None => id
                .parse()
                .ok()
                .and_then(|pk: u64| w.proxy.get(&pk))
                .map(|p| w.render_oauth2(&w.proxy_as_oauth2(p))),
        },
        create: Some(create_oauth2),
        update: Some(|w, id, body| Some(update_oauth2(w, oauth2_pk(w, id)?, body))),
        delete: Some(|w, id| {
            let Some(pk) = oauth2_pk(w, id) else {
                return false;
            };
            w.oauth2.remove(&pk);
            w.forget_provider(pk);
            true
        }),
    },
    Resource {
        model: "Application",
        key: Key::Slug,
        path: |_| "/core/applications/",
        // The list runs the policy engine for the token's user: `dispatch` serves it.
        list: None,
        get: |w, slug| w.applications.get(slug).map(|a| w.render_application(a)),
        create: Some(|w, body| {
            let reply = create_application(w, body);
            if reply.status == 201 {
                // `post_save_application` clears every user's list, on create only.
                w.app_cache.clear();
            }
            reply
        }),
        update: Some(|w, slug, body| Some(update_application(w, slug, body))),
        delete: Some(|w, slug| w.applications.remove(slug).is_some()),
    },
    Resource {
        model: "Group",
        key: Key::Uuid,
        path: |_| "/core/groups/",
        list: Some(|w, q| {
            w.groups
                .iter()
                .filter(|g| q.exact("name", Some(&g.name)))
                .map(|g| w.render_group(g))
                .collect()
        }),
        get: |w, id| w.groups.iter().find(|g| g.pk == id).map(|g| w.render_group(g)),
        create: Some(|w, body| {
            let group = crate::access::Group {
                pk: uuid(),
                num_pk: w.groups.iter().map(|g| g.num_pk).max().unwrap_or(0) + 1,
                name: String::new(),
                users: Vec::new(),
                parents: Vec::new(),
                is_superuser: false,
            };
            save(
                w,
                group,
                body,
                true,
                apply_group_fields,
                World::render_group,
                store_group,
            )
        }),
        update: Some(|w, id, body| {
            let group = w.groups.iter().find(|g| g.pk == id)?.clone();
            Some(save(
                w,
                group,
                body,
                false,
                apply_group_fields,
                World::render_group,
                store_group,
            ))
        }),
        delete: Some(|w, id| {
            w.groups.retain(|g| g.pk != id);
            // Bindings of a deleted group go with it (`PolicyBinding.group` cascades).
            w.bindings.retain(|b| b.group.as_deref() != Some(id));
            true
        }),
    },
    Resource {
        model: "User",
        key: Key::Int,
        path: |_| "/core/users/",
        list: Some(|w, q| {
            // `UsersFilter` (authentik/core/api/users.py): `groups_by_name`/`groups_by_pk` and
            // `is_superuser` look at direct groups only, unlike the `is_superuser` each user shows.
            let mut users: Vec<&crate::access::User> = w
                .users
                .iter()
                .filter(|u| {
                    let direct: Vec<&crate::access::Group> =
                        w.groups.iter().filter(|g| g.users.contains(&u.pk)).collect();
                    let by_name = q.all("groups_by_name");
                    let by_pk = q.all("groups_by_pk");
                    q.exact("username", Some(&u.username))
                        && q.get("is_superuser")
                            .is_none_or(|v| (v.eq_ignore_ascii_case("true")) == direct.iter().any(|g| g.is_superuser))
                        && (by_name.is_empty() || direct.iter().any(|g| by_name.contains(&g.name.as_str())))
                        && (by_pk.is_empty() || direct.iter().any(|g| by_pk.contains(&g.pk.as_str())))
                        && q.get("search").is_none_or(|t| {
                            let t = t.to_lowercase();
                            [&u.username, &u.name, &u.email]
                                .iter()
                                .any(|f| f.to_lowercase().contains(&t))
                        })
                })
                .collect();
            users.sort_by(|a, b| a.username.cmp(&b.username));
            users.into_iter().map(|u| w.render_user(u)).collect()
        }),
        get: |w, id| {
            let pk: u64 = id.parse().ok()?;
            w.users.iter().find(|u| u.pk == pk).map(|u| w.render_user(u))
        },
        create: Some(|w, body| {
            let pk = w.users.iter().map(|u| u.pk).max().unwrap_or(0) + 1;
            let user = crate::access::User {
                pk,
                uuid: uuid(),
                username: String::new(),
                name: String::new(),
                email: String::new(),
                is_active: true,
                path: "users".into(),
                kind: "internal".into(),
            };
            save(w, user, body, true, apply_user_fields, World::render_user, store_user)
        }),
        update: Some(|w, id, body| {
            let user = w.users.iter().find(|u| Some(u.pk) == id.parse().ok())?.clone();
            Some(save(
                w,
                user,
                body,
                false,
                apply_user_fields,
                World::render_user,
                store_user,
            ))
        }),
        delete: Some(|w, id| {
            let Ok(pk) = id.parse::<u64>() else {
                return false;
            };
            w.users.retain(|u| u.pk != pk);
            for g in &mut w.groups {
                g.users.retain(|u| *u != pk);
            }
            // Bindings of a deleted user go with it (`PolicyBinding.user` cascades).
            w.bindings.retain(|b| b.user != Some(pk));
            true
        }),
    },
    Resource {
        model: "PolicyBinding",
        key: Key::Uuid,
        path: |_| "/policies/bindings/",
        list: Some(|w, q| {
            let mut found: Vec<&crate::access::Binding> = w
                .bindings
                .iter()
                .filter(|b| q.exact("target", Some(&b.target)))
                .collect();
            found.sort_by_key(|b| (b.target.clone(), b.order));
            found.into_iter().map(|b| w.render_binding(b)).collect()
        }),
        get: |w, id| w.bindings.iter().find(|b| b.pk == id).map(|b| w.render_binding(b)),
        create: Some(|w, body| save_binding(w, None, body)),
        update: Some(|w, id, body| {
            let i = w.bindings.iter().position(|b| b.pk == id)?;
            Some(save_binding(w, Some(i), body))
        }),
        // No handler clears the application cache on delete (authentik/policies/signals.py).
        delete: Some(|w, id| {
            w.bindings.retain(|b| b.pk != id);
            true
        }),
    },
    Resource {
        model: "DummyPolicy",
        key: Key::Uuid,
        path: |_| "/policies/dummy/",
        list: Some(|w, q| {
            w.policies
                .iter()
                .filter(|p| q.exact("name", Some(&p.name)))
                .map(|p| w.render_dummy_policy(p))
                .collect()
        }),
        get: |w, id| w.policies.iter().find(|p| p.pk == id).map(|p| w.render_dummy_policy(p)),
        create: Some(|w, body| {
            let policy = crate::access::DummyPolicy {
                pk: uuid(),
                name: String::new(),
                execution_logging: false,
                result: false,
                wait_min: 5,
                wait_max: 30,
            };
            save(
                w,
                policy,
                body,
                true,
                apply_dummy_policy_fields,
                World::render_dummy_policy,
                store_dummy_policy,
            )
        }),
        update: Some(|w, id, body| {
            let policy = w.policies.iter().find(|p| p.pk == id)?.clone();
            Some(save(
                w,
                policy,
                body,
                false,
                apply_dummy_policy_fields,
                World::render_dummy_policy,
                store_dummy_policy,
            ))
        }),
        delete: Some(|w, id| {
            w.policies.retain(|p| p.pk != id);
            // Bindings of a deleted policy go with it (`PolicyBinding.policy` cascades).
            w.bindings.retain(|b| b.policy.as_deref() != Some(id));
            true
        }),
    },
    Resource {
        model: "Outpost",
        key: Key::Uuid,
        path: |_| "/outposts/instances/",
        list: Some(|w, q| {
            w.outposts
                .iter()
                .filter(|o| {
                    q.iexact("managed__iexact", o.managed.as_deref()) && q.iexact("name__iexact", Some(&o.name))
                })
                .map(|o| w.render_outpost(o))
                .collect()
        }),
        get: |w, id| w.outposts.iter().find(|o| o.pk == id).map(|o| w.render_outpost(o)),
        create: None,
        update: Some(|w, id, body| {
            let i = w.outposts.iter().position(|o| o.pk == id)?;
            Some(update_outpost(w, i, body))
        }),
        delete: None,
    },
    Resource {
        model: "SAMLPropertyMapping",
        key: Key::Uuid,
        path: |w| w.shapes.saml_mapping_path,
        list: Some(|w, q| {
            let managed = q.all("managed");
            w.saml_mappings
                .iter()
                .filter(|m| {
                    (managed.is_empty() || m.managed.as_deref().is_some_and(|x| managed.contains(&x)))
                        && q.exact("name", Some(&m.name))
                })
                .map(|m| w.render_saml_mapping(m))
                .collect()
        }),
        get: |w, id| {
            w.saml_mappings
                .iter()
                .find(|m| m.pk == id)
                .map(|m| w.render_saml_mapping(m))
        },
        create: None,
        update: None,
        delete: None,
    },
    Resource {
        model: "SAMLProvider",
        key: Key::Int,
        path: |_| "/providers/saml/",
        list: Some(|w, q| {
            w.saml
                .values()
                .filter(|p| q.exact("name", Some(&p.name)))
                .map(|p| w.render_saml(p))
                .collect()
        }),
        get: |w, id| saml_pk(w, id).map(|pk| w.render_saml(&w.saml[&pk])),
        create: Some(|w, body| {
            let pk = w.next_provider_pk();
            let p = blank_saml(w, pk);
            save(w, p, body, true, apply_saml_fields, World::render_saml, |w, p| {
                w.saml.insert(p.pk, p);
            })
        }),
        update: Some(|w, id, body| {
            let p = w.saml[&saml_pk(w, id)?].clone();
            Some(save(
                w,
                p,
                body,
                false,
                apply_saml_fields,
                World::render_saml,
                |w, p| {
                    w.saml.insert(p.pk, p);
                },
            ))
        }),
        delete: Some(|w, id| {
            let Some(pk) = saml_pk(w, id) else {
                return false;
            };
            w.saml.remove(&pk);
            w.forget_provider(pk);
            true
        }),
    },
    Resource {
        model: "ProxyProvider",
        key: Key::Int,
        path: |_| "/providers/proxy/",
        list: Some(|w, q| {
            w.proxy
                .values()
                .filter(|p| {
                    q.iexact("name__iexact", Some(&p.name)) && q.iexact("external_host__iexact", Some(&p.external_host))
                })
                .map(|p| w.render_proxy(p))
                .collect()
        }),
        get: |w, id| proxy_pk(w, id).map(|pk| w.render_proxy(&w.proxy[&pk])),
        create: Some(|w, body| {
            let pk = w.next_provider_pk();
            save(
                w,
                blank_proxy(pk),
                body,
                true,
                apply_proxy_fields,
                World::render_proxy,
                store_proxy,
            )
        }),
        update: Some(|w, id, body| {
            let p = w.proxy[&proxy_pk(w, id)?].clone();
            Some(save(
                w,
                p,
                body,
                false,
                apply_proxy_fields,
                World::render_proxy,
                store_proxy,
            ))
        }),
        delete: Some(|w, id| {
            let Some(pk) = proxy_pk(w, id) else {
                return false;
            };
            w.proxy.remove(&pk);
            w.forget_provider(pk);
            true
        }),
    },
];

/// The generic operations of [`RESOURCES`]: list, create, retrieve, update, delete. An unknown
/// id is the model's 404; an operation a resource leaves out is unimplemented (`None`).
fn crud(w: &mut World, method: &str, template: &str, id: &str, q: &Query, body: &Value) -> Option<Reply> {
    for r in RESOURCES {
        let path = (r.path)(w);
        let Some(rest) = template.strip_prefix(path) else {
            continue;
        };
        // Without roles or object permissions (not modelled), a user who is not a superuser
        // may do nothing here: `ObjectPermissions` refuses a create, `ObjectFilter` a list
        // with nothing visible, and an object it cannot see is a 404.
        let allowed = w.token_user_superuser();
        if rest.is_empty() {
            if !allowed && matches!(method, "GET" | "POST") {
                return Some(forbidden());
            }
            return match method {
                "GET" => r.list.map(|items| {
                    let items = items(w, q);
                    list(w, q, items)
                }),
                "POST" => r.create.map(|create| create(w, body)),
                _ => None,
            };
        }
        let one_param = rest.starts_with('{') && rest.ends_with("}/") && rest.matches('/').count() == 1;
        if !one_param {
            continue;
        }
        // A malformed id fails the lookup before the query (`get_object_or_404` catches the
        // `ValueError` and raises a bare `Http404`): "Not found." in every release.
        let well_formed = match r.key {
            Key::Slug => true,
            Key::Int => id.parse::<u64>().is_ok(),
            Key::Uuid => ::uuid::Uuid::parse_str(id).is_ok(),
        };
        if !well_formed && matches!(method, "GET" | "PATCH" | "PUT" | "DELETE") {
            return Some(Reply {
                status: 404,
                body: Some(json!({"detail": "Not found."})),
            });
        }
        let found = if allowed { (r.get)(w, id) } else { None };
        return match (method, found) {
            ("GET", Some(item)) => Some(Reply::ok(item)),
            ("PATCH" | "PUT", Some(_)) => {
                let update = r.update?;
                Some(update(w, id, body).unwrap_or_else(|| not_found(w, r.model)))
            }
            ("DELETE", Some(_)) => {
                let delete = r.delete?;
                Some(if delete(w, id) {
                    Reply::no_content()
                } else {
                    not_found(w, r.model)
                })
            }
            ("GET" | "PATCH" | "PUT" | "DELETE", None) => Some(not_found(w, r.model)),
            _ => None,
        };
    }
    None
}

/// `PATCH /outposts/instances/{uuid}/`.
fn update_outpost(w: &mut World, i: usize, body: &Value) -> Reply {
    // `providers` is replaced, not merged: the read-modify-write hazard of the real API.
    if let Some(list) = body.get("providers").and_then(Value::as_array) {
        let mut pks = Vec::new();
        for v in list {
            match v.as_u64() {
                Some(pk) if w.provider_exists(pk) => pks.push(pk),
                _ => {
                    return Reply::field_error("providers", format!("Invalid pk \"{v}\" - object does not exist."));
                }
            }
        }
        // `OutpostSerializer.validate_providers` (authentik/outposts/api/outposts.py, every
        // release; upstream `test_outpost_validation`): each provider must be of the class the
        // `type` *in the request* serves; a request without `type` checks against `Provider`,
        // so any provider passes. Only the embedded outpost may be left without providers.
        let kind = body.get("type").and_then(Value::as_str);
        for pk in &pks {
            let class = if w.proxy.contains_key(pk) {
                "ProxyProvider"
            } else if w.saml.contains_key(pk) {
                "SAMLProvider"
            } else {
                "OAuth2Provider"
            };
            let fits = match kind {
                None => true,
                Some("proxy") => class == "ProxyProvider",
                Some(_) => false,
            };
            if !fits {
                let kind = kind.unwrap_or_default();
                return Reply::field_error(
                    "providers",
                    format!("Outpost type {kind} can't be used with {class} providers."),
                );
            }
        }
        let embedded = w.outposts[i].managed.as_deref() == Some("goauthentik.io/outposts/embedded");
        if pks.is_empty() && !embedded {
            return Reply::field_error("providers", "This list may not be empty.");
        }
        w.outposts[i].providers = pks;
    }
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        // `OutpostSerializer.validate_name` (authentik/outposts/api/outposts.py; upstream
        // `test_managed_name_change`): the embedded outpost keeps its name.
        let embedded = w.outposts[i].managed.as_deref() == Some("goauthentik.io/outposts/embedded");
        if embedded && name != "authentik Embedded Outpost" {
            return Reply::field_error("name", "Embedded outpost's name cannot be changed");
        }
        w.outposts[i].name = name.to_string();
    }
    Reply::ok(w.render_outpost(&w.outposts[i]))
}

/// A SAML provider as a create starts from (the model's defaults; the issuer per release).
fn blank_saml(w: &World, pk: u64) -> SamlProvider {
    let issuer = if w.shapes.saml_issuer_override {
        String::new()
    } else {
        "authentik".to_string()
    };
    SamlProvider {
        pk,
        name: String::new(),
        authorization_flow: String::new(),
        authentication_flow: None,
        invalidation_flow: None,
        property_mappings: Vec::new(),
        acs_url: String::new(),
        audience: String::new(),
        issuer,
        sp_binding: "redirect".into(),
        signing_kp: None,
        name_id_mapping: None,
        sign_assertion: true,
        sign_response: false,
    }
}

/// `GET /core/applications/` without `superuser_full_list`: the applications the token's user
/// may access, per release as `crate::access` describes (cached per page, page cut before the
/// policy check from 2024.4, everything allowed at once in 2023.10).
fn visible_applications(w: &mut World, q: &Query, pks: Vec<String>) -> Reply {
    let release = w.release();
    let allowed = |w: &World, pk: &str| {
        w.applications
            .values()
            .find(|a| a.pk == pk)
            .is_some_and(|a| w.decide_access(a, crate::access::TOKEN_USER).0)
    };
    let render = |w: &World, pk: &str| {
        w.applications
            .values()
            .find(|a| a.pk == pk)
            .map(|a| w.render_application(a))
    };
    // 2023.10 checks every matching application and answers all allowed ones under the first
    // page's metadata; from 2024.2 the page is cut first and only its applications are checked.
    let (mut page, candidates) = if release < (2024, 2, 0) {
        let mut page = w.paginate(Vec::new(), 1, q.page_size(w));
        page["pagination"]["count"] = json!(pks.len());
        (page, pks.clone())
    } else {
        let reply = list(w, q, pks.iter().map(|pk| json!(pk)).collect());
        let Some(page) = reply.body.clone().filter(|_| reply.status == 200) else {
            return reply;
        };
        let on_page = page["results"]
            .as_array()
            .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        (page, on_page)
    };
    // The cache key has the page number from 2024.4 on.
    let key = (release >= (2024, 4, 0)).then(|| page["pagination"]["current"].as_u64().unwrap_or(1) as usize);
    let searching = q.get("search").is_some_and(|s| !s.is_empty());
    let cached = (!searching)
        .then(|| w.app_cache.entries.get(&key).cloned())
        .flatten()
        .filter(|c| !c.is_empty());
    let results: Vec<Value> = match cached {
        // Before 2025.10.3 the cached objects are served as they were cached.
        Some(entries) if release < (2025, 10, 3) => entries.into_iter().map(|(_, v)| v).collect(),
        // From 2025.10.3 they are read again by pk: deleted ones drop out, edits show.
        Some(entries) => entries.iter().filter_map(|(pk, _)| render(w, pk)).collect(),
        None => {
            let fresh: Vec<(String, Value)> = candidates
                .iter()
                .filter(|pk| allowed(w, pk))
                .filter_map(|pk| render(w, pk).map(|v| (pk.clone(), v)))
                .collect();
            if !searching && !fresh.is_empty() {
                w.app_cache.entries.insert(key, fresh.clone());
            }
            fresh.into_iter().map(|(_, v)| v).collect()
        }
    };
    if release < (2024, 2, 0) {
        page["pagination"]["start_index"] = json!(usize::from(!results.is_empty()));
        page["pagination"]["end_index"] = json!(results.len());
    }
    page["results"] = Value::Array(results);
    Reply::ok(page)
}

/// `PUT /core/transactional/applications/` (authentik/core/api/transactional_applications.py,
/// every release from 2023.10): a provider and its application in one request. The nested
/// application is validated first (`{"app": {...}}`); then a blueprint of two `MUST_CREATED`
/// entries is validated inside a rolled-back transaction, reporting only the first failing entry
/// (`{"provider": {...}}` before `{"app": {...}}`): an existing provider name is "State is set to
/// must_created and object exists already", the provider's own serializer errors otherwise.
/// Applied atomically: nothing is created when either part is refused. The answer is always
/// `{"applied": true, "logs": []}`. Upstream tests `test_create_transactional`,
/// `test_create_transactional_invalid`, `test_create_transactional_duplicate_name_provider`.
fn transactional_application(w: &mut World, body: &Value) -> Reply {
    let nested = |entry: &str, reply: Reply| Reply {
        status: 400,
        body: Some(json!({ entry: reply.body.unwrap_or(Value::Null) })),
    };
    let app_body = body.get("app").cloned().unwrap_or(Value::Null);
    let mut probe = blank_application();
    let mut app_fields = app_body.clone();
    if let Some(o) = app_fields.as_object_mut() {
        o.remove("provider");
    }
    if let Err(reply) = apply_application_fields(w, &mut probe, &app_fields) {
        return nested("app", reply);
    }
    let provider = body.get("provider").cloned().unwrap_or(Value::Null);
    let model = body.get("provider_model").and_then(Value::as_str).unwrap_or_default();
    let (path, request_schema) = match model {
        "authentik_providers_oauth2.oauth2provider" => ("/providers/oauth2/", "OAuth2ProviderRequest"),
        "authentik_providers_proxy.proxyprovider" => ("/providers/proxy/", "ProxyProviderRequest"),
        "authentik_providers_saml.samlprovider" => ("/providers/saml/", "SAMLProviderRequest"),
        other => {
            return Reply::field_error(
                "provider_model",
                format!("ssoctl-sim does not create `{other}` providers"),
            );
        }
    };
    let name = provider
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if w.provider_name_taken(&name, u64::MAX) {
        return nested(
            "provider",
            Reply::field_error("name", "State is set to must_created and object exists already"),
        );
    }
    // The blueprint importer reads an empty primary key as none: "This field may not be null."
    let empty_refs: Vec<(String, String)> = provider
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| k.ends_with("_flow") && v.as_str() == Some(""))
                .map(|(k, _)| (k.clone(), "This field may not be null.".to_string()))
                .collect()
        })
        .unwrap_or_default();
    if !empty_refs.is_empty() {
        return nested("provider", Reply::field_errors(empty_refs));
    }
    if let Err(violations) = w.schema.validate_component(request_schema, &provider) {
        let errors = violations.into_iter().map(|v| (v.field, v.message)).collect();
        return nested("provider", Reply::field_errors(errors));
    }
    // Both parts on a copy of the world, kept only when both are created.
    let mut draft = w.clone();
    let op = Operation {
        template: path.to_string(),
        method: "POST".to_string(),
        params: Vec::new(),
    };
    let created = match dispatch(&mut draft, &op, &Query(Vec::new()), Some(provider)) {
        Some(reply) if reply.status == 201 => reply,
        Some(reply) => return nested("provider", reply),
        None => return Reply::field_error("provider_model", "not simulated"),
    };
    let pk = created.body.as_ref().and_then(|b| b["pk"].as_u64());
    let mut app_body = app_fields;
    if let Some(o) = app_body.as_object_mut() {
        o.insert("provider".into(), json!(pk));
    }
    let reply = create_application(&mut draft, &app_body);
    if reply.status != 201 {
        return nested("app", reply);
    }
    draft.app_cache.clear();
    *w = draft;
    Reply::ok(json!({"applied": true, "logs": []}))
}

/// `GroupSerializer` (authentik/core/api/groups.py): the name (unique from 2025.12; before only
/// together with the parent, and root groups never collide in PostgreSQL), members that exist,
/// the parent (`parent`, up to 2025.10: only itself is refused, longer loops are allowed) or the
/// parents (`parents`, from 2025.12: no loop check at all, upstream tests build a cycle).
fn apply_group_fields(w: &World, g: &mut crate::access::Group, body: &Value) -> Result<(), Reply> {
    let obj = body.as_object().cloned().unwrap_or_default();
    if let Some(name) = obj.get("name").and_then(Value::as_str) {
        let parent = obj
            .get("parent")
            .map(|p| p.as_str().map(str::to_string))
            .unwrap_or_else(|| g.parents.first().cloned());
        let taken = w.groups.iter().any(|o| {
            o.pk != g.pk
                && o.name == name
                && (w.release() >= (2025, 12, 0) || (parent.is_some() && o.parents.first() == parent.as_ref()))
        });
        if taken {
            let message = if w.release() >= (2025, 12, 0) {
                "Group with this name already exists."
            } else {
                "The fields name, parent must make a unique set."
            };
            let field = if w.release() >= (2025, 12, 0) { "name" } else { "" };
            return Err(Reply::field_error(field, message));
        }
        g.name = name.to_string();
    }
    let mut parents: Option<Vec<String>> = None;
    if let Some(p) = obj.get("parent") {
        parents = Some(p.as_str().map(|p| vec![p.to_string()]).unwrap_or_default());
    }
    if let Some(list) = obj.get("parents").and_then(Value::as_array) {
        parents = Some(list.iter().filter_map(Value::as_str).map(str::to_string).collect());
    }
    if let Some(parents) = parents {
        let field = if obj.contains_key("parents") {
            "parents"
        } else {
            "parent"
        };
        for p in &parents {
            if !w.groups.iter().any(|x| &x.pk == p) && *p != g.pk {
                return Err(Reply::field_error(
                    field,
                    format!("Invalid pk \"{p}\" - object does not exist."),
                ));
            }
            if *p == g.pk && w.release() < (2025, 12, 0) {
                return Err(Reply::field_error("parent", "Cannot set group as parent of itself."));
            }
        }
        g.parents = parents;
    }
    if let Some(list) = obj.get("users").and_then(Value::as_array) {
        let mut users = Vec::new();
        for u in list {
            match u.as_u64() {
                Some(pk) if w.users.iter().any(|x| x.pk == pk) => users.push(pk),
                _ => {
                    return Err(Reply::field_error(
                        "users",
                        format!("Invalid pk \"{u}\" - object does not exist."),
                    ));
                }
            }
        }
        g.users = users;
    }
    if let Some(v) = obj.get("is_superuser").and_then(Value::as_bool) {
        g.is_superuser = v;
    }
    Ok(())
}

/// A saved group clears every user's application list (`invalidate_policy_cache`).
/// `DummyPolicySerializer` (authentik/policies/dummy/api.py): the name is unique among all
/// policies (`Policy.name`, `unique=True`); the rest is stored as sent. Saving clears every
/// user's application list, as for any policy (`invalidate_policy_cache`).
fn apply_dummy_policy_fields(w: &World, p: &mut crate::access::DummyPolicy, body: &Value) -> Result<(), Reply> {
    let obj = body.as_object().cloned().unwrap_or_default();
    if let Some(name) = obj.get("name").and_then(Value::as_str) {
        if w.policies.iter().any(|o| o.pk != p.pk && o.name == name) {
            return Err(Reply::field_error("name", "Policy with this name already exists."));
        }
        p.name = name.to_string();
    }
    if let Some(v) = obj.get("execution_logging").and_then(Value::as_bool) {
        p.execution_logging = v;
    }
    if let Some(v) = obj.get("result").and_then(Value::as_bool) {
        p.result = v;
    }
    for (field, slot) in [("wait_min", &mut p.wait_min), ("wait_max", &mut p.wait_max)] {
        if let Some(v) = obj.get(field).and_then(Value::as_i64) {
            *slot = v;
        }
    }
    Ok(())
}

fn store_dummy_policy(w: &mut World, p: crate::access::DummyPolicy) {
    match w.policies.iter().position(|x| x.pk == p.pk) {
        Some(i) => w.policies[i] = p,
        None => w.policies.push(p),
    }
    w.app_cache.clear();
}

fn store_group(w: &mut World, g: crate::access::Group) {
    match w.groups.iter().position(|x| x.pk == g.pk) {
        Some(i) => w.groups[i] = g,
        None => w.groups.push(g),
    }
    w.app_cache.clear();
}

/// `UserSerializer` (authentik/core/api/users.py): `username` unique (DRF's unique validator),
/// `path` without leading, trailing or empty segments, no internal service accounts by API.
fn apply_user_fields(w: &World, u: &mut crate::access::User, body: &Value) -> Result<(), Reply> {
    let obj = body.as_object().cloned().unwrap_or_default();
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(username) = s("username") {
        if w.users.iter().any(|o| o.username == username && o.pk != u.pk) {
            return Err(Reply::field_error("username", "This field must be unique."));
        }
        u.username = username;
    }
    if let Some(path) = s("path") {
        if path.starts_with('/') || path.ends_with('/') {
            return Err(Reply::field_error("path", "No leading or trailing slashes allowed."));
        }
        if path.split('/').any(str::is_empty) {
            return Err(Reply::field_error("path", "No empty segments in user path allowed."));
        }
        u.path = path;
    }
    if let Some(kind) = s("type") {
        if kind == "internal_service_account" {
            return Err(Reply::field_error(
                "type",
                "Setting a user to internal service account is not allowed.",
            ));
        }
        u.kind = kind;
    }
    for (field, slot) in [("name", &mut u.name), ("email", &mut u.email)] {
        if let Some(v) = s(field) {
            *slot = v;
        }
    }
    if let Some(v) = obj.get("is_active").and_then(Value::as_bool) {
        u.is_active = v;
    }
    Ok(())
}

/// A saved user clears every user's application list (`invalidate_policy_cache`).
fn store_user(w: &mut World, u: crate::access::User) {
    match w.users.iter().position(|x| x.pk == u.pk) {
        Some(i) => w.users[i] = u,
        None => w.users.push(u),
    }
    w.app_cache.clear();
}

/// DRF's answer to a request its permission classes refuse.
fn forbidden() -> Reply {
    Reply {
        status: 403,
        body: Some(json!({"detail": "You do not have permission to perform this action."})),
    }
}

/// `GET /core/applications/{slug}/check_access/` (`ApplicationViewSet.check_access`): the policy
/// engine's decision for the caller or, for a superuser, for `?for_user=<pk>` (ignored for anyone
/// else). An unknown user is 400 `{"for_user": "User not found"}` from 2024.2 (2023.10 raised a
/// 404), a pk that is not a number 400 `{"for_user": "for_user must be numerical"}`. Group and
/// user bindings carry no messages.
fn check_access(w: &World, slug: &str, q: &Query) -> Reply {
    let Some(app) = w.applications.get(slug) else {
        return not_found(w, "Application");
    };
    let mut user = crate::access::TOKEN_USER;
    if let Some(wanted) = q.get("for_user").filter(|_| w.token_user_superuser()) {
        let Ok(pk) = wanted.parse::<u64>() else {
            return Reply {
                status: 400,
                body: Some(json!({"for_user": "for_user must be numerical"})),
            };
        };
        if !w.users.iter().any(|u| u.pk == pk) {
            if w.release() < (2024, 2, 0) {
                return not_found(w, "User");
            }
            return Reply {
                status: 400,
                body: Some(json!({"for_user": "User not found"})),
            };
        }
        user = pk;
    }
    let (passing, messages) = w.decide_access(app, user);
    Reply::ok(json!({"passing": passing, "messages": messages, "log_messages": []}))
}

/// `POST /policies/bindings/` and its updates (`PolicyBindingSerializer`,
/// authentik/policies/api/bindings.py): the target must exist, and exactly one of policy, group
/// and user is set (the message names them per release: from 2024.12 the target's supported
/// kinds, sorted). Saving clears every user's application list.
fn save_binding(w: &mut World, index: Option<usize>, body: &Value) -> Reply {
    let mut b = match index {
        Some(i) => w.bindings[i].clone(),
        None => crate::access::Binding {
            pk: uuid(),
            target: String::new(),
            policy: None,
            group: None,
            user: None,
            negate: false,
            enabled: true,
            order: 0,
        },
    };
    let obj = body.as_object().cloned().unwrap_or_default();
    if let Some(t) = obj.get("target").and_then(Value::as_str) {
        let exists = w.applications.values().any(|a| a.pbm_uuid == t) || w.flows.iter().any(|f| f.pk == t);
        if !exists {
            return Reply::field_error("target", format!("Invalid pk \"{t}\" - object does not exist."));
        }
        b.target = t.to_string();
    }
    if obj.contains_key("group") {
        b.group = obj["group"].as_str().map(str::to_string);
        if let Some(g) = &b.group
            && !w.groups.iter().any(|x| &x.pk == g)
        {
            return Reply::field_error("group", format!("Invalid pk \"{g}\" - object does not exist."));
        }
    }
    if obj.contains_key("user") {
        b.user = obj["user"].as_u64();
        if b.user.is_some_and(|u| !w.users.iter().any(|x| x.pk == u)) {
            return Reply::field_error(
                "user",
                format!("Invalid pk \"{}\" - object does not exist.", obj["user"]),
            );
        }
    }
    if obj.contains_key("policy") {
        b.policy = obj["policy"].as_str().map(str::to_string);
        if let Some(p) = &b.policy
            && !w.policies.iter().any(|x| &x.pk == p)
        {
            return Reply::field_error("policy", format!("Invalid pk \"{p}\" - object does not exist."));
        }
    }
    let set = usize::from(b.policy.is_some()) + usize::from(b.group.is_some()) + usize::from(b.user.is_some());
    if set != 1 {
        let new_wording = w.release() >= (2024, 12, 0);
        let message = match (set > 1, new_wording) {
            (true, true) => "Only one of 'group', 'policy', 'user' can be set.",
            (false, true) => "One of 'group', 'policy', 'user' must be set.",
            (true, false) => "Only one of 'policy', 'group' or 'user' can be set.",
            (false, false) => "One of 'policy', 'group' or 'user' must be set.",
        };
        return Reply::field_errors(vec![(String::new(), message.to_string())]);
    }
    for (field, slot) in [("negate", &mut b.negate), ("enabled", &mut b.enabled)] {
        if let Some(v) = obj.get(field).and_then(Value::as_bool) {
            *slot = v;
        }
    }
    if let Some(o) = obj.get("order").and_then(Value::as_i64) {
        b.order = o;
    }
    let value = w.render_binding(&b);
    match index {
        Some(i) => w.bindings[i] = b,
        None => w.bindings.push(b),
    }
    w.app_cache.clear();
    if index.is_some() {
        Reply::ok(value)
    } else {
        Reply::created(value)
    }
}

/// Which page a list request asks for.
pub enum PageWanted {
    Number(usize),
    Last,
}

/// One page of `items`; a page that does not exist (0, past the last, not a number) is DRF's
/// 404 `{"detail": "Invalid page."}` (`PageNumberPagination.paginate_queryset`), which is what a
/// client fetching pages in parallel meets when objects are deleted meanwhile.
fn list(w: &World, q: &Query, items: Vec<Value>) -> Reply {
    let size = q.page_size(w);
    let total_pages = items.len().div_ceil(size).max(1);
    let page = match q.page(w) {
        PageWanted::Last => total_pages,
        PageWanted::Number(n) if (1..=total_pages).contains(&n) => n,
        PageWanted::Number(_) => {
            return Reply {
                status: 404,
                body: Some(json!({"detail": "Invalid page."})),
            };
        }
    };
    Reply::ok(w.paginate(items, page, size))
}

fn oauth2_pk(w: &World, id: &str) -> Option<u64> {
    id.parse().ok().filter(|pk| w.oauth2.contains_key(pk))
}

fn setup_urls(w: &World, slug: &str) -> Value {
    let base = &w.base_url;
    let urls = json!({
        "issuer": format!("{base}/application/o/{slug}/"),
        "authorize": format!("{base}/application/o/authorize/"),
        "token": format!("{base}/application/o/token/"),
        "user_info": format!("{base}/application/o/userinfo/"),
        "provider_info": format!("{base}/application/o/{slug}/.well-known/openid-configuration"),
        "logout": format!("{base}/application/o/{slug}/end-session/"),
        "jwks": format!("{base}/application/o/{slug}/jwks/"),
        "dcr_registration": null,
    });
    let props = w
        .schema
        .properties("OAuth2ProviderSetupURLs")
        .cloned()
        .unwrap_or_default();
    Value::Object(
        urls.as_object()
            .expect("object")
            .iter()
            .filter(|(k, _)| props.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn blank_oauth2(pk: u64) -> OAuth2Provider {
    OAuth2Provider {
        pk,
        name: String::new(),
        authorization_flow: String::new(),
        authentication_flow: None,
        invalidation_flow: None,
        property_mappings: Vec::new(),
        client_type: "confidential".into(),
        client_id: random_token(40),
        client_secret: random_token(128),
        grant_types: Vec::new(),
        redirect_uris: Vec::new(),
        signing_key: None,
        encryption_key: None,
        sub_mode: "hashed_user_id".into(),
        issuer_mode: "per_provider".into(),
        include_claims_in_id_token: true,
        access_code_validity: "minutes=1".into(),
        access_token_validity: "hours=1".into(),
        refresh_token_validity: "days=30".into(),
        refresh_token_threshold: "seconds=0".into(),
    }
}

fn create_oauth2(w: &mut World, body: &Value) -> Reply {
    let pk = w.next_provider_pk();
    save(
        w,
        blank_oauth2(pk),
        body,
        true,
        apply_oauth2_fields,
        World::render_oauth2,
        |w, p| {
            w.oauth2.insert(p.pk, p);
        },
    )
}

fn update_oauth2(w: &mut World, pk: u64, body: &Value) -> Reply {
    let p = w.oauth2[&pk].clone();
    save(w, p, body, false, apply_oauth2_fields, World::render_oauth2, |w, p| {
        w.oauth2.insert(p.pk, p);
    })
}

/// Validates `body` into `object` with `apply` (Authentik's serializer), then stores it with
/// `store` and answers with `render`: 201 on create, 200 on update. Nothing is stored when the
/// body is refused.
fn save<T>(
    w: &mut World,
    mut object: T,
    body: &Value,
    created: bool,
    apply: fn(&World, &mut T, &Value) -> Result<(), Reply>,
    render: fn(&World, &T) -> Value,
    store: fn(&mut World, T),
) -> Reply {
    if let Err(reply) = apply(w, &mut object, body) {
        return reply;
    }
    let value = render(w, &object);
    store(w, object);
    if created {
        Reply::created(value)
    } else {
        Reply::ok(value)
    }
}

fn store_scope_mapping(w: &mut World, m: ScopeMapping) {
    match w.scope_mappings.iter().position(|x| x.pk == m.pk) {
        Some(i) => w.scope_mappings[i] = m,
        None => w.scope_mappings.push(m),
    }
}

/// Copies the fields present in `body` into `p`, checking references and uniqueness as
/// Authentik's serializer does. The body already passed schema validation.
fn apply_oauth2_fields(w: &World, p: &mut OAuth2Provider, body: &Value) -> Result<(), Reply> {
    let obj = body.as_object().cloned().unwrap_or_default();
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(name) = s("name") {
        if w.provider_name_taken(&name, p.pk) {
            return Err(Reply::field_error("name", "provider with this name already exists."));
        }
        p.name = name;
    }
    if let Some(flow) = s("authorization_flow") {
        p.authorization_flow = existing_flow(w, "authorization_flow", &flow)?;
    }
    if let Some(flow) = obj.get("invalidation_flow") {
        p.invalidation_flow = match flow.as_str() {
            Some(f) => Some(existing_flow(w, "invalidation_flow", f)?),
            None => None,
        };
    }
    if let Some(flow) = obj.get("authentication_flow") {
        p.authentication_flow = match flow.as_str() {
            Some(f) => Some(existing_flow(w, "authentication_flow", f)?),
            None => None,
        };
    }
    if let Some(mappings) = obj.get("property_mappings").and_then(Value::as_array) {
        let mut pks = Vec::new();
        for m in mappings.iter().filter_map(Value::as_str) {
            if !w.scope_mappings.iter().any(|s| s.pk == m) {
                return Err(Reply::field_error(
                    "property_mappings",
                    format!("Invalid pk \"{m}\" - object does not exist."),
                ));
            }
            pks.push(m.to_string());
        }
        p.property_mappings = pks;
    }
    for (field, slot) in [
        ("signing_key", &mut p.signing_key),
        ("encryption_key", &mut p.encryption_key),
    ] {
        if let Some(v) = obj.get(field) {
            *slot = match v.as_str() {
                Some(kp) if w.keypairs.iter().any(|k| k.pk == kp) => Some(kp.to_string()),
                Some(kp) => {
                    return Err(Reply::field_error(
                        field,
                        format!("Invalid pk \"{kp}\" - object does not exist."),
                    ));
                }
                None => None,
            };
        }
    }
    if let Some(id) = s("client_id") {
        if w.oauth2.values().any(|o| o.client_id == id && o.pk != p.pk) {
            return Err(Reply::field_error(
                "client_id",
                "provider with this client id already exists.",
            ));
        }
        p.client_id = id;
    }
    if let Some(v) = s("client_secret") {
        p.client_secret = v;
    }
    if let Some(v) = s("client_type") {
        p.client_type = v;
    }
    if let Some(grants) = obj.get("grant_types").and_then(Value::as_array) {
        p.grant_types = grants.iter().filter_map(Value::as_str).map(str::to_string).collect();
    }
    match obj.get("redirect_uris") {
        Some(Value::String(text)) => {
            p.redirect_uris = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|url| RedirectUri {
                    matching_mode: "regex".into(),
                    url: url.to_string(),
                    redirect_uri_type: "authorization".into(),
                })
                .collect();
        }
        Some(Value::Array(items)) => {
            p.redirect_uris = items
                .iter()
                .map(|i| RedirectUri {
                    matching_mode: i["matching_mode"].as_str().unwrap_or("strict").to_string(),
                    url: i["url"].as_str().unwrap_or("").to_string(),
                    redirect_uri_type: i["redirect_uri_type"].as_str().unwrap_or("authorization").to_string(),
                })
                .collect();
            // `OAuth2ProviderSerializer.validate_redirect_uris` (2024.8.5, 2024.10.3 and later;
            // upstream test `test_validate_redirect_uris`) compiles each regex entry with Python's
            // `re`: fancy-regex is closer to it than `regex` (lookaround and backreferences are
            // valid Python), and `**` fails in both.
            if let Some(bad) = p
                .redirect_uris
                .iter()
                .find(|r| r.matching_mode == "regex" && fancy_regex::Regex::new(&r.url).is_err())
            {
                return Err(Reply::field_error(
                    "redirect_uris",
                    format!("Invalid Regex Pattern: {}", bad.url),
                ));
            }
        }
        _ => {}
    }
    for (field, slot) in [
        ("sub_mode", &mut p.sub_mode),
        ("issuer_mode", &mut p.issuer_mode),
        ("access_code_validity", &mut p.access_code_validity),
        ("access_token_validity", &mut p.access_token_validity),
        ("refresh_token_validity", &mut p.refresh_token_validity),
        ("refresh_token_threshold", &mut p.refresh_token_threshold),
    ] {
        if let Some(v) = s(field) {
            *slot = v;
        }
    }
    if let Some(v) = obj.get("include_claims_in_id_token").and_then(Value::as_bool) {
        p.include_claims_in_id_token = v;
    }
    Ok(())
}

fn existing_flow(w: &World, field: &str, pk: &str) -> Result<String, Reply> {
    if w.flows.iter().any(|f| f.pk == pk) {
        Ok(pk.to_string())
    } else {
        Err(Reply::field_error(
            field,
            format!("Invalid pk \"{pk}\" - object does not exist."),
        ))
    }
}

/// An application as a create starts from (the model's defaults). Its pk is its policy binding
/// model's (`Application` inherits `PolicyBindingModel`, whose `pbm_uuid` is the primary key), so
/// a binding's `target` is the application's `pk` on every release.
fn blank_application() -> Application {
    let pk = uuid();
    Application {
        pk: pk.clone(),
        pbm_uuid: pk,
        slug: String::new(),
        name: String::new(),
        provider: None,
        meta_launch_url: String::new(),
        meta_description: String::new(),
        meta_publisher: String::new(),
        open_in_new_tab: false,
        policy_engine_mode: "any".into(),
        group: String::new(),
    }
}

fn create_application(w: &mut World, body: &Value) -> Reply {
    let app = blank_application();
    save(
        w,
        app,
        body,
        true,
        apply_application_fields,
        World::render_application,
        store_application,
    )
}

fn update_application(w: &mut World, slug: &str, body: &Value) -> Reply {
    let app = w.applications[slug].clone();
    save(
        w,
        app,
        body,
        false,
        apply_application_fields,
        World::render_application,
        store_application,
    )
}

/// Stores an application under its (possibly new) slug.
fn store_application(w: &mut World, app: Application) {
    w.applications.retain(|_, a| a.pk != app.pk);
    w.applications.insert(app.slug.clone(), app);
}

fn apply_application_fields(w: &World, app: &mut Application, body: &Value) -> Result<(), Reply> {
    let obj = body.as_object().cloned().unwrap_or_default();
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(slug) = s("slug") {
        let valid = !slug.is_empty() && slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(Reply::field_error(
                "slug",
                "Enter a valid \"slug\" consisting of letters, numbers, underscores or hyphens.",
            ));
        }
        if w.applications.values().any(|a| a.slug == slug && a.pk != app.pk) {
            return Err(Reply::field_error("slug", "Application with this slug already exists."));
        }
        // `Application.reserved_slugs`, checked by `ApplicationSerializer.validate_slug` on create
        // and update from 2025.8.0 (commit aeb5c9a24): these would shadow OAuth2 endpoints.
        const RESERVED: [&str; 6] = ["authorize", "token", "device", "userinfo", "introspect", "revoke"];
        if w.release() >= (2025, 8, 0) && RESERVED.contains(&slug.as_str()) {
            return Err(Reply::field_error(
                "slug",
                format!("The slug '{slug}' is reserved and cannot be used for applications."),
            ));
        }
        app.slug = slug;
    }
    if let Some(name) = s("name") {
        app.name = name;
    }
    if let Some(provider) = obj.get("provider") {
        app.provider = match provider.as_u64() {
            Some(pk) if !w.provider_exists(pk) => {
                return Err(Reply::field_error(
                    "provider",
                    format!("Invalid pk \"{pk}\" - object does not exist."),
                ));
            }
            Some(pk) if w.app_of_provider(pk).is_some_and(|a| a.pk != app.pk) => {
                return Err(Reply::field_error(
                    "provider",
                    "application with this provider already exists.",
                ));
            }
            Some(pk) => Some(pk),
            None => None,
        };
    }
    for (field, slot) in [
        ("meta_launch_url", &mut app.meta_launch_url),
        ("meta_description", &mut app.meta_description),
        ("meta_publisher", &mut app.meta_publisher),
        ("policy_engine_mode", &mut app.policy_engine_mode),
        ("group", &mut app.group),
    ] {
        if let Some(v) = s(field) {
            *slot = v;
        }
    }
    if let Some(v) = obj.get("open_in_new_tab").and_then(Value::as_bool) {
        app.open_in_new_tab = v;
    }
    Ok(())
}

fn apply_scope_mapping_fields(w: &World, m: &mut ScopeMapping, body: &Value) -> Result<(), Reply> {
    // The evaluator that checks the expression is named after the mapping as saved.
    let saved_name = m.name.clone();
    let obj = body.as_object().cloned().unwrap_or_default();
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(name) = s("name") {
        let taken = w.scope_mappings.iter().any(|o| o.name == name && o.pk != m.pk)
            || w.saml_mappings.iter().any(|o| o.name == name);
        if taken {
            return Err(Reply::field_error(
                "name",
                // DRF's unique message with the model's verbose name, `Property Mapping`
                // (`PropertyMapping.name`, unique on the table every mapping type shares).
                "Property Mapping with this name already exists.",
            ));
        }
        m.name = name;
    }
    if let Some(v) = s("scope_name") {
        // `no_space` (authentik/providers/oauth2/api/scopes.py, every release).
        if v.contains(' ') {
            return Err(Reply::field_error("scope_name", "Value must not contain spaces."));
        }
        m.scope_name = v;
    }
    if let Some(v) = s("expression") {
        // DRF's own check first (the text arrives trimmed), then `validate_expression`, with the
        // evaluator named after the mapping as saved (`None` while it is being created).
        if v.is_empty() {
            return Err(Reply::field_error("expression", "This field may not be blank."));
        }
        let filename = if saved_name.is_empty() {
            "None"
        } else {
            saved_name.as_str()
        };
        if let Err(message) = crate::expression::validate(&v, filename) {
            return Err(Reply::field_error("expression", message));
        }
        m.expression = v;
    }
    if let Some(v) = s("description") {
        m.description = v;
    }
    if let Some(v) = obj.get("managed") {
        m.managed = v.as_str().map(str::to_string);
    }
    Ok(())
}

fn store_proxy(w: &mut World, p: ProxyProvider) {
    w.proxy.insert(p.pk, p);
}

fn proxy_pk(w: &World, id: &str) -> Option<u64> {
    id.parse().ok().filter(|pk| w.proxy.contains_key(pk))
}

fn blank_proxy(pk: u64) -> ProxyProvider {
    ProxyProvider {
        pk,
        name: String::new(),
        authorization_flow: String::new(),
        authentication_flow: None,
        invalidation_flow: None,
        property_mappings: Vec::new(),
        client_id: random_token(40),
        mode: "proxy".into(),
        external_host: String::new(),
        internal_host: String::new(),
        internal_host_ssl_validation: true,
        cookie_domain: String::new(),
        skip_path_regex: String::new(),
        intercept_header_auth: true,
        basic_auth_enabled: false,
        access_token_validity: "hours=24".into(),
        refresh_token_validity: "days=30".into(),
    }
}

/// Authentik's `ProxyProviderSerializer`: validation looks at the request body only and takes a
/// missing `mode` as `proxy`, so a PATCH without `mode` is refused unless it carries
/// `internal_host` (docs/authentik-api.md §3, "Proxy PATCH gotcha").
fn apply_proxy_fields(w: &World, p: &mut ProxyProvider, body: &Value) -> Result<(), Reply> {
    let obj = body.as_object().cloned().unwrap_or_default();
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let mode = s("mode").unwrap_or_else(|| "proxy".to_string());
    if mode == "proxy" && s("internal_host").is_none_or(|h| h.is_empty()) {
        return Err(Reply::field_error(
            "internal_host",
            "Internal host cannot be empty when forward auth is disabled.",
        ));
    }
    if let Some(name) = s("name") {
        let taken = w.provider_name_taken(&name, p.pk);
        if taken {
            return Err(Reply::field_error("name", "provider with this name already exists."));
        }
        p.name = name;
    }
    if let Some(flow) = s("authorization_flow") {
        p.authorization_flow = existing_flow(w, "authorization_flow", &flow)?;
    }
    if let Some(flow) = obj.get("invalidation_flow") {
        p.invalidation_flow = match flow.as_str() {
            Some(f) => Some(existing_flow(w, "invalidation_flow", f)?),
            None => None,
        };
    }
    if obj.contains_key("mode") {
        p.mode = mode;
    }
    for (field, slot) in [
        ("external_host", &mut p.external_host),
        ("internal_host", &mut p.internal_host),
        ("cookie_domain", &mut p.cookie_domain),
        ("skip_path_regex", &mut p.skip_path_regex),
        ("access_token_validity", &mut p.access_token_validity),
        ("refresh_token_validity", &mut p.refresh_token_validity),
    ] {
        if let Some(v) = s(field) {
            *slot = v;
        }
    }
    for (field, slot) in [
        ("intercept_header_auth", &mut p.intercept_header_auth),
        ("internal_host_ssl_validation", &mut p.internal_host_ssl_validation),
        ("basic_auth_enabled", &mut p.basic_auth_enabled),
    ] {
        if let Some(v) = obj.get(field).and_then(Value::as_bool) {
            *slot = v;
        }
    }
    // Saved with `set_oauth_defaults` applied (`ProxyProviderSerializer.create` and `.update`,
    // every release), before the answer is rendered.
    w.proxy_default_mappings(p);
    Ok(())
}

fn saml_pk(w: &World, id: &str) -> Option<u64> {
    id.parse().ok().filter(|pk| w.saml.contains_key(pk))
}

fn apply_saml_fields(w: &World, p: &mut SamlProvider, body: &Value) -> Result<(), Reply> {
    let obj = body.as_object().cloned().unwrap_or_default();
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    // `SAMLProviderSerializer.validate` (authentik/providers/saml/api/providers.py, from
    // 2024.8.0, commit d577152f8; upstream test `test_create_validate_signing_kp`): a keypair
    // in the request needs a sign switch *in the same request*. It reads only the submitted
    // fields, so neither the model's defaults nor the stored switches count, on PATCH too.
    if w.shapes.saml_sign_switches {
        let submitted = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
        let keypair = obj.get("signing_kp").is_some_and(|v| !v.is_null());
        if keypair && !submitted("sign_assertion") && !submitted("sign_response") {
            return Err(Reply::field_errors(vec![(
                String::new(),
                "With a signing keypair selected, at least one of 'Sign assertion' and 'Sign Response' must be selected."
                    .to_string(),
            )]));
        }
    }
    if let Some(name) = s("name") {
        let taken = w.provider_name_taken(&name, p.pk);
        if taken {
            return Err(Reply::field_error("name", "provider with this name already exists."));
        }
        p.name = name;
    }
    if let Some(flow) = s("authorization_flow") {
        p.authorization_flow = existing_flow(w, "authorization_flow", &flow)?;
    }
    if let Some(flow) = obj.get("invalidation_flow") {
        p.invalidation_flow = match flow.as_str() {
            Some(f) => Some(existing_flow(w, "invalidation_flow", f)?),
            None => None,
        };
    }
    if let Some(mappings) = obj.get("property_mappings").and_then(Value::as_array) {
        let mut pks = Vec::new();
        for m in mappings.iter().filter_map(Value::as_str) {
            if !w.saml_mappings.iter().any(|x| x.pk == m) {
                return Err(Reply::field_error(
                    "property_mappings",
                    format!("Invalid pk \"{m}\" - object does not exist."),
                ));
            }
            pks.push(m.to_string());
        }
        p.property_mappings = pks;
    }
    if let Some(v) = obj.get("name_id_mapping") {
        p.name_id_mapping = match v.as_str() {
            Some(m) if w.saml_mappings.iter().any(|x| x.pk == m) => Some(m.to_string()),
            Some(m) => {
                return Err(Reply::field_error(
                    "name_id_mapping",
                    format!("Invalid pk \"{m}\" - object does not exist."),
                ));
            }
            None => None,
        };
    }
    if let Some(v) = obj.get("signing_kp") {
        p.signing_kp = match v.as_str() {
            Some(kp) if w.keypairs.iter().any(|k| k.pk == kp) => Some(kp.to_string()),
            Some(kp) => {
                return Err(Reply::field_error(
                    "signing_kp",
                    format!("Invalid pk \"{kp}\" - object does not exist."),
                ));
            }
            None => None,
        };
    }
    // `issuer` (before 2026.5) and `issuer_override` (after) are the same setting; the schema
    // check already refused the one this version does not have.
    if let Some(v) = s("issuer").or_else(|| s("issuer_override")) {
        p.issuer = v;
    }
    for (field, slot) in [
        ("acs_url", &mut p.acs_url),
        ("audience", &mut p.audience),
        ("sp_binding", &mut p.sp_binding),
    ] {
        if let Some(v) = s(field) {
            *slot = v;
        }
    }
    for (field, slot) in [
        ("sign_assertion", &mut p.sign_assertion),
        ("sign_response", &mut p.sign_response),
    ] {
        if let Some(v) = obj.get(field).and_then(Value::as_bool) {
            *slot = v;
        }
    }
    Ok(())
}
