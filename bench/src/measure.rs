//! Windows of delivered frames: median, spread, and what was lost.
use crate::bpf::Receiver;
use anyhow::Result;
use std::time::{Duration, Instant};

/// How long and how often to measure.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Windows {
    pub count: usize,
    pub secs: f64,
    pub warmup_secs: f64,
}

/// One datapath figure in Mpps.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    /// Mpps delivered per window.
    pub windows: Vec<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Frames the generator handed to the redirect, and frames counted by receivers.
    pub sent: u64,
    pub delivered: u64,
    /// sent − delivered over all windows (frames lost along the way).
    pub lost: u64,
}

/// Something that sends frames and counts what it sent.
pub trait Source {
    fn sent(&self) -> Result<u64>;
    fn stop(self: Box<Self>) -> Result<()>;
}

struct Snapshot {
    at: Instant,
    sent: u64,
    delivered: u64,
}

fn snapshot(gen: &dyn Source, rx: &[Receiver]) -> Result<Snapshot> {
    let mut delivered = 0;
    for r in rx {
        delivered += r.count()?;
    }
    Ok(Snapshot {
        at: Instant::now(),
        sent: gen.sent()?,
        delivered,
    })
}

/// Measures what `rx` receive while `gen` runs; stops the generator.
pub fn measure(gen: Box<dyn Source>, rx: &[Receiver], w: Windows) -> Result<Rate> {
    std::thread::sleep(Duration::from_secs_f64(w.warmup_secs));
    let first = snapshot(gen.as_ref(), rx)?;
    let mut prev = snapshot(gen.as_ref(), rx)?;
    let mut windows = vec![];
    for _ in 0..w.count {
        std::thread::sleep(Duration::from_secs_f64(w.secs));
        let now = snapshot(gen.as_ref(), rx)?;
        let dt = now.at.duration_since(prev.at).as_secs_f64();
        windows.push((now.delivered - prev.delivered) as f64 / dt / 1e6);
        prev = now;
    }
    gen.stop()?;
    let sent = prev.sent - first.sent;
    let delivered = prev.delivered - first.delivered;
    Ok(summarize(windows, sent, delivered))
}

/// Median and min/max of the windows.
pub fn summarize(windows: Vec<f64>, sent: u64, delivered: u64) -> Rate {
    let mut s = windows.clone();
    s.sort_by(|a, b| a.total_cmp(b));
    let median = if s.is_empty() {
        0.0
    } else if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    Rate {
        median,
        min: s.first().copied().unwrap_or(0.0),
        max: s.last().copied().unwrap_or(0.0),
        windows,
        sent,
        delivered,
        lost: sent.saturating_sub(delivered),
    }
}

/// Percentile (nearest rank) of durations in ms.
pub fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_ms.len() as f64).ceil() as usize;
    sorted_ms[rank.clamp(1, sorted_ms.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_windows() {
        assert_eq!(summarize(vec![3.0, 1.0, 2.0], 10, 7).median, 2.0);
        let r = summarize(vec![4.0, 1.0, 2.0, 3.0], 10, 12);
        assert_eq!((r.median, r.min, r.max, r.lost), (2.5, 1.0, 4.0, 0));
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
    }
}
