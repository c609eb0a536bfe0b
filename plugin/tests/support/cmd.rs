//! Running commands: the one helper set every test uses. `run` takes a program
//! and its arguments, `sh`/`must` a bash command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn spawn(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd}: {e}"))
}

/// Runs a program that must succeed; returns its stdout (stderr in the panic).
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = spawn(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {} failed: {}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a program; returns its stdout if it succeeded.
pub fn try_run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = spawn(cmd, args);
    out.status.success().then(|| text(&out.stdout))
}

/// Runs a program; returns whether it succeeded.
pub fn succeeds(cmd: &str, args: &[&str]) -> bool {
    try_run(cmd, args).is_some()
}

/// Runs a bash command line; returns (success, stdout + stderr).
pub fn sh(line: &str) -> (bool, String) {
    let out = spawn("bash", &["-c", line]);
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

/// Runs a bash command line that must succeed; returns stdout + stderr.
pub fn must(line: &str) -> String {
    let (ok, out) = sh(line);
    assert!(ok, "command failed: {line}\n{out}");
    out
}

/// `s` as one bash word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A directory of its own for one test (unique per test process and call),
/// removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(super::unique_name(tag));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !super::keep_state(&self.0.display()) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Compiles a one-function XDP program returning XDP_PASS (function `name`,
/// section "xdp") into `dir`; returns the object's path.
pub fn xdp_pass_object(dir: &Path, name: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(
        &src,
        format!(
            "#define SEC(n) __attribute__((section(n), used))\n\
             SEC(\"xdp\") int {name}(void *ctx) {{ return 2; /* XDP_PASS */ }}\n\
             char LICENSE[] SEC(\"license\") = \"GPL\";\n"
        ),
    )
    .unwrap();
    let obj = dir.join(format!("{name}.o"));
    run(
        "clang",
        &[
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-c",
            src.to_str().unwrap(),
            "-o",
            obj.to_str().unwrap(),
        ],
    );
    obj
}
