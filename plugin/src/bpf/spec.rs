//! The map ABI: every map of the object as `vx_maps.h` defines it, its size
//! for a node of `max_pods` pods, and the check that refuses a pinned map of
//! another layout (aya reuses a pinned map by name without looking at it).

use aya::maps::{MapInfo, MapType};

use super::error::{Error, Result};
use super::paths::BpfPaths;
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
pub const MAP_SERVICES: &str = "vx_services";
pub const MAP_FLOWS: &str = "vx_flows";

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
pub const MAP_SPECS: [MapSpec; 11] = [
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
    spec(MAP_SERVICES, MapType::Array, 4, size_of::<VxServices>()),
    spec(
        MAP_FLOWS,
        MapType::LruHash,
        size_of::<VxFlowKey>(),
        size_of::<VxFlow>(),
    ),
];

/// `max_entries` of each map for a node sized for `max_pods` pods.
pub fn max_entries(name: &str, max_pods: u32) -> u32 {
    match name {
        MAP_POD_MAC | MAP_POD_IF => max_pods,
        MAP_POD_V4 | MAP_POD_V6 => max_pods.saturating_mul(ADDRS_PER_POD),
        MAP_REDIRECT | MAP_COUNTERS => max_pods.saturating_add(1),
        MAP_NODE_V4 | MAP_NODE_V6 => MAX_NODE_ADDRS,
        MAP_FLOWS => MAX_FLOWS,
        _ => 1,
    }
}

/// Compares the map pinned at `<maps>/<spec.name>` with `spec`. Ok(false) if
/// nothing is pinned there, [`Error::Incompatible`] if it differs.
pub fn check_pinned(paths: &BpfPaths, spec: &MapSpec) -> Result<bool> {
    let path = paths.map(spec.name);
    if !path.exists() {
        return Ok(false);
    }
    let pinned_map_err = |op, error| Error::PinnedMap {
        op,
        path: path.clone(),
        error: Box::new(error),
    };
    let info = MapInfo::from_pin(&path)
        .map_err(|e| pinned_map_err("read info (BPF_OBJ_GET_INFO_BY_FD) of pinned map", e))?;
    let map_type = info
        .map_type()
        .map_err(|e| pinned_map_err("type of pinned map", e))?;
    let found = (map_type, info.key_size(), info.value_size());
    let expected = (spec.map_type, spec.key_size, spec.value_size);
    if found != expected {
        return Err(Error::Incompatible {
            path,
            found,
            expected,
        });
    }
    Ok(true)
}
