//! The benchmark's BPF programs: generator, receiver (counter), limit datapath.
use crate::sys;
use anyhow::{bail, Context, Result};
use aya::{
    maps::{DevMap, HashMap as BpfHashMap, MapData, PerCpuArray},
    programs::{tc, SchedClassifier, TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

static GEN_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gen.o"));
static COUNT_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/count.o"));
static LIMIT_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/limit.o"));

/// UDP destination port of benchmark frames (bpf/common.h VXB_UDP_PORT).
pub const UDP_PORT: u16 = 9999;
/// Frame length without FCS: 60 B + 4 B FCS = a 64-byte frame on a wire.
pub const FRAME_LEN: usize = 60;

/// Where a generated frame goes.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub mac: [u8; 6],
    pub ip: [u8; 4],
}

/// XDP attach mode actually obtained.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    Native,
    Generic,
}

/// Attaches `prog` to `dev` in the calling thread's netns: driver mode, or
/// generic mode where the device has no native XDP (macvlan).
fn attach_xdp(prog: &mut Xdp, dev: &str) -> Result<Mode> {
    match prog.attach(dev, XdpMode::Driver) {
        Ok(_) => Ok(Mode::Native),
        Err(native) => {
            prog.attach(dev, XdpMode::Skb)
                .with_context(|| format!("attaching XDP to {dev} (native failed: {native})"))?;
            Ok(Mode::Generic)
        }
    }
}

fn xdp<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    let p: &mut Xdp = ebpf
        .program_mut(name)
        .with_context(|| format!("program {name} missing"))?
        .try_into()?;
    Ok(p)
}

fn percpu_sum(map: &PerCpuArray<MapData, u64>) -> Result<u64> {
    Ok(map
        .get(&0, 0)
        .context("reading per-CPU counter")?
        .iter()
        .sum())
}

/// A counting XDP program on a pod's eth0 (drops benchmark frames, passes the rest).
pub struct Receiver {
    _ebpf: Ebpf,
    count: PerCpuArray<MapData, u64>,
    pub mode: Mode,
}

impl Receiver {
    /// Loads and attaches the counter to `dev` in `ns`.
    pub fn attach(ns: &str, dev: &str) -> Result<Self> {
        let mut ebpf = Ebpf::load(COUNT_OBJ).context("loading count.o")?;
        let prog = xdp(&mut ebpf, "vxb_count")?;
        prog.load().context("verifying vxb_count")?;
        let mode = sys::in_netns(ns, || attach_xdp(prog, dev))
            .with_context(|| format!("receiver on {ns}/{dev}"))?;
        let count = PerCpuArray::try_from(ebpf.take_map("rx_count").context("rx_count")?)?;
        Ok(Receiver {
            _ebpf: ebpf,
            count,
            mode,
        })
    }

    /// Frames counted so far (all CPUs).
    pub fn count(&self) -> Result<u64> {
        percpu_sum(&self.count)
    }
}

/// The "limit" redirect datapath: XDP on one device redirecting by dst MAC.
pub struct LimitXdp {
    _ebpf: Ebpf,
}

impl LimitXdp {
    /// Attaches vxb_limit to `dev` in `ns`; `targets[i]` = (MAC, ifindex in `ns`);
    /// unknown MACs go to targets[0].
    pub fn attach(ns: &str, dev: &str, targets: &[([u8; 6], u32)]) -> Result<Self> {
        let mut ebpf = Ebpf::load(LIMIT_OBJ).context("loading limit.o")?;
        sys::in_netns(ns, || {
            let mut tx: DevMap<_> = DevMap::try_from(ebpf.map_mut("lim_tx").context("lim_tx")?)?;
            for (i, (_, ifindex)) in targets.iter().enumerate() {
                tx.set(i as u32, *ifindex, None, 0)
                    .context("lim_tx update")?;
            }
            let mut by_mac: BpfHashMap<_, u64, u32> =
                BpfHashMap::try_from(ebpf.map_mut("lim_by_mac").context("lim_by_mac")?)?;
            for (i, (mac, _)) in targets.iter().enumerate() {
                by_mac
                    .insert(mac_key(mac), i as u32, 0)
                    .context("lim_by_mac update")?;
            }
            let prog = xdp(&mut ebpf, "vxb_limit")?;
            prog.load().context("verifying vxb_limit")?;
            match attach_xdp(prog, dev)? {
                Mode::Native => Ok(()),
                Mode::Generic => bail!("{dev} took vxb_limit only in generic mode"),
            }
        })
        .with_context(|| format!("limit XDP on {ns}/{dev}"))?;
        Ok(LimitXdp { _ebpf: ebpf })
    }
}

/// The bare tc variant: every skb entering `dev` is redirected to `target`.
pub struct LimitTc {
    _ebpf: Ebpf,
}

impl LimitTc {
    pub fn attach(ns: &str, dev: &str, target_ifindex: u32) -> Result<Self> {
        let mut ebpf = EbpfLoader::new()
            .override_global("tc_target", &target_ifindex, true)
            .load(LIMIT_OBJ)
            .context("loading limit.o")?;
        sys::in_netns(ns, || {
            let _ = tc::qdisc_add_clsact(dev);
            let prog: &mut SchedClassifier = ebpf
                .program_mut("vxb_tc_fwd")
                .context("vxb_tc_fwd")?
                .try_into()?;
            prog.load().context("verifying vxb_tc_fwd")?;
            prog.attach(dev, tc::TcAttachType::Ingress)
                .context("attaching vxb_tc_fwd")?;
            Ok(())
        })
        .with_context(|| format!("limit tc on {ns}/{dev}"))?;
        Ok(LimitTc { _ebpf: ebpf })
    }
}

/// MAC as the 8-byte hash key the C side builds (memcpy into a zeroed u64).
fn mac_key(mac: &[u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(mac);
    u64::from_ne_bytes(b)
}

/// The live-frames generator: runs in its own thread inside `ns`, redirecting
/// frames out of `dev` until stopped.
pub struct Generator {
    sent: PerCpuArray<MapData, u64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

/// Frames per BPF_PROG_TEST_RUN call (~0.1–0.5 s); the stop flag is read between calls.
const FRAMES_PER_CALL: u32 = 1 << 20;

impl Generator {
    /// Starts sending 64-byte UDP frames from `src` to `targets` (round robin)
    /// out of `dev` in `ns`, on CPU `cpu`.
    pub fn start(
        ns: &str,
        dev: &str,
        src: Target,
        targets: &[Target],
        cpu: Option<usize>,
    ) -> Result<Self> {
        let (mut ebpf, sent) = load_generator(&src, targets)?;
        let frame = udp_frame(&src, &targets[0]);
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (ns, dev, stop2) = (ns.to_string(), dev.to_string(), stop.clone());
        let thread = std::thread::spawn(move || -> Result<()> {
            let r = prepare_generator(&mut ebpf, &ns, &dev, cpu);
            let _ = ready_tx.send(r.as_ref().err().map(|e| format!("{e:#}")));
            r?;
            while !stop2.load(Ordering::Relaxed) {
                run_frames(&mut ebpf, &frame, FRAMES_PER_CALL)?;
            }
            Ok(())
        });
        match ready_rx.recv() {
            Ok(None) => {}
            Ok(Some(e)) => {
                let _ = thread.join();
                bail!("generator setup: {e}");
            }
            Err(_) => bail!("generator thread died during setup"),
        }
        Ok(Generator {
            sent,
            stop,
            thread: Some(thread),
        })
    }

    #[cfg_attr(not(test), allow(dead_code))] // used by the line-rate test
    /// Sends exactly `frames` frames (one BPF_PROG_TEST_RUN call) and returns
    /// how many the program handed to the redirect.
    pub fn send_exact(
        ns: &str,
        dev: &str,
        src: Target,
        targets: &[Target],
        frames: u32,
    ) -> Result<u64> {
        let (mut ebpf, sent) = load_generator(&src, targets)?;
        let frame = udp_frame(&src, &targets[0]);
        let (ns, dev) = (ns.to_string(), dev.to_string());
        std::thread::spawn(move || -> Result<()> {
            prepare_generator(&mut ebpf, &ns, &dev, None)?;
            run_frames(&mut ebpf, &frame, frames)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("generator thread panicked"))??;
        percpu_sum(&sent)
    }
}

impl crate::measure::Source for Generator {
    /// Frames handed to the redirect so far.
    fn sent(&self) -> Result<u64> {
        percpu_sum(&self.sent)
    }

    /// Stops the generator and reports a failure of its thread.
    fn stop(mut self: Box<Self>) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("generator thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Loads gen.o with its targets; returns it and its sent counter.
fn load_generator(src: &Target, targets: &[Target]) -> Result<(Ebpf, PerCpuArray<MapData, u64>)> {
    let n = targets.len() as u32;
    if n == 0 || n > 64 {
        bail!("generator needs 1..=64 targets, got {n}");
    }
    let mut ebpf = EbpfLoader::new()
        .override_global("n_targets", &n, true)
        .load(GEN_OBJ)
        .context("loading gen.o")?;
    {
        let mut tmap: aya::maps::Array<_, [u8; 44]> =
            aya::maps::Array::try_from(ebpf.map_mut("gen_targets").context("gen_targets")?)?;
        for (i, t) in targets.iter().enumerate() {
            tmap.set(i as u32, target_value(src, t), 0)
                .context("gen_targets update")?;
        }
    }
    let sent = PerCpuArray::try_from(ebpf.take_map("gen_sent").context("gen_sent")?)?;
    Ok((ebpf, sent))
}

/// On the generator thread: enter `ns` (the devmap resolves ifindexes, and live
/// frames start, in the caller's netns), pin the CPU, point gen_tx at `dev`, verify.
fn prepare_generator(ebpf: &mut Ebpf, ns: &str, dev: &str, cpu: Option<usize>) -> Result<()> {
    sys::enter_netns(ns)?;
    if let Some(c) = cpu {
        sys::pin_to_cpu(c)?;
    }
    let ifindex = sys::link_info(ns, dev)?.ifindex;
    let mut tx: DevMap<_> = DevMap::try_from(ebpf.map_mut("gen_tx").context("gen_tx")?)?;
    tx.set(0, ifindex, None, 0)
        .with_context(|| format!("gen_tx -> {ns}/{dev}"))?;
    xdp(ebpf, "vxb_gen")?.load().context("verifying vxb_gen")?;
    Ok(())
}

/// One BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: `frames` frames in batches of 64.
fn run_frames(ebpf: &mut Ebpf, frame: &[u8], frames: u32) -> Result<()> {
    let prog = xdp(ebpf, "vxb_gen")?;
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(frame);
    opts.repeat = frames;
    opts.attrs = TestRunAttrs::new().xdp_live_frames(64);
    prog.test_run(opts)
        .context("BPF_PROG_TEST_RUN (live frames)")?;
    Ok(())
}

/// The gen_targets value: the frame's first 42 bytes (Ethernet, IPv4, UDP), padded to 44.
fn target_value(src: &Target, t: &Target) -> [u8; 44] {
    let frame = udp_frame(src, t);
    let mut v = [0u8; 44];
    v[..42].copy_from_slice(&frame[..42]);
    v
}

/// A 60-byte Ethernet/IPv4/UDP frame (UDP checksum 0, padding zero).
pub fn udp_frame(src: &Target, dst: &Target) -> Vec<u8> {
    let mut f = vec![0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&dst.mac);
    f[6..12].copy_from_slice(&src.mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (FRAME_LEN - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.ip);
    ip[16..20].copy_from_slice(&dst.ip);
    let csum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&UDP_PORT.to_be_bytes());
    udp[2..4].copy_from_slice(&UDP_PORT.to_be_bytes());
    udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_has_valid_ipv4_checksum() {
        let a = Target {
            mac: [2, 0, 0, 0, 0, 1],
            ip: [10, 0, 0, 1],
        };
        let b = Target {
            mac: [2, 0, 0, 0, 0, 2],
            ip: [10, 0, 0, 2],
        };
        let f = udp_frame(&a, &b);
        assert_eq!(f.len(), 60);
        assert_eq!(
            ipv4_checksum(&f[14..34]),
            0,
            "checksum over header incl. checksum must fold to 0"
        );
    }
}
