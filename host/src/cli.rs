//! Command line (clap). Each command opens a [`Session`] (preflight first) and prints the report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::capabilities::Mode;
use crate::grants::{GRANTS_FILE, Grants};
use crate::runner::ServiceReport;
use crate::runtime::{FlowRuntime, Limits, cache};
use crate::session::{Options, Session};
use crate::{demo, plugins, report};

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
    /// Seconds to wait for Authentik to become ready (default: 0 for an external Authentik, 60 for the bundled one).
    #[arg(long, global = true)]
    wait: Option<u64>,
    /// Services run at the same time; each has at most one request to Authentik in flight, so
    /// this also bounds the load on Authentik.
    #[arg(long, global = true, default_value_t = crate::session::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Wall-clock limit for one flow run, in seconds.
    #[arg(long, global = true, default_value_t = 30)]
    deadline: u64,
    /// Wall-clock limit for compiling one flow component that is not cached yet, in seconds;
    /// its services fail past it, and other services never wait for it.
    #[arg(long, global = true, default_value_t = 60, value_name = "SECS")]
    compile_deadline: u64,
    /// Seconds a command that writes (bootstrap, add, fix) waits for another ssoctl run on the
    /// same stack to finish before giving up; 0 gives up at once.
    #[arg(long, global = true, default_value_t = 600, value_name = "SECS")]
    lock_timeout: u64,
    /// Do not cache precompiled flow components on disk.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Folder of drop-in flow components: `setup-<type>.wasm` serves `sso.type: <type>`
    /// [default: <root>/scripts/sso, where the per-type setup scripts used to live].
    #[arg(long, global = true, env = "SSOCTL_PLUGINS", value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Let the drop-in `setup-<TYPE>.wasm` replace the stock flow of that type (repeatable).
    #[arg(long = "override", global = true, value_name = "TYPE")]
    overrides: Vec<String>,
    /// The operator's grants: optional capabilities (`service-http`, `idp-http`) per sso.type;
    /// default deny [default: <root>/sso-grants.yaml, if present].
    #[arg(long, global = true, env = "SSOCTL_GRANTS", value_name = "FILE")]
    grants: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Command {
    /// The subcommand as typed, the `command` field of every `--json` document.
    fn name(&self) -> &'static str {
        match self {
            Command::Bootstrap { .. } => "bootstrap",
            Command::Add { .. } => "add",
            Command::Check { .. } => "check",
            Command::Fix { .. } => "fix",
            Command::Plan { .. } => "plan",
            Command::Sim { .. } => "sim",
            Command::Demo { .. } => "demo",
            Command::Plugins {
                command: PluginsCommand::List,
            } => "plugins list",
            Command::Plugins {
                command: PluginsCommand::Pin,
            } => "plugins pin",
            Command::Plugins {
                command: PluginsCommand::Componentize { .. },
            } => "plugins componentize",
            Command::Plugins { .. } => "plugins audit",
            Command::Apps => "apps",
            Command::Export { .. } => "export",
            Command::Completions { .. } => "completions",
            Command::Man => "man",
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Preflight Authentik, then configure every service of the profile not yet configured.
    Bootstrap {
        /// A profile of services.yaml [default: its default_profile, or every service with SSO]
        #[arg(long)]
        profile: Option<String>,
    },
    /// Configure one service (provider, application, .env, manifest).
    Add { service: String },
    /// Compare Authentik and `.env` with the manifests; exit 0 green, 1 drift, 2 error.
    Check {
        services: Vec<String>,
        /// A profile of services.yaml [default: its default_profile, or every service with SSO]
        #[arg(long)]
        profile: Option<String>,
        /// Also probe each service as a browser would start a login (no browser, no redirects
        /// followed): login-start redirect, OIDC discovery issuer, forward-auth protection.
        #[arg(long)]
        probe: bool,
    },
    /// Re-apply the manifests, changing only what differs.
    Fix {
        services: Vec<String>,
        /// Every service of the profile.
        #[arg(long, conflicts_with = "services")]
        all: bool,
        /// A profile of services.yaml [default: its default_profile, or every service with SSO]
        #[arg(long)]
        profile: Option<String>,
    },
    /// Show what fix/bootstrap would change, changing nothing; exit 1 when something would.
    Plan {
        services: Vec<String>,
        /// A profile of services.yaml [default: its default_profile, or every service with SSO]
        #[arg(long)]
        profile: Option<String>,
    },
    /// Run the Authentik simulator.
    Sim {
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
    },
    /// The embedded default: simulator + sample stack, bootstrap → check → drift → fix → check.
    Demo {
        #[arg(long, default_value = "2026.8.3")]
        version: String,
    },
    /// Flow components: list them or audit what each can call.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// The Authentik applications the manifests claim, and (flagged) those none claims.
    Apps,
    /// The stack's desired state as an Authentik blueprint (YAML on stdout), for keeping Authentik in Git.
    Export {
        /// Authentik blueprint format (`!Find` lookups for flows, keypairs and mappings).
        #[arg(long, required = true)]
        blueprint: bool,
        services: Vec<String>,
        /// A profile of services.yaml [default: its default_profile, or every service with SSO]
        #[arg(long)]
        profile: Option<String>,
    },
    /// Shell completions on stdout (`ssoctl completions bash > /etc/bash_completion.d/ssoctl`).
    Completions { shell: clap_complete::Shell },
    /// The man page (roff) on stdout (`ssoctl man | man -l -`).
    Man,
}

#[derive(Subcommand, Debug)]
enum PluginsCommand {
    /// Each component: type, source, sha256, version.
    List,
    /// Imports and exports of each component (or of FILE), and whether the host grants them.
    Audit { file: Option<PathBuf> },
    /// Record the sha256 of every drop-in in the plugin folder's `plugins.lock`; from then on a
    /// drop-in whose hash differs, or that is not listed, is refused.
    Pin,
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "ssoctl",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            return match page.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            };
        }
        _ => {}
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

/// The drop-in folder: `--plugins`, else `<root>/scripts/sso`.
fn plugin_dir(cli: &Cli) -> Result<PathBuf, String> {
    match &cli.plugins {
        Some(dir) if !dir.is_dir() => Err(format!("--plugins {}: no such folder", dir.display())),
        Some(dir) => Ok(dir.clone()),
        None => Ok(cli.root.join("scripts").join("sso")),
    }
}

/// `plugins pin`, before the runtime starts (which would refuse the very components being pinned).
fn run_pin(cli: &Cli) -> u8 {
    let pinned = plugin_dir(cli)
        .and_then(|dir| crate::runtime::pin_drop_ins(&dir).map(|pins| (dir.join(crate::runtime::PIN_FILE), pins)));
    match pinned {
        Ok((lock, pins)) if cli.json => {
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
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn flow_runtime(cli: &Cli) -> Result<Arc<FlowRuntime>, String> {
    let limits = Limits {
        deadline: Duration::from_secs(cli.deadline.max(1)),
        compile_deadline: Duration::from_secs(cli.compile_deadline.max(1)),
        concurrent_runs: cli.concurrency.max(1),
        ..Limits::default()
    };
    let cache_dir = if cli.no_cache { None } else { cache::default_dir() };
    let runtime = FlowRuntime::new(limits, cache_dir)?;
    let grants = match &cli.grants {
        Some(file) => Grants::load(file, true)?,
        None => Grants::load(&cli.root.join(GRANTS_FILE), false)?,
    };
    runtime.set_grants(grants);
    let dir = plugin_dir(cli)?;
    let drop_ins = runtime.register_drop_ins(&dir, &cli.overrides)?;
    if !drop_ins.is_empty() {
        tracing::info!("drop-in flows from {}: {}", dir.display(), drop_ins.join(", "));
    }
    Ok(Arc::new(runtime))
}

async fn run(cli: Cli) -> u8 {
    match &cli.command {
        Command::Plugins {
            command: PluginsCommand::Pin,
        } => return run_pin(&cli),
        Command::Plugins {
            command: PluginsCommand::Componentize { module, output },
        } => {
            return match plugins::componentize(module, output) {
                Ok(size) => {
                    println!("wrote {} ({size} bytes)", output.display());
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            };
        }
        _ => {}
    }
    let runtime = match flow_runtime(&cli) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut options = Options::new(&cli.root);
    options.wait = cli.wait.map(Duration::from_secs);
    options.concurrency = cli.concurrency;
    let mode = match &cli.command {
        Command::Sim {
            listen,
            version,
            token,
            chaos,
            keycloak_realms,
            keycloak_secret,
        } => {
            let keycloak =
                (!keycloak_realms.is_empty()).then_some((keycloak_realms.as_slice(), keycloak_secret.as_str()));
            return run_sim(*listen, version, token, chaos, keycloak).await;
        }
        Command::Demo { version } => return demo::run(version, runtime).await,
        Command::Completions { .. } | Command::Man => unreachable!("answered before the runtime starts"),
        Command::Apps => return run_apps(&options, runtime, cli.json).await,
        Command::Export { services, profile, .. } => {
            return run_export(&options, runtime, services, profile.as_deref()).await;
        }
        Command::Plugins {
            command: PluginsCommand::List,
        } => return plugins::list(&runtime, cli.json),
        Command::Plugins {
            command: PluginsCommand::Audit { file },
        } => return plugins::audit(&runtime, file.as_deref(), cli.json),
        Command::Plugins {
            command: PluginsCommand::Pin | PluginsCommand::Componentize { .. },
        } => unreachable!("answered before the runtime starts"),
        Command::Fix {
            services, all: false, ..
        } if services.is_empty() => {
            eprintln!("error: name the services to fix, or use --all");
            return 2;
        }
        Command::Bootstrap { .. } | Command::Add { .. } | Command::Fix { .. } => Mode::Apply,
        Command::Check { .. } => Mode::Check,
        Command::Plan { .. } => Mode::Plan,
    };
    if mode == Mode::Apply {
        let mut command = format!("ssoctl {}", cli.command.name());
        match &cli.command {
            Command::Add { service } => command.push_str(&format!(" {service}")),
            Command::Fix {
                services, all: true, ..
            } if services.is_empty() => command.push_str(" --all"),
            Command::Fix { services, .. } => command.push_str(&format!(" {}", services.join(" "))),
            _ => {}
        }
        options.lock = Some(crate::session::LockRequest {
            command,
            timeout: Duration::from_secs(cli.lock_timeout),
        });
    }
    let started = std::time::Instant::now();
    let progress = Progress::start(&cli, mode);
    let result = match Session::open(&options, runtime).await {
        Ok(session) => {
            progress.attach(&session);
            let result = match &cli.command {
                Command::Bootstrap { profile } => session.bootstrap(profile.as_deref()).await,
                Command::Add { service } => session.apply(std::slice::from_ref(service), None).await,
                Command::Fix { services, profile, .. } => session.apply(services, profile.as_deref()).await,
                Command::Check {
                    services,
                    profile,
                    probe,
                } => match session.check(services, profile.as_deref()).await {
                    Ok(mut reports) if *probe => crate::probe::probe(&session, &mut reports).await.map(|()| reports),
                    other => other,
                },
                Command::Plan { services, profile } => session.plan(services, profile.as_deref()).await,
                _ => unreachable!("handled above"),
            };
            // The process exits after the report: leave the session's snapshots to the kernel.
            std::mem::forget(session);
            result
        }
        Err(e) => Err(e),
    };
    progress.finish();
    let command = cli.command.name();
    match result {
        Ok(reports) => print_run(command, &reports, mode, cli.json, started.elapsed()),
        Err(e) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"command": command, "mode": report::mode_name(mode), "exit_code": 2, "error": e.to_string()})
                );
            } else {
                eprintln!("error: {e}");
            }
            2
        }
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
                crate::capabilities::blueprint::document(&format!("ssoctl {name}"), &reports)
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
            let colour = colour_enabled();
            for line in crate::apps::lines(&rows) {
                println!("{}", paint(&line, colour));
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

/// The service lines, without the summary (the demo prints several runs in a row).
pub fn print_reports(reports: &[ServiceReport], mode: Mode, json: bool) -> u8 {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::json(reports, mode, Duration::ZERO)).unwrap_or_default()
        );
    } else {
        let colour = colour_enabled();
        for r in reports {
            for line in report::lines(r, mode) {
                println!("{}", paint(&line, colour));
            }
        }
    }
    report::exit_code(reports, mode)
}

/// One command's output: the service lines, then the summary line (or one JSON document).
fn print_run(command: &str, reports: &[ServiceReport], mode: Mode, json: bool, elapsed: Duration) -> u8 {
    if json {
        let mut doc = report::json(reports, mode, elapsed);
        doc["command"] = serde_json::Value::from(command);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return report::exit_code(reports, mode);
    }
    let code = print_reports(reports, mode, false);
    if !reports.is_empty() {
        println!("{}", report::summary(reports, mode, elapsed));
    }
    code
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (no-color.org).
fn colour_enabled() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn paint(line: &str, colour: bool) -> String {
    use owo_colors::OwoColorize;
    if !colour {
        return line.to_string();
    }
    if line.starts_with('✓') {
        line.green().to_string()
    } else if line.starts_with('❌') {
        line.red().to_string()
    } else if line.starts_with('~') || line.starts_with('⚠') {
        line.yellow().to_string()
    } else if line.starts_with('[') {
        line.cyan().to_string()
    } else {
        line.dimmed().to_string()
    }
}

/// A progress bar on stderr while many services run, when stderr is a terminal.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn start(cli: &Cli, mode: Mode) -> Self {
        use std::io::IsTerminal;
        let wanted = !cli.json && !cli.quiet && mode == Mode::Apply && std::io::stderr().is_terminal();
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

async fn run_sim(
    listen: SocketAddr,
    version: &str,
    token: &str,
    chaos: &ChaosArgs,
    keycloak: Option<(&[String], &str)>,
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
