//! The CNI protocol surface: CNI_* environment and stdin in, a result or an
//! error JSON on stdout and an exit code out. Nothing here touches the kernel:
//! the caller hands in the verbs as a table ([`Verbs`], libcni's
//! `skel.PluginMainFuncs` shape), so this module never imports them.

pub mod config;
pub mod error;
pub mod result;
pub mod version;

use std::collections::HashMap;
use std::path::PathBuf;

pub use config::NetConf;
pub use error::{CniError, CniResult, Code, Context, ErrorList};

/// The verbs of a plugin; VERSION is answered here.
pub struct Verbs {
    /// returns the result JSON
    pub add: fn(&Request) -> CniResult<String>,
    pub del: fn(&Request) -> CniResult<()>,
    pub check: fn(&Request) -> CniResult<()>,
    pub gc: fn(&Request) -> CniResult<()>,
    pub status: fn(&Request) -> CniResult<()>,
}

impl Verbs {
    fn call(&self, req: &Request) -> CniResult<String> {
        let empty = |r: CniResult<()>| r.map(|()| String::new());
        match req.verb {
            Verb::Add => (self.add)(req),
            Verb::Del => empty((self.del)(req)),
            Verb::Check => empty((self.check)(req)),
            Verb::Gc => empty((self.gc)(req)),
            Verb::Status => empty((self.status)(req)),
            Verb::Version => Ok(version::version_reply(&req.conf.cni_version)),
        }
    }
}

/// Set in the environment of the IPAM plugin we run: a veth-xdp that finds it
/// was started as some plugin's IPAM, directly or through a wrapper, refuses
/// (one bad `ipam.type` would otherwise fork processes without end).
pub const DELEGATION_MARK: &str = "VETH_XDP_DELEGATED";

/// Largest config we read from stdin; anything bigger is refused (code 6).
const MAX_STDIN: usize = 4 << 20;

/// The CNI verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Add,
    Del,
    Check,
    Version,
    Gc,
    Status,
}

impl Verb {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "VERSION" => Self::Version,
            "GC" => Self::Gc,
            "STATUS" => Self::Status,
            _ => return None,
        })
    }
}

/// The validated CNI_* variables of one invocation.
#[derive(Debug, Clone, Default)]
pub struct CniEnv {
    pub container_id: String,
    /// None when CNI_NETNS is empty or unset (allowed for DEL).
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: String,
    pub path: Vec<PathBuf>,
}

impl CniEnv {
    /// The Kubernetes pod (namespace, name) from CNI_ARGS `K8S_POD_NAMESPACE`
    /// and `K8S_POD_NAME`, when the runtime passed them (kubelet's runtimes do).
    pub fn k8s_pod(&self) -> Option<(String, String)> {
        let args = config::parse_cni_args(&self.args).ok()?;
        let get = |k: &str| args.get(k).filter(|v| !v.is_empty()).cloned();
        Some((get("K8S_POD_NAMESPACE")?, get("K8S_POD_NAME")?))
    }
}

/// One parsed, validated invocation.
#[derive(Debug, Clone)]
pub struct Request {
    pub verb: Verb,
    pub env: CniEnv,
    pub conf: NetConf,
}

/// What to print and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub stdout: String,
    pub exit_code: i32,
}

impl Reply {
    fn ok(stdout: String) -> Self {
        Self {
            stdout,
            exit_code: 0,
        }
    }

    fn error(e: &CniError, cni_version: &str) -> Self {
        Self {
            stdout: e.to_json(cni_version),
            exit_code: 1,
        }
    }
}

/// Container IDs follow libcni (pkg/utils ValidateContainerID): they become
/// part of file names, so path separators and control characters never pass.
pub fn validate_container_id(id: &str) -> CniResult<()> {
    let mut chars = id.chars();
    let ok = id.len() <= 200
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CniError::new(
            Code::InvalidEnv,
            format!("CNI_CONTAINERID {id:?} is invalid: use letters, digits, '_', '.', '-' (at most 200, starting with a letter or digit)"),
        ))
    }
}

/// Interface names follow the kernel's dev_valid_name(): 1–15 bytes, not "." or
/// "..", no '/', ':' or whitespace.
pub fn validate_ifname(name: &str) -> CniResult<()> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if bad {
        Err(CniError::new(
            Code::InvalidEnv,
            format!("CNI_IFNAME {name:?} is not a valid interface name (1-15 bytes, no '/', ':' or whitespace)"),
        ))
    } else {
        Ok(())
    }
}

fn required(vars: &HashMap<String, String>, key: &str) -> CniResult<String> {
    match vars.get(key) {
        Some(v) if !v.is_empty() => Ok(v.clone()),
        _ => Err(CniError::new(
            Code::InvalidEnv,
            format!("{key} is required but not set"),
        )),
    }
}

/// Reads and validates the CNI_* variables the verb needs.
fn parse_env(verb: Verb, vars: &HashMap<String, String>) -> CniResult<CniEnv> {
    let mut env = CniEnv {
        args: vars.get("CNI_ARGS").cloned().unwrap_or_default(),
        path: vars
            .get("CNI_PATH")
            .map(|p| {
                p.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default(),
        ..CniEnv::default()
    };
    if matches!(verb, Verb::Gc | Verb::Status) {
        return Ok(env);
    }
    env.container_id = required(vars, "CNI_CONTAINERID")?;
    validate_container_id(&env.container_id)?;
    env.ifname = required(vars, "CNI_IFNAME")?;
    validate_ifname(&env.ifname)?;
    env.netns = match verb {
        Verb::Del => vars
            .get("CNI_NETNS")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        _ => Some(PathBuf::from(required(vars, "CNI_NETNS")?)),
    };
    if let Some(ns) = &env.netns {
        if !ns.is_absolute() {
            return Err(CniError::new(
                Code::InvalidEnv,
                format!("CNI_NETNS {} must be an absolute path", ns.display()),
            ));
        }
    }
    if verb == Verb::Add && env.path.is_empty() {
        return Err(CniError::new(
            Code::InvalidEnv,
            "CNI_PATH is required but not set (where the IPAM plugin lives)",
        ));
    }
    Ok(env)
}

/// The cniVersion to answer errors in: the config's if it can be read, else the newest.
fn version_of(stdin: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
        .filter(|v| version::is_supported(v))
        .unwrap_or_else(|| version::LATEST.to_string())
}

/// Parses one invocation without running it.
pub fn parse_request(vars: &HashMap<String, String>, stdin: &[u8]) -> CniResult<Request> {
    let command = vars.get("CNI_COMMAND").cloned().unwrap_or_default();
    let verb = Verb::parse(&command).ok_or_else(|| {
        CniError::new(
            Code::InvalidEnv,
            format!("CNI_COMMAND {command:?} is not ADD, DEL, CHECK, VERSION, GC or STATUS"),
        )
    })?;
    if stdin.len() > MAX_STDIN {
        return Err(CniError::new(
            Code::Decode,
            format!("network config is larger than {MAX_STDIN} bytes"),
        ));
    }
    if vars.contains_key(DELEGATION_MARK) {
        return Err(CniError::new(
            Code::InvalidConfig,
            "veth-xdp was started as the IPAM plugin of a veth-xdp network (a delegation loop): fix \"ipam.type\"",
        ));
    }
    let env = parse_env(verb, vars)?;
    let conf = config::parse(stdin, &env.args)?;
    let gated = match verb {
        Verb::Check => (!version::has_check(&conf.cni_version)).then_some("CHECK"),
        Verb::Gc => (!version::has_gc_status(&conf.cni_version)).then_some("GC"),
        Verb::Status => (!version::has_gc_status(&conf.cni_version)).then_some("STATUS"),
        _ => None,
    };
    if let Some(v) = gated {
        return Err(CniError::new(
            Code::IncompatibleVersion,
            format!("config version {} does not allow {v}", conf.cni_version),
        ));
    }
    Ok(Request { verb, env, conf })
}

/// Runs one CNI invocation: the whole protocol, testable in-process.
pub fn run(verbs: &Verbs, vars: &HashMap<String, String>, stdin: &[u8]) -> Reply {
    // VERSION is answered without looking at anything else: podman sends `dummy` values.
    if vars.get("CNI_COMMAND").map(String::as_str) == Some("VERSION") {
        return Reply::ok(version::version_reply(&version_of(stdin)));
    }
    let answer_version = version_of(stdin);
    let req = match parse_request(vars, stdin) {
        Ok(r) => r,
        Err(e) => return Reply::error(&e, &answer_version),
    };
    crate::logging::init(
        &req.conf.log_file,
        req.conf.log_level,
        req.conf.log_dependencies,
    );
    log::info!(
        "{:?} container={} ifname={} netns={:?} network={}",
        req.verb,
        req.env.container_id,
        req.env.ifname,
        req.env.netns,
        req.conf.name
    );
    let started = std::time::Instant::now();
    let outcome = verbs.call(&req);
    record_event(&req, started.elapsed(), outcome.as_ref().err());
    match outcome {
        Ok(stdout) => {
            log::info!(
                "{:?} container={} ifname={}: ok",
                req.verb,
                req.env.container_id,
                req.env.ifname
            );
            Reply::ok(stdout)
        }
        Err(e) => {
            log::error!(
                "{:?} container={} ifname={}: {e}",
                req.verb,
                req.env.container_id,
                req.env.ifname
            );
            Reply::error(&e, &req.conf.cni_version)
        }
    }
}

/// Tells the node agent (if one reads the events file) what this verb did.
fn record_event(req: &Request, took: std::time::Duration, error: Option<&CniError>) {
    let verb = match req.verb {
        Verb::Add => "ADD",
        Verb::Del => "DEL",
        Verb::Check => "CHECK",
        Verb::Gc => "GC",
        Verb::Status => "STATUS",
        Verb::Version => return,
    };
    let pod = req.env.k8s_pod();
    crate::events::append(
        &req.conf.state_dir,
        &crate::events::Event {
            verb: verb.into(),
            network: req.conf.name.clone(),
            container_id: req.env.container_id.clone(),
            ifname: req.env.ifname.clone(),
            namespace: pod.as_ref().map(|p| p.0.clone()),
            pod: pod.map(|p| p.1),
            seconds: took.as_secs_f64(),
            code: error.map(|e| e.code),
            msg: error.map(|e| e.msg.clone()).unwrap_or_default(),
        },
    );
}

/// Entry point when CNI_COMMAND is set: reads the process env and stdin, prints, returns the exit code.
pub fn main(verbs: &Verbs) -> i32 {
    use std::io::{Read, Write};
    let vars: HashMap<String, String> = std::env::vars().collect();
    let mut stdin = Vec::new();
    let read = std::io::stdin()
        .take(MAX_STDIN as u64 + 1)
        .read_to_end(&mut stdin);
    let reply = match read {
        Ok(_) => run(verbs, &vars, &stdin),
        Err(e) => Reply::error(
            &CniError::new(Code::Io, format!("cannot read stdin: {e}")),
            version::LATEST,
        ),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(reply.stdout.as_bytes());
    let _ = out.flush();
    reply.exit_code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const NO_VERBS: Verbs = Verbs {
        add: |_| unreachable!(),
        del: |_| unreachable!(),
        check: |_| unreachable!(),
        gc: |_| unreachable!(),
        status: |_| unreachable!(),
    };

    #[test]
    fn version_ignores_dummy_env() {
        let r = run(
            &NO_VERBS,
            &vars(&[
                ("CNI_COMMAND", "VERSION"),
                ("CNI_NETNS", "dummy"),
                ("CNI_IFNAME", "dummy"),
                ("CNI_PATH", "dummy"),
            ]),
            br#"{"cniVersion":"1.0.0"}"#,
        );
        assert_eq!(r.exit_code, 0);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn env_validation_codes() {
        let conf = br#"{"cniVersion":"1.0.0","name":"n","type":"veth-xdp"}"#;
        let base = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_PATH", "/usr/lib/cni"),
        ];
        for (cid, ifname) in [
            ("a/b", "eth0"),
            ("a\u{1}b", "eth0"),
            ("", "eth0"),
            ("abc", "eth0/1"),
            ("abc", "a b"),
            ("abc", "0123456789abcdef"),
        ] {
            let mut v = vars(&base);
            v.insert("CNI_CONTAINERID".into(), cid.into());
            v.insert("CNI_IFNAME".into(), ifname.into());
            let e = parse_request(&v, conf).unwrap_err();
            assert_eq!(e.code, 4, "{cid:?} {ifname:?}");
        }
        let e = parse_request(&vars(&[("CNI_COMMAND", "BOGUS")]), conf).unwrap_err();
        assert_eq!(e.code, 4);
    }

    #[test]
    fn verbs_gated_by_version() {
        let v = vars(&[("CNI_COMMAND", "GC")]);
        let e = parse_request(&v, br#"{"cniVersion":"1.0.0","name":"n"}"#).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(parse_request(&v, br#"{"cniVersion":"1.1.0","name":"n"}"#).is_ok());
    }
}
