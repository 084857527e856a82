"""The decision procedure: what Cilium (or the NetworkPolicy spec) does to one flow, and why.

This follows cilium-semantics §7. For a flow S -> D:

1. Identities: pods get the labels Cilium synthesises (``identity``); other endpoints are reserved
   identities (world, host, remote-node, kube-apiserver, ...).
2. Egress at S when S is a pod; ingress at D when D is a pod ("policy must be configured on both
   sides", §3.3). World, host and node sources have no egress enforcement here, and a host source
   reaching a pod is always allowed (allow-localhost, §3.5).
3. On each side: no policy selecting the pod in that direction -> unrestricted; a matching deny
   rule -> dropped, whatever the allows say (§3.2); only ``enableDefaultDeny: false`` policies ->
   default-allow (their L7 rules get an allow-all, Cilium >= 1.18, §2.6); otherwise the pod is
   isolated and the allows of every NetworkPolicy, CNP and CCNP selecting it form one union.
4. L7: among the allow rules matching (peer, port), one without L7 rules lets everything through
   (L7 wildcarding, §2.6); otherwise the HTTP request or DNS query must match one of their L7
   rules, else l7-denied (HTTP 403 / DNS REFUSED).
5. toFQDNs peers match only IPs learnt from a DNS answer that passed Cilium's DNS proxy, i.e. a
   lookup allowed by an egress rule with ``rules.dns`` (§1.4, §7.5).
6. A NetworkPolicy ``namespaceSelector`` peer selects pods only under ``--semantics kubernetes``.
   Under ``cilium`` its keys are rewritten to ``io.cilium.k8s.namespace.labels.*`` (§3.4), which
   reserved identities lack, so a ``NotIn``/``DoesNotExist`` one may match world, host or a node:
   the reference does not say, so such a match is a "maybe" (``unknown``), never an allow.

Replies of an allowed connection are allowed (§3.3); the model decides connection *initiations*
only, so B -> A is judged on its own. A pod reaching its own IP never leaves its network namespace
(the kernel delivers it over loopback), so self-flows are allowed without consulting policy.

A flow to ``{fqdn: name, ip}`` says which name the address came from, so a ``toFQDNs`` rule is
judged on that name. A flow to ``{entity: world, ip}`` names none, and by convention means an
address no DNS answer gave (one the source dials directly): no ``toFQDNs`` rule selects it, so it is
decided on the other rules, and a drop names each ``toFQDNs`` rule for the flow's port that would
open it were the address an answer for a name the rule matches (the ``{fqdn: name, ip}`` form judges
that case).

Named ports resolve where Cilium resolves them (§2.1): on ingress against the destination pod's own
ports; on egress against the named ports of all pods, where a name meaning two numbers for the
flow's protocol is ``ErrDuplicateNamedPorts`` and the rule adds nothing for it -- a drop leads with
that reason. (Cilium's main branch resolves egress names over the destinations the rule selects
since cilium/cilium#44429, merged after the 1.19 branch was cut; a later version may decide these
flows differently.)

Wherever a fact is missing (an unsupported policy feature, an IP the topology lacks, ...), matching
is three-valued and the verdict becomes ``unknown`` with the reason, never a guess.

Speed: selectors are evaluated once per distinct identity at construction; a side's L3/L4
evaluation is memoised on (the set of policies selecting the pod, the peer's match class, protocol,
port), so planning N x N flows does not re-evaluate every selector per pair; which pods' lookups of
a name pass the DNS proxy is worked out once per name, not once per pod.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from flowcheck.errors import InputError
from flowcheck.model.flows import DnsQuery, Endpoint, EntityEndpoint, Flow, FqdnEndpoint, WorkloadEndpoint
from flowcheck.model.identity import (
    Entity,
    entity_selects_entity,
    entity_selects_pod,
    reserved_identity,
    workload_identity,
)
from flowcheck.model.policy import (
    CidrPeer,
    Direction,
    EntityPeer,
    FqdnPeer,
    L7Rules,
    Peer,
    PolicyRef,
    PolicySet,
    PolicySpec,
    PortRule,
    PortSpec,
    Rule,
    SelectorPeer,
    Tri,
    UnsupportedPeer,
)
from flowcheck.model.topology import Port, Topology
from flowcheck.verdict import Verdict

Semantics = Literal["cilium", "kubernetes"]
SEMANTICS: tuple[Semantics, ...] = ("cilium", "kubernetes")
DNS_PORT = 53

# Placeholders for the source and destination names in cached reason templates.
_SRC = "\x00src\x00"
_DST = "\x00dst\x00"
SOURCE_PLACEHOLDER = _SRC
DESTINATION_PLACEHOLDER = _DST
_SideKey = tuple[int, int, int, str, int | None, int | None, int]

_SEVERITY = {Verdict.DROPPED: 3, Verdict.UNKNOWN: 2, Verdict.L7_DENIED: 1, Verdict.ALLOWED: 0}


class SemanticsError(InputError):
    """An unknown ``--semantics`` value."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict with the reasons behind it, decisive reason first."""

    verdict: Verdict
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _PeerClass:
    """Which peers (by id) an endpoint definitely matches, which it may match (with why), plus notes.

    ``idle`` are peers that would cover the endpoint but do not select it (a ``toFQDNs`` rule and a world
    address given without a name), with why: a drop by a rule with such a peer and a matching port says so.
    """

    yes: frozenset[int]
    maybe: tuple[tuple[int, str], ...] = ()
    notes: tuple[str, ...] = ()
    idle: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Grant:
    """An allow rule that matches the flow's peer and port; ``l7`` None = no L7 restriction."""

    rule: Rule
    l7: L7Rules | None
    unsupported: str | None = None


@dataclass(frozen=True, slots=True)
class _SideEval:
    """The L3/L4 facts of one side (memoised); turned into a verdict per flow by ``_finalize``."""

    direction: Direction
    selected: bool
    isolating: tuple[PolicyRef, ...]
    denies: tuple[Rule, ...]
    deny_maybes: tuple[tuple[Rule, str], ...]
    grants: tuple[_Grant, ...]
    grant_maybes: tuple[tuple[Rule, str], ...]
    unknowns: tuple[tuple[Rule, str], ...]
    notes: tuple[str, ...]
    unresolved: tuple[str, ...] = ()  # allows matching the peer whose named port Cilium cannot resolve

    @property
    def dns_grants(self) -> bool:
        """Whether an allow matching the flow carries DNS rules (its traffic then passes Cilium's DNS proxy)."""
        return any(g.l7 is not None and g.l7.dns for g in self.grants)


@dataclass(frozen=True, slots=True)
class _SideResult:
    verdict: Verdict
    reasons: tuple[str, ...]
    dns_proxied: bool = False
    unselected: bool = False  # no policy selects the pod: its reason goes after those naming a rule


class Model:
    """Topology + policies -> ``decide(flow)``. Build once, ask many times (construction indexes)."""

    def __init__(self, topology: Topology, policies: PolicySet, semantics: str = "cilium") -> None:
        if semantics not in SEMANTICS:
            raise SemanticsError(f"unknown semantics {semantics!r}; expected cilium or kubernetes")
        self.topology = topology
        self.policies = policies
        self.semantics: Semantics = "cilium" if semantics == "cilium" else "kubernetes"
        self._workloads = topology.workloads
        self._index = {w.ref: i for i, w in enumerate(self._workloads)}
        self._specs: tuple[PolicySpec, ...] = policies.specs
        self._host_policies = tuple(s for s in self._specs if s.subject is None)
        self._rules: list[dict[Direction, tuple[Rule, ...]]] = [
            {d: tuple(r for r in s.rules if r.direction is d) for d in Direction} for s in self._specs]

        # Identities, deduplicated as Cilium allocates them: selectors are evaluated once per identity.
        identity_ids: dict[frozenset[tuple[str, tuple[str, str]]], int] = {}
        self._identities: list[dict[str, tuple[str, str]]] = []
        self._identity_of: list[int] = []
        for w in self._workloads:
            labels = workload_identity(w.namespace, topology.namespaces.get(w.namespace, {}), w.labels,
                                       w.service_account)
            key = frozenset(labels.items())
            if key not in identity_ids:
                identity_ids[key] = len(self._identities)
                self._identities.append(labels)
            self._identity_of.append(identity_ids[key])

        # Subjects: per workload and direction, the specs selecting it (interned as a tuple).
        selected: dict[int, list[int]] = {}
        for s_idx, spec in enumerate(self._specs):
            if spec.subject is None:
                continue
            for i_idx, labels in enumerate(self._identities):
                if spec.subject.matches(labels):
                    selected.setdefault(i_idx, []).append(s_idx)
        set_ids: dict[tuple[int, ...], int] = {}
        self._spec_sets: list[tuple[int, ...]] = []
        self._subject_set: tuple[list[int], list[int]] = ([], [])  # [0] ingress, [1] egress
        for w_idx in range(len(self._workloads)):
            specs = selected.get(self._identity_of[w_idx], [])
            for d, direction in enumerate((Direction.INGRESS, Direction.EGRESS)):
                subset = tuple(s for s in specs if direction in self._specs[s].directions)
                if subset not in set_ids:
                    set_ids[subset] = len(self._spec_sets)
                    self._spec_sets.append(subset)
                self._subject_set[d].append(set_ids[subset])

        # Peers: a global numbering, and each workload's peer class.
        self._peers: list[Peer] = []
        self._rule_peers: dict[int, tuple[int, ...]] = {}
        for spec in self._specs:
            for rule in spec.rules:
                ids = []
                for peer in rule.peers:
                    ids.append(len(self._peers))
                    self._peers.append(peer)
                self._rule_peers[id(rule)] = tuple(ids)
        identity_yes: list[set[int]] = [set() for _ in self._identities]
        ip_peers: list[int] = []
        maybe_all: list[tuple[int, str]] = []
        for p_idx, peer in enumerate(self._peers):
            if isinstance(peer, SelectorPeer):
                for i_idx, labels in enumerate(self._identities):
                    if peer.selector.matches(labels):
                        identity_yes[i_idx].add(p_idx)
            elif isinstance(peer, EntityPeer):
                if entity_selects_pod(peer.entity):
                    for s in identity_yes:
                        s.add(p_idx)
            elif isinstance(peer, CidrPeer):
                if peer.ip_block and self.semantics == "kubernetes":
                    ip_peers.append(p_idx)
            elif isinstance(peer, UnsupportedPeer):
                maybe_all.append((p_idx, f"{peer.feature} is not modelled"))
        self._class_ids: dict[_PeerClass, int] = {}
        self._classes: list[_PeerClass] = []
        self._workload_class: list[int] = []
        for w_idx, w in enumerate(self._workloads):
            yes = set(identity_yes[self._identity_of[w_idx]])
            maybe = list(maybe_all)
            for p_idx in ip_peers:
                cidr = self._peers[p_idx]
                assert isinstance(cidr, CidrPeer)
                if w.ip is None:
                    maybe.append((p_idx, f"ipBlock {cidr.describe()} may match {w.ref}'s pod IP, but the topology "
                                         "gives it no ip"))
                elif cidr.contains(w.ip):
                    yes.add(p_idx)
            self._workload_class.append(self._intern(_PeerClass(frozenset(yes), tuple(maybe))))

        # Ports: per workload a port signature; named ports over all workloads (Cilium egress), with
        # the workloads defining each (name, protocol) -> number, in topology order.
        sig_ids: dict[tuple[Port, ...], int] = {}
        self._port_sigs: list[tuple[Port, ...]] = []
        self._workload_sig: list[int] = []
        self._named: dict[tuple[str, str], dict[int, list[str]]] = {}
        for w in self._workloads:
            if w.ports not in sig_ids:
                sig_ids[w.ports] = len(self._port_sigs)
                self._port_sigs.append(w.ports)
            self._workload_sig.append(sig_ids[w.ports])
            for p in w.ports:
                if p.name:
                    self._named.setdefault((p.name, p.protocol), {}).setdefault(p.port, []).append(w.ref)

        # Everything a workload contributes to a pair's decision, as source and as destination,
        # interned to small ints so the plan's cache key is flat and cheap to hash.
        as_source: dict[tuple[int, int], int] = {}
        as_destination: dict[tuple[int, int, int], int] = {}
        self._as_source = [as_source.setdefault((self._subject_set[1][i], self._workload_class[i]), len(as_source))
                           for i in range(len(self._workloads))]
        self._as_destination = [
            as_destination.setdefault((self._subject_set[0][i], self._workload_class[i], self._workload_sig[i]),
                                      len(as_destination))
            for i in range(len(self._workloads))]
        self._side_memo: dict[_SideKey, _SideEval] = {}
        self._decision_memo: dict[tuple[object, ...], tuple[Verdict, tuple[str, ...]]] = {}
        self._pair_memo: dict[tuple[object, ...], tuple[Verdict, tuple[str, ...]]] = {}
        self._endpoint_classes: dict[tuple[Endpoint, int], int] = {}
        self._proxied_memo: dict[str, tuple[int, ...]] = {}
        self._has_fqdn_peers = any(isinstance(p, FqdnPeer) for p in self._peers)
        self._dns_servers = [(i, p.protocol) for i, w in enumerate(self._workloads) for p in w.ports
                             if p.port == DNS_PORT]
        self._dns_path_memo: dict[int, bool] = {}

    # --- public API -----------------------------------------------------------------------------

    def decide(self, flow: Flow) -> Decision:
        """The verdict for ``flow`` with its reasons (``UnknownWorkloadError`` for a bad reference)."""
        src = self._resolve(flow.source)
        dst = self._resolve(flow.destination)
        return self._decide(flow, src, dst)

    # --- flow-level -----------------------------------------------------------------------------

    def _resolve(self, endpoint: Endpoint) -> int | None:
        if isinstance(endpoint, WorkloadEndpoint):
            self.topology.workload(endpoint.ref)  # raises UnknownWorkloadError naming the known ones
            return self._index[endpoint.ref]
        return None

    def _decide(self, flow: Flow, src: int | None, dst: int | None) -> Decision:
        if src is not None and src == dst:
            return Decision(Verdict.ALLOWED, (
                f"{flow.source.describe()} reaches its own IP: the kernel delivers it inside the pod's network "
                "namespace, so no policy applies",))
        ekey = self._side_key(Direction.EGRESS, src, flow.destination, dst, flow) if src is not None else None
        localhost = isinstance(flow.source, EntityEndpoint) and flow.source.entity is Entity.HOST
        ikey = self._side_key(Direction.INGRESS, dst, flow.source, src, flow) if dst is not None else None
        touches_host = bool(self._host_policies) and any(
            isinstance(ep, EntityEndpoint) and ep.entity in (Entity.HOST, Entity.REMOTE_NODE)
            for ep in (flow.source, flow.destination))
        src_name, dst_name = flow.source.describe(), flow.destination.describe()
        if flow.http is not None or flow.dns is not None:
            verdict, reasons = self._compose(flow, ekey, ikey, localhost, touches_host, src_name, dst_name)
            return Decision(verdict, reasons)
        # L3/L4-only flows: reasons are cached as templates and filled in with this flow's names.
        key = (ekey, ikey, localhost, touches_host)
        cached = self._decision_memo.get(key)
        if cached is None:
            cached = self._compose(flow, ekey, ikey, localhost, touches_host, _SRC, _DST)
            self._decision_memo[key] = cached
        verdict, templates = cached
        return Decision(verdict, tuple(t.replace(_SRC, src_name).replace(_DST, dst_name) for t in templates))

    def pair_templates(self, flow: Flow, src: int, dst: int) -> tuple[Verdict, tuple[str, ...]]:
        """The cached verdict and reason templates of a workload -> workload L3/L4 flow (src != dst).

        Templates hold ``SOURCE_PLACEHOLDER``/``DESTINATION_PLACEHOLDER`` where the names go; the plan
        fills them in itself so it can reuse the source half across destinations.
        """
        key = (self._as_source[src], self._as_destination[dst], flow.protocol, flow.port,
               flow.icmp.type if flow.icmp else None)
        cached = self._pair_memo.get(key)
        if cached is None:
            ekey = self._side_key(Direction.EGRESS, src, flow.destination, dst, flow)
            ikey = self._side_key(Direction.INGRESS, dst, flow.source, src, flow)
            cached = self._compose(flow, ekey, ikey, False, False, _SRC, _DST)
            self._pair_memo[key] = cached
        return cached

    def _compose(self, flow: Flow, ekey: _SideKey | None, ikey: _SideKey | None, localhost: bool,
                 touches_host: bool, src_name: str, dst_name: str) -> tuple[Verdict, tuple[str, ...]]:
        sides: list[_SideResult] = []
        if ekey is not None:
            sides.append(self._finalize(self._side_eval(ekey), flow, src_name, dst_name))
        if ikey is not None:
            if localhost:
                sides.append(self._localhost(self._side_eval(ikey), dst_name))
            else:
                sides.append(self._finalize(self._side_eval(ikey), flow, dst_name, src_name))
        if touches_host:
            names = ", ".join(s.policy.describe() for s in self._host_policies)
            sides.append(_SideResult(Verdict.UNKNOWN, (
                f"{names}: host policies (nodeSelector, host firewall) are not modelled and this flow touches a "
                "node",)))
        if not sides:
            return Verdict.ALLOWED, (f"neither {src_name} nor {dst_name} is a pod Cilium enforces policy on",)
        verdict = max((s.verdict for s in sides), key=_SEVERITY.__getitem__)
        ordered = sorted(sides, key=lambda s: (-_SEVERITY[s.verdict], s.unselected))
        return verdict, tuple(r for s in ordered for r in s.reasons)

    def _localhost(self, ev: _SideEval, pod: str) -> _SideResult:
        """Host -> local pod: always allowed in Kubernetes mode (allow-localhost, §3.5)."""
        if ev.denies:
            return _SideResult(Verdict.UNKNOWN, (
                f"{ev.denies[0].describe()}: denies the host, but the host always reaches local pods "
                f"(allow-localhost); how the two interact is not documented",))
        return _SideResult(Verdict.ALLOWED, (
            f"{pod} ingress: the host always reaches its local pods (Cilium's allow-localhost in Kubernetes mode)",))

    # --- one side -------------------------------------------------------------------------------

    def _side_key(self, direction: Direction, local: int, peer: Endpoint, peer_idx: int | None,
                  flow: Flow) -> _SideKey:
        """Everything one side's L3/L4 evaluation depends on, as a flat, cheaply hashed tuple."""
        dest_idx = local if direction is Direction.INGRESS else peer_idx
        if direction is Direction.EGRESS and self.semantics == "cilium":
            sig = -1  # named ports on egress resolve over all pods, not the destination
        else:
            sig = self._workload_sig[dest_idx] if dest_idx is not None else -2
        pclass = (self._workload_class[peer_idx] if peer_idx is not None
                  else self._endpoint_class(peer, local, direction))
        d = 0 if direction is Direction.INGRESS else 1
        icmp_type = flow.icmp.type if flow.icmp else None
        return (d, self._subject_set[d][local], pclass, flow.protocol, flow.port, icmp_type, sig)

    def _side_eval(self, key: _SideKey) -> _SideEval:
        ev = self._side_memo.get(key)
        if ev is None:
            d, spec_set, pclass, protocol, port, icmp_type, sig = key
            direction = Direction.INGRESS if d == 0 else Direction.EGRESS
            ports = self._port_sigs[sig] if sig >= 0 else ()
            ev = self._evaluate(direction, self._spec_sets[spec_set], self._classes[pclass], protocol, port,
                                icmp_type, ports)
            self._side_memo[key] = ev
        return ev

    def _evaluate(self, direction: Direction, specs: tuple[int, ...], pclass: _PeerClass, protocol: str,
                  port: int | None, icmp_type: int | None, dest_ports: tuple[Port, ...]) -> _SideEval:
        isolating: list[PolicyRef] = []
        denies: list[Rule] = []
        deny_maybes: list[tuple[Rule, str]] = []
        grants: list[_Grant] = []
        grant_maybes: list[tuple[Rule, str]] = []
        unknowns: list[tuple[Rule, str]] = []
        notes = list(pclass.notes)
        unresolved: list[str] = []
        maybe = dict(pclass.maybe)
        idle = dict(pclass.idle)
        for s_idx in specs:
            spec = self._specs[s_idx]
            if direction in spec.default_deny and all(ref is not spec.policy for ref in isolating):
                isolating.append(spec.policy)
            for rule in self._rules[s_idx][direction]:
                peer_tri, peer_why = self._peer_match(rule, pclass, maybe)
                if peer_tri is Tri.NO:
                    if idle:
                        notes.extend(self._idle_notes(rule, idle, direction, protocol, port, icmp_type, dest_ports))
                    continue
                for port_tri, port_rule, port_why in self._port_match(rule, direction, protocol, port, icmp_type,
                                                                      dest_ports):
                    if port_tri is Tri.NO:  # a named port Cilium cannot resolve: the rule adds nothing for it
                        if not rule.deny:
                            unresolved.append(f"{rule.describe()}: {port_why}")
                        continue
                    tri = Tri.MAYBE if Tri.MAYBE in (peer_tri, port_tri) else Tri.YES
                    why = peer_why if peer_tri is Tri.MAYBE else port_why
                    if rule.deny:
                        if tri is Tri.YES:
                            denies.append(rule)
                        else:
                            deny_maybes.append((rule, why))
                        continue
                    if tri is Tri.MAYBE:
                        grant_maybes.append((rule, why))
                        continue
                    if rule.unsupported:
                        unknowns.append((rule, f"{', '.join(rule.unsupported)} is not modelled"))
                        continue
                    l7 = port_rule.l7 if port_rule is not None else None
                    if l7 is not None and not (l7.http or l7.dns or l7.unsupported):
                        l7 = None  # "If no rules are specified, then all traffic is permitted" (§2.2)
                    grants.append(_Grant(rule, l7, port_rule.unsupported if port_rule is not None else None))
        return _SideEval(direction, bool(specs), tuple(isolating), tuple(denies), tuple(deny_maybes),
                         tuple(grants), tuple(grant_maybes), tuple(unknowns), tuple(dict.fromkeys(notes)),
                         tuple(dict.fromkeys(unresolved)))

    def _idle_notes(self, rule: Rule, idle: Mapping[int, str], direction: Direction, protocol: str,
                    port: int | None, icmp_type: int | None, dest_ports: tuple[Port, ...]) -> list[str]:
        """Why a rule for the flow's port cannot cover the peer although one of its peers names it."""
        whys = [idle[p_idx] for p_idx in self._rule_peers[id(rule)] if p_idx in idle]
        if not whys or not any(tri is not Tri.NO for tri, _, _ in
                               self._port_match(rule, direction, protocol, port, icmp_type, dest_ports)):
            return []
        return [f"{rule.describe()}: {why}" for why in whys]

    def _peer_match(self, rule: Rule, pclass: _PeerClass, maybe: Mapping[int, str]) -> tuple[Tri, str]:
        if rule.wildcard_peers:
            return Tri.YES, ""
        why = ""
        for p_idx in self._rule_peers[id(rule)]:
            if p_idx in pclass.yes:
                return Tri.YES, ""
            if not why and p_idx in maybe:
                why = maybe[p_idx]
        return (Tri.MAYBE, why) if why else (Tri.NO, "")

    def _port_match(self, rule: Rule, direction: Direction, protocol: str, port: int | None, icmp_type: int | None,
                    dest_ports: tuple[Port, ...]) -> list[tuple[Tri, PortRule | None, str]]:
        """The rule's port rules that match the flow (YES or MAYBE, with why), plus those that would but
        name a port Cilium cannot resolve (NO, with why)."""
        if rule.l3_only:
            return [(Tri.YES, None, "")]
        if protocol == "ICMP":
            out: list[tuple[Tri, PortRule | None, str]] = []
            for icmp in rule.icmps or ():
                if icmp.family != "IPv4":
                    continue  # flows carry IPv4 ICMP types (design §3)
                if icmp.type is None:
                    out.append((Tri.MAYBE, None, f"ICMP type name in {icmp.text!r} is not known to the model"))
                elif icmp.type == icmp_type:
                    out.append((Tri.YES, None, ""))
            if any(t is Tri.YES for t, _, _ in out):
                return [(Tri.YES, None, "")]
            return out
        if rule.ports is None or port is None:
            return []  # an icmps-only rule allows no TCP/UDP/SCTP
        results: list[tuple[Tri, PortRule | None, str]] = []
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
        # and the rule adds nothing for it (§2.1).
        numbers = self._named.get((spec.name, protocol), {})
        if len(numbers) <= 1:
            return (Tri.YES, "") if port in numbers else (Tri.NO, "")
        if port not in numbers:
            return Tri.NO, ""
        return Tri.NO, _ambiguous_named_port(spec.name, protocol, numbers)

    # --- peers that are not workloads -----------------------------------------------------------

    def _intern(self, pclass: _PeerClass) -> int:
        found = self._class_ids.get(pclass)
        if found is None:
            found = len(self._classes)
            self._class_ids[pclass] = found
            self._classes.append(pclass)
        return found

    def _endpoint_class(self, endpoint: Endpoint, local: int, direction: Direction) -> int:
        """The peer class of a non-workload endpoint.

        toFQDNs peers depend on the local pod's DNS lookups: for a ``{fqdn, ip}`` endpoint, and, on
        egress, for the note on a world address a toFQDNs rule does not select.
        """
        learner = (local if direction is Direction.EGRESS and self._has_fqdn_peers
                   and isinstance(endpoint, EntityEndpoint) and endpoint.entity is Entity.WORLD else None)
        key = (endpoint, local if isinstance(endpoint, FqdnEndpoint) or learner is not None else -1)
        found = self._endpoint_classes.get(key)
        if found is not None:
            return found
        yes: set[int] = set()
        maybe: list[tuple[int, str]] = []
        notes: list[str] = []
        idle: list[tuple[int, str]] = []
        if isinstance(endpoint, EntityEndpoint):
            entity = endpoint.entity
            labels = reserved_identity(entity)
        else:
            entity = Entity.WORLD
            labels = reserved_identity(Entity.WORLD)
        ip = endpoint.ip if not isinstance(endpoint, WorkloadEndpoint) else None
        for p_idx, peer in enumerate(self._peers):
            if isinstance(peer, SelectorPeer):
                if peer.selector.matches(labels):
                    if not peer.namespace_selector:
                        yes.add(p_idx)
                    elif self.semantics == "cilium":
                        maybe.append((p_idx, _namespace_selector_maybe(peer, endpoint, entity)))
                    # under the NetworkPolicy API a namespaceSelector selects pods only
            elif isinstance(peer, EntityPeer):
                if entity is Entity.KUBE_APISERVER and peer.entity in (Entity.HOST, Entity.REMOTE_NODE):
                    maybe.append((p_idx, f"entity {peer.entity.value} matches the API server only if it runs on "
                                         "that node; the model does not know where it runs"))
                elif entity_selects_entity(peer.entity, entity):
                    yes.add(p_idx)
            elif isinstance(peer, CidrPeer):
                tri, why = self._cidr_match(peer, entity, ip, endpoint)
                if tri is Tri.YES:
                    yes.add(p_idx)
                elif tri is Tri.MAYBE:
                    maybe.append((p_idx, why))
            elif isinstance(peer, FqdnPeer):
                if isinstance(endpoint, FqdnEndpoint):
                    if peer.matches(endpoint.fqdn):
                        tri, why = self._dns_learnt(local, endpoint.fqdn)
                        if tri is Tri.YES:
                            yes.add(p_idx)
                        elif tri is Tri.MAYBE:
                            maybe.append((p_idx, why))
                        else:
                            notes.append(f"toFQDNs {peer.text} names {endpoint.fqdn} but selects nothing: {why}")
                elif learner is not None:
                    idle.append((p_idx, self._fqdn_unnamed(learner, peer, endpoint)))
            else:
                maybe.append((p_idx, f"{peer.feature} is not modelled"))
        found = self._intern(_PeerClass(frozenset(yes), tuple(maybe), tuple(dict.fromkeys(notes)), tuple(idle)))
        self._endpoint_classes[key] = found
        return found

    def _cidr_match(self, peer: CidrPeer, entity: Entity, ip: str | None, endpoint: Endpoint) -> tuple[Tri, str]:
        """CIDR rules select only addresses outside the cluster (§1.4); ipBlock also nodes under k8s rules."""
        if entity is Entity.WORLD or (peer.ip_block and self.semantics == "kubernetes"
                                      and entity in (Entity.HOST, Entity.REMOTE_NODE)):
            if ip is None:
                return Tri.MAYBE, (f"CIDR {peer.describe()} needs {endpoint.describe()}'s IP, which the flow does "
                                   "not give")
            return (Tri.YES, "") if peer.contains(ip) else (Tri.NO, "")
        if entity is Entity.KUBE_APISERVER:
            return Tri.MAYBE, (f"CIDR {peer.describe()} matches the API server only when it runs outside the "
                               "cluster; the model does not know")
        return Tri.NO, ""

    def _dns_learnt(self, local: int, name: str) -> tuple[Tri, str]:
        """Whether ``name``'s IPs were learnt by Cilium's DNS proxy for pods on ``local``'s node (§1.4, §7.5)."""
        if not self._dns_servers:
            return Tri.MAYBE, ("the topology has no DNS server (a workload serving port 53), so the model cannot "
                               f"tell whether a lookup of {name} went through Cilium's DNS proxy")
        proxied = self._proxied_lookups(name)
        if local in proxied:
            return Tri.YES, ""
        if proxied:
            return Tri.MAYBE, (f"{self._workloads[local].ref} cannot look {name} up through Cilium's DNS proxy but "
                               f"{self._workloads[proxied[0]].ref} can; IPs learnt on a node serve every pod there, "
                               "and the topology does not say which node runs what")
        return Tri.NO, (f"no pod's lookup of {name} passes an egress rule with DNS L7 rules allowing it, so Cilium's "
                        "DNS proxy never learns its IPs")

    def _proxied_lookups(self, name: str) -> tuple[int, ...]:
        """The workloads, in topology order, whose lookup of ``name`` passes Cilium's DNS proxy (cached per name)."""
        found = self._proxied_memo.get(name)
        if found is None:
            query = DnsQuery(name)
            found = self._proxied_memo[name] = tuple(
                src for src in range(len(self._workloads)) if self._proxied_lookup(src, query))
        return found

    def _proxied_lookup(self, src: int, query: DnsQuery) -> bool:
        """Whether some lookup of ``src`` goes through an egress allow with DNS L7 rules and is allowed."""
        return any(self._finalize(ev, flow, "", "").dns_proxied
                   and self._decide(flow, src, server).verdict is Verdict.ALLOWED
                   for server, flow, ev in self._dns_lookups(src, query))

    def _dns_lookups(self, src: int, query: DnsQuery | None) -> Iterator[tuple[int, Flow, _SideEval]]:
        """``src``'s lookups (of ``query``) towards every DNS server but itself, each with its egress side."""
        source = WorkloadEndpoint(self._workloads[src].ref)
        for server, protocol in self._dns_servers:
            if server == src:
                continue
            flow = Flow(source, WorkloadEndpoint(self._workloads[server].ref), protocol, DNS_PORT, dns=query)
            yield server, flow, self._side_eval(self._side_key(Direction.EGRESS, src, flow.destination, server, flow))

    def _fqdn_unnamed(self, local: int, peer: FqdnPeer, endpoint: Endpoint) -> str:
        """Why a toFQDNs peer does not select a world address given without a name (§1.4, §7.5).

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
            tri, why = self._dns_learnt(local, peer.name)
            if tri is Tri.NO:
                return f"{head}; {nothing}: {why}"
            if tri is Tri.YES:
                why = f"{self._workloads[local].ref} looks {peer.name} up through Cilium's DNS proxy"
            return f"{head}; {why}"
        if not self._dns_servers:
            return (f"{head}; the topology has no DNS server (a workload serving port 53), so the model cannot tell "
                    "whether lookups pass Cilium's DNS proxy")
        if self._proxied_dns_path(local):
            return (f"{head}; {self._workloads[local].ref}'s DNS lookups pass Cilium's DNS proxy (an egress rule "
                    "with DNS L7 rules allows them)")
        other = next((i for i in range(len(self._workloads)) if i != local and self._proxied_dns_path(i)), None)
        if other is not None:
            return (f"{head}; {self._workloads[other].ref}'s DNS lookups pass Cilium's DNS proxy, and IPs learnt on "
                    "a node serve every pod there")
        return (f"{head}; {nothing}: no pod's DNS lookups pass an egress rule with DNS L7 rules, so Cilium's DNS "
                "proxy learns no IPs")

    def _proxied_dns_path(self, src: int) -> bool:
        """Whether some DNS lookup of ``src`` may pass Cilium's DNS proxy: an egress allow with DNS L7 rules
        (or one that may match) towards a DNS server whose ingress does not drop it. No query name is
        known here, so any DNS L7 rule counts."""
        found = self._dns_path_memo.get(src)
        if found is not None:
            return found
        found = False
        for server, flow, ev in self._dns_lookups(src, None):
            dns_rules = ev.dns_grants or any(
                pr.l7 is not None and pr.l7.dns for rule, _ in ev.grant_maybes for pr in rule.ports or ())
            if ev.denies or not dns_rules:
                continue
            ingress = self._side_eval(self._side_key(Direction.INGRESS, server, flow.source, src, flow))
            if self._finalize(ingress, flow, "", "").verdict is not Verdict.DROPPED:
                found = True
                break
        self._dns_path_memo[src] = found
        return found

    # --- verdict of one side --------------------------------------------------------------------

    def _finalize(self, ev: _SideEval, flow: Flow, local: str, peer: str) -> _SideResult:
        direction = ev.direction.value
        to_from = "to" if ev.direction is Direction.EGRESS else "from"
        what = flow.transport()
        if ev.denies:
            return _SideResult(Verdict.DROPPED, tuple(
                f"{rule.describe()}: denies {what} {to_from} {peer} (deny rules win over allows)"
                for rule in ev.denies))
        if not ev.selected:
            return _SideResult(Verdict.ALLOWED, (f"{local} {direction}: no policy selects it, {direction} is "
                                                 "unrestricted",), unselected=True)
        maybe_reasons = [f"{rule.describe()}: {why}" for rule, why in (*ev.grant_maybes, *ev.unknowns)]
        deny_maybe_reasons = [f"{rule.describe()}: may deny ({why})" for rule, why in ev.deny_maybes]
        dns_proxied = False
        if not ev.isolating:
            verdict = Verdict.ALLOWED
            dns_proxied = ev.dns_grants
            reasons = [f"{local} {direction}: only policies with enableDefaultDeny.{direction}=false select it, so "
                       f"{direction} stays default-allow (their L7 rules get an allow-all, Cilium >= 1.18)"]
        else:
            verdict, reasons, dns_proxied = self._allows(ev, flow, local, peer, to_from, what)
            if verdict is not Verdict.ALLOWED and maybe_reasons:
                verdict = Verdict.UNKNOWN
                reasons = [*maybe_reasons, *reasons]
        if deny_maybe_reasons and verdict is not Verdict.DROPPED:
            verdict = Verdict.UNKNOWN
            reasons = [*deny_maybe_reasons, *reasons]
        if ev.unknowns and verdict is not Verdict.DROPPED and verdict is not Verdict.UNKNOWN:
            verdict = Verdict.UNKNOWN
            reasons = [f"{rule.describe()}: {why}" for rule, why in ev.unknowns] + reasons
        if verdict is Verdict.DROPPED:
            reasons.extend(ev.notes)
        return _SideResult(verdict, tuple(reasons), dns_proxied)

    def _allows(self, ev: _SideEval, flow: Flow, local: str, peer: str, to_from: str,
                what: str) -> tuple[Verdict, list[str], bool]:
        direction = ev.direction.value
        plain = [g for g in ev.grants if g.l7 is None and g.unsupported is None]
        if plain:
            # L7 wildcarding (§2.6): the traffic may still pass the proxy (DNS answers are then learnt),
            # but nothing is denied at L7.
            return (Verdict.ALLOWED, [f"{g.rule.describe()}: allows {what} {to_from} {peer}" for g in plain[:1]],
                    ev.dns_grants)
        if ev.grants:
            return self._l7(ev.grants, flow, f"{what} {to_from} {peer}")
        isolating = ", ".join(ref.describe() for ref in ev.isolating)
        return Verdict.DROPPED, [*ev.unresolved, f"{isolating} {direction}: no rule allows {what} {to_from} {peer} "
                                                 f"({local} is isolated for {direction})"], False

    def _l7(self, grants: Sequence[_Grant], flow: Flow, what: str) -> tuple[Verdict, list[str], bool]:
        """L7 rules of every allow matching (peer, port), combined (§2.2, §2.6)."""
        http = [(g, h) for g in grants if g.l7 is not None for h in g.l7.http]
        dns = [(g, d) for g in grants if g.l7 is not None for d in g.l7.dns]
        odd = [f"{g.rule.describe()}: {g.unsupported or (g.l7.unsupported if g.l7 else '')} is not modelled"
               for g in grants if g.unsupported or (g.l7 is not None and g.l7.unsupported)]
        rules_text = "; ".join(f"{g.rule.describe()}: {g.l7.describe()}" for g in grants if g.l7 is not None)
        if http and dns:
            return Verdict.UNKNOWN, [f"HTTP and DNS rules apply to the same port ({rules_text}); Cilium rejects "
                                     "mixing L7 types on one port"], False
        if flow.http is not None:
            if dns:
                return Verdict.UNKNOWN, [f"DNS rules apply to this port ({rules_text}) but the flow is HTTP"], False
            maybes: list[str] = []
            for g, h in http:
                tri, why = h.matches(flow.http)
                if tri is Tri.YES:
                    return Verdict.ALLOWED, [f"{g.rule.describe()}: {why}"], False
                if tri is Tri.MAYBE:
                    maybes.append(f"{g.rule.describe()}: {why}")
            if maybes or odd:
                return Verdict.UNKNOWN, [*maybes, *odd], False
            return Verdict.L7_DENIED, [
                f"{g.rule.describe()}: {flow.http.describe()} does not match {g.l7.describe()} "
                "(Envoy answers 403)" for g in grants if g.l7 is not None], False
        if flow.dns is not None:
            if http:
                return Verdict.UNKNOWN, [f"HTTP rules apply to this port ({rules_text}) but the flow is DNS"], False
            for g, d in dns:
                if d.matches(flow.dns.query):
                    return Verdict.ALLOWED, [f"{g.rule.describe()}: dns {d.text} matched {flow.dns.query}"], True
            if odd:
                return Verdict.UNKNOWN, odd, False
            return Verdict.L7_DENIED, [
                f"{g.rule.describe()}: dns {flow.dns.query} does not match {g.l7.describe()} "
                "(the DNS proxy answers REFUSED)" for g in grants if g.l7 is not None], False
        if odd:
            return Verdict.UNKNOWN, odd, False
        if flow.protocol == "TCP":
            return Verdict.ALLOWED, [f"{rules_text}: allows {what} through Cilium's L7 proxy, which then filters "
                                     "each request (give the flow an http request or a dns query to judge one)"], False
        return Verdict.UNKNOWN, [f"{rules_text}: only a DNS query can be judged on {what}, and the flow carries "
                                 "none"], False


def _ambiguous_named_port(name: str, protocol: str, numbers: Mapping[int, Sequence[str]]) -> str:
    """Why an egress rule naming ``name`` opens nothing under Cilium: the name means several numbers."""
    shown = 3  # workloads listed per number; a port name shared by many pods would drown the reason
    meanings = "; ".join(
        f"{number} on {', '.join(refs[:shown])}{f' and {len(refs) - shown} more' if len(refs) > shown else ''}"
        for number, refs in sorted(numbers.items()))
    return (f"named port {name!r} is ambiguous cluster-wide for {protocol} ({meanings}): Cilium resolves an egress "
            "named port over the named ports of all pods, gets ErrDuplicateNamedPorts (pkg/types/portmap.go) and "
            "adds nothing for it (pkg/policy/l4.go), so this rule opens no port by that name")


def _namespace_selector_maybe(peer: SelectorPeer, endpoint: Endpoint, entity: Entity) -> str:
    """Why a NetworkPolicy namespaceSelector peer may select a reserved identity under Cilium (§3.4)."""
    return (f"peer {peer.text} may select {endpoint.describe()}: Cilium rewrites namespaceSelector keys to "
            f"io.cilium.k8s.namespace.labels.*, which the reserved identity reserved:{entity.value} lacks, so its "
            "NotIn/DoesNotExist requirements hold for it; cilium-semantics §3.4 does not say whether Cilium also "
            "limits the peer to pods, so the model cannot tell (the NetworkPolicy API selects pods only: "
            "see --semantics kubernetes)")
