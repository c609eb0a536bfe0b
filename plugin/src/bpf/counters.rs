//! Per-CPU counters: slot 0 is the uplink, each pod has its slot (`pods.rs`);
//! read back summed over CPUs and keyed by host ifindex.

use aya::maps::{MapData, MapError, PerCpuArray, PerCpuValues};

use super::error::{Error, Result};
use super::maps::Maps;
use super::spec::{MAP_COUNTERS, MAP_POD_IF};
use super::types::*;

/// One key's counters summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodCounters {
    /// Host veth ifindex of the pod, or [`UPLINK_KEY`] (0) for the uplink.
    pub ifindex: u32,
    pub counts: VxCounters,
}

impl PodCounters {
    pub fn get(&self, idx: CounterIdx) -> VxCount {
        self.counts.c[idx as usize]
    }

    pub fn packets(&self, idx: CounterIdx) -> u64 {
        self.get(idx).packets
    }

    pub fn is_uplink(&self) -> bool {
        self.ifindex == UPLINK_KEY
    }
}

impl Maps {
    /// Counters of every pod (by host ifindex) and the uplink ([`UPLINK_KEY`]),
    /// summed over CPUs, sorted by ifindex.
    pub fn read_counters(&self) -> Result<Vec<PodCounters>> {
        let mut out = vec![read_slot(&self.counters, UPLINK_KEY, UPLINK_SLOT)?];
        for entry in self.pod_if.iter() {
            let (ifindex, pod) = entry.map_err(|error| Error::Map {
                op: "iterate (bpf_map_lookup_elem)",
                map: MAP_POD_IF,
                error: Box::new(error),
            })?;
            out.push(read_slot(&self.counters, ifindex, pod.slot)?);
        }
        out.sort_by_key(|c| c.ifindex);
        Ok(out)
    }

    /// Counters of one key: a pod's host veth ifindex (None if no such pod), or
    /// [`UPLINK_KEY`].
    pub fn counters_of(&self, key: u32) -> Result<Option<PodCounters>> {
        let slot = if key == UPLINK_KEY {
            UPLINK_SLOT
        } else {
            match self.pod_entry(key)? {
                Some(pod) => pod.slot,
                None => return Ok(None),
            }
        };
        read_slot(&self.counters, key, slot).map(Some)
    }

    /// Zeroes the counters of `slot` on every CPU.
    pub(super) fn zero_counters(&mut self, slot: u32) -> Result<()> {
        let cpus = aya::util::nr_cpus().map_err(|(path, error)| Error::Cpus { path, error })?;
        let zero = PerCpuValues::try_from(vec![VxCounters::default(); cpus]).map_err(|error| {
            Error::Map {
                op: "make a per-CPU zero value for",
                map: MAP_COUNTERS,
                error: Box::new(MapError::IoError(error)),
            }
        })?;
        self.counters
            .set(slot, zero, 0)
            .map_err(|error| Error::Map {
                op: "zero a slot (bpf_map_update_elem) of",
                map: MAP_COUNTERS,
                error: Box::new(error),
            })
    }
}

fn sum_cpus(ifindex: u32, values: &PerCpuValues<VxCounters>) -> PodCounters {
    let mut out = PodCounters {
        ifindex,
        counts: VxCounters::default(),
    };
    for cpu in values.iter() {
        for (acc, c) in out.counts.c.iter_mut().zip(cpu.c.iter()) {
            acc.packets += c.packets;
            acc.bytes += c.bytes;
        }
    }
    out
}

fn read_slot(
    map: &PerCpuArray<MapData, VxCounters>,
    ifindex: u32,
    slot: u32,
) -> Result<PodCounters> {
    let values = map.get(&slot, 0).map_err(|error| Error::Map {
        op: "read a slot (bpf_map_lookup_elem) of",
        map: MAP_COUNTERS,
        error: Box::new(error),
    })?;
    Ok(sum_cpus(ifindex, &values))
}
