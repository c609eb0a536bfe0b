//! `veth-xdp stats`: every attachment with its datapath counters (per-CPU
//! counters summed), the drops the kernel otherwise hides (the veth's
//! `tx_queue_N_xdp_xmit_errors`, rx ring drops), and with
//! `--watch` packet rates over the interval.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use crate::bpf::types::CounterIdx;
use crate::stats::{bytes, collect, packets, passed_other, Row, Snapshot};

pub struct StatsArgs {
    pub state_dir: PathBuf,
    pub json: bool,
    pub watch: Option<Duration>,
    /// with --watch: stop after this many intervals
    pub count: Option<u32>,
}

/// The counters shown, in order: (column, JSON key, index).
const COLUMNS: &[(&str, &str, CounterIdx)] = &[
    ("IN", "redirectedIn", CounterIdx::RxRedirect),
    ("OUT-WIRE", "redirectedToUplink", CounterIdx::TxUplink),
    ("OUT-POD", "redirectedToPod", CounterIdx::TxPod),
    ("PASS", "passedToStack", CounterIdx::Pass),
    ("SPOOF", "spoofDrops", CounterIdx::DropSpoof),
    ("MALFORMED", "malformedDrops", CounterIdx::DropMalformed),
    ("REDIR-FAIL", "redirectFailures", CounterIdx::RedirectFail),
    // PASS by reason (the rest of PASS is "other": passedOther in --json)
    ("PASS-NODE", "passedNode", CounterIdx::PassNode),
    ("PASS-SVC", "passedService", CounterIdx::PassService),
    ("PASS-NAT", "passedNatReturn", CounterIdx::PassNatReturn),
    ("ETHERTYPE", "ethertypeDrops", CounterIdx::DropEthertype),
    ("ROUTER", "routerFrameDrops", CounterIdx::DropRouter),
];

fn snapshot(args: &StatsArgs) -> Result<Snapshot> {
    collect(&args.state_dir)
}

/// Packets per second of each column between two snapshots of the same attachment.
fn rates(prev: Option<&Snapshot>, now: &Snapshot, row: &Row) -> Option<Vec<f64>> {
    let prev = prev?;
    let before = prev.rows.iter().find(|r| {
        r.rec.host_ifindex == row.rec.host_ifindex && r.rec.container_id == row.rec.container_id
    })?;
    let secs = now.at.duration_since(prev.at).as_secs_f64().max(1e-6);
    Some(
        COLUMNS
            .iter()
            .map(|(_, _, idx)| {
                packets(&row.counters, *idx).saturating_sub(packets(&before.counters, *idx)) as f64
                    / secs
            })
            .collect(),
    )
}

fn to_json(snap: &Snapshot, prev: Option<&Snapshot>) -> Value {
    let atts: Vec<Value> = snap
        .rows
        .iter()
        .map(|row| {
            let mut counters = serde_json::Map::new();
            for (_, key, idx) in COLUMNS {
                counters.insert(key.to_string(), json!({"packets": packets(&row.counters, *idx), "bytes": bytes(&row.counters, *idx)}));
            }
            counters.insert("passedOther".into(), json!({"packets": passed_other(&row.counters)}));
            let mut v = json!({
                "network": row.rec.network,
                "containerID": row.rec.container_id,
                "ifname": row.rec.ifname,
                "hostVeth": row.rec.host_ifname,
                "hostIfindex": row.rec.host_ifindex,
                "podMac": row.rec.pod_mac,
                "ips": row.rec.ips,
                "egress": row.rec.egress.as_str(),
                "inDatapath": row.counters.is_some(),
                "counters": counters,
                "hiddenDrops": row.hidden.map(|h| json!({
                    "xdpXmitErrors": h.xdp_xmit_errors,
                    "rxDrops": h.rx_drops,
                    "xdpDrops": h.xdp_drops,
                    "xdpTxErrors": h.xdp_tx_errors,
                })),
            });
            if let Some(r) = rates(prev, snap, row) {
                let pps: serde_json::Map<String, Value> = COLUMNS.iter().zip(r).map(|((_, k, _), v)| (k.to_string(), json!(v))).collect();
                v["pps"] = Value::Object(pps);
            }
            v
        })
        .collect();
    let uplinks: Vec<Value> = snap
        .uplinks
        .iter()
        .map(|(name, root, c)| {
            json!({"uplink": name, "bpfRoot": root,
                   "redirectedToPods": packets(c, CounterIdx::TxPod), "passedToStack": packets(c, CounterIdx::Pass),
                   "passedNatReturn": packets(c, CounterIdx::PassNatReturn),
                   "noPodDrops": packets(c, CounterIdx::DropNoPod)})
        })
        .collect();
    json!({ "attachments": atts, "uplinks": uplinks })
}

fn print_table(snap: &Snapshot, prev: Option<&Snapshot>) {
    let mut header = format!(
        "{:<10} {:<16} {:<6} {:<16} {:<4}",
        "NETWORK", "CONTAINER", "IF", "HOST-VETH", "EGR"
    );
    for (col, _, _) in COLUMNS {
        header.push_str(&format!(" {col:>11}"));
    }
    header.push_str(&format!(" {:>10}", "HIDDEN-DROP"));
    println!("{header}");
    for row in &snap.rows {
        let mut line = format!(
            "{:<10} {:<16} {:<6} {:<16} {:<4}",
            trunc(&row.rec.network, 10),
            trunc(&row.rec.container_id, 16),
            row.rec.ifname,
            row.rec.host_ifname,
            row.rec.egress.as_str()
        );
        let r = rates(prev, snap, row);
        for (i, (_, _, idx)) in COLUMNS.iter().enumerate() {
            match &r {
                Some(r) => line.push_str(&format!(" {:>7.0}pps", r[i])),
                None => line.push_str(&format!(" {:>11}", packets(&row.counters, *idx))),
            }
        }
        let hidden = row.hidden.map_or("-".to_string(), |h| {
            (h.xdp_xmit_errors + h.rx_drops + h.xdp_tx_errors).to_string()
        });
        line.push_str(&format!(" {hidden:>10}"));
        if row.counters.is_none() {
            line.push_str("  (not in the datapath maps)");
        }
        println!("{line}");
    }
    for (name, _, c) in &snap.uplinks {
        println!(
            "uplink {name}: {} frames redirected to pods, {} passed to the node's stack ({} of them NAT returns to pods); {} dropped on host veths without a pod",
            packets(c, CounterIdx::TxPod),
            packets(c, CounterIdx::Pass),
            packets(c, CounterIdx::PassNatReturn),
            packets(c, CounterIdx::DropNoPod)
        );
    }
    if prev.is_none() {
        println!("(packet totals; --watch SECS shows rates; HIDDEN-DROP = host veth xdp_xmit_errors (frames redirected into the pod that its ring refused) + rx ring drops + XDP_TX errors)");
    }
}

fn trunc(s: &str, n: usize) -> &str {
    &s[..s.len().min(n)]
}

pub fn run(args: &StatsArgs) -> Result<()> {
    let mut prev = snapshot(args)?;
    let Some(interval) = args.watch else {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&to_json(&prev, None))?);
        } else {
            print_table(&prev, None);
        }
        return Ok(());
    };
    let mut n = 0;
    loop {
        std::thread::sleep(interval);
        let now = snapshot(args)?;
        if args.json {
            println!("{}", serde_json::to_string(&to_json(&now, Some(&prev)))?);
        } else {
            println!();
            print_table(&now, Some(&prev));
        }
        prev = now;
        n += 1;
        if args.count.is_some_and(|c| n >= c) {
            return Ok(());
        }
    }
}
