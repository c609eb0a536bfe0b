//! The error of every netlink operation, and the helpers that make one.

/// A failed netlink operation: what was tried, on what, and the errno if the kernel gave one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op}: {msg}")]
pub struct NlError {
    /// e.g. "create veth vx1234 (peer eth0)"
    pub op: String,
    /// positive errno (libc::EEXIST, ...) when the kernel answered with one
    pub errno: Option<i32>,
    pub msg: String,
}

impl NlError {
    pub fn is(&self, errno: i32) -> bool {
        self.errno == Some(errno)
    }
}

pub type NlResult<T> = std::result::Result<T, NlError>;

/// The positive errno of a kernel NACK (`ErrorMessage.code` is the negative errno).
pub fn kernel_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|code| -code.get()),
        _ => None,
    }
}

/// Wraps an rtnetlink error with the operation and object it was about.
pub(crate) fn nl_error(op: impl Into<String>, err: rtnetlink::Error) -> NlError {
    let errno = kernel_errno(&err);
    let msg = match errno {
        // "File exists (os error 17)"
        Some(errno) => std::io::Error::from_raw_os_error(errno).to_string(),
        None => err.to_string(),
    };
    NlError {
        op: op.into(),
        errno,
        msg,
    }
}

/// Turns a result whose kernel errno is in `tolerated` into `Ok(false)`, success into `Ok(true)`.
pub(crate) fn tolerate(
    result: Result<(), rtnetlink::Error>,
    tolerated: &[i32],
    op: impl FnOnce() -> String,
) -> NlResult<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if kernel_errno(&e).is_some_and(|errno| tolerated.contains(&errno)) => Ok(false),
        Err(e) => Err(nl_error(op(), e)),
    }
}

/// Collects a dump stream into a Vec, naming the operation on failure.
pub(crate) async fn collect_dump<T>(
    stream: impl futures::Stream<Item = Result<T, rtnetlink::Error>>,
    op: impl FnOnce() -> String,
) -> NlResult<Vec<T>> {
    use futures::TryStreamExt;
    stream.try_collect().await.map_err(|e| nl_error(op(), e))
}
