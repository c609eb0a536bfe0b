/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ARP over Ethernet/IPv4: recognition and field access. */
#ifndef VX_ARP_H
#define VX_ARP_H

#include "parse.h"

/* From <linux/if_arp.h>, which drags in libc headers a BPF build cannot use. */
#define VX_ARPHRD_ETHER 1
#define VX_ARPOP_REQUEST 1

/* The Ethernet/IPv4 ARP packet, fixed layout (28 bytes). */
struct vx_arp {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

/* The ARP packet after the Ethernet header, or NULL if truncated. */
static __always_inline struct vx_arp *vx_arp_hdr(const struct vx_pkt *pkt)
{
	return vx_hdr(pkt, VX_ETH_HLEN, sizeof(struct vx_arp));
}

static __always_inline int vx_arp_is_eth_ipv4(const struct vx_arp *arp)
{
	return arp->htype == bpf_htons(VX_ARPHRD_ETHER) && arp->ptype == bpf_htons(ETH_P_IP) &&
	       arp->hlen == 6 && arp->plen == 4;
}

static __always_inline int vx_arp_is_request(const struct vx_arp *arp)
{
	return vx_arp_is_eth_ipv4(arp) && arp->op == bpf_htons(VX_ARPOP_REQUEST);
}

/* An IPv4 address field as the __u32 (network order) the maps use. */
static __always_inline __u32 vx_arp_ip(const __u8 *field)
{
	__u32 ip;

	__builtin_memcpy(&ip, field, 4);
	return ip;
}

#endif /* VX_ARP_H */
