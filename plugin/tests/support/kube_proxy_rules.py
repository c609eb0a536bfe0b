#!/usr/bin/env python3
"""kube-proxy's nat rules for one node, as its iptables mode writes them.

Reads a description of Services (JSON, from the file named by the argument or
from stdin) and prints an `iptables-restore --noflush` input for the nat table:

    {
      "node": "node1",                      # the node the rules are for
      "clusterCIDR": "10.88.16.0/20",       # kube-proxy --cluster-cidr
      "services": [{
        "namespace": "default", "name": "web",
        "type": "ClusterIP" | "NodePort",
        "clusterIP": "10.96.0.20",
        "externalTrafficPolicy": "Cluster" | "Local",          # NodePort only
        "ports": [{"name": "http", "protocol": "TCP" | "UDP", "port": 80,
                   "targetPort": 8080, "nodePort": 30080}],     # nodePort: NodePort only
        "endpoints": [{"ip": "10.88.17.10", "nodeName": "node1"}]
      }]
    }

The rule text, chain names and order reproduce the golden dumps of
kubernetes/kubernetes pkg/proxy/iptables/proxier_test.go (TestOverallIPTablesRules,
TestOnlyLocalNodePorts, TestInternalTrafficPolicyE2E), sorted as those dumps are
(KUBE-NODEPORTS and KUBE-SERVICES first, then the other chains by name), with what
a real node has and the fake iptables of those tests leaves out:

- `-j MASQUERADE --random-fully` (proxier.go adds it when iptables has it, >= 1.6.2);
- the jumps from the built-in chains (proxier.go `iptablesJumpChains`, installed with
  `iptables -I`): OUTPUT and PREROUTING -> KUBE-SERVICES, POSTROUTING -> KUBE-POSTROUTING;
- the NodePort jump with `-m addrtype --dst-type LOCAL` (nodePortAddresses unset).

Chain names are kube-proxy's: KUBE-SVC/EXT/SVL-<h> with h = the first 16 characters of
base32(sha256("<namespace>/<name>[:<port name>]" + "<protocol>")), KUBE-SEP-<h> with
"<ip>:<targetPort>" appended to the hashed text. Not modelled: the filter table (REJECT
for Services without endpoints, DROP in KUBE-EXTERNAL-SERVICES for Local Services
without local endpoints: here such a NodePort reaches the node itself and is refused),
external and load-balancer IPs, session affinity, IPv6, and localhost NodePorts (so
the node needs no `route_localnet`).
"""

import base64
import hashlib
import json
import sys

MASQ_MARK = "0x4000"


def chain_hash(text):
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def comment(text):
    # kube-proxy quotes a comment only when it has spaces.
    return '"%s"' % text if " " in text else text


def probability(n):
    return "%0.10f" % (1.0 / n)


def balance(chain, port_name, endpoints, target_port, sep_chain):
    """The rules spreading `chain` over `endpoints` (statistic, then the last one)."""
    rules = []
    for i, ep in enumerate(endpoints):
        rule = "-A %s -m comment --comment %s" % (
            chain,
            comment("%s -> %s:%d" % (port_name, ep["ip"], target_port)),
        )
        left = len(endpoints) - i
        if left > 1:
            rule += " -m statistic --mode random --probability %s" % probability(left)
        rules.append(rule + " -j " + sep_chain(ep))
    return rules


def service_port_rules(svc, port, node, cluster_cidr, chains):
    """(KUBE-NODEPORTS rules, KUBE-SERVICES rules) of one Service port; its own
    chains' rules go into `chains`."""
    port_name = "%s/%s" % (svc["namespace"], svc["name"])
    if port.get("name"):
        port_name += ":" + port["name"]
    proto = port["protocol"].lower()
    match = "-m %s -p %s" % (proto, proto)
    h = chain_hash(port_name + proto)
    svc_chain, ext_chain, svl_chain = "KUBE-SVC-" + h, "KUBE-EXT-" + h, "KUBE-SVL-" + h
    target = port.get("targetPort", port["port"])
    endpoints = svc["endpoints"]
    if not endpoints:
        sys.exit("%s: a Service without endpoints is not modelled" % port_name)

    def sep_chain(ep):
        return "KUBE-SEP-" + chain_hash(port_name + proto + "%s:%d" % (ep["ip"], target))

    cluster_ip = "-m comment --comment %s %s -d %s --dport %d" % (
        comment(port_name + " cluster IP"),
        match,
        svc["clusterIP"],
        port["port"],
    )
    services = ["-A KUBE-SERVICES %s -j %s" % (cluster_ip, svc_chain)]
    rules = chains.setdefault(svc_chain, [])
    if cluster_cidr:
        rules.append("-A %s %s ! -s %s -j KUBE-MARK-MASQ" % (svc_chain, cluster_ip, cluster_cidr))
    rules += balance(svc_chain, port_name, endpoints, target, sep_chain)
    for ep in endpoints:
        chains[sep_chain(ep)] = [
            "-A %s -m comment --comment %s -s %s -j KUBE-MARK-MASQ"
            % (sep_chain(ep), comment(port_name), ep["ip"]),
            "-A %s -m comment --comment %s %s -j DNAT --to-destination %s:%d"
            % (sep_chain(ep), comment(port_name), match, ep["ip"], target),
        ]

    nodeports = []
    if svc.get("type", "ClusterIP") == "NodePort":
        nodeports.append(
            "-A KUBE-NODEPORTS -m comment --comment %s %s --dport %d -j %s"
            % (comment(port_name), match, port["nodePort"], ext_chain)
        )
        ext = chains.setdefault(ext_chain, [])
        external = port_name + " external destinations"
        if svc.get("externalTrafficPolicy", "Cluster") == "Local":
            local = [ep for ep in endpoints if ep.get("nodeName") == node]
            if cluster_cidr:
                ext.append(
                    "-A %s -m comment --comment %s -s %s -j %s"
                    % (ext_chain, comment("pod traffic for " + external), cluster_cidr, svc_chain)
                )
            ext.append(
                "-A %s -m comment --comment %s -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ"
                % (ext_chain, comment("masquerade LOCAL traffic for " + external))
            )
            ext.append(
                "-A %s -m comment --comment %s -m addrtype --src-type LOCAL -j %s"
                % (ext_chain, comment("route LOCAL traffic for " + external), svc_chain)
            )
            if local:
                ext.append("-A %s -j %s" % (ext_chain, svl_chain))
                chains[svl_chain] = balance(svl_chain, port_name, local, target, sep_chain)
        else:
            ext.append(
                "-A %s -m comment --comment %s -j KUBE-MARK-MASQ"
                % (ext_chain, comment("masquerade traffic for " + external))
            )
            ext.append("-A %s -j %s" % (ext_chain, svc_chain))
    return nodeports, services


def nat_rules(desc):
    node, cluster_cidr = desc["node"], desc.get("clusterCIDR")
    chains = {
        "KUBE-MARK-MASQ": ["-A KUBE-MARK-MASQ -j MARK --or-mark " + MASQ_MARK],
        "KUBE-POSTROUTING": [
            "-A KUBE-POSTROUTING -m mark ! --mark %s/%s -j RETURN" % (MASQ_MARK, MASQ_MARK),
            "-A KUBE-POSTROUTING -j MARK --xor-mark " + MASQ_MARK,
            '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT"'
            " -j MASQUERADE --random-fully",
        ],
    }
    nodeports, services = [], []
    ports = [(svc, port) for svc in desc["services"] for port in svc["ports"]]
    ports.sort(key=lambda sp: (sp[0]["namespace"], sp[0]["name"], sp[1].get("name", "")))
    for svc, port in ports:
        n, s = service_port_rules(svc, port, node, cluster_cidr, chains)
        nodeports += n
        services += s
    services.append(
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports;'
        ' NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL'
        " -j KUBE-NODEPORTS"
    )
    lines = ["*nat", ":KUBE-NODEPORTS - [0:0]", ":KUBE-SERVICES - [0:0]"]
    lines += [":%s - [0:0]" % c for c in sorted(chains)]
    lines += [
        '-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    ]
    lines += nodeports + services
    for c in sorted(chains):
        lines += chains[c]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def main():
    src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    sys.stdout.write(nat_rules(json.load(src)))


if __name__ == "__main__":
    main()
