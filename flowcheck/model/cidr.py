"""Deciding a flow to (or from) a whole external block: ``{cidr: 10.0.0.0/8}``.

Intent is often about a block ("nothing in the shop namespace reaches 10.0.0.0/8"), while policy
decides one address at a time. Every address of a block gets the same verdict exactly when every
address of it sits on the same side of every CIDR a policy names (``toCIDR``, ``toCIDRSet`` and
its ``except``, ``ipBlock``): entities, selectors and ports do not look at the address, and CIDR
rules select world addresses only (docs/semantics.md, "Peers"). So the block is split at the
policies' CIDR boundaries into sub-blocks none of those CIDRs cuts through, one address of each is
decided, and the block is decided when they all agree -- else the verdict is ``unknown``, naming
the sub-blocks and their verdicts. Never a guess.

The addresses are taken as world addresses no DNS answer gave (the convention of
``{entity: world, ip: IP}``, docs/contracts.md, "Flow file"): a ``toFQDNs`` rule selects none of
them. A block means its world addresses: a pod IP inside it (the topology's ``ip``) is not one --
a flow to a pod is judged by its identity -- and the decision says so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from flowcheck.model.decision import Decision, Grounds, Reason, ReasonKind
from flowcheck.model.flows import CidrEndpoint, EntityEndpoint, Flow
from flowcheck.model.identity import Entity
from flowcheck.model.policy import CidrPeer, IPNetwork
from flowcheck.model.reasons import render_reasons
from flowcheck.verdict import Verdict

if TYPE_CHECKING:  # the engine calls this module
    from flowcheck.model.engine import Model

MAX_SUB_BLOCKS = 4096
"""More sub-blocks than this and the block is not decided (each is one decision)."""
_SHOWN = 4  # sub-blocks named in an ``unknown``'s reason


def decide_block(model: Model, flow: Flow) -> Decision:
    """The decision for ``flow``, one of whose ends is a ``CidrEndpoint`` (see the module docstring)."""
    source_block = isinstance(flow.source, CidrEndpoint)
    end = flow.source if source_block else flow.destination
    assert isinstance(end, CidrEndpoint)
    other = flow.destination if source_block else flow.source
    if isinstance(other, CidrEndpoint):
        return _undecided(flow, "a flow between two external blocks touches no pod; name a workload at one end")
    block = ipaddress.ip_network(end.network)
    pods = [w.ref for w in model.topology.workloads if w.ip is not None and ipaddress.ip_address(w.ip) in block]
    boundaries = _boundaries(model, block)
    leaves = list(_split(block, boundaries))
    if len(leaves) > MAX_SUB_BLOCKS:
        return _undecided(flow, f"the policies' CIDRs cut {block} into more than {MAX_SUB_BLOCKS} sub-blocks; name a "
                                "narrower block")
    decided: list[tuple[IPNetwork, Decision]] = []
    for leaf in leaves:
        address = EntityEndpoint(Entity.WORLD, str(leaf.network_address))
        one = replace(flow, source=address) if source_block else replace(flow, destination=address)
        decided.append((leaf, model.decide(one)))
    verdicts = {d.verdict for _, d in decided}
    if len(verdicts) == 1:
        first = decided[0][1]
        reasons = render_reasons(first.basis, flow) if first.basis else first.reasons
        basis = first.grounds.basis
        if len(leaves) > 1:
            note = Reason(ReasonKind.CIDR_BLOCKS, detail=(
                f"every address of {block} is {first.verdict.value}: the policies' CIDRs cut it into {len(leaves)} "
                f"sub-blocks, each decided alike"))
            reasons = (*reasons, note.detail)
            basis = (*basis, note)
        if pods:
            note = Reason(ReasonKind.CIDR_BLOCKS, detail=(
                f"{block} holds the pod IP of {', '.join(pods)}: a flow to a pod is judged by its identity, so those "
                "addresses are not part of this verdict -- name the workload for them"))
            reasons = (*reasons, note.detail)
            basis = (*basis, note)
        return Decision(first.verdict, tuple(reasons), Grounds(basis, first.grounds.sides))
    return _undecided(flow, f"{block} is not one verdict: the policies' CIDRs cut it into sub-blocks policy "
                            f"treats differently: {_listed(decided)}; name a narrower block or an "
                            "address")


def _boundaries(model: Model, block: IPNetwork) -> list[IPNetwork]:
    """Every CIDR a policy names (blocks and their exceptions) of the block's IP version."""
    found: set[IPNetwork] = set()
    for spec in model.policies.specs:
        for rule in spec.rules:
            for peer in rule.peers:
                if isinstance(peer, CidrPeer):
                    found.update(n for n in (peer.network, *peer.excepts) if n.version == block.version)
    return sorted(found, key=lambda n: (n.network_address, n.prefixlen))


def _split(block: IPNetwork, boundaries: list[IPNetwork]) -> Iterator[IPNetwork]:
    """``block`` in sub-blocks that no boundary cuts through (each inside or outside every boundary)."""
    cutting = [n for n in boundaries if n.prefixlen > block.prefixlen and n.subnet_of(block)]  # type: ignore[arg-type]
    if not cutting:
        yield block
        return
    for half in block.subnets(prefixlen_diff=1):
        yield from _split(half, cutting)


def _listed(decided: list[tuple[IPNetwork, Decision]]) -> str:
    """``10.96.0.0/12 dropped; 10.0.0.0/9, 10.128.0.0/9 allowed``: the sub-blocks, merged, by verdict."""
    by_verdict: dict[Verdict, list[IPNetwork]] = {}
    for leaf, decision in decided:
        by_verdict.setdefault(decision.verdict, []).append(leaf)
    parts = []
    for verdict, leaves in by_verdict.items():
        merged = sorted(ipaddress.collapse_addresses(leaves))  # type: ignore[type-var]
        shown = ", ".join(str(n) for n in merged[:_SHOWN]) + (
            f" and {len(merged) - _SHOWN} more" if len(merged) > _SHOWN else "")
        parts.append(f"{shown} {verdict.value}")
    return "; ".join(parts)


def _undecided(flow: Flow, why: str) -> Decision:
    reason = Reason(ReasonKind.CIDR_BLOCKS, detail=why)
    return Decision(Verdict.UNKNOWN, render_reasons((reason,), flow), Grounds((reason,)))
