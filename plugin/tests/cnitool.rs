//! cnitool, the CNI project's own tool for local testing (one of the plugin's named callers,
//! shared/CALLERS.md), driving the built plugin: `cnitool add/check/del/gc/status` against pod
//! namespaces of a node namespace, and GC with a valid-attachments list through libcni itself.
//!
//! cnitool is not packaged: `bash conformance/kubernetes/build.sh --only cnitool` builds it from
//! source (github.com/containernetworking/cni v1.3.1, the first releases with GC and STATUS) into
//! the conformance cache, with `cni-gc`, a ten-line libcni driver of ours: cnitool's own `gc`
//! passes no valid list (it DELs every attachment libcni has cached, then sends GC without
//! `cni.dev/valid-attachments`). Without the binaries these tests skip and say how to build them;
//! the suite never builds or fetches them itself.
//!
//! libcni keeps the results of ADD in /var/lib/cni whatever the config says: every invocation
//! here runs in a mount namespace of its own with the test's directory bind-mounted there, so
//! the machine's cache is never read or written and parallel tests never see each other's.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::cmd::{must, TempDir};
use support::cni::*;
use support::ns::Netns;

/// The conformance cache's bin dir (conformance/kubernetes/build.sh's default and override).
fn cache_bin() -> PathBuf {
    if let Some(c) = std::env::var_os("VETH_XDP_K8S_CACHE") {
        return PathBuf::from(c).join("bin");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("veth-xdp/k8s/bin")
}

/// The two binaries, or None (and a message saying how to build them).
fn tools() -> Option<(PathBuf, PathBuf)> {
    let bin = cache_bin();
    let (cnitool, gc) = (bin.join("cnitool"), bin.join("cni-gc"));
    if cnitool.is_file() && gc.is_file() {
        return Some((cnitool, gc));
    }
    eprintln!(
        "SKIPPED: cnitool/cni-gc not in {} (build them: bash conformance/kubernetes/build.sh --only cnitool)",
        bin.display()
    );
    None
}

/// cnitool and cni-gc run against one node: a conflist directory and a libcni cache of the
/// test's own (removed on drop).
struct Cnitool<'a> {
    node: &'a Node,
    cnitool: PathBuf,
    gc: PathBuf,
    dir: TempDir,
}

/// What one invocation did.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl<'a> Cnitool<'a> {
    fn new(node: &'a Node, (cnitool, gc): (PathBuf, PathBuf), plugin_conf: &Value) -> Self {
        let dir = TempDir::new("cnit");
        std::fs::create_dir_all(dir.path().join("net.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("cache")).unwrap();
        // The mount point of the private bind mount must exist on the host.
        std::fs::create_dir_all("/var/lib/cni").unwrap();
        let mut plugin = plugin_conf.clone();
        let version = plugin["cniVersion"].clone();
        plugin.as_object_mut().unwrap().remove("cniVersion");
        plugin.as_object_mut().unwrap().remove("name");
        let list = json!({"cniVersion": version, "name": NETWORK, "plugins": [plugin]});
        std::fs::write(
            dir.path()
                .join("net.d")
                .join(format!("10-{NETWORK}.conflist")),
            serde_json::to_vec_pretty(&list).unwrap(),
        )
        .unwrap();
        Self {
            node,
            cnitool,
            gc,
            dir,
        }
    }

    /// `bin args…` inside the node namespace, in a mount namespace whose /var/lib/cni is ours.
    fn invoke(&self, bin: &Path, args: &[&str]) -> Run {
        let plugin_dir = Path::new(plugin_bin()).parent().unwrap();
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.node.ns.path().display()))
            .args([
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "bash",
                "-c",
            ])
            .arg(r#"mount --bind "$0" /var/lib/cni && exec "$@""#)
            .arg(self.dir.path().join("cache"))
            .arg(bin)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NETCONFPATH", self.dir.path().join("net.d"))
            .env("CNI_PATH", format!("{}:{CNI_PATH}", plugin_dir.display()))
            .env("CNI_IFNAME", "eth0")
            .output()
            .expect("spawn nsenter");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `cnitool VERB <net> <pod netns>`, which must succeed; stdout.
    fn must(&self, verb: &str, pod: &Netns) -> String {
        let path = pod.path().display().to_string();
        let r = self.invoke(&self.cnitool, &[verb, NETWORK, &path]);
        assert!(
            r.ok,
            "cnitool {verb} {NETWORK} {path} failed: {}{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// `cni-gc <net> <cid>/eth0…`: libcni's GC with these valid attachments.
    fn gc_keeping(&self, keep: &[&str]) {
        let valid: Vec<String> = keep.iter().map(|c| format!("{c}/eth0")).collect();
        let mut args = vec![NETWORK];
        args.extend(valid.iter().map(String::as_str));
        let r = self.invoke(&self.gc, &args);
        assert!(r.ok, "cni-gc {args:?} failed: {}{}", r.stdout, r.stderr);
    }

    /// libcni's cached results (one file per attachment it would DEL on GC).
    fn cached(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path().join("cache/results"))
            .map(|d| {
                d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Forgets one attachment in libcni's cache, as a runtime that lost its state would.
    fn forget(&self, cid: &str) {
        for f in self.cached().iter().filter(|f| f.contains(cid)) {
            std::fs::remove_file(self.dir.path().join("cache/results").join(f)).unwrap();
        }
    }
}

/// cnitool's container ID for a netns path: `cnitool-` + the first 10 bytes of SHA-512(path).
fn container_id(pod: &Netns) -> String {
    let out = must(&format!("printf %s {} | sha512sum", pod.path().display()));
    format!("cnitool-{}", &out[..20])
}

/// The node's traces (support::traces) of one kind.
fn kind(node: &Node, k: &str) -> Vec<String> {
    node.traces()
        .into_iter()
        .filter(|t| t.starts_with(k))
        .collect()
}

#[test]
fn cnitool_add_check_del_status_and_gc_without_a_list() {
    let Some(bins) = tools() else { return };
    let node = Node::new("cta");
    let conf = node.conf("1.1.0", json!({}));
    let tool = Cnitool::new(&node, bins, &conf);
    let pod = node.pod(0);

    // STATUS before any pod: the node can take pods.
    tool.must("status", &pod);

    let res: Value =
        serde_json::from_str(&tool.must("add", &pod)).expect("cnitool add prints the result");
    validate_result("1.1.0", &res);
    assert_eq!(res["interfaces"][1]["name"], "eth0", "{res}");
    let ip = pod_ip(&res);
    assert!(
        pod.try_exec(&["ping", "-c1", "-W2", GATEWAY]),
        "the pod {ip} reaches the gateway"
    );
    let cid = container_id(&pod);
    assert_eq!(
        tool.cached(),
        vec![format!("{NETWORK}-{cid}-eth0")],
        "libcni cached the attachment under cnitool's container ID"
    );
    // CHECK with the cached prevResult.
    tool.must("check", &pod);
    // A second ADD of the same attachment is refused (the record exists).
    let r = tool.invoke(
        &tool.cnitool,
        &["add", NETWORK, &pod.path().display().to_string()],
    );
    assert!(!r.ok, "a second ADD must fail: {}", r.stdout);

    tool.must("del", &pod);
    node.assert_clean();
    assert!(tool.cached().is_empty(), "DEL drops libcni's cache entry");
    // DEL again (nothing cached, nothing left): still a success.
    tool.must("del", &pod);
    // CHECK after DEL fails: nothing is attached.
    let r = tool.invoke(
        &tool.cnitool,
        &["check", NETWORK, &pod.path().display().to_string()],
    );
    assert!(!r.ok, "CHECK after DEL must fail");

    // cnitool's own gc: every cached attachment of the network is DELeted, then GC without a
    // valid list (which removes nothing on its own).
    let pod2 = node.pod(1);
    tool.must("add", &pod);
    tool.must("add", &pod2);
    assert_eq!(kind(&node, "link").len(), 2);
    tool.must("gc", &pod);
    node.assert_clean();
    assert!(tool.cached().is_empty());
}

#[test]
fn libcni_gc_removes_exactly_the_attachments_not_in_the_valid_list() {
    let Some(bins) = tools() else { return };
    let node = Node::new("ctg");
    let conf = node.conf("1.1.0", json!({}));
    let tool = Cnitool::new(&node, bins, &conf);
    let (keep, drop) = (node.pod(0), node.pod(1));
    let (keep_id, drop_id) = (container_id(&keep), container_id(&drop));

    tool.must("add", &keep);
    // Everything the kept attachment leaves on the node, before the other exists (its
    // counters move with whatever the pod sends meanwhile: not compared).
    let traces = || -> Vec<String> {
        node.traces()
            .into_iter()
            .filter(|t| !t.contains("vx_counters not zeroed"))
            .collect()
    };
    let alone = traces();
    let dropped: Value = serde_json::from_str(&tool.must("add", &drop)).unwrap();
    let drop_veth = host_veth(&dropped);
    let lease = node.ipam_dir().join(NETWORK).join(pod_ip(&dropped));
    assert!(lease.exists(), "{} leased", lease.display());

    // 1. The runtime still has both in its cache: libcni DELs the one not listed, then calls the
    //    plugin's GC with the valid list.
    tool.gc_keeping(&[&keep_id]);
    assert_eq!(traces(), alone, "exactly the unlisted attachment is gone");
    assert!(!lease.exists(), "{} freed", lease.display());
    assert_eq!(tool.cached(), vec![format!("{NETWORK}-{keep_id}-eth0")]);
    tool.must("check", &keep);
    assert!(
        keep.try_exec(&["ping", "-c1", "-W2", GATEWAY]),
        "the kept pod still works"
    );

    // 2. The runtime lost its cache entry of the second attachment: libcni has nothing to DEL,
    //    and the plugin's own GC (from its records) must remove it.
    // host-local hands out the next address (it goes round its range), not the freed one.
    let again: Value = serde_json::from_str(&tool.must("add", &drop)).unwrap();
    let drop_ip = pod_ip(&again);
    assert_eq!(
        host_veth(&again),
        drop_veth,
        "the host veth name derives from the IDs"
    );
    tool.forget(&drop_id);
    tool.gc_keeping(&[&keep_id]);
    assert_eq!(
        traces(),
        alone,
        "the plugin's GC removed the unlisted attachment"
    );
    assert!(
        !node.ns.try_exec(&["ip", "link", "show", &drop_veth]),
        "host veth {drop_veth} gone"
    );
    assert!(
        !node.ipam_dir().join(NETWORK).join(&drop_ip).exists(),
        "lease {drop_ip} freed"
    );
    assert_eq!(
        must(&format!("ip -n {drop} -o link")).lines().count(),
        1,
        "only lo is left in the dropped pod"
    );
    tool.must("check", &keep);

    // An empty valid list: everything goes.
    tool.gc_keeping(&[]);
    node.assert_clean();
    assert!(tool.cached().is_empty());
}
