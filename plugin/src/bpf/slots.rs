//! Pod slots: each pod gets a small integer `1..=max_pods` (slot 0 is the
//! uplink), its index in the per-CPU array `vx_counters`, so the fast path
//! counts with array lookups (inlined by the verifier) instead of per-CPU
//! hash lookups. The slots in use are the `slot` fields of the `vx_pod_if` values;
//! allocation and release happen under an exclusive flock on the pin
//! directory of the maps, since pods are added and removed in parallel.

use std::collections::HashSet;

use anyhow::{Context, Result};

use super::paths::BpfPaths;
use super::types::VxPod;
use crate::lock::{self, DirLock};

/// Held while a pod's maps entries (and so its slot) change: an exclusive
/// flock on `<root>/v<N>/maps`, released on drop (or when the process dies).
pub struct SlotLock {
    _lock: DirLock,
}

impl SlotLock {
    pub fn acquire(paths: &BpfPaths) -> Result<Self> {
        let lock = lock::exclusive(&paths.maps_dir()).context("lock the pod slots")?;
        Ok(Self { _lock: lock })
    }
}

/// The lowest slot in `1..=max_pods` no pod uses, or None if all are taken.
pub fn lowest_free(pods: impl IntoIterator<Item = VxPod>, max_pods: u32) -> Option<u32> {
    let used: HashSet<u32> = pods.into_iter().map(|p| p.slot).collect();
    (1..=max_pods).find(|s| !used.contains(s))
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
