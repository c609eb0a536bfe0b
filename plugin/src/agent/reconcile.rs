//! One reconciliation pass: the ranges (given or from the API), the plan
//! (template rendered and checked: a broken template keeps the previous
//! conflist), then [`install::apply`] (binary, node datapath, conflist, each
//! only if it differs), then every pod of the network: host-veth programs and
//! map entry. Whatever had to be done after the first pass is a repair: logged
//! and counted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use super::Shared;
use crate::cmd::datapath::{self, NodeDatapath, PodDatapathSpec};
use crate::events;
use crate::install::{self, InstallArgs, Plan, Ranges};
use crate::mac::parse_mac;
use crate::netlink::Netlink;
use crate::record::{Record, Store};

pub struct Reconciler {
    args: InstallArgs,
    shared: Arc<Shared>,
    /// the last plan applied (its conflist is on disk)
    applied: Option<Plan>,
    events: Option<events::Reader>,
    seen: install::Seen,
    discovery: install::Discovery,
    /// the ranges of the last pass, to say when they change
    ranges: Option<Ranges>,
}

impl Reconciler {
    pub fn new(args: InstallArgs, shared: Arc<Shared>) -> Self {
        Self {
            args,
            shared,
            applied: None,
            events: None,
            seen: install::Seen::default(),
            discovery: install::Discovery::default(),
            ranges: None,
        }
    }

    /// One pass; failures are logged and make /readyz fail until a pass succeeds.
    pub async fn pass(&mut self) {
        let outcome = self.try_pass().await;
        self.read_events();
        let mut health = self.shared.health.lock().expect("health lock");
        health.last_pass = Instant::now();
        health.ready = match outcome {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = format!("{e:#}");
                log::error!("reconcile: {e}");
                self.shared.ops.reconcile_failed();
                Err(e)
            }
        };
        health.state_dir = self.applied.as_ref().map(|p| p.conf.state_dir.clone());
    }

    async fn try_pass(&mut self) -> Result<()> {
        let ranges = self.ranges().await?;
        let nl = Netlink::current()?;
        let plan =
            install::plan(&self.args, &nl, &ranges)
                .await
                .map_err(|e| match &self.applied {
                    Some(p) => e.context(format!(
                        "keeping the previous conflist {}",
                        p.conflist_path().display()
                    )),
                    None => e.context("no conflist written: the node takes no pods yet"),
                })?;
        let first = self.applied.is_none();
        let applied = install::apply(&plan, &mut self.seen).await?;
        self.report_node(first, &plan, &applied);
        if self
            .applied
            .as_ref()
            .is_none_or(|p| p.conf.state_dir != plan.conf.state_dir)
        {
            self.events = match events::Reader::create(&plan.conf.state_dir) {
                Ok(r) => Some(r),
                Err(e) => {
                    log::warn!(
                        "cannot create the events file under {}: no ADD/DEL metrics: {e}",
                        plan.conf.state_dir.display()
                    );
                    None
                }
            };
        }
        self.applied = Some(plan.clone());
        self.repair_pods(&nl, &plan, &applied.node).await
    }

    /// The ranges the plan is made for: the command line's, or the API's
    /// (read every pass: a pod CIDR allocated late, a ServiceCIDR added).
    async fn ranges(&mut self) -> Result<Ranges> {
        let ranges = self.discovery.ranges(&self.args).await?;
        if self.ranges.as_ref() != Some(&ranges) {
            log::info!(
                "pod CIDR {}, service ranges [{}]",
                ranges.pod_cidr,
                ranges
                    .service_cidrs
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            self.ranges = Some(ranges.clone());
        }
        Ok(ranges)
    }

    fn report_node(&self, first: bool, plan: &Plan, applied: &install::Applied) {
        let ops = &self.shared.ops;
        let binary = plan.bin_dir.join(install::BINARY_NAME);
        let conflist = plan.conflist_path();
        if first {
            log::info!(
                "binary {}: {}; datapath under {}: uplink {} in {:?} mode; conflist {}: {} \
                 (pods on {} from {}, gateway {})",
                binary.display(),
                install::changed(applied.binary_written),
                plan.conf.bpf_root.display(),
                plan.uplink.name,
                applied.node.uplink_mode,
                conflist.display(),
                install::changed(applied.conflist_written),
                plan.values.subnet,
                plan.values.pod_cidr,
                plan.values.gateway
            );
            return;
        }
        if applied.binary_written {
            log::warn!(
                "repaired: binary {} was missing or differed: reinstalled",
                binary.display()
            );
            ops.repaired("binary");
        }
        if applied.node.loaded_now {
            log::warn!(
                "repaired: pins under {} were missing: datapath reloaded",
                plan.conf.bpf_root.display()
            );
            ops.repaired("pins");
        }
        if applied.node.uplink_attached_now {
            log::warn!(
                "repaired: the uplink program was not attached to {}: re-attached",
                plan.uplink.name
            );
            ops.repaired("uplink_program");
        }
        if applied.conflist_written {
            log::warn!(
                "repaired: conflist {} was missing or differed (or the template or ranges \
                 changed): rewritten",
                conflist.display()
            );
            ops.repaired("conflist");
        }
    }

    /// Each pod of this network: host-veth programs and map entry back if gone.
    async fn repair_pods(&self, nl: &Netlink, plan: &Plan, node: &NodeDatapath) -> Result<()> {
        let conf = &plan.conf;
        let store = Store::new(&conf.state_dir, &conf.name);
        // Never in the middle of an ADD or DEL: busy now, next pass.
        let Some(_all) = store.try_lock_all()? else {
            return Ok(());
        };
        let bpf_root = conf.bpf_root.display().to_string();
        let mut failures = Vec::new();
        for rec in store.list()? {
            // Another network's pods, or an ADD that never finished (its
            // lease only: DEL or GC removes it).
            if rec.bpf_root != bpf_root || rec.pending {
                continue;
            }
            if let Err(e) = self.repair_pod(nl, &rec, node).await {
                failures.push(format!("{}: {e}", pod_name(&rec)));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("pods: {}", failures.join("; "))
        }
    }

    async fn repair_pod(&self, nl: &Netlink, rec: &Record, node: &NodeDatapath) -> Result<()> {
        // A host veth gone, or another device under its name: the pod is
        // being deleted (DEL owns that), not ours to repair.
        let Some(host) = nl.link_by_name(&rec.host_ifname).await? else {
            return Ok(());
        };
        if host.index != rec.host_ifindex {
            return Ok(());
        }
        let spec = PodDatapathSpec {
            bpf_root: std::path::Path::new(&rec.bpf_root),
            host: &host,
            pod_mac: parse_mac(&rec.pod_mac).unwrap_or_default(),
            ips: &rec.ips,
            egress: rec.egress,
            allow: rec.allow,
        };
        let paths = crate::bpf::BpfPaths::new(&rec.bpf_root);
        let attached = datapath::ensure_host_programs(&paths, &host, rec.egress, node)?;
        if !attached.is_empty() {
            log::warn!(
                "repaired: pod {} host veth {}: re-attached {}",
                pod_name(rec),
                rec.host_ifname,
                attached.join(", ")
            );
            self.shared.ops.repaired("pod_program");
        }
        if datapath::ensure_pod_entry(&spec)? {
            log::warn!(
                "repaired: pod {} ({}) was missing from the datapath maps: re-inserted",
                pod_name(rec),
                rec.pod_mac
            );
            self.shared.ops.repaired("pod_map_entry");
        }
        Ok(())
    }

    /// Feeds the plugin's new events into the metrics; failures are logged
    /// here, where `kubectl logs` shows them (the plugin's own log is on the host).
    fn read_events(&mut self) {
        let Some(reader) = self.events.as_mut() else {
            return;
        };
        match reader.read_new() {
            Ok(events) => {
                for e in &events {
                    if let Some(code) = e.code {
                        log::warn!(
                            "plugin {} failed for {} (container {} {}): code {code}: {}",
                            e.verb,
                            match (&e.namespace, &e.pod) {
                                (Some(ns), Some(p)) => format!("pod {ns}/{p}"),
                                _ => "a non-Kubernetes attachment".into(),
                            },
                            e.container_id,
                            e.ifname,
                            e.msg
                        );
                    }
                    self.shared.ops.observe(e);
                }
            }
            Err(e) => log::warn!("read the plugin's events: {e}"),
        }
    }

    /// `--cleanup-on-exit`: the node stops taking pods.
    pub fn remove_conflist(&self) {
        let path: PathBuf = match &self.applied {
            Some(p) => p.conflist_path(),
            None => install::conflist_path(&self.args),
        };
        match std::fs::remove_file(&path) {
            Ok(()) => log::info!("removed {} (--cleanup-on-exit)", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::error!("remove {} (--cleanup-on-exit): {e}", path.display()),
        }
    }
}

/// "namespace/pod", or the container ID outside Kubernetes.
pub fn pod_name(rec: &Record) -> String {
    match (&rec.k8s_namespace, &rec.k8s_pod) {
        (Some(ns), Some(p)) => format!("{ns}/{p}"),
        _ => format!("container {}", rec.container_id),
    }
}
