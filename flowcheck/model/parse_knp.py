"""Kubernetes NetworkPolicy documents -> typed policies, translated as Cilium translates them.

Cilium turns every NetworkPolicy into its own rules (``pkg/k8s/network_policy.go``, summarised in
docs/semantics.md, "NetworkPolicy translation"); doing the same translation here means a NetworkPolicy
and a CiliumNetworkPolicy are evaluated by one engine, and their allows form one union ("Allows are a
union, denies win"):

* the subject is ``podSelector`` in the policy's namespace;
* a peer ``podSelector`` alone stays in the policy's namespace; ``namespaceSelector`` keys become
  namespace-label keys, ``namespaceSelector: {}`` means every namespace; both in one peer = AND,
  separate peers = OR; a non-empty ``namespaceSelector`` peer is marked, because whether it can
  match a reserved identity (world, host, ...) depends on the semantics (see the engine);
* ``from``/``to`` missing or empty = every peer (pods, host and world); ``ports`` missing or empty =
  every port and protocol; a port defaults to TCP; named ports and ``endPort`` are kept;
* ``policyTypes`` default as the API server defaults them: Ingress always, Egress when the policy
  has egress rules -- so an egress-only policy without ``policyTypes`` also isolates ingress.

A direction not listed in ``policyTypes`` is ignored even when the spec has rules for it, as the
NetworkPolicy API defines (the Cilium translation was not checked for that corner).
"""

from __future__ import annotations

from typing import Any

from flowcheck.manifests.documents import SourceDocument
from flowcheck.model import fields as f
from flowcheck.model.identity import NAMESPACE_LABELS_PREFIX
from flowcheck.model.parse_common import in_any_namespace, in_namespace, parse_cidr_block, parse_selector, port_value
from flowcheck.model.policy import (
    Direction,
    Peer,
    Policy,
    PolicyKind,
    PolicyRef,
    PolicySpec,
    PortRule,
    PortSpec,
    Rule,
    SelectorPeer,
)

_SPEC_KEYS = ("podSelector", "policyTypes", "ingress", "egress")
_PEER_KEYS = ("podSelector", "namespaceSelector", "ipBlock")
_PORT_KEYS = ("protocol", "port", "endPort")
_PROTOCOLS = ("TCP", "UDP", "SCTP")


def parse_network_policy(doc: SourceDocument, namespace: str) -> Policy:
    """One NetworkPolicy (already known to be ``networking.k8s.io/v1``) in ``namespace``."""
    fail = doc.error
    name = doc.name
    ref = PolicyRef(PolicyKind.NETWORK_POLICY, namespace, name, doc.path, doc.index)
    if "spec" not in doc.body:
        raise fail("spec", "missing required field")
    spec = f.mapping(doc.body["spec"], "spec", fail)
    f.known_keys(spec, "spec", _SPEC_KEYS, fail)
    if "podSelector" not in spec:
        raise fail("spec.podSelector", "missing required field ({} selects every pod of the namespace)")
    subject = parse_selector(spec["podSelector"], "spec.podSelector", fail, cilium_keys=False)
    subject = subject.with_requirement(in_namespace(namespace))

    types: set[Direction] = set()
    for i, raw in enumerate(f.optional_sequence(spec.get("policyTypes"), "spec.policyTypes", fail)):
        text = f.string(raw, f"spec.policyTypes[{i}]", fail)
        if text not in ("Ingress", "Egress"):
            raise fail(f"spec.policyTypes[{i}]", f"expected Ingress or Egress, got {text!r}")
        types.add(Direction(text.lower()))
    ingress = f.optional_sequence(spec.get("ingress"), "spec.ingress", fail)
    egress = f.optional_sequence(spec.get("egress"), "spec.egress", fail)
    if not types:  # API server defaulting (SetDefaults_NetworkPolicy)
        types = {Direction.INGRESS} | ({Direction.EGRESS} if egress else set())

    rules: list[Rule] = []
    for direction, raw_rules in ((Direction.INGRESS, ingress), (Direction.EGRESS, egress)):
        if direction not in types:
            continue
        section = f"spec.{direction.value}"
        for i, raw_rule in enumerate(raw_rules):
            rules.append(_parse_rule(raw_rule, f"{section}[{i}]", i, direction, ref, namespace, fail))
    directions = frozenset(types)
    return Policy(ref, (PolicySpec(ref, subject, directions, directions, tuple(rules)),))


def _parse_rule(raw: Any, field_: str, index: int, direction: Direction, ref: PolicyRef, namespace: str,
                fail: f.Fail) -> Rule:
    body = f.optional_mapping(raw, field_, fail)
    peers_key = "from" if direction is Direction.INGRESS else "to"
    f.known_keys(body, field_, (peers_key, "ports"), fail)
    peer_list = f.optional_sequence(body.get(peers_key), f.join(field_, peers_key), fail)
    peers = tuple(_parse_peer(p, f"{field_}.{peers_key}[{i}]", namespace, fail) for i, p in enumerate(peer_list))
    port_list = f.optional_sequence(body.get("ports"), f.join(field_, "ports"), fail)
    specs = tuple(_parse_port(p, f"{field_}.ports[{i}]", fail) for i, p in enumerate(port_list))
    return Rule(ref, direction, False, index, peers=peers, wildcard_peers=not peers,
                ports=(PortRule(specs),) if specs else None)


def _parse_peer(raw: Any, field_: str, namespace: str, fail: f.Fail) -> Peer:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, _PEER_KEYS, fail)
    present = [k for k in _PEER_KEYS if body.get(k) is not None]
    if not present:
        raise fail(field_, "a peer needs podSelector, namespaceSelector or ipBlock")
    if "ipBlock" in present:
        if len(present) > 1:
            raise fail(field_, "ipBlock cannot be combined with podSelector or namespaceSelector in one peer")
        block_field = f.join(field_, "ipBlock")
        block = f.mapping(body["ipBlock"], block_field, fail)
        f.known_keys(block, block_field, ("cidr", "except"), fail)
        return parse_cidr_block(block, block_field, fail, ip_block=True)
    texts: list[str] = []
    namespace_selector = False
    pod = parse_selector(body.get("podSelector"), f.join(field_, "podSelector"), fail, cilium_keys=False)
    if "namespaceSelector" in present:
        ns = parse_selector(body["namespaceSelector"], f.join(field_, "namespaceSelector"), fail,
                            cilium_keys=False, key_prefix=NAMESPACE_LABELS_PREFIX)
        texts.append("any namespace" if ns.is_empty else
                     "namespaces " + ns.describe().replace(NAMESPACE_LABELS_PREFIX, ""))
        namespace_selector = not ns.is_empty
        selector = pod
        for req in ns.requirements:
            selector = selector.with_requirement(req)
        if ns.is_empty:
            selector = selector.with_requirement(in_any_namespace())
    else:
        texts.append(f"namespace {namespace}")
        selector = pod.with_requirement(in_namespace(namespace))
    texts.append("all pods" if pod.is_empty else "pods " + pod.describe())
    return SelectorPeer(selector, ", ".join(texts), namespace_selector=namespace_selector)


def _parse_port(raw: Any, field_: str, fail: f.Fail) -> PortSpec:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, _PORT_KEYS, fail)
    protocol = f.string(body.get("protocol", "TCP"), f.join(field_, "protocol"), fail)
    if protocol not in _PROTOCOLS:
        raise fail(f.join(field_, "protocol"), f"expected one of {', '.join(_PROTOCOLS)}, got {protocol!r}")
    number, name = (0, None)
    if body.get("port") is not None:
        number, name = port_value(body["port"], f.join(field_, "port"), fail)
    end_port = None
    if body.get("endPort") is not None:
        end_port = f.integer(body["endPort"], f.join(field_, "endPort"), fail, 1, 65535)
        if name is not None or number == 0:
            raise fail(f.join(field_, "endPort"), "endPort needs a numeric port")
        if end_port < number:
            raise fail(f.join(field_, "endPort"), f"endPort {end_port} is below port {number}")
    return PortSpec(protocol, number, name, end_port)
