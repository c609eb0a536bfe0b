//! The node-global lock: first-time datapath setup, uplink settings and GC run
//! under it; per-pod work runs in parallel.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// A lock file that could not be made or taken.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct LockError {
    pub op: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Held while alive; released on drop (or when the process dies).
pub struct NodeLock {
    _flock: Flock<std::fs::File>,
}

/// Blocks until the exclusive lock on `<state_dir>/node.lock` is ours.
pub fn node_lock(state_dir: &Path) -> Result<NodeLock, LockError> {
    let path = state_dir.join("node.lock");
    let fail = |op, source| LockError {
        op,
        path: path.clone(),
        source,
    };
    crate::record::ensure_private_dir(state_dir)
        .map_err(|e| fail("create the directory of", std::io::Error::other(e)))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| fail("open lock file", e))?;
    let flock =
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| fail("flock", e.into()))?;
    Ok(NodeLock { _flock: flock })
}
