"""A synthetic repository for the benchmarks: N workloads over 20 namespaces, M policies of every kind.

Shared by ``model_plan.py`` (the model, in process) and ``plan_command.py`` (the ``flowcheck``
command as a process, on the repository written to a temporary directory by ``write_repository``).

Workloads draw labels from small pools, as real clusters reuse them: ``app`` (40 values), ``tier``
(4), ``team`` (7), the namespace (20). Workload ``i`` has identity ``i % identities``, and identity
``k`` the labels ``app-{k % 40}``, ``tier[k % 4]``, ``team-{k % 7}`` in namespace ``ns-{k % 20}``;
those repeat only after 280 identities (the least common multiple of 40, 4, 7 and 20), so
``identities`` <= 280 gives exactly that many. Without ``identities`` each workload gets the labels
of ``k = i``, the form ``model_plan.py`` always had (280 identities from N = 280 on).

Policies (``policy(k)``) cycle through 8 shapes: NetworkPolicy default deny, namespace+pod
selectors with a named port, ipBlock egress with a port range; CiliumNetworkPolicy HTTP L7 rules,
matchExpressions with DNS rules, entities, CIDR sets; a CiliumClusterwideNetworkPolicy deny rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flowcheck.manifests.documents import SourceDocument
from flowcheck.model.policies import parse_document
from flowcheck.model.policy import PolicySet
from flowcheck.model.topology import Port, Topology, Workload

NAMESPACES = 20  # fixed, so only N varies between runs (policies per namespace stay the same)
MAX_IDENTITIES = 280
PORT_POOL = (Port("http", 8080, "TCP"), Port("metrics", 9090, "TCP"), Port("grpc", 9000, "TCP"),
             Port("dns", 53, "UDP"))
ONE_PORT = (Port("http", 8080, "TCP"),)
_TIERS = ("web", "api", "db", "worker")


def namespaces() -> dict[str, dict[str, str]]:
    return {f"ns-{k}": {"team": f"team-{k % 7}", "env": ("prod", "staging")[k % 2]} for k in range(NAMESPACES)}


def _workloads(n: int, identities: int | None, one_port: bool) -> list[Workload]:
    if identities is not None and not 1 <= identities <= MAX_IDENTITIES:
        raise ValueError(f"identities must be 1..{MAX_IDENTITIES}, got {identities}")
    names = sorted(namespaces())
    out = []
    for i in range(n):
        k = i if identities is None else i % identities
        ports = ONE_PORT if one_port else tuple(PORT_POOL[(i + j) % len(PORT_POOL)] for j in range(1 + i % 3))
        labels = {"app": f"app-{k % 40}", "tier": _TIERS[k % len(_TIERS)], "team": f"team-{k % 7}"}
        out.append(Workload(names[k % len(names)], f"w-{i}", labels, ports, ip=f"10.244.{i // 250}.{i % 250 + 1}"))
    return out


def topology(n: int, *, identities: int | None = None, one_port: bool = False) -> Topology:
    return Topology.build(namespaces(), _workloads(n, identities, one_port))


def policy_set(m: int) -> PolicySet:
    """M policies parsed through the same parser files go through (unvalidated: the model benchmark's input)."""
    notes: list[str] = []
    policies = []
    for k in range(m):
        parsed = parse_document(SourceDocument("<synthetic>", k, None, policy(k)), notes, validate=False)
        assert parsed is not None
        policies.append(parsed)
    return PolicySet(tuple(policies), tuple(notes))


def write_repository(root: Path, n: int, m: int, *, identities: int | None = None) -> tuple[Path, Path]:
    """``root/topology.yaml`` (N workloads, one port each) and ``root/policies/`` (one file per policy)."""
    workloads = [{"name": w.name, "namespace": w.namespace, "labels": dict(w.labels),
                  "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in w.ports], "ip": w.ip}
                 for w in _workloads(n, identities, one_port=True)]
    document = {"namespaces": {name: {"labels": labels} for name, labels in namespaces().items()},
                "workloads": workloads}
    topology_path = root / "topology.yaml"
    topology_path.write_text(yaml.dump(document, Dumper=yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper,
                                       sort_keys=False))
    policies = root / "policies"
    policies.mkdir()
    for k in range(m):
        (policies / f"p-{k:04d}.yaml").write_text(yaml.safe_dump(policy(k), sort_keys=False))
    return topology_path, policies


def policy(k: int) -> dict[str, Any]:
    """The k-th policy, in namespace ``ns-{k % 20}``."""
    ns = f"ns-{k % NAMESPACES}"
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
