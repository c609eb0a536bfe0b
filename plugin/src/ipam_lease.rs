//! The built-in IPAM (`"ipam": {"type": "veth-xdp", ...}`): addresses chosen
//! in process by [`crate::ipam_pool`], and leased by the attachment record
//! itself — no lease files of their own.
//!
//! ADD takes the network's IPAM lock (an exclusive flock on `<records>/.ipam`),
//! reads the addresses of every record as the addresses in use, chooses, and
//! writes the attachment's record, marked pending, with those addresses
//! before it lets go: one atomic write is the lease. The record written at the
//! end of ADD replaces it. So a crash at any point leaves either no record
//! (nothing leased) or a record holding the lease, which the runtime's DEL
//! after a failed ADD, or GC, removes with everything else of the attachment;
//! never an empty or orphaned lease file (host-local leaves an empty one when
//! killed between its create and its write). DEL, CHECK and GC delegate
//! nothing: the record is the lease.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use serde_json::{json, Value};

use crate::cni::result::CniOutput;
use crate::cni::{CniError, CniResult, Code, Context, Request};
use crate::ipam_pool::{self, Pool, PoolError};
use crate::record::{Record, Store};

/// The `ipam.type` that selects the built-in IPAM (the plugin's own name).
pub const TYPE: &str = "veth-xdp";

/// Whether the network config asks for the built-in IPAM.
pub fn is_builtin(req: &Request) -> bool {
    req.conf.ipam_type() == Some(TYPE)
}

/// The pool the config describes (errors name the `ipam.<key>`).
pub fn pool(req: &Request) -> CniResult<Pool> {
    let ipam = req.conf.ipam.as_ref().ok_or_else(|| {
        CniError::new(Code::InvalidConfig, "network config: \"ipam\" is required")
    })?;
    ipam_pool::parse(ipam)
        .map_err(|e| CniError::new(Code::InvalidConfig, format!("network config: {e}")))
}

/// The IPAM lock's directory and the last-handed-out hint, inside the
/// network's record directory (its dot name keeps it out of the records).
fn ipam_dir(store: &Store) -> PathBuf {
    store.dir().join(".ipam")
}

const LAST_FILE: &str = "last";

/// Chooses the attachment's addresses and leases them: `pending(ips)` is
/// the record to write (marked pending) as the lease. Returns the addresses
/// as an IPAM result (with the config's routes).
pub fn lease(
    req: &Request,
    store: &Store,
    pending: impl FnOnce(Vec<IpNetwork>) -> Record,
) -> CniResult<CniOutput> {
    let pool = pool(req)?;
    let dir = ipam_dir(store);
    crate::record::ensure_private_dir(&dir).context("IPAM")?;
    let _lock = crate::lock::exclusive(&dir).context("take the IPAM lock")?;
    let in_use = addresses_in_use(store)?;
    let requested: Vec<IpAddr> = req.conf.requested_ips.iter().map(|n| n.ip()).collect();
    let leases = pool
        .allocate(&in_use, &requested, &last_handed_out(&dir))
        .map_err(|e| allocation_error(&e))?;
    let ips: Vec<IpNetwork> = leases.iter().map(|l| l.address).collect();
    store
        .save(&pending(ips.clone()))
        .context("write the attachment record holding the lease")?;
    remember_last(&dir, &ips);
    Ok(output(req, &leases))
}

fn allocation_error(e: &PoolError) -> CniError {
    let code = match e {
        PoolError::Config { .. } => Code::InvalidConfig,
        PoolError::Exhausted { .. } | PoolError::Requested { .. } => Code::Ipam,
    };
    let hint = match e {
        PoolError::Exhausted { .. } => {
            ": every address of the range is leased (enlarge \"ipam.ranges\" or remove pods)"
        }
        _ => "",
    };
    CniError::new(code, format!("built-in IPAM: {e}{hint}"))
}

/// Every address a record of this network holds (pending ones included).
fn addresses_in_use(store: &Store) -> CniResult<BTreeSet<IpAddr>> {
    let records = store
        .list()
        .context("read the leases (attachment records)")?;
    Ok(records
        .iter()
        .flat_map(|r| r.ips.iter().map(|n| n.ip()))
        .collect())
}

/// The addresses handed out last (a hint for the next choice; a missing or
/// unreadable file only means starting from the beginning).
fn last_handed_out(dir: &std::path::Path) -> Vec<IpAddr> {
    std::fs::read_to_string(dir.join(LAST_FILE))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn remember_last(dir: &std::path::Path, ips: &[IpNetwork]) {
    let text: Vec<String> = ips.iter().map(|n| n.ip().to_string()).collect();
    if let Err(e) = crate::atomic::write(dir, LAST_FILE, text.join(" ").as_bytes(), 0o600) {
        log::warn!("built-in IPAM: cannot remember the last address handed out: {e}");
    }
}

/// The leases as an IPAM result (the shape host-local prints).
fn output(req: &Request, leases: &[ipam_pool::Lease]) -> CniOutput {
    let ips: Vec<Value> = leases
        .iter()
        .map(|l| match l.gateway {
            Some(gw) => json!({"address": l.address.to_string(), "gateway": gw.to_string()}),
            None => json!({"address": l.address.to_string()}),
        })
        .collect();
    let routes = req
        .conf
        .ipam
        .as_ref()
        .and_then(|i| i.get("routes"))
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let dns = req.conf.ipam.as_ref().and_then(|i| i.get("dns")).cloned();
    let mut v = json!({"cniVersion": "1.1.0", "ips": ips, "routes": routes});
    if let Some(dns) = dns {
        v["dns"] = dns;
    }
    CniOutput::parse(&v).expect("the built-in IPAM's result parses")
}

/// STATUS: the config is valid and the pool has an address left for every
/// family (code 50 otherwise, the spec's "cannot service ADD requests").
pub fn status(req: &Request) -> CniResult<()> {
    let pool = pool(req)?;
    let store = Store::new(&req.conf.state_dir, &req.conf.name);
    let in_use = addresses_in_use(&store)?;
    pool.allocate(&in_use, &[], &[])
        .map(|_| ())
        .map_err(|e| CniError::new(Code::NotAvailable, format!("built-in IPAM: {e}")))
}
