//! Kernel probing: each datapath step names the feature it needs and the
//! version that brought it, so an old kernel gets a clear CNI error.

use crate::cni::error::{CniError, CniResult, Code};

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
pub fn require_datapath() -> CniResult<()> {
    check_requirements(version())
}

fn check_requirements(have: (u32, u32)) -> CniResult<()> {
    for (what, need) in REQUIREMENTS {
        if have < *need {
            return Err(CniError::new(
                Code::KernelFeature,
                format!(
                    "kernel {}.{} lacks {what}: Linux {}.{} or newer is needed",
                    have.0, have.1, need.0, need.1
                ),
            ));
        }
    }
    Ok(())
}

/// GRO alone makes a veth take redirected frames only since 5.13 (d3256efd8e8b):
/// before that the pod end needs an XDP program.
pub fn gro_enables_veth_napi() -> bool {
    version() >= (5, 13)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_release_strings() {
        assert_eq!(super::parse_release("6.18.44-fc-v669"), (6, 18));
        assert_eq!(super::parse_release("5.4.0-150-generic"), (5, 4));
        assert_eq!(super::parse_release(""), (0, 0));
    }

    #[test]
    fn old_kernels_get_the_feature_and_version_named() {
        let e = super::check_requirements((4, 14)).unwrap_err();
        assert_eq!(e.code, 107);
        assert!(
            e.msg.contains("native XDP on veth") && e.msg.contains("4.19"),
            "{}",
            e.msg
        );
        let e = super::check_requirements((6, 1)).unwrap_err();
        assert!(
            e.msg.contains("xdp-features") && e.msg.contains("6.3"),
            "{}",
            e.msg
        );
        assert!(super::check_requirements((6, 18)).is_ok());
    }
}
