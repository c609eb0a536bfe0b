//! Kernel probing: each datapath step names the feature it needs and the
//! version that brought it, so an old kernel gets a clear CNI error.

/// The running kernel is older than a feature a step needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kernel {}.{} lacks {feature}: Linux {}.{} or newer is needed", have.0, have.1, need.0, need.1)]
pub struct KernelTooOld {
    pub feature: &'static str,
    pub need: (u32, u32),
    pub have: (u32, u32),
}

/// (major, minor) of the running kernel.
pub fn version() -> (u32, u32) {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_release(&release)
}

fn parse_release(release: &str) -> (u32, u32) {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// What the datapath needs, with the version that brought it.
pub const REQUIREMENTS: &[(&str, (u32, u32))] = &[
    ("native XDP on veth", (4, 19)),
    ("BPF_MAP_TYPE_DEVMAP_HASH", (5, 4)),
    ("XDP multi-buffer (xdp.frags) on veth", (5, 18)),
    ("netdev genetlink xdp-features (ndo-xmit readback)", (6, 3)),
];

/// Fails with the first requirement the running kernel misses.
pub fn require_datapath() -> Result<(), KernelTooOld> {
    check_requirements(version(), REQUIREMENTS)
}

fn check_requirements(
    have: (u32, u32),
    requirements: &[(&'static str, (u32, u32))],
) -> Result<(), KernelTooOld> {
    match requirements.iter().find(|(_, need)| have < *need) {
        Some(&(feature, need)) => Err(KernelTooOld {
            feature,
            need,
            have,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_release_strings() {
        assert_eq!(super::parse_release("6.18.44-fc-v669"), (6, 18));
        assert_eq!(super::parse_release("5.4.0-150-generic"), (5, 4));
        assert_eq!(super::parse_release(""), (0, 0));
    }

    use super::{check_requirements, REQUIREMENTS};
    use crate::cni::CniError;

    #[test]
    fn old_kernels_get_the_feature_and_version_named() {
        let e = CniError::from(check_requirements((4, 14), REQUIREMENTS).unwrap_err());
        assert_eq!(e.code, 107);
        assert!(
            e.msg.contains("native XDP on veth") && e.msg.contains("4.19"),
            "{}",
            e.msg
        );
        let e = CniError::from(check_requirements((6, 1), REQUIREMENTS).unwrap_err());
        assert!(
            e.msg.contains("xdp-features") && e.msg.contains("6.3"),
            "{}",
            e.msg
        );
        assert!(check_requirements((6, 18), REQUIREMENTS).is_ok());
    }
}
