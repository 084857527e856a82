"""One probe pod per class of workloads that Cilium cannot tell apart (issue 13.3).

Cilium decides per security identity -- a pod's labels, its namespace's labels, its service account
and the cluster (``flowcheck.model.identity``) -- so two workloads with one identity meet exactly the
same policy, and one probe pod can stand for both: fewer pods, less set-up, the same verdicts. Two
things a decision can depend on besides the identity keep workloads apart here (the model's engine
keys its decisions the same way):

- **named ports**: a rule naming a port (``toPorts: [{port: http}]``, ``ports: [{port: metrics}]``) is
  resolved against the ports the destination pod *serves*. A shared pod serves the union of its
  members' ports, which changes nothing for numeric ports but could give a member a port name it
  does not have -- so workloads are merged only when their named ports are identical;
- **an address** (``ip:``, for ipBlock/CIDR rules): workloads with different addresses stay apart.

``existing`` workloads are never merged (they are matched to running pods by their own labels). A
class with several members gets two pods per node (``copies``), so two of its members can still be
probed against each other on one node: a pod never probes itself.

This "decision class" is derived here, in the harness, from the model's public identity API
(``allocate_identities``) and the topology; it is not the model's own notion.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowcheck.model.identity import allocate_identities
from flowcheck.model.topology import Topology, Workload

ClassKey = tuple[int, tuple[tuple[str, int, str], ...], str | None]


@dataclass(frozen=True, slots=True)
class ProbeClass:
    """Workloads one probe pod stands for (topology order; the first names the pod)."""

    members: tuple[Workload, ...]

    @property
    def first(self) -> Workload:
        return self.members[0]

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(w.ref for w in self.members)

    @property
    def ports(self) -> tuple[tuple[str, int, str], ...]:
        """The union of the members' ports as (name, port, protocol); an unnamed port gets
        ``<protocol>-<port>``, as the container port a pod declares."""
        seen: dict[tuple[int, str], tuple[str, int, str]] = {}
        for workload in self.members:
            for p in workload.ports:
                seen.setdefault((p.port, p.protocol), (p.name or f"{p.protocol.lower()}-{p.port}", p.port, p.protocol))
        return tuple(seen.values())

    @property
    def copies(self) -> int:
        """Pods per node: two when members must be probed against each other, else one."""
        return 2 if len(self.members) > 1 else 1


def probe_classes(topology: Topology) -> tuple[ProbeClass, ...]:
    """The topology's workloads grouped into probe classes (see the module docstring), in topology order."""
    table = allocate_identities(topology)
    groups: dict[ClassKey | str, list[Workload]] = {}
    for workload, identity in zip(topology.workloads, table.of_workload, strict=True):
        key: ClassKey | str = workload.ref if workload.existing else (
            identity, tuple(sorted((p.name, p.port, p.protocol) for p in workload.ports if p.name)), workload.ip)
        groups.setdefault(key, []).append(workload)
    return tuple(ProbeClass(tuple(members)) for members in groups.values())
