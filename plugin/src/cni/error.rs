//! CNI errors: the only place where error codes are chosen.
//!
//! Spec codes (CNI 1.1 §Error): 1 incompatible version, 2 unsupported field,
//! 3 container unknown, 4 invalid environment variables, 5 I/O failure,
//! 6 failed to decode, 7 invalid network config, 11 try again later,
//! 50 plugin not available (STATUS). Our own codes start at 100 and are listed
//! in the README ("Error codes").

use serde_json::json;

/// A CNI error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    IncompatibleVersion = 1,
    UnsupportedField = 2,
    UnknownContainer = 3,
    InvalidEnv = 4,
    Io = 5,
    Decode = 6,
    InvalidConfig = 7,
    TryAgain = 11,
    NotAvailable = 50,
    /// a netlink operation on a link, address, route or fdb entry failed
    Netlink = 100,
    /// an offload feature or channel count could not be set or verified
    Offload = 101,
    /// the delegated IPAM plugin is missing, failed to run or returned garbage
    Ipam = 102,
    /// an attachment for this container and ifname already exists
    AttachmentExists = 103,
    /// the uplink is missing, down or unusable
    Uplink = 104,
    /// loading, pinning or attaching the BPF datapath failed
    Datapath = 105,
    /// the datapath maps are full (raise `maxPods`)
    DatapathFull = 106,
    /// the kernel lacks a feature this step needs
    KernelFeature = 107,
    /// CHECK found the attachment differs from what ADD made
    CheckMismatch = 108,
    /// a bug: the plugin panicked (everything the ADD had made was undone)
    Internal = 109,
}

impl Code {
    pub fn value(self) -> u32 {
        self as u32
    }
}

/// An error the plugin reports to its caller.
#[derive(Debug, Clone)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        Self {
            code: code.value(),
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// An error another plugin (the delegated IPAM) reported: its code is kept.
    pub fn delegated(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// The error JSON of the spec, in the given cniVersion.
    pub fn to_json(&self, cni_version: &str) -> String {
        let mut v = json!({ "cniVersion": cni_version, "code": self.code, "msg": self.msg });
        if !self.details.is_empty() {
            v["details"] = json!(self.details);
        }
        serde_json::to_string(&v).expect("error JSON serialises")
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.code, self.msg)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

pub type CniResult<T> = std::result::Result<T, CniError>;

/// Adds what the step was doing to an error that becomes a CNI error, keeping
/// the code its type chose: `nl.route_add(&r).await.context("host route")?`.
pub trait Context<T> {
    fn context(self, what: impl std::fmt::Display) -> CniResult<T>;
}

impl<T, E: Into<CniError>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> CniResult<T> {
        self.map_err(|e| {
            let mut e = e.into();
            e.msg = format!("{what}: {}", e.msg);
            e
        })
    }
}

/// Failures collected by a best-effort teardown (DEL, GC): every step runs,
/// each failure is kept, and the first one's code is reported.
#[derive(Debug, Default)]
pub struct ErrorList(pub Vec<CniError>);

impl ErrorList {
    /// Records the failure of a step, if it failed.
    pub fn note<T>(&mut self, r: std::result::Result<T, impl Into<CniError>>) -> Option<T> {
        r.map_err(|e| self.0.push(e.into())).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ok if nothing failed, else one error: the first failure's code, every message.
    pub fn into_result(self, what: &str) -> CniResult<()> {
        let Some(first) = self.0.first() else {
            return Ok(());
        };
        let msgs: Vec<String> = self.0.iter().map(|e| e.msg.clone()).collect();
        Err(CniError {
            code: first.code,
            msg: format!("{what}: {}", msgs.join("; ")),
            details: first.details.clone(),
        })
    }
}

// The lower layers' typed errors, each mapped to its code here (and only here).

impl From<crate::netlink::NlError> for CniError {
    fn from(e: crate::netlink::NlError) -> Self {
        Self::new(Code::Netlink, e.to_string())
    }
}

impl From<crate::ethtool::EthtoolError> for CniError {
    fn from(e: crate::ethtool::EthtoolError) -> Self {
        Self::new(Code::Offload, e.to_string())
    }
}

impl From<crate::netdev::NetdevError> for CniError {
    fn from(e: crate::netdev::NetdevError) -> Self {
        Self::new(Code::Datapath, e.to_string())
    }
}

impl From<crate::kernel::KernelTooOld> for CniError {
    fn from(e: crate::kernel::KernelTooOld) -> Self {
        Self::new(Code::KernelFeature, e.to_string())
    }
}

impl From<crate::record::RecordError> for CniError {
    fn from(e: crate::record::RecordError) -> Self {
        Self::new(Code::Io, e.to_string())
    }
}

impl From<crate::sysctl::SysctlError> for CniError {
    fn from(e: crate::sysctl::SysctlError) -> Self {
        Self::new(Code::Io, e.to_string())
    }
}

impl From<crate::lock::LockError> for CniError {
    fn from(e: crate::lock::LockError) -> Self {
        Self::new(Code::Io, e.to_string())
    }
}

/// CNI_NETNS: gone is "container unknown" (3), not a netns is 4.
impl From<crate::netns::NetnsPathError> for CniError {
    fn from(e: crate::netns::NetnsPathError) -> Self {
        use crate::netns::NetnsPathError;
        let code = match e {
            NetnsPathError::Missing(_) => Code::UnknownContainer,
            NetnsPathError::NotNetns(_) => Code::InvalidEnv,
            NetnsPathError::Other { .. } => Code::Io,
        };
        Self::new(code, format!("CNI_NETNS: {e}"))
    }
}

/// Entering a pod's namespace failed: it vanished (3) or could not be entered.
impl From<crate::netns::NetnsError> for CniError {
    fn from(e: crate::netns::NetnsError) -> Self {
        let code = match e.errno() {
            Some(libc::ENOENT) => Code::UnknownContainer,
            _ => Code::Io,
        };
        Self::new(code, e.to_string())
    }
}

// ---------------------------------------------------------------- the datapath's errors

/// A datapath error as a CNI error: the code from the variant, the message
/// from its text (which names the operation, the object and the errno).
impl From<crate::bpf::Error> for CniError {
    fn from(e: crate::bpf::Error) -> Self {
        use crate::bpf::Error as E;
        let code = match &e {
            E::Full { .. } => Code::DatapathFull,
            E::InUse { .. } => Code::InvalidConfig,
            E::KernelTooOld { .. } => Code::KernelFeature,
            E::Lock(_) => Code::Io,
            _ => Code::Datapath,
        };
        CniError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teardown_reports_the_first_failures_code_and_every_message() {
        let mut errors = ErrorList::default();
        assert_eq!(errors.note(Ok::<u32, CniError>(7)), Some(7));
        assert!(errors.is_empty());
        // IPAM's own code (here 11, try again) is kept, not replaced by ours.
        errors.note(Err::<(), _>(CniError::delegated(11, "IPAM busy", "")));
        errors.note(Err::<(), _>(CniError::new(
            Code::Netlink,
            "delete link vx1: EBUSY",
        )));
        let e = errors.into_result("DEL incomplete").unwrap_err();
        assert_eq!(e.code, 11);
        assert_eq!(e.msg, "DEL incomplete: IPAM busy; delete link vx1: EBUSY");
        assert!(ErrorList::default().into_result("x").is_ok());
    }

    #[test]
    fn context_keeps_the_code_the_error_type_chose() {
        let r: Result<(), crate::kernel::KernelTooOld> = Err(crate::kernel::KernelTooOld {
            feature: "tcx",
            need: (6, 6),
            have: (6, 5),
        });
        let e = r.context("attach tc").unwrap_err();
        assert_eq!(e.code, Code::KernelFeature.value());
        assert!(
            e.msg.starts_with("attach tc: kernel 6.5 lacks tcx"),
            "{}",
            e.msg
        );
    }
}
