//! The pinned maps, opened once into typed handles. [`Maps::open`] costs one
//! BPF_OBJ_GET (and aya's info read) per map; every operation after that is a
//! method on the open handles: pod entries and slots (`pods.rs`), node
//! addresses (`node_addrs.rs`), counters (`counters.rs`), and here the node
//! config and the redirect targets. Nothing loads the object or runs the
//! verifier.

use std::os::fd::AsFd;
use std::path::PathBuf;

use aya::maps::xdp::XdpMapError;
use aya::maps::{Array, DevMapHash, HashMap, IterableMap, Map, MapData, MapError, PerCpuArray};
use aya::Pod;

use super::error::{map_errno, Error, Result};
use super::paths::BpfPaths;
use super::spec::*;
use super::sys;
use super::types::*;
use crate::lock::{self, DirLock};

/// Handles of every pinned map of a node.
pub struct Maps {
    pub(super) pod_mac: HashMap<MapData, VxMacKey, VxPod>,
    pub(super) pod_v4: HashMap<MapData, u32, VxPod>,
    pub(super) pod_v6: HashMap<MapData, VxIn6Key, VxPod>,
    pub(super) pod_if: HashMap<MapData, u32, VxPod>,
    pub(super) redirect: DevMapHash<MapData>,
    pub(super) node_v4: HashMap<MapData, u32, VxNodeAddr>,
    pub(super) node_v6: HashMap<MapData, VxIn6Key, VxNodeAddr>,
    pub(super) counters: PerCpuArray<MapData, VxCounters>,
    pub(super) config: Array<MapData, VxConfig>,
    pub(super) services: Array<MapData, VxServices>,
    /// `<root>/v<N>/maps`, flocked while pod slots change (see `pods.rs`).
    maps_dir: PathBuf,
}

impl Maps {
    /// Opens every map pinned under `paths`; fails (naming the pin) if the
    /// node is not set up.
    pub fn open(paths: &BpfPaths) -> Result<Self> {
        Ok(Self {
            pod_mac: open_typed(paths, MAP_POD_MAC)?,
            pod_v4: open_typed(paths, MAP_POD_V4)?,
            pod_v6: open_typed(paths, MAP_POD_V6)?,
            pod_if: open_typed(paths, MAP_POD_IF)?,
            redirect: open_typed(paths, MAP_REDIRECT)?,
            node_v4: open_typed(paths, MAP_NODE_V4)?,
            node_v6: open_typed(paths, MAP_NODE_V6)?,
            counters: open_typed(paths, MAP_COUNTERS)?,
            config: open_typed(paths, MAP_CONFIG)?,
            services: open_typed(paths, MAP_SERVICES)?,
            maps_dir: paths.maps_dir(),
        })
    }

    /// Like [`Maps::open`], but None when the node's maps were never pinned
    /// (or were torn down): for DEL, which has nothing to remove then.
    pub fn open_existing(paths: &BpfPaths) -> Result<Option<Self>> {
        if !paths.map(MAP_POD_IF).exists() {
            return Ok(None);
        }
        Self::open(paths).map(Some)
    }

    /// The exclusive lock under which pod slots are claimed and freed.
    pub(super) fn lock_slots(&self) -> Result<DirLock> {
        Ok(lock::exclusive(&self.maps_dir)?)
    }

    /// The pod capacity the pinned maps were made for: `vx_pod_if`'s size.
    pub(super) fn max_pods(&self) -> Result<u32> {
        let info = self.pod_if.map().info().map_err(|error| Error::Map {
            op: "read info (BPF_OBJ_GET_INFO_BY_FD) of",
            map: MAP_POD_IF,
            error: Box::new(error),
        })?;
        Ok(info.max_entries())
    }

    /// [`Error::Full`] with the capacity of the maps.
    pub(super) fn full(&self) -> Error {
        Error::Full {
            max_pods: self.max_pods().unwrap_or(0),
        }
    }

    /// The error of an update of `map`: E2BIG (the map is full) is [`Error::Full`].
    pub(super) fn update_error(&self, map: &'static str, error: MapError) -> Error {
        if map_errno(&error) == Some(libc::E2BIG) {
            return self.full();
        }
        Error::Map {
            op: "insert (bpf_map_update_elem) into",
            map,
            error: Box::new(error),
        }
    }

    // ------------------------------------------------------------ node config

    pub(super) fn config(&self) -> Result<VxConfig> {
        self.config.get(&0, 0).map_err(|error| Error::Map {
            op: "read entry 0 (bpf_map_lookup_elem) of",
            map: MAP_CONFIG,
            error: Box::new(error),
        })
    }

    pub(super) fn set_config(&mut self, cfg: VxConfig) -> Result<()> {
        self.config.set(0, cfg, 0).map_err(|error| Error::Map {
            op: "write entry 0 (bpf_map_update_elem) of",
            map: MAP_CONFIG,
            error: Box::new(error),
        })
    }

    pub(super) fn set_services(&mut self, services: &VxServices) -> Result<()> {
        self.services
            .set(0, services, 0)
            .map_err(|error| Error::Map {
                op: "write entry 0 (bpf_map_update_elem) of",
                map: MAP_SERVICES,
                error: Box::new(error),
            })
    }

    // ------------------------------------------------------------ redirect targets

    /// Adds `ifindex` as a redirect target (pod host veth or uplink).
    pub(super) fn add_redirect_target(&mut self, ifindex: u32) -> Result<()> {
        match self.redirect.insert(ifindex, ifindex, None, 0) {
            Ok(()) => Ok(()),
            Err(XdpMapError::MapError(e)) if map_errno(&e) == Some(libc::E2BIG) => Err(self.full()),
            Err(error) => Err(Error::Redirect {
                op: "add (bpf_map_update_elem)",
                ifindex,
                error: Box::new(error),
            }),
        }
    }

    pub(super) fn remove_redirect_target(&mut self, ifindex: u32) -> Result<()> {
        match self.redirect.remove(ifindex) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::Redirect {
                op: "delete (bpf_map_delete_elem)",
                ifindex,
                error: Box::new(XdpMapError::MapError(e)),
            }),
        }
    }
}

/// Opens the map pinned under `<maps>/<name>`, untyped (for tools and tests).
pub fn open_map(paths: &BpfPaths, name: &'static str) -> Result<Map> {
    let path = paths.map(name);
    let data = MapData::from_pin(&path).map_err(|error| Error::OpenMap {
        path: path.clone(),
        error: Box::new(error),
    })?;
    Map::from_map_data(data).map_err(|error| Error::PinnedMap {
        op: "use pinned map",
        path,
        error: Box::new(error),
    })
}

/// Opens the pinned map `name` as the typed handle `M` (aya checks the type
/// and the key and value sizes).
fn open_typed<M: TryFrom<Map, Error = MapError>>(
    paths: &BpfPaths,
    name: &'static str,
) -> Result<M> {
    M::try_from(open_map(paths, name)?).map_err(|error| Error::Map {
        op: "open as its typed handle",
        map: name,
        error: Box::new(error),
    })
}

pub(super) fn is_not_found(e: &MapError) -> bool {
    matches!(e, MapError::KeyNotFound) || map_errno(e) == Some(libc::ENOENT)
}

/// Every entry of a hash map, read in batches (see [`sys::lookup_batch`]).
pub(super) fn dump<K: Pod, V: Pod>(
    map: &HashMap<MapData, K, V>,
    name: &'static str,
) -> Result<Vec<(K, V)>> {
    sys::lookup_batch(map.map().fd().as_fd()).map_err(|e| Error::Map {
        op: "read every entry (BPF_MAP_LOOKUP_BATCH) of",
        map: name,
        error: Box::new(MapError::SyscallError(e)),
    })
}

/// Removes `key`; a missing key is fine.
pub(super) fn remove_quiet<K: Pod, V: Pod>(
    map: &mut HashMap<MapData, K, V>,
    key: &K,
    name: &'static str,
) -> Result<()> {
    match map.remove(key) {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(error) => Err(Error::Map {
            op: "delete (bpf_map_delete_elem) from",
            map: name,
            error: Box::new(error),
        }),
    }
}
