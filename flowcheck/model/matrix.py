"""The plan: every workload to every workload, on every port the destination serves.

This is what ``flowcheck plan`` prints and what the suites probe: for each (source, destination,
served port) the model's decision. Self-flows (a workload to itself) are included and decided
``allowed`` -- a pod reaching its own IP never leaves its network namespace (see ``engine``) --
so the matrix is square, like cyclonus' truth tables; a report may hide the diagonal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from flowcheck.model.decision import Decision
from flowcheck.model.engine import ClassDecision, Model, ResolvedEndpoint
from flowcheck.model.flows import Flow, WorkloadEndpoint


@dataclass(frozen=True, slots=True)
class PlannedFlow:
    """One planned flow and the model's decision for it."""

    flow: Flow
    decision: Decision


def decide_matrix(model: Model, *, port: int | None = None, protocol: str | None = None) -> list[PlannedFlow]:
    """Every workload -> every workload on every served port (or only ``port``/``protocol``).

    Ordered by source, destination, then the destination's port order, as in the topology. With
    ``port`` given, the destination must serve it (with ``protocol`` if given); with only
    ``protocol``, every served port of that protocol. Each decision equals ``model.decide(flow)``;
    the endpoints are resolved once, not once per flow. ``iter_matrix`` gives the same one by one.
    """
    return list(iter_matrix(model, port=port, protocol=protocol))


def iter_matrix(model: Model, *, port: int | None = None, protocol: str | None = None) -> Iterator[PlannedFlow]:
    """``decide_matrix`` as it is decided: a caller that writes each flow out never holds N x N of them."""
    for source, destination, served_protocol, served_port, outcome in iter_matrix_classes(
            model, port=port, protocol=protocol):
        yield PlannedFlow(Flow(source.endpoint, destination.endpoint, served_protocol, served_port),
                          outcome.decision(source.name, destination.name))


MatrixCell = tuple[ResolvedEndpoint, ResolvedEndpoint, str, int, ClassDecision]
"""(source, destination, protocol, port, the decision of the flow's classes): one flow of a plan."""


def iter_matrix_classes(model: Model, *, port: int | None = None, protocol: str | None = None) -> Iterator[MatrixCell]:
    """The flows of ``decide_matrix`` in its order, each with its ``ClassDecision`` rather than a ``Decision``.

    ``outcome.decision(source.name, destination.name)`` is the flow's decision; a caller that
    renders many flows can render once per ``ClassDecision`` and fill the names in. Each source
    *class* (``Model.source_classes``) is decided once against every target; the sources of one
    class reuse that row.
    """
    proto = protocol.upper() if protocol else None
    workloads = model.topology.workloads
    endpoints = [model.resolve(WorkloadEndpoint(w.ref)) for w in workloads]
    targets = [(d_idx, endpoints[d_idx], served.protocol, served.port)
               for d_idx, w in enumerate(workloads) for served in w.ports
               if (port is None or served.port == port) and (proto is None or served.protocol == proto)]
    self_decisions = {(p, n): model.self_class_decision(p, n) for _, _, p, n in targets}
    class_decision = model.class_decision
    source_classes = model.source_classes
    rows: dict[int, list[ClassDecision]] = {}
    for s_idx, source in enumerate(endpoints):
        row = rows.get(source_classes[s_idx])
        if row is None:
            row = rows[source_classes[s_idx]] = [class_decision(s_idx, d_idx, served_protocol, served_port)
                                                 for d_idx, _, served_protocol, served_port in targets]
        for (d_idx, destination, served_protocol, served_port), outcome in zip(targets, row, strict=True):
            if d_idx == s_idx:
                outcome = self_decisions[served_protocol, served_port]
            yield source, destination, served_protocol, served_port, outcome
