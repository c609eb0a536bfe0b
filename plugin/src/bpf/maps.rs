//! Typed access to the pinned maps: pod entries, node addresses, counters,
//! config. Every handle is opened from its pin (no object load, no verifier).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Context, Result};
use aya::maps::xdp::XdpMapError;
use aya::maps::{
    Array, DevMapHash, HashMap, Map, MapData, MapError, MapType, PerCpuArray, PerCpuValues,
};
use aya::Pod;

use super::paths::BpfPaths;
use super::slots::{self, SlotLock};
use super::types::*;

pub const MAP_POD_MAC: &str = "vx_pod_mac";
pub const MAP_POD_V4: &str = "vx_pod_v4";
pub const MAP_POD_V6: &str = "vx_pod_v6";
pub const MAP_POD_IF: &str = "vx_pod_if";
pub const MAP_REDIRECT: &str = "vx_redirect";
pub const MAP_NODE_V4: &str = "vx_node_v4";
pub const MAP_NODE_V6: &str = "vx_node_v6";
pub const MAP_COUNTERS: &str = "vx_counters";
pub const MAP_CONFIG: &str = "vx_config";

/// What a pinned map must look like to be reused (aya does not check).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapSpec {
    pub name: &'static str,
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
}

const fn spec(
    name: &'static str,
    map_type: MapType,
    key_size: usize,
    value_size: usize,
) -> MapSpec {
    MapSpec {
        name,
        map_type,
        key_size: key_size as u32,
        value_size: value_size as u32,
    }
}

/// Every map of the object, as vx_maps.h defines it.
pub const MAP_SPECS: [MapSpec; 9] = [
    spec(
        MAP_POD_MAC,
        MapType::Hash,
        size_of::<VxMacKey>(),
        size_of::<VxPod>(),
    ),
    spec(MAP_POD_V4, MapType::Hash, 4, size_of::<VxPod>()),
    spec(
        MAP_POD_V6,
        MapType::Hash,
        size_of::<VxIn6Key>(),
        size_of::<VxPod>(),
    ),
    spec(MAP_POD_IF, MapType::Hash, 4, size_of::<VxPod>()),
    spec(
        MAP_REDIRECT,
        MapType::DevMapHash,
        4,
        DEVMAP_VAL_SIZE as usize,
    ),
    spec(MAP_NODE_V4, MapType::Hash, 4, size_of::<VxNodeAddr>()),
    spec(
        MAP_NODE_V6,
        MapType::Hash,
        size_of::<VxIn6Key>(),
        size_of::<VxNodeAddr>(),
    ),
    spec(
        MAP_COUNTERS,
        MapType::PerCpuArray,
        4,
        size_of::<VxCounters>(),
    ),
    spec(MAP_CONFIG, MapType::Array, 4, size_of::<VxConfig>()),
];

/// `max_entries` of each map for a node sized for `max_pods` pods.
pub fn max_entries(name: &str, max_pods: u32) -> u32 {
    match name {
        MAP_POD_MAC | MAP_POD_IF => max_pods,
        MAP_POD_V4 | MAP_POD_V6 => max_pods.saturating_mul(ADDRS_PER_POD),
        MAP_REDIRECT | MAP_COUNTERS => max_pods.saturating_add(1),
        MAP_NODE_V4 | MAP_NODE_V6 => MAX_NODE_ADDRS,
        _ => 1,
    }
}

/// Typed errors callers may want to match (downcast from anyhow).
#[derive(Debug, thiserror::Error)]
pub enum PodMapError {
    #[error("pod maps full (max {max_pods} pods): raise maxPods and re-create the node maps")]
    Full { max_pods: u32 },
    #[error("{what} already belongs to the pod on host ifindex {owner}")]
    InUse { what: String, owner: u32 },
}

/// Errno of a failed map syscall, if that is what the error is.
fn map_errno(e: &MapError) -> Option<i32> {
    match e {
        MapError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    }
}

fn is_not_found(e: &MapError) -> bool {
    matches!(e, MapError::KeyNotFound) || map_errno(e) == Some(libc::ENOENT)
}

/// Opens the map pinned under `<maps>/<name>`.
pub fn open_map(paths: &BpfPaths, name: &str) -> Result<Map> {
    let path = paths.map(name);
    let data = MapData::from_pin(&path).with_context(|| {
        format!(
            "open pinned map {} (bpf_obj_get); is the node set up?",
            path.display()
        )
    })?;
    Map::from_map_data(data).with_context(|| format!("map {}", path.display()))
}

/// Every entry of a pinned hash map, read in batches (see [`sys::hash_dump`]).
fn dump<K: Pod, V: Pod>(paths: &BpfPaths, name: &str) -> Result<Vec<(K, V)>> {
    let path = paths.map(name);
    let fd = super::sys::obj_get(&path)
        .with_context(|| format!("open pinned map {} (BPF_OBJ_GET)", path.display()))?;
    let raw = super::sys::hash_dump(
        std::os::fd::AsFd::as_fd(&fd),
        size_of::<K>(),
        size_of::<V>(),
    )
    .with_context(|| format!("read map {name} (BPF_MAP_LOOKUP_BATCH)"))?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            // SAFETY: K and V are Pod (plain old data, any bit pattern valid) and
            // the chunks have exactly their sizes; read_unaligned copes with alignment.
            unsafe {
                (
                    std::ptr::read_unaligned(k.as_ptr().cast::<K>()),
                    std::ptr::read_unaligned(v.as_ptr().cast::<V>()),
                )
            }
        })
        .collect())
}

fn hash<K: Pod, V: Pod>(paths: &BpfPaths, name: &str) -> Result<HashMap<MapData, K, V>> {
    HashMap::try_from(open_map(paths, name)?).with_context(|| format!("map {name} as hash"))
}

fn devmap(paths: &BpfPaths) -> Result<DevMapHash<MapData>> {
    DevMapHash::try_from(open_map(paths, MAP_REDIRECT)?).context("map vx_redirect as devmap hash")
}

fn counters_map(paths: &BpfPaths) -> Result<PerCpuArray<MapData, VxCounters>> {
    PerCpuArray::try_from(open_map(paths, MAP_COUNTERS)?)
        .context("map vx_counters as per-CPU array")
}

fn config_map(paths: &BpfPaths) -> Result<Array<MapData, VxConfig>> {
    Array::try_from(open_map(paths, MAP_CONFIG)?).context("map vx_config as array")
}

/// Removes `key`; a missing key is fine.
fn remove_quiet<K: Pod, V: Pod>(
    map: &mut HashMap<MapData, K, V>,
    key: &K,
    name: &str,
) -> Result<()> {
    match map.remove(key) {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("delete from map {name} (bpf_map_delete_elem)")),
    }
}

/// Removes every entry whose pod is on `ifindex`, except keys in `keep`.
fn sweep_pod<K: Pod + Eq + std::hash::Hash>(
    paths: &BpfPaths,
    map: &mut HashMap<MapData, K, VxPod>,
    name: &str,
    ifindex: u32,
    keep: &HashSet<K>,
) -> Result<()> {
    let stale: Vec<K> = dump::<K, VxPod>(paths, name)?
        .into_iter()
        .filter(|(k, pod)| pod.host_ifindex == ifindex && !keep.contains(k))
        .map(|(k, _)| k)
        .collect();
    for key in stale {
        remove_quiet(map, &key, name)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- node config

pub fn read_config(paths: &BpfPaths) -> Result<VxConfig> {
    config_map(paths)?
        .get(&0, 0)
        .context("read vx_config[0] (bpf_map_lookup_elem)")
}

pub fn write_config(paths: &BpfPaths, cfg: VxConfig) -> Result<()> {
    config_map(paths)?
        .set(0, cfg, 0)
        .context("write vx_config[0] (bpf_map_update_elem)")
}

/// Adds `ifindex` as a redirect target (pod host veth or uplink).
pub fn add_redirect_target(paths: &BpfPaths, ifindex: u32) -> Result<()> {
    match devmap(paths)?.insert(ifindex, ifindex, None, 0) {
        Ok(()) => Ok(()),
        Err(XdpMapError::MapError(e)) if map_errno(&e) == Some(libc::E2BIG) => {
            Err(full_error(paths))
        }
        Err(e) => Err(e).with_context(|| {
            format!("add ifindex {ifindex} to devmap vx_redirect (bpf_map_update_elem)")
        }),
    }
}

pub fn remove_redirect_target(paths: &BpfPaths, ifindex: u32) -> Result<()> {
    match devmap(paths)?.remove(ifindex) {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("delete ifindex {ifindex} from devmap vx_redirect"))
        }
    }
}

/// Zeroes the counters of `slot` on every CPU.
fn zero_counters(paths: &BpfPaths, slot: u32) -> Result<()> {
    let cpus = aya::util::nr_cpus()
        .map_err(|(_, e)| e)
        .context("read possible CPUs")?;
    let zero =
        PerCpuValues::try_from(vec![VxCounters::default(); cpus]).context("per-CPU zero value")?;
    counters_map(paths)?
        .set(slot, zero, 0)
        .with_context(|| format!("zero vx_counters[{slot}] (bpf_map_update_elem)"))
}

fn full_error(paths: &BpfPaths) -> anyhow::Error {
    PodMapError::Full {
        max_pods: pinned_max_pods(paths).unwrap_or(0),
    }
    .into()
}

/// The pod capacity the pinned maps were made for: `vx_pod_if`'s size.
fn pinned_max_pods(paths: &BpfPaths) -> Result<u32> {
    let path = paths.map(MAP_POD_IF);
    let info = aya::maps::MapInfo::from_pin(&path).with_context(|| {
        format!(
            "read info of pinned map {} (BPF_OBJ_GET_INFO_BY_FD)",
            path.display()
        )
    })?;
    Ok(info.max_entries())
}

// ---------------------------------------------------------------- pods

/// A pod's datapath entry: what the maps must know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDatapath {
    pub host_ifindex: u32,
    pub host_mac: [u8; 6],
    pub pod_mac: [u8; 6],
    pub ipv4s: Vec<Ipv4Addr>,
    pub ipv6s: Vec<Ipv6Addr>,
}

impl PodDatapath {
    fn record(&self, slot: u32) -> VxPod {
        VxPod {
            host_ifindex: self.host_ifindex,
            slot,
            ipv4: self.ipv4s.first().map(v4_key).unwrap_or(0),
            host_mac: self.host_mac,
            pod_mac: self.pod_mac,
        }
    }
}

fn v4_key(ip: &Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

fn v6_key(ip: &Ipv6Addr) -> VxIn6Key {
    VxIn6Key { addr: ip.octets() }
}

/// Inserts (or replaces) a pod's entries in every map. A new pod gets the
/// lowest free slot (counters zeroed); a re-inserted pod keeps its slot and
/// counters. The pod MAC goes last, so the wire cannot reach the pod before
/// its redirect target exists. On failure everything of this pod is removed
/// again. No free slot or a full map gives [`PodMapError::Full`]; an address
/// or MAC of another pod gives [`PodMapError::InUse`].
pub fn insert_pod(paths: &BpfPaths, pod: &PodDatapath) -> Result<()> {
    let _lock = SlotLock::acquire(paths)?;
    check_not_in_use(paths, pod)?;
    let result = claim_slot(paths, pod.host_ifindex).and_then(|slot| write_pod(paths, pod, slot));
    if result.is_err() {
        let _ = remove_pod_locked(paths, pod.host_ifindex);
    }
    result
}

/// The pod's slot: its current one, else the lowest free one with its
/// counters zeroed. The caller holds the [`SlotLock`].
fn claim_slot(paths: &BpfPaths, host_ifindex: u32) -> Result<u32> {
    if let Some(rec) = pod_entry(paths, host_ifindex)? {
        return Ok(rec.slot);
    }
    let pods: Vec<VxPod> = dump::<u32, VxPod>(paths, MAP_POD_IF)?
        .into_iter()
        .map(|(_, pod)| pod)
        .collect();
    let max_pods = pinned_max_pods(paths)?;
    let slot = slots::lowest_free(pods, max_pods).ok_or(PodMapError::Full { max_pods })?;
    zero_counters(paths, slot)?;
    Ok(slot)
}

fn check_not_in_use(paths: &BpfPaths, pod: &PodDatapath) -> Result<()> {
    let me = pod.host_ifindex;
    let owner_of = |r: Result<VxPod, MapError>, what: String| -> Result<()> {
        match r {
            Ok(p) if p.host_ifindex != me => Err(PodMapError::InUse {
                what,
                owner: p.host_ifindex,
            }
            .into()),
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e).context(format!("look up {what}")),
        }
    };
    let macs = hash::<VxMacKey, VxPod>(paths, MAP_POD_MAC)?;
    owner_of(
        macs.get(&VxMacKey::new(pod.pod_mac), 0),
        format!("MAC {}", fmt_mac(&pod.pod_mac)),
    )?;
    let v4 = hash::<u32, VxPod>(paths, MAP_POD_V4)?;
    for ip in &pod.ipv4s {
        owner_of(v4.get(&v4_key(ip), 0), format!("address {ip}"))?;
    }
    let v6 = hash::<VxIn6Key, VxPod>(paths, MAP_POD_V6)?;
    for ip in &pod.ipv6s {
        owner_of(v6.get(&v6_key(ip), 0), format!("address {ip}"))?;
    }
    Ok(())
}

fn insert_entry<K: Pod, V: Pod>(
    paths: &BpfPaths,
    map: &mut HashMap<MapData, K, V>,
    name: &str,
    key: K,
    value: V,
) -> Result<()> {
    match map.insert(key, value, 0) {
        Ok(()) => Ok(()),
        Err(e) if map_errno(&e) == Some(libc::E2BIG) => Err(full_error(paths)),
        Err(e) => Err(e).with_context(|| format!("insert into map {name} (bpf_map_update_elem)")),
    }
}

/// Writes the pod's entries; its record in `vx_pod_if` first, since that is
/// what marks `slot` as taken (and what remove_pod finds the slot by).
fn write_pod(paths: &BpfPaths, pod: &PodDatapath, slot: u32) -> Result<()> {
    let rec = pod.record(slot);
    let me = pod.host_ifindex;
    let mut by_if = hash::<u32, VxPod>(paths, MAP_POD_IF)?;
    insert_entry(paths, &mut by_if, MAP_POD_IF, me, rec)?;
    add_redirect_target(paths, me)?;

    let mut v4 = hash::<u32, VxPod>(paths, MAP_POD_V4)?;
    let keep4: HashSet<u32> = pod.ipv4s.iter().map(v4_key).collect();
    sweep_pod(paths, &mut v4, MAP_POD_V4, me, &keep4)?;
    for key in keep4 {
        insert_entry(paths, &mut v4, MAP_POD_V4, key, rec)?;
    }
    let mut v6 = hash::<VxIn6Key, VxPod>(paths, MAP_POD_V6)?;
    let keep6: HashSet<VxIn6Key> = pod.ipv6s.iter().map(v6_key).collect();
    sweep_pod(paths, &mut v6, MAP_POD_V6, me, &keep6)?;
    for key in keep6 {
        insert_entry(paths, &mut v6, MAP_POD_V6, key, rec)?;
    }
    let mut macs = hash::<VxMacKey, VxPod>(paths, MAP_POD_MAC)?;
    let mac_key = VxMacKey::new(pod.pod_mac);
    sweep_pod(paths, &mut macs, MAP_POD_MAC, me, &HashSet::from([mac_key]))?;
    insert_entry(paths, &mut macs, MAP_POD_MAC, mac_key, rec)
}

/// Removes everything of the pod on `host_ifindex`: MAC and address entries,
/// devmap entry, counters (zeroed) and, last, its record, which frees its
/// slot. Idempotent; also cleans up a half-inserted pod. With no pinned maps
/// at all (node never set up or torn down) there is nothing to remove: Ok.
pub fn remove_pod(paths: &BpfPaths, host_ifindex: u32) -> Result<()> {
    if !paths.map(MAP_POD_IF).exists() {
        return Ok(());
    }
    let _lock = SlotLock::acquire(paths)?;
    remove_pod_locked(paths, host_ifindex)
}

fn remove_pod_locked(paths: &BpfPaths, host_ifindex: u32) -> Result<()> {
    let me = host_ifindex;
    let rec = pod_entry(paths, me)?;
    let mut macs = hash::<VxMacKey, VxPod>(paths, MAP_POD_MAC)?;
    sweep_pod(paths, &mut macs, MAP_POD_MAC, me, &HashSet::new())?;
    let mut v4 = hash::<u32, VxPod>(paths, MAP_POD_V4)?;
    sweep_pod(paths, &mut v4, MAP_POD_V4, me, &HashSet::new())?;
    let mut v6 = hash::<VxIn6Key, VxPod>(paths, MAP_POD_V6)?;
    sweep_pod(paths, &mut v6, MAP_POD_V6, me, &HashSet::new())?;
    remove_redirect_target(paths, me)?;
    let Some(rec) = rec else {
        return Ok(());
    };
    zero_counters(paths, rec.slot)?;
    let mut by_if = hash::<u32, VxPod>(paths, MAP_POD_IF)?;
    remove_quiet(&mut by_if, &me, MAP_POD_IF)
}

/// The pod record of `host_ifindex`, if the maps hold one.
pub fn pod_entry(paths: &BpfPaths, host_ifindex: u32) -> Result<Option<VxPod>> {
    match hash::<u32, VxPod>(paths, MAP_POD_IF)?.get(&host_ifindex, 0) {
        Ok(p) => Ok(Some(p)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("look up vx_pod_if[{host_ifindex}]")),
    }
}

pub fn pod_present(paths: &BpfPaths, host_ifindex: u32) -> Result<bool> {
    Ok(pod_entry(paths, host_ifindex)?.is_some())
}

// ---------------------------------------------------------------- node addresses

/// Replaces the set of node addresses (ARP/NS from pods for them → node).
pub fn set_node_addrs(paths: &BpfPaths, addrs: &[IpAddr]) -> Result<()> {
    let want4: HashSet<u32> = addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(v4) => Some(v4_key(v4)),
            IpAddr::V6(_) => None,
        })
        .collect();
    let want6: HashSet<[u8; 16]> = addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V6(v6) => Some(v6.octets()),
            IpAddr::V4(_) => None,
        })
        .collect();

    let mut v4 = hash::<u32, VxNodeAddr>(paths, MAP_NODE_V4)?;
    let old4: Vec<u32> = v4
        .keys()
        .filter_map(|k| k.ok())
        .filter(|k| !want4.contains(k))
        .collect();
    for k in old4 {
        remove_quiet(&mut v4, &k, MAP_NODE_V4)?;
    }
    for k in want4 {
        v4.insert(k, VxNodeAddr::default(), 0)
            .context("insert into vx_node_v4 (bpf_map_update_elem)")?;
    }
    let mut v6 = hash::<VxIn6Key, VxNodeAddr>(paths, MAP_NODE_V6)?;
    let old6: Vec<VxIn6Key> = v6
        .keys()
        .filter_map(|k| k.ok())
        .filter(|k| !want6.contains(&k.addr))
        .collect();
    for k in old6 {
        remove_quiet(&mut v6, &k, MAP_NODE_V6)?;
    }
    for addr in want6 {
        v6.insert(VxIn6Key { addr }, VxNodeAddr::default(), 0)
            .context("insert into vx_node_v6 (bpf_map_update_elem)")?;
    }
    Ok(())
}

// ---------------------------------------------------------------- counters

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
    let values = map
        .get(&slot, 0)
        .with_context(|| format!("read vx_counters[{slot}] (bpf_map_lookup_elem)"))?;
    Ok(sum_cpus(ifindex, &values))
}

/// Counters of every pod (by host ifindex) and the uplink ([`UPLINK_KEY`]),
/// summed over CPUs, sorted by ifindex.
pub fn read_counters(paths: &BpfPaths) -> Result<Vec<PodCounters>> {
    let map = counters_map(paths)?;
    let mut out = vec![read_slot(&map, UPLINK_KEY, UPLINK_SLOT)?];
    for entry in hash::<u32, VxPod>(paths, MAP_POD_IF)?.iter() {
        let (ifindex, pod) = entry.context("iterate vx_pod_if (bpf_map_lookup_elem)")?;
        out.push(read_slot(&map, ifindex, pod.slot)?);
    }
    out.sort_by_key(|c| c.ifindex);
    Ok(out)
}

/// Counters of one key: a pod's host veth ifindex (None if no such pod), or
/// [`UPLINK_KEY`].
pub fn counters_of(paths: &BpfPaths, key: u32) -> Result<Option<PodCounters>> {
    let slot = if key == UPLINK_KEY {
        UPLINK_SLOT
    } else {
        match pod_entry(paths, key)? {
            Some(pod) => pod.slot,
            None => return Ok(None),
        }
    };
    read_slot(&counters_map(paths)?, key, slot).map(Some)
}

// ---------------------------------------------------------------- compatibility

/// Compares the map pinned at `<maps>/<spec.name>` with `spec`. Ok(false) if
/// nothing is pinned there, an error naming the difference if incompatible.
pub fn check_pinned(paths: &BpfPaths, spec: &MapSpec) -> Result<bool> {
    let path = paths.map(spec.name);
    if !path.exists() {
        return Ok(false);
    }
    let info = aya::maps::MapInfo::from_pin(&path).with_context(|| {
        format!(
            "read info of pinned map {} (BPF_OBJ_GET_INFO_BY_FD)",
            path.display()
        )
    })?;
    let map_type = info
        .map_type()
        .with_context(|| format!("type of pinned map {}", path.display()))?;
    let found = (map_type, info.key_size(), info.value_size());
    let want = (spec.map_type, spec.key_size, spec.value_size);
    if found != want {
        bail!(
            "pinned map {} is incompatible with this build: found type/key/value {:?}/{}/{}, \
             expected {:?}/{}/{}; remove the pins (veth-xdp teardown) or use another pin root",
            path.display(),
            found.0,
            found.1,
            found.2,
            want.0,
            want.1,
            want.2
        );
    }
    Ok(true)
}

pub(crate) fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
