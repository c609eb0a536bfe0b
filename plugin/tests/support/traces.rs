//! What an attachment can leave on a node: the one "nothing left behind"
//! check of the ADD rollback, DEL and GC tests. One line per trace, prefixed
//! by its kind (`link`, `route`, `fdb`, `record`, `lease`, `map`, `slot`,
//! `pin`), so tests can count kinds.
//!
//! The datapath half reads the node's bpfRoot as the kernel holds it, with
//! `bpftool -j` and the names of bpf/include/vx_maps.h and bpf/veth_xdp.c,
//! not through `veth_xdp::bpf`: a referee must not share the code it judges,
//! and that API is being rewritten on another branch. Node state is not a
//! trace: the uplink's own link pin and devmap entry, the uplink's counter
//! slot 0, the node-address maps, the config map and the program pins.

use std::path::{Path, PathBuf};
use veth_xdp::bpf;

use serde_json::Value;

use super::cmd::{run, try_run};
use super::cni::{Node, UPLINK};

/// Every trace on `node`: host veths, their routes, uplink fdb entries,
/// records, IPAM leases, and the datapath under its bpfRoot.
pub fn on_node(node: &Node) -> Vec<String> {
    // Host veths are the only links named with the plugin's prefix.
    let prefix = veth_xdp::naming::HOST_VETH_PREFIX;
    let lines_with = |kind: &str, text: String, needle: String| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(&needle))
            .map(|l| format!("{kind} {l}"))
            .collect()
    };
    let mut t = lines_with("link", node.ns.ip("-o link show"), format!(": {prefix}"));
    t.extend(lines_with(
        "route",
        node.ns.ip("route show"),
        format!("dev {prefix}"),
    ));
    let fdb = run(
        "bridge",
        &["-n", node.ns.name(), "fdb", "show", "dev", UPLINK],
    );
    // The kernel lists the device's multicast addresses as "self permanent" too.
    t.extend(
        fdb.lines()
            .filter(|l| !l.starts_with("33:33") && !l.starts_with("01:00:5e"))
            .map(|l| format!("fdb {l}")),
    );
    let records = veth_xdp::record::Store::new(&node.state_dir(), super::cni::NETWORK);
    // The built-in IPAM's lock directory and last-address hint are not
    // leases (its leases are the records).
    t.extend(
        entries(records.dir())
            .into_iter()
            .filter(|p| p.file_name().is_none_or(|n| n != ".ipam"))
            .map(|p| format!("record {}", p.display())),
    );
    // host-local's own files (not leases): its last-reserved marker and lock.
    t.extend(
        entries(&node.ipam_dir().join(super::cni::NETWORK))
            .into_iter()
            .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .filter(|n| !n.starts_with("last_reserved_ip") && n != "lock")
            .map(|n| format!("lease {n}")),
    );
    t.extend(datapath(&node.bpf_root, node.ns.ifindex(UPLINK)));
    t
}

/// What pods left in the datapath pinned under `bpf_root` (every layout
/// version directory), for a node whose uplink is `uplink_ifindex`: entries
/// of the pod maps, redirect targets other than the uplink, pod counter
/// slots not zeroed, and link pins of programs other than the uplink's.
pub fn datapath(bpf_root: &Path, uplink_ifindex: u32) -> Vec<String> {
    let mut t = Vec::new();
    for version in entries(bpf_root) {
        for pin in entries(&version.join("maps")) {
            t.extend(map_traces(&pin, uplink_ifindex));
        }
        for pin in entries(&version.join("links")) {
            let prog = linked_program(&pin);
            let node_link = prog == UPLINK_PROG
                || pin
                    .file_name()
                    .is_some_and(|n| n == bpf::LINK_UPLINK_READDRESSED);
            if !node_link {
                t.push(format!("pin {}: link of {prog}", pin.display()));
            }
        }
    }
    t
}

/// The uplink's program (a function name in bpf/veth_xdp.c); the uplink's
/// PACKET_HOST fix-up (`LINK_UPLINK_READDRESSED`) is node state too.
const UPLINK_PROG: &str = "vx_uplink";
/// The per-CPU counters by slot, slot 0 being the uplink's (vx_shared.h).
const COUNTERS: &str = "vx_counters";
const UPLINK_SLOT: u32 = 0;

fn map_traces(pin: &Path, uplink_ifindex: u32) -> Vec<String> {
    let name = file_name(pin);
    let entry = |e: &MapEntry| format!("map {name}: {}", e.show());
    match name.as_str() {
        // Pods by MAC, IPv4, IPv6 and host ifindex: empty without pods.
        "vx_pod_mac" | "vx_pod_v4" | "vx_pod_v6" | "vx_pod_if" => {
            dump_map(pin).iter().map(entry).collect()
        }
        // Redirect targets: the uplink, and one host veth per pod.
        "vx_redirect" => dump_map(pin)
            .iter()
            .filter(|e| e.key_u32() != uplink_ifindex)
            .map(entry)
            .collect(),
        COUNTERS => dirty_slots(pin)
            .into_iter()
            .map(|s| format!("slot {s}: {COUNTERS} not zeroed"))
            .collect(),
        // Node state: its addresses and its config.
        // Node state; vx_flows is a node-wide cache like conntrack: an entry
        // of a removed pod only sends a flow of a later pod with the same
        // address and port through the stack, which delivers it all the same.
        "vx_node_v4" | "vx_node_v6" | "vx_config" | "vx_services" | "vx_flows" => vec![],
        _ => vec![format!(
            "map {name}: unknown to support::traces; say whether it holds pod state"
        )],
    }
}

/// Pod slots (all but the uplink's) of the counters map at `pin` holding
/// non-zero counters on any CPU.
pub fn dirty_slots(pin: &Path) -> Vec<u32> {
    // A per-CPU array dump is megabytes of "0x00" strings: read them in place
    // (the generic `dump_map` conversion costs most of a second per call in a
    // debug build).
    let out = run(
        "bpftool",
        &["-j", "map", "dump", "pinned", pin.to_str().unwrap()],
    );
    let dump: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bpftool dump of {pin:?}: {e}"));
    let nonzero = |v: &Value| {
        v.as_array()
            .is_some_and(|bytes| bytes.iter().any(|b| b.as_str() != Some("0x00")))
    };
    dump.as_array()
        .unwrap_or_else(|| panic!("bpftool dump of {pin:?}: {out}"))
        .iter()
        .filter(|e| {
            e["values"]
                .as_array()
                .is_some_and(|cpus| cpus.iter().any(|c| nonzero(&c["value"])))
        })
        .map(|e| {
            let key: Vec<u8> = e["key"]
                .as_array()
                .expect("bpftool key")
                .iter()
                .map(|b| {
                    u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
                })
                .collect();
            u32::from_ne_bytes(key[..4].try_into().expect("4-byte key"))
        })
        .filter(|slot| *slot != UPLINK_SLOT)
        .collect()
}

/// One entry of a pinned map as bpftool dumps it.
#[derive(Debug, Clone)]
pub struct MapEntry {
    pub key: Vec<u8>,
    /// One value, or one per CPU for per-CPU maps.
    pub values: Vec<Vec<u8>>,
    /// bpftool's BTF rendering of key and value, if it has one.
    pub formatted: Value,
}

impl MapEntry {
    /// The key as a native-endian u32 (ifindex or slot keys).
    pub fn key_u32(&self) -> u32 {
        u32::from_ne_bytes(self.key[..4].try_into().expect("4-byte key"))
    }

    fn show(&self) -> String {
        if self.formatted.is_null() {
            format!("key {} value {}", hex(&self.key), hex(&self.values[0]))
        } else {
            self.formatted.to_string()
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every entry of the map pinned at `pin` (`bpftool -j map dump pinned`).
pub fn dump_map(pin: &Path) -> Vec<MapEntry> {
    let out = run(
        "bpftool",
        &["-j", "map", "dump", "pinned", pin.to_str().unwrap()],
    );
    let dump: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bpftool dump of {pin:?}: {e}"));
    let bytes = |v: &Value| -> Vec<u8> {
        v.as_array()
            .expect("bpftool byte list")
            .iter()
            .map(|b| {
                let b = b.as_str().expect("bpftool byte");
                u8::from_str_radix(b.trim_start_matches("0x"), 16).expect("hex byte")
            })
            .collect()
    };
    dump.as_array()
        .unwrap_or_else(|| panic!("bpftool dump of {pin:?}: {out}"))
        .iter()
        .map(|e| MapEntry {
            key: bytes(&e["key"]),
            values: match e.get("values") {
                Some(per_cpu) => per_cpu
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| bytes(&v["value"]))
                    .collect(),
                None => vec![bytes(&e["value"])],
            },
            formatted: e.get("formatted").cloned().unwrap_or(Value::Null),
        })
        .collect()
}

/// The name of the program behind the link pinned at `pin` (a defunct link,
/// its device gone, still names its program).
pub fn linked_program(pin: &Path) -> String {
    let show =
        |args: &[&str]| -> Option<Value> { serde_json::from_str(&try_run("bpftool", args)?).ok() };
    let Some(link) = show(&["-j", "link", "show", "pinned", pin.to_str().unwrap()]) else {
        return "? (not a link)".into();
    };
    let prog = show(&["-j", "prog", "show", "id", &link["prog_id"].to_string()]);
    prog.and_then(|p| Some(p["name"].as_str()?.to_string()))
        .unwrap_or_else(|| format!("? (link {link})"))
}

/// The entries of a directory, sorted; none if it does not exist.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}
