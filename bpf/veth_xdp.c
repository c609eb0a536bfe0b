// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * veth-xdp datapath: one object, six thin entry points sharing the maps of
 * vx_maps.h. All logic is in the lib/ headers (steer.h decides, hook_xdp.h / hook_tc.h apply).
 *
 * One translation unit on purpose: the programs share map definitions, and
 * one object keeps that true without a BPF link step.
 *
 * XDP programs are SEC("xdp.frags"): a non-frags program on a veth requires
 * the peer's MTU <= ~3.5 KB (ERANGE otherwise); frags-aware programs lift
 * that (veth multi-buffer XDP since 5.18), so jumbo (9000) uplinks work.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "vx_maps.h"
#include "ctx.h"
#include "steer.h"
#include "hook_xdp.h"
#include "hook_tc.h"

/* Uplink (physical NIC), native XDP: frames from the wire. Unicast to a pod,
 * or ARP/NS for a pod address → redirect into that pod; the rest → stack. */
SEC("xdp.frags")
int vx_uplink(struct xdp_md *ctx)
{
	struct vx_pkt pkt;

	vx_pkt_from_xdp(&pkt, ctx);
	return vx_xdp_uplink_apply(&pkt, vx_steer_uplink(&pkt));
}

/* Host-side veth, native XDP: frames leaving the pod (the veth's rx is the
 * pod's tx). Anti-spoofing, then local pod / node / wire. */
SEC("xdp.frags")
int vx_host_xdp(struct xdp_md *ctx)
{
	struct vx_pkt pkt;

	vx_pkt_from_xdp(&pkt, ctx);
	return vx_xdp_host_apply(&pkt, vx_steer_host(&pkt));
}

/* Host-side veth, tc (tcx) ingress: the same steering on skbs. Egress mode
 * `tc`, and the XDP mode's fallback when the uplink has no ndo_xdp_xmit. */
SEC("classifier") /* aya 0.14 knows "classifier", not libbpf's "tc" */
int vx_host_tc(struct __sk_buff *skb)
{
	struct vx_pkt pkt;

	vx_pkt_from_skb(&pkt, skb);
	return vx_tc_host_apply(skb, &pkt, vx_steer_host(&pkt));
}

/* Host-side veth, tc (tcx) egress: frames the node's stack sends into the
 * pod (XDP-redirected frames never pass here). Remembers their flows, so the
 * pod's answers go back through the stack's reverse NAT. Attached on
 * networks with service ranges. */
SEC("classifier")
int vx_host_egress(struct __sk_buff *skb)
{
	struct vx_pkt pkt;

	vx_pkt_from_skb(&pkt, skb);
	return vx_tc_egress_apply(skb, &pkt);
}

/* tcx ingress of a veth whose XDP program readdresses frames to the stack
 * (the uplink when it is a veth, host veths in egress mode xdp), on networks
 * with service ranges: restores PACKET_HOST (see hook_tc.h). */
SEC("classifier")
int vx_readdressed(struct __sk_buff *skb)
{
	struct vx_pkt pkt;

	vx_pkt_from_skb(&pkt, skb);
	return vx_tc_readdressed_apply(skb, &pkt);
}

/* Pod-side eth0 (optional): a pass program that gives the pod veth a NAPI
 * where GRO alone does not (kernels < 5.13). Attached over netlink, so a
 * privileged pod can replace it. */
SEC("xdp.frags")
int vx_pod_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
