//! Delegation to the IPAM plugin named by `ipam.type`, found on CNI_PATH and
//! run through the CNI protocol (env + the network config on stdin), the way
//! libcni's invoke package does it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::cni::error::{CniError, CniResult, Code};
use crate::cni::result::CniOutput;
use crate::cni::Request;

/// Finds the IPAM plugin binary on CNI_PATH.
pub fn find_plugin(plugin_type: &str, path: &[PathBuf]) -> CniResult<PathBuf> {
    path.iter()
        .map(|dir| dir.join(plugin_type))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let dirs: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
            CniError::new(
                Code::Ipam,
                format!("IPAM plugin {plugin_type:?} not found in CNI_PATH [{}]: install it or fix \"ipam.type\"", dirs.join(", ")),
            )
        })
}

/// Before ADD changes anything: the built-in IPAM's config parses, or the
/// delegated plugin is on CNI_PATH.
pub fn preflight(req: &Request) -> CniResult<()> {
    if crate::ipam_lease::is_builtin(req) {
        return crate::ipam_lease::pool(req).map(|_| ());
    }
    plugin_path(req).map(|_| ())
}

/// The configured IPAM plugin's binary (errors: no `ipam`, not on CNI_PATH,
/// or this plugin itself).
pub fn plugin_path(req: &Request) -> CniResult<PathBuf> {
    let ty = ipam_type(req)?;
    let itself = || {
        CniError::new(
            Code::InvalidConfig,
            format!("network config: \"ipam.type\" {ty:?} is this plugin itself: delegating to it would run it again and again; use host-local or another IPAM plugin"),
        )
    };
    if ty == req.conf.plugin_type {
        return Err(itself());
    }
    let path = find_plugin(ty, &req.env.path)?;
    if is_this_binary(&path) {
        return Err(itself());
    }
    Ok(path)
}

fn is_this_binary(path: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let me = std::env::current_exe().ok();
    canonical(path).is_some() && canonical(path) == me.as_deref().and_then(canonical)
}

fn ipam_type(req: &Request) -> CniResult<&str> {
    req.conf.ipam_type().ok_or_else(|| {
        CniError::new(
            Code::InvalidConfig,
            "network config: \"ipam\" is required (with a \"type\")",
        )
    })
}

/// Runs the IPAM plugin with `verb`. Returns its stdout parsed as JSON (None when empty).
fn exec(
    req: &Request,
    verb: &str,
    netns: Option<&Path>,
    stdin: &Value,
) -> CniResult<Option<Value>> {
    let ty = ipam_type(req)?;
    let plugin = plugin_path(req)?;
    let mut cmd = Command::new(&plugin);
    cmd.env("CNI_COMMAND", verb)
        .env(crate::cni::DELEGATION_MARK, "1")
        .env(
            "CNI_PATH",
            std::env::join_paths(&req.env.path).unwrap_or_default(),
        )
        .env("CNI_ARGS", &req.env.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if matches!(verb, "GC" | "STATUS") {
        cmd.env_remove("CNI_CONTAINERID")
            .env_remove("CNI_IFNAME")
            .env_remove("CNI_NETNS");
    } else {
        cmd.env("CNI_CONTAINERID", &req.env.container_id)
            .env("CNI_IFNAME", &req.env.ifname)
            .env(
                "CNI_NETNS",
                netns.map(|p| p.display().to_string()).unwrap_or_default(),
            );
    }
    let mut child = cmd.spawn().map_err(|e| {
        CniError::new(
            Code::Ipam,
            format!("cannot run IPAM plugin {}: {e}", plugin.display()),
        )
    })?;
    let input = serde_json::to_vec(stdin).expect("config serialises");
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(&input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CniError::new(Code::Ipam, format!("IPAM plugin {ty} {verb}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(delegated_error(
            ty,
            verb,
            &stdout,
            &String::from_utf8_lossy(&out.stderr),
        ));
    }
    if stdout.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&stdout).map(Some).map_err(|e| {
        CniError::new(
            Code::Ipam,
            format!("IPAM plugin {ty} {verb} printed invalid JSON: {e}"),
        )
    })
}

/// Turns a failing IPAM plugin's error JSON into ours, keeping its code.
fn delegated_error(ty: &str, verb: &str, stdout: &str, stderr: &str) -> CniError {
    match serde_json::from_str::<Value>(stdout) {
        Ok(v) if v.get("code").and_then(Value::as_u64).is_some() => CniError::delegated(
            v["code"].as_u64().unwrap_or(u64::from(Code::Ipam.value())) as u32,
            format!(
                "IPAM plugin {ty} {verb} failed: {}",
                v.get("msg").and_then(Value::as_str).unwrap_or("")
            ),
            v.get("details")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        _ => CniError::new(
            Code::Ipam,
            format!(
                "IPAM plugin {ty} {verb} failed: {}",
                if stderr.trim().is_empty() {
                    stdout.trim()
                } else {
                    stderr.trim()
                }
            ),
        ),
    }
}

/// The config the IPAM plugin sees: ours, except that a 1.1.0 config is sent
/// as 1.0.0 to an IPAM plugin that does not speak 1.1.0 (Debian 12's host-local
/// stops at 1.0.0; the ADD/DEL/CHECK formats are the same).
fn ipam_stdin(req: &Request) -> Value {
    let mut raw = req.conf.raw.clone();
    if req.conf.cni_version == "1.1.0" && !supports_gc_status(req) {
        raw.insert("cniVersion".into(), Value::from("1.0.0"));
    }
    Value::Object(raw)
}

/// ADD: allocate addresses.
pub fn add(req: &Request) -> CniResult<CniOutput> {
    let v = exec(req, "ADD", req.env.netns.as_deref(), &ipam_stdin(req))?
        .ok_or_else(|| CniError::new(Code::Ipam, "IPAM plugin ADD printed no result"))?;
    let out =
        CniOutput::parse(&v).map_err(|e| CniError::new(Code::Ipam, format!("IPAM result: {e}")))?;
    if out.ips.is_empty() {
        return Err(CniError::new(
            Code::Ipam,
            "IPAM plugin returned no IP addresses",
        ));
    }
    Ok(out)
}

/// DEL: release the lease (a lease that is already gone is fine for host-local & co).
/// The built-in IPAM's lease is the record, which DEL removes.
pub fn del(req: &Request) -> CniResult<()> {
    if crate::ipam_lease::is_builtin(req) {
        return Ok(());
    }
    exec(req, "DEL", req.env.netns.as_deref(), &ipam_stdin(req)).map(|_| ())
}

/// CHECK: let the IPAM plugin confirm its lease (the built-in one's is the
/// record CHECK reads).
pub fn check(req: &Request) -> CniResult<()> {
    if crate::ipam_lease::is_builtin(req) {
        return Ok(());
    }
    exec(req, "CHECK", req.env.netns.as_deref(), &ipam_stdin(req)).map(|_| ())
}

/// Whether the IPAM plugin speaks 1.1.0 (GC/STATUS); asked once per process.
pub fn supports_gc_status(req: &Request) -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| ask_supports_1_1(req))
}

fn ask_supports_1_1(req: &Request) -> bool {
    let probe = serde_json::json!({ "cniVersion": "1.1.0" });
    match exec(req, "VERSION", None, &probe) {
        Ok(Some(v)) => v
            .get("supportedVersions")
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|x| x == "1.1.0")),
        _ => false,
    }
}

/// GC: hand the valid attachments to the IPAM plugin, if it has GC.
pub fn gc(req: &Request) -> CniResult<()> {
    if crate::ipam_lease::is_builtin(req) {
        return Ok(()); // its leases went with the records GC removed
    }
    if !supports_gc_status(req) {
        log::info!("IPAM plugin does not speak 1.1.0: leases of removed attachments were released one by one");
        return Ok(());
    }
    exec(req, "GC", None, &Value::Object(req.conf.raw.clone())).map(|_| ())
}

/// STATUS: the IPAM plugin exists, and says it is ready if it has STATUS.
pub fn status(req: &Request) -> CniResult<()> {
    if crate::ipam_lease::is_builtin(req) {
        return crate::ipam_lease::status(req);
    }
    plugin_path(req).map_err(|e| CniError::new(Code::NotAvailable, e.msg))?;
    if supports_gc_status(req) {
        exec(req, "STATUS", None, &Value::Object(req.conf.raw.clone())).map(|_| ())?;
    }
    Ok(())
}
