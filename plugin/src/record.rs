//! Per-attachment records: what ADD built, so DEL, CHECK and GC work without
//! the netns and without prevResult. One JSON file per (container ID, ifname)
//! under `<stateDir>/<network>/`, written atomically (write, fsync, rename,
//! fsync dir), 0600 in a 0700 directory.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::egress::EgressMode;

/// A failed record operation: what was done to which file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Io(#[from] crate::atomic::FileError),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("parse record {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

type Result<T> = std::result::Result<T, RecordError>;

/// `map_err` for an io::Result: names the operation and the file.
fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RecordError {
    let fail = crate::atomic::fail(op, path);
    move |source| RecordError::Io(fail(source))
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Record> {
    serde_json::from_slice(bytes).map_err(|source| RecordError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub version: u32,
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    pub host_ifname: String,
    pub host_ifindex: u32,
    pub pod_mac: String,
    pub ips: Vec<IpNetwork>,
    pub uplink: String,
    pub uplink_ifindex: u32,
    pub queues: u32,
    pub mtu: u32,
    pub egress: EgressMode,
    /// whether ADD attached a pass program on the pod's eth0
    #[serde(default)]
    pub pod_program: bool,
    /// the bpffs root the datapath is pinned under
    #[serde(default)]
    pub bpf_root: String,
    /// the Kubernetes pod (CNI_ARGS K8S_POD_NAMESPACE / K8S_POD_NAME), if known
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_pod: Option<String>,
    /// what the pod may send beyond IPv4/IPv6/ARP (`bpf::types::POD_ALLOW_*`),
    /// for re-creating its map entry
    #[serde(default)]
    pub allow: u32,
    /// the result ADD returned (in 1.1.0 form), for CHECK without prevResult
    pub result: serde_json::Value,
    /// written by the built-in IPAM as the lease, before ADD built anything:
    /// the addresses are taken, the rest is what ADD planned (DEL and GC
    /// remove it like any record; CHECK and the agent leave it alone)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// Creates `dir` (and parents) with mode 0700 if missing, and tightens it if it exists.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("chmod 0700", dir))
}

/// Records of one network on one node.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path, network: &str) -> Self {
        // The network name is validated (letters, digits, '_', '.', '-'), so it is a safe path component.
        Self {
            dir: state_dir.join("networks").join(network),
        }
    }

    /// ADD's and DEL's hold on this network's attachments (shared: verbs
    /// run in parallel). `create`: make the directory (0700) if missing (ADD);
    /// else a missing directory means no attachment to protect (None).
    pub fn lock_for_verb(&self, create: bool) -> Result<Option<crate::lock::DirLock>> {
        if create {
            ensure_private_dir(&self.dir)?;
        } else if !self.dir.exists() {
            return Ok(None);
        }
        Ok(Some(crate::lock::shared(&self.dir)?))
    }

    /// The node agent's hold while it repairs attachments: None while any
    /// ADD or DEL runs (or before the first ADD made the directory).
    pub fn try_lock_all(&self) -> Result<Option<crate::lock::DirLock>> {
        if !self.dir.exists() {
            return Ok(None);
        }
        Ok(crate::lock::try_exclusive(&self.dir)?)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Container IDs and ifnames are validated before they get here: no '/', no control characters.
    fn path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.dir.join(format!("{container_id}_{ifname}.json"))
    }

    pub fn exists(&self, container_id: &str, ifname: &str) -> bool {
        self.path(container_id, ifname).exists()
    }

    pub fn load(&self, container_id: &str, ifname: &str) -> Result<Option<Record>> {
        let p = self.path(container_id, ifname);
        match fs::read(&p) {
            Ok(bytes) => parse(&p, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read record", &p)(e)),
        }
    }

    /// Writes atomically (`crate::atomic`): a crash leaves either the old
    /// record or the new one.
    pub fn save(&self, rec: &Record) -> Result<()> {
        ensure_private_dir(&self.dir)?;
        let bytes = serde_json::to_vec_pretty(rec).expect("a record serialises");
        let name = format!("{}_{}.json", rec.container_id, rec.ifname);
        crate::atomic::write(&self.dir, &name, &bytes, 0o600)?;
        Ok(())
    }

    /// Removes the record; a missing one is fine.
    pub fn remove(&self, container_id: &str, ifname: &str) -> Result<()> {
        let p = self.path(container_id, ifname);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove record", &p)(e)),
        }
    }

    /// Every record of this network (unreadable files are reported, not skipped silently).
    pub fn list(&self) -> Result<Vec<Record>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("list", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(io("list", &self.dir))?.path();
            let is_record = path.extension().is_some_and(|e| e == "json")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if is_record {
                let bytes = fs::read(&path).map_err(io("read record", &path))?;
                out.push(parse(&path, &bytes)?);
            }
        }
        out.sort_by(|a: &Record, b| {
            (&a.container_id, &a.ifname).cmp(&(&b.container_id, &b.ifname))
        });
        Ok(out)
    }
}

/// Every network directory under a state dir (for `veth-xdp stats`).
pub fn all_networks(state_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(state_dir.join("networks")) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_list_remove() {
        let dir = std::env::temp_dir().join(format!("vx-record-test-{}", std::process::id()));
        let store = Store::new(&dir, "net1");
        let rec = Record {
            version: RECORD_VERSION,
            network: "net1".into(),
            container_id: "c1".into(),
            ifname: "eth0".into(),
            netns: "/run/netns/x".into(),
            host_ifname: "vx0123456789abc".into(),
            host_ifindex: 7,
            pod_mac: "02:00:00:00:00:01".into(),
            ips: vec!["10.0.0.2/24".parse().unwrap()],
            uplink: "up0".into(),
            uplink_ifindex: 3,
            queues: 2,
            mtu: 1500,
            egress: EgressMode::Xdp,
            pod_program: false,
            bpf_root: String::new(),
            k8s_namespace: Some("default".into()),
            k8s_pod: Some("web-0".into()),
            allow: 0,
            result: serde_json::json!({}),
            pending: false,
        };
        store.save(&rec).unwrap();
        assert_eq!(store.load("c1", "eth0").unwrap(), Some(rec.clone()));
        let mode = fs::metadata(store.dir().join("c1_eth0.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(store.list().unwrap().len(), 1);
        store.remove("c1", "eth0").unwrap();
        store.remove("c1", "eth0").unwrap();
        assert!(store.list().unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
