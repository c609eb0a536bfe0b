//! Offload features and channels over the ethtool genetlink family.
//!
//! The `ethtool` crate reads channels; it cannot set features, so FEATURES_SET
//! is one small genetlink message of our own, followed by a re-read that
//! confirms the kernel applied it (it may refuse a "[fixed]" feature or drag
//! dependent features along).
//!
//! FEATURES_GET is ours too: ethtool 0.3.0's bitset parser drops the bit with
//! index 0 (`tx-scatter-gather`, `src/feature/attr.rs` only keeps bits whose
//! index is non-zero), so we read the reply's bitsets ourselves. Both messages
//! go over the crate's own genetlink socket (`EthtoolHandle::handle`), which
//! already lives in the right namespace.
//!
//! Kernel feature names (not the ethtool CLI's aliases): `tx-checksum-ip-generic`,
//! `tx-checksum-sctp`, `tx-vlan-hw-insert`, `rx-vlan-hw-parse`, `rx-gro`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ethtool::{EthtoolAttr, EthtoolChannelAttr, EthtoolHandle};
use futures::StreamExt;
use netlink_packet_core::{
    parse_string, DecodeError, Emitable, NetlinkMessage, NetlinkPayload, Nla, NlasIterator,
    NLA_F_NESTED, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_generic::GenlMessage;

use crate::genl::GenlError;

/// An ethtool genetlink operation failed (offloads, channels).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EthtoolError(#[from] pub GenlError);

type Result<T, E = EthtoolError> = std::result::Result<T, E>;

/// An ethtool genetlink socket bound to one network namespace (devices are named
/// by ifname, which is only unique within a namespace).
pub struct Ethtool {
    handle: EthtoolHandle,
}

/// Active state of every feature the device reports, by kernel name.
pub type Features = BTreeMap<String, bool>;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    pub rx_max: u32,
    pub tx_max: u32,
    pub combined_max: u32,
    pub rx: u32,
    pub tx: u32,
    pub combined: u32,
}

impl Ethtool {
    /// A socket in the calling thread's namespace (call inside a tokio runtime).
    pub fn current() -> Result<Self> {
        let handle = crate::genl::connect(None, ethtool::new_connection, "ethtool")?;
        Ok(Self { handle })
    }

    /// A socket in the namespace at `path`.
    pub fn in_netns(path: &Path) -> Result<Self> {
        let handle = crate::genl::connect(Some(path), ethtool::new_connection, "ethtool")?;
        Ok(Self { handle })
    }

    pub async fn features(&self, ifname: &str) -> Result<Features> {
        let op = || format!("ethtool FEATURES_GET on {ifname}");
        let replies = self
            .exchange(FeaturesMsg::get(ifname), NLM_F_REQUEST, op)
            .await?;
        let reply = replies
            .iter()
            .find(|m| m.cmd == ETHTOOL_MSG_FEATURES_GET_REPLY)
            .ok_or_else(|| GenlError::reply(op(), "no reply"))?;
        parse_features(&reply.attrs)
            .map_err(|e| GenlError::reply(op(), format!("malformed reply: {e}")).into())
    }

    /// Sets each listed feature (only those bits change), then re-reads and fails
    /// naming every feature whose active state differs from what was asked.
    /// An empty list sends nothing.
    pub async fn set_features(&self, ifname: &str, wanted: &[(&str, bool)]) -> Result<()> {
        if wanted.is_empty() {
            return Ok(());
        }
        let request = FeaturesMsg::set(ifname, wanted);
        self.exchange(request, NLM_F_REQUEST | NLM_F_ACK, || {
            format!("ethtool FEATURES_SET {} on {ifname}", Wanted(wanted))
        })
        .await?;
        let active = self.features(ifname).await?;
        let mismatches = unapplied(ifname, &active, wanted);
        if mismatches.is_empty() {
            Ok(())
        } else {
            Err(GenlError::reply(
                format!("ethtool FEATURES_SET on {ifname}"),
                format!("not applied: {}", mismatches.join("; ")),
            )
            .into())
        }
    }

    pub async fn channels(&self, ifname: &str) -> Result<Channels> {
        let mut handle = self.handle.clone();
        let op = || format!("ethtool CHANNELS_GET on {ifname}");
        let mut replies = handle
            .channel()
            .get(Some(ifname))
            .execute()
            .await
            .map_err(|e| ethtool_error(op(), e))?;
        let mut channels = None;
        while let Some(reply) = replies.next().await {
            let reply = reply.map_err(|e| ethtool_error(op(), e))?;
            channels = Some(channels_from(&reply.payload.nlas));
        }
        channels.ok_or_else(|| GenlError::reply(op(), "no reply").into())
    }

    /// Sends one of our own ethtool messages and collects the replies; a
    /// netlink error becomes the errno it carries.
    async fn exchange(
        &self,
        msg: FeaturesMsg,
        flags: u16,
        op: impl Fn() -> String,
    ) -> Result<Vec<FeaturesMsg>> {
        let mut genl = self.handle.handle.clone();
        let mut nl = NetlinkMessage::from(GenlMessage::from_payload(msg));
        nl.header.flags = flags;
        let mut stream = genl
            .request(nl)
            .await
            .map_err(|e| crate::genl::genetlink_error(op(), e))?;
        let mut replies = Vec::new();
        while let Some(reply) = stream.next().await {
            match reply.map_err(|e| GenlError::reply(op(), e))?.payload {
                NetlinkPayload::InnerMessage(genl) => replies.push(genl.payload),
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(GenlError::io(op(), e.to_io()).into())
                }
                _ => {}
            }
        }
        Ok(replies)
    }
}

/// The crate's error, with a netlink errno shown as the OS error it is.
fn ethtool_error(op: String, e: ethtool::EthtoolError) -> GenlError {
    match e {
        ethtool::EthtoolError::NetlinkError(msg) if msg.code.is_some() => {
            GenlError::io(op, msg.to_io())
        }
        other => GenlError::reply(op, other),
    }
}

fn channels_from(attrs: &[EthtoolAttr]) -> Channels {
    let mut ch = Channels::default();
    for attr in attrs {
        match attr {
            EthtoolAttr::Channel(EthtoolChannelAttr::RxMax(v)) => ch.rx_max = *v,
            EthtoolAttr::Channel(EthtoolChannelAttr::TxMax(v)) => ch.tx_max = *v,
            EthtoolAttr::Channel(EthtoolChannelAttr::CombinedMax(v)) => ch.combined_max = *v,
            EthtoolAttr::Channel(EthtoolChannelAttr::RxCount(v)) => ch.rx = *v,
            EthtoolAttr::Channel(EthtoolChannelAttr::TxCount(v)) => ch.tx = *v,
            EthtoolAttr::Channel(EthtoolChannelAttr::CombinedCount(v)) => ch.combined = *v,
            _ => {}
        }
    }
    ch
}

/// One line per wanted feature whose active state is not what was asked.
fn unapplied(ifname: &str, active: &Features, wanted: &[(&str, bool)]) -> Vec<String> {
    wanted
        .iter()
        .filter_map(|&(name, want)| match active.get(name) {
            None => Some(format!("{name} is not a feature of {ifname}")),
            Some(&is) if is != want => Some(format!(
                "{name} on {ifname} is still {} (fixed?)",
                on_off(is)
            )),
            Some(_) => None,
        })
        .collect()
}

fn on_off(v: bool) -> &'static str {
    if v {
        "on"
    } else {
        "off"
    }
}

/// Shows a wanted list as `a=off,b=on` in error messages.
struct Wanted<'a>(&'a [(&'a str, bool)]);

impl fmt::Display for Wanted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, v)) in self.0.iter().enumerate() {
            write!(f, "{}{name}={}", if i == 0 { "" } else { "," }, on_off(*v))?;
        }
        Ok(())
    }
}

// include/uapi/linux/ethtool_netlink.h (checked against linux-libc-dev 6.1).
const ETHTOOL_GENL_NAME: &str = "ethtool";
const ETHTOOL_GENL_VERSION: u8 = 1;
const ETHTOOL_MSG_FEATURES_GET: u8 = 11;
const ETHTOOL_MSG_FEATURES_SET: u8 = 12;
/// Kernel-to-user message ids are a separate enum: FEATURES_GET_REPLY is 11 too.
const ETHTOOL_MSG_FEATURES_GET_REPLY: u8 = 11;
const ETHTOOL_A_FEATURES_HEADER: u16 = 1;
const ETHTOOL_A_FEATURES_HW: u16 = 2;
const ETHTOOL_A_FEATURES_WANTED: u16 = 3;
const ETHTOOL_A_FEATURES_ACTIVE: u16 = 4;
const ETHTOOL_A_HEADER_DEV_NAME: u16 = 2;
const ETHTOOL_A_BITSET_NOMASK: u16 = 1;
const ETHTOOL_A_BITSET_BITS: u16 = 3;
const ETHTOOL_A_BITSET_BITS_BIT: u16 = 1;
const ETHTOOL_A_BITSET_BIT_NAME: u16 = 2;
const ETHTOOL_A_BITSET_BIT_VALUE: u16 = 3;

crate::genl::raw_genl_message!(
    /// An ethtool FEATURES_GET/SET request or a reply: the command and its encoded
    /// attribute stream (requests are built with [`Attr`], replies parsed lazily).
    FeaturesMsg, ETHTOOL_GENL_NAME, ETHTOOL_GENL_VERSION);

impl FeaturesMsg {
    fn get(ifname: &str) -> Self {
        Self::new(ETHTOOL_MSG_FEATURES_GET, &[header(ifname)])
    }

    /// A SET whose WANTED bitset has no NOMASK flag: the listed bits form the
    /// mask, so every other feature is left as it is.
    fn set(ifname: &str, wanted: &[(&str, bool)]) -> Self {
        let bits = wanted
            .iter()
            .map(|&(name, on)| wanted_bit(name, on))
            .collect();
        let bitset = Attr::Nest(
            ETHTOOL_A_FEATURES_WANTED,
            vec![Attr::Nest(ETHTOOL_A_BITSET_BITS, bits)],
        );
        Self::new(ETHTOOL_MSG_FEATURES_SET, &[header(ifname), bitset])
    }

    fn new(cmd: u8, attrs: &[Attr]) -> Self {
        let mut buf = vec![0u8; attrs.buffer_len()];
        attrs.emit(&mut buf);
        Self { cmd, attrs: buf }
    }
}

fn header(ifname: &str) -> Attr {
    Attr::Nest(
        ETHTOOL_A_FEATURES_HEADER,
        vec![Attr::Str(ETHTOOL_A_HEADER_DEV_NAME, ifname.into())],
    )
}

/// BITS_BIT { NAME, VALUE if on }: in a masked bitset a bit without VALUE is off.
fn wanted_bit(name: &str, on: bool) -> Attr {
    let mut bit = vec![Attr::Str(ETHTOOL_A_BITSET_BIT_NAME, name.into())];
    if on {
        bit.push(Attr::Flag(ETHTOOL_A_BITSET_BIT_VALUE));
    }
    Attr::Nest(ETHTOOL_A_BITSET_BITS_BIT, bit)
}

/// The attribute shapes a request needs.
#[derive(Debug, Clone)]
enum Attr {
    Nest(u16, Vec<Attr>),
    Str(u16, String),
    Flag(u16),
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match self {
            Attr::Nest(_, inner) => inner.as_slice().buffer_len(),
            Attr::Str(_, s) => s.len() + 1,
            Attr::Flag(_) => 0,
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Attr::Nest(kind, _) => kind | NLA_F_NESTED,
            Attr::Str(kind, _) | Attr::Flag(kind) => *kind,
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Attr::Nest(_, inner) => inner.as_slice().emit(buffer),
            Attr::Str(_, s) => {
                buffer[..s.len()].copy_from_slice(s.as_bytes());
                buffer[s.len()] = 0;
            }
            Attr::Flag(_) => {}
        }
    }
}

/// Every feature of the HW bitset (its mask is "all features") with its state
/// from the ACTIVE bitset.
fn parse_features(attrs: &[u8]) -> Result<Features, DecodeError> {
    let mut all = None;
    let mut active = None;
    for nla in NlasIterator::new(attrs) {
        let nla = nla?;
        match nla.kind() {
            ETHTOOL_A_FEATURES_HW => all = Some(parse_bitset(nla.value())?),
            ETHTOOL_A_FEATURES_ACTIVE => active = Some(parse_bitset(nla.value())?),
            _ => {}
        }
    }
    let all = all.ok_or_else(|| DecodeError::from("no ETHTOOL_A_FEATURES_HW"))?;
    let active = active.ok_or_else(|| DecodeError::from("no ETHTOOL_A_FEATURES_ACTIVE"))?;
    Ok(all
        .into_keys()
        .map(|name| {
            let on = active.get(&name).copied().unwrap_or(false);
            (name, on)
        })
        .collect())
}

/// A verbose bitset as name -> value. With NOMASK (a list) every listed bit is
/// set; otherwise the listed bits are the mask and VALUE marks the set ones.
fn parse_bitset(bitset: &[u8]) -> Result<BTreeMap<String, bool>, DecodeError> {
    let mut is_list = false;
    let mut bits = None;
    for nla in NlasIterator::new(bitset) {
        let nla = nla?;
        match nla.kind() {
            ETHTOOL_A_BITSET_NOMASK => is_list = true,
            ETHTOOL_A_BITSET_BITS => bits = Some(nla.value().to_vec()),
            _ => {}
        }
    }
    let bits =
        bits.ok_or_else(|| DecodeError::from("bitset without ETHTOOL_A_BITSET_BITS (compact?)"))?;
    let mut out = BTreeMap::new();
    for bit in NlasIterator::new(bits.as_slice()) {
        let bit = bit?;
        if bit.kind() != ETHTOOL_A_BITSET_BITS_BIT {
            continue;
        }
        let (name, has_value) = parse_bit(bit.value())?;
        out.insert(name, is_list || has_value);
    }
    Ok(out)
}

fn parse_bit(bit: &[u8]) -> Result<(String, bool), DecodeError> {
    let mut name = None;
    let mut has_value = false;
    for nla in NlasIterator::new(bit) {
        let nla = nla?;
        match nla.kind() {
            ETHTOOL_A_BITSET_BIT_NAME => name = Some(parse_string(nla.value())?),
            ETHTOOL_A_BITSET_BIT_VALUE => has_value = true,
            _ => {}
        }
    }
    let name = name.ok_or_else(|| DecodeError::from("bitset bit without a name"))?;
    Ok((name, has_value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_request_encodes_masked_bits() {
        let msg = FeaturesMsg::set("v0", &[("rx-gro", true), ("tx-checksum-sctp", false)]);
        // header nest: 4 + (4 + "v0\0" padded to 4) = 12
        let top: Vec<_> = NlasIterator::new(msg.attrs.as_slice())
            .map(|n| n.unwrap())
            .collect();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].kind(), ETHTOOL_A_FEATURES_HEADER);
        assert!(top[0].nested_flag());
        assert_eq!(top[1].kind(), ETHTOOL_A_FEATURES_WANTED);
        // WANTED carries BITS only: no NOMASK, so only these two bits change.
        let wanted: Vec<_> = NlasIterator::new(top[1].value())
            .map(|n| n.unwrap())
            .collect();
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].kind(), ETHTOOL_A_BITSET_BITS);
        let parsed = parse_bitset(top[1].value()).unwrap();
        assert_eq!(parsed.get("rx-gro"), Some(&true));
        assert_eq!(parsed.get("tx-checksum-sctp"), Some(&false));
    }

    #[test]
    fn unapplied_names_each_feature() {
        let active: Features = [("a".to_string(), true), ("b".to_string(), false)]
            .into_iter()
            .collect();
        let out = unapplied("v0", &active, &[("a", false), ("b", false), ("c", true)]);
        assert_eq!(
            out,
            vec!["a on v0 is still on (fixed?)", "c is not a feature of v0"]
        );
    }
}
