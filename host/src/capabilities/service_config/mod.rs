//! `sso:flow/service-config`: the current service's own `.env` keys and files. A key is the
//! service's when its prefix or its manifest says so (decided at load time, see
//! `crate::stack`), never `AUTHENTIK_*`, never an `idp-http` credential, and, for writes, never one
//! a manifest expands with `${VAR}`; secrets are never readable, only routable as handles. A file
//! is one the manifest declares, under `packages/<svc>/`, and a Traefik file routes only the
//! service's own hosts. Writes are staged and land after the run succeeds.

pub mod files;
mod traefik;

use wasmtime::component::Resource;

use crate::bindings::sso::flow::service_config;
use crate::capabilities::state::{FlowError, Mode, RunState, SecretValue};
use crate::stack::valid_env_key;

impl RunState {
    /// Whether this service may touch `.env` key `key`.
    pub(crate) fn check_env_key(&self, key: &str) -> Result<(), FlowError> {
        if !valid_env_key(key) {
            return Err(FlowError::Invalid(format!(
                "`{key}` is not a valid .env key (A-Z, 0-9, _)"
            )));
        }
        if key.starts_with("AUTHENTIK_") {
            return Err(FlowError::Denied(format!(
                "`{key}`: AUTHENTIK_* keys are never available to flows"
            )));
        }
        if self.ctx.credential_keys.iter().any(|k| k == key) {
            return Err(FlowError::Denied(format!(
                "`{key}` holds an idp-http credential of the operator's grants; the host injects it, flows never see it"
            )));
        }
        match self.ctx.stack.env_owner(key) {
            Some(owner) if owner == self.service.name => Ok(()),
            Some(owner) => Err(FlowError::Denied(format!(
                "`{key}` belongs to service `{owner}`; `{}` may only use its own keys ({}* and those its manifest declares)",
                self.service.name, self.service.env_prefix
            ))),
            None => Err(FlowError::Denied(format!(
                "`{key}` is not owned by `{}`: use the prefix {} or declare it under sso.env in its manifest",
                self.service.name, self.service.env_prefix
            ))),
        }
    }

    /// Whether this service may set `.env` key `key`: one of its own, and not one a manifest
    /// expands with `${VAR}` (the operator's input: an API origin, a host name), which would let
    /// a flow choose where ssoctl sends credentials on the next run.
    pub(crate) fn check_env_write(&self, key: &str) -> Result<(), FlowError> {
        self.check_env_key(key)?;
        if self.ctx.stack.env_expanded(key) {
            return Err(FlowError::Denied(format!(
                "`{key}` is expanded by a manifest (`${{{key}}}`): it is the operator's input, which no flow may set"
            )));
        }
        Ok(())
    }

    pub(crate) fn current_env(&self, key: &str) -> Option<String> {
        self.ctx.stack.env.get(key).map(str::to_string)
    }

    /// The shared logic of `set-env` and `set-env-secret` per mode. `shown` is how the value may
    /// appear in messages (`None` for secrets).
    fn stage_env(&mut self, key: &str, value: &str, secret: bool) {
        let current = self.current_env(key);
        let differs = current.as_deref() != Some(value);
        match self.mode {
            Mode::Apply => {
                self.record.env_writes.insert(key.to_string(), value.to_string());
            }
            Mode::Plan => {
                if differs {
                    let what = if secret {
                        " (client secret)".to_string()
                    } else {
                        format!(" = {value}")
                    };
                    let verb = if current.is_some() { "update" } else { "set" };
                    self.change(format!("{verb} .env {key}{what}"));
                }
            }
            Mode::Check => {
                if !differs || self.provider_missing() {
                    return;
                }
                match (secret, current) {
                    (true, None) => self.finding("client-secret-mismatch", format!("client secret mismatch: {key} is not set in .env")),
                    (true, Some(_)) => self.finding(
                        "client-secret-mismatch",
                        format!("client secret mismatch: {key} in .env differs from Authentik's (logins fail with \"invalid client\")"),
                    ),
                    (false, None) => self.finding("env-mismatch", format!("{key} is not set in .env (expected `{value}`)")),
                    (false, Some(cur)) => self.finding("env-mismatch", format!("{key} in .env is `{cur}`, expected `{value}`")),
                }
            }
        }
    }
}

/// Keys whose values are secrets; `get-env` refuses them so a flow cannot read and leak one.
fn is_secret_name(key: &str) -> bool {
    ["SECRET", "TOKEN", "PASSWORD", "PASSWD", "PRIVATE", "API_KEY"]
        .iter()
        .any(|s| key.contains(s))
}

impl service_config::Host for RunState {
    async fn get_env(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, FlowError>> {
        if let Err(e) = self.check_env_key(&key) {
            return Ok(Err(e));
        }
        if is_secret_name(&key) {
            return Ok(Err(FlowError::Denied(format!(
                "`{key}` holds a secret; flows cannot read secrets"
            ))));
        }
        Ok(Ok(self.current_env(&key)))
    }

    async fn set_env(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), FlowError>> {
        if let Err(e) = self.check_env_write(&key) {
            return Ok(Err(e));
        }
        if value.contains(['\n', '\r', '\0']) {
            return Ok(Err(FlowError::Invalid(format!(
                "value for `{key}` contains a line break or NUL"
            ))));
        }
        self.stage_env(&key, &value, false);
        Ok(Ok(()))
    }

    async fn env_secret(&mut self, key: String) -> wasmtime::Result<Result<Option<Resource<SecretValue>>, FlowError>> {
        if let Err(e) = self.check_env_key(&key) {
            return Ok(Err(e));
        }
        match self.current_env(&key).filter(|v| !v.is_empty()) {
            Some(value) => Ok(Ok(Some(self.new_secret(Some(value))?))),
            None => Ok(Ok(None)),
        }
    }

    async fn set_env_secret(
        &mut self,
        key: String,
        value: Resource<SecretValue>,
    ) -> wasmtime::Result<Result<(), FlowError>> {
        if let Err(e) = self.check_env_write(&key) {
            return Ok(Err(e));
        }
        let secret = self.table.get(&value)?.value.clone();
        match secret {
            Some(s) => self.stage_env(&key, &s, true),
            None if self.mode == Mode::Apply => {
                return Ok(Err(FlowError::Unsupported(format!(
                    "the client secret for `{key}` is not readable from this Authentik server"
                ))));
            }
            // Check/plan with no provider yet: "provider missing" / "create provider" says it all.
            None if self.mode == Mode::Plan && self.current_env(&key).is_none() => {
                self.change(format!("set .env {key} (client secret)"));
            }
            None => {}
        }
        Ok(Ok(()))
    }

    async fn read_file(&mut self, path: String) -> wasmtime::Result<Result<Option<String>, FlowError>> {
        Ok(files::read(self, &path))
    }

    async fn write_file(&mut self, path: String, contents: String) -> wasmtime::Result<Result<(), FlowError>> {
        Ok(files::stage_write(self, &path, contents))
    }
}
