//! Where everything lives on bpffs: `<root>/v<LAYOUT_VERSION>/{maps,progs,links}`.
//! The layout version in the path keeps an incompatible build from ever
//! opening another layout's maps.

use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::types::LAYOUT_VERSION;

/// Default pin root.
pub use crate::defaults::BPF_ROOT as DEFAULT_PIN_ROOT;
/// Where bpffs is expected to be mounted.
pub const BPFFS_MOUNT: &str = "/sys/fs/bpf";
/// statfs magic of bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Pin directory layout under a configurable root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfPaths {
    root: PathBuf,
    version_dir: PathBuf,
}

impl Default for BpfPaths {
    fn default() -> Self {
        Self::new(DEFAULT_PIN_ROOT)
    }
}

impl BpfPaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let version_dir = root.join(format!("v{LAYOUT_VERSION}"));
        Self { root, version_dir }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/v<N>`: everything of this layout version.
    pub fn version_dir(&self) -> &Path {
        &self.version_dir
    }

    pub fn maps_dir(&self) -> PathBuf {
        self.version_dir.join("maps")
    }

    pub fn progs_dir(&self) -> PathBuf {
        self.version_dir.join("progs")
    }

    pub fn links_dir(&self) -> PathBuf {
        self.version_dir.join("links")
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.maps_dir().join(name)
    }

    pub fn prog(&self, name: &str) -> PathBuf {
        self.progs_dir().join(name)
    }

    pub fn link(&self, name: &str) -> PathBuf {
        self.links_dir().join(name)
    }

    /// Creates the maps/progs/links directories.
    pub fn create_dirs(&self) -> Result<()> {
        for dir in [self.maps_dir(), self.progs_dir(), self.links_dir()] {
            std::fs::create_dir_all(&dir).map_err(|error| Error::Fs {
                op: "mkdir (is bpffs mounted?)",
                path: dir.clone(),
                error,
            })?;
        }
        Ok(())
    }
}

/// A link pin name for an attachment key: bpffs refuses names with '.'
/// (EPERM), so keys are limited to `[A-Za-z0-9_-]`.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::InvalidKey {
            key: key.to_string(),
        });
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> Result<bool> {
    let st = nix::sys::statfs::statfs(path).map_err(|errno| Error::Fs {
        op: "statfs",
        path: path.to_path_buf(),
        error: errno.into(),
    })?;
    Ok(st.filesystem_type().0 as i64 == BPF_FS_MAGIC)
}

/// Mounts bpffs at /sys/fs/bpf if nothing is mounted there, creates `root`
/// and checks that it is on a bpffs.
pub fn ensure_bpffs(root: &Path) -> Result<()> {
    let mount = Path::new(BPFFS_MOUNT);
    if !is_bpffs(mount)? {
        nix::mount::mount(
            Some("bpf"),
            mount,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|errno| Error::Fs {
            op: "mount -t bpf bpf",
            path: mount.to_path_buf(),
            error: errno.into(),
        })?;
    }
    std::fs::create_dir_all(root).map_err(|error| Error::Fs {
        op: "mkdir",
        path: root.to_path_buf(),
        error,
    })?;
    if !is_bpffs(root)? {
        return Err(Error::NotBpffs {
            path: root.to_path_buf(),
            mount: BPFFS_MOUNT,
        });
    }
    Ok(())
}
