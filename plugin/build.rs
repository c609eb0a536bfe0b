//! Compiles the C datapath in `../bpf` with clang into `$OUT_DIR/veth_xdp.o`,
//! which `src/bpf/mod.rs` embeds. See bpf/README.md for the layout.

use std::path::{Path, PathBuf};
use std::process::Command;

const SETUP_HINT: &str = "run hack/setup-deps.sh (apt-get install clang libbpf-dev)";

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let bpf_dir = manifest.join("../bpf");
    let out = PathBuf::from(env("OUT_DIR")).join("veth_xdp.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());

    println!("cargo:rerun-if-env-changed=CLANG");
    rerun_if_changed(&bpf_dir);
    check_libbpf_headers();

    let multiarch = multiarch();
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-c"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .arg(format!("-I{}", bpf_dir.join("include").display()))
        .arg(format!("-I{}", bpf_dir.join("lib").display()))
        .arg(bpf_dir.join("veth_xdp.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("clang not found ({clang}: {e}): {SETUP_HINT}"));
    assert!(
        status.success(),
        "clang failed to compile bpf/veth_xdp.c ({status})"
    );
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo did not set {name}"))
}

/// One `rerun-if-changed` per directory and per file, so edits and new headers rebuild.
fn rerun_if_changed(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("read bpf dir entry").path();
        if path.is_dir() {
            rerun_if_changed(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn check_libbpf_headers() {
    let helpers = Path::new("/usr/include/bpf/bpf_helpers.h");
    assert!(
        helpers.exists(),
        "{} not found: {SETUP_HINT}",
        helpers.display()
    );
}

/// The Debian multiarch include dir that holds `asm/types.h` (without it,
/// `<linux/bpf.h>` fails with "'asm/types.h' file not found" under -target bpf).
fn multiarch() -> String {
    let from_gcc = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
    from_gcc.unwrap_or_else(|| match env("CARGO_CFG_TARGET_ARCH").as_str() {
        "aarch64" => "aarch64-linux-gnu".to_string(),
        _ => "x86_64-linux-gnu".to_string(),
    })
}
