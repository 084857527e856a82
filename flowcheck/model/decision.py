"""A decision as data: the verdict, which side decided it, which policy and rule, and what passes at L7.

``Model.decide(flow)`` returns a ``Decision``. Its ``reasons`` are the text every report, the
``plan``/``explain`` JSON (docs/contracts.md, "The flowcheck command") and the suites print; they
are rendered from the data kept beside them (``flowcheck.model.reasons``), so later work reads the
data rather than parsing sentences:

* ``Decision.basis`` -- the reasons as ``Reason`` objects, in the order of ``reasons``
  (``reasons[i]`` is ``render_reason(basis[i], flow)``): each has a ``ReasonKind``, the side it was
  found on, the rule it names (``RuleRef``: policy, direction, allow or deny, index), the policies
  it names (the isolating ones, the host policies) and, for L7, the rules concerned;
* ``Decision.sides`` -- one ``SideDecision`` per side Cilium enforces on: egress at the source
  (when the source is a pod), then ingress at the destination (when the destination is a pod),
  each with its own verdict, the policies selecting and isolating the pod, and ``l7``: what the
  L7 proxy lets through on that side (``L7Filter``: the HTTP rules -- method, path, host,
  headers as written -- or the DNS matchName/matchPattern list);
* ``Decision.decided_by`` -- which side(s) decided (``DecidedBy``), and ``Decision.rules`` /
  ``Decision.policies`` -- the rules and policies behind it.

A table cell "allowed through the L7 proxy: only GET", a diff of two decisions' reasons, or a map
edge labelled with what passes all read these fields.

Every object here is name-free: the source and destination names come from the flow when the
reasons are rendered, so one decision's data can be shared by every flow with the same facts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flowcheck.model.policy import Direction, DnsRule, HttpRule, L7Rules, PolicyRef, RuleRef
from flowcheck.verdict import Verdict


class ReasonKind(enum.StrEnum):
    """What a reason says. The values are stable names (for JSON and diffs)."""

    SELF_FLOW = "self-flow"  # a pod reaching its own IP: no policy applies
    NOT_A_POD = "not-a-pod"  # neither end is a pod Cilium enforces policy on
    NO_POLICY_SELECTS = "no-policy-selects"  # unrestricted in this direction
    DEFAULT_ALLOW = "default-allow"  # only enableDefaultDeny=false policies select the pod
    LOCALHOST = "localhost"  # the host always reaches its local pods (allow-localhost)
    LOCALHOST_DENY = "localhost-deny"  # a deny rule names the host, which allow-localhost lets in anyway
    ALLOW_RULE = "allow-rule"  # an allow rule without L7 rules matches: allowed at L3/L4, nothing filtered
    DENY_RULE = "deny-rule"  # a deny rule matches: dropped, whatever the allows say
    ISOLATED_NO_RULE = "isolated-no-rule"  # the pod is isolated and no allow rule matches
    NAMED_PORT_AMBIGUOUS = "named-port-ambiguous"  # an egress named port means two numbers: the rule opens nothing
    L7_MATCH = "l7-match"  # the request matched an HTTP rule, or the query a DNS rule
    L7_MISMATCH = "l7-mismatch"  # the request or query matches none of this rule's L7 rules
    L7_FILTERED = "l7-filtered"  # allowed at L4 through the L7 proxy, which judges each request
    L7_MIXED = "l7-mixed"  # HTTP and DNS rules on one port (Cilium rejects it)
    L7_WRONG_KIND = "l7-wrong-kind"  # DNS rules for an HTTP flow, or HTTP rules for a DNS flow
    L7_NO_QUERY = "l7-no-query"  # L7 rules on a flow carrying no request, over a transport the proxy does not
    # take without one (HTTP rules on UDP through protocol ANY; SCTP)
    UNKNOWN_FEATURE = "unknown-feature"  # a rule uses a feature the model does not evaluate
    MISSING_FACT = "missing-fact"  # a rule may match: the topology or the flow lacks a fact
    UNDOCUMENTED = "undocumented"  # a rule may match: upstream does not document what Cilium does
    FQDN_NOT_LEARNT = "fqdn-not-learnt"  # a toFQDNs peer names the destination, but its IPs are never learnt
    FQDN_UNNAMED = "fqdn-unnamed"  # a toFQDNs rule would open a world address, were it a DNS answer
    HOST_POLICY = "host-policy"  # host policies (nodeSelector) apply and are not modelled
    CIDR_BLOCKS = "cidr-blocks"  # a whole external block: how the policies' CIDRs cut it, and its sub-blocks' verdicts


MAYBE_KINDS = frozenset({ReasonKind.UNKNOWN_FEATURE, ReasonKind.MISSING_FACT, ReasonKind.UNDOCUMENTED})
"""Kinds of the reasons a rule *may* match for (or, on a deny rule, may deny): the verdict is then unknown."""


@dataclass(frozen=True, slots=True)
class L7Grant:
    """An allow rule matching the flow's peer and port, with the L7 rules of its ``toPorts`` entry."""

    rule: RuleRef
    rules: L7Rules


@dataclass(frozen=True, slots=True)
class L7Filter:
    """What Cilium's L7 proxy lets through on one side: a request passes if any rule here matches it.

    The L7 rules of every allow rule matching the flow's peer and port, combined as Cilium combines
    them (docs/semantics.md, "L7 rules"). Present only where the proxy filters: an allow without
    L7 rules for the same peer and port lets everything through, and then there is no filter.
    """

    grants: tuple[L7Grant, ...]

    @property
    def http(self) -> tuple[HttpRule, ...]:
        """The HTTP rules (method, path, host as RE2 patterns as written, headers); any one passes a request."""
        return tuple(h for g in self.grants for h in g.rules.http)

    @property
    def dns(self) -> tuple[DnsRule, ...]:
        """The DNS rules (``DnsRule.field`` matchName/matchPattern, ``DnsRule.value``); any one passes a query."""
        return tuple(d for g in self.grants for d in g.rules.dns)

    @property
    def unsupported(self) -> tuple[str, ...]:
        """L7 kinds the model does not evaluate among them (kafka, l7proto)."""
        return tuple(g.rules.unsupported for g in self.grants if g.rules.unsupported)

    def describe(self) -> str:
        """``CiliumNetworkPolicy default/x ingress rule 0: http GET; ...`` (each rule with its L7 rules)."""
        return "; ".join(f"{g.rule.describe()}: {g.rules.describe()}" for g in self.grants)


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason, as data; ``flowcheck.model.reasons.render_reason`` turns it into its sentence.

    ``direction`` is the side it was found on (``egress`` at the source, ``ingress`` at the
    destination; None for reasons about the whole flow). ``rule`` is the rule it names; ``policies``
    the policies it names (for ``isolated-no-rule`` the isolating ones, for ``host-policy`` the host
    policies). ``l7`` holds the L7 rules concerned (for ``l7-mismatch`` the named rule's own;
    for ``l7-filtered``, ``l7-mixed``, ``l7-wrong-kind`` and ``l7-no-query`` every L7 rule for the
    flow's peer and port) and ``matched`` the HTTP or DNS rule an ``l7-match`` matched. ``detail``
    is the model's explanation where one sentence says it best (why a rule may match, why a named
    port is ambiguous, why an FQDN's IPs are never learnt); it never contains the flow's own names.
    ``unless_above``: an ``isolated-no-rule`` beside rules that may match -- the drop holds only if they do not.
    """

    kind: ReasonKind
    direction: Direction | None = None
    rule: RuleRef | None = None
    policies: tuple[PolicyRef, ...] = ()
    l7: L7Filter | None = None
    matched: HttpRule | DnsRule | None = None
    detail: str = ""
    unless_above: bool = False


@dataclass(frozen=True, slots=True)
class SideDecision:
    """What one side decided: egress at the source (``direction`` egress) or ingress at the destination.

    ``selected_by`` are the policies selecting the pod in this direction (empty: unrestricted);
    ``isolated_by`` those of them that switch it to default deny (empty while only
    ``enableDefaultDeny: false`` policies select it). ``reasons`` are this side's, in order. ``l7`` is
    what the L7 proxy lets through here, when it filters (see ``L7Filter``).
    """

    direction: Direction
    verdict: Verdict
    reasons: tuple[Reason, ...]
    selected_by: tuple[PolicyRef, ...] = ()
    isolated_by: tuple[PolicyRef, ...] = ()
    l7: L7Filter | None = None

    @property
    def rules(self) -> tuple[RuleRef, ...]:
        """The rules this side's reasons name (with the rules behind its L7 reasons), each once, in order."""
        return _rules_of(self.reasons)


class DecidedBy(enum.StrEnum):
    """Which side(s) decided a flow."""

    EGRESS = "egress"  # egress at the source
    INGRESS = "ingress"  # ingress at the destination
    BOTH = "both"
    NEITHER = "neither"  # sides were judged but none made the verdict (no policy selects them; host policies)
    SELF = "self"  # a pod reaching its own IP
    NOT_A_POD = "not-a-pod"  # neither end is a pod Cilium enforces policy on


@dataclass(frozen=True, slots=True)
class Grounds:
    """The data behind a decision: its reasons as data (``basis``) and the per-side decisions (``sides``).

    Name-free, so the model shares one ``Grounds`` between every decision that reads alike.
    """

    basis: tuple[Reason, ...] = ()
    sides: tuple[SideDecision, ...] = ()


NO_GROUNDS = Grounds()
"""The grounds of a decision built by hand (tests, fakes): none."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict with the reasons behind it, decisive reason first -- as text and as data.

    ``reasons`` is the text (unchanged in form since version 1 of the JSON outputs); ``basis`` the
    same reasons as ``Reason`` objects, in the same order; ``sides`` the per-side decisions (both
    held in ``grounds``). A decision built by hand (``Decision(verdict, reasons)``) has no grounds.
    """

    verdict: Verdict
    reasons: tuple[str, ...]
    grounds: Grounds = NO_GROUNDS

    @property
    def basis(self) -> tuple[Reason, ...]:
        """The reasons as data, in the order of ``reasons``."""
        return self.grounds.basis

    @property
    def sides(self) -> tuple[SideDecision, ...]:
        """One decision per side Cilium enforces on: egress at a pod source, then ingress at a pod destination."""
        return self.grounds.sides

    @property
    def deciding_sides(self) -> tuple[SideDecision, ...]:
        """The sides that made the verdict: those whose own verdict it is -- for an allowed flow, those
        a policy selects (a side no policy selects lets everything through, so it decided nothing)."""
        if self.verdict is Verdict.ALLOWED:
            return tuple(s for s in self.sides if s.verdict is Verdict.ALLOWED and s.selected_by)
        return tuple(s for s in self.sides if s.verdict is self.verdict)

    @property
    def decided_by(self) -> DecidedBy:
        """Which side(s) decided: egress at the source, ingress at the destination, both, or neither."""
        if any(r.kind is ReasonKind.SELF_FLOW for r in self.basis):
            return DecidedBy.SELF
        if any(r.kind is ReasonKind.NOT_A_POD for r in self.basis):
            return DecidedBy.NOT_A_POD
        directions = {s.direction for s in self.deciding_sides}
        if len(directions) == 2:
            return DecidedBy.BOTH
        if Direction.EGRESS in directions:
            return DecidedBy.EGRESS
        if Direction.INGRESS in directions:
            return DecidedBy.INGRESS
        return DecidedBy.NEITHER

    @property
    def deciding_reasons(self) -> tuple[Reason, ...]:
        """The reasons of the deciding sides -- or, when no side decided, those about the whole flow
        (a self-flow, neither end a pod, host policies)."""
        sides = self.deciding_sides
        if sides:
            return tuple(r for s in sides for r in s.reasons)
        return tuple(r for r in self.basis if r.direction is None)

    @property
    def rules(self) -> tuple[RuleRef, ...]:
        """The rules behind the verdict: those the deciding reasons name, each once."""
        return _rules_of(self.deciding_reasons)

    @property
    def policies(self) -> tuple[PolicyRef, ...]:
        """The policies behind the verdict: those the deciding reasons name (a rule's policy; the
        isolating policies of a drop no rule allows; host policies), each once."""
        refs: list[PolicyRef] = []
        for reason in self.deciding_reasons:
            if reason.rule is not None:
                refs.append(reason.rule.policy)
            elif reason.l7 is not None:
                refs.extend(g.rule.policy for g in reason.l7.grants)
            refs.extend(reason.policies)
        return tuple(dict.fromkeys(refs))

    @property
    def l7(self) -> tuple[L7Filter, ...]:
        """What the L7 proxy lets through, per side that filters (egress first); empty when nothing is filtered."""
        return tuple(s.l7 for s in self.sides if s.l7 is not None)


def _rules_of(reasons: tuple[Reason, ...]) -> tuple[RuleRef, ...]:
    found: list[RuleRef] = []
    for reason in reasons:
        if reason.rule is not None:
            found.append(reason.rule)
        elif reason.l7 is not None:
            found.extend(g.rule for g in reason.l7.grants)
    return tuple(dict.fromkeys(found))
