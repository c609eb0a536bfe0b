//! `veth-xdp install --once` against a temporary host root, run inside a
//! throwaway node namespace (uplink0 10.77.0.2/24, default route via
//! 10.77.0.1): the files it places, idempotency, template errors, the L2
//! check of the pod CIDR, and a real ADD/DEL through the conflist it wrote,
//! run by the binary it installed. Run as root: `cargo test --test install`.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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
        host
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
fn without_once_it_says_the_agent_is_not_built() {
    let out = Command::new(plugin_bin())
        .args(["install", "--pod-cidr", POD_CIDR])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not built yet"), "{err}");
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
