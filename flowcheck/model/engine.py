"""The decision procedure: what Cilium (or the NetworkPolicy spec) does to one flow, and why.

``Model(topology, policies, semantics).decide(flow) -> Decision``. The procedure is the one
docs/semantics.md describes ("How one side decides" and the sections it points to); this module is
the small facade that composes its parts:

* ``identity`` -- the identities Cilium allocates (``Model.identities``, ``Model.identity_of``,
  ``Model.sharing_identity``);
* ``peer_classes`` -- which policy peers each workload, entity, world address or FQDN answer
  matches (selectors evaluated once per identity, classes interned);
* ``port_match`` -- ports, ranges, ICMP types and named ports;
* ``side_eval`` / ``side_verdict`` -- one side's L3/L4 facts (memoised) and its verdict: egress at
  a pod source, ingress at a pod destination ("Both sides enforce"); world, host and node sources
  have no egress side, and the host always reaches the pods on its node (allow-localhost);
* ``l7`` -- HTTP and DNS rules; ``fqdn`` -- what Cilium's DNS proxy learns for ``toFQDNs``;
* ``decision`` -- the result as data, ``reasons`` -- its sentences.

The flow's verdict is the most severe of its sides' (dropped > unknown > l7-denied > allowed); the
reasons list the deciding side's first, and a side no policy selects after those naming a rule. A
pod reaching its own IP never leaves its network namespace (the kernel delivers it over
loopback), so self-flows are allowed without consulting policy. The model decides connection
*initiations*: replies of an allowed connection are allowed, and B -> A is judged on its own.

Public entry points (typed, for the commands that build on the model):

* ``Model.decide(flow)`` -- a ``Decision``: verdict, reasons, and the same as data (deciding
  side(s), policies and rules, what passes the L7 proxy); see ``flowcheck.model.decision``;
* ``Model.resolve(endpoint)`` and ``Model.decide_resolved(flow, source, destination)`` -- decide a
  flow whose endpoints were resolved once (``ResolvedEndpoint``), for callers deciding many flows
  between the same endpoints (``plan`` does);
* ``Model.identities`` (``IdentityTable``), ``Model.identity_of(ref)``,
  ``Model.sharing_identity(ref)`` -- the identity of a workload as Cilium allocates it and the
  workloads sharing it;
* ``Model.source_classes``, ``Model.destination_classes`` and ``Model.class_decision`` -- the
  *decision classes*: workloads grouped by everything an L3/L4 decision reads of them -- their
  identity's policies and peers, and what an identity leaves out: the ports a destination serves
  (named ports) and, under ``--semantics kubernetes``, the IP (ipBlocks) -- and the one decision
  (``ClassDecision``, names left open) of a pair of classes on a port. ``matrix`` and
  ``identity_plan`` build on them.

Speed: each distinct selector requirement is evaluated once per identity (``selector_index``); a
side's L3/L4 facts are memoised on (the set of policies selecting the pod, the peer's class,
protocol, port, port signature), and its verdict too (equal verdicts interned). A
workload-to-workload L3/L4 decision is memoised per pair of decision classes, and its sentences are
rendered once per distinct decision with the names left open (``_Template``, private) and filled in
per flow -- so planning N x N flows evaluates and renders each distinct situation once, and the
decisions share their data.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowcheck.model.cidr import decide_block
from flowcheck.model.decision import Decision, Grounds, Reason, ReasonKind
from flowcheck.model.flows import CidrEndpoint, Endpoint, EntityEndpoint, Flow, WorkloadEndpoint
from flowcheck.model.fqdn import FqdnReasoner
from flowcheck.model.identity import Entity, Identity, allocate_identities
from flowcheck.model.peer_classes import PeerIndex
from flowcheck.model.policy import Direction, FqdnPeer, PolicySet, Tri
from flowcheck.model.port_match import PortMatcher
from flowcheck.model.reasons import render_reason, render_reasons
from flowcheck.model.selector_index import SelectorIndex
from flowcheck.model.semantics import SEMANTICS, Semantics, SemanticsError, parse_semantics
from flowcheck.model.side_eval import SideEval, SideEvaluator, SideKey
from flowcheck.model.side_verdict import SEVERITY, Part, judge_localhost, judge_side
from flowcheck.model.topology import Topology
from flowcheck.verdict import Verdict

__all__ = ["SEMANTICS", "Decision", "Model", "ResolvedEndpoint", "Semantics", "SemanticsError"]

# Stand-ins for the names in a ``_Template`` (never in a name: workload names are DNS labels).
_SOURCE = "\x00src\x00"
_DESTINATION = "\x00dst\x00"
_SELF_FLOW = Reason(ReasonKind.SELF_FLOW)
_SELF_FLOW_GROUNDS = Grounds((_SELF_FLOW,))
_NOT_A_POD_GROUNDS = Grounds((Reason(ReasonKind.NOT_A_POD),))
_FlowKey = tuple[SideKey | None, SideKey | None, bool, bool]
_PairKey = tuple[int, int, str, int | None, int | None]


@dataclass(frozen=True, slots=True)
class ResolvedEndpoint:
    """An endpoint of a flow, resolved against the model's topology by ``Model.resolve``.

    ``workload`` is the index of the workload in ``Model.topology.workloads``, or None for an
    entity or FQDN endpoint; ``name`` is how reasons name the endpoint (``endpoint.describe()``).
    """

    endpoint: Endpoint
    workload: int | None
    name: str


class _Template:
    """A decision's sentences rendered with private stand-ins for the source and destination names.

    Interned by text, so decisions that read alike share one. The names are filled in per flow, the
    source half once per run of flows from one source (a plan decides source by source).
    """

    __slots__ = ("_half", "_source", "_texts")

    def __init__(self, texts: tuple[str, ...]) -> None:
        self._texts = texts
        self._source: str | None = None
        self._half = texts

    def fill(self, source: str, destination: str) -> tuple[str, ...]:
        if source != self._source:
            self._source = source
            self._half = tuple([t.replace(_SOURCE, source) for t in self._texts])
        half = self._half
        if len(half) == 1:  # most decisions give one reason
            return (half[0].replace(_DESTINATION, destination),)
        return tuple([t.replace(_DESTINATION, destination) for t in half])


@dataclass(frozen=True, slots=True)
class ClassDecision:
    """An L3/L4 decision before its names are filled in: shared by every flow with the same facts.

    ``Model.class_decision`` gives the one of a (source class, destination class, protocol, port);
    ``decision(source, destination)`` is it for one flow, with the names in its reasons.
    """

    verdict: Verdict
    grounds: Grounds
    template: _Template

    def decision(self, source: str, destination: str) -> Decision:
        """This decision for a flow from ``source`` to ``destination`` (the names its reasons use)."""
        return Decision(self.verdict, self.template.fill(source, destination), self.grounds)


class Model:
    """Topology + policies -> ``decide(flow)``. Build once, ask many times (construction indexes)."""

    def __init__(self, topology: Topology, policies: PolicySet, semantics: str = "cilium") -> None:
        self.semantics: Semantics = parse_semantics(semantics)
        self.topology = topology
        self.policies = policies
        self.identities = allocate_identities(topology)
        specs = policies.specs
        self._index = {w.ref: i for i, w in enumerate(topology.workloads)}
        selected = SelectorIndex(self.identities.identities)
        self._peers = PeerIndex(specs, self.identities, topology, self.semantics, selected)
        self._ports = PortMatcher(topology, self.semantics)
        self._sides = SideEvaluator(specs, self.identities, self._peers, self._ports, selected)
        self._fqdn = FqdnReasoner(topology)
        host_policies = tuple(s.policy for s in specs if s.subject is None)
        self._host_part = (Part(Verdict.UNKNOWN, (Reason(ReasonKind.HOST_POLICY, policies=host_policies),))
                           if host_policies else None)
        # Everything a workload contributes to a pair's decision, as source and as destination,
        # interned to small ints so the pair key is flat and cheap to hash.
        ingress_sets, egress_sets = self._sides.subject_set
        workload_class = self._peers.workload_class
        signature = self._ports.workload_signature
        as_source: dict[tuple[int, int], int] = {}
        as_destination: dict[tuple[int, int, int], int] = {}
        count = len(topology.workloads)
        self._as_source = tuple([as_source.setdefault((egress_sets[i], workload_class[i]), len(as_source))
                                 for i in range(count)])
        self._as_destination = tuple([as_destination.setdefault((ingress_sets[i], workload_class[i], signature[i]),
                                                                len(as_destination)) for i in range(count)])
        # L3/L4 caches: a side's part per side key (equal parts interned); a part's sentences per
        # transport; an outcome per pair key, per flow key and per transport and parts; a template per text.
        self._part_memo: dict[tuple[SideKey, bool], Part] = {}
        self._interned_parts: dict[Part, Part] = {}
        self._part_texts: dict[tuple[str, int], tuple[str, ...]] = {}
        self._pair_memo: dict[_PairKey, ClassDecision] = {}
        self._flow_memo: dict[_FlowKey, ClassDecision] = {}
        self._outcomes: dict[tuple[str | int, ...], ClassDecision] = {}
        self._templates: dict[tuple[str, ...], _Template] = {}

    # --- public API -----------------------------------------------------------------------------

    def decide(self, flow: Flow) -> Decision:
        """The verdict for ``flow`` with its reasons (``UnknownWorkloadError`` for a bad reference)."""
        if isinstance(flow.source, CidrEndpoint) or isinstance(flow.destination, CidrEndpoint):
            return decide_block(self, flow)  # a whole block: decided address by address where policy cuts it
        return self.decide_resolved(flow, self.resolve(flow.source), self.resolve(flow.destination))

    def resolve(self, endpoint: Endpoint) -> ResolvedEndpoint:
        """``endpoint`` resolved against the topology (``UnknownWorkloadError`` names the known workloads)."""
        if isinstance(endpoint, WorkloadEndpoint):
            return ResolvedEndpoint(endpoint, self._workload(endpoint.ref), endpoint.describe())
        return ResolvedEndpoint(endpoint, None, endpoint.describe())

    def decide_resolved(self, flow: Flow, source: ResolvedEndpoint, destination: ResolvedEndpoint) -> Decision:
        """``decide(flow)`` for a flow whose endpoints this model resolved (``source``/``destination``)."""
        if flow.source is not source.endpoint or flow.destination is not destination.endpoint:
            _check_resolved(flow, source, destination)
        src, dst = source.workload, destination.workload
        if flow.http is None and flow.dns is None and src is not None and dst is not None and src != dst:
            # Workload -> workload at L3/L4 (all of a plan): one outcome per pair of decision classes.
            pair_key = (self._as_source[src], self._as_destination[dst], flow.protocol, flow.port,
                        flow.icmp.type if flow.icmp else None)
            outcome = self._pair_memo.get(pair_key)
            if outcome is None:
                outcome = self._pair_memo[pair_key] = self._outcome(flow, *self._flow_key(flow, src, dst))
        elif src is not None and src == dst:
            return Decision(Verdict.ALLOWED, (render_reason(_SELF_FLOW, flow),), _SELF_FLOW_GROUNDS)
        elif flow.http is not None or flow.dns is not None:
            verdict, grounds = self._judge(self._parts(flow, *self._flow_key(flow, src, dst)))
            return Decision(verdict, render_reasons(grounds.basis, flow), grounds)
        else:
            flow_key = self._flow_key(flow, src, dst)
            outcome = self._flow_memo.get(flow_key)
            if outcome is None:
                outcome = self._flow_memo[flow_key] = self._outcome(flow, *flow_key)
        return Decision(outcome.verdict, outcome.template.fill(source.name, destination.name), outcome.grounds)

    def identity_of(self, ref: str) -> Identity:
        """The identity of workload ``ref`` as Cilium allocates it (``UnknownWorkloadError`` for an unknown one)."""
        return self.identities.identities[self.identities.of_workload[self._workload(ref)]]

    def sharing_identity(self, ref: str) -> tuple[str, ...]:
        """Every workload with ``ref``'s identity, ``ref`` included, in topology order."""
        return self.identities.members[self.identities.of_workload[self._workload(ref)]]

    # --- decision classes -----------------------------------------------------------------------

    @property
    def source_classes(self) -> tuple[int, ...]:
        """Per workload (topology order), its decision class as the source of a flow.

        Workloads of one class contribute the same to every L3/L4 decision of a flow they start:
        the policies selecting them for egress and the peers of every rule they match (selectors
        through their identity; ipBlocks through their IP under ``--semantics kubernetes``).
        """
        return self._as_source

    @property
    def destination_classes(self) -> tuple[int, ...]:
        """Per workload (topology order), its decision class as the destination of a flow.

        As ``source_classes``, for ingress, plus the ports the workload serves (what a named port
        in an ingress rule -- or any rule under ``--semantics kubernetes`` -- resolves against).
        """
        return self._as_destination

    def class_decision(self, source: int, destination: int, protocol: str, port: int) -> ClassDecision:
        """The L3/L4 decision of every flow on ``protocol``/``port`` from a workload of the class of the
        ``source``-th workload to one of the class of the ``destination``-th (indices into the
        topology's workloads), decided once per pair of classes. A workload's flow to itself is
        not among them (``self_class_decision``)."""
        pair_key = (self._as_source[source], self._as_destination[destination], protocol, port, None)
        outcome = self._pair_memo.get(pair_key)
        if outcome is None:
            workloads = self.topology.workloads
            flow = Flow(WorkloadEndpoint(workloads[source].ref), WorkloadEndpoint(workloads[destination].ref),
                        protocol, port)
            outcome = self._pair_memo[pair_key] = self._outcome(flow, *self._flow_key(flow, source, destination))
        return outcome

    def self_class_decision(self, protocol: str, port: int) -> ClassDecision:
        """The decision of a workload's flow to itself (allowed: it never leaves the pod's network namespace)."""
        flow = Flow(WorkloadEndpoint(_SOURCE), WorkloadEndpoint(_SOURCE), protocol, port)
        texts = (render_reason(_SELF_FLOW, flow, source=_SOURCE, destination=_DESTINATION),)
        template = self._templates.get(texts)
        if template is None:
            template = self._templates[texts] = _Template(texts)
        return ClassDecision(Verdict.ALLOWED, _SELF_FLOW_GROUNDS, template)

    # --- composing the sides --------------------------------------------------------------------

    def _workload(self, ref: str) -> int:
        self.topology.workload(ref)  # raises UnknownWorkloadError naming the known ones
        return self._index[ref]

    def _flow_key(self, flow: Flow, src: int | None, dst: int | None) -> _FlowKey:
        ekey = self._side_key(Direction.EGRESS, src, flow.destination, dst, flow) if src is not None else None
        ikey = self._side_key(Direction.INGRESS, dst, flow.source, src, flow) if dst is not None else None
        localhost = isinstance(flow.source, EntityEndpoint) and flow.source.entity is Entity.HOST
        touches_host = self._host_part is not None and any(
            isinstance(ep, EntityEndpoint) and ep.entity in (Entity.HOST, Entity.REMOTE_NODE)
            for ep in (flow.source, flow.destination))
        return ekey, ikey, localhost, touches_host

    def _parts(self, flow: Flow, ekey: SideKey | None, ikey: SideKey | None, localhost: bool,
               touches_host: bool) -> list[Part]:
        """The parts of a flow's decision: egress at the source, ingress at the destination, host policies."""
        parts: list[Part] = []
        if ekey is not None:
            parts.append(self._side(ekey, flow, localhost=False))
        if ikey is not None:
            parts.append(self._side(ikey, flow, localhost=localhost))
        if touches_host and self._host_part is not None:
            parts.append(self._host_part)
        return parts

    @staticmethod
    def _judge(parts: list[Part]) -> tuple[Verdict, Grounds]:
        """The most severe part's verdict, with the reasons of the deciding parts first."""
        if not parts:
            return Verdict.ALLOWED, _NOT_A_POD_GROUNDS
        verdict = max((p.verdict for p in parts), key=SEVERITY.__getitem__)
        return verdict, Grounds(tuple(r for p in _ordered(parts) for r in p.reasons),
                                tuple(p.side for p in parts if p.side is not None))

    def _outcome(self, flow: Flow, ekey: SideKey | None, ikey: SideKey | None, localhost: bool,
                 touches_host: bool) -> ClassDecision:
        """An L3/L4 decision with its template; flows whose parts are the same objects share one."""
        parts = self._parts(flow, ekey, ikey, localhost, touches_host)
        transport = flow.transport()
        by_parts: tuple[str | int, ...] = (transport, *map(id, parts))  # parts are interned and kept: stable ids
        found = self._outcomes.get(by_parts)
        if found is not None:
            return found
        verdict, grounds = self._judge(parts)
        if parts:
            texts = tuple(t for p in _ordered(parts) for t in self._texts(p, flow))
        else:
            texts = tuple(render_reason(r, flow, source=_SOURCE, destination=_DESTINATION) for r in grounds.basis)
        template = self._templates.get(texts)
        if template is None:
            template = self._templates[texts] = _Template(texts)
        outcome = self._outcomes[by_parts] = ClassDecision(verdict, grounds, template)
        return outcome

    def _texts(self, part: Part, flow: Flow) -> tuple[str, ...]:
        """A memoised part's sentences with stand-in names (``flow`` has the part's transport)."""
        key = (flow.transport(), id(part))
        found = self._part_texts.get(key)
        if found is None:
            found = self._part_texts[key] = tuple(
                render_reason(r, flow, source=_SOURCE, destination=_DESTINATION) for r in part.reasons)
        return found

    def _verdict(self, flow: Flow, src: int, dst: int) -> Verdict:
        return self._judge(self._parts(flow, *self._flow_key(flow, src, dst)))[0]

    # --- one side -------------------------------------------------------------------------------

    def _side(self, key: SideKey, flow: Flow, *, localhost: bool) -> Part:
        """One side's part of the decision; at L3/L4 it depends on the key alone, so it is memoised."""
        if flow.http is not None or flow.dns is not None:
            ev = self._sides.evaluate(key)
            return judge_localhost(ev) if localhost else judge_side(ev, flow)
        part = self._part_memo.get((key, localhost))
        if part is None:
            ev = self._sides.evaluate(key)
            part = judge_localhost(ev) if localhost else judge_side(ev, flow)
            # Parts are name-free and transport-free: many side keys give equal parts, and sharing
            # them lets equal decisions share their outcome, grounds and rendering.
            part = self._part_memo[(key, localhost)] = self._interned_parts.setdefault(part, part)
        return part

    def _side_key(self, direction: Direction, local: int, peer: Endpoint, peer_idx: int | None,
                  flow: Flow) -> SideKey:
        """Everything one side's L3/L4 evaluation depends on, as a flat, cheaply hashed tuple."""
        pclass = (self._peers.workload_class[peer_idx] if peer_idx is not None
                  else self._peers.endpoint_class(peer, local, direction, _DnsQuestions(self)))
        destination = local if direction is Direction.INGRESS else peer_idx
        return self._sides.key(direction, local, pclass, flow.protocol, flow.port,
                               flow.icmp.type if flow.icmp else None, destination)

    def _workload_side(self, direction: Direction, local: int, peer: int, flow: Flow) -> SideEval:
        """The side of workload ``local`` for a flow with workload ``peer`` (DNS lookups, for ``fqdn``)."""
        peer_endpoint = flow.destination if direction is Direction.EGRESS else flow.source
        return self._sides.evaluate(self._side_key(direction, local, peer_endpoint, peer, flow))


class _DnsQuestions:
    """The FQDN reasoning as the peer classes ask it, with the model answering its lookups.

    Made per question, never stored: the reasoner holds no reference back to the model, so a model
    nobody uses is freed at once rather than by the cycle collector.
    """

    __slots__ = ("_model",)

    def __init__(self, model: Model) -> None:
        self._model = model

    def learnt(self, local: int, name: str) -> tuple[Tri, str]:
        return self._model._fqdn.learnt(local, name, self)

    def unnamed(self, local: int, peer: FqdnPeer, endpoint: Endpoint) -> str:
        return self._model._fqdn.unnamed(local, peer, endpoint, self)

    def side(self, direction: Direction, local: int, peer: int, flow: Flow) -> SideEval:
        return self._model._workload_side(direction, local, peer, flow)

    def verdict(self, flow: Flow, source: int, destination: int) -> Verdict:
        return self._model._verdict(flow, source, destination)


def _check_resolved(flow: Flow, source: ResolvedEndpoint, destination: ResolvedEndpoint) -> None:
    if flow.source != source.endpoint or flow.destination != destination.endpoint:
        raise ValueError(f"{flow.describe()}: the resolved endpoints are not the flow's "
                         f"({source.endpoint.describe()} -> {destination.endpoint.describe()})")


def _ordered(parts: list[Part]) -> list[Part]:
    """The parts whose verdict is the flow's first; a side no policy selects after those naming a rule."""
    return sorted(parts, key=lambda p: (-SEVERITY[p.verdict], p.unselected))
