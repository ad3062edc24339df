//! Command line (clap), in one dispatch: parse, then one `match` over the command, each arm
//! building only what that command needs (the flow runtime only for commands that run or
//! inspect flows), then the exit code. Each command's `--help` lists only the flags it reads.

#[cfg(feature = "sim")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::capabilities::Mode;
#[cfg(feature = "sim")]
use crate::demo;
use crate::grants::{GRANTS_FILE, Grants};
use crate::plugins;
use crate::report::{self, print_reports_with_summary};
use crate::runner::ServiceReport;
use crate::runtime::{FlowRuntime, Limits, cache};
use crate::session::{LockRequest, Options, Session};

#[derive(Parser, Debug)]
#[command(
    name = "ssoctl",
    version,
    about = "Register every service of a stack with Authentik through sandboxed WebAssembly flows"
)]
pub struct Cli {
    /// Stack root: holds `.env`, `services.yaml` and `packages/<svc>/manifest.yaml`.
    #[arg(long, global = true, default_value = ".", env = "SSOCTL_ROOT")]
    root: PathBuf,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// More diagnostics on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// Where flow components come from and what they may do: read by every command that loads them.
#[derive(Args, Debug, Clone, Default)]
struct ComponentArgs {
    /// Folder of drop-in flow components: `setup-<type>.wasm` serves `sso.type: <type>`
    /// [default: <root>/scripts/sso, where the per-type setup scripts used to live].
    #[arg(long, env = "SSOCTL_PLUGINS", value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Development folder of drop-ins that are not pinned and are read afresh by every command
    /// (for the edit-build-check loop); a type here replaces the same type in --plugins.
    #[arg(long, env = "SSOCTL_DEV_PLUGINS", value_name = "DIR")]
    dev_plugins: Option<PathBuf>,
    /// Let the drop-in `setup-<TYPE>.wasm` replace the stock flow of that type (repeatable).
    #[arg(long = "override", value_name = "TYPE")]
    overrides: Vec<String>,
    /// The operator's grants: optional capabilities (`service-http`, `idp-http`) per sso.type;
    /// default deny [default: <root>/sso-grants.yaml, if present].
    #[arg(long, env = "SSOCTL_GRANTS", value_name = "FILE")]
    grants: Option<PathBuf>,
    /// Wall-clock limit for compiling one flow component that is not cached yet, in seconds;
    /// its services fail past it, and other services never wait for it.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    compile_deadline: u64,
    /// Do not cache precompiled flow components on disk.
    #[arg(long)]
    no_cache: bool,
}

/// How a command that runs flows against Authentik behaves.
#[derive(Args, Debug, Clone)]
struct RunArgs {
    #[command(flatten)]
    components: ComponentArgs,
    /// Seconds to wait for Authentik to become ready (default: 0 for an external Authentik, 60 for the bundled one).
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    /// Services run at the same time; each has at most one request to Authentik in flight, so
    /// this also bounds the load on Authentik.
    #[arg(long, default_value_t = crate::session::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Wall-clock limit for one flow run, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    deadline: u64,
}

/// A command that writes (`.env`, manifests, Authentik).
#[derive(Args, Debug, Clone)]
struct WriteArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Seconds to wait for another ssoctl run that writes this stack to finish before giving up;
    /// 0 gives up at once.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    lock_timeout: u64,
}

/// A profile of `services.yaml`.
#[derive(Args, Debug, Clone)]
struct ProfileArg {
    /// A profile of services.yaml [default: its default_profile, or every service with SSO]
    #[arg(long)]
    profile: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Preflight Authentik, then configure every service of the profile not yet configured.
    Bootstrap {
        #[command(flatten)]
        profile: ProfileArg,
        #[command(flatten)]
        args: WriteArgs,
    },
    /// Configure one service (provider, application, .env, manifest).
    Add {
        service: String,
        #[command(flatten)]
        args: WriteArgs,
    },
    /// Compare Authentik and `.env` with the manifests; exit 0 green, 1 drift, 2 error.
    Check {
        services: Vec<String>,
        #[command(flatten)]
        profile: ProfileArg,
        /// Also probe each service as a browser would start a login (no browser, no redirects
        /// followed): login-start redirect, OIDC discovery issuer, forward-auth protection.
        #[arg(long)]
        probe: bool,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Re-apply the manifests, changing only what differs.
    Fix {
        services: Vec<String>,
        /// Every service of the profile.
        #[arg(long, conflicts_with = "services")]
        all: bool,
        #[command(flatten)]
        profile: ProfileArg,
        #[command(flatten)]
        args: WriteArgs,
    },
    /// Show what fix/bootstrap would change, changing nothing; exit 1 when something would.
    Plan {
        services: Vec<String>,
        #[command(flatten)]
        profile: ProfileArg,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Run the Authentik simulator.
    #[cfg(feature = "sim")]
    Sim {
        /// Address to serve on (keep it on loopback).
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Authentik version to play (one of the vendored schemas).
        #[arg(long, default_value = "2026.8.3")]
        version: String,
        /// API token the simulator accepts.
        #[arg(long, default_value = "sim-admin-token", env = "SSOCTL_SIM_TOKEN")]
        token: String,
        #[command(flatten)]
        chaos: ChaosArgs,
        /// Also run a fake of Keycloak's admin REST API (for flows written against `idp-http`),
        /// with this realm (repeatable) and a service account `ssoctl` on a free loopback port.
        #[arg(long = "keycloak-realm", value_name = "REALM")]
        keycloak_realms: Vec<String>,
        /// The Keycloak service account's client secret.
        #[arg(long, default_value = "sim-keycloak-secret", env = "SSOCTL_SIM_KEYCLOAK_SECRET")]
        keycloak_secret: String,
        /// Also serve the Frappe, Wiki.js and Zammad fakes the demo uses, and print the `.env`
        /// lines that point the sample stack (`ssoctl demo`'s) at all of them.
        #[arg(long)]
        fakes: bool,
    },
    /// The embedded default: simulator + sample stack, bootstrap → check → drift → fix → check.
    #[cfg(feature = "sim")]
    Demo {
        /// Authentik version to play (one of the vendored schemas).
        #[arg(long, default_value = "2026.8.3")]
        version: String,
    },
    /// Flow components: list them or audit what each can call.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Who may use which application: users × applications as Authentik decides it, with the
    /// reason (binding, group) for each cell; for compliance reviews.
    Access {
        /// Only this user (username).
        #[arg(long)]
        user: Option<String>,
        /// Only this application (slug).
        #[arg(long)]
        app: Option<String>,
        /// CSV on stdout: user,application,allowed,reason,source.
        #[arg(long, conflicts_with = "verify")]
        csv: bool,
        /// Also ask Authentik's own check for every cell, and fail (exit 1) where it disagrees.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        args: RunArgs,
    },
    /// The Authentik applications the manifests claim, and (flagged) those none claims.
    Apps {
        #[command(flatten)]
        args: RunArgs,
    },
    /// The stack's desired state as an Authentik blueprint (YAML on stdout), for keeping Authentik in Git.
    Export {
        /// Authentik blueprint format (`!Find` lookups for flows, keypairs and mappings).
        #[arg(long, required = true)]
        blueprint: bool,
        services: Vec<String>,
        #[command(flatten)]
        profile: ProfileArg,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Shell completions on stdout (`ssoctl completions bash > /etc/bash_completion.d/ssoctl`).
    Completions { shell: clap_complete::Shell },
    /// The man page (roff) on stdout (`ssoctl man | man -l -`).
    Man,
}

#[derive(Subcommand, Debug)]
enum PluginsCommand {
    /// Each component: type, source, sha256, version.
    List {
        #[command(flatten)]
        components: ComponentArgs,
    },
    /// Imports and exports of each component (or of FILE), and whether the host grants them.
    Audit {
        file: Option<PathBuf>,
        #[command(flatten)]
        components: ComponentArgs,
    },
    /// Record the sha256 of every drop-in in the plugin folder's `plugins.lock`; from then on a
    /// drop-in whose hash differs, or that is not listed, is refused.
    Pin {
        /// Folder of drop-in flow components [default: <root>/scripts/sso].
        #[arg(long, env = "SSOCTL_PLUGINS", value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
    /// Start a new flow component: a self-contained Rust project (the flow, the vendored SDK and
    /// WIT, a pinned Cargo.lock, a sample manifest and a test script) in DIR [default: ./setup-<TYPE>].
    New {
        /// The sso.type the flow serves (lower-case letters, digits, `-`).
        #[arg(value_name = "TYPE")]
        sso_type: String,
        /// Where to write the project (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The language of the flow: rust (the SDK vendored) or python (componentize-py).
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::scaffold::Lang,
    },
    /// Build the flow project in DIR [default: .] for wasm32 (adding the target if missing) and
    /// write the component, setup-<type>.wasm, beside its Cargo.toml or to -o.
    Build {
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Where to write the component.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print the WIT a flow component is built against (the newest release, or --release), for
    /// wit-bindgen and other binding generators: `ssoctl plugins wit > wit/sso-flow.wit`.
    Wit {
        /// A released version, e.g. `0.1.0` [default: the newest].
        #[arg(long, value_name = "VERSION")]
        release: Option<String>,
    },
    /// Turn a core WebAssembly module built with wit-bindgen against wit/sso-flow.wit (e.g.
    /// `cargo build --target wasm32-unknown-unknown`) into the flow component ssoctl loads; the
    /// same encoder as `wasm-tools component new`.
    Componentize {
        /// The core module.
        module: PathBuf,
        /// Where to write the component, e.g. `scripts/sso/setup-keycloak.wasm`.
        #[arg(short, long)]
        output: PathBuf,
    },
}

impl Command {
    /// Whether the command is a server that must outlive whoever reads its output.
    fn serves(&self) -> bool {
        #[cfg(feature = "sim")]
        if let Command::Sim { .. } = self {
            return true;
        }
        false
    }
}

/// What a command that runs flows against the stack does, once its session is open.
enum Job {
    Bootstrap {
        profile: Option<String>,
    },
    Apply {
        services: Vec<String>,
        profile: Option<String>,
    },
    Check {
        services: Vec<String>,
        profile: Option<String>,
        probe: bool,
    },
    Plan {
        services: Vec<String>,
        profile: Option<String>,
    },
}

impl Job {
    fn mode(&self) -> Mode {
        match self {
            Job::Bootstrap { .. } | Job::Apply { .. } => Mode::Apply,
            Job::Check { .. } => Mode::Check,
            Job::Plan { .. } => Mode::Plan,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Rust ignores SIGPIPE, so a closed pipe (`ssoctl demo | head`) turns the next `println!` into
    // a panic and exit 101. Every command but the simulator ends as any Unix tool in a pipeline
    // does; the simulator is a server and keeps serving when whoever read its banner goes away.
    #[cfg(unix)]
    if !cli.command.serves() {
        // SAFETY: before any thread of ours exists; `SIG_DFL` is a valid action for SIGPIPE.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    init_tracing(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(run(cli));
    // Exit without tearing down the async runtime, the instance pool and the command's
    // snapshots: the kernel reclaims them at once, while freeing them piece by piece took about a
    // tenth of a bootstrap of 100 services (BENCHMARKS.md). Output is flushed first.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(i32::from(code));
}

fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    // SSOCTL_LOG, else the RUST_LOG every Rust operator knows, else -v/-q.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SSOCTL_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour only on a terminal: a log file or CI log gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

/// `error: ...` on stderr, exit 2.
fn fail(e: impl std::fmt::Display) -> u8 {
    eprintln!("error: {e}");
    2
}

/// The drop-in folder: `--plugins`, else `<root>/scripts/sso`.
fn plugin_dir(root: &std::path::Path, plugins: Option<&PathBuf>) -> Result<PathBuf, String> {
    match plugins {
        Some(dir) if !dir.is_dir() => Err(format!("--plugins {}: no such folder", dir.display())),
        Some(dir) => Ok(dir.clone()),
        None => Ok(root.join("scripts").join("sso")),
    }
}

/// `plugins pin`, without the flow runtime (which would refuse the very components being pinned).
fn run_pin(root: &std::path::Path, plugins: Option<&PathBuf>, json: bool) -> u8 {
    let pinned = plugin_dir(root, plugins)
        .and_then(|dir| crate::runtime::pin_drop_ins(&dir).map(|pins| (dir.join(crate::runtime::PIN_FILE), pins)));
    match pinned {
        Ok((lock, pins)) if json => {
            let pins: Vec<_> = pins
                .iter()
                .map(|(file, sha256)| serde_json::json!({"file": file, "sha256": sha256}))
                .collect();
            let doc = serde_json::json!({"command": "plugins pin", "exit_code": 0, "lock_file": lock, "pins": pins});
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            0
        }
        Ok((lock, pins)) => {
            for (file, sha256) in &pins {
                println!("{file}  {sha256}");
            }
            println!("pinned {} drop-in component(s) in {}", pins.len(), lock.display());
            0
        }
        Err(e) => fail(e),
    }
}

/// The flow runtime: the engine with its limits, the operator's grants and the admitted drop-ins.
fn flow_runtime(
    root: &std::path::Path,
    components: &ComponentArgs,
    deadline: u64,
    concurrency: usize,
) -> Result<Arc<FlowRuntime>, String> {
    let limits = Limits {
        deadline: Duration::from_secs(deadline.max(1)),
        compile_deadline: Duration::from_secs(components.compile_deadline.max(1)),
        concurrent_runs: concurrency.max(1),
        ..Limits::default()
    };
    let cache_dir = if components.no_cache {
        None
    } else {
        cache::default_dir()
    };
    let runtime = FlowRuntime::new(limits, cache_dir)?;
    let grants = match &components.grants {
        Some(file) => Grants::load(file, true)?,
        None => Grants::load(&root.join(GRANTS_FILE), false)?,
    };
    runtime.set_grants(grants);
    let dir = plugin_dir(root, components.plugins.as_ref())?;
    let dev = match &components.dev_plugins {
        Some(d) if !d.is_dir() => return Err(format!("--dev-plugins {}: no such folder", d.display())),
        Some(d) => Some(d.as_path()),
        None => None,
    };
    let drop_ins = runtime.register_drop_ins(&dir, dev, &components.overrides)?;
    if !drop_ins.is_empty() {
        tracing::info!("drop-in flows from {}: {}", dir.display(), drop_ins.join(", "));
    }
    if let Some(dev) = dev {
        tracing::warn!(
            "development drop-ins from {} are not pinned: use --dev-plugins only for components you are writing",
            dev.display()
        );
    }
    Ok(Arc::new(runtime))
}

/// The session options of a command that runs flows.
fn options(root: &std::path::Path, args: &RunArgs) -> Options {
    let mut options = Options::new(root);
    options.wait = args.wait.map(Duration::from_secs);
    options.concurrency = args.concurrency;
    options
}

/// The one dispatch: every command, each building what it needs.
async fn run(cli: Cli) -> u8 {
    let Cli {
        root,
        json,
        quiet,
        command,
        ..
    } = cli;
    let runtime_for = |args: &RunArgs| flow_runtime(&root, &args.components, args.deadline, args.concurrency);
    match command {
        Command::Bootstrap { profile, args } => {
            let lock = lock_request("ssoctl bootstrap".into(), &args);
            let job = Job::Bootstrap {
                profile: profile.profile,
            };
            run_job(&root, &args.run, Some(lock), job, "bootstrap", json, quiet).await
        }
        Command::Add { service, args } => {
            let lock = lock_request(format!("ssoctl add {service}"), &args);
            let job = Job::Apply {
                services: vec![service],
                profile: None,
            };
            run_job(&root, &args.run, Some(lock), job, "add", json, quiet).await
        }
        Command::Fix {
            services,
            all,
            profile,
            args,
        } => {
            if services.is_empty() && !all {
                return fail("name the services to fix, or use --all");
            }
            let what = if all { "--all".to_string() } else { services.join(" ") };
            let lock = lock_request(format!("ssoctl fix {what}"), &args);
            let job = Job::Apply {
                services,
                profile: profile.profile,
            };
            run_job(&root, &args.run, Some(lock), job, "fix", json, quiet).await
        }
        Command::Check {
            services,
            profile,
            probe,
            args,
        } => {
            let job = Job::Check {
                services,
                profile: profile.profile,
                probe,
            };
            run_job(&root, &args, None, job, "check", json, quiet).await
        }
        Command::Plan {
            services,
            profile,
            args,
        } => {
            let job = Job::Plan {
                services,
                profile: profile.profile,
            };
            run_job(&root, &args, None, job, "plan", json, quiet).await
        }
        Command::Access {
            user,
            app,
            csv,
            verify,
            args,
        } => match runtime_for(&args) {
            Ok(runtime) => {
                let request = AccessRequest {
                    user: user.as_deref(),
                    app: app.as_deref(),
                    csv,
                    verify,
                    json,
                };
                run_access(&options(&root, &args), runtime, request).await
            }
            Err(e) => fail(e),
        },
        Command::Apps { args } => match runtime_for(&args) {
            Ok(runtime) => run_apps(&options(&root, &args), runtime, json).await,
            Err(e) => fail(e),
        },
        Command::Export {
            services,
            profile,
            args,
            ..
        } => match runtime_for(&args) {
            Ok(runtime) => run_export(&options(&root, &args), runtime, &services, profile.profile.as_deref()).await,
            Err(e) => fail(e),
        },
        #[cfg(feature = "sim")]
        Command::Demo { version } => {
            // The demo's own stack and simulator; the engine's defaults.
            match flow_runtime(
                &root,
                &ComponentArgs::default(),
                30,
                crate::session::DEFAULT_CONCURRENCY,
            ) {
                Ok(runtime) => demo::run(&version, runtime).await,
                Err(e) => fail(e),
            }
        }
        #[cfg(feature = "sim")]
        Command::Sim {
            listen,
            version,
            token,
            chaos,
            keycloak_realms,
            keycloak_secret,
            fakes,
        } => {
            let keycloak =
                (!keycloak_realms.is_empty()).then_some((keycloak_realms.as_slice(), keycloak_secret.as_str()));
            run_sim(listen, &version, &token, &chaos, keycloak, fakes).await
        }
        Command::Plugins { command } => match command {
            PluginsCommand::List { components } => match flow_runtime(&root, &components, 30, 1) {
                Ok(runtime) => plugins::list(&runtime, json),
                Err(e) => fail(e),
            },
            PluginsCommand::Audit { file, components } => match flow_runtime(&root, &components, 30, 1) {
                Ok(runtime) => plugins::audit(&runtime, file.as_deref(), json),
                Err(e) => fail(e),
            },
            PluginsCommand::Pin { plugins } => run_pin(&root, plugins.as_ref(), json),
            PluginsCommand::New { sso_type, dir, lang } => {
                let dir = dir.unwrap_or_else(|| PathBuf::from(format!("setup-{sso_type}")));
                match crate::scaffold::new_flow(&sso_type, &dir, lang) {
                    Ok(files) => {
                        println!("wrote {} files into {}", files.len(), dir.display());
                        if lang == crate::scaffold::Lang::Python {
                            println!(
                                "next: cd {} && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && \
                                 ssoctl plugins build && ./test.sh",
                                dir.display()
                            );
                        } else {
                            println!("next: cd {} && ssoctl plugins build && ./test.sh", dir.display());
                        }
                        0
                    }
                    Err(e) => fail(e),
                }
            }
            PluginsCommand::Build { dir, output } => match crate::scaffold::build_flow(&dir, output.as_deref()) {
                Ok((component, size)) => {
                    println!("wrote {} ({size} bytes)", component.display());
                    0
                }
                Err(e) => fail(e),
            },
            PluginsCommand::Wit { release } => {
                let releases = crate::bindings::WIT_RELEASES;
                let wanted = release.unwrap_or_else(|| releases[releases.len() - 1].0.to_string());
                match releases.iter().find(|(v, _)| *v == wanted) {
                    Some((_, text)) => {
                        print!("{text}");
                        0
                    }
                    None => {
                        let known: Vec<&str> = releases.iter().map(|(v, _)| *v).collect();
                        eprintln!(
                            "error: no sso:flow WIT release `{wanted}`; this ssoctl has {}",
                            known.join(", ")
                        );
                        2
                    }
                }
            }
            PluginsCommand::Componentize { module, output } => match plugins::componentize(&module, &output) {
                Ok(size) => {
                    println!("wrote {} ({size} bytes)", output.display());
                    0
                }
                Err(e) => fail(e),
            },
        },
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "ssoctl",
                &mut std::io::stdout(),
            );
            0
        }
        Command::Man => {
            match clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => fail(e),
            }
        }
    }
}

fn lock_request(command: String, args: &WriteArgs) -> LockRequest {
    LockRequest {
        command,
        timeout: Duration::from_secs(args.lock_timeout),
    }
}

/// Opens the session (taking the stack lock for writers), runs the job and prints its report.
async fn run_job(
    root: &std::path::Path,
    args: &RunArgs,
    lock: Option<LockRequest>,
    job: Job,
    command: &str,
    json: bool,
    quiet: bool,
) -> u8 {
    let mode = job.mode();
    let runtime = match flow_runtime(root, &args.components, args.deadline, args.concurrency) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut options = options(root, args);
    options.lock = lock;
    let started = std::time::Instant::now();
    let progress = Progress::start(json, quiet, mode);
    let result = match Session::open(&options, runtime).await {
        Ok(session) => {
            progress.attach(&session);
            let result = match &job {
                Job::Bootstrap { profile } => session.bootstrap(profile.as_deref()).await,
                Job::Apply { services, profile } => session.apply(services, profile.as_deref()).await,
                Job::Check {
                    services,
                    profile,
                    probe,
                } => match session.check(services, profile.as_deref()).await {
                    Ok(mut reports) if *probe => crate::probe::probe(&session, &mut reports).await.map(|()| reports),
                    other => other,
                },
                Job::Plan { services, profile } => session.plan(services, profile.as_deref()).await,
            };
            // The process exits after the report: leave the session's snapshots to the kernel.
            std::mem::forget(session);
            result
        }
        Err(e) => Err(e),
    };
    progress.finish();
    match result {
        Ok(reports) => print_reports_with_summary(command, &reports, mode, json, started.elapsed()),
        Err(e) if json => {
            println!(
                "{}",
                serde_json::json!({"command": command, "mode": report::mode_name(mode), "exit_code": 2, "error": e.to_string()})
            );
            2
        }
        Err(e) => fail(e),
    }
}

async fn run_export(options: &Options, runtime: Arc<FlowRuntime>, services: &[String], profile: Option<&str>) -> u8 {
    let options = Options {
        blueprint: true,
        ..options.clone()
    };
    let reports = match Session::open(&options, runtime).await {
        Ok(session) => session.plan(services, profile).await,
        Err(e) => Err(e),
    };
    match reports {
        Ok(reports) if reports.iter().all(|r| r.status != crate::runner::Status::Error) => {
            let name = options
                .root
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "stack".into());
            print!(
                "{}",
                crate::capabilities::blueprint::document(
                    &format!("ssoctl {name}"),
                    reports.iter().flat_map(|r| r.blueprint.iter().cloned()).collect()
                )
            );
            0
        }
        Ok(reports) => {
            for r in reports.iter().filter(|r| r.status == crate::runner::Status::Error) {
                eprintln!("error: {}: {}", r.service, r.error.as_deref().unwrap_or("failed"));
            }
            2
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

async fn run_apps(options: &Options, runtime: Arc<FlowRuntime>, json: bool) -> u8 {
    let rows = match Session::open(options, runtime).await {
        Ok(session) => crate::apps::rows(&session).await,
        Err(e) => Err(e),
    };
    match rows {
        Ok(rows) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"command": "apps", "exit_code": 0, "applications": rows})
                )
                .unwrap_or_default()
            );
            0
        }
        Ok(rows) => {
            let colour = report::colour_enabled();
            for line in crate::apps::lines(&rows) {
                println!("{}", report::paint(&line, colour));
            }
            0
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"command": "apps", "exit_code": 2, "error": e.to_string()})
                );
            } else {
                eprintln!("error: {e}");
            }
            2
        }
    }
}

/// What `ssoctl access` was asked for.
struct AccessRequest<'a> {
    user: Option<&'a str>,
    app: Option<&'a str>,
    csv: bool,
    verify: bool,
    json: bool,
}

async fn run_access(options: &Options, runtime: Arc<FlowRuntime>, request: AccessRequest<'_>) -> u8 {
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} access checks asked of Authentik")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let found = match Session::open(options, runtime).await {
        Ok(session) => {
            crate::access_matrix::matrix(&session, request.user, request.app, request.verify, &progress).await
        }
        Err(e) => Err(e),
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let matrix = match found {
        Ok(m) => m,
        Err(e) => {
            if request.json {
                println!(
                    "{}",
                    serde_json::json!({"command": "access", "exit_code": 2, "error": e.to_string()})
                );
            } else {
                eprintln!("error: {e}");
            }
            return 2;
        }
    };
    let code = u8::from(!matrix.disagreements.is_empty());
    if request.json {
        let doc = serde_json::json!({
            "command": "access", "exit_code": code, "cells": matrix.cells, "disagreements": matrix.disagreements,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if request.csv {
        print!("{}", crate::access_matrix::csv(&matrix.cells));
    } else {
        for line in crate::access_matrix::lines(&matrix.cells) {
            println!("{line}");
        }
        for d in &matrix.disagreements {
            eprintln!("disagreement: {d}");
        }
    }
    code
}

/// A progress bar on stderr while many services run, when stderr is a terminal.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn start(json: bool, quiet: bool, mode: Mode) -> Self {
        use std::io::IsTerminal;
        let wanted = !json && !quiet && mode == Mode::Apply && std::io::stderr().is_terminal();
        Self(wanted.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} services {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        }))
    }

    fn attach(&self, session: &Session) {
        if let Some(bar) = &self.0 {
            let bar = bar.clone();
            bar.set_length(session.stack.services.len() as u64);
            session.runner.on_done(Arc::new(move |r: &ServiceReport| {
                bar.inc(1);
                bar.set_message(r.service.clone());
            }));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Faults the simulator injects at a rate, for trying ssoctl against a flaky Authentik.
#[cfg(feature = "sim")]
#[derive(clap::Args, Debug, Clone)]
pub struct ChaosArgs {
    /// Latency added to every API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of requests answered 500/502/503 (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Share of requests answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Retry-After seconds sent with 429.
    #[arg(long, default_value_t = 1)]
    retry_after: u64,
    /// Share of writes applied whose answer is then lost (504).
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Send every answer's body slowly, over this many milliseconds.
    #[arg(long, default_value_t = 0)]
    slow_body_ms: u64,
}

#[cfg(feature = "sim")]
impl ChaosArgs {
    fn chaos(&self) -> Result<ssoctl_sim::Chaos, String> {
        for (name, rate) in [
            ("--error-rate", self.error_rate),
            ("--throttle-rate", self.throttle_rate),
            ("--drop-rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, not {rate}"));
            }
        }
        Ok(ssoctl_sim::Chaos {
            latency: Duration::from_millis(self.latency_ms),
            error_rate: self.error_rate,
            throttle_rate: self.throttle_rate,
            retry_after_s: self.retry_after,
            drop_rate: self.drop_rate,
            slow_body: Duration::from_millis(self.slow_body_ms),
        })
    }
}

#[cfg(feature = "sim")]
async fn run_sim(
    listen: SocketAddr,
    version: &str,
    token: &str,
    chaos: &ChaosArgs,
    keycloak: Option<(&[String], &str)>,
    fakes: bool,
) -> u8 {
    let chaos = match chaos.chaos() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let config = ssoctl_sim::SimConfig {
        version: version.to_string(),
        token: token.to_string(),
        listen,
    };
    let sim = match ssoctl_sim::Sim::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    sim.set_chaos(chaos.clone());
    // A closed stdout (piped into `head`, a test that stopped reading) must not stop the server.
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "Authentik simulator {} listening on {} (stop with Ctrl-C)",
        sim.version(),
        sim.url()
    );
    let _ = writeln!(out, "  AUTHENTIK_URL={}", sim.url());
    let _ = writeln!(out, "  token: the value of --token (or SSOCTL_SIM_TOKEN)");
    let _ = writeln!(
        out,
        "  counters: {0}/-/sim/counters   schema violations: {0}/-/sim/violations",
        sim.url()
    );
    let _ = writeln!(
        out,
        "  logins: the cookie authentik_session=sim:<username> is that user at {}/application/o/authorize/; \
         the embedded outpost answers /outpost.goauthentik.io/ for its proxy providers' hosts (docs/simulator.md)",
        sim.url()
    );
    let keycloak_fake = match keycloak {
        Some((realms, secret)) => {
            let realms: Vec<&str> = realms.iter().map(String::as_str).collect();
            match ssoctl_sim::keycloak::KeycloakFake::start(&realms, "ssoctl", secret).await {
                Ok(fake) => Some(fake),
                Err(e) => {
                    eprintln!("error: Keycloak fake: {e}");
                    return 2;
                }
            }
        }
        None => None,
    };
    let service_fakes = if fakes {
        match crate::demo::ServiceFakes::start().await {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("error: service fakes: {e}");
                return 2;
            }
        }
    } else {
        None
    };
    if let Some(f) = &service_fakes {
        let _ = writeln!(
            out,
            "Frappe fake on {}, Wiki.js fake on {}, Zammad fake on {}; .env lines for the sample stack \
             (`ssoctl demo`'s packages/ and services.yaml):",
            f.frappe.url(),
            f.wikijs.url(),
            f.zammad.url()
        );
        for (key, value) in crate::demo::simulator_env(&sim.url(), token, Some(f)) {
            let _ = writeln!(out, "{key}={value}");
        }
    }
    if let Some(kc) = &keycloak_fake {
        let url = kc.url();
        let _ = writeln!(
            out,
            "Keycloak admin API fake listening on {url}; grant it in sso-grants.yaml:"
        );
        let _ = writeln!(
            out,
            "  <type>:\n    idp-http:\n      origin: {url}\n      auth:\n        client-credentials:\n          \
             token-url: {url}/realms/master/protocol/openid-connect/token\n          client-id: ssoctl\n          \
             client-secret-env: KEYCLOAK_SSOCTL_SECRET   # = --keycloak-secret"
        );
    }
    let _ = out.flush();
    let _ = tokio::signal::ctrl_c().await;
    drop(keycloak_fake);
    drop(service_fakes);
    let violations = sim.violations();
    if !violations.is_empty() {
        eprintln!("{} schema violation(s) seen:", violations.len());
        for v in &violations {
            eprintln!("  {v}");
        }
        return 1;
    }
    0
}
