"""Which pod pair probes a path: once within a node and once across nodes, by construction.

Cilium delivers a packet between two pods of one node locally and between nodes through the
tunnel or the native route, with a host firewall possibly in between, so an enforcement bug can show
on one placement and not the other; cilium-cli probes both (``echo-same-node``, ``echo-other-node``).
The cluster layer deploys a workload's pods on two nodes (``flowcheck.cluster.workloads``); here a
path between two workloads becomes its routes: one pair of their pods on the same node and one on
different nodes, where the deployment has them. A pod never probes itself -- two workloads that share
one probe pod (one identity) are probed between two *different* pods of it -- because traffic from a
pod to its own address never meets a policy.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowcheck.harness.backends import ProbeRoute

Replica = tuple[str, str]  # (probe target, node)


def routes_between(sources: Sequence[Replica], destinations: Sequence[Replica]) -> tuple[ProbeRoute, ...]:
    """The same-node route and the cross-node route from a source replica to a destination replica.

    Replicas are (target, node); the first pair found in sorted order is taken, preferring one source
    pod for both routes (so the two differ only in where the destination is). Without node
    information (empty nodes) there is one route, between the first two distinct pods.
    """
    pairs = [(s, d) for s in sorted(sources, key=_order) for d in sorted(destinations, key=_order) if s[0] != d[0]]
    if not pairs:
        return ()
    if not any(node for _, node in (*sources, *destinations)):
        (source, _), (destination, _) = pairs[0]
        return (ProbeRoute(source, destination),)
    same = next(((s, d) for s, d in pairs if s[1] == d[1]), None)
    cross_pairs = [(s, d) for s, d in pairs if s[1] != d[1]]
    if same is not None:
        cross_pairs.sort(key=lambda pair: pair[0] != same[0])  # keep the same source pod where possible
    chosen = [pair for pair in (same, cross_pairs[0] if cross_pairs else None) if pair is not None]
    return tuple(ProbeRoute(s[0], d[0], s[1], d[1]) for s, d in chosen)


def route_out(sources: Sequence[Replica]) -> tuple[ProbeRoute, ...]:
    """The route to a destination outside the topology (an FQDN, the API server): from one of the source's
    pods, the first in sorted order; its ``destination`` is left empty for the caller to name, and it has no
    placement (where the destination runs is not flowcheck's to choose)."""
    if not sources:
        return ()
    target, node = min(sources, key=_order)
    return (ProbeRoute(target, "", node, ""),)


def _order(replica: Replica) -> tuple[str, str]:
    return (replica[1], replica[0])
