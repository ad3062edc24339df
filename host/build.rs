//! Builds the stock flow components and embeds them in the host binary.
//!
//! Each `plugins/<type>` crate is compiled for `wasm32-unknown-unknown` (no WASI at all) by a
//! nested `cargo build` with its own target directory, then turned into a component with
//! `wit-component` (the same encoder `wasm-tools component new` uses). The result lands in
//! `$OUT_DIR/<type>.wasm`, and `$OUT_DIR/stock_plugins.rs` lists them for `include_bytes!`.
//! The wasm target is added with rustup when it is missing, so a fresh clone builds with plain
//! `cargo build`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Stock flows, embedded in the binary.
const STOCK: &[&str] = &["oauth", "oidc", "saml", "proxy", "wikijs", "frappe"];
/// Built alongside but never embedded: the hostile component the host's tests load.
const TEST_ONLY: &[&str] = &["test-misbehave"];
const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ has a parent").to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));
    for watched in [
        "plugins",
        "wit",
        "tests",
        "Cargo.lock",
        "Cargo.toml",
        "packages",
        "services.yaml",
        ".env.example",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=SSOCTL_SKIP_TARGET_INSTALL");

    ensure_wasm_target();
    let target_dir = root.join("target").join("plugin-build");
    build_plugins(&root, &target_dir);

    let mut listing = String::from("/// Stock flow components: (sso.type, component bytes).\n");
    listing.push_str("pub const STOCK_COMPONENTS: &[(&str, &[u8])] = &[\n");
    for name in STOCK.iter().chain(TEST_ONLY) {
        let core_path = target_dir
            .join(WASM_TARGET)
            .join("plugin")
            .join(format!("ssoctl_plugin_{}.wasm", name.replace('-', "_")));
        let component = componentize(&core_path);
        let out = out_dir.join(format!("{name}.wasm"));
        std::fs::write(&out, component).expect("write component");
        if STOCK.contains(name) {
            listing.push_str(&format!(
                "    (\"{name}\", include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}.wasm\"))),\n"
            ));
        }
    }
    listing.push_str("];\n");
    std::fs::write(out_dir.join("stock_plugins.rs"), listing).expect("write stock_plugins.rs");
    embed_sample_stack(&root, &out_dir);
}

/// The sample stack (`packages/`, `services.yaml`, `.env.example`) is embedded so that
/// `ssoctl demo` works from any folder with the binary alone.
fn embed_sample_stack(root: &Path, out_dir: &Path) {
    let mut files = vec![root.join("services.yaml"), root.join(".env.example")];
    let mut stack = vec![root.join("packages")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read packages/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = String::from("/// The sample stack: (path relative to the stack root, contents).\n");
    out.push_str("pub const SAMPLE_STACK: &[(&str, &str)] = &[\n");
    for f in files {
        let rel = f
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        out.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    out.push_str("];\n");
    std::fs::write(out_dir.join("sample_stack.rs"), out).expect("write sample_stack.rs");
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("cargo sets {key} for build scripts"))
}

/// `rustc --print sysroot` tells where the toolchain keeps its targets; add the wasm one if absent.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("run rustc --print sysroot");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        return;
    }
    let hint = format!("run `rustup target add {WASM_TARGET}` and build again");
    if std::env::var_os("SSOCTL_SKIP_TARGET_INSTALL").is_some() {
        panic!("the {WASM_TARGET} target is not installed: {hint}");
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", WASM_TARGET]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    match cmd.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("`rustup target add {WASM_TARGET}` failed ({status}): {hint}"),
        Err(e) => panic!("could not run rustup ({e}): {hint}"),
    }
}

/// A nested cargo with its own target dir (the outer build holds a lock on `target/`) and an
/// environment cleaned of the outer build's settings (flags, clippy wrapper, target selection).
fn build_plugins(root: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--profile", "plugin", "--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(target_dir);
    for name in STOCK.iter().chain(TEST_ONLY) {
        cmd.args(["-p", &format!("ssoctl-plugin-{name}")]);
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep = matches!(key.as_str(), "CARGO_HOME" | "CARGO_MAKEFLAGS")
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_HTTP_")
            || key.starts_with("CARGO_REGISTRIES_");
        let outer_build_setting = key.starts_with("CARGO_")
            || key.starts_with("RUSTC_WORKSPACE_WRAPPER")
            || key == "RUSTFLAGS"
            || key == "CLIPPY_ARGS"
            || key == "__CARGO_FIX_PLZ";
        if outer_build_setting && !keep {
            cmd.env_remove(&key);
        }
    }
    // Cargo reads a build script's stdout for directives: keep the nested build's output on stderr.
    cmd.stdout(std::io::stderr());
    let status = cmd.status().expect("run cargo for the plugin build");
    assert!(
        status.success(),
        "building the stock flow components for {WASM_TARGET} failed ({status}); see the output above"
    );
}

fn componentize(core_path: &Path) -> Vec<u8> {
    let core = std::fs::read(core_path).unwrap_or_else(|e| panic!("read {}: {e}", core_path.display()));
    wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("componentize {}: {e:?}", core_path.display()))
}
