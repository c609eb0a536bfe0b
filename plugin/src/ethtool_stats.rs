//! Driver-private statistics (what `ethtool -S DEV` prints), read without
//! shelling out.
//!
//! A veth drops XDP frames in places the link counters never show: frames
//! redirected into it that its peer could not take, XDP_TX that failed, rx ring
//! overflows. Those counters exist only as the driver's ETH_SS_STATS string set,
//! which the ethtool netlink family does not carry (STRSET_GET gives the names
//! but there is no message for the values), so this module speaks the legacy
//! `SIOCETHTOOL` ioctl:
//!
//! 1. `ETHTOOL_GSSET_INFO` with `sset_mask = 1 << ETH_SS_STATS` → the count,
//! 2. `ETHTOOL_GSTRINGS` → `count` names of `ETH_GSTRING_LEN` bytes,
//! 3. `ETHTOOL_GSTATS` → `count` u64 values in the same order.
//!
//! The ioctl names the device by ifname, which is resolved in the namespace of
//! the socket: `driver_stats_in` opens the socket inside the target namespace
//! and does the ioctls from the calling thread's own namespace.
//!
//! Constants and layouts checked against /usr/include/linux/ethtool.h and
//! /usr/include/linux/sockios.h (Linux 6.18 UAPI).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// `SIOCETHTOOL` (linux/sockios.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_GSTRINGS`: get a string set (linux/ethtool.h).
const ETHTOOL_GSTRINGS: u32 = 0x1b;
/// `ETHTOOL_GSTATS`: get the driver statistics.
const ETHTOOL_GSTATS: u32 = 0x1d;
/// `ETHTOOL_GSSET_INFO`: get the sizes of string sets.
const ETHTOOL_GSSET_INFO: u32 = 0x37;
/// `enum ethtool_stringset`: ETH_SS_TEST = 0, ETH_SS_STATS = 1.
const ETH_SS_STATS: u32 = 1;
/// Bytes per name in a string set, NUL-padded.
const ETH_GSTRING_LEN: usize = 32;

/// Header words before the flexible arrays. All three structs are
/// `{ __u32 cmd; __u32 x; ... }`, 8-byte aligned, so a `Vec<u64>` buffer gives
/// the right alignment and the payload starts at these byte offsets:
/// - `struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[]; }` → 16
/// - `struct ethtool_gstrings  { u32 cmd; u32 string_set; u32 len; u8 data[]; }`      → 12
/// - `struct ethtool_stats     { u32 cmd; u32 n_stats; u64 data[]; }`                 → 8
const SSET_INFO_DATA: usize = 16;
const GSTRINGS_DATA: usize = 12;
const GSTATS_DATA: usize = 8;

/// How often the three-step read is retried when the set changes size between
/// steps (a veth's set follows its real queue counts, changed by `ethtool -L`).
const ATTEMPTS: usize = 3;

/// A failed `SIOCETHTOOL` call: which command, on which device, and the errno
/// (ENODEV: no such device in the socket's namespace; EOPNOTSUPP: the driver
/// has no statistics).
#[derive(Debug, thiserror::Error)]
#[error("SIOCETHTOOL {op} on {ifname}: {errno}")]
pub struct EthtoolIoctlError {
    pub op: &'static str,
    pub ifname: String,
    pub errno: Errno,
}

/// Why driver statistics could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Ioctl(#[from] EthtoolIoctlError),
    #[error("open socket for SIOCETHTOOL: {0}")]
    Socket(Errno),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error("invalid interface name {0:?} (1..{max} bytes, no NUL)", max = libc::IFNAMSIZ - 1)]
    BadName(String),
    #[error("driver statistics of {0} kept changing size; gave up after {ATTEMPTS} reads")]
    Unstable(String),
}

impl StatsError {
    /// The failed ioctl, if that is what failed.
    pub fn ioctl(&self) -> Option<&EthtoolIoctlError> {
        match self {
            Self::Ioctl(e) => Some(e),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, StatsError>;

/// Driver statistics of `ifname` in the calling thread's network namespace, in
/// the driver's order. A device without an ETH_SS_STATS set gives an empty list.
pub fn driver_stats(ifname: &str) -> Result<Vec<(String, u64)>> {
    let sock = open_socket().map_err(StatsError::Socket)?;
    read_stats(&sock, ifname)
}

/// Driver statistics of `ifname` in the network namespace at `netns`.
pub fn driver_stats_in(netns: &Path, ifname: &str) -> Result<Vec<(String, u64)>> {
    let sock = crate::netns::with_netns(netns, open_socket)?.map_err(StatsError::Socket)?;
    read_stats(&sock, ifname)
}

/// Any socket carries SIOCETHTOOL to the device layer (`sock_ioctl` →
/// `dev_ioctl`); a datagram AF_INET socket is the conventional one.
fn open_socket() -> nix::Result<OwnedFd> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

fn read_stats(sock: &OwnedFd, ifname: &str) -> Result<Vec<(String, u64)>> {
    let name = ifreq_name(ifname)?;
    for _ in 0..ATTEMPTS {
        let Some(count) = stats_count(sock, &name, ifname)? else {
            return Ok(Vec::new());
        };
        if count == 0 {
            return Ok(Vec::new());
        }
        let Some(names) = stat_names(sock, &name, ifname, count)? else {
            continue;
        };
        let Some(values) = stat_values(sock, &name, ifname, count)? else {
            continue;
        };
        return Ok(names.into_iter().zip(values).collect());
    }
    Err(StatsError::Unstable(ifname.to_string()))
}

/// `ifr_name`: at most IFNAMSIZ-1 bytes and a NUL.
fn ifreq_name(ifname: &str) -> Result<[libc::c_char; libc::IFNAMSIZ]> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(StatsError::BadName(ifname.to_string()));
    }
    let mut name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (dst, src) in name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(name)
}

/// Number of ETH_SS_STATS strings, or `None` if the driver has no such set.
fn stats_count(
    sock: &OwnedFd,
    name: &[libc::c_char; libc::IFNAMSIZ],
    ifname: &str,
) -> Result<Option<usize>> {
    // One u32 of data follows the header (one bit set in the mask).
    let mut buf = vec![0u64; (SSET_INFO_DATA + 8) / 8];
    let bytes = as_bytes_mut(&mut buf);
    put_u32(bytes, 0, ETHTOOL_GSSET_INFO);
    bytes[8..16].copy_from_slice(&(1u64 << ETH_SS_STATS).to_ne_bytes());
    ethtool_ioctl(sock, name, &mut buf, "ETHTOOL_GSSET_INFO", ifname)?;
    let bytes = as_bytes_mut(&mut buf);
    // The kernel clears the bits of sets the driver does not have.
    let mask = u64::from_ne_bytes(bytes[8..16].try_into().expect("8 bytes"));
    if mask & (1u64 << ETH_SS_STATS) == 0 {
        return Ok(None);
    }
    Ok(Some(get_u32(bytes, SSET_INFO_DATA) as usize))
}

/// Room for more entries than asked for. Before upstream commit 7b07be1ff1cb
/// ("ethtool: Avoid overflowing userspace buffer on stats query", v6.19,
/// backported to stable in Jan 2026) the kernel ignores the `len`/`n_stats` we
/// pass and copies as many entries as the driver has *now*: a set that grew
/// since GSSET_INFO overruns an exact buffer. Kernels with the fix copy nothing
/// and answer 0 when our nonzero count is stale. Either way the reply's count
/// differs from ours and we retry.
fn capacity(count: usize) -> usize {
    count * 2 + 64
}

/// The `count` stat names, or `None` if the set changed size since it was counted.
fn stat_names(
    sock: &OwnedFd,
    name: &[libc::c_char; libc::IFNAMSIZ],
    ifname: &str,
    count: usize,
) -> Result<Option<Vec<String>>> {
    let room = capacity(count);
    let mut buf = vec![0u64; (GSTRINGS_DATA + room * ETH_GSTRING_LEN).div_ceil(8)];
    let bytes = as_bytes_mut(&mut buf);
    put_u32(bytes, 0, ETHTOOL_GSTRINGS);
    put_u32(bytes, 4, ETH_SS_STATS);
    put_u32(bytes, 8, count as u32);
    ethtool_ioctl(sock, name, &mut buf, "ETHTOOL_GSTRINGS", ifname)?;
    let bytes = as_bytes_mut(&mut buf);
    let len = get_u32(bytes, 8) as usize;
    check_overrun(len, room, "ETHTOOL_GSTRINGS", ifname);
    if len != count {
        return Ok(None);
    }
    let names = bytes[GSTRINGS_DATA..GSTRINGS_DATA + len * ETH_GSTRING_LEN]
        .chunks_exact(ETH_GSTRING_LEN)
        .map(gstring)
        .collect();
    Ok(Some(names))
}

/// The `count` stat values, or `None` if the set changed size since it was counted.
fn stat_values(
    sock: &OwnedFd,
    name: &[libc::c_char; libc::IFNAMSIZ],
    ifname: &str,
    count: usize,
) -> Result<Option<Vec<u64>>> {
    let room = capacity(count);
    let mut buf = vec![0u64; GSTATS_DATA / 8 + room];
    let bytes = as_bytes_mut(&mut buf);
    put_u32(bytes, 0, ETHTOOL_GSTATS);
    put_u32(bytes, 4, count as u32);
    ethtool_ioctl(sock, name, &mut buf, "ETHTOOL_GSTATS", ifname)?;
    let n_stats = get_u32(as_bytes_mut(&mut buf), 4) as usize;
    check_overrun(n_stats, room, "ETHTOOL_GSTATS", ifname);
    if n_stats != count {
        return Ok(None);
    }
    Ok(Some(
        buf[GSTATS_DATA / 8..GSTATS_DATA / 8 + n_stats].to_vec(),
    ))
}

/// If the kernel wrote more entries than the buffer holds, memory past it is
/// already overwritten: the process cannot go on safely.
fn check_overrun(written: usize, room: usize, op: &str, ifname: &str) {
    if written > room {
        eprintln!("veth-xdp: {op} on {ifname} wrote {written} entries into room for {room}");
        std::process::abort();
    }
}

/// One NUL-padded ETH_GSTRING_LEN name (a 32-byte name has no NUL).
fn gstring(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Issues SIOCETHTOOL with `ifr_data` pointing at `buf`.
fn ethtool_ioctl(
    sock: &OwnedFd,
    name: &[libc::c_char; libc::IFNAMSIZ],
    buf: &mut [u64],
    op: &'static str,
    ifname: &str,
) -> std::result::Result<(), EthtoolIoctlError> {
    // SAFETY: ifreq is plain old data (a name array and a union of plain
    // fields and a raw pointer); all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    ifr.ifr_name = *name;
    ifr.ifr_ifru.ifru_data = buf.as_mut_ptr().cast();
    // SAFETY: `ifr` is a valid ifreq (sizeof == 40, as the kernel copies) whose
    // ifru_data points at `buf`, which lives across the call and is large
    // enough for what the command writes: the caller sized it from the header
    // it filled in plus headroom (see `capacity`), and `check_overrun` stops
    // the process if the kernel reports having written more.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            SIOCETHTOOL as _,
            &mut ifr as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        return Err(EthtoolIoctlError {
            op,
            ifname: ifname.to_string(),
            errno: Errno::last(),
        });
    }
    Ok(())
}

fn as_bytes_mut(buf: &mut [u64]) -> &mut [u8] {
    let len = std::mem::size_of_val(buf);
    // SAFETY: u8 has no alignment or validity requirements; the byte slice
    // covers exactly the u64 slice's memory and borrows it mutably.
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), len) }
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// The veth drop counters the link statistics do not show, summed over queues.
///
/// Names as veth prints them (checked on Linux 6.18; drivers/net/veth.c
/// `veth_rq_stats_desc`/`veth_tq_stats_desc`): per rx queue
/// `rx_queue_N_{drops,xdp_redirect,xdp_drops,xdp_tx_errors}`, per tx queue
/// `tx_queue_N_xdp_xmit_errors`. There is no separate `peer_tq_xdp_xmit_err`
/// name: that is the kernel field behind `tx_queue_N_xdp_xmit_errors`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HiddenDrops {
    /// Sum of `tx_queue_N_xdp_xmit_errors`: frames XDP-redirected *into* this
    /// device (ndo_xdp_xmit) that its peer's rx ring refused (ring full or
    /// frame longer than the peer's MTU). The kernel keeps them in the peer's
    /// `rq->stats.vs.peer_tq_xdp_xmit_err` and shows them here; a flat
    /// `xdp_xmit_errors` (other drivers) is added too. A peer without NAPI (no
    /// XDP program and GRO off) refuses whole batches with ENXIO before this
    /// count: those land only in the link's tx_dropped (`priv->dropped`).
    pub xdp_xmit_errors: u64,
    /// Sum of `rx_queue_N_drops`: frames lost on the rx ring (ptr_ring full).
    pub rx_drops: u64,
    /// Sum of `rx_queue_N_xdp_drops`: XDP_DROP and XDP_ABORTED verdicts.
    pub xdp_drops: u64,
    /// Sum of `rx_queue_N_xdp_tx_errors`: XDP_TX frames the peer refused.
    pub xdp_tx_errors: u64,
    /// Sum of `rx_queue_N_xdp_redirect`: frames redirected away (not a drop;
    /// shown next to the drops to tell "redirected" from "lost").
    pub xdp_redirect: u64,
}

/// Sums the hidden veth drop counters of one device's `driver_stats`.
pub fn veth_hidden_drops(stats: &[(String, u64)]) -> HiddenDrops {
    let mut d = HiddenDrops::default();
    for (name, value) in stats {
        let v = *value;
        if name == "xdp_xmit_errors" {
            d.xdp_xmit_errors += v;
        } else if let Some(stat) = queue_stat(name, "tx_queue_") {
            if stat == "xdp_xmit_errors" {
                d.xdp_xmit_errors += v;
            }
        } else if let Some(stat) = queue_stat(name, "rx_queue_") {
            match stat {
                "drops" => d.rx_drops += v,
                "xdp_drops" => d.xdp_drops += v,
                "xdp_tx_errors" => d.xdp_tx_errors += v,
                "xdp_redirect" => d.xdp_redirect += v,
                _ => {}
            }
        }
    }
    d
}

/// `prefix` + decimal queue number + `_` + stat → stat.
fn queue_stat<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?;
    let (queue, stat) = rest.split_once('_')?;
    if queue.is_empty() || !queue.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(stat)
}
