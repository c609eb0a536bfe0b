//! Pod entries and their slots. A pod is in five maps: its record by host
//! ifindex (`vx_pod_if`), by MAC, by each IPv4/IPv6 address, and its host
//! veth in the devmap `vx_redirect`.
//!
//! Slots: each pod gets a small integer `1..=max_pods` (slot 0 is the uplink),
//! its index in the per-CPU array `vx_counters`, so the fast path counts with
//! array lookups (inlined by the verifier) instead of per-CPU hash lookups.
//! The slots in use are the `slot` fields of the `vx_pod_if` values;
//! allocation and release happen under an exclusive flock on the pin
//! directory of the maps, since pods are added and removed in parallel.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use aya::maps::{HashMap, MapData, MapError};
use aya::Pod;

use super::error::{Error, Result};
use super::maps::{dump, is_not_found, remove_quiet, Maps};
use super::spec::*;
use super::types::*;

/// A pod's datapath entry: what the maps must know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDatapath {
    pub host_ifindex: u32,
    pub host_mac: [u8; 6],
    pub pod_mac: [u8; 6],
    pub ipv4s: Vec<Ipv4Addr>,
    pub ipv6s: Vec<Ipv6Addr>,
    /// what the pod may send beyond the default: `POD_ALLOW_ROUTER`,
    /// `POD_ALLOW_ETHERTYPES`
    pub allow: u32,
}

impl PodDatapath {
    fn record(&self, slot: u32) -> VxPod {
        VxPod {
            host_ifindex: self.host_ifindex,
            slot,
            ipv4: self.ipv4s.first().map(v4_key).unwrap_or(0),
            host_mac: self.host_mac,
            pod_mac: self.pod_mac,
            flags: self.allow,
        }
    }
}

/// The key of an IPv4 address in the maps (network order, as the programs read it).
pub(super) fn v4_key(ip: &Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

fn v6_key(ip: &Ipv6Addr) -> VxIn6Key {
    VxIn6Key { addr: ip.octets() }
}

impl Maps {
    /// Inserts (or replaces) a pod's entries in every map. A new pod gets the
    /// lowest free slot (counters zeroed); a re-inserted pod keeps its slot and
    /// counters. The pod MAC goes last, so the wire cannot reach the pod before
    /// its redirect target exists. On failure everything of this pod is removed
    /// again. No free slot or a full map gives [`Error::Full`]; an address or
    /// MAC of another pod gives [`Error::InUse`].
    pub fn insert_pod(&mut self, pod: &PodDatapath) -> Result<()> {
        let _lock = self.lock_slots()?;
        self.check_not_in_use(pod)?;
        let result = self
            .claim_slot(pod.host_ifindex)
            .and_then(|slot| self.write_pod(pod, slot));
        if result.is_err() {
            let _ = self.remove_pod_locked(pod.host_ifindex);
        }
        result
    }

    /// Removes everything of the pod on `host_ifindex`: MAC and address entries,
    /// devmap entry, counters (zeroed) and, last, its record, which frees its
    /// slot. Idempotent; also cleans up a half-inserted pod.
    pub fn remove_pod(&mut self, host_ifindex: u32) -> Result<()> {
        let _lock = self.lock_slots()?;
        self.remove_pod_locked(host_ifindex)
    }

    /// Removes the pod whose MAC is `pod_mac`, wherever its host veth was:
    /// for DEL when neither the record nor the veth (gone with the netns)
    /// says which ifindex the pod had. Idempotent.
    pub fn remove_pod_by_mac(&mut self, pod_mac: [u8; 6]) -> Result<()> {
        let _lock = self.lock_slots()?;
        match self.pod_mac.get(&VxMacKey::new(pod_mac), 0) {
            Ok(pod) => self.remove_pod_locked(pod.host_ifindex),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(error) => Err(Error::Map {
                op: "look up a pod MAC (bpf_map_lookup_elem) in",
                map: MAP_POD_MAC,
                error: Box::new(error),
            }),
        }
    }

    /// The pod record of `host_ifindex`, if the maps hold one.
    pub fn pod_entry(&self, host_ifindex: u32) -> Result<Option<VxPod>> {
        match self.pod_if.get(&host_ifindex, 0) {
            Ok(p) => Ok(Some(p)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(error) => Err(Error::Map {
                op: "look up a host ifindex (bpf_map_lookup_elem) in",
                map: MAP_POD_IF,
                error: Box::new(error),
            }),
        }
    }

    pub fn pod_present(&self, host_ifindex: u32) -> Result<bool> {
        Ok(self.pod_entry(host_ifindex)?.is_some())
    }

    /// The pod's slot: its current one, else the lowest free one with its
    /// counters zeroed. The caller holds the slot lock.
    fn claim_slot(&mut self, host_ifindex: u32) -> Result<u32> {
        if let Some(rec) = self.pod_entry(host_ifindex)? {
            return Ok(rec.slot);
        }
        let pods = dump(&self.pod_if, MAP_POD_IF)?
            .into_iter()
            .map(|(_, pod)| pod);
        let max_pods = self.max_pods()?;
        let slot = lowest_free(pods, max_pods).ok_or(Error::Full { max_pods })?;
        self.zero_counters(slot)?;
        Ok(slot)
    }

    fn check_not_in_use(&self, pod: &PodDatapath) -> Result<()> {
        let me = pod.host_ifindex;
        let owner_of = |r: Result<VxPod, MapError>, map, what: String| -> Result<()> {
            match r {
                Ok(p) if p.host_ifindex != me => Err(Error::InUse {
                    what,
                    owner: p.host_ifindex,
                }),
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(error) => Err(Error::Map {
                    op: "look up (bpf_map_lookup_elem) in",
                    map,
                    error: Box::new(error),
                }),
            }
        };
        owner_of(
            self.pod_mac.get(&VxMacKey::new(pod.pod_mac), 0),
            MAP_POD_MAC,
            format!("MAC {}", fmt_mac(&pod.pod_mac)),
        )?;
        for ip in &pod.ipv4s {
            owner_of(
                self.pod_v4.get(&v4_key(ip), 0),
                MAP_POD_V4,
                format!("address {ip}"),
            )?;
        }
        for ip in &pod.ipv6s {
            owner_of(
                self.pod_v6.get(&v6_key(ip), 0),
                MAP_POD_V6,
                format!("address {ip}"),
            )?;
        }
        Ok(())
    }

    /// Writes the pod's entries; its record in `vx_pod_if` first, since that is
    /// what marks `slot` as taken (and what remove_pod finds the slot by).
    fn write_pod(&mut self, pod: &PodDatapath, slot: u32) -> Result<()> {
        let rec = pod.record(slot);
        let me = pod.host_ifindex;
        self.pod_if
            .insert(me, rec, 0)
            .map_err(|e| self.update_error(MAP_POD_IF, e))?;
        self.add_redirect_target(me)?;

        let keep4: HashSet<u32> = pod.ipv4s.iter().map(v4_key).collect();
        sweep_pod(&mut self.pod_v4, MAP_POD_V4, me, &keep4)?;
        for key in keep4 {
            self.pod_v4
                .insert(key, rec, 0)
                .map_err(|e| self.update_error(MAP_POD_V4, e))?;
        }
        let keep6: HashSet<VxIn6Key> = pod.ipv6s.iter().map(v6_key).collect();
        sweep_pod(&mut self.pod_v6, MAP_POD_V6, me, &keep6)?;
        for key in keep6 {
            self.pod_v6
                .insert(key, rec, 0)
                .map_err(|e| self.update_error(MAP_POD_V6, e))?;
        }
        let mac_key = VxMacKey::new(pod.pod_mac);
        sweep_pod(
            &mut self.pod_mac,
            MAP_POD_MAC,
            me,
            &HashSet::from([mac_key]),
        )?;
        self.pod_mac
            .insert(mac_key, rec, 0)
            .map_err(|e| self.update_error(MAP_POD_MAC, e))
    }

    fn remove_pod_locked(&mut self, host_ifindex: u32) -> Result<()> {
        let me = host_ifindex;
        let rec = self.pod_entry(me)?;
        sweep_pod(&mut self.pod_mac, MAP_POD_MAC, me, &HashSet::new())?;
        sweep_pod(&mut self.pod_v4, MAP_POD_V4, me, &HashSet::new())?;
        sweep_pod(&mut self.pod_v6, MAP_POD_V6, me, &HashSet::new())?;
        self.remove_redirect_target(me)?;
        let Some(rec) = rec else {
            return Ok(());
        };
        self.zero_counters(rec.slot)?;
        remove_quiet(&mut self.pod_if, &me, MAP_POD_IF)
    }
}

/// Removes every entry whose pod is on `ifindex`, except keys in `keep`.
fn sweep_pod<K: Pod + Eq + std::hash::Hash>(
    map: &mut HashMap<MapData, K, VxPod>,
    name: &'static str,
    ifindex: u32,
    keep: &HashSet<K>,
) -> Result<()> {
    let stale: Vec<K> = dump(map, name)?
        .into_iter()
        .filter(|(k, pod)| pod.host_ifindex == ifindex && !keep.contains(k))
        .map(|(k, _)| k)
        .collect();
    for key in stale {
        remove_quiet(map, &key, name)?;
    }
    Ok(())
}

/// The lowest slot in `1..=max_pods` no pod uses, or None if all are taken.
fn lowest_free(pods: impl IntoIterator<Item = VxPod>, max_pods: u32) -> Option<u32> {
    let used: HashSet<u32> = pods.into_iter().map(|p| p.slot).collect();
    (1..=max_pods).find(|s| !used.contains(s))
}

fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(slot: u32) -> VxPod {
        VxPod {
            slot,
            ..VxPod::default()
        }
    }

    #[test]
    fn lowest_free_fills_holes_first_and_stops_at_max() {
        assert_eq!(lowest_free([], 2), Some(1));
        assert_eq!(lowest_free([pod(1), pod(3)], 4), Some(2));
        assert_eq!(lowest_free([pod(2), pod(1)], 3), Some(3));
        assert_eq!(lowest_free([pod(2), pod(1)], 2), None);
        assert_eq!(lowest_free([], 0), None);
    }
}
