//! Runs flows for a set of services: one fresh `Store` per service, bounded concurrency, a
//! deadline around each run, and the staged `.env`/file writes committed only after a run
//! succeeded (serialised, atomic), followed by `configured: true` in the manifest.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Mutex, Semaphore};

use crate::bindings::sso::flow::types;
use crate::capabilities::{Finding, Mode, RunContext, RunState};
use crate::limits::RunLimiter;
use crate::runtime::{FlowRuntime, LoadedFlow};
use crate::stack::envfile::EnvFile;
use crate::stack::{ServiceSpec, manifest};
use wasmtime::Store;

/// How one service's run ended.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Green (check), configured (apply), nothing to do or a plan (plan).
    Ok,
    /// Check mode found differences.
    Drift,
    /// The run could not complete; nothing was written for this service.
    Error,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub sso_type: String,
    pub status: Status,
    /// The flow's phrase for a green line.
    pub summary: String,
    pub findings: Vec<Finding>,
    pub changes: Vec<String>,
    pub events: Vec<String>,
    /// What will break soon (an expiring certificate, an `http://` redirect URI); not drift.
    pub warnings: Vec<String>,
    pub error: Option<String>,
    /// Blueprint entries of the objects the run asked for (`export --blueprint`).
    #[serde(skip)]
    pub blueprint: Vec<serde_yaml::Value>,
    /// Where the run's time went (benchmarks).
    #[serde(skip)]
    pub timing: RunTiming,
}

/// Time of one service's run spent creating its instance and inside its `run` call (which
/// includes the host calls it made and the requests they waited on).
#[derive(Clone, Copy, Debug, Default)]
pub struct RunTiming {
    pub instantiate: std::time::Duration,
    pub call: std::time::Duration,
}

impl ServiceReport {
    fn error(service: &ServiceSpec, message: String) -> Self {
        Self::failed(&service.name, &service.sso_type, message)
    }

    /// A service that could not run at all, with why.
    pub fn failed(service: &str, sso_type: &str, message: String) -> Self {
        Self {
            service: service.to_string(),
            sso_type: sso_type.to_string(),
            status: Status::Error,
            summary: String::new(),
            findings: Vec::new(),
            changes: Vec::new(),
            events: Vec::new(),
            warnings: Vec::new(),
            error: Some(message),
            blueprint: Vec::new(),
            timing: RunTiming::default(),
        }
    }
}

/// A type's component, or why its services cannot run.
type Loaded = Result<Arc<LoadedFlow>, LoadFailure>;

/// Why a type's component cannot run; each service of the type reports it with its manifest.
#[derive(Clone, Debug)]
pub enum LoadFailure {
    /// No component serves the type (the message lists the available ones).
    UnknownType(String),
    /// The component is refused, did not load, or did not compile in time.
    Refused(String),
}

/// Called as each service's run ends (a progress bar).
pub type OnDone = Arc<dyn Fn(&ServiceReport) + Send + Sync>;

pub struct Runner {
    pub ctx: Arc<RunContext>,
    pub runtime: Arc<FlowRuntime>,
    /// Services configured at once (each mostly waits on Authentik).
    pub concurrency: usize,
    /// One permit per service running, shared by every `run_all` of the command.
    permits: Arc<Semaphore>,
    /// Each type's component, loaded once per command off the async workers (see [`Runner::load`]).
    loads: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::OnceCell<Loaded>>>>,
    env_path: PathBuf,
    env_commits: EnvCommits,
    on_done: std::sync::Mutex<Option<OnDone>>,
}

impl Runner {
    pub fn new(ctx: Arc<RunContext>, runtime: Arc<FlowRuntime>, concurrency: usize) -> Self {
        // Each run holds one of the runtime's instance slots.
        let concurrency = concurrency.clamp(1, runtime.limits.concurrent_runs.max(1));
        let env_path = ctx.stack.env.path().to_path_buf();
        Self {
            ctx,
            runtime,
            concurrency,
            permits: Arc::new(Semaphore::new(concurrency)),
            loads: Default::default(),
            env_path,
            env_commits: EnvCommits::default(),
            on_done: std::sync::Mutex::new(None),
        }
    }

    /// Registers the callback each finished service is reported to.
    pub fn on_done(&self, callback: OnDone) {
        *self.on_done.lock().expect("on_done") = Some(callback);
    }

    /// Runs every service in `mode`; reports come back in the order given.
    pub async fn run_all(
        self: &Arc<Self>,
        services: Vec<ServiceSpec>,
        mode: Mode,
        mark_configured: bool,
    ) -> Vec<ServiceReport> {
        let handles: Vec<_> = services
            .into_iter()
            .map(|service| {
                let runner = self.clone();
                let spec = service.clone();
                let handle = tokio::spawn(async move {
                    // The component first, then a run slot: a service whose component is still
                    // compiling holds no slot another service could use.
                    let flow = runner.load(&service.sso_type).await;
                    let _permit = runner.permits.clone().acquire_owned().await.expect("semaphore open");
                    let report = runner.run_one(service, flow, mode, mark_configured).await;
                    let callback = runner.on_done.lock().expect("on_done").clone();
                    if let Some(callback) = callback {
                        callback(&report);
                    }
                    report
                });
                (spec, handle)
            })
            .collect();
        let mut reports = Vec::with_capacity(handles.len());
        for (spec, handle) in handles {
            // A bug in the host for one service must not take the other services' reports with it.
            reports.push(handle.await.unwrap_or_else(|e| {
                ServiceReport::error(
                    &spec,
                    format!("internal error in ssoctl while running this service: {e}"),
                )
            }));
        }
        reports
    }

    /// The component serving `sso_type`, loaded once per command on a thread of its own and
    /// bounded by the compile deadline: a component that compiles for a minute fails its own
    /// services when the deadline passes, and the services of other types never wait for it.
    /// (Its compilation goes on in the background and lands in the cache if it finishes before
    /// the command ends.)
    pub async fn load(&self, sso_type: &str) -> Loaded {
        let cell = self
            .loads
            .lock()
            .expect("loads")
            .entry(sso_type.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let runtime = self.runtime.clone();
            let known = runtime.known_types();
            let unknown = || {
                LoadFailure::UnknownType(format!(
                    "unknown sso.type `{sso_type}` (available: {})",
                    known.join(", ")
                ))
            };
            if !known.iter().any(|t| t == sso_type) {
                return Err(unknown());
            }
            let (done, result) = tokio::sync::oneshot::channel();
            let t = sso_type.to_string();
            std::thread::spawn(move || {
                let _ = done.send(runtime.flow(&t));
            });
            let limit = self.runtime.limits.compile_deadline;
            match tokio::time::timeout(limit, result).await {
                Ok(Ok(Ok(Some(flow)))) => Ok(flow),
                Ok(Ok(Ok(None))) => Err(unknown()),
                Ok(Ok(Err(e))) => Err(LoadFailure::Refused(e.to_string())),
                Ok(Err(_)) => Err(LoadFailure::Refused(format!(
                    "internal error in ssoctl while loading the `{sso_type}` flow"
                ))),
                Err(_) => Err(LoadFailure::Refused(format!(
                    "compiling the `{sso_type}` flow component took longer than {} s (--compile-deadline); \
                     its services are not run",
                    limit.as_secs_f32()
                ))),
            }
        })
        .await
        .clone()
    }

    /// Runs one service; everything in the report that came from the flow or a service's answer
    /// is scrubbed of secrets and made printable on one line.
    pub async fn run_one(
        &self,
        service: ServiceSpec,
        flow: Loaded,
        mode: Mode,
        mark_configured: bool,
    ) -> ServiceReport {
        let mut report = match flow {
            Ok(flow) => self.run_unscrubbed(service, flow, mode, mark_configured).await,
            // Why the flow cannot run, naming the manifest that chose it.
            Err(LoadFailure::UnknownType(e)) => {
                let message = format!("{}: {}{e}", service.manifest_path.display(), line_prefix(&service));
                ServiceReport::error(&service, message)
            }
            Err(LoadFailure::Refused(e)) => {
                let message = format!("{e} (sso.type of {})", service.manifest_path.display());
                ServiceReport::error(&service, message)
            }
        };
        let clean = |text: &str| crate::capabilities::printable(&self.ctx.redactor.redact(text));
        report.summary = clean(&report.summary);
        report.error = report.error.as_deref().map(clean);
        for finding in &mut report.findings {
            finding.kind = clean(&finding.kind);
            finding.message = clean(&finding.message);
        }
        for line in report
            .changes
            .iter_mut()
            .chain(&mut report.events)
            .chain(&mut report.warnings)
        {
            *line = clean(line);
        }
        report
    }

    async fn run_unscrubbed(
        &self,
        service: ServiceSpec,
        flow: Arc<LoadedFlow>,
        mode: Mode,
        mark_configured: bool,
    ) -> ServiceReport {
        // The manifest's `configured: true` is set after the run: found impossible then, it
        // would leave the service registered but failed. Checked first, before anything is written.
        if mode == Mode::Apply
            && mark_configured
            && let Err(e) = manifest::configured_edit(&service.manifest_path)
        {
            return ServiceReport::error(&service, e.to_string());
        }
        let label = format!("flow `{}` for `{}`", service.sso_type, service.name);
        let mut state = RunState::new(
            self.ctx.clone(),
            service.clone(),
            mode,
            RunLimiter {
                label: label.clone(),
                limits: self.runtime.limits_for(&flow),
            },
        );
        state.grant = flow.grant.clone();
        let timing = std::sync::Mutex::new(RunTiming::default());
        let (result, record) = call_flow(&self.runtime, &flow, state, &service, mode, &label, &timing).await;
        let mut report = ServiceReport {
            service: service.name.clone(),
            sso_type: service.sso_type.clone(),
            status: Status::Ok,
            summary: String::new(),
            findings: Vec::new(),
            changes: Vec::new(),
            events: Vec::new(),
            warnings: Vec::new(),
            error: None,
            blueprint: Vec::new(),
            timing: *timing.lock().expect("timing"),
        };
        let Some(mut record) = record else {
            report.status = Status::Error;
            report.error = Some(self.ctx.redactor.redact(&result.err().unwrap_or_default()));
            return report;
        };
        if let Err(message) = result.as_ref()
            && record.lost
        {
            // The store was lost to a trap or the deadline: its staged writes are dropped, but
            // what it already changed in Authentik stays there and is reported.
            report.status = Status::Error;
            report.error = Some(self.ctx.redactor.redact(message));
            report.changes = std::mem::take(&mut record.changes);
            return report;
        }
        // Events announce changes ("registered …"); a run that changed nothing has none to announce.
        if !record.changes.is_empty() {
            report.events = std::mem::take(&mut record.events);
        }
        report.changes = std::mem::take(&mut record.changes);
        report.warnings = std::mem::take(&mut record.warnings);
        report.blueprint = std::mem::take(&mut record.blueprint);
        match result {
            Err(message) => {
                report.status = Status::Error;
                report.error = Some(self.ctx.redactor.redact(&message));
                return report;
            }
            Ok(outcome) => {
                report.summary = outcome.summary;
                report.findings = std::mem::take(&mut record.findings);
                report.findings.extend(outcome.findings.into_iter().map(|f| Finding {
                    kind: f.kind,
                    message: self.ctx.redactor.redact(&f.message),
                }));
            }
        }
        if mode == Mode::Apply
            && let Err(message) = self
                .commit(&service, &record, mark_configured, &mut report.changes)
                .await
        {
            report.status = Status::Error;
            report.error = Some(message);
            return report;
        }
        if !report.findings.is_empty() {
            report.status = Status::Drift;
        }
        report
    }

    /// Lands a successful apply run's staged writes: `.env` keys, service files, then the
    /// manifest's `configured: true`. Each file is replaced atomically; `.env` writes of
    /// services that finish together are grouped into one write.
    async fn commit(
        &self,
        service: &ServiceSpec,
        record: &crate::capabilities::RunRecord,
        mark_configured: bool,
        changes: &mut Vec<String>,
    ) -> Result<(), String> {
        if !record.env_writes.is_empty() {
            let changed = self
                .env_commits
                .commit(&self.env_path, record.env_writes.clone())
                .await?;
            if !changed.is_empty() {
                changes.push(format!("wrote .env: {}", changed.join(", ")));
            }
        }
        let folder = service
            .manifest_path
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf();
        let files = record.file_writes.clone();
        let manifest_path = service.manifest_path.clone();
        // fsync and rename block: off the async workers, so other services' requests go on.
        let (written, marked) = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let mut written = Vec::new();
            if !files.is_empty() {
                let dir = cap_std::fs::Dir::open_ambient_dir(&folder, cap_std::ambient_authority())
                    .map_err(|e| format!("{}: {e}", folder.display()))?;
                written = crate::capabilities::commit_files(&dir, &files)
                    .map_err(|e| format!("{}: {e}", folder.display()))?;
            }
            let marked = mark_configured && manifest::mark_configured(&manifest_path).map_err(|e| e.to_string())?;
            Ok((written, marked))
        })
        .await
        .map_err(|e| format!("internal error while writing: {e}"))??;
        for path in written {
            changes.push(format!("wrote packages/{}/{path}", service.name));
        }
        if marked {
            changes.push("marked sso.configured: true".to_string());
        }
        Ok(())
    }
}

/// Group commit of `.env`: a service queues its keys and takes the writer's turn; whoever holds
/// the turn writes everything queued so far in one atomic write. A hundred services finishing
/// together cost a few writes (and fsyncs) of `.env`, not a hundred.
#[derive(Default)]
struct EnvCommits {
    queue: std::sync::Mutex<Vec<EnvCommit>>,
    turn: Mutex<()>,
    /// `.env` as last read or written, reused while the file on disk is unchanged (a converged
    /// run of a thousand services would otherwise parse it a thousand times).
    known: Arc<std::sync::Mutex<Option<KnownEnv>>>,
}

struct KnownEnv {
    env: EnvFile,
    stamp: (std::time::SystemTime, u64),
}

fn stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

struct EnvCommit {
    keys: std::collections::BTreeMap<String, String>,
    done: tokio::sync::oneshot::Sender<Result<Vec<String>, String>>,
}

impl EnvCommits {
    /// Writes `keys`; returns the ones that changed.
    async fn commit(
        &self,
        path: &std::path::Path,
        keys: std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<String>, String> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.queue.lock().expect("env queue").push(EnvCommit { keys, done });
        {
            let _turn = self.turn.lock().await;
            let batch = std::mem::take(&mut *self.queue.lock().expect("env queue"));
            // Empty: an earlier writer took these keys along.
            if !batch.is_empty() {
                let path = path.to_path_buf();
                let known = self.known.clone();
                let written = tokio::task::spawn_blocking(move || {
                    write_env_batch(&path, batch, &mut known.lock().expect("known env"))
                })
                .await;
                if let Err(e) = written {
                    tracing::error!("writing .env failed: {e}");
                }
            }
        }
        result
            .await
            .unwrap_or_else(|_| Err("the .env write was interrupted; nothing of this service was written".into()))
    }
}

/// Re-reads `.env` (it may have changed since the command started), applies every queued
/// service's keys in order and writes once; each service learns which of its keys changed.
fn write_env_batch(path: &std::path::Path, batch: Vec<EnvCommit>, known: &mut Option<KnownEnv>) {
    let now = stamp(path);
    let reuse = matches!((&*known, now), (Some(k), Some(now)) if k.stamp == now);
    if !reuse {
        *known = match EnvFile::load(path) {
            Ok(env) => now.map(|stamp| KnownEnv { env, stamp }),
            Err(e) => {
                for commit in batch {
                    let _ = commit.done.send(Err(e.to_string()));
                }
                return;
            }
        };
    }
    let Some(KnownEnv { env, stamp: last }) = known.as_mut() else {
        for commit in batch {
            let _ = commit
                .done
                .send(Err(format!("{}: cannot read its metadata", path.display())));
        }
        return;
    };
    // A service whose keys cannot be staged (a duplicated key) fails alone; the others are written.
    let changed: Vec<Result<Vec<String>, String>> = batch
        .iter()
        .map(|c| env.stage(&c.keys).map_err(|e| e.to_string()))
        .collect();
    let saved = if changed.iter().any(|c| c.as_ref().is_ok_and(|c| !c.is_empty())) {
        let saved = env.save().map_err(|e| e.to_string());
        match (&saved, stamp(path)) {
            (Ok(()), Some(now)) => *last = now,
            // Unknown state on disk: read it again next time.
            _ => *known = None,
        }
        saved
    } else {
        Ok(())
    };
    for (commit, changed) in batch.into_iter().zip(changed) {
        let _ = commit.done.send(saved.clone().and(changed));
    }
}

/// Instantiates the flow in a fresh store and calls `run` under the deadline. Returns the
/// outcome (or an error message) and the run's record (`None` if the store was lost to a trap
/// or the deadline, in which case nothing of the run is used).
async fn call_flow(
    runtime: &FlowRuntime,
    flow: &LoadedFlow,
    state: RunState,
    service: &ServiceSpec,
    mode: Mode,
    label: &str,
    timing: &std::sync::Mutex<RunTiming>,
) -> (
    Result<crate::bindings::exports::sso::flow::flow::Outcome, String>,
    Option<crate::capabilities::RunRecord>,
) {
    let mut store = runtime.store(flow, state);
    let wit_service = types::Service {
        name: service.name.clone(),
        slug: service.slug.clone(),
        display_name: service.display_name.clone(),
        sso_type: service.sso_type.clone(),
        public_url: service.public_url.clone(),
        redirect_uris: service
            .redirect_uris
            .iter()
            .map(|r| types::RedirectUri {
                matching: if r.regex {
                    types::MatchMode::Regex
                } else {
                    types::MatchMode::Strict
                },
                url: r.url.clone(),
            })
            .collect(),
        env_prefix: service.env_prefix.clone(),
        settings: service.settings.clone(),
    };
    let deadline = runtime.limits.deadline;
    let call = async {
        let started = std::time::Instant::now();
        let pre = flow
            .pre()
            .ok_or_else(|| wasmtime::format_err!("{} was refused at load time", flow.sso_type))?;
        let instance = pre.instantiate_async(&mut store).await?;
        let instantiated = std::time::Instant::now();
        // A component says which sso.type it serves; a drop-in serves the type of its file name.
        // The two must agree, or a file renamed (or copied) for another type would run a flow
        // written for something else.
        let info = instance.sso_flow_flow().call_describe(&mut store).await?;
        if info.sso_type != flow.sso_type {
            // The guest's text, reduced to what a type name may hold, so it cannot shape the line.
            let claimed: String = info
                .sso_type
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .take(64)
                .collect();
            return Ok(Err(types::FlowError::Invalid(format!(
                "{} describes itself as sso.type `{}` (describe()), but serves `{}` by its file name: rename it \
                 to setup-{}.wasm, or correct describe()",
                flow.source, claimed, flow.sso_type, claimed,
            ))));
        }
        let mut result = instance.sso_flow_flow().call_run(&mut store, &wit_service, mode).await;
        // The application a flow ensured ends with the manifest's access, whatever it called.
        if let Ok(Ok(_)) = &result
            && let Err(e) = crate::capabilities::authentik::access::complete(store.data_mut()).await
        {
            result = Ok(Err(e));
        }
        *timing.lock().expect("timing") = RunTiming {
            instantiate: instantiated - started,
            call: instantiated.elapsed(),
        };
        result
    };
    let result = tokio::time::timeout(deadline, call).await;
    // A run that did not end by returning keeps only the list of what it changed in Authentik.
    let lost = |store: &mut Store<RunState>| {
        let mut kept = crate::capabilities::RunRecord::default();
        kept.lost = true;
        kept.changes = std::mem::take(&mut store.data_mut().record.changes);
        Some(kept)
    };
    match result {
        Err(_) => (
            Err(format!(
                "{label} did not finish within {} s (deadline); it was stopped",
                deadline.as_secs_f32()
            )),
            lost(&mut store),
        ),
        Ok(Err(trap)) => {
            // A panicking guest reports its message through `log` before it traps.
            let detail = match &store.data().record.last_error_log {
                Some(m) => format!(" ({m})"),
                None => String::new(),
            };
            match limit_breach(&trap, label) {
                Some(breach) => (Err(breach), lost(&mut store)),
                None => (
                    Err(format!("{label} failed: {}{detail}", trap_message(&trap))),
                    lost(&mut store),
                ),
            }
        }
        Ok(Ok(Ok(outcome))) if answer_size(&outcome) > MAX_ANSWER_BYTES => (
            Err(format!(
                "{label} answered {:.1} MiB; the limit is 1 MiB",
                answer_size(&outcome) as f64 / (1024.0 * 1024.0)
            )),
            lost(&mut store),
        ),
        Ok(Ok(Err(flow_error))) => (
            Err(flow_error_message(&flow_error)),
            Some(std::mem::take(&mut store.data_mut().record)),
        ),
        Ok(Ok(Ok(outcome))) => (Ok(outcome), Some(std::mem::take(&mut store.data_mut().record))),
    }
}

/// What a flow may hand back (summary and findings); more is refused, not printed.
const MAX_ANSWER_BYTES: usize = 1 << 20;

fn answer_size(outcome: &crate::bindings::exports::sso::flow::flow::Outcome) -> usize {
    outcome.summary.len()
        + outcome
            .findings
            .iter()
            .map(|f| f.kind.len() + f.message.len())
            .sum::<usize>()
}

/// A trap caused by one of the run's limits (memory, tables, host calls) is reported as that
/// limit, in the limiter's own words.
fn limit_breach(e: &wasmtime::Error, label: &str) -> Option<String> {
    let root = e.root_cause().to_string();
    root.starts_with(label).then_some(root)
}

/// The trap itself (e.g. "wasm trap: call stack exhausted"), without the wasm backtrace.
/// `line N: ` of the manifest's `sso.type`, when it can be found.
fn line_prefix(s: &ServiceSpec) -> String {
    crate::stack::Manifest::load(&s.manifest_path)
        .ok()
        .and_then(|m| m.line_of(&["sso", "type"]))
        .map(|l| format!("line {l}: "))
        .unwrap_or_default()
}

fn trap_message(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<wasmtime::Trap>() {
        // Rust's stack lives in linear memory: unbounded recursion ends here, below address 0.
        Some(trap @ wasmtime::Trap::MemoryOutOfBounds) => {
            format!("{trap} (a stack overflow, e.g. unbounded recursion, or a bug in the flow)")
        }
        Some(trap) => trap.to_string(),
        None => e.root_cause().to_string(),
    }
}

fn flow_error_message(e: &types::FlowError) -> String {
    match e {
        types::FlowError::Denied(m) => format!("denied: {m}"),
        types::FlowError::NotFound(m) => format!("not found: {m}"),
        types::FlowError::Invalid(m) => format!("invalid: {m}"),
        types::FlowError::Upstream(m) => m.clone(),
        types::FlowError::Unsupported(m) => m.clone(),
    }
}
