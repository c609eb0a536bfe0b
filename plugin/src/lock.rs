//! Advisory locks: one `flock` on a directory (or file), held while the
//! returned [`DirLock`] lives, released on drop or when the process dies.
//! Every lock of the plugin is one of these:
//! - the node lock, on the bpf pin root ([`crate::bpf::lock_node`]): datapath
//!   setup and teardown, uplink settings;
//! - the pod-slot lock, on the pinned maps' directory (inside `crate::bpf`);
//! - GC's lock, on its state directory;
//! - the attachments lock, on a network's record directory
//!   ([`crate::record::Store`]): ADD and DEL hold it shared for their whole
//!   run, the node agent exclusive (never waiting) while it repairs pods, so it
//!   never sees, or re-attaches programs of, a half-done ADD or DEL.
//!
//! A directory is locked rather than a lock file because bpffs takes no
//! regular files; an fd of the directory itself flocks fine.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// A flock, released on drop.
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
    take(path, FlockArg::LockExclusive, "flock(LOCK_EX)").map(|l| l.expect("blocking"))
}

/// Blocks until a shared lock on `path` is ours (others may share it).
pub fn shared(path: &Path) -> Result<DirLock, LockError> {
    take(path, FlockArg::LockShared, "flock(LOCK_SH)").map(|l| l.expect("blocking"))
}

/// The exclusive lock on `path` if nobody holds any lock on it; None if busy.
pub fn try_exclusive(path: &Path) -> Result<Option<DirLock>, LockError> {
    take(
        path,
        FlockArg::LockExclusiveNonblock,
        "flock(LOCK_EX|LOCK_NB)",
    )
}

fn take(path: &Path, arg: FlockArg, op: &'static str) -> Result<Option<DirLock>, LockError> {
    let fail = |op, error| LockError {
        op,
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(|e| fail("open (to lock)", e))?;
    match Flock::lock(file, arg) {
        Ok(flock) => Ok(Some(DirLock { _flock: flock })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(fail(op, io::Error::from(errno))),
    }
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
    fn shared_locks_share_and_keep_the_exclusive_out() {
        let dir = std::env::temp_dir().join(format!("vx-lock-sh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = shared(&dir).unwrap();
        let b = shared(&dir).unwrap();
        assert!(try_exclusive(&dir).unwrap().is_none(), "busy while shared");
        drop((a, b));
        let ex = try_exclusive(&dir).unwrap().expect("free once released");
        drop(ex);
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
