"""The plan: every workload to every workload, on every port the destination serves.

This is what ``flowcheck plan`` prints and what the suites probe: for each (source, destination,
served port) the model's decision. Self-flows (a workload to itself) are included and decided
``allowed`` -- a pod reaching its own IP never leaves its network namespace (see ``engine``) --
so the matrix is square, like cyclonus' truth tables; a report may hide the diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowcheck.model.engine import DESTINATION_PLACEHOLDER, SOURCE_PLACEHOLDER, Decision, Model
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
    this loop only reuses cached reason templates, filling in the source name once per source.
    """
    proto = protocol.upper() if protocol else None
    workloads = model.topology.workloads
    endpoints = [WorkloadEndpoint(w.ref) for w in workloads]
    targets = [(d_idx, endpoints[d_idx], w.ref, served.protocol, served.port)
               for d_idx, w in enumerate(workloads) for served in w.ports
               if (port is None or served.port == port) and (proto is None or served.protocol == proto)]
    out: list[PlannedFlow] = []
    append = out.append
    templates_of = model.pair_templates
    for s_idx, source in enumerate(endpoints):
        src_name = source.ref
        half: dict[tuple[str, ...], tuple[str, ...]] = {}  # templates -> with the source name filled in
        for d_idx, dest, dst_name, served_protocol, served_port in targets:
            flow = Flow(source, dest, served_protocol, served_port)
            if d_idx == s_idx:
                append(PlannedFlow(flow, model.decide(flow)))
                continue
            verdict, templates = templates_of(flow, s_idx, d_idx)
            filled = half.get(templates)
            if filled is None:
                filled = half[templates] = tuple(t.replace(SOURCE_PLACEHOLDER, src_name) for t in templates)
            append(PlannedFlow(flow, Decision(verdict, tuple(t.replace(DESTINATION_PLACEHOLDER, dst_name)
                                                             for t in filled))))
    return out
