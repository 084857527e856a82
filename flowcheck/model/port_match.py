"""Which of a rule's ports match a flow: numbers, ranges, protocols, ICMP types and named ports.

Named ports resolve where Cilium resolves them (docs/semantics.md, "Ports and named ports"): on
ingress against the destination pod's own ports; on egress against the named ports of every pod,
where a name meaning two numbers for the flow's protocol is ``ErrDuplicateNamedPorts`` and the
rule opens nothing by that name. Under ``--semantics kubernetes`` both directions resolve against
the destination, as the NetworkPolicy specification says.

Workloads with the same ports share a *port signature* (an interned tuple), so a side's
evaluation can be memoised per signature rather than per workload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flowcheck.model.policy import Direction, PortRule, PortSpec, Rule, Tri
from flowcheck.model.semantics import Semantics
from flowcheck.model.topology import Port, Topology

PortMatch = tuple[Tri, PortRule | None, str]
"""(YES or MAYBE with why, the matching port rule) -- or NO with why: a named port Cilium cannot resolve."""

EGRESS_ALL_PODS = -1
"""The signature of an egress side under Cilium: named ports resolve over all pods, not the destination."""
NO_DESTINATION = -2
"""The signature of a side whose destination is not a workload (it serves no named port)."""


class PortMatcher:
    """Port signatures of the topology's workloads and the port matching of rules against flows."""

    def __init__(self, topology: Topology, semantics: Semantics) -> None:
        self.semantics = semantics
        sig_ids: dict[tuple[Port, ...], int] = {}
        self.signatures: list[tuple[Port, ...]] = []
        self.workload_signature: list[int] = []
        # (name, protocol) -> number -> the workloads defining it, in topology order (Cilium egress).
        self._named: dict[tuple[str, str], dict[int, list[str]]] = {}
        for w in topology.workloads:
            if w.ports not in sig_ids:
                sig_ids[w.ports] = len(self.signatures)
                self.signatures.append(w.ports)
            self.workload_signature.append(sig_ids[w.ports])
            for p in w.ports:
                if p.name:
                    self._named.setdefault((p.name, p.protocol), {}).setdefault(p.port, []).append(w.ref)

    def signature(self, direction: Direction, destination: int | None) -> int:
        """The port signature a side's evaluation depends on (``destination``: the flow's destination workload)."""
        if direction is Direction.EGRESS and self.semantics == "cilium":
            return EGRESS_ALL_PODS
        return self.workload_signature[destination] if destination is not None else NO_DESTINATION

    def ports_of(self, signature: int) -> tuple[Port, ...]:
        return self.signatures[signature] if signature >= 0 else ()

    def match(self, rule: Rule, direction: Direction, protocol: str, port: int | None, icmp_type: int | None,
              dest_ports: tuple[Port, ...]) -> list[PortMatch]:
        """The rule's port rules that match the flow (YES or MAYBE, with why), plus those that would but
        name a port Cilium cannot resolve (NO, with why)."""
        if rule.l3_only:
            return [(Tri.YES, None, "")]
        if protocol == "ICMP":
            out: list[PortMatch] = []
            for icmp in rule.icmps or ():
                if icmp.family != "IPv4":
                    continue  # flows carry IPv4 ICMP types (docs/contracts.md, "Flow file")
                if icmp.type is None:
                    out.append((Tri.MAYBE, None, f"ICMP type name in {icmp.text!r} is not known to the model"))
                elif icmp.type == icmp_type:
                    out.append((Tri.YES, None, ""))
            if any(t is Tri.YES for t, _, _ in out):
                return [(Tri.YES, None, "")]
            return out
        if rule.ports is None or port is None:
            return []  # an icmps-only rule allows no TCP/UDP/SCTP
        results: list[PortMatch] = []
        for port_rule in rule.ports:
            if not port_rule.ports:
                results.append((Tri.MAYBE, port_rule, f"{port_rule.unsupported} is not modelled"))
                continue
            best: tuple[Tri, str] = (Tri.NO, "")
            for spec in port_rule.ports:
                tri, why = self._spec_match(spec, direction, protocol, port, dest_ports)
                if tri is Tri.YES:
                    best = (Tri.YES, "")
                    break
                if tri is Tri.MAYBE or (why and best == (Tri.NO, "")):
                    best = (tri, why)
            if best != (Tri.NO, ""):
                results.append((best[0], port_rule, best[1]))
        return results

    def _spec_match(self, spec: PortSpec, direction: Direction, protocol: str, port: int,
                    dest_ports: tuple[Port, ...]) -> tuple[Tri, str]:
        if not spec.protocol_matches(protocol):
            return Tri.NO, ""
        if spec.name is None:
            return (Tri.YES, "") if spec.number_matches(port) else (Tri.NO, "")
        if direction is Direction.INGRESS or self.semantics == "kubernetes":
            ok = any(p.name == spec.name and p.port == port and p.protocol == protocol for p in dest_ports)
            return (Tri.YES, "") if ok else (Tri.NO, "")
        # Egress under Cilium: the name is resolved over every pod's named ports for the flow's protocol
        # (an ANY rule is merged once per protocol); a name meaning two numbers is ErrDuplicateNamedPorts
        # and the rule adds nothing for it.
        numbers = self._named.get((spec.name, protocol), {})
        if len(numbers) <= 1:
            return (Tri.YES, "") if port in numbers else (Tri.NO, "")
        if port not in numbers:
            return Tri.NO, ""
        return Tri.NO, ambiguous_named_port(spec.name, protocol, numbers)


def ambiguous_named_port(name: str, protocol: str, numbers: Mapping[int, Sequence[str]]) -> str:
    """Why an egress rule naming ``name`` opens nothing under Cilium: the name means several numbers."""
    shown = 3  # workloads listed per number; a port name shared by many pods would drown the reason
    meanings = "; ".join(
        f"{number} on {', '.join(refs[:shown])}{f' and {len(refs) - shown} more' if len(refs) > shown else ''}"
        for number, refs in sorted(numbers.items()))
    return (f"named port {name!r} is ambiguous cluster-wide for {protocol} ({meanings}): Cilium resolves an egress "
            "named port over the named ports of all pods, gets ErrDuplicateNamedPorts (pkg/types/portmap.go) and "
            "adds nothing for it (pkg/policy/l4.go), so this rule opens no port by that name")
