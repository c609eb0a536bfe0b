/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Node config read from the vx_config array (written by the loader). */
#ifndef VX_CONFIG_H
#define VX_CONFIG_H

#include "vx_maps.h"

/* The node config; all zero (no uplink, cannot xmit) before the loader wrote it. */
static __always_inline struct vx_config vx_config_get(void)
{
	struct vx_config none = {};
	__u32 key = 0;
	struct vx_config *cfg = bpf_map_lookup_elem(&vx_config, &key);

	return cfg ? *cfg : none;
}

#endif /* VX_CONFIG_H */
