//! `veth-xdp install` against a temporary host root, run inside a throwaway
//! node namespace (uplink0 10.77.0.2/24, default route via 10.77.0.1):
//! `--once` — the files it places, idempotency, template errors, the L2 check
//! of the pod CIDR, a real ADD/DEL through the conflist it wrote, run by the
//! binary it installed; the agent (staying on) — health, repairs of what an
//! operator removes by hand, metrics equal to `veth-xdp stats` during
//! traffic, SIGTERM with --cleanup-on-exit. Run as root: `cargo test --test install`.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cni::{plugin_bin, Node, CNI_PATH, GATEWAY, UPLINK};

/// Inside the node's subnet 10.77.0.0/24, away from the node and gateway.
const POD_CIDR: &str = "10.77.0.128/25";
const CONF_NAME: &str = "05-veth-xdp.conflist";

/// A node namespace with a host root under its directory; the datapath the
/// installer pinned is torn down on drop (`veth-xdp teardown --bpf-root`),
/// then the node's namespaces and directories go.
struct Host {
    node: Node,
}

impl Host {
    fn new(tag: &str) -> Self {
        let host = Self {
            node: Node::new(tag),
        };
        host.set_template(&host.template(""));
        // The IPAM plugin the template names is on the node, as on a real one.
        host.provide_plugin("host-local");
        host
    }

    /// `name` in the host's CNI bin dir as a Debian host may have it: a
    /// link to the reference host-local (a host path the agent's container
    /// could not follow, so a link counts as there).
    fn provide_plugin(&self, name: &str) {
        let bin = self.root().join("opt/cni/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink("/usr/lib/cni/host-local", bin.join(name)).unwrap();
    }

    fn root(&self) -> PathBuf {
        self.node.dir.join("host")
    }

    fn binary(&self) -> PathBuf {
        self.root().join("opt/cni/bin/veth-xdp")
    }

    fn conflist(&self) -> PathBuf {
        self.root().join("etc/cni/net.d").join(CONF_NAME)
    }

    fn template_path(&self) -> PathBuf {
        self.node.dir.join("template.json")
    }

    /// The test's template: the placeholders, and the node's own state dir,
    /// log file, pin root and IPAM data dir as literal values; `extra` is
    /// inserted as more keys of the plugin entry.
    fn template(&self, extra: &str) -> String {
        let n = &self.node;
        format!(
            r#"{{
  "cniVersion": "1.0.0",
  "name": "testnet",
  "plugins": [{{
    "type": "veth-xdp",
    "uplink": "{{{{uplink}}}}",
    "mtu": {{{{mtu}}}},
    "queues": {{{{queues}}}},
    "serviceCIDRs": {{{{serviceCIDRs}}}},
    "stateDir": "{state}",
    "logFile": "{log}",
    "logLevel": "debug",
    "bpfRoot": "{bpf}",{extra}
    "ipam": {{
      "type": "host-local",
      "ranges": [[{{ "subnet": "{{{{subnet}}}}", "rangeStart": "{{{{podRangeStart}}}}",
                    "rangeEnd": "{{{{podRangeEnd}}}}", "gateway": "{{{{gateway}}}}" }}]],
      "routes": [{{ "dst": "0.0.0.0/0" }}],
      "dataDir": "{ipam}"
    }}
  }}]
}}
"#,
            state = n.state_dir().display(),
            log = n.dir.join("plugin.log").display(),
            bpf = n.bpf_root.display(),
            ipam = n.ipam_dir().display(),
        )
    }

    fn set_template(&self, text: &str) {
        std::fs::write(self.template_path(), text).unwrap();
    }

    /// `veth-xdp install --once ...` in the node namespace, with `args`
    /// after the common ones; (exit code, stdout + stderr).
    fn install(&self, args: &[&str]) -> (i32, String) {
        let root = self.root();
        let template = self.template_path();
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.node.ns.path().display()))
            .arg(plugin_bin())
            .args(["install", "--once", "--uplink", UPLINK, "--queues", "2"])
            .arg("--host-root")
            .arg(&root)
            .arg("--template")
            .arg(&template)
            .args(args)
            .output()
            .expect("run veth-xdp install");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }

    fn install_ok(&self) -> String {
        let (code, out) = self.install(&["--pod-cidr", POD_CIDR]);
        assert_eq!(code, 0, "install failed: {out}");
        out
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if support::keep_state(&self.node.bpf_root.display()) {
            return;
        }
        let (ok, out) = self.node.in_node(&format!(
            "{} teardown --bpf-root {}",
            plugin_bin(),
            self.node.bpf_root.display()
        ));
        if !ok {
            eprintln!("veth-xdp teardown: {out}");
        }
    }
}

/// What a rewrite would change: (inode, mtime in ns, mode).
fn stamp(path: &Path) -> (u64, i128, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (
        m.ino(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        m.mode() & 0o7777,
    )
}

#[test]
fn help_works_for_every_command() {
    for args in [
        &["--help"][..],
        &["install", "--help"],
        &["setup", "--help"],
        &["stats", "--help"],
        &["teardown", "--help"],
        &["version", "--help"],
    ] {
        let out = Command::new(plugin_bin()).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(text.contains("Usage: veth-xdp"), "{args:?}: {text}");
    }
}

#[test]
fn installs_binary_datapath_and_conflist_and_a_second_run_changes_nothing() {
    let host = Host::new("ins");
    let out = host.install_ok();
    assert!(out.contains("binary") && out.contains("written"), "{out}");

    let bin = host.binary();
    assert_eq!(stamp(&bin).2, 0o755, "binary mode");
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        std::fs::read(plugin_bin()).unwrap(),
        "the installed binary is the running one"
    );
    let conf = host.conflist();
    assert_eq!(stamp(&conf).2, 0o644, "conflist mode");
    let v: Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    let plugin = &v["plugins"][0];
    assert_eq!(plugin["uplink"], UPLINK);
    assert_eq!(plugin["queues"], 2);
    assert_eq!(plugin["mtu"], Value::Null);
    assert_eq!(plugin["serviceCIDRs"], serde_json::json!([]));
    let range = &plugin["ipam"]["ranges"][0][0];
    assert_eq!(range["subnet"], "10.77.0.0/24");
    assert_eq!(range["rangeStart"], "10.77.0.128");
    assert_eq!(range["rangeEnd"], "10.77.0.254");
    assert_eq!(range["gateway"], GATEWAY);
    // The datapath is set up: the uplink program is attached.
    let link = host.node.ns.link_json(UPLINK);
    assert!(link.get("xdp").is_some(), "uplink XDP attached: {link}");

    let before = (stamp(&bin), stamp(&conf));
    let out = host.install_ok();
    assert!(
        !out.contains("written"),
        "second run wrote something: {out}"
    );
    assert_eq!((stamp(&bin), stamp(&conf)), before, "files rewritten");
}

#[test]
fn changed_template_is_rerendered_and_a_broken_one_keeps_the_previous_conflist() {
    let host = Host::new("int");
    host.install_ok();
    let conf = host.conflist();
    let first = std::fs::read_to_string(&conf).unwrap();

    host.set_template(&host.template("\n    \"egress\": \"tc\","));
    host.install_ok();
    let second = std::fs::read_to_string(&conf).unwrap();
    assert_ne!(first, second, "changed template re-rendered");
    let v: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(v["plugins"][0]["egress"], "tc");

    let template = host.template_path().display().to_string();
    for (broken, why) in [
        (
            host.template("\n    \"x\": \"{{nope}}\","),
            "unknown placeholder {{nope}}",
        ),
        (host.template("\n    \"x\": \"{{uplink\","), "without"),
        (
            host.template("\n    \"x\": ,"),
            "not valid JSON after rendering",
        ),
        (host.template("\n    \"mtu\": \"big\","), "\"mtu\""),
    ] {
        host.set_template(&broken);
        let before = stamp(&conf);
        let (code, out) = host.install(&["--pod-cidr", POD_CIDR]);
        assert_ne!(code, 0, "broken template accepted: {out}");
        assert!(
            out.contains(&format!("template {template}")) && out.contains(why),
            "error names the template and what is wrong ({why}): {out}"
        );
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), second, "kept");
        assert_eq!(stamp(&conf), before, "previous conflist untouched");
    }
}

#[test]
fn pod_cidr_outside_the_uplink_subnet_is_refused() {
    let host = Host::new("inr");
    let (code, out) = host.install(&["--pod-cidr", "10.78.0.0/24"]);
    assert_ne!(code, 0, "accepted: {out}");
    assert!(
        out.contains("10.78.0.0/24") && out.contains("outside the uplink uplink0's subnet"),
        "{out}"
    );
    let (code, out) = host.install(&["--pod-cidr", "10.77.0.0/25"]);
    assert_ne!(
        code, 0,
        "a range holding the node's address accepted: {out}"
    );
    assert!(out.contains("node's own address"), "{out}");
    assert!(!host.conflist().exists(), "no conflist written");
    assert!(!host.binary().exists(), "nothing installed");
}

#[test]
fn a_conflist_naming_a_plugin_not_on_the_node_is_not_written() {
    let host = Host::new("inp");
    host.set_template(
        &host
            .template("")
            .replace(r#""type": "host-local""#, r#""type": "vx-missing-ipam""#),
    );
    let (code, out) = host.install(&["--pod-cidr", POD_CIDR]);
    assert_ne!(code, 0, "accepted: {out}");
    assert!(
        out.contains(r#"the conflist names the CNI plugin "vx-missing-ipam""#)
            && out.contains("opt/cni/bin"),
        "{out}"
    );
    assert!(
        !host.conflist().exists(),
        "no conflist naming a missing plugin"
    );
    host.provide_plugin("vx-missing-ipam");
    host.install_ok();
    assert!(host.conflist().exists(), "written once the plugin is there");
}

#[test]
fn the_written_conflist_adds_and_deletes_a_pod_with_the_installed_binary() {
    let host = Host::new("ina");
    host.install_ok();
    let list: Value = serde_json::from_slice(&std::fs::read(host.conflist()).unwrap()).unwrap();
    // As the runtime hands a list's entry to the plugin.
    let mut conf = list["plugins"][0].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    conf["name"] = list["name"].clone();
    let stdin = conf.to_string();

    let node = &host.node;
    let pod = node.pod(0);
    let netns = pod.path().display().to_string();
    let env = |verb| {
        [
            ("CNI_COMMAND", verb),
            ("CNI_CONTAINERID", "install-pod"),
            ("CNI_NETNS", netns.as_str()),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", CNI_PATH),
        ]
    };
    let add = node.invoke_bin(&host.binary(), &env("ADD"), stdin.as_bytes());
    let res = add.ok().clone();
    let addr: ipnetwork::Ipv4Network = res["ips"][0]["address"].as_str().unwrap().parse().unwrap();
    assert_eq!(addr.prefix(), 24, "the uplink subnet's prefix: {res}");
    let pods: ipnetwork::Ipv4Network = POD_CIDR.parse().unwrap();
    assert!(pods.contains(addr.ip()), "address from the pod CIDR: {res}");
    assert_eq!(res["ips"][0]["gateway"], GATEWAY, "{res}");
    assert!(
        pod.try_exec(&["ping", "-c", "1", "-W", "2", GATEWAY]),
        "pod reaches the gateway on the wire"
    );

    let del = node.invoke_bin(&host.binary(), &env("DEL"), stdin.as_bytes());
    assert_eq!(del.exit, 0, "DEL failed: {}", del.stdout);
    node.assert_clean();
}

// ---- the node agent ----

/// Where the agent serves, inside the node namespace (its own loopback).
const AGENT_ADDR: &str = "127.0.0.1:9765";
/// Short, so repairs show quickly; the waits below allow many intervals.
const INTERVAL: &str = "0.5";

/// A running `veth-xdp install` (no --once) in the node namespace; killed on
/// drop if still running. Its stderr (the agent's log) goes to a file.
struct Agent {
    child: Option<std::process::Child>,
    log: PathBuf,
}

impl Agent {
    fn start(host: &Host, extra: &[&str]) -> Self {
        let log = host.node.dir.join("agent.log");
        let child = Command::new("nsenter")
            .arg(format!("--net={}", host.node.ns.path().display()))
            .arg(plugin_bin())
            .args(["install", "--uplink", UPLINK, "--queues", "2"])
            .args(if extra.contains(&"--node-name") {
                &[][..]
            } else {
                &["--pod-cidr", POD_CIDR][..]
            })
            .args(if extra.contains(&"--interval") {
                &[][..]
            } else {
                &["--interval", INTERVAL][..]
            })
            .args(["--listen", AGENT_ADDR])
            .arg("--host-root")
            .arg(host.root())
            .arg("--template")
            .arg(host.template_path())
            .args(extra)
            .stdout(std::process::Stdio::null())
            // the agent logs to stderr
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the agent");
        Self {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the exit code.
    fn terminate(&mut self) -> i32 {
        let child = self.child.as_mut().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        self.child = None;
        status.code().unwrap_or(-1)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// GET `path` from the agent inside the node namespace: (HTTP status, body).
fn get(host: &Host, path: &str) -> (u32, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", host.node.ns.path().display()))
        .args(["curl", "-s", "-m", "5", "-w", "\\n%{http_code}"])
        .arg(format!("http://{AGENT_ADDR}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Polls `cond` every 100 ms for up to `secs` seconds; how long it took.
fn wait_for(secs: u64, what: &str, agent: &Agent, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s; agent log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// The conflist's veth-xdp entry as the runtime hands it to the plugin.
fn runtime_conf(host: &Host) -> String {
    let list: Value = serde_json::from_slice(&std::fs::read(host.conflist()).unwrap()).unwrap();
    let mut conf = list["plugins"][0].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    conf["name"] = list["name"].clone();
    conf.to_string()
}

/// ADD or DEL of a Kubernetes pod `default/<name>` through the installed binary.
fn pod_verb(
    host: &Host,
    verb: &str,
    name: &str,
    pod: &support::ns::Netns,
) -> support::cni::Outcome {
    let netns = pod.path().display().to_string();
    let args = format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}");
    host.node.invoke_bin(
        &host.binary(),
        &[
            ("CNI_COMMAND", verb),
            ("CNI_CONTAINERID", name),
            ("CNI_NETNS", netns.as_str()),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", CNI_PATH),
            ("CNI_ARGS", args.as_str()),
        ],
        runtime_conf(host).as_bytes(),
    )
}

fn uplink_has_xdp(host: &Host) -> bool {
    host.node.ns.link_json(UPLINK).get("xdp").is_some()
}

/// The value of the metric line starting with `series` (name and labels).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn start_ready(host: &Host, extra: &[&str]) -> Agent {
    let agent = Agent::start(host, extra);
    wait_for(60, "agent ready", &agent, || get(host, "/readyz").0 == 200);
    agent
}

/// A ready agent and one Kubernetes pod `default/web-0` added through the
/// conflist it wrote; (agent, pod netns, the pod's host veth).
fn agent_with_a_pod(host: &Host, extra: &[&str]) -> (Agent, support::ns::Netns, String) {
    let agent = start_ready(host, extra);
    let pod = host.node.pod(0);
    pod_verb(host, "ADD", "web-0", &pod).ok();
    let rec: Value = serde_json::from_slice(
        &std::fs::read(
            host.node
                .state_dir()
                .join("networks/testnet/web-0_eth0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let veth = rec["hostIfname"].as_str().unwrap().to_string();
    (agent, pod, veth)
}

fn links_dir(host: &Host) -> PathBuf {
    host.node.bpf_root.join("v2/links")
}

/// The agent logged `line` and counts one repair of `what` (waited for: the
/// repaired file appears before the pass that wrote it logs and counts).
fn assert_repair_reported(host: &Host, agent: &Agent, line: &str, what: &str) {
    let series = format!(r#"vethxdp_agent_repairs_total{{what="{what}"}}"#);
    wait_for(
        10,
        &format!("{line:?} logged and {series} = 1"),
        agent,
        || agent.log().contains(line) && metric(&get(host, "/metrics").1, &series) == Some(1.0),
    );
}

fn pod_reaches_gateway(pod: &support::ns::Netns) -> bool {
    pod.try_exec(&["ping", "-c", "1", "-W", "2", GATEWAY])
}

#[test]
fn agent_repairs_a_deleted_conflist() {
    let host = Host::new("agc");
    let agent = start_ready(&host, &[]);
    let before = std::fs::read(host.conflist()).unwrap();
    std::fs::remove_file(host.conflist()).unwrap();
    let took = wait_for(10, "conflist rewritten", &agent, || {
        host.conflist().exists()
    });
    eprintln!("conflist back after {took:?} (interval {INTERVAL} s)");
    assert_eq!(std::fs::read(host.conflist()).unwrap(), before);
    assert_repair_reported(&host, &agent, "repaired: conflist", "conflist");
}

#[test]
fn agent_repairs_a_deleted_binary() {
    let host = Host::new("agb");
    let agent = start_ready(&host, &[]);
    std::fs::remove_file(host.binary()).unwrap();
    let took = wait_for(10, "binary reinstalled", &agent, || host.binary().exists());
    eprintln!("binary back after {took:?} (interval {INTERVAL} s)");
    assert_eq!(
        std::fs::read(host.binary()).unwrap(),
        std::fs::read(plugin_bin()).unwrap()
    );
    assert_eq!(stamp(&host.binary()).2, 0o755);
    assert_repair_reported(&host, &agent, "repaired: binary", "binary");
}

#[test]
fn agent_reattaches_a_removed_uplink_program() {
    let host = Host::new("agu");
    let (agent, pod, _) = agent_with_a_pod(&host, &[]);
    // The pinned link is the program's only holder: removing it detaches.
    let pin = links_dir(&host).join("uplink");
    std::fs::remove_file(&pin).unwrap();
    let took = wait_for(10, "uplink program re-attached", &agent, || {
        pin.exists() && uplink_has_xdp(&host)
    });
    eprintln!("uplink program back after {took:?} (interval {INTERVAL} s)");
    assert!(pod_reaches_gateway(&pod), "the fast path works again");
    assert_repair_reported(
        &host,
        &agent,
        "repaired: the uplink program was not attached to uplink0",
        "uplink_program",
    );
}

#[test]
fn agent_reattaches_a_removed_pod_program() {
    let host = Host::new("agp");
    let (agent, pod, veth) = agent_with_a_pod(&host, &[]);
    let pin = links_dir(&host).join(format!("{veth}_xdp"));
    std::fs::remove_file(&pin).unwrap();
    let took = wait_for(10, "pod program re-attached", &agent, || {
        pin.exists() && host.node.ns.link_json(&veth).get("xdp").is_some()
    });
    eprintln!("pod program back after {took:?} (interval {INTERVAL} s)");
    assert!(pod_reaches_gateway(&pod));
    assert_repair_reported(
        &host,
        &agent,
        &format!("repaired: pod default/web-0 host veth {veth}: re-attached xdp"),
        "pod_program",
    );
}

#[test]
fn agent_reinserts_a_removed_pod_map_entry() {
    let host = Host::new("age");
    let (agent, pod, veth) = agent_with_a_pod(&host, &[]);
    let ifindex = host.node.ns.ifindex(&veth);
    let map = host.node.bpf_root.join("v2/maps/vx_pod_if");
    let key: Vec<String> = ifindex
        .to_le_bytes()
        .iter()
        .map(|b| b.to_string())
        .collect();
    let (ok, out) = host.node.in_node(&format!(
        "bpftool map delete pinned {} key {}",
        map.display(),
        key.join(" ")
    ));
    assert!(ok, "{out}");
    wait_for(10, "pod map entry re-inserted", &agent, || {
        host.node
            .in_node(&format!(
                "bpftool map lookup pinned {} key {}",
                map.display(),
                key.join(" ")
            ))
            .0
    });
    assert!(pod_reaches_gateway(&pod));
    assert_repair_reported(
        &host,
        &agent,
        "repaired: pod default/web-0 (",
        "pod_map_entry",
    );
}

#[test]
fn agent_counts_plugin_operations_and_serves_pod_metrics() {
    let host = Host::new("ago");
    let (agent, pod, veth) = agent_with_a_pod(&host, &[]);
    let text = get(&host, "/metrics").1;
    for (series, want) in [
        (
            r#"vethxdp_cni_operations_total{verb="ADD",result="success"}"#,
            1.0,
        ),
        (
            r#"vethxdp_cni_operation_duration_seconds_count{verb="ADD"}"#,
            1.0,
        ),
        (r#"vethxdp_attachments{egress_mode="xdp"}"#, 1.0),
        ("vethxdp_datapath_configured", 1.0),
    ] {
        wait_for(10, series, &agent, || {
            metric(&get(&host, "/metrics").1, series) == Some(want)
        });
    }
    assert!(
        get(&host, "/metrics").1.contains(&format!(
            r#"vethxdp_pod_info{{namespace="default",pod="web-0",interface="eth0",host_interface="{veth}",container_id="web-0",network="testnet",egress_mode="xdp",in_datapath="true"}} 1"#
        )),
        "{text}"
    );
    // A failed ADD is counted with its code and logged by the agent.
    let bad = pod_verb(&host, "ADD", "web-0", &pod);
    assert_ne!(bad.exit, 0, "duplicate ADD accepted");
    wait_for(10, "error counted", &agent, || {
        metric(
            &get(&host, "/metrics").1,
            r#"vethxdp_cni_errors_total{verb="ADD",code="103"}"#,
        ) == Some(1.0)
    });
    assert!(
        agent
            .log()
            .contains("plugin ADD failed for pod default/web-0"),
        "{}",
        agent.log()
    );
    assert_eq!(pod_verb(&host, "DEL", "web-0", &pod).exit, 0);
    wait_for(10, "DEL counted", &agent, || {
        metric(
            &get(&host, "/metrics").1,
            r#"vethxdp_cni_operations_total{verb="DEL",result="success"}"#,
        ) == Some(1.0)
    });
}

#[test]
fn agent_removes_the_conflist_on_sigterm_with_cleanup_on_exit() {
    let host = Host::new("ags");
    let mut agent = start_ready(&host, &["--cleanup-on-exit"]);
    assert_eq!(get(&host, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(agent.terminate(), 0, "clean stop on SIGTERM");
    assert!(
        !host.conflist().exists(),
        "--cleanup-on-exit removed the conflist"
    );
    assert!(
        host.binary().exists(),
        "the binary stays (running pods' DEL needs it)"
    );
    assert!(agent.log().contains("removed") && agent.log().contains("--cleanup-on-exit"));
}

#[test]
fn agent_without_cleanup_keeps_the_conflist_and_a_broken_template_keeps_the_previous_one() {
    let host = Host::new("agk");
    let mut agent = start_ready(&host, &[]);
    let before = std::fs::read_to_string(host.conflist()).unwrap();
    host.set_template(&host.template("\n    \"x\": \"{{nope}}\","));
    wait_for(10, "not ready on a broken template", &agent, || {
        let (code, body) = get(&host, "/readyz");
        code == 503
            && body.contains("unknown placeholder {{nope}}")
            && body.contains("keeping the previous conflist")
    });
    assert_eq!(std::fs::read_to_string(host.conflist()).unwrap(), before);
    assert_eq!(get(&host, "/healthz").0, 200, "alive while not ready");
    host.set_template(&host.template("\n    \"egress\": \"tc\","));
    wait_for(10, "changed template re-rendered", &agent, || {
        std::fs::read_to_string(host.conflist())
            .unwrap()
            .contains("\"egress\": \"tc\"")
            && get(&host, "/readyz").0 == 200
    });
    assert_eq!(agent.terminate(), 0);
    assert!(host.conflist().exists(), "kept without --cleanup-on-exit");
}

#[test]
fn agent_metrics_match_stats_during_traffic() {
    let host = Host::new("agm");
    let agent = start_ready(&host, &[]);
    let (a, b) = (host.node.pod(1), host.node.pod(2));
    pod_verb(&host, "ADD", "pod-a", &a).ok();
    let res_b = pod_verb(&host, "ADD", "pod-b", &b).ok().clone();
    let ip_b = support::cni::pod_ip(&res_b);
    // pod a -> pod b (redirected pod to pod) and a -> gateway (to the wire)
    let mut flood = a.spawn(&["ping", "-q", "-i", "0.002", "-c", "5000", &ip_b]);
    let mut wire = a.spawn(&["ping", "-q", "-i", "0.005", "-c", "2000", GATEWAY]);
    std::thread::sleep(Duration::from_millis(1500));

    let before = host.node.stats();
    let (code, text) = get(&host, "/metrics");
    let after = host.node.stats();
    let _ = (flood.kill(), wire.kill(), flood.wait(), wire.wait());
    assert_eq!(code, 200, "{text}");

    let find = |s: &Value, cid: &str| -> Value {
        s["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["containerID"] == cid)
            .cloned()
            .unwrap()
    };
    let mut checked = 0;
    for pod in ["pod-a", "pod-b"] {
        let labels = format!(r#"namespace="default",pod="{pod}",interface="eth0""#);
        for (stem, key) in [
            ("pod_redirected_in", "redirectedIn"),
            ("pod_redirected_to_wire", "redirectedToUplink"),
            ("pod_redirected_to_pod", "redirectedToPod"),
        ] {
            for unit in ["packets", "bytes"] {
                let series = format!("vethxdp_{stem}_{unit}_total{{{labels}}}");
                let got =
                    metric(&text, &series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
                let lo = find(&before, pod)["counters"][key][unit].as_u64().unwrap() as f64;
                let hi = find(&after, pod)["counters"][key][unit].as_u64().unwrap() as f64;
                assert!(
                    lo <= got && got <= hi,
                    "{series} = {got}, stats said {lo} before and {hi} after"
                );
                if got > 0.0 {
                    checked += 1;
                }
            }
        }
        for (reason, key) in [("spoof", "spoofDrops"), ("malformed", "malformedDrops")] {
            let series =
                format!("vethxdp_pod_dropped_packets_total{{{labels},reason=\"{reason}\"}}");
            let got = metric(&text, &series).unwrap_or_else(|| panic!("{series} missing"));
            let hi = find(&after, pod)["counters"][key]["packets"]
                .as_u64()
                .unwrap() as f64;
            assert!(got <= hi, "{series}");
        }
    }
    // a: to pod and to the wire; b: redirected in (and its replies to a)
    assert!(
        checked >= 6,
        "traffic moved counters: {checked} non-zero series\n{text}"
    );
    let up = format!(r#"vethxdp_uplink_redirected_to_pods_packets_total{{interface="{UPLINK}"}}"#);
    let got = metric(&text, &up).unwrap();
    let lo = before["uplinks"][0]["redirectedToPods"].as_u64().unwrap() as f64;
    let hi = after["uplinks"][0]["redirectedToPods"].as_u64().unwrap() as f64;
    assert!(
        lo <= got && got <= hi && got > 0.0,
        "{up} = {got}, stats {lo}..{hi}"
    );
    drop(agent);
    for (name, ns) in [("pod-a", &a), ("pod-b", &b)] {
        assert_eq!(pod_verb(&host, "DEL", name, ns).exit, 0);
    }
}

/// ADD and DEL hold the network's attachments lock shared, the agent's pod
/// repair exclusive: a pass running during DEL cannot put back the programs
/// DEL just removed (which would leave pins of a deleted veth behind).
#[test]
fn agent_passes_during_add_and_del_leave_no_traces() {
    let host = Host::new("agd");
    let agent = start_ready(&host, &["--interval", "0.05"]);
    let pod = host.node.pod(0);
    for i in 0..15 {
        let name = format!("churn-{i}");
        pod_verb(&host, "ADD", &name, &pod).ok();
        assert_eq!(pod_verb(&host, "DEL", &name, &pod).exit, 0);
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(agent);
    host.node.assert_clean();
}

/// Without --pod-cidr and --service-cidr the ranges come from the API (a fake
/// apiserver answering in the real one's shape, reachable inside the node
/// namespace): the Node's IPv4 spec.podCIDRs and every ServiceCIDR.
#[test]
fn agent_and_once_take_the_ranges_from_the_kubernetes_api() {
    use support::apiserver::{FakeApi, NODE_PATH, SERVICECIDRS_PATH};
    let host = Host::new("agapi");
    let api = FakeApi::start_in(
        Some(&host.node.ns),
        "agent",
        &[
            ("/api/v1/nodes/node-l2", 200, "node-l2.json"),
            ("/api/v1/nodes/node-c", 200, "node-no-pod-cidr.json"),
            (SERVICECIDRS_PATH, 200, "servicecidrs.json"),
        ],
    );
    let kubeconfig = api.kubeconfig().display().to_string();
    let services = serde_json::json!(["10.96.0.0/16", "fd00:10:96::/112", "10.100.0.0/16"]);

    let check_conflist = |host: &Host| {
        let v: Value = serde_json::from_slice(&std::fs::read(host.conflist()).unwrap()).unwrap();
        let plugin = &v["plugins"][0];
        let range = &plugin["ipam"]["ranges"][0][0];
        assert_eq!(range["rangeStart"], "10.77.0.128", "{v}");
        assert_eq!(range["rangeEnd"], "10.77.0.254", "{v}");
        let mut got: Vec<String> = serde_json::from_value(plugin["serviceCIDRs"].clone()).unwrap();
        let mut want: Vec<String> = serde_json::from_value(services.clone()).unwrap();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{v}");
    };

    // --once, no --pod-cidr
    let (code, out) = host.install(&["--node-name", "node-l2", "--kubeconfig", &kubeconfig]);
    assert_eq!(code, 0, "{out}");
    check_conflist(&host);
    std::fs::remove_file(host.conflist()).unwrap();

    // The agent
    let mut agent = start_ready(
        &host,
        &["--node-name", "node-l2", "--kubeconfig", &kubeconfig],
    );
    check_conflist(&host);
    assert!(
        agent
            .log()
            .contains("pod CIDR 10.77.0.128/25, service ranges ["),
        "{}",
        agent.log()
    );
    assert_eq!(agent.terminate(), 0);
    let paths = api.paths();
    assert!(paths.contains(&format!("{NODE_PATH}node-l2")), "{paths:?}");
    assert!(paths.contains(&SERVICECIDRS_PATH.to_string()), "{paths:?}");

    // A node without a pod range yet: not ready, and no conflist.
    std::fs::remove_file(host.conflist()).unwrap();
    let agent = Agent::start(
        &host,
        &["--node-name", "node-c", "--kubeconfig", &kubeconfig],
    );
    wait_for(30, "not ready without a pod CIDR", &agent, || {
        let (code, body) = get(&host, "/readyz");
        code == 503 && body.contains("node node-c has no spec.podCIDRs yet")
    });
    assert!(!host.conflist().exists(), "no conflist without a pod range");
    drop(agent);

    // No pod CIDR, no node name: said clearly.
    let (code, out) = host.install(&["--kubeconfig", &kubeconfig]);
    assert_ne!(code, 0);
    assert!(
        out.contains("no --pod-cidr and no --node-name (NODE_NAME)"),
        "{out}"
    );
}

/// `install` against a real kube-apiserver built from upstream sources (the
/// conformance build's cache; skipped without it), with the manifests' own
/// Namespace, ServiceAccount, ClusterRole and binding, a bound token as a pod
/// gets, a Node carrying spec.podCIDRs, and the default ServiceCIDR the
/// apiserver makes from --service-cluster-ip-range.
#[test]
fn install_against_a_real_apiserver_with_the_manifests_rbac() {
    use support::kube::{RealApi, SERVICE_CIDR};
    let host = Host::new("ak8s");
    let Some(api) = RealApi::start(&host.node.ns, &host.node.dir) else {
        return;
    };
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    for f in [
        "namespace.yaml",
        "serviceaccount.yaml",
        "clusterrole.yaml",
        "clusterrolebinding.yaml",
    ] {
        api.apply(&std::fs::read_to_string(manifests.join(f)).unwrap());
    }
    api.apply(&format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-l2\nspec:\n  podCIDR: {POD_CIDR}\n  podCIDRs: [{POD_CIDR}, \"fd00:10:77::/64\"]\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: nobody\n  namespace: veth-xdp\n"
    ));
    let start = Instant::now();
    while api
        .kubectl_try(&["get", "servicecidrs", "kubernetes"])
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no default ServiceCIDR"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let kc = api.service_account_kubeconfig("veth-xdp", "veth-xdp");
    let kc = kc.display().to_string();
    let (code, out) = host.install(&["--node-name", "node-l2", "--kubeconfig", &kc]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_slice(&std::fs::read(host.conflist()).unwrap()).unwrap();
    let plugin = &v["plugins"][0];
    assert_eq!(
        plugin["serviceCIDRs"],
        serde_json::json!([SERVICE_CIDR]),
        "{v}"
    );
    assert_eq!(
        plugin["ipam"]["ranges"][0][0]["rangeStart"], "10.77.0.128",
        "{v}"
    );

    // Without the binding the same request is refused, and the error says what is missing.
    let nobody = api.service_account_kubeconfig("veth-xdp", "nobody");
    let (code, out) = host.install(&[
        "--node-name",
        "node-l2",
        "--kubeconfig",
        &nobody.display().to_string(),
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(r#"lacks verb "get" on resource "nodes""#),
        "{out}"
    );
}
