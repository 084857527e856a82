"""The plan by identity: each flow decided once per (source identity, destination identity, port).

Cilium decides per security identity, never per pod (``identity``), and a cluster's thousands of
pods share a few hundred identities. ``iter_identity_plan`` gives the plan of ``decide_matrix`` in
that form: one ``IdentityPath`` per source identity, destination identity and served port, with the
workloads it stands for, so its size grows with identities squared, not workloads squared.

Identity alone does not decide a flow exactly. Workloads of one identity can still differ in what
a decision reads: the ports they serve (a named port in an ingress rule -- in any rule under
``--semantics kubernetes`` -- resolves against the destination's own ports; Cilium 1.19 keeps named
ports out of the identity, docs/semantics.md, "Identities and selectors") and, under ``--semantics
kubernetes``, their IP (an ipBlock). The model groups workloads by everything a decision reads --
their *decision class* (``Model.source_classes``/``destination_classes``) -- and decides once per
pair of classes. Where the members of an identity pair fall into classes that are decided
differently, the pair gives several paths, each a rectangle of sources x destinations decided
alike; a workload's flow to itself (allowed, whatever the policies) is a path of its own
(``own``). Every flow of the plan is in exactly one path, with exactly the decision
``Model.decide`` gives it (``IdentityPath.flows``; a property test holds the two equal).

A path's reasons name the identities (``IdentityTable.names``); ``flows()`` fills in the workloads'
names per flow. Explanations (``flowcheck explain``) stay per flow.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowcheck.model.decided_flow import KIND_PREFIX
from flowcheck.model.decision import Decision
from flowcheck.model.engine import ClassDecision, Model
from flowcheck.model.flows import Flow, WorkloadEndpoint
from flowcheck.model.matrix import PlannedFlow
from flowcheck.model.topology import Workload


@dataclass(frozen=True, slots=True)
class IdentityPath:
    """Flows from workloads of one identity to workloads of another (or the same) on one port, decided alike.

    ``source`` and ``destination`` index ``Model.identities``; ``source_name``/``destination_name``
    are their names. The path stands for every flow from a workload of ``sources`` to a workload of
    ``destinations`` on ``protocol``/``port`` -- except a workload to itself, which is in a path
    with ``own`` set, standing for each member's flow to itself only. ``decision`` names the
    identities in its reasons; ``flows()`` gives each flow with its own decision.
    """

    source: int
    destination: int
    source_name: str
    destination_name: str
    protocol: str
    port: int
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    own: bool
    decision: Decision
    outcome: ClassDecision = field(repr=False, compare=False)

    @property
    def flow_count(self) -> int:
        """How many workload flows the path stands for."""
        if self.own:
            return len(self.sources)
        shared = len(set(self.sources) & set(self.destinations))
        return len(self.sources) * len(self.destinations) - shared

    def to_json(self) -> dict[str, Any]:
        """This path in ``flowcheck plan --by identity --format json`` (docs/contracts.md, "The flowcheck command")."""
        return {"from": self.source_name, "to": self.destination_name, "port": self.port, "protocol": self.protocol,
                "verdict": self.decision.verdict.value, "reasons": list(self.decision.reasons),
                "from_workloads": self.sources, "to_workloads": self.destinations, "self": self.own,
                "flows": self.flow_count}

    def flows(self) -> Iterator[PlannedFlow]:
        """Every workload flow of the path, with its decision (the workloads' names in the reasons)."""
        outcome = self.outcome
        if self.own:
            for ref in self.sources:
                endpoint = WorkloadEndpoint(ref)
                yield PlannedFlow(Flow(endpoint, endpoint, self.protocol, self.port), outcome.decision(ref, ref))
            return
        destinations = [WorkloadEndpoint(ref) for ref in self.destinations]
        for source in self.sources:
            endpoint = WorkloadEndpoint(source)
            for destination in destinations:
                if destination.ref != source:
                    yield PlannedFlow(Flow(endpoint, destination, self.protocol, self.port),
                                      outcome.decision(source, destination.ref))


IDENTITY_PLAN_KIND = f"{KIND_PREFIX}plan-by-identity"
IDENTITY_PLAN_FORMAT = 1
"""The version of the ``plan --by identity --format json`` document: its rows are paths, not decided flows,
so it is a kind of its own with its own format (the per-workload plan is ``flowcheck-plan``, format 2)."""


def identity_plan_header(**fields: Any) -> dict[str, Any]:
    """``{"kind": "flowcheck-plan-by-identity", "format": 1, **fields}``: what the by-identity document starts with."""
    return {"kind": IDENTITY_PLAN_KIND, "format": IDENTITY_PLAN_FORMAT, **fields}


def identities_json(model: Model) -> list[dict[str, Any]]:
    """The identities of ``model`` as ``plan --by identity --format json`` lists them, with their workloads."""
    table = model.identities
    first: dict[int, Workload] = {}
    for w_idx, i_idx in enumerate(table.of_workload):
        first.setdefault(i_idx, model.topology.workloads[w_idx])
    return [{"identity": table.names[i], "namespace": first[i].namespace, "labels": dict(first[i].labels),
             "serviceAccount": first[i].service_account, "workloads": table.members[i]}
            for i in range(len(table.identities))]


# Workloads of one identity grouped by decision class: (class, its members as topology indices), in
# order of first appearance; then (class, those indices, their names).
_Groups = list[tuple[int, list[int]]]
_Named = list[tuple[int, tuple[int, ...], tuple[str, ...]]]


def iter_identity_plan(model: Model, *, port: int | None = None,
                       protocol: str | None = None) -> Iterator[IdentityPath]:
    """The plan of ``decide_matrix(model, port=, protocol=)`` by identity, path by path.

    Ordered by source identity, destination identity (both in order of first appearance in the
    topology), then the served ports in the order the destination identity's workloads list them;
    within one (identity, identity, port), the paths decided differently, then the workloads' flows
    to themselves.
    """
    proto = protocol.upper() if protocol else None
    table = model.identities
    workloads = model.topology.workloads
    refs = [w.ref for w in workloads]
    source_groups: list[_Groups] = [[] for _ in table.identities]
    for w_idx, cls in enumerate(model.source_classes):
        _add(source_groups[table.of_workload[w_idx]], cls, w_idx)
    # Per destination identity: per served (protocol, port), its serving members by decision class.
    cells: list[dict[tuple[str, int], _Groups]] = [{} for _ in table.identities]
    for w_idx, (w, cls) in enumerate(zip(workloads, model.destination_classes, strict=True)):
        for served in w.ports:
            if (port is None or served.port == port) and (proto is None or served.protocol == proto):
                _add(cells[table.of_workload[w_idx]].setdefault((served.protocol, served.port), []), cls, w_idx)
    named_sources = [_named(groups, refs) for groups in source_groups]
    named_cells = [{key: _named(groups, refs) for key, groups in targets.items()} for targets in cells]
    for i_src, sources in enumerate(named_sources):
        for i_dst, targets in enumerate(named_cells):
            for (served_protocol, served_port), destinations in targets.items():
                yield from _paths(model, i_src, i_dst, sources, destinations, served_protocol, served_port)


def _add(groups: _Groups, cls: int, w_idx: int) -> None:
    for group_cls, members in groups:
        if group_cls == cls:
            if members[-1] != w_idx:  # a workload listing one port twice (under two names) is one destination
                members.append(w_idx)
            return
    groups.append((cls, [w_idx]))


def _named(groups: _Groups, refs: Sequence[str]) -> _Named:
    return [(cls, tuple(members), tuple(refs[w] for w in members)) for cls, members in groups]


def _paths(model: Model, i_src: int, i_dst: int, sources: _Named, destinations: _Named, protocol: str,
           port: int) -> Iterator[IdentityPath]:
    """The paths of one (source identity, destination identity, port): the classes' decisions, merged where equal."""
    names = model.identities.names
    own_identity = i_src == i_dst
    for from_refs, to_refs, outcome in _blocks(model, sources, destinations, protocol, port):
        if own_identity and len(from_refs) == 1 and to_refs == from_refs:
            continue  # only a workload's flow to itself: in the own path below
        yield IdentityPath(i_src, i_dst, names[i_src], names[i_dst], protocol, port, from_refs, to_refs, False,
                           outcome.decision(names[i_src], names[i_dst]), outcome)
    if own_identity:
        serving = {w for _, members, _ in destinations for w in members}
        members = tuple(ref for _, group, group_refs in sources for w, ref in zip(group, group_refs, strict=True)
                        if w in serving)
        outcome = model.self_class_decision(protocol, port)
        yield IdentityPath(i_src, i_dst, names[i_src], names[i_dst], protocol, port, members, members, True,
                           outcome.decision(names[i_src], names[i_dst]), outcome)


def _blocks(model: Model, sources: _Named, destinations: _Named, protocol: str,
            port: int) -> list[tuple[tuple[str, ...], tuple[str, ...], ClassDecision]]:
    """(sources, destinations, decision) rectangles covering sources x destinations, one decision each."""
    if len(sources) == 1 and len(destinations) == 1:  # one class on each side: the common case
        return [(sources[0][2], destinations[0][2],
                 model.class_decision(sources[0][1][0], destinations[0][1][0], protocol, port))]
    # grid[r][c]: the decision of source class r to destination class c. Columns decided alike for
    # every source class merge, then rows decided alike for every (merged) column: each remaining
    # cell is a rectangle of flows with one decision. Decisions are alike when they give equal
    # decisions whatever the names: the same verdict, grounds and (interned) template.
    grid = [[model.class_decision(rows[0], cols[0], protocol, port) for _, cols, _ in destinations]
            for _, rows, _ in sources]
    column_groups: dict[tuple[object, ...], list[int]] = {}
    for c in range(len(destinations)):
        column_groups.setdefault(tuple(_alike(grid[r][c]) for r in range(len(sources))), []).append(c)
    columns = list(column_groups.values())
    row_groups: dict[tuple[object, ...], list[int]] = {}
    for r in range(len(sources)):
        row_groups.setdefault(tuple(_alike(grid[r][cs[0]]) for cs in columns), []).append(r)
    return [(_merged(sources, rows), _merged(destinations, cs), grid[rows[0]][cs[0]])
            for rows in row_groups.values() for cs in columns]


def _merged(groups: _Named, which: list[int]) -> tuple[str, ...]:
    """The names of the members of ``groups[which]``, in topology order."""
    if len(which) == 1:
        return groups[which[0]][2]
    return tuple(ref for _, ref in sorted(pair for g in which for pair in zip(groups[g][1], groups[g][2], strict=True)))


def _alike(outcome: ClassDecision) -> tuple[object, ...]:
    return (outcome.verdict, id(outcome.template), outcome.grounds)
