/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Bounds-checked Ethernet access and MAC/address helpers. */
#ifndef VX_PARSE_H
#define VX_PARSE_H

#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include "ctx.h"
#include "vx_shared.h"

#define VX_ETH_HLEN 14

static __always_inline struct ethhdr *vx_eth(const struct vx_pkt *pkt)
{
	return vx_hdr(pkt, 0, VX_ETH_HLEN);
}

/* 802.1Q / 802.1ad: we never look inside tagged frames. */
static __always_inline int vx_is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

static __always_inline int vx_mac_is_multicast(const __u8 *mac)
{
	return mac[0] & 1; /* broadcast included */
}

static __always_inline int vx_mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] &&
	       a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

static __always_inline void vx_mac_key_from(struct vx_mac_key *key, const __u8 *mac)
{
	__builtin_memcpy(key->addr, mac, 6);
	key->pad[0] = 0;
	key->pad[1] = 0;
}

static __always_inline int vx_in6_is_unspecified(const struct vx_in6_key *a)
{
	const __u32 *w = (const __u32 *)a->addr;

	return (w[0] | w[1] | w[2] | w[3]) == 0;
}

/* fe80::/10 */
static __always_inline int vx_in6_is_link_local(const struct vx_in6_key *a)
{
	return a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80;
}

#endif /* VX_PARSE_H */
