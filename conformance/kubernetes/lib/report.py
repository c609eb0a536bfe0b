#!/usr/bin/env python3
"""The results of conformance.sh's runs as Markdown, from the e2e JUnit reports.

Usage: report.py OUT.md RESULTS_DIR
RESULTS_DIR holds one directory per configuration (conformance.sh's names, e.g.
veth-xdp-xdp-iptables), each with the e2e report (junit_01.xml), `wall` (seconds of the whole
configuration: cluster up, tests, down), `e2e-rc` (e2e.test's exit code) and `command`.
Writes a table per test (one column per configuration) and a summary; the test list is every
spec of the focus (sig-network and Conformance in its name), including those a skip list left
out, which show as "skipped".
"""
import os
import re
import sys
import xml.etree.ElementTree as ET


def specs(junit):
    """{test name: (status, seconds)} of the sig-network conformance specs in a report."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        if "[sig-network]" not in name or "[Conformance]" not in name:
            continue
        name = re.sub(r"^\[It\] ", "", name)
        # "[sig-network, Conformance]" and the like: ginkgo's label list, not part of the name.
        name = re.sub(r" \[[\w\-, ]+\]$", "", name) if name.endswith("]") and ", " in name[-40:] else name
        status = case.get("status")
        if status is None:
            status = "failed" if case.find("failure") is not None else (
                "skipped" if case.find("skipped") is not None else "passed")
        out[name] = (status, float(case.get("time") or 0))
    return out


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def main():
    out_md, results = sys.argv[1], sys.argv[2]
    configs = sorted(d for d in os.listdir(results) if os.path.isdir(os.path.join(results, d)))
    runs = {}
    for c in configs:
        junit = os.path.join(results, c, "junit_01.xml")
        runs[c] = specs(junit) if os.path.exists(junit) else None
    names = sorted({n for r in runs.values() if r for n in r})
    mark = {"passed": "pass", "failed": "**FAIL**", "skipped": "skipped"}
    lines = ["| configuration | passed | failed | skipped | e2e wall time | whole run (up, tests, down) |",
             "|---|---:|---:|---:|---:|---:|"]
    for c in configs:
        r = runs[c]
        if r is None:
            lines.append(f"| {c} | no report ({read(os.path.join(results, c, 'error'), 'see its logs')}) | | | | |")
            continue
        count = {s: sum(1 for v in r.values() if v[0] == s) for s in mark}
        e2e = read(os.path.join(results, c, "e2e-wall"), "?")
        wall = read(os.path.join(results, c, "wall"), "?")
        lines.append(f"| {c} | {count['passed']} | {count['failed']} | {count['skipped']} | {e2e} s | {wall} s |")
    lines += ["", "| test | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
    for n in names:
        cells = []
        for c in configs:
            r = runs[c]
            if r is None or n not in r:
                cells.append("–")
            else:
                status, secs = r[n]
                cells.append(mark.get(status, status) + (f" {secs:.0f} s" if status != "skipped" else ""))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    datapath = [(c, read(os.path.join(results, c, "datapath"))) for c in configs]
    datapath = [(c, d) for c, d in datapath if d]
    if datapath:
        lines += ["", "The veth-xdp datapath after the tests (`veth-xdp stats` on each node):", ""]
        for c, d in datapath:
            lines += [f"- {c}:"] + [f"  - {line}" for line in d.splitlines()]
    commands = sorted({read(os.path.join(results, c, "command")) for c in configs} - {""})
    lines += ["", "Produced by:", "", "```sh"] + commands + ["```", ""]
    with open(out_md, "w") as f:
        f.write("\n".join(lines))
    # The totals over every configuration, in cargo test's words (hack/test.sh's summary adds
    # them up with the rest).
    total = {s: sum(1 for r in runs.values() if r for v in r.values() if v[0] == s) for s in mark}
    total["failed"] += sum(1 for r in runs.values() if r is None)
    with open(os.path.join(results, "totals"), "w") as f:
        ok = "ok" if total["failed"] == 0 else "FAILED"
        f.write(f"test result: {ok}. {total['passed']} passed; {total['failed']} failed; "
                f"{total['skipped']} ignored (Kubernetes [sig-network] conformance)\n")


if __name__ == "__main__":
    main()
