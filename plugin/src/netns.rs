//! Network namespaces: validating a CNI_NETNS path and running code inside one.
//!
//! A netlink (or genetlink) socket keeps the namespace it was created in, so the
//! usual pattern is: enter the pod namespace on this thread, open the sockets,
//! come back, and do all the work from the node side.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};

/// nsfs superblock magic (a bind-mounted or /proc/PID/ns/net namespace file).
const NSFS_MAGIC: i64 = 0x6e73_6673;
/// procfs superblock magic (older kernels expose ns files on proc).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Why a CNI_NETNS path cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NetnsPathError {
    #[error("network namespace {0} does not exist")]
    Missing(String),
    #[error("{0} is not a network namespace (not an nsfs file)")]
    NotNetns(String),
    #[error("cannot inspect {path}: {err}")]
    Other { path: String, err: String },
}

/// Checks that `path` is a network namespace file (nsfs or proc magic), telling
/// "gone" apart from "not a netns" as the reference plugins do.
pub fn validate_netns_path(path: &Path) -> std::result::Result<(), NetnsPathError> {
    let shown = path.display().to_string();
    match nix::sys::statfs::statfs(path) {
        Ok(st) => {
            let magic = st.filesystem_type().0;
            if magic == NSFS_MAGIC || magic == PROC_SUPER_MAGIC {
                Ok(())
            } else {
                Err(NetnsPathError::NotNetns(shown))
            }
        }
        Err(nix::errno::Errno::ENOENT) => Err(NetnsPathError::Missing(shown)),
        Err(e) => Err(NetnsPathError::Other {
            path: shown,
            err: e.to_string(),
        }),
    }
}

/// Restores the thread's original namespace when dropped, even on early return.
struct RestoreNetns(File);

impl Drop for RestoreNetns {
    fn drop(&mut self) {
        if let Err(e) = setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET) {
            // A thread stuck in the wrong namespace would corrupt every later
            // netlink call of this process: better to die loudly.
            eprintln!("veth-xdp: cannot restore network namespace: {e}");
            std::process::abort();
        }
    }
}

/// Runs `f` with the calling thread inside the network namespace at `path`,
/// then switches back. Sockets created in `f` stay bound to that namespace.
pub fn with_netns<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T> {
    let target = File::open(path).with_context(|| format!("open netns {}", path.display()))?;
    let original =
        File::open("/proc/thread-self/ns/net").context("open /proc/thread-self/ns/net")?;
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns into {}", path.display()))?;
    let _restore = RestoreNetns(original);
    Ok(f())
}

/// The inode of a network namespace file: a stable key for pins and records.
pub fn netns_inode(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .ino())
}
