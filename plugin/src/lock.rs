//! Exclusive advisory locks: one `flock(LOCK_EX)` on a directory (or file),
//! held while the returned [`DirLock`] lives, released on drop or when the
//! process dies. Every lock of the plugin is one of these:
//! - the node lock, on the bpf pin root ([`crate::bpf::lock_node`]): datapath
//!   setup and teardown, uplink settings;
//! - the pod-slot lock, on the pinned maps' directory (inside `crate::bpf`);
//! - GC's lock, on its state directory.
//!
//! A directory is locked rather than a lock file because bpffs takes no
//! regular files; an fd of the directory itself flocks fine.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// An exclusive flock, released on drop.
#[derive(Debug)]
pub struct DirLock {
    _flock: Flock<File>,
}

/// Why a lock could not be taken: the operation, the path and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {error}", path.display())]
pub struct LockError {
    pub op: &'static str,
    pub path: PathBuf,
    pub error: io::Error,
}

/// Blocks until the exclusive lock on `path` (an existing directory or file) is ours.
pub fn exclusive(path: &Path) -> Result<DirLock, LockError> {
    let fail = |op, error| LockError {
        op,
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(|e| fail("open (to lock)", e))?;
    let flock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| fail("flock(LOCK_EX)", io::Error::from(errno)))?;
    Ok(DirLock { _flock: flock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_waits_for_the_first() {
        let dir = std::env::temp_dir().join(format!("vx-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = exclusive(&dir).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.clone();
        let waiter = std::thread::spawn(move || {
            let _second = exclusive(&d).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "second lock taken while the first is held"
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("second lock after the first is released");
        waiter.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_path_names_the_operation_and_path() {
        let e = exclusive(Path::new("/nonexistent/vx-lock")).unwrap_err();
        assert_eq!(e.error.raw_os_error(), Some(libc::ENOENT));
        assert!(
            e.to_string()
                .starts_with("open (to lock) /nonexistent/vx-lock: "),
            "{e}"
        );
    }
}
