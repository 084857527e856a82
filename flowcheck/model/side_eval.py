"""One side's L3/L4 facts: is the pod selected, isolated, which deny and allow rules match -- memoised.

Cilium enforces a pod-to-pod flow twice, egress at the source and ingress at the destination
(docs/semantics.md, "Both sides enforce"). For one side this module collects, from every policy
selecting the pod in that direction: the policies that isolate it (default deny), the deny rules
matching the peer and port, the allow rules matching them (``Grant``, with the L7 rules of the
matching ``toPorts`` entry), and what may match when a fact is missing. ``side_verdict`` turns
these facts into the side's verdict.

The facts depend only on (direction, the set of policies selecting the pod, the peer's class,
protocol, port, ICMP type, port signature) -- the ``SideKey``, a flat tuple of small integers and
strings -- so they are computed once per key: planning N x N flows evaluates each distinct
situation once, not each pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flowcheck.model.decision import ReasonKind
from flowcheck.model.identity import IdentityTable
from flowcheck.model.peer_classes import Doubt, PeerClass, PeerIndex
from flowcheck.model.policy import Direction, L7Rules, PolicyRef, PolicySpec, Rule, RuleRef, Tri
from flowcheck.model.port_match import PortMatcher
from flowcheck.model.selector_index import SelectorIndex
from flowcheck.model.topology import Port

SideKey = tuple[int, int, int, str, int | None, int | None, int]
"""(direction 0 ingress / 1 egress, policy set, peer class, protocol, port, ICMP type, port signature)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """An allow rule that matches the flow's peer and port; ``l7`` None = no L7 restriction."""

    rule: RuleRef
    l7: L7Rules | None
    unsupported: str | None = None


@dataclass(frozen=True, slots=True)
class SideEval:
    """The L3/L4 facts of one side (memoised per ``SideKey``).

    ``notes`` are explanations for a drop, as (rule or None, sentence): a toFQDNs peer that names the
    destination but learns nothing (no rule), a toFQDNs rule that would open a world address were it
    an answer (its rule). ``unresolved`` are allows matching the peer whose named port Cilium cannot
    resolve, with why.
    """

    direction: Direction
    selected_by: tuple[PolicyRef, ...]
    isolating: tuple[PolicyRef, ...]
    denies: tuple[RuleRef, ...]
    deny_maybes: tuple[tuple[RuleRef, Doubt], ...]
    grants: tuple[Grant, ...]
    grant_maybes: tuple[tuple[RuleRef, Doubt], ...]
    unknowns: tuple[tuple[RuleRef, Doubt], ...]
    notes: tuple[tuple[RuleRef | None, str], ...]
    unresolved: tuple[tuple[RuleRef, str], ...] = ()
    maybe_dns_grants: bool = False  # a rule that may match carries DNS rules

    @property
    def selected(self) -> bool:
        return bool(self.selected_by)

    @property
    def dns_grants(self) -> bool:
        """Whether an allow matching the flow carries DNS rules (its traffic then passes Cilium's DNS proxy)."""
        return any(g.l7 is not None and g.l7.dns for g in self.grants)


class SideEvaluator:
    """Per workload and direction, the policies selecting it; per ``SideKey``, the side's facts."""

    def __init__(self, specs: tuple[PolicySpec, ...], identities: IdentityTable, peers: PeerIndex,
                 ports: PortMatcher, subjects: SelectorIndex) -> None:
        self._specs = specs
        self._peers = peers
        self._ports = ports
        self._rules: list[dict[Direction, tuple[Rule, ...]]] = [
            {d: tuple(r for r in s.rules if r.direction is d) for d in Direction} for s in specs]
        self._refs: dict[int, RuleRef] = {id(rule): rule.ref for spec in specs for rule in spec.rules}

        # Subjects: per identity the specs selecting it; per workload and direction that set, interned.
        selected: dict[int, list[int]] = {}
        for s_idx, spec in enumerate(specs):
            if spec.subject is None:
                continue
            for i_idx in subjects.matching(spec.subject):
                selected.setdefault(i_idx, []).append(s_idx)
        set_ids: dict[tuple[int, ...], int] = {}
        self._spec_sets: list[tuple[int, ...]] = []
        self.subject_set: tuple[list[int], list[int]] = ([], [])  # [0] ingress, [1] egress
        for i_idx in identities.of_workload:
            subject_specs = selected.get(i_idx, [])
            for d, direction in enumerate((Direction.INGRESS, Direction.EGRESS)):
                subset = tuple(s for s in subject_specs if direction in specs[s].directions)
                if subset not in set_ids:
                    set_ids[subset] = len(self._spec_sets)
                    self._spec_sets.append(subset)
                self.subject_set[d].append(set_ids[subset])
        self._memo: dict[SideKey, SideEval] = {}
        self._selected_by: dict[tuple[int, ...], tuple[PolicyRef, ...]] = {}

    def key(self, direction: Direction, local: int, pclass: int, protocol: str, port: int | None,
            icmp_type: int | None, destination: int | None) -> SideKey:
        """Everything the side of workload ``local`` depends on (``destination``: the flow's destination workload)."""
        d = 0 if direction is Direction.INGRESS else 1
        return (d, self.subject_set[d][local], pclass, protocol, port, icmp_type,
                self._ports.signature(direction, destination))

    def evaluate(self, key: SideKey) -> SideEval:
        ev = self._memo.get(key)
        if ev is None:
            d, spec_set, pclass, protocol, port, icmp_type, sig = key
            direction = Direction.INGRESS if d == 0 else Direction.EGRESS
            ev = self._evaluate(direction, self._spec_sets[spec_set], self._peers.classes[pclass], protocol, port,
                                icmp_type, self._ports.ports_of(sig))
            self._memo[key] = ev
        return ev

    def _evaluate(self, direction: Direction, specs: tuple[int, ...], pclass: PeerClass, protocol: str,
                  port: int | None, icmp_type: int | None, dest_ports: tuple[Port, ...]) -> SideEval:
        isolating: list[PolicyRef] = []
        denies: list[RuleRef] = []
        deny_maybes: list[tuple[RuleRef, Doubt]] = []
        grants: list[Grant] = []
        grant_maybes: list[tuple[RuleRef, Doubt]] = []
        maybe_dns = False
        unknowns: list[tuple[RuleRef, Doubt]] = []
        notes: dict[str, tuple[RuleRef | None, str]] = {note: (None, note) for note in pclass.notes}
        unresolved: dict[str, tuple[RuleRef, str]] = {}
        maybe = dict(pclass.maybe)
        idle = dict(pclass.idle)
        for s_idx in specs:
            spec = self._specs[s_idx]
            if direction in spec.default_deny and all(ref is not spec.policy for ref in isolating):
                isolating.append(spec.policy)
            for rule in self._rules[s_idx][direction]:
                ref = self._refs[id(rule)]
                peer_tri, peer_doubt = self._peer_match(rule, pclass, maybe)
                if peer_tri is Tri.NO:
                    if idle:
                        for why in self._idle_notes(rule, idle, direction, protocol, port, icmp_type, dest_ports):
                            notes.setdefault(f"{ref.describe()}: {why}", (ref, why))
                    continue
                for port_tri, port_rule, port_why in self._ports.match(rule, direction, protocol, port, icmp_type,
                                                                       dest_ports):
                    if port_tri is Tri.NO:  # a named port Cilium cannot resolve: the rule adds nothing for it
                        if not rule.deny:
                            unresolved.setdefault(f"{ref.describe()}: {port_why}", (ref, port_why))
                        continue
                    tri = Tri.MAYBE if Tri.MAYBE in (peer_tri, port_tri) else Tri.YES
                    if rule.deny:
                        if tri is Tri.YES:
                            denies.append(ref)
                        else:
                            deny_maybes.append((ref, _doubt(peer_tri, peer_doubt, port_why)))
                        continue
                    if tri is Tri.MAYBE:
                        grant_maybes.append((ref, _doubt(peer_tri, peer_doubt, port_why)))
                        maybe_dns = maybe_dns or any(pr.l7 is not None and pr.l7.dns for pr in rule.ports or ())
                        continue
                    if rule.unsupported:
                        unknowns.append((ref, Doubt(ReasonKind.UNKNOWN_FEATURE,
                                                    f"{', '.join(rule.unsupported)} is not modelled")))
                        continue
                    l7 = port_rule.l7 if port_rule is not None else None
                    if l7 is not None and not (l7.http or l7.dns or l7.unsupported):
                        # "If no rules are specified, then all traffic is permitted" (docs/semantics.md, "L7 rules")
                        l7 = None
                    grants.append(Grant(ref, l7, port_rule.unsupported if port_rule is not None else None))
        selected_by = self._selected_by.get(specs)
        if selected_by is None:
            selected_by = self._selected_by[specs] = tuple(dict.fromkeys(self._specs[s].policy for s in specs))
        return SideEval(direction, selected_by, tuple(isolating), tuple(denies), tuple(deny_maybes), tuple(grants),
                        tuple(grant_maybes), tuple(unknowns), tuple(notes.values()), tuple(unresolved.values()),
                        maybe_dns)

    def _idle_notes(self, rule: Rule, idle: Mapping[int, str], direction: Direction, protocol: str,
                    port: int | None, icmp_type: int | None, dest_ports: tuple[Port, ...]) -> list[str]:
        """Why a rule for the flow's port cannot cover the peer although one of its peers names it."""
        whys = [idle[p_idx] for p_idx in self._peers.rule_peers[id(rule)] if p_idx in idle]
        if not whys or not any(tri is not Tri.NO for tri, _, _ in
                               self._ports.match(rule, direction, protocol, port, icmp_type, dest_ports)):
            return []
        return whys

    def _peer_match(self, rule: Rule, pclass: PeerClass, maybe: Mapping[int, Doubt]) -> tuple[Tri, Doubt | None]:
        if rule.wildcard_peers:
            return Tri.YES, None
        doubt: Doubt | None = None
        for p_idx in self._peers.rule_peers[id(rule)]:
            if p_idx in pclass.yes:
                return Tri.YES, None
            if doubt is None and p_idx in maybe:
                doubt = maybe[p_idx]
        return (Tri.MAYBE, doubt) if doubt is not None else (Tri.NO, None)


def _doubt(peer_tri: Tri, peer_doubt: Doubt | None, port_why: str) -> Doubt:
    """Why a rule may match: the peer's doubt if the peer may match, else the port's (a feature not evaluated)."""
    if peer_tri is Tri.MAYBE and peer_doubt is not None:
        return peer_doubt
    return Doubt(ReasonKind.UNKNOWN_FEATURE, port_why)
