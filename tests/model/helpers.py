"""Small builders for model tests: topologies in Python, policies from YAML text, one-line decisions."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import yaml

from flowcheck.manifests.documents import SourceDocument
from flowcheck.model.engine import Decision, Model
from flowcheck.model.flows import (
    DnsQuery,
    EntityEndpoint,
    Flow,
    FqdnEndpoint,
    HttpRequest,
    IcmpMessage,
    WorkloadEndpoint,
)
from flowcheck.model.identity import Entity
from flowcheck.model.policies import parse_document
from flowcheck.model.policy import Policy, PolicySet
from flowcheck.model.topology import Port, Topology, Workload
from flowcheck.verdict import Verdict

HTTP = (Port("http", 8080, "TCP"),)


def wl(ref: str, labels: Mapping[str, str] | None = None, ports: tuple[Port, ...] = HTTP,
       sa: str = "default", ip: str | None = None) -> Workload:
    namespace, name = ref.split("/")
    return Workload(namespace, name, dict(labels or {"app": name}), ports, sa, ip)


def topo(*workloads: Workload, namespaces: Mapping[str, Mapping[str, str]] | None = None) -> Topology:
    return Topology.build(dict(namespaces or {}), list(workloads))


def policies(text: str, *, validate: bool = True) -> PolicySet:
    """Policies from multi-document YAML text, through the same parser files go through."""
    notes: list[str] = []
    out: list[Policy] = []
    for index, body in enumerate(d for d in yaml.safe_load_all(text) if d is not None):
        policy = parse_document(SourceDocument("<test>", index, None, body), notes, validate=validate)
        if policy is not None:
            out.append(policy)
    return PolicySet(tuple(out), tuple(notes))


def model(topology: Topology, text: str = "", semantics: str = "cilium") -> Model:
    return Model(topology, policies(text) if text.strip() else PolicySet(), semantics)


def decide(m: Model, src: str, dst: str, port: int | None = 8080, protocol: str = "TCP", *,
           http: HttpRequest | None = None, dns: str | None = None, icmp_type: int | None = None) -> Decision:
    """Decide a flow; ``src``/``dst`` are ``ns/name``, an entity name (``world``, ``host``, ``world@1.2.3.4``)
    or, as destination, ``fqdn:name@ip``."""
    icmp = IcmpMessage(8 if icmp_type is None else icmp_type) if protocol == "ICMP" else None
    flow = Flow(_endpoint(src), _endpoint(dst), protocol, None if protocol == "ICMP" else port, http,
                DnsQuery(dns) if dns else None, icmp)
    return m.decide(flow)


def _endpoint(text: str) -> WorkloadEndpoint | EntityEndpoint | FqdnEndpoint:
    if text.startswith("fqdn:"):
        name, _, ip = text[5:].partition("@")
        return FqdnEndpoint(name, ip or None)
    if "/" in text:
        return WorkloadEndpoint(text)
    name, _, ip = text.partition("@")
    return EntityEndpoint(Entity(name), ip or None)


def verdict(m: Model, src: str, dst: str, port: int | None = 8080, protocol: str = "TCP", *,
            http: HttpRequest | None = None, dns: str | None = None, icmp_type: int | None = None) -> Verdict:
    return decide(m, src, dst, port, protocol, http=http, dns=dns, icmp_type=icmp_type).verdict


def cnp(name: str, spec: str, namespace: str = "default") -> str:
    """A CiliumNetworkPolicy document with ``spec`` (YAML, indented by the caller at 2 spaces)."""
    return (f"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
            f"spec:\n{_indent(spec)}\n---\n")


def ccnp(name: str, spec: str) -> str:
    return (f"apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {{name: {name}}}\n"
            f"spec:\n{_indent(spec)}\n---\n")


def knp(name: str, spec: str, namespace: str = "default") -> str:
    return ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\n"
            f"spec:\n{_indent(spec)}\n---\n")


def _indent(text: str) -> str:
    return textwrap.indent(textwrap.dedent(text).strip("\n"), "  ")
