//! Files replaced atomically: a temp file in the same directory, written,
//! fsynced, renamed over the old one, then the directory fsynced. A reader (DEL
//! reading a record, kubelet executing the plugin, a runtime loading the
//! conflist) sees the old file or the new one, never a partial one; a crash
//! leaves one of the two.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file operation that failed: what, on which path, and the errno.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct FileError {
    /// "create", "write", "fsync", "rename into place", ...
    pub op: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// `map_err` for an io::Result: names the operation and the file.
pub fn fail(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError { op, path, source }
}

/// Replaces `dir/name` with `bytes`, mode `mode` (whatever the umask), atomically.
/// `dir` must exist. The temp file (`.<name>.<pid>.tmp`) is removed on failure.
pub fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let dest = dir.join(name);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(fail("create", &tmp))?;
        // The umask may have narrowed the mode of `open`.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(fail("chmod", &tmp))?;
        f.write_all(bytes).map_err(fail("write", &tmp))?;
        f.sync_all().map_err(fail("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, &dest).map_err(fail("rename into place", &dest))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail("fsync", dir))
}
