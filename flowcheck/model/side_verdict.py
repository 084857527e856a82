"""One side's verdict: the memoised L3/L4 facts of a side (``side_eval``) applied to one flow.

In order (docs/semantics.md, "How one side decides"): a matching deny rule drops the flow whatever
the allows say; a pod no policy selects in this direction is unrestricted; one selected only by
``enableDefaultDeny: false`` policies stays default-allow (their L7 rules get an allow-all);
otherwise the pod is isolated and the union of the matching allows decides -- one without L7
rules lets the flow through, L7 rules hand it to ``l7``, none drops it. Where a rule *may* match
(a fact is missing, a feature is not evaluated) a verdict other than the one a certain rule gives
becomes ``unknown``, never a guess.

The host reaching a pod on its node is judged here too: Kubernetes requires it, and Cilium allows it
whatever the pod's ingress policies say (``allow-localhost``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from flowcheck.model.decision import L7Filter, Reason, ReasonKind, SideDecision
from flowcheck.model.flows import Flow
from flowcheck.model.l7 import judge_l7
from flowcheck.model.side_eval import SideEval
from flowcheck.verdict import Verdict

SEVERITY = {Verdict.DROPPED: 3, Verdict.UNKNOWN: 2, Verdict.L7_DENIED: 1, Verdict.ALLOWED: 0}
"""Which verdict wins when the parts of a flow disagree (a drop on either side drops the flow)."""


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a flow's decision: a side (``side`` set) or a fact about the whole flow (host policies).

    ``unselected``: no policy selects the pod -- its reason goes after those naming a rule.
    ``dns_proxied``: the flow is a DNS lookup that passed Cilium's DNS proxy (its answers are learnt).
    """

    verdict: Verdict
    reasons: tuple[Reason, ...]
    side: SideDecision | None = None
    dns_proxied: bool = False
    unselected: bool = False


def judge_side(ev: SideEval, flow: Flow) -> Part:
    """The verdict of one side for ``flow`` (whose transport the facts ``ev`` were evaluated for)."""
    direction = ev.direction
    if ev.denies:
        return _part(ev, Verdict.DROPPED, [Reason(ReasonKind.DENY_RULE, direction, rule) for rule in ev.denies])
    if not ev.selected:
        return _part(ev, Verdict.ALLOWED, [Reason(ReasonKind.NO_POLICY_SELECTS, direction)], unselected=True)
    maybe_reasons = [Reason(doubt.kind, direction, rule, detail=doubt.why)
                     for rule, doubt in (*ev.grant_maybes, *ev.unknowns)]
    deny_maybe_reasons = [Reason(doubt.kind, direction, rule, detail=doubt.why) for rule, doubt in ev.deny_maybes]
    dns_proxied = False
    passes: L7Filter | None = None
    if not ev.isolating:
        verdict = Verdict.ALLOWED
        dns_proxied = ev.dns_grants
        reasons = [Reason(ReasonKind.DEFAULT_ALLOW, direction)]
    else:
        plain = [g for g in ev.grants if g.l7 is None and g.unsupported is None]
        if plain:
            # L7 wildcarding: the traffic may still pass the proxy (DNS answers are then learnt), but
            # nothing is denied at L7.
            verdict, reasons, dns_proxied = (Verdict.ALLOWED, [Reason(ReasonKind.ALLOW_RULE, direction, plain[0].rule)],
                                             ev.dns_grants)
        elif ev.grants:
            judged = judge_l7(ev.grants, flow, direction)
            verdict, reasons, dns_proxied, passes = (judged.verdict, list(judged.reasons), judged.dns_proxied,
                                                     judged.passes)
        else:
            verdict = Verdict.DROPPED
            reasons = [*(Reason(ReasonKind.NAMED_PORT_AMBIGUOUS, direction, rule, detail=why)
                         for rule, why in ev.unresolved),
                       Reason(ReasonKind.ISOLATED_NO_RULE, direction, policies=ev.isolating)]
        if verdict is not Verdict.ALLOWED and maybe_reasons:
            verdict = Verdict.UNKNOWN
            # the drop holds only if the rules that may match do not: said so, not as a plain fact
            reasons = [*maybe_reasons, *(replace(r, unless_above=True) if r.kind is ReasonKind.ISOLATED_NO_RULE
                                         else r for r in reasons)]
    if deny_maybe_reasons and verdict is not Verdict.DROPPED:
        verdict = Verdict.UNKNOWN
        reasons = [*deny_maybe_reasons, *reasons]
    if ev.unknowns and verdict is not Verdict.DROPPED and verdict is not Verdict.UNKNOWN:
        verdict = Verdict.UNKNOWN
        reasons = [Reason(doubt.kind, direction, rule, detail=doubt.why) for rule, doubt in ev.unknowns] + reasons
    if verdict is Verdict.DROPPED:
        reasons.extend(Reason(ReasonKind.FQDN_UNNAMED if rule is not None else ReasonKind.FQDN_NOT_LEARNT,
                              direction, rule, detail=note) for rule, note in ev.notes)
    return _part(ev, verdict, reasons, dns_proxied=dns_proxied, passes=passes)


def judge_localhost(ev: SideEval) -> Part:
    """Host -> a pod on its node: always allowed in Kubernetes mode (allow-localhost).

    A deny rule naming the host meets allow-localhost; which wins is not documented, so ``unknown``.
    """
    if ev.denies:
        return _part(ev, Verdict.UNKNOWN, [Reason(ReasonKind.LOCALHOST_DENY, ev.direction, ev.denies[0])])
    return _part(ev, Verdict.ALLOWED, [Reason(ReasonKind.LOCALHOST, ev.direction)])


def _part(ev: SideEval, verdict: Verdict, reasons: list[Reason], *, dns_proxied: bool = False,
          unselected: bool = False, passes: L7Filter | None = None) -> Part:
    held = tuple(reasons)
    side = SideDecision(ev.direction, verdict, held, ev.selected_by, ev.isolating, passes)
    return Part(verdict, held, side, dns_proxied, unselected)
