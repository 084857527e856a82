"""What Cilium's DNS proxy learns, and so which addresses a ``toFQDNs`` rule selects.

A ``toFQDNs`` peer matches only IPs that Cilium learnt from DNS answers passing through its DNS
proxy (docs/semantics.md, "toFQDNs"): a lookup goes through the proxy when an egress rule with
``rules.dns`` allows it, and IPs learnt on a node serve every pod there. So for a flow to
``{fqdn: name, ip}`` the model asks which workloads' lookups of ``name`` pass the proxy and are
allowed end to end: the source's own (the rule selects the address), only another workload's
(maybe: the topology does not say which node runs what), or nobody's (the rule selects nothing).

A flow to ``{entity: world, ip}`` names no FQDN: by convention the address is one no DNS answer
gave, so no toFQDNs rule selects it, and a drop names each such rule that would open it were it an
answer (``unnamed``).

Which workloads' lookups of a name pass the proxy is worked out once per name; whether a workload's
lookups can pass it at all, once per workload.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from flowcheck.model.flows import DnsQuery, Endpoint, EntityEndpoint, Flow, WorkloadEndpoint
from flowcheck.model.policy import Direction, FqdnPeer, Tri
from flowcheck.model.side_eval import SideEval
from flowcheck.model.side_verdict import judge_side
from flowcheck.model.topology import Topology
from flowcheck.verdict import Verdict
from flowcheck.vocabulary import DNS_PORT


class Lookups(Protocol):
    """What the reasoning asks of the model: the sides and verdicts of DNS lookups between workloads."""

    def side(self, direction: Direction, local: int, peer: int, flow: Flow) -> SideEval:
        """The L3/L4 facts of workload ``local``'s side of ``flow``, whose other end is workload ``peer``."""
        ...

    def verdict(self, flow: Flow, source: int, destination: int) -> Verdict:
        """The verdict of ``flow`` from workload ``source`` to workload ``destination``."""
        ...


class FqdnReasoner:
    """Answers, for the peer classes of FQDN and world destinations, what the DNS proxy learns.

    It keeps what it worked out (per name, per workload); the model answers its questions about DNS
    lookups through ``Lookups``, passed with each question rather than held, so the two hold no
    reference cycle.
    """

    def __init__(self, topology: Topology) -> None:
        self._workloads = topology.workloads
        self._dns_servers = [(i, p.protocol) for i, w in enumerate(self._workloads) for p in w.ports
                             if p.port == DNS_PORT]
        self._proxied_memo: dict[str, tuple[int, ...]] = {}
        self._dns_path_memo: dict[int, bool] = {}

    def learnt(self, local: int, name: str, lookups: Lookups) -> tuple[Tri, str]:
        """Whether ``name``'s IPs were learnt by Cilium's DNS proxy for pods on ``local``'s node (with why not)."""
        if not self._dns_servers:
            return Tri.MAYBE, ("the topology has no DNS server (a workload serving port 53), so the model cannot "
                               f"tell whether a lookup of {name} went through Cilium's DNS proxy")
        proxied = self._proxied_lookups(name, lookups)
        if local in proxied:
            return Tri.YES, ""
        if proxied:
            return Tri.MAYBE, (f"{self._workloads[local].ref} cannot look {name} up through Cilium's DNS proxy but "
                               f"{self._workloads[proxied[0]].ref} can; IPs learnt on a node serve every pod there, "
                               "and the topology does not say which node runs what")
        return Tri.NO, (f"no pod's lookup of {name} passes an egress rule with DNS L7 rules allowing it, so Cilium's "
                        "DNS proxy never learns its IPs")

    def unnamed(self, local: int, peer: FqdnPeer, endpoint: Endpoint, lookups: Lookups) -> str:
        """Why a toFQDNs peer does not select a world address given without a name.

        A flow to ``{entity: world, ip}`` names no FQDN: by convention the address is not one a DNS
        answer gave, so no toFQDNs rule selects it. The note names the rule that would open it were it
        an answer for a name the rule matches, and whether such an answer could pass Cilium's DNS proxy
        (by ``local``'s lookups, or another pod's: IPs learnt on a node serve every pod there). A
        ``matchName`` peer is judged on its name; for a ``matchPattern`` one any proxied lookup counts,
        since the names it matches are not enumerable.
        """
        target = endpoint.describe()
        ip = endpoint.ip if isinstance(endpoint, EntityEndpoint) and endpoint.ip else "IP"
        name = peer.name if peer.name is not None else "NAME"
        head = (f"toFQDNs {peer.text} does not select {target}: the flow names no FQDN, so the address counts as "
                f"one no DNS answer gave; the rule would open it were it an answer for "
                f"{peer.name or 'a name the pattern matches'} (give the destination as {{fqdn: {name}, ip: {ip}}} "
                "to judge that)")
        nothing = "it selects nothing anyway"
        if peer.name is not None:
            tri, why = self.learnt(local, peer.name, lookups)
            if tri is Tri.NO:
                return f"{head}; {nothing}: {why}"
            if tri is Tri.YES:
                why = f"{self._workloads[local].ref} looks {peer.name} up through Cilium's DNS proxy"
            return f"{head}; {why}"
        if not self._dns_servers:
            return (f"{head}; the topology has no DNS server (a workload serving port 53), so the model cannot tell "
                    "whether lookups pass Cilium's DNS proxy")
        if self._proxied_dns_path(local, lookups):
            return (f"{head}; {self._workloads[local].ref}'s DNS lookups pass Cilium's DNS proxy (an egress rule "
                    "with DNS L7 rules allows them)")
        other = next((i for i in range(len(self._workloads)) if i != local and self._proxied_dns_path(i, lookups)),
                     None)
        if other is not None:
            return (f"{head}; {self._workloads[other].ref}'s DNS lookups pass Cilium's DNS proxy, and IPs learnt on "
                    "a node serve every pod there")
        return (f"{head}; {nothing}: no pod's DNS lookups pass an egress rule with DNS L7 rules, so Cilium's DNS "
                "proxy learns no IPs")

    def _proxied_lookups(self, name: str, lookups: Lookups) -> tuple[int, ...]:
        """The workloads, in topology order, whose lookup of ``name`` passes Cilium's DNS proxy (cached per name)."""
        found = self._proxied_memo.get(name)
        if found is None:
            query = DnsQuery(name)
            found = self._proxied_memo[name] = tuple(
                src for src in range(len(self._workloads)) if self._proxied_lookup(src, query, lookups))
        return found

    def _proxied_lookup(self, src: int, query: DnsQuery, lookups: Lookups) -> bool:
        """Whether some lookup of ``src`` goes through an egress allow with DNS L7 rules and is allowed."""
        return any(judge_side(ev, flow).dns_proxied and lookups.verdict(flow, src, server) is Verdict.ALLOWED
                   for server, flow, ev in self._dns_lookups(src, query, lookups))

    def _dns_lookups(self, src: int, query: DnsQuery | None, lookups: Lookups) -> Iterator[tuple[int, Flow, SideEval]]:
        """``src``'s lookups (of ``query``) towards every DNS server but itself, each with its egress side."""
        source = WorkloadEndpoint(self._workloads[src].ref)
        for server, protocol in self._dns_servers:
            if server == src:
                continue
            flow = Flow(source, WorkloadEndpoint(self._workloads[server].ref), protocol, DNS_PORT, dns=query)
            yield server, flow, lookups.side(Direction.EGRESS, src, server, flow)

    def _proxied_dns_path(self, src: int, lookups: Lookups) -> bool:
        """Whether some DNS lookup of ``src`` may pass Cilium's DNS proxy: an egress allow with DNS L7 rules
        (or one that may match) towards a DNS server whose ingress does not drop it. No query name is
        known here, so any DNS L7 rule counts."""
        found = self._dns_path_memo.get(src)
        if found is not None:
            return found
        found = False
        for server, flow, ev in self._dns_lookups(src, None, lookups):
            if ev.denies or not (ev.dns_grants or ev.maybe_dns_grants):
                continue
            if judge_side(lookups.side(Direction.INGRESS, server, src, flow), flow).verdict is not Verdict.DROPPED:
                found = True
                break
        self._dns_path_memo[src] = found
        return found
