//! One command's session: load the stack, preflight Authentik (reachable, token accepted,
//! version known) before anything is written, then run flows for the chosen services.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::authentik::{Authentik, AuthentikConfig, RetryPolicy};
use crate::capabilities::{Mode, Redactor, RunContext};
use crate::error::{Error, Result};
use crate::runner::{Runner, ServiceReport};
use crate::runtime::FlowRuntime;
use crate::stack::lock::{StackLock, leftover_temp_files, remove_temp_files};
use crate::stack::{EnvFile, Selection, ServiceSpec, Stack};

const EXTERNAL_HINT: &str = " (AUTHENTIK_BOOTSTRAP_SKIP=true: an external Authentik must answer at once)";

pub use crate::limits::DEFAULT_CONCURRENCY;

/// Settings of a session that do not come from the stack.
#[derive(Clone, Debug)]
pub struct Options {
    pub root: PathBuf,
    /// How long to wait for Authentik's readiness. `None`: 0 for an external Authentik
    /// (`AUTHENTIK_BOOTSTRAP_SKIP=true`), 60 s for the bundled one, which may still be starting.
    pub wait: Option<Duration>,
    pub concurrency: usize,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Record the blueprint entry of every object a run asks for (`export --blueprint`); other
    /// commands skip building them.
    pub blueprint: bool,
    /// For commands that write: take the stack's lock (`.ssoctl.lock`) for the whole run,
    /// waiting this long for another run to finish.
    pub lock: Option<LockRequest>,
}

/// Who takes the stack's lock, and how long they wait for it.
#[derive(Clone, Debug)]
pub struct LockRequest {
    /// The command as the next waiter will see it, e.g. `ssoctl fix grafana`.
    pub command: String,
    pub timeout: Duration,
}

impl Options {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            wait: None,
            concurrency: DEFAULT_CONCURRENCY,
            request_timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            blueprint: false,
            lock: None,
        }
    }
}

pub struct Session {
    /// Held for the session's life by commands that write.
    _lock: Option<StackLock>,
    pub stack: Arc<Stack>,
    pub runner: Arc<Runner>,
    /// An external Authentik, which must answer at once: its preflight errors say so.
    external: bool,
    /// The preflight's version notes are logged once per session.
    version_noted: std::sync::Once,
}

/// A spawned task that is stopped when its handle is dropped (a preflight left behind by an
/// error elsewhere must not keep retrying).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn required(env: &EnvFile, key: &str, what: &str) -> Result<String> {
    env.setting(key)
        .ok_or_else(|| Error::Config(format!("{key} is not set: add it to {} ({what})", env.path().display())))
}

impl Session {
    /// Loads the stack and, for the bundled Authentik, waits for its readiness. Authentik itself
    /// is checked by [`Session::preflight`], which every command runs first. Nothing is written.
    pub async fn open(options: &Options, runtime: Arc<FlowRuntime>) -> Result<Self> {
        // A writer waits for any other writer before reading anything, so it reads what the
        // other wrote.
        let lock = match &options.lock {
            Some(request) => {
                let (root, request) = (options.root.clone(), request.clone());
                let taken =
                    tokio::task::spawn_blocking(move || StackLock::acquire(&root, &request.command, request.timeout))
                        .await
                        .map_err(|e| Error::Config(format!("internal error taking the stack lock: {e}")))??;
                Some(taken)
            }
            None => None,
        };
        let leftovers = leftover_temp_files(&options.root);
        if !leftovers.is_empty() {
            let names: Vec<String> = leftovers.iter().map(|p| p.display().to_string()).collect();
            if lock.is_some() {
                let failed = remove_temp_files(&leftovers);
                tracing::warn!(
                    "removed {} temp file(s) an interrupted ssoctl run left behind: {}",
                    leftovers.len() - failed.len(),
                    names.join(", ")
                );
                for (path, e) in failed {
                    tracing::warn!("cannot remove {}: {e}", path.display());
                }
            } else {
                tracing::warn!(
                    "temp files of an interrupted ssoctl run (they may hold secrets; the next fix or \
                     bootstrap removes them): {}",
                    names.join(", ")
                );
            }
        }
        // Authentik's settings are checked before the manifests, so a stack without them says so first.
        let env = EnvFile::load(&options.root.join(".env"))?;
        let public_url = required(
            &env,
            "AUTHENTIK_URL",
            "the public URL of Authentik, e.g. https://auth.example.org",
        )?;
        let token = required(
            &env,
            "AUTHENTIK_ADMIN_TOKEN",
            "an Authentik API token with intent \"API\"",
        )?;
        let stack = Stack::load_with_env(&options.root, env)?;
        // ssoctl's own settings come from the environment first (a CI secret, a `just` recipe's
        // variable), then from `.env`: say which, never the value.
        for key in [
            "AUTHENTIK_URL",
            "AUTHENTIK_API_URL",
            "AUTHENTIK_ADMIN_TOKEN",
            "AUTHENTIK_BOOTSTRAP_SKIP",
        ] {
            if std::env::var(key).is_ok_and(|v| !v.is_empty()) {
                let shadowed = if stack.env.get(key).is_some_and(|v| !v.is_empty()) {
                    format!(
                        ", which takes precedence over its value in {}",
                        stack.env.path().display()
                    )
                } else {
                    String::new()
                };
                tracing::info!("{key} is taken from the environment{shadowed}");
            }
        }
        let api_url = stack.setting("AUTHENTIK_API_URL").unwrap_or_else(|| public_url.clone());
        for (key, url) in [("AUTHENTIK_URL", &public_url), ("AUTHENTIK_API_URL", &api_url)] {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(Error::Config(format!("{key} `{url}` is not an http(s) URL")));
            }
        }
        let external = stack
            .setting("AUTHENTIK_BOOTSTRAP_SKIP")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let wait = options.wait.unwrap_or(if external {
            Duration::ZERO
        } else {
            Duration::from_secs(60)
        });
        let authentik = Authentik::new(AuthentikConfig {
            public_url,
            api_url,
            token,
            request_timeout: options.request_timeout,
            retry: options.retry.clone(),
        })?;
        // The bundled Authentik may still be starting: wait for its readiness. An external one
        // must answer at once, and the preflight's own requests tell whether it does.
        if !wait.is_zero() {
            authentik.wait_ready(wait).await?;
        }
        let redactor = Redactor::default();
        redactor.add(authentik.token());
        let stack = Arc::new(stack);
        let mut ctx = RunContext::new(
            Arc::new(authentik),
            stack.clone(),
            redactor,
            &runtime.grants(),
            options.request_timeout,
        );
        ctx.blueprint = options.blueprint;
        let ctx = Arc::new(ctx);
        let runner = Arc::new(Runner::new(ctx, runtime, options.concurrency));
        Ok(Self {
            _lock: lock,
            stack,
            runner,
            external: wait.is_zero(),
            version_noted: std::sync::Once::new(),
        })
    }

    /// Checks Authentik before anything is written (reachable, token accepted, version and
    /// request shapes known: one round trip) and the selected services' components (loadable and
    /// granted). The two overlap: the preflight's requests leave first, the components load while
    /// they travel, and the lists the flows' first calls will read are started alongside
    /// ([`crate::capabilities::warm_up`]), so the flows do not begin with a round trip of their own.
    ///
    /// A service whose flow cannot run (an unknown `sso.type`, a refused component, one that
    /// does not compile in time) fails on its own line when its run starts; the others run.
    pub async fn preflight(&self, services: &[ServiceSpec]) -> Result<()> {
        let authentik = self.runner.ctx.authentik.clone();
        let mut detect = AbortOnDrop(tokio::spawn(async move { authentik.request_shapes().await.cloned() }));
        // Each type's component loads on a thread of its own (bounded by the compile deadline);
        // as each is ready, the lists its first calls will read are started.
        let types: std::collections::BTreeSet<String> = services.iter().map(|s| s.sso_type.clone()).collect();
        for sso_type in types {
            let runner = self.runner.clone();
            tokio::spawn(async move {
                if let Ok(flow) = runner.load(&sso_type).await {
                    let imports = flow.imports.iter().map(|i| (i.name.as_str(), i.functions.as_slice()));
                    crate::capabilities::warm_up(&runner.ctx.authentik, imports);
                }
            });
        }
        let caps = match (&mut detect.0).await {
            Ok(result) => result,
            Err(e) => return Err(Error::Config(format!("internal error in ssoctl's preflight: {e}"))),
        };
        let caps = caps.map_err(|e| match e {
            crate::authentik::AkError::Unreachable { url, reason, .. } if self.external => {
                crate::authentik::AkError::Unreachable {
                    url,
                    reason,
                    hint: EXTERNAL_HINT,
                }
            }
            other => other,
        })?;
        self.version_noted.call_once(|| {
            tracing::info!("Authentik {} at {}", caps.version, self.authentik().public_url());
            if caps.version > crate::authentik::NEWEST_KNOWN {
                tracing::warn!(
                    "Authentik {} is newer than the newest release ssoctl is tested against ({}); continuing on a \
                     best-effort basis with the request shapes its own schema describes",
                    caps.version,
                    crate::authentik::NEWEST_KNOWN
                );
            } else if caps.version < crate::authentik::OLDEST_KNOWN {
                tracing::warn!(
                    "Authentik {} is older than the oldest release ssoctl is tested against ({}); continuing on a \
                     best-effort basis",
                    caps.version,
                    crate::authentik::OLDEST_KNOWN
                );
            }
        });
        Ok(())
    }

    /// `bootstrap`: every service of the profile that is not configured yet.
    pub async fn bootstrap(&self, profile: Option<&str>) -> Result<Vec<ServiceReport>> {
        let mut selection = self.stack.profile_services(profile)?;
        selection.services.retain(|s| !s.configured);
        self.run(selection, Mode::Apply, true).await
    }

    /// `add` / `fix`: apply the named services (all of the profile when empty).
    pub async fn apply(&self, names: &[String], profile: Option<&str>) -> Result<Vec<ServiceReport>> {
        self.run(self.select(names, profile)?, Mode::Apply, true).await
    }

    pub async fn check(&self, names: &[String], profile: Option<&str>) -> Result<Vec<ServiceReport>> {
        self.run(self.select(names, profile)?, Mode::Check, false).await
    }

    pub async fn plan(&self, names: &[String], profile: Option<&str>) -> Result<Vec<ServiceReport>> {
        self.run(self.select(names, profile)?, Mode::Plan, false).await
    }

    fn select(&self, names: &[String], profile: Option<&str>) -> Result<Selection> {
        if names.is_empty() {
            self.stack.profile_services(profile)
        } else {
            self.stack.named(names)
        }
    }

    /// Preflight, then run every selected service; a broken manifest (or, inside the run, a
    /// refused flow) is its own service's failed report, in the selection's order.
    async fn run(&self, selection: Selection, mode: Mode, mark_configured: bool) -> Result<Vec<ServiceReport>> {
        self.preflight(&selection.services).await?;
        let mut reports = self.runner.run_all(selection.services, mode, mark_configured).await;
        reports.extend(
            selection
                .broken
                .iter()
                .map(|b| ServiceReport::failed(&b.name, &b.sso_type, b.error.clone())),
        );
        let position = |name: &str| selection.order.iter().position(|n| n == name);
        reports.sort_by_key(|r| position(&r.service));
        Ok(reports)
    }

    pub fn authentik(&self) -> &Authentik {
        &self.runner.ctx.authentik
    }
}
