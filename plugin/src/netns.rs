//! Network namespaces: validating a CNI_NETNS path and running code inside one.
//!
//! A netlink (or genetlink) socket keeps the namespace it was created in, so the
//! usual pattern is: enter the pod namespace on this thread, open the sockets,
//! come back, and do all the work from the node side.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

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

/// Entering a network namespace failed: the operation, the file and the errno.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct NetnsError {
    /// "open", "setns into"
    pub op: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl NetnsError {
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Runs `f` with the calling thread inside the network namespace at `path`,
/// then switches back. Sockets created in `f` stay bound to that namespace.
pub fn with_netns<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
    fn fail(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetnsError {
        let path = path.to_path_buf();
        move |source| NetnsError { op, path, source }
    }
    let target = File::open(path).map_err(fail("open", path))?;
    let original = File::open(THREAD_NETNS).map_err(fail("open", Path::new(THREAD_NETNS)))?;
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(std::io::Error::from)
        .map_err(fail("setns into", path))?;
    let _restore = RestoreNetns(original);
    Ok(f())
}
