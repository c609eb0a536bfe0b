/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The context abstraction: the steering logic sees a struct vx_pkt (linear
 * data window, total length, receiving ifindex), never an xdp_md or an
 * __sk_buff, so the same headers serve the XDP and the tc hooks (Cilium's
 * bpf/ctx/{xdp,skb}.h idea, reduced to what we read). Each hook builds its
 * vx_pkt here and turns the neutral verdict into its own return code in
 * hook_xdp.h / hook_tc.h.
 */
#ifndef VX_CTX_H
#define VX_CTX_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Bytes of headers the steering reads at most: Ethernet (14) + IPv6 (40) +
 * up to 64 bytes of extension headers + 4 bytes of ICMPv6/UDP (guard.h);
 * IPv4 with options + ports is less (14 + 60 + 4). */
#define VX_HDR_MAX 122

struct vx_pkt {
	void *data;     /* start of the linear part (Ethernet header) */
	void *data_end; /* end of the linear part */
	__u64 len;      /* whole frame, all fragments included: byte counters */
	__u32 ifindex;  /* device the frame arrived on */
	__u32 vlan_tag; /* the frame carries a VLAN tag outside its data (skb metadata) */
};

static __always_inline void vx_pkt_from_xdp(struct vx_pkt *pkt, struct xdp_md *ctx)
{
	pkt->data = (void *)(long)ctx->data;
	pkt->data_end = (void *)(long)ctx->data_end;
	/* xdp.frags: data..data_end is only the first buffer; the headers we
	 * read are there unless the frame is malformed (then a bounds check
	 * fails and the frame is treated as truncated). */
	pkt->len = bpf_xdp_get_buff_len(ctx);
	pkt->ifindex = ctx->ingress_ifindex;
	/* XDP sees tags inline (tx-vlan offload is off on the pod end). */
	pkt->vlan_tag = 0;
}

static __always_inline void vx_pkt_from_skb(struct vx_pkt *pkt, struct __sk_buff *skb)
{
	__u32 want = skb->len < VX_HDR_MAX ? skb->len : VX_HDR_MAX;

	/* Headers of a locally generated skb are linear in practice; pull them
	 * if not, so the bounds checks below see them. */
	if ((long)skb->data_end - (long)skb->data < (long)want)
		bpf_skb_pull_data(skb, want);
	pkt->data = (void *)(long)skb->data;
	pkt->data_end = (void *)(long)skb->data_end;
	pkt->len = skb->len;
	/* At tc ingress of the host veth, skb->dev is that veth. */
	pkt->ifindex = skb->ifindex;
	/* __netif_receive_skb_core moves an inline 802.1Q/802.1ad tag into the
	 * skb (skb_vlan_untag) before tc runs: the data then looks untagged. */
	pkt->vlan_tag = skb->vlan_present;
}

/* Pointer to len bytes at off, or NULL if the linear data is shorter. */
static __always_inline void *vx_hdr(const struct vx_pkt *pkt, __u32 off, __u32 len)
{
	void *p = pkt->data + off;

	if (p + len > pkt->data_end)
		return NULL;
	return p;
}

#endif /* VX_CTX_H */
