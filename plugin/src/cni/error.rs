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

/// Attaches a CNI code to a lower-level error, keeping its whole cause chain in the message.
pub trait OrCode<T> {
    fn or_code(self, code: Code, what: &str) -> CniResult<T>;
}

impl<T, E: std::fmt::Display> OrCode<T> for std::result::Result<T, E> {
    fn or_code(self, code: Code, what: &str) -> CniResult<T> {
        self.map_err(|e| CniError::new(code, format!("{what}: {e:#}")))
    }
}

/// Formats an anyhow error with its causes on one line.
pub fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
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

impl CniError {
    /// Prefixes the message with the step that failed: `"{what}: {msg}"`.
    pub fn context(mut self, what: &str) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }
}
