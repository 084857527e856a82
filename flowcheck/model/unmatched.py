"""What matches nothing: the silent mistakes in policies that a topology makes visible.

A policy can be valid and still mean nothing in the scenario it is checked against: a policy in a
namespace the topology does not have (a misspelt ``defualt``) selects no pod and is ignored; a
selector that selects no workload, a peer that matches no workload or namespace, a named port no
workload serves -- each opens or closes nothing, and the model would say nothing about it. These
warnings say so, one per finding, naming the policy (its file and document) and what in it matches
nothing. They are data (``MatchWarning``), rendered at the edges: ``plan``, ``explain`` and
``validate --topology`` print them, ``--strict`` turns them into a failure, and the pytest plugin
prints them in its summary (``--flowcheck-strict`` fails the run).

Pure: it reads the model's topology, identities and parsed policies, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flowcheck.model.identity import (
    NAMESPACE_LABEL,
    NAMESPACE_LABELS_PREFIX,
    Entity,
    allocate_identities,
    reserved_identity,
)
from flowcheck.model.policy import Direction, PolicyRef, PolicySet, PolicySpec, PortRule, Rule, SelectorPeer
from flowcheck.model.selectors import K8S_SOURCE, IdentityLabels, LabelSelector
from flowcheck.model.topology import Topology, Workload
from flowcheck.vocabulary import http_method_typo

NAMESPACE_NOT_IN_TOPOLOGY = "namespace-not-in-topology"
SELECTOR_SELECTS_NOTHING = "selector-selects-nothing"
PEER_MATCHES_NOTHING = "peer-matches-nothing"
NAMED_PORT_NOT_SERVED = "named-port-not-served"
HTTP_METHOD_TYPO = "http-method-typo"
_METHOD_ALTERNATIVES = re.compile(r"^\^?\(?([A-Za-z]+(?:\|[A-Za-z]+)*)\)?\$?$")  # GET, GET|POST, ^(GET|PUT)$


@dataclass(frozen=True, slots=True)
class MatchWarning:
    """One finding: ``code`` (stable, for scripts), the policy, and the sentence saying what matches nothing."""

    code: str
    policy: PolicyRef
    message: str

    def describe(self) -> str:
        """``deploy/np.yaml (document 2): NetworkPolicy defualt/x: ...``: where, which policy, what."""
        where = f"{self.policy.path} (document {self.policy.document})" if self.policy.path else "<policies>"
        return f"{where}: {self.policy.describe()}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "kind": self.policy.kind.value, "namespace": self.policy.namespace,
                "name": self.policy.name, "path": self.policy.path, "document": self.policy.document,
                "message": self.message}


def unmatched(topology: Topology, policies: PolicySet) -> list[MatchWarning]:
    """Every finding, policy by policy in the order they were read."""
    table = allocate_identities(topology)
    identities = [identity.labels for identity in table.identities]
    members: list[list[Workload]] = [[] for _ in identities]  # a selector is matched once per identity
    for workload, index in zip(topology.workloads, table.of_workload, strict=True):
        members[index].append(workload)
    reserved = [reserved_identity(entity) for entity in Entity]
    namespaces = {name: _namespace_labels(name, labels) for name, labels in topology.namespaces.items()}
    found: list[MatchWarning] = []
    for policy in policies.policies:
        ref = policy.ref
        if ref.namespace is not None and ref.namespace not in topology.namespaces:
            known = ", ".join(sorted(topology.namespaces)) or "none"
            found.append(MatchWarning(NAMESPACE_NOT_IN_TOPOLOGY, ref, (
                f"namespace {ref.namespace!r} is not in the topology (it has {known}), so this policy selects no "
                "workload and is ignored: a misspelt namespace, or one the topology lacks")))
            continue
        for spec in policy.specs:
            found.extend(_spec_findings(spec, topology, identities, members, reserved, namespaces))
    return found


def _spec_findings(spec: PolicySpec, topology: Topology, identities: Sequence[IdentityLabels],
                   members: Sequence[Sequence[Workload]], reserved: Sequence[IdentityLabels],
                   namespaces: dict[str, IdentityLabels]) -> Iterable[MatchWarning]:
    ref = spec.policy
    selected: list[Workload] | None = None  # None: a host policy (nodeSelector), which selects nodes
    if spec.subject is not None:
        subject = spec.subject
        selected = [w for labels, workloads in zip(identities, members, strict=True) if subject.matches(labels)
                    for w in workloads]
        if not selected:
            yield MatchWarning(SELECTOR_SELECTS_NOTHING, ref, (
                f"its selector {_shown(subject)} selects no workload of the topology, so none of its rules applies"))
    for rule in spec.rules:
        for peer in rule.peers:
            if isinstance(peer, SelectorPeer):
                message = _peer_finding(peer.selector, identities, reserved, namespaces)
                if message:
                    yield MatchWarning(PEER_MATCHES_NOTHING, ref, f"{_rule(rule)}: peer {peer.text} {message}")
        for port_rule in rule.ports or ():
            yield from _method_typos(ref, rule, port_rule)
            for port in port_rule.ports:
                if port.name is None:
                    continue
                # Ingress: the named port is the selected pods'; egress: the peers'.
                candidates = selected if rule.direction is Direction.INGRESS and selected is not None \
                    else list(topology.workloads)
                if not any(p.name == port.name and port.protocol_matches(p.protocol)
                           for w in candidates for p in w.ports):
                    whose = "no workload it selects" if rule.direction is Direction.INGRESS else "no workload"
                    yield MatchWarning(NAMED_PORT_NOT_SERVED, ref, (
                        f"{_rule(rule)}: named port {port.describe()}: {whose} serves a port by that name, so it "
                        "matches nothing"))


def _method_typos(ref: PolicyRef, rule: Rule, port_rule: PortRule) -> Iterable[MatchWarning]:
    """An HTTP rule whose method is a plain name (or names) one slip from a common method (``GTE``): the
    regex is valid, matches no real request, and the rule quietly allows nothing."""
    for http in port_rule.l7.http if port_rule.l7 is not None else ():
        pattern = http.method.pattern if http.method is not None else ""
        plain = _METHOD_ALTERNATIVES.match(pattern)
        for name in plain.group(1).split("|") if plain else ():
            meant = http_method_typo(name)
            if meant is not None:
                yield MatchWarning(HTTP_METHOD_TYPO, ref, (
                    f"{_rule(rule)}: http method {pattern!r}: {name} is not an HTTP method (did you mean {meant}?), "
                    "so no request matches it"))


def _peer_finding(selector: LabelSelector, identities: Sequence[IdentityLabels], reserved: Sequence[IdentityLabels],
                  namespaces: dict[str, IdentityLabels]) -> str:
    """Why a peer selector matches nothing (``matches no namespace ...``), or ``""`` when it matches something."""
    if any(selector.matches(labels) for labels in (*identities, *reserved)):
        return ""
    about_namespace = LabelSelector(tuple(r for r in selector.requirements
                                          if r.key == NAMESPACE_LABEL or r.key.startswith(NAMESPACE_LABELS_PREFIX)))
    if not about_namespace.is_empty and not any(about_namespace.matches(labels) for labels in namespaces.values()):
        return f"matches no namespace of the topology ({_shown(about_namespace)})"
    return "matches no workload of the topology"


def _namespace_labels(name: str, labels: dict[str, str] | Any) -> IdentityLabels:
    """The part of a pod's identity its namespace gives (``docs/semantics.md``, "Identities and selectors")."""
    out = {NAMESPACE_LABEL: (K8S_SOURCE, name)}
    out.update({NAMESPACE_LABELS_PREFIX + key: (K8S_SOURCE, value) for key, value in labels.items()})
    return out


def _rule(rule: Rule) -> str:
    section = rule.direction.value + ("Deny" if rule.deny else "")
    spec = f"{rule.spec_label} " if rule.spec_label else ""
    return f"{spec}{section} rule {rule.index}"


def _shown(selector: LabelSelector) -> str:
    """A selector as users wrote it: without the namespace scoping the parser added."""
    return selector.describe().replace("io.cilium.k8s.namespace.labels.", "namespace label ")
