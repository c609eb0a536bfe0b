//! What `veth-xdp stats` shows and the node agent's /metrics serves, read
//! once: every attachment record with its datapath counters (per-CPU
//! counters summed) and the drops its host veth hides, and each uplink's.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::bpf::types::CounterIdx;
use crate::bpf::{self, BpfPaths, Maps, PodCounters};
use crate::ethtool_stats::{driver_stats, veth_hidden_drops, HiddenDrops};
use crate::record::{self, Record, Store};

/// PASS minus the frames passed for a known reason.
pub fn passed_other(c: &Option<PodCounters>) -> u64 {
    let reasons = [
        CounterIdx::PassNode,
        CounterIdx::PassService,
        CounterIdx::PassNatReturn,
    ];
    let known: u64 = reasons.iter().map(|i| packets(c, *i)).sum();
    packets(c, CounterIdx::Pass).saturating_sub(known)
}

/// One attachment: its record, its datapath counters (None: not in the
/// maps), the drops its host veth hides.
pub struct Row {
    pub rec: Record,
    pub counters: Option<PodCounters>,
    pub hidden: Option<HiddenDrops>,
}

/// Every attachment of a state dir, and each uplink (name, pin root, counters).
pub struct Snapshot {
    pub rows: Vec<Row>,
    pub uplinks: Vec<(String, String, Option<PodCounters>)>,
    pub at: Instant,
}

fn records(state_dir: &Path) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for net in record::all_networks(state_dir) {
        out.extend(Store::new(state_dir, &net).list()?);
    }
    Ok(out)
}

/// Every counter under one pin root, read once and keyed by host ifindex
/// (0 = the uplink); empty where the datapath is not (or no longer) set up.
fn counters_by_ifindex(bpf_root: &str) -> HashMap<u32, PodCounters> {
    Maps::open(&BpfPaths::new(bpf_root))
        .and_then(|maps| maps.read_counters())
        .map(|all| all.into_iter().map(|c| (c.ifindex, c)).collect())
        .unwrap_or_default()
}

/// Reads every record under `state_dir` and the counters of each (the same
/// numbers `veth-xdp stats` prints and the agent's /metrics serves).
pub fn collect(state_dir: &Path) -> Result<Snapshot> {
    let recs = records(state_dir)?;
    let mut counters: HashMap<String, HashMap<u32, PodCounters>> = HashMap::new();
    let mut uplink_seen = BTreeSet::new();
    let mut uplinks = Vec::new();
    let mut rows = Vec::new();
    for rec in recs {
        let by_ifindex = counters
            .entry(rec.bpf_root.clone())
            .or_insert_with(|| counters_by_ifindex(&rec.bpf_root));
        let pod = by_ifindex.get(&rec.host_ifindex).copied();
        if uplink_seen.insert((rec.bpf_root.clone(), rec.uplink.clone())) {
            let up = by_ifindex.get(&bpf::types::UPLINK_KEY).copied();
            uplinks.push((rec.uplink.clone(), rec.bpf_root.clone(), up));
        }
        let hidden = driver_stats(&rec.host_ifname)
            .ok()
            .map(|s| veth_hidden_drops(&s));
        rows.push(Row {
            rec,
            counters: pod,
            hidden,
        });
    }
    Ok(Snapshot {
        rows,
        uplinks,
        at: Instant::now(),
    })
}

pub fn packets(c: &Option<PodCounters>, idx: CounterIdx) -> u64 {
    c.map_or(0, |c| c.packets(idx))
}

pub fn bytes(c: &Option<PodCounters>, idx: CounterIdx) -> u64 {
    c.map_or(0, |c| c.get(idx).bytes)
}
