//! Sandbox limits for one flow run, and the epoch ticker that makes the deadline enforceable.

use std::time::Duration;

/// Services run at once by default: a stack of up to 100 services is configured in one wave
/// (each service has at most one request in flight, so at most this many requests reach
/// Authentik at once; larger stacks queue). Each concurrent run holds one instance slot, which
/// also bounds memory (about 60 MiB peak at 1000 services).
pub const DEFAULT_CONCURRENCY: usize = 100;

use wasmtime::{Engine, ResourceLimiter};

/// Limits applied to every run (one `Store`). The defaults are documented in docs/capabilities.md
/// ("The run") and RELIABILITY.md.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock time for one run, host calls to Authentik included.
    pub deadline: Duration,
    /// Linear memory per run.
    pub memory_bytes: usize,
    pub table_elements: usize,
    pub instances: usize,
    pub tables: usize,
    pub memories: usize,
    pub max_wasm_stack: usize,
    /// How often the epoch advances (the granularity of the deadline).
    pub epoch_tick: Duration,
    /// Calls into the host per run, every interface counted (Authentik operations, config
    /// reads and writes, log lines, secret handles dropped).
    pub host_calls: u32,
    /// Bytes of log output per run.
    pub log_bytes: usize,
    /// Runs at the same time: the size of the instance pool (see `FlowRuntime::new`). The
    /// runner never runs more services at once than this.
    pub concurrent_runs: usize,
    /// Compiling one component (not cached yet): past this its services fail, and the other
    /// services never wait for it (wasmtime does not bound compile time itself).
    pub compile_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Longer than the 10 s of the design's first sketch: the deadline also covers
            // Authentik round trips, which may be retried with back-off on 429/503
            // (docs/capabilities.md, "The run").
            deadline: Duration::from_secs(30),
            memory_bytes: 64 << 20,
            table_elements: 10_000,
            instances: 10,
            tables: 10,
            memories: 2,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(10),
            host_calls: 4096,
            log_bytes: 1 << 20,
            concurrent_runs: DEFAULT_CONCURRENCY,
            // A Python flow (an 18 MB component) takes about 10 s in a debug build.
            compile_deadline: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// The limits of a component that carries a language runtime (CPython, SpiderMonkey): the
    /// same memory, deadline and quotas, with room for the runtime's many core instances and
    /// tables.
    pub fn for_language_runtime(&self) -> Self {
        Self {
            instances: self.instances.max(100),
            tables: self.tables.max(100),
            memories: self.memories.max(4),
            ..self.clone()
        }
    }
}

/// `ResourceLimiter` whose refusals name the flow, the service and the sizes involved.
pub struct RunLimiter {
    pub label: String,
    pub limits: Limits,
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            return Err(wasmtime::format_err!(
                "{} exceeded its memory limit: wanted {} (had {}), limit {}",
                self.label,
                mib(desired),
                mib(current),
                mib(self.limits.memory_bytes)
            ));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limits.table_elements {
            return Err(wasmtime::format_err!(
                "{} exceeded its table limit: wanted {desired} elements, limit {}",
                self.label,
                self.limits.table_elements
            ));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.tables
    }

    fn memories(&self) -> usize {
        self.limits.memories
    }
}

/// A thread that advances the engine's epoch every tick; it stops when the engine is dropped.
pub struct EpochTicker;

impl EpochTicker {
    pub fn start(engine: &Engine, tick: Duration) -> Self {
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("ssoctl-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(tick);
                }
            })
            .expect("spawn the epoch ticker thread");
        Self
    }
}
