//! The egress mode of a pod: how frames leaving it are steered at its host veth.

/// How frames leaving a pod are steered at its host veth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EgressMode {
    /// XDP on the host veth (the talk's model): frames a pod sends with XDP never become skbs.
    Xdp,
    /// a tc program redirects skbs; the pod keeps checksum offload and GSO.
    Tc,
}

impl EgressMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "xdp" => Some(Self::Xdp),
            "tc" => Some(Self::Tc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Xdp => "xdp",
            Self::Tc => "tc",
        }
    }
}
