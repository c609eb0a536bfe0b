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
