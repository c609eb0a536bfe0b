//! The node-global lock: first-time datapath setup, uplink settings and GC run
//! under it; per-pod work runs in parallel.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// Held while alive; released on drop (or when the process dies).
pub struct NodeLock {
    _flock: Flock<std::fs::File>,
}

/// Blocks until the exclusive lock on `<state_dir>/node.lock` is ours.
pub fn node_lock(state_dir: &Path) -> Result<NodeLock> {
    crate::record::ensure_private_dir(state_dir)?;
    let path = state_dir.join("node.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("open lock file {}", path.display()))?;
    let flock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("flock {}", path.display()))?;
    Ok(NodeLock { _flock: flock })
}
