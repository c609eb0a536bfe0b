//! The few bpf(2) commands aya 0.14 does not expose for pinned links:
//! open a pin, read a link's ifindex, detach a link. Raw syscalls, each error
//! naming the command and the object.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};

const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_LINK_CREATE: libc::c_long = 28;
/// `enum bpf_attach_type` BPF_XDP.
const BPF_XDP: u64 = 37;
/// XDP_FLAGS_SKB_MODE / XDP_FLAGS_DRV_MODE (linux/if_link.h).
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_DETACH: libc::c_long = 34;

/// `bpf_link_type` values we recognise.
pub const BPF_LINK_TYPE_XDP: u32 = 6;
pub const BPF_LINK_TYPE_TCX: u32 = 11;

fn bpf(cmd: libc::c_long, attr: &mut [u64]) -> io::Result<libc::c_long> {
    // SAFETY: attr is a zero-initialised, 8-byte aligned buffer at least as
    // large as the union member the command reads; the kernel checks the rest.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// BPF_OBJ_GET: a new fd for the object pinned at `path`.
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let cpath = c_path(path)?;
    let mut attr = [0u64; 2];
    attr[0] = cpath.as_ptr() as u64; // pathname; bpf_fd = 0, file_flags = 0
    let fd = bpf(BPF_OBJ_GET, &mut attr)?;
    // SAFETY: the kernel returned a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// BPF_OBJ_PIN: pins `fd` (program, map or link) at `path`.
pub fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let cpath = c_path(path)?;
    let mut attr = [0u64; 2];
    attr[0] = cpath.as_ptr() as u64;
    attr[1] = fd.as_raw_fd() as u32 as u64; // bpf_fd; file_flags = 0
    bpf(BPF_OBJ_PIN, &mut attr).map(|_| ())
}

/// BPF_LINK_CREATE for XDP: attaches `prog` to `ifindex` with `xdp_flags`
/// (driver or skb mode) and returns the link fd. (aya 0.14's `Xdp::from_pin`
/// needs `aya_obj::programs::XdpAttachType`, which aya does not re-export.)
pub fn xdp_link_create(prog: BorrowedFd<'_>, ifindex: u32, xdp_flags: u32) -> io::Result<OwnedFd> {
    let mut attr = [0u64; 2];
    attr[0] = prog.as_raw_fd() as u32 as u64 | (u64::from(ifindex) << 32);
    attr[1] = BPF_XDP | (u64::from(xdp_flags) << 32);
    let fd = bpf(BPF_LINK_CREATE, &mut attr)?;
    // SAFETY: the kernel returned a new link fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What `struct bpf_link_info` says about a link we pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    pub link_type: u32,
    pub id: u32,
    pub prog_id: u32,
    /// Device of an XDP or tcx link; 0 once the device is gone (defunct link).
    pub ifindex: u32,
}

/// BPF_OBJ_GET_INFO_BY_FD on a link fd.
pub fn link_info(fd: BorrowedFd<'_>) -> io::Result<LinkInfo> {
    // struct bpf_link_info: type, id, prog_id, (pad), then the per-type union
    // at offset 16, whose first u32 is the ifindex for XDP and tcx links.
    let mut info = [0u64; 32];
    let mut attr = [0u64; 2];
    attr[0] = fd.as_raw_fd() as u32 as u64 | ((size_of_val(&info) as u64) << 32);
    attr[1] = info.as_mut_ptr() as u64;
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(LinkInfo {
        link_type: info[0] as u32,
        id: (info[0] >> 32) as u32,
        prog_id: info[1] as u32,
        ifindex: info[2] as u32,
    })
}

/// Opens the link pinned at `path` and reads its info.
pub fn pinned_link_info(path: &Path) -> Result<LinkInfo> {
    let fd = obj_get(path).with_context(|| format!("BPF_OBJ_GET {}", path.display()))?;
    link_info(fd.as_fd())
        .with_context(|| format!("BPF_OBJ_GET_INFO_BY_FD on link {}", path.display()))
}

/// Detaches the link pinned at `path` and removes the pin. Missing pin: Ok(false).
pub fn detach_and_unpin(path: &Path) -> Result<bool> {
    let fd = match obj_get(path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("BPF_OBJ_GET {}", path.display())),
    };
    let mut attr = [0u64; 1];
    attr[0] = fd.as_raw_fd() as u32 as u64;
    match bpf(BPF_LINK_DETACH, &mut attr) {
        // ENOLINK: already detached (its device went away).
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOLINK) => {}
        Err(e) => return Err(e).with_context(|| format!("BPF_LINK_DETACH {}", path.display())),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("unpin (unlink) {}", path.display())),
    }
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// Every (key, value) of a hash map with BPF_MAP_LOOKUP_BATCH (Linux 5.6,
/// cb4d03ab499d): a few syscalls in all, where iterating costs two per entry
/// (get_next_key + lookup) — which made every ADD's and DEL's map work grow
/// with the pod count. Keys and values come back as `key_size`/`value_size`
/// byte chunks.
pub fn hash_dump(
    map: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    const CHUNK: usize = 256;
    let mut keys = vec![0u8; key_size * CHUNK];
    let mut values = vec![0u8; value_size * CHUNK];
    // The batch token of a hash map is a bucket index (u32); 8 bytes is ample.
    let mut in_batch = 0u64;
    let mut out_batch = 0u64;
    let mut first = true;
    let mut out = Vec::new();
    loop {
        // union bpf_attr.batch: in_batch, out_batch, keys, values, count|map_fd, elem_flags, flags
        let mut attr = [0u64; 7];
        attr[0] = if first {
            0
        } else {
            &in_batch as *const u64 as u64
        };
        attr[1] = &mut out_batch as *mut u64 as u64;
        attr[2] = keys.as_mut_ptr() as u64;
        attr[3] = values.as_mut_ptr() as u64;
        attr[4] = (CHUNK as u64) | ((map.as_raw_fd() as u64) << 32);
        let rc = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let count = (attr[4] & 0xffff_ffff) as usize;
        for i in 0..count.min(CHUNK) {
            out.push((
                keys[i * key_size..(i + 1) * key_size].to_vec(),
                values[i * value_size..(i + 1) * value_size].to_vec(),
            ));
        }
        match rc {
            Ok(_) => {
                in_batch = out_batch;
                first = false;
            }
            // ENOENT: the last batch (possibly with entries, already taken above).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}
