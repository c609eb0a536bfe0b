//! The few bpf(2) commands aya 0.14 lacks, on the kernel's own `union bpf_attr`
//! as aya-obj generates it (so the layout is right on any architecture and
//! endianness). Errors are aya's [`SyscallError`], naming the command.
//!
//! - `BPF_OBJ_GET` as a plain fd: aya opens link pins ([`PinnedLink::from_pin`])
//!   but keeps the fd private, and the two link commands below need it;
//! - `BPF_OBJ_GET_INFO_BY_FD` on a link for the per-type part of
//!   `bpf_link_info` (the ifindex), which aya's `LinkInfo` does not expose;
//! - `BPF_LINK_DETACH` (Linux 5.9, 73b11c2ab072): detach a link other
//!   processes (its pin) still hold;
//! - `BPF_MAP_LOOKUP_BATCH` (Linux 5.6, cb4d03ab499d).
//!
//! [`PinnedLink::from_pin`]: aya::programs::links::PinnedLink::from_pin

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use aya::sys::SyscallError;
use aya::Pod;
use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_link_info, bpf_link_type};

/// bpf(2) with `attr`; the return value (an fd for the commands that make one).
fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<i64> {
    // SAFETY: attr is a whole, initialised `union bpf_attr`; every pointer the
    // caller stored in it points to a live buffer of the size it declares.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_int,
            attr as *mut bpf_attr,
            mem::size_of::<bpf_attr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A zeroed `union bpf_attr`: the kernel refuses non-zero bytes past the
/// fields a command reads.
fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is plain integers; all-zero is a valid value.
    unsafe { mem::zeroed() }
}

fn failed(call: &'static str) -> impl FnOnce(io::Error) -> SyscallError {
    move |io_error| SyscallError { call, io_error }
}

/// BPF_OBJ_GET: a new fd of the object pinned at `path`.
pub fn obj_get(path: &Path) -> Result<OwnedFd, SyscallError> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|e| SyscallError {
        call: "BPF_OBJ_GET",
        io_error: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_4.pathname = cpath.as_ptr() as u64;
    let fd = bpf(bpf_cmd::BPF_OBJ_GET, &mut attr).map_err(failed("BPF_OBJ_GET"))?;
    // SAFETY: BPF_OBJ_GET returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `bpf_link_type` values of the links we make.
pub const BPF_LINK_TYPE_XDP: u32 = bpf_link_type::BPF_LINK_TYPE_XDP as u32;
pub const BPF_LINK_TYPE_TCX: u32 = bpf_link_type::BPF_LINK_TYPE_TCX as u32;

/// What `struct bpf_link_info` says about a link we pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    pub link_type: u32,
    pub id: u32,
    pub prog_id: u32,
    /// Device of an XDP or tcx link; 0 once the device is gone (a defunct
    /// link), and for other link types.
    pub ifindex: u32,
}

/// BPF_OBJ_GET_INFO_BY_FD on a link fd.
pub fn link_info(link: BorrowedFd<'_>) -> Result<LinkInfo, SyscallError> {
    // SAFETY: bpf_link_info is plain integers (and unions of them); all-zero is valid.
    let mut info: bpf_link_info = unsafe { mem::zeroed() };
    let mut attr = zeroed_attr();
    attr.info.bpf_fd = link.as_raw_fd() as u32;
    attr.info.info_len = mem::size_of::<bpf_link_info>() as u32;
    attr.info.info = &mut info as *mut bpf_link_info as u64;
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr).map_err(failed("BPF_OBJ_GET_INFO_BY_FD"))?;
    let ifindex = match info.type_ {
        // SAFETY: the kernel filled the union member of the link's type.
        BPF_LINK_TYPE_XDP => unsafe { info.__bindgen_anon_1.xdp.ifindex },
        // SAFETY: as above.
        BPF_LINK_TYPE_TCX => unsafe { info.__bindgen_anon_1.tcx.ifindex },
        _ => 0,
    };
    Ok(LinkInfo {
        link_type: info.type_,
        id: info.id,
        prog_id: info.prog_id,
        ifindex,
    })
}

/// BPF_LINK_DETACH: detaches the link (its pin and fds stay valid, defunct).
pub fn link_detach(link: BorrowedFd<'_>) -> Result<(), SyscallError> {
    let mut attr = zeroed_attr();
    attr.link_detach.link_fd = link.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_LINK_DETACH, &mut attr)
        .map(drop)
        .map_err(failed("BPF_LINK_DETACH"))
}

/// Every (key, value) of a hash map with BPF_MAP_LOOKUP_BATCH: a few syscalls
/// in all, where iterating costs two per entry (get_next_key + lookup) —
/// which made every ADD's and DEL's map work grow with the pod count.
/// `K` and `V` must be the map's key and value types.
pub fn lookup_batch<K: Pod, V: Pod>(map: BorrowedFd<'_>) -> Result<Vec<(K, V)>, SyscallError> {
    const CHUNK: u32 = 256;
    // SAFETY: K and V are Pod: any bit pattern, zero included, is a valid value.
    let (zero_k, zero_v): (K, V) = unsafe { (mem::zeroed(), mem::zeroed()) };
    let mut keys = vec![zero_k; CHUNK as usize];
    let mut values = vec![zero_v; CHUNK as usize];
    // The batch token of a hash map is a bucket index (u32); 8 bytes is ample.
    let mut in_batch = 0u64;
    let mut out_batch = 0u64;
    let mut first = true;
    let mut out = Vec::new();
    loop {
        let mut attr = zeroed_attr();
        // The first call passes no in_batch (NULL): from the start.
        attr.batch.in_batch = if first {
            0
        } else {
            &in_batch as *const u64 as u64
        };
        attr.batch.out_batch = &mut out_batch as *mut u64 as u64;
        attr.batch.keys = keys.as_mut_ptr() as u64;
        attr.batch.values = values.as_mut_ptr() as u64;
        attr.batch.count = CHUNK;
        attr.batch.map_fd = map.as_raw_fd() as u32;
        let rc = bpf(bpf_cmd::BPF_MAP_LOOKUP_BATCH, &mut attr);
        // SAFETY: `count` is a u32 of the batch member we filled; the kernel
        // sets it to the number of elements copied, even with ENOENT.
        let count = unsafe { attr.batch.count }.min(CHUNK) as usize;
        out.extend(
            keys[..count]
                .iter()
                .copied()
                .zip(values[..count].iter().copied()),
        );
        match rc {
            Ok(_) => {
                in_batch = out_batch;
                first = false;
            }
            // ENOENT: the last batch (its entries, if any, taken above).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(e) => return Err(failed("BPF_MAP_LOOKUP_BATCH")(e)),
        }
    }
}
