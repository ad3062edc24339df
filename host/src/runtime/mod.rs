//! The engine: wasmtime `Engine`s (epoch interruption, bounded stores), flow components compiled
//! once each (size cap, precompiled-artifact cache), and a fresh `Store` per service run with
//! memory limits and a wall-clock deadline. Which components may run at all is decided by
//! [`admission`] (drop-in files, pins, `--override`, imports and grants), which this module asks
//! and never the other way round; [`component`] holds the types both speak of.

pub mod adapter;
pub mod admission;
pub mod cache;
pub mod component;
mod stock;

pub use admission::{PIN_FILE, pin_drop_ins};
pub use component::{InterfaceUse, LoadError, MAX_COMPONENT_BYTES, Source};
pub use stock::stock_types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

pub use crate::bindings::{SsoFlow, SsoFlowPre};
use crate::capabilities::RunState;
use crate::grants::{Grant, GrantSource, Grants, Optional};
use crate::limits;
pub use crate::limits::Limits;

/// A loaded flow component: described, checked against the grants, and (unless refused) ready
/// to instantiate.
pub struct LoadedFlow {
    pub sso_type: String,
    pub source: Source,
    /// The `sso:flow` release the component was built against (from its export's name); an
    /// earlier one than the host's is linked through [`adapter`].
    pub wit_release: Option<String>,
    pub sha256: String,
    pub size: usize,
    pub imports: Vec<InterfaceUse>,
    pub exports: Vec<InterfaceUse>,
    /// The optional capabilities the component imports.
    pub optional: Vec<Optional>,
    /// What its type is granted, and by whom.
    pub grant: Grant,
    pub grant_source: GrantSource,
    /// Why it may not run (`None`: it may).
    pub refusal: Option<LoadError>,
    /// It carries a language runtime and runs on the on-demand engine
    /// (see [`LANGUAGE_RUNTIME_BYTES`]).
    pub language_runtime: bool,
    pre: Option<SsoFlowPre<RunState>>,
}

/// An engine with its linker and artifact cache.
struct Backend {
    engine: Engine,
    linker: Linker<RunState>,
    cache: Option<cache::ArtifactCache>,
    _ticker: limits::EpochTicker,
}

impl Backend {
    fn new(config: &Config, limits: &Limits, cache_dir: Option<PathBuf>) -> Result<Self, String> {
        let engine = Engine::new(config).map_err(|e| format!("wasmtime engine: {e}"))?;
        let mut linker = Linker::<RunState>::new(&engine);
        SsoFlow::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| format!("link host interfaces: {e}"))?;
        let cache = cache_dir.map(|dir| cache::ArtifactCache::new(dir, &engine));
        let ticker = limits::EpochTicker::start(&engine, limits.epoch_tick);
        Ok(Self {
            engine,
            linker,
            cache,
            _ticker: ticker,
        })
    }
}

/// Components larger than this carry a language runtime (CPython from componentize-py,
/// SpiderMonkey from componentize-js): dozens of core instances and tables where a Rust flow
/// has a handful. They run on an engine without the instance pool (whose slots are sized for
/// small flows), under the same memory limit and deadline, with [`Limits::for_language_runtime`].
pub const LANGUAGE_RUNTIME_BYTES: usize = 2 * 1024 * 1024;

/// Engines, linkers and the loaded components.
pub struct FlowRuntime {
    /// The pooled engine every stock flow and small drop-in runs on.
    pooled: Backend,
    /// The on-demand engine for language-runtime components, started when the first one loads.
    on_demand: std::sync::OnceLock<Result<Backend, String>>,
    cache_dir: Option<PathBuf>,
    loaded: Mutex<HashMap<String, Arc<LoadedFlow>>>,
    /// Components registered beyond the stock ones (tests, later drop-ins), by sso.type.
    extra: Mutex<HashMap<String, (Vec<u8>, Source)>>,
    /// Drop-ins refused before loading (size, stock override, unreadable lock), by sso.type.
    refused: Mutex<HashMap<String, LoadError>>,
    /// Drop-ins whose pin keeps them from running (changed or never pinned): loaded only to be
    /// described, never instantiated.
    pin_refused: Mutex<HashMap<String, LoadError>>,
    /// The operator's grants (the built-in ones until `set_grants`).
    grants: Mutex<Arc<Grants>>,
    pub limits: Limits,
}

fn base_config(limits: &Limits) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.max_wasm_stack(limits.max_wasm_stack);
    config
}

impl FlowRuntime {
    /// `cache_dir: None` compiles every component on load.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self, String> {
        let mut config = base_config(&limits);
        // A pool of instance slots, one per concurrent run: a run takes a slot whose memory,
        // tables and fiber stack are already mapped and returns it, instead of mapping and
        // unmapping them (the kernel work was a third of a 1000-service check). The slots are
        // sized by the run limits, which the limiter still enforces with its own messages.
        let slots = u32::try_from(limits.concurrent_runs.max(1)).unwrap_or(u32::MAX);
        let per_run = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(per_run(limits.instances)))
            .total_memories(slots.saturating_mul(per_run(limits.memories)))
            .total_tables(slots.saturating_mul(per_run(limits.tables)))
            .total_stacks(slots)
            .max_core_instances_per_component(per_run(limits.instances))
            .max_memories_per_component(per_run(limits.memories))
            .max_tables_per_component(per_run(limits.tables))
            .max_memories_per_module(per_run(limits.memories))
            .max_tables_per_module(per_run(limits.tables))
            .table_elements(limits.table_elements)
            // One page above the limit, so the limiter (not the pool) refuses the growth.
            .max_memory_size(limits.memory_bytes + (64 << 10));
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let pooled = Backend::new(&config, &limits, cache_dir.clone())?;
        Ok(Self {
            pooled,
            on_demand: std::sync::OnceLock::new(),
            cache_dir,
            loaded: Mutex::new(HashMap::new()),
            extra: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            pin_refused: Mutex::new(HashMap::new()),
            grants: Mutex::new(Arc::new(Grants::built_in())),
            limits,
        })
    }

    fn backend(&self, language_runtime: bool) -> Result<&Backend, String> {
        if !language_runtime {
            return Ok(&self.pooled);
        }
        self.on_demand
            .get_or_init(|| Backend::new(&base_config(&self.limits), &self.limits, self.cache_dir.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The limits of a run of `flow`.
    pub fn limits_for(&self, flow: &LoadedFlow) -> Limits {
        if flow.language_runtime {
            self.limits.for_language_runtime()
        } else {
            self.limits.clone()
        }
    }

    /// Puts the operator's grants in force (components are checked again when next loaded).
    pub fn set_grants(&self, grants: Grants) {
        *self.grants.lock().expect("grants") = Arc::new(grants);
        self.loaded.lock().expect("loaded").clear();
    }

    pub fn grants(&self) -> Arc<Grants> {
        self.grants.lock().expect("grants").clone()
    }

    /// Makes `bytes` serve `sso_type` (replacing a stock flow of that type).
    pub fn register(&self, sso_type: &str, bytes: Vec<u8>, source: Source) {
        self.loaded.lock().expect("loaded").remove(sso_type);
        self.refused.lock().expect("refused").remove(sso_type);
        self.pin_refused.lock().expect("pin_refused").remove(sso_type);
        self.extra
            .lock()
            .expect("extra")
            .insert(sso_type.to_string(), (bytes, source));
    }

    /// Registers the drop-in components in `dir`: `setup-<type>.wasm` serves `sso.type: <type>`
    /// (loaded and checked when first needed, like the stock ones). A drop-in for a stock type
    /// is refused unless `overrides` names that type; an override without its drop-in is an
    /// error, so a typo cannot silently leave the stock flow in place. A missing folder has no
    /// drop-ins. A drop-in that cannot be used (unpinned or changed since pinned, too large,
    /// unreadable, replacing a stock flow without `--override`) is registered as refused: the
    /// services of its type fail with the reason, the others run. Returns the types registered.
    ///
    /// `dev`, the development folder (`--dev-plugins`), is read after `dir` and its drop-ins are
    /// not pinned: a type there replaces the same type in `dir`. Nothing is kept between runs, so
    /// a rebuilt component is what the next command loads.
    pub fn register_drop_ins(
        &self,
        dir: &Path,
        dev: Option<&Path>,
        overrides: &[String],
    ) -> Result<Vec<String>, String> {
        let pins = admission::read_pins(dir);
        let mut registered = Vec::new();
        let mut found: Vec<(String, PathBuf, bool)> = admission::drop_in_files(dir)?
            .into_iter()
            .map(|(t, p)| (t, p, false))
            .collect();
        if let Some(dev) = dev {
            for (t, p) in admission::drop_in_files(dev)? {
                if let Some(i) = found.iter().position(|(other, _, _)| *other == t) {
                    tracing::warn!(
                        "{} replaces {} while developing (--dev-plugins)",
                        p.display(),
                        found[i].1.display()
                    );
                    found.remove(i);
                }
                found.push((t, p, true));
            }
        }
        for (sso_type, path, is_dev) in found {
            registered.push(sso_type.clone());
            let (pinned_by, source) = if is_dev {
                (admission::Pins::Unpinned, Source::Dev(path.clone()))
            } else {
                (admission::Pins::Lock(&pins), Source::File(path.clone()))
            };
            let folder = path.parent().unwrap_or(dir);
            self.loaded.lock().expect("loaded").remove(&sso_type);
            match admission::admit_drop_in(folder, &sso_type, &path, pinned_by, overrides) {
                Ok(admitted) => {
                    self.register(&sso_type, admitted.bytes, source);
                    if let Some(reason) = admitted.pin_refusal {
                        self.pin_refused.lock().expect("pin_refused").insert(
                            sso_type.clone(),
                            LoadError::Refused {
                                what: path.display().to_string(),
                                reason,
                            },
                        );
                    }
                }
                Err(reason) => {
                    self.refused.lock().expect("refused").insert(
                        sso_type.clone(),
                        LoadError::Refused {
                            what: path.display().to_string(),
                            reason,
                        },
                    );
                }
            }
        }
        if let Some(missing) = overrides.iter().find(|o| !registered.contains(o)) {
            return Err(format!(
                "--override {missing}: there is no setup-{missing}.wasm in {}",
                dir.display()
            ));
        }
        Ok(registered)
    }

    /// Every type a component is available for.
    pub fn known_types(&self) -> Vec<String> {
        let mut types: Vec<String> = stock_types().iter().map(|t| t.to_string()).collect();
        let refused: Vec<String> = self.refused.lock().expect("refused").keys().cloned().collect();
        for t in self.extra.lock().expect("extra").keys().chain(&refused) {
            if !types.contains(t) {
                types.push(t.clone());
            }
        }
        types
    }

    /// The component serving `sso_type`, loaded and checked once per process; refused when it
    /// imports what it is not granted.
    pub fn flow(&self, sso_type: &str) -> Result<Option<Arc<LoadedFlow>>, LoadError> {
        // A component its pin refuses is not even compiled to be run.
        if let Some(refusal) = self.pin_refused.lock().expect("pin_refused").get(sso_type) {
            return Err(refusal.clone());
        }
        match self.inspect(sso_type)? {
            Some(flow) => match &flow.refusal {
                Some(refusal) => Err(refusal.clone()),
                None => Ok(Some(flow)),
            },
            None => Ok(None),
        }
    }

    /// The component serving `sso_type`, described even when it is refused (`plugins audit`).
    pub fn inspect(&self, sso_type: &str) -> Result<Option<Arc<LoadedFlow>>, LoadError> {
        if let Some(refusal) = self.refused.lock().expect("refused").get(sso_type) {
            return Err(refusal.clone());
        }
        if let Some(f) = self.loaded.lock().expect("loaded").get(sso_type) {
            return Ok(Some(f.clone()));
        }
        let found = self.extra.lock().expect("extra").get(sso_type).cloned().or_else(|| {
            stock::STOCK_COMPONENTS
                .iter()
                .find(|(t, _)| *t == sso_type)
                .map(|(_, b)| (b.to_vec(), Source::Stock))
        });
        let Some((bytes, source)) = found else {
            return Ok(None);
        };
        let pin_refusal = self.pin_refused.lock().expect("pin_refused").get(sso_type).cloned();
        let flow = match (self.load(sso_type, &bytes, source), pin_refusal) {
            (Ok(flow), None) => flow,
            // Described, but its pin keeps it from running: the pin's reason comes first, and
            // nothing is prepared for instantiation.
            (Ok(mut flow), Some(refusal)) => {
                flow.refusal = Some(refusal);
                flow.pre = None;
                flow
            }
            (Err(_), Some(refusal)) => return Err(refusal),
            (Err(e), None) => return Err(e),
        };
        let flow = Arc::new(flow);
        self.loaded
            .lock()
            .expect("loaded")
            .insert(sso_type.to_string(), flow.clone());
        Ok(Some(flow))
    }

    fn load(&self, sso_type: &str, bytes: &[u8], source: Source) -> Result<LoadedFlow, LoadError> {
        let what = match &source {
            Source::Stock => format!("{sso_type} (stock)"),
            Source::File(p) | Source::Dev(p) => p.display().to_string(),
        };
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(LoadError::TooLarge {
                what,
                size: bytes.len(),
                limit: MAX_COMPONENT_BYTES,
            });
        }
        let sha256 = hex::encode(Sha256::digest(bytes));
        let wit_release = adapter::built_against(bytes);
        let original = bytes;
        // Built against an earlier release: linked by name onto this one (adapter.rs); what is
        // compiled and cached is the adapted binary, under its own hash.
        let adapted = adapter::adapt(original, wit_release.as_deref()).map_err(|reason| LoadError::Invalid {
            what: what.clone(),
            reason,
        })?;
        let bytes: &[u8] = &adapted;
        let compiled_sha = if bytes.len() == original.len() && bytes == original {
            sha256.clone()
        } else {
            hex::encode(Sha256::digest(bytes))
        };
        let language_runtime = bytes.len() > LANGUAGE_RUNTIME_BYTES;
        let backend = self.backend(language_runtime).map_err(|reason| LoadError::Invalid {
            what: what.clone(),
            reason,
        })?;
        let component = match &backend.cache {
            Some(cache) => cache.load(&backend.engine, bytes, &compiled_sha),
            None => Component::new(&backend.engine, bytes),
        }
        .map_err(|e| LoadError::Invalid {
            what: what.clone(),
            reason: format!("{e:#}"),
        })?;
        let (imports, exports) = describe_component(&backend.engine, &component);
        let optional = admission::optional_imports(&imports);
        let grants = self.grants();
        let (grant, grant_source) = grants.for_type(sso_type);
        let refusal = admission::refusal(sso_type, &what, &imports, &exports, &grants, &grant, &optional);
        let pre = match refusal {
            Some(_) => None,
            None => Some(
                backend
                    .linker
                    .instantiate_pre(&component)
                    .and_then(SsoFlowPre::new)
                    .map_err(|e| LoadError::Invalid {
                        what: what.clone(),
                        reason: format!("{e:#}"),
                    })?,
            ),
        };
        Ok(LoadedFlow {
            sso_type: sso_type.to_string(),
            source,
            wit_release,
            sha256,
            size: bytes.len(),
            imports,
            exports,
            optional,
            grant,
            grant_source,
            refusal,
            language_runtime,
            pre,
        })
    }

    /// A fresh store for one run of `flow`, with the memory limiter and the epoch deadline armed.
    pub fn store(&self, flow: &LoadedFlow, state: RunState) -> Store<RunState> {
        let engine = match self.backend(flow.language_runtime) {
            Ok(backend) => &backend.engine,
            // Loading `flow` started this backend; it cannot have failed.
            Err(_) => &self.pooled.engine,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        // Every call into the host is charged against the run's quota, whichever interface.
        store.call_hook(|mut store, hook| store.data_mut().charge(hook));
        // Yield to the executor at every tick: a spinning guest stays cancellable by the
        // deadline around the call, and other services keep running.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        store
    }
}

impl LoadedFlow {
    /// Ready to instantiate; `None` for a refused component (which `FlowRuntime::flow` never
    /// hands out).
    pub fn pre(&self) -> Option<&SsoFlowPre<RunState>> {
        self.pre.as_ref()
    }
}

fn describe_component(engine: &Engine, component: &Component) -> (Vec<InterfaceUse>, Vec<InterfaceUse>) {
    let ty = component.component_type();
    let describe = |name: &str, item: &ComponentItem| {
        let functions = match item {
            ComponentItem::ComponentInstance(inst) => inst
                .exports(engine)
                .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
                .map(|(n, _)| n.to_string())
                .collect(),
            ComponentItem::ComponentFunc(_) => vec![name.to_string()],
            _ => Vec::new(),
        };
        InterfaceUse {
            name: name.to_string(),
            functions,
        }
    };
    let imports = ty.imports(engine).map(|(n, e)| describe(n, &e.ty)).collect();
    let exports = ty.exports(engine).map(|(n, e)| describe(n, &e.ty)).collect();
    (imports, exports)
}
