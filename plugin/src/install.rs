//! `veth-xdp install --once`: what the DaemonSet's pod does on its node, in
//! this order: render and check the conflist (nothing is touched if the
//! template is wrong), copy the running binary into the host's CNI bin dir,
//! prepare the node datapath (as `veth-xdp setup`), and only then write the
//! conflist (until a config exists the node reports NetworkReady=false, which
//! is the truth). Every file is written atomically and only when its content
//! changes: a second run with the same inputs rewrites nothing.
//!
//! L2 mode only: pods live on the uplink's segment, so the pod CIDR (the IPAM
//! range) must lie inside the uplink's IPv4 subnet; pods get that subnet's
//! prefix and the default route's gateway.
//!
//! Template placeholders (`{{name}}`, substituted as text, so a string value
//! goes between quotes in the template and a JSON value does not):
//!
//! | placeholder | value |
//! |---|---|
//! | `{{uplink}}` | the uplink's name (`--uplink`, or the default route's device) |
//! | `{{podCIDR}}` | `--pod-cidr`, e.g. `10.0.0.128/25` |
//! | `{{podRangeStart}}`, `{{podRangeEnd}}` | the first and last address of the pod CIDR a pod may get (the subnet's network and broadcast addresses left out) |
//! | `{{subnet}}` | the uplink's IPv4 subnet, e.g. `10.0.0.0/24` |
//! | `{{subnetPrefixLen}}` | its prefix length, e.g. `24` |
//! | `{{gateway}}` | the IPv4 default route's gateway (inside the subnet) |
//! | `{{serviceCIDRs}}` | `--service-cidr`s as a JSON list (`[]` without any) |
//! | `{{mtu}}`, `{{queues}}` | `--mtu`, `--queues` as JSON numbers, `null` when not given (the plugin's defaults) |

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ipnetwork::{IpNetwork, Ipv4Network};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::bpf::{self, BpfPaths};
use crate::cmd::{datapath, node};
use crate::cni::config::{self, NetConf};
use crate::netlink::{Link, Netlink, Route};

/// The plugin's file name in the CNI bin dir: the conflist's `"type"`.
pub const BINARY_NAME: &str = "veth-xdp";
const BINARY_MODE: u32 = 0o755;
const CONFLIST_MODE: u32 = 0o644;

/// The conflist written when no `--template` is given.
pub const DEFAULT_TEMPLATE: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "veth-xdp",
  "plugins": [
    {
      "type": "veth-xdp",
      "uplink": "{{uplink}}",
      "mtu": {{mtu}},
      "queues": {{queues}},
      "serviceCIDRs": {{serviceCIDRs}},
      "ipam": {
        "type": "veth-xdp",
        "ranges": [[{ "subnet": "{{subnet}}", "rangeStart": "{{podRangeStart}}",
                      "rangeEnd": "{{podRangeEnd}}", "gateway": "{{gateway}}" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true }
  ]
}
"#;

#[derive(Debug, Clone, clap::Args)]
pub struct InstallArgs {
    /// where the host's root filesystem is mounted
    #[arg(long, value_name = "DIR", default_value = "/host")]
    pub host_root: PathBuf,
    /// the host's CNI binary directory (a host path, taken under --host-root)
    #[arg(long, value_name = "DIR", default_value = "/opt/cni/bin")]
    pub cni_bin_dir: PathBuf,
    /// the host's CNI config directory (a host path, taken under --host-root)
    #[arg(long, value_name = "DIR", default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// the conflist's file name (containerd loads only the alphabetically first config)
    #[arg(long, value_name = "NAME", default_value = "05-veth-xdp.conflist")]
    pub conf_name: String,
    /// the conflist template (as the ConfigMap mounts it); a built-in one when absent
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// the uplink (default: the device of the default route)
    #[arg(long, value_name = "DEV", env = "VETH_XDP_UPLINK")]
    pub uplink: Option<String>,
    /// the node's pod range (the IPAM range), inside the uplink's IPv4 subnet
    /// (default: the Node object's spec.podCIDRs, through the Kubernetes API)
    #[arg(long, value_name = "CIDR", env = "VETH_XDP_POD_CIDR")]
    pub pod_cidr: Option<Ipv4Network>,
    /// the cluster's Service ranges, comma-separated or repeated (default: the
    /// ServiceCIDR objects of networking.k8s.io/v1, through the Kubernetes API)
    #[arg(
        long = "service-cidr",
        value_name = "CIDR",
        value_delimiter = ',',
        env = "VETH_XDP_SERVICE_CIDRS"
    )]
    pub service_cidrs: Vec<IpNetwork>,
    /// pod MTU (default: the uplink's)
    #[arg(long, value_name = "BYTES", env = "VETH_XDP_MTU")]
    pub mtu: Option<u32>,
    /// rx and tx queues per veth end (default: online CPUs)
    #[arg(long, value_name = "N", env = "VETH_XDP_QUEUES")]
    pub queues: Option<u32>,
    /// this node's name, for its Node object (the DaemonSet passes spec.nodeName)
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// kubeconfig for the API (default: the pod's service account)
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// install once and exit, instead of staying on as the node agent
    #[arg(long)]
    pub once: bool,
    /// agent: seconds between reconciliations
    #[arg(long, value_name = "SECS", default_value = "10", env = "VETH_XDP_INTERVAL",
          value_parser = parse_secs)]
    pub interval: std::time::Duration,
    /// agent: where /metrics, /healthz and /readyz are served
    #[arg(
        long,
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:9765",
        env = "VETH_XDP_LISTEN"
    )]
    pub listen: std::net::SocketAddr,
    /// agent: remove the conflist on SIGTERM, so the node stops taking pods
    #[arg(long, value_name = "BOOL", env = "VETH_XDP_CLEANUP_ON_EXIT", num_args = 0..=1,
          default_missing_value = "true", default_value = "false",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub cleanup_on_exit: bool,
    /// print, as JSON, the host paths this configuration needs mounted (for
    /// the DaemonSet) and exit
    #[arg(long)]
    pub print_host_paths: bool,
}

/// A duration given in (fractional) seconds, as the operator commands take it.
pub fn parse_secs(s: &str) -> std::result::Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))?;
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// A failed install step: what was done to what.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Io(#[from] crate::atomic::FileError),
    #[error("template {name}: {why}")]
    Template { name: String, why: String },
    #[error("installed binary {} is not the running one after the copy: {why}", path.display())]
    Verify { path: PathBuf, why: String },
    #[error("pod CIDR {pod}: {why}")]
    PodCidr { pod: Ipv4Network, why: String },
    #[error(
        "the conflist names the CNI plugin {plugin:?}, which is not an executable file in {}: \
         install it there (the reference plugins: Debian's containernetworking-plugins, \
         kubeadm's kubernetes-cni) or take it out of the template; the conflist is not written \
         until then, since every pod's ADD would fail",
        dir.display()
    )]
    MissingPlugin { plugin: String, dir: PathBuf },
}

type InstallResult<T> = std::result::Result<T, InstallError>;

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let fail = crate::atomic::fail(op, path);
    move |source| InstallError::Io(fail(source))
}

/// The per-node values the template's placeholders take.
#[derive(Debug, Clone)]
pub struct NodeValues {
    pub uplink: String,
    pub pod_cidr: Ipv4Network,
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    pub service_cidrs: Vec<IpNetwork>,
    pub mtu: Option<u32>,
    pub queues: Option<u32>,
}

impl NodeValues {
    /// Every placeholder with its text.
    pub fn placeholders(&self) -> InstallResult<Vec<(&'static str, String)>> {
        let (start, end) = pod_range(self.pod_cidr, self.subnet)?;
        let number = |n: Option<u32>| n.map_or_else(|| "null".to_string(), |n| n.to_string());
        let services: Vec<String> = self.service_cidrs.iter().map(|c| c.to_string()).collect();
        Ok(vec![
            ("uplink", self.uplink.clone()),
            ("podCIDR", self.pod_cidr.to_string()),
            ("podRangeStart", start.to_string()),
            ("podRangeEnd", end.to_string()),
            ("subnet", self.subnet.to_string()),
            ("subnetPrefixLen", self.subnet.prefix().to_string()),
            ("gateway", self.gateway.to_string()),
            (
                "serviceCIDRs",
                serde_json::to_string(&services).expect("strings serialise"),
            ),
            ("mtu", number(self.mtu)),
            ("queues", number(self.queues)),
        ])
    }
}

/// The addresses of `pod` a pod may get on `subnet`: all of them but the
/// subnet's network and broadcast addresses.
fn pod_range(pod: Ipv4Network, subnet: Ipv4Network) -> InstallResult<(Ipv4Addr, Ipv4Addr)> {
    let mut start = u32::from(pod.network());
    let mut end = u32::from(pod.broadcast());
    if start == u32::from(subnet.network()) {
        start += 1;
    }
    if end == u32::from(subnet.broadcast()) {
        end -= 1;
    }
    if start > end {
        return Err(InstallError::PodCidr {
            pod,
            why: format!("holds no address a pod may have on {subnet}"),
        });
    }
    Ok((start.into(), end.into()))
}

/// L2 mode: the uplink's IPv4 subnet that holds the pod CIDR, and the
/// default route's gateway on it. Refuses a pod CIDR outside the subnet or
/// holding the node's own address or the gateway.
pub fn l2_subnet(
    pod: Ipv4Network,
    uplink: &str,
    uplink_addrs: &[IpNetwork],
    routes: &[Route],
) -> InstallResult<(Ipv4Network, Ipv4Addr)> {
    let refuse = |why: String| InstallError::PodCidr { pod, why };
    if pod.ip() != pod.network() {
        return Err(refuse(format!(
            "has host bits set (did you mean {}/{}?)",
            pod.network(),
            pod.prefix()
        )));
    }
    let v4: Vec<Ipv4Network> = uplink_addrs
        .iter()
        .filter_map(|a| match a {
            IpNetwork::V4(n) => Some(*n),
            IpNetwork::V6(_) => None,
        })
        .collect();
    if v4.is_empty() {
        return Err(refuse(format!(
            "the uplink {uplink} has no IPv4 address: in L2 mode pods live on the uplink's subnet"
        )));
    }
    let Some(addr) = v4
        .iter()
        .find(|a| a.prefix() <= pod.prefix() && a.contains(pod.network()))
    else {
        let subnets: Vec<String> = v4
            .iter()
            .map(|a| format!("{}/{}", a.network(), a.prefix()))
            .collect();
        return Err(refuse(format!(
            "is outside the uplink {uplink}'s subnet ({}): in L2 mode pods live on the uplink's \
             segment and the pod CIDR must lie inside its subnet (a routed mode is not built yet)",
            subnets.join(", ")
        )));
    };
    let subnet = Ipv4Network::new(addr.network(), addr.prefix()).expect("a valid prefix");
    let gateway = routes
        .iter()
        .filter(|r| r.dst.prefix() == 0 && r.dst.is_ipv4())
        .find_map(|r| match r.gateway {
            Some(IpAddr::V4(gw)) if subnet.contains(gw) => Some(gw),
            _ => None,
        })
        .ok_or_else(|| {
            refuse(format!(
                "no IPv4 default route via a gateway on {subnet}: pods on the uplink's segment \
                 need the segment's router"
            ))
        })?;
    for (what, ip) in [
        ("the node's own address", addr.ip()),
        ("the gateway", gateway),
    ] {
        if pod.contains(ip) {
            return Err(refuse(format!("holds {what} {ip}")));
        }
    }
    Ok((subnet, gateway))
}

/// Substitutes every `{{name}}` of `template`; an unknown or unclosed
/// placeholder is an error naming its line.
pub fn render(template: &str, values: &[(&str, String)]) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let line = 1 + template[..template.len() - rest.len() + open]
            .matches('\n')
            .count();
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .filter(|c| !after[..*c].contains('\n'))
            .ok_or_else(|| format!("line {line}: \"{{{{\" without \"}}}}\""))?;
        let name = after[..close].trim();
        let value = values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                let known: Vec<String> =
                    values.iter().map(|(k, _)| format!("{{{{{k}}}}}")).collect();
                format!(
                    "line {line}: unknown placeholder {{{{{name}}}}} (known: {})",
                    known.join(", ")
                )
            })?;
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks a rendered conflist: valid JSON with `cniVersion`, `name` and
/// `plugins`, and every `veth-xdp` entry a network config the plugin accepts
/// (as the runtime hands it over: with the list's `cniVersion` and `name`).
/// Returns the config to write (pretty JSON) and the first veth-xdp entry.
pub fn check_conflist(rendered: &str) -> std::result::Result<(String, NetConf), String> {
    let value: Value = serde_json::from_str(rendered)
        .map_err(|e| format!("not valid JSON after rendering: {e}"))?;
    let list = value.as_object().ok_or("must be a JSON object")?;
    let version = list
        .get("cniVersion")
        .and_then(Value::as_str)
        .ok_or("needs a \"cniVersion\" string")?;
    let name = list
        .get("name")
        .and_then(Value::as_str)
        .ok_or("needs a \"name\" string")?;
    let plugins = list
        .get("plugins")
        .and_then(Value::as_array)
        .ok_or("needs a \"plugins\" list")?;
    let mut ours = None;
    for (i, plugin) in plugins.iter().enumerate() {
        let mut entry = plugin
            .as_object()
            .ok_or_else(|| format!("plugins[{i}] is not an object"))?
            .clone();
        if entry.get("type").and_then(Value::as_str) != Some(BINARY_NAME) {
            continue;
        }
        entry.insert("cniVersion".into(), version.into());
        entry.insert("name".into(), name.into());
        let bytes = serde_json::to_vec(&entry).expect("JSON serialises");
        let conf = config::parse(&bytes, "").map_err(|e| format!("plugins[{i}]: {e}"))?;
        ours.get_or_insert(conf);
    }
    let conf = ours.ok_or_else(|| format!("no plugin of \"type\": \"{BINARY_NAME}\""))?;
    let text = serde_json::to_string_pretty(&value).expect("JSON serialises") + "\n";
    Ok((text, conf))
}

/// The executables a conflist makes the runtime run: each plugin's `type`
/// and its `ipam.type`, in order, without repeats.
pub fn conflist_plugin_types(conflist: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(conflist).unwrap_or(Value::Null);
    let mut types: Vec<String> = Vec::new();
    let plugins = value.get("plugins").and_then(Value::as_array);
    for plugin in plugins.into_iter().flatten() {
        let ipam = plugin.get("ipam").and_then(|i| i.get("type"));
        for t in [plugin.get("type"), ipam].into_iter().flatten() {
            if let Some(t) = t.as_str().filter(|t| !types.iter().any(|k| k == t)) {
                types.push(t.to_string());
            }
        }
    }
    types
}

/// Refuses a conflist naming a plugin that is not an executable file in
/// `bin_dir` (the agent's own binary is installed there before this runs).
/// A symlink counts as there: a node's bin dir often links into a package's
/// dir (`/opt/cni/bin/host-local -> /usr/lib/cni/host-local`), which the
/// agent's container, with only the bin dir mounted, cannot follow.
fn check_plugins_installed(conflist: &str, bin_dir: &Path) -> InstallResult<()> {
    use std::os::unix::fs::PermissionsExt;
    for plugin in conflist_plugin_types(conflist) {
        let executable = std::fs::symlink_metadata(bin_dir.join(&plugin))
            .is_ok_and(|m| m.is_symlink() || (m.is_file() && m.permissions().mode() & 0o111 != 0));
        if !executable {
            return Err(InstallError::MissingPlugin {
                plugin,
                dir: bin_dir.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// `path` (a host path) under the host root.
fn under_host(host_root: &Path, path: &Path) -> PathBuf {
    host_root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Whether `path` holds exactly `bytes` with mode `mode`.
fn holds(path: &Path, bytes: &[u8], mode: u32) -> InstallResult<bool> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("stat", path)(e)),
    };
    if meta.len() != bytes.len() as u64 || meta.permissions().mode() & 0o7777 != mode {
        return Ok(false);
    }
    Ok(fs::read(path).map_err(io("read", path))? == bytes)
}

/// Writes `dir/name` unless it already holds `bytes` with `mode`; Ok(true)
/// when written.
fn write_if_changed(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> InstallResult<bool> {
    if holds(&dir.join(name), bytes, mode)? {
        return Ok(false);
    }
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    crate::atomic::write(dir, name, bytes, mode)?;
    Ok(true)
}

/// A file as `stat` sees it: unchanged stamps mean unchanged content (for
/// files only we write, atomically: a rename gives a new inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    mode: u32,
}

fn stamp_of(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(FileStamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        mode: m.mode(),
    })
}

/// What [`apply`] remembers between the agent's passes: the installed binary
/// as last verified, so an unchanged one is not read again every interval.
#[derive(Debug, Default)]
pub struct Seen {
    binary: Option<FileStamp>,
}

/// Copies the binary `src` into `dir` (unless already there) and verifies
/// the copy: same length and SHA-256. Ok(true) when copied.
fn install_binary(src: &Path, dir: &Path, seen: &mut Seen) -> InstallResult<bool> {
    let dest = dir.join(BINARY_NAME);
    if seen.binary.is_some() && seen.binary == stamp_of(&dest) {
        return Ok(false);
    }
    let bytes = fs::read(src).map_err(io("read", src))?;
    if !write_if_changed(dir, BINARY_NAME, &bytes, BINARY_MODE)? {
        seen.binary = stamp_of(&dest);
        return Ok(false);
    }
    let copy = fs::read(&dest).map_err(io("read back", &dest))?;
    let verify = |why: String| InstallError::Verify {
        path: dest.clone(),
        why,
    };
    if copy.len() != bytes.len() {
        return Err(verify(format!("{} bytes, not {}", copy.len(), bytes.len())));
    }
    if Sha256::digest(&copy) != Sha256::digest(&bytes) {
        return Err(verify("SHA-256 differs".into()));
    }
    seen.binary = stamp_of(&dest);
    Ok(true)
}

/// What the installer will write, rendered and checked, nothing touched yet.
#[derive(Debug, Clone)]
pub struct Plan {
    pub values: NodeValues,
    /// the conflist text to write
    pub conflist: String,
    /// the conflist's veth-xdp entry, as the plugin will read it
    pub conf: NetConf,
    pub uplink: Link,
    pub bin_dir: PathBuf,
    pub conf_dir: PathBuf,
    pub conf_name: String,
}

impl Plan {
    pub fn conflist_path(&self) -> PathBuf {
        self.conf_dir.join(&self.conf_name)
    }
}

/// What [`apply`] changed.
#[derive(Debug)]
pub struct Applied {
    pub binary_written: bool,
    pub conflist_written: bool,
    pub node: datapath::NodeDatapath,
}

/// The pod range and service ranges a plan is made for (given, or discovered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges {
    pub pod_cidr: Ipv4Network,
    pub service_cidrs: Vec<IpNetwork>,
}

/// Where the node's ranges come from: the command line, or the API for what
/// it does not give (the client is made once and kept).
#[derive(Debug, Default)]
pub struct Discovery {
    client: Option<crate::k8s::ApiClient>,
}

impl Discovery {
    /// Whether the API is asked at all: for a pod CIDR not given, or for
    /// service ranges not given where an API is configured (in a pod with a
    /// service account, or `--kubeconfig`). Without an API and with
    /// `--pod-cidr`, a node without Services is what was asked for.
    fn wants_api(args: &InstallArgs) -> bool {
        args.pod_cidr.is_none()
            || (args.service_cidrs.is_empty()
                && (args.kubeconfig.is_some()
                    || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())))
    }

    /// The ranges to plan for: given values first, the API's for the rest.
    pub async fn ranges(&mut self, args: &InstallArgs) -> Result<Ranges> {
        if !Self::wants_api(args) {
            return Ok(Ranges {
                pod_cidr: args.pod_cidr.expect("given (wants_api)"),
                service_cidrs: args.service_cidrs.clone(),
            });
        }
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                let c = crate::k8s::ApiClient::connect(args.kubeconfig.as_deref()).await?;
                self.client.insert(c).clone()
            }
        };
        let pod_cidr = match args.pod_cidr {
            Some(c) => c,
            None => node_pod_cidr(&client, args.node_name.as_deref()).await?,
        };
        let service_cidrs = if args.service_cidrs.is_empty() {
            client.service_cidrs().await?
        } else {
            args.service_cidrs.clone()
        };
        Ok(Ranges {
            pod_cidr,
            service_cidrs,
        })
    }
}

/// The node's IPv4 pod range from its Node object (L2 mode is IPv4).
async fn node_pod_cidr(client: &crate::k8s::ApiClient, node: Option<&str>) -> Result<Ipv4Network> {
    let node = node.ok_or_else(|| {
        anyhow::anyhow!(
            "no --pod-cidr and no --node-name (NODE_NAME): the node's pod range is read from \
             its Node object, so the agent needs the node's name (the DaemonSet passes \
             spec.nodeName)"
        )
    })?;
    let cidrs = client.node_pod_cidrs(node).await?;
    if cidrs.is_empty() {
        anyhow::bail!(
            "node {node} has no spec.podCIDRs yet (does kube-controller-manager run with \
             --allocate-node-cidrs?); no conflist until it has one"
        );
    }
    cidrs
        .iter()
        .find_map(|c| match c {
            IpNetwork::V4(v4) => Some(*v4),
            IpNetwork::V6(_) => None,
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "node {node}'s pod CIDRs ({}) hold no IPv4 range: L2 mode needs one",
                cidrs
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

fn check_conf_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        anyhow::bail!("--conf-name {name:?} must be a plain file name");
    }
    Ok(())
}

/// The template's name (for messages) and text, read now (the ConfigMap's
/// file changes under a running agent).
fn read_template(args: &InstallArgs) -> InstallResult<(String, String)> {
    Ok(match &args.template {
        Some(path) => (
            path.display().to_string(),
            fs::read_to_string(path).map_err(io("read template", path))?,
        ),
        None => ("(built-in)".to_string(), DEFAULT_TEMPLATE.to_string()),
    })
}

/// The template (name, text) rendered with `values` and checked: the
/// conflist text and its veth-xdp entry; an error names the template.
fn render_checked(
    (name, text): &(String, String),
    values: &NodeValues,
) -> InstallResult<(String, NetConf)> {
    let template_error = |why: String| InstallError::Template {
        name: name.clone(),
        why,
    };
    let rendered = render(text, &values.placeholders()?).map_err(template_error)?;
    check_conflist(&rendered).map_err(template_error)
}

/// Renders and checks the conflist for this node; touches nothing.
pub async fn plan(args: &InstallArgs, nl: &Netlink, ranges: &Ranges) -> Result<Plan> {
    check_conf_name(&args.conf_name)?;
    let template = read_template(args)?;
    let link = node::resolve_uplink(nl, args.uplink.as_deref()).await?;
    let addrs = nl.addr_list(link.index).await?;
    let routes = nl.route_list().await?;
    let (subnet, gateway) = l2_subnet(ranges.pod_cidr, &link.name, &addrs, &routes)?;
    let values = NodeValues {
        uplink: link.name.clone(),
        pod_cidr: ranges.pod_cidr,
        subnet,
        gateway,
        service_cidrs: ranges.service_cidrs.clone(),
        mtu: args.mtu,
        queues: args.queues,
    };
    let (conflist, conf) = render_checked(&template, &values)?;
    // The template may name another uplink than the one the values came from.
    let uplink = match conf.uplink.as_deref() {
        Some(name) if name != link.name => node::resolve_uplink(nl, Some(name)).await?,
        _ => link,
    };
    Ok(Plan {
        values,
        conflist,
        conf,
        uplink,
        bin_dir: under_host(&args.host_root, &args.cni_bin_dir),
        conf_dir: under_host(&args.host_root, &args.cni_conf_dir),
        conf_name: args.conf_name.clone(),
    })
}

/// Makes the node match `plan`, in order: the binary, the node datapath,
/// and only then the conflist. Idempotent: unchanged files are not rewritten.
pub async fn apply(plan: &Plan, seen: &mut Seen) -> Result<Applied> {
    let exe = std::env::current_exe().context("find the running binary")?;
    let binary_written = install_binary(&exe, &plan.bin_dir, seen)?;
    let conf = &plan.conf;
    let node = {
        let _lock = bpf::lock_node(&BpfPaths::new(&conf.bpf_root))?;
        datapath::setup_node(
            &conf.bpf_root,
            conf.max_pods,
            &plan.uplink,
            &conf.service_cidrs,
        )
        .await?
    };
    check_plugins_installed(&plan.conflist, &plan.bin_dir)?;
    let conflist_written = write_if_changed(
        &plan.conf_dir,
        &plan.conf_name,
        plan.conflist.as_bytes(),
        CONFLIST_MODE,
    )?;
    Ok(Applied {
        binary_written,
        conflist_written,
        node,
    })
}

/// Where the conflist goes on the host (under --host-root).
pub fn conflist_path(args: &InstallArgs) -> PathBuf {
    under_host(&args.host_root, &args.cni_conf_dir).join(&args.conf_name)
}

/// A host path the agent needs mounted, and where (the DaemonSet's
/// hostPath volumes are derived from this, and a test holds them equal).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPath {
    pub name: &'static str,
    pub host_path: PathBuf,
    pub mount_path: PathBuf,
    /// "None", "HostToContainer" or "Bidirectional" (Kubernetes' mountPropagation)
    pub propagation: &'static str,
}

/// Where bpffs is mounted for a pin root: `/sys/fs/bpf` (the pins the
/// agent makes must show on the host: Bidirectional), or the root itself.
fn bpffs_mount(bpf_root: &Path) -> PathBuf {
    let standard = Path::new("/sys/fs/bpf");
    if bpf_root.starts_with(standard) {
        standard.to_path_buf()
    } else {
        bpf_root.to_path_buf()
    }
}

/// The host paths `args` and the conflist `conf` need: the CNI dirs under
/// --host-root, and at their own paths bpffs and the plugin's state dir (the
/// plugin, run by the runtime on the host, and the agent must see the same).
pub fn host_paths(args: &InstallArgs, conf: &NetConf) -> Vec<HostPath> {
    let same = |name, path: &Path, propagation| HostPath {
        name,
        host_path: path.to_path_buf(),
        mount_path: path.to_path_buf(),
        propagation,
    };
    vec![
        HostPath {
            name: "cni-bin",
            host_path: args.cni_bin_dir.clone(),
            mount_path: under_host(&args.host_root, &args.cni_bin_dir),
            propagation: "None",
        },
        HostPath {
            name: "cni-conf",
            host_path: args.cni_conf_dir.clone(),
            mount_path: under_host(&args.host_root, &args.cni_conf_dir),
            propagation: "None",
        },
        same("bpffs", &bpffs_mount(&conf.bpf_root), "Bidirectional"),
        same("state", &conf.state_dir, "None"),
    ]
}

/// `veth-xdp install --print-host-paths`: the template rendered with
/// placeholder values (no network is read), then its paths.
pub fn print_host_paths(args: &InstallArgs) -> Result<i32> {
    let template = read_template(args)?;
    let values = NodeValues {
        uplink: "eth0".into(),
        pod_cidr: "192.0.2.128/25".parse().expect("a CIDR"),
        subnet: "192.0.2.0/24".parse().expect("a CIDR"),
        gateway: Ipv4Addr::new(192, 0, 2, 1),
        service_cidrs: vec![],
        mtu: None,
        queues: None,
    };
    let (_, conf) = render_checked(&template, &values)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&host_paths(args, &conf))?
    );
    Ok(0)
}

pub fn changed(yes: bool) -> &'static str {
    if yes {
        "written"
    } else {
        "unchanged"
    }
}

/// `veth-xdp install --once`: install and exit; Ok(exit code).
pub fn run_once(args: &InstallArgs) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ranges = Discovery::default().ranges(args).await?;
        let nl = Netlink::current()?;
        let plan = plan(args, &nl, &ranges).await?;
        let applied = apply(&plan, &mut Seen::default()).await?;
        println!(
            "binary {}: {}",
            plan.bin_dir.join(BINARY_NAME).display(),
            changed(applied.binary_written)
        );
        println!(
            "datapath ready under {}: uplink {} in {:?} mode",
            plan.conf.bpf_root.display(),
            plan.uplink.name,
            applied.node.uplink_mode
        );
        println!(
            "conflist {}: {} (pods on {} from {}, gateway {})",
            plan.conflist_path().display(),
            changed(applied.conflist_written),
            plan.values.subnet,
            plan.values.pod_cidr,
            plan.values.gateway
        );
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> NodeValues {
        NodeValues {
            uplink: "eth1".into(),
            pod_cidr: "10.0.0.128/25".parse().unwrap(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            gateway: "10.0.0.1".parse().unwrap(),
            service_cidrs: vec!["10.96.0.0/12".parse().unwrap()],
            mtu: None,
            queues: Some(2),
        }
    }

    #[test]
    fn default_template_renders_to_a_valid_conflist() {
        let rendered = render(DEFAULT_TEMPLATE, &values().placeholders().unwrap()).unwrap();
        let (text, conf) = check_conflist(&rendered).unwrap();
        assert_eq!(conf.uplink.as_deref(), Some("eth1"));
        assert_eq!(conf.queues, Some(2));
        assert_eq!(conf.mtu, None);
        assert_eq!(conf.service_cidrs.len(), 1);
        let v: Value = serde_json::from_str(&text).unwrap();
        let range = &v["plugins"][0]["ipam"]["ranges"][0][0];
        assert_eq!(range["subnet"], "10.0.0.0/24");
        assert_eq!(range["rangeStart"], "10.0.0.128");
        assert_eq!(range["rangeEnd"], "10.0.0.254");
        assert_eq!(range["gateway"], "10.0.0.1");
    }

    #[test]
    fn unknown_and_unclosed_placeholders_name_the_line() {
        let p = values().placeholders().unwrap();
        let e = render("{\n \"a\": \"{{nope}}\"}", &p).unwrap_err();
        assert!(e.contains("line 2") && e.contains("{{nope}}"), "{e}");
        let e = render("{ \"a\": \"{{uplink\" }", &p).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn conflist_needs_our_plugin_and_a_valid_entry() {
        let e = check_conflist(r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"x"}]}"#)
            .unwrap_err();
        assert!(e.contains("no plugin"), "{e}");
        let e = check_conflist(
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"veth-xdp","mtu":"x"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("plugins[0]") && e.contains("mtu"), "{e}");
        assert!(check_conflist("{").unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn pod_cidr_must_lie_in_the_uplink_subnet() {
        let addrs: Vec<IpNetwork> = vec!["10.0.0.2/24".parse().unwrap()];
        let routes = vec![Route::default_via("10.0.0.1".parse().unwrap(), Some(2))];
        let ok = l2_subnet("10.0.0.128/25".parse().unwrap(), "eth1", &addrs, &routes).unwrap();
        assert_eq!(
            ok,
            ("10.0.0.0/24".parse().unwrap(), "10.0.0.1".parse().unwrap())
        );
        let e = l2_subnet("10.1.0.0/24".parse().unwrap(), "eth1", &addrs, &routes).unwrap_err();
        assert!(
            e.to_string().contains("outside the uplink eth1's subnet"),
            "{e}"
        );
        let e = l2_subnet("10.0.0.0/25".parse().unwrap(), "eth1", &addrs, &routes).unwrap_err();
        assert!(e.to_string().contains("node's own address"), "{e}");
        let e = l2_subnet("10.0.0.0/23".parse().unwrap(), "eth1", &addrs, &routes).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
    }
}
