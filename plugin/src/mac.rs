//! MAC addresses: the one type, formatter and parser every module uses.

/// A MAC address.
pub type Mac = [u8; 6];

/// Formats a MAC as aa:bb:cc:dd:ee:ff.
pub fn mac_to_string(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses aa:bb:cc:dd:ee:ff (case-insensitive; '-' accepted as separator).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        mac[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mac = [0x02, 0xab, 0, 0x10, 0xff, 1];
        assert_eq!(mac_to_string(&mac), "02:ab:00:10:ff:01");
        assert_eq!(parse_mac("02:AB:00:10:ff:01"), Some(mac));
        assert_eq!(parse_mac("02-ab-00-10-ff-01"), Some(mac));
        assert_eq!(parse_mac("02:ab:00:10:ff"), None);
        assert_eq!(parse_mac("02:ab:00:10:ff:1"), None);
    }
}
