//! Prometheus metrics, `vethxdp_` prefix, OpenMetrics text.
//!
//! Datapath counters are read at scrape time from the same snapshot `veth-xdp
//! stats` prints ([`crate::stats::collect`]), so the two always agree; per pod
//! they carry the labels `namespace`, `pod`, `interface` (the pod's interface
//! name). The plugin's operations (ADD/DEL counts, errors, latency) and the
//! agent's repairs are counted by the agent ([`Operations`]) from the events
//! file, since it started.

use std::path::Path;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::bpf::types::CounterIdx;
use crate::events::Event;
use crate::stats::{self, bytes, packets, passed_other, Row, Snapshot};

pub const PREFIX: &str = "vethxdp";
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodLabels {
    namespace: String,
    pod: String,
    interface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodReasonLabels {
    namespace: String,
    pod: String,
    interface: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodInfoLabels {
    namespace: String,
    pod: String,
    interface: String,
    host_interface: String,
    container_id: String,
    network: String,
    /// xdp or tc: how the pod's frames leave
    egress_mode: String,
    /// "true" when the pod has its map entry (the fast path serves it)
    in_datapath: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InterfaceLabels {
    interface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    egress_mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbLabels {
    verb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbResultLabels {
    verb: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbCodeLabels {
    verb: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepairLabels {
    what: String,
}

type Histograms = Family<VerbLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~4 s
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}

/// What the agent counts itself: the plugin's operations (from its events)
/// and the agent's repairs. Cloned families share their values.
#[derive(Debug)]
pub struct Operations {
    operations: Family<VerbResultLabels, Counter>,
    errors: Family<VerbCodeLabels, Counter>,
    latency: Histograms,
    repairs: Family<RepairLabels, Counter>,
    reconcile_errors: Counter,
}

impl Default for Operations {
    fn default() -> Self {
        Self::new()
    }
}

impl Operations {
    pub fn new() -> Self {
        Self {
            operations: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            repairs: Family::default(),
            reconcile_errors: Counter::default(),
        }
    }

    /// One plugin invocation.
    pub fn observe(&self, e: &Event) {
        let result = if e.code.is_some() { "error" } else { "success" };
        self.operations
            .get_or_create(&VerbResultLabels {
                verb: e.verb.clone(),
                result: result.into(),
            })
            .inc();
        if let Some(code) = e.code {
            self.errors
                .get_or_create(&VerbCodeLabels {
                    verb: e.verb.clone(),
                    code: code.to_string(),
                })
                .inc();
        }
        self.latency
            .get_or_create(&VerbLabels {
                verb: e.verb.clone(),
            })
            .observe(e.seconds);
    }

    /// One thing the agent found broken and put back.
    pub fn repaired(&self, what: &str) {
        self.repairs
            .get_or_create(&RepairLabels { what: what.into() })
            .inc();
    }

    pub fn reconcile_failed(&self) {
        self.reconcile_errors.inc();
    }

    fn register(&self, reg: &mut Registry) {
        reg.register(
            "cni_operations",
            "Plugin invocations by verb and result, since the agent started",
            self.operations.clone(),
        );
        reg.register(
            "cni_errors",
            "Plugin invocations that failed, by verb and CNI error code",
            self.errors.clone(),
        );
        reg.register(
            "cni_operation_duration_seconds",
            "Wall time of plugin invocations, by verb",
            self.latency.clone(),
        );
        reg.register(
            "agent_repairs",
            "Things the agent found missing or changed and put back (binary, conflist, pins, \
             uplink_program, pod_program, pod_map_entry)",
            self.repairs.clone(),
        );
        reg.register(
            "agent_reconcile_errors",
            "Reconciliation passes that failed (the agent's log says why)",
            self.reconcile_errors.clone(),
        );
    }
}

fn pod_labels(row: &Row) -> PodLabels {
    let rec = &row.rec;
    PodLabels {
        namespace: rec.k8s_namespace.clone().unwrap_or_default(),
        // Outside Kubernetes the container ID names the attachment.
        pod: rec
            .k8s_pod
            .clone()
            .unwrap_or_else(|| rec.container_id.clone()),
        interface: rec.ifname.clone(),
    }
}

fn with_reason(l: &PodLabels, reason: &str) -> PodReasonLabels {
    PodReasonLabels {
        namespace: l.namespace.clone(),
        pod: l.pod.clone(),
        interface: l.interface.clone(),
        reason: reason.into(),
    }
}

/// Per-pod packet and byte counters: (metric stem, help, counter).
const POD_FLOWS: &[(&str, &str, CounterIdx)] = &[
    (
        "pod_redirected_in",
        "Frames XDP-redirected into the pod (from the wire or another pod)",
        CounterIdx::RxRedirect,
    ),
    (
        "pod_redirected_to_wire",
        "Frames the pod sent that were redirected out of the uplink",
        CounterIdx::TxUplink,
    ),
    (
        "pod_redirected_to_pod",
        "Frames the pod sent that were redirected into another pod",
        CounterIdx::TxPod,
    ),
];

const PASS_REASONS: &[(&str, Option<CounterIdx>)] = &[
    ("node", Some(CounterIdx::PassNode)),
    ("service", Some(CounterIdx::PassService)),
    ("nat_return", Some(CounterIdx::PassNatReturn)),
    ("other", None),
];

const DROP_REASONS: &[(&str, CounterIdx)] = &[
    ("spoof", CounterIdx::DropSpoof),
    ("malformed", CounterIdx::DropMalformed),
    ("ethertype", CounterIdx::DropEthertype),
    ("router_frame", CounterIdx::DropRouter),
    ("redirect_failure", CounterIdx::RedirectFail),
];

fn register_pods(reg: &mut Registry, snap: &Snapshot) {
    for (stem, help, idx) in POD_FLOWS {
        let pkts = Family::<PodLabels, Counter>::default();
        let byts = Family::<PodLabels, Counter>::default();
        for row in &snap.rows {
            let l = pod_labels(row);
            pkts.get_or_create(&l).inc_by(packets(&row.counters, *idx));
            byts.get_or_create(&l).inc_by(bytes(&row.counters, *idx));
        }
        reg.register(format!("{stem}_packets"), *help, pkts);
        reg.register(format!("{stem}_bytes"), format!("{help} (bytes)"), byts);
    }
    let passed = Family::<PodReasonLabels, Counter>::default();
    let dropped = Family::<PodReasonLabels, Counter>::default();
    let hidden = Family::<PodReasonLabels, Counter>::default();
    let info = Family::<PodInfoLabels, Gauge>::default();
    let modes = Family::<ModeLabels, Gauge>::default();
    for row in &snap.rows {
        let l = pod_labels(row);
        for (reason, idx) in PASS_REASONS {
            let v = match idx {
                Some(idx) => packets(&row.counters, *idx),
                None => passed_other(&row.counters),
            };
            passed.get_or_create(&with_reason(&l, reason)).inc_by(v);
        }
        for (reason, idx) in DROP_REASONS {
            dropped
                .get_or_create(&with_reason(&l, reason))
                .inc_by(packets(&row.counters, *idx));
        }
        if let Some(h) = row.hidden {
            for (kind, v) in [
                ("xdp_xmit_error", h.xdp_xmit_errors),
                ("rx_ring", h.rx_drops),
                ("xdp_drop", h.xdp_drops),
                ("xdp_tx_error", h.xdp_tx_errors),
            ] {
                hidden.get_or_create(&with_reason(&l, kind)).inc_by(v);
            }
        }
        let rec = &row.rec;
        info.get_or_create(&PodInfoLabels {
            namespace: l.namespace,
            pod: l.pod,
            interface: l.interface,
            host_interface: rec.host_ifname.clone(),
            container_id: rec.container_id.clone(),
            network: rec.network.clone(),
            egress_mode: rec.egress.as_str().into(),
            in_datapath: row.counters.is_some().to_string(),
        })
        .set(1);
        modes
            .get_or_create(&ModeLabels {
                egress_mode: rec.egress.as_str().into(),
            })
            .inc();
    }
    reg.register(
        "pod_passed_to_stack_packets",
        "Frames of the pod handed to the node's stack, by reason (node: to the node's own \
         addresses; service: to a Service range; nat_return: replies of flows the stack \
         translated; other)",
        passed,
    );
    reg.register(
        "pod_dropped_packets",
        "Frames of the pod the datapath dropped, by reason",
        dropped,
    );
    reg.register(
        "pod_veth_hidden_drops",
        "Drops the host veth counts only in its driver statistics (ethtool -S), by kind",
        hidden,
    );
    reg.register(
        "pod_info",
        "One per attachment: its datapath mode and where it is",
        info,
    );
    reg.register(
        "attachments",
        "Attachments on this node, by egress mode",
        modes,
    );
}

fn register_uplinks(reg: &mut Registry, snap: &Snapshot) {
    let to_pods = Family::<InterfaceLabels, Counter>::default();
    let passed = Family::<InterfaceLabels, Counter>::default();
    let no_pod = Family::<InterfaceLabels, Counter>::default();
    for (name, _, c) in &snap.uplinks {
        let l = InterfaceLabels {
            interface: name.clone(),
        };
        to_pods
            .get_or_create(&l)
            .inc_by(packets(c, CounterIdx::TxPod));
        passed
            .get_or_create(&l)
            .inc_by(packets(c, CounterIdx::Pass));
        no_pod
            .get_or_create(&l)
            .inc_by(packets(c, CounterIdx::DropNoPod));
    }
    reg.register(
        "uplink_redirected_to_pods_packets",
        "Frames from the wire XDP-redirected into pods",
        to_pods,
    );
    reg.register(
        "uplink_passed_to_stack_packets",
        "Frames from the wire the uplink program passed to the node's stack",
        passed,
    );
    reg.register(
        "uplink_no_pod_drops",
        "Frames dropped on host veths that have no pod entry",
        no_pod,
    );
}

/// The metrics page: the datapath as of now under `state_dir` (None before
/// the first reconciliation), and the operations counted so far.
pub fn render(state_dir: Option<&Path>, ops: &Operations) -> Result<String, String> {
    let mut reg = Registry::with_prefix(PREFIX);
    ops.register(&mut reg);
    let up = Gauge::<i64>::default();
    if let Some(dir) = state_dir {
        let snap = stats::collect(dir).map_err(|e| format!("read attachments: {e:#}"))?;
        register_pods(&mut reg, &snap);
        register_uplinks(&mut reg, &snap);
        up.set(1);
    }
    reg.register(
        "datapath_configured",
        "1 once the agent has set up the node and knows where the attachments are",
        up,
    );
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &reg).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_counted_by_verb_result_and_code() {
        let ops = Operations::new();
        let ev = |verb: &str, code: Option<u32>, seconds: f64| Event {
            verb: verb.into(),
            network: "n".into(),
            container_id: "c".into(),
            ifname: "eth0".into(),
            namespace: None,
            pod: None,
            seconds,
            code,
            msg: String::new(),
        };
        ops.observe(&ev("ADD", None, 0.012));
        ops.observe(&ev("ADD", None, 0.020));
        ops.observe(&ev("ADD", Some(7), 0.002));
        ops.observe(&ev("DEL", None, 0.004));
        ops.repaired("conflist");
        let text = render(None, &ops).unwrap();
        for line in [
            r#"vethxdp_cni_operations_total{verb="ADD",result="success"} 2"#,
            r#"vethxdp_cni_operations_total{verb="ADD",result="error"} 1"#,
            r#"vethxdp_cni_errors_total{verb="ADD",code="7"} 1"#,
            r#"vethxdp_cni_operation_duration_seconds_count{verb="ADD"} 3"#,
            r#"vethxdp_cni_operation_duration_seconds_bucket{le="0.016",verb="ADD"} 2"#,
            r#"vethxdp_agent_repairs_total{what="conflist"} 1"#,
            "vethxdp_datapath_configured 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
