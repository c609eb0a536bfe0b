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

/// Opens a generic-netlink connection in the calling thread's namespace, or
/// in the one at `netns` (a socket keeps the namespace it was created in),
/// spawns its task on the current tokio runtime and returns its handle.
/// `what` names the socket in errors ("ethtool", "netdev").
pub(crate) fn connect<C, H, M>(
    netns: Option<&std::path::Path>,
    new_connection: fn() -> std::io::Result<(C, H, M)>,
    what: &str,
) -> anyhow::Result<H>
where
    C: std::future::Future<Output = ()> + Send + 'static,
{
    use anyhow::Context;
    tokio::runtime::Handle::try_current().map_err(|_| {
        anyhow::anyhow!("{what} socket needs a tokio runtime (none is running on this thread)")
    })?;
    let conn = match netns {
        None => new_connection().with_context(|| format!("open {what} genetlink socket"))?,
        Some(path) => crate::netns::with_netns(path, new_connection)?
            .with_context(|| format!("open {what} genetlink socket in {}", path.display()))?,
    };
    let (connection, handle, _unsolicited) = conn;
    tokio::spawn(connection);
    Ok(handle)
}
