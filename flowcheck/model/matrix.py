"""The plan: every workload to every workload, on every port the destination serves.

This is what ``flowcheck plan`` prints and what the suites probe: for each (source, destination,
served port) the model's decision. Self-flows (a workload to itself) are included and decided
``allowed`` -- a pod reaching its own IP never leaves its network namespace (see ``engine``) --
so the matrix is square, like cyclonus' truth tables; a report may hide the diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowcheck.model.decision import Decision
from flowcheck.model.engine import Model
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
    the endpoints are resolved once, not once per flow.
    """
    proto = protocol.upper() if protocol else None
    workloads = model.topology.workloads
    endpoints = [model.resolve(WorkloadEndpoint(w.ref)) for w in workloads]
    targets = [(endpoints[d_idx], served.protocol, served.port)
               for d_idx, w in enumerate(workloads) for served in w.ports
               if (port is None or served.port == port) and (proto is None or served.protocol == proto)]
    out: list[PlannedFlow] = []
    append = out.append
    decide = model.decide_resolved
    for source in endpoints:
        src = source.endpoint
        for dest, served_protocol, served_port in targets:
            flow = Flow(src, dest.endpoint, served_protocol, served_port)
            append(PlannedFlow(flow, decide(flow, source, dest)))
    return out
