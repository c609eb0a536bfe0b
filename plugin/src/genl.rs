//! Raw generic-netlink messages of our own (ethtool FEATURES_SET/GET, netdev
//! DEV_GET): a command and its already-encoded attributes, with the trait
//! impls the genetlink crate needs, written once.

/// Declares `struct $name { cmd: u8, attrs: Vec<u8> }` as a message of the
/// genetlink family `$family` (version `$version`).
macro_rules! raw_genl_message {
    ($(#[$meta:meta])* $name:ident, $family:expr, $version:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        struct $name {
            cmd: u8,
            attrs: Vec<u8>,
        }

        impl netlink_packet_generic::GenlFamily for $name {
            fn family_name() -> &'static str {
                $family
            }
            fn command(&self) -> u8 {
                self.cmd
            }
            fn version(&self) -> u8 {
                $version
            }
        }

        impl netlink_packet_core::Emitable for $name {
            fn buffer_len(&self) -> usize {
                self.attrs.len()
            }
            fn emit(&self, buffer: &mut [u8]) {
                buffer[..self.attrs.len()].copy_from_slice(&self.attrs);
            }
        }

        impl netlink_packet_core::ParseableParametrized<[u8], netlink_packet_generic::GenlHeader> for $name {
            fn parse_with_param(
                buf: &[u8],
                header: netlink_packet_generic::GenlHeader,
            ) -> Result<Self, netlink_packet_core::DecodeError> {
                Ok(Self { cmd: header.cmd, attrs: buf.to_vec() })
            }
        }
    };
}

pub(crate) use raw_genl_message;

/// A failed generic-netlink operation (ethtool, netdev): what was tried, on
/// what, and the kernel's errno where it gave one.
#[derive(Debug, thiserror::Error)]
pub enum GenlError {
    #[error("{family} socket needs a tokio runtime (none is running on this thread)")]
    NoRuntime { family: &'static str },
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    /// The kernel answered with an errno (or the socket failed with one).
    #[error("{op}: {source}")]
    Io { op: String, source: std::io::Error },
    /// A reply we could not use: missing, malformed, or a setting not applied.
    #[error("{op}: {msg}")]
    Reply { op: String, msg: String },
}

impl GenlError {
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            op: op.into(),
            source,
        }
    }

    pub fn reply(op: impl Into<String>, msg: impl std::fmt::Display) -> Self {
        Self::Reply {
            op: op.into(),
            msg: msg.to_string(),
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Io { source, .. } => source.raw_os_error(),
            Self::Netns(e) => e.errno(),
            _ => None,
        }
    }
}

pub type GenlResult<T> = Result<T, GenlError>;

/// The genetlink crate's error, with a netlink errno kept as the OS error it is.
pub(crate) fn genetlink_error(op: String, e: genetlink::GenetlinkError) -> GenlError {
    match e {
        genetlink::GenetlinkError::NetlinkError(io) => GenlError::io(op, io),
        other => GenlError::reply(op, other),
    }
}

/// Opens a generic-netlink connection in the calling thread's namespace, or
/// in the one at `netns` (a socket keeps the namespace it was created in),
/// spawns its task on the current tokio runtime and returns its handle.
/// `family` names the socket in errors ("ethtool", "netdev").
pub(crate) fn connect<C, H, M>(
    netns: Option<&std::path::Path>,
    new_connection: fn() -> std::io::Result<(C, H, M)>,
    family: &'static str,
) -> GenlResult<H>
where
    C: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::runtime::Handle::try_current().map_err(|_| GenlError::NoRuntime { family })?;
    let conn = match netns {
        None => new_connection()
            .map_err(|e| GenlError::io(format!("open {family} genetlink socket"), e))?,
        Some(path) => crate::netns::with_netns(path, new_connection)?.map_err(|e| {
            GenlError::io(
                format!("open {family} genetlink socket in {}", path.display()),
                e,
            )
        })?,
    };
    let (connection, handle, _unsolicited) = conn;
    tokio::spawn(connection);
    Ok(handle)
}
