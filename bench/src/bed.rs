//! A testbed: wire namespace ⇄ node namespace (uplink), pods attached by the
//! column's datapath (none for limit, otherwise a CNI plugin's ADD).
use crate::{bpf, cni, sys, topo};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The datapaths compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Column {
    /// No CNI: XDP redirect (or tc redirect) into bare veth pairs.
    Limit,
    /// Our plugin, egress "xdp" or "tc".
    VethXdp(Egress),
    Bridge,
    Macvlan,
    Ptp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Egress {
    Xdp,
    Tc,
}

impl Column {
    pub fn all() -> Vec<Column> {
        vec![
            Column::Limit,
            Column::VethXdp(Egress::Xdp),
            Column::VethXdp(Egress::Tc),
            Column::Bridge,
            Column::Macvlan,
            Column::Ptp,
        ]
    }

    pub fn name(&self) -> &'static str {
        match self {
            Column::Limit => "limit",
            Column::VethXdp(Egress::Xdp) => "veth-xdp (xdp)",
            Column::VethXdp(Egress::Tc) => "veth-xdp (tc)",
            Column::Bridge => "bridge",
            Column::Macvlan => "macvlan",
            Column::Ptp => "ptp",
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            Column::Limit => "l",
            Column::VethXdp(Egress::Xdp) => "x",
            Column::VethXdp(Egress::Tc) => "t",
            Column::Bridge => "b",
            Column::Macvlan => "m",
            Column::Ptp => "p",
        }
    }
}

/// Addresses of the testbed (each bed has its own namespaces, so they repeat).
pub const WIRE_IP: [u8; 4] = [10, 201, 0, 1];
pub const NODE_IP: [u8; 4] = [10, 201, 0, 2];
/// L2 columns put pods in the wire's /24; ptp routes its own /24.
const L2_NET: &str = "10.201.0";
const PTP_NET: &str = "10.202.0";
pub const WIRE_DEV: &str = "wire0";
pub const UPLINK: &str = "up0";

fn dotted(ip: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(ip).to_string()
}

/// One pod: its namespace, address, MAC and the host-side device (limit only).
pub struct Pod {
    pub ip: [u8; 4],
    pub mac: [u8; 6],
    pub id: String,
    pub ns: topo::Netns,
}

/// Run-wide settings a bed needs.
pub struct BedConfig {
    pub plugin_bin: PathBuf,
    pub run_dir: String,
    pub prefix: String,
}

/// A built testbed; dropping it removes every namespace and directory.
pub struct Bed {
    pub column: Column,
    /// Pods first: their namespaces go before the node's.
    pub pods: Vec<Pod>,
    pub limit: Option<bpf::LimitXdp>,
    pub wire: topo::Netns,
    pub node: topo::Netns,
    pub wire_mac: [u8; 6],
    pub uplink_mac: [u8; 6],
    conf: Option<Value>,
    plugin: PathBuf,
    _dirs: Vec<topo::OwnedDir>,
}

impl Bed {
    /// Builds wire + node for `column` and attaches `n_pods` pods.
    pub fn build(cfg: &BedConfig, column: Column, n_pods: usize) -> Result<Bed> {
        let base = format!("{}{}", cfg.prefix, column.tag());
        let wire = topo::Netns::new(format!("{base}w"))?;
        let node = topo::Netns::new(format!("{base}n"))?;
        link_wire_to_node(&wire.name, &node.name)?;
        let wire_mac = sys::link_info(&wire.name, WIRE_DEV)?.mac;
        let uplink_mac = sys::link_info(&node.name, UPLINK)?.mac;
        let mut dirs = vec![topo::OwnedDir::new(format!("{}/{base}", cfg.run_dir))?];
        let dir = dirs[0].path.clone();
        let (conf, plugin) = match column {
            Column::Limit => (None, PathBuf::new()),
            Column::VethXdp(egress) => {
                let bpf_root = topo::OwnedDir::new(format!("/sys/fs/bpf/{base}"))?;
                let c = veth_xdp_conf(egress, &dir, &bpf_root.path);
                dirs.push(bpf_root);
                (Some(c), cfg.plugin_bin.clone())
            }
            Column::Bridge => (
                Some(bridge_conf(&dir)),
                PathBuf::from(cni::CNI_PATH).join("bridge"),
            ),
            Column::Macvlan => (
                Some(macvlan_conf(&dir)),
                PathBuf::from(cni::CNI_PATH).join("macvlan"),
            ),
            Column::Ptp => (
                Some(ptp_conf(&dir)),
                PathBuf::from(cni::CNI_PATH).join("ptp"),
            ),
        };
        let mut bed = Bed {
            column,
            pods: vec![],
            limit: None,
            wire,
            node,
            wire_mac,
            uplink_mac,
            conf,
            plugin,
            _dirs: dirs,
        };
        for i in 0..n_pods {
            let pod = bed.add_pod(&format!("{base}p{i}"), i)?;
            bed.pods.push(pod);
        }
        if column == Column::Limit {
            bed.attach_limit()?;
            bed.limit_neighbours()?;
        }
        if column == Column::Bridge && n_pods > 0 {
            // The uplink becomes a bridge port; the node's address moves to the bridge.
            let node_cidr = format!("{}/24", dotted(NODE_IP));
            sys::ip(&bed.node.name, &["link", "set", UPLINK, "master", "vxbr0"])?;
            sys::ip(&bed.node.name, &["addr", "del", &node_cidr, "dev", UPLINK])?;
            sys::ip(&bed.node.name, &["addr", "add", &node_cidr, "dev", "vxbr0"])?;
            sys::ip(&bed.node.name, &["link", "set", "vxbr0", "up"])?;
        }
        bed.warm_up();
        Ok(bed)
    }

    /// Replaces the IPAM section of the plugin config (control-plane runs need
    /// more than a /24).
    pub fn set_ipam(&mut self, ipam: Value) {
        if let Some(c) = &mut self.conf {
            c["ipam"] = ipam;
        }
    }

    /// Pod namespace name number `i` of the control-plane runs.
    pub fn cp_ns_name(&self, i: usize) -> String {
        format!("{}c{i}", self.node.name)
    }

    /// ADD through the plugin for an existing pod namespace; returns the
    /// plugin's wall time. A result without an address is an error.
    pub fn cni_add(&self, ns: &str) -> Result<std::time::Duration> {
        let conf = self.conf.as_ref().context("column has no CNI plugin")?;
        let out = cni::invoke(
            &self.node.name,
            &self.plugin,
            "ADD",
            &format!("{ns}-c"),
            ns,
            conf,
        )?;
        cni::pod_addr(&out.result).context("reading the ADD result")?;
        Ok(out.elapsed)
    }

    /// One ADD under GNU time; returns the peak RSS (KiB) of the plugin and its IPAM.
    pub fn cni_add_rss(&self, ns: &str, scratch: &str) -> Result<u64> {
        let conf = self.conf.as_ref().context("column has no CNI plugin")?;
        let (out, kib) = cni::invoke_rss(
            &self.node.name,
            &self.plugin,
            "ADD",
            &format!("{ns}-c"),
            ns,
            conf,
            scratch,
        )?;
        cni::pod_addr(&out.result).context("reading the ADD result")?;
        Ok(kib)
    }

    /// DEL through the plugin; returns its wall time.
    pub fn cni_del(&self, ns: &str) -> Result<std::time::Duration> {
        let conf = self.conf.as_ref().context("column has no CNI plugin")?;
        Ok(cni::invoke(
            &self.node.name,
            &self.plugin,
            "DEL",
            &format!("{ns}-c"),
            ns,
            conf,
        )?
        .elapsed)
    }

    /// The plugin's bpffs root (veth-xdp only).
    pub fn bpf_root(&self) -> Option<String> {
        self.conf
            .as_ref()
            .and_then(|c| c["bpfRoot"].as_str().map(str::to_string))
    }

    fn add_pod(&self, ns_name: &str, i: usize) -> Result<Pod> {
        let ns = topo::Netns::new(ns_name.to_string())?;
        let id = format!("{ns_name}-c");
        match &self.conf {
            None => {
                let host = format!("h{i}");
                sys::ip(
                    &self.node.name,
                    &[
                        "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns",
                        &ns.name,
                    ],
                )?;
                sys::ip(&self.node.name, &["link", "set", &host, "up"])?;
                sys::ip(&ns.name, &["link", "set", "eth0", "up"])?;
                let ip = [10, 201, 0, 10 + i as u8];
                sys::ip(
                    &ns.name,
                    &["addr", "add", &format!("{}/24", dotted(ip)), "dev", "eth0"],
                )?;
                let mac = sys::link_info(&ns.name, "eth0")?.mac;
                Ok(Pod { ip, mac, id, ns })
            }
            Some(conf) => {
                let out = cni::invoke(&self.node.name, &self.plugin, "ADD", &id, &ns.name, conf)?;
                let (ip, mac) = cni::pod_addr(&out.result).context("reading the ADD result")?;
                Ok(Pod { ip, mac, id, ns })
            }
        }
    }

    /// limit: vxb_limit on the uplink redirects by pod MAC into h0..hN.
    fn attach_limit(&mut self) -> Result<()> {
        let mut targets = vec![];
        for (i, p) in self.pods.iter().enumerate() {
            targets.push((
                p.mac,
                sys::link_info(&self.node.name, &format!("h{i}"))?.ifindex,
            ));
        }
        self.limit = Some(bpf::LimitXdp::attach(&self.node.name, UPLINK, &targets)?);
        Ok(())
    }

    /// limit pods reach the wire and each other only through programs that
    /// forward one way, so ARP cannot resolve: static neighbours instead.
    fn limit_neighbours(&self) -> Result<()> {
        for (i, p) in self.pods.iter().enumerate() {
            sys::ethtool_k(&self.node.name, &format!("h{i}"), &["gro", "on"])?;
            let mut peers: Vec<([u8; 4], [u8; 6])> = vec![(WIRE_IP, self.wire_mac)];
            peers.extend(
                self.pods
                    .iter()
                    .filter(|q| q.ip != p.ip)
                    .map(|q| (q.ip, q.mac)),
            );
            for (ip, mac) in peers {
                let mac = mac
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":");
                sys::ip(
                    &p.ns.name,
                    &[
                        "neigh",
                        "replace",
                        &dotted(ip),
                        "lladdr",
                        &mac,
                        "dev",
                        "eth0",
                        "nud",
                        "permanent",
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Lets bridges learn pod MACs and neighbours resolve before traffic: one
    /// UDP datagram from each pod to the wire (node to pod for ptp), which
    /// makes the sender ARP, then a pause for the replies.
    fn warm_up(&self) {
        for p in &self.pods {
            let r = match self.column {
                Column::Limit => Ok(()),
                Column::Ptp => sys::send_udp(&self.node.name, p.ip),
                _ => sys::send_udp(&p.ns.name, WIRE_IP),
            };
            if let Err(e) = r {
                eprintln!(
                    "vx-bench: warm-up for {} pod {}: {e:#}",
                    self.column.name(),
                    dotted(p.ip)
                );
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    /// The node address pods talk to: the gateway (host veth) for ptp, the
    /// node's address on the uplink (or bridge) otherwise.
    pub fn node_ip_for_pods(&self) -> [u8; 4] {
        match self.column {
            Column::Ptp => [10, 202, 0, 1],
            _ => NODE_IP,
        }
    }

    /// The generator's source (the wire).
    pub fn wire_target(&self) -> bpf::Target {
        bpf::Target {
            mac: self.wire_mac,
            ip: WIRE_IP,
        }
    }

    /// What frames from the wire to pod `i` carry: the pod's MAC, or the
    /// node's for the routed ptp column.
    pub fn ingress_target(&self, i: usize) -> bpf::Target {
        let p = &self.pods[i];
        match self.column {
            Column::Ptp => bpf::Target {
                mac: self.uplink_mac,
                ip: p.ip,
            },
            _ => bpf::Target {
                mac: p.mac,
                ip: p.ip,
            },
        }
    }

    /// Ethernet target for frames pod 0 sends to pod `i` with XDP: the pod's
    /// MAC on L2 datapaths, pod 0's gateway (its host veth) for routed ptp.
    pub fn l2_target_from_pod(&self, i: usize) -> Result<bpf::Target> {
        let p = &self.pods[i];
        match self.column {
            Column::Ptp => Ok(bpf::Target {
                mac: self.gateway_mac(0)?,
                ip: p.ip,
            }),
            _ => Ok(bpf::Target {
                mac: p.mac,
                ip: p.ip,
            }),
        }
    }

    /// Ethernet target for frames pod 0 sends to the wire.
    pub fn wire_from_pod(&self) -> Result<bpf::Target> {
        match self.column {
            Column::Ptp => Ok(bpf::Target {
                mac: self.gateway_mac(0)?,
                ip: WIRE_IP,
            }),
            _ => Ok(bpf::Target {
                mac: self.wire_mac,
                ip: WIRE_IP,
            }),
        }
    }

    /// MAC of pod `i`'s host-side veth (its peer, found by the pod end's link index).
    fn gateway_mac(&self, i: usize) -> Result<[u8; 6]> {
        let out = sys::ip(
            &self.pods[i].ns.name,
            &["-j", "link", "show", "dev", "eth0"],
        )?;
        let v: Value = serde_json::from_str(&out)?;
        let peer = v[0]["link_index"]
            .as_u64()
            .context("pod eth0 has no peer link_index")?;
        let all: Value = serde_json::from_str(&sys::ip(&self.node.name, &["-j", "link", "show"])?)?;
        let l = all
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["ifindex"].as_u64() == Some(peer))
            .context("host veth not found")?;
        sys::parse_mac(l["address"].as_str().context("host veth has no address")?)
    }

    /// DEL for every pod (errors reported, not fatal).
    pub fn delete_pods(&mut self) {
        if let Some(conf) = &self.conf {
            for p in &self.pods {
                if let Err(e) = cni::invoke(
                    &self.node.name,
                    &self.plugin,
                    "DEL",
                    &p.id,
                    &p.ns.name,
                    conf,
                ) {
                    eprintln!("vx-bench: {e:#}");
                }
            }
        }
    }
}

/// wire0 (wire) ⇄ up0 (node): up, addressed, wire with tx checksum off (a
/// physical wire delivers full checksums) and GRO on both ends (a veth
/// receiving XDP-redirected frames without a program needs GRO, else drops).
fn link_wire_to_node(wire: &str, node: &str) -> Result<()> {
    sys::ip(
        wire,
        &[
            "link", "add", WIRE_DEV, "type", "veth", "peer", "name", UPLINK, "netns", node,
        ],
    )
    .context("creating wire veth")?;
    sys::ip(wire, &["link", "set", WIRE_DEV, "up"])?;
    sys::ip(node, &["link", "set", UPLINK, "up"])?;
    sys::ip(
        wire,
        &[
            "addr",
            "add",
            &format!("{}/24", dotted(WIRE_IP)),
            "dev",
            WIRE_DEV,
        ],
    )?;
    sys::ip(
        node,
        &[
            "addr",
            "add",
            &format!("{}/24", dotted(NODE_IP)),
            "dev",
            UPLINK,
        ],
    )?;
    sys::ip(
        wire,
        &[
            "route",
            "add",
            &format!("{PTP_NET}.0/24"),
            "via",
            &dotted(NODE_IP),
        ],
    )?;
    sys::ethtool_k(wire, WIRE_DEV, &["tx", "off", "gro", "on"])?;
    sys::ethtool_k(node, UPLINK, &["gro", "on"])?;
    Ok(())
}

fn veth_xdp_conf(egress: Egress, dir: &str, bpf_root: &str) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "vxbench", "type": "veth-xdp", "uplink": UPLINK,
        "egress": match egress { Egress::Xdp => "xdp", Egress::Tc => "tc" },
        "stateDir": format!("{dir}/state"), "bpfRoot": bpf_root, "logFile": format!("{dir}/veth-xdp.log"),
        "ipam": cni::host_local(L2_NET, &dotted(WIRE_IP), &format!("{dir}/ipam")),
    })
}

fn bridge_conf(dir: &str) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "vxbench", "type": "bridge", "bridge": "vxbr0",
        "isGateway": false, "ipMasq": false,
        "ipam": cni::host_local(L2_NET, &dotted(WIRE_IP), &format!("{dir}/ipam")),
    })
}

fn macvlan_conf(dir: &str) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "vxbench", "type": "macvlan", "master": UPLINK, "mode": "bridge",
        "ipam": cni::host_local(L2_NET, &dotted(WIRE_IP), &format!("{dir}/ipam")),
    })
}

fn ptp_conf(dir: &str) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "vxbench", "type": "ptp", "ipMasq": false,
        "ipam": cni::host_local(PTP_NET, &format!("{PTP_NET}.1"), &format!("{dir}/ipam")),
    })
}

/// Fails early with a reason the table can show when a plugin binary is absent.
pub fn check_plugin(column: Column, cfg: &BedConfig) -> Result<()> {
    if let Column::VethXdp(_) = column {
        if !cfg.plugin_bin.is_file() {
            bail!("plugin binary {} not found", cfg.plugin_bin.display());
        }
    }
    Ok(())
}
