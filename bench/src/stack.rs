//! Frames sent by a pod's own stack: UDP datagrams (18 B payload, 60 B frames)
//! with sendmmsg from a thread inside the pod's namespace, as an ordinary
//! application would; they reach the host veth as skbs.
use crate::sys;
use anyhow::{bail, Context, Result};
use std::{
    net::{Ipv4Addr, UdpSocket},
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
};

/// UDP payload that makes a 60-byte Ethernet frame (14 + 20 + 8 + 18).
const PAYLOAD: usize = 18;
const BATCH: usize = 64;

/// A running stack sender; `sent` counts datagrams the kernel accepted.
pub struct StackSender {
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl StackSender {
    /// Starts sending from namespace `ns` to `dst`:9999 on CPU `cpu`.
    pub fn start(ns: &str, dst: [u8; 4], cpu: Option<usize>) -> Result<Self> {
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (ns, sent2, stop2) = (ns.to_string(), sent.clone(), stop.clone());
        let thread = std::thread::spawn(move || -> Result<()> {
            let sock = (|| -> Result<UdpSocket> {
                sys::enter_netns(&ns)?;
                if let Some(c) = cpu {
                    sys::pin_to_cpu(c)?;
                }
                let s = UdpSocket::bind("0.0.0.0:0").context("binding UDP socket")?;
                s.connect((Ipv4Addr::from(dst), crate::bpf::UDP_PORT))
                    .context("connecting UDP socket")?;
                // First datagram resolves the neighbour before the clock starts.
                let _ = s.send(&[0u8; PAYLOAD]);
                std::thread::sleep(std::time::Duration::from_millis(200));
                Ok(s)
            })();
            let _ = ready_tx.send(sock.as_ref().err().map(|e| format!("{e:#}")));
            let sock = sock?;
            while !stop2.load(Ordering::Relaxed) {
                sent2.fetch_add(send_batch(&sock), Ordering::Relaxed);
            }
            Ok(())
        });
        match ready_rx.recv() {
            Ok(None) => Ok(StackSender {
                sent,
                stop,
                thread: Some(thread),
            }),
            Ok(Some(e)) => {
                let _ = thread.join();
                bail!("stack sender in {}: {e}", "pod")
            }
            Err(_) => bail!("stack sender thread died during setup"),
        }
    }
}

/// One sendmmsg of BATCH datagrams; returns how many were accepted.
fn send_batch(sock: &UdpSocket) -> u64 {
    let mut buf = [0u8; PAYLOAD];
    let mut iov: Vec<libc::iovec> = (0..BATCH)
        .map(|_| libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: PAYLOAD,
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain data; zero is a valid "no name, no control".
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: msgs points to BATCH initialised headers whose iovecs outlive the call.
    let n = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, 0) };
    n.max(0) as u64
}

impl crate::measure::Source for StackSender {
    fn sent(&self) -> Result<u64> {
        Ok(self.sent.load(Ordering::Relaxed))
    }

    fn stop(mut self: Box<Self>) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("stack sender panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for StackSender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
