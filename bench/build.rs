//! Compiles the benchmark's BPF programs (bench/bpf/*.c) with clang into OUT_DIR.
use std::{env, path::PathBuf, process::Command};

const PROGRAMS: &[&str] = &["gen", "count", "limit"];

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed=bpf");
    for name in PROGRAMS {
        let src = format!("bpf/{name}.c");
        let obj = out.join(format!("{name}.o"));
        let status = Command::new(&clang)
            .args(["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86"])
            .args(["-I", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", &src, "-o"])
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| panic!("running {clang} for {src}: {e}; run hack/setup-deps.sh (apt-get install clang libbpf-dev)"));
        assert!(
            status.success(),
            "{clang} failed on {src}; run hack/setup-deps.sh (apt-get install clang libbpf-dev)"
        );
    }
}
