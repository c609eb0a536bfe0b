//! The datapath's one error type. Each variant names the operation (the
//! syscall or aya call) and the object it failed on (map, pin path, program,
//! ifindex), aya's way, and keeps the cause typed ([`std::io::Error`] or
//! aya's error) so [`Error::errno`] can read the errno without parsing text.
//!
//! The message is the whole story on one line: the operation, the object and
//! the cause chain down to the errno (aya's own messages leave the errno to
//! their `source()`). So that chain-walking reporters (anyhow's `{:#}`) do not
//! print the causes twice, `source()` is left empty.

use crate::causes::Causes;
use std::io;
use std::path::PathBuf;

use aya::maps::xdp::XdpMapError;
use aya::maps::{MapError, MapType};
use aya::pin::PinError;
use aya::programs::links::LinkError;
use aya::programs::ProgramError;
use aya::sys::SyscallError;
use aya::EbpfError;

use crate::lock::LockError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No free pod slot, or a pod map refused another entry (E2BIG).
    #[error("pod maps full (max {max_pods} pods): raise maxPods and re-create the node maps")]
    Full { max_pods: u32 },

    /// A MAC or address of the pod is another pod's.
    #[error("{what} already belongs to the pod on host ifindex {owner}")]
    InUse { what: String, owner: u32 },

    /// The running kernel predates something the datapath needs.
    #[error("{what} needs Linux {version} or newer ({commit})")]
    KernelTooOld {
        what: &'static str,
        version: &'static str,
        commit: &'static str,
    },

    /// A pinned map with another layout than this build's (aya would reuse it
    /// unchecked).
    #[error(
        "pinned map {} is incompatible with this build: found type/key/value {:?}/{}/{}, \
         expected {:?}/{}/{}; remove the pins (veth-xdp teardown) or use another pin root",
        path.display(), found.0, found.1, found.2, expected.0, expected.1, expected.2
    )]
    Incompatible {
        path: PathBuf,
        found: (MapType, u32, u32),
        expected: (MapType, u32, u32),
    },

    /// Opening a pinned map: the node is not set up, or its pins are gone.
    #[error("open pinned map {} (BPF_OBJ_GET); is the node set up?: {}", path.display(), Causes(error))]
    OpenMap { path: PathBuf, error: Box<MapError> },

    /// Reading a pinned map's info.
    #[error("{op} {}: {}", path.display(), Causes(error))]
    PinnedMap {
        op: &'static str,
        path: PathBuf,
        error: Box<MapError>,
    },

    /// An operation on an open map (lookup, update, delete, batch lookup, type).
    #[error("{op} {map}: {}", Causes(error))]
    Map {
        op: &'static str,
        map: &'static str,
        error: Box<MapError>,
    },

    /// An update of the devmap `vx_redirect` (the redirect targets).
    #[error("{op} ifindex {ifindex} in devmap vx_redirect: {}", Causes(error))]
    Redirect {
        op: &'static str,
        ifindex: u32,
        error: Box<XdpMapError>,
    },

    /// Loading the embedded object (maps created or reused from their pins, BTF).
    #[error("load the embedded BPF object (maps, BTF): {}", Causes(error))]
    Load { error: Box<EbpfError> },

    /// An operation on a program: find it in the object, load (verifier), open its pin.
    #[error("{op} {program}: {}", Causes(error))]
    Program {
        op: &'static str,
        program: &'static str,
        error: Box<ProgramError>,
    },

    /// A program the embedded object should have.
    #[error("program {program} missing from the embedded object")]
    MissingProgram { program: &'static str },

    /// Attaching a program to a device.
    #[error("attach {program} ({hook}) to ifindex {ifindex}: {}", Causes(error))]
    Attach {
        program: &'static str,
        hook: &'static str,
        ifindex: u32,
        error: Box<ProgramError>,
    },

    /// The uplink has an XDP program of someone else's (EBUSY in driver mode).
    #[error("attach the uplink program to uplink ifindex {ifindex}: another XDP program is attached: {error}")]
    UplinkBusy { ifindex: u32, error: Box<Error> },

    /// The uplink program attaches in neither driver nor generic mode.
    #[error(
        "attach the uplink program to uplink ifindex {ifindex}: driver mode failed ({driver}), \
         generic mode failed too: {generic}"
    )]
    UplinkNoMode {
        ifindex: u32,
        driver: Box<Error>,
        generic: Box<Error>,
    },

    /// Pinning a program or link (BPF_OBJ_PIN).
    #[error("pin {what} at {}: {}", path.display(), Causes(error))]
    Pin {
        what: &'static str,
        path: PathBuf,
        error: PinError,
    },

    /// An operation on a link or its pin (open, info, detach, take from aya).
    #[error("{op} {}: {}", path.display(), Causes(error))]
    Link {
        op: &'static str,
        path: PathBuf,
        error: LinkError,
    },

    /// A file system operation on the pin tree (mkdir, statfs, mount, unlink).
    #[error("{op} {}: {error}", path.display())]
    Fs {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },

    /// The name of an ifindex (tcx attach in aya takes a name).
    #[error("if_indextoname({ifindex}): {error}")]
    Ifname { ifindex: u32, error: io::Error },

    /// The possible CPUs (per-CPU values), from `path`.
    #[error("read possible CPUs from {path}: {error}")]
    Cpus {
        path: &'static str,
        error: io::Error,
    },

    /// The node lock or the pod-slot lock.
    #[error("{0}")]
    Lock(LockError),

    /// The pin root is not on a bpf filesystem.
    #[error("pin root {} is not on a bpf filesystem: choose a path under {mount}", path.display())]
    NotBpffs { path: PathBuf, mount: &'static str },

    /// An attachment key that cannot be a pin name.
    #[error("invalid attachment key {key:?}: use only [A-Za-z0-9_-] (bpffs pin names)")]
    InvalidKey { key: String },

    /// A node spec that cannot be set up.
    #[error("ensure_node: {0}")]
    InvalidNodeSpec(&'static str),

    /// What `teardown_node` could not remove (it goes on after each failure).
    #[error("teardown_node: {}", join(errors))]
    Teardown { errors: Vec<Error> },
}

impl From<LockError> for Error {
    fn from(e: LockError) -> Self {
        Self::Lock(e)
    }
}

impl Error {
    /// The errno of the failed syscall, if the error comes from one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::OpenMap { error, .. }
            | Self::PinnedMap { error, .. }
            | Self::Map { error, .. } => map_errno(error),
            Self::Redirect { error, .. } => match &**error {
                XdpMapError::MapError(e) => map_errno(e),
                _ => None,
            },
            Self::Program { error, .. } | Self::Attach { error, .. } => program_errno(error),
            Self::Pin {
                error: PinError::SyscallError(s),
                ..
            } => s.io_error.raw_os_error(),
            Self::Link { error, .. } => link_errno(error),
            Self::Load { error } => match &**error {
                EbpfError::MapError(e) => map_errno(e),
                EbpfError::ProgramError(e) => program_errno(e),
                EbpfError::FileError { error, .. } => error.raw_os_error(),
                _ => None,
            },
            Self::Fs { error, .. } | Self::Ifname { error, .. } | Self::Cpus { error, .. } => {
                error.raw_os_error()
            }
            Self::Lock(e) => e.error.raw_os_error(),
            Self::UplinkBusy { error, .. } => error.errno(),
            Self::UplinkNoMode { generic, .. } => generic.errno(),
            _ => None,
        }
    }
}

pub(crate) fn map_errno(e: &MapError) -> Option<i32> {
    match e {
        MapError::SyscallError(s) => s.io_error.raw_os_error(),
        MapError::IoError(e) => e.raw_os_error(),
        _ => None,
    }
}

fn program_errno(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        ProgramError::LoadError { io_error, .. } => io_error.raw_os_error(),
        ProgramError::IOError(e) => e.raw_os_error(),
        _ => None,
    }
}

pub(crate) fn link_errno(e: &LinkError) -> Option<i32> {
    match e {
        LinkError::SyscallError(SyscallError { io_error, .. }) => io_error.raw_os_error(),
        _ => None,
    }
}

fn join(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn syscall(call: &'static str, errno: i32) -> SyscallError {
        SyscallError {
            call,
            io_error: io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn messages_carry_the_errno_once_and_errno_reads_it() {
        let e = Error::Map {
            op: "insert into",
            map: "vx_pod_v4",
            error: Box::new(MapError::SyscallError(syscall(
                "bpf_map_update_elem",
                libc::E2BIG,
            ))),
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("insert into vx_pod_v4: `bpf_map_update_elem` failed: "),
            "{msg}"
        );
        assert_eq!(
            msg.matches(&io::Error::from_raw_os_error(libc::E2BIG).to_string())
                .count(),
            1,
            "{msg}"
        );
        assert_eq!(e.errno(), Some(libc::E2BIG));
        assert!(e.source().is_none(), "the message already holds the causes");
    }

    #[test]
    fn typed_pod_errors_keep_their_texts() {
        assert_eq!(
            Error::Full { max_pods: 2 }.to_string(),
            "pod maps full (max 2 pods): raise maxPods and re-create the node maps"
        );
        let e = Error::InUse {
            what: "address 10.0.0.1".into(),
            owner: 7,
        };
        assert_eq!(
            e.to_string(),
            "address 10.0.0.1 already belongs to the pod on host ifindex 7"
        );
        assert_eq!(e.errno(), None);
    }
}
