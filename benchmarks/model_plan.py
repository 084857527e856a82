"""Benchmark: plan time of the policy model for N workloads x M policies (issue 3).

Builds a synthetic topology of N workloads spread over 20 namespaces (labels and ports drawn from
small pools, as real clusters reuse them) and M policies of every kind the model reads --
NetworkPolicy (default deny, namespace+pod selectors, named ports, ipBlock egress), CNP (HTTP L7
rules, matchExpressions, entities, CIDR sets, DNS rules), CCNP deny rules -- parsed through the
same parsers as files are. It then times building the model and planning every workload ->
workload flow on every served port, and prints workloads, pairs, seconds and microseconds per pair
for N = 100, 250, 500 with M = 200.

Targets (benchmarks/README.md): N = 500 in <= 5 s, and per-pair time flat as N grows (here: the
N = 500 figure at most 1.5x the N = 100 one). Exits 1 when a target is missed.

Run from the repository root: ``python benchmarks/model_plan.py``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from flowcheck.manifests.documents import SourceDocument
from flowcheck.model.engine import Model
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.policies import parse_document
from flowcheck.model.policy import PolicySet
from flowcheck.model.topology import Port, Topology, Workload

SIZES = (100, 250, 500)
POLICIES = 200
NAMESPACES = 20  # fixed, so only N varies between runs (policies per namespace stay the same)
TARGET_SECONDS = 5.0
FLAT_RATIO = 1.5
_PORTS = (Port("http", 8080, "TCP"), Port("metrics", 9090, "TCP"), Port("grpc", 9000, "TCP"),
          Port("dns", 53, "UDP"))
_TIERS = ("web", "api", "db", "worker")


def synthetic_topology(n: int) -> Topology:
    namespaces = {f"ns-{k}": {"team": f"team-{k % 7}", "env": ("prod", "staging")[k % 2]}
                  for k in range(NAMESPACES)}
    names = sorted(namespaces)
    workloads = []
    for i in range(n):
        ports = tuple(_PORTS[(i + j) % len(_PORTS)] for j in range(1 + i % 3))
        labels = {"app": f"app-{i % 40}", "tier": _TIERS[i % len(_TIERS)], "team": f"team-{i % 7}"}
        ip = f"10.244.{i // 250}.{i % 250 + 1}"
        workloads.append(Workload(names[i % len(names)], f"w-{i}", labels, ports, ip=ip))
    return Topology.build(namespaces, workloads)


def synthetic_policies(m: int, namespaces: int) -> PolicySet:
    notes: list[str] = []
    policies = []
    for k in range(m):
        body = _policy(k, f"ns-{k % namespaces}")
        policy = parse_document(SourceDocument("<synthetic>", k, None, body), notes, validate=False)
        assert policy is not None
        policies.append(policy)
    return PolicySet(tuple(policies), tuple(notes))


def _policy(k: int, ns: str) -> dict[str, Any]:
    meta = {"name": f"p-{k}", "namespace": ns}
    app, tier, team = f"app-{k % 40}", _TIERS[k % len(_TIERS)], f"team-{k % 7}"
    knp = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta}
    cnp = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": meta}
    shape = k % 8
    if shape == 0:
        return {**knp, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    if shape == 1:
        return {**knp, "spec": {"podSelector": {"matchLabels": {"tier": tier}}, "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {"team": team}},
                      "podSelector": {"matchLabels": {"tier": "web"}}}],
            "ports": [{"port": "http"}, {"port": 9090, "protocol": "TCP"}]}]}}
    if shape == 2:
        return {**cnp, "spec": {"endpointSelector": {"matchLabels": {"app": app}}, "ingress": [{
            "fromEndpoints": [{"matchLabels": {"tier": "web"}}],
            "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}],
                         "rules": {"http": [{"method": "GET", "path": "/api/.*"}]}}]}]}}
    if shape == 3:
        return {**cnp, "spec": {"endpointSelector": {"matchExpressions": [{"key": "tier", "operator": "In",
                                                                            "values": ["api", "web"]}]},
                                "egress": [{"toEndpoints": [{"matchExpressions": [{"key": "team", "operator": "NotIn",
                                                                                   "values": [team]}]}],
                                            "toPorts": [{"ports": [{"port": "9090"}]}]},
                                           {"toEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": ns}}],
                                            "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}],
                                                         "rules": {"dns": [{"matchPattern": "*.cluster.local"}]}}]},
                                           ]}}
    if shape == 4:
        return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": f"p-{k}"},
                "spec": {"endpointSelector": {"matchLabels": {"app": app}},
                         "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"tier": "db"}}],
                                          "toPorts": [{"ports": [{"port": "9000", "protocol": "TCP"}]}]}]}}
    if shape == 5:
        return {**knp, "spec": {"podSelector": {"matchLabels": {"team": team}}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.244.0.0/16"]}}]},
            {"to": [{"namespaceSelector": {}}], "ports": [{"port": 8000, "endPort": 9100}]}]}}
    if shape == 6:
        return {**cnp, "spec": {"endpointSelector": {"matchLabels": {"tier": tier}},
                                "ingress": [{"fromEntities": ["cluster"], "toPorts": [{"ports": [{"port": "9090"}]}]}]}}
    return {**cnp, "spec": {"endpointSelector": {}, "egress": [
        {"toCIDRSet": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}]},
        {"toEndpoints": [{"matchLabels": {"io.cilium.k8s.namespace.labels.env": "prod"}}]}]}}


def run(n: int, m: int) -> tuple[int, int, int, float, float]:
    """(workloads, pairs, flows, wall seconds, CPU seconds) of building the model and planning."""
    topology = synthetic_topology(n)
    policies = synthetic_policies(m, len(topology.namespaces))
    start, cpu_start = time.perf_counter(), time.process_time()
    planned = decide_matrix(Model(topology, policies))
    return n, n * n, len(planned), time.perf_counter() - start, time.process_time() - cpu_start


def main() -> int:
    print(f"model plan benchmark: M = {POLICIES} policies over {NAMESPACES} namespaces; seconds (wall) and "
          "cpu s include building the model")
    print(f"{'workloads':>9}  {'pairs':>7}  {'flows':>7}  {'seconds':>7}  {'us/pair':>7}  {'cpu s':>7}")
    per_pair: dict[int, float] = {}
    seconds_at: dict[int, float] = {}
    for n in SIZES:
        workloads, pairs, flows, seconds, cpu = run(n, POLICIES)
        per_pair[n] = seconds / pairs * 1e6
        seconds_at[n] = seconds
        print(f"{workloads:>9}  {pairs:>7}  {flows:>7}  {seconds:>7.2f}  {per_pair[n]:>7.2f}  {cpu:>7.2f}")
    ok = True
    if seconds_at[SIZES[-1]] > TARGET_SECONDS:
        print(f"MISSED: N = {SIZES[-1]} took {seconds_at[SIZES[-1]]:.2f} s (target <= {TARGET_SECONDS} s)")
        ok = False
    ratio = per_pair[SIZES[-1]] / per_pair[SIZES[0]]
    if ratio > FLAT_RATIO:
        print(f"MISSED: per-pair time grew {ratio:.2f}x from N = {SIZES[0]} to N = {SIZES[-1]} "
              f"(target <= {FLAT_RATIO}x)")
        ok = False
    if ok:
        print(f"targets met: N = {SIZES[-1]} in {seconds_at[SIZES[-1]]:.2f} s; per-pair ratio "
              f"N={SIZES[-1]}/N={SIZES[0]} = {ratio:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
