"""Which policy peers an endpoint matches: its *peer class*, computed once and shared.

Every peer of every rule (a selector, an entity, a CIDR, an FQDN, a feature the model does not
evaluate) gets a global number. An endpoint's peer class says which of them certainly match it
(``yes``), which may (``maybe``, each with a ``Doubt``: what the model lacks to tell), plus notes
for a drop. Selectors are evaluated once per *identity* (``IdentityTable``), not per workload, and
classes are interned: workloads -- and world addresses, hosts, FQDN answers -- that match the same
peers share one small integer, which is what makes a side's evaluation memoisable.

The matching follows docs/semantics.md: "Identities and selectors", "Peers" (entities, CIDR rules
that never select cluster endpoints, toFQDNs peers fed only by DNS answers that passed Cilium's
proxy) and "Where Cilium and the NetworkPolicy specification differ" (ipBlock selecting pod IPs,
and a namespaceSelector that may match reserved identities, under ``--semantics kubernetes`` vs
``cilium``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flowcheck.model.decision import ReasonKind
from flowcheck.model.flows import CidrEndpoint, Endpoint, EntityEndpoint, FqdnEndpoint, WorkloadEndpoint
from flowcheck.model.identity import (
    Entity,
    IdentityTable,
    entity_selects_entity,
    entity_selects_pod,
    reserved_identity,
)
from flowcheck.model.policy import (
    CidrPeer,
    Direction,
    EntityPeer,
    FqdnPeer,
    Peer,
    PolicySpec,
    SelectorPeer,
    Tri,
    UnsupportedPeer,
)
from flowcheck.model.selector_index import SelectorIndex
from flowcheck.model.semantics import Semantics
from flowcheck.model.topology import Topology


@dataclass(frozen=True, slots=True)
class Doubt:
    """Why a rule *may* match: the kind of gap (a feature not evaluated, a missing fact, undocumented
    behaviour) and the sentence saying it."""

    kind: ReasonKind
    why: str


@dataclass(frozen=True, slots=True)
class PeerClass:
    """Which peers (by number) an endpoint definitely matches, which it may match (with why), plus notes.

    ``notes`` explain a drop (a toFQDNs peer that names the destination but never learns its IPs).
    ``idle`` are peers that would cover the endpoint but do not select it (a ``toFQDNs`` rule and a
    world address given without a name), with why: a drop by a rule with such a peer and a matching
    port says so.
    """

    yes: frozenset[int]
    maybe: tuple[tuple[int, Doubt], ...] = ()
    notes: tuple[str, ...] = ()
    idle: tuple[tuple[int, str], ...] = ()


class FqdnKnowledge(Protocol):
    """What the DNS proxy learns (``flowcheck.model.fqdn``): peer classes of FQDN destinations need it."""

    def learnt(self, local: int, name: str) -> tuple[Tri, str]: ...

    def unnamed(self, local: int, peer: FqdnPeer, endpoint: Endpoint) -> str: ...


class PeerIndex:
    """The numbered peers of a policy set and the interned peer classes of a topology's endpoints."""

    def __init__(self, specs: tuple[PolicySpec, ...], identities: IdentityTable, topology: Topology,
                 semantics: Semantics, selected: SelectorIndex) -> None:
        self.semantics = semantics
        self.peers: list[Peer] = []
        self.rule_peers: dict[int, tuple[int, ...]] = {}  # id(rule) -> its peers' numbers
        for spec in specs:
            for rule in spec.rules:
                ids = []
                for peer in rule.peers:
                    ids.append(len(self.peers))
                    self.peers.append(peer)
                self.rule_peers[id(rule)] = tuple(ids)
        self.has_fqdn_peers = any(isinstance(p, FqdnPeer) for p in self.peers)
        self.classes: list[PeerClass] = []
        self._class_ids: dict[PeerClass, int] = {}
        self._endpoint_classes: dict[tuple[Endpoint, int], int] = {}
        self.workload_class = self._workload_classes(identities, topology, selected)

    def intern(self, pclass: PeerClass) -> int:
        found = self._class_ids.get(pclass)
        if found is None:
            found = len(self.classes)
            self._class_ids[pclass] = found
            self.classes.append(pclass)
        return found

    def _workload_classes(self, identities: IdentityTable, topology: Topology, selected: SelectorIndex) -> list[int]:
        """Each workload's class: selectors once per identity; an ipBlock (``kubernetes`` only) per pod IP."""
        identity_yes: list[set[int]] = [set() for _ in identities.identities]
        ip_peers: list[int] = []
        maybe_all: list[tuple[int, Doubt]] = []
        for p_idx, peer in enumerate(self.peers):
            if isinstance(peer, SelectorPeer):
                for i_idx in selected.matching(peer.selector):
                    identity_yes[i_idx].add(p_idx)
            elif isinstance(peer, EntityPeer):
                if entity_selects_pod(peer.entity):
                    for s in identity_yes:
                        s.add(p_idx)
            elif isinstance(peer, CidrPeer):
                if peer.ip_block and self.semantics == "kubernetes":
                    ip_peers.append(p_idx)
            elif isinstance(peer, UnsupportedPeer):
                maybe_all.append((p_idx, Doubt(ReasonKind.UNKNOWN_FEATURE, f"{peer.feature} is not modelled")))
        classes: list[int] = []
        for w_idx, w in enumerate(topology.workloads):
            yes = set(identity_yes[identities.of_workload[w_idx]])
            maybe = list(maybe_all)
            for p_idx in ip_peers:
                cidr = self.peers[p_idx]
                assert isinstance(cidr, CidrPeer)
                if w.ip is None:
                    maybe.append((p_idx, Doubt(ReasonKind.MISSING_FACT, f"ipBlock {cidr.describe()} may match "
                                                                        f"{w.ref}'s pod IP, but the topology gives "
                                                                        "it no ip")))
                elif cidr.contains(w.ip):
                    yes.add(p_idx)
            classes.append(self.intern(PeerClass(frozenset(yes), tuple(maybe))))
        return classes

    def endpoint_class(self, endpoint: Endpoint, local: int, direction: Direction, fqdn: FqdnKnowledge) -> int:
        """The peer class of a non-workload endpoint, seen from workload ``local``.

        toFQDNs peers depend on the local pod's DNS lookups: for a ``{fqdn, ip}`` endpoint, and, on
        egress, for the note on a world address a toFQDNs rule does not select.
        """
        if isinstance(endpoint, CidrEndpoint):  # a block is decided address by address (``flowcheck.model.cidr``)
            raise ValueError(f"{endpoint.describe()}: a block has no peer class of its own")
        learner = (local if direction is Direction.EGRESS and self.has_fqdn_peers
                   and isinstance(endpoint, EntityEndpoint) and endpoint.entity is Entity.WORLD else None)
        key = (endpoint, local if isinstance(endpoint, FqdnEndpoint) or learner is not None else -1)
        found = self._endpoint_classes.get(key)
        if found is not None:
            return found
        yes: set[int] = set()
        maybe: list[tuple[int, Doubt]] = []
        notes: list[str] = []
        idle: list[tuple[int, str]] = []
        entity = endpoint.entity if isinstance(endpoint, EntityEndpoint) else Entity.WORLD
        labels = reserved_identity(entity)
        ip = endpoint.ip if not isinstance(endpoint, WorkloadEndpoint) else None
        for p_idx, peer in enumerate(self.peers):
            if isinstance(peer, SelectorPeer):
                if peer.selector.matches(labels):
                    if not peer.namespace_selector:
                        yes.add(p_idx)
                    elif self.semantics == "cilium":
                        maybe.append((p_idx, _namespace_selector_doubt(peer, endpoint, entity)))
                    # under the NetworkPolicy API a namespaceSelector selects pods only
            elif isinstance(peer, EntityPeer):
                if entity is Entity.KUBE_APISERVER and peer.entity in (Entity.HOST, Entity.REMOTE_NODE):
                    maybe.append((p_idx, Doubt(ReasonKind.MISSING_FACT,
                                               f"entity {peer.entity.value} matches the API server only if it runs "
                                               "on that node; the model does not know where it runs")))
                elif entity_selects_entity(peer.entity, entity):
                    yes.add(p_idx)
            elif isinstance(peer, CidrPeer):
                tri, doubt = self._cidr_match(peer, entity, ip, endpoint)
                if tri is Tri.YES:
                    yes.add(p_idx)
                elif doubt is not None:
                    maybe.append((p_idx, doubt))
            elif isinstance(peer, FqdnPeer):
                if isinstance(endpoint, FqdnEndpoint):
                    if peer.matches(endpoint.fqdn):
                        tri, why = fqdn.learnt(local, endpoint.fqdn)
                        if tri is Tri.YES:
                            yes.add(p_idx)
                        elif tri is Tri.MAYBE:
                            maybe.append((p_idx, Doubt(ReasonKind.MISSING_FACT, why)))
                        else:
                            notes.append(f"toFQDNs {peer.text} names {endpoint.fqdn} but selects nothing: {why}")
                elif learner is not None:
                    idle.append((p_idx, fqdn.unnamed(learner, peer, endpoint)))
            else:
                maybe.append((p_idx, Doubt(ReasonKind.UNKNOWN_FEATURE, f"{peer.feature} is not modelled")))
        found = self.intern(PeerClass(frozenset(yes), tuple(maybe), tuple(dict.fromkeys(notes)), tuple(idle)))
        self._endpoint_classes[key] = found
        return found

    def _cidr_match(self, peer: CidrPeer, entity: Entity, ip: str | None,
                    endpoint: Endpoint) -> tuple[Tri, Doubt | None]:
        """CIDR rules select only addresses outside the cluster; an ipBlock also nodes under ``kubernetes``."""
        if entity is Entity.WORLD or (peer.ip_block and self.semantics == "kubernetes"
                                      and entity in (Entity.HOST, Entity.REMOTE_NODE)):
            if ip is None:
                return Tri.MAYBE, Doubt(ReasonKind.MISSING_FACT, f"CIDR {peer.describe()} needs "
                                                                 f"{endpoint.describe()}'s IP, which the flow does "
                                                                 "not give")
            return (Tri.YES, None) if peer.contains(ip) else (Tri.NO, None)
        if entity is Entity.KUBE_APISERVER:
            return Tri.MAYBE, Doubt(ReasonKind.MISSING_FACT, f"CIDR {peer.describe()} matches the API server only "
                                                             "when it runs outside the cluster; the model does not "
                                                             "know")
        return Tri.NO, None


def _namespace_selector_doubt(peer: SelectorPeer, endpoint: Endpoint, entity: Entity) -> Doubt:
    """Why a NetworkPolicy namespaceSelector peer may select a reserved identity under Cilium."""
    return Doubt(ReasonKind.UNDOCUMENTED, (
        f"peer {peer.text} may select {endpoint.describe()}: Cilium rewrites namespaceSelector keys to "
        f"io.cilium.k8s.namespace.labels.*, which the reserved identity reserved:{entity.value} lacks, so its "
        "NotIn/DoesNotExist requirements hold for it; Cilium's documentation does not say whether it also "
        "limits the peer to pods, so the model cannot tell (the NetworkPolicy API selects pods only: "
        "see --semantics kubernetes)"))
