//! Spec versions: which we accept, and which verbs each one has.

/// The versions this plugin speaks, oldest first.
pub const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest supported version, used where the caller gave none we can read.
pub const LATEST: &str = "1.1.0";

pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// (major, minor, patch) of a version string; None when malformed.
pub fn parse(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    let t = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(t)
}

fn at_least(v: &str, min: (u32, u32, u32)) -> bool {
    parse(v).is_some_and(|p| p >= min)
}

/// CHECK exists since 0.4.0.
pub fn has_check(v: &str) -> bool {
    at_least(v, (0, 4, 0))
}

/// GC and STATUS exist since 1.1.0.
pub fn has_gc_status(v: &str) -> bool {
    at_least(v, (1, 1, 0))
}

/// Results carry `ips[].version` before 1.0.0.
pub fn ips_carry_version(v: &str) -> bool {
    !at_least(v, (1, 0, 0))
}

/// The VERSION reply.
pub fn version_reply(cni_version: &str) -> String {
    serde_json::json!({ "cniVersion": cni_version, "supportedVersions": SUPPORTED }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_per_version() {
        assert!(!has_check("0.3.1"));
        assert!(has_check("0.4.0"));
        assert!(!has_gc_status("1.0.0"));
        assert!(has_gc_status("1.1.0"));
        assert!(ips_carry_version("0.4.0"));
        assert!(!ips_carry_version("1.0.0"));
        assert_eq!(parse("1.1"), None);
        assert_eq!(parse("1.x.0"), None);
    }
}
